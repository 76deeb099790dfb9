//! The checkers that judge a history: pure functions over its [`Entry`]s, one per invariant of
//! `spec/invariants.md`, each returning a [`Verdict`] that names the entries that break it.
//!
//! ```
//! use std::time::Duration;
//! use khaos_elector::{LockKind, Timing};
//! use khaos_world::checkers::{Context, check};
//! use khaos_world::history::parse;
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

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use khaos_elector::jobmaster::Event;
use khaos_elector::decision::{LEADER_ANNOTATION, LeaderElectionRecord};
use khaos_elector::store::{FENCE_ANNOTATION, Fence, Pointer, cluster_lock_name, cluster_map_name};
use khaos_elector::timing::JITTER_FACTOR;
use khaos_elector::{LockKind, Timing};
use serde::Serialize;
use serde_json::{Value, json};

use crate::history::{Entry, FaultAction, Record, WorldEvent};

/// Added to the liveness checker's election bound: the time a new leader needs between its lock
/// commit and its `granted` event (its clock tick and the event's delivery), and millisecond
/// rounding of the timing settings.
const ELECTION_SLACK_MS: u64 = 100;

/// Prefixes of the data keys only a leader may change (the `counter` key is the other one).
const LEADER_ONLY_PREFIXES: [&str; 4] = [
    "checkpointID-",
    "jobGraph-",
    "runningJobsRegistry-",
    "org.apache.flink.k8s.leader.",
];

/// What the checkers need to know about a run besides its history.
#[derive(Clone, Debug)]
pub struct Context {
    /// The namespace of the HA ConfigMaps and the lock.
    pub namespace: String,
    /// The cluster: its map is `{cluster_id}-cluster-config-map`.
    pub cluster_id: String,
    /// The job: its map is `{cluster_id}-{job_id}-config-map`.
    pub job_id: String,
    /// The lock kind: the annotation on the cluster map, or the Lease named by
    /// [`cluster_lock_name`].
    pub lock: LockKind,
    /// The election timing the candidates ran with.
    pub timing: Timing,
    /// The job master's time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Whether the run injected a fault that breaks the timing assumptions (a pause, clock drift
    /// beyond its bound, unchecked timing): overlap is then a figure, not a violation.
    pub overlap_allowed: bool,
    /// The network's delay bound.
    pub network_delay_max: Duration,
    /// The bound on how late a watch event may arrive.
    pub watch_delay_max: Duration,
}

impl Context {
    fn cluster_map(&self) -> String {
        cluster_map_name(&self.cluster_id)
    }

    fn job_map(&self) -> String {
        format!("{}-{}-config-map", self.cluster_id, self.job_id)
    }

    /// The lock object: its resource and its name.
    fn lock_object(&self) -> (&'static str, String) {
        let name = cluster_lock_name(&self.cluster_id, self.lock);
        match self.lock {
            LockKind::ConfigMap => ("configmaps", name),
            LockKind::Lease => ("leases", name),
        }
    }
}

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
    fn new(message: String, mut entries: Vec<usize>) -> Violation {
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
    let commits = replay(history, ctx);
    let locks = lock_states(&commits, ctx);
    let beliefs = beliefs(history);
    vec![
        fenced_writes(&commits, &locks, ctx),
        terms(history, &locks),
        overlap(&beliefs, ctx),
        durability(history, &commits, ctx),
        counter(history, &commits, ctx),
        progress(history),
        cleanup(history, &commits, ctx),
        liveness(history, &beliefs, ctx),
    ]
}

fn figure(name: &str, value: Value) -> (String, Value) {
    (name.to_owned(), value)
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn job_event(entry: &Entry) -> Option<&Event> {
    match &entry.record {
        Record::Job(event) => Some(event),
        Record::World(_) => None,
    }
}

fn world_event(entry: &Entry) -> Option<&WorldEvent> {
    match &entry.record {
        Record::World(event) => Some(event),
        Record::Job(_) => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The shared replay: commits with the state of their object before and after.

/// One committed write in the context's namespace.
struct Commit<'a> {
    index: usize,
    revision: u64,
    resource: &'a str,
    name: &'a str,
    client: &'a str,
    /// The object as written (its last state for a delete).
    object: &'a Value,
    /// The object after the commit; `None` after a delete.
    after: Option<&'a Value>,
    /// The object's previous committed state; `None` if it did not exist.
    before: Option<&'a Value>,
}

impl Commit<'_> {
    fn on(&self, resource: &str, name: &str) -> bool {
        self.resource == resource && self.name == name
    }

    fn is_delete(&self) -> bool {
        self.after.is_none()
    }
}

/// Replay the history's commits in the context's namespace, keyed by entry index, each with the
/// previous committed state of its object.
fn replay<'a>(history: &'a [Entry], ctx: &Context) -> BTreeMap<usize, Commit<'a>> {
    let mut current: BTreeMap<(&str, &str), &Value> = BTreeMap::new();
    let mut commits = BTreeMap::new();
    for (index, entry) in history.iter().enumerate() {
        let Record::World(WorldEvent::Commit {
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
        let after = (verb != "delete").then_some(object);
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
fn data(object: Option<&Value>) -> BTreeMap<&str, &str> {
    let Some(Value::Object(data)) = object.map(|o| &o["data"]) else {
        return BTreeMap::new();
    };
    data.iter()
        .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)))
        .collect()
}

