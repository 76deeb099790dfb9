//! One stored object, two schemas: `events.k8s.io/v1` Events are `core/v1` Events under other
//! field names, as in kube-apiserver (whose events.k8s.io storage is the core Event registry).
//!
//! The store holds the stored schema only ([`Resource::stored`]). A request for a resource served
//! in a second schema is converted at the edge: its body (an object or a merge or apply patch,
//! whose top-level keys are the fields renamed) and its JSON patch paths on the way in, every
//! object it is answered with (a get, a list's items, a watch's events, a Table's embedded
//! objects) on the way out, and the names in its errors. What the store decides (resourceVersion
//! CAS, selectors over stored fields, watches) is one decision for both schemas, so an Event
//! written through one group is read, selected and watched through the other.
//!
//! The field mapping is `pkg/apis/events/v1/conversion.go`'s: `regarding` is `involvedObject`,
//! `note` is `message`, `reportingController` is `reportingComponent`, and the legacy
//! `source`, `firstTimestamp`, `lastTimestamp` and `count` are the `deprecated…` fields. The
//! rest (`eventTime`, `series`, `action`, `reason`, `type`, `related`, `reportingInstance`,
//! `metadata`) is spelled alike.

use serde_json::{Map, Value, json};

use super::resource::Resource;
use super::status::ApiError;

/// `(events.k8s.io/v1 name, core/v1 name)` for every top-level Event field spelled differently.
const EVENT_RENAMES: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Which way a document is renamed.
#[derive(Clone, Copy)]
enum Direction {
    /// From the served schema to the stored one (a request's body).
    In,
    /// From the stored schema to the served one (an answer).
    Out,
}

fn renames(resource: Resource) -> &'static [(&'static str, &'static str)] {
    match resource {
        Resource::EventsK8sIo => &EVENT_RENAMES,
        _ => &[],
    }
}

/// Rename one top-level field name; `None` for a name the target schema does not have (a core
/// name sent to events.k8s.io, or the reverse), which a decoder drops as an unknown field.
fn rename(resource: Resource, direction: Direction, name: &str) -> Option<&str> {
    for &(served, stored) in renames(resource) {
        let (from, to, other) = match direction {
            Direction::In => (served, stored, stored),
            Direction::Out => (stored, served, served),
        };
        if name == from {
            return Some(to);
        }
        if name == other {
            return None;
        }
    }
    Some(name)
}

fn rename_fields(resource: Resource, direction: Direction, fields: Map<String, Value>) -> Value {
    let mut renamed = Map::new();
    for (name, value) in fields {
        if let Some(name) = rename(resource, direction, &name) {
            renamed.insert(name.to_owned(), value);
        }
    }
    Value::Object(renamed)
}

/// A request body (an object, or a merge, strategic-merge or apply patch) of `resource`'s schema,
/// in its stored schema. The `apiVersion`, where given, must be the served one, as a real
/// server's decoder insists; it becomes the stored one. A resource stored as served is returned
/// unchanged (whatever it holds, the store judges it).
pub fn body_to_stored(resource: Resource, body: Value) -> Result<Value, ApiError> {
    let stored = resource.stored();
    if stored == resource {
        return Ok(body);
    }
    let Value::Object(mut fields) = body else {
        return Ok(body);
    };
    if let Some(api_version) = fields.get("apiVersion") {
        let given = api_version.as_str().unwrap_or("");
        let kind = fields.get("kind").and_then(Value::as_str).unwrap_or("");
        if given != resource.api_version() || (!kind.is_empty() && kind != resource.kind()) {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({given}) and kind ({kind}) do not match the expected {} {}",
                resource.api_version(),
                resource.kind()
            )));
        }
        fields.insert("apiVersion".into(), json!(stored.api_version()));
    }
    Ok(rename_fields(resource, Direction::In, fields))
}

