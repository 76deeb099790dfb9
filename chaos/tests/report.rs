//! `khaos report` as a user meets it: a simulated run directory re-rendered, a history tampered
//! with until the checkers fire, and the HTML timeline opened in headless Chromium to see what
//! actually renders.

// Chromium runs with the real clock; its time limit is a real one.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one Chromium run may take.
const CHROMIUM_TIME_LIMIT: Duration = Duration::from_secs(60);

fn khaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args(args)
        .output()
        .expect("khaos runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `khaos sim run --scenario leader-crash --seed 2 --out DIR`.
fn simulated_run(dir: &Path) {
    let out = khaos(&[
        "sim",
        "run",
        "--scenario",
        "leader-crash",
        "--seed",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

/// The history with a second candidate believing it was granted the first leader's term a
/// moment after it: `overlap` and `terms` fire. Returns the tampered history and the intruder.
fn tamper(events: &str) -> (String, String) {
    let lines: Vec<&str> = events.lines().collect();
    let (position, granted) = lines
        .iter()
        .enumerate()
        .find_map(|(i, line)| {
            let value: Value = serde_json::from_str(line).unwrap();
            (value["event"] == "granted").then_some((i, value))
        })
        .expect("a grant");
    let leader = granted["node"].as_str().unwrap();
    let intruder = if leader == "node-a" {
        "node-b"
    } else {
        "node-a"
    };
    let mut forged = granted.clone();
    forged["node"] = intruder.into();
    forged["t_ms"] = (granted["t_ms"].as_u64().unwrap() + 5).into();
    let mut tampered: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    tampered.insert(position + 1, forged.to_string());
    (tampered.join("\n") + "\n", intruder.to_owned())
}

#[test]
fn a_simulated_run_directory_holds_every_report_and_re_renders_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    simulated_run(&run);
    let read = |name: &str| std::fs::read_to_string(run.join(name)).unwrap();
    let (summary, timeline, html) = (
        read("summary.json"),
        read("timeline.txt"),
        read("timeline.html"),
    );
    let junit = read("junit.xml");
    assert!(
        junit.contains("<testsuite name=\"khaos leader-crash seed 2\""),
        "{junit}"
    );
    assert!(
        timeline.starts_with("khaos timeline: leader-crash seed 2\n"),
        "{timeline}"
    );
    assert!(timeline.contains("crashed"), "{timeline}");
    let parsed: Value = serde_json::from_str(&summary).unwrap();
    assert!(
        !parsed["failovers"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    assert!(
        parsed["figures"]["overlap"]["overlap_ms"].is_u64(),
        "{summary}"
    );

    // `khaos report` on the directory: the same files, byte for byte; the history untouched.
    let events = read("events.jsonl");
    for name in ["summary.json", "junit.xml", "timeline.txt", "timeline.html"] {
        std::fs::remove_file(run.join(name)).unwrap();
    }
    let out = khaos(&["report", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(": ok ("), "{}", text(&out));
    assert_eq!(read("events.jsonl"), events);
    assert_eq!(read("timeline.txt"), timeline);
    assert_eq!(read("timeline.html"), html);
    assert_eq!(read("junit.xml"), junit);
    let again: Value = serde_json::from_str(&read("summary.json")).unwrap();
    assert_eq!(
        again["replay"],
        "khaos sim run --scenario leader-crash --seed 2"
    );
    assert_eq!(again, parsed);
}

#[test]
fn bad_report_input_names_the_problem_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = khaos(&["report", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("events.jsonl does not exist"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("--from FILE"), "{}", text(&out));

    let log = dir.path().join("node.log");
    std::fs::write(
        &log,
        "{\"t_ms\":1,\"node\":\"a\",\"event\":\"started\"}\n{oops\n",
    )
    .unwrap();
    let out = khaos(&[
        "report",
        dir.path().join("out").to_str().unwrap(),
        "--from",
        log.to_str().unwrap(),
        "--cluster-id",
        "demo",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("node.log: history line 2:"),
        "{}",
        text(&out)
    );

    // A line missing a field names the field.
    std::fs::write(&log, "{\"t_ms\":1,\"event\":\"started\"}\n").unwrap();
    let out = khaos(&[
        "report",
        dir.path().join("out2").to_str().unwrap(),
        "--from",
        log.to_str().unwrap(),
        "--cluster-id",
        "demo",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("history line 1: missing field `node`"),
        "{}",
        text(&out)
    );

    // A last line cut off mid-write, as a SIGKILL leaves it, is left out with a warning.
    std::fs::write(
        &log,
        "{\"t_ms\":1,\"node\":\"a\",\"event\":\"started\"}\n{\"t_ms\":2,\"node\":\"a\",\"ev",
    )
    .unwrap();
    let out = khaos(&[
        "report",
        dir.path().join("out3").to_str().unwrap(),
        "--from",
        log.to_str().unwrap(),
        "--cluster-id",
        "demo",
    ]);
    assert!(
        text(&out).contains("node.log: line 2 was cut off mid-write"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("(1 history lines)"), "{}", text(&out));

    let out = khaos(&["report", dir.path().to_str().unwrap(), "--lock", "etcd"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("configmap or lease"), "{}", text(&out));
}

/// Where Chromium is, or why the test cannot run (which fails it under CI).
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output()
            && out.status.success()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !path.is_empty() {
                return Some(PathBuf::from(path));
            }
        }
    }
    let why = "no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)";
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set, so this test may not skip: {why}"
    );
    println!("skipped: {why}");
    None
}

/// Run Chromium headless with `args` and the page, within [`CHROMIUM_TIME_LIMIT`].
fn run_chromium(chromium: &Path, home: &Path, args: &[&str], page: &Path) -> Output {
    let child = Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-dev-shm-usage",
            // Anything the page asked of the network would fail here instead of going out.
            "--proxy-server=127.0.0.1:9",
        ])
        .arg(format!("--user-data-dir={}", home.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let id = child.id();
    let watchdog = std::thread::spawn(move || {
        while started.elapsed() < CHROMIUM_TIME_LIMIT {
            std::thread::sleep(Duration::from_millis(100));
            if std::fs::metadata(format!("/proc/{id}")).is_err() {
                return;
            }
        }
        let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
    });
    let out = child.wait_with_output().expect("chromium runs");
    watchdog.join().unwrap();
    assert!(
        started.elapsed() < CHROMIUM_TIME_LIMIT,
        "chromium took longer than {CHROMIUM_TIME_LIMIT:?}"
    );
    out
}

#[test]
fn a_violated_run_renders_in_chromium_with_lanes_bars_and_the_violation() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    simulated_run(&run);
    let (tampered, intruder) = tamper(&std::fs::read_to_string(run.join("events.jsonl")).unwrap());
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("events.jsonl"), tampered).unwrap();
    let out = khaos(&["report", broken.to_str().unwrap()]);
    assert!(!out.status.success(), "a forged grant went unnoticed");
    assert!(
        text(&out).contains("VIOLATED terms, overlap"),
        "{}",
        text(&out)
    );

    let page = broken.join("timeline.html");
    let home = dir.path().join("chromium-home");
    std::fs::create_dir_all(&home).unwrap();
    let started = Instant::now();
    let dumped = run_chromium(&chromium, &home, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dumped.stdout).into_owned();
    println!(
        "chromium --dump-dom: {:?}, {} bytes of DOM from a {} byte page",
        started.elapsed(),
        dom.len(),
        std::fs::metadata(&page).unwrap().len()
    );
    assert!(
        dom.contains("<svg id=\"timeline\""),
        "chromium rendered no timeline:\n{}\n{dom}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    for node in ["node-a", "node-b", "node-c"] {
        assert!(
            dom.contains(&format!("id=\"lane-{node}\"")),
            "no lane for {node}"
        );
    }
    assert!(
        !dom.contains("id=\"lane-observer-a\""),
        "an observer got a lane"
    );
    for class in ["belief", "lock", "checkpoint", "restore", "crash", "fault"] {
        assert!(dom.contains(&format!("class=\"{class}\"")), "no .{class}");
    }
    assert!(dom.contains("id=\"violation-1\""), "no violation band");
    assert!(
        dom.contains("class=\"violation-marker\""),
        "no violation marker"
    );
    assert!(dom.contains("id=\"violations\""), "no list of violations");
    assert!(
        dom.contains("both believed they led") && dom.contains(intruder.as_str()),
        "the violation's message is missing"
    );
    assert!(dom.contains("VIOLATED terms, overlap"));
    for reference in ["src=", "<link", "<script", "@import", "url("] {
        assert!(!dom.contains(reference), "the page references {reference}");
    }
    for (position, _) in dom.match_indices("href=\"") {
        assert!(
            dom[position + 6..].starts_with('#'),
            "a link out of the page: {}",
            &dom[position..(position + 60).min(dom.len())]
        );
    }

    // And it paints: a screenshot of the page is an image with something on it.
    let shot = dir.path().join("timeline.png");
    let screenshot = format!("--screenshot={}", shot.display());
    let out = run_chromium(
        &chromium,
        &home,
        &[&screenshot, "--window-size=1280,1000"],
        &page,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    println!("screenshot: {} bytes", png.len());
    // A blank 1280x1000 page compresses to a few kilobytes; lanes, bars and text do not.
    assert!(
        png.len() > 20_000,
        "the screenshot looks blank: {} bytes",
        png.len()
    );
}
