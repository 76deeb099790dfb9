//! Just enough of the Kubernetes protobuf encoding to read the bodies kubectl sends as protobuf:
//! `kubectl create configmap` and `kubectl create namespace` POST
//! `application/vnd.kubernetes.protobuf` and do not fall back to JSON.
//!
//! The envelope is the magic `k8s\0` and a `runtime.Unknown` {1: TypeMeta {1: apiVersion, 2: kind},
//! 2: raw object bytes}. Only ConfigMap and Namespace objects are decoded (the kinds kubectl's
//! imperative `create` sends for what this server serves); anything else is refused with a message
//! that says to send JSON.

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
        ("v1", "Namespace") => {
            for (number, field) in fields(raw)? {
                if let (1, Field::Bytes(b)) = (number, field) {
                    object["metadata"] = object_meta(b)?;
                }
            }
        }
        _ => {
            return Err(format!(
                "this server decodes protobuf only for v1 ConfigMap and Namespace, not {api_version} {kind}; send application/json"
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
    fn refuses_other_kinds_and_garbage_with_a_reason() {
        let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
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
