//! Reading one meter or its tombstone, strongly consistently, and telling another account's meter (403)
//! from none (404) by the id index.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::capacity::spend_read;
use super::errors::{internal, sdk_error};
use super::items::{from_item, written_by};
use super::keys::{Held, ItemKey, partition};
use super::schema::{DELETED_AT_ATTRIBUTE, DELETED_BY_ATTRIBUTE, ID_INDEX, VERSION_ATTRIBUTE};
use super::table::Table;
use crate::domain::meter::{AccountId, Meter, MeterId, Timestamp};
use crate::domain::{Actor, WrittenBy};
use crate::store::error::StoreError;

/// Who deleted a meter, when, and which version of it, as its tombstone says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletion {
    pub deleted_by: Option<Actor>,
    pub deleted_at: Option<Timestamp>,
    pub version: Option<u64>,
}

/// Single meters, and their tombstones, in one table.
#[derive(Debug, Clone)]
pub(super) struct MeterReads {
    table: Table,
}

impl MeterReads {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    pub(super) async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError> {
        match self.read(account, id).await? {
            Some(meter) => Ok(meter),
            None => Err(self.missing(account, id).await?),
        }
    }

    pub(super) async fn written_by(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<WrittenBy, StoreError> {
        match self.table.item(&ItemKey::Meter(*account, id)).await? {
            Some(item) => written_by(&item),
            None => Err(self.missing(account, id).await?),
        }
    }

    /// The meter, if the account holds it.
    pub(super) async fn read(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<Option<Meter>, StoreError> {
        self.table
            .item(&ItemKey::Meter(*account, id))
            .await?
            .map(from_item)
            .transpose()
    }

    /// The tombstone of meter `id`: written in the delete's own transaction, so it is there when the
    /// stream's record of the delete is; `None` for a meter never deleted, or removed another way.
    pub(super) async fn deletion(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<Option<Deletion>, StoreError> {
        let Some(item) = self.table.item(&ItemKey::Tombstone(*account, id)).await? else {
            return Ok(None);
        };
        let attribute = |name: &str| item.get(name).cloned();
        Ok(Some(Deletion {
            deleted_by: attribute(DELETED_BY_ATTRIBUTE)
                .map(serde_dynamo::from_attribute_value)
                .transpose()
                .map_err(internal)?,
            deleted_at: attribute(DELETED_AT_ATTRIBUTE)
                .map(serde_dynamo::from_attribute_value)
                .transpose()
                .map_err(internal)?,
            version: item
                .get(VERSION_ATTRIBUTE)
                .and_then(|value| value.as_n().ok()?.parse().ok()),
        }))
    }

    /// After a miss in the caller's account: 403 if the id lives in another account, else 404. The index
    /// is eventually consistent, so it may still list a meter of the caller's own account that was just
    /// deleted: that is 404 too.
    pub(super) async fn missing(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<StoreError, StoreError> {
        Ok(match self.holder_of(Held::Meter(id)).await? {
            Some(owner) if owner != account.to_string() => StoreError::OtherAccount(id),
            _ => StoreError::NotFound(id),
        })
    }

    /// The account holding the meter, or the tombstone, `held` names, by the id index: eventually
    /// consistent, so a meter written or deleted a moment ago may not show yet.
    pub(super) async fn holder_of(&self, held: Held) -> Result<Option<String>, StoreError> {
        let query = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(ID_INDEX);
        let found = held
            .of(query)
            .limit(1)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_read(found.consumed_capacity());
        Ok(found.items().first().and_then(partition).map(str::to_owned))
    }
}
