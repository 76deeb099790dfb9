//! The HA metadata store: small pointers in ConfigMaps, state in a blob store, and every write by
//! the leader fenced by its term inside the same compare-and-swap.
//!
//! Fencing works the same for both lock kinds. Each data ConfigMap carries a seal, the annotation
//! [`FENCE_ANNOTATION`], naming the term and holder allowed to write it. A new leader seals every
//! map it will touch (a CAS) before it recovers; every later write reads the map, checks that the
//! seal is its own, and writes with the resourceVersion it read. A stale leader either reads the
//! newer seal and refuses, or its CAS fails because the seal changed the map.
//!
//! Layout (Flink 1.15+): `{cluster-id}-{job-id}-config-map` holds `jobGraph-<job>`, `counter`,
//! `checkpointID-<19-digit id>` and `runningJobsRegistry-<job>`; values are small JSON pointers
//! into the blob store, never the state itself (a ConfigMap holds at most 1 MiB).
//!
//! ```no_run
//! # async fn example(client: kube::Client, blobs: std::sync::Arc<dyn khaos_elector::blob::BlobStore>, term: u64) -> Result<(), Box<dyn std::error::Error>> {
//! use khaos_elector::store::{Fence, JobStore};
//! let fence = Fence { term, holder: "pod-a".into() };
//! let job = JobStore::new(client, blobs, "default", "my-cluster", "job-1");
//! job.seal(&fence).await?;                       // first, as the new leader
//! let recovered = job.recover_latest().await?;    // then recover from the store, never a cache
//! let id = job.next_checkpoint_id(&fence).await?; // fenced get-and-increment
//! job.add_checkpoint(&fence, id, bytes::Bytes::from_static(b"state")).await?; // committed
//! job.subsume(&fence, 1).await?;                  // only now drop older ones
//! # let _ = recovered; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde::{Deserialize, Serialize};

use crate::blob::{BlobError, BlobStore};
use crate::client;
use crate::decision::{LEADER_ANNOTATION, LeaderElectionRecord};
use crate::flaws::{Flaw, Flaws};
use crate::lock::LockKind;
use crate::retrieval::{LeaderInfo, leader_key};

/// The annotation that seals a data ConfigMap to one leadership term.
pub const FENCE_ANNOTATION: &str = "khaos.dev/fence";

/// The label that marks a ConfigMap as HA data of a cluster (no ownerReferences: deleting the
/// cluster's Deployment keeps it, so a restarted cluster recovers).
pub const CLUSTER_LABEL: &str = "app.kubernetes.io/instance";

/// How many lost compare-and-swaps one write retries before giving up.
const CONFLICT_RETRIES_MAX: usize = 16;

/// The proof of leadership a write carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The leadership term (the lock's transition count).
    pub term: u64,
    /// The leader's identity.
    pub holder: String,
}

/// A pointer from the ConfigMap to state in the blob store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pointer {
    /// The blob's path.
    pub path: String,
    /// Set by the first phase of a removal; readers skip it.
    #[serde(default)]
    pub marked_for_deletion: bool,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another leader has sealed the map with a later term: this one must stop.
    #[error("not the leader: term {sealed} ({holder:?}) holds the map, ours is {ours}")]
    NotLeader {
        /// The term that sealed the map (or holds the lock in it).
        sealed: u64,
        /// Who sealed it (or holds the lock).
        holder: String,
        /// Our term.
        ours: u64,
    },
    /// The map is not sealed by our term yet: call `seal` first.
    #[error("the map is not sealed by term {ours}; seal it before writing")]
    NotSealed {
        /// Our term.
        ours: u64,
    },
    /// The write may or may not have committed (a timeout, 5xx or lost connection after it was
    /// sent). Nothing it refers to may be discarded; retrying is safe.
    #[error("possibly inconsistent: {what} may have committed: {source}")]
    PossiblyInconsistent {
        /// What was being written.
        what: String,
        /// The failure.
        #[source]
        source: kube::Error,
    },
    /// Too many lost compare-and-swaps in a row.
    #[error("gave up after {CONFLICT_RETRIES_MAX} conflicting writes to {map}")]
    Contended {
        /// The map.
        map: String,
    },
    /// A request failed before it could have changed anything.
    #[error("request failed: {0}")]
    Api(#[source] kube::Error),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    /// A value in the map does not parse.
    #[error("corrupt entry {key}: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    /// Whether this leader has been fenced off.
    pub fn is_not_leader(&self) -> bool {
        matches!(self, StoreError::NotLeader { .. })
    }

    /// Whether the write's outcome is unknown.
    pub fn is_possibly_inconsistent(&self) -> bool {
        matches!(self, StoreError::PossiblyInconsistent { .. })
    }
}

