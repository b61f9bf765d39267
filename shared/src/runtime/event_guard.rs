//! Events `lambda_http` would panic on, found and made safe before it sees them.

use base64::Engine;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderMap, HeaderValue, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{LambdaEvent, Request, Service};
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::domain::FieldError;
use crate::http::request::{REJECTED_EVENT_HEADER, RejectedEvent};
use crate::http::{ApiError, refuse};

/// Turns an event's JSON into the request a handler sees, exactly as the function does (tests use this
/// with the fixtures in `events/`).
pub fn request_from_event(json: &str) -> Result<Request, serde_json::Error> {
    let mut event: LambdaRequest = serde_json::from_str(json)?;
    guard_event(&mut event);
    Ok(event.into())
}

/// `lambda_http` panics on events it cannot turn into a request (a base64 body that does not decode, a Host
/// or X-Forwarded-Proto that makes no URL, a query that makes no URI), and a panic aborts the process
/// (`panic = "abort"`): the caller would get no answer at all. This layer finds such events first, makes
/// them safe to convert, and marks them so that the handler answers 400 naming what was wrong. An event
/// that is no request event at all (the runtime would fail the invocation, and API Gateway answer 502) is
/// answered 400 in the envelope here.
#[derive(Debug, Clone)]
pub struct EventGuard<S>(pub S);

/// An event as the runtime receives it, before it is read as a request.
pub type RawEvent = Box<serde_json::value::RawValue>;

/// The handler's answer, or the guard's to an event that is no request.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Guarded<R> {
    Served(R),
    Refused(serde_json::Value),
}

impl<S> Service<LambdaEvent<RawEvent>> for EventGuard<S>
where
    S: Service<LambdaEvent<LambdaRequest>>,
    S::Future: Send + 'static,
{
    type Response = Guarded<S::Response>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, event: LambdaEvent<RawEvent>) -> Self::Future {
        let LambdaEvent { payload, context } = event;
        match serde_json::from_str::<LambdaRequest>(payload.get()) {
            Ok(mut request) => {
                guard_event(&mut request);
                let served = self.0.call(LambdaEvent::new(request, context));
                Box::pin(async move { served.await.map(Guarded::Served) })
            }
            Err(_) => Box::pin(async move {
                Ok(Guarded::Refused(
                    unreadable_event(&context.request_id).await,
                ))
            }),
        }
    }
}

/// The 400 for an event that is no API Gateway or ALB request, as a proxy response all of them read.
async fn unreadable_event(request_id: &str) -> serde_json::Value {
    let error = ApiError::Invalid(FieldError::new(
        "event",
        "is not an API Gateway (HTTP or REST API) or Application Load Balancer request",
    ));
    let response = refuse(error, request_id, "-", "-", Instant::now()).await;
    let headers: serde_json::Map<String, serde_json::Value> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.into())))
        .collect();
    serde_json::json!({
        "statusCode": response.status().as_u16(),
        "headers": headers,
        "body": String::from_utf8_lossy(response.body().as_ref()),
        "isBase64Encoded": false,
    })
}

/// The parts of an event `lambda_http` builds the request URI from.
struct UriParts<'a> {
    headers: &'a mut HeaderMap,
    multi_value_headers: Option<&'a mut HeaderMap>,
    domain_name: Option<&'a mut Option<String>>,
    path: &'a mut Option<String>,
    raw_query: Option<&'a mut Option<String>>,
    /// REST API and ALB events carry their query as parameter maps (multi-valued, then single-valued),
    /// which `lambda_http` writes into the URI; ALB's are percent-decoded first.
    query_maps: Option<QueryMaps<'a>>,
    body: &'a mut Option<String>,
    is_base64: &'a mut bool,
}

struct QueryMaps<'a> {
    multi_value: &'a mut QueryMap,
    single_value: &'a mut QueryMap,
    decoded_first: bool,
}

impl QueryMaps<'_> {
    /// The query string `lambda_http` builds from these maps.
    fn query_string(&self) -> String {
        let chosen = if self.multi_value.is_empty() {
            &*self.single_value
        } else {
            &*self.multi_value
        };
        if !self.decoded_first {
            return chosen.to_query_string();
        }
        let decoded = percent_decoded(&chosen.to_query_string());
        QueryMap::from_str(&decoded)
            .unwrap_or_default()
            .to_query_string()
    }
}

/// `%XX` sequences decoded, the rest kept, invalid UTF-8 replaced: exactly what `lambda_http` does to an ALB
/// event's query before it builds the URI (`decode_query_map` in its `request.rs`, 1.3), with the same crate.
fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn guard_event(event: &mut LambdaRequest) {
    let parts = match event {
        LambdaRequest::ApiGatewayV2(request) => UriParts {
            headers: &mut request.headers,
            multi_value_headers: None,
            domain_name: Some(&mut request.request_context.domain_name),
            path: &mut request.raw_path,
            raw_query: Some(&mut request.raw_query_string),
            query_maps: None,
            body: &mut request.body,
            is_base64: &mut request.is_base64_encoded,
        },
        LambdaRequest::ApiGatewayV1(request) => UriParts {
            headers: &mut request.headers,
            multi_value_headers: Some(&mut request.multi_value_headers),
            domain_name: Some(&mut request.request_context.domain_name),
            path: &mut request.path,
            raw_query: None,
            query_maps: Some(QueryMaps {
                multi_value: &mut request.multi_value_query_string_parameters,
                single_value: &mut request.query_string_parameters,
                decoded_first: false,
            }),
            body: &mut request.body,
            is_base64: &mut request.is_base64_encoded,
        },
        LambdaRequest::Alb(request) => UriParts {
            headers: &mut request.headers,
            multi_value_headers: Some(&mut request.multi_value_headers),
            domain_name: None,
            path: &mut request.path,
            raw_query: None,
            query_maps: Some(QueryMaps {
                multi_value: &mut request.multi_value_query_string_parameters,
                single_value: &mut request.query_string_parameters,
                decoded_first: true,
            }),
            body: &mut request.body,
            is_base64: &mut request.is_base64_encoded,
        },
        _ => return,
    };
    parts.guard();
}

