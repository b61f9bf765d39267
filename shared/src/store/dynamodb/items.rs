//! Items and keys: a meter to and from its item (attributes named as its JSON fields, unset fields absent),
//! and the keys of the other items the table holds beside the meters.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::errors::internal;
use super::schema::{
    COUNTER_PARTITION, CREATED_BY_ATTRIBUTE, CREATED_SORT_ATTRIBUTE, HEAD_ID, IDEMPOTENCY_PREFIX,
    NAME_SORT_ATTRIBUTE, UPDATED_BY_ATTRIBUTE, VERSION_ATTRIBUTE, WRITE_TOKEN_ATTRIBUTE,
};
use crate::domain::meter::{AccountId, Meter, MeterId};
use crate::domain::{Actor, WrittenBy};
use crate::store::error::StoreError;
use crate::store::idempotency::IdempotencyRecord;

/// An item, or a key, as the SDK takes it.
pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A meter's key.
pub(super) fn meter_key(account: &AccountId, id: MeterId) -> Item {
    HashMap::from([
        ("account_id".into(), AttributeValue::S(account.to_string())),
        ("id".into(), number(id.get())),
    ])
}

/// A deleted meter's tombstone: the negated id in its account's partition.
pub(super) fn tombstone_key(account: &AccountId, id: MeterId) -> Item {
    HashMap::from([
        ("account_id".into(), AttributeValue::S(account.to_string())),
        ("id".into(), number(-id.get())),
    ])
}

/// An actor as an attribute: a map of `sub` and `client_id`.
pub(super) fn actor_value(actor: &Actor) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(actor).map_err(internal)
}

/// Who created and last changed the meter of this item, as recorded on it.
pub(super) fn written_by(item: &Item) -> Result<WrittenBy, StoreError> {
    let actor = |name: &str| {
        item.get(name)
            .map(|value| serde_dynamo::from_attribute_value::<_, Actor>(value.clone()))
            .transpose()
            .map_err(internal)
    };
    Ok(WrittenBy {
        created_by: actor(CREATED_BY_ATTRIBUTE)?,
        updated_by: actor(UPDATED_BY_ATTRIBUTE)?,
    })
}

/// The account's head: its meter count and list version, at id 0 of its partition.
pub(super) fn head_key(account: &AccountId) -> Item {
    HashMap::from([
        ("account_id".into(), AttributeValue::S(account.to_string())),
        ("id".into(), number(HEAD_ID)),
    ])
}

/// The id counter's key.
pub(super) fn counter_key() -> Item {
    HashMap::from([
        (
            "account_id".into(),
            AttributeValue::S(COUNTER_PARTITION.into()),
        ),
        ("id".into(), number(0)),
    ])
}

/// The meter's item: attributes named as its JSON fields, unset fields absent rather than NULL, and its
/// version.
pub(super) fn to_item(meter: &Meter) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(meter).map_err(internal)?;
    item.retain(|_, value| !value.is_null());
    item.insert(
        VERSION_ATTRIBUTE.into(),
        AttributeValue::N(meter.version.to_string()),
    );
    item.insert(NAME_SORT_ATTRIBUTE.into(), name_sort(meter));
    item.insert(
        CREATED_SORT_ATTRIBUTE.into(),
        AttributeValue::S(meter.created_at.format("%Y-%m-%dT%H:%M:%S%.9f").to_string()),
    );
    Ok(item)
}

/// The name as the name index orders it: as the sort compares it.
pub(super) fn name_sort(meter: &Meter) -> AttributeValue {
    AttributeValue::S(meter.name.as_str().to_lowercase())
}

pub(super) fn from_item(mut item: Item) -> Result<Meter, StoreError> {
    for derived in [
        NAME_SORT_ATTRIBUTE,
        CREATED_SORT_ATTRIBUTE,
        WRITE_TOKEN_ATTRIBUTE,
        CREATED_BY_ATTRIBUTE,
        UPDATED_BY_ATTRIBUTE,
    ] {
        item.remove(derived);
    }
    let version = match item.remove(VERSION_ATTRIBUTE) {
        Some(AttributeValue::N(n)) => n.parse().map_err(internal)?,
        _ => 0,
    };
    let mut meter: Meter = serde_dynamo::from_item(item).map_err(internal)?;
    meter.version = version;
    Ok(meter)
}

/// Idempotency records live beside the meters under a partition key that is not a UUID, so it can never be
/// an account's; `expires_at` is the table's TTL attribute.
pub(super) fn idempotency_key(account: &AccountId, key: &str) -> Item {
    HashMap::from([
        (
            "account_id".into(),
            AttributeValue::S(format!("{IDEMPOTENCY_PREFIX}{account}#{key}")),
        ),
        ("id".into(), number(0)),
    ])
}

pub(super) fn idempotency_item(
    account: &AccountId,
    key: &str,
    record: &IdempotencyRecord,
) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(internal)?;
    item.retain(|_, value| !value.is_null());
    item.extend(idempotency_key(account, key));
    Ok(item)
}

pub(super) fn idempotency_record(mut item: Item) -> Result<IdempotencyRecord, StoreError> {
    item.remove("account_id");
    item.remove("id");
    serde_dynamo::from_item(item).map_err(internal)
}
