//! kube-rs clients for live servers: the standalone `khaos serve` by URL, or a real cluster from
//! KUBECONFIG or the in-cluster service account.

use http::{HeaderValue, header};
use khaos_elector::client;
use khaos_sim::conformance::{self, Target};

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
    /// The server URL has no `http://` or `https://` scheme, or no host.
    #[error(
        "server URL {url:?} {problem}: give it as http://HOST:PORT (https://HOST:PORT with TLS), for example http://{example}"
    )]
    NotHttp {
        /// What was given.
        url: String,
        /// What is missing.
        problem: &'static str,
        /// The URL as it was probably meant.
        example: String,
    },
    /// The server did not answer a first request.
    #[error(
        "cannot reach the API server at {url}: {reason} (is `khaos serve` running there? start one with `khaos serve --addr HOST:PORT`)"
    )]
    Unreachable {
        /// The server.
        url: String,
        /// Why.
        reason: String,
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
/// optional bearer token: [`config_for_url`]'s. Must be called from within a tokio runtime.
pub fn client_for_url(
    url: &str,
    identity: &str,
    token: Option<&str>,
) -> Result<kube::Client, ClientError> {
    Ok(kube::Client::try_from(config_for_url(
        url, identity, token,
    )?)?)
}

/// The configuration of [`client_for_url`]: [`client::PRODUCTION`], the settings every simulated
/// candidate runs too (kube's default retry of 429/503/504 off, so injected faults are seen as
/// they are).
pub fn config_for_url(
    url: &str,
    identity: &str,
    token: Option<&str>,
) -> Result<kube::Config, ClientError> {
    let uri: http::Uri = url.parse().map_err(|source| ClientError::Url {
        url: url.to_owned(),
        source,
    })?;
    // kube's base-URI layer panics on a URL without a scheme, then the client hangs.
    let problem = match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => None,
        (None, _) => Some("has no scheme"),
        (Some(_), None) => Some("has no host"),
        (Some(_), Some(_)) => Some("is not http or https"),
    };
    if let Some(problem) = problem {
        let example = uri
            .authority()
            .map_or_else(|| "127.0.0.1:6443".to_owned(), ToString::to_string);
        return Err(ClientError::NotHttp {
            url: url.to_owned(),
            problem,
            example,
        });
    }
    let mut config = kube::Config::new(uri);
    client::apply(&client::PRODUCTION, &mut config);
    config
        .headers
        .push((header::USER_AGENT, header_value("identity", identity)?));
    if let Some(token) = token {
        config.headers.push((
            header::AUTHORIZATION,
            header_value("token", &format!("Bearer {token}"))?,
        ));
    }
    Ok(config)
}

/// A client for the cluster KUBECONFIG points at, identifying as `identity`.
pub async fn client_from_kubeconfig(identity: &str) -> Result<kube::Client, ClientError> {
    let mut config =
        kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default()).await?;
    client::apply(&client::PRODUCTION, &mut config);
    config
        .headers
        .push((header::USER_AGENT, header_value("identity", identity)?));
    Ok(kube::Client::try_from(config)?)
}

/// A client configured the way `kube::Client::try_default` finds it (KUBECONFIG, then
/// `~/.kube/config`, then the in-cluster service account), identifying as `identity`.
pub async fn client_inferred(identity: &str) -> Result<kube::Client, ClientError> {
    let mut config = kube::Config::infer().await?;
    client::apply(&client::PRODUCTION, &mut config);
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

/// Ask the server at `url` for its version once, so a wrong address is one clear error rather
/// than a failure per request later. A server that answers with an error (401, say) is reachable.
pub async fn probe(url: &str, token: Option<&str>) -> Result<(), ClientError> {
    let client = client_for_url(url, conformance::IDENTITY, token)?;
    let unreachable = |reason: String| ClientError::Unreachable {
        url: url.to_owned(),
        reason,
    };
    match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.apiserver_version(),
    )
    .await
    {
        Ok(Ok(_) | Err(kube::Error::Api(_))) => Ok(()),
        Ok(Err(error)) => Err(unreachable(error.to_string())),
        Err(_) => Err(unreachable("no answer within 10 s".into())),
    }
}

/// The conformance suite's target for a server at `url` (`khaos serve`): the URL and token are
/// checked once, so a typo gets one clear error before any case runs. Must be called from within
/// a tokio runtime.
pub fn conformance_target_for_url(
    url: &str,
    token: Option<&str>,
    bookmark_interval: Option<std::time::Duration>,
) -> Result<Target, ClientError> {
    client_for_url(url, conformance::IDENTITY, token)?;
    let (url, token) = (url.to_owned(), token.map(str::to_owned));
    let mut target = Target::new("standalone", true, move |identity| {
        client_for_url(&url, identity, token.as_deref()).expect("checked above")
    });
    if let Some(interval) = bookmark_interval {
        target = target.with_bookmark_interval(interval);
    }
    Ok(target)
}

/// Why the cluster KUBECONFIG points at cannot be a conformance target.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The cluster did not answer.
    #[error("reaching the cluster: {0}")]
    Unreachable(#[source] kube::Error),
}

/// The conformance suite's target for the cluster KUBECONFIG points at (fault cases are
/// skipped), and the cluster's version; one client per identity the suite uses.
pub async fn conformance_target_from_kubeconfig() -> Result<(Target, String), ClusterError> {
    let probe = client_from_kubeconfig(conformance::IDENTITY).await?;
    let version = probe
        .apiserver_version()
        .await
        .map_err(ClusterError::Unreachable)?;
    let mut clients = Vec::new();
    for identity in [conformance::IDENTITY, conformance::FAULTY_IDENTITY] {
        clients.push((identity, client_from_kubeconfig(identity).await?));
    }
    let target = Target::new("cluster", false, move |identity| {
        clients
            .iter()
            .find(|(i, _)| *i == identity)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| clients[0].1.clone())
    });
    Ok((target, version.git_version))
}
