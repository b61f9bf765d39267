//! The one JSON envelope every response is written in.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::domain::meter::Meter;

/// `{"success", "message"?, "data"?, "count"?, "error"?, "code"?, "field"?}`: absent members are left out,
/// never `null`.
#[derive(Debug, Serialize)]
struct Envelope<'a, T: Serialize> {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// What an error envelope says beside `success: false`.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// What was wrong, naming the field and the rule.
    pub error: &'a str,
    /// The short summary: the HTTP reason phrase.
    pub message: &'a str,
    /// The stable, machine-readable name of the failure (`http::error::ERROR_CODES`).
    pub code: &'a str,
    /// The one field at fault, when there is one.
    pub field: Option<&'a str>,
}

/// A success carrying `data`, and `count` for lists.
pub fn success<T: Serialize>(status: StatusCode, data: T, count: Option<usize>) -> Response<Body> {
    json_response(
        status,
        &Envelope {
            success: true,
            message: None,
            data: Some(data),
            count,
            error: None,
            code: None,
            field: None,
        },
    )
}

/// A failure, in the envelope.
pub fn failure(status: StatusCode, failure: Failure<'_>) -> Response<Body> {
    json_response(
        status,
        &Envelope::<()> {
            success: false,
            message: Some(failure.message),
            data: None,
            count: None,
            error: Some(failure.error),
            code: Some(failure.code),
            field: failure.field,
        },
    )
}

/// A single meter's answer carries its entity tag.
pub fn meter(status: StatusCode, meter: &Meter) -> Response<Body> {
    let mut response = success(status, meter, None);
    insert_etag(&mut response, meter);
    response
}

/// `If-None-Match` named the meter as it is: 304, no body, its tag.
pub fn not_modified(meter: &Meter) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    insert_etag(&mut response, meter);
    response
}

fn insert_etag(response: &mut Response<Body>, meter: &Meter) {
    if let Ok(tag) = header::HeaderValue::from_str(&meter.etag()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
}

/// The bodiless success of a delete.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn json_response<T: Serialize>(status: StatusCode, envelope: &Envelope<'_, T>) -> Response<Body> {
    // Serialising plain data into a String cannot fail; the fallback keeps the envelope's shape regardless.
    let text = serde_json::to_string(envelope)
        .unwrap_or_else(|_| r#"{"success":false,"message":"Internal error","error":"the response could not be written"}"#.into());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
