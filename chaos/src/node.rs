//! `khaos node`: one candidate process running the reference job master against any API server,
//! logging its leadership changes and checkpoints as JSON lines on stdout.
//!
//! Each line is one object: `t_ms` (milliseconds since `--epoch-ms`, else since this process
//! started; [`crate::timebase`]), `node` (its identity),
//! `event`, and the event's fields, for example
//! `{"t_ms":5120,"node":"node-b","event":"restored","term":2,"checkpoint":7,"records":700,...}`.
//! The job master's events are [`khaos_elector::jobmaster::Event`]; the node adds `started`,
//! `unreachable`, `leader` (the leader information it follows), `stopping` and `stopped`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use khaos_elector::blob::{BlobError, FsBlobStore};
use khaos_elector::clock::{Clock, TokioClock};
use khaos_elector::jobmaster::{Event, JobMaster, JobMasterConfig};
use khaos_elector::retrieval::{LeaderRetriever, leader_key};
use khaos_elector::store::{cluster_lock_name, cluster_map_name};
use khaos_elector::timing::millis;
use khaos_elector::{Elector, ElectorConfig, LockKind, Timing};
use serde_json::{Map, Value, json};

use crate::live::{self, ClientError};
use crate::timebase::{EpochError, TimeBase};

/// Settings of one node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The API server (`http://127.0.0.1:6443`); `None`: KUBECONFIG or in-cluster.
    pub server: Option<String>,
    /// Bearer token for `server`.
    pub token: Option<String>,
    /// Namespace of the HA ConfigMaps and the lock.
    pub namespace: String,
    /// The cluster (prefix of every HA object).
    pub cluster_id: String,
    /// This candidate's identity (unique among candidates).
    pub identity: String,
    /// Where checkpoint state, job graphs and job results are stored.
    pub storage_dir: PathBuf,
    /// Lease duration, renew deadline, retry period.
    pub timing: Timing,
    /// The lock kind.
    pub lock: LockKind,
    /// The job master's settings.
    pub job: JobMasterConfig,
    /// Seed of the retry jitter and the retrieval backoff.
    pub seed: u64,
    /// Unix milliseconds `t_ms` counts from (shared by every process of a run, so their logs
    /// merge); `None`: from this process's start.
    pub epoch_ms: Option<u64>,
}

/// What `khaos node` is asked for, as given (flags or environment), before it is checked:
/// [`NodeOptions::config`] checks it and makes the [`NodeConfig`].
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The API server URL; `None`: KUBECONFIG or in-cluster.
    pub server: Option<String>,
    /// Bearer token for `server`.
    pub token: Option<String>,
    /// Namespace of the lock and the HA ConfigMaps.
    pub namespace: String,
    /// The cluster id.
    pub cluster_id: String,
    /// The identity; `None`: `$HOSTNAME`.
    pub identity: Option<String>,
    /// Where checkpoint state, job graphs and job results are stored.
    pub storage_dir: PathBuf,
    /// The lease duration.
    pub lease_duration: Duration,
    /// The renew deadline.
    pub renew_deadline: Duration,
    /// The retry period.
    pub retry_period: Duration,
    /// Accept timing that breaks the validation rule.
    pub unchecked_timing: bool,
    /// The lock kind.
    pub lock: LockKind,
    /// The job's id.
    pub job_id: String,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Records processed between two checkpoints.
    pub records_per_checkpoint: u64,
    /// Completed checkpoints retained.
    pub retained: u64,
    /// Finish the job after this many records; `None`: run until stopped.
    pub finish_after_records: Option<u64>,
    /// The address published as leader information; `None`: the identity.
    pub address: Option<String>,
    /// Seed of the retry jitter; `None`: a hash of the identity.
    pub seed: Option<u64>,
    /// Unix milliseconds `t_ms` counts from.
    pub epoch_ms: Option<u64>,
}

