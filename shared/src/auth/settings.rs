//! How requests are authenticated, from the environment: the mode, the one algorithm accepted, the keys,
//! and the claims checked.

use jsonwebtoken::Algorithm;
use secrecy::SecretSlice;

use crate::config::{ConfigError, Env};

/// How requests are authenticated. The shared secret is never printed.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The one algorithm accepted (function mode).
    pub algorithm: Algorithm,
    pub key: KeySource,
    /// `iss` must be present and equal, when set.
    pub issuer: Option<String>,
    /// `aud` must be present and hold one of these, when any are set (`JWT_AUDIENCE`, comma-separated).
    pub audiences: Vec<String>,
    pub accounts_claim: String,
}

/// Where the keys that verify tokens come from; the shared secret never shows in debug output.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// HS256 shared secret (`JWT_SECRET`).
    Secret(SecretSlice<u8>),
    /// One PEM public key (`JWT_PUBLIC_KEY`) for RS256, PS256 or ES256.
    PublicKeyPem(Vec<u8>),
    /// A JSON Web Key Set (`JWT_JWKS_URL`), fetched on first need; the token's `kid` picks the key.
    Jwks(String),
    /// `AUTH_MODE=gateway`: API Gateway's JWT authorizer verified the token; the function reads the claims
    /// it passes on.
    Gateway,
}

impl KeySource {
    /// How the log names the mode at start-up.
    pub fn describe(&self) -> &'static str {
        match self {
            KeySource::Secret(_) => "function: HS256 shared secret",
            KeySource::PublicKeyPem(_) => "function: PEM public key",
            KeySource::Jwks(_) => "function: JWKS",
            KeySource::Gateway => "gateway: claims verified by the API Gateway JWT authorizer",
        }
    }
}

/// A shared secret shorter than this is refused: HS256 is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 32;

impl AuthConfig {
    /// The authentication mode and its keys, from `AUTH_MODE` and the `JWT_*` variables.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let issuer = env.get("JWT_ISSUER");
        let audiences = env
            .get("JWT_AUDIENCE")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|audience| !audience.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let accounts_claim = env
            .get("JWT_ACCOUNTS_CLAIM")
            .unwrap_or_else(|| "account_ids".into());
        let gateway = match env.get("AUTH_MODE").as_deref() {
            None | Some("function") => false,
            Some("gateway") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    variable: "AUTH_MODE",
                    reason: format!("`{other}` is not one of function, gateway"),
                });
            }
        };
        let jwks_url = env.get("JWT_JWKS_URL");
        let algorithm = match env.get("JWT_ALGORITHM").as_deref() {
            None if jwks_url.is_some() || gateway => Algorithm::RS256,
            None | Some("HS256") => Algorithm::HS256,
            Some("RS256") => Algorithm::RS256,
            Some("PS256") => Algorithm::PS256,
            Some("ES256") => Algorithm::ES256,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    variable: "JWT_ALGORITHM",
                    reason: format!("`{other}` is not one of HS256, RS256, PS256, ES256"),
                });
            }
        };
        let key = if gateway {
            KeySource::Gateway
        } else if let Some(url) = jwks_url {
            if algorithm == Algorithm::HS256 {
                return Err(ConfigError::Invalid {
                    variable: "JWT_ALGORITHM",
                    reason: "a JWKS publishes public keys: use RS256, PS256 or ES256".into(),
                });
            }
            check_jwks_url(&url)?;
            KeySource::Jwks(url)
        } else if algorithm == Algorithm::HS256 {
            let secret = env.required(
                "JWT_SECRET",
                "HS256 needs a shared secret (or set JWT_JWKS_URL, or AUTH_MODE=gateway)",
            )?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(ConfigError::Invalid {
                    variable: "JWT_SECRET",
                    reason: format!("it must be at least {MIN_SECRET_BYTES} bytes long"),
                });
            }
            KeySource::Secret(secret.into_bytes().into())
        } else {
            let pem = env.required(
                "JWT_PUBLIC_KEY",
                "RS256, PS256 and ES256 need the issuer's PEM public key, or JWT_JWKS_URL",
            )?;
            KeySource::PublicKeyPem(pem.into_bytes())
        };
        Ok(Self {
            algorithm,
            key,
            issuer,
            audiences,
            accounts_claim,
        })
    }
}

