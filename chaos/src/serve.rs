//! `khaos serve`: the simulated API server on real TCP, for kubectl, live-local chaos runs and
//! any other real client.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use khaos_sim::apiserver::{ApiServer, Clock, Faults, ServerConfig};

/// Settings of `khaos serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Allow a non-loopback address (an explicit choice: the server has no TLS).
    pub allow_remote: bool,
    /// Require this bearer token.
    pub token: Option<String>,
    /// Seed of the fault decisions.
    pub seed: u64,
    /// Faults to start with.
    pub faults: Faults,
    /// Append every commit to this file as JSON lines.
    pub history: Option<PathBuf>,
    /// How often watches that ask for bookmarks get one.
    pub bookmark_interval: Duration,
    /// How many watch events the server keeps before compacting the oldest (etcd's history).
    pub watch_history_max: usize,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without `--allow-remote`.
    #[error(
        "refusing to listen on {0}, which is not a loopback address: the server has no TLS and accepts writes from anyone who can reach it; pass --allow-remote if you mean it"
    )]
    Remote(SocketAddr),
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server on that port? try --addr 127.0.0.1:0 for any free port)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The faults given are out of range.
    #[error("invalid faults: {0}")]
    Faults(String),
    /// The history file could not be opened or written.
    #[error("history file {path}: {source}")]
    History {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A running standalone server.
pub struct Running {
    /// The server (for faults, compaction, restarts).
    pub server: ApiServer,
    /// The address it listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    history: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
}

/// Bind the server. Must be called from within a tokio runtime.
pub async fn bind(config: ServeConfig) -> Result<Running, ServeError> {
    if !config.addr.ip().is_loopback() && !config.allow_remote {
        return Err(ServeError::Remote(config.addr));
    }
    let history = match &config.history {
        None => None,
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| ServeError::History {
                    path: path.clone(),
                    source,
                })?;
            Some((path.clone(), std::io::BufWriter::new(file)))
        }
    };
    let server = ApiServer::new(ServerConfig {
        token: config.token.clone(),
        seed: config.seed,
        clock: Clock::System,
        bookmark_interval: config.bookmark_interval,
        record_commits: history.is_some(),
        events_max: config.watch_history_max,
        ..ServerConfig::default()
    });
    server
        .set_faults(config.faults.clone())
        .map_err(ServeError::Faults)?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
    Ok(Running {
        server,
        addr,
        listener,
        history,
    })
}

impl Running {
    /// Serve until `shutdown` completes, writing the history as it goes; then drop every
    /// connection and flush the history.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let Running {
            server,
            listener,
            history,
            ..
        } = self;
        let Some((path, mut writer)) = history else {
            return Ok(server.serve_tcp(listener, shutdown).await?);
        };
        // The history's clock: milliseconds since the server started (live histories order by
        // revision; the time is for people and reports).
        let origin = tokio::time::Instant::now();
        let serving = server.clone().serve_tcp(listener, shutdown);
        tokio::pin!(serving);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let result = loop {
            tokio::select! {
                biased;
                result = &mut serving => break result,
                _ = tick.tick() => write_commits(&server, origin, &path, &mut writer)?,
            }
        };
        write_commits(&server, origin, &path, &mut writer)?;
        Ok(result?)
    }
}

fn write_commits(
    server: &ApiServer,
    origin: tokio::time::Instant,
    path: &std::path::Path,
    writer: &mut std::io::BufWriter<std::fs::File>,
) -> Result<(), ServeError> {
    let error = |source| ServeError::History {
        path: path.to_path_buf(),
        source,
    };
    let t_ms = u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX);
    for commit in server.take_commits() {
        let line = khaos_world::history::commit_entry(t_ms, commit).to_line();
        writer.write_all(line.as_bytes()).map_err(error)?;
        writer.write_all(b"\n").map_err(error)?;
    }
    writer.flush().map_err(error)
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives just after start-up is not lost (and
/// does not kill the process with the default action). Must be called within a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).expect("a SIGTERM handler can be installed");
    let mut interrupt = signal(SignalKind::interrupt()).expect("a SIGINT handler can be installed");
    async move {
        tokio::select! {
            biased;
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
}
