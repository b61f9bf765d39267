//! An identity provider's key set served over real HTTP on loopback, as Cognito, Auth0, Okta or Entra ID
//! publish theirs: keys are generated per test, published and withdrawn (rotation), the endpoint can be
//! taken down, and every fetch is counted.

use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A private key that signs tokens, and the public JWK that verifies them.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new P-256 key (ES256).
    pub fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key");
        let pkcs8 = pair.to_pkcs8v1().expect("PKCS#8");
        // The uncompressed point: 0x04, then x and y.
        let point = pair.public_key().as_ref();
        Self {
            kid: kid.to_owned(),
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "crv": "P-256", "x": base64url(&point[1..33]), "y": base64url(&point[33..65]),
                        "kid": kid, "use": "sig", "alg": "ES256"}),
        }
    }

    /// A new 2048-bit RSA key, for RS256 or PS256.
    pub fn rsa(kid: &str, algorithm: Algorithm) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).expect("an RSA key");
        let der = pair.as_der().expect("PKCS#8");
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        );
        let public = pair.public_key();
        Self {
            kid: kid.to_owned(),
            algorithm,
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("an RSA PEM"),
            jwk: json!({"kty": "RSA", "n": base64url(public.modulus().big_endian_without_leading_zero()),
                        "e": base64url(public.exponent().big_endian_without_leading_zero()),
                        "kid": kid, "use": "sig", "alg": format!("{algorithm:?}")}),
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// A token with these claims, its header naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("a token is signed")
    }
}

#[derive(Debug, Default)]
struct Published {
    keys: Vec<Value>,
    down: bool,
    /// While set, fetches wait before they are answered.
    held: bool,
    fetches: usize,
}

/// The key set endpoint, `GET {url}`.
#[derive(Debug, Clone)]
pub struct JwksServer {
    pub url: String,
    published: Arc<Mutex<Published>>,
}

impl JwksServer {
    pub async fn start() -> Self {
        let published = Arc::new(Mutex::new(Published::default()));
        let router = axum::Router::new()
            .route("/.well-known/jwks.json", get(serve))
            .with_state(Arc::clone(&published));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("an address")
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, published }
    }

    /// Publishes exactly these keys (and any extra JWKs), replacing what was there.
    pub fn publish(&self, keys: &[&SigningKey], extra: &[Value]) {
        let mut published = self.published.lock().expect("not poisoned");
        published.keys = keys
            .iter()
            .map(|key| key.jwk())
            .chain(extra.iter().cloned())
            .collect();
    }

    /// While down, the endpoint answers 503.
    pub fn set_down(&self, down: bool) {
        self.published.lock().expect("not poisoned").down = down;
    }

    /// While held, a fetch is not answered (it waits): an identity provider that is slow to answer.
    pub fn set_held(&self, held: bool) {
        self.published.lock().expect("not poisoned").held = held;
    }

    /// How many times the key set was asked for.
    pub fn fetches(&self) -> usize {
        self.published.lock().expect("not poisoned").fetches
    }
}

async fn serve(State(published): State<Arc<Mutex<Published>>>) -> (StatusCode, String) {
    published.lock().expect("not poisoned").fetches += 1;
    while published.lock().expect("not poisoned").held {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let published = published.lock().expect("not poisoned");
    if published.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "down".into());
    }
    (StatusCode::OK, json!({"keys": published.keys}).to_string())
}
