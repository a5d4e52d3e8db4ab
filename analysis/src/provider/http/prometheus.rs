//! The `prometheus` provider: PromQL over the Prometheus HTTP API.
//!
//! # The model
//!
//! One measurement is one query. Without `rangeQuery` it is an instant query,
//! `GET <address>/api/v1/query?query=<q>&time=<now>`, where `now` comes from the
//! provider's [`Clock`]. With `rangeQuery` it is
//! `GET <address>/api/v1/query_range?query=<q>&start=<s>&end=<e>&step=<step>`, where
//! `start` and `end` are Argo's time expressions, evaluated against the same clock:
//!
//! * `now()`, `duration("10m")` (a Go duration), `date("2026-11-21T10:00:00Z")` (RFC 3339,
//!   or a bare `2026-11-21` at midnight UTC), parentheses, and `+` / `-` between a time
//!   and a duration (time − time is a duration); the expression must yield a time;
//! * `end` defaults to `now()`; `start` and `step` (a Go duration, > 0) are required.
//!
//! The answer goes through [`crate::provider::prometheus::parse_response`] and
//! [`to_value`], so `result` is what Argo binds:
//! a scalar is a float, a vector the list of its sample values, a matrix all samples
//! flattened into one list, `NaN`/`+Inf`/`-Inf` samples floats. A vector or matrix with
//! no samples is the empty list (conditions then fail with Argo's "metric result is nil
//! or empty" message). Warnings are ignored. The error envelope
//! (`{"status":"error","errorType":..,"error":..}`, with any HTTP status) is a
//! [`ProviderError::Query`]; any other non-2xx answer a [`ProviderError::Status`].
//!
//! Fields (`metric.provider.prometheus`): `address` (required unless the provider has a
//! default), `query` (required), `timeout` in seconds (default
//! [`DEFAULT_TIMEOUT_SECONDS`]; negative is a config error), `headers` (set in order,
//! a later key replacing an earlier one), `insecure` (https only),
//! `authentication.basicAuth`, `authentication.oauth2` (client credentials: a token is
//! fetched from `tokenUrl` before each query and sent as `Authorization: Bearer`,
//! replacing any other `Authorization`). `authentication.sigv4` is not supported and
//! fails with a [`ProviderError::Config`] naming the field.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use rollout_core::duration::Duration;
use rollout_core::time::Timestamp;

use super::{
    Clock, HttpClient, Request, SystemClock, join_url, oauth2_token, request_headers, set_header,
    unix_seconds,
};
use crate::expr::Value;
use crate::provider::prometheus::{PrometheusError, parse_response, to_value};
use crate::provider::{MeasureContext, Measured, Provider, ProviderError};
use crate::template::{Metric, OAuth2, PrometheusMetric};

/// Argo's default query timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 30;

const NAME: &str = "prometheus";

/// The Prometheus provider (see the module docs).
#[derive(Clone)]
pub struct PrometheusProvider {
    client: HttpClient,
    clock: Arc<dyn Clock>,
    default_address: Option<String>,
    default_timeout: StdDuration,
}

impl std::fmt::Debug for PrometheusProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusProvider")
            .field("client", &self.client)
            .field("default_address", &self.default_address)
            .field("default_timeout", &self.default_timeout)
            .finish()
    }
}

impl Default for PrometheusProvider {
    fn default() -> Self {
        PrometheusProvider::new(HttpClient::new())
    }
}

/// A resolved query, before it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedQuery {
    /// The full URL, query string included.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The timeout.
    pub timeout: StdDuration,
    /// Skip TLS verification.
    pub insecure: bool,
    /// OAuth2 client credentials to exchange for a bearer token before sending.
    pub oauth2: Option<OAuth2>,
}

fn config(field: impl Into<String>, reason: impl Into<String>) -> ProviderError {
    ProviderError::Config {
        provider: NAME,
        field: field.into(),
        reason: reason.into(),
    }
}

