//! The table's key space, as one type: every item the store writes has an `ItemKey`, every key it builds is
//! built here, and every item it reads back (a query's, a scan's, the stream's) is classified here.
//!
//! | item                              | partition key `account_id`       | sort key `id`                        |
//! |-----------------------------------|----------------------------------|--------------------------------------|
//! | a meter                           | its account (a UUID)             | its id, 1 and up                     |
//! | the account's head                | the account                      | 0                                    |
//! | a deleted meter's tombstone       | the account                      | minus the meter's id                 |
//! | a closed window of the change log | the account                      | `LOG_BASE` minus where it ends: below every i64 |
//! | the id counter                    | `#meter-id-counter`              | 0                                    |
//! | an idempotency record             | `#idempotency#<account>#<key>`   | 0                                    |
//!
//! Partition keys that are not UUIDs can never be an account's; the sort key's ranges never meet, so a query
//! of meters' ids never reads a head, a tombstone or a window.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::meter::{AccountId, MeterId};

/// An item, or a key, as the SDK takes it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The table's partition key: the account, for every item of one.
pub(super) const PARTITION_KEY: &str = "account_id";
/// The table's sort key: a meter's id, and the places of the account's other items around them.
pub(super) const SORT_KEY: &str = "id";
/// A write's condition that no item stands under its key.
pub(super) const ABSENT: &str = "attribute_not_exists(account_id)";
/// A write's condition that an item stands under its key.
pub(super) const PRESENT: &str = "attribute_exists(account_id)";
/// The counter item's partition key.
pub const COUNTER_PARTITION: &str = "#meter-id-counter";
const IDEMPOTENCY_PREFIX: &str = "#idempotency#";
/// Log windows' sort keys are `LOG_BASE - until`: below i64::MIN for every version, newer windows lower.
const LOG_BASE: i128 = -10_000_000_000_000_000_000;
const HEAD_SORT: i64 = 0;
/// An account is a UUID: 36 characters.
const ACCOUNT_LEN: usize = 36;

/// The key of every kind of item the table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKey {
    Meter(AccountId, MeterId),
    /// The account's meter count, list version and recent changes (`head`).
    Head(AccountId),
    /// Who deleted the meter, when, at which version; kept for good (`writes`).
    Tombstone(AccountId, MeterId),
    /// The window of recent changes that ended at list version `until` (`changelog`).
    LogWindow {
        account: AccountId,
        until: u64,
    },
    /// The last id handed out in a block (`ids`).
    Counter,
    /// A create's idempotency record under its `Idempotency-Key` (`idempotency`).
    Idempotency {
        account: AccountId,
        key: String,
    },
}

impl ItemKey {
    /// The key's two attributes, as a read or a write names its item.
    pub(super) fn item(&self) -> Item {
        HashMap::from([
            (PARTITION_KEY.into(), AttributeValue::S(self.partition())),
            (SORT_KEY.into(), AttributeValue::N(self.sort().to_string())),
        ])
    }

    /// What kind of item carries these keys (an item's own, or a stream record's); `None` for keys this
    /// layout never writes.
    pub fn of(item: &Item) -> Option<Self> {
        let partition = item.get(PARTITION_KEY)?.as_s().ok()?;
        let sort: i128 = item.get(SORT_KEY)?.as_n().ok()?.parse().ok()?;
        if partition == COUNTER_PARTITION {
            return (sort == 0).then_some(Self::Counter);
        }
        if let Some(rest) = partition.strip_prefix(IDEMPOTENCY_PREFIX) {
            let account = AccountId::parse(rest.get(..ACCOUNT_LEN)?).ok()?;
            let key = rest.get(ACCOUNT_LEN..)?.strip_prefix('#')?;
            return (sort == 0).then(|| Self::Idempotency {
                account,
                key: key.to_owned(),
            });
        }
        let account = AccountId::parse(partition).ok()?;
        let meter = |id: i128| MeterId::new(i64::try_from(id).ok()?).ok();
        match sort {
            0 => Some(Self::Head(account)),
            1.. => Some(Self::Meter(account, meter(sort)?)),
            ..0 if sort > LOG_BASE => Some(Self::Tombstone(account, meter(-sort)?)),
            _ => Some(Self::LogWindow {
                account,
                until: u64::try_from(LOG_BASE - sort).ok()?,
            }),
        }
    }

    fn partition(&self) -> String {
        match self {
            Self::Meter(account, _)
            | Self::Head(account)
            | Self::Tombstone(account, _)
            | Self::LogWindow { account, .. } => account.to_string(),
            Self::Counter => COUNTER_PARTITION.to_owned(),
            Self::Idempotency { account, key } => format!("{IDEMPOTENCY_PREFIX}{account}#{key}"),
        }
    }

    fn sort(&self) -> i128 {
        match self {
            Self::Meter(_, id) => i128::from(id.get()),
            Self::Head(_) | Self::Counter | Self::Idempotency { .. } => i128::from(HEAD_SORT),
            Self::Tombstone(_, id) => -i128::from(id.get()),
            Self::LogWindow { until, .. } => LOG_BASE - i128::from(*until),
        }
    }
}

