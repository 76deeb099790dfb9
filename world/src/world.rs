//! The simulated HA world: the API server host, the blob store host, N candidates each running the fenced elector and
//! the reference job master through an unmodified `kube::Client` over simulated TCP, observers
//! following the leader information, a blob store, and a fault schedule applied on top. Two
//! phases: faults, then healed. Everything that could leak nondeterminism is pinned to the seed:
//! turmoil's RNG and epoch, each host's tokio runtime (`tokio_unstable`), the elector's jitter,
//! the retrieval backoff, the server's and the blob store's fault decisions; maps are ordered.
//!
//! ```
//! use khaos_world::world::{WorldConfig, run};
//! let mut config = WorldConfig::new(7);
//! config.fault_phase_ms = 5_000;
//! config.healed_phase_ms = 20_000;
//! let first = run(&config).unwrap();
//! assert_eq!(first.digest, run(&config).unwrap().digest, "the same seed, the same history");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use khaos_elector::blob::{BlobFaults, MemoryBlobStore};
use khaos_elector::clock::Clock;
use khaos_elector::flaws::Flaws;
use khaos_elector::jobmaster::{Event, JobMaster, JobMasterConfig};
use khaos_elector::retrieval::{LeaderRetriever, leader_key};
use khaos_elector::store::{cluster_lock_name, cluster_map_name};
use khaos_elector::{Elector, ElectorConfig, LockKind, Timing};
use khaos_sim::apiserver::{ApiServer, Clock as ServerClock, Faults, ServerConfig};
use khaos_sim::transport::{self, ClientConfig};
use serde_json::json;

use crate::blobhost::{self, RemoteBlobs};
use crate::history::{self, Entry, FaultAction, Record, WorldEvent};
use crate::schedule::{APISERVER, BLOBSTORE, Fault, LEADER, STANDBY, Schedule};

/// The wall-clock time the simulation starts at (pinned: records and timestamps reproduce).
pub const EPOCH_SECONDS: u64 = 1_798_761_600; // 2027-01-01T00:00:00Z

/// The blob store host's port.
pub const BLOB_PORT: u16 = 9000;

/// turmoil's default bound on one message's latency, which liveness bounds include.
pub const NETWORK_DELAY_MAX: Duration = Duration::from_millis(100);

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// The seed: everything in the run follows from it and the settings below.
    pub seed: u64,
    /// Candidates (`node-a`, `node-b`, ...).
    pub nodes: usize,
    /// Observers following the leader information (`observer-a`, ...).
    pub observers: usize,
    /// The lock kind.
    pub lock: LockKind,
    /// Lease duration, renew deadline, retry period.
    pub timing: Timing,
    /// The job master's settings (namespace and cluster come from here).
    pub job: JobMasterConfig,
    /// How long faults may strike, in simulated milliseconds.
    pub fault_phase_ms: u64,
    /// How long the healed phase lasts (liveness is judged in it).
    pub healed_phase_ms: u64,
    /// The faults.
    pub schedule: Schedule,
    /// Extra settings recorded in the history's first line (scenario name, swarm draw, ...).
    pub label: serde_json::Value,
    /// The simulation's step: messages are delivered at step boundaries (timers inside a host
    /// still fire at their exact instants). 10 ms by default, TigerBeetle's tick; 1 ms is
    /// turmoil's default and about ten times slower.
    pub tick: Duration,
    /// Known bugs switched on in every candidate and observer (the regression corpus); none by
    /// default.
    pub flaws: Flaws,
}

/// The default step of the simulation.
pub const TICK_DEFAULT: Duration = Duration::from_millis(10);

impl WorldConfig {
    /// Three candidates, one observer, the ConfigMap lock, validated default timing (15/10/2 s),
    /// a checkpoint every 2 s, 60 s of faults (none scheduled) and 60 s healed.
    pub fn new(seed: u64) -> WorldConfig {
        let mut job = JobMasterConfig::new("default", "khaos");
        job.checkpoint_interval = Duration::from_secs(2);
        WorldConfig {
            seed,
            nodes: 3,
            observers: 1,
            lock: LockKind::ConfigMap,
            timing: Timing::default(),
            job,
            fault_phase_ms: 60_000,
            healed_phase_ms: 60_000,
            schedule: Schedule::default(),
            label: json!({}),
            tick: TICK_DEFAULT,
            flaws: Flaws::NONE,
        }
    }

