//! The fixed documents a client reads before it touches an object: `/version`, legacy discovery
//! (`/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`) and the OpenAPI v3
//! documents that let `kubectl create -f`, `replace -f` and `apply` run with the default
//! `--validate=strict` without a client-side schema.
//!
//! What kubectl 1.32 was seen to ask for, and why these documents suffice:
//!
//! - Discovery: `GET /api` and `GET /apis` with `Accept:
//!   application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,…,application/json`.
//!   Answered with the legacy `APIVersions` / `APIGroupList` as plain `application/json`, it
//!   falls back to `GET /api/v1` and `GET /apis/<group>/<version>` for every version the group
//!   list names. It never asks for `/apis/<group>` (the list already carries each group), but
//!   a real server answers it, so this module does too. Aggregated discovery is not served.
//! - Validation: with `--validate=strict` kubectl reads `/openapi/v3`, then the document of the
//!   object's group-version, and looks for a PATCH operation whose
//!   `x-kubernetes-group-version-kind` is the object's kind and which declares a parameter named
//!   `fieldValidation`. Found, it leaves validation to the server and sends
//!   `?fieldValidation=Strict`. Not found (or a 404), it falls back to `/openapi/v2` for a
//!   client-side schema, and without one `create -f` fails with "failed to download openapi".
//!   So the documents below declare, for each served kind, its create, replace and patch
//!   operations with that parameter, and the kinds' schemas (k8s-openapi's, marked with their
//!   group-version-kind), which `kubectl explain` reads.
//!   `/openapi/v2` is deliberately not served: client-side `apply` asks for it to compute
//!   strategic merge patches and, on a 404, falls back to the patch metadata compiled into
//!   kubectl for built-in kinds.
//!
//! Every document is built on each call from [`Resource::ALL`], so a new resource appears
//! everywhere at once.

use super::resource::Resource;
use serde_json::{Map, Value, json};

/// The `gitVersion` reported by `/version`.
///
/// kubectl as installed by the Google Cloud SDK is a dispatcher: before anything else it asks
/// `GET /version?timeout=5s` and runs the `kubectl.1.<minor>` binary matching the server's
/// `major`/`minor` (1.27 to 1.33 are installed). Reporting 1.32 keeps the kubectl the project
/// tests against. The `-khaos` pre-release suffix keeps the string valid semver (client-go
/// parses it) while saying plainly that this is the simulation, not a real kube-apiserver.
pub const GIT_VERSION: &str = "v1.32.0-khaos";

/// The verbs every served resource accepts, in the order a real server lists them.
///
/// `deletecollection` is left out on purpose: it is not served, and kubectl never needs it
/// (`kubectl delete -l …` and `--all` list, then delete one object at a time).
pub const VERBS: [&str; 7] = [
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The discovery, version or OpenAPI document served at `path` (the URL path, without the
/// query string), or `None` when `path` is not one of them.
///
/// All documents are `application/json`, answered only to `GET`.
pub fn document(path: &str) -> Option<Value> {
    match path {
        "/version" => return Some(version()),
        "/api" => return Some(api_versions()),
        "/apis" => return Some(api_group_list()),
        "/openapi/v3" => return Some(openapi_v3_root()),
        _ => {}
    }
    if let Some(group_version) = path.strip_prefix("/openapi/v3/") {
        return openapi_v3_document(group_version);
    }
    if let Some(version) = path.strip_prefix("/api/") {
        return resource_list("", version);
    }
    let rest = path.strip_prefix("/apis/")?;
    match rest.split_once('/') {
        None => api_group(rest),
        Some((group, version)) if !group.is_empty() => resource_list(group, version),
        Some(_) => None,
    }
}

/// The `/version` document (`version.Info`).
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (Rust simulation)",
        "compiler": "rustc",
        "platform": platform(),
    })
}

/// `os/arch` in Go's spelling, as `version.Info.platform` is written.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

/// The `GET /api` document: the legacy core group's versions.
///
/// Like a real server it carries no `apiVersion`. `serverAddressByClientCIDRs` is required by
/// the schema but unused by clients; the simulation has no address of its own to advertise, so
/// it is empty.
pub fn api_versions() -> Value {
    let versions = group_versions("");
    json!({
        "kind": "APIVersions",
        "versions": versions,
        "serverAddressByClientCIDRs": [],
    })
}

