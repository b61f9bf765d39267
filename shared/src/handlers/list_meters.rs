//! `GET /api/v1/meters?account_id=…&page&limit&query&sortBy&sortOrder`

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use super::App;
use crate::envelope;
use crate::error::ApiError;
use crate::list::ListQuery;
use crate::request::QueryParams;

pub async fn list_meters(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    let params = QueryParams::of(request);
    let mut allowed = vec!["account_id"];
    allowed.extend(ListQuery::PARAMETERS);
    let account = params.only(&allowed)?.account_id()?;
    let query = ListQuery::parse(&params)?;
    grant.authorize(&account)?;
    let page = app.store.list(&account, &query).await?;
    Ok(envelope::success(
        StatusCode::OK,
        page.meters,
        Some(page.count),
    ))
}
