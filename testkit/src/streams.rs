//! A table's stream on DynamoDB Local, read as Lambda's event source mapping reads DynamoDB's: every record
//! from the start, in sequence order, rendered as the batch event a stream-triggered function receives.

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use serde_json::{Map, Value, json};

/// Every record the table's stream holds, as one Lambda batch (`{"Records": [...]}`).
pub async fn batch_of_table(table: &str) -> Value {
    let endpoint = crate::dynamodb::endpoint();
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "local", "local", None, None, "local",
        ))
        .endpoint_url(&endpoint)
        .build();
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(config);
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
    let mut records = Vec::new();
    for shard in description
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
    {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap_or_default())
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

/// One record as Lambda delivers it.
fn lambda_record(record: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let change = record.dynamodb().expect("a stream record has its change");
    let mut dynamodb = Map::new();
    if let Some(at) = change.approximate_creation_date_time() {
        dynamodb.insert(
            "ApproximateCreationDateTime".into(),
            json!(at.as_secs_f64().floor()),
        );
    }
    let image = |item: Option<&std::collections::HashMap<String, AttributeValue>>| {
        item.map(|item| {
            Value::Object(
                item.iter()
                    .map(|(k, v)| (k.clone(), attribute(v)))
                    .collect(),
            )
        })
    };
    for (name, value) in [
        ("Keys", image(change.keys())),
        ("NewImage", image(change.new_image())),
        ("OldImage", image(change.old_image())),
    ] {
        if let Some(value) = value {
            dynamodb.insert(name.into(), value);
        }
    }
    dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number()));
    dynamodb.insert("SizeBytes".into(), json!(change.size_bytes()));
    dynamodb.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|name| name.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": arn,
    })
}

/// An attribute value in DynamoDB's JSON (`{"S": "…"}`), as stream events carry it.
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
        AttributeValue::M(map) => json!({
            "M": map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<Map<_, _>>()
        }),
        other => panic!("an attribute type this test does not know: {other:?}"),
    }
}
