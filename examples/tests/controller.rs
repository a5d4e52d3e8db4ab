//! End-to-end: the `controller` example against a real kube-apiserver (and a real
//! Prometheus), with the Argo Rollouts, Istio, Gateway API and SMI CRDs installed.
//!
//! No kubelet or ReplicaSet controller runs: a data-plane task reports every
//! ReplicaSet's desired replicas as ready and available through the status
//! subresource, as those would. Routing objects are read back from the API server
//! through watches, so every weight a test sees was accepted by the CRD validation.
//! Each test works in a namespace of its own on one shared API server.

#[path = "../common/controller.rs"]
#[allow(dead_code)]
mod controller;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use rollout_testenv::{TestEnv, create_manifests, kinds};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

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

struct Fixture {
    env: Arc<TestEnv>,
    client: Client,
    ns: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn fixture(prefix: &str) -> Fixture {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let client = env.client().expect("client");
    let ns = env
        .create_namespace(&client, prefix)
        .await
        .expect("namespace");
    let mut fx = Fixture {
        env,
        client,
        ns,
        tasks: Vec::new(),
    };
    fx.tasks.push(data_plane(&fx));
    fx
}

/// Plays kubelet and the ReplicaSet controller: every ReplicaSet's desired replicas
/// become ready and available shortly after they are asked for.
fn data_plane(fx: &Fixture) -> JoinHandle<()> {
    let dp = fx.env.data_plane().expect("data plane");
    let api: Api<ReplicaSet> = Api::namespaced(fx.client.clone(), &fx.ns);
    let ns = fx.ns.clone();
    tokio::spawn(async move {
        loop {
            if let Ok(list) = api.list(&ListParams::default()).await {
                for rs in list {
                    let want = rs.spec.replicas.unwrap_or(1);
                    let st = rs.status.clone().unwrap_or_default();
                    if st.replicas != want || st.available_replicas.unwrap_or(0) != want {
                        let _ = dp
                            .set_replicaset_status(
                                &ns,
                                &rs.name_any(),
                                rollout_testenv::ReplicaCounts::all(want),
                            )
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    })
}

fn start_controller(fx: &Fixture) -> JoinHandle<()> {
    let mut ctx = controller::Context::new(fx.client.clone());
    ctx.verbose = std::env::var_os("CONTROLLER_LOG").is_some();
    let ctx = Arc::new(ctx);
    let ns = fx.ns.clone();
    tokio::spawn(async move { controller::run(ctx, Some(&ns)).await })
}

fn rollouts(fx: &Fixture) -> Api<DynamicObject> {
    Api::namespaced_with(fx.client.clone(), &fx.ns, &kinds::rollout())
}

/// Records a value derived from every version of one object the API server reports.
fn record<F>(
    api: Api<DynamicObject>,
    name: &str,
    extract: F,
) -> (Arc<Mutex<Vec<Value>>>, JoinHandle<()>)
where
    F: Fn(&Value) -> Option<Value> + Send + 'static,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, config).applied_objects().boxed();
        while let Some(item) = stream.next().await {
            let Ok(obj) = item else { continue };
            let Ok(value) = serde_json::to_value(&obj) else {
                continue;
            };
            if let Some(v) = extract(&value) {
                let mut s = out.lock().unwrap();
                if s.last() != Some(&v) {
                    s.push(v);
                }
            }
        }
    });
    (seen, task)
}

async fn rollout_status(fx: &Fixture, name: &str) -> Value {
    let obj = rollouts(fx).get(name).await.expect("rollout");
    obj.data.get("status").cloned().unwrap_or(Value::Null)
}

/// Waits until the rollout's status satisfies `done`, for at most `secs`.
async fn wait_for(
    fx: &Fixture,
    name: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = rollout_status(fx, name).await;
        if done(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "rollout {name} not {what} after {secs} s; status: {st:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn healthy_at(st: &Value, hash: Option<&str>) -> bool {
    st["phase"] == "Healthy"
        && st["stableRS"].is_string()
        && st["stableRS"] == st["currentPodHash"]
        && hash.is_none_or(|h| st["stableRS"] != h)
}

async fn set_image(fx: &Fixture, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}});
    rollouts(fx)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("set image");
}

fn services(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {n}}}\nspec:\n  ports: [{{port: 80, name: http}}]\n  selector: {{app: web}}\n---\n"
            )
        })
        .collect()
}

