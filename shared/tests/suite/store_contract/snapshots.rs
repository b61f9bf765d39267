//! Listing snapshots in S3 (moto's server) beside DynamoDB Local: a process that holds no listing starts
//! from the account's snapshot and brings it current from the change log, exactly, reading only the meters
//! written since; a snapshot it cannot use (another account's, one the log does not reach) costs a whole
//! read, never a wrong list, and is replaced.

use meters::store::snapshots::S3Snapshots;

use super::listing_refresh::{forget_change_log, read_units, searched, seeded};
use super::*;
use meters::store::{DeleteMeterRequest, UpdateMeterRequest};

/// A process of its own on the table, keeping snapshots in the bucket.
fn process(config: &DynamoDbStore, snapshots: &S3Snapshots) -> DynamoDbStore {
    small_tuning(DynamoDbStore::new(config.client().clone(), config.table()))
        .with_snapshots(Arc::new(snapshots.clone()))
}

/// The same list, in a process with no snapshots and no listing: what every answer must equal.
async fn afresh(writer: &DynamoDbStore, account: &AccountId, query: &ListQuery) -> ListPage {
    small_tuning(DynamoDbStore::new(writer.client().clone(), writer.table()))
        .list(account, query)
        .await
        .unwrap()
}

fn queries() -> Vec<ListQuery> {
    let by = |field: &str, order: SortOrder, page: usize| ListQuery {
        sort_by: SortField::named(field).unwrap(),
        sort_order: order,
        limit: 25,
        page,
        ..ListQuery::default()
    };
    vec![
        searched("m1"),
        searched("renamed"),
        by("location", SortOrder::Descending, 3),
        by("name", SortOrder::Ascending, 5),
        by("last_reading_value", SortOrder::Ascending, 2),
    ]
}

