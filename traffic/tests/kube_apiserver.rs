//! `KubeTraffic` against a real kube-apiserver (rollout-testenv) with the Istio, SMI and
//! Gateway API CRDs installed: every object the planners write is accepted by the CRD
//! validation, reads back with the desired weights, and a write that races another
//! writer is retried without losing the other writer's fields.

#![cfg(feature = "kube")]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Method, Request};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch as KubePatch, PatchParams, PostParams};
use kube::client::ClientBuilder;
use rollout_core::driver::Traffic;
use rollout_core::spec::{HeaderRoutingMatch, Rollout, SetHeaderRoute, StringMatch};
use rollout_core::traffic::{DesiredRoutes, TrafficCommand, Verification, Weights};
use rollout_testenv::TestEnv;
use rollout_traffic::kube::{ApplyError, KubeTraffic, resources};
use rollout_traffic::nginx::canary_ingress_name;
use rollout_traffic::smi::{SmiVersion, read_backends};
use serde_json::{Value, json};

const HOST_SPLIT: &str = include_str!("../../testenv/tests/fixtures/istio-host-split.yaml");
const WEIGHTS: [i32; 4] = [0, 20, 50, 100];

async fn setup(prefix: &str) -> (Arc<TestEnv>, Client, String) {
    let env = match TestEnv::shared().await {
        Ok(env) => env,
        Err(e) => panic!("test environment: {e}"),
    };
    let client = env.client().expect("client");
    let ns = env
        .create_namespace(&client, prefix)
        .await
        .expect("namespace");
    (env, client, ns)
}

fn api(client: &Client, ns: &str, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, resource)
}

async fn create(client: &Client, ns: &str, resource: &ApiResource, object: Value) {
    let obj: DynamicObject = serde_json::from_value(object).expect("object");
    api(client, ns, resource)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", resource.kind));
}

async fn get(client: &Client, ns: &str, resource: &ApiResource, name: &str) -> Value {
    let obj = api(client, ns, resource)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get {} {name}: {e}", resource.kind));
    serde_json::to_value(obj).expect("json")
}

fn fixture(kind: &str) -> Value {
    rollout_testenv::crds::parse_documents("istio-host-split.yaml", HOST_SPLIT)
        .expect("fixture")
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the fixture"))
}

/// A rollout manifest in `ns` with this `trafficRouting`.
fn rollout(ns: &str, routing: Value) -> Rollout {
    Rollout::from_json_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": { "name": "web", "namespace": ns },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "web:1" }] }
            },
            "strategy": { "canary": {
                "canaryService": "web-canary",
                "stableService": "web-stable",
                "trafficRouting": routing,
                "steps": [{ "setWeight": 20 }, { "pause": {} }]
            } }
        }
    }))
    .expect("rollout")
}

fn weights(canary: i32) -> DesiredRoutes {
    let mut d = DesiredRoutes::stable(100);
    d.weights = Weights::new(canary, 100);
    d
}

fn header_route(name: &str, value: &str) -> TrafficCommand {
    TrafficCommand::SetHeaderRoute(SetHeaderRoute {
        name: name.into(),
        r#match: vec![HeaderRoutingMatch {
            header_name: "x-beta".into(),
            header_value: StringMatch {
                exact: Some(value.into()),
                ..StringMatch::default()
            },
        }],
    })
}

