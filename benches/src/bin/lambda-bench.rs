//! Cold start, warm latency and peak memory of each function binary, driven through a local Lambda Runtime
//! API against DynamoDB Local, beside a hello-world floor and a bare SDK call of the same operation.
//!
//! Usage: lambda-bench BIN_DIR [--runs 10] [--warm 1000] [--tls] [--cpu-share PERCENT] [--json FILE]
//! (needs DYNAMODB_ENDPOINT)
//! Prints a Markdown table; `--json` also writes the figures for scripts/bench's report.
//!
//! `--tls` puts DynamoDB Local behind a TLS terminator with a certificate authority made for the run, which
//! the functions (and the bare SDK client) trust through `DYNAMODB_CA_BUNDLE`: every cold start's first
//! invocation pays a TLS handshake, as on AWS. `--cpu-share 7.2` runs every function process (and the floor)
//! in a cgroup v1 CPU quota of that percentage of one core, Lambda's share at 128 MB; where the cgroup
//! cannot be made, the run says so and goes on at full CPU. `--native-trust` is for binaries that trust the
//! system's store (before the compiled-in roots): with `--tls` they are given the system's certificates plus
//! the run's CA through SSL_CERT_FILE and SSL_CERT_DIR, so they load as much as by default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use meters::domain::meter::{AccountId, MeterId};
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::{DynamoDbStore, MeterStore};
use meters_testkit::function::{Function, Output};
use meters_testkit::measure::{ms, peak_rss_kib, percentile};
use meters_testkit::meters::{new_meter, tester};
use meters_testkit::runtime_api::{Outcome, RuntimeApi};
use meters_testkit::tokens::token_for;
use meters_testkit::{HttpEvent, TEST_SECRET as SECRET};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

struct Options {
    bin_dir: PathBuf,
    runs: usize,
    warm: usize,
    tls: bool,
    native_trust: bool,
    cpu_share: Option<f64>,
    json: Option<PathBuf>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        bin_dir: PathBuf::from("target/release"),
        runs: 10,
        warm: 1000,
        tls: false,
        native_trust: false,
        cpu_share: None,
        json: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => options.runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--warm" => options.warm = args.next().and_then(|n| n.parse().ok()).expect("--warm N"),
            "--json" => options.json = args.next().map(PathBuf::from),
            "--tls" => options.tls = true,
            "--native-trust" => options.native_trust = true,
            "--cpu-share" => {
                options.cpu_share = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .expect("--cpu-share PERCENT"),
                )
            }
            dir => options.bin_dir = PathBuf::from(dir),
        }
    }
    options
}

/// The cgroup v1 CPU controller's group every function process joins, when `--cpu-share` made one.
static CPU_GROUP: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// A cgroup v1 CPU group with a quota of `percent` of one core; `None` (said on stderr) where the controller
/// is missing or not writable.
fn cpu_group(percent: f64) -> Option<PathBuf> {
    let group = PathBuf::from(format!(
        "/sys/fs/cgroup/cpu/meters-bench-{}",
        std::process::id()
    ));
    let made = std::fs::create_dir_all(&group)
        .and_then(|_| std::fs::write(group.join("cpu.cfs_period_us"), "100000"))
        .and_then(|_| {
            std::fs::write(
                group.join("cpu.cfs_quota_us"),
                format!("{}", (percent * 1000.0).round() as u64),
            )
        });
    match made {
        Ok(()) => Some(group),
        Err(error) => {
            eprintln!("lambda-bench: no cgroup CPU quota here ({error}); running at full CPU");
            None
        }
    }
}

/// The system's bundle and certificate folder, with the run's CA added to the bundle.
fn native_trust(proxy: &meters_testkit::tls_proxy::TlsProxy) -> Vec<(String, String)> {
    let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.extend(std::fs::read(proxy.ca_file()).expect("the CA file"));
    let file = std::env::temp_dir().join(format!("meters-bench-bundle-{}.pem", std::process::id()));
    std::fs::write(&file, bundle).expect("the bundle is written");
    vec![
        ("SSL_CERT_FILE".to_owned(), file.display().to_string()),
        ("SSL_CERT_DIR".to_owned(), "/etc/ssl/certs".to_owned()),
    ]
}

/// The environment Lambda gives a function, plus the function's own configuration; in the CPU group if any.
fn spawn(binary: &Path, runtime: &RuntimeApi, config: &[(String, String)]) -> Function {
    let mut env = vec![("AWS_LAMBDA_LOG_LEVEL".to_owned(), "INFO".to_owned())];
    env.extend_from_slice(config);
    let function = Function::start_with(binary, runtime, &env, Output::Discarded);
    if let Some(Some(group)) = CPU_GROUP.get() {
        std::fs::write(group.join("tasks"), function.id().to_string())
            .expect("the process joins the group");
    }
    function
}

