//! The conformance suite: the same cases, through the real kube-rs client, against the simulated
//! API server inside turmoil, the standalone `khaos serve`, or a real cluster.
//!
//! Each case checks one line of the spec's "Verbs" or "Faults" section and fails if the server
//! behaves otherwise. Fault cases drive the server's admin endpoint (`/khaos/v1/...`) and are
//! skipped, with the reason printed, against a real cluster.
//!
//! ```no_run
//! # async fn example(client: kube::Client) {
//! use khaos_sim::conformance::{self, Target};
//! let target = Target::new("standalone", true, move |_identity| client.clone());
//! let results = conformance::run(&target, None, |result| println!("{result}")).await;
//! assert!(results.iter().all(|r| !r.outcome.is_failed()));
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use kube::core::ObjectMeta;
use serde_json::{Value, json};

/// The identity of the suite's ordinary client.
pub const IDENTITY: &str = "khaos-conformance";
/// The identity of the client that fault cases aim their faults at; every other client is spared,
/// so the suite's own setup and checks are never hit.
pub const FAULTY_IDENTITY: &str = "khaos-conformance-faulty";

/// The longest any one case may take.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The server under test.
#[derive(Clone)]
pub struct Target {
    /// A name for reports (`simulated`, `standalone`, `cluster`).
    pub name: String,
    /// Whether the server has khaos's admin endpoint (fault cases need it).
    pub admin: bool,
    /// How often the server sends bookmarks, when known (the periodic-bookmark cases need it).
    pub bookmark_interval: Option<Duration>,
    client_for: Arc<dyn Fn(&str) -> kube::Client + Send + Sync>,
}

impl Target {
    /// A target whose clients `client_for` builds for a given identity (User-Agent).
    pub fn new(
        name: &str,
        admin: bool,
        client_for: impl Fn(&str) -> kube::Client + Send + Sync + 'static,
    ) -> Target {
        Target {
            name: name.to_owned(),
            admin,
            bookmark_interval: None,
            client_for: Arc::new(client_for),
        }
    }

    /// Declare the server's bookmark interval.
    #[must_use]
    pub fn with_bookmark_interval(mut self, interval: Duration) -> Target {
        self.bookmark_interval = Some(interval);
        self
    }
}

/// The spec section a case covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// "Verbs and their exact behaviour".
    Verbs,
    /// "Faults the server can be told to inject".
    Faults,
}

/// How a case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server behaved as specified.
    Passed,
    /// It did not; the message says how.
    Failed(String),
    /// The case could not run against this target; the message says why.
    Skipped(String),
}

impl Outcome {
    /// Whether the case failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: &'static str,
    /// Its spec section.
    pub section: Section,
    /// How it ended.
    pub outcome: Outcome,
}

impl fmt::Display for CaseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Passed => write!(f, "ok      {}", self.name),
            Outcome::Failed(why) => write!(f, "FAILED  {}: {why}", self.name),
            Outcome::Skipped(why) => write!(f, "skipped {}: {why}", self.name),
        }
    }
}

/// Totals of a run, with the closing line test runners print.
pub fn summary(results: &[CaseResult]) -> String {
    let passed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Passed)
        .count();
    let failed = results.iter().filter(|r| r.outcome.is_failed()).count();
    let skipped = results.len() - passed - failed;
    format!("{passed} passed, {failed} failed, {skipped} skipped")
}

type CaseFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

struct Case {
    name: &'static str,
    section: Section,
    needs: Needs,
    run: fn(Ctx) -> CaseFuture,
}

/// What a case needs of the target beyond the Kubernetes API.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Nothing: runs against any server, real clusters included.
    Nothing,
    /// khaos's fault admin endpoint.
    Admin,
    /// The admin endpoint and a known bookmark interval short enough to wait for twice.
    FastBookmarks,
}

/// The longest bookmark interval the periodic-bookmark case waits for (twice, within
/// [`CASE_TIMEOUT`]).
const BOOKMARK_INTERVAL_MAX: Duration = Duration::from_secs(5);

impl Needs {
    /// Why `target` cannot run the case, if it cannot.
    fn unmet(self, target: &Target) -> Option<String> {
        if self != Needs::Nothing && !target.admin {
            return Some(
                "needs khaos's fault admin endpoint, which a real cluster does not have".into(),
            );
        }
        if self == Needs::FastBookmarks
            && target
                .bookmark_interval
                .is_none_or(|i| i > BOOKMARK_INTERVAL_MAX)
        {
            return Some(format!(
                "needs a bookmark interval of at most {BOOKMARK_INTERVAL_MAX:?}: serve with --bookmark-interval-ms 500 and pass the same flag here"
            ));
        }
        None
    }
}

/// What a case gets: clients and a namespace of its own.
#[derive(Clone)]
struct Ctx {
    client: kube::Client,
    faulty: kube::Client,
    namespace: String,
    target: Target,
}

impl Ctx {
    fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
    fn faulty_configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.faulty.clone(), &self.namespace)
    }

    /// Create a ConfigMap in the case's namespace.
    async fn create(&self, configmap: &ConfigMap) -> Result<ConfigMap, String> {
        self.configmaps()
            .create(&PostParams::default(), configmap)
            .await
            .map_err(|e| format!("create: {e}"))
    }

    /// Whether the ConfigMap `name` exists in the case's namespace.
    async fn exists(&self, name: &str) -> Result<bool, String> {
        let found = self
            .configmaps()
            .get_opt(name)
            .await
            .map_err(|e| format!("get {name}: {e}"))?;
        Ok(found.is_some())
    }

    /// The current revision, as a list reports it.
    async fn list_revision(&self) -> Result<String, String> {
        let list = self
            .configmaps()
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("list: {e}"))?;
        Ok(list.metadata.resource_version.unwrap_or_default())
    }

    async fn set_faults(&self, faults: Value) -> Result<(), String> {
        admin(&self.client, http::Method::PUT, "faults", faults)
            .await
            .map(|_| ())
    }

    async fn clear_faults(&self) -> Result<(), String> {
        self.set_faults(json!({})).await
    }
}

async fn admin(
    client: &kube::Client,
    method: http::Method,
    path: &str,
    body: Value,
) -> Result<Value, String> {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("/khaos/v1/{path}"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).expect("values serialise"))
        .expect("a valid request");
    let text = client
        .request_text(request)
        .await
        .map_err(|e| format!("admin {path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("admin {path}: {e}: {text}"))
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

fn configmap(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut cm = configmap(name, &[]);
    cm.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
    );
    cm
}

fn rv<K: kube::Resource>(object: &K) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The Status of an API error, or a description of what came instead.
fn api_error<T: fmt::Debug>(result: Result<T, kube::Error>) -> Result<kube::core::Status, String> {
    match result {
        Err(kube::Error::Api(status)) => Ok(*status),
        Err(other) => Err(format!("expected an API error, got {other}")),
        Ok(value) => {
            let mut shown = format!("{value:?}");
            if shown.len() > 300 {
                let cut = (0..=300)
                    .rev()
                    .find(|i| shown.is_char_boundary(*i))
                    .unwrap_or(0);
                shown.truncate(cut);
                shown.push_str("...");
            }
            Err(format!("expected an API error, got success: {shown}"))
        }
    }
}

fn expect_status<T: fmt::Debug>(
    result: Result<T, kube::Error>,
    code: u16,
    reason: &str,
) -> Result<kube::core::Status, String> {
    let status = api_error(result)?;
    ensure!(
        status.code == code && status.reason == reason,
        "expected {code} {reason}, got {} {}: {}",
        status.code,
        status.reason,
        status.message
    );
    Ok(status)
}

/// A merge patch through `api`.
async fn merge<K>(api: &Api<K>, name: &str, patch: Value) -> Result<K, String>
where
    K: Clone + serde::de::DeserializeOwned + fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| format!("merge patch of {name}: {e}"))
}

