//! The Meters API: everything with logic lives here, shared by the five Lambda functions and the local
//! server. Where to find each part of the spec:
//!
//! - `meter`: the meter, its fields and every validation rule; the create and update bodies.
//! - `list`: search, sort, paging and count for the list endpoint; `listing`: an account's meters held in
//!   memory to answer lists from, and the per-process cache of them.
//! - `auth`: Bearer JWT checks and which accounts a token may act for.
//! - `handlers`: one file per endpoint.
//! - `error`: every failure and its status code, in one place; `envelope`: the JSON response shape.
//! - `store`: the storage port, with the DynamoDB and the embedded (redb) implementations.
//! - `lambda`: how a function binary starts and turns Lambda events into requests.

pub mod auth;
pub mod config;
pub mod envelope;
pub mod error;
pub mod handlers;
pub mod lambda;
pub mod list;
pub mod listing;
pub mod meter;
pub mod request;
pub mod store;
pub mod telemetry;

pub use handlers::{App, Endpoint};
