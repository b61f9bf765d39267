//! `GET /api/v1/meters/{id}?account_id=…`, honouring `If-None-Match` (304).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http::app::App;
use crate::http::envelope;
use crate::http::error::ApiError;
use crate::http::request::{self, query_params};

pub(crate) async fn get_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    let id = request::meter_id(request)?;
    let account = query_params(request).only(&["account_id"])?.account_id()?;
    grant.authorize(&account)?;
    let meter = app.meters.get(&account, id).await?;
    if request::none_match(request, &meter) {
        return Ok(envelope::not_modified(&meter));
    }
    Ok(envelope::meter(StatusCode::OK, &meter))
}
