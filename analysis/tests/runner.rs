//! The analysis runner: template composition, the AnalysisRun object, prepared runs and
//! the embeddable set of runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use rollout_analysis::MeasurementPhase;
use rollout_analysis::expr::Value;
use rollout_analysis::provider::{MeasureContext, Measured, Provider, ProviderError};
use rollout_analysis::runner::{
    AnalysisRuns, Fixed, ManagedRun, PreparedRun, Providers, RunRequest, RunnerError, Secrets,
    TemplateCatalog, build_run, field_path_value,
};
use rollout_analysis::template::{Metric, TemplateRef};
use rollout_core::canary::{Action, AnalysisRunKind};
use rollout_core::spec::RolloutAnalysis;
use rollout_core::status::AnalysisPhase;
use rollout_core::time::Timestamp;

const T0: Timestamp = Timestamp::from_secs(1_767_225_600);

const TEMPLATES: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate, namespace: prod}
spec:
  args:
  - name: service-name
  - name: api-token
    valueFrom:
      secretKeyRef: {name: prom, key: token}
  metrics:
  - name: success-rate
    interval: 30s
    count: 3
    failureLimit: 1
    successCondition: result[0] >= 0.95
    provider:
      prometheus:
        address: http://prometheus:9090
        query: rate(ok{service="{{args.service-name}}"}[1m])
        headers:
        - {key: Authorization, value: "Bearer {{args.api-token}}"}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: latency}
spec:
  args:
  - name: service-name
  metrics:
  - name: latency
    successCondition: result < 300
    provider:
      web: {url: "http://metrics/{{args.service-name}}/p99"}
  templates:
  - templateName: errors
    clusterScope: true
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: errors}
spec:
  dryRun:
  - metricName: err.*
  metrics:
  - name: errors
    failureCondition: result > 5
    provider:
      web: {url: "http://metrics/errors"}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: loop-a}
spec:
  templates: [{templateName: loop-b}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: loop-b}
spec:
  metrics:
  - name: b
    provider: {web: {url: "http://b"}}
  templates: [{templateName: loop-a}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: other-latency}
spec:
  metrics:
  - name: latency
    provider: {web: {url: "http://other"}}
---
apiVersion: v1
kind: Service
metadata: {name: ignored}
"#;

fn catalog() -> TemplateCatalog {
    TemplateCatalog::from_yaml(TEMPLATES).expect("templates load")
}

fn refs(names: &[&str]) -> Vec<TemplateRef> {
    names
        .iter()
        .map(|n| TemplateRef {
            template_name: (*n).to_string(),
            cluster_scope: false,
        })
        .collect()
}

fn analysis(yaml: &str) -> RolloutAnalysis {
    serde_saphyr::from_str(yaml).expect("analysis parses")
}

fn request<'a>(
    analysis: &'a RolloutAnalysis,
    rollout: Option<&'a serde_json::Value>,
) -> RunRequest<'a> {
    RunRequest {
        namespace: "prod",
        rollout_name: "web",
        rollout_uid: Some("uid-1"),
        rollout,
        name: "web-abc-2-x",
        kind: AnalysisRunKind::Step { index: 2 },
        analysis,
        canary_hash: "abc",
        stable_hash: "def",
    }
}

#[test]
fn catalog_keeps_only_templates() {
    assert_eq!(catalog().len(), 6);
}

#[test]
fn compose_flattens_nested_and_cluster_templates() {
    let spec = catalog()
        .compose("prod", &refs(&["latency"]))
        .expect("composes");
    let names: Vec<&str> = spec.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["latency", "errors"]);
    assert_eq!(spec.dry_run.len(), 1);
    assert_eq!(spec.args.len(), 1);
}

#[test]
fn compose_merges_args_of_the_same_name() {
    let spec = catalog()
        .compose("prod", &refs(&["success-rate", "latency"]))
        .expect("composes");
    let args: Vec<&str> = spec.args.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(args, ["service-name", "api-token"]);
    assert_eq!(spec.metrics.len(), 3);
}

