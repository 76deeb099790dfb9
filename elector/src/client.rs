//! The kube client khaos runs the HA services with, in production and in the simulator alike,
//! and the bound the services put on each of their own requests.
//!
//! The services never rely on the client to time a request out: a user's client is
//! `kube::Client::try_default()`, which waits for an answer as long as the connection lives (no
//! read timeout). So every request the services make is bounded here ([`bounded`]) or by the
//! election's own deadlines, and both worlds run the client a user gets ([`PRODUCTION`]): a
//! client that timed requests out in the simulator only would hide a missing bound.

use std::future::Future;
use std::time::Duration;

/// How long a client waits, at each step of a request; `None` waits as long as it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// The longest a TCP (and TLS) connect may take.
    pub connect_timeout: Option<Duration>,
    /// The longest a connection may stay silent while an answer is awaited.
    pub read_timeout: Option<Duration>,
    /// The longest a write to the connection may block.
    pub write_timeout: Option<Duration>,
    /// The longest wait for an answer's headers, over the whole request.
    pub request_timeout: Option<Duration>,
    /// Whether the client retries a failed request by itself (kube's default retry policy).
    /// Off: the services decide what a failure means, and a silent retry of a write would hide
    /// an ambiguous outcome from them.
    pub retries: bool,
}

/// What `khaos node` and every simulated candidate and observer run with: kube-rs's defaults
/// for `kube::Config` (a 30 s connect timeout, no read timeout, a 295 s write timeout, no request
/// timeout) with its retries off.
pub const PRODUCTION: ClientSettings = ClientSettings {
    connect_timeout: Some(Duration::from_secs(30)),
    read_timeout: None,
    write_timeout: Some(Duration::from_secs(295)),
    request_timeout: None,
    retries: false,
};

/// The longest the election's lock, the HA store and the leader retrieval wait for one answer
/// from the API server (the election also bounds each attempt by what is left of its renew
/// deadline). A request that takes longer is given up as a connection failure would be: its
/// outcome unknown, and the next attempt goes out on a fresh connection, in time to keep a
/// lease that one lost request would otherwise cost.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings for a `kube::Config`: `config` with `settings` applied (what kube's config cannot
/// hold, the request timeout, is for the caller's tower stack).
pub fn apply(settings: &ClientSettings, config: &mut kube::Config) {
    config.connect_timeout = settings.connect_timeout;
    config.read_timeout = settings.read_timeout;
    config.write_timeout = settings.write_timeout;
    config.default_retry = settings.retries;
}

/// `request`, given up after `timeout` with the error a timed-out client gives (a
/// [`kube::Error::Service`]), which callers treat as any lost connection: a write's outcome is
/// unknown.
pub async fn bounded<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    match tokio::time::timeout(timeout, request).await {
        Ok(answer) => answer,
        Err(elapsed) => Err(kube::Error::Service(Box::new(elapsed))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// khaos runs what a user's `kube::Config` gives, but for retries: when kube-rs changes its
    /// defaults, this fails, and the choice is made again on purpose.
    #[test]
    fn production_is_kube_defaults_without_retries() {
        let config = kube::Config::new("http://127.0.0.1:6443".parse().unwrap());
        assert_eq!(PRODUCTION.connect_timeout, config.connect_timeout);
        assert_eq!(PRODUCTION.read_timeout, config.read_timeout);
        assert_eq!(PRODUCTION.write_timeout, config.write_timeout);
        assert!(config.default_retry && !PRODUCTION.retries);
        let mut applied = config.clone();
        apply(&PRODUCTION, &mut applied);
        assert!(!applied.default_retry);
        assert_eq!(applied.read_timeout, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_its_bound_fails_as_a_lost_connection_would() {
        let hung = std::future::pending::<Result<(), kube::Error>>();
        let error = bounded(REQUEST_TIMEOUT, hung).await.unwrap_err();
        assert!(matches!(error, kube::Error::Service(_)), "{error:?}");
        let answered = bounded(REQUEST_TIMEOUT, async { Ok::<_, kube::Error>(7) }).await;
        assert_eq!(answered.unwrap(), 7);
    }
}
