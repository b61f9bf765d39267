//! Reading what a request carries (query, path id, body, request id) the same way whichever front door
//! it came through: API Gateway HTTP or REST API, ALB, a function URL, or the local server.

use lambda_http::{Request, RequestExt};

use super::error::ApiError;
use crate::domain::FieldError;
use crate::domain::meter::{EntityTag, Meter, MeterId};
use crate::domain::params::QueryParams;
use crate::domain::precondition::IfMatch;

/// Bodies over this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Set by `runtime::EventGuard` on an event `lambda_http` could not have turned into a request (and stripped
/// from callers): its value says what was wrong.
pub const REJECTED_EVENT_HEADER: &str = "x-meters-rejected-event";

/// Why an event was refused before it became a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedEvent {
    UndecodableBody,
    Host,
    ForwardedProto,
    Path,
    Query,
}

impl RejectedEvent {
    const ALL: [RejectedEvent; 5] = [
        RejectedEvent::UndecodableBody,
        RejectedEvent::Host,
        RejectedEvent::ForwardedProto,
        RejectedEvent::Path,
        RejectedEvent::Query,
    ];

    pub fn marker(self) -> &'static str {
        match self {
            RejectedEvent::UndecodableBody => "undecodable-body",
            RejectedEvent::Host => "host",
            RejectedEvent::ForwardedProto => "x-forwarded-proto",
            RejectedEvent::Path => "path",
            RejectedEvent::Query => "query",
        }
    }

    fn error(self) -> FieldError {
        match self {
            RejectedEvent::UndecodableBody => {
                FieldError::new("body", "is marked base64-encoded but is not valid base64")
            }
            RejectedEvent::Host => FieldError::new(
                "Host",
                "must be a host name or address, with an optional port",
            ),
            RejectedEvent::ForwardedProto => {
                FieldError::new("X-Forwarded-Proto", "must be http or https")
            }
            RejectedEvent::Path => FieldError::new("path", "is not a valid URL path"),
            RejectedEvent::Query => FieldError::new("query string", "is not a valid URL query"),
        }
    }
}

/// The 400 for an event the guard refused, if it did.
pub fn rejected_event(request: &Request) -> Option<FieldError> {
    let marker = request.headers().get(REJECTED_EVENT_HEADER)?;
    RejectedEvent::ALL
        .into_iter()
        .find(|rejected| marker == rejected.marker())
        .map(RejectedEvent::error)
}

/// The query string's parameters.
pub fn query_params(request: &Request) -> QueryParams {
    let pairs = request.query_string_parameters_ref().map(|map| {
        map.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    });
    QueryParams::from_pairs(pairs.unwrap_or_default())
}

/// The `{id}` of `/api/v1/meters/{id}`: API Gateway's path parameter where it gives one, else the last
/// segment of the path (function URLs and `cargo lambda watch` give no path parameters).
pub fn meter_id(request: &Request) -> Result<MeterId, FieldError> {
    let from_parameters = request
        .path_parameters_ref()
        .and_then(|params| params.first("id"));
    let raw = match from_parameters {
        Some(id) => id,
        None => request
            .uri()
            .path()
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default(),
    };
    MeterId::parse(raw)
}

/// The entity tags a conditional header lists (`*` included as itself), across repeated headers.
fn entity_tags<'a>(request: &'a Request, name: &str) -> Vec<&'a str> {
    request
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .collect()
}

/// `If-Match` for meter `id`: absent or `*` asks only that it exists; otherwise the states of this meter it
/// names (`EntityTag`). Comparison is strong, so weak tags (`W/"…"`) and other meters' tags name nothing.
pub fn if_match(request: &Request, id: MeterId) -> IfMatch {
    let tags = entity_tags(request, "if-match");
    if tags.is_empty() || tags.contains(&"*") {
        return IfMatch::Any;
    }
    IfMatch::Tags(
        tags.iter()
            .filter_map(|tag| EntityTag::parse(id, tag))
            .collect(),
    )
}

/// Whether `If-None-Match` names the meter as it is now (`*`, or its tag; weak comparison).
pub fn none_match(request: &Request, meter: &Meter) -> bool {
    let current = meter.etag();
    entity_tags(request, "if-none-match")
        .iter()
        .any(|tag| *tag == "*" || tag.trim_start_matches("W/") == current)
}

/// The `Idempotency-Key` of a create, if one came: 1 to 255 visible ASCII characters (a structured-field
/// string in quotes is taken without them).
pub fn idempotency_key(request: &Request) -> Result<Option<String>, FieldError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || {
        FieldError::new(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )
    };
    let raw = value.to_str().map_err(|_| invalid())?.trim();
    let key = raw
        .strip_prefix('"')
        .and_then(|quoted| quoted.strip_suffix('"'))
        .unwrap_or(raw);
    let visible = key.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if (1..=255).contains(&key.len()) && visible {
        Ok(Some(key.to_owned()))
    } else {
        Err(invalid())
    }
}

/// What makes two bodies "the same" for an idempotent retry: the same JSON once parsed (key order, spacing
/// and number spelling do not matter), hashed.
pub fn body_fingerprint(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|value| value.to_string())
        .unwrap_or_default();
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The body's bytes, within the size limit.
pub fn body(request: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        });
    }
    Ok(bytes)
}

/// The id logs and error bodies carry: Lambda's request id, else the local server's `x-request-id`.
pub fn request_id(request: &Request) -> String {
    if let Some(context) = request
        .lambda_context_ref()
        .filter(|context| !context.request_id.is_empty())
    {
        return context.request_id.clone();
    }
    match request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
    {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}
