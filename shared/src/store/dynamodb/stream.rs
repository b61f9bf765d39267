//! The table's stream, read back: which of its records are about a meter (the rest are bookkeeping: heads,
//! tombstones, change log windows, the id counter, idempotency records; `ItemKey` tells them apart), and
//! the meter and its writers in a record's image. The change events (`crate::events`) are made of these and
//! of the tombstone a delete wrote (`DynamoDbStore::deletion`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{from_item, written_by};
use super::keys::ItemKey;
use crate::domain::WrittenBy;
use crate::domain::meter::{AccountId, Meter, MeterId};
use crate::store::error::StoreError;

/// The meter a record's keys name, or `None` for every other item the table holds.
pub fn meter_keys(keys: &HashMap<String, AttributeValue>) -> Option<(AccountId, MeterId)> {
    match ItemKey::of(keys)? {
        ItemKey::Meter(account, id) => Some((account, id)),
        _ => None,
    }
}

/// The meter in a record's image (new or old), and who had written it by then.
pub fn meter_of_image(
    image: HashMap<String, AttributeValue>,
) -> Result<(Meter, WrittenBy), StoreError> {
    let writers = written_by(&image)?;
    Ok((from_item(image)?, writers))
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
