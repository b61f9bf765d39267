//! Every way a request can fail, and the one place each becomes a status code and an envelope.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

use super::envelope::{self, Failure};
use crate::auth::{AccountNotGranted, AuthError};
use crate::domain::FieldError;
use crate::store::StoreError;

/// A request's failure, as the caller will be told of it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong: a body, query or path value broke a rule. 400.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No valid token came with the request. 401, with `WWW-Authenticate: Bearer`.
    #[error(transparent)]
    Unauthenticated(AuthError),
    /// The token is valid but may not act for that account, or the meter is another account's. 403.
    #[error("{0}")]
    Forbidden(String),
    /// No such meter, or no such route. 404.
    #[error("{0}")]
    NotFound(String),
    /// The route exists, the method does not. 405, with `Allow`.
    #[error("method {method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed { method: String, allowed: String },
    /// The client did not send `what` within the time allowed. 408.
    #[error("{what} did not arrive within {seconds} s")]
    RequestTimeout { what: &'static str, seconds: f64 },
    /// The request target is over the limit. 414.
    #[error("the request target is longer than {limit_bytes} bytes")]
    UriTooLong { limit_bytes: usize },
    /// The request headers are over the limit. 431.
    #[error("the request headers are larger than {limit_bytes} bytes")]
    HeadersTooLarge { limit_bytes: usize },
    /// A create with this `Idempotency-Key` (and the same body) is still running. 409.
    #[error("a request with this Idempotency-Key is still being processed; retry it shortly")]
    IdempotencyInProgress,
    /// The `Idempotency-Key` was used with a different body. 422.
    #[error(
        "this Idempotency-Key was already used with a different body; use a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// `If-Match` named a version the meter no longer has. 412.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is over the limit. 413.
    #[error("the body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// The store is throttled or unreachable; the caller may retry. 503. The source is logged, never shown.
    #[error("the meters store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The identity provider's signing keys cannot be fetched; the caller may retry after the given time.
    /// 503 with that `Retry-After`.
    #[error("{source}")]
    KeysUnavailable {
        source: AuthError,
        retry_after_seconds: u64,
    },
    /// The request did not finish within its deadline (store calls, pages and retries included); nothing is
    /// known of a write it started. 503, with `Retry-After`.
    #[error("the request did not finish within its deadline of {deadline_ms} ms")]
    DeadlineExceeded { deadline_ms: u64 },
    /// Anything else. 500. The source is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Every `code` an error envelope can carry, its status, and what it means: the one list the OpenAPI
/// document's enum and docs/api.md's table are checked against (`meters-local error-codes` prints it).
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "invalid_request",
        400,
        "a body, query, header or path value broke a rule; `field` names it",
    ),
    (
        "unauthenticated",
        401,
        "no valid Bearer token; `error` says which rule the token broke",
    ),
    (
        "forbidden",
        403,
        "the token does not grant the account, or the meter is another account's",
    ),
    (
        "not_found",
        404,
        "no account has the meter, or no such route",
    ),
    (
        "method_not_allowed",
        405,
        "the route exists, the method does not (`Allow` lists them)",
    ),
    (
        "request_timeout",
        408,
        "the request's headers or body did not arrive in time",
    ),
    (
        "idempotency_in_progress",
        409,
        "a create with this Idempotency-Key is still running",
    ),
    (
        "precondition_failed",
        412,
        "the meter no longer has the version If-Match names",
    ),
    ("payload_too_large", 413, "the body is over 64 KiB"),
    ("uri_too_long", 414, "the request target is over 8 KiB"),
    (
        "idempotency_key_reused",
        422,
        "the Idempotency-Key was used with another body",
    ),
    (
        "headers_too_large",
        431,
        "the headers are over 64 KiB or 100 fields",
    ),
    (
        "internal",
        500,
        "an internal failure; the request id names its log line",
    ),
    (
        "store_unavailable",
        503,
        "the store is throttling or unreachable; retry after Retry-After",
    ),
    (
        "keys_unavailable",
        503,
        "the identity provider's keys cannot be fetched; retry after Retry-After",
    ),
    (
        "deadline_exceeded",
        503,
        "the request did not finish within its deadline; retry after Retry-After",
    ),
];

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::KeysUnavailable {
                retry_after_seconds,
            } => ApiError::KeysUnavailable {
                source: error,
                retry_after_seconds,
            },
            other => ApiError::Unauthenticated(other),
        }
    }
}

