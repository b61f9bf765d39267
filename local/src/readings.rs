//! Readings on the local server: `POST /local/readings`, from this machine only, takes what the readings queue
//! takes in the stack (docs/readings.md): a message (one reading, or an array of them), or a file of them, one
//! message per line (JSON Lines). Each reading is applied as the readings function applies it; what can
//! never apply comes back in the answer with its reason (the local dead-letter queue), and is logged.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use meters::App;
use meters::domain::reading::Reading;
use meters::readings::{DeadLetterError, DeadLetters, Parked, ReadingsApplier};

/// The route, outside the API's paths.
pub const READINGS_PATH: &str = "/local/readings";
/// A file of readings may be larger than an API body: 8 MiB, some 60,000 readings.
const MAX_READINGS_BYTES: usize = 8 << 20;

/// The readings that could not apply, kept for the answer.
#[derive(Debug, Default)]
struct Answered(Mutex<Vec<Parked>>);

#[async_trait]
impl DeadLetters for Answered {
    async fn park(&self, parked: &[Parked]) -> Result<(), DeadLetterError> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(parked);
        Ok(())
    }
}

/// Answers `POST /local/readings` from a loopback address: 200 with what became of the readings, 503 when
/// the store failed some (they may be sent again: readings are idempotent); 404 from anywhere else, and
/// 405 for another method.
pub(crate) async fn take_readings(app: &App, request: axum::extract::Request) -> Response {
    let from_this_machine = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    if !from_this_machine {
        return answer(StatusCode::NOT_FOUND, "no such route".into());
    }
    if request.method() != axum::http::Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "POST readings here".into());
    }
    // Not a type a browser page may send without a preflight, which this route never approves (it is
    // routed before CORS): a web page cannot feed readings.
    let typed = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("application/x-ndjson")
        });
    if !typed {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send Content-Type: application/json (a message) or application/x-ndjson (one per line)".into(),
        );
    }
    let text = match Limited::new(request.into_body(), MAX_READINGS_BYTES)
        .collect()
        .await
    {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("at most {MAX_READINGS_BYTES} bytes of readings at once"),
            );
        }
    };
    // One message, or one per line.
    let messages: Vec<&str> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(_) => vec![text.as_str()],
        Err(_) => text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect(),
    };
    let ids: Vec<String> = (1..=messages.len()).map(|n| format!("line {n}")).collect();
    let parked = Arc::new(Answered::default());
    let applier = ReadingsApplier::new(Arc::clone(&app.readings), Arc::clone(&parked) as _);
    let (tally, retry) = applier
        .apply_messages(
            ids.iter()
                .map(String::as_str)
                .zip(messages.into_iter().map(Reading::all_in))
                .collect(),
            None,
        )
        .await;
    tracing::info!(
        messages = tally.messages,
        readings = tally.readings,
        applied = tally.applied,
        not_later = tally.not_later,
        parked = tally.parked,
        retried = tally.retried,
        "readings"
    );
    let parked = std::mem::take(&mut *parked.0.lock().unwrap_or_else(|p| p.into_inner()));
    let status = if retry.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        serde_json::json!({"tally": tally, "parked": parked, "send_again": retry}),
    )
}

fn answer(status: StatusCode, message: String) -> Response {
    json(status, serde_json::json!({"error": message}))
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let headers = [(axum::http::header::CONTENT_TYPE, "application/json")];
    (status, headers, body.to_string()).into_response()
}
