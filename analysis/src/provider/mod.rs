//! Metric-provider result parsing, pure and IO-free.
//!
//! * [`prometheus`]: the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`) JSON
//!   response, and the value Argo's Prometheus provider hands to the conditions.
//! * [`exposition`]: a strict parser and renderer for the Prometheus text exposition format
//!   (what `/metrics` returns).
//! * [`jsonpath`]: the Kubernetes-style JSONPath of the web provider's `jsonPath` field.
//! * `http` (feature `http`): the Prometheus, web and scrape providers over HTTP.
//! * `job` (feature `kube`): the Kubernetes Job provider, one Job per measurement.

pub mod exposition;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "kube")]
pub mod job;
pub mod jsonpath;
pub mod judge;
pub mod prometheus;

/// Parses a sample value the way Go's `strconv.ParseFloat(s, 64)` does for the spellings
/// Prometheus emits: decimal and exponent numbers, `NaN`, `+Inf`, `-Inf` (and Go's other
/// case-insensitive `inf` / `infinity` spellings). Returns `None` for anything else.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(sign * f64::INFINITY);
    }
    if rest.eq_ignore_ascii_case("nan") {
        // Go accepts no sign on NaN.
        return (rest.len() == s.len()).then_some(f64::NAN);
    }
    let digits_ok = !rest.is_empty()
        && rest
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !digits_ok {
        return None;
    }
    s.parse::<f64>().ok()
}

/// What a provider is measuring for: enough to name what it creates (a Job) and to
/// report where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureContext<'a> {
    /// Namespace of the AnalysisRun.
    pub namespace: &'a str,
    /// Name of the AnalysisRun.
    pub run_name: &'a str,
    /// The run's UID when it has one (Argo names Jobs `<uid>.<metric>.<index>`).
    pub run_uid: Option<&'a str>,
    /// Index of this measurement among the metric's measurements (0 for the first).
    pub measurement_index: u64,
}

/// A provider's answer: a result the metric's conditions judge, or a verdict the
/// provider decided itself (a Job's success or failure, a judge's score).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Measured {
    /// A value bound to `result` in `successCondition` / `failureCondition`.
    Value(crate::expr::Value),
    /// A decided phase, with the value to store in `measurement.value`.
    Verdict {
        /// The phase.
        phase: crate::MeasurementPhase,
        /// What to record as the measurement's value.
        value: crate::expr::Value,
    },
    /// Not decided yet (a Job still running): keep the measurement in flight and ask
    /// again after this long, instead of holding the caller until there is an answer.
    InProgress {
        /// When to ask again, from the answer's time.
        retry_after: std::time::Duration,
    },
}

/// Why a provider could not measure. Every variant becomes an `Error` measurement (which
/// counts toward `consecutiveErrorLimit`); messages never contain secret argument values
/// (the runner redacts them) and name the field or address at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The metric uses a provider nothing is registered for.
    #[error("metric {metric:?}: no {provider} provider is configured")]
    NotConfigured {
        /// The metric.
        metric: String,
        /// Provider name, Argo spelling (`prometheus`, `web`, ...).
        provider: String,
    },
    /// The metric's provider section is invalid.
    #[error("{provider} provider: invalid {field}: {reason}")]
    Config {
        /// Provider name.
        provider: &'static str,
        /// The field, as a path inside the provider section (`query`, `timeout`, ...).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The endpoint could not be reached (connection refused, DNS, reset).
    #[error("{provider} provider: {address} unreachable: {reason}")]
    Unreachable {
        /// Provider name.
        provider: &'static str,
        /// The address asked.
        address: String,
        /// The transport's message.
        reason: String,
    },
    /// The endpoint did not answer in time.
    #[error("{provider} provider: {address} did not answer within {timeout_ms} ms")]
    Timeout {
        /// Provider name.
        provider: &'static str,
        /// The address asked.
        address: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The endpoint answered with a non-success HTTP status.
    #[error("{provider} provider: {address} answered HTTP {status}: {body}")]
    Status {
        /// Provider name.
        provider: &'static str,
        /// The address asked.
        address: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the body (at most 512 bytes).
        body: String,
    },
    /// The backend reported an error for the query (Prometheus' error envelope).
    #[error("{provider} provider: query failed ({error_type}): {message}")]
    Query {
        /// Provider name.
        provider: &'static str,
        /// The backend's error type (`bad_data`, `execution`, ...).
        error_type: String,
        /// The backend's message.
        message: String,
    },
    /// The answer could not be decoded.
    #[error("{provider} provider: could not decode the response: {reason}")]
    Decode {
        /// Provider name.
        provider: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The backend (a Kubernetes API server, a Job) failed in a way not covered above.
    #[error("{provider} provider: {message}")]
    Backend {
        /// Provider name.
        provider: &'static str,
        /// What happened.
        message: String,
    },
}

/// A metric provider: asked once per [`RunAction::Measure`](crate::machine::RunAction),
/// with the metric's `{{args}}` already substituted.
///
/// Implementations own their timeouts: `measure` must return (an error if need be) in
/// bounded time, never hang or panic. They are adapters (HTTP, Kubernetes); the runner
/// and the machines stay pure.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Measures `metric` once.
    async fn measure(
        &self,
        ctx: &MeasureContext<'_>,
        metric: &crate::template::Metric,
    ) -> Result<Measured, ProviderError>;

    /// Stops an in-flight measurement (the Job provider deletes its Job). The default
    /// does nothing, which is right for request/response providers.
    async fn terminate(
        &self,
        ctx: &MeasureContext<'_>,
        metric: &crate::template::Metric,
    ) -> Result<(), ProviderError> {
        let _ = (ctx, metric);
        Ok(())
    }
}
