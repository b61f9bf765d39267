//! One deadline per request, covering every store call: a DynamoDB that accepts connections and never
//! answers (frozen) gets the caller a 503 in the envelope when the deadline passes, never a hang into the
//! function's timeout; inside Lambda the invocation's own deadline caps it.

use std::time::{Duration, Instant};

use lambda_http::RequestExt;
use meters::auth::Authenticator;
use meters::store::DynamoDbStore;
use meters::store::dynamodb::DynamoDbConfig;
use meters::{App, Endpoint};
use meters_testkit::tokens::{account, hs256_config, token_for};
use meters_testkit::{ACCOUNT, HttpEvent, TEST_SECRET};

/// A DynamoDB endpoint that takes connections into its backlog and never reads or answers them.
async fn frozen_dynamodb() -> (std::net::TcpListener, DynamoDbStore) {
    let frozen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = DynamoDbConfig {
        table_name: "meters-frozen".into(),
        endpoint: Some(format!("http://{}", frozen.local_addr().unwrap())),
        extra_roots: None,
    };
    let store = DynamoDbStore::new(
        meters::store::dynamodb::dynamodb_client(&config).await,
        "meters-frozen",
    );
    (frozen, store)
}

fn list_request() -> lambda_http::Request {
    let event = HttpEvent::new("GET", "/api/v1/meters")
        .query(&format!("account_id={ACCOUNT}"))
        .bearer(&token_for(TEST_SECRET, &[account(ACCOUNT)]));
    meters::runtime::request_from_event(&event.http_api().to_string()).unwrap()
}

#[tokio::test]
async fn a_frozen_store_gets_a_503_when_the_request_deadline_passes() {
    let (_frozen, store) = frozen_dynamodb().await;
    let app = App::new(
        store,
        Authenticator::new(&hs256_config(TEST_SECRET)).unwrap(),
    )
    .with_deadline(Duration::from_millis(700));
    let started = Instant::now();
    let response = Endpoint::ListMeters.handle(&app, list_request()).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("the request did not finish within its deadline of 700 ms; request id "),
        "{body}"
    );
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
}

#[tokio::test]
async fn the_lambda_invocation_deadline_caps_a_longer_configured_one() {
    let (_frozen, store) = frozen_dynamodb().await;
    let app = App::new(
        store,
        Authenticator::new(&hs256_config(TEST_SECRET)).unwrap(),
    )
    .with_deadline(Duration::from_secs(60));
    let mut context = lambda_http::Context::default();
    let invocation_ends = std::time::SystemTime::now() + Duration::from_millis(1500);
    context.deadline = invocation_ends
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let started = Instant::now();
    let response = Endpoint::ListMeters
        .handle(&app, list_request().with_lambda_context(context))
        .await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    // Answered with the 500 ms margin before the invocation's end, not after 60 s.
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(1450),
        "{waited:?}"
    );
}
