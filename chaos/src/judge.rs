//! `khaos report DIR`: judge the history in `DIR/events.jsonl` with the checkers and write the
//! report files beside it (`summary.json`, `junit.xml`, `timeline.txt`, `timeline.html`; see
//! [`khaos_reports::render`]), so a live run gets the same reports as a simulated one.
//!
//! The checkers' [`Context`] comes from the history's first line when it records the run's
//! settings (a simulated run); otherwise from flags, falling back to what the first `khaos node`
//! `started` line says, then to `khaos node`'s defaults. With `--from FILE` (repeatable) the
//! logs of a live run (`khaos serve --history` and each `khaos node`'s stdout, all started with
//! the same `--epoch-ms`) are first merged into `DIR/events.jsonl`, ordered by `t_ms`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use khaos_elector::{LockKind, Timing};
use khaos_reports::checkers::Context;
use khaos_reports::history::{self, Entry, ParseError};
use khaos_reports::merge::{MergeError, merge};
use khaos_reports::render::{FILES, JudgedRun, RunInfo};
use khaos_reports::settings::SettingsError;
use serde_json::Value;

/// The network delay bound the liveness checker allows a live run (loopback or a cluster
/// network; only judged when a history has `healed` and `end` phases).
const LIVE_NETWORK_DELAY_MAX: Duration = Duration::from_millis(100);

/// How late a live watch event may arrive for the liveness checker.
const LIVE_WATCH_DELAY_MAX: Duration = Duration::from_secs(1);

/// Logs merged with `--from`, at most: a bound on what one command reads.
const FROM_FILES_MAX: usize = 64;

/// The checkers' settings for a history that does not record them: each `None` falls back to
/// the first `started` line of a `khaos node`, then to `khaos node`'s default.
#[derive(Clone, Debug, Default)]
pub struct ContextFlags {
    /// `--lock` (default configmap).
    pub lock: Option<LockKind>,
    /// `--lease-duration` (default 15 s).
    pub lease_duration: Option<Duration>,
    /// `--renew-deadline` (default 10 s).
    pub renew_deadline: Option<Duration>,
    /// `--retry-period` (default 2 s).
    pub retry_period: Option<Duration>,
    /// `--unchecked-timing`: the nodes ran with timing that breaks the assumptions, so overlap
    /// is a figure, not a violation.
    pub unchecked_timing: bool,
    /// `--checkpoint-interval` (default 1 s).
    pub checkpoint_interval: Option<Duration>,
    /// `--namespace` (default `default`).
    pub namespace: Option<String>,
    /// `--cluster-id` (no default: from the `started` lines, else required).
    pub cluster_id: Option<String>,
    /// `--job-id` (default all zeros).
    pub job_id: Option<String>,
}

impl ContextFlags {
    /// The flags given, by name.
    fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        for (set, name) in [
            (self.lock.is_some(), "--lock"),
            (self.lease_duration.is_some(), "--lease-duration"),
            (self.renew_deadline.is_some(), "--renew-deadline"),
            (self.retry_period.is_some(), "--retry-period"),
            (self.unchecked_timing, "--unchecked-timing"),
            (self.checkpoint_interval.is_some(), "--checkpoint-interval"),
            (self.namespace.is_some(), "--namespace"),
            (self.cluster_id.is_some(), "--cluster-id"),
            (self.job_id.is_some(), "--job-id"),
        ] {
            if set {
                given.push(name);
            }
        }
        given
    }
}

/// What `khaos report` is asked to do.
#[derive(Clone, Debug)]
pub struct JudgeConfig {
    /// The run directory.
    pub dir: PathBuf,
    /// Logs to merge into `DIR/events.jsonl` first.
    pub from: Vec<PathBuf>,
    /// Settings for a history that does not record its own.
    pub flags: ContextFlags,
}

