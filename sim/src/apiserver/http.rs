//! The HTTP front of the API server: Kubernetes REST paths, verbs, watch streams, faults and the
//! admin endpoints, over any connection (simulated TCP in turmoil, real TCP standalone).
//!
//! The front owns everything with I/O or time: it asks the pure [`Store`] what to answer and the
//! pure [`Faults`] what to break, and does the sleeping, streaming and connection dropping.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::faults::{
    self, Action, AmbiguousOutcome, Faults, HANG_MS_MAX, RequestInfo, RequestVerb,
};
use super::query::{
    ListOptions, Query, ReadAt, VersionMatch, check_field_validation, percent_decode,
};
use super::resource::{Resource, Subresource};
use super::selector::{FieldSelector, LabelSelector, SelectableFields};
use super::status::{self, ApiError};
use super::store::{
    Commit, Deletion, EncodedLine, EventType, Listing, ObjectKey, Part, PatchType, Preconditions,
    Propagation, Store, WatchEvent, WatchFilter, WriteContext, encode_line, metadata_str,
};
use super::table;
use super::time::rfc3339;
use super::{convert, discovery, validation};

/// The largest request body the server reads, as kube-apiserver's `MaxRequestBodyBytes` (3 MiB).
pub const BODY_BYTES_MAX: usize = 3 * 1024 * 1024;

/// How long a client may take to send a request's headers. hyper counts it from when the
/// connection starts waiting for the next request, so a keep-alive connection idle this long is
/// closed too: a client may send a request on a pooled connection just as the server closes it,
/// and that request fails at once (swarm seed 109 met this). kube-apiserver closes idle
/// connections after 90 s (and allows 32 s for headers), racing clients' 90 s pool expiry the
/// same way; 30 s makes the race more frequent here, never different in kind.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to send a request's body; the real server's request timeout.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How many watch chunks may wait for a slow reader before the watch stops reading the history.
const WATCH_CHUNKS_QUEUED_MAX: usize = 64;

/// How many bytes of watch events may wait for one slow reader. The events themselves are shared
/// with the history and every other watcher; this bounds what a reader that has stopped reading
/// keeps alive once the history has moved on.
const WATCH_BYTES_QUEUED_MAX: usize = 8 * 1024 * 1024;

/// How long a watch's byte budget may stay full before the watch is closed.
const SLOW_WATCHER_GRACE: Duration = Duration::from_secs(5);

/// The response body: a whole JSON document, or a watch stream.
pub type Body = BoxBody<Bytes, Infallible>;

/// Where the server's wall-clock time comes from (for `creationTimestamp` and table ages).
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The host's clock: for the standalone server.
    System,
    /// Simulated time since the simulation started, added to `epoch`: for turmoil hosts.
    Simulated {
        /// The wall-clock time at simulated time zero.
        epoch: SystemTime,
    },
}

impl Clock {
    /// The current wall-clock time.
    pub fn now(self) -> SystemTime {
        match self {
            // The standalone server runs in the real world; this is its only wall-clock read.
            #[allow(clippy::disallowed_methods)]
            Clock::System => SystemTime::now(),
            Clock::Simulated { epoch } => epoch + turmoil::sim_elapsed().unwrap_or_default(),
        }
    }
}

/// Settings of one server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// The seed of the fault decisions.
    pub seed: u64,
    /// Where time comes from.
    pub clock: Clock,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// How long a watch without `timeoutSeconds` lasts.
    pub watch_timeout_default: Duration,
    /// How many watch events the store keeps before compacting.
    pub events_max: usize,
    /// Record commits for [`ApiServer::take_commits`].
    pub record_commits: bool,
    /// The host names requests may be addressed to, in their `Host` header and, from a browser,
    /// their `Origin`; `None` accepts any (the simulator's hosts). A web page the user opens can
    /// make the browser send requests to a loopback server, with a foreign `Origin` or, after DNS
    /// rebinding, a foreign `Host`: both are refused.
    pub hosts: Option<Vec<String>>,
    /// When the cluster was made (RFC 3339): the default namespaces' creationTimestamp. `None`:
    /// now. A restored store passes its first start's, so its first revisions are the same.
    pub created_at: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
            seed: 0,
            clock: Clock::System,
            bookmark_interval: Duration::from_secs(60),
            watch_timeout_default: Duration::from_secs(1800),
            events_max: super::store::EVENTS_MAX_DEFAULT,
            record_commits: false,
            hosts: None,
            created_at: None,
        }
    }
}

struct State {
    store: Store,
    faults: Faults,
    rng: ChaCha8Rng,
}

/// What a `GET .../pods/{name}/log` asks of the kubelet.
#[derive(Clone, Debug)]
pub struct LogRequest<'a> {
    /// The pod's namespace.
    pub namespace: &'a str,
    /// The pod's name.
    pub pod: &'a str,
    /// The pod's uid: a pod of the same name made again is another pod.
    pub uid: &'a str,
    /// The container.
    pub container: &'a str,
    /// The output of the container's previous run (`kubectl logs --previous`).
    pub previous: bool,
}

