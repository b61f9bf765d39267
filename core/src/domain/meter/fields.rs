//! One type per meter field, each parsed once at the edge so that a value of the type is valid by
//! construction. Every rule of the design's validation list lives here, and every message names its field.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::json::{FromJson, JsonValueExt};
use crate::domain::field_error::FieldError;

/// The tenant a meter belongs to: a UUID accepted in any case, always shown lowercase and hyphenated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(Uuid);

impl AccountId {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Uuid::try_parse(raw.trim()).map(Self).map_err(|_| {
            FieldError::new(
                "account_id",
                "must be a UUID such as 6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22",
            )
        })
    }
}

impl FromJson for AccountId {
    fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError> {
        Self::parse(value.as_text(field)?)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl TryFrom<String> for AccountId {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<AccountId> for String {
    fn from(account: AccountId) -> Self {
        account.to_string()
    }
}

impl From<Uuid> for AccountId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

/// Positive and within `i64`, so every store and every client language can hold it.
fn positive_integer(field: &'static str, raw: i64) -> Result<i64, FieldError> {
    if raw > 0 {
        Ok(raw)
    } else {
        Err(FieldError::new(field, "must be a positive integer"))
    }
}

/// A meter's id: assigned by the store, unique across all accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct MeterId(i64);

impl MeterId {
    pub fn new(raw: i64) -> Result<Self, FieldError> {
        positive_integer("id", raw).map(Self)
    }

    /// A path segment: digits only (no sign, no spaces), within a positive `i64`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                "id",
                format!("must be a positive 64-bit integer, got `{raw}`"),
            )
        };
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        raw.parse::<i64>()
            .map_err(|_| invalid())
            .and_then(|n| Self::new(n).map_err(|_| invalid()))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl FromJson for MeterId {
    fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError> {
        positive_integer(field, value.as_integer(field)?).map(Self)
    }
}

impl fmt::Display for MeterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<i64> for MeterId {
    type Error = FieldError;
    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        Self::new(raw)
    }
}

impl From<MeterId> for i64 {
    fn from(id: MeterId) -> Self {
        id.0
    }
}

/// A reference to another registry's record (building block, gateway, tariff).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReferenceId(i64);

impl ReferenceId {
    pub fn parse(field: &'static str, raw: i64) -> Result<Self, FieldError> {
        positive_integer(field, raw).map(Self)
    }
}

impl FromJson for ReferenceId {
    fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError> {
        Self::parse(field, value.as_integer(field)?)
    }
}

/// Generates a string newtype whose only constructor checks a length (in characters) and, optionally,
/// forbids control characters; `trim` says whether surrounding white space is dropped first.
macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $field:literal, min $min:literal, max $max:literal, trim $trim:literal, controls $controls:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const FIELD: &'static str = $field;

            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                let value = if $trim { raw.trim() } else { raw };
                let length = value.chars().count();
                if !($min..=$max).contains(&length) {
                    let rule = match ($min, $trim) {
                        (0, _) => format!("must be at most {} characters", $max),
                        (_, true) => format!("must be {} to {} characters after trimming", $min, $max),
                        (_, false) => format!("must be {} to {} characters", $min, $max),
                    };
                    return Err(FieldError::new($field, rule));
                }
                if !$controls && value.chars().any(char::is_control) {
                    return Err(FieldError::new($field, "must not contain control characters"));
                }
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl FromJson for $name {
            fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError> {
                Self::parse(value.as_text(field)?)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

text_field!(
    /// What people call the meter.
    MeterName, "name", min 1, max 200, trim true, controls true
);
text_field!(
    /// The manufacturer's serial number; white space around it is never meant, so it is trimmed.
    SerialNumber, "serial_number", min 1, max 100, trim true, controls false
);
text_field!(
    /// Where the meter is, for people.
    Location, "location", min 0, max 500, trim false, controls true
);
text_field!(
    /// Free text about the meter.
    Description, "description", min 0, max 2000, trim false, controls true
);

/// Preferred read interval in seconds: at least one second, at most one (non-leap) year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReadingInterval(u32);

impl ReadingInterval {
    pub const MAX_SECONDS: i64 = 31_536_000;

    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        match u32::try_from(raw) {
            Ok(seconds) if (1..=Self::MAX_SECONDS).contains(&raw) => Ok(Self(seconds)),
            _ => Err(FieldError::new(
                "reading_interval",
                "must be an integer from 1 to 31536000 seconds",
            )),
        }
    }
}

impl FromJson for ReadingInterval {
    fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError> {
        Self::parse(value.as_integer(field)?)
    }
}

/// The latest reading. Finite, and inside the range DynamoDB numbers can hold (magnitude 1e-130 to 1e125),
/// so a value accepted here can always be stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReadingValue(f64);

impl ReadingValue {
    pub fn parse(raw: f64) -> Result<Self, FieldError> {
        let magnitude = raw.abs();
        if !raw.is_finite() || magnitude > 1e125 || (magnitude != 0.0 && magnitude < 1e-130) {
            return Err(FieldError::new(
                "last_reading_value",
                "must be a finite number, 0 or of magnitude 1e-130 to 1e125",
            ));
        }
        Ok(Self(raw))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl FromJson for ReadingValue {
    fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError> {
        Self::parse(value.as_real(field)?)
    }
}

/// An instant, always held and shown in UTC.
pub type Timestamp = DateTime<Utc>;

/// RFC 3339 with an explicit offset (`Z` or `±hh:mm`); converted to UTC, which must fall in years 0001 to
/// 9999 so that it can be written back as RFC 3339 (`9999-12-31T23:59:59-23:59` is in year 10000 in UTC).
pub fn parse_timestamp(field: &'static str, raw: &str) -> Result<Timestamp, FieldError> {
    let at = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            FieldError::new(
                field,
                "must be an RFC 3339 date-time with an offset, such as 2026-11-24T23:45:00Z",
            )
        })?;
    if !(1..=9999).contains(&chrono::Datelike::year(&at)) {
        return Err(FieldError::new(
            field,
            "must fall between years 0001 and 9999 once converted to UTC",
        ));
    }
    Ok(at)
}

impl FromJson for Timestamp {
    fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError> {
        parse_timestamp(field, value.as_text(field)?)
    }
}

/// Generates an enum whose JSON form is exactly the upper-case names of the spec, and whose parse error
/// lists them.
macro_rules! exact_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, [$($variant:ident),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const FIELD: &'static str = $field;
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }
        }

