//! The whole Meters API in one process: the five shared handlers mounted on their real routes over real
//! HTTP, on the embedded store (or DynamoDB when `DYNAMODB_ENDPOINT` is set); and, from this machine only,
//! the readings the stack takes from its readings queue (`readings`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::Method;
use http_body_util::{BodyExt, Limited};
use lambda_http::RequestExt;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use meters::auth::{AuthConfig, Authenticator};
use meters::config::{ConfigError, Env};
use meters::http::request::MAX_BODY_BYTES;
use meters::http::{ApiError, refuse};
use meters::store::dynamodb::DynamoDbConfig;
use meters::store::{DynamoDbStore, EmbeddedStore, StoreError};
use meters::{App, Endpoint};
use tokio::net::TcpListener;

mod cors;
mod head;
mod readings;

pub use cors::{BadOrigin, Cors, CorsPolicy};

pub use head::{MAX_HEADER_BYTES, MAX_URI_BYTES};
use head::{check_head, screen_first_head};
pub use readings::READINGS_PATH;

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
/// Routed by the API's one route table (`Endpoint::ALL`): a path is a route's when it is the route with `{id}`
/// standing for one path segment.
pub fn route(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    let at_path: Vec<Endpoint> = Endpoint::ALL
        .into_iter()
        .filter(|endpoint| matches_route(endpoint.route(), path))
        .collect();
    if at_path.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no route for {path}; the API lives under {COLLECTION_PATH}"
        )));
    }
    // HEAD is answered as GET; the HTTP layer sends the headers without the body.
    let asked = if *method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    if let Some(&endpoint) = at_path.iter().find(|endpoint| endpoint.method() == asked) {
        return Ok(endpoint);
    }
    let allowed: Vec<&str> = at_path
        .iter()
        .flat_map(|endpoint| match endpoint.method() {
            "GET" => vec!["GET", "HEAD"],
            other => vec![other],
        })
        .collect();
    Err(ApiError::MethodNotAllowed {
        method: method.to_string(),
        allowed: allowed.join(", "),
    })
}

fn matches_route(route: &str, path: &str) -> bool {
    let (mut route, mut path) = (route.split('/'), path.split('/'));
    loop {
        match (route.next(), path.next()) {
            (None, None) => return true,
            (Some("{id}"), Some(segment)) if !segment.is_empty() => {}
            (Some(expected), Some(segment)) if expected == segment => {}
            _ => return false,
        }
    }
}

/// The router: every request goes through `dispatch`, which does the routing itself so that 404 and 405
/// come back in the envelope like every other answer.
pub fn router(app: App, limits: Limits, cors: Cors) -> axum::Router {
    axum::Router::new()
        .fallback(dispatch)
        .with_state((app, limits, Arc::new(cors)))
}

async fn dispatch(
    State((app, limits, cors)): State<(App, Limits, Arc<Cors>)>,
    request: axum::extract::Request,
) -> axum::response::Response {
    // Before the preflight: the readings route answers no browser's, so no page can post readings.
    if request.uri().path() == READINGS_PATH {
        return readings::take_readings(&app, request).await;
    }
    if let Some(preflight) = cors.preflight(request.method(), request.headers()) {
        return preflight;
    }
    let origin_headers = cors.is_enabled().then(|| request.headers().clone());
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    // Every request is logged once, by the one writer: a handler's through `Endpoint::handle`, one refused
    // before any handler through `refuse`.
    let response = match into_lambda_request(request, &request_id, limits.body_read).await {
        Ok((endpoint, request)) => endpoint.handle(&app, request).await,
        Err(error) => refuse(error, &request_id, &path, method.as_str(), started).await,
    };
    let (mut parts, body) = response.into_parts();
    if let Some(request_headers) = origin_headers {
        cors.decorate(&request_headers, &mut parts.headers);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(body.to_vec()))
}

