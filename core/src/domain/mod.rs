//! The domain: the meter, its fields and their rules, list queries and their order, a request's parameters
//! and preconditions, and the readings other services send. No I/O, no HTTP, no AWS types: every layer above uses these, and these use nothing
//! above them.

pub mod actor;
pub mod field_error;
pub mod filters;
pub mod list;
pub mod meter;
pub mod params;
pub mod precondition;
pub mod reading;

pub use actor::{Actor, WrittenBy};
pub use field_error::FieldError;
