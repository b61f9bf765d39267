//! One contract, two stores: every behaviour the handlers rely on, run against the embedded store and
//! against DynamoDB Local. The DynamoDB suite is `#[ignore]`d unless run by `scripts/test`, which starts
//! DynamoDB Local and passes `--include-ignored`; a plain `cargo test` reports it as ignored.

use std::sync::Arc;

use futures::future::join_all;
use meters::config::DynamoDbConfig;
use meters::list::{ListPage, ListQuery, SortField, SortOrder};
use meters::meter::{
    AccountId, BillingDirection, Change, CommunicationType, Description, Location, Meter,
    MeterChanges, MeterId, MeterName, MeterType, NewMeter, ReadOnlyEcho, ReadingInterval,
    ReadingValue, ReferenceId, SerialNumber, parse_timestamp,
};
use meters::store::{
    Claim, DynamoDbStore, EmbeddedStore, IfMatch, ListTuning, MeterStore, RememberedAnswer,
    StoreError,
};

type Store = Arc<dyn MeterStore>;

async fn embedded() -> Store {
    Arc::new(EmbeddedStore::in_memory().expect("an in-memory store opens"))
}

/// A fresh table per test, so tests never see each other's meters; list tuning shrunk so that a few
/// hundred meters take every way the store has of reading a list (index windows from either end, the
/// listing read in parallel segments, the listing held).
async fn dynamodb() -> Store {
    Arc::new(small_tuning(
        meters_testkit::dynamodb::fresh_table("meters-test").await.1,
    ))
}

fn small_tuning(store: DynamoDbStore) -> DynamoDbStore {
    store.with_list_tuning(ListTuning {
        window_meters: 30,
        segment_meters: 60,
    })
}

