//! What a scenario decides about one run, before anything runs it: the cluster (candidates,
//! observers, the lock, the election timing, the job), how long faults may strike and how long the
//! healed phase lasts, and the fault schedule. Any executor runs a [`Setup`]: the simulator
//! (`khaos_sim::world`) today, and, for what a live cluster can do, the live injector once it
//! exists (`khaos chaos`, not built yet).
//!
//! ```
//! use khaos_scenarios::Setup;
//! let setup = Setup::new(7);
//! assert_eq!(setup.node_names(), ["node-a", "node-b", "node-c"]);
//! assert_eq!(setup.observer_names(), ["observer-a"]);
//! assert_eq!(setup.job.cluster_id, "khaos");
//! ```

use std::time::Duration;

use khaos_elector::jobmaster::JobMasterConfig;
use khaos_elector::{LockKind, Timing};
use khaos_reports::faults::Schedule;
use khaos_reports::settings::{Pods, names};

/// The prefix of the lock objects of a [`Setup`]'s cluster (`khaos-cluster-config-map`,
/// `khaos-cluster-leader`): fault rules aimed at renewals name it.
pub const LOCK_PREFIX: &str = "khaos-cluster-";

/// The job's data map in a [`Setup`]'s cluster (`job_map_name` of its ids, which a test holds):
/// rules aimed at the job's writes name it.
pub const JOB_MAP: &str = "khaos-00000000000000000000000000000000-config-map";

/// One run as a scenario describes it.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The seed: everything in the run follows from it and the settings below.
    pub seed: u64,
    /// Candidates (`node-a`, `node-b`, ...).
    pub nodes: usize,
    /// Observers following the leader information (`observer-a`, ...).
    pub observers: usize,
    /// The lock kind.
    pub lock: LockKind,
    /// Lease duration, renew deadline, retry period.
    pub timing: Timing,
    /// The job master's settings (namespace and cluster come from here).
    pub job: JobMasterConfig,
    /// How long faults may strike, in milliseconds.
    pub fault_phase_ms: u64,
    /// How long the healed phase lasts (liveness is judged in it).
    pub healed_phase_ms: u64,
    /// The faults.
    pub schedule: Schedule,
    /// The scenario that made it (`custom` for a setup made by hand).
    pub scenario: String,
    /// What the scenario drew beyond its name (the swarm's classes and rates, ...), recorded in
    /// the history's first line for people.
    pub drawn: serde_json::Value,
    /// The candidates as the pods of a ReplicaSet of `nodes` replicas, named by the API server
    /// and run by a kubelet; `None`: fixed hosts named `node-a`, `node-b`, ...
    pub pods: Option<Pods>,
}

impl Setup {
    /// Three candidates, one observer, the ConfigMap lock, validated default timing (15/10/2 s),
    /// a checkpoint every 2 s, 60 s of faults (none scheduled) and 60 s healed.
    pub fn new(seed: u64) -> Setup {
        let mut job = JobMasterConfig::new("default", "khaos");
        job.checkpoint_interval = Duration::from_secs(2);
        Setup {
            seed,
            nodes: 3,
            observers: 1,
            lock: LockKind::ConfigMap,
            timing: Timing::default(),
            job,
            fault_phase_ms: 60_000,
            healed_phase_ms: 60_000,
            schedule: Schedule::default(),
            scenario: "custom".into(),
            drawn: serde_json::Value::Null,
            pods: None,
        }
    }

    /// The candidates' names (none in advance when they are pods: the API server names them,
    /// and faults aim at them by role).
    pub fn node_names(&self) -> Vec<String> {
        if self.pods.is_some() {
            return Vec::new();
        }
        names("node", self.nodes)
    }

    /// The observers' names.
    pub fn observer_names(&self) -> Vec<String> {
        names("observer", self.observers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_map_constant_names_the_setups_job_map() {
        let job = Setup::new(1).job;
        assert_eq!(
            JOB_MAP,
            khaos_elector::store::job_map_name(&job.cluster_id, &job.job_id)
        );
    }
}
