//! The Prometheus provider against a mock HTTP server (wiremock): every result type,
//! NaN/Inf samples, the error envelope, non-2xx answers, bad bodies, timeouts, an
//! unreachable address, headers, basic auth, and range-query parameters.
#![cfg(feature = "http")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollout_analysis::expr::Value;
use rollout_analysis::provider::http::{FixedClock, HttpClient, PrometheusProvider};
use rollout_analysis::provider::{MeasureContext, Measured, Provider, ProviderError};
use rollout_analysis::template::Metric;
use rollout_analysis::{MeasurementPhase, evaluate_result};
use rollout_core::time::Timestamp;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

const CTX: MeasureContext<'static> = MeasureContext {
    namespace: "default",
    run_name: "run",
    run_uid: None,
    measurement_index: 0,
};

fn provider() -> PrometheusProvider {
    PrometheusProvider::new(HttpClient::new())
        .with_clock(Arc::new(FixedClock(NOW)))
        .with_default_timeout(Duration::from_millis(200))
}

fn metric(prometheus: serde_json::Value) -> Metric {
    serde_json::from_value(json!({
        "name": "m",
        "successCondition": "result[0] >= 0.95",
        "provider": {"prometheus": prometheus}
    }))
    .unwrap_or_else(|e| panic!("metric: {e}"))
}

async fn measure(m: &Metric) -> Result<Measured, ProviderError> {
    provider().measure(&CTX, m).await
}

fn value(r: Result<Measured, ProviderError>) -> Value {
    match r {
        Ok(Measured::Value(v)) => v,
        other => panic!("expected a value, got {other:?}"),
    }
}

fn floats(r: Result<Measured, ProviderError>) -> Vec<f64> {
    match value(r) {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Float(f) => f,
                other => panic!("not a float: {other:?}"),
            })
            .collect(),
        other => panic!("not a list: {other:?}"),
    }
}

async fn serve(server: &MockServer, route: &str, status: u16, body: &str) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn instant_vector_sends_query_and_time() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", "sum(rate(x{a=\"b c\"}[5m]))"))
        .and(query_param("time", "1700000000"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"a":"1"},"value":[1700000000,"0.99"]},
                {"metric":{"a":"2"},"value":[1700000000,"0.5"]}]},
              "warnings":["ignored"]}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let m = metric(json!({"address": server.uri(), "query": "sum(rate(x{a=\"b c\"}[5m]))"}));
    let r = measure(&m).await;
    assert_eq!(floats(r.clone()), vec![0.99, 0.5]);
    let eval = evaluate_result(m.success_condition.as_deref(), None, &value(r));
    assert_eq!(eval.phase, MeasurementPhase::Successful);
    assert_eq!(eval.value, "[0.99,0.5]");
}

#[tokio::test]
async fn scalar_string_and_special_floats() {
    let server = MockServer::start().await;
    let m = metric(json!({"address": server.uri(), "query": "q"}));
    serve(
        &server,
        "/api/v1/query",
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42.5"]}}"#,
    )
    .await;
    assert_eq!(value(measure(&m).await), Value::Float(42.5));

    server.reset().await;
    serve(
        &server,
        "/api/v1/query",
        200,
        r#"{"status":"success","data":{"resultType":"string","result":[1700000000,"hello"]}}"#,
    )
    .await;
    assert_eq!(value(measure(&m).await), Value::String("hello".into()));

    server.reset().await;
    serve(
        &server,
        "/api/v1/query",
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1,"NaN"]},{"metric":{},"value":[1,"+Inf"]},
            {"metric":{},"value":[1,"-Inf"]}]}}"#,
    )
    .await;
    let got = floats(measure(&m).await);
    assert!(got[0].is_nan());
    assert_eq!(got[1..], [f64::INFINITY, f64::NEG_INFINITY]);
    // NaN never satisfies a comparison: the success condition fails.
    let eval = evaluate_result(Some("result[0] >= 0.95"), None, &value(measure(&m).await));
    assert_eq!(eval.phase, MeasurementPhase::Failed);
    assert_eq!(eval.value, "[NaN,+Inf,-Inf]");
}