/// Whether an API error leaves the write's outcome unknown: anything but a clear answer from
/// the server that it refused (4xx), or a failure to reach it at all before sending.
fn is_ambiguous(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500,
        _ => true,
    }
}

/// The result of one attempt to change a map's data.
pub enum Change<T> {
    /// Write the new data and return `T` once committed.
    Write(T),
    /// Nothing to write; return `T`.
    Keep(T),
}

/// One fenced data ConfigMap.
#[derive(Clone)]
pub struct FencedMap {
    api: Api<ConfigMap>,
    name: String,
    cluster_id: String,
    request_timeout: Duration,
    flaws: Flaws,
}

impl FencedMap {
    /// The map `name` of `cluster_id` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, cluster_id: &str, name: &str) -> FencedMap {
        FencedMap {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            cluster_id: cluster_id.to_owned(),
            request_timeout: client::REQUEST_TIMEOUT,
            flaws: Flaws::NONE,
        }
    }

    /// This map with known bugs switched on ([`Flaw::UnfencedStore`]).
    #[must_use]
    pub fn with_flaws(mut self, flaws: Flaws) -> FencedMap {
        self.flaws = flaws;
        self
    }

    /// One request to the API server, bounded by [`client::REQUEST_TIMEOUT`] whatever the
    /// client's own timeouts (a user's client has none that would end a hung answer).
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        client::bounded(self.request_timeout, request).await
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read the data (empty when the map does not exist). Never cached.
    pub async fn read(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let map = self
            .call(self.api.get_opt(&self.name))
            .await
            .map_err(StoreError::Api)?;
        Ok(map.and_then(|m| m.data).unwrap_or_default())
    }

    /// Seal the map to `fence` (creating it if absent). Refuses if a later term sealed it.
    pub async fn seal(&self, fence: &Fence) -> Result<(), StoreError> {
        for _ in 0..CONFLICT_RETRIES_MAX {
            let current = self
                .call(self.api.get_opt(&self.name))
                .await
                .map_err(StoreError::Api)?;
            let sealed = current.as_ref().and_then(sealed_by).transpose()?;
            match &sealed {
                Some(s)
                    if s.term > fence.term
                        || (s.term == fence.term && s.holder != fence.holder) =>
                {
                    return Err(StoreError::NotLeader {
                        sealed: s.term,
                        holder: s.holder.clone(),
                        ours: fence.term,
                    });
                }
                Some(s) if s == fence => return Ok(()),
                _ => {}
            }
            let seal = serde_json::to_string(fence).expect("a fence serialises");
            let result = match current {
                None => {
                    let map = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            labels: Some(
                                [(CLUSTER_LABEL.to_owned(), self.cluster_id.clone())].into(),
                            ),
                            annotations: Some([(FENCE_ANNOTATION.to_owned(), seal)].into()),
                            ..ObjectMeta::default()
                        },
                        ..ConfigMap::default()
                    };
                    self.call(self.api.create(&PostParams::default(), &map))
                        .await
                        .map(|_| ())
                }
                Some(mut map) => {
                    map.metadata
                        .annotations
                        .get_or_insert_default()
                        .insert(FENCE_ANNOTATION.to_owned(), seal);
                    // A map the lock created has no label yet.
                    map.metadata
                        .labels
                        .get_or_insert_default()
                        .insert(CLUSTER_LABEL.to_owned(), self.cluster_id.clone());
                    self.call(self.api.replace(&self.name, &PostParams::default(), &map))
                        .await
                        .map(|_| ())
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                // A seal is idempotent: the next read tells whether it landed.
                Err(error) if is_ambiguous(&error) => continue,
                Err(error) => return Err(StoreError::Api(error)),
            }
        }
        Err(StoreError::Contended {
            map: self.name.clone(),
        })
    }

    /// Change the data under `fence`: read, check the seal, apply `change`, write with the
    /// version read; on a lost CAS read again and re-check (bounded). `change` may run more than
    /// once and must decide from the data it is given.
    pub async fn update<T>(
        &self,
        fence: &Fence,
        what: &str,
        mut change: impl FnMut(&mut BTreeMap<String, String>) -> Result<Change<T>, StoreError>,
    ) -> Result<T, StoreError> {
        for _ in 0..CONFLICT_RETRIES_MAX {
            let Some(mut map) = self
                .call(self.api.get_opt(&self.name))
                .await
                .map_err(StoreError::Api)?
            else {
                return Err(StoreError::NotSealed { ours: fence.term });
            };
            let unfenced = self.flaws.has(Flaw::UnfencedStore);
            if unfenced {
                // The flaw: whatever sealed the map since, and whatever changed it, this write
                // goes through (last writer wins).
                map.metadata.resource_version = None;
            } else {
                check_fence(&map, fence)?;
            }
            let mut data = map.data.take().unwrap_or_default();
            let value = match change(&mut data)? {
                Change::Keep(value) => return Ok(value),
                Change::Write(value) => value,
            };
            map.data = Some(data);
            match self
                .call(self.api.replace(&self.name, &PostParams::default(), &map))
                .await
            {
                Ok(_) => return Ok(value),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(source) if is_ambiguous(&source) => {
                    return Err(StoreError::PossiblyInconsistent {
                        what: what.to_owned(),
                        source,
                    });
                }
                Err(error) => return Err(StoreError::Api(error)),
            }
        }
        Err(StoreError::Contended {
            map: self.name.clone(),
        })
    }

    /// Set `key` to `value` under `fence` (no write if it already has that value).
    pub async fn set(&self, fence: &Fence, key: &str, value: &str) -> Result<(), StoreError> {
        self.update(fence, key, |data| {
            if data.get(key).map(String::as_str) == Some(value) {
                return Ok(Change::Keep(()));
            }
            data.insert(key.to_owned(), value.to_owned());
            Ok(Change::Write(()))
        })
        .await
    }

    /// Whether the map exists.
    pub async fn exists(&self) -> Result<bool, StoreError> {
        let map = self
            .call(self.api.get_opt(&self.name))
            .await
            .map_err(StoreError::Api)?;
        Ok(map.is_some())
    }

    /// Delete the map (cleanup after a globally terminal state), fenced: only the sealing term
    /// may delete it, with the version it read as a precondition.
    pub async fn delete(&self, fence: &Fence) -> Result<(), StoreError> {
        let Some(map) = self
            .call(self.api.get_opt(&self.name))
            .await
            .map_err(StoreError::Api)?
        else {
            return Ok(());
        };
        check_fence(&map, fence)?;
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: map.metadata.resource_version.clone(),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match self.call(self.api.delete(&self.name, &params)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) if is_ambiguous(&source) => Err(StoreError::PossiblyInconsistent {
                what: format!("delete {}", self.name),
                source,
            }),
            Err(error) => Err(StoreError::Api(error)),
        }
    }
}

