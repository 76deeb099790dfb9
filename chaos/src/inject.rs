//! The pod-chaos injector: one fault on one pod, chosen by role, through the Kubernetes API only,
//! so the same code runs against kind, any cluster, and `khaos serve --cluster`.
//!
//! Safety comes first, as the careful chaos tools do it and more:
//! - the namespace is explicit, never a system one (`kube-system`, `kube-public`,
//!   `kube-node-lease`, any `kube-*`), and must carry the opt-in annotation
//!   [`OPT_IN_ANNOTATION`]` = enabled` (Chaos Mesh's guard, which it leaves off by default);
//! - the label selector is explicit and not empty;
//! - only pods that a ReplicaSet controls are touched (they come back), and only while fewer than
//!   `max_down` of the selected pods are down (being deleted, or not ready);
//! - a dry run says what would be hit and changes nothing.
//!
//! Every refusal names what to change. What the API answered is the [`Injected`] record, apart
//! from any effect: whether the process went and a replacement came is for the observer to see.
//!
//! The leader is found as the candidates find it: the holder of the lock, a ConfigMap or a
//! Lease, whose identity is the pod's name (`khaos node` takes `POD_NAME`).

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use khaos_elector::LockKind;
use khaos_elector::lock::Lock;
use kube::api::{Api, DeleteParams, ListParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The annotation a namespace must carry, set to `enabled`, before any pod in it is touched.
pub const OPT_IN_ANNOTATION: &str = "khaos.dev/chaos";

/// Which pod to hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aim {
    /// The pod whose name holds the lock.
    Leader,
    /// A running pod that does not hold the lock (drawn from the seed).
    Standby,
    /// Any running pod (drawn from the seed).
    Random,
}

/// What to do to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Delete the pod: with `grace_seconds`, or the pod's own grace when `None`; 0 is a force
    /// delete (`kubectl delete --grace-period=0 --force`).
    Delete {
        /// The grace in seconds.
        grace_seconds: Option<u32>,
    },
    /// Evict the pod (`POST .../pods/NAME/eviction`), a graceful delete that disruption budgets
    /// may refuse.
    Evict,
}

/// Where the injector may act.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The namespace (it must opt in).
    pub namespace: String,
    /// The pods' label selector, e.g. `app=khaos-ha`.
    pub selector: String,
    /// Refuse while this many selected pods are down already.
    pub max_down: usize,
}

/// The lock whose holder is the leader.
#[derive(Clone, Debug)]
pub struct LockRef {
    /// Its kind.
    pub kind: LockKind,
    /// Its name (`khaos-ha-cluster-config-map`, `khaos-ha-cluster-leader`, ...).
    pub name: String,
}

/// What was asked, and what the API answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Injected {
    /// The pod.
    pub pod: String,
    /// Its uid when it was chosen.
    pub uid: String,
    /// Whom it was chosen as.
    pub aim: Aim,
    /// What was asked.
    pub action: Action,
    /// The API's answer.
    #[serde(flatten)]
    pub answer: Answer,
}

/// The API's answer to an injection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Accepted.
    Accepted,
    /// Refused, with the Status it gave (a 404: the pod went meanwhile; a 429: a disruption
    /// budget).
    Refused {
        /// The HTTP code.
        code: u16,
        /// The Status message.
        message: String,
    },
    /// A dry run: nothing was sent.
    DryRun,
}

