//! The one request line: every request, whoever answered it (a handler, or the local server refusing it
//! before any handler), is logged here once, in Powertools' keys, with its EMF metrics beside it.

use serde_json::{Value, json};

use super::facts::{Facts, current};
use super::process::process;

/// One request, as its log line and metrics tell it.
#[derive(Debug, Clone)]
pub struct Served<'a> {
    pub route: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    /// A stable name of the failure, when the status is not 2xx.
    pub error_code: Option<&'static str>,
    /// What went wrong inside, for 5xx: logged, never shown to the caller.
    pub error_detail: Option<String>,
}

/// Writes the request's log line (ERROR for 5xx, so that the log-based alarms see handled failures; INFO
/// otherwise) and its metrics, with what the request gathered: call it while the request is being served
/// (`within_request`), so that the line carries the invocation's keys.
pub fn record(served: &Served<'_>) {
    let facts = current();
    let (account_id, capacity) = (facts.account_id.as_deref(), facts.capacity);
    macro_rules! request_line {
        ($level:ident) => {
            tracing::$level!(
                route = served.route,
                method = served.method,
                status = served.status,
                latency_ms = served.latency_ms,
                account_id,
                sub = facts.sub.as_deref(),
                client_id = facts.client_id.as_deref(),
                error_code = served.error_code,
                error = served.error_detail.as_deref(),
                consumed_rcu = capacity.read,
                consumed_wcu = capacity.write,
                "request"
            )
        };
    }
    if served.status >= 500 {
        request_line!(error);
    } else {
        request_line!(info);
    }
    if let Some(namespace) = &process().metrics_namespace {
        println!(
            "{}",
            metrics_document(namespace, served, &facts, now_millis())
        );
    }
}

/// The request's metrics as one EMF document: `Requests` and `Latency` (and the rest) by service, route
/// and status class, and by service alone; and, in Lambda, `ServerErrors` (a 5xx answered) by function and
/// version, which a deploy's canary alarm watches for the new version alone. It has no `level`: Lambda's
/// own log-level filter (the function's `ApplicationLogLevel`) would count it as INFO, so verbosity is
/// set with `RUST_LOG` instead, which filters the log lines and never these documents.
pub fn metrics_document(
    namespace: &str,
    served: &Served<'_>,
    facts: &Facts,
    timestamp_ms: u64,
) -> Value {
    let flag = |set: bool| u8::from(set);
    let process = process();
    let mut directives = vec![json!({
        "Namespace": namespace,
        "Dimensions": [["service", "route", "status_class"], ["service"]],
        "Metrics": [
            {"Name": "Requests", "Unit": "Count"},
            {"Name": "Latency", "Unit": "Milliseconds"},
            {"Name": "ColdStart", "Unit": "Count"},
            {"Name": "StoreThrottled", "Unit": "Count"},
            {"Name": "StoreUnavailable", "Unit": "Count"},
        ],
    })];
    let version = process
        .function_name
        .as_ref()
        .zip(process.function_version.as_ref());
    if version.is_some() {
        directives.push(json!({
            "Namespace": namespace,
            "Dimensions": [["function", "version"]],
            "Metrics": [{"Name": "ServerErrors", "Unit": "Count"}],
        }));
    }
    let mut document = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": directives,
        },
        "service": process.service,
        "route": format!("{} {}", served.method, served.route),
        "status_class": format!("{}xx", served.status / 100),
        "Requests": 1,
        "Latency": served.latency_ms,
        "ColdStart": flag(facts.invocation.cold_start),
        "StoreThrottled": flag(facts.store_throttled),
        "StoreUnavailable": flag(facts.store_unavailable),
        "function_request_id": facts.invocation.function_request_id,
        "xray_trace_id": facts.invocation.xray_trace_id,
    });
    if let Some((function, version)) = version {
        document["function"] = function.as_str().into();
        document["version"] = version.as_str().into();
        document["ServerErrors"] = flag(served.status >= 500).into();
    }
    document
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
