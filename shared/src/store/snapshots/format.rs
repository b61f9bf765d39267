//! A snapshot's bytes: gzipped JSON lines. The first line is the header,
//! `{"format":1,"account_id":…,"list_version":…,"meters":N,"readings_as_of":…}` (the last when known: when the
//! read began that the rows' readings are at least as new as); then one line per meter, a pair
//! `[version, meter]`: the meter as the API writes it, and its version, which the API's JSON leaves to the
//! ETag. Written and read as one stream, a line at a time, so neither side holds the whole text: a cold
//! process at a small memory size has the listing to hold as well.
//!
//! Whoever can write the bucket can write a snapshot, so a reader trusts no claim before it is checked and
//! allocates nothing a claim asks for: a snapshot is refused (and the account read another way) when its
//! object is over `MAX_OBJECT_BYTES`, a line is over `MAX_LINE_BYTES` (a gzip of spaces cannot take the process's
//! memory), its header claims over `MAX_SNAPSHOT_METERS` meters or a row more than it claims, or a row is
//! another account's, repeats an id, or has a version past the header's list version (a meter's version never
//! runs past its account's: a row past it would never be brought current).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::{Snapshot, SnapshotError};
use crate::domain::meter::{AccountId, Meter, Timestamp};
use crate::store::listing::Listing;

const FORMAT: u32 = 1;
/// The most meters a snapshot may hold: four times the largest account the service is measured at (50,000).
pub const MAX_SNAPSHOT_METERS: usize = 200_000;
/// The longest line a meter can write (its longest fields with every character escaped are about 20 KiB),
/// with room to spare.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// The largest object read: a snapshot of `MAX_SNAPSHOT_METERS` realistic meters is about 16 MB gzipped.
pub(super) const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    account_id: String,
    list_version: u64,
    meters: usize,
    /// When the read began that the rows' readings are at least as new as (readings move no list version);
    /// absent from snapshots written before readings, and from a listing that did not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    readings_as_of: Option<Timestamp>,
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
        readings_as_of: listing.readings_as_of(),
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