/// A key set fetched over plain HTTP could be swapped by anyone on the path, so only `https` is accepted,
/// except on the loopback interface (tests, and a JWKS served on the same machine).
fn check_jwks_url(url: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        variable: "JWT_JWKS_URL",
        reason: reason.into(),
    };
    let uri: lambda_http::http::Uri = url.parse().map_err(|_| invalid("it is not a URL"))?;
    let host = uri.host().ok_or_else(|| invalid("it names no host"))?;
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if loopback => Ok(()),
        Some("http") => Err(invalid(
            "it must use https (plain http only for loopback hosts)",
        )),
        _ => Err(invalid("it must be an https URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        AuthConfig::read(&Env::of(vars.iter().copied()))
    }

    const SECRET: &str = "a-development-secret-of-at-least-32-bytes";

    #[test]
    fn a_jwks_url_defaults_to_rs256_and_refuses_hs256() {
        let auth = config(&[("JWT_JWKS_URL", "https://id.example/.well-known/jwks.json")]).unwrap();
        assert_eq!(auth.algorithm, Algorithm::RS256);
        assert!(matches!(auth.key, KeySource::Jwks(_)));
        let error = config(&[
            ("JWT_JWKS_URL", "https://id.example/jwks"),
            ("JWT_ALGORITHM", "HS256"),
        ])
        .unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Invalid {
                variable: "JWT_ALGORITHM",
                ..
            }
        ));
    }
    #[test]
    fn a_jwks_url_must_be_https_except_on_loopback() {
        for good in [
            "https://id.example/jwks",
            "http://127.0.0.1:9000/jwks",
            "http://localhost/jwks",
            "http://[::1]:8080/jwks",
        ] {
            assert!(config(&[("JWT_JWKS_URL", good)]).is_ok(), "{good}");
        }
        for bad in [
            "http://id.example/jwks",
            "ftp://127.0.0.1/jwks",
            "not a url",
            "http://10.0.0.1/jwks",
        ] {
            assert!(
                matches!(
                    config(&[("JWT_JWKS_URL", bad)]).unwrap_err(),
                    ConfigError::Invalid {
                        variable: "JWT_JWKS_URL",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
    #[test]
    fn gateway_mode_needs_no_key_and_an_unknown_mode_is_refused() {
        let auth = config(&[("AUTH_MODE", "gateway")]).unwrap();
        assert!(matches!(auth.key, KeySource::Gateway));
        assert_eq!(
            config(&[("AUTH_MODE", "cognito")]).unwrap_err().to_string(),
            "AUTH_MODE is invalid: `cognito` is not one of function, gateway"
        );
    }
    #[test]
    fn several_audiences_are_separated_by_commas() {
        let auth = config(&[
            ("JWT_SECRET", SECRET),
            ("JWT_AUDIENCE", "meters, 4f1c2a9b ,,"),
        ])
        .unwrap();
        assert_eq!(auth.audiences, ["meters", "4f1c2a9b"]);
    }
    #[test]
    fn hs256_is_the_default_and_needs_a_secret() {
        assert_eq!(
            config(&[]).unwrap_err().to_string(),
            "JWT_SECRET is not set: HS256 needs a shared secret (or set JWT_JWKS_URL, or AUTH_MODE=gateway)"
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
            "JWT_ALGORITHM is invalid: `none` is not one of HS256, RS256, PS256, ES256"
        );
    }
    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let auth = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert!(!format!("{auth:?}").contains(SECRET));
    }
}