#[test]
fn compose_errors_name_the_template() {
    let c = catalog();
    assert_eq!(
        c.compose("prod", &refs(&["nope"])),
        Err(RunnerError::TemplateNotFound {
            kind: "AnalysisTemplate",
            name: "nope".into(),
            namespace: "prod".into()
        })
    );
    // A template in another namespace is not visible.
    assert!(matches!(
        c.compose("staging", &refs(&["success-rate"])),
        Err(RunnerError::TemplateNotFound { .. })
    ));
    let cycle = c.compose("prod", &refs(&["loop-a"])).unwrap_err();
    assert_eq!(
        cycle,
        RunnerError::TemplateCycle {
            chain: vec!["loop-a".into(), "loop-b".into(), "loop-a".into()]
        }
    );
    let dup = c
        .compose("prod", &refs(&["latency", "other-latency"]))
        .unwrap_err();
    assert_eq!(
        dup.to_string(),
        "two metrics are named \"latency\" (templates \"latency\" and \"other-latency\")"
    );
    assert_eq!(c.compose("prod", &[]), Err(RunnerError::NoTemplates));
}

#[test]
fn conflicting_args_are_rejected() {
    let mut c = TemplateCatalog::new();
    c.add_yaml(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: a}
spec:
  args: [{name: x, value: "1"}]
  metrics: [{name: a, provider: {web: {url: "http://a"}}}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: b}
spec:
  args: [{name: x, value: "2"}]
  metrics: [{name: b, provider: {web: {url: "http://b"}}}]
"#,
    )
    .expect("loads");
    assert_eq!(
        c.compose("ns", &refs(&["a", "b"])),
        Err(RunnerError::ConflictingArgument {
            name: "x".into(),
            first: "a".into(),
            second: "b".into()
        })
    );
}

#[test]
fn an_invalid_template_document_is_an_error_naming_it() {
    let err = TemplateCatalog::from_yaml(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: x}\nspec:\n  metrics:\n  - name: m\n    provider: {}\n",
    )
    .unwrap_err();
    assert!(matches!(err, RunnerError::Document { .. }), "{err}");
}

#[test]
fn build_run_labels_args_and_owner() {
    let a = analysis(
        r#"
templates: [{templateName: success-rate}]
args:
- {name: service-name, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
- {name: not-declared, value: x}
dryRun: [{metricName: success-rate}]
analysisRunMetadata:
  labels: {team: web}
  annotations: {link: "https://example.invalid"}
"#,
    );
    let rollout = serde_json::json!({"metadata": {"name": "web", "labels": {"app": "web-svc"}}});
    let run = build_run(&catalog(), &request(&a, Some(&rollout))).expect("builds");
    let labels = run.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["rollout-type"], "Step");
    assert_eq!(labels["step-index"], "2");
    assert_eq!(labels["rollouts-pod-template-hash"], "abc");
    assert_eq!(labels["team"], "web");
    assert_eq!(
        run.metadata.annotations.clone().unwrap_or_default()["link"],
        "https://example.invalid"
    );
    let owner = &run.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Rollout", "uid-1")
    );
    let args: BTreeMap<&str, (Option<&str>, bool)> = run
        .spec
        .args
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                (a.value.as_deref(), a.value_from.is_some()),
            )
        })
        .collect();
    assert_eq!(args["service-name"], (Some("web-svc"), false));
    // The secret stays a reference in the object.
    assert_eq!(args["api-token"], (None, true));
    assert!(!args.contains_key("not-declared"));
    assert_eq!(run.spec.dry_run.len(), 1);
    // The metric keeps its placeholders; they are resolved when the run is prepared.
    assert!(
        run.spec.metrics[0]
            .provider
            .prometheus
            .as_ref()
            .is_some_and(|p| p
                .query
                .as_deref()
                .unwrap_or_default()
                .contains("{{args.service-name}}"))
    );
}