/// Whether `fence` may write `map`: the map must be sealed by exactly this fence, and if the map
/// is also the ConfigMap lock, the lock record must still name this holder at this term (so a
/// write read while holding the lock fails its CAS once anyone else has taken the lock).
fn check_fence(map: &ConfigMap, fence: &Fence) -> Result<(), StoreError> {
    match sealed_by(map).transpose()? {
        Some(s) if &s == fence => {}
        Some(s) if s.term >= fence.term => {
            return Err(StoreError::NotLeader {
                sealed: s.term,
                holder: s.holder,
                ours: fence.term,
            });
        }
        _ => return Err(StoreError::NotSealed { ours: fence.term }),
    }
    let record = map
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEADER_ANNOTATION));
    if let Some(record) = record {
        let record: LeaderElectionRecord =
            serde_json::from_str(record).map_err(|e| StoreError::Corrupt {
                key: LEADER_ANNOTATION.into(),
                reason: e.to_string(),
            })?;
        if record.holder_identity != fence.holder
            || u64::from(record.leader_transitions) != fence.term
        {
            return Err(StoreError::NotLeader {
                sealed: u64::from(record.leader_transitions),
                holder: record.holder_identity,
                ours: fence.term,
            });
        }
    }
    Ok(())
}

fn sealed_by(map: &ConfigMap) -> Option<Result<Fence, StoreError>> {
    let seal = map.metadata.annotations.as_ref()?.get(FENCE_ANNOTATION)?;
    Some(serde_json::from_str(seal).map_err(|e| StoreError::Corrupt {
        key: FENCE_ANNOTATION.into(),
        reason: e.to_string(),
    }))
}

