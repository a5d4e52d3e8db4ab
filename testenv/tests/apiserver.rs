//! Tests against a real kube-apiserver + etcd started by the fixture.
//!
//! All tests but the lifecycle ones share one environment per test binary
//! (`TestEnv::shared`) and work in namespaces of their own.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use rollout_testenv::{BuildPolicy, Error, Options, ReplicaCounts, TestEnv, kinds};
use serde_json::json;

const HOST_SPLIT: &str = include_str!("fixtures/istio-host-split.yaml");

async fn setup(prefix: &str) -> (std::sync::Arc<TestEnv>, Client, String) {
    let env = match TestEnv::shared().await {
        Ok(env) => env,
        Err(e) => panic!("{}", report(&e)),
    };
    let client = env.client().expect("client");
    let ns = env
        .create_namespace(&client, prefix)
        .await
        .expect("namespace");
    (env, client, ns)
}

/// The error and its sources, one per line.
fn report(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    out
}

fn api_status(e: &kube::Error) -> &kube::core::Status {
    match e {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rollout(name: &str, replicas: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] }
            },
            "strategy": { "canary": { "steps": [{ "setWeight": 20 }, { "pause": {} }] } }
        }
    }))
    .expect("rollout object")
}

fn route_weights(vs: &DynamicObject) -> Vec<i64> {
    vs.data["spec"]["http"][0]["route"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|r| r["weight"].as_i64().unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn namespace_create_and_get() {
    let (_env, client, ns) = setup("ns").await;
    let api: Api<Namespace> = Api::all(client);
    let got = api.get(&ns).await.expect("get namespace");
    assert_eq!(got.metadata.name.as_deref(), Some(ns.as_str()));
    assert!(got.metadata.uid.is_some());
}

#[tokio::test]
async fn crds_are_installed_and_established() {
    let (env, client, _ns) = setup("crds").await;
    let api: Api<CustomResourceDefinition> = Api::all(client);
    for name in [
        "rollouts.argoproj.io",
        "analysisruns.argoproj.io",
        "analysistemplates.argoproj.io",
        "clusteranalysistemplates.argoproj.io",
        "experiments.argoproj.io",
        "virtualservices.networking.istio.io",
        "destinationrules.networking.istio.io",
        "httproutes.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
        "gatewayclasses.gateway.networking.k8s.io",
        "trafficsplits.split.smi-spec.io",
        "canaries.flagger.app",
        "metrictemplates.flagger.app",
    ] {
        assert!(
            env.installed_crds().iter().any(|n| n == name),
            "{name} not installed"
        );
        let crd = api.get(name).await.expect(name);
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "{name} not Established");
    }
}

#[tokio::test]
async fn corpus_rollout_is_accepted_and_invalid_rollout_rejected_with_422() {
    let (_env, client, ns) = setup("validation").await;
    let created = rollout_testenv::create_manifests(&client, &ns, HOST_SPLIT)
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let kinds_made: Vec<_> = created
        .iter()
        .filter_map(|o| o.types.as_ref().map(|t| t.kind.clone()))
        .collect();
    assert_eq!(
        kinds_made,
        ["Service", "Service", "VirtualService", "Rollout"]
    );

    let rollouts: Api<DynamicObject> = Api::namespaced_with(client, &ns, &kinds::rollout());
    let got = rollouts
        .get("istio-host-split")
        .await
        .expect("get corpus rollout");
    assert_eq!(
        got.data["spec"]["strategy"]["canary"]["trafficRouting"]["istio"]["virtualService"]["name"],
        "istio-host-split-vsvc"
    );

    let err = rollouts
        .create(
            &PostParams::default(),
            &rollout("bad-replicas", json!("three")),
        )
        .await
        .expect_err("a string replica count must be rejected by the CRD schema");
    let status = api_status(&err);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(status.is_invalid(), "{status:?}");
    assert!(
        status.message.contains("spec.replicas"),
        "{}",
        status.message
    );

    // The fixture's own error type exposes the same status.
    let wrapped = Error::Kube {
        context: "creating".to_owned(),
        source: err,
    };
    assert_eq!(wrapped.api_status().map(|s| s.code), Some(422));
}

#[tokio::test]
async fn rollout_status_goes_through_the_status_subresource() {
    let (_env, client, ns) = setup("status").await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &kinds::rollout());
    let made = api
        .create(&PostParams::default(), &rollout("web", json!(3)))
        .await
        .expect("create rollout");
    let generation = made.metadata.generation;

    let status = json!({ "status": {
        "phase": "Progressing",
        "message": "more replicas need to be updated",
        "currentStepIndex": 1,
        "replicas": 3,
        "updatedReplicas": 1,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "observedGeneration": "1",
        "canary": { "weights": { "canary": { "weight": 20, "podTemplateHash": "abc" }, "stable": { "weight": 80, "podTemplateHash": "def" } } }
    }});
    let after = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status patch");
    assert_eq!(after.data["status"]["phase"], "Progressing");
    assert_eq!(after.data["status"]["currentStepIndex"], 1);
    assert_eq!(
        after.metadata.generation, generation,
        "a status write does not bump the generation"
    );

    // Through the main resource, status is ignored and spec changes apply.
    let mut edited = after.clone();
    edited.data["status"]["phase"] = json!("Healthy");
    edited.data["spec"]["replicas"] = json!(5);
    let replaced = api
        .replace("web", &PostParams::default(), &edited)
        .await
        .expect("replace");
    assert_eq!(replaced.data["status"]["phase"], "Progressing");
    assert_eq!(replaced.data["spec"]["replicas"], 5);
    assert!(replaced.metadata.generation > generation);

    // And through the status subresource, spec changes are ignored.
    let spec_via_status = json!({ "spec": { "replicas": 9 }, "status": { "phase": "Healthy" } });
    let after = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&spec_via_status),
        )
        .await
        .expect("status");
    assert_eq!(after.data["status"]["phase"], "Healthy");
    assert_eq!(after.data["spec"]["replicas"], 5);
}

