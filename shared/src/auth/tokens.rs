//! Development tokens, signed with the HS256 secret: for the local server's `token` command, the event
//! fixtures and tests. Production tokens come from the platform's identity provider, never from here.

use secrecy::ExposeSecret;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use super::settings::{AuthConfig, KeySource};
use crate::config::ConfigError;
use crate::domain::meter::AccountId;

/// Signs HS256 development tokens (for the local server's `token` command, fixtures and tests).
/// Production tokens come from the platform's identity provider, never from here.
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: Option<String>,
    audience: Option<String>,
    accounts_claim: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(config: &AuthConfig) -> Result<Self, ConfigError> {
        match &config.key {
            KeySource::Secret(secret) => Ok(Self {
                key: EncodingKey::from_secret(secret.expose_secret()),
                issuer: config.issuer.clone(),
                audience: config.audiences.first().cloned(),
                accounts_claim: config.accounts_claim.clone(),
            }),
            _ => Err(ConfigError::Invalid {
                variable: "JWT_ALGORITHM",
                reason: "only HS256 development tokens can be issued here; RS256, PS256 and ES256 tokens come from your identity provider"
                    .into(),
            }),
        }
    }

    /// A token for `accounts`, expiring `ttl` from now.
    pub fn issue(
        &self,
        accounts: &[AccountId],
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        self.issue_between(accounts, now, now + ttl.as_secs())
    }

    /// A token for `accounts` issued at `issued_at` and expiring at `expires_at` (Unix seconds): the same
    /// inputs give the same token, which the committed event fixtures rely on.
    pub fn issue_between(
        &self,
        accounts: &[AccountId],
        issued_at: u64,
        expires_at: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut claims = Map::new();
        claims.insert("sub".into(), "meters-local-developer".into());
        claims.insert("iat".into(), issued_at.into());
        claims.insert("exp".into(), expires_at.into());
        claims.insert(
            self.accounts_claim.clone(),
            accounts
                .iter()
                .map(|a| Value::from(a.to_string()))
                .collect(),
        );
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), issuer.clone().into());
        }
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), audience.clone().into());
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
    }
}
