//! `terms`: the lock's transition count never decreases, rises by exactly one per change of
//! holder, stays put on a renewal, and never names two holders; every grant a candidate believed
//! is backed by a lock commit naming it at that term.

use std::collections::BTreeMap;

use khaos_elector::jobmaster::Event;
use serde_json::json;

use super::replay::*;
use super::{Kind, Verdict, Violation};
use crate::history::Entry;

pub(super) fn terms(history: &[Entry], locks: &[LockState]) -> Verdict {
    let mut violations = Vec::new();
    // The first holder of each term.
    let mut holders: BTreeMap<u64, &LockState> = BTreeMap::new();
    let mut previous: Option<&LockState> = None;
    for state in locks {
        if let Some(previous) = previous
            && let Some(violation) = judge_lock_change(previous, state, &holders)
        {
            violations.push(violation);
        }
        if !state.holder.is_empty() {
            holders.entry(state.transitions).or_insert(state);
        }
        previous = Some(state);
    }
    for (index, entry) in history.iter().enumerate() {
        let Some(Event::Granted { term }) = job_event(entry) else {
            continue;
        };
        let node = &entry.node;
        let backed = locks
            .iter()
            .any(|l| l.index < index && &l.holder == node && l.transitions == *term);
        if !backed {
            violations.push(Violation::new(
                format!(
                    "{node} believed it was granted term {term} (t={} ms), but no earlier lock \
                     commit names {node} as holder at term {term}",
                    entry.t_ms
                ),
                vec![index],
            ));
        }
    }
    Verdict {
        checker: "terms",
        kind: Kind::Safety,
        violations,
        figures: vec![figure("terms", json!(holders.len()))],
    }
}

/// Judge one change of the lock against the state before it.
fn judge_lock_change(
    previous: &LockState,
    state: &LockState,
    holders: &BTreeMap<u64, &LockState>,
) -> Option<Violation> {
    let (before, after) = (previous.transitions, state.transitions);
    let entries = vec![previous.index, state.index];
    let at = format!("revision {}", state.revision);
    if after < before {
        return Some(Violation::new(
            format!(
                "{at}: the lock's transitions went down from {before} (revision {}) to {after}: \
                 terms must never decrease",
                previous.revision
            ),
            entries,
        ));
    }
    let holder = &state.holder;
    if !holder.is_empty() && holder != &previous.holder {
        if let Some(owner) = holders.get(&after).filter(|owner| &owner.holder != holder) {
            return Some(Violation::new(
                format!(
                    "{at}: {holder:?} took the lock at term {after}, which {:?} already held at \
                     revision {}: two holders share a term",
                    owner.holder, owner.revision
                ),
                vec![owner.index, state.index],
            ));
        }
        if after != before + 1 {
            return Some(Violation::new(
                format!(
                    "{at}: the lock passed from {:?} (term {before}) to {holder:?} at term \
                     {after}: a change of holder must raise the term by exactly one, to {}",
                    previous.holder,
                    before + 1
                ),
                entries,
            ));
        }
    } else if after != before {
        return Some(Violation::new(
            format!(
                "{at}: the lock stayed with {:?} (renewed or released) but its transitions \
                 changed from {before} to {after}: only a change of holder may change the term",
                previous.holder
            ),
            entries,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    /// kube-leader-election: two standbys take over with a patch that carries no version.
    #[test]
    fn two_holders_at_one_term_break_terms() {
        let mut b = Builder::default();
        b.lease(10, A, A, 0);
        let first = b.lease(100, B, B, 1);
        let second = b.lease(101, C, C, 1);
        b.granted(102, B, 1);
        b.granted(103, C, 1);
        let verdict = judge(&b.entries, &context(LockKind::Lease), "terms");
        assert_eq!(entries(&verdict), [vec![first, second]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains(
                "\"node-c\" took the lock at term 1, which \"node-b\" already held at revision 2"
            ),
            "{message}"
        );
    }

    #[test]
    fn terms_that_change_on_renewal_skip_or_go_back_and_unbacked_grants_are_caught() {
        let mut b = Builder::default();
        let a0 = b.lock(10, A, A, 0);
        let a1 = b.lock(20, A, A, 1);
        let b3 = b.lock(30, B, B, 3);
        let c2 = b.lock(40, C, C, 2);
        let grant = b.granted(50, "node-d", 5);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "terms");
        assert_eq!(
            entries(&verdict),
            [vec![a0, a1], vec![a1, b3], vec![b3, c2], vec![grant]]
        );
        let messages = messages(&verdict);
        assert!(
            messages[0].contains("stayed with \"node-a\""),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].contains("must raise the term by exactly one, to 2"),
            "{}",
            messages[1]
        );
        assert!(messages[2].contains("went down from 3"), "{}", messages[2]);
        assert!(
            messages[3].contains("node-d believed it was granted term 5"),
            "{}",
            messages[3]
        );
    }

    #[test]
    fn releases_renewals_and_regaining_keep_terms() {
        let mut b = Builder::default();
        b.lease(10, A, A, 0);
        b.granted(11, A, 0);
        b.lease(20, A, A, 0);
        b.event(25, A, Event::Revoked { term: 0 });
        b.lease(30, A, "", 0);
        b.lease(40, A, A, 1);
        b.granted(41, A, 1);
        let verdict = judge(&b.entries, &context(LockKind::Lease), "terms");
        assert!(verdict.ok(), "{verdict:#?}");
        assert_eq!(figure_of(&verdict, "terms"), &json!(2));
    }
}
