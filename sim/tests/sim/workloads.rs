//! Pods, ReplicaSets and Deployments over HTTP, as the local cluster's kubelet and controllers
//! and kubectl use them: graceful deletion, eviction, the status, scale and log subresources,
//! validation and cascading deletion.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use khaos_sim::apiserver::{ApiServer, LogRequest, ServerConfig};
use serde_json::{Value, json};

const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One request; the answer's status and body (JSON when it parses, else a string).
fn call(
    server: &ApiServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: Value,
) -> (StatusCode, Value) {
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    runtime().block_on(async {
        let response = server.clone().handle_bytes(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    })
}

fn json_call(server: &ApiServer, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    call(server, method, path, "application/json", body)
}

fn pod(name: &str, node: Option<&str>, grace: Option<i64>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "khaos:dev"}]},
    });
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    if let Some(grace) = grace {
        pod["spec"]["terminationGracePeriodSeconds"] = json!(grace);
    }
    pod
}

fn delete(server: &ApiServer, name: &str, grace: Option<i64>) -> (StatusCode, Value) {
    let body = match grace {
        Some(grace) => json!({"gracePeriodSeconds": grace}),
        None => Value::Null,
    };
    json_call(server, Method::DELETE, &format!("{PODS}/{name}"), body)
}

#[test]
fn a_pod_on_a_node_is_deleted_gracefully_and_a_later_delete_may_only_shorten_the_grace() {
    let server = ApiServer::new(ServerConfig::default());
    let (code, created) = json_call(&server, Method::POST, PODS, pod("p", Some("n"), None));
    assert_eq!(code, StatusCode::CREATED, "{created}");
    // The defaults a kubelet reads back, and no status but Pending.
    assert_eq!(created["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(created["spec"]["restartPolicy"], "Always");
    assert_eq!(created["status"]["phase"], "Pending");

    let (code, marked) = delete(&server, "p", None);
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        marked["kind"], "Pod",
        "a graceful delete answers with the pod: {marked}"
    );
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    let stamp = marked["metadata"]["deletionTimestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, shortened) = delete(&server, "p", Some(5));
    assert_eq!(shortened["metadata"]["deletionGracePeriodSeconds"], 5);
    assert!(shortened["metadata"]["deletionTimestamp"].as_str().unwrap() <= stamp.as_str());
    let (_, kept) = delete(&server, "p", Some(60));
    assert_eq!(
        kept["metadata"]["deletionGracePeriodSeconds"], 5,
        "never lengthened"
    );
    // An update cannot take the stamp off.
    let mut update = kept.clone();
    update["metadata"]["deletionTimestamp"] = Value::Null;
    let (_, updated) = json_call(&server, Method::PUT, &format!("{PODS}/p"), update);
    assert!(
        updated["metadata"]["deletionTimestamp"].is_string(),
        "{updated}"
    );
    // Grace 0 (the kubelet's last word, or a force delete) removes it; the answer is the pod.
    let (code, last) = delete(&server, "p", Some(0));
    assert_eq!((code, last["kind"].as_str()), (StatusCode::OK, Some("Pod")));
    let (code, _) = json_call(&server, Method::GET, &format!("{PODS}/p"), Value::Null);
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[test]
fn a_pod_on_no_node_or_finished_is_removed_at_once() {
    let server = ApiServer::new(ServerConfig::default());
    json_call(&server, Method::POST, PODS, pod("unscheduled", None, None));
    let (_, answer) = delete(&server, "unscheduled", None);
    assert!(
        answer["metadata"]["deletionTimestamp"].is_null(),
        "{answer}"
    );
    let (code, _) = json_call(
        &server,
        Method::GET,
        &format!("{PODS}/unscheduled"),
        Value::Null,
    );
    assert_eq!(code, StatusCode::NOT_FOUND);

    json_call(&server, Method::POST, PODS, pod("done", Some("n"), None));
    let status = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "done"},
                        "status": {"phase": "Succeeded"}});
    let (code, written) = json_call(&server, Method::PUT, &format!("{PODS}/done/status"), status);
    assert_eq!(code, StatusCode::OK, "{written}");
    delete(&server, "done", None);
    let (code, _) = json_call(&server, Method::GET, &format!("{PODS}/done"), Value::Null);
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[test]
fn an_eviction_is_a_graceful_delete() {
    let server = ApiServer::new(ServerConfig::default());
    json_call(&server, Method::POST, PODS, pod("p", Some("n"), Some(7)));
    let eviction =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"}});
    let (code, answer) = json_call(
        &server,
        Method::POST,
        &format!("{PODS}/p/eviction"),
        eviction.clone(),
    );
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    let (_, pod) = json_call(&server, Method::GET, &format!("{PODS}/p"), Value::Null);
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 7);
    let (code, _) = json_call(
        &server,
        Method::POST,
        &format!("{PODS}/gone/eviction"),
        eviction,
    );
    assert_eq!(code, StatusCode::NOT_FOUND);
    // Other verbs on a subresource are refused, not taken for the object.
    let (code, _) = json_call(
        &server,
        Method::DELETE,
        &format!("{PODS}/p/status"),
        Value::Null,
    );
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    let (code, _) = json_call(&server, Method::GET, &format!("{PODS}/p/exec"), Value::Null);
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[test]
fn the_status_subresource_writes_only_the_status_and_the_object_keeps_it() {
    let server = ApiServer::new(ServerConfig::default());
    json_call(&server, Method::POST, PODS, pod("p", Some("n"), None));
    let (_, current) = json_call(&server, Method::GET, &format!("{PODS}/p"), Value::Null);
    let mut write = current.clone();
    write["status"] = json!({"phase": "Running"});
    write["spec"]["nodeName"] = json!("elsewhere");
    let (code, written) = json_call(&server, Method::PUT, &format!("{PODS}/p/status"), write);
    assert_eq!(code, StatusCode::OK, "{written}");
    assert_eq!(written["status"]["phase"], "Running");
    assert_eq!(
        written["spec"]["nodeName"], "n",
        "a status write keeps the spec"
    );
    // A stale resourceVersion is a conflict, as for the object.
    let mut stale = current.clone();
    stale["status"] = json!({"phase": "Failed"});
    let (code, _) = json_call(&server, Method::PUT, &format!("{PODS}/p/status"), stale);
    assert_eq!(code, StatusCode::CONFLICT);
    // A write of the object keeps the status.
    let mut object = written.clone();
    object["status"] = json!({"phase": "Pending"});
    object["metadata"]["labels"] = json!({"a": "b"});
    let (_, kept) = json_call(&server, Method::PUT, &format!("{PODS}/p"), object);
    assert_eq!(kept["status"]["phase"], "Running", "{kept}");
    assert_eq!(kept["metadata"]["labels"]["a"], "b");
    // A merge patch of the status.
    let (code, patched) = call(
        &server,
        Method::PATCH,
        &format!("{PODS}/p/status"),
        "application/merge-patch+json",
        json!({"status": {"podIP": "127.0.0.1"}}),
    );
    assert_eq!(code, StatusCode::OK);
    assert_eq!(patched["status"]["podIP"], "127.0.0.1");
    assert_eq!(patched["status"]["phase"], "Running");
}

fn deployment(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "main", "image": "khaos:dev"}]}},
        },
    })
}

