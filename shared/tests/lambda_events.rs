//! The handlers fed real Lambda event JSON (API Gateway HTTP API v2, REST API v1, ALB, function URL),
//! parsed by `lambda_http` exactly as in a deployed function.

use std::time::Duration;

use lambda_http::Request;
use meters::auth::{Authenticator, TokenIssuer};
use meters::config::AuthConfig;
use meters::meter::AccountId;
use meters::store::EmbeddedStore;
use meters::{App, Endpoint};
use serde_json::{Value, json};

const SECRET: &str = "event-test-secret-of-at-least-32-bytes";
const ACCOUNT: &str = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22";

fn app() -> App {
    App::new(
        EmbeddedStore::in_memory().unwrap(),
        Authenticator::new(&auth()).unwrap(),
    )
}

fn auth() -> AuthConfig {
    AuthConfig::from_lookup(|name| (name == "JWT_SECRET").then(|| SECRET.to_owned())).unwrap()
}

fn token() -> String {
    TokenIssuer::new(&auth())
        .unwrap()
        .issue(
            &[AccountId::parse(ACCOUNT).unwrap()],
            Duration::from_secs(300),
        )
        .unwrap()
}

/// An API Gateway HTTP API (payload 2.0) event.
fn http_api_event(
    method: &str,
    route: &str,
    raw_path: &str,
    query: &str,
    body: Option<(&str, bool)>,
) -> String {
    let id = raw_path
        .rsplit('/')
        .next()
        .filter(|segment| *segment != "meters");
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {"authorization": format!("Bearer {}", token()), "content-type": "application/json", "host": "abc123.execute-api.eu-west-1.amazonaws.com"},
        "pathParameters": id.map(|id| json!({"id": id})),
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123", "requestId": "req-v2", "routeKey": format!("{method} {route}"), "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1795600000000u64,
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test"}
        },
        "body": body.map(|(text, _)| text),
        "isBase64Encoded": body.is_some_and(|(_, encoded)| encoded)
    })
    .to_string()
}

/// An API Gateway REST API (payload 1.0) event.
fn rest_api_event(
    method: &str,
    path: &str,
    id: Option<&str>,
    query: Option<Value>,
    body: Option<(&str, bool)>,
) -> String {
    json!({
        "resource": if id.is_some() { "/api/v1/meters/{id}" } else { "/api/v1/meters" },
        "path": path,
        "httpMethod": method,
        "headers": {"Authorization": format!("Bearer {}", token()), "Content-Type": "application/json", "Host": "abc123.execute-api.eu-west-1.amazonaws.com"},
        "multiValueHeaders": {"Authorization": [format!("Bearer {}", token())], "Content-Type": ["application/json"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": query.as_ref().map(|q| {
            q.as_object().unwrap().iter().map(|(k, v)| (k.clone(), json!([v]))).collect::<serde_json::Map<_, _>>()
        }),
        "pathParameters": id.map(|id| json!({"id": id})),
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "r1", "stage": "prod", "requestId": "req-v1",
            "identity": {"sourceIp": "203.0.113.7"}, "resourcePath": "/api/v1/meters", "httpMethod": method, "apiId": "abc123"
        },
        "body": body.map(|(text, _)| text),
        "isBase64Encoded": body.is_some_and(|(_, encoded)| encoded)
    })
    .to_string()
}

fn request(event: &str) -> Request {
    meters::lambda::request_from_event(event).expect("the event parses")
}

async fn call(app: &App, endpoint: Endpoint, event: &str) -> (u16, Value) {
    let response = endpoint.handle(app, request(event)).await;
    let status = response.status().as_u16();
    let body = response.body().as_ref();
    (
        status,
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body).unwrap()
        },
    )
}

