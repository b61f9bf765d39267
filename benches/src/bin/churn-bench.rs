//! Cold list-meters processes under churn (issue 30, item 5): two accounts of `--meters` realistic meters in
//! DynamoDB Local, their listing snapshots in moto's S3, three writers (each a store of its own, with its own
//! block of ids) creating, updating and deleting meters of both accounts at `--writes` per second in all;
//! meanwhile `--cold` list-meters processes start one after another, each searching one account (alternately)
//! as its first request. Per cold start: whether it started from the snapshot or read the account whole (and the
//! reason it logged), and the read capacity it consumed.
//!
//! Usage: churn-bench BIN_DIR [--meters 5000] [--writes 30] [--cold 40] [--json FILE]
//!        (needs DYNAMODB_ENDPOINT and S3_ENDPOINT; BIN_DIR holds list-meters)

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meters::domain::meter::{AccountId, Meter, MeterChanges, MeterId, MeterName};
use meters::domain::precondition::IfMatch;
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::snapshots::S3Snapshots;
use meters::store::{DeleteMeterRequest, UpdateMeterRequest};
use meters::store::{DynamoDbStore, MeterStore};
use meters_testkit::function::{Function, Output};
use meters_testkit::meters::{realistic, tester};
use meters_testkit::runtime_api::{Outcome, RuntimeApi};
use meters_testkit::tokens::token_for;
use meters_testkit::{HttpEvent, TEST_SECRET as SECRET};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(120);

struct Options {
    bin_dir: PathBuf,
    meters: usize,
    writes: u64,
    cold: usize,
    json: Option<PathBuf>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        bin_dir: PathBuf::from("target/release"),
        meters: 5_000,
        writes: 30,
        cold: 40,
        json: None,
    };
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> usize {
            args.next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{what} N"))
        };
        match arg.as_str() {
            "--meters" => options.meters = number("--meters"),
            "--writes" => options.writes = number("--writes") as u64,
            "--cold" => options.cold = number("--cold"),
            "--json" => options.json = args.next().map(PathBuf::from),
            dir => options.bin_dir = PathBuf::from(dir),
        }
    }
    options
}

/// One writer: a store of its own, at `per_second`, over both accounts: a create, then three updates, then a
/// delete of a meter it created, in turn. Returns the writes it made when stopped.
fn writer(
    store: DynamoDbStore,
    accounts: [AccountId; 2],
    size: usize,
    per_second: u64,
    seed: u64,
    done: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / per_second.max(1)));
        let mut created: Vec<(AccountId, MeterId)> = Vec::new();
        for n in 0u64.. {
            ticks.tick().await;
            let account = accounts[(n % 2) as usize];
            let outcome = match n % 5 {
                0 => {
                    let meter = realistic(1, account, (seed * 1_000_003 + n) as usize);
                    let new = meters::domain::meter::NewMeter {
                        name: meter.name.clone(),
                        serial_number: meter.serial_number.clone(),
                        meter_type: meter.meter_type,
                        communication_type: meter.communication_type,
                        details: MeterChanges::default(),
                    };
                    store.create(&account, new, &tester()).await.map(|meter| {
                        created.push((account, meter.id));
                    })
                }
                4 => match created.pop() {
                    Some((account, id)) => {
                        store
                            .delete(
                                &account,
                                DeleteMeterRequest {
                                    id,
                                    if_match: IfMatch::Any,
                                    actor: tester(),
                                },
                            )
                            .await
                    }
                    None => Ok(()),
                },
                _ => {
                    // The seeded ids: the first account's 1 to size, the second's after them.
                    let offset = (n % 2) * size as u64;
                    let id = MeterId::new(1 + (offset + (n * 7919 + seed) % size as u64) as i64)
                        .expect("an id");
                    let changes = MeterChanges {
                        name: Some(
                            MeterName::parse(&format!("Renamed {seed}-{n}")).expect("a name"),
                        ),
                        ..Default::default()
                    };
                    store
                        .update(
                            &account,
                            UpdateMeterRequest {
                                id,
                                changes,
                                read_only: Default::default(),
                                if_match: IfMatch::Any,
                                actor: tester(),
                            },
                        )
                        .await
                        .map(drop)
                }
            };
            match outcome {
                Ok(()) => {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => eprintln!("churn-bench: a write failed: {error}"),
            }
        }
    })
}

#[derive(Debug, serde::Serialize)]
struct Start {
    account: usize,
    status: u16,
    ms: f64,
    rcu: f64,
    /// What the process logged when it read the account whole; `None` when it started from the snapshot.
    whole: Option<String>,
}

/// A cold process's first search, and what it logged on the way.
async fn cold_start(
    binary: &std::path::Path,
    env: &[(String, String)],
    event: String,
) -> (u16, f64, f64, Vec<Value>) {
    let mut runtime = RuntimeApi::start().await;
    let function = Function::start_with(binary, &runtime, env, Output::Lines);
    runtime
        .next_poll(TIMEOUT)
        .await
        .expect("the function polls");
    let queued = Instant::now();
    runtime.invoke(event);
    let (at, outcome) = runtime
        .timed_outcome(TIMEOUT)
        .await
        .expect("the function answers");
    let Outcome::Response { body, .. } = outcome else {
        panic!("the function failed: {outcome:?}");
    };
    let status = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|r| r["statusCode"].as_u64())
        .unwrap_or(0) as u16;
    let mut lines = Vec::new();
    let mut rcu = 0.0;
    while let Some(line) = function.next_line(Duration::from_secs(2)) {
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry["message"] == "request" {
            rcu = entry["consumed_rcu"].as_f64().unwrap_or(0.0);
            break;
        }
        lines.push(entry);
    }
    // Alive a moment after its answer, as a Lambda environment that gets another request: time for the
    // snapshot it may write in the background.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    function.stop();
    (status, (at - queued).as_secs_f64() * 1000.0, rcu, lines)
}

