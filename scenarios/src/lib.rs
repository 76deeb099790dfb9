//! The start of khaos's pipeline, **scenario** -> executor -> history -> checkers -> reports:
//! what to run, as data any executor can run. Nothing here simulates anything; the simulator
//! (`khaos-sim`) executes a [`Setup`] today; a live injector (`khaos chaos`, not built yet) is
//! to execute the same data.
//!
//! - [`Setup`]: one run as a scenario describes it (the cluster, the phases, the fault schedule).
//! - [`CATALOGUE`]: the named scenarios, each a story told with seeded details ([`find`] looks one
//!   up by name, the corpus's `bug/<flaw>` included).
//! - [`swarm`]: swarm testing, which draws fault classes, rates, targets and moments from a seed.
//! - [`corpus`]: the known bugs, each a flaw, an exposing scenario `bug/<flaw>`, a seed and the
//!   checker that must fire; their saved minimal cases are in `scenarios/corpus/`.
//! - [`case`]: a saved case, the small versioned file that replays one run.
//! - [`shrink`]: a failing schedule made minimal, by any runner of schedules.
//!
//! The fault vocabulary itself ([`khaos_reports::faults`]) sits in `khaos-reports`, because the
//! history records every fault and the checkers judge them.
//!
//! ```
//! let scenario = khaos_scenarios::find("leader-crash")?;
//! let setup = scenario.setup(7);
//! // The story: the leader is killed once, after the first leader settled.
//! assert_eq!(setup.schedule.faults.len(), 1);
//! assert_eq!(setup.schedule.faults[0].fault.to_string(), "crash @leader");
//! assert_eq!(setup.scenario, "leader-crash");
//! // The same seed, the same setup.
//! assert_eq!(scenario.setup(7).schedule, setup.schedule);
//! # Ok::<(), khaos_scenarios::UnknownScenario>(())
//! ```

pub mod case;
mod catalogue;
pub mod corpus;
mod setup;
pub mod shrink;
mod story;
pub mod swarm;

pub use catalogue::{CATALOGUE, Scenario};
pub use setup::{JOB_MAP, LOCK_PREFIX, Setup};

use khaos_reports::faults::Schedule;

/// A scenario name that is neither in the catalogue nor `bug/<flaw>` of the corpus.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "no scenario {name:?}; the scenarios are: {} (and bug/<flaw> for each flaw of the regression \
     corpus: `khaos sim list` shows them)",
    CATALOGUE.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
)]
pub struct UnknownScenario {
    /// The name asked for.
    pub name: String,
}

/// Why a schedule file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleFileError {
    /// The file could not be read or written.
    #[error("{doing} {path}: {source}", path = path.display())]
    Io {
        /// `reading` or `writing`.
        doing: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a schedule.
    #[error(
        "{path}: {source} (expected the JSON `khaos sim shrink` writes: {{\"faults\": [{{\"at_ms\": ..., \"for_ms\": ..., \"fault\": {{\"kind\": \"crash\", \"node\": \"node-a\"}}}}]}})",
        path = path.display()
    )]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// Why, with the line and column.
        source: serde_json::Error,
    },
}

/// Read a schedule file, as [`save_schedule`] writes it (`khaos sim shrink`, `khaos sim run
/// --schedule FILE`).
pub fn load_schedule(path: &std::path::Path) -> Result<Schedule, ScheduleFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScheduleFileError::Io {
        doing: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ScheduleFileError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Write `schedule` to a file, pretty-printed JSON.
pub fn save_schedule(path: &std::path::Path, schedule: &Schedule) -> Result<(), ScheduleFileError> {
    let text = serde_json::to_string_pretty(schedule).expect("a schedule serialises") + "\n";
    std::fs::write(path, text).map_err(|source| ScheduleFileError::Io {
        doing: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// The scenario named `name`: one of the catalogue, or the exposing schedule of a flaw of the
/// regression corpus (`bug/<flaw>`, see [`corpus`]).
pub fn find(name: &str) -> Result<&'static Scenario, UnknownScenario> {
    CATALOGUE
        .iter()
        .chain(corpus::CORPUS.iter().map(|bug| &bug.scenario))
        .find(|s| s.name == name)
        .ok_or_else(|| UnknownScenario {
            name: name.to_owned(),
        })
}
