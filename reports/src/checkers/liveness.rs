//! `liveness`: once every fault is repaired a leader is elected within a bound derived from the
//! timing, checkpoints progress again, and watchers learn the last published leader. At any
//! time, a leader loses leadership only when a fault that could cost it the lease (or more than
//! one that could fail a renewal) was active within the lease, the renew deadline and two retry
//! periods before: no needless loss to one failed request. Also at any time: a watcher's view of
//! the leader lags each publication only by a bound, and a graceful stop of the leader hands over
//! within about one retry period (`docs/invariants.md`).

use std::collections::{BTreeMap, BTreeSet};

use khaos_elector::jobmaster::Event;
use khaos_elector::timing::JITTER_FACTOR;
use serde_json::json;

use super::replay::*;
use super::{Context, Kind, Verdict, Violation};
use crate::faults::server::Faults;
use crate::faults::{Fault, drift_bound_ppm};
use crate::history::{Entry, HarnessEvent, Phase, Record};

/// Added to the liveness checker's election bound: the time a new leader needs between its lock
/// commit and its `granted` event (its clock tick and the event's delivery), and millisecond
/// rounding of the timing settings.
const ELECTION_SLACK_MS: u64 = 100;

/// The bound on electing a leader after healing: one lease, two jittered retry periods, the
/// network's delay bound and [`ELECTION_SLACK_MS`].
fn election_bound_ms(ctx: &Context) -> u64 {
    let timing = &ctx.timing;
    ms(timing.lease_honoured())
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
    hand_overs(history, beliefs, ctx, &mut verdict);
    watcher_lag(history, ctx, &mut verdict);
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
    /// and API server errors short enough that a later attempt still fits the deadline.
    OneFailure,
    /// Anything else: it may cost the lease.
    MayCostTheLease,
}

fn effect(fault: &Fault, duration_ms: u64, leader: &str, ctx: &Context) -> Effect {
    // Quick failures a renewal rides out. Say the last successful renewal started at S. The
    // next attempt starts a renew interval I after it answered (at most S + I + 4 net: a read and
    // a write), so errors for `d` ms that fail it end by S + I + 8 net + d, leaving at least
    // L = R - I - 8 net - d of the renew deadline R. After a failed attempt the next one comes a
    // retry period later or after half of what is left, whichever is sooner, so some attempt
    // after the errors keeps about L / 2 less a failure's round trips, and it needs up to six
    // network delays (a reconnect, a read and a write), each up to a simulation step late: all
    // of it fits when `d + 28 net <= R - I`, with R shortened by the fastest drift the timing
    // tolerates. A reset fails one attempt (d = 0).
    let timing = &ctx.timing;
    let drift =
        (f64::from(u32::try_from(drift_bound_ppm(timing)).unwrap_or(u32::MAX)) / 1e6).min(1.0);
    let slack_ms = ms(timing.renew_deadline().mul_f64(1.0 - drift))
        .saturating_sub(ms(timing.renew_interval()));
    let survivable = |d_ms: u64| d_ms.saturating_add(28 * ms(ctx.network_delay_max)) <= slack_ms;
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
        Fault::Crash { node } | Fault::Stop { node } | Fault::DeletePod { node, .. } => {
            if node == leader {
                Effect::MayCostTheLease
            } else {
                Effect::None
            }
        }
        Fault::Reset { node } => match (node == leader, survivable(0)) {
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
            if errors_only && survivable(duration_ms) {
                Effect::OneFailure
            } else {
                Effect::MayCostTheLease
            }
        }
        // A drift within the bound the timing tolerates changes when renewals happen, not
        // whether they succeed; beyond it, the timing assumptions are broken anyway.
        Fault::Drift { .. } if !ctx.overlap_allowed => Effect::None,
        // A pause counts wherever it strikes (it breaks the timing assumptions), and so does a
        // restart of the API server.
        Fault::Pause { .. } | Fault::Drift { .. } | Fault::ServerRestart => Effect::MayCostTheLease,
    }
}

