//! One handler per endpoint, each in its own short file that reads top to bottom.

mod create_meter;
mod delete_meter;
mod get_meter;
mod list_meters;
mod update_meter;

pub(super) use create_meter::create_meter;
pub(super) use delete_meter::delete_meter;
pub(super) use get_meter::get_meter;
pub(super) use list_meters::list_meters;
pub(super) use update_meter::update_meter;
