//! The pieces scenarios are told with: when a story's first fault strikes, a fault for a while
//! within the fault phase, a cut link, a rule that strikes sometimes, and the slow leader cut off
//! among fast clocks.

pub(crate) use khaos_elector::timing::millis;
use khaos_reports::faults::server::{RequestVerb, Rule};
use khaos_reports::faults::{APISERVER, DRIFT_BOUND_PPM, Fault, LEADER, Scheduled};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::setup::Setup;

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

/// The first leader's clock runs slow and the standbys' run fast (each within the drift bound),
/// and then the leader is cut off from the API server for longer than the lease, twice:
/// it holds on to its belief until its own renew deadline, measured on its slow clock, while a
/// standby that saw its last renewal early takes over after the lease on its fast clock. With the
/// renew deadline equal to the lease the two beliefs can overlap; with the validated margin they
/// cannot.
pub(crate) fn slow_leader_cut_off(rng: &mut ChaCha8Rng, c: &mut Setup) {
    let bound = i64::try_from(DRIFT_BOUND_PPM).expect("small");
    // Every clock runs fast from the start; two seconds before each cut-off the node that leads
    // then gets a slowing drift on top, so its net rate is slow (both within the bound), until
    // its cut-off ends.
    let fast = rng.random_range(bound / 2..=bound);
    for node in c.node_names() {
        at_for(c, 0, c.fault_phase_ms, Fault::Drift { node, ppm: fast });
    }
    let lease = millis(c.timing.lease_duration());
    let mut at = start(rng, c).max(2_000);
    for _ in 0..2 {
        let slow = rng.random_range(bound / 2..=bound);
        let lasts = rng.random_range(lease + 2_000..=lease * 2);
        let ppm = -(fast + slow);
        at_for(
            c,
            at - 2_000,
            lasts + 2_000,
            Fault::Drift {
                node: LEADER.into(),
                ppm,
            },
        );
        at_for(c, at, lasts, cut(LEADER, APISERVER, false));
        at += lasts + rng.random_range(3_000..=6_000);
    }
}
