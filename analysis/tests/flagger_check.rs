//! Planning and judging Flagger metric checks (`rollout_analysis::flagger::check`), and
//! rendering every `MetricTemplate` of the corpus.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use rollout_analysis::expr::Value;
use rollout_analysis::flagger::check::{
    Answer, AnswerError, CheckContext, PlanError, PlanStep, QueryRequest, QuerySource, Verdict,
    plan_metric_check, run_metric_checks, run_plan,
};
use rollout_analysis::flagger::queries::{BuiltinMetric, Observer};
use rollout_analysis::flagger::render::{QueryModel, RenderError, render_query};
use rollout_analysis::provider::prometheus::parse_response;
use rollout_analysis::template::{MetricTemplate, TemplateDocument, template_documents};
use rollout_core::flagger::machine::{MetricOutcome, MetricResult};
use rollout_core::flagger::spec::Canary;

const CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 30s
      - name: error-rate
        templateRef:
          name: error-rate
        templateVariables:
          code: "5.."
        thresholdRange:
          max: 1
      - name: inline
        query: |
          sum(
            rate(http_requests_total[1m])
          )
        threshold: 10
      - name: both
        query: vector(1)
        templateRef:
          name: error-rate
          namespace: shared
        templateVariables:
          code: "4.."
        thresholdRange:
          max: 1
      - name: nothing
      - name: legacy-success
        thresholdRange:
          min: 1
"#;

const TEMPLATES: &str = r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: test
spec:
  provider:
    type: prometheus
    address: http://prom.test:9090
  query: |
    100 - sum(
      rate(http_requests_total{namespace="{{ namespace }}", pod=~"{{ target }}-.*", code=~"{{ variables.code }}"}[{{ interval }}])
    )
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: shared
spec:
  provider:
    type: datadog
    address: https://api.datadoghq.com
  query: "sum:errors{service:{{ name }},code:{{ variables.code }}}"
"#;

fn canary() -> Canary {
    Canary::from_yaml(CANARY).expect("canary parses")
}

fn templates() -> Vec<MetricTemplate> {
    template_documents(TEMPLATES)
        .expect("templates parse")
        .into_iter()
        .filter_map(|d| match d.document {
            TemplateDocument::MetricTemplate(t) => Some(t),
            _ => None,
        })
        .collect()
}

const CTX: CheckContext<'static> = CheckContext {
    mesh_provider: "istio",
    metrics_server: "http://prometheus:9090",
    route: None,
};

fn ok(v: f64) -> Result<Answer, String> {
    Ok(Answer::Number(v))
}

