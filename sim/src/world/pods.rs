//! The candidates as pods, for setups with [`Setup::pods`]: a controller manager host keeps a
//! ReplicaSet of `nodes` pods, a kubelet host runs them, and each pod's process is a simulated
//! host named after the pod, running the same candidate software as a fixed node.
//!
//! Both hosts are client code over simulated TCP, as in a real cluster: the controllers run
//! [`crate::cluster::manager::tick`], the kubelet runs [`crate::cluster::kubelet::PodRun`]'s
//! decisions, the very code `khaos serve --cluster` runs over local processes. The kubelet's
//! process runtime is the world: it asks for a start or a signal through [`Runtime`], and the
//! world starts a host, delivers SIGTERM as a graceful stop (unless the pod's first process
//! ignores it), and SIGKILL as a crash; it reports each exit back. Everything happens in the
//! simulation's steps, so a seed replays it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use khaos_reports::faults::{APISERVER, Fault, ScheduleError};
use khaos_reports::settings::Pods;
use khaos_scenarios::Setup;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use super::EPOCH_SECONDS;
use super::hosts::{Control, NodeSoftware};
use super::reconciler::FaultReconciler;
use super::recorder::Recorder;
use crate::cluster::kubelet::{self, Action, ForceDeleteGrace, PodRun, Signal};
use crate::cluster::manager;
use crate::transport::{self, ClientConfig};

/// The controller manager's host.
pub const CONTROLLERS: &str = "controllers";
/// The kubelet's host.
pub const KUBELET: &str = "kubelet";
/// The Kubernetes node every pod is bound to (the kubelet's).
pub const NODE: &str = "sim-node";
/// The ReplicaSet whose pods are the candidates.
pub const REPLICA_SET: &str = "khaos-ha";
/// The candidates' image (the simulated hosts run the candidate software whatever it says).
pub const IMAGE: &str = "khaos:sim";

/// How often the kubelet and the controllers look (a kubelet relists every second).
const PERIOD: Duration = Duration::from_secs(1);

/// What the kubelet asks of its process runtime, the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Runtime {
    /// Start the pod's process (its only container).
    Start {
        /// The pod's name: the host's.
        pod: String,
    },
    /// Signal the pod's process.
    Signal {
        /// The pod's name.
        pod: String,
        /// Which.
        signal: Signal,
    },
}

/// How a pod's process ended, as the world reports it to the kubelet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Exited {
    pub(super) pod: String,
    pub(super) code: i32,
    pub(super) signal: Option<i32>,
}

/// The kubelet's line to its runtime: requests one way, exits the other.
#[derive(Clone, Default)]
pub(super) struct RuntimeLine {
    requests: Arc<Mutex<Vec<Runtime>>>,
    exits: Arc<Mutex<Vec<Exited>>>,
}

impl RuntimeLine {
    pub(super) fn take_requests(&self) -> Vec<Runtime> {
        std::mem::take(&mut *self.requests.lock().expect("not poisoned"))
    }

    pub(super) fn exited(&self, exit: Exited) {
        self.exits.lock().expect("not poisoned").push(exit);
    }

    fn take_exits(&self) -> Vec<Exited> {
        std::mem::take(&mut *self.exits.lock().expect("not poisoned"))
    }

    fn request(&self, request: Runtime) {
        self.requests.lock().expect("not poisoned").push(request);
    }
}

/// The time in Unix milliseconds inside the simulation (the API server's clock).
fn unix_ms(recorder: &Recorder) -> i64 {
    let elapsed = recorder.now_ms.load(std::sync::atomic::Ordering::Relaxed);
    i64::try_from(EPOCH_SECONDS * 1000 + elapsed).expect("a simulated time fits")
}

/// The ReplicaSet of the candidates.
fn replica_set(setup: &Setup, pods: &Pods) -> ReplicaSet {
    let labels: BTreeMap<String, String> = [("app".to_owned(), REPLICA_SET.to_owned())].into();
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(REPLICA_SET.into()),
            namespace: Some(setup.job.namespace.clone()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(i32::try_from(setup.nodes).expect("a few replicas")),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "khaos".into(),
                        image: Some(IMAGE.into()),
                        ..Container::default()
                    }],
                    termination_grace_period_seconds: Some(i64::from(pods.grace_seconds)),
                    ..PodSpec::default()
                }),
            }),
            min_ready_seconds: None,
        },
        status: None,
    }
}

/// The controller manager: create the candidates' ReplicaSet, then keep it (and bind its pods).
pub(super) async fn controllers(setup: Setup, pods: Pods, recorder: Recorder) -> turmoil::Result {
    let client = // The identity `khaos serve --cluster` uses, so histories read the same.
    transport::client(ClientConfig::harness(format!("{APISERVER}:6443"), "kube-controller-manager"));
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &setup.job.namespace);
    let wanted = replica_set(&setup, &pods);
    loop {
        match sets.create(&PostParams::default(), &wanted).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 409 => break,
            Err(_) => tokio::time::sleep(PERIOD).await,
        }
    }
    loop {
        // A failed look (a fault, a conflict) is decided again at the next.
        let _ = manager::tick(&client, NODE, unix_ms(&recorder)).await;
        tokio::time::sleep(PERIOD).await;
    }
}

