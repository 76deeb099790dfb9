//! Object validation as kube-apiserver does it: field errors that the server turns into a 422 `Invalid` Status.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// `CauseType` of a malformed value (`field.ErrorTypeInvalid`).
pub const FIELD_VALUE_INVALID: &str = "FieldValueInvalid";
/// `CauseType` of a value that must be given and was not (`field.ErrorTypeRequired`).
pub const FIELD_VALUE_REQUIRED: &str = "FieldValueRequired";
/// `CauseType` of a value over its size limit (`field.ErrorTypeTooLong`).
pub const FIELD_VALUE_TOO_LONG: &str = "FieldValueTooLong";
/// `CauseType` of a value that must be unique and is not (`field.ErrorTypeDuplicate`).
pub const FIELD_VALUE_DUPLICATE: &str = "FieldValueDuplicate";
/// `CauseType` of a well-formed value that is not allowed here (`field.ErrorTypeForbidden`).
pub const FIELD_VALUE_FORBIDDEN: &str = "FieldValueForbidden";
/// `FieldValueNotSupported`: a value outside an enumerated set.
pub const FIELD_VALUE_NOT_SUPPORTED: &str = "FieldValueNotSupported";

/// Longest object name and longest ConfigMap key, in bytes (`DNS1123SubdomainMaxLength`).
pub const MAX_NAME_BYTES: usize = 253;
/// Longest Namespace name, in bytes (`DNS1123LabelMaxLength`).
pub const MAX_NAMESPACE_NAME_BYTES: usize = 63;
/// Longest label value and longest name part of a label or annotation key, in bytes.
pub const MAX_LABEL_BYTES: usize = 63;
/// Most bytes the annotations of one object may hold, keys and values together
/// (`TotalAnnotationSizeLimitB`).
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;
/// Most bytes the values of one ConfigMap may hold, `binaryData` counted decoded
/// (`core.MaxSecretSize`).
pub const MAX_CONFIGMAP_BYTES: usize = 1024 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_ERR: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

/// Units in "must be no more than N ..." messages. Kubernetes words the same check two ways:
/// `k8s.io/apimachinery/pkg/util/validation` (object names, ConfigMap keys) says "characters",
/// the newer `pkg/api/validate/content` (label keys and values) says "bytes"; both count bytes.
const CHARACTERS: &str = "characters";
const BYTES: &str = "bytes";

/// Errors of the helpers in this module that are not field errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Base64 text is malformed at this byte offset; worded as Go's `base64.CorruptInputError`,
    /// which is what the real server reports for bad `binaryData`.
    #[error("illegal base64 data at input byte {0}")]
    IllegalBase64(usize),
}

/// One cause of a 422 `Invalid` Status, as `field.Error` carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the offending field as `field.Path` renders it: `metadata.name`, `data[a b]`, or
    /// `[]` for the whole object.
    pub field: String,
    /// The Kubernetes `CauseType`, one of the `FIELD_VALUE_*` constants.
    pub reason: &'static str,
    /// The cause without its field, as `field.Error.ErrorBody` renders it
    /// (`Invalid value: "x": ...`); this is the cause's `message` in the Status.
    pub message: String,
}

impl FieldError {
    /// `field: message`, the form `field.Error.Error` gives and the Status message joins.
    pub fn to_string_with_field(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// The value an `Invalid` error shows, rendered as `field.Error.ErrorBody` renders it.
enum Bad<'a> {
    /// Shown Go-quoted.
    Str(&'a str),
    /// Shown as a number.
    Int(i64),
    /// Not shown: too large to echo, or not a value at all (a JSON type mismatch).
    Omitted,
}

fn invalid(field: impl Into<String>, bad: Bad<'_>, detail: &str) -> FieldError {
    let shown = match bad {
        Bad::Str(s) => format!("Invalid value: {}", go_quote(s)),
        Bad::Int(n) => format!("Invalid value: {n}"),
        Bad::Omitted => "Invalid value".to_string(),
    };
    FieldError {
        field: field.into(),
        reason: FIELD_VALUE_INVALID,
        message: format!("{shown}: {detail}"),
    }
}

fn required(field: impl Into<String>, detail: &str) -> FieldError {
    FieldError {
        field: field.into(),
        reason: FIELD_VALUE_REQUIRED,
        // `field.Error.ErrorBody`: the detail, if any, after the type.
        message: if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        },
    }
}

/// Worded as `field.TooLong` has since Kubernetes 1.32 (before: "must have at most N bytes").
fn too_long(field: impl Into<String>, max_bytes: usize) -> FieldError {
    FieldError {
        field: field.into(),
        reason: FIELD_VALUE_TOO_LONG,
        message: format!("Too long: may not be more than {max_bytes} bytes"),
    }
}

/// The Status message of a 422: `ConfigMap "x" is invalid: metadata.name: Invalid value: ...`.
///
/// `kind` is printed as given; the real server prints the qualified kind
/// (`Lease.coordination.k8s.io`) for kinds outside the core group. Repeated causes are printed
/// once and several causes are bracketed (`[err1, err2]`), as `utilerrors.Aggregate` does.
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let rendered: Vec<String> = errors
        .iter()
        .map(FieldError::to_string_with_field)
        .collect();
    if rendered.is_empty() {
        format!("{kind} {} is invalid", go_quote(name))
    } else {
        format!(
            "{kind} {} is invalid: {}",
            go_quote(name),
            aggregate_messages(&rendered)
        )
    }
}

