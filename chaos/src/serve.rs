//! `khaos serve`: the simulated API server on real TCP, for kubectl, live-local chaos runs and
//! any other real client.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use khaos_elector::clock::TokioClock;
use khaos_sim::apiserver::{ApiServer, Clock, Faults, Resource, ServerConfig, Verb};

use crate::timebase::{EpochError, TimeBase};

/// Settings of `khaos serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Host names served besides loopback's (an explicit choice for a non-loopback address).
    pub allow_remote: Vec<String>,
    /// Require this bearer token.
    pub token: Option<String>,
    /// Seed of the fault decisions.
    pub seed: u64,
    /// Faults to start with.
    pub faults: Faults,
    /// Append every commit to this file as JSON lines, each written before its answer is sent.
    pub history: Option<PathBuf>,
    /// How often watches that ask for bookmarks get one.
    pub bookmark_interval: Duration,
    /// How many watch events the server keeps before compacting the oldest (etcd's history).
    pub watch_history_max: usize,
    /// Keep the store here (every commit, written before its answer) and restore it on start.
    pub data_dir: Option<PathBuf>,
    /// Serve HTTPS with a certificate authority made at start.
    pub tls: bool,
    /// Write a kubeconfig for this server here (its URL, the authority with `tls`, the token).
    pub write_kubeconfig: Option<PathBuf>,
    /// Unix milliseconds the history's `t_ms` counts from (shared with the nodes of the run, so
    /// the logs merge); `None`: from the server's start.
    pub epoch_ms: Option<u64>,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without `--allow-remote`.
    #[error(
        "refusing to listen on {0}, which is not a loopback address: the server accepts writes from anyone who can reach it; pass --allow-remote HOST, naming the host names clients will use, if you mean it"
    )]
    Remote(SocketAddr),
    /// `--token ""`: nothing could authenticate.
    #[error(
        "--token is empty, so no client could authenticate: give a token, or leave --token out"
    )]
    EmptyToken,
    /// An `--allow-remote` name that is not a host name.
    #[error(
        "--allow-remote {0:?} is not a host name or address (give the name clients connect to, without scheme or port: --allow-remote my-host.lan)"
    )]
    BadHost(String),
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
    /// The faults file could not be read.
    #[error("reading --faults {path}: {source}", path = path.display())]
    FaultsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The faults file is not the faults' JSON.
    #[error(
        "--faults {path}: {source} (see GET /khaos/v1/faults on a running server for the format)",
        path = path.display()
    )]
    FaultsFormat {
        /// The file.
        path: PathBuf,
        /// Why, with the line and column.
        source: serde_json::Error,
    },
    /// A zero bookmark interval.
    #[error("--bookmark-interval-ms must be at least 1")]
    ZeroBookmarkInterval,
    /// A watch history that keeps nothing.
    #[error("--watch-history-max must be at least 1")]
    ZeroWatchHistory,
    /// The epoch cannot be this run's start.
    #[error(transparent)]
    Epoch(#[from] EpochError),
    /// The history file could not be opened or written.
    #[error("history file {path}: {source}")]
    History {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be used.
    #[error("--data-dir {path}: {reason}", path = path.display())]
    DataDir {
        /// The directory or its file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The kubeconfig could not be written.
    #[error("writing --write-kubeconfig {path}: {source}", path = path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// The faults in a JSON file (the format of `GET /khaos/v1/faults`); none without a file.
pub fn read_faults(path: Option<&Path>) -> Result<Faults, ServeError> {
    let Some(path) = path else {
        return Ok(Faults::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ServeError::FaultsFile {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ServeError::FaultsFormat {
        path: path.to_path_buf(),
        source,
    })
}

/// The host names a standalone server answers to: loopback's, the address it listens on, and
/// `--allow-remote`'s.
fn served_hosts(config: &ServeConfig) -> Vec<String> {
    let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "::1"].map(String::from).to_vec();
    let ip = config.addr.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        hosts.push(ip.to_string());
    }
    hosts.extend(config.allow_remote.iter().cloned());
    hosts
}

/// Write a kubeconfig only its owner can read (it holds a token): a new file, renamed into
/// place. A file there already is replaced only if khaos wrote it (a kubeconfig whose only
/// cluster is `khaos`), so `--write-kubeconfig ~/.kube/config` cannot wipe other clusters.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Ok(existing) = std::fs::read_to_string(path) {
        let ours = serde_json::from_str::<serde_json::Value>(&existing).is_ok_and(|k| {
            k["clusters"]
                .as_array()
                .is_some_and(|c| c.len() == 1 && c[0]["name"] == "khaos")
        });
        if !ours {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file is there that khaos did not write; give a new path (kubectl --kubeconfig takes any)",
            ));
        }
    }
    let temporary = path.with_extension("khaos-new");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    std::fs::rename(&temporary, path)
}