/// The `GET /apis` document: every named group with its versions.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups().into_iter().map(group_body).collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// The `GET /apis/<group>` document, `None` for a group not served (or the core group, which
/// lives at `/api`).
pub fn api_group(group: &str) -> Option<Value> {
    if group.is_empty() || !groups().contains(&group) {
        return None;
    }
    let mut document = Map::new();
    document.insert("kind".into(), json!("APIGroup"));
    document.insert("apiVersion".into(), json!("v1"));
    if let Value::Object(body) = group_body(group) {
        document.extend(body);
    }
    Some(Value::Object(document))
}

/// The `APIResourceList` at `/api/<version>` (`group` empty) or `/apis/<group>/<version>`,
/// `None` when nothing is served there.
///
/// Resources are listed alphabetically by plural name, as a real server lists them. The core
/// group's list carries no `apiVersion`, as a real server's does not.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut served: Vec<Resource> = Resource::ALL
        .into_iter()
        .filter(|r| r.group() == group && r.version() == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    served.sort_by_key(|r| r.plural());
    let mut resources: Vec<Value> = Vec::new();
    for resource in served {
        resources.push(api_resource(resource));
        for subresource in resource.subresources() {
            resources.push(api_subresource(resource, *subresource));
        }
    }
    let mut document = Map::new();
    document.insert("kind".into(), json!("APIResourceList"));
    if !group.is_empty() {
        document.insert("apiVersion".into(), json!("v1"));
    }
    document.insert("groupVersion".into(), json!(group_version(group, version)));
    document.insert("resources".into(), Value::Array(resources));
    Some(Value::Object(document))
}

/// One resource's `APIResource` entry, fields in the order a real server writes them.
pub fn api_resource(resource: Resource) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), json!(resource.plural()));
    entry.insert("singularName".into(), json!(resource.singular()));
    entry.insert("namespaced".into(), json!(resource.namespaced()));
    entry.insert("kind".into(), json!(resource.kind()));
    entry.insert("verbs".into(), json!(VERBS));
    if !resource.short_names().is_empty() {
        entry.insert("shortNames".into(), json!(resource.short_names()));
    }
    let categories = categories(resource);
    if !categories.is_empty() {
        entry.insert("categories".into(), json!(categories));
    }
    Value::Object(entry)
}

/// A subresource's `APIResource` entry (`pods/log`), listed after its parent as a real server
/// lists it.
fn api_subresource(parent: Resource, subresource: super::resource::Subresource) -> Value {
    let (kind, group, version) = subresource.kind(parent);
    let mut entry = Map::new();
    entry.insert(
        "name".into(),
        json!(format!("{}/{}", parent.plural(), subresource.name())),
    );
    entry.insert("singularName".into(), json!(""));
    entry.insert("namespaced".into(), json!(parent.namespaced()));
    if group != parent.group() {
        entry.insert("group".into(), json!(group));
        entry.insert("version".into(), json!(version));
    }
    entry.insert("kind".into(), json!(kind));
    entry.insert("verbs".into(), json!(subresource.verbs()));
    Value::Object(entry)
}

/// The discovery categories of a resource: of those served, the workloads are in `all`.
pub fn categories(resource: Resource) -> &'static [&'static str] {
    match resource {
        Resource::Deployment | Resource::Pod | Resource::ReplicaSet => &["all"],
        Resource::Namespace
        | Resource::ConfigMap
        | Resource::Event
        | Resource::EventsK8sIo
        | Resource::Lease => &[],
    }
}

/// The `/openapi/v3` root: one entry per served group-version, each pointing at its document.
///
/// The `hash` query parameter is a digest of the document, as a real server's is: kubectl
/// caches hashed URLs on disk as immutable, so the hash must change whenever the document does.
pub fn openapi_v3_root() -> Value {
    let mut paths = Map::new();
    for (group, version) in all_group_versions() {
        let key = openapi_key(group, version);
        let document = openapi_v3_group_version(group, version);
        let hash = fnv1a64(document.to_string().as_bytes());
        paths.insert(
            key.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={hash:016X}") }),
        );
    }
    json!({ "paths": paths })
}

/// The document at `/openapi/v3/<key>` (`api/v1`, `apis/apps/v1`), if served.
fn openapi_v3_document(key: &str) -> Option<Value> {
    all_group_versions()
        .into_iter()
        .find(|&(group, version)| openapi_key(group, version) == key)
        .map(|(group, version)| openapi_v3_group_version(group, version))
}