/// The sort keys of one account's partition that a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SortKeys {
    /// Meters with ids `from..=to` (`from` at least 1).
    Meters { from: i64, to: i64 },
    /// Every meter.
    AllMeters,
    /// Windows of the change log that end after list version `held`.
    LogWindowsAfter(u64),
}

impl SortKeys {
    /// `query`, keyed to these sort keys of `account`'s partition.
    pub(super) fn of(self, account: &AccountId, query: QueryFluentBuilder) -> QueryFluentBuilder {
        let (low, high) = match self {
            Self::Meters { from, to } => (i128::from(from.max(1)), i128::from(to)),
            Self::AllMeters => (1, i128::from(i64::MAX)),
            Self::LogWindowsAfter(held) => (
                ItemKey::LogWindow {
                    account: *account,
                    until: u64::MAX,
                }
                .sort(),
                ItemKey::LogWindow {
                    account: *account,
                    until: held.saturating_add(1),
                }
                .sort(),
            ),
        };
        partition_of(account, query)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_values(":low", AttributeValue::N(low.to_string()))
            .expression_attribute_values(":high", AttributeValue::N(high.to_string()))
    }
}

/// `query` of an index keyed by the account alone (the sort indexes): its whole partition.
pub(super) fn whole_partition(
    account: &AccountId,
    query: QueryFluentBuilder,
) -> QueryFluentBuilder {
    partition_of(account, query).key_condition_expression("#pk = :pk")
}

fn partition_of(account: &AccountId, query: QueryFluentBuilder) -> QueryFluentBuilder {
    query
        .expression_attribute_names("#pk", PARTITION_KEY)
        .expression_attribute_values(":pk", AttributeValue::S(account.to_string()))
}

/// What the id index (keyed by the sort key alone) is asked about: which account holds the meter, or the
/// tombstone of the meter, with this id.
#[derive(Debug, Clone, Copy)]
pub(super) enum Held {
    Meter(MeterId),
    Tombstone(MeterId),
}

impl Held {
    /// `query` of the id index, keyed to this.
    pub(super) fn of(self, query: QueryFluentBuilder) -> QueryFluentBuilder {
        let sort = match self {
            Held::Meter(id) => id.get(),
            Held::Tombstone(id) => -id.get(),
        };
        query
            .key_condition_expression("#sk = :sk")
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_values(":sk", AttributeValue::N(sort.to_string()))
    }
}

/// The partition key of an item the id index found: the account that holds it.
pub(super) fn partition(item: &Item) -> Option<&str> {
    item.get(PARTITION_KEY)?.as_s().ok().map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_store_builds_is_classified_as_what_it_was_built_for() {
        let account = AccountId::from(uuid::Uuid::new_v4());
        let id = MeterId::new(42).unwrap();
        let largest = MeterId::new(i64::MAX).unwrap();
        for key in [
            ItemKey::Meter(account, id),
            ItemKey::Meter(account, largest),
            ItemKey::Head(account),
            ItemKey::Tombstone(account, id),
            ItemKey::Tombstone(account, largest),
            ItemKey::LogWindow { account, until: 0 },
            ItemKey::LogWindow {
                account,
                until: u64::MAX,
            },
            ItemKey::Counter,
            ItemKey::Idempotency {
                account,
                key: "retry#1".into(),
            },
        ] {
            assert_eq!(ItemKey::of(&key.item()), Some(key.clone()), "{key:?}");
        }
    }

    #[test]
    fn keys_this_layout_never_writes_are_not_classified() {
        let keys = |partition: &str, sort: &str| {
            HashMap::from([
                (PARTITION_KEY.into(), AttributeValue::S(partition.into())),
                (SORT_KEY.into(), AttributeValue::N(sort.into())),
            ])
        };
        let account = "6f1c2a9b-7d3e-4c5f-8a9b-0c1d2e3f4a5b";
        for (partition, sort) in [
            ("not-an-account", "1"),
            (COUNTER_PARTITION, "1"),
            ("#idempotency#not-an-account#key", "0"),
            (&format!("#idempotency#{account}"), "0"),
            (account, "1.5"),
            (account, &(i128::from(i64::MAX) + 1).to_string()),
            (account, &(LOG_BASE - i128::from(u64::MAX) - 1).to_string()),
        ] {
            assert_eq!(
                ItemKey::of(&keys(partition, sort)),
                None,
                "{partition} {sort}"
            );
        }
    }

    #[test]
    fn the_sort_key_ranges_of_meters_tombstones_and_windows_never_meet() {
        let account = AccountId::from(uuid::Uuid::new_v4());
        let lowest_tombstone = ItemKey::Tombstone(account, MeterId::new(i64::MAX).unwrap()).sort();
        let highest_window = ItemKey::LogWindow { account, until: 0 }.sort();
        assert!(highest_window < lowest_tombstone);
        assert!(ItemKey::Tombstone(account, MeterId::new(1).unwrap()).sort() < HEAD_SORT.into());
        assert!(
            ItemKey::LogWindow { account, until: 2 }.sort()
                < ItemKey::LogWindow { account, until: 1 }.sort(),
            "newer windows lower"
        );
    }
}
