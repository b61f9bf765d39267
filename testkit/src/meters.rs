//! Meters to store in tests and benchmarks: a minimal new one, and realistic ones with every field a
//! building-energy platform fills in (about 560 bytes as a DynamoDB item).

use meters::domain::meter::{
    AccountId, CommunicationType, Meter, MeterChanges, MeterName, MeterType, NewMeter, SerialNumber,
};
use serde_json::json;

/// A new meter named `name` (serial `SN-{name}`), every optional field unset.
pub fn new_meter(name: &str) -> NewMeter {
    NewMeter {
        name: MeterName::parse(name).expect("a test name is valid"),
        serial_number: SerialNumber::parse(&format!("SN-{name}")).expect("a test serial is valid"),
        meter_type: MeterType::ELECTRICITY,
        communication_type: CommunicationType::NONE,
        details: MeterChanges::default(),
    }
}

/// A realistic meter: the fields a building-energy platform fills in.
pub fn realistic(id: i64, account: AccountId, n: usize) -> Meter {
    let words = [
        "Main", "Riser", "Chiller", "Boiler", "Lift", "Kitchen", "Roof", "Car park",
    ];
    let types = ["ELECTRICITY", "GAS", "WATER", "SOLAR", "HVAC"];
    let marker = if n % 1000 == 7 { " needle" } else { "" };
    let at = chrono::DateTime::from_timestamp(
        1_700_000_000 + n as i64 * 7,
        (n % 1000) as u32 * 1_000_000,
    )
    .expect("a time")
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::from_value(json!({
        "id": id,
        "account_id": account.to_string(),
        "name": format!("{} meter {}", words[n % words.len()], n * 7919 % 100_000),
        "serial_number": format!("EM-2024-{n:08}"),
        "meter_type": types[n % types.len()],
        "communication_type": "MODBUS",
        "description": format!("Sub-meter on distribution board {}, feeding the {} loads of wing {}; read every 15 minutes{marker}.", n % 97, words[(n / 8) % words.len()].to_lowercase(), n % 5),
        "reading_interval": 900,
        "building_block_id": (n % 40) + 1,
        "gateway_id": null,
        "tariff_id": (n % 6) + 1,
        "last_reading_value": (n % 10_000) as f64 * 1.5,
        "last_reading_at": at,
        "location": format!("Building {}, floor {}, riser {}", n % 9, n % 14, n % 4),
        "billing_direction": "ACCREC",
        "created_at": at,
        "updated_at": at,
    }))
    .expect("a realistic meter")
}

/// The actor the tests' writes are made by: a user's token, no machine client.
pub fn tester() -> meters::domain::Actor {
    meters::domain::Actor {
        sub: Some("tester".into()),
        client_id: None,
    }
}