/// The key of checkpoint `id` (19 zero-padded digits, so keys sort by id).
pub fn checkpoint_key(id: u64) -> String {
    format!("checkpointID-{id:019}")
}

/// What recovery found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The highest committed checkpoint whose blob exists, and its state.
    pub latest: Option<(u64, Bytes)>,
    /// Committed pointers whose blob is missing (a durability violation to report).
    pub dangling: Vec<u64>,
}

/// The HA data of one job: its map plus the blob store.
#[derive(Clone)]
pub struct JobStore {
    map: FencedMap,
    blobs: Arc<dyn BlobStore>,
    job_id: String,
    cluster_id: String,
    flaws: Flaws,
}

impl JobStore {
    /// The store of `job_id` in `cluster_id`, in `namespace`. The job id must not be `cluster`
    /// (its map would be the cluster's own map) and, like the cluster id, must be usable in a
    /// ConfigMap name.
    pub fn new(
        client: kube::Client,
        blobs: Arc<dyn BlobStore>,
        namespace: &str,
        cluster_id: &str,
        job_id: &str,
    ) -> JobStore {
        let name = job_map_name(cluster_id, job_id);
        JobStore {
            map: FencedMap::new(client, namespace, cluster_id, &name),
            blobs,
            job_id: job_id.to_owned(),
            cluster_id: cluster_id.to_owned(),
            flaws: Flaws::NONE,
        }
    }

    /// Reproduce these known bugs ([`Flaw::DiscardAfterAmbiguousCommit`],
    /// [`Flaw::RemovalNotRepeatable`], [`Flaw::CounterWithoutCas`], [`Flaw::UnfencedStore`]).
    #[must_use]
    pub fn with_flaws(mut self, flaws: Flaws) -> JobStore {
        self.map = self.map.with_flaws(flaws);
        self.flaws = flaws;
        self
    }

    /// The job's map.
    pub fn map(&self) -> &FencedMap {
        &self.map
    }

    /// Seal the job's map to this leadership (first thing a new leader does).
    pub async fn seal(&self, fence: &Fence) -> Result<(), StoreError> {
        self.map.seal(fence).await
    }

    /// Fenced get-and-increment of the checkpoint ID counter (starts at 1, never decreases,
    /// never hands out an ID twice). An ambiguous failure may have consumed an ID: that one is
    /// skipped, never reused.
    pub async fn next_checkpoint_id(&self, fence: &Fence) -> Result<u64, StoreError> {
        if self.flaws.has(Flaw::CounterWithoutCas) {
            return self.next_checkpoint_id_without_cas(fence).await;
        }
        self.map
            .update(fence, "counter", |data| {
                let current: u64 = match data.get("counter") {
                    None => 1,
                    Some(v) => v.parse().map_err(|_| StoreError::Corrupt {
                        key: "counter".into(),
                        reason: format!("{v:?} is not a number"),
                    })?,
                };
                data.insert("counter".into(), (current + 1).to_string());
                Ok(Change::Write(current))
            })
            .await
    }

