//! The production store: one DynamoDB table, partition key `account_id` (S), sort key `id` (N), one item per
//! meter with attributes named as the JSON fields (unset fields absent). Beside the meters, in the same
//! table (README, "DynamoDB"):
//! - each account's head at id 0: its meter count and a list version that every meter write advances in
//!   the same transaction, so a list knows `count` without reading the account and can tell whether the
//!   listing this process holds is still current;
//! - the id counter, under a partition key that is not a UUID: each process reserves a block of ids with
//!   one write, so no item is written by every create;
//! - two local secondary indexes (strongly consistent, unlike global ones) that hold the account's meters
//!   in name and in creation order, so the first pages of those sorts read only the page;
//! - a keys-only global index on `id` that tells another account's meter (403) from no meter (404).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, Delete,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, Put, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TransactWriteItem, Update,
};
use futures::{StreamExt, TryStreamExt};

use super::{
    BoxError, Claim, IdempotencyRecord, IfMatch, MeterStore, RememberedAnswer, StoreError,
    read_only_mismatch,
};
use crate::list::{ListPage, ListQuery, SortField, SortOrder};
use crate::listing::{DEFAULT_CACHE_BYTES, Listing, ListingCache};
use crate::meter::{
    self, AccountId, Meter, MeterChanges, MeterId, NewMeter, ReadOnlyEcho, Timestamp,
    VERSION_ATTRIBUTE,
};
use crate::telemetry::{spend_read, spend_write};

type Item = HashMap<String, AttributeValue>;

/// The keys-only global secondary index on `id`.
pub const ID_INDEX: &str = "id-index";
/// The local secondary indexes of the sorts whose first pages are read without the account: by name
/// (lower-cased, as the sort compares it) and by creation time (fixed-width, so text order is time order).
pub const NAME_INDEX: &str = "name-index";
pub const CREATED_INDEX: &str = "created-index";
const NAME_SORT_ATTRIBUTE: &str = "sort_name";
const CREATED_SORT_ATTRIBUTE: &str = "sort_created";
/// The counter item's partition key: not a UUID, so it can never collide with an account.
pub const COUNTER_PARTITION: &str = "#meter-id-counter";
pub const COUNTER_ATTRIBUTE: &str = "last_id";
/// Ids a process reserves with one counter write. Ids a process does not use before it ends are never
/// handed out: ids are unique and never reused, not dense.
pub const ID_BLOCK: i64 = 100;
/// The account's head: its sort key (meter ids are positive), meter count and list version.
const HEAD_ID: i64 = 0;
pub const COUNT_ATTRIBUTE: &str = "meter_count";
pub const LIST_VERSION_ATTRIBUTE: &str = "list_version";
const MAX_SEGMENTS: usize = 32;
const SEGMENTS_IN_FLIGHT: usize = 8;
/// Attempts of a transaction that met another on the same account head.
const TRANSACTION_ATTEMPTS: u32 = 6;
/// Idempotency records' partition keys begin with this; accounts are UUIDs, so they never do.
const IDEMPOTENCY_PREFIX: &str = "#idempotency#";
/// The mark each update leaves on the item, to recognise its own write after a lost answer.
const WRITE_TOKEN_ATTRIBUTE: &str = "last_write";
/// Attempts of a delete, as the SDK's retry configuration gives other calls.
const DELETE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    listings: Arc<ListingCache>,
    ids: Arc<tokio::sync::Mutex<IdBlock>>,
    tuning: ListTuning,
}

/// Where a list changes how it reads. The defaults suit accounts of any size; tests shrink them so that
/// every way of reading is taken by a small account.
#[derive(Debug, Clone, Copy)]
pub struct ListTuning {
    /// A list whose page lies within this many meters of either end of an indexed order reads that end
    /// only; any other list reads the account's listing (or uses the one this process holds).
    pub window_meters: usize,
    /// A listing is read in parallel segments of about this many meters, at most `SEGMENTS_IN_FLIGHT` at
    /// once: DynamoDB serves each segment from its own start, rather than one long chain of 1 MB pages.
    pub segment_meters: usize,
}

impl Default for ListTuning {
    fn default() -> Self {
        Self {
            window_meters: 1_000,
            segment_meters: 2_500,
        }
    }
}

/// The ids this process reserved and has not handed out: `next..=last`.
#[derive(Debug, Default)]
struct IdBlock {
    next: i64,
    last: i64,
}

