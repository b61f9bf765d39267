//! Conditional writes: what `If-Match` asks of the meter a write changes.

/// An `If-Match` precondition on a write. `Any` (no header, or `*`) asks only that the meter exists, which
/// every write asks anyway.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IfMatch {
    #[default]
    Any,
    /// The meter's version must be one of these (none: the header named no version of this meter).
    Versions(Vec<u64>),
}

impl IfMatch {
    pub fn allows(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}