        impl FromStr for $name {
            type Err = FieldError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                match raw {
                    $(stringify!($variant) => Ok($name::$variant),)+
                    _ => Err(FieldError::new(
                        $field,
                        format!("must be one of {}", [$(stringify!($variant)),+].join(", ")),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromJson for $name {
            fn from_json(field: &'static str, value: &Value) -> Result<Self, FieldError> {
                value.as_text(field)?.parse()
            }
        }
    };
}

exact_enum!(
    /// What the meter measures.
    MeterType, "meter_type", [ELECTRICITY, GAS, WATER, SOLAR, GENSET, HVAC, EV, CARBON]
);
exact_enum!(
    /// How the meter's readings reach the platform.
    CommunicationType, "communication_type", [NONE, LORAWAN, MODBUS, MQTT, HTTP, DLMS, VIRTUAL]
);
exact_enum!(
    /// ACCREC: the meter's use is invoiced to a tenant; ACCPAY: it is a utility supply the owner pays for.
    BillingDirection, "billing_direction", [ACCREC, ACCPAY]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_in_upper_case_are_stored_lowercase_and_hyphenated() {
        let account = AccountId::parse("6F1C2B1E0D7A4C559A434F0B8D3A1E22").unwrap();
        assert_eq!(account.to_string(), "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22");
    }

    #[test]
    fn account_ids_that_are_not_uuids_are_rejected_naming_the_field() {
        let error = AccountId::parse("acme").unwrap_err();
        assert_eq!(error.field, "account_id");
        assert!(error.to_string().starts_with("account_id: must be a UUID"));
    }

    #[test]
    fn meter_ids_must_be_plain_positive_64_bit_integers() {
        assert_eq!(MeterId::parse("17").unwrap().get(), 17);
        assert_eq!(
            MeterId::parse("9223372036854775807").unwrap().get(),
            i64::MAX
        );
        for bad in [
            "0",
            "-1",
            "+1",
            "1.0",
            "abc",
            "",
            " 1",
            "9223372036854775808",
            "1e3",
        ] {
            let error = MeterId::parse(bad).unwrap_err();
            assert_eq!(error.field, "id", "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_must_keep_1_to_200_characters() {
        assert_eq!(
            MeterName::parse("  Main incomer ").unwrap().as_str(),
            "Main incomer"
        );
        assert_eq!(
            MeterName::parse(&"é".repeat(200))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            200
        );
        assert_eq!(
            MeterName::parse("   ").unwrap_err().to_string(),
            "name: must be 1 to 200 characters after trimming"
        );
        assert_eq!(
            MeterName::parse(&"x".repeat(201)).unwrap_err().to_string(),
            "name: must be 1 to 200 characters after trimming"
        );
    }

    #[test]
    fn serial_numbers_keep_1_to_100_characters_and_no_control_characters() {
        assert_eq!(
            SerialNumber::parse("EM-2024-000917").unwrap().as_str(),
            "EM-2024-000917"
        );
        assert!(SerialNumber::parse(&"9".repeat(100)).is_ok());
        for bad in ["9".repeat(101), String::new(), "  ".into()] {
            assert_eq!(
                SerialNumber::parse(&bad).unwrap_err().to_string(),
                "serial_number: must be 1 to 100 characters after trimming"
            );
        }
        assert_eq!(
            SerialNumber::parse("EM\u{7}1").unwrap_err().to_string(),
            "serial_number: must not contain control characters"
        );
    }

    #[test]
    fn locations_and_descriptions_have_upper_limits_only() {
        assert!(Location::parse("").is_ok());
        assert!(Location::parse(&"l".repeat(500)).is_ok());
        assert_eq!(
            Location::parse(&"l".repeat(501)).unwrap_err().to_string(),
            "location: must be at most 500 characters"
        );
        assert!(Description::parse(&"d".repeat(2000)).is_ok());
        assert_eq!(
            Description::parse(&"d".repeat(2001)).unwrap_err().field,
            "description"
        );
    }

    #[test]
    fn reading_intervals_run_from_one_second_to_one_year() {
        assert!(ReadingInterval::parse(1).is_ok());
        assert!(ReadingInterval::parse(31_536_000).is_ok());
        for bad in [0, -5, 31_536_001, i64::MAX] {
            assert_eq!(
                ReadingInterval::parse(bad).unwrap_err().field,
                "reading_interval"
            );
        }
    }

    #[test]
    fn reference_ids_must_be_positive() {
        assert!(ReferenceId::parse("tariff_id", 12).is_ok());
        let error = ReferenceId::parse("tariff_id", 0).unwrap_err();
        assert_eq!(error.to_string(), "tariff_id: must be a positive integer");
    }

    #[test]
    fn reading_values_must_be_finite_and_storable() {
        for good in [0.0, -3.5, 10423.5, 1e125, -1e125, 1e-130, -1e-130] {
            assert!(ReadingValue::parse(good).is_ok(), "{good}");
        }
        for bad in [f64::NAN, f64::INFINITY, 1e126, 1e-131] {
            assert_eq!(
                ReadingValue::parse(bad).unwrap_err().field,
                "last_reading_value"
            );
        }
    }

    #[test]
    fn timestamps_need_an_offset_and_are_converted_to_utc() {
        let at = parse_timestamp("last_reading_at", "2026-11-25T01:45:00+02:00").unwrap();
        assert_eq!(
            at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "2026-11-24T23:45:00Z"
        );
        for bad in [
            "2026-11-24T23:45:00",
            "2026-11-24",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+00:01",
        ] {
            assert_eq!(
                parse_timestamp("last_reading_at", bad).unwrap_err().field,
                "last_reading_at"
            );
        }
    }

    #[test]
    fn enums_accept_exactly_the_upper_case_names() {
        assert_eq!("EV".parse::<MeterType>().unwrap(), MeterType::EV);
        assert_eq!(
            "LORAWAN".parse::<CommunicationType>().unwrap(),
            CommunicationType::LORAWAN
        );
        assert_eq!(
            "ACCPAY".parse::<BillingDirection>().unwrap(),
            BillingDirection::ACCPAY
        );
        let error = "electricity".parse::<MeterType>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "meter_type: must be one of ELECTRICITY, GAS, WATER, SOLAR, GENSET, HVAC, EV, CARBON"
        );
        assert!("Modbus".parse::<CommunicationType>().is_err());
        assert!("accrec".parse::<BillingDirection>().is_err());
    }
}
