//! `POST /api/v1/meters` with the meter (and its `account_id`) in the body. With `Idempotency-Key`, a retry
//! of a completed create replays its answer instead of creating again (`http::idempotency`).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};

use crate::domain::meter::{CreateMeterBody, Meter};
use crate::http::app::App;
use crate::http::envelope;
use crate::http::error::ApiError;
use crate::http::idempotency::create_once;
use crate::http::request::{self, query_params};
use crate::store::CreateMeterRequest;

pub(crate) async fn create_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    query_params(request).only(&[])?;
    let bytes = request::body(request)?;
    let body = CreateMeterBody::parse(bytes)?;
    grant.authorize(&body.account_id)?;
    let account = body.account_id;
    match request::idempotency_key(request)? {
        None => {
            let meter = app
                .meters
                .create(&account, body.meter, &grant.actor)
                .await?;
            created(&meter, false)
        }
        Some(key) => {
            let fingerprint = request::body_fingerprint(bytes);
            create_once(app, &account, &key, &fingerprint, |id| async move {
                let created_now = app
                    .meters
                    .create_with_id(
                        &account,
                        CreateMeterRequest {
                            id,
                            meter: body.meter,
                            actor: grant.actor.clone(),
                        },
                    )
                    .await?;
                created(&created_now.meter, created_now.earlier_attempt)
            })
            .await
        }
    }
}

/// 201 with the meter and its `Location`; a meter an earlier attempt of this request stored is that
/// attempt's answer, replayed.
fn created(meter: &Meter, replayed: bool) -> Result<Response<Body>, ApiError> {
    let location = HeaderValue::from_str(&format!("/api/v1/meters/{}", meter.id))
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = envelope::meter(StatusCode::CREATED, meter);
    response.headers_mut().insert(header::LOCATION, location);
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}
