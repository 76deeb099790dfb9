//! The end of khaos's pipeline, scenario -> executor -> **history -> checkers -> reports**: the
//! history format that the simulator and a live cluster both write, the checkers that judge a
//! history, and the files a person or CI reads. Everything here is a pure function of a history;
//! nothing here simulates anything, so a live run is judged by exactly the code that judges a
//! simulated one.
//!
//! - [`history`]: one JSON object a line; [`Entry`] and its [`Record`]s.
//! - [`faults`]: the fault vocabulary (what a schedule injects and the history records), including
//!   the API server's fault rules ([`faults::server`]), shared with the simulated server and the
//!   scenarios.
//! - [`checkers`]: one file per invariant (`fenced-writes`, `terms`, `overlap`, `durability`,
//!   `counter`, `progress`, `cleanup`, `liveness`), each a [`Verdict`] naming the lines that
//!   break it; `docs/invariants.md` says what each guarantees.
//! - [`render`]: a [`JudgedRun`] and its files: `summary.json`, `junit.xml`, `timeline.txt`,
//!   `timeline.html`.
//! - [`merge`]: live logs merged into one history by their shared time base.
//!
//! ```
//! use std::time::Duration;
//! use khaos_elector::{LockKind, Timing};
//! use khaos_reports::checkers::Context;
//! use khaos_reports::render::{JudgedRun, RunInfo};
//!
//! let history = khaos_reports::history::parse(concat!(
//!     r#"{"t_ms":10,"node":"node-a","event":"granted","term":1}"#, "\n",
//!     r#"{"t_ms":20,"node":"node-b","event":"granted","term":2}"#, "\n",
//!     r#"{"t_ms":30,"node":"node-a","event":"revoked","term":1}"#, "\n",
//! ))?;
//! let context = Context {
//!     namespace: "default".into(),
//!     cluster_id: "demo".into(),
//!     job_id: "00000000000000000000000000000000".into(),
//!     lock: LockKind::ConfigMap,
//!     timing: Timing::default(),
//!     checkpoint_interval: Duration::from_secs(1),
//!     overlap_allowed: false,
//!     network_delay_max: Duration::from_millis(50),
//!     watch_delay_max: Duration::from_millis(500),
//! };
//! let run = JudgedRun::judge(RunInfo::live(context), history);
//! // No lock commit backs either grant, two candidates believed they led at once, and node-a
//! // lost its leadership with no fault to explain it.
//! assert_eq!(run.violated(), ["terms", "overlap", "liveness"]);
//! assert!(run.timeline_text().contains("verdict: VIOLATED terms, overlap, liveness"));
//! # Ok::<(), khaos_reports::history::ParseError>(())
//! ```

pub mod checkers;
pub mod faults;
pub mod history;
pub mod merge;
pub mod render;
pub mod settings;

pub use checkers::{Context, Verdict, Violation};
pub use history::{Entry, Record};
pub use render::{JudgedRun, RunInfo};
