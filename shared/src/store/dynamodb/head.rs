//! The account's head (`ItemKey::Head`): its meter count, its list version, and its recent changes. Every
//! meter write moves it in the write's own transaction (`transaction`), so a list knows `count` without
//! reading the account, and can tell whether the listing a process holds is current.
//!
//! The recent changes: for each meter written since list version `recent_since`, an attribute `r<id>`
//! holding its version now (0 once deleted), and `recent_count`, the writes since. A process holding the
//! account's listing at a version from `recent_since` on brings it current by reading only the meters the
//! entries say changed (`refresh`). At `RECENT_CAP` writes, one starts them afresh and the window it closes
//! goes to the change log (`changelog`), which keeps the head under 1 KB (one write unit). Top-level
//! attributes rather than a map, so that a new account's first write can add its entry to a head that does
//! not exist yet.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::capacity::spend_write;
use super::errors::{internal, sdk_error};
use super::keys::{Item, ItemKey};
use super::table::Table;
use crate::domain::meter::{AccountId, MeterId};
use crate::store::error::StoreError;

pub const COUNT_ATTRIBUTE: &str = "meter_count";
pub const LIST_VERSION_ATTRIBUTE: &str = "list_version";
/// Writes the head's recent changes hold before one starts them afresh.
pub const RECENT_CAP: usize = 32;
pub(super) const RECENT_SINCE_ATTRIBUTE: &str = "recent_since";
const RECENT_COUNT_ATTRIBUTE: &str = "recent_count";
const RECENT_ENTRY_PREFIX: &str = "r";
/// Attempts of a recount that met a write to the same head.
const RECOUNT_ATTEMPTS: u32 = 5;

/// An account's head as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub count: usize,
    pub version: u64,
    pub recent: Recent,
}

/// A window of recent changes: the head's, or a closed one in the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recent {
    /// Every meter written after this list version has its entry.
    pub since: u64,
    /// Each meter written since, and its version now; 0 for a meter deleted.
    pub versions: HashMap<MeterId, u64>,
}

impl Head {
    /// The head in `item` (a read, or the item a refused write returned).
    pub(super) fn of_item(item: &Item) -> Result<Self, StoreError> {
        Ok(Self {
            count: usize::try_from(figure(item, COUNT_ATTRIBUTE)?).map_err(internal)?,
            version: figure(item, LIST_VERSION_ATTRIBUTE)?,
            recent: Recent::of_item(item)?,
        })
    }
}

impl Recent {
    /// The window in `item`: where it starts, and its `r<id>` entries.
    pub(super) fn of_item(item: &Item) -> Result<Self, StoreError> {
        let versions = item
            .iter()
            .filter_map(|(name, version)| {
                let id =
                    MeterId::new(name.strip_prefix(RECENT_ENTRY_PREFIX)?.parse().ok()?).ok()?;
                Some((id, version.as_n().ok()?.parse().ok()?))
            })
            .collect();
        Ok(Self {
            since: figure(item, RECENT_SINCE_ATTRIBUTE)?,
            versions,
        })
    }

    /// The window's attributes as the head holds them: `recent_since` and the `r<id>` entries.
    pub(super) fn attributes(&self) -> Item {
        let mut item: Item = self
            .versions
            .iter()
            .map(|(&id, version)| (entry_name(id), AttributeValue::N(version.to_string())))
            .collect();
        item.insert(
            RECENT_SINCE_ATTRIBUTE.into(),
            AttributeValue::N(self.since.to_string()),
        );
        item
    }
}

/// A whole number the item must hold under `name`.
pub(super) fn figure(item: &Item, name: &str) -> Result<u64, StoreError> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| internal(format!("an item without a whole number {name}")))
}

fn entry_name(id: MeterId) -> String {
    format!("{RECENT_ENTRY_PREFIX}{}", id.get())
}

/// What a meter write did to the meter (and its version now), and so to its account's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    Added(MeterId, u64),
    Changed(MeterId, u64),
    Removed(MeterId),
}

impl Written {
    fn count_change(self) -> i64 {
        match self {
            Written::Added(..) => 1,
            Written::Changed(..) => 0,
            Written::Removed(_) => -1,
        }
    }

    /// The meter's entry in the head's recent changes: its id, and its version now (0: deleted).
    fn entry(self) -> (MeterId, u64) {
        match self {
            Written::Added(id, version) | Written::Changed(id, version) => (id, version),
            Written::Removed(id) => (id, 0),
        }
    }
}

/// How a write moves the head's recent changes: adds its entry while they hold fewer than `RECENT_CAP`, or
/// starts them afresh from the head it saw (only while the head is still at that version).
#[derive(Debug, Clone, Copy)]
pub(super) enum RecentChanges<'a> {
    Add,
    StartAfresh(&'a Head),
}

/// The accounts' heads in one table.
#[derive(Debug, Clone)]
pub(super) struct Heads {
    table: Table,
}

impl Heads {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    /// The account's head, read strongly consistently; `None` if the account never had a meter.
    pub(super) async fn read(&self, account: &AccountId) -> Result<Option<Head>, StoreError> {
        self.table
            .item(&ItemKey::Head(*account))
            .await?
            .map(|item| Head::of_item(&item))
            .transpose()
    }