impl From<AccountNotGranted> for ApiError {
    fn from(refused: AccountNotGranted) -> Self {
        ApiError::Forbidden(refused.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(id) => ApiError::NotFound(format!("meter {id} does not exist")),
            StoreError::OtherAccount(id) => {
                ApiError::Forbidden(format!("meter {id} does not belong to this account"))
            }
            StoreError::ReadOnlyChanged(field) => ApiError::Invalid(field),
            StoreError::PreconditionFailed(id) => ApiError::PreconditionFailed(format!(
                "meter {id} has changed since the version If-Match names; read it again"
            )),
            StoreError::Unavailable(source) => ApiError::Unavailable(source),
            StoreError::Internal(source) => ApiError::Internal(source),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::IdempotencyInProgress => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Unavailable(_)
            | ApiError::KeysUnavailable { .. }
            | ApiError::DeadlineExceeded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable name of the failure, for clients, logs and dashboards: one of `ERROR_CODES`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::PreconditionFailed(_) => "precondition_failed",
            ApiError::IdempotencyInProgress => "idempotency_in_progress",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::UriTooLong { .. } => "uri_too_long",
            ApiError::HeadersTooLarge { .. } => "headers_too_large",
            ApiError::Unavailable(_) => "store_unavailable",
            ApiError::KeysUnavailable { .. } => "keys_unavailable",
            ApiError::DeadlineExceeded { .. } => "deadline_exceeded",
            ApiError::Internal(_) => "internal",
        }
    }

    /// What went wrong inside, for the log: the source of a 500 or 503, never shown to the caller.
    pub fn detail(&self) -> Option<String> {
        match self {
            ApiError::Unavailable(source) | ApiError::Internal(source) => {
                Some(format!("{source}: {source:?}"))
            }
            ApiError::KeysUnavailable { source, .. } => Some(source.to_string()),
            _ => None,
        }
    }

