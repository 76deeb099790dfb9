//! `cleanup`: a job that reached a globally terminal state is never run again and its map is
//! eventually deleted; without one, nothing of its HA data is deleted.

use std::collections::BTreeMap;

use khaos_elector::jobmaster::Event;
use serde_json::json;

use super::replay::*;
use super::{Context, Kind, Verdict, Violation};
use crate::history::Entry;
use crate::history::Phase;

pub(super) fn cleanup(
    history: &[Entry],
    commits: &BTreeMap<usize, Commit<'_>>,
    ctx: &Context,
) -> Verdict {
    let job_map = ctx.job_map();
    let mut violations = Vec::new();
    match terminal_event(history) {
        Some(terminal) => {
            never_restarted(history, terminal, &mut violations);
            let deadline_ms = ms(ctx.timing.lease_duration() + ctx.timing.retry_period() * 2);
            let (terminal_index, terminal_ms, _) = terminal;
            if let Some(end) = phase(history, Phase::End, terminal_index)
                && history[end].t_ms.saturating_sub(terminal_ms) > deadline_ms
            {
                let last = commits
                    .range(..end)
                    .rev()
                    .map(|(_, commit)| commit)
                    .find(|commit| commit.on("configmaps", &job_map));
                if let Some(last) = last.filter(|commit| !commit.is_delete()) {
                    violations.push(Violation::new(
                        format!(
                            "the job ended at t={terminal_ms} ms but its map {job_map} still \
                             existed at the end (t={} ms, last written at revision {}), more than \
                             {deadline_ms} ms later: a finished job's HA data must be deleted",
                            history[end].t_ms, last.revision
                        ),
                        vec![terminal_index, last.index],
                    ));
                }
            }
        }
        None => nothing_deleted(commits, &job_map, &mut violations),
    }
    Verdict {
        checker: "cleanup",
        kind: Kind::Safety,
        violations,
        figures: vec![figure("terminal", json!(terminal_event(history).is_some()))],
    }
}

/// After the terminal event, no leader of that term or a later one runs the job again. Events of
/// a lower term are late reports of a deposed leader (after a pause), whose writes fencing
/// orders before the terminal term.
fn never_restarted(
    history: &[Entry],
    (terminal_index, _, terminal_term): (usize, u64, u64),
    violations: &mut Vec<Violation>,
) {
    for (index, entry) in history.iter().enumerate().skip(terminal_index + 1) {
        let (term, what) = match job_event(entry) {
            Some(Event::Submitted { term, .. }) => (term, "submitted it again"),
            Some(Event::Restored { term, .. }) => (term, "restored it"),
            Some(Event::Checkpoint { term, .. }) => (term, "completed a checkpoint of it"),
            _ => continue,
        };
        if *term >= terminal_term {
            violations.push(Violation::new(
                format!(
                    "the job reached a globally terminal state (term {terminal_term}), then {} \
                     (term {term}) {what}: a finished job must never run again",
                    entry.node
                ),
                vec![terminal_index, index],
            ));
        }
    }
}

