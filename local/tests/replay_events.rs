//! meters-replay-events, the runbook's command for change events that were never published, end to end: meters
//! written to a table on DynamoDB Local, whose own stream holds the records; the failures queue on moto's SQS,
//! holding what Lambda's on-failure destination sends for a stream batch; the bus captured on loopback.

use std::process::Command;

use aws_sdk_sqs::types::QueueAttributeName;
use meters::domain::Actor;
use meters::domain::meter::{
    AccountId, CommunicationType, MeterChanges, MeterName, MeterType, NewMeter, ReadOnlyEcho,
    SerialNumber,
};
use meters::domain::precondition::IfMatch;
use meters::store::MeterStore;
use meters::store::{DeleteMeterRequest, UpdateMeterRequest};
use meters_testkit::eventbridge::EventBridgeStub;
use meters_testkit::{dynamodb, s3, streams};
use serde_json::{Value, json};

fn sqs() -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local", "local", None, None, "local",
        ))
        // moto's one server: the S3 the test command starts serves SQS too.
        .endpoint_url(s3::endpoint())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// What Lambda's on-failure destination sends when a stream batch exhausted its retries.
fn failure_message(stream_arn: &str, shard: &str, first: &str, last: &str, size: usize) -> String {
    json!({
        "requestContext": {"requestId": uuid::Uuid::new_v4().to_string(), "condition": "RetryAttemptsExhausted",
                           "approximateInvokeCount": 11,
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:meters-api-dev-MeterEventsFunction-X:live"},
        "responseContext": {"statusCode": 200, "executedVersion": "7", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-12-07T00:38:06.021Z",
        "DDBStreamBatchInfo": {"shardId": shard, "startSequenceNumber": first, "endSequenceNumber": last,
                               "approximateArrivalOfFirstRecord": "2026-12-07T00:38:04Z",
                               "approximateArrivalOfLastRecord": "2026-12-07T00:38:05Z",
                               "batchSize": size, "streamArn": stream_arn}
    })
    .to_string()
}

async fn messages_left(sqs: &aws_sdk_sqs::Client, queue: &str) -> u64 {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let count = |name| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto: run scripts/test"]
async fn a_parked_batch_is_published_from_the_stream_in_order_and_leaves_the_queue_and_a_stranger_stays()
 {
    let (config, store) = dynamodb::fresh_table("replay").await;
    let account = AccountId::from(uuid::Uuid::new_v4());
    let actor = Actor {
        sub: Some("user-ana".into()),
        client_id: None,
    };
    let new = NewMeter {
        name: MeterName::parse("Main incomer").unwrap(),
        serial_number: SerialNumber::parse("EM-1").unwrap(),
        meter_type: MeterType::ELECTRICITY,
        communication_type: CommunicationType::NONE,
        details: MeterChanges::default(),
    };
    let meter = store.create(&account, new, &actor).await.unwrap();
    let renamed = MeterChanges {
        name: Some(MeterName::parse("Main incomer, hall").unwrap()),
        ..MeterChanges::default()
    };
    let (echo, any) = (ReadOnlyEcho::default(), IfMatch::Any);
    store
        .update(
            &account,
            UpdateMeterRequest {
                id: meter.id,
                changes: renamed,
                read_only: echo,
                if_match: any.clone(),
                actor: actor.clone(),
            },
        )
        .await
        .unwrap();
    store
        .delete(
            &account,
            DeleteMeterRequest {
                id: meter.id,
                if_match: any,
                actor: actor.clone(),
            },
        )
        .await
        .unwrap();

    // The whole stretch of the stream these writes made, bookkeeping included, parked as one batch.
    let (stream_arn, shards) = streams::stream_of_table(&config.table_name).await;
    let batch = streams::batch_of_table(&config.table_name).await;
    let sequences: Vec<&str> = batch["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["dynamodb"]["SequenceNumber"].as_str().unwrap())
        .collect();
    let sqs = sqs();
    let queue = sqs
        .create_queue()
        .queue_name(format!("failures-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let parked = failure_message(
        &stream_arn,
        &shards[0],
        sequences[0],
        sequences[sequences.len() - 1],
        sequences.len(),
    );
    for body in [parked.as_str(), "a message someone sent by hand"] {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let bus = EventBridgeStub::start().await;
    let output = Command::new(env!("CARGO_BIN_EXE_meters-replay-events"))
        .arg(&queue)
        .env("TABLE_NAME", &config.table_name)
        .env("DYNAMODB_ENDPOINT", dynamodb::endpoint())
        .env("EVENT_BUS_NAME", "meters-api-test-meter-events")
        .env("AWS_ENDPOINT_URL_EVENTBRIDGE", &bus.url)
        .env("AWS_ENDPOINT_URL_SQS", s3::endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 batches replayed, 1 kept in the queue"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not a stream batch's failure record"),
        "{stdout}"
    );

    let events: Vec<(String, Value)> = bus
        .accepted()
        .iter()
        .map(|event| {
            (
                event["DetailType"].as_str().unwrap().to_owned(),
                event["Detail"].clone(),
            )
        })
        .collect();
    let kinds: Vec<(&str, u64)> = events
        .iter()
        .map(|(kind, detail)| (kind.as_str(), detail["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("MeterCreated", 1),
            ("MeterUpdated", 2),
            ("MeterDeleted", 2)
        ]
    );
    assert!(
        events
            .iter()
            .all(|(_, detail)| detail["actor"]["sub"] == "user-ana"
                && detail["meter_id"] == meter.id.get()
                && detail["schema_version"] == 1)
    );
    // The replayed batch is gone; the stranger stays for a person to read.
    assert_eq!(messages_left(&sqs, &queue).await, 1);
}
