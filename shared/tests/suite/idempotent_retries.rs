//! An `Idempotency-Key` through every ambiguous outcome: the store's answer lost to the SDK's timeout, the
//! request's deadline passing with the write applied, the process killed after the write. Each time the
//! retry that follows the API's advice (503 means retry, with the key) ends with exactly one meter, and its
//! answer is that meter, replayed.

use std::time::Duration;

use meters::auth::Authenticator;
use meters::domain::list::ListQuery;
use meters::domain::meter::{AccountId, CreateMeterBody, Meter};
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::{CreateMeterRequest, IdempotencyClaim};
use meters::store::{DynamoDbStore, EmbeddedStore, MeterStore, Store};
use meters::{App, Endpoint};
use meters_testkit::fault_proxy::FaultProxy;
use meters_testkit::meters::tester;
use meters_testkit::tokens::{hs256_config, token_for};
use meters_testkit::{HttpEvent, TEST_SECRET};
use serde_json::{Value, json};

fn app_on(store: impl Store + 'static, deadline: Duration) -> App {
    App::new(
        store,
        Authenticator::new(&hs256_config(TEST_SECRET)).unwrap(),
    )
    .with_deadline(deadline)
}

fn body(account: &AccountId) -> String {
    json!({"account_id": account.to_string(), "name": "Retried", "serial_number": "SN-RETRY"})
        .to_string()
}

/// The create, with its key, as the client sends it each time: status, `Idempotent-Replayed`, envelope.
async fn create(app: &App, account: &AccountId, key: &str) -> (u16, bool, Value) {
    let event = HttpEvent::new("POST", "/api/v1/meters")
        .bearer(&token_for(TEST_SECRET, &[*account]))
        .header("idempotency-key", key)
        .body(&body(account));
    let request = meters::runtime::request_from_event(&event.http_api().to_string()).unwrap();
    let response = Endpoint::CreateMeter.handle(app, request).await;
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let envelope = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
    (response.status().as_u16(), replayed, envelope)
}

async fn meters_of(store: &dyn MeterStore, account: &AccountId) -> Vec<Meter> {
    let query = ListQuery {
        limit: 100,
        ..ListQuery::default()
    };
    store.list(account, &query).await.unwrap().meters
}

/// A claim whose lease ends at the next whole second has ended by then (leases are kept in seconds).
async fn past_the_lease(deadline: Duration) {
    tokio::time::sleep(deadline + Duration::from_millis(1_100)).await;
}