/// 40 writes (more than the head keeps, so the change log is needed): 38 updates over five meters, a
/// delete and a create.
async fn forty_writes(writer: &DynamoDbStore, account: &AccountId, created: &[Meter]) {
    for n in 0..38 {
        let meter = &created[n % 5];
        writer
            .update(
                account,
                UpdateMeterRequest {
                    id: meter.id,
                    changes: rename(&format!("{} renamed {n}", meter.name.as_str())),
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
            account,
            DeleteMeterRequest {
                id: created[7].id,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    writer
        .create(account, new_meter("m1 created later"), &tester())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto's server: run scripts/test"]
async fn a_cold_process_starts_from_the_snapshot_and_reads_only_the_meters_written_since() {
    let (_, writer) = meters_testkit::dynamodb::fresh_table("meters-snapshot").await;
    let (bucket, snapshots) = meters_testkit::s3::fresh_bucket("meters-snapshot").await;
    let account = account();
    let created = seeded(&writer, &account, 300).await;

    let first = process(&writer, &snapshots);
    let (_, whole) = read_units(first.list(&account, &searched("m1"))).await;
    let key = S3Snapshots::key_of(&account);
    meters_testkit::s3::written(&bucket, &key, None).await;

    forty_writes(&writer, &account, &created).await;
    let cold = process(&writer, &snapshots);
    let (listed, cold_units) = read_units(cold.list(&account, &searched("m1"))).await;
    assert_eq!(
        listed.unwrap(),
        afresh(&writer, &account, &searched("m1")).await
    );
    for query in queries() {
        let (listed, units) = read_units(cold.list(&account, &query)).await;
        assert_eq!(
            listed.unwrap(),
            afresh(&writer, &account, &query).await,
            "{query:?}"
        );
        assert_eq!(units, 1.0, "held at the head's version: {query:?}");
    }
    // The head, the log's windows (one read), the five updated meters and the created one, by key.
    assert!(
        cold_units <= 9.0 && whole > 3.0 * cold_units,
        "whole: {whole} RCU, from the snapshot: {cold_units}"
    );
    // Another account's snapshot is never this one's.
    let other = AccountId::parse(meters_testkit::OTHER_ACCOUNT).unwrap();
    assert_eq!(cold.list(&other, &searched("m")).await.unwrap().count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto's server: run scripts/test"]
async fn a_snapshot_kept_under_another_accounts_name_is_never_listed() {
    let (_, writer) = meters_testkit::dynamodb::fresh_table("meters-snapshot").await;
    let (bucket, snapshots) = meters_testkit::s3::fresh_bucket("meters-snapshot").await;
    let (account, other) = (
        account(),
        AccountId::parse(meters_testkit::OTHER_ACCOUNT).unwrap(),
    );
    seeded(&writer, &account, 40).await;
    writer
        .create(
            &other,
            new_meter("the other account's only meter"),
            &tester(),
        )
        .await
        .unwrap();
    process(&writer, &snapshots)
        .list(&account, &searched("m"))
        .await
        .unwrap();
    let stolen = meters_testkit::s3::written(&bucket, &S3Snapshots::key_of(&account), None).await;
    meters_testkit::s3::client()
        .put_object()
        .bucket(&bucket)
        .key(S3Snapshots::key_of(&other))
        .body(stolen.into())
        .send()
        .await
        .unwrap();

    let listed = process(&writer, &snapshots)
        .list(&other, &searched(""))
        .await
        .unwrap();
    assert_eq!(listed, afresh(&writer, &other, &searched("")).await);
    assert_eq!(listed.count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto's server: run scripts/test"]
async fn a_snapshot_older_than_the_change_log_reaches_costs_a_whole_read_and_is_replaced() {
    let (_, writer) = meters_testkit::dynamodb::fresh_table("meters-snapshot").await;
    let (bucket, snapshots) = meters_testkit::s3::fresh_bucket("meters-snapshot").await;
    let account = account();
    let created = seeded(&writer, &account, 120).await;
    process(&writer, &snapshots)
        .list(&account, &searched("m"))
        .await
        .unwrap();
    let key = S3Snapshots::key_of(&account);
    let kept = meters_testkit::s3::written(&bucket, &key, None).await;

    forty_writes(&writer, &account, &created).await;
    assert!(forget_change_log(&writer, &account).await > 0);
    let cold = process(&writer, &snapshots);
    for query in queries() {
        let listed = cold.list(&account, &query).await.unwrap();
        assert_eq!(listed, afresh(&writer, &account, &query).await, "{query:?}");
    }
    let replaced = meters_testkit::s3::written(&bucket, &key, Some(&kept)).await;
    let snapshot = meters::store::snapshots::decode(&account, &replaced).unwrap();
    let head_count = afresh(&writer, &account, &searched("")).await.count;
    assert_eq!(snapshot.listing.len(), head_count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto's server: run scripts/test"]
async fn after_an_import_the_snapshot_written_spares_every_list_process_a_whole_read() {
    let (_, writer) = meters_testkit::dynamodb::fresh_table("meters-snapshot").await;
    let (_, snapshots) = meters_testkit::s3::fresh_bucket("meters-snapshot").await;
    let account = account();
    let importer = process(&writer, &snapshots);
    let meters: Vec<Meter> = (0..200)
        .map(|n| meters_testkit::meters::realistic(n as i64 + 1, account, n))
        .collect();
    importer.import(meters).await.unwrap();
    let (written, whole) = read_units(importer.write_snapshot(&account)).await;
    assert!(written.unwrap());
    let other = AccountId::parse(meters_testkit::OTHER_ACCOUNT).unwrap();
    assert!(
        !importer.write_snapshot(&other).await.unwrap(),
        "no head, no snapshot"
    );

    let query = searched("meter 1");
    let (listed, units) = read_units(process(&writer, &snapshots).list(&account, &query)).await;
    assert_eq!(listed.unwrap(), afresh(&writer, &account, &query).await);
    assert_eq!(units, 1.0, "the head only (whole: {whole} RCU)");

    // The first write after the import starts the head's recent changes from the snapshot's version.
    let renamed = writer
        .update(
            &account,
            UpdateMeterRequest {
                id: MeterId::new(5).unwrap(),
                changes: rename("meter 1 renamed"),
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    let (listed, units) = read_units(process(&writer, &snapshots).list(&account, &query)).await;
    let listed = listed.unwrap();
    assert_eq!(listed, afresh(&writer, &account, &query).await);
    assert!(listed.meters.contains(&renamed));
    assert_eq!(
        units, 2.0,
        "the head and the meter written (whole: {whole} RCU)"
    );
}