/// Join messages as `utilerrors.Aggregate.Error` does: duplicates dropped, one message bare,
/// several bracketed and comma-separated.
pub(crate) fn aggregate_messages(messages: &[String]) -> String {
    let mut seen = BTreeSet::new();
    let unique: Vec<&str> = messages
        .iter()
        .map(String::as_str)
        .filter(|m| seen.insert(*m))
        .collect();
    match unique.as_slice() {
        [one] => (*one).to_string(),
        _ => format!("[{}]", unique.join(", ")),
    }
}

/// Quote a string as Go's `strconv.Quote` (`%q`) does, which is how Kubernetes shows bad values.
///
/// Go leaves printable runes as they are; which non-ASCII runes count as printable is
/// approximated here (controls, separators other than U+0020, format characters and private use
/// are escaped; unassigned code points are left as they are).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    let code = u32::from(c);
    if code < 0x80 {
        return (0x20..0x7f).contains(&code);
    }
    // Unicode general category Cf (format) and Co (private use): not printable in Go.
    const UNPRINTABLE: &[(u32, u32)] = &[
        (0x00ad, 0x00ad),
        (0x0600, 0x0605),
        (0x061c, 0x061c),
        (0x06dd, 0x06dd),
        (0x070f, 0x070f),
        (0x180e, 0x180e),
        (0x200b, 0x200f),
        (0x202a, 0x202e),
        (0x2060, 0x206f),
        (0xe000, 0xf8ff),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0x110bd, 0x110bd),
        (0x1d173, 0x1d17a),
        (0xe0001, 0xe007f),
        (0xf0000, 0x10ffff),
    ];
    !(c.is_control()
        || c.is_whitespace()
        || UNPRINTABLE
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code)))
}

/// `validation.RegexError`: the message, examples, and the regex, in Go's exact punctuation.
fn regex_error(msg: &str, regex: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{regex}')");
    }
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{regex}')",
        examples.join(" or ")
    )
}

fn max_len_error(max: usize, unit: &str) -> String {
    format!("must be no more than {max} {unit}")
}

/// Matches `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_label(s: &str) -> bool {
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            edge(first) && edge(last) && bytes.iter().all(|b| edge(b) || *b == b'-')
        }
        _ => false,
    }
}

/// Matches the DNS-1123 subdomain regex: dot-separated non-empty DNS-1123 labels.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns1123_label)
}

