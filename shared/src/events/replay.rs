//! Replaying change events that were never published. When meter-events gives up on a batch (after the event
//! source mapping's retries), Lambda sends the batch's description, not its records, to the failures queue:
//! the stream, the shard and the first and last sequence numbers. While the stream still holds them (24 hours),
//! those records are read again here, as the Lambda batch meter-events would have received, and published by
//! the same `ChangePublisher`. `meters-replay-events` is the operator's command (docs/runbooks.md).

use std::cmp::Ordering;
use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{ConfigError, Env};

/// What Lambda's on-failure destination receives for a stream batch (its `DDBStreamBatchInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedBatch {
    pub stream_arn: String,
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    #[serde(default)]
    pub batch_size: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The message is not a stream batch's failure record: it is left in the queue for a person to read.
    #[error("not a stream batch's failure record: {0}")]
    NotAParkedBatch(String),
    /// The stream no longer holds the records (it keeps them 24 hours): the archive cannot help, since they
    /// were never published; the runbook says what can.
    #[error("the stream no longer holds records from {0} (a stream keeps them 24 hours)")]
    Trimmed(String),
    #[error("the stream could not be read: {0}")]
    Stream(String),
}

impl ParkedBatch {
    /// The batch a failures-queue message describes.
    pub fn from_message(body: &str) -> Result<Self, ReplayError> {
        #[derive(Deserialize)]
        struct Message {
            #[serde(rename = "DDBStreamBatchInfo")]
            batch: ParkedBatch,
        }
        serde_json::from_str::<Message>(body)
            .map(|message| message.batch)
            .map_err(|error| ReplayError::NotAParkedBatch(error.to_string()))
    }

    fn holds(&self, sequence: &str) -> bool {
        compare_sequences(sequence, &self.start_sequence_number) != Ordering::Less
            && compare_sequences(sequence, &self.end_sequence_number) != Ordering::Greater
    }
}

/// Sequence numbers are decimal strings longer than any integer type: the longer is the later.
fn compare_sequences(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The table's stream.
#[derive(Debug, Clone)]
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
}

impl StreamReader {
    /// The SDK's own settings (region, credentials), and `DYNAMODB_ENDPOINT` (DynamoDB Local serves its streams
    /// on the same endpoint), as the store reads them.
    pub async fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let mut config = aws_sdk_dynamodbstreams::config::Builder::from(&sdk);
        if let Some(endpoint) = env.get("DYNAMODB_ENDPOINT") {
            config = config.endpoint_url(endpoint);
        }
        Ok(Self {
            client: aws_sdk_dynamodbstreams::Client::from_conf(config.build()),
        })
    }

    /// The parked batch's records, as the Lambda batch (`{"Records": [...]}`) meter-events receives.
    pub async fn batch(&self, parked: &ParkedBatch) -> Result<Value, ReplayError> {
        let iterator = self
            .client
            .get_shard_iterator()
            .stream_arn(&parked.stream_arn)
            .shard_id(&parked.shard_id)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(&parked.start_sequence_number)
            .send()
            .await;
        let mut iterator = match iterator {
            Ok(answer) => answer.shard_iterator,
            Err(error) => {
                let service = error.as_service_error();
                if service.is_some_and(|e| e.is_trimmed_data_access_exception()) {
                    return Err(ReplayError::Trimmed(parked.start_sequence_number.clone()));
                }
                return Err(ReplayError::Stream(
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(&error).to_string(),
                ));
            }
        };
        let mut records = Vec::new();
        // A shard's iterator can answer empty pages before the records it holds: a bounded number of them.
        let mut empty_pages = 0;
        'pages: while let Some(current) = iterator {
            let page = self
                .client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .map_err(|error| {
                    ReplayError::Stream(
                        aws_sdk_dynamodbstreams::error::DisplayErrorContext(&error).to_string(),
                    )
                })?;
            if page.records().is_empty() {
                empty_pages += 1;
                if empty_pages > 5 {
                    break;
                }
            }
            for record in page.records() {
                let sequence = record
                    .dynamodb()
                    .and_then(|change| change.sequence_number())
                    .unwrap_or_default();
                if compare_sequences(sequence, &parked.end_sequence_number) == Ordering::Greater {
                    break 'pages;
                }
                if parked.holds(sequence) {
                    records.push(lambda_record(record, &parked.stream_arn));
                }
            }
            iterator = page.next_shard_iterator;
        }
        Ok(json!({ "Records": records }))
    }
}

