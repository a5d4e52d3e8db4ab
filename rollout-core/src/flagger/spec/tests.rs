//! Unit tests: defaults and derived values, valid documents with asserted values, and
//! invalid fragments with the exact path of their error.

use serde_json::{Value, json};

use super::*;
use crate::duration::Duration;

/// A small valid weighted canary.
fn base() -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "maxWeight": 50,
                "stepWeight": 10,
                "metrics": [
                    {"name": "request-success-rate", "interval": "1m",
                     "thresholdRange": {"min": 99}}
                ],
                "webhooks": [
                    {"name": "load-test", "url": "http://flagger-loadtester.test/",
                     "timeout": "5s", "metadata": {"cmd": "hey http://podinfo-canary:9898/"}}
                ]
            }
        }
    })
}

/// Sets `value` at a JSON pointer whose parent exists.
fn set(v: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let parent = v.pointer_mut(parent).expect("parent exists");
    match parent {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
        }
        Value::Array(a) => {
            let i: usize = key.parse().expect("index");
            a[i] = value;
        }
        other => panic!("cannot set {key} in {other}"),
    }
}

fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    if let Some(Value::Object(m)) = v.pointer_mut(parent) {
        m.remove(key);
    }
}

fn with(pointer: &str, value: Value) -> Value {
    let mut v = base();
    set(&mut v, pointer, value);
    v
}

fn without(pointer: &str) -> Value {
    let mut v = base();
    remove(&mut v, pointer);
    v
}

fn parse(v: Value) -> Canary {
    Canary::from_json_value(v).unwrap_or_else(|e| panic!("parse failed: {e}"))
}

fn parse_err(v: Value) -> SpecError {
    match Canary::from_json_value(v) {
        Ok(c) => panic!("expected a parse error, got {c:?}"),
        Err(e) => e,
    }
}