#[tokio::test]
async fn empty_vector_is_an_empty_result() {
    let server = MockServer::start().await;
    serve(
        &server,
        "/api/v1/query",
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
    )
    .await;
    let m = metric(json!({"address": server.uri(), "query": "q"}));
    let v = value(measure(&m).await);
    assert_eq!(v, Value::Array(vec![]));
    let eval = evaluate_result(Some("result[0] >= 0.95"), None, &v);
    assert_eq!(eval.phase, MeasurementPhase::Error);
    assert!(
        eval.message
            .as_deref()
            .is_some_and(|m| m.contains("metric result is nil or empty"))
    );
}

#[tokio::test]
async fn range_query_params_and_matrix() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/prom/api/v1/query_range"))
        .and(query_param("query", "http_latency_ms"))
        .and(query_param("start", "1699999400"))
        .and(query_param("end", "1700000000"))
        .and(query_param("step", "60"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"s":"a"},"values":[[1699999400,"11"],[1699999460,"12"]]},
                {"metric":{"s":"b"},"values":[[1699999400,"13"],[1699999460,"14"]]}]}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let m = metric(json!({
        "address": format!("{}/prom/", server.uri()),
        "query": "http_latency_ms",
        "rangeQuery": {"start": "now() - duration(\"10m\")", "end": "now()", "step": "1m"}
    }));
    let v = value(measure(&m).await);
    let eval = evaluate_result(Some("all(result, # < 1000)"), None, &v);
    assert_eq!(eval.phase, MeasurementPhase::Successful);
    assert_eq!(eval.value, "[11,12,13,14]");

    let bad = metric(json!({
        "address": server.uri(), "query": "q",
        "rangeQuery": {"start": "now() - 10m", "step": "1m"}
    }));
    assert!(matches!(
        measure(&bad).await,
        Err(ProviderError::Config { field, .. }) if field == "rangeQuery.start"
    ));
    let no_step = metric(json!({
        "address": server.uri(), "query": "q",
        "rangeQuery": {"start": "now() - duration(\"1m\")"}
    }));
    assert!(matches!(
        measure(&no_step).await,
        Err(ProviderError::Config { field, .. }) if field == "rangeQuery.step"
    ));
}

#[tokio::test]
async fn error_envelope_is_a_query_error() {
    for status in [200, 400, 422, 503] {
        let server = MockServer::start().await;
        serve(
            &server,
            "/api/v1/query",
            status,
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected <EOF>"}"#,
        )
        .await;
        let m = metric(json!({"address": server.uri(), "query": "sum("}));
        assert_eq!(
            measure(&m).await,
            Err(ProviderError::Query {
                provider: "prometheus",
                error_type: "bad_data".into(),
                message: "1:5: parse error: unexpected <EOF>".into(),
            }),
            "HTTP {status}"
        );
    }
}

