//! The simulator's integration tests, one binary: the API server's conformance suite through the
//! real kube-rs client over simulated TCP, malformed input, the CAS race and pagination (here);
//! the elector and HA store against the standalone server (`elector`); the simulated HA world and
//! its catalogue (`world`); the regression corpus (`corpus`); generated schedules
//! (`schedules`).

mod corpus;
mod elector;
mod pods;
mod schedules;
mod workloads;
mod world;

use khaos_sim::conformance;

#[test]
fn conformance_in_simulation() {
    let seed = std::env::var("KHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let filter = std::env::var("KHAOS_CASE").ok();
    let results = conformance::run_simulated(seed, filter, |r| println!("{r}"));
    println!("{}", conformance::summary(&results));
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.outcome.is_failed())
        .map(|r| r.to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "conformance failures (replay: KHAOS_SEED={seed} cargo test -p khaos-sim --test sim):\n{}",
        failed.join("\n")
    );
    assert_eq!(
        results.len(),
        conformance::case_names().len(),
        "every case ran"
    );
}

mod malformed_input {
    //! Whatever arrives, the server answers with a proper Status (or a success), never a panic
    //! or a hang.

    use bytes::Bytes;
    use http::{Method, Request};
    use http_body_util::BodyExt;
    use khaos_sim::apiserver::{ApiServer, ServerConfig};
    use proptest::prelude::*;
    use std::time::Duration;

    fn method() -> impl Strategy<Value = Method> {
        prop::sample::select(vec![
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ])
    }

