//! Items: a meter to and from its item (attributes named as its JSON fields, unset fields absent, its
//! version and its sort indexes' attributes beside them), its writers, and an idempotency record's item.
//! Their keys are `keys`'.

use aws_sdk_dynamodb::types::AttributeValue;

use super::errors::internal;
use super::keys::{Item, ItemKey, PARTITION_KEY, SORT_KEY};
use super::schema::{
    CREATED_BY_ATTRIBUTE, CREATED_SORT_ATTRIBUTE, NAME_SORT_ATTRIBUTE, READING_SORT_ATTRIBUTE,
    READINGS_ATTRIBUTE, UPDATED_BY_ATTRIBUTE, VERSION_ATTRIBUTE, WRITE_TOKEN_ATTRIBUTE,
    WRITTEN_BY_READING_ATTRIBUTE,
};
use crate::domain::meter::{AccountId, Meter, Timestamp};
use crate::domain::{Actor, WrittenBy};
use crate::store::error::StoreError;
use crate::store::idempotency::IdempotencyRecord;

pub(super) fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
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

/// The meter's item: attributes named as its JSON fields, unset fields absent rather than NULL, its version
/// and readings applied, and the attributes its orders compare.
pub(super) fn to_item(meter: &Meter) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(meter).map_err(internal)?;
    item.retain(|_, value| !value.is_null());
    item.insert(
        VERSION_ATTRIBUTE.into(),
        AttributeValue::N(meter.version.to_string()),
    );
    item.insert(
        READINGS_ATTRIBUTE.into(),
        AttributeValue::N(meter.readings.to_string()),
    );
    item.insert(NAME_SORT_ATTRIBUTE.into(), name_sort(meter));
    item.insert(CREATED_SORT_ATTRIBUTE.into(), time_sort(meter.created_at));
    if let Some(at) = meter.last_reading_at {
        item.insert(READING_SORT_ATTRIBUTE.into(), time_sort(at));
    }
    Ok(item)
}

/// An instant at fixed width (years 0001 to 9999, nanoseconds), so that text order is time order: what the
/// created index sorts by, and what a reading's `at` is compared with.
pub(super) fn time_sort(at: Timestamp) -> AttributeValue {
    AttributeValue::S(at.format("%Y-%m-%dT%H:%M:%S%.9f").to_string())
}

/// The name as the name index orders it: as the sort compares it.
pub(super) fn name_sort(meter: &Meter) -> AttributeValue {
    AttributeValue::S(meter.name.as_str().to_lowercase())
}

pub(super) fn from_item(mut item: Item) -> Result<Meter, StoreError> {
    for derived in [
        NAME_SORT_ATTRIBUTE,
        CREATED_SORT_ATTRIBUTE,
        READING_SORT_ATTRIBUTE,
        WRITTEN_BY_READING_ATTRIBUTE,
        WRITE_TOKEN_ATTRIBUTE,
        CREATED_BY_ATTRIBUTE,
        UPDATED_BY_ATTRIBUTE,
    ] {
        item.remove(derived);
    }
    let version = match item.remove(VERSION_ATTRIBUTE) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().map_err(internal)?,
        _ => return Err(internal("a meter item without a version")),
    };
    // An item written before readings came has none.
    let readings = match item.remove(READINGS_ATTRIBUTE) {
        None => 0,
        Some(AttributeValue::N(n)) => n.parse::<u64>().map_err(internal)?,
        Some(_) => return Err(internal("a meter item's readings are not a number")),
    };
    let mut meter: Meter = serde_dynamo::from_item(item).map_err(internal)?;
    meter.version = version;
    meter.readings = readings;
    Ok(meter)
}

pub(super) fn idempotency_item(
    account: &AccountId,
    key: &str,
    record: &IdempotencyRecord,
) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(internal)?;
    item.retain(|_, value| !value.is_null());
    item.extend(
        ItemKey::Idempotency {
            account: *account,
            key: key.to_owned(),
        }
        .item(),
    );
    Ok(item)
}

pub(super) fn idempotency_record(mut item: Item) -> Result<IdempotencyRecord, StoreError> {
    item.remove(PARTITION_KEY);
    item.remove(SORT_KEY);
    serde_dynamo::from_item(item).map_err(internal)
}
