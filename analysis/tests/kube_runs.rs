//! The kube-rs `Analysis` port (`rollout_analysis::kube_runs`) against a REAL
//! kube-apiserver (rollout-testenv, with Argo's CRDs) and a REAL Prometheus server
//! (`rollout_testenv::prometheus`) holding known samples.
//!
//! The samples sit four hours in the past on a 15 s grid; the Prometheus provider's
//! clock is pinned to the `now` each `observe` is called with, so a run's measurements
//! are taken at the sample times the test picks. The Job provider runs against the same
//! API server; no kubelet or job controller runs, so the test writes the Job's status
//! (conditions, counts, times) as the job controller would.
#![cfg(all(feature = "kube", feature = "http"))]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use rollout_analysis::kube_runs::{KubeAnalysis, KubeAnalysisError};
use rollout_analysis::provider::http::{Clock, HttpClient, PrometheusProvider};
use rollout_analysis::provider::job::{JobProvider, RUN_UID_LABEL};
use rollout_analysis::runner::Providers;
use rollout_core::canary::{Action, AnalysisRunKind};
use rollout_core::driver::{Analysis, AnalysisState};
use rollout_core::spec::{Rollout, RolloutAnalysis};
use rollout_core::status::AnalysisPhase;
use rollout_core::time::Timestamp;
use rollout_testenv::prometheus::Prometheus;
use rollout_testenv::{TestEnv, kinds};
use serde_json::{Value, json};

const STEP_S: i64 = 15;
const STEPS: i64 = 240; // one hour of samples

// ---------------------------------------------------------------------------------
// Fixtures

/// The error and its sources, one per line.
fn report(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(out, "\n  caused by: {s}");
        source = s.source();
    }
    out
}

async fn setup(prefix: &str) -> (Arc<TestEnv>, Client, String) {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    let client = env.client().unwrap_or_else(|e| panic!("{}", report(&e)));
    let ns = env
        .create_namespace(&client, prefix)
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
    (env, client, ns)
}

/// `success_rate` gauges: 0.99 for `good`, 0.8 for `bad`, one sample every 15 s.
fn samples(t0: i64) -> String {
    let mut out = String::from("# HELP success_rate Success rate.\n# TYPE success_rate gauge\n");
    for (svc, v) in [("bad", "0.8"), ("good", "0.99")] {
        for k in 0..=STEPS {
            let _ = writeln!(
                out,
                "success_rate{{service=\"{svc}\"}} {v} {}",
                t0 + k * STEP_S
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A clock the test moves.
struct VirtualClock(AtomicI64);

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

struct Metrics {
    server: Prometheus,
    clock: Arc<VirtualClock>,
    t0: i64,
}

impl Metrics {
    fn start() -> Metrics {
        // Four hours ago, on the hour: older than anything Prometheus' head would hold.
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let t0 = (now_s - 4 * 3600).div_euclid(3600) * 3600;
        let server = Prometheus::start(&samples(t0)).unwrap_or_else(|e| panic!("{}", report(&e)));
        Metrics {
            server,
            clock: Arc::new(VirtualClock(AtomicI64::new(0))),
            t0,
        }
    }

    fn at_step(&self, k: i64) -> Timestamp {
        Timestamp::from_secs(self.t0 + k * STEP_S)
    }

    fn providers(&self) -> Providers {
        Providers::new().with(
            "prometheus",
            Arc::new(PrometheusProvider::new(HttpClient::new()).with_clock(self.clock.clone())),
        )
    }

    /// Observes at `now`, the provider's clock pinned to it.
    async fn observe(
        &self,
        port: &mut KubeAnalysis,
        rollout: &Rollout,
        now: Timestamp,
    ) -> AnalysisState {
        self.clock.0.store(now.as_millis(), Ordering::SeqCst);
        port.observe(rollout, now)
            .await
            .unwrap_or_else(|e| panic!("observe at {now}: {}", report(&e)))
    }
}

/// Creates a Rollout in `ns` and returns it as the driver sees it (with its UID).
async fn create_rollout(client: &Client, ns: &str, name: &str) -> Rollout {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kinds::rollout());
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": { "name": name },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] }
            },
            "strategy": { "canary": { "steps": [
                { "setWeight": 20 },
                { "analysis": { "templates": [{ "templateName": "success-rate" }] } }
            ] } }
        }
    }))
    .expect("rollout object");
    let made = api
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create rollout: {e}"));
    let mut value = serde_json::to_value(&made).expect("rollout JSON");
    value
        .as_object_mut()
        .expect("object")
        .insert("apiVersion".into(), json!("argoproj.io/v1alpha1"));
    value["kind"] = json!("Rollout");
    let rollout: Rollout =
        serde_json::from_value(value).unwrap_or_else(|e| panic!("typed rollout: {e}"));
    assert!(rollout.metadata.uid.is_some());
    rollout
}

