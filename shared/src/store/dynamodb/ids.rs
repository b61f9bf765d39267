//! Ids: one counter (`ItemKey::Counter`) hands them out in blocks; each process reserves a block of ids
//! with one write, so no item is written by every create.

use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};

use super::capacity::spend_write;
use super::errors::{internal, sdk_error};
use super::items::number;
use super::keys::ItemKey;
use super::schema::COUNTER_ATTRIBUTE;
use super::table::Table;
use crate::domain::meter::MeterId;
use crate::store::error::StoreError;

/// Ids a process reserves with one counter write. Ids a process does not use before it ends are never
/// handed out: ids are unique and never reused, not dense.
pub const ID_BLOCK: i64 = 100;
/// The highest id an import may bring: the other half of the id space stays for blocks, so the counter
/// can never be raised to where no block fits below `i64::MAX`.
pub const MAX_IMPORTED_ID: i64 = i64::MAX / 2;

/// The ids this process reserved and has not handed out: `next..=last`.
#[derive(Debug, Default)]
struct IdBlock {
    next: i64,
    last: i64,
}

/// The id counter of one table, and this process's block of ids, shared by its requests.
#[derive(Debug)]
pub(super) struct IdBlocks {
    table: Table,
    block: tokio::sync::Mutex<IdBlock>,
}

impl IdBlocks {
    pub(super) fn new(table: Table) -> Self {
        Self {
            table,
            block: tokio::sync::Mutex::default(),
        }
    }

    /// The next id of this process's block, reserving a new block when it is used up.
    pub(super) async fn next(&self) -> Result<MeterId, StoreError> {
        let mut block = self.block.lock().await;
        if block.next == 0 || block.next > block.last {
            let last = self.reserve(ID_BLOCK).await?;
            *block = IdBlock {
                next: last - ID_BLOCK + 1,
                last,
            };
        }
        let id = MeterId::new(block.next).map_err(internal)?;
        block.next += 1;
        Ok(id)
    }

    /// Raises the id counter by `count` and returns its new value: the ids up to it are the caller's.
    async fn reserve(&self, count: i64) -> Result<i64, StoreError> {
        let counter = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(ItemKey::Counter.item()))
            .update_expression("ADD #last :count")
            // Only while the block fits below i64::MAX: a counter past that is never moved further.
            .condition_expression("attribute_not_exists(#last) OR #last <= :room")
            .expression_attribute_names("#last", COUNTER_ATTRIBUTE)
            .expression_attribute_values(":count", number(count))
            .expression_attribute_values(":room", number(i64::MAX - count))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|error| {
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
                {
                    internal(format!(
                        "ids are exhausted: the id counter has no block of {count} ids left below {}; \
                         it was left as it was",
                        i64::MAX
                    ))
                } else {
                    sdk_error(error)
                }
            })?;
        spend_write(counter.consumed_capacity());
        counter
            .attributes()
            .and_then(|item| item.get(COUNTER_ATTRIBUTE))
            .and_then(|value| value.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| internal("the id counter returned no id"))
    }

    /// Sets the id counter to `floor` unless it is already there or past it (an import, whose ids no
    /// create may take); returns the counter.
    pub(super) async fn raise_to(&self, floor: i64) -> Result<i64, StoreError> {
        let raised = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(ItemKey::Counter.item()))
            .update_expression("SET #last = :floor")
            .condition_expression("attribute_not_exists(#last) OR #last < :floor")
            .expression_attribute_names("#last", COUNTER_ATTRIBUTE)
            .expression_attribute_values(":floor", number(floor))
            .send()
            .await;
        match raised {
            Ok(_) => Ok(floor),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // Already past the floor: reserving nothing reads it.
                self.reserve(0).await
            }
            Err(error) => Err(sdk_error(error)),
        }
    }
}