fn annotation<'a>(object: Option<&'a Value>, key: &str) -> Option<&'a str> {
    object?["metadata"]["annotations"][key].as_str()
}

/// The seal on a map (`khaos.dev/fence`), if it has one that parses.
fn fence_of(object: &Value) -> Option<Fence> {
    serde_json::from_str(annotation(Some(object), FENCE_ANNOTATION)?).ok()
}

/// A ConfigMap's checkpoint pointers that are committed (present and not marked for deletion):
/// id to path.
fn committed_pointers(object: Option<&Value>) -> BTreeMap<u64, String> {
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
struct LockState {
    index: usize,
    revision: u64,
    /// Empty when released.
    holder: String,
    transitions: u64,
}

/// The lock's states in revision order: for the ConfigMap lock, the cluster map's commits whose
/// leader annotation changed; for a Lease, every commit of it. Deletes are not states.
fn lock_states(commits: &BTreeMap<usize, Commit<'_>>, ctx: &Context) -> Vec<LockState> {
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
fn lock_before(locks: &[LockState], revision: u64) -> Option<&LockState> {
    locks.iter().take_while(|l| l.revision < revision).last()
}

/// A span of time during which one candidate believed it led.
struct Belief<'a> {
    node: &'a str,
    term: u64,
    /// The `granted` entry.
    index: usize,
    start_ms: u64,
    /// When it ended: revoked, crashed, stopped, or the history's last entry.
    end_ms: u64,
    /// Whether it was still held when the history ended.
    open: bool,
}

/// Every believed leadership, in the order of their grants.
fn beliefs(history: &[Entry]) -> Vec<Belief<'_>> {
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
            | Record::World(WorldEvent::Crashed {} | WorldEvent::Stopped { .. }) => true,
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
fn terminal_event(history: &[Entry]) -> Option<(usize, u64, u64)> {
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
fn phase(history: &[Entry], phase: &str, from: usize) -> Option<usize> {
    (from..history.len()).find(|&index| {
        matches!(world_event(&history[index]), Some(WorldEvent::Phase { phase: p }) if p == phase)
    })
}

/// The committed checkpoint pointers of the job map, replayed commit by commit.
#[derive(Default)]
struct Checkpoints {
    /// Committed and not marked: id to (path, revision and entry of the commit that committed it).
    live: BTreeMap<u64, (String, u64, usize)>,
    /// The highest id ever committed.
    highest: Option<u64>,
}

/// A committed pointer that a commit marked for deletion or removed.
struct Removal {
    id: u64,
    /// The revision and entry that committed it.
    committed: (u64, usize),
    /// Whether the commit only marked it (else it removed the key or deleted the map).
    marked: bool,
    /// Whether a higher id had been committed by then (at the latest by the same commit).
    subsumed: bool,
}

impl Checkpoints {
    /// Apply a commit on the job map; return the committed pointers it took away.
    fn apply(&mut self, commit: &Commit<'_>) -> Vec<Removal> {
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

    fn ids(&self) -> BTreeSet<u64> {
        self.live.keys().copied().collect()
    }
}

/// A removal of an unsubsumed checkpoint, in words.
fn removal_message(commit: &Commit<'_>, removal: &Removal) -> String {
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

// ---------------------------------------------------------------------------------------------
// fenced-writes

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
    /// A newer term had taken the lock but not sealed the map yet.
    InTakeoverWindow,
}

fn fenced_writes(
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

// ---------------------------------------------------------------------------------------------
// terms

fn terms(history: &[Entry], locks: &[LockState]) -> Verdict {
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

// ---------------------------------------------------------------------------------------------
// overlap

fn overlap(beliefs: &[Belief<'_>], ctx: &Context) -> Verdict {
    // Sweep over the starts and ends; at the same instant, ends go first.
    let mut points: Vec<(u64, i64)> = beliefs
        .iter()
        .flat_map(|b| [(b.start_ms, 1), (b.end_ms, -1)])
        .collect();
    points.sort_unstable();
    let (mut overlap_ms, mut believers, mut max_believers, mut last_ms) = (0, 0_i64, 0_i64, 0);
    for (t_ms, delta) in points {
        if believers >= 2 {
            overlap_ms += t_ms - last_ms;
        }
        believers += delta;
        max_believers = max_believers.max(believers);
        last_ms = t_ms;
    }
    let mut violations = Vec::new();
    if overlap_ms > 0 && !ctx.overlap_allowed {
        for (position, first) in beliefs.iter().enumerate() {
            for second in &beliefs[position + 1..] {
                let from = first.start_ms.max(second.start_ms);
                let to = first.end_ms.min(second.end_ms);
                if to > from && first.node != second.node {
                    violations.push(Violation::new(
                        format!(
                            "{} (granted term {}) and {} (granted term {}) both believed they \
                             led for {} ms, from t={from} ms to t={to} ms",
                            first.node,
                            first.term,
                            second.node,
                            second.term,
                            to - from
                        ),
                        vec![first.index, second.index],
                    ));
                }
            }
        }
    }
    Verdict {
        checker: "overlap",
        kind: Kind::Safety,
        violations,
        figures: vec![
            figure("overlap_ms", json!(overlap_ms)),
            figure("max_believers", json!(max_believers)),
            figure("overlap_allowed", json!(ctx.overlap_allowed)),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// durability

fn durability(history: &[Entry], commits: &BTreeMap<usize, Commit<'_>>, ctx: &Context) -> Verdict {
    let job_map = ctx.job_map();
    let terminal = terminal_event(history).is_some();
    let mut checkpoints = Checkpoints::default();
    // Per node, the committed ids at every point since its last grant or failover: what its
    // recovery's read could have seen.
    let mut readable: BTreeMap<&str, Vec<BTreeSet<u64>>> = BTreeMap::new();
    let mut blobs = None;
    let mut violations = Vec::new();
    for (index, entry) in history.iter().enumerate() {
        if let Some(commit) = commits.get(&index) {
            if !commit.on("configmaps", &job_map) {
                continue;
            }
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
            Record::World(WorldEvent::Blobs { paths }) => blobs = Some((index, paths)),
            _ => {}
        }
    }
    if let Some((blobs_index, paths)) = blobs {
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

fn show_checkpoint(checkpoint: Option<u64>) -> String {
    checkpoint.map_or_else(|| "none".to_owned(), |id| id.to_string())
}

// ---------------------------------------------------------------------------------------------
// counter

fn counter(history: &[Entry], commits: &BTreeMap<usize, Commit<'_>>, ctx: &Context) -> Verdict {
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

// ---------------------------------------------------------------------------------------------
// progress

fn progress(history: &[Entry]) -> Verdict {
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

// ---------------------------------------------------------------------------------------------
// cleanup

fn cleanup(history: &[Entry], commits: &BTreeMap<usize, Commit<'_>>, ctx: &Context) -> Verdict {
    let job_map = ctx.job_map();
    let mut violations = Vec::new();
    match terminal_event(history) {
        Some(terminal) => {
            never_restarted(history, terminal, &mut violations);
            let deadline_ms = ms(ctx.timing.lease_duration() + ctx.timing.retry_period() * 2);
            let (terminal_index, terminal_ms, _) = terminal;
            if let Some(end) = phase(history, "end", terminal_index)
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

// ---------------------------------------------------------------------------------------------
// liveness

/// The bound on electing a leader after healing: one lease, two jittered retry periods, the
/// network's delay bound and [`ELECTION_SLACK_MS`].
fn election_bound_ms(ctx: &Context) -> u64 {
    let timing = &ctx.timing;
    ms(timing.lease_duration())
        + ms(timing.retry_period().mul_f64(2.0 * (1.0 + JITTER_FACTOR)))
        + ms(ctx.network_delay_max)
        + ELECTION_SLACK_MS
}

fn liveness(history: &[Entry], beliefs: &[Belief<'_>], ctx: &Context) -> Verdict {
    let bound_ms = election_bound_ms(ctx);
    let mut verdict = Verdict {
        checker: "liveness",
        kind: Kind::Liveness,
        violations: Vec::new(),
        figures: vec![figure("election_bound_ms", json!(bound_ms))],
    };
    needless_losses(history, ctx, &mut verdict);
    let Some(healed) = phase(history, "healed", 0) else {
        verdict.figures.push(figure("judged", json!(false)));
        return verdict;
    };
    let Some(end) = phase(history, "end", healed) else {
        verdict.figures.push(figure("judged", json!(false)));
        return verdict;
    };
    let (healed_ms, end_ms) = (history[healed].t_ms, history[end].t_ms);
    let elected_ms = beliefs
        .iter()
        .filter(|b| b.end_ms >= healed_ms)
        .map(|b| b.start_ms.max(healed_ms) - healed_ms)
        .min();
    let first_checkpoint_ms = history[healed..]
        .iter()
        .find(|e| matches!(job_event(e), Some(Event::Checkpoint { .. })))
        .map(|e| e.t_ms.saturating_sub(healed_ms));
    let judged = end_ms.saturating_sub(healed_ms) >= bound_ms;
    verdict.figures.extend([
        figure("judged", json!(judged)),
        figure("elected_after_heal_ms", json!(elected_ms)),
        figure("first_checkpoint_after_heal_ms", json!(first_checkpoint_ms)),
    ]);
    if !judged {
        return verdict;
    }
    let violations = &mut verdict.violations;
    if elected_ms.is_none_or(|elected| elected > bound_ms) {
        violations.push(Violation::new(
            format!(
                "every fault was repaired at t={healed_ms} ms but no candidate believed it led \
                 within {bound_ms} ms (until t={} ms)",
                healed_ms + bound_ms
            ),
            vec![healed],
        ));
    }
    let checkpoint_bound_ms = bound_ms + 2 * ms(ctx.checkpoint_interval);
    let fits = healed_ms + checkpoint_bound_ms <= end_ms;
    let late = first_checkpoint_ms.is_none_or(|first| first > checkpoint_bound_ms);
    if terminal_event(history).is_none() && fits && late {
        violations.push(Violation::new(
            format!(
                "every fault was repaired at t={healed_ms} ms but no checkpoint completed within \
                 {checkpoint_bound_ms} ms (until t={} ms)",
                healed_ms + checkpoint_bound_ms
            ),
            vec![healed],
        ));
    }
    watchers_caught_up(history, end, ctx, violations);
    verdict
}

/// What a fault, by its description, can do to the renewals of `leader`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// Nothing: blob store faults, wall-clock offsets (expiry uses the monotonic clock),
    /// compactions, and faults aimed at other nodes' processes or links.
    None,
    /// Quick failures a renewal survives by trying again within the deadline: connection resets,
    /// and API server errors for less than a retry period (one failed attempt at most).
    OneFailure,
    /// Anything else: it may cost the lease.
    MayCostTheLease,
}

fn effect(fault: &str, duration_ms: u64, leader: &str, ctx: &Context) -> Effect {
    if fault.starts_with("blob store faults ")
        || fault.starts_with("wall clock offset ")
        || fault == "apiserver compaction"
    {
        return Effect::None;
    }
    // Links and processes matter to the node they touch. (A pause counts wherever it strikes:
    // it breaks the timing assumptions.)
    if ["partition ", "clog ", "crash ", "graceful stop "]
        .iter()
        .any(|kind| fault.starts_with(kind))
    {
        return if fault.split(' ').any(|word| word == leader) {
            Effect::MayCostTheLease
        } else {
            Effect::None
        };
    }
    // A renewal that fails at once is tried again a retry period later, which only fits the
    // deadline when the deadline leaves room for two more attempts.
    let timing = &ctx.timing;
    let room = timing.renew_deadline() >= timing.retry_period() * 2 + ctx.network_delay_max * 2;
    if let Some(node) = fault.strip_prefix("connections reset ") {
        return match (node == leader, room) {
            (false, _) => Effect::None,
            (true, true) => Effect::OneFailure,
            (true, false) => Effect::MayCostTheLease,
        };
    }
    let Some(json) = fault.strip_prefix("apiserver faults ") else {
        return Effect::MayCostTheLease;
    };
    let Ok(faults) = serde_json::from_str::<khaos_sim::apiserver::Faults>(json) else {
        return Effect::MayCostTheLease;
    };
    let errors_only = khaos_sim::apiserver::Faults {
        errors: faults.errors.clone(),
        ..khaos_sim::apiserver::Faults::default()
    } == faults;
    let brief = duration_ms + ms(ctx.network_delay_max) < ms(timing.retry_period());
    if errors_only && brief && room {
        Effect::OneFailure
    } else {
        Effect::MayCostTheLease
    }
}

/// A needless leader loss: a leader stepped down (not stopping) although, within the lease, the
/// renew deadline and two retry periods before, no fault that could cost it the lease was active,
/// and at most one that could fail one of its renewals (fabric8 #4246, kubert #134: one failed
/// renewal must not end leadership).
fn needless_losses(history: &[Entry], ctx: &Context, verdict: &mut Verdict) {
    let last_ms = history.last().map_or(0, |e| e.t_ms);
    // Every fault's description, start and end.
    let mut open: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut faults: Vec<(&str, u64, u64)> = Vec::new();
    for entry in history {
        if let Some(WorldEvent::Fault { action, fault }) = world_event(entry) {
            match action {
                FaultAction::Start => open.entry(fault).or_default().push(entry.t_ms),
                FaultAction::End => {
                    if let Some(start) = open.get_mut(fault.as_str()).and_then(Vec::pop) {
                        faults.push((fault, start, entry.t_ms));
                    }
                }
            }
        }
    }
    for (fault, starts) in open {
        faults.extend(starts.into_iter().map(|start| (fault, start, last_ms)));
    }
    let window_ms = ms(ctx.timing.lease_duration()
        + ctx.timing.renew_deadline()
        + ctx.timing.retry_period() * 2);
    let mut stopping: BTreeSet<&str> = BTreeSet::new();
    let mut losses = 0;
    for (index, entry) in history.iter().enumerate() {
        match &entry.record {
            Record::World(WorldEvent::Stopping {}) => {
                stopping.insert(&entry.node);
            }
            Record::World(WorldEvent::Started {}) => {
                stopping.remove(entry.node.as_str());
            }
            Record::Job(Event::Revoked { term }) if !stopping.contains(entry.node.as_str()) => {
                let from_ms = entry.t_ms.saturating_sub(window_ms);
                let effects: Vec<Effect> = faults
                    .iter()
                    .filter(|(_, start, end)| *start <= entry.t_ms && *end >= from_ms)
                    .map(|(fault, start, end)| effect(fault, end - start, &entry.node, ctx))
                    .collect();
                let may_cost = effects.contains(&Effect::MayCostTheLease);
                let failures = effects.iter().filter(|e| **e == Effect::OneFailure).count();
                if !may_cost && failures <= 1 {
                    losses += 1;
                    verdict.violations.push(Violation::new(
                        format!(
                            "{} lost leadership (term {term}) at t={} ms although since t={from_ms} \
                             ms no fault could cost it the lease and at most one could fail one \
                             renewal: a leader must survive a failed request by renewing again \
                             within the renew deadline",
                            entry.node, entry.t_ms
                        ),
                        vec![index],
                    ));
                }
            }
            _ => {}
        }
    }
    verdict
        .figures
        .push(figure("needless_losses", json!(losses)));
}

/// Every node that follows the leader information has, by the end, seen the last published
/// value, if that was published long enough before the end. "Last" is the publication with the
/// highest term: a deposed leader's `published` event can be reported late, but its write was
/// ordered before the newer term's by fencing.
fn watchers_caught_up(
    history: &[Entry],
    end: usize,
    ctx: &Context,
    violations: &mut Vec<Violation>,
) {
    let end_ms = history[end].t_ms;
    let published = history
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| match job_event(entry)? {
            Event::Published { term, leader } => Some((*term, index, leader)),
            _ => None,
        })
        .max_by_key(|(term, index, _)| (*term, *index));
    let Some((term, published_index, leader)) = published else {
        return;
    };
    let published_ms = history[published_index].t_ms;
    if end_ms.saturating_sub(published_ms) < ms(ctx.watch_delay_max + ctx.network_delay_max) {
        return;
    }
    let mut last_seen: BTreeMap<&str, (usize, Option<&String>)> = BTreeMap::new();
    for (index, entry) in history.iter().enumerate() {
        if entry.t_ms > end_ms {
            continue;
        }
        if let Some(WorldEvent::Leader { leader }) = world_event(entry) {
            last_seen.insert(&entry.node, (index, leader.as_ref()));
        }
    }
    for (node, (index, seen)) in last_seen {
        if seen != Some(leader) {
            violations.push(Violation::new(
                format!(
                    "{node} last saw the leader as {} but {leader:?} was published at \
                     t={published_ms} ms (term {term}) and the run ended at t={end_ms} ms: \
                     watchers must learn the new leader within the watch delay bound",
                    seen.map_or_else(|| "none".to_owned(), |s| format!("{s:?}"))
                ),
                vec![published_index, index],
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use khaos_elector::store::{TerminalState, checkpoint_key};

    const NAMESPACE: &str = "default";
    const CLUSTER_MAP: &str = "demo-cluster-config-map";
    const JOB_MAP: &str = "demo-job-config-map";
    const LEASE: &str = "demo-cluster-leader";
    const DISPATCHER: &str = "org.apache.flink.k8s.leader.dispatcher";
    const A: &str = "node-a";
    const B: &str = "node-b";
    const C: &str = "node-c";

    /// The violations' messages, in order.
    fn messages(verdict: &Verdict) -> Vec<&str> {
        verdict
            .violations
            .iter()
            .map(|v| v.message.as_str())
            .collect()
    }

    /// Lease 1500 ms, renew deadline 1000 ms, retry 200 ms, network 50 ms: the election bound is
    /// 1500 + 2 x 200 x 2.2 + 50 + 100 = 2530 ms.
    fn context(lock: LockKind) -> Context {
        Context {
            namespace: NAMESPACE.into(),
            cluster_id: "demo".into(),
            job_id: "job".into(),
            lock,
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

    fn path(id: u64) -> String {
        format!("demo/job/checkpoint-{id:019}")
    }

    fn pointer(id: u64, marked: bool) -> String {
        json!({"path": path(id), "markedForDeletion": marked}).to_string()
    }

    /// A history under construction: every helper appends and returns the entry's index.
    #[derive(Default)]
    struct Builder {
        entries: Vec<Entry>,
        revision: u64,
        objects: BTreeMap<(String, String), Value>,
    }

    impl Builder {
        fn push(&mut self, entry: Entry) -> usize {
            self.entries.push(entry);
            self.entries.len() - 1
        }

        fn event(&mut self, t_ms: u64, node: &str, event: Event) -> usize {
            self.push(Entry::job(t_ms, node, event))
        }

        fn world(&mut self, t_ms: u64, node: &str, event: WorldEvent) -> usize {
            self.push(Entry::world(t_ms, node, event))
        }

        fn phase(&mut self, t_ms: u64, phase: &str) -> usize {
            let phase = phase.to_owned();
            self.world(t_ms, "world", WorldEvent::Phase { phase })
        }

        fn granted(&mut self, t_ms: u64, node: &str, term: u64) -> usize {
            self.event(t_ms, node, Event::Granted { term })
        }

        fn commit(
            &mut self,
            t_ms: u64,
            client: &str,
            verb: &str,
            key: (&str, &str),
            object: Value,
        ) -> usize {
            self.revision += 1;
            self.world(
                t_ms,
                "apiserver",
                WorldEvent::Commit {
                    revision: self.revision,
                    verb: verb.into(),
                    resource: key.0.into(),
                    namespace: NAMESPACE.into(),
                    name: key.1.into(),
                    client: client.into(),
                    object,
                },
            )
        }

        /// Commit `resource`/`name` as `client` after `edit` changed its current state.
        fn write(
            &mut self,
            t_ms: u64,
            client: &str,
            (resource, name): (&str, &str),
            edit: impl FnOnce(&mut Value),
        ) -> usize {
            let key = (resource.to_owned(), name.to_owned());
            let current = self.objects.get(&key).cloned();
            let verb = if current.is_some() {
                "update"
            } else {
                "create"
            };
            let mut object = current.unwrap_or_else(|| json!({"metadata": {"name": name}}));
            edit(&mut object);
            self.objects.insert(key, object.clone());
            self.commit(t_ms, client, verb, (resource, name), object)
        }

        fn delete(&mut self, t_ms: u64, client: &str, (resource, name): (&str, &str)) -> usize {
            let key = (resource.to_owned(), name.to_owned());
            let object = self
                .objects
                .remove(&key)
                .expect("deletes an existing object");
            self.commit(t_ms, client, "delete", (resource, name), object)
        }

        /// The ConfigMap lock: the leader annotation on the cluster map.
        fn lock(&mut self, t_ms: u64, client: &str, holder: &str, transitions: u32) -> usize {
            let record = LeaderElectionRecord {
                holder_identity: holder.into(),
                lease_duration_seconds: 2,
                acquire_time: None,
                renew_time: Some(format!("t{t_ms}")),
                leader_transitions: transitions,
            };
            let record = serde_json::to_string(&record).unwrap();
            self.write(t_ms, client, ("configmaps", CLUSTER_MAP), |object| {
                object["metadata"]["annotations"][LEADER_ANNOTATION] = json!(record);
            })
        }

        /// The Lease lock.
        fn lease(&mut self, t_ms: u64, client: &str, holder: &str, transitions: u64) -> usize {
            self.write(t_ms, client, ("leases", LEASE), |object| {
                object["spec"] = json!({
                    "holderIdentity": holder,
                    "leaseTransitions": transitions,
                    "renewTime": format!("t{t_ms}"),
                });
            })
        }

        fn seal(&mut self, t_ms: u64, client: &str, map: &str, term: u64) -> usize {
            let fence = json!({"term": term, "holder": client}).to_string();
            self.write(t_ms, client, ("configmaps", map), |object| {
                object["metadata"]["annotations"][FENCE_ANNOTATION] = json!(fence);
            })
        }

        fn set(&mut self, t_ms: u64, client: &str, map: &str, key: &str, value: &str) -> usize {
            self.write(t_ms, client, ("configmaps", map), |object| {
                object["data"][key] = json!(value);
            })
        }

        fn unset(&mut self, t_ms: u64, client: &str, map: &str, key: &str) -> usize {
            self.write(t_ms, client, ("configmaps", map), |object| {
                object["data"].as_object_mut().unwrap().remove(key);
            })
        }

        /// Take leadership as the job master does: grant, seals, leader information, job graph,
        /// registry, restore from nothing. Returns the `granted` entry.
        fn first_leader(&mut self, t_ms: u64, node: &str, term: u32) -> usize {
            self.lock(t_ms, node, node, term);
            let term = u64::from(term);
            let granted = self.granted(t_ms + 1, node, term);
            self.publish(t_ms + 2, node, term);
            self.seal(t_ms + 5, node, JOB_MAP, term);
            let graph = json!({"path": "demo/job/job-graph", "markedForDeletion": false});
            self.set(t_ms + 6, node, JOB_MAP, "jobGraph-job", &graph.to_string());
            let job = "job".to_owned();
            self.event(t_ms + 7, node, Event::Submitted { term, job });
            self.set(
                t_ms + 8,
                node,
                JOB_MAP,
                "runningJobsRegistry-job",
                "RUNNING",
            );
            self.restored(t_ms + 9, node, term, None, 0);
            granted
        }

        /// Seal the cluster map and publish the leader information. Returns `published`.
        fn publish(&mut self, t_ms: u64, node: &str, term: u64) -> usize {
            let leader = format!("term-{term},");
            self.seal(t_ms, node, CLUSTER_MAP, term);
            self.set(t_ms + 1, node, CLUSTER_MAP, DISPATCHER, &leader);
            self.event(t_ms + 2, node, Event::Published { term, leader })
        }

        fn restored(
            &mut self,
            t_ms: u64,
            node: &str,
            term: u64,
            checkpoint: Option<u64>,
            records: u64,
        ) -> usize {
            self.event(
                t_ms,
                node,
                Event::Restored {
                    term,
                    checkpoint,
                    records,
                    dangling: vec![],
                    removals_finished: 0,
                },
            )
        }

        /// Complete checkpoint `id`: counter, pointer, event. Returns their entries.
        fn checkpoint(
            &mut self,
            t_ms: u64,
            node: &str,
            term: u64,
            id: u64,
            records: u64,
        ) -> [usize; 3] {
            let counter = self.set(t_ms, node, JOB_MAP, "counter", &(id + 1).to_string());
            let pointer = self.set(
                t_ms + 1,
                node,
                JOB_MAP,
                &checkpoint_key(id),
                &pointer(id, false),
            );
            let event = self.event(t_ms + 2, node, Event::Checkpoint { term, id, records });
            [counter, pointer, event]
        }

        /// Remove checkpoint `id` in two phases. Returns the mark and the removal.
        fn subsume(&mut self, t_ms: u64, node: &str, id: u64) -> [usize; 2] {
            let mark = self.set(t_ms, node, JOB_MAP, &checkpoint_key(id), &pointer(id, true));
            let remove = self.unset(t_ms + 1, node, JOB_MAP, &checkpoint_key(id));
            [mark, remove]
        }

        /// The end of the run, with the blob store holding every pointer's blob.
        fn end(&mut self, t_ms: u64) -> usize {
            let end = self.phase(t_ms, "end");
            let map = self
                .objects
                .get(&("configmaps".to_owned(), JOB_MAP.to_owned()));
            let paths = data(map)
                .values()
                .filter_map(|value| Some(serde_json::from_str::<Pointer>(value).ok()?.path))
                .collect();
            self.world(t_ms, "world", WorldEvent::Blobs { paths });
            end
        }
    }

    fn judge(history: &[Entry], ctx: &Context, checker: &str) -> Verdict {
        let verdict = check(history, ctx)
            .into_iter()
            .find(|v| v.checker == checker);
        verdict.expect("a checker of that name")
    }

    fn figure_of<'a>(verdict: &'a Verdict, name: &str) -> &'a Value {
        let figure = verdict.figures.iter().find(|(n, _)| n == name);
        &figure.expect("a figure of that name").1
    }

    fn entries(verdict: &Verdict) -> Vec<Vec<usize>> {
        verdict
            .violations
            .iter()
            .map(|v| v.entries.clone())
            .collect()
    }

    /// A run with a failover and a heal: node-a leads at term 0, completes checkpoints 1 and 2,
    /// crashes; node-b takes over at term 1, restores 2, completes 3 and 4. The end is not
    /// written yet.
    fn correct_run() -> Builder {
        let mut b = Builder::default();
        b.phase(0, "faults");
        b.first_leader(10, A, 0);
        b.checkpoint(120, A, 0, 1, 100);
        b.lock(200, A, A, 0);
        b.checkpoint(220, A, 0, 2, 200);
        b.subsume(230, A, 1);
        b.world(300, A, WorldEvent::Crashed {});
        b.lock(1900, B, B, 1);
        b.granted(1901, B, 1);
        b.publish(1902, B, 1);
        b.seal(1905, B, JOB_MAP, 1);
        b.restored(1906, B, 1, Some(2), 200);
        b.checkpoint(2000, B, 1, 3, 300);
        b.subsume(2010, B, 2);
        b.phase(2100, "healed");
        b.world(
            2150,
            "observer",
            WorldEvent::Leader {
                leader: Some("term-1,".into()),
            },
        );
        b.checkpoint(2200, B, 1, 4, 400);
        b.subsume(2210, B, 3);
        b
    }

    #[test]
    fn a_correct_run_passes_every_checker() {
        let mut b = correct_run();
        b.end(5000);
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
                ["election_bound_ms", 2530],
                ["needless_losses", 0],
                ["judged", true],
                ["elected_after_heal_ms", 0],
                ["first_checkpoint_after_heal_ms", 102]
            ])
        );
    }

    // fenced-writes

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

    #[test]
    fn a_write_after_its_writer_released_the_lease_is_not_fenced() {
        let mut b = Builder::default();
        b.lease(10, A, A, 0);
        b.seal(20, A, JOB_MAP, 0);
        let release = b.lease(30, A, "", 0);
        let late = b.set(40, A, JOB_MAP, &checkpoint_key(1), &pointer(1, false));
        let verdict = judge(&b.entries, &context(LockKind::Lease), "fenced-writes");
        assert_eq!(entries(&verdict), [vec![release, late]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains("held by nobody (released) at term 0"),
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

    // terms

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

    // overlap

    fn two_believers() -> Builder {
        let mut b = Builder::default();
        b.granted(10, A, 1);
        b.granted(100, B, 2);
        b.event(300, A, Event::Revoked { term: 1 });
        b.world(400, B, WorldEvent::Stopped { graceful: true });
        b
    }

    #[test]
    fn two_believers_at_once_overlap() {
        let b = two_believers();
        let verdict = judge(&b.entries, &context(LockKind::Lease), "overlap");
        assert_eq!(entries(&verdict), [vec![0, 1]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains("node-a (granted term 1) and node-b (granted term 2) both believed they led for 200 ms"),
            "{message}"
        );
        assert_eq!(figure_of(&verdict, "overlap_ms"), &json!(200));
        assert_eq!(figure_of(&verdict, "max_believers"), &json!(2));
    }

    #[test]
    fn overlap_is_only_a_figure_when_the_run_broke_the_timing() {
        let b = two_believers();
        let ctx = Context {
            overlap_allowed: true,
            ..context(LockKind::Lease)
        };
        let verdict = judge(&b.entries, &ctx, "overlap");
        assert!(verdict.ok());
        assert_eq!(figure_of(&verdict, "overlap_ms"), &json!(200));
    }

    #[test]
    fn a_crash_ends_a_belief_and_an_open_one_runs_to_the_end() {
        let mut b = Builder::default();
        b.granted(10, A, 1);
        b.world(50, A, WorldEvent::Crashed {});
        b.granted(60, B, 2);
        let quiet = judge(&b.entries, &context(LockKind::Lease), "overlap");
        assert!(quiet.ok());
        assert_eq!(figure_of(&quiet, "overlap_ms"), &json!(0));
        let late = b.granted(70, C, 3);
        b.phase(100, "end");
        let verdict = judge(&b.entries, &context(LockKind::Lease), "overlap");
        assert_eq!(entries(&verdict), [vec![2, late]]);
        assert_eq!(figure_of(&verdict, "overlap_ms"), &json!(30));
    }

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

    // durability

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
        b.world(250, A, WorldEvent::Crashed {});
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
        b.phase(5000, "end");
        let blobs = b.world(
            5000,
            "world",
            WorldEvent::Blobs {
                paths: vec!["demo/job/job-graph".into(), path(3)],
            },
        );
        let committed = b.entries.iter().position(|e| {
            matches!(&e.record, Record::World(WorldEvent::Commit { object, .. })
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

    /// A deposed leader paused between its read and its report: its restore is judged by what
    /// its read could have seen since its grant, not by what a newer term committed since.
    #[test]
    fn a_late_restore_of_a_deposed_leader_is_judged_by_what_it_could_read() {
        let mut b = Builder::default();
        b.first_leader(10, A, 0);
        b.checkpoint(100, A, 0, 1, 100);
        b.world(150, A, WorldEvent::Crashed {});
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

    // counter

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

    // progress

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

    // cleanup

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

    // liveness

    /// FLINK-34007 / fabric8 #6020: after healing nobody ever leads again.
    #[test]
    fn no_leader_and_no_checkpoint_after_healing_break_liveness() {
        let mut b = Builder::default();
        b.granted(10, A, 0);
        b.world(500, A, WorldEvent::Crashed {});
        let healed = b.phase(1000, "healed");
        b.phase(5000, "end");
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(verdict.kind, Kind::Liveness);
        assert_eq!(entries(&verdict), [vec![healed], vec![healed]]);
        let messages = messages(&verdict);
        assert!(
            messages[0].contains("no candidate believed it led within 2530 ms (until t=3530 ms)"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].contains("no checkpoint completed within 2730 ms"),
            "{}",
            messages[1]
        );
        assert_eq!(figure_of(&verdict, "elected_after_heal_ms"), &Value::Null);
    }

    #[test]
    fn a_leader_elected_too_late_breaks_liveness() {
        let mut b = Builder::default();
        let healed = b.phase(1000, "healed");
        b.granted(3531, A, 0);
        b.event(
            3600,
            A,
            Event::Checkpoint {
                term: 0,
                id: 1,
                records: 100,
            },
        );
        b.phase(5000, "end");
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(entries(&verdict), [vec![healed]]);
        assert_eq!(figure_of(&verdict, "elected_after_heal_ms"), &json!(2531));
        assert_eq!(
            figure_of(&verdict, "first_checkpoint_after_heal_ms"),
            &json!(2600)
        );
    }

    /// FLINK-20417: a watcher that never learns the new leader.
    #[test]
    fn a_watcher_left_behind_breaks_liveness() {
        let mut b = correct_run();
        let stale = b.world(
            2300,
            "observer-2",
            WorldEvent::Leader {
                leader: Some("term-0,".into()),
            },
        );
        b.end(5000);
        let published = b
            .entries
            .iter()
            .rposition(|e| matches!(job_event(e), Some(Event::Published { .. })));
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(entries(&verdict), [vec![published.unwrap(), stale]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains(
                "observer-2 last saw the leader as \"term-0,\" but \"term-1,\" was published"
            ),
            "{message}"
        );
    }

    fn fault(b: &mut Builder, t_ms: u64, action: FaultAction, fault: &str) -> usize {
        let fault = fault.to_owned();
        b.world(t_ms, "world", WorldEvent::Fault { action, fault })
    }

    /// fabric8 #4246, kubert #134: one failed renewal must not cost the lease. Context timing:
    /// lease 1500, deadline 1000, retry 200; the window looked back over is 3100 ms.
    #[test]
    fn a_leader_lost_to_one_failed_renewal_is_a_needless_loss() {
        let blip = r#"apiserver faults {"latency":[],"hang":[],"errors":[{"when":{"probability":1.0,"verbs":["patch"],"clients":["node-a"],"names":["demo-cluster-"]},"code":500,"retry_after_seconds":1}],"ambiguous":[],"watch":{"delay_ms_min":0,"delay_ms_max":0,"close_after_events_max":null,"no_bookmarks":false},"stale_reads":null}"#;
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 2_000, FaultAction::Start, blip);
        fault(&mut b, 2_100, FaultAction::End, blip);
        // A standby cut off changes nothing for the leader.
        fault(
            &mut b,
            2_200,
            FaultAction::Start,
            "partition node-b <-> apiserver",
        );
        let lost = b.event(3_100, A, Event::Revoked { term: 0 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(entries(&verdict), [vec![lost]]);
        assert!(
            verdict.violations[0]
                .message
                .contains("node-a lost leadership (term 0) at t=3100 ms although since t=200 ms"),
            "{}",
            verdict.violations[0].message
        );
        assert_eq!(figure_of(&verdict, "needless_losses"), &json!(1));

        // Two blips may fail two renewals in a row.
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 2_000, FaultAction::Start, blip);
        fault(&mut b, 2_100, FaultAction::End, blip);
        fault(
            &mut b,
            2_200,
            FaultAction::Start,
            "connections reset node-a",
        );
        fault(&mut b, 2_210, FaultAction::End, "connections reset node-a");
        b.event(3_100, A, Event::Revoked { term: 0 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok(), "{:?}", verdict.violations);

        // The same errors for longer than a retry period may cost the lease.
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 2_000, FaultAction::Start, blip);
        fault(&mut b, 3_000, FaultAction::End, blip);
        b.event(3_100, A, Event::Revoked { term: 0 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok(), "{:?}", verdict.violations);
    }

    #[test]
    fn a_loss_under_a_partition_or_a_stop_is_not_needless() {
        let cut = "partition node-a <-> apiserver";
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 1_000, FaultAction::Start, cut);
        b.event(2_100, A, Event::Revoked { term: 0 });
        fault(&mut b, 2_500, FaultAction::End, cut);
        // A fault that ended within the window explains a loss too.
        b.granted(2_600, A, 1);
        b.event(5_000, A, Event::Revoked { term: 1 });
        // A graceful stop revokes on purpose.
        b.granted(9_000, A, 2);
        b.world(9_500, A, WorldEvent::Stopping {});
        b.event(9_510, A, Event::Revoked { term: 2 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok(), "{:?}", verdict.violations);
        assert_eq!(figure_of(&verdict, "needless_losses"), &json!(0));

        // Long after the partition, with nothing else going on, a loss is needless.
        b.world(9_600, A, WorldEvent::Started {});
        b.granted(9_700, A, 3);
        let lost = b.event(13_000, A, Event::Revoked { term: 3 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(entries(&verdict), [vec![lost]]);
    }

    #[test]
    fn liveness_is_not_judged_before_the_bound_has_passed() {
        let mut b = Builder::default();
        b.granted(10, A, 0);
        b.world(500, A, WorldEvent::Crashed {});
        b.phase(1000, "healed");
        b.phase(3529, "end");
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok());
        assert_eq!(figure_of(&verdict, "judged"), &json!(false));
        let verdict = judge(&[], &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok());
        assert_eq!(figure_of(&verdict, "judged"), &json!(false));
    }
}
