//! Unit tests: valid documents with asserted values, and invalid fragments with the exact
//! path of their error.

use serde_json::{Value, json};

use super::*;
use crate::intstr::IntOrPercent;

/// A small valid canary rollout.
fn base() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
        }
    })
}

/// `base()` with Istio traffic routing, services and two managed routes.
fn routed() -> Value {
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary",
        json!({
            "canaryService": "demo-canary",
            "stableService": "demo-stable",
            "trafficRouting": {
                "managedRoutes": [{"name": "header"}, {"name": "mirror"}],
                "istio": {"virtualService": {"name": "demo-vsvc", "routes": ["primary"]}}
            },
            "steps": [{"setWeight": 20}, {"pause": {}}]
        }),
    );
    v
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

fn with_steps(mut v: Value, steps: Value) -> Value {
    set(&mut v, "/spec/strategy/canary/steps", steps);
    v
}

fn parse(v: Value) -> Rollout {
    Rollout::from_json_value(v).unwrap_or_else(|e| panic!("parse failed: {e}"))
}

/// The parse error of an invalid document.
fn parse_err(v: Value) -> SpecError {
    match Rollout::from_json_value(v) {
        Ok(ro) => panic!("expected a parse error, got {ro:?}"),
        Err(e) => e,
    }
}

/// The validation errors of a well-typed but invalid document.
fn invalid(v: Value) -> ValidationErrors {
    match parse(v).validate() {
        Ok(()) => panic!("expected validation errors"),
        Err(e) => e,
    }
}

fn paths(e: &ValidationErrors) -> Vec<&str> {
    e.iter().map(|e| e.path.as_str()).collect()
}

/// Asserts that validation fails with exactly one error, at `path`, whose message
/// contains `message`.
fn assert_only_error(v: Value, path: &str, message: &str) {
    let errs = invalid(v);
    assert_eq!(paths(&errs), vec![path], "{errs}");
    assert!(
        errs.0[0].message.contains(message),
        "message {:?} does not contain {message:?}",
        errs.0[0].message
    );
}

// ---------------------------------------------------------------------------------------
// Valid documents.

#[test]
fn base_documents_are_valid() {
    parse(base()).validate().unwrap();
    parse(routed()).validate().unwrap();
}

