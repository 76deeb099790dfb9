//! The object store: etcd-like revisions, compare-and-swap writes, and the watch history, as a pure
//! data structure (no I/O, no clock, no randomness: time comes in with each write).
//!
//! ```
//! use khaos_sim::apiserver::{ObjectKey, Resource, Store, WriteContext};
//! use serde_json::json;
//!
//! let mut store = Store::new();
//! let ctx = WriteContext { client: "example", now: "2026-11-21T00:00:00Z" };
//! let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
//! let created = store.create(&ctx, Resource::ConfigMap, "default", body).unwrap();
//! let key = ObjectKey::new(Resource::ConfigMap, "default", "x");
//!
//! let mut update = (*created).clone();
//! update["data"] = json!({"a": "1"});
//! store.replace(&ctx, &key, update.clone()).unwrap();
//! // `update` still carries the resourceVersion it was read at, so a second write with it fails.
//! update["data"] = json!({"a": "2"});
//! assert!(store.replace(&ctx, &key, update).unwrap_err().is_conflict());
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use serde_json::{Map, Value, json};

use super::resource::Resource;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::validation::{self, FieldError};

/// How many watch events the store keeps before it compacts the oldest away (etcd's history).
pub const EVENTS_MAX_DEFAULT: usize = 10_000;

/// How many names `generateName` tries before giving up with AlreadyExists.
const GENERATE_NAME_ATTEMPTS_MAX: u64 = 8;

/// Where an object lives: its resource, namespace (empty for cluster-scoped kinds) and name.
///
/// Keys order as etcd orders `/registry/<resource>/<namespace>/<name>`: by resource, then
/// bytewise on `namespace/name`, so lists come out in the order a real server returns them
/// (`a-b/x` before `a/x`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    /// The kind of object.
    pub resource: Resource,
    /// The namespace, empty for cluster-scoped kinds.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// A key; `namespace` is ignored for cluster-scoped resources.
    pub fn new(resource: Resource, namespace: &str, name: &str) -> ObjectKey {
        let namespace = if resource.namespaced() { namespace } else { "" };
        ObjectKey {
            resource,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl Ord for ObjectKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.resource.cmp(&other.resource).then_with(|| {
            let ours = self
                .namespace
                .bytes()
                .chain(std::iter::once(b'/'))
                .chain(self.name.bytes());
            let theirs = other
                .namespace
                .bytes()
                .chain(std::iter::once(b'/'))
                .chain(other.name.bytes());
            ours.cmp(theirs)
        })
    }
}

impl PartialOrd for ObjectKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.resource.plural(), self.name)
        } else {
            write!(
                f,
                "{}/{}/{}",
                self.resource.plural(),
                self.namespace,
                self.name
            )
        }
    }
}

/// Who writes and when: handed in with every mutating call, because the store has no clock.
#[derive(Clone, Copy, Debug)]
pub struct WriteContext<'a> {
    /// The requesting client's identity (its User-Agent), recorded with each commit.
    pub client: &'a str,
    /// The wall-clock time as RFC 3339 (`2026-11-21T07:43:00Z`), for `creationTimestamp`.
    pub now: &'a str,
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum EventType {
    /// The object was created (or started matching a watch's selector).
    #[serde(rename = "ADDED")]
    Added,
    /// The object was updated.
    #[serde(rename = "MODIFIED")]
    Modified,
    /// The object was deleted (or stopped matching a watch's selector).
    #[serde(rename = "DELETED")]
    Deleted,
}

impl EventType {
    /// The wire spelling (`ADDED`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A watch event's line on the wire (`{"type":...,"object":...}` and a newline), encoded by the
/// first watcher that sends it and shared by every other, as kube-apiserver's watch cache encodes
/// each event once.
#[derive(Clone, Debug, Default)]
pub struct EncodedLine(Arc<OnceLock<Bytes>>);

impl EncodedLine {
    /// The line for `event_type` and `object` (which must be the same on every call).
    pub fn get(&self, event_type: EventType, object: &Value) -> Bytes {
        self.0
            .get_or_init(|| encode_line(event_type.as_str(), object))
            .clone()
    }
}

/// One watch line: `{"type":TYPE,"object":OBJECT}` and a newline.
pub fn encode_line(event_type: &str, object: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        event_type: &'a str,
        object: &'a Value,
    }
    let mut bytes = serde_json::to_vec(&Line { event_type, object }).expect("values serialise");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// One change in the store's history, as watches see it.
#[derive(Clone, Debug)]
pub struct Event {
    /// The revision the change was committed at.
    pub revision: u64,
    /// What happened.
    pub event_type: EventType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the change (for a delete: its last state, with the delete's revision).
    pub object: Arc<Value>,
    /// The object before the change; `None` for a create.
    pub previous: Option<Arc<Value>>,
    /// Its lines, by how a watch's selector sees it: added, modified and deleted with `object`,
    /// and deleted with `previous` (an object that left the selection).
    lines: [EncodedLine; 4],
}

/// One event as a watch delivers it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    /// The type, after selector translation.
    pub event_type: EventType,
    /// The object to send.
    pub object: Arc<Value>,
    /// The revision of the change.
    pub revision: u64,
    /// Its line, shared by every watch that sends it.
    pub line: EncodedLine,
}

/// The verb of a commit, for the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE (including deletions by the garbage collector and namespace deletion).
    Delete,
}

/// Which part of an object a write changes: the object (its status kept, for kinds with a
/// status subresource) or, through `/status`, its status alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The object.
    Object,
    /// The status subresource.
    Status,
}

/// What a delete did.
#[derive(Clone, Debug)]
pub enum Deletion {
    /// The object is gone; this was its last state.
    Removed(Arc<Value>),
    /// The object is being deleted gracefully and is still stored, as this.
    Pending(Arc<Value>),
}

/// A commit to restore ([`Store::restore`]).
#[derive(Clone, Debug)]
pub struct Restored {
    /// Its revision: the store's next.
    pub revision: u64,
    /// The verb.
    pub verb: Verb,
    /// The object's resource.
    pub resource: Resource,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Who wrote it.
    pub client: String,
    /// The object after the write (its last state for a delete).
    pub object: Value,
}

/// One committed write, recorded for the harness's history.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Commit {
    /// The revision it was committed at.
    pub revision: u64,
    /// The verb.
    pub verb: Verb,
    /// The object's resource (`configmaps`).
    pub resource: &'static str,
    /// The object's namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The requesting client's identity.
    pub client: String,
    /// The object after the write (its last state for a delete).
    pub object: Arc<Value>,
}

/// The patch formats the server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`: a merge patch whose lists with merge keys (a pod
    /// spec's containers by name, their env by name, ports by containerPort, conditions by type;
    /// [`merge_key`]; metadata's ownerReferences by uid) merge item by item, with the `$patch`
    /// and `$deleteFromPrimitiveList` directives; other lists are replaced.
    StrategicMerge,
    /// `application/apply-patch+yaml` with JSON content: a simplified server-side apply that
    /// creates the object when absent and merges otherwise (no field ownership).
    Apply,
}

/// Preconditions a delete must meet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// The object's uid must be this.
    pub uid: Option<String>,
    /// The object's resourceVersion must be this.
    pub resource_version: Option<String>,
}

/// What happens to dependents of a deleted object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents whose owners are all gone are deleted (the default for these kinds). The real
    /// server does this asynchronously; here it happens in the same request, as separate commits.
    #[default]
    Background,
    /// Treated as background: the owner is deleted first, then its dependents.
    Foreground,
    /// Dependents lose their reference to the deleted owner and stay.
    Orphan,
}

/// What a watch wants to see.
#[derive(Clone, Debug)]
pub struct WatchFilter {
    /// The kind of object.
    pub resource: Resource,
    /// `None` watches all namespaces.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl WatchFilter {
    /// Whether an object of the filter's resource matches namespace and selectors.
    pub fn matches(&self, object: &Value) -> bool {
        let namespace = self.namespace.as_deref();
        (namespace.is_none() || namespace == Some(metadata_str(object, "namespace")))
            && self.labels.matches_object(object)
            && self.fields.matches_object(object)
    }
}

