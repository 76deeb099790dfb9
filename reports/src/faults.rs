//! Faults as data: what goes wrong, to whom, when and for how long. A [`Schedule`] is what a
//! scenario decides; the simulator executes it (and a live injector will: `khaos chaos` is not
//! built yet); the history records every
//! fault as it starts and ends; the checkers read those records. Targets are host names or roles
//! ([`LEADER`], [`STANDBY`]) that an executor resolves when the fault starts, so "crash the
//! leader" means the leader on every seed and on every backend.
//!
//! The API server's own fault rules are in [`server`].
//!
//! ```
//! use khaos_reports::faults::{Fault, LEADER, Schedule, Scheduled, APISERVER};
//! let schedule = Schedule {
//!     faults: vec![Scheduled { at_ms: 10_000, for_ms: 20_000, fault: Fault::Partition { a: LEADER.into(), b: APISERVER.into(), oneway: false } }],
//! };
//! schedule.validate(&["node-a".into(), "node-b".into()], &[])?;
//! assert_eq!(schedule.end_ms(), 30_000);
//! assert_eq!(schedule.faults[0].fault.to_string(), "partition @leader <-> apiserver");
//! # Ok::<(), khaos_reports::faults::ScheduleError>(())
//! ```

pub mod server;

use std::fmt;

use khaos_elector::Timing;
use khaos_elector::blob::BlobFaults;
use khaos_elector::timing::millis;
use serde::{Deserialize, Serialize};

use self::server::Faults;

/// The name of the API server host.
pub const APISERVER: &str = "apiserver";
/// The name of the blob store host.
pub const BLOBSTORE: &str = "blobstore";

/// A node name that stands for whichever node believes it leads when the fault starts.
pub const LEADER: &str = "@leader";
/// A node name that stands for the first node that does not lead when the fault starts.
pub const STANDBY: &str = "@standby";

/// One fault. Node names may be roles ([`LEADER`], [`STANDBY`]), resolved when the fault starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Cut the link between `a` and `b` (both ways, or only `a -> b`).
    Partition {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// Only messages from `a` to `b` are lost.
        oneway: bool,
    },
    /// Clog the link between `a` and `b`: messages both ways are held, and delivered when the
    /// fault ends (a stalled switch or a full buffer: late, not lost).
    Clog {
        /// One end.
        a: String,
        /// The other end.
        b: String,
    },
    /// Kill a node (no revoke, no release); it starts afresh when the fault ends.
    Crash {
        /// The node.
        node: String,
    },
    /// Stop a node gracefully (revoke, release); it starts afresh when the fault ends.
    Stop {
        /// The node.
        node: String,
    },
    /// Freeze a node (a stop-the-world pause: nothing runs, no timer fires); when the fault ends
    /// it resumes and its clock has jumped.
    Pause {
        /// The node.
        node: String,
    },
    /// A node's clock runs fast or slow by `ppm` parts per million.
    Drift {
        /// The node.
        node: String,
        /// Parts per million (positive: fast).
        ppm: i64,
    },
    /// A node's wall clock is off by `ms` (its monotonic clock is untouched).
    WallOffset {
        /// The node.
        node: String,
        /// Milliseconds (positive: ahead).
        ms: i64,
    },
    /// The API server injects these faults.
    Server {
        /// The faults.
        faults: Faults,
    },
    /// The API server resets every connection of a node (or an observer) when the fault starts:
    /// its requests in flight and its watches end.
    Reset {
        /// Whose connections (the client identity's prefix).
        node: String,
    },
    /// The API server restarts when the fault starts: every connection and watch drops.
    ServerRestart,
    /// The API server compacts its history when the fault starts: resumes from before get 410.
    Compact,
    /// The blob store injects these faults.
    Blob {
        /// The faults.
        faults: BlobFaults,
    },
    /// Delete a node's pod through the API when the fault starts, as `kubectl delete pod` and the
    /// chaos tools do (only where the candidates are pods: [`crate::settings::Pods`]). With a
    /// grace the pod is marked for deletion and its kubelet stops it within that grace; with
    /// grace 0 (`--grace-period=0 --force`) the object goes at once and the kubelet stops the
    /// process by its own rule. Either way its ReplicaSet starts a replacement at once.
    DeletePod {
        /// The node (the pod's name, or a role).
        node: String,
        /// The grace in seconds; `None`: the pod's own `terminationGracePeriodSeconds`.
        grace_seconds: Option<u32>,
    },
}

