//! The files a person or CI reads about a judged run: `summary.json`, `junit.xml`, a text
//! timeline (`timeline.txt`, stable enough for snapshots) and one self-contained HTML page
//! (`timeline.html`). Pure functions: a history, its verdicts and what is known of the run in,
//! strings out.
//!
//! ```
//! use std::time::Duration;
//! use khaos_elector::{LockKind, Timing};
//! use khaos_world::checkers::{Context, check};
//! use khaos_world::history::parse;
//! use khaos_world::report::{Report, RunInfo};
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
//! let verdicts = check(&history, &context);
//! let info = RunInfo::live(context);
//! let report = Report { info: &info, history: &history, verdicts: &verdicts };
//! let timeline = report.timeline_text();
//! assert!(timeline.contains("verdict: VIOLATED terms, overlap"), "{timeline}");
//! assert!(timeline.contains("!!       20  node-b  granted term 2 (while node-a still believed it led)"));
//! assert!(report.junit_xml().contains(r#"<testcase name="overlap""#));
//! assert!(report.timeline_html().contains(r#"id="lane-node-b""#));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use khaos_elector::jobmaster::Event;
use khaos_elector::store::cluster_lock_name;
use serde::Serialize;
use serde_json::{Value, json};

use crate::checkers::{self, Context, Kind, LockChange, Verdict};
use crate::history::{Entry, FaultAction, Record, WorldEvent};

/// The report files [`Report::write`] writes, besides the history (`events.jsonl`).
pub const FILES: [&str; 4] = ["summary.json", "junit.xml", "timeline.txt", "timeline.html"];

/// Runs of more checkpoints than this by one leader in one term, with nothing else in between,
/// are one line of the text timeline.
const CHECKPOINT_RUN_MIN: usize = 3;

/// The longest a message or error is quoted in the text timeline, in characters.
const QUOTE_CHARS_MAX: usize = 160;

/// The HTML timeline's drawing: its width, the lane label column, one lane and one fault row.
const WIDTH_PX: f64 = 1200.0;
const LABEL_PX: f64 = 130.0;
const RIGHT_PX: f64 = 20.0;
const LANE_PX: f64 = 44.0;
const FAULT_ROW_PX: f64 = 12.0;
/// At most this many fault rows are stacked; further overlapping faults share the last row.
const FAULT_ROWS_MAX: usize = 12;

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
    /// The run's settings as its history records them (`null` when it records none).
    pub settings: Value,
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
            settings: Value::Null,
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

/// A judged run to render.
#[derive(Clone, Copy, Debug)]
pub struct Report<'a> {
    /// What is known of the run.
    pub info: &'a RunInfo,
    /// Its history.
    pub history: &'a [Entry],
    /// The checkers' verdicts on it ([`checkers::check`]).
    pub verdicts: &'a [Verdict],
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