fn rollout_manifest(strategy: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 4
  revisionHistoryLimit: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: "web:1"}}]}}
  strategy:
{strategy}"#
    )
}

/// Which router a canary scenario uses, and where its canary weight is read.
#[derive(Clone, Copy, Debug)]
enum Router {
    Istio,
    Nginx,
    Smi,
    Gateway,
}

impl Router {
    fn routing(self, ns: &str) -> String {
        match self {
            Router::Istio => {
                "        istio: {virtualService: {name: web, routes: [primary]}}".into()
            }
            Router::Nginx => "        nginx: {stableIngress: web}".into(),
            Router::Smi => "        smi: {rootService: web, trafficSplitName: web}".into(),
            Router::Gateway => format!(
                "        plugins:\n          argoproj-labs/gatewayAPI: {{httpRoute: web, namespace: {ns}}}"
            ),
        }
    }

    fn objects(self) -> String {
        match self {
            Router::Istio => r#"apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - name: primary
    route:
    - destination: {host: web-stable}
      weight: 100
    - destination: {host: web-canary}
      weight: 0
"#
            .into(),
            Router::Nginx => r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, annotations: {kubernetes.io/ingress.class: nginx}}
spec:
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web-stable, port: {number: 80}}}
"#
            .into(),
            Router::Smi => services(&["web"]),
            Router::Gateway => r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gateway}]
  rules:
  - backendRefs:
    - {name: web-stable, port: 80, weight: 100}
    - {name: web-canary, port: 80, weight: 0}
"#
            .into(),
        }
    }

    /// The object the router writes and the canary weight in it.
    fn watched(self, fx: &Fixture) -> (Api<DynamicObject>, &'static str) {
        let c = fx.client.clone();
        let ns = &fx.ns;
        match self {
            Router::Istio => (
                Api::namespaced_with(c, ns, &kinds::virtual_service()),
                "web",
            ),
            Router::Nginx => (
                Api::namespaced_with(c, ns, &rollout_traffic::kube::resources::ingress()),
                "web-web-canary",
            ),
            Router::Smi => (
                Api::namespaced_with(
                    c,
                    ns,
                    &rollout_traffic::kube::resources::traffic_split(
                        rollout_traffic::smi::SmiVersion::default(),
                    ),
                ),
                "web",
            ),
            Router::Gateway => (Api::namespaced_with(c, ns, &kinds::http_route()), "web"),
        }
    }

    fn canary_weight(self, obj: &Value) -> Option<Value> {
        let w = match self {
            Router::Istio => obj["spec"]["http"][0]["route"]
                .as_array()?
                .iter()
                .find(|r| r["destination"]["host"] == "web-canary")?["weight"]
                .as_i64()
                .unwrap_or(0),
            Router::Nginx => {
                obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"]
                    .as_str()?
                    .parse()
                    .ok()?
            }
            // v1alpha1 weights are quantities: strings.
            Router::Smi => {
                let w = &obj["spec"]["backends"]
                    .as_array()?
                    .iter()
                    .find(|b| b["service"] == "web-canary")?["weight"];
                w.as_i64()
                    .or_else(|| w.as_str().and_then(|s| s.parse().ok()))
                    .unwrap_or(0)
            }
            Router::Gateway => obj["spec"]["rules"][0]["backendRefs"]
                .as_array()?
                .iter()
                .find(|b| b["name"] == "web-canary")?["weight"]
                .as_i64()
                .unwrap_or(0),
        };
        Some(json!(w))
    }
}

const CANARY_STEPS: &str = "      steps:
      - setWeight: 20
      - pause: {duration: 1s}
      - setWeight: 50
      - pause: {duration: 1s}
";

