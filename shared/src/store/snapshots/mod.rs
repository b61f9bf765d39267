//! Listing snapshots: a second store beside the table, holding each account's listing as of one list
//! version, so that a process with no listing of a large account starts from the snapshot and brings it
//! current from the change log (`dynamodb::changelog`) instead of reading every meter. A snapshot is never
//! the answer by itself: it is only ever the starting point of an exact refresh, so a missing, old or
//! unreadable snapshot costs reads, never correctness.
//!
//! The port is `ListingSnapshots` (crate `meters-core`); `s3` is its adapter (one object per account), `format` the object's bytes.

mod format;
mod s3;

pub use format::{MAX_SNAPSHOT_METERS, decode, encode};
pub use meters_core::store::snapshots::{ListingSnapshots, Snapshot, SnapshotError};
pub use s3::S3Snapshots;
