//! Saved cases: everything that replays one run (scenario, seed, step, flaws, the fault schedule
//! that ran) in one small versioned JSON file, plus the checkers it broke when it was saved.
//! `khaos sim run --out DIR` writes `DIR/case.json`; the regression corpus keeps one per known
//! bug (`scenarios/corpus/`); `khaos replay FILE` re-runs and re-judges one
//! (`khaos_sim::run::replay`).
//!
//! ```
//! use khaos_scenarios::case::SavedCase;
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/renew-poisoned.json");
//! let case = SavedCase::load(path.as_ref())?;
//! assert_eq!((case.scenario.as_str(), case.violated.as_slice()), ("bug/renew-poisoned", &["liveness".to_owned()][..]));
//! # Ok::<(), khaos_scenarios::case::CaseError>(())
//! ```

use std::path::Path;

use khaos_elector::flaws::Flaws;
use khaos_reports::faults::{Schedule, ScheduleError};
use serde::{Deserialize, Serialize};

use crate::UnknownScenario;

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
    /// A directory without a case.json.
    #[error(
        "{0} is a directory without case.json: give a case file, or a run directory `khaos sim run --out DIR` wrote"
    )]
    NoCaseInDir(String),
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
    /// It names a scenario this build does not know.
    #[error("{path}: {source}")]
    UnknownScenario {
        /// The file.
        path: String,
        /// Which, and the scenarios there are.
        #[source]
        source: UnknownScenario,
    },
    /// Its schedule cannot run in the scenario's setup.
    #[error("{path}: {source}")]
    Schedule {
        /// The file.
        path: String,
        /// The fault and what to change.
        #[source]
        source: ScheduleError,
    },
    /// A setting is out of range.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and what to change.
        reason: String,
    },
}

/// How a replayed case compares with the run it saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replayed {
    /// The same checkers broke and the history is the same, byte for byte.
    Same,
    /// The same checkers broke, but the history differs: the code changed since.
    SameVerdicts,
    /// Other checkers broke (or none).
    OtherVerdicts,
}

impl SavedCase {
    /// A case of this build's format.
    pub fn new(
        scenario: &str,
        seed: u64,
        tick_ms: u64,
        flaws: Flaws,
        schedule: Schedule,
        violated: Vec<String>,
        digest: &str,
    ) -> SavedCase {
        SavedCase {
            format: FORMAT,
            khaos: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: scenario.to_owned(),
            seed,
            tick_ms,
            flaws,
            schedule,
            violated,
            digest: digest.to_owned(),
        }
    }

    /// Read and check a case file, or the case.json of a run directory.
    pub fn load(path: &Path) -> Result<SavedCase, CaseError> {
        // A run directory holds its case as case.json.
        let in_dir;
        let path = if path.is_dir() {
            in_dir = path.join("case.json");
            if !in_dir.exists() {
                return Err(CaseError::NoCaseInDir(path.display().to_string()));
            }
            &in_dir
        } else {
            path
        };
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
        let scenario =
            crate::find(&case.scenario).map_err(|source| CaseError::UnknownScenario {
                path: path.to_owned(),
                source,
            })?;
        let setup = scenario.setup(case.seed);
        case.schedule
            .validate(&setup.node_names(), &setup.observer_names())
            .map_err(|source| CaseError::Schedule {
                path: path.to_owned(),
                source,
            })?;
        Ok(case)
    }

    /// How a replay that broke `violated` with a history of `digest` compares with this case.
    pub fn compare(&self, violated: &[String], digest: &str) -> Replayed {
        match (violated == self.violated, digest == self.digest) {
            (true, true) => Replayed::Same,
            (true, false) => Replayed::SameVerdicts,
            (false, _) => Replayed::OtherVerdicts,
        }
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