async fn names(api: &Api<ConfigMap>, selector: &str) -> Result<Vec<String>, String> {
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| format!("list {selector:?}: {e}"))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect())
}

/// Collect watch events until `n` have arrived or `wait` passes. Periodic bookmarks (kube asks
/// for them by default) are dropped; [`collect_with_bookmarks`] keeps them.
async fn collect_events<K: Clone + fmt::Debug>(
    stream: impl futures::Stream<Item = Result<WatchEvent<K>, kube::Error>>,
    n: usize,
    wait: Duration,
) -> Result<Vec<WatchEvent<K>>, String> {
    let stream = stream.try_filter(|e| std::future::ready(!matches!(e, WatchEvent::Bookmark(_))));
    collect_with_bookmarks(stream, n, wait).await
}

/// Collect watch events, bookmarks included, until `n` have arrived or `wait` passes.
async fn collect_with_bookmarks<K: Clone + fmt::Debug>(
    stream: impl futures::Stream<Item = Result<WatchEvent<K>, kube::Error>>,
    n: usize,
    wait: Duration,
) -> Result<Vec<WatchEvent<K>>, String> {
    let mut events = Vec::new();
    let mut stream = std::pin::pin!(stream);
    let deadline = tokio::time::Instant::now() + wait;
    while events.len() < n {
        match tokio::time::timeout_at(deadline, stream.try_next()).await {
            Err(_) => break,
            Ok(Ok(Some(event))) => events.push(event),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(format!("watch failed: {e}")),
        }
    }
    Ok(events)
}

fn event_summary<K: kube::Resource>(event: &WatchEvent<K>) -> String {
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", o.meta().name.as_deref().unwrap_or("")),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.meta().name.as_deref().unwrap_or("")),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.meta().name.as_deref().unwrap_or("")),
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(status) => format!("ERROR {}", status.code),
    }
}

/// The case table: `Section Needs: case, case, ...;`, in the order the cases run.
macro_rules! cases {
    ($($section:ident $needs:ident: $($name:ident),+;)*) => {
        vec![$($(Case {
            name: stringify!($name),
            section: Section::$section,
            needs: Needs::$needs,
            run: |ctx| Box::pin($name(ctx)),
        },)+)*]
    };
}

fn cases() -> Vec<Case> {
    cases! {
        Verbs Nothing:
            revisions_are_global_and_increasing,
            uid_and_creation_timestamp_never_change,
            create_existing_name_is_already_exists,
            create_invalid_name_is_invalid,
            create_invalid_data_key_is_invalid,
            create_configmap_over_one_mebibyte_is_invalid,
            create_with_generate_name,
            create_in_missing_namespace_is_not_found,
            get_missing_is_not_found_with_details,
            list_label_selectors,
            list_field_selector_by_name,
            list_resource_version_is_current,
            list_pages_with_limit_and_continue,
            replace_with_stale_resource_version_conflicts,
            replace_without_resource_version_is_unconditional,
            patch_merge_strategic_and_json,
            patch_resource_version_is_a_precondition,
            delete_preconditions_conflict,
            delete_missing_is_not_found,
            dry_run_writes_change_nothing,
            create_with_resource_version_is_refused,
            immutable_configmap_refuses_changes,
            replace_with_another_uid_conflicts,
            delete_cascades_down_owner_chains,
            delete_cascades_to_owned_objects_only,
            watch_without_resource_version_starts_with_current_state,
            watch_from_resource_version_sends_later_events_in_order,
            watch_honours_label_and_field_selectors,
            watch_initial_events_end_with_a_bookmark,
            watch_ends_cleanly_at_timeout_seconds,
            watch_from_compacted_revision_gets_410,
            lease_crud_and_watch;
        Faults Admin:
            fault_latency_delays_requests,
            fault_request_never_answers,
            fault_429_with_retry_after,
            fault_5xx_on_chosen_verbs,
            fault_aimed_at_one_client_spares_others,
            fault_reads_succeed_writes_fail,
            fault_ambiguous_commit,
            fault_watch_delay,
            fault_watch_closed_midway;
        Faults FastBookmarks:
            fault_no_bookmarks;
        Faults Admin:
            fault_compaction_makes_resume_410,
            fault_established_watch_outlives_compaction,
            fault_stale_cached_reads,
            fault_restart_drops_watches_keeps_store;
    }
}

/// The names of all cases, in the order they run.
pub fn case_names() -> Vec<&'static str> {
    cases().into_iter().map(|c| c.name).collect()
}

/// Run every case whose name contains `filter` (all when `None`), in order, calling `progress`
/// after each. Each case gets a namespace of its own, deleted afterwards.
pub async fn run(
    target: &Target,
    filter: Option<&str>,
    mut progress: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    let client = (target.client_for)(IDENTITY);
    let faulty = (target.client_for)(FAULTY_IDENTITY);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut results = Vec::new();
    for (index, case) in cases().into_iter().enumerate() {
        if filter.is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        let outcome = if let Some(reason) = case.needs.unmet(target) {
            Outcome::Skipped(reason)
        } else {
            let namespace = format!("khaos-conformance-{index}-{}", case.name.len());
            let created = namespaces
                .create(
                    &PostParams::default(),
                    &Namespace {
                        metadata: ObjectMeta {
                            name: Some(namespace.clone()),
                            ..ObjectMeta::default()
                        },
                        ..Namespace::default()
                    },
                )
                .await;
            match created {
                Err(e) => Outcome::Failed(format!("could not create namespace {namespace}: {e}")),
                Ok(_) => {
                    let ctx = Ctx {
                        client: client.clone(),
                        faulty: faulty.clone(),
                        namespace: namespace.clone(),
                        target: target.clone(),
                    };
                    let result = tokio::time::timeout(CASE_TIMEOUT, (case.run)(ctx.clone())).await;
                    // Faults left on would break every later case: a failure to clear them fails this one.
                    let cleared = if case.needs != Needs::Nothing {
                        ctx.clear_faults().await
                    } else {
                        Ok(())
                    };
                    let _ = namespaces
                        .delete(&namespace, &DeleteParams::default())
                        .await;
                    match result {
                        Ok(Ok(())) if cleared.is_err() => {
                            Outcome::Failed(format!("clearing faults: {}", cleared.unwrap_err()))
                        }
                        Ok(Ok(())) => Outcome::Passed,
                        Ok(Err(why)) => Outcome::Failed(why),
                        Err(_) => {
                            Outcome::Failed(format!("did not finish within {CASE_TIMEOUT:?}"))
                        }
                    }
                }
            }
        };
        let result = CaseResult {
            name: case.name,
            section: case.section,
            outcome,
        };
        progress(&result);
        results.push(result);
    }
    results
}

// ---- Verbs -------------------------------------------------------------------------------------