/// Why no report could be made.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// The directory has no history and nothing to merge.
    #[error(
        "{0} does not exist: `khaos report DIR` reads the history DIR/events.jsonl that `khaos sim run --out DIR` writes; for a live run pass its logs with --from FILE (khaos serve --history, each khaos node's stdout)"
    )]
    NoHistory(PathBuf),
    /// `--from` would overwrite a history.
    #[error(
        "{0} already exists: --from writes a new merged history there; use another directory, or drop --from to report on the history as it is"
    )]
    HistoryExists(PathBuf),
    /// Too many `--from` files.
    #[error("{0} --from files: at most {FROM_FILES_MAX} logs are merged at once")]
    TooManyLogs(usize),
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A log given with `--from` has a line that is not a history line.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// A line is not a history line.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line and why.
        source: ParseError,
    },
    /// The history has no line at all.
    #[error("{0} holds no history lines")]
    Empty(PathBuf),
    /// The settings the history records cannot be judged with.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The flags cannot be used.
    #[error("{0}")]
    Flags(String),
    /// A report file could not be written.
    #[error("writing the report files into {path}: {source}")]
    Write {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Judgement {
    /// Every checker held.
    pub ok: bool,
    /// `ok`, or `VIOLATED` and the checkers that broke.
    pub verdict: String,
    /// The history's entries.
    pub entries: usize,
    /// The files written, in order.
    pub written: Vec<PathBuf>,
    /// Each violation in words, with the lines it names.
    pub violations: String,
    /// What was left out, and why (the torn last line of a killed process's log).
    pub warnings: Vec<String>,
}

fn read(path: &Path) -> Result<String, JudgeError> {
    std::fs::read_to_string(path).map_err(|source| JudgeError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Merge `--from` logs if any, judge `DIR/events.jsonl`, and write the report files beside it.
pub fn run_dir(config: &JudgeConfig) -> Result<Judgement, JudgeError> {
    let events = config.dir.join("events.jsonl");
    let mut warnings = Vec::new();
    if !config.from.is_empty() {
        if config.from.len() > FROM_FILES_MAX {
            return Err(JudgeError::TooManyLogs(config.from.len()));
        }
        if events.exists() {
            return Err(JudgeError::HistoryExists(events));
        }
        let logs = config
            .from
            .iter()
            .map(|path| Ok((path.clone(), read(path)?)))
            .collect::<Result<Vec<_>, JudgeError>>()?;
        let merged = merge(&logs)?;
        warnings.extend(merged.torn.iter().map(|(path, line)| torn(path, *line)));
        std::fs::create_dir_all(&config.dir)
            .and_then(|()| std::fs::write(&events, &merged.history))
            .map_err(|source| JudgeError::Write {
                path: config.dir.clone(),
                source,
            })?;
    } else if !events.exists() {
        return Err(JudgeError::NoHistory(events));
    }
    let text = read(&events)?;
    let log = history::parse_log(&text).map_err(|source| JudgeError::Parse {
        path: events.clone(),
        source,
    })?;
    if let Some(line) = log.torn {
        warnings.push(torn(&events, line));
    }
    let history: Vec<Entry> = log.lines.into_iter().map(|(entry, _)| entry).collect();
    if history.is_empty() {
        return Err(JudgeError::Empty(events));
    }
    let info = run_info(&config.dir, &text, &history, &config.flags)?;
    let judged = JudgedRun::judge(info, history);
    judged
        .write(&config.dir)
        .map_err(|source| JudgeError::Write {
            path: config.dir.clone(),
            source,
        })?;
    Ok(Judgement {
        ok: judged.ok(),
        verdict: judged.verdict(),
        entries: judged.history.len(),
        written: FILES.iter().map(|name| config.dir.join(name)).collect(),
        violations: judged.violations_text(),
        warnings,
    })
}

fn torn(path: &Path, line: usize) -> String {
    format!(
        "{}: line {line} was cut off mid-write (what a killed process leaves) and is left out",
        path.display()
    )
}

/// What is known of the run: from its settings line (simulated), else from flags and the
/// nodes' `started` lines (live).
fn run_info(
    dir: &Path,
    text: &str,
    history: &[Entry],
    flags: &ContextFlags,
) -> Result<RunInfo, JudgeError> {
    let digest = history::digest(text);
    let Some(settings) = history.first().and_then(Entry::settings) else {
        let mut info = RunInfo::live(live_context(text, flags)?);
        info.digest = Some(digest);
        return Ok(info);
    };
    let given = flags.given();
    if !given.is_empty() {
        return Err(JudgeError::Flags(format!(
            "the history's first line records the run's settings, which the checkers use; drop {} (they are for histories without one, such as merged live logs)",
            given.join(", ")
        )));
    }
    let context = settings.context()?;
    // The run's own summary knows how it was replayed (a --schedule file, say); keep its line
    // when it is about this very history.
    let previous: Option<Value> = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let replay = previous
        .filter(|summary| summary["digest"] == digest.as_str())
        .and_then(|summary| summary["replay"].as_str().map(str::to_owned))
        // A simulated run replays from its scenario and seed; a live one does not.
        .or_else(|| settings.replay_command());
    Ok(RunInfo {
        scenario: settings.scenario.clone(),
        seed: Some(settings.seed),
        replay,
        digest: Some(digest),
        simulated_ms: history.last().map(|e| e.t_ms),
        settings: Some(settings.clone()),
        context,
    })
}

/// The first `started` line's fields, as `khaos node` prints them (the history's own parse
/// keeps none of them).
fn first_started(text: &str) -> Option<Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| value["event"] == "started" && value["cluster_id"].is_string())
}

/// The checkers' context for a live history: flags, else the first `started` line, else
/// `khaos node`'s defaults.
fn live_context(text: &str, flags: &ContextFlags) -> Result<Context, JudgeError> {
    let started = first_started(text).unwrap_or(Value::Null);
    let text_of = |key: &str| started[key].as_str().map(str::to_owned);
    let millis_of = |key: &str| started[key].as_u64().map(Duration::from_millis);
    let lock = match flags.lock {
        Some(lock) => lock,
        None => match started["lock"].as_str() {
            // `configmap/demo-cluster-config-map`: the kind, then the object.
            Some(lock) => lock
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|e| JudgeError::Flags(format!("the started line's lock: {e}")))?,
            None => LockKind::ConfigMap,
        },
    };
    let Some(cluster_id) = flags.cluster_id.clone().or_else(|| text_of("cluster_id")) else {
        return Err(JudgeError::Flags(
            "no cluster id: the history has no settings line and no `khaos node` started line names one; pass --cluster-id (the one the nodes ran with)".into(),
        ));
    };
    let lease = flags
        .lease_duration
        .or_else(|| millis_of("lease_duration_ms"))
        .unwrap_or(Duration::from_secs(15));
    let renew = flags
        .renew_deadline
        .or_else(|| millis_of("renew_deadline_ms"))
        .unwrap_or(Duration::from_secs(10));
    let retry = flags
        .retry_period
        .or_else(|| millis_of("retry_period_ms"))
        .unwrap_or(Duration::from_secs(2));
    let unchecked = flags.unchecked_timing || started["unchecked_timing"] == true;
    let timing = if unchecked {
        Timing::unchecked(lease, renew, retry)
    } else {
        Timing::new(lease, renew, retry).map_err(|e| {
            JudgeError::Flags(format!(
                "{e} (pass the timing the nodes ran with, and --unchecked-timing if they were started with it)"
            ))
        })?
    };
    let checkpoint_interval = flags
        .checkpoint_interval
        .or_else(|| millis_of("checkpoint_interval_ms"))
        .unwrap_or(Duration::from_secs(1));
    if checkpoint_interval.is_zero() {
        return Err(JudgeError::Flags(
            "--checkpoint-interval must be greater than zero".into(),
        ));
    }
    Ok(Context {
        namespace: flags
            .namespace
            .clone()
            .or_else(|| text_of("namespace"))
            .unwrap_or_else(|| "default".into()),
        cluster_id,
        job_id: flags
            .job_id
            .clone()
            .or_else(|| text_of("job_id"))
            .unwrap_or_else(|| "00000000000000000000000000000000".into()),
        lock,
        timing,
        checkpoint_interval,
        overlap_allowed: timing.is_unchecked(),
        network_delay_max: LIVE_NETWORK_DELAY_MAX,
        watch_delay_max: LIVE_WATCH_DELAY_MAX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    const STARTED: &str = r#"{"t_ms":0,"node":"node-a","event":"started","server":"http://127.0.0.1:1","namespace":"ha","cluster_id":"demo","job_id":"job","lock":"lease/demo-cluster-leader","lease_duration_ms":1500,"renew_deadline_ms":1000,"retry_period_ms":200,"unchecked_timing":false,"checkpoint_interval_ms":200,"epoch_ms":1}"#;

    #[test]
    fn a_live_context_comes_from_the_started_line_and_flags_override_it() {
        let context = live_context(STARTED, &ContextFlags::default()).unwrap();
        assert_eq!(
            (
                context.namespace.as_str(),
                context.cluster_id.as_str(),
                context.job_id.as_str(),
                context.lock,
                context.timing.lease_duration(),
                context.checkpoint_interval
            ),
            (
                "ha",
                "demo",
                "job",
                LockKind::Lease,
                Duration::from_millis(1500),
                Duration::from_millis(200)
            )
        );
        let flags = ContextFlags {
            lock: Some(LockKind::ConfigMap),
            cluster_id: Some("other".into()),
            ..ContextFlags::default()
        };
        let context = live_context(STARTED, &flags).unwrap();
        assert_eq!(
            (context.lock, context.cluster_id.as_str()),
            (LockKind::ConfigMap, "other")
        );
        let error = live_context("", &ContextFlags::default()).unwrap_err();
        assert!(error.to_string().contains("pass --cluster-id"), "{error}");
        let flags = ContextFlags {
            cluster_id: Some("demo".into()),
            renew_deadline: Some(Duration::from_secs(20)),
            ..ContextFlags::default()
        };
        let error = live_context("", &flags).unwrap_err();
        assert!(error.to_string().contains("--unchecked-timing"), "{error}");
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let run_in = |dir: &Path, from: Vec<PathBuf>, flags: ContextFlags| {
            run_dir(&JudgeConfig {
                dir: dir.to_path_buf(),
                from,
                flags,
            })
        };
        let error = run_in(dir.path(), vec![], ContextFlags::default()).unwrap_err();
        assert!(matches!(error, JudgeError::NoHistory(_)));
        assert!(error.to_string().contains("--from FILE"), "{error}");
        let bad = write(
            dir.path(),
            "bad.log",
            &[STARTED, "", "khaos API server listening"],
        );
        let error = run_in(&dir.path().join("out"), vec![bad], ContextFlags::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("bad.log: history line 3:"), "{error}");
        let good = write(dir.path(), "good.log", &[STARTED]);
        let out = dir.path().join("out");
        let outcome = run_in(&out, vec![good.clone()], ContextFlags::default()).unwrap();
        assert!(outcome.ok, "{}", outcome.violations);
        assert_eq!(outcome.written.len(), 4);
        let error = run_in(&out, vec![good], ContextFlags::default()).unwrap_err();
        assert!(matches!(error, JudgeError::HistoryExists(_)), "{error}");
        // Re-rendering leaves the history alone.
        let before = std::fs::read(out.join("events.jsonl")).unwrap();
        run_in(&out, vec![], ContextFlags::default()).unwrap();
        assert_eq!(std::fs::read(out.join("events.jsonl")).unwrap(), before);
    }

    #[test]
    fn a_simulated_history_is_judged_with_its_own_settings_and_refuses_flags() {
        let dir = tempfile::tempdir().unwrap();
        let settings = khaos_sim::world::settings(
            &khaos_scenarios::Setup::new(3),
            &khaos_sim::world::Options::default(),
        );
        let run_line =
            serde_json::json!({"t_ms": 0, "node": "harness", "event": "run", "settings": settings});
        write(dir.path(), "events.jsonl", &[&run_line.to_string()]);
        let flags = ContextFlags {
            lease_duration: Some(Duration::from_secs(3)),
            ..ContextFlags::default()
        };
        let error = run_dir(&JudgeConfig {
            dir: dir.path().to_path_buf(),
            from: vec![],
            flags,
        })
        .unwrap_err();
        assert!(
            error.to_string().contains("drop --lease-duration"),
            "{error}"
        );
        let outcome = run_dir(&JudgeConfig {
            dir: dir.path().to_path_buf(),
            from: vec![],
            flags: ContextFlags::default(),
        })
        .unwrap();
        assert!(outcome.ok);
        let timeline = std::fs::read_to_string(dir.path().join("timeline.txt")).unwrap();
        assert!(
            timeline.contains("lock configmap default/khaos-cluster-config-map"),
            "{timeline}"
        );
    }
}
