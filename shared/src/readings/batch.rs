//! One batch of queue messages, as Lambda's SQS event source mapping hands it over: every reading of every
//! message applied, several at once; the readings that can never apply parked with their reason; and the
//! messages that met a passing failure (the store unavailable, the dead-letter queue too) reported, so that
//! the queue delivers them again. Readings are idempotent, so a message delivered again applies nothing twice.

use std::sync::Arc;
use std::time::Instant;

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

/// Readings of one batch applied at once. Measured on DynamoDB Local (BENCHMARKS.md, "Readings at machine
/// rate"): four processes at 16 apiece took as many readings a second as a bare loop of the same write at the
/// same concurrency; at 8 apiece the tail of each batch left the table idle, and at 32 it answered slower.
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
    /// In a message that met a passing failure, which is delivered again (its readings that did apply will
    /// then not be later).
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

    /// Applies an SQS batch (`{"Records": [{"messageId", "body", …}]}`), starting no reading after `until`
    /// (the invocation's end, less time to answer): the messages whose readings were not all tried are
    /// delivered again.
    pub async fn apply_batch(
        &self,
        batch: &Value,
        until: Option<Instant>,
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
            // A parked reading moved back to the queue (the runbook's redrive) is tried again as sent.
            let readings = match Parked::resent(body) {
                Some(sent) => Reading::all_in(&sent),
                None => Reading::all_in(body),
            };
            messages.push((id, readings));
        }
        let (tally, retry) = self.apply_messages(messages, until).await;
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

    /// Applies the readings of `messages` (each its id and what it carried), none started after `until`,
    /// parks those that can never apply, and answers the ids of the messages to deliver again.
    pub async fn apply_messages<'a>(
        &self,
        messages: Vec<(&'a str, Vec<Result<Reading, RejectedReading>>)>,
        until: Option<Instant>,
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
        let outcomes: Vec<(usize, Reading, Outcome)> = futures::stream::iter(to_apply)
            .map(|(message, reading)| async move {
                let outcome = if until.is_some_and(|until| Instant::now() >= until) {
                    Outcome::Retry(StoreError::Unavailable(
                        "the invocation's time ran out before the reading was tried".into(),
                    ))
                } else {
                    self.apply_one(&reading).await
                };
                (message, reading, outcome)
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
                    // Once per message: a message of thousands of readings cut short says so once.
                    if !retry[message] {
                        tracing::warn!(%error, message_id = messages[message].0, "reading not applied yet");
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Actor;
    use crate::domain::meter::{
        AccountId, CommunicationType, MeterName, MeterType, NewMeter, SerialNumber,
    };
    use crate::readings::DeadLetterError;
    use crate::store::EmbeddedStore;
    use crate::store::meters::MeterStore;

    #[derive(Debug, Default)]
    struct Nowhere;

    #[async_trait::async_trait]
    impl DeadLetters for Nowhere {
        async fn park(&self, _: &[Parked]) -> Result<(), DeadLetterError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn no_reading_starts_past_the_invocations_end_and_its_message_comes_again() {
        let store = Arc::new(EmbeddedStore::in_memory().unwrap());
        let account = AccountId::from(uuid::Uuid::new_v4());
        let new = NewMeter {
            name: MeterName::parse("late").unwrap(),
            serial_number: SerialNumber::parse("L-1").unwrap(),
            meter_type: MeterType::GAS,
            communication_type: CommunicationType::NONE,
            details: Default::default(),
        };
        let actor = Actor {
            sub: Some("test".into()),
            client_id: None,
        };
        let meter = store.create(&account, new, &actor).await.unwrap();
        let message = serde_json::json!({"account_id": account, "meter_id": meter.id, "value": 1.5,
                                         "at": "2026-12-01T00:00:00Z"})
        .to_string();
        let applier = ReadingsApplier::new(store.clone(), Arc::new(Nowhere));
        let late = applier
            .apply_messages(
                vec![("m-1", Reading::all_in(&message))],
                Some(Instant::now()),
            )
            .await;
        assert_eq!(late.1, ["m-1"]);
        assert_eq!((late.0.applied, late.0.retried), (0, 1));
        let untouched = store.get(&account, meter.id).await.unwrap();
        assert_eq!(untouched.last_reading_at, None);
        let (tally, retry) = applier
            .apply_messages(vec![("m-1", Reading::all_in(&message))], None)
            .await;
        assert_eq!((tally.applied, retry.len()), (1, 0));
    }
}
