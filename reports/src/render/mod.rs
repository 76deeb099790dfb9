//! The files a person or CI reads about a judged run: `summary.json`, `junit.xml`, a text
//! timeline (`timeline.txt`, stable enough for snapshots) and one self-contained HTML page
//! (`timeline.html`). Pure functions: a history, its verdicts and what is known of the run in,
//! strings out.
//!
//! ```
//! use std::time::Duration;
//! use khaos_elector::{LockKind, Timing};
//! use khaos_reports::checkers::Context;
//! use khaos_reports::history::parse;
//! use khaos_reports::render::{JudgedRun, RunInfo};
//!
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
//! let history = parse(concat!(
//!     r#"{"t_ms":10,"node":"node-a","event":"granted","term":1}"#, "\n",
//!     r#"{"t_ms":20,"node":"node-b","event":"granted","term":2}"#, "\n",
//!     r#"{"t_ms":30,"node":"node-a","event":"revoked","term":1}"#, "\n",
//! ))
//! .unwrap();
//! let run = JudgedRun::judge(RunInfo::live(context), history);
//! let timeline = run.timeline_text();
//! assert!(timeline.contains("verdict: VIOLATED terms, overlap"), "{timeline}");
//! assert!(timeline.contains("!!       20  node-b  granted term 2 (while node-a still believed it led)"));
//! assert!(run.junit_xml().contains(r#"<testcase name="overlap""#));
//! assert!(run.timeline_html().contains(r#"id="lane-node-b""#));
//! ```

mod html;
mod junit;
mod summary;
#[cfg(test)]
mod testing;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use khaos_elector::store::cluster_lock_name;
use serde::Serialize;
use serde_json::{Value, json};

use crate::checkers::{self, Context, LockChange, Verdict};
use crate::faults::APISERVER;
use crate::history::{Entry, HARNESS, HarnessEvent, Record, abbreviate};
use crate::settings::Settings;

pub use self::junit::xml_escape;

/// The report files [`JudgedRun::write`] writes, besides the history (`events.jsonl`).
pub const FILES: [&str; 4] = ["summary.json", "junit.xml", "timeline.txt", "timeline.html"];

/// What the renderings know of a run besides its history and verdicts.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// What ran: a scenario's name, or `live`.
    pub scenario: String,
    /// The seed of a simulated run.
    pub seed: Option<u64>,
    /// The command that replays the run.
    pub replay: Option<String>,
    /// The digest of the history's bytes ([`crate::history::digest`]).
    pub digest: Option<String>,
    /// Simulated milliseconds covered (simulated runs).
    pub simulated_ms: Option<u64>,
    /// The run's settings as its history's first line records them (`None` when it records
    /// none, as merged live logs do).
    pub settings: Option<Settings>,
    /// What the checkers were told; the lock and timing in it are shown too.
    pub context: Context,
}

impl RunInfo {
    /// A run recorded from live processes: no seed, no replay line, no settings line.
    pub fn live(context: Context) -> RunInfo {
        RunInfo {
            scenario: "live".into(),
            seed: None,
            replay: None,
            digest: None,
            simulated_ms: None,
            settings: None,
            context,
        }
    }

    /// `swarm seed 7`, or `live`.
    fn title(&self) -> String {
        match self.seed {
            Some(seed) => format!("{} seed {seed}", self.scenario),
            None => self.scenario.clone(),
        }
    }
}

/// A judged run: its history, one verdict per checker, and what is known of the run; what
/// the report files render and what a command prints.
#[derive(Clone, Debug)]
pub struct JudgedRun {
    /// What is known of the run.
    pub info: RunInfo,
    /// Its history.
    pub history: Vec<Entry>,
    /// The checkers' verdicts on it ([`checkers::check`]).
    pub verdicts: Vec<Verdict>,
}

