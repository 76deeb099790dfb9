//! `fenced-writes` (fenced single leadership): every committed write that changes leader-only
//! data (checkpoint pointers, the counter, the job graph, the registry, leader information)
//! carries its writer's own fence, never a term below one the map already carried (the
//! fencing-token property, `docs/invariants.md`), and comes from the lock's holder at that
//! term, or from a leader whose lock was just taken over by a newer term that has not sealed the
//! map yet, or that it released with no newer term yet (a write sent while it led that committed
//! late: allowed by design, counted as `writes_in_takeover_window`).

use std::collections::{BTreeMap, BTreeSet};

use khaos_elector::store::Fence;
use serde_json::json;

use super::replay::*;
use super::{Context, Kind, Verdict, Violation};

/// Prefixes of the data keys only a leader may change (the `counter` key is the other one).
const LEADER_ONLY_PREFIXES: [&str; 4] = [
    "checkpointID-",
    "jobGraph-",
    "runningJobsRegistry-",
    "org.apache.flink.k8s.leader.",
];

fn is_leader_only(key: &str) -> bool {
    key == "counter" || LEADER_ONLY_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The leader-only keys a commit changed, sorted.
fn changed_leader_only_keys<'a>(commit: &Commit<'a>) -> Vec<&'a str> {
    let before = data(commit.before);
    let after = data(commit.after);
    let keys: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    keys.into_iter()
        .filter(|key| is_leader_only(key) && before.get(key) != after.get(key))
        .collect()
}

/// How a leader-only write stood against the lock.
enum Standing {
    /// Its writer held the lock at its term.
    Held,
    /// A newer term had taken the lock but not sealed the map yet, or the writer had released
    /// it at its term and no newer term existed.
    InTakeoverWindow,
}

pub(super) fn fenced_writes(
    commits: &BTreeMap<usize, Commit<'_>>,
    locks: &[LockState],
    ctx: &Context,
) -> Verdict {
    let maps = [ctx.cluster_map(), ctx.job_map()];
    let job_map = ctx.job_map();
    // The highest term each map carried so far: (term, revision, entry).
    let mut highest: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
    let mut violations = Vec::new();
    let (mut writes, mut in_window) = (0_u64, 0_u64);
    for commit in commits.values() {
        if commit.resource != "configmaps" || !maps.iter().any(|map| map == commit.name) {
            continue;
        }
        let fence = fence_of(commit.object);
        let keys = changed_leader_only_keys(commit);
        if !keys.is_empty() || (commit.is_delete() && commit.name == job_map) {
            writes += 1;
            let earlier = highest.get(commit.name).copied();
            match judge_write(commit, &keys, fence.as_ref(), earlier, locks) {
                Ok(Standing::Held) => {}
                Ok(Standing::InTakeoverWindow) => in_window += 1,
                Err(violation) => violations.push(violation),
            }
        }
        if let Some(fence) = fence {
            let carried = highest.entry(commit.name).or_insert((0, 0, commit.index));
            if fence.term >= carried.0 {
                *carried = (fence.term, commit.revision, commit.index);
            }
        }
    }
    Verdict {
        checker: "fenced-writes",
        kind: Kind::Safety,
        violations,
        figures: vec![
            figure("leader_only_writes", json!(writes)),
            figure("writes_in_takeover_window", json!(in_window)),
        ],
    }
}