impl PrometheusProvider {
    /// A provider on `client` with the system clock and no default address.
    pub fn new(client: HttpClient) -> Self {
        PrometheusProvider {
            client,
            clock: Arc::new(SystemClock),
            default_address: None,
            default_timeout: StdDuration::from_secs(DEFAULT_TIMEOUT_SECONDS as u64),
        }
    }

    /// Uses `clock` for `time=`, `now()` in range expressions.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The address used when a metric has none (Argo reads it from the environment).
    #[must_use]
    pub fn with_default_address(mut self, address: impl Into<String>) -> Self {
        self.default_address = Some(address.into());
        self
    }

    /// The timeout used when a metric sets none (Argo's is [`DEFAULT_TIMEOUT_SECONDS`];
    /// tests and latency-sensitive callers may want less).
    #[must_use]
    pub fn with_default_timeout(mut self, timeout: StdDuration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Builds the request for a metric's `prometheus` section at `now`, without sending
    /// it (what [`Provider::measure`] sends).
    pub fn plan(
        &self,
        spec: &PrometheusMetric,
        now: Timestamp,
    ) -> Result<PlannedQuery, ProviderError> {
        let address = spec
            .address
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .or(self.default_address.as_deref())
            .ok_or_else(|| config("address", "is required"))?
            .trim();
        let query = spec
            .query
            .as_deref()
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| config("query", "is required"))?;
        let timeout = match spec.timeout {
            None | Some(0) => self.default_timeout,
            Some(t) if t < 0 => return Err(config("timeout", format!("{t} is negative"))),
            Some(t) => StdDuration::from_secs(u64::try_from(t).unwrap_or(u64::MAX)),
        };
        let headers = request_headers(spec.authentication.as_ref(), &spec.headers)
            .map_err(|(f, r)| config(f, r))?;
        let url = match &spec.range_query {
            None => join_url(
                address,
                "/api/v1/query",
                &[("query", query.to_string()), ("time", unix_seconds(now))],
            ),
            Some(range) => {
                let start_src = range
                    .start
                    .as_deref()
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| config("rangeQuery.start", "is required"))?;
                let start = eval_time(start_src, now)
                    .map_err(|e| config("rangeQuery.start", format!("{start_src:?}: {e}")))?;
                let end = match range.end.as_deref().filter(|s| !s.trim().is_empty()) {
                    None => now,
                    Some(src) => eval_time(src, now)
                        .map_err(|e| config("rangeQuery.end", format!("{src:?}: {e}")))?,
                };
                if end < start {
                    return Err(config("rangeQuery.end", "is before rangeQuery.start"));
                }
                let step_src = range
                    .step
                    .as_deref()
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| config("rangeQuery.step", "is required"))?;
                let step = Duration::parse(step_src.trim())
                    .map_err(|e| config("rangeQuery.step", e.to_string()))?;
                if step.as_nanos() <= 0 {
                    return Err(config(
                        "rangeQuery.step",
                        format!("{step_src:?} is not positive"),
                    ));
                }
                join_url(
                    address,
                    "/api/v1/query_range",
                    &[
                        ("query", query.to_string()),
                        ("start", unix_seconds(start)),
                        ("end", unix_seconds(end)),
                        ("step", format_seconds(step)),
                    ],
                )
            }
        };
        Ok(PlannedQuery {
            url,
            headers,
            timeout,
            insecure: spec.insecure,
            oauth2: spec.authentication.as_ref().and_then(|a| a.oauth2.clone()),
        })
    }

    /// Runs a query and returns the value Argo binds to `result`.
    pub async fn query(&self, spec: &PrometheusMetric) -> Result<Value, ProviderError> {
        let planned = self.plan(spec, self.clock.now())?;
        let mut headers = planned.headers;
        if let Some(oauth) = &planned.oauth2 {
            let token =
                oauth2_token(&self.client, NAME, oauth, planned.timeout, planned.insecure).await?;
            set_header(&mut headers, "Authorization", &format!("Bearer {token}"));
        }
        let req = Request {
            provider: NAME,
            url_field: "address",
            method: http::Method::GET,
            url: planned.url,
            headers,
            body: None,
            timeout: planned.timeout,
            insecure: planned.insecure,
        };
        let resp = self.client.send(&req).await?;
        let ok = (200..300).contains(&resp.status);
        match parse_response(&resp.body) {
            Ok(result) if ok => Ok(to_value(&result)),
            Err(PrometheusError::NoValues) if ok => Ok(Value::Array(Vec::new())),
            Err(PrometheusError::Api { error_type, error }) => Err(ProviderError::Query {
                provider: NAME,
                error_type,
                message: error,
            }),
            Err(e) if ok => Err(ProviderError::Decode {
                provider: NAME,
                reason: e.to_string(),
            }),
            _ => Err(resp
                .success(&req)
                .err()
                .unwrap_or_else(|| ProviderError::Decode {
                    provider: NAME,
                    reason: "unexpected response".into(),
                })),
        }
    }
}

