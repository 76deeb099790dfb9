//! `overlap` (believed-leadership overlap): how long two or more candidates believed they led;
//! it must be zero unless the run broke the timing assumptions on purpose.

use serde_json::json;

use super::replay::*;
use super::{Context, Kind, Verdict, Violation};

pub(super) fn overlap(beliefs: &[Belief<'_>], ctx: &Context) -> Verdict {
    // Sweep over the starts and ends; at the same instant, ends go first.
    let mut points: Vec<(u64, i64)> = beliefs
        .iter()
        .flat_map(|b| [(b.start_ms, 1), (b.end_ms, -1)])
        .collect();
    points.sort_unstable();
    let (mut overlap_ms, mut believers, mut max_believers, mut last_ms) = (0, 0_i64, 0_i64, 0);
    for (t_ms, delta) in points {
        if believers >= 2 {
            overlap_ms += t_ms - last_ms;
        }
        believers += delta;
        max_believers = max_believers.max(believers);
        last_ms = t_ms;
    }
    let mut violations = Vec::new();
    if overlap_ms > 0 && !ctx.overlap_allowed {
        for (position, first) in beliefs.iter().enumerate() {
            for second in &beliefs[position + 1..] {
                let from = first.start_ms.max(second.start_ms);
                let to = first.end_ms.min(second.end_ms);
                if to > from && first.node != second.node {
                    violations.push(Violation::new(
                        format!(
                            "{} (granted term {}) and {} (granted term {}) both believed they \
                             led for {} ms, from t={from} ms to t={to} ms",
                            first.node,
                            first.term,
                            second.node,
                            second.term,
                            to - from
                        ),
                        vec![first.index, second.index],
                    ));
                }
            }
        }
    }
    Verdict {
        checker: "overlap",
        kind: Kind::Safety,
        violations,
        figures: vec![
            figure("overlap_ms", json!(overlap_ms)),
            figure("max_believers", json!(max_believers)),
            figure("overlap_allowed", json!(ctx.overlap_allowed)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    fn two_believers() -> Builder {
        let mut b = Builder::default();
        b.granted(10, A, 1);
        b.granted(100, B, 2);
        b.event(300, A, Event::Revoked { term: 1 });
        b.harness(400, B, HarnessEvent::Stopped { graceful: true });
        b
    }

    #[test]
    fn two_believers_at_once_overlap() {
        let b = two_believers();
        let verdict = judge(&b.entries, &context(LockKind::Lease), "overlap");
        assert_eq!(entries(&verdict), [vec![0, 1]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains("node-a (granted term 1) and node-b (granted term 2) both believed they led for 200 ms"),
            "{message}"
        );
        assert_eq!(figure_of(&verdict, "overlap_ms"), &json!(200));
        assert_eq!(figure_of(&verdict, "max_believers"), &json!(2));
    }

    #[test]
    fn overlap_is_only_a_figure_when_the_run_broke_the_timing() {
        let b = two_believers();
        let ctx = Context {
            overlap_allowed: true,
            ..context(LockKind::Lease)
        };
        let verdict = judge(&b.entries, &ctx, "overlap");
        assert!(verdict.ok());
        assert_eq!(figure_of(&verdict, "overlap_ms"), &json!(200));
    }

    #[test]
    fn a_crash_ends_a_belief_and_an_open_one_runs_to_the_end() {
        let mut b = Builder::default();
        b.granted(10, A, 1);
        b.harness(50, A, HarnessEvent::Crashed {});
        b.granted(60, B, 2);
        let quiet = judge(&b.entries, &context(LockKind::Lease), "overlap");
        assert!(quiet.ok());
        assert_eq!(figure_of(&quiet, "overlap_ms"), &json!(0));
        let late = b.granted(70, C, 3);
        b.phase(100, Phase::End);
        let verdict = judge(&b.entries, &context(LockKind::Lease), "overlap");
        assert_eq!(entries(&verdict), [vec![2, late]]);
        assert_eq!(figure_of(&verdict, "overlap_ms"), &json!(30));
    }
}
