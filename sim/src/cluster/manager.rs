//! The controller manager's loop body, for any shell: list Deployments, ReplicaSets and Pods
//! through the API, ask [`super::controller`] what to change, and change it through the API.
//!
//! It is client code only (a `kube::Client`, no processes, no clock of its own: the caller gives
//! the time), so the same code runs in `khaos serve --cluster` and, over simulated TCP, in the
//! simulator.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::controller::{self, Change};

/// One look: list, decide at `now_ms` (Unix milliseconds), apply. A failed list is the error;
/// the changes that failed (a conflict, a vanished object) are returned, for the next look
/// decides again from what is there.
pub async fn tick(
    client: &kube::Client,
    node: &str,
    now_ms: i64,
) -> Result<Vec<kube::Error>, kube::Error> {
    let deployments = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let replica_sets = Api::<ReplicaSet>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let now = now_ms;
    let mut changes = Vec::new();
    for d in &deployments.items {
        changes.extend(controller::deployment(d, &replica_sets.items, now));
    }
    for rs in &replica_sets.items {
        changes.extend(controller::replica_set(rs, &pods.items));
    }
    changes.extend(controller::schedule(&pods.items, node));
    let mut failed = Vec::new();
    for change in changes {
        if let Err(error) = apply(client, change, &replica_sets.items, &deployments.items).await {
            failed.push(error);
        }
    }
    Ok(failed)
}

/// Make one change through the API.
async fn apply(
    client: &kube::Client,
    change: Change,
    replica_sets: &[ReplicaSet],
    deployments: &[Deployment],
) -> Result<(), kube::Error> {
    let pods = |ns: &str| Api::<Pod>::namespaced(client.clone(), ns);
    let sets = |ns: &str| Api::<ReplicaSet>::namespaced(client.clone(), ns);
    match change {
        Change::CreatePod(pod) => {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            pods(&ns).create(&PostParams::default(), &pod).await?;
        }
        Change::DeletePod { namespace, name } => {
            pods(&namespace)
                .delete(&name, &DeleteParams::default())
                .await?;
        }
        Change::BindPod {
            namespace,
            name,
            node,
        } => {
            let patch = json!({"spec": {"nodeName": node}});
            pods(&namespace)
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        Change::ReplicaSetStatus {
            namespace,
            name,
            status,
        } => {
            let Some(mut rs) = replica_sets
                .iter()
                .find(|r| {
                    r.metadata.namespace.as_deref() == Some(&namespace)
                        && r.metadata.name.as_deref() == Some(&name)
                })
                .cloned()
            else {
                return Ok(());
            };
            rs.status = Some(*status);
            sets(&namespace)
                .replace_status(&name, &PostParams::default(), &rs)
                .await?;
        }
        Change::CreateReplicaSet(rs) => {
            let ns = rs.metadata.namespace.clone().unwrap_or_default();
            sets(&ns).create(&PostParams::default(), &rs).await?;
        }
        Change::ScaleReplicaSet {
            namespace,
            name,
            replicas,
        } => {
            let patch = json!({"spec": {"replicas": replicas}});
            sets(&namespace)
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        Change::DeploymentStatus {
            namespace,
            name,
            status,
        } => {
            let Some(mut d) = deployments
                .iter()
                .find(|d| {
                    d.metadata.namespace.as_deref() == Some(&namespace)
                        && d.metadata.name.as_deref() == Some(&name)
                })
                .cloned()
            else {
                return Ok(());
            };
            d.status = Some(*status);
            Api::<Deployment>::namespaced(client.clone(), &namespace)
                .replace_status(&name, &PostParams::default(), &d)
                .await?;
        }
    }
    Ok(())
}
