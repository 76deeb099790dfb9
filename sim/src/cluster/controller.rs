//! The ReplicaSet and Deployment controllers' decisions, and the one-node scheduler's.
//!
//! Each is a pure function of the objects listed (and, for status conditions, the time). A shell
//! lists, decides, applies the changes, and lists again before the next decision, so a decision
//! always sees the effects of the last one (the real controllers' "expectations" do the same
//! job for controllers that act on a watch cache).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::{time_at, time_ms};

/// The label a Deployment's ReplicaSets and pods carry: the hash of their pod template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The annotation holding a Deployment's revision on it and its ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// The most pods one decision creates or deletes for one ReplicaSet, as kube-controller-manager's
/// `burstReplicas`: the rest follow at the next decisions.
pub const BURST_REPLICAS: usize = 500;

/// One change to make through the API.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Create this pod (named by `generateName`).
    CreatePod(Box<Pod>),
    /// Delete this pod with its own grace (a scale-down).
    DeletePod {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Bind this pod to a node (set `spec.nodeName`).
    BindPod {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The node.
        node: String,
    },
    /// Write a ReplicaSet's status.
    ReplicaSetStatus {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The status.
        status: Box<ReplicaSetStatus>,
    },
    /// Create this ReplicaSet.
    CreateReplicaSet(Box<ReplicaSet>),
    /// Set a ReplicaSet's `spec.replicas`.
    ScaleReplicaSet {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The replicas wanted.
        replicas: i32,
    },
    /// Write a Deployment's status.
    DeploymentStatus {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The status.
        status: Box<DeploymentStatus>,
    },
}

/// Whether a pod counts for its ReplicaSet (`IsPodActive`): not finished and not being
/// deleted. A pod marked for deletion no longer counts, so its replacement is made at once,
/// while the old pod's process may still run.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether a pod is ready (its Ready condition is True).
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

fn owned_by<'a>(meta: &'a ObjectMeta, owner: &ObjectMeta) -> bool {
    let _: &'a ObjectMeta = meta;
    meta.namespace == owner.namespace
        && controller_of(meta).is_some_and(|r| Some(&r.uid) == owner.uid.as_ref())
}

fn owner_reference(kind: &str, api_version: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The ReplicaSet controller: create pods from the template while fewer than `spec.replicas`
/// are active, delete the least valuable active ones while more are, and report the counts.
pub fn replica_set(rs: &ReplicaSet, pods: &[Pod]) -> Vec<Change> {
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    let spec = rs.spec.clone();
    let desired = spec.replicas.unwrap_or(1).max(0) as usize;
    let mut active: Vec<&Pod> = pods
        .iter()
        .filter(|p| owned_by(&p.metadata, &rs.metadata) && is_active(p))
        .collect();
    let mut changes = Vec::new();
    if rs.metadata.deletion_timestamp.is_some() {
        return changes;
    }
    if active.len() < desired {
        for _ in active.len()..desired.min(active.len() + BURST_REPLICAS) {
            changes.push(Change::CreatePod(Box::new(pod_from_template(
                spec.template.clone().unwrap_or_default(),
                &rs.metadata,
            ))));
        }
    } else if active.len() > desired {
        // The least valuable first, as `ActivePodsWithRanks` orders them: unscheduled, then
        // pending, then not ready, then the newest.
        active.sort_by_key(|p| {
            let scheduled = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some();
            let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let created = p.metadata.creation_timestamp.as_ref().map_or(0, time_ms);
            (scheduled, running, is_ready(p), std::cmp::Reverse(created))
        });
        let surplus = (active.len() - desired).min(BURST_REPLICAS);
        for pod in &active[..surplus] {
            changes.push(Change::DeletePod {
                namespace: namespace.clone(),
                name: pod.metadata.name.clone().unwrap_or_default(),
            });
        }
    }
    let ready = active.iter().filter(|p| is_ready(p)).count() as i32;
    let status = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(active.len() as i32),
        ready_replicas: Some(ready),
        available_replicas: Some(ready),
        observed_generation: rs.metadata.generation,
        ..ReplicaSetStatus::default()
    };
    if rs.status.as_ref() != Some(&status) {
        changes.push(Change::ReplicaSetStatus {
            namespace,
            name,
            status: Box::new(status),
        });
    }
    changes
}