/// One stream record as Lambda's event source mapping delivers it.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let mut dynamodb = Map::new();
    if let Some(change) = record.dynamodb() {
        if let Some(at) = change.approximate_creation_date_time() {
            dynamodb.insert(
                "ApproximateCreationDateTime".into(),
                json!(at.as_secs_f64().floor()),
            );
        }
        for (name, item) in [
            ("Keys", change.keys()),
            ("NewImage", change.new_image()),
            ("OldImage", change.old_image()),
        ] {
            if let Some(item) = item {
                dynamodb.insert(name.into(), image(item));
            }
        }
        dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number()));
        dynamodb.insert("SizeBytes".into(), json!(change.size_bytes()));
        dynamodb.insert(
            "StreamViewType".into(),
            json!(change.stream_view_type().map(|view| view.as_str())),
        );
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|name| name.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

fn image(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect(),
    )
}

/// An attribute in DynamoDB's JSON (`{"S": "…"}`), as stream events carry it.
fn attribute(value: &AttributeValue) -> Value {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::B(b) => json!({ "B": b64(b.as_ref()) }),
        AttributeValue::Ss(list) => json!({ "SS": list }),
        AttributeValue::Ns(list) => json!({ "NS": list }),
        AttributeValue::Bs(list) => {
            json!({ "BS": list.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(list) => json!({ "L": list.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({ "M": image(map) }),
        // A type newer than this code: kept visible rather than dropped, so the record reads as poison.
        other => json!({ "UNKNOWN": format!("{other:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = r#"{
      "requestContext": {"requestId": "316aa6d0-8154-4bb6-8b34-3f0d2cd7b3bb", "condition": "RetryAttemptsExhausted",
                         "approximateInvokeCount": 11},
      "responseContext": {"statusCode": 200, "executedVersion": "3", "functionError": "Unhandled"},
      "version": "1.0", "timestamp": "2026-12-07T00:38:06.021Z",
      "DDBStreamBatchInfo": {
        "shardId": "shardId-00000001573689847184-864758bb",
        "startSequenceNumber": "800000000003126276362",
        "endSequenceNumber": "800000000003126276370",
        "approximateArrivalOfFirstRecord": "2026-12-07T00:38:04Z",
        "approximateArrivalOfLastRecord": "2026-12-07T00:38:04Z",
        "batchSize": 3,
        "streamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/meters/stream/2026-12-01T00:04:49.283"
      }
    }"#;

    #[test]
    fn a_failures_queue_message_names_the_records_to_read_again() {
        let parked = ParkedBatch::from_message(MESSAGE).unwrap();
        assert_eq!(parked.shard_id, "shardId-00000001573689847184-864758bb");
        assert_eq!(parked.batch_size, Some(3));
        assert!(parked.holds("800000000003126276362"));
        assert!(parked.holds("800000000003126276370"));
        assert!(!parked.holds("800000000003126276371"));
        assert!(!parked.holds("99999999999999999999"));
        assert!(!parked.holds("1000000000000000000000"));
    }

    #[test]
    fn a_message_that_is_not_a_stream_batchs_failure_is_refused() {
        assert!(matches!(
            ParkedBatch::from_message(r#"{"Records": []}"#),
            Err(ReplayError::NotAParkedBatch(_))
        ));
    }
}
