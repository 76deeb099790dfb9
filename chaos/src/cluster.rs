//! `khaos serve --cluster`: a local cluster whose pods are processes on this machine.
//!
//! Two clients of the server run beside it, as a real cluster's do: a kubelet for one node and
//! a controller manager (the ReplicaSet and Deployment controllers and a one-node scheduler).
//! Both list through the API, ask the pure decisions of [`khaos_sim::cluster`] what to do, and
//! write through the API. This module is their shell: it starts processes, signals their process
//! groups, keeps their output for `kubectl logs`, and stops every process when the server stops.
//!
//! A container's image names a local program (`--image khaos:dev=PATH`). The container's
//! `command`, if it has one, runs as given, with its first word replaced by the image's program
//! when their file names agree (`command: [khaos, node]` runs PATH), so a manifest written for
//! kind deploys here unchanged. Each pod runs in its own directory under the pods directory, with
//! a clean environment: `PATH`, `HOSTNAME`, `KUBECONFIG` (a kubeconfig for this server, so
//! `kube::Client::try_default` finds it), the container's `env` (values and the downward API's
//! `fieldRef`s: `metadata.name`, `metadata.namespace`, `metadata.uid`, `spec.nodeName`,
//! `status.podIP`, `status.hostIP`), with `$(VAR)` expanded in `command` and `args`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use khaos_sim::apiserver::{ApiServer, LogRequest};
use khaos_sim::cluster::kubelet::{self, Action, PodRun, Signal};
use khaos_sim::cluster::manager;
use kube::api::{Api, ListParams, PostParams};
use nix::sys::signal::{Signal as NixSignal, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};

/// How often the kubelet and the controllers look again (they also wake when a process ends).
const TICK: Duration = Duration::from_millis(100);

/// The longest one look (a list and its writes) may take before it is abandoned and tried again.
const TICK_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the local cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Image names and the local programs they stand for.
    pub images: Vec<(String, PathBuf)>,
    /// Where each pod gets its working directory and its output files.
    pub pods_dir: PathBuf,
    /// The kubelet's decisions' settings (node name, back-off, force-delete rule).
    pub kubelet: kubelet::Config,
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The pods directory could not be made.
    #[error("cannot use --pods-dir {path}: {source}", path = path.display())]
    PodsDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another server's cluster uses the pods directory.
    #[error(
        "another khaos serve --cluster uses --pods-dir {path}: give each server its own (--pods-dir DIR)",
        path = path.display()
    )]
    PodsDirInUse {
        /// The directory.
        path: PathBuf,
    },
    /// An image's program does not exist.
    #[error(
        "--image {image}={path}: no such file (give the path of a built program, e.g. --image khaos:dev=target/release/khaos)",
        path = path.display()
    )]
    NoProgram {
        /// The image.
        image: String,
        /// The path given.
        path: PathBuf,
    },
    /// The cluster's clients could not be made.
    #[error("cannot make the cluster's clients: {0}")]
    Client(String),
}

/// Parse `NAME=PATH` for `--image`.
pub fn parse_image(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "{text:?} is not IMAGE=PATH (for example --image khaos:dev=target/release/khaos)"
        )),
    }
}

/// The running cluster: stop it to stop every process.
pub struct Cluster {
    /// Held while the cluster runs: one cluster per pods directory.
    _lock: std::fs::File,
    stop: watch::Sender<bool>,
    kubelet: tokio::task::JoinHandle<()>,
    controllers: tokio::task::JoinHandle<()>,
}

