//! Readings at machine rate (issue 28): one account of `--meters` realistic meters in DynamoDB Local, and readings
//! of random meters of it, each later than the last, as fast as they are taken, for `--seconds` per phase:
//!
//! 1. edits alone: `POST`, `PUT` and `DELETE` through the real create, update and delete functions, one after
//!    another, with a list through list-meters after each, its `count` checked (the p99 edits have unharmed);
//! 2. `--rounds` rounds, side by side, of: bare, a Rust loop of the store's own conditional write
//!    (`ReadingStore::apply_reading`), `--processes` × `READINGS_IN_FLIGHT` at once; then after,
//!    `--processes` apply-readings processes, each through its own Runtime API stub, fed SQS-shaped batches of
//!    100 readings (10 messages of 10); in both, the edits and lists of phase 1 go on;
//! 3. the bare loop at each `--bare-in-flight` concurrency: what else the table takes;
//! 4. before (`--before`): each reading a `PUT` of `last_reading_value` and `last_reading_at` through
//!    `--processes` update-meter processes, as the platform had to send them.
//!
//! Per phase: readings/s, write units per reading (from the functions' own log lines: DynamoDB's consumed
//! capacity), and for the edits their p50/p99, their statuses and the lists' counts. With `--memory-table`, the
//! apply-readings batch duration at Lambda's CPU share for 128, 256, 512 and 1,024 MB (cgroup v1 CPU quota; root),
//! and its cost per million readings.
//!
//! Usage: readings-bench BIN_DIR [--meters 1000] [--seconds 20] [--processes 4] [--rounds 3] [--bare-in-flight N,N…]
//!        [--before] [--memory-table] [--json FILE]   (needs DYNAMODB_ENDPOINT and S3_ENDPOINT, moto's SQS there)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meters::domain::meter::AccountId;
use meters::readings::READINGS_IN_FLIGHT;
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::{Applied, DynamoDbStore, ReadingStore};
use meters_testkit::measure::ms;
use meters_testkit::meters::realistic;
use meters_testkit::tokens::token_for;
use meters_testkit::{HttpEvent, TEST_SECRET as SECRET};
use serde_json::{Value, json};

mod edits;
mod memory;
mod readings;
mod running;

use edits::{Edits, edit_owned};
use memory::{GB_SECOND_USD, MILLION_REQUESTS_USD, batch_duration_at};
use readings::Readings;
use running::Running;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

struct Options {
    bin_dir: PathBuf,
    meters: usize,
    seconds: u64,
    processes: usize,
    before: bool,
    memory_table: bool,
    /// How many of the bare loop's writes are in flight at once: each figure is run, the best kept.
    bare_in_flight: Vec<usize>,
    rounds: usize,
    json: Option<PathBuf>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        bin_dir: PathBuf::from("target/release"),
        meters: 1_000,
        seconds: 20,
        processes: 4,
        before: false,
        memory_table: false,
        bare_in_flight: Vec::new(),
        rounds: 3,
        json: None,
    };
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> u64 {
            args.next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{what} N"))
        };
        match arg.as_str() {
            "--meters" => options.meters = number("--meters") as usize,
            "--seconds" => options.seconds = number("--seconds"),
            "--processes" => options.processes = number("--processes") as usize,
            "--rounds" => options.rounds = number("--rounds") as usize,
            "--before" => options.before = true,
            "--memory-table" => options.memory_table = true,
            "--bare-in-flight" => {
                options.bare_in_flight = args
                    .next()
                    .expect("--bare-in-flight N[,N…]")
                    .split(',')
                    .map(|n| n.parse().expect("a number"))
                    .collect()
            }
            "--json" => options.json = args.next().map(PathBuf::from),
            dir => options.bin_dir = PathBuf::from(dir),
        }
    }
    options
}

#[derive(Debug, Default, serde::Serialize)]
struct Phase {
    readings: u64,
    seconds: f64,
    per_second: f64,
    write_units_per_reading: Option<f64>,
    not_later: u64,
    edits: Option<Edits>,
}

/// The store's own conditional write in a loop, `in_flight` at once.
async fn bare(
    store: &DynamoDbStore,
    readings: &Arc<Readings>,
    in_flight: usize,
    seconds: u64,
) -> Phase {
    let (applied, not_later) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (store, readings) = (store.clone(), Arc::clone(readings));
            let (applied, not_later) = (Arc::clone(&applied), Arc::clone(&not_later));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let reading = readings.next();
                    match store.apply_reading(&reading.account_id, &reading).await {
                        Ok(Applied::Applied) => applied.fetch_add(1, Ordering::Relaxed),
                        Ok(Applied::NotLater) => not_later.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            eprintln!("readings-bench: a bare write failed: {error}");
                            0
                        }
                    };
                }
            })
        })
        .collect();
    futures::future::join_all(workers).await;
    let seconds = started.elapsed().as_secs_f64();
    let readings = applied.load(Ordering::Relaxed) + not_later.load(Ordering::Relaxed);
    Phase {
        readings,
        seconds,
        per_second: readings as f64 / seconds,
        not_later: not_later.load(Ordering::Relaxed),
        ..Phase::default()
    }
}

