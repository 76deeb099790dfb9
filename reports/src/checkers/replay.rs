//! What every checker reads: the history's commits replayed with each object's state before and
//! after, the leader lock's states, the candidates' believed leaderships, and the committed
//! checkpoints; plus the public views of them the reports draw ([`Leadership`], [`LockChange`]).

use std::collections::{BTreeMap, BTreeSet};

use khaos_elector::LockKind;
use khaos_elector::decision::{LEADER_ANNOTATION, LeaderElectionRecord};
use khaos_elector::jobmaster::Event;
use khaos_elector::store::{FENCE_ANNOTATION, Fence, Pointer};
pub(crate) use khaos_elector::timing::millis as ms;
use serde::Serialize;
use serde_json::Value;

use super::Context;
use crate::faults::Fault;
use crate::history::{CommitVerb, Entry, FaultAction, HarnessEvent, Phase, Record};

pub(crate) fn figure(name: &str, value: Value) -> (String, Value) {
    (name.to_owned(), value)
}

pub(crate) fn job_event(entry: &Entry) -> Option<&Event> {
    match &entry.record {
        Record::Job(event) => Some(event),
        Record::Harness(_) => None,
    }
}

pub(crate) fn harness_event(entry: &Entry) -> Option<&HarnessEvent> {
    match &entry.record {
        Record::Harness(event) => Some(event),
        Record::Job(_) => None,
    }
}

// The shared replay: commits with the state of their object before and after.

/// One committed write in the context's namespace.
pub(crate) struct Commit<'a> {
    pub(crate) index: usize,
    pub(crate) revision: u64,
    pub(crate) resource: &'a str,
    pub(crate) name: &'a str,
    pub(crate) client: &'a str,
    /// The object as written (its last state for a delete).
    pub(crate) object: &'a Value,
    /// The object after the commit; `None` after a delete.
    pub(crate) after: Option<&'a Value>,
    /// The object's previous committed state; `None` if it did not exist.
    pub(crate) before: Option<&'a Value>,
}

impl Commit<'_> {
    pub(crate) fn on(&self, resource: &str, name: &str) -> bool {
        self.resource == resource && self.name == name
    }

    pub(crate) fn is_delete(&self) -> bool {
        self.after.is_none()
    }
}

/// Replay the history's commits in the context's namespace, keyed by entry index, each with the
/// previous committed state of its object.
pub(crate) fn replay<'a>(history: &'a [Entry], ctx: &Context) -> BTreeMap<usize, Commit<'a>> {
    let mut current: BTreeMap<(&str, &str), &Value> = BTreeMap::new();
    let mut commits = BTreeMap::new();
    for (index, entry) in history.iter().enumerate() {
        let Record::Harness(HarnessEvent::Commit {
            revision,
            verb,
            resource,
            namespace,
            name,
            client,
            object,
        }) = &entry.record
        else {
            continue;
        };
        if *namespace != ctx.namespace {
            continue;
        }
        let key = (resource.as_str(), name.as_str());
        let before = current.get(&key).copied();
        let after = (*verb != CommitVerb::Delete).then_some(object);
        match after {
            Some(object) => current.insert(key, object),
            None => current.remove(&key),
        };
        commits.insert(
            index,
            Commit {
                index,
                revision: *revision,
                resource,
                name,
                client,
                object,
                after,
                before,
            },
        );
    }
    commits
}

/// A ConfigMap's data (empty when absent).
pub(crate) fn data(object: Option<&Value>) -> BTreeMap<&str, &str> {
    let Some(Value::Object(data)) = object.map(|o| &o["data"]) else {
        return BTreeMap::new();
    };
    data.iter()
        .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)))
        .collect()
}

pub(crate) fn annotation<'a>(object: Option<&'a Value>, key: &str) -> Option<&'a str> {
    object?["metadata"]["annotations"][key].as_str()
}

/// The seal on a map (`khaos.dev/fence`), if it has one that parses.
pub(crate) fn fence_of(object: &Value) -> Option<Fence> {
    serde_json::from_str(annotation(Some(object), FENCE_ANNOTATION)?).ok()
}

