//! Logging set-up: JSON lines when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`), plain text
//! otherwise. The level comes from `RUST_LOG` or Lambda's `AWS_LAMBDA_LOG_LEVEL` (`info` by default); a
//! single level rather than filter directives, which keeps the regex engine out of every binary.

use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;

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
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    // A second call (tests start several servers in one process) keeps the first subscriber.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .without_time()
            .with_ansi(false)
            .try_init()
    } else {
        builder.try_init()
    };
}
