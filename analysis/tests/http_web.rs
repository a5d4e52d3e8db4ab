//! The web provider against a mock HTTP server (wiremock): methods, headers, bodies,
//! JSONPath selection, non-JSON bodies, non-2xx answers, timeouts, unreachable hosts and
//! config errors.
#![cfg(feature = "http")]

use std::time::{Duration, Instant};

use rollout_analysis::expr::Value;
use rollout_analysis::provider::http::{HttpClient, WebProvider};
use rollout_analysis::provider::{MeasureContext, Measured, Provider, ProviderError};
use rollout_analysis::template::Metric;
use rollout_analysis::{MeasurementPhase, evaluate_result};
use serde_json::json;
use wiremock::matchers::{body_json, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CTX: MeasureContext<'static> = MeasureContext {
    namespace: "default",
    run_name: "run",
    run_uid: None,
    measurement_index: 0,
};

fn metric(web: serde_json::Value) -> Metric {
    serde_json::from_value(json!({"name": "w", "provider": {"web": web}}))
        .unwrap_or_else(|e| panic!("metric: {e}"))
}

async fn measure(m: &Metric) -> Result<Measured, ProviderError> {
    WebProvider::new(HttpClient::new())
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

const PAYLOAD: &str = r#"{"data": {"ok": true, "successPercent": 0.95, "count": 3},
    "items": [{"name": "a", "value": 1}, {"name": "b", "value": 2}]}"#;