/// The validation errors of a document that parses, as `path: message` lines.
fn invalid(v: Value) -> Vec<String> {
    match parse(v).validate() {
        Ok(()) => panic!("expected validation errors"),
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

/// The paths of the validation errors of a document that parses.
fn error_paths(v: Value) -> Vec<String> {
    match parse(v).validate() {
        Ok(()) => Vec::new(),
        Err(errs) => errs.iter().map(|e| e.path.clone()).collect(),
    }
}

fn analysis(v: Value) -> CanaryAnalysis {
    serde_json::from_value(v).expect("analysis parses")
}

// ---------------------------------------------------------------------------------------
// Valid documents and derived values

#[test]
fn base_parses_and_validates() {
    let c = parse(base());
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.metadata.name.as_deref(), Some("podinfo"));
    assert_eq!(c.spec.target_ref.kind, "Deployment");
    assert_eq!(c.spec.service.port, 9898);
    assert_eq!(c.spec.service.port_name(), "http");
    assert_eq!(c.spec.apex_name(), "podinfo");
    assert_eq!(c.spec.progress_deadline_seconds(), 600);
    assert!(!c.spec.skips_analysis());
    let a = c.analysis().expect("analysis");
    assert_eq!(a.interval_seconds(), 60);
    assert_eq!(a.threshold(), 5);
    assert_eq!(a.max_weight(), 50);
    assert_eq!(a.step_weight(), 10);
    assert_eq!(a.strategy(), Strategy::Canary);
    assert!(a.metrics[0].is_builtin());
    assert_eq!(a.metrics[0].threshold_range.and_then(|r| r.min), Some(99.0));
    assert_eq!(a.webhooks[0].r#type, HookType::Rollout);
    assert_eq!(a.webhooks[0].timeout(), Duration::from_secs(5));
    assert_eq!(c.status, None);
}

#[test]
fn from_yaml_reads_one_document() {
    let c = Canary::from_yaml(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service:
    port: 80
    targetPort: http
    gateways: [public-gateway]
    hosts: [web.example.com]
    trafficPolicy: {tls: {mode: DISABLE}}
  analysis:
    interval: 30s
    threshold: 3
    iterations: 10
    match:
      - headers:
          x-canary: {exact: insider}
      - headers:
          cookie: {regex: "^(.*?;)?(canary=always)(;.*)?$"}
"#,
    )
    .expect("parses");
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(
        c.spec.service.target_port,
        Some(IntOrString::Str("http".into()))
    );
    let a = c.analysis().expect("analysis");
    assert_eq!(a.interval_seconds(), 30);
    assert_eq!(a.strategy(), Strategy::ABTesting);
    assert_eq!(
        a.match_[0].headers["x-canary"].exact.as_deref(),
        Some("insider")
    );
    assert_eq!(a.match_[1].headers["cookie"].kinds(), vec!["regex"]);
    assert_eq!(
        c.spec.service.traffic_policy,
        Some(json!({"tls": {"mode": "DISABLE"}}))
    );
}

#[test]
fn interval_defaults_and_floor() {
    let interval = |i: Value| analysis(json!({"interval": i})).interval_seconds();
    assert_eq!(CanaryAnalysis::default().interval_seconds(), 60);
    assert_eq!(interval(json!("1m")), 60);
    assert_eq!(interval(json!("1m30s")), 90);
    assert_eq!(interval(json!("15s")), 15);
    assert_eq!(interval(json!("10s")), 10);
    // Flagger never ticks faster than every 10 s.
    assert_eq!(interval(json!("5s")), 10);
    assert_eq!(interval(json!("0s")), 10);
    assert_eq!(interval(json!("1ms")), 10);
    // Unreadable: the default.
    assert_eq!(interval(json!("1 minute")), 60);
    assert_eq!(interval(json!("")), 60);
    assert_eq!(
        analysis(json!({"interval": "2m"})).interval(),
        Duration::from_secs(120)
    );
}

#[test]
fn threshold_defaults() {
    let threshold = |t: Value| analysis(json!({"threshold": t})).threshold();
    assert_eq!(CanaryAnalysis::default().threshold(), 1);
    assert_eq!(threshold(json!(null)), 1);
    assert_eq!(threshold(json!(0)), 1);
    assert_eq!(threshold(json!(-2)), 1);
    assert_eq!(threshold(json!(1)), 1);
    assert_eq!(threshold(json!(15)), 15);
}

#[test]
fn max_weight_rules() {
    let max = |a: Value| analysis(a).max_weight();
    assert_eq!(max(json!({})), 100);
    assert_eq!(max(json!({"stepWeight": 20, "maxWeight": 50})), 50);
    assert_eq!(max(json!({"stepWeight": 20, "maxWeight": 0})), 100);
    assert_eq!(max(json!({"stepWeight": 20, "maxWeight": -5})), 100);
    assert_eq!(max(json!({"stepWeights": [1, 2, 10, 80]})), 80);
    assert_eq!(max(json!({"stepWeights": [1, 2, 10, 200]})), 100);
    // stepWeights wins over maxWeight.
    assert_eq!(max(json!({"stepWeights": [5, 30], "maxWeight": 90})), 30);
}

#[test]
fn strategy_classification() {
    let strategy = |a: Value| analysis(a).strategy();
    let ab_match = json!([{"headers": {"x-canary": {"exact": "insider"}}}]);
    assert_eq!(strategy(json!({"stepWeight": 10})), Strategy::Canary);
    assert_eq!(strategy(json!({"stepWeights": [1, 50]})), Strategy::Canary);
    assert_eq!(strategy(json!({"iterations": 10})), Strategy::BlueGreen);
    assert_eq!(
        strategy(json!({"iterations": 10, "match": ab_match.clone()})),
        Strategy::ABTesting
    );
    // match without iterations is not A/B testing.
    assert_eq!(
        strategy(json!({"iterations": 0, "match": ab_match.clone()})),
        Strategy::Canary
    );
    assert_eq!(
        strategy(json!({"stepWeight": 10, "match": ab_match})),
        Strategy::Canary
    );
    assert_eq!(strategy(json!({})), Strategy::Canary);
    assert_eq!(Strategy::ABTesting.as_str(), "ab-testing");
    assert_eq!(Strategy::BlueGreen.to_string(), "blue-green");

    // The provider can force blue/green; no analysis is a canary.
    let c = parse(with("/spec/provider", json!("kubernetes")));
    assert_eq!(
        c.analysis().map(CanaryAnalysis::strategy),
        Some(Strategy::Canary)
    );
    assert_eq!(c.spec.strategy(), Strategy::BlueGreen);
    let c = parse(without("/spec/analysis"));
    assert_eq!(c.spec.strategy(), Strategy::Canary);
    assert!(c.spec.skips_analysis());
}

#[test]
fn other_defaults() {
    let a = CanaryAnalysis::default();
    assert_eq!(a.iterations(), 0);
    assert_eq!(a.step_weight(), 0);
    assert_eq!(a.step_weight_promotion(), 0);
    assert_eq!(a.primary_ready_threshold(), 100);
    assert_eq!(a.canary_ready_threshold(), 100);
    let m = CanaryMetric::default();
    assert_eq!(m.interval(), "1m");
    assert!(!m.is_builtin());
    let s = SessionAffinity::default();
    assert_eq!(s.max_age(), 86_400);
    let w = CanaryWebhook::default();
    assert_eq!(w.r#type, HookType::Rollout);
    assert_eq!(w.timeout(), Duration::from_secs(10));
    let w = CanaryWebhook {
        timeout: Some("5".into()),
        ..CanaryWebhook::default()
    };
    assert_eq!(w.timeout(), Duration::from_secs(10));
    let w = CanaryWebhook {
        timeout: Some("1m".into()),
        ..CanaryWebhook::default()
    };
    assert_eq!(w.timeout(), Duration::from_secs(60));
    let c = Canary::default();
    assert_eq!(
        (c.api_version.as_str(), c.kind.as_str()),
        (API_VERSION, KIND)
    );
    assert_eq!(c.spec.progress_deadline_seconds(), 600);
}

#[test]
fn hook_types_and_severities() {
    let hooks = json!([
        {"name": "a", "url": "http://x/", "type": "pre-rollout"},
        {"name": "b", "url": "http://x/", "type": "rollout"},
        {"name": "c", "url": "http://x/", "type": "confirm-rollout"},
        {"name": "d", "url": "http://x/", "type": "post-rollout"},
        {"name": "e", "url": "http://x/", "type": "confirm-promotion"},
        {"name": "f", "url": "http://x/", "type": "rollback"},
        {"name": "g", "url": "http://x/", "type": "confirm-traffic-increase"},
        {"name": "h", "url": "http://x/", "type": "event"},
        {"name": "i", "url": "http://x/", "type": ""},
        {"name": "j", "url": "http://x/", "type": null},
        {"name": "k", "url": "http://x/"}
    ]);
    let c = parse(with("/spec/analysis/webhooks", hooks));
    let types: Vec<&str> = c
        .analysis()
        .expect("analysis")
        .webhooks
        .iter()
        .map(|w| w.r#type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "pre-rollout",
            "rollout",
            "confirm-rollout",
            "post-rollout",
            "confirm-promotion",
            "rollback",
            "confirm-traffic-increase",
            "event",
            "rollout",
            "rollout",
            "rollout"
        ]
    );
    assert_eq!(c.validate(), Ok(()));

    let alerts = json!([
        {"name": "a", "providerRef": {"name": "slack"}},
        {"name": "b", "severity": "", "providerRef": {"name": "slack"}},
        {"name": "c", "severity": "warn", "providerRef": {"name": "slack", "namespace": "x"}},
        {"name": "d", "severity": "error", "providerRef": {"name": "slack"}}
    ]);
    let c = parse(with("/spec/analysis/alerts", alerts));
    let severities: Vec<AlertSeverity> = c
        .analysis()
        .expect("analysis")
        .alerts
        .iter()
        .map(|a| a.severity)
        .collect();
    assert_eq!(
        severities,
        [
            AlertSeverity::Info,
            AlertSeverity::Info,
            AlertSeverity::Warn,
            AlertSeverity::Error
        ]
    );
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn pass_through_objects_keep_unknown_fields() {
    let mut v = base();
    set(
        &mut v,
        "/spec/service",
        json!({
            "port": 80,
            "match": [{"uri": {"prefix": "/api"}, "statPrefix": "api", "headers": {
                "x-a": {"exact": "1", "future": true}
            }}],
            "rewrite": {"uri": "/", "uriRegexRewrite": {"match": "^/a", "rewrite": "/"}},
            "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOnRemoteLocalities": true},
            "headers": {"request": {"add": {"x-b": "2"}, "future": 1}},
            "corsPolicy": {"allowOrigin": ["a.example"], "maxAge": "24h", "unmatchedPreflights": "IGNORE"},
            "gatewayRefs": [{"name": "gw", "namespace": "ingress", "future": "x"}],
            "mirror": [{"backendRef": {"name": "shadow", "port": 80}, "percent": 10}],
            "trafficPolicy": {"anything": {"goes": [1, 2]}}
        }),
    );
    let c = parse(v);
    assert_eq!(c.validate(), Ok(()));
    let s = &c.spec.service;
    assert_eq!(s.match_[0].extra["statPrefix"], json!("api"));
    assert_eq!(s.match_[0].headers["x-a"].extra["future"], json!(true));
    assert!(
        s.rewrite
            .as_ref()
            .is_some_and(|r| r.extra.contains_key("uriRegexRewrite"))
    );
    assert_eq!(s.retries.as_ref().and_then(|r| r.attempts), Some(3));
    assert_eq!(s.gateway_refs[0].extra["future"], json!("x"));
    assert_eq!(s.mirror[0].extra["percent"], json!(10));
    // ... and serialize them back.
    let out = serde_json::to_value(&c).expect("serializes");
    assert_eq!(
        out.pointer("/spec/service/match/0/statPrefix"),
        Some(&json!("api"))
    );
    assert_eq!(
        out.pointer("/spec/service/corsPolicy/unmatchedPreflights"),
        Some(&json!("IGNORE"))
    );
    assert_eq!(parse(out), c);
}

#[test]
fn nulls_read_as_absent() {
    let mut v = base();
    set(&mut v, "/spec/provider", Value::Null);
    set(&mut v, "/spec/skipAnalysis", Value::Null);
    set(&mut v, "/spec/analysis/stepWeights", Value::Null);
    set(&mut v, "/spec/analysis/alerts", Value::Null);
    set(&mut v, "/spec/analysis/match", Value::Null);
    set(&mut v, "/spec/service/hosts", Value::Null);
    set(&mut v, "/spec/analysis/webhooks/0/metadata", Value::Null);
    let c = parse(v);
    assert_eq!(c.spec.provider, None);
    assert!(!c.spec.skip_analysis);
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn round_trip_is_stable() {
    let mut v = base();
    set(&mut v, "/spec/service/targetPort", json!(9898));
    set(
        &mut v,
        "/spec/analysis/sessionAffinity",
        json!({"cookieName": "c", "maxAge": 60}),
    );
    set(
        &mut v,
        "/status",
        json!({"phase": "Progressing", "canaryWeight": 20, "failedChecks": 1}),
    );
    let c = parse(v);
    let json = serde_json::to_value(&c).expect("serializes");
    assert_eq!(parse(json.clone()), c);
    assert_eq!(json.pointer("/spec/service/targetPort"), Some(&json!(9898)));
    // A Knative canary without `service` does not grow one.
    let c = parse(without("/spec/service"));
    let json = serde_json::to_value(&c).expect("serializes");
    assert_eq!(json.pointer("/spec/service"), None);
}

// ---------------------------------------------------------------------------------------
// Parse errors

#[test]
fn unknown_fields_name_their_path() {
    let cases = [
        ("/spec/analysis/stepWieght", "spec.analysis.stepWieght"),
        ("/spec/spc", "spec.spc"),
        ("/spec/canaryAnalysis", "spec.canaryAnalysis"),
        ("/spec/service/portt", "spec.service.portt"),
        ("/spec/targetRef/namespace", "spec.targetRef.namespace"),
        (
            "/spec/analysis/metrics/0/thresholdRang",
            "spec.analysis.metrics[0].thresholdRang",
        ),
        (
            "/spec/analysis/metrics/0/thresholdRange/mx",
            "spec.analysis.metrics[0].thresholdRange.mx",
        ),
        (
            "/spec/analysis/webhooks/0/tpye",
            "spec.analysis.webhooks[0].tpye",
        ),
        ("/status2", "status2"),
    ];
    for (pointer, path) in cases {
        let e = parse_err(with(pointer, json!(1)));
        assert_eq!(e.path(), Some(path), "{e}");
        assert!(
            e.to_string().starts_with(&format!("{path}: unknown field")),
            "{e}"
        );
    }
    let e = parse_err(with("/spec/service/apex", json!({"label": {}})));
    assert_eq!(e.path(), Some("spec.service.apex.label"), "{e}");
    let e = parse_err(with(
        "/spec/analysis/sessionAffinity",
        json!({"cookieName": "a", "cookiename": "b"}),
    ));
    assert_eq!(
        e.path(),
        Some("spec.analysis.sessionAffinity.cookiename"),
        "{e}"
    );
    let e = parse_err(with(
        "/spec/autoscalerRef",
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "name": "x", "primaryScalerReplicas": {"minReplica": 1}}),
    ));
    assert_eq!(
        e.path(),
        Some("spec.autoscalerRef.primaryScalerReplicas.minReplica"),
        "{e}"
    );
}

#[test]
fn type_errors_name_their_path() {
    let e = parse_err(with("/spec/analysis/stepWeight", json!("x")));
    assert_eq!(e.path(), Some("spec.analysis.stepWeight"));
    assert!(e.to_string().contains("invalid type: string \"x\""), "{e}");
    let e = parse_err(with("/spec/analysis/stepWeights", json!([10, "20"])));
    assert_eq!(e.path(), Some("spec.analysis.stepWeights[1]"), "{e}");
    let e = parse_err(with("/spec/analysis/webhooks/0/type", json!("pre_rollout")));
    assert_eq!(e.path(), Some("spec.analysis.webhooks[0].type"), "{e}");
    assert!(
        e.to_string().contains("unknown variant `pre_rollout`"),
        "{e}"
    );
    let e = parse_err(with("/spec/analysis/webhooks/0/metadata/cmd", json!(1)));
    assert_eq!(
        e.path(),
        Some("spec.analysis.webhooks[0].metadata.cmd"),
        "{e}"
    );
    let e = parse_err(with(
        "/spec/analysis/alerts",
        json!([{"name": "a", "severity": "critical", "providerRef": {"name": "s"}}]),
    ));
    assert_eq!(e.path(), Some("spec.analysis.alerts[0].severity"), "{e}");
    let e = parse_err(with("/spec/service/port", json!("http")));
    assert_eq!(e.path(), Some("spec.service.port"), "{e}");
    let e = parse_err(with("/spec/service/targetPort", json!(true)));
    assert_eq!(e.path(), Some("spec.service.targetPort"), "{e}");
    // Typed fields inside pass-through objects are still typed.
    let e = parse_err(with(
        "/spec/analysis/match",
        json!([{"headers": {"x-canary": {"exact": 1}}}]),
    ));
    assert_eq!(
        e.path(),
        Some("spec.analysis.match[0].headers.x-canary.exact"),
        "{e}"
    );
    let e = parse_err(with("/spec/service/retries", json!({"attempts": "3"})));
    assert_eq!(e.path(), Some("spec.service.retries.attempts"), "{e}");
    let e = parse_err(with("/spec/skipAnalysis", json!("yes")));
    assert_eq!(e.path(), Some("spec.skipAnalysis"), "{e}");
}

#[test]
fn missing_required_fields_name_their_path() {
    let cases = [
        ("/spec/targetRef", "spec.targetRef"),
        ("/spec/targetRef/kind", "spec.targetRef.kind"),
        ("/spec/targetRef/name", "spec.targetRef.name"),
        ("/spec/service/port", "spec.service.port"),
        (
            "/spec/analysis/metrics/0/name",
            "spec.analysis.metrics[0].name",
        ),
        (
            "/spec/analysis/webhooks/0/url",
            "spec.analysis.webhooks[0].url",
        ),
        (
            "/spec/analysis/webhooks/0/name",
            "spec.analysis.webhooks[0].name",
        ),
        ("/spec", "spec"),
    ];
    for (pointer, path) in cases {
        let e = parse_err(without(pointer));
        assert_eq!(e.path(), Some(path), "{e}");
        assert_eq!(e.to_string(), format!("{path}: missing required field"));
    }
    let e = parse_err(with("/spec/analysis/alerts", json!([{"name": "a"}])));
    assert_eq!(
        e.to_string(),
        "spec.analysis.alerts[0].providerRef: missing required field"
    );
    let e = parse_err(with(
        "/spec/analysis/sessionAffinity",
        json!({"maxAge": 10}),
    ));
    assert_eq!(
        e.to_string(),
        "spec.analysis.sessionAffinity.cookieName: missing required field"
    );
}

#[test]
fn wrong_kind_or_api_version() {
    let e = parse_err(with("/kind", json!("Rollout")));
    assert_eq!(e.path(), Some("kind"));
    assert_eq!(
        e.to_string(),
        "kind: expected \"Canary\", found \"Rollout\""
    );
    let e = parse_err(with("/apiVersion", json!("flagger.app/v1alpha3")));
    assert_eq!(e.path(), Some("apiVersion"));
    assert_eq!(
        e.to_string(),
        "apiVersion: expected \"flagger.app/v1beta1\", found \"flagger.app/v1alpha3\""
    );
    let e = parse_err(without("/apiVersion"));
    assert_eq!(
        e.to_string(),
        "apiVersion: expected \"flagger.app/v1beta1\", found nothing"
    );
    let e = parse_err(json!([1]));
    assert!(
        matches!(e, SpecError::NotAMapping { found: "a list" }),
        "{e}"
    );
    let e = Canary::from_yaml("kind: Canary\n  bad: [").expect_err("bad yaml");
    assert!(matches!(e, SpecError::Yaml { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------
// Validation errors

#[test]
fn validation_collects_every_error_with_its_path() {
    let mut v = base();
    remove(&mut v, "/metadata/name");
    set(&mut v, "/spec/provider", json!("ambassador"));
    set(&mut v, "/spec/progressDeadlineSeconds", json!(0));
    set(
        &mut v,
        "/spec/targetRef",
        json!({"kind": "StatefulSet", "name": "db"}),
    );
    set(&mut v, "/spec/service/port", json!(70000));
    set(&mut v, "/spec/analysis/stepWeight", json!(120));
    set(&mut v, "/spec/analysis/maxWeight", json!(150));
    let errors = invalid(v);
    assert_eq!(
        errors,
        [
            "metadata.name: required (or metadata.generateName)",
            "spec.provider: must be one of apisix, appmesh, appmesh:v1beta2, contour, \
             gatewayapi:v1, gatewayapi:v1beta1, gloo, istio, knative, kubernetes, kuma, \
             linkerd, nginx, osm, skipper, smi:v1alpha1, smi:v1alpha2, smi:v1alpha3, \
             traefik, got \"ambassador\"",
            "spec.progressDeadlineSeconds: must be >= 1, got 0",
            "spec.targetRef.apiVersion: required",
            "spec.targetRef.kind: must be one of Deployment, DaemonSet, Service, got \
             \"StatefulSet\"",
            "spec.service.port: must be 1..=65535, got 70000",
            "spec.analysis.stepWeight: must be 0..=100, got 120",
            "spec.analysis.maxWeight: must be 0..=100, got 150",
        ]
    );
}

#[test]
fn analysis_is_required() {
    assert_eq!(error_paths(without("/spec/analysis")), ["spec.analysis"]);
    let mut v = without("/spec/analysis");
    set(&mut v, "/spec/skipAnalysis", json!(true));
    assert_eq!(error_paths(v), ["spec.analysis"]);
}

#[test]
fn analysis_one_of() {
    assert_eq!(
        invalid(without("/spec/analysis/interval")),
        ["spec.analysis.interval: required"]
    );
    assert_eq!(
        invalid(without("/spec/analysis/threshold")),
        ["spec.analysis.threshold: required"]
    );
    assert_eq!(
        invalid(without("/spec/analysis/stepWeight")),
        ["spec.analysis: one of iterations, stepWeight, stepWeights is required"]
    );
    assert_eq!(
        invalid(with("/spec/analysis/iterations", json!(10))),
        [
            "spec.analysis: only one of iterations, stepWeight, stepWeights may be set, \
          found iterations, stepWeight"
        ]
    );
    let mut v = without("/spec/analysis/stepWeight");
    set(&mut v, "/spec/analysis/iterations", json!(10));
    assert_eq!(error_paths(v), Vec::<String>::new());
    let mut v = without("/spec/analysis/stepWeight");
    set(&mut v, "/spec/analysis/stepWeights", json!([1, 2, 10, 200]));
    assert_eq!(error_paths(v), Vec::<String>::new());
}

#[test]
fn durations() {
    for ok in ["1m", "30s", "1m30s", "90s", "0s", "500ms"] {
        assert_eq!(
            error_paths(with("/spec/analysis/interval", json!(ok))),
            Vec::<String>::new(),
            "{ok}"
        );
    }
    for bad in ["1h", "1.5m", "m", "", "-1m", " 1m"] {
        let errors = invalid(with("/spec/analysis/interval", json!(bad)));
        assert_eq!(
            errors,
            [format!(
                "spec.analysis.interval: must start with a whole number of minutes or \
                 seconds (pattern ^[0-9]+(m|s), e.g. 1m, 30s), got {bad:?}"
            )]
        );
    }
    // Matches the CRD pattern but is not a Go duration.
    assert_eq!(
        invalid(with("/spec/analysis/interval", json!("5min"))),
        ["spec.analysis.interval: unknown unit \"min\" in duration \"5min\""]
    );
    assert_eq!(
        error_paths(with("/spec/analysis/metrics/0/interval", json!("1h"))),
        ["spec.analysis.metrics[0].interval"]
    );
    assert_eq!(
        error_paths(with("/spec/analysis/webhooks/0/timeout", json!("5"))),
        ["spec.analysis.webhooks[0].timeout"]
    );
}

#[test]
fn weights_and_counts() {
    assert_eq!(
        invalid(with("/spec/analysis/threshold", json!(-1))),
        ["spec.analysis.threshold: must be >= 0, got -1"]
    );
    let mut v = without("/spec/analysis/stepWeight");
    set(&mut v, "/spec/analysis/iterations", json!(-1));
    assert_eq!(
        invalid(v),
        ["spec.analysis.iterations: must be >= 0, got -1"]
    );
    assert_eq!(
        error_paths(with("/spec/analysis/stepWeight", json!(-10))),
        ["spec.analysis.stepWeight"]
    );
    assert_eq!(
        error_paths(with("/spec/analysis/stepWeightPromotion", json!(101))),
        ["spec.analysis.stepWeightPromotion"]
    );
    assert_eq!(
        error_paths(with("/spec/analysis/mirrorWeight", json!(120))),
        ["spec.analysis.mirrorWeight"]
    );
    assert_eq!(
        error_paths(with("/spec/analysis/primaryReadyThreshold", json!(101))),
        ["spec.analysis.primaryReadyThreshold"]
    );
    assert_eq!(
        error_paths(with("/spec/analysis/canaryReadyThreshold", json!(-1))),
        ["spec.analysis.canaryReadyThreshold"]
    );
    for ok in [0, 50, 100] {
        assert_eq!(
            error_paths(with("/spec/analysis/maxWeight", json!(ok))),
            Vec::<String>::new()
        );
    }

    let ladder = |w: Value| {
        let mut v = without("/spec/analysis/stepWeight");
        set(&mut v, "/spec/analysis/stepWeights", w);
        invalid(v)
    };
    assert_eq!(
        ladder(json!([0, 10])),
        ["spec.analysis.stepWeights[0]: must be > 0, got 0"]
    );
    assert_eq!(
        ladder(json!([10, 20, 20, 5])),
        [
            "spec.analysis.stepWeights[2]: must be greater than the previous step (20), got 20",
            "spec.analysis.stepWeights[3]: must be greater than the previous step (20), got 5",
        ]
    );
}

#[test]
fn references() {
    let mut v = base();
    set(&mut v, "/spec/provider", json!("nginx"));
    assert_eq!(
        invalid(v),
        ["spec.ingressRef: required with provider nginx"]
    );
    let mut v = base();
    set(&mut v, "/spec/provider", json!("skipper"));
    set(
        &mut v,
        "/spec/ingressRef",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}),
    );
    assert_eq!(error_paths(v), Vec::<String>::new());
    let mut v = base();
    set(&mut v, "/spec/provider", json!("apisix"));
    set(
        &mut v,
        "/spec/ingressRef",
        json!({"kind": "ApisixRoute", "name": "web"}),
    );
    assert_eq!(
        invalid(v),
        [
            "spec.ingressRef.apiVersion: required",
            "spec.ingressRef.kind: must be one of Ingress, got \"ApisixRoute\"",
            "spec.routeRef: required with provider apisix",
        ]
    );
    let mut v = base();
    set(&mut v, "/spec/provider", json!("gatewayapi:v1"));
    assert_eq!(
        invalid(v),
        ["spec.service.gatewayRefs: required with provider gatewayapi:v1"]
    );
    let mut v = base();
    set(&mut v, "/spec/upstreamRef", json!({"name": ""}));
    assert_eq!(
        error_paths(v),
        [
            "spec.upstreamRef.apiVersion",
            "spec.upstreamRef.kind",
            "spec.upstreamRef.name"
        ]
    );
    let mut v = base();
    set(
        &mut v,
        "/spec/autoscalerRef",
        json!({"apiVersion": "autoscaling/v2", "kind": "HPA", "name": "web",
               "primaryScalerReplicas": {"minReplicas": 5, "maxReplicas": 2}}),
    );
    assert_eq!(
        invalid(v),
        [
            "spec.autoscalerRef.kind: must be one of HorizontalPodAutoscaler, ScaledObject, \
             got \"HPA\"",
            "spec.autoscalerRef.primaryScalerReplicas: minReplicas (5) must not exceed \
             maxReplicas (2)",
        ]
    );
    let mut v = base();
    set(
        &mut v,
        "/spec/autoscalerRef",
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "web",
               "primaryScalerReplicas": {"minReplicas": 0}}),
    );
    assert_eq!(
        invalid(v),
        ["spec.autoscalerRef.primaryScalerReplicas.minReplicas: must be >= 1, got 0"]
    );
}

#[test]
fn knative_targets() {
    let mut v = without("/spec/service");
    set(
        &mut v,
        "/spec/targetRef",
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "web"}),
    );
    assert_eq!(
        invalid(v.clone()),
        ["spec.provider: must be \"knative\" for a Knative Service target"]
    );
    set(&mut v, "/spec/provider", json!("knative"));
    assert_eq!(error_paths(v), Vec::<String>::new());
    // Other targets need the service port.
    assert_eq!(
        invalid(without("/spec/service")),
        ["spec.service.port: required"]
    );
}

