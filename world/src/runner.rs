//! Running scenarios: one seed with its verdicts and files, or a sweep over seeds on several
//! threads with progress, a summary and the line that replays each failure.

use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use khaos_elector::flaws::{Flaw, Flaws};

use crate::checkers::{self, Context, Verdict};
use crate::report::{Report, RunInfo};
use crate::scenarios::Scenario;
use crate::schedule::Schedule;
use crate::world::{self, NETWORK_DELAY_MAX, RunOutput, TICK_DEFAULT, WorldConfig, WorldError};

/// How runs are made, beyond scenario and seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The simulation's step ([`WorldConfig::tick`]).
    pub tick: std::time::Duration,
    /// Known bugs switched on ([`WorldConfig::flaws`]).
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

    /// The world of `scenario` at `seed` made this way.
    pub fn world(&self, scenario: &Scenario, seed: u64) -> WorldConfig {
        let mut config = scenario.world(seed);
        config.tick = self.tick;
        config.flaws = self.flaws;
        config
    }

    /// The flags that ask for these options (empty for the defaults).
    pub fn flags(&self) -> String {
        let mut flags = String::new();
        if self.tick != TICK_DEFAULT {
            flags += &format!(" --tick-ms {}", self.tick.as_millis());
        }
        for flaw in self.flaws.iter() {
            flags += &format!(" --flaw {flaw}");
        }
        flags
    }
}

/// One judged run.
pub struct RunReport {
    /// The scenario.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// The world's settings.
    pub config: WorldConfig,
    /// How it was made.
    pub options: Options,
    /// Flags the replay line needs beyond scenario, seed and options (`--schedule FILE` when the
    /// schedule came from a file).
    pub replay_flags: String,
    /// The whole replay command instead, when the run came from a saved case
    /// (`khaos replay FILE`).
    pub replay_command: Option<String>,
    /// The history and its digest.
    pub output: RunOutput,
    /// One verdict per checker.
    pub verdicts: Vec<Verdict>,
}

impl RunReport {
    /// Whether every checker held.
    pub fn ok(&self) -> bool {
        self.verdicts.iter().all(Verdict::ok)
    }

    /// The checkers that did not hold.
    pub fn violated(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .filter(|v| !v.ok())
            .map(|v| v.checker.to_owned())
            .collect()
    }

    /// The command that replays this run.
    pub fn replay(&self) -> String {
        match &self.replay_command {
            Some(command) => command.clone(),
            None => replay(self.scenario, self.seed, &self.options) + &self.replay_flags,
        }
    }

    /// One line: scenario, seed, verdict, digest and the headline figures.
    pub fn summary(&self) -> String {
        let failed: Vec<&str> = self
            .verdicts
            .iter()
            .filter(|v| !v.ok())
            .map(|v| v.checker)
            .collect();
        let verdict = if failed.is_empty() {
            "ok".to_owned()
        } else {
            format!("VIOLATED {}", failed.join(", "))
        };
        let figure = |name: &str| {
            self.verdicts
                .iter()
                .flat_map(|v| &v.figures)
                .find(|(n, _)| n == name)
                .map_or_else(|| "-".to_owned(), |(_, v)| v.to_string())
        };
        format!(
            "{} seed {}: {verdict} (history {}, {} s simulated, overlap {} ms, elected {} ms after heal)",
            self.scenario,
            self.seed,
            self.output.digest,
            self.output.simulated.as_secs(),
            figure("overlap_ms"),
            figure("elected_after_heal_ms"),
        )
    }

    /// Every violation, one paragraph each, with the history lines it names.
    pub fn violations(&self) -> String {
        let mut text = String::new();
        for verdict in self.verdicts.iter().filter(|v| !v.ok()) {
            for violation in &verdict.violations {
                text.push_str(&format!("  {}: {}\n", verdict.checker, violation.message));
                for index in &violation.entries {
                    if let Some(entry) = self.output.history.get(*index) {
                        text.push_str(&format!(
                            "    line {}: {}\n",
                            index + 1,
                            abbreviate(&entry.to_line())
                        ));
                    }
                }
            }
        }
        text
    }