/// `processes` function processes, each fed events from `next_event` one after another for `seconds`; the
/// readings each event carries are `per_event`.
async fn through_functions(
    binary: &Path,
    env: &[(String, String)],
    processes: usize,
    seconds: u64,
    per_event: u64,
    next_event: Arc<dyn Fn() -> String + Send + Sync>,
) -> Phase {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut feeders = Vec::new();
    for _ in 0..processes {
        let mut running = Running::start(binary, env, None).await;
        let next_event = Arc::clone(&next_event);
        feeders.push(tokio::spawn(async move {
            let mut events = 0u64;
            while Instant::now() < deadline {
                let (answer, _) = running.invoke(next_event()).await;
                let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
                let failed = answer["batchItemFailures"].as_array().map_or(0, Vec::len);
                let status = answer["statusCode"].as_u64().unwrap_or(200);
                assert!(
                    failed == 0 && status / 100 == 2,
                    "a reading was refused: {answer}"
                );
                events += 1;
            }
            let units = running.write_units();
            running.function.stop();
            (events, units)
        }));
    }
    let (mut events, mut units) = (0, 0.0);
    for feeder in feeders {
        let (fed, spent) = feeder.await.expect("a feeder");
        events += fed;
        units += spent;
    }
    let seconds = started.elapsed().as_secs_f64();
    let readings = events * per_event;
    Phase {
        readings,
        seconds,
        per_second: readings as f64 / seconds,
        write_units_per_reading: Some(units / readings as f64),
        ..Phase::default()
    }
}

/// Runs `phase` while the edits go on; the phase with what the edits came to.
async fn with_edits(
    bin: &Path,
    env: &[(String, String)],
    account: AccountId,
    seeded: usize,
    phase: impl std::future::Future<Output = Phase>,
) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let edits = tokio::spawn(edit_owned(
        bin.to_owned(),
        env.to_vec(),
        account,
        seeded,
        Arc::clone(&stop),
    ));
    let mut phase = phase.await;
    stop.store(true, Ordering::Relaxed);
    phase.edits = Some(edits.await.expect("the edits"));
    phase
}

