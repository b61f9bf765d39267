//! Bringing meters that already have ids into the table (a migration, or a point-in-time restore), and
//! recounting an account's head. A meter whose id was deleted in its own account comes back past the version
//! its tombstone recorded, so none of its versions, ETags or change events repeats; an id another account
//! ever held, deleted or not, is refused.

use std::sync::Arc;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use futures::{StreamExt, TryStreamExt};

use super::errors::sdk_error;
use super::head::Heads;
use super::ids::{IdBlocks, MAX_IMPORTED_ID};
use super::items::{from_item, to_item};
use super::keys::{ABSENT, Held, ItemKey, SortKeys};
use super::reads::MeterReads;
use super::schema::VERSION_ATTRIBUTE;
use super::table::Table;
use crate::domain::meter::{AccountId, Meter, MeterId};
use crate::store::error::StoreError;

/// What `DynamoDbStore::import` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Meters written.
    pub imported: usize,
    /// Of those written, meters deleted in their own account brought back (a restore): each with a version
    /// past the one it was deleted at.
    pub restored: usize,
    /// Meters already stored as given (an import run again; a restored meter then holds its newer version).
    pub already_present: usize,
    /// Ids already stored with other content, in the same account or another (ids are unique across
    /// accounts): left as they were.
    pub conflicts: Vec<MeterId>,
    /// Ids another account's deleted meter had: ids are never reused, so not imported.
    pub retired_elsewhere: Vec<MeterId>,
    /// Ids above `MAX_IMPORTED_ID`, which would leave the counter no room for blocks: not imported.
    pub refused: Vec<MeterId>,
    /// The id counter afterwards: every id a create hands out from now on is above it.
    pub counter: i64,
    /// Accounts whose head was recounted.
    pub accounts: usize,
}

/// What became of one meter of an import.
enum Outcome {
    Imported,
    Restored,
    AlreadyPresent,
    Conflict,
    RetiredElsewhere,
}

/// Meter writes of an import in flight at once.
const IMPORTS_IN_FLIGHT: usize = 16;

/// Imports into one table, and recounts of its accounts.
#[derive(Debug, Clone)]
pub(super) struct Importer {
    table: Table,
    ids: Arc<IdBlocks>,
    reads: MeterReads,
    heads: Heads,
}

impl Importer {
    pub(super) fn new(table: Table, ids: Arc<IdBlocks>) -> Self {
        Self {
            reads: MeterReads::new(table.clone()),
            heads: Heads::new(table.clone()),
            ids,
            table,
        }
    }

    /// Brings meters that already have ids into the table (a migration from another store or table):
    /// first raises the id counter past the highest id, so no create can take one of them; then writes
    /// each meter unless its id is taken (never overwriting); then recounts the head of every account it
    /// touched. Run it before creates resume: a create in an account between its writes and its recount
    /// would be counted twice. Running it again with the same meters changes nothing.
    pub(super) async fn import(&self, meters: Vec<Meter>) -> Result<ImportReport, StoreError> {
        let mut report = ImportReport::default();
        let (meters, refused): (Vec<Meter>, Vec<Meter>) = meters
            .into_iter()
            .partition(|meter| meter.id.get() <= MAX_IMPORTED_ID);
        report.refused = refused.iter().map(|meter| meter.id).collect();
        report.refused.sort();
        let Some(highest) = meters.iter().map(|meter| meter.id.get()).max() else {
            return Ok(report);
        };
        report.counter = self.ids.raise_to(highest).await?;
        let accounts: std::collections::BTreeSet<AccountId> =
            meters.iter().map(|meter| meter.account_id).collect();
        let outcomes: Vec<(MeterId, Outcome)> = futures::stream::iter(meters)
            .map(|meter| async move { Ok((meter.id, self.import_one(meter).await?)) })
            .buffer_unordered(IMPORTS_IN_FLIGHT)
            .try_collect()
            .await?;
        for (id, outcome) in outcomes {
            match outcome {
                Outcome::Imported => report.imported += 1,
                Outcome::Restored => {
                    report.imported += 1;
                    report.restored += 1;
                }
                Outcome::AlreadyPresent => report.already_present += 1,
                Outcome::Conflict => report.conflicts.push(id),
                Outcome::RetiredElsewhere => report.retired_elsewhere.push(id),
            }
        }
        report.conflicts.sort();
        report.retired_elsewhere.sort();
        for account in &accounts {
            self.recount(account).await?;
        }
        report.accounts = accounts.len();
        Ok(report)
    }

    /// One meter of an import, never overwriting anything.
    async fn import_one(&self, mut meter: Meter) -> Result<Outcome, StoreError> {
        meter.version = meter.version.max(1);
        let (id, account) = (meter.id, meter.account_id);
        // The key is (account, id), so the write's own condition sees only this account: another account's
        // meter with this id, live or deleted, is found by the id index.
        let mine = |owner: Option<String>| owner.is_none_or(|owner| owner == account.to_string());
        if !mine(self.reads.holder_of(Held::Meter(id)).await?) {
            return Ok(Outcome::Conflict);
        }
        if !mine(self.reads.holder_of(Held::Tombstone(id)).await?) {
            return Ok(Outcome::RetiredElsewhere);
        }
        let given = meter.clone();
        let deletion = self.reads.deletion(&account, id).await?;
        let deleted_at = deletion.map(|deletion| deletion.version.unwrap_or(0));
        if let Some(deleted) = deleted_at {
            meter.version = meter.version.max(deleted) + 1;
        }
        let written = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(to_item(&meter)?))
            .condition_expression(ABSENT)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match written {
            Ok(_) if deleted_at.is_some() => Ok(Outcome::Restored),
            Ok(_) => Ok(Outcome::Imported),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let stored = failed.item().cloned().map(from_item).transpose()?;
                    // The same meter, perhaps restored by an earlier run past the version given.
                    let same = stored.is_some_and(|stored| {
                        stored.version >= given.version
                            && Meter {
                                version: given.version,
                                ..stored
                            } == given
                    });
                    Ok(if same {
                        Outcome::AlreadyPresent
                    } else {
                        Outcome::Conflict
                    })
                }
                _ => Err(sdk_error(error)),
            },
        }
    }

    /// Every meter in `source`, another table of this layout (a point-in-time restore of this one, say):
    /// its accounts' meters, not its heads, tombstones, change logs, counter or idempotency records.
    pub(super) async fn meters_of_table(&self, source: &str) -> Result<Vec<Meter>, StoreError> {
        let mut meters = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .table
                .client()
                .scan()
                .table_name(source)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items.unwrap_or_default() {
                if let Some(ItemKey::Meter(..)) = ItemKey::of(&item) {
                    meters.push(from_item(item)?);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(meters);
            }
        }
    }

    /// Counts the account's meters and writes the figure to its head, at a list version past the one it
    /// was at and at least the highest version of its meters (`Heads::recounted`).
    pub(super) async fn recount(&self, account: &AccountId) -> Result<usize, StoreError> {
        let (mut count, mut highest) = (0, 0u64);
        let mut start = None;
        loop {
            let query = self.table.client().query().table_name(self.table.name());
            let page = SortKeys::AllMeters
                .of(account, query)
                .projection_expression("#version")
                .expression_attribute_names("#version", VERSION_ATTRIBUTE)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            count += page.items().len();
            for item in page.items() {
                let version = item
                    .get(VERSION_ATTRIBUTE)
                    .and_then(|v| v.as_n().ok()?.parse().ok());
                highest = highest.max(version.unwrap_or(0));
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        self.heads.recounted(account, count, highest).await?;
        Ok(count)
    }
}
