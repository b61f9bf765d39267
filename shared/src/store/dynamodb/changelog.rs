//! The account's change log: when a write starts the head's recent changes afresh (`transaction`), the
//! window it closes is kept, in the same transaction, as one log item in the account's partition. The log
//! and the head's recent changes together name every meter written after any list version the log reaches
//! back to, with its version now, so a listing of that version (a snapshot, or one a process held through
//! a quiet spell) is brought current by reading only those meters (`refresh`).
//!
//! A log item sits at an id below every i64 (`LOG_BASE` minus the version its window ends at), so no meter
//! key, tombstone or head can meet it, and nothing that parses ids as meter ids reads it as one. It holds
//! its window's `r<id>` entries as the head held them, where it started (`recent_since`) and where it ended
//! (`log_until`), and expires after `LOG_DAYS`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};

use super::capacity::spend_read;
use super::client::Table;
use super::errors::{internal, sdk_error};
use super::ids::{Head, Recent, recent_entries, recent_entry_id};
use super::items::Item;
use super::schema::{EXPIRES_AT_ATTRIBUTE, LIST_VERSION_ATTRIBUTE, RECENT_SINCE_ATTRIBUTE};
use crate::domain::meter::AccountId;
use crate::store::error::StoreError;

/// Log items' ids are `LOG_BASE - until`: below i64::MIN for every version, and newer windows lower.
const LOG_BASE: i128 = -10_000_000_000_000_000_000;
/// Where a window ends, on its log item.
const LOG_UNTIL_ATTRIBUTE: &str = "log_until";
/// How long a closed window is kept: a listing older than the log reaches is read whole (or from a newer
/// snapshot).
pub const LOG_DAYS: i64 = 14;
/// The most writes a listing is brought current over from the log: further behind, a snapshot or a whole
/// read costs less than the log and the meters it names.
pub const MAX_LOG_WRITES: u64 = 20_000;

fn log_id(until: u64) -> AttributeValue {
    AttributeValue::N((LOG_BASE - i128::from(until)).to_string())
}

/// The write that keeps the window a head held (its item as a refused write returned it) as a log item
/// ending at the head's list version; `None` for a head from before recent changes, which has no window.
pub(super) fn closed_window(
    table: &str,
    account: &AccountId,
    head: &Item,
    now: i64,
) -> Result<Option<TransactWriteItem>, StoreError> {
    let (Some(since), Some(until)) = (
        head.get(RECENT_SINCE_ATTRIBUTE),
        head.get(LIST_VERSION_ATTRIBUTE),
    ) else {
        return Ok(None);
    };
    let until: u64 = until.as_n().ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut item: Item = head
        .iter()
        .filter(|(name, _)| recent_entry_id(name).is_some())
        .map(|(name, version)| (name.clone(), version.clone()))
        .collect();
    item.insert("account_id".into(), AttributeValue::S(account.to_string()));
    item.insert("id".into(), log_id(until));
    item.insert(RECENT_SINCE_ATTRIBUTE.into(), since.clone());
    item.insert(
        LOG_UNTIL_ATTRIBUTE.into(),
        AttributeValue::N(until.to_string()),
    );
    item.insert(
        EXPIRES_AT_ATTRIBUTE.into(),
        AttributeValue::N((now + LOG_DAYS * 86_400).to_string()),
    );
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(internal)?;
    Ok(Some(TransactWriteItem::builder().put(put).build()))
}

impl Table {
    /// Every meter written after list version `held`, with its version now (0: deleted), from the head's
    /// recent changes and, for the writes before them, the log; `None` when these do not reach back to
    /// `held` (a head from before recent changes, an expired window, more than `MAX_LOG_WRITES` behind) or
    /// `held` is ahead of the head (a table restored to an earlier point).
    pub(super) async fn changes_since(
        &self,
        account: &AccountId,
        held: u64,
        head: &Head,
    ) -> Result<Option<HashMap<i64, u64>>, StoreError> {
        // A listing at the head's version is current, whatever the head keeps (a snapshot written just after
        // an import, whose recount leaves the head without recent changes).
        if held == head.version {
            return Ok(Some(HashMap::new()));
        }
        let Some(recent) = &head.recent else {
            return Ok(None);
        };
        if held > head.version {
            return Ok(None);
        }
        if held >= recent.since {
            return Ok(Some(recent.versions.clone()));
        }
        if recent.since - held > MAX_LOG_WRITES {
            return Ok(None);
        }
        let mut windows = self.windows_after(account, held).await?;
        // A window closed after the head was read holds writes the head's version does not count yet.
        windows.retain(|(_, until)| *until <= recent.since);
        windows.sort_by_key(|(_, until)| *until);
        // The windows must follow one another from at or before `held` up to the head's.
        let mut reached = match windows.first() {
            Some((window, _)) if window.since <= held => window.since,
            _ => return Ok(None),
        };
        let mut versions = HashMap::new();
        for (window, until) in windows {
            if window.since != reached {
                return Ok(None);
            }
            versions.extend(window.versions);
            reached = until;
        }
        if reached != recent.since {
            return Ok(None);
        }
        versions.extend(recent.versions.iter().map(|(&id, &version)| (id, version)));
        Ok(Some(versions))
    }

    /// The account's log items whose window ends after `held`, read strongly consistently: each window
    /// and where it ends.
    async fn windows_after(
        &self,
        account: &AccountId,
        held: u64,
    ) -> Result<Vec<(Recent, u64)>, StoreError> {
        let mut windows = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression(
                    "account_id = :account AND id BETWEEN :lowest AND :highest",
                )
                .expression_attribute_values(":account", AttributeValue::S(account.to_string()))
                .expression_attribute_values(":lowest", log_id(u64::MAX))
                .expression_attribute_values(":highest", log_id(held + 1))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(sdk_error)?;
            spend_read(page.consumed_capacity());
            for item in page.items() {
                let figure = |name: &str| {
                    item.get(name)
                        .and_then(|value| value.as_n().ok())
                        .and_then(|n| n.parse::<u64>().ok())
                        .ok_or_else(|| internal(format!("a change log item without {name}")))
                };
                let window = Recent {
                    since: figure(RECENT_SINCE_ATTRIBUTE)?,
                    versions: recent_entries(item),
                };
                windows.push((window, figure(LOG_UNTIL_ATTRIBUTE)?));
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(windows);
            }
        }
    }
}
