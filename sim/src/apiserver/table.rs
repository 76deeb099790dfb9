//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for, with the
//! columns and cells kube-apiserver's printers produce for the served kinds.
//!
//! `kubectl get` (without `-o yaml|json|name|jsonpath`) sends
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json`
//! on gets, lists and watches, and no `includeObject` parameter. A real server then answers:
//!
//! - every column of the kind, `priority: 1` ("wide") ones included: kubectl hides those unless
//!   `-o wide`;
//! - one row per object, each with its `cells` and, by default (`includeObject=Metadata`), the
//!   object's full `metadata` as a `PartialObjectMetadata` in `object`. kubectl reads that
//!   metadata for the NAMESPACE column of `-A`, for `--show-labels` and for `-L`;
//! - `metadata.resourceVersion` of the list (or of the object, for a single get or a watch
//!   event). `kubectl get -w` starts its watch from the list's `resourceVersion`;
//! - on a watch, each event's object is a one-row `Table`, and only the first event of the
//!   stream carries `columnDefinitions` (the others have `null`): see [`watch_table`].
//!
//! A plain list also works (kubectl then prints NAME and AGE only), so the Table is about
//! fidelity, not about kubectl working.
//!
//! Column descriptions are short paraphrases: the real ones are API documentation strings that
//! no client reads.

use super::resource::Resource;
use serde_json::{Map, Value, json};

/// What each row's `object` carries: the `includeObject` query parameter (`TableOptions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `includeObject=None`: `object` is `null`.
    None,
    /// `includeObject=Metadata`, the default: a `meta.k8s.io/v1` `PartialObjectMetadata`.
    #[default]
    Metadata,
    /// `includeObject=Object`: the whole object.
    Object,
}

impl IncludeObject {
    /// The value of the `includeObject` query parameter; absent or empty means
    /// [`IncludeObject::Metadata`]. Anything else is the message of the 400 BadRequest a real
    /// server answers (`unrecognized includeObject value: "x"`).
    pub fn parse(value: Option<&str>) -> Result<IncludeObject, String> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(format!("unrecognized includeObject value: {other:?}")),
        }
    }
}

/// Whether a request with this `Accept` header is answered with a `Table`.
///
/// The media ranges are taken by decreasing `q` (ties in the order written), skipping those
/// this server cannot produce (it writes JSON only: `application/json`, `application/*` and
/// `*/*` are producible, and among `as=` forms only `Table` of `meta.k8s.io` `v1` or `v1beta1`);
/// the answer is a Table when the first producible range asks for one.
pub fn wants_table(accept: &str) -> bool {
    let mut ranges: Vec<(f32, MediaRange)> = accept
        .split(',')
        .filter_map(MediaRange::parse)
        .map(|range| (range.quality, range))
        .filter(|(quality, _)| *quality > 0.0)
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges
        .into_iter()
        .find_map(|(_, range)| range.producible())
        .unwrap_or(false)
}

/// One clause of an `Accept` header.
struct MediaRange {
    essence: String,
    quality: f32,
    as_kind: Option<String>,
    group: Option<String>,
    version: Option<String>,
}

impl MediaRange {
    fn parse(clause: &str) -> Option<MediaRange> {
        let mut parts = clause.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if essence.is_empty() {
            return None;
        }
        let mut range = MediaRange {
            essence,
            quality: 1.0,
            as_kind: None,
            group: None,
            version: None,
        };
        for parameter in parts {
            let Some((key, value)) = parameter.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"').to_owned();
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => range.quality = value.parse().unwrap_or(0.0),
                "as" => range.as_kind = Some(value),
                "g" => range.group = Some(value),
                "v" => range.version = Some(value),
                _ => {}
            }
        }
        Some(range)
    }

    /// `Some(is_table)` when this server can answer the range, `None` when it cannot.
    fn producible(&self) -> Option<bool> {
        match self.as_kind.as_deref() {
            None => matches!(
                self.essence.as_str(),
                "application/json" | "application/*" | "*/*"
            )
            .then_some(false),
            Some("Table") => (self.essence == "application/json"
                && self.group.as_deref() == Some("meta.k8s.io")
                && matches!(self.version.as_deref(), Some("v1" | "v1beta1")))
            .then_some(true),
            Some(_) => None,
        }
    }
}

