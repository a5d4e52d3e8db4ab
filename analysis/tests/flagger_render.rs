//! `MetricTemplate` query rendering (`rollout_analysis::flagger::render`).
//!
//! The first three tests restate the cases of fluxcd/flagger
//! `pkg/metrics/observers/render_test.go` (`Test_RenderQuery`).

use std::collections::BTreeMap;

use proptest::prelude::*;
use rollout_analysis::flagger::render::{Position, QueryModel, RenderError, render_query};
use rollout_core::flagger::spec::Canary;

fn model() -> QueryModel {
    QueryModel {
        name: "standard".into(),
        namespace: "default".into(),
        target: "myapp".into(),
        interval: "1m".into(),
        ..QueryModel::default()
    }
}

fn kafka(vars: &[(&str, &str)]) -> QueryModel {
    QueryModel {
        name: "kafka_consumer_offset".into(),
        namespace: "default".into(),
        interval: "1m".into(),
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..QueryModel::default()
    }
}

const KAFKA: &str = r#"delta(max by (consumer_group) (kafka_consumer_current_offset{cluster="{{ variables.cluster }}", consumer_group="{{ variables.consumer_group }}"}[{{ interval }}]))"#;

#[test]
fn ok_without_variables() {
    assert_eq!(
        render_query(
            r#"sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ target }}"})"#,
            &model()
        )
        .unwrap(),
        r#"sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"default_myapp"})"#
    );
}

#[test]
fn ok_with_variables() {
    let m = kafka(&[("cluster", "dev"), ("consumer_group", "my_consumer")]);
    assert_eq!(
        render_query(KAFKA, &m).unwrap(),
        r#"delta(max by (consumer_group) (kafka_consumer_current_offset{cluster="dev", consumer_group="my_consumer"}[1m]))"#
    );
}

#[test]
fn missing_variable_key() {
    let m = kafka(&[("invalid", "dev"), ("consumer_group", "my_consumer")]);
    let err = render_query(KAFKA, &m).unwrap_err();
    assert_eq!(
        err,
        RenderError::MissingVariable {
            key: "cluster".into(),
            position: Position {
                offset: 73,
                line: 1,
                column: 74
            }
        }
    );
    assert_eq!(
        err.to_string(),
        r#"map has no entry for key "cluster" (variables.cluster at line 1, column 74)"#
    );
}

#[test]
fn every_function_with_and_without_spaces() {
    let m = QueryModel {
        name: "n".into(),
        namespace: "ns".into(),
        target: "t".into(),
        service: "s".into(),
        ingress: "i".into(),
        route: "r".into(),
        interval: "5m".into(),
        variables: BTreeMap::from([("k".into(), "v".into())]),
    };
    let spaced = "{{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ route }} {{ interval }} {{ variables.k }}";
    let tight = "{{name}} {{namespace}} {{target}} {{service}} {{ingress}} {{route}} {{interval}} {{variables.k}}";
    assert_eq!(render_query(spaced, &m).unwrap(), "n ns t s i r 5m v");
    assert_eq!(render_query(tight, &m).unwrap(), "n ns t s i r 5m v");
    assert_eq!(
        render_query("{{\n  namespace\n}}", &m).unwrap(),
        "ns",
        "newlines inside an action"
    );
}

#[test]
fn trim_markers_and_comments() {
    let m = model();
    assert_eq!(
        render_query("rate(x[ {{- interval -}} ])", &m).unwrap(),
        "rate(x[1m])"
    );
    assert_eq!(
        render_query("a\n  {{- /* why */ -}}\n  b", &m).unwrap(),
        "ab"
    );
    assert_eq!(render_query("a{{/* x }} y */}}b", &m).unwrap(), "ab");
    // `{{-3}}` is not a trim marker in Go; here it is an unsupported literal.
    assert!(matches!(
        render_query("{{-3}}", &m),
        Err(RenderError::Unsupported { .. })
    ));
    // Text without actions, and lone braces, pass through.
    assert_eq!(
        render_query("sum(x{a=\"}\"})", &m).unwrap(),
        "sum(x{a=\"}\"})"
    );
}