/// Without a terminal event nothing of the job's HA data may be deleted: not its map, and no
/// checkpoint unless a higher one is committed.
fn nothing_deleted(
    commits: &BTreeMap<usize, Commit<'_>>,
    job_map: &str,
    violations: &mut Vec<Violation>,
) {
    let mut checkpoints = Checkpoints::default();
    for commit in commits.values().filter(|c| c.on("configmaps", job_map)) {
        let removals = checkpoints.apply(commit);
        if commit.is_delete() {
            violations.push(Violation::new(
                format!(
                    "revision {}: {} deleted the job map {job_map} although the job never reached \
                     a globally terminal state: a shutdown that is not terminal deletes nothing",
                    commit.revision, commit.client
                ),
                vec![commit.index],
            ));
            continue;
        }
        for removal in removals.iter().filter(|r| !r.subsumed) {
            violations.push(Violation::new(
                removal_message(commit, removal),
                vec![removal.committed.1, commit.index],
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    /// The job reached a terminal state and cleaned up: returns the `finished` entry.
    fn finished_job(b: &mut Builder) -> usize {
        b.first_leader(10, A, 0);
        b.checkpoint(100, A, 0, 1, 100);
        b.set(150, A, JOB_MAP, "runningJobsRegistry-job", "DONE");
        b.delete(160, A, ("configmaps", JOB_MAP));
        b.event(
            170,
            A,
            Event::Finished {
                term: 0,
                state: TerminalState::Finished,
                records: 100,
            },
        )
    }

    /// FLINK-39704: a job that reached a terminal state is run again by a later leader.
    #[test]
    fn a_finished_job_that_runs_again_breaks_cleanup() {
        let mut b = Builder::default();
        let finished = finished_job(&mut b);
        b.lock(2000, B, B, 1);
        b.granted(2001, B, 1);
        let submitted = b.event(
            2002,
            B,
            Event::Submitted {
                term: 1,
                job: "job".into(),
            },
        );
        let restored = b.restored(2003, B, 1, None, 0);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "cleanup");
        assert_eq!(
            entries(&verdict),
            [vec![finished, submitted], vec![finished, restored]]
        );
        let message = &verdict.violations[0].message;
        assert!(
            message.contains("then node-b (term 1) submitted it again"),
            "{message}"
        );
    }

    #[test]
    fn a_finished_job_whose_map_outlives_it_breaks_cleanup() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        let last = b.set(150, A, JOB_MAP, "runningJobsRegistry-job", "DONE");
        let finished = b.event(
            170,
            A,
            Event::Finished {
                term: 0,
                state: TerminalState::Failed,
                records: 0,
            },
        );
        b.end(2071);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "cleanup");
        assert_eq!(entries(&verdict), [vec![last, finished]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains("its map demo-job-config-map still existed at the end (t=2071 ms"),
            "{message}"
        );
        // One lease and two retry periods (1900 ms) after the end is not yet overdue.
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        b.event(
            170,
            A,
            Event::Finished {
                term: 0,
                state: TerminalState::Failed,
                records: 0,
            },
        );
        b.end(2070);
        assert!(judge(&b.entries, &context(LockKind::ConfigMap), "cleanup").ok());
    }

    /// FLINK-25486: a shutdown that is not globally terminal deletes the HA data.
    #[test]
    fn a_shutdown_that_is_not_terminal_deletes_nothing() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        let [_, committed, _] = b.checkpoint(100, A, 0, 1, 100);
        let deleted = b.delete(200, A, ("configmaps", JOB_MAP));
        let ctx = context(LockKind::ConfigMap);
        let verdict = judge(&b.entries, &ctx, "cleanup");
        assert_eq!(entries(&verdict), [vec![deleted]]);
        let message = &verdict.violations[0].message;
        assert!(message.contains("node-a deleted the job map demo-job-config-map although the job never reached a globally terminal state"), "{message}");
        let durability = judge(&b.entries, &ctx, "durability");
        assert_eq!(entries(&durability), [vec![committed, deleted]]);
        assert!(
            durability.violations[0]
                .message
                .contains("deleted with the whole job map")
        );
    }

    #[test]
    fn a_clean_finish_passes_cleanup_and_durability() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        // node-a commits checkpoint 1, then pauses before reporting it.
        b.set(100, A, JOB_MAP, "counter", "2");
        b.set(101, A, JOB_MAP, &checkpoint_key(1), &pointer(1, false));
        b.lock(2000, B, B, 1);
        b.granted(2001, B, 1);
        b.publish(2002, B, 1);
        b.seal(2005, B, JOB_MAP, 1);
        b.restored(2006, B, 1, Some(1), 100);
        b.checkpoint(2100, B, 1, 2, 200);
        b.subsume(2110, B, 1);
        b.set(2150, B, JOB_MAP, "runningJobsRegistry-job", "DONE");
        b.delete(2160, B, ("configmaps", JOB_MAP));
        b.event(
            2170,
            B,
            Event::Finished {
                term: 1,
                state: TerminalState::Finished,
                records: 200,
            },
        );
        // The deposed leader's late report (a lower term) is not a restart.
        b.event(
            2200,
            A,
            Event::Checkpoint {
                term: 0,
                id: 1,
                records: 100,
            },
        );
        b.lock(4000, C, C, 2);
        b.granted(4001, C, 2);
        b.event(
            4002,
            C,
            Event::AlreadyDone {
                term: 2,
                state: TerminalState::Finished,
                was_clean: true,
            },
        );
        b.end(9000);
        let ctx = context(LockKind::ConfigMap);
        for checker in [
            "fenced-writes",
            "terms",
            "durability",
            "counter",
            "progress",
            "cleanup",
        ] {
            let verdict = judge(&b.entries, &ctx, checker);
            assert!(verdict.ok(), "{verdict:#?}");
        }
        let cleanup = judge(&b.entries, &ctx, "cleanup");
        assert_eq!(figure_of(&cleanup, "terminal"), &json!(true));
    }
}