#[async_trait::async_trait]
impl Provider for PrometheusProvider {
    async fn measure(
        &self,
        _ctx: &MeasureContext<'_>,
        metric: &Metric,
    ) -> Result<Measured, ProviderError> {
        let spec = metric
            .provider
            .prometheus
            .as_ref()
            .ok_or_else(|| config("prometheus", "the metric has no prometheus provider"))?;
        self.query(spec).await.map(Measured::Value)
    }
}

/// A duration in seconds as Prometheus reads `step` (`60`, `0.5`).
fn format_seconds(d: Duration) -> String {
    let nanos = d.as_nanos();
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        secs.to_string()
    } else {
        let f = format!("{frac:09}");
        format!("{secs}.{}", f.trim_end_matches('0'))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TimeVal {
    Time(Timestamp),
    /// Milliseconds.
    Duration(i64),
}

/// Evaluates Argo's range-query time expressions (see the module docs).
pub fn eval_time(src: &str, now: Timestamp) -> Result<Timestamp, String> {
    let mut p = TimeParser { src, pos: 0, now };
    let v = p.expr()?;
    p.ws();
    if p.pos < src.len() {
        return Err(format!("unexpected input at byte {}", p.pos));
    }
    match v {
        TimeVal::Time(t) => Ok(t),
        TimeVal::Duration(_) => Err("the expression yields a duration, not a time".into()),
    }
}

struct TimeParser<'a> {
    src: &'a str,
    pos: usize,
    now: Timestamp,
}

