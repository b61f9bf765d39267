//! The production store: one DynamoDB table, partition key `account_id` (S), sort key `id` (N), one item per
//! meter with attributes named as the JSON fields (unset fields absent). Beside the meters, in the same
//! table (docs/dynamodb.md):
//! - each account's head at id 0: its meter count and a list version that every meter write advances in
//!   the same transaction, so a list knows `count` without reading the account and can tell whether the
//!   listing this process holds is still current (`ids`, `writes`);
//! - the id counter, under a partition key that is not a UUID: each process reserves a block of ids with
//!   one write, so no item is written by every create (`ids`);
//! - two local secondary indexes (strongly consistent, unlike global ones) that hold the account's meters
//!   in name and in creation order, so the first pages of those sorts read only the page (`lists`);
//! - a keys-only global index on `id` that tells another account's meter (403) from no meter (404) (`reads`);
//! - idempotency records with a TTL (`idempotency`);
//! - the account's change log: the head's recent changes as each window of them closes (`changelog`), from
//!   which a listing of an earlier version, or a snapshot of one (`cold`, `store::snapshots`), is brought
//!   current by reading only the meters written since (`refresh`);
//! - each deleted meter's tombstone, at the negated id, naming who deleted it and the version deleted
//!   (`writes`), read with the table's stream by the change events (`stream`), and kept for good: it retires
//!   the id to its account and sets where a restore's versions start (`import`).
//!
//! The table's shape is `schema`; items and keys are `items`; failures in the store's terms are `errors`.

mod capacity;
mod changelog;
mod client;
mod cold;
mod errors;
mod idempotency;
mod ids;
mod import;
mod items;
mod lists;
mod reads;
mod refresh;
mod schema;
mod stream;
mod transaction;
mod writes;

pub use changelog::{LOG_DAYS, MAX_LOG_WRITES};
pub use client::{DynamoDbConfig, Table, check_table_name, dynamodb_client};
pub use cold::SNAPSHOT_EVERY_WRITES;
pub use ids::{ID_BLOCK, MAX_IMPORTED_ID};
pub use import::ImportReport;
pub use lists::ListTuning;
pub use schema::{
    COUNT_ATTRIBUTE, COUNTER_ATTRIBUTE, COUNTER_PARTITION, CREATED_BY_ATTRIBUTE, CREATED_INDEX,
    DELETED_AT_ATTRIBUTE, DELETED_BY_ATTRIBUTE, EXPIRES_AT_ATTRIBUTE, ID_INDEX,
    LIST_VERSION_ATTRIBUTE, NAME_INDEX, RECENT_CAP, TableProperties, UPDATED_BY_ATTRIBUTE,
    table_definition,
};
pub use stream::{Deletion, meter_keys, meter_of_image};
pub use transaction::TRANSACTION_ATTEMPTS;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::WrittenBy;
use crate::domain::list::{ListPage, ListQuery};
use crate::domain::meter::{AccountId, Meter, MeterId, Timestamp};
use crate::store::error::StoreError;
use crate::store::idempotency::{Claim, IdempotencyClaim, IdempotencyCompletion, IdempotencyStore};
use crate::store::listing::{DEFAULT_CACHE_BYTES, ListingCache};
use crate::store::meters::{
    CreateMeterRequest, Created, DeleteMeterRequest, MeterStore, UpdateMeterRequest,
};
use crate::store::snapshots::ListingSnapshots;
use cold::Snapshotting;
use ids::IdBlocks;

/// The store on one table: the table, this process's listings and id block, and how lists read.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    table: Table,
    listings: Arc<ListingCache>,
    ids: Arc<IdBlocks>,
    tuning: ListTuning,
    snapshotting: Option<Arc<Snapshotting>>,
}