#[test]
fn pod_template_hash_args() {
    let a = analysis(
        r#"
templates: [{templateName: latency}]
args:
- {name: service-name, valueFrom: {podTemplateHashValue: Stable}}
"#,
    );
    let run = build_run(&catalog(), &request(&a, None)).expect("builds");
    assert_eq!(run.spec.args[0].value.as_deref(), Some("def"));
    let a = analysis(
        "templates: [{templateName: latency}]\nargs:\n- {name: service-name, valueFrom: {podTemplateHashValue: Latest}}\n",
    );
    let run = build_run(&catalog(), &request(&a, None)).expect("builds");
    assert_eq!(run.spec.args[0].value.as_deref(), Some("abc"));
    // fieldRef without the rollout object: a typed error naming the argument.
    let a = analysis(
        "templates: [{templateName: latency}]\nargs:\n- {name: service-name, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n",
    );
    let err = build_run(&catalog(), &request(&a, None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "analysis args[0] (service-name): fieldRef needs the rollout object"
    );
}

#[test]
fn field_paths() {
    let obj = serde_json::json!({
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "w"}},
        "spec": {"replicas": 3, "ports": [{"port": 80}]}
    });
    assert_eq!(
        field_path_value(&obj, "metadata.name").as_deref(),
        Some("web")
    );
    assert_eq!(
        field_path_value(&obj, "metadata.labels['app.kubernetes.io/name']").as_deref(),
        Some("w")
    );
    assert_eq!(
        field_path_value(&obj, "spec.replicas").as_deref(),
        Some("3")
    );
    assert_eq!(
        field_path_value(&obj, "spec.ports[0].port").as_deref(),
        Some("80")
    );
    assert_eq!(field_path_value(&obj, "spec.missing"), None);
    assert_eq!(field_path_value(&obj, "metadata..name"), None);
    assert_eq!(field_path_value(&obj, "metadata.labels['x"), None);
}

fn secrets() -> Secrets {
    let mut m = BTreeMap::new();
    m.insert(
        ("prom".to_string(), "token".to_string()),
        "s3cr3t".to_string(),
    );
    Secrets(m)
}

fn success_rate_run() -> rollout_analysis::template::AnalysisRun {
    let a = analysis(
        "templates: [{templateName: success-rate}]\nargs: [{name: service-name, value: web}]\n",
    );
    build_run(&catalog(), &request(&a, None)).expect("builds")
}

#[test]
fn prepared_run_substitutes_args_and_secrets() {
    let p = PreparedRun::new(&success_rate_run(), &secrets());
    assert_eq!(p.invalid(), None);
    let prom = p.metrics()[0]
        .provider
        .prometheus
        .as_ref()
        .expect("prometheus");
    assert_eq!(prom.query.as_deref(), Some("rate(ok{service=\"web\"}[1m])"));
    assert_eq!(prom.headers[0].value, "Bearer s3cr3t");
    assert_eq!(p.redact("token s3cr3t rejected"), "token ***** rejected");
    assert!(!format!("{p:?}").contains("s3cr3t"));
}

#[test]
fn a_missing_secret_makes_an_error_run() {
    let p = PreparedRun::new(&success_rate_run(), &Secrets::default());
    assert_eq!(
        p.invalid(),
        Some("args.api-token: valueFrom could not be resolved")
    );
    let status = Default::default();
    let d = p.reconcile(&status, &[], T0, false);
    assert_eq!(d.status.phase, Some(AnalysisPhase::Error));
    assert_eq!(
        d.status.message,
        "args.api-token: valueFrom could not be resolved"
    );
    assert!(d.actions.is_empty());
}

