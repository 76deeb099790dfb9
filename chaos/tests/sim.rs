//! `khaos sim` as a user meets it: a run with its files, a sweep with progress and a summary,
//! the same seed giving the same history in two processes, and bad input named.

use std::process::{Command, Output};

fn khaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args(args)
        .output()
        .expect("khaos runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn a_run_prints_its_verdicts_and_writes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = khaos(&[
        "sim",
        "run",
        "--scenario",
        "leader-crash",
        "--seed",
        "2",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.starts_with("leader-crash seed 2: ok (history "),
        "{text}"
    );
    for checker in [
        "fenced-writes",
        "terms",
        "overlap",
        "durability",
        "counter",
        "progress",
        "cleanup",
        "liveness",
    ] {
        assert!(
            text.contains(&format!("  {checker}")),
            "{checker} missing:\n{text}"
        );
    }
    let events = std::fs::read_to_string(out_dir.join("events.jsonl")).unwrap();
    let history = khaos_reports::history::parse(&events).unwrap();
    assert!(history.len() > 50);
    let digest = khaos_reports::history::digest(&events);
    assert!(text.contains(&format!("(history {digest},")), "{text}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["seed"], 2);
    assert_eq!(summary["digest"], digest.as_str());
    assert_eq!(
        summary["replay"],
        "khaos sim run --scenario leader-crash --seed 2"
    );
    assert_eq!(summary["verdicts"].as_array().unwrap().len(), 8);
}

#[test]
fn the_same_seed_gives_the_same_history_in_two_processes() {
    let args = [
        "sim",
        "run",
        "--scenario",
        "swarm",
        "--seed",
        "5",
        "--history",
    ];
    let (first, second) = (khaos(&args), khaos(&args));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).lines().count() > 100);
    assert_eq!(stdout(&first), stdout(&second));
    let other = khaos(&[
        "sim",
        "run",
        "--scenario",
        "swarm",
        "--seed",
        "6",
        "--history",
    ]);
    assert_ne!(stdout(&first), stdout(&other));
}

