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
    /// `apps/v1` Deployments, stored inertly (no controller) so that ownerReferences and cascading
    /// deletion can be exercised.
    Deployment,
}

impl Resource {
    /// Every resource served, in discovery order.
    pub const ALL: [Resource; 6] = [
        Resource::Namespace,
        Resource::ConfigMap,
        Resource::Event,
        Resource::Lease,
        Resource::EventsK8sIo,
        Resource::Deployment,
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
            Resource::Namespace | Resource::ConfigMap | Resource::Event => "",
            Resource::Lease => "coordination.k8s.io",
            Resource::EventsK8sIo => "events.k8s.io",
            Resource::Deployment => "apps",
        }
    }

    /// The API version within the group.
    pub fn version(self) -> &'static str {
        "v1"
    }

    /// The `apiVersion` field of an object of this kind (`v1`, `coordination.k8s.io/v1`).
    pub fn api_version(self) -> &'static str {
        match self {
            Resource::Namespace | Resource::ConfigMap | Resource::Event => "v1",
            Resource::Lease => "coordination.k8s.io/v1",
            Resource::EventsK8sIo => "events.k8s.io/v1",
            Resource::Deployment => "apps/v1",
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
        }
    }

    /// Whether objects of this kind live inside a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Resource::Namespace)
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
