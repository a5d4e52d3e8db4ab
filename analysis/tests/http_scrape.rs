//! The scrape provider against a mock `/metrics` endpoint (wiremock): label matching,
//! aggregates, tricky label values, malformed expositions, transport errors.
#![cfg(feature = "http")]

use std::time::Duration;

use rollout_analysis::expr::Value;
use rollout_analysis::provider::http::{HttpClient, ScrapeProvider};
use rollout_analysis::provider::{MeasureContext, Measured, Provider, ProviderError};
use rollout_analysis::template::{Metric, TemplateDocument};
use rollout_analysis::{MeasurementPhase, evaluate_result};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CTX: MeasureContext<'static> = MeasureContext {
    namespace: "default",
    run_name: "run",
    run_uid: None,
    measurement_index: 0,
};

const EXPOSITION: &str = r#"# HELP http_requests_total Requests by path and code.
# TYPE http_requests_total counter
http_requests_total{path="/a,b",code="200"} 990 1700000000000
http_requests_total{path="/a,b",code="500"} 10 1700000000000
http_requests_total{path="/q?x=1",code="200"} 5
http_requests_total{path="say \"hi\"\\n",code="200"} 7
# a free comment
job:http_requests:rate5m{job="api"} 0.25
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 3
latency_seconds_bucket{le="+Inf"} 4
latency_seconds_sum 0.7
latency_seconds_count 4
temperature NaN
limit +Inf
floor -Inf
"#;

async fn server_with(body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/metrics"))
        .and(header("X-Token", "t"))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    server
}

fn metric(server: &MockServer, cfg: serde_json::Value) -> Metric {
    let mut cfg = cfg;
    if let Some(obj) = cfg.as_object_mut() {
        obj.insert("url".into(), json!(format!("{}/metrics", server.uri())));
        obj.entry("headers")
            .or_insert(json!([{"key": "X-Token", "value": "t"}]));
    }
    serde_json::from_value(json!({
        "name": "scrape",
        "provider": {"plugin": {"rollout-rs/scrape": cfg}}
    }))
    .unwrap_or_else(|e| panic!("metric: {e}"))
}

async fn measure(m: &Metric) -> Result<Measured, ProviderError> {
    ScrapeProvider::new(HttpClient::new())
        .with_default_timeout(Duration::from_millis(200))
        .measure(&CTX, m)
        .await
}

fn value(r: Result<Measured, ProviderError>) -> Value {
    match r {
        Ok(Measured::Value(v)) => v,
        other => panic!("expected a value, got {other:?}"),
    }
}

fn floats(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|f| Value::Float(*f)).collect())
}

#[tokio::test]
async fn selects_and_aggregates() {
    let server = server_with(EXPOSITION).await;
    let get = |cfg: serde_json::Value| {
        let m = metric(&server, cfg);
        async move { value(measure(&m).await) }
    };
    assert_eq!(
        get(json!({"metric": "http_requests_total"})).await,
        floats(&[990.0, 10.0, 5.0, 7.0])
    );
    assert_eq!(
        get(
            json!({"metric": "http_requests_total", "labels": {"path": "/a,b"}, "aggregate": "sum"})
        )
        .await,
        Value::Float(1000.0)
    );
    assert_eq!(
        get(json!({"metric": "http_requests_total", "labels": {"path": "/a,b", "code": "500"}}))
            .await,
        floats(&[10.0])
    );
    assert_eq!(
        get(json!({"metric": "http_requests_total", "labels": {"path": "/q?x=1"}})).await,
        floats(&[5.0])
    );
    assert_eq!(
        get(json!({"metric": "http_requests_total", "labels": {"path": "say \"hi\"\\n"}})).await,
        floats(&[7.0])
    );
    assert_eq!(
        get(json!({"metric": "http_requests_total", "aggregate": "count"})).await,
        Value::Float(4.0)
    );
    assert_eq!(
        get(json!({"metric": "http_requests_total", "aggregate": "max"})).await,
        Value::Float(990.0)
    );
    assert_eq!(
        get(json!({"metric": "http_requests_total", "aggregate": "min"})).await,
        Value::Float(5.0)
    );
    assert_eq!(
        get(
            json!({"metric": "http_requests_total", "labels": {"code": "200"}, "aggregate": "avg"})
        )
        .await,
        Value::Float((990.0 + 5.0 + 7.0) / 3.0)
    );
    assert_eq!(
        get(json!({"metric": "job:http_requests:rate5m"})).await,
        floats(&[0.25])
    );
    assert_eq!(
        get(json!({"metric": "latency_seconds_bucket", "labels": {"le": "+Inf"}, "aggregate": "sum"})).await,
        Value::Float(4.0)
    );
    assert_eq!(
        get(json!({"metric": "limit"})).await,
        floats(&[f64::INFINITY])
    );
    assert_eq!(
        get(json!({"metric": "floor"})).await,
        floats(&[f64::NEG_INFINITY])
    );
    match get(json!({"metric": "temperature", "aggregate": "max"})).await {
        Value::Float(f) => assert!(f.is_nan()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        get(json!({"metric": "http_requests_total", "labels": {"code": "404"}})).await,
        Value::Array(vec![])
    );
}

#[tokio::test]
async fn a_template_judges_the_scrape() {
    let server = server_with(EXPOSITION).await;
    let yaml = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: scrape-error-rate
spec:
  metrics:
  - name: errors
    successCondition: result < 5
    provider:
      plugin:
        rollout-rs/scrape:
          url: {}/metrics
          metric: http_requests_total
          labels:
            code: "500"
          aggregate: sum
          headers:
          - key: X-Token
            value: t
"#,
        server.uri()
    );
    let doc = TemplateDocument::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    // The plugin form keeps the template a valid Argo document.
    doc.validate().unwrap_or_else(|e| panic!("{e}"));
    let TemplateDocument::AnalysisTemplate(t) = doc else {
        panic!("not an AnalysisTemplate");
    };
    let m = &t.spec.metrics[0];
    let v = value(measure(m).await);
    assert_eq!(v, Value::Float(10.0));
    let eval = evaluate_result(m.success_condition.as_deref(), None, &v);
    assert_eq!(eval.phase, MeasurementPhase::Failed);
    assert_eq!(eval.value, "10");
}

#[tokio::test]
async fn malformed_exposition_names_the_line() {
    let server = server_with("ok 1\n# TYPE ok gauge\nbroken{a=\"1\" 2\n").await;
    let m = metric(&server, json!({"metric": "ok"}));
    match measure(&m).await {
        Err(ProviderError::Decode { reason, .. }) => {
            assert!(reason.contains("line 3"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn transport_and_config_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/metrics"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no metrics here"))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("m 1\n")
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let m = metric(&server, json!({"metric": "m"}));
    assert!(matches!(
        measure(&m).await,
        Err(ProviderError::Status { status: 404, .. })
    ));
    let slow: Metric = serde_json::from_value(json!({
        "name": "s",
        "provider": {"plugin": {"rollout-rs/scrape": {"url": format!("{}/slow", server.uri()), "metric": "m"}}}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        measure(&slow).await,
        Err(ProviderError::Timeout { .. })
    ));
    let bad: Metric = serde_json::from_value(json!({
        "name": "s",
        "provider": {"plugin": {"rollout-rs/scrape": {"url": "http://127.0.0.1:9/metrics", "metric": "m", "aggregate": "p99"}}}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        measure(&bad).await,
        Err(ProviderError::Config { field, .. }) if field == "plugin.rollout-rs/scrape.aggregate"
    ));
}