async fn json_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/measurement"))
        .respond_with(ResponseTemplate::new(200).set_body_string(PAYLOAD))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn json_path_selects_the_result() {
    let server = json_server().await;
    let url = format!("{}/api/v1/measurement?service=x", server.uri());
    let m = metric(json!({"url": url, "jsonPath": "{$.data.ok}"}));
    assert_eq!(value(measure(&m).await), Value::Bool(true));

    let m = metric(json!({"url": url, "jsonPath": "{$.data.count}"}));
    // Numbers are float64, as Go decodes JSON.
    assert_eq!(value(measure(&m).await), Value::Float(3.0));

    // The Argo docs' example: the whole object, then field access in the condition.
    let m = metric(json!({"url": url, "jsonPath": "{$.data}"}));
    let v = value(measure(&m).await);
    let eval = evaluate_result(Some("result.ok && result.successPercent >= 0.90"), None, &v);
    assert_eq!(eval.phase, MeasurementPhase::Successful);
    assert_eq!(eval.value, r#"{"count":3,"ok":true,"successPercent":0.95}"#);

    // Default `{$}`: the whole document.
    let m = metric(json!({"url": url}));
    let v = value(measure(&m).await);
    let eval = evaluate_result(Some("len(result.items) == 2"), None, &v);
    assert_eq!(eval.phase, MeasurementPhase::Successful);

    // Several matches: Argo keeps the first.
    let m = metric(json!({"url": url, "jsonPath": "{$.items[*].value}"}));
    assert_eq!(value(measure(&m).await), Value::Float(1.0));
    let m = metric(json!({"url": url, "jsonPath": "{$.items[?(@.name == 'b')].value}"}));
    assert_eq!(value(measure(&m).await), Value::Float(2.0));
}

#[tokio::test]
async fn missing_path_is_a_decode_error_naming_it() {
    let server = json_server().await;
    let url = format!("{}/api/v1/measurement", server.uri());
    let m = metric(json!({"url": url, "jsonPath": "{$.data.nope}"}));
    match measure(&m).await {
        Err(ProviderError::Decode { reason, .. }) => {
            assert!(reason.contains("$.data.nope"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn non_json_body_is_successful_as_raw_text() {
    let server = MockServer::start().await;
    for (route, body) in [("/text", "all good"), ("/empty", "")] {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        let m = metric(json!({"url": format!("{}{route}", server.uri()), "jsonPath": "{$.x}"}));
        assert_eq!(
            measure(&m).await,
            Ok(Measured::Verdict {
                phase: MeasurementPhase::Successful,
                value: Value::String(body.into()),
            })
        );
    }
}

#[tokio::test]
async fn post_and_put_send_bodies_and_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/json"))
        .and(header("Content-Type", "application/json"))
        .and(header("Authorization", "Bearer token"))
        .and(body_json(json!({"service": "canary", "window": 5})))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"score": 97}"#))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/text"))
        .and(body_string("plain payload"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"score": 12}"#))
        .expect(1)
        .mount(&server)
        .await;
    let m = metric(json!({
        "method": "POST",
        "url": format!("{}/json", server.uri()),
        "headers": [{"key": "Authorization", "value": "Bearer token"}],
        "jsonBody": {"service": "canary", "window": 5},
        "jsonPath": "{$.score}"
    }));
    assert_eq!(value(measure(&m).await), Value::Float(97.0));
    let m = metric(json!({
        "method": "PUT",
        "url": format!("{}/text", server.uri()),
        "body": "plain payload",
        "jsonPath": "{.score}"
    }));
    assert_eq!(value(measure(&m).await), Value::Float(12.0));
}

#[tokio::test]
async fn non_2xx_timeouts_and_unreachable() {
    let server = MockServer::start().await;
    Mock::given(path("/fail"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("{}")
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let m = metric(json!({"url": format!("{}/fail", server.uri())}));
    match measure(&m).await {
        Err(ProviderError::Status { status, body, .. }) => {
            assert_eq!((status, body.as_str()), (503, "overloaded"));
        }
        other => panic!("{other:?}"),
    }
    let m = metric(json!({"url": format!("{}/slow", server.uri())}));
    let started = Instant::now();
    assert!(matches!(
        measure(&m).await,
        Err(ProviderError::Timeout {
            timeout_ms: 200,
            ..
        })
    ));
    assert!(started.elapsed() < Duration::from_secs(2));

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        l.local_addr().unwrap_or_else(|e| panic!("{e}")).port()
    };
    let m = metric(json!({"url": format!("http://127.0.0.1:{port}/x")}));
    assert!(matches!(
        measure(&m).await,
        Err(ProviderError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn config_errors_name_the_field() {
    let field = |r: Result<Measured, ProviderError>| match r {
        Err(ProviderError::Config { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let url = "http://127.0.0.1:9/x";
    let cases = [
        (json!({"url": url, "method": "DELETE"}), "method"),
        (json!({"url": url, "body": "x"}), "body"),
        (json!({"url": url, "jsonBody": {"a": 1}}), "jsonBody"),
        (
            json!({"url": url, "method": "POST", "body": "x", "jsonBody": {}}),
            "body",
        ),
        (json!({"url": url, "jsonPath": "{$.items["}), "jsonPath"),
        (json!({"url": ""}), "url"),
        (json!({"url": "no scheme"}), "url"),
        (json!({"url": "https://127.0.0.1:9/x"}), "url"),
        (
            json!({"url": url, "authentication": {"oauth2": {"clientId": "x"}}}),
            "authentication.oauth2.tokenUrl",
        ),
        (
            json!({"url": url, "authentication": {"sigv4": {"region": "x"}}}),
            "authentication.sigv4",
        ),
    ];
    for (web, want) in cases {
        assert_eq!(field(measure(&metric(web.clone())).await), want, "{web}");
    }
}

#[tokio::test]
async fn oauth2_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"access_token": "abc"}"#))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/m"))
        .and(header("Authorization", "Bearer abc"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"ok": true}"#))
        .expect(1)
        .mount(&server)
        .await;
    let m = metric(json!({
        "url": format!("{}/m", server.uri()),
        "jsonPath": "{$.ok}",
        "authentication": {"oauth2": {"tokenUrl": format!("{}/token", server.uri()), "clientId": "c", "clientSecret": "s"}}
    }));
    assert_eq!(value(measure(&m).await), Value::Bool(true));
}
