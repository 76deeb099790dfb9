//! The standalone server as a user meets it: the `khaos serve` process on loopback, driven by the
//! conformance suite through kube-rs, by kubectl, and by signals and bad flags.

// These tests wait on real processes with the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use khaos_sim::conformance::{self, Target};

/// A `khaos serve` child process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_khaos"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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
        Server { child, url }
    }

    fn signal(&mut self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    fn wait(&mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                let mut out = String::new();
                self.child
                    .stdout
                    .as_mut()
                    .expect("piped")
                    .read_to_string(&mut out)
                    .expect("readable");
                return (status, out);
            }
            assert!(
                started.elapsed() < limit,
                "khaos did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn conformance_against_the_standalone_process() {
    let server = Server::start(&["--bookmark-interval-ms", "500"]);
    let url = server.url.clone();
    let results = runtime().block_on(async move {
        let target = Target::new("standalone", true, move |identity| {
            khaos::live::client_for_url(&url, identity, None).expect("a client")
        })
        .with_bookmark_interval(Duration::from_millis(500));
        conformance::run(&target, None, |r| println!("{r}")).await
    });
    println!("{}", conformance::summary(&results));
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.outcome.is_failed())
        .map(ToString::to_string)
        .collect();
    assert!(
        failed.is_empty(),
        "conformance failures against {}:\n{}",
        server.url,
        failed.join("\n")
    );
    assert_eq!(results.len(), conformance::case_names().len());
}

#[test]
fn a_token_is_required_when_set() {
    let server = Server::start(&["--token", "s3cret"]);
    let url = server.url.clone();
    runtime().block_on(async move {
        let anonymous = khaos::live::client_for_url(&url, "anonymous", None).unwrap();
        match anonymous.apiserver_version().await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 401);
                assert_eq!(status.reason, "Unauthorized");
            }
            other => panic!("a request without the token got {other:?}"),
        }
        let wrong = khaos::live::client_for_url(&url, "wrong", Some("guess")).unwrap();
        match wrong.apiserver_version().await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
            other => panic!("a request with the wrong token got {other:?}"),
        }
        let right = khaos::live::client_for_url(&url, "right", Some("s3cret")).unwrap();
        right
            .apiserver_version()
            .await
            .expect("the right token is let in");
    });
}

#[test]
fn sigterm_and_sigint_stop_the_server_cleanly() {
    for signal in ["TERM", "INT"] {
        let mut server = Server::start(&[]);
        server.signal(signal);
        let (status, out) = server.wait(Duration::from_secs(10));
        assert!(status.success(), "SIG{signal}: exit {status}");
        assert!(
            out.contains("khaos API server stopped"),
            "SIG{signal}: {out:?}"
        );
    }
}

#[test]
fn the_history_file_records_every_commit() {
    let dir = std::env::temp_dir().join(format!("khaos-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.jsonl");
    let _ = std::fs::remove_file(&path);
    let mut server = Server::start(&["--history", path.to_str().unwrap()]);
    let url = server.url.clone();
    runtime().block_on(async move {
        use k8s_openapi::api::core::v1::ConfigMap;
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(
            khaos::live::client_for_url(&url, "writer-1", None).unwrap(),
            "default",
        );
        let cm: ConfigMap = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "h"}, "data": {"a": "1"}}),
        )
        .unwrap();
        api.create(&Default::default(), &cm).await.unwrap();
        api.delete("h", &Default::default()).await.unwrap();
    });
    server.signal("TERM");
    server.wait(Duration::from_secs(10));
    let history = std::fs::read_to_string(&path).unwrap();
    // The same line format as simulated histories, so the same checkers can read it.
    let entries = khaos_reports::history::parse(&history).unwrap();
    assert!(entries.iter().all(|e| e.node == "apiserver"));
    let lines: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours: Vec<_> = lines.iter().filter(|c| c["client"] == "writer-1").collect();
    assert_eq!(ours.len(), 2, "{history}");
    assert_eq!(ours[0]["event"], "commit");
    assert_eq!(ours[0]["verb"], "create");
    assert_eq!(ours[1]["verb"], "delete");
    assert!(ours[0]["revision"].as_u64() < ours[1]["revision"].as_u64());
    assert_eq!(ours[0]["object"]["data"]["a"], "1");
}

