//! The CAS race: kube-rs clients racing compare-and-swap increments of one ConfigMap through the
//! simulated API server, under faults drawn from a seed; a checker then decides from the server's
//! commit history and the clients' own records whether any increment was lost.
//!
//! It is the smoke test of the simulated world (real client, simulated TCP, faults, determinism)
//! and the first scenario khaos ran (`khaos sim race`).
//!
//! ```
//! use khaos_sim::race::{self, RaceConfig};
//! let report = race::run(7, &RaceConfig { clients: 2, increments: 3, ..RaceConfig::default() });
//! assert!(report.verdict.is_ok(), "{}", report.summary());
//! // The same seed gives the same history, byte for byte.
//! assert_eq!(report.history, race::run(7, &RaceConfig { clients: 2, increments: 3, ..RaceConfig::default() }).history);
//! ```

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::apiserver::{
    AmbiguousOutcome, AmbiguousRule, ApiServer, Clock, ErrorRule, Faults, LatencyRule, RequestVerb,
    Rule, ServerConfig,
};
use crate::transport::{self, ClientConfig};

const COUNTER: &str = "counter";
const KEY: &str = "value";

/// The attempts one increment may take before the client gives up on it.
const ATTEMPTS_PER_INCREMENT_MAX: usize = 100;

/// How long a run may last in simulated time; a run that needs longer is reported as stuck.
const SIMULATED_DURATION_MAX: Duration = Duration::from_secs(3600);

/// A deliberately faulty client, to show the checker firing. Never on by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// Replace without a resourceVersion: a blind write, which loses concurrent increments.
    BlindWrites,
}

impl FromStr for Flaw {
    type Err = String;

    fn from_str(s: &str) -> Result<Flaw, String> {
        match s {
            "blind-writes" => Ok(Flaw::BlindWrites),
            other => Err(format!(
                "unknown flaw {other:?}; the flaws are: blind-writes"
            )),
        }
    }
}

/// Settings of a race.
#[derive(Clone, Debug)]
pub struct RaceConfig {
    /// Contending clients.
    pub clients: usize,
    /// Increments each client makes.
    pub increments: usize,
    /// A flaw to switch on.
    pub flaw: Option<Flaw>,
}

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig {
            clients: 3,
            increments: 20,
            flaw: None,
        }
    }
}

impl RaceConfig {
    /// Check the settings, naming the bad one and its range.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=64).contains(&self.clients) {
            return Err(format!("--clients {} is outside 1..=64", self.clients));
        }
        if !(1..=10_000).contains(&self.increments) {
            return Err(format!(
                "--increments {} is outside 1..=10000",
                self.increments
            ));
        }
        Ok(())
    }
}

/// The faults a seed switched on (swarm testing: each class is on or off per seed).
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Faults inside the API server.
    pub server: Faults,
    /// Partitions: (client index, start, duration).
    pub partitions: Vec<(usize, Duration, Duration)>,
    /// API server restarts (host bounces) at these times.
    pub restarts: Vec<Duration>,
}

impl FaultPlan {
    /// Draw the plan for `seed`.
    pub fn draw(seed: u64, clients: usize) -> FaultPlan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b68_616f_735f_7261);
        let mut server = Faults::default();
        if rng.random_bool(0.5) {
            server.latency.push(LatencyRule {
                min_ms: 0,
                max_ms: rng.random_range(1..=100),
                ..LatencyRule::default()
            });
        }
        if rng.random_bool(0.5) {
            let code = [429, 500, 503, 504][rng.random_range(0..4)];
            let rule = Rule::verbs(&[RequestVerb::Get, RequestVerb::Update])
                .with_probability(rng.random_range(0.01..0.2));
            server.errors.push(ErrorRule {
                code,
                ..ErrorRule::on(rule)
            });
        }
        if rng.random_bool(0.5) {
            let outcome = [
                AmbiguousOutcome::ConnectionLost,
                AmbiguousOutcome::Timeout,
                AmbiguousOutcome::InternalError,
            ][rng.random_range(0..3)];
            let rule =
                Rule::verbs(&[RequestVerb::Update]).with_probability(rng.random_range(0.01..0.2));
            server.ambiguous.push(AmbiguousRule { rule, outcome });
        }
        if rng.random_bool(0.25) {
            server
                .hang
                .push(Rule::verbs(&[RequestVerb::Update]).with_probability(0.02));
        }
        let mut partitions = Vec::new();
        if rng.random_bool(0.5) {
            for _ in 0..rng.random_range(1..=4) {
                let start = Duration::from_millis(rng.random_range(0..20_000));
                let length = Duration::from_millis(rng.random_range(500..15_000));
                partitions.push((rng.random_range(0..clients), start, length));
            }
        }
        let mut restarts = Vec::new();
        if rng.random_bool(0.3) {
            for _ in 0..rng.random_range(1..=2) {
                restarts.push(Duration::from_millis(rng.random_range(0..20_000)));
            }
        }
        FaultPlan {
            server,
            partitions,
            restarts,
        }
    }

    /// One line naming what is on.
    pub fn describe(&self) -> String {
        let mut on = Vec::new();
        if !self.server.latency.is_empty() {
            on.push("latency");
        }
        if !self.server.errors.is_empty() {
            on.push("errors");
        }
        if !self.server.ambiguous.is_empty() {
            on.push("ambiguous-commits");
        }
        if !self.server.hang.is_empty() {
            on.push("hangs");
        }
        if !self.partitions.is_empty() {
            on.push("partitions");
        }
        if !self.restarts.is_empty() {
            on.push("restarts");
        }
        if on.is_empty() {
            "none".into()
        } else {
            on.join(",")
        }
    }
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct RaceReport {
    /// The seed.
    pub seed: u64,
    /// The settings.
    pub config: RaceConfig,
    /// The faults the seed drew.
    pub plan: FaultPlan,
    /// The history: one JSON object a line, clients' operations then the server's commits.
    pub history: String,
    /// Increments acknowledged to their client.
    pub acknowledged: u64,
    /// Writes whose outcome the client could not know (timeout, 5xx, connection lost).
    pub ambiguous: u64,
    /// The counter's final value.
    pub final_value: u64,
    /// Simulated time the run took.
    pub elapsed: Duration,
    /// The checker's verdict: the first violation, naming the events that break it.
    pub verdict: Result<(), String>,
}