/// Judge one leader-only write: its fence, its term against the map's past, its writer against
/// the lock. The first problem found is the violation.
fn judge_write(
    commit: &Commit<'_>,
    keys: &[&str],
    fence: Option<&Fence>,
    earlier: Option<(u64, u64, usize)>,
    locks: &[LockState],
) -> Result<Standing, Violation> {
    let (revision, client, map) = (commit.revision, commit.client, commit.name);
    let what = if commit.is_delete() {
        format!("{client} deleted {map}")
    } else {
        format!("{client} changed {} of {map}", keys.join(", "))
    };
    let fail = |message: String, mut entries: Vec<usize>| {
        entries.push(commit.index);
        Err(Violation::new(
            format!("revision {revision}: {what} {message}"),
            entries,
        ))
    };
    let Some(fence) = fence else {
        return fail(
            "but the map carries no fence: the write proves no leadership".into(),
            vec![],
        );
    };
    if fence.holder != client {
        return fail(
            format!(
                "under the fence of {:?} (term {}): a leader-only write must carry its writer's own fence",
                fence.holder, fence.term
            ),
            vec![],
        );
    }
    if let Some((term, earlier_revision, index)) = earlier
        && fence.term < term
    {
        return fail(
            format!(
                "with term {} after revision {earlier_revision} had carried term {term}: terms \
                 on a map must never go back (fencing token)",
                fence.term
            ),
            vec![index],
        );
    }
    let Some(lock) = lock_before(locks, revision) else {
        return fail(
            format!("with term {}, but no lock commit precedes it", fence.term),
            vec![],
        );
    };
    if lock.holder == client && lock.transitions == fence.term {
        return Ok(Standing::Held);
    }
    if lock.transitions > fence.term {
        return Ok(Standing::InTakeoverWindow);
    }
    // Released at the writer's term, by the writer: a write sent while it led that committed
    // after its release. No newer term exists yet, and the next leader seals the map before it
    // reads, so the write is ordered before that term as a takeover-window write is.
    let last_holder = locks
        .iter()
        .take_while(|l| l.revision < lock.revision)
        .filter(|l| !l.holder.is_empty())
        .last();
    if lock.holder.is_empty()
        && lock.transitions == fence.term
        && last_holder.is_some_and(|l| l.holder == client && l.transitions == fence.term)
    {
        return Ok(Standing::InTakeoverWindow);
    }
    let held_by = if lock.holder.is_empty() {
        "nobody (released)".to_owned()
    } else {
        format!("{:?}", lock.holder)
    };
    fail(
        format!(
            "with term {} while the lock (revision {}) was held by {held_by} at term {}: the \
             writer did not hold the lock",
            fence.term, lock.revision, lock.transitions
        ),
        vec![lock.index],
    )
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    /// kubernetes #23731: the leader lost the lock but kept acting.
    #[test]
    fn a_write_under_another_leaders_seal_is_not_fenced() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        b.lock(100, B, B, 1);
        b.seal(105, B, JOB_MAP, 1);
        let stale = b.set(110, A, JOB_MAP, "counter", "5");
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "fenced-writes");
        assert_eq!(entries(&verdict), [vec![stale]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains("node-a changed counter of demo-job-config-map under the fence of \"node-b\" (term 1)"),
            "{message}"
        );
    }

    #[test]
    fn a_write_that_puts_back_an_older_term_breaks_the_fencing_token() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        b.lock(100, B, B, 1);
        let seal = b.seal(105, B, JOB_MAP, 1);
        // node-a replaces the map with the copy it read before the seal.
        let stale = b.write(110, A, ("configmaps", JOB_MAP), |object| {
            let fence = json!({"term": 0, "holder": A}).to_string();
            object["metadata"]["annotations"][FENCE_ANNOTATION] = json!(fence);
            object["data"]["counter"] = json!("5");
        });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "fenced-writes");
        assert_eq!(entries(&verdict), [vec![seal, stale]]);
        let message = &verdict.violations[0].message;
        assert!(message.contains("with term 0 after revision"), "{message}");
        assert!(message.contains("had carried term 1"), "{message}");
    }

    #[test]
    fn writes_without_a_fence_or_from_a_term_the_lock_never_granted_are_caught() {
        let mut b = Builder::default();
        let lock = b.lock(10, A, A, 0);
        let unfenced = b.set(20, A, JOB_MAP, "counter", "2");
        b.seal(30, A, JOB_MAP, 3);
        let ahead = b.set(40, A, JOB_MAP, "counter", "3");
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "fenced-writes");
        assert_eq!(entries(&verdict), [vec![unfenced], vec![lock, ahead]]);
        assert!(verdict.violations[0].message.contains("carries no fence"));
        let message = &verdict.violations[1].message;
        assert!(
            message.contains(
                "with term 3 while the lock (revision 1) was held by \"node-a\" at term 0"
            ),
            "{message}"
        );
    }

    /// DESIGN.md: a stale leader may write between the new leader's take-over of the lock and
    /// its seal of the map; that is counted, not condemned.
    #[test]
    fn a_write_in_the_takeover_window_is_counted_not_condemned() {
        let mut b = Builder::default();
        b.lease(10, A, A, 0);
        b.seal(20, A, JOB_MAP, 0);
        b.set(30, A, JOB_MAP, "counter", "2");
        b.lease(40, B, B, 1);
        b.set(50, A, JOB_MAP, "counter", "3");
        b.seal(60, B, JOB_MAP, 1);
        b.set(70, B, JOB_MAP, "counter", "4");
        let verdict = judge(&b.entries, &context(LockKind::Lease), "fenced-writes");
        assert!(verdict.ok(), "{verdict:#?}");
        assert_eq!(figure_of(&verdict, "leader_only_writes"), &json!(3));
        assert_eq!(figure_of(&verdict, "writes_in_takeover_window"), &json!(1));
    }

    /// A write the leader sent before releasing, held in the API server until after the release
    /// (a stall), is ordered before any newer term: counted, not condemned. Someone else's
    /// write under a released lock is condemned.
    #[test]
    fn a_write_committed_after_the_writers_own_release_is_counted_not_condemned() {
        let mut b = Builder::default();
        b.lease(10, A, A, 0);
        b.seal(20, A, JOB_MAP, 0);
        b.lease(40, A, "", 0);
        b.set(50, A, JOB_MAP, "counter", "3");
        let verdict = judge(&b.entries, &context(LockKind::Lease), "fenced-writes");
        assert!(verdict.ok(), "{verdict:#?}");
        assert_eq!(figure_of(&verdict, "writes_in_takeover_window"), &json!(1));

        let mut b = Builder::default();
        b.lease(10, A, A, 0);
        b.seal(20, A, JOB_MAP, 0);
        b.lease(40, A, "", 0);
        b.seal(45, B, JOB_MAP, 0);
        let foreign = b.set(50, B, JOB_MAP, "counter", "3");
        let verdict = judge(&b.entries, &context(LockKind::Lease), "fenced-writes");
        assert_eq!(entries(&verdict).last().unwrap().last(), Some(&foreign));
    }
}
