//! Fault schedules as data: what goes wrong, to whom, when and for how long. A schedule is drawn
//! from a seed (swarm testing: each run switches fault classes on and off and draws their rates),
//! written into the history, and can be generated and shrunk by proptest.
//!
//! The world applies a schedule by reconciling: at every change it computes the state every
//! active fault asks for (links cut, nodes crashed, stopped or paused, clocks drifting, server and
//! blob faults) and applies the difference, so faults may overlap freely.

use std::collections::BTreeSet;
use std::fmt;

use khaos_elector::blob::BlobFaults;
use khaos_sim::apiserver::Faults;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The name of the API server host.
pub const APISERVER: &str = "apiserver";
/// The name of the blob store host.
pub const BLOBSTORE: &str = "blobstore";

/// The prefix of the lock objects of the simulated cluster (`khaos-cluster-config-map`,
/// `khaos-cluster-leader`): fault rules aimed at renewals name it.
pub const LOCK_PREFIX: &str = "khaos-cluster-";

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
}

impl Fault {
    /// The fault's class, as swarm testing switches it.
    pub fn class(&self) -> FaultClass {
        match self {
            Fault::Partition { .. } | Fault::Clog { .. } => FaultClass::Partition,
            Fault::Crash { .. } => FaultClass::Crash,
            Fault::Stop { .. } => FaultClass::Stop,
            Fault::Pause { .. } => FaultClass::Pause,
            Fault::Drift { .. } | Fault::WallOffset { .. } => FaultClass::Clock,
            Fault::Server { .. } => FaultClass::Server,
            Fault::ServerRestart | Fault::Compact => FaultClass::ServerRestart,
            Fault::Reset { .. } => FaultClass::Reset,
            Fault::Blob { .. } => FaultClass::Blob,
        }
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
        }
    }
}

/// The classes swarm testing switches on and off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultClass {
    /// Network partitions.
    Partition,
    /// Crashes and restarts.
    Crash,
    /// Graceful stops and restarts.
    Stop,
    /// Stop-the-world pauses.
    Pause,
    /// Clock drift and wall-clock offsets.
    Clock,
    /// API server latency, errors, ambiguous commits, watch faults, stale reads.
    Server,
    /// API server restarts and compactions.
    ServerRestart,
    /// Blob store latency, failures and ambiguous writes.
    Blob,
    /// Connection resets of one node.
    Reset,
    /// Swizzle-clogging: cut a random subset of the nodes from the API server one by one, then
    /// restore them in a random order (drawn as staggered partitions).
    Swizzle,
    /// A blip: the leader's lock renewals fail (429 or 5xx) for less than a retry period, so
    /// one renewal fails and the next succeeds. A correct leader keeps its lease.
    Blip,
}

impl FaultClass {
    /// Every class.
    pub const ALL: [FaultClass; 11] = [
        FaultClass::Partition,
        FaultClass::Crash,
        FaultClass::Stop,
        FaultClass::Pause,
        FaultClass::Clock,
        FaultClass::Server,
        FaultClass::ServerRestart,
        FaultClass::Blob,
        FaultClass::Swizzle,
        FaultClass::Reset,
        FaultClass::Blip,
    ];