impl RaceReport {
    /// One line: seed, faults, counts, verdict.
    pub fn summary(&self) -> String {
        format!(
            "seed {:<20} faults {:<45} acknowledged {:>4} ambiguous {:>3} final {:>4} sim {:>7.1}s  {}",
            self.seed,
            self.plan.describe(),
            self.acknowledged,
            self.ambiguous,
            self.final_value,
            self.elapsed.as_secs_f64(),
            if self.verdict.is_ok() {
                "ok"
            } else {
                "VIOLATION"
            }
        )
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let flaw = match self.config.flaw {
            Some(Flaw::BlindWrites) => " --flaw blind-writes",
            None => "",
        };
        format!(
            "khaos sim race --seed {} --clients {} --increments {}{flaw} --history",
            self.seed, self.config.clients, self.config.increments
        )
    }
}

/// Draw a fresh seed from the operating system (the only unseeded randomness, printed at once).
#[allow(clippy::disallowed_methods)] // The one unseeded draw: it picks the seed, which is printed.
pub fn draw_seed() -> u64 {
    rand::rng().random()
}

/// One client operation in the history.
#[derive(Clone, Debug, serde::Serialize)]
struct Operation {
    at_ms: u128,
    client: String,
    /// invoke, ok, fail, info (outcome unknown).
    kind: &'static str,
    read_revision: String,
    value: u64,
    error: Option<String>,
}

/// Run one race.
pub fn run(seed: u64, config: &RaceConfig) -> RaceReport {
    let plan = FaultPlan::draw(seed, config.clients);
    let server = ApiServer::new(ServerConfig {
        seed,
        clock: Clock::Simulated {
            epoch: std::time::UNIX_EPOCH + Duration::from_secs(1_795_248_000),
        },
        record_commits: true,
        ..ServerConfig::default()
    });
    server.with_store(|store| {
        let ctx = crate::apiserver::WriteContext { client: "khaos-setup", now: "2026-11-21T00:00:00Z" };
        let counter = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": COUNTER}, "data": {KEY: "0"}});
        store.create(&ctx, crate::apiserver::Resource::ConfigMap, "default", counter).expect("a valid counter");
    });
    server
        .set_faults(plan.server.clone())
        .expect("drawn faults are valid");

    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(SIMULATED_DURATION_MAX)
        .build();
    let host_server = server.clone();
    sim.host("apiserver", move || {
        host_server.clone().serve_simulated(6443)
    });
    let operations: Arc<Mutex<Vec<Operation>>> = Arc::default();
    for index in 0..config.clients {
        let identity = format!("client-{index}");
        let operations = operations.clone();
        let (increments, flaw) = (config.increments, config.flaw);
        sim.client(identity.clone(), async move {
            let client = transport::client(
                ClientConfig::harness("apiserver:6443", &identity)
                    .request_timeout(Duration::from_secs(2)),
            );
            let api: Api<ConfigMap> = Api::namespaced(client, "default");
            for _ in 0..increments {
                increment(&api, &identity, flaw, &operations).await;
            }
            Ok(())
        });
    }

    let mut partitions = plan.partitions.clone();
    let mut restarts = plan.restarts.clone();
    let mut healed: Vec<(usize, Duration)> = Vec::new();
    let outcome = loop {
        let now = sim.elapsed();
        partitions.retain(|(client, start, length)| {
            if *start <= now {
                sim.partition(format!("client-{client}"), "apiserver");
                healed.push((*client, *start + *length));
                false
            } else {
                true
            }
        });
        healed.retain(|(client, end)| {
            if *end <= now {
                sim.repair(format!("client-{client}"), "apiserver");
                false
            } else {
                true
            }
        });
        restarts.retain(|at| {
            if *at <= now {
                // The host restarts (every connection drops) and its watch cache starts afresh.
                server.compact();
                sim.bounce("apiserver");
                false
            } else {
                true
            }
        });
        match sim.step() {
            Ok(true) => break Ok(()),
            Ok(false) => {}
            Err(error) => break Err(error.to_string()),
        }
    };
    let elapsed = sim.elapsed();
    drop(sim);

    let operations = std::mem::take(&mut *operations.lock().expect("not poisoned"));
    let commits = server.take_commits();
    let mut history = String::new();
    for operation in &operations {
        writeln!(
            history,
            "{}",
            serde_json::to_string(&json!({"op": operation})).expect("serialises")
        )
        .expect("writing to a String");
    }
    for commit in &commits {
        let value = commit.object["data"][KEY].as_str().unwrap_or("");
        let line = json!({"commit": {"revision": commit.revision, "verb": commit.verb, "client": commit.client, "value": value}});
        writeln!(history, "{line}").expect("writing to a String");
    }
    let acknowledged = operations.iter().filter(|o| o.kind == "ok").count() as u64;
    let ambiguous = operations.iter().filter(|o| o.kind == "info").count() as u64;
    let final_value = commits
        .iter()
        .rev()
        .find_map(|c| c.object["data"][KEY].as_str()?.parse().ok())
        .unwrap_or(0);
    let verdict = outcome
        .map_err(|e| format!("the simulation failed: {e}"))
        .and_then(|()| check(&operations, &commits, final_value));
    RaceReport {
        seed,
        config: config.clone(),
        plan,
        history,
        acknowledged,
        ambiguous,
        final_value,
        elapsed,
        verdict,
    }
}