impl Fault {
    /// Whether the fault can disturb an election (slow a hand-over, fail a renewal): anything but
    /// blob store faults and wall-clock offsets (expiry is judged on monotonic clocks).
    pub fn disturbs_election(&self) -> bool {
        !matches!(self, Fault::Blob { .. } | Fault::WallOffset { .. })
    }

    /// Whether the fault is aimed at `node`: an end of a cut or clogged link, the node crashed,
    /// stopped, paused, drifting or offset, whose connections are reset, or a client an API
    /// server rule names.
    pub fn touches(&self, node: &str) -> bool {
        match self {
            Fault::Partition { a, b, .. } | Fault::Clog { a, b } => a == node || b == node,
            Fault::Crash { node: n }
            | Fault::Stop { node: n }
            | Fault::Pause { node: n }
            | Fault::Drift { node: n, .. }
            | Fault::WallOffset { node: n, .. }
            | Fault::Reset { node: n }
            | Fault::DeletePod { node: n, .. } => n == node,
            Fault::Server { faults } => faults
                .rules()
                .any(|rule| rule.clients.iter().any(|c| c == node)),
            Fault::ServerRestart | Fault::Compact | Fault::Blob { .. } => false,
        }
    }

    /// Whether this fault breaks the timing assumptions leader election rests on on its own (a
    /// stop-the-world pause: a paused leader cannot step down by its deadline); then
    /// believed-leadership overlap is a figure, not a violation. Drifts break them only when they
    /// add up beyond [`DRIFT_BOUND_PPM`] ([`Schedule::breaks_timing`]).
    pub fn breaks_timing(&self) -> bool {
        matches!(self, Fault::Pause { .. })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { a, b, oneway } => {
                write!(
                    f,
                    "partition {a} {} {b}",
                    if *oneway { "->" } else { "<->" }
                )
            }
            Fault::Clog { a, b } => write!(f, "clog {a} <-> {b}"),
            Fault::Crash { node } => write!(f, "crash {node}"),
            Fault::Stop { node } => write!(f, "graceful stop {node}"),
            Fault::Pause { node } => write!(f, "pause {node}"),
            Fault::Drift { node, ppm } => write!(f, "clock drift {node} {ppm:+}ppm"),
            Fault::WallOffset { node, ms } => write!(f, "wall clock offset {node} {ms:+}ms"),
            Fault::Server { faults } => write!(
                f,
                "apiserver faults {}",
                serde_json::to_string(faults).expect("faults serialise")
            ),
            Fault::Reset { node } => write!(f, "connections reset {node}"),
            Fault::ServerRestart => write!(f, "apiserver restart"),
            Fault::Compact => write!(f, "apiserver compaction"),
            Fault::Blob { faults } => write!(
                f,
                "blob store faults {}",
                serde_json::to_string(faults).expect("faults serialise")
            ),
            Fault::DeletePod {
                node,
                grace_seconds: Some(0),
            } => write!(f, "force delete pod {node}"),
            Fault::DeletePod {
                node,
                grace_seconds: Some(grace),
            } => write!(f, "delete pod {node} (grace {grace} s)"),
            Fault::DeletePod {
                node,
                grace_seconds: None,
            } => write!(f, "delete pod {node}"),
        }
    }
}

/// A fault a schedule cannot run, with what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("faults[{index}] ({fault}): {reason}")]
pub struct ScheduleError {
    /// The fault's position in the schedule.
    pub index: usize,
    /// The fault, in words.
    pub fault: String,
    /// What is wrong and what to change.
    pub reason: String,
}

