//! A meter write's transaction: the meter's own write (and what goes with it) and, atomically, its
//! account's head moved (its count, its list version, the meter's entry in its recent changes), tried again
//! when it meets another write of the same account.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::capacity::spend_write_all;
use super::changelog::closed_window;
use super::client::Table;
use super::errors::{internal, sdk_error};
use super::ids::recent_entry_id;
use super::items::{Item, head_key, number};
use super::schema::{
    COUNT_ATTRIBUTE, LIST_VERSION_ATTRIBUTE, RECENT_CAP, RECENT_COUNT_ATTRIBUTE,
    RECENT_ENTRY_PREFIX, RECENT_SINCE_ATTRIBUTE,
};
use crate::domain::meter::{AccountId, MeterId};
use crate::store::error::StoreError;
use crate::telemetry;

/// Attempts of a transaction that met another on the same account head.
pub const TRANSACTION_ATTEMPTS: u32 = 12;
/// Why a meter write's transaction did not land.
pub(super) enum Refused {
    /// The meter item's condition failed; the item as it was, if there was one.
    Condition(Option<Item>),
    Store(StoreError),
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
    fn recent_entry(self) -> (MeterId, u64) {
        match self {
            Written::Added(id, version) | Written::Changed(id, version) => (id, version),
            Written::Removed(id) => (id, 0),
        }
    }
}

/// How a write moves the head's recent changes: adds its entry, or, when they are full (or the head is
/// from before them), starts them afresh from the list version the head was at, removing the entries
/// it held.
#[derive(Debug, Clone, PartialEq)]
enum RecentChanges {
    Add,
    StartAfresh {
        seen: u64,
        entries: Vec<String>,
        /// The window closed, kept in the change log (`changelog`).
        closed: Option<Box<TransactWriteItem>>,
    },
}

/// Whether the SDK retries a transaction whose answer was lost. A delete retries itself instead, because
/// it must know that an attempt went unanswered to read a missing item as its own success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SdkRetries {
    On,
    Off,
}

/// A pause before trying again after meeting another write: a few milliseconds, longer as attempts go on
/// (at most 100 ms), jittered so that writers that met do not meet again.
pub(super) async fn contention_pause(attempt: u32) {
    let ceiling = (5u64 << attempt.min(5)).min(100);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % ceiling.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(ceiling / 2 + jitter / 2)).await;
}

