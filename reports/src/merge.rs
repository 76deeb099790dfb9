//! Live logs merged into one history: `khaos serve --history` and each `khaos node`'s stdout,
//! all stamped from the same epoch (`--epoch-ms`), ordered by `t_ms`.
//!
//! ```
//! use khaos_reports::merge::merge;
//! let serve = r#"{"t_ms":10,"node":"apiserver","event":"commit","revision":2,"verb":"create","resource":"configmaps","namespace":"default","name":"x","client":"node-a","object":{}}"#;
//! let node = r#"{"t_ms":10,"node":"node-a","event":"granted","term":0}"#;
//! let merged = merge(&[("node-a.log".into(), node.into()), ("serve.jsonl".into(), serve.into())]).unwrap();
//! // At the same millisecond a commit goes first: a node's event may be caused by it.
//! assert_eq!(merged, format!("{serve}\n{node}\n"));
//! ```

use std::path::PathBuf;

use crate::history::{Entry, HarnessEvent, ParseError, Record};

/// A log line that is not a history line.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}", path = path.display())]
pub struct MergeError {
    /// The log.
    pub path: PathBuf,
    /// The line and why.
    #[source]
    pub source: ParseError,
}

/// Merge JSON-line logs (name, text) into one history ordered by `t_ms`: a run's settings line
/// first, then at equal `t_ms` commits (in revision order) before other events, then the logs'
/// order. Lines are kept byte for byte; blank lines are dropped.
pub fn merge(logs: &[(PathBuf, String)]) -> Result<String, MergeError> {
    let mut lines: Vec<((u64, u8, u64), &str)> = Vec::new();
    for (path, text) in logs {
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: Entry = serde_json::from_str(line).map_err(|source| MergeError {
                path: path.clone(),
                source: ParseError {
                    line: number + 1,
                    source,
                },
            })?;
            let key = match &entry.record {
                Record::Harness(HarnessEvent::Run { .. }) => (0, 0, 0),
                Record::Harness(HarnessEvent::Commit { revision, .. }) => {
                    (entry.t_ms, 0, *revision)
                }
                _ => (entry.t_ms, 1, 0),
            };
            lines.push((key, line));
        }
    }
    lines.sort_by_key(|(key, _)| *key);
    Ok(lines
        .into_iter()
        .map(|(_, line)| format!("{line}\n"))
        .collect())
}
