//! The reference contender: a job master that drives the HA store the way Flink's does, in both
//! of khaos's worlds.
//!
//! On grant it seals the cluster's and the job's maps with its term, publishes itself as the
//! leader, checks the job's recorded result (a finished job never runs again), submits the job
//! graph if none is stored, finishes removals an earlier leader left half done, and recovers the
//! latest completed checkpoint from the store. Then it completes a checkpoint every interval: an
//! ID from the counter, the state blob, the pointer, older checkpoints subsumed. Its state is a
//! deterministic progress value (records processed, advancing by a fixed step per checkpoint), so
//! a checker can tell whether a recovery lost or repeated progress. On revoke it stops writing
//! before anything else. Every step is reported as an [`Event`].
//!
//! ```no_run
//! # async fn example(client: kube::Client) {
//! use std::sync::Arc;
//! use khaos_elector::{Elector, ElectorConfig, LockKind, Timing};
//! use khaos_elector::blob::FsBlobStore;
//! use khaos_elector::jobmaster::{Event, JobMaster, JobMasterConfig};
//! use khaos_elector::store::cluster_map_name;
//!
//! let blobs = Arc::new(FsBlobStore::new("/var/lib/ha").unwrap());
//! let events = |event: Event| println!("{}", serde_json::to_string(&event).unwrap());
//! let master = JobMaster::new(client.clone(), blobs, JobMasterConfig::new("default", "my-cluster"), Arc::new(events));
//! let config = ElectorConfig::new("pod-a", "default", &cluster_map_name("my-cluster"), LockKind::ConfigMap, Timing::default());
//! let handle = Elector::new(client, config).with_contender(Arc::new(master)).spawn();
//! // ... on SIGTERM: the job master stops writing, then the lock is released.
//! handle.stop().await;
//! # }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::blob::BlobStore;
use crate::clock::{Clock, TokioClock};
use crate::driver::{Contender, Leadership};
use crate::flaws::{Flaw, Flaws};
use crate::retrieval::LeaderInfo;
use crate::store::{
    Fence, FencedMap, JobStore, Recovered, StoreError, TerminalState, cluster_map_name,
    publish_leader,
};

/// What the job master did, one event per step, for logs and histories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Leadership was granted at this term.
    Granted {
        /// The term.
        term: u64,
    },
    /// Leadership was revoked; nothing more is written in this term.
    Revoked {
        /// The term that ended.
        term: u64,
    },
    /// The leader information was published.
    Published {
        /// The term.
        term: u64,
        /// The published value, `<session>,<address>`.
        leader: String,
    },
    /// No job graph was stored, so this leader submitted it.
    Submitted {
        /// The term.
        term: u64,
        /// The job.
        job: String,
    },
    /// The job was recovered from the store.
    Restored {
        /// The term.
        term: u64,
        /// The checkpoint restored (`None`: none was completed, the job starts from zero).
        checkpoint: Option<u64>,
        /// The progress restored.
        records: u64,
        /// Committed pointers whose blob is missing (a durability violation).
        dangling: Vec<u64>,
        /// Removals an earlier leader left half done, finished now.
        removals_finished: usize,
    },
    /// A checkpoint was completed: its pointer is committed.
    Checkpoint {
        /// The term.
        term: u64,
        /// The checkpoint ID.
        id: u64,
        /// The progress it holds.
        records: u64,
    },
    /// A checkpoint failed. If `possibly_inconsistent`, its pointer may have committed.
    CheckpointFailed {
        /// The term.
        term: u64,
        /// The checkpoint ID.
        id: u64,
        /// The progress it would hold.
        records: u64,
        /// Whether the pointer write's outcome is unknown.
        possibly_inconsistent: bool,
        /// Why.
        error: String,
    },
    /// A store operation failed; the job restarts from the store after a pause (a failover).
    Failover {
        /// The term.
        term: u64,
        /// Why.
        error: String,
    },
    /// The store refused this leader: a later term holds it. It writes nothing more.
    Fenced {
        /// The term.
        term: u64,
        /// The refusal.
        error: String,
    },
    /// The job reached a globally terminal state and its HA data was removed.
    Finished {
        /// The term.
        term: u64,
        /// How it ended.
        state: TerminalState,
        /// The progress at the end.
        records: u64,
    },
    /// The job's result was already recorded by an earlier leader: it is not run again.
    AlreadyDone {
        /// The term.
        term: u64,
        /// How it ended.
        state: TerminalState,
        /// Whether an earlier leader had finished the cleanup (if not, this one did).
        was_clean: bool,
    },
}

