//! Configuration from the environment, read once at start-up. A missing or invalid value is an error that
//! names the variable; nothing falls back to a default secret.

use jsonwebtoken::Algorithm;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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

/// How requests are authenticated. The key material is never printed.
#[derive(Clone)]
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

/// Where the keys that verify tokens come from. Shown as `<redacted>` in debug output.
#[derive(Clone)]
pub enum KeySource {
    /// HS256 shared secret (`JWT_SECRET`).
    Secret(Vec<u8>),
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

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // A JWKS URL is public; secrets and keys are not printed.
            KeySource::Jwks(url) => write!(f, "Jwks({url})"),
            KeySource::Gateway => f.write_str("Gateway"),
            _ => f.write_str("<redacted>"),
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("algorithm", &self.algorithm)
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
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
        let issuer = lookup("JWT_ISSUER");
        let audiences = lookup("JWT_AUDIENCE")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|audience| !audience.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let accounts_claim = lookup("JWT_ACCOUNTS_CLAIM").unwrap_or_else(|| "account_ids".into());
        let gateway = match lookup("AUTH_MODE").as_deref() {
            None | Some("function") => false,
            Some("gateway") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    variable: "AUTH_MODE",
                    reason: format!("`{other}` is not one of function, gateway"),
                });
            }
        };
        let jwks_url = lookup("JWT_JWKS_URL");
        let algorithm = match lookup("JWT_ALGORITHM").as_deref() {
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
            let secret = lookup("JWT_SECRET").ok_or(ConfigError::Missing {
                variable: "JWT_SECRET",
                hint: "HS256 needs a shared secret (or set JWT_JWKS_URL, or AUTH_MODE=gateway)",
            })?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(ConfigError::Invalid {
                    variable: "JWT_SECRET",
                    reason: format!("it must be at least {MIN_SECRET_BYTES} bytes long"),
                });
            }
            KeySource::Secret(secret.into_bytes())
        } else {
            let pem = lookup("JWT_PUBLIC_KEY").ok_or(ConfigError::Missing {
                variable: "JWT_PUBLIC_KEY",
                hint: "RS256, PS256 and ES256 need the issuer's PEM public key, or JWT_JWKS_URL",
            })?;
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

/// Where the DynamoDB store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbConfig {
    pub table_name: String,
    /// Set for DynamoDB Local; unset means AWS itself.
    pub endpoint: Option<String>,
    /// Certificates (PEM) to trust besides Amazon Trust Services' roots, from the file `DYNAMODB_CA_BUNDLE`
    /// names: for an endpoint behind a proxy, or DynamoDB Local behind TLS.
    pub extra_roots: Option<Vec<u8>>,
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
        check_table_name(&table_name)?;
        Ok(Self {
            table_name,
            endpoint: std::env::var("DYNAMODB_ENDPOINT")
                .ok()
                .filter(|url| !url.is_empty()),
            extra_roots: extra_roots_from_env()?,
        })
    }
}

/// The certificates of `DYNAMODB_CA_BUNDLE`, read once at start-up: a file that cannot be read, holds no
/// certificate, or holds one that cannot be a trust anchor stops the function with one line naming the variable.
pub fn extra_roots_from_env() -> Result<Option<Vec<u8>>, ConfigError> {
    extra_roots(std::env::var("DYNAMODB_CA_BUNDLE").ok())
}

fn extra_roots(path: Option<String>) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = path.filter(|path| !path.is_empty()) else {
        return Ok(None);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        variable: "DYNAMODB_CA_BUNDLE",
        reason,
    };
    let pem = std::fs::read(&path).map_err(|error| invalid(format!("{path}: {error}")))?;
    // The same checks the HTTPS client makes when it builds its connector, which is at the first request
    // (lambda.rs, `ConnectorBuiltOnce`): a bundle it would refuse is refused here, before the first poll.
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(format!("{path} is not readable PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(invalid(format!("{path} holds no PEM certificate")));
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|error| {
            invalid(format!(
                "{path} holds a certificate that cannot be trusted: {error}"
            ))
        })?;
    }
    Ok(Some(pem))
}

