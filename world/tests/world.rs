//! The simulated HA world end to end: determinism, the scenario catalogue judged by the
//! checkers over a sweep of seeds sized for CI (20 per scenario, about 300 runs;
//! `KHAOS_SEEDS=N` for more), and the stories the scenarios tell actually happening.

use khaos_elector::jobmaster::Event;
use khaos_world::history::{Record, WorldEvent};
use khaos_world::runner;
use khaos_world::scenarios::{self, CATALOGUE};

fn seeds() -> u64 {
    std::env::var("KHAOS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

#[test]
fn the_same_seed_gives_the_same_history_byte_for_byte() {
    let swarm = scenarios::find("swarm").unwrap();
    let first = runner::run(swarm, 3).unwrap();
    let second = runner::run(swarm, 3).unwrap();
    assert_eq!(first.output.digest, second.output.digest);
    assert_eq!(first.output.jsonl, second.output.jsonl);
    let other = runner::run(swarm, 4).unwrap();
    assert_ne!(first.output.digest, other.output.digest);
}

#[test]
fn every_scenario_replays_byte_for_byte() {
    let all: Vec<&'static scenarios::Scenario> = CATALOGUE.iter().collect();
    let results = runner::sweep(&all, 1..2, 2, true, |_, _, _| {});
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.detail.as_str())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn the_catalogue_holds_over_a_sweep() {
    let all: Vec<&'static scenarios::Scenario> = CATALOGUE.iter().collect();
    let results = runner::sweep(&all, 1..1 + seeds(), 2, false, |done, total, run| {
        println!("[{done}/{total}] {}", run.summary);
    });
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| {
            format!(
                "{}\n{}  replay: {}",
                r.summary,
                r.detail,
                runner::replay(r.scenario, r.seed)
            )
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn a_crashed_leader_is_replaced_and_the_new_leader_resumes_from_its_checkpoint() {
    let report = runner::run(scenarios::find("leader-crash").unwrap(), 1).unwrap();
    let history = &report.output.history;
    let crashed = history
        .iter()
        .position(|e| matches!(e.record, Record::World(WorldEvent::Crashed {})))
        .expect("the leader crashed");
    let victim = &history[crashed].node;
    let restored = history[crashed..]
        .iter()
        .find_map(|e| match &e.record {
            Record::Job(Event::Restored { checkpoint, .. }) if &e.node != victim => *checkpoint,
            _ => None,
        })
        .expect("another node restored a checkpoint");
    let last_before = history[..crashed]
        .iter()
        .filter_map(|e| match &e.record {
            Record::Job(Event::Checkpoint { id, .. }) => Some(*id),
            _ => None,
        })
        .max()
        .expect("checkpoints before the crash");
    assert!(
        restored >= last_before,
        "restored {restored}, last before the crash {last_before}"
    );
    assert!(report.ok(), "{}", report.violations());
}