/// An account's head: how many meters it has, and the version of its listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Head {
    count: usize,
    version: u64,
}

/// Why a meter write's transaction did not land.
enum Refused {
    /// The meter item's condition failed; the item as it was, if there was one.
    Condition(Option<Item>),
    Store(StoreError),
}

impl DynamoDbStore {
    /// Wraps a client built once per process (see `lambda::dynamodb_client`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            listings: Arc::new(ListingCache::new(DEFAULT_CACHE_BYTES)),
            ids: Arc::default(),
            tuning: ListTuning::default(),
        }
    }

    pub fn with_list_tuning(self, tuning: ListTuning) -> Self {
        Self { tuning, ..self }
    }

    /// Keeps at most `bytes` of account listings in this process (by their estimate).
    pub fn with_listing_budget(self, bytes: usize) -> Self {
        Self {
            listings: Arc::new(ListingCache::new(bytes)),
            ..self
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table as the SAM template declares it, unless it exists (local development and tests).
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(error) => return Err(sdk_error(error)),
        }
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
        };
        let attribute = |name: &str, kind| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(ID_INDEX)
            .key_schema(key("id", KeyType::Hash).map_err(internal)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(internal)?;
        let sort_index = |name: &str, attribute: &str| {
            LocalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key("account_id", KeyType::Hash)?)
                .key_schema(key(attribute, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("account_id", KeyType::Hash).map_err(internal)?)
            .key_schema(key("id", KeyType::Range).map_err(internal)?)
            .attribute_definitions(
                attribute("account_id", ScalarAttributeType::S).map_err(internal)?,
            )
            .attribute_definitions(attribute("id", ScalarAttributeType::N).map_err(internal)?)
            .attribute_definitions(
                attribute(NAME_SORT_ATTRIBUTE, ScalarAttributeType::S).map_err(internal)?,
            )
            .attribute_definitions(
                attribute(CREATED_SORT_ATTRIBUTE, ScalarAttributeType::S).map_err(internal)?,
            )
            .global_secondary_indexes(index)
            .local_secondary_indexes(sort_index(NAME_INDEX, NAME_SORT_ATTRIBUTE).map_err(internal)?)
            .local_secondary_indexes(
                sort_index(CREATED_INDEX, CREATED_SORT_ATTRIBUTE).map_err(internal)?,
            )
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// After a miss in the caller's account: 403 if the id lives in another account, else 404. The index
    /// is eventually consistent, so it may still list a meter of the caller's own account that was just
    /// deleted: that is 404 too.
    async fn missing(&self, account: &AccountId, id: MeterId) -> Result<StoreError, StoreError> {
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ID_INDEX)
            .key_condition_expression("#id = :id")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", number(id.get()))
            .limit(1)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_read(found.consumed_capacity());
        let owner = found
            .items()
            .first()
            .and_then(|item| item.get("account_id"))
            .and_then(|owner| owner.as_s().ok());
        Ok(match owner {
            Some(owner) if *owner != account.to_string() => StoreError::OtherAccount(id),
            _ => StoreError::NotFound(id),
        })
    }

    fn key(account: &AccountId, id: MeterId) -> Item {
        HashMap::from([
            ("account_id".into(), AttributeValue::S(account.to_string())),
            ("id".into(), number(id.get())),
        ])
    }
}