    /// [`Flaw::CounterWithoutCas`]: read the counter (checking the seal), then write it back
    /// plus one with a merge patch of that key alone and no resourceVersion, so a write that
    /// arrives late lands whatever happened since its read.
    async fn next_checkpoint_id_without_cas(&self, fence: &Fence) -> Result<u64, StoreError> {
        // Bounded as the correct path's requests are: the flaw is the missing CAS, nothing else.
        let Some(map) = self
            .map
            .call(self.map.api.get_opt(&self.map.name))
            .await
            .map_err(StoreError::Api)?
        else {
            return Err(StoreError::NotSealed { ours: fence.term });
        };
        check_fence(&map, fence)?;
        let current: u64 = match map.data.as_ref().and_then(|d| d.get("counter")) {
            None => 1,
            Some(v) => v.parse().map_err(|_| StoreError::Corrupt {
                key: "counter".into(),
                reason: format!("{v:?} is not a number"),
            })?,
        };
        let patch = serde_json::json!({"data": {"counter": (current + 1).to_string()}});
        let params = kube::api::PatchParams::default();
        let patch = kube::api::Patch::Merge(patch);
        match self
            .map
            .call(self.map.api.patch(&self.map.name, &params, &patch))
            .await
        {
            Ok(_) => Ok(current),
            Err(source) if is_ambiguous(&source) => Err(StoreError::PossiblyInconsistent {
                what: "counter".into(),
                source,
            }),
            Err(error) => Err(StoreError::Api(error)),
        }
    }

    fn checkpoint_path(&self, id: u64) -> String {
        format!("{}/{}/checkpoint-{id:019}", self.cluster_id, self.job_id)
    }

