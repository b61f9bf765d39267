//! The embedded store: one redb file on disk (or in memory, for tests), so the local server needs no
//! cloud, Docker or Java, and its data survives a restart. Lists are answered from each account's listing
//! in memory, read from the file on an account's first list and kept current by every write after it.
//! Its idempotency records are `idempotency`; readings are applied by `readings`; a meter's record is `record`.

mod idempotency;
mod readings;
mod record;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::domain::WrittenBy;
use crate::domain::list::{ListPage, ListQuery};
use crate::domain::meter::{self, AccountId, Meter, MeterId};
use crate::store::error::{BoxError, StoreError, read_only_mismatch};
use crate::store::listing::{DEFAULT_CACHE_BYTES, Listing, ListingCache};
use crate::store::meters::{CreateMeterRequest, DeleteMeterRequest, UpdateMeterRequest};
use crate::store::meters::{Created, MeterStore};
use record::{decode, encode};

/// (account, id) → the meter as JSON: one account's meters are one contiguous range, in id order.
const METERS: TableDefinition<'static, (&str, i64), &[u8]> = TableDefinition::new("meters");
/// (account, id) → who created the meter and who last changed it, as JSON: apart from the meters, so that
/// listings never read it.
const WRITERS: TableDefinition<'static, (&str, i64), &[u8]> = TableDefinition::new("meter_writers");
/// id → account, to tell "another account's meter" (403) from "no such meter" (404).
const OWNERS: TableDefinition<'static, i64, &str> = TableDefinition::new("meter_owners");
/// The last id handed out; ids are never reused, even after a delete.
const COUNTERS: TableDefinition<'static, &str, i64> = TableDefinition::new("counters");
const METER_ID_COUNTER: &str = "meter_id";
/// (account, Idempotency-Key) → the record as JSON; expired records are ignored on read and overwritten.
const IDEMPOTENCY: TableDefinition<'static, (&str, &str), &[u8]> =
    TableDefinition::new("idempotency");

#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    listings: Arc<ListingCache>,
    /// Held by every meter write from its transaction to its change of the listings, and by a listing's
    /// read from the file to its caching: a listing read before a write can never be cached after it.
    meter_writes: Arc<Mutex<()>>,
}

/// The embedded store keeps its listings current itself, so they all have one version.
const CURRENT: u64 = 0;

impl EmbeddedStore {
    /// Opens (creating if needed) the store file `meters.redb` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(internal)?;
        Self::prepared(Database::create(dir.join("meters.redb")).map_err(internal)?)
    }

    /// A store that lives and dies with the process.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::prepared(
            Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(internal)?,
        )
    }

    /// Creates the tables up front, so that reads never meet a missing table.
    fn prepared(db: Database) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(internal)?;
        txn.open_table(METERS).map_err(internal)?;
        txn.open_table(OWNERS).map_err(internal)?;
        txn.open_table(WRITERS).map_err(internal)?;
        txn.open_table(COUNTERS).map_err(internal)?;
        txn.open_table(IDEMPOTENCY).map_err(internal)?;
        txn.commit().map_err(internal)?;
        Ok(Self {
            db: Arc::new(db),
            listings: Arc::new(ListingCache::new(DEFAULT_CACHE_BYTES)),
            meter_writes: Arc::default(),
        })
    }

    /// Keeps at most `bytes` of listings in memory (by their estimate); an account larger than that is read
    /// from the file on every list.
    pub fn with_listing_budget(self, bytes: usize) -> Self {
        Self {
            listings: Arc::new(ListingCache::new(bytes)),
            ..self
        }
    }

    /// Lets go of the listings no list has read for `idle` (see `ListingCache::release_idle`); returns
    /// how many. The local server calls it now and then.
    pub fn release_idle_listings(&self, idle: std::time::Duration) -> usize {
        self.listings.release_idle(idle)
    }

    /// Runs a meter write, then applies what it wrote to `account`'s listing if one is held.
    async fn write_meter<T: Send + 'static>(
        &self,
        account: AccountId,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
        change: impl FnOnce(&Listing, &T) -> Option<Listing> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (listings, meter_writes) = (Arc::clone(&self.listings), Arc::clone(&self.meter_writes));
        self.run(move |db| {
            let _writing = meter_writes
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let written = work(db)?;
            listings.change(&account, |listing| change(listing, &written));
            Ok(written)
        })
        .await
    }

    /// redb blocks on disk I/O, so no operation may stall a runtime worker: on a multi-threaded runtime (the
    /// local server) it runs in place while the worker's other tasks move elsewhere, which saves the hop to
    /// another thread; on a current-thread runtime (tests) it goes to the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread
        {
            return tokio::task::block_in_place(move || work(&db));
        }
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(internal)?
    }
}