impl Cluster {
    /// Start the kubelet and the controllers against `server`, reached through `kubeconfig`
    /// (the server's own, as `khaos serve --write-kubeconfig` writes it).
    pub async fn start(
        server: &ApiServer,
        kubeconfig: &serde_json::Value,
        config: ClusterConfig,
    ) -> Result<Cluster, ClusterError> {
        for (image, path) in &config.images {
            if !path.is_file() {
                return Err(ClusterError::NoProgram {
                    image: image.clone(),
                    path: path.clone(),
                });
            }
        }
        let images = config
            .images
            .iter()
            .map(|(image, path)| {
                // Absolute, so it runs from a pod's directory, but not resolved: `/bin/sh` stays
                // `sh` for the rule that a command's first word names the image's program.
                let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                (image.clone(), path)
            })
            .collect();
        let pods_dir_error = |source| ClusterError::PodsDir {
            path: config.pods_dir.clone(),
            source,
        };
        {
            use std::os::unix::fs::DirBuilderExt as _;
            // The pods' files and the kubeconfig (with the token) are the user's alone.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&config.pods_dir)
                .map_err(pods_dir_error)?;
        }
        let pods_dir = std::fs::canonicalize(&config.pods_dir).map_err(pods_dir_error)?;
        let lock = std::fs::File::create(pods_dir.join(".lock")).map_err(pods_dir_error)?;
        if lock.try_lock().is_err() {
            return Err(ClusterError::PodsDirInUse { path: pods_dir });
        }
        let kubeconfig_path = pods_dir.join("kubeconfig");
        crate::serve::write_private(&kubeconfig_path, &format!("{kubeconfig:#}\n"))
            .map_err(pods_dir_error)?;
        let kubelet_client =
            client(kubeconfig, &format!("kubelet/{}", config.kubelet.node)).await?;
        let controller_client = client(kubeconfig, "kube-controller-manager").await?;
        let logs_dir = pods_dir.clone();
        server.set_log_source(Arc::new(move |request: &LogRequest<'_>| {
            read_log(&logs_dir, request)
        }));
        let (stop, stopped) = watch::channel(false);
        let (exits, exited) = mpsc::unbounded_channel();
        let kubelet = Kubelet {
            config: config.kubelet.clone(),
            api: Api::all(kubelet_client),
            images,
            pods_dir,
            kubeconfig: kubeconfig_path,
            pods: BTreeMap::new(),
            exits,
        };
        let node = config.kubelet.node.clone();
        Ok(Cluster {
            _lock: lock,
            stop,
            kubelet: tokio::spawn(kubelet.run(exited, stopped.clone())),
            controllers: tokio::spawn(run_controllers(controller_client, node, stopped)),
        })
    }

    /// Stop the controllers, then every pod's processes: SIGTERM, and SIGKILL to whatever is
    /// left after the kubelet's minimum grace.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.controllers.await;
        let _ = self.kubelet.await;
    }
}

async fn client(
    kubeconfig: &serde_json::Value,
    identity: &str,
) -> Result<kube::Client, ClusterError> {
    let error = |e: &dyn std::fmt::Display| ClusterError::Client(e.to_string());
    let parsed: kube::config::Kubeconfig =
        serde_json::from_value(kubeconfig.clone()).map_err(|e| error(&e))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| error(&e))?;
    khaos_elector::client::apply(&khaos_elector::client::PRODUCTION, &mut config);
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(identity).map_err(|e| error(&e))?,
    ));
    kube::Client::try_from(config).map_err(|e| error(&e))
}