#[tokio::test]
async fn virtual_service_merge_patch_and_json_patch() {
    let (_env, client, ns) = setup("patch").await;
    rollout_testenv::create_manifests(&client, &ns, HOST_SPLIT)
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &kinds::virtual_service());
    let name = "istio-host-split-vsvc";
    assert_eq!(route_weights(&api.get(name).await.expect("get")), [100, 0]);

    // A merge patch replaces lists whole and merges maps.
    let merge = json!({
        "metadata": { "labels": { "touched-by": "merge" } },
        "spec": { "http": [{ "name": "primary", "route": [
            { "destination": { "host": "istio-host-split-stable" }, "weight": 80 },
            { "destination": { "host": "istio-host-split-canary" }, "weight": 20 }
        ]}]}
    });
    let after = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&merge))
        .await
        .expect("merge patch");
    assert_eq!(route_weights(&after), [80, 20]);
    assert_eq!(
        after.data["spec"]["hosts"],
        json!(["istio-host-split"]),
        "merge keeps untouched fields"
    );
    assert_eq!(
        after
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("touched-by"))
            .map(String::as_str),
        Some("merge")
    );

    // A JSON patch with a test op guards the write against a concurrent change.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/spec/http/0/route/1/weight", "value": 20 },
        { "op": "replace", "path": "/spec/http/0/route/0/weight", "value": 50 },
        { "op": "replace", "path": "/spec/http/0/route/1/weight", "value": 50 }
    ]))
    .expect("json patch");
    let after = api
        .patch(name, &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .expect("json patch");
    assert_eq!(route_weights(&after), [50, 50]);

    let stale: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/spec/http/0/route/1/weight", "value": 20 },
        { "op": "replace", "path": "/spec/http/0/route/1/weight", "value": 100 }
    ]))
    .expect("json patch");
    let err = api
        .patch(name, &PatchParams::default(), &Patch::Json::<()>(stale))
        .await
        .expect_err("failed test op");
    let status = api_status(&err);
    assert_eq!(status.code, 422, "{status:?}");
    assert_eq!(
        route_weights(&api.get(name).await.expect("get")),
        [50, 50],
        "a failed JSON patch writes nothing"
    );

    // The CRD schema also applies to patches: a weight must be an integer.
    let bad = json!({ "spec": { "http": [{ "route": [{ "destination": { "host": "x" }, "weight": "half" }] }] } });
    let err = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&bad))
        .await
        .expect_err("schema");
    assert!(api_status(&err).is_invalid(), "{err:?}");
}