fn pod_from_template(template: PodTemplateSpec, owner: &ObjectMeta) -> Pod {
    let meta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name.as_deref().unwrap_or(""))),
            namespace: owner.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            owner_references: Some(vec![owner_reference("ReplicaSet", "apps/v1", owner)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// The one-node scheduler: bind every pod that has no node (and is not being deleted) to `node`.
pub fn schedule(pods: &[Pod], node: &str) -> Vec<Change> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.spec
                .as_ref()
                .is_some_and(|s| s.node_name.as_deref().unwrap_or("").is_empty())
        })
        .map(|p| Change::BindPod {
            namespace: p.metadata.namespace.clone().unwrap_or_default(),
            name: p.metadata.name.clone().unwrap_or_default(),
            node: node.to_owned(),
        })
        .collect()
}

/// The hash naming a pod template's ReplicaSet: FNV-1a (32 bits) of the template's JSON,
/// spelled in the alphabet `rand.SafeEncodeString` uses (no vowels, no look-alikes), as the
/// `pod-template-hash` label is.
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let json = serde_json::to_vec(template).expect("a template serialises");
    let hash = json.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|d| ALPHABET[usize::from(d - b'0') % ALPHABET.len()] as char)
        .collect()
}

/// The Deployment controller: one ReplicaSet per pod template, the current one scaled to
/// `spec.replicas` and every older one to zero, and a status from their counts with the
/// conditions `kubectl rollout status` reads.
///
/// Simplified from the real controller: a change of template scales the new ReplicaSet up and
/// the old ones down at once, not step by step within `maxSurge` and `maxUnavailable`.
pub fn deployment(d: &Deployment, replica_sets: &[ReplicaSet], now_ms: i64) -> Vec<Change> {
    let namespace = d.metadata.namespace.clone().unwrap_or_default();
    let name = d.metadata.name.clone().unwrap_or_default();
    let mut changes = Vec::new();
    if d.metadata.deletion_timestamp.is_some() {
        return changes;
    }
    let spec = d.spec.clone();
    let desired = spec.replicas.unwrap_or(1);
    let owned: Vec<&ReplicaSet> = replica_sets
        .iter()
        .filter(|rs| owned_by(&rs.metadata, &d.metadata))
        .collect();
    let hash = template_hash(&spec.template);
    let current = owned.iter().find(|rs| {
        rs.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH))
            == Some(&hash)
    });
    let revision = owned
        .iter()
        .filter_map(|rs| {
            rs.metadata
                .annotations
                .as_ref()?
                .get(REVISION_ANNOTATION)?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    match current {
        None => {
            let mut template = spec.template.clone();
            let mut labels = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
            template
                .metadata
                .get_or_insert_with(Default::default)
                .labels = Some(labels.clone());
            let mut selector = spec.selector.clone();
            selector
                .match_labels
                .get_or_insert_with(BTreeMap::new)
                .insert(POD_TEMPLATE_HASH.into(), hash.clone());
            changes.push(Change::CreateReplicaSet(Box::new(ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(format!("{name}-{hash}")),
                    namespace: Some(namespace.clone()),
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([(
                        REVISION_ANNOTATION.to_owned(),
                        (revision + 1).to_string(),
                    )])),
                    owner_references: Some(vec![owner_reference(
                        "Deployment",
                        "apps/v1",
                        &d.metadata,
                    )]),
                    ..ObjectMeta::default()
                },
                spec: ReplicaSetSpec {
                    replicas: Some(desired),
                    selector: LabelSelector { ..selector },
                    template: Some(template),
                    min_ready_seconds: spec.min_ready_seconds,
                },
                status: None,
            })));
        }
        Some(current) => {
            let scale = |rs: &ReplicaSet, replicas: i32, changes: &mut Vec<Change>| {
                if rs.spec.replicas != Some(replicas) {
                    changes.push(Change::ScaleReplicaSet {
                        namespace: namespace.clone(),
                        name: rs.metadata.name.clone().unwrap_or_default(),
                        replicas,
                    });
                }
            };
            scale(current, desired, &mut changes);
            for old in owned
                .iter()
                .filter(|rs| rs.metadata.uid != current.metadata.uid)
            {
                scale(old, 0, &mut changes);
            }
        }
    }
    let counts = |rs: &&ReplicaSet| {
        let s = rs.status.clone().unwrap_or_default();
        (
            s.replicas,
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
        )
    };
    let (replicas, ready, available) = owned
        .iter()
        .map(counts)
        .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
    let updated = current.map_or(0, |rs| counts(rs).0);
    let complete =
        current.is_some() && updated == desired && replicas == updated && available >= desired;
    let previous = d.status.clone().unwrap_or_default();
    let condition = |kind: &str, holds: bool, reason: &str, message: String| {
        let value = if holds { "True" } else { "False" };
        let old = previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_.as_deref() == Some(kind))
            .cloned();
        let same = old.as_ref().is_some_and(|c| {
            c.status.as_deref() == Some(value) && c.reason.as_deref() == Some(reason)
        });
        let at = time_at(now_ms);
        DeploymentCondition {
            type_: Some(kind.to_owned()),
            status: Some(value.to_owned()),
            reason: Some(reason.to_owned()),
            message: Some(message),
            last_transition_time: match &old {
                Some(c) if c.status.as_deref() == Some(value) => c.last_transition_time.clone(),
                _ => Some(at.clone()),
            },
            last_update_time: match &old {
                Some(c) if same => c.last_update_time.clone(),
                _ => Some(at),
            },
        }
    };
    let rs_name = format!("{name}-{hash}");
    let status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((desired - available).max(0)).filter(|u| *u > 0),
        conditions: Some(vec![
            condition(
                "Available",
                available >= desired,
                if available >= desired {
                    "MinimumReplicasAvailable"
                } else {
                    "MinimumReplicasUnavailable"
                },
                if available >= desired {
                    "Deployment has minimum availability.".to_owned()
                } else {
                    "Deployment does not have minimum availability.".to_owned()
                },
            ),
            condition(
                "Progressing",
                true,
                if complete {
                    "NewReplicaSetAvailable"
                } else {
                    "ReplicaSetUpdated"
                },
                if complete {
                    format!("ReplicaSet \"{rs_name}\" has successfully progressed.")
                } else {
                    format!("ReplicaSet \"{rs_name}\" is progressing.")
                },
            ),
        ]),
        ..DeploymentStatus::default()
    };
    if d.status.as_ref() != Some(&status) {
        changes.push(Change::DeploymentStatus {
            namespace,
            name,
            status: Box::new(status),
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use k8s_openapi::api::core::v1::{Container, PodCondition, PodSpec, PodStatus};

    const T0: i64 = 1_800_000_000_000;

    fn template() -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    image: Some("khaos:dev".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    fn rs(replicas: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-abc".into()),
                namespace: Some("default".into()),
                uid: Some("rs-uid".into()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                template: Some(template()),
                ..ReplicaSetSpec::default()
            },
            status: None,
        }
    }

    fn owned_pod(name: &str, owner: &ReplicaSet, ready: bool, created_s: i64) -> Pod {
        let mut pod = pod_from_template(template(), &owner.metadata);
        pod.metadata.name = Some(name.into());
        pod.metadata.uid = Some(format!("{name}-uid"));
        pod.metadata.creation_timestamp = Some(time_at(T0 + created_s * 1000));
        pod.spec.as_mut().unwrap().node_name = Some("khaos-node".into());
        pod.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        pod
    }

    fn creates(changes: &[Change]) -> usize {
        changes
            .iter()
            .filter(|c| matches!(c, Change::CreatePod(_)))
            .count()
    }

    #[test]
    fn a_replica_set_creates_owned_pods_from_its_template() {
        let rs = rs(3);
        let changes = replica_set(&rs, &[]);
        assert_eq!(creates(&changes), 3);
        let Change::CreatePod(pod) = &changes[0] else {
            panic!("{changes:?}")
        };
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-abc-"));
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ReplicaSet", "rs-uid")
        );
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["app"], "web");
    }

    #[test]
    fn a_pod_being_deleted_no_longer_counts_so_its_replacement_is_made_at_once() {
        let rs = rs(2);
        let mut dying = owned_pod("a", &rs, true, 0);
        dying.metadata.deletion_timestamp = Some(time_at(T0 + 30_000));
        let pods = [dying, owned_pod("b", &rs, true, 1)];
        assert_eq!(creates(&replica_set(&rs, &pods)), 1);
        // Finished pods do not count either; other owners' pods are not this set's.
        let mut done = owned_pod("c", &rs, false, 2);
        done.status.as_mut().unwrap().phase = Some("Failed".into());
        let mut stranger = owned_pod("d", &rs, true, 3);
        stranger.metadata.owner_references.as_mut().unwrap()[0].uid = "other".into();
        assert_eq!(creates(&replica_set(&rs, &[done, stranger])), 2);
    }

    #[test]
    fn scaling_down_deletes_the_not_ready_then_the_newest() {
        let rs = rs(1);
        let pods = [
            owned_pod("old-ready", &rs, true, 0),
            owned_pod("new-ready", &rs, true, 5),
            owned_pod("not-ready", &rs, false, 1),
        ];
        let deleted: Vec<String> = replica_set(&rs, &pods)
            .into_iter()
            .filter_map(|c| match c {
                Change::DeletePod { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, ["not-ready", "new-ready"]);
    }

    #[test]
    fn a_huge_scale_creates_a_burst_at_a_time() {
        assert_eq!(
            creates(&replica_set(&rs(2_000_000_000), &[])),
            BURST_REPLICAS
        );
    }

    #[test]
    fn a_replica_set_reports_its_counts_once() {
        let mut rs = rs(2);
        let pods = [owned_pod("a", &rs, true, 0), owned_pod("b", &rs, false, 1)];
        let changes = replica_set(&rs, &pods);
        let Some(Change::ReplicaSetStatus { status, .. }) = changes.last() else {
            panic!("{changes:?}")
        };
        assert_eq!((status.replicas, status.ready_replicas), (2, Some(1)));
        rs.status = Some((**status).clone());
        assert_eq!(replica_set(&rs, &pods), vec![]);
    }

    #[test]
    fn unscheduled_pods_are_bound_to_the_node() {
        let rs = rs(1);
        let mut pod = owned_pod("a", &rs, false, 0);
        pod.spec.as_mut().unwrap().node_name = None;
        assert_eq!(
            schedule(&[pod], "khaos-node"),
            vec![Change::BindPod {
                namespace: "default".into(),
                name: "a".into(),
                node: "khaos-node".into()
            }]
        );
    }

    fn deployment_of(replicas: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("d-uid".into()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec: DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                    ..LabelSelector::default()
                },
                template: template(),
                ..DeploymentSpec::default()
            },
            status: None,
        }
    }

    #[test]
    fn a_deployment_makes_one_replica_set_per_template_and_retires_the_old() {
        let d = deployment_of(3);
        let changes = deployment(&d, &[], T0);
        let Change::CreateReplicaSet(rs) = &changes[0] else {
            panic!("{changes:?}")
        };
        let hash = template_hash(&template());
        assert_eq!(
            rs.metadata.name.as_deref(),
            Some(format!("web-{hash}").as_str())
        );
        assert_eq!(rs.spec.replicas, Some(3));
        assert_eq!(
            rs.spec.selector.match_labels.as_ref().unwrap()[POD_TEMPLATE_HASH],
            hash
        );
        let mut current = (**rs).clone();
        current.metadata.uid = Some("rs-1".into());
        // A new template: a second set, and the first is scaled to zero once the second exists.
        let mut changed = d.clone();
        changed.spec.template.spec.as_mut().unwrap().containers[0].image = Some("khaos:v2".into());
        let changes = deployment(&changed, std::slice::from_ref(&current), T0);
        let Change::CreateReplicaSet(second) = &changes[0] else {
            panic!("{changes:?}")
        };
        assert_eq!(
            second.metadata.annotations.as_ref().unwrap()[REVISION_ANNOTATION],
            "2"
        );
        let mut second = (**second).clone();
        second.metadata.uid = Some("rs-2".into());
        let changes = deployment(&changed, &[current, second], T0);
        assert!(changes.contains(&Change::ScaleReplicaSet {
            namespace: "default".into(),
            name: format!("web-{hash}"),
            replicas: 0
        }));
    }

    #[test]
    fn a_deployment_reports_a_complete_rollout_only_when_every_replica_is_available() {
        let d = deployment_of(2);
        let Change::CreateReplicaSet(rs) = deployment(&d, &[], T0).remove(0) else {
            panic!()
        };
        let mut rs = *rs;
        rs.metadata.uid = Some("rs-1".into());
        rs.status = Some(ReplicaSetStatus {
            replicas: 2,
            ready_replicas: Some(1),
            available_replicas: Some(1),
            ..ReplicaSetStatus::default()
        });
        let progressing = |changes: Vec<Change>| {
            changes
                .into_iter()
                .find_map(|c| match c {
                    Change::DeploymentStatus { status, .. } => Some(*status),
                    _ => None,
                })
                .unwrap()
        };
        let status = progressing(deployment(&d, std::slice::from_ref(&rs), T0));
        let reason =
            |s: &DeploymentStatus| s.conditions.as_ref().unwrap()[1].reason.clone().unwrap();
        assert_eq!(reason(&status), "ReplicaSetUpdated");
        assert_eq!(status.unavailable_replicas, Some(1));
        rs.status.as_mut().unwrap().available_replicas = Some(2);
        rs.status.as_mut().unwrap().ready_replicas = Some(2);
        let status = progressing(deployment(&d, std::slice::from_ref(&rs), T0 + 1000));
        assert_eq!(reason(&status), "NewReplicaSetAvailable");
        assert_eq!(status.observed_generation, Some(1));
        let mut done = d.clone();
        done.status = Some(status);
        // Written once: the same counts a second later change nothing.
        assert_eq!(deployment(&done, &[rs], T0 + 2000), vec![]);
    }
}
