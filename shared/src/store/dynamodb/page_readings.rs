//! A page's readings, read fresh. A listing is kept current by the account's list version, which readings
//! do not move, so its readings may be older than its meters'. A page served from a listing whose readings
//! are older than the bound allows (`LIST_READINGS_BOUND_SECONDS`) takes them from the meters' items: one
//! strongly consistent `BatchGetItem` of the page's meters (1 RCU each), not a read of the whole account.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnConsumedCapacity};

use super::capacity::spend_read;
use super::errors::{internal, sdk_error};
use super::keys::{Item, ItemKey, SORT_KEY};
use super::schema::{READING_AT_ATTRIBUTE, READING_VALUE_ATTRIBUTE, READINGS_ATTRIBUTE};
use super::table::Table;
use crate::domain::meter::{AccountId, Meter, ReadingValue, Timestamp};
use crate::store::error::StoreError;

/// How often a batch's unprocessed keys are asked for again before the page is given up as unavailable.
const BATCH_ATTEMPTS: usize = 5;

/// The readings of one table's meters, a page at a time.
#[derive(Debug, Clone)]
pub(super) struct PageReadings {
    table: Table,
}

/// What readings set on a meter.
struct ReadingFields {
    value: Option<ReadingValue>,
    at: Option<Timestamp>,
    readings: u64,
}

impl PageReadings {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    /// Sets each of `meters`' readings to what its item holds now. A meter whose item is gone (deleted
    /// since the listing's version) keeps what the listing holds: the page is as of that version.
    pub(super) async fn refresh(
        &self,
        account: &AccountId,
        meters: &mut [Meter],
    ) -> Result<(), StoreError> {
        if meters.is_empty() {
            return Ok(());
        }
        let mut fresh = self.read(account, meters).await?;
        for meter in meters.iter_mut() {
            if let Some(fields) = fresh.remove(&meter.id.get()) {
                meter.last_reading_value = fields.value;
                meter.last_reading_at = fields.at;
                meter.readings = fields.readings;
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        account: &AccountId,
        meters: &[Meter],
    ) -> Result<HashMap<i64, ReadingFields>, StoreError> {
        let keys = meters
            .iter()
            .map(|meter| ItemKey::Meter(*account, meter.id).item())
            .collect();
        let names = HashMap::from([
            ("#id".to_owned(), SORT_KEY.to_owned()),
            ("#value".to_owned(), READING_VALUE_ATTRIBUTE.to_owned()),
            ("#at".to_owned(), READING_AT_ATTRIBUTE.to_owned()),
            ("#readings".to_owned(), READINGS_ATTRIBUTE.to_owned()),
        ]);
        let mut asked = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .projection_expression("#id, #value, #at, #readings")
            .set_expression_attribute_names(Some(names))
            .consistent_read(true)
            .build()
            .map_err(internal)?;
        let mut found = HashMap::new();
        for _ in 0..BATCH_ATTEMPTS {
            let answer = self
                .table
                .client()
                .batch_get_item()
                .request_items(self.table.name(), asked)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(sdk_error)?;
            for consumed in answer.consumed_capacity() {
                spend_read(Some(consumed));
            }
            for item in answer
                .responses()
                .and_then(|tables| tables.get(self.table.name()))
                .into_iter()
                .flatten()
            {
                let (id, fields) = reading_fields(item)?;
                found.insert(id, fields);
            }
            match answer
                .unprocessed_keys()
                .and_then(|tables| tables.get(self.table.name()))
            {
                Some(left) if !left.keys().is_empty() => {
                    asked = left.clone();
                    // DynamoDB leaves keys unprocessed when the partition is busy: give it a moment.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                _ => return Ok(found),
            }
        }
        Err(StoreError::Unavailable(
            "the page's readings were not all read".into(),
        ))
    }
}

fn reading_fields(item: &Item) -> Result<(i64, ReadingFields), StoreError> {
    let number = |name: &str| -> Result<Option<&str>, StoreError> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => Ok(Some(n)),
            Some(_) => Err(internal(format!("`{name}` is not a number"))),
        }
    };
    let id = number(SORT_KEY)?
        .ok_or_else(|| internal("an item without its id"))?
        .parse()
        .map_err(internal)?;
    // An item written before readings came has no count, which reads as 0.
    let readings = number(READINGS_ATTRIBUTE)?
        .map_or(Ok(0), str::parse)
        .map_err(internal)?;
    let value = item
        .get(READING_VALUE_ATTRIBUTE)
        .cloned()
        .map(serde_dynamo::from_attribute_value)
        .transpose()
        .map_err(internal)?;
    let at = item
        .get(READING_AT_ATTRIBUTE)
        .cloned()
        .map(serde_dynamo::from_attribute_value)
        .transpose()
        .map_err(internal)?;
    Ok((
        id,
        ReadingFields {
            value,
            at,
            readings,
        },
    ))
}
