//! A meter change as other services hear it: one EventBridge event per create, update or delete, whose
//! `detail` is `events/schema/meter-change.schema.json`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::Actor;
use crate::domain::meter::{AccountId, Meter, MeterId, Timestamp};

/// Every change event's `source`.
pub const SOURCE: &str = "meters-api";

/// The `detail`'s `schema_version`: raised when a field changes meaning or goes, never when one is added.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened to the meter: the event's `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChangeKind {
    MeterCreated,
    MeterUpdated,
    MeterDeleted,
}

impl ChangeKind {
    pub fn detail_type(self) -> &'static str {
        match self {
            ChangeKind::MeterCreated => "MeterCreated",
            ChangeKind::MeterUpdated => "MeterUpdated",
            ChangeKind::MeterDeleted => "MeterDeleted",
        }
    }
}

/// One meter's change, from one stream record: one account's data only.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterChange {
    pub kind: ChangeKind,
    pub account_id: AccountId,
    pub meter_id: MeterId,
    /// After the change; `None` on delete.
    pub meter: Option<Meter>,
    /// Before the change; `None` on create.
    pub previous: Option<Meter>,
    /// Who made the change; `None` where nobody was recorded (meters imported, or written before actors
    /// were kept).
    pub actor: Option<Actor>,
    pub occurred_at: Timestamp,
}

/// The event's `detail`, as the schema names its fields.
#[derive(Debug, Serialize)]
struct Detail<'a> {
    schema_version: u32,
    event_id: String,
    account_id: &'a AccountId,
    meter_id: MeterId,
    version: u64,
    actor: &'a Option<Actor>,
    occurred_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    meter: Option<&'a Meter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<&'a Meter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_fields: Option<Vec<String>>,
}

impl MeterChange {
    /// The meter's version the change produced; for a delete, the version deleted.
    pub fn version(&self) -> u64 {
        self.meter
            .as_ref()
            .or(self.previous.as_ref())
            .map_or(0, |meter| meter.version)
    }

    /// The same for every delivery of the same change (a stream record delivered twice, a batch retried):
    /// a UUID made of the account, the meter, its version and the kind of change, which together happen
    /// once, since every write raises the version and ids are never reused. Consumers deduplicate on it.
    pub fn event_id(&self) -> String {
        let name = format!(
            "{}/{}/{}/{}",
            self.account_id,
            self.meter_id,
            self.version(),
            self.kind.detail_type()
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest.as_ref()[..16]);
        uuid::Builder::from_sha1_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    }

    /// The API fields whose values differ between `previous` and `meter` (on update), in the JSON's order;
    /// `updated_at`, which every update moves, is left out.
    pub fn changed_fields(&self) -> Option<Vec<String>> {
        let (Some(before), Some(after)) = (&self.previous, &self.meter) else {
            return None;
        };
        let (before, after) = (json_object(before), json_object(after));
        Some(
            Meter::FIELDS
                .iter()
                .filter(|field| {
                    **field != "updated_at" && before.get(**field) != after.get(**field)
                })
                .map(|field| (*field).to_owned())
                .collect(),
        )
    }

    /// The event's `detail` as JSON text.
    pub fn detail(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&Detail {
            schema_version: SCHEMA_VERSION,
            event_id: self.event_id(),
            account_id: &self.account_id,
            meter_id: self.meter_id,
            version: self.version(),
            actor: &self.actor,
            occurred_at: self
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            meter: self.meter.as_ref(),
            previous: self.previous.as_ref(),
            changed_fields: self.changed_fields(),
        })
    }
}

fn json_object(meter: &Meter) -> Map<String, Value> {
    match serde_json::to_value(meter) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meter::{
        CommunicationType, MeterChanges, MeterName, MeterType, NewMeter, SerialNumber, now,
    };

    fn meter() -> Meter {
        let new = NewMeter {
            name: MeterName::parse("Main incomer").unwrap(),
            serial_number: SerialNumber::parse("EM-1").unwrap(),
            meter_type: MeterType::ELECTRICITY,
            communication_type: CommunicationType::NONE,
            details: MeterChanges::default(),
        };
        Meter::create(
            MeterId::new(7).unwrap(),
            AccountId::from(uuid::Uuid::new_v4()),
            new,
            now(),
        )
    }

    fn change(kind: ChangeKind, previous: Option<Meter>, meter: Option<Meter>) -> MeterChange {
        let any = meter.as_ref().or(previous.as_ref()).unwrap();
        MeterChange {
            kind,
            account_id: any.account_id,
            meter_id: any.id,
            meter,
            previous,
            actor: None,
            occurred_at: now(),
        }
    }

    #[test]
    fn an_update_names_the_fields_it_changed_but_not_updated_at() {
        let before = meter();
        let renamed = MeterChanges {
            name: Some(MeterName::parse("Renamed").unwrap()),
            ..MeterChanges::default()
        };
        let after = before.with_changes(&renamed, now() + chrono::Duration::seconds(1));
        let update = change(ChangeKind::MeterUpdated, Some(before), Some(after));
        assert_eq!(update.changed_fields(), Some(vec!["name".to_owned()]));
        assert_eq!(update.version(), 2);
    }

    #[test]
    fn the_event_id_is_the_same_for_the_same_change_and_differs_for_any_other() {
        let created = meter();
        let create = change(ChangeKind::MeterCreated, None, Some(created.clone()));
        assert_eq!(create.event_id(), create.clone().event_id());
        let delete = change(ChangeKind::MeterDeleted, Some(created), None);
        assert_ne!(create.event_id(), delete.event_id());
        assert_eq!(
            uuid::Uuid::parse_str(&create.event_id())
                .unwrap()
                .get_version_num(),
            5
        );
    }

    #[test]
    fn the_detail_leaves_out_what_the_kind_of_change_has_not() {
        let create = change(ChangeKind::MeterCreated, None, Some(meter()));
        let detail: Value = serde_json::from_str(&create.detail().unwrap()).unwrap();
        assert!(detail.get("previous").is_none());
        assert!(detail.get("changed_fields").is_none());
        assert_eq!(detail["meter"]["name"], "Main incomer");
        assert_eq!(detail["actor"], Value::Null);
        assert_eq!(detail["schema_version"], SCHEMA_VERSION);
        let delete = change(ChangeKind::MeterDeleted, Some(meter()), None);
        let detail: Value = serde_json::from_str(&delete.detail().unwrap()).unwrap();
        assert!(detail.get("meter").is_none());
        assert_eq!(detail["previous"]["id"], 7);
    }
}
