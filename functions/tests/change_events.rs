//! The change events end to end: real API writes on DynamoDB Local, the records its own stream holds
//! handed to the real `meter-events` binary as Lambda's event source mapping would (through the Runtime
//! API stub), and the events it publishes captured where the SDK's `AWS_ENDPOINT_URL_EVENTBRIDGE` points.

use std::path::Path;
use std::time::Duration;

use meters::auth::Authenticator;
use meters::domain::meter::{MeterId, ReadingValue, parse_timestamp};
use meters::domain::reading::Reading;
use meters::store::{Applied, ReadingStore};
use meters::{App, Endpoint};
use meters_testkit::eventbridge::EventBridgeStub;
use meters_testkit::function::{Function, built_artefact};
use meters_testkit::runtime_api::{Outcome, RuntimeApi};
use meters_testkit::tokens::{hs256_config, token_with_claims};
use meters_testkit::{ACCOUNT, HttpEvent, OTHER_ACCOUNT, TEST_SECRET, dynamodb, streams};
use serde_json::{Value, json};

const BUS: &str = "meters-test-bus";

/// A caller's token: `sub`, and a `client_id` for machine clients.
fn token(account: &str, sub: &str, client_id: Option<&str>) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let mut claims = json!({"exp": exp, "sub": sub, "account_ids": [account]});
    if let Some(client_id) = client_id {
        claims["client_id"] = json!(client_id);
    }
    token_with_claims(TEST_SECRET, &claims)
}

async fn call(app: &App, endpoint: Endpoint, event: HttpEvent) -> (u16, Value, Option<String>) {
    let request = meters::runtime::request_from_event(&event.http_api().to_string()).unwrap();
    let response = endpoint.handle(app, request).await;
    let etag = response
        .headers()
        .get("etag")
        .map(|tag| tag.to_str().unwrap().to_owned());
    let body = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
    (response.status().as_u16(), body, etag)
}

