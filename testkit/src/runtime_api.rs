//! A Lambda Runtime API on loopback, just enough of it to drive a real function binary: it hands out
//! queued events on `next` and records what the function answers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use tokio::sync::{Notify, mpsc};

/// What the function posted back for one invocation.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "error outcomes are read through Debug, in failure messages"
)]
pub enum Outcome {
    Response { request_id: String, body: String },
    Error { request_id: String, body: String },
    InitError { body: String },
}

#[derive(Debug, Clone)]
struct Shared {
    events: Arc<Mutex<VecDeque<(String, String)>>>,
    queued: Arc<Notify>,
    outcomes: mpsc::UnboundedSender<(Instant, Outcome)>,
    polls: mpsc::UnboundedSender<Instant>,
}

#[derive(Debug)]
pub struct RuntimeApi {
    pub address: String,
    shared: Shared,
    outcomes: mpsc::UnboundedReceiver<(Instant, Outcome)>,
    polls: mpsc::UnboundedReceiver<Instant>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (sender, outcomes) = mpsc::unbounded_channel();
        let (poll_sender, polls) = mpsc::unbounded_channel();
        let shared = Shared {
            events: Arc::default(),
            queued: Arc::default(),
            outcomes: sender,
            polls: poll_sender,
        };
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address").to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            address,
            shared,
            outcomes,
            polls,
        }
    }

    /// The variables Lambda gives a function (128 MB, JSON logs), pointing it at this Runtime API.
    pub fn lambda_environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", "meters".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/meters".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ]
    }

    /// Queues an event; returns the request id it will carry.
    pub fn invoke(&self, event: String) -> String {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.shared
            .events
            .lock()
            .expect("not poisoned")
            .push_back((request_id.clone(), event));
        self.shared.queued.notify_one();
        request_id
    }

    /// The next thing the function posted, within `timeout`.
    pub async fn outcome(&mut self, timeout: Duration) -> Option<Outcome> {
        self.timed_outcome(timeout)
            .await
            .map(|(_, outcome)| outcome)
    }

    /// The same, with when it arrived.
    pub async fn timed_outcome(&mut self, timeout: Duration) -> Option<(Instant, Outcome)> {
        tokio::time::timeout(timeout, self.outcomes.recv())
            .await
            .ok()
            .flatten()
    }

    /// When the function next asked for an event (the first time: the end of its init), within `timeout`.
    pub async fn next_poll(&mut self, timeout: Duration) -> Option<Instant> {
        tokio::time::timeout(timeout, self.polls.recv())
            .await
            .ok()
            .flatten()
    }
}

async fn next(State(shared): State<Shared>) -> (HeaderMap, String) {
    let _ = shared.polls.send(Instant::now());
    loop {
        let notified = shared.queued.notified();
        if let Some((request_id, event)) = shared.events.lock().expect("not poisoned").pop_front() {
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                + Duration::from_secs(10);
            let mut headers = HeaderMap::new();
            headers.insert(
                "lambda-runtime-aws-request-id",
                HeaderValue::from_str(&request_id).expect("a UUID"),
            );
            headers.insert(
                "lambda-runtime-deadline-ms",
                HeaderValue::from(deadline.as_millis() as u64),
            );
            // As X-Ray hands it over with Tracing: Active; the root is derived from the request id.
            let hex = request_id.replace('-', "");
            let trace = format!(
                "Root=1-{}-{};Parent={};Sampled=1",
                &hex[..8],
                &hex[8..32],
                &hex[16..32]
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_str(&trace).expect("a trace header"),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static(
                    "arn:aws:lambda:us-east-1:123456789012:function:meters-test",
                ),
            );
            return (headers, event);
        }
        notified.await;
    }
}

async fn response(
    State(shared): State<Shared>,
    Path(request_id): Path<String>,
    body: String,
) -> &'static str {
    let _ = shared
        .outcomes
        .send((Instant::now(), Outcome::Response { request_id, body }));
    "{}"
}

async fn error(
    State(shared): State<Shared>,
    Path(request_id): Path<String>,
    body: String,
) -> &'static str {
    let _ = shared
        .outcomes
        .send((Instant::now(), Outcome::Error { request_id, body }));
    "{}"
}

async fn init_error(State(shared): State<Shared>, body: String) -> &'static str {
    let _ = shared
        .outcomes
        .send((Instant::now(), Outcome::InitError { body }));
    "{}"
}