/// Eight clients create ConfigMaps as fast as they can until the server is stopped by `signal`;
/// every create that was answered 201 must be in the history file.
fn answered_creates_survive(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let mut server = Server::start(&["--history", path.to_str().unwrap()]);
    let url = server.url.clone();
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let runtime = runtime();
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let url = url.clone();
            let answered = answered.clone();
            runtime.spawn(async move {
                use k8s_openapi::api::core::v1::ConfigMap;
                let api: kube::Api<ConfigMap> = kube::Api::namespaced(
                    khaos::live::client_for_url(&url, &format!("loader-{client}"), None).unwrap(),
                    "default",
                );
                for i in 0.. {
                    let name = format!("load-{client}-{i}");
                    let cm: ConfigMap =
                        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
                            .unwrap();
                    match api.create(&Default::default(), &cm).await {
                        Ok(_) => answered.lock().unwrap().push(name),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    // Let the load build up, then stop the server in the middle of it.
    while answered.lock().unwrap().len() < 400 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.signal(signal);
    server.wait(Duration::from_secs(10));
    runtime.block_on(async {
        for client in clients {
            let _ = client.await;
        }
    });
    let text = std::fs::read_to_string(&path).unwrap();
    // A SIGKILL may cut the last line short; every line before it is whole.
    let log = khaos_reports::history::parse_log(&text).unwrap();
    let committed: std::collections::BTreeSet<String> = log
        .lines
        .iter()
        .filter_map(|(entry, _)| match &entry.record {
            khaos_reports::Record::Harness(khaos_reports::history::HarnessEvent::Commit {
                name,
                ..
            }) => Some(name.clone()),
            _ => None,
        })
        .collect();
    let answered = answered.lock().unwrap();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|n| !committed.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "after SIG{signal}, {} of {} answered creates are missing from the history: {missing:?}",
        missing.len(),
        answered.len()
    );
}

#[test]
fn every_answered_commit_is_in_the_history_after_sigterm() {
    answered_creates_survive("TERM");
}

#[test]
fn every_answered_commit_is_in_the_history_after_sigkill() {
    answered_creates_survive("KILL");
}

#[test]
fn a_node_says_why_its_requests_fail_and_its_started_line_has_its_pid() {
    let server = Server::start(&[]);
    let storage = tempfile::tempdir().unwrap();
    let mut node = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args([
            "node",
            "--server",
            &server.url,
            "--namespace",
            "nope",
            "--cluster-id",
            "demo",
        ])
        .args([
            "--identity",
            "a",
            "--storage-dir",
            storage.path().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut started = String::new();
    BufReader::new(node.stdout.take().unwrap())
        .read_line(&mut started)
        .unwrap();
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    assert_eq!(started["event"], "started");
    assert_eq!(started["pid"], node.id());
    // The namespace does not exist: every write of the lock gets a 404, which the log names.
    let (lines, read) = std::sync::mpsc::channel();
    let stderr = node.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let found = loop {
        match read.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("WARN") && line.contains("namespaces \"nope\" not found") => {
                break true;
            }
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = node.kill();
    let _ = node.wait();
    assert!(
        found,
        "no warning naming the 404 within 20 s; stderr: {seen:?}"
    );
}

#[test]
fn a_history_that_cannot_be_written_stops_the_server_instead_of_serving_unrecorded_writes() {
    // Every write to /dev/full fails with ENOSPC, as a full disk does.
    let server = Server::start(&["--history", "/dev/full"]);
    let url = server.url.clone();
    runtime().block_on(async move {
        use k8s_openapi::api::core::v1::ConfigMap;
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(
            khaos::live::client_for_url(&url, "writer", None).unwrap(),
            "default",
        );
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "lost"}})).unwrap();
        match api.create(&Default::default(), &cm).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 500);
                assert!(
                    status.message.contains("stopped serving"),
                    "{}",
                    status.message
                );
            }
            other => panic!("a write the history could not take was answered {other:?}"),
        }
        // Nothing unrecorded is seen afterwards: reads fail too.
        match api.get_opt("lost").await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 500),
            other => panic!("a read after the journal failed was answered {other:?}"),
        }
    });
}

fn khaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args(args)
        .output()
        .expect("khaos runs")
}

