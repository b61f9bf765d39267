//! The port every store implements. Every method takes the account first, so no call can forget the
//! tenant boundary.

mod dynamodb;
mod embedded;

pub use dynamodb::DynamoDbStore;
pub use embedded::EmbeddedStore;

use async_trait::async_trait;

use crate::meter::{AccountId, FieldError, Meter, MeterChanges, MeterId, NewMeter, ReadOnlyEcho};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong in a store, in the terms a handler needs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No meter has this id, in any account.
    #[error("meter {0} does not exist")]
    NotFound(MeterId),
    /// The meter exists, under another account. Told apart from `NotFound` because the design answers 403.
    #[error("meter {0} belongs to another account")]
    OtherAccount(MeterId),
    /// `If-Match` named versions the meter no longer has (it changed since the caller read it); checked
    /// atomically with the write, so nothing was changed.
    #[error("meter {0} has changed since that version")]
    PreconditionFailed(MeterId),
    /// An update echoed a read-only field with a value other than the stored one; checked atomically with
    /// the write, so nothing was changed.
    #[error(transparent)]
    ReadOnlyChanged(FieldError),
    /// The backend is throttling or unreachable; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug, or data the store cannot read back.
    #[error("store failure: {0}")]
    Internal(#[source] BoxError),
}

/// An `If-Match` precondition on a write. `Any` (no header, or `*`) asks only that the meter exists, which
/// every write asks anyway.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IfMatch {
    #[default]
    Any,
    /// The meter's version must be one of these (none: the header named no version of this meter).
    Versions(Vec<u64>),
}

impl IfMatch {
    pub fn allows(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

#[async_trait]
pub trait MeterStore: Send + Sync + std::fmt::Debug {
    /// Assigns a fresh id, unique across all accounts and never one of a live meter, and stores the meter.
    async fn create(&self, account: &AccountId, meter: NewMeter) -> Result<Meter, StoreError>;

    /// The meter, read strongly consistently.
    async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError>;

    /// Every meter of the account, in id order. Filtering, sorting and paging are `ListQuery`'s.
    async fn list(&self, account: &AccountId) -> Result<Vec<Meter>, StoreError>;

    /// Applies only the fields in `changes`, sets `updated_at`, raises the version, and returns the meter as
    /// stored, provided the meter exists in the account, its version is one `if_match` allows, and every field
    /// in `read_only` still has the echoed value: all checked atomically with the write.
    async fn update(
        &self,
        account: &AccountId,
        id: MeterId,
        changes: MeterChanges,
        read_only: ReadOnlyEcho,
        if_match: IfMatch,
    ) -> Result<Meter, StoreError>;

    /// Removes the meter, provided its version is one `if_match` allows (checked atomically); its id is
    /// never handed out again.
    async fn delete(
        &self,
        account: &AccountId,
        id: MeterId,
        if_match: IfMatch,
    ) -> Result<(), StoreError>;
}

/// The store's complaint about an echoed read-only field, in the caller's terms.
pub(crate) fn read_only_mismatch(read_only: &ReadOnlyEcho, stored: &Meter) -> Option<StoreError> {
    read_only
        .first_mismatch(stored)
        .map(|field| StoreError::ReadOnlyChanged(crate::meter::read_only_changed(field)))
}
