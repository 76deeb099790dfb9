//! The HA services against the standalone simulated API server over real TCP: several candidates
//! one leader at a time, hand-over after a crash and after a graceful stop, stepping down when cut
//! off, competing again afterwards, and riding out a single failed renew.

// These tests measure hand-over times on the real clock.
#![allow(clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderValue, header};
use khaos_elector::timing::JITTER_FACTOR;
use khaos_elector::{Elector, ElectorConfig, ElectorHandle, Leadership, LockKind, Timing};
use khaos_sim::apiserver::{ApiServer, ErrorRule, Faults, RequestVerb, Rule, ServerConfig};

/// Short timings so each test takes seconds: lease 1.5 s, renew deadline 1 s, retry 200 ms.
fn timing() -> Timing {
    Timing::new(
        Duration::from_millis(1500),
        Duration::from_millis(1000),
        Duration::from_millis(200),
    )
    .unwrap()
}

/// Slack for scheduling on a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_millis(1000);

struct World {
    server: ApiServer,
    url: String,
}

impl World {
    async fn start() -> World {
        let server = ApiServer::new(ServerConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server.clone().serve_tcp(listener, std::future::pending()));
        World { server, url }
    }

    fn client(&self, identity: &str) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.default_retry = false;
        config
            .headers
            .push((header::USER_AGENT, HeaderValue::from_str(identity).unwrap()));
        kube::Client::try_from(config).unwrap()
    }

    fn candidate(&self, identity: &str, kind: LockKind, seed: u64) -> Candidate {
        let config = ElectorConfig::new(identity, "default", "leader", kind, timing()).seed(seed);
        let handle = Elector::new(self.client(identity), config).spawn();
        Candidate::follow(identity, handle)
    }
}

/// A candidate and everything its leadership channel ever said.
struct Candidate {
    identity: String,
    handle: ElectorHandle,
    history: Arc<Mutex<Vec<Option<Leadership>>>>,
}

impl Candidate {
    fn follow(identity: &str, handle: ElectorHandle) -> Candidate {
        let history = Arc::new(Mutex::new(Vec::new()));
        let mut receiver = handle.leadership();
        let record = history.clone();
        tokio::spawn(async move {
            while receiver.changed().await.is_ok() {
                let value = receiver.borrow_and_update().clone();
                record.lock().unwrap().push(value);
            }
        });
        Candidate {
            identity: identity.to_owned(),
            handle,
            history,
        }
    }

    fn leads(&self) -> bool {
        self.handle.current().is_some()
    }

    fn revokes(&self) -> usize {
        self.history
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.is_none())
            .count()
    }
}

