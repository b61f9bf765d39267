//! Creating, reading, updating and deleting one meter: every field kept, ids unique and never reused, only the fields sent changed, read-only echoes and `If-Match` checked atomically, another account's meter left alone.

use super::*;
use meters::store::{DeleteMeterRequest, UpdateMeterRequest};

pub(super) async fn a_created_meter_reads_back_with_every_field(store: Store) {
    let account = account();
    let created = store
        .create(&account, full_meter(), &tester())
        .await
        .unwrap();
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

pub(super) async fn a_meter_created_with_only_required_fields_has_the_defaults(store: Store) {
    let account = account();
    let created = store
        .create(&account, new_meter("plain"), &tester())
        .await
        .unwrap();
    let read = store.get(&account, created.id).await.unwrap();
    assert_eq!(read, created);
    assert_eq!(read.description, None);
    assert_eq!(read.tariff_id, None);
    assert_eq!(read.billing_direction, None);
}

pub(super) async fn sixty_concurrent_creates_get_sixty_distinct_ids_and_are_all_listed(
    store: Store,
) {
    let account = account();
    let creates = (0..60).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .create(&account, new_meter(&format!("m{n}")), &tester())
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

pub(super) async fn another_accounts_meter_is_forbidden_and_an_unknown_one_not_found(store: Store) {
    let (owner, intruder) = (account(), account());
    let meter = store
        .create(&owner, new_meter("private"), &tester())
        .await
        .unwrap();
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
                UpdateMeterRequest {
                    id: unknown,
                    changes: rename("x"),
                    read_only: ReadOnlyEcho::default(),
                    if_match: IfMatch::Any,
                    actor: tester()
                }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .delete(
                &owner,
                DeleteMeterRequest {
                    id: unknown,
                    if_match: IfMatch::Any,
                    actor: tester()
                }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub(super) async fn an_update_changes_only_the_fields_sent(store: Store) {
    let account = account();
    let created = store
        .create(&account, full_meter(), &tester())
        .await
        .unwrap();
    let changes = MeterChanges {
        location: Change::Set(Location::parse("Roof").unwrap()),
        ..rename("Renamed")
    };
    let updated = store
        .update(
            &account,
            UpdateMeterRequest {
                id: created.id,
                changes,
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: tester(),
            },
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

pub(super) async fn null_clears_a_field(store: Store) {
    let account = account();
    let created = store
        .create(&account, full_meter(), &tester())
        .await
        .unwrap();
    let changes = MeterChanges {
        tariff_id: Change::Clear,
        last_reading_at: Change::Clear,
        ..MeterChanges::default()
    };
    let updated = store
        .update(
            &account,
            UpdateMeterRequest {
                id: created.id,
                changes,
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.tariff_id, None);
    assert_eq!(updated.last_reading_at, None);
    assert_eq!(updated.gateway_id, created.gateway_id);
    assert_eq!(store.get(&account, created.id).await.unwrap(), updated);
}

/// Twelve updates of one meter at once, none asking for a precondition, half to its location and half to
/// its description: every one applies (contention is never a failure), each answer carries a version of
/// its own, and the meter ends with one of each half's values (the last writer wins, per field).
pub(super) async fn concurrent_plain_updates_of_one_meter_all_apply(store: Store) {
    const UPDATES: usize = 12;
    let account = account();
    let meter = store
        .create(&account, new_meter("contended"), &tester())
        .await
        .unwrap();
    let updates = (0..UPDATES).map(|n| {
        let store = Arc::clone(&store);
        let changes = if n % 2 == 0 {
            MeterChanges {
                location: Change::Set(Location::parse(&format!("room {n}")).unwrap()),
                ..MeterChanges::default()
            }
        } else {
            MeterChanges {
                description: Change::Set(Description::parse(&format!("note {n}")).unwrap()),
                ..MeterChanges::default()
            }
        };
        tokio::spawn(async move {
            store
                .update(
                    &account,
                    UpdateMeterRequest {
                        id: meter.id,
                        changes,
                        read_only: ReadOnlyEcho::default(),
                        if_match: IfMatch::Any,
                        actor: tester(),
                    },
                )
                .await
        })
    });
    let answers: Vec<Meter> = join_all(updates)
        .await
        .into_iter()
        .map(|answer| answer.expect("a task").expect("every plain update applies"))
        .collect();
    let mut versions: Vec<u64> = answers.iter().map(|meter| meter.version).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(
        versions.len(),
        UPDATES,
        "a version of its own each: {versions:?}"
    );
    let stored = store.get(&account, meter.id).await.unwrap();
    assert_eq!(stored.version, meter.version + UPDATES as u64);
    let location = stored
        .location
        .as_ref()
        .map(Location::as_str)
        .unwrap_or_default();
    let description = stored
        .description
        .as_ref()
        .map(Description::as_str)
        .unwrap_or_default();
    assert!(location.starts_with("room "), "{stored:?}");
    assert!(description.starts_with("note "), "{stored:?}");
}

pub(super) async fn concurrent_updates_to_different_fields_both_land(store: Store) {
    let account = account();
    for round in 0..10 {
        let meter = store
            .create(&account, new_meter(&format!("race-{round}")), &tester())
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
                    UpdateMeterRequest {
                        id: meter.id,
                        changes: name_change,
                        read_only: ReadOnlyEcho::default(),
                        if_match: IfMatch::Any,
                        actor: tester(),
                    },
                )
                .await
            }),
            tokio::spawn(async move {
                b.update(
                    &account,
                    UpdateMeterRequest {
                        id: meter.id,
                        changes: location_change,
                        read_only: ReadOnlyEcho::default(),
                        if_match: IfMatch::Any,
                        actor: tester(),
                    },
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

pub(super) async fn read_only_fields_echoed_unchanged_are_accepted(store: Store) {
    let account = account();
    let created = store
        .create(&account, full_meter(), &tester())
        .await
        .unwrap();
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
            UpdateMeterRequest {
                id: created.id,
                changes: rename("edited after GET"),
                read_only: echo,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name.as_str(), "edited after GET");
}

pub(super) async fn a_changed_read_only_field_is_refused_and_nothing_is_written(store: Store) {
    let account = account();
    let created = store
        .create(&account, full_meter(), &tester())
        .await
        .unwrap();
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
                UpdateMeterRequest {
                    id: created.id,
                    changes: rename("should not land"),
                    read_only: echo,
                    if_match: IfMatch::Any,
                    actor: tester(),
                },
            )
            .await
        {
            Err(StoreError::ReadOnlyChanged(error)) => assert_eq!(error.field, field),
            other => panic!("{field}: expected a read-only refusal, got {other:?}"),
        }
    }
    assert_eq!(store.get(&account, created.id).await.unwrap(), created);
}

pub(super) async fn a_deleted_meter_is_gone_and_its_id_is_never_reused(store: Store) {
    let account = account();
    let first = store
        .create(&account, new_meter("first"), &tester())
        .await
        .unwrap();
    let last = store
        .create(&account, new_meter("last"), &tester())
        .await
        .unwrap();
    store
        .delete(
            &account,
            DeleteMeterRequest {
                id: last.id,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store.get(&account, last.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .delete(
                &account,
                DeleteMeterRequest {
                    id: last.id,
                    if_match: IfMatch::Any,
                    actor: tester()
                }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    let next = store
        .create(&account, new_meter("next"), &tester())
        .await
        .unwrap();
    assert!(next.id > last.id, "id {} was handed out again", next.id);
    assert_eq!(every_meter(&*store, &account).await, vec![first, next]);
}

pub(super) async fn deleting_or_updating_another_accounts_meter_leaves_it_alone(store: Store) {
    let (owner, intruder) = (account(), account());
    let meter = store
        .create(&owner, new_meter("guarded"), &tester())
        .await
        .unwrap();
    assert!(matches!(
        store
            .delete(
                &intruder,
                DeleteMeterRequest {
                    id: meter.id,
                    if_match: IfMatch::Any,
                    actor: tester()
                }
            )
            .await,
        Err(StoreError::OtherAccount(_))
    ));
    assert!(matches!(
        store
            .update(
                &intruder,
                UpdateMeterRequest {
                    id: meter.id,
                    changes: rename("hijacked"),
                    read_only: ReadOnlyEcho::default(),
                    if_match: IfMatch::Any,
                    actor: tester()
                }
            )
            .await,
        Err(StoreError::OtherAccount(_))
    ));
    assert_eq!(store.get(&owner, meter.id).await.unwrap(), meter);
}

pub(super) async fn every_write_raises_the_version_and_if_match_is_checked_with_it(store: Store) {
    let account = account();
    let created = store
        .create(&account, new_meter("versioned"), &tester())
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(store.get(&account, created.id).await.unwrap().version, 1);
    let updated = store
        .update(
            &account,
            UpdateMeterRequest {
                id: created.id,
                changes: rename("v2"),
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::versions([1]),
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert_eq!((updated.version, updated.name.as_str()), (2, "v2"));
    let stale = store
        .update(
            &account,
            UpdateMeterRequest {
                id: created.id,
                changes: rename("lost"),
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::versions([1]),
                actor: tester(),
            },
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed(_))),
        "{stale:?}"
    );
    let stale_delete = store
        .delete(
            &account,
            DeleteMeterRequest {
                id: created.id,
                if_match: IfMatch::versions([1, 7]),
                actor: tester(),
            },
        )
        .await;
    assert!(
        matches!(stale_delete, Err(StoreError::PreconditionFailed(_))),
        "{stale_delete:?}"
    );
    let unchanged = store.get(&account, created.id).await.unwrap();
    assert_eq!((unchanged.version, unchanged.name.as_str()), (2, "v2"));
    let none_named = store
        .delete(
            &account,
            DeleteMeterRequest {
                id: created.id,
                if_match: IfMatch::versions([]),
                actor: tester(),
            },
        )
        .await;
    assert!(matches!(none_named, Err(StoreError::PreconditionFailed(_))));
    store
        .delete(
            &account,
            DeleteMeterRequest {
                id: created.id,
                if_match: IfMatch::versions([5, 2]),
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store.get(&account, created.id).await,
        Err(StoreError::NotFound(_))
    ));
}

pub(super) async fn of_concurrent_updates_naming_the_same_version_exactly_one_wins(store: Store) {
    let account = account();
    let meter = store
        .create(&account, new_meter("contested"), &tester())
        .await
        .unwrap();
    let attempts = join_all((0..8).map(|n| {
        let store = Arc::clone(&store);
        async move {
            store
                .update(
                    &account,
                    UpdateMeterRequest {
                        id: meter.id,
                        changes: rename(&format!("writer {n}")),
                        read_only: ReadOnlyEcho::default(),
                        if_match: IfMatch::versions([meter.version]),
                        actor: tester(),
                    },
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

/// Doubles that once changed in their last digit on the way through JSON or DynamoDB, the documented
/// bounds, and a spread of others: every one reads back bit for bit.
pub(super) async fn reading_values_come_back_as_exactly_the_same_double(store: Store) {
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
        let created = store.create(&account, meter, &tester()).await.unwrap();
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

/// Who wrote a meter is kept with it: the creator from the create on, the last writer from each update.
/// Another account cannot ask, and a deleted meter has no writers to tell.
pub(super) async fn every_write_records_its_actor_and_the_creator_is_kept(store: Store) {
    use meters::domain::{Actor, WrittenBy};
    let (account, other) = (account(), account());
    let user = tester();
    let machine = Actor {
        sub: Some("svc-billing".into()),
        client_id: Some("billing-client".into()),
    };
    let meter = store
        .create(&account, new_meter("audited"), &user)
        .await
        .unwrap();
    assert_eq!(
        store.written_by(&account, meter.id).await.unwrap(),
        WrittenBy {
            created_by: Some(user.clone()),
            updated_by: Some(user.clone()),
        }
    );
    store
        .update(
            &account,
            UpdateMeterRequest {
                id: meter.id,
                changes: rename("audited, renamed"),
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: machine.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.written_by(&account, meter.id).await.unwrap(),
        WrittenBy {
            created_by: Some(user.clone()),
            updated_by: Some(machine.clone()),
        }
    );
    assert!(matches!(
        store.written_by(&other, meter.id).await,
        Err(StoreError::OtherAccount(_))
    ));
    store
        .delete(
            &account,
            DeleteMeterRequest {
                id: meter.id,
                if_match: IfMatch::Any,
                actor: machine.clone(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store.written_by(&account, meter.id).await,
        Err(StoreError::NotFound(_))
    ));
}
