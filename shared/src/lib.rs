//! The Meters API: everything with logic lives here, shared by the Lambda functions and the local
//! server. Layers, each a folder, importing only from the layers before them (the test
//! `layers_import_in_one_direction` holds this):
//!
//! 1. `config` (the environment reader) and `telemetry` (the request's facts, its log line and metrics);
//! 2. `domain` (crate `meters-core`): the meter, its fields and every validation rule, list queries,
//!    preconditions;
//! 3. `store`: the ports (`MeterStore`, `IdempotencyStore`, `ReadingStore`) and the in-memory listing (crate `meters-core`),
//!    and their adapters: DynamoDB, redb, S3 snapshots;
//! 4. `auth`: Bearer JWT checks and which accounts a token may act for;
//! 5. `events`: the table's stream read into change events and published to EventBridge; `readings`: the
//!    readings queue's batches applied to their meters, and what can never apply parked;
//! 6. `http`: reading requests, the envelope, every failure and its status code, one handler per endpoint,
//!    the idempotency protocol;
//! 7. `runtime`: how a function binary starts, and the guard for events `lambda_http` cannot parse.
//!
//! `readings` sits beside `events`: it answers its batches in the same partial-failure shape.

pub mod config;
pub mod telemetry;

/// The bottom layer lives in `meters-core`, where the compiler keeps the AWS SDK and HTTP out of it.
pub use meters_core::domain;

pub mod store;

pub mod auth;

pub mod events;
pub mod readings;

pub mod http;

pub mod runtime;

pub use http::{App, Endpoint};
