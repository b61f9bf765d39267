//! A snapshot's bytes: gzipped JSON lines. The first line is the header,
//! `{"format":2,"account_id":…,"list_version":…,"meters":N}`; then one line per meter, a pair
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

const FORMAT: u32 = 2;

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
