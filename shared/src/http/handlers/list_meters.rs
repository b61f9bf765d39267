//! `GET /api/v1/meters?account_id=…&page&limit&query&sortBy&sortOrder`

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::domain::list::ListQuery;
use crate::http::app::App;
use crate::http::envelope;
use crate::http::error::ApiError;
use crate::http::request::query_params;

pub(crate) async fn list_meters(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    let params = query_params(request);
    let mut allowed = vec!["account_id"];
    allowed.extend(ListQuery::PARAMETERS);
    let account = params.only(&allowed)?.account_id()?;
    let query = ListQuery::parse(&params)?;
    grant.authorize(&account)?;
    let page = app.meters.list(&account, &query).await?;
    Ok(envelope::success(
        StatusCode::OK,
        page.meters,
        Some(page.count),
    ))
}
