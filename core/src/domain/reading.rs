//! Readings: what other services of the platform send to keep `last_reading_value` and `last_reading_at`
//! current. A reading is `account_id`, `meter_id`, `value` (the rules of `last_reading_value`) and `at` (the
//! rules of `last_reading_at`); a message carries one reading (a JSON object) or a batch (an array of them).
//! A reading is applied only if `at` is later than the meter's `last_reading_at`, or the meter has none: a
//! late, duplicate or out-of-order reading changes nothing (`Meter::with_reading`).

use serde_json::Value;

use super::field_error::FieldError;
use super::meter::{AccountId, FromJson, Meter, MeterId, ReadingValue, Timestamp};

/// How long after `GET` shows a reading a list shows it, at most: lists answer from listings kept current
/// by versions, which readings do not move, so a listing's readings are re-read when older than this allows.
pub const LIST_READINGS_BOUND_SECONDS: u64 = 60;

/// The fields of a reading, and nothing else.
pub const READING_FIELDS: [&str; 4] = ["account_id", "meter_id", "value", "at"];

/// One reading, valid by construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub account_id: AccountId,
    pub meter_id: MeterId,
    pub value: ReadingValue,
    pub at: Timestamp,
}

/// A reading, or what a message held in its place, that cannot be applied: what it was, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedReading {
    /// The reading as sent (a JSON value), or the message's text when it was not JSON.
    pub sent: Value,
    pub reason: String,
}

impl Reading {
    /// A reading from its JSON object: the four fields, each by its rule, and no other.
    pub fn parse(value: &Value) -> Result<Self, FieldError> {
        let Value::Object(object) = value else {
            return Err(FieldError::new("reading", "must be a JSON object"));
        };
        if let Some(unknown) = object
            .keys()
            .find(|key| !READING_FIELDS.contains(&key.as_str()))
        {
            return Err(FieldError::new(
                "reading",
                format!(
                    "unknown field `{}`; allowed: {}",
                    unknown.chars().take(64).collect::<String>(),
                    READING_FIELDS.join(", ")
                ),
            ));
        }
        let field = |name: &'static str| {
            object
                .get(name)
                .filter(|value| !value.is_null())
                .ok_or_else(|| FieldError::new(name, "is required"))
        };
        // The rule is `last_reading_value`'s; the field here is `value`.
        let value = ReadingValue::from_json("value", field("value")?)
            .map_err(|error| FieldError::new("value", error.rule))?;
        Ok(Self {
            account_id: AccountId::from_json("account_id", field("account_id")?)?,
            meter_id: MeterId::from_json("meter_id", field("meter_id")?)?,
            value,
            at: Timestamp::from_json("at", field("at")?)?,
        })
    }

    /// The readings a message carries, each parsed on its own: one bad reading does not spoil the others.
    pub fn all_in(message: &str) -> Vec<Result<Self, RejectedReading>> {
        let rejected = |sent: Value, reason: String| Err(RejectedReading { sent, reason });
        let parse_one = |value: Value| match Self::parse(&value) {
            Ok(reading) => Ok(reading),
            Err(error) => rejected(value, error.to_string()),
        };
        match serde_json::from_str::<Value>(message) {
            Ok(Value::Array(values)) => values.into_iter().map(parse_one).collect(),
            Ok(value @ Value::Object(_)) => vec![parse_one(value)],
            Ok(other) => vec![rejected(
                other,
                "a message is one reading (a JSON object) or a batch (an array of them)".into(),
            )],
            Err(error) => vec![rejected(
                Value::String(message.chars().take(4_096).collect()),
                format!("the message is not JSON ({error})"),
            )],
        }
    }

    /// The reading as JSON, as a sender writes it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "account_id": self.account_id,
            "meter_id": self.meter_id,
            "value": self.value,
            "at": self.at,
        })
    }
}

impl Meter {
    /// This meter with `reading` applied, if the reading is later than the meter's own: its value and time
    /// taken, and one more reading counted (the ETag changes); `None` for a reading that is not later (late,
    /// a duplicate, out of order), which changes nothing. Not a metadata change: `version` and `updated_at`
    /// stay as they are.
    pub fn with_reading(&self, reading: &Reading) -> Option<Meter> {
        if self.last_reading_at.is_some_and(|at| at >= reading.at) {
            return None;
        }
        let mut meter = self.clone();
        meter.last_reading_value = Some(reading.value);
        meter.last_reading_at = Some(reading.at);
        meter.readings += 1;
        Some(meter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "6f1c2a9b-7d3e-4c5f-8a9b-0c1d2e3f4a5b";

    fn reading(value: Value) -> Result<Reading, FieldError> {
        Reading::parse(&value)
    }

    #[test]
    fn a_reading_is_its_four_fields_each_by_its_rule() {
        let parsed = reading(serde_json::json!({
            "account_id": ACCOUNT.to_uppercase(), "meter_id": 7, "value": 10423.5, "at": "2026-11-24T23:45:00+01:00"
        }))
        .unwrap();
        assert_eq!(parsed.account_id.to_string(), ACCOUNT);
        assert_eq!(parsed.meter_id.get(), 7);
        assert_eq!(parsed.value.get(), 10423.5);
        assert_eq!(parsed.at.to_rfc3339(), "2026-11-24T22:45:00+00:00");
    }

    #[test]
    fn a_reading_that_breaks_a_rule_is_refused_naming_the_field() {
        let base = serde_json::json!({"account_id": ACCOUNT, "meter_id": 7, "value": 1.0, "at": "2026-11-24T23:45:00Z"});
        let with = |field: &str, value: Value| {
            let mut sent = base.clone();
            sent[field] = value;
            reading(sent).unwrap_err().field
        };
        assert_eq!(with("account_id", "not-a-uuid".into()), "account_id");
        assert_eq!(with("meter_id", 0.into()), "meter_id");
        assert_eq!(with("meter_id", "7".into()), "meter_id");
        assert_eq!(with("value", 1e300.into()), "value");
        assert_eq!(with("value", "1".into()), "value");
        assert_eq!(with("at", "2026-11-24 23:45".into()), "at");
        assert_eq!(with("at", Value::Null), "at");
        assert_eq!(with("extra", 1.into()), "reading");
    }

    #[test]
    fn a_message_is_one_reading_or_a_batch_and_each_reading_stands_alone() {
        let good = format!(
            r#"{{"account_id":"{ACCOUNT}","meter_id":7,"value":1,"at":"2026-11-24T23:45:00Z"}}"#
        );
        assert!(matches!(Reading::all_in(&good).as_slice(), [Ok(_)]));
        let batch = format!(r#"[{good}, {{"meter_id": 7}}, 5, {good}]"#);
        let readings = Reading::all_in(&batch);
        assert_eq!(readings.len(), 4);
        assert!(readings[0].is_ok() && readings[3].is_ok());
        assert!(
            readings[1]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("is required")
        );
        assert!(
            readings[2]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("JSON object")
        );
        for message in ["not json", "42", "\"text\""] {
            let readings = Reading::all_in(message);
            assert!(matches!(readings.as_slice(), [Err(_)]), "{message}");
        }
        assert!(Reading::all_in("[]").is_empty());
    }
}
