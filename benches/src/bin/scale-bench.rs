//! Big accounts: each list variant, get, create, update and delete through the function binaries and a
//! local Runtime API, against DynamoDB Local holding one account of 1,000, 10,000 or 50,000 realistic
//! meters (name, serial, location, ~100-character description).
//!
//! Usage: scale-bench BIN_DIR [--sizes 1000,10000,50000] [--warm 30] [--label after] [--legacy]
//!        [--json FILE] [--under-writes SECONDS]   (needs DYNAMODB_ENDPOINT)
//!
//! `--under-writes`: instead, one warm list-meters process searched continually (a search, a filter, an
//! unindexed sort and a deep page in turn) for SECONDS while another process updates a meter of the same
//! account every second; per variant, the RCU and latency of every list after the first, and the writes'
//! WCU (issue 20, item 2).
//!
//! Per list variant, a fresh process: its first list (what a cold process pays: the worst case when the
//! list needs the whole account), then `--warm` repeats of it (what a warm process pays when nothing was
//! written in between); read capacity from DynamoDB's reported consumed capacity, which the functions log
//! per request; CPU from /proc (user + system); peak RSS (VmHWM). `--legacy` measures binaries from before
//! account heads existed: the seeded account gets no head, and since those binaries log no capacity, the
//! bench replays their DynamoDB calls itself with ReturnConsumedCapacity.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use meters::domain::meter::{AccountId, Meter};
use meters::store::DynamoDbStore;
use meters::store::UpdateMeterRequest;
use meters::store::dynamodb::DynamoDbConfig;
use meters_testkit::function::{Function, Output};
use meters_testkit::measure;
use meters_testkit::meters::realistic;
use meters_testkit::runtime_api::{Outcome, RuntimeApi};
use meters_testkit::tokens::token_for;
use meters_testkit::{HttpEvent, TEST_SECRET as SECRET};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The event of the n-th invocation.
type EventFn<'a> = Box<dyn Fn(usize) -> String + 'a>;

struct Options {
    bin_dir: PathBuf,
    sizes: Vec<usize>,
    warm: usize,
    label: String,
    legacy: bool,
    json: Option<PathBuf>,
    under_writes: Option<u64>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        bin_dir: PathBuf::from("target/release"),
        sizes: vec![1_000, 10_000, 50_000],
        warm: 30,
        label: "after".into(),
        legacy: false,
        json: None,
        under_writes: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                options.sizes = args
                    .next()
                    .expect("--sizes 1000,10000")
                    .split(',')
                    .map(|n| n.parse().expect("a size"))
                    .collect()
            }
            "--warm" => options.warm = args.next().and_then(|n| n.parse().ok()).expect("--warm N"),
            "--label" => options.label = args.next().expect("--label NAME"),
            "--legacy" => options.legacy = true,
            "--json" => options.json = args.next().map(PathBuf::from),
            "--under-writes" => {
                options.under_writes = args.next().and_then(|n| n.parse().ok());
                assert!(options.under_writes.is_some(), "--under-writes SECONDS");
            }
            dir => options.bin_dir = PathBuf::from(dir),
        }
    }
    options
}

/// A function process whose log lines are read as they come.
struct Running(Function);

impl Running {
    fn start(binary: &Path, runtime: &RuntimeApi, config: &[(String, String)]) -> Self {
        let mut env = vec![("AWS_LAMBDA_LOG_LEVEL".to_owned(), "INFO".to_owned())];
        env.extend_from_slice(config);
        Self(Function::start_with(binary, runtime, &env, Output::Lines))
    }

    /// CPU time used so far (user + system).
    fn cpu(&self) -> Duration {
        measure::cpu_time(self.0.id())
    }

    fn peak_rss_kib(&self) -> u64 {
        measure::peak_rss_kib(self.0.id())
    }

    /// The capacity the last request logged, if the binary logs it.
    fn logged_capacity(&self, expect_line: bool) -> Option<(f64, f64)> {
        let wait = if expect_line {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(1)
        };
        let entry = self.0.next_request_log(wait)?;
        Some((
            entry["consumed_rcu"].as_f64().unwrap_or(0.0),
            entry["consumed_wcu"].as_f64().unwrap_or(0.0),
        ))
    }
}

