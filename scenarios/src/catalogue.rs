//! The scenario catalogue: named, documented setups. Each draws its details (when faults strike,
//! for how long, which rates) from the seed, so a sweep over seeds explores around the story the
//! scenario tells. `swarm` draws everything.

use std::time::Duration;

use khaos_elector::{LockKind, Timing};
use khaos_reports::faults::server::{
    AmbiguousOutcome, AmbiguousRule, ErrorRule, Faults, LatencyRule, RequestVerb, WatchFaults,
};
use khaos_reports::faults::{APISERVER, DRIFT_BOUND_PPM, Fault, LEADER, STANDBY};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::setup::Setup;
use crate::story::{
    at_for, cut, force_deleted_leader_story, millis, slow_leader_story, sometimes, start,
};
use crate::swarm::{self, FaultClass};

/// One named scenario.
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it does and what it shows, in a sentence or two.
    pub about: &'static str,
    pub(crate) build: fn(&mut ChaCha8Rng, &mut Setup),
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Scenario {
    /// The setup of this scenario for `seed`.
    pub fn setup(&self, seed: u64) -> Setup {
        let mut config = Setup::new(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5CE4_A210);
        (self.build)(&mut rng, &mut config);
        config.scenario = self.name.to_owned();
        config.schedule = std::mem::take(&mut config.schedule).sorted();
        config
    }
}

