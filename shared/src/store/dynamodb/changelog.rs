//! The account's change log: when a write starts the head's recent changes afresh (`transaction`), the
//! window it closes is kept, in the same transaction, as one log item (`ItemKey::LogWindow`) in the
//! account's partition. The log and the head's recent changes together name every meter written after any
//! list version the log reaches back to, with its version now, so a listing of that version (a snapshot, or
//! one a process held through a quiet spell) is brought current by reading only those meters (`refresh`).
//!
//! A log item holds its window as the head held it (`recent_since` and the `r<id>` entries), where it
//! ended (`log_until`), and expires after `LOG_DAYS`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};

use super::capacity::spend_read;
use super::errors::{internal, sdk_error};
use super::head::{Head, Recent, figure};
use super::keys::{ItemKey, SortKeys};
use super::schema::EXPIRES_AT_ATTRIBUTE;
use super::table::Table;
use crate::domain::meter::{AccountId, MeterId};
use crate::store::error::StoreError;

/// Where a window ends, on its log item.
const LOG_UNTIL_ATTRIBUTE: &str = "log_until";
/// How long a closed window is kept: a listing older than the log reaches is read whole (or from a newer
/// snapshot).
pub const LOG_DAYS: i64 = 14;
/// The most writes a listing is brought current over from the log: further behind, a snapshot or a whole
/// read costs less than the log and the meters it names.
pub const MAX_LOG_WRITES: u64 = 20_000;

/// The change logs of the accounts in one table.
#[derive(Debug, Clone)]
pub(super) struct ChangeLog {
    table: Table,
}

impl ChangeLog {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    /// The write that keeps the window `head` holds as a log item ending at its list version.
    pub(super) fn closing(
        &self,
        account: &AccountId,
        head: &Head,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = head.recent.attributes();
        item.extend(
            ItemKey::LogWindow {
                account: *account,
                until: head.version,
            }
            .item(),
        );
        item.insert(
            LOG_UNTIL_ATTRIBUTE.into(),
            AttributeValue::N(head.version.to_string()),
        );
        item.insert(
            EXPIRES_AT_ATTRIBUTE.into(),
            AttributeValue::N((now + LOG_DAYS * 86_400).to_string()),
        );
        let put = Put::builder()
            .table_name(self.table.name())
            .set_item(Some(item))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Every meter written after list version `held`, with its version now (0: deleted), from the head's
    /// recent changes and, for the writes before them, the log; `None` when these do not reach back to
    /// `held` (an expired window, a recount since, more than `MAX_LOG_WRITES` behind) or `held` is ahead
    /// of the head (a table restored to an earlier point).
    pub(super) async fn changes_since(
        &self,
        account: &AccountId,
        held: u64,
        head: &Head,
    ) -> Result<Option<HashMap<MeterId, u64>>, StoreError> {
        // A listing at the head's version is current, whatever the head keeps (a snapshot written just after
        // an import, whose recount starts the recent changes afresh).
        if held == head.version {
            return Ok(Some(HashMap::new()));
        }
        let recent = &head.recent;
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
            let query = self.table.client().query().table_name(self.table.name());
            let page = SortKeys::LogWindowsAfter(held)
                .of(account, query)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(sdk_error)?;
            spend_read(page.consumed_capacity());
            for item in page.items() {
                windows.push((Recent::of_item(item)?, figure(item, LOG_UNTIL_ATTRIBUTE)?));
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(windows);
            }
        }
    }
}
