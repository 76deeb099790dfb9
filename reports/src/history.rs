//! The history: one JSON object a line, the same in the simulator and in live runs.
//!
//! Every line has `t_ms` (simulated milliseconds in the simulator; the recording process's
//! monotonic clock live), `node` (who recorded it: a candidate's identity, `apiserver` for
//! commits, [`HARNESS`] for the run's settings, phases and injected faults, or an observer) and
//! `event`, plus the event's fields. Candidates' lines are exactly what `khaos node` prints
//! ([`Event`]); the rest are [`HarnessEvent`]s. Everything is typed: faults are
//! [`Fault`]s, the first line is the run's
//! [`Settings`].
//!
//! ```
//! use khaos_reports::history::{Entry, Record, parse};
//! let line = r#"{"t_ms":1500,"node":"node-a","event":"checkpoint","term":2,"id":7,"records":700}"#;
//! let entries = parse(line).unwrap();
//! assert_eq!(entries[0].t_ms, 1500);
//! assert!(matches!(entries[0].record, Record::Job(_)));
//! assert_eq!(entries[0].to_line(), line);
//! ```

use khaos_elector::jobmaster::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::Fault;
use crate::settings::Settings;

/// The `node` of the lines the harness itself records: the run's settings, its phases, the
/// faults it injects and what the blob store holds at the end.
pub const HARNESS: &str = "harness";

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds: simulated time, or the recorder's monotonic clock live.
    pub t_ms: u64,
    /// Who recorded it.
    pub node: String,
    /// What happened.
    #[serde(flatten)]
    pub record: Record,
}

/// What happened: a candidate's job master event, or anything else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    /// A candidate's job master (grants, revokes, restores, checkpoints, ...).
    Job(Event),
    /// The harness, the API server, a node's lifecycle, an observer.
    Harness(HarnessEvent),
}

/// Events that are not the job master's: what the harness records and sees around the
/// candidates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HarnessEvent {
    /// The run's settings (the first line of a run that records them).
    Run {
        /// Everything needed to replay and judge the run.
        settings: Box<Settings>,
    },
    /// The API server committed a write (exact and in revision order in the simulator; live,
    /// from `khaos serve --history` or an observer's watch).
    Commit {
        /// The revision it committed at.
        revision: u64,
        /// What kind of write.
        verb: CommitVerb,
        /// The resource (`configmaps`, `leases`).
        resource: String,
        /// The object's namespace.
        namespace: String,
        /// The object's name.
        name: String,
        /// The writer's identity (its User-Agent).
        client: String,
        /// The object after the write (its last state for a delete).
        object: Value,
    },
    /// A fault started or ended.
    Fault {
        /// `start` or `end`.
        action: FaultAction,
        /// The fault's position in the run's schedule: its start and its end carry the same id.
        id: usize,
        /// What, with roles resolved to the hosts they named when it started.
        fault: Fault,
    },
    /// The run moved to another phase.
    Phase {
        /// The phase.
        phase: Phase,
    },
    /// A node process started (live: the first line `khaos node` prints).
    Started {},
    /// A node crashed (killed: no revoke, no release).
    Crashed {},
    /// A node is stopping gracefully.
    Stopping {},
    /// A node stopped.
    Stopped {
        /// Whether the graceful stop finished within its bound.
        #[serde(default)]
        graceful: bool,
    },
    /// A node could not reach the API server at start.
    Unreachable {
        /// Why.
        error: String,
    },
    /// Leader information as an observer (or a candidate's follower) saw it.
    Leader {
        /// `<session>,<address>`, or `None` when none is published.
        leader: Option<String>,
    },
    /// The blob store's contents at the end of a run.
    Blobs {
        /// Every path present.
        paths: Vec<String>,
    },
}

/// The kind of a committed write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitVerb {
    /// A create (POST).
    Create,
    /// A replace (PUT).
    Update,
    /// A patch (PATCH).
    Patch,
    /// A delete (DELETE, the garbage collector, a namespace's deletion).
    Delete,
}

/// The phases of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Faults may strike.
    Faults,
    /// Every fault is repaired: liveness is judged from here.
    Healed,
    /// The run ended.
    End,
}

impl std::fmt::Display for CommitVerb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CommitVerb::Create => "create",
            CommitVerb::Update => "update",
            CommitVerb::Patch => "patch",
            CommitVerb::Delete => "delete",
        })
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Faults => "faults",
            Phase::Healed => "healed",
            Phase::End => "end",
        })
    }
}

/// Whether a fault starts or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// It starts.
    Start,
    /// It is repaired.
    End,
}

impl Entry {
    /// A job master event of `node` at `t_ms`.
    pub fn job(t_ms: u64, node: &str, event: Event) -> Entry {
        Entry {
            t_ms,
            node: node.to_owned(),
            record: Record::Job(event),
        }
    }

    /// Any other event of `node` at `t_ms`.
    pub fn harness(t_ms: u64, node: &str, event: HarnessEvent) -> Entry {
        Entry {
            t_ms,
            node: node.to_owned(),
            record: Record::Harness(event),
        }
    }

