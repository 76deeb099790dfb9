//! The local cluster as a user meets it: `khaos serve --cluster` with pods that are real
//! processes, driven by kubectl, with the processes watched from the outside (their pid files,
//! `kill -0`, their output).
//!
//! The pods run `/bin/sh` (`--image sh:1=/bin/sh`) with small scripts: one that says when it gets
//! SIGTERM, one that ignores it, one that crashes.

// These tests wait on real processes with the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `khaos serve --cluster` child process, killed when dropped.
struct Cluster {
    child: Child,
    url: String,
    pods_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let pods_dir = dir.path().join("pods");
        let mut child = Command::new(env!("CARGO_BIN_EXE_khaos"))
            .args(["serve", "--addr", "127.0.0.1:0", "--cluster"])
            .args(["--image", "sh:1=/bin/sh"])
            .arg("--pods-dir")
            .arg(&pods_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("khaos starts");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped"))
            .read_line(&mut first)
            .expect("khaos prints its address");
        let url = first
            .trim()
            .strip_prefix("khaos API server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
            .to_owned();
        Cluster {
            child,
            url,
            pods_dir,
            _dir: dir,
        }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        let home = self._dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        Command::new("kubectl")
            .env("KUBECONFIG", "/dev/null")
            .env("HOME", &home)
            .args(["--server", &self.url])
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply` of a manifest given as text.
    fn apply(&self, manifest: &str) {
        let path = self._dir.path().join("manifest.json");
        std::fs::write(&path, manifest).unwrap();
        self.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
    }

    /// The pods, as the API lists them.
    fn pods(&self) -> Vec<Value> {
        let list: Value =
            serde_json::from_str(&self.kubectl_ok(&["get", "pods", "-o", "json"])).unwrap();
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// The pods that are running and not being deleted.
    fn running(&self) -> Vec<Value> {
        self.pods()
            .into_iter()
            .filter(|p| {
                p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
            })
            .filter(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())
            .collect()
    }

    /// The directory the kubelet gave a pod.
    fn pod_dir(&self, pod: &Value) -> PathBuf {
        let meta = &pod["metadata"];
        self.pods_dir.join(format!(
            "{}_{}_{}",
            meta["namespace"].as_str().unwrap(),
            meta["name"].as_str().unwrap(),
            meta["uid"].as_str().unwrap()
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until `check` gives a value, failing after `limit` with `what`.
fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn have_kubectl() -> bool {
    let present = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!("skipped: no kubectl on PATH (.ci/run installs one)");
    }
    present
}

/// Whether process `pid` is alive (and not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The pid a pod's script wrote to `pid` in its directory.
fn pid_of(dir: &Path) -> i32 {
    let what = format!("the pod writing its pid in {}", dir.display());
    wait_for(Duration::from_secs(10), &what, || {
        std::fs::read_to_string(dir.join("pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    })
}

/// A Deployment of `replicas` pods of `sh -c script`, with `grace` seconds of termination grace.
fn deployment(name: &str, replicas: u32, grace: u32, script: &str) -> String {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "containers": [{
                        "name": "main",
                        "image": "sh:1",
                        "command": ["sh", "-c", script],
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        ],
                    }],
                },
            },
        },
    })
    .to_string()
}

// `$$` is the kubelet's escape for `$` in a command (as in Kubernetes), so the shell's `$$` is
// written `$$$$`.

/// Says it started (with its downward-API identity), writes its pid, says when SIGTERM comes.
const POLITE: &str = "echo started $POD_NAME at $POD_IP; echo $$$$ > pid; trap 'echo got SIGTERM; exit 0' TERM; while true; do sleep 0.1; done";

/// Ignores SIGTERM: only SIGKILL stops it.
const STUBBORN: &str = "echo $$$$ > pid; trap '' TERM; while true; do sleep 0.1; done";

#[test]
fn a_deployment_runs_pods_as_processes_and_a_deleted_pod_is_replaced_under_a_new_name() {
    if !have_kubectl() {
        return;
    }
    let cluster = Cluster::start(&[]);
    cluster.apply(&deployment("web", 2, 30, POLITE));
    let pods = wait_for(Duration::from_secs(20), "two running pods", || {
        let running = cluster.running();
        (running.len() == 2).then_some(running)
    });
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(victim.starts_with("web-"), "{victim}");
    assert_eq!(pods[0]["spec"]["nodeName"], "khaos-node");
    // The downward API gave the process its pod's name and IP; kubectl logs serves its output.
    let logs = cluster.kubectl_ok(&["logs", &victim]);
    assert_eq!(logs.trim(), format!("started {victim} at 127.0.0.1"));
    let victim_dir = cluster.pod_dir(&pods[0]);
    let victim_pid = pid_of(&victim_dir);

    // The table kubectl shows, from the server's Table.
    let table = cluster.kubectl_ok(&["get", "pods"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(
        table.contains("1/1") && table.contains("Running"),
        "{table}"
    );

    // A delete with the default grace: SIGTERM, the process goes, then the object does; a
    // replacement with a new name runs meanwhile.
    cluster.kubectl_ok(&["delete", "pod", &victim, "--wait=false"]);
    let replacement = wait_for(Duration::from_secs(20), "a replacement", || {
        let running = cluster.running();
        let names: Vec<String> = running
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        (running.len() == 2 && !names.contains(&victim)).then_some(names)
    });
    assert!(
        replacement.iter().all(|n| n.starts_with("web-")),
        "{replacement:?}"
    );
    wait_for(
        Duration::from_secs(20),
        "the deleted pod's object to go",
        || {
            let gone = cluster
                .pods()
                .iter()
                .all(|p| p["metadata"]["name"] != victim.as_str());
            gone.then_some(())
        },
    );
    assert!(!alive(victim_pid), "the deleted pod's process still runs");
    let output = std::fs::read_to_string(victim_dir.join("main.log")).unwrap();
    assert!(output.contains("got SIGTERM"), "{output}");

    // kubectl scale, through the scale subresource.
    cluster.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"]);
    wait_for(Duration::from_secs(20), "three running pods", || {
        (cluster.running().len() == 3).then_some(())
    });
    cluster.kubectl_ok(&["scale", "deployment", "web", "--replicas=1"]);
    wait_for(Duration::from_secs(20), "one pod left", || {
        (cluster.pods().len() == 1).then_some(())
    });
    let status = cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=20s"]);
    assert!(status.contains("successfully rolled out"), "{status}");

    // Deleting the Deployment collects its ReplicaSet and pods, gracefully.
    cluster.kubectl_ok(&["delete", "deployment", "web"]);
    wait_for(Duration::from_secs(20), "every pod to go", || {
        cluster.pods().is_empty().then_some(())
    });
}

#[test]
fn a_force_deleted_pods_process_outlives_its_replacements_start_under_the_full_grace_switch() {
    if !have_kubectl() {
        return;
    }
    // The kubelet versions that give a force-deleted container its whole grace: 10 s here.
    let cluster = Cluster::start(&["--force-delete-grace", "full"]);
    cluster.apply(&deployment("ha", 1, 10, STUBBORN));
    let old = wait_for(Duration::from_secs(20), "a running pod", || {
        cluster.running().pop()
    });
    let old_name = old["metadata"]["name"].as_str().unwrap().to_owned();
    let old_pid = pid_of(&cluster.pod_dir(&old));
    let deleted = Instant::now();
    cluster.kubectl_ok(&["delete", "pod", &old_name, "--grace-period=0", "--force"]);
    // The object is gone at once, and the ReplicaSet starts a replacement at once...
    let new = wait_for(Duration::from_secs(20), "a replacement", || {
        cluster
            .running()
            .into_iter()
            .find(|p| p["metadata"]["name"] != old_name.as_str())
    });
    let new_pid = pid_of(&cluster.pod_dir(&new));
    // ...while the old process still runs: two candidates at once.
    assert!(
        alive(old_pid) && alive(new_pid),
        "both processes should run in the window ({:?} after the delete)",
        deleted.elapsed()
    );
    assert!(
        cluster
            .pods()
            .iter()
            .all(|p| p["metadata"]["name"] != old_name.as_str())
    );
    // The kubelet kills it once the grace has passed.
    wait_for(
        Duration::from_secs(25),
        "the old process to be killed",
        || (!alive(old_pid)).then_some(()),
    );
    assert!(
        deleted.elapsed() >= Duration::from_secs(10),
        "killed after {:?}, before its 10 s grace",
        deleted.elapsed()
    );
    assert!(alive(new_pid));
}

#[test]
fn by_default_a_force_deleted_pod_is_killed_after_the_minimum_grace_not_its_own() {
    if !have_kubectl() {
        return;
    }
    let cluster = Cluster::start(&[]);
    cluster.apply(&deployment("ha", 1, 60, STUBBORN));
    let old = wait_for(Duration::from_secs(20), "a running pod", || {
        cluster.running().pop()
    });
    let old_name = old["metadata"]["name"].as_str().unwrap().to_owned();
    let old_pid = pid_of(&cluster.pod_dir(&old));
    let deleted = Instant::now();
    cluster.kubectl_ok(&["delete", "pod", &old_name, "--grace-period=0", "--force"]);
    wait_for(
        Duration::from_secs(20),
        "the old process to be killed",
        || (!alive(old_pid)).then_some(()),
    );
    let took = deleted.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "killed after {took:?}: the minimum is 2 s, the pod's own grace 60 s"
    );
}

#[test]
fn a_graceful_delete_waits_for_the_grace_then_sigkills_and_only_then_removes_the_object() {
    if !have_kubectl() {
        return;
    }
    let cluster = Cluster::start(&[]);
    cluster.apply(&deployment("slow", 1, 10, STUBBORN));
    let pod = wait_for(Duration::from_secs(20), "a running pod", || {
        cluster.running().pop()
    });
    let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    let pid = pid_of(&cluster.pod_dir(&pod));
    cluster.kubectl_ok(&["delete", "pod", &name, "--wait=false"]);
    // Marked, not gone: the object says Terminating while its process ignores SIGTERM.
    let marked: Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "pod", &name, "-o", "json"])).unwrap();
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 10);
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let table = cluster.kubectl_ok(&["get", "pod", &name]);
    assert!(table.contains("Terminating"), "{table}");
    assert!(alive(pid));
    // A second delete may shorten the grace, never lengthen it.
    cluster.kubectl_ok(&["delete", "pod", &name, "--wait=false", "--grace-period=60"]);
    let again: Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "pod", &name, "-o", "json"])).unwrap();
    assert_eq!(again["metadata"]["deletionGracePeriodSeconds"], 10);
    wait_for(Duration::from_secs(30), "the object to go", || {
        cluster
            .pods()
            .iter()
            .all(|p| p["metadata"]["name"] != name.as_str())
            .then_some(())
    });
    assert!(!alive(pid), "the object went before its process");
}

#[test]
fn a_crashing_container_restarts_with_back_off_and_its_previous_output_is_kept() {
    if !have_kubectl() {
        return;
    }
    let cluster = Cluster::start(&["--restart-backoff", "1s"]);
    // kubectl create deployment sends protobuf.
    cluster.kubectl_ok(&[
        "create",
        "deployment",
        "crash",
        "--image=sh:1",
        "--",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    let pod = wait_for(Duration::from_secs(30), "two restarts", || {
        cluster
            .pods()
            .into_iter()
            .find(|p| p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(2))
    });
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3, "{status}");
    let name = pod["metadata"]["name"].as_str().unwrap();
    wait_for(Duration::from_secs(10), "CrashLoopBackOff", || {
        let table = cluster.kubectl_ok(&["get", "pod", name]);
        table.contains("CrashLoopBackOff").then_some(())
    });
    assert_eq!(
        cluster.kubectl_ok(&["logs", name, "--previous"]).trim(),
        "run"
    );

    // A process killed from the node side (SIGKILL) is restarted, its exit code 137.
    cluster.apply(&deployment("victim", 1, 30, POLITE));
    let pod = wait_for(Duration::from_secs(20), "a running pod", || {
        cluster
            .running()
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app"] == "victim")
    });
    let pid = pid_of(&cluster.pod_dir(&pod));
    std::fs::remove_file(cluster.pod_dir(&pod).join("pid")).unwrap();
    assert!(
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let name = pod["metadata"]["name"].as_str().unwrap();
    let restarted = wait_for(Duration::from_secs(20), "a restart", || {
        let pod: Value =
            serde_json::from_str(&cluster.kubectl_ok(&["get", "pod", name, "-o", "json"])).ok()?;
        let status = pod["status"]["containerStatuses"][0].clone();
        (status["restartCount"] == 1 && status["state"]["running"].is_object()).then_some(status)
    });
    assert_eq!(
        restarted["lastState"]["terminated"]["exitCode"], 137,
        "{restarted}"
    );
    assert_eq!(
        restarted["lastState"]["terminated"]["signal"], 9,
        "{restarted}"
    );
}

#[test]
fn stopping_the_server_stops_every_pod_process() {
    if !have_kubectl() {
        return;
    }
    let mut cluster = Cluster::start(&[]);
    cluster.apply(&deployment("web", 2, 30, STUBBORN));
    let pods = wait_for(Duration::from_secs(20), "two running pods", || {
        let running = cluster.running();
        (running.len() == 2).then_some(running)
    });
    let pids: Vec<i32> = pods.iter().map(|p| pid_of(&cluster.pod_dir(p))).collect();
    assert!(pids.iter().all(|p| alive(*p)));
    let status = Command::new("kill")
        .args(["-s", "TERM", &cluster.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = wait_for(Duration::from_secs(15), "the server to stop", || {
        cluster.child.try_wait().ok().flatten()
    });
    assert!(exited.success(), "{exited:?}");
    // The processes ignored SIGTERM: the server killed them after the minimum grace.
    for pid in pids {
        assert!(!alive(pid), "pod process {pid} outlived the server");
    }
}

#[test]
fn an_image_without_a_program_says_how_to_map_it() {
    if !have_kubectl() {
        return;
    }
    let cluster = Cluster::start(&[]);
    cluster.kubectl_ok(&["create", "deployment", "nomap", "--image=nginx:1.27"]);
    let waiting = wait_for(Duration::from_secs(20), "the waiting reason", || {
        let pod = cluster.pods().pop()?;
        let waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (waiting["reason"] == "ErrImageNotMapped").then_some(waiting)
    });
    let message = waiting["message"].as_str().unwrap();
    assert!(message.contains("--image nginx:1.27=PATH"), "{message}");
    let out = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--cluster",
            "--image",
            "x:1=/no/such/program",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no such file"), "{stderr}");

    // One cluster per pods directory: a second server on the same one is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args(["serve", "--addr", "127.0.0.1:0", "--cluster", "--pods-dir"])
        .arg(&cluster.pods_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("give each server its own"), "{stderr}");

    // Pods run programs on this machine: reachable from elsewhere, the cluster needs a token.
    let out = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--allow-remote",
            "example.lan",
            "--cluster",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs --token"), "{stderr}");
}

/// `khaos chaos inject` against this cluster: its JSON line, or what it said on stderr.
fn inject(cluster: &Cluster, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args([
            "chaos",
            "inject",
            "--server",
            &cluster.url,
            "--cluster-id",
            "khaos",
        ])
        .args(args)
        .output()
        .expect("khaos runs");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("one JSON line"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The ConfigMap lock of cluster `khaos`, as `khaos node` writes it, held by `holder`.
fn hold_lock(cluster: &Cluster, holder: &str) {
    let record = serde_json::json!({
        "holderIdentity": holder,
        "leaseDurationSeconds": 15,
        "leaderTransitions": 0,
    });
    let lock = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "khaos-cluster-config-map",
            "annotations": {"control-plane.alpha.kubernetes.io/leader": record.to_string()},
        },
    });
    cluster.apply(&lock.to_string());
}

fn uids(cluster: &Cluster) -> Vec<String> {
    let mut uids: Vec<String> = cluster
        .pods()
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_owned())
        .collect();
    uids.sort();
    uids
}

#[test]
fn the_injector_refuses_what_it_was_not_aimed_at_and_says_what_to_change() {
    if !have_kubectl() {
        return;
    }
    let cluster = Cluster::start(&[]);
    cluster.apply(&deployment("web", 3, 30, POLITE));
    let pods = wait_for(Duration::from_secs(20), "three running pods", || {
        let running = cluster.running();
        (running.len() == 3).then_some(running)
    });
    let names: Vec<&str> = pods
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    let web = ["--namespace", "default", "--selector", "app=web"];
    let refused = |args: &[&str], says: &str| {
        let error = inject(&cluster, args).expect_err("refused");
        assert!(error.contains(says), "{args:?}: {error}");
    };
    refused(
        &[&web[..], &["--target", "random"]].concat(),
        "kubectl annotate namespace default khaos.dev/chaos=enabled",
    );
    cluster.kubectl_ok(&[
        "annotate",
        "namespace",
        "default",
        "khaos.dev/chaos=enabled",
    ]);
    refused(
        &["--namespace", "kube-system", "--selector", "app=web"],
        "system namespaces",
    );
    refused(
        &["--namespace", "default", "--selector", " "],
        "empty selector",
    );
    refused(
        &["--namespace", "default", "--selector", "app=nothing"],
        "no running pod",
    );
    refused(&web, "there is no lock \"khaos-cluster-config-map\"");
    refused(
        &["--namespace", "default", "--selector", "app!=db"],
        "negations alone",
    );
    // The holder must be one of the selected pods, or every pod would count as a standby.
    hold_lock(&cluster, "someone-else");
    refused(
        &[&web[..], &["--target", "standby"]].concat(),
        "not a running pod matching",
    );
    // A server elsewhere needs --allow-any-cluster (refused before anything is sent).
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args([
            "chaos",
            "inject",
            "--server",
            "http://192.0.2.1:6443",
            "--cluster-id",
            "khaos",
        ])
        .args(web)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(
        !elsewhere.status.success() && said.contains("--allow-any-cluster"),
        "{said}"
    );
    // A pod no ReplicaSet controls would not come back.
    let bare = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare", "labels": {"app": "bare"}},
        "spec": {"containers": [{"name": "main", "image": "sh:1", "command": ["sh", "-c", POLITE]}]},
    });
    cluster.apply(&bare.to_string());
    wait_for(Duration::from_secs(20), "the bare pod running", || {
        cluster
            .running()
            .iter()
            .any(|p| p["metadata"]["name"] == "bare")
            .then_some(())
    });
    refused(
        &[
            "--namespace",
            "default",
            "--selector",
            "app=bare",
            "--target",
            "random",
        ],
        "which no ReplicaSet controls",
    );

    // A dry run names the leader's pod and touches nothing.
    hold_lock(&cluster, names[1]);
    let before = uids(&cluster);
    let dry = inject(&cluster, &[&web[..], &["--force", "--dry-run"]].concat()).unwrap();
    assert_eq!(dry["pod"], names[1]);
    assert_eq!(dry["answer"], "dry_run");
    assert_eq!(dry["action"]["grace_seconds"], 0);
    // The seed chooses among the standbys, the same way each time, never the leader.
    let standby = |seed: &str| {
        inject(
            &cluster,
            &[
                &web[..],
                &["--target", "standby", "--seed", seed, "--dry-run"],
            ]
            .concat(),
        )
        .unwrap()["pod"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let chosen: Vec<String> = (0..8).map(|s| standby(&s.to_string())).collect();
    assert!(
        chosen
            .iter()
            .all(|p| p != names[1] && names.contains(&p.as_str()))
    );
    assert_eq!(standby("3"), chosen[3]);
    assert_eq!(uids(&cluster), before, "a dry run deleted nothing");
}

#[test]
fn the_injector_force_deletes_the_leaders_pod_and_holds_back_while_one_is_down() {
    if !have_kubectl() {
        return;
    }
    let cluster = Cluster::start(&[]);
    cluster.kubectl_ok(&[
        "annotate",
        "namespace",
        "default",
        "khaos.dev/chaos=enabled",
    ]);
    cluster.apply(&deployment("web", 3, 30, STUBBORN));
    let pods = wait_for(Duration::from_secs(20), "three running pods", || {
        let running = cluster.running();
        (running.len() == 3).then_some(running)
    });
    let leader = pods[0]["metadata"]["name"].as_str().unwrap().to_owned();
    hold_lock(&cluster, &leader);
    let web = ["--namespace", "default", "--selector", "app=web"];
    let hit = inject(&cluster, &[&web[..], &["--force"]].concat()).unwrap();
    assert_eq!(
        (hit["pod"].as_str(), &hit["answer"]),
        (Some(leader.as_str()), &Value::from("accepted"))
    );
    // Removed at once; the ReplicaSet replaces it under a new name.
    wait_for(Duration::from_secs(20), "a replacement running", || {
        let running = cluster.running();
        let names: Vec<&str> = running
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        (running.len() == 3 && !names.contains(&leader.as_str())).then_some(())
    });
    // A graceful delete of a pod that ignores SIGTERM leaves it terminating for its grace: one
    // down, so with --max-down 1 the next injection waits.
    let first = inject(
        &cluster,
        &[&web[..], &["--target", "random", "--grace", "30"]].concat(),
    )
    .unwrap();
    assert_eq!(first["answer"], "accepted");
    let error = inject(&cluster, &[&web[..], &["--target", "random"]].concat()).unwrap_err();
    assert!(error.contains("are down already"), "{error}");
    for seed in 0..8 {
        let seed = seed.to_string();
        let more = inject(
            &cluster,
            &[
                &web[..],
                &["--target", "random", "--max-down", "3", "--dry-run"],
                &["--seed", &seed],
            ]
            .concat(),
        )
        .unwrap();
        assert_ne!(
            more["pod"], first["pod"],
            "seed {seed}: a pod being deleted is no target"
        );
    }
}
