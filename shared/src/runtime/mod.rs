//! How a function binary starts: configuration and clients built once at cold start, then every event
//! through the event guard and the endpoint's handler; or, for `meter-events`, every batch of stream
//! records to the change events; or, for `apply-readings`, every batch of the readings queue.

mod apply_readings;
mod event_guard;
mod meter_events;

pub use apply_readings::run_apply_readings;
pub use event_guard::{EventGuard, Guarded, RawEvent, request_from_event};
pub use meter_events::run_meter_events;

use lambda_http::{Adapter, Request, service_fn};

use crate::auth::{AuthConfig, Authenticator};
use crate::config::{ConfigError, Env};
use crate::http::{App, Endpoint, request_deadline};
use crate::store::dynamodb::{DynamoDbConfig, DynamoDbStore, dynamodb_client};
use crate::store::snapshots::S3Snapshots;

/// A function binary's whole life: read configuration (exiting with one log line naming the variable if
/// it is missing), build the DynamoDB client once, and serve `endpoint` until Lambda stops the process.
pub async fn run(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = match app_from_env().await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "invalid configuration; not serving");
            return Err(error.into());
        }
    };
    let handler = service_fn(move |request: Request| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(endpoint.handle(&app, request).await) }
    });
    lambda_runtime::run(EventGuard(Adapter::from(handler))).await
}

/// The production dependencies, from the environment of the design's configuration table.
pub async fn app_from_env() -> Result<App, ConfigError> {
    let env = Env::process();
    let auth_config = AuthConfig::read(&env)?;
    let auth = Authenticator::new(&auth_config)?;
    // Read once, said once: which trust boundary this process enforces.
    tracing::info!(auth_mode = auth_config.key.describe(), "authentication");
    let deadline = request_deadline(&env)?;
    let dynamodb = DynamoDbConfig::read(&env)?;
    let mut store = DynamoDbStore::new(dynamodb_client(&dynamodb).await, dynamodb.table_name);
    // Only list-meters has a bucket: the other functions never read an account's listing.
    if let Some(snapshots) = S3Snapshots::from_env(&env).await? {
        tracing::info!(bucket = snapshots.bucket(), "listing snapshots");
        store = store.with_snapshots(std::sync::Arc::new(snapshots));
    }
    Ok(App::new(store, auth).with_deadline(deadline))
}
