//! The port for idempotency records: a create's `Idempotency-Key` claimed, completed with its answer, or
//! released. The protocol that uses it is `http::idempotency`.

use async_trait::async_trait;

use super::error::StoreError;
use crate::domain::meter::{AccountId, Timestamp};

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
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
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
    pub(crate) fn claimed(fingerprint: &str, now: Timestamp) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            answer: None,
            expires_at: now.timestamp() + IDEMPOTENCY_LEASE.as_secs() as i64,
        }
    }

    pub(crate) fn completed(fingerprint: &str, answer: &RememberedAnswer, now: Timestamp) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            answer: Some(answer.clone()),
            expires_at: now.timestamp() + IDEMPOTENCY_TTL.as_secs() as i64,
        }
    }

    /// What a new claim with `fingerprint` meets in this (live) record.
    pub(crate) fn claim_against(&self, fingerprint: &str) -> Claim {
        match &self.answer {
            _ if self.fingerprint != fingerprint => Claim::OtherBody,
            Some(answer) => Claim::Completed(answer.clone()),
            None => Claim::InProgress,
        }
    }
}