/// The `meta.k8s.io/v1` `Table` of `objects` (stored objects of `resource`), as a real server
/// answers a list (`list_resource_version` is the list's `resourceVersion`) or a single get
/// (pass the object alone and its own `resourceVersion`). An empty `list_resource_version`
/// leaves `metadata` empty. `now_unix_seconds` is the server's clock, for the AGE column.
pub fn table(
    resource: Resource,
    objects: &[Value],
    list_resource_version: &str,
    now_unix_seconds: i64,
    include_object: IncludeObject,
) -> Value {
    let mut metadata = Map::new();
    if !list_resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), json!(list_resource_version));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| row(resource, object, now_unix_seconds, include_object))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(resource),
        "rows": rows,
    })
}

/// The one-row `Table` sent as the object of a watch event, with the object's own
/// `resourceVersion`.
///
/// A real server includes `columnDefinitions` in the first event of a stream only and sends
/// `null` in later ones (kubectl keeps the columns it has); pass `first_event` accordingly.
pub fn watch_table(
    resource: Resource,
    object: &Value,
    now_unix_seconds: i64,
    include_object: IncludeObject,
    first_event: bool,
) -> Value {
    let resource_version = object["metadata"]["resourceVersion"].as_str().unwrap_or("");
    let mut table = table(
        resource,
        std::slice::from_ref(object),
        resource_version,
        now_unix_seconds,
        include_object,
    );
    if !first_event {
        table["columnDefinitions"] = Value::Null;
    }
    table
}

/// The columns of `resource`, as `pkg/printers/internalversion/printers.go` defines them.
pub fn column_definitions(resource: Resource) -> Value {
    let name = column(
        "Name",
        "string",
        "name",
        0,
        "Name of the object, unique in its namespace.",
    );
    let age = column(
        "Age",
        "string",
        "",
        0,
        "Time since the object was created (metadata.creationTimestamp).",
    );
    let columns = match resource {
        Resource::ConfigMap => vec![
            name,
            column(
                "Data",
                "string",
                "",
                0,
                "Number of keys in data and binaryData.",
            ),
            age,
        ],
        Resource::Lease => vec![
            name,
            column(
                "Holder",
                "string",
                "",
                0,
                "spec.holderIdentity: who holds the lease.",
            ),
            age,
        ],
        // One table convertor serves both schemas of an Event, over the stored one.
        Resource::Event | Resource::EventsK8sIo => vec![
            column(
                "Last Seen",
                "string",
                "",
                0,
                "Time since the event was last seen (lastTimestamp, else eventTime, else its creation).",
            ),
            column("Type", "string", "", 0, "Normal or Warning."),
            column(
                "Reason",
                "string",
                "",
                0,
                "Why the event happened, in one word.",
            ),
            column(
                "Object",
                "string",
                "",
                0,
                "The object it is about: kind/name.",
            ),
            column("Message", "string", "", 0, "What happened, in words."),
            column("Name", "string", "name", 1, "The event's own name."),
        ],
        Resource::Namespace => vec![
            name,
            column(
                "Status",
                "string",
                "",
                0,
                "The phase of the namespace (status.phase).",
            ),
            age,
        ],
        Resource::Pod => vec![
            name,
            column(
                "Ready",
                "string",
                "",
                0,
                "Ready containers over containers.",
            ),
            column(
                "Status",
                "string",
                "",
                0,
                "The pod's phase, or why its containers are not running (CrashLoopBackOff), or Terminating.",
            ),
            column(
                "Restarts",
                "string",
                "",
                0,
                "Restarts of the pod's containers, and how long ago the last was.",
            ),
            age,
            column("IP", "string", "", 1, "status.podIP."),
            column("Node", "string", "", 1, "spec.nodeName."),
        ],
        Resource::ReplicaSet => vec![
            name,
            column("Desired", "integer", "", 0, "spec.replicas."),
            column("Current", "integer", "", 0, "status.replicas."),
            column("Ready", "integer", "", 0, "status.readyReplicas."),
            age,
            column(
                "Containers",
                "string",
                "",
                1,
                "Names of each container in the template.",
            ),
            column(
                "Images",
                "string",
                "",
                1,
                "Images referenced by each container in the template.",
            ),
            column(
                "Selector",
                "string",
                "",
                1,
                "The label selector of the replica set's pods.",
            ),
        ],
        Resource::Deployment => vec![
            name,
            column(
                "Ready",
                "string",
                "",
                0,
                "Ready replicas over desired replicas.",
            ),
            column("Up-to-date", "string", "", 0, "status.updatedReplicas."),
            column("Available", "string", "", 0, "status.availableReplicas."),
            age,
            column(
                "Containers",
                "string",
                "",
                1,
                "Names of each container in the template.",
            ),
            column(
                "Images",
                "string",
                "",
                1,
                "Images referenced by each container in the template.",
            ),
            column(
                "Selector",
                "string",
                "",
                1,
                "The label selector of the deployment's pods.",
            ),
        ],
    };
    Value::Array(columns)
}