impl Report<'_> {
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

    /// `summary.json`: the run, its verdict per checker with the history lines that broke
    /// them, every checker's figures by checker and name, and the failovers.
    pub fn summary_json(&self) -> Value {
        let info = self.info;
        let figures: serde_json::Map<String, Value> = self
            .verdicts
            .iter()
            .map(|verdict| {
                let named: serde_json::Map<String, Value> =
                    verdict.figures.iter().cloned().collect();
                (verdict.checker.to_owned(), Value::Object(named))
            })
            .collect();
        let violations: Vec<Value> = self
            .verdicts
            .iter()
            .flat_map(|verdict| {
                verdict.violations.iter().map(move |violation| {
                    json!({
                        "checker": verdict.checker,
                        "message": violation.message,
                        "lines": violation
                            .entries
                            .iter()
                            .map(|index| self.named_line(*index))
                            .collect::<Vec<_>>(),
                    })
                })
            })
            .collect();
        let mut summary = json!({
            "scenario": info.scenario,
            "seed": info.seed,
            "ok": self.ok(),
            "verdict": self.verdict(),
            "replay": info.replay,
            "digest": info.digest,
        });
        if let Some(simulated_ms) = info.simulated_ms {
            summary["simulated_ms"] = json!(simulated_ms);
        }
        summary["settings"] = info.settings.clone();
        summary["figures"] = Value::Object(figures);
        summary["failovers"] = json!(failovers(self.history));
        summary["violations"] = json!(violations);
        summary["verdicts"] = json!(self.verdicts);
        summary
    }

    /// `junit.xml`: one testsuite for the run, one testcase per checker; a broken checker has a
    /// `<failure>` quoting each violation and the history lines it names; a liveness checker
    /// that could not judge (the run did not heal long enough) is `<skipped>`.
    pub fn junit_xml(&self) -> String {
        let info = self.info;
        let suite = format!("khaos {}", info.title());
        let classname = format!("khaos.{}", info.scenario);
        let failures = self.verdicts.iter().filter(|v| !v.ok()).count();
        let skipped = self.verdicts.iter().filter(|v| not_judged(v)).count();
        let seconds = self.history.last().map_or(0, |e| e.t_ms) as f64 / 1000.0;
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let counts = format!(
            "tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\"",
            self.verdicts.len()
        );
        let _ = writeln!(xml, "<testsuites name=\"khaos\" {counts}>");
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" {counts}>",
            xml_escape(&suite)
        );
        xml.push_str("    <properties>\n");
        let mut properties = vec![("scenario", info.scenario.clone())];
        if let Some(seed) = info.seed {
            properties.push(("seed", seed.to_string()));
        }
        if let Some(replay) = &info.replay {
            properties.push(("replay", replay.clone()));
        }
        if let Some(digest) = &info.digest {
            properties.push(("digest", digest.clone()));
        }
        for (name, value) in properties {
            let _ = writeln!(
                xml,
                "      <property name=\"{name}\" value=\"{}\"/>",
                xml_escape(&value)
            );
        }
        xml.push_str("    </properties>\n");
        for verdict in self.verdicts {
            let open = format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
                xml_escape(verdict.checker),
                xml_escape(&classname)
            );
            if verdict.ok() && !not_judged(verdict) {
                let _ = writeln!(xml, "{open}/>");
                continue;
            }
            let _ = writeln!(xml, "{open}>");
            if not_judged(verdict) {
                xml.push_str(
                    "      <skipped message=\"not judged: the run did not heal for long enough \
                     (or has no healed phase)\"/>\n",
                );
            }
            if let Some(first) = verdict.violations.first() {
                let count = verdict.violations.len();
                let message = if count == 1 {
                    first.message.clone()
                } else {
                    format!("{} (and {} more)", first.message, count - 1)
                };
                let kind = match verdict.kind {
                    Kind::Safety => "safety",
                    Kind::Liveness => "liveness",
                };
                let mut body = String::new();
                for violation in &verdict.violations {
                    let _ = writeln!(body, "{}", violation.message);
                    for index in &violation.entries {
                        if let Some(entry) = self.history.get(*index) {
                            let _ = writeln!(body, "  line {}: {}", index + 1, entry.to_line());
                        }
                    }
                }
                if let Some(replay) = &info.replay {
                    let _ = writeln!(body, "replay: {replay}");
                }
                let _ = writeln!(
                    xml,
                    "      <failure message=\"{}\" type=\"{kind}\">{}</failure>",
                    xml_escape(&message),
                    xml_escape(&body)
                );
            }
            xml.push_str("    </testcase>\n");
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }

    /// The candidates: every node with a job master event, a lifecycle event or the lock
    /// (observers, which only follow the leader, and the world and API server are not).
    fn candidates(&self, locks: &[LockChange]) -> Vec<String> {
        let mut names: BTreeSet<String> = locks
            .iter()
            .filter(|l| !l.holder.is_empty())
            .map(|l| l.holder.clone())
            .collect();
        for entry in self.history {
            let candidate = match &entry.record {
                Record::Job(_) => true,
                Record::World(event) => matches!(
                    event,
                    WorldEvent::Started {}
                        | WorldEvent::Crashed {}
                        | WorldEvent::Stopping {}
                        | WorldEvent::Stopped { .. }
                        | WorldEvent::Unreachable { .. }
                ),
            };
            if candidate && entry.node != "world" && entry.node != "apiserver" {
                names.insert(entry.node.clone());
            }
        }
        names.into_iter().collect()
    }

    /// For every entry a violation names: the checkers that name it.
    fn marks(&self) -> BTreeMap<usize, Vec<&'static str>> {
        let mut marks: BTreeMap<usize, Vec<&'static str>> = BTreeMap::new();
        for verdict in self.verdicts {
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

    /// The lines of the text timeline: one per interesting entry, checkpoint runs summarised.
    fn lines(&self) -> Vec<Line> {
        let locks = checkers::lock_changes(self.history, &self.info.context);
        let lock_at: BTreeMap<usize, &LockChange> = locks.iter().map(|l| (l.index, l)).collect();
        let handovers: BTreeMap<u64, Failover> = failovers(self.history)
            .into_iter()
            .map(|f| (f.granted_ms, f))
            .collect();
        let marks = self.marks();
        let mut lines: Vec<Line> = Vec::new();
        for (index, entry) in self.history.iter().enumerate() {
            let marked = marks.get(&index).cloned().unwrap_or_default();
            let forced = !marked.is_empty();
            let Some((text, checkpoint)) =
                describe(entry, lock_at.get(&index).copied(), &handovers, forced)
            else {
                continue;
            };
            lines.push(Line {
                t_ms: entry.t_ms,
                who: entry.node.clone(),
                text,
                marks: marked,
                checkpoint,
            });
        }
        summarise_checkpoints(lines)
    }

    /// `timeline.txt`: a header, one line per interesting event (grants, revokes, restores,
    /// checkpoints with long runs summarised, failovers, faults, crashes, phases, lock holder
    /// changes), `!!` on every line a violation names, then the verdicts and the violations.
    /// A function of the history and the verdicts only, so it is stable for snapshots.
    pub fn timeline_text(&self) -> String {
        let info = self.info;
        let mut text = String::new();
        let _ = writeln!(text, "khaos timeline: {}", info.title());
        let _ = writeln!(text, "{}", settings_line(&info.context));
        let _ = writeln!(text, "verdict: {}", self.verdict());
        if let Some(replay) = &info.replay {
            let _ = writeln!(text, "replay: {replay}");
        }
        text.push('\n');
        let lines = self.lines();
        let who_width = lines.iter().map(|l| l.who.len()).max().unwrap_or(3).max(3);
        let _ = writeln!(text, "       t_ms  {:<who_width$}  what", "who");
        for line in &lines {
            let mark = if line.marks.is_empty() { "  " } else { "!!" };
            let checkers = if line.marks.is_empty() {
                String::new()
            } else {
                format!("  [{}]", line.marks.join(", "))
            };
            let _ = writeln!(
                text,
                "{mark} {:>8}  {:<who_width$}  {}{checkers}",
                line.t_ms, line.who, line.text
            );
        }
        text.push_str("\nverdicts:\n");
        for verdict in self.verdicts {
            let state = if verdict.ok() {
                if not_judged(verdict) {
                    "ok (not judged)".to_owned()
                } else {
                    "ok".to_owned()
                }
            } else {
                let count = verdict.violations.len();
                format!(
                    "VIOLATED ({count} violation{})",
                    if count == 1 { "" } else { "s" }
                )
            };
            let _ = writeln!(text, "  {:<14} {state}", verdict.checker);
        }
        let failovers = failovers(self.history);
        if !failovers.is_empty() {
            text.push_str("\nfailovers:\n");
            for f in &failovers {
                let overlap = if f.overlapped { ", overlapped" } else { "" };
                let _ = writeln!(
                    text,
                    "  t={} ms: {} -> {} (term {}): {} ms without a leader{overlap}",
                    f.granted_ms, f.from, f.to, f.term, f.ms
                );
            }
        }
        let violations = self.violations();
        if !violations.is_empty() {
            text.push_str("\nviolations:\n");
            for (checker, violation) in violations {
                let _ = writeln!(text, "!! {checker}: {}", violation.message);
                for index in &violation.entries {
                    if let Some(entry) = self.history.get(*index) {
                        let _ = writeln!(
                            text,
                            "     line {}: t={} ms {} {}",
                            index + 1,
                            entry.t_ms,
                            entry.node,
                            entry_name(entry)
                        );
                    }
                }
            }
        }
        text
    }

    /// `timeline.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched)
    /// with the verdict and the violations on top, then a lane per candidate showing when it
    /// believed it led (`.belief`) and when the lock named it (`.lock`), faults shaded
    /// (`.fault`), checkpoints (`.checkpoint`), restores (`.restore`), crashes, stops, and a
    /// red band per violation (`.violation`, `#violation-N`) at the times of the entries it
    /// names; a legend, and the text timeline at the bottom.
    pub fn timeline_html(&self) -> String {
        html::render(self)
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

/// One line of the text timeline.
#[derive(Clone, Debug)]
struct Line {
    t_ms: u64,
    who: String,
    text: String,
    /// The checkers whose violations name this entry.
    marks: Vec<&'static str>,
    /// A checkpoint, for summarising runs of them.
    checkpoint: Option<Checkpoint>,
}

/// A completed checkpoint: term, id, records.
type Checkpoint = (u64, u64, u64);

/// `text` cut to [`QUOTE_CHARS_MAX`] characters.
fn quote(text: &str) -> String {
    if text.chars().count() <= QUOTE_CHARS_MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(QUOTE_CHARS_MAX).collect();
    format!("{cut}...")
}

fn show_checkpoint(checkpoint: Option<u64>) -> String {
    checkpoint.map_or_else(|| "none".to_owned(), |id| id.to_string())
}

/// The event's name as the history spells it.
fn entry_name(entry: &Entry) -> String {
    let value = serde_json::to_value(entry).expect("an entry serialises");
    let mut name = value["event"].as_str().unwrap_or("?").to_owned();
    if let Some(term) = value["term"].as_u64() {
        let _ = write!(name, " term {term}");
    }
    if let Some(revision) = value["revision"].as_u64() {
        let _ = write!(name, " revision {revision}");
    }
    name
}

/// What the text timeline says of an entry, and the checkpoint it completes; `None` for entries not
/// worth a line (commits other than lock changes, the settings line) unless `forced` (a
/// violation names it).
fn describe(
    entry: &Entry,
    lock: Option<&LockChange>,
    handovers: &BTreeMap<u64, Failover>,
    forced: bool,
) -> Option<(String, Option<Checkpoint>)> {
    let text = match &entry.record {
        Record::Job(event) => match event {
            Event::Granted { term } => {
                let mut text = format!("granted term {term}");
                if let Some(f) = handovers.get(&entry.t_ms).filter(|f| f.to == entry.node) {
                    if f.overlapped {
                        let _ = write!(text, " (while {} still believed it led)", f.from);
                    } else {
                        let _ = write!(text, " ({} ms after {}'s leadership ended)", f.ms, f.from);
                    }
                }
                text
            }
            Event::Revoked { term } => format!("revoked term {term}"),
            Event::Published { term, leader } => format!("published leader {leader} (term {term})"),
            Event::Submitted { term, job } => format!("submitted job {job} (term {term})"),
            Event::Restored {
                term,
                checkpoint,
                records,
                dangling,
                removals_finished,
            } => {
                let mut text = format!(
                    "restored checkpoint {} ({records} records, term {term})",
                    show_checkpoint(*checkpoint)
                );
                if !dangling.is_empty() {
                    let _ = write!(text, ", dangling {dangling:?}");
                }
                if *removals_finished > 0 {
                    let _ = write!(text, ", finished {removals_finished} removals");
                }
                text
            }
            Event::Checkpoint { term, id, records } => {
                let text = format!("checkpoint {id} ({records} records, term {term})");
                return Some((text, Some((*term, *id, *records))));
            }
            Event::CheckpointFailed {
                term,
                id,
                possibly_inconsistent,
                error,
                ..
            } => format!(
                "checkpoint {id} failed{} (term {term}): {}",
                if *possibly_inconsistent {
                    ", possibly committed"
                } else {
                    ""
                },
                quote(error)
            ),
            Event::Failover { term, error } => {
                format!("job failover (term {term}): {}", quote(error))
            }
            Event::Fenced { term, error } => format!("fenced (term {term}): {}", quote(error)),
            Event::Finished {
                term,
                state,
                records,
            } => format!(
                "finished {} ({records} records, term {term})",
                serde_json::to_value(state).expect("a state serialises")
            ),
            Event::AlreadyDone {
                term,
                state,
                was_clean,
            } => format!(
                "already done {} (term {term}, {})",
                serde_json::to_value(state).expect("a state serialises"),
                if *was_clean {
                    "cleaned up before"
                } else {
                    "cleaned up now"
                }
            ),
        },
        Record::World(event) => match event {
            WorldEvent::Run { .. } => return None,
            WorldEvent::Commit {
                revision,
                verb,
                resource,
                name,
                client,
                ..
            } => match lock {
                Some(lock) if lock.holder.is_empty() => {
                    format!("lock released (term {}, revision {revision})", lock.term)
                }
                Some(lock) => format!(
                    "lock holder {} term {} (revision {revision})",
                    lock.holder, lock.term
                ),
                None if forced => {
                    format!("commit revision {revision}: {verb} {resource}/{name} by {client}")
                }
                None => return None,
            },
            WorldEvent::Fault { action, fault } => match action {
                FaultAction::Start => format!("fault starts: {}", quote(fault)),
                FaultAction::End => format!("fault ends: {}", quote(fault)),
            },
            WorldEvent::Phase { phase } => format!("phase {phase}"),
            WorldEvent::Started {} => "started".to_owned(),
            WorldEvent::Crashed {} => "crashed".to_owned(),
            WorldEvent::Stopping {} => "stopping".to_owned(),
            WorldEvent::Stopped { graceful } => {
                if *graceful {
                    "stopped".to_owned()
                } else {
                    "stopped (not gracefully)".to_owned()
                }
            }
            WorldEvent::Unreachable { error } => {
                format!("API server unreachable: {}", quote(error))
            }
            WorldEvent::Leader { leader } => match leader {
                Some(leader) => format!("sees leader {leader}"),
                None => "sees no leader".to_owned(),
            },
            WorldEvent::Blobs { paths } => format!("blob store holds {} blobs", paths.len()),
        },
    };
    Some((text, None))
}

/// Replace runs of at least [`CHECKPOINT_RUN_MIN`] checkpoints of one leader in one term, with
/// no other line and no violation between them, by one line.
fn summarise_checkpoints(lines: Vec<Line>) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    let mut run: Vec<Line> = Vec::new();
    let flush = |run: &mut Vec<Line>, out: &mut Vec<Line>| {
        if run.len() < CHECKPOINT_RUN_MIN {
            out.append(run);
            return;
        }
        let (first, last) = (&run[0], &run[run.len() - 1]);
        let (term, first_id, first_records) = first.checkpoint.expect("a checkpoint");
        let (_, last_id, last_records) = last.checkpoint.expect("a checkpoint");
        out.push(Line {
            t_ms: first.t_ms,
            who: first.who.clone(),
            text: format!(
                "checkpoints {first_id}..{last_id} ({} checkpoints, {first_records}..{last_records} records, term {term}, the last at t={} ms)",
                run.len(),
                last.t_ms
            ),
            marks: Vec::new(),
            checkpoint: None,
        });
        run.clear();
    };
    for line in lines {
        let continues = match (&line.checkpoint, run.last()) {
            (Some((term, ..)), Some(previous)) => {
                line.marks.is_empty()
                    && previous.who == line.who
                    && previous.checkpoint.is_some_and(|(t, ..)| t == *term)
            }
            (Some(_), None) => line.marks.is_empty(),
            (None, _) => false,
        };
        if continues {
            run.push(line);
            continue;
        }
        flush(&mut run, &mut out);
        if line.checkpoint.is_some() && line.marks.is_empty() {
            run.push(line);
        } else {
            out.push(line);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Escape text for XML 1.0 content and attribute values; characters XML 1.0 cannot carry at
/// all (most control characters) become U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                escaped.push('\u{fffd}');
            }
            c => escaped.push(c),
        }
    }
    escaped
}