impl DynamoDbStore {
    /// Wraps a client built once per process (see `dynamodb_client`).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
            listings: Arc::new(ListingCache::new(DEFAULT_CACHE_BYTES)),
            ids: Arc::default(),
            tuning: ListTuning::default(),
            snapshotting: None,
        }
    }

    /// Starts the listings of accounts this process holds none of from their snapshots in `snapshots`,
    /// and keeps those snapshots near the account (`cold`).
    pub fn with_snapshots(self, snapshots: Arc<dyn ListingSnapshots>) -> Self {
        Self {
            snapshotting: Some(Arc::new(Snapshotting::new(snapshots))),
            ..self
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

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        self.table.client()
    }

    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// Creates the table as `table_definition()` declares it, unless it exists (local development, tests).
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        self.table.create_if_missing().await
    }

    /// Brings meters that already have ids into the table (`import`): the id counter is raised past them,
    /// each is written unless its id is taken, and every account touched is recounted.
    pub async fn import(&self, meters: Vec<Meter>) -> Result<ImportReport, StoreError> {
        self.table.import(meters).await
    }

    /// Every meter in `source`, another table of this layout (a point-in-time restore of this one, say).
    pub async fn meters_of_table(&self, source: &str) -> Result<Vec<Meter>, StoreError> {
        self.table.meters_of_table(source).await
    }

    /// The tombstone of meter `id`, read strongly consistently: written in the delete's own transaction, so
    /// it is there when the stream's record of the delete is; `None` for a meter removed another way.
    pub async fn deletion(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<Option<Deletion>, StoreError> {
        self.table.deletion(account, id).await
    }

    /// Reads `account` whole and writes it as its snapshot (after an import: see `cold`); `false` when
    /// this store keeps no snapshots or the account has no head. Errors: the read's, and `Unavailable`
    /// when the snapshot store did not take it.
    pub async fn write_snapshot(&self, account: &AccountId) -> Result<bool, StoreError> {
        let Some(snapshotting) = &self.snapshotting else {
            return Ok(false);
        };
        // The head first: a listing read after it is as new as its version says, or newer.
        let Some(head) = self.table.head(account).await? else {
            return Ok(false);
        };
        let listing = self
            .table
            .read_listing(self.tuning, account, Some(head.count))
            .await?;
        snapshotting
            .write_now(account, head.version, listing)
            .await?;
        Ok(true)
    }

    /// Counts the account's meters and writes the figure to its head, advancing its list version.
    pub async fn recount(&self, account: &AccountId) -> Result<usize, StoreError> {
        self.table.recount(account).await
    }
}

#[async_trait]
impl MeterStore for DynamoDbStore {
    async fn reserve_id(&self) -> Result<MeterId, StoreError> {
        self.ids.next(&self.table).await
    }

    async fn create_with_id(
        &self,
        account: &AccountId,
        create: CreateMeterRequest,
    ) -> Result<Created, StoreError> {
        self.table.create_with_id(account, create).await
    }

    async fn written_by(&self, account: &AccountId, id: MeterId) -> Result<WrittenBy, StoreError> {
        self.table.written_by(account, id).await
    }

    async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError> {
        self.table.get(account, id).await
    }

    async fn list(&self, account: &AccountId, query: &ListQuery) -> Result<ListPage, StoreError> {
        self.table
            .list(
                &self.listings,
                self.snapshotting.as_deref(),
                self.tuning,
                account,
                query,
            )
            .await
    }

    async fn update(
        &self,
        account: &AccountId,
        update: UpdateMeterRequest,
    ) -> Result<Meter, StoreError> {
        self.table.update(account, update).await
    }

    async fn delete(
        &self,
        account: &AccountId,
        delete: DeleteMeterRequest,
    ) -> Result<(), StoreError> {
        self.table.delete(account, delete).await
    }
}

#[async_trait]
impl IdempotencyStore for DynamoDbStore {
    async fn claim_idempotent(
        &self,
        account: &AccountId,
        claim: IdempotencyClaim<'_>,
    ) -> Result<Claim, StoreError> {
        self.table.claim_idempotent(account, claim).await
    }

    async fn complete_idempotent(
        &self,
        account: &AccountId,
        completion: IdempotencyCompletion<'_>,
    ) -> Result<(), StoreError> {
        self.table.complete_idempotent(account, completion).await
    }

    async fn end_idempotent_lease(
        &self,
        account: &AccountId,
        key: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.table.end_idempotent_lease(account, key, now).await
    }
}
