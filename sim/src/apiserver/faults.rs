//! The API server's fault decisions: for each request, a seeded draw over the faults in force
//! ([`Faults`], whose vocabulary lives in `khaos_reports::faults::server` because schedules,
//! histories and checkers speak it too), so the same seed and the same requests break the same
//! way.
//!
//! ```
//! use khaos_sim::apiserver::faults::{Action, decide};
//! use khaos_sim::apiserver::{ErrorRule, Faults, RequestInfo, RequestVerb, Rule};
//! use rand::SeedableRng;
//!
//! // Every renew (update) from "candidate-a" gets a 500; everything else is served.
//! let faults = Faults {
//!     errors: vec![ErrorRule { code: 500, ..ErrorRule::on(Rule::verbs(&[RequestVerb::Update]).for_client("candidate-a")) }],
//!     ..Faults::default()
//! };
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let renew = RequestInfo { verb: RequestVerb::Update, client: "candidate-a/1", name: Some("lock") };
//! assert!(matches!(decide(&faults, &mut rng, &renew).action, Action::Fail(_)));
//! let read = RequestInfo { verb: RequestVerb::Get, client: "candidate-a/1", name: Some("lock") };
//! assert!(matches!(decide(&faults, &mut rng, &read).action, Action::Proceed));
//! ```

use std::time::Duration;

use rand::Rng;

pub use khaos_reports::faults::server::*;

use super::status::ApiError;

/// What to do with a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Serve it.
    Proceed,
    /// Never answer.
    Hang,
    /// Answer with this error without touching the store.
    Fail(ApiError),
    /// Commit it, then report this instead of the success.
    CommitThenLose(AmbiguousOutcome),
}

/// The decision for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Latency to add before acting.
    pub latency: Duration,
    /// What to do.
    pub action: Action,
}

/// The per-watch plan drawn when a watch starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchPlan {
    /// Delay before each delivery.
    pub delay: Duration,
    /// Close the stream after this many events.
    pub close_after_events: Option<u32>,
    /// Whether bookmarks may be sent.
    pub bookmarks: bool,
}

/// Decide what happens to one request. Deterministic in `rng`'s state and the request.
pub fn decide(faults: &Faults, rng: &mut impl Rng, request: &RequestInfo<'_>) -> Decision {
    let latency = faults
        .latency
        .iter()
        .find(|l| hits(&l.rule, rng, request))
        .map_or(Duration::ZERO, |l| {
            Duration::from_millis(rng.random_range(l.min_ms..=l.max_ms))
        });
    let action = if faults.hang.iter().any(|r| hits(r, rng, request)) {
        Action::Hang
    } else if let Some(rule) = faults.errors.iter().find(|r| hits(&r.rule, rng, request)) {
        Action::Fail(error_of(rule))
    } else if let Some(rule) = faults
        .ambiguous
        .iter()
        .find(|r| request.verb.is_write() && hits(&r.rule, rng, request))
    {
        Action::CommitThenLose(rule.outcome)
    } else {
        Action::Proceed
    };
    Decision { latency, action }
}

/// Draw the plan for a new watch.
pub fn watch_plan(faults: &Faults, rng: &mut impl Rng) -> WatchPlan {
    let delay_ms = match faults.watch.delay_ms_max {
        0 => 0,
        max => rng.random_range(faults.watch.delay_ms_min.min(max)..=max),
    };
    WatchPlan {
        delay: Duration::from_millis(delay_ms),
        close_after_events: faults
            .watch
            .close_after_events_max
            .map(|max| rng.random_range(1..=max.max(1))),
        bookmarks: !faults.watch.no_bookmarks,
    }
}

/// The revision a `resourceVersion=0` read is served at, given the current and compacted
/// revisions; `None` when reads are fresh.
pub fn stale_revision(
    faults: &Faults,
    rng: &mut impl Rng,
    current: u64,
    compacted: u64,
) -> Option<u64> {
    let stale = faults.stale_reads.as_ref()?;
    let lag = rng.random_range(
        stale.lag_revisions_min.min(stale.lag_revisions_max)..=stale.lag_revisions_max,
    );
    Some(current.saturating_sub(lag).max(compacted))
}

