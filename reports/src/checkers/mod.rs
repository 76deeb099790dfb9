//! The checkers that judge a history: pure functions over its [`Entry`]s, one per invariant of
//! `docs/invariants.md`, each returning a [`Verdict`] that names the entries that break it.
//!
//! ```
//! use std::time::Duration;
//! use khaos_elector::{LockKind, Timing};
//! use khaos_reports::checkers::{Context, check};
//! use khaos_reports::history::parse;
//!
//! let ctx = Context {
//!     namespace: "default".into(),
//!     cluster_id: "demo".into(),
//!     job_id: "00000000000000000000000000000000".into(),
//!     lock: LockKind::ConfigMap,
//!     timing: Timing::default(),
//!     checkpoint_interval: Duration::from_secs(1),
//!     overlap_allowed: false,
//!     network_delay_max: Duration::from_millis(50),
//!     watch_delay_max: Duration::from_millis(500),
//! };
//! // Two candidates that both believe they lead, and nobody is allowed to.
//! let history = parse(concat!(
//!     r#"{"t_ms":10,"node":"node-a","event":"granted","term":1}"#, "\n",
//!     r#"{"t_ms":20,"node":"node-b","event":"granted","term":2}"#, "\n",
//!     r#"{"t_ms":30,"node":"node-a","event":"revoked","term":1}"#, "\n",
//! ))
//! .unwrap();
//! let verdicts = check(&history, &ctx);
//! let overlap = verdicts.iter().find(|v| v.checker == "overlap").unwrap();
//! assert!(!overlap.ok());
//! assert_eq!(overlap.violations[0].entries, [0, 1]);
//! ```
//!
//! Safety checkers (must hold under every fault):
//! - `fenced-writes` (fenced single leadership): every committed write that changes leader-only
//!   data (checkpoint pointers, the counter, the job graph, the registry, leader information)
//!   carries its writer's own fence, never a term below one the map already carried (the
//!   fencing-token property of DESIGN.md), and comes from the lock's holder at that term, or from
//!   a leader whose lock was just taken over by a newer term that has not sealed the map yet
//!   (allowed by design, counted as `writes_in_takeover_window`).
//! - `terms`: the lock's transition count never decreases, rises by exactly one per change of
//!   holder, stays put on a renewal, and never names two holders; every grant a candidate
//!   believed is backed by a lock commit naming it at that term.
//! - `overlap` (believed-leadership overlap): how long two or more candidates believed they led;
//!   it must be zero unless the run broke the timing assumptions on purpose.
//! - `durability`: no committed checkpoint is dropped before a higher one is committed; each
//!   recovery restores the highest committed checkpoint; no committed pointer outlives its blob.
//! - `counter`: the checkpoint ID counter never goes down, and every ID is handed out once and
//!   from below the committed counter.
//! - `progress`: a recovery restores the records its checkpoint holds, and committed checkpoints
//!   hold strictly more records the higher their ID (nothing lost, nothing counted twice).
//! - `cleanup`: a job that reached a globally terminal state is never run again and its map is
//!   eventually deleted; without one, nothing of its HA data is deleted.
//!
//! Liveness checker (after the faults heal):
//! - `liveness`: once every fault is repaired a leader is elected within a bound derived from the
//!   timing, checkpoints progress again, and watchers learn the last published leader. At any
//!   time, a leader loses leadership only when a fault that could cost it the lease (or more
//!   than one that could fail a renewal) was active within the lease, the renew deadline and two
//!   retry periods before: no needless loss to one failed request.

mod cleanup;
mod counter;
mod durability;
mod fenced_writes;
mod liveness;
mod overlap;
mod progress;
mod replay;
mod terms;
#[cfg(test)]
mod testing;

use serde::Serialize;
use serde_json::Value;

use crate::history::Entry;

pub use crate::settings::Context;
pub(crate) use replay::show_checkpoint;
pub use replay::{FaultSpan, Leadership, LockChange, fault_spans, leaderships, lock_changes};

/// Whether a checker guards safety (must hold under every fault) or liveness (after healing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// Must hold under every fault, always.
    Safety,
    /// Must hold once every fault is repaired.
    Liveness,
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// What broke, in plain words, with the decisive values.
    pub message: String,
    /// Indices into the history of the entries that break it, ascending.
    pub entries: Vec<usize>,
}

impl Violation {
    pub(crate) fn new(message: String, mut entries: Vec<usize>) -> Violation {
        entries.sort_unstable();
        entries.dedup();
        Violation { message, entries }
    }
}

/// One checker's judgement of a history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The checker's name (`fenced-writes`, `terms`, ...).
    pub checker: &'static str,
    /// Safety or liveness.
    pub kind: Kind,
    /// Everything that broke, in history order.
    pub violations: Vec<Violation>,
    /// What the checker measured, by name.
    pub figures: Vec<(String, Value)>,
}

impl Verdict {
    /// Whether nothing broke.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Judge `history` with every checker, in a fixed order: `fenced-writes`, `terms`, `overlap`,
/// `durability`, `counter`, `progress`, `cleanup`, `liveness`. The same history always gives
/// the same verdicts.
pub fn check(history: &[Entry], ctx: &Context) -> Vec<Verdict> {
    let commits = replay::replay(history, ctx);
    let locks = replay::lock_states(&commits, ctx);
    let beliefs = replay::beliefs(history);
    vec![
        fenced_writes::fenced_writes(&commits, &locks, ctx),
        terms::terms(history, &locks),
        overlap::overlap(&beliefs, ctx),
        durability::durability(history, &commits, ctx),
        counter::counter(history, &commits, ctx),
        progress::progress(history),
        cleanup::cleanup(history, &commits, ctx),
        liveness::liveness(history, &beliefs, ctx),
    ]
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    #[test]
    fn a_correct_run_passes_every_checker() {
        let mut b = correct_run();
        b.end(5500);
        let ctx = context(LockKind::ConfigMap);
        let verdicts = check(&b.entries, &ctx);
        let names: Vec<&str> = verdicts.iter().map(|v| v.checker).collect();
        assert_eq!(
            names,
            [
                "fenced-writes",
                "terms",
                "overlap",
                "durability",
                "counter",
                "progress",
                "cleanup",
                "liveness"
            ]
        );
        for verdict in &verdicts {
            assert!(verdict.ok(), "{verdict:#?}");
        }
        assert_eq!(verdicts, check(&b.entries, &ctx), "deterministic");
        let figures = |checker: &str| {
            let verdict = verdicts.iter().find(|v| v.checker == checker).unwrap();
            serde_json::to_value(&verdict.figures).unwrap()
        };
        assert_eq!(
            figures("fenced-writes"),
            json!([["leader_only_writes", 18], ["writes_in_takeover_window", 0]])
        );
        assert_eq!(figures("terms"), json!([["terms", 2]]));
        assert_eq!(
            figures("overlap"),
            json!([
                ["overlap_ms", 0],
                ["max_believers", 1],
                ["overlap_allowed", false]
            ])
        );
        assert_eq!(figures("durability"), json!([["committed_at_end", [4]]]));
        assert_eq!(
            figures("liveness"),
            json!([
                ["election_bound_ms", 3030],
                ["needless_losses", 0],
                ["hand_overs_judged", 0],
                ["watcher_lags_judged", 0],
                ["watcher_lag_max_ms", 0],
                ["judged", true],
                ["elected_after_heal_ms", 0],
                ["first_checkpoint_after_heal_ms", 102]
            ])
        );
    }
}
