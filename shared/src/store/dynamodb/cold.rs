//! A listing for a process that holds none it can bring current (a cold process, or one that slept through
//! more writes than the change log keeps): the account's snapshot brought current from the change log, or,
//! without a usable snapshot, the account read whole. Whichever way a process comes by a listing, it keeps
//! the snapshot near it: when the snapshot it knows of is `SNAPSHOT_EVERY_WRITES` writes behind (or it knows
//! of none), it writes its listing as the account's snapshot, in the background.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::client::Table;
use super::ids::Head;
use super::refresh::Refreshed;
use crate::domain::meter::AccountId;
use crate::store::error::StoreError;
use crate::store::listing::Listing;
use crate::store::snapshots::ListingSnapshots;

/// Writes between the snapshots a process keeps of an account: a cold process then reads at most about
/// this many meters beside the snapshot; each snapshot costs its writer a few hundred ms of CPU.
pub const SNAPSHOT_EVERY_WRITES: u64 = 128;

/// The snapshot store, and the version of each account's snapshot this process last read or wrote.
#[derive(Debug)]
pub(super) struct Snapshotting {
    snapshots: Arc<dyn ListingSnapshots>,
    known: Mutex<HashMap<AccountId, u64>>,
}

impl Snapshotting {
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

impl Snapshotting {
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

impl Table {
    /// The account's listing as of `head`, for a process that holds none it can bring current: its
    /// snapshot brought current when there is one the change log reaches, else the account read whole.
    pub(super) async fn cold_listing<Whole>(
        &self,
        snapshotting: Option<&Snapshotting>,
        account: &AccountId,
        head: &Head,
        read_whole: impl FnOnce() -> Whole,
    ) -> Result<Listing, StoreError>
    where
        Whole: Future<Output = Result<Listing, StoreError>>,
    {
        if let Some(snapshotting) = snapshotting {
            match snapshotting.snapshots.read(account).await {
                Ok(Some(snapshot)) => {
                    match self
                        .refreshed(account, &snapshot.listing, snapshot.version, head)
                        .await?
                    {
                        Refreshed::Current(listing) => {
                            snapshotting.known().insert(*account, snapshot.version);
                            return Ok(listing);
                        }
                        Refreshed::LogDoesNotReach => tracing::info!(
                            %account, snapshot_version = snapshot.version, list_version = head.version,
                            "the change log does not reach back to the snapshot; reading the account whole"
                        ),
                        Refreshed::CountDisagrees { listed, counted } => tracing::warn!(
                            %account, snapshot_version = snapshot.version, list_version = head.version,
                            listed, counted,
                            "the snapshot brought current does not hold what the head counts; reading the account whole"
                        ),
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%account, %error, "snapshot not read; reading the account whole");
                }
            }
        }
        read_whole().await
    }
}
