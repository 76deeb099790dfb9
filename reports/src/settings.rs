//! The first line of a history: the run's [`Settings`], typed. Everything needed to judge the
//! history comes from here ([`Settings::context`]), so `khaos report` judges any recorded run
//! with no simulator code; everything needed to replay a simulated run is here too (scenario,
//! seed, step, flaws, the schedule that ran).
//!
//! ```
//! use khaos_reports::settings::Settings;
//! let settings = Settings::example();
//! let context = settings.context()?;
//! assert_eq!(context.cluster_id, "khaos");
//! assert!(!context.overlap_allowed, "validated timing and no pause");
//! let line = serde_json::to_string(&settings).unwrap();
//! assert_eq!(serde_json::from_str::<Settings>(&line).unwrap(), settings);
//! # Ok::<(), khaos_reports::settings::SettingsError>(())
//! ```

use std::time::Duration;

use khaos_elector::flaws::Flaws;
use khaos_elector::{LockKind, Timing};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::{Fault, Schedule};
use khaos_elector::store::{cluster_lock_name, cluster_map_name, job_map_name, job_result_path};

/// What a run was, as its history's first line records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What ran: a scenario of the catalogue, `bug/<flaw>` of the corpus, or a live run's name.
    pub scenario: String,
    /// The seed: everything in a simulated run follows from it and the settings below.
    pub seed: u64,
    /// What the scenario drew beyond its name (the swarm's classes and rates, ...), for people.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub drawn: Value,
    /// Candidates, named `node-a`, `node-b`, ... ([`names`]).
    pub nodes: usize,
    /// Observers following the leader information, named `observer-a`, ...
    pub observers: usize,
    /// The lock kind.
    pub lock: LockKind,
    /// The namespace of the lock and the HA ConfigMaps.
    pub namespace: String,
    /// The cluster id every HA object is named after.
    pub cluster_id: String,
    /// The job's id.
    pub job_id: String,
    /// The election timing the candidates ran with.
    pub lease_duration_ms: u64,
    /// See `lease_duration_ms`.
    pub renew_deadline_ms: u64,
    /// See `lease_duration_ms`.
    pub retry_period_ms: u64,
    /// Whether the timing was accepted without validation (Flink's 15/15/5 s): believed
    /// leadership may then overlap.
    pub unchecked_timing: bool,
    /// The job master's time between checkpoints.
    pub checkpoint_interval_ms: u64,
    /// Records after which the job finishes (globally terminal); `None`: it runs on.
    pub finish_at_records: Option<u64>,
    /// How long faults may strike.
    pub fault_phase_ms: u64,
    /// How long the healed phase lasts (liveness is judged in it).
    pub healed_phase_ms: u64,
    /// The simulation's step (`None` for a live run).
    pub tick_ms: Option<u64>,
    /// The bound on one message's delay in the network the run had, which liveness bounds
    /// include.
    pub network_delay_max_ms: u64,
    /// The bound on how late a watch event may arrive without a watch fault.
    pub watch_delay_max_ms: u64,
    /// Known bugs switched on (the simulator's regression corpus; never in a live run).
    pub flaws: Flaws,
    /// The faults that ran.
    pub schedule: Schedule,
    /// Whether the candidates ran as the pods of a ReplicaSet (named by the API server, so
    /// replacements have new names) rather than as fixed hosts; `None`: fixed hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Pods>,
}

/// Candidates as the pods of a ReplicaSet of `nodes` replicas, started and stopped by a kubelet
/// (in the simulator, `khaos-sim`'s `cluster` decisions over simulated hosts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pods {
    /// The pods' `terminationGracePeriodSeconds`.
    pub grace_seconds: u32,
    /// Whether the kubelet gives a force-deleted pod its full grace before SIGKILL, as many
    /// kubelet versions do (otherwise the minimum, 2 s).
    pub force_delete_full_grace: bool,
    /// Whether the container's first process ignores SIGTERM (a shell wrapper as PID 1 has no
    /// handler and forwards nothing), so only SIGKILL stops it.
    pub sigterm_ignored: bool,
}

