//! Swarm testing: each seed switches fault classes on and off and draws their rates, then
//! strikes at random moments and nodes, with a few correlated patterns a uniform draw would
//! almost never produce (a slow leader cut off among fast clocks, a stalled leader cut off, a
//! swizzle of cuts and restores, a blip of one failed renewal).
//!
//! ```
//! use khaos_scenarios::swarm::{FaultClass, swarm};
//! let nodes = ["node-a".to_owned(), "node-b".to_owned()];
//! let (drawn, schedule) = swarm(7, &nodes, &[], 60_000, &khaos_elector::Timing::default(), &[FaultClass::Crash]);
//! assert_eq!(drawn.classes, [FaultClass::Crash].into());
//! assert!(schedule.end_ms() <= 60_000);
//! assert_eq!(swarm(7, &nodes, &[], 60_000, &khaos_elector::Timing::default(), &[FaultClass::Crash]).1, schedule);
//! ```

use std::collections::BTreeSet;
use std::ops::Range;

use std::time::Duration;

use khaos_elector::Timing;
use khaos_elector::blob::BlobFaults;
use khaos_elector::timing::{JITTER_FACTOR, millis};
use khaos_reports::faults::server::Faults;
use khaos_reports::faults::{
    APISERVER, BLOBSTORE, Fault, LEADER, STANDBY, Schedule, Scheduled, drift_bound_ppm,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::setup::{JOB_MAP, LOCK_PREFIX};
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
    /// Gray failures: part of the API server misbehaves while the rest answers: writes fail,
    /// hang or commit without an answer while reads succeed (or the other way round), for one
    /// object or one node (the leader, a standby), or answers come slower than the renew
    /// deadline.
    Gray,
}

impl FaultClass {
    /// Every class.
    pub const ALL: [FaultClass; 12] = [
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
        FaultClass::Gray,
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
/// focus); `timing` scales durations and bounds the drifts ([`drift_bound_ppm`]).
pub fn swarm(
    seed: u64,
    nodes: &[String],
    observers: &[String],
    phase_ms: u64,
    timing: &Timing,
    allowed: &[FaultClass],
) -> (Swarm, Schedule) {
    let lease_ms = millis(timing.lease_duration());
    let drift_ppm = drift_bound_ppm(timing);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4152_4d00_0000);
    let mut classes: BTreeSet<FaultClass> = allowed
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.5))
        .collect();
    if classes.is_empty() && !allowed.is_empty() {
        classes.insert(allowed[rng.random_range(0..allowed.len())]);
    }
    // The slow leader cut off among fast clocks shows a timing margin through believed overlap,
    // which a pause would turn into a figure: the pattern comes without pauses.
    let slow_leader = classes.contains(&FaultClass::Clock) && rng.random_bool(0.5);
    if slow_leader {
        classes.remove(&FaultClass::Pause);
    }
    let per_class: u32 = rng.random_range(1..=4);
    let mut faults = Vec::new();
    let mut blips = 0;
    for class in &classes {
        let count = rng.random_range(1..=per_class * 2);
        // Drawn last, into quiet stretches of the others.
        if *class == FaultClass::Blip {
            blips = count;
            continue;
        }
        if *class == FaultClass::Swizzle {
            for _ in 0..count.div_ceil(2) {
                swizzle(&mut rng, nodes, phase_ms, lease_ms, &mut faults);
            }
            continue;
        }
        // The pattern alone: other drifts on top would push a clock past the bound, and then
        // overlap is no longer judged.
        if *class == FaultClass::Clock && slow_leader {
            faults.extend(slow_leader_cut_off(
                &mut rng, nodes, phase_ms, lease_ms, drift_ppm,
            ));
            continue;
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
            let fault = draw(&mut rng, *class, node, timing, drift_ppm);
            let for_ms = match (class, &fault) {
                (_, Fault::ServerRestart | Fault::Compact | Fault::Reset { .. }) => 0,
                _ => for_ms,
            };
            faults.push(Scheduled {
                at_ms,
                for_ms,
                fault,
            });
        }
    }
    // A gray failure of the API server, drawn last into a quiet stretch of the others; half the
    // time, alone in its stretch (the others there are dropped): the late writes it makes tell
    // only if the standby's takeover and its first checkpoints happen undisturbed.
    let gray = classes.contains(&FaultClass::Server) || classes.contains(&FaultClass::Gray);
    if gray && rng.random_bool(0.5) {
        let alone = rng.random_bool(0.5);
        stalled_leader_cut_off(&mut rng, &mut faults, phase_ms, timing, alone);
    }
    for _ in 0..blips {
        let blip = blip(&mut rng, &faults, phase_ms, timing);
        faults.push(blip);
    }
    let swarm = Swarm { classes, per_class };
    (swarm, Schedule { faults }.sorted())
}

