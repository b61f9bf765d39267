//! The store's ports: what an adapter promises (`meters`, `readings`, `idempotency`, `snapshots`), what its failures mean
//! (`error`), and the listing: an account's meters held in memory, which both adapters answer lists from.

pub mod error;
pub mod idempotency;
pub mod listing;
pub mod meters;
pub mod readings;
pub mod snapshots;