/// The snapshot in `bytes`, which must be `account`'s: one naming another account, holding another account's
/// meter, or breaking any bound of the module's is refused rather than listed.
pub fn decode(account: &AccountId, bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    if bytes.len() > MAX_OBJECT_BYTES {
        return Err(unreadable(format!(
            "{} bytes, over the {MAX_OBJECT_BYTES} a snapshot may take",
            bytes.len()
        )));
    }
    let mut lines = BufReader::with_capacity(256 * 1024, GzDecoder::new(bytes));
    let mut line = Vec::with_capacity(2048);
    let mut next_line = |line: &mut Vec<u8>| -> Result<bool, SnapshotError> {
        line.clear();
        // At most one byte past the bound is read: enough to know it is broken.
        let read = (&mut lines)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', line)
            .map_err(unreadable)?;
        if line.len() > MAX_LINE_BYTES {
            return Err(unreadable(format!(
                "a line longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        Ok(read > 0)
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
    if header.meters > MAX_SNAPSHOT_METERS {
        return Err(unreadable(format!(
            "the header claims {} meters, over the {MAX_SNAPSHOT_METERS} a snapshot may hold",
            header.meters
        )));
    }
    let mut meters = Vec::with_capacity(header.meters.min(4096));
    let mut ids = HashSet::with_capacity(header.meters.min(4096));
    while next_line(&mut line)? {
        if meters.len() == header.meters {
            return Err(unreadable(format!(
                "more meters than the header's {}",
                header.meters
            )));
        }
        let (version, meter): (u64, Meter) = serde_json::from_slice(&line).map_err(unreadable)?;
        if meter.account_id != *account {
            return Err(other_account());
        }
        if !ids.insert(meter.id) {
            return Err(unreadable(format!("meter {} twice", meter.id)));
        }
        if version == 0 || version > header.list_version {
            return Err(unreadable(format!(
                "meter {} at version {version}, outside 1 to the list version {}",
                meter.id, header.list_version
            )));
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
    let listing = Listing::new(meters);
    // A time still to come is no claim to believe: the listing's readings would pass for new for ever.
    let listing = match header.readings_as_of {
        Some(as_of) if as_of <= chrono::Utc::now() => listing.with_readings_as_of(as_of),
        _ => listing,
    };
    Ok(Snapshot {
        version: header.list_version,
        listing,
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
    fn a_snapshot_keeps_how_new_its_readings_are_but_not_a_time_still_to_come() {
        let account = AccountId::from(uuid::Uuid::new_v4());
        let read_at = |listing: Listing| {
            let bytes = encode(&account, 9, &listing).unwrap();
            decode(&account, &bytes).unwrap().listing.readings_as_of()
        };
        let before = chrono::Utc::now() - chrono::Duration::seconds(5);
        assert_eq!(
            read_at(listing_of(account, 3).with_readings_as_of(before)),
            Some(before)
        );
        assert_eq!(read_at(listing_of(account, 3)), None);
        let to_come = chrono::Utc::now() + chrono::Duration::hours(1);
        assert_eq!(
            read_at(listing_of(account, 3).with_readings_as_of(to_come)),
            None
        );
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

    /// Gzipped lines, as anyone with write access to the bucket could make them.
    fn crafted(lines: &[String]) -> Vec<u8> {
        let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
        for line in lines {
            gzip.write_all(line.as_bytes()).unwrap();
            gzip.write_all(b"\n").unwrap();
        }
        gzip.finish().unwrap()
    }

    fn header(account: &AccountId, version: u64, meters: usize) -> String {
        format!(
            r#"{{"format":1,"account_id":"{account}","list_version":{version},"meters":{meters}}}"#
        )
    }

    fn row(account: &AccountId, id: i64, version: u64) -> String {
        let listing = listing_of(*account, id as usize);
        let meter = listing.meters().last().unwrap().clone();
        serde_json::to_string(&(version, meter)).unwrap()
    }

    fn refusal(account: &AccountId, bytes: &[u8]) -> String {
        match decode(account, bytes) {
            Err(SnapshotError::Unreadable(reason)) => reason,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_header_claiming_more_meters_than_a_snapshot_may_hold_is_refused_before_anything_is_allocated()
     {
        let account = AccountId::from(uuid::Uuid::new_v4());
        let bytes = crafted(&[header(&account, 9, usize::MAX / 2)]);
        assert!(refusal(&account, &bytes).contains("over the 200000 a snapshot may hold"));
    }

    #[test]
    fn a_line_past_the_bound_is_refused_without_being_read_whole() {
        let account = AccountId::from(uuid::Uuid::new_v4());
        // 40 MB of spaces on one line: a gzip of a few tens of KB.
        let bomb = crafted(&[header(&account, 9, 1), " ".repeat(40 << 20)]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        assert!(refusal(&account, &bomb).contains("a line longer than 65536 bytes"));
        let oversized = vec![0u8; MAX_OBJECT_BYTES + 1];
        assert!(refusal(&account, &oversized).contains("over the"));
    }

    #[test]
    fn rows_are_checked_against_the_header_and_one_another() {
        let account = AccountId::from(uuid::Uuid::new_v4());
        let other = AccountId::from(uuid::Uuid::new_v4());
        let twice = crafted(&[
            header(&account, 9, 2),
            row(&account, 1, 2),
            row(&account, 1, 2),
        ]);
        assert!(refusal(&account, &twice).contains("meter 1 twice"));
        let ahead = crafted(&[header(&account, 9, 1), row(&account, 1, 10)]);
        assert!(refusal(&account, &ahead).contains("outside 1 to the list version 9"));
        let extra = crafted(&[
            header(&account, 9, 1),
            row(&account, 1, 2),
            row(&account, 2, 2),
        ]);
        assert!(refusal(&account, &extra).contains("more meters than the header's 1"));
        let short = crafted(&[header(&account, 9, 2), row(&account, 1, 2)]);
        assert!(refusal(&account, &short).contains("1 meters where the header says 2"));
        let relabelled = crafted(&[header(&account, 9, 1), row(&other, 1, 2)]);
        assert!(refusal(&account, &relabelled).contains("another account's meters"));
        let sound = crafted(&[
            header(&account, 9, 2),
            row(&account, 1, 2),
            row(&account, 2, 9),
        ]);
        assert_eq!(decode(&account, &sound).unwrap().listing.len(), 2);
    }
}
