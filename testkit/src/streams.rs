//! A table's stream on DynamoDB Local, read as Lambda's event source mapping reads DynamoDB's: every record
//! from the start, in sequence order, rendered as the batch event a stream-triggered function receives.

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use meters::events::lambda_record;
use serde_json::{Value, json};

/// A client of DynamoDB Local's streams, configured as the replay tool's would be by `DYNAMODB_ENDPOINT`.
fn client() -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "local", "local", None, None, "local",
        ))
        .endpoint_url(crate::dynamodb::endpoint())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// The table's stream: its ARN and its shards' ids.
pub async fn stream_of_table(table: &str) -> (String, Vec<String>) {
    let streams = client();
    let listed = streams
        .list_streams()
        .table_name(table)
        .send()
        .await
        .expect("the table's streams are listed");
    let arn = listed
        .streams()
        .first()
        .and_then(|stream| stream.stream_arn())
        .expect("the table has a stream")
        .to_owned();
    let description = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("the stream is described");
    let shards = description
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
        .iter()
        .filter_map(|shard| shard.shard_id().map(str::to_owned))
        .collect();
    (arn, shards)
}

/// Every record the table's stream holds, as one Lambda batch (`{"Records": [...]}`).
pub async fn batch_of_table(table: &str) -> Value {
    let streams = client();
    let (arn, shards) = stream_of_table(table).await;
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("a shard iterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("the shard's records");
            if page.records().is_empty() {
                break;
            }
            records.extend(
                page.records()
                    .iter()
                    .map(|record| lambda_record(record, &arn)),
            );
            iterator = page.next_shard_iterator;
        }
    }
    records.sort_by_key(|record| {
        record["dynamodb"]["SequenceNumber"]
            .as_str()
            .and_then(|n| n.parse::<u128>().ok())
    });
    json!({ "Records": records })
}