/// Why nothing was injected.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A system namespace.
    #[error(
        "refusing to touch namespace {0:?}: system namespaces (kube-system, kube-public, kube-node-lease, kube-*) are never a chaos target; deploy the candidates to a namespace of their own"
    )]
    SystemNamespace(String),
    /// The namespace does not exist.
    #[error("namespace {0:?} does not exist; give the namespace the candidates run in")]
    NoNamespace(String),
    /// The namespace has not opted in.
    #[error(
        "namespace {namespace:?} has not opted in to chaos: if pods there are meant to be hit, run `kubectl annotate namespace {namespace} {OPT_IN_ANNOTATION}=enabled`"
    )]
    NotOptedIn {
        /// The namespace.
        namespace: String,
    },
    /// An empty selector.
    #[error(
        "an empty selector matches every pod in the namespace; give the candidates' labels, e.g. --selector app=khaos-ha"
    )]
    EmptySelector,
    /// `max_down` of 0 would never act.
    #[error("--max-down 0 allows no pod down, so nothing could ever be hit; give 1 or more")]
    NoneMayBeDown,
    /// Nothing matches.
    #[error("no running pod in {namespace:?} matches {selector:?}{why}")]
    NoTarget {
        /// The namespace.
        namespace: String,
        /// The selector.
        selector: String,
        /// What else was looked for.
        why: String,
    },
    /// Too many down already.
    #[error(
        "{down} of the {wanted} pods the ReplicaSets of {selector:?} want are down already (missing, being deleted or not ready), and --max-down is {max}: wait for them to come back, or raise --max-down"
    )]
    TooManyDown {
        /// Down now.
        down: usize,
        /// Wanted by their ReplicaSets.
        wanted: usize,
        /// The selector.
        selector: String,
        /// The cap.
        max: usize,
    },
    /// The lock does not exist.
    #[error(
        "there is no lock {name:?} in namespace {namespace:?}, so the leader is unknown: give the candidates' --cluster-id and --lock (khaos node names its lock {{cluster-id}}-cluster-config-map, or {{cluster-id}}-cluster-leader for a Lease)"
    )]
    NoLock {
        /// The lock's name.
        name: String,
        /// The namespace.
        namespace: String,
    },
    /// The lock's holder is not one of the selected pods.
    #[error(
        "the lock {lock:?} is held by {holder:?}, which is not a running pod matching {selector:?}: the selector is not the candidates', or their identity is not the pod name (khaos node takes POD_NAME)"
    )]
    HolderNotSelected {
        /// The lock.
        lock: String,
        /// Its holder.
        holder: String,
        /// The selector.
        selector: String,
    },
    /// The selector has no positive requirement.
    #[error(
        "the selector {0:?} has no requirement such as app=khaos-ha or app in (khaos-ha): negations alone match every other pod in the namespace"
    )]
    NoPositiveRequirement(String),
    /// A selected pod is not a ReplicaSet's.
    #[error(
        "the selector {selector:?} matches pod {pod:?}, which no ReplicaSet controls: narrow the selector to the candidates' Deployment (nothing would bring such a pod back)"
    )]
    SelectsUnreplicated {
        /// The selector.
        selector: String,
        /// The pod.
        pod: String,
    },
    /// The API could not be asked.
    #[error("asking the API server: {0}")]
    Api(#[from] kube::Error),
    /// The lock could not be read.
    #[error("reading the lock {name:?}: {reason}")]
    Lock {
        /// The lock.
        name: String,
        /// Why.
        reason: String,
    },
}

fn is_system(namespace: &str) -> bool {
    namespace.starts_with("kube-")
}

/// Whether a label selector has a requirement that selects by value (`k=v`, `k==v`,
/// `k in (...)`) or by presence (`k`), not only negations (`k!=v`, `!k`, `k notin (...)`).
fn has_positive_requirement(selector: &str) -> bool {
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut current = String::new();
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts.iter().map(|p| p.trim()).any(|part| {
        if part.is_empty() || part.starts_with('!') || part.contains("!=") {
            return false;
        }
        let words: Vec<&str> = part.split_whitespace().collect();
        !(words.len() > 1 && words[1] == "notin")
    })
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The ReplicaSet that controls `pod`, if one does.
fn replica_set_of(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| {
            r.controller == Some(true) && r.kind == "ReplicaSet" && r.api_version == "apps/v1"
        })
        .map(|r| r.name.clone())
}

fn active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