    /// What the report files know of this run besides its history and verdicts.
    pub fn info(&self) -> RunInfo {
        RunInfo {
            scenario: self.scenario.to_owned(),
            seed: Some(self.seed),
            replay: Some(self.replay()),
            digest: Some(self.output.digest.clone()),
            simulated_ms: Some(
                u64::try_from(self.output.simulated.as_millis()).unwrap_or(u64::MAX),
            ),
            settings: self.config.settings(),
            context: context(&self.config),
        }
    }

    /// `summary.json`: seed, settings, digest, verdicts with the events that broke them, the
    /// figures and the failovers ([`Report::summary_json`]).
    pub fn summary_json(&self) -> serde_json::Value {
        let info = self.info();
        Report {
            info: &info,
            history: &self.output.history,
            verdicts: &self.verdicts,
        }
        .summary_json()
    }

    /// Write the run directory into `dir` (created if needed): the history (`events.jsonl`),
    /// the report files ([`crate::report::FILES`]: `summary.json`, `junit.xml`,
    /// `timeline.txt`, `timeline.html`) and `case.json` (for `khaos replay`).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("events.jsonl"), &self.output.jsonl)?;
        let info = self.info();
        Report {
            info: &info,
            history: &self.output.history,
            verdicts: &self.verdicts,
        }
        .write(dir)?;
        std::fs::write(
            dir.join("case.json"),
            crate::case::SavedCase::of(self).to_json(),
        )
    }
}

fn abbreviate(line: &str) -> String {
    const LIMIT: usize = 300;
    if line.len() <= LIMIT {
        return line.to_owned();
    }
    let mut end = LIMIT;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
}

/// The command that replays `scenario` at `seed`.
pub fn replay(scenario: &str, seed: u64, options: &Options) -> String {
    format!(
        "khaos sim run --scenario {scenario} --seed {seed}{}",
        options.flags()
    )
}

/// What the checkers need to know about a world.
pub fn context(config: &WorldConfig) -> Context {
    Context {
        namespace: config.job.namespace.clone(),
        cluster_id: config.job.cluster_id.clone(),
        job_id: config.job.job_id.clone(),
        lock: config.lock,
        timing: config.timing,
        checkpoint_interval: config.job.checkpoint_interval,
        overlap_allowed: config.timing.is_unchecked()
            || config.schedule.breaks_timing(&config.node_names()),
        network_delay_max: NETWORK_DELAY_MAX,
        watch_delay_max: watch_delay_max(&config.schedule),
    }
}

/// What the checkers need to know about a run, from the settings its history's first line
/// records (`{"event":"run","settings":{...}}`, [`WorldConfig::settings`]). Histories recorded
/// before the settings named namespace, cluster and job get the simulated world's defaults for
/// them ([`WorldConfig::new`]).
pub fn context_from_settings(settings: &serde_json::Value) -> Result<Context, String> {
    let problem = |what: String| format!("the run's settings (the history's first line): {what}");
    let number = |key: &str| {
        settings[key]
            .as_u64()
            .ok_or_else(|| problem(format!("{key} is missing or not a whole number")))
    };
    let millis = |key: &str| number(key).map(std::time::Duration::from_millis);
    let defaults = WorldConfig::new(0).job;
    let text = |key: &str, default: &str| match &settings[key] {
        serde_json::Value::Null => Ok(default.to_owned()),
        serde_json::Value::String(value) => Ok(value.clone()),
        other => Err(problem(format!("{key} is {other}, not a string"))),
    };
    let lock = settings["lock"]
        .as_str()
        .ok_or_else(|| problem("lock is missing (configmap or lease)".into()))?
        .parse()
        .map_err(problem)?;
    let (lease, renew, retry) = (
        millis("lease_duration_ms")?,
        millis("renew_deadline_ms")?,
        millis("retry_period_ms")?,
    );
    let unchecked = settings["unchecked_timing"].as_bool().unwrap_or(false);
    let timing = if unchecked {
        khaos_elector::Timing::unchecked(lease, renew, retry)
    } else {
        khaos_elector::Timing::new(lease, renew, retry).map_err(|e| problem(e.to_string()))?
    };
    // The candidates are named as the world names them (`node-a`, ...).
    let mut world = WorldConfig::new(0);
    world.nodes = usize::try_from(number("nodes")?).map_err(|e| problem(format!("nodes: {e}")))?;
    let nodes = world.node_names();
    let schedule: Schedule = match &settings["schedule"] {
        serde_json::Value::Null => Schedule::default(),
        value => {
            serde_json::from_value(value.clone()).map_err(|e| problem(format!("schedule: {e}")))?
        }
    };
    Ok(Context {
        namespace: text("namespace", &defaults.namespace)?,
        cluster_id: text("cluster_id", &defaults.cluster_id)?,
        job_id: text("job_id", &defaults.job_id)?,
        lock,
        timing,
        checkpoint_interval: millis("checkpoint_interval_ms")?,
        overlap_allowed: timing.is_unchecked() || schedule.breaks_timing(&nodes),
        network_delay_max: NETWORK_DELAY_MAX,
        watch_delay_max: watch_delay_max(&schedule),
    })
}

