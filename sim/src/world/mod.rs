//! The simulated HA world, the executor of a [`Setup`]: the API server host, the blob store host,
//! N candidates each running the fenced elector and the reference job master through an
//! unmodified `kube::Client` over simulated TCP, observers following the leader information, and
//! the setup's fault schedule applied on top. Two phases: faults, then healed. Everything that
//! could leak nondeterminism is pinned to the seed: turmoil's RNG and epoch, each host's tokio
//! runtime (`tokio_unstable`), the elector's jitter, the retrieval backoff, the server's and the
//! blob store's fault decisions; maps are ordered.
//!
//! - `recorder`: the history as it is written, in causal order.
//! - `hosts`: the candidates' and observers' software.
//! - `reconciler`: the `FaultReconciler` that applies the active faults.
//! - `clock`: each node's drifting clock.
//! - [`pods`]: the candidates as the pods of a ReplicaSet, for setups that ask for it.
//! - [`blobhost`]: the blob store as a host of the simulation.
//!
//! ```
//! use khaos_scenarios::Setup;
//! use khaos_sim::world::{Options, run};
//! let mut setup = Setup::new(7);
//! setup.fault_phase_ms = 5_000;
//! setup.healed_phase_ms = 20_000;
//! let first = run(&setup, &Options::default()).unwrap();
//! let again = run(&setup, &Options::default()).unwrap();
//! assert_eq!(first.digest, again.digest, "the same seed, the same history");
//! ```

pub mod blobhost;
mod clock;
mod hosts;
pub mod pods;
mod reconciler;
mod recorder;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use khaos_elector::blob::MemoryBlobStore;
use khaos_elector::flaws::{Flaw, Flaws};
use khaos_elector::timing::millis;
use khaos_reports::faults::{APISERVER, BLOBSTORE, ScheduleError};
use khaos_reports::history::{self, Entry, HARNESS, HarnessEvent, Phase};
use khaos_reports::settings::Settings;
use khaos_scenarios::Setup;

use self::hosts::{Control, NodeSoftware, observe};
use self::pods::PodHosts;
use self::reconciler::FaultReconciler;
use self::recorder::Recorder;
pub use self::recorder::commit_entry;
use crate::apiserver::{ApiServer, Clock as ServerClock, ServerConfig};

/// The wall-clock time the simulation starts at (pinned: records and timestamps reproduce).
pub const EPOCH_SECONDS: u64 = 1_798_761_600; // 2027-01-01T00:00:00Z

/// The blob store host's port.
pub const BLOB_PORT: u16 = 9000;

/// turmoil's default bound on one message's latency, which liveness bounds include.
pub const NETWORK_DELAY_MAX: Duration = Duration::from_millis(100);

/// The default step of the simulation.
pub const TICK_DEFAULT: Duration =
    Duration::from_millis(khaos_reports::settings::SIM_TICK_MS_DEFAULT);

/// How the simulator runs a setup, beyond what the setup says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The simulation's step: messages are delivered at step boundaries (timers inside a host
    /// still fire at their exact instants). 10 ms by default, TigerBeetle's tick; 1 ms is
    /// turmoil's default and about ten times slower.
    pub tick: Duration,
    /// Known bugs switched on in every candidate and observer (the regression corpus); none by
    /// default.
    pub flaws: Flaws,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            tick: TICK_DEFAULT,
            flaws: Flaws::NONE,
        }
    }
}

impl Options {
    /// These options with `flaw` switched on too.
    #[must_use]
    pub fn flaw(mut self, flaw: Flaw) -> Options {
        self.flaws = self.flaws.with(flaw);
        self
    }
}