/// A canary through `router`: the initial release becomes stable, then an image change
/// moves through 20% and 50% to promotion. Returns the weights read back and the
/// canary ReplicaSet's replica counts.
async fn routed_canary(
    router: Router,
    prefix: &str,
    crash_every: Option<(u64, u64)>,
) -> (Vec<Value>, Vec<Value>, Value) {
    let mut fx = fixture(prefix).await;
    let strategy = format!(
        "    canary:\n      canaryService: web-canary\n      stableService: web-stable\n      trafficRouting:\n{}\n{CANARY_STEPS}",
        router.routing(&fx.ns)
    );
    let manifests = format!(
        "{}{}---\n{}",
        services(&["web-stable", "web-canary"]),
        router.objects(),
        rollout_manifest(&strategy)
    );
    create_manifests(&fx.client, &fx.ns, &manifests)
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let (api, name) = router.watched(&fx);
    let (weights, w_task) = record(api, name, move |o| router.canary_weight(o));
    fx.tasks.push(w_task);
    let mut controller = start_controller(&fx);

    let first = wait_for(&fx, "web", 60, "Healthy", |s| healthy_at(s, None)).await;
    let old = first["stableRS"].as_str().unwrap().to_string();
    weights.lock().unwrap().clear();

    let rs_api: Api<DynamicObject> = Api::namespaced_with(
        fx.client.clone(),
        &fx.ns,
        &kube::api::ApiResource::erase::<ReplicaSet>(&()),
    );
    set_image(&fx, "web", "web:2").await;
    // The canary ReplicaSet's name is known once the new status names its hash.
    let st = wait_for(&fx, "web", 30, "updating", |s| {
        s["currentPodHash"].is_string() && s["currentPodHash"] != old.as_str()
    })
    .await;
    let new_hash = st["currentPodHash"].as_str().unwrap().to_string();
    let (replicas, r_task) = record(rs_api, &format!("web-{new_hash}"), |o| {
        o["spec"]["replicas"].as_i64().map(|r| json!(r))
    });
    fx.tasks.push(r_task);

    if let Some((min_ms, max_ms)) = crash_every {
        // Kill the controller at pseudo-random points and start it again, until the
        // update is done. The seed is printed so a failure can be replayed.
        let mut seed: u64 = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| u64::from(std::process::id()) * 2_654_435_761);
        eprintln!("crash seed {seed}");
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut kills = 0;
        loop {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let ms = min_ms + (seed >> 33) % (max_ms - min_ms);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            controller.abort();
            let _ = controller.await;
            kills += 1;
            controller = start_controller(&fx);
            // At least three kills, even if the update ends sooner (a restart after the
            // end must change nothing either).
            if kills >= 3 && healthy_at(&rollout_status(&fx, "web").await, Some(&old)) {
                break;
            }
            assert!(Instant::now() < deadline, "no end after {kills} restarts");
        }
    }
    wait_for(&fx, "web", 60, "promoted", |s| healthy_at(s, Some(&old))).await;
    // Promotion routes everything to the canary (100); the pass after it, with the
    // canary now the stable, writes the weight back to 0.
    let last = wait_for(&fx, "web", 30, "back at weight 0", |s| {
        s["canary"]["weights"]["canary"]["weight"] == 0
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while weights.lock().unwrap().last() != Some(&json!(0)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    controller.abort();
    let w = weights.lock().unwrap().clone();
    let r = replicas.lock().unwrap().clone();
    (w, r, last)
}

fn assert_promoted(router: Router, weights: &[Value], replicas: &[Value], st: &Value) {
    // Weights as the API server holds them: 20, then 50, then everything to the new
    // stable (100 to the canary, then the canary service is the stable again: 0).
    // A watch may deliver the object as it was before the update (weight 0) after the
    // recording was reset: that is not a step.
    let mut w: Vec<i64> = weights.iter().filter_map(Value::as_i64).collect();
    if w.first() == Some(&0) {
        w.remove(0);
    }
    assert_eq!(w, [20, 50, 100, 0], "{router:?} canary weights read back");
    // The canary ReplicaSet: 1 pod at 20% of 4, 2 at 50%, then all 4.
    let r: Vec<i64> = replicas.iter().filter_map(Value::as_i64).collect();
    assert_eq!(r, [1, 2, 4], "{router:?} canary ReplicaSet replicas");
    // Argo's status fields of a finished update.
    assert_eq!(st["phase"], "Healthy", "{st:#}");
    assert_eq!(st["currentStepIndex"], 4);
    // The old ReplicaSet keeps its pods for scaleDownDelaySeconds (30 s with traffic
    // routing), and Argo counts every pod in `replicas` / `availableReplicas`.
    assert_eq!(st["updatedReplicas"], 4);
    assert!(st["availableReplicas"].as_i64() >= Some(4), "{st:#}");
    assert!(st["currentStepHash"].is_string());
    assert_eq!(st["canary"]["weights"]["canary"]["weight"], 0);
    assert_eq!(st["canary"]["weights"]["stable"]["weight"], 100);
    let conditions: Vec<&str> = st["conditions"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["type"].as_str()).collect())
        .unwrap_or_default();
    for t in ["Available", "Progressing", "Healthy", "Completed"] {
        assert!(conditions.contains(&t), "condition {t} in {conditions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_canary_moves_the_virtual_service_and_ends_healthy() {
    let (w, r, st) = routed_canary(Router::Istio, "e2e-istio", None).await;
    assert_promoted(Router::Istio, &w, &r, &st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_records_argos_events_on_the_rollout() {
    let fx = fixture("e2e-events").await;
    let strategy = "    canary:\n      steps: [{setWeight: 50}, {pause: {duration: 1s}}]\n";
    create_manifests(&fx.client, &fx.ns, &rollout_manifest(strategy))
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let controller = start_controller(&fx);
    let first = wait_for(&fx, "web", 60, "Healthy", |s| healthy_at(s, None)).await;
    let old = first["stableRS"].as_str().unwrap().to_string();
    set_image(&fx, "web", "web:2").await;
    wait_for(&fx, "web", 60, "promoted", |s| healthy_at(s, Some(&old))).await;
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(fx.client.clone(), &fx.ns);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = events.list(&ListParams::default()).await.expect("events");
        let reasons: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web"))
            .filter_map(|e| e.reason.clone())
            .collect();
        if ["RolloutUpdated", "RolloutStepCompleted", "RolloutCompleted"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
        {
            let step = list
                .items
                .iter()
                .find(|e| e.reason.as_deref() == Some("RolloutStepCompleted"))
                .and_then(|e| e.note.clone())
                .unwrap_or_default();
            assert!(step.starts_with("Rollout step 1/2 completed"), "{step}");
            break;
        }
        assert!(Instant::now() < deadline, "events recorded: {reasons:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    controller.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_canary_ingress_is_created_and_weighted() {
    let (w, r, st) = routed_canary(Router::Nginx, "e2e-nginx", None).await;
    assert_promoted(Router::Nginx, &w, &r, &st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smi_traffic_split_is_created_and_weighted() {
    let (w, r, st) = routed_canary(Router::Smi, "e2e-smi", None).await;
    assert_promoted(Router::Smi, &w, &r, &st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_http_route_is_weighted() {
    let (w, r, st) = routed_canary(Router::Gateway, "e2e-gateway", None).await;
    assert_promoted(Router::Gateway, &w, &r, &st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_at_random_points_skips_and_repeats_no_step() {
    let (w, r, st) = routed_canary(Router::Istio, "e2e-crash", Some((150, 900))).await;
    assert_promoted(Router::Istio, &w, &r, &st);
}

/// A Prometheus holding `success_rate{service="web"} 0.5` for the last ten minutes:
/// the bad data every analysis below queries.
fn bad_prometheus() -> rollout_testenv::prometheus::Prometheus {
    let now = controller::wall_clock().as_secs();
    let mut text = String::from("# TYPE success_rate gauge\n");
    for k in (0..=600).rev().step_by(15) {
        text.push_str(&format!(
            "success_rate{{service=\"web\"}} 0.5 {}\n",
            now - k
        ));
    }
    text.push_str("# EOF\n");
    rollout_testenv::prometheus::Prometheus::start(&text)
        .unwrap_or_else(|e| panic!("{}", report(&e)))
}

fn success_rate_template(address: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: success-rate}}
spec:
  metrics:
  - name: success-rate
    successCondition: result[0] >= 0.95
    failureLimit: 0
    provider:
      prometheus:
        address: {address}
        query: success_rate{{service="web"}}
---
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_analysis_against_prometheus_aborts_the_canary() {
    let prometheus = tokio::task::spawn_blocking(bad_prometheus).await.unwrap();
    let mut fx = fixture("e2e-abort").await;
    let strategy = format!(
        "    canary:\n      canaryService: web-canary\n      stableService: web-stable\n      abortScaleDownDelaySeconds: 5\n      trafficRouting:\n{}\n      steps:\n      - setWeight: 20\n      - analysis: {{templates: [{{templateName: success-rate}}]}}\n      - setWeight: 50\n",
        Router::Istio.routing(&fx.ns)
    );
    let manifests = format!(
        "{}{}---\n{}{}",
        services(&["web-stable", "web-canary"]),
        Router::Istio.objects(),
        success_rate_template(&prometheus.address()),
        rollout_manifest(&strategy)
    );
    create_manifests(&fx.client, &fx.ns, &manifests)
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let (api, name) = Router::Istio.watched(&fx);
    let (weights, task) = record(api, name, |o| Router::Istio.canary_weight(o));
    fx.tasks.push(task);
    fx.tasks.push(start_controller(&fx));
    let first = wait_for(&fx, "web", 60, "Healthy", |s| healthy_at(s, None)).await;
    let old = first["stableRS"].as_str().unwrap().to_string();
    weights.lock().unwrap().clear();

    set_image(&fx, "web", "web:2").await;
    let st = wait_for(&fx, "web", 60, "Degraded", |s| s["phase"] == "Degraded").await;
    assert_eq!(st["abort"], true, "{st:#}");
    let message = st["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("RolloutAborted: Rollout aborted update to revision 2")
            && message.contains(r#"Metric "success-rate" assessed Failed"#),
        "{message}"
    );
    assert_eq!(st["stableRS"], old.as_str(), "the stable stays");
    let new_hash = st["currentPodHash"].as_str().unwrap().to_string();
    let rs: Api<ReplicaSet> = Api::namespaced(fx.client.clone(), &fx.ns);
    let canary_rs = format!("web-{new_hash}");
    let replicas = |rs: ReplicaSet| rs.spec.replicas.unwrap_or(-1);
    // The canary keeps its pod for abortScaleDownDelaySeconds, then goes to zero.
    assert_eq!(replicas(rs.get(&canary_rs).await.unwrap()), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while replicas(rs.get(&canary_rs).await.unwrap()) != 0 {
        assert!(Instant::now() < deadline, "canary not scaled down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut w: Vec<i64> = weights
        .lock()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    if w.first() == Some(&0) {
        w.remove(0);
    }
    assert_eq!(w, [20, 0], "canary weight back to 0");
    // The failed run is in the API server with Argo's status.
    let runs: Api<DynamicObject> =
        Api::namespaced_with(fx.client.clone(), &fx.ns, &kinds::analysis_run());
    let list = runs.list(&ListParams::default()).await.unwrap();
    let failed: Vec<_> = list
        .items
        .iter()
        .filter(|r| r.data["status"]["phase"] == "Failed")
        .collect();
    assert_eq!(failed.len(), 1, "{list:?}");
    assert_eq!(
        failed[0].data["status"]["metricResults"][0]["measurements"][0]["value"],
        "[0.5]"
    );
    drop(prometheus);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_back_when_post_promotion_analysis_fails() {
    let prometheus = tokio::task::spawn_blocking(bad_prometheus).await.unwrap();
    let mut fx = fixture("e2e-bluegreen").await;
    let strategy = "    blueGreen:
      activeService: web-active
      previewService: web-preview
      autoPromotionEnabled: true
      scaleDownDelaySeconds: 5
      postPromotionAnalysis: {templates: [{templateName: success-rate}]}
";
    let manifests = format!(
        "{}{}{}",
        services(&["web-active", "web-preview"]),
        success_rate_template(&prometheus.address()),
        rollout_manifest(strategy)
    );
    create_manifests(&fx.client, &fx.ns, &manifests)
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let svc = |name: &str| {
        record(
            Api::namespaced_with(
                fx.client.clone(),
                &fx.ns,
                &kube::api::ApiResource::erase::<Service>(&()),
            ),
            name,
            |o| {
                o["spec"]["selector"]
                    .get("rollouts-pod-template-hash")
                    .cloned()
            },
        )
    };
    let (active, t1) = svc("web-active");
    let (preview, t2) = svc("web-preview");
    fx.tasks.extend([t1, t2]);
    fx.tasks.push(start_controller(&fx));
    let first = wait_for(&fx, "web", 60, "Healthy", |s| healthy_at(s, None)).await;
    let old = first["stableRS"].as_str().unwrap().to_string();

    set_image(&fx, "web", "web:2").await;
    let st = wait_for(&fx, "web", 60, "Degraded", |s| s["phase"] == "Degraded").await;
    let new = st["currentPodHash"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(st["abort"], true, "{st:#}");
    assert_eq!(st["stableRS"], old.as_str());
    // The active service went to the new ReplicaSet after the preview did, and back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a: Vec<Value> = active.lock().unwrap().clone();
        if a == [json!(old), json!(new), json!(old)] {
            break;
        }
        assert!(Instant::now() < deadline, "active selector history {a:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p: Vec<Value> = preview.lock().unwrap().clone();
    assert!(p.contains(&json!(new)), "preview selector history {p:?}");
    drop(prometheus);
}