/// Check the scope, choose the pod `aim` names (drawing from `seed` where a choice is left), and
/// unless `dry_run`, do `action` to it.
pub async fn inject(
    client: &kube::Client,
    scope: &Scope,
    lock: &LockRef,
    aim: Aim,
    action: Action,
    seed: u64,
    dry_run: bool,
) -> Result<Injected, Refusal> {
    let namespace = scope.namespace.as_str();
    if is_system(namespace) {
        return Err(Refusal::SystemNamespace(namespace.to_owned()));
    }
    if scope.selector.trim().is_empty() {
        return Err(Refusal::EmptySelector);
    }
    if !has_positive_requirement(&scope.selector) {
        return Err(Refusal::NoPositiveRequirement(scope.selector.clone()));
    }
    if scope.max_down == 0 {
        return Err(Refusal::NoneMayBeDown);
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = namespaces.get_opt(namespace).await? else {
        return Err(Refusal::NoNamespace(namespace.to_owned()));
    };
    let opted_in = ns
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OPT_IN_ANNOTATION))
        .is_some_and(|v| v == "enabled");
    if !opted_in {
        return Err(Refusal::NotOptedIn {
            namespace: namespace.to_owned(),
        });
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut selected = pods
        .list(&ListParams::default().labels(&scope.selector))
        .await?
        .items;
    // Finished pods (evicted by the node, say) are history, not candidates.
    selected.retain(|p| !finished(p));
    selected.sort_by(|a, b| name(a).cmp(name(b)));
    let mut sets = std::collections::BTreeSet::new();
    for pod in &selected {
        let Some(set) = replica_set_of(pod) else {
            return Err(Refusal::SelectsUnreplicated {
                selector: scope.selector.clone(),
                pod: name(pod).to_owned(),
            });
        };
        sets.insert(set);
    }
    // Down: what the ReplicaSets want and is not ready (a force-deleted pod is gone before its
    // replacement exists), or what exists and is not ready, whichever is more.
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let mut wanted: usize = 0;
    for set in &sets {
        if let Some(rs) = replica_sets.get_opt(set).await? {
            wanted += usize::try_from(rs.spec.replicas.unwrap_or(1)).unwrap_or(0);
        }
    }
    let up = selected.iter().filter(|p| active(p) && ready(p)).count();
    let down = wanted
        .saturating_sub(up)
        .max(selected.len().saturating_sub(up));
    if down >= scope.max_down {
        return Err(Refusal::TooManyDown {
            down,
            wanted,
            selector: scope.selector.clone(),
            max: scope.max_down,
        });
    }
    let running: Vec<&Pod> = selected.iter().filter(|p| active(p)).collect();
    let no_target = |why: String| Refusal::NoTarget {
        namespace: namespace.to_owned(),
        selector: scope.selector.clone(),
        why,
    };
    if running.is_empty() {
        return Err(no_target(String::new()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let target = match aim {
        Aim::Leader => {
            let Some(holder) = holder(client, namespace, lock).await? else {
                return Err(no_target(format!(
                    " and holds the lock {:?}: nobody holds it now",
                    lock.name
                )));
            };
            running
                .iter()
                .find(|p| name(p) == holder)
                .copied()
                .ok_or_else(|| {
                    no_target(format!(
                        " and holds the lock {:?} (its holder is {holder:?}, not a running pod of the selector)",
                        lock.name
                    ))
                })?
        }
        Aim::Standby | Aim::Random => {
            let holder = if aim == Aim::Standby {
                holder(client, namespace, lock).await?
            } else {
                None
            };
            // A holder outside the selection would make every selected pod a "standby".
            if let Some(h) = &holder
                && !running.iter().any(|p| name(p) == h)
            {
                return Err(Refusal::HolderNotSelected {
                    lock: lock.name.clone(),
                    holder: h.clone(),
                    selector: scope.selector.clone(),
                });
            }
            let choices: Vec<&Pod> = running
                .iter()
                .filter(|p| holder.as_deref() != Some(name(p)))
                .copied()
                .collect();
            if choices.is_empty() {
                let why = match aim {
                    Aim::Standby => " without holding the lock".to_owned(),
                    _ => String::new(),
                };
                return Err(no_target(why));
            }
            choices[rng.random_range(0..choices.len())]
        }
    };
    let pod = name(target).to_owned();
    let uid = target.metadata.uid.clone().unwrap_or_default();
    let answer = if dry_run {
        Answer::DryRun
    } else {
        // Only the pod that was chosen: a pod made again under its name is another.
        let only_this = |grace_period_seconds| DeleteParams {
            grace_period_seconds,
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let result = match action {
            Action::Delete { grace_seconds } => pods
                .delete(&pod, &only_this(grace_seconds))
                .await
                .map(|_| ()),
            Action::Evict => {
                let params = kube::api::EvictParams {
                    delete_options: Some(only_this(None)),
                    ..kube::api::EvictParams::default()
                };
                pods.evict(&pod, &params).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => Answer::Accepted,
            Err(kube::Error::Api(status)) => Answer::Refused {
                code: status.code,
                message: status.message,
            },
            Err(error) => return Err(Refusal::Api(error)),
        }
    };
    Ok(Injected {
        pod,
        uid,
        aim,
        action,
        answer,
    })
}

/// Why KUBECONFIG's cluster is not one to hit.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The kubeconfig could not be read.
    #[error("reading KUBECONFIG: {0}")]
    Read(#[from] kube::config::KubeconfigError),
    /// No current context.
    #[error(
        "KUBECONFIG has no current context; choose one with `kubectl config use-context kind-NAME`"
    )]
    NoContext,
    /// A cluster that is neither kind nor on this machine.
    #[error(
        "KUBECONFIG's current context {context:?} (server {server}) is neither a kind cluster (kind-*) nor on this machine: switch context (`kubectl config use-context kind-NAME`), or pass --allow-any-cluster if chaos is meant there"
    )]
    NotLocal {
        /// The context.
        context: String,
        /// Its cluster's server.
        server: String,
    },
}

/// Refuse KUBECONFIG's current context unless it is a kind cluster (`kind-*`, as kind names
/// them) or its server is on this machine (`khaos serve --cluster`), or `allow_any` says so.
pub fn check_kubeconfig_context(allow_any: bool) -> Result<(), ContextError> {
    if allow_any {
        return Ok(());
    }
    let config = kube::config::Kubeconfig::read()?;
    let context = config
        .current_context
        .clone()
        .ok_or(ContextError::NoContext)?;
    let cluster = config
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let server = cluster
        .and_then(|name| config.clusters.iter().find(|c| c.name == name))
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    if context_is_local(&context, &server) {
        Ok(())
    } else {
        Err(ContextError::NotLocal { context, server })
    }
}

/// Whether a context is kind's or its server is on this machine.
pub fn context_is_local(context: &str, server: &str) -> bool {
    let host = server
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(|h| h.trim_matches(['[', ']']).to_owned()));
    let loopback = host.is_some_and(|h| {
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    context.starts_with("kind-") || loopback
}

/// The lock's holder now, if anyone holds it.
async fn holder(
    client: &kube::Client,
    namespace: &str,
    lock: &LockRef,
) -> Result<Option<String>, Refusal> {
    let state = Lock::new(client.clone(), namespace, &lock.name, lock.kind)
        .read()
        .await
        .map_err(|e| Refusal::Lock {
            name: lock.name.clone(),
            reason: e.to_string(),
        })?;
    if state.resource_version.is_none() {
        return Err(Refusal::NoLock {
            name: lock.name.clone(),
            namespace: namespace.to_owned(),
        });
    }
    Ok(state
        .record
        .map(|r| r.holder_identity)
        .filter(|h| !h.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kind_contexts_and_servers_on_this_machine_are_hit_without_a_flag() {
        assert!(context_is_local("kind-khaos", "https://10.0.0.5:6443"));
        assert!(context_is_local("local", "http://127.0.0.1:6443"));
        assert!(context_is_local("local", "https://[::1]:6443"));
        assert!(context_is_local("local", "https://localhost:6443"));
        assert!(!context_is_local("prod-eu", "https://api.prod.example.com"));
        assert!(!context_is_local("gke_project_zone_c", "https://34.1.2.3"));
        assert!(!context_is_local("mine", ""));
    }

    #[test]
    fn a_selector_must_select_by_value_or_presence_not_only_by_negation() {
        for yes in [
            "app=khaos-ha",
            "app==x",
            "app in (a,b)",
            "app",
            "app!=db,tier=web",
        ] {
            assert!(has_positive_requirement(yes), "{yes}");
        }
        for no in ["app!=db", "!app", "tier notin (x,y)", "app!=db,!foo", " , "] {
            assert!(!has_positive_requirement(no), "{no}");
        }
    }

    #[test]
    fn system_namespaces_are_never_targets() {
        for ns in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "kube-anything",
        ] {
            assert!(is_system(ns), "{ns}");
        }
        for ns in ["default", "khaos-chaos", "kubeflow"] {
            assert!(!is_system(ns), "{ns}");
        }
    }
}