#[async_trait]
impl MeterStore for EmbeddedStore {
    async fn reserve_id(&self) -> Result<MeterId, StoreError> {
        self.run(|db| {
            let txn = db.begin_write().map_err(internal)?;
            let id = {
                let mut counters = txn.open_table(COUNTERS).map_err(internal)?;
                let last = counters
                    .get(METER_ID_COUNTER)
                    .map_err(internal)?
                    .map_or(0, |guard| guard.value());
                let id = MeterId::new(last.checked_add(1).ok_or_else(|| {
                    internal("ids are exhausted: the id counter is at the largest id")
                })?)
                .map_err(internal)?;
                counters
                    .insert(METER_ID_COUNTER, id.get())
                    .map_err(internal)?;
                id
            };
            txn.commit().map_err(internal)?;
            Ok(id)
        })
        .await
    }

    async fn create_with_id(
        &self,
        account: &AccountId,
        create: CreateMeterRequest,
    ) -> Result<Created, StoreError> {
        let CreateMeterRequest {
            id,
            meter: new,
            actor,
        } = create;
        let actor = &actor;
        let account = *account;
        let written_by = WrittenBy {
            created_by: Some(actor.clone()),
            updated_by: Some(actor.clone()),
        };
        let added =
            |listing: &Listing, created: &Created| Some(listing.with_meter(created.meter.clone()));
        self.write_meter(
            account,
            move |db| {
                let txn = db.begin_write().map_err(internal)?;
                let key = account.to_string();
                let created = {
                    let mut meters = txn.open_table(METERS).map_err(internal)?;
                    let earlier = meters
                        .get((key.as_str(), id.get()))
                        .map_err(internal)?
                        .map(|stored| decode(stored.value()))
                        .transpose()?;
                    match earlier {
                        Some(meter) => Created {
                            meter,
                            earlier_attempt: true,
                        },
                        None => {
                            let meter = Meter::create(id, account, new, meter::now());
                            meters
                                .insert((key.as_str(), id.get()), encode(&meter)?.as_slice())
                                .map_err(internal)?;
                            txn.open_table(OWNERS)
                                .map_err(internal)?
                                .insert(id.get(), key.as_str())
                                .map_err(internal)?;
                            record_writers(&txn, &key, id, &written_by)?;
                            Created {
                                meter,
                                earlier_attempt: false,
                            }
                        }
                    }
                };
                txn.commit().map_err(internal)?;
                Ok(created)
            },
            added,
        )
        .await
    }

