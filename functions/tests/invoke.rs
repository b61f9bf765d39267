//! Each function binary, started as Lambda starts it, serves API Gateway events end to end against
//! DynamoDB Local; a function without its configuration refuses to start, saying why; and nothing a
//! function logs carries its secret or a caller's token.

use std::path::Path;

use meters_testkit::fault_proxy::FaultProxy;
use meters_testkit::function::{Function, GatewayResponse, built_artefact, invoke};
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
    invoke_binary(binary(function), env, event).await
}

async fn invoke_binary(
    binary: &Path,
    env: &[(String, String)],
    event: HttpEvent,
) -> GatewayResponse {
    let function = binary.display().to_string();
    let mut runtime = RuntimeApi::start().await;
    let _function = Function::start(binary, &runtime, env);
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
    serve_each_route(&|function| binary(function).to_path_buf()).await;
}

/// What `sam build` put in .aws-sam/build, run as Lambda would run it: `scripts/sam-build-check` sets
/// METERS_ARTEFACTS to that folder and, for arm64 artefacts on another machine, METERS_ARTEFACT_RUNNER to
/// the emulator (`qemu-aarch64 -L /usr/aarch64-linux-gnu`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sam build and DynamoDB Local: run by scripts/sam-build-check"]
async fn the_built_artefacts_serve_each_route_against_dynamodb_local() {
    let wrappers = std::env::temp_dir().join(format!("meters-artefacts-{}", uuid::Uuid::new_v4()));
    let resolve = |function: &str| {
        let folder = match function {
            "list-meters" => "ListMetersFunction",
            "create-meter" => "CreateMeterFunction",
            "get-meter" => "GetMeterFunction",
            "update-meter" => "UpdateMeterFunction",
            "delete-meter" => "DeleteMeterFunction",
            other => panic!("no function {other}"),
        };
        built_artefact(folder, &wrappers)
    };
    serve_each_route(&resolve).await;
    let _ = std::fs::remove_dir_all(wrappers);
}

