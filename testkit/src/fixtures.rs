//! The event fixtures in `events/`: one per function and case, for `sam local invoke -e` and
//! `cargo lambda invoke --data-file`. Written from here by `cargo run -p meters-testkit --bin write-events`,
//! and checked by the shared crate's tests to be exactly what is written here and to answer as listed.

use std::path::PathBuf;

use meters::Endpoint;
use meters::auth::TokenIssuer;
use serde_json::{Value, json};

use crate::events::HttpEvent;
use crate::tokens::{ACCOUNT, OTHER_ACCOUNT, account, hs256_config};

/// The development secret of `events/env.json` and of `cargo lambda watch` (`functions/Cargo.toml`):
/// for local use only, never for a deployed stack.
pub const DEVELOPMENT_SECRET: &str = "meters-development-secret-for-local-use-only";

/// 2025-11-24T16:00:00Z and 2100-01-01T00:00:00Z: fixture tokens are stable and outlive the project.
const ISSUED_AT: u64 = 1_764_000_000;
const EXPIRES_AT: u64 = 4_102_444_800;

/// One fixture: its file under `events/`, the function that receives it, and the status it answers when
/// meter 1 exists in `ACCOUNT`. Those under `gateway-mode/` are for functions with `AUTH_MODE=gateway`
/// (`env-gateway-mode.json`): they carry the claims API Gateway's JWT authorizer passes on, and no token.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub file: &'static str,
    pub endpoint: Endpoint,
    pub status: u16,
    pub event: Value,
}

impl Fixture {
    pub fn gateway_mode(&self) -> bool {
        self.file.starts_with("gateway-mode/")
    }
}

impl Fixture {
    /// The file's exact content.
    pub fn text(&self) -> String {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&self.event).expect("JSON")
        )
    }
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The environment files for `sam local invoke --env-vars`: `env.json` (the development secret) and
/// `env-gateway-mode.json` (`AUTH_MODE=gateway`, for the `gateway-mode/` fixtures).
pub fn env_files() -> Vec<(&'static str, String)> {
    let env = |auth: Value| {
        let mut parameters = json!({
            "TABLE_NAME": "meters-local",
            "DYNAMODB_ENDPOINT": "http://host.docker.internal:8000",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            // The stack's snapshot bucket does not exist locally: list-meters reads accounts whole.
            "SNAPSHOT_BUCKET": ""
        });
        parameters
            .as_object_mut()
            .expect("an object")
            .extend(auth.as_object().expect("an object").clone());
        let text =
            serde_json::to_string_pretty(&json!({ "Parameters": parameters })).expect("JSON");
        format!("{text}\n")
    };
    vec![
        ("env.json", env(json!({"JWT_SECRET": DEVELOPMENT_SECRET}))),
        (
            "env-gateway-mode.json",
            env(json!({"AUTH_MODE": "gateway"})),
        ),
    ]
}

fn fixture_token(raw_account: &str) -> String {
    TokenIssuer::new(&hs256_config(DEVELOPMENT_SECRET))
        .expect("HS256 issues tokens")
        .issue_between(&[account(raw_account)], ISSUED_AT, EXPIRES_AT)
        .expect("a token is signed")
}

