//! How each sortable field's value compares in a list: text ignoring case, numbers, instants.

use std::cmp::Ordering;

use super::fields::{
    CommunicationType, Location, MeterId, MeterName, MeterType, ReadingValue, SerialNumber,
    Timestamp,
};

/// What a sortable field's value compares as: text ignoring case, numbers, instants.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Integer(i64),
    Number(f64),
    Text(String),
    Time(Timestamp),
}

impl SortKey {
    /// Orders two keys of one field; keys of different kinds never meet.
    pub fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortKey::Integer(a), SortKey::Integer(b)) => a.cmp(b),
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Time(a), SortKey::Time(b)) => a.cmp(b),
            // One field gives one kind of key, so mixed pairs never meet.
            _ => Ordering::Equal,
        }
    }
}

/// How a field type sorts; `None` (an unset optional field) sorts last.
pub trait SortValue {
    fn sort_key(&self) -> Option<SortKey>;
}

impl<T: SortValue> SortValue for Option<T> {
    fn sort_key(&self) -> Option<SortKey> {
        self.as_ref().and_then(SortValue::sort_key)
    }
}

impl SortValue for MeterId {
    fn sort_key(&self) -> Option<SortKey> {
        Some(SortKey::Integer(self.get()))
    }
}

impl SortValue for Timestamp {
    fn sort_key(&self) -> Option<SortKey> {
        Some(SortKey::Time(*self))
    }
}

impl SortValue for ReadingValue {
    fn sort_key(&self) -> Option<SortKey> {
        Some(SortKey::Number(self.get()))
    }
}

/// Text sorts ignore case.
macro_rules! text_sort {
    ($($text:ty),+) => {$(
        impl SortValue for $text {
            fn sort_key(&self) -> Option<SortKey> {
                Some(SortKey::Text(self.as_str().to_lowercase()))
            }
        }
    )+};
}
text_sort!(
    MeterName,
    SerialNumber,
    Location,
    MeterType,
    CommunicationType
);
