//! The embedded store's idempotency records: one redb table, (account, key) to the record as JSON, each
//! claim decided and written in one write transaction.

use async_trait::async_trait;
use redb::ReadableTable;

use super::{EmbeddedStore, IDEMPOTENCY, internal};
use crate::domain::meter::{AccountId, Timestamp};
use crate::store::error::StoreError;
use crate::store::idempotency::{Claim, IdempotencyRecord, IdempotencyStore, Meeting};
use crate::store::idempotency::{IdempotencyClaim, IdempotencyCompletion};

#[async_trait]
impl IdempotencyStore for EmbeddedStore {
    async fn claim_idempotent(
        &self,
        account: &AccountId,
        claim: IdempotencyClaim<'_>,
    ) -> Result<Claim, StoreError> {
        let IdempotencyClaim {
            key,
            fingerprint,
            reserved,
            lease_until,
            now,
        } = claim;
        let (account, key, fingerprint) =
            (account.to_string(), key.to_owned(), fingerprint.to_owned());
        self.run(move |db| {
            // One write transaction: of concurrent claims, exactly one finds the key free.
            let txn = db.begin_write().map_err(internal)?;
            let claim = {
                let mut records = txn.open_table(IDEMPOTENCY).map_err(internal)?;
                let stored = record_of(&records, &account, &key)?;
                let meeting = match stored {
                    Some(record) => record.meet(&fingerprint, reserved, now),
                    None => Meeting::Replace(reserved),
                };
                match meeting {
                    Meeting::Answer(claim) => claim,
                    Meeting::Replace(meter_id) => {
                        let record =
                            IdempotencyRecord::claimed(&fingerprint, meter_id, lease_until);
                        let bytes = serde_json::to_vec(&record).map_err(internal)?;
                        records
                            .insert((account.as_str(), key.as_str()), bytes.as_slice())
                            .map_err(internal)?;
                        Claim::Claimed { meter_id }
                    }
                }
            };
            txn.commit().map_err(internal)?;
            Ok(claim)
        })
        .await
    }

    async fn complete_idempotent(
        &self,
        account: &AccountId,
        completion: IdempotencyCompletion<'_>,
    ) -> Result<(), StoreError> {
        let IdempotencyCompletion {
            key,
            fingerprint,
            meter_id,
            answer,
            now,
        } = completion;
        let (account, key) = (account.to_string(), key.to_owned());
        let record = IdempotencyRecord::completed(fingerprint, meter_id, answer, now);
        let bytes = serde_json::to_vec(&record).map_err(internal)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            txn.open_table(IDEMPOTENCY)
                .map_err(internal)?
                .insert((account.as_str(), key.as_str()), bytes.as_slice())
                .map_err(internal)?;
            txn.commit().map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn end_idempotent_lease(
        &self,
        account: &AccountId,
        key: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (account, key) = (account.to_string(), key.to_owned());
        self.run(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut records = txn.open_table(IDEMPOTENCY).map_err(internal)?;
                let stored = record_of(&records, &account, &key)?;
                if let Some(mut record) = stored.filter(|record| record.answer.is_none()) {
                    record.expires_at = now.timestamp() - 1;
                    let bytes = serde_json::to_vec(&record).map_err(internal)?;
                    records
                        .insert((account.as_str(), key.as_str()), bytes.as_slice())
                        .map_err(internal)?;
                }
            }
            txn.commit().map_err(internal)?;
            Ok(())
        })
        .await
    }
}

/// The record held for `key` in `account`, if any.
fn record_of(
    records: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    account: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    records
        .get((account, key))
        .map_err(internal)?
        .map(|stored| serde_json::from_slice(stored.value()))
        .transpose()
        .map_err(internal)
}