async fn create_object(client: &Client, ns: Option<&str>, ar: &kube::api::ApiResource, obj: Value) {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    let obj: DynamicObject = serde_json::from_value(obj).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {:?}: {e}", obj.metadata.name));
}

/// The `success-rate` template: every 5 minutes, 3 times, at least 0.95.
fn success_rate_template(name: &str, address: &str, cluster: bool) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": if cluster { "ClusterAnalysisTemplate" } else { "AnalysisTemplate" },
        "metadata": { "name": name },
        "spec": {
            "args": [{ "name": "service" }],
            "metrics": [{
                "name": "success-rate",
                "interval": "5m",
                "count": 3,
                "successCondition": "result[0] >= 0.95",
                "failureLimit": 0,
                "provider": { "prometheus": {
                    "address": address,
                    "query": "success_rate{service=\"{{args.service}}\"}"
                } }
            }]
        }
    })
}

fn cluster_template_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "ClusterAnalysisTemplate"),
        "clusteranalysistemplates",
    )
}

fn start(name: &str, index: i32, analysis: Value) -> Action {
    let analysis: RolloutAnalysis =
        serde_json::from_value(analysis).unwrap_or_else(|e| panic!("analysis: {e}"));
    Action::StartAnalysisRun {
        name: name.into(),
        kind: AnalysisRunKind::Step { index },
        analysis,
        canary_hash: "canary-hash".into(),
        stable_hash: "stable-hash".into(),
    }
}

fn for_service(template: &str, service: &str) -> Value {
    json!({
        "templates": [{ "templateName": template }],
        "args": [{ "name": "service", "value": service }]
    })
}

async fn get_run(client: &Client, ns: &str, name: &str) -> DynamicObject {
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, &kinds::analysis_run())
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get run {name}: {e}"))
}

fn phase_of(state: &AnalysisState, run: &str) -> AnalysisPhase {
    state
        .runs
        .iter()
        .find(|r| r.name == run)
        .unwrap_or_else(|| panic!("no run {run} in {state:?}"))
        .phase
}

// ---------------------------------------------------------------------------------
// Prometheus runs

