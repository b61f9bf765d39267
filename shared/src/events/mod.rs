//! Change events: the table's stream, read by the function `meter-events`, published as one EventBridge
//! event per meter created, updated or deleted (`change`), in order per meter and at least once (`batch`),
//! to the stack's bus (`bus`). Records are read by `records`; the table's bookkeeping gives no events.

mod batch;
mod bus;
mod change;
mod records;

pub use batch::{BatchResponse, ChangePublisher, ItemFailure, NotABatch};
pub use bus::EventBus;
pub use change::{ChangeKind, MeterChange, SOURCE};
pub use records::{RecordError, change_of};