async fn revisions_are_global_and_increasing(ctx: Ctx) -> Result<(), String> {
    let pp = PostParams::default();
    let a = ctx.create(&configmap("a", &[])).await?;
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("l".into()),
            ..ObjectMeta::default()
        },
        ..Lease::default()
    };
    let l = ctx
        .leases()
        .create(&pp, &lease)
        .await
        .map_err(|e| e.to_string())?;
    let b = ctx.create(&configmap("b", &[])).await?;
    let mut a2 = a.clone();
    a2.data = Some([("k".to_string(), "v".to_string())].into());
    let a2 = ctx
        .configmaps()
        .replace("a", &pp, &a2)
        .await
        .map_err(|e| e.to_string())?;
    let revisions = [rv(&a), rv(&l), rv(&b), rv(&a2)];
    ensure!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "resourceVersions across kinds are not strictly increasing: {revisions:?}"
    );
    let list = ctx
        .configmaps()
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let list_rv: u64 = list
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .map_err(|e| format!("list resourceVersion: {e}"))?;
    ensure!(
        list_rv >= rv(&a2),
        "list resourceVersion {list_rv} is behind the last write {}",
        rv(&a2)
    );
    Ok(())
}

async fn uid_and_creation_timestamp_never_change(ctx: Ctx) -> Result<(), String> {
    let pp = PostParams::default();
    let created = ctx.create(&configmap("a", &[])).await?;
    ensure!(
        created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some(),
        "create did not set uid and creationTimestamp: {:?}",
        created.metadata
    );
    let mut changed = created.clone();
    changed.metadata.uid = None;
    changed.metadata.creation_timestamp = None;
    changed.data = Some([("k".to_string(), "v".to_string())].into());
    let replaced = ctx
        .configmaps()
        .replace("a", &pp, &changed)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        replaced.metadata.uid == created.metadata.uid,
        "uid changed on replace"
    );
    ensure!(
        replaced.metadata.creation_timestamp == created.metadata.creation_timestamp,
        "creationTimestamp changed on replace"
    );
    let patched = ctx
        .configmaps()
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "w"}})),
        )
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        patched.metadata.uid == created.metadata.uid,
        "uid changed on patch"
    );
    Ok(())
}

async fn create_existing_name_is_already_exists(ctx: Ctx) -> Result<(), String> {
    let pp = PostParams::default();
    ctx.create(&configmap("a", &[])).await?;
    let status = expect_status(
        ctx.configmaps().create(&pp, &configmap("a", &[])).await,
        409,
        "AlreadyExists",
    )?;
    ensure!(
        status.message == "configmaps \"a\" already exists",
        "message: {}",
        status.message
    );
    Ok(())
}

async fn create_invalid_name_is_invalid(ctx: Ctx) -> Result<(), String> {
    let status = expect_status(
        ctx.configmaps()
            .create(&PostParams::default(), &configmap("Bad_Name", &[]))
            .await,
        422,
        "Invalid",
    )?;
    ensure!(
        status.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "message: {}",
        status.message
    );
    Ok(())
}

async fn create_invalid_data_key_is_invalid(ctx: Ctx) -> Result<(), String> {
    let status = expect_status(
        ctx.configmaps()
            .create(
                &PostParams::default(),
                &configmap("a", &[("not a key", "v")]),
            )
            .await,
        422,
        "Invalid",
    )?;
    ensure!(
        status.message.contains("data[not a key]"),
        "message does not name the key: {}",
        status.message
    );
    Ok(())
}

async fn create_configmap_over_one_mebibyte_is_invalid(ctx: Ctx) -> Result<(), String> {
    let pp = PostParams::default();
    // Exactly 1 MiB of values is allowed; one byte more is not (the server counts values).
    let at_limit = "x".repeat(1_048_576);
    ctx.configmaps()
        .create(&pp, &configmap("fits", &[("k", &at_limit)]))
        .await
        .map_err(|e| format!("1 MiB ConfigMap refused: {e}"))?;
    let over = "x".repeat(1_048_577);
    let status = expect_status(
        ctx.configmaps()
            .create(&pp, &configmap("big", &[("k", &over)]))
            .await,
        422,
        "Invalid",
    )?;
    ensure!(
        status.message.contains("1048576"),
        "message does not state the limit: {}",
        status.message
    );
    Ok(())
}

async fn create_with_generate_name(ctx: Ctx) -> Result<(), String> {
    let mut cm = configmap("", &[]);
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("gen-".into());
    let a = ctx.create(&cm).await?;
    let b = ctx.create(&cm).await?;
    let (a, b) = (
        a.metadata.name.unwrap_or_default(),
        b.metadata.name.unwrap_or_default(),
    );
    ensure!(
        a.starts_with("gen-") && a.len() == "gen-".len() + 5,
        "generated name {a:?}"
    );
    ensure!(a != b, "two generated names are equal: {a}");
    Ok(())
}

async fn create_in_missing_namespace_is_not_found(ctx: Ctx) -> Result<(), String> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "khaos-no-such-namespace");
    let status = expect_status(
        api.create(&PostParams::default(), &configmap("a", &[]))
            .await,
        404,
        "NotFound",
    )?;
    ensure!(
        status.message == "namespaces \"khaos-no-such-namespace\" not found",
        "message: {}",
        status.message
    );
    Ok(())
}

async fn get_missing_is_not_found_with_details(ctx: Ctx) -> Result<(), String> {
    let status = expect_status(ctx.configmaps().get("missing").await, 404, "NotFound")?;
    ensure!(
        status.message == "configmaps \"missing\" not found",
        "message: {}",
        status.message
    );
    let details = status.details.ok_or("no details")?;
    ensure!(
        details.name == "missing" && details.kind == "configmaps",
        "details: {details:?}"
    );
    let status = expect_status(ctx.leases().get("missing").await, 404, "NotFound")?;
    ensure!(
        status.message == "leases.coordination.k8s.io \"missing\" not found",
        "message: {}",
        status.message
    );
    Ok(())
}

async fn list_label_selectors(ctx: Ctx) -> Result<(), String> {
    let pp = PostParams::default();
    let api = ctx.configmaps();
    for cm in [
        labelled("a", &[("app", "x"), ("tier", "db")]),
        labelled("b", &[("app", "y")]),
        labelled("c", &[]),
    ] {
        api.create(&pp, &cm).await.map_err(|e| e.to_string())?;
    }
    let cases: [(&str, &[&str]); 8] = [
        ("app=x", &["a"]),
        ("app==x", &["a"]),
        ("app!=x", &["b", "c"]),
        ("app in (x,y)", &["a", "b"]),
        ("app notin (x)", &["b", "c"]),
        ("tier", &["a"]),
        ("!tier", &["b", "c"]),
        ("app=x,tier=db", &["a"]),
    ];
    for (selector, expected) in cases {
        let got = names(&api, selector).await?;
        ensure!(
            got == expected,
            "labelSelector {selector:?}: got {got:?}, expected {expected:?}"
        );
    }
    Ok(())
}

async fn list_field_selector_by_name(ctx: Ctx) -> Result<(), String> {
    for name in ["a", "b"] {
        ctx.create(&configmap(name, &[])).await?;
    }
    let list = ctx
        .configmaps()
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .map_err(|e| e.to_string())?;
    let got: Vec<_> = list
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    ensure!(got == ["b"], "fieldSelector metadata.name=b gave {got:?}");
    let status = expect_status(
        ctx.configmaps()
            .list(&ListParams::default().fields("spec.nope=x"))
            .await,
        400,
        "BadRequest",
    )?;
    ensure!(
        status.message.contains("spec.nope"),
        "message does not name the field: {}",
        status.message
    );
    Ok(())
}

