//! The production store: one DynamoDB table, partition key `account_id` (S), sort key `id` (N), one item per
//! meter with attributes named as the JSON fields (unset fields absent). Beside the meters, in the same
//! table (docs/dynamodb.md), each item kind with its key in `keys::ItemKey`:
//! - each account's head: its meter count, a list version that every meter write advances in the same
//!   transaction, and its recent changes (`head`, `transaction`);
//! - the id counter, handing out blocks of ids (`ids`);
//! - two local secondary indexes (strongly consistent, unlike global ones) that hold the account's meters
//!   in name and in creation order, so the first pages of those sorts read only the page (`queries`);
//! - a keys-only global index on `id` that tells another account's meter (403) from no meter (404) (`reads`);
//! - idempotency records with a TTL (`idempotency`);
//! - the account's change log: the head's recent changes as each window of them closes (`changelog`), from
//!   which a listing of an earlier version, or a snapshot of one, is brought current by reading only the
//!   meters written since (`refresh`, `listings`, `snapshot_keeper`);
//! - each deleted meter's tombstone, naming who deleted it and the version deleted (`writes`), read with the
//!   table's stream by the change events (`stream`), and kept for good: it retires the id to its account and
//!   sets where a restore's versions start (`import`).
//!
//! - readings, applied to the meter's item alone (`readings`), and read fresh for a page whose listing
//!   holds older ones (`page_readings`).
//!
//! Each file owns one type that holds what it needs; `DynamoDbStore` assembles them. A list walks
//! `lister` → `head` → `listings` → (`refresh` → `changelog`, `snapshot_keeper`) → `queries`.

mod capacity;
mod changelog;
mod client;
mod errors;
mod head;
mod idempotency;
mod ids;
mod import;
mod items;
mod keys;
mod lister;
mod listings;
mod page_readings;
mod queries;
mod readings;
mod reads;
mod refresh;
mod schema;
mod snapshot_keeper;
mod stream;
mod table;
mod transaction;
mod writes;

pub use changelog::{LOG_DAYS, MAX_LOG_WRITES};
pub use client::{DynamoDbConfig, check_table_name, dynamodb_client};
pub use head::{COUNT_ATTRIBUTE, LIST_VERSION_ATTRIBUTE, RECENT_CAP};
pub use ids::{ID_BLOCK, MAX_IMPORTED_ID};
pub use import::ImportReport;
pub use keys::{COUNTER_PARTITION, ItemKey};
pub use queries::ListTuning;
pub use readings::READING_ATTRIBUTES;
pub use reads::Deletion;
pub use schema::{
    COUNTER_ATTRIBUTE, CREATED_BY_ATTRIBUTE, CREATED_INDEX, DELETED_AT_ATTRIBUTE,
    DELETED_BY_ATTRIBUTE, EXPIRES_AT_ATTRIBUTE, ID_INDEX, NAME_INDEX, TableProperties,
    UPDATED_BY_ATTRIBUTE, WRITTEN_BY_READING_ATTRIBUTE, table_definition,
};
pub use snapshot_keeper::SNAPSHOT_EVERY_WRITES;
pub use stream::{meter_keys, meter_of_image};
pub use table::Table;
pub use transaction::TRANSACTION_ATTEMPTS;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::WrittenBy;
use crate::domain::list::{ListPage, ListQuery};
use crate::domain::meter::{AccountId, Meter, MeterId, Timestamp};
use crate::domain::reading::Reading;
use crate::store::error::StoreError;
use crate::store::idempotency::{Claim, IdempotencyClaim, IdempotencyCompletion, IdempotencyStore};
use crate::store::listing::{DEFAULT_CACHE_BYTES, ListingCache};
use crate::store::meters::{
    CreateMeterRequest, Created, DeleteMeterRequest, MeterStore, UpdateMeterRequest,
};
use crate::store::readings::{Applied, ReadingStore};
use crate::store::snapshots::ListingSnapshots;
use head::Heads;
use idempotency::IdempotencyRecords;
use ids::IdBlocks;
use import::Importer;
use lister::Lister;
use listings::Listings;
use page_readings::PageReadings;
use queries::MeterQueries;
use readings::MeterReadings;
use reads::MeterReads;
use refresh::Refresher;
use snapshot_keeper::SnapshotKeeper;
use writes::MeterWrites;

/// The store on one table: the parts that read and write it, assembled once per process.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    table: Table,
    ids: Arc<IdBlocks>,
    reads: MeterReads,
    writes: MeterWrites,
    readings: MeterReadings,
    lists: Lister,
    idempotency: IdempotencyRecords,
    /// How lists are assembled, kept so that the `with_` settings can assemble them again.
    listing_cache: Arc<ListingCache>,
    keeper: Option<Arc<SnapshotKeeper>>,
    tuning: ListTuning,
}

