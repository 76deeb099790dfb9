//! Faults the API server injects: plain data saying what to break, and a seeded decision per
//! request, so the same seed and the same requests break the same way.
//!
//! ```
//! use khaos_sim::apiserver::{Faults, ErrorRule, Rule, RequestVerb, RequestInfo, Action};
//! use rand::SeedableRng;
//!
//! // Every renew (update) from "candidate-a" gets a 500; everything else is served.
//! let faults = Faults {
//!     errors: vec![ErrorRule { code: 500, ..ErrorRule::on(Rule::verbs(&[RequestVerb::Update]).for_client("candidate-a")) }],
//!     ..Faults::default()
//! };
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let renew = RequestInfo { verb: RequestVerb::Update, client: "candidate-a/1", name: Some("lock") };
//! assert!(matches!(faults.decide(&mut rng, &renew).action, Action::Fail(_)));
//! let read = RequestInfo { verb: RequestVerb::Get, client: "candidate-a/1", name: Some("lock") };
//! assert!(matches!(faults.decide(&mut rng, &read).action, Action::Proceed));
//! ```

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::status::ApiError;

/// How long a request told to hang is held at most (then it gets a 504), so that no request lives
/// forever in a long run.
pub const HANG_MS_MAX: u64 = 10 * 60 * 1000;

/// The Kubernetes verb of a request, as RBAC and the audit log name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestVerb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl RequestVerb {
    /// Whether the verb writes.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            RequestVerb::Create | RequestVerb::Update | RequestVerb::Patch | RequestVerb::Delete
        )
    }

    /// The verbs that write.
    pub const WRITES: [RequestVerb; 4] = [
        RequestVerb::Create,
        RequestVerb::Update,
        RequestVerb::Patch,
        RequestVerb::Delete,
    ];
}

/// What a fault needs to know about a request to decide whether it applies.
#[derive(Clone, Copy, Debug)]
pub struct RequestInfo<'a> {
    /// The verb.
    pub verb: RequestVerb,
    /// The client's identity (its User-Agent).
    pub client: &'a str,
    /// The object's name, if the request names one.
    pub name: Option<&'a str>,
}

/// Which requests a fault applies to, and how often.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rule {
    /// The chance, in `[0, 1]`, that a matching request is hit.
    pub probability: f64,
    /// The verbs it applies to; empty means all.
    pub verbs: Vec<RequestVerb>,
    /// Client identity prefixes it applies to (`kubectl` matches `kubectl/v1.32.4 ...`); empty
    /// means all clients.
    pub clients: Vec<String>,
    /// Object name prefixes it applies to (requests that name an object); empty means all
    /// requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            probability: 1.0,
            verbs: Vec::new(),
            clients: Vec::new(),
            names: Vec::new(),
        }
    }
}

impl Rule {
    /// Every request, always.
    pub fn always() -> Rule {
        Rule::default()
    }

    /// These verbs, always.
    pub fn verbs(verbs: &[RequestVerb]) -> Rule {
        Rule {
            verbs: verbs.to_vec(),
            ..Rule::default()
        }
    }

    /// Only for clients whose identity starts with `prefix`.
    #[must_use]
    pub fn for_client(mut self, prefix: &str) -> Rule {
        self.clients.push(prefix.to_owned());
        self
    }

    /// Only for requests that name an object whose name starts with `prefix`.
    #[must_use]
    pub fn for_name(mut self, prefix: &str) -> Rule {
        self.names.push(prefix.to_owned());
        self
    }

    /// Only with this probability.
    #[must_use]
    pub fn with_probability(mut self, probability: f64) -> Rule {
        self.probability = probability;
        self
    }

    fn matches(&self, request: &RequestInfo<'_>) -> bool {
        (self.verbs.is_empty() || self.verbs.contains(&request.verb))
            && (self.clients.is_empty()
                || self.clients.iter().any(|c| request.client.starts_with(c)))
            && (self.names.is_empty()
                || request
                    .name
                    .is_some_and(|name| self.names.iter().any(|n| name.starts_with(n))))
    }