/// One pod on the kubelet's node.
struct Running {
    run: PodRun,
    pod: Pod,
}

/// The kubelet: each period, list the pods, report the exits the runtime saw, decide, act.
pub(super) async fn kubelet(pods: Pods, line: RuntimeLine, recorder: Recorder) -> turmoil::Result {
    let client = transport::client(ClientConfig::harness(
        format!("{APISERVER}:6443"),
        format!("kubelet/{NODE}"),
    ));
    let config = kubelet::Config {
        node: NODE.into(),
        force_delete: if pods.force_delete_full_grace {
            ForceDeleteGrace::Full
        } else {
            ForceDeleteGrace::Minimum
        },
        ..kubelet::Config::default()
    };
    let all: Api<Pod> = Api::all(client.clone());
    // By uid.
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    loop {
        tokio::time::sleep(PERIOD).await;
        let now = unix_ms(&recorder);
        for exit in line.take_exits() {
            let found = running
                .values_mut()
                .find(|r| r.pod.metadata.name.as_deref() == Some(exit.pod.as_str()));
            if let Some(r) = found {
                r.run.exited(&config, 0, exit.code, exit.signal, now);
            }
        }
        let Ok(listed) = all.list(&ListParams::default()).await else {
            continue;
        };
        let now = unix_ms(&recorder);
        let mut seen: BTreeMap<String, Pod> = BTreeMap::new();
        for pod in listed.items {
            let on_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE);
            let Some(uid) = pod.metadata.uid.clone().filter(|_| on_node) else {
                continue;
            };
            running.entry(uid.clone()).or_insert_with(|| Running {
                run: PodRun::new(&pod, now),
                pod: pod.clone(),
            });
            seen.insert(uid, pod);
        }
        let uids: Vec<String> = running.keys().cloned().collect();
        for uid in uids {
            let listed = seen.get(&uid);
            let r = running.get_mut(&uid).expect("listed above");
            if let Some(pod) = listed {
                r.pod = pod.clone();
            }
            let actions = r.run.decide(&config, listed, now);
            let name = r.pod.metadata.name.clone().unwrap_or_default();
            let namespace = r.pod.metadata.namespace.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            for action in actions {
                match action {
                    // One container: the candidate. The runtime starts it at its next step.
                    Action::Start { index } => {
                        line.request(Runtime::Start { pod: name.clone() });
                        let r = running.get_mut(&uid).expect("present");
                        r.run.started(index, now);
                    }
                    Action::Signal(signal) => line.request(Runtime::Signal {
                        pod: name.clone(),
                        signal,
                    }),
                    Action::WriteStatus(status) => {
                        let r = running.get_mut(&uid).expect("present");
                        let mut pod = r.pod.clone();
                        pod.status = Some(*status);
                        // A conflict or a pod gone: the next look sees the pod as it is now.
                        if let Ok(written) = api
                            .replace_status(&name, &PostParams::default(), &pod)
                            .await
                        {
                            r.pod = written;
                        }
                    }
                    Action::Remove => {
                        let _ = api.delete(&name, &kubelet::remove_params(&uid)).await;
                    }
                    Action::Forget => {
                        running.remove(&uid);
                    }
                }
            }
        }
    }
}

/// Pods the chaos client is to delete, with the grace to ask for.
type Deletes = Arc<Mutex<Vec<(String, Option<u32>)>>>;

