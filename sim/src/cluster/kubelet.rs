//! A kubelet's decisions for the pods on its node: when to start a container, when to signal it,
//! when to remove a deleted pod's object, and what status to report.
//!
//! [`PodRun`] is what the kubelet knows of one pod's processes; its shell tells it what happened
//! ([`PodRun::started`], [`PodRun::start_failed`], [`PodRun::exited`]) and asks it what to do
//! ([`PodRun::decide`]) with the pod as the API server last showed it, `None` once the object is
//! gone. Nothing here reads a clock or touches a process.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};

use super::time_at;

/// The least time between SIGTERM and SIGKILL, whatever the grace asked
/// (`minimumGracePeriodInSeconds` in kubelet's `kuberuntime_container.go`).
pub const MINIMUM_GRACE_MS: i64 = 2_000;

/// The first restart back-off after the first one (the first restart is immediate).
pub const BACKOFF_INITIAL_MS: i64 = 10_000;

/// The longest restart back-off.
pub const BACKOFF_MAX_MS: i64 = 300_000;

/// The exit code of a process killed by signal `n` is `128 + n`: 137 after SIGKILL.
pub const SIGNAL_EXIT_BASE: i32 = 128;

/// How the kubelet stops the processes of a pod whose object was force-deleted (removed at once,
/// with grace 0): the API server no longer waits for it, and the kubelet applies its own rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ForceDeleteGrace {
    /// SIGKILL after the minimum grace (2 s after SIGTERM), as recent kubelets do.
    #[default]
    Minimum,
    /// SIGKILL only after the pod's full `terminationGracePeriodSeconds`, as many kubelet
    /// versions did (kubernetes issues 113717, 115819, 120449): the old process runs on while
    /// its replacement starts.
    Full,
}

/// A kubelet's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's name (`spec.nodeName` of its pods).
    pub node: String,
    /// The address reported as the pods' and the host's IP.
    pub ip: String,
    /// The first back-off between restarts; it doubles up to `backoff_max_ms`.
    pub backoff_initial_ms: i64,
    /// The longest back-off.
    pub backoff_max_ms: i64,
    /// How force-deleted pods are stopped.
    pub force_delete: ForceDeleteGrace,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node: "khaos-node".into(),
            ip: "127.0.0.1".into(),
            backoff_initial_ms: BACKOFF_INITIAL_MS,
            backoff_max_ms: BACKOFF_MAX_MS,
            force_delete: ForceDeleteGrace::Minimum,
        }
    }
}

/// A signal the kubelet sends to every running process of a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop, within the grace.
    Term,
    /// SIGKILL.
    Kill,
}

/// What the kubelet's shell should do now.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start container `index` of the pod's spec (and then report [`PodRun::started`] or
    /// [`PodRun::start_failed`]).
    Start {
        /// The container's index in `spec.containers`.
        index: usize,
    },
    /// Signal every running process of the pod.
    Signal(Signal),
    /// Write this status through the `status` subresource.
    WriteStatus(Box<PodStatus>),
    /// Delete the pod's object with grace 0 (and its uid as a precondition): its processes
    /// are gone. [`remove_params`] are the request's parameters.
    Remove,
    /// The object and every process are gone: drop this run.
    Forget,
}

/// How one run of a container ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// When the run started (Unix ms).
    pub started_ms: i64,
    /// When it ended.
    pub finished_ms: i64,
    /// Its exit code (`128 + n` when killed by signal `n`).
    pub code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

/// One container of a pod, as the kubelet tracks it.
#[derive(Clone, Debug, Default)]
pub struct Container {
    /// Its name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// When its running process started, if one runs.
    pub running_since_ms: Option<i64>,
    /// A start asked of the shell and not yet reported.
    pub starting: bool,
    /// Its last run that ended.
    pub last_exit: Option<Exit>,
    /// Why it could not be started (reason, message), until it is.
    pub start_error: Option<(String, String)>,
    /// Restarts so far (`restartCount`).
    pub restarts: i32,
    /// Back-offs taken in a row: the next restart waits `backoff(steps)`.
    pub backoff_steps: u32,
    /// No restart before this time.
    pub not_before_ms: i64,
}

