//! `POST /api/v1/meters` with the meter (and its `account_id`) in the body. With `Idempotency-Key`, a retry
//! of a completed create replays its answer instead of creating again (`http::idempotency`).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};

use crate::domain::meter::CreateMeterBody;
use crate::http::app::App;
use crate::http::envelope;
use crate::http::error::ApiError;
use crate::http::idempotency::create_once;
use crate::http::request::{self, query_params};

pub(crate) async fn create_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    query_params(request).only(&[])?;
    let bytes = request::body(request)?;
    let body = CreateMeterBody::parse(bytes)?;
    grant.authorize(&body.account_id)?;
    let account = body.account_id;
    match request::idempotency_key(request)? {
        None => create(app, body).await,
        Some(key) => {
            let fingerprint = request::body_fingerprint(bytes);
            create_once(app, &account, &key, &fingerprint, create(app, body)).await
        }
    }
}

async fn create(app: &App, body: CreateMeterBody) -> Result<Response<Body>, ApiError> {
    let meter = app.meters.create(&body.account_id, body.meter).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/meters/{}", meter.id))
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = envelope::meter(StatusCode::CREATED, &meter);
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}