#[tokio::main]
async fn main() {
    let options = options();
    let binary = options.bin_dir.join("list-meters");
    let dynamodb = DynamoDbConfig {
        table_name: format!("meters-churn-{}", uuid::Uuid::new_v4().simple()),
        endpoint: Some(meters_testkit::dynamodb::endpoint()),
        extra_roots: None,
    };
    let client = meters::store::dynamodb::dynamodb_client(&dynamodb).await;
    let seeder = DynamoDbStore::new(client.clone(), dynamodb.table_name.clone());
    seeder.create_table_if_missing().await.expect("the table");
    // Nothing here reads the table's stream, and DynamoDB Local writes slower with one.
    client
        .update_table()
        .table_name(&dynamodb.table_name)
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(false)
                .build()
                .expect("a stream specification"),
        )
        .send()
        .await
        .expect("the stream is turned off");
    let accounts = [
        AccountId::from(uuid::Uuid::new_v4()),
        AccountId::from(uuid::Uuid::new_v4()),
    ];
    let mut seeded: Vec<Meter> = Vec::new();
    for (a, account) in accounts.iter().enumerate() {
        seeded.extend((0..options.meters).map(|n| {
            let id = (a * options.meters + n) as i64 + 1;
            realistic(id, *account, n)
        }));
    }
    seeder.import(seeded).await.expect("seeded");
    let (bucket, _) = meters_testkit::s3::fresh_bucket("meters-churn-bench").await;
    let mut env = meters_testkit::dynamodb::function_environment(&dynamodb, SECRET);
    env.extend(meters_testkit::s3::function_environment(&bucket));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    env.push(("RUST_LOG".into(), "info".into()));
    let token = token_for(SECRET, &accounts);
    let search = |account: &AccountId| {
        HttpEvent::new("GET", "/api/v1/meters")
            .bearer(&token)
            .query(&format!("account_id={account}&query=needle"))
            .http_api()
            .to_string()
    };
    // Each account's first snapshot, as a first list makes it.
    for account in &accounts {
        cold_start(&binary, &env, search(account)).await;
        meters_testkit::s3::written(&bucket, &S3Snapshots::key_of(account), None).await;
    }
    eprintln!(
        "churn-bench: {} meters in each of two accounts, snapshots written",
        options.meters
    );

    let done = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..3)
        .map(|seed| {
            writer(
                DynamoDbStore::new(client.clone(), dynamodb.table_name.clone()),
                accounts,
                options.meters,
                options.writes / 3,
                seed,
                Arc::clone(&done),
            )
        })
        .collect();
    let started = Instant::now();
    let mut starts = Vec::new();
    for n in 0..options.cold {
        let account = n % 2;
        let (status, ms, rcu, logged) = cold_start(&binary, &env, search(&accounts[account])).await;
        let whole = logged
            .iter()
            .filter_map(|entry| entry["message"].as_str())
            .find(|message| message.contains("reading the account whole"))
            .map(str::to_owned);
        let start = Start {
            account,
            status,
            ms,
            rcu,
            whole,
        };
        let snapshot =
            meters_testkit::s3::object(&bucket, &S3Snapshots::key_of(&accounts[account]))
                .await
                .and_then(|bytes| meters::store::snapshots::decode(&accounts[account], &bytes).ok())
                .map(|snapshot| snapshot.version);
        eprintln!("churn-bench: {start:?}, snapshot at list version {snapshot:?}");
        starts.push(start);
    }
    for writer in writers {
        writer.abort();
    }
    let seconds = started.elapsed().as_secs_f64();
    let whole: Vec<&Start> = starts.iter().filter(|s| s.whole.is_some()).collect();
    let mut reasons: std::collections::BTreeMap<&str, usize> = Default::default();
    for start in &whole {
        *reasons
            .entry(start.whole.as_deref().unwrap_or_default())
            .or_default() += 1;
    }
    let mean = |values: Vec<f64>| {
        if values.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.1}", values.iter().sum::<f64>() / values.len() as f64)
        }
    };
    println!(
        "| cold starts | read whole | RCU per cold start (mean) | RCU from the snapshot (mean) | RCU read whole (mean) | writes/s | statuses |"
    );
    println!("|---|---|---|---|---|---|---|");
    let statuses = starts.iter().filter(|s| s.status == 200).count();
    println!(
        "| {} | {} | {} | {} | {} | {:.1} | {statuses}×200 of {} |",
        starts.len(),
        whole.len(),
        mean(starts.iter().map(|s| s.rcu).collect()),
        mean(
            starts
                .iter()
                .filter(|s| s.whole.is_none())
                .map(|s| s.rcu)
                .collect()
        ),
        mean(whole.iter().map(|s| s.rcu).collect()),
        done.load(Ordering::Relaxed) as f64 / seconds,
        starts.len(),
    );
    for (reason, count) in reasons {
        println!("\nread whole {count}×: {reason}");
    }
    let _ = client
        .delete_table()
        .table_name(&dynamodb.table_name)
        .send()
        .await;
    if let Some(path) = options.json {
        std::fs::write(path, serde_json::to_string_pretty(&starts).expect("json"))
            .expect("written");
    }
}
