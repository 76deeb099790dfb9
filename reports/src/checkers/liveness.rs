//! `liveness`: once every fault is repaired a leader is elected within a bound derived from the
//! timing, checkpoints progress again, and watchers learn the last published leader. At any
//! time, a leader loses leadership only when a fault that could cost it the lease (or more than
//! one that could fail a renewal) was active within the lease, the renew deadline and two retry
//! periods before: no needless loss to one failed request (`docs/invariants.md`).

use std::collections::{BTreeMap, BTreeSet};

use khaos_elector::jobmaster::Event;
use khaos_elector::timing::JITTER_FACTOR;
use serde_json::json;

use super::replay::*;
use super::{Context, Kind, Verdict, Violation};
use crate::faults::Fault;
use crate::faults::server::Faults;
use crate::history::{Entry, HarnessEvent, Phase, Record};

/// Added to the liveness checker's election bound: the time a new leader needs between its lock
/// commit and its `granted` event (its clock tick and the event's delivery), and millisecond
/// rounding of the timing settings.
const ELECTION_SLACK_MS: u64 = 100;

/// The bound on electing a leader after healing: one lease, two jittered retry periods, the
/// network's delay bound and [`ELECTION_SLACK_MS`].
fn election_bound_ms(ctx: &Context) -> u64 {
    let timing = &ctx.timing;
    ms(timing.lease_duration())
        + ms(timing.retry_period().mul_f64(2.0 * (1.0 + JITTER_FACTOR)))
        + ms(ctx.network_delay_max)
        + ELECTION_SLACK_MS
}

pub(super) fn liveness(history: &[Entry], beliefs: &[Belief<'_>], ctx: &Context) -> Verdict {
    let bound_ms = election_bound_ms(ctx);
    let mut verdict = Verdict {
        checker: "liveness",
        kind: Kind::Liveness,
        violations: Vec::new(),
        figures: vec![figure("election_bound_ms", json!(bound_ms))],
    };
    needless_losses(history, ctx, &mut verdict);
    let Some(healed) = phase(history, Phase::Healed, 0) else {
        verdict.figures.push(figure("judged", json!(false)));
        return verdict;
    };
    let Some(end) = phase(history, Phase::End, healed) else {
        verdict.figures.push(figure("judged", json!(false)));
        return verdict;
    };
    let (healed_ms, end_ms) = (history[healed].t_ms, history[end].t_ms);
    let elected_ms = beliefs
        .iter()
        .filter(|b| b.end_ms >= healed_ms)
        .map(|b| b.start_ms.max(healed_ms) - healed_ms)
        .min();
    let first_checkpoint_ms = history[healed..]
        .iter()
        .find(|e| matches!(job_event(e), Some(Event::Checkpoint { .. })))
        .map(|e| e.t_ms.saturating_sub(healed_ms));
    let judged = end_ms.saturating_sub(healed_ms) >= bound_ms;
    verdict.figures.extend([
        figure("judged", json!(judged)),
        figure("elected_after_heal_ms", json!(elected_ms)),
        figure("first_checkpoint_after_heal_ms", json!(first_checkpoint_ms)),
    ]);
    if !judged {
        return verdict;
    }
    let violations = &mut verdict.violations;
    if elected_ms.is_none_or(|elected| elected > bound_ms) {
        violations.push(Violation::new(
            format!(
                "every fault was repaired at t={healed_ms} ms but no candidate believed it led \
                 within {bound_ms} ms (until t={} ms)",
                healed_ms + bound_ms
            ),
            vec![healed],
        ));
    }
    let checkpoint_bound_ms = bound_ms + 2 * ms(ctx.checkpoint_interval);
    let fits = healed_ms + checkpoint_bound_ms <= end_ms;
    let late = first_checkpoint_ms.is_none_or(|first| first > checkpoint_bound_ms);
    if terminal_event(history).is_none() && fits && late {
        violations.push(Violation::new(
            format!(
                "every fault was repaired at t={healed_ms} ms but no checkpoint completed within \
                 {checkpoint_bound_ms} ms (until t={} ms)",
                healed_ms + checkpoint_bound_ms
            ),
            vec![healed],
        ));
    }
    watchers_caught_up(history, end, ctx, violations);
    verdict
}

/// What a fault can do to the renewals of `leader`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// Nothing: blob store faults, wall-clock offsets (expiry uses the monotonic clock),
    /// compactions, and faults aimed at other nodes' processes or links.
    None,
    /// Quick failures a renewal survives by trying again within the deadline: connection resets,
    /// and API server errors for less than a retry period (one failed attempt at most).
    OneFailure,
    /// Anything else: it may cost the lease.
    MayCostTheLease,
}