/// Unix milliseconds now: the cluster runs in the real world.
fn now_ms() -> i64 {
    // The local cluster's kubelet and controllers are live components, stamped with wall time.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn pod_key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// A pod's directory: `{namespace}_{name}_{uid}`, as the kubelet's `/var/log/pods` names it.
fn pod_dir(pods_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    pods_dir.join(format!("{namespace}_{name}_{uid}"))
}

fn log_path(dir: &Path, container: &str, previous: bool) -> PathBuf {
    if previous {
        dir.join(format!("{container}.previous.log"))
    } else {
        dir.join(format!("{container}.log"))
    }
}

fn read_log(pods_dir: &Path, request: &LogRequest<'_>) -> Result<Vec<u8>, String> {
    let dir = pod_dir(pods_dir, request.namespace, request.pod, request.uid);
    let path = log_path(&dir, request.container, request.previous);
    std::fs::read(&path).map_err(|_| {
        if request.previous {
            format!(
                "previous terminated container \"{}\" in pod \"{}\" not found",
                request.container, request.pod
            )
        } else {
            format!(
                "container \"{}\" in pod \"{}\" is waiting to start: no output yet",
                request.container, request.pod
            )
        }
    })
}

/// A process ended: the pod's uid, the container's index, how it ended.
type Exited = (String, usize, ExitStatus);

/// One pod on this node: what the decisions know, the pod as last listed, and its processes'
/// group ids (a process is its group's leader).
struct Running {
    run: PodRun,
    pod: Pod,
    groups: Vec<Option<i32>>,
}

struct Kubelet {
    config: kubelet::Config,
    api: Api<Pod>,
    images: Vec<(String, PathBuf)>,
    pods_dir: PathBuf,
    kubeconfig: PathBuf,
    /// By uid.
    pods: BTreeMap<String, Running>,
    exits: mpsc::UnboundedSender<Exited>,
}

impl Kubelet {
    async fn run(
        mut self,
        mut exited: mpsc::UnboundedReceiver<Exited>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            while let Ok(exit) = exited.try_recv() {
                self.exited(exit);
            }
            if *stop.borrow() {
                break;
            }
            if tokio::time::timeout(TICK_TIMEOUT, self.tick())
                .await
                .is_err()
            {
                tracing::warn!(
                    "kubelet: a look at the pods took over {TICK_TIMEOUT:?}; trying again"
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                Some(exit) = exited.recv() => self.exited(exit),
                _ = stop.changed() => {}
            }
        }
        self.stop_all(exited).await;
    }

    fn exited(&mut self, (uid, index, status): Exited) {
        use std::os::unix::process::ExitStatusExt;
        let Some(pod) = self.pods.get_mut(&uid) else {
            return;
        };
        if let Some(group) = pod.groups[index].take() {
            // A container's processes end with it, as its PID namespace does.
            let _ = killpg(Pid::from_raw(group), NixSignal::SIGKILL);
        }
        let (code, signal) = kubelet::exit_of(status.code(), status.signal());
        pod.run.exited(&self.config, index, code, signal, now_ms());
    }

    async fn tick(&mut self) {
        let listed = match self.api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(error) => {
                tracing::warn!("kubelet: listing pods failed: {error}");
                return;
            }
        };
        let now = now_ms();
        let mut seen: BTreeMap<String, Pod> = BTreeMap::new();
        for pod in listed {
            let on_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                == Some(self.config.node.as_str());
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            if !on_node {
                continue;
            }
            let containers = pod.spec.as_ref().map_or(0, |s| s.containers.len());
            self.pods.entry(uid.clone()).or_insert_with(|| Running {
                run: PodRun::new(&pod, now),
                pod: pod.clone(),
                groups: vec![None; containers],
            });
            seen.insert(uid, pod);
        }
        let uids: Vec<String> = self.pods.keys().cloned().collect();
        for uid in uids {
            let listed = seen.get(&uid);
            let actions = {
                let running = self.pods.get_mut(&uid).expect("listed above");
                if let Some(pod) = listed {
                    running.pod = pod.clone();
                }
                running.run.decide(&self.config, listed, now)
            };
            for action in actions {
                self.apply(&uid, action).await;
            }
        }
    }

    async fn apply(&mut self, uid: &str, action: Action) {
        let Some(running) = self.pods.get_mut(uid) else {
            return;
        };
        let (namespace, name) = pod_key(&running.pod);
        match action {
            Action::Start { index } => {
                let pod = running.pod.clone();
                match self.start(&pod, index) {
                    Ok(group) => {
                        let running = self.pods.get_mut(uid).expect("present");
                        running.groups[index] = Some(group);
                        running.run.started(index, now_ms());
                        tracing::info!(
                            "kubelet: started {namespace}/{name} container {index} (process group {group})"
                        );
                    }
                    Err((reason, message)) => {
                        tracing::warn!("kubelet: cannot start {namespace}/{name}: {message}");
                        let running = self.pods.get_mut(uid).expect("present");
                        running
                            .run
                            .start_failed(&self.config, index, reason, &message, now_ms());
                    }
                }
            }
            Action::Signal(signal) => {
                let signal = match signal {
                    Signal::Term => NixSignal::SIGTERM,
                    Signal::Kill => NixSignal::SIGKILL,
                };
                for group in running.groups.iter().flatten() {
                    tracing::info!(
                        "kubelet: {signal:?} to {namespace}/{name} (process group {group})"
                    );
                    let _ = killpg(Pid::from_raw(*group), signal);
                }
            }
            Action::WriteStatus(status) => {
                let mut pod = running.pod.clone();
                pod.status = Some(*status);
                let api: Api<Pod> = Api::namespaced(self.api.clone().into_client(), &namespace);
                match api
                    .replace_status(&name, &PostParams::default(), &pod)
                    .await
                {
                    Ok(written) => {
                        if let Some(running) = self.pods.get_mut(uid) {
                            running.pod = written;
                        }
                    }
                    // A conflict or a pod gone: the next look sees the pod as it is now.
                    Err(error) => tracing::debug!("kubelet: status of {namespace}/{name}: {error}"),
                }
            }
            Action::Remove => {
                let api: Api<Pod> = Api::namespaced(self.api.clone().into_client(), &namespace);
                if let Err(error) = api.delete(&name, &kubelet::remove_params(uid)).await {
                    tracing::debug!("kubelet: removing {namespace}/{name}: {error}");
                }
            }
            Action::Forget => {
                self.pods.remove(uid);
            }
        }
    }

    /// Start container `index` of `pod`; its process group id, or why not (reason, message).
    fn start(&self, pod: &Pod, index: usize) -> Result<i32, (&'static str, String)> {
        // The run counted the containers when it first saw the pod; the spec may say otherwise
        // now (a pod's containers cannot change, but a start is never a panic).
        let Some(container) = pod.spec.as_ref().and_then(|s| s.containers.get(index)) else {
            return Err((
                "CreateContainerConfigError",
                format!("the pod has no container {index} any more"),
            ));
        };
        let (namespace, name) = pod_key(pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let image = container.image.clone().unwrap_or_default();
        let Some((_, program)) = self.images.iter().find(|(i, _)| *i == image) else {
            return Err((
                "ErrImageNotMapped",
                format!(
                    "image {image:?} is not mapped to a local program: start the cluster with --image {image}=PATH"
                ),
            ));
        };
        let env = environment(pod, container, &self.kubeconfig, &self.config.ip)
            .map_err(|message| ("CreateContainerConfigError", message))?;
        let (program, args) = command_line(program, container, &env);
        let dir = pod_dir(&self.pods_dir, &namespace, &name, &uid);
        let io_error =
            |what: &str, e: std::io::Error| ("RunContainerError", format!("{what}: {e}"));
        let first_start = self.pods.get(&uid).is_some_and(|p| {
            p.run
                .containers
                .iter()
                .all(|c| c.last_exit.is_none() && c.running_since_ms.is_none())
        });
        if first_start && dir.exists() {
            // Names and uids repeat across servers started afresh: another run's files go.
            std::fs::remove_dir_all(&dir)
                .map_err(|e| io_error("clearing the pod's directory", e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io_error("making the pod's directory", e))?;
        let current = log_path(&dir, &container.name, false);
        if current.exists() {
            let _ = std::fs::rename(&current, log_path(&dir, &container.name, true));
        }
        let output = std::fs::File::create(&current).map_err(|e| io_error("opening the log", e))?;
        let errors = output
            .try_clone()
            .map_err(|e| io_error("opening the log", e))?;
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&args)
            .current_dir(&dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(output)
            .stderr(errors)
            .process_group(0)
            // Every process ends with the server: the kubelet stops them, and one the kubelet
            // never reached is killed when its handle is dropped.
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            (
                "RunContainerError",
                format!("starting {}: {e}", program.display()),
            )
        })?;
        // Never 0: killpg(0) would signal the server's own group. A child already reaped has no
        // id; it cannot be, before its wait below, but a missing id is a failed start, not 0.
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|id| *id > 0)
            .ok_or((
                "RunContainerError",
                format!("{} started without a process id", program.display()),
            ))?;
        let exits = self.exits.clone();
        let uid = uid.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            if let Ok(status) = status {
                let _ = exits.send((uid, index, status));
            }
        });
        Ok(group)
    }

    /// Stop every process: SIGTERM, then SIGKILL after the minimum grace to what is left.
    async fn stop_all(mut self, mut exited: mpsc::UnboundedReceiver<Exited>) {
        let groups = |pods: &BTreeMap<String, Running>| -> Vec<i32> {
            pods.values()
                .flat_map(|p| p.groups.iter().flatten().copied())
                .collect()
        };
        for group in groups(&self.pods) {
            let _ = killpg(Pid::from_raw(group), NixSignal::SIGTERM);
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(kubelet::MINIMUM_GRACE_MS as u64);
        while !groups(&self.pods).is_empty() {
            match tokio::time::timeout_at(deadline, exited.recv()).await {
                Ok(Some(exit)) => self.exited(exit),
                Ok(None) | Err(_) => break,
            }
        }
        for group in groups(&self.pods) {
            let _ = killpg(Pid::from_raw(group), NixSignal::SIGKILL);
        }
    }
}

