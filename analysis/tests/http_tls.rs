//! `https://` goes through reqwest once the application has installed a rustls
//! `CryptoProvider` (this test binary installs ring's; `http_prometheus.rs` checks that
//! without one https is a config error). wiremock speaks plain HTTP, so the TLS
//! handshake fails: the error must be a typed `Unreachable`, never a panic, while plain
//! `http://` keeps working.
#![cfg(feature = "http")]

use std::time::Duration;

use rollout_analysis::expr::Value;
use rollout_analysis::provider::http::{HttpClient, WebProvider};
use rollout_analysis::provider::{MeasureContext, Measured, Provider, ProviderError};
use rollout_analysis::template::Metric;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CTX: MeasureContext<'static> = MeasureContext {
    namespace: "default",
    run_name: "run",
    run_uid: None,
    measurement_index: 0,
};

fn metric(url: &str, insecure: bool) -> Metric {
    serde_json::from_value(json!({
        "name": "w",
        "provider": {"web": {"url": url, "insecure": insecure, "jsonPath": "{$.v}"}}
    }))
    .unwrap_or_else(|e| panic!("metric: {e}"))
}

#[tokio::test]
async fn https_uses_the_installed_provider() {
    // Another test of this binary may have installed it first; either way one is set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = HttpClient::new();
    assert!(client.supports_https());

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"v": 1}"#))
        .mount(&server)
        .await;
    let provider = WebProvider::new(client).with_default_timeout(Duration::from_secs(5));

    for insecure in [false, true] {
        let https = server.uri().replacen("http://", "https://", 1);
        match provider.measure(&CTX, &metric(&https, insecure)).await {
            Err(ProviderError::Unreachable { address, .. }) => assert_eq!(address, https),
            other => panic!("insecure={insecure}: {other:?}"),
        }
    }
    assert_eq!(
        provider.measure(&CTX, &metric(&server.uri(), false)).await,
        Ok(Measured::Value(Value::Float(1.0)))
    );
}