fn effect(fault: &Fault, duration_ms: u64, leader: &str, ctx: &Context) -> Effect {
    let timing = &ctx.timing;
    // A renewal that fails at once is tried again a retry period later, which only fits the
    // deadline when the deadline leaves room for two more attempts.
    let room = timing.renew_deadline() >= timing.retry_period() * 2 + ctx.network_delay_max * 2;
    match fault {
        Fault::Blob { .. } | Fault::WallOffset { .. } | Fault::Compact => Effect::None,
        // Links and processes matter to the node they touch.
        Fault::Partition { a, b, .. } | Fault::Clog { a, b } => {
            if a == leader || b == leader {
                Effect::MayCostTheLease
            } else {
                Effect::None
            }
        }
        Fault::Crash { node } | Fault::Stop { node } => {
            if node == leader {
                Effect::MayCostTheLease
            } else {
                Effect::None
            }
        }
        Fault::Reset { node } => match (node == leader, room) {
            (false, _) => Effect::None,
            (true, true) => Effect::OneFailure,
            (true, false) => Effect::MayCostTheLease,
        },
        Fault::Server { faults } => {
            let errors_only = *faults
                == Faults {
                    errors: faults.errors.clone(),
                    ..Faults::default()
                };
            let brief = duration_ms + ms(ctx.network_delay_max) < ms(timing.retry_period());
            if errors_only && brief && room {
                Effect::OneFailure
            } else {
                Effect::MayCostTheLease
            }
        }
        // A pause counts wherever it strikes (it breaks the timing assumptions), and so does any
        // drift or a restart of the API server.
        Fault::Pause { .. } | Fault::Drift { .. } | Fault::ServerRestart => Effect::MayCostTheLease,
    }
}

/// A needless leader loss: a leader stepped down (not stopping) although, within the lease, the
/// renew deadline and two retry periods before, no fault that could cost it the lease was active,
/// and at most one that could fail one of its renewals (fabric8 #4246, kubert #134: one failed
/// renewal must not end leadership).
fn needless_losses(history: &[Entry], ctx: &Context, verdict: &mut Verdict) {
    let last_ms = history.last().map_or(0, |e| e.t_ms);
    // Every fault, its start and its end.
    let faults: Vec<(&Fault, u64, u64)> = fault_spans(history)
        .into_iter()
        .map(|span| (span.fault, span.start_ms, span.end_ms.unwrap_or(last_ms)))
        .collect();
    let window_ms = ms(ctx.timing.lease_duration()
        + ctx.timing.renew_deadline()
        + ctx.timing.retry_period() * 2);
    let mut stopping: BTreeSet<&str> = BTreeSet::new();
    let mut losses = 0;
    for (index, entry) in history.iter().enumerate() {
        match &entry.record {
            Record::Harness(HarnessEvent::Stopping {}) => {
                stopping.insert(&entry.node);
            }
            Record::Harness(HarnessEvent::Started {}) => {
                stopping.remove(entry.node.as_str());
            }
            Record::Job(Event::Revoked { term }) if !stopping.contains(entry.node.as_str()) => {
                let from_ms = entry.t_ms.saturating_sub(window_ms);
                let effects: Vec<Effect> = faults
                    .iter()
                    .filter(|(_, start, end)| *start <= entry.t_ms && *end >= from_ms)
                    .map(|(fault, start, end)| effect(fault, end - start, &entry.node, ctx))
                    .collect();
                let may_cost = effects.contains(&Effect::MayCostTheLease);
                let failures = effects.iter().filter(|e| **e == Effect::OneFailure).count();
                if !may_cost && failures <= 1 {
                    losses += 1;
                    verdict.violations.push(Violation::new(
                        format!(
                            "{} lost leadership (term {term}) at t={} ms although since t={from_ms} \
                             ms no fault could cost it the lease and at most one could fail one \
                             renewal: a leader must survive a failed request by renewing again \
                             within the renew deadline",
                            entry.node, entry.t_ms
                        ),
                        vec![index],
                    ));
                }
            }
            _ => {}
        }
    }
    verdict
        .figures
        .push(figure("needless_losses", json!(losses)));
}