    /// The run's settings, if this is its first line.
    pub fn settings(&self) -> Option<&Settings> {
        match &self.record {
            Record::Harness(HarnessEvent::Run { settings }) => Some(settings),
            _ => None,
        }
    }

    /// The line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an entry serialises")
    }
}

/// A history line that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("history line {line}: {reason}")]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it, naming the field where one is at fault.
    pub reason: String,
}

/// Parse one line (`number` is 1-based, for the error).
pub fn parse_line(line: &str, number: usize) -> Result<Entry, ParseError> {
    serde_json::from_str(line).map_err(|_| ParseError {
        line: number,
        reason: explain(line),
    })
}

/// Why a line is not an [`Entry`]. serde's own error for the untagged [`Record`] names neither
/// the field nor the event, so the line is read again step by step.
fn explain(line: &str) -> String {
    const SHAPE: &str = "each line is one JSON object with t_ms, node and event";
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(error) => return format!("not JSON: {error} ({SHAPE})"),
    };
    let Some(object) = value.as_object() else {
        return format!("not a JSON object ({SHAPE})");
    };
    for field in ["t_ms", "node", "event"] {
        if !object.contains_key(field) {
            return format!("missing field `{field}` ({SHAPE})");
        }
    }
    if !object["t_ms"].is_u64() {
        return format!(
            "`t_ms` is {}, not a whole number of milliseconds",
            object["t_ms"]
        );
    }
    if !object["node"].is_string() {
        return format!("`node` is {}, not a string", object["node"]);
    }
    let event = object["event"].as_str().unwrap_or("");
    let mut rest = object.clone();
    rest.remove("t_ms");
    rest.remove("node");
    let rest = Value::Object(rest);
    let job = Event::deserialize(&rest).err().map(|e| e.to_string());
    let harness = HarnessEvent::deserialize(&rest)
        .err()
        .map(|e| e.to_string());
    let known = |error: &Option<String>| {
        error
            .as_ref()
            .is_some_and(|e| !e.starts_with("unknown variant"))
    };
    let reason = match (job, harness) {
        (Some(job), _) if known(&Some(job.clone())) => job,
        (_, Some(harness)) if known(&Some(harness.clone())) => harness,
        _ => return format!("unknown event {event:?}"),
    };
    if event == "run" {
        return format!(
            "the run's settings: {reason} (a history written by another khaos version? re-run it with this one)"
        );
    }
    format!("event {event:?}: {reason}")
}

/// Parse a history (blank lines are skipped).
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| parse_line(line, index + 1))
        .collect()
}

/// A history as a process that may have been killed left it.
#[derive(Clone, Debug, PartialEq)]
pub struct Log<'a> {
    /// Each line that parsed, with its text.
    pub lines: Vec<(Entry, &'a str)>,
    /// The 1-based number of a last line cut off mid-write (no newline, does not parse), which
    /// is left out.
    pub torn: Option<usize>,
}

/// Parse a log that a killed process may have cut off: a last line without its newline that
/// does not parse is left out and reported as torn; any other bad line is an error.
pub fn parse_log(text: &str) -> Result<Log<'_>, ParseError> {
    let count = text.lines().count();
    let mut log = Log {
        lines: Vec::new(),
        torn: None,
    };
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, index + 1) {
            Ok(entry) => log.lines.push((entry, line)),
            Err(_) if index + 1 == count && !text.ends_with('\n') => log.torn = Some(index + 1),
            Err(error) => return Err(error),
        }
    }
    Ok(log)
}

/// The history as JSON lines, each ending in a newline.
pub fn to_jsonl(entries: &[Entry]) -> String {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&entry.to_line());
        text.push('\n');
    }
    text
}

/// Where two histories first differ: the 1-based line and each history's line there (`None`
/// where one history ended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The 1-based line number.
    pub line: usize,
    /// The first history's line.
    pub first: Option<String>,
    /// The second history's line.
    pub second: Option<String>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show =
            |line: &Option<String>| line.as_deref().unwrap_or("(the history ended)").to_owned();
        write!(
            f,
            "line {} differs:\n  first:  {}\n  second: {}",
            self.line,
            show(&self.first),
            show(&self.second)
        )
    }
}

/// History lines quoted in messages are cut to this many bytes.
pub const QUOTED_LINE_BYTES_MAX: usize = 300;

/// `line` cut to [`QUOTED_LINE_BYTES_MAX`] bytes (at a character boundary), with `...` when cut.
pub fn abbreviate(line: &str) -> String {
    if line.len() <= QUOTED_LINE_BYTES_MAX {
        return line.to_owned();
    }
    let mut end = QUOTED_LINE_BYTES_MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
}

/// The first line where two JSON-lines histories differ, as madsim's determinism check stops at
/// the first divergence; `None` when they are the same.
pub fn first_difference(first: &str, second: &str) -> Option<Divergence> {
    let (mut a, mut b) = (first.lines(), second.lines());
    for line in 1.. {
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => {}
            (x, y) => {
                return Some(Divergence {
                    line,
                    first: x.map(str::to_owned),
                    second: y.map(str::to_owned),
                });
            }
        }
    }
    unreachable!("the loop returns")
}

