//! `meters-import` as an operator runs it: a report, and exit status 1 when an id could not be imported.

use meters::domain::meter::{AccountId, Meter, MeterId};
use meters::store::MeterStore;
use meters_testkit::dynamodb;
use meters_testkit::meters::{new_meter, tester};

/// An id another account holds is reported as a conflict and the import exits 1, leaving that meter as it
/// was; so is an id past the ceiling that keeps room for new ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: run scripts/test"]
async fn an_import_of_an_id_another_account_holds_reports_it_and_exits_1() {
    let (config, store) = dynamodb::fresh_table("meters-import-cli").await;
    let holder = AccountId::from(uuid::Uuid::new_v4());
    let held = store
        .create(&holder, new_meter("held"), &tester())
        .await
        .unwrap();
    let importer = AccountId::from(uuid::Uuid::new_v4());
    let at = meters::domain::meter::now();
    let clash = Meter::create(held.id, importer, new_meter("clash"), at);
    let fine = Meter::create(
        MeterId::new(5_000_000).unwrap(),
        importer,
        new_meter("fine"),
        at,
    );
    let file = std::env::temp_dir().join(format!("import-{}.jsonl", uuid::Uuid::new_v4()));
    let lines: Vec<String> = [&clash, &fine]
        .iter()
        .map(|meter| serde_json::to_string(meter).unwrap())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meters-import"))
        .arg(&file)
        .envs(dynamodb::function_environment(
            &config,
            "unused-by-the-import",
        ))
        .output()
        .expect("meters-import runs");
    std::fs::remove_file(&file).ok();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(
            "1 imported (0 restored past their deletion), 0 already present, 1 conflicting, 0 retired in another account, 0 refused"
        ),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("id {} is taken by another meter", held.id)),
        "{printed}"
    );
    assert_eq!(store.get(&holder, held.id).await.unwrap(), held);
}
