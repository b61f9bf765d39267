//! Every fixture in `events/` run through its handler, exactly as the function would run it, so the
//! fixtures used with `sam local invoke -e` and `cargo lambda invoke --data-file` can never go stale.

use std::path::{Path, PathBuf};

use meters::auth::Authenticator;
use meters::config::AuthConfig;
use meters::meter::{
    AccountId, CommunicationType, MeterChanges, MeterName, MeterType, NewMeter, SerialNumber,
};
use meters::store::{EmbeddedStore, MeterStore};
use meters::{App, Endpoint};
use serde_json::Value;

/// Each fixture, the function that receives it, and the status it must produce. Meter 1 exists in the
/// fixtures' account before each one runs.
const FIXTURES: &[(&str, Endpoint, u16)] = &[
    ("list-meters/success.json", Endpoint::ListMeters, 200),
    ("list-meters/invalid-limit.json", Endpoint::ListMeters, 400),
    ("list-meters/no-token.json", Endpoint::ListMeters, 401),
    ("list-meters/other-account.json", Endpoint::ListMeters, 403),
    ("create-meter/success.json", Endpoint::CreateMeter, 201),
    ("create-meter/invalid-body.json", Endpoint::CreateMeter, 400),
    ("create-meter/no-token.json", Endpoint::CreateMeter, 401),
    (
        "create-meter/other-account.json",
        Endpoint::CreateMeter,
        403,
    ),
    (
        "create-meter/rest-api-success.json",
        Endpoint::CreateMeter,
        201,
    ),
    ("get-meter/success.json", Endpoint::GetMeter, 200),
    ("get-meter/invalid-id.json", Endpoint::GetMeter, 400),
    ("get-meter/not-found.json", Endpoint::GetMeter, 404),
    ("get-meter/no-token.json", Endpoint::GetMeter, 401),
    ("get-meter/other-account.json", Endpoint::GetMeter, 403),
    ("get-meter/rest-api-success.json", Endpoint::GetMeter, 200),
    ("update-meter/success.json", Endpoint::UpdateMeter, 200),
    ("update-meter/invalid-body.json", Endpoint::UpdateMeter, 400),
    ("update-meter/no-token.json", Endpoint::UpdateMeter, 401),
    (
        "update-meter/other-account.json",
        Endpoint::UpdateMeter,
        403,
    ),
    ("delete-meter/success.json", Endpoint::DeleteMeter, 204),
    ("delete-meter/invalid-id.json", Endpoint::DeleteMeter, 400),
    ("delete-meter/no-token.json", Endpoint::DeleteMeter, 401),
    (
        "delete-meter/other-account.json",
        Endpoint::DeleteMeter,
        403,
    ),
];

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The development secret the fixtures' tokens are signed with, from `events/env.json`.
fn fixture_auth() -> AuthConfig {
    let env: Value =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("env.json")).unwrap())
            .unwrap();
    let secret = env["Parameters"]["JWT_SECRET"]
        .as_str()
        .expect("env.json names JWT_SECRET")
        .to_owned();
    AuthConfig::from_lookup(|name| (name == "JWT_SECRET").then(|| secret.clone())).unwrap()
}

async fn seeded_app() -> App {
    let store = EmbeddedStore::in_memory().unwrap();
    let account = AccountId::parse("6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22").unwrap();
    let meter = NewMeter {
        name: MeterName::parse("Main incomer").unwrap(),
        serial_number: SerialNumber::parse("EM-2024-000917").unwrap(),
        meter_type: MeterType::ELECTRICITY,
        communication_type: CommunicationType::MODBUS,
        details: MeterChanges::default(),
    };
    assert_eq!(store.create(&account, meter).await.unwrap().id.get(), 1);
    App::new(store, Authenticator::new(&fixture_auth()).unwrap())
}

#[tokio::test]
async fn every_fixture_gives_its_status_and_envelope() {
    for (name, endpoint, expected) in FIXTURES {
        let json = std::fs::read_to_string(events_dir().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let request = meters::lambda::request_from_event(&json)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        let response = endpoint.handle(&seeded_app().await, request).await;
        let body = response.body().as_ref();
        assert_eq!(
            response.status().as_u16(),
            *expected,
            "{name}: {}",
            String::from_utf8_lossy(body)
        );
        if *expected == 204 {
            assert!(body.is_empty(), "{name}");
            continue;
        }
        let envelope: Value =
            serde_json::from_slice(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(envelope["success"], *expected < 400, "{name}: {envelope}");
        if *expected < 400 {
            assert!(
                envelope["data"].is_object() || envelope["data"].is_array(),
                "{name}: {envelope}"
            );
        } else {
            assert!(
                envelope["error"].is_string() && envelope["message"].is_string(),
                "{name}: {envelope}"
            );
        }
    }
}

#[test]
fn every_fixture_file_is_listed_here() {
    let mut on_disk = Vec::new();
    for function in std::fs::read_dir(events_dir()).unwrap() {
        let function = function.unwrap().path();
        if function.is_dir() {
            for fixture in std::fs::read_dir(&function).unwrap() {
                let fixture = fixture.unwrap().path();
                let function_name = function.file_name().unwrap().to_string_lossy();
                on_disk.push(format!(
                    "{function_name}/{}",
                    fixture.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES
        .iter()
        .map(|(name, _, _)| (*name).to_owned())
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}