#[test]
fn scale_reads_and_writes_a_workloads_replicas() {
    let server = ApiServer::new(ServerConfig::default());
    let (code, created) = json_call(
        &server,
        Method::POST,
        DEPLOYMENTS,
        deployment("web", json!({"app": "web"})),
    );
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["spec"]["strategy"]["type"], "RollingUpdate");
    let (code, scale) = json_call(
        &server,
        Method::GET,
        &format!("{DEPLOYMENTS}/web/scale"),
        Value::Null,
    );
    assert_eq!(code, StatusCode::OK);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");
    // kubectl scale sends a merge patch.
    let (code, scaled) = call(
        &server,
        Method::PATCH,
        &format!("{DEPLOYMENTS}/web/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 5}}),
    );
    assert_eq!(code, StatusCode::OK, "{scaled}");
    assert_eq!(scaled["spec"]["replicas"], 5);
    let (_, d) = json_call(
        &server,
        Method::GET,
        &format!("{DEPLOYMENTS}/web"),
        Value::Null,
    );
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(
        d["metadata"]["generation"], 2,
        "a spec change is a new generation"
    );
    // A PUT with a stale resourceVersion conflicts; a negative count is invalid.
    let mut stale = scale.clone();
    stale["spec"]["replicas"] = json!(1);
    let (code, _) = json_call(
        &server,
        Method::PUT,
        &format!("{DEPLOYMENTS}/web/scale"),
        stale,
    );
    assert_eq!(code, StatusCode::CONFLICT);
    let (code, invalid) = call(
        &server,
        Method::PATCH,
        &format!("{DEPLOYMENTS}/web/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": -1}}),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{invalid}");
}

