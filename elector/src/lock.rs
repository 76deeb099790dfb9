//! The two lock kinds on the API server: a ConfigMap whose annotation holds the record (Flink's
//! and client-go's ConfigMap lock), and a coordination.k8s.io/v1 Lease. Every write carries the
//! resourceVersion just read, so it is a compare-and-swap.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::client;
use crate::decision::{LEADER_ANNOTATION, LeaderElectionRecord};
use crate::flaws::{Flaw, Flaws};

/// Which kind of object holds the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// A ConfigMap with the record in its `control-plane.alpha.kubernetes.io/leader` annotation;
    /// the HA data can live in the same object, so a data write is fenced by the same CAS.
    ConfigMap,
    /// A coordination.k8s.io/v1 Lease; `leaseTransitions` is the fencing token.
    Lease,
}

impl std::fmt::Display for LockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LockKind::ConfigMap => "configmap",
            LockKind::Lease => "lease",
        })
    }
}

impl std::str::FromStr for LockKind {
    type Err = String;

    fn from_str(s: &str) -> Result<LockKind, String> {
        match s {
            "configmap" => Ok(LockKind::ConfigMap),
            "lease" => Ok(LockKind::Lease),
            other => Err(format!(
                "unknown lock kind {other:?}: use configmap or lease"
            )),
        }
    }
}

/// Why a lock operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another write got there first (409, or 409 AlreadyExists on create): read again.
    #[error("the lock changed since it was read")]
    Conflict,
    /// The record in the lock could not be parsed; the lock is treated as held by nobody we can
    /// reason about, and is not overwritten.
    #[error("the lock record does not parse: {0}")]
    Corrupt(#[source] serde_json::Error),
    /// Any other API failure: a timeout, 5xx, a dropped connection. Retry later.
    #[error("lock request failed: {0}")]
    Api(#[source] kube::Error),
}

impl LockError {
    /// Whether this is a lost compare-and-swap.
    pub fn is_conflict(&self) -> bool {
        matches!(self, LockError::Conflict)
    }
}

impl From<kube::Error> for LockError {
    fn from(error: kube::Error) -> LockError {
        match &error {
            kube::Error::Api(status) if status.code == 409 => LockError::Conflict,
            _ => LockError::Api(error),
        }
    }
}

/// What a read of the lock found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockState {
    /// The record, if the object exists and carries one.
    pub record: Option<LeaderElectionRecord>,
    /// The object's resourceVersion, if it exists: the version a write must carry.
    pub resource_version: Option<String>,
}

/// A lock object on the API server.
#[derive(Clone)]
pub struct Lock {
    kind: LockKind,
    name: String,
    configmaps: Api<ConfigMap>,
    leases: Api<Lease>,
    flaws: Flaws,
}