/// A blip where it tells: the leader's renewals fail for three quarters of a retry period (one
/// renewal fails, the next succeeds), placed (best of sixteen draws) where no other fault was
/// active for the lease, the renew deadline and two retry periods before (what the needless-loss
/// rule looks back over) nor within a renew deadline after (while the loss it could cause would
/// come), so that a leader that loses its lease to it has nothing else to blame.
fn blip(rng: &mut ChaCha8Rng, others: &[Scheduled], phase_ms: u64, timing: &Timing) -> Scheduled {
    use khaos_reports::faults::server::{ErrorRule, RequestVerb, Rule};
    let for_ms = millis(timing.retry_period()) * 3 / 4;
    let before_ms =
        millis(timing.lease_honoured() + timing.renew_deadline() + timing.retry_period() * 2);
    let after_ms = millis(timing.renew_deadline());
    let (at_ms, _) = quiet_start(rng, others, phase_ms, for_ms, before_ms, after_ms);
    Scheduled {
        at_ms,
        for_ms: for_ms.min(phase_ms.saturating_sub(at_ms)),
        fault: Fault::Server {
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
    }
}

/// An election timing drawn from the validated space (`lease > renew deadline > 1.2 x retry
/// period`), with weight near its edges, where timing mistakes show: half the time the
/// default 15 s / 10 s / 2 s; otherwise a retry period from 1 s to 5 s (often at an end), a
/// renew deadline often just above 1.2 retry periods (one failed renewal leaves no room for a
/// second), and a lease often just above the renew deadline (a stale leader's belief ends just
/// before a standby may take over), from 3 s to 30 s.
///
/// The floor of 1 s is the simulated network's: a renewal is two round trips of up to 100 ms
/// each way, and a leader renews half a renew deadline apart at the most
/// ([`Timing::renew_interval`]), so a deadline under 800 ms could not be met with no fault at
/// all; 1 s keeps 1.2 s of deadline above that.
///
/// ```
/// use khaos_scenarios::swarm::draw_timing;
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
/// for _ in 0..100 {
///     let timing = draw_timing(&mut rng);
///     assert!(!timing.is_unchecked());
///     assert!(timing.lease_duration() > timing.renew_deadline());
/// }
/// ```
pub fn draw_timing(rng: &mut ChaCha8Rng) -> Timing {
    if rng.random_bool(0.5) {
        return Timing::default();
    }
    let retry: u64 = match rng.random_range(0..4) {
        0 => rng.random_range(1_000..=1_100),
        1 => rng.random_range(4_500..=5_000),
        _ => rng.random_range(1_000..=5_000),
    };
    // Just above 1.2 retry periods, client-go's floor.
    let renew_floor = retry * 6 / 5 + 1;
    let renew: u64 = if rng.random_bool(0.4) {
        renew_floor + rng.random_range(0..=retry / 20)
    } else {
        rng.random_range(renew_floor..=renew_floor.max(20_000))
    };
    let lease: u64 = if rng.random_bool(0.4) {
        renew + rng.random_range(1..=(renew / 10).max(1))
    } else {
        rng.random_range(renew + renew / 10..=renew * 5 / 2)
    };
    let lease = lease.clamp(3_000, 30_000).max(renew + 1);
    Timing::new(
        Duration::from_millis(lease),
        Duration::from_millis(renew),
        Duration::from_millis(retry),
    )
    .expect("drawn inside the validated space")
}

/// The simulated network's bound on one message's delay, which the swarm's patterns allow for
/// (the world's `NETWORK_DELAY_MAX`; a test in the simulator holds them equal).
pub const NETWORK_DELAY_MAX_MS: u64 = 100;

/// Where a fault of `for_ms` starts: where the fewest of `others` that disturb an election
/// ([`Fault::disturbs_election`]) are active from `before_ms` before it until `after_ms` after its end, best of a few draws (the
/// first with none wins). Returns the start and the stretch judged.
fn quiet_start(
    rng: &mut ChaCha8Rng,
    others: &[Scheduled],
    phase_ms: u64,
    for_ms: u64,
    before_ms: u64,
    after_ms: u64,
) -> (u64, Range<u64>) {
    let stretch = |at_ms: u64| at_ms.saturating_sub(before_ms)..at_ms + for_ms + after_ms;
    let mut best = (usize::MAX, 0);
    for _ in 0..16 {
        let at_ms = rng.random_range(0..phase_ms.saturating_sub(for_ms).max(1));
        let range = stretch(at_ms);
        let noisy = others
            .iter()
            .filter(|o| {
                o.fault.disturbs_election() && o.end_ms() >= range.start && o.at_ms <= range.end
            })
            .count();
        if noisy < best.0 {
            best = (noisy, at_ms);
        }
        if noisy == 0 {
            break;
        }
    }
    (best.1, stretch(best.1))
}

/// A gray failure: the leader's writes stall in the API server (they commit late) for long
/// enough to catch a renewal and a checkpoint's counter increment (checkpoints come every 2 s),
/// then the leader loses its network for longer than the lease, so a standby takes over; the
/// stalled writes commit after it has, up to a lease later. Placed where the fewest other faults
/// an election notices happen from a lease before until they have landed; with `alone`, those
/// are dropped from `faults`.
fn stalled_leader_cut_off(
    rng: &mut ChaCha8Rng,
    faults: &mut Vec<Scheduled>,
    phase_ms: u64,
    timing: &Timing,
    alone: bool,
) {
    use khaos_reports::faults::server::{LatencyRule, RequestVerb, Rule};
    let lease_ms = millis(timing.lease_duration());
    let retry_ms = millis(timing.retry_period());
    let stall_ms = rng.random_range(2_000..=4_000);
    let cut_ms = rng.random_range(lease_ms..=lease_ms * 2);
    if stall_ms + cut_ms >= phase_ms {
        return;
    }
    // A standby takes over within the honoured lease, two jittered retry periods and a read and
    // a write of the leader's last renewal; the stalled writes land after that.
    let takeover_ms = stall_ms
        + millis(timing.lease_honoured())
        + millis(timing.retry_period().mul_f64(2.0 * (1.0 + JITTER_FACTOR)))
        + 4 * NETWORK_DELAY_MAX_MS;
    let delay_ms = rng.random_range(takeover_ms..=takeover_ms + lease_ms);
    let span_ms = stall_ms + cut_ms;
    // The last stalled write lands at the stall's end plus the delay.
    let after_ms = (stall_ms + delay_ms).saturating_sub(span_ms) + retry_ms;
    let (at_ms, stretch) = quiet_start(rng, faults, phase_ms, span_ms, lease_ms, after_ms);
    if alone {
        // Drifts stay: within the bound an election does not notice them, and dropping some of
        // a pattern's drifts could leave the rest beyond it.
        faults.retain(|o| {
            !o.fault.disturbs_election()
                || matches!(o.fault, Fault::Drift { .. })
                || o.end_ms() < stretch.start
                || o.at_ms > stretch.end
        });
    }
    let stalled = Faults {
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
        fault: Fault::Server { faults: stalled },
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

/// A stall: longer than the lease, so a standby can take over meanwhile.
fn lease_stall_ms(rng: &mut ChaCha8Rng, timing: &Timing) -> (u64, u64) {
    let lease = millis(timing.lease_duration());
    (rng.random_range(lease * 4 / 3..=lease * 2), lease * 8 / 3)
}

/// A gray failure: one part of the API server misbehaves while the rest answers. Which requests
/// (writes while reads succeed, reads while writes succeed, one verb), of which objects (any, the
/// lock, the job's data map), from whom (anyone, the leader, a standby), and what happens to them
/// (an error, a hang past every timeout, an answer slower than the renew deadline, a commit whose
/// answer is lost).
fn gray(rng: &mut ChaCha8Rng, timing: &Timing) -> Faults {
    use RequestVerb::{Create, Delete, Get, List, Patch, Update, Watch};
    use khaos_reports::faults::server::{
        AmbiguousOutcome, AmbiguousRule, ErrorRule, LatencyRule, RequestVerb, Rule,
    };
    let verbs: &[RequestVerb] = match rng.random_range(0..5) {
        0 | 1 => &[Create, Update, Patch, Delete],
        2 => &[Get, List, Watch],
        3 => &[Update, Patch],
        _ => &[Get],
    };
    let mut rule = Rule::verbs(verbs);
    match rng.random_range(0..3) {
        0 => rule = rule.for_name(LOCK_PREFIX),
        1 => rule = rule.for_name(JOB_MAP),
        _ => {}
    }
    match rng.random_range(0..3) {
        0 => rule = rule.for_client(LEADER),
        1 => rule = rule.for_client(STANDBY),
        _ => {}
    }
    if rng.random_bool(0.5) {
        rule = rule.with_probability(f64::from(rng.random_range(30u32..=100)) / 100.0);
    }
    let writes = rule.verbs.iter().all(|v| v.is_write());
    let mut faults = Faults::default();
    match rng.random_range(0..5) {
        0 => faults.errors.push(ErrorRule {
            code: [429, 500, 503, 504][rng.random_range(0..4)],
            retry_after_seconds: 1,
            rule,
        }),
        1 => faults.hang.push(rule),
        // Writes commit and their answer is lost (twice as likely: what HA metadata must survive).
        2 | 3 if writes => faults.ambiguous.push(AmbiguousRule {
            outcome: [
                AmbiguousOutcome::ConnectionLost,
                AmbiguousOutcome::Timeout,
                AmbiguousOutcome::InternalError,
            ][rng.random_range(0..3)],
            rule,
        }),
        // Slower than the renew deadline allows, from half of it to twice it.
        _ => {
            let renew = millis(timing.renew_deadline());
            faults.latency.push(LatencyRule {
                min_ms: renew / 2,
                max_ms: renew * 2,
                rule,
            })
        }
    }
    faults
}

fn draw(
    rng: &mut ChaCha8Rng,
    class: FaultClass,
    node: String,
    timing: &Timing,
    drift_ppm: u64,
) -> Fault {
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
                let bound = i64::try_from(drift_ppm).expect("small");
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
            match rng.random_range(0..6) {
                // A stall: a few writes hang in the server for longer than a lease, then commit.
                0 if rng.random_bool(0.25) => {
                    let (min_ms, max_ms) = lease_stall_ms(rng, timing);
                    faults.latency.push(LatencyRule {
                        min_ms,
                        max_ms,
                        rule: Rule::verbs(&writes)
                            .with_probability(f64::from(rng.random_range(5u32..=20)) / 100.0),
                    })
                }
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
                4 => {
                    faults.stale_reads = Some(StaleReads {
                        lag_revisions_min: 1,
                        lag_revisions_max: rng.random_range(1..=10),
                    })
                }
                // A few requests of any kind hang until the client gives up.
                _ => faults.hang.push(
                    Rule::always().with_probability(f64::from(rng.random_range(2u32..=20)) / 100.0),
                ),
            }
            Fault::Server { faults }
        }
        FaultClass::Gray => Fault::Server {
            faults: gray(rng, timing),
        },
        FaultClass::ServerRestart => {
            if rng.random_bool(0.5) {
                Fault::ServerRestart
            } else {
                Fault::Compact
            }
        }
        FaultClass::Swizzle => unreachable!("swizzles are drawn as several partitions"),
        FaultClass::Blip => unreachable!("blips are drawn by blip()"),
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
        let a = swarm(
            7,
            &nodes(),
            &[],
            60_000,
            &Timing::default(),
            &FaultClass::ALL,
        );
        assert_eq!(
            a,
            swarm(
                7,
                &nodes(),
                &[],
                60_000,
                &Timing::default(),
                &FaultClass::ALL
            )
        );
        let differ = (0..20)
            .filter(|s| {
                swarm(
                    *s,
                    &nodes(),
                    &[],
                    60_000,
                    &Timing::default(),
                    &FaultClass::ALL,
                ) != a
            })
            .count();
        assert!(differ >= 19);
    }

    #[test]
    fn schedules_stay_in_the_fault_phase_and_in_the_allowed_classes() {
        for seed in 0..200 {
            let (swarm, schedule) = swarm(
                seed,
                &nodes(),
                &[],
                60_000,
                &Timing::default(),
                &[FaultClass::Crash],
            );
            assert_eq!(swarm.classes, [FaultClass::Crash].into());
            assert!(schedule.end_ms() <= 60_000, "seed {seed}: {schedule:?}");
            assert!(!schedule.faults.is_empty());
            assert!(schedule.faults.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        }
    }

    /// Item 2 of the teeth issue: the swarm draws partial failures (by verb, object and client),
    /// hangs and answers slower than the renew deadline, not only all-verb rules.
    #[test]
    fn gray_failures_aim_at_parts_of_the_api_server() {
        let timing = Timing::default();
        let (mut writes_only, mut reads_only, mut leader, mut lock, mut job, mut hang, mut slow) =
            (0, 0, 0, 0, 0, 0, 0);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..400 {
            let faults = gray(&mut rng, &timing);
            let rule = faults.rules().next().expect("one rule");
            writes_only +=
                usize::from(!rule.verbs.is_empty() && rule.verbs.iter().all(|v| v.is_write()));
            reads_only +=
                usize::from(rule.verbs.iter().all(|v| !v.is_write()) && !rule.verbs.is_empty());
            leader += usize::from(rule.clients == [LEADER]);
            lock += usize::from(rule.names == [LOCK_PREFIX]);
            job += usize::from(rule.names == [JOB_MAP]);
            hang += usize::from(!faults.hang.is_empty());
            slow += usize::from(
                faults
                    .latency
                    .iter()
                    .any(|l| l.max_ms > millis(timing.renew_deadline())),
            );
        }
        for (what, count) in [
            ("writes only", writes_only),
            ("reads only", reads_only),
            ("aimed at the leader", leader),
            ("aimed at the lock", lock),
            ("aimed at the job map", job),
            ("hangs", hang),
            ("slower than the renew deadline", slow),
        ] {
            assert!(count >= 40, "{what}: {count} of 400");
        }
    }

    /// The timing is drawn inside the validated space, often at its edges, and the lock kind
    /// evenly; drifts stay within what the drawn timing tolerates.
    #[test]
    fn the_swarm_draws_timing_near_the_edges_and_either_lock() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut default, mut renew_edge, mut lease_edge) = (0, 0, 0);
        for _ in 0..400 {
            let timing = draw_timing(&mut rng);
            let (lease, renew, retry) = (
                millis(timing.lease_duration()),
                millis(timing.renew_deadline()),
                millis(timing.retry_period()),
            );
            assert!(
                lease > renew && renew * 5 > retry * 6 && retry >= 1_000,
                "{timing}"
            );
            default += usize::from(timing == Timing::default());
            renew_edge += usize::from(renew * 100 <= retry * 126);
            lease_edge += usize::from(lease * 100 <= renew * 111);
        }
        assert!(default > 150 && default < 250, "default {default}");
        assert!(renew_edge > 40, "renew deadline at its floor: {renew_edge}");
        assert!(lease_edge > 40, "lease at the renew deadline: {lease_edge}");
        let swarm = crate::find("swarm").unwrap();
        let leases = (0..200)
            .filter(|seed| swarm.setup(*seed).lock == khaos_elector::LockKind::Lease)
            .count();
        assert!(
            (70..=130).contains(&leases),
            "Lease lock in {leases} of 200"
        );
        for seed in 0..200 {
            let setup = swarm.setup(seed);
            let bound = i64::try_from(drift_bound_ppm(&setup.timing)).unwrap();
            for fault in &setup.schedule.faults {
                if let Fault::Drift { node, ppm } = &fault.fault
                    && node != LEADER
                {
                    assert!(ppm.abs() <= bound, "seed {seed}: {ppm} beyond {bound}");
                }
            }
        }
    }

    /// A blip lands where nothing else was active over the needless-loss window when there is
    /// such a stretch, so a lost lease has nothing else to blame.
    #[test]
    fn blips_land_in_quiet_stretches() {
        let timing = Timing::default();
        let other = Scheduled {
            at_ms: 0,
            for_ms: 10_000,
            fault: Fault::Crash {
                node: "node-a".into(),
            },
        };
        let quiet_ms = 15_000 + 10_000 + 4_000;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let quiet = (0..100)
            .filter(|_| {
                blip(&mut rng, std::slice::from_ref(&other), 60_000, &timing).at_ms
                    > 10_000 + quiet_ms
            })
            .count();
        assert!(quiet >= 95, "{quiet} of 100 in the quiet stretch");
        let blip = blip(&mut rng, &[], 60_000, &timing);
        assert_eq!(blip.for_ms, 1_500);
        assert!(blip.fault.touches(LEADER));
    }

    /// The stalled leader's writes commit after a standby can have taken over (the lease, two
    /// jittered retry periods and a read and a write after the stall ends), the cut follows the
    /// stall at once and lasts a lease or more, and alone the pattern has its stretch to itself
    /// but for faults that do not disturb an election.
    #[test]
    fn a_stalled_leaders_writes_land_after_a_takeover_and_alone_it_has_its_stretch() {
        let timing = Timing::default();
        let (lease, retry) = (15_000, 2_000);
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let crash = |at_ms| Scheduled {
                at_ms,
                for_ms: 5_000,
                fault: Fault::Crash {
                    node: "node-b".into(),
                },
            };
            let blob = Scheduled {
                at_ms: 0,
                for_ms: 60_000,
                fault: Fault::Blob {
                    faults: BlobFaults {
                        latency_ms_min: 0,
                        latency_ms_max: 10,
                        fail_probability: 0.1,
                        ambiguous_probability: 0.0,
                    },
                },
            };
            let mut faults = vec![crash(0), crash(20_000), crash(40_000), blob];
            stalled_leader_cut_off(&mut rng, &mut faults, 60_000, &timing, true);
            let [others @ .., stall, cut] = &faults[..] else {
                panic!("seed {seed}: no pattern in {faults:?}");
            };
            let Fault::Server { faults: stalled } = &stall.fault else {
                panic!("seed {seed}: {stall:?}");
            };
            let delay = stalled.latency[0].min_ms;
            // Two jittered retry periods (2.2 each) and four network delays.
            let takeover = lease + 2 * 2_200 * retry / 1_000 + 400;
            assert!(delay >= stall.for_ms + takeover, "seed {seed}: {delay}");
            assert_eq!(cut.at_ms, stall.end_ms(), "seed {seed}");
            assert!(
                cut.for_ms >= lease && cut.fault.touches(LEADER),
                "seed {seed}"
            );
            for other in others.iter().filter(|o| o.fault.disturbs_election()) {
                assert!(
                    other.end_ms() < stall.at_ms.saturating_sub(lease)
                        || other.at_ms > stall.at_ms + delay,
                    "seed {seed}: {other:?} in the stretch of {stall:?}"
                );
            }
            assert!(
                others.iter().any(|o| !o.fault.disturbs_election()),
                "seed {seed}"
            );
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
