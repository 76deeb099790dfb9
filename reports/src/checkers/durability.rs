//! `durability`: no committed checkpoint is dropped before a higher one is committed; each
//! recovery restores the highest committed checkpoint; no committed pointer outlives its blob
//! while the job can still run (no terminal result recorded).

use std::collections::{BTreeMap, BTreeSet};

use khaos_elector::jobmaster::Event;
use serde_json::json;

use super::replay::*;
use super::{Context, Kind, Verdict, Violation};
use crate::history::{Entry, HarnessEvent, Record};

pub(super) fn durability(
    history: &[Entry],
    commits: &BTreeMap<usize, Commit<'_>>,
    ctx: &Context,
) -> Verdict {
    let job_map = ctx.job_map();
    let terminal = terminal_event(history).is_some();
    let mut checkpoints = Checkpoints::default();
    // Per node, the committed ids at every point since its last grant or failover: what its
    // recovery's read could have seen.
    let mut readable: BTreeMap<&str, Vec<BTreeSet<u64>>> = BTreeMap::new();
    let mut blobs = None;
    // The job's entry in the running-jobs registry, as last committed.
    let registry_key = khaos_elector::store::registry_key(&ctx.job_id);
    let mut registry_done = false;
    let mut violations = Vec::new();
    for (index, entry) in history.iter().enumerate() {
        if let Some(commit) = commits.get(&index) {
            if !commit.on("configmaps", &job_map) {
                continue;
            }
            registry_done = data(commit.after).get(registry_key.as_str()) == Some(&"DONE");
            for removal in checkpoints.apply(commit) {
                let terminal_cleanup = commit.is_delete() && terminal;
                if !removal.subsumed && !terminal_cleanup {
                    let entries = vec![removal.committed.1, index];
                    violations.push(Violation::new(removal_message(commit, &removal), entries));
                }
            }
            for seen in readable.values_mut() {
                seen.push(checkpoints.ids());
            }
            continue;
        }
        match &entry.record {
            Record::Job(Event::Granted { .. } | Event::Failover { .. }) => {
                readable.insert(entry.node.as_str(), vec![checkpoints.ids()]);
            }
            Record::Job(Event::Restored {
                term,
                checkpoint,
                dangling,
                ..
            }) => {
                let seen = readable
                    .remove(entry.node.as_str())
                    .unwrap_or_else(|| vec![checkpoints.ids()]);
                let restore = Restore {
                    index,
                    node: &entry.node,
                    term: *term,
                    checkpoint: *checkpoint,
                    dangling,
                };
                violations.extend(judge_restore(&restore, &seen, &checkpoints));
            }
            Record::Harness(HarnessEvent::Blobs { paths }) => blobs = Some((index, paths)),
            _ => {}
        }
    }
    // A terminal cleanup records the result, marks the registry DONE, deletes the blobs and then
    // the map, and may be cut off anywhere in between (by a crash, a fault, the end of the run).
    // With the result recorded and the registry still DONE the job never runs again and nothing
    // reads its checkpoints; a job started again marks it RUNNING, and is judged. Restores of a
    // job whose blobs were deleted too soon are judged above, as dangling pointers.
    let cleaning_up = |paths: &Vec<String>| registry_done && paths.contains(&ctx.job_result());
    if let Some((blobs_index, paths)) = blobs.filter(|(_, paths)| !cleaning_up(paths)) {
        for (id, (path, revision, index)) in &checkpoints.live {
            if !paths.contains(path) {
                violations.push(Violation::new(
                    format!(
                        "checkpoint {id} (committed at revision {revision}) is still committed at \
                         the end but its blob {path:?} is not in the blob store"
                    ),
                    vec![*index, blobs_index],
                ));
            }
        }
    }
    Verdict {
        checker: "durability",
        kind: Kind::Safety,
        violations,
        figures: vec![figure(
            "committed_at_end",
            json!(checkpoints.ids().into_iter().collect::<Vec<_>>()),
        )],
    }
}

/// A `restored` event.
struct Restore<'a> {
    index: usize,
    node: &'a str,
    term: u64,
    checkpoint: Option<u64>,
    dangling: &'a [u64],
}