/// A ConfigMap's checkpoint pointers that are committed (present and not marked for deletion):
/// id to path.
pub(crate) fn committed_pointers(object: Option<&Value>) -> BTreeMap<u64, String> {
    data(object)
        .into_iter()
        .filter_map(|(key, value)| {
            let id = key.strip_prefix("checkpointID-")?.parse().ok()?;
            let pointer: Pointer = serde_json::from_str(value).ok()?;
            (!pointer.marked_for_deletion).then_some((id, pointer.path))
        })
        .collect()
}

/// One state of the leader lock.
pub(crate) struct LockState {
    pub(crate) index: usize,
    pub(crate) revision: u64,
    /// Empty when released.
    pub(crate) holder: String,
    pub(crate) transitions: u64,
}

/// The lock's states in revision order: for the ConfigMap lock, the cluster map's commits whose
/// leader annotation changed; for a Lease, every commit of it. Deletes are not states.
pub(crate) fn lock_states(commits: &BTreeMap<usize, Commit<'_>>, ctx: &Context) -> Vec<LockState> {
    let (resource, name) = ctx.lock_object();
    let mut states: Vec<LockState> = commits
        .values()
        .filter(|commit| commit.on(resource, &name))
        .filter_map(|commit| {
            let after = commit.after?;
            let (holder, transitions) = match ctx.lock {
                LockKind::ConfigMap => {
                    let record = annotation(Some(after), LEADER_ANNOTATION)?;
                    if Some(record) == annotation(commit.before, LEADER_ANNOTATION) {
                        return None;
                    }
                    let record: LeaderElectionRecord = serde_json::from_str(record).ok()?;
                    (record.holder_identity, u64::from(record.leader_transitions))
                }
                LockKind::Lease => {
                    let spec = &after["spec"];
                    let holder = spec["holderIdentity"].as_str().unwrap_or_default();
                    (
                        holder.to_owned(),
                        spec["leaseTransitions"].as_u64().unwrap_or(0),
                    )
                }
            };
            Some(LockState {
                index: commit.index,
                revision: commit.revision,
                holder,
                transitions,
            })
        })
        .collect();
    states.sort_by_key(|state| state.revision);
    states
}

/// The lock's state just before `revision`.
pub(crate) fn lock_before(locks: &[LockState], revision: u64) -> Option<&LockState> {
    locks.iter().take_while(|l| l.revision < revision).last()
}

/// A span of time during which one candidate believed it led.
pub(crate) struct Belief<'a> {
    pub(crate) node: &'a str,
    pub(crate) term: u64,
    /// The `granted` entry.
    pub(crate) index: usize,
    pub(crate) start_ms: u64,
    /// When it ended: revoked, crashed, stopped, or the history's last entry.
    pub(crate) end_ms: u64,
    /// Whether it was still held when the history ended.
    pub(crate) open: bool,
}

/// Every believed leadership, in the order of their grants.
pub(crate) fn beliefs(history: &[Entry]) -> Vec<Belief<'_>> {
    let mut open: BTreeMap<&str, (u64, usize, u64)> = BTreeMap::new();
    let mut beliefs = Vec::new();
    for (index, entry) in history.iter().enumerate() {
        let node = entry.node.as_str();
        let ends = match &entry.record {
            Record::Job(Event::Granted { term }) => {
                open.entry(node).or_insert((*term, index, entry.t_ms));
                false
            }
            Record::Job(Event::Revoked { .. })
            | Record::Harness(HarnessEvent::Crashed {} | HarnessEvent::Stopped { .. }) => true,
            _ => false,
        };
        if ends && let Some((term, index, start_ms)) = open.remove(node) {
            beliefs.push(Belief {
                node,
                term,
                index,
                start_ms,
                end_ms: entry.t_ms.max(start_ms),
                open: false,
            });
        }
    }
    let last_ms = history.last().map_or(0, |entry| entry.t_ms);
    for (node, (term, index, start_ms)) in open {
        beliefs.push(Belief {
            node,
            term,
            index,
            start_ms,
            end_ms: last_ms.max(start_ms),
            open: true,
        });
    }
    beliefs.sort_by_key(|belief| belief.index);
    beliefs
}