macro_rules! contract {
    ($suite:ident, $store:ident, $attributes:tt) => {
        mod $suite {
            contract!(@tests $store, $attributes;
                a_created_meter_reads_back_with_every_field,
                a_meter_created_with_only_required_fields_has_the_defaults,
                sixty_concurrent_creates_get_sixty_distinct_ids_and_are_all_listed,
                a_list_holds_only_the_accounts_meters_in_id_order,
                a_list_reads_every_page_of_a_partition_larger_than_one_megabyte,
                another_accounts_meter_is_forbidden_and_an_unknown_one_not_found,
                an_update_changes_only_the_fields_sent,
                null_clears_a_field,
                concurrent_updates_to_different_fields_both_land,
                read_only_fields_echoed_unchanged_are_accepted,
                a_changed_read_only_field_is_refused_and_nothing_is_written,
                a_deleted_meter_is_gone_and_its_id_is_never_reused,
                deleting_or_updating_another_accounts_meter_leaves_it_alone,
                reading_values_come_back_as_exactly_the_same_double,
                every_write_raises_the_version_and_if_match_is_checked_with_it,
                of_concurrent_updates_naming_the_same_version_exactly_one_wins,
                an_idempotency_key_is_claimed_once_remembered_released_and_expires,
                of_concurrent_claims_of_one_idempotency_key_exactly_one_wins,
                every_list_variant_follows_the_list_conventions_over_several_store_pages,
                a_list_right_after_a_write_sees_it_when_the_account_was_listed_before,
            );
        }
    };
    (@tests $store:ident, $attributes:tt; $($test:ident),+ $(,)?) => {
        $(contract!(@test $store, $attributes, $test);)+
    };
    (@test $store:ident, [$(#[$attribute:meta])*], $test:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attribute])*
        async fn $test() {
            super::$test(super::$store().await).await;
        }
    };
}

contract!(embedded_store, embedded, []);
contract!(dynamodb_store, dynamodb, [#[ignore = "needs DynamoDB Local: run scripts/test"]]);

/// Every meter of the account, page by page of 100 in id order, each page's count checked.
async fn every_meter(store: &(impl MeterStore + ?Sized), account: &AccountId) -> Vec<Meter> {
    let mut meters = Vec::new();
    for page in 1.. {
        let query = ListQuery {
            page,
            limit: 100,
            ..ListQuery::default()
        };
        let listed = store.list(account, &query).await.unwrap();
        let last = listed.meters.len() < 100;
        meters.extend(listed.meters);
        if last {
            assert_eq!(listed.count, meters.len(), "count of page {page}");
            return meters;
        }
    }
    unreachable!()
}

fn account() -> AccountId {
    AccountId::from(uuid::Uuid::new_v4())
}

fn new_meter(name: &str) -> NewMeter {
    NewMeter {
        name: MeterName::parse(name).unwrap(),
        serial_number: SerialNumber::parse(&format!("SN-{name}")).unwrap(),
        meter_type: MeterType::ELECTRICITY,
        communication_type: CommunicationType::NONE,
        details: MeterChanges::default(),
    }
}

fn full_meter() -> NewMeter {
    NewMeter {
        name: MeterName::parse("Main incomer").unwrap(),
        serial_number: SerialNumber::parse("EM-2024-000917").unwrap(),
        meter_type: MeterType::SOLAR,
        communication_type: CommunicationType::MODBUS,
        details: MeterChanges {
            name: None,
            description: Change::Set(Description::parse("roof array, east").unwrap()),
            reading_interval: Change::Set(ReadingInterval::parse(900).unwrap()),
            building_block_id: Change::Set(ReferenceId::parse("building_block_id", 3).unwrap()),
            gateway_id: Change::Set(ReferenceId::parse("gateway_id", 4).unwrap()),
            tariff_id: Change::Set(ReferenceId::parse("tariff_id", 12).unwrap()),
            last_reading_value: Change::Set(ReadingValue::parse(10423.5).unwrap()),
            last_reading_at: Change::Set(
                parse_timestamp("last_reading_at", "2026-11-24T23:45:00Z").unwrap(),
            ),
            location: Change::Set(Location::parse("Basement switch room").unwrap()),
            billing_direction: Change::Set(BillingDirection::ACCREC),
        },
    }
}

fn rename(name: &str) -> MeterChanges {
    MeterChanges {
        name: Some(MeterName::parse(name).unwrap()),
        ..MeterChanges::default()
    }
}

async fn a_created_meter_reads_back_with_every_field(store: Store) {
    let account = account();
    let created = store.create(&account, full_meter()).await.unwrap();
    let json = serde_json::to_value(&created).unwrap();
    assert_eq!(json["account_id"], account.to_string());
    assert_eq!(json["name"], "Main incomer");
    assert_eq!(json["meter_type"], "SOLAR");
    assert_eq!(json["communication_type"], "MODBUS");
    assert_eq!(json["description"], "roof array, east");
    assert_eq!(json["reading_interval"], 900);
    assert_eq!(json["building_block_id"], 3);
    assert_eq!(json["gateway_id"], 4);
    assert_eq!(json["tariff_id"], 12);
    assert_eq!(json["last_reading_value"], 10423.5);
    assert_eq!(json["last_reading_at"], "2026-11-24T23:45:00Z");
    assert_eq!(json["location"], "Basement switch room");
    assert_eq!(json["billing_direction"], "ACCREC");
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(store.get(&account, created.id).await.unwrap(), created);
}

async fn a_meter_created_with_only_required_fields_has_the_defaults(store: Store) {
    let account = account();
    let created = store.create(&account, new_meter("plain")).await.unwrap();
    let read = store.get(&account, created.id).await.unwrap();
    assert_eq!(read, created);
    assert_eq!(read.description, None);
    assert_eq!(read.tariff_id, None);
    assert_eq!(read.billing_direction, None);
}

async fn sixty_concurrent_creates_get_sixty_distinct_ids_and_are_all_listed(store: Store) {
    let account = account();
    let creates = (0..60).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .create(&account, new_meter(&format!("m{n}")))
                .await
                .unwrap()
                .id
        })
    });
    let mut ids: Vec<MeterId> = join_all(creates)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60);
    let listed: Vec<MeterId> = every_meter(&*store, &account)
        .await
        .iter()
        .map(|meter| meter.id)
        .collect();
    assert_eq!(listed, ids);
}