#[test]
fn a_sweep_shows_progress_and_a_summary() {
    let out = khaos(&[
        "sim",
        "sweep",
        "--scenario",
        "rolling-restart",
        "--seeds",
        "1..3",
        "--jobs",
        "2",
        "--check-determinism",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("= 2 runs on 2 thread(s), each run twice"),
        "{text}"
    );
    assert!(
        text.contains("[    1/2] ok   rolling-restart seed "),
        "{text}"
    );
    assert!(
        text.contains("[    2/2] ok   rolling-restart seed "),
        "{text}"
    );
    assert!(text.contains("2 runs, 2 ok, 0 failed"), "{text}");
}

#[test]
fn bad_input_names_the_problem_and_the_fix() {
    let out = khaos(&["sim", "run", "--scenario", "nope", "--seed", "1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no scenario \"nope\"; the scenarios are: leader-crash"),
        "{}",
        stderr(&out)
    );
    let out = khaos(&["sim", "sweep", "--seeds", "5..2"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("write A..B with A < B"),
        "{}",
        stderr(&out)
    );
    let out = khaos(&["sim", "list"]);
    assert!(stdout(&out).lines().count() >= 13, "{}", stdout(&out));
}

#[test]
fn a_schedule_file_replaces_the_scenarios_faults_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schedule.json");
    std::fs::write(
        &path,
        r#"{"faults": [{"at_ms": 20000, "for_ms": 5000, "fault": {"kind": "crash", "node": "node-b"}}]}"#,
    )
    .unwrap();
    let out = khaos(&[
        "sim",
        "run",
        "--scenario",
        "leader-crash",
        "--seed",
        "1",
        "--schedule",
        path.to_str().unwrap(),
        "--history",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains(r#"{"t_ms":20000,"node":"harness","event":"fault","action":"start","id":0,"fault":{"kind":"crash","node":"node-b"}}"#), "{text}");
    assert_eq!(
        text.matches(r#""event":"fault""#).count(),
        2,
        "only the file's fault, started and ended"
    );

    // Well-formed JSON the world cannot apply: each is named, nothing panics.
    for (fault, says) in [
        (
            r#"{"kind": "partition", "a": "node-z", "b": "apiserver", "oneway": false}"#,
            r#"no host "node-z""#,
        ),
        (
            r#"{"kind": "server", "faults": {"errors": [{"code": 404}]}}"#,
            "code 404 is not one of",
        ),
        (
            r#"{"kind": "drift", "node": "node-a", "ppm": -1000000}"#,
            "beyond any clock",
        ),
        (
            r#"{"kind": "crash", "node": "observer-a"}"#,
            "is not a candidate",
        ),
    ] {
        let text =
            format!(r#"{{"faults": [{{"at_ms": 1000, "for_ms": 1000, "fault": {fault}}}]}}"#);
        std::fs::write(&path, text).unwrap();
        let out = khaos(&[
            "sim",
            "run",
            "--scenario",
            "leader-crash",
            "--seed",
            "1",
            "--schedule",
            path.to_str().unwrap(),
        ]);
        let error = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{error}");
        assert!(
            error.contains("invalid schedule: faults[0]") && error.contains(says),
            "{error}"
        );
    }

    std::fs::write(
        &path,
        r#"{"faults": [{"at_ms": 1, "fault": {"kind": "meteor"}}]}"#,
    )
    .unwrap();
    let out = khaos(&[
        "sim",
        "run",
        "--scenario",
        "leader-crash",
        "--seed",
        "1",
        "--schedule",
        path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let error = stderr(&out);
    assert!(
        error.contains("--schedule")
            && error.contains("expected the JSON `khaos sim shrink` writes"),
        "{error}"
    );
}

/// A sweep with a flaw on fails with the line that replays it; that line reproduces the same
/// violation and saves the case; `khaos replay` reproduces it from the file, byte for byte, and
/// without the flaw the same schedule holds.
#[test]
fn a_flawed_sweep_fails_with_a_replay_line_that_reproduces_it() {
    let out = khaos(&[
        "sim",
        "sweep",
        "--scenario",
        "bug/renew-poisoned",
        "--seeds",
        "1..2",
        "--flaw",
        "renew-poisoned",
    ]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("VIOLATED liveness"), "{text}");
    let replay = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: khaos "))
        .unwrap_or_else(|| panic!("no replay line in:\n{text}"));
    assert_eq!(
        replay,
        "sim run --scenario bug/renew-poisoned --seed 1 --flaw renew-poisoned"
    );

    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut args: Vec<&str> = replay.split(' ').collect();
    args.extend(["--out", run_dir.to_str().unwrap()]);
    let out = khaos(&args);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("liveness       VIOLATED"), "{text}");
    assert!(text.contains("node-a lost leadership (term 0)"), "{text}");

    // The run's page shows the violation; CI's JUnit reader sees the failed checker.
    let html = std::fs::read_to_string(run_dir.join("timeline.html")).unwrap();
    assert!(html.contains("class=\"violation-marker\""), "{html}");
    assert!(html.contains("node-a lost leadership (term 0)"), "{html}");
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<testcase name=\"liveness\""), "{junit}");
    assert!(junit.contains("<failure"), "{junit}");

    let case = run_dir.join("case.json");
    let out = khaos(&["replay", case.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("with flaw renew-poisoned"), "{text}");
    assert!(
        text.contains("same verdicts and the same history"),
        "{text}"
    );
    assert!(
        stderr(&out).contains(&format!("replay: khaos replay {}", case.display())),
        "{}",
        stderr(&out)
    );

    let out = khaos(&["replay", "--without-flaws", case.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("liveness       ok"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_case_from_a_newer_khaos_or_a_broken_file_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.json");
    let corpus = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/corpus/renew-poisoned.json"
    );
    let text = std::fs::read_to_string(corpus).unwrap();
    std::fs::write(&newer, text.replace("\"format\": 1", "\"format\": 2")).unwrap();
    let out = khaos(&["replay", newer.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is a case of format 2, newer than this khaos reads (1)"),
        "{}",
        stderr(&out)
    );
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, &text[..text.len() / 2]).unwrap();
    let out = khaos(&["replay", broken.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a saved case") && stderr(&out).contains("line "),
        "{}",
        stderr(&out)
    );
    let out = khaos(&["replay", dir.path().join("missing.json").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("reading "), "{}", stderr(&out));
}

/// `khaos sim list | head -1`: the reader goes first, and khaos ends quietly rather than panic.
/// The pipe's read end is closed before khaos starts, so its first line meets the broken pipe.
#[test]
fn a_reader_that_goes_away_ends_khaos_quietly() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_khaos"))
        .args(["sim", "list"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("khaos runs");
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
