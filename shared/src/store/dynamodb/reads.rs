//! Reading one meter, strongly consistent, and telling another account's meter (403) from none (404).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};

use super::capacity::spend_read;
use super::client::Table;
use super::errors::sdk_error;
use super::items::{from_item, meter_key, number, written_by};
use super::schema::ID_INDEX;
use crate::domain::WrittenBy;
use crate::domain::meter::{AccountId, Meter, MeterId};
use crate::store::error::StoreError;

impl Table {
    /// The item under `key`, read strongly consistent, its capacity counted: every single-item read (a
    /// meter, an account's head) goes through here.
    pub(super) async fn consistent_item(
        &self,
        key: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_read(output.consumed_capacity());
        Ok(output.item)
    }

    pub(super) async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError> {
        match self.read_meter(account, id).await? {
            Some(meter) => Ok(meter),
            None => Err(self.missing(account, id).await?),
        }
    }

    pub(super) async fn written_by(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<WrittenBy, StoreError> {
        match self.consistent_item(meter_key(account, id)).await? {
            Some(item) => written_by(&item),
            None => Err(self.missing(account, id).await?),
        }
    }

    pub(super) async fn read_meter(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<Option<Meter>, StoreError> {
        self.consistent_item(meter_key(account, id))
            .await?
            .map(from_item)
            .transpose()
    }

    /// After a miss in the caller's account: 403 if the id lives in another account, else 404. The index
    /// is eventually consistent, so it may still list a meter of the caller's own account that was just
    /// deleted: that is 404 too.
    pub(super) async fn missing(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<StoreError, StoreError> {
        Ok(match self.owner_of(id).await? {
            Some(owner) if owner != account.to_string() => StoreError::OtherAccount(id),
            _ => StoreError::NotFound(id),
        })
    }

    /// The account holding meter `id`, by the id index: eventually consistent, so a meter written or
    /// deleted a moment ago may not show yet.
    pub(super) async fn owner_of(&self, id: MeterId) -> Result<Option<String>, StoreError> {
        self.indexed_account(id.get()).await
    }

    /// The account whose deleted meter `id` was, by its tombstone in the id index (under the negated id):
    /// an id retired there is given to no other account.
    pub(super) async fn retired_to(&self, id: MeterId) -> Result<Option<String>, StoreError> {
        self.indexed_account(-id.get()).await
    }

    async fn indexed_account(&self, id: i64) -> Result<Option<String>, StoreError> {
        let found = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(ID_INDEX)
            .key_condition_expression("#id = :id")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", number(id))
            .limit(1)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_read(found.consumed_capacity());
        Ok(found
            .items()
            .first()
            .and_then(|item| item.get("account_id"))
            .and_then(|owner| owner.as_s().ok())
            .cloned())
    }
}