    /// Whether a fault of this class breaks the timing assumptions leader election rests on
    /// (then believed-leadership overlap is a figure, not a violation).
    pub fn breaks_timing(self) -> bool {
        matches!(self, FaultClass::Pause)
    }
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
    pub fn validate(&self, nodes: &[String], observers: &[String]) -> Result<(), String> {
        let role = |name: &str| name == LEADER || name == STANDBY;
        let node = |name: &str| role(name) || nodes.iter().any(|n| n == name);
        let client = |name: &str| node(name) || observers.iter().any(|o| o == name);
        let host = |name: &str| client(name) || name == APISERVER || name == BLOBSTORE;
        for (index, scheduled) in self.faults.iter().enumerate() {
            let problem = |what: String| format!("faults[{index}] ({}): {what}", scheduled.fault);
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
                | Fault::WallOffset { node: n, .. } => {
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

    /// The classes in use.
    pub fn classes(&self) -> BTreeSet<FaultClass> {
        self.faults.iter().map(|s| s.fault.class()).collect()
    }

    /// Whether any fault breaks the timing assumptions (see [`FaultClass::breaks_timing`]); a
    /// clock whose drifts add up beyond the bound the timing tolerates counts too. Overlapping
    /// drifts of one node add up; a drift aimed at a role may land on any of `nodes`, so it is
    /// added wherever that makes the sum largest.
    pub fn breaks_timing(&self, nodes: &[String]) -> bool {
        if self.faults.iter().any(|s| s.fault.class().breaks_timing()) {
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
        let bound = i64::try_from(DRIFT_BOUND_PPM).expect("small");
        drifts.iter().any(|(at, _, _)| {
            let t = at.at_ms;
            let active: Vec<(&str, i64)> = drifts
                .iter()
                .filter(|(s, _, _)| s.at_ms <= t && t <= s.end_ms())
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

/// The clock drift the election tolerates, in parts per million. The renew deadline is two thirds
/// of the lease by default: a 10 % drift still keeps the stale leader's deadline before the
/// standby's view of the lease, so the bound used here is a conservative 5 %.
pub const DRIFT_BOUND_PPM: u64 = 50_000;

/// What swarm testing drew for a run: which classes are on and how often they strike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Swarm {
    /// The classes switched on.
    pub classes: BTreeSet<FaultClass>,
    /// Mean faults per class over the fault phase.
    pub per_class: u32,
}

/// Draw a swarm and its schedule from `seed` for `nodes` (and `observers`, whose connections may
/// be reset) over a fault phase of `phase_ms`. `allowed` limits the classes (a scenario's
/// focus); `lease_ms` scales durations.
pub fn swarm(
    seed: u64,
    nodes: &[String],
    observers: &[String],
    phase_ms: u64,
    lease_ms: u64,
    allowed: &[FaultClass],
) -> (Swarm, Schedule) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4152_4d00_0000);
    let mut classes: BTreeSet<FaultClass> = allowed
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.5))
        .collect();
    if classes.is_empty() && !allowed.is_empty() {
        classes.insert(allowed[rng.random_range(0..allowed.len())]);
    }
    let per_class: u32 = rng.random_range(1..=4);
    let mut faults = Vec::new();
    for class in &classes {
        let count = rng.random_range(1..=per_class * 2);
        if *class == FaultClass::Swizzle {
            for _ in 0..count.div_ceil(2) {
                swizzle(&mut rng, nodes, phase_ms, lease_ms, &mut faults);
            }
            continue;
        }
        // The pattern alone: other drifts on top would push a clock past the bound, and then
        // overlap is no longer judged.
        if *class == FaultClass::Clock && rng.random_bool(0.5) {
            slow_leader_cut_off(&mut rng, nodes, phase_ms, lease_ms, &mut faults);
            continue;
        }
        if *class == FaultClass::Server && rng.random_bool(0.3) {
            stalled_leader_cut_off(&mut rng, phase_ms, lease_ms, &mut faults);
        }
        for _ in 0..count {
            let at_ms = rng.random_range(0..phase_ms.max(1));
            // From a blip to a few leases.
            let for_ms = rng
                .random_range(lease_ms / 10..=lease_ms * 3)
                .min(phase_ms - at_ms);
            let mut node = nodes[rng.random_range(0..nodes.len())].clone();
            if *class == FaultClass::Reset && !observers.is_empty() && rng.random_bool(0.3) {
                node = observers[rng.random_range(0..observers.len())].clone();
            }
            let fault = draw(&mut rng, *class, node);
            let for_ms = match (class, &fault) {
                (_, Fault::ServerRestart | Fault::Compact | Fault::Reset { .. }) => 0,
                // Shorter than any retry period the catalogue uses.
                (FaultClass::Blip, _) => (lease_ms / 10).min(phase_ms - at_ms),
                _ => for_ms,
            };
            faults.push(Scheduled {
                at_ms,
                for_ms,
                fault,
            });
        }
    }
    let swarm = Swarm { classes, per_class };
    (swarm, Schedule { faults }.sorted())
}

/// The clock skew that makes a timing margin matter: every node runs fast, and whoever leads
/// is slowed on top (each within the bound) two seconds before it loses the API server for
/// longer than the lease, twice. Its renew deadline lasts longer, and the standbys' view of its
/// lease shorter, than the wall clock says: only the margin between the two keeps beliefs apart.
fn slow_leader_cut_off(
    rng: &mut ChaCha8Rng,
    nodes: &[String],
    phase_ms: u64,
    lease_ms: u64,
    faults: &mut Vec<Scheduled>,
) {
    let bound = i64::try_from(DRIFT_BOUND_PPM).expect("small");
    let fast = rng.random_range(bound / 2..=bound);
    let mut cuts = Vec::new();
    let mut at_ms = rng.random_range(2_000..=lease_ms);
    for _ in 0..2 {
        let cut_ms = rng.random_range(lease_ms + 2_000..=lease_ms * 2);
        if at_ms + cut_ms > phase_ms {
            break;
        }
        cuts.push((at_ms, cut_ms));
        at_ms += cut_ms + rng.random_range(3_000..=6_000);
    }
    let Some(&(first, _)) = cuts.first() else {
        return;
    };
    let end = cuts
        .iter()
        .map(|(at, cut)| at + cut)
        .max()
        .expect("one cut");
    for node in nodes.iter().filter(|n| !n.starts_with('@')) {
        faults.push(Scheduled {
            at_ms: first - 2_000,
            for_ms: end - (first - 2_000),
            fault: Fault::Drift {
                node: node.clone(),
                ppm: fast,
            },
        });
    }
    for (at_ms, cut_ms) in cuts {
        let slow = rng.random_range(bound / 2..=bound);
        faults.push(Scheduled {
            at_ms: at_ms - 2_000,
            for_ms: cut_ms + 2_000,
            fault: Fault::Drift {
                node: LEADER.into(),
                ppm: -(fast + slow),
            },
        });
        faults.push(Scheduled {
            at_ms,
            for_ms: cut_ms,
            fault: Fault::Partition {
                a: LEADER.into(),
                b: APISERVER.into(),
                oneway: false,
            },
        });
    }
}

/// A gray failure: the leader's next writes stall in the API server for longer than a lease (they
/// commit late), and the leader then loses its network for longer than the lease, so a standby
/// takes over while the stalled writes are still on their way.
fn stalled_leader_cut_off(
    rng: &mut ChaCha8Rng,
    phase_ms: u64,
    lease_ms: u64,
    faults: &mut Vec<Scheduled>,
) {
    use khaos_sim::apiserver::{LatencyRule, RequestVerb, Rule};
    let stall_ms = rng.random_range(1_000..=3_000);
    let cut_ms = rng.random_range(lease_ms..=lease_ms * 2);
    if stall_ms + cut_ms >= phase_ms {
        return;
    }
    let at_ms = rng.random_range(0..phase_ms - stall_ms - cut_ms);
    let delay_ms = rng.random_range(lease_ms * 3 / 2..=lease_ms * 3);
    let faults_on = Faults {
        latency: vec![LatencyRule {
            rule: Rule::verbs(&[RequestVerb::Update, RequestVerb::Patch]).for_client(LEADER),
            min_ms: delay_ms,
            max_ms: delay_ms,
        }],
        ..Faults::default()
    };
    faults.push(Scheduled {
        at_ms,
        for_ms: stall_ms,
        fault: Fault::Server { faults: faults_on },
    });
    faults.push(Scheduled {
        at_ms: at_ms + stall_ms,
        for_ms: cut_ms,
        fault: Fault::Partition {
            a: LEADER.into(),
            b: APISERVER.into(),
            oneway: false,
        },
    });
}

/// Cut a random subset of `nodes` from the API server one by one, `step` apart, then restore them
/// in a random order, `step` apart (`nodes` may hold roles; duplicates are skipped).
fn swizzle(
    rng: &mut ChaCha8Rng,
    nodes: &[String],
    phase_ms: u64,
    lease_ms: u64,
    faults: &mut Vec<Scheduled>,
) {
    let mut chosen: Vec<String> = nodes
        .iter()
        .filter(|n| !n.starts_with('@'))
        .filter(|_| rng.random_bool(0.6))
        .cloned()
        .collect();
    if chosen.is_empty() {
        return;
    }
    let step = rng.random_range(lease_ms / 10..=lease_ms / 2).max(1);
    let span = step * 2 * chosen.len() as u64;
    if span >= phase_ms {
        return;
    }
    let start = rng.random_range(0..phase_ms - span);
    // Cut in the drawn order; restore in a shuffled order after the last cut.
    let mut restore: Vec<usize> = (0..chosen.len()).collect();
    for i in (1..restore.len()).rev() {
        restore.swap(i, rng.random_range(0..=i));
    }
    let last_cut = start + step * (chosen.len() as u64 - 1);
    for (position, node) in chosen.drain(..).enumerate() {
        let at_ms = start + step * position as u64;
        let rank = restore
            .iter()
            .position(|r| *r == position)
            .expect("a permutation");
        let end_ms = last_cut + step * (rank as u64 + 1);
        faults.push(Scheduled {
            at_ms,
            for_ms: end_ms - at_ms,
            fault: Fault::Partition {
                a: node,
                b: APISERVER.to_owned(),
                oneway: false,
            },
        });
    }
}

/// The shortest stall: longer than the default lease, so a standby can take over meanwhile.
fn lease_stall_ms(rng: &mut ChaCha8Rng) -> u64 {
    rng.random_range(20_000..=30_000)
}

fn draw(rng: &mut ChaCha8Rng, class: FaultClass, node: String) -> Fault {
    use khaos_sim::apiserver::{
        AmbiguousOutcome, AmbiguousRule, ErrorRule, LatencyRule, RequestVerb, Rule, StaleReads,
        WatchFaults,
    };
    let writes = vec![
        RequestVerb::Create,
        RequestVerb::Update,
        RequestVerb::Patch,
        RequestVerb::Delete,
    ];
    let probability = |rng: &mut ChaCha8Rng| f64::from(rng.random_range(5u32..=50)) / 100.0;
    match class {
        FaultClass::Partition => {
            // Nodes talk only to the API server and the blob store.
            let other = if rng.random_bool(0.25) {
                BLOBSTORE.to_owned()
            } else {
                APISERVER.to_owned()
            };
            if rng.random_bool(0.2) {
                return Fault::Clog { a: node, b: other };
            }
            let oneway = rng.random_bool(0.3);
            let (a, b) = if oneway && rng.random_bool(0.5) {
                (other, node)
            } else {
                (node, other)
            };
            Fault::Partition { a, b, oneway }
        }
        FaultClass::Crash => Fault::Crash { node },
        FaultClass::Reset => Fault::Reset { node },
        FaultClass::Stop => Fault::Stop { node },
        FaultClass::Pause => Fault::Pause { node },
        FaultClass::Clock => {
            if rng.random_bool(0.5) {
                let bound = i64::try_from(DRIFT_BOUND_PPM).expect("small");
                Fault::Drift {
                    node,
                    ppm: rng.random_range(-bound..=bound),
                }
            } else {
                Fault::WallOffset {
                    node,
                    ms: rng.random_range(-60_000..=60_000),
                }
            }
        }
        FaultClass::Server => {
            let when = |rng: &mut ChaCha8Rng, verbs: &[RequestVerb]| {
                Rule::verbs(verbs).with_probability(probability(rng))
            };
            let mut faults = Faults::default();
            match rng.random_range(0..5) {
                // A stall: a few writes hang in the server for longer than a lease, then commit.
                0 if rng.random_bool(0.25) => faults.latency.push(LatencyRule {
                    min_ms: lease_stall_ms(rng),
                    max_ms: 40_000,
                    rule: Rule::verbs(&writes)
                        .with_probability(f64::from(rng.random_range(5u32..=20)) / 100.0),
                }),
                0 => faults.latency.push(LatencyRule {
                    min_ms: 0,
                    max_ms: rng.random_range(10..=1_500),
                    rule: when(rng, &[]),
                }),
                1 => faults.errors.push(ErrorRule {
                    code: [429, 500, 503, 504][rng.random_range(0..4)],
                    retry_after_seconds: 1,
                    rule: when(rng, &[]),
                }),
                2 => faults.ambiguous.push(AmbiguousRule {
                    outcome: [
                        AmbiguousOutcome::ConnectionLost,
                        AmbiguousOutcome::Timeout,
                        AmbiguousOutcome::InternalError,
                    ][rng.random_range(0..3)],
                    rule: when(rng, &writes),
                }),
                3 => {
                    faults.watch = WatchFaults {
                        delay_ms_min: 0,
                        delay_ms_max: rng.random_range(10..=2_000),
                        close_after_events_max: Some(rng.random_range(1..=5)),
                        no_bookmarks: rng.random_bool(0.5),
                    }
                }
                _ => {
                    faults.stale_reads = Some(StaleReads {
                        lag_revisions_min: 1,
                        lag_revisions_max: rng.random_range(1..=10),
                    })
                }
            }
            Fault::Server { faults }
        }
        FaultClass::ServerRestart => {
            if rng.random_bool(0.5) {
                Fault::ServerRestart
            } else {
                Fault::Compact
            }
        }
        FaultClass::Swizzle => unreachable!("swizzles are drawn as several partitions"),
        FaultClass::Blip => Fault::Server {
            faults: Faults {
                errors: vec![ErrorRule {
                    code: [429, 500, 503][rng.random_range(0..3)],
                    retry_after_seconds: 1,
                    rule: Rule::verbs(&[RequestVerb::Patch, RequestVerb::Update])
                        .for_client(LEADER)
                        .for_name(LOCK_PREFIX),
                }],
                ..Faults::default()
            },
        },
        FaultClass::Blob => Fault::Blob {
            faults: BlobFaults {
                latency_ms_min: 0,
                latency_ms_max: rng.random_range(0..=500),
                fail_probability: probability(rng) / 2.0,
                ambiguous_probability: probability(rng) / 2.0,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["node-a".into(), "node-b".into(), "node-c".into()]
    }

    #[test]
    fn the_same_seed_draws_the_same_schedule_and_seeds_differ() {
        let a = swarm(7, &nodes(), &[], 60_000, 15_000, &FaultClass::ALL);
        assert_eq!(a, swarm(7, &nodes(), &[], 60_000, 15_000, &FaultClass::ALL));
        let differ = (0..20)
            .filter(|s| swarm(*s, &nodes(), &[], 60_000, 15_000, &FaultClass::ALL) != a)
            .count();
        assert!(differ >= 19);
    }

    #[test]
    fn schedules_stay_in_the_fault_phase_and_in_the_allowed_classes() {
        for seed in 0..200 {
            let (swarm, schedule) =
                swarm(seed, &nodes(), &[], 60_000, 15_000, &[FaultClass::Crash]);
            assert_eq!(swarm.classes, [FaultClass::Crash].into());
            assert!(schedule.end_ms() <= 60_000, "seed {seed}: {schedule:?}");
            assert!(!schedule.faults.is_empty());
            assert!(schedule.faults.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        }
    }

    #[test]
    fn a_swizzle_cuts_one_by_one_and_restores_after_the_last_cut_in_shuffled_order() {
        let mut orders = BTreeSet::new();
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut faults = Vec::new();
            swizzle(&mut rng, &nodes(), 60_000, 15_000, &mut faults);
            if faults.len() < 2 {
                continue;
            }
            let cuts: Vec<u64> = faults.iter().map(|f| f.at_ms).collect();
            assert!(
                cuts.windows(2).all(|w| w[0] < w[1]),
                "cut one by one: {faults:?}"
            );
            let last_cut = *cuts.last().unwrap();
            let mut ends: Vec<u64> = faults.iter().map(Scheduled::end_ms).collect();
            assert!(
                ends.iter().all(|e| *e > last_cut && *e <= 60_000),
                "{faults:?}"
            );
            let order: Vec<usize> = {
                let mut by_end: Vec<usize> = (0..ends.len()).collect();
                by_end.sort_by_key(|i| ends[*i]);
                by_end
            };
            orders.insert(order);
            ends.sort_unstable();
            ends.dedup();
            assert_eq!(ends.len(), faults.len(), "restored one by one");
            for fault in &faults {
                assert!(
                    matches!(&fault.fault, Fault::Partition { b, oneway: false, .. } if b == APISERVER)
                );
            }
        }
        assert!(orders.len() > 2, "restore orders vary: {orders:?}");
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
        let bound = i64::try_from(DRIFT_BOUND_PPM).unwrap();
        let schedule = |faults| Schedule { faults };
        // Fast for everyone, and the leader slowed on top: its net rate is within the bound.
        let net_within = schedule(vec![
            drift(0, 60_000, "node-a", bound / 2),
            drift(10_000, 5_000, LEADER, -bound),
        ]);
        assert!(!net_within.breaks_timing(&nodes()));
        // Two drifts of one node the same way, at once: beyond.
        let sum_beyond = schedule(vec![
            drift(0, 60_000, "node-a", bound / 2),
            drift(10_000, 5_000, "node-a", bound),
        ]);
        assert!(sum_beyond.breaks_timing(&nodes()));
        // The same two, one after the other: within.
        let apart = schedule(vec![
            drift(0, 5_000, "node-a", bound),
            drift(10_000, 5_000, "node-a", bound),
        ]);
        assert!(!apart.breaks_timing(&nodes()));
        // A role may land on the node that already drifts.
        let role = schedule(vec![
            drift(0, 60_000, "node-b", -bound / 2),
            drift(10_000, 5_000, STANDBY, -bound),
        ]);
        assert!(role.breaks_timing(&nodes()));
        // The leader and a standby at once are two nodes: their drifts do not add up.
        let both = schedule(vec![
            drift(10_000, 5_000, LEADER, bound * 2 / 3),
            drift(10_000, 5_000, STANDBY, bound * 2 / 3),
        ]);
        assert!(!both.breaks_timing(&nodes()));
        assert!(schedule(vec![drift(0, 1, "node-a", bound + 1)]).breaks_timing(&nodes()));
    }

    #[test]
    fn schedules_round_trip_as_json() {
        let (_, schedule) = swarm(3, &nodes(), &[], 60_000, 15_000, &FaultClass::ALL);
        let text = serde_json::to_string(&schedule).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&text).unwrap(), schedule);
    }
}