#[tokio::test]
async fn prometheus_runs_are_created_measured_and_judged_in_the_api_server() {
    let (_env, client, ns) = setup("analysis-prom").await;
    let metrics = Metrics::start();
    let rollout = create_rollout(&client, &ns, "web").await;
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    create_object(
        &client,
        Some(&ns),
        &kinds::analysis_template(),
        success_rate_template("success-rate", &metrics.server.address(), false),
    )
    .await;
    let mut port = KubeAnalysis::new(client.clone(), metrics.providers());

    // Start: the object carries Argo's labels, the owner and the resolved args.
    let good = start("web-good-1", 1, for_service("success-rate", "good"));
    let t = metrics.at_step(80);
    port.execute(&rollout, &good, t)
        .await
        .unwrap_or_else(|e| panic!("start: {}", report(&e)));
    let obj = get_run(&client, &ns, "web-good-1").await;
    let labels = obj.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("rollout-type").map(String::as_str), Some("Step"));
    assert_eq!(labels.get("step-index").map(String::as_str), Some("1"));
    assert_eq!(
        labels.get("rollouts-pod-template-hash").map(String::as_str),
        Some("canary-hash")
    );
    let owners = obj.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(
        (
            owners[0].kind.as_str(),
            owners[0].name.as_str(),
            owners[0].uid.as_str()
        ),
        ("Rollout", "web", uid.as_str())
    );
    assert_eq!(owners[0].controller, Some(true));
    assert_eq!(
        obj.data["spec"]["args"],
        json!([{ "name": "service", "value": "good" }])
    );
    assert!(obj.data.get("status").is_none_or(Value::is_null));

    // Starting again is not an error and changes nothing.
    port.execute(&rollout, &good, t)
        .await
        .unwrap_or_else(|e| panic!("start again: {}", report(&e)));
    let again = get_run(&client, &ns, "web-good-1").await;
    assert_eq!(
        again.metadata.resource_version,
        obj.metadata.resource_version
    );

    // First pass: one measurement, written to the object, next one in 5 minutes.
    let state = metrics.observe(&mut port, &rollout, t).await;
    assert_eq!(phase_of(&state, "web-good-1"), AnalysisPhase::Running);
    assert_eq!(
        state.wake_at,
        Some(Timestamp::from_millis(t.as_millis() + 300_000))
    );
    let obj = get_run(&client, &ns, "web-good-1").await;
    let status = &obj.data["status"];
    assert_eq!(status["phase"], "Running", "{status:#}");
    assert_eq!(status["metricResults"][0]["name"], "success-rate");
    assert_eq!(status["metricResults"][0]["count"], 1, "{status:#}");
    assert_eq!(
        status["metricResults"][0]["measurements"][0]["value"],
        "[0.99]"
    );

    // A pass before the interval is over measures nothing and writes nothing.
    let early = metrics.at_step(90);
    let state = metrics.observe(&mut port, &rollout, early).await;
    assert_eq!(phase_of(&state, "web-good-1"), AnalysisPhase::Running);
    let unchanged = get_run(&client, &ns, "web-good-1").await;
    assert_eq!(
        unchanged.metadata.resource_version,
        obj.metadata.resource_version
    );

    // Two more measurements at the wake-ups complete the run.
    let mut now = state
        .wake_at
        .unwrap_or_else(|| panic!("no wake-up: {state:?}"));
    let mut last = state;
    for _ in 0..2 {
        last = metrics.observe(&mut port, &rollout, now).await;
        if let Some(w) = last.wake_at {
            now = w;
        }
    }
    assert_eq!(
        phase_of(&last, "web-good-1"),
        AnalysisPhase::Successful,
        "{last:?}"
    );
    assert_eq!(last.wake_at, None);
    let obj = get_run(&client, &ns, "web-good-1").await;
    let status = &obj.data["status"];
    assert_eq!(status["phase"], "Successful", "{status:#}");
    assert_eq!(status["metricResults"][0]["successful"], 3, "{status:#}");
    assert_eq!(status["metricResults"][0]["phase"], "Successful");
    let finished: Vec<i64> = status["metricResults"][0]["measurements"]
        .as_array()
        .unwrap_or_else(|| panic!("{status:#}"))
        .iter()
        .filter_map(|m| m["finishedAt"].as_str())
        .map(|s| {
            Timestamp::parse_rfc3339(s)
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .millis_since(t)
                / 1000
        })
        .collect();
    assert_eq!(finished, [0, 300, 600]);

    // A run on the bad service fails at its first measurement; the completed run is
    // still reported, from its status, without being measured again.
    let bad = start("web-bad-2", 2, for_service("success-rate", "bad"));
    port.execute(&rollout, &bad, now)
        .await
        .unwrap_or_else(|e| panic!("start bad: {}", report(&e)));
    let good_version = obj.metadata.resource_version.clone();
    let state = metrics.observe(&mut port, &rollout, now).await;
    assert_eq!(state.runs.len(), 2, "{state:?}");
    assert_eq!(phase_of(&state, "web-good-1"), AnalysisPhase::Successful);
    assert_eq!(phase_of(&state, "web-bad-2"), AnalysisPhase::Failed);
    assert_eq!(state.wake_at, None);
    let obj = get_run(&client, &ns, "web-bad-2").await;
    let status = &obj.data["status"];
    assert_eq!(status["phase"], "Failed", "{status:#}");
    assert_eq!(status["metricResults"][0]["failed"], 1, "{status:#}");
    assert_eq!(
        status["metricResults"][0]["measurements"][0]["value"],
        "[0.8]"
    );
    assert_eq!(
        get_run(&client, &ns, "web-good-1")
            .await
            .metadata
            .resource_version,
        good_version
    );

    // Runs of another rollout in the namespace are not this rollout's.
    let other = create_rollout(&client, &ns, "other").await;
    let state = metrics.observe(&mut port, &other, now).await;
    assert!(state.runs.is_empty(), "{state:?}");
}

