//! One contract, two stores: every behaviour the handlers rely on, run against the embedded store and
//! against DynamoDB Local. The DynamoDB suite is `#[ignore]`d unless run by `scripts/test`, which starts
//! DynamoDB Local and passes `--include-ignored`; a plain `cargo test` reports it as ignored.

use std::sync::Arc;

use meters_testkit::meters::{new_meter, tester};

use futures::StreamExt;
use futures::future::join_all;
use meters::domain::filters::Filters;
use meters::domain::list::{ListPage, ListQuery, SortField, SortOrder};
use meters::domain::meter::{
    AccountId, BillingDirection, Change, CommunicationType, Description, Location, Meter,
    MeterChanges, MeterId, MeterName, MeterType, NewMeter, ReadOnlyEcho, ReadingInterval,
    ReadingValue, ReferenceId, SerialNumber, parse_timestamp,
};
use meters::domain::precondition::IfMatch;
use meters::store::MeterStore;
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::{
    Claim, DynamoDbStore, EmbeddedStore, ListTuning, RememberedAnswer, Store as Stores, StoreError,
};

mod dynamodb_only;
mod idempotency;
mod listing_refresh;
mod lists;
mod meter_writes;
mod readings;
mod snapshots;

use idempotency::*;
use lists::*;
use meter_writes::*;
use readings::*;

type Store = Arc<dyn Stores>;

async fn embedded() -> Store {
    Arc::new(EmbeddedStore::in_memory().expect("an in-memory store opens"))
}

/// A fresh table per test, so tests never see each other's meters; list tuning shrunk so that a few
/// hundred meters take every way the store has of reading a list (index windows from either end, the
/// listing read in parallel segments, the listing held).
async fn dynamodb() -> Store {
    let store = small_tuning(meters_testkit::dynamodb::fresh_table("meters-test").await.1);
    // Pages show readings as they are now, so the contract holds lists to `GET` as the embedded store's
    // are (the bound's own test is in `dynamodb_only`).
    Arc::new(store.with_list_tuning(ListTuning {
        window_meters: 30,
        segment_meters: 60,
        listing_readings_age: std::time::Duration::ZERO,
    }))
}

fn small_tuning(store: DynamoDbStore) -> DynamoDbStore {
    store.with_list_tuning(ListTuning {
        window_meters: 30,
        segment_meters: 60,
        ..ListTuning::default()
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
                concurrent_plain_updates_of_one_meter_all_apply,
                read_only_fields_echoed_unchanged_are_accepted,
                a_changed_read_only_field_is_refused_and_nothing_is_written,
                a_deleted_meter_is_gone_and_its_id_is_never_reused,
                deleting_or_updating_another_accounts_meter_leaves_it_alone,
                reading_values_come_back_as_exactly_the_same_double,
                every_write_raises_the_version_and_if_match_is_checked_with_it,
                of_concurrent_updates_naming_the_same_version_exactly_one_wins,
                an_idempotency_key_is_claimed_once_remembered_taken_over_and_expires,
                of_concurrent_claims_of_one_idempotency_key_exactly_one_wins,
                of_concurrent_takeovers_of_an_ended_claim_exactly_one_wins,
                a_create_under_a_reserved_id_happens_once,
                every_list_variant_follows_the_list_conventions_over_several_store_pages,
                a_list_right_after_a_write_sees_it_when_the_account_was_listed_before,
                lists_racing_creates_miss_no_acknowledged_meter,
                every_write_records_its_actor_and_the_creator_is_kept,
                a_later_reading_applies_and_an_earlier_or_repeated_one_changes_nothing,
                a_reading_never_reaches_another_accounts_meter_or_none,
                any_interleaving_and_repetition_of_readings_racing_puts_ends_with_the_latest,
                an_if_match_from_before_a_reading_is_refused,
                a_put_of_the_reading_fields_always_applies_and_readings_follow_it,
                lists_show_readings_and_sort_by_what_they_show,
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

fn answer(body: &str) -> RememberedAnswer {
    RememberedAnswer {
        status: 201,
        body: body.into(),
        location: "/api/v1/meters/7".into(),
        etag: "\"7-1\"".into(),
    }
}