async fn list_resource_version_is_current(ctx: Ctx) -> Result<(), String> {
    let created = ctx.create(&configmap("a", &[])).await?;
    let list = ctx
        .configmaps()
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let list_rv: u64 = list
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("")
        .parse()
        .map_err(|_| "list resourceVersion is not a decimal")?;
    ensure!(
        list_rv >= rv(&created),
        "list resourceVersion {list_rv} is older than the create {}",
        rv(&created)
    );
    ensure!(list.items.len() == 1, "list has {} items", list.items.len());
    Ok(())
}

async fn list_pages_with_limit_and_continue(ctx: Ctx) -> Result<(), String> {
    for i in 0..5 {
        ctx.create(&configmap(&format!("cm-{i}"), &[])).await?;
    }
    let first = ctx
        .configmaps()
        .list(&ListParams::default().limit(2))
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        first.items.len() == 2,
        "first page has {} items",
        first.items.len()
    );
    let token = first
        .metadata
        .continue_
        .clone()
        .ok_or("no continue token on a partial page")?;
    // A write between pages must not show up: the pages are one consistent snapshot.
    ctx.create(&configmap("cm-late", &[])).await?;
    let rest = ctx
        .configmaps()
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = first
        .items
        .iter()
        .chain(&rest.items)
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    ensure!(
        names == ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"],
        "paged names {names:?}"
    );
    ensure!(
        rest.metadata.continue_.as_deref().unwrap_or("").is_empty(),
        "last page has a continue token"
    );
    Ok(())
}

async fn replace_with_stale_resource_version_conflicts(ctx: Ctx) -> Result<(), String> {
    let pp = PostParams::default();
    let created = ctx.create(&configmap("x", &[])).await?;
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "1".to_string())].into());
    ctx.configmaps()
        .replace("x", &pp, &first)
        .await
        .map_err(|e| e.to_string())?;
    let mut stale = created;
    stale.data = Some([("k".to_string(), "2".to_string())].into());
    let status = expect_status(
        ctx.configmaps().replace("x", &pp, &stale).await,
        409,
        "Conflict",
    )?;
    let expected = "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again";
    ensure!(status.message == expected, "message: {}", status.message);
    let now = ctx.configmaps().get("x").await.map_err(|e| e.to_string())?;
    ensure!(
        now.data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str)
            == Some("1"),
        "the failed replace changed the object"
    );
    Ok(())
}

async fn replace_without_resource_version_is_unconditional(ctx: Ctx) -> Result<(), String> {
    let pp = PostParams::default();
    ctx.create(&configmap("x", &[("k", "1")])).await?;
    merge(&ctx.configmaps(), "x", json!({"data": {"k": "2"}})).await?;
    let blind = configmap("x", &[("k", "3")]);
    let replaced = ctx
        .configmaps()
        .replace("x", &pp, &blind)
        .await
        .map_err(|e| format!("unconditional replace: {e}"))?;
    ensure!(
        replaced.data.and_then(|d| d.get("k").cloned()).as_deref() == Some("3"),
        "replace did not apply"
    );
    Ok(())
}

async fn patch_merge_strategic_and_json(ctx: Ctx) -> Result<(), String> {
    let api = ctx.configmaps();
    api.create(
        &PostParams::default(),
        &configmap("x", &[("a", "1"), ("b", "2")]),
    )
    .await
    .map_err(|e| e.to_string())?;
    let pp = PatchParams::default();
    let merged = api
        .patch(
            "x",
            &pp,
            &Patch::Merge(json!({"data": {"a": null, "c": "3"}})),
        )
        .await
        .map_err(|e| format!("merge: {e}"))?;
    let data = merged.data.unwrap_or_default();
    ensure!(
        !data.contains_key("a") && data.get("c").map(String::as_str) == Some("3"),
        "merge patch result {data:?}"
    );
    let strategic = api
        .patch("x", &pp, &Patch::Strategic(json!({"data": {"d": "4"}})))
        .await
        .map_err(|e| format!("strategic: {e}"))?;
    ensure!(
        strategic
            .data
            .unwrap_or_default()
            .get("d")
            .map(String::as_str)
            == Some("4"),
        "strategic merge patch did not apply"
    );
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/d", "value": "4"},
        {"op": "replace", "path": "/data/d", "value": "5"}
    ]))
    .map_err(|e| e.to_string())?;
    let jsoned = api
        .patch("x", &pp, &Patch::<()>::Json(ops))
        .await
        .map_err(|e| format!("json patch: {e}"))?;
    ensure!(
        jsoned.data.unwrap_or_default().get("d").map(String::as_str) == Some("5"),
        "json patch did not apply"
    );
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/d", "value": "nope"}]))
            .map_err(|e| e.to_string())?;
    let status = api_error(api.patch("x", &pp, &Patch::<()>::Json(failing)).await)?;
    ensure!(
        status.code == 422,
        "a failing json-patch test gave {} {}, not 422",
        status.code,
        status.reason
    );
    // Strategic merge differs from merge patch on merge-keyed lists: ownerReferences merge by
    // uid, so adding an owner keeps the one already there.
    let owner = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid});
    merge(&api, "x", json!({"metadata": {"ownerReferences": [owner("o1", "11111111-1111-1111-1111-111111111111")]}})).await?;
    let strategic = api
        .patch("x", &pp, &Patch::Strategic(json!({"metadata": {"ownerReferences": [owner("o2", "22222222-2222-2222-2222-222222222222")]}})))
        .await
        .map_err(|e| format!("strategic ownerReferences: {e}"))?;
    let owners: Vec<String> = strategic
        .metadata
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .collect();
    ensure!(
        owners == ["o1", "o2"],
        "strategic merge of ownerReferences gave {owners:?}, not [o1, o2]"
    );
    Ok(())
}

async fn patch_resource_version_is_a_precondition(ctx: Ctx) -> Result<(), String> {
    let api = ctx.configmaps();
    let created = api
        .create(&PostParams::default(), &configmap("x", &[]))
        .await
        .map_err(|e| e.to_string())?;
    let stale = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    merge(&api, "x", json!({"data": {"a": "1"}})).await?;
    let patch = json!({"metadata": {"resourceVersion": stale}, "data": {"a": "2"}});
    expect_status(
        api.patch("x", &PatchParams::default(), &Patch::Merge(patch))
            .await,
        409,
        "Conflict",
    )?;
    let current = api.get("x").await.map_err(|e| e.to_string())?;
    let patch = json!({"metadata": {"resourceVersion": current.metadata.resource_version}, "data": {"a": "2"}});
    api.patch("x", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| format!("patch with the current resourceVersion: {e}"))?;
    Ok(())
}

async fn delete_preconditions_conflict(ctx: Ctx) -> Result<(), String> {
    let api = ctx.configmaps();
    let created = api
        .create(&PostParams::default(), &configmap("x", &[]))
        .await
        .map_err(|e| e.to_string())?;
    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    expect_status(api.delete("x", &wrong_uid).await, 409, "Conflict")?;
    let wrong_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..DeleteParams::default()
    };
    expect_status(api.delete("x", &wrong_rv).await, 409, "Conflict")?;
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: created.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    api.delete("x", &right)
        .await
        .map_err(|e| format!("delete with matching preconditions: {e}"))?;
    expect_status(api.get("x").await, 404, "NotFound")?;
    Ok(())
}

