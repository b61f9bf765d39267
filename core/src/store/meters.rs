//! The port for meters. Every method takes the account first, so no call can forget the tenant boundary;
//! each states what it promises, and the contract suite (`shared/tests/suite/store_contract.rs`) holds both
//! adapters to it.

use async_trait::async_trait;

use super::error::StoreError;
use crate::domain::list::{ListPage, ListQuery};
use crate::domain::meter::{AccountId, Meter, MeterChanges, MeterId, NewMeter, ReadOnlyEcho};
use crate::domain::precondition::IfMatch;
use crate::domain::{Actor, WrittenBy};

/// What `create_with_id` stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub meter: Meter,
    /// The meter was already there: an earlier attempt of the same create wrote it.
    pub earlier_attempt: bool,
}

/// A create under `id`, which `reserve_id` gave it, recording `actor` as who created and last changed the meter.
#[derive(Debug, Clone)]
pub struct CreateMeterRequest {
    pub id: MeterId,
    pub meter: NewMeter,
    pub actor: Actor,
}

/// An update of meter `id`: the fields in `changes`, provided its version is one `if_match` allows and every
/// field in `read_only` still has the echoed value; `actor` is recorded as who last changed it.
#[derive(Debug, Clone)]
pub struct UpdateMeterRequest {
    pub id: MeterId,
    pub changes: MeterChanges,
    pub read_only: ReadOnlyEcho,
    pub if_match: IfMatch,
    pub actor: Actor,
}

/// A delete of meter `id`, provided its version is one `if_match` allows; `actor` is who deleted it.
#[derive(Debug, Clone)]
pub struct DeleteMeterRequest {
    pub id: MeterId,
    pub if_match: IfMatch,
    pub actor: Actor,
}

#[async_trait]
pub trait MeterStore: Send + Sync + std::fmt::Debug {
    /// An id for a create to come: unique across all accounts, never handed out again.
    async fn reserve_id(&self) -> Result<MeterId, StoreError>;

    /// Stores the meter under `id`, which `reserve_id` gave this create, recording `actor` as who created
    /// and last changed it. If the account already holds a meter under `id`, that is this create's own
    /// earlier attempt (its answer was lost): it is returned as stored, and nothing is written.
    async fn create_with_id(
        &self,
        account: &AccountId,
        create: CreateMeterRequest,
    ) -> Result<Created, StoreError>;

    /// Assigns a fresh id, unique across all accounts and never one of a live meter, and stores the meter.
    async fn create(
        &self,
        account: &AccountId,
        meter: NewMeter,
        actor: &Actor,
    ) -> Result<Meter, StoreError> {
        let id = self.reserve_id().await?;
        let create = CreateMeterRequest {
            id,
            meter,
            actor: actor.clone(),
        };
        Ok(self.create_with_id(account, create).await?.meter)
    }

    /// The meter, read strongly consistently.
    async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError>;

    /// One page of the account's meters and how many match, exactly as `ListQuery` defines them, read
    /// strongly consistently: no write acknowledged before the call began is missed.
    async fn list(&self, account: &AccountId, query: &ListQuery) -> Result<ListPage, StoreError>;

    /// Who created the meter and who last changed it, read strongly consistently.
    async fn written_by(&self, account: &AccountId, id: MeterId) -> Result<WrittenBy, StoreError>;

    /// Applies only the fields in `changes`, sets `updated_at`, raises the version, records `actor` as who
    /// last changed it, and returns the meter as stored, provided the meter exists in the account, its
    /// version is one `if_match` allows, and every field in `read_only` still has the echoed value: all
    /// checked atomically with the write.
    async fn update(
        &self,
        account: &AccountId,
        update: UpdateMeterRequest,
    ) -> Result<Meter, StoreError>;

    /// Removes the meter, provided its version is one `if_match` allows (checked atomically), recording
    /// `actor` as who deleted it where the adapter publishes deletions (DynamoDB: the change events); its
    /// id is never handed out again.
    async fn delete(
        &self,
        account: &AccountId,
        delete: DeleteMeterRequest,
    ) -> Result<(), StoreError>;
}
