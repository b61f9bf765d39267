//! Reading a JSON body field by field: each JSON type checked, each message naming the field.

use serde_json::{Map, Value};

use super::change::Change;
use crate::domain::field_error::FieldError;

/// A field's value read from a JSON body: the JSON type checked and the field's rule applied, with a
/// message that names the field.
pub trait FromJson: Sized {
    fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError>;
}

/// A request body that is a JSON object.
pub(super) struct JsonObject(Map<String, Value>);

impl JsonObject {
    pub(super) fn parse(body: &[u8]) -> Result<Self, FieldError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => Ok(Self(object)),
            Ok(_) => Err(FieldError::new("body", "must be a JSON object")),
            Err(_) if body.iter().all(u8::is_ascii_whitespace) => Err(FieldError::new(
                "body",
                "is required: send the meter as a JSON object",
            )),
            Err(error) => Err(FieldError::new(
                "body",
                format!("is not valid JSON ({error})"),
            )),
        }
    }

    pub(super) fn reject_unknown(&self, allowed: &[&str]) -> Result<(), FieldError> {
        match self.0.keys().find(|key| !allowed.contains(&key.as_str())) {
            Some(unknown) => Err(FieldError::new(
                "body",
                format!(
                    "unknown field `{}`; allowed: {}",
                    truncate(unknown, 64),
                    allowed.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    pub(super) fn required<T: FromJson>(&self, field: &'static str) -> Result<T, FieldError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(FieldError::new(field, "is required")),
            Some(value) => T::from_json(field, value),
        }
    }

    /// For fields that may be left out but never cleared.
    pub(super) fn optional<T: FromJson>(
        &self,
        field: &'static str,
    ) -> Result<Option<T>, FieldError> {
        match self.0.get(field) {
            None => Ok(None),
            Some(Value::Null) => Err(FieldError::new(field, "cannot be null")),
            Some(value) => T::from_json(field, value).map(Some),
        }
    }

    /// For fields that `null` clears.
    pub(super) fn change<T: FromJson>(&self, field: &'static str) -> Result<Change<T>, FieldError> {
        match self.0.get(field) {
            None => Ok(Change::Keep),
            Some(Value::Null) => Ok(Change::Clear),
            Some(value) => T::from_json(field, value).map(Change::Set),
        }
    }

    /// For read-only fields echoed on update: absent, or a value to compare with the stored one.
    pub(super) fn echo<T: FromJson>(&self, field: &'static str) -> Result<Option<T>, FieldError> {
        match self.0.get(field) {
            None => Ok(None),
            Some(value) => T::from_json(field, value)
                .map(Some)
                .map_err(|_| FieldError::read_only(field)),
        }
    }

    pub(super) fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
}

/// JSON type checks with messages that name the field.
pub(super) trait JsonValueExt {
    fn as_text(&self, field: &'static str) -> Result<&str, FieldError>;
    fn as_integer(&self, field: &'static str) -> Result<i64, FieldError>;
    fn as_real(&self, field: &'static str) -> Result<f64, FieldError>;
}

impl JsonValueExt for Value {
    fn as_text(&self, field: &'static str) -> Result<&str, FieldError> {
        self.as_str()
            .ok_or_else(|| FieldError::new(field, format!("must be a string, got {}", kind(self))))
    }

    fn as_integer(&self, field: &'static str) -> Result<i64, FieldError> {
        match self {
            Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            Value::Number(n) if n.is_u64() => Err(FieldError::new(
                field,
                "must be an integer no larger than 9223372036854775807",
            )),
            _ => Err(FieldError::new(
                field,
                format!("must be an integer, got {}", kind(self)),
            )),
        }
    }

    fn as_real(&self, field: &'static str) -> Result<f64, FieldError> {
        self.as_f64()
            .ok_or_else(|| FieldError::new(field, format!("must be a number, got {}", kind(self))))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Caller text echoed in an error is cut short, so a huge key cannot make a huge error.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