#[async_trait]
impl MeterStore for DynamoDbStore {
    async fn create(&self, account: &AccountId, new: NewMeter) -> Result<Meter, StoreError> {
        let id = self.next_id().await?;
        let meter = Meter::create(id, *account, new, meter::now());
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&meter)?))
            // Ids are never handed out twice, so an item under this key is either this request's own
            // earlier attempt (its answer lost, the SDK retried) or someone writing the table by hand.
            .condition_expression("attribute_not_exists(account_id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        match self
            .write_meter(account, TransactWriteItem::builder().put(put).build(), 1)
            .await
        {
            Ok(()) => Ok(meter),
            Err(Refused::Condition(Some(stored))) if from_item(stored.clone())? == meter => {
                Ok(meter)
            }
            Err(Refused::Condition(_)) => Err(internal(format!(
                "meter {id} was already written by another hand"
            ))),
            Err(Refused::Store(error)) => Err(error),
        }
    }

    async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError> {
        match self.read_meter(account, id).await? {
            Some(meter) => Ok(meter),
            None => Err(self.missing(account, id).await?),
        }
    }

    async fn list(&self, account: &AccountId, query: &ListQuery) -> Result<ListPage, StoreError> {
        // Read first, so that a listing read after it and cached under its version can only be newer
        // than that version says, never older.
        let Some(head) = self.head(account).await? else {
            // An account that never had a meter (or a table not yet migrated, see scripts/import).
            return Ok(self.read_listing(account, None).await?.page(query));
        };
        if let Some(listing) = self.listings.get(account, head.version) {
            return Ok(listing.page(query));
        }
        if let Some(window) = Window::plan(query, head.count, self.tuning.window_meters) {
            return self.read_window(account, query, window, head.count).await;
        }
        let listing = Arc::new(self.read_listing(account, Some(head.count)).await?);
        self.listings
            .put(account, head.version, Arc::clone(&listing));
        Ok(listing.page(query))
    }

    async fn update(
        &self,
        account: &AccountId,
        id: MeterId,
        changes: MeterChanges,
        read_only: ReadOnlyEcho,
        if_match: IfMatch,
    ) -> Result<Meter, StoreError> {
        // Read, check and write on the condition that the version read is still the stored one: the
        // answer is then exactly the meter as written, and a write in between sends us round again.
        for _ in 0..TRANSACTION_ATTEMPTS {
            let stored = match self.read_meter(account, id).await? {
                Some(stored) => stored,
                None => return Err(self.missing(account, id).await?),
            };
            if !if_match.allows(stored.version) {
                return Err(StoreError::PreconditionFailed(id));
            }
            if let Some(mismatch) = read_only_mismatch(&read_only, &stored) {
                return Err(mismatch);
            }
            let updated = stored.with_changes(&changes, meter::now());
            // This write's own mark: if its answer is lost and the SDK's retry fails its condition
            // because the first attempt already landed, the item carries the mark.
            let write_token = uuid::Uuid::new_v4().to_string();
            let write = self.update_item(account, &stored, &changes, &updated, &write_token)?;
            match self.write_meter(account, write, 0).await {
                Ok(()) => return Ok(updated),
                Err(Refused::Condition(Some(now_stored)))
                    if now_stored
                        .get(WRITE_TOKEN_ATTRIBUTE)
                        .and_then(|token| token.as_s().ok())
                        == Some(&write_token) =>
                {
                    return from_item(now_stored);
                }
                // Changed (or deleted) since it was read: read again.
                Err(Refused::Condition(_)) => continue,
                Err(Refused::Store(error)) => return Err(error),
            }
        }
        Err(StoreError::Unavailable(
            format!("meter {id} changed under every attempt to update it").into(),
        ))
    }

    async fn claim_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let record = IdempotencyRecord::claimed(fingerprint, now);
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idempotency_item(account, key, &record)?))
            // Free, or only an expired record (TTL deletes lazily): of concurrent claims exactly one wins.
            .condition_expression("attribute_not_exists(account_id) OR expires_at < :now")
            .expression_attribute_values(":now", number(now.timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match claimed {
            Ok(output) => {
                spend_write(output.consumed_capacity());
                Ok(Claim::Claimed)
            }
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let held = failed
                        .item()
                        .ok_or_else(|| internal("a held idempotency key came back empty"))?;
                    Ok(idempotency_record(held.clone())?.claim_against(fingerprint))
                }
                _ => Err(sdk_error(error)),
            },
        }
    }

    async fn complete_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        answer: &RememberedAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let record = IdempotencyRecord::completed(fingerprint, answer, now);
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idempotency_item(account, key, &record)?))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_write(written.consumed_capacity());
        Ok(())
    }

    async fn release_idempotent(&self, account: &AccountId, key: &str) -> Result<(), StoreError> {
        let released = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(account, key)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_write(released.consumed_capacity());
        Ok(())
    }

    async fn delete(
        &self,
        account: &AccountId,
        id: MeterId,
        if_match: IfMatch,
    ) -> Result<(), StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut condition = "attribute_exists(account_id)".to_owned();
        if let Some(version) = version_condition(&if_match, &mut names, &mut values) {
            condition.push_str(&format!(" AND {version}"));
        }
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(account, id)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names).filter(|names| !names.is_empty()))
            .set_expression_attribute_values(Some(values).filter(|values| !values.is_empty()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        let delete = TransactWriteItem::builder().delete(delete).build();
        // Retried here rather than by the SDK: after an attempt whose outcome is unknown (no answer), a
        // retry that finds no item means that attempt deleted it.
        let mut outcome_unknown = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self
                .try_write_meter(account, delete.clone(), -1, false)
                .await
            {
                Ok(()) => return Ok(()),
                // The meter is there: only its version can have failed the condition.
                Err(Refused::Condition(Some(_))) => return Err(StoreError::PreconditionFailed(id)),
                Err(Refused::Condition(None)) => {
                    return match self.missing(account, id).await? {
                        StoreError::NotFound(_) if outcome_unknown => Ok(()),
                        missing => Err(missing),
                    };
                }
                Err(Refused::Store(failure)) => failure,
            };
            if !matches!(failure, StoreError::Unavailable(_)) || attempt == DELETE_ATTEMPTS {
                return Err(failure);
            }
            outcome_unknown = true;
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
    }
}

