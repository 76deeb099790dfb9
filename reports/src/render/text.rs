//! `timeline.txt`: a header, one line per interesting event, `!!` on every line a violation
//! names, then the verdicts, the failovers and the violations. A function of the history and the
//! verdicts only, so it is stable enough for snapshots.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use khaos_elector::jobmaster::Event;

use super::{Failover, JudgedRun, failovers, not_judged, quote, settings_line, show_checkpoint};
use crate::checkers::{self, LockChange};
use crate::history::{Entry, FaultAction, HarnessEvent, Record};

/// Runs of more checkpoints than this by one leader in one term, with nothing else in between,
/// are one line of the text timeline.
const CHECKPOINT_RUN_MIN: usize = 3;

impl JudgedRun {
    /// The lines of the text timeline: one per interesting entry, checkpoint runs summarised.
    fn lines(&self) -> Vec<Line> {
        let locks = checkers::lock_changes(&self.history, &self.info.context);
        let lock_at: BTreeMap<usize, &LockChange> = locks.iter().map(|l| (l.index, l)).collect();
        let handovers: BTreeMap<u64, Failover> = failovers(&self.history)
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
        let info = &self.info;
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
        for verdict in &self.verdicts {
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
        let failovers = failovers(&self.history);
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
        Record::Harness(event) => match event {
            HarnessEvent::Run { .. } => return None,
            HarnessEvent::Commit {
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
            HarnessEvent::Fault { action, fault, .. } => match action {
                FaultAction::Start => format!("fault starts: {}", quote(&fault.to_string())),
                FaultAction::End => format!("fault ends: {}", quote(&fault.to_string())),
            },
            HarnessEvent::Phase { phase } => format!("phase {phase}"),
            HarnessEvent::Started {} => "started".to_owned(),
            HarnessEvent::Crashed {} => "crashed".to_owned(),
            HarnessEvent::Stopping {} => "stopping".to_owned(),
            HarnessEvent::Stopped { graceful } => {
                if *graceful {
                    "stopped".to_owned()
                } else {
                    "stopped (not gracefully)".to_owned()
                }
            }
            HarnessEvent::Unreachable { error } => {
                format!("API server unreachable: {}", quote(error))
            }
            HarnessEvent::Leader { leader } => match leader {
                Some(leader) => format!("sees leader {leader}"),
                None => "sees no leader".to_owned(),
            },
            HarnessEvent::Blobs { paths } => format!("blob store holds {} blobs", paths.len()),
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

#[cfg(test)]
mod tests {
    use crate::render::testing::*;

    #[test]
    fn the_text_timeline_marks_violations_and_summarises_checkpoints() {
        let text = judged().timeline_text();
        insta::assert_snapshot!(text);
    }
}