    /// The candidates' names.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes).map(|i| name("node", i)).collect()
    }

    /// The observers' names.
    pub fn observer_names(&self) -> Vec<String> {
        (0..self.observers).map(|i| name("observer", i)).collect()
    }

    /// The settings as recorded in the history.
    pub fn settings(&self) -> serde_json::Value {
        json!({
            "seed": self.seed,
            "label": self.label,
            "nodes": self.nodes,
            "observers": self.observers,
            "lock": self.lock.to_string(),
            "namespace": self.job.namespace,
            "cluster_id": self.job.cluster_id,
            "job_id": self.job.job_id,
            "lease_duration_ms": millis(self.timing.lease_duration()),
            "renew_deadline_ms": millis(self.timing.renew_deadline()),
            "retry_period_ms": millis(self.timing.retry_period()),
            "unchecked_timing": self.timing.is_unchecked(),
            "checkpoint_interval_ms": millis(self.job.checkpoint_interval),
            "finish_at_records": self.job.finish_at_records,
            "fault_phase_ms": self.fault_phase_ms,
            "healed_phase_ms": self.healed_phase_ms,
            "tick_ms": millis(self.tick),
            "flaws": self.flaws,
            "schedule": self.schedule,
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn name(kind: &str, index: usize) -> String {
    let letter = char::from(b'a' + u8::try_from(index % 26).expect("small"));
    if index < 26 {
        format!("{kind}-{letter}")
    } else {
        format!("{kind}-{letter}{}", index / 26)
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// The history.
    pub history: Vec<Entry>,
    /// The history as JSON lines.
    pub jsonl: String,
    /// Its digest ([`history::digest`]).
    pub digest: String,
    /// Simulated time covered.
    pub simulated: Duration,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The schedule asks for something the world cannot do.
    #[error("invalid schedule: {0}")]
    Schedule(String),
    /// Host software failed (a panic or an error inside the simulation).
    #[error("simulation failed at {at_ms} ms: {message}")]
    Sim {
        /// When.
        at_ms: u64,
        /// What turmoil reported.
        message: String,
    },
}

/// The shared history being written: entries in the order things happen (turmoil runs one host
/// at a time), with the server's commits drained in before anything recorded after them.
#[derive(Clone)]
struct Recorder {
    inner: Arc<Mutex<Vec<Entry>>>,
    now_ms: Arc<AtomicU64>,
    server: ApiServer,
    /// Who believes it leads now (for faults aimed at `@leader`).
    leaders: Arc<Mutex<BTreeSet<String>>>,
}

impl Recorder {
    fn push(&self, node: &str, record: Record) {
        {
            let mut leaders = self.leaders.lock().expect("not poisoned");
            match &record {
                Record::Job(Event::Granted { .. }) => {
                    leaders.insert(node.to_owned());
                }
                Record::Job(Event::Revoked { .. })
                | Record::World(WorldEvent::Crashed {} | WorldEvent::Stopped { .. }) => {
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

    fn world(&self, node: &str, event: WorldEvent) {
        self.push(node, Record::World(event));
    }

    fn drain(&self) {
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
        entries.push(history::commit_entry(t_ms, commit));
    }
}

/// A node's clock: simulated time, run fast or slow by the drift the schedule sets, with a wall
/// clock offset. Sleeps are scaled by the same rate, so a drifting node's timers drift too.
#[derive(Clone)]
struct SimClock {
    now_ms: Arc<AtomicU64>,
    state: Arc<Mutex<ClockState>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct ClockState {
    /// Global simulated time of the last rate change.
    anchor_ms: u64,
    /// This clock's reading then, in microseconds.
    anchor_us: u64,
    /// The rate since then.
    ppm: i64,
    /// Wall clock offset.
    wall_offset_ms: i64,
}

impl ClockState {
    fn reading_us(&self, now_ms: u64) -> u64 {
        let elapsed_us = now_ms.saturating_sub(self.anchor_ms) * 1000;
        let scaled = elapsed_us as f64 * (1.0 + self.ppm as f64 / 1e6);
        self.anchor_us + scaled as u64
    }

    fn set_ppm(&mut self, now_ms: u64, ppm: i64) {
        self.anchor_us = self.reading_us(now_ms);
        self.anchor_ms = now_ms;
        self.ppm = ppm;
    }
}

impl Clock for SimClock {
    fn monotonic(&self) -> Duration {
        let now = self.now_ms.load(Ordering::Relaxed);
        Duration::from_micros(self.state.lock().expect("not poisoned").reading_us(now))
    }

    fn wall(&self) -> SystemTime {
        let state = *self.state.lock().expect("not poisoned");
        let now = self.now_ms.load(Ordering::Relaxed);
        let reading = Duration::from_micros(state.reading_us(now));
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECONDS) + reading;
        let offset = Duration::from_millis(state.wall_offset_ms.unsigned_abs());
        if state.wall_offset_ms >= 0 {
            wall + offset
        } else {
            wall - offset
        }
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let ppm = self.state.lock().expect("not poisoned").ppm;
        Box::pin(tokio::time::sleep(duration.div_f64(1.0 + ppm as f64 / 1e6)))
    }
}

/// What the world controls in one node from outside.
#[derive(Clone)]
struct Control {
    clock: Arc<Mutex<ClockState>>,
    stop: tokio::sync::watch::Sender<bool>,
    incarnation: Arc<AtomicU64>,
}

impl Control {
    fn new() -> Control {
        Control {
            clock: Arc::default(),
            stop: tokio::sync::watch::Sender::new(false),
            incarnation: Arc::default(),
        }
    }
}

/// A node's state as the active faults want it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NodeState {
    Running,
    Paused,
    Stopped,
    Crashed,
}

/// Run the world once.
pub fn run(config: &WorldConfig) -> Result<RunOutput, WorldError> {
    let observers = config.observer_names();
    config
        .schedule
        .validate(&config.node_names(), &observers)
        .map_err(WorldError::Schedule)?;
    let total_ms = config.fault_phase_ms + config.healed_phase_ms;
    let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECONDS);
    let server = ApiServer::new(ServerConfig {
        seed: config.seed,
        clock: ServerClock::Simulated { epoch },
        record_commits: true,
        ..ServerConfig::default()
    });
    let recorder = Recorder {
        inner: Arc::default(),
        now_ms: Arc::default(),
        server: server.clone(),
        leaders: Arc::default(),
    };
    recorder.world(
        "world",
        WorldEvent::Run {
            settings: config.settings(),
        },
    );

    let mut sim = turmoil::Builder::new()
        .rng_seed(config.seed)
        .epoch(epoch)
        .max_message_latency(NETWORK_DELAY_MAX)
        .tick_duration(config.tick)
        .simulation_duration(Duration::from_millis(total_ms) + Duration::from_secs(60))
        .build();
    let host_server = server.clone();
    sim.host(APISERVER, move || host_server.clone().serve_simulated(6443));

    let blobs = MemoryBlobStore::new(config.seed ^ 0xB10B);
    let host_blobs = blobs.clone();
    sim.host(BLOBSTORE, move || {
        blobhost::serve(host_blobs.clone(), BLOB_PORT)
    });
    let nodes = config.node_names();
    let mut controls: BTreeMap<String, Control> = BTreeMap::new();
    for (index, node) in nodes.iter().enumerate() {
        let control = Control::new();
        controls.insert(node.clone(), control.clone());
        let software = NodeSoftware {
            identity: node.clone(),
            config: config.clone(),
            seed: config.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            recorder: recorder.clone(),
            control,
        };
        sim.host(node.as_str(), move || software.clone().run());
    }
    for (index, observer) in observers.iter().enumerate() {
        let recorder = recorder.clone();
        let mut job = config.job.clone();
        job.flaws = config.flaws;
        let seed = config.seed ^ 0x0B5E_0000 ^ index as u64;
        let identity = observer.clone();
        sim.host(observer.as_str(), move || {
            observe(identity.clone(), job.clone(), seed, recorder.clone())
        });
    }

    recorder.world(
        "world",
        WorldEvent::Phase {
            phase: "faults".into(),
        },
    );
    let mut hosts = vec![APISERVER.to_owned(), BLOBSTORE.to_owned()];
    hosts.extend(nodes.iter().cloned());
    hosts.extend(observers.iter().cloned());
    let mut world = Applied::new(nodes, hosts, controls, server.clone(), blobs.clone());
    let schedule = &config.schedule.faults;
    let mut healed = false;
    loop {
        let now_ms = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
        recorder.now_ms.store(now_ms, Ordering::Relaxed);
        recorder.drain();
        if !healed {
            let active: BTreeSet<usize> = if now_ms >= config.fault_phase_ms {
                BTreeSet::new()
            } else {
                // An instant fault (a restart, a compaction, a reset) is active for one step.
                let tick_ms = millis(config.tick).max(1);
                (0..schedule.len())
                    .filter(|i| {
                        let fault = &schedule[*i];
                        fault.at_ms <= now_ms && now_ms < fault.at_ms + fault.for_ms.max(tick_ms)
                    })
                    .collect()
            };
            world.reconcile(&mut sim, schedule, &active, now_ms, &recorder);
            if now_ms >= config.fault_phase_ms {
                healed = true;
                recorder.world(
                    "world",
                    WorldEvent::Phase {
                        phase: "healed".into(),
                    },
                );
            }
        }
        if now_ms >= total_ms {
            break;
        }
        if let Err(error) = sim.step() {
            return Err(WorldError::Sim {
                at_ms: now_ms,
                message: error.to_string(),
            });
        }
    }
    recorder.drain();
    recorder.world(
        "world",
        WorldEvent::Blobs {
            paths: blobs.snapshot().into_keys().collect(),
        },
    );
    recorder.world(
        "world",
        WorldEvent::Phase {
            phase: "end".into(),
        },
    );
    let history = recorder.inner.lock().expect("not poisoned").clone();
    let jsonl = history::to_jsonl(&history);
    Ok(RunOutput {
        digest: history::digest(&jsonl),
        jsonl,
        history,
        simulated: sim.elapsed(),
    })
}

/// The software of one candidate host; turmoil runs it afresh after every crash or stop.
#[derive(Clone)]
struct NodeSoftware {
    identity: String,
    config: WorldConfig,
    seed: u64,
    recorder: Recorder,
    control: Control,
}

impl NodeSoftware {
    async fn run(self) -> turmoil::Result {
        let incarnation = self.control.incarnation.fetch_add(1, Ordering::Relaxed);
        let identity = self.identity.as_str();
        let timing = self.config.timing;
        let client = transport::client(
            ClientConfig::new(format!("{APISERVER}:6443"), identity)
                .request_timeout(timing.renew_deadline().min(Duration::from_secs(5))),
        );
        let clock = Arc::new(SimClock {
            now_ms: Arc::clone(&self.recorder.now_ms),
            state: Arc::clone(&self.control.clock),
        });
        let blobs = Arc::new(RemoteBlobs::new(
            BLOBSTORE,
            BLOB_PORT,
            timing.renew_deadline().min(Duration::from_secs(5)),
        ));
        self.recorder.world(identity, WorldEvent::Started {});
        let events = {
            let recorder = self.recorder.clone();
            let identity = self.identity.clone();
            move |event: Event| recorder.push(&identity, Record::Job(event))
        };
        let mut job = self.config.job.clone();
        job.address = format!("{identity}:8081");
        job.flaws = self.config.flaws;
        let master =
            JobMaster::with_clock(client.clone(), blobs, job, Arc::new(events), clock.clone());
        let lock = cluster_lock_name(&self.config.job.cluster_id, self.config.lock);
        let elector = ElectorConfig::new(
            identity,
            &self.config.job.namespace,
            &lock,
            self.config.lock,
            timing,
        )
        .seed(self.seed.wrapping_add(incarnation))
        .flaws(self.config.flaws);
        let handle = Elector::new(client, elector)
            .with_clock(clock)
            .with_contender(Arc::new(master))
            .spawn();
        let mut stop = self.control.stop.subscribe();
        let _ = stop.wait_for(|stop| *stop).await;
        self.recorder.world(identity, WorldEvent::Stopping {});
        handle.stop().await;
        self.recorder
            .world(identity, WorldEvent::Stopped { graceful: true });
        Ok(())
    }
}

async fn observe(
    identity: String,
    job: JobMasterConfig,
    seed: u64,
    recorder: Recorder,
) -> turmoil::Result {
    let client = transport::client(ClientConfig::new(format!("{APISERVER}:6443"), &identity));
    let retriever = LeaderRetriever::new(
        client,
        &job.namespace,
        &cluster_map_name(&job.cluster_id),
        &leader_key(&job.component),
    )
    .with_flaws(job.flaws);
    let mut leader = retriever.spawn(seed);
    while leader.changed().await.is_ok() {
        let value = leader.borrow_and_update().as_ref().map(|l| l.to_value());
        recorder.world(&identity, WorldEvent::Leader { leader: value });
    }
    Ok(())
}

/// What the world has applied so far, to apply only differences.
struct Applied {
    nodes: Vec<String>,
    /// Every host of the simulation.
    hosts: Vec<String>,
    controls: BTreeMap<String, Control>,
    server: ApiServer,
    blobs: MemoryBlobStore,
    active: BTreeSet<usize>,
    /// Active faults with `@leader` and `@standby` resolved when they started.
    resolved: BTreeMap<usize, Fault>,
    cut: BTreeSet<(String, String)>,
    /// Clogged pairs of hosts (in name order): messages both ways are held until the clog ends.
    clogged: BTreeSet<(String, String)>,
    states: BTreeMap<String, NodeState>,
    server_faults: Faults,
    blob_faults: BlobFaults,
}

impl Applied {
    fn new(
        nodes: Vec<String>,
        hosts: Vec<String>,
        controls: BTreeMap<String, Control>,
        server: ApiServer,
        blobs: MemoryBlobStore,
    ) -> Applied {
        let states = nodes
            .iter()
            .map(|n| (n.clone(), NodeState::Running))
            .collect();
        Applied {
            nodes,
            hosts,
            controls,
            server,
            blobs,
            active: BTreeSet::new(),
            resolved: BTreeMap::new(),
            cut: BTreeSet::new(),
            clogged: BTreeSet::new(),
            states,
            server_faults: Faults::default(),
            blob_faults: BlobFaults::default(),
        }
    }

    /// Make the world what the `active` faults ask for, recording each start and end.
    fn reconcile(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        schedule: &[crate::schedule::Scheduled],
        active: &BTreeSet<usize>,
        now_ms: u64,
        recorder: &Recorder,
    ) {
        if *active == self.active {
            return;
        }
        for ended in self.active.difference(active) {
            let fault = self
                .resolved
                .remove(ended)
                .expect("resolved when it started");
            let fault = fault.to_string();
            let action = FaultAction::End;
            recorder.world("world", WorldEvent::Fault { action, fault });
        }
        let started: Vec<usize> = active.difference(&self.active).copied().collect();
        for index in &started {
            let fault = self.resolve(&schedule[*index].fault, recorder);
            let (action, text) = (FaultAction::Start, fault.to_string());
            recorder.world(
                "world",
                WorldEvent::Fault {
                    action,
                    fault: text,
                },
            );
            self.resolved.insert(*index, fault);
        }
        self.active = active.clone();
        let faults: Vec<Fault> = self.resolved.values().cloned().collect();

        // Instant faults act when they start.
        for index in &started {
            match &self.resolved[index] {
                Fault::ServerRestart => self.server.restart(),
                Fault::Reset { node } => self.server.reset_connections(node),
                Fault::Compact => {
                    self.server.compact();
                }
                _ => {}
            }
        }

        // Links: each direction is healthy, cut (messages lost) or, when its pair is clogged,
        // held (messages delivered when the clog ends); a cut wins over a clog.
        let mut cut = BTreeSet::new();
        let mut clogged = BTreeSet::new();
        for fault in &faults {
            match fault {
                // A role resolved to the host named on the other end: a link to itself is no link.
                Fault::Partition { a, b, .. } | Fault::Clog { a, b } if a == b => {}
                Fault::Partition { a, b, oneway } => {
                    cut.insert((a.clone(), b.clone()));
                    if !oneway {
                        cut.insert((b.clone(), a.clone()));
                    }
                }
                Fault::Clog { a, b } => {
                    clogged.insert(pair(a, b));
                }
                _ => {}
            }
        }
        let changed: BTreeSet<(String, String)> = self
            .cut
            .symmetric_difference(&cut)
            .map(|(a, b)| pair(a, b))
            .chain(self.clogged.symmetric_difference(&clogged).cloned())
            .collect();
        for (a, b) in &changed {
            let (a, b) = (a.as_str(), b.as_str());
            let key = (a.to_owned(), b.to_owned());
            if clogged.contains(&key) {
                sim.hold(a, b);
            } else if self.clogged.contains(&key) {
                sim.release(a, b);
            } else {
                sim.repair_oneway(a, b);
                sim.repair_oneway(b, a);
            }
            for (from, to) in [(a, b), (b, a)] {
                if cut.contains(&(from.to_owned(), to.to_owned())) {
                    sim.partition_oneway(from, to);
                }
            }
        }
        self.cut = cut;
        self.clogged = clogged;

        // Clocks.
        for (node, control) in &self.controls {
            let ppm: i64 = faults
                .iter()
                .filter_map(|f| match f {
                    Fault::Drift { node: n, ppm } if n == node => Some(*ppm),
                    _ => None,
                })
                .sum::<i64>()
                // Overlapping drifts add up; a clock never stops or runs backwards.
                .clamp(-900_000, 900_000);
            let offset: i64 = faults
                .iter()
                .filter_map(|f| match f {
                    Fault::WallOffset { node: n, ms } if n == node => Some(*ms),
                    _ => None,
                })
                .sum();
            let mut clock = control.clock.lock().expect("not poisoned");
            if clock.ppm != ppm {
                clock.set_ppm(now_ms, ppm);
            }
            clock.wall_offset_ms = offset;
        }

        // The API server's and the blob store's faults.
        let mut server_faults = Faults::default();
        let mut blob_faults = BlobFaults::default();
        for fault in &faults {
            match fault {
                Fault::Server { faults } => merge(&mut server_faults, faults),
                Fault::Blob { faults } => blob_faults = *faults,
                _ => {}
            }
        }
        if server_faults != self.server_faults {
            self.server
                .set_faults(server_faults.clone())
                .expect("the schedule was validated");
            self.server_faults = server_faults;
        }
        if blob_faults != self.blob_faults {
            self.blobs
                .set_faults(blob_faults)
                .expect("the schedule was validated");
            self.blob_faults = blob_faults;
        }

        // Nodes.
        for node in self.nodes.clone() {
            let wanted = faults
                .iter()
                .map(|f| match f {
                    Fault::Crash { node: n } if *n == node => NodeState::Crashed,
                    Fault::Stop { node: n } if *n == node => NodeState::Stopped,
                    Fault::Pause { node: n } if *n == node => NodeState::Paused,
                    _ => NodeState::Running,
                })
                .max()
                .unwrap_or(NodeState::Running);
            let current = self.states[&node];
            if wanted != current {
                self.transition(sim, &node, current, wanted, recorder);
                self.states.insert(node, wanted);
            }
        }
    }

    /// Aim a fault at a role: `@leader` is the node that believes it leads now (the first such
    /// in name order; the first node if none does), `@standby` the first node that does not.
    fn resolve(&self, fault: &Fault, recorder: &Recorder) -> Fault {
        let leaders = recorder.leaders.lock().expect("not poisoned").clone();
        let role = |name: &str| -> String {
            match name {
                LEADER => leaders
                    .iter()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| self.nodes[0].clone()),
                STANDBY => self
                    .nodes
                    .iter()
                    .find(|n| !leaders.contains(*n))
                    .cloned()
                    .unwrap_or_else(|| self.nodes[0].clone()),
                other => other.to_owned(),
            }
        };
        let mut fault = fault.clone();
        match &mut fault {
            Fault::Partition { a, b, .. } | Fault::Clog { a, b } => {
                *a = role(a);
                *b = role(b);
            }
            Fault::Crash { node }
            | Fault::Stop { node }
            | Fault::Pause { node }
            | Fault::Drift { node, .. }
            | Fault::WallOffset { node, .. }
            | Fault::Reset { node } => *node = role(node),
            // Rules aimed at a role name the node that holds it now.
            Fault::Server { faults } => {
                let rules = faults
                    .latency
                    .iter_mut()
                    .map(|r| &mut r.rule)
                    .chain(faults.hang.iter_mut())
                    .chain(faults.errors.iter_mut().map(|r| &mut r.rule))
                    .chain(faults.ambiguous.iter_mut().map(|r| &mut r.rule));
                for rule in rules {
                    for client in &mut rule.clients {
                        *client = role(client);
                    }
                }
            }
            Fault::ServerRestart | Fault::Compact | Fault::Blob { .. } => {}
        }
        fault
    }

    fn transition(
        &self,
        sim: &mut turmoil::Sim<'_>,
        node: &str,
        from: NodeState,
        to: NodeState,
        recorder: &Recorder,
    ) {
        let control = &self.controls[node];
        // Leave the current state.
        match from {
            NodeState::Running => {}
            NodeState::Paused => sim.resume(node),
            NodeState::Stopped | NodeState::Crashed => {}
        }
        match to {
            NodeState::Running | NodeState::Paused => {
                if matches!(from, NodeState::Stopped | NodeState::Crashed) {
                    control.stop.send_replace(false);
                    self.isolated(sim, node, |sim| sim.bounce(node));
                }
                if to == NodeState::Paused {
                    sim.pause(node);
                }
            }
            NodeState::Stopped => {
                control.stop.send_replace(true);
            }
            NodeState::Crashed => {
                self.isolated(sim, node, |sim| sim.crash(node));
                recorder.world(node, WorldEvent::Crashed {});
            }
        }
    }
}

impl Applied {
    /// Run `f` (a crash or a restart) with `node` cut off from every host, then restore the links.
    ///
    /// Both drop the host's tokio runtime, which drops its tasks in an order that depends on
    /// tokio's process-wide task numbering, so on whatever else the process is doing (another
    /// sweep thread, another test). Whatever the dropped tasks send (a FIN, a reset) would reach
    /// the network in that order; cut off, it is lost, as from a machine that died, and the run
    /// stays a function of its seed alone.
    fn isolated(
        &self,
        sim: &mut turmoil::Sim<'_>,
        node: &str,
        f: impl FnOnce(&mut turmoil::Sim<'_>),
    ) {
        let mut cut_now = Vec::new();
        for other in self.hosts.iter().filter(|h| *h != node) {
            for (from, to) in [(node, other.as_str()), (other.as_str(), node)] {
                if !self.cut.contains(&(from.to_owned(), to.to_owned())) {
                    // Only what is sent during the crash is lost; what was already on the wire
                    // before it still arrives, as from a machine that died mid-flight.
                    sim.cut_oneway(from, to);
                    cut_now.push((from.to_owned(), to.to_owned()));
                }
            }
        }
        f(sim);
        for (from, to) in cut_now {
            sim.repair_oneway(from.as_str(), to.as_str());
        }
        // A repair clears a clog: hold again what was clogged, then cut again what is cut.
        for (a, b) in &self.clogged {
            if a == node || b == node {
                sim.hold(a.as_str(), b.as_str());
                for (from, to) in [(a, b), (b, a)] {
                    if self.cut.contains(&(from.clone(), to.clone())) {
                        sim.partition_oneway(from.as_str(), to.as_str());
                    }
                }
            }
        }
    }
}

/// A pair of hosts in name order.
fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

/// Add `more` to `into`: rule lists concatenate; the last watch or stale-read setting wins.
fn merge(into: &mut Faults, more: &Faults) {
    into.latency.extend(more.latency.iter().cloned());
    into.hang.extend(more.hang.iter().cloned());
    into.errors.extend(more.errors.iter().cloned());
    into.ambiguous.extend(more.ambiguous.iter().cloned());
    if more.watch != Faults::default().watch {
        into.watch = more.watch.clone();
    }
    if more.stale_reads.is_some() {
        into.stale_reads = more.stale_reads.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_letters() {
        assert_eq!(name("node", 0), "node-a");
        assert_eq!(name("node", 2), "node-c");
        assert_eq!(name("node", 27), "node-b1");
    }

    #[test]
    fn a_drifting_clock_keeps_its_reading_across_rate_changes() {
        let mut state = ClockState::default();
        assert_eq!(state.reading_us(1_000), 1_000_000);
        state.set_ppm(1_000, 100_000); // 10 % fast from t = 1 s
        assert_eq!(state.reading_us(2_000), 2_100_000);
        state.set_ppm(2_000, 0);
        assert_eq!(state.reading_us(3_000), 3_100_000);
    }
}