/// The result of a list: the items, in key order, and the revision they were read at.
#[derive(Clone, Debug)]
pub struct Listing {
    /// The matching objects.
    pub items: Vec<Arc<Value>>,
    /// The revision the list reflects (the list's `metadata.resourceVersion`).
    pub revision: u64,
}

/// The store: objects, the global revision, the watch history and the commit record.
#[derive(Clone, Debug)]
pub struct Store {
    revision: u64,
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    events: VecDeque<Event>,
    events_max: usize,
    /// Events at or below this revision are compacted away for new requests: a watch from
    /// before it gets 410.
    compacted_revision: u64,
    /// Events at or below this revision are gone from memory (the history's bound), so even an
    /// established watch that has not read them yet gets 410. Compaction alone never forgets
    /// what an established watch is owed, as kube-apiserver's watch cache does not.
    trimmed_revision: u64,
    record_commits: bool,
    commits: Vec<Commit>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// A store with the namespaces a fresh cluster has (`default`, `kube-node-lease`,
    /// `kube-public`, `kube-system`), created at revisions 1..=4 by `khaos-bootstrap`, stamped
    /// 2026-01-01; see [`Store::new_at`].
    pub fn new() -> Store {
        Store::new_at("2026-01-01T00:00:00Z")
    }

    /// [`Store::new`], with the bootstrap namespaces created at `now` (RFC 3339).
    pub fn new_at(now: &str) -> Store {
        let mut store = Store {
            revision: 0,
            objects: BTreeMap::new(),
            events: VecDeque::new(),
            events_max: EVENTS_MAX_DEFAULT,
            compacted_revision: 0,
            trimmed_revision: 0,
            record_commits: false,
            commits: Vec::new(),
        };
        let ctx = WriteContext {
            client: "khaos-bootstrap",
            now,
        };
        for name in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            store
                .create(
                    &ctx,
                    Resource::Namespace,
                    "",
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
                )
                .expect("bootstrap namespaces are valid");
        }
        store
    }

    /// Keep at most `events_max` watch events (at least 1); older ones are compacted away.
    #[must_use]
    pub fn with_events_max(mut self, events_max: usize) -> Store {
        assert!(events_max > 0, "the watch history needs room for one event");
        self.events_max = events_max;
        self.trim_events();
        self
    }

    /// Record every commit for [`Store::take_commits`].
    #[must_use]
    pub fn with_commit_record(mut self) -> Store {
        self.record_commits = true;
        self
    }

    /// The current revision (the last committed write's).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The compacted revision: watches must start after it.
    pub fn compacted_revision(&self) -> u64 {
        self.compacted_revision
    }

    /// The commits recorded since the last call, in revision order.
    pub fn take_commits(&mut self) -> Vec<Commit> {
        std::mem::take(&mut self.commits)
    }

    /// Forget the watch history up to and including `revision` (clamped to the current revision),
    /// as etcd compaction does: a new watch or list from an older revision then gets 410 Expired.
    /// A watch already established reads on ([`Store::events_after_established`]): the events
    /// stay in memory until the history's bound trims them.
    pub fn compact(&mut self, revision: u64) {
        let revision = revision.min(self.revision);
        if revision <= self.compacted_revision {
            return;
        }
        self.compacted_revision = revision;
    }

    /// The object at `key`.
    pub fn get(&self, key: &ObjectKey) -> Result<Arc<Value>, ApiError> {
        self.objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(key.resource, &key.name))
    }

    /// The object at `key` as it was at `revision` (which must not be compacted away).
    pub fn get_at(&self, key: &ObjectKey, revision: u64) -> Result<Arc<Value>, ApiError> {
        self.check_not_compacted(revision)?;
        let mut state = self.objects.get(key).cloned();
        for event in self.events.iter().rev() {
            if event.revision <= revision {
                break;
            }
            if &event.key == key {
                state = event.previous.clone();
            }
        }
        state.ok_or_else(|| ApiError::not_found(key.resource, &key.name))
    }

    /// The objects matching `filter`, as of now.
    pub fn list(&self, filter: &WatchFilter) -> Listing {
        let items = self
            .objects_of(filter.resource, filter.namespace.as_deref())
            .filter(|(_, object)| filter.matches(object))
            .map(|(_, object)| object.clone())
            .collect();
        Listing {
            items,
            revision: self.revision,
        }
    }

    /// The objects matching `filter` as they were at `revision`, reconstructed by undoing the
    /// history after it; 410 if the history no longer reaches back that far.
    pub fn list_at(&self, filter: &WatchFilter, revision: u64) -> Result<Listing, ApiError> {
        self.check_not_compacted(revision)?;
        let mut state: BTreeMap<&ObjectKey, Arc<Value>> = self
            .objects_of(filter.resource, filter.namespace.as_deref())
            .map(|(key, object)| (key, object.clone()))
            .collect();
        for event in self.events.iter().rev() {
            if event.revision <= revision {
                break;
            }
            if event.key.resource != filter.resource {
                continue;
            }
            match &event.previous {
                Some(previous) => state.insert(&event.key, previous.clone()),
                None => state.remove(&event.key),
            };
        }
        let items = state
            .into_values()
            .filter(|object| filter.matches(object))
            .collect();
        Ok(Listing {
            items,
            revision: revision.min(self.revision),
        })
    }

    /// The events after `revision` that `filter` sees, in revision order, and the revision the
    /// scan covered (the store's current revision), which is where the watch stands afterwards
    /// even when nothing matched. Translated as a real watch cache does: an object that starts
    /// matching the selector is ADDED; one that stops matching is DELETED, carrying its previous
    /// content at the event's revision. 410 if `revision` has been compacted away.
    pub fn events_after(
        &self,
        revision: u64,
        filter: &WatchFilter,
    ) -> Result<(Vec<WatchEvent>, u64), ApiError> {
        self.check_not_compacted(revision)?;
        Ok(self.scan_after(revision, filter))
    }

    /// [`Store::events_after`] for a watch already established at `revision`: compaction does
    /// not expire it, only the history's bound having trimmed events it has not read.
    pub fn events_after_established(
        &self,
        revision: u64,
        filter: &WatchFilter,
    ) -> Result<(Vec<WatchEvent>, u64), ApiError> {
        if revision < self.trimmed_revision {
            return Err(ApiError::expired(revision, self.trimmed_revision));
        }
        Ok(self.scan_after(revision, filter))
    }

    fn scan_after(&self, revision: u64, filter: &WatchFilter) -> (Vec<WatchEvent>, u64) {
        let start = self.events.partition_point(|e| e.revision <= revision);
        let mut out = Vec::new();
        for event in self.events.range(start..) {
            if event.key.resource != filter.resource {
                continue;
            }
            let now = filter.matches(&event.object);
            let before = event.previous.as_deref().is_some_and(|p| filter.matches(p));
            let (event_type, object, line) = match (event.event_type, before, now) {
                (EventType::Deleted, true, _) => (EventType::Deleted, event.object.clone(), 2),
                (EventType::Deleted, false, _) => continue,
                (_, false, true) => (EventType::Added, event.object.clone(), 0),
                (_, true, true) => (EventType::Modified, event.object.clone(), 1),
                (_, true, false) => {
                    let mut last = (**event.previous.as_ref().expect("matched before")).clone();
                    last["metadata"]["resourceVersion"] = json!(event.revision.to_string());
                    (EventType::Deleted, Arc::new(last), 3)
                }
                (_, false, false) => continue,
            };
            out.push(WatchEvent {
                event_type,
                object,
                revision: event.revision,
                line: event.lines[line].clone(),
            });
        }
        (out, self.revision.max(revision))
    }

    /// Create an object in `namespace` (ignored for cluster-scoped kinds).
    pub fn create(
        &mut self,
        ctx: &WriteContext<'_>,
        resource: Resource,
        namespace: &str,
        body: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let mut object = check_body(resource, body)?;
        let namespace = if resource.namespaced() { namespace } else { "" };
        check_namespace_matches(&object, namespace)?;
        let metadata = object["metadata"]
            .as_object_mut()
            .expect("checked by check_body");
        // etcd3's store refuses a create that names a version; the client sees a 500.
        if metadata
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = match metadata.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => match metadata.get("generateName").and_then(Value::as_str) {
                // Like the real server, retry a generated name that is taken (a bounded number
                // of times; then the create fails with AlreadyExists).
                Some(prefix) if !prefix.is_empty() => (0..GENERATE_NAME_ATTEMPTS_MAX)
                    .map(|attempt| generate_name(prefix, self.revision + 1, attempt))
                    .find(|name| {
                        !self
                            .objects
                            .contains_key(&ObjectKey::new(resource, namespace, name))
                    })
                    .unwrap_or_else(|| generate_name(prefix, self.revision + 1, 0)),
                _ => String::new(),
            },
        };
        if resource.namespaced() && !self.namespace_exists(namespace) {
            return Err(ApiError::not_found(Resource::Namespace, namespace));
        }
        let key = ObjectKey::new(resource, namespace, &name);
        let revision = self.revision + 1;
        metadata.insert("name".into(), json!(name));
        if resource.namespaced() {
            metadata.insert("namespace".into(), json!(namespace));
        }
        metadata.insert("uid".into(), json!(uid(revision)));
        metadata.insert("resourceVersion".into(), json!(revision.to_string()));
        metadata.insert("creationTimestamp".into(), json!(ctx.now));
        metadata.remove("deletionTimestamp");
        metadata.remove("deletionGracePeriodSeconds");
        metadata.remove("selfLink");
        if matches!(resource, Resource::Deployment | Resource::ReplicaSet) {
            metadata.insert("generation".into(), json!(1));
        }
        if resource.has_status_subresource() {
            // A create sets no status: the controller or kubelet that owns it writes it.
            object["status"] = match resource {
                Resource::Pod => json!({"phase": "Pending", "qosClass": "BestEffort"}),
                _ => json!({}),
            };
            workload_defaults(resource, &mut object);
        }
        if resource == Resource::Namespace {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
        }
        validate(resource, &name, &object)?;
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource, &name));
        }
        Ok(self.commit(ctx, Verb::Create, key, Some(Arc::new(object))))
    }

    /// Replace an object (PUT). A `metadata.resourceVersion` in the body is a compare-and-swap
    /// precondition; without one the update is unconditional.
    pub fn replace(
        &mut self,
        ctx: &WriteContext<'_>,
        key: &ObjectKey,
        body: Value,
    ) -> Result<Arc<Value>, ApiError> {
        self.replace_part(ctx, key, Part::Object, body)
    }

    /// [`Store::replace`] of one part of an object: the object itself (whose `status` the write
    /// keeps, for kinds with a status subresource), or its status (everything else is kept).
    pub fn replace_part(
        &mut self,
        ctx: &WriteContext<'_>,
        key: &ObjectKey,
        part: Part,
        body: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let object = check_body(key.resource, body)?;
        check_namespace_matches(&object, &key.namespace)?;
        let body_name = metadata_str(&object, "name");
        if body_name != key.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                key.name
            )));
        }
        let existing = match self.get(key) {
            Ok(existing) => existing,
            // Leases allow create on update (their strategy's AllowCreateOnUpdate); the other kinds
            // served here do not.
            Err(error)
                if error.is_not_found()
                    && key.resource == Resource::Lease
                    && part == Part::Object =>
            {
                // A create-on-update that names a version has nothing to compare it with: the
                // real registry answers Conflict.
                if !metadata_str(&object, "resourceVersion").is_empty() {
                    return Err(ApiError::conflict(key.resource, &key.name));
                }
                return self.create(ctx, key.resource, &key.namespace, object);
            }
            Err(error) => return Err(error),
        };
        self.update(ctx, Verb::Update, key, &existing, object, part)
    }

    /// Patch an object. A resourceVersion in the patched result is a precondition.
    pub fn patch(
        &mut self,
        ctx: &WriteContext<'_>,
        key: &ObjectKey,
        patch_type: PatchType,
        patch: Value,
    ) -> Result<Arc<Value>, ApiError> {
        self.patch_part(ctx, key, Part::Object, patch_type, patch)
    }

    /// [`Store::patch`] of one part of an object (see [`Store::replace_part`]).
    pub fn patch_part(
        &mut self,
        ctx: &WriteContext<'_>,
        key: &ObjectKey,
        part: Part,
        patch_type: PatchType,
        patch: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let existing = match self.get(key) {
            Ok(existing) => existing,
            Err(error)
                if error.is_not_found()
                    && patch_type == PatchType::Apply
                    && part == Part::Object =>
            {
                let mut body = patch;
                if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    metadata.entry("name").or_insert_with(|| json!(key.name));
                }
                return self.create(ctx, key.resource, &key.namespace, body);
            }
            Err(error) => return Err(error),
        };
        let mut object = (*existing).clone();
        match patch_type {
            PatchType::Json => {
                let operations: json_patch::Patch = serde_json::from_value(patch)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                json_patch::patch(&mut object, &operations).map_err(|e| {
                    ApiError::new(
                        super::status::Reason::Invalid,
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
            }
            PatchType::Merge | PatchType::StrategicMerge | PatchType::Apply => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: a merge patch must be a JSON object",
                    ));
                }
                let mut patch = patch;
                if patch_type == PatchType::StrategicMerge {
                    merge_metadata_lists(&existing, &mut patch);
                    strategic_merge(&mut object, &patch);
                } else {
                    json_patch::merge(&mut object, &patch);
                }
            }
        }
        let verb = Verb::Patch;
        let object = check_body(key.resource, object)?;
        if metadata_str(&object, "name") != key.name {
            return Err(ApiError::bad_request("metadata.name: field is immutable"));
        }
        check_namespace_matches(&object, &key.namespace)?;
        self.update(ctx, verb, key, &existing, object, part)
    }

    /// Delete an object, honouring preconditions, and collect its dependents per `propagation`.
    /// Returns the deleted object as it was last stored. A pod is deleted gracefully, with the
    /// grace its spec asks for ([`Store::delete_graceful`]): then the object returned is the pod
    /// marked for deletion, still stored.
    pub fn delete(
        &mut self,
        ctx: &WriteContext<'_>,
        key: &ObjectKey,
        preconditions: &Preconditions,
        propagation: Propagation,
    ) -> Result<Arc<Value>, ApiError> {
        let (Deletion::Removed(object) | Deletion::Pending(object)) =
            self.delete_graceful(ctx, key, preconditions, propagation, None)?;
        Ok(object)
    }

    /// [`Store::delete`] with a grace period (`gracePeriodSeconds`; `None`: the object's own).
    ///
    /// Only pods are deleted gracefully, as kube-apiserver's pod strategy does: the grace is the
    /// one asked for, else `spec.terminationGracePeriodSeconds` (30 by default); a negative one
    /// is 1; it is 0 for a pod on no node or one that has finished. With a grace above 0 the pod
    /// stays, marked with `deletionTimestamp` (now plus the grace) and
    /// `deletionGracePeriodSeconds`, until its kubelet has stopped it and deletes it with grace
    /// 0. A later delete may only shorten the grace. With grace 0 the object goes at once,
    /// whatever its process is doing (a force delete).
    pub fn delete_graceful(
        &mut self,
        ctx: &WriteContext<'_>,
        key: &ObjectKey,
        preconditions: &Preconditions,
        propagation: Propagation,
        grace: Option<i64>,
    ) -> Result<Deletion, ApiError> {
        let existing = self.get(key)?;
        if let Some(uid) = &preconditions.uid {
            let actual = metadata_str(&existing, "uid");
            if uid != actual {
                return Err(ApiError::conflict_with(
                    key.resource,
                    &key.name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    ),
                ));
            }
        }
        if let Some(rv) = &preconditions.resource_version {
            let actual = metadata_str(&existing, "resourceVersion");
            if rv != actual {
                return Err(ApiError::conflict_with(
                    key.resource,
                    &key.name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                    ),
                ));
            }
        }
        if key.resource == Resource::Namespace {
            let contents: Vec<ObjectKey> = self
                .objects
                .keys()
                .filter(|k| k.resource.namespaced() && k.namespace == key.name)
                .cloned()
                .collect();
            let controller = WriteContext {
                client: "namespace-controller",
                ..*ctx
            };
            for content in contents {
                let object = self.objects.get(&content).cloned().expect("listed");
                match (content.resource, pod_grace(&object, None)) {
                    // A pod on a node is stopped by its kubelet, as the namespace controller's
                    // deletes are graceful.
                    (Resource::Pod, Some(grace)) => {
                        self.mark_for_deletion(&controller, &content, &object, Some(grace));
                    }
                    _ => {
                        self.commit(&controller, Verb::Delete, content, None);
                    }
                }
            }
        }
        if key.resource == Resource::Pod
            && let Some(resolved) = pod_grace(&existing, grace)
        {
            // A second delete that names no grace leaves a running one as it is.
            let asked = grace.map(|_| resolved);
            let marked = existing["metadata"]["deletionTimestamp"].is_string();
            let grace = if marked { asked } else { Some(resolved) };
            return Ok(self.mark_for_deletion(ctx, key, &existing, grace));
        }
        let deleted = self.commit(ctx, Verb::Delete, key.clone(), None);
        self.collect_dependents(ctx, metadata_str(&deleted, "uid"), propagation);
        Ok(Deletion::Removed(deleted))
    }

    /// Start or shorten a pod's graceful deletion (`grace` > 0), or leave it as it is when no
    /// grace is asked or it is not shorter than the one already running.
    fn mark_for_deletion(
        &mut self,
        ctx: &WriteContext<'_>,
        key: &ObjectKey,
        existing: &Arc<Value>,
        grace: Option<i64>,
    ) -> Deletion {
        let running = existing["metadata"]["deletionGracePeriodSeconds"].as_i64();
        let Some(grace) = grace.filter(|g| running.is_none_or(|running| *g < running)) else {
            return Deletion::Pending(existing.clone());
        };
        // A first stamp is now plus the grace; a shortened one, as BeforeDelete shortens it,
        // the first stamp less the old grace plus the new.
        let stamp = match (existing["metadata"]["deletionTimestamp"].as_str(), running) {
            (Some(stamp), Some(running)) => super::time::plus_seconds(stamp, grace - running),
            _ => super::time::plus_seconds(ctx.now, grace),
        };
        let mut marked = (**existing).clone();
        let metadata = &mut marked["metadata"];
        metadata["deletionTimestamp"] = json!(stamp);
        metadata["deletionGracePeriodSeconds"] = json!(grace);
        metadata["resourceVersion"] = json!((self.revision + 1).to_string());
        Deletion::Pending(self.commit(ctx, Verb::Update, key.clone(), Some(Arc::new(marked))))
    }

    /// Collect the dependents of a deleted owner, as the garbage collector does: an object none
    /// of whose owners remain is deleted, and its own dependents collected in turn; one that
    /// still has a live owner, or any dependent under Orphan, only loses its reference to the
    /// deleted owner. Each step removes an object or a reference, so the work list runs dry.
    fn collect_dependents(
        &mut self,
        ctx: &WriteContext<'_>,
        owner_uid: &str,
        propagation: Propagation,
    ) {
        let gc = WriteContext {
            client: "garbage-collector",
            ..*ctx
        };
        let mut deleted_owners = VecDeque::from([owner_uid.to_owned()]);
        while let Some(owner_uid) = deleted_owners.pop_front() {
            let dependents: Vec<ObjectKey> = self
                .objects
                .iter()
                .filter(|(_, o)| owner_uids(o).any(|uid| uid == owner_uid))
                .map(|(k, _)| k.clone())
                .collect();
            for key in dependents {
                // Re-read: an earlier step of this collection may have changed or deleted it.
                let Some(object) = self.objects.get(&key).cloned() else {
                    continue;
                };
                let other_owner_alive = owner_uids(&object).any(|uid| {
                    uid != owner_uid && self.objects.values().any(|o| metadata_str(o, "uid") == uid)
                });
                if propagation == Propagation::Orphan || other_owner_alive {
                    let mut updated = (*object).clone();
                    if let Some(refs) = updated["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"].as_str() != Some(owner_uid.as_str()));
                    }
                    // Dropping a reference keeps a valid object valid; one stored before a rule
                    // it breaks existed (an older data directory) keeps its stale reference
                    // rather than stop the collection.
                    let _ = self.update(&gc, Verb::Update, &key, &object, updated, Part::Object);
                } else if key.resource == Resource::Pod
                    && let Some(grace) = pod_grace(&object, None)
                {
                    // The garbage collector deletes with default options: a pod on a node is
                    // stopped by its kubelet, with its own grace. Pods own nothing here.
                    self.mark_for_deletion(&gc, &key, &object, Some(grace));
                } else {
                    let deleted = self.commit(&gc, Verb::Delete, key, None);
                    deleted_owners.push_back(metadata_str(&deleted, "uid").to_owned());
                }
            }
        }
    }

    /// The shared tail of replace, patch and ownerReference removal.
    fn update(
        &mut self,
        ctx: &WriteContext<'_>,
        verb: Verb,
        key: &ObjectKey,
        existing: &Arc<Value>,
        mut object: Value,
        part: Part,
    ) -> Result<Arc<Value>, ApiError> {
        if part == Part::Status {
            // Only the status changes; the body's resourceVersion is still a precondition.
            let mut written = (**existing).clone();
            written["status"] = object.get("status").cloned().unwrap_or_else(|| json!({}));
            written["metadata"]["resourceVersion"] = object["metadata"]
                .get("resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            object = written;
        } else if key.resource.has_status_subresource() {
            object["status"] = existing.get("status").cloned().unwrap_or_else(|| json!({}));
            // Defaults are filled on every write, as the real server fills them on every decode.
            workload_defaults(key.resource, &mut object);
            if key.resource == Resource::Pod {
                check_pod_update(key, existing, &object)?;
            }
        }
        let current_rv = metadata_str(existing, "resourceVersion").to_owned();
        match object["metadata"]
            .get("resourceVersion")
            .and_then(Value::as_str)
        {
            Some(rv) if !rv.is_empty() && rv != current_rv => {
                return Err(ApiError::conflict(key.resource, &key.name));
            }
            _ => {}
        }
        let current_uid = metadata_str(existing, "uid").to_owned();
        match object["metadata"].get("uid").and_then(Value::as_str) {
            Some(uid) if !uid.is_empty() && uid != current_uid => {
                return Err(ApiError::conflict_with(
                    key.resource,
                    &key.name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"
                    ),
                ));
            }
            _ => {}
        }
        // System fields are the server's: whatever the client sent, they keep their stored values.
        let metadata = object["metadata"]
            .as_object_mut()
            .expect("checked by check_body");
        for field in [
            "uid",
            "creationTimestamp",
            "namespace",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match existing["metadata"].get(field) {
                Some(value) => metadata.insert(field.into(), value.clone()),
                None => metadata.remove(field),
            };
        }
        metadata.insert("resourceVersion".into(), json!(current_rv));
        if key.resource == Resource::Namespace {
            object["spec"] = existing["spec"].clone();
            object["status"] = existing["status"].clone();
        }
        if matches!(key.resource, Resource::Deployment | Resource::ReplicaSet)
            && object.get("spec") != existing.get("spec")
        {
            let generation = existing["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            object["metadata"]["generation"] = json!(generation);
        }
        validate(key.resource, &key.name, &object)?;
        if key.resource == Resource::ConfigMap && existing["immutable"] == json!(true) {
            let forbidden = |field: &str| FieldError {
                field: field.into(),
                reason: validation::FIELD_VALUE_FORBIDDEN,
                message: "Forbidden: field is immutable when `immutable` is set".into(),
            };
            let mut causes = Vec::new();
            if object["immutable"] != json!(true) {
                causes.push(forbidden("immutable"));
            }
            for field in ["data", "binaryData"] {
                if object.get(field) != existing.get(field) {
                    causes.push(forbidden(field));
                }
            }
            if !causes.is_empty() {
                return Err(ApiError::invalid(key.resource, &key.name, &causes));
            }
        }
        // etcd's GuaranteedUpdate skips a write that changes nothing: no new revision, no event.
        if object == **existing {
            return Ok(existing.clone());
        }
        object["metadata"]["resourceVersion"] = json!((self.revision + 1).to_string());
        Ok(self.commit(ctx, verb, key.clone(), Some(Arc::new(object))))
    }

    /// Apply a commit recorded earlier (by [`Store::take_commits`], kept in a data directory)
    /// to a store that holds everything before it, as etcd replays its log on start: the object
    /// map, the revision and the watch history come back as they were. Not recorded again.
    pub fn restore(&mut self, commit: Restored) -> Result<(), String> {
        if commit.revision != self.revision + 1 {
            return Err(format!(
                "revision {} follows {}: a commit is missing",
                commit.revision, self.revision
            ));
        }
        let key = ObjectKey::new(commit.resource, &commit.namespace, &commit.name);
        let present = self.objects.contains_key(&key);
        let object = match commit.verb {
            Verb::Delete if !present => {
                return Err(format!(
                    "revision {} deletes {key}, which is not there",
                    commit.revision
                ));
            }
            Verb::Delete => None,
            _ if metadata_str(&commit.object, "resourceVersion") != commit.revision.to_string() => {
                return Err(format!(
                    "revision {} writes {key} with another resourceVersion",
                    commit.revision
                ));
            }
            _ => Some(Arc::new(commit.object)),
        };
        let record = std::mem::replace(&mut self.record_commits, false);
        let ctx = WriteContext {
            client: &commit.client,
            now: "",
        };
        self.commit(&ctx, commit.verb, key, object);
        self.record_commits = record;
        Ok(())
    }

    /// Apply one write at the next revision: the object map, the watch history and the commit
    /// record. `object` is `None` for a delete. Returns the object written (or deleted).
    fn commit(
        &mut self,
        ctx: &WriteContext<'_>,
        verb: Verb,
        key: ObjectKey,
        object: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.revision += 1;
        let revision = self.revision;
        let previous = self.objects.get(&key).cloned();
        let (event_type, object) = match object {
            Some(object) => {
                assert_eq!(
                    metadata_str(&object, "resourceVersion"),
                    revision.to_string(),
                    "a committed object carries its commit's revision"
                );
                self.objects.insert(key.clone(), object.clone());
                let event_type = if previous.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                (event_type, object)
            }
            None => {
                let removed = self
                    .objects
                    .remove(&key)
                    .expect("delete of a present object");
                let mut last = (*removed).clone();
                last["metadata"]["resourceVersion"] = json!(revision.to_string());
                (EventType::Deleted, Arc::new(last))
            }
        };
        if self.record_commits {
            self.commits.push(Commit {
                revision,
                verb,
                resource: key.resource.plural(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                client: ctx.client.to_owned(),
                object: object.clone(),
            });
        }
        self.events.push_back(Event {
            revision,
            event_type,
            key,
            object: object.clone(),
            previous,
            lines: Default::default(),
        });
        self.trim_events();
        object
    }

    fn trim_events(&mut self) {
        while self.events.len() > self.events_max {
            let oldest = self.events.pop_front().expect("non-empty");
            self.trimmed_revision = oldest.revision;
            self.compacted_revision = self.compacted_revision.max(oldest.revision);
        }
    }

    fn check_not_compacted(&self, revision: u64) -> Result<(), ApiError> {
        if revision < self.compacted_revision {
            Err(ApiError::expired(revision, self.compacted_revision))
        } else {
            Ok(())
        }
    }

    fn namespace_exists(&self, namespace: &str) -> bool {
        self.objects
            .contains_key(&ObjectKey::new(Resource::Namespace, "", namespace))
    }

    fn objects_of<'s>(
        &'s self,
        resource: Resource,
        namespace: Option<&'s str>,
    ) -> impl Iterator<Item = (&'s ObjectKey, &'s Arc<Value>)> + 's {
        let start = ObjectKey::new(resource, namespace.unwrap_or(""), "");
        self.objects.range(start..).take_while(move |(k, _)| {
            k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }
}

/// A string field of `metadata`, or `""`.
pub fn metadata_str<'v>(object: &'v Value, field: &str) -> &'v str {
    object["metadata"][field].as_str().unwrap_or("")
}

fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
}

/// Check what every request body must be: an object of the expected apiVersion and kind, with
/// `metadata` an object. Fills in `metadata` when absent.
fn check_body(resource: Resource, mut body: Value) -> Result<Value, ApiError> {
    let Some(fields) = body.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "the body of the request must be a JSON object describing a {}",
            resource.kind()
        )));
    };
    // Like the real decoder, a missing kind or apiVersion defaults to the one the URL names; a
    // present one must match it.
    let kind = fields
        .entry("kind")
        .or_insert_with(|| json!(resource.kind()))
        .as_str()
        .unwrap_or("")
        .to_owned();
    let api_version = fields
        .entry("apiVersion")
        .or_insert_with(|| json!(resource.api_version()))
        .as_str()
        .unwrap_or("")
        .to_owned();
    if kind != resource.kind() || api_version != resource.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) and kind ({kind}) do not match the expected {} {}",
            resource.api_version(),
            resource.kind()
        )));
    }
    if !resource.namespaced() {
        // A cluster-scoped object has no namespace; the real server clears one sent anyway.
        if let Some(metadata) = fields.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("namespace");
        }
    }
    match fields
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(_) => Ok(body),
        _ => Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
            resource.kind(),
            resource.version(),
            resource.kind()
        ))),
    }
}

