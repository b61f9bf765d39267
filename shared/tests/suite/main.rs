//! The shared crate's integration tests, in one binary so that an edit relinks one test executable:
//! the event fixtures, real Lambda events through the handlers, and the store contract on both stores.

mod auth;
mod deadline;
mod event_fixtures;
mod idempotent_retries;
mod lambda_events;
mod layers;
mod store_contract;