/// Every node that follows the leader information has, by the end, seen the last published
/// value, if that was published long enough before the end. "Last" is the publication with the
/// highest term: a deposed leader's `published` event can be reported late, but its write was
/// ordered before the newer term's by fencing.
fn watchers_caught_up(
    history: &[Entry],
    end: usize,
    ctx: &Context,
    violations: &mut Vec<Violation>,
) {
    let end_ms = history[end].t_ms;
    let published = history
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| match job_event(entry)? {
            Event::Published { term, leader } => Some((*term, index, leader)),
            _ => None,
        })
        .max_by_key(|(term, index, _)| (*term, *index));
    let Some((term, published_index, leader)) = published else {
        return;
    };
    let published_ms = history[published_index].t_ms;
    if end_ms.saturating_sub(published_ms) < ms(ctx.watch_delay_max + ctx.network_delay_max) {
        return;
    }
    let mut last_seen: BTreeMap<&str, (usize, Option<&String>)> = BTreeMap::new();
    for (index, entry) in history.iter().enumerate() {
        if entry.t_ms > end_ms {
            continue;
        }
        if let Some(HarnessEvent::Leader { leader }) = harness_event(entry) {
            last_seen.insert(&entry.node, (index, leader.as_ref()));
        }
    }
    for (node, (index, seen)) in last_seen {
        if seen != Some(leader) {
            violations.push(Violation::new(
                format!(
                    "{node} last saw the leader as {} but {leader:?} was published at \
                     t={published_ms} ms (term {term}) and the run ended at t={end_ms} ms: \
                     watchers must learn the new leader within the watch delay bound",
                    seen.map_or_else(|| "none".to_owned(), |s| format!("{s:?}"))
                ),
                vec![published_index, index],
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checkers::testing::*;

    /// FLINK-34007 / fabric8 #6020: after healing nobody ever leads again.
    #[test]
    fn no_leader_and_no_checkpoint_after_healing_break_liveness() {
        let mut b = Builder::default();
        b.granted(10, A, 0);
        b.harness(500, A, HarnessEvent::Crashed {});
        let healed = b.phase(1000, Phase::Healed);
        b.phase(5000, Phase::End);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(verdict.kind, Kind::Liveness);
        assert_eq!(entries(&verdict), [vec![healed], vec![healed]]);
        let messages = messages(&verdict);
        assert!(
            messages[0].contains("no candidate believed it led within 2530 ms (until t=3530 ms)"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].contains("no checkpoint completed within 2730 ms"),
            "{}",
            messages[1]
        );
        assert_eq!(figure_of(&verdict, "elected_after_heal_ms"), &Value::Null);
    }

    #[test]
    fn a_leader_elected_too_late_breaks_liveness() {
        let mut b = Builder::default();
        let healed = b.phase(1000, Phase::Healed);
        b.granted(3531, A, 0);
        b.event(
            3600,
            A,
            Event::Checkpoint {
                term: 0,
                id: 1,
                records: 100,
            },
        );
        b.phase(5000, Phase::End);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(entries(&verdict), [vec![healed]]);
        assert_eq!(figure_of(&verdict, "elected_after_heal_ms"), &json!(2531));
        assert_eq!(
            figure_of(&verdict, "first_checkpoint_after_heal_ms"),
            &json!(2600)
        );
    }

    /// FLINK-20417: a watcher that never learns the new leader.
    #[test]
    fn a_watcher_left_behind_breaks_liveness() {
        let mut b = correct_run();
        let stale = b.harness(
            2300,
            "observer-2",
            HarnessEvent::Leader {
                leader: Some("term-0,".into()),
            },
        );
        b.end(5000);
        let published = b
            .entries
            .iter()
            .rposition(|e| matches!(job_event(e), Some(Event::Published { .. })));
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(entries(&verdict), [vec![published.unwrap(), stale]]);
        let message = &verdict.violations[0].message;
        assert!(
            message.contains(
                "observer-2 last saw the leader as \"term-0,\" but \"term-1,\" was published"
            ),
            "{message}"
        );
    }

    fn fault(b: &mut Builder, t_ms: u64, action: FaultAction, id: usize, fault: &Fault) -> usize {
        let fault = fault.clone();
        b.harness(t_ms, HARNESS, HarnessEvent::Fault { action, id, fault })
    }

    fn cut(node: &str) -> Fault {
        Fault::Partition {
            a: node.into(),
            b: "apiserver".into(),
            oneway: false,
        }
    }

    /// fabric8 #4246, kubert #134: one failed renewal must not cost the lease. Context timing:
    /// lease 1500, deadline 1000, retry 200; the window looked back over is 3100 ms.
    #[test]
    fn a_leader_lost_to_one_failed_renewal_is_a_needless_loss() {
        let blip = &Fault::Server {
            faults: Faults {
                errors: vec![ErrorRule::on(
                    Rule::verbs(&[RequestVerb::Patch])
                        .for_client(A)
                        .for_name("demo-cluster-"),
                )],
                ..Faults::default()
            },
        };
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 2_000, FaultAction::Start, 0, blip);
        fault(&mut b, 2_100, FaultAction::End, 0, blip);
        // A standby cut off changes nothing for the leader.
        fault(&mut b, 2_200, FaultAction::Start, 1, &cut(B));
        let lost = b.event(3_100, A, Event::Revoked { term: 0 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(entries(&verdict), [vec![lost]]);
        assert!(
            verdict.violations[0]
                .message
                .contains("node-a lost leadership (term 0) at t=3100 ms although since t=200 ms"),
            "{}",
            verdict.violations[0].message
        );
        assert_eq!(figure_of(&verdict, "needless_losses"), &json!(1));

        // Two blips may fail two renewals in a row.
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 2_000, FaultAction::Start, 0, blip);
        fault(&mut b, 2_100, FaultAction::End, 0, blip);
        let reset = &Fault::Reset { node: A.into() };
        fault(&mut b, 2_200, FaultAction::Start, 1, reset);
        fault(&mut b, 2_210, FaultAction::End, 1, reset);
        b.event(3_100, A, Event::Revoked { term: 0 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok(), "{:?}", verdict.violations);

        // The same errors for longer than a retry period may cost the lease.
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 2_000, FaultAction::Start, 0, blip);
        fault(&mut b, 3_000, FaultAction::End, 0, blip);
        b.event(3_100, A, Event::Revoked { term: 0 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok(), "{:?}", verdict.violations);
    }

    #[test]
    fn a_loss_under_a_partition_or_a_stop_is_not_needless() {
        let cut = &cut(A);
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 1_000, FaultAction::Start, 0, cut);
        b.event(2_100, A, Event::Revoked { term: 0 });
        fault(&mut b, 2_500, FaultAction::End, 0, cut);
        // A fault that ended within the window explains a loss too.
        b.granted(2_600, A, 1);
        b.event(5_000, A, Event::Revoked { term: 1 });
        // A graceful stop revokes on purpose.
        b.granted(9_000, A, 2);
        b.harness(9_500, A, HarnessEvent::Stopping {});
        b.event(9_510, A, Event::Revoked { term: 2 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok(), "{:?}", verdict.violations);
        assert_eq!(figure_of(&verdict, "needless_losses"), &json!(0));

        // Long after the partition, with nothing else going on, a loss is needless.
        b.harness(9_600, A, HarnessEvent::Started {});
        b.granted(9_700, A, 3);
        let lost = b.event(13_000, A, Event::Revoked { term: 3 });
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert_eq!(entries(&verdict), [vec![lost]]);
    }

    #[test]
    fn liveness_is_not_judged_before_the_bound_has_passed() {
        let mut b = Builder::default();
        b.granted(10, A, 0);
        b.harness(500, A, HarnessEvent::Crashed {});
        b.phase(1000, Phase::Healed);
        b.phase(3529, Phase::End);
        let verdict = judge(&b.entries, &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok());
        assert_eq!(figure_of(&verdict, "judged"), &json!(false));
        let verdict = judge(&[], &context(LockKind::ConfigMap), "liveness");
        assert!(verdict.ok());
        assert_eq!(figure_of(&verdict, "judged"), &json!(false));
    }
}
