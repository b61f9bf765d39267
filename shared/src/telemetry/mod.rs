//! What an on-call engineer sees: one log line per request in the keys Powertools for AWS Lambda uses, the
//! request's metrics in CloudWatch Embedded Metric Format beside it, and the facts a request gathers on
//! its way (account, DynamoDB capacity, store trouble) for both. docs/operating.md.
//!
//! Logs are JSON lines when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`, or `LOG_FORMAT=json`),
//! human-readable otherwise. The level comes from `RUST_LOG` or Lambda's `AWS_LAMBDA_LOG_LEVEL` (`info` by
//! default); a single level rather than filter directives, which keeps the regex engine out of every binary.
//!
//! It sits below every other layer: the configuration reader is all it uses, and any layer notes facts.

mod facts;
mod format;
mod process;
mod request_line;

pub use facts::{
    Capacity, Facts, Invocation, current, note_account, note_actor, note_store_throttled,
    note_store_unavailable, spend_read, spend_write, within_request,
};
pub use request_line::{Served, metrics_document, record};

use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;

use crate::config::Env;
use format::PowertoolsJson;

/// Installs the log subscriber: once per process, at start-up.
pub fn init() {
    let env = Env::process();
    let level = ["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL"]
        .iter()
        .find_map(|name| LevelFilter::from_str(env.get(name)?.trim()).ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    // A second call (tests start several servers in one process) keeps the first subscriber.
    let _ = if json_logs(&env) {
        builder.event_format(PowertoolsJson).try_init()
    } else {
        builder.try_init()
    };
}

fn json_logs(env: &Env) -> bool {
    ["AWS_LAMBDA_LOG_FORMAT", "LOG_FORMAT"].iter().any(|name| {
        env.get(name)
            .is_some_and(|format| format.eq_ignore_ascii_case("json"))
    })
}
