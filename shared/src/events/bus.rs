//! The stack's event bus: `PutEvents` for a run of changes, retrying the entries EventBridge refuses.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::change::{MeterChange, SOURCE};
use crate::config::{ConfigError, Env};

/// Attempts of an entry EventBridge refused (throttled, an internal failure), each after a longer pause.
const PUT_ATTEMPTS: u32 = 4;
/// `PutEvents` takes at most 10 entries and 256 KiB per call.
pub(super) const MAX_ENTRIES: usize = 10;
pub(super) const MAX_CALL_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

impl EventBus {
    /// `EVENT_BUS_NAME` (required), and the SDK's own settings: the region and credentials Lambda gives,
    /// and `AWS_ENDPOINT_URL_EVENTBRIDGE` (or `AWS_ENDPOINT_URL`) for an emulator.
    pub async fn from_env(env: &Env) -> Result<Self, ConfigError> {
        use aws_sdk_eventbridge::config::retry::RetryConfig;
        use aws_sdk_eventbridge::config::timeout::TimeoutConfig;
        let name = env.required(
            "EVENT_BUS_NAME",
            "the EventBridge bus the change events go to",
        )?;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let config = aws_sdk_eventbridge::config::Builder::from(&sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .build();
        Ok(Self {
            client: aws_sdk_eventbridge::Client::from_conf(config),
            name,
        })
    }

    /// Publishes `changes` with their details (at most `MAX_ENTRIES`, each of another meter) and returns the
    /// positions of those still refused after `PUT_ATTEMPTS`, in order; only refused entries are sent again.
    pub async fn put(&self, changes: &[(&MeterChange, &str)]) -> Vec<usize> {
        let entries: Vec<PutEventsRequestEntry> = changes
            .iter()
            .map(|(change, detail)| self.entry(change, detail))
            .collect();
        let mut unsent: Vec<usize> = (0..entries.len()).collect();
        for attempt in 1..=PUT_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(50 << (2 * (attempt - 2)))).await;
            }
            let call = self
                .client
                .put_events()
                .set_entries(Some(unsent.iter().map(|&at| entries[at].clone()).collect()));
            unsent = match call.send().await {
                Ok(output) => {
                    let results = output.entries();
                    unsent
                        .iter()
                        .enumerate()
                        // A result with an error code, or none at all, is an entry not published.
                        .filter(|(n, _)| {
                            results
                                .get(*n)
                                .is_none_or(|result| result.error_code().is_some())
                        })
                        .map(|(_, &at)| at)
                        .collect()
                }
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&error), attempt, "PutEvents failed");
                    unsent
                }
            };
            if unsent.is_empty() {
                break;
            }
            tracing::warn!(
                refused = unsent.len(),
                attempt,
                "EventBridge refused entries"
            );
        }
        unsent
    }

    fn entry(&self, change: &MeterChange, detail: &str) -> PutEventsRequestEntry {
        let time = aws_sdk_eventbridge::primitives::DateTime::from_millis(
            change.occurred_at.timestamp_millis(),
        );
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(SOURCE)
            .detail_type(change.kind.detail_type())
            .detail(detail)
            .time(time)
            .build()
    }
}