    /// Whether the rule hits this request. Draws from `rng` only for matching requests with a
    /// probability strictly between 0 and 1. All rules share the server's one stream, so a change
    /// to the faults changes later draws for every client: replays need the same faults.
    fn hits(&self, rng: &mut impl Rng, request: &RequestInfo<'_>) -> bool {
        if !self.matches(request) || self.probability <= 0.0 {
            return false;
        }
        self.probability >= 1.0 || rng.random_bool(self.probability)
    }

    fn validate(&self, what: &str) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!(
                "{what}: probability {} is outside [0, 1]",
                self.probability
            ));
        }
        Ok(())
    }
}

/// Extra latency on matching requests, uniform in `[min_ms, max_ms]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyRule {
    /// Which requests (`"when"` in JSON).
    #[serde(rename = "when")]
    pub rule: Rule,
    /// The least added latency.
    pub min_ms: u64,
    /// The most added latency.
    pub max_ms: u64,
}

/// An error answer instead of the real one: 429, 500, 503 or 504.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorRule {
    /// Which requests (`"when"` in JSON).
    #[serde(rename = "when")]
    pub rule: Rule,
    /// The HTTP code: 429, 500, 503 or 504.
    pub code: u16,
    /// `Retry-After` for a 429.
    pub retry_after_seconds: u32,
}

impl Default for ErrorRule {
    fn default() -> Self {
        ErrorRule {
            rule: Rule::default(),
            code: 500,
            retry_after_seconds: 1,
        }
    }
}

impl ErrorRule {
    /// A 500 on the requests `rule` selects; set `code` to change it.
    pub fn on(rule: Rule) -> ErrorRule {
        ErrorRule {
            rule,
            ..ErrorRule::default()
        }
    }

    fn error(&self) -> ApiError {
        match self.code {
            429 => ApiError::too_many_requests(self.retry_after_seconds),
            503 => ApiError::service_unavailable(),
            504 => ApiError::timeout(),
            _ => ApiError::internal("etcdserver: request timed out"),
        }
    }
}

/// What the client sees of a write that committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AmbiguousOutcome {
    /// The connection is closed without a response.
    ConnectionLost,
    /// A 504 Timeout.
    Timeout,
    /// A 500 InternalError.
    InternalError,
}

/// A write that commits and then reports failure: the client cannot tell whether it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmbiguousRule {
    /// Which requests (`"when"` in JSON; only writes are ever affected).
    #[serde(rename = "when")]
    pub rule: Rule,
    /// What the client sees instead of the success.
    pub outcome: AmbiguousOutcome,
}

impl Default for AmbiguousRule {
    fn default() -> Self {
        AmbiguousRule {
            rule: Rule::verbs(&RequestVerb::WRITES),
            outcome: AmbiguousOutcome::ConnectionLost,
        }
    }
}

/// Faults on watch streams.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchFaults {
    /// Each watch is given a delay uniform in `[delay_ms_min, delay_ms_max]`, applied before
    /// each delivery.
    pub delay_ms_min: u64,
    /// See `delay_ms_min`; 0 turns the delay off.
    pub delay_ms_max: u64,
    /// When set, each watch is closed after a number of events uniform in `[1, n]`.
    pub close_after_events_max: Option<u32>,
    /// Send no BOOKMARK events even when asked for.
    pub no_bookmarks: bool,
}

/// Reads at `resourceVersion=0` served from a lagging cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaleReads {
    /// The cache lags by at least this many revisions.
    pub lag_revisions_min: u64,
    /// The cache lags by at most this many revisions (the lag is uniform in
    /// `[lag_revisions_min, lag_revisions_max]`, and never reaches before the compacted revision).
    pub lag_revisions_max: u64,
}

