//! DynamoDB stream records as Lambda's event source mapping delivers them, read into meter changes.

use serde::Deserialize;
use serde_json::Value;

use super::change::{ChangeKind, MeterChange};
use crate::domain::meter::{MeterId, Timestamp};
use crate::store::StoreError;
use crate::store::dynamodb::{DynamoDbStore, meter_keys, meter_of_image};

/// One record: only the parts a change event is made of.
#[derive(Debug, Deserialize)]
pub(super) struct StreamRecord {
    #[serde(rename = "eventName")]
    event_name: String,
    dynamodb: StreamChange,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StreamChange {
    keys: serde_dynamo::Item,
    #[serde(default)]
    new_image: Option<serde_dynamo::Item>,
    #[serde(default)]
    old_image: Option<serde_dynamo::Item>,
    /// Seconds since the epoch, when the record was written to the stream.
    #[serde(default)]
    approximate_creation_date_time: Option<f64>,
}

/// Why a record could not become an event.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record itself is wrong (not a stream record, an image missing or not a meter): retrying cannot
    /// help, so after Lambda's retries it goes to the on-failure destination.
    #[error("poison record: {0}")]
    Poison(String),
    /// The tombstone could not be read: worth retrying.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The record's sequence number, which a batch failure names: read on its own, so that even a record that
/// is otherwise unreadable can be reported.
pub(super) fn sequence_number(record: &Value) -> Option<&str> {
    record.get("dynamodb")?.get("SequenceNumber")?.as_str()
}

/// The change a record describes, or `None` for the table's bookkeeping (heads, tombstones, the id
/// counter, idempotency records) and for a rewrite of a meter that did not change its version.
pub async fn change_of(
    record: &Value,
    store: &DynamoDbStore,
) -> Result<Option<MeterChange>, RecordError> {
    let record = StreamRecord::deserialize(record)
        .map_err(|error| RecordError::Poison(format!("not a DynamoDB stream record: {error}")))?;
    let change = record.dynamodb;
    let Some((account_id, meter_id)) = meter_keys(&change.keys.into()) else {
        return Ok(None);
    };
    let image = |image: Option<serde_dynamo::Item>, which: &str| {
        let image = image.ok_or_else(|| {
            RecordError::Poison(format!(
                "{} of meter {meter_id} has no {which} (the stream must carry new and old images)",
                record.event_name
            ))
        })?;
        meter_of_image(image.into()).map_err(|error| {
            RecordError::Poison(format!(
                "the {which} of meter {meter_id} is not a meter: {error}"
            ))
        })
    };
    let same_meter = |meter: &crate::domain::meter::Meter| {
        meter.account_id == account_id && meter.id == meter_id
    };
    match record.event_name.as_str() {
        "INSERT" => {
            let (meter, writers) = image(change.new_image, "NewImage")?;
            ensure(same_meter(&meter), meter_id)?;
            Ok(Some(MeterChange {
                kind: ChangeKind::MeterCreated,
                account_id,
                meter_id,
                occurred_at: meter.created_at,
                actor: writers.created_by,
                meter: Some(meter),
                previous: None,
            }))
        }
        "MODIFY" => {
            let (meter, writers) = image(change.new_image, "NewImage")?;
            let (previous, _) = image(change.old_image, "OldImage")?;
            ensure(same_meter(&meter) && same_meter(&previous), meter_id)?;
            if meter.version == previous.version {
                return Ok(None);
            }
            Ok(Some(MeterChange {
                kind: ChangeKind::MeterUpdated,
                account_id,
                meter_id,
                occurred_at: meter.updated_at,
                actor: writers.updated_by,
                meter: Some(meter),
                previous: Some(previous),
            }))
        }
        "REMOVE" => {
            let (previous, _) = image(change.old_image, "OldImage")?;
            ensure(same_meter(&previous), meter_id)?;
            // The tombstone of this delete: a later delete of the same meter (restored since) rewrites it,
            // and its actor is not this one's.
            let deletion = store
                .deletion(&account_id, meter_id)
                .await?
                .filter(|deletion| deletion.version.is_none_or(|v| v == previous.version))
                .unwrap_or_default();
            let written = change
                .approximate_creation_date_time
                .and_then(|seconds| Timestamp::from_timestamp_millis((seconds * 1000.0) as i64));
            Ok(Some(MeterChange {
                kind: ChangeKind::MeterDeleted,
                account_id,
                meter_id,
                occurred_at: deletion
                    .deleted_at
                    .or(written)
                    .unwrap_or_else(crate::domain::meter::now),
                actor: deletion.deleted_by,
                meter: None,
                previous: Some(previous),
            }))
        }
        other => Err(RecordError::Poison(format!(
            "unknown eventName {other:?} for meter {meter_id}"
        ))),
    }
}

/// An image whose meter is not the one its keys name would put one account's data in another's event.
fn ensure(same: bool, meter_id: MeterId) -> Result<(), RecordError> {
    if same {
        Ok(())
    } else {
        Err(RecordError::Poison(format!(
            "an image of meter {meter_id} holds another meter or account"
        )))
    }
}