/// Matches `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn dns1123_subdomain_errors(value: &str, unit: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > MAX_NAME_BYTES {
        errs.push(max_len_error(MAX_NAME_BYTES, unit));
    }
    if !is_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > MAX_NAMESPACE_NAME_BYTES {
        errs.push(max_len_error(MAX_NAMESPACE_NAME_BYTES, CHARACTERS));
    }
    if !is_dns1123_label(value) {
        // Length was already reported, so a valid subdomain that is not a label has dots.
        if is_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `content.IsLabelKey` (a.k.a. `IsQualifiedName`): an optional DNS-1123 subdomain prefix and
/// `/`, then a name of at most 63 bytes.
pub(crate) fn label_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let name = match key.split_once('/') {
        None => key,
        Some((prefix, name)) if !name.contains('/') => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix, BYTES)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            name
        }
        Some(_) => {
            return vec![format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    LABEL_KEY_ERR,
                    LABEL_KEY_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > MAX_LABEL_BYTES {
        errs.push(format!(
            "name part {}",
            max_len_error(MAX_LABEL_BYTES, BYTES)
        ));
    }
    if !is_label_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `content.IsLabelValue`: empty, or at most 63 bytes of the label-name charset.
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > MAX_LABEL_BYTES {
        errs.push(max_len_error(MAX_LABEL_BYTES, BYTES));
    }
    if !value.is_empty() && !is_label_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `validation.IsConfigMapKey`.
fn config_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > MAX_NAME_BYTES {
        errs.push(max_len_error(MAX_NAME_BYTES, CHARACTERS));
    }
    let charset_ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !charset_ok {
        errs.push(regex_error(
            CONFIG_KEY_ERR,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    // Keys become file names in mounted volumes, hence no `.`/`..` path tricks.
    if key == "." {
        errs.push("must not be '.'".to_string());
    } else if key == ".." {
        errs.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// Validate `metadata.name` of any kind served except Namespace: required, then a DNS-1123
/// subdomain of at most 253 bytes (`NameIsDNSSubdomain`).
///
/// `namespaced_kind` does not change the rule: ConfigMaps, Leases and Deployments all use
/// subdomain names, and the one cluster-scoped kind served, Namespace, has
/// [`validate_namespace_name`].
pub fn validate_name(name: &str, namespaced_kind: bool) -> Vec<FieldError> {
    let _ = namespaced_kind;
    validate_name_with(name, |n| dns1123_subdomain_errors(n, CHARACTERS))
}

/// Validate a Namespace's `metadata.name`: required, then a DNS-1123 label of at most 63 bytes
/// (`ValidateNamespaceName`).
pub fn validate_namespace_name(name: &str) -> Vec<FieldError> {
    validate_name_with(name, dns1123_label_errors)
}

fn validate_name_with(name: &str, rule: impl Fn(&str) -> Vec<String>) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![required(
            "metadata.name",
            "name or generateName is required",
        )];
    }
    rule(name)
        .iter()
        .map(|m| invalid("metadata.name", Bad::Str(name), m))
        .collect()
}

/// Validate `metadata.labels` and `metadata.annotations` of an object's `metadata`, as
/// `ValidateObjectMeta` does: label keys are qualified names and values at most 63 bytes of
/// `[-A-Za-z0-9_.]` starting and ending alphanumeric; annotation keys are qualified names
/// (checked lowercased) and all annotations together at most 256 KiB.
///
/// Errors come in key order. A label or annotation value that is not a string (or a map that is
/// not an object) is reported as `FieldValueInvalid`; the real server instead fails to decode
/// the body and answers 400 BadRequest.
pub fn validate_labels(metadata: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let labels = string_map(
        metadata,
        "labels",
        "metadata.labels",
        "ObjectMeta.metadata.labels",
        &mut errors,
    );
    for (key, value) in &labels {
        errors.extend(
            label_key_errors(key)
                .iter()
                .map(|m| invalid("metadata.labels", Bad::Str(key), m)),
        );
        errors.extend(
            label_value_errors(value)
                .iter()
                .map(|m| invalid("metadata.labels", Bad::Str(value), m)),
        );
    }
    let annotations = string_map(
        metadata,
        "annotations",
        "metadata.annotations",
        "ObjectMeta.metadata.annotations",
        &mut errors,
    );
    let mut total = 0usize;
    for (key, value) in &annotations {
        // Annotation keys are case-insensitive qualified names, so the check runs lowercased.
        errors.extend(
            label_key_errors(&key.to_lowercase())
                .iter()
                .map(|m| invalid("metadata.annotations", Bad::Str(key), m)),
        );
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > MAX_ANNOTATIONS_BYTES {
        errors.push(too_long("metadata.annotations", MAX_ANNOTATIONS_BYTES));
    }
    errors
}

/// Validate a ConfigMap's `data` and `binaryData` as `ValidateConfigMap` does (metadata is
/// [`validate_name`] and [`validate_labels`]).
///
/// Keys must be config keys (`[-._a-zA-Z0-9]+`, at most 253 bytes, not `.`/`..`/`..*`); a key in
/// both maps is invalid on `data[key]`; the values together, `binaryData` counted decoded and
/// keys not counted, may hold at most 1 MiB, else `FieldValueTooLong` on `[]`.
///
/// A `data` value that is not a string, a `binaryData` value that is not valid base64, or a map
/// that is not an object is reported as `FieldValueInvalid`; the real server instead fails to
/// decode the body and answers 400 BadRequest. JSON `null` values decode as empty, as in Go.
pub fn validate_configmap(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let data = string_map(object, "data", "data", "ConfigMap.data", &mut errors);
    let binary = binary_map(object, &mut errors);
    let mut total = 0usize;
    for (key, value) in &data {
        let field = format!("data[{key}]");
        errors.extend(
            config_key_errors(key)
                .iter()
                .map(|m| invalid(field.as_str(), Bad::Str(key), m)),
        );
        if binary.contains_key(key) {
            errors.push(invalid(
                field.as_str(),
                Bad::Str(key),
                "duplicate of key present in binaryData",
            ));
        }
        total = total.saturating_add(value.len());
    }
    for (key, decoded) in binary {
        let field = format!("binaryData[{key}]");
        errors.extend(
            config_key_errors(key)
                .iter()
                .map(|m| invalid(field.as_str(), Bad::Str(key), m)),
        );
        match decoded {
            Ok(len) => total = total.saturating_add(len),
            Err(error) => errors.push(error),
        }
    }
    if total > MAX_CONFIGMAP_BYTES {
        // `field.NewPath("")` renders as `[]`: the error is about the whole object.
        errors.push(too_long("[]", MAX_CONFIGMAP_BYTES));
    }
    errors
}

/// The parts of a pod spec the local cluster relies on (`spec` is its path, as `spec` or
/// `spec.template.spec`): at least one container, each with a unique name and an image, and a
/// restart policy the kubelet knows.
pub fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let containers = spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if containers.is_empty() {
        errors.push(required(format!("{path}.containers"), ""));
    }
    let mut names = Vec::new();
    for (i, container) in containers.iter().enumerate() {
        let name = container["name"].as_str().unwrap_or("");
        if name.is_empty() {
            errors.push(required(format!("{path}.containers[{i}].name"), ""));
        } else if names.contains(&name) {
            errors.push(FieldError {
                field: format!("{path}.containers[{i}].name"),
                reason: FIELD_VALUE_DUPLICATE,
                message: format!("Duplicate value: {}", go_quote(name)),
            });
        }
        names.push(name);
        if container["image"].as_str().unwrap_or("").is_empty() {
            errors.push(required(format!("{path}.containers[{i}].image"), ""));
        }
    }
    let policy = spec["restartPolicy"].as_str().unwrap_or("Always");
    if !matches!(policy, "Always" | "OnFailure" | "Never") {
        errors.push(FieldError {
            field: format!("{path}.restartPolicy"),
            reason: FIELD_VALUE_NOT_SUPPORTED,
            message: format!(
                "Unsupported value: {}: supported values: \"Always\", \"OnFailure\", \"Never\"",
                go_quote(policy)
            ),
        });
    }
    if let Some(grace) = spec["terminationGracePeriodSeconds"]
        .as_i64()
        .filter(|g| *g < 0)
    {
        errors.push(invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            Bad::Int(grace),
            "must be greater than or equal to 0",
        ));
    }
    errors
}

/// A ReplicaSet or Deployment: a selector, a replica count that is not negative, and a pod
/// template whose restart policy is `Always` (whether the selector matches the template's
/// labels is the store's check, which has the selector parser).
pub fn validate_workload(object: &Value, selector: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = &object["spec"];
    if selector.is_empty() {
        errors.push(required("spec.selector", ""));
    }
    if let Some(replicas) = spec["replicas"].as_i64().filter(|r| *r < 0) {
        errors.push(invalid(
            "spec.replicas",
            Bad::Int(replicas),
            "must be greater than or equal to 0",
        ));
    }
    errors.extend(validate_pod_spec(
        &spec["template"]["spec"],
        "spec.template.spec",
    ));
    let policy = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always");
    if policy != "Always" {
        errors.push(FieldError {
            field: "spec.template.spec.restartPolicy".into(),
            reason: FIELD_VALUE_NOT_SUPPORTED,
            message: format!(
                "Unsupported value: {}: supported values: \"Always\"",
                go_quote(policy)
            ),
        });
    }
    errors
}

/// Validate a Lease's `spec` as `ValidateLeaseSpec` does: `leaseDurationSeconds` > 0 and
/// `leaseTransitions` >= 0 when present; `holderIdentity` is any string.
///
/// `strategy` and `preferredHolder` are not checked: they belong to the CoordinatedLeaderElection
/// feature gate, off by default, with which the real server drops them instead. A field of the
/// wrong JSON type (or an integer outside int32) is reported as `FieldValueInvalid`; the real
/// server instead fails to decode the body and answers 400 BadRequest.
pub fn validate_lease(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = match object.get("spec") {
        None | Some(Value::Null) => return errors,
        Some(Value::Object(spec)) => spec,
        Some(other) => {
            errors.push(type_mismatch("spec", "Lease.spec", "v1.LeaseSpec", other));
            return errors;
        }
    };
    let duration = int32_field(spec, "leaseDurationSeconds", &mut errors);
    if let Some(seconds) = duration.filter(|s| *s <= 0) {
        errors.push(invalid(
            "spec.leaseDurationSeconds",
            Bad::Int(seconds.into()),
            "must be greater than 0",
        ));
    }
    let transitions = int32_field(spec, "leaseTransitions", &mut errors);
    if let Some(count) = transitions.filter(|c| *c < 0) {
        errors.push(invalid(
            "spec.leaseTransitions",
            Bad::Int(count.into()),
            "must be greater than or equal to 0",
        ));
    }
    match spec.get("holderIdentity") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(other) => errors.push(type_mismatch(
            "spec.holderIdentity",
            "LeaseSpec.spec.holderIdentity",
            "string",
            other,
        )),
    }
    errors
}

/// A `FieldValueInvalid` for a value of the wrong JSON type, worded as Go's
/// `json.UnmarshalTypeError` (which the real server answers with 400 BadRequest).
fn type_mismatch(field: &str, go_field: &str, go_type: &str, value: &Value) -> FieldError {
    let found = match value {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "bool".to_string(),
        // Go names the literal when a number does not fit the integer type it is decoded into.
        Value::Number(n) if go_type.starts_with("int") => format!("number {n}"),
        Value::Number(_) => "number".to_string(),
        Value::String(_) => "string".to_string(),
        Value::Array(_) => "array".to_string(),
        Value::Object(_) => "object".to_string(),
    };
    invalid(
        field,
        Bad::Omitted,
        &format!(
            "json: cannot unmarshal {found} into Go struct field {go_field} of type {go_type}"
        ),
    )
}

/// `parent[name]` as a `map[string]string`, in key order; wrong types are reported and skipped.
fn string_map<'a>(
    parent: &'a Value,
    name: &str,
    field: &str,
    go_field: &str,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<&'a str, &'a str> {
    let mut out = BTreeMap::new();
    match parent.get(name) {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                match value {
                    Value::String(s) => {
                        out.insert(key.as_str(), s.as_str());
                    }
                    Value::Null => {
                        out.insert(key.as_str(), "");
                    }
                    other => errors.push(type_mismatch(
                        &format!("{field}[{key}]"),
                        go_field,
                        "string",
                        other,
                    )),
                }
            }
        }
        Some(other) => errors.push(type_mismatch(field, go_field, "map[string]string", other)),
    }
    out
}