#[test]
fn errors_name_what_and_where() {
    let m = model();
    let at = |offset, line, column| Position {
        offset,
        line,
        column,
    };
    assert_eq!(
        render_query("x\n{{ nope }}", &m),
        Err(RenderError::UnknownFunction {
            name: "nope".into(),
            position: at(5, 2, 4)
        })
    );
    assert_eq!(
        render_query("{{ .name }}", &m),
        Err(RenderError::NilData {
            key: "name".into(),
            position: at(3, 1, 4)
        })
    );
    assert_eq!(
        render_query("ab {{ target", &m),
        Err(RenderError::UnclosedAction {
            position: at(3, 1, 4)
        })
    );
    assert_eq!(
        render_query("{{/* open", &m),
        Err(RenderError::UnclosedComment {
            position: at(0, 1, 1)
        })
    );
    assert_eq!(
        render_query("{{ namespace \"x\" }}", &m),
        Err(RenderError::Arguments {
            name: "namespace".into(),
            got: 1,
            position: at(3, 1, 4)
        })
    );
    assert_eq!(
        render_query("{{ target.name }}", &m),
        Err(RenderError::FieldOfString {
            name: "target".into(),
            field: "name".into(),
            position: at(3, 1, 4)
        })
    );
    assert!(matches!(
        render_query("{{ if true }}x{{ end }}", &m),
        Err(RenderError::Unsupported { .. })
    ));
    assert!(matches!(
        render_query("{{ namespace | printf \"%s\" }}", &m),
        Err(RenderError::Unsupported { .. })
    ));
    assert!(matches!(
        render_query("{{ $x := 1 }}", &m),
        Err(RenderError::Unsupported { .. })
    ));
    assert!(matches!(
        render_query("{{ }}", &m),
        Err(RenderError::Unsupported { .. })
    ));
    for odd in [
        "{{/**/é-}}",
        "{{/* é */ é}}",
        "{{ \"é\\é\" }}",
        "{{ `é",
        "{{ \"é",
        "{{-\té",
    ] {
        assert!(render_query(odd, &m).is_err(), "{odd}");
    }
    let e = render_query("é {{ nope }}", &m).unwrap_err();
    assert_eq!(e.position().column, 6, "columns count characters");
}

#[test]
fn variables_alone_prints_the_map_as_go_does() {
    let m = kafka(&[("b", "2"), ("a", "1")]);
    assert_eq!(render_query("{{ variables }}", &m).unwrap(), "map[a:1 b:2]");
}

#[test]
fn model_from_a_canary() {
    let canary = Canary::from_yaml(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: nginx
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo-deploy
  ingressRef:
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    name: podinfo-ing
  service:
    port: 80
  analysis:
    interval: 1m
    threshold: 5
    metrics:
      - name: latency
        interval: 30s
        templateRef:
          name: latency
        templateVariables:
          cluster: dev
      - name: plain
        templateRef:
          name: plain
"#,
    )
    .unwrap();
    let metrics = &canary.analysis().unwrap().metrics;
    let m = QueryModel::from_canary(&canary, &metrics[0]);
    assert_eq!(m.name, "podinfo");
    assert_eq!(m.namespace, "test");
    assert_eq!(m.target, "podinfo-deploy");
    assert_eq!(
        m.service, "podinfo-deploy",
        "service.name unset: the target"
    );
    assert_eq!(m.ingress, "podinfo-ing");
    assert_eq!(m.route, "podinfo-deploy", "routeRef unset: the target");
    assert_eq!(m.interval, "30s");
    assert_eq!(m.variables.get("cluster").map(String::as_str), Some("dev"));
    let plain = QueryModel::from_canary(&canary, &metrics[1]);
    assert_eq!(plain.interval, "1m", "metric interval defaults to 1m");
}

proptest! {
    #[test]
    fn rendering_never_panics(template in ".{0,64}") {
        let _ = render_query(&template, &model());
    }

    #[test]
    fn template_like_input_never_panics(parts in prop::collection::vec(
        prop::sample::select(vec![
            "{{", "}}", "-", " ", "\t", "\n", "/*", "*/", "\"", "`", "\\", "é", "name",
            "variables", ".k", ".", "|", "printf", "%s", "%", "$x", "(", "if", "x",
        ]),
        0..24,
    )) {
        let t: String = parts.concat();
        if let Err(e) = render_query(&t, &model()) {
            let p = e.position();
            prop_assert!(p.offset <= t.len());
            prop_assert!(p.line >= 1 && p.column >= 1);
        }
    }

    #[test]
    fn text_without_braces_is_unchanged(text in "[^{}]{0,64}") {
        prop_assert_eq!(render_query(&text, &model()).unwrap(), text);
    }

    #[test]
    fn actions_with_any_padding(left in "[ \t\n]{0,3}", right in "[ \t\n]{0,3}") {
        let t = format!("a{{{{{left}target{right}}}}}b");
        prop_assert_eq!(render_query(&t, &model()).unwrap(), "amyappb");
    }
}