/// One change of leader: how long the job had no believed leader between the old leadership's
/// end (revoked, crashed or stopped) and the new grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failover {
    /// The candidate whose leadership came before.
    pub from: String,
    /// The candidate granted now.
    pub to: String,
    /// The term granted.
    pub term: u64,
    /// When the earlier leadership ended.
    pub ended_ms: u64,
    /// When the new one was granted.
    pub granted_ms: u64,
    /// Milliseconds without a believed leader (0 when the two overlapped).
    pub ms: u64,
    /// Whether the earlier leadership had not ended by the grant.
    pub overlapped: bool,
}

/// Every grant after the first, against the leadership granted just before it.
pub fn failovers(history: &[Entry]) -> Vec<Failover> {
    let leaderships = checkers::leaderships(history);
    leaderships
        .windows(2)
        .map(|pair| {
            let (before, after) = (&pair[0], &pair[1]);
            Failover {
                from: before.node.clone(),
                to: after.node.clone(),
                term: after.term,
                ended_ms: before.end_ms,
                granted_ms: after.start_ms,
                ms: after.start_ms.saturating_sub(before.end_ms),
                overlapped: before.end_ms > after.start_ms,
            }
        })
        .collect()
}

impl JudgedRun {
    /// Judge `history` with every checker, with the context `info` holds.
    pub fn judge(info: RunInfo, history: Vec<Entry>) -> JudgedRun {
        let verdicts = checkers::check(&history, &info.context);
        JudgedRun {
            info,
            history,
            verdicts,
        }
    }

    /// Every violation with the checker that found it, in verdict order.
    fn violations(&self) -> Vec<(&'static str, &checkers::Violation)> {
        self.verdicts
            .iter()
            .flat_map(|v| {
                v.violations
                    .iter()
                    .map(move |violation| (v.checker, violation))
            })
            .collect()
    }

    /// Whether every checker held.
    pub fn ok(&self) -> bool {
        self.verdicts.iter().all(Verdict::ok)
    }

    /// `ok`, or `VIOLATED` and the checkers that broke.
    pub fn verdict(&self) -> String {
        let failed: Vec<&str> = self
            .verdicts
            .iter()
            .filter(|v| !v.ok())
            .map(|v| v.checker)
            .collect();
        if failed.is_empty() {
            "ok".to_owned()
        } else {
            format!("VIOLATED {}", failed.join(", "))
        }
    }

    /// The checkers that did not hold, in verdict order.
    pub fn violated(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .filter(|v| !v.ok())
            .map(|v| v.checker.to_owned())
            .collect()
    }

    /// Every violation, one paragraph each, with the history lines it names (each cut to
    /// [`QUOTED_LINE_BYTES_MAX`](crate::history::QUOTED_LINE_BYTES_MAX) bytes): what a command
    /// prints when a run fails.
    pub fn violations_text(&self) -> String {
        let mut text = String::new();
        for (checker, violation) in self.violations() {
            text.push_str(&format!("  {checker}: {}\n", violation.message));
            for index in &violation.entries {
                if let Some(entry) = self.history.get(*index) {
                    text.push_str(&format!(
                        "    line {}: {}\n",
                        index + 1,
                        abbreviate(&entry.to_line())
                    ));
                }
            }
        }
        text
    }

    /// One line per checker: its name, `ok` or `VIOLATED`, and its figures.
    pub fn verdict_lines(&self) -> String {
        let mut text = String::new();
        for verdict in &self.verdicts {
            let figures: Vec<String> = verdict
                .figures
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let state = if verdict.ok() { "ok" } else { "VIOLATED" };
            text.push_str(&format!(
                "  {:<14} {state:<8} {}\n",
                verdict.checker,
                figures.join(" ")
            ));
        }
        text
    }

    /// The 1-based line of entry `index` in `events.jsonl`, with the entry.
    fn named_line(&self, index: usize) -> Value {
        match self.history.get(index) {
            Some(entry) => json!({
                "line": index + 1,
                "t_ms": entry.t_ms,
                "node": entry.node,
                "entry": serde_json::to_value(entry).expect("an entry serialises"),
            }),
            None => json!({ "line": index + 1 }),
        }
    }

