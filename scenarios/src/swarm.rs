//! Swarm testing: each seed switches fault classes on and off and draws their rates, then
//! strikes at random moments and nodes, with a few correlated patterns a uniform draw would
//! almost never produce (a slow leader cut off among fast clocks, a stalled leader cut off, a
//! swizzle of cuts and restores, a blip of one failed renewal).
//!
//! ```
//! use khaos_scenarios::swarm::{FaultClass, swarm};
//! let nodes = ["node-a".to_owned(), "node-b".to_owned()];
//! let (drawn, schedule) = swarm(7, &nodes, &[], 60_000, 15_000, &[FaultClass::Crash]);
//! assert_eq!(drawn.classes, [FaultClass::Crash].into());
//! assert!(schedule.end_ms() <= 60_000);
//! assert_eq!(swarm(7, &nodes, &[], 60_000, 15_000, &[FaultClass::Crash]).1, schedule);
//! ```

use std::collections::BTreeSet;

use khaos_elector::blob::BlobFaults;
use khaos_reports::faults::server::Faults;
use khaos_reports::faults::{
    APISERVER, BLOBSTORE, DRIFT_BOUND_PPM, Fault, LEADER, Schedule, Scheduled,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::setup::LOCK_PREFIX;
use crate::story::slow_leader_cut_off;

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
}

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
            faults.extend(slow_leader_cut_off(&mut rng, nodes, phase_ms, lease_ms));
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

/// A gray failure: the leader's next writes stall in the API server for longer than a lease (they
/// commit late), and the leader then loses its network for longer than the lease, so a standby
/// takes over while the stalled writes are still on their way.
fn stalled_leader_cut_off(
    rng: &mut ChaCha8Rng,
    phase_ms: u64,
    lease_ms: u64,
    faults: &mut Vec<Scheduled>,
) {
    use khaos_reports::faults::server::{LatencyRule, RequestVerb, Rule};
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
    use khaos_reports::faults::server::{
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
}
