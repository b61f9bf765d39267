//! The restore runbook (docs/runbooks.md), run as written: the table's point-in-time copy in a second table, then
//! `meters-import --from-table` (what `scripts/import` runs) into the live one. A meter deleted since comes back
//! in its own account past every version it had, so no change event and no ETag of its life repeats; an id
//! retired in one account is never imported into another.

use std::collections::HashSet;
use std::process::Command;

use meters::domain::Actor;
use meters::domain::meter::{
    AccountId, CommunicationType, Meter, MeterChanges, MeterName, MeterType, NewMeter,
    ReadOnlyEcho, SerialNumber,
};
use meters::domain::precondition::IfMatch;
use meters::events::change_of;
use meters::store::StoreError;
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::{DeleteMeterRequest, UpdateMeterRequest};
use meters::store::{DynamoDbStore, MeterStore};
use meters_testkit::{dynamodb, streams};

fn actor() -> Actor {
    Actor {
        sub: Some("user-ana".into()),
        client_id: None,
    }
}

fn new_meter(name: &str) -> NewMeter {
    NewMeter {
        name: MeterName::parse(name).unwrap(),
        serial_number: SerialNumber::parse("EM-1").unwrap(),
        meter_type: MeterType::ELECTRICITY,
        communication_type: CommunicationType::NONE,
        details: MeterChanges::default(),
    }
}

async fn rename(store: &DynamoDbStore, meter: &Meter, name: &str) -> Meter {
    let changes = MeterChanges {
        name: Some(MeterName::parse(name).unwrap()),
        ..MeterChanges::default()
    };
    store
        .update(
            &meter.account_id,
            UpdateMeterRequest {
                id: meter.id,
                changes,
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: actor(),
            },
        )
        .await
        .unwrap()
}

/// `meters-import ARGS` against the live table, as the runbook runs it; its exit code and what it printed.
fn import(live: &DynamoDbConfig, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_meters-import"))
        .args(args)
        .env("TABLE_NAME", &live.table_name)
        .env("DYNAMODB_ENDPOINT", dynamodb::endpoint())
        .env_remove("SNAPSHOT_BUCKET")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// Every change event the live table's stream makes, as meter-events makes them: (kind, version, event id).
async fn change_events(
    config: &DynamoDbConfig,
    store: &DynamoDbStore,
) -> Vec<(String, u64, String)> {
    let batch = streams::batch_of_table(&config.table_name).await;
    let mut events = Vec::new();
    for record in batch["Records"].as_array().unwrap() {
        if let Some(change) = change_of(record, store).await.unwrap() {
            events.push((
                change.kind.detail_type().to_owned(),
                change.version(),
                change.event_id(),
            ));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn a_meter_restored_from_a_point_in_time_copy_repeats_no_version_event_or_etag_of_its_life() {
    let (live_config, live) = dynamodb::fresh_table("restore-live").await;
    let (copy_config, copy) = dynamodb::fresh_table("restore-copy").await;
    let account = AccountId::from(uuid::Uuid::new_v4());
    let created = live
        .create(&account, new_meter("Main incomer"), &actor())
        .await
        .unwrap();
    let at_v2 = rename(&live, &created, "Main incomer, hall").await;
    // The point-in-time copy: the table as it was then (AWS restores into a new table).
    assert_eq!(copy.import(vec![at_v2.clone()]).await.unwrap().imported, 1);
    let at_v3 = rename(&live, &at_v2, "Main incomer, basement").await;
    let at_v4 = rename(&live, &at_v3, "Main incomer, plant room").await;
    live.delete(
        &account,
        DeleteMeterRequest {
            id: created.id,
            if_match: IfMatch::Any,
            actor: actor(),
        },
    )
    .await
    .unwrap();
    let before = change_events(&live_config, &live).await;
    assert_eq!(
        before
            .iter()
            .map(|(k, v, _)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("MeterCreated", 1),
            ("MeterUpdated", 2),
            ("MeterUpdated", 3),
            ("MeterUpdated", 4),
            ("MeterDeleted", 4)
        ]
    );

    let (status, printed) = import(&live_config, &["--from-table", &copy_config.table_name]);
    assert_eq!(status, Some(0), "{printed}");
    assert!(
        printed.contains("1 imported (1 restored past their deletion)"),
        "{printed}"
    );

    // Back in its account with the copy's content and a version past the one it was deleted at.
    let restored = live.get(&account, created.id).await.unwrap();
    assert_eq!(restored.version, 5);
    assert_eq!(
        Meter {
            version: at_v2.version,
            ..restored.clone()
        },
        at_v2
    );
    let after = change_events(&live_config, &live).await;
    let (restore_event, _) = after.split_at(before.len() + 1);
    assert_eq!(
        restore_event.last().map(|(k, v, _)| (k.as_str(), *v)),
        Some(("MeterCreated", 5)),
        "a restore is a MeterCreated whose version is above 1"
    );
    let ids: HashSet<&str> = after.iter().map(|(_, _, id)| id.as_str()).collect();
    assert_eq!(ids.len(), after.len(), "an event id repeats: {after:?}");
    // An ETag (`id-version`) from before the delete names no state of the restored meter.
    assert!(
        [&created, &at_v2, &at_v3, &at_v4]
            .iter()
            .all(|m| m.version < restored.version)
    );
    let stale = live
        .update(
            &account,
            UpdateMeterRequest {
                id: created.id,
                changes: MeterChanges::default(),
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::versions([at_v2.version]),
                actor: actor(),
            },
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed(_))),
        "{stale:?}"
    );

    // The runbook run again changes nothing.
    let (status, printed) = import(&live_config, &["--from-table", &copy_config.table_name]);
    assert_eq!(status, Some(0), "{printed}");
    assert!(
        printed.contains("0 imported (0 restored past their deletion), 1 already present"),
        "{printed}"
    );
    assert_eq!(live.get(&account, created.id).await.unwrap().version, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn an_id_deleted_in_one_account_is_not_imported_into_another_and_the_import_says_so() {
    let (config, store) = dynamodb::fresh_table("restore-retired").await;
    let (owner, other) = (
        AccountId::from(uuid::Uuid::new_v4()),
        AccountId::from(uuid::Uuid::new_v4()),
    );
    let deleted = store
        .create(&owner, new_meter("Retired"), &actor())
        .await
        .unwrap();
    store
        .delete(
            &owner,
            DeleteMeterRequest {
                id: deleted.id,
                if_match: IfMatch::Any,
                actor: actor(),
            },
        )
        .await
        .unwrap();
    let mut foreign = deleted.clone();
    foreign.account_id = other;
    let file = std::env::temp_dir().join(format!("retired-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, serde_json::to_string(&foreign).unwrap() + "\n").unwrap();

    let (status, printed) = import(&config, &[file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(status, Some(1), "{printed}");
    assert!(
        printed.contains(&format!(
            "id {} was another account's meter, deleted there",
            deleted.id
        )),
        "{printed}"
    );
    assert!(matches!(
        store.get(&other, deleted.id).await,
        Err(StoreError::NotFound(_))
    ));
}