/// Judge a recovery: it restored the highest committed checkpoint whose blob exists, as its read
/// could have seen it (`seen`: the committed ids at every point since its grant or failover), and
/// found no committed pointer without its blob.
fn judge_restore(
    restore: &Restore<'_>,
    seen: &[BTreeSet<u64>],
    checkpoints: &Checkpoints,
) -> Vec<Violation> {
    let Restore {
        index,
        node,
        term,
        checkpoint,
        dangling,
    } = *restore;
    let restorable = |ids: &BTreeSet<u64>| -> Option<u64> {
        ids.iter().rev().find(|id| !dangling.contains(id)).copied()
    };
    // The entry that committed checkpoint `id`, if it is still committed.
    let committed_at = |id: &u64| checkpoints.live.get(id).map(|(_, _, at)| *at);
    let mut violations = Vec::new();
    if !seen.iter().any(|ids| restorable(ids) == checkpoint) {
        let expected = restorable(&checkpoints.ids());
        let mut entries = vec![index];
        entries.extend(expected.as_ref().and_then(committed_at));
        violations.push(Violation::new(
            format!(
                "{node} (term {term}) restored checkpoint {} but the highest committed \
                 checkpoint was {}: recovery must restore the latest committed state, read from \
                 the store (never a cache)",
                show_checkpoint(checkpoint),
                show_checkpoint(expected),
            ),
            entries,
        ));
    }
    if !dangling.is_empty() {
        let mut entries = vec![index];
        entries.extend(dangling.iter().filter_map(committed_at));
        violations.push(Violation::new(
            format!(
                "{node} (term {term}) found committed checkpoints {dangling:?} whose blobs are \
                 gone: a committed pointer must never dangle"
            ),
            entries,
        ));
    }
    violations
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    /// Subsuming the older checkpoint before the newer one is committed.
    #[test]
    fn a_checkpoint_dropped_before_a_higher_one_commits_is_lost() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        let [_, committed, _] = b.checkpoint(100, A, 0, 1, 100);
        let [mark, _] = b.subsume(110, A, 1);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "durability");
        assert_eq!(entries(&verdict), [vec![committed, mark]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains(
                "checkpoint 1 (committed at revision 8) was marked for deletion by node-a"
            ),
            "{message}"
        );
    }

    /// Recovery from a cached checkpoint list.
    #[test]
    fn restoring_an_older_checkpoint_breaks_durability() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        b.checkpoint(100, A, 0, 1, 100);
        let [_, newest, _] = b.checkpoint(200, A, 0, 2, 200);
        b.subsume(210, A, 1);
        b.event(
            300,
            A,
            Event::Failover {
                term: 0,
                error: "timeout".into(),
            },
        );
        let restored = b.restored(400, A, 0, Some(1), 100);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "durability");
        assert_eq!(entries(&verdict), [vec![newest, restored]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains(
                "node-a (term 0) restored checkpoint 1 but the highest committed checkpoint was 2"
            ),
            "{message}"
        );
    }

    /// FLINK-28265 / FLINK-26286: a committed pointer whose blob is gone.
    #[test]
    fn a_dangling_pointer_breaks_durability() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        b.checkpoint(100, A, 0, 1, 100);
        let [_, dangling, _] = b.checkpoint(200, A, 0, 2, 200);
        b.harness(250, A, HarnessEvent::Crashed {});
        b.lock(2000, B, B, 1);
        b.granted(2001, B, 1);
        b.seal(2002, B, JOB_MAP, 1);
        let restored = b.event(
            2003,
            B,
            Event::Restored {
                term: 1,
                checkpoint: Some(1),
                records: 100,
                dangling: vec![2],
                removals_finished: 0,
            },
        );
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "durability");
        assert_eq!(entries(&verdict), [vec![dangling, restored]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains("found committed checkpoints [2] whose blobs are gone"),
            "{message}"
        );
    }

    #[test]
    fn a_pointer_committed_at_the_end_needs_its_blob() {
        let mut b = correct_run();
        b.phase(5000, Phase::End);
        let blobs = b.harness(
            5000,
            HARNESS,
            HarnessEvent::Blobs {
                paths: vec!["demo/job/job-graph".into(), path(3)],
            },
        );
        let committed = b.entries.iter().position(|e| {
            matches!(&e.record, Record::Harness(HarnessEvent::Commit { object, .. })
                if object["data"][checkpoint_key(4)].as_str() == Some(pointer(4, false).as_str()))
        });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "durability");
        assert_eq!(entries(&verdict), [vec![committed.unwrap(), blobs]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains("checkpoint 4 (committed at revision"),
            "{message}"
        );
        assert!(
            message.contains(
                "its blob \"demo/job/checkpoint-0000000000000000004\" is not in the blob store"
            ),
            "{message}"
        );
    }

    /// Terminal cleanup records the result, marks the registry DONE, deletes the blobs and the
    /// map last; a run that ends (or a leader that crashes) in between leaves pointers without
    /// blobs. The job never runs again, so nothing can read them: not a violation. Without the
    /// result the same end state is one (the test above), and so it is once the job runs again.
    #[test]
    fn a_cleanup_cut_off_after_the_result_is_recorded_leaves_no_lost_checkpoint() {
        // A correct run whose map's registry was set to each of `registry` in turn, ending with
        // only `result` in the blob store.
        let judged = |registry: &[&str], result: &str| {
            let mut b = correct_run();
            for (i, state) in (0..).zip(registry) {
                b.set(4900 + i * 10, A, JOB_MAP, "runningJobsRegistry-job", state);
            }
            b.phase(5000, Phase::End);
            let paths = vec![format!("demo/_job-results/{result}.json")];
            b.harness(5000, HARNESS, HarnessEvent::Blobs { paths });
            judge(&b.entries, &context(LockKind::ConfigMap), "durability")
        };
        let verdict = judged(&["DONE"], "job");
        assert!(verdict.ok(), "{verdict:#?}");
        let verdict = judged(&[], "job");
        assert!(
            !verdict.ok(),
            "a result without the registry DONE excuses nothing"
        );
        let verdict = judged(&["DONE"], "other-job");
        assert!(!verdict.ok(), "another job's result excuses nothing");
        // A job started again after its result was recorded (the registry says RUNNING) is
        // judged: its pointers need their blobs.
        let verdict = judged(&["DONE", "RUNNING"], "job");
        assert!(!verdict.ok(), "a running job's lost blobs are excused");
    }

    /// A deposed leader paused between its read and its report: its restore is judged by what
    /// its read could have seen since its grant, not by what a newer term committed since.
    #[test]
    fn a_late_restore_of_a_deposed_leader_is_judged_by_what_it_could_read() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        b.checkpoint(100, A, 0, 1, 100);
        b.harness(150, A, HarnessEvent::Crashed {});
        b.lock(2000, B, B, 1);
        b.granted(2001, B, 1);
        b.seal(2002, B, JOB_MAP, 1);
        b.lock(4000, C, C, 2);
        b.granted(4001, C, 2);
        b.seal(4002, C, JOB_MAP, 2);
        b.restored(4003, C, 2, Some(1), 100);
        b.checkpoint(4100, C, 2, 2, 200);
        b.subsume(4110, C, 1);
        b.restored(4200, B, 1, Some(1), 100);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "durability");
        assert!(verdict.ok(), "{verdict:#?}");
    }
}