    async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError> {
        let account = *account;
        self.run(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let key = account.to_string();
            match txn
                .open_table(METERS)
                .map_err(internal)?
                .get((key.as_str(), id.get()))
                .map_err(internal)?
            {
                Some(stored) => decode(stored.value()),
                None => Err(missing(&txn.open_table(OWNERS).map_err(internal)?, id)?),
            }
        })
        .await
    }

    async fn written_by(&self, account: &AccountId, id: MeterId) -> Result<WrittenBy, StoreError> {
        let key = account.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let meters = txn.open_table(METERS).map_err(internal)?;
            if meters
                .get((key.as_str(), id.get()))
                .map_err(internal)?
                .is_none()
            {
                return Err(missing(&txn.open_table(OWNERS).map_err(internal)?, id)?);
            }
            match txn
                .open_table(WRITERS)
                .map_err(internal)?
                .get((key.as_str(), id.get()))
                .map_err(internal)?
            {
                Some(stored) => serde_json::from_slice(stored.value()).map_err(internal),
                None => Ok(WrittenBy::default()),
            }
        })
        .await
    }

    async fn list(&self, account: &AccountId, query: &ListQuery) -> Result<ListPage, StoreError> {
        let (account, query) = (*account, query.clone());
        let (listings, meter_writes) = (Arc::clone(&self.listings), Arc::clone(&self.meter_writes));
        self.run(move |db| {
            if let Some(listing) = listings.get(&account, CURRENT) {
                return Ok(listing.page(&query));
            }
            // One read of the file at a time: concurrent first lists wait for it rather than each
            // holding a copy of the account.
            let _reading = meter_writes
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            if let Some(listing) = listings.get(&account, CURRENT) {
                return Ok(listing.page(&query));
            }
            let key = account.to_string();
            let txn = db.begin_read().map_err(internal)?;
            let meters = txn.open_table(METERS).map_err(internal)?;
            let listing = Arc::new(Listing::new(
                meters
                    .range((key.as_str(), 1)..=(key.as_str(), i64::MAX))
                    .map_err(internal)?
                    .map(|entry| decode(entry.map_err(internal)?.1.value()))
                    .collect::<Result<_, _>>()?,
            ));
            listings.put(&account, CURRENT, Arc::clone(&listing));
            Ok(listing.page(&query))
        })
        .await
    }

    async fn update(
        &self,
        account: &AccountId,
        update: UpdateMeterRequest,
    ) -> Result<Meter, StoreError> {
        let UpdateMeterRequest {
            id,
            changes,
            read_only,
            if_match,
            actor,
        } = update;
        let actor = &actor;
        let key = account.to_string();
        let actor = actor.clone();
        let changed = |listing: &Listing, meter: &Meter| Some(listing.with_meter(meter.clone()));
        self.write_meter(
            *account,
            move |db| {
                // One write transaction: the read, the read-only check and the write see no other writer.
                let txn = db.begin_write().map_err(internal)?;
                let updated = {
                    let mut meters = txn.open_table(METERS).map_err(internal)?;
                    let stored = match meters.get((key.as_str(), id.get())).map_err(internal)? {
                        Some(stored) => decode(stored.value())?,
                        None => {
                            return Err(missing(&txn.open_table(OWNERS).map_err(internal)?, id)?);
                        }
                    };
                    if !if_match.allows(&stored) {
                        return Err(StoreError::PreconditionFailed(id));
                    }
                    if let Some(mismatch) = read_only_mismatch(&read_only, &stored) {
                        return Err(mismatch);
                    }
                    let updated = stored.with_changes(&changes, meter::now());
                    meters
                        .insert((key.as_str(), id.get()), encode(&updated)?.as_slice())
                        .map_err(internal)?;
                    updated
                };
                let earlier = txn
                    .open_table(WRITERS)
                    .map_err(internal)?
                    .get((key.as_str(), id.get()))
                    .map_err(internal)?
                    .map(|stored| serde_json::from_slice::<WrittenBy>(stored.value()))
                    .transpose()
                    .map_err(internal)?
                    .unwrap_or_default();
                let written_by = WrittenBy {
                    updated_by: Some(actor),
                    ..earlier
                };
                record_writers(&txn, &key, id, &written_by)?;
                txn.commit().map_err(internal)?;
                Ok(updated)
            },
            changed,
        )
        .await
    }

    async fn delete(
        &self,
        account: &AccountId,
        delete: DeleteMeterRequest,
    ) -> Result<(), StoreError> {
        let DeleteMeterRequest {
            id,
            if_match,
            actor,
        } = delete;
        let _actor = &actor;
        let key = account.to_string();
        let removed = move |listing: &Listing, _: &()| Some(listing.without(id));
        self.write_meter(
            *account,
            move |db| {
                let txn = db.begin_write().map_err(internal)?;
                {
                    let mut owners = txn.open_table(OWNERS).map_err(internal)?;
                    let mut meters = txn.open_table(METERS).map_err(internal)?;
                    let stored = match meters.get((key.as_str(), id.get())).map_err(internal)? {
                        Some(stored) => decode(stored.value())?,
                        None => return Err(missing(&owners, id)?),
                    };
                    if !if_match.allows(&stored) {
                        return Err(StoreError::PreconditionFailed(id));
                    }
                    meters.remove((key.as_str(), id.get())).map_err(internal)?;
                    owners.remove(id.get()).map_err(internal)?;
                    txn.open_table(WRITERS)
                        .map_err(internal)?
                        .remove((key.as_str(), id.get()))
                        .map_err(internal)?;
                }
                txn.commit().map_err(internal)?;
                Ok(())
            },
            removed,
        )
        .await
    }
}

fn record_writers(
    txn: &redb::WriteTransaction,
    key: &str,
    id: MeterId,
    written_by: &WrittenBy,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(written_by).map_err(internal)?;
    txn.open_table(WRITERS)
        .map_err(internal)?
        .insert((key, id.get()), json.as_slice())
        .map_err(internal)?;
    Ok(())
}

/// After a miss in the caller's account: 403 if the id lives in another account, else 404.
fn missing(
    owners: &impl ReadableTable<i64, &'static str>,
    id: MeterId,
) -> Result<StoreError, StoreError> {
    Ok(match owners.get(id.get()).map_err(internal)? {
        Some(_) => StoreError::OtherAccount(id),
        None => StoreError::NotFound(id),
    })
}

fn internal(error: impl Into<BoxError>) -> StoreError {
    StoreError::Internal(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meter::{
        CommunicationType, MeterChanges, MeterName, MeterType, NewMeter, SerialNumber,
    };

    fn meter() -> Meter {
        let new = NewMeter {
            name: MeterName::parse("Main").unwrap(),
            serial_number: SerialNumber::parse("SN-1").unwrap(),
            meter_type: MeterType::GAS,
            communication_type: CommunicationType::MQTT,
            details: MeterChanges::default(),
        };
        let account = AccountId::parse("6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22").unwrap();
        Meter::create(MeterId::new(7).unwrap(), account, new, meter::now())
    }

    #[test]
    fn a_record_keeps_the_meter_and_its_version() {
        let mut stored = meter();
        stored.version = 41;
        assert_eq!(decode(&encode(&stored).unwrap()).unwrap(), stored);
    }

    #[test]
    fn records_written_before_versions_existed_read_as_version_0() {
        let legacy = serde_json::to_vec(&meter()).unwrap();
        let read = decode(&legacy).unwrap();
        assert_eq!((read.version, read.name.as_str()), (0, "Main"));
    }
}
