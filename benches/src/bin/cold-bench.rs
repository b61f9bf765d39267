//! Cold and warm list-meters processes at Lambda's CPU shares (issue 20, items 3 and 7): one account of
//! `--meters` realistic meters in DynamoDB Local, its listing snapshots in moto's S3, the account taking one
//! update a second from another process throughout.
//!
//! Usage: cold-bench BIN_DIR [--meters 50000] [--memory 128,512,1769] [--cold 8] [--warm-seconds 20]
//!        [--no-before] [--json FILE]   (needs DYNAMODB_ENDPOINT and S3_ENDPOINT; root, for the CPU quota)
//!
//! Per memory size, each function process in a cgroup v1 CPU quota of `memory / 1769` of one core (Lambda's
//! share; a full vCPU at 1,769 MB):
//! - before: a cold process with no snapshot bucket, its first search (the account read whole);
//! - one cold process with the bucket: its first search (snapshot, change log, the meters written since);
//! - `--cold` cold processes searching at once: their statuses, slowest answer, and what they read together;
//! - the first of them kept warm for `--warm-seconds`, listing in turn a search, a filter, an unindexed sort
//!   and a deep page: p50/p99 and RCU per list.
//!
//! Read capacity is what the functions log per request; CPU from /proc (user + system); peak RSS is VmHWM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use meters::domain::meter::{AccountId, Meter, MeterChanges, MeterId, MeterName};
use meters::domain::precondition::IfMatch;
use meters::store::UpdateMeterRequest;
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::snapshots::S3Snapshots;
use meters::store::{DynamoDbStore, MeterStore};
use meters_testkit::function::{Function, Output};
use meters_testkit::measure::{self, CpuShare};
use meters_testkit::meters::{realistic, tester};
use meters_testkit::runtime_api::{Outcome, RuntimeApi};
use meters_testkit::tokens::token_for;
use meters_testkit::{HttpEvent, TEST_SECRET as SECRET};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(120);

struct Options {
    bin_dir: PathBuf,
    meters: usize,
    memory: Vec<u32>,
    cold: usize,
    warm_seconds: u64,
    before: bool,
    json: Option<PathBuf>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        bin_dir: PathBuf::from("target/release"),
        meters: 50_000,
        memory: vec![128, 512, 1_769],
        cold: 8,
        warm_seconds: 20,
        before: true,
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
            "--cold" => options.cold = number("--cold"),
            "--warm-seconds" => options.warm_seconds = number("--warm-seconds") as u64,
            "--memory" => {
                options.memory = args
                    .next()
                    .expect("--memory 128,512")
                    .split(',')
                    .map(|n| n.parse().expect("a memory size in MB"))
                    .collect()
            }
            "--no-before" => options.before = false,
            "--json" => options.json = args.next().map(PathBuf::from),
            dir => options.bin_dir = PathBuf::from(dir),
        }
    }
    options
}

/// A list-meters process at a memory size's CPU share, with its own Runtime API.
struct Process {
    runtime: RuntimeApi,
    function: Function,
    _share: CpuShare,
}