#[test]
fn bad_flags_and_files_name_the_problem_and_the_fix() {
    let remote = khaos(&["serve", "--addr", "0.0.0.0:0"]);
    assert!(!remote.status.success());
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");

    // A server URL without a scheme panicked inside kube, then hung.
    let storage = tempfile::tempdir().unwrap();
    let storage = storage.path().to_str().unwrap();
    for args in [
        &[
            "node",
            "--server",
            "127.0.0.1:6443",
            "--cluster-id",
            "demo",
            "--storage-dir",
            storage,
            "--identity",
            "a",
        ][..],
        &["conformance", "--server", "localhost:6443"][..],
    ] {
        let out = khaos(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains("has no scheme") && stderr.contains("http://"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }

    // Nothing listens on port 1: one error, not a failed case per request.
    let out = khaos(&["conformance", "--server", "http://127.0.0.1:1"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("cannot reach the API server"),
        "{text}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("FAIL"),
        "no case ran"
    );

    // A data directory that holds something else is named, not served from.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("commits.jsonl"),
        "{\"t_ms\":1,\"node\":\"a\",\"event\":\"started\"}\n",
    )
    .unwrap();
    let out = khaos(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not a commit"),
        "{stderr}"
    );
    // One cut off mid-write (a SIGKILL's) starts, and the torn line is cut from the file.
    std::fs::write(data.path().join("commits.jsonl"), "{\"t_ms\":1,\"no").unwrap();
    let mut server = Server::start(&["--data-dir", data.path().to_str().unwrap()]);
    server.signal("TERM");
    server.wait(Duration::from_secs(10));
    assert_eq!(
        std::fs::read_to_string(data.path().join("commits.jsonl")).unwrap(),
        ""
    );

    let empty = khaos(&["serve", "--addr", "127.0.0.1:0", "--token", ""]);
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(
        !empty.status.success() && stderr.contains("--token is empty"),
        "{stderr}"
    );

    let foreign = tempfile::tempdir().unwrap();
    let config = foreign.path().join("config");
    std::fs::write(&config, "apiVersion: v1\nclusters: [{name: prod}]\n").unwrap();
    let out = khaos(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--write-kubeconfig",
        config.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("khaos did not write"),
        "{stderr}"
    );
    assert!(
        std::fs::read_to_string(&config).unwrap().contains("prod"),
        "left as it was"
    );

    let with_port = khaos(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--allow-remote",
        "host:6443",
    ]);
    assert!(!with_port.status.success());

    let bad_host = khaos(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--allow-remote",
        "http://x:1",
    ]);
    let stderr = String::from_utf8_lossy(&bad_host.stderr);
    assert!(
        !bad_host.status.success() && stderr.contains("without scheme or port"),
        "{stderr}"
    );

    let missing = khaos(&["serve", "--faults", "/nonexistent/faults.json"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && stderr.contains("/nonexistent/faults.json"),
        "{stderr}"
    );

    let dir = std::env::temp_dir().join(format!("khaos-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("faults.json");
    std::fs::write(&bad, r#"{"errors": [{"code": 418}]}"#).unwrap();
    let invalid = khaos(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--faults",
        bad.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        !invalid.status.success() && stderr.contains("code 418 is not one of 429, 500, 503, 504"),
        "{stderr}"
    );

    let flaw = khaos(&["sim", "race", "--flaw", "nope"]);
    let stderr = String::from_utf8_lossy(&flaw.stderr);
    assert!(
        !flaw.status.success() && stderr.contains("blind-writes"),
        "{stderr}"
    );

    let occupied = Server::start(&[]);
    let addr = occupied.url.trim_start_matches("http://").to_owned();
    let taken = khaos(&["serve", "--addr", &addr]);
    let stderr = String::from_utf8_lossy(&taken.stderr);
    assert!(
        !taken.status.success() && stderr.contains("127.0.0.1:0"),
        "{stderr}"
    );
}

#[test]
fn a_seed_replays_byte_for_byte_across_processes() {
    // Separate processes, at different moments: nothing but the seed may decide the history.
    let run = |seed: &str| {
        let out = khaos(&[
            "sim",
            "race",
            "--seed",
            seed,
            "--increments",
            "10",
            "--history",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    for seed in ["4", "7", "9"] {
        let first = run(seed);
        std::thread::sleep(Duration::from_millis(300));
        let second = run(seed);
        assert!(first.len() > 1000, "seed {seed}: a short history");
        assert!(
            first == second,
            "seed {seed}: two processes wrote different histories"
        );
    }
}

#[test]
fn the_sim_flaw_is_caught_and_replayable() {
    let out = khaos(&["sim", "race", "--seed", "1", "--flaw", "blind-writes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "blind writes passed the checker: {stdout}"
    );
    assert!(stdout.contains("lost update"), "{stdout}");
    assert!(
        stdout.contains(
            "replay: khaos sim race --seed 1 --clients 3 --increments 20 --flaw blind-writes"
        ),
        "{stdout}"
    );
    let clean = khaos(&["sim", "race", "--seed", "1", "--seeds", "3"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
}

// ---- kubectl ---------------------------------------------------------------------------------

/// kubectl pointed at `server`, with an empty kubeconfig and a HOME of its own, so nothing of the
/// user's is touched and no discovery cache from another run is used.
fn kubectl_command(server: &str) -> Command {
    let home = std::env::temp_dir().join(format!("khaos-kubectl-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("a temporary HOME");
    let mut command = Command::new("kubectl");
    command
        .env("KUBECONFIG", "/dev/null")
        .env("HOME", &home)
        .args(["--server", server]);
    command
}

fn kubectl(server: &str, args: &[&str]) -> Output {
    kubectl_command(server)
        .args(args)
        .output()
        .expect("kubectl runs")
}

fn kubectl_ok(server: &str, args: &[&str]) -> String {
    let out = kubectl(server, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_fails(server: &str, args: &[&str], expected: &str) {
    let out = kubectl(server, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    assert!(
        stderr.contains(expected),
        "kubectl {args:?}: expected {expected:?} in {stderr:?}"
    );
}

/// The first line a child prints, or a failure after 10 s (never a hang).
fn first_line(child: &mut Child, what: &str) -> String {
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(BufReader::new(stdout).lines().next());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            panic!("{what} printed no line within 10 s: {other:?}");
        }
    }
}

#[test]
fn kubectl_and_kube_rs_use_the_token_over_tls_from_the_written_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let kubeconfig = kubeconfig.to_str().unwrap();
    let server = Server::start(&[
        "--tls",
        "--token",
        "s3cret",
        "--write-kubeconfig",
        kubeconfig,
    ]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(kubeconfig).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the kubeconfig holds the token: owner only"
    );

    // kube-rs, from the file, as a user's program would load it.
    let path = kubeconfig.to_owned();
    runtime().block_on(async move {
        let file = kube::config::Kubeconfig::read_from(&path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        client
            .apiserver_version()
            .await
            .expect("kube-rs trusts the authority and sends the token");
    });

    if !have_kubectl() {
        return;
    }
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .env("HOME", &home)
            .args(["--kubeconfig", kubeconfig])
            .args(args)
            .output()
            .expect("kubectl runs")
    };
    let out = kubectl(&["create", "configmap", "over-tls", "--from-literal=a=b"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(&["get", "configmaps"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("over-tls"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(&["--token", "wrong", "get", "configmaps"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP to the TLS port gets nothing served.
    let plain = server.url.replace("https://", "http://");
    let out = kubectl_command(&plain)
        .args(["get", "configmaps"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn kubectl_diff_shows_only_what_changes() {
    if !have_kubectl() {
        return;
    }
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("cm.yaml");
    let write = |value: &str| {
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: diffme\ndata:\n  a: {value}\n"
            ),
        )
        .unwrap()
    };
    let file = manifest.to_str().unwrap();
    write("b");
    kubectl_ok(&server.url, &["apply", "-f", file]);
    // A dry run that gave the object a new resourceVersion (or the next uid) made every diff
    // show a change.
    let same = kubectl(&server.url, &["diff", "-f", file]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "no change, yet: {}{}",
        String::from_utf8_lossy(&same.stdout),
        String::from_utf8_lossy(&same.stderr)
    );
    write("c");
    let changed = kubectl(&server.url, &["diff", "-f", file]);
    assert_eq!(
        changed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let diff = String::from_utf8_lossy(&changed.stdout);
    assert!(
        diff.contains("-  a: b") && diff.contains("+  a: c"),
        "{diff}"
    );
    assert!(!diff.contains("resourceVersion"), "{diff}");
}

/// kube-rs's `Recorder` writes events.k8s.io/v1 Events (a create, then a merge patch of the
/// series); they are the core/v1 Events kubectl and `kubectl describe` read, as on a real
/// cluster, where the two groups share one storage.
#[test]
fn kube_runtime_events_are_the_core_events_kubectl_reads() {
    use k8s_openapi::api::{core::v1 as core, events::v1 as events};
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let server = Server::start(&[]);
    let url = server.url.clone();
    runtime().block_on(async move {
        let client = khaos::live::client_for_url(&url, "recorder", None).unwrap();
        let lease = serde_json::json!({"metadata": {"name": "lock"}});
        let lease: k8s_openapi::api::coordination::v1::Lease =
            serde_json::from_value(lease).unwrap();
        let lease = kube::Api::namespaced(client.clone(), "default")
            .create(&Default::default(), &lease)
            .await
            .unwrap();
        let reference = kube::Resource::object_ref(&lease, &());
        let reporter = Reporter {
            controller: "khaos.dev/test".into(),
            instance: Some("node-1".into()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        let event = Event {
            type_: EventType::Normal,
            reason: "LeaderElection".into(),
            note: Some("node-1 became leader".into()),
            action: "Elect".into(),
            secondary: None,
        };
        recorder.publish(&event, &reference).await.expect("created");
        recorder
            .publish(&event, &reference)
            .await
            .expect("patched as a series");

        let grouped: kube::Api<events::Event> = kube::Api::namespaced(client.clone(), "default");
        let selected = grouped
            .list(&kube::api::ListParams::default().fields("regarding.name=lock"))
            .await
            .unwrap();
        assert_eq!(selected.items.len(), 1, "{selected:?}");
        let recorded = &selected.items[0];
        assert_eq!(recorded.note.as_deref(), Some("node-1 became leader"));
        assert_eq!(recorded.series.as_ref().map(|s| s.count), Some(2));
        assert_eq!(
            recorded.reporting_controller.as_deref(),
            Some("khaos.dev/test")
        );

        let core_events: kube::Api<core::Event> = kube::Api::namespaced(client.clone(), "default");
        let seen = core_events
            .list(&kube::api::ListParams::default().fields("involvedObject.name=lock"))
            .await
            .unwrap();
        assert_eq!(seen.items.len(), 1, "the same Event through core/v1");
        let seen = &seen.items[0];
        assert_eq!(seen.message.as_deref(), Some("node-1 became leader"));
        assert_eq!(seen.involved_object.kind.as_deref(), Some("Lease"));
        assert_eq!(seen.reporting_component.as_deref(), Some("khaos.dev/test"));
        assert_eq!(seen.metadata.uid, recorded.metadata.uid);

        // A core name is not an events.k8s.io field label; the strict checks hold for creates.
        let refused = grouped
            .list(&kube::api::ListParams::default().fields("involvedObject.name=lock"))
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("field label not supported: involvedObject.name"),
            "{refused}"
        );
        let bare: events::Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "bare"},
            "eventTime": "2026-12-03T10:00:00.000000Z",
            "type": "Normal",
            "reason": "R",
            "action": "A",
            "reportingInstance": "i",
        }))
        .unwrap();
        let invalid = grouped
            .create(&Default::default(), &bare)
            .await
            .unwrap_err();
        assert!(
            invalid.to_string().contains(
                "Event.events.k8s.io \"bare\" is invalid: [reportingController: Required value"
            ),
            "{invalid}"
        );
        let missing = grouped.get("nope").await.unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("events.events.k8s.io \"nope\" not found"),
            "{missing}"
        );

        // A watch through events.k8s.io sees a core write in its own schema.
        use futures::{StreamExt, TryStreamExt};
        let rv = selected.metadata.resource_version.clone().unwrap();
        let mut watch = grouped
            .watch(&kube::api::WatchParams::default().timeout(5), &rv)
            .await
            .unwrap()
            .boxed();
        let legacy: core::Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "legacy"},
            "involvedObject": {"kind": "Lease", "name": "lock", "namespace": "default"},
            "message": "written through core/v1",
            "reason": "Legacy",
            "type": "Normal",
        }))
        .unwrap();
        core_events
            .create(&Default::default(), &legacy)
            .await
            .unwrap();
        let added = watch.try_next().await.unwrap().expect("an event");
        match added {
            kube::api::WatchEvent::Added(event) => {
                assert_eq!(event.note.as_deref(), Some("written through core/v1"));
                assert_eq!(
                    event.regarding.and_then(|r| r.name).as_deref(),
                    Some("lock")
                );
            }
            other => panic!("expected ADDED, got {other:?}"),
        }
    });
    if !have_kubectl() {
        return;
    }
    let listed = kubectl_ok(&server.url, &["get", "events"]);
    assert!(
        listed.contains("LeaderElection") && listed.contains("lease/lock"),
        "{listed}"
    );
    let grouped = kubectl_ok(&server.url, &["get", "events.events.k8s.io", "-o", "name"]);
    assert!(grouped.contains("event.events.k8s.io/lock."), "{grouped}");
    let described = kubectl_ok(&server.url, &["describe", "lease", "lock"]);
    assert!(described.contains("node-1 became leader"), "{described}");
    let explained = kubectl_ok(
        &server.url,
        &["explain", "events.note", "--api-version=events.k8s.io/v1"],
    );
    assert!(explained.contains("note"), "{explained}");
}

#[test]
fn a_node_records_its_leadership_as_events_on_the_lock() {
    let server = Server::start(&[]);
    let storage = tempfile::tempdir().unwrap();
    let mut node = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args([
            "node",
            "--server",
            &server.url,
            "--cluster-id",
            "demo",
            "--identity",
            "a",
        ])
        .args(["--storage-dir", storage.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = server.url.clone();
    let messages = move || {
        let url = url.clone();
        runtime().block_on(async move {
            let api: kube::Api<k8s_openapi::api::core::v1::Event> = kube::Api::namespaced(
                khaos::live::client_for_url(&url, "reader", None).unwrap(),
                "default",
            );
            api.list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("LeaderElection"))
                .map(|e| {
                    (
                        e.message.unwrap_or_default(),
                        e.involved_object.name.unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let wait_for = |message: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = messages();
            if seen
                .iter()
                .any(|(m, lock)| m == message && lock == "demo-cluster-config-map")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {message:?} event within 20 s: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("a became leader");
    if have_kubectl() {
        let described = kubectl_ok(
            &server.url,
            &["describe", "configmap", "demo-cluster-config-map"],
        );
        assert!(
            described.contains("LeaderElection") && described.contains("a became leader"),
            "{described}"
        );
    }
    let kill = Command::new("kill")
        .args(["-s", "TERM", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    wait_for("a stopped leading");
    let _ = node.wait();
}

#[test]
fn a_data_directory_keeps_the_store_across_a_restart_even_after_sigkill() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let api = |url: &str| -> kube::Api<ConfigMap> {
        kube::Api::namespaced(
            khaos::live::client_for_url(url, "keeper", None).unwrap(),
            "default",
        )
    };
    let mut first = Server::start(&["--data-dir", data]);
    let url = first.url.clone();
    let namespace_created = |url: &str| {
        let url = url.to_owned();
        runtime().block_on(async move {
            let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
                kube::Api::all(khaos::live::client_for_url(&url, "keeper", None).unwrap());
            api.get("default")
                .await
                .unwrap()
                .metadata
                .creation_timestamp
        })
    };
    let born = namespace_created(&url);
    let (kept, watch_from) = runtime().block_on(async {
        let cm: ConfigMap = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "kept"}, "data": {"term": "7"}}),
        )
        .unwrap();
        let created = api(&url).create(&Default::default(), &cm).await.unwrap();
        let watch_from = created.metadata.resource_version.clone().unwrap();
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "later"}})).unwrap();
        api(&url).create(&Default::default(), &cm).await.unwrap();
        api(&url)
            .delete("later", &Default::default())
            .await
            .unwrap();
        (created, watch_from)
    });
    first.signal("KILL");
    first.wait(Duration::from_secs(10));

    let second = Server::start(&["--data-dir", data]);
    let url = second.url.clone();
    assert_eq!(
        namespace_created(&url),
        born,
        "the same default namespace on every start"
    );
    // One server per data directory.
    let out = khaos(&["serve", "--addr", "127.0.0.1:0", "--data-dir", data]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("another khaos serve"),
        "{stderr}"
    );
    runtime().block_on(async move {
        let again = api(&url).get("kept").await.expect("the object survived");
        assert_eq!(again.metadata.uid, kept.metadata.uid);
        assert_eq!(
            again.metadata.resource_version,
            kept.metadata.resource_version
        );
        assert_eq!(again.data, kept.data);
        assert!(
            api(&url).get_opt("later").await.unwrap().is_none(),
            "the delete survived too"
        );
        // Revisions go on from where they were; a watch from before the restart gets 410 and
        // re-lists, as after an API server restart.
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "after"}})).unwrap();
        let after = api(&url).create(&Default::default(), &cm).await.unwrap();
        let rv = |o: &ConfigMap| {
            o.metadata
                .resource_version
                .as_deref()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        assert_eq!(rv(&after), rv(&kept) + 3, "create, delete, then this");
        use futures::{StreamExt, TryStreamExt};
        let params = kube::api::WatchParams::default().timeout(2);
        let mut events = api(&url).watch(&params, &watch_from).await.unwrap().boxed();
        let first = events.try_next().await.unwrap().expect("an event");
        assert!(
            matches!(&first, kube::api::WatchEvent::Error(e) if e.code == 410),
            "a resume from before the restart: {first:?}"
        );
    });
}

#[test]
fn kubectl_explain_reads_the_served_schemas() {
    if !have_kubectl() {
        return;
    }
    let server = Server::start(&[]);
    let explained = kubectl_ok(&server.url, &["explain", "configmap"]);
    assert!(
        explained.contains("ConfigMap holds configuration data"),
        "{explained}"
    );
    let field = kubectl_ok(&server.url, &["explain", "lease.spec.holderIdentity"]);
    assert!(
        field.contains("holderIdentity") && field.contains("<string>"),
        "{field}"
    );
    let events = kubectl_ok(&server.url, &["explain", "events.involvedObject"]);
    assert!(
        events.contains("ObjectReference") || events.contains("FIELDS"),
        "{events}"
    );
}

fn have_kubectl() -> bool {
    match Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    {
        Ok(out) if out.status.success() => true,
        _ => {
            println!(
                "SKIPPED: kubectl is not installed (.ci/run installs it from Debian's kubectl or kubernetes-client package)"
            );
            false
        }
    }
}

#[test]
fn kubectl_drives_configmaps_and_leases() {
    if !have_kubectl() {
        return;
    }
    let server = Server::start(&[]);
    let url = server.url.as_str();
    let dir = std::env::temp_dir().join(format!("khaos-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // create (imperative and from a file), get, list with a label selector
    kubectl_ok(url, &["create", "configmap", "demo", "--from-literal=a=b"]);
    let file = dir.join("labelled.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: labelled\n  labels:\n    app: khaos\ndata:\n  k: v\n").unwrap();
    kubectl_ok(url, &["create", "-f", file.to_str().unwrap()]);
    let got: serde_json::Value = serde_json::from_str(&kubectl_ok(
        url,
        &["get", "configmap", "demo", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(got["data"]["a"], "b");
    let table = kubectl_ok(url, &["get", "configmaps"]);
    assert!(
        table.contains("NAME") && table.contains("demo") && table.contains("labelled"),
        "{table}"
    );
    let selected = kubectl_ok(url, &["get", "configmaps", "-l", "app=khaos", "-o", "name"]);
    assert_eq!(selected.trim(), "configmap/labelled");

    // replace: with the current resourceVersion it works, with a stale one it is a Conflict
    let stale = kubectl_ok(url, &["get", "configmap", "demo", "-o", "yaml"]);
    let stale_file = dir.join("stale.yaml");
    std::fs::write(&stale_file, stale.replace("a: b", "a: replaced")).unwrap();
    kubectl_ok(url, &["replace", "-f", stale_file.to_str().unwrap()]);
    kubectl_fails(
        url,
        &["replace", "-f", stale_file.to_str().unwrap()],
        "the object has been modified; please apply your changes to the latest version and try again",
    );

    // patch: strategic (the default), merge and json
    kubectl_ok(
        url,
        &["patch", "configmap", "demo", "-p", r#"{"data":{"s":"1"}}"#],
    );
    kubectl_ok(
        url,
        &[
            "patch",
            "configmap",
            "demo",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"m":"2"}}"#,
        ],
    );
    kubectl_ok(
        url,
        &[
            "patch",
            "configmap",
            "demo",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/data/j","value":"3"}]"#,
        ],
    );
    let got: serde_json::Value = serde_json::from_str(&kubectl_ok(
        url,
        &["get", "configmap", "demo", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(
        (
            got["data"]["s"].as_str(),
            got["data"]["m"].as_str(),
            got["data"]["j"].as_str()
        ),
        (Some("1"), Some("2"), Some("3"))
    );

    // watch: kubectl get -w prints the writes as they happen
    let mut watch = kubectl_command(url)
        .args(["get", "configmaps", "--watch-only", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    kubectl_ok(
        url,
        &["create", "configmap", "watched", "--from-literal=x=y"],
    );
    let line = first_line(&mut watch, "kubectl get configmaps --watch-only");
    assert_eq!(line.trim(), "configmap/watched");
    let _ = watch.kill();
    let _ = watch.wait();

    // delete, and a delete of something missing says NotFound
    kubectl_ok(url, &["delete", "configmap", "demo"]);
    kubectl_fails(
        url,
        &["delete", "configmap", "demo"],
        "configmaps \"demo\" not found",
    );
    kubectl_fails(url, &["get", "configmap", "demo"], "NotFound");

    // Leases: create from a file, get, patch, replace, delete
    let lease = dir.join("lease.yaml");
    std::fs::write(&lease, "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: leader\n  labels:\n    role: lock\nspec:\n  holderIdentity: a\n  leaseDurationSeconds: 15\n").unwrap();
    kubectl_ok(url, &["create", "-f", lease.to_str().unwrap()]);
    let leases = kubectl_ok(url, &["get", "leases", "-l", "role=lock"]);
    assert!(
        leases.contains("leader") && leases.contains("HOLDER"),
        "{leases}"
    );
    let mut watch = kubectl_command(url)
        .args([
            "get",
            "leases",
            "--watch-only",
            "--no-headers",
            "-o",
            "custom-columns=NAME:.metadata.name,HOLDER:.spec.holderIdentity",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    kubectl_ok(
        url,
        &[
            "patch",
            "lease",
            "leader",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"holderIdentity":"b"}}"#,
        ],
    );
    let line = first_line(&mut watch, "kubectl get leases --watch-only");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["leader", "b"],
        "{line}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
    let got: serde_json::Value =
        serde_json::from_str(&kubectl_ok(url, &["get", "lease", "leader", "-o", "json"])).unwrap();
    assert_eq!(got["spec"]["holderIdentity"], "b");
    std::fs::write(
        &lease,
        kubectl_ok(url, &["get", "lease", "leader", "-o", "yaml"])
            .replace("holderIdentity: b", "holderIdentity: c"),
    )
    .unwrap();
    kubectl_ok(url, &["replace", "-f", lease.to_str().unwrap()]);
    kubectl_fails(
        url,
        &["replace", "-f", lease.to_str().unwrap()],
        "the object has been modified",
    );
    kubectl_ok(url, &["delete", "lease", "leader"]);
    kubectl_fails(
        url,
        &["delete", "lease", "leader"],
        "leases.coordination.k8s.io \"leader\" not found",
    );
}

#[test]
fn the_kubeconfig_mode_runs_against_whatever_kubeconfig_names() {
    // A "real cluster" stand-in: khaos serve, with a short watch history so that revision 1 is
    // compacted away as it is on a real cluster, reached only through a kubeconfig file.
    let server = Server::start(&["--watch-history-max", "20"]);
    let dir = std::env::temp_dir().join(format!("khaos-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n",
            server.url
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args(["conformance", "--kubeconfig"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("cluster from KUBECONFIG (v1.32.0-khaos)"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("skipped fault_latency_delays_requests: needs khaos's fault admin endpoint"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok      watch_from_compacted_revision_gets_410"),
        "{stdout}"
    );
    assert!(stdout.contains(", 0 failed, 14 skipped"), "{stdout}");
}

#[test]
fn a_reset_ends_the_connections_of_the_named_clients_only() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, WatchEvent, WatchParams};
    let server = Server::start(&[]);
    let url = server.url.clone();
    runtime().block_on(async move {
        let api = |identity: &str| -> Api<ConfigMap> {
            Api::namespaced(
                khaos::live::client_for_url(&url, identity, None).unwrap(),
                "default",
            )
        };
        let (reset, spared) = (api("reset-me-1"), api("spare-me-1"));
        let params = WatchParams::default().timeout(60);
        let mut reset_watch = reset.watch(&params, "0").await.unwrap().boxed();
        let mut spared_watch = spared.watch(&params, "0").await.unwrap().boxed();
        let answer = http_post(&format!("{url}/khaos/v1/reset?client=reset-me")).await;
        assert!(answer.contains("\"resetting\":\"reset-me\""), "{answer}");
        // The named client's stream ends (an error or the end of the stream) at once.
        let ended = tokio::time::timeout(Duration::from_secs(5), reset_watch.next()).await;
        assert!(
            matches!(ended, Ok(None) | Ok(Some(Err(_)))),
            "the reset client's watch went on: {ended:?}"
        );
        // The other client's watch still delivers.
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "after-reset"}}))
                .unwrap();
        api("writer")
            .create(&Default::default(), &cm)
            .await
            .unwrap();
        let event = tokio::time::timeout(Duration::from_secs(5), spared_watch.next())
            .await
            .expect("the spared watch delivers")
            .expect("a stream item")
            .expect("an event");
        assert!(matches!(event, WatchEvent::Added(_)), "{event:?}");
    });
}

/// An admin POST with an empty JSON body over a plain TCP connection; returns the response.
async fn http_post(url: &str) -> String {
    raw(url, "POST", &["Content-Type: application/json"], "{}").await
}

/// One HTTP/1.1 request written by hand (so every header is the test's), with `Host` the URL's
/// authority unless `headers` names one; returns the whole response.
async fn raw(url: &str, method: &str, headers: &[&str], body: &str) -> String {
    let uri: http::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().to_string();
    let path = uri.path_and_query().unwrap().to_string();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        request += &format!("Host: {authority}\r\n");
    }
    for header in headers {
        request += &format!("{header}\r\n");
    }
    request += &format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// The status code of a raw response.
fn code(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[test]
fn a_web_page_cannot_drive_the_server() {
    let server = Server::start(&[]);
    let url = server.url.clone();
    runtime().block_on(async move {
        let compact = format!("{url}/khaos/v1/compact");
        // What a page on another site can make a browser send without asking first.
        let cross_site = raw(
            &compact,
            "POST",
            &["Origin: http://evil.example", "Content-Type: text/plain"],
            "{}",
        )
        .await;
        assert_eq!(code(&cross_site), 403, "{cross_site}");
        assert!(cross_site.contains("web origin"), "{cross_site}");
        // DNS rebinding: the page's own name resolved to 127.0.0.1.
        let rebound = raw(
            &format!("{url}/api/v1/namespaces/default/configmaps"),
            "GET",
            &["Host: evil.example"],
            "",
        )
        .await;
        assert_eq!(code(&rebound), 403, "{rebound}");
        assert!(rebound.contains("\"kind\":\"Status\""), "{rebound}");
        // A form's content type, even from no page at all, is not an admin request.
        let form = raw(
            &compact,
            "POST",
            &["Content-Type: application/x-www-form-urlencoded"],
            "a=b",
        )
        .await;
        assert_eq!(code(&form), 415, "{form}");
        // What curl and the conformance suite send.
        let json = http_post(&compact).await;
        assert_eq!(code(&json), 200, "{json}");
        // The names of loopback are served, however they are spelled, and so is a same-origin page.
        for host in ["localhost", "LOCALHOST", "[::1]"] {
            let port = url.rsplit(':').next().unwrap();
            let answer = raw(
                &format!("{url}/version"),
                "GET",
                &[&format!("Host: {host}:{port}")],
                "",
            )
            .await;
            assert_eq!(code(&answer), 200, "{host}: {answer}");
        }
        let same = raw(
            &compact,
            "POST",
            &[&format!("Origin: {url}"), "Content-Type: application/json"],
            "{}",
        )
        .await;
        assert_eq!(code(&same), 200, "{same}");
        // A page on another port of loopback is another origin (a dev server, a notebook).
        let port = url.rsplit(':').next().unwrap();
        for other in [
            "http://127.0.0.1:1",
            "http://localhost",
            &format!("http://localhost:{port}"),
        ] {
            let neighbour = raw(
                &compact,
                "POST",
                &[
                    &format!("Origin: {other}"),
                    "Content-Type: application/json",
                ],
                "{}",
            )
            .await;
            assert_eq!(code(&neighbour), 403, "{other}: {neighbour}");
        }
    });
}

#[test]
fn the_bearer_scheme_is_matched_in_any_case() {
    let server = Server::start(&["--token", "s3cret"]);
    let url = server.url.clone();
    runtime().block_on(async move {
        let status = |authorization: String| {
            let url = url.clone();
            async move {
                let header = format!("Authorization: {authorization}");
                code(&raw(&format!("{url}/version"), "GET", &[&header], "").await)
            }
        };
        for scheme in ["Bearer", "bearer", "BEARER"] {
            assert_eq!(status(format!("{scheme} s3cret")).await, 200, "{scheme}");
        }
        assert_eq!(status("Bearer s3cre".into()).await, 401);
        assert_eq!(status("Basic s3cret".into()).await, 401);
    });
}
