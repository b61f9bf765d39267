//! What an on-call engineer sees: one log line per request in the keys Powertools for AWS Lambda uses, the
//! request's metrics in CloudWatch Embedded Metric Format beside it, and the facts a request gathers on
//! its way (account, DynamoDB capacity, store trouble) for both. README, "Operating it".
//!
//! Logs are JSON lines when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`, or `LOG_FORMAT=json`),
//! human-readable otherwise. The level comes from `RUST_LOG` or Lambda's `AWS_LAMBDA_LOG_LEVEL` (`info` by
//! default); a single level rather than filter directives, which keeps the regex engine out of every binary.

use std::cell::RefCell;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::meter::AccountId;

pub fn init() {
    let level = ["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL"]
        .iter()
        .find_map(|name| {
            std::env::var(name)
                .ok()
                .and_then(|value| LevelFilter::from_str(value.trim()).ok())
        })
        .unwrap_or(LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    // A second call (tests start several servers in one process) keeps the first subscriber.
    let _ = if json_logs() {
        builder.event_format(PowertoolsJson).try_init()
    } else {
        builder.try_init()
    };
}

fn json_logs() -> bool {
    ["AWS_LAMBDA_LOG_FORMAT", "LOG_FORMAT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|format| format.eq_ignore_ascii_case("json")))
}

/// What every log line and metrics document of this process carries, read from the environment once
/// rather than on every line.
struct Process {
    /// `POWERTOOLS_SERVICE_NAME`, as Powertools reads it; `meters-api` by default.
    service: String,
    /// `AWS_LAMBDA_FUNCTION_NAME`: set in Lambda only.
    function_name: Option<String>,
    /// Where EMF goes: `METRICS_NAMESPACE` (`MetersApi` by default) in Lambda, where CloudWatch extracts it
    /// from standard output; elsewhere only when the variable is set.
    metrics_namespace: Option<String>,
}

fn process() -> &'static Process {
    static PROCESS: std::sync::OnceLock<Process> = std::sync::OnceLock::new();
    PROCESS.get_or_init(|| {
        let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let function_name = variable("AWS_LAMBDA_FUNCTION_NAME");
        let metrics_namespace = variable("METRICS_NAMESPACE")
            .or_else(|| function_name.as_ref().map(|_| "MetersApi".to_owned()));
        Process {
            service: variable("POWERTOOLS_SERVICE_NAME").unwrap_or_else(|| "meters-api".to_owned()),
            function_name,
            metrics_namespace,
        }
    })
}

/// DynamoDB capacity a request consumed, as DynamoDB reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    pub read: f64,
    pub write: f64,
}

/// Which invocation a request is: what every log line written while serving it carries.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The Lambda request id (Powertools' `function_request_id`).
    pub function_request_id: Option<String>,
    /// The X-Ray trace id (its `Root`).
    pub xray_trace_id: Option<String>,
    /// API Gateway's own request id, which its access log carries too.
    pub correlation_id: Option<String>,
    /// The first request of this process.
    pub cold_start: bool,
}

static COLD: AtomicBool = AtomicBool::new(true);

impl Invocation {
    /// Takes the cold start: only the first invocation of a process has it.
    pub fn new(
        function_request_id: Option<String>,
        xray_trace_header: Option<&str>,
        correlation_id: Option<String>,
    ) -> Self {
        Self {
            function_request_id,
            xray_trace_id: xray_trace_header.map(trace_root),
            correlation_id,
            cold_start: COLD.swap(false, Ordering::Relaxed),
        }
    }
}

/// `Root=1-…;Parent=…;Sampled=1` → `1-…`, as Powertools logs it.
fn trace_root(header: &str) -> String {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .unwrap_or(header)
        .to_owned()
}

/// What a request found out on its way, for its log line and metrics.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub invocation: Invocation,
    pub capacity: Capacity,
    pub account_id: Option<String>,
    pub store_throttled: bool,
    pub store_unavailable: bool,
}

tokio::task_local! {
    static REQUEST: RefCell<Facts>;
}

/// Runs `work` as the request `invocation`: what it notes (below) is gathered and returned with its output,
/// and every line it logs carries the invocation.
pub async fn within_request<F: std::future::Future>(
    invocation: Invocation,
    work: F,
) -> (F::Output, Facts) {
    let facts = Facts {
        invocation,
        ..Facts::default()
    };
    REQUEST
        .scope(RefCell::new(facts), async {
            let output = work.await;
            (output, REQUEST.with(|facts| facts.borrow().clone()))
        })
        .await
}

/// Outside a request (tools, tests of the store alone) nobody is gathering.
fn note(change: impl FnOnce(&mut Facts)) {
    let _ = REQUEST.try_with(|facts| change(&mut facts.borrow_mut()));
}

pub fn note_account(account: &AccountId) {
    note(|facts| facts.account_id = Some(account.to_string()));
}

