//! `counter`: the checkpoint ID counter never goes down, and every ID is handed out once and
//! from below the committed counter.

use std::collections::BTreeMap;

use khaos_elector::jobmaster::Event;
use serde_json::json;

use super::replay::*;
use super::{Context, Kind, Verdict, Violation};
use crate::history::Entry;

pub(super) fn counter(
    history: &[Entry],
    commits: &BTreeMap<usize, Commit<'_>>,
    ctx: &Context,
) -> Verdict {
    let job_map = ctx.job_map();
    // The last committed counter: (value, revision).
    let mut last: Option<(u64, u64, usize)> = None;
    // The first checkpoint event of every id.
    let mut ids: BTreeMap<u64, usize> = BTreeMap::new();
    let mut violations = Vec::new();
    for (index, entry) in history.iter().enumerate() {
        if let Some(commit) = commits.get(&index) {
            if !commit.on("configmaps", &job_map) {
                continue;
            }
            let Some(raw) = data(commit.after).get("counter").copied() else {
                continue;
            };
            let Ok(value) = raw.parse::<u64>() else {
                violations.push(Violation::new(
                    format!(
                        "revision {}: the counter {raw:?} is not a number",
                        commit.revision
                    ),
                    vec![index],
                ));
                continue;
            };
            if let Some((before, revision, before_index)) = last
                && value < before
            {
                violations.push(Violation::new(
                    format!(
                        "revision {}: {} set the counter to {value}, below {before} (revision \
                         {revision}): the counter must never decrease",
                        commit.revision, commit.client
                    ),
                    vec![before_index, index],
                ));
            }
            last = Some((value, commit.revision, index));
            continue;
        }
        let Some(Event::Checkpoint { term, id, .. }) = job_event(entry) else {
            continue;
        };
        let node = &entry.node;
        if let Some(&first) = ids.get(id) {
            violations.push(Violation::new(
                format!(
                    "{node} (term {term}) completed checkpoint {id}, an id already completed at \
                     entry {first}: checkpoint ids must be unique"
                ),
                vec![first, index],
            ));
        } else {
            ids.insert(*id, index);
        }
        match last {
            None => violations.push(Violation::new(
                format!(
                    "{node} (term {term}) completed checkpoint {id} but no counter was committed \
                     before it"
                ),
                vec![index],
            )),
            Some((value, revision, counter_index)) if *id >= value => {
                violations.push(Violation::new(
                    format!(
                        "{node} (term {term}) completed checkpoint {id}, but the counter \
                         committed before it (revision {revision}) was {value}: an id must come \
                         from below the committed counter"
                    ),
                    vec![counter_index, index],
                ));
            }
            Some(_) => {}
        }
    }
    Verdict {
        checker: "counter",
        kind: Kind::Safety,
        violations,
        figures: vec![figure("checkpoint_ids", json!(ids.len()))],
    }
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    /// A counter incremented by read-then-write, interleaved across two leaders.
    #[test]
    fn a_counter_that_goes_back_hands_out_an_id_twice() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        let three = b.set(100, A, JOB_MAP, "counter", "3");
        let first = b.event(
            101,
            A,
            Event::Checkpoint {
                term: 0,
                id: 2,
                records: 100,
            },
        );
        let two = b.set(102, A, JOB_MAP, "counter", "2");
        let again = b.event(
            103,
            A,
            Event::Checkpoint {
                term: 0,
                id: 2,
                records: 200,
            },
        );
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "counter");
        assert_eq!(
            entries(&verdict),
            [vec![three, two], vec![first, again], vec![two, again]]
        );
        let messages = messages(&verdict);
        assert!(
            messages[0].contains("set the counter to 2, below 3"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].contains("completed checkpoint 2, an id already completed at entry"),
            "{}",
            messages[1]
        );
        assert!(
            messages[2].contains("the counter committed before it (revision"),
            "{}",
            messages[2]
        );
    }

    #[test]
    fn a_checkpoint_id_needs_a_counter_committed_before_it() {
        let mut b = Builder::default();
        let early = b.event(
            10,
            A,
            Event::Checkpoint {
                term: 0,
                id: 1,
                records: 100,
            },
        );
        b.set(20, A, JOB_MAP, "counter", "2");
        b.event(
            30,
            A,
            Event::Checkpoint {
                term: 0,
                id: 1,
                records: 100,
            },
        );
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "counter");
        assert_eq!(entries(&verdict)[0], [early]);
        assert!(
            verdict.violations[0]
                .message
                .contains("no counter was committed before it")
        );
        let mut b = correct_run();
        b.end(5000);
        let quiet = judge(&b.entries, &context(LockKind::ConfigMap), "counter");
        assert!(quiet.ok(), "{quiet:#?}");
        assert_eq!(figure_of(&quiet, "checkpoint_ids"), &json!(4));
    }
}
