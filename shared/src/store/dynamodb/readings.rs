//! Readings on DynamoDB: one conditional `UpdateItem` of the meter's item, nothing else. The condition
//! holds the rules: the account holds the meter (the key names the reading's own account, so no other
//! account's meter can be reached), and the reading is later than the meter's (`sort_reading`, its
//! `last_reading_at` at fixed width). The version and the account's head stay as they are, so the write is
//! the item and its two index copies (3 WCU); the item is marked `written_by_reading`, which the change
//! events' stream filter stops (every metadata write removes the mark).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
};

use super::capacity::spend_write;
use super::errors::{internal, sdk_error};
use super::items::time_sort;
use super::keys::{ItemKey, PARTITION_KEY, PRESENT, SORT_KEY};
use super::schema::{
    READING_AT_ATTRIBUTE, READING_SORT_ATTRIBUTE, READING_VALUE_ATTRIBUTE, READINGS_ATTRIBUTE,
    WRITTEN_BY_READING_ATTRIBUTE,
};
use super::table::Table;
use crate::domain::meter::AccountId;
use crate::domain::reading::Reading;
use crate::store::error::StoreError;
use crate::store::readings::Applied;

/// Every attribute a reading's write names, its key's included: what the readings function's IAM policy
/// allows it (`dynamodb:Attributes`), and nothing more (`meters-local reading-attributes`).
pub const READING_ATTRIBUTES: [&str; 7] = [
    PARTITION_KEY,
    SORT_KEY,
    READING_VALUE_ATTRIBUTE,
    READING_AT_ATTRIBUTE,
    READING_SORT_ATTRIBUTE,
    READINGS_ATTRIBUTE,
    WRITTEN_BY_READING_ATTRIBUTE,
];

/// Applies readings to the meters of one table.
#[derive(Debug, Clone)]
pub(super) struct MeterReadings {
    table: Table,
}

impl MeterReadings {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    pub(super) async fn apply(
        &self,
        account: &AccountId,
        reading: &Reading,
    ) -> Result<Applied, StoreError> {
        let names = HashMap::from([
            ("#value".to_owned(), READING_VALUE_ATTRIBUTE.to_owned()),
            ("#at".to_owned(), READING_AT_ATTRIBUTE.to_owned()),
            ("#sort".to_owned(), READING_SORT_ATTRIBUTE.to_owned()),
            ("#readings".to_owned(), READINGS_ATTRIBUTE.to_owned()),
            (
                "#by_reading".to_owned(),
                WRITTEN_BY_READING_ATTRIBUTE.to_owned(),
            ),
        ]);
        let values = HashMap::from([
            (
                ":value".to_owned(),
                serde_dynamo::to_attribute_value(reading.value).map_err(internal)?,
            ),
            (
                ":at".to_owned(),
                serde_dynamo::to_attribute_value(reading.at).map_err(internal)?,
            ),
            (":sort".to_owned(), time_sort(reading.at)),
            (":one".to_owned(), AttributeValue::N("1".into())),
            (":yes".to_owned(), AttributeValue::Bool(true)),
        ]);
        let written = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(ItemKey::Meter(*account, reading.meter_id).item()))
            .update_expression(
                "SET #value = :value, #at = :at, #sort = :sort, #by_reading = :yes ADD #readings :one",
            )
            .condition_expression(format!(
                "{PRESENT} AND (attribute_not_exists(#sort) OR #sort < :sort)"
            ))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            // A failed condition returns the item if there is one: later-or-equal reading, not a miss.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match written {
            Ok(output) => {
                spend_write(output.consumed_capacity());
                Ok(Applied::Applied)
            }
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    match failed.item() {
                        Some(_) => Ok(Applied::NotLater),
                        None => Err(StoreError::NotFound(reading.meter_id)),
                    }
                }
                _ => Err(sdk_error(error)),
            },
        }
    }
}