async fn dry_run_writes_change_nothing(ctx: Ctx) -> Result<(), String> {
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let answered = ctx
        .configmaps()
        .create(&dry, &configmap("ghost", &[("k", "v")]))
        .await
        .map_err(|e| format!("dry-run create: {e}"))?;
    ensure!(
        answered.metadata.name.as_deref() == Some("ghost"),
        "dry-run create answered {:?}",
        answered.metadata.name
    );
    ensure!(
        !ctx.exists("ghost").await?,
        "a dry-run create stored the object"
    );
    ctx.create(&configmap("real", &[])).await?;
    // kube-rs sends a delete's dryRun in the DeleteOptions body.
    let dry_delete = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    ctx.configmaps()
        .delete("real", &dry_delete)
        .await
        .map_err(|e| format!("dry-run delete: {e}"))?;
    ensure!(
        ctx.exists("real").await?,
        "a dry-run delete deleted the object"
    );
    Ok(())
}

async fn create_with_resource_version_is_refused(ctx: Ctx) -> Result<(), String> {
    let mut cm = configmap("a", &[]);
    cm.metadata.resource_version = Some("5".into());
    let status = expect_status(
        ctx.configmaps().create(&PostParams::default(), &cm).await,
        500,
        "InternalError",
    )?;
    ensure!(
        status
            .message
            .contains("resourceVersion should not be set on objects to be created"),
        "message: {}",
        status.message
    );
    Ok(())
}

async fn immutable_configmap_refuses_changes(ctx: Ctx) -> Result<(), String> {
    let mut cm = configmap("frozen", &[("k", "v")]);
    cm.immutable = Some(true);
    ctx.create(&cm).await?;
    let status = expect_status(
        ctx.configmaps()
            .patch(
                "frozen",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"k": "w"}})),
            )
            .await,
        422,
        "Invalid",
    )?;
    ensure!(
        status
            .message
            .contains("field is immutable when `immutable` is set"),
        "message: {}",
        status.message
    );
    merge(
        &ctx.configmaps(),
        "frozen",
        json!({"metadata": {"labels": {"still": "editable"}}}),
    )
    .await?;
    Ok(())
}

async fn replace_with_another_uid_conflicts(ctx: Ctx) -> Result<(), String> {
    let created = ctx.create(&configmap("x", &[])).await?;
    let mut other = created.clone();
    other.metadata.uid = Some("00000000-0000-0000-0000-000000000001".into());
    other.metadata.resource_version = None;
    let status = expect_status(
        ctx.configmaps()
            .replace("x", &PostParams::default(), &other)
            .await,
        409,
        "Conflict",
    )?;
    ensure!(
        status
            .message
            .contains("Precondition failed: UID in precondition"),
        "message: {}",
        status.message
    );
    Ok(())
}

async fn delete_cascades_down_owner_chains(ctx: Ctx) -> Result<(), String> {
    let reference =
        |owner: &ConfigMap| k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: owner.metadata.name.clone().unwrap_or_default(),
            uid: owner.metadata.uid.clone().unwrap_or_default(),
            ..Default::default()
        };
    // root owns a; b is owned by root and by a; c is owned by b.
    let root = ctx.create(&configmap("root", &[])).await?;
    let mut a = configmap("a", &[]);
    a.metadata.owner_references = Some(vec![reference(&root)]);
    let a = ctx.create(&a).await?;
    let mut b = configmap("b", &[]);
    b.metadata.owner_references = Some(vec![reference(&root), reference(&a)]);
    let b = ctx.create(&b).await?;
    let mut c = configmap("c", &[]);
    c.metadata.owner_references = Some(vec![reference(&b)]);
    ctx.create(&c).await?;
    ctx.configmaps()
        .delete("root", &DeleteParams::background())
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..50 {
        let left = names(&ctx.configmaps(), "").await?;
        if left.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "after deleting the root, these survived 10 s: {:?}",
        names(&ctx.configmaps(), "").await?
    ))
}

async fn delete_missing_is_not_found(ctx: Ctx) -> Result<(), String> {
    let status = expect_status(
        ctx.configmaps()
            .delete("missing", &DeleteParams::default())
            .await,
        404,
        "NotFound",
    )?;
    ensure!(
        status.message == "configmaps \"missing\" not found",
        "message: {}",
        status.message
    );
    Ok(())
}

async fn delete_cascades_to_owned_objects_only(ctx: Ctx) -> Result<(), String> {
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "owner"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "owner"}},
                 "template": {"metadata": {"labels": {"app": "owner"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    })).map_err(|e| e.to_string())?;
    let owner = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .map_err(|e| e.to_string())?;
    let mut owned = configmap("owned", &[]);
    owned.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "owner".into(),
            uid: owner.metadata.uid.clone().unwrap_or_default(),
            ..Default::default()
        },
    ]);
    ctx.create(&owned).await?;
    ctx.create(&configmap("free", &[])).await?;
    deployments
        .delete("owner", &DeleteParams::background())
        .await
        .map_err(|e| e.to_string())?;
    // A real garbage collector is asynchronous: poll for a bounded time.
    for _ in 0..50 {
        if ctx
            .configmaps()
            .get_opt("owned")
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            ensure!(
                ctx.exists("free").await?,
                "an object without ownerReferences was collected"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err("the owned ConfigMap survived its owner's deletion for 10 s".into())
}

async fn watch_without_resource_version_starts_with_current_state(ctx: Ctx) -> Result<(), String> {
    for name in ["a", "b"] {
        ctx.create(&configmap(name, &[])).await?;
    }
    // Unset and "0" both start with synthetic ADDED events for what exists, then go on live.
    for start in ["", "0"] {
        let stream = ctx
            .configmaps()
            .watch(&WatchParams::default().timeout(10), start)
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = std::pin::pin!(stream);
        let initial = collect_events(&mut stream, 2, Duration::from_secs(5)).await?;
        let got: Vec<String> = initial.iter().map(event_summary).collect();
        ensure!(
            got == ["ADDED a", "ADDED b"],
            "initial events from {start:?}: {got:?}"
        );
        let name = format!("live{}", start.len());
        ctx.create(&configmap(&name, &[])).await?;
        let live = collect_events(&mut stream, 1, Duration::from_secs(5)).await?;
        let got: Vec<String> = live.iter().map(event_summary).collect();
        ensure!(
            got == [format!("ADDED {name}")],
            "live events from {start:?}: {got:?}"
        );
        ctx.configmaps()
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn watch_from_resource_version_sends_later_events_in_order(ctx: Ctx) -> Result<(), String> {
    let api = ctx.configmaps();
    let pp = PostParams::default();
    let before = api
        .create(&pp, &configmap("before", &[]))
        .await
        .map_err(|e| e.to_string())?;
    let start = before.metadata.resource_version.clone().unwrap_or_default();
    api.create(&pp, &configmap("x", &[]))
        .await
        .map_err(|e| e.to_string())?;
    merge(&api, "x", json!({"data": {"k": "v"}})).await?;
    api.delete("x", &DeleteParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let stream = api
        .watch(&WatchParams::default().timeout(10), &start)
        .await
        .map_err(|e| e.to_string())?;
    let events = collect_events(stream, 3, Duration::from_secs(5)).await?;
    let got: Vec<String> = events.iter().map(event_summary).collect();
    ensure!(
        got == ["ADDED x", "MODIFIED x", "DELETED x"],
        "events after {start}: {got:?}"
    );
    let revisions: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => Some(rv(o)),
            _ => None,
        })
        .collect();
    ensure!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "event revisions not increasing: {revisions:?}"
    );
    ensure!(
        revisions.first().is_some_and(|r| *r > rv(&before)),
        "an event at or before the start revision"
    );
    Ok(())
}

async fn watch_honours_label_and_field_selectors(ctx: Ctx) -> Result<(), String> {
    let api = ctx.configmaps();
    let start = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .metadata
        .resource_version
        .unwrap_or_default();
    let pp = PostParams::default();
    api.create(&pp, &labelled("a", &[("app", "x")]))
        .await
        .map_err(|e| e.to_string())?;
    api.create(&pp, &labelled("b", &[("app", "y")]))
        .await
        .map_err(|e| e.to_string())?;
    // Relabelling a out of the selector must look like a delete to a watch on app=x.
    merge(&api, "a", json!({"metadata": {"labels": {"app": "z"}}})).await?;
    let by_label = api
        .watch(&WatchParams::default().labels("app=x").timeout(10), &start)
        .await
        .map_err(|e| e.to_string())?;
    let events = collect_events(by_label, 2, Duration::from_secs(5)).await?;
    let got: Vec<String> = events.iter().map(event_summary).collect();
    ensure!(
        got == ["ADDED a", "DELETED a"],
        "label-selected events {got:?}"
    );
    // The DELETED event carries the object as it last matched, at the relabel's revision.
    if let Some(WatchEvent::Deleted(last)) = events.get(1) {
        let app = last
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .cloned();
        ensure!(
            app.as_deref() == Some("x"),
            "the stopped-matching DELETED object has app={app:?}, not x"
        );
    }
    let by_name = api
        .watch(
            &WatchParams::default().fields("metadata.name=b").timeout(10),
            &start,
        )
        .await
        .map_err(|e| e.to_string())?;
    let got: Vec<String> = collect_events(by_name, 2, Duration::from_secs(2))
        .await?
        .iter()
        .map(event_summary)
        .collect();
    ensure!(got == ["ADDED b"], "field-selected events {got:?}");
    Ok(())
}

async fn watch_initial_events_end_with_a_bookmark(ctx: Ctx) -> Result<(), String> {
    ctx.create(&configmap("a", &[])).await?;
    let stream = ctx
        .configmaps()
        .watch(&WatchParams::streaming_lists().timeout(10), "")
        .await
        .map_err(|e| e.to_string())?;
    let events = collect_with_bookmarks(stream, 2, Duration::from_secs(5)).await?;
    ensure!(events.len() == 2, "got {} events", events.len());
    ensure!(
        event_summary(&events[0]) == "ADDED a",
        "first event {}",
        event_summary(&events[0])
    );
    match &events[1] {
        WatchEvent::Bookmark(b) => {
            let end = b
                .metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str);
            ensure!(
                end == Some("true"),
                "bookmark without the initial-events-end annotation: {:?}",
                b.metadata.annotations
            );
        }
        other => return Err(format!("expected a BOOKMARK, got {}", event_summary(other))),
    }
    Ok(())
}