#[test]
fn service_rules() {
    assert_eq!(
        error_paths(with("/spec/service/targetPort", json!("http-metrics"))),
        Vec::<String>::new()
    );
    assert_eq!(
        error_paths(with("/spec/service/targetPort", json!(8080))),
        Vec::<String>::new()
    );
    for bad in [
        json!(0),
        json!(65536),
        json!("HTTP"),
        json!("a-very-long-port-name"),
        json!("80"),
        json!(""),
    ] {
        assert_eq!(
            error_paths(with("/spec/service/targetPort", bad.clone())),
            ["spec.service.targetPort"],
            "{bad}"
        );
    }
    assert_eq!(
        error_paths(with("/spec/service/trafficDistribution", json!("Nearest"))),
        ["spec.service.trafficDistribution"]
    );
    let mut v = base();
    set(&mut v, "/spec/service/delegation", json!(true));
    set(&mut v, "/spec/service/hosts", json!(["a.example"]));
    set(&mut v, "/spec/service/gateways", json!(["mesh"]));
    assert_eq!(
        invalid(v),
        [
            "spec.service.hosts: must be empty when delegation is enabled",
            "spec.service.gateways: must be empty when delegation is enabled",
        ]
    );
    assert_eq!(
        error_paths(with(
            "/spec/service/gatewayRefs",
            json!([{"namespace": "x", "port": 0}])
        )),
        [
            "spec.service.gatewayRefs[0].name",
            "spec.service.gatewayRefs[0].port"
        ]
    );
    assert_eq!(
        error_paths(with(
            "/spec/service/mirror",
            json!([{"backendRef": {"port": 80}}])
        )),
        ["spec.service.mirror[0].backendRef.name"]
    );
    assert_eq!(
        invalid(with(
            "/spec/service/match",
            json!([{"uri": {"prefix": "/", "exact": "/a"}, "headers": {"x": {}}}])
        )),
        [
            "spec.service.match[0].uri: set only one of exact, prefix, suffix, regex, found exact, prefix"
        ]
    );
}

