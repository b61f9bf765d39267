//! The create and update request bodies, parsed from JSON into valid values or refused with a message
//! that names the field and the rule.

use super::fields::{AccountId, MeterId};
use super::json::JsonObject;
use super::model::{Meter, MeterChanges, NewMeter, ReadOnlyEcho};
use crate::domain::field_error::FieldError;

/// What the server sets and a create may not send.
const ASSIGNED_BY_SERVER: [&str; 3] = ["id", "created_at", "updated_at"];

/// A valid create request.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateMeterBody {
    pub account_id: AccountId,
    pub meter: NewMeter,
}

/// A valid update request. `id` is the body's echo of the meter id, if it sent one.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateMeterBody {
    pub account_id: AccountId,
    pub id: Option<MeterId>,
    pub changes: MeterChanges,
    pub read_only: ReadOnlyEcho,
}

impl CreateMeterBody {
    pub fn parse(body: &[u8]) -> Result<Self, FieldError> {
        let object = JsonObject::parse(body)?;
        for field in ASSIGNED_BY_SERVER {
            if object.has(field) {
                return Err(FieldError::new(
                    field,
                    "is assigned by the server and cannot be sent on create",
                ));
            }
        }
        let allowed: Vec<&str> = Meter::FIELDS
            .iter()
            .filter(|field| !ASSIGNED_BY_SERVER.contains(field))
            .copied()
            .collect();
        object.reject_unknown(&allowed)?;
        Ok(Self {
            account_id: object.required("account_id")?,
            meter: object.new_meter()?,
        })
    }
}

