//! Configuration from the environment, read once at start-up. A missing or invalid value is an error that
//! names the variable; nothing falls back to a default secret.

use jsonwebtoken::Algorithm;

/// Why start-up cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable that must be set is not.
    #[error("{variable} is not set: {hint}")]
    Missing {
        variable: &'static str,
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{variable} is invalid: {reason}")]
    Invalid {
        variable: &'static str,
        reason: String,
    },
}

/// How tokens are checked. The key material is never printed.
#[derive(Clone)]
pub struct AuthConfig {
    pub algorithm: Algorithm,
    pub key: KeyMaterial,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub accounts_claim: String,
}

/// Shown as `<redacted>` in debug output.
#[derive(Clone)]
pub enum KeyMaterial {
    /// HS256 shared secret.
    Secret(Vec<u8>),
    /// PEM public key for RS256 or ES256.
    PublicKeyPem(Vec<u8>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("algorithm", &self.algorithm)
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("accounts_claim", &self.accounts_claim)
            .finish()
    }
}

/// A shared secret shorter than this is refused: HS256 is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 32;

impl AuthConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    /// The same, from any source of variables (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let algorithm = match lookup("JWT_ALGORITHM").as_deref() {
            None | Some("HS256") => Algorithm::HS256,
            Some("RS256") => Algorithm::RS256,
            Some("ES256") => Algorithm::ES256,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    variable: "JWT_ALGORITHM",
                    reason: format!("`{other}` is not one of HS256, RS256, ES256"),
                });
            }
        };
        let key = if algorithm == Algorithm::HS256 {
            let secret = lookup("JWT_SECRET").ok_or(ConfigError::Missing {
                variable: "JWT_SECRET",
                hint: "HS256 needs a shared secret",
            })?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(ConfigError::Invalid {
                    variable: "JWT_SECRET",
                    reason: format!("it must be at least {MIN_SECRET_BYTES} bytes long"),
                });
            }
            KeyMaterial::Secret(secret.into_bytes())
        } else {
            let pem = lookup("JWT_PUBLIC_KEY").ok_or(ConfigError::Missing {
                variable: "JWT_PUBLIC_KEY",
                hint: "RS256 and ES256 need the issuer's PEM public key",
            })?;
            KeyMaterial::PublicKeyPem(pem.into_bytes())
        };
        Ok(Self {
            algorithm,
            key,
            issuer: lookup("JWT_ISSUER"),
            audience: lookup("JWT_AUDIENCE"),
            accounts_claim: lookup("JWT_ACCOUNTS_CLAIM").unwrap_or_else(|| "account_ids".into()),
        })
    }
}

/// Where the DynamoDB store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbConfig {
    pub table_name: String,
    /// Set for DynamoDB Local; unset means AWS itself.
    pub endpoint: Option<String>,
}

impl DynamoDbConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let table_name = std::env::var("TABLE_NAME")
            .ok()
            .filter(|name| !name.is_empty())
            .ok_or(ConfigError::Missing {
                variable: "TABLE_NAME",
                hint: "the DynamoDB table that holds the meters",
            })?;
        Ok(Self {
            table_name,
            endpoint: std::env::var("DYNAMODB_ENDPOINT")
                .ok()
                .filter(|url| !url.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthConfig::from_lookup(|name| vars.get(name).cloned())
    }

    const SECRET: &str = "a-development-secret-of-at-least-32-bytes";

    #[test]
    fn hs256_is_the_default_and_needs_a_secret() {
        assert_eq!(
            config(&[]).unwrap_err().to_string(),
            "JWT_SECRET is not set: HS256 needs a shared secret"
        );
        let auth = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(auth.algorithm, Algorithm::HS256);
        assert_eq!(auth.accounts_claim, "account_ids");
    }

    #[test]
    fn a_short_secret_is_refused() {
        let error = config(&[("JWT_SECRET", "short")]).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Invalid {
                variable: "JWT_SECRET",
                ..
            }
        ));
    }

    #[test]
    fn rs256_and_es256_need_a_public_key() {
        let error = config(&[("JWT_ALGORITHM", "RS256"), ("JWT_SECRET", SECRET)]).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Missing {
                variable: "JWT_PUBLIC_KEY",
                ..
            }
        ));
        assert!(config(&[("JWT_ALGORITHM", "ES256"), ("JWT_PUBLIC_KEY", "pem")]).is_ok());
    }

    #[test]
    fn an_unknown_algorithm_is_refused_by_name() {
        let error = config(&[("JWT_ALGORITHM", "none"), ("JWT_SECRET", SECRET)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "JWT_ALGORITHM is invalid: `none` is not one of HS256, RS256, ES256"
        );
    }

    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let auth = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert!(!format!("{auth:?}").contains(SECRET));
    }
}
