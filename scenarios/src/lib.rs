//! The start of khaos's pipeline, **scenario** -> executor -> history -> checkers -> reports:
//! what to run, as data any executor can run. Nothing here simulates anything; the simulator
//! (`khaos-sim`) and the live injector (`khaos chaos`) execute a [`Setup`].
//!
//! - [`Setup`]: one run as a scenario describes it (the cluster, the phases, the fault schedule).
//! - [`catalogue`]: the named scenarios ([`CATALOGUE`]), each a story told with seeded details.
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
pub mod catalogue;
pub mod corpus;
pub mod setup;
pub mod shrink;
mod story;
pub mod swarm;

pub use catalogue::{CATALOGUE, Scenario};
pub use setup::Setup;

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
