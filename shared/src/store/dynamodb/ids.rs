//! Ids and heads. Ids come from one counter in blocks: each process reserves a block of ids with one write,
//! so no item is written by every create. Each account's head holds its meter count and the version of its
//! listing, which every meter write moves in the same transaction.

use std::collections::HashMap;

use super::capacity::spend_write;
use super::client::Table;
use super::errors::{internal, sdk_error};
use super::items::{counter_key, head_key, number};
use super::schema::{
    COUNT_ATTRIBUTE, COUNTER_ATTRIBUTE, LIST_VERSION_ATTRIBUTE, RECENT_ENTRY_PREFIX,
    RECENT_SINCE_ATTRIBUTE,
};
use crate::domain::meter::{AccountId, MeterId};
use crate::store::error::StoreError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};

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

/// This process's block of ids, shared by its requests.
#[derive(Debug, Default)]
pub(super) struct IdBlocks {
    block: tokio::sync::Mutex<IdBlock>,
}

impl IdBlocks {
    /// The next id of this process's block, reserving a new block when it is used up.
    pub(super) async fn next(&self, table: &Table) -> Result<MeterId, StoreError> {
        let mut block = self.block.lock().await;
        if block.next == 0 || block.next > block.last {
            let last = table.reserve_ids(ID_BLOCK).await?;
            *block = IdBlock {
                next: last - ID_BLOCK + 1,
                last,
            };
        }
        let id = MeterId::new(block.next).map_err(internal)?;
        block.next += 1;
        Ok(id)
    }
}

/// An account's head: how many meters it has, and the version of its listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Head {
    pub count: usize,
    pub version: u64,
    /// The meters written since `recent.since`, if the head keeps them (heads written before it did
    /// have none).
    pub recent: Option<Recent>,
}

/// The account's recent changes (`schema::RECENT_SINCE_ATTRIBUTE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recent {
    /// Every meter written after this list version has its entry.
    pub since: u64,
    /// Meter id → its version now; 0 for a meter deleted.
    pub versions: HashMap<i64, u64>,
}

impl Table {
    /// Raises the id counter by `count` and returns its new value: the ids up to it are the caller's.
    pub(super) async fn reserve_ids(&self, count: i64) -> Result<i64, StoreError> {
        let counter = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(counter_key()))
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

    /// The account's head, read strongly consistently; `None` if the account never had a meter.
    pub(super) async fn head(&self, account: &AccountId) -> Result<Option<Head>, StoreError> {
        let Some(item) = self.consistent_item(head_key(account)).await? else {
            return Ok(None);
        };
        let figure = |name: &str| {
            item.get(name)
                .and_then(|value| value.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
        };
        // Only a head that keeps its recent changes has `recent_since`; one from before does not, and its
        // account's listings are read whole until a write starts them.
        let recent = item.contains_key(RECENT_SINCE_ATTRIBUTE).then(|| Recent {
            since: figure(RECENT_SINCE_ATTRIBUTE) as u64,
            versions: recent_entries(&item),
        });
        Ok(Some(Head {
            count: figure(COUNT_ATTRIBUTE).max(0) as usize,
            version: figure(LIST_VERSION_ATTRIBUTE) as u64,
            recent,
        }))
    }
}

/// The meter id an attribute named `r<id>` is the recent-changes entry of; `None` for every other attribute
/// (`recent_since` and `recent_count` begin with `r` too).
pub(super) fn recent_entry_id(name: &str) -> Option<i64> {
    name.strip_prefix(RECENT_ENTRY_PREFIX)?.parse().ok()
}

/// The `r<id>` entries of a head (or a change log item): meter id → its version then.
pub(super) fn recent_entries(item: &HashMap<String, AttributeValue>) -> HashMap<i64, u64> {
    item.iter()
        .filter_map(|(name, version)| {
            Some((recent_entry_id(name)?, version.as_n().ok()?.parse().ok()?))
        })
        .collect()
}