/// A fault at a time, for a while.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    /// When it starts, in simulated milliseconds from the start of the run.
    pub at_ms: u64,
    /// How long it lasts (0 for instant faults such as a restart of the API server).
    pub for_ms: u64,
    /// What.
    pub fault: Fault,
}

impl Scheduled {
    /// When it ends.
    pub fn end_ms(&self) -> u64 {
        self.at_ms + self.for_ms
    }
}

/// A run's faults, in start order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The faults.
    pub faults: Vec<Scheduled>,
}

impl Schedule {
    /// The schedule with its faults sorted by start (stable, so equal starts keep their order).
    pub fn sorted(mut self) -> Schedule {
        self.faults.sort_by_key(|s| s.at_ms);
        self
    }

    /// Check every fault before a world applies it: names are candidates, observers, the
    /// API server, the blob store or a role, as the fault allows; rates and rules are in range.
    /// The error names the fault and what to change.
    pub fn validate(&self, nodes: &[String], observers: &[String]) -> Result<(), ScheduleError> {
        let role = |name: &str| name == LEADER || name == STANDBY;
        let node = |name: &str| role(name) || nodes.iter().any(|n| n == name);
        let client = |name: &str| node(name) || observers.iter().any(|o| o == name);
        let host = |name: &str| client(name) || name == APISERVER || name == BLOBSTORE;
        for (index, scheduled) in self.faults.iter().enumerate() {
            let problem = |reason: String| ScheduleError {
                index,
                fault: scheduled.fault.to_string(),
                reason,
            };
            if scheduled.at_ms.checked_add(scheduled.for_ms).is_none() {
                return Err(problem("at_ms + for_ms is too large".into()));
            }
            let names = format!(
                "the candidates are {}, the observers {}, the roles {LEADER} and {STANDBY}",
                nodes.join(", "),
                if observers.is_empty() {
                    "none".to_owned()
                } else {
                    observers.join(", ")
                }
            );
            match &scheduled.fault {
                Fault::Partition { a, b, .. } | Fault::Clog { a, b } => {
                    for end in [a, b] {
                        if !host(end) {
                            return Err(problem(format!(
                                "no host {end:?}; {names}, and the hosts {APISERVER} and {BLOBSTORE}"
                            )));
                        }
                    }
                    if a == b {
                        return Err(problem("a host cannot be cut off from itself".into()));
                    }
                }
                Fault::Crash { node: n }
                | Fault::Stop { node: n }
                | Fault::Pause { node: n }
                | Fault::Drift { node: n, .. }
                | Fault::WallOffset { node: n, .. }
                | Fault::DeletePod { node: n, .. } => {
                    if !node(n) {
                        return Err(problem(format!("{n:?} is not a candidate; {names}")));
                    }
                }
                Fault::Reset { node: n } => {
                    if !client(n) {
                        return Err(problem(format!("{n:?} is not a client; {names}")));
                    }
                }
                Fault::Server { faults } => faults.validate().map_err(problem)?,
                Fault::Blob { faults } => faults.validate().map_err(problem)?,
                Fault::ServerRestart | Fault::Compact => {}
            }
            if let Fault::Drift { ppm, .. } = &scheduled.fault
                && ppm.unsigned_abs() >= 500_000
            {
                return Err(problem(format!(
                    "a drift of {ppm} ppm is beyond any clock; use less than 500000 either way"
                )));
            }
        }
        Ok(())
    }

    /// When the last fault ends.
    pub fn end_ms(&self) -> u64 {
        self.faults.iter().map(Scheduled::end_ms).max().unwrap_or(0)
    }

