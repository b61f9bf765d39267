//! Readings on both stores: applied only when later than the meter's, whatever the order and repetition of
//! arrival and whatever `PUT`s race them; never a metadata write; shown by `GET` at once, with a new `ETag`;
//! and by lists within the bound (the contract's DynamoDB stores take no age: they show them at once too).

use super::*;
use meters::domain::meter::{EntityTag, Timestamp};
use meters::domain::reading::Reading;
use meters::store::{Applied, DeleteMeterRequest, ReadingStore, UpdateMeterRequest};

fn reading(meter: &Meter, value: f64, at: &str) -> Reading {
    Reading {
        account_id: meter.account_id,
        meter_id: meter.id,
        value: ReadingValue::parse(value).unwrap(),
        at: parse_timestamp("at", at).unwrap(),
    }
}

fn minute(n: u32) -> String {
    format!("2027-01-01T{:02}:{:02}:00Z", n / 60, n % 60)
}

/// A small generator with a seed, so a failing interleaving can be run again.
struct Shuffle(u64);

impl Shuffle {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for at in (1..items.len()).rev() {
            items.swap(at, self.below(at + 1));
        }
    }
}

pub(super) async fn a_later_reading_applies_and_an_earlier_or_repeated_one_changes_nothing(
    store: Store,
) {
    let account = account();
    let created = store
        .create(&account, new_meter("read"), &tester())
        .await
        .unwrap();
    let first = reading(&created, 10.5, "2027-01-01T00:15:00+01:00");
    assert_eq!(
        store.apply_reading(&account, &first).await.unwrap(),
        Applied::Applied
    );
    let read = store.get(&account, created.id).await.unwrap();
    assert_eq!(read.last_reading_value.map(|v| v.get()), Some(10.5));
    assert_eq!(read.last_reading_at, Some(first.at));
    // Not a metadata write: the version and `updated_at` stay; the representation, and so the tag, moved.
    assert_eq!(
        (read.version, read.updated_at),
        (created.version, created.updated_at)
    );
    assert_ne!(read.etag(), created.etag());
    for not_later in [
        first,
        reading(&created, 99.0, "2027-01-01T00:15:00+01:00"),
        reading(&created, 99.0, "2026-12-31T23:14:59Z"),
    ] {
        assert_eq!(
            store.apply_reading(&account, &not_later).await.unwrap(),
            Applied::NotLater,
            "{not_later:?}"
        );
    }
    assert_eq!(store.get(&account, created.id).await.unwrap(), read);
    // The same instant written another way is the same instant.
    let same = reading(&created, 1.0, "2026-12-31T23:15:00Z");
    assert_eq!(
        store.apply_reading(&account, &same).await.unwrap(),
        Applied::NotLater
    );
    let later = reading(&created, 11.0, "2026-12-31T23:15:00.000000001Z");
    assert_eq!(
        store.apply_reading(&account, &later).await.unwrap(),
        Applied::Applied
    );
}