/// A running standalone server.
pub struct Running {
    /// The server (for faults, compaction, restarts).
    pub server: ApiServer,
    /// The address it listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Its URL, `http://` or `https://` with the address clients use.
    pub url: String,
    /// A kubeconfig for it (URL, TLS authority, token), as `--write-kubeconfig` writes it.
    pub kubeconfig: serde_json::Value,
    /// How many commits `--data-dir` restored.
    pub restored: usize,
    listener: tokio::net::TcpListener,
    tls: Option<crate::tls::Tls>,
}

/// Bind the server. Must be called from within a tokio runtime.
pub async fn bind(config: ServeConfig) -> Result<Running, ServeError> {
    if !config.addr.ip().is_loopback() && config.allow_remote.is_empty() {
        return Err(ServeError::Remote(config.addr));
    }
    if config.token.as_deref() == Some("") {
        return Err(ServeError::EmptyToken);
    }
    // A name, an IPv4 address, or an IPv6 address (bracketed or not); no scheme, no port.
    let allow_remote: Vec<String> = config
        .allow_remote
        .iter()
        .map(|host| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned()
        })
        .collect();
    if let Some(bad) = allow_remote.iter().find(|host| {
        let name = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
        !(name || host.parse::<std::net::Ipv6Addr>().is_ok())
    }) {
        return Err(ServeError::BadHost(bad.clone()));
    }
    let config = ServeConfig {
        allow_remote,
        ..config
    };
    if config.bookmark_interval.is_zero() {
        return Err(ServeError::ZeroBookmarkInterval);
    }
    if config.watch_history_max == 0 {
        return Err(ServeError::ZeroWatchHistory);
    }
    let time = TimeBase::new(std::sync::Arc::new(TokioClock::new()), config.epoch_ms)?;
    let history = match &config.history {
        None => None,
        Some(path) => {
            let (file, _) = open_log(path).map_err(|source| ServeError::History {
                path: path.clone(),
                source,
            })?;
            Some((path.clone(), file))
        }
    };
    let data = match &config.data_dir {
        None => None,
        Some(dir) => Some(open_data_dir(dir)?),
    };
    let hosts = served_hosts(&config);
    let tls = if config.tls {
        Some(crate::tls::Tls::generate(&hosts)?)
    } else {
        None
    };
    let server = ApiServer::new(ServerConfig {
        token: config.token.clone(),
        seed: config.seed,
        clock: Clock::System,
        bookmark_interval: config.bookmark_interval,
        record_commits: history.is_some() || data.is_some(),
        events_max: config.watch_history_max,
        hosts: Some(hosts.clone()),
        created_at: data
            .as_ref()
            .map(|(_, _, _, created_at)| created_at.clone()),
        ..ServerConfig::default()
    });
    server
        .set_faults(config.faults.clone())
        .map_err(ServeError::Faults)?;
    let mut restored = 0;
    let mut journals = Vec::new();
    if let Some((path, file, commits, _)) = data {
        restored = commits.len();
        // Restored as an API server restart leaves it (`ApiServer::restart`): the store as it
        // was, and a watch cache that starts now, so a resume from before gets 410 and re-lists.
        server
            .with_store(|store| {
                commits.into_iter().try_for_each(|c| store.restore(c))?;
                store.compact(store.revision());
                Ok::<(), String>(())
            })
            .map_err(|reason| ServeError::DataDir {
                path: path.clone(),
                reason,
            })?;
        journals.push((path, file));
    }
    journals.extend(history);
    if !journals.is_empty() {
        server.set_journal(journal(journals, time));
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
    // The address clients use: a wildcard listens on loopback too.
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{host}:{}", addr.port());
    let kubeconfig = crate::tls::kubeconfig(
        &url,
        tls.as_ref().map(|t| t.ca_pem.as_str()),
        config.token.as_deref(),
    );
    if let Some(path) = &config.write_kubeconfig {
        write_private(path, &format!("{kubeconfig:#}\n")).map_err(|source| {
            ServeError::Kubeconfig {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(Running {
        server,
        addr,
        url,
        kubeconfig,
        restored,
        listener,
        tls,
    })
}

impl Running {
    /// Serve until `shutdown` completes; then drop every connection.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let Some(tls) = self.tls else {
            return Ok(self.server.serve_tcp(self.listener, shutdown).await?);
        };
        let acceptor = tls.acceptor;
        let handshake = move |stream| {
            let accept = acceptor.accept(stream);
            // A client that fails the handshake (a plain-HTTP one, say) is dropped.
            async move { accept.await.ok() }
        };
        Ok(self
            .server
            .serve_tcp_with(self.listener, shutdown, handshake)
            .await?)
    }
}

/// The journal of `khaos serve --history` and `--data-dir`: each batch of commits as JSON lines,
/// handed to the kernel in one write per file before any of their answers is sent, so an
/// answered write survives the server's SIGTERM or SIGKILL (a crash of the machine itself needs
/// an fsync, which this does not do). Each commit is stamped with the time it is written, after
/// it committed and before any client can have heard of it, so an event a node logs because of a
/// commit never sorts before it when the logs are merged.
fn journal(files: Vec<(PathBuf, std::fs::File)>, time: TimeBase) -> khaos_sim::apiserver::Journal {
    let mut buffer = Vec::new();
    // Each file with the length it had when its last write completed, to cut a failed write's
    // part back off.
    let mut files: Vec<(PathBuf, std::fs::File, u64)> = files
        .into_iter()
        .map(|(path, file)| {
            let length = file.metadata().map_or(0, |m| m.len());
            (path, file, length)
        })
        .collect();
    Box::new(move |commits| {
        let t_ms = time.t_ms();
        buffer.clear();
        for commit in commits {
            buffer.extend_from_slice(
                khaos_sim::world::commit_entry(t_ms, commit)
                    .to_line()
                    .as_bytes(),
            );
            buffer.push(b'\n');
        }
        for (path, file, length) in &mut files {
            if let Err(error) = file.write_all(&buffer) {
                // Leave the file whole: what was written of this batch goes.
                let _ = file.set_len(*length);
                // The client gets a 500 and the server stops; the operator learns why.
                eprintln!(
                    "khaos serve: writing {}: {error}; the server stops serving (restart it)",
                    path.display()
                );
                return Err(error);
            }
            *length += buffer.len() as u64;
        }
        Ok(())
    })
}

/// The commit log of a data directory, opened to append, and the commits it holds. A last line
/// that a killed server cut off mid-write is cut from the file (its write was never answered).
/// A data directory opened: its commit log, the commits it holds, and when its cluster was made.
type DataDir = (
    PathBuf,
    std::fs::File,
    Vec<khaos_sim::apiserver::Restored>,
    String,
);

fn open_data_dir(dir: &Path) -> Result<DataDir, ServeError> {
    let path = dir.join("commits.jsonl");
    let error = |reason: String| ServeError::DataDir {
        path: path.clone(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| ServeError::DataDir {
        path: dir.to_path_buf(),
        reason: format!("cannot create it: {e}"),
    })?;
    let (file, text) = open_log(&path).map_err(|e| error(e.to_string()))?;
    // One server per data directory: two would interleave their revisions.
    file.try_lock().map_err(|e| {
        error(format!(
            "is locked ({e}): another khaos serve is using this data directory"
        ))
    })?;
    let log = khaos_reports::history::parse_log(&text).map_err(|e| error(e.to_string()))?;
    let mut commits = Vec::with_capacity(log.lines.len());
    for (entry, _) in &log.lines {
        let khaos_reports::Record::Harness(khaos_reports::history::HarnessEvent::Commit {
            revision,
            verb,
            resource,
            namespace,
            name,
            client,
            object,
        }) = &entry.record
        else {
            return Err(error(
                "holds a line that is not a commit: is this a data directory?".into(),
            ));
        };
        let Some(kind) = Resource::ALL.into_iter().find(|r| r.plural() == resource) else {
            return Err(error(format!(
                "revision {revision}: unknown resource {resource:?}"
            )));
        };
        use khaos_reports::history::CommitVerb;
        commits.push(khaos_sim::apiserver::Restored {
            revision: *revision,
            verb: match verb {
                CommitVerb::Create => Verb::Create,
                CommitVerb::Update => Verb::Update,
                CommitVerb::Patch => Verb::Patch,
                CommitVerb::Delete => Verb::Delete,
            },
            resource: kind,
            namespace: namespace.clone(),
            name: name.clone(),
            client: client.clone(),
            object: object.clone(),
        });
    }
    // When the cluster was made, kept from the first start: the default namespaces (revisions
    // 1 to 4) are the same objects on every start.
    let created = dir.join("created");
    let created_at = match std::fs::read_to_string(&created) {
        Ok(text) => text.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            #[allow(clippy::disallowed_methods)] // The cluster's birth is a wall-clock time.
            let now = khaos_sim::apiserver::time::rfc3339(std::time::SystemTime::now());
            std::fs::write(&created, format!("{now}\n")).map_err(|e| error(e.to_string()))?;
            now
        }
        Err(e) => return Err(error(e.to_string())),
    };
    Ok((path, file, commits, created_at))
}

/// Open a JSON-lines log to append to, with what it holds. A last line without its newline was
/// cut off mid-write by a killed server (its write was never answered), whether or not what is
/// left of it parses: it is cut from the file, so the next line starts on a line of its own.
fn open_log(path: &Path) -> std::io::Result<(std::fs::File, String)> {
    // A device or a pipe (`--history /dev/stdout`) is written to, never read back.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        return Ok((file, String::new()));
    }
    let mut bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let whole = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        bytes.truncate(whole);
        file.set_len(whole as u64)?;
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok((file, text))
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
