//! Where readings that can never apply end: the dead-letter queue, one message per reading, with the
//! reason, the reading as sent, and the message it came in, so an operator can mend and resend it
//! (docs/runbooks.md, "Readings parked on the dead-letter queue").

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use serde::Serialize;
use serde_json::Value;

use crate::config::{ConfigError, Env};

/// `SendMessageBatch` takes at most 10 entries.
const ENTRIES_PER_CALL: usize = 10;
/// A reading as sent is kept whole up to this size; a larger one is cut (a queue message holds 256 KiB).
const MAX_SENT_BYTES: usize = 16 * 1024;

/// A reading that can never apply, as parked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parked {
    /// Why it cannot apply: the rule it breaks, or that its account holds no such meter.
    pub reason: String,
    /// The reading as sent (the message's text, when it was not JSON).
    pub reading: Value,
    /// The queue message it came in.
    pub message_id: String,
}

impl Parked {
    pub fn new(message_id: &str, reading: Value, reason: String) -> Self {
        let reading = match serde_json::to_string(&reading) {
            Ok(text) if text.len() > MAX_SENT_BYTES => {
                let cut: String = text.chars().take(MAX_SENT_BYTES / 4).collect();
                Value::String(format!("{cut}… (cut: {} bytes sent)", text.len()))
            }
            _ => reading,
        };
        Self {
            reason,
            reading,
            message_id: message_id.to_owned(),
        }
    }
}

impl Parked {
    /// The message to try again, when `body` is a parked reading moved back to the readings queue: the
    /// reading as it was sent (a JSON value, or the text of a message that was not JSON).
    pub fn resent(body: &str) -> Option<String> {
        let Ok(Value::Object(parked)) = serde_json::from_str::<Value>(body) else {
            return None;
        };
        let fields: Vec<&str> = parked.keys().map(String::as_str).collect();
        if fields.len() != 3
            || !["reason", "reading", "message_id"]
                .iter()
                .all(|f| fields.contains(f))
        {
            return None;
        }
        Some(match &parked["reading"] {
            Value::String(text) => text.clone(),
            reading => reading.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("readings not parked: {0}")]
pub struct DeadLetterError(pub String);

/// Where parked readings go.
#[async_trait]
pub trait DeadLetters: Send + Sync + std::fmt::Debug {
    /// Parks every one of `parked`, or fails: the caller then hands their messages back to the queue, and
    /// the queue's own redrive is what parks them in the end (without the reason).
    async fn park(&self, parked: &[Parked]) -> Result<(), DeadLetterError>;
}

/// The stack's dead-letter queue for readings.
#[derive(Debug, Clone)]
pub struct DeadLetterQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl DeadLetterQueue {
    /// `READINGS_DEAD_LETTER_QUEUE_URL` (required), and the SDK's own settings: the region and credentials
    /// Lambda gives, and `AWS_ENDPOINT_URL_SQS` (or `AWS_ENDPOINT_URL`) for an emulator.
    pub async fn from_env(env: &Env) -> Result<Self, ConfigError> {
        use aws_sdk_sqs::config::retry::RetryConfig;
        use aws_sdk_sqs::config::timeout::TimeoutConfig;
        let url = env.required(
            "READINGS_DEAD_LETTER_QUEUE_URL",
            "the queue that readings which can never apply are parked on, with their reason",
        )?;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let config = aws_sdk_sqs::config::Builder::from(&sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .build();
        Ok(Self {
            client: aws_sdk_sqs::Client::from_conf(config),
            url,
        })
    }
}

#[async_trait]
impl DeadLetters for DeadLetterQueue {
    async fn park(&self, parked: &[Parked]) -> Result<(), DeadLetterError> {
        for chunk in parked.chunks(ENTRIES_PER_CALL) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (at, one) in chunk.iter().enumerate() {
                let body = serde_json::to_string(one)
                    .map_err(|error| DeadLetterError(error.to_string()))?;
                let reason = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(one.reason.chars().take(256).collect::<String>())
                    .build()
                    .map_err(|error| DeadLetterError(error.to_string()))?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(at.to_string())
                        .message_body(body)
                        .message_attributes("reason", reason)
                        .build()
                        .map_err(|error| DeadLetterError(error.to_string()))?,
                );
            }
            let sent = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|error| {
                    DeadLetterError(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
                })?;
            if let Some(failed) = sent.failed().first() {
                return Err(DeadLetterError(format!(
                    "{} of {} refused, the first: {} {}",
                    sent.failed().len(),
                    chunk.len(),
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_reading_moved_back_is_tried_again_as_it_was_sent() {
        let reading = serde_json::json!({"account_id": "a", "meter_id": 1, "value": 2, "at": "x"});
        let parked = Parked::new("m-1", reading.clone(), "value: …".into());
        let body = serde_json::to_string(&parked).unwrap();
        assert_eq!(Parked::resent(&body), Some(reading.to_string()));
        let not_json = Parked::new("m-2", Value::String("{\"account".into()), "not JSON".into());
        assert_eq!(
            Parked::resent(&serde_json::to_string(&not_json).unwrap()),
            Some("{\"account".into())
        );
        // A reading is not a parked reading, whatever its fields.
        assert_eq!(Parked::resent(&reading.to_string()), None);
        assert_eq!(Parked::resent(r#"{"reason": "x", "reading": 1}"#), None);
    }
}
