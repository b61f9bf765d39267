//! Where an account's listing starts, in one place: the listing this process holds at the head's version;
//! else the one it holds of an earlier version, brought current; else the account's snapshot, brought
//! current; else the account read whole. One request of a process at a time comes by an account's listing,
//! which it keeps for the others (`ListingCache`), and keeps the snapshot near it (`SnapshotKeeper`).

use std::sync::Arc;

use super::head::Head;
use super::queries::MeterQueries;
use super::refresh::{Refreshed, Refresher};
use super::snapshot_keeper::SnapshotKeeper;
use crate::domain::meter::{AccountId, Timestamp};
use crate::store::error::StoreError;
use crate::store::listing::{Listing, ListingCache};

/// How far a request goes for a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Only a listing this process holds, brought current: a list that can read a window instead.
    Held,
    /// Whatever it takes.
    Any,
}

/// The accounts' listings of one table, as this process comes by them.
#[derive(Debug, Clone)]
pub(super) struct Listings {
    cache: Arc<ListingCache>,
    refresher: Refresher,
    keeper: Option<Arc<SnapshotKeeper>>,
    queries: MeterQueries,
}

impl Listings {
    pub(super) fn new(
        cache: Arc<ListingCache>,
        refresher: Refresher,
        keeper: Option<Arc<SnapshotKeeper>>,
        queries: MeterQueries,
    ) -> Self {
        Self {
            cache,
            refresher,
            keeper,
            queries,
        }
    }

    /// The account's listing as of `head` (read before it), if this process holds one it can bring there.
    pub(super) async fn held(
        &self,
        account: &AccountId,
        head: &Head,
    ) -> Result<Option<Arc<Listing>>, StoreError> {
        self.come_by(account, head, Reach::Held).await
    }

    /// The account's listing as of `head` (read before it), from wherever it starts.
    pub(super) async fn current(
        &self,
        account: &AccountId,
        head: &Head,
    ) -> Result<Arc<Listing>, StoreError> {
        // A reach for any listing ends at the whole account, so `start` always has one.
        self.come_by(account, head, Reach::Any)
            .await?
            .ok_or_else(|| StoreError::Internal("no listing came of reading the account".into()))
    }

    /// The account's listing as of `head` with readings at least as new as `since`: the one held if its
    /// readings are, else the account read whole, kept in its place.
    pub(super) async fn readings_since(
        &self,
        account: &AccountId,
        head: &Head,
        since: Timestamp,
    ) -> Result<Arc<Listing>, StoreError> {
        let _turn = self.cache.turn(account).await;
        // The request before this one may have read it.
        if let Some(listing) = self.cache.get(account, head.version)
            && listing.readings_since(since)
        {
            return Ok(listing);
        }
        let listing = Arc::new(self.queries.whole(account, head.count).await?);
        self.cache.put(account, head.version, Arc::clone(&listing));
        Ok(listing)
    }

    /// Reads the account whole as of `head` and writes it as its snapshot, now (after an import); `false`
    /// when this store keeps no snapshots.
    pub(super) async fn snapshot_now(
        &self,
        account: &AccountId,
        head: &Head,
    ) -> Result<bool, StoreError> {
        let Some(keeper) = &self.keeper else {
            return Ok(false);
        };
        let listing = self.queries.whole(account, head.count).await?;
        keeper.write_now(account, head.version, listing).await?;
        Ok(true)
    }

    async fn come_by(
        &self,
        account: &AccountId,
        head: &Head,
        reach: Reach,
    ) -> Result<Option<Arc<Listing>>, StoreError> {
        if let Some(listing) = self.cache.get(account, head.version) {
            return Ok(Some(listing));
        }
        if reach == Reach::Held && self.cache.latest(account).is_none() {
            return Ok(None);
        }
        let _turn = self.cache.turn(account).await;
        // The request before this one may have come by it.
        if let Some(listing) = self.cache.get(account, head.version) {
            return Ok(Some(listing));
        }
        let Some(listing) = self.start(account, head, reach).await? else {
            return Ok(None);
        };
        let listing = Arc::new(listing);
        self.cache.put(account, head.version, Arc::clone(&listing));
        if let Some(keeper) = &self.keeper {
            keeper.keep_if_due(account, head.version, &listing);
        }
        Ok(Some(listing))
    }

    /// The listing as of `head` from where it starts: held, a snapshot, or the whole account.
    async fn start(
        &self,
        account: &AccountId,
        head: &Head,
        reach: Reach,
    ) -> Result<Option<Listing>, StoreError> {
        if let Some((held_version, held)) = self.cache.latest(account) {
            match self
                .refresher
                .bring_current(account, &held, held_version, head)
                .await?
            {
                Refreshed::Current(listing) => return Ok(Some(listing)),
                why => {
                    tracing::debug!(%account, held_version, ?why, "the listing held is not brought current");
                }
            }
        }
        if reach == Reach::Held {
            return Ok(None);
        }
        if let Some(keeper) = &self.keeper
            && let Some(snapshot) = keeper.read(account).await
        {
            let snapshot_version = snapshot.version;
            match self
                .refresher
                .bring_current(account, &snapshot.listing, snapshot_version, head)
                .await?
            {
                Refreshed::Current(listing) => {
                    keeper.noted(account, snapshot_version);
                    return Ok(Some(listing));
                }
                Refreshed::LogDoesNotReach => tracing::info!(
                    %account, snapshot_version, list_version = head.version,
                    "the change log does not reach back to the snapshot; reading the account whole"
                ),
                Refreshed::CountDisagrees { listed, counted } => tracing::warn!(
                    %account, snapshot_version, list_version = head.version, listed, counted,
                    "the snapshot brought current does not hold what the head counts; reading the account whole"
                ),
            }
        }
        Ok(Some(self.queries.whole(account, head.count).await?))
    }
}