    /// The candidates: every node that held the lock, recorded a job master's event or a lifecycle line
    /// (observers, which only follow the leader, and the harness and API server are not).
    fn candidates(&self, locks: &[LockChange]) -> Vec<String> {
        let mut names: BTreeSet<String> = locks
            .iter()
            .filter(|l| !l.holder.is_empty())
            .map(|l| l.holder.clone())
            .collect();
        for entry in &self.history {
            let candidate = match &entry.record {
                Record::Job(_) => true,
                Record::Harness(event) => matches!(
                    event,
                    HarnessEvent::Started {}
                        | HarnessEvent::Crashed {}
                        | HarnessEvent::Stopping {}
                        | HarnessEvent::Stopped { .. }
                        | HarnessEvent::Unreachable { .. }
                ),
            };
            if candidate && entry.node != HARNESS && entry.node != APISERVER {
                names.insert(entry.node.clone());
            }
        }
        names.into_iter().collect()
    }

    /// For every entry a violation names: the checkers that name it.
    fn marks(&self) -> BTreeMap<usize, Vec<&'static str>> {
        let mut marks: BTreeMap<usize, Vec<&'static str>> = BTreeMap::new();
        for verdict in &self.verdicts {
            for violation in &verdict.violations {
                for index in &violation.entries {
                    let checkers = marks.entry(*index).or_default();
                    if !checkers.contains(&verdict.checker) {
                        checkers.push(verdict.checker);
                    }
                }
            }
        }
        marks
    }

    /// The report files and their contents, in [`FILES`] order.
    pub fn files(&self) -> [(&'static str, String); 4] {
        let summary =
            serde_json::to_string_pretty(&self.summary_json()).expect("a summary serialises");
        [
            (FILES[0], summary + "\n"),
            (FILES[1], self.junit_xml()),
            (FILES[2], self.timeline_text()),
            (FILES[3], self.timeline_html()),
        ]
    }

    /// Write the report files into `dir` (created if needed), replacing those already there;
    /// nothing else in `dir` is touched.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, contents) in self.files() {
            std::fs::write(dir.join(name), contents)?;
        }
        Ok(())
    }
}

/// Whether a liveness verdict says it did not judge.
fn not_judged(verdict: &Verdict) -> bool {
    verdict
        .figures
        .iter()
        .any(|(name, value)| name == "judged" && value == &Value::Bool(false))
}

/// `lock configmap default/demo-cluster-config-map; lease 15000 ms, renew deadline ...`.
fn settings_line(context: &Context) -> String {
    let timing = &context.timing;
    format!(
        "lock {} {}/{}; lease {} ms, renew deadline {} ms, retry period {} ms{}; checkpoint every {} ms",
        context.lock,
        context.namespace,
        cluster_lock_name(&context.cluster_id, context.lock),
        timing.lease_duration().as_millis(),
        timing.renew_deadline().as_millis(),
        timing.retry_period().as_millis(),
        if timing.is_unchecked() {
            " (unchecked)"
        } else {
            ""
        },
        context.checkpoint_interval.as_millis()
    )
}

/// `text` cut to [`QUOTE_CHARS_MAX`] characters.
fn quote(text: &str) -> String {
    if text.chars().count() <= QUOTE_CHARS_MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(QUOTE_CHARS_MAX).collect();
    format!("{cut}...")
}

pub(crate) use crate::checkers::show_checkpoint;

/// The longest a message or error is quoted in the text timeline, in characters.
const QUOTE_CHARS_MAX: usize = 160;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::*;

    #[test]
    fn failovers_measure_the_time_without_a_leader() {
        let failovers = failovers(&history());
        assert_eq!(
            failovers,
            [
                Failover {
                    from: "node-a".into(),
                    to: "node-b".into(),
                    term: 1,
                    ended_ms: 700,
                    granted_ms: 2301,
                    ms: 1601,
                    overlapped: false,
                },
                Failover {
                    from: "node-b".into(),
                    to: "node-c".into(),
                    term: 1,
                    ended_ms: 3000,
                    granted_ms: 2310,
                    ms: 0,
                    overlapped: true,
                },
            ]
        );
    }
}
