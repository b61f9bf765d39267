//! The capacity each call consumed, as DynamoDB reports it, noted for the request's log line.

use aws_sdk_dynamodb::types::ConsumedCapacity;

use crate::telemetry;

pub(super) fn spend_read(consumed: Option<&ConsumedCapacity>) {
    telemetry::spend_read(consumed.and_then(ConsumedCapacity::capacity_units));
}

pub(super) fn spend_write(consumed: Option<&ConsumedCapacity>) {
    telemetry::spend_write(consumed.and_then(ConsumedCapacity::capacity_units));
}

/// A transaction reports each table it touched.
pub(super) fn spend_write_all(consumed: &[ConsumedCapacity]) {
    for table in consumed {
        spend_write(Some(table));
    }
}