pub(super) async fn a_reading_never_reaches_another_accounts_meter_or_none(store: Store) {
    let (owner, other) = (account(), account());
    let created = store
        .create(&owner, new_meter("theirs"), &tester())
        .await
        .unwrap();
    let mut foreign = reading(&created, 5.0, "2027-01-01T00:00:00Z");
    foreign.account_id = other;
    let refused = store.apply_reading(&other, &foreign).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(id)) if id == created.id),
        "{refused:?}"
    );
    let mut missing = reading(&created, 5.0, "2027-01-01T00:00:00Z");
    missing.meter_id = MeterId::new(created.id.get() + 1_000_000).unwrap();
    let refused = store.apply_reading(&owner, &missing).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    assert_eq!(store.get(&owner, created.id).await.unwrap(), created);
    // A deleted meter takes no readings.
    store
        .delete(
            &owner,
            DeleteMeterRequest {
                id: created.id,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    let refused = store
        .apply_reading(&owner, &reading(&created, 5.0, "2027-01-01T00:00:00Z"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
}

/// Property: for 12 seeds, 20 readings of one meter at distinct times, each sent one to three times, in a
/// shuffled order, eight at once, with renames racing them, end with the latest reading; every rename lands.
pub(super) async fn any_interleaving_and_repetition_of_readings_racing_puts_ends_with_the_latest(
    store: Store,
) {
    let account = account();
    for seed in 1..=12u64 {
        let mut shuffle = Shuffle(seed);
        let meter = store
            .create(&account, new_meter(&format!("seed {seed}")), &tester())
            .await
            .unwrap();
        let mut sent: Vec<Reading> = Vec::new();
        for n in 0..20u32 {
            let one = reading(&meter, f64::from(n) * 1.5, &minute(n));
            for _ in 0..=shuffle.below(3) {
                sent.push(one);
            }
        }
        shuffle.shuffle(&mut sent);
        let latest = sent.iter().max_by_key(|one| one.at).copied().unwrap();
        let renames = 6;
        let readings = futures::stream::iter(sent.clone())
            .map(|one| {
                let store = Arc::clone(&store);
                async move { store.apply_reading(&account, &one).await.unwrap() }
            })
            .buffer_unordered(8)
            .collect::<Vec<Applied>>();
        let puts = join_all((0..renames).map(|n| {
            let store = Arc::clone(&store);
            async move {
                store
                    .update(
                        &account,
                        UpdateMeterRequest {
                            id: meter.id,
                            changes: rename(&format!("seed {seed} rename {n}")),
                            read_only: ReadOnlyEcho::default(),
                            if_match: IfMatch::Any,
                            actor: tester(),
                        },
                    )
                    .await
                    .unwrap()
            }
        }));
        let (applied, _) = futures::join!(readings, puts);
        let now = store.get(&account, meter.id).await.unwrap();
        assert_eq!(
            (now.last_reading_at, now.last_reading_value),
            (Some(latest.at), Some(latest.value)),
            "seed {seed}"
        );
        assert_eq!(now.version, meter.version + renames, "seed {seed}");
        let counted = applied.iter().filter(|a| **a == Applied::Applied).count() as u64;
        assert_eq!(
            now.readings, counted,
            "seed {seed}: each applied reading counted once"
        );
        assert!((1..=20).contains(&counted), "seed {seed}: {counted}");
    }
}

pub(super) async fn an_if_match_from_before_a_reading_is_refused(store: Store) {
    let account = account();
    let created = store
        .create(&account, new_meter("tagged"), &tester())
        .await
        .unwrap();
    let before = IfMatch::Tags(vec![EntityTag::of(&created)]);
    store
        .apply_reading(&account, &reading(&created, 1.0, "2027-01-01T00:00:00Z"))
        .await
        .unwrap();
    let update = |if_match: IfMatch, name: &str| UpdateMeterRequest {
        id: created.id,
        changes: rename(name),
        read_only: ReadOnlyEcho::default(),
        if_match,
        actor: tester(),
    };
    let refused = store.update(&account, update(before, "stale")).await;
    assert!(
        matches!(refused, Err(StoreError::PreconditionFailed(_))),
        "{refused:?}"
    );
    let now = store.get(&account, created.id).await.unwrap();
    let updated = store
        .update(
            &account,
            update(IfMatch::Tags(vec![EntityTag::of(&now)]), "fresh"),
        )
        .await
        .unwrap();
    // The update keeps the reading and counts on from it.
    assert_eq!((updated.version, updated.readings), (2, 1));
    assert_eq!(updated.last_reading_at, now.last_reading_at);
}

/// A `PUT` of `last_reading_*` is a metadata write: it always applies, even back in time, and what a
/// reading must then be later than is what it set.
pub(super) async fn a_put_of_the_reading_fields_always_applies_and_readings_follow_it(
    store: Store,
) {
    let account = account();
    let created = store
        .create(&account, new_meter("put"), &tester())
        .await
        .unwrap();
    store
        .apply_reading(&account, &reading(&created, 9.0, "2027-01-01T10:00:00Z"))
        .await
        .unwrap();
    let back: Timestamp = parse_timestamp("at", "2027-01-01T08:00:00Z").unwrap();
    let put = store
        .update(
            &account,
            UpdateMeterRequest {
                id: created.id,
                changes: MeterChanges {
                    last_reading_value: Change::Set(ReadingValue::parse(1.0).unwrap()),
                    last_reading_at: Change::Set(back),
                    ..MeterChanges::default()
                },
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!((put.version, put.last_reading_at), (2, Some(back)));
    let after_put = reading(&created, 2.0, "2027-01-01T09:00:00Z");
    assert_eq!(
        store.apply_reading(&account, &after_put).await.unwrap(),
        Applied::Applied
    );
    let cleared = store
        .update(
            &account,
            UpdateMeterRequest {
                id: created.id,
                changes: MeterChanges {
                    last_reading_value: Change::Clear,
                    last_reading_at: Change::Clear,
                    ..MeterChanges::default()
                },
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.last_reading_at, None);
    assert_eq!(
        store
            .apply_reading(&account, &reading(&created, 3.0, "2000-01-01T00:00:00Z"))
            .await
            .unwrap(),
        Applied::Applied
    );
}

/// Lists show readings, sort by what they show, and keep their count, with readings applied between them.
pub(super) async fn lists_show_readings_and_sort_by_what_they_show(store: Store) {
    let account = account();
    let mut meters = Vec::new();
    for n in 0..40 {
        meters.push(
            store
                .create(&account, new_meter(&format!("listed {n:02}")), &tester())
                .await
                .unwrap(),
        );
    }
    // Listed once, so a listing is held where the store holds one.
    assert_eq!(every_meter(store.as_ref(), &account).await.len(), 40);
    for (n, meter) in meters.iter().enumerate() {
        // Values fall as ids rise, so the value order is the id order reversed.
        let one = reading(meter, 1000.0 - n as f64, &minute(n as u32));
        store.apply_reading(&account, &one).await.unwrap();
    }
    let listed = every_meter(store.as_ref(), &account).await;
    for (meter, shown) in meters.iter().zip(&listed) {
        assert_eq!(shown.id, meter.id);
        assert_eq!(
            shown.last_reading_at,
            store.get(&account, meter.id).await.unwrap().last_reading_at,
            "meter {}",
            meter.id
        );
    }
    for (field, order) in [
        ("last_reading_value", SortOrder::Ascending),
        ("last_reading_at", SortOrder::Descending),
    ] {
        let page = store
            .list(
                &account,
                &ListQuery {
                    sort_by: SortField::named(field).unwrap(),
                    sort_order: order,
                    limit: 10,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.count, 40);
        let ids: Vec<MeterId> = page.meters.iter().map(|meter| meter.id).collect();
        let expected: Vec<MeterId> = meters.iter().rev().take(10).map(|meter| meter.id).collect();
        assert_eq!(ids, expected, "sorted by {field} {order:?}");
    }
}

/// What `work` consumed, in capacity units (read, write), as the request's log line would say.
async fn units<T>(work: impl std::future::Future<Output = T>) -> (T, (f64, f64)) {
    let invocation = meters::telemetry::Invocation::new(None, None, None);
    meters::telemetry::within_request(invocation, async {
        let output = work.await;
        let capacity = meters::telemetry::current().capacity;
        (output, (capacity.read, capacity.write))
    })
    .await
}

/// A reading is the meter's item and its two index copies: 3 WCU, no read; a reading that is not later
/// costs the failed condition's 1 WCU (DynamoDB does not report it). It moves no list version: a listing
/// held stays current (the list reads only the head), showing its readings until they pass the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_reading_costs_three_write_units_and_lists_show_it_within_the_bound() {
    let (config, writer) = meters_testkit::dynamodb::fresh_table("meters-readings").await;
    let age = std::time::Duration::from_millis(1_500);
    let reader = small_tuning(DynamoDbStore::new(
        meters::store::dynamodb::dynamodb_client(&config).await,
        config.table_name.clone(),
    ))
    .with_list_tuning(ListTuning {
        listing_readings_age: age,
        ..ListTuning::default()
    });
    let account = account();
    let mut meters = Vec::new();
    for n in 0..50 {
        let meter = writer
            .create(
                &account,
                full_meter_named(&format!("costed {n:02}")),
                &tester(),
            )
            .await
            .unwrap();
        meters.push(meter);
    }
    let query = ListQuery {
        search: Some("costed".into()),
        limit: 100,
        ..ListQuery::default()
    };
    reader.list(&account, &query).await.unwrap();
    let (_, (held, _)) = units(reader.list(&account, &query)).await;
    assert_eq!(
        held, 1.0,
        "a listing held at the head's version costs the head"
    );

    let later = reading(&meters[7], 4242.0, "2030-01-01T00:00:00Z");
    let (applied, (read, write)) = units(writer.apply_reading(&account, &later)).await;
    assert_eq!(applied.unwrap(), Applied::Applied);
    assert_eq!(
        (read, write),
        (0.0, 3.0),
        "the item and its two index copies"
    );

    // The listing is still current (only the head read) and within the bound may show the older reading.
    let (page, (listed, _)) = units(reader.list(&account, &query)).await;
    assert_eq!(listed, 1.0, "a reading moved no list version");
    assert_eq!(page.unwrap().count, 50);
    tokio::time::sleep(age).await;
    let (page, (listed, _)) = units(reader.list(&account, &query)).await;
    let page = page.unwrap();
    let shown = page
        .meters
        .iter()
        .find(|meter| meter.id == meters[7].id)
        .unwrap();
    assert_eq!(shown.last_reading_at, Some(later.at));
    assert_eq!(shown.last_reading_value, Some(later.value));
    // The head, and each of the page's 50 meters read strongly consistently: not the account whole.
    assert_eq!(listed, 1.0 + 50.0, "{listed}");
    assert_eq!(page.count, 50);
}

fn full_meter_named(name: &str) -> NewMeter {
    NewMeter {
        name: MeterName::parse(name).unwrap(),
        ..full_meter()
    }
}

/// A meter item written before readings came has no count and no `sort_reading`: it reads as having had no
/// reading applied, its tag still matches an `If-Match`, and it takes readings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_meter_written_before_readings_came_reads_updates_and_takes_readings() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (config, store) = meters_testkit::dynamodb::fresh_table("meters-before-readings").await;
    let account = account();
    let created = store
        .create(&account, new_meter("older"), &tester())
        .await
        .unwrap();
    store
        .client()
        .update_item()
        .table_name(&config.table_name)
        .key("account_id", AttributeValue::S(account.to_string()))
        .key("id", AttributeValue::N(created.id.to_string()))
        .update_expression("REMOVE readings")
        .send()
        .await
        .unwrap();
    let read = store.get(&account, created.id).await.unwrap();
    assert_eq!((read.readings, read.etag()), (0, created.etag()));
    let updated = store
        .update(
            &account,
            UpdateMeterRequest {
                id: created.id,
                changes: rename("older, renamed"),
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Tags(vec![EntityTag::of(&read)]),
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    let one = reading(&created, 1.0, "2027-01-01T00:00:00Z");
    assert_eq!(
        store.apply_reading(&account, &one).await.unwrap(),
        Applied::Applied
    );
    assert_eq!(store.get(&account, created.id).await.unwrap().readings, 1);
}
