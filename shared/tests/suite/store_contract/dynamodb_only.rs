//! What only the DynamoDB store meets: an unreachable or frozen endpoint, answers lost on the way back, several processes sharing a table, imports.

use super::*;
use meters::store::{DeleteMeterRequest, UpdateMeterRequest};

/// Nothing listens on the port, so every call fails to connect: the store must say "unavailable"
/// (503, retry later), and the handler must show only a request id.
#[tokio::test]
async fn an_unreachable_dynamodb_is_reported_as_unavailable_without_internals() {
    let config = meters_testkit::dynamodb::unreachable();
    let store = DynamoDbStore::new(
        meters::store::dynamodb::dynamodb_client(&config).await,
        config.table_name.clone(),
    );
    let account = account();
    assert!(matches!(
        store.get(&account, MeterId::new(1).unwrap()).await,
        Err(StoreError::Unavailable(_))
    ));

    let error = meters::http::ApiError::from(
        store
            .list(&account, &ListQuery::default())
            .await
            .unwrap_err(),
    );
    let response = error.into_response("req-unreachable");
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(
        body["error"],
        "the meters store is unavailable; request id req-unreachable"
    );
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
}

/// DynamoDB Local behind a proxy that can hold back one answer past the SDK's 3 s attempt timeout: the
/// write is applied, its answer is lost, the SDK retries into its own earlier write.
pub(super) async fn dynamodb_with_lost_answers()
-> (meters_testkit::fault_proxy::FaultProxy, DynamoDbStore) {
    let (config, _) = meters_testkit::dynamodb::fresh_table("meters-lost").await;
    let proxy =
        meters_testkit::fault_proxy::FaultProxy::start(config.endpoint.as_deref().unwrap()).await;
    let through_proxy = DynamoDbConfig {
        endpoint: Some(proxy.endpoint.clone()),
        ..config
    };
    let store = DynamoDbStore::new(
        meters::store::dynamodb::dynamodb_client(&through_proxy).await,
        through_proxy.table_name.clone(),
    );
    (proxy, store)
}

