//! `DELETE /api/v1/meters/{id}?account_id=…`: 204 with no body; `If-Match` is checked atomically (412).

use lambda_http::{Body, Request, Response};

use super::App;
use crate::envelope;
use crate::error::ApiError;
use crate::request::{self, QueryParams};

pub async fn delete_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    let id = request::meter_id(request)?;
    let account = QueryParams::of(request)
        .only(&["account_id"])?
        .account_id()?;
    grant.authorize(&account)?;
    app.store
        .delete(&account, id, request::if_match(request, id))
        .await?;
    Ok(envelope::no_content())
}