#[test]
fn a_workload_whose_selector_misses_its_template_is_invalid() {
    let server = ApiServer::new(ServerConfig::default());
    let (code, answer) = json_call(
        &server,
        Method::POST,
        DEPLOYMENTS,
        deployment("web", json!({"app": "other"})),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("`selector` does not match template `labels`"),
        "{message}"
    );
    let mut no_containers = deployment("web", json!({"app": "web"}));
    no_containers["spec"]["template"]["spec"]["containers"] = json!([]);
    let (code, answer) = json_call(&server, Method::POST, DEPLOYMENTS, no_containers);
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("spec.template.spec.containers: Required value"),
        "{answer}"
    );
}

#[test]
fn deleting_a_deployment_collects_its_replica_set_and_deletes_its_pods_gracefully() {
    let server = ApiServer::new(ServerConfig::default());
    let (_, d) = json_call(
        &server,
        Method::POST,
        DEPLOYMENTS,
        deployment("web", json!({"app": "web"})),
    );
    let owner = |o: &Value, kind: &str| {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": o["metadata"]["name"],
                "uid": o["metadata"]["uid"], "controller": true}])
    };
    let mut rs = deployment("web-1", json!({"app": "web-1"}));
    rs["kind"] = json!("ReplicaSet");
    rs["metadata"]["ownerReferences"] = owner(&d, "Deployment");
    let (code, rs) = json_call(
        &server,
        Method::POST,
        "/apis/apps/v1/namespaces/default/replicasets",
        rs,
    );
    assert_eq!(code, StatusCode::CREATED, "{rs}");
    let mut p = pod("web-1-x", Some("n"), None);
    p["metadata"]["ownerReferences"] = owner(&rs, "ReplicaSet");
    json_call(&server, Method::POST, PODS, p);
    json_call(
        &server,
        Method::DELETE,
        &format!("{DEPLOYMENTS}/web"),
        Value::Null,
    );
    let (code, _) = json_call(
        &server,
        Method::GET,
        "/apis/apps/v1/namespaces/default/replicasets/web-1",
        Value::Null,
    );
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, pod) = json_call(
        &server,
        Method::GET,
        &format!("{PODS}/web-1-x"),
        Value::Null,
    );
    assert_eq!(code, StatusCode::OK, "the pod waits for its kubelet");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
}

#[test]
fn logs_come_from_the_kubelet_and_say_what_is_missing() {
    let server = ApiServer::new(ServerConfig::default());
    json_call(&server, Method::POST, PODS, pod("p", Some("n"), None));
    let log = |query: &str| {
        json_call(
            &server,
            Method::GET,
            &format!("{PODS}/p/log{query}"),
            Value::Null,
        )
    };
    let (code, answer) = log("");
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        answer["message"].as_str().unwrap().contains("--cluster"),
        "{answer}"
    );
    server.set_log_source(Arc::new(|request: &LogRequest<'_>| {
        if request.previous {
            Err(format!(
                "previous terminated container \"{}\" in pod \"{}\" not found",
                request.container, request.pod
            ))
        } else {
            Ok(format!("one\ntwo\nthree from {}\n", request.container).into_bytes())
        }
    }));
    let (code, text) = log("");
    assert_eq!(code, StatusCode::OK);
    assert_eq!(text, "one\ntwo\nthree from main\n");
    assert_eq!(log("?tailLines=2").1, "two\nthree from main\n");
    assert_eq!(log("?tailLines=0").1, "");
    let (code, answer) = log("?previous=true");
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("previous terminated container")
    );
    let (code, answer) = log("?container=sidecar");
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("not valid for pod p")
    );
    let (code, _) = json_call(
        &server,
        Method::GET,
        &format!("{PODS}/absent/log"),
        Value::Null,
    );
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[test]
fn a_strategic_merge_patch_merges_containers_by_name_as_kubectl_set_image_needs() {
    let server = ApiServer::new(ServerConfig::default());
    let mut d = deployment("web", json!({"app": "web"}));
    d["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "main", "image": "khaos:dev", "command": ["khaos", "node"],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "side", "image": "sh:1"},
    ]);
    json_call(&server, Method::POST, DEPLOYMENTS, d);
    let smp = |patch: Value| {
        call(
            &server,
            Method::PATCH,
            &format!("{DEPLOYMENTS}/web"),
            "application/strategic-merge-patch+json",
            patch,
        )
    };
    // What `kubectl set image deployment/web main=khaos:v2` sends.
    let (code, patched) = smp(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "khaos:v2"}]}}}}));
    assert_eq!(code, StatusCode::OK, "{patched}");
    let containers = &patched["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "khaos:v2");
    assert_eq!(
        containers[0]["command"],
        json!(["khaos", "node"]),
        "kept: {containers}"
    );
    assert_eq!(containers[1]["name"], "side");
    // env merges by name; `$patch: delete` removes one item; a new name is added.
    let (_, patched) = smp(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
        {"name": "side", "$patch": "delete"}]}}}}));
    let containers = &patched["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 1, "{containers}");
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}])
    );
    // A list without a merge key is replaced; null removes a field.
    let (_, patched) = smp(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "command": ["sh"], "env": null}]}}}}));
    let main = &patched["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(main["command"], json!(["sh"]));
    assert!(main.get("env").is_none(), "{main}");
}