impl UpdateMeterBody {
    pub fn parse(body: &[u8]) -> Result<Self, FieldError> {
        let object = JsonObject::parse(body)?;
        let mut allowed = vec!["account_id"];
        allowed.extend(Meter::MUTABLE_FIELDS);
        allowed.extend(Meter::READ_ONLY_FIELDS);
        object.reject_unknown(&allowed)?;
        Ok(Self {
            account_id: object.required("account_id")?,
            id: object.optional("id")?,
            changes: object.changes()?,
            read_only: object.read_only_echo()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meter::{CommunicationType, MeterType};
    use serde_json::{Value, json};

    const ACCOUNT: &str = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22";

    fn create(body: Value) -> Result<CreateMeterBody, FieldError> {
        CreateMeterBody::parse(body.to_string().as_bytes())
    }

    fn update(body: Value) -> Result<UpdateMeterBody, FieldError> {
        UpdateMeterBody::parse(body.to_string().as_bytes())
    }

    fn create_error(body: Value) -> String {
        create(body).unwrap_err().to_string()
    }

    fn minimal() -> Value {
        json!({"account_id": ACCOUNT, "name": "Main", "serial_number": "EM-1"})
    }

    fn with(mut body: Value, field: &str, value: Value) -> Value {
        body[field] = value;
        body
    }

    #[test]
    fn a_minimal_create_defaults_meter_type_to_electricity_and_communication_to_none() {
        let parsed = create(minimal()).unwrap();
        assert_eq!(parsed.account_id.to_string(), ACCOUNT);
        assert_eq!(parsed.meter.meter_type, MeterType::ELECTRICITY);
        assert_eq!(parsed.meter.communication_type, CommunicationType::NONE);
        assert_eq!(parsed.meter.details, MeterChanges::default());
    }

    #[test]
    fn a_create_with_every_field_keeps_every_value() {
        let body = json!({
            "account_id": ACCOUNT.to_uppercase(), "name": " Main incomer ", "serial_number": "EM-2024-000917",
            "meter_type": "SOLAR", "communication_type": "MODBUS", "description": "roof array",
            "reading_interval": 900, "building_block_id": 3, "gateway_id": 4, "tariff_id": 12,
            "last_reading_value": 10423.5, "last_reading_at": "2026-11-25T00:45:00+01:00",
            "location": "Roof", "billing_direction": "ACCPAY"
        });
        let parsed = create(body).unwrap();
        assert_eq!(parsed.account_id.to_string(), ACCOUNT);
        assert_eq!(parsed.meter.name.as_str(), "Main incomer");
        assert_eq!(parsed.meter.meter_type, MeterType::SOLAR);
        let details = serde_json::to_value(&parsed.meter.details).unwrap();
        assert_eq!(
            details,
            json!({"description": "roof array", "reading_interval": 900, "building_block_id": 3, "gateway_id": 4,
                   "tariff_id": 12, "last_reading_value": 10423.5, "last_reading_at": "2026-11-24T23:45:00Z",
                   "location": "Roof", "billing_direction": "ACCPAY"})
        );
    }

    #[test]
    fn a_create_without_a_required_field_names_it() {
        for field in ["account_id", "name", "serial_number"] {
            let mut body = minimal();
            body.as_object_mut().unwrap().remove(field);
            assert_eq!(create_error(body), format!("{field}: is required"));
        }
    }

    #[test]
    fn a_create_with_an_unknown_field_is_refused_listing_the_fields_it_may_send() {
        assert_eq!(
            create_error(with(minimal(), "colour", json!("red"))),
            "body: unknown field `colour`; allowed: account_id, name, serial_number, meter_type, \
             communication_type, description, reading_interval, building_block_id, gateway_id, tariff_id, \
             last_reading_value, last_reading_at, location, billing_direction"
        );
    }

    #[test]
    fn a_create_may_not_choose_the_id_or_timestamps() {
        for field in ["id", "created_at", "updated_at"] {
            assert!(
                create_error(with(minimal(), field, json!(1)))
                    .starts_with(&format!("{field}: is assigned by the server"))
            );
        }
    }

    #[test]
    fn wrong_json_types_are_refused_naming_the_field() {
        let cases = [
            ("name", json!(5), "name: must be a string, got a number"),
            (
                "serial_number",
                json!(["x"]),
                "serial_number: must be a string, got an array",
            ),
            (
                "meter_type",
                json!(1),
                "meter_type: must be a string, got a number",
            ),
            (
                "reading_interval",
                json!("900"),
                "reading_interval: must be an integer, got a string",
            ),
            (
                "reading_interval",
                json!(1.5),
                "reading_interval: must be an integer, got a fractional number",
            ),
            (
                "tariff_id",
                json!(true),
                "tariff_id: must be an integer, got a boolean",
            ),
            (
                "gateway_id",
                json!(u64::MAX),
                "gateway_id: must be an integer no larger than 9223372036854775807",
            ),
            (
                "last_reading_value",
                json!("1"),
                "last_reading_value: must be a number, got a string",
            ),
            (
                "last_reading_at",
                json!(1700000000),
                "last_reading_at: must be a string, got a number",
            ),
            (
                "location",
                json!({}),
                "location: must be a string, got an object",
            ),
        ];
        for (field, value, message) in cases {
            assert_eq!(create_error(with(minimal(), field, value)), message);
        }
    }

    #[test]
    fn each_value_rule_is_applied_on_create() {
        let cases = [
            ("name", json!(""), "name"),
            ("serial_number", json!("a\nb"), "serial_number"),
            ("meter_type", json!("electricity"), "meter_type"),
            ("communication_type", json!("ZIGBEE"), "communication_type"),
            ("billing_direction", json!("BOTH"), "billing_direction"),
            ("reading_interval", json!(0), "reading_interval"),
            ("building_block_id", json!(-3), "building_block_id"),
            (
                "last_reading_at",
                json!("2026-11-24 23:45"),
                "last_reading_at",
            ),
            ("location", json!("l".repeat(501)), "location"),
            ("description", json!("d".repeat(2001)), "description"),
            ("account_id", json!("not-a-uuid"), "account_id"),
        ];
        for (field, value, named) in cases {
            let error = create(with(minimal(), field, value)).unwrap_err();
            assert_eq!(error.field, named, "{field}");
        }
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused() {
        for body in ["[]", "\"meter\"", "42", "null"] {
            assert_eq!(
                CreateMeterBody::parse(body.as_bytes())
                    .unwrap_err()
                    .to_string(),
                "body: must be a JSON object"
            );
        }
        assert!(
            CreateMeterBody::parse(b"{\"name\": ")
                .unwrap_err()
                .to_string()
                .starts_with("body: is not valid JSON")
        );
        assert_eq!(
            CreateMeterBody::parse(b"").unwrap_err().to_string(),
            "body: is required: send the meter as a JSON object"
        );
    }

    #[test]
    fn an_update_sends_only_the_fields_it_names_and_null_clears() {
        let parsed =
            update(json!({"account_id": ACCOUNT, "name": "Renamed", "tariff_id": null})).unwrap();
        assert_eq!(
            serde_json::to_value(&parsed.changes).unwrap(),
            json!({"name": "Renamed", "tariff_id": null})
        );
        assert_eq!(parsed.read_only, ReadOnlyEcho::default());
    }

    #[test]
    fn an_update_may_not_clear_the_name() {
        assert_eq!(
            update(json!({"account_id": ACCOUNT, "name": null}))
                .unwrap_err()
                .to_string(),
            "name: cannot be null"
        );
    }

    #[test]
    fn an_update_needs_the_account() {
        assert_eq!(
            update(json!({"name": "x"})).unwrap_err().to_string(),
            "account_id: is required"
        );
    }

    #[test]
    fn an_update_keeps_echoed_read_only_fields_for_the_store_to_compare() {
        let parsed = update(json!({
            "account_id": ACCOUNT, "id": 17, "serial_number": "EM-1", "meter_type": "GAS",
            "communication_type": "MQTT", "created_at": "2026-11-25T10:02:11.512Z", "updated_at": "2026-11-25T11:02:11.512+01:00"
        }))
        .unwrap();
        assert_eq!(parsed.id.map(MeterId::get), Some(17));
        assert_eq!(
            serde_json::to_value(&parsed.read_only).unwrap(),
            json!({"serial_number": "EM-1", "meter_type": "GAS", "communication_type": "MQTT",
                   "created_at": "2026-11-25T10:02:11.512Z", "updated_at": "2026-11-25T10:02:11.512Z"})
        );
    }

    #[test]
    fn an_update_with_an_unknown_field_is_refused_listing_the_fields_it_may_send() {
        assert_eq!(
            update(json!({"account_id": ACCOUNT, "owner": "x"}))
                .unwrap_err()
                .to_string(),
            "body: unknown field `owner`; allowed: account_id, name, description, reading_interval, \
             building_block_id, gateway_id, tariff_id, last_reading_value, last_reading_at, location, \
             billing_direction, id, serial_number, meter_type, communication_type, created_at, updated_at"
        );
    }

    #[test]
    fn a_huge_unknown_field_name_is_cut_short_in_the_message() {
        let message = create_error(with(minimal(), &"k".repeat(10_000), json!(1)));
        assert!(
            message.starts_with(&format!("body: unknown field `{}…`;", "k".repeat(64))),
            "{message}"
        );
        assert!(message.len() < 400, "{message}");
    }
}
