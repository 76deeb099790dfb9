//! What the renderings' tests share: a hand-made history with a failover, a fault, an
//! unbacked grant and overlapping beliefs, judged.

use std::time::Duration;

use khaos_elector::{LockKind, Timing};
pub(crate) use serde_json::{Value, json};

pub(crate) use super::{JudgedRun, RunInfo};
use crate::checkers::{self, Context};
use crate::history::{self, Entry};

pub(crate) fn context() -> Context {
    Context {
        namespace: "default".into(),
        cluster_id: "demo".into(),
        job_id: "job".into(),
        lock: LockKind::Lease,
        timing: Timing::new(
            Duration::from_millis(1500),
            Duration::from_millis(1000),
            Duration::from_millis(200),
        )
        .unwrap(),
        checkpoint_interval: Duration::from_millis(100),
        overlap_allowed: false,
        network_delay_max: Duration::from_millis(50),
        watch_delay_max: Duration::from_millis(100),
    }
}

pub(crate) fn lease(t_ms: u64, revision: u64, holder: &str, transitions: u64) -> String {
    json!({
        "t_ms": t_ms, "node": "apiserver", "event": "commit", "revision": revision,
        "verb": "update", "resource": "leases", "namespace": "default",
        "name": "demo-cluster-leader", "client": holder,
        "object": {"metadata": {"name": "demo-cluster-leader"},
                   "spec": {"holderIdentity": holder, "leaseTransitions": transitions}},
    })
    .to_string()
}

/// node-a leads at term 0 and checkpoints; a fault cuts it off and it crashes; node-b takes
/// over at term 1 and restores; but node-c also believes (wrongly) it was granted term 1.
pub(crate) fn history() -> Vec<Entry> {
    let mut lines = vec![
        r#"{"t_ms":0,"node":"harness","event":"phase","phase":"faults"}"#.to_owned(),
        r#"{"t_ms":0,"node":"node-a","event":"started"}"#.to_owned(),
        r#"{"t_ms":0,"node":"node-b","event":"started"}"#.to_owned(),
        r#"{"t_ms":0,"node":"node-c","event":"started"}"#.to_owned(),
        lease(10, 2, "node-a", 0),
        r#"{"t_ms":11,"node":"node-a","event":"granted","term":0}"#.to_owned(),
        r#"{"t_ms":20,"node":"node-a","event":"restored","term":0,"checkpoint":null,"records":0,"dangling":[],"removals_finished":0}"#.to_owned(),
    ];
    for id in 1..=5 {
        lines.push(format!(
            r#"{{"t_ms":{},"node":"node-a","event":"checkpoint","term":0,"id":{id},"records":{}}}"#,
            100 * id,
            100 * id
        ));
    }
    lines.extend([
        lease(520, 9, "node-a", 0),
        r#"{"t_ms":600,"node":"harness","event":"fault","action":"start","id":0,"fault":{"kind":"partition","a":"node-a","b":"apiserver & <blob>","oneway":false}}"#.to_owned(),
        r#"{"t_ms":700,"node":"node-a","event":"crashed"}"#.to_owned(),
        r#"{"t_ms":900,"node":"harness","event":"fault","action":"end","id":0,"fault":{"kind":"partition","a":"node-a","b":"apiserver & <blob>","oneway":false}}"#.to_owned(),
        lease(2300, 12, "node-b", 1),
        r#"{"t_ms":2301,"node":"node-b","event":"granted","term":1}"#.to_owned(),
        r#"{"t_ms":2310,"node":"node-c","event":"granted","term":1}"#.to_owned(),
        r#"{"t_ms":2320,"node":"node-b","event":"restored","term":1,"checkpoint":5,"records":500,"dangling":[],"removals_finished":0}"#.to_owned(),
        r#"{"t_ms":2350,"node":"harness","event":"fault","action":"start","id":1,"fault":{"kind":"partition","a":"node-c","b":"apiserver","oneway":false}}"#.to_owned(),
        r#"{"t_ms":2400,"node":"node-c","event":"revoked","term":1}"#.to_owned(),
        r#"{"t_ms":2450,"node":"harness","event":"fault","action":"end","id":1,"fault":{"kind":"partition","a":"node-c","b":"apiserver","oneway":false}}"#.to_owned(),
        r#"{"t_ms":2500,"node":"observer-a","event":"leader","leader":"term-1,node-b"}"#.to_owned(),
        r#"{"t_ms":3000,"node":"harness","event":"phase","phase":"end"}"#.to_owned(),
    ]);
    history::parse(&lines.join("\n")).unwrap()
}

pub(crate) fn info() -> RunInfo {
    RunInfo {
        scenario: "hand-made".into(),
        seed: Some(7),
        replay: Some("khaos sim run --scenario hand-made --seed 7".into()),
        digest: Some("0123456789abcdef".into()),
        simulated_ms: Some(3000),
        settings: None,
        context: context(),
    }
}

pub(crate) fn judged() -> JudgedRun {
    let history = history();
    let info = info();
    let mut verdicts = checkers::check(&history, &info.context);
    // The hand-made history has no counter, pointer or job map commits: only what it is
    // made for is judged.
    for verdict in &mut verdicts {
        if !["terms", "overlap", "liveness"].contains(&verdict.checker) {
            verdict.violations.clear();
        }
    }
    JudgedRun {
        info,
        history,
        verdicts,
    }
}
