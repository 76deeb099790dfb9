//! `progress`: a recovery restores the records its checkpoint holds, and committed checkpoints
//! hold strictly more records the higher their ID (nothing lost, nothing counted twice).

use std::collections::BTreeMap;

use khaos_elector::jobmaster::Event;
use serde_json::json;

use super::replay::*;
use super::{Kind, Verdict, Violation};
use crate::history::Entry;

pub(super) fn progress(history: &[Entry]) -> Verdict {
    // Records per checkpoint id, from the first event that names the id: (records, entry).
    let mut recorded: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    // Completed checkpoints: (id, entry, records).
    let mut completed: Vec<(u64, usize, u64)> = Vec::new();
    for (index, entry) in history.iter().enumerate() {
        match job_event(entry) {
            Some(Event::Checkpoint { id, records, .. }) => {
                recorded.entry(*id).or_insert((*records, index));
                completed.push((*id, index, *records));
            }
            Some(Event::CheckpointFailed { id, records, .. }) => {
                recorded.entry(*id).or_insert((*records, index));
            }
            _ => {}
        }
    }
    let mut violations = Vec::new();
    for (index, entry) in history.iter().enumerate() {
        let Some(Event::Restored {
            term,
            checkpoint,
            records,
            ..
        }) = job_event(entry)
        else {
            continue;
        };
        let node = &entry.node;
        match checkpoint {
            None if *records != 0 => violations.push(Violation::new(
                format!(
                    "{node} (term {term}) restored no checkpoint but {records} records: a job \
                     without a checkpoint starts from 0"
                ),
                vec![index],
            )),
            Some(id) => match recorded.get(id) {
                Some(&(held, at)) if held != *records => violations.push(Violation::new(
                    format!(
                        "{node} (term {term}) restored checkpoint {id} with {records} records, \
                         but checkpoint {id} holds {held}"
                    ),
                    vec![at, index],
                )),
                _ => {}
            },
            None => {}
        }
    }
    completed.sort_unstable();
    for pair in completed.windows(2) {
        let ((low, low_index, low_records), (high, high_index, high_records)) = (pair[0], pair[1]);
        if low != high && high_records <= low_records {
            violations.push(Violation::new(
                format!(
                    "checkpoint {high} holds {high_records} records but the lower checkpoint \
                     {low} already held {low_records}: progress was lost or counted twice"
                ),
                vec![low_index, high_index],
            ));
        }
    }
    Verdict {
        checker: "progress",
        kind: Kind::Safety,
        violations,
        figures: vec![figure(
            "records_at_last_checkpoint",
            json!(completed.iter().max().map(|c| c.2)),
        )],
    }
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    #[test]
    fn restores_and_checkpoints_that_lose_or_repeat_progress_are_caught() {
        let mut b = Builder::default();
        b.event(
            10,
            A,
            Event::Checkpoint {
                term: 0,
                id: 1,
                records: 100,
            },
        );
        let second = b.event(
            20,
            A,
            Event::Checkpoint {
                term: 0,
                id: 2,
                records: 200,
            },
        );
        let wrong = b.restored(30, B, 1, Some(2), 150);
        let from_nothing = b.restored(40, C, 2, None, 50);
        let repeated = b.event(
            50,
            C,
            Event::Checkpoint {
                term: 2,
                id: 3,
                records: 200,
            },
        );
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "progress");
        assert_eq!(
            entries(&verdict),
            [
                vec![second, wrong],
                vec![from_nothing],
                vec![second, repeated]
            ]
        );
        let messages = messages(&verdict);
        assert!(
            messages[0]
                .contains("restored checkpoint 2 with 150 records, but checkpoint 2 holds 200"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].contains("restored no checkpoint but 50 records"),
            "{}",
            messages[1]
        );
        assert!(
            messages[2].contains(
                "checkpoint 3 holds 200 records but the lower checkpoint 2 already held 200"
            ),
            "{}",
            messages[2]
        );
    }

    #[test]
    fn a_possibly_committed_failed_checkpoint_may_be_restored() {
        let mut b = Builder::default();
        b.restored(5, A, 0, None, 0);
        b.event(
            10,
            A,
            Event::Checkpoint {
                term: 0,
                id: 1,
                records: 100,
            },
        );
        b.event(
            20,
            A,
            Event::CheckpointFailed {
                term: 0,
                id: 2,
                records: 200,
                possibly_inconsistent: true,
                error: "timeout".into(),
            },
        );
        b.restored(30, B, 1, Some(2), 200);
        b.event(
            40,
            B,
            Event::Checkpoint {
                term: 1,
                id: 3,
                records: 300,
            },
        );
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "progress");
        assert!(verdict.ok(), "{verdict:#?}");
        assert_eq!(
            figure_of(&verdict, "records_at_last_checkpoint"),
            &json!(300)
        );
    }
}