/// The settings of a simulated run, as its history's first line records them: everything the
/// checkers judge it by and everything that replays it.
pub fn settings(setup: &Setup, options: &Options) -> Settings {
    Settings {
        scenario: setup.scenario.clone(),
        seed: setup.seed,
        drawn: setup.drawn.clone(),
        nodes: setup.nodes,
        observers: setup.observers,
        lock: setup.lock,
        namespace: setup.job.namespace.clone(),
        cluster_id: setup.job.cluster_id.clone(),
        job_id: setup.job.job_id.clone(),
        lease_duration_ms: millis(setup.timing.lease_duration()),
        renew_deadline_ms: millis(setup.timing.renew_deadline()),
        retry_period_ms: millis(setup.timing.retry_period()),
        unchecked_timing: setup.timing.is_unchecked(),
        checkpoint_interval_ms: millis(setup.job.checkpoint_interval),
        finish_at_records: setup.job.finish_at_records,
        fault_phase_ms: setup.fault_phase_ms,
        healed_phase_ms: setup.healed_phase_ms,
        tick_ms: Some(millis(options.tick)),
        network_delay_max_ms: millis(NETWORK_DELAY_MAX),
        // Without a watch fault, a simulated watch delivers an event within the network's delay.
        watch_delay_max_ms: 0,
        flaws: options.flaws,
        schedule: setup.schedule.clone(),
        pods: setup.pods,
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
    Schedule(#[from] ScheduleError),
    /// The setup's settings cannot be judged (a timing that is neither valid nor marked
    /// unchecked).
    #[error(transparent)]
    Settings(#[from] khaos_reports::settings::SettingsError),
    /// Host software failed (a panic or an error inside the simulation).
    #[error("simulation failed at {at_ms} ms: {message}")]
    Sim {
        /// When.
        at_ms: u64,
        /// What turmoil reported.
        message: String,
    },
}

/// Run `setup` once in the simulator, made as `options` say.
pub fn run(setup: &Setup, options: &Options) -> Result<RunOutput, WorldError> {
    let config = setup;
    let observers = config.observer_names();
    config
        .schedule
        .validate(&config.node_names(), &observers)
        .map_err(WorldError::Schedule)?;
    pods::validate(config).map_err(WorldError::Schedule)?;
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
    recorder.harness(
        HARNESS,
        HarnessEvent::Run {
            settings: Box::new(settings(setup, options)),
        },
    );

    let mut sim = turmoil::Builder::new()
        .rng_seed(config.seed)
        .epoch(epoch)
        .max_message_latency(NETWORK_DELAY_MAX)
        .tick_duration(options.tick)
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
    let mut pod_hosts = config.pods.map(|pods| {
        let template = NodeSoftware {
            identity: String::new(),
            setup: setup.clone(),
            flaws: options.flaws,
            seed: config.seed,
            recorder: recorder.clone(),
            control: Control::new(),
        };
        PodHosts::new(&mut sim, config, pods, template)
    });
    for (index, node) in nodes.iter().enumerate() {
        let control = Control::new();
        controls.insert(node.clone(), control.clone());
        let software = NodeSoftware {
            identity: node.clone(),
            setup: setup.clone(),
            flaws: options.flaws,
            seed: config.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            recorder: recorder.clone(),
            control,
        };
        sim.host(node.as_str(), move || software.clone().run());
    }
    for (index, observer) in observers.iter().enumerate() {
        let recorder = recorder.clone();
        let mut job = config.job.clone();
        job.flaws = options.flaws;
        let seed = config.seed ^ 0x0B5E_0000 ^ index as u64;
        let identity = observer.clone();
        sim.host(observer.as_str(), move || {
            observe(identity.clone(), job.clone(), seed, recorder.clone())
        });
    }

    recorder.harness(
        HARNESS,
        HarnessEvent::Phase {
            phase: Phase::Faults,
        },
    );
    let mut hosts = vec![APISERVER.to_owned(), BLOBSTORE.to_owned()];
    hosts.extend(nodes.iter().cloned());
    hosts.extend(observers.iter().cloned());
    if pod_hosts.is_some() {
        hosts.extend(PodHosts::hosts().map(str::to_owned));
    }
    let mut world = FaultReconciler::new(nodes, hosts, controls, server.clone(), blobs.clone());
    let schedule = &config.schedule.faults;
    let mut healed = false;
    loop {
        let now_ms = millis(sim.elapsed());
        recorder.now_ms.store(now_ms, Ordering::Relaxed);
        recorder.drain();
        // Pods first: a process that ended in the last step is gone before faults aim at roles.
        if let Some(pods) = &mut pod_hosts {
            pods.step(&mut sim, &mut world, &recorder);
        }
        if !healed {
            let active: BTreeSet<usize> = if now_ms >= config.fault_phase_ms {
                BTreeSet::new()
            } else {
                // An instant fault (a restart, a compaction, a reset) is active for one step.
                let tick_ms = millis(options.tick).max(1);
                (0..schedule.len())
                    .filter(|i| {
                        let fault = &schedule[*i];
                        fault.at_ms <= now_ms && now_ms < fault.at_ms + fault.for_ms.max(tick_ms)
                    })
                    .collect()
            };
            world.reconcile(&mut sim, schedule, &active, now_ms, &recorder);
            if let Some(pods) = &pod_hosts {
                for (pod, grace) in world.take_deletes() {
                    pods.delete(&pod, grace);
                }
            }
            if now_ms >= config.fault_phase_ms {
                healed = true;
                recorder.harness(
                    HARNESS,
                    HarnessEvent::Phase {
                        phase: Phase::Healed,
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
    recorder.harness(
        HARNESS,
        HarnessEvent::Blobs {
            paths: blobs.snapshot().into_keys().collect(),
        },
    );
    recorder.harness(HARNESS, HarnessEvent::Phase { phase: Phase::End });
    let history = recorder.inner.lock().expect("not poisoned").clone();
    let jsonl = history::to_jsonl(&history);
    Ok(RunOutput {
        digest: history::digest(&jsonl),
        jsonl,
        history,
        simulated: sim.elapsed(),
    })
}
