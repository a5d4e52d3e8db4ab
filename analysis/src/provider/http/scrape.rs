//! The scrape provider: read a target's `/metrics` directly, no Prometheus server.
//!
//! # The model
//!
//! A measurement fetches a text exposition (what Prometheus would scrape), parses all of
//! it with the strict [`crate::provider::exposition`] parser, keeps the samples of one
//! metric whose labels match, and reduces them to the `result` the conditions judge.
//! It is configured through Argo's metric-plugin field, so templates stay valid Argo
//! documents (Argo itself would need a plugin of that name installed):
//!
//! ```yaml
//! provider:
//!   plugin:
//!     rollout-rs/scrape:
//!       url: http://canary.default.svc:8080/metrics   # required, http or https
//!       metric: http_requests_total                   # required, the sample name
//!       labels: {code: "500", path: "/api"}           # optional, exact matches
//!       aggregate: sum                                # none (default) | sum | avg | min | max | count
//!       timeoutSeconds: 10                            # optional, default 10
//!       headers: [{key: Authorization, value: "Bearer ..."}]  # optional
//! ```
//!
//! `metric` is the name on the sample line, so a histogram is read through its series
//! (`latency_seconds_bucket` with `labels: {le: "0.5"}`, `latency_seconds_sum`, ...).
//! Results:
//!
//! | aggregate | `result` |
//! |---|---|
//! | `none` | the list of matching sample values, in exposition order (`[]` if none) |
//! | `sum`, `avg` | a float (NaN propagates); `[]` when nothing matched |
//! | `min`, `max` | a float, NaN samples ignored unless all are NaN (PromQL's rule); `[]` when nothing matched |
//! | `count` | the number of matching samples, as a float (`0` when nothing matched) |
//!
//! An empty `[]` makes the conditions fail with Argo's "metric result is nil or empty"
//! message. A malformed exposition is a [`ProviderError::Decode`] naming the line and
//! column; an unknown or ill-typed config field a [`ProviderError::Config`] with its
//! path (`plugin.rollout-rs/scrape.aggregate`); transport failures as for every HTTP
//! provider.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{HttpClient, Request, set_header};
use crate::expr::Value;
use crate::provider::exposition::{self, Sample};
use crate::provider::{MeasureContext, Measured, Provider, ProviderError};
use crate::template::{Header, Metric};

/// The plugin name under `provider.plugin`.
pub const PLUGIN_NAME: &str = "rollout-rs/scrape";

/// Default timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 10;

const NAME: &str = "scrape";

/// How matching samples become `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Aggregate {
    /// The list of values.
    #[default]
    None,
    /// Their sum.
    Sum,
    /// Their mean.
    Avg,
    /// The smallest (NaN ignored unless all are NaN).
    Min,
    /// The largest (NaN ignored unless all are NaN).
    Max,
    /// How many matched.
    Count,
}

/// The plugin's configuration (see the module docs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The exposition URL.
    pub url: String,
    /// The sample name to read.
    pub metric: String,
    /// Labels a sample must carry, with exactly these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The reduction.
    #[serde(default)]
    pub aggregate: Aggregate,
    /// Timeout in seconds (default [`DEFAULT_TIMEOUT_SECONDS`]).
    #[serde(default)]
    pub timeout_seconds: Option<i64>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: Vec<Header>,
}

fn config(field: impl Into<String>, reason: impl Into<String>) -> ProviderError {
    ProviderError::Config {
        provider: NAME,
        field: field.into(),
        reason: reason.into(),
    }
}

impl ScrapeConfig {
    /// Reads the configuration from a metric's `provider.plugin` value.
    pub fn from_plugin(plugin: &serde_json::Value) -> Result<ScrapeConfig, ProviderError> {
        let prefix = format!("plugin.{PLUGIN_NAME}");
        let raw = plugin
            .get(PLUGIN_NAME)
            .ok_or_else(|| config(&prefix, "is missing"))?;
        let cfg: ScrapeConfig = serde_path_to_error::deserialize(raw).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                prefix.clone()
            } else {
                format!("{prefix}.{path}")
            };
            config(field, e.into_inner().to_string())
        })?;
        if cfg.url.trim().is_empty() {
            return Err(config(format!("{prefix}.url"), "is required"));
        }
        if cfg.metric.trim().is_empty() {
            return Err(config(format!("{prefix}.metric"), "is required"));
        }
        Ok(cfg)
    }
}

/// Reduces the samples named `metric` whose labels match (see the module docs).
pub fn select(samples: &[Sample], cfg: &ScrapeConfig) -> Value {
    let values: Vec<f64> = samples
        .iter()
        .filter(|s| {
            s.name == cfg.metric
                && cfg
                    .labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|got| got == v))
        })
        .map(|s| s.value)
        .collect();
    let empty = || Value::Array(Vec::new());
    match cfg.aggregate {
        Aggregate::None => Value::Array(values.into_iter().map(Value::Float).collect()),
        Aggregate::Count => Value::Float(values.len() as f64),
        _ if values.is_empty() => empty(),
        Aggregate::Sum => Value::Float(values.iter().sum()),
        Aggregate::Avg => Value::Float(values.iter().sum::<f64>() / values.len() as f64),
        Aggregate::Min | Aggregate::Max => {
            let want_max = cfg.aggregate == Aggregate::Max;
            let best = values
                .iter()
                .copied()
                .filter(|v| !v.is_nan())
                .reduce(|a, b| if want_max { a.max(b) } else { a.min(b) });
            Value::Float(best.unwrap_or(f64::NAN))
        }
    }
}

