//! A warm process's listing under another process's writes (DynamoDB only): brought current from the
//! account head's recent changes and the change log before them by reading only the meters written since,
//! exactly, and read whole when the log no longer reaches back to it.

use aws_sdk_dynamodb::types::AttributeValue;

use super::*;
use meters::store::{DeleteMeterRequest, UpdateMeterRequest};

/// What `work` read, in capacity units, as the request's log line would say.
pub(super) async fn read_units<T>(work: impl std::future::Future<Output = T>) -> (T, f64) {
    let invocation = meters::telemetry::Invocation::new(None, None, None);
    meters::telemetry::within_request(invocation, async {
        let output = work.await;
        (output, meters::telemetry::current().capacity.read)
    })
    .await
}

pub(super) fn searched(text: &str) -> ListQuery {
    ListQuery {
        search: Some(text.to_owned()),
        sort_by: SortField::named("location").unwrap(),
        limit: 100,
        ..ListQuery::default()
    }
}

async fn two_processes() -> (DynamoDbStore, DynamoDbStore) {
    let (config, writer) = meters_testkit::dynamodb::fresh_table("meters-refresh").await;
    let reader = small_tuning(DynamoDbStore::new(
        meters::store::dynamodb::dynamodb_client(&config).await,
        config.table_name.clone(),
    ));
    (writer, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_warm_listing_is_brought_current_by_reading_only_the_meters_written_since() {
    let (writer, reader) = two_processes().await;
    let account = account();
    let created = seeded(&writer, &account, 200).await;
    let (_, whole) = read_units(reader.list(&account, &searched("m1"))).await;
    let (_, held) = read_units(reader.list(&account, &searched("m1"))).await;
    assert_eq!(
        held, 1.0,
        "a listing held at the head's version costs the head"
    );

    for meter in &created[..3] {
        writer
            .update(
                &account,
                UpdateMeterRequest {
                    id: meter.id,
                    changes: rename(&format!("{}, renamed", meter.name.as_str())),
                    read_only: ReadOnlyEcho::default(),
                    if_match: IfMatch::Any,
                    actor: tester(),
                },
            )
            .await
            .unwrap();
    }
    writer
        .delete(
            &account,
            DeleteMeterRequest {
                id: created[10].id,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    writer
        .create(&account, new_meter("m1 new"), &tester())
        .await
        .unwrap();

    let (listed, refreshed) = read_units(reader.list(&account, &searched("m1"))).await;
    let afresh = small_tuning(DynamoDbStore::new(writer.client().clone(), writer.table()))
        .list(&account, &searched("m1"))
        .await
        .unwrap();
    assert_eq!(listed.unwrap(), afresh, "brought current exactly");
    // The head, then the four meters written since (three updates and a create) by key.
    assert_eq!(refreshed, 5.0, "whole: {whole} RCU");
    assert!(
        whole > 3.0 * refreshed,
        "whole: {whole} RCU, brought current: {refreshed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn after_more_writes_than_the_head_keeps_a_warm_listing_is_brought_current_from_the_change_log()
 {
    let (writer, reader) = two_processes().await;
    let account = account();
    let created = seeded(&writer, &account, 200).await;
    let (_, whole) = read_units(reader.list(&account, &searched("m"))).await;
    let first = &created[0];
    let latest = renamed_over_and_over(&writer, &account, first, 70).await;
    writer
        .delete(
            &account,
            DeleteMeterRequest {
                id: created[1].id,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    writer
        .create(&account, new_meter("first new"), &tester())
        .await
        .unwrap();

    let (listed, refreshed) = read_units(reader.list(&account, &searched("first"))).await;
    let listed = listed.unwrap();
    let afresh = small_tuning(DynamoDbStore::new(writer.client().clone(), writer.table()))
        .list(&account, &searched("first"))
        .await
        .unwrap();
    assert_eq!(listed, afresh, "brought current exactly");
    assert_eq!(listed.count, 2);
    assert!(listed.meters.contains(&latest));
    // The head, the log's two closed windows (one read), and the two meters written since, by key.
    assert!(
        refreshed <= 5.0 && whole > 3.0 * refreshed,
        "whole: {whole} RCU, brought current: {refreshed}"
    );
    let everything = reader.list(&account, &searched("")).await.unwrap();
    assert_eq!(everything.count, 200);
    // The head stays one write unit: its recent changes never pass their cap.
    let head = writer
        .client()
        .get_item()
        .table_name(writer.table())
        .key("account_id", AttributeValue::S(account.to_string()))
        .key("id", AttributeValue::N("0".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let entries = head
        .keys()
        .filter(|name| {
            name.strip_prefix('r')
                .is_some_and(|id| id.parse::<i64>().is_ok())
        })
        .count();
    let writes: usize = head["recent_count"].as_n().unwrap().parse().unwrap();
    assert!(
        (1..=32).contains(&entries) && writes <= 32,
        "{entries} entries, {writes} writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_warm_listing_older_than_the_change_log_reaches_is_read_whole_and_exact() {
    let (writer, reader) = two_processes().await;
    let account = account();
    let first = writer
        .create(&account, new_meter("first"), &tester())
        .await
        .unwrap();
    reader.list(&account, &searched("f")).await.unwrap();
    let mut latest = first.clone();
    for n in 0..50 {
        latest = writer
            .update(
                &account,
                UpdateMeterRequest {
                    id: first.id,
                    changes: rename(&format!("first {n}")),
                    read_only: ReadOnlyEcho::default(),
                    if_match: IfMatch::Any,
                    actor: tester(),
                },
            )
            .await
            .unwrap();
        writer
            .create(&account, new_meter(&format!("other {n}")), &tester())
            .await
            .unwrap();
    }
    // As if the log's windows had expired.
    assert!(forget_change_log(&writer, &account).await > 0);
    let listed = reader.list(&account, &searched("first")).await.unwrap();
    assert_eq!((listed.meters, listed.count), (vec![latest], 1));
    let everything = reader.list(&account, &searched("")).await.unwrap();
    assert_eq!(everything.count, 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_window_closed_after_the_head_was_read_does_not_stop_a_listing_being_brought_current() {
    let (writer, reader) = two_processes().await;
    let account = account();
    let first = writer
        .create(&account, new_meter("first"), &tester())
        .await
        .unwrap();
    for n in 0..150 {
        writer
            .create(&account, new_meter(&format!("other {n}")), &tester())
            .await
            .unwrap();
    }
    let (_, whole) = read_units(reader.list(&account, &searched("f"))).await;
    renamed_over_and_over(&writer, &account, &first, 40).await;
    // As a write racing this list would leave it: the window the head holds now, already closed in the log.
    let head = head_item(&writer, &account).await;
    let (since, version): (i128, i128) = (
        head["recent_since"].as_n().unwrap().parse().unwrap(),
        head["list_version"].as_n().unwrap().parse().unwrap(),
    );
    let mut raced: std::collections::HashMap<String, AttributeValue> = head
        .iter()
        .filter(|(name, _)| name.starts_with('r') && name[1..].parse::<i64>().is_ok())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    raced.insert("account_id".into(), AttributeValue::S(account.to_string()));
    let until = version + 1;
    raced.insert(
        "id".into(),
        AttributeValue::N((-10_000_000_000_000_000_000i128 - until).to_string()),
    );
    raced.insert("recent_since".into(), AttributeValue::N(since.to_string()));
    raced.insert("log_until".into(), AttributeValue::N(until.to_string()));
    writer
        .client()
        .put_item()
        .table_name(writer.table())
        .set_item(Some(raced))
        .send()
        .await
        .unwrap();

    let (listed, units) = read_units(reader.list(&account, &searched("first"))).await;
    assert_eq!(listed.unwrap().meters[0].name.as_str(), "first 39");
    // The head, the log, and the one meter written: not the account read whole.
    assert!(
        units <= 3.0 && whole > 3.0 * units,
        "{units} RCU, whole: {whole}"
    );
}

async fn head_item(
    store: &DynamoDbStore,
    account: &AccountId,
) -> std::collections::HashMap<String, AttributeValue> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("account_id", AttributeValue::S(account.to_string()))
        .key("id", AttributeValue::N("0".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

/// `meters` new meters named `m0`, `m1`, …, as created.
pub(super) async fn seeded(
    writer: &DynamoDbStore,
    account: &AccountId,
    meters: usize,
) -> Vec<Meter> {
    let mut created = Vec::new();
    for n in 0..meters {
        created.push(
            writer
                .create(account, new_meter(&format!("m{n}")), &tester())
                .await
                .unwrap(),
        );
    }
    created
}

/// `meter` renamed `first 0`, `first 1`, … `times` times over; the meter as the last rename left it.
async fn renamed_over_and_over(
    writer: &DynamoDbStore,
    account: &AccountId,
    meter: &Meter,
    times: usize,
) -> Meter {
    let mut latest = meter.clone();
    for n in 0..times {
        latest = writer
            .update(
                account,
                UpdateMeterRequest {
                    id: meter.id,
                    changes: rename(&format!("first {n}")),
                    read_only: ReadOnlyEcho::default(),
                    if_match: IfMatch::Any,
                    actor: tester(),
                },
            )
            .await
            .unwrap();
    }
    latest
}

/// Deletes the account's change log items (ids below every i64), as their expiry would; how many there were.
pub(super) async fn forget_change_log(store: &DynamoDbStore, account: &AccountId) -> usize {
    let items = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("account_id = :account AND id < :lowest_meter")
        .expression_attribute_values(":account", AttributeValue::S(account.to_string()))
        .expression_attribute_values(":lowest_meter", AttributeValue::N(i64::MIN.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    for item in &items {
        store
            .client()
            .delete_item()
            .table_name(store.table())
            .key("account_id", item["account_id"].clone())
            .key("id", item["id"].clone())
            .send()
            .await
            .unwrap();
    }
    items.len()
}
