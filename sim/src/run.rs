//! One simulated run, judged: a scenario's [`Setup`] at a seed, executed by the
//! [`world`](mod@crate::world), its history judged by the checkers, with the line that replays it;
//! shrinking a failing run's schedule; and the determinism check that runs a seed twice.
//!
//! ```
//! use khaos_sim::run::{self, Options};
//! let scenario = khaos_scenarios::find("leader-crash")?;
//! let run = run::run(scenario, 1, &Options::default())?;
//! assert!(run.ok(), "{}", run.judged.violations_text());
//! assert_eq!(run.replay(), "khaos sim run --scenario leader-crash --seed 1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;
use std::time::Duration;

use khaos_elector::timing::millis;
use khaos_reports::history::{Divergence, first_difference};
use khaos_reports::render::{JudgedRun, RunInfo};
use khaos_scenarios::case::SavedCase;
use khaos_scenarios::shrink::{self, Shrunk};
use khaos_scenarios::{Scenario, Setup};

pub use crate::world::Options;
use crate::world::{self, WorldError};

/// One judged simulated run.
#[derive(Clone, Debug)]
pub struct SimulatedRun {
    /// The scenario.
    pub scenario: &'static str,
    /// What ran (the scenario's setup at its seed, perhaps with another schedule).
    pub setup: Setup,
    /// How it was made.
    pub options: Options,
    /// The history as JSON lines.
    pub jsonl: String,
    /// Simulated time covered.
    pub simulated: Duration,
    /// The history, its verdicts and what the reports show of the run.
    pub judged: JudgedRun,
}

impl SimulatedRun {
    /// The seed.
    pub fn seed(&self) -> u64 {
        self.setup.seed
    }

    /// The history's digest.
    pub fn digest(&self) -> &str {
        self.judged
            .info
            .digest
            .as_deref()
            .expect("a simulated run has a digest")
    }

    /// Whether every checker held.
    pub fn ok(&self) -> bool {
        self.judged.ok()
    }

    /// The checkers that did not hold.
    pub fn violated(&self) -> Vec<String> {
        self.judged.violated()
    }

    /// The command that replays this run.
    pub fn replay(&self) -> &str {
        self.judged
            .info
            .replay
            .as_deref()
            .expect("a simulated run has a replay line")
    }

    /// Replace the command that replays this run (when it came from a file: `--schedule FILE`,
    /// `khaos replay FILE`).
    pub fn set_replay(&mut self, command: String) {
        self.judged.info.replay = Some(command);
    }

    /// One line: scenario, seed, verdict, digest and the headline figures.
    pub fn summary(&self) -> String {
        let figure = |name: &str| {
            self.judged
                .verdicts
                .iter()
                .flat_map(|v| &v.figures)
                .find(|(n, _)| n == name)
                .map_or_else(|| "-".to_owned(), |(_, v)| v.to_string())
        };
        format!(
            "{} seed {}: {} (history {}, {} s simulated, overlap {} ms, elected {} ms after heal)",
            self.scenario,
            self.seed(),
            self.judged.verdict(),
            self.digest(),
            self.simulated.as_secs(),
            figure("overlap_ms"),
            figure("elected_after_heal_ms"),
        )
    }

    /// The saved case that replays this run.
    pub fn case(&self) -> SavedCase {
        SavedCase::new(
            self.scenario,
            self.seed(),
            millis(self.options.tick),
            self.options.flaws,
            self.setup.schedule.clone(),
            self.violated(),
            self.digest(),
        )
    }

    /// Write the run directory into `dir` (created if needed): the history (`events.jsonl`),
    /// the report files ([`khaos_reports::render::FILES`]) and `case.json` (for
    /// `khaos replay`).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("events.jsonl"), &self.jsonl)?;
        self.judged.write(dir)?;
        std::fs::write(dir.join("case.json"), self.case().to_json())
    }
}

/// The command that replays `scenario` at `seed`.
pub fn replay_command(scenario: &str, seed: u64, options: &Options) -> String {
    khaos_reports::settings::replay_command(scenario, seed, millis(options.tick), options.flaws)
}

/// Run `setup` (a scenario's, perhaps with another schedule) and judge it.
pub fn run_setup(
    scenario: &'static Scenario,
    setup: Setup,
    options: &Options,
) -> Result<SimulatedRun, WorldError> {
    let output = world::run(&setup, options)?;
    let settings = world::settings(&setup, options);
    let info = RunInfo {
        scenario: scenario.name.to_owned(),
        seed: Some(setup.seed),
        replay: Some(replay_command(scenario.name, setup.seed, options)),
        digest: Some(output.digest),
        simulated_ms: Some(millis(output.simulated)),
        context: settings.context().map_err(WorldError::Settings)?,
        settings: Some(settings),
    };
    Ok(SimulatedRun {
        scenario: scenario.name,
        setup,
        options: *options,
        jsonl: output.jsonl,
        simulated: output.simulated,
        judged: JudgedRun::judge(info, output.history),
    })
}

/// Run `scenario` at `seed` and judge it.
pub fn run(
    scenario: &'static Scenario,
    seed: u64,
    options: &Options,
) -> Result<SimulatedRun, WorldError> {
    run_setup(scenario, scenario.setup(seed), options)
}