#[test]
fn analysis_match_headers_need_exactly_one_kind() {
    let mut v = without("/spec/analysis/stepWeight");
    set(&mut v, "/spec/analysis/iterations", json!(10));
    set(
        &mut v,
        "/spec/analysis/match",
        json!([
            {"headers": {"x-canary": {"exact": "a"}, "user-agent": {"suffix": "Firefox"}}},
            {"headers": {"cookie": {}, "x-b": {"exact": "1", "regex": ".*"}}}
        ]),
    );
    assert_eq!(
        invalid(v),
        [
            "spec.analysis.match[1].headers.cookie: set one of exact, prefix, suffix, regex",
            "spec.analysis.match[1].headers.x-b: set only one of exact, prefix, suffix, regex, \
             found exact, regex",
        ]
    );
}

#[test]
fn metric_rules() {
    let metrics = json!([
        {"name": "request-duration", "thresholdRange": {"max": 500}},
        {"name": "error-rate", "templateRef": {"name": "error-rate", "namespace": "flagger"}},
        {"name": "custom", "query": "sum(rate(x[1m]))", "threshold": 5},
        {"name": "nothing"},
        {"name": "empty-query", "query": "  "},
        {"name": "bad-range", "query": "up", "thresholdRange": {"min": 10, "max": 1}},
        {"name": "", "templateRef": {"name": ""}}
    ]);
    assert_eq!(
        invalid(with("/spec/analysis/metrics", metrics)),
        [
            "spec.analysis.metrics[3]: needs a query or a templateRef (or a builtin name: \
             request-success-rate, request-duration)",
            "spec.analysis.metrics[4]: needs a query or a templateRef (or a builtin name: \
             request-success-rate, request-duration)",
            "spec.analysis.metrics[5].thresholdRange: min (10) must not exceed max (1)",
            "spec.analysis.metrics[6].name: required",
            "spec.analysis.metrics[6].templateRef.name: required",
        ]
    );
}

