//! The whole Meters API in one process: the five shared handlers mounted on their real routes over real
//! HTTP, on the embedded store (or DynamoDB when `DYNAMODB_ENDPOINT` is set).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use axum::extract::State;
use axum::http::Method;
use http_body_util::{BodyExt, Limited};
use lambda_http::RequestExt;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use meters::auth::Authenticator;
use meters::config::{AuthConfig, ConfigError, DynamoDbConfig};
use meters::error::ApiError;
use meters::request::MAX_BODY_BYTES;
use meters::store::{DynamoDbStore, EmbeddedStore, StoreError};
use meters::{App, Endpoint};
use tokio::net::TcpListener;

pub const COLLECTION_PATH: &str = "/api/v1/meters";

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A redb file in this folder: survives restarts.
    Embedded(PathBuf),
    /// Gone when the process ends.
    Memory,
    /// DynamoDB (Local) at `DYNAMODB_ENDPOINT`, table `TABLE_NAME` (created if missing).
    DynamoDb(DynamoDbConfig),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the store could not be opened: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Which router entry a method and path reach: an endpoint, or a 404/405 in the envelope.
pub fn route(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    let not_allowed = |allowed| ApiError::MethodNotAllowed {
        method: method.to_string(),
        allowed,
    };
    if path == COLLECTION_PATH {
        return match *method {
            Method::GET => Ok(Endpoint::ListMeters),
            Method::POST => Ok(Endpoint::CreateMeter),
            _ => Err(not_allowed("GET, POST")),
        };
    }
    match path
        .strip_prefix(COLLECTION_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(id) if !id.is_empty() && !id.contains('/') => match *method {
            Method::GET => Ok(Endpoint::GetMeter),
            Method::PUT => Ok(Endpoint::UpdateMeter),
            Method::DELETE => Ok(Endpoint::DeleteMeter),
            _ => Err(not_allowed("GET, PUT, DELETE")),
        },
        _ => Err(ApiError::NotFound(format!(
            "no route for {path}; the API lives under {COLLECTION_PATH}"
        ))),
    }
}

/// The router: every request goes through `dispatch`, which does the routing itself so that 404 and 405
/// come back in the envelope like every other answer.
pub fn router(app: App) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(app)
}

async fn dispatch(
    State(app): State<App>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = match into_lambda_request(request, &request_id).await {
        Ok((endpoint, request)) => endpoint.handle(&app, request).await,
        Err(error) => meters::handlers::finish(error.into_response(&request_id), &request_id),
    };
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = format!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        request_id = %request_id,
        "request"
    );
    let (parts, body) = response.into_parts();
    axum::response::Response::from_parts(parts, axum::body::Body::from(body.to_vec()))
}

/// The request as API Gateway would hand it to the function: body bytes, query parameters, request id.
async fn into_lambda_request(
    request: axum::extract::Request,
    request_id: &str,
) -> Result<(Endpoint, lambda_http::Request), ApiError> {
    let endpoint = route(request.method(), request.uri().path())?;
    let (mut parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::PayloadTooLarge {
                limit_bytes: MAX_BODY_BYTES,
            });
        }
        Err(error) => return Err(ApiError::Internal(error)),
    };
    parts.headers.insert(
        "x-request-id",
        request_id
            .parse()
            .map_err(|e: axum::http::header::InvalidHeaderValue| ApiError::Internal(e.into()))?,
    );
    let query = QueryMap::from_str(parts.uri.query().unwrap_or_default()).unwrap_or_default();
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        lambda_http::Body::Binary(bytes.to_vec())
    };
    let request = lambda_http::Request::from_parts(parts, body).with_query_string_parameters(query);
    Ok((endpoint, request))
}

/// The development secret kept in the data folder, created on first use, so that tokens printed by
/// `meters-local token` keep working across restarts. Only for `meters-local`: functions refuse to start
/// without `JWT_SECRET`.
pub fn development_secret(data_dir: &Path) -> Result<String, std::io::Error> {
    let path = data_dir.join("dev-jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= meters::config::MIN_SECRET_BYTES => {
            Ok(secret.trim().to_owned())
        }
        _ => {
            std::fs::create_dir_all(data_dir)?;
            let secret = format!(
                "dev-only-{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            std::fs::write(&path, &secret)?;
            Ok(secret)
        }
    }
}

/// The token configuration: the functions' variables (`AUTH_MODE`, `JWT_*`) when any key source is set,
/// otherwise HS256 with the development secret. The flag says which.
pub fn auth_config(data_dir: &Path) -> Result<(AuthConfig, bool), StartError> {
    let key_sources = ["JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_JWKS_URL", "AUTH_MODE"];
    if key_sources
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
    {
        return Ok((AuthConfig::from_env()?, false));
    }
    let secret = development_secret(data_dir)?;
    let config = AuthConfig::from_lookup(|name| match name {
        "JWT_SECRET" => Some(secret.clone()),
        other => std::env::var(other).ok().filter(|value| !value.is_empty()),
    })?;
    Ok((config, true))
}

/// Opens the store and binds the listener; `serve` then answers until the future is dropped.
pub async fn start(
    storage: &Storage,
    auth: &AuthConfig,
    address: SocketAddr,
) -> Result<(TcpListener, App), StartError> {
    let authenticator = Authenticator::new(auth)?;
    let app = match storage {
        Storage::Embedded(dir) => App::new(EmbeddedStore::open(dir)?, authenticator),
        Storage::Memory => App::new(EmbeddedStore::in_memory()?, authenticator),
        Storage::DynamoDb(config) => {
            let store = DynamoDbStore::new(
                meters::lambda::dynamodb_client(config).await,
                config.table_name.clone(),
            );
            store.create_table_if_missing().await?;
            App::new(store, authenticator)
        }
    };
    Ok((TcpListener::bind(address).await?, app))
}

pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}