/// A pod's spec may change only in its containers' images and, once, in `nodeName` (how the
/// scheduler here binds a pod), as `ValidatePodUpdate` allows (its other exceptions are not
/// served).
fn check_pod_update(key: &ObjectKey, existing: &Value, object: &Value) -> Result<(), ApiError> {
    let comparable = |spec: &Value, bound: bool| {
        let mut spec = spec.clone();
        if let Some(containers) = spec["containers"].as_array_mut() {
            for container in containers {
                container["image"] = Value::Null;
            }
        }
        if bound {
            spec["nodeName"] = Value::Null;
        }
        spec
    };
    let unbound = existing["spec"]["nodeName"]
        .as_str()
        .unwrap_or("")
        .is_empty();
    if comparable(&existing["spec"], unbound) == comparable(&object["spec"], unbound) {
        return Ok(());
    }
    Err(ApiError::invalid(
        key.resource,
        &key.name,
        &[FieldError {
            field: "spec".into(),
            reason: validation::FIELD_VALUE_FORBIDDEN,
            message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image` (and `spec.nodeName` of a pod on no node)".into(),
        }],
    ))
}

/// The grace of a pod's deletion, as the pod strategy's `CheckGracefulDelete` and the common
/// `BeforeDelete` decide it: `None` removes the pod at once.
fn pod_grace(pod: &Value, asked: Option<i64>) -> Option<i64> {
    let own = pod["spec"]["terminationGracePeriodSeconds"].as_i64();
    let mut grace = asked.or(own).unwrap_or(POD_GRACE_DEFAULT_S);
    if grace < 0 {
        grace = 1;
    }
    // A stamp must stay a time (before the year 9999): about 68 years is more than any grace.
    grace = grace.min(i64::from(i32::MAX));
    let on_node = !pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    (grace > 0 && on_node && !finished).then_some(grace)
}

/// A pod's `terminationGracePeriodSeconds` when its spec gives none.
pub const POD_GRACE_DEFAULT_S: i64 = 30;

/// The defaults the real server fills into a new workload (the fields kubectl and controllers
/// read back): a pod's restart policy, grace and pull policy; a ReplicaSet's or Deployment's
/// replica count; a Deployment's strategy, history limit and progress deadline.
fn workload_defaults(resource: Resource, object: &mut Value) {
    fn default(object: &mut Value, field: &str, value: Value) {
        if let Some(map) = object.as_object_mut() {
            map.entry(field).or_insert(value);
        }
    }
    fn pod_spec(spec: &mut Value) {
        default(spec, "restartPolicy", json!("Always"));
        default(
            spec,
            "terminationGracePeriodSeconds",
            json!(POD_GRACE_DEFAULT_S),
        );
        default(spec, "dnsPolicy", json!("ClusterFirst"));
        default(spec, "schedulerName", json!("default-scheduler"));
        if let Some(containers) = spec["containers"].as_array_mut() {
            for container in containers {
                let image = container["image"].as_str().unwrap_or("");
                let latest = !image.contains(':') || image.ends_with(":latest");
                let policy = if latest { "Always" } else { "IfNotPresent" };
                default(container, "imagePullPolicy", json!(policy));
                default(
                    container,
                    "terminationMessagePath",
                    json!("/dev/termination-log"),
                );
            }
        }
    }
    if !object["spec"].is_object() {
        object["spec"] = json!({});
    }
    match resource {
        Resource::Pod => pod_spec(&mut object["spec"]),
        Resource::ReplicaSet | Resource::Deployment => {
            let spec = &mut object["spec"];
            default(spec, "replicas", json!(1));
            if resource == Resource::Deployment {
                default(spec, "revisionHistoryLimit", json!(10));
                default(spec, "progressDeadlineSeconds", json!(600));
                default(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate",
                           "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
            }
            if spec["template"]["spec"].is_object() {
                pod_spec(&mut spec["template"]["spec"]);
            }
        }
        _ => {}
    }
}

fn check_namespace_matches(object: &Value, namespace: &str) -> Result<(), ApiError> {
    match object["metadata"].get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() && ns != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

fn validate(resource: Resource, name: &str, object: &Value) -> Result<(), ApiError> {
    decodes_as_typed(resource, object)?;
    let mut causes: Vec<FieldError> = match resource {
        Resource::Namespace => validation::validate_namespace_name(name),
        _ => validation::validate_name(name, resource.namespaced()),
    };
    causes.extend(validation::validate_labels(&object["metadata"]));
    causes.extend(match resource {
        Resource::ConfigMap => validation::validate_configmap(object),
        Resource::Lease => validation::validate_lease(object),
        // Events are taken as given: what validates them (an involved object, a reason) is
        // not what the HA services rely on.
        Resource::Pod => validation::validate_pod_spec(&object["spec"], "spec"),
        Resource::Deployment | Resource::ReplicaSet => {
            let selector = super::table::selector_string(object["spec"].get("selector"));
            let mut causes = validation::validate_workload(object, &selector);
            let labels = object["spec"]["template"]["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let matches = LabelSelector::parse(&selector).is_ok_and(|s| s.matches(&labels));
            if !selector.is_empty() && !matches {
                causes.insert(
                    0,
                    FieldError {
                        field: "spec.template.metadata.labels".into(),
                        reason: validation::FIELD_VALUE_INVALID,
                        message: format!(
                            "Invalid value: {}: `selector` does not match template `labels`",
                            Value::Object(labels)
                        ),
                    },
                );
            }
            causes
        }
        Resource::Namespace | Resource::Event => Vec::new(),
        Resource::EventsK8sIo => unreachable!("the store holds stored resources only"),
    });
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(resource, name, &causes))
    }
}

/// Whether a workload object decodes as its Kubernetes type (k8s-openapi's), as the real server
/// decodes every body: a replica count that is a string or beyond int32, a status that is not an
/// object, are refused here rather than stored, where every client listing them would fail.
fn decodes_as_typed(resource: Resource, object: &Value) -> Result<(), ApiError> {
    use k8s_openapi::api::{apps::v1, core::v1 as core};
    let decoded = match resource {
        Resource::Pod => serde_json::from_value::<core::Pod>(object.clone()).map(drop),
        Resource::ReplicaSet => serde_json::from_value::<v1::ReplicaSet>(object.clone()).map(drop),
        Resource::Deployment => serde_json::from_value::<v1::Deployment>(object.clone()).map(drop),
        _ => Ok(()),
    };
    decoded.map_err(|error| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {error}",
            kind = resource.kind(),
            version = resource.version(),
        ))
    })
}

/// Strategic merge of the two metadata lists every kind has: `ownerReferences` merges by `uid`
/// (with `$patch: delete` items removing one, `$patch: replace` replacing the list) and
/// `finalizers` is a set (with `$deleteFromPrimitiveList/finalizers` removing entries). The
/// merged lists are written into the patch, so the merge that follows sets them whole.
fn merge_metadata_lists(existing: &Value, patch: &mut Value) {
    let Some(metadata) = patch.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::Array(items)) = metadata.get("ownerReferences") {
        let directive = |item: &Value| {
            item.get("$patch")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut merged: Vec<Value> = if items
            .iter()
            .any(|i| directive(i).as_deref() == Some("replace"))
        {
            Vec::new()
        } else {
            existing["metadata"]["ownerReferences"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        for item in items {
            match directive(item).as_deref() {
                Some("delete") => merged.retain(|m| m["uid"] != item["uid"]),
                Some("replace") => {}
                _ => match merged.iter_mut().find(|m| m["uid"] == item["uid"]) {
                    Some(present) => json_patch::merge(present, item),
                    None => merged.push(item.clone()),
                },
            }
        }
        metadata.insert("ownerReferences".into(), Value::Array(merged));
    }
    let removed: Vec<Value> = metadata
        .remove("$deleteFromPrimitiveList/finalizers")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let added = metadata
        .get("finalizers")
        .and_then(Value::as_array)
        .cloned();
    if added.is_some() || !removed.is_empty() {
        let mut merged: Vec<Value> = existing["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for finalizer in added.into_iter().flatten() {
            if !merged.contains(&finalizer) {
                merged.push(finalizer);
            }
        }
        merged.retain(|f| !removed.contains(f));
        metadata.insert("finalizers".into(), Value::Array(merged));
    }
}

/// Remove strategic-merge-patch directives (`$patch`, `$setElementOrder/...`, `$retainKeys`,
/// `$deleteFromPrimitiveList/...`), which have no meaning for the kinds served here.
/// The merge key of a list field in the kinds served, as their Go types declare it
/// (`patchMergeKey`); `None`: the list is replaced whole.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => Some("name"),
        "ports" => Some("containerPort"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" | "readinessGates" => Some("type"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        _ => None,
    }
}

/// Apply a strategic merge patch (`apimachinery/pkg/util/strategicpatch`, for the fields this
/// server knows): `null` removes a field, objects merge, lists with a merge key merge item by
/// item (`{"$patch": "delete", key: ...}` removes one, a list whose first item is
/// `{"$patch": "replace"}` replaces the list), `$deleteFromPrimitiveList/field` removes values,
/// `$setElementOrder/field` and `$retainKeys` are read past; other lists are replaced.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        strip_directives(target);
        return;
    }
    if !target.is_object() {
        *target = json!({});
    }
    let fields = target.as_object_mut().expect("made an object");
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(gone)) = (
                fields.get_mut(field).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                list.retain(|item| !gone.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                fields.remove(key);
            }
            Value::Object(_) => {
                strategic_merge(fields.entry(key.clone()).or_insert(Value::Null), value)
            }
            Value::Array(items) => {
                let merge_by = merge_key(key);
                let existing = fields.get_mut(key).and_then(Value::as_array_mut);
                let replace_all = items
                    .first()
                    .and_then(|i| i.get("$patch"))
                    .and_then(Value::as_str)
                    == Some("replace");
                match (merge_by, existing) {
                    (Some(merge_by), Some(list)) if !replace_all => {
                        for item in items {
                            let id = item.get(merge_by);
                            let at = id.and_then(|id| {
                                list.iter().position(|e| e.get(merge_by) == Some(id))
                            });
                            let delete =
                                item.get("$patch").and_then(Value::as_str) == Some("delete");
                            match (at, delete) {
                                (Some(at), true) => {
                                    list.remove(at);
                                }
                                (None, true) => {}
                                (Some(at), false) => strategic_merge(&mut list[at], item),
                                (None, false) => {
                                    let mut added = item.clone();
                                    strip_directives(&mut added);
                                    list.push(added);
                                }
                            }
                        }
                    }
                    _ => {
                        let mut list: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .cloned()
                            .collect();
                        for item in &mut list {
                            strip_directives(item);
                        }
                        fields.insert(key.clone(), Value::Array(list));
                    }
                }
            }
            other => {
                fields.insert(key.clone(), other.clone());
            }
        }
    }
}

fn strip_directives(patch: &mut Value) {
    if let Value::Object(fields) = patch {
        fields.retain(|k, _| !k.starts_with('$'));
        for value in fields.values_mut() {
            strip_directives(value);
        }
    }
}

/// SplitMix64: a bijection on u64, so distinct revisions give distinct uids and names without a
/// random source.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A UUID-shaped uid derived from the revision of the create. Its first 64 bits are SplitMix64 of
/// the revision, a bijection, so no two creates share a uid. (Not a v4 UUID: the version bits
/// carry data; clients treat uids as opaque strings.)
fn uid(revision: u64) -> String {
    let high = splitmix64(revision);
    let low = splitmix64(revision ^ 0x5851_f42d_4c95_7f2d);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// `generateName` plus five characters from the alphabet the real server uses, derived from the
/// revision and the attempt.
fn generate_name(prefix: &str, revision: u64, attempt: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // The real server truncates the prefix so the name fits in 63 characters.
    let prefix: String = prefix.chars().take(58).collect();
    let mut bits = splitmix64(revision ^ 0x6a09_e667_f3bc_c908 ^ attempt.rotate_left(32));
    let mut name = prefix;
    for _ in 0..5 {
        name.push(ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char);
        bits /= ALPHABET.len() as u64;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: WriteContext<'static> = WriteContext {
        client: "test",
        now: "2026-11-21T00:00:00Z",
    };

    fn configmap(name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
    }

    fn all(resource: Resource) -> WatchFilter {
        WatchFilter {
            resource,
            namespace: None,
            labels: LabelSelector::parse("").unwrap(),
            fields: FieldSelector::parse("").unwrap(),
        }
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(Resource::ConfigMap, "default", name)
    }

    #[test]
    fn every_write_takes_the_next_global_revision() {
        let mut store = Store::new();
        let start = store.revision();
        let a = store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("a", json!({})),
            )
            .unwrap();
        let b = store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("b", json!({})),
            )
            .unwrap();
        assert_eq!(metadata_str(&a, "resourceVersion"), (start + 1).to_string());
        assert_eq!(metadata_str(&b, "resourceVersion"), (start + 2).to_string());
        let mut a2 = (*a).clone();
        a2["data"] = json!({"k": "v"});
        let a2 = store.replace(&CTX, &key("a"), a2).unwrap();
        assert_eq!(
            metadata_str(&a2, "resourceVersion"),
            (start + 3).to_string()
        );
        assert_eq!(metadata_str(&a2, "uid"), metadata_str(&a, "uid"));
        assert_eq!(store.revision(), start + 3);
    }

    #[test]
    fn replace_with_a_stale_resource_version_conflicts() {
        let mut store = Store::new();
        let a = store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("a", json!({})),
            )
            .unwrap();
        let mut first = (*a).clone();
        first["data"] = json!({"k": "1"});
        store.replace(&CTX, &key("a"), first).unwrap();
        let mut second = (*a).clone();
        second["data"] = json!({"k": "2"});
        let error = store.replace(&CTX, &key("a"), second.clone()).unwrap_err();
        assert!(error.is_conflict(), "{error}");
        // Without a resourceVersion the update is unconditional.
        second["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        let written = store.replace(&CTX, &key("a"), second).unwrap();
        assert_eq!(written["data"]["k"], "2");
    }

    #[test]
    fn a_write_that_changes_nothing_takes_no_revision() {
        let mut store = Store::new();
        let a = store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("a", json!({"k": "v"})),
            )
            .unwrap();
        let revision = store.revision();
        let same = store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Merge,
                json!({"data": {"k": "v"}}),
            )
            .unwrap();
        assert_eq!(store.revision(), revision);
        assert_eq!(same, a);
    }

    #[test]
    fn patch_resource_version_is_a_precondition() {
        let mut store = Store::new();
        store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("a", json!({})),
            )
            .unwrap();
        let error = store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Merge,
                json!({"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}}),
            )
            .unwrap_err();
        assert!(error.is_conflict());
        let ok = store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Json,
                json!([{"op": "add", "path": "/data/x", "value": "y"}]),
            )
            .unwrap();
        assert_eq!(ok["data"]["x"], "y");
    }

    #[test]
    fn create_into_a_missing_namespace_is_not_found() {
        let mut store = Store::new();
        let error = store
            .create(&CTX, Resource::ConfigMap, "nope", configmap("a", json!({})))
            .unwrap_err();
        assert_eq!(error.message, "namespaces \"nope\" not found");
    }

    #[test]
    fn watch_history_translates_selector_transitions() {
        let mut store = Store::new();
        let start = store.revision();
        let mut object = configmap("a", json!({}));
        object["metadata"]["labels"] = json!({"app": "x"});
        let a = store
            .create(&CTX, Resource::ConfigMap, "default", object)
            .unwrap();
        store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Merge,
                json!({"metadata": {"labels": {"app": "y"}}}),
            )
            .unwrap();
        store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Merge,
                json!({"metadata": {"labels": {"app": "x"}}}),
            )
            .unwrap();
        store
            .delete(
                &CTX,
                &key("a"),
                &Preconditions::default(),
                Propagation::Background,
            )
            .unwrap();
        let filter = WatchFilter {
            labels: LabelSelector::parse("app=x").unwrap(),
            ..all(Resource::ConfigMap)
        };
        let (events, through) = store.events_after(start, &filter).unwrap();
        assert_eq!(through, store.revision());
        let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        // Relabelled out of the selector: the DELETED event carries the content that matched.
        assert_eq!(events[1].object["metadata"]["labels"]["app"], "x");
        assert_eq!(
            metadata_str(&events[1].object, "resourceVersion"),
            events[1].revision.to_string()
        );
        assert_eq!(
            types,
            [
                EventType::Added,
                EventType::Deleted,
                EventType::Added,
                EventType::Deleted
            ]
        );
        assert_eq!(metadata_str(&a, "name"), "a");
    }

    #[test]
    fn compaction_makes_old_revisions_expire() {
        let mut store = Store::new().with_events_max(2);
        let start = store.revision();
        for name in ["a", "b", "c"] {
            store
                .create(
                    &CTX,
                    Resource::ConfigMap,
                    "default",
                    configmap(name, json!({})),
                )
                .unwrap();
        }
        let error = store
            .events_after(start, &all(Resource::ConfigMap))
            .unwrap_err();
        assert_eq!(error.code(), 410);
        assert_eq!(
            store
                .events_after(start + 1, &all(Resource::ConfigMap))
                .unwrap()
                .0
                .len(),
            2
        );
        store.compact(store.revision());
        assert!(
            store
                .events_after(start + 1, &all(Resource::ConfigMap))
                .is_err()
        );
        assert!(
            store
                .events_after(store.revision(), &all(Resource::ConfigMap))
                .unwrap()
                .0
                .is_empty()
        );
    }

    #[test]
    fn compaction_expires_new_watches_but_not_established_ones() {
        let mut store = Store::new();
        let start = store.revision();
        let two_writes = |store: &mut Store| {
            for name in ["a", "b"] {
                let object = json!({"metadata": {"name": name}});
                store
                    .create(&CTX, Resource::ConfigMap, "default", object)
                    .unwrap();
            }
        };
        two_writes(&mut store);
        store.compact(store.revision());
        let filter = all(Resource::ConfigMap);
        assert_eq!(store.events_after(start, &filter).unwrap_err().code(), 410);
        let (events, _) = store.events_after_established(start, &filter).unwrap();
        assert_eq!(
            events.len(),
            2,
            "an established watch is owed what it has not read"
        );
        // The history's bound is another matter: what is trimmed is gone for everyone.
        let mut small = Store::new().with_events_max(1);
        let start = small.revision();
        two_writes(&mut small);
        assert_eq!(
            small
                .events_after_established(start, &filter)
                .unwrap_err()
                .code(),
            410
        );
    }

    #[test]
    fn list_at_reconstructs_the_past() {
        let mut store = Store::new();
        store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("a", json!({"v": "1"})),
            )
            .unwrap();
        let then = store.revision();
        store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Merge,
                json!({"data": {"v": "2"}}),
            )
            .unwrap();
        store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("b", json!({})),
            )
            .unwrap();
        let past = store.list_at(&all(Resource::ConfigMap), then).unwrap();
        assert_eq!(past.items.len(), 1);
        assert_eq!(past.items[0]["data"]["v"], "1");
        assert_eq!(store.get_at(&key("a"), then).unwrap()["data"]["v"], "1");
        assert!(store.get_at(&key("b"), then).unwrap_err().is_not_found());
        assert_eq!(store.list(&all(Resource::ConfigMap)).items.len(), 2);
    }

    #[test]
    fn delete_cascades_to_dependents_whose_owners_are_gone() {
        let mut store = Store::new();
        let owner = store
            .create(&CTX, Resource::Deployment, "default",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                           "spec": {"selector": {"matchLabels": {"app": "d"}},
                                    "template": {"metadata": {"labels": {"app": "d"}},
                                                 "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
            .unwrap();
        let other = store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("other", json!({})),
            )
            .unwrap();
        let reference = |o: &Value| json!({"apiVersion": "v1", "kind": "X", "name": metadata_str(o, "name"), "uid": metadata_str(o, "uid")});
        let mut owned = configmap("owned", json!({}));
        owned["metadata"]["ownerReferences"] = json!([reference(&owner)]);
        store
            .create(&CTX, Resource::ConfigMap, "default", owned)
            .unwrap();
        let mut shared = configmap("shared", json!({}));
        shared["metadata"]["ownerReferences"] = json!([reference(&owner), reference(&other)]);
        store
            .create(&CTX, Resource::ConfigMap, "default", shared)
            .unwrap();
        store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("free", json!({})),
            )
            .unwrap();

        let deployment = ObjectKey::new(Resource::Deployment, "default", "d");
        store
            .delete(
                &CTX,
                &deployment,
                &Preconditions::default(),
                Propagation::Background,
            )
            .unwrap();
        assert!(store.get(&key("owned")).unwrap_err().is_not_found());
        let shared = store.get(&key("shared")).unwrap();
        assert_eq!(
            shared["metadata"]["ownerReferences"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(store.get(&key("free")).is_ok());
    }

    #[test]
    fn collection_follows_chains_and_never_resurrects() {
        // O owns A; B is owned by O and A. Deleting O deletes A, then B, and nothing comes back.
        let mut store = Store::new();
        let reference = |o: &Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": metadata_str(o, "name"), "uid": metadata_str(o, "uid")});
        let o = store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("o", json!({})),
            )
            .unwrap();
        let mut a = configmap("a", json!({}));
        a["metadata"]["ownerReferences"] = json!([reference(&o)]);
        let a = store
            .create(&CTX, Resource::ConfigMap, "default", a)
            .unwrap();
        let mut b = configmap("b", json!({}));
        b["metadata"]["ownerReferences"] = json!([reference(&o), reference(&a)]);
        store
            .create(&CTX, Resource::ConfigMap, "default", b)
            .unwrap();
        // A chain longer than any recursion limit.
        let mut previous = store.get(&key("b")).unwrap();
        for i in 0..200 {
            let mut next = configmap(&format!("chain-{i}"), json!({}));
            next["metadata"]["ownerReferences"] = json!([reference(&previous)]);
            previous = store
                .create(&CTX, Resource::ConfigMap, "default", next)
                .unwrap();
        }
        store
            .delete(
                &CTX,
                &key("o"),
                &Preconditions::default(),
                Propagation::Background,
            )
            .unwrap();
        assert_eq!(store.list(&all(Resource::ConfigMap)).items.len(), 0);
    }

    #[test]
    fn strategic_merge_merges_owner_references_by_uid_and_finalizers_as_a_set() {
        let mut store = Store::new();
        let mut object = configmap("a", json!({}));
        object["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "X", "name": "o1", "uid": "u1"}]);
        object["metadata"]["finalizers"] = json!(["f1"]);
        store
            .create(&CTX, Resource::ConfigMap, "default", object)
            .unwrap();
        let patched = store
            .patch(
                &CTX,
                &key("a"),
                PatchType::StrategicMerge,
                json!({"metadata": {
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o2", "uid": "u2"}],
                "finalizers": ["f2"]}}),
            )
            .unwrap();
        let uids: Vec<&str> = patched["metadata"]["ownerReferences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["uid"].as_str().unwrap())
            .collect();
        assert_eq!(uids, ["u1", "u2"]);
        assert_eq!(patched["metadata"]["finalizers"], json!(["f1", "f2"]));
        let patched = store
            .patch(
                &CTX,
                &key("a"),
                PatchType::StrategicMerge,
                json!({"metadata": {
                "ownerReferences": [{"uid": "u1", "$patch": "delete"}],
                "$deleteFromPrimitiveList/finalizers": ["f1"]}}),
            )
            .unwrap();
        assert_eq!(
            patched["metadata"]["ownerReferences"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(patched["metadata"]["finalizers"], json!(["f2"]));
        // A merge patch replaces lists whole.
        let merged = store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Merge,
                json!({"metadata": {"finalizers": ["f3"]}}),
            )
            .unwrap();
        assert_eq!(merged["metadata"]["finalizers"], json!(["f3"]));
    }

    #[test]
    fn an_immutable_configmap_refuses_changes() {
        let mut store = Store::new();
        let mut object = configmap("a", json!({"k": "v"}));
        object["immutable"] = json!(true);
        store
            .create(&CTX, Resource::ConfigMap, "default", object)
            .unwrap();
        let error = store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Merge,
                json!({"data": {"k": "w"}}),
            )
            .unwrap_err();
        assert_eq!(error.code(), 422);
        assert!(
            error
                .message
                .contains("data: Forbidden: field is immutable when `immutable` is set"),
            "{}",
            error.message
        );
        assert!(
            store
                .patch(
                    &CTX,
                    &key("a"),
                    PatchType::Merge,
                    json!({"immutable": false})
                )
                .is_err()
        );
        store
            .patch(
                &CTX,
                &key("a"),
                PatchType::Merge,
                json!({"metadata": {"labels": {"x": "y"}}}),
            )
            .unwrap();
    }

    #[test]
    fn delete_preconditions_conflict() {
        let mut store = Store::new();
        store
            .create(
                &CTX,
                Resource::ConfigMap,
                "default",
                configmap("a", json!({})),
            )
            .unwrap();
        let wrong = Preconditions {
            uid: Some("nope".into()),
            resource_version: None,
        };
        assert!(
            store
                .delete(&CTX, &key("a"), &wrong, Propagation::Background)
                .unwrap_err()
                .is_conflict()
        );
        let wrong = Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        };
        assert!(
            store
                .delete(&CTX, &key("a"), &wrong, Propagation::Background)
                .unwrap_err()
                .is_conflict()
        );
        store
            .delete(
                &CTX,
                &key("a"),
                &Preconditions::default(),
                Propagation::Background,
            )
            .unwrap();
    }

    #[test]
    fn generated_names_and_uids_are_deterministic() {
        assert_eq!(generate_name("x-", 7, 0), generate_name("x-", 7, 0));
        assert_ne!(generate_name("x-", 7, 0), generate_name("x-", 7, 1));
        assert_ne!(uid(1), uid(2));
        assert_eq!(uid(3).len(), 36);
    }
}