/// The scrape provider (see the module docs).
#[derive(Debug, Clone)]
pub struct ScrapeProvider {
    client: HttpClient,
    default_timeout: Duration,
}

impl Default for ScrapeProvider {
    fn default() -> Self {
        ScrapeProvider::new(HttpClient::new())
    }
}

impl ScrapeProvider {
    /// A provider on `client`.
    pub fn new(client: HttpClient) -> Self {
        ScrapeProvider {
            client,
            default_timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS as u64),
        }
    }

    /// The timeout used when the config sets no positive `timeoutSeconds`.
    #[must_use]
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Fetches, parses and reduces one exposition.
    pub async fn scrape(&self, cfg: &ScrapeConfig) -> Result<Value, ProviderError> {
        let timeout = cfg
            .timeout_seconds
            .filter(|t| *t > 0)
            .map_or(self.default_timeout, |t| {
                Duration::from_secs(u64::try_from(t).unwrap_or(u64::MAX))
            });
        let mut headers = vec![(
            "Accept".to_string(),
            "text/plain;version=0.0.4;q=1,*/*;q=0.1".to_string(),
        )];
        for h in &cfg.headers {
            if h.key.is_empty() {
                return Err(config(
                    format!("plugin.{PLUGIN_NAME}.headers"),
                    "a header has an empty key",
                ));
            }
            set_header(&mut headers, &h.key, &h.value);
        }
        let req = Request {
            provider: NAME,
            url_field: "plugin.rollout-rs/scrape.url",
            method: http::Method::GET,
            url: cfg.url.trim().to_string(),
            headers,
            body: None,
            timeout,
            insecure: false,
        };
        let resp = self.client.send(&req).await?.success(&req)?;
        let text = std::str::from_utf8(&resp.body).map_err(|e| ProviderError::Decode {
            provider: NAME,
            reason: format!("the exposition is not UTF-8: {e}"),
        })?;
        let samples = exposition::parse(text).map_err(|e| ProviderError::Decode {
            provider: NAME,
            reason: format!("malformed exposition: {e}"),
        })?;
        Ok(select(&samples, cfg))
    }
}

#[async_trait::async_trait]
impl Provider for ScrapeProvider {
    async fn measure(
        &self,
        _ctx: &MeasureContext<'_>,
        metric: &Metric,
    ) -> Result<Measured, ProviderError> {
        let plugin = metric
            .provider
            .plugin
            .as_ref()
            .ok_or_else(|| config("plugin", "the metric has no plugin provider"))?;
        let cfg = ScrapeConfig::from_plugin(plugin)?;
        self.scrape(&cfg).await.map(Measured::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> Result<ScrapeConfig, ProviderError> {
        ScrapeConfig::from_plugin(&json!({ PLUGIN_NAME: v }))
    }

    #[test]
    fn config_errors_name_the_field() {
        let field = |r: Result<ScrapeConfig, ProviderError>| match r {
            Err(ProviderError::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(cfg(
                json!({"url": "http://x", "metric": "m", "aggregate": "median"})
            )),
            "plugin.rollout-rs/scrape.aggregate"
        );
        assert_eq!(
            field(cfg(json!({"url": "http://x", "metric": "m", "bogus": 1}))),
            "plugin.rollout-rs/scrape.bogus"
        );
        assert_eq!(
            field(cfg(json!({"url": "", "metric": "m"}))),
            "plugin.rollout-rs/scrape.url"
        );
        assert_eq!(
            field(ScrapeConfig::from_plugin(&json!({"other": {}}))),
            "plugin.rollout-rs/scrape"
        );
    }

    #[test]
    fn aggregates() {
        let text = "m{a=\"1\"} 1\nm{a=\"2\"} 4\nm{a=\"2\",b=\"x\"} NaN\nother 9\n";
        let samples = exposition::parse(text).unwrap_or_else(|e| panic!("{e}"));
        let run = |agg: &str, labels: serde_json::Value| {
            let c =
                cfg(json!({"url": "http://x", "metric": "m", "aggregate": agg, "labels": labels}))
                    .unwrap_or_else(|e| panic!("{e}"));
            select(&samples, &c)
        };
        let is_nan = |v: &Value| matches!(v, Value::Float(f) if f.is_nan());
        match run("none", json!({})) {
            Value::Array(items) => {
                assert_eq!(items.len(), 3);
                assert_eq!(items[..2], [Value::Float(1.0), Value::Float(4.0)]);
                assert!(is_nan(&items[2]));
            }
            other => panic!("{other:?}"),
        }
        assert!(is_nan(&run("sum", json!({}))));
        assert!(is_nan(&run("sum", json!({"a": "2", "b": "x"}))));
        assert!(is_nan(&run("avg", json!({"b": "x"}))));
        assert!(is_nan(&run("max", json!({"b": "x"}))));
        assert_eq!(run("max", json!({})), Value::Float(4.0));
        assert_eq!(run("min", json!({})), Value::Float(1.0));
        assert_eq!(run("sum", json!({"a": "1"})), Value::Float(1.0));
        assert_eq!(run("avg", json!({"a": "1"})), Value::Float(1.0));
        assert_eq!(run("count", json!({"a": "2"})), Value::Float(2.0));
        assert_eq!(run("count", json!({"a": "3"})), Value::Float(0.0));
        assert_eq!(run("max", json!({"a": "3"})), Value::Array(vec![]));
        assert_eq!(run("none", json!({"a": "3"})), Value::Array(vec![]));
    }
}