/// `binaryData` keys in order, each with its decoded length or the error its value gives.
fn binary_map<'a>(
    object: &'a Value,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<&'a str, Result<usize, FieldError>> {
    let mut out = BTreeMap::new();
    match object.get("binaryData") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let field = format!("binaryData[{key}]");
                let decoded = match value {
                    Value::Null => Ok(0),
                    Value::String(s) => decode_base64(s)
                        .map(|bytes| bytes.len())
                        .map_err(|e| invalid(field, Bad::Omitted, &e.to_string())),
                    other => Err(type_mismatch(
                        &field,
                        "ConfigMap.binaryData",
                        "[]uint8",
                        other,
                    )),
                };
                out.insert(key.as_str(), decoded);
            }
        }
        Some(other) => errors.push(type_mismatch(
            "binaryData",
            "ConfigMap.binaryData",
            "map[string][]uint8",
            other,
        )),
    }
    out
}

/// `spec[name]` as an optional int32; wrong types and out-of-range numbers are reported.
fn int32_field(spec: &Map<String, Value>, name: &str, errors: &mut Vec<FieldError>) -> Option<i32> {
    let value = spec.get(name)?;
    let field = format!("spec.{name}");
    let go_field = format!("LeaseSpec.spec.{name}");
    match value {
        Value::Null => None,
        Value::Number(n) => match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                errors.push(type_mismatch(&field, &go_field, "int32", value));
                None
            }
        },
        other => {
            errors.push(type_mismatch(&field, &go_field, "int32", other));
            None
        }
    }
}

