//! Just enough of the Kubernetes protobuf encoding to read the bodies kubectl sends as protobuf:
//! `kubectl create configmap`, `kubectl create namespace` and `kubectl create deployment` POST
//! `application/vnd.kubernetes.protobuf` and do not fall back to JSON.
//!
//! The envelope is the magic `k8s\0` and a `runtime.Unknown` {1: TypeMeta {1: apiVersion, 2: kind},
//! 2: raw object bytes}. Only ConfigMap, Namespace and Deployment objects are decoded (the kinds
//! kubectl's imperative `create` sends for what this server serves); anything else is refused with
//! a message that says to send JSON.
//!
//! A Deployment is decoded by a table of its messages' fields ([`Schema`]), field numbers as in
//! `k8s.io/api`'s `generated.proto`. Go's encoder writes every non-pointer field, zero or not, so
//! a zero value (an empty string, a 0, an empty message) stands for an absent field, except in the
//! pointer fields (`replicas`), where it is a value. A field the table does not know, holding
//! anything but a zero value, is refused (the body says to send JSON): nothing sent is dropped.

use serde_json::{Map, Value, json};

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Nesting is shallow in the messages decoded here; a bound keeps hostile input from recursing.
const FIELDS_MAX: usize = 100_000;

/// Decode a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or("a protobuf body must start with the magic k8s\\0")?;
    let mut type_meta = None;
    let mut raw = None;
    for (number, field) in fields(envelope)? {
        match (number, field) {
            (1, Field::Bytes(b)) => type_meta = Some(b),
            (2, Field::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    let (mut api_version, mut kind) = (String::new(), String::new());
    for (number, field) in fields(type_meta.unwrap_or_default())? {
        match (number, field) {
            (1, Field::Bytes(b)) => api_version = text(b)?,
            (2, Field::Bytes(b)) => kind = text(b)?,
            _ => {}
        }
    }
    let raw = raw.unwrap_or_default();
    let mut object = json!({ "apiVersion": api_version, "kind": kind });
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "ConfigMap") => {
            let (mut data, mut binary) = (Map::new(), Map::new());
            for (number, field) in fields(raw)? {
                match (number, field) {
                    (1, Field::Bytes(b)) => object["metadata"] = object_meta(b)?,
                    (2, Field::Bytes(b)) => {
                        let (k, v) = entry(b)?;
                        data.insert(text(k)?, Value::String(text(v)?));
                    }
                    (3, Field::Bytes(b)) => {
                        let (k, v) = entry(b)?;
                        binary.insert(text(k)?, Value::String(base64(v)));
                    }
                    (4, Field::Varint(v)) => object["immutable"] = json!(v != 0),
                    _ => {}
                }
            }
            if !data.is_empty() {
                object["data"] = Value::Object(data);
            }
            if !binary.is_empty() {
                object["binaryData"] = Value::Object(binary);
            }
        }
        ("apps/v1", "Deployment") => {
            let decoded = message(raw, &DEPLOYMENT, "Deployment")?;
            for (key, value) in decoded {
                object[key] = value;
            }
        }
        ("v1", "Namespace") => {
            for (number, field) in fields(raw)? {
                if let (1, Field::Bytes(b)) = (number, field) {
                    object["metadata"] = object_meta(b)?;
                }
            }
        }
        _ => {
            return Err(format!(
                "this server decodes protobuf only for v1 ConfigMap and Namespace and apps/v1 Deployment, not {api_version} {kind}; send application/json"
            ));
        }
    }
    Ok(object)
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated protobuf varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("protobuf varint longer than 64 bits".into())
}

