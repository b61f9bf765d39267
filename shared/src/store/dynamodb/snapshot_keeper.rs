//! The one keeper of the accounts' listing snapshots (`store::snapshots`): it reads them for a process that
//! holds no listing it can bring current, and keeps them near the accounts: when the snapshot it knows of is
//! `SNAPSHOT_EVERY_WRITES` writes behind (or it knows of none), it writes the listing a process came by as
//! the account's snapshot, in the background.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::domain::meter::AccountId;
use crate::store::error::StoreError;
use crate::store::listing::Listing;
use crate::store::snapshots::{ListingSnapshots, Snapshot};

/// Writes between the snapshots a process keeps of an account: a cold process then reads at most about
/// this many meters beside the snapshot; each snapshot costs its writer a few hundred ms of CPU.
pub const SNAPSHOT_EVERY_WRITES: u64 = 128;

/// The snapshot store, and the version of each account's snapshot this process last read or wrote.
#[derive(Debug)]
pub(super) struct SnapshotKeeper {
    snapshots: Arc<dyn ListingSnapshots>,
    known: Mutex<HashMap<AccountId, u64>>,
}

impl SnapshotKeeper {
    pub(super) fn new(snapshots: Arc<dyn ListingSnapshots>) -> Self {
        Self {
            snapshots,
            known: Mutex::default(),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, u64>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `listing` (the account's at `version`) as its snapshot, in the background, when the snapshot
    /// this process knows of is `SNAPSHOT_EVERY_WRITES` behind or it knows of none. Noted before it is
    /// written, so one write at a time; a write that fails is logged and tried again that many writes on.
    pub(super) fn keep_if_due(&self, account: &AccountId, version: u64, listing: &Arc<Listing>) {
        {
            let mut known = self.known();
            let due = known
                .get(account)
                .is_none_or(|&kept| version >= kept.saturating_add(SNAPSHOT_EVERY_WRITES));
            // A listing brought current may hold a meter written after the head it is at was read; a row
            // past the list version is what a reader refuses, so that one waits for the next due write.
            if !due || listing.meters().any(|meter| meter.version > version) {
                return;
            }
            known.insert(*account, version);
        }
        let snapshots = Arc::clone(&self.snapshots);
        let (account, listing) = (*account, Arc::clone(listing));
        tokio::spawn(async move {
            let started = Instant::now();
            let meters = listing.len();
            match snapshots.write(&account, version, listing).await {
                Ok(()) => tracing::info!(
                    %account, version, meters,
                    ms = started.elapsed().as_millis() as u64,
                    "listing snapshot written"
                ),
                Err(error) => {
                    tracing::warn!(%account, version, %error, "listing snapshot not written")
                }
            }
        });
    }
}

impl SnapshotKeeper {
    /// The account's snapshot; `None` when there is none, or it could not be read (logged: the caller
    /// reads the account instead).
    pub(super) async fn read(&self, account: &AccountId) -> Option<Snapshot> {
        match self.snapshots.read(account).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(%account, %error, "snapshot not read; reading the account whole");
                None
            }
        }
    }

    /// Notes that the account's snapshot at `version` is the one this process knows of.
    pub(super) fn noted(&self, account: &AccountId, version: u64) {
        self.known().insert(*account, version);
    }

    /// Writes `listing` (the account's as of list version `version`) as its snapshot, now.
    pub(super) async fn write_now(
        &self,
        account: &AccountId,
        version: u64,
        listing: Listing,
    ) -> Result<(), StoreError> {
        self.snapshots
            .write(account, version, Arc::new(listing))
            .await
            .map_err(|error| StoreError::Unavailable(Box::new(error)))?;
        self.known().insert(*account, version);
        Ok(())
    }
}