/// The chaos client: deletes pods through the API when the world's schedule says so, as
/// `kubectl delete pod` or a chaos tool would.
pub(super) async fn chaos(namespace: String, deletes: Deletes) -> turmoil::Result {
    let client = transport::client(ClientConfig::harness(format!("{APISERVER}:6443"), CHAOS));
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    loop {
        let asked = std::mem::take(&mut *deletes.lock().expect("not poisoned"));
        for (pod, grace) in asked {
            let params = DeleteParams {
                grace_period_seconds: grace,
                ..DeleteParams::default()
            };
            // What the API answered shows in the history as the pod's commits (or none).
            let _ = api.delete(&pod, &params).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The chaos client's host.
pub const CHAOS: &str = "chaos";

/// A pod's process as the world runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Process {
    /// Running; `stopping` once it was asked to stop gracefully.
    Running { stopping: bool },
    /// Ended (its host crashed or its software returned).
    Exited,
}

/// The world's side of the pods: the process runtime the kubelet drives.
pub(super) struct PodHosts {
    pods: Pods,
    line: RuntimeLine,
    /// Pod deletions for the chaos client.
    deletes: Deletes,
    template: NodeSoftware,
    processes: BTreeMap<String, Process>,
    /// Processes started so far, for their seeds.
    started: u64,
}

impl PodHosts {
    /// Register the controller manager, the kubelet and the chaos client; the pods' hosts come
    /// as the kubelet starts them.
    pub(super) fn new(
        sim: &mut turmoil::Sim<'_>,
        setup: &Setup,
        pods: Pods,
        template: NodeSoftware,
    ) -> PodHosts {
        let recorder = template.recorder.clone();
        let line = RuntimeLine::default();
        let deletes = Deletes::default();
        {
            let (setup, recorder) = (setup.clone(), recorder.clone());
            sim.host(CONTROLLERS, move || {
                controllers(setup.clone(), pods, recorder.clone())
            });
        }
        {
            let (line, recorder) = (line.clone(), recorder.clone());
            sim.host(KUBELET, move || {
                kubelet(pods, line.clone(), recorder.clone())
            });
        }
        {
            let (namespace, deletes) = (setup.job.namespace.clone(), Arc::clone(&deletes));
            sim.host(CHAOS, move || {
                chaos(namespace.clone(), Arc::clone(&deletes))
            });
        }
        PodHosts {
            pods,
            line,
            deletes,
            template,
            processes: BTreeMap::new(),
            started: 0,
        }
    }

    /// The hosts this registered.
    pub(super) fn hosts() -> [&'static str; 3] {
        [CONTROLLERS, KUBELET, CHAOS]
    }

    /// Ask the chaos client to delete `pod` with `grace` seconds.
    pub(super) fn delete(&self, pod: &str, grace: Option<u32>) {
        let mut deletes = self.deletes.lock().expect("not poisoned");
        deletes.push((pod.to_owned(), grace));
    }

    /// Between two steps: do what the kubelet asked, and report the processes that ended.
    pub(super) fn step(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        world: &mut FaultReconciler,
        recorder: &Recorder,
    ) {
        for request in self.line.take_requests() {
            match request {
                Runtime::Start { pod } => self.start(sim, world, &pod),
                Runtime::Signal { pod, signal } => {
                    if self.processes.get(&pod) == Some(&Process::Running { stopping: false })
                        && signal == Signal::Term
                        && !self.pods.sigterm_ignored
                    {
                        world.stop(&pod);
                        self.processes
                            .insert(pod, Process::Running { stopping: true });
                    } else if signal == Signal::Kill
                        && matches!(self.processes.get(&pod), Some(Process::Running { .. }))
                        && sim.is_host_running(pod.as_str())
                    {
                        world.kill(sim, &pod, recorder);
                        self.processes.insert(pod.clone(), Process::Exited);
                        let (code, signal) = kubelet::exit_of(None, Some(9));
                        self.line.exited(Exited { pod, code, signal });
                    }
                }
            }
        }
        let stopped: Vec<String> = self
            .processes
            .iter()
            .filter(|(_, p)| **p == Process::Running { stopping: true })
            .map(|(pod, _)| pod.clone())
            .filter(|pod| !sim.is_host_running(pod.as_str()))
            .collect();
        for pod in stopped {
            world.gone(&pod);
            self.processes.insert(pod.clone(), Process::Exited);
            self.line.exited(Exited {
                pod,
                code: 0,
                signal: None,
            });
        }
    }

    fn start(&mut self, sim: &mut turmoil::Sim<'_>, world: &mut FaultReconciler, pod: &str) {
        match self.processes.get(pod) {
            // Never two processes of one container.
            Some(Process::Running { .. }) => return,
            Some(Process::Exited) => world.restart(sim, pod),
            None => {
                self.started += 1;
                let control = Control::new();
                let software = NodeSoftware {
                    identity: pod.to_owned(),
                    seed: self.template.seed ^ self.started.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    control: control.clone(),
                    ..self.template.clone()
                };
                sim.host(pod, move || software.clone().run());
                world.add_node(pod, control);
            }
        }
        self.processes
            .insert(pod.to_owned(), Process::Running { stopping: false });
    }
}

/// What a schedule may ask of the candidates, as pods or as fixed hosts: a pod's process is
/// stopped through its pod (a deletion) and a fixed host's by a crash or a stop, never the other
/// way round.
pub(super) fn validate(setup: &Setup) -> Result<(), ScheduleError> {
    for (index, scheduled) in setup.schedule.faults.iter().enumerate() {
        let fault = &scheduled.fault;
        let reason = match (fault, setup.pods.is_some()) {
            (Fault::DeletePod { .. }, false) => {
                "the candidates are fixed hosts, not pods: stop one with crash or stop, or run a \
                 scenario whose candidates are pods"
            }
            (Fault::Crash { .. } | Fault::Stop { .. }, true) => {
                "the candidates are pods, which their kubelet starts and stops: delete the pod \
                 (delete_pod, grace_seconds 0 for a force delete) or pause its process"
            }
            _ => continue,
        };
        return Err(ScheduleError {
            index,
            fault: fault.to_string(),
            reason: reason.to_owned(),
        });
    }
    Ok(())
}