/// The longest a watch event may be held back by the schedule's watch faults.
fn watch_delay_max(schedule: &Schedule) -> std::time::Duration {
    let ms = schedule
        .faults
        .iter()
        .filter_map(|s| match &s.fault {
            crate::schedule::Fault::Server { faults } => Some(faults.watch.delay_ms_max),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    std::time::Duration::from_millis(ms)
}

/// Run `config` (a scenario's world, perhaps with another schedule) and judge it.
pub fn run_config(
    scenario: &'static Scenario,
    config: WorldConfig,
    options: &Options,
) -> Result<RunReport, WorldError> {
    let output = world::run(&config)?;
    let verdicts = checkers::check(&output.history, &context(&config));
    Ok(RunReport {
        scenario: scenario.name,
        seed: config.seed,
        config,
        options: *options,
        replay_flags: String::new(),
        replay_command: None,
        output,
        verdicts,
    })
}

/// Shrink a failing run's schedule to a minimal one that still breaks at least one of the same
/// checkers; returns the shrunk schedule and the report of its run. `None` if the run holds.
pub fn shrink(
    scenario: &'static Scenario,
    seed: u64,
    options: &Options,
    progress: impl FnMut(usize, usize),
) -> Result<Option<(crate::shrink::Shrunk, RunReport)>, WorldError> {
    shrink_keeping(scenario, seed, options, None, progress)
}

/// [`shrink`], keeping `checker` broken if one is named (else any checker the run broke).
pub fn shrink_keeping(
    scenario: &'static Scenario,
    seed: u64,
    options: &Options,
    checker: Option<&str>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Option<(crate::shrink::Shrunk, RunReport)>, WorldError> {
    let report = run(scenario, seed, options)?;
    let broken: Vec<String> = match checker {
        Some(checker) => vec![checker.to_owned()],
        None => report.violated(),
    };
    if !report.violated().iter().any(|v| broken.contains(v)) {
        return Ok(None);
    }
    let base = report.config.clone();
    let mut error = None;
    let shrunk = crate::shrink::shrink(&base.schedule, |candidate| {
        let mut config = base.clone();
        config.schedule = candidate.clone();
        progress(candidate.faults.len(), base.schedule.faults.len());
        match run_config(scenario, config, options) {
            Ok(report) => report.violated().iter().any(|v| broken.contains(v)),
            Err(e) => {
                error.get_or_insert(e);
                false
            }
        }
    });
    if let Some(error) = error {
        return Err(error);
    }
    let mut config = base;
    config.schedule = shrunk.schedule.clone();
    let report = run_config(scenario, config, options)?;
    Ok(Some((shrunk, report)))
}

/// Run `scenario` at `seed` and judge it.
pub fn run(
    scenario: &'static Scenario,
    seed: u64,
    options: &Options,
) -> Result<RunReport, WorldError> {
    run_config(scenario, options.world(scenario, seed), options)
}

/// A run that did not give the same history twice.
#[derive(Debug, thiserror::Error)]
#[error("{scenario} seed {seed} is not deterministic: history {first} then {second}")]
pub struct Nondeterministic {
    /// The scenario.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// The first digest.
    pub first: String,
    /// The second.
    pub second: String,
}

/// Run the same world again and compare the history's digest with `report`'s.
pub fn check_determinism(
    scenario: &'static Scenario,
    report: &RunReport,
) -> Result<(), Box<dyn std::error::Error>> {
    let again = world::run(&report.config)?;
    if again.digest != report.output.digest {
        return Err(Box::new(Nondeterministic {
            scenario: scenario.name,
            seed: report.seed,
            first: report.output.digest.clone(),
            second: again.digest,
        }));
    }
    Ok(())
}

/// The outcome of one run of a sweep (histories are not kept).
#[derive(Clone, Debug)]
pub struct SweepRun {
    /// The scenario.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// Its summary line.
    pub summary: String,
    /// Whether every checker held and (if asked) the run was deterministic.
    pub ok: bool,
    /// The violations (or the error), for the report.
    pub detail: String,
}

/// Run every scenario over `seeds` on `jobs` threads; `progress` is called after each run with
/// (done, total, that run). Results come back in (scenario, seed) order whatever the threads did.
/// With `determinism`, each run is done twice and the digests compared.
pub fn sweep(
    scenarios: &[&'static Scenario],
    seeds: Range<u64>,
    jobs: usize,
    determinism: bool,
    options: &Options,
    progress: impl Fn(usize, usize, &SweepRun) + Sync,
) -> Vec<SweepRun> {
    let work: Vec<(&'static Scenario, u64)> = scenarios
        .iter()
        .flat_map(|s| seeds.clone().map(move |seed| (*s, seed)))
        .collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, SweepRun)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((scenario, seed)) = work.get(index).copied() else {
                        return;
                    };
                    let run = sweep_one(scenario, seed, determinism, options);
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(finished, work.len(), &run);
                    results.lock().expect("not poisoned").push((index, run));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("not poisoned");
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, run)| run).collect()
}

fn sweep_one(
    scenario: &'static Scenario,
    seed: u64,
    determinism: bool,
    options: &Options,
) -> SweepRun {
    match run(scenario, seed, options) {
        Err(error) => SweepRun {
            scenario: scenario.name,
            seed,
            summary: format!("{} seed {seed}: ERROR {error}", scenario.name),
            ok: false,
            detail: error.to_string(),
        },
        Ok(report) => {
            let mut ok = report.ok();
            let mut detail = report.violations();
            if determinism && let Err(error) = check_determinism(scenario, &report) {
                ok = false;
                detail.push_str(&format!("  determinism: {error}\n"));
            }
            SweepRun {
                scenario: scenario.name,
                seed,
                summary: report.summary(),
                ok,
                detail,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::CATALOGUE;

    #[test]
    fn the_recorded_settings_give_the_context_the_run_was_judged_with() {
        for scenario in CATALOGUE {
            for seed in 1..4 {
                let config = Options::default().world(scenario, seed);
                let from_settings = context_from_settings(&config.settings()).unwrap();
                assert_eq!(
                    format!("{from_settings:?}"),
                    format!("{:?}", context(&config)),
                    "{} seed {seed}",
                    scenario.name
                );
            }
        }
    }

    #[test]
    fn settings_that_cannot_be_judged_are_named() {
        let mut settings = WorldConfig::new(1).settings();
        settings["lock"] = serde_json::json!("etcd");
        let error = context_from_settings(&settings).unwrap_err();
        assert!(error.contains("etcd"), "{error}");
        settings["lock"] = serde_json::json!("lease");
        settings.as_object_mut().unwrap().remove("retry_period_ms");
        let error = context_from_settings(&settings).unwrap_err();
        assert_eq!(
            error,
            "the run's settings (the history's first line): retry_period_ms is missing or not a whole number"
        );
        // Settings recorded before namespace, cluster and job were: the world's defaults.
        let mut settings = WorldConfig::new(1).settings();
        settings.as_object_mut().unwrap().remove("cluster_id");
        assert_eq!(
            context_from_settings(&settings).unwrap().cluster_id,
            "khaos"
        );
    }
}