impl Lock {
    /// The lock `name` of `kind` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, name: &str, kind: LockKind) -> Lock {
        Lock {
            kind,
            name: name.to_owned(),
            configmaps: Api::namespaced(client.clone(), namespace),
            leases: Api::namespaced(client, namespace),
            flaws: Flaws::NONE,
        }
    }

    /// Reproduce these known bugs ([`Flaw::TakeoverWithoutResourceVersion`]).
    #[must_use]
    pub fn with_flaws(mut self, flaws: Flaws) -> Lock {
        self.flaws = flaws;
        self
    }

    /// The lock's kind.
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// The lock object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read the lock.
    pub async fn read(&self) -> Result<LockState, LockError> {
        match self.kind {
            LockKind::ConfigMap => {
                let Some(configmap) =
                    client::bounded(client::REQUEST_TIMEOUT, self.configmaps.get_opt(&self.name))
                        .await?
                else {
                    return Ok(LockState {
                        record: None,
                        resource_version: None,
                    });
                };
                let record = configmap
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(LEADER_ANNOTATION))
                    .map(|json| serde_json::from_str(json).map_err(LockError::Corrupt))
                    .transpose()?;
                Ok(LockState {
                    record,
                    resource_version: configmap.metadata.resource_version,
                })
            }
            LockKind::Lease => {
                let Some(lease) =
                    client::bounded(client::REQUEST_TIMEOUT, self.leases.get_opt(&self.name))
                        .await?
                else {
                    return Ok(LockState {
                        record: None,
                        resource_version: None,
                    });
                };
                let spec = lease.spec.unwrap_or_default();
                let record = spec
                    .holder_identity
                    .is_some()
                    .then(|| LeaderElectionRecord {
                        holder_identity: spec.holder_identity.clone().unwrap_or_default(),
                        lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
                        acquire_time: spec.acquire_time.as_ref().map(micro_time_string),
                        renew_time: spec.renew_time.as_ref().map(micro_time_string),
                        leader_transitions: spec
                            .lease_transitions
                            .and_then(|t| u32::try_from(t).ok())
                            .unwrap_or(0),
                    });
                Ok(LockState {
                    record,
                    resource_version: lease.metadata.resource_version,
                })
            }
        }
    }

    /// Write `record`: create the object when `state` found none, else a compare-and-swap on the
    /// version `state` read. Returns the new resourceVersion.
    pub async fn write(
        &self,
        state: &LockState,
        record: &LeaderElectionRecord,
    ) -> Result<String, LockError> {
        let takeover = state
            .record
            .as_ref()
            .is_some_and(|r| r.holder_identity != record.holder_identity);
        // The flaw: a take-over patch without the version read, so it cannot lose.
        let version = if takeover && self.flaws.has(Flaw::TakeoverWithoutResourceVersion) {
            json!(null)
        } else {
            json!(state.resource_version)
        };
        let rv = match (&state.resource_version, self.kind) {
            (None, LockKind::ConfigMap) => {
                let configmap = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        annotations: Some([(LEADER_ANNOTATION.to_owned(), to_json(record))].into()),
                        ..ObjectMeta::default()
                    },
                    ..ConfigMap::default()
                };
                client::bounded(
                    client::REQUEST_TIMEOUT,
                    self.configmaps.create(&PostParams::default(), &configmap),
                )
                .await?
                .metadata
                .resource_version
            }
            (None, LockKind::Lease) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(lease_spec(record)?),
                };
                client::bounded(
                    client::REQUEST_TIMEOUT,
                    self.leases.create(&PostParams::default(), &lease),
                )
                .await?
                .metadata
                .resource_version
            }
            (Some(_), LockKind::ConfigMap) => {
                // A merge patch that names the version read is a CAS, and leaves the rest of the
                // object (the HA data Flink keeps beside the lock) untouched.
                let patch = json!({"metadata": {"resourceVersion": version, "annotations": {LEADER_ANNOTATION: to_json(record)}}});
                client::bounded(
                    client::REQUEST_TIMEOUT,
                    self.configmaps.patch(
                        &self.name,
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    ),
                )
                .await?
                .metadata
                .resource_version
            }
            (Some(_), LockKind::Lease) => {
                let patch =
                    json!({"metadata": {"resourceVersion": version}, "spec": lease_spec(record)?});
                client::bounded(
                    client::REQUEST_TIMEOUT,
                    self.leases
                        .patch(&self.name, &PatchParams::default(), &Patch::Merge(patch)),
                )
                .await?
                .metadata
                .resource_version
            }
        };
        Ok(rv.unwrap_or_default())
    }
}

fn to_json(record: &LeaderElectionRecord) -> String {
    serde_json::to_string(record).expect("a record serialises")
}

fn lease_spec(record: &LeaderElectionRecord) -> Result<LeaseSpec, LockError> {
    let time = |t: &Option<String>| -> Result<Option<MicroTime>, LockError> {
        t.as_ref()
            .map(|t| serde_json::from_value::<MicroTime>(json!(t)).map_err(LockError::Corrupt))
            .transpose()
    };
    Ok(LeaseSpec {
        holder_identity: Some(record.holder_identity.clone()),
        lease_duration_seconds: Some(record.lease_duration_seconds),
        acquire_time: time(&record.acquire_time)?,
        renew_time: time(&record.renew_time)?,
        lease_transitions: Some(i32::try_from(record.leader_transitions).unwrap_or(i32::MAX)),
        ..LeaseSpec::default()
    })
}

fn micro_time_string(time: &MicroTime) -> String {
    serde_json::to_value(time)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