/// Whether `rule` hits this request. Draws from `rng` only for matching requests with a
/// probability strictly between 0 and 1. All rules share the server's one stream, so a change to
/// the faults changes later draws for every client: replays need the same faults.
fn hits(rule: &Rule, rng: &mut impl Rng, request: &RequestInfo<'_>) -> bool {
    if !rule.matches(request) || rule.probability <= 0.0 {
        return false;
    }
    rule.probability >= 1.0 || rng.random_bool(rule.probability)
}

/// The answer an error rule gives.
fn error_of(rule: &ErrorRule) -> ApiError {
    match rule.code {
        429 => ApiError::too_many_requests(rule.retry_after_seconds),
        503 => ApiError::service_unavailable(),
        504 => ApiError::timeout(),
        _ => ApiError::internal("etcdserver: request timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const UPDATE: RequestInfo<'static> = RequestInfo {
        verb: RequestVerb::Update,
        client: "a",
        name: None,
    };

    #[test]
    fn no_faults_always_proceeds() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let decision = decide(&Faults::none(), &mut rng, &UPDATE);
        assert_eq!(
            decision,
            Decision {
                latency: Duration::ZERO,
                action: Action::Proceed
            }
        );
    }

    #[test]
    fn decisions_replay_from_the_seed() {
        let faults = Faults {
            latency: vec![LatencyRule {
                min_ms: 1,
                max_ms: 500,
                ..LatencyRule::default()
            }],
            errors: vec![ErrorRule {
                code: 429,
                ..ErrorRule::on(Rule::always().with_probability(0.3))
            }],
            ..Faults::default()
        };
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..100)
                .map(|_| decide(&faults, &mut rng, &UPDATE))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
        let failures = run(9)
            .iter()
            .filter(|d| matches!(d.action, Action::Fail(_)))
            .count();
        assert!((10..=50).contains(&failures), "{failures} of 100 at p=0.3");
    }

    #[test]
    fn writes_fail_spares_reads_and_other_clients() {
        let faults = Faults::writes_fail(&["a"]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(
            matches!(decide(&faults, &mut rng, &UPDATE).action, Action::Fail(ref e) if e.code() == 500)
        );
        let get = RequestInfo {
            verb: RequestVerb::Get,
            client: "a",
            name: None,
        };
        assert_eq!(decide(&faults, &mut rng, &get).action, Action::Proceed);
        let other = RequestInfo {
            verb: RequestVerb::Update,
            client: "b",
            name: None,
        };
        assert_eq!(decide(&faults, &mut rng, &other).action, Action::Proceed);
    }

    #[test]
    fn name_prefixes_narrow_a_rule_to_objects() {
        let faults = Faults {
            errors: vec![ErrorRule::on(Rule::always().for_name("demo-cluster-"))],
            ..Faults::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let on = |name| RequestInfo { name, ..UPDATE };
        let lock = decide(&faults, &mut rng, &on(Some("demo-cluster-config-map")));
        assert!(matches!(lock.action, Action::Fail(_)));
        let job = decide(&faults, &mut rng, &on(Some("demo-job-config-map")));
        assert_eq!(job.action, Action::Proceed);
        assert_eq!(decide(&faults, &mut rng, &on(None)).action, Action::Proceed);
    }

    #[test]
    fn ambiguous_commits_only_touch_writes() {
        let faults = Faults {
            ambiguous: vec![AmbiguousRule {
                rule: Rule::always(),
                outcome: AmbiguousOutcome::Timeout,
            }],
            ..Faults::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            decide(&faults, &mut rng, &UPDATE).action,
            Action::CommitThenLose(AmbiguousOutcome::Timeout)
        );
        let list = RequestInfo {
            verb: RequestVerb::List,
            client: "a",
            name: None,
        };
        assert_eq!(decide(&faults, &mut rng, &list).action, Action::Proceed);
    }

    #[test]
    fn stale_reads_never_reach_before_compaction() {
        let faults = Faults {
            stale_reads: Some(StaleReads {
                lag_revisions_min: 0,
                lag_revisions_max: 100,
            }),
            ..Faults::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..100 {
            let revision = stale_revision(&faults, &mut rng, 50, 40).unwrap();
            assert!((40..=50).contains(&revision));
        }
        assert_eq!(stale_revision(&Faults::none(), &mut rng, 50, 40), None);
    }
}
