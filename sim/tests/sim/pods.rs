//! Candidates as pods in the simulator: a ReplicaSet keeps them, the kubelet's decisions
//! (`khaos_sim::cluster`) start and stop their processes as simulated hosts, and a force-deleted
//! pod's process outlives the start of its replacement. The story of
//! `force-deleted-leader-runs-on` must actually happen, hold with the correct code, and break
//! `fenced-writes` without fencing.

use khaos_elector::flaws::Flaw;
use khaos_elector::jobmaster::Event;
use khaos_reports::faults::{Fault, LEADER, Scheduled};
use khaos_reports::history::{CommitVerb, Entry, FaultAction, HarnessEvent, Record};
use khaos_scenarios::{self as scenarios, Setup};
use khaos_sim::cluster::kubelet::MINIMUM_GRACE_MS;
use khaos_sim::run::{self, Options, SimulatedRun};
use khaos_sim::world::{self, WorldError};

const SCENARIO: &str = "force-deleted-leader-runs-on";

fn setup(seed: u64) -> Setup {
    scenarios::find(SCENARIO).unwrap().setup(seed)
}

fn run_setup(setup: Setup, options: &Options) -> SimulatedRun {
    run::run_setup(scenarios::find(SCENARIO).unwrap(), setup, options).unwrap()
}

fn harness(entry: &Entry) -> Option<&HarnessEvent> {
    match &entry.record {
        Record::Harness(event) => Some(event),
        _ => None,
    }
}

/// The force delete as it started (its `@leader` resolved to the pod's name): when, and whom.
fn force_delete(history: &[Entry]) -> (u64, String) {
    history
        .iter()
        .find_map(|e| match harness(e) {
            Some(HarnessEvent::Fault {
                action: FaultAction::Start,
                fault: Fault::DeletePod { node, .. },
                ..
            }) => Some((e.t_ms, node.clone())),
            _ => None,
        })
        .expect("the pod was deleted")
}

fn started_after(history: &[Entry], t_ms: u64) -> Vec<String> {
    history
        .iter()
        .filter(|e| e.t_ms > t_ms && matches!(harness(e), Some(HarnessEvent::Started {})))
        .map(|e| e.node.clone())
        .collect()
}

fn crashed_at(history: &[Entry], node: &str) -> Option<u64> {
    history
        .iter()
        .find(|e| e.node == node && matches!(harness(e), Some(HarnessEvent::Crashed {})))
        .map(|e| e.t_ms)
}

#[test]
fn a_force_deleted_pods_process_outlives_the_start_of_its_replacement_and_fencing_holds() {
    for seed in 1..=3 {
        let run = run_setup(setup(seed), &Options::default());
        let history = &run.judged.history;
        let (deleted_ms, victim) = force_delete(history);
        assert!(
            victim.starts_with("khaos-ha-"),
            "seed {seed}: the role resolved to a pod: {victim}"
        );
        let replacements = started_after(history, deleted_ms);
        assert!(
            replacements.iter().any(|p| *p != victim),
            "seed {seed}: the ReplicaSet started a replacement after the delete"
        );
        let replacement_ms = history
            .iter()
            .find(|e| {
                e.t_ms > deleted_ms
                    && e.node != victim
                    && matches!(harness(e), Some(HarnessEvent::Started {}))
            })
            .unwrap()
            .t_ms;
        // The full grace (30 s) after the delete, so long after the replacement started.
        let killed_ms = crashed_at(history, &victim).expect("SIGKILL came");
        assert!(
            killed_ms >= deleted_ms + 30_000 && killed_ms > replacement_ms + 20_000,
            "seed {seed}: deleted at {deleted_ms}, replacement at {replacement_ms}, killed at {killed_ms}"
        );
        assert!(run.ok(), "seed {seed}: {}", run.judged.violations_text());
    }
}

#[test]
fn the_same_seed_gives_the_same_pods_and_the_same_history() {
    let first = run_setup(setup(4), &Options::default());
    let again = run_setup(setup(4), &Options::default());
    assert_eq!(first.jsonl, again.jsonl);
    let other = run_setup(setup(5), &Options::default());
    assert_ne!(first.digest(), other.digest());
}

#[test]
fn without_fencing_the_late_writes_break_fenced_writes() {
    let options = Options::default().flaw(Flaw::UnfencedStore);
    let run = run_setup(setup(1), &options);
    assert!(
        run.violated().iter().any(|v| v == "fenced-writes"),
        "violated: {:?}",
        run.violated()
    );
    let twin = run_setup(setup(1), &Options::default());
    assert!(twin.ok(), "{}", twin.judged.violations_text());
}

#[test]
fn the_kubelet_switch_decides_how_long_a_force_deleted_process_runs_on() {
    let mut minimum = setup(1);
    minimum.pods.as_mut().unwrap().force_delete_full_grace = false;
    let run = run_setup(minimum, &Options::default());
    let history = &run.judged.history;
    let (deleted_ms, victim) = force_delete(history);
    let killed_ms = crashed_at(history, &victim).expect("SIGKILL came");
    // The kubelet looks once a second, then waits the minimum grace after SIGTERM.
    let seen_by_ms = deleted_ms + 2_000 + MINIMUM_GRACE_MS as u64 + 1_000;
    assert!(
        killed_ms <= seen_by_ms,
        "deleted at {deleted_ms}, killed at {killed_ms}: the minimum grace is 2 s"
    );
    assert!(run.ok(), "{}", run.judged.violations_text());
}