    /// Add completed checkpoint `id`: blob first, then the pointer (fenced CAS). Once this
    /// returns `Ok` the checkpoint is committed; call [`JobStore::subsume`] next.
    ///
    /// An ambiguous pointer write is retried: if the key turns out present with our own pointer
    /// the write had landed. The blob is never discarded after an ambiguous write (FLINK-28265);
    /// if retries run out the error says "possibly inconsistent" and the blob stays.
    pub async fn add_checkpoint(
        &self,
        fence: &Fence,
        id: u64,
        state: Bytes,
    ) -> Result<(), StoreError> {
        let path = self.checkpoint_path(id);
        self.blobs.put(&path, state).await?;
        let key = checkpoint_key(id);
        let pointer = serde_json::to_string(&Pointer {
            path: path.clone(),
            marked_for_deletion: false,
        })
        .expect("a pointer serialises");
        let mut last_error = None;
        for _ in 0..3 {
            let result = self
                .map
                .update(fence, &key, |data| match data.get(&key) {
                    Some(existing) if existing == &pointer => Ok(Change::Keep(())),
                    Some(other) => Err(StoreError::Corrupt {
                        key: key.clone(),
                        reason: format!("already points elsewhere: {other}"),
                    }),
                    None => {
                        data.insert(key.clone(), pointer.clone());
                        Ok(Change::Write(()))
                    }
                })
                .await;
            match result {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                // The flaw: a pointer write whose answer was lost counts as failed, and the
                // blob of a checkpoint that may have committed is discarded (FLINK-28265).
                Err(error)
                    if error.is_possibly_inconsistent()
                        && self.flaws.has(Flaw::DiscardAfterAmbiguousCommit) =>
                {
                    self.blobs.delete(&path).await?;
                    return Err(error);
                }
                Err(error) if error.is_possibly_inconsistent() => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        match last_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The IDs of the committed checkpoints not marked for deletion, lowest first.
    pub async fn committed(&self) -> Result<Vec<u64>, StoreError> {
        let data = self.map.read().await?;
        Ok(checkpoint_ids(&data)
            .into_iter()
            .filter(|(_, p)| !p.marked_for_deletion)
            .map(|(id, _)| id)
            .collect())
    }

    /// Subsume committed checkpoints beyond the newest `retained` (two-phase removal each).
    /// Call it only after the newest pointer is committed ([`JobStore::add_checkpoint`]
    /// returned `Ok`), never before. Returns the IDs removed.
    pub async fn subsume(&self, fence: &Fence, retained: usize) -> Result<Vec<u64>, StoreError> {
        assert!(retained >= 1, "at least one checkpoint must be retained");
        let committed = self.committed().await?;
        let excess = committed.len().saturating_sub(retained);
        let subsumed: Vec<u64> = committed.into_iter().take(excess).collect();
        for old in &subsumed {
            self.remove_checkpoint(fence, *old).await?;
        }
        Ok(subsumed)
    }

    /// Remove checkpoint `id` in two repeatable phases: mark the pointer (CAS), discard the blob,
    /// remove the key (CAS). A crash between any two steps leaves a state the next leader
    /// finishes by calling this again.
    pub async fn remove_checkpoint(&self, fence: &Fence, id: u64) -> Result<(), StoreError> {
        let key = checkpoint_key(id);
        if self.flaws.has(Flaw::RemovalNotRepeatable) {
            return self.remove_unmarked(fence, &key).await;
        }
        let marked = self
            .map
            .update(fence, &key, |data| {
                let Some(value) = data.get(&key) else {
                    return Ok(Change::Keep(None));
                };
                let mut pointer: Pointer =
                    serde_json::from_str(value).map_err(|e| StoreError::Corrupt {
                        key: key.clone(),
                        reason: e.to_string(),
                    })?;
                if pointer.marked_for_deletion {
                    return Ok(Change::Keep(Some(pointer)));
                }
                pointer.marked_for_deletion = true;
                data.insert(
                    key.clone(),
                    serde_json::to_string(&pointer).expect("a pointer serialises"),
                );
                Ok(Change::Write(Some(pointer)))
            })
            .await?;
        let Some(pointer) = marked else { return Ok(()) };
        self.blobs.delete(&pointer.path).await?;
        self.map
            .update(fence, &key, |data| {
                Ok(if data.remove(&key).is_some() {
                    Change::Write(())
                } else {
                    Change::Keep(())
                })
            })
            .await
    }

    /// [`Flaw::RemovalNotRepeatable`]: discard the blob, then remove the key, nothing marked
    /// first; a failure between the two leaves a committed pointer to nothing.
    async fn remove_unmarked(&self, fence: &Fence, key: &str) -> Result<(), StoreError> {
        let Some(value) = self.map.read().await?.remove(key) else {
            return Ok(());
        };
        let pointer: Pointer = serde_json::from_str(&value).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        self.blobs.delete(&pointer.path).await?;
        self.map
            .update(fence, key, |data| {
                Ok(if data.remove(key).is_some() {
                    Change::Write(())
                } else {
                    Change::Keep(())
                })
            })
            .await
    }

    /// Recover: read the map afresh and return the highest committed checkpoint whose blob
    /// exists, reporting every committed pointer whose blob is missing (like Flink, which loads
    /// every retained checkpoint on recovery).
    pub async fn recover_latest(&self) -> Result<Recovered, StoreError> {
        let data = self.map.read().await?;
        let mut latest = None;
        let mut dangling = Vec::new();
        for (id, pointer) in checkpoint_ids(&data).into_iter().rev() {
            if pointer.marked_for_deletion {
                continue;
            }
            if latest.is_some() {
                // An older checkpoint: only whether its blob is still there matters, and a
                // failure to tell must not fail the recovery.
                if let Ok(false) = self.blobs.exists(&pointer.path).await {
                    dangling.push(id);
                }
                continue;
            }
            match self.blobs.get(&pointer.path).await {
                Ok(state) => latest = Some((id, state)),
                Err(error) if error.is_not_found() => dangling.push(id),
                Err(error) => return Err(error.into()),
            }
        }
        dangling.reverse();
        Ok(Recovered { latest, dangling })
    }

    /// Finish what earlier leaders left half done: removals whose pointer is marked.
    pub async fn finish_removals(&self, fence: &Fence) -> Result<usize, StoreError> {
        let data = self.map.read().await?;
        let marked: Vec<u64> = checkpoint_ids(&data)
            .into_iter()
            .filter(|(_, p)| p.marked_for_deletion)
            .map(|(id, _)| id)
            .collect();
        for id in &marked {
            self.remove_checkpoint(fence, *id).await?;
        }
        Ok(marked.len())
    }

    /// The running jobs registry entry: `RUNNING`, `DONE`, or absent.
    pub async fn registry(&self) -> Result<Option<String>, StoreError> {
        Ok(self.map.read().await?.get(&self.registry_key()).cloned())
    }

    fn registry_key(&self) -> String {
        registry_key(&self.job_id)
    }

    /// Set the registry entry (fenced).
    pub async fn set_registry(&self, fence: &Fence, state: &str) -> Result<(), StoreError> {
        self.map.set(fence, &self.registry_key(), state).await
    }

    fn job_graph_key(&self) -> String {
        format!("jobGraph-{}", self.job_id)
    }

    fn job_graph_path(&self) -> String {
        format!("{}/{}/job-graph", self.cluster_id, self.job_id)
    }

    /// Store the job graph: blob first, then the pointer (fenced). An ambiguous pointer write
    /// surfaces as "possibly inconsistent" and leaves the blob in place; storing the same graph
    /// again is safe.
    pub async fn put_job_graph(&self, fence: &Fence, graph: Bytes) -> Result<(), StoreError> {
        let path = self.job_graph_path();
        self.blobs.put(&path, graph).await?;
        let pointer = serde_json::to_string(&Pointer {
            path,
            marked_for_deletion: false,
        })
        .expect("a pointer serialises");
        self.map.set(fence, &self.job_graph_key(), &pointer).await
    }

    /// The job graph, read from the store (`None` when none was submitted). A pointer whose blob
    /// is missing is an error, not an absent graph.
    pub async fn job_graph(&self) -> Result<Option<Bytes>, StoreError> {
        let key = self.job_graph_key();
        let Some(value) = self.map.read().await?.remove(&key) else {
            return Ok(None);
        };
        let pointer: Pointer = serde_json::from_str(&value).map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        match self.blobs.get(&pointer.path).await {
            Ok(graph) => Ok(Some(graph)),
            Err(error) if error.is_not_found() => Err(StoreError::Corrupt {
                key,
                reason: format!("the job graph blob {:?} is missing", pointer.path),
            }),
            Err(error) => Err(error.into()),
        }
    }

    fn job_result_path(&self) -> String {
        job_result_path(&self.cluster_id, &self.job_id)
    }

    /// The job's recorded terminal result, if it reached one. It lives in the blob store, not in
    /// the job's map, so it outlives the map's deletion: a later leader that finds it never
    /// starts the job again (Flink's JobResultStore).
    pub async fn job_result(&self) -> Result<Option<JobResult>, StoreError> {
        let path = self.job_result_path();
        match self.blobs.get(&path).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        key: path,
                        reason: e.to_string(),
                    })
            }
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Discard every blob of the job, then delete its map (fenced). Only a globally terminal
    /// state may lead here ([`JobStore::clean_up_terminal`]), or [`Flaw::NonTerminalCleanup`].
    pub(crate) async fn discard(&self, fence: &Fence) -> Result<(), StoreError> {
        let prefix = format!("{}/{}/", self.cluster_id, self.job_id);
        for path in self.blobs.list(&prefix).await? {
            self.blobs.delete(&path).await?;
        }
        self.map.delete(fence).await
    }

    async fn put_job_result(&self, result: &JobResult) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(result).expect("a job result serialises");
        Ok(self
            .blobs
            .put(&self.job_result_path(), Bytes::from(bytes))
            .await?)
    }