const PAST_THE_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(3500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_create_whose_answer_was_lost_reports_the_meter_it_stored_and_stores_one() {
    let (proxy, store) = dynamodb_with_lost_answers().await;
    let account = account();
    proxy.delay_next_answer("TransactWriteItems", PAST_THE_ATTEMPT_TIMEOUT);
    let created = store
        .create(&account, new_meter("lost answer"), &tester())
        .await
        .unwrap();
    assert_eq!(proxy.delayed(), 1);
    let listed = every_meter(&store, &account).await;
    assert_eq!(listed, vec![created]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn an_update_whose_answer_was_lost_reports_the_meter_as_updated() {
    let (proxy, store) = dynamodb_with_lost_answers().await;
    let account = account();
    let meter = store
        .create(&account, new_meter("before"), &tester())
        .await
        .unwrap();
    // Echoing updated_at (optimistic concurrency) and If-Match: both differ once the first attempt landed.
    let echo = ReadOnlyEcho {
        updated_at: Some(meter.updated_at),
        ..ReadOnlyEcho::default()
    };
    proxy.delay_next_answer("TransactWriteItems", PAST_THE_ATTEMPT_TIMEOUT);
    let updated = store
        .update(
            &account,
            UpdateMeterRequest {
                id: meter.id,
                changes: rename("after"),
                read_only: echo,
                if_match: IfMatch::versions([meter.version]),
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!(proxy.delayed(), 1);
    assert_eq!(
        (updated.name.as_str(), updated.version),
        ("after", meter.version + 1)
    );
    assert_eq!(store.get(&account, meter.id).await.unwrap(), updated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_delete_whose_answer_was_lost_reports_it_deleted() {
    let (proxy, store) = dynamodb_with_lost_answers().await;
    let account = account();
    let meter = store
        .create(&account, new_meter("doomed"), &tester())
        .await
        .unwrap();
    proxy.delay_next_answer("TransactWriteItems", PAST_THE_ATTEMPT_TIMEOUT);
    store
        .delete(
            &account,
            DeleteMeterRequest {
                id: meter.id,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!(proxy.delayed(), 1);
    assert!(matches!(
        store.get(&account, meter.id).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_create_whose_answer_was_dropped_reports_the_meter_it_stored_and_stores_one() {
    let (proxy, store) = dynamodb_with_lost_answers().await;
    let account = account();
    proxy.drop_next_answer("TransactWriteItems");
    let created = store
        .create(&account, new_meter("dropped answer"), &tester())
        .await
        .unwrap();
    assert_eq!(proxy.delayed(), 1);
    assert_eq!(every_meter(&store, &account).await, vec![created]);
}

/// DynamoDB freezes mid-request: the handler answers 503 at the request deadline, never waits into the
/// function's timeout; once DynamoDB resumes, requests are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_frozen_dynamodb_gets_503_at_the_deadline_and_service_resumes_after() {
    use meters::auth::Authenticator;
    use meters_testkit::tokens::{hs256_config, token_for};
    let (proxy, store) = dynamodb_with_lost_answers().await;
    let account = account();
    store
        .create(&account, new_meter("before the freeze"), &tester())
        .await
        .unwrap();
    let app = meters::App::new(
        store,
        Authenticator::new(&hs256_config(meters_testkit::TEST_SECRET)).unwrap(),
    )
    .with_deadline(std::time::Duration::from_millis(1200));
    let list = || {
        let event = meters_testkit::HttpEvent::new("GET", "/api/v1/meters")
            .query(&format!("account_id={account}"))
            .bearer(&token_for(meters_testkit::TEST_SECRET, &[account]));
        meters::runtime::request_from_event(&event.http_api().to_string()).unwrap()
    };
    proxy.set_frozen(true);
    let started = std::time::Instant::now();
    let frozen = meters::Endpoint::ListMeters.handle(&app, list()).await;
    let waited = started.elapsed();
    assert_eq!(frozen.status(), 503);
    assert_eq!(frozen.headers()["retry-after"], "1");
    assert!(
        waited < std::time::Duration::from_millis(2000),
        "{waited:?}"
    );
    proxy.set_frozen(false);
    let resumed = meters::Endpoint::ListMeters.handle(&app, list()).await;
    assert_eq!(resumed.status(), 200);
}

/// The same, with nothing held between lists, so that each list reads as a cold process would: index
/// windows from either end, or the whole account in segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn every_list_variant_follows_the_list_conventions_in_a_process_that_holds_no_listing() {
    let store = meters_testkit::dynamodb::fresh_table("meters-cold").await.1;
    every_list_variant_follows_the_list_conventions_over_several_store_pages(Arc::new(
        small_tuning(store).with_listing_budget(0),
    ))
    .await;
}

/// Two processes on one table: the one that holds the account's listing must not answer from it after
/// the other wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_warm_process_holding_a_listing_sees_a_write_another_process_made() {
    let (config, writer) = meters_testkit::dynamodb::fresh_table("meters-two").await;
    let reader = small_tuning(DynamoDbStore::new(
        meters::store::dynamodb::dynamodb_client(&config).await,
        config.table_name.clone(),
    ));
    let account = account();
    let first = writer
        .create(&account, new_meter("first"), &tester())
        .await
        .unwrap();
    let by_location = ListQuery {
        sort_by: SortField::named("location").unwrap(),
        ..ListQuery::default()
    };
    let warm = reader.list(&account, &by_location).await.unwrap();
    assert_eq!(warm.meters, vec![first.clone()]);
    let second = writer
        .create(&account, new_meter("second"), &tester())
        .await
        .unwrap();
    let listed = reader.list(&account, &by_location).await.unwrap();
    assert_eq!(
        (listed.meters, listed.count),
        (vec![first.clone(), second.clone()], 2)
    );
    let changed = writer
        .update(
            &account,
            UpdateMeterRequest {
                id: first.id,
                changes: rename("first, renamed"),
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        reader.list(&account, &by_location).await.unwrap().meters[0],
        changed
    );
    writer
        .delete(
            &account,
            DeleteMeterRequest {
                id: second.id,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    let listed = reader.list(&account, &by_location).await.unwrap();
    assert_eq!((listed.meters, listed.count), (vec![changed], 1));
}

/// The migration path: meters with their own ids come in, the id counter is raised past them before
/// any create, their accounts are counted, and a second run changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn an_import_keeps_ids_raises_the_counter_past_them_and_counts_the_accounts() {
    let (_, store) = meters_testkit::dynamodb::fresh_table("meters-import").await;
    let (first, second) = (account(), account());
    let mut existing = store
        .create(&first, new_meter("created before"), &tester())
        .await
        .unwrap();
    let legacy = |id: i64, account: AccountId, name: &str| {
        let mut meter = Meter::create(
            MeterId::new(id).unwrap(),
            account,
            new_meter(name),
            parse_timestamp("created_at", "2021-03-04T05:06:07.891Z").unwrap(),
        );
        meter.version = 0;
        meter
    };
    let imported = vec![
        legacy(70_000, first, "imported a"),
        legacy(70_001, first, "imported b"),
        legacy(90_000, second, "imported c"),
    ];
    let report = store.import(imported.clone()).await.unwrap();
    assert_eq!(
        (
            report.imported,
            report.already_present,
            report.conflicts.len()
        ),
        (3, 0, 0)
    );
    assert_eq!((report.counter, report.accounts), (90_000, 2));
    // This process still holds ids of its block; a new process reserves past the imported ones.
    let fresh = DynamoDbStore::new(store.client().clone(), store.table());
    let created = fresh
        .create(&second, new_meter("after"), &tester())
        .await
        .unwrap();
    assert!(created.id.get() > 90_000, "{}", created.id);
    let listed = fresh.list(&first, &ListQuery::default()).await.unwrap();
    existing.version = 1;
    let mut expected = vec![existing.clone()];
    expected.extend(imported[..2].iter().cloned().map(|mut m| {
        m.version = 1;
        m
    }));
    assert_eq!((listed.meters, listed.count), (expected, 3));
    assert_eq!(
        fresh
            .list(&second, &ListQuery::default())
            .await
            .unwrap()
            .count,
        2
    );
    // Again: nothing written; a different meter under a taken id is refused, not written.
    let mut changed = imported.clone();
    changed[2].name = MeterName::parse("someone else").unwrap();
    let again = store.import(changed).await.unwrap();
    assert_eq!((again.imported, again.already_present), (0, 2));
    assert_eq!(again.conflicts, vec![MeterId::new(90_000).unwrap()]);
    assert_eq!(
        fresh
            .get(&second, MeterId::new(90_000).unwrap())
            .await
            .unwrap()
            .name
            .as_str(),
        "imported c"
    );
}

/// The restore runbook: a point-in-time restore lands in a new table; importing from it brings back what
/// was lost since (a deleted meter) and leaves what is still there, and the account's count is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn importing_from_a_restored_table_brings_back_a_deleted_meter_and_nothing_else() {
    let (_, live) = meters_testkit::dynamodb::fresh_table("meters-live").await;
    let (_, restored) = meters_testkit::dynamodb::fresh_table("meters-restored").await;
    let account = account();
    let mut kept = Vec::new();
    for name in ["first", "second", "third"] {
        kept.push(
            live.create(&account, new_meter(name), &tester())
                .await
                .unwrap(),
        );
    }
    // The restore: the table as it was, before the accident.
    assert_eq!(restored.import(kept.clone()).await.unwrap().imported, 3);
    live.delete(
        &account,
        DeleteMeterRequest {
            id: kept[1].id,
            if_match: IfMatch::Any,
            actor: tester(),
        },
    )
    .await
    .unwrap();
    let brought_back = live
        .import(live.meters_of_table(restored.table()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        (
            brought_back.imported,
            brought_back.already_present,
            brought_back.conflicts.len()
        ),
        (1, 2, 0)
    );
    let listed = every_meter(&live, &account).await;
    assert_eq!(
        listed.iter().map(|m| m.id).collect::<Vec<_>>(),
        kept.iter().map(|m| m.id).collect::<Vec<_>>()
    );
}

/// A create that lands after a list read its account's head and before it read the index (another
/// process's, run by the fault proxy at exactly that point) pushes no meter acknowledged before the list
/// off the page, and the count covers what the page shows: page 1 (read from the start of the order) and
/// the last page (read from its end), in every order an index serves, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_create_racing_a_list_pushes_no_acknowledged_meter_off_its_page() {
    let (proxy, store) = dynamodb_with_lost_answers().await;
    for sort in ["id", "name", "created_at"] {
        for order in [SortOrder::Ascending, SortOrder::Descending] {
            for (page, limit) in [(1, 100), (2, 4)] {
                let account = account();
                let mut old = Vec::new();
                for name in ["mmm 1", "mmm 2", "mmm 3", "mmm 4", "mmm 5", "zzz old meter"] {
                    old.push(
                        store
                            .create(&account, new_meter(name), &tester())
                            .await
                            .unwrap(),
                    );
                }
                // Another process: its own block of ids, above this one's.
                let writer = DynamoDbStore::new(store.client().clone(), store.table());
                proxy.before_next("Query", async move {
                    writer
                        .create(&account, new_meter("aaa new meter"), &tester())
                        .await
                        .expect("the racing create");
                });
                let query = ListQuery {
                    page,
                    limit,
                    sort_by: SortField::named(sort).unwrap(),
                    sort_order: order,
                    ..ListQuery::default()
                };
                let lister = DynamoDbStore::new(store.client().clone(), store.table());
                let listed = lister.list(&account, &query).await.unwrap();
                let now = every_meter(&store, &account).await;
                assert_eq!(now.len(), 7, "the racing create landed");
                assert_eq!(
                    listed,
                    expected_page(&now, &query),
                    "{sort} {order:?} page {page} of {limit}"
                );
                if page == 1 {
                    for meter in &old {
                        assert!(listed.meters.contains(meter), "{sort} {order:?}: {meter:?}");
                    }
                }
            }
        }
    }
}

/// The race as it happens between processes: three writer processes (each its own block of ids) and lists
/// each from a process that holds no listing, on one table (`racing_lists_and_creates`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn lists_in_other_processes_racing_creates_miss_no_acknowledged_meter() {
    let (config, _) = meters_testkit::dynamodb::fresh_table("meters-race").await;
    let client = meters::store::dynamodb::dynamodb_client(&config).await;
    let process = move || -> Store {
        Arc::new(DynamoDbStore::new(
            client.clone(),
            config.table_name.clone(),
        ))
    };
    let writers = (0..3).map(|_| process()).collect();
    racing_lists_and_creates(writers, process).await;
}

/// A meter imported with an id another account already holds is a conflict, not a second meter with that
/// id; one with an id past the import ceiling is refused. Neither is written, and the counter stays where
/// creates can still hand out ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn an_import_keeps_ids_unique_across_accounts_and_leaves_room_for_new_ids() {
    use meters::store::dynamodb::MAX_IMPORTED_ID;
    let (_, store) = meters_testkit::dynamodb::fresh_table("meters-import-unique").await;
    let (holder, importer) = (account(), account());
    let held = store
        .create(&holder, new_meter("held"), &tester())
        .await
        .unwrap();
    let at = parse_timestamp("created_at", "2021-03-04T05:06:07.891Z").unwrap();
    let clash = Meter::create(held.id, importer, new_meter("clash"), at);
    let too_high = Meter::create(
        MeterId::new(MAX_IMPORTED_ID + 1).unwrap(),
        importer,
        new_meter("too high"),
        at,
    );
    let report = store.import(vec![clash, too_high.clone()]).await.unwrap();
    assert_eq!(report.conflicts, vec![held.id]);
    assert_eq!(report.refused, vec![too_high.id]);
    assert_eq!(report.imported, 0);
    assert!(every_meter(&store, &importer).await.is_empty());
    assert_eq!(store.get(&holder, held.id).await.unwrap(), held);
    // Not this account's meter either: another account's, as before the import.
    assert!(matches!(
        store.get(&importer, held.id).await,
        Err(StoreError::OtherAccount(_))
    ));
    let fresh = DynamoDbStore::new(store.client().clone(), store.table());
    let created = fresh
        .create(&importer, new_meter("after"), &tester())
        .await
        .unwrap();
    assert!(created.id.get() < MAX_IMPORTED_ID);
}

/// A counter with no room left for a block (an old import raised it there) fails every create with one
/// clear error, and is never moved further.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_counter_with_no_room_for_a_block_fails_creates_clearly_and_stays_put() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use meters::store::dynamodb::{COUNTER_ATTRIBUTE, COUNTER_PARTITION};
    let (_, store) = meters_testkit::dynamodb::fresh_table("meters-counter-full").await;
    let counter_key = [
        ("account_id", AttributeValue::S(COUNTER_PARTITION.into())),
        ("id", AttributeValue::N("0".into())),
    ];
    let counter = || async {
        store
            .client()
            .get_item()
            .table_name(store.table())
            .set_key(Some(
                counter_key.clone().map(|(k, v)| (k.to_owned(), v)).into(),
            ))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .and_then(|item| item.get(COUNTER_ATTRIBUTE).cloned())
    };
    let nearly_full = (i64::MAX - 50).to_string();
    let mut item: std::collections::HashMap<String, AttributeValue> =
        counter_key.clone().map(|(k, v)| (k.to_owned(), v)).into();
    item.insert(
        COUNTER_ATTRIBUTE.into(),
        AttributeValue::N(nearly_full.clone()),
    );
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        let refused = store
            .create(&account(), new_meter("no room"), &tester())
            .await;
        let Err(StoreError::Internal(error)) = refused else {
            panic!("a clear failure, not {refused:?}");
        };
        assert!(error.to_string().contains("ids are exhausted"), "{error}");
        assert_eq!(
            counter().await,
            Some(AttributeValue::N(nearly_full.clone()))
        );
    }
}

/// Concurrent requests for one account's listing in one process share one read: eight searches at once in
/// a process that holds no listing cost the queries of a single read, not eight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn concurrent_searches_in_one_process_share_one_read_of_the_account() {
    let (proxy, store) = dynamodb_with_lost_answers().await;
    let account = account();
    for n in 0..120 {
        store
            .create(&account, new_meter(&format!("shared {n:03}")), &tester())
            .await
            .unwrap();
    }
    let search = ListQuery {
        search: Some("shared".into()),
        ..ListQuery::default()
    };
    let process = || small_tuning(DynamoDbStore::new(store.client().clone(), store.table()));
    let before = proxy.requests("Query");
    let alone = process().list(&account, &search).await.unwrap();
    let one_read = proxy.requests("Query") - before;
    let together = Arc::new(process());
    let before = proxy.requests("Query");
    let answers = join_all((0..8).map(|_| {
        let (store, search) = (Arc::clone(&together), search.clone());
        async move { store.list(&account, &search).await.unwrap() }
    }))
    .await;
    let shared = proxy.requests("Query") - before;
    assert!(
        one_read >= 2,
        "a read of the account takes queries: {one_read}"
    );
    assert_eq!(shared, one_read, "eight searches, one read");
    assert!(answers.iter().all(|answer| *answer == alone));
}

/// The stream's record of a delete holds only the meter as it was; who deleted it is on the tombstone the
/// delete writes in the same transaction, at the negated id, where no list or count sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_delete_leaves_a_lasting_tombstone_naming_who_deleted_it_and_the_version_that_no_list_counts()
 {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (_, store) = meters_testkit::dynamodb::fresh_table("meters-tombstone").await;
    let account = account();
    let kept = store
        .create(&account, new_meter("kept"), &tester())
        .await
        .unwrap();
    let doomed = store
        .create(&account, new_meter("doomed"), &tester())
        .await
        .unwrap();
    let deleter = meters::domain::Actor {
        sub: Some("admin-7".into()),
        client_id: None,
    };
    store
        .delete(
            &account,
            DeleteMeterRequest {
                id: doomed.id,
                if_match: IfMatch::Any,
                actor: deleter.clone(),
            },
        )
        .await
        .unwrap();
    let tombstone = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("account_id", AttributeValue::S(account.to_string()))
        .key("id", AttributeValue::N((-doomed.id.get()).to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the delete wrote a tombstone");
    let deleted_by = tombstone["deleted_by"].as_m().unwrap();
    assert_eq!(deleted_by["sub"].as_s().unwrap(), "admin-7");
    // Kept for good, with the version deleted: the id stays its account's, and a restore goes past it.
    assert!(!tombstone.contains_key("expires_at"), "{tombstone:?}");
    assert_eq!(
        tombstone["version"].as_n().unwrap(),
        &doomed.version.to_string()
    );
    for query in [
        ListQuery::default(),
        ListQuery {
            search: Some("e".into()),
            ..ListQuery::default()
        },
    ] {
        let listed = store.list(&account, &query).await.unwrap();
        assert_eq!(listed.count, 1);
        assert_eq!(listed.meters, vec![kept.clone()]);
    }
}
