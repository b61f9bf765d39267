//! How the `apply-readings` binary starts: the table and the dead-letter queue built once, then every batch
//! of the readings queue applied (`crate::readings`), with one log line per batch: what became of its
//! readings and the capacity they consumed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::readings::ReadingsApplier;
use crate::telemetry::{self, Invocation};

/// The readings function's whole life: configuration read once (exiting with one log line naming a missing
/// variable), then each batch applied until Lambda stops the process.
pub async fn run_apply_readings() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let applier = match ReadingsApplier::from_env().await {
        Ok(applier) => applier,
        Err(error) => {
            tracing::error!(%error, "invalid configuration; not applying readings");
            return Err(error.into());
        }
    };
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let applier = applier.clone();
        let invocation = Invocation::new(
            Some(event.context.request_id.clone()),
            event.context.xray_trace_id.as_deref(),
            None,
        );
        // Two seconds kept back from the invocation's end: time to answer which messages come again.
        let until = invocation_end(event.context.deadline)
            .map(|end| end.checked_sub(ANSWER_MARGIN).unwrap_or(end));
        telemetry::within_request(invocation, async move {
            let (response, tally) = applier.apply_batch(&event.payload, until).await?;
            let capacity = telemetry::current().capacity;
            tracing::info!(
                messages = tally.messages,
                readings = tally.readings,
                applied = tally.applied,
                not_later = tally.not_later,
                parked = tally.parked,
                retried = tally.retried,
                read_units = capacity.read,
                write_units = capacity.write,
                "readings"
            );
            Ok::<_, lambda_runtime::Error>(response)
        })
    });
    Box::pin(lambda_runtime::run(handler)).await
}

/// Kept back from the invocation's end for the answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// When the invocation ends, from Lambda's deadline (milliseconds since the epoch); `None` if not given.
fn invocation_end(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    Instant::now().checked_add(Duration::from_millis(deadline_ms.checked_sub(now_ms)?))
}