#[test]
fn dry_run_rules_are_unanchored_regexps() {
    let mut run = success_rate_run();
    run.spec.dry_run = vec![rollout_analysis::template::DryRun {
        metric_name: "rate$".into(),
    }];
    let p = PreparedRun::new(&run, &secrets());
    assert_eq!(p.invalid(), None);
    // A failing measurement of a dry-run metric does not fail the run.
    let mut runs = AnalysisRuns::new(TemplateCatalog::new(), "prod").with_secrets(secrets());
    runs.insert(run.clone());
    let mut low = |_: &ManagedRun, _: &Metric, _: Timestamp| {
        Ok(Measured::Value(Value::Array(vec![Value::Float(0.5)])))
    };
    for i in 0..3 {
        runs.settle(&mut low, T0.add_secs(30 * i));
    }
    let r = &runs.runs()[0];
    assert_eq!(r.status.phase, Some(AnalysisPhase::Successful));
    assert_eq!(r.status.dry_run_summary.map(|s| s.failed), Some(1));

    run.spec.dry_run = vec![rollout_analysis::template::DryRun {
        metric_name: "nothing".into(),
    }];
    let p = PreparedRun::new(&run, &secrets());
    assert_eq!(
        p.invalid(),
        Some("dryRun[0]: Rule didn't match any metric name(s)")
    );
    run.spec.dry_run = vec![rollout_analysis::template::DryRun {
        metric_name: "(".into(),
    }];
    let p = PreparedRun::new(&run, &secrets());
    assert!(
        p.invalid()
            .is_some_and(|m| m.starts_with("dryRun[0]: invalid metric name pattern"))
    );
}

#[test]
fn provider_errors_are_redacted_and_count_as_errors() {
    let mut runs = AnalysisRuns::new(catalog(), "prod").with_secrets(secrets());
    runs.insert(success_rate_run());
    let mut failing = |_: &ManagedRun, _: &Metric, _: Timestamp| {
        Err(ProviderError::Status {
            provider: "prometheus",
            address: "http://prometheus:9090".into(),
            status: 401,
            body: "bad token s3cr3t".into(),
        })
    };
    // consecutiveErrorLimit 4: the fifth error in a row ends the run in Error; errors
    // are retried after 10 s.
    for i in 0..5 {
        runs.settle(&mut failing, T0.add_secs(10 * i));
    }
    let r = &runs.runs()[0];
    assert_eq!(r.status.phase, Some(AnalysisPhase::Error));
    let text = serde_json::to_string(&r.status).expect("serializes");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("bad token *****"), "{text}");
}

#[test]
fn runs_from_machine_actions_and_states() {
    let mut runs = AnalysisRuns::new(catalog(), "prod").with_secrets(secrets());
    let a = analysis(
        "templates: [{templateName: success-rate}]\nargs: [{name: service-name, value: web}]\n",
    );
    let start = Action::StartAnalysisRun {
        name: "web-abc-3-1".into(),
        kind: AnalysisRunKind::Step { index: 3 },
        analysis: a,
        canary_hash: "abc".into(),
        stable_hash: "def".into(),
    };
    runs.apply(std::slice::from_ref(&start), "web", None)
        .expect("applies");
    // Idempotent.
    runs.apply(std::slice::from_ref(&start), "web", None)
        .expect("applies");
    assert_eq!(runs.runs().len(), 1);
    assert_eq!(runs.states()[0].phase, AnalysisPhase::Pending);

    let reqs = runs.reconcile(T0);
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        (reqs[0].metric.as_str(), reqs[0].measurement_index),
        ("success-rate", 0)
    );
    assert_eq!(runs.states()[0].phase, AnalysisPhase::Running);
    // Nothing is due until an answer arrives or the interval passes.
    assert!(runs.reconcile(T0).is_empty());
    runs.record(
        "web-abc-3-1",
        rollout_analysis::machine::MeasurementResult::new(
            "success-rate",
            Value::Array(vec![Value::Float(0.99)]),
            T0,
        ),
    );
    assert!(runs.reconcile(T0).is_empty());
    assert_eq!(runs.next_wakeup(), Some(T0.add_secs(30)));
    let reqs = runs.reconcile(T0.add_secs(30));
    assert_eq!(reqs[0].measurement_index, 1);

    // Terminated by the machine: the in-flight measurement is stopped, the run ends.
    runs.apply(
        &[Action::TerminateAnalysisRun {
            name: "web-abc-3-1".into(),
        }],
        "web",
        None,
    )
    .expect("applies");
    let reqs = runs.reconcile(T0.add_secs(31));
    assert!(reqs.iter().all(|r| r.terminate));
    assert_eq!(runs.states()[0].phase, AnalysisPhase::Successful);
    assert_eq!(runs.states()[0].message, "Run Terminated");

    // A run whose template is missing is an error; nothing is created for it.
    let bad = Action::StartAnalysisRun {
        name: "x".into(),
        kind: AnalysisRunKind::Background,
        analysis: analysis("templates: [{templateName: nope}]\n"),
        canary_hash: "abc".into(),
        stable_hash: "def".into(),
    };
    assert!(runs.apply(&[bad], "web", None).is_err());
    assert_eq!(runs.runs().len(), 1);
}