impl UriParts<'_> {
    fn guard(mut self) {
        // Only this layer may set the marker: a caller's copy is dropped.
        self.headers.remove(REJECTED_EVENT_HEADER);
        if let Some(multi) = self.multi_value_headers.as_deref_mut() {
            multi.remove(REJECTED_EVENT_HEADER);
        }
        let Some(problem) = self.problem() else {
            return;
        };
        // Whatever was wrong, nothing of it reaches lambda_http: a relative URI of `/`, no body.
        for headers in [
            Some(&mut *self.headers),
            self.multi_value_headers.as_deref_mut(),
        ]
        .into_iter()
        .flatten()
        {
            headers.remove(header::HOST);
            headers.remove(FORWARDED_PROTO);
        }
        if let Some(domain_name) = self.domain_name.as_deref_mut() {
            *domain_name = None;
        }
        *self.path = Some("/".into());
        if let Some(raw_query) = self.raw_query.as_deref_mut() {
            *raw_query = None;
        }
        if let Some(maps) = self.query_maps.as_mut() {
            *maps.multi_value = QueryMap::default();
            *maps.single_value = QueryMap::default();
        }
        *self.body = None;
        *self.is_base64 = false;
        let marker = HeaderValue::from_static(problem.marker());
        self.headers.insert(REJECTED_EVENT_HEADER, marker.clone());
        if let Some(multi) = self.multi_value_headers.filter(|multi| !multi.is_empty()) {
            multi.insert(REJECTED_EVENT_HEADER, marker);
        }
    }

    /// The first thing `lambda_http` would panic on, replaying what it does with these parts.
    fn problem(&self) -> Option<RejectedEvent> {
        let undecodable = *self.is_base64
            && self.body.as_deref().is_some_and(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .is_err()
            });
        if undecodable {
            return Some(RejectedEvent::UndecodableBody);
        }
        let path = self.path.as_deref().unwrap_or_default();
        // As lambda_http picks it: the Host header if it is text, else API Gateway's domain name.
        let host = self
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or(self.domain_name.as_deref().and_then(Option::as_deref));
        let proto = self
            .headers
            .get(FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok());
        let base = match host {
            Some(host) => {
                if proto.is_some_and(|proto| {
                    !["http", "https"].contains(&proto.to_ascii_lowercase().as_str())
                }) {
                    return Some(RejectedEvent::ForwardedProto);
                }
                // The path is judged on its own first, so that a bad path is not blamed on the host.
                if url::Url::parse(&format!("https://localhost{path}")).is_err() {
                    return Some(RejectedEvent::Path);
                }
                let scheme = proto.unwrap_or("https");
                let url = url::Url::parse(&format!("{scheme}://{host}{path}")).ok();
                let host_is_valid = url
                    .as_ref()
                    .and_then(url::Url::host_str)
                    .is_some_and(|parsed| valid_host(host, parsed));
                match url {
                    Some(url) if host_is_valid => url.to_string(),
                    _ => return Some(RejectedEvent::Host),
                }
            }
            None => match url::Url::parse(&format!("http://localhost{path}")) {
                Ok(url) => url.path().to_owned(),
                Err(_) => return Some(RejectedEvent::Path),
            },
        };
        let query = match &self.query_maps {
            Some(maps) => Some(maps.query_string()),
            None => self.raw_query.as_deref().and_then(Option::clone),
        }
        .filter(|query| !query.is_empty());
        let uri = match query {
            Some(query) => format!("{base}?{query}"),
            None => base,
        };
        match uri.parse::<lambda_http::http::Uri>() {
            Ok(_) => None,
            Err(_) => Some(RejectedEvent::Query),
        }
    }
}

/// `url` accepts hosts that browsers would rewrite (`a^b.example` becomes percent-encoded, spaces are
/// refused); a Host header must already be what it names: letters, digits, dots, hyphens, or a bracketed
/// IPv6 address, with an optional port.
fn valid_host(raw: &str, parsed: &str) -> bool {
    let name = match raw.rsplit_once(':') {
        Some((name, port)) if !raw.ends_with(']') => {
            if port.parse::<u16>().is_err() {
                return false;
            }
            name
        }
        _ => raw,
    };
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    (plain || (name.starts_with('[') && name.ends_with(']'))) && parsed.eq_ignore_ascii_case(name)
}

const FORWARDED_PROTO: &str = "x-forwarded-proto";
