//! The history: one JSON object a line, the same in the simulator and in live runs.
//!
//! Every line has `t_ms` (simulated milliseconds in the simulator; the recording process's
//! monotonic clock live), `node` (who recorded it: a candidate's identity, `apiserver`, `world`
//! for injected faults, or an observer) and `event`, plus the event's fields. Candidates' lines
//! are exactly what `khaos node` prints ([`Event`]); the rest are [`WorldEvent`]s.
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
    /// The API server, the world, a node's lifecycle, an observer.
    World(WorldEvent),
}

/// Events that are not the job master's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WorldEvent {
    /// The run's settings (the first line of a simulated run).
    Run {
        /// Everything needed to replay and judge the run: seed, scenario, timing, faults drawn.
        settings: Value,
    },
    /// The API server committed a write (exact and in revision order in the simulator; live,
    /// from `khaos serve --history` or an observer's watch).
    Commit {
        /// The revision it committed at.
        revision: u64,
        /// create, update, patch or delete.
        verb: String,
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
        /// What, in words a person reads: `partition node-a -> apiserver`.
        fault: String,
    },
    /// The run moved to another phase: `faults`, `healed` (every fault repaired), `end`.
    Phase {
        /// The phase.
        phase: String,
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
    pub fn world(t_ms: u64, node: &str, event: WorldEvent) -> Entry {
        Entry {
            t_ms,
            node: node.to_owned(),
            record: Record::World(event),
        }
    }

    /// The line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an entry serialises")
    }
}

/// A history line that does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "history line {line}: {source} (each line must be one JSON object with t_ms, node and event)"
)]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// Why.
    #[source]
    pub source: serde_json::Error,
}

/// Parse a history (blank lines are skipped).
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|source| ParseError {
                line: index + 1,
                source,
            })
        })
        .collect()
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
    use super::*;
    use khaos_elector::store::TerminalState;
    use serde_json::json;

    #[test]
    fn every_kind_of_line_round_trips() {
        let entries = vec![
            Entry::world(
                0,
                "world",
                WorldEvent::Run {
                    settings: json!({"seed": 7}),
                },
            ),
            Entry::world(
                3,
                "apiserver",
                WorldEvent::Commit {
                    revision: 12,
                    verb: "update".into(),
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
            Entry::world(
                6,
                "world",
                WorldEvent::Fault {
                    action: FaultAction::Start,
                    fault: "partition node-a -> apiserver".into(),
                },
            ),
            Entry::world(
                7,
                "world",
                WorldEvent::Phase {
                    phase: "healed".into(),
                },
            ),
            Entry::world(8, "node-b", WorldEvent::Leader { leader: None }),
            Entry::world(9, "node-b", WorldEvent::Stopped { graceful: true }),
            Entry::world(10, "node-a", WorldEvent::Crashed {}),
            Entry::world(
                11,
                "world",
                WorldEvent::Blobs {
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
            [Entry::world(21, "node-a", WorldEvent::Started {})]
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
    fn digests_are_stable() {
        assert_eq!(digest(""), "cbf29ce484222325");
        assert_ne!(digest("a\n"), digest("b\n"));
    }
}
