//! Shrinking a failing fault schedule to a minimal one that still fails: drop faults (halves, then
//! quarters, down to single faults, as delta debugging does), then shorten each remaining fault,
//! until no single step keeps the failure. The seed stays the same, so every candidate is a
//! deterministic run; the result is a schedule a person can read.
//!
//! ```
//! use khaos_reports::faults::{Fault, Schedule, Scheduled};
//! use khaos_scenarios::shrink::shrink;
//! let fault = |node: &str, at_ms| Scheduled { at_ms, for_ms: 8_000, fault: Fault::Crash { node: node.into() } };
//! let schedule = Schedule { faults: vec![fault("node-a", 0), fault("node-b", 1_000), fault("node-c", 2_000)] };
//! // "Fails" whenever node-b crashes for at least a second.
//! let fails = |s: &Schedule| s.faults.iter().any(|f| f.fault == Fault::Crash { node: "node-b".into() } && f.for_ms >= 1_000);
//! let shrunk = shrink(&schedule, fails);
//! assert_eq!(shrunk.schedule.faults.len(), 1);
//! assert_eq!(shrunk.schedule.faults[0].for_ms, 1_000);
//! ```

use khaos_reports::faults::{Schedule, Scheduled};

/// Durations are not shortened below this.
pub const SHORTEST_MS: u64 = 1_000;

/// What shrinking found.
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk {
    /// The smallest failing schedule found.
    pub schedule: Schedule,
    /// How many candidate schedules were tried.
    pub tries: usize,
}

/// Shrink `schedule`, for which `fails` is true, to a locally minimal one for which it is still
/// true. `fails` must be deterministic.
pub fn shrink(schedule: &Schedule, mut fails: impl FnMut(&Schedule) -> bool) -> Shrunk {
    let mut current = schedule.faults.clone();
    let mut tries = 0;
    let mut check = |faults: &[Scheduled], tries: &mut usize| {
        *tries += 1;
        fails(&Schedule {
            faults: faults.to_vec(),
        })
    };
    // Drop chunks of faults, from halves down to single faults.
    let mut chunk = current.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        let mut removed_any = false;
        while start < current.len() {
            let end = (start + chunk).min(current.len());
            let mut candidate = current.clone();
            candidate.drain(start..end);
            if check(&candidate, &mut tries) {
                current = candidate;
                removed_any = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 && !removed_any {
            break;
        }
        if !removed_any {
            chunk = chunk.div_ceil(2);
        }
    }
    // Shorten what is left: halve each duration while the failure stays.
    for index in 0..current.len() {
        while current[index].for_ms > SHORTEST_MS {
            let mut candidate = current.clone();
            candidate[index].for_ms = (candidate[index].for_ms / 2).max(SHORTEST_MS);
            if check(&candidate, &mut tries) {
                current = candidate;
            } else {
                break;
            }
        }
    }
    Shrunk {
        schedule: Schedule { faults: current },
        tries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use khaos_reports::faults::Fault;

    fn crash(node: &str, at_ms: u64, for_ms: u64) -> Scheduled {
        Scheduled {
            at_ms,
            for_ms,
            fault: Fault::Crash { node: node.into() },
        }
    }

    #[test]
    fn a_failure_that_needs_two_faults_keeps_exactly_those_two() {
        let faults: Vec<Scheduled> = (0..12)
            .map(|i| crash(&format!("node-{i}"), i * 1000, 16_000))
            .collect();
        let needs = |s: &Schedule| {
            let has = |n: &str| {
                s.faults
                    .iter()
                    .any(|f| f.fault == Fault::Crash { node: n.into() })
            };
            has("node-3") && has("node-9")
        };
        let shrunk = shrink(&Schedule { faults }, needs);
        let nodes: Vec<String> = shrunk
            .schedule
            .faults
            .iter()
            .map(|f| f.fault.to_string())
            .collect();
        assert_eq!(nodes, ["crash node-3", "crash node-9"]);
        assert!(
            shrunk
                .schedule
                .faults
                .iter()
                .all(|f| f.for_ms == SHORTEST_MS)
        );
        assert!(shrunk.tries < 60, "{} tries", shrunk.tries);
    }

    #[test]
    fn a_duration_that_matters_is_kept_above_its_threshold() {
        let schedule = Schedule {
            faults: vec![crash("node-a", 0, 40_000)],
        };
        let shrunk = shrink(&schedule, |s| s.faults.iter().any(|f| f.for_ms > 15_000));
        assert_eq!(shrunk.schedule.faults[0].for_ms, 20_000);
    }

    #[test]
    fn nothing_to_drop_leaves_the_schedule_as_it_was() {
        let schedule = Schedule {
            faults: vec![crash("node-a", 0, 1_000)],
        };
        let shrunk = shrink(&schedule, |s| !s.faults.is_empty());
        assert_eq!(shrunk.schedule, schedule);
    }
}