/// A pod on this kubelet's node: its containers and how far stopping it has gone.
#[derive(Clone, Debug)]
pub struct PodRun {
    /// The pod's uid: a pod made again under the same name is another run.
    pub uid: String,
    /// Its `terminationGracePeriodSeconds`, as started (what a force delete may wait).
    pub grace_s: i64,
    /// Its `restartPolicy`.
    pub restart_policy: String,
    /// Its containers, in `spec.containers` order.
    pub containers: Vec<Container>,
    /// When the kubelet first saw it (`status.startTime`).
    pub since_ms: i64,
    /// When SIGTERM was sent, once stopping has begun.
    pub term_sent_ms: Option<i64>,
    /// Whether SIGKILL was sent.
    pub kill_sent: bool,
    /// When the object's removal was last asked.
    pub remove_sent_ms: Option<i64>,
}

/// The pod conditions the kubelet owns.
const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// How long a removal that has not shown yet waits before it is asked again.
const REMOVE_RETRY_MS: i64 = 1_000;

impl PodRun {
    /// The run of a pod the kubelet has just seen; restart counts the pod already reports (a
    /// kubelet that restarted) are kept.
    pub fn new(pod: &Pod, now_ms: i64) -> PodRun {
        let spec = pod.spec.clone().unwrap_or_default();
        let reported = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        let containers = spec
            .containers
            .iter()
            .map(|c| Container {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                restarts: reported
                    .iter()
                    .find(|s| s.name == c.name)
                    .map_or(0, |s| s.restart_count),
                ..Container::default()
            })
            .collect();
        PodRun {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            grace_s: spec
                .termination_grace_period_seconds
                .unwrap_or(crate::apiserver::store::POD_GRACE_DEFAULT_S),
            restart_policy: spec.restart_policy.unwrap_or_else(|| "Always".into()),
            containers,
            since_ms: now_ms,
            term_sent_ms: None,
            kill_sent: false,
            remove_sent_ms: None,
        }
    }

    /// Container `index` started at `now_ms`.
    pub fn started(&mut self, index: usize, now_ms: i64) {
        let container = &mut self.containers[index];
        container.starting = false;
        container.start_error = None;
        container.running_since_ms = Some(now_ms);
    }

    /// Container `index` could not be started: `reason` is the waiting reason shown
    /// (`ErrImageNotMapped`), `message` says what to do. It is tried again after a back-off.
    pub fn start_failed(
        &mut self,
        config: &Config,
        index: usize,
        reason: &str,
        message: &str,
        now_ms: i64,
    ) {
        let container = &mut self.containers[index];
        container.starting = false;
        container.start_error = Some((reason.to_owned(), message.to_owned()));
        container.not_before_ms = now_ms + backoff(config, container.backoff_steps.max(1));
        container.backoff_steps += 1;
    }

    /// Container `index`'s process ended at `now_ms` with `code` (and `signal`, if one killed
    /// it). A restart, if the policy wants one, waits its back-off: none for the first, then
    /// 10 s doubling to 5 min; a run that lasted longer than twice the longest back-off starts
    /// the back-off over, as the kubelet forgets old back-offs.
    pub fn exited(
        &mut self,
        config: &Config,
        index: usize,
        code: i32,
        signal: Option<i32>,
        now_ms: i64,
    ) {
        let container = &mut self.containers[index];
        container.starting = false;
        let started_ms = container.running_since_ms.take().unwrap_or(now_ms);
        container.last_exit = Some(Exit {
            started_ms,
            finished_ms: now_ms,
            code,
            signal,
        });
        if now_ms - started_ms > 2 * config.backoff_max_ms {
            container.backoff_steps = 0;
        }
        container.not_before_ms = now_ms + backoff(config, container.backoff_steps);
    }