/// A JSON patch (RFC 6902) written against `resource`'s schema, with its paths in the stored
/// schema: the first segment of each `path` and `from` is renamed; a value that replaces the
/// whole document is converted as a body.
///
/// A path that starts with a name the served schema does not have (a core name sent to
/// events.k8s.io) names no field. A real server applies the patch to the served object and its
/// decoder then drops what such an `add` or `copy` wrote, so those operations are dropped
/// here; any other operation on such a path fails, as it does on a real server, because it
/// finds nothing there.
pub fn json_patch_to_stored(resource: Resource, patch: Value) -> Result<Value, ApiError> {
    if resource.stored() == resource {
        return Ok(patch);
    }
    let Value::Array(operations) = patch else {
        return Ok(patch);
    };
    let mut converted = Vec::with_capacity(operations.len());
    for mut operation in operations {
        let op = operation.get("op").and_then(Value::as_str).unwrap_or("");
        let unknown_target = operation
            .get("path")
            .and_then(Value::as_str)
            .is_some_and(|path| pointer_to_stored(resource, path).is_none());
        if unknown_target && matches!(op, "add" | "copy") {
            continue;
        }
        for key in ["path", "from"] {
            if let Some(path) = operation.get(key).and_then(Value::as_str) {
                // Under a parent that cannot exist, so the operation fails.
                let stored = pointer_to_stored(resource, path)
                    .unwrap_or_else(|| "/khaos~1no-such-field/x".to_owned());
                operation[key] = json!(stored);
            }
        }
        if operation.get("path").and_then(Value::as_str) == Some("")
            && let Some(value) = operation.get_mut("value")
        {
            *value = body_to_stored(resource, value.take())?;
        }
        converted.push(operation);
    }
    Ok(Value::Array(converted))
}

/// A JSON pointer into the served schema as one into the stored schema; `None` when its first
/// segment names no field of the served schema.
fn pointer_to_stored(resource: Resource, pointer: &str) -> Option<String> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Some(pointer.to_owned());
    };
    let (first, tail) = match rest.split_once('/') {
        Some((first, tail)) => (first, Some(tail)),
        None => (rest, None),
    };
    let first = rename(resource, Direction::In, first)?;
    Some(match tail {
        Some(tail) => format!("/{first}/{tail}"),
        None => format!("/{first}"),
    })
}

/// A stored object as `resource` serves it: fields renamed, `apiVersion` the served one (where
/// the stored object names one: list items carry none).
pub fn to_served(resource: Resource, object: Value) -> Value {
    if resource.stored() == resource {
        return object;
    }
    let Value::Object(mut fields) = object else {
        return object;
    };
    if fields.contains_key("apiVersion") {
        fields.insert("apiVersion".into(), json!(resource.api_version()));
    }
    if let Some(Value::Object(series)) = fields.get_mut("series") {
        // core/v1's deprecated `series.state` has no place in events.k8s.io/v1.
        series.remove("state");
    }
    rename_fields(resource, Direction::Out, fields)
}

