//! `GET /api/v1/meters/{id}?account_id=…`, honouring `If-None-Match` (304).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use super::App;
use crate::envelope;
use crate::error::ApiError;
use crate::request::{self, QueryParams};

pub async fn get_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    let id = request::meter_id(request)?;
    let account = QueryParams::of(request)
        .only(&["account_id"])?
        .account_id()?;
    grant.authorize(&account)?;
    let meter = app.store.get(&account, id).await?;
    if request::none_match(request, &meter) {
        return Ok(envelope::not_modified(&meter));
    }
    Ok(envelope::meter(StatusCode::OK, &meter))
}