/// `REQUEST_DEADLINE_MS`: how long one request may take in all (default 8,000). In Lambda the invocation's
/// own deadline caps it further, so a request always ends before the function's timeout.
pub fn request_deadline_from_env() -> Result<std::time::Duration, ConfigError> {
    request_deadline(
        std::env::var("REQUEST_DEADLINE_MS")
            .ok()
            .filter(|v| !v.is_empty()),
    )
}

fn request_deadline(raw: Option<String>) -> Result<std::time::Duration, ConfigError> {
    let Some(raw) = raw else {
        return Ok(crate::handlers::DEFAULT_DEADLINE);
    };
    match raw.trim().parse::<u64>() {
        Ok(ms) if (100..=900_000).contains(&ms) => Ok(std::time::Duration::from_millis(ms)),
        _ => Err(ConfigError::Invalid {
            variable: "REQUEST_DEADLINE_MS",
            reason: "it must be a whole number of milliseconds from 100 to 900000".into(),
        }),
    }
}

/// DynamoDB's own rule, checked at start-up so that a wrong name stops the function with one clear line
/// instead of failing every request.
pub fn check_table_name(name: &str) -> Result<(), ConfigError> {
    let valid_characters = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if (3..=255).contains(&name.len()) && valid_characters {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            variable: "TABLE_NAME",
            reason:
                "a DynamoDB table name is 3 to 255 characters of a-z, A-Z, 0-9, `_`, `-` and `.`"
                    .into(),
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

    /// `extra_roots` of a file holding `contents`.
    fn bundle_of(contents: &[u8]) -> Result<Option<Vec<u8>>, ConfigError> {
        let file = std::env::temp_dir().join(format!("ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&file, contents).unwrap();
        let taken = extra_roots(Some(file.display().to_string()));
        let _ = std::fs::remove_file(file);
        taken
    }

    #[test]
    fn a_ca_bundle_that_cannot_be_read_or_holds_no_usable_certificate_is_refused_naming_the_variable()
     {
        assert_eq!(extra_roots(None).unwrap(), None);
        let refusal = |taken: Result<Option<Vec<u8>>, ConfigError>| {
            let refused = taken.unwrap_err().to_string();
            assert!(
                refused.starts_with("DYNAMODB_CA_BUNDLE is invalid"),
                "{refused}"
            );
            refused
        };
        refusal(extra_roots(Some("/nonexistent/ca.pem".into())));
        let frame = |body: &str| {
            format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
        };
        assert!(refusal(bundle_of(b"hello")).contains("holds no PEM certificate"));
        assert!(
            refusal(bundle_of(frame("not base64 at all!").as_bytes()))
                .contains("is not readable PEM")
        );
        // Well-formed PEM around bytes that are no certificate: the client would panic on it later.
        assert!(
            refusal(bundle_of(frame("aGVsbG8gd29ybGQ=").as_bytes())).contains("cannot be trusted")
        );
    }

    #[test]
    fn a_ca_bundle_of_real_certificates_is_taken_whole() {
        let bundle = include_bytes!("../certs/amazon-trust-services.pem");
        assert_eq!(bundle_of(bundle).unwrap().as_deref(), Some(&bundle[..]));
    }

    #[test]
    fn the_request_deadline_defaults_to_8_seconds_and_takes_milliseconds() {
        assert_eq!(
            request_deadline(None),
            Ok(std::time::Duration::from_secs(8))
        );
        assert_eq!(
            request_deadline(Some("2500".into())),
            Ok(std::time::Duration::from_millis(2500))
        );
        for bad in ["0", "99", "8s", "-1", "900001"] {
            assert!(request_deadline(Some(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn table_names_dynamodb_would_refuse_are_refused_at_start_up() {
        for good in ["meters", "meters-prod_2.x", &"t".repeat(255)] {
            assert_eq!(check_table_name(good), Ok(()), "{good}");
        }
        for bad in [
            "t",
            "ab",
            "meters prod",
            "meters/prod",
            "métrés",
            &"t".repeat(256),
        ] {
            assert!(
                matches!(
                    check_table_name(bad),
                    Err(ConfigError::Invalid {
                        variable: "TABLE_NAME",
                        ..
                    })
                ),
                "{bad}"
            );
        }
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