async fn a_list_holds_only_the_accounts_meters_in_id_order(store: Store) {
    let (mine, theirs) = (account(), account());
    let first = store.create(&mine, new_meter("a")).await.unwrap();
    store.create(&theirs, new_meter("b")).await.unwrap();
    let second = store.create(&mine, new_meter("c")).await.unwrap();
    let listed = every_meter(&*store, &mine).await;
    assert_eq!(listed, vec![first, second]);
    assert!(every_meter(&*store, &account()).await.is_empty());
}

async fn a_list_reads_every_page_of_a_partition_larger_than_one_megabyte(store: Store) {
    let account = account();
    // ~2.1 KB per meter: 600 meters are ~1.3 MB, more than one DynamoDB query page.
    let description = "d".repeat(2000);
    let total = 600;
    for batch in (0..total).collect::<Vec<_>>().chunks(20) {
        let creates = batch.iter().map(|n| {
            let store = Arc::clone(&store);
            let mut meter = new_meter(&format!("bulk-{n}"));
            meter.details.description = Change::Set(Description::parse(&description).unwrap());
            async move { store.create(&account, meter).await.unwrap() }
        });
        join_all(creates).await;
    }
    let listed = every_meter(&*store, &account).await;
    assert_eq!(listed.len(), total);
    assert!(listed.windows(2).all(|pair| pair[0].id < pair[1].id));
}

