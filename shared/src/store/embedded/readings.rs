//! Readings on the embedded store: the check that a reading is later and its write in one transaction, and
//! the account's listing changed with it, so the local server's lists show a reading at once.

use async_trait::async_trait;
use redb::ReadableTable;

use super::{EmbeddedStore, METERS, decode, encode, internal};
use crate::domain::meter::{AccountId, Meter};
use crate::domain::reading::Reading;
use crate::store::error::StoreError;
use crate::store::listing::Listing;
use crate::store::readings::{Applied, ReadingStore};

#[async_trait]
impl ReadingStore for EmbeddedStore {
    async fn apply_reading(
        &self,
        account: &AccountId,
        reading: &Reading,
    ) -> Result<Applied, StoreError> {
        let (key, id, reading) = (account.to_string(), reading.meter_id, *reading);
        let changed = |listing: &Listing, applied: &Option<Meter>| {
            applied
                .as_ref()
                .map(|meter| listing.with_meter(meter.clone()))
        };
        let applied = self
            .write_meter(
                *account,
                move |db| {
                    let txn = db.begin_write().map_err(internal)?;
                    let applied = {
                        let mut meters = txn.open_table(METERS).map_err(internal)?;
                        let stored = match meters.get((key.as_str(), id.get())).map_err(internal)? {
                            Some(stored) => decode(stored.value())?,
                            // Whether another account holds it is not the reading's business.
                            None => return Err(StoreError::NotFound(id)),
                        };
                        let applied = stored.with_reading(&reading);
                        if let Some(meter) = &applied {
                            meters
                                .insert((key.as_str(), id.get()), encode(meter)?.as_slice())
                                .map_err(internal)?;
                        }
                        applied
                    };
                    txn.commit().map_err(internal)?;
                    Ok(applied)
                },
                changed,
            )
            .await?;
        Ok(match applied {
            Some(_) => Applied::Applied,
            None => Applied::NotLater,
        })
    }
}