/// One invocation: latency, status, and the capacity the function logged for it.
struct Call {
    latency: Duration,
    status: u16,
    capacity: Option<(f64, f64)>,
}

async fn call(runtime: &mut RuntimeApi, function: &Running, event: String, logs: bool) -> Call {
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
    Call {
        latency: at - queued,
        status,
        capacity: function.logged_capacity(logs),
    }
}

/// A warm list-meters process searched continually while the account takes one update a second from
/// another process: per variant, every list's RCU and latency, and the writes' WCU.
#[allow(clippy::too_many_arguments)]
async fn under_writes(
    binary: &Path,
    config: &[(String, String)],
    store: &DynamoDbStore,
    account: AccountId,
    token: &str,
    size: usize,
    seconds: u64,
    label: &str,
) -> Vec<Row> {
    use meters::store::MeterStore;
    let variants = [
        ("under writes: query, few match", "query=needle".to_owned()),
        (
            "under writes: filter meter_type=GAS",
            "meter_type=GAS&limit=20".to_owned(),
        ),
        (
            "under writes: sortBy=location (no index)",
            "sortBy=location".to_owned(),
        ),
        ("under writes: deep page", format!("page={}", size / 40)),
    ];
    let event = |query: &str| {
        HttpEvent::new("GET", "/api/v1/meters")
            .bearer(token)
            .query(&format!("account_id={account}&{query}"))
            .http_api()
            .to_string()
    };
    let mut runtime = RuntimeApi::start().await;
    let function = Running::start(binary, &runtime, config);
    // The first list of each variant reads the account whole (a cold process); the rest is what is measured.
    for (_, query) in &variants {
        call(&mut runtime, &function, event(query), true).await;
    }
    let writes = {
        let (store, stop_at) = (store.clone(), Instant::now() + Duration::from_secs(seconds));
        tokio::spawn(async move {
            let mut units = Vec::new();
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0u64;
            while Instant::now() < stop_at {
                ticks.tick().await;
                n += 1;
                let id = meters::domain::meter::MeterId::new(1 + (n * 7919 % size as u64) as i64)
                    .expect("an id");
                let changes = meters::domain::meter::MeterChanges {
                    name: Some(
                        meters::domain::meter::MeterName::parse(&format!("Renamed {n}"))
                            .expect("a name"),
                    ),
                    ..Default::default()
                };
                let invocation = meters::telemetry::Invocation::new(None, None, None);
                let wcu = meters::telemetry::within_request(invocation, async {
                    store
                        .update(
                            &account,
                            UpdateMeterRequest {
                                id,
                                changes,
                                read_only: Default::default(),
                                if_match: meters::domain::precondition::IfMatch::Any,
                                actor: meters_testkit::meters::tester(),
                            },
                        )
                        .await
                        .expect("an update");
                    meters::telemetry::current().capacity.write
                })
                .await;
                units.push(wcu);
            }
            units
        })
    };
    let started = Instant::now();
    let mut calls: Vec<Vec<Call>> = variants.iter().map(|_| Vec::new()).collect();
    let mut turn = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let at = turn % variants.len();
        calls[at].push(call(&mut runtime, &function, event(&variants[at].1), true).await);
        turn += 1;
    }
    let write_units = writes.await.expect("the writer");
    let peak = function.peak_rss_kib();
    let mut rows: Vec<Row> = variants
        .iter()
        .zip(&calls)
        .map(|((name, _), calls)| {
            let latencies: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
            let rcus: Vec<f64> = calls
                .iter()
                .filter_map(|c| c.capacity.map(|c| c.0))
                .collect();
            let most = rcus.iter().copied().reduce(f64::max).unwrap_or(0.0);
            Row {
                label: label.to_owned(),
                meters: size,
                operation: format!("{name} ({} lists, at most {most:.0} RCU)", calls.len()),
                first_ms: None,
                first_rcu: None,
                first_cpu_ms: None,
                p50_ms: percentile(&latencies, 0.5),
                p99_ms: percentile(&latencies, 0.99),
                rcu: mean(rcus.iter().copied()),
                wcu: None,
                cpu_ms: 0.0,
                peak_rss_mib: peak as f64 / 1024.0,
                statuses: statuses(&calls.iter().collect::<Vec<_>>()),
            }
        })
        .collect();
    rows.push(Row {
        label: label.to_owned(),
        meters: size,
        operation: format!("under writes: the {} updates", write_units.len()),
        wcu: mean(write_units.iter().copied()),
        first_rcu: None,
        ..Row::default()
    });
    rows
}