/// Settings that cannot be judged with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The timing breaks `lease > renew deadline > 1.2 x retry period` but is not marked
    /// unchecked.
    #[error(
        "the run's settings (the history's first line): {0} (mark it unchecked_timing if the nodes ran so)"
    )]
    Timing(String),
}

impl Settings {
    /// The election timing.
    pub fn timing(&self) -> Result<Timing, SettingsError> {
        let (lease, renew, retry) = (
            Duration::from_millis(self.lease_duration_ms),
            Duration::from_millis(self.renew_deadline_ms),
            Duration::from_millis(self.retry_period_ms),
        );
        if self.unchecked_timing {
            return Ok(Timing::unchecked(lease, renew, retry));
        }
        Timing::new(lease, renew, retry).map_err(|e| SettingsError::Timing(e.to_string()))
    }

    /// The candidates' names.
    pub fn candidates(&self) -> Vec<String> {
        names("node", self.nodes)
    }

    /// What the checkers need to know, all of it from these settings: the objects to read, the
    /// timing, whether the run broke the timing assumptions (unchecked timing, a pause, drifts
    /// adding up beyond the bound), and the delay bounds.
    pub fn context(&self) -> Result<Context, SettingsError> {
        let timing = self.timing()?;
        Ok(Context {
            namespace: self.namespace.clone(),
            cluster_id: self.cluster_id.clone(),
            job_id: self.job_id.clone(),
            lock: self.lock,
            timing,
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms),
            overlap_allowed: timing.is_unchecked()
                || self.schedule.breaks_timing(&self.candidates(), &timing),
            network_delay_max: Duration::from_millis(self.network_delay_max_ms),
            watch_delay_max: Duration::from_millis(
                self.watch_delay_max_ms
                    .max(watch_fault_delay_max_ms(&self.schedule)),
            ),
        })
    }

    /// The settings of a small simulated run, for examples and tests.
    pub fn example() -> Settings {
        Settings {
            scenario: "example".into(),
            seed: 7,
            drawn: Value::Null,
            nodes: 3,
            observers: 1,
            lock: LockKind::ConfigMap,
            namespace: "default".into(),
            cluster_id: "khaos".into(),
            job_id: "00000000000000000000000000000000".into(),
            lease_duration_ms: 15_000,
            renew_deadline_ms: 10_000,
            retry_period_ms: 2_000,
            unchecked_timing: false,
            checkpoint_interval_ms: 2_000,
            finish_at_records: None,
            fault_phase_ms: 60_000,
            healed_phase_ms: 60_000,
            tick_ms: Some(10),
            network_delay_max_ms: 100,
            watch_delay_max_ms: 0,
            flaws: Flaws::NONE,
            schedule: Schedule::default(),
            pods: None,
        }
    }
}

/// What the checkers need to know about a run besides its history.
#[derive(Clone, Debug)]
pub struct Context {
    /// The namespace of the HA ConfigMaps and the lock.
    pub namespace: String,
    /// The cluster: its map is `{cluster_id}-cluster-config-map`.
    pub cluster_id: String,
    /// The job: its map is `{cluster_id}-{job_id}-config-map`.
    pub job_id: String,
    /// The lock kind: the annotation on the cluster map, or the Lease named by
    /// [`cluster_lock_name`].
    pub lock: LockKind,
    /// The election timing the candidates ran with.
    pub timing: Timing,
    /// The job master's time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Whether the run injected a fault that breaks the timing assumptions (a pause, clock drift
    /// beyond its bound, unchecked timing): overlap is then a figure, not a violation.
    pub overlap_allowed: bool,
    /// The network's delay bound.
    pub network_delay_max: Duration,
    /// The bound on how late a watch event may arrive.
    pub watch_delay_max: Duration,
}

impl Context {
    pub(crate) fn cluster_map(&self) -> String {
        cluster_map_name(&self.cluster_id)
    }