/// What a process that died right after its write leaves: the key bound to the id, the meter under it,
/// no answer; its lease then runs out. The retry replays that meter.
async fn a_retry_after_a_process_died_after_its_write(store: impl Store + Clone + 'static) {
    let account = AccountId::from(uuid::Uuid::new_v4());
    let app = app_on(store.clone(), Duration::from_secs(8));
    let fingerprint = meters::http::request::body_fingerprint(body(&account).as_bytes());
    let reserved = store.reserve_id().await.unwrap();
    let then = meters::domain::meter::now() - chrono::Duration::seconds(30);
    store
        .claim_idempotent(
            &account,
            IdempotencyClaim {
                key: "died",
                fingerprint: &fingerprint,
                reserved,
                lease_until: then,
                now: then,
            },
        )
        .await
        .unwrap();
    let new = CreateMeterBody::parse(body(&account).as_bytes())
        .unwrap()
        .meter;
    let written = store
        .create_with_id(
            &account,
            CreateMeterRequest {
                id: reserved,
                meter: new,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    let (status, replayed, envelope) = create(&app, &account, "died").await;
    assert_eq!((status, replayed), (201, true), "{envelope}");
    assert_eq!(envelope["data"]["id"], reserved.get());
    assert_eq!(meters_of(&store, &account).await, vec![written.meter]);
    // And from then on, the remembered answer.
    let (status, replayed, again) = create(&app, &account, "died").await;
    assert_eq!((status, replayed, again), (201, true, envelope));
}

#[tokio::test]
async fn the_embedded_store_replays_the_meter_of_a_process_that_died_after_its_write() {
    a_retry_after_a_process_died_after_its_write(EmbeddedStore::in_memory().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn dynamodb_replays_the_meter_of_a_process_that_died_after_its_write() {
    let (_, store) = meters_testkit::dynamodb::fresh_table("meters-died").await;
    a_retry_after_a_process_died_after_its_write(store).await;
}

/// The request's deadline passes while the store writes: 503. Whether or not the write landed, the retry
/// after the lease makes it exactly one meter.
#[tokio::test]
async fn the_embedded_store_makes_one_meter_when_the_deadline_passed_during_the_write() {
    let store = EmbeddedStore::in_memory().unwrap();
    let deadline = Duration::from_millis(1);
    let app = app_on(store.clone(), deadline);
    let account = AccountId::from(uuid::Uuid::new_v4());
    let (status, _, envelope) = create(&app, &account, "late").await;
    // On a current-thread runtime the write runs on the blocking pool and may land after the 503.
    assert!(matches!(status, 201 | 503), "{envelope}");
    past_the_lease(deadline).await;
    // The retry, on a server with the time to finish.
    let app = app_on(store.clone(), Duration::from_secs(8));
    let (status, _, envelope) = create(&app, &account, "late").await;
    assert_eq!(status, 201, "{envelope}");
    let stored = meters_of(&store, &account).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(envelope["data"]["id"], stored[0].id.get());
}

/// DynamoDB behind the fault proxy, with the store's own client.
async fn dynamodb_behind_a_proxy(prefix: &str) -> (FaultProxy, DynamoDbStore) {
    let (config, _) = meters_testkit::dynamodb::fresh_table(prefix).await;
    let proxy = FaultProxy::start(config.endpoint.as_deref().unwrap()).await;
    let through_proxy = DynamoDbConfig {
        endpoint: Some(proxy.endpoint.clone()),
        ..config
    };
    let client = meters::store::dynamodb::dynamodb_client(&through_proxy).await;
    (proxy, DynamoDbStore::new(client, through_proxy.table_name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn dynamodb_makes_one_meter_when_the_deadline_passed_with_the_write_applied() {
    let (proxy, store) = dynamodb_behind_a_proxy("meters-deadline-key").await;
    let deadline = Duration::from_secs(1);
    let app = app_on(store.clone(), deadline);
    let account = AccountId::from(uuid::Uuid::new_v4());
    proxy.delay_next_answer("TransactWriteItems", Duration::from_millis(1_500));
    let (status, _, envelope) = create(&app, &account, "late").await;
    assert_eq!(status, 503, "{envelope}");
    past_the_lease(deadline).await;
    let (status, replayed, envelope) = create(&app, &account, "late").await;
    assert_eq!((status, replayed), (201, true), "{envelope}");
    let stored = meters_of(&store, &account).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(envelope["data"]["id"], stored[0].id.get());
}

/// Every answer to the transaction held until the SDK gives up on the operation (its 8 s timeout): 503,
/// with the write applied. The key is not released; the retry at once finds the meter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn dynamodb_makes_one_meter_when_the_sdk_gave_up_on_a_lost_answer() {
    let (proxy, store) = dynamodb_behind_a_proxy("meters-sdk-timeout-key").await;
    let app = app_on(store.clone(), Duration::from_secs(20));
    let account = AccountId::from(uuid::Uuid::new_v4());
    proxy.hold_answers("TransactWriteItems");
    let (status, _, envelope) = create(&app, &account, "lost").await;
    proxy.release_answers();
    assert_eq!(status, 503, "{envelope}");
    let (status, replayed, envelope) = create(&app, &account, "lost").await;
    assert_eq!((status, replayed), (201, true), "{envelope}");
    let stored = meters_of(&store, &account).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(envelope["data"]["id"], stored[0].id.get());
}