/// A stable digest of a history's bytes (FNV-1a, 64 bits, as 16 hex digits): two runs with the
/// same digest produced the same history.
pub fn digest(jsonl: &str) -> String {
    let hash = jsonl.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bad_line_is_explained_by_its_field() {
        let reason = |line: &str| super::parse(line).unwrap_err().reason;
        assert!(reason("{").starts_with("not JSON"), "{}", reason("{"));
        assert_eq!(
            reason("[1]"),
            "not a JSON object (each line is one JSON object with t_ms, node and event)"
        );
        assert!(reason(r#"{"t_ms":1,"event":"granted"}"#).starts_with("missing field `node`"));
        assert!(reason(r#"{"t_ms":-1,"node":"a","event":"granted"}"#).starts_with("`t_ms` is -1"));
        assert_eq!(
            reason(r#"{"t_ms":1,"node":"a","event":"flew"}"#),
            "unknown event \"flew\""
        );
        assert_eq!(
            reason(r#"{"t_ms":1,"node":"a","event":"granted"}"#),
            "event \"granted\": missing field `term`"
        );
        assert!(
            reason(r#"{"t_ms":0,"node":"harness","event":"run","settings":{"seed":1}}"#)
                .starts_with("the run's settings: "),
        );
        let error = super::parse("\n{\"t_ms\":1}").unwrap_err();
        assert_eq!(error.line, 2);
    }

    use super::*;
    use khaos_elector::store::TerminalState;
    use serde_json::json;

    #[test]
    fn every_kind_of_line_round_trips() {
        let entries = vec![
            Entry::harness(
                0,
                HARNESS,
                HarnessEvent::Run {
                    settings: Box::new(Settings::example()),
                },
            ),
            Entry::harness(
                3,
                "apiserver",
                HarnessEvent::Commit {
                    revision: 12,
                    verb: CommitVerb::Update,
                    resource: "configmaps".into(),
                    namespace: "default".into(),
                    name: "demo-cluster-config-map".into(),
                    client: "node-a".into(),
                    object: json!({"metadata": {"name": "demo-cluster-config-map"}}),
                },
            ),
            Entry::job(4, "node-a", Event::Granted { term: 1 }),
            Entry::job(
                5,
                "node-a",
                Event::Finished {
                    term: 1,
                    state: TerminalState::Finished,
                    records: 300,
                },
            ),
            Entry::harness(
                6,
                HARNESS,
                HarnessEvent::Fault {
                    action: FaultAction::Start,
                    id: 0,
                    fault: Fault::Partition {
                        a: "node-a".into(),
                        b: "apiserver".into(),
                        oneway: true,
                    },
                },
            ),
            Entry::harness(
                7,
                HARNESS,
                HarnessEvent::Phase {
                    phase: Phase::Healed,
                },
            ),
            Entry::harness(8, "node-b", HarnessEvent::Leader { leader: None }),
            Entry::harness(9, "node-b", HarnessEvent::Stopped { graceful: true }),
            Entry::harness(10, "node-a", HarnessEvent::Crashed {}),
            Entry::harness(
                11,
                HARNESS,
                HarnessEvent::Blobs {
                    paths: vec!["demo/_job-results/j.json".into()],
                },
            ),
        ];
        let text = to_jsonl(&entries);
        assert_eq!(parse(&text).unwrap(), entries);
    }

    #[test]
    fn what_khaos_node_prints_parses_including_fields_the_history_ignores() {
        let line = r#"{"t_ms":21,"node":"node-a","event":"started","server":"http://127.0.0.1:16443","lock":"configmap/demo"}"#;
        let entries = parse(line).unwrap();
        assert_eq!(
            entries,
            [Entry::harness(21, "node-a", HarnessEvent::Started {})]
        );
    }

    #[test]
    fn a_broken_line_is_named() {
        let error =
            parse("{\"t_ms\":1,\"node\":\"a\",\"event\":\"granted\",\"term\":1}\n\nnot json")
                .unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.to_string().starts_with("history line 3:"), "{error}");
    }

    #[test]
    fn the_first_difference_is_named_with_both_lines() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        let divergence = first_difference("a\nb\nc\n", "a\nx\nc\n").unwrap();
        assert_eq!(
            (
                divergence.line,
                divergence.first.as_deref(),
                divergence.second.as_deref()
            ),
            (2, Some("b"), Some("x"))
        );
        let shorter = first_difference("a\nb\n", "a\n").unwrap();
        assert_eq!((shorter.line, shorter.second.as_deref()), (2, None));
        assert!(shorter.to_string().contains("(the history ended)"));
        let long = "é".repeat(400);
        assert!(abbreviate(&long).len() <= QUOTED_LINE_BYTES_MAX + 3);
    }

    #[test]
    fn digests_are_stable() {
        assert_eq!(digest(""), "cbf29ce484222325");
        assert_ne!(digest("a\n"), digest("b\n"));
    }
}
