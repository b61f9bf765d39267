//! The table's stream, read back: which of its records are about a meter (the rest are bookkeeping: heads,
//! tombstones, the id counter, idempotency records), the meter and its writers in a record's image, and who
//! deleted a meter, from its tombstone. The change events (`crate::events`) are made of these.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::client::Table;
use super::errors::internal;
use super::items::{Item, from_item, tombstone_key, written_by};
use super::schema::{DELETED_AT_ATTRIBUTE, DELETED_BY_ATTRIBUTE, VERSION_ATTRIBUTE};
use crate::domain::meter::{AccountId, Meter, MeterId, Timestamp};
use crate::domain::{Actor, WrittenBy};
use crate::store::error::StoreError;

/// The meter a record's keys name, or `None` for every other item the table holds: a partition key that is
/// not an account (the id counter, idempotency records) or an id below 1 (heads, tombstones, the change
/// log's windows, whose ids are below every i64).
pub fn meter_keys(keys: &HashMap<String, AttributeValue>) -> Option<(AccountId, MeterId)> {
    let account = keys.get("account_id")?.as_s().ok()?;
    let id = keys.get("id")?.as_n().ok()?.parse::<i64>().ok()?;
    Some((AccountId::parse(account).ok()?, MeterId::new(id).ok()?))
}

/// The meter in a record's image (new or old), and who had written it by then.
pub fn meter_of_image(
    image: HashMap<String, AttributeValue>,
) -> Result<(Meter, WrittenBy), StoreError> {
    let writers = written_by(&image)?;
    Ok((from_item(image)?, writers))
}

/// Who deleted a meter, when, and which version of it, as its tombstone says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletion {
    pub deleted_by: Option<Actor>,
    pub deleted_at: Option<Timestamp>,
    pub version: Option<u64>,
}

impl Table {
    pub(super) async fn deletion(
        &self,
        account: &AccountId,
        id: MeterId,
    ) -> Result<Option<Deletion>, StoreError> {
        let Some(item) = self.consistent_item(tombstone_key(account, id)).await? else {
            return Ok(None);
        };
        Ok(Some(deletion_of(&item)?))
    }
}

fn deletion_of(item: &Item) -> Result<Deletion, StoreError> {
    let deleted_by = item
        .get(DELETED_BY_ATTRIBUTE)
        .map(|value| serde_dynamo::from_attribute_value::<_, Actor>(value.clone()))
        .transpose()
        .map_err(internal)?;
    let deleted_at = item
        .get(DELETED_AT_ATTRIBUTE)
        .map(|value| serde_dynamo::from_attribute_value::<_, Timestamp>(value.clone()))
        .transpose()
        .map_err(internal)?;
    let version = item
        .get(VERSION_ATTRIBUTE)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok());
    Ok(Deletion {
        deleted_by,
        deleted_at,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(account: &str, id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("account_id".into(), AttributeValue::S(account.into())),
            ("id".into(), AttributeValue::N(id.into())),
        ])
    }

    #[test]
    fn only_a_meters_keys_name_a_meter() {
        let account = "6f1c2a9b-7d3e-4c5f-8a9b-0c1d2e3f4a5b";
        assert!(meter_keys(&keys(account, "42")).is_some());
        for (partition, id) in [
            (account, "0"),
            (account, "-42"),
            (account, "-10000000000000000064"),
            ("#meter-id-counter", "0"),
            ("#idempotency#6f1c2a9b-7d3e-4c5f-8a9b-0c1d2e3f4a5b#key", "0"),
        ] {
            assert_eq!(meter_keys(&keys(partition, id)), None, "{partition} {id}");
        }
    }
}