    const CONFIGMAP: &[u8] =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"c"}}"#;
    const NEW_CONFIGMAP: &[u8] = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"x","uid":"u"}]}}"#;
    const LEASE: &[u8] = br#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},"spec":{"holderIdentity":"a","leaseDurationSeconds":15}}"#;

    /// Requests the server serves successfully against a store holding ConfigMap default/x.
    fn valid_request() -> impl Strategy<Value = (Method, &'static str, &'static [u8], &'static str)>
    {
        prop::sample::select(vec![
            (
                Method::POST,
                "/api/v1/namespaces/default/configmaps",
                NEW_CONFIGMAP,
                "application/json",
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/default/configmaps/x",
                CONFIGMAP,
                "application/json",
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/default/configmaps/x",
                br#"{"data":{"z":"1"}}"#.as_slice(),
                "application/merge-patch+json",
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/default/configmaps/x",
                br#"{"metadata":{"finalizers":["f"]}}"#.as_slice(),
                "application/strategic-merge-patch+json",
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/default/configmaps/x",
                br#"[{"op":"add","path":"/data/j","value":"1"}]"#.as_slice(),
                "application/json-patch+json",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/default/configmaps/x",
                br#"{"propagationPolicy":"Background"}"#.as_slice(),
                "application/json",
            ),
            (
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/default/leases",
                LEASE,
                "application/json",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/default/leases/l",
                LEASE,
                "application/json",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/configmaps/x",
                b"".as_slice(),
                "",
            ),
            (Method::GET, "/api/v1/configmaps", b"".as_slice(), ""),
        ])
    }

    /// Mostly well-formed resource paths, so requests get past routing and into the store.
    fn resource_path() -> impl Strategy<Value = String> {
        let prefix = prop::sample::select(vec![
            "/api/v1",
            "/apis/coordination.k8s.io/v1",
            "/apis/apps/v1",
        ]);
        let namespace = prop::sample::select(vec![
            "",
            "/namespaces/default",
            "/namespaces/nope",
            "/namespaces/Bad_NS",
        ]);
        let plural = prop::sample::select(vec![
            "configmaps",
            "leases",
            "deployments",
            "namespaces",
            "pods",
        ]);
        let name = prop::sample::select(vec!["", "/x", "/y", "/Bad_Name", "/x/status", "/%2e%2e"]);
        (prefix, namespace, plural, name).prop_map(|(p, ns, r, n)| format!("{p}{ns}/{r}{n}"))
    }

    fn path() -> impl Strategy<Value = String> {
        prop_oneof![random_path(), resource_path()]
    }

    fn random_path() -> impl Strategy<Value = String> {
        let segment = prop::sample::select(vec![
            "api",
            "apis",
            "v1",
            "v2",
            "namespaces",
            "default",
            "kube-system",
            "nope",
            "configmaps",
            "leases",
            "coordination.k8s.io",
            "apps",
            "deployments",
            "x",
            "Bad_Name",
            "%zz",
            "%41",
            "",
            "..",
            "status",
            "khaos",
            "watch",
            "openapi",
            "version",
        ]);
        prop::collection::vec(segment, 0..7).prop_map(|s| format!("/{}", s.join("/")))
    }

    fn query() -> impl Strategy<Value = String> {
        let pair = prop::sample::select(vec![
            "watch=true",
            "watch=1",
            "labelSelector=a%3Db",
            "labelSelector=a%20in%20(",
            "labelSelector=%21%21",
            "fieldSelector=metadata.name%3Dx",
            "fieldSelector=spec.x%3D1",
            "resourceVersion=0",
            "resourceVersion=abc",
            "resourceVersion=1",
            "limit=2",
            "limit=-1",
            "continue=zz",
            "continue=5-6161",
            "timeoutSeconds=0",
            "timeoutSeconds=x",
            "dryRun=All",
            "propagationPolicy=Nope",
            "sendInitialEvents=true",
            "allowWatchBookmarks=true",
        ]);
        prop::collection::vec(pair, 0..4).prop_map(|p| p.join("&"))
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            Just(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"b"}}"#.to_vec()),
            Just(br#"{"apiVersion":"v1","kind":"Lease","metadata":{"name":"x"}}"#.to_vec()),
            Just(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad Name"}}"#.to_vec()),
            Just(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":"oops"}"#.to_vec()),
            Just(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":1}}"#.to_vec()),
            Just(br#"[{"op":"remove","path":"/nope"}]"#.to_vec()),
            Just(br#"{"data":null}"#.to_vec()),
            Just(b"null".to_vec()),
            Just(br#"{"propagationPolicy":"Orphan","dryRun":["All"]}"#.to_vec()),
            Just(br#"{"dryRun":["Nope"],"preconditions":{"uid":"x","resourceVersion":"1"}}"#.to_vec()),
            Just(br#"{"dryRun":"All","propagationPolicy":7}"#.to_vec()),
            Just(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","ownerReferences":[{"uid":"u","name":"o","kind":"K","apiVersion":"v1"}],"finalizers":["f"]}}"#.to_vec()),
            Just(br#"{"metadata":{"ownerReferences":[{"uid":"u","$patch":"delete"}],"$deleteFromPrimitiveList/finalizers":["f"]}}"#.to_vec()),
            Just(br#"{"metadata":{"ownerReferences":"oops","finalizers":{"a":1}}}"#.to_vec()),
            Just(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","resourceVersion":"3"},"immutable":true}"#.to_vec()),
            Just(b"{".to_vec()),
            "[ -~]{0,80}".prop_map(String::into_bytes),
        ]
    }

    fn content_type() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "application/json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json-patch+json",
            "application/apply-patch+yaml",
            "text/plain",
            "",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn every_request_gets_a_status_or_a_success(
            valid in valid_request(), mutation in 0..6usize,
            method in method(), path in path(), query in query(), body in body(), content_type in content_type()
        ) {
            // A valid request with at most one part replaced by a random one: most cases then get
            // past routing and decoding into the store, where the interesting errors are.
            let (valid_method, valid_path, valid_body, valid_type) = valid;
            let method = if mutation == 1 { method } else { valid_method };
            let path = if mutation == 2 { path } else { valid_path.to_owned() };
            let body = if mutation == 3 { body } else { valid_body.to_vec() };
            let content_type = if mutation == 4 { content_type } else { valid_type };
            let query = if mutation == 5 { query } else { String::new() };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
            runtime.block_on(async {
                let server = ApiServer::new(ServerConfig::default());
                server.with_store(|store| {
                    let ctx = khaos_sim::apiserver::WriteContext { client: "fuzz", now: "2026-11-21T00:00:00Z" };
                    let existing = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}});
                    store.create(&ctx, khaos_sim::apiserver::Resource::ConfigMap, "default", existing).unwrap();
                });
                let uri = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
                let request = Request::builder().method(method.clone()).uri(&uri).header("content-type", content_type).body(Bytes::from(body)).unwrap();
                let response = tokio::time::timeout(Duration::from_secs(5), server.handle_bytes(request)).await
                    .unwrap_or_else(|_| panic!("{method} {uri} hung"))
                    .unwrap_or_else(|_| panic!("{method} {uri} dropped the connection"));
                let code = response.status().as_u16();
                let is_watch = response.status().is_success() && (query.contains("watch=true") || query.contains("watch=1"));
                if is_watch {
                    return;
                }
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                if code >= 400 {
                    let status: serde_json::Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("{method} {uri} -> {code} with a body that is not JSON ({e}): {bytes:?}"));
                    assert_eq!(status["kind"], "Status", "{method} {uri}");
                    assert_eq!(status["code"], code, "{method} {uri}");
                    assert!(status["reason"].as_str().is_some_and(|r| !r.is_empty()), "{method} {uri}: no reason");
                    // 500: a create that names a resourceVersion (as etcd3 refuses it); 504: a watch
                    // from a revision the server has not reached.
                    assert!([400, 401, 404, 405, 406, 409, 410, 413, 415, 422, 500, 504].contains(&code), "{method} {uri} -> unexpected {code}: {status}");
                } else {
                    assert!(code == 200 || code == 201, "{method} {uri} -> {code}");
                }
            });
        }
    }

    #[test]
    fn a_body_over_three_mebibytes_is_413() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = ApiServer::new(ServerConfig::default());
            let body = Bytes::from(vec![b' '; 3 * 1024 * 1024 + 1]);
            let request = Request::post("/api/v1/namespaces/default/configmaps")
                .header("content-type", "application/json")
                .body(body)
                .unwrap();
            let response = server.handle_bytes(request).await.unwrap();
            assert_eq!(response.status().as_u16(), 413);
        });
    }
}

mod query {
    //! Query parameters read as apimachinery reads them, through the HTTP front: a boolean is
    //! false only as "0" or "false" in any case, and a resourceVersion gets the same answer from
    //! a list and a watch.

    use bytes::Bytes;
    use http::Request;
    use http_body_util::BodyExt;
    use khaos_sim::apiserver::{ApiServer, Resource, ServerConfig, WriteContext};
    use proptest::prelude::*;

    fn server() -> ApiServer {
        let server = ApiServer::new(ServerConfig::default());
        server.with_store(|store| {
            let ctx = WriteContext {
                client: "test",
                now: "2026-12-03T00:00:00Z",
            };
            let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
            store
                .create(&ctx, Resource::ConfigMap, "default", object)
                .unwrap();
        });
        server
    }

    /// The answer's code and, for a success, whether it was a watch stream (else a list).
    fn get(query: &str) -> (u16, Option<bool>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let uri = format!("/api/v1/namespaces/default/configmaps?timeoutSeconds=1&{query}");
            let request = Request::get(&uri).body(Bytes::new()).unwrap();
            let response = server().handle_bytes(request).await.unwrap();
            let code = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            if code != 200 {
                return (code, None);
            }
            // A list always has a body; a watch from the current revision ends with none.
            if body.is_empty() {
                return (code, Some(true));
            }
            let first = body.split(|&b| b == b'\n').next().unwrap();
            let value: serde_json::Value = serde_json::from_slice(first).unwrap();
            let watch = value.get("type").is_some();
            assert!(watch || value["kind"] == "ConfigMapList", "{uri}: {value}");
            (code, Some(watch))
        })
    }

    fn escaped(value: &str) -> String {
        value.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    fn bool_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "true", "True", "TRUE", "false", "False", "FALSE", "fAlSe", "0", "1", "yes", "",
                "00"
            ])
            .prop_map(str::to_owned),
            "[ -~]{0,5}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn watch_is_false_only_as_zero_or_false(value in bool_value()) {
            let expected = !(value == "0" || value.eq_ignore_ascii_case("false"));
            let (code, watch) = get(&format!("watch={}", escaped(&value)));
            prop_assert_eq!(code, 200);
            prop_assert_eq!(watch, Some(expected), "watch={:?}", value);
        }

        #[test]
        fn a_list_and_a_watch_read_a_resource_version_alike(
            rv in prop_oneof![
                prop::sample::select(vec!["", "0", "1", "2", "3", "4", "5", "999", "abc", "-1", "+1", " 1", "18446744073709551615", "18446744073709551616"]).prop_map(str::to_owned),
                "[-+0-9a-z]{0,4}",
            ]
        ) {
            let list = get(&format!("resourceVersion={}", escaped(&rv))).0;
            let watch = get(&format!("watch=true&resourceVersion={}", escaped(&rv))).0;
            prop_assert_eq!(list, watch, "resourceVersion={:?}", rv);
            // The store is at revision 2 (the default namespaces, then x); parse as ParseUint.
            let expected = match rv.as_str() {
                "" | "0" => 200,
                rv if !rv.bytes().all(|b| b.is_ascii_digit()) => 400,
                rv => match rv.parse::<u64>() {
                    Err(_) => 400,
                    Ok(n) if n > revision() => 504,
                    Ok(_) => 200,
                },
            };
            prop_assert_eq!(list, expected, "resourceVersion={:?}", rv);
        }
    }

    fn revision() -> u64 {
        server().revision()
    }

    #[test]
    fn the_python_clients_watch_is_a_watch() {
        // kubernetes-client/python sends Python's str(True).
        assert_eq!(get("watch=True"), (200, Some(true)));
        assert_eq!(
            get("watch=True&allowWatchBookmarks=True"),
            (200, Some(true))
        );
    }
}

