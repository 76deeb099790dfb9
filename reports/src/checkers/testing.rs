//! What the checkers' tests share: a history builder and a small context.

pub(crate) use std::collections::BTreeMap;
pub(crate) use std::time::Duration;

pub(crate) use khaos_elector::LockKind;
pub(crate) use khaos_elector::Timing;
pub(crate) use khaos_elector::decision::{LEADER_ANNOTATION, LeaderElectionRecord};
pub(crate) use khaos_elector::jobmaster::Event;
pub(crate) use khaos_elector::store::{FENCE_ANNOTATION, Pointer, TerminalState, checkpoint_key};
pub(crate) use serde_json::{Value, json};

pub(crate) use super::replay::{data, job_event};
pub(crate) use super::{Context, Kind, Verdict, check, leaderships, lock_changes};
pub(crate) use crate::faults::Fault;
pub(crate) use crate::faults::server::{ErrorRule, Faults, RequestVerb, Rule};
pub(crate) use crate::history::{
    CommitVerb, Entry, FaultAction, HARNESS, HarnessEvent, Phase, Record,
};

pub(crate) const NAMESPACE: &str = "default";
pub(crate) const CLUSTER_MAP: &str = "demo-cluster-config-map";
pub(crate) const JOB_MAP: &str = "demo-job-config-map";
pub(crate) const LEASE: &str = "demo-cluster-leader";
pub(crate) const DISPATCHER: &str = "org.apache.flink.k8s.leader.dispatcher";
pub(crate) const A: &str = "node-a";
pub(crate) const B: &str = "node-b";
pub(crate) const C: &str = "node-c";

/// The violations' messages, in order.
pub(crate) fn messages(verdict: &Verdict) -> Vec<&str> {
    verdict
        .violations
        .iter()
        .map(|v| v.message.as_str())
        .collect()
}

