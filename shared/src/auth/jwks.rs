//! A JSON Web Key Set fetched from the identity provider: on first need (never at cold start), cached, and
//! refreshed when a token names a key the cache does not hold, so a rotated key works at once, and a key
//! published after a refresh works within `REFRESH_INTERVAL` (5 s) of it; a removed one stops working after
//! the next refresh. Refreshes are rate-limited per process, one fetch runs at a time, and a request whose
//! key is cached never waits for one.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::error::AuthError;

/// At most one refresh per this long, per process, however many unknown `kid`s arrive: short enough that
/// a key published just after a refresh (which a token with a random `kid` may have caused) works within
/// seconds, long enough that such tokens cost the identity provider one fetch per 5 s per process.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// A fetch that takes longer is abandoned: it must fit the request deadline.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Key sets are a few kilobytes; anything this large is not one.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub struct JwksKeys {
    url: String,
    algorithm: Algorithm,
    refresh_interval: Duration,
    /// Built on the first fetch, so that loading the trust store is not part of every cold start.
    client: OnceLock<HttpsClient>,
    /// The keys of the last good fetch: read by every request, written only to install a new set.
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    /// Held by the one fetch that may run at a time, and by requests waiting to learn its outcome.
    refreshes: Mutex<Refreshes>,
}

#[derive(Default)]
struct Refreshes {
    last_attempt: Option<Instant>,
    last_attempt_failed: bool,
}

impl std::fmt::Debug for JwksKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksKeys")
            .field("url", &self.url)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwksKeys {
    pub fn new(url: String, algorithm: Algorithm, refresh_interval: Duration) -> Self {
        Self {
            url,
            algorithm,
            refresh_interval,
            client: OnceLock::new(),
            keys: RwLock::default(),
            refreshes: Mutex::default(),
        }
    }

    async fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys.read().await.get(kid).map(Arc::clone)
    }

    /// The key `kid` names: from the cache, or after one (rate-limited) refresh.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(key) = self.cached(kid).await {
            return Ok(key);
        }
        // The fetch runs outside the keys' lock, so requests with cached keys never wait for it.
        let mut refreshes = self.refreshes.lock().await;
        // Another request may have refreshed while this one waited for its turn.
        if let Some(key) = self.cached(kid).await {
            return Ok(key);
        }
        let next_allowed = refreshes.last_attempt.map(|at| at + self.refresh_interval);
        if next_allowed.is_none_or(|at| Instant::now() >= at) {
            refreshes.last_attempt = Some(Instant::now());
            match tokio::time::timeout(FETCH_TIMEOUT, self.fetch()).await {
                Ok(Ok(keys)) => {
                    tracing::info!(url = %self.url, keys = keys.len(), "JWKS fetched");
                    *self.keys.write().await = keys;
                    refreshes.last_attempt_failed = false;
                }
                Ok(Err(error)) => {
                    tracing::error!(url = %self.url, %error, "JWKS fetch failed");
                    refreshes.last_attempt_failed = true;
                }
                Err(_) => {
                    tracing::error!(url = %self.url, timeout_ms = FETCH_TIMEOUT.as_millis() as u64, "JWKS fetch timed out");
                    refreshes.last_attempt_failed = true;
                }
            }
            if let Some(key) = self.cached(kid).await {
                return Ok(key);
            }
        }
        if refreshes.last_attempt_failed {
            let retry_after = refreshes
                .last_attempt
                .map(|at| (at + self.refresh_interval).saturating_duration_since(Instant::now()))
                .unwrap_or_default();
            Err(AuthError::KeysUnavailable {
                retry_after_seconds: retry_after.as_secs().max(1),
            })
        } else {
            Err(AuthError::UnknownKey)
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let client = self.client.get_or_init(https_client);
        let request = lambda_http::http::Request::get(&self.url)
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("the JWKS endpoint answered {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
        Ok(set
            .keys
            .iter()
            .filter(|jwk| {
                // Encryption keys are not for verifying signatures; a key bound to another algorithm is not
                // for this one.
                !matches!(&jwk.common.public_key_use, Some(used) if *used != PublicKeyUse::Signature)
                    && jwk
                        .common
                        .key_algorithm
                        .is_none_or(|named| Algorithm::try_from(named).ok() == Some(self.algorithm))
            })
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, Arc::new(key)))
            })
            .collect())
    }
}

/// The HTTPS stack the DynamoDB client already ships (hyper, rustls on aws-lc-rs), trusting the system's
/// roots; plain http is only ever used for loopback URLs, which the configuration enforces.
fn https_client() -> HttpsClient {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .expect("aws-lc-rs supports the default TLS versions");
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}