#[test]
fn a_pods_spec_may_change_only_in_its_images_and_an_unset_node() {
    let server = ApiServer::new(ServerConfig::default());
    json_call(&server, Method::POST, PODS, pod("p", None, None));
    let merge = |patch: Value| {
        call(
            &server,
            Method::PATCH,
            &format!("{PODS}/p"),
            "application/merge-patch+json",
            patch,
        )
    };
    let (code, bound) = merge(json!({"spec": {"nodeName": "n"}}));
    assert_eq!(code, StatusCode::OK, "{bound}");
    let (code, answer) = merge(json!({"spec": {"nodeName": "elsewhere"}}));
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("pod updates may not change")
    );
    let (code, answer) = call(
        &server,
        Method::PATCH,
        &format!("{PODS}/p"),
        "application/strategic-merge-patch+json",
        json!({"spec": {"containers": [{"name": "main", "image": "khaos:v2"}]}}),
    );
    assert_eq!(code, StatusCode::OK, "{answer}");
    let (code, _) = call(
        &server,
        Method::PATCH,
        &format!("{PODS}/p"),
        "application/strategic-merge-patch+json",
        json!({"spec": {"containers": [{"name": "main", "command": ["x"]}]}}),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn a_workload_that_would_not_decode_as_its_type_is_refused_not_stored() {
    let server = ApiServer::new(ServerConfig::default());
    let mut d = deployment("web", json!({"app": "web"}));
    d["spec"]["replicas"] = json!("3");
    let (code, answer) = json_call(&server, Method::POST, DEPLOYMENTS, d);
    assert_eq!(code, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("cannot be handled as a Deployment"),
        "{answer}"
    );
    json_call(
        &server,
        Method::POST,
        DEPLOYMENTS,
        deployment("web", json!({"app": "web"})),
    );
    let (code, _) = call(
        &server,
        Method::PATCH,
        &format!("{DEPLOYMENTS}/web/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 5_000_000_000_i64}}),
    );
    assert_eq!(code, StatusCode::BAD_REQUEST, "beyond int32");
    json_call(&server, Method::POST, PODS, pod("p", Some("n"), None));
    let status =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": "x"});
    let (code, _) = json_call(&server, Method::PUT, &format!("{PODS}/p/status"), status);
    assert_eq!(code, StatusCode::BAD_REQUEST);
    // An absurd grace still stamps a time every client can read.
    let (code, marked) = delete(&server, "p", Some(1_000_000_000_000));
    assert_eq!(code, StatusCode::OK);
    let stamp = marked["metadata"]["deletionTimestamp"].as_str().unwrap();
    assert!(stamp < "9999", "{stamp}");
}

#[test]
fn a_dry_run_eviction_deletes_nothing_and_a_shortened_stamp_counts_from_the_first_delete() {
    let server = ApiServer::new(ServerConfig::default());
    json_call(&server, Method::POST, PODS, pod("p", Some("n"), Some(30)));
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"},
                          "deleteOptions": {"dryRun": ["All"]}});
    let (code, _) = json_call(
        &server,
        Method::POST,
        &format!("{PODS}/p/eviction"),
        eviction,
    );
    assert_eq!(code, StatusCode::CREATED);
    let (_, pod) = json_call(&server, Method::GET, &format!("{PODS}/p"), Value::Null);
    assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{pod}");
    let (_, first) = delete(&server, "p", Some(30));
    let (_, shortened) = delete(&server, "p", Some(10));
    let at = |v: &Value| {
        v["metadata"]["deletionTimestamp"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // BeforeDelete: the first stamp less the old grace plus the new: 20 s earlier.
    let seconds = |t: &str| {
        let hms: Vec<i64> = t[11..19].split(':').map(|x| x.parse().unwrap()).collect();
        hms[0] * 3600 + hms[1] * 60 + hms[2]
    };
    assert_eq!(
        (seconds(&at(&first)) - seconds(&at(&shortened))).rem_euclid(86_400),
        20
    );
    // A delete that names no grace changes nothing.
    let (_, again) = delete(&server, "p", None);
    assert_eq!(again["metadata"]["deletionGracePeriodSeconds"], 10);
    assert_eq!(at(&again), at(&shortened));
}
