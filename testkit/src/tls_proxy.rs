//! DynamoDB Local behind TLS, as the SDK meets DynamoDB on AWS: a TLS terminator with a certificate
//! authority made for the occasion, which the function is told to trust through `DYNAMODB_CA_BUNDLE` (the
//! override of the compiled-in Amazon roots). The first request of a process then pays the handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug)]
pub struct TlsProxy {
    /// `https://localhost:port`, to use as the DynamoDB endpoint.
    pub endpoint: String,
    /// The certificate authority's certificate (PEM), in a file for `DYNAMODB_CA_BUNDLE`.
    ca_file: PathBuf,
}

impl TlsProxy {
    /// Terminates TLS for `localhost` and forwards the plain bytes to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Meters test CA (generated per run)");
        let ca_certificate = ca_params.self_signed(&ca_key).expect("a CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().expect("a server key");
        let server_certificate = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server parameters")
            .signed_by(&server_key, &issuer)
            .expect("a server certificate");

        let ca_file =
            std::env::temp_dir().join(format!("meters-test-ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&ca_file, pem_certificate(ca_certificate.der()))
            .expect("the CA file is written");

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![server_certificate.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der())
                    .expect("a private key"),
            )
            .expect("a server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("an address").port();
        let upstream = upstream.trim_start_matches("http://").to_owned();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                // Without NODELAY a response of several TLS records waits on the peer's delayed ACK
                // (40 ms), which no real endpoint adds.
                let _ = client.set_nodelay(true);
                tokio::spawn(async move {
                    let Ok(mut client) = acceptor.accept(client).await else {
                        return;
                    };
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = server.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            endpoint: format!("https://localhost:{port}"),
            ca_file,
        }
    }

    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}

/// A DER certificate as PEM (rcgen's own PEM feature would bring a second `pem` crate into the tree).
fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}