fn fields(bytes: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if out.len() >= FIELDS_MAX {
            return Err("too many protobuf fields".into());
        }
        let key = varint(bytes, &mut at)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(bytes, &mut at)?),
            2 => {
                let length = usize::try_from(varint(bytes, &mut at)?)
                    .map_err(|_| "protobuf length overflows")?;
                let end = at
                    .checked_add(length)
                    .filter(|end| *end <= bytes.len())
                    .ok_or("truncated protobuf field")?;
                let field = Field::Bytes(&bytes[at..end]);
                at = end;
                field
            }
            1 => {
                at = at
                    .checked_add(8)
                    .filter(|a| *a <= bytes.len())
                    .ok_or("truncated protobuf field")?;
                Field::Fixed
            }
            5 => {
                at = at
                    .checked_add(4)
                    .filter(|a| *a <= bytes.len())
                    .ok_or("truncated protobuf field")?;
                Field::Fixed
            }
            other => return Err(format!("unsupported protobuf wire type {other}")),
        };
        out.push((key >> 3, field));
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a protobuf string is not UTF-8".to_string())
}

/// A map entry {1: key, 2: value}.
fn entry(bytes: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => key = b,
            (2, Field::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((key, value))
}

/// ObjectMeta: 1 name, 2 generateName, 3 namespace, 11 labels, 12 annotations (the fields kubectl
/// fills in for an imperative create; the rest are the server's).
fn object_meta(bytes: &[u8]) -> Result<Value, String> {
    let mut metadata = Map::new();
    let (mut labels, mut annotations) = (Map::new(), Map::new());
    for (number, field) in fields(bytes)? {
        let Field::Bytes(b) = field else { continue };
        match number {
            1 if !b.is_empty() => {
                metadata.insert("name".into(), Value::String(text(b)?));
            }
            2 if !b.is_empty() => {
                metadata.insert("generateName".into(), Value::String(text(b)?));
            }
            3 if !b.is_empty() => {
                metadata.insert("namespace".into(), Value::String(text(b)?));
            }
            11 => {
                let (k, v) = entry(b)?;
                labels.insert(text(k)?, Value::String(text(v)?));
            }
            12 => {
                let (k, v) = entry(b)?;
                annotations.insert(text(k)?, Value::String(text(v)?));
            }
            _ => {}
        }
    }
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    Ok(Value::Object(metadata))
}

/// How a field is carried.
#[derive(Clone, Copy)]
enum Kind {
    /// A string; empty is absent.
    Str,
    /// An integer; 0 is absent.
    Int,
    /// An integer behind a pointer: present, 0 included, whenever encoded.
    OptInt,
    /// A bool; false is absent.
    Bool,
    /// A repeated string.
    Strings,
    /// A `map<string, string>`.
    StrMap,
    /// A `map<string, Quantity>` (resource limits and requests): the quantity's string.
    Quantities,
    /// A message.
    Msg(&'static Schema),
    /// A repeated message.
    Msgs(&'static Schema),
    /// An `IntOrString` {1: type, 2: intVal, 3: strVal}.
    IntOrString,
    /// Read past: a create's `status`, which the server sets.
    Ignored,
}

/// A message's fields: (number, JSON name, kind).
type Schema = [(u64, &'static str, Kind)];

use Kind::{Bool, Ignored, Int, IntOrString, Msg, Msgs, OptInt, Quantities, Str, StrMap, Strings};

static DEPLOYMENT: [(u64, &str, Kind); 3] = [
    (1, "metadata", Msg(&META)),
    (2, "spec", Msg(&DEPLOYMENT_SPEC)),
    (3, "status", Ignored),
];
static META: [(u64, &str, Kind); 5] = [
    (1, "name", Str),
    (2, "generateName", Str),
    (3, "namespace", Str),
    (11, "labels", StrMap),
    (12, "annotations", StrMap),
];
static DEPLOYMENT_SPEC: [(u64, &str, Kind); 8] = [
    (1, "replicas", OptInt),
    (2, "selector", Msg(&SELECTOR)),
    (3, "template", Msg(&TEMPLATE)),
    (4, "strategy", Msg(&STRATEGY)),
    (5, "minReadySeconds", Int),
    (6, "revisionHistoryLimit", OptInt),
    (7, "paused", Bool),
    (9, "progressDeadlineSeconds", OptInt),
];
static SELECTOR: [(u64, &str, Kind); 2] = [
    (1, "matchLabels", StrMap),
    (2, "matchExpressions", Msgs(&REQUIREMENT)),
];
static REQUIREMENT: [(u64, &str, Kind); 3] = [
    (1, "key", Str),
    (2, "operator", Str),
    (3, "values", Strings),
];
static STRATEGY: [(u64, &str, Kind); 2] = [(1, "type", Str), (2, "rollingUpdate", Msg(&ROLLING))];
static ROLLING: [(u64, &str, Kind); 2] = [
    (1, "maxUnavailable", IntOrString),
    (2, "maxSurge", IntOrString),
];
static TEMPLATE: [(u64, &str, Kind); 2] =
    [(1, "metadata", Msg(&META)), (2, "spec", Msg(&POD_SPEC))];
static POD_SPEC: [(u64, &str, Kind); 10] = [
    (2, "containers", Msgs(&CONTAINER)),
    (3, "restartPolicy", Str),
    (4, "terminationGracePeriodSeconds", OptInt),
    (6, "dnsPolicy", Str),
    (7, "nodeSelector", StrMap),
    (8, "serviceAccountName", Str),
    (9, "serviceAccount", Str),
    (10, "nodeName", Str),
    (16, "hostname", Str),
    (19, "schedulerName", Str),
];
static CONTAINER: [(u64, &str, Kind); 10] = [
    (1, "name", Str),
    (2, "image", Str),
    (3, "command", Strings),
    (4, "args", Strings),
    (5, "workingDir", Str),
    (6, "ports", Msgs(&PORT)),
    (7, "env", Msgs(&ENV)),
    (8, "resources", Msg(&RESOURCES)),
    (13, "terminationMessagePath", Str),
    (14, "imagePullPolicy", Str),
];
static PORT: [(u64, &str, Kind); 5] = [
    (1, "name", Str),
    (2, "hostPort", Int),
    (3, "containerPort", Int),
    (4, "protocol", Str),
    (5, "hostIP", Str),
];
static ENV: [(u64, &str, Kind); 2] = [(1, "name", Str), (2, "value", Str)];
static RESOURCES: [(u64, &str, Kind); 2] = [(1, "limits", Quantities), (2, "requests", Quantities)];

/// Decode one message by its schema; `name` is for errors.
fn message(
    bytes: &[u8],
    schema: &'static Schema,
    name: &str,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (number, field) in fields(bytes)? {
        let Some(&(_, key, kind)) = schema.iter().find(|(n, _, _)| *n == number) else {
            let zero = match field {
                Field::Varint(v) => v == 0,
                Field::Bytes(b) => b.is_empty(),
                Field::Fixed => false,
            };
            if zero {
                continue;
            }
            return Err(format!(
                "field {number} of a {name} is not decoded by this server; send application/json (kubectl apply -f FILE)"
            ));
        };
        let at = |what: &str| format!("field {number} ({key}) of a {name} is not {what}");
        match (kind, field) {
            (Str, Field::Bytes(b)) => {
                if !b.is_empty() {
                    out.insert(key.into(), Value::String(text(b)?));
                }
            }
            (Int, Field::Varint(v)) => {
                if v != 0 {
                    out.insert(key.into(), json!(v as i64));
                }
            }
            (OptInt, Field::Varint(v)) => {
                out.insert(key.into(), json!(v as i64));
            }
            (Bool, Field::Varint(v)) => {
                if v != 0 {
                    out.insert(key.into(), json!(true));
                }
            }
            (Strings, Field::Bytes(b)) => {
                let list = out.entry(key).or_insert_with(|| json!([]));
                list.as_array_mut()
                    .expect("a list")
                    .push(Value::String(text(b)?));
            }
            (StrMap, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                let map = out.entry(key).or_insert_with(|| json!({}));
                map[text(k)?] = Value::String(text(v)?);
            }
            (Quantities, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                let mut quantity = String::new();
                for (n, f) in fields(v)? {
                    if let (1, Field::Bytes(s)) = (n, f) {
                        quantity = text(s)?;
                    }
                }
                let map = out.entry(key).or_insert_with(|| json!({}));
                map[text(k)?] = Value::String(quantity);
            }
            (Msg(inner), Field::Bytes(b)) => {
                let decoded = message(b, inner, key)?;
                if !decoded.is_empty() {
                    out.insert(key.into(), Value::Object(decoded));
                }
            }
            (Msgs(inner), Field::Bytes(b)) => {
                let decoded = message(b, inner, key)?;
                let list = out.entry(key).or_insert_with(|| json!([]));
                list.as_array_mut()
                    .expect("a list")
                    .push(Value::Object(decoded));
            }
            (IntOrString, Field::Bytes(b)) => {
                let (mut kind, mut int, mut string) = (0, 0, String::new());
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Varint(v)) => kind = v,
                        (2, Field::Varint(v)) => int = v as i64,
                        (3, Field::Bytes(s)) => string = text(s)?,
                        _ => {}
                    }
                }
                let value = if kind == 1 {
                    Value::String(string)
                } else {
                    json!(int)
                };
                out.insert(key.into(), value);
            }
            (Ignored, _) => {}
            _ => return Err(at("of the wire type its schema says")),
        }
    }
    Ok(out)
}

/// Standard base64 with padding, as JSON carries `binaryData`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    fn entry_bytes(key: &str, value: &[u8]) -> Vec<u8> {
        [field(1, key.as_bytes()), field(2, value)].concat()
    }

    #[test]
    fn decodes_what_kubectl_create_configmap_sends() {
        let meta = [
            field(1, b"demo"),
            field(3, b""),
            field(11, &entry_bytes("app", b"x")),
        ]
        .concat();
        let configmap = [
            field(1, &meta),
            field(2, &entry_bytes("a", b"b")),
            field(3, &entry_bytes("bin", b"\x00\x01")),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [
            b"k8s\0".to_vec(),
            field(1, &type_meta),
            field(2, &configmap),
            field(3, b""),
            field(4, b""),
        ]
        .concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo", "labels": {"app": "x"}},
                   "data": {"a": "b"}, "binaryData": {"bin": "AAE="}})
        );
    }

    #[test]
    fn decodes_what_kubectl_create_deployment_sends() {
        // Captured from kubectl 1.32: `kubectl create deployment crash --image=crash:1
        // --port=8080 --replicas=2 -- sh -c 'exit 3'`.
        let body = include_bytes!("testdata/kubectl-create-deployment.pb");
        assert_eq!(
            decode(body).unwrap(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "crash", "labels": {"app": "crash"}},
                   "spec": {"replicas": 2,
                            "selector": {"matchLabels": {"app": "crash"}},
                            "template": {"metadata": {"labels": {"app": "crash"}},
                                         "spec": {"containers": [{"name": "crash", "image": "crash:1",
                                                                  "command": ["sh", "-c", "exit 3"],
                                                                  "ports": [{"containerPort": 8080}]}]}}}})
        );
    }

    #[test]
    fn a_deployment_field_it_does_not_know_is_refused_not_dropped() {
        let container = [field(1, b"c"), field(9, b"\x0a\x01v")].concat();
        let pod_spec = field(2, &container);
        let template = field(2, &pod_spec);
        let spec = field(3, &template);
        let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let body = [
            b"k8s\0".to_vec(),
            field(1, &type_meta),
            field(2, &field(2, &spec)),
        ]
        .concat();
        let error = decode(&body).unwrap_err();
        assert!(error.contains("field 9 of a containers"), "{error}");
        assert!(error.contains("send application/json"), "{error}");
    }

    #[test]
    fn refuses_other_kinds_and_garbage_with_a_reason() {
        let type_meta = [field(1, b"apps/v1"), field(2, b"ReplicaSet")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta)].concat();
        assert!(decode(&body).unwrap_err().contains("send application/json"));
        assert!(decode(b"nope").is_err());
        assert!(decode(b"k8s\0\x0a\xff").is_err());
        assert!(decode(b"k8s\0\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
