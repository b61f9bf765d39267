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

/// DynamoDB capacity a request consumed, as DynamoDB reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    pub read: f64,
    pub write: f64,
}

tokio::task_local! {
    static SPENT: std::cell::Cell<Capacity>;
}

/// Runs `work`, adding up the capacity the store reports spending for it (through `spend_read` and
/// `spend_write`, on this task).
pub async fn metered<F: std::future::Future>(work: F) -> (F::Output, Capacity) {
    SPENT
        .scope(std::cell::Cell::new(Capacity::default()), async {
            let output = work.await;
            (output, SPENT.with(std::cell::Cell::get))
        })
        .await
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
    let Some(units) = consumed.and_then(|consumed| consumed.capacity_units()) else {
        return;
    };
    // Outside `metered` (tools, tests of the store alone) nobody is counting.
    let _ = SPENT.try_with(|spent| {
        let mut capacity = spent.get();
        add(&mut capacity, units);
        spent.set(capacity);
    });
}
