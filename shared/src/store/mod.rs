//! The port every store implements. Every method takes the account first, so no call can forget the
//! tenant boundary.

mod dynamodb;
mod embedded;

pub use dynamodb::{DynamoDbStore, ImportReport, ListTuning};
pub use embedded::EmbeddedStore;

use async_trait::async_trait;

use crate::list::{ListPage, ListQuery};
use crate::meter::{
    AccountId, FieldError, Meter, MeterChanges, MeterId, NewMeter, ReadOnlyEcho, Timestamp,
};

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

/// A create's remembered answer under an `Idempotency-Key`, replayed to a retry of the same request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RememberedAnswer {
    pub status: u16,
    pub body: String,
    pub location: String,
    pub etag: String,
}

/// What claiming an `Idempotency-Key` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's now: go ahead, then `complete_idempotent` or `release_idempotent`.
    Claimed,
    /// A request with this key and the same body completed: replay its answer, create nothing.
    Completed(RememberedAnswer),
    /// A request with this key and the same body is still running.
    InProgress,
    /// The key was used with another body.
    OtherBody,
}

/// How long a completed create is remembered, and how long an unfinished claim holds its key (a process
/// that died mid-request must not hold it for a day).
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
pub const IDEMPOTENCY_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

#[async_trait]
pub trait MeterStore: Send + Sync + std::fmt::Debug {
    /// Assigns a fresh id, unique across all accounts and never one of a live meter, and stores the meter.
    async fn create(&self, account: &AccountId, meter: NewMeter) -> Result<Meter, StoreError>;

    /// The meter, read strongly consistently.
    async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError>;

    /// One page of the account's meters and how many match, exactly as `ListQuery` defines them, read
    /// strongly consistently: no write acknowledged before the call began is missed.
    async fn list(&self, account: &AccountId, query: &ListQuery) -> Result<ListPage, StoreError>;

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

    /// Claims `key` in `account` for a request whose body has `fingerprint`, atomically: exactly one of
    /// several concurrent claims gets `Claimed`. Expired records (and unfinished claims past their lease) are
    /// taken over as if absent.
    async fn claim_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<Claim, StoreError>;

    /// Remembers the answer of the request that claimed `key`, for `IDEMPOTENCY_TTL` from `now`.
    async fn complete_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        answer: &RememberedAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Forgets a claim whose request failed: failed requests are not remembered.
    async fn release_idempotent(&self, account: &AccountId, key: &str) -> Result<(), StoreError>;

    /// Removes the meter, provided its version is one `if_match` allows (checked atomically); its id is
    /// never handed out again.
    async fn delete(
        &self,
        account: &AccountId,
        id: MeterId,
        if_match: IfMatch,
    ) -> Result<(), StoreError>;
}

/// An idempotency record as both stores keep it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub fingerprint: String,
    /// Set once the request completed.
    pub answer: Option<RememberedAnswer>,
    /// Unix seconds after which the record no longer counts (the DynamoDB TTL attribute).
    pub expires_at: i64,
}

impl IdempotencyRecord {
    pub fn claimed(fingerprint: &str, now: Timestamp) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            answer: None,
            expires_at: now.timestamp() + IDEMPOTENCY_LEASE.as_secs() as i64,
        }
    }

    pub fn completed(fingerprint: &str, answer: &RememberedAnswer, now: Timestamp) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            answer: Some(answer.clone()),
            expires_at: now.timestamp() + IDEMPOTENCY_TTL.as_secs() as i64,
        }
    }

    /// What a new claim with `fingerprint` meets in this (live) record.
    pub fn claim_against(&self, fingerprint: &str) -> Claim {
        match &self.answer {
            _ if self.fingerprint != fingerprint => Claim::OtherBody,
            Some(answer) => Claim::Completed(answer.clone()),
            None => Claim::InProgress,
        }
    }
}

/// The store's complaint about an echoed read-only field, in the caller's terms.
pub(crate) fn read_only_mismatch(read_only: &ReadOnlyEcho, stored: &Meter) -> Option<StoreError> {
    read_only
        .first_mismatch(stored)
        .map(|field| StoreError::ReadOnlyChanged(crate::meter::read_only_changed(field)))
}
