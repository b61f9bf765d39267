//! The storage port (crate `meters-core`) and its adapters. The port is three traits: `MeterStore` (the meters),
//! `ReadingStore` (readings applied to them) and `IdempotencyStore` (the records of idempotent creates); both
//! adapters implement all three, over one table or
//! one file: `dynamodb` (production) and `embedded` (redb, for the local server and tests). `listing` is an
//! account's meters held in memory, which both answer lists from; `snapshots` keeps listings between
//! processes (S3), where the DynamoDB store starts a cold process's listing from.

pub mod dynamodb;
mod embedded;
pub mod snapshots;

// The ports and the listing, from the bottom layer's crate.
pub use meters_core::store::{error, idempotency, listing, meters, readings};

pub use dynamodb::{DynamoDbStore, ImportReport, ListTuning};
pub use embedded::EmbeddedStore;
pub use error::{BoxError, StoreError};
pub use idempotency::{
    Claim, IDEMPOTENCY_TTL, IdempotencyClaim, IdempotencyCompletion, IdempotencyStore,
    RememberedAnswer,
};
pub use meters::{CreateMeterRequest, Created, DeleteMeterRequest, MeterStore, UpdateMeterRequest};
pub use readings::{Applied, ReadingStore};

/// Both ports, as every adapter implements them: what the application is built on and the contract suite
/// runs against.
pub trait Store: MeterStore + IdempotencyStore + ReadingStore {}

impl<T: MeterStore + IdempotencyStore + ReadingStore> Store for T {}