    /// Whether any fault breaks the timing assumptions (a pause: see [`Fault::breaks_timing`]); a
    /// clock whose drifts add up beyond what `timing` tolerates ([`drift_bound_ppm`]) counts too.
    /// Overlapping drifts of one node add up; a drift aimed at a role may land on any of `nodes`,
    /// so it is added wherever that makes the sum largest.
    pub fn breaks_timing(&self, nodes: &[String], timing: &Timing) -> bool {
        if self.faults.iter().any(|s| s.fault.breaks_timing()) {
            return true;
        }
        let drifts: Vec<(&Scheduled, &str, i64)> = self
            .faults
            .iter()
            .filter_map(|s| match &s.fault {
                Fault::Drift { node, ppm } => Some((s, node.as_str(), *ppm)),
                _ => None,
            })
            .collect();
        let bound = i64::try_from(drift_bound_ppm(timing)).expect("small");
        // The sums change where a drift starts and where one ends; a drift is active from its
        // start until its end (excluded), as the world applies it, and always at its start.
        let changes = drifts.iter().flat_map(|(s, _, _)| [s.at_ms, s.end_ms()]);
        changes.into_iter().any(|t| {
            let active: Vec<(&str, i64)> = drifts
                .iter()
                .filter(|(s, _, _)| s.at_ms <= t && (t < s.end_ms() || s.at_ms == t))
                .map(|(_, node, ppm)| (*node, *ppm))
                .collect();
            let sum = |node: &str, sign: i64| -> i64 {
                active
                    .iter()
                    .filter(|(n, p)| *n == node && p.signum() == sign)
                    .map(|(_, p)| p)
                    .sum()
            };
            let own = |node: &str| sum(node, 1) + sum(node, -1);
            // @leader and @standby resolved at one instant are different nodes; each may land
            // on any node, the way that pushes its clock furthest.
            let roles = [LEADER, STANDBY].map(|role| [sum(role, 1), sum(role, -1)]);
            nodes.iter().any(|node| {
                let own = own(node);
                roles
                    .iter()
                    .flatten()
                    .any(|role| (own + role).abs() > bound)
                    || own.abs() > bound
            })
        })
    }
}

/// The most clock drift khaos judges any timing to tolerate, in parts per million (5 %).
pub const DRIFT_BOUND_PPM: u64 = 50_000;

