//! DynamoDB's failures in the store's terms: what may pass (503) and what is a failure (500).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::store::error::{BoxError, StoreError};
use crate::telemetry;

/// Throttling, timeouts and unreachable endpoints may pass (503); everything else is a failure (500).
pub(super) fn sdk_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    const THROTTLING_CODES: [&str; 3] = [
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
    ];
    const TRANSIENT_CODES: [&str; 7] = [
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
        "TransactionInProgressException",
    ];
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code)),
        _ => false,
    };
    let throttled = matches!(&error, SdkError::ServiceError(service)
        if service.err().code().is_some_and(|code| THROTTLING_CODES.contains(&code)));
    if throttled {
        telemetry::note_store_throttled();
    } else if transient {
        telemetry::note_store_unavailable();
    }
    let error: BoxError = Box::new(error);
    if transient {
        StoreError::Unavailable(error)
    } else {
        StoreError::Internal(error)
    }
}

pub(super) fn internal(error: impl Into<BoxError>) -> StoreError {
    StoreError::Internal(error.into())
}
