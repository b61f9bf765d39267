//! `meters-local` under writes: a paced stream of updates to one big account while searchers list it
//! as fast as they are answered, then idle. Prints what each side got and the server's memory.
//!
//! Usage: local-load --base http://127.0.0.1:PORT --account UUID --token JWT --meters 50000 --pid PID
//!        [--writes 50] [--writers 4] [--searchers 4] [--seconds 20] [--idle 30] [--label after]
//!        [--json FILE]
//! Each update renames a random meter of ids 1..=meters (the ids a fresh server's seed gives); each search
//! is `query=needle`, alternating with `query=needle&sortBy=location&meter_type=GAS`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use meters_testkit::measure::{ms, peak_rss_kib, percentile, rss_kib};
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Debug)]
struct Options {
    base: String,
    account: String,
    token: String,
    meters: u64,
    pid: u32,
    writes: u64,
    writers: usize,
    searchers: usize,
    seconds: u64,
    idle: u64,
    label: String,
    json: Option<PathBuf>,
}

fn options() -> Options {
    let mut options = Options {
        base: String::new(),
        account: String::new(),
        token: String::new(),
        meters: 50_000,
        pid: 0,
        writes: 50,
        writers: 4,
        searchers: 4,
        seconds: 20,
        idle: 30,
        label: "after".into(),
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--base" => options.base = value(),
            "--account" => options.account = value(),
            "--token" => options.token = value(),
            "--meters" => options.meters = value().parse().expect("--meters N"),
            "--pid" => options.pid = value().parse().expect("--pid N"),
            "--writes" => options.writes = value().parse().expect("--writes N"),
            "--writers" => options.writers = value().parse().expect("--writers N"),
            "--searchers" => options.searchers = value().parse().expect("--searchers N"),
            "--seconds" => options.seconds = value().parse().expect("--seconds N"),
            "--idle" => options.idle = value().parse().expect("--idle N"),
            "--label" => options.label = value(),
            "--json" => options.json = Some(PathBuf::from(value())),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        !options.base.is_empty() && options.pid > 0,
        "--base and --pid are required"
    );
    options
}

#[tokio::main]
async fn main() {
    let options = Arc::new(options());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client");
    let collection = format!("{}/api/v1/meters", options.base);
    // Warm: the first list loads the account.
    let warm = client
        .get(format!(
            "{collection}?account_id={}&query=needle",
            options.account
        ))
        .bearer_auth(&options.token)
        .send()
        .await
        .expect("the server answers");
    assert!(warm.status().is_success(), "{:?}", warm.text().await);
    let rss_before = rss_kib(options.pid);

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    // Paced: one tick per write, shared by the writers, so a slow write lets another writer take the next.
    let ticks = Arc::new(Mutex::new(tokio::time::interval(Duration::from_micros(
        1_000_000 / options.writes.max(1),
    ))));
    let mut writers = Vec::new();
    for writer in 0..options.writers {
        let (client, options, stop, ticks, collection) = (
            client.clone(),
            Arc::clone(&options),
            Arc::clone(&stop),
            Arc::clone(&ticks),
            collection.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = writer as u64;
            while !stop.load(Ordering::Relaxed) {
                ticks.lock().await.tick().await;
                n += options.writers as u64;
                let id = 1 + (n * 7919) % options.meters;
                let begun = Instant::now();
                let answer = client
                    .put(format!("{collection}/{id}"))
                    .bearer_auth(&options.token)
                    .json(&json!({"account_id": options.account, "name": format!("Renamed meter {n}")}))
                    .send()
                    .await;
                if matches!(answer, Ok(ref answer) if answer.status().is_success()) {
                    latencies.push(begun.elapsed());
                }
            }
            latencies
        }));
    }
    let mut searchers = Vec::new();
    for searcher in 0..options.searchers {
        let (client, options, stop, collection) = (
            client.clone(),
            Arc::clone(&options),
            Arc::clone(&stop),
            collection.clone(),
        );
        searchers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = searcher;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let query = if n % 2 == 0 {
                    "query=needle"
                } else {
                    "query=needle&sortBy=location&meter_type=GAS"
                };
                let begun = Instant::now();
                let answer = client
                    .get(format!(
                        "{collection}?account_id={}&{query}",
                        options.account
                    ))
                    .bearer_auth(&options.token)
                    .send()
                    .await;
                if let Ok(answer) = answer
                    && answer.status().is_success()
                    && answer.bytes().await.is_ok()
                {
                    latencies.push(begun.elapsed());
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut writes = Vec::new();
    for writer in writers {
        writes.extend(writer.await.expect("a writer"));
    }
    let mut searches = Vec::new();
    for searcher in searchers {
        searches.extend(searcher.await.expect("a searcher"));
    }
    let peak = peak_rss_kib(options.pid);
    let rss_loaded = rss_kib(options.pid);
    tokio::time::sleep(Duration::from_secs(options.idle)).await;
    let rss_idle = rss_kib(options.pid);
    let report = json!({
        "label": options.label,
        "meters": options.meters,
        "target_writes_per_s": options.writes,
        "writes_per_s": writes.len() as f64 / elapsed.as_secs_f64(),
        "write_p50_ms": ms(percentile(&writes, 0.5)),
        "write_p99_ms": ms(percentile(&writes, 0.99)),
        "searches": searches.len(),
        "search_p50_ms": ms(percentile(&searches, 0.5)),
        "search_p99_ms": ms(percentile(&searches, 0.99)),
        "rss_before_mib": rss_before as f64 / 1024.0,
        "rss_peak_mib": peak as f64 / 1024.0,
        "rss_loaded_mib": rss_loaded as f64 / 1024.0,
        "rss_idle_mib": rss_idle as f64 / 1024.0,
        "idle_s": options.idle,
    });
    println!(
        "| {} | {} | {:.1} | {:.1} / {:.1} | {} | {:.1} / {:.1} | {:.0} | {:.0} | {:.0} after {} s |",
        options.label,
        options.meters,
        report["writes_per_s"].as_f64().unwrap_or(0.0),
        report["write_p50_ms"].as_f64().unwrap_or(0.0),
        report["write_p99_ms"].as_f64().unwrap_or(0.0),
        searches.len(),
        report["search_p50_ms"].as_f64().unwrap_or(0.0),
        report["search_p99_ms"].as_f64().unwrap_or(0.0),
        report["rss_before_mib"].as_f64().unwrap_or(0.0),
        report["rss_peak_mib"].as_f64().unwrap_or(0.0),
        report["rss_idle_mib"].as_f64().unwrap_or(0.0),
        options.idle,
    );
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).expect("json"))
            .expect("written");
    }
}
