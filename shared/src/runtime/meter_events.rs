//! How the `meter-events` binary starts: the table and the bus built once, then every batch of stream
//! records published (`crate::events`).

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::events::ChangePublisher;

/// The change events function's whole life: configuration read once (exiting with one log line naming a
/// missing variable), then each batch published until Lambda stops the process.
pub async fn run_meter_events() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let publisher = match ChangePublisher::from_env().await {
        Ok(publisher) => publisher,
        Err(error) => {
            tracing::error!(%error, "invalid configuration; not publishing");
            return Err(error.into());
        }
    };
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let publisher = publisher.clone();
        async move {
            publisher
                .publish(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    });
    // Boxed: the runtime's layered future is deep enough that the binary's `main` would otherwise pass the
    // compiler's type-layout recursion limit once the workspace's features are unified (`cargo test`).
    Box::pin(lambda_runtime::run(handler)).await
}
