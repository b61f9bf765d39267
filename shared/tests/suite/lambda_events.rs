//! The handlers fed real Lambda event JSON (API Gateway HTTP API v2, REST API v1, ALB, function URL),
//! parsed by `lambda_http` exactly as in a deployed function.

use lambda_http::{Request, RequestExt};
use meters::auth::Authenticator;
use meters::store::EmbeddedStore;
use meters::store::IdempotencyClaim;
use meters::{App, Endpoint};
use meters_testkit::tokens::{account, hs256_config, token_for};
use meters_testkit::{ACCOUNT, HttpEvent, TEST_SECRET};
use serde_json::{Value, json};

fn app() -> App {
    App::new(
        EmbeddedStore::in_memory().unwrap(),
        Authenticator::new(&hs256_config(TEST_SECRET)).unwrap(),
    )
}

/// A request from the test account's own token.
fn authorized(method: &str, path: &str) -> HttpEvent {
    HttpEvent::new(method, path).bearer(&token_for(TEST_SECRET, &[account(ACCOUNT)]))
}

fn request(event: &Value) -> Request {
    meters::runtime::request_from_event(&event.to_string()).expect("the event parses")
}

async fn call(app: &App, endpoint: Endpoint, event: &Value) -> (u16, Value) {
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

#[tokio::test]
async fn http_api_events_reach_every_endpoint() {
    let app = app();
    let create = authorized("POST", "/api/v1/meters").body(&create_body("v2"));
    let (status, created) = call(&app, Endpoint::CreateMeter, &create.http_api()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/meters/{id}");
    let query = format!("account_id={ACCOUNT}");

    let get = authorized("GET", &path).query(&query);
    let (status, read) = call(&app, Endpoint::GetMeter, &get.http_api()).await;
    assert_eq!((status, &read["data"]), (200, &created["data"]));

    let update =
        authorized("PUT", &path).json_body(&json!({"account_id": ACCOUNT, "location": "Roof"}));
    let (status, updated) = call(&app, Endpoint::UpdateMeter, &update.http_api()).await;
    assert_eq!(
        (status, updated["data"]["location"].as_str()),
        (200, Some("Roof"))
    );

    let list = authorized("GET", "/api/v1/meters").query(&format!(
        "account_id={ACCOUNT}&sortBy=name&sortOrder=desc&limit=5"
    ));
    let (status, listed) = call(&app, Endpoint::ListMeters, &list.http_api()).await;
    assert_eq!((status, listed["count"].as_u64()), (200, Some(1)));
    assert_eq!(listed["data"][0], updated["data"]);

    let delete = authorized("DELETE", &path).query(&query);
    let (status, deleted) = call(&app, Endpoint::DeleteMeter, &delete.http_api()).await;
    assert_eq!((status, deleted), (204, Value::Null));
}

#[tokio::test]
async fn rest_api_events_with_base64_bodies_reach_create_and_get() {
    let app = app();
    let create = authorized("POST", "/api/v1/meters").base64_body(&create_body("v1"));
    let (status, created) = call(&app, Endpoint::CreateMeter, &create.rest_api()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let get =
        authorized("GET", &format!("/api/v1/meters/{id}")).query(&format!("account_id={ACCOUNT}"));
    let (status, read) = call(&app, Endpoint::GetMeter, &get.rest_api()).await;
    assert_eq!((status, read["data"]["name"].as_str()), (200, Some("v1")));
}

#[tokio::test]
async fn a_base64_body_that_does_not_decode_is_a_400_not_a_crash() {
    let app = app();
    let event = authorized("POST", "/api/v1/meters").marked_base64("***not base64***");
    for shape in [event.http_api(), event.rest_api(), event.alb()] {
        let (status, body) = call(&app, Endpoint::CreateMeter, &shape).await;
        assert_eq!(status, 400, "{shape}");
        assert_eq!(
            body["error"],
            "body: is marked base64-encoded but is not valid base64"
        );
    }
}

#[tokio::test]
async fn a_caller_cannot_forge_the_undecodable_body_marker() {
    let app = app();
    let event = authorized("POST", "/api/v1/meters")
        .body(&create_body("forged"))
        .header("x-meters-undecodable-body", "1");
    let (status, body) = call(&app, Endpoint::CreateMeter, &event.http_api()).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn without_path_parameters_the_id_comes_from_the_raw_path() {
    // Function URLs and `cargo lambda watch` send no pathParameters.
    let app = app();
    let create = authorized("POST", "/api/v1/meters").body(&create_body("url"));
    let (status, _) = call(&app, Endpoint::CreateMeter, &create.http_api()).await;
    assert_eq!(status, 201);
    let get = authorized("GET", "/api/v1/meters/1")
        .query(&format!("account_id={ACCOUNT}"))
        .without_path_parameters();
    assert!(get.http_api().get("pathParameters").is_none());
    let (status, read) = call(&app, Endpoint::GetMeter, &get.http_api()).await;
    assert_eq!((status, read["data"]["id"].as_i64()), (200, Some(1)));
}

#[tokio::test]
async fn alb_events_are_served_too() {
    let app = app();
    let create = authorized("POST", "/api/v1/meters").body(&create_body("alb"));
    let (status, _) = call(&app, Endpoint::CreateMeter, &create.alb()).await;
    assert_eq!(status, 201);
    let list = authorized("GET", "/api/v1/meters").query(&format!("account_id={ACCOUNT}"));
    let (status, listed) = call(&app, Endpoint::ListMeters, &list.alb()).await;
    assert_eq!(
        (
            status,
            listed["count"].as_u64(),
            listed["data"][0]["name"].as_str()
        ),
        (200, Some(1), Some("alb")),
        "{listed}"
    );
}

#[tokio::test]
async fn errors_carry_the_lambda_request_id() {
    let app = app();
    let event = HttpEvent::new("GET", "/api/v1/meters").query(&format!("account_id={ACCOUNT}"));
    let mut context = lambda_http::Context::default();
    context.request_id = "lambda-request-7".into();
    let request = request(&event.http_api()).with_lambda_context(context);
    let response = Endpoint::ListMeters.handle(&app, request).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.headers()["x-request-id"], "lambda-request-7");
}

/// Each of these once aborted the function inside lambda_http (`panic = "abort"`): now every event shape
/// is answered with a 400 naming what was wrong.
#[tokio::test]
async fn hostile_host_and_forwarding_headers_are_answered_400_in_every_event_shape() {
    let app = app();
    let cases = [
        ("host", "example.com:99999", "Host"),
        ("host", "a^b.example", "Host"),
        ("host", "exa mple.com", "Host"),
        ("x-forwarded-proto", "1nvalid", "X-Forwarded-Proto"),
    ];
    for (header, value, field) in cases {
        let event = authorized("GET", "/api/v1/meters")
            .query(&format!("account_id={ACCOUNT}"))
            .header(header, value);
        for shape in [event.http_api(), event.rest_api(), event.alb()] {
            let (status, body) = call(&app, Endpoint::ListMeters, &shape).await;
            assert_eq!(status, 400, "{header}: {value}: {body}");
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{field}: ")),
                "{body}"
            );
        }
    }
}

/// A REST API or ALB event whose query parameters make a URI longer than a URI may be (65,534 bytes) once
/// lambda_http writes them into it: 400 naming the query, not an aborted function.
#[tokio::test]
async fn a_rest_or_alb_query_too_long_for_a_uri_is_answered_400() {
    let app = app();
    let event = authorized("GET", "/api/v1/meters").query(&format!(
        "account_id={ACCOUNT}&sortBy={}",
        "n".repeat(70_000)
    ));
    for shape in [event.rest_api(), event.alb()] {
        let (status, body) = call(&app, Endpoint::ListMeters, &shape).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"], "query string: is not a valid URL query",
            "{body}"
        );
    }
}

#[tokio::test]
async fn ordinary_hosts_with_ports_and_forwarding_headers_are_served() {
    let app = app();
    for (host, proto) in [
        ("meters.example:8443", "https"),
        ("10.0.0.7", "http"),
        ("[::1]:3000", "HTTPS"),
    ] {
        let event = authorized("GET", "/api/v1/meters")
            .query(&format!("account_id={ACCOUNT}"))
            .header("host", host)
            .header("x-forwarded-proto", proto);
        for shape in [event.http_api(), event.rest_api(), event.alb()] {
            let (status, body) = call(&app, Endpoint::ListMeters, &shape).await;
            assert_eq!(status, 200, "{host} {proto}: {body}");
        }
    }
}

#[tokio::test]
async fn a_caller_cannot_forge_the_rejected_event_marker() {
    let app = app();
    let event = authorized("GET", "/api/v1/meters")
        .query(&format!("account_id={ACCOUNT}"))
        .header("x-meters-rejected-event", "host");
    let (status, body) = call(&app, Endpoint::ListMeters, &event.http_api()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn put_and_post_refuse_query_parameters_naming_them() {
    let app = app();
    let create = authorized("POST", "/api/v1/meters")
        .query(&format!("account_id={}", meters_testkit::OTHER_ACCOUNT))
        .body(&create_body("query"));
    let (status, body) = call(&app, Endpoint::CreateMeter, &create.http_api()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "query string: unknown parameter `account_id`; this request takes none (send account_id in the body)"
    );
    let update = authorized("PUT", "/api/v1/meters/1")
        .query("sortby=x")
        .json_body(&json!({"account_id": ACCOUNT, "name": "n"}));
    let (status, body) = call(&app, Endpoint::UpdateMeter, &update.http_api()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("`sortby`"),
        "{body}"
    );
}

#[tokio::test]
async fn every_response_says_not_to_cache_it_or_sniff_its_type() {
    let app = app();
    let ok = authorized("GET", "/api/v1/meters").query(&format!("account_id={ACCOUNT}"));
    let refused = HttpEvent::new("GET", "/api/v1/meters");
    for event in [ok, refused] {
        let response = Endpoint::ListMeters
            .handle(&app, request(&event.http_api()))
            .await;
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
}

#[tokio::test]
async fn a_create_whose_idempotency_key_is_still_being_processed_gets_409() {
    let app = app();
    let body = create_body("in flight");
    // The first request with this key has claimed it and not finished.
    let now = meters::domain::meter::now();
    app.idempotency
        .claim_idempotent(
            &account(ACCOUNT),
            IdempotencyClaim {
                key: "flight-1",
                fingerprint: &meters::http::request::body_fingerprint(body.as_bytes()),
                reserved: app.meters.reserve_id().await.unwrap(),
                lease_until: now + app.deadline,
                now,
            },
        )
        .await
        .unwrap();
    let retry = authorized("POST", "/api/v1/meters")
        .header("idempotency-key", "flight-1")
        .body(&body);
    let (status, answer) = call(&app, Endpoint::CreateMeter, &retry.http_api()).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        answer["error"],
        "a request with this Idempotency-Key is still being processed; retry it shortly"
    );
}