/// Options a node cannot run with, each with the flag to change.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// No identity was given and `$HOSTNAME` is unset.
    #[error(
        "no identity: pass --identity NAME (or set POD_NAME or HOSTNAME); every candidate needs a unique one"
    )]
    NoIdentity,
    /// The timing breaks `lease > renew deadline > 1.2 x retry period`.
    #[error(transparent)]
    Timing(#[from] khaos_elector::timing::TimingError),
    /// The cluster or job id cannot be part of a ConfigMap name.
    #[error(
        "{flag} {value:?} cannot be part of a ConfigMap name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. my-cluster)"
    )]
    NamePart {
        /// `--cluster-id` or `--job-id`.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// The job id `cluster` would name the job's map after the cluster's own.
    #[error(
        "--job-id cluster would name the job's map after the cluster's own ({{cluster-id}}-cluster-config-map); choose another id"
    )]
    JobIdCluster,
    /// A zero checkpoint interval.
    #[error("--checkpoint-interval must be greater than zero")]
    ZeroCheckpointInterval,
    /// A zero election duration, which unchecked timing would otherwise raise to 1 ms unsaid.
    #[error(
        "{0} 0 leaves no time at all: give at least 1ms (unchecked timing skips the rule between the three, not this)"
    )]
    ZeroTiming(&'static str),
}

impl NodeOptions {
    /// Check the options and make the node's settings.
    pub fn config(self) -> Result<NodeConfig, NodeConfigError> {
        let identity = match self.identity.or_else(|| std::env::var("HOSTNAME").ok()) {
            Some(identity) if !identity.is_empty() => identity,
            _ => return Err(NodeConfigError::NoIdentity),
        };
        for (flag, duration) in [
            ("--lease-duration", self.lease_duration),
            ("--renew-deadline", self.renew_deadline),
            ("--retry-period", self.retry_period),
        ] {
            if duration.is_zero() {
                return Err(NodeConfigError::ZeroTiming(flag));
            }
        }
        let timing = if self.unchecked_timing {
            Timing::unchecked(self.lease_duration, self.renew_deadline, self.retry_period)
        } else {
            Timing::new(self.lease_duration, self.renew_deadline, self.retry_period)?
        };
        for (flag, value) in [
            ("--cluster-id", &self.cluster_id),
            ("--job-id", &self.job_id),
        ] {
            if !is_name_part(value) {
                return Err(NodeConfigError::NamePart {
                    flag,
                    value: value.clone(),
                });
            }
        }
        if self.job_id == "cluster" {
            // {cluster}-cluster-config-map is the cluster's own map (the lock and leader
            // information); a job of that name would clean it up.
            return Err(NodeConfigError::JobIdCluster);
        }
        if self.checkpoint_interval.is_zero() {
            return Err(NodeConfigError::ZeroCheckpointInterval);
        }
        let mut job = JobMasterConfig::new(&self.namespace, &self.cluster_id);
        job.job_id = self.job_id;
        job.address = self.address.unwrap_or_else(|| identity.clone());
        job.checkpoint_interval = self.checkpoint_interval;
        job.records_per_checkpoint = self.records_per_checkpoint;
        job.retained = usize::try_from(self.retained).unwrap_or(usize::MAX);
        job.finish_at_records = self.finish_after_records;
        Ok(NodeConfig {
            server: self.server,
            token: self.token,
            namespace: self.namespace,
            cluster_id: self.cluster_id,
            seed: self.seed.unwrap_or_else(|| seed_from_identity(&identity)),
            identity,
            storage_dir: self.storage_dir,
            timing,
            lock: self.lock,
            job,
            epoch_ms: self.epoch_ms,
        })
    }
}