    /// After a globally terminal state: record the result (outside the map, first, so no later
    /// leader restarts the job), mark the registry DONE, discard every blob of the job, delete
    /// its map, then mark the result clean. Repeatable from any step a crash left it at; the
    /// first terminal state recorded wins. A shutdown that is not globally terminal must not
    /// call this: it deletes nothing then.
    pub async fn clean_up_terminal(
        &self,
        fence: &Fence,
        state: TerminalState,
    ) -> Result<JobResult, StoreError> {
        let mut result = match self.job_result().await? {
            Some(result) if result.clean => return Ok(result),
            Some(result) => result,
            None => {
                let result = JobResult {
                    job_id: self.job_id.clone(),
                    state,
                    clean: false,
                };
                self.put_job_result(&result).await?;
                result
            }
        };
        if self.map.exists().await? {
            self.set_registry(fence, "DONE").await?;
        }
        self.discard(fence).await?;
        result.clean = true;
        self.put_job_result(&result).await?;
        Ok(result)
    }
}

/// A globally terminal job state: after it, the job's HA data is removed and it never runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TerminalState {
    /// The job completed.
    Finished,
    /// The job was cancelled.
    Canceled,
    /// The job failed beyond its restart strategy.
    Failed,
}

/// A job's recorded terminal result (in the blob store, beside the job's state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    /// The job.
    pub job_id: String,
    /// How it ended.
    pub state: TerminalState,
    /// Whether its HA data has been removed.
    pub clean: bool,
}