    /// The one field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::Invalid(error) => Some(error.field),
            _ => None,
        }
    }

    /// The response the caller sees: for a 500 or 503, only the request id the log line carries.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let status = self.status();
        let error = match &self {
            // The internals go to the request's log line (`detail`); the caller sees the request id.
            ApiError::Unavailable(_)
            | ApiError::Internal(_)
            | ApiError::DeadlineExceeded { .. } => format!("{self}; request id {request_id}"),
            _ => self.to_string(),
        };
        let mut response = envelope::failure(
            status,
            Failure {
                error: &error,
                message: status.canonical_reason().unwrap_or("Error"),
                code: self.code(),
                field: self.field(),
            },
        );
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                if let Ok(allowed) = HeaderValue::from_str(allowed) {
                    headers.insert(header::ALLOW, allowed);
                }
            }
            ApiError::Unavailable(_) | ApiError::DeadlineExceeded { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::KeysUnavailable {
                retry_after_seconds,
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meter::MeterId;

    fn body_of(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    fn id() -> MeterId {
        MeterId::new(7).unwrap()
    }

    #[test]
    fn each_error_maps_to_its_status_code() {
        let io = || {
            Box::new(std::io::Error::other("socket closed"))
                as Box<dyn std::error::Error + Send + Sync>
        };
        let cases: Vec<(ApiError, u16)> = vec![
            (FieldError::new("name", "is required").into(), 400),
            (AuthError::Missing.into(), 401),
            (ApiError::Forbidden("no".into()), 403),
            (StoreError::OtherAccount(id()).into(), 403),
            (StoreError::NotFound(id()).into(), 404),
            (
                ApiError::MethodNotAllowed {
                    method: "PATCH".into(),
                    allowed: "GET, POST".into(),
                },
                405,
            ),
            (ApiError::PayloadTooLarge { limit_bytes: 65536 }, 413),
            (
                StoreError::ReadOnlyChanged(FieldError::new("serial_number", "is read-only"))
                    .into(),
                400,
            ),
            (StoreError::Unavailable(io()).into(), 503),
            (
                AuthError::KeysUnavailable {
                    retry_after_seconds: 12,
                }
                .into(),
                503,
            ),
            (StoreError::Internal(io()).into(), 500),
        ];
        for (error, status) in cases {
            let code = error.code();
            let response = error.into_response("req-1");
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(body_of(&response)["code"], code);
            assert!(
                ERROR_CODES
                    .iter()
                    .any(|listed| (listed.0, listed.1) == (code, status)),
                "{code} {status} is not in ERROR_CODES"
            );
        }
    }

    #[test]
    fn error_codes_lists_every_failure_with_its_status_and_nothing_else() {
        let io =
            || Box::new(std::io::Error::other("x")) as Box<dyn std::error::Error + Send + Sync>;
        let every_variant = vec![
            ApiError::Invalid(FieldError::new("name", "is required")),
            ApiError::Unauthenticated(AuthError::Missing),
            ApiError::Forbidden("no".into()),
            ApiError::NotFound("no".into()),
            ApiError::MethodNotAllowed {
                method: "PATCH".into(),
                allowed: "GET".into(),
            },
            ApiError::RequestTimeout {
                what: "the body",
                seconds: 1.0,
            },
            ApiError::UriTooLong { limit_bytes: 1 },
            ApiError::HeadersTooLarge { limit_bytes: 1 },
            ApiError::IdempotencyInProgress,
            ApiError::IdempotencyKeyReused,
            ApiError::PreconditionFailed("changed".into()),
            ApiError::PayloadTooLarge { limit_bytes: 1 },
            ApiError::Unavailable(io()),
            ApiError::KeysUnavailable {
                source: AuthError::KeysUnavailable {
                    retry_after_seconds: 1,
                },
                retry_after_seconds: 1,
            },
            ApiError::DeadlineExceeded { deadline_ms: 1 },
            ApiError::Internal(io()),
        ];
        let mut served: Vec<(&str, u16)> = every_variant
            .iter()
            .map(|error| (error.code(), error.status().as_u16()))
            .collect();
        let mut listed: Vec<(&str, u16)> = ERROR_CODES
            .iter()
            .map(|(code, status, _)| (*code, *status))
            .collect();
        served.sort_unstable();
        listed.sort_unstable();
        assert_eq!(served, listed);
    }

    #[test]
    fn a_validation_error_names_the_field_in_the_envelope() {
        let response =
            ApiError::from(FieldError::new("name", "is required")).into_response("req-1");
        assert_eq!(
            body_of(&response),
            serde_json::json!({"success": false, "error": "name: is required", "message": "Bad Request",
                               "code": "invalid_request", "field": "name"})
        );
        assert_eq!(response.headers()["content-type"], "application/json");
    }

    #[test]
    fn unauthenticated_responses_ask_for_a_bearer_token() {
        let response = ApiError::from(AuthError::Missing).into_response("req-1");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }

    #[test]
    fn a_method_not_allowed_lists_the_allowed_methods() {
        let response = ApiError::MethodNotAllowed {
            method: "PATCH".into(),
            allowed: "GET, PUT, DELETE".into(),
        }
        .into_response("r");
        assert_eq!(response.headers()["allow"], "GET, PUT, DELETE");
    }

    #[test]
    fn store_internals_are_never_shown_only_the_request_id() {
        let secret_detail =
            std::io::Error::other("connection to dynamodb.eu-west-1 refused: table meters-prod");
        let response =
            ApiError::from(StoreError::Internal(Box::new(secret_detail))).into_response("req-42");
        let body = body_of(&response);
        let shown = body.to_string();
        assert!(!shown.contains("dynamodb"), "{shown}");
        assert!(!shown.contains("meters-prod"), "{shown}");
        assert_eq!(body["error"], "internal error; request id req-42");
        assert_eq!(body["success"], false);
    }

    #[test]
    fn an_unavailable_store_tells_the_caller_to_retry() {
        let response = ApiError::from(StoreError::Unavailable(Box::new(std::io::Error::other(
            "throttled",
        ))))
        .into_response("r");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        assert!(!body_of(&response).to_string().contains("throttled"));
    }
}