/// The OpenAPI v3 document of one group-version: a document declaring,
/// per served kind, the create (POST), replace (PUT) and patch (PATCH) operations with their
/// `fieldValidation` query parameter and `x-kubernetes-group-version-kind` extension.
pub fn openapi_v3_group_version(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut served: Vec<Resource> = Resource::ALL
        .into_iter()
        .filter(|r| r.group() == group && r.version() == version)
        .collect();
    served.sort_by_key(|r| r.plural());
    for resource in served {
        let prefix = match group {
            "" => format!("/api/{version}"),
            _ => format!("/apis/{group}/{version}"),
        };
        let collection = match resource.namespaced() {
            true => format!("{prefix}/namespaces/{{namespace}}/{}", resource.plural()),
            false => format!("{prefix}/{}", resource.plural()),
        };
        let namespace_parameter = resource.namespaced().then(|| path_parameter("namespace"));
        let mut collection_parameters: Vec<Value> = namespace_parameter.iter().cloned().collect();
        paths.insert(
            collection.clone(),
            json!({
                "parameters": collection_parameters.clone(),
                "post": operation(resource, "create", "post", "201"),
            }),
        );
        collection_parameters.insert(0, path_parameter("name"));
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "parameters": collection_parameters,
                "put": operation(resource, "replace", "put", "200"),
                "patch": operation(resource, "patch", "patch", "200"),
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": GIT_VERSION },
        "paths": paths,
        "components": { "schemas": schemas(group, version) },
    })
}

/// The schemas of a group-version's kinds and everything they refer to, from k8s-openapi's
/// (the Kubernetes API's own, with its descriptions), each kind marked with its
/// `x-kubernetes-group-version-kind` as kube-apiserver marks it: what `kubectl explain` reads.
fn schemas(group: &str, version: &str) -> Value {
    use k8s_openapi::api;
    use schemars::JsonSchema;
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let mut kinds = Vec::new();
    for resource in Resource::ALL
        .into_iter()
        .filter(|r| r.group() == group && r.version() == version)
    {
        fn register<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> String {
            generator.subschema_for::<T>();
            T::schema_name().into_owned()
        }
        let name = match resource {
            Resource::Namespace => register::<api::core::v1::Namespace>(&mut generator),
            Resource::ConfigMap => register::<api::core::v1::ConfigMap>(&mut generator),
            Resource::Event => register::<api::core::v1::Event>(&mut generator),
            Resource::Lease => register::<api::coordination::v1::Lease>(&mut generator),
            Resource::EventsK8sIo => register::<api::events::v1::Event>(&mut generator),
            Resource::Deployment => register::<api::apps::v1::Deployment>(&mut generator),
            Resource::Pod => register::<api::core::v1::Pod>(&mut generator),
            Resource::ReplicaSet => register::<api::apps::v1::ReplicaSet>(&mut generator),
        };
        kinds.push((name, resource));
    }
    let mut definitions = generator.take_definitions(true);
    for (name, resource) in kinds {
        if let Some(Value::Object(schema)) = definitions.get_mut(&name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{
                    "group": resource.group(),
                    "version": resource.version(),
                    "kind": resource.kind(),
                }]),
            );
        }
    }
    Value::Object(definitions)
}

/// One write operation, carrying what kubectl's field-validation probe looks for.
fn operation(resource: Resource, verb: &str, action: &str, code: &str) -> Value {
    let scope = if resource.namespaced() {
        "Namespaced"
    } else {
        ""
    };
    let operation_id = format!(
        "{verb}{}{}{scope}{}",
        operation_group(resource.group()),
        capitalized(resource.version()),
        resource.kind()
    );
    json!({
        "operationId": operation_id,
        "parameters": [{
            "name": "fieldValidation",
            "in": "query",
            "description": "How the server treats unknown or duplicate fields in the body: \
                Ignore, Warn or Strict (reject the request).",
            "schema": { "type": "string", "uniqueItems": true },
        }],
        "responses": { code: { "description": if code == "201" { "Created" } else { "OK" } } },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": resource.group(),
            "version": resource.version(),
            "kind": resource.kind(),
        },
    })
}

/// A required string path parameter.
fn path_parameter(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
}

/// The group as operation ids spell it: `Core`, `Apps`, `Coordination`.
fn operation_group(group: &str) -> String {
    match group {
        "" => "Core".to_owned(),
        _ => capitalized(group.split('.').next().unwrap_or(group)),
    }
}