/// The key of a job's entry in the running-jobs registry of its map (`RUNNING`, then `DONE`
/// once a terminal cleanup began).
pub fn registry_key(job_id: &str) -> String {
    format!("runningJobsRegistry-{job_id}")
}

/// The blob path of a job's terminal result (Flink's JobResultStore entry). Once it exists the
/// job never runs again, so its checkpoints are never read: cleanup may then delete them in any
/// order and be cut off at any step.
pub fn job_result_path(cluster_id: &str, job_id: &str) -> String {
    format!("{cluster_id}/_job-results/{job_id}.json")
}

/// The name of a job's ConfigMap: its checkpoint counter and pointers, and its job graph.
pub fn job_map_name(cluster_id: &str, job_id: &str) -> String {
    format!("{cluster_id}-{job_id}-config-map")
}

/// The name of a cluster's ConfigMap: the leader lock (ConfigMap kind) and leader information.
pub fn cluster_map_name(cluster_id: &str) -> String {
    format!("{cluster_id}-cluster-config-map")
}

/// The name of a cluster's leader lock: the cluster's map for the ConfigMap lock (Flink's
/// layout), `{cluster-id}-cluster-leader` for a Lease.
pub fn cluster_lock_name(cluster_id: &str, kind: LockKind) -> String {
    match kind {
        LockKind::ConfigMap => cluster_map_name(cluster_id),
        LockKind::Lease => format!("{cluster_id}-cluster-leader"),
    }
}

/// Publish `info` as the leader of `component` in the cluster's map, fenced (the map must be
/// sealed by `fence` first). Observers follow it with
/// [`LeaderRetriever`](crate::retrieval::LeaderRetriever).
pub async fn publish_leader(
    cluster_map: &FencedMap,
    fence: &Fence,
    component: &str,
    info: &LeaderInfo,
) -> Result<(), StoreError> {
    cluster_map
        .set(fence, &leader_key(component), &info.to_value())
        .await
}

/// The checkpoint pointers in a map, by id ascending.
fn checkpoint_ids(data: &BTreeMap<String, String>) -> Vec<(u64, Pointer)> {
    data.iter()
        .filter_map(|(key, value)| {
            let id: u64 = key.strip_prefix("checkpointID-")?.parse().ok()?;
            let pointer: Pointer = serde_json::from_str(value).ok()?;
            Some((id, pointer))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_keys_sort_by_id() {
        assert_eq!(checkpoint_key(7), "checkpointID-0000000000000000007");
        assert!(checkpoint_key(9) < checkpoint_key(10));
    }

    #[test]
    fn pointers_serialise_as_flink_writes_them() {
        let pointer = Pointer {
            path: "a/b".into(),
            marked_for_deletion: false,
        };
        assert_eq!(
            serde_json::to_string(&pointer).unwrap(),
            r#"{"path":"a/b","markedForDeletion":false}"#
        );
        let data: BTreeMap<String, String> = [
            (checkpoint_key(3), r#"{"path":"p3"}"#.to_owned()),
            (
                checkpoint_key(12),
                r#"{"path":"p12","markedForDeletion":true}"#.to_owned(),
            ),
            ("counter".to_owned(), "13".to_owned()),
        ]
        .into();
        let ids: Vec<(u64, bool)> = checkpoint_ids(&data)
            .into_iter()
            .map(|(id, p)| (id, p.marked_for_deletion))
            .collect();
        assert_eq!(ids, [(3, false), (12, true)]);
    }
}