impl DynamoDbStore {
    /// The next id of this process's block, reserving a new block when it is used up.
    async fn next_id(&self) -> Result<MeterId, StoreError> {
        let mut block = self.ids.lock().await;
        if block.next == 0 || block.next > block.last {
            let last = self.reserve_ids(ID_BLOCK).await?;
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
    async fn reserve_ids(&self, count: i64) -> Result<i64, StoreError> {
        let counter = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(counter_key()))
            .update_expression("ADD #last :count")
            .expression_attribute_names("#last", COUNTER_ATTRIBUTE)
            .expression_attribute_values(":count", number(count))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_write(counter.consumed_capacity());
        counter
            .attributes()
            .and_then(|item| item.get(COUNTER_ATTRIBUTE))
            .and_then(|value| value.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| internal("the id counter returned no id"))
    }

    async fn read_meter(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<Option<Meter>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(account, id)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_read(output.consumed_capacity());
        output.item.map(from_item).transpose()
    }

    /// The account's head, read strongly consistently; `None` if the account never had a meter.
    async fn head(&self, account: &AccountId) -> Result<Option<Head>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(head_key(account)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_read(output.consumed_capacity());
        let Some(item) = output.item else {
            return Ok(None);
        };
        let figure = |name: &str| {
            item.get(name)
                .and_then(|value| value.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok(Some(Head {
            count: figure(COUNT_ATTRIBUTE).max(0) as usize,
            version: figure(LIST_VERSION_ATTRIBUTE) as u64,
        }))
    }

    /// The update of a meter read as `stored`: sets and removes only the fields in `changes`, on the
    /// condition that the stored version is still the one read.
    fn update_item(
        &self,
        account: &AccountId,
        stored: &Meter,
        changes: &MeterChanges,
        updated: &Meter,
        write_token: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        names.insert("#write".into(), WRITE_TOKEN_ATTRIBUTE.into());
        values.insert(":write".into(), AttributeValue::S(write_token.to_owned()));
        names.insert("#next".into(), VERSION_ATTRIBUTE.into());
        values.insert(
            ":next".into(),
            AttributeValue::N(updated.version.to_string()),
        );
        let mut sets = vec!["#write = :write".to_owned(), "#next = :next".to_owned()];
        let mut removes = Vec::new();
        // Fields to clear serialise as NULL and become REMOVE; the rest are set.
        let mut changed: Item = serde_dynamo::to_item(changes).map_err(internal)?;
        changed.insert(
            "updated_at".into(),
            serde_dynamo::to_attribute_value(updated.updated_at).map_err(internal)?,
        );
        if changes.name.is_some() {
            changed.insert(NAME_SORT_ATTRIBUTE.into(), name_sort(updated));
        }
        for (n, (field, value)) in changed.into_iter().enumerate() {
            names.insert(format!("#c{n}"), field);
            if value.is_null() {
                removes.push(format!("#c{n}"));
            } else {
                values.insert(format!(":c{n}"), value);
                sets.push(format!("#c{n} = :c{n}"));
            }
        }
        let read = IfMatch::Versions(vec![stored.version]);
        let mut condition = "attribute_exists(account_id)".to_owned();
        if let Some(version) = version_condition(&read, &mut names, &mut values) {
            condition.push_str(&format!(" AND {version}"));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(account, stored.id)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Writes a meter and, in the same transaction, moves the account's head: its count by
    /// `count_change`, its list version by one. A transaction that met another on the same head is tried
    /// again.
    async fn write_meter(
        &self,
        account: &AccountId,
        write: TransactWriteItem,
        count_change: i64,
    ) -> Result<(), Refused> {
        self.try_write_meter(account, write, count_change, true)
            .await
    }

    async fn try_write_meter(
        &self,
        account: &AccountId,
        write: TransactWriteItem,
        count_change: i64,
        sdk_retries: bool,
    ) -> Result<(), Refused> {
        let head = Update::builder()
            .table_name(&self.table)
            .set_key(Some(head_key(account)))
            .update_expression("ADD #count :change, #version :one")
            .expression_attribute_names("#count", COUNT_ATTRIBUTE)
            .expression_attribute_names("#version", LIST_VERSION_ATTRIBUTE)
            .expression_attribute_values(":change", number(count_change))
            .expression_attribute_values(":one", number(1))
            .build()
            .map_err(|error| Refused::Store(internal(error)))?;
        let head = TransactWriteItem::builder().update(head).build();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut call = self
                .client
                .transact_write_items()
                .transact_items(write.clone())
                .transact_items(head.clone())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .customize();
            if !sdk_retries {
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
            let any = |codes: &[&str]| {
                reasons
                    .iter()
                    .any(|reason| reason.code().is_some_and(|code| codes.contains(&code)))
            };
            if any(&["ThrottlingError", "ProvisionedThroughputExceeded"]) {
                crate::telemetry::note_store_throttled();
                return Err(Refused::Store(StoreError::Unavailable(Box::new(error))));
            }
            if !any(&["TransactionConflict"]) {
                return Err(Refused::Store(sdk_error(error)));
            }
            if attempt == TRANSACTION_ATTEMPTS {
                crate::telemetry::note_store_unavailable();
                return Err(Refused::Store(StoreError::Unavailable(Box::new(error))));
            }
            // Another write of the same account holds its head: back off a little, with jitter.
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20;
            tokio::time::sleep(std::time::Duration::from_millis((10 << attempt) + jitter)).await;
        }
    }

    /// One page of an indexed order, read from the nearer end of the index.
    async fn read_window(
        &self,
        account: &AccountId,
        query: &ListQuery,
        window: Window,
        count: usize,
    ) -> Result<ListPage, StoreError> {
        let Window { need, from_end } = window;
        if need == 0 {
            return Ok(ListPage {
                meters: Vec::new(),
                count,
            });
        }
        let index = Index::of(query.sort_by).ok_or_else(|| internal("no index for this sort"))?;
        let ascending = (query.sort_order == SortOrder::Ascending) != from_end;
        // A text sort's ties are broken by id, which no index holds: read on to the end of the tie at the
        // page's edge, then sort what was read.
        let ties = query.sort_by != SortField::ID;
        let same_key = |a: &Meter, b: &Meter| query.sort_by.key(a) == query.sort_by.key(b);
        let mut read: Vec<Meter> = Vec::new();
        let mut start = None;
        let exhausted = loop {
            let want = if read.len() < need {
                need - read.len() + usize::from(ties)
            } else {
                50
            };
            let (meters, next) = self
                .query_page(account, index, ascending, Some(want), start, None)
                .await?;
            read.extend(meters);
            start = next;
            if start.is_none() {
                break read.len() < need;
            }
            if read.len() >= need
                && (!ties || read[need..].iter().any(|m| !same_key(m, &read[need - 1])))
            {
                break false;
            }
        };
        if read.len() > need {
            let edge = read[need - 1].clone();
            let tie = read[need..]
                .iter()
                .take_while(|m| ties && same_key(m, &edge))
                .count();
            read.truncate(need + tie);
        }
        read.sort_by(|a, b| query.compare(a, b));
        let offset = (query.page - 1).saturating_mul(query.limit);
        // What was read is the start of the order, or its end; or, if the account had fewer meters than
        // its head said, all of it.
        let (first_position, count) = match (exhausted, from_end) {
            (true, _) => (0, read.len()),
            (false, false) => (0, count),
            (false, true) => (count.saturating_sub(read.len()), count),
        };
        let meters = read
            .into_iter()
            .skip(offset.saturating_sub(first_position))
            .take(query.limit)
            .collect();
        Ok(ListPage { meters, count })
    }

    /// The account's meters, read in parallel segments of its id range when it is large.
    async fn read_listing(
        &self,
        account: &AccountId,
        count: Option<usize>,
    ) -> Result<Listing, StoreError> {
        let segments = count.map_or(1, |count| {
            (count / self.tuning.segment_meters.max(1)).clamp(1, MAX_SEGMENTS)
        });
        if segments == 1 {
            return Ok(Listing::new(self.read_ids(account, 1, i64::MAX).await?));
        }
        let end = |ascending| async move {
            let (meters, _) = self
                .query_page(account, Index::Id, ascending, Some(1), None, None)
                .await?;
            Ok::<_, StoreError>(meters.first().map(|meter| meter.id.get()))
        };
        let (Some(first), Some(last)) = (end(true).await?, end(false).await?) else {
            return Ok(Listing::default());
        };
        let span = (last - first) / segments as i64 + 1;
        // The first and last segments are open-ended: a meter written while this read runs may fall outside
        // the range seen at its start (ids come in blocks, so not in creation order).
        let last_segment = segments as i64 - 1;
        let ranges = (0..=last_segment).map(|n| {
            let from = if n == 0 {
                HEAD_ID + 1
            } else {
                first + n * span
            };
            let to = if n == last_segment {
                i64::MAX
            } else {
                first + (n + 1) * span - 1
            };
            (from, to)
        });
        let parts: Vec<Vec<Meter>> = futures::stream::iter(ranges)
            .map(|(from, to)| self.read_ids(account, from, to))
            .buffered(SEGMENTS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(Listing::new(parts.into_iter().flatten().collect()))
    }

    /// The account's meters with ids `from..=to`, every 1 MB page of them.
    async fn read_ids(
        &self,
        account: &AccountId,
        from: i64,
        to: i64,
    ) -> Result<Vec<Meter>, StoreError> {
        let mut meters = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self
                .query_page(account, Index::Id, true, None, start, Some((from, to)))
                .await?;
            meters.extend(page);
            start = next;
            if start.is_none() {
                return Ok(meters);
            }
        }
    }

    /// One strongly consistent page of the account's meters in `index` order (ids `from..=to` when the
    /// index is the table's own), and where the next page starts.
    async fn query_page(
        &self,
        account: &AccountId,
        index: Index,
        ascending: bool,
        limit: Option<usize>,
        start: Option<Item>,
        ids: Option<(i64, i64)>,
    ) -> Result<(Vec<Meter>, Option<Item>), StoreError> {
        let (from, to) = ids.unwrap_or((HEAD_ID + 1, i64::MAX));
        let mut call = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.name().map(str::to_owned))
            .expression_attribute_values(":account", AttributeValue::S(account.to_string()))
            .scan_index_forward(ascending)
            .consistent_read(true)
            .set_limit(limit.map(|limit| limit.min(1_000) as i32))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        call = match index {
            // The head sits at id 0 in the account's partition; meters start at 1.
            Index::Id => call
                .key_condition_expression("account_id = :account AND id BETWEEN :from AND :to")
                .expression_attribute_values(":from", number(from))
                .expression_attribute_values(":to", number(to)),
            _ => call.key_condition_expression("account_id = :account"),
        };
        let page = call.send().await.map_err(sdk_error)?;
        spend_read(page.consumed_capacity());
        let meters = page
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((meters, page.last_evaluated_key))
    }
}

/// Where an indexed order is read from.
#[derive(Debug, Clone, Copy)]
enum Index {
    Id,
    Name,
    Created,
}

impl Index {
    fn of(field: SortField) -> Option<Self> {
        match field.name() {
            "id" => Some(Index::Id),
            "name" => Some(Index::Name),
            "created_at" => Some(Index::Created),
            _ => None,
        }
    }

    fn name(self) -> Option<&'static str> {
        match self {
            Index::Id => None,
            Index::Name => Some(NAME_INDEX),
            Index::Created => Some(CREATED_INDEX),
        }
    }
}

/// A list read from one end of an index: the first `need` meters of the order, or of its reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    need: usize,
    from_end: bool,
}

impl Window {
    /// How `query` can be answered from an end of an index, given the account's `count`; `None` if it
    /// needs the whole account (a search, a sort with no index, a page deep in the middle).
    fn plan(query: &ListQuery, count: usize, window_meters: usize) -> Option<Self> {
        if query.search.is_some() {
            return None;
        }
        Index::of(query.sort_by)?;
        let offset = (query.page - 1).saturating_mul(query.limit);
        let end = offset.saturating_add(query.limit).min(count);
        if offset >= count {
            // Past the end: an empty page, with the count the head holds.
            return Some(Self {
                need: 0,
                from_end: false,
            });
        }
        // Read from whichever end is nearer the page.
        let (from_start, from_end) = (end, count - offset);
        let nearer = if from_end < from_start {
            Self {
                need: from_end,
                from_end: true,
            }
        } else {
            Self {
                need: from_start,
                from_end: false,
            }
        };
        (nearer.need <= window_meters).then_some(nearer)
    }
}

/// The condition `If-Match` adds to a write: the version is one of those named. Items written before
/// versions existed have no version attribute, and count as version 0.
fn version_condition(
    if_match: &IfMatch,
    names: &mut HashMap<String, String>,
    values: &mut Item,
) -> Option<String> {
    let IfMatch::Versions(versions) = if_match else {
        return None;
    };
    names.insert("#version".into(), VERSION_ATTRIBUTE.into());
    if versions.is_empty() {
        // Nothing named matches this meter: a condition that no item meets.
        values.insert(":no_version".into(), number(-1));
        return Some("#version = :no_version".into());
    }
    let mut alternatives = Vec::new();
    let mut named = Vec::new();
    for (n, version) in versions.iter().take(100).enumerate() {
        if *version == 0 {
            alternatives.push("attribute_not_exists(#version)".to_owned());
        }
        values.insert(format!(":v{n}"), AttributeValue::N(version.to_string()));
        named.push(format!(":v{n}"));
    }
    alternatives.push(format!("#version IN ({})", named.join(", ")));
    Some(format!("({})", alternatives.join(" OR ")))
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Idempotency records live beside the meters under a partition key that is not a UUID, so it can never be
/// an account's; `expires_at` is the table's TTL attribute.
fn idempotency_key(account: &AccountId, key: &str) -> Item {
    HashMap::from([
        (
            "account_id".into(),
            AttributeValue::S(format!("{IDEMPOTENCY_PREFIX}{account}#{key}")),
        ),
        ("id".into(), number(0)),
    ])
}

fn idempotency_item(
    account: &AccountId,
    key: &str,
    record: &IdempotencyRecord,
) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(internal)?;
    item.retain(|_, value| !value.is_null());
    item.extend(idempotency_key(account, key));
    Ok(item)
}

fn idempotency_record(mut item: Item) -> Result<IdempotencyRecord, StoreError> {
    item.remove("account_id");
    item.remove("id");
    serde_dynamo::from_item(item).map_err(internal)
}

/// The meter's item: attributes named as its JSON fields, unset fields absent rather than NULL, and its
/// version.
pub(crate) fn to_item(meter: &Meter) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(meter).map_err(internal)?;
    item.retain(|_, value| !value.is_null());
    item.insert(
        VERSION_ATTRIBUTE.into(),
        AttributeValue::N(meter.version.to_string()),
    );
    item.insert(NAME_SORT_ATTRIBUTE.into(), name_sort(meter));
    item.insert(
        CREATED_SORT_ATTRIBUTE.into(),
        AttributeValue::S(meter.created_at.format("%Y-%m-%dT%H:%M:%S%.9f").to_string()),
    );
    Ok(item)
}

/// The name as the name index orders it: as the sort compares it.
fn name_sort(meter: &Meter) -> AttributeValue {
    AttributeValue::S(meter.name.as_str().to_lowercase())
}

fn counter_key() -> Item {
    HashMap::from([
        (
            "account_id".into(),
            AttributeValue::S(COUNTER_PARTITION.into()),
        ),
        ("id".into(), number(0)),
    ])
}

fn head_key(account: &AccountId) -> Item {
    HashMap::from([
        ("account_id".into(), AttributeValue::S(account.to_string())),
        ("id".into(), number(HEAD_ID)),
    ])
}

fn spend_write_all(capacity: &[ConsumedCapacity]) {
    for table in capacity {
        spend_write(Some(table));
    }
}

pub(crate) fn from_item(mut item: Item) -> Result<Meter, StoreError> {
    for derived in [
        NAME_SORT_ATTRIBUTE,
        CREATED_SORT_ATTRIBUTE,
        WRITE_TOKEN_ATTRIBUTE,
    ] {
        item.remove(derived);
    }
    let version = match item.remove(VERSION_ATTRIBUTE) {
        Some(AttributeValue::N(n)) => n.parse().map_err(internal)?,
        _ => 0,
    };
    let mut meter: Meter = serde_dynamo::from_item(item).map_err(internal)?;
    meter.version = version;
    Ok(meter)
}

/// Throttling, timeouts and unreachable endpoints may pass (503); everything else is a failure (500).
fn sdk_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    const THROTTLING_CODES: [&str; 3] = [
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
    ];
    const TRANSIENT_CODES: [&str; 7] = [
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
        "TransactionInProgressException",
    ];
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code)),
        _ => false,
    };
    let throttled = matches!(&error, SdkError::ServiceError(service)
        if service.err().code().is_some_and(|code| THROTTLING_CODES.contains(&code)));
    if throttled {
        crate::telemetry::note_store_throttled();
    } else if transient {
        crate::telemetry::note_store_unavailable();
    }
    let error: BoxError = Box::new(error);
    if transient {
        StoreError::Unavailable(error)
    } else {
        StoreError::Internal(error)
    }
}