/// What the API writes: a user creates a meter (with an Idempotency-Key, so an idempotency record is
/// written too), renames it, a machine client re-tariffs it, the user deletes it; a machine client creates a
/// meter in another account. Returns the two meters' ids.
async fn write_through_the_api(app: &App) -> (i64, i64) {
    let user = token(ACCOUNT, "user-ana", None);
    let billing = token(ACCOUNT, "svc-billing", Some("billing-client"));
    let create = HttpEvent::new("POST", "/api/v1/meters")
        .bearer(&user)
        .header("idempotency-key", "create-main-incomer")
        .json_body(
            &json!({"account_id": ACCOUNT, "name": "Main incomer", "serial_number": "EM-1",
                           "meter_type": "ELECTRICITY", "tariff_id": 3}),
        );
    let (status, created, _) = call(app, Endpoint::CreateMeter, create).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/meters/{id}");
    let update =
        |token: &str, body: Value| HttpEvent::new("PUT", &path).bearer(token).json_body(&body);
    let (status, ..) = call(
        app,
        Endpoint::UpdateMeter,
        update(
            &user,
            json!({"account_id": ACCOUNT, "name": "Main incomer, hall"}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, etag) = call(
        app,
        Endpoint::UpdateMeter,
        update(&billing, json!({"account_id": ACCOUNT, "tariff_id": 12})),
    )
    .await;
    assert_eq!(status, 200);
    let delete = HttpEvent::new("DELETE", &path)
        .query(&format!("account_id={ACCOUNT}"))
        .bearer(&user)
        .header("if-match", &etag.unwrap());
    assert_eq!(call(app, Endpoint::DeleteMeter, delete).await.0, 204);
    let other = HttpEvent::new("POST", "/api/v1/meters")
        .bearer(&token(OTHER_ACCOUNT, "svc-import", Some("import-client")))
        .json_body(
            &json!({"account_id": OTHER_ACCOUNT, "name": "Gas", "serial_number": "G-1",
                           "meter_type": "GAS"}),
        );
    let (status, other, _) = call(app, Endpoint::CreateMeter, other).await;
    assert_eq!(status, 201);
    (id, other["data"]["id"].as_i64().unwrap())
}

struct EventsFunction {
    runtime: RuntimeApi,
    function: Option<Function>,
}

impl EventsFunction {
    async fn start(table: &str, bus: &EventBridgeStub) -> Self {
        Self::start_binary(Path::new(env!("CARGO_BIN_EXE_meter-events")), table, bus).await
    }

    async fn start_binary(binary: &Path, table: &str, bus: &EventBridgeStub) -> Self {
        let runtime = RuntimeApi::start().await;
        let env = [
            ("EVENT_BUS_NAME", BUS.to_owned()),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", bus.url.clone()),
            ("TABLE_NAME", table.to_owned()),
            ("DYNAMODB_ENDPOINT", dynamodb::endpoint()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ];
        let function = Function::start(binary, &runtime, &env);
        Self {
            runtime,
            function: Some(function),
        }
    }

    /// Delivers `batch` and returns the function's answer.
    async fn deliver(&mut self, batch: &Value) -> Value {
        self.runtime.invoke(batch.to_string());
        match self.runtime.outcome(Duration::from_secs(30)).await {
            Some(Outcome::Response { body, .. }) => serde_json::from_str(&body).unwrap(),
            other => {
                let (_, logs) = self.function.take().unwrap().stop();
                panic!("meter-events answered {other:?}; it logged:\n{logs}")
            }
        }
    }

    fn logs(mut self) -> String {
        self.function.take().unwrap().stop().1
    }
}

fn details_of(events: &[Value], id: i64) -> Vec<(String, Value)> {
    events
        .iter()
        .filter(|event| event["Detail"]["meter_id"] == id)
        .map(|event| {
            (
                event["DetailType"].as_str().unwrap().to_owned(),
                event["Detail"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn every_meter_change_reaches_the_bus_in_order_with_who_made_it_and_nothing_else_does() {
    publishes_every_change(Path::new(env!("CARGO_BIN_EXE_meter-events"))).await;
}

/// The same, with what `sam build` made of meter-events (arm64 under qemu-user): scripts/sam-build-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sam build and DynamoDB Local: run by scripts/sam-build-check"]
async fn the_built_meter_events_artefact_publishes_every_change() {
    let wrappers = std::env::temp_dir().join(format!("meters-artefacts-{}", uuid::Uuid::new_v4()));
    publishes_every_change(&built_artefact("MeterEventsFunction", &wrappers)).await;
    let _ = std::fs::remove_dir_all(wrappers);
}

async fn publishes_every_change(binary: &Path) {
    let (config, store) = dynamodb::fresh_table("meters-events").await;
    let readings = store.clone();
    let app = App::new(
        store,
        Authenticator::new(&hs256_config(TEST_SECRET)).unwrap(),
    );
    let (id, other_id) = write_through_the_api(&app).await;
    // Two readings of the other meter: their writes are in the stream, and make no event.
    for (value, at) in [(5.0, "2026-12-01T00:00:00Z"), (6.5, "2026-12-01T00:15:00Z")] {
        let reading = Reading {
            account_id: meters::domain::meter::AccountId::parse(OTHER_ACCOUNT).unwrap(),
            meter_id: MeterId::new(other_id).unwrap(),
            value: ReadingValue::parse(value).unwrap(),
            at: parse_timestamp("at", at).unwrap(),
        };
        assert_eq!(
            readings
                .apply_reading(&reading.account_id, &reading)
                .await
                .unwrap(),
            Applied::Applied
        );
    }
    let batch = streams::batch_of_table(&config.table_name).await;
    let records = batch["Records"].as_array().unwrap();
    assert!(
        records.len() > 5,
        "heads, the tombstone and the idempotency record are in the stream too: {} records",
        records.len()
    );

    let bus = EventBridgeStub::start().await;
    // EventBridge refuses the first update once: the publisher must send it again, before anything after.
    bus.refuse_once(|entry| entry["DetailType"] == "MeterUpdated");
    let mut function = EventsFunction::start_binary(binary, &config.table_name, &bus).await;
    let answer = function.deliver(&batch).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));

    let events = bus.accepted();
    assert_eq!(
        events.len(),
        5,
        "one event per meter change, none for bookkeeping: {events:#?}"
    );
    // For scripts/check_event_schema.py, which holds them to the schema consumers are given.
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("meter-events-published.json"),
        serde_json::to_string_pretty(&events).unwrap(),
    )
    .unwrap();
    for event in &events {
        assert_eq!(event["Source"], "meters-api");
        assert_eq!(event["EventBusName"], BUS);
    }
    let mine = details_of(&events, id);
    let kinds: Vec<&str> = mine.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "MeterCreated",
            "MeterUpdated",
            "MeterUpdated",
            "MeterDeleted"
        ]
    );
    let (created, renamed, retariffed, deleted) = (&mine[0].1, &mine[1].1, &mine[2].1, &mine[3].1);

    assert_eq!(created["account_id"], ACCOUNT);
    assert_eq!(created["version"], 1);
    assert_eq!(created["meter"]["name"], "Main incomer");
    assert_eq!(created["meter"]["tariff_id"], 3);
    assert_eq!(
        created["meter"]["description"],
        Value::Null,
        "the API's shape: every field"
    );
    assert!(created.get("previous").is_none() && created.get("changed_fields").is_none());
    assert_eq!(
        created["actor"],
        json!({"sub": "user-ana", "client_id": null})
    );
    assert_eq!(created["occurred_at"], created["meter"]["created_at"]);

    assert_eq!(renamed["changed_fields"], json!(["name"]));
    assert_eq!(renamed["previous"]["name"], "Main incomer");
    assert_eq!(renamed["meter"]["name"], "Main incomer, hall");
    assert_eq!(renamed["version"], 2);
    assert_eq!(renamed["actor"]["sub"], "user-ana");

    assert_eq!(retariffed["changed_fields"], json!(["tariff_id"]));
    assert_eq!(retariffed["meter"]["tariff_id"], 12);
    assert_eq!(
        retariffed["actor"],
        json!({"sub": "svc-billing", "client_id": "billing-client"})
    );

    assert!(deleted.get("meter").is_none());
    assert_eq!(deleted["previous"]["tariff_id"], 12);
    assert_eq!(deleted["version"], 3, "the version deleted");
    assert_eq!(
        deleted["actor"]["sub"], "user-ana",
        "the deleter, from the tombstone"
    );

    let theirs = details_of(&events, other_id);
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        theirs[0].1["account_id"], OTHER_ACCOUNT,
        "each event holds one account's data"
    );
    assert_eq!(theirs[0].1["actor"]["client_id"], "import-client");
    for (_, detail) in mine.iter().chain(&theirs) {
        let other = if detail["account_id"] == ACCOUNT {
            OTHER_ACCOUNT
        } else {
            ACCOUNT
        };
        assert!(!detail.to_string().contains(other), "{detail}");
    }

    let received = bus.received();
    let refused_then_sent: Vec<&Value> = received
        .iter()
        .filter(|entry| entry["Detail"]["event_id"] == renamed["event_id"])
        .collect();
    assert_eq!(
        refused_then_sent.len(),
        2,
        "the refused entry was sent again"
    );

    // Lambda delivers a batch again after a timeout or a crash: the same changes, the same event ids.
    let again = function.deliver(&batch).await;
    assert_eq!(again, json!({"batchItemFailures": []}));
    let redelivered = &bus.accepted()[events.len()..];
    let ids = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|event| event["Detail"]["event_id"].clone())
            .collect()
    };
    assert_eq!(ids(redelivered), ids(&events));
    let unique: std::collections::HashSet<String> =
        ids(&events).iter().map(Value::to_string).collect();
    assert_eq!(unique.len(), events.len(), "every change has its own id");
    let logs = function.logs();
    assert!(!logs.contains(TEST_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_poison_record_is_reported_and_nothing_after_it_is_published_ahead_of_it() {
    let (config, store) = dynamodb::fresh_table("meters-events").await;
    let app = App::new(
        store,
        Authenticator::new(&hs256_config(TEST_SECRET)).unwrap(),
    );
    let (id, _) = write_through_the_api(&app).await;
    let mut batch = streams::batch_of_table(&config.table_name).await;
    // The first record of the first meter's rename loses its new image: no event can be made of it.
    let records = batch["Records"].as_array_mut().unwrap();
    let poison = records
        .iter()
        .position(|record| {
            record["eventName"] == "MODIFY"
                && record["dynamodb"]["Keys"]["id"]["N"]
                    .as_str()
                    .and_then(|n| n.parse::<i64>().ok())
                    == Some(id)
        })
        .unwrap();
    records[poison]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("NewImage");
    let sequence = records[poison]["dynamodb"]["SequenceNumber"].clone();

    let bus = EventBridgeStub::start().await;
    let mut function = EventsFunction::start(&config.table_name, &bus).await;
    let answer = function.deliver(&batch).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": sequence}]}),
        "Lambda retries from the poison record, then sends it to the on-failure destination"
    );
    let kinds: Vec<String> = details_of(&bus.accepted(), id)
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        kinds,
        ["MeterCreated"],
        "nothing after the poison record overtook it"
    );
    assert!(function.logs().contains("poison record"));
}

/// A function missing its bus refuses to start, naming the variable.
#[tokio::test]
async fn without_event_bus_name_meter_events_refuses_to_start_naming_it() {
    let runtime = RuntimeApi::start().await;
    let function = Function::start(
        Path::new(env!("CARGO_BIN_EXE_meter-events")),
        &runtime,
        &[("TABLE_NAME", "meters"), ("AWS_REGION", "us-east-1")],
    );
    let (exited, logs) = function.wait_for_exit();
    assert!(!exited, "{logs}");
    assert!(logs.contains("EVENT_BUS_NAME"), "{logs}");
}
