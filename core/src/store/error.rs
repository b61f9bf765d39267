//! What can go wrong in a store, in the terms a handler needs; `http::error` maps each to its status once.

use crate::domain::FieldError;
use crate::domain::meter::{Meter, MeterId, ReadOnlyEcho};

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

/// The store's complaint about an echoed read-only field, in the caller's terms.
pub fn read_only_mismatch(read_only: &ReadOnlyEcho, stored: &Meter) -> Option<StoreError> {
    read_only
        .first_mismatch(stored)
        .map(|field| StoreError::ReadOnlyChanged(FieldError::read_only(field)))
}