/// Every fault the server can inject, all off by default. Switchable at run time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added latency (first matching rule).
    pub latency: Vec<LatencyRule>,
    /// Requests that never get an answer (held until restart or [`HANG_MS_MAX`]).
    pub hang: Vec<Rule>,
    /// Error answers (first matching rule that hits). A rule on write verbs only is the
    /// "reads succeed but writes fail" fault; see [`Faults::writes_fail`].
    pub errors: Vec<ErrorRule>,
    /// Writes that commit and then report failure.
    pub ambiguous: Vec<AmbiguousRule>,
    /// Watch stream faults.
    pub watch: WatchFaults,
    /// Stale `resourceVersion=0` reads.
    pub stale_reads: Option<StaleReads>,
}

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

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Writes fail with a 500 for clients whose identity starts with one of `clients` (all clients
    /// when empty); reads succeed.
    pub fn writes_fail(clients: &[&str]) -> Faults {
        Faults {
            errors: vec![ErrorRule::on(Rule {
                clients: clients.iter().map(|c| (*c).to_owned()).collect(),
                ..Rule::verbs(&RequestVerb::WRITES)
            })],
            ..Faults::default()
        }
    }

    /// Check the settings, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.latency.iter().enumerate() {
            rule.rule.validate(&format!("latency[{i}]"))?;
            if rule.min_ms > rule.max_ms {
                return Err(format!(
                    "latency[{i}]: min_ms {} is above max_ms {}",
                    rule.min_ms, rule.max_ms
                ));
            }
        }
        for (i, rule) in self.hang.iter().enumerate() {
            rule.validate(&format!("hang[{i}]"))?;
        }
        for (i, rule) in self.errors.iter().enumerate() {
            rule.rule.validate(&format!("errors[{i}]"))?;
            if ![429, 500, 503, 504].contains(&rule.code) {
                return Err(format!(
                    "errors[{i}]: code {} is not one of 429, 500, 503, 504",
                    rule.code
                ));
            }
        }
        for (i, rule) in self.ambiguous.iter().enumerate() {
            rule.rule.validate(&format!("ambiguous[{i}]"))?;
        }
        if self.watch.delay_ms_min > self.watch.delay_ms_max {
            return Err(format!(
                "watch: delay_ms_min {} is above delay_ms_max {}",
                self.watch.delay_ms_min, self.watch.delay_ms_max
            ));
        }
        if let Some(stale) = &self.stale_reads
            && stale.lag_revisions_min > stale.lag_revisions_max
        {
            return Err(format!(
                "stale_reads: lag_revisions_min {} is above lag_revisions_max {}",
                stale.lag_revisions_min, stale.lag_revisions_max
            ));
        }
        if self.watch.close_after_events_max == Some(0) {
            return Err("watch.close_after_events_max must be at least 1".into());
        }
        Ok(())
    }

    /// Decide what happens to one request. Deterministic in `rng`'s state and the request.
    pub fn decide(&self, rng: &mut impl Rng, request: &RequestInfo<'_>) -> Decision {
        let latency = self
            .latency
            .iter()
            .find(|l| l.rule.hits(rng, request))
            .map_or(Duration::ZERO, |l| {
                Duration::from_millis(rng.random_range(l.min_ms..=l.max_ms))
            });
        let action = if self.hang.iter().any(|r| r.hits(rng, request)) {
            Action::Hang
        } else if let Some(rule) = self.errors.iter().find(|r| r.rule.hits(rng, request)) {
            Action::Fail(rule.error())
        } else if let Some(rule) = self
            .ambiguous
            .iter()
            .find(|r| request.verb.is_write() && r.rule.hits(rng, request))
        {
            Action::CommitThenLose(rule.outcome)
        } else {
            Action::Proceed
        };
        Decision { latency, action }
    }

    /// Draw the plan for a new watch.
    pub fn watch_plan(&self, rng: &mut impl Rng) -> WatchPlan {
        let delay_ms = match self.watch.delay_ms_max {
            0 => 0,
            max => rng.random_range(self.watch.delay_ms_min.min(max)..=max),
        };
        WatchPlan {
            delay: Duration::from_millis(delay_ms),
            close_after_events: self
                .watch
                .close_after_events_max
                .map(|max| rng.random_range(1..=max.max(1))),
            bookmarks: !self.watch.no_bookmarks,
        }
    }

    /// The revision a `resourceVersion=0` read is served at, given the current and compacted
    /// revisions; `None` when reads are fresh.
    pub fn stale_revision(&self, rng: &mut impl Rng, current: u64, compacted: u64) -> Option<u64> {
        let stale = self.stale_reads.as_ref()?;
        let lag = rng.random_range(
            stale.lag_revisions_min.min(stale.lag_revisions_max)..=stale.lag_revisions_max,
        );
        Some(current.saturating_sub(lag).max(compacted))
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
        let decision = Faults::none().decide(&mut rng, &UPDATE);
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
                .map(|_| faults.decide(&mut rng, &UPDATE))
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
            matches!(faults.decide(&mut rng, &UPDATE).action, Action::Fail(ref e) if e.code() == 500)
        );
        let get = RequestInfo {
            verb: RequestVerb::Get,
            client: "a",
            name: None,
        };
        assert_eq!(faults.decide(&mut rng, &get).action, Action::Proceed);
        let other = RequestInfo {
            verb: RequestVerb::Update,
            client: "b",
            name: None,
        };
        assert_eq!(faults.decide(&mut rng, &other).action, Action::Proceed);
    }

    #[test]
    fn name_prefixes_narrow_a_rule_to_objects() {
        let faults = Faults {
            errors: vec![ErrorRule::on(Rule::always().for_name("demo-cluster-"))],
            ..Faults::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let on = |name| RequestInfo { name, ..UPDATE };
        let lock = faults.decide(&mut rng, &on(Some("demo-cluster-config-map")));
        assert!(matches!(lock.action, Action::Fail(_)));
        let job = faults.decide(&mut rng, &on(Some("demo-job-config-map")));
        assert_eq!(job.action, Action::Proceed);
        assert_eq!(faults.decide(&mut rng, &on(None)).action, Action::Proceed);
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
            faults.decide(&mut rng, &UPDATE).action,
            Action::CommitThenLose(AmbiguousOutcome::Timeout)
        );
        let list = RequestInfo {
            verb: RequestVerb::List,
            client: "a",
            name: None,
        };
        assert_eq!(faults.decide(&mut rng, &list).action, Action::Proceed);
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let faults = Faults {
            errors: vec![ErrorRule {
                code: 418,
                ..ErrorRule::default()
            }],
            ..Faults::default()
        };
        assert_eq!(
            faults.validate().unwrap_err(),
            "errors[0]: code 418 is not one of 429, 500, 503, 504"
        );
        let faults = Faults {
            hang: vec![Rule::always().with_probability(2.0)],
            ..Faults::default()
        };
        assert!(
            faults
                .validate()
                .unwrap_err()
                .starts_with("hang[0]: probability 2")
        );
    }

    #[test]
    fn faults_round_trip_through_json() {
        let faults: Faults = serde_json::from_str(
            r#"{"errors": [{"code": 503, "when": {"verbs": ["update"], "clients": ["leader"], "probability": 0.5}}],
                "watch": {"delay_ms_max": 200}}"#,
        )
        .unwrap();
        assert_eq!(faults.errors[0].code, 503);
        assert_eq!(faults.errors[0].rule.verbs, [RequestVerb::Update]);
        let error = serde_json::from_str::<Faults>(r#"{"errorz": []}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `errorz`"),
            "{error}"
        );
        let error = serde_json::from_str::<Faults>(r#"{"errors": [{"when": {"verb": ["get"]}}]}"#)
            .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `verb`"),
            "{error}"
        );
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
            let revision = faults.stale_revision(&mut rng, 50, 40).unwrap();
            assert!((40..=50).contains(&revision));
        }
        assert_eq!(Faults::none().stale_revision(&mut rng, 50, 40), None);
    }
}