mod watch_memory {
    //! A watch event is encoded once for all its watchers, and a watcher that stops reading is
    //! closed once it holds its byte budget, as kube-apiserver closes a watcher that cannot keep up.

    use bytes::Bytes;
    use http::Request;
    use http_body_util::BodyExt;
    use khaos_sim::apiserver::{ApiServer, Resource, ServerConfig, WriteContext};
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
    }

    fn write(server: &ApiServer, name: &str, bytes: usize) {
        server.with_store(|store| {
            let ctx = WriteContext {
                client: "test",
                now: "2026-12-03T00:00:00Z",
            };
            let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "x".repeat(bytes)}});
            store
                .create(&ctx, Resource::ConfigMap, "default", object)
                .unwrap();
        });
    }

    async fn watch(
        server: &ApiServer,
        from: u64,
    ) -> http::Response<khaos_sim::apiserver::http::Body> {
        let uri =
            format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from}");
        server
            .clone()
            .handle_bytes(Request::get(uri).body(Bytes::new()).unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn every_watcher_sends_the_same_bytes_of_an_event() {
        runtime().block_on(async {
            let server = ApiServer::new(ServerConfig::default());
            let from = server.revision();
            let mut a = watch(&server, from).await.into_body();
            let mut b = watch(&server, from).await.into_body();
            write(&server, "x", 10);
            let a = a.frame().await.unwrap().unwrap().into_data().unwrap();
            let b = b.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(a, b);
            assert!(a.starts_with(br#"{"type":"ADDED","object":"#), "{a:?}");
            assert_eq!(a.as_ptr(), b.as_ptr(), "one encoding, shared");
        });
    }

    #[test]
    fn a_watcher_that_stops_reading_is_closed_once_it_holds_its_budget() {
        runtime().block_on(async {
            let server = ApiServer::new(ServerConfig::default());
            let from = server.revision();
            let mut slow = watch(&server, from).await.into_body();
            // 20 events of 500 KB: more than the 8 MiB one reader may hold.
            for i in 0..20 {
                write(&server, &format!("big-{i}"), 500 * 1024);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Long past the grace, the reader wakes: it gets what was queued, then the end.
            tokio::time::sleep(Duration::from_secs(30)).await;
            let mut frames = 0;
            while let Some(frame) = tokio::time::timeout(Duration::from_secs(1), slow.frame())
                .await
                .expect("the stream ends rather than waits")
            {
                frame.unwrap();
                frames += 1;
            }
            assert!(
                frames < 20,
                "closed before every event was queued: {frames} frames"
            );
            assert!(frames > 0, "what was queued is delivered");
        });
    }
}

mod yaml_bodies {
    //! `application/yaml` creates and YAML apply patches, as kube-apiserver takes them.

    use bytes::Bytes;
    use http::Request;
    use http_body_util::BodyExt;
    use khaos_sim::apiserver::{ApiServer, ServerConfig};

    async fn send(server: &ApiServer, request: Request<Bytes>) -> (u16, serde_json::Value) {
        let response = server.clone().handle_bytes(request).await.unwrap();
        let code = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn a_yaml_create_and_a_yaml_apply_are_taken() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = ApiServer::new(ServerConfig::default());
            let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: \"1\"\n";
            let create = Request::post("/api/v1/namespaces/default/configmaps")
                .header("content-type", "application/yaml")
                .body(Bytes::from(yaml))
                .unwrap();
            let (code, created) = send(&server, create).await;
            assert_eq!(code, 201, "{created}");
            assert_eq!(created["data"]["a"], "1");
            let apply = Request::patch("/api/v1/namespaces/default/configmaps/y?fieldManager=me")
                .header("content-type", "application/apply-patch+yaml")
                .body(Bytes::from(yaml.replace("\"1\"", "\"2\"")))
                .unwrap();
            let (code, applied) = send(&server, apply).await;
            assert_eq!(code, 200, "{applied}");
            assert_eq!(applied["data"]["a"], "2");
            let bad = Request::post("/api/v1/namespaces/default/configmaps")
                .header("content-type", "application/yaml")
                .body(Bytes::from("a: [unclosed"))
                .unwrap();
            assert_eq!(send(&server, bad).await.0, 400);
        });
    }
}

mod race {
    //! The CAS race: determinism, the checker on a sweep, and the checker firing on a flaw.

    use khaos_sim::race::{self, Flaw, RaceConfig};

    fn small() -> RaceConfig {
        RaceConfig {
            clients: 3,
            increments: 8,
            flaw: None,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_history_byte_for_byte() {
        for seed in [2, 7, 9] {
            let first = race::run(seed, &small());
            let second = race::run(seed, &small());
            assert!(!first.history.is_empty());
            if first.history != second.history {
                let line = first
                    .history
                    .lines()
                    .zip(second.history.lines())
                    .position(|(a, b)| a != b);
                panic!("seed {seed} diverged at history line {line:?}");
            }
        }
        assert_ne!(
            race::run(2, &small()).history,
            race::run(3, &small()).history
        );
    }

    #[test]
    fn a_seed_sweep_under_faults_keeps_every_acknowledged_increment() {
        let mut classes = std::collections::BTreeSet::new();
        for seed in 1..=40 {
            let report = race::run(seed, &small());
            assert!(
                report.verdict.is_ok(),
                "{}\n{:?}\nreplay: {}",
                report.summary(),
                report.verdict,
                report.replay_command()
            );
            classes.extend(report.plan.describe().split(',').map(str::to_owned));
        }
        // The sweep is only worth something if the seeds switched the fault classes on.
        for class in [
            "latency",
            "errors",
            "ambiguous-commits",
            "hangs",
            "partitions",
            "restarts",
        ] {
            assert!(
                classes.contains(class),
                "no seed in 1..=40 switched on {class}: {classes:?}"
            );
        }
    }

    #[test]
    fn blind_writes_are_caught_as_lost_updates() {
        let config = RaceConfig {
            flaw: Some(Flaw::BlindWrites),
            ..small()
        };
        let caught = (1..=10)
            .filter(|seed| race::run(*seed, &config).verdict.is_err())
            .count();
        assert!(
            caught >= 5,
            "blind writes caught on only {caught} of 10 seeds"
        );
        let report = race::run(1, &config);
        insta::assert_snapshot!(
            "blind_writes_seed_1",
            format!(
                "{}\n{}\nreplay: {}",
                report.summary(),
                report.verdict.as_ref().unwrap_err(),
                report.replay_command()
            )
        );
    }
}

mod pagination {
    //! Pages follow etcd's key order (bytewise `namespace/name`), the same order the store keeps,
    //! so paging never skips or repeats an object across namespaces that share a prefix.

    use bytes::Bytes;
    use http::Request;
    use http_body_util::BodyExt;
    use khaos_sim::apiserver::{ApiServer, Resource, ServerConfig, WriteContext};
    use serde_json::{Value, json};

    async fn get(server: &ApiServer, uri: &str) -> Value {
        let response = server
            .clone()
            .handle_bytes(Request::get(uri).body(Bytes::new()).unwrap())
            .await
            .unwrap();
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
    }

    #[test]
    fn pages_across_namespaces_whose_names_share_a_prefix() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = ApiServer::new(ServerConfig::default());
            server.with_store(|store| {
                let ctx = WriteContext { client: "test", now: "2026-11-21T00:00:00Z" };
                for namespace in ["a", "a-b"] {
                    store.create(&ctx, Resource::Namespace, "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})).unwrap();
                    for name in ["x", "y"] {
                        store.create(&ctx, Resource::ConfigMap, namespace, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})).unwrap();
                    }
                }
            });
            let mut seen = Vec::new();
            let mut token = String::new();
            for _ in 0..10 {
                let page = get(&server, &format!("/api/v1/configmaps?limit=1&continue={token}")).await;
                for item in page["items"].as_array().unwrap() {
                    seen.push(format!("{}/{}", item["metadata"]["namespace"].as_str().unwrap(), item["metadata"]["name"].as_str().unwrap()));
                }
                match page["metadata"]["continue"].as_str() {
                    Some(next) => token = next.to_owned(),
                    None => break,
                }
            }
            assert_eq!(seen, ["a-b/x", "a-b/y", "a/x", "a/y"]);
        });
    }
}