/// Why a saved case could not be run again.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The case names a scenario this build does not know.
    #[error(transparent)]
    Scenario(#[from] khaos_scenarios::UnknownScenario),
    /// The run failed.
    #[error(transparent)]
    World(#[from] WorldError),
}

/// Run a saved case again with `flaws` (its own, or none for the passing twin of a regression
/// case) and judge it.
pub fn replay(
    case: &SavedCase,
    flaws: khaos_elector::flaws::Flaws,
) -> Result<SimulatedRun, ReplayError> {
    let scenario = khaos_scenarios::find(&case.scenario)?;
    let options = Options {
        tick: Duration::from_millis(case.tick_ms),
        flaws,
    };
    let mut setup = scenario.setup(case.seed);
    setup.schedule = case.schedule.clone();
    Ok(run_setup(scenario, setup, &options)?)
}

/// Shrink a failing run's schedule to a minimal one that still breaks at least one of the same
/// checkers; returns the shrunk schedule and its run. `None` if the run holds.
pub fn shrink(
    scenario: &'static Scenario,
    seed: u64,
    options: &Options,
    progress: impl FnMut(usize, usize),
) -> Result<Option<(Shrunk, SimulatedRun)>, WorldError> {
    shrink_keeping(scenario, seed, options, None, progress)
}

/// [`shrink()`], keeping `checker` broken if one is named (else any checker the run broke).
pub fn shrink_keeping(
    scenario: &'static Scenario,
    seed: u64,
    options: &Options,
    checker: Option<&str>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Option<(Shrunk, SimulatedRun)>, WorldError> {
    let first = run(scenario, seed, options)?;
    let broken: Vec<String> = match checker {
        Some(checker) => vec![checker.to_owned()],
        None => first.violated(),
    };
    if !first.violated().iter().any(|v| broken.contains(v)) {
        return Ok(None);
    }
    let base = first.setup;
    let mut error = None;
    let shrunk = shrink::shrink(&base.schedule, |candidate| {
        let mut setup = base.clone();
        setup.schedule = candidate.clone();
        progress(candidate.faults.len(), base.schedule.faults.len());
        match run_setup(scenario, setup, options) {
            Ok(run) => run.violated().iter().any(|v| broken.contains(v)),
            Err(e) => {
                error.get_or_insert(e);
                false
            }
        }
    });
    if let Some(error) = error {
        return Err(error);
    }
    let mut setup = base;
    setup.schedule = shrunk.schedule.clone();
    let run = run_setup(scenario, setup, options)?;
    Ok(Some((shrunk, run)))
}

/// A run that did not give the same history twice.
#[derive(Debug, thiserror::Error)]
#[error("{scenario} seed {seed} is not deterministic: history {first} then {second}; {divergence}")]
pub struct Nondeterministic {
    /// The scenario.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// The first digest.
    pub first: String,
    /// The second.
    pub second: String,
    /// The first line where the two histories differ.
    pub divergence: Divergence,
}

/// Why the determinism check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum DeterminismError {
    /// The second run failed.
    #[error(transparent)]
    World(#[from] WorldError),
    /// The second run gave another history.
    #[error(transparent)]
    Nondeterministic(#[from] Box<Nondeterministic>),
}

/// Run the same setup again and compare its history with `run`'s, line by line: the error
/// names the first line where they differ.
pub fn check_determinism(run: &SimulatedRun) -> Result<(), DeterminismError> {
    let again = world::run(&run.setup, &run.options)?;
    same_history(run, &again.jsonl, &again.digest)
}

/// Whether `jsonl` (with `digest`) is `run`'s history again.
fn same_history(run: &SimulatedRun, jsonl: &str, digest: &str) -> Result<(), DeterminismError> {
    let Some(divergence) = first_difference(&run.jsonl, jsonl) else {
        return Ok(());
    };
    Err(Box::new(Nondeterministic {
        scenario: run.scenario,
        seed: run.seed(),
        first: run.digest().to_owned(),
        second: digest.to_owned(),
        divergence,
    })
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use khaos_scenarios::CATALOGUE;

    #[test]
    fn a_history_that_differs_names_its_first_differing_line() {
        let scenario = khaos_scenarios::find("leader-crash").unwrap();
        let mut setup = scenario.setup(1);
        (setup.fault_phase_ms, setup.healed_phase_ms) = (2_000, 2_000);
        let first = run_setup(scenario, setup, &Options::default()).unwrap();
        assert!(same_history(&first, &first.jsonl, first.digest()).is_ok());
        // A history that differs from its third line on.
        let mut lines: Vec<&str> = first.jsonl.lines().collect();
        let tampered = lines[2].replace("\"t_ms\":", "\"t_ms\":1");
        lines[2] = &tampered;
        let other = lines.join("\n") + "\n";
        let digest = khaos_reports::history::digest(&other);
        let error = same_history(&first, &other, &digest).unwrap_err();
        let DeterminismError::Nondeterministic(error) = error else {
            panic!("{error}")
        };
        assert_eq!(error.divergence.line, 3);
        assert_eq!(error.divergence.second.as_deref(), Some(tampered.as_str()));
        let text = error.to_string();
        assert!(text.contains("line 3 differs"), "{text}");
    }

    #[test]
    fn every_scenario_records_settings_that_parse_back_and_judge_its_run() {
        for scenario in CATALOGUE {
            let setup = scenario.setup(1);
            let settings = world::settings(&setup, &Options::default());
            let line = khaos_reports::history::Entry::harness(
                0,
                khaos_reports::history::HARNESS,
                khaos_reports::history::HarnessEvent::Run {
                    settings: Box::new(settings.clone()),
                },
            )
            .to_line();
            let parsed = khaos_reports::history::parse(&line).unwrap();
            assert_eq!(parsed[0].settings(), Some(&settings), "{}", scenario.name);
            let context = settings.context().unwrap();
            assert_eq!(context.timing, setup.timing, "{}", scenario.name);
            assert_eq!(
                context.overlap_allowed,
                setup.timing.is_unchecked()
                    || setup
                        .schedule
                        .breaks_timing(&settings.candidates(), &setup.timing),
                "{}",
                scenario.name
            );
        }
    }
}
