//! The meter: what is stored and returned, what a create brings, what an update changes.

mod body;
mod fields;

pub use body::{CreateMeterBody, UpdateMeterBody, read_only_changed};

/// Fields an update may echo but never change.
pub const READ_ONLY_FIELDS: [&str; 6] = [
    "id",
    "serial_number",
    "meter_type",
    "communication_type",
    "created_at",
    "updated_at",
];
pub use fields::*;

use serde::{Deserialize, Serialize, Serializer};

/// A meter as stored and as every endpoint returns it: every field present, `null` where unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meter {
    pub id: MeterId,
    pub account_id: AccountId,
    pub name: MeterName,
    pub serial_number: SerialNumber,
    pub meter_type: MeterType,
    pub communication_type: CommunicationType,
    pub description: Option<Description>,
    pub reading_interval: Option<ReadingInterval>,
    pub building_block_id: Option<ReferenceId>,
    pub gateway_id: Option<ReferenceId>,
    pub tariff_id: Option<ReferenceId>,
    pub last_reading_value: Option<ReadingValue>,
    pub last_reading_at: Option<Timestamp>,
    pub location: Option<Location>,
    pub billing_direction: Option<BillingDirection>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a caller asked for on create, already valid.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMeter {
    pub name: MeterName,
    pub serial_number: SerialNumber,
    pub meter_type: MeterType,
    pub communication_type: CommunicationType,
    /// The optional fields; `name` is unset here.
    pub details: MeterChanges,
}

/// One field of an update: left alone, cleared by an explicit `null`, or set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }
}

/// `Clear` is written as `null` so that a change set serialises to exactly the JSON merge it means.
impl<T: Serialize> Serialize for Change<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::Set(value) => value.serialize(serializer),
            Change::Clear | Change::Keep => serializer.serialize_none(),
        }
    }
}

/// The mutable fields an update sends. Serialised, it is a JSON object holding only the fields sent
/// (`null` for those to clear): the stores apply exactly that, so two updates of different fields never
/// undo each other.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct MeterChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<MeterName>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub description: Change<Description>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub reading_interval: Change<ReadingInterval>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub building_block_id: Change<ReferenceId>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub gateway_id: Change<ReferenceId>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub tariff_id: Change<ReferenceId>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub last_reading_value: Change<ReadingValue>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub last_reading_at: Change<Timestamp>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub location: Change<Location>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub billing_direction: Change<BillingDirection>,
}

impl MeterChanges {
    /// The fields sent, as a JSON object: a value to set, or `null` to clear.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        to_object(self)
    }
}

/// Read-only fields an update body echoed back. Echoing the stored value is allowed (so GET, edit, PUT
/// works); any other value is refused. Stores check these in the same atomic step as the write.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ReadOnlyEcho {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<SerialNumber>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meter_type: Option<MeterType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub communication_type: Option<CommunicationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl ReadOnlyEcho {
    /// Each echoed field with the value it must still have, in the form the stores keep it.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        to_object(self)
    }

    /// The first echoed field whose value differs from `meter`'s, if any.
    pub fn first_mismatch(&self, meter: &Meter) -> Option<String> {
        let stored = to_object(meter);
        self.to_json()
            .into_iter()
            .find(|(field, echoed)| stored.get(field) != Some(echoed))
            .map(|(field, _)| field)
    }
}

/// Created timestamps keep millisecond precision, as the design's example shows.
pub fn now() -> Timestamp {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

impl Meter {
    pub fn create(
        id: MeterId,
        account_id: AccountId,
        new: NewMeter,
        at: Timestamp,
    ) -> Result<Meter, serde_json::Error> {
        let meter = Meter {
            id,
            account_id,
            name: new.name,
            serial_number: new.serial_number,
            meter_type: new.meter_type,
            communication_type: new.communication_type,
            description: None,
            reading_interval: None,
            building_block_id: None,
            gateway_id: None,
            tariff_id: None,
            last_reading_value: None,
            last_reading_at: None,
            location: None,
            billing_direction: None,
            created_at: at,
            updated_at: at,
        };
        meter.with_changes(&new.details, at)
    }

    /// This meter with `changes` applied and `updated_at` set to `at`. Every value comes from a valid
    /// field type, so an error here is a bug, reported rather than hidden.
    pub fn with_changes(
        &self,
        changes: &MeterChanges,
        at: Timestamp,
    ) -> Result<Meter, serde_json::Error> {
        let mut merged = to_object(self);
        merged.extend(changes.to_json());
        merged.insert("updated_at".into(), serde_json::to_value(at)?);
        serde_json::from_value(serde_json::Value::Object(merged))
    }

    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        to_object(self)
    }
}

fn to_object<T: Serialize>(value: &T) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(object)) => object,
        _ => serde_json::Map::new(),
    }
}