/// Lease 1500 ms, renew deadline 1000 ms, retry 200 ms, network 50 ms: the record carries a
/// 2 s lease (rounded up), so the election bound is 2000 + 2 x 200 x 2.2 + 50 + 100 = 3030 ms.
pub(crate) fn context(lock: LockKind) -> Context {
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

pub(crate) fn path(id: u64) -> String {
    format!("demo/job/checkpoint-{id:019}")
}

pub(crate) fn pointer(id: u64, marked: bool) -> String {
    json!({"path": path(id), "markedForDeletion": marked}).to_string()
}

/// A history under construction: every helper appends and returns the entry's index.
#[derive(Default)]
pub(crate) struct Builder {
    pub(crate) entries: Vec<Entry>,
    pub(crate) revision: u64,
    pub(crate) objects: BTreeMap<(String, String), Value>,
}

impl Builder {
    pub(crate) fn push(&mut self, entry: Entry) -> usize {
        self.entries.push(entry);
        self.entries.len() - 1
    }

    pub(crate) fn event(&mut self, t_ms: u64, node: &str, event: Event) -> usize {
        self.push(Entry::job(t_ms, node, event))
    }

    pub(crate) fn harness(&mut self, t_ms: u64, node: &str, event: HarnessEvent) -> usize {
        self.push(Entry::harness(t_ms, node, event))
    }

    pub(crate) fn phase(&mut self, t_ms: u64, phase: Phase) -> usize {
        self.harness(t_ms, HARNESS, HarnessEvent::Phase { phase })
    }

    pub(crate) fn granted(&mut self, t_ms: u64, node: &str, term: u64) -> usize {
        self.event(t_ms, node, Event::Granted { term })
    }

    pub(crate) fn commit(
        &mut self,
        t_ms: u64,
        client: &str,
        verb: CommitVerb,
        key: (&str, &str),
        object: Value,
    ) -> usize {
        self.revision += 1;
        self.harness(
            t_ms,
            "apiserver",
            HarnessEvent::Commit {
                revision: self.revision,
                verb,
                resource: key.0.into(),
                namespace: NAMESPACE.into(),
                name: key.1.into(),
                client: client.into(),
                object,
            },
        )
    }

    /// Commit `resource`/`name` as `client` after `edit` changed its current state.
    pub(crate) fn write(
        &mut self,
        t_ms: u64,
        client: &str,
        (resource, name): (&str, &str),
        edit: impl FnOnce(&mut Value),
    ) -> usize {
        let key = (resource.to_owned(), name.to_owned());
        let current = self.objects.get(&key).cloned();
        let verb = if current.is_some() {
            CommitVerb::Update
        } else {
            CommitVerb::Create
        };
        let mut object = current.unwrap_or_else(|| json!({"metadata": {"name": name}}));
        edit(&mut object);
        self.objects.insert(key, object.clone());
        self.commit(t_ms, client, verb, (resource, name), object)
    }

    pub(crate) fn delete(
        &mut self,
        t_ms: u64,
        client: &str,
        (resource, name): (&str, &str),
    ) -> usize {
        let key = (resource.to_owned(), name.to_owned());
        let object = self
            .objects
            .remove(&key)
            .expect("deletes an existing object");
        self.commit(t_ms, client, CommitVerb::Delete, (resource, name), object)
    }

    /// The ConfigMap lock: the leader annotation on the cluster map.
    pub(crate) fn lock(
        &mut self,
        t_ms: u64,
        client: &str,
        holder: &str,
        transitions: u32,
    ) -> usize {
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
    pub(crate) fn lease(
        &mut self,
        t_ms: u64,
        client: &str,
        holder: &str,
        transitions: u64,
    ) -> usize {
        self.write(t_ms, client, ("leases", LEASE), |object| {
            object["spec"] = json!({
                "holderIdentity": holder,
                "leaseTransitions": transitions,
                "renewTime": format!("t{t_ms}"),
            });
        })
    }

    pub(crate) fn seal(&mut self, t_ms: u64, client: &str, map: &str, term: u64) -> usize {
        let fence = json!({"term": term, "holder": client}).to_string();
        self.write(t_ms, client, ("configmaps", map), |object| {
            object["metadata"]["annotations"][FENCE_ANNOTATION] = json!(fence);
        })
    }

    pub(crate) fn set(
        &mut self,
        t_ms: u64,
        client: &str,
        map: &str,
        key: &str,
        value: &str,
    ) -> usize {
        self.write(t_ms, client, ("configmaps", map), |object| {
            object["data"][key] = json!(value);
        })
    }

    pub(crate) fn unset(&mut self, t_ms: u64, client: &str, map: &str, key: &str) -> usize {
        self.write(t_ms, client, ("configmaps", map), |object| {
            object["data"].as_object_mut().unwrap().remove(key);
        })
    }

    /// Take leadership as the job master does: grant, seals, leader information, job graph,
    /// registry, restore from nothing. Returns the `granted` entry.
    pub(crate) fn first_leader(&mut self, t_ms: u64, node: &str, term: u32) -> usize {
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
    pub(crate) fn publish(&mut self, t_ms: u64, node: &str, term: u64) -> usize {
        let leader = format!("term-{term},");
        self.seal(t_ms, node, CLUSTER_MAP, term);
        self.set(t_ms + 1, node, CLUSTER_MAP, DISPATCHER, &leader);
        self.event(t_ms + 2, node, Event::Published { term, leader })
    }

    pub(crate) fn restored(
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
    pub(crate) fn checkpoint(
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
    pub(crate) fn subsume(&mut self, t_ms: u64, node: &str, id: u64) -> [usize; 2] {
        let mark = self.set(t_ms, node, JOB_MAP, &checkpoint_key(id), &pointer(id, true));
        let remove = self.unset(t_ms + 1, node, JOB_MAP, &checkpoint_key(id));
        [mark, remove]
    }

    /// The end of the run, with the blob store holding every pointer's blob.
    pub(crate) fn end(&mut self, t_ms: u64) -> usize {
        let end = self.phase(t_ms, Phase::End);
        let map = self
            .objects
            .get(&("configmaps".to_owned(), JOB_MAP.to_owned()));
        let paths = data(map)
            .values()
            .filter_map(|value| Some(serde_json::from_str::<Pointer>(value).ok()?.path))
            .collect();
        self.harness(t_ms, HARNESS, HarnessEvent::Blobs { paths });
        end
    }
}

pub(crate) fn judge(history: &[Entry], ctx: &Context, checker: &str) -> Verdict {
    let verdict = check(history, ctx)
        .into_iter()
        .find(|v| v.checker == checker);
    verdict.expect("a checker of that name")
}

pub(crate) fn figure_of<'a>(verdict: &'a Verdict, name: &str) -> &'a Value {
    let figure = verdict.figures.iter().find(|(n, _)| n == name);
    &figure.expect("a figure of that name").1
}

pub(crate) fn entries(verdict: &Verdict) -> Vec<Vec<usize>> {
    verdict
        .violations
        .iter()
        .map(|v| v.entries.clone())
        .collect()
}

/// A run with a failover and a heal: node-a leads at term 0, completes checkpoints 1 and 2,
/// crashes; node-b takes over at term 1, restores 2, completes 3 and 4. The end is not
/// written yet.
pub(crate) fn correct_run() -> Builder {
    let mut b = Builder::default();
    b.phase(0, Phase::Faults);
    b.first_leader(10, A, 0);
    b.checkpoint(120, A, 0, 1, 100);
    b.lock(200, A, A, 0);
    b.checkpoint(220, A, 0, 2, 200);
    b.subsume(230, A, 1);
    b.harness(300, A, HarnessEvent::Crashed {});
    b.lock(1900, B, B, 1);
    b.granted(1901, B, 1);
    b.publish(1902, B, 1);
    b.seal(1905, B, JOB_MAP, 1);
    b.restored(1906, B, 1, Some(2), 200);
    b.checkpoint(2000, B, 1, 3, 300);
    b.subsume(2010, B, 2);
    b.phase(2100, Phase::Healed);
    b.harness(
        2150,
        "observer",
        HarnessEvent::Leader {
            leader: Some("term-1,".into()),
        },
    );
    b.checkpoint(2200, B, 1, 4, 400);
    b.subsume(2210, B, 3);
    b
}