    pub(crate) fn job_map(&self) -> String {
        job_map_name(&self.cluster_id, &self.job_id)
    }

    /// The blob path of the job's terminal result.
    pub(crate) fn job_result(&self) -> String {
        job_result_path(&self.cluster_id, &self.job_id)
    }

    /// The lock object: its resource and its name.
    pub(crate) fn lock_object(&self) -> (&'static str, String) {
        let name = cluster_lock_name(&self.cluster_id, self.lock);
        match self.lock {
            LockKind::ConfigMap => ("configmaps", name),
            LockKind::Lease => ("leases", name),
        }
    }
}

/// The longest a watch event may be held back by the schedule's watch faults.
fn watch_fault_delay_max_ms(schedule: &Schedule) -> u64 {
    schedule
        .faults
        .iter()
        .filter_map(|s| match &s.fault {
            Fault::Server { faults } => Some(faults.watch.delay_ms_max),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// The simulator's default tick, in milliseconds: a replay line names `--tick-ms` only when
/// the run used another.
pub const SIM_TICK_MS_DEFAULT: u64 = 10;

/// The command that replays a simulated run: its scenario and seed, and the tick and flaws when
/// they are not the defaults.
pub fn replay_command(scenario: &str, seed: u64, tick_ms: u64, flaws: Flaws) -> String {
    let mut line = format!("khaos sim run --scenario {scenario} --seed {seed}");
    if tick_ms != SIM_TICK_MS_DEFAULT {
        line += &format!(" --tick-ms {tick_ms}");
    }
    for flaw in flaws.iter() {
        line += &format!(" --flaw {flaw}");
    }
    line
}

impl Settings {
    /// The command that replays this run, if it was simulated (a live run's timing does not
    /// replay).
    pub fn replay_command(&self) -> Option<String> {
        Some(replay_command(
            &self.scenario,
            self.seed,
            self.tick_ms?,
            self.flaws,
        ))
    }
}

/// `count` names of `kind`, as khaos names the hosts of a run: `node-a`, `node-b`, ...,
/// `node-z`, `node-a1`, ...
pub fn names(kind: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|index| {
            let letter = char::from(b'a' + u8::try_from(index % 26).expect("small"));
            if index < 26 {
                format!("{kind}-{letter}")
            } else {
                format!("{kind}-{letter}{}", index / 26)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{LEADER, Scheduled};

    #[test]
    fn names_are_letters() {
        assert_eq!(names("node", 3), ["node-a", "node-b", "node-c"]);
        assert_eq!(names("node", 28)[27], "node-b1");
    }

    #[test]
    fn a_pause_or_unchecked_timing_allows_overlap_and_watch_faults_widen_the_bound() {
        let mut settings = Settings::example();
        assert!(!settings.context().unwrap().overlap_allowed);
        settings.schedule.faults.push(Scheduled {
            at_ms: 1_000,
            for_ms: 20_000,
            fault: Fault::Pause {
                node: LEADER.into(),
            },
        });
        assert!(settings.context().unwrap().overlap_allowed);
        let mut settings = Settings::example();
        (settings.lease_duration_ms, settings.renew_deadline_ms) = (15_000, 15_000);
        let error = settings.context().unwrap_err();
        assert!(matches!(error, SettingsError::Timing(_)), "{error}");
        settings.unchecked_timing = true;
        assert!(settings.context().unwrap().overlap_allowed);
        let mut settings = Settings::example();
        settings.watch_delay_max_ms = 1_000;
        assert_eq!(
            settings.context().unwrap().watch_delay_max,
            Duration::from_secs(1)
        );
        let mut faults = crate::faults::server::Faults::default();
        faults.watch.delay_ms_max = 2_500;
        settings.schedule.faults.push(Scheduled {
            at_ms: 0,
            for_ms: 1,
            fault: Fault::Server { faults },
        });
        assert_eq!(
            settings.context().unwrap().watch_delay_max,
            Duration::from_millis(2_500)
        );
    }
}