async fn watch_ends_cleanly_at_timeout_seconds(ctx: Ctx) -> Result<(), String> {
    let stream = ctx
        .configmaps()
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .map_err(|e| e.to_string())?;
    let stream = stream.try_filter(|e| std::future::ready(!matches!(e, WatchEvent::Bookmark(_))));
    let mut stream = std::pin::pin!(stream);
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        Ok(None) => Ok(()),
        Ok(Some(Ok(event))) => Err(format!("unexpected event {}", event_summary(&event))),
        Ok(Some(Err(e))) => Err(format!(
            "stream ended with an error instead of cleanly: {e}"
        )),
        Err(_) => Err("the watch outlived timeoutSeconds=1 by 4 s".into()),
    }
}

async fn watch_from_compacted_revision_gets_410(ctx: Ctx) -> Result<(), String> {
    // Revision 1 is long compacted on any server that has seen some writes; khaos's compacts on
    // request, a real one every few minutes.
    if ctx.target.admin {
        ctx.create(&configmap("a", &[])).await?;
        admin(&ctx.client, http::Method::POST, "compact", json!({})).await?;
    }
    let stream = ctx
        .configmaps()
        .watch(&WatchParams::default().timeout(10), "1")
        .await
        .map_err(|e| e.to_string())?;
    let events = collect_events(stream, 1, Duration::from_secs(5)).await?;
    match events.first() {
        Some(WatchEvent::Error(status)) if status.code == 410 && status.reason == "Expired" => {
            Ok(())
        }
        Some(other) => Err(format!(
            "expected ERROR 410 Expired, got {}",
            event_summary(other)
        )),
        None => Err("no event for a watch from a compacted revision".into()),
    }
}

async fn lease_crud_and_watch(ctx: Ctx) -> Result<(), String> {
    let api = ctx.leases();
    let start = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .metadata
        .resource_version
        .unwrap_or_default();
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 0}
    }))
    .map_err(|e| e.to_string())?;
    let created = api
        .create(&PostParams::default(), &lease)
        .await
        .map_err(|e| e.to_string())?;
    let mut taken = created.clone();
    if let Some(spec) = taken.spec.as_mut() {
        spec.holder_identity = Some("b".into());
        spec.lease_transitions = Some(1);
    }
    api.replace("leader", &PostParams::default(), &taken)
        .await
        .map_err(|e| e.to_string())?;
    // A second take-over from the same read must lose.
    expect_status(
        api.replace("leader", &PostParams::default(), &taken).await,
        409,
        "Conflict",
    )?;
    let stream = api
        .watch(&WatchParams::default().timeout(10), &start)
        .await
        .map_err(|e| e.to_string())?;
    let got: Vec<String> = collect_events(stream, 2, Duration::from_secs(5))
        .await?
        .iter()
        .map(event_summary)
        .collect();
    ensure!(
        got == ["ADDED leader", "MODIFIED leader"],
        "lease events {got:?}"
    );
    let bad: Lease = serde_json::from_value(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "bad"}, "spec": {"leaseDurationSeconds": 0}})).map_err(|e| e.to_string())?;
    expect_status(
        api.create(&PostParams::default(), &bad).await,
        422,
        "Invalid",
    )?;
    Ok(())
}

// ---- Faults ------------------------------------------------------------------------------------

fn aimed(rule: Value) -> Value {
    let mut rule = rule;
    rule["clients"] = json!([FAULTY_IDENTITY]);
    rule
}

async fn fault_latency_delays_requests(ctx: Ctx) -> Result<(), String> {
    ctx.create(&configmap("a", &[])).await?;
    ctx.set_faults(json!({"latency": [{"when": aimed(json!({})), "min_ms": 400, "max_ms": 500}]}))
        .await?;
    let started = tokio::time::Instant::now();
    ctx.faulty_configmaps()
        .get("a")
        .await
        .map_err(|e| e.to_string())?;
    let slow = started.elapsed();
    let started = tokio::time::Instant::now();
    ctx.configmaps().get("a").await.map_err(|e| e.to_string())?;
    let fast = started.elapsed();
    ensure!(
        slow >= Duration::from_millis(400),
        "a request with 400-500 ms injected latency took {slow:?}"
    );
    ensure!(
        fast < Duration::from_millis(400),
        "a request the fault was not aimed at took {fast:?}"
    );
    Ok(())
}

