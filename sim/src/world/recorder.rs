//! The history as the world writes it: entries in the order things happen (turmoil runs one host
//! at a time), the API server's commits drained in before anything recorded after them, so file
//! order is causal order; and who believes it leads now, for faults aimed at `@leader`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use khaos_elector::jobmaster::Event;
use khaos_reports::faults::APISERVER;
use khaos_reports::history::{CommitVerb, Entry, HarnessEvent, Record};

use crate::apiserver::{ApiServer, Commit, Verb};

/// The shared history being written: entries in the order things happen (turmoil runs one host
/// at a time), with the server's commits drained in before anything recorded after them.
#[derive(Clone)]
pub(super) struct Recorder {
    pub(super) inner: Arc<Mutex<Vec<Entry>>>,
    pub(super) now_ms: Arc<AtomicU64>,
    pub(super) server: ApiServer,
    /// Who believes it leads now (for faults aimed at `@leader`).
    pub(super) leaders: Arc<Mutex<BTreeSet<String>>>,
}

impl Recorder {
    pub(super) fn push(&self, node: &str, record: Record) {
        {
            let mut leaders = self.leaders.lock().expect("not poisoned");
            match &record {
                Record::Job(Event::Granted { .. }) => {
                    leaders.insert(node.to_owned());
                }
                Record::Job(Event::Revoked { .. })
                | Record::Harness(HarnessEvent::Crashed {} | HarnessEvent::Stopped { .. }) => {
                    leaders.remove(node);
                }
                _ => {}
            }
        }
        let mut entries = self.inner.lock().expect("not poisoned");
        let t_ms = self.now_ms.load(Ordering::Relaxed);
        drain_commits(&self.server, t_ms, &mut entries);
        entries.push(Entry {
            t_ms,
            node: node.to_owned(),
            record,
        });
    }

    pub(super) fn harness(&self, node: &str, event: HarnessEvent) {
        self.push(node, Record::Harness(event));
    }

    pub(super) fn drain(&self) {
        let mut entries = self.inner.lock().expect("not poisoned");
        drain_commits(
            &self.server,
            self.now_ms.load(Ordering::Relaxed),
            &mut entries,
        );
    }
}

fn drain_commits(server: &ApiServer, t_ms: u64, entries: &mut Vec<Entry>) {
    for commit in server.take_commits() {
        entries.push(commit_entry(t_ms, commit));
    }
}

/// The history line of one API server commit, recorded by `apiserver` at `t_ms`.
pub fn commit_entry(t_ms: u64, commit: Commit) -> Entry {
    let verb = match commit.verb {
        Verb::Create => CommitVerb::Create,
        Verb::Update => CommitVerb::Update,
        Verb::Patch => CommitVerb::Patch,
        Verb::Delete => CommitVerb::Delete,
    };
    Entry::harness(
        t_ms,
        APISERVER,
        HarnessEvent::Commit {
            revision: commit.revision,
            verb,
            resource: commit.resource.to_owned(),
            namespace: commit.namespace,
            name: commit.name,
            client: commit.client,
            object: (*commit.object).clone(),
        },
    )
}