/// Where the job master's events go.
pub trait Events: Send + Sync + 'static {
    /// Record one event. Must not block.
    fn emit(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync + 'static> Events for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

/// Settings of the reference job master.
#[derive(Clone, Debug)]
#[must_use]
pub struct JobMasterConfig {
    /// Namespace of the HA ConfigMaps.
    pub namespace: String,
    /// The cluster (prefix of every HA ConfigMap).
    pub cluster_id: String,
    /// The job (Flink's application mode uses all zeros).
    pub job_id: String,
    /// The component whose leader information is published.
    pub component: String,
    /// The address published with the leader information.
    pub address: String,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Completed checkpoints kept (Flink's `state.checkpoints.num-retained`).
    pub retained: usize,
    /// Progress made between two checkpoints.
    pub records_per_checkpoint: u64,
    /// The job finishes (globally terminal) once it has processed this many records.
    pub finish_at_records: Option<u64>,
    /// Known bugs to reproduce ([`crate::flaws`]); none unless named.
    pub flaws: Flaws,
}

impl JobMasterConfig {
    /// Defaults: job `00000000000000000000000000000000`, component `dispatcher`, a checkpoint
    /// every second, one retained, 100 records per checkpoint, never finishing.
    pub fn new(namespace: &str, cluster_id: &str) -> JobMasterConfig {
        JobMasterConfig {
            namespace: namespace.to_owned(),
            cluster_id: cluster_id.to_owned(),
            job_id: "00000000000000000000000000000000".to_owned(),
            component: "dispatcher".to_owned(),
            address: String::new(),
            checkpoint_interval: Duration::from_secs(1),
            retained: 1,
            records_per_checkpoint: 100,
            finish_at_records: None,
            flaws: Flaws::NONE,
        }
    }
}

/// The state a checkpoint holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointState {
    /// The job.
    pub job_id: String,
    /// The checkpoint ID.
    pub checkpoint: u64,
    /// Records processed up to this checkpoint.
    pub records: u64,
}

/// The reference job master; use it as the elector's [`Contender`].
#[derive(Clone)]
pub struct JobMaster {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    blobs: Arc<dyn BlobStore>,
    config: JobMasterConfig,
    clock: Arc<dyn Clock>,
    events: Arc<dyn Events>,
    running: Mutex<Option<(Fence, tokio::task::JoinHandle<()>)>>,
    /// What the first recovery found ([`Flaw::CachedCheckpointList`] only).
    cache: Mutex<Option<Recovered>>,
}

impl JobMaster {
    /// A job master using the runtime's clock. Must be called from within a tokio runtime.
    pub fn new(
        client: kube::Client,
        blobs: Arc<dyn BlobStore>,
        config: JobMasterConfig,
        events: Arc<dyn Events>,
    ) -> JobMaster {
        JobMaster::with_clock(client, blobs, config, events, Arc::new(TokioClock::new()))
    }

    /// A job master whose checkpoint interval is timed by `clock`.
    pub fn with_clock(
        client: kube::Client,
        blobs: Arc<dyn BlobStore>,
        config: JobMasterConfig,
        events: Arc<dyn Events>,
        clock: Arc<dyn Clock>,
    ) -> JobMaster {
        assert!(
            config.retained >= 1,
            "at least one checkpoint must be retained"
        );
        JobMaster {
            inner: Arc::new(Inner {
                client,
                blobs,
                config,
                clock,
                events,
                running: Mutex::new(None),
                cache: Mutex::new(None),
            }),
        }
    }

    /// The job's store, as this job master uses it.
    pub fn job_store(&self) -> JobStore {
        self.inner.job_store()
    }
}

impl Contender for JobMaster {
    fn grant(&self, leadership: Leadership) -> BoxFuture<'static, ()> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let term = leadership.term;
            inner.events.emit(Event::Granted { term });
            let fence = Fence {
                term,
                holder: leadership.identity,
            };
            let task = tokio::spawn(Arc::clone(&inner).lead(fence.clone()));
            let previous = inner
                .running
                .lock()
                .expect("not poisoned")
                .replace((fence, task));
            if let Some((_, previous)) = previous {
                previous.abort();
                let _ = previous.await;
            }
        })
    }

    fn revoke(&self) -> BoxFuture<'static, ()> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let running = inner.running.lock().expect("not poisoned").take();
            if let Some((fence, task)) = running {
                // Stop writing before anything else: the task is dropped at its next await, and
                // nothing it would have sent afterwards is sent.
                task.abort();
                let _ = task.await;
                inner.events.emit(Event::Revoked { term: fence.term });
                // The flaw: a shutdown that is not globally terminal deletes the HA data.
                if inner.config.flaws.has(Flaw::NonTerminalCleanup) {
                    let _ = inner.job_store().discard(&fence).await;
                }
            }
        })
    }
}

impl Inner {
    fn job_store(&self) -> JobStore {
        JobStore::new(
            self.client.clone(),
            Arc::clone(&self.blobs),
            &self.config.namespace,
            &self.config.cluster_id,
            &self.config.job_id,
        )
        .with_flaws(self.config.flaws)
    }

    /// Read the latest checkpoint from the store; with [`Flaw::CachedCheckpointList`], only
    /// the first time.
    async fn recover(&self, job: &JobStore) -> Result<Recovered, StoreError> {
        if !self.config.flaws.has(Flaw::CachedCheckpointList) {
            return job.recover_latest().await;
        }
        if let Some(cached) = self.cache.lock().expect("not poisoned").clone() {
            return Ok(cached);
        }
        let recovered = job.recover_latest().await?;
        *self.cache.lock().expect("not poisoned") = Some(recovered.clone());
        Ok(recovered)
    }

