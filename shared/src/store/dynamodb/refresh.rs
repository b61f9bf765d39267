//! A listing of an earlier list version (one this process holds, or a snapshot), brought current: the head's
//! recent changes (`head`) and the change log before them (`changelog`) name every
//! meter written since with its version now, so the listing needs only the meters whose version it does not
//! have, read by key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity};

use super::capacity::spend_read;
use super::changelog::ChangeLog;
use super::errors::{internal, sdk_error};
use super::head::Head;
use super::items::from_item;
use super::keys::{Item, ItemKey};
use super::table::Table;
use crate::domain::meter::{AccountId, Meter, MeterId};
use crate::store::error::StoreError;
use crate::store::listing::Listing;

/// Up to this many changes are made one at a time, keeping the orders the listing has worked out; more are
/// made in one pass (`Listing::with_changes`).
const ONE_BY_ONE: usize = 64;
/// BatchGetItem reads at most 100 keys per call.
const KEYS_PER_BATCH: usize = 100;
/// BatchGetItem calls of one refresh in flight at once.
const BATCHES_IN_FLIGHT: usize = 8;

/// A listing of an earlier list version, brought current, or why not.
#[derive(Debug)]
pub(super) enum Refreshed {
    Current(Listing),
    /// The head's recent changes and the change log do not reach back to the listing's version.
    LogDoesNotReach,
    /// Brought current, it does not hold what the head counts: it was not the account's listing (a snapshot
    /// of another table, say).
    CountDisagrees {
        listed: usize,
        counted: usize,
    },
}

/// Brings listings of one table's accounts current.
#[derive(Debug, Clone)]
pub(super) struct Refresher {
    table: Table,
    log: ChangeLog,
}

impl Refresher {
    pub(super) fn new(table: Table) -> Self {
        Self {
            log: ChangeLog::new(table.clone()),
            table,
        }
    }

    /// `held` (the listing of `account` at list version `held_version`) as of `head`, or why it could not be
    /// brought current.
    /// Exact: every meter written after `held_version` has its entry, with its version now; a meter
    /// whose entry the listing already matches is left as it is, the others are read strongly
    /// consistently (a read may find one newer still, which is then what the listing holds).
    pub(super) async fn bring_current(
        &self,
        account: &AccountId,
        held: &Listing,
        held_version: u64,
        head: &Head,
    ) -> Result<Refreshed, StoreError> {
        let Some(changes) = self.log.changes_since(account, held_version, head).await? else {
            return Ok(Refreshed::LogDoesNotReach);
        };
        let mut removed = Vec::new();
        let mut stale = Vec::new();
        for (id, version) in changes {
            match (version, held.version_of(id)) {
                (0, Some(_)) => removed.push(id),
                (0, None) => {}
                (now, Some(held)) if held >= now => {}
                _ => stale.push(id),
            }
        }
        let mut fetched = self.consistent_meters(account, &stale).await?;
        // Deleted since the head was read, which counted them: the listing is a little ahead of the head,
        // which the next refresh (by versions) takes in its stride.
        let gone_since_head = stale.iter().filter(|id| !fetched.contains_key(id)).count();
        removed.extend(stale.iter().filter(|id| !fetched.contains_key(id)));
        let listing = if removed.len() + fetched.len() > ONE_BY_ONE {
            held.with_changes(fetched.into_values().collect(), &removed)
        } else {
            let mut listing = held.without_all(&removed);
            for id in stale {
                if let Some(meter) = fetched.remove(&id) {
                    listing = listing.with_meter(meter);
                }
            }
            listing
        };
        // The head counts what the account held when it was read: a listing that disagrees was not the
        // account's.
        let counted = head.count;
        Ok(if listing.len() + gone_since_head == counted {
            Refreshed::Current(listing)
        } else {
            Refreshed::CountDisagrees {
                listed: listing.len() + gone_since_head,
                counted,
            }
        })
    }

    /// The meters of `account` with these ids that exist, read strongly consistently by key, a few calls
    /// at a time (a snapshot thousands of writes behind needs tens of calls).
    async fn consistent_meters(
        &self,
        account: &AccountId,
        ids: &[MeterId],
    ) -> Result<HashMap<MeterId, Meter>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let chunks: Vec<Vec<MeterId>> = ids.chunks(KEYS_PER_BATCH).map(<[_]>::to_vec).collect();
        let batches: Vec<Vec<Meter>> = futures::stream::iter(chunks)
            .map(|batch| async move { self.consistent_batch(account, &batch).await })
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(batches
            .into_iter()
            .flatten()
            .map(|meter| (meter.id, meter))
            .collect())
    }

    /// One `BatchGetItem` of at most `KEYS_PER_BATCH` keys, asked again for what DynamoDB leaves for later.
    async fn consistent_batch(
        &self,
        account: &AccountId,
        ids: &[MeterId],
    ) -> Result<Vec<Meter>, StoreError> {
        let mut meters = Vec::with_capacity(ids.len());
        let mut keys: Vec<Item> = ids
            .iter()
            .map(|&id| ItemKey::Meter(*account, id).item())
            .collect();
        while !keys.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(internal)?;
            let output = self
                .table
                .client()
                .batch_get_item()
                .request_items(self.table.name(), request)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(sdk_error)?;
            for consumed in output.consumed_capacity() {
                spend_read(Some(consumed));
            }
            for item in output
                .responses
                .and_then(|mut tables| tables.remove(self.table.name()))
                .unwrap_or_default()
            {
                meters.push(from_item(item)?);
            }
            // What DynamoDB left for later (its capacity per call), asked again.
            keys = output
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(self.table.name()))
                .map(|left| left.keys)
                .unwrap_or_default();
        }
        Ok(meters)
    }
}
