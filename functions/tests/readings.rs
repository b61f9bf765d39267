//! The readings function end to end: the queue's batch fixture (`events/apply-readings/sqs-batch.json`)
//! handed to the real `apply-readings` binary as Lambda's SQS event source mapping would (through the
//! Runtime API stub), on DynamoDB Local, with the dead-letter queue on moto's SQS.

use std::path::Path;
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use meters::domain::meter::{AccountId, MeterId};
use meters::store::MeterStore;
use meters_testkit::fixtures::events_dir;
use meters_testkit::function::Function;
use meters_testkit::meters::realistic;
use meters_testkit::runtime_api::{Outcome, RuntimeApi};
use meters_testkit::{ACCOUNT, dynamodb, s3};
use serde_json::{Value, json};

fn sqs() -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        // moto's one server: the S3 the test command starts serves SQS too.
        .endpoint_url(s3::endpoint())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

fn fixture(name: &str) -> Value {
    let path = events_dir().join("apply-readings").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Runs the binary on `table` with `dead_letters` as its queue, delivers `batch`, and answers what the
/// function answered and what it logged.
async fn deliver(table: &str, dead_letters: &str, batch: &Value) -> (Value, String) {
    let mut runtime = RuntimeApi::start().await;
    let env = [
        ("TABLE_NAME", table.to_owned()),
        ("DYNAMODB_ENDPOINT", dynamodb::endpoint()),
        ("READINGS_DEAD_LETTER_QUEUE_URL", dead_letters.to_owned()),
        ("AWS_ENDPOINT_URL_SQS", s3::endpoint()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let function = Function::start(
        Path::new(env!("CARGO_BIN_EXE_apply-readings")),
        &runtime,
        &env,
    );
    runtime.invoke(batch.to_string());
    let outcome = runtime.outcome(Duration::from_secs(30)).await;
    let (_, logs) = function.stop();
    match outcome {
        Some(Outcome::Response { body, .. }) => (serde_json::from_str(&body).unwrap(), logs),
        other => panic!("apply-readings answered {other:?}; it logged:\n{logs}"),
    }
}

async fn parked_on(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<(Value, Option<String>)> {
    let mut parked = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        if received.messages().is_empty() {
            return parked;
        }
        for message in received.messages() {
            let reason = message
                .message_attributes()
                .and_then(|attributes| attributes.get("reason"))
                .and_then(|reason| reason.string_value())
                .map(str::to_owned);
            parked.push((
                serde_json::from_str(message.body().unwrap()).unwrap(),
                reason,
            ));
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto: run scripts/test"]
async fn a_queue_batch_applies_what_is_later_and_parks_what_never_can_with_its_reason() {
    let (config, store) = dynamodb::fresh_table("meters-readings-fn").await;
    let account = AccountId::parse(ACCOUNT).unwrap();
    store
        .import(vec![realistic(1, account, 0), realistic(2, account, 1)])
        .await
        .unwrap();
    let before = store.get(&account, MeterId::new(1).unwrap()).await.unwrap();
    let sqs = sqs();
    let queue = sqs
        .create_queue()
        .queue_name(format!("readings-dlq-{}", uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();

    let batch = fixture("sqs-batch.json");
    let (answer, logs) = deliver(&config.table_name, &queue, &batch).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": []}),
        "nothing to deliver again; it logged:\n{logs}"
    );
    // Ten readings: four parked; of the six valid ones, how many find the meter's reading older depends on
    // the order they land in (they are applied several at once), never on whether each is counted.
    let tally: Value = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "readings")
        .expect("the batch's log line");
    assert_eq!(
        (tally["readings"].as_u64(), tally["parked"].as_u64()),
        (Some(10), Some(4)),
        "{tally}"
    );
    let applied = tally["applied"].as_u64().unwrap();
    assert_eq!(applied + tally["not_later"].as_u64().unwrap(), 6, "{tally}");
    assert!(
        (2..=5).contains(&applied),
        "at least the latest of each meter: {tally}"
    );
    assert_eq!(
        tally["write_units"].as_f64(),
        Some(3.0 * applied as f64),
        "{tally}"
    );

    let first = store.get(&account, MeterId::new(1).unwrap()).await.unwrap();
    let second = store.get(&account, MeterId::new(2).unwrap()).await.unwrap();
    let shown = |meter: &meters::domain::meter::Meter| serde_json::to_value(meter).unwrap();
    assert_eq!(shown(&first)["last_reading_value"], 10424.25);
    assert_eq!(shown(&first)["last_reading_at"], "2026-11-25T00:00:00Z");
    assert_eq!(shown(&second)["last_reading_value"], 7.25);
    assert_eq!(shown(&second)["last_reading_at"], "2026-11-25T00:30:00Z");
    // Not a metadata write.
    assert_eq!(
        (first.version, first.updated_at),
        (before.version, before.updated_at)
    );
    assert_ne!(first.etag(), before.etag());

    let parked = parked_on(&sqs, &queue).await;
    // For scripts/check_event_schema.py, which holds them to parked.schema.json.
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("apply-readings-parked.json"),
        serde_json::to_string_pretty(&parked.iter().map(|(body, _)| body).collect::<Vec<_>>())
            .unwrap(),
    )
    .unwrap();
    let mut reasons: Vec<(String, String)> = parked
        .iter()
        .map(|(body, reason)| {
            assert_eq!(
                reason.as_deref(),
                body["reason"].as_str(),
                "the attribute repeats it"
            );
            (
                body["message_id"].as_str().unwrap()[..8].to_owned(),
                body["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    reasons.sort();
    let message = |n: usize| format!("0000000{n}");
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    assert_eq!(reasons[0].0, message(4));
    assert!(reasons[0].1.contains("not JSON"), "{reasons:#?}");
    assert_eq!(reasons[1].0, message(5));
    assert!(reasons[1].1.starts_with("value:"), "{reasons:#?}");
    assert_eq!(reasons[2].0, message(6));
    assert!(
        reasons[2].1.contains("holds no meter 999999"),
        "{reasons:#?}"
    );
    assert_eq!(reasons[3].0, message(7));
    assert!(reasons[3].1.contains("holds no meter 1"), "{reasons:#?}");
    assert!(
        !logs.to_lowercase().contains("bearer"),
        "nothing of a token in the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto: run scripts/test"]
async fn messages_meet_a_passing_failure_come_again_and_the_rest_are_applied() {
    let (config, store) = dynamodb::fresh_table("meters-readings-retry").await;
    let account = AccountId::parse(ACCOUNT).unwrap();
    store
        .import(vec![realistic(1, account, 0), realistic(2, account, 1)])
        .await
        .unwrap();
    // No such queue: parking fails, so the messages with readings to park come again (and the queue's own
    // redrive parks them in the end); everything else is applied and done.
    let missing = format!("{}/123456789012/no-such-queue", s3::endpoint());
    let (answer, logs) = deliver(&config.table_name, &missing, &fixture("sqs-batch.json")).await;
    let mut failed: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().unwrap()[..8].to_owned())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        ["00000004", "00000005", "00000006", "00000007"],
        "{logs}"
    );
    let first = store.get(&account, MeterId::new(1).unwrap()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&first).unwrap()["last_reading_at"],
        "2026-11-25T00:00:00Z"
    );

    // The table unreachable: every message comes again.
    let (answer, _) = deliver("no-such-table", &missing, &fixture("sqs-batch.json")).await;
    assert_eq!(answer["batchItemFailures"].as_array().unwrap().len(), 8);

    // Not a queue batch at all: the invocation fails, and Lambda hands the batch back whole.
    let mut runtime = RuntimeApi::start().await;
    let env = [
        ("TABLE_NAME", config.table_name.clone()),
        ("DYNAMODB_ENDPOINT", dynamodb::endpoint()),
        ("READINGS_DEAD_LETTER_QUEUE_URL", missing.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
    ];
    let function = Function::start(
        Path::new(env!("CARGO_BIN_EXE_apply-readings")),
        &runtime,
        &env,
    );
    runtime.invoke(json!({"records": []}).to_string());
    let outcome = runtime.outcome(Duration::from_secs(30)).await;
    function.stop();
    assert!(
        matches!(outcome, Some(Outcome::Error { .. })),
        "{outcome:?}"
    );
}