/// The request as API Gateway would hand it to the function: body bytes, query parameters, request id.
async fn into_lambda_request(
    request: axum::extract::Request,
    request_id: &str,
    body_read_timeout: Duration,
) -> Result<(Endpoint, lambda_http::Request), ApiError> {
    check_head(&request)?;
    let endpoint = route(request.method(), request.uri().path())?;
    let (mut parts, body) = request.into_parts();
    let collected = tokio::time::timeout(
        body_read_timeout,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| ApiError::RequestTimeout {
        what: "the body",
        seconds: body_read_timeout.as_secs_f64(),
    })?;
    let bytes = match collected {
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

/// How long the server waits on a client (for a request's headers, for its body, and for open connections
/// to finish once asked to stop), and how many connections it serves at once. A connection holds at most
/// its head (under 80 KiB, the screener's limits), the HTTP layer's read buffer (`READ_BUFFER_BYTES`) and a
/// body (64 KiB), so the connections bound the memory clients can make the server hold: about 75 MB at 256.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub body_read: Duration,
    pub drain: Duration,
    /// Connections served at once; more wait in the listen backlog until one ends.
    pub connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
            drain: Duration::from_secs(10),
            connections: 256,
        }
    }
}

/// The HTTP layer's read buffer per connection: room for any head the screener passes (a request line of
/// 8 KiB and 64 KiB of headers) and a body's first bytes.
const READ_BUFFER_BYTES: usize = 128 * 1024;

/// The development secret kept in the data folder, created on first use, so that tokens printed by
/// `meters-local token` keep working across restarts. Only for `meters-local`: functions refuse to start
/// without `JWT_SECRET`.
pub fn development_secret(data_dir: &Path) -> Result<String, std::io::Error> {
    let path = data_dir.join("dev-jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= meters::auth::MIN_SECRET_BYTES => {
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
    let env = Env::process();
    let key_sources = ["JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_JWKS_URL", "AUTH_MODE"];
    if key_sources.iter().any(|name| env.get(name).is_some()) {
        return Ok((AuthConfig::read(&env)?, false));
    }
    let env = env.with("JWT_SECRET", development_secret(data_dir)?);
    Ok((AuthConfig::read(&env)?, true))
}

/// Opens the store and binds the listener; `serve` then answers until the future is dropped.
pub async fn start(
    storage: &Storage,
    auth: &AuthConfig,
    address: SocketAddr,
) -> Result<(TcpListener, App), StartError> {
    let authenticator = Authenticator::new(auth)?;
    let embedded = |store: EmbeddedStore| {
        release_idle_listings(store.clone());
        store
    };
    let app = match storage {
        Storage::Embedded(dir) => App::new(embedded(EmbeddedStore::open(dir)?), authenticator),
        Storage::Memory => App::new(embedded(EmbeddedStore::in_memory()?), authenticator),
        Storage::DynamoDb(config) => {
            let store = DynamoDbStore::new(
                meters::store::dynamodb::dynamodb_client(config).await,
                config.table_name.clone(),
            );
            store.create_table_if_missing().await?;
            App::new(store, authenticator)
        }
    };
    Ok((TcpListener::bind(address).await?, app))
}

/// How long an account's listing is kept after its last list; a server nobody lists gives the memory back.
pub const LISTING_IDLE: Duration = Duration::from_secs(60);

/// Every 10 s, lets go of the listings not read for `LISTING_IDLE`.
fn release_idle_listings(store: EmbeddedStore) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(10));
        loop {
            ticks.tick().await;
            let released = store.release_idle_listings(LISTING_IDLE);
            if released > 0 {
                tracing::debug!(released, "idle listings released");
            }
        }
    });
}

pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, Limits::default(), Cors::default()).await
}

/// Serves until `shutdown` completes, then stops accepting and gives open connections `limits.drain` to
/// finish: whatever clients do, it returns within that time. Browsers on the `cors` origins may call it.
pub async fn serve_with(
    listener: TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: Limits,
    cors: Cors,
) -> std::io::Result<()> {
    let router = router(app, limits, cors);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.connections));
    loop {
        // A free slot first: past the limit, connections wait in the backlog, unread.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: keep serving the connections there are.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Who connected, for the routes that answer this machine only (`readings`).
        let router = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(stream) = screen_first_head(stream, limits.header_read).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read)
                // One request per connection: every request's head is screened first, so that whatever is
                // wrong with it is answered in the envelope, never by the HTTP layer's bare 400 or 431.
                .keep_alive(false)
                .max_buf_size(READ_BUFFER_BYTES)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // A client that hangs up or sends garbage ends only its own connection.
            let _ = watcher.watch(connection).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_seconds = limits.drain.as_secs_f64(),
            "connections still open after the drain time; closing them"
        );
    }
    Ok(())
}