/// The container's environment: a clean one with `PATH`, `HOSTNAME` and `KUBECONFIG`, then the
/// container's own `env` (later entries may refer to earlier ones with `$(VAR)`).
fn environment(
    pod: &Pod,
    container: &Container,
    kubeconfig: &Path,
    ip: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, key: &str, value: String| {
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value));
    };
    // The host's PATH, so a command named without a path is found as on the host.
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    set(&mut env, "PATH", path);
    let name = pod.metadata.name.clone().unwrap_or_default();
    set(&mut env, "HOSTNAME", name.clone());
    set(&mut env, "KUBECONFIG", kubeconfig.display().to_string());
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => expand(value, &env),
            (None, Some(from)) => match &from.field_ref {
                Some(field) => match field.field_path.as_str() {
                    "metadata.name" => name.clone(),
                    "metadata.namespace" => pod.metadata.namespace.clone().unwrap_or_default(),
                    "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
                    "spec.nodeName" => pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default(),
                    "status.podIP" | "status.hostIP" => ip.to_owned(),
                    other => {
                        return Err(format!(
                            "env {}: fieldRef {other:?} is not served by the local cluster (metadata.name, metadata.namespace, metadata.uid, spec.nodeName, status.podIP and status.hostIP are)",
                            var.name
                        ));
                    }
                },
                None => {
                    return Err(format!(
                        "env {}: only values and fieldRefs are served by the local cluster, not secrets, ConfigMap keys or resource fields",
                        var.name
                    ));
                }
            },
            (None, None) => String::new(),
        };
        set(&mut env, &var.name, value);
    }
    Ok(env)
}