pub fn all() -> Vec<Fixture> {
    use Endpoint::*;
    let (mine, theirs) = (fixture_token(ACCOUNT), fixture_token(OTHER_ACCOUNT));
    let in_account = format!("account_id={ACCOUNT}");
    let new_meter = json!({
        "account_id": ACCOUNT, "name": "Main incomer", "serial_number": "EM-2024-000917", "meter_type": "ELECTRICITY",
        "communication_type": "MODBUS", "reading_interval": 900, "tariff_id": 12, "location": "Basement switch room",
        "billing_direction": "ACCREC"
    });
    let changes = json!({
        "account_id": ACCOUNT, "name": "Main incomer (north)", "tariff_id": null, "last_reading_value": 10423.5,
        "last_reading_at": "2026-11-24T23:45:00Z"
    });
    let with = |body: &Value, field: &str, value: Value| {
        let mut body = body.clone();
        body[field] = value;
        body
    };
    let request =
        |method: &str, path: &str| HttpEvent::new(method, path).request_id("fixture-request");
    let list = || request("GET", "/api/v1/meters");
    let create = || request("POST", "/api/v1/meters").json_body(&new_meter);
    let meter = |method: &str, id: &str| request(method, &format!("/api/v1/meters/{id}"));
    let update = || meter("PUT", "1").json_body(&changes);
    let fixture = |file, endpoint, status, event| Fixture {
        file,
        endpoint,
        status,
        event,
    };
    let flattened = format!("[{ACCOUNT} {OTHER_ACCOUNT}]");
    let verified = |request: HttpEvent, accounts: &str| {
        request.authorizer_claims(&[
            (
                "iss",
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf",
            ),
            ("sub", "fixture-user"),
            ("token_use", "access"),
            ("account_ids", accounts),
        ])
    };
    vec![
        fixture(
            "gateway-mode/list-meters-success.json",
            ListMeters,
            200,
            verified(list().query(&in_account), &flattened).http_api(),
        ),
        fixture(
            "gateway-mode/get-meter-success.json",
            GetMeter,
            200,
            verified(meter("GET", "1").query(&in_account), ACCOUNT).http_api(),
        ),
        fixture(
            "gateway-mode/create-meter-success.json",
            CreateMeter,
            201,
            verified(create(), &flattened).http_api(),
        ),
        fixture(
            "gateway-mode/list-meters-other-account.json",
            ListMeters,
            403,
            verified(list().query(&in_account), OTHER_ACCOUNT).http_api(),
        ),
        fixture(
            "gateway-mode/list-meters-no-claims.json",
            ListMeters,
            401,
            list().query(&in_account).http_api(),
        ),
        fixture(
            "list-meters/success.json",
            ListMeters,
            200,
            list()
                .query(&format!(
                    "{in_account}&sortBy=name&sortOrder=asc&page=1&limit=20"
                ))
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "list-meters/invalid-limit.json",
            ListMeters,
            400,
            list()
                .query(&format!("{in_account}&limit=500"))
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "list-meters/no-token.json",
            ListMeters,
            401,
            list().query(&in_account).http_api(),
        ),
        fixture(
            "list-meters/other-account.json",
            ListMeters,
            403,
            list().query(&in_account).bearer(&theirs).http_api(),
        ),
        fixture(
            "create-meter/success.json",
            CreateMeter,
            201,
            create().bearer(&mine).http_api(),
        ),
        fixture(
            "create-meter/invalid-body.json",
            CreateMeter,
            400,
            create()
                .json_body(&with(&new_meter, "meter_type", json!("STEAM")))
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "create-meter/no-token.json",
            CreateMeter,
            401,
            create().http_api(),
        ),
        fixture(
            "create-meter/other-account.json",
            CreateMeter,
            403,
            create().bearer(&theirs).http_api(),
        ),
        fixture(
            "create-meter/rest-api-success.json",
            CreateMeter,
            201,
            create()
                .base64_body(&new_meter.to_string())
                .bearer(&mine)
                .rest_api(),
        ),
        fixture(
            "get-meter/success.json",
            GetMeter,
            200,
            meter("GET", "1")
                .query(&in_account)
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "get-meter/invalid-id.json",
            GetMeter,
            400,
            meter("GET", "abc")
                .query(&in_account)
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "get-meter/not-found.json",
            GetMeter,
            404,
            meter("GET", "999")
                .query(&in_account)
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "get-meter/no-token.json",
            GetMeter,
            401,
            meter("GET", "1").query(&in_account).http_api(),
        ),
        fixture(
            "get-meter/other-account.json",
            GetMeter,
            403,
            meter("GET", "1")
                .query(&in_account)
                .bearer(&theirs)
                .http_api(),
        ),
        fixture(
            "get-meter/rest-api-success.json",
            GetMeter,
            200,
            meter("GET", "1")
                .query(&in_account)
                .bearer(&mine)
                .rest_api(),
        ),
        fixture(
            "update-meter/success.json",
            UpdateMeter,
            200,
            update().bearer(&mine).http_api(),
        ),
        fixture(
            "update-meter/invalid-body.json",
            UpdateMeter,
            400,
            update()
                .json_body(&with(&changes, "serial_number", json!("CHANGED")))
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "update-meter/no-token.json",
            UpdateMeter,
            401,
            update().http_api(),
        ),
        fixture(
            "update-meter/other-account.json",
            UpdateMeter,
            403,
            update().bearer(&theirs).http_api(),
        ),
        fixture(
            "delete-meter/success.json",
            DeleteMeter,
            204,
            meter("DELETE", "1")
                .query(&in_account)
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "delete-meter/invalid-id.json",
            DeleteMeter,
            400,
            meter("DELETE", "0")
                .query(&in_account)
                .bearer(&mine)
                .http_api(),
        ),
        fixture(
            "delete-meter/no-token.json",
            DeleteMeter,
            401,
            meter("DELETE", "1").query(&in_account).http_api(),
        ),
        fixture(
            "delete-meter/other-account.json",
            DeleteMeter,
            403,
            meter("DELETE", "1")
                .query(&in_account)
                .bearer(&theirs)
                .http_api(),
        ),
    ]
}
