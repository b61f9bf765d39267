//! What an update does to one field.

use serde::{Serialize, Serializer};

/// One field of an update: left alone, cleared by an explicit `null`, or set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T: Clone> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }

    pub(super) fn apply_to(&self, field: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *field = None,
            Change::Set(value) => *field = Some(value.clone()),
        }
    }
}

/// `Clear` is written as `null`, so a change set serialises to exactly the merge it means (the DynamoDB
/// store turns `null` into `REMOVE`).
impl<T: Serialize> Serialize for Change<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::Set(value) => value.serialize(serializer),
            Change::Clear | Change::Keep => serializer.serialize_none(),
        }
    }
}