fn internal(error: impl Into<BoxError>) -> StoreError {
    StoreError::Internal(error.into())
}

/// What `DynamoDbStore::import` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Meters written.
    pub imported: usize,
    /// Meters already stored exactly as given (an import run again).
    pub already_present: usize,
    /// Ids already stored with other content: left as they were.
    pub conflicts: Vec<MeterId>,
    /// The id counter afterwards: every id a create hands out from now on is above it.
    pub counter: i64,
    /// Accounts whose head was recounted.
    pub accounts: usize,
}

/// Meter writes of an import in flight at once.
const IMPORTS_IN_FLIGHT: usize = 16;

impl DynamoDbStore {
    /// Brings meters that already have ids into the table (a migration from another store or table):
    /// first raises the id counter past the highest id, so no create can take one of them; then writes
    /// each meter unless its id is taken (never overwriting); then recounts the head of every account it
    /// touched. Run it before creates resume: a create in an account between its writes and its recount
    /// would be counted twice. Running it again with the same meters changes nothing.
    pub async fn import(&self, meters: Vec<Meter>) -> Result<ImportReport, StoreError> {
        let mut report = ImportReport::default();
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
                let written = self
                    .client
                    .put_item()
                    .table_name(&self.table)
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
    async fn raise_counter(&self, floor: i64) -> Result<i64, StoreError> {
        let raised = self
            .client
            .update_item()
            .table_name(&self.table)
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
                .table_name(&self.table)
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
            .table_name(&self.table)
            .set_key(Some(head_key(account)))
            .update_expression("SET #count = :count ADD #version :one")
            .expression_attribute_names("#count", COUNT_ATTRIBUTE)
            .expression_attribute_names("#version", LIST_VERSION_ATTRIBUTE)
            .expression_attribute_values(":count", number(count as i64))
            .expression_attribute_values(":one", number(1))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let params = crate::request::QueryParams::from_pairs(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        ListQuery::parse(&params).unwrap()
    }

    fn plan(pairs: &[(&str, &str)], count: usize) -> Option<Window> {
        Window::plan(&query(pairs), count, 1_000)
    }

    #[test]
    fn the_first_pages_of_indexed_orders_read_only_the_page() {
        for sort in ["id", "name", "created_at"] {
            for order in ["asc", "desc"] {
                let first = plan(&[("sortBy", sort), ("sortOrder", order)], 50_000);
                assert_eq!(
                    first,
                    Some(Window {
                        need: 20,
                        from_end: false
                    }),
                    "{sort} {order}"
                );
            }
        }
    }

    #[test]
    fn a_page_near_the_end_is_read_from_the_end() {
        let last = plan(&[("page", "2500")], 50_000);
        assert_eq!(
            last,
            Some(Window {
                need: 20,
                from_end: true
            })
        );
        let short_last = plan(&[("page", "50"), ("limit", "21")], 1_040);
        assert_eq!(
            short_last,
            Some(Window {
                need: 11,
                from_end: true
            })
        );
        assert_eq!(
            plan(&[("page", "9")], 100),
            Some(Window {
                need: 0,
                from_end: false
            })
        );
    }

    #[test]
    fn searches_unindexed_sorts_and_deep_middle_pages_need_the_whole_account() {
        assert_eq!(plan(&[("query", "a")], 10), None);
        assert_eq!(plan(&[("sortBy", "location")], 10), None);
        assert_eq!(plan(&[("page", "1250")], 50_000), None);
    }
}
