//! Each function binary, started as Lambda starts it, serves an API Gateway event end to end against
//! DynamoDB Local; and a function without its configuration refuses to start, saying why.

mod support;

use std::ffi::OsStr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meters::auth::TokenIssuer;
use meters::config::{AuthConfig, DynamoDbConfig};
use meters::meter::AccountId;
use meters::store::DynamoDbStore;
use serde_json::{Value, json};
use support::events::{dynamodb_local_config, http_api_event};
use support::runtime_api::{Outcome, RuntimeApi};

const SECRET: &str = "function-test-secret-of-at-least-32-bytes";

struct Function {
    child: Child,
}

impl Function {
    fn start<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        binary: &str,
        runtime: &RuntimeApi,
        env: &[(K, V)],
    ) -> Self {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(runtime.lambda_environment())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        Self {
            child: command.spawn().expect("the function starts"),
        }
    }

    /// Waits for the function to exit; whether it succeeded, and everything it logged.
    fn wait_for_exit(mut self) -> (bool, String) {
        use std::io::Read;
        let mut logs = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout
                .read_to_string(&mut logs)
                .expect("stdout is readable");
        }
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr
                .read_to_string(&mut logs)
                .expect("stderr is readable");
        }
        (
            self.child.wait().expect("the function exits").success(),
            logs,
        )
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(name: &str) -> &'static str {
    match name {
        "list-meters" => env!("CARGO_BIN_EXE_list-meters"),
        "create-meter" => env!("CARGO_BIN_EXE_create-meter"),
        "get-meter" => env!("CARGO_BIN_EXE_get-meter"),
        "update-meter" => env!("CARGO_BIN_EXE_update-meter"),
        "delete-meter" => env!("CARGO_BIN_EXE_delete-meter"),
        other => panic!("no function {other}"),
    }
}

/// Starts the function, sends it one event, and returns its API Gateway response (status, envelope).
async fn invoke_once(function: &str, env: &[(String, String)], event: String) -> (u16, Value) {
    let mut runtime = RuntimeApi::start().await;
    let _function = Function::start(binary(function), &runtime, env);
    let request_id = runtime.invoke(event);
    match runtime.outcome(Duration::from_secs(30)).await {
        Some(Outcome::Response {
            request_id: answered,
            body,
        }) => {
            assert_eq!(answered, request_id);
            let response: Value = serde_json::from_str(&body).expect("an API Gateway response");
            let status = response["statusCode"].as_u64().expect("a status code") as u16;
            let envelope = match response["body"].as_str() {
                Some(text) if !text.is_empty() => {
                    serde_json::from_str(text).expect("a JSON envelope")
                }
                _ => Value::Null,
            };
            (status, envelope)
        }
        other => panic!("{function} did not answer with a response: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn each_function_binary_serves_an_api_gateway_event_against_dynamodb_local() {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .expect("DYNAMODB_ENDPOINT must point at DynamoDB Local; run scripts/test");
    let table = format!("meters-functions-{}", uuid::Uuid::new_v4().simple());
    let config = DynamoDbConfig {
        table_name: table.clone(),
        endpoint: Some(endpoint.clone()),
    };
    DynamoDbStore::new(
        meters::lambda::dynamodb_client(&config).await,
        table.clone(),
    )
    .create_table_if_missing()
    .await
    .unwrap();

    let account = AccountId::from(uuid::Uuid::new_v4());
    let auth =
        AuthConfig::from_lookup(|name| (name == "JWT_SECRET").then(|| SECRET.to_owned())).unwrap();
    let token = TokenIssuer::new(&auth)
        .unwrap()
        .issue(&[account], Duration::from_secs(300))
        .unwrap();
    let env = dynamodb_local_config(&table, &endpoint, SECRET);
    let query = format!("account_id={account}");

    let create = json!({"account_id": account.to_string(), "name": "Main incomer", "serial_number": "EM-1", "tariff_id": 12});
    let (status, created) = invoke_once(
        "create-meter",
        &env,
        http_api_event(
            "POST",
            "/api/v1/meters",
            "",
            &token,
            Some(&create.to_string()),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_i64().expect("an id");
    let path = format!("/api/v1/meters/{id}");

    let (status, read) = invoke_once(
        "get-meter",
        &env,
        http_api_event("GET", &path, &query, &token, None),
    )
    .await;
    assert_eq!((status, &read["data"]), (200, &created["data"]));

    let update = json!({"account_id": account.to_string(), "location": "Roof", "tariff_id": null});
    let (status, updated) = invoke_once(
        "update-meter",
        &env,
        http_api_event("PUT", &path, "", &token, Some(&update.to_string())),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (
            updated["data"]["location"].as_str(),
            &updated["data"]["tariff_id"]
        ),
        (Some("Roof"), &Value::Null)
    );

    let (status, listed) = invoke_once(
        "list-meters",
        &env,
        http_api_event("GET", "/api/v1/meters", &query, &token, None),
    )
    .await;
    assert_eq!((status, listed["count"].as_u64()), (200, Some(1)));
    assert_eq!(listed["data"][0], updated["data"]);

    let (status, deleted) = invoke_once(
        "delete-meter",
        &env,
        http_api_event("DELETE", &path, &query, &token, None),
    )
    .await;
    assert_eq!((status, deleted), (204, Value::Null));
    let (status, gone) = invoke_once(
        "get-meter",
        &env,
        http_api_event("GET", &path, &query, &token, None),
    )
    .await;
    assert_eq!(status, 404, "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_without_its_configuration_refuses_to_start_naming_the_variable() {
    let runtime = RuntimeApi::start().await;
    for (missing, env) in [
        ("JWT_SECRET", vec![("TABLE_NAME", "meters")]),
        ("TABLE_NAME", vec![("JWT_SECRET", SECRET)]),
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
async fn a_function_never_logs_its_secret() {
    let runtime = RuntimeApi::start().await;
    let (_, logs) = Function::start(
        binary("list-meters"),
        &runtime,
        &[("JWT_SECRET", "short-secret-value")],
    )
    .wait_for_exit();
    assert!(logs.contains("JWT_SECRET"), "{logs}");
    assert!(!logs.contains("short-secret-value"), "{logs}");
}
