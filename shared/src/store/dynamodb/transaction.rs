//! A meter write's transaction: the meter's own write (and what goes with it) and, atomically, its
//! account's head moved (its count, its list version, the meter's entry in its recent changes), tried again
//! when it meets another write of the same account.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};

use super::capacity::spend_write_all;
use super::changelog::ChangeLog;
use super::errors::{internal, sdk_error};
use super::head::{Head, Heads, RecentChanges, Written};
use super::keys::Item;
use super::table::Table;
use crate::domain::meter::AccountId;
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

/// Meter writes' transactions in one table: each with its account's head, and the change log's window
/// when the head's recent changes start afresh.
#[derive(Debug, Clone)]
pub(super) struct MeterTransactions {
    table: Table,
    heads: Heads,
    log: ChangeLog,
}

impl MeterTransactions {
    pub(super) fn new(table: Table) -> Self {
        Self {
            heads: Heads::new(table.clone()),
            log: ChangeLog::new(table.clone()),
            table,
        }
    }

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
        // The head seen full, and the window its recent changes close, once a write found them full.
        let mut start_afresh: Option<(Head, TransactWriteItem)> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut items = writes.clone();
            let recent = match &start_afresh {
                None => RecentChanges::Add,
                Some((seen, _)) => RecentChanges::StartAfresh(seen),
            };
            items.push(
                self.heads
                    .moved(account, written, recent)
                    .map_err(Refused::Store)?,
            );
            if let Some((_, closed)) = &start_afresh {
                items.push(closed.clone());
            }
            let mut call = self
                .table
                .client()
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
                // The recent changes are full, or were started afresh by another write since this one
                // looked: go again from the head as the refusal found it.
                start_afresh = match start_afresh {
                    None => {
                        let held = reasons.get(head_at).and_then(|reason| reason.item());
                        Some(self.start_afresh(account, held).map_err(Refused::Store)?)
                    }
                    Some(_) => None,
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

    /// The head a refusal returned, full, and the write that keeps its window in the change log.
    fn start_afresh(
        &self,
        account: &AccountId,
        refused_head: Option<&Item>,
    ) -> Result<(Head, TransactWriteItem), StoreError> {
        let head = Head::of_item(
            refused_head.ok_or_else(|| internal("a head refused a write but was not returned"))?,
        )?;
        let closed = self
            .log
            .closing(account, &head, chrono::Utc::now().timestamp())?;
        Ok((head, closed))
    }
}