#[test]
fn webhook_rules() {
    for ok in [
        "http://flagger-loadtester.test/",
        "https://gate.example.com:8443/approve?x=1",
        "HTTP://loadtester",
        "http://user@host/",
    ] {
        assert_eq!(
            error_paths(with("/spec/analysis/webhooks/0/url", json!(ok))),
            Vec::<String>::new(),
            "{ok}"
        );
    }
    for (bad, message) in [
        ("", "required"),
        (
            "flagger-loadtester.test/",
            "must be an http:// or https:// URL, got \"flagger-loadtester.test/\"",
        ),
        (
            "ftp://host/",
            "must be an http:// or https:// URL, got \"ftp://host/\"",
        ),
        ("http:///path", "has no host: \"http:///path\""),
        ("http://:80/", "has no host: \"http://:80/\""),
        (
            "http://bad host/",
            "is not a valid URL: \"http://bad host/\"",
        ),
    ] {
        assert_eq!(
            invalid(with("/spec/analysis/webhooks/0/url", json!(bad))),
            [format!("spec.analysis.webhooks[0].url: {message}")],
            "{bad}"
        );
    }
    assert_eq!(
        error_paths(with("/spec/analysis/webhooks/0/retries", json!(-1))),
        ["spec.analysis.webhooks[0].retries"]
    );
    assert_eq!(
        error_paths(with("/spec/analysis/webhooks/0/name", json!(""))),
        ["spec.analysis.webhooks[0].name"]
    );
    assert_eq!(
        error_paths(with(
            "/spec/analysis/alerts",
            json!([{"name": "", "providerRef": {"name": ""}}])
        )),
        [
            "spec.analysis.alerts[0].name",
            "spec.analysis.alerts[0].providerRef.name"
        ]
    );
}

