//! Checking a request's credentials in the configured mode: a Bearer JWT verified here (HS256 secret,
//! one PEM key, or a JWKS), or in gateway mode the claims API Gateway's JWT authorizer verified.

use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt, http::header};
use serde_json::{Map, Value};

use super::claims::{ClaimRules, LEEWAY_SECONDS, accounts_in, accounts_in_text};
use super::error::AuthError;
use super::grant::{Actor, Grant};
use super::jwks::{JwksKeys, REFRESH_INTERVAL};
use super::settings::{AuthConfig, KeySource};
use crate::config::ConfigError;
use crate::domain::meter::AccountId;

/// Checks requests in the configured mode; built once per process.
pub struct Authenticator {
    verifier: Verifier,
    validation: Validation,
    rules: ClaimRules,
    accounts_claim: String,
}

/// How a request's credentials are checked: API Gateway already did (gateway mode), or the token is
/// verified here with its keys.
enum Verifier {
    Gateway,
    Token(TokenKeys),
}

/// Where a verified token's key comes from.
enum TokenKeys {
    /// The one key configured (an HS256 secret or a PEM public key).
    Configured(Arc<DecodingKey>),
    /// The issuer's key set, by the token's `kid`.
    KeySet(Box<JwksKeys>),
}

impl TokenKeys {
    async fn key_for(&self, header: &Header) -> Result<Arc<DecodingKey>, AuthError> {
        match self {
            TokenKeys::Configured(key) => Ok(Arc::clone(key)),
            TokenKeys::KeySet(keys) => {
                keys.key(header.kid.as_deref().ok_or(AuthError::NoKeyId)?)
                    .await
            }
        }
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.verifier {
            Verifier::Token(TokenKeys::Configured(_)) => "key",
            Verifier::Token(TokenKeys::KeySet(_)) => "jwks",
            Verifier::Gateway => "gateway",
        };
        f.debug_struct("Authenticator")
            .field("mode", &mode)
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Result<Self, ConfigError> {
        Self::with_refresh_interval(config, REFRESH_INTERVAL)
    }

    /// The same, with another JWKS refresh interval (tests of rotation cannot wait 30 s).
    pub fn with_refresh_interval(
        config: &AuthConfig,
        refresh_interval: Duration,
    ) -> Result<Self, ConfigError> {
        let verifier =
            match &config.key {
                KeySource::Secret(secret) => Verifier::Token(TokenKeys::Configured(Arc::new(
                    DecodingKey::from_secret(secret.expose_secret()),
                ))),
                KeySource::PublicKeyPem(pem) => {
                    let parsed = if config.algorithm == Algorithm::ES256 {
                        DecodingKey::from_ec_pem(pem)
                    } else {
                        DecodingKey::from_rsa_pem(pem)
                    };
                    let key = parsed.map_err(|_| ConfigError::Invalid {
                        variable: "JWT_PUBLIC_KEY",
                        reason: format!("it is not a PEM public key for {:?}", config.algorithm),
                    })?;
                    Verifier::Token(TokenKeys::Configured(Arc::new(key)))
                }
                KeySource::Jwks(url) => Verifier::Token(TokenKeys::KeySet(Box::new(
                    JwksKeys::new(url.clone(), config.algorithm, refresh_interval),
                ))),
                KeySource::Gateway => Verifier::Gateway,
            };
        // jsonwebtoken checks the signature, the algorithm and `exp`; `iss`, `aud`, `nbf` and `iat` are
        // checked by `ClaimRules`, which refuses them missing or of the wrong type too.
        let mut validation = Validation::new(config.algorithm);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.iss = None;
        Ok(Self {
            verifier,
            validation,
            rules: ClaimRules {
                issuer: config.issuer.clone(),
                audiences: config.audiences.clone(),
            },
            accounts_claim: config.accounts_claim.clone(),
        })
    }

    /// The accounts the request may act for, or why it may act for none.
    pub async fn authenticate(&self, request: &Request) -> Result<Grant, AuthError> {
        let keys = match &self.verifier {
            Verifier::Gateway => return self.gateway_grant(request),
            Verifier::Token(keys) => keys,
        };
        let token = bearer_token(request)?;
        let header = jsonwebtoken::decode_header(token).map_err(|error| match error.kind() {
            ErrorKind::InvalidAlgorithmName => AuthError::WrongAlgorithm,
            _ => AuthError::Malformed,
        })?;
        if header.crit.is_some() {
            return Err(AuthError::CriticalExtension);
        }
        if header.alg != self.validation.algorithms[0] {
            return Err(AuthError::WrongAlgorithm);
        }
        // A key set is asked for the token's `kid` only once the header has passed.
        let key = keys.key_for(&header).await?;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthError::WrongAlgorithm
                }
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::MissingRequiredClaim(_) => AuthError::NoExpiry,
                _ => AuthError::Malformed,
            })?
            .claims;
        self.rules
            .check(&claims, jsonwebtoken::get_current_timestamp())?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let actor = Actor {
            sub: text("sub"),
            client_id: text("client_id"),
        };
        Ok(self.grant(accounts_in(claims.get(&self.accounts_claim)), actor))
    }

    /// Gateway mode: the authorizer's claims, or 401 when there are none (fail closed). Payload 2.0
    /// flattens arrays to strings such as `[a b]`, which `accounts_in_text` reads.
    fn gateway_grant(&self, request: &Request) -> Result<Grant, AuthError> {
        let claims = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|authorizer| authorizer.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        };
        let claims = claims
            .filter(|claims| !claims.is_empty())
            .ok_or(AuthError::NoGatewayClaims)?;
        let accounts = claims
            .get(&self.accounts_claim)
            .and_then(|text| accounts_in_text(text))
            .unwrap_or_default();
        let actor = Actor {
            sub: claims.get("sub").cloned(),
            client_id: claims.get("client_id").cloned(),
        };
        Ok(self.grant(accounts, actor))
    }

    /// The grant, with who the request is noted for its log line.
    fn grant(&self, accounts: Vec<AccountId>, actor: Actor) -> Grant {
        crate::telemetry::note_actor(actor.sub.as_deref(), actor.client_id.as_deref());
        if accounts.is_empty() {
            // Not an error for the caller (they get 403 for the account they ask for), but worth a line
            // for whoever configures the identity provider. The claim's value is not logged.
            tracing::debug!(claim = %self.accounts_claim, "the token grants no account");
        }
        Grant { accounts, actor }
    }

    /// Whether the mode needs a key set that is fetched on first use (for the start-up log).
    pub fn uses_jwks(&self) -> bool {
        matches!(self.verifier, Verifier::Token(TokenKeys::KeySet(_)))
    }
}

