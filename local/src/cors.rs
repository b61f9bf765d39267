//! Cross-origin requests from browsers, answered as the template's HTTP API answers them (its
//! `CorsConfiguration`, from the `CorsAllowedOrigins` parameter): `scripts/tests/test_template_routes.py` compares the
//! template with `CorsPolicy::standard()` as `meters-local cors-policy` prints it.

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method};
use serde::Serialize;

/// What a cross-origin caller may send and read: the API's methods; the headers its flows need (the token,
/// JSON bodies, conditional requests, idempotent creates); and the response headers those flows read back,
/// which a browser hides from scripts unless they are exposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CorsPolicy {
    pub allow_methods: &'static [&'static str],
    pub allow_headers: &'static [&'static str],
    pub expose_headers: &'static [&'static str],
    /// How long a browser may reuse a preflight's answer, in seconds.
    pub max_age: u32,
}

impl CorsPolicy {
    pub const fn standard() -> Self {
        Self {
            allow_methods: &["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers: &[
                "authorization",
                "content-type",
                "if-match",
                "if-none-match",
                "idempotency-key",
            ],
            expose_headers: &[
                "etag",
                "location",
                "x-request-id",
                "retry-after",
                "idempotent-replayed",
            ],
            max_age: 600,
        }
    }
}

/// The origins allowed to call the server from a browser; none means no cross-origin access at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "CORS origin `{0}` is not an origin: write scheme://host[:port] with no path (or `*` alone for any origin; a `*` inside an origin would match no browser's, so name each origin)"
)]
pub struct BadOrigin(String);

impl Cors {
    /// Origins as browsers send them (`https://app.example.com`, `http://localhost:5173`), or `*` for any.
    /// A trailing slash is dropped; anything with a path, query or no scheme is refused, because a browser's
    /// `Origin` never carries one and such an entry would silently allow nothing.
    pub fn new<I, S>(origins: I) -> Result<Self, BadOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = Vec::new();
        for origin in origins {
            let origin = origin.as_ref().trim();
            if origin.is_empty() {
                continue;
            }
            let origin = origin.strip_suffix('/').unwrap_or(origin);
            if origin != "*" && (origin.contains('*') || !is_origin(origin)) {
                return Err(BadOrigin(origin.to_owned()));
            }
            allowed.push(origin.to_ascii_lowercase());
        }
        Ok(Self { origins: allowed })
    }

    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins.
    pub fn from_list(list: &str) -> Result<Self, BadOrigin> {
        Self::new(list.split(','))
    }

    pub fn with(mut self, other: Cors) -> Self {
        self.origins.extend(other.origins);
        self
    }

    pub fn is_enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// The `Access-Control-Allow-Origin` value for this request's `Origin`, if that origin is allowed.
    fn allowed_origin(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let origin = request.get(ORIGIN)?;
        if self.origins.iter().any(|allowed| allowed == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.origins.contains(&text).then(|| origin.clone())
    }

    /// A preflight is an `OPTIONS` with an `Origin` and the method it asks for. With CORS on it is answered
    /// here, 204, with the policy's headers when the origin is allowed and none when it is not (the browser
    /// then blocks the real request). API Gateway answers preflights itself, never reaching a function, so
    /// they are not API requests and leave no request line.
    pub fn preflight(
        &self,
        method: &Method,
        request: &HeaderMap,
    ) -> Option<axum::response::Response> {
        if !self.is_enabled()
            || method != Method::OPTIONS
            || !request.contains_key(ORIGIN)
            || !request.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = axum::response::Response::new(axum::body::Body::empty());
        *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = self.allowed_origin(request) {
            let policy = CorsPolicy::standard();
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, joined(policy.allow_methods));
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, joined(policy.allow_headers));
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(policy.max_age));
        }
        Some(response)
    }

    /// Adds the CORS headers to an answer to an allowed origin; answers to others are left as they are.
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if !self.is_enabled() {
            return;
        }
        response.append(VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = self.allowed_origin(request) {
            response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            response.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                joined(CorsPolicy::standard().expose_headers),
            );
        }
    }
}

fn joined(names: &[&str]) -> HeaderValue {
    HeaderValue::from_str(&names.join(", ")).expect("the policy's names are header-safe")
}

/// `scheme://host[:port]`: an http(s) scheme, a host, an optional numeric port, nothing after.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((host, tail)) = bracketed.split_once(']') else {
            return false;
        };
        match tail {
            "" => (host, None),
            _ => match tail.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return false,
            },
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '@', ' '])
        && port.is_none_or(|port| !port.is_empty() && port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    axum::http::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        let cors =
            Cors::from_list("https://App.example.com/, http://localhost:5173,,http://[::1]:8080")
                .unwrap();
        assert_eq!(
            cors.origins,
            [
                "https://app.example.com",
                "http://localhost:5173",
                "http://[::1]:8080"
            ]
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/path",
            "ftp://x",
            "http://x:port",
            "http://",
            "http://[::1",
        ] {
            assert!(Cors::from_list(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_gets_the_policy_and_others_get_none() {
        let cors = Cors::from_list("http://allowed.test:8080").unwrap();
        let asked =
            |origin| headers(&[("origin", origin), ("access-control-request-method", "PUT")]);
        let allowed = cors
            .preflight(&Method::OPTIONS, &asked("http://allowed.test:8080"))
            .unwrap();
        assert_eq!(allowed.status(), 204);
        assert_eq!(
            allowed.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://allowed.test:8080"
        );
        assert!(
            allowed.headers()[ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("idempotency-key")
        );
        let refused = cors
            .preflight(&Method::OPTIONS, &asked("http://other.test"))
            .unwrap();
        assert_eq!(refused.status(), 204);
        assert!(!refused.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(
            Cors::default()
                .preflight(&Method::OPTIONS, &asked("http://allowed.test:8080"))
                .is_none(),
            "with no origins configured, OPTIONS stays an unrouted method"
        );
    }

    #[test]
    fn a_wildcard_inside_an_origin_is_refused_at_start_naming_it() {
        for (list, named) in [
            ("https://*.example.com", "https://*.example.com"),
            ("https://app.example.com,http://*:5173", "http://*:5173"),
        ] {
            let refused = Cors::from_list(list).unwrap_err().to_string();
            assert!(refused.contains("a `*` inside an origin"), "{refused}");
            assert!(refused.contains(&format!("`{named}`")), "{refused}");
        }
    }

    #[test]
    fn answers_expose_the_headers_the_api_flows_read_to_allowed_origins_only() {
        let cors = Cors::from_list("*").unwrap();
        let mut response = HeaderMap::new();
        cors.decorate(&headers(&[("origin", "http://any.test")]), &mut response);
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            response[ACCESS_CONTROL_EXPOSE_HEADERS],
            "etag, location, x-request-id, retry-after, idempotent-replayed"
        );
        let cors = Cors::from_list("http://allowed.test").unwrap();
        let mut response = HeaderMap::new();
        cors.decorate(&headers(&[("origin", "http://other.test")]), &mut response);
        assert!(!response.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    }
}