#[derive(Debug, Default, serde::Serialize)]
struct Row {
    label: String,
    meters: usize,
    operation: String,
    first_ms: Option<f64>,
    first_rcu: Option<f64>,
    first_cpu_ms: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    rcu: Option<f64>,
    wcu: Option<f64>,
    cpu_ms: f64,
    peak_rss_mib: f64,
    statuses: String,
}

fn percentile(samples: &[Duration], p: f64) -> f64 {
    measure::ms(measure::percentile(samples, p))
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let values: Vec<f64> = values.collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Runs `event` once in a fresh process (`first`), then `warm` more times in it.
async fn measure(
    binary: &Path,
    config: &[(String, String)],
    warm: usize,
    logs: bool,
    event: impl Fn(usize) -> String,
) -> (Call, Vec<Call>, Duration, Duration, u64) {
    let mut runtime = RuntimeApi::start().await;
    let function = Running::start(binary, &runtime, config);
    runtime
        .next_poll(TIMEOUT)
        .await
        .expect("the function polls");
    let before_first = function.cpu();
    let first = call(&mut runtime, &function, event(0), logs).await;
    let before_warm = function.cpu();
    let mut calls = Vec::new();
    for n in 1..=warm {
        calls.push(call(&mut runtime, &function, event(n), logs).await);
    }
    let after = function.cpu();
    let peak = function.peak_rss_kib();
    (
        first,
        calls,
        before_warm - before_first,
        after - before_warm,
        peak,
    )
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

/// What the binaries from before account heads spent, replayed: every list read the whole partition.
async fn legacy_list_rcu(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    account: AccountId,
) -> f64 {
    let mut units = 0.0;
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("account_id = :a")
            .expression_attribute_values(":a", AttributeValue::S(account.to_string()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .expect("query");
        units += page
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .unwrap_or(0.0);
        start = page.last_evaluated_key;
        if start.is_none() {
            return units;
        }
    }
}

/// The single-item calls of the binaries from before: get (a consistent read), create (the counter, then
/// the meter), update and delete (one conditional write each): (read, write) units per operation.
async fn legacy_item_capacity(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    meter: &Meter,
) -> HashMap<&'static str, (f64, f64)> {
    let units = |c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>| {
        c.and_then(|c| c.capacity_units()).unwrap_or(0.0)
    };
    let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(meter).expect("an item");
    let mut item: HashMap<String, AttributeValue> =
        item.into_iter().filter(|(_, v)| !v.is_null()).collect();
    item.insert(
        "account_id".into(),
        AttributeValue::S("legacy-replay".into()),
    );
    item.insert("version".into(), AttributeValue::N("1".into()));
    let key = HashMap::from([
        (
            "account_id".to_owned(),
            AttributeValue::S("legacy-replay".into()),
        ),
        ("id".to_owned(), AttributeValue::N(meter.id.to_string())),
    ]);
    let counter = client
        .update_item()
        .table_name(table)
        .key("account_id", AttributeValue::S("#legacy-counter".into()))
        .key("id", AttributeValue::N("0".into()))
        .update_expression("ADD last_id :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("counter");
    let put = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("put");
    let get = client
        .get_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("get");
    let update = client
        .update_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .update_expression("SET #l = :l, updated_at = :u, last_write = :w ADD version :one")
        .condition_expression("attribute_exists(account_id)")
        .expression_attribute_names("#l", "location")
        .expression_attribute_values(
            ":l",
            AttributeValue::S("Building 1, floor 2, riser 3".into()),
        )
        .expression_attribute_values(":u", AttributeValue::S("2026-11-26T10:00:00.000Z".into()))
        .expression_attribute_values(":w", AttributeValue::S(uuid::Uuid::new_v4().to_string()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("update");
    let delete = client
        .delete_item()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression("attribute_exists(account_id)")
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("delete");
    HashMap::from([
        ("get", (units(get.consumed_capacity()), 0.0)),
        (
            "create",
            (
                0.0,
                units(counter.consumed_capacity()) + units(put.consumed_capacity()),
            ),
        ),
        ("update", (0.0, units(update.consumed_capacity()))),
        ("delete", (0.0, units(delete.consumed_capacity()))),
    ])
}

#[tokio::main]
async fn main() {
    let options = options();
    let endpoint =
        std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT must point at DynamoDB Local");
    let mut rows = Vec::new();
    for &size in &options.sizes {
        let table = format!("meters-scale-{}", uuid::Uuid::new_v4().simple());
        let dynamodb = DynamoDbConfig {
            table_name: table.clone(),
            endpoint: Some(endpoint.clone()),
            extra_roots: None,
        };
        let client = meters::store::dynamodb::dynamodb_client(&dynamodb).await;
        let store = DynamoDbStore::new(client.clone(), table.clone());
        store.create_table_if_missing().await.expect("the table");
        let account = AccountId::from(uuid::Uuid::new_v4());
        let seeding = Instant::now();
        let meters: Vec<Meter> = (0..size)
            .map(|n| realistic(n as i64 + 1, account, n))
            .collect();
        store.import(meters).await.expect("seeded");
        if options.legacy {
            client
                .delete_item()
                .table_name(&table)
                .key("account_id", AttributeValue::S(account.to_string()))
                .key("id", AttributeValue::N("0".into()))
                .send()
                .await
                .expect("no head");
        }
        eprintln!(
            "scale-bench: {size} meters seeded in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        let config = meters_testkit::dynamodb::function_environment(&dynamodb, SECRET);
        let token = token_for(SECRET, &[account]);
        if let Some(seconds) = options.under_writes {
            let binary = options.bin_dir.join("list-meters");
            rows.extend(
                under_writes(
                    &binary,
                    &config,
                    &store,
                    account,
                    &token,
                    size,
                    seconds,
                    &options.label,
                )
                .await,
            );
            let _ = client.delete_table().table_name(&table).send().await;
            continue;
        }
        let logs = !options.legacy;
        let legacy_list = if options.legacy {
            Some(legacy_list_rcu(&client, &table, account).await)
        } else {
            None
        };
        let legacy_items = if options.legacy {
            Some(legacy_item_capacity(&client, &table, &realistic(i64::MAX / 2, account, 3)).await)
        } else {
            None
        };
        let list_event = |query: &str| {
            HttpEvent::new("GET", "/api/v1/meters")
                .bearer(&token)
                .query(&format!("account_id={account}&{query}"))
                .http_api()
                .to_string()
        };
        let last_page = size.div_ceil(20);
        let variants: Vec<(String, String)> = vec![
            ("list: default, page 1".into(), "limit=20".into()),
            ("list: sortBy=name asc".into(), "sortBy=name".into()),
            (
                "list: sortBy=name desc".into(),
                "sortBy=name&sortOrder=desc".into(),
            ),
            (
                "list: sortBy=created_at asc".into(),
                "sortBy=created_at".into(),
            ),
            (
                "list: sortBy=created_at desc".into(),
                "sortBy=created_at&sortOrder=desc".into(),
            ),
            ("list: last page".into(), format!("page={last_page}")),
            (
                "list: sortBy=location (no index)".into(),
                "sortBy=location&sortOrder=desc".into(),
            ),
            ("list: query, few match".into(), "query=needle".into()),
            (
                "list: query, none match".into(),
                "query=no-such-meter".into(),
            ),
        ];
        // Lists from before read the whole account whatever they ask, and pass the deadline at 50,000:
        // three variants and a few repeats show it.
        let (variants, list_warm) = if options.legacy {
            (
                vec![
                    variants[0].clone(),
                    variants[1].clone(),
                    variants[7].clone(),
                ],
                if size > 5_000 { 2 } else { 10 },
            )
        } else {
            (variants, options.warm)
        };
        let list_binary = options.bin_dir.join("list-meters");
        for (name, query) in &variants {
            let (first, calls, first_cpu, warm_cpu, peak) =
                measure(&list_binary, &config, list_warm, logs, |_| {
                    list_event(query)
                })
                .await;
            let latencies: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
            let all: Vec<&Call> = std::iter::once(&first).chain(calls.iter()).collect();
            let row = Row {
                label: options.label.clone(),
                meters: size,
                operation: name.clone(),
                first_ms: Some(first.latency.as_secs_f64() * 1e3),
                first_rcu: legacy_list.or(first.capacity.map(|c| c.0)),
                first_cpu_ms: Some(first_cpu.as_secs_f64() * 1e3),
                p50_ms: percentile(&latencies, 0.5),
                p99_ms: percentile(&latencies, 0.99),
                rcu: legacy_list.or(mean(calls.iter().filter_map(|c| c.capacity.map(|c| c.0)))),
                wcu: None,
                cpu_ms: warm_cpu.as_secs_f64() * 1e3 / calls.len() as f64,
                peak_rss_mib: peak as f64 / 1024.0,
                statuses: statuses(&all),
            };
            eprintln!("scale-bench: {row:?}");
            rows.push(row);
        }
        // Single meters: get and update the first, create new ones, delete the last ones of the account.
        let item = |method: &str, id: usize, body: Option<Value>| {
            let mut request =
                HttpEvent::new(method, &format!("/api/v1/meters/{id}")).bearer(&token);
            request = match body {
                Some(body) => request.json_body(&body),
                None => request.query(&format!("account_id={account}")),
            };
            request.http_api().to_string()
        };
        let operations: Vec<(&str, &str, EventFn<'_>)> = vec![
            ("get", "get-meter", Box::new(|_| item("GET", 1, None))),
            (
                "create",
                "create-meter",
                Box::new(|n| {
                    let body = json!({"account_id": account.to_string(), "name": format!("New meter {n}"), "serial_number": format!("NEW-{n:06}"), "location": "Building 2, floor 1", "description": "Added by the benchmark to an account of this size."});
                    HttpEvent::new("POST", "/api/v1/meters")
                        .bearer(&token)
                        .json_body(&body)
                        .http_api()
                        .to_string()
                }),
            ),
            (
                "update",
                "update-meter",
                Box::new(|n| {
                    item(
                        "PUT",
                        2,
                        Some(
                            json!({"account_id": account.to_string(), "location": format!("Building 1, floor {n}")}),
                        ),
                    )
                }),
            ),
            (
                "delete",
                "delete-meter",
                Box::new(move |n| item("DELETE", size - n, None)),
            ),
        ];
        for (name, binary, event) in &operations {
            let (first, calls, _, warm_cpu, peak) = measure(
                &options.bin_dir.join(binary),
                &config,
                options.warm,
                logs,
                event,
            )
            .await;
            let latencies: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
            let all: Vec<&Call> = std::iter::once(&first).chain(calls.iter()).collect();
            let replayed = legacy_items.as_ref().map(|items| items[name]);
            let row = Row {
                label: options.label.clone(),
                meters: size,
                operation: (*name).to_owned(),
                p50_ms: percentile(&latencies, 0.5),
                p99_ms: percentile(&latencies, 0.99),
                rcu: replayed
                    .map(|c| c.0)
                    .or(mean(calls.iter().filter_map(|c| c.capacity.map(|c| c.0)))),
                wcu: replayed
                    .map(|c| c.1)
                    .or(mean(calls.iter().filter_map(|c| c.capacity.map(|c| c.1)))),
                cpu_ms: warm_cpu.as_secs_f64() * 1e3 / calls.len() as f64,
                peak_rss_mib: peak as f64 / 1024.0,
                statuses: statuses(&all),
                ..Row::default()
            };
            eprintln!("scale-bench: {row:?}");
            rows.push(row);
        }
        let _ = client.delete_table().table_name(&table).send().await;
    }
    println!(
        "| label | meters | operation | first call ms | first call RCU | first call CPU ms | warm p50 ms | warm p99 ms | RCU/call | WCU/call | CPU/call ms | peak RSS MiB | statuses |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let figure = |value: Option<f64>, digits: usize| {
        value.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
    };
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {:.2} | {:.1} | {} |",
            row.label,
            row.meters,
            row.operation,
            figure(row.first_ms, 1),
            figure(row.first_rcu, 1),
            figure(row.first_cpu_ms, 0),
            row.p50_ms,
            row.p99_ms,
            figure(row.rcu, 1),
            figure(row.wcu, 1),
            row.cpu_ms,
            row.peak_rss_mib,
            row.statuses
        );
    }
    if let Some(path) = options.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows).expect("json")).expect("written");
    }
}
