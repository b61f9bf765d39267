//! The idempotency protocol of a create (draft-ietf-httpapi-idempotency-key): a request with an
//! `Idempotency-Key` claims the key, runs, and leaves its answer for 24 h, so a retry with the same key and
//! body replays that answer instead of creating again.

use std::future::Future;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

use super::app::App;
use super::error::ApiError;
use crate::domain::meter::{AccountId, MeterId, now};
use crate::store::{Claim, RememberedAnswer};
use crate::store::{IdempotencyClaim, IdempotencyCompletion};

/// Runs `create` at most once for `key` in `account`. The first request with the key reserves an id and
/// binds the key to it, then creates under that id and remembers its answer; a retry with the same body gets
/// that answer again (`Idempotent-Replayed: true`), one while the first still runs gets 409, one with
/// another body 422. A request that ends without knowing what it wrote (the store's answer lost, or its
/// deadline passed) leaves the key bound to its id, so the retry creates under the same id and finds what
/// the first attempt wrote there, if anything: one meter, whatever was lost on the way.
pub async fn create_once<F, Fut>(
    app: &App,
    account: &AccountId,
    key: &str,
    fingerprint: &str,
    create: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(MeterId) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let reserved = app.meters.reserve_id().await?;
    // The request cannot run past its deadline: the key is held no longer than that.
    let lease_until = now() + app.deadline;
    let meter_id = match app
        .idempotency
        .claim_idempotent(
            account,
            IdempotencyClaim {
                key,
                fingerprint,
                reserved,
                lease_until,
                now: now(),
            },
        )
        .await?
    {
        Claim::Claimed { meter_id } => meter_id,
        Claim::Completed(answer) => return replay(answer),
        Claim::InProgress => return Err(ApiError::IdempotencyInProgress),
        Claim::OtherBody => return Err(ApiError::IdempotencyKeyReused),
    };
    match create(meter_id).await {
        Ok(response) => {
            let answer = remembered(&response);
            if let Err(error) = app
                .idempotency
                .complete_idempotent(
                    account,
                    IdempotencyCompletion {
                        key,
                        fingerprint,
                        meter_id,
                        answer: &answer,
                        now: now(),
                    },
                )
                .await
            {
                // The meter exists; only the replay is lost: a retry finds the meter under the key's id.
                tracing::error!(%error, "the answer of an idempotent create could not be remembered");
            }
            Ok(response)
        }
        Err(error) => {
            // Whatever the create wrote is under the key's id: a retry may go ahead at once and finds it.
            if let Err(ending) = app
                .idempotency
                .end_idempotent_lease(account, key, now())
                .await
            {
                tracing::error!(error = %ending, "an idempotency key's lease could not be ended");
            }
            Err(error)
        }
    }
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