/// The kubelet's side of the `log` subresource: the output asked for, or why there is none
/// (answered as 400 Bad Request, as the real kubelet's refusals are).
pub type LogSource = Arc<dyn Fn(&LogRequest<'_>) -> Result<Vec<u8>, String> + Send + Sync>;

/// Where commits go before their answers: called with each write's commits, in revision order,
/// under the store's lock (so nothing reads a commit before it is journaled). An error stops the
/// server: every request after it fails, so nothing unrecorded is ever seen.
pub type Journal = Box<dyn FnMut(Vec<Commit>) -> std::io::Result<()> + Send>;

#[derive(Default)]
struct JournalState {
    write: Option<Journal>,
    /// Why the journal failed, once it has.
    failed: Option<String>,
}

struct Inner {
    state: Mutex<State>,
    /// Where pods' logs come from: the kubelet of the local cluster, once it runs.
    logs: Mutex<Option<LogSource>>,
    /// The journal, if any. Locked only with the state locked first.
    journal: Mutex<JournalState>,
    config: ServerConfig,
    /// The latest revision, for watches to wait on.
    revision: watch::Sender<u64>,
    /// Bumped by a restart: every connection and watch of an older generation is dropped.
    generation: watch::Sender<u64>,
    /// Every reset so far: the identity prefixes whose connections were reset, in order (a
    /// connection checks every one since it last looked, so resets in quick succession are
    /// all seen).
    resets: watch::Sender<Vec<String>>,
}

/// A simulated Kubernetes API server: cheap to clone, every clone is the same server.
///
/// Must be served from within a tokio runtime (a turmoil host's, or a real one).
#[derive(Clone)]
pub struct ApiServer {
    inner: Arc<Inner>,
}

/// Returned by the service to make hyper close the connection without answering (an ambiguous
/// commit whose response is lost).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub struct ConnectionDropped;

impl ApiServer {
    /// A server with an empty store (plus the default namespaces) and no faults.
    pub fn new(config: ServerConfig) -> ApiServer {
        let created_at = config
            .created_at
            .clone()
            .unwrap_or_else(|| rfc3339(config.clock.now()));
        let mut store = Store::new_at(&created_at).with_events_max(config.events_max);
        if config.record_commits {
            store = store.with_commit_record();
        }
        let revision = store.revision();
        ApiServer {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    store,
                    faults: Faults::none(),
                    rng: ChaCha8Rng::seed_from_u64(config.seed),
                }),
                journal: Mutex::new(JournalState::default()),
                logs: Mutex::new(None),
                config,
                revision: watch::Sender::new(revision),
                generation: watch::Sender::new(0),
                resets: watch::Sender::new(Vec::new()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug that already failed the run; keep serving.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replace the injected faults; refused (with the reason) if a setting is out of range.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        self.state().faults = faults;
        Ok(())
    }

    /// The faults now in force.
    pub fn faults(&self) -> Faults {
        self.state().faults.clone()
    }

    /// Compact the watch history up to the current revision; returns that revision.
    pub fn compact(&self) -> u64 {
        let mut state = self.state();
        let revision = state.store.revision();
        state.store.compact(revision);
        revision
    }

    /// Drop every connection and watch, as an API server restart does; the store survives.
    ///
    /// The restarted server's watch cache starts from a fresh list, so a watch resumed from any
    /// earlier revision gets 410 Expired, as after a real API server restart.
    pub fn restart(&self) {
        self.compact();
        self.inner.generation.send_modify(|g| *g += 1);
    }

    /// Reset the connections of every client whose identity (User-Agent) starts with `prefix`,
    /// as a middlebox or a kernel resetting them would: their requests in flight and their
    /// watches end, and the clients must connect again. Other clients are untouched.
    pub fn reset_connections(&self, prefix: &str) {
        self.inner
            .resets
            .send_modify(|resets| resets.push(prefix.to_owned()));
    }

    /// The current revision.
    pub fn revision(&self) -> u64 {
        self.state().store.revision()
    }

    /// The commits since the last call (only when [`ServerConfig::record_commits`] is set).
    pub fn take_commits(&self) -> Vec<Commit> {
        self.state().store.take_commits()
    }

    /// Run `f` on the store directly (for tests and harness setup); watches are told of writes.
    ///
    /// # Panics
    /// If the journal fails to take the writes: harness setup has no client to tell.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut state = self.state();
        let result = f(&mut state.store);
        let journaled = self.journal(&mut state.store);
        drop(state);
        if let Err(error) = journaled {
            panic!(
                "the journal refused the harness's writes: {}",
                error.message
            );
        }
        self.notify();
        result
    }

    /// Serve pods' logs from `source` (the local cluster's kubelet).
    pub fn set_log_source(&self, source: LogSource) {
        *self.inner.logs.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// `GET .../pods/{name}/log`: the pod's container output, from the log source. `container`
    /// may be left out for a pod of one container; `previous` and `tailLines` are honoured;
    /// `follow` answers with the output so far (the stream is not kept open).
    fn pod_log(&self, request: &ResourceRequest) -> Result<Response<Body>, ApiError> {
        let route = &request.route;
        let name = route.name.as_deref().unwrap_or("");
        let namespace = route.namespace.as_deref().unwrap_or("");
        let pod = self
            .state()
            .store
            .get(&ObjectKey::new(Resource::Pod, namespace, name))?;
        let containers: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let container = match request.query.get("container") {
            Some(container) if !container.is_empty() => {
                if !containers.contains(&container) {
                    return Err(ApiError::bad_request(format!(
                        "container {container} is not valid for pod {name}"
                    )));
                }
                container
            }
            _ if containers.len() == 1 => containers[0],
            _ => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                )));
            }
        };
        if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
            return Err(ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let source = self
            .inner
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(source) = source else {
            return Err(ApiError::bad_request(format!(
                "no kubelet serves the logs of pod {name}: start the server with --cluster to run pods"
            )));
        };
        let output = source(&LogRequest {
            namespace,
            pod: name,
            uid: metadata_str(&pod, "uid"),
            container,
            previous: request.query.flag("previous"),
        })
        .map_err(ApiError::bad_request)?;
        let output = match request.query.int("tailLines")? {
            Some(tail) if tail >= 0 => tail_lines(&output, tail as usize),
            _ => output,
        };
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from(output)).boxed())
            .expect("a valid response"))
    }

    /// Send every commit to `journal` before its request is answered, in revision order, so a
    /// write whose answer a client saw is in the journal (`khaos serve --history`). Commits are
    /// recorded only when [`ServerConfig::record_commits`] is set.
    pub fn set_journal(&self, journal: Journal) {
        self.journal_state().write = Some(journal);
    }

    fn journal_state(&self) -> MutexGuard<'_, JournalState> {
        self.inner.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand `store`'s new commits to the journal; the caller holds the state lock, so no request
    /// can read them before they are written. A failure is kept: the server stops.
    fn journal(&self, store: &mut Store) -> Result<(), ApiError> {
        let mut journal = self.journal_state();
        if let Some(failed) = &journal.failed {
            return Err(journal_failed(failed));
        }
        let Some(write) = journal.write.as_mut() else {
            return Ok(());
        };
        let commits = store.take_commits();
        if commits.is_empty() {
            return Ok(());
        }
        write(commits).map_err(|error| {
            let failed = error.to_string();
            let answer = journal_failed(&failed);
            journal.failed = Some(failed);
            answer
        })
    }

    fn notify(&self) {
        let revision = self.state().store.revision();
        self.inner.revision.send_if_modified(|r| {
            let changed = *r != revision;
            *r = revision;
            changed
        });
    }

    /// Serve HTTP/1.1 on one connection until the peer closes it or the server restarts.
    pub async fn serve_connection<I>(&self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let mut generation = self.inner.generation.subscribe();
        let mut resets = self.inner.resets.subscribe();
        let mut resets_seen = resets.borrow_and_update().len();
        // Who is on this connection: the identity of its latest request.
        let client: Arc<Mutex<String>> = Arc::default();
        let server = self.clone();
        let seen = Arc::clone(&client);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            if let Some(agent) = request.headers().get(header::USER_AGENT) {
                *seen.lock().expect("not poisoned") = agent.to_str().unwrap_or("").to_owned();
            }
            server.clone().handle(request)
        });
        let simulated = matches!(self.inner.config.clock, Clock::Simulated { .. });
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            // A client that sends part of its headers and stalls is dropped, as a real server does.
            .header_read_timeout(HEADER_READ_TIMEOUT)
            // hyper's Date header reads the wall clock: off inside a simulation.
            .auto_date_header(!simulated)
            .serve_connection(io, service);
        tokio::pin!(connection);
        loop {
            tokio::select! {
                biased;
                _ = generation.changed() => return,
                Ok(()) = resets.changed() => {
                    let reset = {
                        let all = resets.borrow_and_update();
                        let client = client.lock().expect("not poisoned");
                        let hit = all[resets_seen..].iter().any(|p| client.starts_with(p.as_str()));
                        resets_seen = all.len();
                        hit
                    };
                    if reset {
                        return;
                    }
                }
                _ = &mut connection => return,
            }
        }
    }

    /// Answer one request.
    pub async fn handle(
        self,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, ConnectionDropped> {
        let (parts, body) = request.into_parts();
        let body = Limited::new(body, BODY_BYTES_MAX);
        let body = async move {
            let Ok(collected) = tokio::time::timeout(BODY_READ_TIMEOUT, body.collect()).await
            else {
                return Err(ApiError::timeout());
            };
            match collected {
                Ok(collected) => Ok(collected.to_bytes()),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    Err(ApiError::too_large(BODY_BYTES_MAX))
                }
                Err(error) => Err(ApiError::bad_request(format!(
                    "reading the request body: {error}"
                ))),
            }
        };
        self.respond(parts.method, parts.uri, parts.headers, body)
            .await
    }

    /// Answer one request whose body is already read (for tests, fuzzing and embedding).
    pub async fn handle_bytes(
        self,
        request: Request<Bytes>,
    ) -> Result<Response<Body>, ConnectionDropped> {
        let (parts, body) = request.into_parts();
        let body = async move {
            if body.len() > BODY_BYTES_MAX {
                Err(ApiError::too_large(BODY_BYTES_MAX))
            } else {
                Ok(body)
            }
        };
        self.respond(parts.method, parts.uri, parts.headers, body)
            .await
    }

    async fn respond(
        self,
        method: Method,
        uri: http::Uri,
        headers: HeaderMap,
        body: impl Future<Output = Result<Bytes, ApiError>>,
    ) -> Result<Response<Body>, ConnectionDropped> {
        if let Some(hosts) = &self.inner.config.hosts
            && let Err(error) = addressed_here(&headers, uri.authority(), hosts)
        {
            return Ok(error_response(&error));
        }
        if let Some(token) = &self.inner.config.token
            && !bearer_matches(&headers, token)
        {
            return Ok(error_response(&ApiError::unauthorized()));
        }
        if let Some(failed) = &self.journal_state().failed {
            return Ok(error_response(&journal_failed(failed)));
        }
        let path = uri.path();
        let query = Query::parse(uri.query().unwrap_or(""));
        if matches!(path, "/healthz" | "/livez" | "/readyz") {
            return Ok(text_response(StatusCode::OK, "ok"));
        }
        if path == "/" && method == Method::GET {
            let paths = [
                "/api",
                "/api/v1",
                "/apis",
                "/apis/apps",
                "/apis/apps/v1",
                "/apis/coordination.k8s.io",
                "/apis/coordination.k8s.io/v1",
                "/apis/events.k8s.io",
                "/apis/events.k8s.io/v1",
                "/healthz",
                "/khaos/v1/faults",
                "/khaos/v1/reset",
                "/khaos/v1/state",
                "/livez",
                "/openapi/v3",
                "/readyz",
                "/version",
            ];
            return Ok(json_response(StatusCode::OK, &json!({ "paths": paths })));
        }
        if let Some(admin) = path.strip_prefix("/khaos/v1/") {
            // A browser sends a cross-site POST without asking first only with a form's or
            // text's content type; a JSON one it must ask about, and the server never agrees.
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if method != Method::GET
                && content_type.split(';').next().unwrap_or("").trim() != "application/json"
            {
                return Ok(error_response(&ApiError::unsupported_media_type(
                    content_type,
                    &[
                        "application/json (admin requests take a JSON body: curl -H 'Content-Type: application/json' -d '{}' ...)",
                    ],
                )));
            }
            let body = match body.await {
                Ok(body) => body,
                Err(error) => return Ok(error_response(&error)),
            };
            if method != Method::GET && serde_json::from_slice::<Value>(&body).is_err() {
                return Ok(error_response(&ApiError::bad_request(
                    "admin requests take a JSON body (`{}` for none)",
                )));
            }
            return Ok(self.admin(&method, admin, &query, &body));
        }
        if let Some(document) = discovery::document(path) {
            return Ok(if method == Method::GET {
                json_response(StatusCode::OK, &document)
            } else {
                error_response(&ApiError::method_not_allowed())
            });
        }
        let Some(route) = Route::parse(path) else {
            return Ok(error_response(&ApiError::path_not_found()));
        };
        let verb = match (&method, route.subresource) {
            (_, None) => None,
            (&Method::GET, Some(_)) => Some(RequestVerb::Get),
            (&Method::PUT, Some(Subresource::Status | Subresource::Scale)) => {
                Some(RequestVerb::Update)
            }
            (&Method::PATCH, Some(Subresource::Status | Subresource::Scale)) => {
                Some(RequestVerb::Patch)
            }
            (&Method::POST, Some(Subresource::Eviction)) => Some(RequestVerb::Create),
            _ => return Ok(error_response(&ApiError::method_not_allowed())),
        };
        let verb = match (&method, route.name.is_some()) {
            _ if verb.is_some() => verb.expect("matched"),
            // The legacy single-object watch: a watch of the collection narrowed to the name.
            (&Method::GET, true) if query.flag("watch") => RequestVerb::Watch,
            (&Method::GET, true) => RequestVerb::Get,
            (&Method::GET, false) if query.flag("watch") => RequestVerb::Watch,
            (&Method::GET, false) => RequestVerb::List,
            (&Method::POST, false) => RequestVerb::Create,
            (&Method::PUT, true) => RequestVerb::Update,
            (&Method::PATCH, true) => RequestVerb::Patch,
            (&Method::DELETE, true) => RequestVerb::Delete,
            _ => return Ok(error_response(&ApiError::method_not_allowed())),
        };
        let client = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_owned();
        let decision = {
            let mut state = self.state();
            let State { faults, rng, .. } = &mut *state;
            faults::decide(
                faults,
                rng,
                &RequestInfo {
                    verb,
                    client: &client,
                    name: route.name.as_deref(),
                },
            )
        };
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        let lose = match decision.action {
            Action::Proceed => None,
            Action::Fail(error) => return Ok(error_response(&error)),
            Action::Hang => {
                tokio::time::sleep(Duration::from_millis(HANG_MS_MAX)).await;
                return Ok(error_response(&ApiError::timeout()));
            }
            Action::CommitThenLose(outcome) => Some(outcome),
        };
        let body = if verb.is_write() {
            match body.await {
                Ok(body) => body,
                Err(error) => return Ok(error_response(&error)),
            }
        } else {
            Bytes::new()
        };
        let include_object = match table::IncludeObject::parse(query.get("includeObject")) {
            Ok(include_object) => include_object,
            Err(message) => return Ok(error_response(&ApiError::bad_request(message))),
        };
        let request = ResourceRequest {
            verb,
            route,
            query,
            client,
            include_object,
            wants_table: headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(table::wants_table),
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
        };
        if request.route.subresource == Some(Subresource::Log) {
            return Ok(match self.pod_log(&request) {
                Ok(response) => response,
                Err(error) => error_response(&error),
            });
        }
        if verb == RequestVerb::Watch {
            return Ok(match self.watch(request) {
                Ok(response) => response,
                Err(error) => error_response(&error),
            });
        }
        let (result, journaled) = self.execute(&request, &body);
        self.notify();
        if let Err(error) = journaled {
            return Ok(error_response(&error));
        }
        Ok(match (result, lose) {
            (Ok(_), Some(AmbiguousOutcome::ConnectionLost)) => return Err(ConnectionDropped),
            (Ok(_), Some(AmbiguousOutcome::Timeout)) => error_response(&ApiError::timeout()),
            (Ok(_), Some(AmbiguousOutcome::InternalError)) => {
                error_response(&ApiError::internal("etcdserver: leader changed"))
            }
            (Ok((code, value)), None) => json_response(code, &value),
            (Err(error), _) => error_response(&error),
        })
    }

    /// Run a non-watch request against the store. A dry-run create or update answers as
    /// kube-apiserver's does: nothing reached storage, so the object has no new resourceVersion
    /// (a create none at all, an update the live object's), and a create's uid is not the one
    /// the real create will get.
    ///
    /// The write's commits are journaled before the store's lock is let go (the second result):
    /// no other request can see a commit the journal does not hold.
    fn execute(
        &self,
        request: &ResourceRequest,
        body: &[u8],
    ) -> (Result<(StatusCode, Value), ApiError>, Result<(), ApiError>) {
        let mut state = self.state();
        let result = self.execute_dry_or_not(&mut state, request, body);
        let journaled = self.journal(&mut state.store);
        (result, journaled)
    }

    fn execute_dry_or_not(
        &self,
        state: &mut State,
        request: &ResourceRequest,
        body: &[u8],
    ) -> Result<(StatusCode, Value), ApiError> {
        let dry = matches!(
            request.verb,
            RequestVerb::Create | RequestVerb::Update | RequestVerb::Patch
        ) && dry_run(request, body).unwrap_or(false);
        if !dry {
            return self.execute_in_store(state, request, body);
        }
        let live_rv = request.route.name.as_deref().and_then(|name| {
            let key = ObjectKey::new(
                request.route.resource.stored(),
                request.route.namespace.as_deref().unwrap_or(""),
                name,
            );
            let object = state.store.get(&key).ok()?;
            Some(metadata_str(&object, "resourceVersion").to_owned())
        });
        let mut result = self.execute_in_store(state, request, body);
        if let Ok((_, answer)) = &mut result
            && let Some(metadata) = answer["metadata"].as_object_mut()
        {
            match live_rv {
                Some(rv) => {
                    metadata.insert("resourceVersion".into(), json!(rv));
                }
                None => {
                    metadata.remove("resourceVersion");
                    let uid = metadata_str(answer, "uid").to_owned();
                    answer["metadata"]["uid"] = json!(dry_run_uid(&uid));
                }
            }
        }
        result
    }

    /// Run a request in the store, in the schema its resource is served in: the store sees the
    /// stored schema only ([`convert`]).
    fn execute_in_store(
        &self,
        state: &mut State,
        request: &ResourceRequest,
        body: &[u8],
    ) -> Result<(StatusCode, Value), ApiError> {
        self.execute_stored(state, request, body)
            .map_err(|error| convert::error_to_served(request.route.resource, error))
    }

    /// [`ApiServer::execute_in_store`] but for the names in its errors.
    fn execute_stored(
        &self,
        state: &mut State,
        request: &ResourceRequest,
        body: &[u8],
    ) -> Result<(StatusCode, Value), ApiError> {
        let now = rfc3339(self.inner.config.clock.now());
        let ctx = WriteContext {
            client: &request.client,
            now: &now,
        };
        let route = &request.route;
        let served = route.resource;
        let resource = served.stored();
        let dry_run = dry_run(request, body)?;
        let State { store, faults, rng } = state;
        // A dry run works on a copy, so it answers as the real write would and changes nothing.
        let mut scratch;
        let store: &mut Store = if dry_run && request.verb.is_write() {
            scratch = store.clone();
            &mut scratch
        } else {
            store
        };
        let key = || {
            ObjectKey::new(
                resource,
                route.namespace.as_deref().unwrap_or(""),
                route.name.as_deref().unwrap_or(""),
            )
        };
        if let Some(subresource) = route.subresource {
            return subresource_request(store, &ctx, request, subresource, &key(), body);
        }
        match request.verb {
            RequestVerb::Get => {
                let read_at = ReadAt::parse(request.query.get("resourceVersion").unwrap_or(""))?;
                if let ReadAt::Revision(revision) = read_at {
                    not_ahead(revision, store)?;
                }
                let object = match cached_read(read_at, faults, rng, store) {
                    Some(stale) => store.get_at(&key(), stale)?,
                    None => store.get(&key())?,
                };
                let code = StatusCode::OK;
                if request.wants_table {
                    let now_s = unix_seconds(self.inner.config.clock.now());
                    let rv = metadata_str(&object, "resourceVersion").to_owned();
                    return Ok((
                        code,
                        table::table(
                            served,
                            &[(*object).clone()],
                            &rv,
                            now_s,
                            request.include_object,
                        ),
                    ));
                }
                Ok((code, convert::to_served(served, (*object).clone())))
            }
            RequestVerb::List => {
                let filter = request.filter()?;
                let options = ListOptions::parse(&request.query)?;
                let (listing, after) = match &options.continue_token {
                    Some(token) => {
                        let (revision, after) = parse_continue(token)?;
                        let listing = store.list_at(&filter, revision).map_err(|_| {
                            ApiError::new(super::status::Reason::Expired, "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
                        })?;
                        (listing, Some(after))
                    }
                    None => match (options.read_at, options.version_match) {
                        (ReadAt::Revision(revision), Some(VersionMatch::Exact)) => {
                            not_ahead(revision, store)?;
                            (store.list_at(&filter, revision)?, None)
                        }
                        (ReadAt::Revision(revision), _) => {
                            not_ahead(revision, store)?;
                            (store.list(&filter), None)
                        }
                        (read_at, _) => match cached_read(read_at, faults, rng, store) {
                            Some(stale) => (store.list_at(&filter, stale)?, None),
                            None => (store.list(&filter), None),
                        },
                    },
                };
                Ok((
                    StatusCode::OK,
                    self.render_list(
                        request,
                        listing,
                        after.as_deref(),
                        options.limit.unwrap_or(0),
                    ),
                ))
            }
            RequestVerb::Create => {
                check_field_validation(&request.query, "CreateOptions")?;
                let object = parse_object(body, served, &request.content_type)?;
                let object = convert::body_to_stored(served, object)?;
                if served == Resource::EventsK8sIo {
                    let causes = validation::validate_events_create(
                        &object,
                        route.namespace.as_deref().unwrap_or(""),
                    );
                    if !causes.is_empty() {
                        let name = metadata_str(&object, "name");
                        return Err(ApiError::invalid(resource, name, &causes));
                    }
                }
                let created = store.create(
                    &ctx,
                    resource,
                    route.namespace.as_deref().unwrap_or(""),
                    object,
                )?;
                Ok((
                    StatusCode::CREATED,
                    convert::to_served(served, (*created).clone()),
                ))
            }
            RequestVerb::Update => {
                check_field_validation(&request.query, "UpdateOptions")?;
                let object = parse_object(body, served, &request.content_type)?;
                let object = convert::body_to_stored(served, object)?;
                let existed = store.get(&key()).is_ok();
                let replaced = store.replace(&ctx, &key(), object)?;
                let code = if existed {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                Ok((code, convert::to_served(served, (*replaced).clone())))
            }
            RequestVerb::Patch => {
                check_field_validation(&request.query, "PatchOptions")?;
                let patch_type = match request.content_type.split(';').next().unwrap_or("").trim() {
                    "application/json-patch+json" => PatchType::Json,
                    "application/merge-patch+json" => PatchType::Merge,
                    "application/strategic-merge-patch+json" => PatchType::StrategicMerge,
                    "application/apply-patch+yaml" | "application/apply-patch+json" => {
                        PatchType::Apply
                    }
                    other => {
                        return Err(ApiError::unsupported_media_type(
                            other,
                            &[
                                "application/json-patch+json",
                                "application/merge-patch+json",
                                "application/apply-patch+yaml",
                                "application/strategic-merge-patch+json",
                            ],
                        ));
                    }
                };
                // An apply patch may be YAML (JSON is YAML too); the others are JSON.
                let patch: Value = match (serde_json::from_slice(body), patch_type) {
                    (Ok(patch), _) => patch,
                    (Err(_), PatchType::Apply) => serde_yaml_ng::from_slice(body)
                        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
                    (Err(e), _) => {
                        return Err(ApiError::bad_request(format!("error decoding patch: {e}")));
                    }
                };
                if patch_type == PatchType::Apply
                    && request.query.get("fieldManager").is_none_or(str::is_empty)
                {
                    return Err(ApiError::bad_request(
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                    ));
                }
                let patch = match patch_type {
                    PatchType::Json => convert::json_patch_to_stored(served, patch)?,
                    _ => convert::body_to_stored(served, patch)?,
                };
                let existed = store.get(&key()).is_ok();
                let patched = store.patch(&ctx, &key(), patch_type, patch)?;
                let code = if existed {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                Ok((code, convert::to_served(served, (*patched).clone())))
            }
            RequestVerb::Delete => {
                let grace_in_query = request.query.int("gracePeriodSeconds")?;
                let options: Value = if body.is_empty() {
                    json!({})
                } else {
                    serde_json::from_slice(body).map_err(|e| {
                        ApiError::bad_request(format!("error decoding DeleteOptions: {e}"))
                    })?
                };
                let preconditions = Preconditions {
                    uid: options["preconditions"]["uid"].as_str().map(str::to_owned),
                    resource_version: options["preconditions"]["resourceVersion"]
                        .as_str()
                        .map(str::to_owned),
                };
                let policy = options["propagationPolicy"]
                    .as_str()
                    .or(request.query.get("propagationPolicy"))
                    .unwrap_or("Background");
                let propagation = match policy {
                    "Background" => Propagation::Background,
                    "Foreground" => Propagation::Foreground,
                    "Orphan" => Propagation::Orphan,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                        )));
                    }
                };
                let grace = options["gracePeriodSeconds"].as_i64().or(grace_in_query);
                let deleted = match store.delete_graceful(
                    &ctx,
                    &key(),
                    &preconditions,
                    propagation,
                    grace,
                )? {
                    // A pod's delete answers with the pod (its strategy returns the deleted
                    // object), as a graceful one does.
                    Deletion::Removed(deleted) if resource == Resource::Pod => {
                        return Ok((StatusCode::OK, (*deleted).clone()));
                    }
                    Deletion::Removed(deleted) => deleted,
                    // A graceful deletion answers with the object, marked, as the real
                    // server does.
                    Deletion::Pending(marked) => {
                        return Ok((StatusCode::OK, (*marked).clone()));
                    }
                };
                if resource == Resource::Namespace {
                    return Ok((StatusCode::OK, (*deleted).clone()));
                }
                Ok((
                    StatusCode::OK,
                    status::delete_success(served, &key().name, metadata_str(&deleted, "uid")),
                ))
            }
            RequestVerb::Watch => unreachable!("watches are streamed by ApiServer::watch"),
        }
    }

    fn render_list(
        &self,
        request: &ResourceRequest,
        listing: Listing,
        after: Option<&str>,
        limit: usize,
    ) -> Value {
        let resource = request.route.resource;
        let items: Vec<&Arc<Value>> = listing
            .items
            .iter()
            .filter(|o| after.is_none_or(|after| position_after(o, after)))
            .collect();
        let (page, more) = if limit > 0 && items.len() > limit {
            (&items[..limit], true)
        } else {
            (&items[..], false)
        };
        let mut metadata = json!({ "resourceVersion": listing.revision.to_string() });
        if more {
            let last = page.last().expect("a page before more items is not empty");
            metadata["continue"] = json!(format_continue(listing.revision, &object_position(last)));
            // Only an unfiltered list knows how many remain, so only it says so (as real).
            if request.query.get("labelSelector").is_none_or(str::is_empty)
                && request.query.get("fieldSelector").is_none_or(str::is_empty)
            {
                metadata["remainingItemCount"] = json!(items.len() - page.len());
            }
        }
        if request.wants_table {
            let now_s = unix_seconds(self.inner.config.clock.now());
            let objects: Vec<Value> = page.iter().map(|o| (***o).clone()).collect();
            let mut table = table::table(
                resource,
                &objects,
                &listing.revision.to_string(),
                now_s,
                request.include_object,
            );
            table["metadata"] = metadata;
            return table;
        }
        // A real server leaves kind and apiVersion off list items; the list carries them.
        let items: Vec<Value> = page
            .iter()
            .map(|o| {
                let mut item = convert::to_served(resource, (***o).clone());
                if let Some(fields) = item.as_object_mut() {
                    fields.remove("kind");
                    fields.remove("apiVersion");
                }
                item
            })
            .collect();
        json!({
            "kind": resource.list_kind(),
            "apiVersion": resource.api_version(),
            "metadata": metadata,
            "items": items,
        })
    }

    /// Start a watch: the response streams JSON lines from a task that follows the history.
    fn watch(&self, request: ResourceRequest) -> Result<Response<Body>, ApiError> {
        let filter = request.filter()?;
        let options = ListOptions::parse(&request.query)?;
        let timeout = options
            .timeout_seconds
            .map_or(self.inner.config.watch_timeout_default, Duration::from_secs);
        let bookmarks_asked = options.allow_watch_bookmarks;
        let send_initial_events = options.send_initial_events == Some(true);
        let (start, initial, plan) = {
            let mut state = self.state();
            let State { store, faults, rng } = &mut *state;
            let plan = faults::watch_plan(faults, rng);
            let (start, initial) = match (options.read_at, options.send_initial_events) {
                // No initial events and no revision: from now.
                (ReadAt::Latest | ReadAt::Any, Some(false)) => (Ok(store.revision()), Vec::new()),
                // The legacy form (no revision, or "0") and the streaming list begin with the
                // state as ADDED events.
                (ReadAt::Latest | ReadAt::Any, _) | (_, Some(true)) => {
                    let listing = match cached_read(options.read_at, faults, rng, store) {
                        Some(stale) => store.list_at(&filter, stale)?,
                        None => store.list(&filter),
                    };
                    let initial = listing
                        .items
                        .into_iter()
                        .map(|object| WatchEvent {
                            event_type: EventType::Added,
                            object,
                            revision: listing.revision,
                            line: EncodedLine::default(),
                        })
                        .collect();
                    (Ok(listing.revision), initial)
                }
                (ReadAt::Revision(revision), _) => {
                    not_ahead(revision, store)?;
                    // What happened since, read now under the same lock: once the client has its
                    // answer the watch is established, and a compaction right after must not
                    // expire it (as it would if the watcher's first scan ran later, on another
                    // thread).
                    match store.events_after(revision, &filter) {
                        Ok((events, through)) => (Ok(through), events),
                        Err(error) => (Err(error), Vec::new()),
                    }
                }
            };
            (start, initial, plan)
        };
        let (tx, rx) = mpsc::channel::<Bytes>(WATCH_CHUNKS_QUEUED_MAX);
        let budget = Arc::new(tokio::sync::Semaphore::new(WATCH_BYTES_QUEUED_MAX));
        let watcher = Watcher {
            server: self.clone(),
            served: request.route.resource,
            filter,
            tx,
            budget: Arc::clone(&budget),
            table: request
                .wants_table
                .then_some((request.include_object, true)),
            bookmarks: bookmarks_asked && plan.bookmarks,
            delay: plan.delay,
            events_left: plan.close_after_events.map(|n| n as usize),
        };
        tokio::spawn(watcher.run(start, initial, send_initial_events, timeout));
        let mut rx = rx;
        let stream = futures::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|chunk| {
                chunk.map(|chunk| {
                    budget.add_permits(chunk_cost(&chunk) as usize);
                    Ok(Frame::data(chunk))
                })
            })
        });
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .expect("static headers are valid"))
    }

    fn admin(&self, method: &Method, path: &str, query: &Query, body: &[u8]) -> Response<Body> {
        match (method, path) {
            (&Method::GET, "faults") => json_response(
                StatusCode::OK,
                &serde_json::to_value(self.faults()).expect("faults serialise"),
            ),
            (&Method::PUT, "faults") => {
                let faults: Faults = match serde_json::from_slice(body) {
                    Ok(faults) => faults,
                    Err(error) => {
                        return error_response(&ApiError::bad_request(format!(
                            "faults: {error}; GET /khaos/v1/faults shows the format"
                        )));
                    }
                };
                match self.set_faults(faults) {
                    Ok(()) => json_response(
                        StatusCode::OK,
                        &serde_json::to_value(self.faults()).expect("faults serialise"),
                    ),
                    Err(error) => error_response(&ApiError::new(
                        super::status::Reason::Invalid,
                        format!("faults: {error}"),
                    )),
                }
            }
            (&Method::POST, "compact") => json_response(
                StatusCode::OK,
                &json!({ "compactedRevision": self.compact() }),
            ),
            (&Method::POST, "restart") => {
                // Answer first, then drop every connection (this one included) a moment later.
                let server = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    server.restart();
                });
                json_response(StatusCode::OK, &json!({ "restarting": true }))
            }
            (&Method::POST, "reset") => {
                let prefix = query.get("client").unwrap_or_default().to_owned();
                if prefix.is_empty() {
                    return error_response(&ApiError::bad_request(
                        "reset: say whose connections with ?client=PREFIX (a User-Agent prefix)"
                            .to_owned(),
                    ));
                }
                // Answer first, then reset (this connection may be one of them).
                let server = self.clone();
                let reset = prefix.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    server.reset_connections(&reset);
                });
                json_response(StatusCode::OK, &json!({ "resetting": prefix }))
            }
            (&Method::GET, "state") => {
                let state = self.state();
                json_response(
                    StatusCode::OK,
                    &json!({
                        "revision": state.store.revision(),
                        "compactedRevision": state.store.compacted_revision(),
                        "generation": *self.inner.generation.borrow(),
                    }),
                )
            }
            (_, "faults" | "compact" | "restart" | "reset" | "state") => {
                error_response(&ApiError::method_not_allowed())
            }
            _ => error_response(&ApiError::path_not_found()),
        }
    }
}

