//! Conditional writes: what `If-Match` asks of the meter a write changes.

use super::meter::{EntityTag, Meter};

/// An `If-Match` precondition on a write. `Any` (no header, or `*`) asks only that the meter exists, which
/// every write asks anyway.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IfMatch {
    #[default]
    Any,
    /// The meter's state must be one of these (none: the header named no state of this meter).
    Tags(Vec<EntityTag>),
}

impl IfMatch {
    /// The tags of these versions of a meter that no reading came to.
    pub fn versions(versions: impl IntoIterator<Item = u64>) -> Self {
        Self::Tags(
            versions
                .into_iter()
                .map(|version| EntityTag {
                    version,
                    readings: 0,
                })
                .collect(),
        )
    }

    /// Whether `meter`, as it is, meets the precondition.
    pub fn allows(&self, meter: &Meter) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.contains(&EntityTag::of(meter)),
        }
    }
}
