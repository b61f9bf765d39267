//! The port: what a snapshot is, how reading and writing one can fail, and the trait an adapter implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::meter::AccountId;
use crate::store::error::BoxError;
use crate::store::listing::Listing;

/// An account's listing as of one list version.
#[derive(Debug)]
pub struct Snapshot {
    pub version: u64,
    pub listing: Listing,
}

/// What can go wrong with a snapshot. Either way the caller reads the account instead.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The snapshot store could not be reached, or refused (throttled, no permission).
    #[error("snapshot store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The object is not a snapshot of this account in a format this build reads (another account's,
    /// truncated, corrupt): never listed.
    #[error("unreadable snapshot: {0}")]
    Unreadable(String),
}

/// Where listings are kept between processes.
#[async_trait]
pub trait ListingSnapshots: Send + Sync + std::fmt::Debug {
    /// The snapshot of `account`'s listing kept last, if any. Errors: `Unavailable` when the store did not
    /// answer, `Unreadable` when what it holds is not this account's snapshot.
    async fn read(&self, account: &AccountId) -> Result<Option<Snapshot>, SnapshotError>;

    /// Keeps `listing` as `account`'s at list version `version`, in place of the one kept. Errors:
    /// `Unavailable` when the store did not take it (the one kept stays).
    async fn write(
        &self,
        account: &AccountId,
        version: u64,
        listing: Arc<Listing>,
    ) -> Result<(), SnapshotError>;
}
