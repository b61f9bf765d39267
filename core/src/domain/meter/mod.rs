//! The meter: its fields, each a type that is valid by construction (`fields`), listed once in
//! `model`'s `meter_fields!`, from which the model, an update's changes, the read-only echoes and the sort
//! keys all follow; the create and update bodies (`body`).

mod body;
mod change;
mod fields;
mod json;
mod model;
mod sort_key;

pub use body::{CreateMeterBody, UpdateMeterBody};
pub use change::Change;
pub use fields::*;
pub use json::FromJson;
pub use model::{EntityTag, Meter, MeterChanges, NewMeter, ReadOnlyEcho, SortableField, now};
pub use sort_key::{SortKey, SortValue};
