//! One batch of stream records, as Lambda's event source mapping hands it over: each meter change published,
//! in order, and the first record not published reported, so that Lambda delivers again from there.
//!
//! Delivery is at least once and in order per meter: records are published in stream order; one
//! `PutEvents` call never holds two changes of the same meter (EventBridge keeps no order within a call);
//! and at the first record that cannot be published (refused after retries, a tombstone that cannot be
//! read, a poison record) publishing stops and that record is the batch's failure. Lambda retries from it,
//! so everything after it comes again rather than overtaking it; after its retries it sends the batch's
//! description to the on-failure destination.

use serde::Serialize;
use serde_json::Value;

use super::bus::{EventBus, MAX_CALL_BYTES, MAX_ENTRIES};
use super::change::MeterChange;
use super::records::{RecordError, change_of, sequence_number};
use crate::config::{ConfigError, Env};
use crate::store::dynamodb::{DynamoDbConfig, DynamoDbStore, dynamodb_client};

/// Lambda's partial batch response (`ReportBatchItemFailures`).
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// The batch itself is not a batch of stream records: the invocation fails and Lambda retries it whole.
#[derive(Debug, thiserror::Error)]
#[error("not a batch of DynamoDB stream records: {0}")]
pub struct NotABatch(&'static str);

/// What the function holds from cold start: the table (for tombstones) and the bus.
#[derive(Debug, Clone)]
pub struct ChangePublisher {
    store: DynamoDbStore,
    bus: EventBus,
}

impl ChangePublisher {
    /// `TABLE_NAME`, `DYNAMODB_ENDPOINT` and the DynamoDB client as the API's functions have them, and the
    /// bus (`EVENT_BUS_NAME`).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let dynamodb = DynamoDbConfig::read(&env)?;
        let store = DynamoDbStore::new(dynamodb_client(&dynamodb).await, dynamodb.table_name);
        Ok(Self {
            store,
            bus: EventBus::from_env(&env).await?,
        })
    }

    pub async fn publish(&self, batch: &Value) -> Result<BatchResponse, NotABatch> {
        let records = batch
            .get("Records")
            .and_then(Value::as_array)
            .ok_or(NotABatch("no Records array"))?;
        let mut changes: Vec<Pending<'_>> = Vec::new();
        let mut stopped_at = None;
        let mut skipped = 0;
        for record in records {
            let sequence = sequence_number(record).ok_or(NotABatch(
                "a record without dynamodb.SequenceNumber, which no failure could name",
            ))?;
            // Each detail is written once: its size cuts the calls, and it is what is sent.
            let detail = change_of(record, &self.store).await.and_then(|change| {
                change
                    .map(|change| match change.detail() {
                        Ok(detail) => Ok((change, detail)),
                        Err(error) => Err(RecordError::Poison(format!(
                            "the change cannot be written as JSON: {error}"
                        ))),
                    })
                    .transpose()
            });
            match detail {
                Ok(Some((change, detail))) => changes.push(Pending {
                    sequence,
                    change,
                    detail,
                }),
                Ok(None) => skipped += 1,
                Err(error) => {
                    match &error {
                        RecordError::Poison(_) => {
                            tracing::error!(%error, sequence, "stream record not published")
                        }
                        RecordError::Store(_) => {
                            tracing::warn!(%error, sequence, "stream record not published yet")
                        }
                    }
                    stopped_at = Some(sequence);
                    break;
                }
            }
        }
        let mut published = 0;
        for run in runs(&changes) {
            let entries: Vec<(&MeterChange, &str)> = run
                .iter()
                .map(|pending| (&pending.change, pending.detail.as_str()))
                .collect();
            let refused = self.bus.put(&entries).await;
            published += run.len() - refused.len();
            if let Some(&first) = refused.first() {
                stopped_at = Some(run[first].sequence);
                break;
            }
        }
        tracing::info!(
            records = records.len(),
            published,
            skipped,
            retry_from = stopped_at,
            "change events"
        );
        Ok(BatchResponse {
            batch_item_failures: stopped_at
                .map(|sequence| ItemFailure {
                    item_identifier: sequence.to_owned(),
                })
                .into_iter()
                .collect(),
        })
    }
}

/// A change to publish: the record it came from, and its detail, written once.
#[derive(Debug)]
struct Pending<'a> {
    sequence: &'a str,
    change: MeterChange,
    detail: String,
}

/// The changes cut into `PutEvents` calls, in order: at most `MAX_ENTRIES` and about `MAX_CALL_BYTES` each
/// (the detail is the bulk of an entry), and a new call before a meter's second change.
fn runs<'a, 'b>(changes: &'b [Pending<'a>]) -> Vec<&'b [Pending<'a>]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (at, pending) in changes.iter().enumerate() {
        let (change, size) = (&pending.change, pending.detail.len() + 256);
        let repeats = changes[start..at].iter().any(|earlier| {
            earlier.change.account_id == change.account_id
                && earlier.change.meter_id == change.meter_id
        });
        if at > start && (at - start == MAX_ENTRIES || repeats || bytes + size > MAX_CALL_BYTES) {
            runs.push(&changes[start..at]);
            (start, bytes) = (at, 0);
        }
        bytes += size;
    }
    if start < changes.len() {
        runs.push(&changes[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meter::{AccountId, MeterId, now};
    use crate::events::ChangeKind;

    fn change(account: AccountId, id: i64) -> MeterChange {
        MeterChange {
            kind: ChangeKind::MeterDeleted,
            account_id: account,
            meter_id: MeterId::new(id).unwrap(),
            meter: None,
            previous: None,
            actor: None,
            occurred_at: now(),
        }
    }

    #[test]
    fn calls_hold_at_most_ten_changes_and_never_two_of_one_meter() {
        let account = AccountId::from(uuid::Uuid::new_v4());
        let ids = [1, 2, 3, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
        let changes: Vec<_> = ids
            .iter()
            .map(|&id| Pending {
                sequence: "s",
                change: change(account, id),
                detail: String::new(),
            })
            .collect();
        let sizes: Vec<usize> = runs(&changes).iter().map(|run| run.len()).collect();
        assert_eq!(sizes, vec![3, 10, 1]);
        assert_eq!(runs(&[]).len(), 0);
    }
}