#[test]
fn session_affinity_rules() {
    assert_eq!(
        invalid(with(
            "/spec/analysis/sessionAffinity",
            json!({"cookieName": "flagger", "primaryCookieName": "flagger", "sameSite": "lax"})
        )),
        [
            "spec.analysis.sessionAffinity.primaryCookieName: must differ from cookieName",
            "spec.analysis.sessionAffinity.sameSite: must be one of Strict, Lax, None, got \"lax\"",
        ]
    );
    assert_eq!(
        error_paths(with(
            "/spec/analysis/sessionAffinity",
            json!({"cookieName": ""})
        )),
        ["spec.analysis.sessionAffinity.cookieName"]
    );
}

// ---------------------------------------------------------------------------------------
// Multi-document texts

#[test]
fn multi_document_texts_keep_canaries_only() {
    let text = r#"# header comment
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: latency}
spec: {query: up}
---
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 1, iterations: 2}
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: broken}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 1, stepWieght: 2}
---
apiVersion: flagger.app/v1alpha1
kind: Canary
"#;
    let docs = canary_documents(text);
    let shape: Vec<(usize, usize, bool)> = docs
        .iter()
        .map(|d| (d.index, d.line, d.result.is_ok()))
        .collect();
    // `line` is where the document starts, its `---` marker included.
    assert_eq!(shape, [(2, 11, true), (3, 19, false), (4, 27, false)]);
    let wrapped = canaries_from_yaml_documents(text);
    assert_eq!(wrapped.len(), 3);
    let err = wrapped[1].as_ref().expect_err("typo");
    assert!(
        matches!(
            err,
            SpecError::Document {
                index: 3,
                line: 19,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.path(), Some("spec.analysis.stepWieght"));
    assert_eq!(
        wrapped[2].as_ref().expect_err("alpha").path(),
        Some("apiVersion")
    );
    assert!(canaries_from_yaml_documents("").is_empty());
}