fn base64_sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn skip_newlines(src: &[u8], mut at: usize) -> usize {
    while src.get(at).is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Decode standard-alphabet base64 with required `=` padding, as Go's `base64.StdEncoding`
/// does when `encoding/json` decodes a `[]byte` (so `binaryData` is accepted or refused exactly
/// as the real server does).
///
/// Like Go, CR and LF anywhere are skipped, and unused bits of the last quantum may be non-zero.
/// The error offset is the one Go reports.
pub fn decode_base64(input: &str) -> Result<Vec<u8>, ValidationError> {
    let src = input.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    // A port of Go's `decodeQuantum`; each pass consumes at least one byte, so `si` bounds it.
    while si < src.len() {
        let mut quantum = [0u8; 4];
        let mut filled = 0;
        let mut trailing_garbage = None;
        let mut complete = 4;
        while filled < 4 {
            let Some(&byte) = src.get(si) else {
                if filled == 0 {
                    return Ok(out);
                }
                // Padding is required, so a short final quantum is corrupt.
                return Err(ValidationError::IllegalBase64(si - filled));
            };
            si += 1;
            if let Some(sextet) = base64_sextet(byte) {
                quantum[filled] = sextet;
                filled += 1;
                continue;
            }
            if byte == b'\n' || byte == b'\r' {
                continue;
            }
            if byte != b'=' || filled < 2 {
                return Err(ValidationError::IllegalBase64(si - 1));
            }
            if filled == 2 {
                // "xx==": the second `=` must follow, newlines aside.
                si = skip_newlines(src, si);
                match src.get(si) {
                    None => return Err(ValidationError::IllegalBase64(src.len())),
                    Some(b'=') => si += 1,
                    Some(_) => return Err(ValidationError::IllegalBase64(si - 1)),
                }
            }
            si = skip_newlines(src, si);
            if si < src.len() {
                trailing_garbage = Some(si);
            }
            complete = filled;
            break;
        }
        let bits = (u32::from(quantum[0]) << 18)
            | (u32::from(quantum[1]) << 12)
            | (u32::from(quantum[2]) << 6)
            | u32::from(quantum[3]);
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..complete]);
        if let Some(offset) = trailing_garbage {
            return Err(ValidationError::IllegalBase64(offset));
        }
    }
    Ok(out)
}

/// Maximum lengths of an events.k8s.io Event's fields (`pkg/apis/core/validation/events.go`).
const REPORTING_INSTANCE_MAX: usize = 128;
const ACTION_MAX: usize = 128;
const REASON_MAX: usize = 128;
const NOTE_MAX: usize = 1024;

