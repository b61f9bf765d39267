//! The HTTP layer: reading a request (`request`), the envelope every answer is written in (`envelope`),
//! every failure and its status code (`error`), one handler per endpoint (`handlers`), the idempotency
//! protocol a create follows (`idempotency`), and what every request goes through (`endpoint`).

pub mod app;
pub mod endpoint;
pub mod envelope;
pub mod error;
mod handlers;
pub mod idempotency;
pub mod request;

pub use app::{App, DEFAULT_DEADLINE, request_deadline};
pub use endpoint::{Endpoint, refuse};
pub use error::ApiError;
