//! The table and the client that reaches it: what every part of this adapter holds, and the one read they
//! all make of a single item.

use std::sync::Arc;

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::capacity::spend_read;
use super::errors::sdk_error;
use super::keys::{Item, ItemKey};
use crate::store::error::StoreError;

/// A table of this layout, and the client built once per process that reaches it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: Arc<str>,
}

impl Table {
    pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into().into(),
        }
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The item under `key`, read strongly consistently, its capacity counted: every single-item read (a
    /// meter, a head, a tombstone) goes through here.
    pub(super) async fn item(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(self.name())
            .set_key(Some(key.item()))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_read(output.consumed_capacity());
        Ok(output.item)
    }
}