impl DynamoDbStore {
    /// Wraps a client built once per process (see `dynamodb_client`).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        let table = Table::new(client, table);
        let listing_cache = Arc::new(ListingCache::new(DEFAULT_CACHE_BYTES));
        let tuning = ListTuning::default();
        Self {
            ids: Arc::new(IdBlocks::new(table.clone())),
            reads: MeterReads::new(table.clone()),
            writes: MeterWrites::new(table.clone()),
            readings: MeterReadings::new(table.clone()),
            lists: lister(&table, &listing_cache, None, tuning),
            idempotency: IdempotencyRecords::new(table.clone()),
            listing_cache,
            keeper: None,
            tuning,
            table,
        }
    }

    /// Starts the listings of accounts this process holds none of from their snapshots in `snapshots`,
    /// and keeps those snapshots near the account (`snapshot_keeper`).
    pub fn with_snapshots(self, snapshots: Arc<dyn ListingSnapshots>) -> Self {
        Self {
            keeper: Some(Arc::new(SnapshotKeeper::new(snapshots))),
            ..self
        }
        .lists_assembled()
    }

    pub fn with_list_tuning(self, tuning: ListTuning) -> Self {
        Self { tuning, ..self }.lists_assembled()
    }

    /// Keeps at most `bytes` of account listings in this process (by their estimate).
    pub fn with_listing_budget(self, bytes: usize) -> Self {
        Self {
            listing_cache: Arc::new(ListingCache::new(bytes)),
            ..self
        }
        .lists_assembled()
    }

    fn lists_assembled(self) -> Self {
        Self {
            lists: lister(
                &self.table,
                &self.listing_cache,
                self.keeper.clone(),
                self.tuning,
            ),
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
        table_definition().create_if_missing(&self.table).await
    }

    /// Brings meters that already have ids into the table (`import`): the id counter is raised past them,
    /// each is written unless its id is taken, and every account touched is recounted.
    pub async fn import(&self, meters: Vec<Meter>) -> Result<ImportReport, StoreError> {
        self.importer().import(meters).await
    }

    /// Every meter in `source`, another table of this layout (a point-in-time restore of this one, say).
    pub async fn meters_of_table(&self, source: &str) -> Result<Vec<Meter>, StoreError> {
        self.importer().meters_of_table(source).await
    }

    /// Counts the account's meters and writes the figure to its head, advancing its list version.
    pub async fn recount(&self, account: &AccountId) -> Result<usize, StoreError> {
        self.importer().recount(account).await
    }

    /// The tombstone of meter `id`, read strongly consistently: written in the delete's own transaction, so
    /// it is there when the stream's record of the delete is; `None` for a meter removed another way.
    pub async fn deletion(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<Option<Deletion>, StoreError> {
        self.reads.deletion(account, id).await
    }

    /// Reads `account` whole and writes it as its snapshot (after an import); `false` when this store keeps
    /// no snapshots or the account has no head. Errors: the read's, and `Unavailable` when the snapshot
    /// store did not take it.
    pub async fn write_snapshot(&self, account: &AccountId) -> Result<bool, StoreError> {
        // The head first: a listing read after it is as new as its version says, or newer.
        let Some(head) = Heads::new(self.table.clone()).read(account).await? else {
            return Ok(false);
        };
        self.listings().snapshot_now(account, &head).await
    }

    fn importer(&self) -> Importer {
        Importer::new(self.table.clone(), Arc::clone(&self.ids))
    }

    fn listings(&self) -> Listings {
        listings(
            &self.table,
            &self.listing_cache,
            self.keeper.clone(),
            self.tuning,
        )
    }
}

fn listings(
    table: &Table,
    cache: &Arc<ListingCache>,
    keeper: Option<Arc<SnapshotKeeper>>,
    tuning: ListTuning,
) -> Listings {
    Listings::new(
        Arc::clone(cache),
        Refresher::new(table.clone()),
        keeper,
        MeterQueries::new(table.clone(), tuning),
    )
}

fn lister(
    table: &Table,
    cache: &Arc<ListingCache>,
    keeper: Option<Arc<SnapshotKeeper>>,
    tuning: ListTuning,
) -> Lister {
    Lister::new(
        Heads::new(table.clone()),
        listings(table, cache, keeper, tuning),
        MeterQueries::new(table.clone(), tuning),
        PageReadings::new(table.clone()),
    )
}

#[async_trait]
impl MeterStore for DynamoDbStore {
    async fn reserve_id(&self) -> Result<MeterId, StoreError> {
        self.ids.next().await
    }

    async fn create_with_id(
        &self,
        account: &AccountId,
        create: CreateMeterRequest,
    ) -> Result<Created, StoreError> {
        self.writes.create_with_id(account, create).await
    }

    async fn written_by(&self, account: &AccountId, id: MeterId) -> Result<WrittenBy, StoreError> {
        self.reads.written_by(account, id).await
    }

    async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError> {
        self.reads.get(account, id).await
    }

    async fn list(&self, account: &AccountId, query: &ListQuery) -> Result<ListPage, StoreError> {
        self.lists.list(account, query).await
    }

    async fn update(
        &self,
        account: &AccountId,
        update: UpdateMeterRequest,
    ) -> Result<Meter, StoreError> {
        self.writes.update(account, update).await
    }

    async fn delete(
        &self,
        account: &AccountId,
        delete: DeleteMeterRequest,
    ) -> Result<(), StoreError> {
        self.writes.delete(account, delete).await
    }
}

#[async_trait]
impl IdempotencyStore for DynamoDbStore {
    async fn claim_idempotent(
        &self,
        account: &AccountId,
        claim: IdempotencyClaim<'_>,
    ) -> Result<Claim, StoreError> {
        self.idempotency.claim(account, claim).await
    }

    async fn complete_idempotent(
        &self,
        account: &AccountId,
        completion: IdempotencyCompletion<'_>,
    ) -> Result<(), StoreError> {
        self.idempotency.complete(account, completion).await
    }

    async fn end_idempotent_lease(
        &self,
        account: &AccountId,
        key: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.idempotency.end_lease(account, key, now).await
    }
}

#[async_trait]
impl ReadingStore for DynamoDbStore {
    async fn apply_reading(
        &self,
        account: &AccountId,
        reading: &Reading,
    ) -> Result<Applied, StoreError> {
        self.readings.apply(account, reading).await
    }
}