/// Wait until exactly one candidate leads (checking that never two do); returns its index.
async fn single_leader(candidates: &[Candidate], within: Duration) -> usize {
    let started = Instant::now();
    loop {
        let leaders: Vec<usize> = (0..candidates.len())
            .filter(|i| candidates[*i].leads())
            .collect();
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        if let [leader] = leaders[..] {
            return leader;
        }
        assert!(started.elapsed() < within, "no leader within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_emerges_and_holds_with_either_lock() {
    for (kind, seed) in [(LockKind::Lease, 1), (LockKind::ConfigMap, 2)] {
        let world = World::start().await;
        let candidates: Vec<Candidate> = ["a", "b", "c"]
            .iter()
            .map(|id| world.candidate(id, kind, seed))
            .collect();
        let leader = single_leader(&candidates, Duration::from_secs(5)).await;
        // Hold for several lease durations: the same leader, never two, no revokes.
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            assert_eq!(
                single_leader(&candidates, SLACK).await,
                leader,
                "{kind:?}: leadership moved without a fault"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(candidates[leader].revokes(), 0, "{kind:?}");
        let term = candidates[leader].handle.current().unwrap().term;
        assert_eq!(term, 0, "{kind:?}: the first leader holds term 0");
        for candidate in candidates {
            candidate.handle.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_replaced_within_a_lease_and_two_jittered_retries() {
    let world = World::start().await;
    let mut candidates: Vec<Candidate> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, id)| world.candidate(id, LockKind::Lease, i as u64))
        .collect();
    let leader = single_leader(&candidates, Duration::from_secs(5)).await;
    let old_term = candidates[leader].handle.current().unwrap().term;
    let crashed = candidates.remove(leader);
    let crashed_at = Instant::now();
    crashed.handle.abort();
    let next = single_leader(&candidates, Duration::from_secs(10)).await;
    let took = crashed_at.elapsed();
    // A standby sees the last renewal up to one jittered retry late and tries again up to one
    // jittered retry after the lease ran out.
    // The lease is what the record says (whole seconds, rounded up).
    let t = timing();
    let lease = Duration::from_secs(u64::try_from(t.lease_duration_seconds()).unwrap());
    let bound = lease + t.retry_period().mul_f64(2.0 * (1.0 + JITTER_FACTOR)) + SLACK;
    assert!(
        took <= bound,
        "hand-over after a crash took {took:?}, bound {bound:?}"
    );
    assert!(
        took >= lease - t.retry_period(),
        "hand-over after a crash took only {took:?}: the {lease:?} lease was not respected"
    );
    assert!(
        candidates[next].handle.current().unwrap().term > old_term,
        "the new leader's term is not higher"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_hands_over_within_about_one_retry_period() {
    let world = World::start().await;
    let mut candidates: Vec<Candidate> = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(i, id)| world.candidate(id, LockKind::ConfigMap, 10 + i as u64))
        .collect();
    let leader = single_leader(&candidates, Duration::from_secs(5)).await;
    let stopping = candidates.remove(leader);
    let stopped_at = Instant::now();
    stopping.handle.stop().await;
    single_leader(&candidates, Duration::from_secs(10)).await;
    let took = stopped_at.elapsed();
    let bound = timing().retry_period().mul_f64(1.0 + JITTER_FACTOR) + SLACK;
    assert!(
        took <= bound,
        "hand-over after a graceful stop took {took:?}, bound {bound:?} (a lease is {:?})",
        timing().lease_duration()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_steps_down_by_its_deadline_and_wins_again_later() {
    let world = World::start().await;
    let a = world.candidate("a", LockKind::Lease, 21);
    single_leader(std::slice::from_ref(&a), Duration::from_secs(5)).await;
    let b = world.candidate("b", LockKind::Lease, 22);
    // Cut a off from the API server: every request it makes fails.
    let cut_at = Instant::now();
    world
        .server
        .set_faults(Faults {
            errors: vec![ErrorRule {
                code: 503,
                ..ErrorRule::on(Rule::always().for_client("a"))
            }],
            ..Faults::default()
        })
        .unwrap();
    while a.leads() {
        assert!(
            cut_at.elapsed() < timing().renew_deadline() + timing().retry_period() + SLACK,
            "a kept leading for {:?} without a renewal",
            cut_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let candidates = [a, b];
    assert_eq!(
        single_leader(&candidates, Duration::from_secs(10)).await,
        1,
        "b did not take over"
    );
    // Heal, then hand b's leadership back: a must compete again and win (FLINK-34007).
    world.server.set_faults(Faults::none()).unwrap();
    let [a, b] = candidates;
    b.handle.stop().await;
    single_leader(std::slice::from_ref(&a), Duration::from_secs(5)).await;
    assert!(
        a.handle.current().unwrap().term >= 2,
        "a's second term is {:?}",
        a.handle.current()
    );
    assert_eq!(a.revokes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_renew_does_not_end_leadership() {
    let world = World::start().await;
    let a = world.candidate("a", LockKind::Lease, 31);
    single_leader(std::slice::from_ref(&a), Duration::from_secs(5)).await;
    // Fail the leader's requests for a bit more than one retry period, well inside the deadline.
    world
        .server
        .set_faults(Faults {
            errors: vec![ErrorRule::on(
                Rule::verbs(&[RequestVerb::Get, RequestVerb::Patch]).for_client("a"),
            )],
            ..Faults::default()
        })
        .unwrap();
    tokio::time::sleep(timing().retry_period().mul_f64(1.5)).await;
    world.server.set_faults(Faults::none()).unwrap();
    tokio::time::sleep(timing().lease_duration() * 2).await;
    assert!(a.leads(), "a lost leadership over one failed renew");
    assert_eq!(a.revokes(), 0, "a stepped down over one failed renew");
    assert!(!a.identity.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_lock_leaves_the_data_beside_it_alone() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let world = World::start().await;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(world.client("writer"), "default");
    let data: ConfigMap = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "leader"}, "data": {"counter": "7"}}),
    )
    .unwrap();
    api.create(&Default::default(), &data).await.unwrap();
    let a = world.candidate("a", LockKind::ConfigMap, 41);
    single_leader(std::slice::from_ref(&a), Duration::from_secs(5)).await;
    tokio::time::sleep(timing().retry_period() * 4).await;
    let lock = api.get("leader").await.unwrap();
    assert_eq!(lock.data.unwrap()["counter"], "7");
    let record = &lock.metadata.annotations.unwrap()["control-plane.alpha.kubernetes.io/leader"];
    assert!(record.contains(r#""holderIdentity":"a""#), "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_retrieval_survives_closes_compaction_and_restarts() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use khaos_elector::retrieval::{LeaderInfo, LeaderRetriever, leader_key};
    let world = World::start().await;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(world.client("publisher"), "default");
    let key = leader_key("dispatcher");
    let publish = |session: &str| serde_json::json!({"data": {key.clone(): format!("{session},akka://flink@node-{session}:6123")}});
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "cluster-config-map"}}))
            .unwrap();
    api.create(&Default::default(), &cm).await.unwrap();
    let mut leader = LeaderRetriever::new(
        world.client("follower"),
        "default",
        "cluster-config-map",
        &key,
    )
    .spawn(5);
    let expect = |session: &'static str| {
        move |info: &Option<LeaderInfo>| info.as_ref().is_some_and(|i| i.session_id == session)
    };
    let wait = Duration::from_secs(10);

    // Publish a session, then wait until the retriever reports it.
    let publish_and_see = async |session: &'static str, after: &str| {
        let patch = kube::api::Patch::Merge(publish(session));
        // The publisher's pooled connection may be one a restart just dropped: retry a little.
        let mut attempts = 0;
        while let Err(error) = api
            .patch("cluster-config-map", &Default::default(), &patch)
            .await
        {
            attempts += 1;
            assert!(attempts < 5, "publishing {session}: {error}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::timeout(wait, leader.clone().wait_for(expect(session)))
            .await
            .unwrap_or_else(|_| panic!("{session} not seen {after}"))
            .unwrap();
    };
    publish_and_see("s1", "at first").await;

    // The server restarts: the watch drops, and a resume from before the restart gets 410.
    world.server.restart();
    publish_and_see("s2", "after a restart").await;

    // The watch is closed mid-way and the history compacted past it.
    world
        .server
        .set_faults(Faults {
            watch: khaos_sim::apiserver::WatchFaults {
                close_after_events_max: Some(1),
                ..Default::default()
            },
            ..Faults::default()
        })
        .unwrap();
    publish_and_see("s3", "after a close").await;
    world.server.compact();
    publish_and_see("s4", "after a close and compaction").await;
    world.server.set_faults(Faults::none()).unwrap();

    api.delete("cluster-config-map", &Default::default())
        .await
        .unwrap();
    tokio::time::timeout(wait, leader.wait_for(Option::is_none))
        .await
        .expect("the deletion seen")
        .unwrap();
}

mod store {
    //! The HA metadata store: fencing by seal, the counter, checkpoints with subsumption,
    //! ambiguous writes, repeatable removal, recovery and cleanup.

    use super::World;
    use bytes::Bytes;
    use khaos_elector::blob::{BlobStore, MemoryBlobStore};
    use khaos_elector::store::{
        Change, Fence, JobResult, JobStore, StoreError, TerminalState, checkpoint_key,
    };
    use khaos_sim::apiserver::{AmbiguousOutcome, AmbiguousRule, Faults, RequestVerb, Rule};
    use std::sync::Arc;

    fn fence(term: u64, holder: &str) -> Fence {
        Fence {
            term,
            holder: holder.into(),
        }
    }

    fn job(world: &World, identity: &str, blobs: &MemoryBlobStore) -> JobStore {
        JobStore::new(
            world.client(identity),
            Arc::new(blobs.clone()),
            "default",
            "cluster",
            "job-1",
        )
    }

    #[tokio::test]
    async fn a_sealed_map_refuses_the_stale_leader() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(1);
        let (old, new) = (job(&world, "a", &blobs), job(&world, "b", &blobs));
        old.seal(&fence(1, "a")).await.unwrap();
        assert_eq!(old.next_checkpoint_id(&fence(1, "a")).await.unwrap(), 1);
        new.seal(&fence(2, "b")).await.unwrap();
        let error = old.next_checkpoint_id(&fence(1, "a")).await.unwrap_err();
        assert!(error.is_not_leader(), "{error}");
        // The stale leader cannot seal its way back either.
        assert!(old.seal(&fence(1, "a")).await.unwrap_err().is_not_leader());
        assert_eq!(
            new.next_checkpoint_id(&fence(2, "b")).await.unwrap(),
            2,
            "the counter continues, never reused"
        );
        assert!(matches!(
            job(&world, "c", &blobs)
                .next_checkpoint_id(&fence(3, "c"))
                .await,
            Err(StoreError::NotSealed { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_read_before_a_new_seal_loses_its_cas_and_is_refused() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(7);
        let (old, new) = (job(&world, "a", &blobs), job(&world, "b", &blobs));
        old.seal(&fence(1, "a")).await.unwrap();
        let runtime = tokio::runtime::Handle::current();
        let mut calls = 0;
        let result = old
            .map()
            .update(&fence(1, "a"), "raced write", |data| {
                calls += 1;
                if calls == 1 {
                    // Between the stale leader's read and its write, the new leader seals.
                    tokio::task::block_in_place(|| runtime.block_on(new.seal(&fence(2, "b"))))
                        .unwrap();
                }
                data.insert("x".into(), "stale".into());
                Ok(Change::Write(()))
            })
            .await;
        assert!(result.unwrap_err().is_not_leader());
        assert_eq!(
            calls, 1,
            "the re-read saw the new seal before changing anything"
        );
        assert!(
            !new.map().read().await.unwrap().contains_key("x"),
            "the stale write landed"
        );
    }

    /// A job graph whose blob is gone is corrupt HA data; a blob store that is down for a
    /// moment is not, and must not be reported as a missing blob (a mutant that was: survivor
    /// `store.rs:775` of `docs/mutants.md`).
    #[tokio::test]
    async fn a_blob_outage_reading_the_job_graph_is_not_a_missing_graph() {
        use khaos_elector::blob::BlobFaults;
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(3);
        let store = job(&world, "a", &blobs);
        let f = fence(1, "a");
        store.seal(&f).await.unwrap();
        store
            .put_job_graph(&f, Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let down = BlobFaults {
            fail_probability: 1.0,
            ..BlobFaults::default()
        };
        blobs.set_faults(down).unwrap();
        let error = store.job_graph().await.unwrap_err();
        assert!(
            !matches!(error, StoreError::Corrupt { .. }),
            "an outage was reported as corrupt data: {error}"
        );
        blobs.set_faults(BlobFaults::default()).unwrap();
        assert_eq!(
            store.job_graph().await.unwrap(),
            Some(Bytes::from_static(b"{}"))
        );
        let path = blobs
            .snapshot()
            .into_keys()
            .next()
            .expect("the graph's blob");
        blobs.delete(&path).await.unwrap();
        let error = store.job_graph().await.unwrap_err();
        assert!(
            matches!(error, StoreError::Corrupt { .. }),
            "a missing graph blob: {error}"
        );
    }

    #[tokio::test]
    async fn checkpoints_are_subsumed_after_the_newer_commits_and_recovered_from_the_store() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(2);
        let store = job(&world, "a", &blobs);
        let f = fence(1, "a");
        store.seal(&f).await.unwrap();
        for _ in 0..3 {
            let id = store.next_checkpoint_id(&f).await.unwrap();
            store
                .add_checkpoint(&f, id, Bytes::from(format!("state-{id}")))
                .await
                .unwrap();
            store.subsume(&f, 1).await.unwrap();
        }
        let data = store.map().read().await.unwrap();
        let keys: Vec<&String> = data
            .keys()
            .filter(|k| k.starts_with("checkpointID-"))
            .collect();
        assert_eq!(keys, [&checkpoint_key(3)]);
        assert_eq!(blobs.snapshot().len(), 1, "subsumed blobs are discarded");
        let recovered = store.recover_latest().await.unwrap();
        assert_eq!(recovered.latest, Some((3, Bytes::from("state-3"))));
        assert!(recovered.dangling.is_empty());
    }

    #[tokio::test]
    async fn an_ambiguous_pointer_write_keeps_its_blob() {
        // FLINK-28265: the pointer committed but the answer was lost; the retry finds its own
        // pointer and the blob is never discarded.
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(3);
        let store = job(&world, "leader", &blobs);
        let f = fence(1, "leader");
        store.seal(&f).await.unwrap();
        world
            .server
            .set_faults(Faults {
                ambiguous: vec![AmbiguousRule {
                    rule: Rule::verbs(&[RequestVerb::Update])
                        .for_client("leader")
                        .with_probability(1.0),
                    outcome: AmbiguousOutcome::Timeout,
                }],
                ..Faults::default()
            })
            .unwrap();
        let first = store.add_checkpoint(&f, 1, Bytes::from("one")).await;
        world.server.set_faults(Faults::none()).unwrap();
        // Every attempt committed or found its own pointer: the add succeeded.
        first.unwrap();
        let recovered = store.recover_latest().await.unwrap();
        assert_eq!(recovered.latest, Some((1, Bytes::from("one"))));
        assert!(recovered.dangling.is_empty());
    }

    #[tokio::test]
    async fn removal_is_repeatable_after_a_crash_between_any_two_steps() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(4);
        let store = job(&world, "a", &blobs);
        let f = fence(1, "a");
        store.seal(&f).await.unwrap();
        for id in [1, 2] {
            store
                .add_checkpoint(&f, id, Bytes::from(format!("s{id}")))
                .await
                .unwrap();
        }
        // Crash after marking 1; crash after marking 2 and discarding its blob.
        for id in [1u64, 2] {
            let key = checkpoint_key(id);
            store
                .map()
                .update(&f, "mark", |data| {
                    let marked = data[&key]
                        .replace("\"markedForDeletion\":false", "\"markedForDeletion\":true");
                    data.insert(key.clone(), marked);
                    Ok(Change::Write(()))
                })
                .await
                .unwrap();
        }
        blobs
            .delete("cluster/job-1/checkpoint-0000000000000000002")
            .await
            .unwrap();
        // Marked entries are not recovered, and are not reported dangling.
        let recovered = store.recover_latest().await.unwrap();
        assert_eq!(recovered.latest, None);
        assert!(recovered.dangling.is_empty());
        // The next leader finishes both removals.
        let next = job(&world, "b", &blobs);
        let g = fence(2, "b");
        next.seal(&g).await.unwrap();
        assert_eq!(next.finish_removals(&g).await.unwrap(), 2);
        assert!(blobs.snapshot().is_empty());
        assert!(
            !next
                .map()
                .read()
                .await
                .unwrap()
                .keys()
                .any(|k| k.starts_with("checkpointID-"))
        );
    }

    #[tokio::test]
    async fn a_dangling_pointer_is_reported_and_skipped() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(5);
        let store = job(&world, "a", &blobs);
        let f = fence(1, "a");
        store.seal(&f).await.unwrap();
        store
            .add_checkpoint(&f, 1, Bytes::from("s1"))
            .await
            .unwrap();
        store
            .add_checkpoint(&f, 2, Bytes::from("s2"))
            .await
            .unwrap();
        blobs
            .delete("cluster/job-1/checkpoint-0000000000000000002")
            .await
            .unwrap();
        let recovered = store.recover_latest().await.unwrap();
        assert_eq!(recovered.latest, Some((1, Bytes::from("s1"))));
        assert_eq!(recovered.dangling, [2]);
    }

    #[tokio::test]
    async fn a_terminal_job_records_its_result_then_is_cleaned_up() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(6);
        let store = job(&world, "a", &blobs);
        let f = fence(1, "a");
        store.seal(&f).await.unwrap();
        store.set_registry(&f, "RUNNING").await.unwrap();
        store.put_job_graph(&f, Bytes::from("graph")).await.unwrap();
        store
            .add_checkpoint(&f, 1, Bytes::from("s1"))
            .await
            .unwrap();
        let result = store
            .clean_up_terminal(&f, TerminalState::Failed)
            .await
            .unwrap();
        assert!(result.clean);
        assert_eq!(
            blobs.snapshot().keys().collect::<Vec<_>>(),
            ["cluster/_job-results/job-1.json"],
            "only the job's result is left"
        );
        assert!(
            !store.map().exists().await.unwrap(),
            "the job's map is gone"
        );
        // Repeatable: a second cleanup (a new leader finishing it) changes nothing, and the
        // first terminal state recorded wins.
        let again = store
            .clean_up_terminal(&fence(2, "b"), TerminalState::Finished)
            .await
            .unwrap();
        assert_eq!(again, result);
        assert!(!store.map().exists().await.unwrap());
    }

    #[tokio::test]
    async fn a_cleanup_cut_short_after_recording_the_result_is_finished_by_the_next_leader() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(7);
        let (old, new) = (job(&world, "a", &blobs), job(&world, "b", &blobs));
        let f1 = fence(1, "a");
        old.seal(&f1).await.unwrap();
        old.add_checkpoint(&f1, 1, Bytes::from("s1")).await.unwrap();
        // The old leader recorded the result and crashed before anything else.
        let dirty = JobResult {
            job_id: "job-1".into(),
            state: TerminalState::Canceled,
            clean: false,
        };
        blobs
            .put(
                "cluster/_job-results/job-1.json",
                Bytes::from(serde_json::to_vec(&dirty).unwrap()),
            )
            .await
            .unwrap();
        let f2 = fence(2, "b");
        assert_eq!(new.job_result().await.unwrap(), Some(dirty));
        new.seal(&f2).await.unwrap();
        let result = new
            .clean_up_terminal(&f2, TerminalState::Finished)
            .await
            .unwrap();
        assert_eq!(
            result.state,
            TerminalState::Canceled,
            "the recorded state wins"
        );
        assert!(result.clean);
        assert!(!new.map().exists().await.unwrap());
        assert_eq!(blobs.snapshot().len(), 1, "only the result is left");
    }

    #[tokio::test]
    async fn the_job_graph_is_stored_blob_first_and_a_missing_blob_is_an_error() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(8);
        let store = job(&world, "a", &blobs);
        let f = fence(1, "a");
        assert_eq!(store.job_graph().await.unwrap(), None);
        store.seal(&f).await.unwrap();
        store.put_job_graph(&f, Bytes::from("graph")).await.unwrap();
        assert_eq!(store.job_graph().await.unwrap(), Some(Bytes::from("graph")));
        let pointer = store.map().read().await.unwrap()["jobGraph-job-1"].clone();
        assert_eq!(
            pointer,
            r#"{"path":"cluster/job-1/job-graph","markedForDeletion":false}"#
        );
        blobs.delete("cluster/job-1/job-graph").await.unwrap();
        let error = store.job_graph().await.unwrap_err();
        assert!(error.to_string().contains("is missing"), "{error}");
    }

    #[tokio::test]
    async fn a_map_that_is_also_the_configmap_lock_refuses_a_writer_that_lost_the_lock() {
        use khaos_elector::decision::{LEADER_ANNOTATION, LeaderElectionRecord};
        use khaos_elector::retrieval::{LeaderInfo, leader_key};
        use khaos_elector::store::{FencedMap, publish_leader};
        let world = World::start().await;
        let map = FencedMap::new(
            world.client("a"),
            "default",
            "cluster",
            "cluster-cluster-config-map",
        );
        let f = fence(4, "a");
        map.seal(&f).await.unwrap();
        let info = LeaderInfo {
            session_id: "term-4".into(),
            address: "a:8081".into(),
        };
        publish_leader(&map, &f, "dispatcher", &info).await.unwrap();
        assert_eq!(
            map.read().await.unwrap()[&leader_key("dispatcher")],
            "term-4,a:8081"
        );
        // Someone else takes the lock in the same object (term 5); the seal still says term 4.
        let record = LeaderElectionRecord {
            holder_identity: "b".into(),
            lease_duration_seconds: 2,
            acquire_time: None,
            renew_time: None,
            leader_transitions: 5,
        };
        let patch = serde_json::json!({"metadata": {"annotations": {
            LEADER_ANNOTATION: serde_json::to_string(&record).unwrap()
        }}});
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(world.client("b"), "default");
        api.patch(
            "cluster-cluster-config-map",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .unwrap();
        let error = publish_leader(&map, &f, "dispatcher", &info)
            .await
            .unwrap_err();
        assert!(error.is_not_leader(), "{error}");
        assert!(error.to_string().contains("term 5 (\"b\")"), "{error}");
    }
}

mod job_master {
    //! The reference job master under the elector: a crash (the elector dies, its job master
    //! keeps writing as a zombie) and a finished job that no later leader restarts.

    use super::*;
    use khaos_elector::blob::MemoryBlobStore;
    use khaos_elector::jobmaster::{Event, JobMaster, JobMasterConfig};
    use khaos_elector::store::cluster_map_name;

    type Log = Arc<Mutex<Vec<(String, Event)>>>;

    fn node(
        world: &World,
        identity: &str,
        seed: u64,
        blobs: &MemoryBlobStore,
        log: &Log,
        finish_at_records: Option<u64>,
    ) -> ElectorHandle {
        let mut config = JobMasterConfig::new("default", "cluster");
        config.checkpoint_interval = Duration::from_millis(100);
        config.finish_at_records = finish_at_records;
        config.address = format!("{identity}:8081");
        let log = Arc::clone(log);
        let me = identity.to_owned();
        let events = move |event: Event| log.lock().unwrap().push((me.clone(), event));
        let master = JobMaster::new(
            world.client(identity),
            Arc::new(blobs.clone()),
            config,
            Arc::new(events),
        );
        let lock = cluster_map_name("cluster");
        let config = ElectorConfig::new(identity, "default", &lock, LockKind::ConfigMap, timing())
            .seed(seed);
        Elector::new(world.client(identity), config)
            .with_contender(Arc::new(master))
            .spawn()
    }

    fn events_of(log: &Log, identity: &str) -> Vec<Event> {
        let log = log.lock().unwrap();
        log.iter()
            .filter(|(who, _)| who == identity)
            .map(|(_, e)| e.clone())
            .collect()
    }

    async fn wait_for(
        log: &Log,
        within: Duration,
        what: &str,
        until: impl Fn(&[(String, Event)]) -> bool,
    ) {
        let started = Instant::now();
        while !until(&log.lock().unwrap()) {
            assert!(
                started.elapsed() < within,
                "{what} did not happen within {within:?}: {:#?}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn leader(handles: &[(&str, &ElectorHandle)]) -> Option<String> {
        handles
            .iter()
            .find(|(_, h)| h.current().is_some())
            .map(|(id, _)| (*id).to_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_leader_resumes_from_the_latest_checkpoint_and_fences_off_the_zombie() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(9);
        let log: Log = Arc::default();
        let a = node(&world, "a", 1, &blobs, &log, None);
        let b = node(&world, "b", 2, &blobs, &log, None);
        let checkpoints = |log: &[(String, Event)]| {
            log.iter()
                .filter(|(_, e)| matches!(e, Event::Checkpoint { .. }))
                .count()
        };
        wait_for(&log, Duration::from_secs(10), "three checkpoints", |l| {
            checkpoints(l) >= 3
        })
        .await;
        let old = leader(&[("a", &a), ("b", &b)]).expect("someone leads");
        let (zombie, standby, standby_id) = if old == "a" { (a, b, "b") } else { (b, a, "a") };
        // The elector dies; its job master is not told and keeps checkpointing.
        zombie.abort();
        wait_for(
            &log,
            Duration::from_secs(10),
            "the standby's restore",
            |l| {
                l.iter()
                    .any(|(who, e)| who == standby_id && matches!(e, Event::Restored { .. }))
            },
        )
        .await;
        wait_for(
            &log,
            Duration::from_secs(5),
            "the zombie being fenced",
            |l| {
                l.iter()
                    .any(|(who, e)| who == &old && matches!(e, Event::Fenced { .. }))
            },
        )
        .await;
        let old_events = events_of(&log, &old);
        let last_committed = old_events
            .iter()
            .filter_map(|e| match e {
                Event::Checkpoint { id, records, .. } => Some((*id, *records)),
                _ => None,
            })
            .max()
            .unwrap();
        let restored = events_of(&log, standby_id)
            .into_iter()
            .find_map(|e| match e {
                Event::Restored {
                    checkpoint,
                    records,
                    dangling,
                    ..
                } => Some((checkpoint, records, dangling)),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            restored,
            (Some(last_committed.0), last_committed.1, vec![]),
            "the new leader restores the zombie's last committed checkpoint: {old_events:?}"
        );
        assert!(
            !old_events
                .iter()
                .any(|e| matches!(e, Event::Checkpoint { id, .. } if *id > last_committed.0)),
            "no checkpoint of the zombie commits after the new leader sealed"
        );
        // The standby goes on checkpointing from there.
        wait_for(&log, Duration::from_secs(5), "the new leader's checkpoint", |l| {
            l.iter().any(|(who, e)| {
                who == standby_id
                    && matches!(e, Event::Checkpoint { records, .. } if *records == last_committed.1 + 100)
            })
        })
        .await;
        standby.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_finished_job_is_cleaned_up_and_never_run_again() {
        let world = World::start().await;
        let blobs = MemoryBlobStore::new(10);
        let log: Log = Arc::default();
        let a = node(&world, "a", 3, &blobs, &log, Some(300));
        wait_for(&log, Duration::from_secs(10), "the job finishing", |l| {
            l.iter().any(|(_, e)| matches!(e, Event::Finished { .. }))
        })
        .await;
        assert_eq!(
            blobs.snapshot().keys().collect::<Vec<_>>(),
            ["cluster/_job-results/00000000000000000000000000000000.json"]
        );
        a.stop().await;
        let b = node(&world, "b", 4, &blobs, &log, Some(300));
        wait_for(
            &log,
            Duration::from_secs(10),
            "the next leader's verdict",
            |l| {
                l.iter()
                    .any(|(who, e)| who == "b" && matches!(e, Event::AlreadyDone { .. }))
            },
        )
        .await;
        let b_events = events_of(&log, "b");
        assert!(
            !b_events
                .iter()
                .any(|e| matches!(e, Event::Submitted { .. } | Event::Restored { .. })),
            "a finished job was started again: {b_events:?}"
        );
        b.stop().await;
    }
}