    fn any_process(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.running_since_ms.is_some() || c.starting)
    }

    fn wants_restart(&self, container: &Container) -> bool {
        match container.last_exit {
            None => true,
            Some(exit) => match self.restart_policy.as_str() {
                "Never" => false,
                "OnFailure" => exit.code != 0,
                _ => true,
            },
        }
    }

    /// What to do now, given the pod as last seen (`None`: its object is gone, or is another
    /// pod's under the same name).
    pub fn decide(&mut self, config: &Config, pod: Option<&Pod>, now_ms: i64) -> Vec<Action> {
        let pod = pod.filter(|p| p.metadata.uid.as_deref() == Some(self.uid.as_str()));
        let Some(pod) = pod else {
            // Force-deleted (or removed after the processes went): stop by the kubelet's rule.
            if !self.any_process() {
                return vec![Action::Forget];
            }
            let grace_ms = match config.force_delete {
                ForceDeleteGrace::Minimum => 0,
                ForceDeleteGrace::Full => self.grace_s * 1000,
            };
            return self.stop(grace_ms, now_ms);
        };
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        if pod.metadata.deletion_timestamp.is_some() {
            if self.any_process() {
                let grace_s = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
                return self.stop(grace_s * 1000, now_ms);
            }
            let due = self
                .remove_sent_ms
                .is_none_or(|sent| now_ms >= sent + REMOVE_RETRY_MS);
            if due {
                self.remove_sent_ms = Some(now_ms);
                return vec![Action::Remove];
            }
            return Vec::new();
        }
        let mut actions = Vec::new();
        if !finished {
            for index in 0..self.containers.len() {
                let container = &self.containers[index];
                let idle = container.running_since_ms.is_none() && !container.starting;
                if idle && self.wants_restart(container) && now_ms >= container.not_before_ms {
                    let container = &mut self.containers[index];
                    if container.last_exit.is_some() {
                        container.restarts += 1;
                        container.backoff_steps += 1;
                    }
                    container.starting = true;
                    actions.push(Action::Start { index });
                }
            }
        }
        let status = self.status(config, pod, now_ms);
        if pod.status.as_ref() != Some(&status) {
            actions.push(Action::WriteStatus(Box::new(status)));
        }
        actions
    }

    /// Stopping: SIGTERM first, SIGKILL once `grace_ms` (at least the minimum) has passed since.
    fn stop(&mut self, grace_ms: i64, now_ms: i64) -> Vec<Action> {
        let Some(term_sent) = self.term_sent_ms else {
            self.term_sent_ms = Some(now_ms);
            return vec![Action::Signal(Signal::Term)];
        };
        if !self.kill_sent && now_ms >= term_sent + grace_ms.max(MINIMUM_GRACE_MS) {
            self.kill_sent = true;
            return vec![Action::Signal(Signal::Kill)];
        }
        Vec::new()
    }

    /// When [`PodRun::decide`] next has something time-driven to do (a restart or a SIGKILL),
    /// for a shell that sleeps until then.
    pub fn next_due_ms(&self, pod: Option<&Pod>) -> Option<i64> {
        let mut due = self
            .containers
            .iter()
            .filter(|c| c.running_since_ms.is_none() && !c.starting && self.wants_restart(c))
            .map(|c| c.not_before_ms)
            .min();
        if let (Some(term), false) = (self.term_sent_ms, self.kill_sent) {
            let grace_s = pod
                .and_then(|p| p.metadata.deletion_grace_period_seconds)
                .unwrap_or(self.grace_s);
            let kill = term + (grace_s * 1000).max(MINIMUM_GRACE_MS);
            due = Some(due.map_or(kill, |d| d.min(kill)));
        }
        due
    }

    /// The status the pod should report.
    fn status(&self, config: &Config, pod: &Pod, now_ms: i64) -> PodStatus {
        let previous = pod.status.clone().unwrap_or_default();
        let statuses: Vec<ContainerStatus> = self
            .containers
            .iter()
            .map(|c| self.container_status(pod, c))
            .collect();
        let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
        let any_running = self.containers.iter().any(|c| c.running_since_ms.is_some());
        let never_ran = self.containers.iter().all(|c| c.last_exit.is_none());
        let phase = if any_running {
            "Running"
        } else if never_ran {
            "Pending"
        } else if self.containers.iter().any(|c| self.wants_restart(c)) {
            "Running"
        } else if self
            .containers
            .iter()
            .all(|c| c.last_exit.is_some_and(|e| e.code == 0))
        {
            "Succeeded"
        } else {
            "Failed"
        };
        let condition = |kind: &str, holds: bool| {
            let value = if holds { "True" } else { "False" };
            // A condition keeps its transition time while its value stays.
            let since = previous
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == kind && c.status == value)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| time_at(now_ms));
            PodCondition {
                type_: kind.to_owned(),
                status: value.to_owned(),
                last_transition_time: Some(since),
                ..PodCondition::default()
            }
        };
        let mut conditions = vec![
            condition("PodReadyToStartContainers", true),
            condition("Initialized", true),
            condition("Ready", all_ready),
            condition("ContainersReady", all_ready),
            condition("PodScheduled", true),
        ];
        // Conditions other clients own (a readiness gate, DisruptionTarget) are kept.
        conditions.extend(
            previous
                .conditions
                .iter()
                .flatten()
                .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
                .cloned(),
        );
        PodStatus {
            phase: Some(phase.to_owned()),
            conditions: Some(conditions),
            container_statuses: Some(statuses),
            host_ip: Some(config.ip.clone()),
            host_ips: Some(vec![HostIP {
                ip: config.ip.clone(),
            }]),
            pod_ip: Some(config.ip.clone()),
            pod_ips: Some(vec![PodIP {
                ip: config.ip.clone(),
            }]),
            qos_class: previous.qos_class.clone(),
            start_time: Some(
                previous
                    .start_time
                    .clone()
                    .unwrap_or_else(|| time_at(self.since_ms)),
            ),
            ..PodStatus::default()
        }
    }

    fn container_status(&self, pod: &Pod, c: &Container) -> ContainerStatus {
        let terminated = |exit: &Exit| ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: exit.code,
                signal: exit.signal,
                reason: Some(if exit.code == 0 { "Completed" } else { "Error" }.to_owned()),
                started_at: Some(time_at(exit.started_ms)),
                finished_at: Some(time_at(exit.finished_ms)),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        };
        let waiting = |reason: &str, message: Option<String>| ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_owned()),
                message,
            }),
            ..ContainerState::default()
        };
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let (state, last_state) = match (c.running_since_ms, c.last_exit) {
            (Some(since), last) => (
                ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(time_at(since)),
                    }),
                    ..ContainerState::default()
                },
                last.as_ref().map(terminated),
            ),
            (None, _) if c.start_error.is_some() => {
                let (reason, message) = c.start_error.clone().expect("checked");
                (
                    waiting(&reason, Some(message)),
                    c.last_exit.as_ref().map(terminated),
                )
            }
            (None, None) => (waiting("ContainerCreating", None), None),
            (None, Some(exit)) if self.wants_restart(c) => {
                let message = format!(
                    "back-off {}s restarting failed container={} pod={name}_{namespace}({})",
                    ((c.not_before_ms - exit.finished_ms).max(0) + 999) / 1000,
                    c.name,
                    self.uid
                );
                let reason = if c.starting {
                    "ContainerCreating"
                } else {
                    "CrashLoopBackOff"
                };
                (waiting(reason, Some(message)), Some(terminated(&exit)))
            }
            (None, Some(exit)) => (terminated(&exit), None),
        };
        let running = c.running_since_ms.is_some();
        ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: String::new(),
            container_id: Some(format!("khaos://{}/{}/{}", self.uid, c.name, c.restarts)),
            ready: running,
            started: Some(running),
            restart_count: c.restarts,
            state: Some(state),
            last_state: Some(last_state.unwrap_or_default()),
            ..ContainerStatus::default()
        }
    }
}