fn fail(verdict: &Verdict) -> (&str, &str) {
    match verdict {
        Verdict::Fail { reason, event } => (reason, event),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn error(verdict: &Verdict) -> (&str, &str) {
    match verdict {
        Verdict::Error { reason, event } => (reason, event),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn builtin_success_rate_plans_the_istio_query_against_the_metrics_server() {
    let c = canary();
    let plan = plan_metric_check(&c, "request-success-rate", &templates(), &CTX);
    let requests: Vec<&QueryRequest> = plan.requests().collect();
    assert_eq!(requests.len(), 1);
    let r = requests[0];
    assert_eq!(r.metric, "request-success-rate");
    assert_eq!(
        r.source,
        QuerySource::Builtin {
            observer: Observer::Istio,
            metric: BuiltinMetric::RequestSuccessRate,
            provider_key: "istio".into()
        }
    );
    assert_eq!(r.provider.kind, "prometheus");
    assert_eq!(
        r.provider.address.as_deref(),
        Some("http://prometheus:9090")
    );
    assert!(r.query.contains(r#"destination_workload_namespace="test""#));

    assert_eq!(plan.evaluate([ok(99.0)]), Verdict::Pass, "min is inclusive");
    let v = plan.evaluate([ok(98.456)]);
    assert_eq!(
        fail(&v),
        (
            "98.46% < 99%",
            "Halt podinfo.test advancement success rate 98.46% < 99%"
        )
    );
    assert_eq!(
        plan.result(&v),
        MetricResult::fail("request-success-rate", "98.46% < 99%")
    );
}

#[test]
fn builtin_duration_compares_whole_milliseconds() {
    let c = canary();
    let plan = plan_metric_check(&c, "request-duration", &[], &CTX);
    assert!(plan.requests().next().unwrap().query.contains("[30s]"));
    assert_eq!(plan.evaluate([ok(500.9)]), Verdict::Pass);
    let v = plan.evaluate([ok(1500.2)]);
    assert_eq!(
        fail(&v),
        (
            "1.5s > 500ms",
            "Halt podinfo.test advancement request duration 1.5s > 500ms"
        )
    );
}

#[test]
fn the_http_observer_reads_seconds() {
    let mut c = canary();
    c.spec.provider = Some("kubernetes".into());
    let plan = plan_metric_check(&c, "request-duration", &[], &CTX);
    let r = plan.requests().next().unwrap();
    assert!(matches!(
        r.source,
        QuerySource::Builtin {
            observer: Observer::Http,
            ..
        }
    ));
    assert_eq!(plan.evaluate([ok(0.4999)]), Verdict::Pass);
    assert_eq!(fail(&plan.evaluate([ok(0.6)])).0, "600ms > 500ms");
}

#[test]
fn no_values_is_a_failed_check_with_flaggers_message() {
    let c = canary();
    let plan = plan_metric_check(&c, "request-success-rate", &[], &CTX);
    for answer in [
        Ok(Answer::NoValues),
        ok(f64::NAN),
        Ok(Answer::Value(Value::Array(vec![]))),
        Ok(Answer::Value(Value::Nil)),
    ] {
        let v = plan.evaluate([answer]);
        assert_eq!(
            fail(&v),
            (
                "no values found for istio metric request-success-rate, probably podinfo.test is not receiving traffic",
                "Halt advancement no values found for istio metric request-success-rate probably podinfo.test is not receiving traffic: running query failed: no values found"
            )
        );
    }
    let plan = plan_metric_check(&c, "request-duration", &[], &CTX);
    assert_eq!(
        fail(&plan.evaluate([Ok(Answer::NoValues)])).1,
        "Halt advancement no values found for istio metric request-duration probably podinfo.test is not receiving traffic"
    );
}

#[test]
fn provider_errors_are_errors() {
    let c = canary();
    let plan = plan_metric_check(&c, "request-success-rate", &[], &CTX);
    let v = plan.evaluate([Err("connection refused".to_string())]);
    assert_eq!(
        error(&v),
        (
            "running query failed: connection refused",
            "Prometheus query failed: running query failed: connection refused"
        )
    );
    assert_eq!(
        v.outcome(),
        MetricOutcome::Error("running query failed: connection refused".into())
    );
}

#[test]
fn prometheus_answers_are_read_like_flaggers_client() {
    let c = canary();
    let plan = plan_metric_check(&c, "request-success-rate", &[], &CTX);
    let parse = |body: &str| Answer::from_prometheus(parse_response(body.as_bytes())).unwrap();
    // The last sample of a vector wins.
    let two = parse(
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"50"]},{"metric":{"a":"2"},"value":[1,"99.5"]}]}}"#,
    );
    assert_eq!(two.to_number(), Ok(99.5));
    assert_eq!(plan.evaluate([Ok(two)]), Verdict::Pass);
    let empty = parse(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#);
    assert_eq!(empty, Answer::NoValues);
    let nan = parse(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#);
    assert_eq!(nan.to_number(), Err(AnswerError::NoValues));
    let matrix = parse(
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#,
    );
    assert_eq!(
        matrix.to_number(),
        Err(AnswerError::MultipleValues { series: 1 })
    );
    let v = plan.evaluate([Ok(matrix)]);
    assert_eq!(
        error(&v).0,
        "running query failed: multiple values: the query returned 1 range series"
    );
    assert_eq!(
        Answer::Value(Value::Array(vec![Value::Float(1.0), Value::Float(2.0)])).to_number(),
        Ok(2.0)
    );
    assert_eq!(
        Answer::Value(Value::String("x".into())).to_number(),
        Err(AnswerError::NotANumber { found: "a string" })
    );
}

#[test]
fn template_metrics_render_and_use_the_templates_provider() {
    let c = canary();
    let plan = plan_metric_check(&c, "error-rate", &templates(), &CTX);
    let r = plan.requests().next().unwrap();
    assert_eq!(
        r.source,
        QuerySource::Template {
            name: "error-rate".into(),
            namespace: "test".into()
        }
    );
    assert_eq!(r.provider.address.as_deref(), Some("http://prom.test:9090"));
    assert_eq!(
        r.query,
        r#"100 - sum( rate(http_requests_total{namespace="test", pod=~"podinfo-.*", code=~"5.."}[1m]) ) "#
    );
    assert_eq!(plan.evaluate([ok(1.0)]), Verdict::Pass);
    let v = plan.evaluate([ok(1.234)]);
    assert_eq!(
        fail(&v),
        (
            "1.23 > 1",
            "Halt podinfo.test advancement error-rate 1.23 > 1"
        )
    );
    let v = plan.evaluate([Ok(Answer::NoValues)]);
    assert_eq!(
        fail(&v),
        (
            "no values found",
            "Halt advancement no values found for custom metric: error-rate: no values found"
        )
    );
    let v = plan.evaluate([Err("boom".into())]);
    assert_eq!(
        error(&v),
        ("boom", "Metric query failed for error-rate: boom")
    );
}

#[test]
fn inline_queries_are_sent_as_written_with_whitespace_collapsed() {
    let c = canary();
    let plan = plan_metric_check(&c, "inline", &[], &CTX);
    let r = plan.requests().next().unwrap();
    assert_eq!(r.source, QuerySource::Inline);
    assert_eq!(r.query, "sum( rate(http_requests_total[1m]) ) ");
    assert_eq!(
        r.provider.address.as_deref(),
        Some("http://prometheus:9090")
    );
    // Legacy threshold: fails when v > threshold.
    assert_eq!(plan.evaluate([ok(10.0)]), Verdict::Pass);
    assert_eq!(
        fail(&plan.evaluate([ok(10.5)])),
        (
            "10.50 > 10",
            "Halt podinfo.test advancement inline 10.50 > 10"
        )
    );
    assert_eq!(
        fail(&plan.evaluate([Ok(Answer::NoValues)])).1,
        "Halt advancement no values found for metric: inline"
    );
    assert_eq!(
        error(&plan.evaluate([Err("bad".into())])).1,
        "Prometheus query failed for inline: bad"
    );
}

#[test]
fn query_and_template_ref_both_run_in_order() {
    let c = canary();
    let plan = plan_metric_check(&c, "both", &templates(), &CTX);
    let requests: Vec<&QueryRequest> = plan.requests().collect();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].source, QuerySource::Inline);
    assert_eq!(requests[0].query, "vector(1)");
    assert_eq!(
        requests[1].source,
        QuerySource::Template {
            name: "error-rate".into(),
            namespace: "shared".into()
        }
    );
    // Not Prometheus: the rendered query is kept as it is.
    assert_eq!(requests[1].provider.kind, "datadog");
    assert_eq!(requests[1].query, "sum:errors{service:podinfo,code:4..}");
    // The inline query fails first (legacy threshold 0 with a range set: range wins).
    assert_eq!(plan.evaluate([ok(0.5), ok(0.5)]), Verdict::Pass);
    assert!(matches!(
        plan.evaluate([ok(2.0), ok(0.5)]),
        Verdict::Fail { .. }
    ));
    assert!(matches!(
        plan.evaluate([ok(0.5), ok(2.0)]),
        Verdict::Fail { .. }
    ));
    // A missing answer is an error.
    assert!(matches!(plan.evaluate([ok(0.5)]), Verdict::Error { .. }));
}

#[test]
fn planning_errors() {
    let c = canary();
    let plan = plan_metric_check(&c, "nothing", &templates(), &CTX);
    assert_eq!(plan.requests().count(), 0);
    assert_eq!(
        plan.steps(),
        &[PlanStep::Error(PlanError::NoQuery {
            metric: "nothing".into()
        })]
    );
    assert!(matches!(plan.evaluate([]), Verdict::Error { .. }));

    let plan = plan_metric_check(&c, "missing", &templates(), &CTX);
    assert!(matches!(
        plan.steps(),
        [PlanStep::Error(PlanError::UnknownMetric { .. })]
    ));

    let plan = plan_metric_check(&c, "error-rate", &[], &CTX);
    let v = plan.evaluate([]);
    assert_eq!(
        error(&v).1,
        r#"Metric template error-rate.test error: metrictemplate.flagger.app "error-rate" not found"#
    );

    // A template variable the metric does not set.
    let mut c2 = canary();
    if let Some(a) = c2.spec.analysis.as_mut() {
        a.metrics[2].template_variables = BTreeMap::new();
    }
    let plan = plan_metric_check(&c2, "error-rate", &templates(), &CTX);
    match plan.steps() {
        [
            PlanStep::Error(PlanError::Render {
                template,
                namespace,
                source: RenderError::MissingVariable { key, .. },
            }),
        ] => {
            assert_eq!(
                (template.as_str(), namespace.as_str(), key.as_str()),
                ("error-rate", "test", "code")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(error(&plan.evaluate([])).1.starts_with(
        "Metric template error-rate.test query render error: map has no entry for key \"code\""
    ));

    // A builtin query that cannot be made (nginx without an ingress name is fine: the
    // target is the default; an empty target is not).
    let mut c3 = canary();
    c3.spec.target_ref.name = String::new();
    let plan = plan_metric_check(&c3, "request-success-rate", &[], &CTX);
    let v = plan.evaluate([]);
    assert_eq!(
        error(&v).1,
        "Prometheus query failed: rendering query failed: the istio request-success-rate query needs a non-empty target"
    );
}

#[test]
fn builtin_name_with_a_template_ref_runs_both() {
    let mut c = canary();
    if let Some(a) = c.spec.analysis.as_mut() {
        a.metrics[0].template_ref = a.metrics[2].template_ref.clone();
        a.metrics[0].template_variables = a.metrics[2].template_variables.clone();
    }
    let plan = plan_metric_check(&c, "request-success-rate", &templates(), &CTX);
    let kinds: Vec<bool> = plan
        .requests()
        .map(|r| matches!(r.source, QuerySource::Builtin { .. }))
        .collect();
    assert_eq!(kinds, vec![true, false]);
}

#[test]
fn provider_selection_uses_the_canary_and_the_controller() {
    let mut c = canary();
    c.spec.provider = Some("nginx".into());
    c.spec.metrics_server = Some("http://canary-prom:9090".into());
    let plan = plan_metric_check(&c, "request-success-rate", &[], &CTX);
    let r = plan.requests().next().unwrap();
    assert!(matches!(
        r.source,
        QuerySource::Builtin {
            observer: Observer::Nginx,
            ..
        }
    ));
    assert_eq!(
        r.provider.address.as_deref(),
        Some("http://canary-prom:9090")
    );

    // A linkerd controller forces linkerd once the canary sets a provider.
    let ctx = CheckContext::new("linkerd", "http://prometheus:9090");
    let plan = plan_metric_check(&c, "request-success-rate", &[], &ctx);
    let r = plan.requests().next().unwrap();
    assert!(matches!(
        r.source,
        QuerySource::Builtin {
            observer: Observer::Linkerd,
            ..
        }
    ));

    // Knative: the route is the latest revision, an input.
    let mut k = canary();
    k.spec.provider = Some("knative".into());
    let ctx = CheckContext {
        route: Some("podinfo-00002"),
        ..CTX
    };
    let plan = plan_metric_check(&k, "request-success-rate", &[], &ctx);
    assert!(
        plan.requests()
            .next()
            .unwrap()
            .query
            .contains(r#"envoy_cluster_name=~"test/podinfo-00002""#)
    );

    // A Service target: `istio:service` is not a prefix observer, so Istio.
    let mut s = canary();
    s.spec.target_ref.kind = "Service".into();
    s.spec.provider = Some("gatewayapi:v1".into());
    let plan = plan_metric_check(&s, "request-success-rate", &[], &CTX);
    match &plan.requests().next().unwrap().source {
        QuerySource::Builtin {
            observer,
            provider_key,
            ..
        } => {
            assert_eq!(*observer, Observer::Http);
            assert_eq!(provider_key, "gatewayapi:v1:service");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_metric_checks_stops_at_the_first_failure() {
    let c = canary();
    let names: Vec<String> = ["request-success-rate", "request-duration", "error-rate"]
        .map(String::from)
        .to_vec();
    let asked = RefCell::new(Vec::new());
    let mut query = |r: &QueryRequest| -> Result<f64, String> {
        asked.borrow_mut().push(r.metric.clone());
        Ok(match r.metric.as_str() {
            "request-success-rate" => 100.0,
            "request-duration" => 120.0,
            _ => 0.5,
        })
    };
    let results = run_metric_checks(&c, &names, &templates(), &CTX, &mut query);
    assert_eq!(
        results,
        vec![
            MetricResult::pass("request-success-rate"),
            MetricResult::pass("request-duration"),
            MetricResult::pass("error-rate"),
        ]
    );

    let mut slow = |r: &QueryRequest| -> Result<Value, String> {
        Ok(Value::Array(vec![Value::Float(
            if r.metric == "request-duration" {
                900.0
            } else {
                100.0
            },
        )]))
    };
    let results = run_metric_checks(&c, &names, &templates(), &CTX, &mut slow);
    assert_eq!(
        results,
        vec![
            MetricResult::pass("request-success-rate"),
            MetricResult::fail("request-duration", "900ms > 500ms"),
        ]
    );

    // run_plan does not make a request after a failing one.
    let plan = plan_metric_check(&c, "both", &templates(), &CTX);
    let mut calls = 0;
    let v = run_plan(&plan, &mut |_: &QueryRequest| -> Result<f64, String> {
        calls += 1;
        Ok(5.0)
    });
    assert!(matches!(v, Verdict::Fail { .. }));
    assert_eq!(calls, 1);
}

#[test]
fn success_rate_legacy_threshold_and_range_messages() {
    let mut c = canary();
    if let Some(a) = c.spec.analysis.as_mut() {
        a.metrics[0].threshold_range = None;
        a.metrics[0].threshold = Some(99.5);
        a.metrics[2].threshold_range = Some(rollout_core::flagger::spec::ThresholdRange {
            min: Some(2.0),
            max: None,
        });
    }
    let plan = plan_metric_check(&c, "request-success-rate", &[], &CTX);
    assert_eq!(plan.evaluate([ok(99.5)]), Verdict::Pass);
    assert_eq!(fail(&plan.evaluate([ok(99.0)])).0, "99.00% < 99.5%");
    let plan = plan_metric_check(&c, "error-rate", &templates(), &CTX);
    assert_eq!(fail(&plan.evaluate([ok(1.0)])).0, "1.00 < 2");
}

/// Every `MetricTemplate` query of the corpus renders (with the variables it uses).
#[test]
fn corpus_metric_templates_render() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/flagger");
    let mut rendered = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&root)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    let model = QueryModel {
        name: "podinfo".into(),
        namespace: "test".into(),
        target: "podinfo".into(),
        service: "podinfo".into(),
        ingress: "podinfo".into(),
        route: "podinfo".into(),
        interval: "1m".into(),
        variables: [
            ("direction", "inbound"),
            ("path", "/api"),
            ("reporter", "source"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read");
        let Ok(docs) = template_documents(&text) else {
            continue;
        };
        for d in docs {
            if let TemplateDocument::MetricTemplate(t) = d.document {
                let out = render_query(&t.spec.query, &model)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!out.contains("{{"), "{}: {out}", path.display());
                rendered += 1;
            }
        }
    }
    assert!(rendered >= 30, "rendered {rendered} templates");
}

#[test]
fn the_skipper_tutorial_template_uses_printf() {
    let model = QueryModel {
        namespace: "test".into(),
        ingress: "podinfo".into(),
        service: "podinfo".into(),
        ..QueryModel::default()
    };
    assert_eq!(
        render_query(
            r#"route=~"{{ printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }}""#,
            &model
        )
        .unwrap(),
        r#"route=~"kube(ew)?_test__podinfo_canary__.*__podinfo_canary(_[0-9]+)?""#
    );
    assert_eq!(
        render_query(r#"{{ printf "%s-%s" name }}"#, &model).unwrap(),
        "-%!s(MISSING)"
    );
    assert_eq!(
        render_query(r#"{{ printf "%s" namespace "x" }}"#, &model).unwrap(),
        "test%!(EXTRA string=x)"
    );
    assert!(matches!(
        render_query(r#"{{ printf "%d" namespace }}"#, &model),
        Err(RenderError::Unsupported { .. })
    ));
    assert_eq!(render_query(r#"{{ "}}" }}"#, &model).unwrap(), "}}");
}
