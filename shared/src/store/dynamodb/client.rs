//! Where the table is and how it is reached: the settings (`TABLE_NAME`, `DYNAMODB_ENDPOINT`,
//! `DYNAMODB_CA_BUNDLE`) and the SDK client, built once per process with the roots DynamoDB's certificates
//! chain to compiled in.

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::{ConfigError, Env};

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
    /// `TABLE_NAME` (required), `DYNAMODB_ENDPOINT` and `DYNAMODB_CA_BUNDLE`.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Self::read_with_table(env, None)
    }

    /// The same, with a table name to use when `TABLE_NAME` is unset (the local server's).
    pub fn read_with_table(env: &Env, default_table: Option<&str>) -> Result<Self, ConfigError> {
        let table_name = match (env.get("TABLE_NAME"), default_table) {
            (Some(name), _) => name,
            (None, Some(name)) => name.to_owned(),
            (None, None) => {
                env.required("TABLE_NAME", "the DynamoDB table that holds the meters")?
            }
        };
        check_table_name(&table_name)?;
        Ok(Self {
            table_name,
            endpoint: env.get("DYNAMODB_ENDPOINT"),
            extra_roots: env.parsed("DYNAMODB_CA_BUNDLE", extra_roots)?,
        })
    }
}

/// The certificates of the file `DYNAMODB_CA_BUNDLE` names, read once at start-up: a file that cannot be
/// read, holds no certificate, or holds one that cannot be a trust anchor stops the function with one line
/// naming the variable.
fn extra_roots(path: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|error| format!("{path}: {error}"))?;
    // The same checks the HTTPS client makes when it builds its connector, which is at the first request
    // (`ConnectorBuiltOnce` below): a bundle it would refuse is refused here, before the first poll.
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{path} is not readable PEM: {error}"))?;
    if certificates.is_empty() {
        return Err(format!("{path} holds no PEM certificate"));
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|error| {
            format!("{path} holds a certificate that cannot be trusted: {error}")
        })?;
    }
    Ok(pem)
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

    let env = Env::process();
    let region = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"));
    let has_credentials =
        env.get("AWS_ACCESS_KEY_ID").is_some() && env.get("AWS_SECRET_ACCESS_KEY").is_some();
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
    builder = builder.http_client(https_client(config.extra_roots.as_deref()));
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// Amazon Trust Services' roots, the only ones a DynamoDB endpoint's certificate chains to.
const AMAZON_ROOTS: &[u8] = include_bytes!("../../../certs/amazon-trust-services.pem");

/// The SDK's HTTPS client, trusting the roots compiled into the binary rather than the system's store: the
/// default reads every certificate file under /etc/ssl/certs while the client is built, which was most of a
/// function's init (BENCHMARKS.md, "Trust store"). `extra_roots` (`DYNAMODB_CA_BUNDLE`) adds others.
fn https_client(extra_roots: Option<&[u8]>) -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let mut trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    if let Some(pem) = extra_roots {
        trust.add_pem_certificate(pem.to_vec());
    }
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context of a trust store is always valid");
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    SharedHttpClient::new(ConnectorBuiltOnce(client))
}

/// The SDK's HTTPS client, minus the connector it builds and drops while the client is validated at start-up.
///
/// That throwaway build exists to load the system's certificates early, into a process-wide cache; with the
/// roots compiled in there is no such cache, so it was a whole TLS configuration (the roots parsed, the crypto
/// provider set up) built twice per cold start: once at init for nothing, once for the first request. Only
/// the second remains (benches/TUNING.md, step 10).
#[derive(Debug)]
struct ConnectorBuiltOnce(SharedHttpClient);

impl HttpClient for ConnectorBuiltOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The extra roots a configuration takes from `DYNAMODB_CA_BUNDLE` naming `path`.
    fn roots_of(path: &str) -> Result<Option<Vec<u8>>, ConfigError> {
        let env = Env::of([("TABLE_NAME", "meters"), ("DYNAMODB_CA_BUNDLE", path)]);
        DynamoDbConfig::read(&env).map(|config| config.extra_roots)
    }

    /// The extra roots of a file holding `contents`.
    fn bundle_of(contents: &[u8]) -> Result<Option<Vec<u8>>, ConfigError> {
        let file = std::env::temp_dir().join(format!("ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&file, contents).unwrap();
        let taken = roots_of(&file.display().to_string());
        let _ = std::fs::remove_file(file);
        taken
    }

    #[test]
    fn a_ca_bundle_that_cannot_be_read_or_holds_no_usable_certificate_is_refused_naming_the_variable()
     {
        assert_eq!(roots_of("").unwrap(), None);
        let refusal = |taken: Result<Option<Vec<u8>>, ConfigError>| {
            let refused = taken.unwrap_err().to_string();
            assert!(
                refused.starts_with("DYNAMODB_CA_BUNDLE is invalid"),
                "{refused}"
            );
            refused
        };
        refusal(roots_of("/nonexistent/ca.pem"));
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
        let bundle = include_bytes!("../../../certs/amazon-trust-services.pem");
        assert_eq!(bundle_of(bundle).unwrap().as_deref(), Some(&bundle[..]));
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
}