/// The wait before restart number `steps + 1` after the first: none, then the initial back-off
/// doubling to the longest.
fn backoff(config: &Config, steps: u32) -> i64 {
    if steps == 0 {
        return 0;
    }
    let doublings = (steps - 1).min(30);
    config
        .backoff_initial_ms
        .saturating_mul(1 << doublings)
        .min(config.backoff_max_ms)
}

/// The exit code and signal of a process that ended: `128 + n` for one killed by signal `n`.
pub fn exit_of(code: Option<i32>, signal: Option<i32>) -> (i32, Option<i32>) {
    match (code, signal) {
        (Some(code), _) => (code, None),
        (None, Some(signal)) => (SIGNAL_EXIT_BASE + signal, Some(signal)),
        (None, None) => (SIGNAL_EXIT_BASE, None),
    }
}

/// The parameters of [`Action::Remove`]'s delete: grace 0, and only the pod of `uid` (a pod made
/// again under the same name is another).
pub fn remove_params(uid: &str) -> kube::api::DeleteParams {
    kube::api::DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(kube::api::Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..kube::api::DeleteParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container as ContainerSpec, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const T0: i64 = 1_800_000_000_000;

    fn pod(grace: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("khaos-node".into()),
                termination_grace_period_seconds: Some(grace),
                containers: vec![ContainerSpec {
                    name: "main".into(),
                    image: Some("khaos:dev".into()),
                    ..ContainerSpec::default()
                }],
                ..PodSpec::default()
            }),
            status: None,
        }
    }

    fn marked(mut pod: Pod, grace: i64, at_ms: i64) -> Pod {
        pod.metadata.deletion_timestamp = Some(time_at(at_ms + grace * 1000));
        pod.metadata.deletion_grace_period_seconds = Some(grace);
        pod
    }

    fn processes(actions: &[Action]) -> Vec<Action> {
        actions
            .iter()
            .filter(|a| !matches!(a, Action::WriteStatus(_)))
            .cloned()
            .collect()
    }

    fn status(actions: &[Action]) -> PodStatus {
        actions
            .iter()
            .find_map(|a| match a {
                Action::WriteStatus(s) => Some((**s).clone()),
                _ => None,
            })
            .expect("a status write")
    }

    fn running(config: &Config, pod: &Pod) -> PodRun {
        let mut run = PodRun::new(pod, T0);
        assert_eq!(
            processes(&run.decide(config, Some(pod), T0)),
            vec![Action::Start { index: 0 }]
        );
        run.started(0, T0);
        run
    }

    #[test]
    fn a_new_pod_is_started_and_reported_running_and_ready() {
        let config = Config::default();
        let pod = pod(30);
        let mut run = running(&config, &pod);
        let actions = run.decide(&config, Some(&pod), T0 + 10);
        assert_eq!(processes(&actions), vec![]);
        let status = status(&actions);
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(status.pod_ip.as_deref(), Some("127.0.0.1"));
        // Reported once: the same status is not written again.
        let mut seen = pod.clone();
        seen.status = Some(status);
        assert_eq!(run.decide(&config, Some(&seen), T0 + 20), vec![]);
    }

    #[test]
    fn conditions_other_clients_own_are_kept() {
        let config = Config::default();
        let mut pod = pod(30);
        let mut run = running(&config, &pod);
        let mut status = status(&run.decide(&config, Some(&pod), T0 + 10));
        let gate = PodCondition {
            type_: "example.com/ready-gate".into(),
            status: "True".into(),
            ..PodCondition::default()
        };
        status.conditions.as_mut().unwrap().push(gate.clone());
        pod.status = Some(status);
        // Nothing to write: the gate stays, and the kubelet does not fight it.
        assert_eq!(run.decide(&config, Some(&pod), T0 + 20), vec![]);
        run.exited(&config, 0, 1, None, T0 + 30);
        let written = self::status(&run.decide(&config, Some(&pod), T0 + 30));
        assert!(written.conditions.unwrap().contains(&gate));
    }

    #[test]
    fn a_graceful_delete_terms_then_kills_after_the_grace_then_removes() {
        let config = Config::default();
        let pod = pod(30);
        let mut run = running(&config, &pod);
        let deleting = marked(pod.clone(), 5, T0 + 1000);
        assert_eq!(
            run.decide(&config, Some(&deleting), T0 + 1000),
            vec![Action::Signal(Signal::Term)]
        );
        assert_eq!(run.decide(&config, Some(&deleting), T0 + 5999), vec![]);
        assert_eq!(run.next_due_ms(Some(&deleting)), Some(T0 + 6000));
        assert_eq!(
            run.decide(&config, Some(&deleting), T0 + 6000),
            vec![Action::Signal(Signal::Kill)]
        );
        assert_eq!(run.decide(&config, Some(&deleting), T0 + 6100), vec![]);
        let (code, signal) = exit_of(None, Some(9));
        assert_eq!(code, 137);
        run.exited(&config, 0, code, signal, T0 + 6100);
        assert_eq!(
            run.decide(&config, Some(&deleting), T0 + 6100),
            vec![Action::Remove]
        );
        // Asked again only after a while, if the object is still there.
        assert_eq!(run.decide(&config, Some(&deleting), T0 + 6200), vec![]);
        assert_eq!(
            run.decide(&config, Some(&deleting), T0 + 7100),
            vec![Action::Remove]
        );
        assert_eq!(run.decide(&config, None, T0 + 7200), vec![Action::Forget]);
    }

    #[test]
    fn a_process_that_stops_on_sigterm_is_never_killed() {
        let config = Config::default();
        let pod = pod(30);
        let mut run = running(&config, &pod);
        let deleting = marked(pod, 30, T0);
        assert_eq!(
            run.decide(&config, Some(&deleting), T0),
            vec![Action::Signal(Signal::Term)]
        );
        run.exited(&config, 0, 143, None, T0 + 300);
        assert_eq!(
            run.decide(&config, Some(&deleting), T0 + 300),
            vec![Action::Remove]
        );
        assert!(!run.kill_sent);
    }

    #[test]
    fn a_shortened_grace_kills_sooner_but_never_before_the_minimum() {
        let config = Config::default();
        let pod = pod(30);
        let mut run = running(&config, &pod);
        assert_eq!(
            run.decide(&config, Some(&marked(pod.clone(), 30, T0)), T0),
            vec![Action::Signal(Signal::Term)]
        );
        let shortened = marked(pod, 1, T0 + 500);
        assert_eq!(run.decide(&config, Some(&shortened), T0 + 1500), vec![]);
        assert_eq!(
            run.decide(&config, Some(&shortened), T0 + MINIMUM_GRACE_MS),
            vec![Action::Signal(Signal::Kill)]
        );
    }

    #[test]
    fn a_force_deleted_pod_is_killed_by_the_kubelets_own_rule() {
        for (rule, kill_after) in [
            (ForceDeleteGrace::Minimum, MINIMUM_GRACE_MS),
            (ForceDeleteGrace::Full, 30_000),
        ] {
            let config = Config {
                force_delete: rule,
                ..Config::default()
            };
            let pod = pod(30);
            let mut run = running(&config, &pod);
            assert_eq!(
                run.decide(&config, None, T0 + 100),
                vec![Action::Signal(Signal::Term)],
                "{rule:?}"
            );
            assert_eq!(
                run.decide(&config, None, T0 + 100 + kill_after - 1),
                vec![],
                "{rule:?}"
            );
            assert_eq!(
                run.decide(&config, None, T0 + 100 + kill_after),
                vec![Action::Signal(Signal::Kill)],
                "{rule:?}"
            );
            run.exited(&config, 0, 137, Some(9), T0 + 100 + kill_after);
            assert_eq!(
                run.decide(&config, None, T0 + 200 + kill_after),
                vec![Action::Forget]
            );
        }
    }

    #[test]
    fn a_pod_made_again_under_the_same_name_is_not_this_run() {
        let config = Config::default();
        let pod = pod(30);
        let mut run = running(&config, &pod);
        let mut other = pod.clone();
        other.metadata.uid = Some("u2".into());
        assert_eq!(
            run.decide(&config, Some(&other), T0 + 100),
            vec![Action::Signal(Signal::Term)]
        );
    }

    #[test]
    fn restarts_back_off_ten_seconds_doubling_and_report_crash_loop() {
        let config = Config::default();
        let pod = pod(30);
        let mut run = running(&config, &pod);
        let mut t = T0;
        // The first restart is immediate, then 10 s, 20 s, 40 s after each exit.
        for (restart, wait) in [(1, 0), (2, 10_000), (3, 20_000), (4, 40_000)] {
            t += 1000;
            run.exited(&config, 0, 1, None, t);
            if wait > 0 {
                let actions = run.decide(&config, Some(&pod), t + wait - 1);
                assert_eq!(processes(&actions), vec![], "restart {restart}");
                let state = status(&actions).container_statuses.unwrap()[0].clone();
                assert_eq!(
                    state.state.unwrap().waiting.unwrap().reason.as_deref(),
                    Some("CrashLoopBackOff")
                );
                let last = state.last_state.unwrap().terminated.unwrap();
                assert_eq!(last.exit_code, 1);
            }
            let actions = run.decide(&config, Some(&pod), t + wait);
            assert_eq!(
                processes(&actions),
                vec![Action::Start { index: 0 }],
                "restart {restart}"
            );
            t += wait;
            run.started(0, t);
            let status = status(&run.decide(&config, Some(&pod), t));
            assert_eq!(status.container_statuses.unwrap()[0].restart_count, restart);
        }
    }

    #[test]
    fn the_back_off_is_capped_and_forgotten_after_a_long_run() {
        let config = Config::default();
        assert_eq!(backoff(&config, 1), 10_000);
        assert_eq!(backoff(&config, 6), 300_000);
        assert_eq!(backoff(&config, 40), 300_000);
        let pod = pod(30);
        let mut run = running(&config, &pod);
        run.containers[0].backoff_steps = 5;
        run.exited(&config, 0, 1, None, T0 + 2 * BACKOFF_MAX_MS + 1);
        assert_eq!(run.containers[0].not_before_ms, T0 + 2 * BACKOFF_MAX_MS + 1);
    }

    #[test]
    fn restart_policies_decide_restarts_and_the_final_phase() {
        let config = Config::default();
        for (policy, code, restarts, phase) in [
            ("Never", 0, false, "Succeeded"),
            ("Never", 1, false, "Failed"),
            ("OnFailure", 0, false, "Succeeded"),
            ("OnFailure", 1, true, "Running"),
            ("Always", 0, true, "Running"),
        ] {
            let mut pod = pod(30);
            pod.spec.as_mut().unwrap().restart_policy = Some(policy.into());
            let mut run = running(&config, &pod);
            run.exited(&config, 0, code, None, T0 + 1000);
            let actions = run.decide(&config, Some(&pod), T0 + 1000);
            assert_eq!(
                processes(&actions) == vec![Action::Start { index: 0 }],
                restarts,
                "{policy} {code}"
            );
            if !restarts {
                assert_eq!(
                    status(&actions).phase.as_deref(),
                    Some(phase),
                    "{policy} {code}"
                );
            }
        }
    }

    #[test]
    fn a_container_that_cannot_start_waits_with_the_reason_and_is_tried_again() {
        let config = Config::default();
        let pod = pod(30);
        let mut run = PodRun::new(&pod, T0);
        assert_eq!(
            processes(&run.decide(&config, Some(&pod), T0)),
            vec![Action::Start { index: 0 }]
        );
        run.start_failed(&config, 0, "ErrImageNotMapped", "map it", T0);
        let actions = run.decide(&config, Some(&pod), T0 + 1);
        assert_eq!(processes(&actions), vec![]);
        let waiting = status(&actions).container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("ErrImageNotMapped"));
        assert_eq!(
            processes(&run.decide(&config, Some(&pod), T0 + BACKOFF_INITIAL_MS)),
            vec![Action::Start { index: 0 }]
        );
    }
}