/// The cluster and job ids become part of ConfigMap names (`{cluster}-{job}-config-map`), so
/// they must be DNS-1123 labels; the API server would otherwise refuse every write, forever.
fn is_name_part(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The client could not be built.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The storage directory is unusable.
    #[error("--storage-dir: {0}")]
    Storage(#[from] BlobError),
    /// The epoch cannot be this run's start.
    #[error(transparent)]
    Epoch(#[from] EpochError),
}

/// The seed a node uses when none is given: a hash of its identity, so candidates differ and a
/// restarted candidate draws the same jitter.
pub fn seed_from_identity(identity: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    identity.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes one JSON line per event.
#[derive(Clone)]
struct Log {
    time: TimeBase,
    node: Arc<str>,
}

impl Log {
    fn line(&self, event: &str, fields: Value) {
        let mut line = Map::new();
        line.insert("t_ms".into(), self.time.t_ms().into());
        line.insert("node".into(), Value::from(&*self.node));
        line.insert("event".into(), event.into());
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        // A reader that has gone takes the history with it; the node goes on (a panic here would
        // end the election's task, not the process).
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "{}", Value::Object(line));
    }

    fn event(&self, event: &Event) {
        let Value::Object(mut fields) = serde_json::to_value(event).expect("an event serialises")
        else {
            unreachable!("events are objects")
        };
        let name = fields.shift_remove("event").expect("events are tagged");
        self.line(name.as_str().unwrap_or("?"), Value::Object(fields));
    }
}

/// Run the node until `shutdown` completes; then stop gracefully (the job master stops writing,
/// then the lock is released so a standby takes over in about one retry period).
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let log = Log {
        time: TimeBase::new(Arc::clone(&clock), config.epoch_ms)?,
        node: config.identity.as_str().into(),
    };
    let client = match &config.server {
        Some(url) => live::client_for_url(url, &config.identity, config.token.as_deref())?,
        None => live::client_inferred(&config.identity).await?,
    };
    let blobs = Arc::new(FsBlobStore::new(&config.storage_dir)?);
    let lock_name = cluster_lock_name(&config.cluster_id, config.lock);
    let timing = config.timing;
    log.line(
        "started",
        json!({
            "pid": std::process::id(),
            "server": config.server.as_deref().unwrap_or("(KUBECONFIG or in-cluster)"),
            "namespace": config.namespace,
            "cluster_id": config.cluster_id,
            "job_id": config.job.job_id,
            "lock": format!("{}/{lock_name}", config.lock),
            "lease_duration_ms": millis(timing.lease_duration()),
            "renew_deadline_ms": millis(timing.renew_deadline()),
            "retry_period_ms": millis(timing.retry_period()),
            "unchecked_timing": timing.is_unchecked(),
            "checkpoint_interval_ms": millis(config.job.checkpoint_interval),
            "epoch_ms": config.epoch_ms,
            "storage_dir": config.storage_dir.display().to_string(),
        }),
    );
    // One probe so a wrong address is reported at once; the elector keeps trying regardless
    // (in a cluster the API server may come up after the pod).
    match tokio::time::timeout(timing.renew_deadline(), client.apiserver_version()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => log.line("unreachable", json!({ "error": error.to_string() })),
        Err(_) => log.line(
            "unreachable",
            json!({ "error": format!("no answer within {:?}", timing.renew_deadline()) }),
        ),
    }

    let recorder = EventRecorder::spawn(
        client.clone(),
        &config.namespace,
        &lock_name,
        config.lock,
        &config.identity,
    );
    let events = {
        let log = log.clone();
        let recorder = recorder.clone();
        move |event: Event| {
            log.event(&event);
            recorder.record(&event);
        }
    };
    let master = JobMaster::with_clock(
        client.clone(),
        blobs,
        config.job.clone(),
        Arc::new(events),
        Arc::clone(&clock),
    );
    let elector = ElectorConfig::new(
        &config.identity,
        &config.namespace,
        &lock_name,
        config.lock,
        timing,
    )
    .seed(config.seed);
    let handle = Elector::new(client.clone(), elector)
        .with_clock(Arc::clone(&clock))
        .with_contender(Arc::new(master))
        .spawn();

    let retriever = LeaderRetriever::new(
        client,
        &config.namespace,
        &cluster_map_name(&config.cluster_id),
        &leader_key(&config.job.component),
    );
    let mut leader = retriever.spawn(config.seed.rotate_left(32));
    let follower = {
        let log = log.clone();
        tokio::spawn(async move {
            while leader.changed().await.is_ok() {
                let value = leader.borrow_and_update().as_ref().map(|l| l.to_value());
                log.line("leader", json!({ "leader": value }));
            }
        })
    };

    shutdown.await;
    log.line("stopping", json!({}));
    follower.abort();
    // A graceful stop is bounded by the release's own timeout (one renew deadline) plus the
    // job master's revoke; past that the process exits anyway and the lease runs out.
    let bound = timing.renew_deadline() * 2 + Duration::from_secs(1);
    let stopped = tokio::time::timeout(bound, handle.stop()).await.is_ok();
    // The "stopped leading" Event, before the process goes.
    let _ = tokio::time::timeout(Duration::from_secs(1), recorder.flush()).await;
    log.line("stopped", json!({ "graceful": stopped }));
    Ok(())
}

/// Leadership changes as Kubernetes Events on the lock, as client-go's elector records them
/// (reason `LeaderElection`, "<identity> became leader" and "stopped leading"), so
/// `kubectl describe configmap <lock>` and `kubectl get events` show them. Best effort: an
/// Event that cannot be written is logged, and never holds up the election.
#[derive(Clone)]
struct EventRecorder {
    tx: tokio::sync::mpsc::UnboundedSender<Recorded>,
}

/// What the recorder is asked to do.
enum Recorded {
    /// Record "<identity> <this>".
    Event(&'static str),
    /// Answer once everything asked before is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl EventRecorder {
    fn spawn(
        client: kube::Client,
        namespace: &str,
        lock_name: &str,
        lock: LockKind,
        identity: &str,
    ) -> EventRecorder {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Recorded>();
        let (namespace, lock_name, identity) = (
            namespace.to_owned(),
            lock_name.to_owned(),
            identity.to_owned(),
        );
        tokio::spawn(async move {
            let events: kube::Api<k8s_openapi::api::core::v1::Event> =
                kube::Api::namespaced(client.clone(), &namespace);
            let lock_resource = match lock {
                LockKind::ConfigMap => {
                    kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
                }
                LockKind::Lease => {
                    kube::api::ApiResource::erase::<k8s_openapi::api::coordination::v1::Lease>(&())
                }
            };
            let (kind, api_version) = (
                lock_resource.kind.clone(),
                lock_resource.api_version.clone(),
            );
            while let Some(recorded) = rx.recv().await {
                let what = match recorded {
                    Recorded::Event(what) => what,
                    Recorded::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                // The lock's uid, so `kubectl describe` (which selects on it) finds the event.
                // Each request bounded: the client waits for ever, and a hung one would hold up
                // every later Event.
                let lock_api = kube::Api::<kube::api::DynamicObject>::namespaced_with(
                    client.clone(),
                    &namespace,
                    &lock_resource,
                );
                let uid = khaos_elector::client::bounded(
                    khaos_elector::client::REQUEST_TIMEOUT,
                    lock_api.get_opt(&lock_name),
                )
                .await
                .ok()
                .flatten()
                .and_then(|o| o.metadata.uid);
                #[allow(clippy::disallowed_methods)] // An Event's time is the wall clock's.
                let now = std::time::SystemTime::now();
                let since_epoch = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let stamp = khaos_sim::apiserver::time::rfc3339(now);
                let event = json!({
                    "metadata": {
                        "name": format!("{lock_name}.{:x}", since_epoch.as_nanos()),
                        "namespace": namespace,
                    },
                    "involvedObject": {
                        "kind": kind,
                        "apiVersion": api_version,
                        "name": lock_name,
                        "namespace": namespace,
                        "uid": uid,
                    },
                    "reason": "LeaderElection",
                    "message": format!("{identity} {what}"),
                    "type": "Normal",
                    "source": { "component": "khaos-node" },
                    "reportingComponent": "khaos-node",
                    "reportingInstance": identity,
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                });
                let event = match serde_json::from_value(event) {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::warn!(%error, "building a leader-election Event");
                        continue;
                    }
                };
                let params = kube::api::PostParams::default();
                let created = events.create(&params, &event);
                if let Err(error) =
                    khaos_elector::client::bounded(khaos_elector::client::REQUEST_TIMEOUT, created)
                        .await
                {
                    tracing::warn!(%error, "recording the leader-election Event \"{identity} {what}\" failed");
                }
            }
        });
        EventRecorder { tx }
    }

    fn record(&self, event: &Event) {
        let what = match event {
            Event::Granted { .. } => "became leader",
            Event::Revoked { .. } => "stopped leading",
            _ => return,
        };
        let _ = self.tx.send(Recorded::Event(what));
    }

    /// Wait until every event asked for so far is written (or failed).
    async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.tx.send(Recorded::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_from_identities_are_stable_and_differ() {
        assert_eq!(seed_from_identity(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(seed_from_identity("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(seed_from_identity("node-a"), seed_from_identity("node-b"));
    }
}