async fn another_accounts_meter_is_forbidden_and_an_unknown_one_not_found(store: Store) {
    let (owner, intruder) = (account(), account());
    let meter = store.create(&owner, new_meter("private")).await.unwrap();
    assert!(
        matches!(store.get(&intruder, meter.id).await, Err(StoreError::OtherAccount(id)) if id == meter.id)
    );
    let unknown = MeterId::new(meter.id.get() + 1_000_000).unwrap();
    assert!(
        matches!(store.get(&owner, unknown).await, Err(StoreError::NotFound(id)) if id == unknown)
    );
    assert!(matches!(
        store
            .update(
                &owner,
                unknown,
                rename("x"),
                ReadOnlyEcho::default(),
                IfMatch::Any
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete(&owner, unknown, IfMatch::Any).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn an_update_changes_only_the_fields_sent(store: Store) {
    let account = account();
    let created = store.create(&account, full_meter()).await.unwrap();
    let changes = MeterChanges {
        location: Change::Set(Location::parse("Roof").unwrap()),
        ..rename("Renamed")
    };
    let updated = store
        .update(
            &account,
            created.id,
            changes,
            ReadOnlyEcho::default(),
            IfMatch::Any,
        )
        .await
        .unwrap();
    assert_eq!(updated.name.as_str(), "Renamed");
    assert_eq!(
        updated.location.as_ref().map(Location::as_str),
        Some("Roof")
    );
    let unchanged = Meter {
        name: created.name.clone(),
        location: created.location.clone(),
        updated_at: created.updated_at,
        version: created.version,
        ..updated.clone()
    };
    assert_eq!(unchanged, created);
    assert_eq!(updated.version, created.version + 1);
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(store.get(&account, created.id).await.unwrap(), updated);
}

async fn null_clears_a_field(store: Store) {
    let account = account();
    let created = store.create(&account, full_meter()).await.unwrap();
    let changes = MeterChanges {
        tariff_id: Change::Clear,
        last_reading_at: Change::Clear,
        ..MeterChanges::default()
    };
    let updated = store
        .update(
            &account,
            created.id,
            changes,
            ReadOnlyEcho::default(),
            IfMatch::Any,
        )
        .await
        .unwrap();
    assert_eq!(updated.tariff_id, None);
    assert_eq!(updated.last_reading_at, None);
    assert_eq!(updated.gateway_id, created.gateway_id);
    assert_eq!(store.get(&account, created.id).await.unwrap(), updated);
}

async fn concurrent_updates_to_different_fields_both_land(store: Store) {
    let account = account();
    for round in 0..10 {
        let meter = store
            .create(&account, new_meter(&format!("race-{round}")))
            .await
            .unwrap();
        let name_change = rename(&format!("renamed-{round}"));
        let location_change = MeterChanges {
            location: Change::Set(Location::parse(&format!("room {round}")).unwrap()),
            ..MeterChanges::default()
        };
        let (a, b) = (Arc::clone(&store), Arc::clone(&store));
        let (first, second) = tokio::join!(
            tokio::spawn(async move {
                a.update(
                    &account,
                    meter.id,
                    name_change,
                    ReadOnlyEcho::default(),
                    IfMatch::Any,
                )
                .await
            }),
            tokio::spawn(async move {
                b.update(
                    &account,
                    meter.id,
                    location_change,
                    ReadOnlyEcho::default(),
                    IfMatch::Any,
                )
                .await
            }),
        );
        first.unwrap().unwrap();
        second.unwrap().unwrap();
        let stored = store.get(&account, meter.id).await.unwrap();
        assert_eq!(stored.name.as_str(), format!("renamed-{round}"));
        assert_eq!(
            stored.location.as_ref().map(Location::as_str),
            Some(format!("room {round}").as_str())
        );
    }
}

async fn read_only_fields_echoed_unchanged_are_accepted(store: Store) {
    let account = account();
    let created = store.create(&account, full_meter()).await.unwrap();
    let echo = ReadOnlyEcho {
        serial_number: Some(created.serial_number.clone()),
        meter_type: Some(created.meter_type),
        communication_type: Some(created.communication_type),
        created_at: Some(created.created_at),
        updated_at: Some(created.updated_at),
    };
    let updated = store
        .update(
            &account,
            created.id,
            rename("edited after GET"),
            echo,
            IfMatch::Any,
        )
        .await
        .unwrap();
    assert_eq!(updated.name.as_str(), "edited after GET");
}

async fn a_changed_read_only_field_is_refused_and_nothing_is_written(store: Store) {
    let account = account();
    let created = store.create(&account, full_meter()).await.unwrap();
    let attempts = [
        (
            "serial_number",
            ReadOnlyEcho {
                serial_number: Some(SerialNumber::parse("OTHER").unwrap()),
                ..ReadOnlyEcho::default()
            },
        ),
        (
            "meter_type",
            ReadOnlyEcho {
                meter_type: Some(MeterType::GAS),
                ..ReadOnlyEcho::default()
            },
        ),
        (
            "communication_type",
            ReadOnlyEcho {
                communication_type: Some(CommunicationType::MQTT),
                ..ReadOnlyEcho::default()
            },
        ),
        (
            "created_at",
            ReadOnlyEcho {
                created_at: Some(parse_timestamp("created_at", "2020-01-01T00:00:00Z").unwrap()),
                ..ReadOnlyEcho::default()
            },
        ),
        (
            "updated_at",
            ReadOnlyEcho {
                serial_number: Some(created.serial_number.clone()),
                updated_at: Some(parse_timestamp("updated_at", "2020-01-01T00:00:00Z").unwrap()),
                ..ReadOnlyEcho::default()
            },
        ),
    ];
    for (field, echo) in attempts {
        match store
            .update(
                &account,
                created.id,
                rename("should not land"),
                echo,
                IfMatch::Any,
            )
            .await
        {
            Err(StoreError::ReadOnlyChanged(error)) => assert_eq!(error.field, field),
            other => panic!("{field}: expected a read-only refusal, got {other:?}"),
        }
    }
    assert_eq!(store.get(&account, created.id).await.unwrap(), created);
}

async fn a_deleted_meter_is_gone_and_its_id_is_never_reused(store: Store) {
    let account = account();
    let first = store.create(&account, new_meter("first")).await.unwrap();
    let last = store.create(&account, new_meter("last")).await.unwrap();
    store.delete(&account, last.id, IfMatch::Any).await.unwrap();
    assert!(matches!(
        store.get(&account, last.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete(&account, last.id, IfMatch::Any).await,
        Err(StoreError::NotFound(_))
    ));
    let next = store.create(&account, new_meter("next")).await.unwrap();
    assert!(next.id > last.id, "id {} was handed out again", next.id);
    assert_eq!(every_meter(&*store, &account).await, vec![first, next]);
}

async fn deleting_or_updating_another_accounts_meter_leaves_it_alone(store: Store) {
    let (owner, intruder) = (account(), account());
    let meter = store.create(&owner, new_meter("guarded")).await.unwrap();
    assert!(matches!(
        store.delete(&intruder, meter.id, IfMatch::Any).await,
        Err(StoreError::OtherAccount(_))
    ));
    assert!(matches!(
        store
            .update(
                &intruder,
                meter.id,
                rename("hijacked"),
                ReadOnlyEcho::default(),
                IfMatch::Any
            )
            .await,
        Err(StoreError::OtherAccount(_))
    ));
    assert_eq!(store.get(&owner, meter.id).await.unwrap(), meter);
}

async fn every_write_raises_the_version_and_if_match_is_checked_with_it(store: Store) {
    let account = account();
    let created = store
        .create(&account, new_meter("versioned"))
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(store.get(&account, created.id).await.unwrap().version, 1);
    let updated = store
        .update(
            &account,
            created.id,
            rename("v2"),
            ReadOnlyEcho::default(),
            IfMatch::Versions(vec![1]),
        )
        .await
        .unwrap();
    assert_eq!((updated.version, updated.name.as_str()), (2, "v2"));
    let stale = store
        .update(
            &account,
            created.id,
            rename("lost"),
            ReadOnlyEcho::default(),
            IfMatch::Versions(vec![1]),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed(_))),
        "{stale:?}"
    );
    let stale_delete = store
        .delete(&account, created.id, IfMatch::Versions(vec![1, 7]))
        .await;
    assert!(
        matches!(stale_delete, Err(StoreError::PreconditionFailed(_))),
        "{stale_delete:?}"
    );
    let unchanged = store.get(&account, created.id).await.unwrap();
    assert_eq!((unchanged.version, unchanged.name.as_str()), (2, "v2"));
    let none_named = store
        .delete(&account, created.id, IfMatch::Versions(vec![]))
        .await;
    assert!(matches!(none_named, Err(StoreError::PreconditionFailed(_))));
    store
        .delete(&account, created.id, IfMatch::Versions(vec![5, 2]))
        .await
        .unwrap();
    assert!(matches!(
        store.get(&account, created.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn of_concurrent_updates_naming_the_same_version_exactly_one_wins(store: Store) {
    let account = account();
    let meter = store
        .create(&account, new_meter("contested"))
        .await
        .unwrap();
    let attempts = join_all((0..8).map(|n| {
        let store = Arc::clone(&store);
        async move {
            store
                .update(
                    &account,
                    meter.id,
                    rename(&format!("writer {n}")),
                    ReadOnlyEcho::default(),
                    IfMatch::Versions(vec![meter.version]),
                )
                .await
        }
    }))
    .await;
    let winners: Vec<_> = attempts
        .iter()
        .filter_map(|attempt| attempt.as_ref().ok())
        .collect();
    assert_eq!(winners.len(), 1, "{attempts:?}");
    assert!(
        attempts
            .iter()
            .filter(|attempt| attempt.is_err())
            .all(|attempt| matches!(attempt, Err(StoreError::PreconditionFailed(_))))
    );
    assert_eq!(&store.get(&account, meter.id).await.unwrap(), winners[0]);
}

fn answer(body: &str) -> RememberedAnswer {
    RememberedAnswer {
        status: 201,
        body: body.into(),
        location: "/api/v1/meters/7".into(),
        etag: "\"7-1\"".into(),
    }
}

async fn an_idempotency_key_is_claimed_once_remembered_released_and_expires(store: Store) {
    let (account, other) = (account(), account());
    let now = meters::meter::now();
    let claim = |account, key: &'static str, fingerprint: &'static str, at| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotent(&account, key, fingerprint, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(claim(account, "key-1", "body-a", now).await, Claim::Claimed);
    assert_eq!(
        claim(account, "key-1", "body-a", now).await,
        Claim::InProgress
    );
    assert_eq!(
        claim(account, "key-1", "body-b", now).await,
        Claim::OtherBody
    );
    // Keys are the account's own: another account's same key is free.
    assert_eq!(claim(other, "key-1", "body-a", now).await, Claim::Claimed);
    store
        .complete_idempotent(&account, "key-1", "body-a", &answer("{\"first\":1}"), now)
        .await
        .unwrap();
    assert_eq!(
        claim(account, "key-1", "body-a", now).await,
        Claim::Completed(answer("{\"first\":1}"))
    );
    // A failed request is forgotten.
    assert_eq!(claim(account, "key-2", "body-a", now).await, Claim::Claimed);
    store.release_idempotent(&account, "key-2").await.unwrap();
    assert_eq!(claim(account, "key-2", "body-c", now).await, Claim::Claimed);
    // After 24 hours a completed key is free again; an unfinished claim after its lease.
    let tomorrow = now + chrono::Duration::hours(24) + chrono::Duration::seconds(1);
    assert_eq!(
        claim(account, "key-1", "body-z", tomorrow).await,
        Claim::Claimed
    );
    let later = now + chrono::Duration::seconds(61);
    assert_eq!(
        claim(account, "key-2", "body-d", later).await,
        Claim::Claimed
    );
    // No meter was created by any of this, and the records do not show in the account's list.
    assert!(every_meter(&*store, &account).await.is_empty());
}

async fn of_concurrent_claims_of_one_idempotency_key_exactly_one_wins(store: Store) {
    let account = account();
    let now = meters::meter::now();
    let claims = join_all((0..8).map(|_| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotent(&account, "contested", "body", now)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        claims
            .iter()
            .filter(|claim| **claim == Claim::Claimed)
            .count(),
        1,
        "{claims:?}"
    );
    assert!(
        claims
            .iter()
            .all(|claim| matches!(claim, Claim::Claimed | Claim::InProgress))
    );
}

/// Doubles that once changed in their last digit on the way through JSON or DynamoDB, the documented
/// bounds, and a spread of others: every one reads back bit for bit.
async fn reading_values_come_back_as_exactly_the_same_double(store: Store) {
    let account = account();
    let mut values = vec![
        -5.960464477539063e-08,
        1e-130,
        -1e-130,
        1e125,
        -1e125,
        0.1,
        1.0 / 3.0,
        10423.5,
    ];
    let mut bits: u64 = 0x9E37_79B9_7F4A_7C15;
    while values.len() < 40 {
        bits ^= bits << 13;
        bits ^= bits >> 7;
        bits ^= bits << 17;
        let candidate = f64::from_bits(bits);
        if ReadingValue::parse(candidate).is_ok() {
            values.push(candidate);
        }
    }
    for value in values {
        let mut meter = new_meter("reading");
        meter.details.last_reading_value = Change::Set(ReadingValue::parse(value).unwrap());
        let created = store.create(&account, meter).await.unwrap();
        let read = store.get(&account, created.id).await.unwrap();
        for (what, got) in [
            ("created", created.last_reading_value),
            ("read", read.last_reading_value),
        ] {
            assert_eq!(
                got.map(|v| v.get().to_bits()),
                Some(value.to_bits()),
                "{what} {value:e}"
            );
        }
    }
}

/// Nothing listens on the port, so every call fails to connect: the store must say "unavailable"
/// (503, retry later), and the handler must show only a request id.
#[tokio::test]
async fn an_unreachable_dynamodb_is_reported_as_unavailable_without_internals() {
    let config = meters_testkit::dynamodb::unreachable();
    let store = DynamoDbStore::new(
        meters::lambda::dynamodb_client(&config).await,
        config.table_name.clone(),
    );
    let account = account();
    assert!(matches!(
        store.get(&account, MeterId::new(1).unwrap()).await,
        Err(StoreError::Unavailable(_))
    ));

    let error = meters::error::ApiError::from(
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
async fn dynamodb_with_lost_answers() -> (meters_testkit::fault_proxy::FaultProxy, DynamoDbStore) {
    let (config, _) = meters_testkit::dynamodb::fresh_table("meters-lost").await;
    let proxy =
        meters_testkit::fault_proxy::FaultProxy::start(config.endpoint.as_deref().unwrap()).await;
    let through_proxy = DynamoDbConfig {
        endpoint: Some(proxy.endpoint.clone()),
        ..config
    };
    let store = DynamoDbStore::new(
        meters::lambda::dynamodb_client(&through_proxy).await,
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
        .create(&account, new_meter("lost answer"))
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
    let meter = store.create(&account, new_meter("before")).await.unwrap();
    // Echoing updated_at (optimistic concurrency) and If-Match: both differ once the first attempt landed.
    let echo = ReadOnlyEcho {
        updated_at: Some(meter.updated_at),
        ..ReadOnlyEcho::default()
    };
    proxy.delay_next_answer("TransactWriteItems", PAST_THE_ATTEMPT_TIMEOUT);
    let updated = store
        .update(
            &account,
            meter.id,
            rename("after"),
            echo,
            IfMatch::Versions(vec![meter.version]),
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
    let meter = store.create(&account, new_meter("doomed")).await.unwrap();
    proxy.delay_next_answer("TransactWriteItems", PAST_THE_ATTEMPT_TIMEOUT);
    store
        .delete(&account, meter.id, IfMatch::Any)
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
        .create(&account, new_meter("dropped answer"))
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
        .create(&account, new_meter("before the freeze"))
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
        meters::lambda::request_from_event(&event.http_api().to_string()).unwrap()
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

/// 500 meters of ~2.2 KB (several 1 MB DynamoDB pages), with tied names in mixed case, unset locations
/// and readings, and a search word in a few descriptions.
async fn a_varied_account(store: &Store) -> (AccountId, Vec<Meter>) {
    let account = account();
    let names = [
        "alpha",
        "Alpha",
        "beta",
        "Gamma",
        "gamma ray",
        "delta",
        "Épée",
    ];
    let mut meters = Vec::new();
    for batch in (0..500).collect::<Vec<usize>>().chunks(25) {
        let creates = batch.iter().map(|&n| {
            let store = Arc::clone(store);
            let mut meter = new_meter(names[n % names.len()]);
            meter.serial_number = SerialNumber::parse(&format!("SN-{n:04}")).unwrap();
            meter.meter_type = [MeterType::GAS, MeterType::ELECTRICITY, MeterType::WATER][n % 3];
            let details = &mut meter.details;
            let marker = if n % 37 == 0 { " needle" } else { "" };
            details.description = Change::Set(
                Description::parse(&format!("{}{marker}", "d".repeat(2000 - 8))).unwrap(),
            );
            if n % 3 != 0 {
                details.location =
                    Change::Set(Location::parse(&format!("Room {}", n % 11)).unwrap());
            }
            if n % 4 != 0 {
                details.last_reading_value =
                    Change::Set(ReadingValue::parse((n % 5) as f64 - 2.5).unwrap());
            }
            async move { store.create(&account, meter).await.unwrap() }
        });
        meters.extend(join_all(creates).await);
    }
    (account, meters)
}

/// The list conventions, applied the plain way: filter, sort, cut.
fn expected_page(meters: &[Meter], query: &ListQuery) -> ListPage {
    let mut matching: Vec<Meter> = meters
        .iter()
        .filter(|m| query.matches(m))
        .cloned()
        .collect();
    matching.sort_by(|a, b| query.compare(a, b));
    let count = matching.len();
    let offset = (query.page - 1) * query.limit;
    ListPage {
        meters: matching
            .into_iter()
            .skip(offset)
            .take(query.limit)
            .collect(),
        count,
    }
}

async fn every_list_variant_follows_the_list_conventions_over_several_store_pages(store: Store) {
    let (account, meters) = a_varied_account(&store).await;
    let limit = 20;
    let last_page = meters.len().div_ceil(limit);
    let mut variants = Vec::new();
    // The orders an index serves first, while the process holds no listing; then the rest.
    let indexed = ["id", "name", "created_at"];
    let fields = Meter::SORTABLE.iter().map(|field| field.name);
    let ordered: Vec<&str> = indexed
        .iter()
        .copied()
        .chain(fields.filter(|name| !indexed.contains(name)))
        .collect();
    for name in ordered {
        for sort_order in [SortOrder::Ascending, SortOrder::Descending] {
            for page in [1, 2, last_page - 1, last_page, last_page + 1, last_page / 2] {
                variants.push(ListQuery {
                    page,
                    limit,
                    sort_by: SortField::named(name).unwrap(),
                    sort_order,
                    search: None,
                });
            }
        }
    }
    for search in ["needle", "alpha", "room 1", "épée", "nothing-matches-this"] {
        for (sort_by, page) in [("id", 1), ("name", 1), ("name", 2), ("location", 1)] {
            variants.push(ListQuery {
                page,
                limit,
                sort_by: SortField::named(sort_by).unwrap(),
                sort_order: SortOrder::Descending,
                search: Some(search.to_owned()),
            });
        }
    }
    variants.push(ListQuery {
        limit: 100,
        page: 5,
        ..ListQuery::default()
    });
    for query in &variants {
        let listed = store.list(&account, query).await.unwrap();
        let expected = expected_page(&meters, query);
        let ids = |page: &ListPage| page.meters.iter().map(|m| m.id.get()).collect::<Vec<_>>();
        assert_eq!(
            (ids(&listed), listed.count),
            (ids(&expected), expected.count),
            "{query:?}"
        );
        assert_eq!(listed.meters, expected.meters, "{query:?}");
    }
}

async fn a_list_right_after_a_write_sees_it_when_the_account_was_listed_before(store: Store) {
    let account = account();
    let kept = store.create(&account, new_meter("kept")).await.unwrap();
    let doomed = store.create(&account, new_meter("doomed")).await.unwrap();
    // A search needs the whole account: the store now holds its listing.
    let search = |text: &str| ListQuery {
        search: Some(text.to_owned()),
        ..ListQuery::default()
    };
    assert_eq!(store.list(&account, &search("e")).await.unwrap().count, 2);
    let added = store.create(&account, new_meter("added")).await.unwrap();
    let renamed = store
        .update(
            &account,
            kept.id,
            rename("kept, renamed"),
            ReadOnlyEcho::default(),
            IfMatch::Any,
        )
        .await
        .unwrap();
    store
        .delete(&account, doomed.id, IfMatch::Any)
        .await
        .unwrap();
    let listed = store.list(&account, &search("e")).await.unwrap();
    assert_eq!((listed.meters, listed.count), (vec![renamed, added], 2));
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
        meters::lambda::dynamodb_client(&config).await,
        config.table_name.clone(),
    ));
    let account = account();
    let first = writer.create(&account, new_meter("first")).await.unwrap();
    let by_location = ListQuery {
        sort_by: SortField::named("location").unwrap(),
        ..ListQuery::default()
    };
    let warm = reader.list(&account, &by_location).await.unwrap();
    assert_eq!(warm.meters, vec![first.clone()]);
    let second = writer.create(&account, new_meter("second")).await.unwrap();
    let listed = reader.list(&account, &by_location).await.unwrap();
    assert_eq!(
        (listed.meters, listed.count),
        (vec![first.clone(), second.clone()], 2)
    );
    let changed = writer
        .update(
            &account,
            first.id,
            rename("first, renamed"),
            ReadOnlyEcho::default(),
            IfMatch::Any,
        )
        .await
        .unwrap();
    assert_eq!(
        reader.list(&account, &by_location).await.unwrap().meters[0],
        changed
    );
    writer
        .delete(&account, second.id, IfMatch::Any)
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
        .create(&first, new_meter("created before"))
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
    let created = fresh.create(&second, new_meter("after")).await.unwrap();
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
        kept.push(live.create(&account, new_meter(name)).await.unwrap());
    }
    // The restore: the table as it was, before the accident.
    assert_eq!(restored.import(kept.clone()).await.unwrap().imported, 3);
    live.delete(&account, kept[1].id, IfMatch::Any)
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