/// The clock drift, in parts per million, within which `timing` keeps believed leadership
/// exclusive: half the margin, capped at [`DRIFT_BOUND_PPM`] (5 % for the default 15 s / 10 s).
///
/// A leader that stops hearing from the API server believes it leads until its renew deadline
/// `R` on its own clock; a standby takes over once it has seen the record unchanged for the
/// lease `L` on its clock (the whole seconds the record carries, at least the configured lease).
/// With the leader's clock slow by `d` and the standby's fast by `d`, beliefs stay apart while
/// `R (1 + d) < L (1 - d)`, that is `d < (L - R) / (L + R)`. A timing at the edge of the
/// validated space (a lease just above the renew deadline) tolerates almost no drift, and a
/// drift beyond this bound breaks the timing assumptions ([`Schedule::breaks_timing`]).
///
/// ```
/// use khaos_elector::Timing;
/// use khaos_reports::faults::{DRIFT_BOUND_PPM, drift_bound_ppm};
/// use std::time::Duration;
/// assert_eq!(drift_bound_ppm(&Timing::default()), DRIFT_BOUND_PPM);
/// let edge = Timing::new(Duration::from_millis(10_500), Duration::from_secs(10), Duration::from_secs(2))?;
/// assert_eq!(drift_bound_ppm(&edge), 23_809); // (11 - 10) / (11 + 10) / 2: the record says 11 s
/// # Ok::<(), khaos_elector::timing::TimingError>(())
/// ```
pub fn drift_bound_ppm(timing: &Timing) -> u64 {
    let lease = u128::from(millis(timing.lease_honoured()));
    let renew = u128::from(millis(timing.renew_deadline()));
    let margin = lease.saturating_sub(renew) * 1_000_000 / (lease + renew).max(1) / 2;
    u64::try_from(margin).map_or(DRIFT_BOUND_PPM, |m| m.min(DRIFT_BOUND_PPM))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["node-a".into(), "node-b".into(), "node-c".into()]
    }

    #[test]
    fn drifts_break_the_timing_only_when_they_add_up_beyond_the_bound() {
        let drift = |at_ms, for_ms, node: &str, ppm| Scheduled {
            at_ms,
            for_ms,
            fault: Fault::Drift {
                node: node.into(),
                ppm,
            },
        };
        let timing = Timing::default();
        let bound = i64::try_from(DRIFT_BOUND_PPM).unwrap();
        let schedule = |faults| Schedule { faults };
        // Fast for everyone, and the leader slowed on top: its net rate is within the bound.
        let net_within = schedule(vec![
            drift(0, 60_000, "node-a", bound / 2),
            drift(10_000, 5_000, LEADER, -bound),
        ]);
        assert!(!net_within.breaks_timing(&nodes(), &timing));
        // Two drifts of one node the same way, at once: beyond.
        let sum_beyond = schedule(vec![
            drift(0, 60_000, "node-a", bound / 2),
            drift(10_000, 5_000, "node-a", bound),
        ]);
        assert!(sum_beyond.breaks_timing(&nodes(), &timing));
        // Everyone fast, and the leader slowed on top; then the leader's own fast drift ends
        // while the slowing goes on: its net rate is beyond from then on.
        let uncovered = schedule(vec![
            drift(0, 10_000, "node-a", bound / 2),
            drift(0, 10_000, "node-b", bound / 2),
            drift(0, 10_000, "node-c", bound / 2),
            drift(5_000, 20_000, LEADER, -bound * 3 / 2),
        ]);
        assert!(uncovered.breaks_timing(&nodes(), &timing));
        // Drifts that meet end to end do not add up.
        let end_to_end = schedule(vec![
            drift(0, 5_000, "node-a", bound),
            drift(5_000, 5_000, "node-a", bound),
        ]);
        assert!(!end_to_end.breaks_timing(&nodes(), &timing));
        // The same two, one after the other: within.
        let apart = schedule(vec![
            drift(0, 5_000, "node-a", bound),
            drift(10_000, 5_000, "node-a", bound),
        ]);
        assert!(!apart.breaks_timing(&nodes(), &timing));
        // A role may land on the node that already drifts.
        let role = schedule(vec![
            drift(0, 60_000, "node-b", -bound / 2),
            drift(10_000, 5_000, STANDBY, -bound),
        ]);
        assert!(role.breaks_timing(&nodes(), &timing));
        // The leader and a standby at once are two nodes: their drifts do not add up.
        let both = schedule(vec![
            drift(10_000, 5_000, LEADER, bound * 2 / 3),
            drift(10_000, 5_000, STANDBY, bound * 2 / 3),
        ]);
        assert!(!both.breaks_timing(&nodes(), &timing));
        assert!(schedule(vec![drift(0, 1, "node-a", bound + 1)]).breaks_timing(&nodes(), &timing));
        // A timing at the edge of the validated space tolerates less: a drift the default
        // timing rides out breaks it.
        let edge = Timing::new(
            std::time::Duration::from_millis(10_500),
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(2),
        )
        .unwrap();
        let modest = schedule(vec![drift(0, 1, "node-a", bound / 2 + 1_000)]);
        assert!(!modest.breaks_timing(&nodes(), &timing));
        assert!(modest.breaks_timing(&nodes(), &edge));
    }

    #[test]
    fn schedules_round_trip_as_json_and_bad_ones_are_named() {
        let schedule = Schedule {
            faults: vec![Scheduled {
                at_ms: 1_000,
                for_ms: 2_000,
                fault: Fault::Drift {
                    node: LEADER.into(),
                    ppm: -20_000,
                },
            }],
        };
        let text = serde_json::to_string(&schedule).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&text).unwrap(), schedule);
        let bad = Schedule {
            faults: vec![Scheduled {
                at_ms: 0,
                for_ms: 1,
                fault: Fault::Crash {
                    node: "node-z".into(),
                },
            }],
        };
        let error = bad.validate(&nodes(), &[]).unwrap_err();
        assert_eq!(error.index, 0);
        assert!(
            error
                .to_string()
                .starts_with("faults[0] (crash node-z): \"node-z\" is not a candidate"),
            "{error}"
        );
    }
}