/// An error the store gave in its stored resource's names, in the served resource's names:
/// `events "x" not found` answered to an events.k8s.io request is
/// `events.events.k8s.io "x" not found`, with the group in its details.
pub fn error_to_served(resource: Resource, mut error: ApiError) -> ApiError {
    let stored = resource.stored();
    if stored == resource {
        return error;
    }
    for (from, to) in [
        (stored.qualified_plural(), resource.qualified_plural()),
        (stored.qualified_kind(), resource.qualified_kind()),
    ] {
        let from = format!("{from} \"");
        if error.message.contains(&from) {
            error.message = error.message.replacen(&from, &format!("{to} \""), 1);
            break;
        }
    }
    if let Some(details) = error.details.as_mut().and_then(Value::as_object_mut)
        && details.contains_key("name")
    {
        details.insert("group".into(), json!(resource.group()));
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served_event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "lock.1", "namespace": "default"},
            "eventTime": "2026-12-03T10:00:00.000000Z",
            "regarding": {"kind": "Lease", "name": "lock", "namespace": "default"},
            "note": "node-1 became leader",
            "reason": "LeaderElection",
            "action": "Elect",
            "type": "Normal",
            "reportingController": "khaos.dev/elector",
            "reportingInstance": "node-1",
            "series": {"count": 2, "lastObservedTime": "2026-12-03T10:00:01.000000Z"},
        })
    }

    #[test]
    fn an_event_round_trips_through_the_stored_schema() {
        let stored = body_to_stored(Resource::EventsK8sIo, served_event()).unwrap();
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "lock");
        assert_eq!(stored["message"], "node-1 became leader");
        assert_eq!(stored["reportingComponent"], "khaos.dev/elector");
        assert_eq!(stored["reportingInstance"], "node-1");
        assert!(stored.get("regarding").is_none() && stored.get("note").is_none());
        assert_eq!(to_served(Resource::EventsK8sIo, stored), served_event());
    }

    #[test]
    fn a_field_of_the_other_schema_is_dropped_as_unknown() {
        let mut body = served_event();
        body["message"] = json!("core's name, unknown to events.k8s.io");
        let stored = body_to_stored(Resource::EventsK8sIo, body).unwrap();
        assert_eq!(stored["message"], "node-1 became leader");
        let mut stored = stored;
        stored["note"] = json!("not a core field");
        assert_eq!(
            to_served(Resource::EventsK8sIo, stored)["note"],
            "node-1 became leader"
        );
    }

    #[test]
    fn a_body_of_the_other_group_is_refused() {
        let mut body = served_event();
        body["apiVersion"] = json!("v1");
        let error = body_to_stored(Resource::EventsK8sIo, body).unwrap_err();
        assert!(
            error
                .message
                .contains("do not match the expected events.k8s.io/v1 Event"),
            "{}",
            error.message
        );
    }

    #[test]
    fn json_patch_paths_are_renamed_at_their_first_segment() {
        let patch = json!([
            {"op": "replace", "path": "/note", "value": "x"},
            {"op": "copy", "from": "/regarding/name", "path": "/series/count"},
            {"op": "add", "path": "/message", "value": "dropped, as a decoder drops it"},
            {"op": "test", "path": "/message", "value": "x"},
        ]);
        let stored = json_patch_to_stored(Resource::EventsK8sIo, patch).unwrap();
        assert_eq!(stored[0]["path"], "/message");
        assert_eq!(stored[1]["from"], "/involvedObject/name");
        assert_eq!(stored[1]["path"], "/series/count");
        assert_eq!(stored.as_array().unwrap().len(), 3, "{stored}");
        assert_eq!(stored[2]["op"], "test");
        // A core path names nothing here: the test fails on any stored object.
        let mut object = json!({"message": "x"});
        let operations: json_patch::Patch =
            serde_json::from_value(json!([stored[2].clone()])).unwrap();
        assert!(json_patch::patch(&mut object, &operations).is_err());
    }

    #[test]
    fn errors_name_the_served_group() {
        let error = ApiError::not_found(Resource::Event, "lock.1");
        let error = error_to_served(Resource::EventsK8sIo, error);
        assert_eq!(error.message, "events.events.k8s.io \"lock.1\" not found");
        assert_eq!(error.details.unwrap()["group"], "events.k8s.io");
    }

    #[test]
    fn strict_validation_wants_what_events_k8s_io_requires() {
        use super::super::validation::validate_events_create;
        let stored = body_to_stored(Resource::EventsK8sIo, served_event()).unwrap();
        assert_eq!(validate_events_create(&stored, "default"), Vec::new());
        let bare = json!({"metadata": {"name": "x", "namespace": "default"}, "count": 3});
        let mut fields: Vec<String> = validate_events_create(&bare, "default")
            .into_iter()
            .map(|cause| cause.field)
            .collect();
        // An empty controller is both missing and not a qualified name, as on a real server.
        fields.dedup();
        assert_eq!(
            fields,
            [
                "eventTime",
                "type",
                "count",
                "reportingController",
                "reportingInstance",
                "action",
                "reason"
            ]
        );
    }

    #[test]
    fn other_resources_pass_unchanged() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "note": 1, "message": 2});
        assert_eq!(
            body_to_stored(Resource::ConfigMap, object.clone()).unwrap(),
            object
        );
        assert_eq!(to_served(Resource::Event, object.clone()), object);
    }
}
