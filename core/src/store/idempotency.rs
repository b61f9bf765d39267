//! The port for idempotency records: a create's `Idempotency-Key` claimed with the id reserved for it,
//! completed with its answer, or left when the request ended not knowing what it wrote. The protocol that
//! uses it is `http::idempotency`.

use async_trait::async_trait;

use super::error::StoreError;
use crate::domain::meter::{AccountId, MeterId, Timestamp};

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
    /// The key is this request's now: create under `meter_id`, then `complete_idempotent`. The id is the one
    /// this request reserved, or, when it took over from an attempt of the same request that ended without
    /// an answer, that attempt's: whatever the attempt wrote stands under it.
    Claimed { meter_id: MeterId },
    /// A request with this key and the same body completed: replay its answer, create nothing.
    Completed(RememberedAnswer),
    /// A request with this key and the same body is still running (its lease has not ended).
    InProgress,
    /// The key is held for another body.
    OtherBody,
}

/// A claim of `key` for a request whose body has `fingerprint`, binding it to `reserved` until `lease_until`.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyClaim<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub reserved: MeterId,
    pub lease_until: Timestamp,
    pub now: Timestamp,
}

/// The answer of the request that claimed `key` (under `meter_id`), to remember.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyCompletion<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub meter_id: MeterId,
    pub answer: &'a RememberedAnswer,
    pub now: Timestamp,
}

/// How long a completed create is remembered. An unfinished claim holds its key only for its lease: the
/// request's deadline, past which the request has ended whatever happened to it.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[async_trait]
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Claims `key` in `account` for a request whose body has `fingerprint`, atomically: of several
    /// concurrent claims exactly one gets `Claimed`. A new claim binds the key to `reserved` and holds it
    /// until `lease_until`. A claim of the same body whose lease has ended is taken over with the id it was
    /// bound to; a completed record past `IDEMPOTENCY_TTL`, or another body's claim past its lease, counts
    /// as absent.
    async fn claim_idempotent(
        &self,
        account: &AccountId,
        claim: IdempotencyClaim<'_>,
    ) -> Result<Claim, StoreError>;

    /// Remembers the answer of the request that claimed `key` (under `meter_id`), for `IDEMPOTENCY_TTL`.
    async fn complete_idempotent(
        &self,
        account: &AccountId,
        completion: IdempotencyCompletion<'_>,
    ) -> Result<(), StoreError>;

    /// Ends the lease of an unfinished claim at `now`: its request ended without knowing what it wrote, so
    /// the key stays bound to its id, and a retry of the same body takes it over at once.
    async fn end_idempotent_lease(
        &self,
        account: &AccountId,
        key: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}

/// An idempotency record as both stores keep it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    /// Set once the request completed.
    pub answer: Option<RememberedAnswer>,
    /// The id reserved for the create (absent in records written before ids were reserved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_id: Option<i64>,
    /// Unix seconds after which the record no longer counts: the lease of an unfinished claim, the
    /// remembered time of a completed one (the DynamoDB TTL attribute).
    pub expires_at: i64,
}

/// What a claim meets in a stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meeting {
    /// The answer to give; the record stays.
    Answer(Claim),
    /// The record is replaced by a claim bound to this id (the reserved one, or the one taken over).
    Replace(MeterId),
}

impl IdempotencyRecord {
    pub fn claimed(fingerprint: &str, meter_id: MeterId, lease_until: Timestamp) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            answer: None,
            meter_id: Some(meter_id.get()),
            expires_at: lease_until.timestamp(),
        }
    }

    pub fn completed(
        fingerprint: &str,
        meter_id: MeterId,
        answer: &RememberedAnswer,
        now: Timestamp,
    ) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            answer: Some(answer.clone()),
            meter_id: Some(meter_id.get()),
            expires_at: now.timestamp() + IDEMPOTENCY_TTL.as_secs() as i64,
        }
    }

    /// What a claim of `fingerprint`, with `reserved` ready, meets in this record at `now`.
    pub fn meet(&self, fingerprint: &str, reserved: MeterId, now: Timestamp) -> Meeting {
        let live = self.expires_at >= now.timestamp();
        let same_body = self.fingerprint == fingerprint;
        match (&self.answer, live, same_body) {
            (_, true, false) => Meeting::Answer(Claim::OtherBody),
            (Some(answer), true, true) => Meeting::Answer(Claim::Completed(answer.clone())),
            (None, true, true) => Meeting::Answer(Claim::InProgress),
            // The same request again, after an attempt that ended without an answer: under its id.
            (None, false, true) => Meeting::Replace(
                self.meter_id
                    .and_then(|id| MeterId::new(id).ok())
                    .unwrap_or(reserved),
            ),
            (_, false, _) => Meeting::Replace(reserved),
        }
    }
}