/// One increment: read, write value + 1 with the read's resourceVersion, until acknowledged.
async fn increment(
    api: &Api<ConfigMap>,
    identity: &str,
    flaw: Option<Flaw>,
    operations: &Mutex<Vec<Operation>>,
) {
    let record = |kind: &'static str, read_revision: &str, value: u64, error: Option<String>| {
        let at_ms = turmoil::sim_elapsed().unwrap_or_default().as_millis();
        operations.lock().expect("not poisoned").push(Operation {
            at_ms,
            client: identity.to_owned(),
            kind,
            read_revision: read_revision.to_owned(),
            value,
            error,
        });
    };
    for _ in 0..ATTEMPTS_PER_INCREMENT_MAX {
        let Ok(current) = api.get(COUNTER).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let read_revision = current
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let value: u64 = current
            .data
            .as_ref()
            .and_then(|d| d.get(KEY))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut next = ConfigMap {
            metadata: ObjectMeta {
                name: Some(COUNTER.into()),
                resource_version: Some(read_revision.clone()),
                ..ObjectMeta::default()
            },
            data: Some([(KEY.to_string(), (value + 1).to_string())].into()),
            ..ConfigMap::default()
        };
        if flaw == Some(Flaw::BlindWrites) {
            next.metadata.resource_version = None;
        }
        record("invoke", &read_revision, value + 1, None);
        match api.replace(COUNTER, &PostParams::default(), &next).await {
            Ok(_) => {
                record("ok", &read_revision, value + 1, None);
                return;
            }
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 429 => {
                record(
                    "fail",
                    &read_revision,
                    value + 1,
                    Some(status.reason.clone()),
                );
            }
            Err(error) => {
                // Timeout, 5xx, connection lost: the write may have committed.
                record("info", &read_revision, value + 1, Some(error.to_string()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The checker: no lost update, every acknowledged write committed exactly as acknowledged, and
/// the final value within what the clients' records allow.
fn check(
    operations: &[Operation],
    commits: &[crate::apiserver::Commit],
    final_value: u64,
) -> Result<(), String> {
    let mut previous: Option<(u64, u64)> = None;
    for commit in commits.iter().filter(|c| c.name == COUNTER) {
        let value: u64 = commit.object["data"][KEY]
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                format!(
                    "commit at revision {} has no counter value",
                    commit.revision
                )
            })?;
        if let Some((revision, before)) = previous
            && value != before + 1
        {
            return Err(format!(
                "lost update: the commit at revision {} by {} wrote {value} over {before} (written at revision {revision}); every committed increment must add exactly one",
                commit.revision, commit.client
            ));
        }
        previous = Some((commit.revision, value));
    }
    for ok in operations.iter().filter(|o| o.kind == "ok") {
        let committed = commits.iter().any(|c| {
            c.client == ok.client
                && c.object["data"][KEY].as_str() == Some(ok.value.to_string().as_str())
        });
        if !committed {
            return Err(format!(
                "{} was told its write of {} succeeded (read at revision {}), but no such commit exists",
                ok.client, ok.value, ok.read_revision
            ));
        }
    }
    let acknowledged = operations.iter().filter(|o| o.kind == "ok").count() as u64;
    let ambiguous = operations.iter().filter(|o| o.kind == "info").count() as u64;
    if final_value < acknowledged || final_value > acknowledged + ambiguous {
        return Err(format!(
            "final value {final_value} is outside [acknowledged {acknowledged}, acknowledged + ambiguous {}]",
            acknowledged + ambiguous
        ));
    }
    Ok(())
}
