//! Saved cases: everything that replays one run (scenario, seed, step, flaws, the fault schedule
//! that ran) in one small versioned JSON file, plus the checkers it broke when it was saved.
//! `khaos sim run --out DIR` writes `DIR/case.json`; the regression corpus keeps one per known
//! bug; `khaos replay FILE` re-runs and re-judges one.
//!
//! ```no_run
//! use khaos_world::case::SavedCase;
//! let case = SavedCase::load("world/tests/corpus/renew-poisoned.json".as_ref())?;
//! let report = case.run()?;
//! assert_eq!(case.violated, report.violated());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;
use std::time::Duration;

use khaos_elector::flaws::Flaws;
use serde::{Deserialize, Serialize};

use crate::runner::{self, Options, RunReport};
use crate::scenarios;
use crate::schedule::Schedule;
use crate::world::WorldError;

/// The newest case format this build reads and the one it writes.
pub const FORMAT: u32 = 1;

/// One saved run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedCase {
    /// The case format ([`FORMAT`] when written by this build).
    pub format: u32,
    /// The khaos version that wrote it (informational: a replay needs the same code to give the
    /// same history byte for byte).
    pub khaos: String,
    /// The scenario whose world the case runs (`khaos sim list`).
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The simulation's step in milliseconds.
    pub tick_ms: u64,
    /// Known bugs switched on.
    pub flaws: Flaws,
    /// The faults that ran (they replace the scenario's own).
    pub schedule: Schedule,
    /// The checkers the run broke when it was saved (empty: it passed).
    pub violated: Vec<String>,
    /// The history's digest when it was saved.
    pub digest: String,
}

/// Why a saved case could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a case.
    #[error(
        "{path} is not a saved case: {source} (a case is the JSON `khaos sim run --out DIR` writes \
         as DIR/case.json)"
    )]
    Parse {
        /// The file.
        path: String,
        /// Why, with the line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A newer khaos wrote it.
    #[error(
        "{path} is a case of format {found}, newer than this khaos reads ({FORMAT}): replay it with \
         the khaos that wrote it ({khaos}) or a newer one"
    )]
    Newer {
        /// The file.
        path: String,
        /// Its format.
        found: u32,
        /// The khaos that wrote it.
        khaos: String,
    },
    /// It names something this build does not know, or its schedule cannot run.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and what to change.
        reason: String,
    },
}

impl SavedCase {
    /// The case that replays `report`.
    pub fn of(report: &RunReport) -> SavedCase {
        SavedCase {
            format: FORMAT,
            khaos: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: report.scenario.to_owned(),
            seed: report.seed,
            tick_ms: u64::try_from(report.config.tick.as_millis()).unwrap_or(u64::MAX),
            flaws: report.config.flaws,
            schedule: report.config.schedule.clone(),
            violated: report.violated(),
            digest: report.output.digest.clone(),
        }
    }

    /// Read and check a case file.
    pub fn load(path: &Path) -> Result<SavedCase, CaseError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CaseError::Read {
            path: name.clone(),
            source,
        })?;
        SavedCase::parse(&name, &text)
    }

    /// Parse and check a case; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<SavedCase, CaseError> {
        // The format first, so a newer file gets "newer", not whatever field it added.
        #[derive(Deserialize)]
        struct Version {
            format: Option<u32>,
            khaos: Option<String>,
        }
        let version: Version = serde_json::from_str(text).map_err(|source| CaseError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if let Some(found) = version.format.filter(|f| *f > FORMAT) {
            return Err(CaseError::Newer {
                path: path.to_owned(),
                found,
                khaos: version.khaos.unwrap_or_else(|| "unknown".into()),
            });
        }
        let case: SavedCase = serde_json::from_str(text).map_err(|source| CaseError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| CaseError::Invalid {
            path: path.to_owned(),
            reason,
        };
        if case.format == 0 {
            return Err(invalid("format 0 does not exist; cases start at 1".into()));
        }
        if !(1..=100).contains(&case.tick_ms) {
            return Err(invalid(format!(
                "tick_ms {} is outside 1..=100",
                case.tick_ms
            )));
        }
        let scenario = scenarios::find(&case.scenario).map_err(invalid)?;
        let world = scenario.world(case.seed);
        case.schedule
            .validate(&world.node_names(), &world.observer_names())
            .map_err(invalid)?;
        Ok(case)
    }

    /// The options the case runs with.
    pub fn options(&self) -> Options {
        Options {
            tick: Duration::from_millis(self.tick_ms),
            flaws: self.flaws,
        }
    }

    /// Run the case again and judge it.
    pub fn run(&self) -> Result<RunReport, WorldError> {
        self.run_with(self.flaws)
    }

    /// Run the case with other flaws (none: the passing twin of a regression case).
    pub fn run_with(&self, flaws: Flaws) -> Result<RunReport, WorldError> {
        let scenario = scenarios::find(&self.scenario).map_err(WorldError::Schedule)?;
        let options = Options {
            flaws,
            ..self.options()
        };
        let mut config = options.world(scenario, self.seed);
        config.schedule = self.schedule.clone();
        runner::run_config(scenario, config, &options)
    }

    /// The case as the file holds it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a case serialises") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SavedCase {
        SavedCase {
            format: FORMAT,
            khaos: "0.1.0".into(),
            scenario: "leader-crash".into(),
            seed: 7,
            tick_ms: 10,
            flaws: "renew-poisoned".parse().unwrap(),
            schedule: Schedule::default(),
            violated: vec!["liveness".into()],
            digest: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn a_case_round_trips() {
        let case = sample();
        assert_eq!(SavedCase::parse("c.json", &case.to_json()).unwrap(), case);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let newer = sample().to_json().replace("\"format\": 1", "\"format\": 9");
        let error = SavedCase::parse("c.json", &newer).unwrap_err().to_string();
        assert!(
            error.contains("format 9, newer than this khaos reads (1)"),
            "{error}"
        );

        let error = SavedCase::parse("c.json", "{\"format\": 1,")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("c.json is not a saved case") && error.contains("line 1"),
            "{error}"
        );

        let unknown = sample().to_json().replace("leader-crash", "no-such");
        let error = SavedCase::parse("c.json", &unknown)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no scenario \"no-such\""), "{error}");

        let flaw = sample().to_json().replace("renew-poisoned", "nope");
        let error = SavedCase::parse("c.json", &flaw).unwrap_err().to_string();
        assert!(error.contains("the known flaws are"), "{error}");

        let host = sample().to_json().replace(
            "\"faults\": []",
            "\"faults\": [{\"at_ms\": 0, \"for_ms\": 1, \"fault\": {\"kind\": \"crash\", \"node\": \"node-z\"}}]",
        );
        let error = SavedCase::parse("c.json", &host).unwrap_err().to_string();
        assert!(error.contains("\"node-z\" is not a candidate"), "{error}");
    }
}
