//! `PUT /api/v1/meters/{id}` with `account_id` and the fields to change in the body; `If-Match` is checked
//! atomically with the write (412).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::domain::FieldError;
use crate::domain::meter::UpdateMeterBody;
use crate::http::app::App;
use crate::http::envelope;
use crate::http::error::ApiError;
use crate::http::request::{self, query_params};
use crate::store::UpdateMeterRequest;

pub(crate) async fn update_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    query_params(request).only(&[])?;
    let id = request::meter_id(request)?;
    let body = UpdateMeterBody::parse(request::body(request)?)?;
    if body.id.is_some_and(|echoed| echoed != id) {
        return Err(FieldError::read_only("id").into());
    }
    grant.authorize(&body.account_id)?;
    let meter = app
        .meters
        .update(
            &body.account_id,
            UpdateMeterRequest {
                id,
                changes: body.changes,
                read_only: body.read_only,
                if_match: request::if_match(request, id),
                actor: grant.actor.clone(),
            },
        )
        .await?;
    Ok(envelope::meter(StatusCode::OK, &meter))
}
