//! `DELETE /api/v1/meters/{id}?account_id=…`: 204 with no body; `If-Match` is checked atomically (412).

use lambda_http::{Body, Request, Response};

use crate::http::app::App;
use crate::http::envelope;
use crate::http::error::ApiError;
use crate::http::request::{self, query_params};
use crate::store::DeleteMeterRequest;

pub(crate) async fn delete_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    let id = request::meter_id(request)?;
    let account = query_params(request).only(&["account_id"])?.account_id()?;
    grant.authorize(&account)?;
    app.meters
        .delete(
            &account,
            DeleteMeterRequest {
                id,
                if_match: request::if_match(request, id),
                actor: grant.actor.clone(),
            },
        )
        .await?;
    Ok(envelope::no_content())
}
