//! The regression corpus run in the simulator: each known bug's exposing schedule with its flaw
//! (the named checker must fire) and without (everything must hold), shrunk to the minimal case
//! that is saved in `scenarios/corpus/`, and how many seeds of the default swarm find each flaw.
//!
//! ```no_run
//! use khaos_elector::flaws::Flaw;
//! use khaos_scenarios::corpus::known_bug;
//! let verified = khaos_sim::corpus::verify(known_bug(Flaw::RenewPoisoned))?;
//! assert!(verified.fired() && verified.twin.ok());
//! # Ok::<(), khaos_sim::world::WorldError>(())
//! ```

use std::path::{Path, PathBuf};

use khaos_elector::flaws::{Flaw, Flaws};
use khaos_scenarios::case::SavedCase;
use khaos_scenarios::corpus::KnownBug;

use crate::run::{self, Options, ReplayError, SimulatedRun};
use crate::sweep;
use crate::world::WorldError;

/// A known bug's exposing schedule run with its flaw and without.
#[derive(Debug)]
pub struct Verified {
    /// The bug.
    pub bug: &'static KnownBug,
    /// The run with the flaw on.
    pub flawed: SimulatedRun,
    /// The same seed and schedule without it.
    pub twin: SimulatedRun,
}

impl Verified {
    /// Whether the checker the bug names fired with the flaw on.
    pub fn fired(&self) -> bool {
        self.flawed.violated().iter().any(|v| v == self.bug.checker)
    }

    /// What is wrong, one line each: the checker did not fire, or the twin failed.
    pub fn problems(&self) -> Vec<String> {
        let flaw = self.bug.flaw;
        let mut problems = Vec::new();
        if !self.fired() {
            problems.push(format!(
                "{flaw}: {} did not fire; replay: {}",
                self.bug.checker,
                self.flawed.replay()
            ));
        }
        if !self.twin.ok() {
            problems.push(format!(
                "{flaw}: the twin without the flaw failed; replay: {}",
                self.twin.replay()
            ));
        }
        problems
    }
}

/// Run `bug`'s exposing schedule at its seed with its flaw and without.
pub fn verify(bug: &'static KnownBug) -> Result<Verified, WorldError> {
    let flawed = run::run(&bug.scenario, bug.seed, &Options::default().flaw(bug.flaw))?;
    let twin = run::run(&bug.scenario, bug.seed, &Options::default())?;
    Ok(Verified { bug, flawed, twin })
}

/// Why a minimal case could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MinimalError {
    /// The bug's checker does not fire with its flaw, so there is nothing to shrink.
    #[error("{0}: its checker does not fire, so there is nothing to shrink")]
    DoesNotFire(Flaw),
    /// The shrunk schedule fails without the flaw too: it would be no regression case.
    #[error("{flaw}: the shrunk schedule fails without the flaw too:\n{violations}")]
    TwinFails {
        /// The flaw.
        flaw: Flaw,
        /// What the twin broke.
        violations: String,
    },
    /// A run failed.
    #[error(transparent)]
    Run(#[from] ReplayError),
    /// The case could not be written.
    #[error("writing {path}: {source}", path = path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<WorldError> for MinimalError {
    fn from(error: WorldError) -> MinimalError {
        MinimalError::Run(error.into())
    }
}

/// Run `bug` with its flaw and shrink the schedule to a minimal one on which its checker still
/// fires, then check the shrunk schedule holds without the flaw: the regression case to keep.
pub fn minimal(
    bug: &'static KnownBug,
    progress: impl FnMut(usize, usize),
) -> Result<SavedCase, MinimalError> {
    let options = Options::default().flaw(bug.flaw);
    let Some((_, shrunk)) = run::shrink_keeping(
        &bug.scenario,
        bug.seed,
        &options,
        Some(bug.checker),
        progress,
    )?
    else {
        return Err(MinimalError::DoesNotFire(bug.flaw));
    };
    let case = shrunk.case();
    let twin = run::replay(&case, Flaws::NONE)?;
    if !twin.ok() {
        return Err(MinimalError::TwinFails {
            flaw: bug.flaw,
            violations: twin.judged.violations_text(),
        });
    }
    Ok(case)
}

/// [`minimal`], written to `dir/<flaw>.json` (the directory is created); returns the file.
pub fn write_minimal(
    bug: &'static KnownBug,
    dir: &Path,
) -> Result<(SavedCase, PathBuf), MinimalError> {
    let case = minimal(bug, |_, _| {})?;
    let path = dir.join(format!("{}.json", bug.flaw));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, case.to_json()))
        .map_err(|source| MinimalError::Write {
            path: path.clone(),
            source,
        })?;
    Ok((case, path))
}

/// The first seed of the default swarm, from 1, whose run with `flaw` on breaks a checker while
/// the same seed without it holds, and the checkers it broke; `None` if none of `max_seeds`
/// seeds does. Seeds run `jobs` at a time; `progress` hears of each finished seed.
pub fn seeds_to_find(
    flaw: Flaw,
    max_seeds: u64,
    jobs: usize,
    progress: impl Fn(u64) + Sync,
) -> Result<Option<(u64, Vec<String>)>, WorldError> {
    let swarm = khaos_scenarios::find("swarm").expect("the catalogue has a swarm");
    let options = Options::default().flaw(flaw);
    let batch = (jobs.max(1) * 4) as u64;
    let mut from = 1;
    while from <= max_seeds {
        let to = (from + batch).min(max_seeds + 1);
        let runs = sweep::sweep(&[swarm], from..to, jobs, false, &options, |_, _, run| {
            progress(run.seed)
        });
        // In seed order: the first failing seed whose twin holds.
        for failed in runs.iter().filter(|r| !r.ok) {
            let flawed = run::run(swarm, failed.seed, &options)?;
            let twin = run::run(swarm, failed.seed, &Options::default())?;
            if twin.ok() {
                return Ok(Some((failed.seed, flawed.violated())));
            }
        }
        from = to;
    }
    Ok(None)
}