/// Create, read, update, list, delete and read again, each through its own function binary.
async fn serve_each_route(binary_of: &dyn Fn(&str) -> std::path::PathBuf) {
    let (config, _) = dynamodb::fresh_table("meters-functions").await;
    let env = dynamodb::function_environment(&config, TEST_SECRET);
    let account = meters::domain::meter::AccountId::from(uuid::Uuid::new_v4());
    let token = token_for(TEST_SECRET, &[account]);
    let query = format!("account_id={account}");
    let request = |method: &str, path: &str| HttpEvent::new(method, path).bearer(&token);

    let create = json!({"account_id": account.to_string(), "name": "Main incomer", "serial_number": "EM-1", "tariff_id": 12});
    let created = invoke_binary(
        &binary_of("create-meter"),
        &env,
        request("POST", "/api/v1/meters").json_body(&create),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["data"]["id"].as_i64().expect("an id");
    assert_eq!(created.headers["location"], format!("/api/v1/meters/{id}"));
    let path = format!("/api/v1/meters/{id}");

    let read = invoke_binary(
        &binary_of("get-meter"),
        &env,
        request("GET", &path).query(&query),
    )
    .await;
    assert_eq!(
        (read.status, &read.body["data"]),
        (200, &created.body["data"])
    );

    let update = json!({"account_id": account.to_string(), "location": "Roof", "tariff_id": null});
    let updated = invoke_binary(
        &binary_of("update-meter"),
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

    let listed = invoke_binary(
        &binary_of("list-meters"),
        &env,
        request("GET", "/api/v1/meters").query(&query),
    )
    .await;
    assert_eq!(
        (listed.status, listed.body["count"].as_u64()),
        (200, Some(1))
    );
    assert_eq!(listed.body["data"][0], updated.body["data"]);

    let deleted = invoke_binary(
        &binary_of("delete-meter"),
        &env,
        request("DELETE", &path).query(&query),
    )
    .await;
    assert_eq!((deleted.status, deleted.body), (204, Value::Null));
    let gone = invoke_binary(
        &binary_of("get-meter"),
        &env,
        request("GET", &path).query(&query),
    )
    .await;
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

/// The secret, the token and the private values of a test's request body appear in no log line.
fn assert_nothing_private_in(logs: &str, token: &str) {
    for private in [TEST_SECRET, token, "private-meter-name", "SN-PRIVATE-42"] {
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
        &[meters::domain::meter::AccountId::from(uuid::Uuid::new_v4())],
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

/// The function's stdout and stderr, each JSON line parsed: the request lines and the EMF documents.
fn json_lines(logs: &str) -> (Vec<Value>, Vec<Value>) {
    let parsed: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let requests = parsed
        .iter()
        .filter(|line| line["message"] == "request")
        .cloned()
        .collect();
    let metrics = parsed
        .iter()
        .filter(|line| line.get("_aws").is_some())
        .cloned()
        .collect();
    (requests, metrics)
}

/// The rules of CloudWatch's Embedded Metric Format specification that CloudWatch enforces when it
/// extracts metrics: a millisecond timestamp, directives with a namespace, dimension sets of at most 30
/// keys each naming a string member, and metrics each naming a numeric member, with a unit CloudWatch knows.
fn assert_valid_emf(document: &Value) {
    const UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let metadata = &document["_aws"];
    let timestamp = metadata["Timestamp"]
        .as_u64()
        .expect("_aws.Timestamp is an integer");
    assert!(
        timestamp > 1_600_000_000_000,
        "milliseconds since the epoch: {timestamp}"
    );
    let directives = metadata["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty());
    for directive in directives {
        let namespace = directive["Namespace"].as_str().expect("a Namespace");
        assert!((1..=255).contains(&namespace.len()), "{namespace}");
        for set in directive["Dimensions"].as_array().expect("Dimensions") {
            let keys = set.as_array().expect("a dimension set is an array");
            assert!(keys.len() <= 30);
            for key in keys {
                let key = key.as_str().expect("a dimension key is a string");
                assert!(
                    document[key].is_string(),
                    "dimension {key} names a string member"
                );
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics");
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        let mut names = std::collections::HashSet::new();
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric Name");
            assert!(names.insert(name), "metric {name} twice");
            assert!(
                document[name].is_number(),
                "metric {name} names a number: {document}"
            );
            if let Some(unit) = metric.get("Unit") {
                assert!(UNITS.contains(&unit.as_str().unwrap_or("")), "unit {unit}");
            }
        }
    }
}

/// As Lambda runs it (AWS_LAMBDA_LOG_FORMAT=JSON): a failed request and a refused one each write one
/// log line in Powertools' keys, carrying the route, status, account and failure, and one EMF document
/// beside it; the first request is the cold start; nothing logged carries the token, secret or body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_writes_one_log_line_in_powertools_keys_and_its_metrics() {
    let env = dynamodb::function_environment(&dynamodb::unreachable(), TEST_SECRET);
    let account = meters::domain::meter::AccountId::from(uuid::Uuid::new_v4());
    let token = token_for(TEST_SECRET, &[account]);
    let body = json!({"account_id": account.to_string(), "name": "private-meter-name", "serial_number": "SN-PRIVATE-42"});
    let mut runtime = RuntimeApi::start().await;
    let function = Function::start(binary("create-meter"), &runtime, &env);
    let create = HttpEvent::new("POST", "/api/v1/meters")
        .bearer(&token)
        .json_body(&body);
    let (failed_id, failed) = invoke(&mut runtime, &create.http_api()).await;
    assert_eq!(failed.status, 503);
    let (refused_id, refused) = invoke(
        &mut runtime,
        &create.bearer(&format!("{token}x")).http_api(),
    )
    .await;
    assert_eq!(refused.status, 401);
    let (_, logs) = function.stop();

    let (requests, metrics) = json_lines(&logs);
    assert_eq!((requests.len(), metrics.len()), (2, 2), "{logs}");
    let (first, second) = (&requests[0], &requests[1]);
    for key in [
        "timestamp",
        "level",
        "message",
        "service",
        "cold_start",
        "function_name",
        "function_request_id",
        "xray_trace_id",
        "correlation_id",
        "route",
        "method",
        "status",
        "latency_ms",
        "error_code",
        "consumed_rcu",
        "consumed_wcu",
    ] {
        assert!(
            first.get(key).is_some() && second.get(key).is_some(),
            "{key} in {first} and {second}"
        );
    }
    assert_eq!(
        (
            &first["level"],
            &first["status"],
            &first["error_code"],
            &first["cold_start"]
        ),
        (
            &json!("ERROR"),
            &json!(503),
            &json!("store_unavailable"),
            &json!(true)
        )
    );
    assert_eq!(first["function_request_id"], failed_id.as_str());
    assert_eq!(first["account_id"], account.to_string());
    // Who made it: the token's subject (development tokens are `meters-local-developer`), never the token.
    assert_eq!(first["sub"], "meters-local-developer", "{logs}");
    assert!(
        second.get("sub").is_none(),
        "a refused token names nobody: {logs}"
    );
    assert_eq!(
        (&first["method"], &first["route"]),
        (&json!("POST"), &json!("/api/v1/meters"))
    );
    assert_eq!(first["service"], "meters-api");
    assert!(
        first["xray_trace_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("1-"))
    );
    assert!(
        first["timestamp"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );
    assert!(
        first["error"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty())
    );
    assert_eq!(
        (
            &second["level"],
            &second["status"],
            &second["error_code"],
            &second["cold_start"]
        ),
        (
            &json!("INFO"),
            &json!(401),
            &json!("unauthenticated"),
            &json!(false)
        )
    );
    assert_eq!(second["function_request_id"], refused_id.as_str());
    for document in &metrics {
        assert_valid_emf(document);
    }
    assert_eq!(
        (&metrics[0]["route"], &metrics[0]["status_class"]),
        (&json!("POST /api/v1/meters"), &json!("5xx"))
    );
    assert_eq!(
        (
            &metrics[0]["Requests"],
            &metrics[0]["ColdStart"],
            &metrics[0]["StoreUnavailable"]
        ),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(
        (&metrics[1]["ColdStart"], &metrics[1]["StoreUnavailable"]),
        (&json!(0), &json!(0))
    );
    assert!(
        metrics
            .iter()
            .all(|document| document.get("level").is_none())
    );
    assert_nothing_private_in(&logs, &token);
}

/// A served request reports the DynamoDB capacity it consumed; at WARN only failures are logged, while
/// metrics are still written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_served_request_logs_the_capacity_it_consumed_and_the_log_level_is_honoured() {
    let (config, _) = dynamodb::fresh_table("meters-logs").await;
    let env = dynamodb::function_environment(&config, TEST_SECRET);
    let account = meters::domain::meter::AccountId::from(uuid::Uuid::new_v4());
    let token = token_for(TEST_SECRET, &[account]);
    let create = HttpEvent::new("POST", "/api/v1/meters")
        .bearer(&token)
        .json_body(
            &json!({"account_id": account.to_string(), "name": "logged", "serial_number": "SN-1"}),
        );
    let mut runtime = RuntimeApi::start().await;
    let function = Function::start(binary("create-meter"), &runtime, &env);
    assert_eq!(invoke(&mut runtime, &create.http_api()).await.1.status, 201);
    let (_, logs) = function.stop();
    let (requests, metrics) = json_lines(&logs);
    assert_eq!(requests.len(), 1, "{logs}");
    assert_eq!(requests[0]["status"], 201);
    assert!(
        requests[0]["consumed_wcu"]
            .as_f64()
            .is_some_and(|units| units > 0.0),
        "{logs}"
    );
    assert_eq!(metrics[0]["status_class"], "2xx");

    // The documented quieter setting: RUST_LOG (the template's LogLevel), which filters the log lines and
    // never the EMF documents; Lambda's own ApplicationLogLevel would drop those (docs/operating.md).
    let mut quiet = env.clone();
    quiet.push(("RUST_LOG".into(), "warn".into()));
    let mut runtime = RuntimeApi::start().await;
    let function = Function::start(binary("list-meters"), &runtime, &quiet);
    let list = HttpEvent::new("GET", "/api/v1/meters")
        .bearer(&token)
        .query(&format!("account_id={account}"));
    assert_eq!(invoke(&mut runtime, &list.http_api()).await.1.status, 200);
    let (_, logs) = function.stop();
    let (requests, metrics) = json_lines(&logs);
    assert_eq!((requests.len(), metrics.len()), (0, 1), "{logs}");
}

/// DynamoDB throttling, as DynamoDB answers it (`ProvisionedThroughputExceededException` on every attempt
/// the SDK makes): the caller gets 503 with `Retry-After`, nothing of the store in the body, and the
/// request line and metrics say the store throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_throttled_dynamodb_answers_503_with_retry_after_and_counts_store_throttled() {
    let (mut config, _) = dynamodb::fresh_table("meters-throttled").await;
    let proxy = FaultProxy::start(config.endpoint.as_deref().expect("DynamoDB Local")).await;
    config.endpoint = Some(proxy.endpoint.clone());
    let env = dynamodb::function_environment(&config, TEST_SECRET);
    let account = meters::domain::meter::AccountId::from(uuid::Uuid::new_v4());
    let get = HttpEvent::new("GET", "/api/v1/meters/7")
        .bearer(&token_for(TEST_SECRET, &[account]))
        .query(&format!("account_id={account}"));
    proxy.throttle("GetItem");
    let mut runtime = RuntimeApi::start().await;
    let function = Function::start(binary("get-meter"), &runtime, &env);
    let (request_id, response) = invoke(&mut runtime, &get.http_api()).await;
    let (_, logs) = function.stop();

    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.headers["retry-after"], "1");
    let shown = response.body.to_string();
    assert!(
        !shown.contains("Throughput") && !shown.contains(&config.table_name),
        "{shown}"
    );
    assert!(shown.contains(&request_id), "{shown}");
    assert!(
        proxy.throttled_answers() >= 2,
        "the SDK retried the throttled read"
    );
    let (requests, metrics) = json_lines(&logs);
    assert_eq!((requests.len(), metrics.len()), (1, 1), "{logs}");
    assert_eq!(requests[0]["level"], "ERROR");
    assert_eq!(requests[0]["error_code"], "store_unavailable");
    assert_eq!(metrics[0]["StoreThrottled"], 1, "{logs}");
    assert_eq!(metrics[0]["StoreUnavailable"], 0, "{logs}");
    assert_eq!(metrics[0]["status_class"], "5xx");
    // By function and version too: what a canary's rollback alarm watches for the new version alone.
    assert_eq!(
        (&metrics[0]["ServerErrors"], &metrics[0]["version"]),
        (&json!(1), &json!("$LATEST")),
        "{logs}"
    );
    assert_valid_emf(&metrics[0]);
}

/// DynamoDB behind TLS with a certificate authority of its own: trusted once `DYNAMODB_CA_BUNDLE` names it
/// (beside the compiled-in Amazon roots), refused (503, nothing written) while it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_dynamodb_endpoint_with_another_ca_is_trusted_only_through_dynamodb_ca_bundle() {
    let (config, _) = dynamodb::fresh_table("meters-tls").await;
    let proxy =
        meters_testkit::tls_proxy::TlsProxy::start(config.endpoint.as_deref().unwrap()).await;
    let behind_tls = meters::store::dynamodb::DynamoDbConfig {
        endpoint: Some(proxy.endpoint.clone()),
        ..config
    };
    let account = meters::domain::meter::AccountId::from(uuid::Uuid::new_v4());
    let token = token_for(TEST_SECRET, &[account]);
    let create = HttpEvent::new("POST", "/api/v1/meters")
        .bearer(&token)
        .json_body(&json!({"account_id": account.to_string(), "name": "over TLS", "serial_number": "TLS-1"}));
    let untrusted = dynamodb::function_environment(&behind_tls, TEST_SECRET);
    assert_eq!(
        invoke_once("create-meter", &untrusted, create.clone())
            .await
            .status,
        503
    );
    let mut trusted = untrusted.clone();
    trusted.push((
        "DYNAMODB_CA_BUNDLE".into(),
        proxy.ca_file().display().to_string(),
    ));
    let created = invoke_once("create-meter", &trusted, create).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let list = HttpEvent::new("GET", "/api/v1/meters")
        .bearer(&token)
        .query(&format!("account_id={account}"));
    let listed = invoke_once("list-meters", &trusted, list).await;
    assert_eq!(listed.body["count"], 1, "{}", listed.body);
}

/// Events that are no API Gateway or ALB request at all (a test event, a misrouted one) are answered 400
/// in the envelope with the request id, not failed by the runtime; the function goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_answers_events_that_are_no_request_in_the_envelope() {
    let env = dynamodb::function_environment(&dynamodb::unreachable(), TEST_SECRET);
    let mut runtime = RuntimeApi::start().await;
    let _function = Function::start(binary("get-meter"), &runtime, &env);
    for event in [json!({"key1": "value1"}), json!([1, 2, 3]), json!("ping")] {
        let (request_id, response) = invoke(&mut runtime, &event).await;
        assert_eq!(response.status, 400, "{event}: {response:?}");
        assert_eq!(response.body["success"], false);
        assert!(
            response.body["error"]
                .as_str()
                .is_some_and(|error| error.starts_with("event: ")),
            "{response:?}"
        );
        assert_eq!(response.headers["x-request-id"], request_id.as_str());
    }
    let token = token_for(
        TEST_SECRET,
        &[meters::domain::meter::AccountId::from(uuid::Uuid::new_v4())],
    );
    let (_, still_serving) = invoke(
        &mut runtime,
        &HttpEvent::new("GET", "/api/v1/meters/x")
            .bearer(&token)
            .http_api(),
    )
    .await;
    assert_eq!(still_serving.status, 400, "{still_serving:?}");
    assert_eq!(
        still_serving.body["error"],
        "id: must be a positive 64-bit integer, got `x`"
    );
}