#[tokio::test]
async fn server_side_apply_on_http_route_and_traffic_split() {
    let (_env, client, ns) = setup("ssa").await;
    let routes: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &kinds::http_route());
    let route = |canary: i64| {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": { "name": "web" },
            "spec": {
                "parentRefs": [{ "name": "gateway" }],
                "rules": [{ "backendRefs": [
                    { "name": "web-stable", "port": 80, "weight": 100 - canary },
                    { "name": "web-canary", "port": 80, "weight": canary }
                ]}]
            }
        })
    };
    let router = PatchParams::apply("rollout-router");
    let applied = routes
        .patch("web", &router, &Patch::Apply(route(0)))
        .await
        .expect("apply");
    assert_eq!(
        applied.data["spec"]["rules"][0]["backendRefs"][1]["weight"],
        0
    );
    let applied = routes
        .patch("web", &router, &Patch::Apply(route(20)))
        .await
        .expect("re-apply");
    assert_eq!(
        applied.data["spec"]["rules"][0]["backendRefs"][1]["weight"],
        20
    );

    // Another field manager setting the same fields conflicts unless it forces.
    let other = PatchParams::apply("someone-else");
    let err = routes
        .patch("web", &other, &Patch::Apply(route(50)))
        .await
        .expect_err("conflict");
    assert_eq!(api_status(&err).code, 409, "{err:?}");
    let forced = routes
        .patch("web", &other.clone().force(), &Patch::Apply(route(50)))
        .await
        .expect("forced apply");
    assert_eq!(
        forced.data["spec"]["rules"][0]["backendRefs"][1]["weight"],
        50
    );

    // The Gateway API schema bounds weights.
    let err = routes
        .patch("web", &router.clone().force(), &Patch::Apply(route(-1)))
        .await
        .expect_err("negative weight");
    assert!(api_status(&err).is_invalid(), "{err:?}");

    // SMI TrafficSplit in the versions the routers write: v1alpha1 weights are quantities.
    for (version, canary) in [
        ("v1alpha1", json!("200m")),
        ("v1alpha2", json!(20)),
        ("v1alpha3", json!(20)),
    ] {
        let gvk = kube::core::GroupVersionKind::gvk("split.smi-spec.io", version, "TrafficSplit");
        let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, "trafficsplits");
        let splits: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
        let name = format!("web-{version}");
        let split: DynamicObject = serde_json::from_value(json!({
            "apiVersion": format!("split.smi-spec.io/{version}"),
            "kind": "TrafficSplit",
            "metadata": { "name": name },
            "spec": { "service": "web", "backends": [
                { "service": "web-stable", "weight": if version == "v1alpha1" { json!("800m") } else { json!(80) } },
                { "service": "web-canary", "weight": canary }
            ]}
        }))
        .expect("split");
        let made = splits
            .create(&PostParams::default(), &split)
            .await
            .expect("create TrafficSplit");
        assert_eq!(
            made.data["spec"]["backends"][1]["weight"], canary,
            "{version}"
        );
    }
}

#[tokio::test]
async fn stale_resource_version_is_a_409_conflict() {
    let (_env, client, ns) = setup("conflict").await;
    rollout_testenv::create_manifests(&client, &ns, HOST_SPLIT)
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &kinds::virtual_service());
    let name = "istio-host-split-vsvc";
    let read = api.get(name).await.expect("get");

    // Another writer gets in first.
    let mut first = read.clone();
    first.data["spec"]["http"][0]["route"][1]["weight"] = json!(10);
    first.data["spec"]["http"][0]["route"][0]["weight"] = json!(90);
    api.replace(name, &PostParams::default(), &first)
        .await
        .expect("first writer");

    // Our write, based on the older read, is refused.
    let mut second = read;
    second.data["spec"]["http"][0]["route"][1]["weight"] = json!(30);
    second.data["spec"]["http"][0]["route"][0]["weight"] = json!(70);
    let err = api
        .replace(name, &PostParams::default(), &second)
        .await
        .expect_err("stale resourceVersion");
    let status = api_status(&err);
    assert_eq!(status.code, 409, "{status:?}");
    assert!(status.is_conflict());
    assert_eq!(
        route_weights(&api.get(name).await.expect("get")),
        [90, 10],
        "the first writer's change stands"
    );
}

#[tokio::test]
async fn watch_sees_a_change() {
    let (_env, client, ns) = setup("watch").await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &kinds::rollout());
    let made = api
        .create(&PostParams::default(), &rollout("watched", json!(1)))
        .await
        .expect("create");
    let rv = made
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion");

    let params = WatchParams::default()
        .fields("metadata.name=watched")
        .timeout(20);
    let mut events = api.watch(&params, &rv).await.expect("watch").boxed();
    api.patch(
        "watched",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "spec": { "replicas": 4 } })),
    )
    .await
    .expect("patch");

    let seen = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.try_next().await.expect("watch stream") {
            if let WatchEvent::Modified(obj) = event {
                return Some(obj);
            }
        }
        None
    })
    .await
    .expect("no watch event within 15s")
    .expect("watch ended without a Modified event");
    assert_eq!(seen.data["spec"]["replicas"], 4);
    assert_ne!(seen.metadata.resource_version.as_deref(), Some(rv.as_str()));
}