#[tokio::test]
async fn terminate_ends_a_running_run_and_is_idempotent() {
    let (_env, client, ns) = setup("analysis-term").await;
    let metrics = Metrics::start();
    let rollout = create_rollout(&client, &ns, "web").await;
    create_object(
        &client,
        Some(&ns),
        &kinds::analysis_template(),
        success_rate_template("success-rate", &metrics.server.address(), false),
    )
    .await;
    let mut port = KubeAnalysis::new(client.clone(), metrics.providers());
    let t = metrics.at_step(40);
    port.execute(
        &rollout,
        &start("web-1", 1, for_service("success-rate", "good")),
        t,
    )
    .await
    .unwrap_or_else(|e| panic!("start: {}", report(&e)));
    let state = metrics.observe(&mut port, &rollout, t).await;
    assert_eq!(phase_of(&state, "web-1"), AnalysisPhase::Running);

    let terminate = Action::TerminateAnalysisRun {
        name: "web-1".into(),
    };
    port.execute(&rollout, &terminate, t)
        .await
        .unwrap_or_else(|e| panic!("terminate: {}", report(&e)));
    assert_eq!(
        get_run(&client, &ns, "web-1").await.data["spec"]["terminate"],
        true
    );
    // Terminating twice, or a run that does not exist, is not an error.
    port.execute(&rollout, &terminate, t)
        .await
        .unwrap_or_else(|e| panic!("terminate again: {}", report(&e)));
    port.execute(
        &rollout,
        &Action::TerminateAnalysisRun {
            name: "no-such-run".into(),
        },
        t,
    )
    .await
    .unwrap_or_else(|e| panic!("terminate missing: {}", report(&e)));

    // The next pass ends the run with its verdict so far, without measuring.
    let later = metrics.at_step(45);
    let state = metrics.observe(&mut port, &rollout, later).await;
    assert_eq!(
        phase_of(&state, "web-1"),
        AnalysisPhase::Successful,
        "{state:?}"
    );
    assert_eq!(state.wake_at, None);
    let status = get_run(&client, &ns, "web-1").await.data["status"].clone();
    assert_eq!(status["phase"], "Successful", "{status:#}");
    assert_eq!(status["message"], "Run Terminated", "{status:#}");
    assert_eq!(status["metricResults"][0]["count"], 1, "{status:#}");
}