/// One watch stream's task.
struct Watcher {
    server: ApiServer,
    /// The resource as the request named it; the filter holds the stored one.
    served: Resource,
    filter: WatchFilter,
    tx: mpsc::Sender<Bytes>,
    /// Bytes the reader may still be sent before it reads: taken per chunk queued, given back
    /// as the response stream hands each chunk on.
    budget: Arc<tokio::sync::Semaphore>,
    /// `Some` when the client asked for Tables; then whether the next event is the first.
    table: Option<(table::IncludeObject, bool)>,
    bookmarks: bool,
    delay: Duration,
    events_left: Option<usize>,
}

impl Watcher {
    async fn run(
        mut self,
        start: Result<u64, ApiError>,
        initial: Vec<WatchEvent>,
        initial_end_bookmark: bool,
        timeout: Duration,
    ) {
        let mut generation = self.server.inner.generation.subscribe();
        let mut revisions = self.server.inner.revision.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = match start {
            Ok(revision) => revision,
            Err(error) => {
                self.queue(line("ERROR", &error.to_status())).await;
                return;
            }
        };
        let started = tokio::time::Instant::now();
        for event in initial {
            if !self.send(&event, started).await {
                return;
            }
        }
        if initial_end_bookmark {
            let mut bookmark = self.bookmark(last);
            bookmark["metadata"]["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
            if !self.queue(line("BOOKMARK", &bookmark)).await {
                return;
            }
        }
        let bookmark_interval = self.server.inner.config.bookmark_interval;
        let mut next_bookmark = started + bookmark_interval;
        loop {
            revisions.borrow_and_update();
            let scanned = self
                .server
                .state()
                .store
                .events_after_established(last, &self.filter);
            let seen = tokio::time::Instant::now();
            match scanned {
                Ok((events, through)) => {
                    for event in events {
                        if !self.send(&event, seen).await {
                            return;
                        }
                    }
                    // The watch stands at the revision the scan covered, matched or not, so
                    // unrelated writes and compaction behind it never expire a live watch.
                    last = through;
                }
                Err(error) => {
                    self.queue(line("ERROR", &error.to_status())).await;
                    return;
                }
            }
            if self.bookmarks && tokio::time::Instant::now() >= next_bookmark {
                // At the revision delivered through, never beyond: a client may resume from it.
                let bookmark = line("BOOKMARK", &self.bookmark(last));
                if !self.queue(bookmark).await {
                    return;
                }
                next_bookmark = tokio::time::Instant::now() + bookmark_interval;
            }
            tokio::select! {
                biased;
                _ = generation.changed() => return,
                _ = self.tx.closed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tokio::time::sleep_until(next_bookmark), if self.bookmarks => {}
                changed = revisions.changed() => if changed.is_err() { return },
            }
        }
    }

    fn bookmark(&self, revision: u64) -> Value {
        let resource = self.served;
        json!({
            "kind": resource.kind(),
            "apiVersion": resource.api_version(),
            "metadata": { "resourceVersion": revision.to_string() },
        })
    }

    /// Send one event that the watch saw at `seen`, no earlier than `seen` plus the injected
    /// delay (so queued events are not delayed once per event); false when the stream is over
    /// (reader gone, or the close fault fired).
    async fn send(&mut self, event: &WatchEvent, seen: tokio::time::Instant) -> bool {
        if self.events_left == Some(0) {
            return false;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep_until(seen + self.delay).await;
        }
        let chunk = match &mut self.table {
            Some((include_object, first)) => {
                let now_s = unix_seconds(self.server.inner.config.clock.now());
                let table =
                    table::watch_table(self.served, &event.object, now_s, *include_object, *first);
                *first = false;
                line(event.event_type.as_str(), &table)
            }
            // The one encoding every watcher of this event shares.
            None if self.served == self.filter.resource => {
                event.line.get(event.event_type, &event.object)
            }
            // A second schema's watchers are few (recorders write Events, people read them).
            None => line(
                event.event_type.as_str(),
                &convert::to_served(self.served, (*event.object).clone()),
            ),
        };
        if !self.queue(chunk).await {
            return false;
        }
        if let Some(left) = &mut self.events_left {
            *left -= 1;
        }
        true
    }

    /// Queue a chunk for the reader within the watch's byte budget and chunk count; false when
    /// the stream is over: the reader is gone, or it has left the queue full for
    /// [`SLOW_WATCHER_GRACE`], and
    /// the watch is closed as kube-apiserver closes a watcher that cannot keep up (the client
    /// resumes from the last revision it read).
    async fn queue(&mut self, chunk: Bytes) -> bool {
        let cost = chunk_cost(&chunk);
        // The byte budget and the chunk count alike: a reader that takes neither for the grace
        // is behind for good.
        let queued = async {
            self.budget.acquire_many(cost).await.ok()?.forget();
            self.tx.send(chunk).await.ok()
        };
        matches!(
            tokio::time::timeout(SLOW_WATCHER_GRACE, queued).await,
            Ok(Some(()))
        )
    }
}

/// The last `lines` lines of `output`.
fn tail_lines(output: &[u8], lines: usize) -> Vec<u8> {
    let body = output.strip_suffix(b"\n").unwrap_or(output);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(lines.saturating_sub(1))
        .map_or(0, |(i, _)| i + 1);
    if lines == 0 {
        return Vec::new();
    }
    output[start..].to_vec()
}

/// What a chunk takes of a watch's byte budget (a chunk larger than the whole budget takes all).
fn chunk_cost(chunk: &Bytes) -> u32 {
    u32::try_from(chunk.len().min(WATCH_BYTES_QUEUED_MAX)).expect("the budget fits in u32")
}

fn line(event_type: &str, object: &Value) -> Bytes {
    encode_line(event_type, object)
}

/// The host of an authority (`Host` header, or an `Origin`'s after its scheme), without its
/// port: `a.example:80` is `a.example`, `[::1]:6443` is `::1`.
fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// Refuse a request addressed to a host not served here (`Host`), or sent by a web page of
/// another origin (`Origin`): a page's origin must be this server's own, its host and port
/// those the request was addressed to (`Host`, or the URI's authority in HTTP/2), so a page
/// served from another port of loopback is as foreign as one from another site.
fn addressed_here(
    headers: &HeaderMap,
    uri_authority: Option<&http::uri::Authority>,
    hosts: &[String],
) -> Result<(), ApiError> {
    let served = |host: &str| hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
    let refuse = |what: String| {
        Err(ApiError::new(
            super::status::Reason::Forbidden,
            format!(
                "{what}; this server answers requests addressed to {} (khaos serve --allow-remote NAME serves another name)",
                hosts.join(", ")
            ),
        ))
    };
    if let Some(host) = headers.get(header::HOST) {
        let host = host.to_str().unwrap_or("");
        if !served(host_of(host)) {
            return refuse(format!("host {host:?} is not served here"));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
        let addressed = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(uri_authority.map(http::uri::Authority::as_str))
            .unwrap_or("");
        if !served(host_of(authority)) || !authority.eq_ignore_ascii_case(addressed) {
            return refuse(format!(
                "requests from the web origin {origin:?} are refused"
            ));
        }
    }
    Ok(())
}

/// Whether `Authorization` carries `token` as a bearer token (the scheme in any case, as RFC 9110
/// says it is compared), compared in time independent of where they differ.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, credentials)) = given.split_once(' ') else {
        return false;
    };
    let credentials = credentials.trim_start_matches(' ').as_bytes();
    scheme.eq_ignore_ascii_case("bearer")
        && credentials.len() == token.len()
        && credentials
            .iter()
            .zip(token.as_bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The answer of a server whose journal failed.
fn journal_failed(error: &str) -> ApiError {
    ApiError::internal(&format!(
        "the server could not record a write in its history ({error}) and has stopped serving, so that nothing unrecorded is seen: restart it (with --data-dir it resumes from what was recorded)"
    ))
}

/// A request for objects, once the path is understood.
struct ResourceRequest {
    verb: RequestVerb,
    route: Route,
    query: Query,
    client: String,
    wants_table: bool,
    include_object: table::IncludeObject,
    content_type: String,
}

impl ResourceRequest {
    fn filter(&self) -> Result<WatchFilter, ApiError> {
        let labels = LabelSelector::parse(self.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let selectable = match self.route.resource {
            Resource::Namespace => SelectableFields::Namespace,
            Resource::Event => SelectableFields::Event,
            Resource::EventsK8sIo => SelectableFields::EventsK8sIo,
            Resource::ConfigMap
            | Resource::Lease
            | Resource::Deployment
            | Resource::Pod
            | Resource::ReplicaSet => SelectableFields::ObjectMeta,
        };
        let mut field_selector = self.query.get("fieldSelector").unwrap_or("").to_owned();
        if let Some(name) = &self.route.name {
            // A watch on an object's own path watches the collection narrowed to its name.
            if !field_selector.is_empty() {
                field_selector.push(',');
            }
            field_selector.push_str(&format!("metadata.name={name}"));
        }
        let fields = FieldSelector::parse_for(&field_selector, selectable)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut namespace = self.route.namespace.clone();
        if !self.route.resource.namespaced() {
            namespace = None;
        }
        Ok(WatchFilter {
            resource: self.route.resource.stored(),
            namespace,
            labels,
            fields,
        })
    }
}

/// A parsed resource path: `/api/v1/namespaces/{ns}/configmaps/{name}` and its relatives,
/// with an object's subresource (`.../pods/{name}/log`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Route {
    resource: Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<Subresource>,
}

impl Route {
    fn parse(path: &str) -> Option<Route> {
        let segments: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, plural, name, subresource) = match rest {
            ["namespaces", namespace, plural] => (Some(*namespace), *plural, None, None),
            ["namespaces", namespace, plural, name] => {
                (Some(*namespace), *plural, Some(*name), None)
            }
            ["namespaces", namespace, plural, name, sub] => {
                (Some(*namespace), *plural, Some(*name), Some(*sub))
            }
            [plural] => (None, *plural, None, None),
            [plural, name] => (None, *plural, Some(*name), None),
            [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
            _ => return None,
        };
        // `/api/v1/namespaces/x` matches `[plural, name]`: the Namespace named x.
        let resource = Resource::from_path(group, version, plural)?;
        let subresource = match subresource {
            Some(sub) => Some(Subresource::of(resource, sub)?),
            None => None,
        };
        match (resource.namespaced(), namespace) {
            (false, Some(_)) => None,
            (_, namespace) => Some(Route {
                resource,
                namespace: namespace.map(percent_decode),
                name: name.map(percent_decode),
                subresource,
            }),
        }
    }
}

/// A request to an object's status, scale or eviction subresource (logs are served apart, by
/// [`ApiServer::pod_log`]).
fn subresource_request(
    store: &mut Store,
    ctx: &WriteContext<'_>,
    request: &ResourceRequest,
    subresource: Subresource,
    key: &ObjectKey,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let patch_type = || match request.content_type.split(';').next().unwrap_or("").trim() {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::StrategicMerge),
        other => Err(ApiError::unsupported_media_type(
            other,
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ],
        )),
    };
    let json_body = || {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))
    };
    match (subresource, request.verb) {
        (Subresource::Status, RequestVerb::Get) => Ok((StatusCode::OK, (*store.get(key)?).clone())),
        (Subresource::Status, RequestVerb::Update) => {
            let object = parse_object(body, key.resource, &request.content_type)?;
            let written = store.replace_part(ctx, key, Part::Status, object)?;
            Ok((StatusCode::OK, (*written).clone()))
        }
        (Subresource::Status, RequestVerb::Patch) => {
            let written = store.patch_part(ctx, key, Part::Status, patch_type()?, json_body()?)?;
            Ok((StatusCode::OK, (*written).clone()))
        }
        (Subresource::Scale, RequestVerb::Get) => Ok((StatusCode::OK, scale_of(&*store.get(key)?))),
        (Subresource::Scale, RequestVerb::Update | RequestVerb::Patch) => {
            let existing = store.get(key)?;
            let mut scale = scale_of(&existing);
            if request.verb == RequestVerb::Update {
                scale = json_body()?;
            } else {
                match patch_type()? {
                    PatchType::Json => {
                        let operations: json_patch::Patch = serde_json::from_value(json_body()?)
                            .map_err(|e| {
                                ApiError::bad_request(format!("error decoding patch: {e}"))
                            })?;
                        json_patch::patch(&mut scale, &operations)
                            .map_err(|e| ApiError::bad_request(format!("{e}")))?;
                    }
                    _ => json_patch::merge(&mut scale, &json_body()?),
                }
            }
            let Some(replicas) = scale["spec"]["replicas"].as_i64() else {
                return Err(ApiError::bad_request(
                    "Scale.autoscaling/v1 is invalid: spec.replicas: Required value: a whole number of replicas",
                ));
            };
            if replicas < 0 {
                return Err(ApiError::invalid(
                    key.resource,
                    &key.name,
                    &[validation::FieldError {
                        field: "spec.replicas".into(),
                        reason: validation::FIELD_VALUE_INVALID,
                        message: format!(
                            "Invalid value: {replicas}: must be greater than or equal to 0"
                        ),
                    }],
                ));
            }
            let mut object = (*existing).clone();
            object["spec"]["replicas"] = json!(replicas);
            // The Scale's resourceVersion, if it names one, is the parent's precondition.
            object["metadata"]["resourceVersion"] =
                match scale["metadata"]["resourceVersion"].as_str() {
                    Some(rv) if !rv.is_empty() => json!(rv),
                    _ => Value::Null,
                };
            let written = store.replace(ctx, key, object)?;
            Ok((StatusCode::OK, scale_of(&written)))
        }
        (Subresource::Eviction, RequestVerb::Create) => {
            let eviction = json_body()?;
            let options = &eviction["deleteOptions"];
            let preconditions = Preconditions {
                uid: options["preconditions"]["uid"].as_str().map(str::to_owned),
                resource_version: options["preconditions"]["resourceVersion"]
                    .as_str()
                    .map(str::to_owned),
            };
            let grace = options["gracePeriodSeconds"].as_i64();
            // No PodDisruptionBudgets are served, so every eviction is allowed.
            store.delete_graceful(ctx, key, &preconditions, Propagation::Background, grace)?;
            Ok((
                StatusCode::CREATED,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Success", "code": 201}),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The `autoscaling/v1` Scale of a ReplicaSet or Deployment.
fn scale_of(object: &Value) -> Value {
    let metadata = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": { "replicas": object["spec"]["replicas"].as_i64().unwrap_or(1) },
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": table::selector_string(object["spec"].get("selector")),
        },
    })
}

/// Whether a write is a dry run: `dryRun=All` in the query, or `"dryRun": ["All"]` in a delete's
/// DeleteOptions body (where kube-rs and kubectl put it). Any other value is refused, as the real
/// server refuses it, rather than silently committed.
fn dry_run(request: &ResourceRequest, body: &[u8]) -> Result<bool, ApiError> {
    let mut values: Vec<String> = request.query.all("dryRun").map(str::to_owned).collect();
    // A delete's DeleteOptions, or an eviction's (`deleteOptions`), may carry it too.
    let options = match (request.verb, request.route.subresource) {
        (RequestVerb::Delete, None) => serde_json::from_slice::<Value>(body).ok(),
        (RequestVerb::Create, Some(Subresource::Eviction)) => serde_json::from_slice::<Value>(body)
            .ok()
            .map(|eviction| eviction["deleteOptions"].clone()),
        _ => None,
    };
    if let Some(options) = options {
        values.extend(
            options["dryRun"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap_or("?").to_owned()),
        );
    }
    match values.iter().find(|v| v.as_str() != "All") {
        Some(bad) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {bad:?}: supported values: \"All\""
        ))),
        None => Ok(!values.is_empty()),
    }
}

