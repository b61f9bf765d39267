//! A meter's record in the embedded store's file: its version and readings (which its JSON leaves out), then
//! its JSON; records from before readings and before versions are read too.

use crate::domain::meter::Meter;
use crate::store::error::{BoxError, StoreError};

/// A record of the current layout begins with this byte, which no other begins with: one from before readings
/// begins with its version's first byte (versions stay below 2^56), or with `{` (plain JSON, from before
/// versions).
const WITH_READINGS: u8 = 0xff;

/// `WITH_READINGS`, the meter's version and its readings (8 bytes each, big-endian), then its JSON: decoding
/// stays one serde pass.
pub(super) fn encode(meter: &Meter) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![WITH_READINGS];
    bytes.extend(meter.version.to_be_bytes());
    bytes.extend(meter.readings.to_be_bytes());
    serde_json::to_writer(&mut bytes, meter).map_err(internal)?;
    Ok(bytes)
}

pub(super) fn decode(bytes: &[u8]) -> Result<Meter, StoreError> {
    let number = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let (version, readings, json) = match bytes.first() {
        Some(&WITH_READINGS) => (number(1), number(9), bytes.get(17..)),
        Some(b'{') => (Some(0), Some(0), Some(bytes)),
        _ => (number(0), Some(0), bytes.get(8..)),
    };
    let (Some(version), Some(readings), Some(json)) = (version, readings, json) else {
        return Err(internal("a meter record shorter than its layout"));
    };
    let mut meter: Meter = serde_json::from_slice(json).map_err(internal)?;
    meter.version = version;
    meter.readings = readings;
    Ok(meter)
}

fn internal(error: impl Into<BoxError>) -> StoreError {
    StoreError::Internal(error.into())
}