/// `word` with its first letter upper-cased.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The `/openapi/v3` key of a group-version: `api/v1`, `apis/apps/v1`.
fn openapi_key(group: &str, version: &str) -> String {
    match group {
        "" => format!("api/{version}"),
        _ => format!("apis/{group}/{version}"),
    }
}

/// `v1` for the core group, `<group>/<version>` otherwise.
fn group_version(group: &str, version: &str) -> String {
    match group {
        "" => version.to_owned(),
        _ => format!("{group}/{version}"),
    }
}

/// The named groups served, alphabetically (the core group is not one of them).
fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Resource::ALL
        .into_iter()
        .map(Resource::group)
        .filter(|g| !g.is_empty())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// The versions served in `group`, in first-seen order, without repeats.
fn group_versions(group: &str) -> Vec<&'static str> {
    let mut versions: Vec<&'static str> = Vec::new();
    for resource in Resource::ALL {
        if resource.group() == group && !versions.contains(&resource.version()) {
            versions.push(resource.version());
        }
    }
    versions
}

/// Every served (group, version), core first, then groups alphabetically.
fn all_group_versions() -> Vec<(&'static str, &'static str)> {
    std::iter::once("")
        .chain(groups())
        .flat_map(|group| {
            group_versions(group)
                .into_iter()
                .map(move |version| (group, version))
        })
        .collect()
}

/// The body shared by an `APIGroupList` entry and an `APIGroup` document.
fn group_body(group: &str) -> Value {
    let versions: Vec<Value> = group_versions(group)
        .into_iter()
        .map(|version| json!({ "groupVersion": group_version(group, version), "version": version }))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({ "name": group, "versions": versions, "preferredVersion": preferred })
}