/// A uid for a dry-run create: derived from the one the store would give (so a run replays),
/// never equal to it.
fn dry_run_uid(uid: &str) -> String {
    let fnv = |seed: u64| {
        uid.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x84222325_cbf29ce4));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// The revision a read is served at from the (possibly lagging) cache: only `resourceVersion=0`
/// reads may be stale, and only when the stale-reads fault is on.
fn cached_read(
    read_at: ReadAt,
    faults: &Faults,
    rng: &mut ChaCha8Rng,
    store: &Store,
) -> Option<u64> {
    if read_at != ReadAt::Any {
        return None;
    }
    faults::stale_revision(faults, rng, store.revision(), store.compacted_revision())
}

/// A read at `revision` or newer, refused as the watch cache refuses it once it has waited for a
/// revision the store has not reached: 504 "Too large resource version", retry after a second.
fn not_ahead(revision: u64, store: &Store) -> Result<(), ApiError> {
    if revision <= store.revision() {
        return Ok(());
    }
    let mut error = ApiError::new(
        super::status::Reason::Timeout,
        format!(
            "Too large resource version: {revision}, current: {}",
            store.revision()
        ),
    );
    error.details = Some(json!({ "retryAfterSeconds": 1 }));
    error.retry_after_seconds = Some(1);
    Err(error)
}

