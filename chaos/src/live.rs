//! kube-rs clients for live servers: the standalone `khaos serve` by URL, or a real cluster from
//! KUBECONFIG or the in-cluster service account.

use http::{HeaderValue, header};

/// Why a live client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL did not parse.
    #[error("server URL {url:?} is not a valid URL (expected http://HOST:PORT): {source}")]
    Url {
        /// What was given.
        url: String,
        /// Why it failed.
        source: http::uri::InvalidUri,
    },
    /// A header value (identity or token) had characters HTTP does not allow.
    #[error("{what} {value:?} cannot be sent as an HTTP header")]
    Header {
        /// Which setting.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// kube could not build a client from the configuration.
    #[error("building the kube client: {0}")]
    Kube(#[from] kube::Error),
    /// KUBECONFIG could not be read.
    #[error("reading KUBECONFIG: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error(
        "no cluster configuration found (KUBECONFIG, ~/.kube/config, or the in-cluster service account): {0}; pass --server http://127.0.0.1:6443 to use `khaos serve`"
    )]
    Infer(#[from] kube::config::InferConfigError),
}

/// A client for the server at `url` (`http://127.0.0.1:6443`), identifying as `identity`, with an
/// optional bearer token. kube's default retry of 429/503/504 is off, so injected faults are seen
/// as they are. Must be called from within a tokio runtime.
pub fn client_for_url(
    url: &str,
    identity: &str,
    token: Option<&str>,
) -> Result<kube::Client, ClientError> {
    let uri = url.parse().map_err(|source| ClientError::Url {
        url: url.to_owned(),
        source,
    })?;
    let mut config = kube::Config::new(uri);
    config.default_retry = false;
    config
        .headers
        .push((header::USER_AGENT, header_value("identity", identity)?));
    if let Some(token) = token {
        config.headers.push((
            header::AUTHORIZATION,
            header_value("token", &format!("Bearer {token}"))?,
        ));
    }
    Ok(kube::Client::try_from(config)?)
}

/// A client for the cluster KUBECONFIG points at, identifying as `identity`.
pub async fn client_from_kubeconfig(identity: &str) -> Result<kube::Client, ClientError> {
    let mut config =
        kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default()).await?;
    config.default_retry = false;
    config
        .headers
        .push((header::USER_AGENT, header_value("identity", identity)?));
    Ok(kube::Client::try_from(config)?)
}

/// A client configured the way `kube::Client::try_default` finds it (KUBECONFIG, then
/// `~/.kube/config`, then the in-cluster service account), identifying as `identity`.
pub async fn client_inferred(identity: &str) -> Result<kube::Client, ClientError> {
    let mut config = kube::Config::infer().await?;
    config.default_retry = false;
    config
        .headers
        .push((header::USER_AGENT, header_value("identity", identity)?));
    Ok(kube::Client::try_from(config)?)
}

fn header_value(what: &'static str, value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|_| ClientError::Header {
        what,
        value: value.to_owned(),
    })
}
