//! How a function binary starts: configuration and clients built once at cold start, then every event
//! through the endpoint's handler.

use std::task::{Context, Poll};

use base64::Engine;
use lambda_http::http::{HeaderMap, HeaderValue};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent, Request, Service, service_fn};

use crate::auth::Authenticator;
use crate::config::{AuthConfig, ConfigError, DynamoDbConfig};
use crate::handlers::{App, Endpoint};
use crate::request::UNDECODABLE_BODY_HEADER;
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
    lambda_runtime::run(BodyGuard(Adapter::from(handler))).await
}

/// The production dependencies, from the environment of the design's configuration table.
pub async fn app_from_env() -> Result<App, ConfigError> {
    let auth_config = AuthConfig::from_env()?;
    let auth = Authenticator::new(&auth_config)?;
    // Read once, said once: which trust boundary this process enforces.
    tracing::info!(auth_mode = auth_config.key.describe(), "authentication");
    let dynamodb = DynamoDbConfig::from_env()?;
    let store = DynamoDbStore::new(dynamodb_client(&dynamodb).await, dynamodb.table_name);
    Ok(App::new(store, auth))
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
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// Turns an event's JSON into the request a handler sees, exactly as the function does (tests use this
/// with the fixtures in `events/`).
pub fn request_from_event(json: &str) -> Result<Request, serde_json::Error> {
    let mut event: LambdaRequest = serde_json::from_str(json)?;
    guard_body(&mut event);
    Ok(event.into())
}

/// lambda_http panics on a base64 body that does not decode; this layer marks such a request instead,
/// so the handler answers 400 rather than the invocation failing.
#[derive(Debug, Clone)]
pub struct BodyGuard<S>(pub S);

impl<S> Service<LambdaEvent<LambdaRequest>> for BodyGuard<S>
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
        guard_body(&mut event.payload);
        self.0.call(event)
    }
}

fn guard_body(event: &mut LambdaRequest) {
    match event {
        LambdaRequest::ApiGatewayV2(request) => mark(
            &mut request.headers,
            None,
            &mut request.body,
            &mut request.is_base64_encoded,
        ),
        LambdaRequest::ApiGatewayV1(request) => mark(
            &mut request.headers,
            Some(&mut request.multi_value_headers),
            &mut request.body,
            &mut request.is_base64_encoded,
        ),
        LambdaRequest::Alb(request) => mark(
            &mut request.headers,
            Some(&mut request.multi_value_headers),
            &mut request.body,
            &mut request.is_base64_encoded,
        ),
        _ => {}
    }
}

fn mark(
    headers: &mut HeaderMap,
    mut multi_value: Option<&mut HeaderMap>,
    body: &mut Option<String>,
    is_base64: &mut bool,
) {
    // Only this layer may set the marker: a caller's copy is dropped.
    headers.remove(UNDECODABLE_BODY_HEADER);
    if let Some(multi) = multi_value.as_deref_mut() {
        multi.remove(UNDECODABLE_BODY_HEADER);
    }
    let undecodable = *is_base64
        && body.as_deref().is_some_and(|text| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_err()
        });
    if undecodable {
        *is_base64 = false;
        *body = None;
        headers.insert(UNDECODABLE_BODY_HEADER, HeaderValue::from_static("1"));
        if let Some(multi) = multi_value.filter(|multi| !multi.is_empty()) {
            multi.insert(UNDECODABLE_BODY_HEADER, HeaderValue::from_static("1"));
        }
    }
}