#[test]
fn a_pod_whose_process_handles_sigterm_stops_gracefully_when_it_wakes() {
    let mut graceful = setup(2);
    graceful.pods.as_mut().unwrap().sigterm_ignored = false;
    let run = run_setup(graceful, &Options::default());
    let history = &run.judged.history;
    let (_, victim) = force_delete(history);
    assert!(
        history.iter().any(|e| e.node == victim
            && matches!(harness(e), Some(HarnessEvent::Stopped { graceful: true }))),
        "{victim} stopped on SIGTERM"
    );
    assert_eq!(crashed_at(history, &victim), None, "no SIGKILL was needed");
    assert!(run.ok(), "{}", run.judged.violations_text());
}

#[test]
fn schedules_stop_pods_through_their_pods_and_fixed_hosts_by_crashes() {
    let mut pods = setup(1);
    pods.schedule.faults.push(Scheduled {
        at_ms: 10_000,
        for_ms: 5_000,
        fault: Fault::Crash {
            node: LEADER.into(),
        },
    });
    let error = world::run(&pods, &Options::default()).unwrap_err();
    assert!(
        matches!(&error, WorldError::Schedule(e) if e.reason.contains("delete the pod")),
        "{error}"
    );

    let mut fixed = Setup::new(1);
    fixed.schedule.faults.push(Scheduled {
        at_ms: 10_000,
        for_ms: 0,
        fault: Fault::DeletePod {
            node: LEADER.into(),
            grace_seconds: Some(0),
        },
    });
    let error = world::run(&fixed, &Options::default()).unwrap_err();
    assert!(
        matches!(&error, WorldError::Schedule(e) if e.reason.contains("not pods")),
        "{error}"
    );
}

#[test]
fn a_graceful_delete_stops_the_process_and_only_then_does_the_kubelet_remove_the_pod() {
    let mut graceful = setup(3);
    graceful.pods.as_mut().unwrap().sigterm_ignored = false;
    graceful.schedule.faults = vec![Scheduled {
        at_ms: 15_000,
        for_ms: 0,
        fault: Fault::DeletePod {
            node: LEADER.into(),
            grace_seconds: None,
        },
    }];
    let run = run_setup(graceful, &Options::default());
    let history = &run.judged.history;
    let (deleted_ms, victim) = force_delete(history);
    let stopped_ms = history
        .iter()
        .find(|e| {
            e.node == victim && matches!(harness(e), Some(HarnessEvent::Stopped { graceful: true }))
        })
        .map(|e| e.t_ms)
        .expect("SIGTERM stopped it gracefully");
    let removed_ms = history
        .iter()
        .find_map(|e| match harness(e) {
            Some(HarnessEvent::Commit {
                verb: CommitVerb::Delete,
                resource,
                name,
                client,
                ..
            }) if resource == "pods" && *name == victim && client == "kubelet/sim-node" => {
                Some(e.t_ms)
            }
            _ => None,
        })
        .expect("the kubelet removed the pod's object");
    // The kubelet looks once a second: it sees the process gone and removes the object.
    assert!(
        deleted_ms < stopped_ms && stopped_ms <= removed_ms && removed_ms <= stopped_ms + 2_000,
        "deleted {deleted_ms}, stopped {stopped_ms}, removed {removed_ms}"
    );
    assert_eq!(crashed_at(history, &victim), None, "no SIGKILL was needed");
    // It released the lock on its way out: a standby leads within a few retry periods.
    let granted_ms = history
        .iter()
        .find(|e| {
            e.t_ms > stopped_ms
                && e.node != victim
                && matches!(e.record, Record::Job(Event::Granted { .. }))
        })
        .map(|e| e.t_ms)
        .expect("a standby took over");
    assert!(
        granted_ms <= stopped_ms + 5_000,
        "stopped {stopped_ms}, granted {granted_ms}"
    );
    assert!(run.ok(), "{}", run.judged.violations_text());

    // A pause aimed by role just after the process ended never lands on it (it is gone, not
    // paused: pausing a host whose software ended would panic).
    for role in [LEADER, khaos_reports::faults::STANDBY] {
        let mut again = setup(3);
        again.pods.as_mut().unwrap().sigterm_ignored = false;
        again.schedule.faults = vec![
            Scheduled {
                at_ms: 15_000,
                for_ms: 0,
                fault: Fault::DeletePod {
                    node: LEADER.into(),
                    grace_seconds: None,
                },
            },
            Scheduled {
                at_ms: stopped_ms + 10,
                for_ms: 1_000,
                fault: Fault::Pause { node: role.into() },
            },
        ];
        let run = run_setup(again, &Options::default());
        let paused = run
            .judged
            .history
            .iter()
            .find_map(|e| match harness(e) {
                Some(HarnessEvent::Fault {
                    action: FaultAction::Start,
                    fault: Fault::Pause { node },
                    ..
                }) => Some(node.clone()),
                _ => None,
            })
            .expect("the pause started");
        assert_ne!(
            paused, victim,
            "{role} resolved to a process that had ended"
        );
    }
}