fn create_body(name: &str) -> String {
    json!({"account_id": ACCOUNT, "name": name, "serial_number": format!("SN-{name}")}).to_string()
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn http_api_events_reach_every_endpoint() {
    let app = app();
    let body = create_body("v2");
    let (status, created) = call(
        &app,
        Endpoint::CreateMeter,
        &http_api_event(
            "POST",
            "/api/v1/meters",
            "/api/v1/meters",
            "",
            Some((&body, false)),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/meters/{id}");
    let query = format!("account_id={ACCOUNT}");

    let (status, read) = call(
        &app,
        Endpoint::GetMeter,
        &http_api_event("GET", "/api/v1/meters/{id}", &path, &query, None),
    )
    .await;
    assert_eq!((status, &read["data"]), (200, &created["data"]));

    let update = json!({"account_id": ACCOUNT, "location": "Roof"}).to_string();
    let (status, updated) = call(
        &app,
        Endpoint::UpdateMeter,
        &http_api_event(
            "PUT",
            "/api/v1/meters/{id}",
            &path,
            "",
            Some((&update, false)),
        ),
    )
    .await;
    assert_eq!(
        (status, updated["data"]["location"].as_str()),
        (200, Some("Roof"))
    );

    let list_query = format!("account_id={ACCOUNT}&sortBy=name&sortOrder=desc&limit=5");
    let (status, listed) = call(
        &app,
        Endpoint::ListMeters,
        &http_api_event("GET", "/api/v1/meters", "/api/v1/meters", &list_query, None),
    )
    .await;
    assert_eq!((status, listed["count"].as_u64()), (200, Some(1)));

    let (status, deleted) = call(
        &app,
        Endpoint::DeleteMeter,
        &http_api_event("DELETE", "/api/v1/meters/{id}", &path, &query, None),
    )
    .await;
    assert_eq!((status, deleted), (204, Value::Null));
}

#[tokio::test]
async fn rest_api_events_with_base64_bodies_reach_create_and_get() {
    let app = app();
    let encoded = base64(&create_body("v1"));
    let (status, created) = call(
        &app,
        Endpoint::CreateMeter,
        &rest_api_event("POST", "/api/v1/meters", None, None, Some((&encoded, true))),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_i64().unwrap().to_string();
    let event = rest_api_event(
        "GET",
        &format!("/api/v1/meters/{id}"),
        Some(&id),
        Some(json!({"account_id": ACCOUNT})),
        None,
    );
    let (status, read) = call(&app, Endpoint::GetMeter, &event).await;
    assert_eq!((status, read["data"]["name"].as_str()), (200, Some("v1")));
}

#[tokio::test]
async fn a_base64_body_that_does_not_decode_is_a_400_not_a_crash() {
    let app = app();
    let event = http_api_event(
        "POST",
        "/api/v1/meters",
        "/api/v1/meters",
        "",
        Some(("***not base64***", true)),
    );
    let (status, body) = call(&app, Endpoint::CreateMeter, &event).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "body: is marked base64-encoded but is not valid base64"
    );
}

#[tokio::test]
async fn a_caller_cannot_forge_the_undecodable_body_marker() {
    let app = app();
    let body = create_body("forged");
    let mut event: Value = serde_json::from_str(&http_api_event(
        "POST",
        "/api/v1/meters",
        "/api/v1/meters",
        "",
        Some((&body, false)),
    ))
    .unwrap();
    event["headers"]["x-meters-undecodable-body"] = json!("1");
    let (status, _) = call(&app, Endpoint::CreateMeter, &event.to_string()).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn without_path_parameters_the_id_comes_from_the_raw_path() {
    // Function URLs and `cargo lambda watch` send no pathParameters.
    let app = app();
    let body = create_body("url");
    call(
        &app,
        Endpoint::CreateMeter,
        &http_api_event(
            "POST",
            "/api/v1/meters",
            "/api/v1/meters",
            "",
            Some((&body, false)),
        ),
    )
    .await;
    let mut event: Value = serde_json::from_str(&http_api_event(
        "GET",
        "/api/v1/meters/{id}",
        "/api/v1/meters/1",
        &format!("account_id={ACCOUNT}"),
        None,
    ))
    .unwrap();
    event.as_object_mut().unwrap().remove("pathParameters");
    let (status, read) = call(&app, Endpoint::GetMeter, &event.to_string()).await;
    assert_eq!((status, read["data"]["id"].as_i64()), (200, Some(1)));
}

#[tokio::test]
async fn alb_events_are_served_too() {
    let app = app();
    let event = json!({
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/meters/abc"}},
        "httpMethod": "GET",
        "path": "/api/v1/meters",
        "queryStringParameters": {"account_id": ACCOUNT},
        "headers": {"authorization": format!("Bearer {}", token()), "host": "meters.example"},
        "body": "",
        "isBase64Encoded": false
    });
    let (status, listed) = call(&app, Endpoint::ListMeters, &event.to_string()).await;
    assert_eq!(
        (status, listed["count"].as_u64()),
        (200, Some(0)),
        "{listed}"
    );
}

#[tokio::test]
async fn errors_carry_the_lambda_request_id() {
    let app = app();
    let mut event: Value = serde_json::from_str(&http_api_event(
        "GET",
        "/api/v1/meters",
        "/api/v1/meters",
        "",
        None,
    ))
    .unwrap();
    event["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let response = Endpoint::ListMeters
        .handle(&app, request(&event.to_string()))
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert!(response.headers().contains_key("x-request-id"));
}