#[tokio::main]
async fn main() {
    let options = options();
    let dynamodb = DynamoDbConfig {
        table_name: format!("meters-readings-{}", uuid::Uuid::new_v4().simple()),
        endpoint: Some(meters_testkit::dynamodb::endpoint()),
        extra_roots: None,
    };
    let client = meters::store::dynamodb::dynamodb_client(&dynamodb).await;
    let store = DynamoDbStore::new(client.clone(), dynamodb.table_name.clone());
    store.create_table_if_missing().await.expect("the table");
    // Nothing here reads the table's stream, and DynamoDB Local writes slower with one (as churn-bench).
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
    let account = AccountId::from(uuid::Uuid::new_v4());
    let seeded: Vec<_> = (0..options.meters)
        .map(|n| realistic(n as i64 + 1, account, n))
        .collect();
    store.import(seeded).await.expect("seeded");
    let readings = Arc::new(Readings {
        account,
        meters: options.meters as u64,
        next: AtomicU64::new(0),
        start: chrono::Utc::now(),
    });
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "local", "local", None, None, "bench",
            ))
            .endpoint_url(meters_testkit::s3::endpoint())
            .build(),
    );
    let dead_letters = sqs
        .create_queue()
        .queue_name(format!("readings-dlq-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("the dead-letter queue")
        .queue_url()
        .expect("its URL")
        .to_owned();
    let mut env = meters_testkit::dynamodb::function_environment(&dynamodb, SECRET);
    env.extend([
        ("READINGS_DEAD_LETTER_QUEUE_URL".to_owned(), dead_letters),
        (
            "AWS_ENDPOINT_URL_SQS".to_owned(),
            meters_testkit::s3::endpoint(),
        ),
        ("RUST_LOG".to_owned(), "info".to_owned()),
    ]);
    let bin = options.bin_dir.clone();
    let seconds = options.seconds;
    eprintln!(
        "readings-bench: {} meters in one account; {seconds} s per phase",
        options.meters
    );

    let stop = Arc::new(AtomicBool::new(false));
    let alone = {
        let edits = tokio::spawn(edit_owned(
            bin.clone(),
            env.clone(),
            account,
            options.meters,
            Arc::clone(&stop),
        ));
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        edits.await.expect("the edits")
    };
    eprintln!("readings-bench: edits alone {alone:?}");
    // Side by side: rounds of the bare loop at the functions' own concurrency, then the functions (with the
    // edits going on), so that whatever DynamoDB Local does over a run falls on both alike.
    let own = options.processes * READINGS_IN_FLIGHT;
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        // The edits go on in both, so that both share the table with them alike.
        let bare = with_edits(
            &bin,
            &env,
            account,
            options.meters,
            bare(&store, &readings, own, seconds),
        )
        .await;
        let (batches, binary) = (Arc::clone(&readings), bin.join("apply-readings"));
        let feed = through_functions(
            &binary,
            &env,
            options.processes,
            seconds,
            100,
            Arc::new(move || batches.batch(10, 10)),
        );
        let after = with_edits(&bin, &env, account, options.meters, feed).await;
        eprintln!(
            "readings-bench: round {round}: bare loop ({own} in flight) {:.0} readings/s; apply-readings ×{} \
             {:.0} readings/s ({:.1} WCU each); edits meanwhile {:?}",
            bare.per_second,
            options.processes,
            after.per_second,
            after.write_units_per_reading.unwrap_or(0.0),
            after.edits
        );
        rounds.push(json!({"bare": bare, "after": after}));
    }
    let total = |phase: &str| {
        let (readings, seconds) = rounds.iter().fold((0.0, 0.0), |(r, s), round| {
            (
                r + round[phase]["readings"].as_f64().unwrap_or(0.0),
                s + round[phase]["seconds"].as_f64().unwrap_or(0.0),
            )
        });
        readings / seconds
    };
    let (bare_rate, after_rate) = (total("bare"), total("after"));
    let worst_edit_p99 = rounds
        .iter()
        .filter_map(|round| round["after"]["edits"]["p99_ms"].as_f64())
        .fold(0.0, f64::max);
    eprintln!(
        "readings-bench: in all, bare {bare_rate:.0} readings/s, apply-readings {after_rate:.0} readings/s ({:.0} %); \
         edits' worst p99 {worst_edit_p99:.0} ms",
        100.0 * after_rate / bare_rate
    );
    // The table's own best, at other concurrencies.
    let mut bare_runs = Vec::new();
    for &in_flight in &options.bare_in_flight {
        let phase = bare(&store, &readings, in_flight, seconds).await;
        eprintln!(
            "readings-bench: bare loop, {in_flight} in flight: {:.0} readings/s",
            phase.per_second
        );
        bare_runs.push(json!({"in_flight": in_flight, "per_second": phase.per_second}));
    }
    let before = if options.before {
        let (token, puts) = (token_for(SECRET, &[account]), Arc::clone(&readings));
        let put = Arc::new(move || {
            let reading = puts.next();
            let body = json!({"account_id": account.to_string(), "last_reading_value": reading.value,
                              "last_reading_at": reading.at});
            HttpEvent::new("PUT", &format!("/api/v1/meters/{}", reading.meter_id))
                .bearer(&token)
                .json_body(&body)
                .http_api()
                .to_string()
        });
        let phase = with_edits(
            &bin,
            &env,
            account,
            options.meters,
            through_functions(
                &bin.join("update-meter"),
                &env,
                options.processes,
                seconds,
                1,
                put,
            ),
        )
        .await;
        eprintln!(
            "readings-bench: PUT per reading ×{}: {phase:?}",
            options.processes
        );
        Some(phase)
    } else {
        None
    };
    let mut memory = Vec::new();
    if options.memory_table {
        for memory_mb in [128u32, 256, 512, 1024] {
            let took =
                batch_duration_at(&bin.join("apply-readings"), &env, &readings, memory_mb).await;
            // Lambda bills each millisecond of a batch of 100 readings, and the request.
            let per_million = 10_000.0
                * (took.as_secs_f64() * f64::from(memory_mb) / 1024.0 * GB_SECOND_USD
                    + MILLION_REQUESTS_USD / 1e6);
            eprintln!(
                "readings-bench: {memory_mb} MB: a batch of 100 in {:.1} ms, ${per_million:.4} per million readings",
                ms(took)
            );
            memory.push(json!({"memory_mb": memory_mb, "batch_ms": ms(took), "usd_per_million_readings": per_million}));
        }
    }
    let report = json!({
        "meters": options.meters, "processes": options.processes, "seconds": seconds,
        "edits_alone": alone, "rounds": rounds, "bare_per_second": bare_rate,
        "after_per_second": after_rate, "after_of_bare": after_rate / bare_rate, "worst_edit_p99_ms": worst_edit_p99,
        "bare_runs": bare_runs, "before": before, "memory": memory,
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    if let Some(path) = options.json {
        std::fs::write(path, report.to_string()).expect("the report is written");
    }
}
