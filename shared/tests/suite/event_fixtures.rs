//! Every fixture in `events/` is exactly what `meters_testkit::fixtures` writes, and runs through its
//! handler as the function would run it, so the fixtures used with `sam local invoke -e` and
//! `cargo lambda invoke --data-file` can never go stale.

use meters::App;
use meters::auth::AuthConfig;
use meters::auth::Authenticator;
use meters::domain::meter::{
    CommunicationType, MeterChanges, MeterName, MeterType, NewMeter, SerialNumber,
};
use meters::store::{EmbeddedStore, MeterStore};
use meters_testkit::ACCOUNT;
use meters_testkit::fixtures::{self, DEVELOPMENT_SECRET, events_dir};
use meters_testkit::meters::tester;
use meters_testkit::tokens::{account, hs256_config};
use serde_json::Value;

/// Meter 1 exists in the fixtures' account, as the get, update and delete fixtures expect; the gateway-mode
/// fixtures meet a function with `AUTH_MODE=gateway`, the others one with the development secret.
async fn seeded_app(gateway_mode: bool) -> App {
    let store = EmbeddedStore::in_memory().unwrap();
    let meter = NewMeter {
        name: MeterName::parse("Main incomer").unwrap(),
        serial_number: SerialNumber::parse("EM-2024-000917").unwrap(),
        meter_type: MeterType::ELECTRICITY,
        communication_type: CommunicationType::MODBUS,
        details: MeterChanges::default(),
    };
    assert_eq!(
        store
            .create(&account(ACCOUNT), meter, &tester())
            .await
            .unwrap()
            .id
            .get(),
        1
    );
    let auth = if gateway_mode {
        AuthConfig::read(&meters::config::Env::of([("AUTH_MODE", "gateway")])).unwrap()
    } else {
        hs256_config(DEVELOPMENT_SECRET)
    };
    App::new(store, Authenticator::new(&auth).unwrap())
}

#[tokio::test]
async fn every_fixture_gives_its_status_and_envelope() {
    for fixture in fixtures::all() {
        let name = fixture.file;
        let json = std::fs::read_to_string(events_dir().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let request = meters::runtime::request_from_event(&json)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        let app = seeded_app(fixture.gateway_mode()).await;
        let response = fixture.endpoint.handle(&app, request).await;
        let body = response.body().as_ref();
        assert_eq!(
            response.status().as_u16(),
            fixture.status,
            "{name}: {}",
            String::from_utf8_lossy(body)
        );
        if fixture.status == 204 {
            assert!(body.is_empty(), "{name}");
            continue;
        }
        let envelope: Value =
            serde_json::from_slice(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            envelope["success"],
            fixture.status < 400,
            "{name}: {envelope}"
        );
        if fixture.status < 400 {
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
fn every_fixture_file_is_exactly_what_the_testkit_writes() {
    let stale = "is stale: run `cargo run -p meters-testkit --bin write-events`";
    for fixture in fixtures::all() {
        let on_disk = std::fs::read_to_string(events_dir().join(fixture.file)).unwrap_or_default();
        assert!(on_disk == fixture.text(), "events/{} {stale}", fixture.file);
    }
    for (file, text) in fixtures::env_files() {
        let on_disk = std::fs::read_to_string(events_dir().join(file)).unwrap_or_default();
        assert!(on_disk == text, "events/{file} {stale}");
    }
}

#[test]
fn every_fixture_file_on_disk_is_one_the_testkit_writes() {
    let mut on_disk = Vec::new();
    for function in std::fs::read_dir(events_dir()).unwrap() {
        let function = function.unwrap().path();
        // meter-events/ holds what that function publishes, and apply-readings/ the readings queue's
        // messages, not API Gateway events: their schemas and examples are scripts/check_event_schema.py's,
        // and the queue's batch is run through the function by functions/tests/readings.rs.
        if function.is_dir()
            && !function.ends_with("meter-events")
            && !function.ends_with("apply-readings")
        {
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
    let mut written: Vec<String> = fixtures::all().iter().map(|f| f.file.to_owned()).collect();
    written.sort();
    assert_eq!(on_disk, written);
}

#[test]
fn cargo_lambda_watch_uses_the_fixtures_development_secret() {
    let manifest = std::fs::read_to_string(events_dir().join("../functions/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("JWT_SECRET = \"{DEVELOPMENT_SECRET}\"")),
        "functions/Cargo.toml's [package.metadata.lambda.env] must use the development secret"
    );
}
