//! The executor of khaos's pipeline in simulation, scenario -> **executor** -> history ->
//! checkers -> reports: a deterministic world in which an unmodified `kube::Client` talks HTTP
//! over simulated TCP to a simulated Kubernetes API server, while partitions, crashes, pauses and
//! clock drift come from a seed.
//!
//! - [`apiserver`]: the simulated API server (a pure store and watch history, seeded fault
//!   decisions, an HTTP front over simulated or real TCP); faithful enough that kube-rs and
//!   kubectl cannot tell it from a real one for the subset served.
//! - [`transport`]: `kube::Client` over turmoil's TCP.
//! - [`world`]: the simulated HA world that executes a scenario's `Setup`: the API server and blob
//!   store hosts, candidates running the real elector and job master, observers, and the faults
//!   applied by reconciliation; it writes the history.
//! - [`run`]: one run judged by the checkers, its replay line, shrinking and the determinism check;
//!   [`sweep`]: many runs on several threads; [`corpus`]: the known bugs run, verified and shrunk.
//! - [`conformance`]: the API server's proof, runnable against real servers too; [`race`]: the CAS
//!   race of kube-rs clients; [`bench`](mod@bench): how fast the simulation runs.
//!
//! ```
//! use khaos_sim::run::{self, Options};
//! let scenario = khaos_scenarios::find("leader-cut-off")?;
//! let first = run::run(scenario, 3, &Options::default())?;
//! // Every checker holds, and the same seed gives the same history, byte for byte.
//! assert!(first.ok(), "{}", first.judged.violations_text());
//! run::check_determinism(&first)?;
//! println!("{}", first.summary());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod apiserver;
pub mod bench;
pub mod cluster;
pub mod conformance;
pub mod corpus;
pub mod race;
pub mod run;
pub mod sweep;
pub mod transport;
pub mod world;
