//! `POST /api/v1/meters` with the meter (and its `account_id`) in the body. With `Idempotency-Key`, a retry
//! of a completed create replays its answer instead of creating again (draft-ietf-httpapi-idempotency-key).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};

use super::App;
use crate::envelope;
use crate::error::ApiError;
use crate::meter::{self, CreateMeterBody};
use crate::request::{self, QueryParams};
use crate::store::{Claim, RememberedAnswer};

pub async fn create_meter(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let grant = app.auth.authenticate(request).await?;
    QueryParams::of(request).only(&[])?;
    let bytes = request::body(request)?;
    let body = CreateMeterBody::parse(bytes)?;
    grant.authorize(&body.account_id)?;
    let account = body.account_id;
    let Some(key) = request::idempotency_key(request)? else {
        return create(app, body).await;
    };
    let fingerprint = request::body_fingerprint(bytes);
    match app
        .store
        .claim_idempotent(&account, &key, &fingerprint, meter::now())
        .await?
    {
        Claim::Claimed => {}
        Claim::Completed(answer) => return replay(answer),
        Claim::InProgress => return Err(ApiError::IdempotencyInProgress),
        Claim::OtherBody => return Err(ApiError::IdempotencyKeyReused),
    }
    match create(app, body).await {
        Ok(response) => {
            let answer = remembered(&response);
            if let Err(error) = app
                .store
                .complete_idempotent(&account, &key, &fingerprint, &answer, meter::now())
                .await
            {
                // The meter exists; only the replay is lost. The claim's lease runs out in a minute.
                tracing::error!(%error, "the answer of an idempotent create could not be remembered");
            }
            Ok(response)
        }
        Err(error) => {
            // Failed requests are not remembered: the same key may be retried.
            if let Err(release) = app.store.release_idempotent(&account, &key).await {
                tracing::error!(error = %release, "an idempotency key could not be released");
            }
            Err(error)
        }
    }
}

async fn create(app: &App, body: CreateMeterBody) -> Result<Response<Body>, ApiError> {
    let meter = app.store.create(&body.account_id, body.meter).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/meters/{}", meter.id))
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = envelope::meter(StatusCode::CREATED, &meter);
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

fn remembered(response: &Response<Body>) -> RememberedAnswer {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    RememberedAnswer {
        status: response.status().as_u16(),
        body: String::from_utf8_lossy(response.body().as_ref()).into_owned(),
        location: header(header::LOCATION),
        etag: header(header::ETAG),
    }
}

/// The first request's answer again, marked as a replay.
fn replay(answer: RememberedAnswer) -> Result<Response<Body>, ApiError> {
    let mut response = Response::new(Body::Text(answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).map_err(|e| ApiError::Internal(e.into()))?;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "application/json"),
        (header::LOCATION, answer.location.as_str()),
        (header::ETAG, answer.etag.as_str()),
    ] {
        headers.insert(
            name,
            HeaderValue::from_str(value).map_err(|e| ApiError::Internal(e.into()))?,
        );
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}