/// `(host, weight)` of the destinations of the named HTTP route of a VirtualService.
fn vs_weights(vs: &Value, route: &str) -> Vec<(String, i64)> {
    let http = vs["spec"]["http"].as_array().expect("http routes");
    let r = http
        .iter()
        .find(|r| r["name"] == route)
        .unwrap_or_else(|| panic!("route {route} in {http:?}"));
    r["route"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| {
            (
                d["destination"]["host"].as_str().unwrap_or("").to_string(),
                d["weight"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// The fixture's VirtualService and Rollout, in `ns` (with `managedRoutes: [beta]`).
async fn istio_fixture(client: &Client, ns: &str) -> Rollout {
    let mut vs = fixture("VirtualService");
    vs["metadata"]["namespace"] = json!(ns);
    create(client, ns, &resources::virtual_service("v1alpha3"), vs).await;
    let mut ro = fixture("Rollout");
    ro["metadata"]["namespace"] = json!(ns);
    ro["spec"]["strategy"]["canary"]["trafficRouting"]["managedRoutes"] = json!([{"name": "beta"}]);
    Rollout::from_json_value(ro).expect("fixture rollout")
}

#[tokio::test]
async fn istio_virtual_service_weights_and_header_routes() {
    let (_env, client, ns) = setup("tr-istio").await;
    let ro = istio_fixture(&client, &ns).await;
    let mut port = KubeTraffic::new(client.clone());
    let vs_res = resources::virtual_service("v1beta1");
    let (stable, canary) = ("istio-host-split-stable", "istio-host-split-canary");

    for w in WEIGHTS {
        let v = port.reconcile(&ro, &weights(w)).await.expect("reconcile");
        assert_eq!(v, Verification::Verified, "weight {w}");
        let vs = get(&client, &ns, &vs_res, "istio-host-split-vsvc").await;
        assert_eq!(
            vs_weights(&vs, "primary"),
            [
                (stable.into(), i64::from(100 - w)),
                (canary.into(), i64::from(w))
            ]
        );
    }

    // A header route is accepted by the CRD and comes first; removing it restores the
    // single route.
    let mut desired = weights(20);
    desired.apply(&header_route("beta", "1"));
    let v = port.reconcile(&ro, &desired).await.expect("header route");
    assert_eq!(v, Verification::Verified);
    let vs = get(&client, &ns, &vs_res, "istio-host-split-vsvc").await;
    let http = vs["spec"]["http"].as_array().expect("http");
    assert_eq!(http.len(), 2);
    assert_eq!(http[0]["name"], "beta");
    assert_eq!(http[0]["match"][0]["headers"]["x-beta"]["exact"], "1");
    assert_eq!(vs_weights(&vs, "beta"), [(canary.into(), 100)]);
    assert_eq!(vs_weights(&vs, "primary")[1], (canary.into(), 20));

    // Nothing to change: reconciling again writes nothing (the resourceVersion stays).
    let rv = vs["metadata"]["resourceVersion"].clone();
    port.reconcile(&ro, &desired).await.expect("again");
    let vs = get(&client, &ns, &vs_res, "istio-host-split-vsvc").await;
    assert_eq!(vs["metadata"]["resourceVersion"], rv, "no write");

    desired.apply(&TrafficCommand::RemoveManagedRoutes);
    port.reconcile(&ro, &desired).await.expect("remove");
    let vs = get(&client, &ns, &vs_res, "istio-host-split-vsvc").await;
    assert_eq!(vs["spec"]["http"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn nginx_canary_ingress_is_created_and_weighted() {
    let (_env, client, ns) = setup("tr-nginx").await;
    let ing = resources::ingress();
    create(
        &client,
        &ns,
        &ing,
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": ns,
                         "annotations": {"team": "shop"}},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example.com",
                "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web-stable", "port": {"number": 80}}}}]}}]}
        }),
    )
    .await;
    let ro = rollout(&ns, json!({"nginx": {"stableIngress": "web"}}));
    let mut port = KubeTraffic::new(client.clone());
    let name = canary_ingress_name("web", "web");

    for w in WEIGHTS {
        let v = port.reconcile(&ro, &weights(w)).await.expect("reconcile");
        assert_eq!(v, Verification::Verified, "weight {w}");
        let canary = get(&client, &ns, &ing, &name).await;
        let ann = &canary["metadata"]["annotations"];
        assert_eq!(ann["nginx.ingress.kubernetes.io/canary"], "true");
        assert_eq!(
            ann["nginx.ingress.kubernetes.io/canary-weight"],
            w.to_string()
        );
        assert_eq!(
            canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            "web-canary"
        );
    }
    // The stable Ingress is read, never written.
    let stable = get(&client, &ns, &ing, "web").await;
    assert_eq!(stable["metadata"]["generation"], 1);
}

#[tokio::test]
async fn smi_traffic_splits_of_every_version() {
    let (_env, client, ns) = setup("tr-smi").await;
    for (version, tag) in [
        (SmiVersion::V1Alpha1, "a1"),
        (SmiVersion::V1Alpha2, "a2"),
        (SmiVersion::V1Alpha3, "a3"),
    ] {
        let split = format!("web-{tag}");
        let ro = rollout(
            &ns,
            json!({"smi": {"rootService": "web", "trafficSplitName": split}}),
        );
        let mut port = KubeTraffic::new(client.clone()).with_smi_version(version);
        for w in WEIGHTS {
            let v = port.reconcile(&ro, &weights(w)).await.expect("reconcile");
            assert_eq!(v, Verification::Verified, "{tag} weight {w}");
            let ts = get(&client, &ns, &resources::traffic_split(version), &split).await;
            assert_eq!(ts["apiVersion"], version.api_version());
            assert_eq!(ts["spec"]["service"], "web");
            assert_eq!(
                read_backends(&ts),
                [
                    ("web-canary".to_string(), i64::from(w)),
                    ("web-stable".to_string(), i64::from(100 - w))
                ],
                "{tag} weight {w}"
            );
        }
    }
}

