//! The one way a value from a caller is refused: the field it came in, and the rule it broke.

/// Why a value was refused; `field` is the JSON name, so the message can be shown to the caller as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    pub field: &'static str,
    pub rule: String,
}

impl FieldError {
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }

    /// A read-only field sent with a value other than the stored one.
    pub fn read_only(field: &'static str) -> Self {
        Self::new(
            field,
            "is read-only: send the current value or leave it out",
        )
    }
}
