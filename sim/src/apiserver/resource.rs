//! The resources the simulated API server serves, and how their URLs are spelled.

/// One kind of object the server stores, with everything its URLs and discovery documents need.
///
/// The set is closed ([`Resource::ALL`]): adding a kind means adding a variant, so every `match`
/// over resources is checked by the compiler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// `core/v1` Namespaces (cluster-scoped).
    Namespace,
    /// `core/v1` ConfigMaps.
    ConfigMap,
    /// `coordination.k8s.io/v1` Leases.
    Lease,
    /// `core/v1` Events: what `kubectl describe` shows under an object, and what `khaos node`
    /// records when its leadership changes.
    Event,
    /// `events.k8s.io/v1` Events: the objects of [`Resource::Event`], in the newer schema
    /// (`regarding`, `note`, `reportingController`), as kube-rs's `Recorder` writes them. One
    /// storage serves both (see [`Resource::stored`]); [`super::convert`] turns one schema into
    /// the other at the edge, as kube-apiserver's conversion does.
    EventsK8sIo,
    /// `apps/v1` Deployments. The server stores them; what makes their ReplicaSets is the local
    /// cluster's controller ([`crate::cluster`]), a client like kube-controller-manager.
    Deployment,
    /// `core/v1` Pods, with graceful deletion: a pod on a node is marked (`deletionTimestamp`) and
    /// removed by its kubelet once its process is gone ([`crate::cluster`]).
    Pod,
    /// `apps/v1` ReplicaSets.
    ReplicaSet,
}

impl Resource {
    /// Every resource served, in discovery order.
    pub const ALL: [Resource; 8] = [
        Resource::Namespace,
        Resource::ConfigMap,
        Resource::Event,
        Resource::Pod,
        Resource::Lease,
        Resource::EventsK8sIo,
        Resource::Deployment,
        Resource::ReplicaSet,
    ];

    /// The resource whose storage holds this one's objects: itself, except for a resource served
    /// in a second schema ([`Resource::EventsK8sIo`] is stored as [`Resource::Event`]). The store
    /// knows stored resources only.
    pub fn stored(self) -> Resource {
        match self {
            Resource::EventsK8sIo => Resource::Event,
            other => other,
        }
    }

    /// The API group, empty for the legacy core group.
    pub fn group(self) -> &'static str {
        match self {
            Resource::Namespace | Resource::ConfigMap | Resource::Event | Resource::Pod => "",
            Resource::Lease => "coordination.k8s.io",
            Resource::EventsK8sIo => "events.k8s.io",
            Resource::Deployment | Resource::ReplicaSet => "apps",
        }
    }

    /// The API version within the group.
    pub fn version(self) -> &'static str {
        "v1"
    }

    /// The `apiVersion` field of an object of this kind (`v1`, `coordination.k8s.io/v1`).
    pub fn api_version(self) -> &'static str {
        match self {
            Resource::Namespace | Resource::ConfigMap | Resource::Event | Resource::Pod => "v1",
            Resource::Lease => "coordination.k8s.io/v1",
            Resource::EventsK8sIo => "events.k8s.io/v1",
            Resource::Deployment | Resource::ReplicaSet => "apps/v1",
        }
    }

    /// The `kind` field of an object (`ConfigMap`).
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Namespace => "Namespace",
            Resource::ConfigMap => "ConfigMap",
            Resource::Event | Resource::EventsK8sIo => "Event",
            Resource::Lease => "Lease",
            Resource::Deployment => "Deployment",
            Resource::Pod => "Pod",
            Resource::ReplicaSet => "ReplicaSet",
        }
    }

    /// The `kind` of a list of these objects (`ConfigMapList`).
    pub fn list_kind(self) -> &'static str {
        match self {
            Resource::Namespace => "NamespaceList",
            Resource::ConfigMap => "ConfigMapList",
            Resource::Event | Resource::EventsK8sIo => "EventList",
            Resource::Lease => "LeaseList",
            Resource::Deployment => "DeploymentList",
            Resource::Pod => "PodList",
            Resource::ReplicaSet => "ReplicaSetList",
        }
    }

    /// The plural resource name used in URLs and in error messages (`configmaps`).
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Namespace => "namespaces",
            Resource::ConfigMap => "configmaps",
            Resource::Event | Resource::EventsK8sIo => "events",
            Resource::Lease => "leases",
            Resource::Deployment => "deployments",
            Resource::Pod => "pods",
            Resource::ReplicaSet => "replicasets",
        }
    }

    /// The singular name, as discovery reports it.
    pub fn singular(self) -> &'static str {
        match self {
            Resource::Namespace => "namespace",
            Resource::ConfigMap => "configmap",
            Resource::Event | Resource::EventsK8sIo => "event",
            Resource::Lease => "lease",
            Resource::Deployment => "deployment",
            Resource::Pod => "pod",
            Resource::ReplicaSet => "replicaset",
        }
    }

    /// The short names kubectl accepts (`cm`).
    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Resource::Namespace => &["ns"],
            Resource::ConfigMap => &["cm"],
            Resource::Event | Resource::EventsK8sIo => &["ev"],
            Resource::Lease => &[],
            Resource::Deployment => &["deploy"],
            Resource::Pod => &["po"],
            Resource::ReplicaSet => &["rs"],
        }
    }

    /// Whether objects of this kind live inside a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Resource::Namespace)
    }

    /// The subresources served under an object's path (`pods/x/status`), as discovery lists
    /// them: `status` for the kinds a controller or kubelet reports on, `scale` for the kinds
    /// `kubectl scale` scales, and a pod's `log` and `eviction`.
    pub fn subresources(self) -> &'static [Subresource] {
        match self {
            // In the order discovery lists them: by name.
            Resource::Pod => &[Subresource::Eviction, Subresource::Log, Subresource::Status],
            Resource::Deployment | Resource::ReplicaSet => {
                &[Subresource::Scale, Subresource::Status]
            }
            Resource::Namespace
            | Resource::ConfigMap
            | Resource::Event
            | Resource::Lease
            | Resource::EventsK8sIo => &[],
        }
    }

    /// Whether writes to the object itself keep its `status` (written through the `status`
    /// subresource only), as the real strategies of these kinds do.
    pub fn has_status_subresource(self) -> bool {
        self.subresources().contains(&Subresource::Status)
    }

    /// The `group/resource` spelling used in error messages (`leases.coordination.k8s.io`).
    pub fn qualified_plural(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    /// The `Kind.group` spelling used in Invalid messages (`Lease.coordination.k8s.io`).
    pub fn qualified_kind(self) -> String {
        match self.group() {
            "" => self.kind().to_owned(),
            group => format!("{}.{group}", self.kind()),
        }
    }

    /// The resource with this group, version and plural name, if it is served.
    pub fn from_path(group: &str, version: &str, plural: &str) -> Option<Resource> {
        Resource::ALL
            .into_iter()
            .find(|r| r.group() == group && r.version() == version && r.plural() == plural)
    }
}