/// The strict checks kube-apiserver applies to an Event created through `events.k8s.io/v1` (the
/// core group keeps its lenient ones for old clients), over the stored form: an event time,
/// a type of `Normal` or `Warning`, a reporting controller, instance, action and reason, none of
/// the legacy fields, a series of at least two, and the namespace of the object it regards.
/// Field paths are the stored names, as kube-apiserver's messages give them; `namespace` is
/// the one the request names (the object is checked before the store fills it in).
pub fn validate_events_create(object: &Value, namespace: &str) -> Vec<FieldError> {
    let mut causes = Vec::new();
    let text = |field: &str| object.get(field).and_then(Value::as_str).unwrap_or("");
    let set = |field: &str| object.get(field).is_some_and(|v| !v.is_null());
    if let Some(series) = object.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            causes.push(invalid(
                "series.count",
                Bad::Str(""),
                "should be at least 2",
            ));
        }
        if series
            .get("lastObservedTime")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(required("series.lastObservedTime", ""));
        }
    }
    if text("eventTime").is_empty() {
        causes.push(required("eventTime", ""));
    }
    let event_type = text("type");
    if event_type != "Normal" && event_type != "Warning" {
        causes.push(invalid(
            "type",
            Bad::Str(""),
            &format!("has invalid value: {event_type}"),
        ));
    }
    for legacy in ["firstTimestamp", "lastTimestamp"] {
        if !text(legacy).is_empty() {
            causes.push(invalid(legacy, Bad::Str(""), "needs to be unset"));
        }
    }
    if object.get("count").and_then(Value::as_i64).unwrap_or(0) != 0 {
        causes.push(invalid("count", Bad::Str(""), "needs to be unset"));
    }
    if set("source")
        && (!object["source"]["component"]
            .as_str()
            .unwrap_or("")
            .is_empty()
            || !object["source"]["host"].as_str().unwrap_or("").is_empty())
    {
        causes.push(invalid("source", Bad::Str(""), "needs to be unset"));
    }
    let regarded = object["involvedObject"]["namespace"].as_str().unwrap_or("");
    if regarded.is_empty() && namespace != "default" && namespace != "kube-system" {
        causes.push(invalid(
            "involvedObject.namespace",
            Bad::Str(regarded),
            "does not match event.namespace",
        ));
    }
    // Stored as reportingComponent; kube-apiserver's messages name the Go field.
    let controller = text("reportingComponent");
    if controller.is_empty() {
        causes.push(required("reportingController", ""));
    }
    for message in label_key_errors(controller) {
        causes.push(invalid(
            "reportingController",
            Bad::Str(controller),
            &message,
        ));
    }
    for (field, max) in [
        ("reportingInstance", REPORTING_INSTANCE_MAX),
        ("action", ACTION_MAX),
        ("reason", REASON_MAX),
    ] {
        let value = text(field);
        if value.is_empty() {
            causes.push(required(field, ""));
        } else if value.len() > max {
            causes.push(invalid(
                field,
                Bad::Str(""),
                &format!("can have at most {max} characters"),
            ));
        }
    }
    if text("message").len() > NOTE_MAX {
        causes.push(invalid(
            "message",
            Bad::Str(""),
            &format!("can have at most {NOTE_MAX} characters"),
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors
            .iter()
            .map(FieldError::to_string_with_field)
            .collect()
    }

    #[test]
    fn invalid_name_has_the_real_message() {
        let errors = validate_name("Bad_Name", true);
        assert_eq!(
            errors,
            vec![FieldError {
                field: "metadata.name".into(),
                reason: FIELD_VALUE_INVALID,
                message: format!("Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"),
            }]
        );
        assert_eq!(
            invalid_message("ConfigMap", "Bad_Name", &errors),
            format!(
                "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"
            )
        );
    }

    #[test]
    fn empty_name_is_required() {
        assert_eq!(
            messages(&validate_name("", true)),
            ["metadata.name: Required value: name or generateName is required"]
        );
        assert_eq!(validate_namespace_name("")[0].reason, FIELD_VALUE_REQUIRED);
    }

    #[test]
    fn name_length_is_limited_to_253() {
        assert!(validate_name(&"a".repeat(253), true).is_empty());
        assert_eq!(
            messages(&validate_name(&"a".repeat(254), true)),
            [format!(
                "metadata.name: Invalid value: \"{}\": must be no more than 253 characters",
                "a".repeat(254)
            )]
        );
    }

    #[test]
    fn subdomain_names_follow_the_regex() {
        for good in ["a", "a.b", "a-b.c-d", "0", "x.y.z9"] {
            assert!(validate_name(good, true).is_empty(), "{good}");
        }
        for bad in ["-a", "a-", "a..b", ".a", "a.", "A", "a_b", "a b", "é"] {
            assert_eq!(validate_name(bad, false).len(), 1, "{bad}");
        }
    }

    #[test]
    fn namespace_names_are_labels() {
        assert!(validate_namespace_name("kube-system").is_empty());
        assert_eq!(
            messages(&validate_namespace_name("a.b")),
            ["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
        assert_eq!(
            messages(&validate_namespace_name("Bad")),
            [format!(
                "metadata.name: Invalid value: \"Bad\": {LABEL_MSG}"
            )]
        );
        let long = "a".repeat(64);
        assert_eq!(
            messages(&validate_namespace_name(&long)),
            [format!(
                "metadata.name: Invalid value: \"{long}\": must be no more than 63 characters"
            )]
        );
    }

    #[test]
    fn several_errors_are_bracketed_and_deduplicated() {
        let errors = validate_name(&format!("{}_", "a".repeat(253)), true);
        assert_eq!(errors.len(), 2);
        let message = invalid_message("ConfigMap", "x", &errors);
        assert!(message.starts_with("ConfigMap \"x\" is invalid: [metadata.name: "));
        assert!(message.contains("characters, metadata.name: Invalid value: "));
        assert!(message.ends_with(")]"));
        let twice = [errors[0].clone(), errors[0].clone()];
        assert_eq!(
            invalid_message("ConfigMap", "x", &twice),
            format!(
                "ConfigMap \"x\" is invalid: {}",
                errors[0].to_string_with_field()
            )
        );
        assert_eq!(
            invalid_message("ConfigMap", "x", &[]),
            "ConfigMap \"x\" is invalid"
        );
    }

    #[test]
    fn go_quote_escapes_as_go_does() {
        assert_eq!(go_quote("plain"), "\"plain\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("\n\t\u{0}\u{7f}"), "\"\\n\\t\\x00\\x7f\"");
        assert_eq!(go_quote("é☃"), "\"é☃\"");
        assert_eq!(go_quote("\u{a0}\u{feff}"), "\"\\u00a0\\ufeff\"");
        assert_eq!(go_quote("\u{f0000}"), "\"\\U000f0000\"");
    }

    #[test]
    fn label_keys_and_values_are_checked() {
        let ok = json!({"labels": {"app": "x", "example.com/tier": "", "a.b_c-d": "A.b_c-9"}});
        assert!(validate_labels(&ok).is_empty());

        let bad_key = json!({"labels": {"foo_": "x"}});
        assert_eq!(
            messages(&validate_labels(&bad_key)),
            [format!(
                "metadata.labels: Invalid value: \"foo_\": {NAME_PART_MSG}"
            )]
        );

        let bad_value = json!({"labels": {"app": "-x"}});
        assert_eq!(
            messages(&validate_labels(&bad_value)),
            [format!(
                "metadata.labels: Invalid value: \"-x\": {LABEL_VALUE_MSG}"
            )]
        );

        let long = "v".repeat(64);
        let long_value = json!({"labels": {"app": long}});
        assert_eq!(
            messages(&validate_labels(&long_value)),
            [format!(
                "metadata.labels: Invalid value: \"{long}\": must be no more than 63 bytes"
            )]
        );
    }

    #[test]
    fn label_key_prefix_and_slashes() {
        assert_eq!(
            label_key_errors("Bad/x"),
            [format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(label_key_errors("/x"), ["prefix part must be non-empty"]);
        assert_eq!(
            label_key_errors("a/"),
            [
                "name part must be non-empty".to_string(),
                NAME_PART_MSG.to_string()
            ]
        );
        let nested = label_key_errors("a/b/c");
        assert_eq!(nested.len(), 1);
        assert!(nested[0].starts_with("a valid label key must consist of"));
        assert!(nested[0].ends_with(
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ));
        assert_eq!(
            label_key_errors(&"k".repeat(64)),
            ["name part must be no more than 63 bytes"]
        );
        assert!(label_key_errors(&format!("{}/k", "p".repeat(253))).is_empty());
        assert_eq!(
            label_key_errors(&format!("{}/k", "p".repeat(254))),
            ["prefix part must be no more than 253 bytes"]
        );
    }

    #[test]
    fn non_string_label_values_are_invalid() {
        let errors = validate_labels(&json!({"labels": {"a": 1}, "annotations": "x"}));
        assert_eq!(
            messages(&errors),
            [
                "metadata.labels[a]: Invalid value: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
                "metadata.annotations: Invalid value: json: cannot unmarshal string into Go struct field ObjectMeta.metadata.annotations of type map[string]string",
            ]
        );
        assert!(validate_labels(&json!({"labels": {"a": null}})).is_empty());
    }

    #[test]
    fn annotation_keys_are_case_insensitive_qualified_names() {
        assert!(
            validate_labels(&json!({"annotations": {"Example.COM/Some_Key": "any value at all"}}))
                .is_empty()
        );
        let errors = validate_labels(&json!({"annotations": {"bad key": "v"}}));
        assert_eq!(
            messages(&errors),
            [format!(
                "metadata.annotations: Invalid value: \"bad key\": {NAME_PART_MSG}"
            )]
        );
    }

    #[test]
    fn annotations_are_limited_to_256_kib_in_total() {
        let at_limit = json!({"annotations": {"k": "v".repeat(MAX_ANNOTATIONS_BYTES - 1)}});
        assert!(validate_labels(&at_limit).is_empty());
        let over = json!({"annotations": {"a": "v".repeat(MAX_ANNOTATIONS_BYTES / 2), "b": "v".repeat(MAX_ANNOTATIONS_BYTES / 2)}});
        let errors = validate_labels(&over);
        assert_eq!(
            errors,
            [FieldError {
                field: "metadata.annotations".into(),
                reason: FIELD_VALUE_TOO_LONG,
                message: "Too long: may not be more than 262144 bytes".into(),
            }]
        );
    }

    #[test]
    fn config_keys_have_the_real_message() {
        let errors = validate_configmap(&json!({"data": {"a b": "x"}}));
        assert_eq!(
            errors,
            [FieldError {
                field: "data[a b]".into(),
                reason: FIELD_VALUE_INVALID,
                message: format!("Invalid value: \"a b\": {CONFIG_KEY_MSG}"),
            }]
        );
        assert_eq!(
            messages(&validate_configmap(&json!({"binaryData": {"": ""}}))),
            [format!(
                "binaryData[]: Invalid value: \"\": {CONFIG_KEY_MSG}"
            )]
        );
    }

    #[test]
    fn config_keys_may_not_walk_directories() {
        let cases = [
            (".", "must not be '.'"),
            ("..", "must not be '..'"),
            ("..a", "must not start with '..'"),
        ];
        for (key, detail) in cases {
            assert_eq!(
                messages(&validate_configmap(&json!({"data": {key: ""}}))),
                [format!("data[{key}]: Invalid value: \"{key}\": {detail}")]
            );
        }
        assert!(
            validate_configmap(&json!({"data": {".a": "", "a..b": "", "KEY_name-1.x": ""}}))
                .is_empty()
        );
        let long = "k".repeat(254);
        assert_eq!(
            messages(&validate_configmap(&json!({"data": {long.clone(): ""}}))),
            [format!(
                "data[{long}]: Invalid value: \"{long}\": must be no more than 253 characters"
            )]
        );
    }

    #[test]
    fn a_key_in_both_maps_is_invalid_on_data() {
        let errors = validate_configmap(&json!({"data": {"k": "v"}, "binaryData": {"k": "dg=="}}));
        assert_eq!(
            messages(&errors),
            ["data[k]: Invalid value: \"k\": duplicate of key present in binaryData"]
        );
    }

    #[test]
    fn configmap_values_must_decode() {
        let errors =
            validate_configmap(&json!({"data": {"n": 5}, "binaryData": {"b": "!!!!", "c": true}}));
        assert_eq!(
            messages(&errors),
            [
                "data[n]: Invalid value: json: cannot unmarshal number into Go struct field ConfigMap.data of type string",
                "binaryData[b]: Invalid value: illegal base64 data at input byte 0",
                "binaryData[c]: Invalid value: json: cannot unmarshal bool into Go struct field ConfigMap.binaryData of type []uint8",
            ]
        );
        assert!(validate_configmap(&json!({"data": null, "binaryData": {"a": null}})).is_empty());
        assert_eq!(validate_configmap(&json!({"data": []})).len(), 1);
    }

    #[test]
    fn configmap_size_counts_values_with_binary_data_decoded() {
        let half = MAX_CONFIGMAP_BYTES / 2;
        // Keys do not count: this is exactly at the limit in values.
        let at_limit =
            json!({"data": {"a": "x".repeat(half)}, "binaryData": {"b": encode(&vec![7u8; half])}});
        assert!(validate_configmap(&at_limit).is_empty());
        let over = json!({"data": {"a": "x".repeat(half + 1)}, "binaryData": {"b": encode(&vec![7u8; half])}});
        assert_eq!(
            validate_configmap(&over),
            [FieldError {
                field: "[]".into(),
                reason: FIELD_VALUE_TOO_LONG,
                message: "Too long: may not be more than 1048576 bytes".into(),
            }]
        );
    }

    #[test]
    fn lease_spec_bounds() {
        assert!(validate_lease(&json!({})).is_empty());
        assert!(validate_lease(&json!({"spec": {"leaseDurationSeconds": 1, "leaseTransitions": 0, "holderIdentity": "anything goes: ✓"}})).is_empty());
        assert_eq!(
            messages(&validate_lease(
                &json!({"spec": {"leaseDurationSeconds": 0}})
            )),
            ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
        );
        assert_eq!(
            messages(&validate_lease(&json!({"spec": {"leaseTransitions": -1}}))),
            ["spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn lease_spec_types() {
        let errors = validate_lease(
            &json!({"spec": {"leaseDurationSeconds": "10", "leaseTransitions": 3_000_000_000u64, "holderIdentity": 1}}),
        );
        assert_eq!(
            messages(&errors),
            [
                "spec.leaseDurationSeconds: Invalid value: json: cannot unmarshal string into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32",
                "spec.leaseTransitions: Invalid value: json: cannot unmarshal number 3000000000 into Go struct field LeaseSpec.spec.leaseTransitions of type int32",
                "spec.holderIdentity: Invalid value: json: cannot unmarshal number into Go struct field LeaseSpec.spec.holderIdentity of type string",
            ]
        );
        assert_eq!(validate_lease(&json!({"spec": 1.5})).len(), 1);
        assert_eq!(
            validate_lease(&json!({"spec": {"leaseDurationSeconds": 1.5}})).len(),
            1
        );
    }

    fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9v\r\nYmFy\n", "foobar"),
            ("Zh==", "f"),
        ];
        for (encoded, decoded) in vectors {
            assert_eq!(
                decode_base64(encoded).as_deref(),
                Ok(decoded.as_bytes()),
                "{encoded:?}"
            );
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_base64(&encode(&all)), Ok(all));
        assert_eq!(decode_base64("+/+/"), Ok(vec![0xfb, 0xff, 0xbf]));
    }

    #[test]
    fn base64_errors_at_gos_offsets() {
        let cases = [
            ("A", 0),
            ("AAA", 0),
            ("AAAAA", 4),
            ("AAAAAA", 4),
            ("A=", 1),
            ("A==", 1),
            ("AA=", 3),
            ("AA==A", 4),
            ("AAA=AAAA", 4),
            ("AAAAAA=", 7),
            ("AAAAA=", 5),
            ("=", 0),
            ("AA=x", 2),
            ("Zm9v-_", 4),
            ("Zm 9v", 2),
        ];
        for (encoded, offset) in cases {
            assert_eq!(
                decode_base64(encoded),
                Err(ValidationError::IllegalBase64(offset)),
                "{encoded:?}"
            );
        }
        assert_eq!(
            ValidationError::IllegalBase64(4).to_string(),
            "illegal base64 data at input byte 4"
        );
    }
}