#[test]
fn pause_durations_in_seconds() {
    let ro = parse(with_steps(
        base(),
        json!([
            {"pause": {"duration": "1h30m"}},
            {"pause": {"duration": 30}},
            {"pause": {"duration": "45"}},
            {"pause": {"duration": "1.5m"}},
            {"pause": {}}
        ]),
    ));
    ro.validate().unwrap();
    let secs: Vec<Option<i64>> = ro
        .canary()
        .unwrap()
        .steps
        .iter()
        .map(|s| match s {
            CanaryStep::Pause(p) => p.duration_seconds(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(secs, vec![Some(5400), Some(30), Some(45), Some(90), None]);
    // The original form is kept.
    let CanaryStep::Pause(p) = &ro.canary().unwrap().steps[2] else {
        panic!()
    };
    assert_eq!(p.duration, Some(PauseDuration::Text("45".into())));
}

#[test]
fn pause_duration_from_yaml() {
    let ro = Rollout::from_yaml(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: demo}
spec:
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec: {containers: [{name: app, image: nginx}]}
  strategy:
    canary:
      steps:
      - setWeight: 10
      - pause: {duration: 1h30m}
      - pause: {duration: 30}
      - pause: {duration: "45"}
"#,
    )
    .unwrap();
    ro.validate().unwrap();
    let steps = &ro.canary().unwrap().steps;
    assert_eq!(steps[0], CanaryStep::SetWeight(10));
    let secs: Vec<_> = steps[1..]
        .iter()
        .map(|s| match s {
            CanaryStep::Pause(p) => p.duration_seconds(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(secs, vec![Some(5400), Some(30), Some(45)]);
}

#[test]
fn defaults() {
    let mut v = base();
    remove(&mut v, "/spec/replicas");
    let ro = parse(v);
    assert_eq!(ro.spec.replicas(), 1);
    assert_eq!(ro.spec.progress_deadline_seconds(), 600);
    assert_eq!(ro.spec.revision_history_limit(), 10);
    assert_eq!(ro.canary().unwrap().max_traffic_weight(), 100);
    assert_eq!(ro.canary().unwrap().max_surge(), IntOrPercent::percent(25));

    let mut v = routed();
    set(
        &mut v,
        "/spec/strategy/canary/trafficRouting",
        json!({"nginx": {"stableIngress": "demo"}, "maxTrafficWeight": 1000}),
    );
    let ro = parse(with_steps(v, json!([{"setWeight": 500}])));
    ro.validate().unwrap();
    assert_eq!(ro.canary().unwrap().max_traffic_weight(), 1000);
}

#[test]
fn steps_serialize_externally_tagged() {
    let ro = parse(with_steps(
        routed(),
        json!([
            {"setWeight": 10},
            {"pause": {}},
            {"pause": {"duration": "1m"}},
            {"setCanaryScale": {"replicas": 2}},
            {"setHeaderRoute": {"name": "header", "match": [{"headerName": "x", "headerValue": {"exact": "y"}}]}},
            {"setMirrorRoute": {"name": "mirror", "percentage": 50}},
            {"analysis": {"templates": [{"templateName": "ok"}]}},
            {"plugin": {"name": "org/p", "config": {"any": [1, null, "x"]}}}
        ]),
    ));
    ro.validate().unwrap();
    let out = serde_json::to_value(&ro).unwrap();
    let steps = &out["spec"]["strategy"]["canary"]["steps"];
    assert_eq!(steps[0], json!({"setWeight": 10}));
    assert_eq!(steps[1], json!({"pause": {}}));
    assert_eq!(steps[2], json!({"pause": {"duration": "1m"}}));
    assert_eq!(steps[3], json!({"setCanaryScale": {"replicas": 2}}));
    assert_eq!(
        steps[7],
        json!({"plugin": {"name": "org/p", "config": {"any": [1, null, "x"]}}})
    );
    assert_eq!(Rollout::from_json_value(out).unwrap(), ro);
}

#[test]
fn background_analysis_keeps_fields_side_by_side() {
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/analysis",
        json!({
            "templates": [{"templateName": "success-rate"}],
            "startingStep": 1,
            "args": [
                {"name": "svc", "value": "demo"},
                {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                {"name": "region", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['region']"}}}
            ]
        }),
    );
    let ro = parse(v);
    ro.validate().unwrap();
    let bg = ro.canary().unwrap().analysis.as_ref().unwrap();
    assert_eq!(bg.starting_step, Some(1));
    assert_eq!(bg.analysis.templates[0].template_name, "success-rate");
    assert_eq!(
        bg.analysis.args[1]
            .value_from
            .as_ref()
            .unwrap()
            .pod_template_hash_value,
        Some(PodTemplateHashValue::Latest)
    );
    let out = serde_json::to_value(&ro).unwrap();
    assert_eq!(
        out["spec"]["strategy"]["canary"]["analysis"]["startingStep"],
        json!(1)
    );
    assert_eq!(
        out["spec"]["strategy"]["canary"]["analysis"]["templates"],
        json!([{"templateName": "success-rate"}])
    );
}

#[test]
fn nulls_read_as_absent() {
    let mut v = base();
    set(&mut v, "/spec/paused", Value::Null);
    set(&mut v, "/spec/minReadySeconds", Value::Null);
    set(&mut v, "/spec/strategy/canary/maxSurge", Value::Null);
    let ro = parse(v);
    assert!(!ro.spec.paused);
    assert_eq!(ro.spec.min_ready_seconds, None);
}

#[test]
fn blue_green_is_parsed_and_validated() {
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy",
        json!({"blueGreen": {
            "activeService": "active",
            "previewService": "preview",
            "previewReplicaCount": 1,
            "autoPromotionEnabled": false,
            "autoPromotionSeconds": 30,
            "maxUnavailable": "10%",
            "scaleDownDelaySeconds": 60,
            "scaleDownDelayRevisionLimit": 2,
            "abortScaleDownDelaySeconds": 0,
            "prePromotionAnalysis": {"templates": [{"templateName": "smoke"}]},
            "postPromotionAnalysis": {"templates": [{"templateName": "smoke", "clusterScope": true}]},
            "antiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 50}},
            "previewMetadata": {"labels": {"role": "preview"}},
            "activeMetadata": {"annotations": {"role": "active"}}
        }}),
    );
    let ro = parse(v);
    ro.validate().unwrap();
    let bg = ro.blue_green().unwrap();
    assert!(!bg.auto_promotion_enabled());
    assert_eq!(bg.abort_scale_down_delay_seconds(), 0);
    assert_eq!(bg.preview_replica_count, Some(1));
}

#[test]
fn workload_ref_needs_no_template_or_selector() {
    let mut v = base();
    remove(&mut v, "/spec/template");
    remove(&mut v, "/spec/selector");
    set(
        &mut v,
        "/spec/workloadRef",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo", "scaleDown": "onsuccess"}),
    );
    let ro = parse(v);
    ro.validate().unwrap();
    assert_eq!(
        ro.spec.workload_ref.as_ref().unwrap().scale_down,
        Some(ScaleDown::OnSuccess)
    );
}

#[test]
fn every_router_parses() {
    let mut v = routed();
    set(
        &mut v,
        "/spec/strategy/canary/trafficRouting",
        json!({
            "istio": {
                "virtualServices": [{
                    "name": "vs",
                    "routes": ["primary"],
                    "tlsRoutes": [{"port": 443, "sniHosts": ["a.example.com"]}],
                    "tcpRoutes": [{"port": 8080}]
                }],
                "destinationRule": {"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable", "additionalSubsetNames": ["x"]}
            },
            "nginx": {
                "stableIngresses": ["a", "b"],
                "annotationPrefix": "custom.nginx",
                "additionalIngressAnnotations": {"canary-by-header": "X-Canary"},
                "canaryIngressAnnotations": {"my/key": "v"}
            },
            "alb": {
                "ingresses": ["a"], "servicePort": 443, "rootService": "root",
                "annotationPrefix": "custom.alb",
                "stickinessConfig": {"enabled": true, "durationSeconds": 3600}
            },
            "smi": {"rootService": "root", "trafficSplitName": "split"},
            "ambassador": {"mappings": ["m1"]},
            "appMesh": {
                "virtualService": {"name": "vs", "routes": ["r"]},
                "virtualNodeGroup": {"canaryVirtualNodeRef": {"name": "c"}, "stableVirtualNodeRef": {"name": "s"}}
            },
            "traefik": {"weightedTraefikServiceName": "wts"},
            "apisix": {"route": {"name": "r", "rules": ["rule"]}},
            "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r", "namespace": "ns"}},
            "managedRoutes": [{"name": "header"}],
            "maxTrafficWeight": 100
        }),
    );
    let ro = parse(v);
    ro.validate().unwrap();
    let tr = ro.canary().unwrap().traffic_routing.as_ref().unwrap();
    assert_eq!(
        tr.istio.as_ref().unwrap().virtual_services[0].tls_routes[0].port,
        Some(443)
    );
    assert_eq!(
        tr.alb
            .as_ref()
            .unwrap()
            .stickiness_config
            .as_ref()
            .unwrap()
            .duration_seconds,
        3600
    );
    assert_eq!(
        tr.plugins.as_ref().unwrap()["argoproj-labs/gatewayAPI"],
        json!({"httpRoute": "r", "namespace": "ns"})
    );
}

#[test]
fn experiment_step_parses() {
    let mut v = routed();
    set(
        &mut v,
        "/spec/strategy/canary/steps",
        json!([{"experiment": {
            "duration": "1h",
            "templates": [
                {"name": "baseline", "specRef": "stable", "replicas": 1, "service": {"name": "baseline-svc"}},
                {"name": "canary", "specRef": "canary", "weight": 10, "metadata": {"labels": {"x": "y"}},
                 "selector": {"matchLabels": {"app": "demo"}}}
            ],
            "analyses": [{"name": "mw", "templateName": "mann-whitney", "requiredForCompletion": true,
                          "args": [{"name": "a", "value": "b"}]}],
            "dryRun": [{"metricName": ".*"}],
            "measurementRetention": [{"metricName": ".*", "limit": 10}],
            "analysisRunMetadata": {"labels": {"k": "v"}},
            "scaleDownDelaySeconds": 10
        }}]),
    );
    let ro = parse(v);
    ro.validate().unwrap();
    let CanaryStep::Experiment(e) = &ro.canary().unwrap().steps[0] else {
        panic!()
    };
    assert_eq!(e.templates[1].spec_ref, SpecRef::Canary);
    assert!(e.analyses[0].required_for_completion);
}

/// Argo's full specification page, with its placeholders filled in: every field of the
/// reference parses (the page itself is in the corpus test's list of rejected documents).
#[test]
fn specification_page_fields_are_modelled() {
    let text =
        include_str!("../../testdata/corpus/argo-rollouts/docs__features__specification__0.yaml");
    let step =
        "\n        - replicaProgressThreshold:\n            type: Percent\n            value: 90\n";
    assert!(text.contains(step));
    let text = text
        .replace(step, "\n")
        .replace("never|onsuccess|progressively", "progressively");
    let text = &text[..text.find("\nstatus:").expect("status block")];
    let ro = Rollout::from_yaml(text).unwrap_or_else(|e| panic!("{e}"));
    let c = ro.canary().unwrap();
    assert_eq!(c.max_traffic_weight(), 1000);
    assert_eq!(c.min_pods_per_replica_set, Some(2));
    assert_eq!(c.steps.len(), 11);
    assert_eq!(
        ro.spec.restart_at.unwrap().to_string(),
        "2020-03-30T21:19:35Z"
    );
    // The page combines both strategies, a template with a workloadRef, etc.
    let errs = ro.validate().unwrap_err();
    assert!(errs.at("spec.strategy").is_some(), "{errs}");
}

#[test]
fn multi_document_text() {
    let text = r#"# leading comment
---
apiVersion: v1
kind: Service
metadata: {name: demo}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: one}
spec:
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec: {containers: [{name: app, image: nginx}]}
  strategy: {canary: {}}
---
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: two}
spec:
  strategy: {canary: {steps: [{setWieght: 10}]}}
---
kind: Rollout
spec: [unclosed
---
apiVersion: argoproj.io/v1beta1
kind: Rollout
spec: {}
"#;
    let docs = rollout_documents(text);
    let summary: Vec<(usize, usize, bool)> = docs
        .iter()
        .map(|d| (d.index, d.line, d.result.is_ok()))
        .collect();
    assert_eq!(
        summary,
        vec![(1, 6, true), (2, 17, false), (3, 23, false), (4, 26, false)]
    );
    assert_eq!(
        docs[1].result.as_ref().unwrap_err().path(),
        Some("spec.strategy.canary.steps[0].setWieght")
    );
    match docs[2].result.as_ref().unwrap_err() {
        SpecError::Yaml { line, .. } => assert!((24..=26).contains(line), "line {line}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        docs[3].result.as_ref().unwrap_err(),
        SpecError::WrongApiVersion { .. }
    ));

    let wrapped = rollouts_from_yaml_documents(text);
    assert_eq!(wrapped.len(), 4);
    let err = wrapped[1].as_ref().unwrap_err();
    assert_eq!(err.document_index(), Some(2));
    assert_eq!(err.path(), Some("spec.strategy.canary.steps[0].setWieght"));
    assert!(
        err.to_string()
            .starts_with("document 2 (line 17): spec.strategy"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Parse errors name the field.

fn assert_parse_path(v: Value, path: &str, message: &str) {
    let e = parse_err(v);
    assert_eq!(e.path(), Some(path), "{e}");
    assert!(
        e.to_string().contains(message),
        "{e} does not contain {message:?}"
    );
}

#[test]
fn wrong_type_names_the_field() {
    assert_parse_path(
        with_steps(base(), json!([{"setWeight": 10}, {"setWeight": "ten"}])),
        "spec.strategy.canary.steps[1].setWeight",
        "invalid type: string \"ten\", expected i32",
    );
    let mut v = base();
    set(&mut v, "/spec/replicas", json!("three"));
    assert_parse_path(v, "spec.replicas", "invalid type");
}

#[test]
fn typo_in_step_kind() {
    assert_parse_path(
        with_steps(base(), json!([{"setWieght": 10}])),
        "spec.strategy.canary.steps[0].setWieght",
        "unknown field, expected one of `setWeight`",
    );
}

#[test]
fn typo_in_strategy_field() {
    let mut v = base();
    set(&mut v, "/spec/strategy/canary/canaryServce", json!("x"));
    assert_parse_path(v, "spec.strategy.canary.canaryServce", "unknown field");
}

#[test]
fn typo_in_background_analysis() {
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/analysis",
        json!({"templates": [{"templateName": "a"}], "startingSteps": 1}),
    );
    assert_parse_path(
        v,
        "spec.strategy.canary.analysis.startingSteps",
        "unknown field",
    );
}

#[test]
fn step_with_two_kinds() {
    assert_parse_path(
        with_steps(base(), json!([{"setWeight": 10, "pause": {}}])),
        "spec.strategy.canary.steps[0]",
        "a step may hold only one of setWeight, pause, experiment, analysis; found `setWeight` and `pause`",
    );
}

#[test]
fn combined_step_round_trips() {
    let step: CanaryStep = serde_json::from_value(json!({
        "setCanaryScale": {"replicas": 2},
        "setHeaderRoute": {"name": "h", "match": [{"headerName": "x", "headerValue": {"exact": "1"}}]}
    }))
    .expect("combined step parses");
    assert_eq!(step.parts().len(), 2);
    assert!(matches!(step.primary(), CanaryStep::SetCanaryScale(_)));
    assert_eq!(step.kind(), "setCanaryScale");
    let back: CanaryStep = serde_json::from_value(serde_json::to_value(&step).unwrap()).unwrap();
    assert_eq!(back, step);
    let dup = serde_json::from_str::<CanaryStep>(r#"{"setWeight": 1, "setWeight": 2}"#);
    assert!(
        dup.unwrap_err()
            .to_string()
            .contains("duplicate field `setWeight`")
    );
}

#[test]
fn empty_step_and_null_pause() {
    assert_parse_path(
        with_steps(base(), json!([{}])),
        "spec.strategy.canary.steps[0]",
        "empty step",
    );
    assert_parse_path(
        with_steps(base(), json!([{"pause": null}])),
        "spec.strategy.canary.steps[0].pause",
        "invalid type: null",
    );
    assert_parse_path(
        with_steps(base(), json!(["pause"])),
        "spec.strategy.canary.steps[0]",
        "expected a canary step",
    );
}

#[test]
fn missing_required_fields() {
    let mut v = base();
    remove(&mut v, "/spec");
    assert_parse_path(v, "spec", "missing required field");

    let mut v = routed();
    set(
        &mut v,
        "/spec/strategy/canary/trafficRouting",
        json!({"alb": {"ingress": "demo"}}),
    );
    assert_parse_path(
        v,
        "spec.strategy.canary.trafficRouting.alb.servicePort",
        "missing required field",
    );
}

#[test]
fn bad_enum_values() {
    let mut v = base();
    set(
        &mut v,
        "/spec/workloadRef",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "scaleDown": "sometimes"}),
    );
    assert_parse_path(
        v,
        "spec.workloadRef.scaleDown",
        "unknown variant `sometimes`",
    );

    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/replicaProgressThreshold",
        json!({"type": "Pod", "value": 1}),
    );
    assert_parse_path(
        v,
        "spec.strategy.canary.replicaProgressThreshold.type",
        "unknown variant `Pod`",
    );
}

#[test]
fn bad_scalars() {
    assert_parse_path(
        with_steps(base(), json!([{"pause": {"duration": 1.5}}])),
        "spec.strategy.canary.steps[0].pause.duration",
        "expected an integer number of seconds or a duration string",
    );
    let mut v = base();
    set(&mut v, "/spec/restartAt", json!("yesterday"));
    assert_parse_path(v, "spec.restartAt", "invalid RFC 3339 timestamp");
    let mut v = base();
    set(
        &mut v,
        "/spec/template/spec/containers/0/ports",
        json!([{"containerPort": "http"}]),
    );
    assert_parse_path(
        v,
        "spec.template.spec.containers[0].ports[0].containerPort",
        "invalid type",
    );
}

#[test]
fn wrong_api_version_kind_and_shape() {
    let mut v = base();
    set(&mut v, "/apiVersion", json!("argoproj.io/v1beta1"));
    let e = parse_err(v);
    assert_eq!(e.path(), Some("apiVersion"));
    assert_eq!(
        e.to_string(),
        "apiVersion: expected \"argoproj.io/v1alpha1\", found \"argoproj.io/v1beta1\""
    );

    let mut v = base();
    set(&mut v, "/kind", json!("Deployment"));
    assert!(matches!(parse_err(v), SpecError::WrongKind { found: Some(k) } if k == "Deployment"));

    let mut v = base();
    remove(&mut v, "/kind");
    assert!(matches!(parse_err(v), SpecError::WrongKind { found: None }));

    assert!(matches!(
        parse_err(json!([1, 2])),
        SpecError::NotAMapping { .. }
    ));
    assert!(matches!(
        Rollout::from_yaml(""),
        Err(SpecError::NotAMapping { .. })
    ));
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let e = Rollout::from_yaml("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec: {a: [}\n")
        .unwrap_err();
    match &e {
        SpecError::Yaml { line, column, .. } => {
            assert_eq!(*line, 3, "{e}");
            assert!(*column > 0, "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().starts_with("invalid yaml at line 3"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Validation errors name the field.

#[test]
fn set_weight_out_of_range() {
    assert_only_error(
        with_steps(base(), json!([{"setWeight": 150}])),
        "spec.strategy.canary.steps[0].setWeight",
        "must be 0..=100, got 150",
    );
    assert_only_error(
        with_steps(base(), json!([{"setWeight": -1}])),
        "spec.strategy.canary.steps[0].setWeight",
        "must be 0..=100",
    );
}

#[test]
fn negative_replicas() {
    let mut v = base();
    set(&mut v, "/spec/replicas", json!(-1));
    assert_only_error(v, "spec.replicas", "must be >= 0, got -1");
}

#[test]
fn strategy_must_be_exactly_one() {
    let mut v = base();
    set(&mut v, "/spec/strategy", json!({}));
    assert_only_error(
        v.clone(),
        "spec.strategy",
        "must set one of canary and blueGreen",
    );
    remove(&mut v, "/spec/strategy");
    assert_only_error(v, "spec.strategy", "must set one of canary and blueGreen");

    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/blueGreen",
        json!({"activeService": "active"}),
    );
    assert_only_error(v, "spec.strategy", "mutually exclusive");
}

#[test]
fn bad_max_surge() {
    let mut v = base();
    set(&mut v, "/spec/strategy/canary/maxSurge", json!("oops"));
    assert_only_error(v, "spec.strategy.canary.maxSurge", "invalid value \"oops\"");

    let mut v = base();
    set(&mut v, "/spec/strategy/canary/maxSurge", json!(0));
    set(&mut v, "/spec/strategy/canary/maxUnavailable", json!("0%"));
    assert_only_error(v, "spec.strategy.canary.maxSurge", "must not both be 0");

    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/maxUnavailable",
        json!("120%"),
    );
    assert_only_error(
        v,
        "spec.strategy.canary.maxUnavailable",
        "must not exceed 100%",
    );
}

#[test]
fn header_route_needs_managed_route() {
    let mut v = routed();
    set(
        &mut v,
        "/spec/strategy/canary/trafficRouting/managedRoutes",
        json!([]),
    );
    let v = with_steps(
        v,
        json!([{"setHeaderRoute": {"name": "header", "match": [{"headerName": "x", "headerValue": {"exact": "1"}}]}}]),
    );
    assert_only_error(
        v,
        "spec.strategy.canary.steps[0].setHeaderRoute.name",
        "not listed in trafficRouting.managedRoutes",
    );
}

#[test]
fn header_route_needs_a_capable_router() {
    let v = with_steps(base(), json!([{"setHeaderRoute": {"name": "header"}}]));
    let errs = invalid(v);
    assert_eq!(
        paths(&errs),
        vec![
            "spec.strategy.canary.steps[0].setHeaderRoute",
            "spec.strategy.canary.steps[0].setHeaderRoute.name"
        ],
        "{errs}"
    );
}

#[test]
fn header_match_needs_exactly_one_kind() {
    let v = with_steps(
        routed(),
        json!([{"setHeaderRoute": {"name": "header", "match": [
            {"headerName": "x", "headerValue": {"exact": "1", "prefix": "2"}}
        ]}}]),
    );
    assert_only_error(
        v,
        "spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerValue",
        "exactly one of exact, prefix and regex",
    );
}

#[test]
fn mirror_route_rules() {
    let v = with_steps(
        routed(),
        json!([{"setMirrorRoute": {"name": "mirror", "percentage": 150,
                 "match": [{"method": {"exact": "GET"}, "headers": {"agent": {}}}]}}]),
    );
    let errs = invalid(v);
    assert_eq!(
        paths(&errs),
        vec![
            "spec.strategy.canary.steps[0].setMirrorRoute.percentage",
            "spec.strategy.canary.steps[0].setMirrorRoute.match[0].headers.agent"
        ],
        "{errs}"
    );
}

#[test]
fn set_canary_scale_rules() {
    assert_only_error(
        with_steps(base(), json!([{"setCanaryScale": {"replicas": 1}}])),
        "spec.strategy.canary.steps[0].setCanaryScale",
        "requires trafficRouting",
    );
    assert_only_error(
        with_steps(
            routed(),
            json!([{"setCanaryScale": {"replicas": 1, "weight": 10}}]),
        ),
        "spec.strategy.canary.steps[0].setCanaryScale",
        "exactly one of weight, replicas and matchTrafficWeight",
    );
    assert_only_error(
        with_steps(routed(), json!([{"setCanaryScale": {}}])),
        "spec.strategy.canary.steps[0].setCanaryScale",
        "exactly one of",
    );
    assert_only_error(
        with_steps(routed(), json!([{"setCanaryScale": {"weight": 101}}])),
        "spec.strategy.canary.steps[0].setCanaryScale.weight",
        "must be 0..=100",
    );
    assert_only_error(
        with_steps(routed(), json!([{"setCanaryScale": {"replicas": -2}}])),
        "spec.strategy.canary.steps[0].setCanaryScale.replicas",
        "must be >= 0",
    );
}

#[test]
fn bad_pause_durations() {
    assert_only_error(
        with_steps(base(), json!([{"pause": {"duration": "1d"}}])),
        "spec.strategy.canary.steps[0].pause.duration",
        "unknown unit \"d\" in duration \"1d\"",
    );
    assert_only_error(
        with_steps(base(), json!([{"pause": {"duration": -5}}])),
        "spec.strategy.canary.steps[0].pause.duration",
        "must be >= 0",
    );
    assert_only_error(
        with_steps(base(), json!([{"pause": {"duration": "-1m"}}])),
        "spec.strategy.canary.steps[0].pause.duration",
        "must be >= 0",
    );
    // Argo's marker for an invalid duration.
    let ro = parse(with_steps(base(), json!([{"pause": {"duration": "soon"}}])));
    let CanaryStep::Pause(p) = &ro.canary().unwrap().steps[0] else {
        panic!()
    };
    assert_eq!(p.duration_seconds(), Some(-1));
    assert!(p.try_duration_seconds().is_err());
}

#[test]
fn analysis_rules() {
    assert_only_error(
        with_steps(base(), json!([{"analysis": {}}])),
        "spec.strategy.canary.steps[0].analysis.templates",
        "at least one analysis template",
    );
    assert_only_error(
        with_steps(
            base(),
            json!([{"analysis": {"templates": [{"templateName": "a"}, {"templateName": "a"}]}}]),
        ),
        "spec.strategy.canary.steps[0].analysis.templates[1].templateName",
        "duplicate template \"a\"",
    );
    assert_only_error(
        with_steps(
            base(),
            json!([{"analysis": {"templates": [{"templateName": "a"}],
                     "args": [{"name": "x", "value": "1", "valueFrom": {"podTemplateHashValue": "Stable"}}]}}]),
        ),
        "spec.strategy.canary.steps[0].analysis.args[0]",
        "mutually exclusive",
    );
    assert_only_error(
        with_steps(
            base(),
            json!([{"analysis": {"templates": [{"templateName": "a"}],
                     "args": [{"name": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.generation"}}}]}}]),
        ),
        "spec.strategy.canary.steps[0].analysis.args[0].valueFrom.fieldRef.fieldPath",
        "unsupported metadata field",
    );
}

#[test]
fn background_analysis_starting_step() {
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/analysis",
        json!({"templates": [{"templateName": "a"}], "startingStep": 5}),
    );
    assert_only_error(
        v,
        "spec.strategy.canary.analysis.startingStep",
        "must be 0..=2, got 5",
    );
}

#[test]
fn traffic_routing_only_fields() {
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/minPodsPerReplicaSet",
        json!(2),
    );
    set(
        &mut v,
        "/spec/strategy/canary/scaleDownDelaySeconds",
        json!(30),
    );
    let errs = invalid(v);
    assert_eq!(
        paths(&errs),
        vec![
            "spec.strategy.canary.scaleDownDelaySeconds",
            "spec.strategy.canary.minPodsPerReplicaSet"
        ],
        "{errs}"
    );

    let mut v = routed();
    set(
        &mut v,
        "/spec/strategy/canary/minPodsPerReplicaSet",
        json!(0),
    );
    assert_only_error(
        v,
        "spec.strategy.canary.minPodsPerReplicaSet",
        "must be >= 1",
    );
}

#[test]
fn replica_progress_threshold_rules() {
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/replicaProgressThreshold",
        json!({"type": "Percent", "value": 150}),
    );
    assert_only_error(
        v,
        "spec.strategy.canary.replicaProgressThreshold.value",
        "must be <= 100",
    );
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/replicaProgressThreshold",
        json!({"type": "Pods", "value": 0}),
    );
    assert_only_error(
        v,
        "spec.strategy.canary.replicaProgressThreshold.value",
        "must be > 0",
    );
}

#[test]
fn traffic_routing_needs_services() {
    let mut v = routed();
    remove(&mut v, "/spec/strategy/canary/canaryService");
    assert_only_error(
        v,
        "spec.strategy.canary.canaryService",
        "required when trafficRouting",
    );

    let mut v = routed();
    set(
        &mut v,
        "/spec/strategy/canary/stableService",
        json!("demo-canary"),
    );
    assert_only_error(
        v,
        "spec.strategy.canary.stableService",
        "must differ from canaryService",
    );

    // Plugins only, and ping-pong, need no canary/stable services.
    let mut v = base();
    set(
        &mut v,
        "/spec/strategy/canary/trafficRouting",
        json!({"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r"}}}),
    );
    parse(v).validate().unwrap();
}

#[test]
fn blue_green_rules() {
    let mut v = base();
    set(&mut v, "/spec/strategy", json!({"blueGreen": {}}));
    assert_only_error(v, "spec.strategy.blueGreen.activeService", "required");

    let mut v = base();
    set(
        &mut v,
        "/spec/strategy",
        json!({"blueGreen": {"activeService": "a", "previewService": "a",
               "previewReplicaCount": -1, "autoPromotionSeconds": -1,
               "scaleDownDelayRevisionLimit": 20,
               "antiAffinity": {}}}),
    );
    let errs = invalid(v);
    assert_eq!(
        paths(&errs),
        vec![
            "spec.strategy.blueGreen.previewService",
            "spec.strategy.blueGreen.previewReplicaCount",
            "spec.strategy.blueGreen.autoPromotionSeconds",
            "spec.strategy.blueGreen.scaleDownDelayRevisionLimit",
            "spec.strategy.blueGreen.antiAffinity"
        ],
        "{errs}"
    );
}

#[test]
fn progress_deadline_must_exceed_min_ready() {
    let mut v = base();
    set(&mut v, "/spec/minReadySeconds", json!(600));
    assert_only_error(
        v,
        "spec.progressDeadlineSeconds",
        "must be greater than minReadySeconds (600)",
    );
}

#[test]
fn experiment_rules() {
    assert_only_error(
        with_steps(base(), json!([{"experiment": {"templates": []}}])),
        "spec.strategy.canary.steps[0].experiment.templates",
        "must not be empty",
    );
    assert_only_error(
        with_steps(
            base(),
            json!([{"experiment": {"templates": [
                {"name": "a", "specRef": "stable"}, {"name": "a", "specRef": "canary"}
            ]}}]),
        ),
        "spec.strategy.canary.steps[0].experiment.templates[1].name",
        "duplicate template name \"a\"",
    );
    assert_only_error(
        with_steps(
            base(),
            json!([{"experiment": {"templates": [{"name": "a", "specRef": "canary", "weight": 5}]}}]),
        ),
        "spec.strategy.canary.steps[0].experiment.templates[0].weight",
        "requires trafficRouting",
    );
    assert_only_error(
        with_steps(
            base(),
            json!([{"experiment": {"duration": "forever", "templates": [{"name": "a", "specRef": "canary"}]}}]),
        ),
        "spec.strategy.canary.steps[0].experiment.duration",
        "invalid duration",
    );
}

#[test]
fn template_selector_and_workload_ref() {
    let mut v = base();
    remove(&mut v, "/spec/selector");
    assert_only_error(
        v,
        "spec.selector",
        "required unless spec.workloadRef is set",
    );

    let mut v = base();
    set(&mut v, "/spec/selector/matchLabels/app", json!("other"));
    assert_only_error(
        v,
        "spec.template.metadata.labels",
        "must match spec.selector",
    );

    let mut v = base();
    set(
        &mut v,
        "/spec/selector",
        json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["demo", "x"]}]}),
    );
    parse(v).validate().unwrap();

    let mut v = base();
    remove(&mut v, "/spec/template");
    assert_only_error(
        v,
        "spec.template",
        "required unless spec.workloadRef is set",
    );

    let mut v = base();
    set(
        &mut v,
        "/spec/workloadRef",
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "d"}),
    );
    let errs = invalid(v);
    assert_eq!(
        paths(&errs),
        vec!["spec.template", "spec.workloadRef.kind"],
        "{errs}"
    );
}

#[test]
fn all_errors_are_collected_and_displayed_one_per_line() {
    let mut v = with_steps(
        base(),
        json!([{"setWeight": 150}, {"pause": {"duration": "1d"}}, {"setWeight": 30}, {"setWeight": -3}]),
    );
    set(&mut v, "/spec/replicas", json!(-1));
    let errs = invalid(v);
    assert_eq!(errs.len(), 4);
    assert_eq!(
        errs.to_string(),
        "spec.replicas: must be >= 0, got -1\n\
         spec.strategy.canary.steps[0].setWeight: must be 0..=100, got 150\n\
         spec.strategy.canary.steps[1].pause.duration: unknown unit \"d\" in duration \"1d\"\n\
         spec.strategy.canary.steps[3].setWeight: must be 0..=100, got -3"
    );
}