/// A subresource of an object (`/api/v1/namespaces/default/pods/x/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subresource {
    /// Everything but the status is kept; the status is replaced.
    Status,
    /// An `autoscaling/v1` Scale: the replicas wanted and seen, and the selector.
    Scale,
    /// A pod's container output, served by the kubelet's log source.
    Log,
    /// A `policy/v1` Eviction: a graceful delete of the pod.
    Eviction,
}

impl Subresource {
    /// The path segment (`status`).
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Log => "log",
            Subresource::Eviction => "eviction",
        }
    }

    /// The verbs discovery lists for it.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale => &["get", "patch", "update"],
            Subresource::Log => &["get"],
            Subresource::Eviction => &["create"],
        }
    }

    /// The kind discovery names for it (`Scale`), and its group and version.
    pub fn kind(self, parent: Resource) -> (&'static str, &'static str, &'static str) {
        match self {
            Subresource::Status => (parent.kind(), parent.group(), parent.version()),
            Subresource::Scale => ("Scale", "autoscaling", "v1"),
            Subresource::Log => ("Pod", "", "v1"),
            Subresource::Eviction => ("Eviction", "policy", "v1"),
        }
    }

    /// The subresource of `parent` with this path segment, if served.
    pub fn of(parent: Resource, name: &str) -> Option<Subresource> {
        parent
            .subresources()
            .iter()
            .copied()
            .find(|s| s.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for resource in Resource::ALL {
            assert_eq!(
                Resource::from_path(resource.group(), resource.version(), resource.plural()),
                Some(resource)
            );
        }
        assert_eq!(Resource::from_path("", "v1", "leases"), None);
    }

    #[test]
    fn a_second_schema_is_stored_under_the_first() {
        for resource in Resource::ALL {
            let stored = resource.stored();
            assert_eq!(stored.stored(), stored, "{resource:?}");
            assert_eq!(stored.kind(), resource.kind(), "{resource:?}");
            assert_eq!(stored.namespaced(), resource.namespaced(), "{resource:?}");
        }
        assert_eq!(Resource::EventsK8sIo.stored(), Resource::Event);
        assert_eq!(
            Resource::EventsK8sIo.qualified_plural(),
            "events.events.k8s.io"
        );
    }

    #[test]
    fn qualified_names_match_kubernetes_messages() {
        assert_eq!(Resource::ConfigMap.qualified_plural(), "configmaps");
        assert_eq!(
            Resource::Lease.qualified_plural(),
            "leases.coordination.k8s.io"
        );
    }
}