impl Process {
    async fn start(binary: &Path, config: &[(String, String)], memory_mb: u32) -> Self {
        let runtime = RuntimeApi::start().await;
        let mut env = vec![("AWS_LAMBDA_LOG_LEVEL".to_owned(), "INFO".to_owned())];
        env.extend_from_slice(config);
        env.push((
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
            memory_mb.to_string(),
        ));
        let function = Function::start_with(binary, &runtime, &env, Output::Lines);
        let name = format!(
            "meters-cold-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let share = CpuShare::of_memory(memory_mb, &name)
            .expect("a cgroup v1 CPU group (run as root on a machine with the cpu controller)");
        share.join(function.id()).expect("the process joins it");
        let mut process = Self {
            runtime,
            function,
            _share: share,
        };
        process
            .runtime
            .next_poll(TIMEOUT)
            .await
            .expect("the function polls");
        process
    }

    /// One list; its latency, status and the read capacity it logged.
    async fn list(&mut self, event: String) -> Call {
        let cpu_before = measure::cpu_time(self.function.id());
        let queued = Instant::now();
        self.runtime.invoke(event);
        let (at, outcome) = self
            .runtime
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
        Call {
            latency: at - queued,
            status,
            rcu: self.logged_rcu(),
            cpu: measure::cpu_time(self.function.id()) - cpu_before,
        }
    }

    fn logged_rcu(&self) -> f64 {
        self.function
            .next_request_log(Duration::from_secs(2))
            .and_then(|entry| entry["consumed_rcu"].as_f64())
            .unwrap_or(0.0)
    }

    fn peak_rss_mib(&self) -> f64 {
        measure::peak_rss_kib(self.function.id()) as f64 / 1024.0
    }
}

struct Call {
    latency: Duration,
    status: u16,
    rcu: f64,
    cpu: Duration,
}

#[derive(Debug, serde::Serialize)]
struct Row {
    memory_mb: u32,
    case: String,
    statuses: String,
    first_ms: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    rcu: f64,
    rcu_max: f64,
    cpu_ms: f64,
    peak_rss_mib: f64,
}

impl Row {
    /// A cold process's first list, said on stderr as it comes.
    fn first_call(memory_mb: u32, case: &str, call: &Call, process: &Process) -> Self {
        let row = Self {
            memory_mb,
            case: case.to_owned(),
            statuses: statuses(&[call]),
            first_ms: Some(measure::ms(call.latency)),
            p50_ms: None,
            p99_ms: None,
            rcu: call.rcu,
            rcu_max: call.rcu,
            cpu_ms: measure::ms(call.cpu),
            peak_rss_mib: process.peak_rss_mib(),
        };
        eprintln!("cold-bench: {row:?}");
        row
    }
}

fn statuses(calls: &[&Call]) -> String {
    let mut counts: std::collections::BTreeMap<u16, usize> = Default::default();
    for call in calls {
        *counts.entry(call.status).or_default() += 1;
    }
    counts
        .iter()
        .map(|(status, n)| format!("{n}×{status}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Updates a meter of the account every second until dropped.
fn writer(store: DynamoDbStore, account: AccountId, size: usize) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        for n in 1u64.. {
            ticks.tick().await;
            let id = MeterId::new(1 + (n * 7919 % size as u64) as i64).expect("an id");
            let changes = MeterChanges {
                name: Some(MeterName::parse(&format!("Renamed {n}")).expect("a name")),
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
                .expect("an update");
        }
    })
}

#[tokio::main]
async fn main() {
    let options = options();
    let binary = options.bin_dir.join("list-meters");
    let dynamodb = DynamoDbConfig {
        table_name: format!("meters-cold-{}", uuid::Uuid::new_v4().simple()),
        endpoint: Some(meters_testkit::dynamodb::endpoint()),
        extra_roots: None,
    };
    let client = meters::store::dynamodb::dynamodb_client(&dynamodb).await;
    let store = DynamoDbStore::new(client.clone(), dynamodb.table_name.clone());
    store.create_table_if_missing().await.expect("the table");
    // Nothing here reads the table's stream, and DynamoDB Local writes slower with one (it keeps every record).
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
    let seeding = Instant::now();
    let meters: Vec<Meter> = (0..options.meters)
        .map(|n| realistic(n as i64 + 1, account, n))
        .collect();
    store.import(meters).await.expect("seeded");
    eprintln!(
        "cold-bench: {} meters seeded in {:.1} s",
        options.meters,
        seeding.elapsed().as_secs_f64()
    );
    let (bucket, _) = meters_testkit::s3::fresh_bucket("meters-cold-bench").await;
    let without_snapshots = meters_testkit::dynamodb::function_environment(&dynamodb, SECRET);
    let mut config = without_snapshots.clone();
    config.extend(meters_testkit::s3::function_environment(&bucket));
    config.extend([
        ("AWS_ACCESS_KEY_ID".to_owned(), "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "local".to_owned()),
    ]);
    let token = token_for(SECRET, &[account]);
    let event = |query: &str| {
        HttpEvent::new("GET", "/api/v1/meters")
            .bearer(&token)
            .query(&format!("account_id={account}&{query}"))
            .http_api()
            .to_string()
    };
    let search = event("query=needle");
    let variants = [
        ("search", event("query=needle")),
        ("filter meter_type=GAS", event("meter_type=GAS&limit=20")),
        ("sortBy=location (no index)", event("sortBy=location")),
        ("deep page", event(&format!("page={}", options.meters / 40))),
    ];

    // The first snapshot: a process at a full core reads the account whole and writes it.
    let key = S3Snapshots::key_of(&account);
    {
        let mut first = Process::start(&binary, &config, measure::FULL_CORE_MB).await;
        let call = first.list(search.clone()).await;
        let started = Instant::now();
        meters_testkit::s3::written(&bucket, &key, None).await;
        eprintln!(
            "cold-bench: account read whole at a full core in {:.0} ms ({:.0} RCU); snapshot written {:.0} ms later, {} bytes",
            measure::ms(call.latency),
            call.rcu,
            measure::ms(started.elapsed()),
            meters_testkit::s3::object(&bucket, &key)
                .await
                .map_or(0, |b| b.len())
        );
    }
    let writes = writer(store.clone(), account, options.meters);
    let mut rows = Vec::new();
    for &memory in &options.memory {
        if options.before {
            let mut cold = Process::start(&binary, &without_snapshots, memory).await;
            let call = cold.list(search.clone()).await;
            rows.push(Row::first_call(
                memory,
                "before: cold, no snapshot (account read whole)",
                &call,
                &cold,
            ));
        }
        let mut cold = Process::start(&binary, &config, memory).await;
        let call = cold.list(search.clone()).await;
        rows.push(Row::first_call(
            memory,
            "cold, from the snapshot",
            &call,
            &cold,
        ));

        let mut many = Vec::new();
        for _ in 0..options.cold {
            many.push(Process::start(&binary, &config, memory).await);
        }
        let calls =
            futures::future::join_all(many.iter_mut().map(|process| process.list(search.clone())))
                .await;
        let slowest = calls.iter().map(|c| c.latency).max().unwrap_or_default();
        rows.push(Row {
            memory_mb: memory,
            case: format!("{} cold at once, from the snapshot", options.cold),
            statuses: statuses(&calls.iter().collect::<Vec<_>>()),
            first_ms: Some(measure::ms(slowest)),
            p50_ms: None,
            p99_ms: None,
            rcu: calls.iter().map(|c| c.rcu).sum(),
            rcu_max: calls.iter().map(|c| c.rcu).fold(0.0, f64::max),
            cpu_ms: calls.iter().map(|c| measure::ms(c.cpu)).fold(0.0, f64::max),
            peak_rss_mib: many.iter().map(Process::peak_rss_mib).fold(0.0, f64::max),
        });
        eprintln!("cold-bench: {:?}", rows.last().expect("a row"));
        drop(many);

        // Warm, under the writes: every variant in turn.
        for (_, variant) in &variants {
            cold.list(variant.clone()).await;
        }
        let mut calls: Vec<Vec<Call>> = variants.iter().map(|_| Vec::new()).collect();
        let started = Instant::now();
        let mut turn = 0;
        while started.elapsed() < Duration::from_secs(options.warm_seconds) {
            let at = turn % variants.len();
            calls[at].push(cold.list(variants[at].1.clone()).await);
            turn += 1;
        }
        for ((name, _), calls) in variants.iter().zip(&calls) {
            let latencies: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
            rows.push(Row {
                memory_mb: memory,
                case: format!("warm under writes: {name} ({} lists)", calls.len()),
                statuses: statuses(&calls.iter().collect::<Vec<_>>()),
                first_ms: None,
                p50_ms: Some(measure::ms(measure::percentile(&latencies, 0.5))),
                p99_ms: Some(measure::ms(measure::percentile(&latencies, 0.99))),
                rcu: calls.iter().map(|c| c.rcu).sum::<f64>() / calls.len() as f64,
                rcu_max: calls.iter().map(|c| c.rcu).fold(0.0, f64::max),
                cpu_ms: calls.iter().map(|c| measure::ms(c.cpu)).sum::<f64>() / calls.len() as f64,
                peak_rss_mib: cold.peak_rss_mib(),
            });
            eprintln!("cold-bench: {:?}", rows.last().expect("a row"));
        }
    }
    writes.abort();
    let _ = client
        .delete_table()
        .table_name(&dynamodb.table_name)
        .send()
        .await;

    println!(
        "| memory MB | case | statuses | first / slowest ms | p50 ms | p99 ms | RCU | RCU max | CPU ms | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let figure = |value: Option<f64>| value.map_or("–".to_owned(), |v| format!("{v:.1}"));
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.1} |",
            row.memory_mb,
            row.case,
            row.statuses,
            figure(row.first_ms),
            figure(row.p50_ms),
            figure(row.p99_ms),
            row.rcu,
            row.rcu_max,
            row.cpu_ms,
            row.peak_rss_mib
        );
    }
    if let Some(path) = options.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows).expect("json")).expect("written");
    }
}