async fn fault_request_never_answers(ctx: Ctx) -> Result<(), String> {
    ctx.set_faults(json!({"hang": [aimed(json!({"verbs": ["get"]}))]}))
        .await?;
    match tokio::time::timeout(Duration::from_secs(2), ctx.faulty_configmaps().get_opt("a")).await {
        Err(_) => {}
        Ok(result) => return Err(format!("a request told to hang was answered: {result:?}")),
    }
    ctx.clear_faults().await?;
    ctx.faulty_configmaps()
        .get_opt("a")
        .await
        .map_err(|e| format!("after clearing the hang: {e}"))?;
    Ok(())
}

async fn fault_429_with_retry_after(ctx: Ctx) -> Result<(), String> {
    ctx.set_faults(
        json!({"errors": [{"when": aimed(json!({})), "code": 429, "retry_after_seconds": 3}]}),
    )
    .await?;
    let status = expect_status(
        ctx.faulty_configmaps().list(&ListParams::default()).await,
        429,
        "TooManyRequests",
    )?;
    let retry = status.details.map(|d| d.retry_after_seconds);
    ensure!(retry == Some(3), "retryAfterSeconds {retry:?}");
    Ok(())
}

async fn fault_5xx_on_chosen_verbs(ctx: Ctx) -> Result<(), String> {
    ctx.create(&configmap("a", &[])).await?;
    for (code, reason) in [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (504, "Timeout"),
    ] {
        ctx.set_faults(
            json!({"errors": [{"when": aimed(json!({"verbs": ["patch"]})), "code": code}]}),
        )
        .await?;
        let patch = Patch::Merge(json!({"data": {"k": code.to_string()}}));
        expect_status(
            ctx.faulty_configmaps()
                .patch("a", &PatchParams::default(), &patch)
                .await,
            code,
            reason,
        )?;
        ctx.faulty_configmaps()
            .get("a")
            .await
            .map_err(|e| format!("a get while only patches fail: {e}"))?;
    }
    let now = ctx.configmaps().get("a").await.map_err(|e| e.to_string())?;
    ensure!(
        now.data.unwrap_or_default().is_empty(),
        "a refused patch changed the object"
    );
    Ok(())
}

async fn fault_aimed_at_one_client_spares_others(ctx: Ctx) -> Result<(), String> {
    ctx.set_faults(json!({"errors": [{"when": aimed(json!({})), "code": 503}]}))
        .await?;
    expect_status(
        ctx.faulty_configmaps().list(&ListParams::default()).await,
        503,
        "ServiceUnavailable",
    )?;
    ctx.configmaps()
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("the spared client failed: {e}"))?;
    Ok(())
}

async fn fault_reads_succeed_writes_fail(ctx: Ctx) -> Result<(), String> {
    ctx.create(&configmap("a", &[])).await?;
    ctx.set_faults(json!({"errors": [{"when": aimed(json!({"verbs": ["create", "update", "patch", "delete"]}))}]})).await?;
    ctx.faulty_configmaps()
        .get("a")
        .await
        .map_err(|e| format!("read failed: {e}"))?;
    ctx.faulty_configmaps()
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list failed: {e}"))?;
    expect_status(
        ctx.faulty_configmaps()
            .create(&PostParams::default(), &configmap("b", &[]))
            .await,
        500,
        "InternalError",
    )?;
    expect_status(
        ctx.faulty_configmaps()
            .delete("a", &DeleteParams::default())
            .await,
        500,
        "InternalError",
    )?;
    ensure!(!ctx.exists("b").await?, "a failed create committed");
    ensure!(ctx.exists("a").await?, "a failed delete committed");
    Ok(())
}

async fn fault_ambiguous_commit(ctx: Ctx) -> Result<(), String> {
    ctx.create(&configmap("a", &[])).await?;
    for (outcome, value) in [
        ("timeout", "1"),
        ("internalError", "2"),
        ("connectionLost", "3"),
    ] {
        ctx.set_faults(json!({"ambiguous": [{"when": aimed(json!({"verbs": ["patch"]})), "outcome": outcome}]})).await?;
        let patch = Patch::Merge(json!({"data": {"k": value}}));
        let result = ctx
            .faulty_configmaps()
            .patch("a", &PatchParams::default(), &patch)
            .await;
        ensure!(
            result.is_err(),
            "an ambiguous commit ({outcome}) reported success"
        );
        let now = ctx.configmaps().get("a").await.map_err(|e| e.to_string())?;
        let got = now.data.unwrap_or_default().get("k").cloned();
        ensure!(
            got.as_deref() == Some(value),
            "the write reported as failed ({outcome}) did not commit: k={got:?}"
        );
    }
    Ok(())
}

async fn fault_watch_delay(ctx: Ctx) -> Result<(), String> {
    ctx.set_faults(json!({"watch": {"delay_ms_min": 500, "delay_ms_max": 600}}))
        .await?;
    let start = ctx.list_revision().await?;
    let stream = ctx
        .faulty_configmaps()
        .watch(&WatchParams::default().timeout(10), &start)
        .await
        .map_err(|e| e.to_string())?;
    let before = tokio::time::Instant::now();
    for name in ["a", "b", "c"] {
        ctx.create(&configmap(name, &[])).await?;
    }
    let written = tokio::time::Instant::now();
    let events = collect_events(stream, 3, Duration::from_secs(5)).await?;
    let waited = before.elapsed();
    let got: Vec<String> = events.iter().map(event_summary).collect();
    ensure!(
        got == ["ADDED a", "ADDED b", "ADDED c"],
        "delayed events {got:?}, not in order"
    );
    ensure!(
        waited >= Duration::from_millis(500),
        "a watch delayed 500-600 ms got its events {waited:?} after the first write"
    );
    // The delay is per watch, not per event: three queued events are not three delays late.
    let late = written.elapsed();
    ensure!(
        late <= Duration::from_millis(600 + 500),
        "the last of three events came {late:?} after the last write, beyond the 600 ms bound"
    );
    Ok(())
}

async fn fault_established_watch_outlives_compaction(ctx: Ctx) -> Result<(), String> {
    let start = ctx.list_revision().await?;
    let stream = ctx
        .configmaps()
        .watch(&WatchParams::default().labels("app=x").timeout(30), &start)
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = std::pin::pin!(stream);
    // Writes the watch does not match, then compaction past them: the live watch goes on.
    for i in 0..5 {
        ctx.create(&configmap(&format!("other-{i}"), &[])).await?;
    }
    admin(&ctx.client, http::Method::POST, "compact", json!({})).await?;
    ctx.create(&labelled("a", &[("app", "x")])).await?;
    let got: Vec<String> = collect_events(&mut stream, 1, Duration::from_secs(5))
        .await?
        .iter()
        .map(event_summary)
        .collect();
    ensure!(
        got == ["ADDED a"],
        "a live watch after compaction gave {got:?}"
    );
    Ok(())
}

async fn fault_watch_closed_midway(ctx: Ctx) -> Result<(), String> {
    ctx.set_faults(json!({"watch": {"close_after_events_max": 1}}))
        .await?;
    let start = ctx.list_revision().await?;
    for name in ["a", "b", "c"] {
        ctx.create(&configmap(name, &[])).await?;
    }
    let stream = ctx
        .faulty_configmaps()
        .watch(&WatchParams::default().timeout(30), &start)
        .await
        .map_err(|e| e.to_string())?;
    let events = collect_events(stream, 3, Duration::from_secs(5)).await?;
    let got: Vec<String> = events.iter().map(event_summary).collect();
    ensure!(
        got == ["ADDED a"],
        "a watch closed after one event delivered {got:?}"
    );
    Ok(())
}