mod html {
    //! The HTML timeline: one page, inline CSS and SVG.

    use super::*;

    const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d1d1f; }
h1 { font-size: 20px; margin: 0 0 4px; }
code, pre { font: 12px/1.35 ui-monospace, Menlo, Consolas, monospace; }
pre { background: #f6f6f8; padding: 8px; overflow-x: auto; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 4px; font-weight: 600; color: #fff; }
.badge.ok { background: #2e7d32; }
.badge.violated { background: #c62828; }
#violations { border-left: 4px solid #c62828; background: #fdecea; padding: 6px 12px; margin: 12px 0; }
#violations h2 { margin: 0; font-size: 16px; color: #c62828; }
.violation-item .checker { font-weight: 600; }
table.verdicts { border-collapse: collapse; margin: 8px 0; }
table.verdicts td, table.verdicts th { border-bottom: 1px solid #ddd; padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
td.state-ok { color: #2e7d32; } td.state-violated { color: #c62828; font-weight: 600; }
#legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 8px 0; font-size: 12px; }
#legend span { display: inline-flex; align-items: center; gap: 4px; }
svg { display: block; margin: 8px 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .axis line { stroke: #ccc; }
svg .lane-bg { fill: #fafafa; stroke: #e4e4e4; }
svg .lane-label { font-weight: 600; }
svg .belief { fill: #1565c0; }
svg .lock { fill: #81c784; }
svg .fault { fill: #ffb74d; fill-opacity: 0.8; }
svg text.fault-label { font-size: 9px; fill: #5d4037; pointer-events: none; }
svg .fault-shade { fill: #ffb74d; fill-opacity: 0.18; }
svg .checkpoint { stroke: #37474f; stroke-width: 1; }
svg .restore { fill: #8e24aa; }
svg .crash { stroke: #c62828; stroke-width: 2; }
svg .stop { fill: #546e7a; }
svg .start { fill: #2e7d32; }
svg .fenced { fill: #000; }
svg .job-failover { fill: #ef6c00; }
svg .phase line { stroke: #555; stroke-dasharray: 4 3; }
svg .violation { fill: #e53935; fill-opacity: 0.28; stroke: #c62828; stroke-width: 1; }
svg .violation-marker { fill: #c62828; }
"#;

    /// Where things go: time to x.
    struct Scale {
        end_ms: u64,
    }

    impl Scale {
        fn x(&self, t_ms: u64) -> f64 {
            let plot = WIDTH_PX - LABEL_PX - RIGHT_PX;
            LABEL_PX + plot * (t_ms.min(self.end_ms) as f64) / (self.end_ms.max(1) as f64)
        }
    }

    /// A fault from its start to its end (or the end of the history).
    struct FaultSpan {
        start_ms: u64,
        end_ms: u64,
        fault: String,
    }

    fn fault_spans(history: &[Entry]) -> Vec<FaultSpan> {
        let mut open: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        let mut spans = Vec::new();
        for entry in history {
            let Record::World(WorldEvent::Fault { action, fault }) = &entry.record else {
                continue;
            };
            match action {
                FaultAction::Start => open.entry(fault).or_default().push(entry.t_ms),
                FaultAction::End => {
                    let start_ms = open
                        .get_mut(fault.as_str())
                        .filter(|starts| !starts.is_empty())
                        .map_or(entry.t_ms, |starts| starts.remove(0));
                    spans.push(FaultSpan {
                        start_ms,
                        end_ms: entry.t_ms,
                        fault: fault.clone(),
                    });
                }
            }
        }
        let end_ms = history.last().map_or(0, |e| e.t_ms);
        for (fault, starts) in open {
            for start_ms in starts {
                spans.push(FaultSpan {
                    start_ms,
                    end_ms,
                    fault: fault.to_owned(),
                });
            }
        }
        spans.sort_by_key(|span| (span.start_ms, span.end_ms));
        spans
    }

    /// Whether a fault's description names `node` as a word (`pause node-a`, `partition
    /// node-a <-> apiserver`).
    fn names(fault: &str, node: &str) -> bool {
        fault
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .any(|word| word == node)
    }

    /// Stack spans into rows so none overlaps another in its row.
    fn pack(spans: &[FaultSpan], scale: &Scale) -> Vec<usize> {
        let mut row_ends: Vec<f64> = Vec::new();
        spans
            .iter()
            .map(|span| {
                let (x0, x1) = (
                    scale.x(span.start_ms),
                    scale.x(span.end_ms).max(scale.x(span.start_ms) + 2.0),
                );
                match row_ends.iter().position(|end| *end <= x0) {
                    Some(row) => {
                        row_ends[row] = x1;
                        row
                    }
                    None if row_ends.len() < FAULT_ROWS_MAX => {
                        row_ends.push(x1);
                        row_ends.len() - 1
                    }
                    None => FAULT_ROWS_MAX - 1,
                }
            })
            .collect()
    }

    /// The times a message spells out as `t=N ms`.
    pub(super) fn times_in(message: &str) -> impl Iterator<Item = u64> + '_ {
        message
            .match_indices("t=")
            .filter(|(at, _)| {
                !message[..*at]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphanumeric)
            })
            .filter_map(|(at, _)| {
                let rest = &message[at + 2..];
                let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
                rest[digits.len()..]
                    .starts_with(" ms")
                    .then(|| digits.parse().ok())
                    .flatten()
            })
    }

    /// A fault's description without its parameters (`apiserver faults {...}`: `apiserver
    /// faults`), to label its bar.
    fn short(fault: &str) -> &str {
        fault.split(" {").next().unwrap_or(fault)
    }

    /// A tick step of 1, 2 or 5 times a power of ten giving at most about ten ticks.
    fn tick_step_ms(end_ms: u64) -> u64 {
        let mut step = 1;
        loop {
            for factor in [1, 2, 5] {
                if end_ms / (step * factor) <= 10 {
                    return step * factor;
                }
            }
            step *= 10;
        }
    }

    fn seconds(t_ms: u64) -> String {
        if t_ms.is_multiple_of(1000) {
            format!("{} s", t_ms / 1000)
        } else {
            format!("{:.1} s", t_ms as f64 / 1000.0)
        }
    }

    fn esc(text: &str) -> String {
        xml_escape(text)
    }

    /// A lane's id: `lane-` and the node with anything but letters, digits, `-` and `_` as `_`.
    pub(super) fn lane_id(node: &str) -> String {
        let safe: String = node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("lane-{safe}")
    }

    pub(super) fn render(report: &Report<'_>) -> String {
        let info = report.info;
        let history = report.history;
        let end_ms = history.last().map_or(0, |e| e.t_ms).max(1);
        let scale = Scale { end_ms };
        let locks = checkers::lock_changes(history, &info.context);
        let candidates = report.candidates(&locks);
        let leaderships = checkers::leaderships(history);
        let faults = fault_spans(history);
        let rows = pack(&faults, &scale);
        let fault_rows = rows.iter().max().map_or(0, |r| r + 1);

        let axis_y = 18.0;
        let faults_y = 28.0;
        let faults_h = (fault_rows.max(1) as f64) * FAULT_ROW_PX + 4.0;
        let lanes_y = faults_y + faults_h + 8.0;
        let height = lanes_y + LANE_PX * candidates.len().max(1) as f64 + 10.0;
        let lane_y = |node: &str| {
            candidates
                .iter()
                .position(|c| c == node)
                .map(|i| lanes_y + LANE_PX * i as f64)
        };

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH_PX}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH_PX} {height:.0}\" role=\"img\" aria-label=\"timeline\">"
        );
        // The axis.
        svg.push_str("<g class=\"axis\">\n");
        let step = tick_step_ms(end_ms);
        let mut t = 0;
        while t <= end_ms {
            let x = scale.x(t);
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{axis_y}\" x2=\"{x:.1}\" y2=\"{height:.0}\"/><text x=\"{x:.1}\" y=\"12\" text-anchor=\"middle\">{}</text>",
                seconds(t)
            );
            t += step;
        }
        svg.push_str("</g>\n");
        // Faults.
        let _ = writeln!(
            svg,
            "<g id=\"faults\"><text x=\"4\" y=\"{:.1}\" class=\"lane-label\">faults</text>",
            faults_y + 10.0
        );
        for (span, row) in faults.iter().zip(&rows) {
            let x0 = scale.x(span.start_ms);
            let width = (scale.x(span.end_ms) - x0).max(2.0);
            let y = faults_y + FAULT_ROW_PX * *row as f64;
            let _ = writeln!(
                svg,
                "<rect class=\"fault\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" data-start-ms=\"{}\" data-end-ms=\"{}\"><title>{} (t={}..{} ms)</title></rect>",
                FAULT_ROW_PX - 2.0,
                span.start_ms,
                span.end_ms,
                esc(&span.fault),
                span.start_ms,
                span.end_ms
            );
            // A label where it fits (about 6 px a character at this size).
            let label = short(&span.fault);
            let fits = (width / 6.0) as usize;
            if fits >= 6 {
                let text: String = if label.chars().count() <= fits {
                    label.to_owned()
                } else {
                    label
                        .chars()
                        .take(fits.saturating_sub(1))
                        .collect::<String>()
                        + "\u{2026}"
                };
                let _ = writeln!(
                    svg,
                    "<text class=\"fault-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x0 + 2.0,
                    y + FAULT_ROW_PX - 4.0,
                    esc(&text)
                );
            }
        }
        svg.push_str("</g>\n");
        // Lanes.
        for node in &candidates {
            let y = lane_y(node).expect("a candidate has a lane");
            let _ = writeln!(
                svg,
                "<g id=\"{}\" class=\"lane\" data-node=\"{}\">",
                lane_id(node),
                esc(node)
            );
            let _ = writeln!(
                svg,
                "<rect class=\"lane-bg\" x=\"{LABEL_PX}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"/><text class=\"lane-label\" x=\"4\" y=\"{:.1}\">{}</text><text x=\"4\" y=\"{:.1}\">lock / believed</text>",
                WIDTH_PX - LABEL_PX - RIGHT_PX,
                LANE_PX - 4.0,
                y + 16.0,
                esc(node),
                y + 30.0
            );
            for span in faults.iter().filter(|s| names(&s.fault, node)) {
                let x0 = scale.x(span.start_ms);
                let width = (scale.x(span.end_ms) - x0).max(2.0);
                let _ = writeln!(
                    svg,
                    "<rect class=\"fault-shade\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
                    LANE_PX - 4.0,
                    esc(&span.fault)
                );
            }
            // The lock: from each change naming this node to the next change.
            for (position, change) in locks.iter().enumerate() {
                if &change.holder != node {
                    continue;
                }
                let until = locks.get(position + 1).map_or(end_ms, |next| next.t_ms);
                let x0 = scale.x(change.t_ms);
                let width = (scale.x(until) - x0).max(1.5);
                let _ = writeln!(
                    svg,
                    "<rect class=\"lock\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"12\" data-term=\"{}\"><title>lock names {} at term {} (revision {}), t={}..{} ms</title></rect>",
                    y + 4.0,
                    change.term,
                    esc(node),
                    change.term,
                    change.revision,
                    change.t_ms,
                    until
                );
            }
            for leadership in leaderships.iter().filter(|l| &l.node == node) {
                let x0 = scale.x(leadership.start_ms);
                let width = (scale.x(leadership.end_ms) - x0).max(1.5);
                let ended = if leadership.open {
                    "still leading at the end"
                } else {
                    "ended"
                };
                let _ = writeln!(
                    svg,
                    "<rect class=\"belief\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"12\" data-term=\"{}\"><title>believed it led at term {}, t={}..{} ms ({ended})</title></rect>",
                    y + 20.0,
                    leadership.term,
                    leadership.term,
                    leadership.start_ms,
                    leadership.end_ms
                );
            }
            for entry in history.iter().filter(|e| &e.node == node) {
                let x = scale.x(entry.t_ms);
                let t = entry.t_ms;
                let (top, mid, bottom) = (y + 2.0, y + 26.0, y + 36.0);
                let marker = match &entry.record {
                    Record::Job(Event::Checkpoint { id, records, term }) => format!(
                        "<line class=\"checkpoint\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"><title>checkpoint {id} ({records} records, term {term}) at t={t} ms</title></line>",
                        y + 18.0
                    ),
                    Record::Job(Event::Restored {
                        checkpoint,
                        records,
                        term,
                        ..
                    }) => format!(
                        "<path class=\"restore\" d=\"M{x:.1} {:.1} l5 5 l-5 5 l-5 -5 z\"><title>restored checkpoint {} ({records} records, term {term}) at t={t} ms</title></path>",
                        mid - 5.0,
                        show_checkpoint(*checkpoint)
                    ),
                    Record::Job(Event::Failover { term, error }) => format!(
                        "<circle class=\"job-failover\" cx=\"{x:.1}\" cy=\"{mid:.1}\" r=\"3.5\"><title>job failover (term {term}) at t={t} ms: {}</title></circle>",
                        esc(error)
                    ),
                    Record::Job(Event::Fenced { term, error }) => format!(
                        "<circle class=\"fenced\" cx=\"{x:.1}\" cy=\"{mid:.1}\" r=\"4\"><title>fenced (term {term}) at t={t} ms: {}</title></circle>",
                        esc(error)
                    ),
                    Record::World(WorldEvent::Crashed {}) => format!(
                        "<path class=\"crash\" d=\"M{:.1} {top:.1} l10 10 m0 -10 l-10 10\"><title>crashed at t={t} ms</title></path>",
                        x - 5.0
                    ),
                    Record::World(WorldEvent::Stopped { graceful }) => format!(
                        "<rect class=\"stop\" x=\"{:.1}\" y=\"{top:.1}\" width=\"8\" height=\"8\"><title>stopped{} at t={t} ms</title></rect>",
                        x - 4.0,
                        if *graceful { "" } else { " (not gracefully)" }
                    ),
                    Record::World(WorldEvent::Started {}) => format!(
                        "<path class=\"start\" d=\"M{x:.1} {top:.1} l8 4 l-8 4 z\"><title>started at t={t} ms</title></path>"
                    ),
                    _ => continue,
                };
                svg.push_str(&marker);
                svg.push('\n');
            }
            svg.push_str("</g>\n");
        }
        // Phases.
        for entry in history {
            if let Record::World(WorldEvent::Phase { phase }) = &entry.record {
                let x = scale.x(entry.t_ms);
                // Labels right of their line, or left of it at the right edge.
                let (label_x, anchor) = if x > WIDTH_PX - RIGHT_PX - 60.0 {
                    (x - 3.0, "end")
                } else {
                    (x + 3.0, "start")
                };
                let _ = writeln!(
                    svg,
                    "<g class=\"phase\" data-phase=\"{}\"><line x1=\"{x:.1}\" y1=\"{faults_y:.1}\" x2=\"{x:.1}\" y2=\"{height:.0}\"/><text x=\"{label_x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text></g>",
                    esc(phase),
                    height - 2.0,
                    esc(phase)
                );
            }
        }
        // Violations: a band over every lane from the first to the last entry each names, and a
        // marker at each entry in its candidate's lane.
        let mut number = 0;
        for verdict in report.verdicts {
            for violation in &verdict.violations {
                number += 1;
                let mut times: Vec<u64> = violation
                    .entries
                    .iter()
                    .filter_map(|i| history.get(*i).map(|e| e.t_ms))
                    .collect();
                // Times the message spells out (`from t=85 ms to t=11510 ms`) widen the band.
                times.extend(times_in(&violation.message).filter(|t| *t <= end_ms));
                let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
                    continue;
                };
                let x0 = scale.x(*first) - 2.0;
                let width = (scale.x(*last) - scale.x(*first)).max(0.0) + 4.0;
                let _ = writeln!(
                    svg,
                    "<g class=\"violation\" id=\"violation-{number}\" data-checker=\"{}\"><rect class=\"violation\" x=\"{x0:.1}\" y=\"{faults_y:.1}\" width=\"{width:.1}\" height=\"{:.1}\"><title>{}: {}</title></rect>",
                    verdict.checker,
                    height - faults_y,
                    verdict.checker,
                    esc(&violation.message)
                );
                for index in &violation.entries {
                    let Some(entry) = history.get(*index) else {
                        continue;
                    };
                    if let Some(y) = lane_y(&entry.node) {
                        let x = scale.x(entry.t_ms);
                        let _ = writeln!(
                            svg,
                            "<path class=\"violation-marker\" d=\"M{:.1} {:.1} l10 0 l-5 8 z\"><title>line {}: {}</title></path>",
                            x - 5.0,
                            y,
                            index + 1,
                            esc(&entry.to_line())
                        );
                    }
                }
                svg.push_str("</g>\n");
            }
        }
        svg.push_str("</svg>\n");

        let verdict = report.verdict();
        let badge = if report.ok() { "ok" } else { "violated" };
        let mut page = String::new();
        let _ = writeln!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>khaos: {} - {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
            esc(&info.title()),
            esc(&verdict)
        );
        let _ = writeln!(
            page,
            "<header id=\"header\">\n<h1>khaos: {} <span id=\"verdict\" class=\"badge {badge}\">{}</span></h1>",
            esc(&info.title()),
            esc(&verdict)
        );
        let _ = writeln!(
            page,
            "<div id=\"settings\">{}</div>",
            esc(&settings_line(&info.context))
        );
        if let Some(replay) = &info.replay {
            let _ = writeln!(
                page,
                "<div>replay: <code id=\"replay\">{}</code></div>",
                esc(replay)
            );
        }
        if let Some(digest) = &info.digest {
            let _ = writeln!(
                page,
                "<div>history digest: <code>{}</code></div>",
                esc(digest)
            );
        }
        page.push_str("</header>\n");
        // Violations first: what broke, in words.
        let violations = report.violations();
        if !violations.is_empty() {
            let _ = writeln!(
                page,
                "<section id=\"violations\">\n<h2>{} violation{}</h2>\n<ol>",
                violations.len(),
                if violations.len() == 1 { "" } else { "s" }
            );
            for (number, (checker, violation)) in violations.iter().enumerate() {
                let lines: Vec<String> = violation
                    .entries
                    .iter()
                    .filter_map(|i| {
                        history
                            .get(*i)
                            .map(|e| format!("line {}: {}", i + 1, e.to_line()))
                    })
                    .collect();
                let _ = writeln!(
                    page,
                    "<li class=\"violation-item\" id=\"violation-item-{}\" data-checker=\"{checker}\"><a href=\"#violation-{}\"><span class=\"checker\">{checker}</span></a>: <span class=\"message\">{}</span><pre>{}</pre></li>",
                    number + 1,
                    number + 1,
                    esc(&violation.message),
                    esc(&lines.join("\n"))
                );
            }
            page.push_str("</ol>\n</section>\n");
        }
        // The legend.
        page.push_str("<div id=\"legend\">");
        for (class, words, shape) in [
            ("lock", "the lock names it", "rect"),
            ("belief", "believes it leads", "rect"),
            ("fault", "fault", "rect"),
            ("fault-shade", "fault naming this node", "rect"),
            ("checkpoint", "checkpoint", "line"),
            ("restore", "restore", "diamond"),
            ("crash", "crash", "cross"),
            ("stop", "stop", "rect"),
            ("start", "start", "triangle"),
            ("job-failover", "job failover", "circle"),
            ("fenced", "fenced", "circle"),
            ("violation", "violation", "rect"),
        ] {
            let swatch = match shape {
                "line" => format!("<line class=\"{class}\" x1=\"7\" y1=\"1\" x2=\"7\" y2=\"11\"/>"),
                "diamond" => format!("<path class=\"{class}\" d=\"M7 1 l5 5 l-5 5 l-5 -5 z\"/>"),
                "cross" => format!("<path class=\"{class}\" d=\"M2 1 l10 10 m0 -10 l-10 10\"/>"),
                "triangle" => format!("<path class=\"{class}\" d=\"M3 1 l8 5 l-8 5 z\"/>"),
                "circle" => format!("<circle class=\"{class}\" cx=\"7\" cy=\"6\" r=\"4\"/>"),
                _ => {
                    format!("<rect class=\"{class}\" x=\"0\" y=\"1\" width=\"14\" height=\"10\"/>")
                }
            };
            let _ = write!(
                page,
                "<span><svg width=\"14\" height=\"12\" xmlns=\"http://www.w3.org/2000/svg\">{swatch}</svg>{words}</span>"
            );
        }
        page.push_str("</div>\n");
        page.push_str(&svg);
        // The verdicts with their figures.
        page.push_str("<table class=\"verdicts\" id=\"verdicts\">\n<tr><th>checker</th><th>verdict</th><th>figures</th></tr>\n");
        for verdict in report.verdicts {
            let (class, state) = if verdict.ok() {
                ("state-ok", "ok")
            } else {
                ("state-violated", "VIOLATED")
            };
            let figures: Vec<String> = verdict
                .figures
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let _ = writeln!(
                page,
                "<tr data-checker=\"{}\"><td>{}</td><td class=\"{class}\">{state}</td><td><code>{}</code></td></tr>",
                verdict.checker,
                verdict.checker,
                esc(&figures.join(" "))
            );
        }
        page.push_str("</table>\n");
        let _ = writeln!(
            page,
            "<details id=\"text-timeline\"><summary>The timeline as text</summary><pre>{}</pre></details>",
            esc(&report.timeline_text())
        );
        page.push_str("</body>\n</html>\n");
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::history;
    use khaos_elector::{LockKind, Timing};

    fn context() -> Context {
        Context {
            namespace: "default".into(),
            cluster_id: "demo".into(),
            job_id: "job".into(),
            lock: LockKind::Lease,
            timing: Timing::new(
                Duration::from_millis(1500),
                Duration::from_millis(1000),
                Duration::from_millis(200),
            )
            .unwrap(),
            checkpoint_interval: Duration::from_millis(100),
            overlap_allowed: false,
            network_delay_max: Duration::from_millis(50),
            watch_delay_max: Duration::from_millis(100),
        }
    }

    fn lease(t_ms: u64, revision: u64, holder: &str, transitions: u64) -> String {
        json!({
            "t_ms": t_ms, "node": "apiserver", "event": "commit", "revision": revision,
            "verb": "update", "resource": "leases", "namespace": "default",
            "name": "demo-cluster-leader", "client": holder,
            "object": {"metadata": {"name": "demo-cluster-leader"},
                       "spec": {"holderIdentity": holder, "leaseTransitions": transitions}},
        })
        .to_string()
    }

    /// node-a leads at term 0 and checkpoints; a fault cuts it off and it crashes; node-b takes
    /// over at term 1 and restores; but node-c also believes (wrongly) it was granted term 1.
    fn history() -> Vec<Entry> {
        let mut lines = vec![
            r#"{"t_ms":0,"node":"world","event":"phase","phase":"faults"}"#.to_owned(),
            r#"{"t_ms":0,"node":"node-a","event":"started"}"#.to_owned(),
            r#"{"t_ms":0,"node":"node-b","event":"started"}"#.to_owned(),
            r#"{"t_ms":0,"node":"node-c","event":"started"}"#.to_owned(),
            lease(10, 2, "node-a", 0),
            r#"{"t_ms":11,"node":"node-a","event":"granted","term":0}"#.to_owned(),
            r#"{"t_ms":20,"node":"node-a","event":"restored","term":0,"checkpoint":null,"records":0,"dangling":[],"removals_finished":0}"#.to_owned(),
        ];
        for id in 1..=5 {
            lines.push(format!(
                r#"{{"t_ms":{},"node":"node-a","event":"checkpoint","term":0,"id":{id},"records":{}}}"#,
                100 * id,
                100 * id
            ));
        }
        lines.extend([
            lease(520, 9, "node-a", 0),
            r#"{"t_ms":600,"node":"world","event":"fault","action":"start","fault":"partition node-a <-> apiserver & <blob>"}"#.to_owned(),
            r#"{"t_ms":700,"node":"node-a","event":"crashed"}"#.to_owned(),
            r#"{"t_ms":900,"node":"world","event":"fault","action":"end","fault":"partition node-a <-> apiserver & <blob>"}"#.to_owned(),
            lease(2300, 12, "node-b", 1),
            r#"{"t_ms":2301,"node":"node-b","event":"granted","term":1}"#.to_owned(),
            r#"{"t_ms":2310,"node":"node-c","event":"granted","term":1}"#.to_owned(),
            r#"{"t_ms":2320,"node":"node-b","event":"restored","term":1,"checkpoint":5,"records":500,"dangling":[],"removals_finished":0}"#.to_owned(),
            r#"{"t_ms":2350,"node":"world","event":"fault","action":"start","fault":"partition node-c <-> apiserver"}"#.to_owned(),
            r#"{"t_ms":2400,"node":"node-c","event":"revoked","term":1}"#.to_owned(),
            r#"{"t_ms":2450,"node":"world","event":"fault","action":"end","fault":"partition node-c <-> apiserver"}"#.to_owned(),
            r#"{"t_ms":2500,"node":"observer-a","event":"leader","leader":"term-1,node-b"}"#.to_owned(),
            r#"{"t_ms":3000,"node":"world","event":"phase","phase":"end"}"#.to_owned(),
        ]);
        history::parse(&lines.join("\n")).unwrap()
    }

    fn info() -> RunInfo {
        RunInfo {
            scenario: "hand-made".into(),
            seed: Some(7),
            replay: Some("khaos sim run --scenario hand-made --seed 7".into()),
            digest: Some("0123456789abcdef".into()),
            simulated_ms: Some(3000),
            settings: json!({"seed": 7}),
            context: context(),
        }
    }

    fn render<T>(f: impl FnOnce(&Report<'_>) -> T) -> T {
        let history = history();
        let info = info();
        let mut verdicts = checkers::check(&history, &info.context);
        // The hand-made history has no counter, pointer or job map commits: only what it is
        // made for is judged.
        for verdict in &mut verdicts {
            if !["terms", "overlap", "liveness"].contains(&verdict.checker) {
                verdict.violations.clear();
            }
        }
        f(&Report {
            info: &info,
            history: &history,
            verdicts: &verdicts,
        })
    }

    #[test]
    fn the_text_timeline_marks_violations_and_summarises_checkpoints() {
        let text = render(|r| r.timeline_text());
        insta::assert_snapshot!(text);
    }

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

    #[test]
    fn the_summary_names_the_lines_that_broke_and_carries_figures_and_failovers() {
        let summary = render(|r| r.summary_json());
        assert_eq!(summary["ok"], false);
        assert_eq!(summary["verdict"], "VIOLATED terms, overlap");
        assert_eq!(summary["simulated_ms"], 3000);
        assert_eq!(summary["figures"]["overlap"]["overlap_ms"], 90);
        assert_eq!(summary["failovers"][0]["ms"], 1601);
        let violations = summary["violations"].as_array().unwrap();
        let overlap = violations
            .iter()
            .find(|v| v["checker"] == "overlap")
            .unwrap();
        let lines: Vec<&Value> = overlap["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["line"])
            .collect();
        assert_eq!(lines, [&json!(18), &json!(19)]);
        assert_eq!(overlap["lines"][1]["entry"]["node"], "node-c");
        assert_eq!(summary["verdicts"].as_array().unwrap().len(), 8);
    }

    #[test]
    fn junit_has_a_testcase_per_checker_and_parses() {
        let xml = render(|r| r.junit_xml());
        let document = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
        let suite = document
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("name"), Some("khaos hand-made seed 7"));
        assert_eq!(suite.attribute("tests"), Some("8"));
        assert_eq!(suite.attribute("failures"), Some("2"));
        let cases: Vec<&str> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|n| n.attribute("name").unwrap())
            .collect();
        assert_eq!(
            cases,
            [
                "fenced-writes",
                "terms",
                "overlap",
                "durability",
                "counter",
                "progress",
                "cleanup",
                "liveness"
            ]
        );
        let overlap = suite
            .children()
            .find(|n| n.attribute("name") == Some("overlap"))
            .unwrap();
        let failure = overlap
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(
            failure
                .attribute("message")
                .unwrap()
                .starts_with("node-b (granted term 1) and node-c (granted term 1) both believed"),
            "{xml}"
        );
        let body = failure.text().unwrap();
        assert!(
            body.contains("line 19: {\"t_ms\":2310,\"node\":\"node-c\""),
            "{body}"
        );
        assert!(body.contains("replay: khaos sim run --scenario hand-made --seed 7"));
        // Liveness was not judged (no healed phase): skipped, not passed.
        let liveness = suite
            .children()
            .find(|n| n.attribute("name") == Some("liveness"))
            .unwrap();
        assert!(liveness.children().any(|n| n.has_tag_name("skipped")));
    }

    #[test]
    fn xml_escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"c\"'d'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\u{fffd}\n"
        );
        let xml = format!(
            "<a b=\"{}\">{}</a>",
            xml_escape("\"<&>'"),
            xml_escape("</a>\u{0}")
        );
        let document = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(document.root_element().attribute("b"), Some("\"<&>'"));
        assert_eq!(document.root_element().text(), Some("</a>\u{fffd}"));
    }

    #[test]
    fn the_html_page_has_lanes_bars_faults_and_violations_and_fetches_nothing() {
        let page = render(|r| r.timeline_html());
        for id in [
            "lane-node-a",
            "lane-node-b",
            "lane-node-c",
            "violation-1",
            "violation-2",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id} missing");
        }
        assert!(!page.contains("lane-observer-a"), "observers have no lane");
        for class in [
            "belief",
            "lock",
            "fault",
            "fault-shade",
            "checkpoint",
            "restore",
            "crash",
        ] {
            assert!(
                page.contains(&format!("class=\"{class}\"")),
                "{class} missing"
            );
        }
        assert!(page.contains("partition node-a &lt;-&gt; apiserver &amp; &lt;blob&gt;"));
        assert!(page.contains(
            "<span id=\"verdict\" class=\"badge violated\">VIOLATED terms, overlap</span>"
        ));
        assert!(
            page.contains("<code id=\"replay\">khaos sim run --scenario hand-made --seed 7</code>")
        );
        for forbidden in ["<script", "src=", "<link", "@import", "url("] {
            assert!(!page.contains(forbidden), "{forbidden} in the page");
        }
        // The only links are to anchors within the page.
        for (position, _) in page.match_indices("href=\"") {
            assert!(
                page[position + 6..].starts_with('#'),
                "{}",
                &page[position..position + 40]
            );
        }
    }

    #[test]
    fn times_in_messages_widen_violation_bands() {
        let message = "a and b both believed they led for 90 ms, from t=2310 ms to t=2400 ms";
        assert_eq!(html::times_in(message).collect::<Vec<_>>(), [2310, 2400]);
        assert_eq!(html::times_in("t=12 s, t=x ms, at=5 ms").count(), 0);
    }

    #[test]
    fn lane_ids_keep_names_readable_and_safe() {
        assert_eq!(html::lane_id("node-a"), "lane-node-a");
        assert_eq!(html::lane_id("pod a/\"x\""), "lane-pod_a__x_");
    }
}