#[tokio::test]
async fn data_plane_sets_replicaset_and_pod_status() {
    let (env, client, ns) = setup("dataplane").await;
    let dp = env.data_plane().expect("data plane");
    let labels = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
    dp.create_replicaset(&ns, "web-abc", &labels, 3)
        .await
        .expect("create rs");

    let rs = dp
        .set_replicaset_status(
            &ns,
            "web-abc",
            ReplicaCounts {
                replicas: 3,
                ready: 2,
                available: 1,
            },
        )
        .await
        .expect("status");
    let status = rs.status.expect("status");
    assert_eq!(
        (
            status.replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (3, Some(2), Some(1))
    );
    assert_eq!(status.observed_generation, rs.metadata.generation);

    // Scale up, then report all replicas ready, as a controller-manager would.
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    api.patch(
        "web-abc",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "spec": { "replicas": 5 } })),
    )
    .await
    .expect("scale");
    let rs = dp
        .make_replicaset_ready(&ns, "web-abc")
        .await
        .expect("ready");
    let status = rs.status.expect("status");
    assert_eq!(
        (
            status.replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (5, Some(5), Some(5))
    );

    // Pods: no kubelet runs, so readiness is written by hand.
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "web-abc-1", "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] }
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let ready = dp
        .set_pod_ready(&ns, "web-abc-1", true)
        .await
        .expect("pod ready");
    let status = ready.status.expect("pod status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let cond = status.conditions.unwrap_or_default();
    assert!(
        cond.iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "{cond:?}"
    );
}

#[tokio::test]
async fn missing_binaries_fail_with_a_clear_error() {
    let empty = tempfile::tempdir().expect("tempdir");
    let mut options = Options::without_crds();
    options.bin_dir = empty.path().to_path_buf();
    options.build = BuildPolicy::Never;
    let err = TestEnv::start_with(options).await.expect_err("no binaries");
    assert!(matches!(err, Error::BinariesMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("kube-apiserver") && message.contains("build.sh"),
        "{message}"
    );
}

/// The servers stop when the environment is dropped: nothing keeps listening.
#[tokio::test]
async fn servers_stop_on_drop() {
    let env = TestEnv::start_with(Options::without_crds())
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    assert!(env.installed_crds().is_empty());
    let client = env.client().expect("client");
    let api: Api<Namespace> = Api::all(client);
    api.get("default")
        .await
        .expect("the default namespace exists");

    let api_port = port_of(env.server_url());
    let etcd_port = port_of(env.etcd_url());
    let groups = env.process_groups();
    let dir = env.dir().to_path_buf();
    assert!(std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok());

    // Nothing listens beyond loopback.
    let listening = listening_addresses(&groups);
    assert!(
        listening.len() >= 3,
        "expected etcd (client, peer) and the API server: {listening:?}"
    );
    for addr in &listening {
        assert_eq!(
            addr.0, "0100007F",
            "a server listens on a non-loopback address: {listening:?}"
        );
    }
    assert!(
        listening.iter().any(|a| a.1 == api_port) && listening.iter().any(|a| a.1 == etcd_port)
    );
    drop(env);

    for port in [api_port, etcd_port] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
    for group in groups {
        let alive = std::process::Command::new("kill")
            .args(["-0", "--", &format!("-{group}")])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("kill -0")
            .success();
        assert!(!alive, "process group {group} still alive");
    }
    assert!(!dir.exists(), "{} not removed", dir.display());
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// `(hex address, port)` of the TCP sockets that processes of the given process
/// groups listen on, read from /proc (IPv6 addresses show up in full hex, so
/// any of them fails the loopback check above).
fn listening_addresses(groups: &[u32]) -> Vec<(String, u16)> {
    let mut inodes = std::collections::HashSet::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let pgrp: u32 = rest
            .split_whitespace()
            .nth(2)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if !groups.contains(&pgrp) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is column 1, st column 3 (0A = LISTEN), inode column 9.
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                let (addr, port) = cols[1].split_once(':').expect("address:port");
                out.push((
                    addr.to_owned(),
                    u16::from_str_radix(port, 16).expect("port"),
                ));
            }
        }
    }
    out
}