/// Where an object sits in list order, as the continue token spells it: `namespace/name`.
fn object_position(object: &Value) -> String {
    format!(
        "{}/{}",
        metadata_str(object, "namespace"),
        metadata_str(object, "name")
    )
}

/// Whether `object` comes after the position `after` in list order, which is etcd's key order:
/// bytewise on `namespace/name` (so `a-b/x` sorts before `a/x`), as [`ObjectKey`] orders keys.
fn position_after(object: &Value, after: &str) -> bool {
    object_position(object).as_str() > after
}

fn format_continue(revision: u64, after: &str) -> String {
    let hex: String = after.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{revision}-{hex}")
}

fn parse_continue(token: &str) -> Result<(u64, String), ApiError> {
    let invalid = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let (revision, hex) = token.split_once('-').ok_or_else(invalid)?;
    let revision = revision.parse().map_err(|_| invalid())?;
    if hex.len() % 2 != 0 || hex.len() > 1024 {
        return Err(invalid());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    Ok((revision, String::from_utf8(bytes).map_err(|_| invalid())?))
}

/// The object in a create or replace body: JSON, or the protobuf kubectl's imperative `create`
/// sends.
fn parse_object(body: &[u8], resource: Resource, content_type: &str) -> Result<Value, ApiError> {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    let cannot = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            resource.kind(),
            resource.version(),
            resource.kind()
        ))
    };
    match media_type {
        "" | "application/json" | "*/*" => {}
        "application/yaml" => {
            return serde_yaml_ng::from_slice(body).map_err(|e| cannot(&e));
        }
        super::protobuf::MEDIA_TYPE => {
            return super::protobuf::decode(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {e}",
                    resource.kind(),
                    resource.version(),
                    resource.kind()
                ))
            });
        }
        other => {
            return Err(ApiError::unsupported_media_type(
                other,
                &[
                    "application/json",
                    "application/yaml",
                    super::protobuf::MEDIA_TYPE,
                ],
            ));
        }
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            resource.kind(),
            resource.version(),
            resource.kind()
        ))
    })
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("values serialise");
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("static headers are valid")
}