    /// The head's part of a meter write's transaction: its count as `written` says, its list version by
    /// one, and the meter's entry in its recent changes, moved as `recent` says.
    pub(super) fn moved(
        &self,
        account: &AccountId,
        written: Written,
        recent: RecentChanges<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let (id, version) = written.entry();
        let own_entry = entry_name(id);
        let update = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(ItemKey::Head(*account).item()))
            .expression_attribute_names("#count", COUNT_ATTRIBUTE)
            .expression_attribute_names("#version", LIST_VERSION_ATTRIBUTE)
            .expression_attribute_names("#since", RECENT_SINCE_ATTRIBUTE)
            .expression_attribute_names("#writes", RECENT_COUNT_ATTRIBUTE)
            .expression_attribute_names("#entry", &own_entry)
            .expression_attribute_values(
                ":change",
                AttributeValue::N(written.count_change().to_string()),
            )
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":entry", AttributeValue::N(version.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match recent {
            // The account's first write makes the head, its recent changes starting at version 0.
            RecentChanges::Add => update
                .update_expression(
                    "ADD #count :change, #version :one, #writes :one \
                     SET #since = if_not_exists(#since, :zero), #entry = :entry",
                )
                .condition_expression("attribute_not_exists(#writes) OR #writes < :cap")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":cap", AttributeValue::N(RECENT_CAP.to_string())),
            // Only from the version it saw: every write after it then has its entry.
            RecentChanges::StartAfresh(seen) => {
                let mut expression = "ADD #count :change, #version :one \
                                      SET #since = :seen, #writes = :one, #entry = :entry"
                    .to_owned();
                let mut update = update
                    .condition_expression("#version = :seen")
                    .expression_attribute_values(
                        ":seen",
                        AttributeValue::N(seen.version.to_string()),
                    );
                // Every entry held but this write's own, which the new one replaces.
                let stale = seen.recent.versions.keys().map(|&id| entry_name(id));
                let stale: Vec<String> = stale.filter(|entry| *entry != own_entry).collect();
                let placeholders: Vec<String> =
                    (0..stale.len()).map(|n| format!("#stale{n}")).collect();
                for (placeholder, entry) in placeholders.iter().zip(stale) {
                    update = update.expression_attribute_names(placeholder, entry);
                }
                if !placeholders.is_empty() {
                    expression.push_str(&format!(" REMOVE {}", placeholders.join(", ")));
                }
                update.update_expression(expression)
            }
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(internal)?)
            .build())
    }

    /// Sets the head to `count` meters (an import's recount) at a list version past the one it was at and at
    /// least `highest` (a meter's version never runs past its account's list version, which a snapshot's
    /// reader checks each row against), its recent changes started afresh there: the meters imported have no
    /// entry, so no listing from before is brought current past them. Returns the list version set.
    pub(super) async fn recounted(
        &self,
        account: &AccountId,
        count: usize,
        highest: u64,
    ) -> Result<u64, StoreError> {
        for _ in 0..RECOUNT_ATTEMPTS {
            let head = self.read(account).await?;
            let at = head.as_ref().map_or(0, |head| head.version);
            let version = (at + 1).max(highest);
            let mut expression =
                "SET #count = :count, #version = :version, #since = :version, #writes = :zero"
                    .to_owned();
            let mut update = self
                .table
                .client()
                .update_item()
                .table_name(self.table.name())
                .set_key(Some(ItemKey::Head(*account).item()))
                .expression_attribute_names("#count", COUNT_ATTRIBUTE)
                .expression_attribute_names("#version", LIST_VERSION_ATTRIBUTE)
                .expression_attribute_names("#since", RECENT_SINCE_ATTRIBUTE)
                .expression_attribute_names("#writes", RECENT_COUNT_ATTRIBUTE)
                .expression_attribute_values(":count", AttributeValue::N(count.to_string()))
                .expression_attribute_values(":version", AttributeValue::N(version.to_string()))
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            update = match &head {
                None => update.condition_expression("attribute_not_exists(#version)"),
                Some(head) => {
                    let entries: Vec<String> = head
                        .recent
                        .versions
                        .keys()
                        .map(|&id| entry_name(id))
                        .collect();
                    let placeholders: Vec<String> =
                        (0..entries.len()).map(|n| format!("#entry{n}")).collect();
                    for (placeholder, entry) in placeholders.iter().zip(entries) {
                        update = update.expression_attribute_names(placeholder, entry);
                    }
                    if !placeholders.is_empty() {
                        expression.push_str(&format!(" REMOVE {}", placeholders.join(", ")));
                    }
                    update
                        .condition_expression("#version = :seen")
                        .expression_attribute_values(":seen", AttributeValue::N(at.to_string()))
                }
            };
            match update.update_expression(expression).send().await {
                Ok(output) => {
                    spend_write(output.consumed_capacity());
                    return Ok(version);
                }
                // A write moved the head between the read and this one: read it again.
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(error) => return Err(sdk_error(error)),
            }
        }
        Err(StoreError::Unavailable(
            format!("the head of account {account} kept moving under its recount").into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_read_back_from_its_attributes_is_the_window_written() {
        let window = Recent {
            since: 7,
            versions: HashMap::from([(MeterId::new(3).unwrap(), 2), (MeterId::new(9).unwrap(), 0)]),
        };
        let mut item = window.attributes();
        // `recent_count` begins with `r` too, and is no entry.
        item.insert(RECENT_COUNT_ATTRIBUTE.into(), AttributeValue::N("2".into()));
        assert_eq!(Recent::of_item(&item).unwrap(), window);
    }

    #[test]
    fn a_head_without_its_figures_is_refused_rather_than_read_as_zero() {
        let item = Recent {
            since: 0,
            versions: HashMap::new(),
        }
        .attributes();
        assert!(Head::of_item(&item).is_err());
    }
}