fn column(name: &str, kind: &str, format: &str, priority: u8, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "format": format,
        "description": description,
        "priority": priority,
    })
}

/// One row: `cells`, then `object` per `include_object`.
fn row(resource: Resource, object: &Value, now: i64, include_object: IncludeObject) -> Value {
    let embedded = match include_object {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => {
            let mut full = super::convert::to_served(resource, object.clone());
            if let Value::Object(map) = &mut full {
                map.entry("apiVersion")
                    .or_insert_with(|| json!(resource.api_version()));
                map.entry("kind").or_insert_with(|| json!(resource.kind()));
            }
            full
        }
    };
    json!({ "cells": cells(resource, object, now), "object": embedded })
}

/// The cells of one object's row, in column order (wide columns included).
pub fn cells(resource: Resource, object: &Value, now_unix_seconds: i64) -> Vec<Value> {
    let name = json!(str_at(object, &["metadata", "name"]));
    let age = json!(age(object, now_unix_seconds));
    match resource {
        Resource::ConfigMap => {
            let keys = ["data", "binaryData"]
                .iter()
                .filter_map(|field| object.get(*field).and_then(Value::as_object))
                .map(Map::len)
                .sum::<usize>();
            vec![name, json!(keys), age]
        }
        Resource::Lease => vec![
            name,
            json!(str_at(object, &["spec", "holderIdentity"])),
            age,
        ],
        Resource::Namespace => vec![name, json!(str_at(object, &["status", "phase"])), age],
        Resource::Event | Resource::EventsK8sIo => {
            // As kubectl's printer: the series' last sighting, else the legacy last time, else
            // the event time.
            let seen = [
                &["series", "lastObservedTime"][..],
                &["lastTimestamp"],
                &["eventTime"],
            ]
            .into_iter()
            .map(|path| str_at(object, path))
            .find(|t| !t.is_empty())
            .unwrap_or_else(|| str_at(object, &["metadata", "creationTimestamp"]));
            let last_seen = self::age(
                &json!({ "metadata": { "creationTimestamp": seen } }),
                now_unix_seconds,
            );
            let involved = format!(
                "{}/{}",
                str_at(object, &["involvedObject", "kind"]).to_lowercase(),
                str_at(object, &["involvedObject", "name"])
            );
            vec![
                json!(last_seen),
                json!(str_at(object, &["type"])),
                json!(str_at(object, &["reason"])),
                json!(involved),
                json!(str_at(object, &["message"])),
                name,
            ]
        }
        Resource::Pod => pod_cells(object, now_unix_seconds),
        Resource::ReplicaSet => {
            let (containers, images) = template_containers(object);
            vec![
                name,
                json!(int_at(object, &["spec", "replicas"]).unwrap_or(1)),
                json!(int_at(object, &["status", "replicas"]).unwrap_or(0)),
                json!(int_at(object, &["status", "readyReplicas"]).unwrap_or(0)),
                age,
                json!(containers),
                json!(images),
                json!(selector_string(object.pointer("/spec/selector"))),
            ]
        }
        Resource::Deployment => {
            // apps/v1 defaults spec.replicas to 1; the status counters default to 0.
            let desired = int_at(object, &["spec", "replicas"]).unwrap_or(1);
            let ready = int_at(object, &["status", "readyReplicas"]).unwrap_or(0);
            let updated = int_at(object, &["status", "updatedReplicas"]).unwrap_or(0);
            let available = int_at(object, &["status", "availableReplicas"]).unwrap_or(0);
            let containers: &[Value] = object
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let joined = |field: &str| {
                containers
                    .iter()
                    .map(|c| c.get(field).and_then(Value::as_str).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            vec![
                name,
                json!(format!("{ready}/{desired}")),
                json!(updated),
                json!(available),
                age,
                json!(joined("name")),
                json!(joined("image")),
                json!(selector_string(object.pointer("/spec/selector"))),
            ]
        }
    }
}

/// A workload template's container names and images, comma-joined, as the printers show them.
fn template_containers(object: &Value) -> (String, String) {
    let containers: &[Value] = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let joined = |field: &str| {
        containers
            .iter()
            .map(|c| c.get(field).and_then(Value::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",")
    };
    (joined("name"), joined("image"))
}

/// A pod's row as kubectl's `printPod` makes it: READY counts ready running containers;
/// STATUS is the phase, overridden by a container's waiting or terminated reason, and
/// `Terminating` once the pod is marked for deletion; RESTARTS sums the containers' and says
/// how long ago the last one ended.
fn pod_cells(object: &Value, now: i64) -> Vec<Value> {
    let statuses: &[Value] = object
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let total = object
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut reason = match str_at(object, &["status", "reason"]) {
        "" => str_at(object, &["status", "phase"]).to_owned(),
        reason => reason.to_owned(),
    };
    let (mut ready, mut restarts, mut last_restart) = (0, 0, None::<i64>);
    let mut running = false;
    for status in statuses.iter().rev() {
        restarts += status["restartCount"].as_i64().unwrap_or(0);
        if let Some(finished) = status
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339_utc)
        {
            last_restart = Some(last_restart.map_or(finished, |l| l.max(finished)));
        }
        let state = &status["state"];
        if let Some(waiting) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = waiting.to_owned();
        } else if state["terminated"].is_object() {
            let terminated = &state["terminated"];
            reason = match terminated["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => r.to_owned(),
                None => match terminated["signal"].as_i64().filter(|s| *s != 0) {
                    Some(signal) => format!("Signal:{signal}"),
                    None => format!("ExitCode:{}", terminated["exitCode"].as_i64().unwrap_or(0)),
                },
            };
        } else if status["ready"] == json!(true) && state["running"].is_object() {
            running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && running {
        reason = "Running".to_owned();
    }
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        reason = "Terminating".to_owned();
    }
    let restarts = match last_restart {
        Some(at) if restarts > 0 => format!("{restarts} ({} ago)", human_age(now - at)),
        _ => restarts.to_string(),
    };
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_owned()
        } else {
            s.to_owned()
        }
    };
    vec![
        json!(str_at(object, &["metadata", "name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(object, now)),
        json!(or_none(str_at(object, &["status", "podIP"]))),
        json!(or_none(str_at(object, &["spec", "nodeName"]))),
    ]
}

/// The AGE cell: `<unknown>` without a parsable `metadata.creationTimestamp`.
fn age(object: &Value, now: i64) -> String {
    object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_utc)
        .map_or_else(
            || "<unknown>".to_owned(),
            |created| human_age(now - created),
        )
}

fn str_at<'a>(object: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(object, |value, key| value.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn int_at(object: &Value, path: &[&str]) -> Option<i64> {
    path.iter()
        .try_fold(object, |value, key| value.get(key))
        .and_then(Value::as_i64)
}

/// A `metav1.LabelSelector` as `labels.Selector.String()` writes it (`app=web,tier in (a,b)`):
/// requirements sorted by key, `in`/`notin` values sorted. An absent or empty selector prints
/// as `""`; an unknown operator, or values where they do not belong, as `<invalid>` (both as
/// the Deployment printer does).
pub fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return String::new();
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in labels {
            let value = value.as_str().unwrap_or("");
            requirements.push((key.clone(), format!("{key}={value}")));
        }
    }
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    for expression in expressions.into_iter().flatten() {
        let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
        let mut values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        values.sort_unstable();
        values.dedup();
        let operator = expression
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or("");
        let text = match operator {
            "In" if !values.is_empty() => format!("{key} in ({})", values.join(",")),
            "NotIn" if !values.is_empty() => format!("{key} notin ({})", values.join(",")),
            "Exists" if values.is_empty() => key.to_owned(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return "<invalid>".to_owned(),
        };
        requirements.push((key.to_owned(), text));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(",")
}

/// A duration in seconds as Kubernetes' `duration.HumanDuration` writes it for AGE columns:
/// about two significant units (`5s`, `119s`, `3m20s`, `15m`, `2h5m`, `30h`, `2d3h`, `45d`,
/// `2y30d`, `9y`). Up to one second in the future (clock skew) is `0s`; further is `<invalid>`.
pub fn human_age(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// Seconds since the Unix epoch of a timestamp in the exact form Kubernetes writes
/// (`2026-11-21T07:43:00Z`: RFC 3339, UTC, whole seconds); `None` for anything else.
pub fn parse_rfc3339_utc(timestamp: &str) -> Option<i64> {
    let bytes = timestamp.as_bytes();
    if bytes.len() != 20 {
        return None;
    }
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ];
    if separators.iter().any(|&(at, byte)| bytes[at] != byte) {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = &timestamp[from..to];
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Howard Hinnant's `days_from_civil`: (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    /// 2026-11-21T07:43:00Z.
    const CREATED: i64 = 1_795_246_980;

    fn configmap(name: &str, data: Value, binary: Option<Value>) -> Value {
        let mut cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": "u-1",
                "resourceVersion": "7",
                "creationTimestamp": "2026-11-21T07:43:00Z",
                "labels": { "app": "web" },
            },
            "data": data,
        });
        if let Some(binary) = binary {
            cm["binaryData"] = binary;
        }
        cm
    }

    #[test]
    fn accept_headers() {
        assert!(wants_table(KUBECTL_ACCEPT));
        assert!(wants_table(
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
        ));
        assert!(wants_table(
            "application/json; as=Table; g=meta.k8s.io; v=v1"
        ));
        assert!(!wants_table("application/json"));
        assert!(!wants_table("application/json, */*"));
        assert!(!wants_table(""));
        assert!(!wants_table("*/*"));
        assert!(!wants_table(
            "application/vnd.kubernetes.protobuf,application/json"
        ));
        // Discovery's aggregated form is not producible; plain JSON comes next.
        assert!(!wants_table(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        // A Table of another group or version cannot be produced.
        assert!(!wants_table(
            "application/json;as=Table;v=v2;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json;as=Table;v=v1;g=example.com"));
        // Metadata-only lists are not served: skipped for the Table behind them.
        assert!(wants_table(
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io"
        ));
        // Quality values order the ranges; q=0 excludes one.
        assert!(!wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io;q=0.5,application/json"
        ));
        assert!(wants_table(
            "application/json;q=0.9,application/json;as=Table;v=v1;g=meta.k8s.io"
        ));
        assert!(!wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io;q=0"
        ));
    }

    #[test]
    fn include_object_parameter() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        assert_eq!(
            IncludeObject::parse(Some("all")),
            Err("unrecognized includeObject value: \"all\"".to_owned())
        );
        assert_eq!(IncludeObject::default(), IncludeObject::Metadata);
    }

    #[test]
    fn configmap_table_like_a_real_server() {
        let cm = configmap(
            "demo",
            json!({"a": "1", "b": "2"}),
            Some(json!({"bin": "AAE="})),
        );
        let table = table(
            Resource::ConfigMap,
            std::slice::from_ref(&cm),
            "42",
            CREATED + 200,
            IncludeObject::Metadata,
        );
        assert_eq!(
            table,
            json!({
                "kind": "Table",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": { "resourceVersion": "42" },
                "columnDefinitions": column_definitions(Resource::ConfigMap),
                "rows": [{
                    "cells": ["demo", 3, "3m20s"],
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": cm["metadata"],
                    },
                }],
            })
        );
        let names: Vec<&Value> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, [&json!("Name"), &json!("Data"), &json!("Age")]);
        let name = &table["columnDefinitions"][0];
        assert_eq!(name["type"], "string");
        assert_eq!(name["format"], "name");
        assert_eq!(name["priority"], 0);
        for column in table["columnDefinitions"].as_array().unwrap() {
            let keys: Vec<&str> = column
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["name", "type", "format", "description", "priority"]);
        }
    }

    #[test]
    fn empty_configmap_and_empty_list() {
        let cm = json!({"metadata": {"name": "e", "creationTimestamp": "2026-11-21T07:43:00Z"}});
        assert_eq!(
            cells(Resource::ConfigMap, &cm, CREATED + 5),
            [json!("e"), json!(0), json!("5s")]
        );
        let empty = table(
            Resource::ConfigMap,
            &[],
            "9",
            CREATED,
            IncludeObject::Metadata,
        );
        assert_eq!(empty["rows"], json!([]));
        assert_eq!(empty["metadata"], json!({"resourceVersion": "9"}));
        let no_rv = table(
            Resource::ConfigMap,
            &[],
            "",
            CREATED,
            IncludeObject::Metadata,
        );
        assert_eq!(no_rv["metadata"], json!({}));
    }

    #[test]
    fn include_object_variants() {
        let cm = configmap("demo", json!({"a": "1"}), None);
        let none = table(
            Resource::ConfigMap,
            std::slice::from_ref(&cm),
            "1",
            CREATED,
            IncludeObject::None,
        );
        assert_eq!(none["rows"][0]["object"], Value::Null);
        assert_eq!(none["rows"][0]["cells"], json!(["demo", 1, "0s"]));
        let full = table(
            Resource::ConfigMap,
            std::slice::from_ref(&cm),
            "1",
            CREATED,
            IncludeObject::Object,
        );
        assert_eq!(full["rows"][0]["object"], cm);
        let bare = json!({"metadata": {"name": "x"}});
        let full = table(
            Resource::Lease,
            &[bare],
            "1",
            CREATED,
            IncludeObject::Object,
        );
        assert_eq!(
            full["rows"][0]["object"]["apiVersion"],
            "coordination.k8s.io/v1"
        );
        assert_eq!(full["rows"][0]["object"]["kind"], "Lease");
    }

    #[test]
    fn lease_namespace_and_deployment_cells() {
        let lease = json!({
            "metadata": {"name": "lock", "creationTimestamp": "2026-11-21T07:43:00Z"},
            "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 15},
        });
        assert_eq!(
            cells(Resource::Lease, &lease, CREATED + 3600 * 30),
            [json!("lock"), json!("node-a"), json!("30h")]
        );
        let unheld = json!({"metadata": {"name": "free"}, "spec": {}});
        assert_eq!(
            cells(Resource::Lease, &unheld, CREATED),
            [json!("free"), json!(""), json!("<unknown>")]
        );

        let namespace = json!({
            "metadata": {"name": "team-a", "creationTimestamp": "2026-11-21T07:43:00Z"},
            "status": {"phase": "Active"},
        });
        assert_eq!(
            cells(
                Resource::Namespace,
                &namespace,
                CREATED + 86_400 * 2 + 3600 * 3
            ),
            [json!("team-a"), json!("Active"), json!("2d3h")]
        );

        let deployment = json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-11-21T07:43:00Z"},
            "spec": {
                "replicas": 3,
                "selector": {
                    "matchLabels": {"tier": "fe", "app": "web"},
                    "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}],
                },
                "template": {"spec": {"containers": [
                    {"name": "c", "image": "nginx"},
                    {"name": "side", "image": "envoy:1"},
                ]}},
            },
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 1},
        });
        assert_eq!(
            cells(Resource::Deployment, &deployment, CREATED + 59),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(1),
                json!("59s"),
                json!("c,side"),
                json!("nginx,envoy:1"),
                json!("app=web,env in (dev,prod),tier=fe"),
            ]
        );
        // Stored inertly: no status, replicas defaulted by apps/v1 to 1.
        let inert = json!({"metadata": {"name": "bare"}, "spec": {"selector": {"matchLabels": {"app": "x"}}}});
        assert_eq!(
            cells(Resource::Deployment, &inert, CREATED),
            [
                json!("bare"),
                json!("0/1"),
                json!(0),
                json!(0),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("app=x"),
            ]
        );
        let defs = column_definitions(Resource::Deployment);
        let wide: Vec<(&Value, &Value)> = defs
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (&c["name"], &c["priority"]))
            .collect();
        assert_eq!(
            wide,
            [
                (&json!("Name"), &json!(0)),
                (&json!("Ready"), &json!(0)),
                (&json!("Up-to-date"), &json!(0)),
                (&json!("Available"), &json!(0)),
                (&json!("Age"), &json!(0)),
                (&json!("Containers"), &json!(1)),
                (&json!("Images"), &json!(1)),
                (&json!("Selector"), &json!(1)),
            ]
        );
    }

    #[test]
    fn every_row_has_one_cell_per_column() {
        let object = json!({"metadata": {"name": "x"}});
        for resource in Resource::ALL {
            let table = table(
                resource,
                std::slice::from_ref(&object),
                "1",
                0,
                IncludeObject::Metadata,
            );
            assert_eq!(
                table["rows"][0]["cells"].as_array().unwrap().len(),
                table["columnDefinitions"].as_array().unwrap().len(),
                "{resource:?}"
            );
            let headers: Vec<String> = table["columnDefinitions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["priority"] == 0)
                .map(|c| c["name"].as_str().unwrap().to_uppercase())
                .collect();
            let expected: &[&str] = match resource {
                Resource::ConfigMap => &["NAME", "DATA", "AGE"],
                Resource::Lease => &["NAME", "HOLDER", "AGE"],
                Resource::Namespace => &["NAME", "STATUS", "AGE"],
                Resource::Event | Resource::EventsK8sIo => {
                    &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
                }
                Resource::Deployment => &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                Resource::Pod => &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                Resource::ReplicaSet => &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            };
            assert_eq!(headers, expected);
        }
    }

    #[test]
    fn selectors() {
        assert_eq!(selector_string(None), "");
        assert_eq!(selector_string(Some(&Value::Null)), "");
        assert_eq!(selector_string(Some(&json!({}))), "");
        assert_eq!(
            selector_string(Some(&json!({"matchExpressions": [
                {"key": "b", "operator": "Exists"},
                {"key": "a", "operator": "DoesNotExist"},
                {"key": "c", "operator": "NotIn", "values": ["y", "x"]},
            ]}))),
            "!a,b,c notin (x,y)"
        );
        assert_eq!(
            selector_string(Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})
            )),
            "<invalid>"
        );
        assert_eq!(
            selector_string(Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
            )),
            "<invalid>"
        );
    }

    #[test]
    fn watch_tables_carry_columns_only_first() {
        let cm = configmap("demo", json!({"a": "1"}), None);
        let first = watch_table(
            Resource::ConfigMap,
            &cm,
            CREATED,
            IncludeObject::Metadata,
            true,
        );
        assert_eq!(first["metadata"]["resourceVersion"], "7");
        assert_eq!(
            first["columnDefinitions"],
            column_definitions(Resource::ConfigMap)
        );
        assert_eq!(first["rows"].as_array().unwrap().len(), 1);
        let later = watch_table(
            Resource::ConfigMap,
            &cm,
            CREATED,
            IncludeObject::Metadata,
            false,
        );
        assert_eq!(later["columnDefinitions"], Value::Null);
        assert_eq!(later["rows"], first["rows"]);
    }

    #[test]
    fn human_durations_match_kubernetes() {
        let cases: &[(i64, &str)] = &[
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 3599, "47h"),
            (48 * 3600, "2d"),
            (2 * 86_400 + 3 * 3600, "2d3h"),
            (8 * 86_400 - 1, "7d23h"),
            (8 * 86_400, "8d"),
            (729 * 86_400, "729d"),
            (730 * 86_400, "2y"),
            (760 * 86_400, "2y30d"),
            (8 * 365 * 86_400 - 1, "7y364d"),
            (8 * 365 * 86_400, "8y"),
            (20 * 365 * 86_400, "20y"),
        ];
        for &(seconds, expected) in cases {
            assert_eq!(human_age(seconds), expected, "{seconds}s");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_utc("2026-11-21T07:43:00Z"), Some(CREATED));
        assert_eq!(parse_rfc3339_utc("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339_utc("1969-12-31T23:59:59Z"), Some(-1));
        for bad in [
            "",
            "2026-11-21T07:43:00",
            "2026-11-21T07:43:00.5Z",
            "2026-11-21T07:43:00+00:00",
            "2026-11-21 07:43:00Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T07:60:00Z",
            "2026-11-21T07:43:60Z",
            "+026-11-21T07:43:00Z",
            "2026-11-2XT07:43:00Z",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad}");
        }
    }
}