async fn http_route_fixture(client: &Client, ns: &str) -> Rollout {
    create(
        client,
        ns,
        &resources::http_route("v1"),
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"parentRefs": [{"name": "gateway"}], "hostnames": ["web.example.com"],
                "rules": [{"backendRefs": [
                    {"name": "web-stable", "port": 80, "weight": 100},
                    {"name": "web-canary", "port": 80, "weight": 0}]}]}
        }),
    )
    .await;
    rollout(
        ns,
        json!({"managedRoutes": [{"name": "beta"}],
               "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "web", "namespace": ns}}}),
    )
}

fn backend_weights(route: &Value, rule: usize) -> Vec<(String, i64)> {
    route["spec"]["rules"][rule]["backendRefs"]
        .as_array()
        .expect("backendRefs")
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap_or("").to_string(),
                b["weight"].as_i64().unwrap_or(1),
            )
        })
        .collect()
}

#[tokio::test]
async fn gateway_http_route_weights_and_header_routes() {
    let (_env, client, ns) = setup("tr-gateway").await;
    let ro = http_route_fixture(&client, &ns).await;
    let mut port = KubeTraffic::new(client.clone()).with_gateway_version("v1");
    let res = resources::http_route("v1");

    for w in WEIGHTS {
        let v = port.reconcile(&ro, &weights(w)).await.expect("reconcile");
        assert_eq!(v, Verification::Verified, "weight {w}");
        let route = get(&client, &ns, &res, "web").await;
        assert_eq!(
            backend_weights(&route, 0),
            [
                ("web-stable".to_string(), i64::from(100 - w)),
                ("web-canary".to_string(), i64::from(w))
            ]
        );
    }

    // The header rule is accepted by the CRD validation (and verifies after the API
    // server's defaulting: the test below).
    let mut desired = weights(50);
    desired.apply(&header_route("beta", "1"));
    port.reconcile(&ro, &desired).await.expect("header route");
    let route = get(&client, &ns, &res, "web").await;
    let rules = route["spec"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert_eq!(rules[0]["matches"][0]["headers"][0]["name"], "x-beta");
    assert_eq!(rules[0]["backendRefs"][0]["name"], "web-canary");
    assert_eq!(
        backend_weights(&route, 1)[1],
        ("web-canary".to_string(), 50)
    );

    desired.apply(&TrafficCommand::RemoveManagedRoutes);
    let v = port.reconcile(&ro, &desired).await.expect("remove");
    assert_eq!(v, Verification::Verified);
    let route = get(&client, &ns, &res, "web").await;
    assert_eq!(route["spec"]["rules"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn gateway_header_route_verifies_after_api_server_defaulting() {
    let (_env, client, ns) = setup("tr-gateway-defaults").await;
    let ro = http_route_fixture(&client, &ns).await;
    let mut port = KubeTraffic::new(client.clone());
    let mut desired = weights(50);
    desired.apply(&header_route("beta", "1"));
    let v = port.reconcile(&ro, &desired).await.expect("header route");
    assert_eq!(v, Verification::Verified);
    let res = resources::http_route("v1");
    let rv = get(&client, &ns, &res, "web").await["metadata"]["resourceVersion"].clone();
    port.reconcile(&ro, &desired).await.expect("again");
    let after = get(&client, &ns, &res, "web").await;
    assert_eq!(after["metadata"]["resourceVersion"], rv, "no rewrite");
    // `verify` reads only: the defaulted rule verifies, a different weight does not.
    assert_eq!(
        port.verify(&ro, &desired).await.expect("verify"),
        Verification::Verified
    );
    let v = port.verify(&ro, &weights(20)).await.expect("verify");
    assert!(matches!(v, Verification::NotVerified(_)), "{v:?}");
    let again = get(&client, &ns, &res, "web").await;
    assert_eq!(
        again["metadata"]["resourceVersion"], rv,
        "verify wrote nothing"
    );
}

// --- a concurrent writer, injected between the port's read and its write ---

type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A client layer that runs `hook` (once) before the first PATCH whose path ends with
/// `suffix` is sent, and counts those PATCHes: another writer's edit lands exactly
/// between the port's read and its write.
#[derive(Clone)]
struct BeforePatch {
    suffix: String,
    hook: Arc<Mutex<Option<Hook>>>,
    patches: Arc<AtomicUsize>,
}

struct BeforePatchService<S> {
    inner: S,
    cfg: BeforePatch,
}

impl<S> tower::Layer<S> for BeforePatch {
    type Service = BeforePatchService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BeforePatchService {
            inner,
            cfg: self.clone(),
        }
    }
}

impl<S, B> tower::Service<Request<B>> for BeforePatchService<S>
where
    S: tower::Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let hook = if req.method() == Method::PATCH && req.uri().path().ends_with(&self.cfg.suffix)
        {
            self.cfg.patches.fetch_add(1, Ordering::SeqCst);
            self.cfg.hook.lock().expect("hook lock").take()
        } else {
            None
        };
        // The request is sent when this future is first polled, after the hook ran.
        let sent = self.inner.call(req);
        Box::pin(async move {
            if let Some(hook) = hook {
                hook.await;
            }
            sent.await
        })
    }
}

/// Another team's writer: inserts a route of its own before `primary` and sets
/// `retries` on `primary`.
fn other_writer(client: Client, ns: String) -> Hook {
    Box::pin(async move {
        let patch: json_patch::Patch = serde_json::from_value(json!([
            {"op": "add", "path": "/spec/http/0", "value": {"name": "admin",
                "match": [{"uri": {"prefix": "/admin"}}],
                "route": [{"destination": {"host": "admin"}}]}},
            {"op": "add", "path": "/spec/http/1/retries", "value": {"attempts": 3}},
        ]))
        .expect("patch");
        api(&client, &ns, &resources::virtual_service("v1beta1"))
            .patch(
                "istio-host-split-vsvc",
                &PatchParams::default(),
                &KubePatch::Json::<()>(patch),
            )
            .await
            .expect("the other writer's patch");
    })
}

fn intercepted(env: &TestEnv, layer: &BeforePatch) -> Client {
    ClientBuilder::try_from(env.config().clone())
        .expect("client builder")
        .with_layer(layer)
        .build()
}

#[tokio::test]
async fn a_write_that_races_another_writer_is_retried_and_keeps_its_fields() {
    let (env, client, ns) = setup("tr-race").await;
    let ro = istio_fixture(&client, &ns).await;
    let layer = BeforePatch {
        suffix: "/virtualservices/istio-host-split-vsvc".into(),
        hook: Arc::new(Mutex::new(Some(other_writer(client.clone(), ns.clone())))),
        patches: Arc::new(AtomicUsize::new(0)),
    };
    let mut port = KubeTraffic::new(intercepted(&env, &layer));

    let v = port.reconcile(&ro, &weights(20)).await.expect("retried");
    assert_eq!(v, Verification::Verified);
    assert_eq!(
        layer.patches.load(Ordering::SeqCst),
        2,
        "the first patch failed its test, the second was planned on a fresh read"
    );
    let vs = get(
        &client,
        &ns,
        &resources::virtual_service("v1beta1"),
        "istio-host-split-vsvc",
    )
    .await;
    let http = vs["spec"]["http"].as_array().expect("http");
    assert_eq!(
        http[0]["name"], "admin",
        "the other writer's route survived"
    );
    assert_eq!(http[1]["retries"]["attempts"], 3, "and its field");
    assert_eq!(
        vs_weights(&vs, "primary"),
        [
            ("istio-host-split-stable".to_string(), 80),
            ("istio-host-split-canary".to_string(), 20)
        ]
    );
}

#[tokio::test]
async fn without_retries_a_lost_race_is_a_typed_error_and_nothing_is_written() {
    let (env, client, ns) = setup("tr-race0").await;
    let ro = istio_fixture(&client, &ns).await;
    let layer = BeforePatch {
        suffix: "/virtualservices/istio-host-split-vsvc".into(),
        hook: Arc::new(Mutex::new(Some(other_writer(client.clone(), ns.clone())))),
        patches: Arc::new(AtomicUsize::new(0)),
    };
    let mut port = KubeTraffic::new(intercepted(&env, &layer)).with_conflict_retries(0);

    let err = port
        .reconcile(&ro, &weights(20))
        .await
        .expect_err("lost race");
    assert!(matches!(&err, ApplyError::Rejected { .. }), "{err}");
    let vs = get(
        &client,
        &ns,
        &resources::virtual_service("v1beta1"),
        "istio-host-split-vsvc",
    )
    .await;
    assert_eq!(
        vs_weights(&vs, "primary"),
        [
            ("istio-host-split-stable".to_string(), 100),
            ("istio-host-split-canary".to_string(), 0)
        ],
        "the rejected patch changed nothing"
    );
    // The next pass (a fresh read) succeeds.
    let v = port.reconcile(&ro, &weights(20)).await.expect("next pass");
    assert_eq!(v, Verification::Verified);
}

#[tokio::test]
async fn a_missing_routing_object_is_a_typed_error() {
    let (_env, client, ns) = setup("tr-missing").await;
    let ro = rollout(
        &ns,
        json!({"istio": {"virtualService": {"name": "nope", "routes": ["primary"]}}}),
    );
    let mut port = KubeTraffic::new(client);
    let err = port
        .reconcile(&ro, &weights(20))
        .await
        .expect_err("missing");
    assert!(matches!(err, ApplyError::Plan(_)), "{err}");
}