/// A span of time during which one candidate believed it led, as the `overlap` and `liveness`
/// checkers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Leadership {
    /// The candidate.
    pub node: String,
    /// The term it was granted.
    pub term: u64,
    /// The index of its `granted` entry.
    pub granted: usize,
    /// When it was granted.
    pub start_ms: u64,
    /// When it ended (revoked, crashed or stopped), or the history's last time if still held.
    pub end_ms: u64,
    /// Whether it was still held when the history ended.
    pub open: bool,
}

/// Every believed leadership in `history`, in the order of their grants: from a `granted` to
/// the same candidate's `revoked`, `crashed` or `stopped`, or to the end of the history.
pub fn leaderships(history: &[Entry]) -> Vec<Leadership> {
    beliefs(history)
        .into_iter()
        .map(|belief| Leadership {
            node: belief.node.to_owned(),
            term: belief.term,
            granted: belief.index,
            start_ms: belief.start_ms,
            end_ms: belief.end_ms,
            open: belief.open,
        })
        .collect()
}

/// A change of the leader lock's holder or term, as its commits show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockChange {
    /// The index of the commit in the history.
    pub index: usize,
    /// When it was recorded.
    pub t_ms: u64,
    /// The revision it committed at.
    pub revision: u64,
    /// The holder after it: `holderIdentity` of the lock record or Lease; empty when released.
    pub holder: String,
    /// The lock's transitions after it (the term).
    pub term: u64,
}

/// The lock's holder changes in `history`, in revision order (renewals, which keep holder and
/// term, are left out): the ConfigMap lock's leader annotation or the Lease's spec, as the
/// `fenced-writes` and `terms` checkers read them.
pub fn lock_changes(history: &[Entry], ctx: &Context) -> Vec<LockChange> {
    let commits = replay(history, ctx);
    let mut changes: Vec<LockChange> = Vec::new();
    for state in lock_states(&commits, ctx) {
        let same = changes
            .last()
            .is_some_and(|last| last.holder == state.holder && last.term == state.transitions);
        if !same {
            changes.push(LockChange {
                index: state.index,
                t_ms: history[state.index].t_ms,
                revision: state.revision,
                holder: state.holder,
                term: state.transitions,
            });
        }
    }
    changes
}

/// The first `finished` or `already_done` event: its index, time and term.
pub(crate) fn terminal_event(history: &[Entry]) -> Option<(usize, u64, u64)> {
    history
        .iter()
        .enumerate()
        .find_map(|(index, entry)| match job_event(entry)? {
            Event::Finished { term, .. } | Event::AlreadyDone { term, .. } => {
                Some((index, entry.t_ms, *term))
            }
            _ => None,
        })
}

/// The first `phase` entry named `phase` at or after `from`.
pub(crate) fn phase(history: &[Entry], phase: Phase, from: usize) -> Option<usize> {
    (from..history.len()).find(|&index| {
        matches!(harness_event(&history[index]), Some(HarnessEvent::Phase { phase: p }) if *p == phase)
    })
}

/// The committed checkpoint pointers of the job map, replayed commit by commit.
#[derive(Default)]
pub(crate) struct Checkpoints {
    /// Committed and not marked: id to (path, revision and entry of the commit that committed it).
    pub(crate) live: BTreeMap<u64, (String, u64, usize)>,
    /// The highest id ever committed.
    pub(crate) highest: Option<u64>,
}

/// A committed pointer that a commit marked for deletion or removed.
pub(crate) struct Removal {
    pub(crate) id: u64,
    /// The revision and entry that committed it.
    pub(crate) committed: (u64, usize),
    /// Whether the commit only marked it (else it removed the key or deleted the map).
    pub(crate) marked: bool,
    /// Whether a higher id had been committed by then (at the latest by the same commit).
    pub(crate) subsumed: bool,
}

