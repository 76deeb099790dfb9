//! `khaos node` as a new user meets it: three candidate processes against a `khaos serve`
//! process, the leader killed with SIGKILL or stopped with SIGTERM, and the logs saying who took
//! over and which checkpoint it resumed from.

// These tests wait on real processes with the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// Lease 1.5 s, renew deadline 1 s, retry 200 ms; a checkpoint every 200 ms.
const TIMING: [&str; 8] = [
    "--lease-duration",
    "1500ms",
    "--renew-deadline",
    "1s",
    "--retry-period",
    "200ms",
    "--checkpoint-interval",
    "200ms",
];

/// A child process killed when dropped, whose stdout lines are collected as they come.
struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    fn spawn(args: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_khaos"))
            .args(args)
            .env_remove("POD_NAME")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("khaos starts");
        let stdout = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push(line);
            }
        });
        Process {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Wait for the process to exit and its output to be read to the end.
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                break status;
            }
            assert!(
                started.elapsed() < limit,
                "khaos did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the reader ends");
        }
        status
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> (Process, String) {
    serve_with(&[])
}

fn serve_with(extra: &[&str]) -> (Process, String) {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
    args.extend(extra);
    let server = Process::spawn(&args);
    let started = Instant::now();
    loop {
        if let Some(first) = server.lines().first() {
            let url = first
                .strip_prefix("khaos API server listening on ")
                .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
                .to_owned();
            return (server, url);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no address");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One `khaos node` and its JSON log.
struct Node {
    name: String,
    process: Process,
}

impl Node {
    fn start(url: &str, name: &str, storage: &std::path::Path, extra: &[&str]) -> Node {
        let storage = storage.to_str().unwrap();
        let mut args = vec![
            "node",
            "--server",
            url,
            "--cluster-id",
            "demo",
            "--identity",
            name,
            "--storage-dir",
            storage,
        ];
        args.extend(TIMING);
        args.extend(extra);
        Node {
            name: name.to_owned(),
            process: Process::spawn(&args),
        }
    }

    fn events(&self) -> Vec<Value> {
        self.process
            .lines()
            .iter()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {line}", self.name))
            })
            .collect()
    }

    fn events_named(&self, event: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    fn dump(nodes: &[&Node]) -> String {
        nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.name, n.process.lines().join("\n")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn wait_until<T>(
    within: Duration,
    what: &str,
    nodes: &[&Node],
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "{what}: not within {within:?}\n{}",
            Node::dump(nodes)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn after_sigkill_another_node_takes_over_and_resumes_from_the_latest_checkpoint() {
    let storage = tempfile::tempdir().unwrap();
    let (_server, url) = serve();
    let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|name| Node::start(&url, name, storage.path(), &[]))
        .collect();
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = wait_until(Duration::from_secs(15), "three checkpoints", &all, || {
        nodes
            .iter()
            .position(|n| n.events_named("checkpoint").len() >= 3)
    });
    for (i, node) in nodes.iter().enumerate() {
        let granted = node.events_named("granted").len();
        assert_eq!(granted, usize::from(i == leader), "{}", Node::dump(&all));
    }

    let mut nodes = nodes;
    let mut killed = nodes.remove(leader);
    killed.process.signal("KILL");
    let killed_at = Instant::now();
    killed.process.wait(Duration::from_secs(5));
    let last = killed
        .events_named("checkpoint")
        .last()
        .cloned()
        .expect("the leader logged checkpoints");
    let (last_id, last_records) = (
        last["id"].as_u64().unwrap(),
        last["records"].as_u64().unwrap(),
    );

    let all: Vec<&Node> = nodes.iter().collect();
    let (next, restored) = wait_until(Duration::from_secs(10), "a restore", &all, || {
        nodes
            .iter()
            .enumerate()
            .find_map(|(i, n)| n.events_named("restored").first().cloned().map(|r| (i, r)))
    });
    let took = killed_at.elapsed();
    println!(
        "{} took over {took:?} after the SIGKILL and restored {restored}",
        nodes[next].name
    );
    // The line is printed after the pointer commits, so the kill may fall between the two:
    // the restored checkpoint is the last one logged, or the one after it.
    let checkpoint = restored["checkpoint"]
        .as_u64()
        .expect("a checkpoint was restored");
    let records = restored["records"].as_u64().unwrap();
    assert!(
        (checkpoint, records) == (last_id, last_records)
            || (checkpoint, records) == (last_id + 1, last_records + 100),
        "restored {restored}, but the killed leader's last checkpoint was {last}"
    );
    assert_eq!(restored["dangling"], serde_json::json!([]));
    assert!(
        restored["term"].as_u64().unwrap() > last["term"].as_u64().unwrap(),
        "the new leader's term is higher"
    );
    // A lease (1.5 s, whole seconds: 2 s in the record) plus two jittered retries, plus slack.
    assert!(took < Duration::from_secs(5), "hand-over took {took:?}");
    let other = &nodes[1 - next];
    wait_until(
        Duration::from_secs(5),
        "the standby following the new leader",
        &all,
        || {
            let leader = format!(
                "{},{}",
                restored["term"]
                    .as_u64()
                    .map(|t| format!("term-{t}"))
                    .unwrap(),
                nodes[next].name
            );
            other
                .events_named("leader")
                .iter()
                .any(|e| e["leader"] == leader.as_str())
                .then_some(())
        },
    );
    // The new leader goes on from there.
    wait_until(Duration::from_secs(5), "the next checkpoint", &all, || {
        nodes[next]
            .events_named("checkpoint")
            .iter()
            .any(|e| e["records"].as_u64() == Some(records + 100))
            .then_some(())
    });
    assert!(
        other.events_named("granted").is_empty(),
        "{}",
        Node::dump(&all)
    );

    for node in &mut nodes {
        node.process.signal("TERM");
        assert!(node.process.wait(Duration::from_secs(10)).success());
        let stopped = node.events_named("stopped");
        assert_eq!(stopped.len(), 1, "{}", node.process.lines().join("\n"));
        assert_eq!(stopped[0]["graceful"], true);
    }
    assert_eq!(
        nodes[next].events_named("revoked").len(),
        1,
        "the leader stepped down first"
    );
}

#[test]
fn with_a_lease_a_finished_job_is_cleaned_up_and_not_run_again_after_a_sigterm_hand_over() {
    let storage = tempfile::tempdir().unwrap();
    let (_server, url) = serve();
    let extra = ["--lock", "lease", "--finish-after-records", "300"];
    let mut first = Node::start(&url, "node-a", storage.path(), &extra);
    wait_until(
        Duration::from_secs(15),
        "the job finishing",
        &[&first],
        || first.events_named("finished").first().cloned(),
    );
    let second = Node::start(&url, "node-b", storage.path(), &extra);
    // Let node-b settle as a standby, then stop node-a: it releases the lease.
    wait_until(
        Duration::from_secs(5),
        "node-b following",
        &[&first, &second],
        || (!second.events_named("leader").is_empty()).then_some(()),
    );
    first.process.signal("TERM");
    assert!(first.process.wait(Duration::from_secs(10)).success());
    let stopped_at = Instant::now();
    let done = wait_until(
        Duration::from_secs(10),
        "node-b's verdict",
        &[&first, &second],
        || second.events_named("already_done").first().cloned(),
    );
    println!(
        "node-b took over {:?} after node-a's SIGTERM",
        stopped_at.elapsed()
    );
    assert_eq!(done["state"], "FINISHED");
    assert_eq!(done["was_clean"], true);
    for event in ["submitted", "restored", "checkpoint"] {
        assert!(
            second.events_named(event).is_empty(),
            "a finished job was run again:\n{}",
            second.process.lines().join("\n")
        );
    }
    let mut left: Vec<String> = walk(storage.path());
    left.sort();
    assert_eq!(
        left,
        ["demo/_job-results/00000000000000000000000000000000.json"]
    );
}

/// Milliseconds since the Unix epoch now: the shared time base of a live run.
fn unix_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

#[test]
fn a_live_run_merges_into_a_report_that_shows_the_hand_over() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let history = dir.path().join("serve.jsonl");
    let epoch = unix_ms().to_string();
    let epoch_flag = ["--epoch-ms", epoch.as_str()];
    let (mut server, url) =
        serve_with(&["--history", history.to_str().unwrap(), "--epoch-ms", &epoch]);
    let mut nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|name| Node::start(&url, name, &storage, &epoch_flag))
        .collect();
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = wait_until(Duration::from_secs(15), "two checkpoints", &all, || {
        nodes
            .iter()
            .position(|n| n.events_named("checkpoint").len() >= 2)
    });
    let mut killed = nodes.remove(leader);
    killed.process.signal("KILL");
    // The injector records what it did, on the same time base, for the report.
    let crashed = format!(
        "{{\"t_ms\":{},\"node\":\"{}\",\"event\":\"crashed\"}}\n",
        unix_ms() - epoch.parse::<u64>().unwrap(),
        killed.name
    );
    killed.process.wait(Duration::from_secs(5));
    let all: Vec<&Node> = nodes.iter().collect();
    let next = wait_until(
        Duration::from_secs(10),
        "a checkpoint after the restore",
        &all,
        || {
            nodes.iter().position(|n| {
                !n.events_named("restored").is_empty() && !n.events_named("checkpoint").is_empty()
            })
        },
    );
    // The standby first: stopped first, the new leader would hand over once more.
    let standby = 1 - next;
    for index in [standby, next] {
        nodes[index].process.signal("TERM");
        assert!(nodes[index].process.wait(Duration::from_secs(10)).success());
    }
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(10)).success());

    let mut logs = vec![history.clone()];
    for node in nodes.iter().chain([&killed]) {
        let log = dir.path().join(format!("{}.log", node.name));
        std::fs::write(&log, node.process.lines().join("\n") + "\n").unwrap();
        logs.push(log);
    }
    let injector = dir.path().join("injector.jsonl");
    std::fs::write(&injector, crashed).unwrap();
    logs.push(injector);
    let out_dir = dir.path().join("report");
    let mut args = vec!["report".to_owned(), out_dir.to_str().unwrap().to_owned()];
    for log in &logs {
        args.extend(["--from".to_owned(), log.to_str().unwrap().to_owned()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args(&args)
        .output()
        .expect("khaos runs");
    let timeline = std::fs::read_to_string(out_dir.join("timeline.txt")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}{}\n{timeline}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["ok"], true, "{timeline}");
    assert_eq!(summary["scenario"], "live");
    for verdict in summary["verdicts"].as_array().unwrap() {
        assert_eq!(verdict["violations"], serde_json::json!([]), "{verdict}");
    }
    // The hand-over, as the timeline tells it: the lock passes, the new leader is granted the
    // next term after the crash, and restores.
    let (old, new) = (killed.name.as_str(), nodes[next].name.as_str());
    let words: Vec<&str> = timeline.split_whitespace().collect();
    let squeezed = words.join(" ");
    for line in [
        format!("{old} crashed"),
        format!("lock holder {new} term 1"),
        format!("{new} granted term 1 ("),
        format!("after {old}'s leadership ended)"),
        format!("{new} restored checkpoint"),
    ] {
        assert!(squeezed.contains(&line), "{line:?} missing:\n{timeline}");
    }
    let failovers = summary["failovers"].as_array().unwrap();
    assert_eq!(failovers.len(), 1, "{timeline}");
    assert_eq!(failovers[0]["from"], old);
    assert_eq!(failovers[0]["to"], new);
    // The lease (1.5 s) runs out first, then a jittered retry or two.
    let gap = failovers[0]["ms"].as_u64().unwrap();
    assert!(
        (1000..5000).contains(&gap),
        "{gap} ms without a leader:\n{timeline}"
    );
    let html = std::fs::read_to_string(out_dir.join("timeline.html")).unwrap();
    for node in ["node-a", "node-b", "node-c"] {
        assert!(
            html.contains(&format!("id=\"lane-{node}\"")),
            "no lane for {node}"
        );
    }
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                files.push(relative.to_str().unwrap().to_owned());
            }
        }
    }
    files
}