/// Every fault with its start and its end; one still active ends at `until_ms`.
fn closed_spans(history: &[Entry], until_ms: u64) -> Vec<(&Fault, u64, u64)> {
    fault_spans(history)
        .into_iter()
        .map(|span| (span.fault, span.start_ms, span.end_ms.unwrap_or(until_ms)))
        .collect()
}

/// A needless leader loss: a leader stepped down (not stopping) although, within the lease, the
/// renew deadline and two retry periods before, no fault that could cost it the lease was active,
/// and at most one that could fail one of its renewals (fabric8 #4246, kubert #134: one failed
/// renewal must not end leadership).
fn needless_losses(history: &[Entry], ctx: &Context, verdict: &mut Verdict) {
    let last_ms = history.last().map_or(0, |e| e.t_ms);
    // Every fault, its start and its end.
    let faults = closed_spans(history, last_ms);
    let window_ms = ms(ctx.timing.lease_honoured()
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

/// The bound on a hand-over after a graceful stop: the stopping leader has released the lock by
/// its `stopped` event; a standby whose last read was answered just before the release (up to a
/// network delay after it committed) polls again a jittered retry period later and takes the
/// lock in a read and a write (four network delays).
fn hand_over_bound_ms(ctx: &Context) -> u64 {
    ms(ctx.timing.retry_period().mul_f64(1.0 + JITTER_FACTOR))
        + 5 * ms(ctx.network_delay_max)
        + ELECTION_SLACK_MS
}

/// A leader that stops gracefully releases the lock, so a standby that is running takes over
/// within about one retry period ([`hand_over_bound_ms`]) instead of waiting out the lease:
/// judged after each graceful stop of a leader while another candidate runs, when no other
/// fault is active from a renew deadline and a jittered retry period before the stop (a
/// standby's request in flight is bounded by the renew deadline) until the bound has passed
/// (the stop itself and its restart aside). A release that fails leaves the cluster without a
/// new leader for a lease.
fn hand_overs(history: &[Entry], beliefs: &[Belief<'_>], ctx: &Context, verdict: &mut Verdict) {
    let bound_ms = hand_over_bound_ms(ctx);
    let lookback_ms = ms(ctx.timing.renew_deadline()
        + ctx.timing.retry_period().mul_f64(1.0 + JITTER_FACTOR)
        + ctx.network_delay_max * 2);
    let last_ms = history.last().map_or(0, |e| e.t_ms);
    let mut spans = closed_spans(history, last_ms);
    spans.retain(|(fault, _, _)| fault.disturbs_election());
    let mut running: BTreeSet<&str> = BTreeSet::new();
    let mut stopping_at: BTreeMap<&str, u64> = BTreeMap::new();
    let mut judged = 0;
    for (index, entry) in history.iter().enumerate() {
        let node = entry.node.as_str();
        match harness_event(entry) {
            Some(HarnessEvent::Started {}) => {
                running.insert(node);
            }
            Some(HarnessEvent::Crashed {}) => {
                running.remove(node);
            }
            Some(HarnessEvent::Stopping {}) => {
                running.remove(node);
                stopping_at.insert(node, entry.t_ms);
            }
            Some(HarnessEvent::Stopped { graceful }) => {
                let Some(from_ms) = stopping_at.remove(node) else {
                    continue;
                };
                // Only a leader's finished graceful stop, with another candidate running.
                let led = beliefs
                    .iter()
                    .any(|b| b.node == node && b.start_ms <= from_ms && b.end_ms >= from_ms);
                if !graceful || !led || running.is_empty() {
                    continue;
                }
                let until_ms = entry.t_ms + bound_ms;
                if until_ms > last_ms {
                    continue;
                }
                // Every fault active in the window is this node's own stop (or its restart).
                let quiet_from_ms = from_ms.saturating_sub(lookback_ms);
                let quiet = spans.iter().all(|(fault, start, end)| {
                    *end < quiet_from_ms
                        || *start > until_ms
                        || matches!(fault, Fault::Stop { node: n } if n == node)
                });
                if !quiet {
                    continue;
                }
                judged += 1;
                let taken = beliefs
                    .iter()
                    .any(|b| b.start_ms >= from_ms && b.start_ms <= until_ms);
                if !taken {
                    verdict.violations.push(Violation::new(
                        format!(
                            "{node} stopped gracefully as leader at t={} ms with {} running, but \
                             no candidate believed it led within {bound_ms} ms (until t={until_ms} \
                             ms): a graceful stop releases the lock, so a standby takes over \
                             within one retry period instead of waiting out the lease",
                            entry.t_ms,
                            running.iter().copied().collect::<Vec<_>>().join(", ")
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
        .push(figure("hand_overs_judged", json!(judged)));
}

/// How long a watcher may take to recover after a fault that broke its watch: the longest
/// backoff between its attempts, plus one request that hung until the client gave up.
fn watcher_recovery_ms() -> u64 {
    ms(
        khaos_elector::backoff::MAX_DELAY.mul_f64(1.0 + khaos_elector::backoff::JITTER)
            + khaos_elector::client::REQUEST_TIMEOUT,
    )
}

/// Whether `fault` can delay what `watcher` learns from its watch: API server faults that do not
/// name only other clients, restarts and compactions, and faults aimed at the watcher itself.
fn disturbs_watcher(fault: &Fault, watcher: &str) -> bool {
    match fault {
        Fault::Server { faults } => {
            faults.watch != Default::default()
                || faults.stale_reads.is_some()
                || faults.rules().any(|rule| {
                    rule.clients.is_empty() || rule.clients.iter().any(|c| watcher.starts_with(c))
                })
        }
        Fault::ServerRestart | Fault::Compact => true,
        _ => fault.touches(watcher),
    }
}

/// One view of the leader a watcher recorded: its entry, its time, the value.
type View<'a> = (usize, u64, Option<&'a String>);

/// A watcher's view of the leader lags each publication by at most the watch delay bound and four
/// network delays, with either lock kind (with the ConfigMap lock a renewal rewrites the watched map
/// every retry period, which would hide a watcher that only catches up on the next event). After
/// a fault that may have broken its watch, the watcher is given [`watcher_recovery_ms`] from the
/// fault's end to list again. A publication followed by a newer term's before its deadline is
/// not judged.
fn watcher_lag(history: &[Entry], ctx: &Context, verdict: &mut Verdict) {
    let Some(end) = phase(history, Phase::End, 0) else {
        return;
    };
    let end_ms = history[end].t_ms;
    // A watch event takes a network delay; a publication committed just after the list of a
    // relist (a quiet watch is renewed every 30 s) comes with the list's answer, the watch
    // request and its event: three, and one more for the commit's own answer to be recorded.
    let base_ms = ms(ctx.watch_delay_max) + 4 * ms(ctx.network_delay_max) + ELECTION_SLACK_MS;
    let recovery_ms = watcher_recovery_ms();
    let spans = closed_spans(history, end_ms);
    let publications: Vec<(usize, u64, u64, &String)> = history
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| match job_event(entry)? {
            Event::Published { term, leader } => Some((index, entry.t_ms, *term, leader)),
            _ => None,
        })
        .collect();
    let mut views: BTreeMap<&str, Vec<View<'_>>> = BTreeMap::new();
    for (index, entry) in history[..end].iter().enumerate() {
        if let Some(HarnessEvent::Leader { leader }) = harness_event(entry) {
            views.entry(entry.node.as_str()).or_default().push((
                index,
                entry.t_ms,
                leader.as_ref(),
            ));
        }
    }
    let (mut judged, mut lag_max_ms) = (0u64, 0u64);
    for &(published_index, published_ms, term, leader) in &publications {
        for (watcher, seen) in &views {
            // Judged once the watcher has shown it follows (a live observer may start late).
            if seen
                .first()
                .is_none_or(|(_, first_ms, _)| *first_ms > published_ms)
            {
                continue;
            }
            // Push the deadline past every fault that may have broken this watcher's watch.
            let mut deadline_ms = published_ms + base_ms;
            loop {
                let disturbed = spans
                    .iter()
                    .filter(|(fault, start, end)| {
                        *start <= deadline_ms
                            && *end + recovery_ms + base_ms > deadline_ms
                            && disturbs_watcher(fault, watcher)
                    })
                    .map(|(_, _, end)| *end + recovery_ms + base_ms)
                    .max();
                match disturbed {
                    Some(later) if later > deadline_ms => deadline_ms = later,
                    _ => break,
                }
            }
            let superseded = publications.iter().any(|&(index, t_ms, other, value)| {
                index != published_index
                    && t_ms <= deadline_ms
                    && (other > term
                        || (other == term && value != leader && index > published_index))
            });
            if superseded || deadline_ms > end_ms {
                continue;
            }
            judged += 1;
            let view_at = |t_ms: u64| {
                seen.iter()
                    .take_while(|(_, at, _)| *at <= t_ms)
                    .last()
                    .and_then(|(_, _, value)| *value)
            };
            // This value, or one published at a newer term (its write may be seen before its
            // `published` event is recorded, or without one, when its answer was lost).
            let current = view_at(deadline_ms).is_some_and(|value| {
                value == leader
                    || publications
                        .iter()
                        .any(|&(_, _, other, v)| v == value && other > term)
            });
            if !current {
                let index = seen
                    .iter()
                    .take_while(|(_, at, _)| *at <= deadline_ms)
                    .last()
                    .map(|(index, _, _)| *index);
                verdict.violations.push(Violation::new(
                    format!(
                        "{watcher} still saw the leader as {} at t={deadline_ms} ms although \
                             {leader:?} was published at t={published_ms} ms (term {term}): a \
                             watcher's view may lag a publication only by the watch delay and four \
                             network delays ({base_ms} ms), and by {recovery_ms} ms more after a fault \
                             that broke its watch",
                        view_at(deadline_ms).map_or_else(|| "none".to_owned(), |s| format!("{s:?}"))
                    ),
                    std::iter::once(published_index).chain(index).collect(),
                ));
            } else if deadline_ms == published_ms + base_ms {
                let caught_ms = seen
                    .iter()
                    .filter(|(_, at, value)| *at <= deadline_ms && *value == Some(leader))
                    .map(|(_, at, _)| *at)
                    .find(|at| {
                        seen.iter()
                            .filter(|(_, t, _)| *t > *at && *t <= deadline_ms)
                            .all(|(_, _, value)| *value == Some(leader))
                    });
                if let Some(caught_ms) = caught_ms {
                    lag_max_ms = lag_max_ms.max(caught_ms.saturating_sub(published_ms));
                }
            }
        }
    }
    verdict.figures.extend([
        figure("watcher_lags_judged", json!(judged)),
        figure("watcher_lag_max_ms", json!(lag_max_ms)),
    ]);
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
            messages[0].contains("no candidate believed it led within 3030 ms (until t=4030 ms)"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].contains("no checkpoint completed within 3230 ms"),
            "{}",
            messages[1]
        );
        assert_eq!(figure_of(&verdict, "elected_after_heal_ms"), &Value::Null);
    }

    #[test]
    fn a_leader_elected_too_late_breaks_liveness() {
        let mut b = Builder::default();
        let healed = b.phase(1000, Phase::Healed);
        b.granted(4031, A, 0);
        b.event(
            4100,
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
        assert_eq!(figure_of(&verdict, "elected_after_heal_ms"), &json!(3031));
        assert_eq!(
            figure_of(&verdict, "first_checkpoint_after_heal_ms"),
            &json!(3100)
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
        b.end(5500);
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

    /// A watcher that only catches up on the next change of its map lags a publication by more
    /// than the watch delay and four network delays (400 ms here); after a fault that broke its
    /// watch it has the recovery time on top. (`correct_run`'s observer saw term 1 at 2150 ms.)
    #[test]
    fn a_watcher_that_lags_a_publication_breaks_liveness() {
        let observed = |b: &mut Builder, t_ms: u64, term: u64| {
            b.harness(
                t_ms,
                "observer",
                HarnessEvent::Leader {
                    leader: Some(format!("term-{term},")),
                },
            )
        };
        let ctx = context(LockKind::Lease);
        let seen_term_1 = correct_run()
            .entries
            .iter()
            .position(|e| e.node == "observer")
            .unwrap();
        // Prompt: seen 150 ms after the publication.
        let mut b = correct_run();
        b.publish(3000, A, 2);
        observed(&mut b, 3152, 2);
        b.end(5000);
        let verdict = judge(&b.entries, &ctx, "liveness");
        assert!(verdict.ok(), "{}", messages(&verdict).join("\n"));
        assert_eq!(figure_of(&verdict, "watcher_lags_judged"), &json!(1));
        assert_eq!(figure_of(&verdict, "watcher_lag_max_ms"), &json!(150));

        // Late: seen 700 ms after, as a watcher refreshed only by the next renewal would be.
        let mut b = correct_run();
        let published = b.publish(3000, A, 2);
        observed(&mut b, 3702, 2);
        b.end(5000);
        let verdict = judge(&b.entries, &ctx, "liveness");
        assert_eq!(entries(&verdict), [vec![seen_term_1, published]]);
        assert!(
            messages(&verdict)[0].contains(
                "observer still saw the leader as \"term-1,\" at t=3402 ms although \"term-2,\" \
                 was published at t=3002 ms (term 2)"
            ),
            "{}",
            messages(&verdict)[0]
        );

        // The same lag right after an API server restart is within the recovery time.
        let mut b = correct_run();
        fault(&mut b, 2900, FaultAction::Start, 0, &Fault::ServerRestart);
        fault(&mut b, 2900, FaultAction::End, 0, &Fault::ServerRestart);
        b.publish(3000, A, 2);
        observed(&mut b, 3702, 2);
        b.end(60_000);
        let verdict = judge(&b.entries, &ctx, "liveness");
        assert!(verdict.ok(), "{}", messages(&verdict).join("\n"));

        // A candidate's crash is no excuse: it does not touch the watch.
        let mut b = correct_run();
        let crash = Fault::Crash { node: C.into() };
        fault(&mut b, 2900, FaultAction::Start, 0, &crash);
        fault(&mut b, 2950, FaultAction::End, 0, &crash);
        b.publish(3000, A, 2);
        observed(&mut b, 3702, 2);
        b.end(5000);
        assert_eq!(judge(&b.entries, &ctx, "liveness").violations.len(), 1);
    }

    /// A leader that stops gracefully releases the lock: a running standby takes it within one
    /// jittered retry period and five network delays (200 x 2.2 + 5 x 50 + 100 = 790 ms here).
    #[test]
    fn a_graceful_stop_without_a_prompt_hand_over_breaks_liveness() {
        let stop = Fault::Stop { node: A.into() };
        let run = |taken_ms: Option<u64>, other: Option<Fault>| {
            let mut b = Builder::default();
            for node in [A, B] {
                b.harness(0, node, HarnessEvent::Started {});
            }
            b.granted(10, A, 0);
            fault(&mut b, 1_000, FaultAction::Start, 0, &stop);
            if let Some(other) = &other {
                fault(&mut b, 1_000, FaultAction::Start, 1, other);
            }
            b.harness(1_000, A, HarnessEvent::Stopping {});
            b.event(1_010, A, Event::Revoked { term: 0 });
            let stopped = b.harness(1_020, A, HarnessEvent::Stopped { graceful: true });
            if let Some(taken_ms) = taken_ms {
                b.granted(taken_ms, B, 1);
            }
            fault(&mut b, 4_000, FaultAction::End, 0, &stop);
            b.phase(5_000, Phase::End);
            (
                judge(&b.entries, &context(LockKind::ConfigMap), "liveness"),
                stopped,
            )
        };
        let (verdict, _) = run(Some(1_700), None);
        assert!(verdict.ok(), "{}", messages(&verdict).join("\n"));
        assert_eq!(figure_of(&verdict, "hand_overs_judged"), &json!(1));
        // The lease ran out instead (2 s after the last renewal).
        let (verdict, stopped) = run(Some(2_100), None);
        assert_eq!(entries(&verdict), [vec![stopped]]);
        assert!(
            messages(&verdict)[0].contains(
                "node-a stopped gracefully as leader at t=1020 ms with node-b running, but no candidate believed it led within 790 ms (until t=1810 ms)"
            ),
            "{}",
            messages(&verdict)[0]
        );
        assert!(!run(None, None).0.ok());
        // Another fault in the window may slow the hand-over: not judged.
        let (verdict, _) = run(None, Some(cut(B)));
        assert_eq!(figure_of(&verdict, "hand_overs_judged"), &json!(0));
    }

    /// A clock drift within the bound the timing tolerates does not make renewals fail, so it
    /// cannot excuse a lost lease; beyond the bound (the timing assumptions broken) it can.
    #[test]
    fn a_drift_within_the_bound_does_not_excuse_a_lost_lease() {
        let drift = Fault::Drift {
            node: A.into(),
            ppm: 20_000,
        };
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 1_000, FaultAction::Start, 0, &drift);
        let lost = b.event(2_000, A, Event::Revoked { term: 0 });
        let mut ctx = context(LockKind::ConfigMap);
        assert_eq!(entries(&judge(&b.entries, &ctx, "liveness")), [vec![lost]]);
        ctx.overlap_allowed = true;
        assert!(judge(&b.entries, &ctx, "liveness").ok());
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
    /// lease 1500 (2 s honoured: the record's whole seconds), deadline 1000, retry 200; the
    /// window looked back over is 3400 ms.
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
        // Network delays of at most 10 ms: errors for up to R' - I - 28 net = 950 - 200 - 280
        // = 470 ms (R' the deadline less the 5% drift bound) are ridden out by trying again
        // sooner than a retry period once the deadline is near.
        let ctx = Context {
            network_delay_max: Duration::from_millis(10),
            ..context(LockKind::ConfigMap)
        };
        let mut b = Builder::default();
        b.granted(10, A, 0);
        fault(&mut b, 2_000, FaultAction::Start, 0, blip);
        fault(&mut b, 2_100, FaultAction::End, 0, blip);
        // A standby cut off changes nothing for the leader.
        fault(&mut b, 2_200, FaultAction::Start, 1, &cut(B));
        let lost = b.event(3_100, A, Event::Revoked { term: 0 });
        let verdict = judge(&b.entries, &ctx, "liveness");
        assert_eq!(entries(&verdict), [vec![lost]]);
        assert!(
            verdict.violations[0]
                .message
                .contains("node-a lost leadership (term 0) at t=3100 ms although since t=0 ms"),
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
        let verdict = judge(&b.entries, &ctx, "liveness");
        assert!(verdict.ok(), "{:?}", verdict.violations);

        // The leader granted at 10 ms, errors from 2 s for `for_ms`, and a loss at 3.1 s.
        let lost_after_errors = |for_ms: u64, ctx: &Context| {
            let mut b = Builder::default();
            b.granted(10, A, 0);
            fault(&mut b, 2_000, FaultAction::Start, 0, blip);
            fault(&mut b, 2_000 + for_ms, FaultAction::End, 0, blip);
            b.event(3_100, A, Event::Revoked { term: 0 });
            judge(&b.entries, ctx, "liveness")
        };
        // Errors for two retry periods still leave room for an attempt after them.
        let verdict = lost_after_errors(400, &ctx);
        assert_eq!(figure_of(&verdict, "needless_losses"), &json!(1));
        // Errors for longer may cost the lease.
        let verdict = lost_after_errors(600, &ctx);
        assert!(verdict.ok(), "{:?}", verdict.violations);
        // With the context's 50 ms network delays even a brief blip may cost this short lease.
        let verdict = lost_after_errors(100, &context(LockKind::ConfigMap));
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
