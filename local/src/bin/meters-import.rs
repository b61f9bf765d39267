//! Imports meters that already have ids into the DynamoDB table (a migration, or a recovery), then raises
//! the id counter past them and recounts their accounts: `scripts/import` (docs/runbooks.md).
//!
//! Usage: meters-import FILE | --from-table SOURCE   (TABLE_NAME, and DYNAMODB_ENDPOINT for DynamoDB Local)
//! FILE holds one meter per line, as the API returns it (`data` of a get); `-` reads standard input.
//! SOURCE is another table of this layout, such as a point-in-time restore of TABLE_NAME: its meters are
//! imported. A meter deleted in its own account comes back (restored) with a version past the one it was
//! deleted at. Exits 1 if any id was already taken by another meter, in this account or another (those are
//! left as they were), was another account's deleted meter's (ids are never reused), or is above the highest
//! id an import may bring (those are not imported).
//!
//! With `SNAPSHOT_BUCKET` (the stack's, as list-meters has it), each account imported is then read whole and
//! written as its listing snapshot, so that no list process reads a big account whole after a migration.

use std::collections::BTreeSet;
use std::io::BufRead;

use meters::domain::meter::{AccountId, Meter};
use meters::store::DynamoDbStore;
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::snapshots::S3Snapshots;

const USAGE: &str =
    "usage: meters-import FILE (one meter per line; - for standard input) | --from-table SOURCE";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(clean) => std::process::ExitCode::from(u8::from(!clean)),
        Err(error) => {
            eprintln!("meters-import: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = meters::config::Env::process();
    let config = DynamoDbConfig::read(&env)?;
    let mut store = DynamoDbStore::new(
        meters::store::dynamodb::dynamodb_client(&config).await,
        config.table_name.clone(),
    );
    if let Some(snapshots) = S3Snapshots::from_env(&env).await? {
        store = store.with_snapshots(std::sync::Arc::new(snapshots));
    }
    store.create_table_if_missing().await?;
    let meters = match args.as_slice() {
        [flag, source] if flag == "--from-table" => store.meters_of_table(source).await?,
        [path] if !path.starts_with("--") => read_meters(path)?,
        _ => return Err(USAGE.into()),
    };
    let accounts: BTreeSet<AccountId> = meters.iter().map(|meter| meter.account_id).collect();
    let report = store.import(meters).await?;
    println!(
        "meters-import: {} imported ({} restored past their deletion), {} already present, {} conflicting, {} retired in another account, {} refused; id counter at {}; {} accounts recounted",
        report.imported,
        report.restored,
        report.already_present,
        report.conflicts.len(),
        report.retired_elsewhere.len(),
        report.refused.len(),
        report.counter,
        report.accounts
    );
    for id in &report.conflicts {
        println!("meters-import: id {id} is taken by another meter; left as it was");
    }
    for id in &report.retired_elsewhere {
        println!(
            "meters-import: id {id} was another account's meter, deleted there; ids are never reused, so not imported"
        );
    }
    for id in &report.refused {
        println!(
            "meters-import: id {id} is above {}, which would leave no room for new ids; not imported",
            meters::store::dynamodb::MAX_IMPORTED_ID
        );
    }
    let mut snapshots = 0;
    for account in &accounts {
        if store.write_snapshot(account).await? {
            snapshots += 1;
        }
    }
    if snapshots > 0 {
        println!("meters-import: {snapshots} listing snapshots written");
    }
    Ok(report.conflicts.is_empty()
        && report.retired_elsewhere.is_empty()
        && report.refused.is_empty())
}

/// One meter per line, as the API returns it.
fn read_meters(path: &str) -> Result<Vec<Meter>, Box<dyn std::error::Error>> {
    let reader: Box<dyn BufRead> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(path)?))
    };
    let mut meters = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let meter: Meter =
            serde_json::from_str(&line).map_err(|error| format!("line {}: {error}", number + 1))?;
        meters.push(meter);
    }
    Ok(meters)
}
