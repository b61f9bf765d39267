//! Each function binary, started as Lambda starts it, serves API Gateway events end to end against
//! DynamoDB Local; a function without its configuration refuses to start, saying why; and nothing a
//! function logs carries its secret or a caller's token.

use std::path::Path;

use meters_testkit::function::{Function, GatewayResponse, invoke};
use meters_testkit::runtime_api::RuntimeApi;
use meters_testkit::tokens::token_for;
use meters_testkit::{HttpEvent, TEST_SECRET, dynamodb};
use serde_json::{Value, json};

fn binary(name: &str) -> &'static Path {
    Path::new(match name {
        "list-meters" => env!("CARGO_BIN_EXE_list-meters"),
        "create-meter" => env!("CARGO_BIN_EXE_create-meter"),
        "get-meter" => env!("CARGO_BIN_EXE_get-meter"),
        "update-meter" => env!("CARGO_BIN_EXE_update-meter"),
        "delete-meter" => env!("CARGO_BIN_EXE_delete-meter"),
        other => panic!("no function {other}"),
    })
}

/// Starts the function, sends it one event, and returns its answer; the Lambda request id must come
/// back as the response's `x-request-id`.
async fn invoke_once(
    function: &str,
    env: &[(String, String)],
    event: HttpEvent,
) -> GatewayResponse {
    let mut runtime = RuntimeApi::start().await;
    let _function = Function::start(binary(function), &runtime, env);
    let (request_id, response) = invoke(&mut runtime, &event.http_api()).await;
    assert_eq!(
        response.headers["x-request-id"],
        request_id.as_str(),
        "{function}"
    );
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn each_function_binary_serves_an_api_gateway_event_against_dynamodb_local() {
    let (config, _) = dynamodb::fresh_table("meters-functions").await;
    let env = dynamodb::function_environment(&config, TEST_SECRET);
    let account = meters::meter::AccountId::from(uuid::Uuid::new_v4());
    let token = token_for(TEST_SECRET, &[account]);
    let query = format!("account_id={account}");
    let request = |method: &str, path: &str| HttpEvent::new(method, path).bearer(&token);

    let create = json!({"account_id": account.to_string(), "name": "Main incomer", "serial_number": "EM-1", "tariff_id": 12});
    let created = invoke_once(
        "create-meter",
        &env,
        request("POST", "/api/v1/meters").json_body(&create),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["data"]["id"].as_i64().expect("an id");
    assert_eq!(created.headers["location"], format!("/api/v1/meters/{id}"));
    let path = format!("/api/v1/meters/{id}");

    let read = invoke_once("get-meter", &env, request("GET", &path).query(&query)).await;
    assert_eq!(
        (read.status, &read.body["data"]),
        (200, &created.body["data"])
    );

    let update = json!({"account_id": account.to_string(), "location": "Roof", "tariff_id": null});
    let updated = invoke_once(
        "update-meter",
        &env,
        request("PUT", &path).json_body(&update),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(
        (
            updated.body["data"]["location"].as_str(),
            &updated.body["data"]["tariff_id"]
        ),
        (Some("Roof"), &Value::Null)
    );

    let listed = invoke_once(
        "list-meters",
        &env,
        request("GET", "/api/v1/meters").query(&query),
    )
    .await;
    assert_eq!(
        (listed.status, listed.body["count"].as_u64()),
        (200, Some(1))
    );
    assert_eq!(listed.body["data"][0], updated.body["data"]);

    let deleted = invoke_once("delete-meter", &env, request("DELETE", &path).query(&query)).await;
    assert_eq!((deleted.status, deleted.body), (204, Value::Null));
    let gone = invoke_once("get-meter", &env, request("GET", &path).query(&query)).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_without_its_configuration_refuses_to_start_naming_the_variable() {
    let runtime = RuntimeApi::start().await;
    for (missing, env) in [
        ("JWT_SECRET", vec![("TABLE_NAME", "meters")]),
        ("TABLE_NAME", vec![("JWT_SECRET", TEST_SECRET)]),
    ] {
        let (succeeded, logs) =
            Function::start(binary("get-meter"), &runtime, &env).wait_for_exit();
        assert!(!succeeded, "started without {missing}");
        let line = logs
            .lines()
            .find(|line| line.contains("invalid configuration"))
            .unwrap_or_else(|| panic!("no log line in {logs}"));
        assert!(line.contains(missing), "{line}");
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_never_logs_its_secret_when_refusing_to_start() {
    let runtime = RuntimeApi::start().await;
    let (_, logs) = Function::start(
        binary("list-meters"),
        &runtime,
        &[
            ("TABLE_NAME", "meters"),
            ("JWT_SECRET", "short-secret-value"),
        ],
    )
    .wait_for_exit();
    assert!(logs.contains("JWT_SECRET"), "{logs}");
    assert!(!logs.contains("short-secret-value"), "{logs}");
}

/// A served request that fails inside (DynamoDB unreachable, so the error and its detail are logged)
/// and one refused at the door: the logs name the requests, never the secret, the token or the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_never_logs_its_secret_a_token_or_a_body_while_serving() {
    let env = dynamodb::function_environment(&dynamodb::unreachable(), TEST_SECRET);
    let account = meters::meter::AccountId::from(uuid::Uuid::new_v4());
    let token = token_for(TEST_SECRET, &[account]);
    let body = json!({"account_id": account.to_string(), "name": "private-meter-name", "serial_number": "SN-PRIVATE-42"});

    let mut runtime = RuntimeApi::start().await;
    let function = Function::start(binary("create-meter"), &runtime, &env);
    let create = HttpEvent::new("POST", "/api/v1/meters")
        .bearer(&token)
        .json_body(&body);
    let (failed_id, failed) = invoke(&mut runtime, &create.http_api()).await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    let forged = create.bearer(&format!("{token}x"));
    let (_, refused) = invoke(&mut runtime, &forged.http_api()).await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    let (_, logs) = function.stop();
    assert!(
        logs.contains(&failed_id),
        "the failure is logged under its request id: {logs}"
    );
    for private in [
        TEST_SECRET,
        token.as_str(),
        "private-meter-name",
        "SN-PRIVATE-42",
    ] {
        assert!(
            !logs.contains(private),
            "the logs carry `{private}`: {logs}"
        );
    }
}

/// Events that once aborted the process inside lambda_http: the real binary answers each with a 400 and
/// keeps serving the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_answers_hostile_events_and_keeps_serving() {
    let env = dynamodb::function_environment(&dynamodb::unreachable(), TEST_SECRET);
    let token = token_for(
        TEST_SECRET,
        &[meters::meter::AccountId::from(uuid::Uuid::new_v4())],
    );
    let mut runtime = RuntimeApi::start().await;
    let _function = Function::start(binary("list-meters"), &runtime, &env);
    let hostile = [
        ("host", "example.com:99999"),
        ("host", "a^b.example"),
        ("host", "exa mple.com"),
        ("x-forwarded-proto", "1nvalid"),
    ];
    for (header, value) in hostile {
        let event = HttpEvent::new("GET", "/api/v1/meters")
            .bearer(&token)
            .header(header, value);
        for shape in [event.http_api(), event.rest_api(), event.alb()] {
            let (_, response) = invoke(&mut runtime, &shape).await;
            assert_eq!(response.status, 400, "{header}: {value}: {}", response.body);
        }
    }
}