fn text_response(code: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(text.as_bytes())).boxed())
        .expect("static headers are valid")
}

/// The `Status` response for an error, with `Retry-After` when the error carries one.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(
        StatusCode::from_u16(error.code()).expect("valid code"),
        &error.to_status(),
    );
    if let Some(seconds) = error.retry_after_seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

impl ApiServer {
    /// Accept connections on simulated TCP at `port` and serve them, forever.
    ///
    /// Must be called from within a simulation host. A host bounce (turmoil's `bounce`) drops all
    /// connections; the store lives in the `ApiServer`, outside the host, and survives it.
    pub async fn serve_simulated(self, port: u16) -> turmoil::Result {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let server = self.clone();
            tokio::spawn(async move {
                server
                    .serve_connection(hyper_util::rt::TokioIo::new(stream))
                    .await
            });
        }
    }

    /// Accept connections on a real TCP listener and serve them until `shutdown` completes; then
    /// stop accepting and drop every open connection and watch.
    pub async fn serve_tcp(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve_tcp_with(listener, shutdown, |stream| async move { Some(stream) })
            .await
    }

    /// [`ApiServer::serve_tcp`], with each connection first passed through `handshake` (a TLS
    /// accept, say), on the connection's own task; a connection it returns `None` for, or that
    /// takes longer than a client may take to send its headers, is dropped.
    pub async fn serve_tcp_with<H, F, I>(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
        handshake: H,
    ) -> std::io::Result<()>
    where
        H: Fn(tokio::net::TcpStream) -> F,
        F: Future<Output = Option<I>> + Send + 'static,
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    self.restart();
                    return Ok(());
                }
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(accepted) => accepted,
                        // Out of file descriptors and the like: back off, keep serving the others.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let server = self.clone();
                    let handshake = handshake(stream);
                    tokio::spawn(async move {
                        if let Ok(Some(io)) = tokio::time::timeout(HEADER_READ_TIMEOUT, handshake).await {
                            server.serve_connection(hyper_util::rt::TokioIo::new(io)).await;
                        }
                    });
                }
            }
        }
    }
}
