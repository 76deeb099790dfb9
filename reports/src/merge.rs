//! Live logs merged into one history: `khaos serve --history` and each `khaos node`'s stdout,
//! all stamped from the same epoch (`--epoch-ms`), ordered by `t_ms`.
//!
//! ```
//! use khaos_reports::merge::merge;
//! let serve = r#"{"t_ms":10,"node":"apiserver","event":"commit","revision":2,"verb":"create","resource":"configmaps","namespace":"default","name":"x","client":"node-a","object":{}}"#;
//! let node = r#"{"t_ms":10,"node":"node-a","event":"granted","term":0}"#;
//! let merged = merge(&[("node-a.log".into(), node.into()), ("serve.jsonl".into(), serve.into())]).unwrap();
//! // At the same millisecond a commit goes first: a node's event may be caused by it.
//! assert_eq!(merged.history, format!("{serve}\n{node}\n"));
//! assert!(merged.torn.is_empty());
//! ```

use std::path::PathBuf;

use crate::history::{HarnessEvent, ParseError, Record, parse_log};

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

/// The merged history, and the logs' torn last lines (left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The history, one JSON line each.
    pub history: String,
    /// Each log whose last line was cut off mid-write (a killed process's), and that line's
    /// number.
    pub torn: Vec<(PathBuf, usize)>,
}

/// Merge JSON-line logs (name, text) into one history ordered by `t_ms`: a run's settings line
/// first, then at equal `t_ms` commits (in revision order) before other events, then the logs'
/// order. Lines are kept byte for byte; blank lines are dropped, and so is a last line that a
/// killed process cut off mid-write (reported in [`Merged::torn`]).
pub fn merge(logs: &[(PathBuf, String)]) -> Result<Merged, MergeError> {
    let mut lines: Vec<((u64, u8, u64), &str)> = Vec::new();
    let mut torn = Vec::new();
    for (path, text) in logs {
        let log = parse_log(text).map_err(|source| MergeError {
            path: path.clone(),
            source,
        })?;
        if let Some(line) = log.torn {
            torn.push((path.clone(), line));
        }
        for (entry, line) in log.lines {
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
    Ok(Merged {
        history: lines
            .into_iter()
            .map(|(_, line)| format!("{line}\n"))
            .collect(),
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = r#"{"t_ms":10,"node":"node-a","event":"granted","term":0}"#;

    #[test]
    fn a_torn_last_line_is_left_out_and_named() {
        let cut = format!("{NODE}\n{}", &NODE[..20]);
        let merged = merge(&[("node-a.log".into(), cut)]).unwrap();
        assert_eq!(merged.history, format!("{NODE}\n"));
        assert_eq!(merged.torn, vec![(PathBuf::from("node-a.log"), 2)]);
    }

    #[test]
    fn a_bad_line_elsewhere_is_an_error_naming_it() {
        let bad = format!("{}\n{NODE}\n", &NODE[..20]);
        let error = merge(&[("node-a.log".into(), bad)]).unwrap_err();
        assert_eq!(error.source.line, 1);
        // A last line that ends in its newline was written whole: bad, not torn.
        let bad = format!("{NODE}\n{{\"t_ms\":1}}\n");
        let error = merge(&[("node-a.log".into(), bad)]).unwrap_err();
        assert_eq!(error.source.line, 2);
        assert!(
            error.to_string().contains("missing field `node`"),
            "{error}"
        );
    }
}
