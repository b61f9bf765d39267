//! `POST /api/v1/meters` with the meter (and its `account_id`) in the body.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};

use super::App;
use crate::envelope;
use crate::error::ApiError;
use crate::meter::CreateMeterBody;
use crate::request::{self, QueryParams};

pub async fn create_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    QueryParams::of(request).only(&[])?;
    let body = CreateMeterBody::parse(request::body(request)?)?;
    grant.authorize(&body.account_id)?;
    let meter = app.store.create(&body.account_id, body.meter).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/meters/{}", meter.id))
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = envelope::meter(StatusCode::CREATED, &meter);
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}