async fn fault_no_bookmarks(ctx: Ctx) -> Result<(), String> {
    let interval = ctx
        .target
        .bookmark_interval
        .expect("checked by Needs::FastBookmarks");
    let wait = interval * 2 + Duration::from_millis(500);
    let watch = || async {
        let stream = ctx
            .faulty_configmaps()
            .watch(&WatchParams::default().timeout(30), "")
            .await
            .map_err(|e| e.to_string())?;
        collect_with_bookmarks(stream, 1, wait).await
    };
    let events = watch().await?;
    ensure!(
        matches!(events.first(), Some(WatchEvent::Bookmark(_))),
        "no bookmark within twice the interval ({interval:?}) without the fault"
    );
    ctx.set_faults(json!({"watch": {"no_bookmarks": true}}))
        .await?;
    let events = watch().await?;
    ensure!(
        events.is_empty(),
        "got {} events with bookmarks turned off",
        events.len()
    );
    Ok(())
}

async fn fault_compaction_makes_resume_410(ctx: Ctx) -> Result<(), String> {
    let api = ctx.configmaps();
    let created = api
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
        .map_err(|e| e.to_string())?;
    let resume = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    merge(&api, "a", json!({"data": {"k": "v"}})).await?;
    // Before compaction the resume works...
    let stream = api
        .watch(&WatchParams::default().timeout(10), &resume)
        .await
        .map_err(|e| e.to_string())?;
    let got: Vec<String> = collect_events(stream, 1, Duration::from_secs(5))
        .await?
        .iter()
        .map(event_summary)
        .collect();
    ensure!(
        got == ["MODIFIED a"],
        "resume before compaction gave {got:?}"
    );
    admin(&ctx.client, http::Method::POST, "compact", json!({})).await?;
    // ...after it, the same resume gets 410.
    let stream = api
        .watch(&WatchParams::default().timeout(10), &resume)
        .await
        .map_err(|e| e.to_string())?;
    let got: Vec<String> = collect_events(stream, 1, Duration::from_secs(5))
        .await?
        .iter()
        .map(event_summary)
        .collect();
    ensure!(got == ["ERROR 410"], "resume after compaction gave {got:?}");
    Ok(())
}

async fn fault_stale_cached_reads(ctx: Ctx) -> Result<(), String> {
    let api = ctx.configmaps();
    api.create(&PostParams::default(), &configmap("a", &[("v", "1")]))
        .await
        .map_err(|e| e.to_string())?;
    merge(&api, "a", json!({"data": {"v": "2"}})).await?;
    ctx.set_faults(json!({"stale_reads": {"lag_revisions_min": 1, "lag_revisions_max": 1}}))
        .await?;
    let stale = api
        .list(&ListParams::default().match_any())
        .await
        .map_err(|e| e.to_string())?;
    let v = stale
        .items
        .first()
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("v"))
        .cloned();
    ensure!(
        v.as_deref() == Some("1"),
        "a resourceVersion=0 list one revision behind saw v={v:?}"
    );
    let fresh = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let v = fresh
        .items
        .first()
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("v"))
        .cloned();
    ensure!(v.as_deref() == Some("2"), "a consistent list saw v={v:?}");
    let fresh = api.get("a").await.map_err(|e| e.to_string())?;
    ensure!(
        fresh.data.unwrap_or_default().get("v").map(String::as_str) == Some("2"),
        "a plain get was stale"
    );
    Ok(())
}

async fn fault_restart_drops_watches_keeps_store(ctx: Ctx) -> Result<(), String> {
    let api = ctx.configmaps();
    api.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .map_err(|e| e.to_string())?;
    let stream = api
        .watch(&WatchParams::default().timeout(60), "")
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = std::pin::pin!(stream);
    let first = stream.try_next().await.map_err(|e| e.to_string())?;
    ensure!(
        first.as_ref().map(event_summary).as_deref() == Some("ADDED a"),
        "first event {:?}",
        first.as_ref().map(event_summary)
    );
    let before_restart = merge(&api, "a", json!({"data": {"k": "before"}})).await?;
    let resume = before_restart
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    merge(&api, "a", json!({"data": {"k": "after"}})).await?;
    let got: Vec<String> = collect_events(&mut stream, 2, Duration::from_secs(5))
        .await?
        .iter()
        .map(event_summary)
        .collect();
    ensure!(
        got == ["MODIFIED a", "MODIFIED a"],
        "events before the restart {got:?}"
    );
    admin(&ctx.client, http::Method::POST, "restart", json!({})).await?;
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        Err(_) => return Err("the watch survived a restart".into()),
        Ok(Some(Ok(event))) => {
            return Err(format!(
                "the watch delivered {} after a restart",
                event_summary(&event)
            ));
        }
        Ok(None | Some(Err(_))) => {}
    }
    // The store survives: a fresh request (on a fresh connection) sees the last write.
    let mut retries = 0;
    let survivor = loop {
        match api.get("a").await {
            Ok(object) => break object,
            Err(_) if retries < 10 => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("the object is gone after a restart: {e}")),
        }
    };
    let k = survivor.data.unwrap_or_default().get("k").cloned();
    ensure!(
        k.as_deref() == Some("after"),
        "after a restart the object reads k={k:?}"
    );
    // The restarted server's watch cache starts afresh: resuming from before the restart is 410.
    let stream = api
        .watch(&WatchParams::default().timeout(10), &resume)
        .await
        .map_err(|e| e.to_string())?;
    let got: Vec<String> = collect_events(stream, 1, Duration::from_secs(5))
        .await?
        .iter()
        .map(event_summary)
        .collect();
    ensure!(
        got == ["ERROR 410"],
        "a resume from before the restart gave {got:?}"
    );
    Ok(())
}

/// The simulated API server's host name and port inside [`run_simulated`].
pub const SIMULATED_SERVER: &str = "apiserver:6443";

/// Run the suite inside a turmoil simulation seeded with `seed`: the API server on one host, the
/// suite's kube-rs clients on another, talking over simulated TCP.
pub fn run_simulated(
    seed: u64,
    filter: Option<String>,
    progress: impl FnMut(&CaseResult) + 'static,
) -> Vec<CaseResult> {
    use crate::apiserver::{ApiServer, Clock, ServerConfig};
    use std::sync::Mutex;

    let bookmark_interval = Duration::from_secs(1);
    let server = ApiServer::new(ServerConfig {
        seed,
        clock: Clock::Simulated {
            epoch: std::time::UNIX_EPOCH + Duration::from_secs(1_795_248_000),
        },
        bookmark_interval,
        ..ServerConfig::default()
    });
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(3600))
        .build();
    sim.host("apiserver", move || server.clone().serve_simulated(6443));
    let results = Arc::new(Mutex::new(Vec::new()));
    let out = results.clone();
    sim.client("conformance", async move {
        let target = Target::new("simulated", true, |identity| {
            crate::transport::client(crate::transport::ClientConfig::harness(
                SIMULATED_SERVER,
                identity,
            ))
        })
        .with_bookmark_interval(bookmark_interval);
        let got = run(&target, filter.as_deref(), progress).await;
        *out.lock().expect("not poisoned") = got;
        Ok(())
    });
    if let Err(error) = sim.run() {
        panic!("the simulation failed (seed {seed}): {error}");
    }
    results.lock().expect("not poisoned").clone()
}