#[tokio::test]
async fn missing_templates_are_typed_errors_and_create_nothing() {
    let (_env, client, ns) = setup("analysis-missing").await;
    let rollout = create_rollout(&client, &ns, "web").await;
    let mut port = KubeAnalysis::new(client.clone(), Providers::new());
    let now = Timestamp::from_secs(1_800_000_000);

    let err = port
        .execute(
            &rollout,
            &start(
                "web-1",
                1,
                json!({ "templates": [{ "templateName": "nope" }] }),
            ),
            now,
        )
        .await
        .expect_err("missing template");
    match &err {
        KubeAnalysisError::TemplateNotFound {
            run,
            kind,
            name,
            namespace,
        } => {
            assert_eq!(
                (run.as_str(), *kind, name.as_str(), namespace.as_str()),
                ("web-1", "AnalysisTemplate", "nope", ns.as_str())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("\"nope\""), "{err}");

    let cluster_name = format!("{ns}-nope");
    let err = port
        .execute(
            &rollout,
            &start(
                "web-2",
                1,
                json!({ "templates": [{ "templateName": cluster_name, "clusterScope": true }] }),
            ),
            now,
        )
        .await
        .expect_err("missing cluster template");
    assert!(
        matches!(&err, KubeAnalysisError::TemplateNotFound { kind: "ClusterAnalysisTemplate", name, .. } if *name == cluster_name),
        "{err:?}"
    );

    let runs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &kinds::analysis_run());
    assert!(
        runs.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(
        port.observe(&rollout, now)
            .await
            .expect("observe")
            .runs
            .is_empty()
    );
}

#[tokio::test]
async fn cluster_templates_and_secret_arguments() {
    let (_env, client, ns) = setup("analysis-secret").await;
    let metrics = Metrics::start();
    let rollout = create_rollout(&client, &ns, "web").await;
    // Cluster templates are shared by every test: a name of this test's own.
    let name = format!("{ns}-success-rate");
    let mut template = success_rate_template(&name, &metrics.server.address(), true);
    template["spec"]["args"] = json!([{
        "name": "service",
        "valueFrom": { "secretKeyRef": { "name": "svc", "key": "name" } }
    }]);
    create_object(&client, None, &cluster_template_resource(), template).await;
    let mut port = KubeAnalysis::new(client.clone(), metrics.providers());
    let analysis = json!({ "templates": [{ "templateName": name, "clusterScope": true }] });
    let t = metrics.at_step(60);

    // No Secret yet: the run ends in Error naming the argument.
    port.execute(&rollout, &start("web-1", 1, analysis.clone()), t)
        .await
        .unwrap_or_else(|e| panic!("start: {}", report(&e)));
    let obj = get_run(&client, &ns, "web-1").await;
    assert_eq!(
        obj.data["spec"]["args"],
        json!([{ "name": "service", "valueFrom": { "secretKeyRef": { "name": "svc", "key": "name" } } }]),
        "the secret stays a reference in the run"
    );
    let state = metrics.observe(&mut port, &rollout, t).await;
    assert_eq!(phase_of(&state, "web-1"), AnalysisPhase::Error, "{state:?}");
    let message = &state.runs[0].message;
    assert!(message.contains("service"), "{message}");

    // With the Secret, the value reaches the query.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "svc" },
        "stringData": { "name": "good" }
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("create secret: {e}"));
    port.execute(&rollout, &start("web-2", 2, analysis), t)
        .await
        .unwrap_or_else(|e| panic!("start: {}", report(&e)));
    let state = metrics.observe(&mut port, &rollout, t).await;
    assert_eq!(
        phase_of(&state, "web-2"),
        AnalysisPhase::Running,
        "{state:?}"
    );
    let status = get_run(&client, &ns, "web-2").await.data["status"].clone();
    assert_eq!(
        status["metricResults"][0]["measurements"][0]["value"], "[0.99]",
        "{status:#}"
    );
}

#[tokio::test]
async fn a_malformed_run_is_a_typed_error_naming_it() {
    let (_env, client, ns) = setup("analysis-malformed").await;
    let rollout = create_rollout(&client, &ns, "web").await;
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    create_object(
        &client,
        Some(&ns),
        &kinds::analysis_run(),
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {
                "name": "broken",
                "ownerReferences": [{
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                    "name": "web", "uid": uid, "controller": true
                }]
            },
            "spec": { "metrics": [{ "name": "m", "provider": { "prometheus": {
                "address": "http://127.0.0.1:1", "query": "up"
            } } }] }
        }),
    )
    .await;
    // A status no Argo controller writes: an unknown phase.
    let runs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &kinds::analysis_run());
    runs.patch(
        "broken",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "phase": "Bogus" } })),
    )
    .await
    .unwrap_or_else(|e| panic!("patch: {e}"));
    let mut port = KubeAnalysis::new(client.clone(), Providers::new());
    let err = port
        .observe(&rollout, Timestamp::from_secs(1_800_000_000))
        .await
        .expect_err("malformed run");
    match &err {
        KubeAnalysisError::MalformedRun {
            namespace,
            run,
            message,
        } => {
            assert_eq!((namespace.as_str(), run.as_str()), (ns.as_str(), "broken"));
            assert!(message.contains("status.phase"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// The Job provider

/// Waits for the Job of `run_uid` and writes the status the job controller would.
async fn finish_job(client: &Client, ns: &str, run_uid: &str, succeed: bool) -> String {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("{RUN_UID_LABEL}={run_uid}"));
    let mut found = None;
    for _ in 0..200 {
        let list = jobs
            .list(&lp)
            .await
            .unwrap_or_else(|e| panic!("list jobs: {e}"));
        if let Some(job) = list.items.into_iter().next() {
            found = Some(job);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = found.unwrap_or_else(|| panic!("no Job for run {run_uid}"));
    let name = job.metadata.name.clone().unwrap_or_default();
    // The Job's creation time serves as start and completion time (whole seconds).
    let start = serde_json::to_value(&job.metadata.creation_timestamp).expect("time");
    let now = start.clone();
    let condition = |type_: &str| {
        json!({
            "type": type_, "status": "True",
            "lastProbeTime": now, "lastTransitionTime": now,
            "reason": if succeed { "CompletionsReached" } else { "BackoffLimitExceeded" },
            "message": if succeed { "Reached expected number of succeeded pods" } else { "Job has reached the specified backoff limit" }
        })
    };
    let status = if succeed {
        json!({ "status": {
            "startTime": start, "completionTime": now, "succeeded": 1, "active": 0,
            "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [condition("SuccessCriteriaMet"), condition("Complete")]
        } })
    } else {
        json!({ "status": {
            "startTime": start, "failed": 1, "active": 0, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [condition("FailureTarget"), condition("Failed")]
        } })
    };
    jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|e| panic!("job status: {e}"));
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_metrics_run_as_jobs_and_their_conditions_are_the_verdict() {
    let (_env, client, ns) = setup("analysis-job").await;
    let rollout = create_rollout(&client, &ns, "web").await;
    create_object(
        &client,
        Some(&ns),
        &kinds::analysis_template(),
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": { "name": "smoke" },
            "spec": { "metrics": [{
                "name": "smoke",
                "provider": { "job": {
                    "metadata": { "labels": { "suite": "smoke" } },
                    "spec": {
                        "backoffLimit": 0,
                        "template": { "spec": {
                            "restartPolicy": "Never",
                            "containers": [{ "name": "t", "image": "registry.invalid/smoke:1" }]
                        } }
                    }
                } }
            }] }
        }),
    )
    .await;
    let providers = Providers::new().with(
        "job",
        Arc::new(
            JobProvider::new(client.clone())
                .with_poll_interval(Duration::from_millis(100))
                .with_deadline(Duration::from_secs(60)),
        ),
    );
    let port = KubeAnalysis::new(client.clone(), providers);
    let now = Timestamp::from_secs(1_800_000_000);

    for (run, succeed, want) in [
        ("web-ok", true, AnalysisPhase::Successful),
        ("web-ko", false, AnalysisPhase::Failed),
    ] {
        let mut port = port.clone();
        let analysis = json!({ "templates": [{ "templateName": "smoke" }] });
        port.execute(&rollout, &start(run, 1, analysis), now)
            .await
            .unwrap_or_else(|e| panic!("start: {}", report(&e)));
        let run_uid = get_run(&client, &ns, run)
            .await
            .metadata
            .uid
            .unwrap_or_else(|| panic!("run without uid"));
        // The pass blocks on the Job; the "job controller" below finishes it.
        let ro = rollout.clone();
        let pass = tokio::spawn(async move { port.observe(&ro, now).await });
        let job_name = finish_job(&client, &ns, &run_uid, succeed).await;
        assert_eq!(job_name, format!("{run_uid}.smoke.1"));
        let state = tokio::time::timeout(Duration::from_secs(60), pass)
            .await
            .unwrap_or_else(|_| panic!("the pass did not end"))
            .unwrap_or_else(|e| panic!("pass panicked: {e}"))
            .unwrap_or_else(|e| panic!("observe: {}", report(&e)));
        assert_eq!(phase_of(&state, run), want, "{state:?}");
        let status = get_run(&client, &ns, run).await.data["status"].clone();
        assert_eq!(status["phase"], want.as_str(), "{status:#}");
        assert_eq!(
            status["metricResults"][0]["measurements"][0]["phase"],
            want.as_str(),
            "{status:#}"
        );
        // The Job belongs to the run (garbage-collected with it) and carries the
        // template's labels.
        let job = Api::<Job>::namespaced(client.clone(), &ns)
            .get(&job_name)
            .await
            .unwrap_or_else(|e| panic!("get job: {e}"));
        let owner = &job.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("AnalysisRun", run_uid.as_str())
        );
        assert_eq!(
            job.metadata
                .labels
                .unwrap_or_default()
                .get("suite")
                .map(String::as_str),
            Some("smoke")
        );
    }
}

#[tokio::test]
async fn a_job_without_a_verdict_leaves_the_measurement_running_and_resumes_it() {
    let (_env, client, ns) = setup("analysis-job-resume").await;
    let rollout = create_rollout(&client, &ns, "web").await;
    create_object(
        &client,
        Some(&ns),
        &kinds::analysis_template(),
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": { "name": "smoke" },
            "spec": { "metrics": [{
                "name": "smoke",
                "provider": { "job": {
                    "spec": {
                        "backoffLimit": 0,
                        "template": { "spec": {
                            "restartPolicy": "Never",
                            "containers": [{ "name": "t", "image": "registry.invalid/smoke:1" }]
                        } }
                    }
                } }
            }] }
        }),
    )
    .await;
    let providers = Providers::new().with(
        "job",
        Arc::new(
            JobProvider::new(client.clone())
                .with_poll_interval(Duration::from_secs(7))
                .without_waiting(),
        ),
    );
    let mut port = KubeAnalysis::new(client.clone(), providers);
    let now = Timestamp::from_secs(1_800_000_000);
    let analysis = json!({ "templates": [{ "templateName": "smoke" }] });
    port.execute(&rollout, &start("web-resume", 1, analysis), now)
        .await
        .unwrap_or_else(|e| panic!("start: {}", report(&e)));

    // The pass returns at once: the Job runs, the measurement stays Running with the
    // time to look again, and the port asks to be woken then.
    let state = tokio::time::timeout(Duration::from_secs(30), port.observe(&rollout, now))
        .await
        .unwrap_or_else(|_| panic!("the pass waited for the Job"))
        .unwrap_or_else(|e| panic!("observe: {}", report(&e)));
    assert_eq!(phase_of(&state, "web-resume"), AnalysisPhase::Running);
    assert_eq!(state.wake_at, Some(now.add_secs(7)));
    let run = get_run(&client, &ns, "web-resume").await;
    let m = &run.data["status"]["metricResults"][0];
    assert_eq!(m["measurements"][0]["phase"], "Running", "{m:#}");
    assert_eq!(
        m["measurements"][0]["resumeAt"], "2027-01-15T08:00:07Z",
        "{m:#}"
    );
    assert_eq!(m["count"].as_i64().unwrap_or(0), 0, "nothing counted yet");

    // Before resumeAt nothing is measured; after it the same Job is read again.
    let early = port
        .observe(&rollout, now.add_secs(3))
        .await
        .expect("early");
    assert_eq!(phase_of(&early, "web-resume"), AnalysisPhase::Running);
    let run_uid = run.metadata.uid.clone().expect("uid");
    let job_name = finish_job(&client, &ns, &run_uid, true).await;
    assert_eq!(job_name, format!("{run_uid}.smoke.1"));
    let done = port
        .observe(&rollout, now.add_secs(7))
        .await
        .expect("resume");
    assert_eq!(
        phase_of(&done, "web-resume"),
        AnalysisPhase::Successful,
        "{done:?}"
    );
    let status = get_run(&client, &ns, "web-resume").await.data["status"].clone();
    let ms = status["metricResults"][0]["measurements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        ms.len(),
        1,
        "the resumed measurement completed in place: {status:#}"
    );
    assert_eq!(ms[0]["phase"], "Successful");
    let jobs = Api::<Job>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("jobs");
    assert_eq!(jobs.items.len(), 1, "one Job for the one measurement");
}
