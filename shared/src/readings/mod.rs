//! Readings from the platform's other services: the stack's readings queue, read by the function
//! `apply-readings` in batches, each reading applied to its meter if it is later than the meter's
//! (`crate::domain::reading`, `crate::store::readings`). A reading that can never apply (malformed, out of
//! range, no such meter in its account) is parked on the dead-letter queue with its reason (`dead_letters`)
//! and never holds up the rest of its batch; a message that met a passing failure is handed back to the
//! queue (`batch`). Readings give no change events and move no list version (docs/readings.md).

mod batch;
mod dead_letters;

pub use batch::{NotAQueueBatch, READINGS_IN_FLIGHT, ReadingsApplier, Tally};
pub use dead_letters::{DeadLetterError, DeadLetterQueue, DeadLetters, Parked};
