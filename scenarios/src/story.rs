//! The pieces scenarios are told with: when a story's first fault strikes, a fault for a while
//! within the fault phase, a cut link, a rule that strikes sometimes, and the slow leader cut off
//! among fast clocks.

pub(crate) use khaos_elector::timing::millis;
use khaos_reports::faults::server::{Faults, LatencyRule, RequestVerb, Rule};
use khaos_reports::faults::{APISERVER, DRIFT_BOUND_PPM, Fault, LEADER, Scheduled};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use khaos_reports::settings::Pods;

use crate::setup::{JOB_MAP, Setup};

/// When the story's first fault strikes: after the first leader settled, with seeded jitter.
pub(crate) fn start(rng: &mut ChaCha8Rng, c: &Setup) -> u64 {
    rng.random_range(8_000..=20_000).min(c.fault_phase_ms / 2)
}

pub(crate) fn at_for(c: &mut Setup, at_ms: u64, for_ms: u64, fault: Fault) {
    let for_ms = for_ms.min(c.fault_phase_ms.saturating_sub(at_ms));
    c.schedule.faults.push(Scheduled {
        at_ms,
        for_ms,
        fault,
    });
}

pub(crate) fn cut(a: &str, b: &str, oneway: bool) -> Fault {
    Fault::Partition {
        a: a.into(),
        b: b.into(),
        oneway,
    }
}

pub(crate) fn sometimes(rng: &mut ChaCha8Rng, verbs: &[RequestVerb]) -> Rule {
    Rule::verbs(verbs).with_probability(f64::from(rng.random_range(10u32..=50)) / 100.0)
}

/// The clock skew that makes a timing margin matter: every node runs fast, and whoever leads is
/// slowed on top (each within the drift bound) two seconds before it loses the API server for
/// longer than the lease, twice (the second time only when it fits the fault phase). The leader
/// holds on to its belief until its own renew deadline, measured on its slow clock, while a
/// standby that saw its last renewal early takes over after the lease on its fast clock: only the
/// margin between the two keeps beliefs apart. With the renew deadline equal to the lease they can
/// overlap; with the validated margin they cannot.
///
/// The first cut-off starts two seconds to one lease in; `nodes` may hold roles, which get no fast
/// drift of their own. The fast drift and the leader's net rate are within `bound_ppm` (the
/// leader's own drift, on top of the fast one, is up to twice it).
pub(crate) fn slow_leader_cut_off(
    rng: &mut ChaCha8Rng,
    nodes: &[String],
    phase_ms: u64,
    lease_ms: u64,
    bound_ppm: u64,
) -> Vec<Scheduled> {
    let bound = i64::try_from(bound_ppm).expect("small");
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
    let mut faults = Vec::new();
    let Some(&(first, _)) = cuts.first() else {
        return faults;
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
    faults
}

/// [`slow_leader_cut_off`] as a scenario's story, told as the swarm tells it, with a fault phase long enough for both cut-offs.
pub(crate) fn slow_leader_story(rng: &mut ChaCha8Rng, c: &mut Setup) {
    let nodes = c.node_names();
    let lease_ms = millis(c.timing.lease_duration());
    // The first cut starts within a lease, each lasts up to two and they are up to 6 s apart.
    c.fault_phase_ms = c.fault_phase_ms.max(lease_ms * 5 + 6_000);
    let phase_ms = c.fault_phase_ms;
    // The stories compare timings under the same clocks: the default timing's bound.
    let faults = slow_leader_cut_off(rng, &nodes, phase_ms, lease_ms, DRIFT_BOUND_PPM);
    c.schedule.faults.extend(faults);
}

/// The pods' grace in [`force_deleted_leader_story`] (Kubernetes' default).
const FORCE_DELETE_GRACE_S: u32 = 30;

/// A force-deleted leader whose process outlives the start of its replacement, with writes of
/// its own landing after the take-over. The candidates are pods; the kubelet gives a
/// force-deleted pod its full grace, and the pods' first process ignores SIGTERM. For 4 s
/// before the leader freezes, the API server commits its writes of the job's map 6 to 10 s
/// after a lease (a slow etcd disk); the freeze lasts longer than the lease and at most the
/// grace, and 1 to 5 s into it the leader's pod is force-deleted. A standby takes over while the
/// old process is frozen, the old process wakes before its SIGKILL, and the writes it sent
/// before freezing commit after the new leader sealed the map: fencing (the seal and the
/// resourceVersion) must refuse them.
pub(crate) fn force_deleted_leader_story(rng: &mut ChaCha8Rng, c: &mut Setup) {
    c.pods = Some(Pods {
        grace_seconds: FORCE_DELETE_GRACE_S,
        force_delete_full_grace: true,
        sigterm_ignored: true,
    });
    let at = start(rng, c);
    let lease = millis(c.timing.lease_duration());
    let grace_ms = u64::from(FORCE_DELETE_GRACE_S) * 1000;
    let slow_writes = Faults {
        latency: vec![LatencyRule {
            rule: Rule::verbs(&[RequestVerb::Update, RequestVerb::Patch])
                .for_client(LEADER)
                .for_name(JOB_MAP),
            min_ms: lease + 6_000,
            max_ms: lease + 10_000,
        }],
        ..Faults::default()
    };
    let slow_from = at.saturating_sub(4_000);
    at_for(
        c,
        slow_from,
        at - slow_from,
        Fault::Server {
            faults: slow_writes,
        },
    );
    let lasts = rng.random_range(lease + 1_000..=(lease * 2).min(grace_ms));
    at_for(
        c,
        at,
        lasts,
        Fault::Pause {
            node: LEADER.into(),
        },
    );
    // Deleted while frozen; it wakes before its SIGKILL, a full grace after the delete.
    let deleted_after = rng.random_range(1_000..=5_000);
    at_for(
        c,
        at + deleted_after,
        0,
        Fault::DeletePod {
            node: LEADER.into(),
            grace_seconds: Some(0),
        },
    );
}
