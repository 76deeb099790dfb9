//! TLS for `khaos serve --tls`: a certificate authority made at start, a server certificate it
//! signs for the names served, and a kubeconfig that trusts the authority, as a real cluster
//! hands one out. kubectl sends a bearer token only over TLS, so `--token` needs this to be used
//! with kubectl.

use std::sync::Arc;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio_rustls::rustls;

/// What TLS needs: the acceptor for connections, and the authority's certificate for clients.
#[derive(Clone)]
pub struct Tls {
    /// Wraps each accepted connection.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The authority's certificate, PEM: what a client trusts.
    pub ca_pem: String,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate could not be made.
    #[error("making the TLS certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the certificate.
    #[error("setting up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

impl Tls {
    /// A new authority and a server certificate for `hosts` (names and addresses), valid from
    /// now for a year.
    pub fn generate(hosts: &[String]) -> Result<Tls, TlsError> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "khaos serve CA");
        ca.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let mut server = CertificateParams::new(hosts.to_vec())?;
        server
            .distinguished_name
            .push(DnType::CommonName, "khaos serve");
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &issuer)?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )?;
        // The server speaks HTTP/1.1 only; kubectl offers h2 first.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            ca_pem: ca_cert.pem(),
        })
    }
}

/// A kubeconfig (JSON, which kubectl and kube-rs read as YAML) for the server at `url`: the
/// authority to trust when there is one, and the token when there is one.
pub fn kubeconfig(url: &str, ca_pem: Option<&str>, token: Option<&str>) -> serde_json::Value {
    let mut cluster = serde_json::json!({ "server": url });
    if let Some(pem) = ca_pem {
        cluster["certificate-authority-data"] =
            base64::engine::general_purpose::STANDARD.encode(pem).into();
    }
    let mut user = serde_json::json!({});
    if let Some(token) = token {
        user["token"] = token.into();
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "khaos", "cluster": cluster }],
        "users": [{ "name": "khaos", "user": user }],
        "contexts": [{
            "name": "khaos",
            "context": { "cluster": "khaos", "user": "khaos", "namespace": "default" },
        }],
        "current-context": "khaos",
    })
}
