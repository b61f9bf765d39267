//! `PUT /api/v1/meters/{id}` with `account_id` and the fields to change in the body; `If-Match` is checked
//! atomically with the write (412).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use super::App;
use crate::envelope;
use crate::error::ApiError;
use crate::meter::{UpdateMeterBody, read_only_changed};
use crate::request::{self, QueryParams};

pub async fn update_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    QueryParams::of(request).only(&[])?;
    let id = request::meter_id(request)?;
    let body = UpdateMeterBody::parse(request::body(request)?)?;
    if body.id.is_some_and(|echoed| echoed != id) {
        return Err(read_only_changed("id").into());
    }
    grant.authorize(&body.account_id)?;
    let meter = app
        .store
        .update(
            &body.account_id,
            id,
            body.changes,
            body.read_only,
            request::if_match(request, id),
        )
        .await?;
    Ok(envelope::meter(StatusCode::OK, &meter))
}