/// Waits for the answer to the invocation just queued; panics on anything but the expected status.
async fn answer(runtime: &mut RuntimeApi, expected: u16) -> Instant {
    match runtime.timed_outcome(TIMEOUT).await {
        Some((at, Outcome::Response { body, .. })) => {
            let status = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|r| r["statusCode"].as_u64());
            assert_eq!(
                status,
                Some(u64::from(expected)),
                "unexpected response: {body}"
            );
            at
        }
        other => panic!("the function did not answer: {other:?}"),
    }
}

/// How long the machine is left alone before each cold start.
const SETTLE: Duration = Duration::from_millis(50);

/// Waits (at most 20 s) until the machine's CPUs are less than 10 % busy over a quarter of a second. Seeding
/// the table leaves DynamoDB Local's JVM compiling and collecting for seconds afterwards, on the same two
/// cores the cold starts are measured on; on Lambda, init shares its CPU with nothing. Linux only (it reads
/// /proc/stat); elsewhere it returns at once.
async fn wait_for_quiet() {
    fn busy_and_total() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let times: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            // user, nice, system, idle, iowait, irq, softirq, steal; the guest times after them are
            // already counted in user and nice.
            .take(8)
            .filter_map(|n| n.parse().ok())
            .collect();
        let idle = times.get(3)? + times.get(4).copied().unwrap_or(0);
        let total: u64 = times.iter().sum();
        Some((total - idle, total))
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let Some((busy_before, total_before)) = busy_and_total() else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some((busy_after, total_after)) = busy_and_total() else {
            return;
        };
        let share = (busy_after - busy_before) as f64 / (total_after - total_before).max(1) as f64;
        if share < 0.10 {
            return;
        }
    }
    eprintln!("lambda-bench: the machine did not go quiet within 20 s; measuring anyway");
}

/// Process start to first poll (the billed init), then the first invocation's latency.
async fn cold_start(
    binary: &Path,
    config: &[(String, String)],
    event: String,
    expected: u16,
) -> (Duration, Duration) {
    // A quiet start: what the previous start left running (its process's teardown, DynamoDB Local's work on
    // its request) would otherwise share this 2-core machine with this process's init.
    tokio::time::sleep(SETTLE).await;
    let mut runtime = RuntimeApi::start().await;
    let started = Instant::now();
    let child = spawn(binary, &runtime, config);
    let polled = runtime
        .next_poll(TIMEOUT)
        .await
        .expect("the function polls for an event");
    let queued = Instant::now();
    runtime.invoke(event);
    let answered = answer(&mut runtime, expected).await;
    drop(child);
    (polled - started, answered - queued)
}

/// Latencies of `count` invocations in one warm process, and its peak resident memory afterwards (KiB).
async fn warm(
    binary: &Path,
    config: &[(String, String)],
    count: usize,
    event: impl Fn(usize) -> String,
    expected: u16,
) -> (Vec<Duration>, u64) {
    let mut runtime = RuntimeApi::start().await;
    let child = spawn(binary, &runtime, config);
    let mut latencies = Vec::with_capacity(count);
    for n in 0..=count {
        let queued = Instant::now();
        runtime.invoke(event(n));
        let answered = answer(&mut runtime, expected).await;
        if n > 0 {
            latencies.push(answered - queued);
        }
    }
    let peak_kib = peak_rss_kib(child.id());
    drop(child);
    (latencies, peak_kib)
}

/// `count` latencies of one bare SDK operation, after a warm-up.
async fn bare<F, Fut>(count: usize, call: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut latencies = Vec::with_capacity(count);
    for n in 0..=count {
        let started = Instant::now();
        call(n).await;
        if n > 0 {
            latencies.push(started.elapsed());
        }
    }
    latencies
}