impl TimeParser<'_> {
    fn ws(&mut self) {
        while self.src[self.pos..].starts_with([' ', '\t', '\n']) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        if self.src[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<TimeVal, String> {
        let mut acc = self.term()?;
        loop {
            let sign = if self.eat("+") {
                1
            } else if self.eat("-") {
                -1
            } else {
                return Ok(acc);
            };
            let at = self.pos;
            let rhs = self.term()?;
            acc = match (acc, rhs) {
                (TimeVal::Time(t), TimeVal::Duration(d)) => {
                    TimeVal::Time(t.add_millis(d.saturating_mul(sign)))
                }
                (TimeVal::Duration(a), TimeVal::Duration(b)) => {
                    TimeVal::Duration(a.saturating_add(b.saturating_mul(sign)))
                }
                (TimeVal::Duration(d), TimeVal::Time(t)) if sign > 0 => {
                    TimeVal::Time(t.add_millis(d))
                }
                (TimeVal::Time(a), TimeVal::Time(b)) if sign < 0 => {
                    TimeVal::Duration(a.millis_since(b))
                }
                _ => return Err(format!("invalid operands around byte {at}")),
            };
        }
    }

    fn string_arg(&mut self) -> Result<String, String> {
        if !self.eat("(") {
            return Err(format!("expected '(' at byte {}", self.pos));
        }
        self.ws();
        let quote = match self.src[self.pos..].chars().next() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => return Err(format!("expected a quoted string at byte {}", self.pos)),
        };
        let start = self.pos + 1;
        let Some(len) = self.src[start..].find(quote) else {
            return Err(format!("unterminated string at byte {}", self.pos));
        };
        let s = self.src[start..start + len].to_string();
        self.pos = start + len + 1;
        if !self.eat(")") {
            return Err(format!("expected ')' at byte {}", self.pos));
        }
        Ok(s)
    }

    fn term(&mut self) -> Result<TimeVal, String> {
        self.ws();
        if self.eat("(") {
            let v = self.expr()?;
            if !self.eat(")") {
                return Err(format!("expected ')' at byte {}", self.pos));
            }
            return Ok(v);
        }
        if self.eat("now") {
            if !(self.eat("(") && self.eat(")")) {
                return Err(format!("expected now() at byte {}", self.pos));
            }
            return Ok(TimeVal::Time(self.now));
        }
        if self.eat("duration") {
            let s = self.string_arg()?;
            let d = Duration::parse(&s).map_err(|e| e.to_string())?;
            return Ok(TimeVal::Duration(d.as_millis()));
        }
        if self.eat("date") {
            let s = self.string_arg()?;
            let t = Timestamp::parse_rfc3339(&s)
                .or_else(|e| {
                    if s.len() == 10 {
                        Timestamp::parse_rfc3339(&format!("{s}T00:00:00Z"))
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| e.to_string())?;
            return Ok(TimeVal::Time(t));
        }
        Err(format!(
            "expected now(), duration(\"..\"), date(\"..\") or '(' at byte {}",
            self.pos
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

    #[test]
    fn time_expressions() {
        let t = |s: &str| eval_time(s, NOW);
        assert_eq!(t("now()"), Ok(NOW));
        assert_eq!(t("now() - duration(\"10m\")"), Ok(NOW.add_secs(-600)));
        assert_eq!(
            t(" now()-duration('1h30m') + duration(\"30s\") "),
            Ok(NOW.add_secs(-5370))
        );
        assert_eq!(t("duration(\"1m\") + now()"), Ok(NOW.add_secs(60)));
        assert_eq!(t("(now() - duration(\"1h\"))"), Ok(NOW.add_secs(-3600)));
        assert_eq!(
            t("date(\"2023-11-14T22:13:20Z\")"),
            Ok(Timestamp::from_secs(1_700_000_000))
        );
        assert_eq!(
            t("date('2023-11-14')"),
            Ok(Timestamp::from_secs(1_699_920_000))
        );
        for bad in [
            "",
            "now",
            "duration(\"1m\")",
            "now() - now()",
            "now() + now()",
            "now() - duration(\"5\")",
            "now() * 2",
            "yesterday()",
            "date(\"nope\")",
            "now() - duration(\"1m",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn steps() {
        let p = |s: &str| Duration::parse(s).map(format_seconds);
        assert_eq!(p("1m"), Ok("60".into()));
        assert_eq!(p("1.5s"), Ok("1.5".into()));
        assert_eq!(p("250ms"), Ok("0.25".into()));
    }

    #[test]
    fn plans() {
        let provider = PrometheusProvider::new(HttpClient::new());
        let spec = PrometheusMetric {
            address: Some("http://prom:9090/".into()),
            query: Some("up".into()),
            ..PrometheusMetric::default()
        };
        let planned = provider.plan(&spec, NOW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            planned.url,
            "http://prom:9090/api/v1/query?query=up&time=1700000000"
        );
        assert_eq!(planned.timeout, StdDuration::from_secs(30));
        let missing = PrometheusMetric {
            query: Some("up".into()),
            ..PrometheusMetric::default()
        };
        assert!(matches!(
            provider.plan(&missing, NOW),
            Err(ProviderError::Config { field, .. }) if field == "address"
        ));
        let defaulted = provider.clone().with_default_address("http://d:1");
        assert!(defaulted.plan(&missing, NOW).is_ok());
    }
}