    /// Lead until the job is done or the store refuses this term; fail over (recover from the
    /// store again) after any other error.
    async fn lead(self: Arc<Self>, fence: Fence) {
        let term = fence.term;
        loop {
            match self.run_job(&fence).await {
                Ok(()) => return,
                Err(error) if error.is_not_leader() => {
                    let error = error.to_string();
                    self.events.emit(Event::Fenced { term, error });
                    return;
                }
                Err(error) => {
                    let error = error.to_string();
                    self.events.emit(Event::Failover { term, error });
                    self.clock.sleep(self.config.checkpoint_interval).await;
                }
            }
        }
    }

    async fn run_job(&self, fence: &Fence) -> Result<(), StoreError> {
        let config = &self.config;
        let term = fence.term;
        let cluster = FencedMap::new(
            self.client.clone(),
            &config.namespace,
            &config.cluster_id,
            &cluster_map_name(&config.cluster_id),
        )
        .with_flaws(config.flaws);
        cluster.seal(fence).await?;
        let leader = LeaderInfo {
            session_id: format!("term-{term}"),
            address: config.address.clone(),
        };
        publish_leader(&cluster, fence, &config.component, &leader).await?;
        let leader = leader.to_value();
        self.events.emit(Event::Published { term, leader });

        let job = self.job_store();
        let result = if config.flaws.has(Flaw::RestartFinishedJob) {
            None
        } else {
            job.job_result().await?
        };
        if let Some(result) = result {
            if !result.clean {
                job.seal(fence).await?;
                job.clean_up_terminal(fence, result.state).await?;
            }
            self.events.emit(Event::AlreadyDone {
                term,
                state: result.state,
                was_clean: result.clean,
            });
            return Ok(());
        }
        job.seal(fence).await?;
        if job.job_graph().await?.is_none() {
            let graph = serde_json::json!({
                "jobId": config.job_id,
                "name": "khaos reference job",
                "recordsPerCheckpoint": config.records_per_checkpoint,
            });
            job.put_job_graph(fence, Bytes::from(graph.to_string()))
                .await?;
            let job = config.job_id.clone();
            self.events.emit(Event::Submitted { term, job });
        }
        job.set_registry(fence, "RUNNING").await?;
        let removals_finished = job.finish_removals(fence).await?;
        let recovered = self.recover(&job).await?;
        let (checkpoint, mut records) = match &recovered.latest {
            None => (None, 0),
            Some((id, state)) => {
                let state: CheckpointState =
                    serde_json::from_slice(state).map_err(|e| StoreError::Corrupt {
                        key: crate::store::checkpoint_key(*id),
                        reason: format!("the state blob does not parse: {e}"),
                    })?;
                (Some(*id), state.records)
            }
        };
        self.events.emit(Event::Restored {
            term,
            checkpoint,
            records,
            dangling: recovered.dangling,
            removals_finished,
        });

        loop {
            if config
                .finish_at_records
                .is_some_and(|limit| records >= limit)
            {
                let state = TerminalState::Finished;
                job.clean_up_terminal(fence, state).await?;
                self.events.emit(Event::Finished {
                    term,
                    state,
                    records,
                });
                return Ok(());
            }
            self.clock.sleep(config.checkpoint_interval).await;
            let id = job.next_checkpoint_id(fence).await?;
            let next = records + config.records_per_checkpoint;
            let state = CheckpointState {
                job_id: config.job_id.clone(),
                checkpoint: id,
                records: next,
            };
            let state = Bytes::from(serde_json::to_vec(&state).expect("a state serialises"));
            // The flaw: make room for the new checkpoint before it is committed.
            if config.flaws.has(Flaw::SubsumeBeforeCommit) {
                let committed = job.committed().await?;
                let excess = (committed.len() + 1).saturating_sub(config.retained);
                for old in committed.into_iter().take(excess) {
                    job.remove_checkpoint(fence, old).await?;
                }
            }
            match job.add_checkpoint(fence, id, state).await {
                Ok(()) => {
                    records = next;
                    self.events.emit(Event::Checkpoint { term, id, records });
                    job.subsume(fence, config.retained).await?;
                }
                Err(error) => {
                    self.events.emit(Event::CheckpointFailed {
                        term,
                        id,
                        records: next,
                        possibly_inconsistent: error.is_possibly_inconsistent(),
                        error: error.to_string(),
                    });
                    return Err(error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_one_flat_json_object_each() {
        let event = Event::Restored {
            term: 3,
            checkpoint: Some(7),
            records: 700,
            dangling: vec![],
            removals_finished: 0,
        };
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(
            line,
            r#"{"event":"restored","term":3,"checkpoint":7,"records":700,"dangling":[],"removals_finished":0}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), event);
    }
}
