//! A snapshot's bytes: gzipped JSON lines. The first line is the header,
//! `{"format":1,"account_id":…,"list_version":…,"meters":N}`; then one line per meter, a pair
//! `[version, meter]`: the meter as the API writes it, and its version, which the API's JSON leaves to the
//! ETag. Written and read as one stream, a line at a time, so neither side holds the whole text: a cold
//! process at a small memory size has the listing to hold as well.

use std::io::{BufRead, BufReader, BufWriter, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::port::{Snapshot, SnapshotError};
use crate::domain::meter::{AccountId, Meter};
use crate::store::listing::Listing;

const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    account_id: String,
    list_version: u64,
    meters: usize,
}

fn unreadable(reason: impl ToString) -> SnapshotError {
    SnapshotError::Unreadable(reason.to_string())
}

/// `listing` as `account`'s snapshot at `version`.
pub fn encode(
    account: &AccountId,
    version: u64,
    listing: &Listing,
) -> Result<Vec<u8>, SnapshotError> {
    // Fast compression: the writer is a list request's process, often at a small CPU share.
    let gzip = GzEncoder::new(Vec::new(), Compression::fast());
    let mut out = BufWriter::with_capacity(256 * 1024, gzip);
    let header = Header {
        format: FORMAT,
        account_id: account.to_string(),
        list_version: version,
        meters: listing.len(),
    };
    write_line(&mut out, &header)?;
    for meter in listing.meters() {
        write_line(&mut out, &(meter.version, meter))?;
    }
    out.into_inner()
        .map_err(|error| unreadable(error.error()))?
        .finish()
        .map_err(unreadable)
}

/// The snapshot in `bytes`, which must be `account`'s: one naming another account, or holding another
/// account's meter, is refused rather than listed.
pub fn decode(account: &AccountId, bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let mut lines = BufReader::with_capacity(256 * 1024, GzDecoder::new(bytes));
    let mut line = Vec::with_capacity(2048);
    let mut next_line = |line: &mut Vec<u8>| -> Result<bool, SnapshotError> {
        line.clear();
        Ok(lines.read_until(b'\n', line).map_err(unreadable)? > 0)
    };
    if !next_line(&mut line)? {
        return Err(unreadable("an empty snapshot"));
    }
    let header: Header = serde_json::from_slice(&line).map_err(unreadable)?;
    if header.format != FORMAT {
        return Err(unreadable(format!(
            "format {} is not {FORMAT}",
            header.format
        )));
    }
    let other_account = || {
        unreadable(format!(
            "the snapshot kept for account {account} holds another account's meters"
        ))
    };
    if header.account_id != account.to_string() {
        return Err(other_account());
    }
    let mut meters = Vec::with_capacity(header.meters);
    while next_line(&mut line)? {
        let (version, meter): (u64, Meter) = serde_json::from_slice(&line).map_err(unreadable)?;
        if meter.account_id != *account {
            return Err(other_account());
        }
        meters.push(Meter { version, ..meter });
    }
    if meters.len() != header.meters {
        return Err(unreadable(format!(
            "{} meters where the header says {}",
            meters.len(),
            header.meters
        )));
    }
    Ok(Snapshot {
        version: header.list_version,
        listing: Listing::new(meters),
    })
}

fn write_line(out: &mut impl Write, value: &impl Serialize) -> Result<(), SnapshotError> {
    serde_json::to_writer(&mut *out, value).map_err(unreadable)?;
    out.write_all(b"\n").map_err(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing_of(account: AccountId, meters: usize) -> Listing {
        let meters = (1..=meters as i64)
            .map(|id| {
                serde_json::from_value(serde_json::json!({
                    "id": id, "account_id": account.to_string(), "name": format!("Meter {id}"),
                    "serial_number": format!("SN-{id}"), "meter_type": "GAS", "communication_type": "NONE",
                    "created_at": "2026-12-01T10:00:00.000Z", "updated_at": "2026-12-01T10:00:00.000Z",
                }))
                .map(|meter: Meter| Meter { version: id as u64 + 1, ..meter })
                .expect("a meter")
            })
            .collect();
        Listing::new(meters)
    }

    #[test]
    fn a_snapshot_reads_back_as_the_listing_with_every_meters_version() {
        let account = AccountId::from(uuid::Uuid::new_v4());
        let listing = listing_of(account, 3);
        let snapshot = decode(&account, &encode(&account, 42, &listing).unwrap()).unwrap();
        assert_eq!(snapshot.version, 42);
        let versions: Vec<u64> = snapshot.listing.meters().map(|m| m.version).collect();
        assert_eq!(versions, [2, 3, 4]);
        assert!(snapshot.listing.meters().eq(listing.meters()));
    }

    #[test]
    fn a_truncated_or_foreign_snapshot_is_unreadable() {
        let (account, other) = (
            AccountId::from(uuid::Uuid::new_v4()),
            AccountId::from(uuid::Uuid::new_v4()),
        );
        let bytes = encode(&account, 7, &listing_of(account, 50)).unwrap();
        let unreadable = |result: Result<Snapshot, SnapshotError>| {
            matches!(result, Err(SnapshotError::Unreadable(_)))
        };
        assert!(unreadable(decode(&account, &bytes[..bytes.len() / 2])));
        assert!(unreadable(decode(&account, b"not gzip")));
        assert!(unreadable(decode(&other, &bytes)));
    }
}