fn bearer_token(request: &Request) -> Result<&str, AuthError> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AuthError::NotBearer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AccountNotGranted, TokenIssuer};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "unit-test-secret-that-is-at-least-32-bytes";
    const ACCOUNT: &str = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22";
    const OTHER: &str = "0b7e9d4c-1a2b-4c3d-8e9f-001122334455";

    fn config() -> AuthConfig {
        AuthConfig {
            algorithm: Algorithm::HS256,
            key: KeySource::Secret(SECRET.as_bytes().to_vec().into()),
            issuer: None,
            audiences: Vec::new(),
            accounts_claim: "account_ids".into(),
        }
    }

    fn sign(claims: Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn in_an_hour() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3600
    }

    fn request(authorization: Option<&str>) -> Request {
        let mut request = lambda_http::http::Request::builder();
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.body(lambda_http::Body::Empty).unwrap()
    }

    fn authenticate_with(config: &AuthConfig, authorization: &str) -> Result<Grant, AuthError> {
        let authenticator = Authenticator::new(config).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(authenticator.authenticate(&request(Some(authorization))))
    }

    fn authenticate(authorization: &str) -> Result<Grant, AuthError> {
        authenticate_with(&config(), authorization)
    }

    fn account(raw: &str) -> AccountId {
        AccountId::parse(raw).unwrap()
    }

    #[test]
    fn a_valid_token_grants_exactly_its_accounts() {
        let token = sign(
            json!({"exp": in_an_hour(), "account_ids": [ACCOUNT.to_uppercase()]}),
            SECRET,
        );
        let grant = authenticate(&format!("Bearer {token}")).unwrap();
        assert!(grant.authorize(&account(ACCOUNT)).is_ok());
        assert!(matches!(
            grant.authorize(&account(OTHER)),
            Err(AccountNotGranted(_))
        ));
    }

    #[test]
    fn the_accounts_claim_may_be_a_single_string() {
        let token = sign(json!({"exp": in_an_hour(), "account_ids": ACCOUNT}), SECRET);
        assert!(
            authenticate(&format!("bearer {token}"))
                .unwrap()
                .authorize(&account(ACCOUNT))
                .is_ok()
        );
    }

    #[test]
    fn a_token_without_the_accounts_claim_grants_nothing() {
        let token = sign(json!({"exp": in_an_hour()}), SECRET);
        assert!(
            authenticate(&format!("Bearer {token}"))
                .unwrap()
                .authorize(&account(ACCOUNT))
                .is_err()
        );
    }

    #[test]
    fn a_malformed_accounts_claim_grants_nothing_rather_than_failing() {
        for claim in [json!("acme"), json!([1]), json!({"id": ACCOUNT})] {
            let token = sign(json!({"exp": in_an_hour(), "account_ids": claim}), SECRET);
            let grant = authenticate(&format!("Bearer {token}")).unwrap();
            assert!(matches!(
                grant.authorize(&account(ACCOUNT)),
                Err(AccountNotGranted(_))
            ));
        }
    }

    #[test]
    fn the_accounts_claim_name_is_configurable() {
        let config = AuthConfig {
            accounts_claim: "tenants".into(),
            ..config()
        };
        let token = sign(json!({"exp": in_an_hour(), "tenants": [ACCOUNT]}), SECRET);
        assert!(
            authenticate_with(&config, &format!("Bearer {token}"))
                .unwrap()
                .authorize(&account(ACCOUNT))
                .is_ok()
        );
    }

    #[test]
    fn tokens_are_rejected_for_each_reason_with_its_own_message() {
        let valid_claims = json!({"exp": in_an_hour(), "account_ids": [ACCOUNT]});
        let expired = sign(
            json!({"exp": jsonwebtoken::get_current_timestamp() - 120, "account_ids": [ACCOUNT]}),
            SECRET,
        );
        let wrong_key = sign(
            valid_claims.clone(),
            "another-secret-that-is-also-32-bytes-long",
        );
        let no_exp = sign(json!({"account_ids": [ACCOUNT]}), SECRET);
        let alg_none = format!(
            "{}.{}.",
            base64url(r#"{"alg":"none","typ":"JWT"}"#),
            base64url(&valid_claims.to_string())
        );
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &valid_claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let cases = [
            ("Basic dXNlcjpwYXNz".to_string(), AuthError::NotBearer),
            ("Bearer".to_string(), AuthError::NotBearer),
            ("Bearer not-a-jwt".to_string(), AuthError::Malformed),
            (format!("Bearer {expired}"), AuthError::Expired),
            (format!("Bearer {wrong_key}"), AuthError::BadSignature),
            (format!("Bearer {no_exp}"), AuthError::NoExpiry),
            // jsonwebtoken has no `none` algorithm at all, so such a header does not even parse.
            (format!("Bearer {alg_none}"), AuthError::Malformed),
            (format!("Bearer {hs384}"), AuthError::WrongAlgorithm),
        ];
        for (authorization, expected) in cases {
            let error = authenticate(&authorization).unwrap_err();
            assert_eq!(error, expected, "{authorization}");
            let credential = authorization.split_once(' ').map_or("", |(_, token)| token);
            assert!(
                credential.is_empty() || !error.to_string().contains(credential),
                "the message repeats the token"
            );
        }
    }

    #[test]
    fn a_missing_header_is_its_own_error() {
        let authenticator = Authenticator::new(&config()).unwrap();
        let missing = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(authenticator.authenticate(&request(None)));
        assert_eq!(missing.unwrap_err(), AuthError::Missing);
    }

    #[test]
    fn a_token_with_an_unknown_critical_extension_is_refused() {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["https://example.com/acme-extension".into()]);
        let token = jsonwebtoken::encode(
            &header,
            &json!({"exp": in_an_hour(), "account_ids": [ACCOUNT]}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            authenticate(&format!("Bearer {token}")).unwrap_err(),
            AuthError::CriticalExtension
        );
    }

    #[test]
    fn tokens_expired_by_less_than_the_leeway_are_still_accepted() {
        let token = sign(
            json!({"exp": jsonwebtoken::get_current_timestamp() - 30, "account_ids": [ACCOUNT]}),
            SECRET,
        );
        assert!(authenticate(&format!("Bearer {token}")).is_ok());
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let config = AuthConfig {
            issuer: Some("https://id.example".into()),
            audiences: vec!["meters".into()],
            ..config()
        };
        let good = sign(
            json!({"exp": in_an_hour(), "iss": "https://id.example", "aud": "meters"}),
            SECRET,
        );
        let bad_iss = sign(
            json!({"exp": in_an_hour(), "iss": "https://evil.example", "aud": "meters"}),
            SECRET,
        );
        let bad_aud = sign(
            json!({"exp": in_an_hour(), "iss": "https://id.example", "aud": "billing"}),
            SECRET,
        );
        assert!(authenticate_with(&config, &format!("Bearer {good}")).is_ok());
        assert_eq!(
            authenticate_with(&config, &format!("Bearer {bad_iss}")).unwrap_err(),
            AuthError::WrongIssuer
        );
        assert_eq!(
            authenticate_with(&config, &format!("Bearer {bad_aud}")).unwrap_err(),
            AuthError::WrongAudience
        );
    }

    #[test]
    fn an_audience_in_the_token_is_ignored_when_none_is_configured() {
        let token = sign(
            json!({"exp": in_an_hour(), "aud": "anything", "account_ids": [ACCOUNT]}),
            SECRET,
        );
        assert!(authenticate(&format!("Bearer {token}")).is_ok());
    }

    #[test]
    fn issued_development_tokens_are_accepted() {
        let config = AuthConfig {
            issuer: Some("meters-local".into()),
            ..config()
        };
        let token = TokenIssuer::new(&config)
            .unwrap()
            .issue(&[account(ACCOUNT)], Duration::from_secs(60))
            .unwrap();
        let grant = authenticate_with(&config, &format!("Bearer {token}")).unwrap();
        assert!(grant.authorize(&account(ACCOUNT)).is_ok());
    }

    fn base64url(text: &str) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