#[test]
fn bad_node_flags_name_the_problem_and_the_fix() {
    let run = |args: &[&str], env_clear: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_khaos"));
        command.arg("node").args(args);
        if env_clear {
            command.env_remove("POD_NAME").env_remove("HOSTNAME");
        }
        let out = command.output().expect("khaos runs");
        assert!(!out.status.success(), "{args:?} was accepted");
        String::from_utf8(out.stderr).unwrap()
    };
    let base = [
        "--server",
        "http://127.0.0.1:1",
        "--cluster-id",
        "demo",
        "--identity",
        "a",
        "--storage-dir",
        "/tmp/khaos-never-used",
    ];
    let with = |extra: &[&'static str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        args
    };
    let flink = with(&[
        "--lease-duration",
        "15s",
        "--renew-deadline",
        "15s",
        "--retry-period",
        "5s",
    ]);
    let error = run(&flink, false);
    assert!(
        error.contains("raise --lease-duration or lower --renew-deadline")
            && error.contains("--unchecked-timing"),
        "{error}"
    );
    let error = run(&with(&["--retry-period", "2 parsecs"]), false);
    assert!(error.contains("--retry-period"), "{error}");
    let mut bad_cluster = base.to_vec();
    bad_cluster[3] = "My_Cluster";
    let error = run(&bad_cluster, false);
    assert!(
        error.contains("--cluster-id \"My_Cluster\"") && error.contains("lowercase"),
        "{error}"
    );
    let no_identity: Vec<&str> = base
        .iter()
        .copied()
        .filter(|a| *a != "--identity" && *a != "a")
        .collect();
    let error = run(&no_identity, true);
    assert!(error.contains("pass --identity"), "{error}");
    let error = run(&["--cluster-id", "demo", "--identity", "a"], false);
    assert!(error.contains("--storage-dir"), "{error}");
}

/// `khaos node` and every simulated candidate and observer run one client: the settings both
/// are built from ([`khaos_elector::client::PRODUCTION`]), held equal here field by field. The
/// write timeout is the one setting the simulator cannot model (turmoil's writes never block).
#[test]
fn a_node_and_a_simulated_candidate_run_the_same_client() {
    use khaos_elector::client::PRODUCTION;
    let node = khaos::live::config_for_url("http://127.0.0.1:6443", "node-a", None).unwrap();
    assert_eq!(node.connect_timeout, PRODUCTION.connect_timeout);
    assert_eq!(node.read_timeout, PRODUCTION.read_timeout);
    assert_eq!(node.write_timeout, PRODUCTION.write_timeout);
    assert_eq!(node.default_retry, PRODUCTION.retries);
    let simulated = khaos_sim::transport::ClientConfig::production("apiserver:6443", "node-a");
    assert_eq!(simulated.connect_timeout, PRODUCTION.connect_timeout);
    assert_eq!(simulated.read_timeout, PRODUCTION.read_timeout);
    assert_eq!(simulated.request_timeout, PRODUCTION.request_timeout);
    assert_eq!(
        PRODUCTION.request_timeout, None,
        "kube's config has no request timeout to give a node"
    );
}
