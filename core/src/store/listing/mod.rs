//! One account's meters held in memory, and the per-process cache of them (`cache`). A list that needs the
//! whole account (a search, a filter, a sort no index serves, a page deep in the middle) is answered from a
//! `Listing`: the meters in id order, each with its search text worked out when it entered, shared by every
//! request that reads them; each other sort order worked out the first time a list asks for it.
//!
//! A write changes a listing by one meter (`with_meter`, `without`): the other meters, their search text
//! and every order already worked out are carried over, the order moved by one entry, so that a listing
//! under a stream of writes stays as quick to search as one at rest.

mod cache;
mod pages;

pub use cache::{DEFAULT_CACHE_BYTES, ListingCache, ReadTurn};
pub use pages::Listing;