pub fn note_store_throttled() {
    note(|facts| facts.store_throttled = true);
}

pub fn note_store_unavailable() {
    note(|facts| facts.store_unavailable = true);
}

pub fn spend_read(consumed: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
    spend(consumed, |capacity, units| capacity.read += units);
}

pub fn spend_write(consumed: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
    spend(consumed, |capacity, units| capacity.write += units);
}

fn spend(
    consumed: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>,
    add: impl FnOnce(&mut Capacity, f64),
) {
    if let Some(units) = consumed.and_then(|consumed| consumed.capacity_units()) {
        note(|facts| add(&mut facts.capacity, units));
    }
}

/// One request, as its log line and metrics tell it.
#[derive(Debug, Clone)]
pub struct Served<'a> {
    pub route: &'static str,
    pub method: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    /// A stable name of the failure, when the status is not 2xx.
    pub error_code: Option<&'static str>,
    /// What went wrong inside, for 5xx: logged, never shown to the caller.
    pub error_detail: Option<String>,
}

/// Writes the request's log line (ERROR for 5xx, so that the log-based alarms see handled failures; INFO
/// otherwise) and its metrics.
pub fn record(served: &Served<'_>, facts: Facts) {
    let (account_id, capacity) = (facts.account_id.clone(), facts.capacity);
    macro_rules! request_line {
        ($level:ident) => {
            tracing::$level!(
                route = served.route,
                method = served.method,
                status = served.status,
                latency_ms = served.latency_ms,
                account_id = account_id.as_deref(),
                error_code = served.error_code,
                error = served.error_detail.as_deref(),
                consumed_rcu = capacity.read,
                consumed_wcu = capacity.write,
                "request"
            )
        };
    }
    // Written after the request's own scope ended: carry its invocation again, for the line's keys.
    let facts = REQUEST.sync_scope(RefCell::new(facts), || {
        if served.status >= 500 {
            request_line!(error);
        } else {
            request_line!(info);
        }
        REQUEST.with(RefCell::take)
    });
    if let Some(namespace) = &process().metrics_namespace {
        println!(
            "{}",
            metrics_document(namespace, served, &facts, now_millis())
        );
    }
}

/// The request's metrics as one EMF document: `Requests` and `Latency` (and the rest) by service, route
/// and status class, and by service alone. It has no `level`, so Lambda's log-level filter never drops it.
pub fn metrics_document(
    namespace: &str,
    served: &Served<'_>,
    facts: &Facts,
    timestamp_ms: u64,
) -> Value {
    let flag = |set: bool| u8::from(set);
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["service", "route", "status_class"], ["service"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "ColdStart", "Unit": "Count"},
                    {"Name": "StoreThrottled", "Unit": "Count"},
                    {"Name": "StoreUnavailable", "Unit": "Count"},
                ],
            }],
        },
        "service": process().service,
        "route": format!("{} {}", served.method, served.route),
        "status_class": format!("{}xx", served.status / 100),
        "Requests": 1,
        "Latency": served.latency_ms,
        "ColdStart": flag(facts.invocation.cold_start),
        "StoreThrottled": flag(facts.store_throttled),
        "StoreUnavailable": flag(facts.store_unavailable),
        "function_request_id": facts.invocation.function_request_id,
        "xray_trace_id": facts.invocation.xray_trace_id,
    })
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Log lines as Powertools for AWS Lambda writes them: `timestamp`, `level`, `message`, `service`,
/// `cold_start`, `function_name`, `function_request_id`, `xray_trace_id` (the last three and
/// `correlation_id` while a request is being served), then the event's own fields. No spans.
struct PowertoolsJson;

impl<S, N> FormatEvent<S, N> for PowertoolsJson
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("message".into(), Value::Null);
        let process = process();
        line.insert("service".into(), process.service.clone().into());
        if let Some(name) = &process.function_name {
            line.insert("function_name".into(), name.clone().into());
        }
        let _ = REQUEST.try_with(|facts| {
            let invocation = &facts.borrow().invocation;
            line.insert("cold_start".into(), invocation.cold_start.into());
            for (key, value) in [
                ("function_request_id", &invocation.function_request_id),
                ("xray_trace_id", &invocation.xray_trace_id),
                ("correlation_id", &invocation.correlation_id),
            ] {
                if let Some(value) = value {
                    line.insert(key.into(), value.clone().into());
                }
            }
        });
        event.record(&mut JsonFields(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| std::fmt::Error)?;
        writer.write_str(&text)?;
        writer.write_char('\n')
    }
}

/// An event's fields as JSON values; `None` fields (`Option` recorded as absent) are left out.
struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_the_root_of_the_trace_header() {
        assert_eq!(
            trace_root(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            ),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
        assert_eq!(trace_root("1-abc"), "1-abc");
    }
}
