//! The bottom layer of the Meters API, in a crate of its own so that the compiler holds it there: it depends on
//! no AWS SDK, no `lambda_http` and no `hyper` (`scripts/tests/test_layers.py` checks the dependency tree),
//! so nothing here can reach a table, a request or a network.
//!
//! - `domain`: the meter, its fields and every validation rule, list queries and their order, a request's
//!   parameters and preconditions;
//! - `store`: the ports every adapter implements (`MeterStore`, `IdempotencyStore`, `ListingSnapshots`), what
//!   their failures mean (`StoreError`), and the in-memory listing both stores answer lists from.
//!
//! The crate `meters` re-exports both modules under the same names, and builds the adapters, auth, HTTP and
//! the runtime on them.

pub mod domain;
pub mod store;
