//! One batch of queue messages, as Lambda's SQS event source mapping hands it over: every reading of every
//! message applied, several at once; the readings that can never apply parked with their reason; and the
//! messages that met a passing failure (the store unavailable, the dead-letter queue too) reported, so that
//! the queue delivers them again. Readings are idempotent, so a message delivered again applies nothing twice.

use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::dead_letters::{DeadLetterQueue, DeadLetters, Parked};
use crate::config::{ConfigError, Env};
use crate::domain::reading::{Reading, RejectedReading};
use crate::events::{BatchResponse, ItemFailure};
use crate::store::dynamodb::{DynamoDbConfig, DynamoDbStore, dynamodb_client};
use crate::store::error::StoreError;
use crate::store::readings::{Applied, ReadingStore};

/// Readings of one batch applied at once. Eight keeps a process's writes (the event source mapping runs a
/// few processes at once) near what one account's partition takes, and, measured on DynamoDB Local, four
/// processes at eight apiece took more readings a second than at 32 apiece (BENCHMARKS.md, "Readings").
pub const READINGS_IN_FLIGHT: usize = 16;

/// The batch is not an SQS batch: the invocation fails and Lambda hands it back whole.
#[derive(Debug, thiserror::Error)]
#[error("not a batch of SQS messages: {0}")]
pub struct NotAQueueBatch(&'static str);

/// What became of a batch's readings.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub messages: usize,
    pub readings: usize,
    /// Later than the meter's: now the meter's.
    pub applied: usize,
    /// Not later than the meter's (late, duplicate, out of order): nothing changed; not a failure.
    pub not_later: usize,
    /// Can never apply: parked with the reason.
    pub parked: usize,
    /// Met a passing failure: its message is delivered again.
    pub retried: usize,
}

/// What the function holds from cold start: the store and the dead-letter queue.
#[derive(Debug, Clone)]
pub struct ReadingsApplier {
    store: Arc<dyn ReadingStore>,
    dead_letters: Arc<dyn DeadLetters>,
}

/// What applying one reading came to.
enum Outcome {
    Applied(Applied),
    Parked(String),
    Retry(StoreError),
}

impl ReadingsApplier {
    pub fn new(store: Arc<dyn ReadingStore>, dead_letters: Arc<dyn DeadLetters>) -> Self {
        Self {
            store,
            dead_letters,
        }
    }

    /// `TABLE_NAME`, `DYNAMODB_ENDPOINT` and the DynamoDB client as the API's functions have them, and the
    /// dead-letter queue (`READINGS_DEAD_LETTER_QUEUE_URL`).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let dynamodb = DynamoDbConfig::read(&env)?;
        let store = DynamoDbStore::new(dynamodb_client(&dynamodb).await, dynamodb.table_name);
        Ok(Self::new(
            Arc::new(store),
            Arc::new(DeadLetterQueue::from_env(&env).await?),
        ))
    }

    /// Applies an SQS batch (`{"Records": [{"messageId", "body", …}]}`).
    pub async fn apply_batch(
        &self,
        batch: &Value,
    ) -> Result<(BatchResponse, Tally), NotAQueueBatch> {
        let records = batch
            .get("Records")
            .and_then(Value::as_array)
            .ok_or(NotAQueueBatch("no Records array"))?;
        let mut messages = Vec::with_capacity(records.len());
        for record in records {
            let id = record
                .get("messageId")
                .and_then(Value::as_str)
                .ok_or(NotAQueueBatch(
                    "a record without messageId, which no failure could name",
                ))?;
            let body = record
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or_default();
            messages.push((id, Reading::all_in(body)));
        }
        let (tally, retry) = self.apply_messages(messages).await;
        let response = BatchResponse {
            batch_item_failures: retry
                .into_iter()
                .map(|id| ItemFailure {
                    item_identifier: id.to_owned(),
                })
                .collect(),
        };
        Ok((response, tally))
    }

    /// Applies the readings of `messages` (each its id and what it carried), parks those that can never
    /// apply, and answers the ids of the messages to deliver again.
    pub async fn apply_messages<'a>(
        &self,
        messages: Vec<(&'a str, Vec<Result<Reading, RejectedReading>>)>,
    ) -> (Tally, Vec<&'a str>) {
        let mut tally = Tally {
            messages: messages.len(),
            ..Tally::default()
        };
        let mut parked: Vec<(usize, Parked)> = Vec::new();
        let mut to_apply = Vec::new();
        for (message, (id, readings)) in messages.iter().enumerate() {
            tally.readings += readings.len();
            for reading in readings {
                match reading {
                    Ok(reading) => to_apply.push((message, *reading)),
                    Err(rejected) => parked.push((
                        message,
                        Parked::new(id, rejected.sent.clone(), rejected.reason.clone()),
                    )),
                }
            }
        }
        let outcomes: Vec<(usize, Reading, Outcome)> =
            futures::stream::iter(to_apply)
                .map(|(message, reading)| async move {
                    (message, reading, self.apply_one(&reading).await)
                })
                .buffer_unordered(READINGS_IN_FLIGHT)
                .collect()
                .await;
        let mut retry = vec![false; messages.len()];
        for (message, reading, outcome) in outcomes {
            match outcome {
                Outcome::Applied(Applied::Applied) => tally.applied += 1,
                Outcome::Applied(Applied::NotLater) => tally.not_later += 1,
                Outcome::Parked(reason) => parked.push((
                    message,
                    Parked::new(messages[message].0, reading.to_json(), reason),
                )),
                Outcome::Retry(error) => {
                    tracing::warn!(%error, message_id = messages[message].0, "reading not applied yet");
                    retry[message] = true;
                }
            }
        }
        // A message delivered again brings its parked readings again: they are parked then.
        parked.retain(|(message, _)| !retry[*message]);
        for (_, one) in &parked {
            tracing::warn!(reason = %one.reason, message_id = %one.message_id, "reading parked");
        }
        let to_park: Vec<Parked> = parked.iter().map(|(_, one)| one.clone()).collect();
        match self.dead_letters.park(&to_park).await {
            Ok(()) => tally.parked = to_park.len(),
            Err(error) => {
                tracing::error!(%error, readings = to_park.len(), "parking failed; their messages come again");
                for (message, _) in &parked {
                    retry[*message] = true;
                }
            }
        }
        let retried: Vec<&'a str> = messages
            .iter()
            .zip(&retry)
            .filter(|(_, retry)| **retry)
            .map(|((id, _), _)| *id)
            .collect();
        tally.retried = messages
            .iter()
            .zip(&retry)
            .filter(|(_, retry)| **retry)
            .map(|((_, readings), _)| readings.len())
            .sum();
        (tally, retried)
    }

    async fn apply_one(&self, reading: &Reading) -> Outcome {
        match self.store.apply_reading(&reading.account_id, reading).await {
            Ok(applied) => Outcome::Applied(applied),
            // Whether another account holds the id is not the sender's business.
            Err(StoreError::NotFound(id) | StoreError::OtherAccount(id)) => Outcome::Parked(
                format!("account {} holds no meter {id}", reading.account_id),
            ),
            Err(error) => Outcome::Retry(error),
        }
    }
}