#[tokio::main]
async fn main() {
    let options = options();
    let plain_endpoint =
        std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT must point at DynamoDB Local");
    let tls = match options.tls {
        true => Some(meters_testkit::tls_proxy::TlsProxy::start(&plain_endpoint).await),
        false => None,
    };
    let endpoint = tls
        .as_ref()
        .map_or(plain_endpoint.clone(), |proxy| proxy.endpoint.clone());
    CPU_GROUP.get_or_init(|| options.cpu_share.and_then(cpu_group));
    let table = format!("meters-bench-{}", uuid::Uuid::new_v4().simple());
    let dynamodb = DynamoDbConfig {
        table_name: table.clone(),
        endpoint: Some(endpoint.clone()),
        extra_roots: tls
            .as_ref()
            .map(|proxy| std::fs::read(proxy.ca_file()).expect("the CA file")),
    };
    let client: Client = meters::store::dynamodb::dynamodb_client(&dynamodb).await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    store
        .create_table_if_missing()
        .await
        .expect("the benchmark table");

    let account = AccountId::from(uuid::Uuid::new_v4());
    // The meters to delete live in their own account, so they never swell the list being measured.
    let pool_account = AccountId::from(uuid::Uuid::new_v4());
    let token = token_for(SECRET, &[account, pool_account]);
    // 20 meters to list and read; a pool to delete, one per cold run and warm invocation, for function and SDK.
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            store
                .create(&account, new_meter(&format!("listed-{n:02}")), &tester())
                .await
                .expect("seed")
                .id,
        );
    }
    let pool_size = 2 * (options.runs + options.warm + 1) + options.warm + 1;
    let mut pool: Vec<MeterId> = Vec::with_capacity(pool_size);
    let actor = tester();
    for chunk in (0..pool_size).collect::<Vec<_>>().chunks(25) {
        let created = futures::future::join_all(
            chunk
                .iter()
                .map(|n| store.create(&pool_account, new_meter(&format!("pool-{n}")), &actor)),
        )
        .await;
        pool.extend(
            created
                .into_iter()
                .map(|meter| meter.expect("pool meter").id),
        );
    }
    let config: Vec<(String, String)> =
        meters_testkit::dynamodb::function_environment(&dynamodb, SECRET)
            .into_iter()
            .chain(tls.as_ref().map(|proxy| {
                (
                    "DYNAMODB_CA_BUNDLE".to_owned(),
                    proxy.ca_file().display().to_string(),
                )
            }))
            .chain(
                tls.as_ref()
                    .filter(|_| options.native_trust)
                    .map(native_trust)
                    .into_iter()
                    .flatten(),
            )
            .collect();

    let first = ids[0];
    let list_query = format!("account_id={account}&limit=20");
    let get_query = format!("account_id={account}");
    let pool_query = format!("account_id={pool_account}");
    let pool_cursor = std::sync::atomic::AtomicUsize::new(0);
    let next_pooled = || pool[pool_cursor.fetch_add(1, std::sync::atomic::Ordering::Relaxed)];
    type EventFn<'a> = Box<dyn Fn(usize) -> String + 'a>;
    let request = |method: &str, path: &str| HttpEvent::new(method, path).bearer(&token);
    let event = |request: HttpEvent| request.http_api().to_string();
    let functions: Vec<(&str, u16, EventFn<'_>)> = vec![
        (
            "list-meters",
            200,
            Box::new(|_| event(request("GET", "/api/v1/meters").query(&list_query))),
        ),
        (
            "create-meter",
            201,
            Box::new(|n| {
                let body = json!({"account_id": account.to_string(), "name": format!("bench {n}"), "serial_number": format!("B-{n}")});
                event(request("POST", "/api/v1/meters").json_body(&body))
            }),
        ),
        (
            "get-meter",
            200,
            Box::new(|_| {
                event(request("GET", &format!("/api/v1/meters/{first}")).query(&get_query))
            }),
        ),
        (
            "update-meter",
            200,
            Box::new(|n| {
                let body =
                    json!({"account_id": account.to_string(), "location": format!("room {n}")});
                event(request("PUT", &format!("/api/v1/meters/{first}")).json_body(&body))
            }),
        ),
        (
            "delete-meter",
            204,
            Box::new(|_| {
                let path = format!("/api/v1/meters/{}", next_pooled());
                event(request("DELETE", &path).query(&pool_query))
            }),
        ),
    ];

    // Cold starts in rounds of the floor then each function, so that a slow minute of this shared machine
    // lands on the floor and the functions alike rather than on whichever was measured in it.
    wait_for_quiet().await;
    let floor = options.bin_dir.join("lambda-floor");
    let mut floor_inits = Vec::new();
    let mut cold: Vec<(Vec<Duration>, Vec<Duration>)> = vec![Default::default(); functions.len()];
    for n in 0..options.runs {
        floor_inits.push(cold_start(&floor, &[], "{}".into(), 200).await.0);
        for ((name, expected, make_event), (inits, firsts)) in functions.iter().zip(&mut cold) {
            let binary = options.bin_dir.join(name);
            let (init, first) = cold_start(&binary, &config, make_event(n), *expected).await;
            inits.push(init);
            firsts.push(first);
        }
    }
    let floor_init = percentile(&floor_inits, 0.5);

    // The bare SDK operation each function's store call makes, timed from this process.
    let key = |owner: AccountId, id: MeterId| {
        HashMap::from([
            (
                "account_id".to_owned(),
                AttributeValue::S(owner.to_string()),
            ),
            ("id".to_owned(), AttributeValue::N(id.to_string())),
        ])
    };
    let counter_key = HashMap::from([
        (
            "account_id".to_owned(),
            AttributeValue::S("#bench-counter".into()),
        ),
        ("id".to_owned(), AttributeValue::N("0".into())),
    ]);
    let mut baselines: HashMap<&str, Vec<Duration>> = HashMap::new();
    baselines.insert(
        "list-meters",
        bare(options.warm, |_| async {
            client
                .query()
                .table_name(&table)
                .key_condition_expression("account_id = :a")
                .expression_attribute_values(":a", AttributeValue::S(account.to_string()))
                .consistent_read(true)
                .send()
                .await
                .expect("query");
        })
        .await,
    );
    baselines.insert(
        "create-meter",
        bare(options.warm, |n| {
            let (client, table, counter_key) = (&client, &table, counter_key.clone());
            async move {
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(counter_key))
                    .update_expression("ADD last_id :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .send()
                    .await
                    .expect("counter");
                let item = HashMap::from([
                    (
                        "account_id".to_owned(),
                        AttributeValue::S(format!("bench-{}", account)),
                    ),
                    ("id".to_owned(), AttributeValue::N(n.to_string())),
                    ("name".to_owned(), AttributeValue::S(format!("bare {n}"))),
                ]);
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(account_id)")
                    .send()
                    .await
                    .expect("put");
            }
        })
        .await,
    );
    baselines.insert(
        "get-meter",
        bare(options.warm, |_| async {
            client
                .get_item()
                .table_name(&table)
                .set_key(Some(key(account, first)))
                .consistent_read(true)
                .send()
                .await
                .expect("get");
        })
        .await,
    );
    baselines.insert(
        "update-meter",
        bare(options.warm, |n| {
            let (client, table, key) = (&client, &table, key(account, first));
            async move {
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(key))
                    .update_expression("SET #l = :l")
                    .condition_expression("attribute_exists(account_id)")
                    .expression_attribute_names("#l", "location")
                    .expression_attribute_values(":l", AttributeValue::S(format!("bare {n}")))
                    .send()
                    .await
                    .expect("update");
            }
        })
        .await,
    );
    baselines.insert(
        "delete-meter",
        bare(options.warm, |_| {
            let (client, table, key) = (&client, &table, key(pool_account, next_pooled()));
            async move {
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key))
                    .condition_expression("attribute_exists(account_id)")
                    .send()
                    .await
                    .expect("delete");
            }
        })
        .await,
    );

    let mut report = Vec::new();
    println!(
        "| function | init p50 (ms) | init / floor | first invocation p50 (ms) | warm p50 (ms) | warm p99 (ms) | bare SDK p50 (ms) | warm / bare | peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| hello-world floor | {:.2} | 1.00 | | | | | | |",
        ms(floor_init)
    );
    for ((name, expected, make_event), (inits, firsts)) in functions.iter().zip(&cold) {
        let binary = options.bin_dir.join(name);
        let (latencies, peak_kib) =
            warm(&binary, &config, options.warm, make_event, *expected).await;
        let (init, first, p50, p99) = (
            percentile(inits, 0.5),
            percentile(firsts, 0.5),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
        );
        let bare_p50 = percentile(&baselines[name], 0.5);
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.3} | {:.2} | {:.1} |",
            ms(init),
            init.as_secs_f64() / floor_init.as_secs_f64(),
            ms(first),
            ms(p50),
            ms(p99),
            ms(bare_p50),
            p50.as_secs_f64() / bare_p50.as_secs_f64(),
            peak_kib as f64 / 1024.0
        );
        report.push(json!({
            "function": name, "init_ms": ms(init), "init_ratio": init.as_secs_f64() / floor_init.as_secs_f64(),
            "first_invocation_ms": ms(first), "warm_p50_ms": ms(p50), "warm_p99_ms": ms(p99),
            "bare_sdk_p50_ms": ms(bare_p50), "warm_to_bare": p50.as_secs_f64() / bare_p50.as_secs_f64(),
            "peak_rss_mib": peak_kib as f64 / 1024.0, "cold_runs": options.runs, "warm_invocations": options.warm
        }));
    }
    if let Some(Some(group)) = CPU_GROUP.get() {
        let _ = std::fs::remove_dir(group);
    }
    if let Some(path) = options.json {
        let cpu_share = CPU_GROUP.get().cloned().flatten().and(options.cpu_share);
        let document = json!({"floor_init_ms": ms(floor_init), "functions": report,
            "tls": options.tls, "cpu_share_percent": cpu_share});
        std::fs::write(path, serde_json::to_string_pretty(&document).expect("json"))
            .expect("the report is written");
    }
}
