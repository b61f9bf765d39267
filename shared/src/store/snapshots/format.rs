//! A snapshot's bytes: gzipped JSON, `{"format":1,"account_id":…,"list_version":…,"meters":[…]}`, each
//! meter a pair `[version, meter]`: the meter as the API writes it, and its version, which the API's JSON
//! leaves to the ETag. Written as one stream and read as one, so neither side holds the JSON text.

use std::io::{BufReader, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::port::{Snapshot, SnapshotError};
use crate::domain::meter::{AccountId, Meter};
use crate::store::listing::Listing;

const FORMAT: u32 = 1;

/// `listing` as `account`'s snapshot at `version`.
pub fn encode(account: &AccountId, version: u64, listing: &Listing) -> Result<Vec<u8>, SnapshotError> {
    struct Meters<'a>(&'a Listing);
    impl Serialize for Meters<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.meters().map(|meter| (meter.version, meter)))
        }
    }
    struct File<'a> {
        account: &'a AccountId,
        version: u64,
        listing: &'a Listing,
    }
    impl Serialize for File<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut file = serializer.serialize_struct("Snapshot", 4)?;
            file.serialize_field("format", &FORMAT)?;
            file.serialize_field("account_id", &self.account.to_string())?;
            file.serialize_field("list_version", &self.version)?;
            file.serialize_field("meters", &Meters(self.listing))?;
            file.end()
        }
    }
    // Fast compression: the writer is a list request's process, often at a small CPU share.
    let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
    serde_json::to_writer(
        &mut gzip,
        &File {
            account,
            version,
            listing,
        },
    )
    .map_err(|error| SnapshotError::Unreadable(error.to_string()))?;
    gzip.flush()
        .and_then(|()| gzip.finish())
        .map_err(|error| SnapshotError::Unreadable(error.to_string()))
}

/// The snapshot in `bytes`, which must be `account`'s: one naming another account, or holding another
/// account's meter, is refused rather than listed.
pub fn decode(account: &AccountId, bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    #[derive(Deserialize)]
    struct File {
        format: u32,
        account_id: String,
        list_version: u64,
        meters: Vec<(u64, Meter)>,
    }
    let unreadable = |reason: String| SnapshotError::Unreadable(reason);
    let file: File = serde_json::from_reader(BufReader::with_capacity(
        64 * 1024,
        GzDecoder::new(bytes),
    ))
    .map_err(|error| unreadable(error.to_string()))?;
    if file.format != FORMAT {
        return Err(unreadable(format!("format {} is not {FORMAT}", file.format)));
    }
    let expected = account.to_string();
    if file.account_id != expected || file.meters.iter().any(|(_, m)| m.account_id != *account) {
        return Err(unreadable(format!(
            "the snapshot kept for account {expected} holds another account's meters"
        )));
    }
    Ok(Snapshot {
        version: file.list_version,
        listing: Listing::new(
            file.meters
                .into_iter()
                .map(|(version, meter)| Meter { version, ..meter })
                .collect(),
        ),
    })
}