/// A provider that answers from a table by metric name, or fails.
struct Table(BTreeMap<String, Result<Measured, ProviderError>>);

#[async_trait::async_trait]
impl Provider for Table {
    async fn measure(
        &self,
        ctx: &MeasureContext<'_>,
        metric: &Metric,
    ) -> Result<Measured, ProviderError> {
        assert_eq!(ctx.namespace, "prod");
        self.0.get(&metric.name).cloned().unwrap_or_else(|| {
            Err(ProviderError::Backend {
                provider: "table",
                message: format!("no entry for {}", metric.name),
            })
        })
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

#[test]
fn async_measurement_through_providers() {
    let a = analysis(
        "templates: [{templateName: latency}]\nargs: [{name: service-name, value: web}]\n",
    );
    let mut runs = AnalysisRuns::new(catalog(), "prod");
    runs.insert(build_run(&catalog(), &request(&a, None)).expect("builds"));
    let mut table = BTreeMap::new();
    table.insert(
        "latency".to_string(),
        Ok(Measured::Value(Value::Float(120.0))),
    );
    table.insert(
        "errors".to_string(),
        Ok(Measured::Verdict {
            phase: MeasurementPhase::Successful,
            value: Value::Float(1.0),
        }),
    );
    let providers = Providers::new().with("web", Arc::new(Table(table)));
    let now = || T0;
    let taken = block_on(runs.measure(&providers, &now));
    assert_eq!(taken, 2);
    let r = &runs.runs()[0];
    assert_eq!(
        r.status.phase,
        Some(AnalysisPhase::Successful),
        "{:?}",
        r.status
    );
    let errors = r.status.metric_result("errors").expect("errors metric");
    assert_eq!(errors.measurements[0].value, "1");
    assert!(errors.dry_run);
}

#[test]
fn a_metric_without_a_registered_provider_is_an_error_measurement() {
    let a = analysis(
        "templates: [{templateName: latency}]\nargs: [{name: service-name, value: web}]\n",
    );
    let mut runs = AnalysisRuns::new(catalog(), "prod");
    runs.insert(build_run(&catalog(), &request(&a, None)).expect("builds"));
    let providers = Providers::new().with("prometheus", Arc::new(Fixed(Value::Float(1.0))));
    let now = || T0;
    block_on(runs.measure(&providers, &now));
    let r = &runs.runs()[0];
    let latency = r.status.metric_result("latency").expect("latency");
    assert_eq!(latency.error, 1);
    assert_eq!(
        latency.measurements[0].message,
        "metric \"latency\": no web provider is configured"
    );
    // Retried 10 s later.
    assert_eq!(runs.next_wakeup(), Some(T0.add_secs(10)));
}
