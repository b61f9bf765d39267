//! The port for readings: applying one to its meter, monotonically (`crate::domain::reading`).

use async_trait::async_trait;

use super::error::StoreError;
use crate::domain::meter::AccountId;
use crate::domain::reading::Reading;

/// What applying a reading did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The reading was later than the meter's: its value and time are the meter's now, and its ETag changed.
    Applied,
    /// The meter already had this reading or a later one (a duplicate, a late or out-of-order delivery):
    /// nothing changed. Not a failure.
    NotLater,
}

#[async_trait]
pub trait ReadingStore: Send + Sync + std::fmt::Debug {
    /// Applies `reading` to meter `reading.meter_id` of `account`, atomically with the check that its `at` is
    /// later than the meter's `last_reading_at` (or the meter has none). Not a metadata write: the meter's
    /// version, `updated_at` and its account's list version stay as they are, and no change event follows.
    /// Errors: `NotFound` when the account holds no such meter (whether another account does is not
    /// looked up: a reading never touches another account's meter); `Unavailable`, `Internal` as always.
    async fn apply_reading(
        &self,
        account: &AccountId,
        reading: &Reading,
    ) -> Result<Applied, StoreError>;
}
