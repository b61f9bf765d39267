//! EventBridge's `PutEvents`, captured on loopback: what a function under test publishes, reached through
//! the SDK's standard `AWS_ENDPOINT_URL_EVENTBRIDGE`. It can refuse an entry once, as EventBridge does
//! under throttling or an internal failure, to show that the publisher sends it again.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

type Refusal = Box<dyn Fn(&Value) -> bool + Send>;

#[derive(Default)]
struct Captured {
    /// Every entry received, refused or not, in order.
    received: Vec<Value>,
    /// The entries accepted: the events on the bus.
    accepted: Vec<Value>,
    /// Refuse the first entry this matches, once.
    refuse_once: Option<Refusal>,
}

#[derive(Clone)]
pub struct EventBridgeStub {
    pub url: String,
    captured: Arc<Mutex<Captured>>,
}

impl std::fmt::Debug for EventBridgeStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBridgeStub")
            .field("url", &self.url)
            .finish()
    }
}

impl EventBridgeStub {
    pub async fn start() -> Self {
        let captured = Arc::new(Mutex::new(Captured::default()));
        let router = axum::Router::new()
            .fallback(put_events)
            .with_state(Arc::clone(&captured));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, captured }
    }

    /// Refuses, once, the first entry for which `matches` holds (with `InternalFailure`).
    pub fn refuse_once(&self, matches: impl Fn(&Value) -> bool + Send + 'static) {
        self.captured.lock().expect("not poisoned").refuse_once = Some(Box::new(matches));
    }

    /// The events accepted so far: each entry with its `Detail` parsed.
    pub fn accepted(&self) -> Vec<Value> {
        self.captured.lock().expect("not poisoned").accepted.clone()
    }

    /// Every entry received so far, refused ones included.
    pub fn received(&self) -> Vec<Value> {
        self.captured.lock().expect("not poisoned").received.clone()
    }
}

async fn put_events(
    State(captured): State<Arc<Mutex<Captured>>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, HeaderMap, String) {
    let mut answer_headers = HeaderMap::new();
    answer_headers.insert(
        "content-type",
        "application/x-amz-json-1.1"
            .parse()
            .expect("a header value"),
    );
    if headers.get("x-amz-target").and_then(|v| v.to_str().ok()) != Some("AWSEvents.PutEvents") {
        let error = json!({"__type": "UnknownOperationException", "message": "only PutEvents"});
        return (StatusCode::BAD_REQUEST, answer_headers, error.to_string());
    }
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut captured = captured.lock().expect("not poisoned");
    let mut results = Vec::new();
    let mut failed = 0;
    for entry in request["Entries"].as_array().cloned().unwrap_or_default() {
        let mut entry = entry;
        if let Some(detail) = entry["Detail"].as_str() {
            entry["Detail"] = serde_json::from_str(detail).unwrap_or(Value::Null);
        }
        captured.received.push(entry.clone());
        let refused = captured
            .refuse_once
            .as_ref()
            .is_some_and(|matches| matches(&entry));
        if refused {
            captured.refuse_once = None;
            failed += 1;
            results.push(json!({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}));
        } else {
            captured.accepted.push(entry);
            results.push(json!({"EventId": uuid::Uuid::new_v4().to_string()}));
        }
    }
    let answer = json!({"FailedEntryCount": failed, "Entries": results});
    (StatusCode::OK, answer_headers, answer.to_string())
}
