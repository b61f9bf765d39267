//! Bringing meters that already have ids into the table (a migration, or a point-in-time restore), and
//! recounting an account's head.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use futures::{StreamExt, TryStreamExt};

use super::client::Table;
use super::errors::sdk_error;
use super::ids::MAX_IMPORTED_ID;
use super::items::{counter_key, from_item, head_key, number, to_item};
use super::schema::{
    COUNT_ATTRIBUTE, COUNTER_ATTRIBUTE, HEAD_ID, LIST_VERSION_ATTRIBUTE, RECENT_SINCE_ATTRIBUTE,
};
use crate::domain::meter::{AccountId, Meter, MeterId};
use crate::store::error::StoreError;

/// What `DynamoDbStore::import` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Meters written.
    pub imported: usize,
    /// Meters already stored exactly as given (an import run again).
    pub already_present: usize,
    /// Ids already stored with other content, in the same account or another (ids are unique across
    /// accounts): left as they were.
    pub conflicts: Vec<MeterId>,
    /// Ids above `MAX_IMPORTED_ID`, which would leave the counter no room for blocks: not imported.
    pub refused: Vec<MeterId>,
    /// The id counter afterwards: every id a create hands out from now on is above it.
    pub counter: i64,
    /// Accounts whose head was recounted.
    pub accounts: usize,
}

/// Meter writes of an import in flight at once.
const IMPORTS_IN_FLIGHT: usize = 16;

impl Table {
    /// Brings meters that already have ids into the table (a migration from another store or table):
    /// first raises the id counter past the highest id, so no create can take one of them; then writes
    /// each meter unless its id is taken (never overwriting); then recounts the head of every account it
    /// touched. Run it before creates resume: a create in an account between its writes and its recount
    /// would be counted twice. Running it again with the same meters changes nothing.
    pub async fn import(&self, meters: Vec<Meter>) -> Result<ImportReport, StoreError> {
        let mut report = ImportReport::default();
        let (meters, refused): (Vec<Meter>, Vec<Meter>) = meters
            .into_iter()
            .partition(|meter| meter.id.get() <= MAX_IMPORTED_ID);
        report.refused = refused.iter().map(|meter| meter.id).collect();
        report.refused.sort();
        let Some(highest) = meters.iter().map(|meter| meter.id.get()).max() else {
            return Ok(report);
        };
        report.counter = self.raise_counter(highest).await?;
        let accounts: std::collections::BTreeSet<AccountId> =
            meters.iter().map(|meter| meter.account_id).collect();
        let outcomes: Vec<(MeterId, Option<bool>)> = futures::stream::iter(meters)
            .map(|mut meter| async move {
                meter.version = meter.version.max(1);
                let id = meter.id;
                // The key is (account, id), so the write's own condition sees only this account: another
                // account's meter with this id is found by the id index.
                let owner = self.owner_of(id).await?;
                if owner.is_some_and(|owner| owner != meter.account_id.to_string()) {
                    return Ok((id, Some(false)));
                }
                let written = self
                    .client
                    .put_item()
                    .table_name(&self.name)
                    .set_item(Some(to_item(&meter)?))
                    .condition_expression("attribute_not_exists(id)")
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                match written {
                    Ok(_) => Ok((id, None)),
                    Err(error) => match error.as_service_error() {
                        Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                            let stored = failed.item().cloned().map(from_item).transpose()?;
                            Ok((id, Some(stored.as_ref() == Some(&meter))))
                        }
                        _ => Err(sdk_error(error)),
                    },
                }
            })
            .buffer_unordered(IMPORTS_IN_FLIGHT)
            .try_collect()
            .await?;
        for (id, outcome) in outcomes {
            match outcome {
                None => report.imported += 1,
                Some(true) => report.already_present += 1,
                Some(false) => report.conflicts.push(id),
            }
        }
        report.conflicts.sort();
        for account in &accounts {
            self.recount(account).await?;
        }
        report.accounts = accounts.len();
        Ok(report)
    }

    /// Every meter in `source`, another table of this layout (a point-in-time restore of this one, say):
    /// its accounts' meters, not its heads, counter or idempotency records.
    pub async fn meters_of_table(&self, source: &str) -> Result<Vec<Meter>, StoreError> {
        let mut meters = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(source)
                .filter_expression("id > :head AND NOT begins_with(account_id, :hash)")
                .expression_attribute_values(":head", number(HEAD_ID))
                .expression_attribute_values(":hash", AttributeValue::S("#".into()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items.unwrap_or_default() {
                meters.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(meters);
            }
        }
    }

    /// Sets the id counter to `floor` unless it is already there or past it; returns the counter.
    pub(super) async fn raise_counter(&self, floor: i64) -> Result<i64, StoreError> {
        let raised = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(counter_key()))
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
                self.reserve_ids(0).await
            }
            Err(error) => Err(sdk_error(error)),
        }
    }

    /// Counts the account's meters and writes the figure to its head, advancing its list version.
    pub async fn recount(&self, account: &AccountId) -> Result<usize, StoreError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("account_id = :account AND id > :head")
                .expression_attribute_values(":account", AttributeValue::S(account.to_string()))
                .expression_attribute_values(":head", number(HEAD_ID))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            count += page.count as usize;
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        self.client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(head_key(account)))
            // Meters imported have no entry in the recent changes: dropping them (their start) makes every
            // listing held elsewhere read the account whole, rather than miss them.
            .update_expression("SET #count = :count ADD #version :one REMOVE #since")
            .expression_attribute_names("#count", COUNT_ATTRIBUTE)
            .expression_attribute_names("#version", LIST_VERSION_ATTRIBUTE)
            .expression_attribute_names("#since", RECENT_SINCE_ATTRIBUTE)
            .expression_attribute_values(":count", number(count as i64))
            .expression_attribute_values(":one", number(1))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(count)
    }
}