impl Table {
    /// Writes a meter (the first of `writes`, whose condition decides the outcome; the rest go with it) and,
    /// in the same transaction, moves the account's head: its count as `written` says, its list version by
    /// one. A transaction that met another on the same head is tried again.
    pub(super) async fn write_meter(
        &self,
        account: &AccountId,
        writes: Vec<TransactWriteItem>,
        written: Written,
        retries: SdkRetries,
    ) -> Result<(), Refused> {
        let head_at = writes.len();
        let mut recent = RecentChanges::Add;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let head = self
                .head_update(account, written, &recent)
                .map_err(Refused::Store)?;
            let mut items = writes.clone();
            items.push(head);
            if let RecentChanges::StartAfresh {
                closed: Some(closed),
                ..
            } = &recent
            {
                items.push(TransactWriteItem::clone(closed));
            }
            let mut call = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .customize();
            if retries == SdkRetries::Off {
                call = call.config_override(
                    aws_sdk_dynamodb::config::Builder::default()
                        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()),
                );
            }
            let error = match call.send().await {
                Ok(output) => {
                    spend_write_all(output.consumed_capacity());
                    return Ok(());
                }
                Err(error) => error,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                error.as_service_error()
            else {
                return Err(Refused::Store(sdk_error(error)));
            };
            let reasons = cancelled.cancellation_reasons();
            let code = |at: usize| reasons.get(at).and_then(|reason| reason.code());
            if code(0) == Some("ConditionalCheckFailed") {
                let item = reasons.first().and_then(|reason| reason.item()).cloned();
                return Err(Refused::Condition(item));
            }
            if code(head_at) == Some("ConditionalCheckFailed") {
                if attempt >= TRANSACTION_ATTEMPTS {
                    // Other writes kept moving the head under this one: contention, not an outage.
                    return Err(Refused::Store(StoreError::Unavailable(Box::new(error))));
                }
                // The recent changes are full, from before them, or were started afresh by another write
                // since this one looked: go again from the head as the refusal found it.
                recent = match recent {
                    RecentChanges::Add => {
                        let held = reasons.get(head_at).and_then(|reason| reason.item());
                        self.restart_of(account, held)?
                    }
                    RecentChanges::StartAfresh { .. } => RecentChanges::Add,
                };
                continue;
            }
            let any = |codes: &[&str]| {
                reasons
                    .iter()
                    .any(|reason| reason.code().is_some_and(|code| codes.contains(&code)))
            };
            if any(&["ThrottlingError", "ProvisionedThroughputExceeded"]) {
                telemetry::note_store_throttled();
                return Err(Refused::Store(StoreError::Unavailable(Box::new(error))));
            }
            if !any(&["TransactionConflict"]) {
                return Err(Refused::Store(sdk_error(error)));
            }
            // Another write of the same account holds its head: contention, not an outage.
            if attempt >= TRANSACTION_ATTEMPTS {
                return Err(Refused::Store(StoreError::Unavailable(Box::new(error))));
            }
            contention_pause(attempt).await;
        }
    }

    /// The head's part of a meter write: its count as `written` says, its list version by one, and the
    /// meter's entry in its recent changes (`schema::RECENT_SINCE_ATTRIBUTE`): added, or, when `recent`
    /// says so, in recent changes started afresh.
    fn head_update(
        &self,
        account: &AccountId,
        written: Written,
        recent: &RecentChanges,
    ) -> Result<TransactWriteItem, StoreError> {
        let (id, version) = written.recent_entry();
        let own_entry = format!("{RECENT_ENTRY_PREFIX}{}", id.get());
        let update = Update::builder()
            .table_name(&self.name)
            .set_key(Some(head_key(account)))
            .expression_attribute_names("#count", COUNT_ATTRIBUTE)
            .expression_attribute_names("#version", LIST_VERSION_ATTRIBUTE)
            .expression_attribute_names("#since", RECENT_SINCE_ATTRIBUTE)
            .expression_attribute_names("#writes", RECENT_COUNT_ATTRIBUTE)
            .expression_attribute_names("#entry", &own_entry)
            .expression_attribute_values(":change", number(written.count_change()))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":entry", AttributeValue::N(version.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match recent {
            // A head that keeps recent changes, or none yet (this write makes it): add the entry while
            // fewer than RECENT_CAP writes are kept.
            RecentChanges::Add => update
                .update_expression(
                    "ADD #count :change, #version :one, #writes :one \
                     SET #since = if_not_exists(#since, :zero), #entry = :entry",
                )
                .condition_expression(
                    "(attribute_exists(#since) OR attribute_not_exists(#version)) \
                     AND (attribute_not_exists(#writes) OR #writes < :cap)",
                )
                .expression_attribute_values(":zero", number(0))
                .expression_attribute_values(":cap", number(RECENT_CAP as i64)),
            // Only from the version it saw: every write after it then has its entry.
            RecentChanges::StartAfresh { seen, entries, .. } => {
                let mut expression = "ADD #count :change, #version :one \
                                      SET #since = :seen, #writes = :one, #entry = :entry"
                    .to_owned();
                // Every entry held but this write's own, which the new one replaces.
                let others: Vec<&String> = entries.iter().filter(|e| **e != own_entry).collect();
                let stale: Vec<String> = (0..others.len()).map(|n| format!("#stale{n}")).collect();
                let mut update = update
                    .condition_expression("#version = :seen")
                    .expression_attribute_values(":seen", number(*seen as i64));
                for (name, entry) in stale.iter().zip(others) {
                    update = update.expression_attribute_names(name, entry);
                }
                if !stale.is_empty() {
                    expression.push_str(&format!(" REMOVE {}", stale.join(", ")));
                }
                update.update_expression(expression)
            }
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(internal)?)
            .build())
    }
}

impl Table {
    /// Recent changes started afresh from the head the refusal returned: from its list version, without
    /// the entries it held, which go to the change log.
    fn restart_of(
        &self,
        account: &AccountId,
        head: Option<&HashMap<String, AttributeValue>>,
    ) -> Result<RecentChanges, Refused> {
        let seen = head
            .and_then(|head| head.get(LIST_VERSION_ATTRIBUTE))
            .and_then(|version| version.as_n().ok())
            .and_then(|version| version.parse().ok())
            .unwrap_or(0);
        let entries = head
            .map(|head| {
                head.keys()
                    .filter(|name| recent_entry_id(name).is_some())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let closed = match head {
            Some(head) => closed_window(&self.name, account, head, chrono::Utc::now().timestamp())
                .map_err(Refused::Store)?
                .map(Box::new),
            None => None,
        };
        Ok(RecentChanges::StartAfresh {
            seen,
            entries,
            closed,
        })
    }
}