/// 64-bit FNV-1a: a stable digest for the OpenAPI `hash` parameter (not for security).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources_at(path: &str) -> Vec<Value> {
        document(path).expect(path)["resources"]
            .as_array()
            .expect("resources")
            .clone()
    }

    #[test]
    fn every_served_resource_is_discoverable_with_its_verbs() {
        for resource in Resource::ALL {
            let path = match resource.group() {
                "" => format!("/api/{}", resource.version()),
                group => format!("/apis/{group}/{}", resource.version()),
            };
            let list = document(&path).expect(&path);
            assert_eq!(list["kind"], "APIResourceList");
            assert_eq!(list["groupVersion"], resource.api_version());
            let entry = resources_at(&path)
                .into_iter()
                .find(|e| e["name"] == resource.plural())
                .unwrap_or_else(|| panic!("{} missing from {path}", resource.plural()));
            assert_eq!(entry["singularName"], resource.singular());
            assert_eq!(entry["namespaced"], resource.namespaced());
            assert_eq!(entry["kind"], resource.kind());
            assert_eq!(
                entry["verbs"],
                json!([
                    "create", "delete", "get", "list", "patch", "update", "watch"
                ])
            );
            let short: Vec<&str> = entry
                .get("shortNames")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert_eq!(short, resource.short_names());
            assert!(entry.get("storageVersionHash").is_none());

            // The group-version is announced where kubectl looks for it.
            if resource.group().is_empty() {
                assert_eq!(document("/api").unwrap()["versions"], json!(["v1"]));
            } else {
                let groups = document("/apis").unwrap()["groups"].clone();
                let group = groups
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| g["name"] == resource.group())
                    .cloned()
                    .expect("group listed");
                assert_eq!(
                    group["preferredVersion"]["groupVersion"],
                    resource.api_version()
                );
                let single = document(&format!("/apis/{}", resource.group())).unwrap();
                assert_eq!(single["kind"], "APIGroup");
                assert_eq!(single["versions"], group["versions"]);
            }
        }
    }

    #[test]
    fn no_served_resource_offers_deletecollection() {
        for path in ["/api/v1", "/apis/apps/v1", "/apis/coordination.k8s.io/v1"] {
            for entry in resources_at(path) {
                assert!(
                    !entry["verbs"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("deletecollection"))
                );
            }
        }
    }

    #[test]
    fn categories_and_short_names_match_a_real_server() {
        let apps = resources_at("/apis/apps/v1");
        let names: Vec<&str> = apps.iter().filter_map(|e| e["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status"
            ]
        );
        assert_eq!(apps[0]["categories"], json!(["all"]));
        assert_eq!(apps[0]["shortNames"], json!(["deploy"]));
        assert_eq!(apps[1]["kind"], "Scale");
        assert_eq!(apps[1]["group"], "autoscaling");
        assert_eq!(apps[3]["shortNames"], json!(["rs"]));
        let core = resources_at("/api/v1");
        let names: Vec<&str> = core.iter().filter_map(|e| e["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "configmaps",
                "events",
                "namespaces",
                "pods",
                "pods/eviction",
                "pods/log",
                "pods/status"
            ]
        );
        for entry in core {
            let workload = entry["name"] == "pods";
            assert_eq!(entry.get("categories").is_some(), workload, "{entry}");
        }
        let leases = resources_at("/apis/coordination.k8s.io/v1");
        assert!(leases[0].get("shortNames").is_none());
    }

    #[test]
    fn core_documents_carry_no_api_version_and_named_ones_do() {
        assert!(document("/api").unwrap().get("apiVersion").is_none());
        assert!(document("/api/v1").unwrap().get("apiVersion").is_none());
        assert_eq!(document("/apis").unwrap()["apiVersion"], "v1");
        assert_eq!(document("/apis/apps/v1").unwrap()["apiVersion"], "v1");
    }

    #[test]
    fn unknown_paths_are_not_documents() {
        for path in [
            "/",
            "/api/v2",
            "/apis/",
            "/apis//v1",
            "/apis/batch",
            "/apis/apps/v2",
            "/apis/apps/v1/deployments",
            "/api/v1/namespaces",
            "/api/v1/namespaces/default/configmaps",
            "/openapi/v2",
            "/openapi/v3/apis/batch/v1",
            "/apis/coordination.k8s.io/v1/",
        ] {
            assert!(document(path).is_none(), "{path}");
        }
    }

    #[test]
    fn version_selects_kubectl_1_32() {
        let v = document("/version").unwrap();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "32");
        assert_eq!(v["gitVersion"], GIT_VERSION);
        assert!(v["platform"].as_str().unwrap().contains('/'));
    }

    #[test]
    fn openapi_root_points_at_every_group_version_document() {
        let root = document("/openapi/v3").unwrap();
        let paths = root["paths"].as_object().unwrap();
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "api/v1",
                "apis/apps/v1",
                "apis/coordination.k8s.io/v1",
                "apis/events.k8s.io/v1"
            ]
        );
        for (key, entry) in paths {
            let url = entry["serverRelativeURL"].as_str().unwrap();
            let (path, query) = url.split_once('?').unwrap();
            assert_eq!(path, format!("/openapi/v3/{key}"));
            assert!(query.starts_with("hash=") && query.len() == 21, "{query}");
            let served = document(path).expect(path);
            let hash = format!("hash={:016X}", fnv1a64(served.to_string().as_bytes()));
            assert_eq!(query, hash);
        }
    }

    /// What kubectl's `queryParamVerifierV3` checks: some PATCH operation tagged with the kind's
    /// group-version-kind declares `fieldValidation`.
    #[test]
    fn every_kind_declares_field_validation_on_patch() {
        for resource in Resource::ALL {
            let key = openapi_key(resource.group(), resource.version());
            let doc = document(&format!("/openapi/v3/{key}")).unwrap();
            assert_eq!(doc["openapi"], "3.0.0");
            let gvk = json!({
                "group": resource.group(),
                "version": resource.version(),
                "kind": resource.kind(),
            });
            let found = doc["paths"].as_object().unwrap().values().any(|item| {
                let patch = &item["patch"];
                patch["x-kubernetes-group-version-kind"] == gvk
                    && patch["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
            });
            assert!(found, "{}", resource.kind());
        }
    }

    #[test]
    fn openapi_paths_and_operation_ids_follow_kubernetes_spelling() {
        let core = document("/openapi/v3/api/v1").unwrap();
        let item = &core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"];
        assert_eq!(
            item["patch"]["operationId"],
            "patchCoreV1NamespacedConfigMap"
        );
        assert_eq!(item["parameters"][0]["name"], "name");
        assert_eq!(item["parameters"][1]["name"], "namespace");
        let namespaces = &core["paths"]["/api/v1/namespaces"];
        assert_eq!(namespaces["post"]["operationId"], "createCoreV1Namespace");
        assert_eq!(namespaces["parameters"], json!([]));
        let leases = document("/openapi/v3/apis/coordination.k8s.io/v1").unwrap();
        let item = &leases["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"];
        assert_eq!(
            item["post"]["operationId"],
            "createCoordinationV1NamespacedLease"
        );
        assert_eq!(item["post"]["x-kubernetes-action"], "post");
    }
}
