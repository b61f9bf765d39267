//! Change events: the table's stream, read by the function `meter-events`, published as one EventBridge
//! event per meter created, updated or deleted (`change`), in order per meter and at least once (`batch`),
//! to the stack's bus (`bus`). Records are read by `records`; the table's bookkeeping gives no events. A batch
//! that could not be published is replayed from the stream by `replay` (the operator's meters-replay-events).

mod batch;
mod bus;
mod change;
mod records;
mod replay;

pub use batch::{BatchResponse, ChangePublisher, ItemFailure, NotABatch};
pub use bus::EventBus;
pub use change::{ChangeKind, MeterChange, SCHEMA_VERSION, SOURCE};
pub use records::{RecordError, change_of};
pub use replay::{ParkedBatch, ReplayError, StreamReader, lambda_record};