impl Checkpoints {
    /// Apply a commit on the job map; return the committed pointers it took away.
    pub(crate) fn apply(&mut self, commit: &Commit<'_>) -> Vec<Removal> {
        let now = committed_pointers(commit.after);
        for (id, path) in &now {
            if !self.live.contains_key(id) {
                let committed = (path.clone(), commit.revision, commit.index);
                self.live.insert(*id, committed);
                self.highest = self.highest.max(Some(*id));
            }
        }
        let gone: Vec<u64> = (self.live.keys())
            .filter(|id| !now.contains_key(id))
            .copied()
            .collect();
        let marked_now: BTreeSet<u64> = data(commit.after)
            .keys()
            .filter_map(|key| key.strip_prefix("checkpointID-")?.parse().ok())
            .collect();
        gone.into_iter()
            .map(|id| {
                let (_, revision, index) = self.live.remove(&id).expect("listed above");
                Removal {
                    id,
                    committed: (revision, index),
                    marked: marked_now.contains(&id),
                    subsumed: self.highest.is_some_and(|highest| highest > id),
                }
            })
            .collect()
    }

    pub(crate) fn ids(&self) -> BTreeSet<u64> {
        self.live.keys().copied().collect()
    }
}

/// A removal of an unsubsumed checkpoint, in words.
pub(crate) fn removal_message(commit: &Commit<'_>, removal: &Removal) -> String {
    let how = if commit.is_delete() {
        "deleted with the whole job map"
    } else if removal.marked {
        "marked for deletion"
    } else {
        "removed"
    };
    format!(
        "revision {}: checkpoint {} (committed at revision {}) was {how} by {} while no higher \
         checkpoint was committed: the latest completed state was dropped",
        commit.revision, removal.id, removal.committed.0, commit.client
    )
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    #[test]
    fn leaderships_and_lock_changes_are_what_the_checkers_judge() {
        let mut b = correct_run();
        b.lock(2300, B, B, 1);
        b.end(5000);
        let changes = lock_changes(&b.entries, &context(LockKind::ConfigMap));
        let holders: Vec<(&str, u64, u64)> = changes
            .iter()
            .map(|c| (c.holder.as_str(), c.term, c.t_ms))
            .collect();
        // The renewals at 200 ms and 2300 ms keep holder and term: no change.
        assert_eq!(holders, [(A, 0, 10), (B, 1, 1900)]);
        let leaderships = leaderships(&b.entries);
        let spans: Vec<(&str, u64, u64, u64, bool)> = leaderships
            .iter()
            .map(|l| (l.node.as_str(), l.term, l.start_ms, l.end_ms, l.open))
            .collect();
        assert_eq!(spans, [(A, 0, 11, 300, false), (B, 1, 1901, 5000, true)]);
    }
}

/// A fault from its start to its end, as the history records them.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpan<'a> {
    /// The fault, with roles resolved to the hosts they named.
    pub fault: &'a Fault,
    /// When it started.
    pub start_ms: u64,
    /// When it ended; `None` if the history ends before it does.
    pub end_ms: Option<u64>,
}

/// Every fault the history records, from its start to its end (matched by id), in the order
/// they started.
pub fn fault_spans(history: &[Entry]) -> Vec<FaultSpan<'_>> {
    let mut spans: Vec<FaultSpan<'_>> = Vec::new();
    let mut open: BTreeMap<usize, usize> = BTreeMap::new();
    for entry in history {
        let Some(HarnessEvent::Fault { action, id, fault }) = harness_event(entry) else {
            continue;
        };
        match action {
            FaultAction::Start => {
                open.insert(*id, spans.len());
                spans.push(FaultSpan {
                    fault,
                    start_ms: entry.t_ms,
                    end_ms: None,
                });
            }
            FaultAction::End => {
                if let Some(span) = open.remove(id) {
                    spans[span].end_ms = Some(entry.t_ms);
                }
            }
        }
    }
    spans
}

/// A checkpoint id, or `none`, as messages and timelines show it.
pub(crate) fn show_checkpoint(checkpoint: Option<u64>) -> String {
    checkpoint.map_or_else(|| "none".to_owned(), |id| id.to_string())
}
