//! The API server's faults as data: which requests a rule selects (verb, client, object name,
//! probability) and what it does to them (latency, a hang, an error, an ambiguous commit), plus
//! watch faults and stale reads. The simulated server draws its decisions from these
//! (`khaos_sim::apiserver::faults`); a schedule carries them (`Fault::Server`); the history records
//! them; the needless-loss rule of the liveness checker reads them. So the vocabulary lives here,
//! below all three.
//!
//! ```
//! use khaos_reports::faults::server::{ErrorRule, Faults, RequestInfo, RequestVerb, Rule};
//! // Every renewal (update) from "candidate-a" gets a 500.
//! let faults = Faults {
//!     errors: vec![ErrorRule { code: 500, ..ErrorRule::on(Rule::verbs(&[RequestVerb::Update]).for_client("candidate-a")) }],
//!     ..Faults::default()
//! };
//! faults.validate()?;
//! let renew = RequestInfo { verb: RequestVerb::Update, client: "candidate-a/1", name: Some("lock") };
//! assert!(faults.errors[0].rule.matches(&renew));
//! let read = RequestInfo { verb: RequestVerb::Get, ..renew };
//! assert!(!faults.errors[0].rule.matches(&read));
//! # Ok::<(), String>(())
//! ```

use serde::{Deserialize, Serialize};

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

    /// Whether the rule selects `request` (its verb, client and name; not its probability).
    pub fn matches(&self, request: &RequestInfo<'_>) -> bool {
        (self.verbs.is_empty() || self.verbs.contains(&request.verb))
            && (self.clients.is_empty()
                || self.clients.iter().any(|c| request.client.starts_with(c)))
            && (self.names.is_empty()
                || request
                    .name
                    .is_some_and(|name| self.names.iter().any(|n| name.starts_with(n))))
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

    /// Every rule, of every kind.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.latency
            .iter()
            .map(|r| &r.rule)
            .chain(self.hang.iter())
            .chain(self.errors.iter().map(|r| &r.rule))
            .chain(self.ambiguous.iter().map(|r| &r.rule))
    }

    /// Every rule, of every kind, to change (an executor resolving the roles it names).
    pub fn rules_mut(&mut self) -> impl Iterator<Item = &mut Rule> {
        self.latency
            .iter_mut()
            .map(|r| &mut r.rule)
            .chain(self.hang.iter_mut())
            .chain(self.errors.iter_mut().map(|r| &mut r.rule))
            .chain(self.ambiguous.iter_mut().map(|r| &mut r.rule))
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn name_prefixes_narrow_a_rule_to_objects() {
        let rule = Rule::always().for_name("demo-cluster-");
        let on = |name| RequestInfo {
            verb: RequestVerb::Update,
            client: "a",
            name,
        };
        assert!(rule.matches(&on(Some("demo-cluster-config-map"))));
        assert!(!rule.matches(&on(Some("demo-job-config-map"))));
        assert!(!rule.matches(&on(None)));
    }
}