/// Every scenario, in the order `khaos sim list` shows them.
pub const CATALOGUE: &[Scenario] = &[
    Scenario {
        name: "leader-crash",
        about: "The leader is killed (no release) and restarts later: a standby takes over within a lease and two retry periods and resumes from the latest checkpoint.",
        build: |rng, c| {
            let at = start(rng, c);
            at_for(
                c,
                at,
                30_000,
                Fault::Crash {
                    node: LEADER.into(),
                },
            );
        },
    },
    Scenario {
        name: "leader-cut-off",
        about: "The leader loses the API server both ways for longer than its renew deadline: it steps down by the deadline, a standby takes over, and the old leader competes again once healed.",
        build: |rng, c| {
            let at = start(rng, c);
            let lasts = rng.random_range(12_000..=30_000);
            at_for(c, at, lasts, cut(LEADER, APISERVER, false));
        },
    },
    Scenario {
        name: "one-way-partition",
        about: "The API server's answers to the leader are lost while its requests still arrive: its renewals commit but look failed (ambiguous), so it steps down while the lock still names it.",
        build: |rng, c| {
            let at = start(rng, c);
            let lasts = rng.random_range(12_000..=30_000);
            at_for(c, at, lasts, cut(APISERVER, LEADER, true));
        },
    },
    Scenario {
        name: "pause-beyond-lease",
        about: "The leader freezes (stop-the-world) for longer than the lease: a standby takes over, and on waking the old leader's writes must be fenced off. Believed-leadership overlap is reported, not judged.",
        build: |rng, c| {
            let at = start(rng, c);
            let lease = millis(c.timing.lease_duration());
            let lasts = rng.random_range(lease + 1_000..=lease * 2);
            at_for(
                c,
                at,
                lasts,
                Fault::Pause {
                    node: LEADER.into(),
                },
            );
        },
    },
    Scenario {
        name: "force-deleted-leader-runs-on",
        about: "The candidates are the pods of a ReplicaSet. The API server starts committing the leader's job writes late (a slow etcd disk), the leader's process freezes for longer than the lease, and its pod is force-deleted, as an operator does with a stuck pod: the ReplicaSet starts a replacement at once, the kubelet gives the old process its full 30 s grace (as many kubelet versions do), and its PID 1 ignores SIGTERM, so it wakes still believing it leads while its late writes land after the take-over. Only fencing keeps them out.",
        build: force_deleted_leader_story,
    },
    Scenario {
        name: "clock-skew",
        about: "Every node's wall clock is minutes off and the leader's clock drifts within the bound: nothing may change, because expiry is judged on each node's own monotonic clock.",
        build: |rng, c| {
            let bound = i64::try_from(DRIFT_BOUND_PPM).expect("small");
            for node in c.node_names() {
                let ms = rng.random_range(-600_000..=600_000);
                at_for(c, 0, c.fault_phase_ms, Fault::WallOffset { node, ms });
            }
            let at = start(rng, c);
            let ppm = rng.random_range(-bound..=bound);
            at_for(
                c,
                at,
                c.fault_phase_ms,
                Fault::Drift {
                    node: LEADER.into(),
                    ppm,
                },
            );
        },
    },
    Scenario {
        name: "api-brownout",
        about: "The API server answers a share of all requests with 429, 500 or 503 and slows the rest: the leader must ride out single failures (no needless hand-over on one 5xx) and the store must stay consistent.",
        build: |rng, c| {
            let at = start(rng, c);
            let mut faults = Faults::default();
            faults.errors.push(ErrorRule {
                code: [429, 500, 503][rng.random_range(0..3)],
                retry_after_seconds: 1,
                rule: sometimes(rng, &[]),
            });
            faults.latency.push(LatencyRule {
                min_ms: 0,
                max_ms: rng.random_range(50..=800),
                rule: sometimes(rng, &[]),
            });
            at_for(
                c,
                at,
                rng.random_range(10_000..=40_000),
                Fault::Server { faults },
            );
        },
    },
    Scenario {
        name: "ambiguous-commits",
        about: "A share of writes commit and then report failure (lost connection, timeout, 500): checkpoint pointers are possibly inconsistent and their blobs must never be discarded.",
        build: |rng, c| {
            let at = start(rng, c);
            let mut faults = Faults::default();
            faults.ambiguous.push(AmbiguousRule {
                outcome: [
                    AmbiguousOutcome::ConnectionLost,
                    AmbiguousOutcome::Timeout,
                    AmbiguousOutcome::InternalError,
                ][rng.random_range(0..3)],
                rule: sometimes(
                    rng,
                    &[RequestVerb::Update, RequestVerb::Patch, RequestVerb::Create],
                ),
            });
            at_for(
                c,
                at,
                rng.random_range(10_000..=40_000),
                Fault::Server { faults },
            );
        },
    },
    Scenario {
        name: "watch-drops",
        about: "Watches close after a few events and arrive late, the history is compacted, connections are reset and the API server restarts: observers must re-list and still learn every new leader.",
        build: |rng, c| {
            let at = start(rng, c);
            let faults = Faults {
                watch: WatchFaults {
                    delay_ms_min: 0,
                    delay_ms_max: rng.random_range(100..=2_000),
                    close_after_events_max: Some(rng.random_range(1..=3)),
                    no_bookmarks: true,
                },
                ..Faults::default()
            };
            at_for(c, at, 40_000, Fault::Server { faults });
            at_for(c, at + 5_000, 0, Fault::Compact);
            at_for(
                c,
                at + 7_000,
                0,
                Fault::Reset {
                    node: "observer-a".into(),
                },
            );
            at_for(
                c,
                at + 8_000,
                0,
                Fault::Reset {
                    node: LEADER.into(),
                },
            );
            at_for(c, at + 10_000, 0, Fault::ServerRestart);
            at_for(
                c,
                at + 15_000,
                30_000,
                Fault::Crash {
                    node: LEADER.into(),
                },
            );
        },
    },
    Scenario {
        name: "rolling-restart",
        about: "Every node is stopped gracefully and started again, one after another, as a Deployment rollout does: each hand-over takes about one retry period, and no checkpoint is lost.",
        build: |rng, c| {
            let mut at = start(rng, c);
            for node in c.node_names() {
                let lasts = rng.random_range(3_000..=8_000);
                at_for(c, at, lasts, Fault::Stop { node });
                at += lasts + rng.random_range(2_000..=6_000);
            }
        },
    },
    Scenario {
        name: "cluster-restart",
        about: "Every node stops at once, as when the cluster's Deployment is deleted with its HA data retained, and the cluster later starts again: it recovers the job from the retained ConfigMaps and blobs.",
        build: |rng, c| {
            let at = start(rng, c);
            let lasts = rng.random_range(10_000..=30_000);
            for node in c.node_names() {
                let fault = if rng.random_bool(0.5) {
                    Fault::Stop { node }
                } else {
                    Fault::Crash { node }
                };
                at_for(c, at, lasts, fault);
            }
        },
    },
    Scenario {
        name: "job-finished",
        about: "The job finishes (globally terminal) while leaders crash around it: its HA data is cleaned up and no later leader starts it again.",
        build: |rng, c| {
            c.job.finish_at_records = Some(rng.random_range(5..=12) * c.job.records_per_checkpoint);
            let at = start(rng, c);
            at_for(
                c,
                at,
                rng.random_range(5_000..=30_000),
                Fault::Crash {
                    node: LEADER.into(),
                },
            );
            let later = rng.random_range(at..c.fault_phase_ms);
            at_for(
                c,
                later,
                rng.random_range(1_000..=10_000),
                Fault::Crash {
                    node: LEADER.into(),
                },
            );
        },
    },
    Scenario {
        name: "flink-timing",
        about: "Flink's own defaults, lease 15 s = renew deadline 15 s with a 5 s retry (unchecked), with the leader's clock slow and the standbys' fast (each within the bound) and the leader cut off for longer than the lease, twice: two nodes may believe they lead at once, and fencing must still hold. Compare with `validated-timing`.",
        build: |rng, c| {
            c.timing = Timing::unchecked(
                Duration::from_secs(15),
                Duration::from_secs(15),
                Duration::from_secs(5),
            );
            slow_leader_story(rng, c);
        },
    },
    Scenario {
        name: "validated-timing",
        about: "The same drifting clocks and cut-offs as `flink-timing` under the validated defaults (15 s / 10 s / 2 s): the leader steps down before anyone can take over, so believed leadership never overlaps.",
        build: slow_leader_story,
    },
    Scenario {
        name: "lease-lock",
        about: "A leader crash and an API brownout with the coordination.k8s.io/v1 Lease lock instead of the ConfigMap lock: fencing by the term sealed into each data ConfigMap.",
        build: |rng, c| {
            c.lock = LockKind::Lease;
            let at = start(rng, c);
            at_for(
                c,
                at,
                30_000,
                Fault::Crash {
                    node: LEADER.into(),
                },
            );
            let mut faults = Faults::default();
            faults.errors.push(ErrorRule {
                code: 503,
                retry_after_seconds: 1,
                rule: sometimes(rng, &[]),
            });
            at_for(c, at + 35_000, 15_000, Fault::Server { faults });
        },
    },
    Scenario {
        name: "swarm",
        about: "Swarm testing: the seed draws one to three candidates, whether the job finishes, the lock kind, the election timing (often near the edges of the validated space), which fault classes are on and their rates, and strikes at random nodes; standbys and the leader alike.",
        build: |rng, c| {
            let seed = rng.random();
            // Flink often runs one JobManager that Kubernetes restarts; HA clusters two or three.
            c.nodes = [1, 2, 3, 3, 3][rng.random_range(0..5)];
            // Some jobs finish (globally terminal) during the run.
            if rng.random_bool(0.4) {
                c.job.finish_at_records =
                    Some(rng.random_range(5..=25) * c.job.records_per_checkpoint);
            }
            c.timing = swarm::draw_timing(rng);
            if rng.random_bool(0.5) {
                c.lock = LockKind::Lease;
            }
            let nodes = c.node_names();
            let mut all: Vec<String> = nodes.clone();
            all.push(LEADER.into());
            all.push(STANDBY.into());
            let observers = c.observer_names();
            let (swarm, schedule) = swarm::swarm(
                seed,
                &all,
                &observers,
                c.fault_phase_ms,
                &c.timing,
                &FaultClass::ALL,
            );
            c.drawn = json!({
                "swarm": swarm,
                "nodes": c.nodes,
                "finish_at_records": c.job.finish_at_records,
                "timing": c.timing.to_string(),
            });
            c.schedule = schedule;
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for scenario in CATALOGUE {
            assert_eq!(crate::find(scenario.name).unwrap().name, scenario.name);
            assert_eq!(
                CATALOGUE.iter().filter(|s| s.name == scenario.name).count(),
                1
            );
        }
        let error = crate::find("nope").expect_err("no such scenario");
        assert!(error.to_string().contains("leader-crash"));
    }

    #[test]
    fn every_scenario_stays_in_its_fault_phase() {
        for scenario in CATALOGUE {
            for seed in 0..20 {
                let world = scenario.setup(seed);
                assert!(
                    world.schedule.end_ms() <= world.fault_phase_ms,
                    "{} {seed}",
                    scenario.name
                );
                assert_eq!(world.scenario, scenario.name);
            }
        }
    }
}