/// `$(VAR)` replaced by `VAR`'s value when it is set, `$$` by `$`, as the kubelet expands them.
fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some((_, value)) = env.iter().find(|(k, _)| *k == inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The program and arguments of a container: the image's program and `args`, or `command` and
/// `args` with `command`'s first word standing for the image's program when their file names
/// agree.
fn command_line(
    program: &Path,
    container: &Container,
    env: &[(String, String)],
) -> (PathBuf, Vec<String>) {
    let args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|a| expand(a, env))
        .collect();
    match container.command.as_deref() {
        Some([first, rest @ ..]) => {
            let first = expand(first, env);
            let stands_for_image = Path::new(&first).file_name() == program.file_name();
            let program = if stands_for_image {
                program.to_path_buf()
            } else {
                PathBuf::from(first)
            };
            let mut all: Vec<String> = rest.iter().map(|a| expand(a, env)).collect();
            all.extend(args);
            (program, all)
        }
        _ => (program.to_path_buf(), args),
    }
}

async fn run_controllers(client: kube::Client, node: String, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        match tokio::time::timeout(TICK_TIMEOUT, manager::tick(&client, &node, now_ms())).await {
            Ok(Ok(failed)) => {
                for error in failed {
                    // A conflict or a vanished object: the next look decides again.
                    tracing::debug!("controllers: {error}");
                }
            }
            Ok(Err(error)) => tracing::warn!("controllers: {error}"),
            Err(_) => {
                tracing::warn!("controllers: a look took over {TICK_TIMEOUT:?}; trying again")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec};
    use kube::api::ObjectMeta;

    fn pod_with(container: Container) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-x".into()),
                namespace: Some("ha".into()),
                uid: Some("u".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("khaos-node".into()),
                containers: vec![container],
                ..PodSpec::default()
            }),
            status: None,
        }
    }

    fn field(name: &str, path: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: path.into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }
    }

    #[test]
    fn the_downward_api_and_expansion_give_a_pod_its_identity() {
        let container = Container {
            name: "main".into(),
            image: Some("khaos:dev".into()),
            command: Some(vec!["/usr/local/bin/khaos".into(), "node".into()]),
            args: Some(vec![
                "--identity=$(POD_NAME)".into(),
                "$$(POD_NAME)".into(),
                "$(NOPE)".into(),
            ]),
            env: Some(vec![
                field("POD_NAME", "metadata.name"),
                field("POD_NAMESPACE", "metadata.namespace"),
                field("POD_IP", "status.podIP"),
            ]),
            ..Container::default()
        };
        let pod = pod_with(container.clone());
        let env = environment(&pod, &container, Path::new("/k"), "127.0.0.1").unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("POD_NAME"), Some("web-x"));
        assert_eq!(get("POD_NAMESPACE"), Some("ha"));
        assert_eq!(get("POD_IP"), Some("127.0.0.1"));
        assert_eq!(get("KUBECONFIG"), Some("/k"));
        let (program, args) = command_line(Path::new("/build/khaos"), &container, &env);
        // The image's program stands for the command's first word, which names it.
        assert_eq!(program, Path::new("/build/khaos"));
        assert_eq!(args, ["node", "--identity=web-x", "$(POD_NAME)", "$(NOPE)"]);
        let plain = Container {
            command: None,
            args: Some(vec!["a".into()]),
            ..container.clone()
        };
        assert_eq!(
            command_line(Path::new("/build/khaos"), &plain, &env).1,
            ["a"]
        );
        let other = Container {
            command: Some(vec!["sh".into(), "-c".into()]),
            ..container
        };
        assert_eq!(
            command_line(Path::new("/build/khaos"), &other, &env).0,
            Path::new("sh")
        );
    }

    #[test]
    fn an_env_source_the_cluster_cannot_serve_is_refused_with_what_it_can() {
        let container = Container {
            name: "main".into(),
            env: Some(vec![field("X", "metadata.labels['a']")]),
            ..Container::default()
        };
        let error = environment(
            &pod_with(container.clone()),
            &container,
            Path::new("/k"),
            "127.0.0.1",
        )
        .unwrap_err();
        assert!(error.contains("metadata.name"), "{error}");
    }

    #[test]
    fn images_are_name_equals_path() {
        assert_eq!(
            parse_image("khaos:dev=/x/khaos").unwrap(),
            ("khaos:dev".to_owned(), PathBuf::from("/x/khaos"))
        );
        assert!(parse_image("khaos:dev").unwrap_err().contains("IMAGE=PATH"));
        assert!(parse_image("=x").is_err());
    }
}