#[tokio::test]
async fn http_500_with_html_keeps_512_bytes_of_body() {
    let server = MockServer::start().await;
    let html = format!("<html><body>{}</body></html>", "x".repeat(2000));
    serve(&server, "/api/v1/query", 500, &html).await;
    let m = metric(json!({"address": server.uri(), "query": "q"}));
    match measure(&m).await {
        Err(ProviderError::Status {
            status,
            body,
            address,
            ..
        }) => {
            assert_eq!(status, 500);
            assert_eq!(body.len(), 512);
            assert!(body.starts_with("<html><body>xxx"));
            assert!(address.starts_with(&server.uri()));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn invalid_json_is_a_decode_error() {
    let server = MockServer::start().await;
    for body in [
        "not json",
        r#"{"status":"success"}"#,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}}"#,
    ] {
        server.reset().await;
        serve(&server, "/api/v1/query", 200, body).await;
        let m = metric(json!({"address": server.uri(), "query": "q"}));
        assert!(
            matches!(measure(&m).await, Err(ProviderError::Decode { .. })),
            "{body}"
        );
    }
}

#[tokio::test]
async fn slow_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(
                    r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#,
                )
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let m = metric(json!({"address": server.uri(), "query": "q"}));
    let started = Instant::now();
    match measure(&m).await {
        Err(ProviderError::Timeout { timeout_ms, .. }) => assert_eq!(timeout_ms, 200),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port()
    };
    let m = metric(json!({"address": format!("http://127.0.0.1:{port}"), "query": "q"}));
    match measure(&m).await {
        Err(ProviderError::Unreachable { address, .. }) => {
            assert!(address.starts_with(&format!("http://127.0.0.1:{port}/api/v1/query")));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn headers_and_basic_auth_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(header("X-Scope-OrgID", "tenant_a"))
        // base64("user:p@ss:word")
        .and(header("Authorization", "Basic dXNlcjpwQHNzOndvcmQ="))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let m = metric(json!({
        "address": server.uri(), "query": "q",
        "headers": [{"key": "X-Scope-OrgID", "value": "ignored"}, {"key": "x-scope-orgid", "value": "tenant_a"}],
        "authentication": {"basicAuth": {"username": "user", "password": "p@ss:word"}}
    }));
    assert_eq!(value(measure(&m).await), Value::Float(1.0));
}

#[tokio::test]
async fn unsupported_and_invalid_config_is_typed() {
    let field = |r: Result<Measured, ProviderError>| match r {
        Err(ProviderError::Config { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let m = metric(json!({"address": "http://127.0.0.1:9", "query": "q",
        "authentication": {"sigv4": {"region": "eu-west-1"}}}));
    assert_eq!(field(measure(&m).await), "authentication.sigv4");
    let m = metric(json!({"address": "http://127.0.0.1:9", "query": "q",
        "authentication": {"oauth2": {"clientId": "id"}}}));
    assert_eq!(field(measure(&m).await), "authentication.oauth2.tokenUrl");
    let m = metric(json!({"address": "http://127.0.0.1:9"}));
    assert_eq!(field(measure(&m).await), "query");
    let m = metric(json!({"address": "http://127.0.0.1:9", "query": "q", "timeout": -1}));
    assert_eq!(field(measure(&m).await), "timeout");
    let m = metric(json!({"address": "not a url", "query": "q"}));
    assert_eq!(field(measure(&m).await), "address");
    let m = metric(json!({"address": "ftp://host", "query": "q"}));
    assert_eq!(field(measure(&m).await), "address");
    // No rustls CryptoProvider is installed in this test binary: https is a config
    // error, never a panic.
    assert!(!HttpClient::new().supports_https());
    let m = metric(json!({"address": "https://127.0.0.1:9", "query": "q"}));
    assert_eq!(field(measure(&m).await), "address");
    let web: Metric =
        serde_json::from_value(json!({"name": "w", "provider": {"web": {"url": "http://x"}}}))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(field(measure(&web).await), "prometheus");
}

#[tokio::test]
async fn oauth2_client_credentials_token_is_sent_as_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        // base64("my-client-id:s3cr%2Ft"): id and secret form-encoded, as Go does.
        .and(header(
            "Authorization",
            "Basic bXktY2xpZW50LWlkOnMzY3IlMkZ0",
        ))
        .and(wiremock::matchers::body_string(
            "grant_type=client_credentials&scope=read+write",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"access_token": "tok-123", "token_type": "Bearer", "expires_in": 3600}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(header("Authorization", "Bearer tok-123"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"0.97"]}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let m = metric(json!({
        "address": server.uri(), "query": "q",
        "authentication": {"oauth2": {
            "tokenUrl": format!("{}/token", server.uri()),
            "clientId": "my-client-id", "clientSecret": "s3cr/t",
            "scopes": ["read", "write"]
        }}
    }));
    assert_eq!(value(measure(&m).await), Value::Float(0.97));

    // A token endpoint that refuses: a Status error naming the token URL.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_string("invalid_client"))
        .mount(&server)
        .await;
    match measure(&m).await {
        Err(ProviderError::Status {
            status, address, ..
        }) => {
            assert_eq!(status, 401);
            assert_eq!(address, format!("{}/token", server.uri()));
        }
        other => panic!("{other:?}"),
    }
}
