//! How a function binary starts: configuration and clients built once at cold start, then every event
//! through the endpoint's handler.

use std::task::{Context, Poll};

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use base64::Engine;
use lambda_http::http::{HeaderMap, HeaderValue, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent, Request, Service, service_fn};

use crate::auth::Authenticator;
use crate::config::{AuthConfig, ConfigError, DynamoDbConfig};
use crate::handlers::{App, Endpoint};
use crate::request::{REJECTED_EVENT_HEADER, RejectedEvent};
use crate::store::DynamoDbStore;

/// A function binary's whole life: read configuration (exiting with one log line naming the variable if
/// it is missing), build the DynamoDB client once, and serve `endpoint` until Lambda stops the process.
pub async fn run(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = match app_from_env().await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "invalid configuration; not serving");
            return Err(error.into());
        }
    };
    let handler = service_fn(move |request: Request| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(endpoint.handle(&app, request).await) }
    });
    lambda_runtime::run(EventGuard(Adapter::from(handler))).await
}

/// The production dependencies, from the environment of the design's configuration table.
pub async fn app_from_env() -> Result<App, ConfigError> {
    let auth_config = AuthConfig::from_env()?;
    let auth = Authenticator::new(&auth_config)?;
    // Read once, said once: which trust boundary this process enforces.
    tracing::info!(auth_mode = auth_config.key.describe(), "authentication");
    let deadline = crate::config::request_deadline_from_env()?;
    let dynamodb = DynamoDbConfig::from_env()?;
    let store = DynamoDbStore::new(dynamodb_client(&dynamodb).await, dynamodb.table_name);
    Ok(App::new(store, auth).with_deadline(deadline))
}

/// The SDK client, built once per process and pointed at `DYNAMODB_ENDPOINT` when it is set.
///
/// Lambda puts the region and the function's credentials in the environment, so the client is configured
/// from those directly: no profile files read, no IMDS or SSO lookups at cold start. Only where the
/// environment lacks them (a developer's machine with an AWS profile) does the SDK's full provider chain run.
/// Timeouts and retries fit a 10 s function timeout: a stuck connection is dropped after 1 s, an attempt after
/// 3 s, and the whole call, retries included, ends within 8 s with a 503 rather than a Lambda timeout.
pub async fn dynamodb_client(config: &DynamoDbConfig) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use std::time::Duration;

    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let region = variable("AWS_REGION").or_else(|| variable("AWS_DEFAULT_REGION"));
    let has_credentials =
        variable("AWS_ACCESS_KEY_ID").is_some() && variable("AWS_SECRET_ACCESS_KEY").is_some();
    let direct = || aws_sdk_dynamodb::Config::builder().behavior_version(BehaviorVersion::latest());
    let mut builder = match (region, has_credentials, &config.endpoint) {
        (Some(region), true, _) => direct().region(Region::new(region)).credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ),
        // DynamoDB Local accepts any credentials and any region.
        (region, false, Some(_)) => direct()
            .region(Region::new(region.unwrap_or_else(|| "us-east-1".into())))
            .credentials_provider(Credentials::new("local", "local", None, None, "local")),
        _ => aws_sdk_dynamodb::config::Builder::from(
            &aws_config::defaults(BehaviorVersion::latest()).load().await,
        ),
    };
    builder = builder
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder = builder.http_client(https_client(config.extra_roots.as_deref()));
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// Amazon Trust Services' roots, the only ones a DynamoDB endpoint's certificate chains to.
const AMAZON_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// The SDK's HTTPS client, trusting the roots compiled into the binary rather than the system's store: the
/// default reads every certificate file under /etc/ssl/certs while the client is built, which was most of a
/// function's init (BENCHMARKS.md, "Trust store"). `extra_roots` (`DYNAMODB_CA_BUNDLE`) adds others.
fn https_client(extra_roots: Option<&[u8]>) -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let mut trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    if let Some(pem) = extra_roots {
        trust.add_pem_certificate(pem.to_vec());
    }
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context of a trust store is always valid");
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    SharedHttpClient::new(ConnectorBuiltOnce(client))
}

/// The SDK's HTTPS client, minus the connector it builds and drops while the client is validated at start-up.
///
/// That throwaway build exists to load the system's certificates early, into a process-wide cache; with the
/// roots compiled in there is no such cache, so it was a whole TLS configuration (the roots parsed, the crypto
/// provider set up) built twice per cold start: once at init for nothing, once for the first request. Only
/// the second remains (benches/TUNING.md, step 10).
#[derive(Debug)]
struct ConnectorBuiltOnce(SharedHttpClient);

impl HttpClient for ConnectorBuiltOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

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
/// them safe to convert, and marks them so that the handler answers 400 naming what was wrong.
#[derive(Debug, Clone)]
pub struct EventGuard<S>(pub S);

impl<S> Service<LambdaEvent<LambdaRequest>> for EventGuard<S>
where
    S: Service<LambdaEvent<LambdaRequest>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut event: LambdaEvent<LambdaRequest>) -> Self::Future {
        guard_event(&mut event.payload);
        self.0.call(event)
    }
}

/// The parts of an event `lambda_http` builds the request URI from.
struct UriParts<'a> {
    headers: &'a mut HeaderMap,
    multi_value_headers: Option<&'a mut HeaderMap>,
    domain_name: Option<&'a mut Option<String>>,
    path: &'a mut Option<String>,
    raw_query: Option<&'a mut Option<String>>,
    body: &'a mut Option<String>,
    is_base64: &'a mut bool,
}

fn guard_event(event: &mut LambdaRequest) {
    let parts = match event {
        LambdaRequest::ApiGatewayV2(request) => UriParts {
            headers: &mut request.headers,
            multi_value_headers: None,
            domain_name: Some(&mut request.request_context.domain_name),
            path: &mut request.raw_path,
            raw_query: Some(&mut request.raw_query_string),
            body: &mut request.body,
            is_base64: &mut request.is_base64_encoded,
        },
        LambdaRequest::ApiGatewayV1(request) => UriParts {
            headers: &mut request.headers,
            multi_value_headers: Some(&mut request.multi_value_headers),
            domain_name: Some(&mut request.request_context.domain_name),
            path: &mut request.path,
            raw_query: None,
            body: &mut request.body,
            is_base64: &mut request.is_base64_encoded,
        },
        LambdaRequest::Alb(request) => UriParts {
            headers: &mut request.headers,
            multi_value_headers: Some(&mut request.multi_value_headers),
            domain_name: None,
            path: &mut request.path,
            raw_query: None,
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
                let scheme = proto.unwrap_or("https");
                match url::Url::parse(&format!("{scheme}://{host}{path}")) {
                    Ok(url)
                        if url
                            .host_str()
                            .is_some_and(|parsed| valid_host(host, parsed)) =>
                    {
                        url.to_string()
                    }
                    _ if url::Url::parse(&format!("https://localhost{path}")).is_err() => {
                        return Some(RejectedEvent::Path);
                    }
                    _ => return Some(RejectedEvent::Host),
                }
            }
            None => match url::Url::parse(&format!("http://localhost{path}")) {
                Ok(url) => url.path().to_owned(),
                Err(_) => return Some(RejectedEvent::Path),
            },
        };
        let query = self
            .raw_query
            .as_deref()
            .and_then(Option::as_deref)
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
