//! One Flagger metric check, planned and judged without IO.
//!
//! # The model
//!
//! The Flagger machine asks for metric checks by name
//! ([`Action::RunMetricChecks`](rollout_core::flagger::machine::Action)) and takes one
//! [`MetricResult`] per name back. One name can mean up to three queries, run in this
//! order, the first failure deciding (Flagger runs builtin metrics and inline queries
//! in one pass, then `templateRef` metrics in another):
//!
//! 1. the builtin query, when the name is `request-success-rate` or `request-duration`
//!    (against the canary's `metricsServer`, else the controller's, with the observer of
//!    [`metrics_provider`](super::queries::metrics_provider));
//! 2. the inline `query` (deprecated), sent as written to the same server;
//! 3. the `templateRef`'s `MetricTemplate` query rendered with the canary's model
//!    ([`render`](super::render)), against the template's own provider.
//!
//! A name with none of them cannot be checked and is an error. [`plan_metric_check`]
//! turns a name into a [`MetricCheckPlan`]: the [`QueryRequest`]s to make, in order
//! (or, where planning stops, the [`PlanError`] that stops it). The caller runs the
//! requests and hands each provider's [`Answer`] to [`MetricCheckPlan::evaluate`],
//! which applies Flagger's rules:
//!
//! * an answer is read as Flagger's Prometheus client reads it: the last sample of a
//!   vector; an empty result or NaN is "no values found" (a failed check); a range
//!   matrix has multiple values (an error);
//! * `thresholdRange` bounds are inclusive; `request-duration` compares whole
//!   milliseconds; without a range the legacy `threshold` (default 0) applies (see
//!   [`check_metric`]);
//! * a failure carries two texts: the `reason` the machine puts after `Halt <name>.<ns>
//!   advancement <metric>` (or after `Metric query failed for <metric>:` for errors), and
//!   the `event` Flagger itself records (`Halt podinfo.test advancement success rate
//!   98.50% < 99%`).
//!
//! [`run_metric_checks`] does all of it synchronously with a query function, stopping
//! at the first failing metric as Flagger does.

use std::fmt;

use rollout_core::duration::Duration;
use rollout_core::flagger::machine::{MetricOutcome, MetricResult};
use rollout_core::flagger::spec::{Canary, CanaryMetric};

use super::queries::{self, BuiltinMetric, BuiltinQueryError, Observer};
use super::render::{QueryModel, RenderError, render_query};
use super::{MetricKind, ThresholdRange, check_metric, duration_ms};
use crate::expr::Value;
use crate::provider::prometheus::{PrometheusError, PrometheusResult, QueryData};
use crate::template::{MetricTemplate, MetricTemplateProvider};

/// What a check needs beyond the canary: the controller's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckContext<'a> {
    /// The controller's `-mesh-provider` flag (Flagger's default is `istio`).
    pub mesh_provider: &'a str,
    /// The controller's `-metrics-server` flag, used when the canary sets no
    /// `metricsServer`.
    pub metrics_server: &'a str,
    /// The value of `{{ route }}` instead of `routeRef.name` / the target: Flagger uses
    /// the Knative Service's latest created revision, which only the cluster knows.
    pub route: Option<&'a str>,
}

impl<'a> CheckContext<'a> {
    /// A context with these flags and no route override.
    pub fn new(mesh_provider: &'a str, metrics_server: &'a str) -> CheckContext<'a> {
        CheckContext {
            mesh_provider,
            metrics_server,
            route: None,
        }
    }
}

/// Where a query comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuerySource {
    /// A builtin metric, rendered for an observer.
    Builtin {
        /// The observer.
        observer: Observer,
        /// The metric.
        metric: BuiltinMetric,
        /// The metrics-provider key the observer was chosen by (used in messages).
        provider_key: String,
    },
    /// The metric's inline `query`.
    Inline,
    /// A `MetricTemplate`.
    Template {
        /// The template's name.
        name: String,
        /// The namespace it was looked up in (its secret lives there too).
        namespace: String,
    },
}

/// One query to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// `analysis.metrics[].name`.
    pub metric: String,
    /// Where the query comes from.
    pub source: QuerySource,
    /// The provider to ask: for builtin and inline queries `type: prometheus` with the
    /// metrics server as `address`; for a template, its `spec.provider` as written
    /// (`secretRef` to be resolved in the template's namespace).
    pub provider: MetricTemplateProvider,
    /// The query. Prometheus queries have their whitespace collapsed (what Flagger
    /// sends); queries for other providers are as rendered.
    pub query: String,
}

/// A provider's answer to a [`QueryRequest`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Answer {
    /// One number (what Flagger's providers return).
    Number(f64),
    /// A value in Argo's shapes (a float, or a list of floats for a vector).
    Value(Value),
    /// A decoded Prometheus response; keeps vector and matrix apart.
    Prometheus(PrometheusResult),
    /// The provider found no values.
    NoValues,
}

impl From<f64> for Answer {
    fn from(v: f64) -> Answer {
        Answer::Number(v)
    }
}

impl From<Value> for Answer {
    fn from(v: Value) -> Answer {
        Answer::Value(v)
    }
}

impl From<PrometheusResult> for Answer {
    fn from(v: PrometheusResult) -> Answer {
        Answer::Prometheus(v)
    }
}

/// Why an answer has no single number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// Empty, nil or NaN (Flagger's `ErrNoValuesFound`): a failed check.
    #[error("no values found")]
    NoValues,
    /// A range matrix (or a list of lists): the query must return one value.
    #[error("multiple values: the query returned {series} range series")]
    MultipleValues {
        /// How many series.
        series: usize,
    },
    /// Something that is not a number (a string, a bool, a map).
    #[error("the query result is not a number but {found}")]
    NotANumber {
        /// What it was.
        found: &'static str,
    },
}

impl Answer {
    /// An answer from the Prometheus response parser, with its "no values" error read
    /// as [`Answer::NoValues`]; other errors are returned.
    pub fn from_prometheus(
        parsed: Result<PrometheusResult, PrometheusError>,
    ) -> Result<Answer, PrometheusError> {
        match parsed {
            Ok(r) => Ok(Answer::Prometheus(r)),
            Err(PrometheusError::NoValues) => Ok(Answer::NoValues),
            Err(e) => Err(e),
        }
    }

    /// The number Flagger reads from the answer: a vector's last sample, a scalar, a
    /// number; NaN, empty and nil are [`AnswerError::NoValues`].
    pub fn to_number(&self) -> Result<f64, AnswerError> {
        let v = match self {
            Answer::Number(v) => *v,
            Answer::NoValues => return Err(AnswerError::NoValues),
            Answer::Prometheus(r) => match &r.data {
                QueryData::Scalar(p) => p.value,
                QueryData::Vector(samples) => match samples.last() {
                    Some(s) => s.value.value,
                    None => return Err(AnswerError::NoValues),
                },
                QueryData::Matrix(series) => {
                    return Err(AnswerError::MultipleValues {
                        series: series.len(),
                    });
                }
                QueryData::String { .. } => {
                    return Err(AnswerError::NotANumber { found: "a string" });
                }
            },
            Answer::Value(value) => value_number(value)?,
        };
        if v.is_nan() {
            Err(AnswerError::NoValues)
        } else {
            Ok(v)
        }
    }
}

fn value_number(value: &Value) -> Result<f64, AnswerError> {
    match value {
        Value::Nil => Err(AnswerError::NoValues),
        Value::Float(f) => Ok(*f),
        // Precision loss above 2^53 is what Go's float64 conversion does too.
        #[allow(clippy::cast_precision_loss)]
        Value::Int(i) => Ok(*i as f64),
        Value::Array(items) => {
            if items.iter().any(|i| matches!(i, Value::Array(_))) {
                return Err(AnswerError::MultipleValues {
                    series: items.len(),
                });
            }
            match items.last() {
                None => Err(AnswerError::NoValues),
                Some(last) => value_number(last),
            }
        }
        Value::String(_) => Err(AnswerError::NotANumber { found: "a string" }),
        Value::Bool(_) => Err(AnswerError::NotANumber { found: "a bool" }),
        Value::Map(_) => Err(AnswerError::NotANumber { found: "a map" }),
    }
}

/// Why a check could not be planned. The `Display` text is the reason the machine
/// shows after `Metric query failed for <metric>:`; [`event`](Self::event) is
/// Flagger's own event text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The canary has no metric of that name.
    #[error("metric {metric:?} is not in spec.analysis.metrics")]
    UnknownMetric {
        /// The name asked for.
        metric: String,
    },
    /// Not a builtin metric, and neither `query` nor `templateRef` is set.
    #[error(
        "metric {metric:?} has no query: it is not a builtin metric and sets neither query nor templateRef"
    )]
    NoQuery {
        /// The metric.
        metric: String,
    },
    /// The `templateRef` names a template that is not among those given.
    #[error(
        "Metric template {template}.{namespace} error: metrictemplate.flagger.app {template:?} not found"
    )]
    TemplateNotFound {
        /// The template's name.
        template: String,
        /// The namespace it was looked up in.
        namespace: String,
    },
    /// The template's query did not render.
    #[error("Metric template {template}.{namespace} query render error: {source}")]
    Render {
        /// The template's name.
        template: String,
        /// Its namespace.
        namespace: String,
        /// Why.
        source: RenderError,
    },
    /// The builtin query could not be made.
    #[error("rendering query failed: {source}")]
    Builtin {
        /// Why.
        source: BuiltinQueryError,
    },
}

impl PlanError {
    /// The event Flagger records for this error.
    pub fn event(&self) -> String {
        match self {
            PlanError::Builtin { .. } => format!("Prometheus query failed: {self}"),
            _ => self.to_string(),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanStep {
    /// Make this query and judge its answer.
    Query(QueryRequest),
    /// Planning stopped here: the check errs if the steps before it pass.
    Error(PlanError),
}

/// The outcome of a check, with Flagger's event text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Every query passed.
    Pass,
    /// A value is out of range, or there was no value.
    Fail {
        /// The text after `Halt <name>.<ns> advancement <metric>` (the machine's event).
        reason: String,
        /// The event Flagger records.
        event: String,
    },
    /// A query, template or provider error.
    Error {
        /// The text after `Metric query failed for <metric>:` (the machine's event).
        reason: String,
        /// The event Flagger records.
        event: String,
    },
}

impl Verdict {
    /// Whether the check passed.
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// Flagger's event text, for a failure or an error.
    pub fn event(&self) -> Option<&str> {
        match self {
            Verdict::Pass => None,
            Verdict::Fail { event, .. } | Verdict::Error { event, .. } => Some(event),
        }
    }

    /// The machine's outcome.
    pub fn outcome(&self) -> MetricOutcome {
        match self {
            Verdict::Pass => MetricOutcome::Pass,
            Verdict::Fail { reason, .. } => MetricOutcome::Fail(reason.clone()),
            Verdict::Error { reason, .. } => MetricOutcome::Error(reason.clone()),
        }
    }
}

/// The queries of one metric check and what judging their answers needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricCheckPlan {
    metric: String,
    canary: String,
    namespace: String,
    target: String,
    threshold: f64,
    range: Option<ThresholdRange>,
    steps: Vec<PlanStep>,
}

/// Plans the check of `metric_name` of `canary` (see the module docs). `templates`
/// are the `MetricTemplate`s available; one matches a `templateRef` by name and by
/// namespace (the ref's, else the canary's; a template without a namespace counts as
/// being in the canary's namespace).
pub fn plan_metric_check(
    canary: &Canary,
    metric_name: &str,
    templates: &[MetricTemplate],
    ctx: &CheckContext<'_>,
) -> MetricCheckPlan {
    let namespace = canary
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let metric = canary
        .analysis()
        .and_then(|a| a.metrics.iter().find(|m| m.name == metric_name));
    let mut plan = MetricCheckPlan {
        metric: metric_name.to_string(),
        canary: canary.metadata.name.clone().unwrap_or_default(),
        target: canary.spec.target_ref.name.clone(),
        threshold: metric.and_then(|m| m.threshold).unwrap_or(0.0),
        range: metric
            .and_then(|m| m.threshold_range)
            .map(|r| ThresholdRange {
                min: r.min,
                max: r.max,
            }),
        namespace,
        steps: Vec::new(),
    };
    match metric {
        None => plan.steps.push(PlanStep::Error(PlanError::UnknownMetric {
            metric: metric_name.to_string(),
        })),
        Some(metric) => plan.steps = plan_steps(canary, metric, templates, ctx),
    }
    plan
}

fn prometheus_provider(address: &str) -> MetricTemplateProvider {
    MetricTemplateProvider {
        kind: "prometheus".to_string(),
        address: Some(address.to_string()),
        ..MetricTemplateProvider::default()
    }
}

fn plan_steps(
    canary: &Canary,
    metric: &CanaryMetric,
    templates: &[MetricTemplate],
    ctx: &CheckContext<'_>,
) -> Vec<PlanStep> {
    let mut steps = Vec::new();
    let mut model = QueryModel::from_canary(canary, metric);
    if let Some(route) = ctx.route {
        model.route = route.to_string();
    }
    let server = canary
        .spec
        .metrics_server
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(ctx.metrics_server);
    let builtin = BuiltinMetric::from_name(&metric.name);
    if let Some(bm) = builtin {
        let key = queries::metrics_provider(
            ctx.mesh_provider,
            canary.spec.provider.as_deref(),
            &canary.spec.target_ref.kind,
        );
        let observer = Observer::for_provider(&key);
        match observer.query(bm, &model) {
            Ok(query) => steps.push(PlanStep::Query(QueryRequest {
                metric: metric.name.clone(),
                source: QuerySource::Builtin {
                    observer,
                    metric: bm,
                    provider_key: key,
                },
                provider: prometheus_provider(server),
                query,
            })),
            Err(source) => {
                steps.push(PlanStep::Error(PlanError::Builtin { source }));
                return steps;
            }
        }
    }
    let inline = metric.query.as_deref().filter(|q| !q.is_empty());
    if let Some(q) = inline {
        steps.push(PlanStep::Query(QueryRequest {
            metric: metric.name.clone(),
            source: QuerySource::Inline,
            provider: prometheus_provider(server),
            query: queries::collapse_whitespace(q),
        }));
    }
    if let Some(tref) = &metric.template_ref {
        let ns = tref
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&model.namespace)
            .to_string();
        let found = templates.iter().find(|t| {
            t.metadata.name.as_deref() == Some(tref.name.as_str())
                && t.metadata.namespace.as_deref().unwrap_or(&model.namespace) == ns
        });
        let Some(template) = found else {
            steps.push(PlanStep::Error(PlanError::TemplateNotFound {
                template: tref.name.clone(),
                namespace: ns,
            }));
            return steps;
        };
        match render_query(&template.spec.query, &model) {
            Ok(rendered) => {
                let provider = template.spec.provider.clone();
                let query = if provider.kind == "prometheus" {
                    queries::collapse_whitespace(&rendered)
                } else {
                    rendered
                };
                steps.push(PlanStep::Query(QueryRequest {
                    metric: metric.name.clone(),
                    source: QuerySource::Template {
                        name: tref.name.clone(),
                        namespace: ns,
                    },
                    provider,
                    query,
                }));
            }
            Err(source) => {
                steps.push(PlanStep::Error(PlanError::Render {
                    template: tref.name.clone(),
                    namespace: ns,
                    source,
                }));
                return steps;
            }
        }
    }
    if steps.is_empty() {
        steps.push(PlanStep::Error(PlanError::NoQuery {
            metric: metric.name.clone(),
        }));
    }
    steps
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`): shortest digits,
/// exponent form when the exponent is below -4 or at least 6.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Go's `%.2f`.
fn go_fixed2(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v.is_nan() {
        return "NaN".into();
    }
    format!("{v:.2}")
}

/// Whole milliseconds as Go's `Duration.String()`, from a float truncated toward zero.
#[allow(clippy::cast_possible_truncation)]
fn go_duration_ms(ms: f64) -> String {
    Duration::from_millis(ms.trunc() as i64).to_string()
}

impl MetricCheckPlan {
    /// `analysis.metrics[].name`.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[PlanStep] {
        &self.steps
    }

    /// The queries to make, in order.
    pub fn requests(&self) -> impl Iterator<Item = &QueryRequest> {
        self.steps.iter().filter_map(|s| match s {
            PlanStep::Query(q) => Some(q),
            PlanStep::Error(_) => None,
        })
    }

    /// Judges one answer to `request` (one of this plan's requests). `Err` is the
    /// provider's error text.
    pub fn judge(&self, request: &QueryRequest, answer: Result<Answer, String>) -> Verdict {
        let (name, ns, m) = (&self.canary, &self.namespace, &self.metric);
        let number = answer.map_err(Some).and_then(|a| {
            a.to_number().map_err(|e| match e {
                AnswerError::NoValues => None,
                other => Some(other.to_string()),
            })
        });
        match &request.source {
            QuerySource::Builtin {
                observer,
                metric,
                provider_key,
            } => {
                let target = &self.target;
                let wrap = |e: &str| {
                    if observer.wraps_query_errors(*metric) {
                        format!("running query failed: {e}")
                    } else {
                        e.to_string()
                    }
                };
                let v = match number {
                    Ok(v) => v,
                    Err(None) => {
                        let suffix = match metric {
                            BuiltinMetric::RequestDuration => String::new(),
                            _ => format!(": {}", wrap("no values found")),
                        };
                        return Verdict::Fail {
                            reason: format!(
                                "no values found for {provider_key} metric {m}, probably {target}.{ns} is not receiving traffic"
                            ),
                            event: format!(
                                "Halt advancement no values found for {provider_key} metric {m} probably {target}.{ns} is not receiving traffic{suffix}"
                            ),
                        };
                    }
                    Err(Some(e)) => {
                        let reason = wrap(&e);
                        return Verdict::Error {
                            event: format!("Prometheus query failed: {reason}"),
                            reason,
                        };
                    }
                };
                match metric {
                    BuiltinMetric::RequestDuration => self.judge_duration(observer.duration_ms(v)),
                    _ => self.judge_number(v, MetricKind::RequestSuccessRate),
                }
            }
            QuerySource::Inline | QuerySource::Template { .. } => {
                let inline = request.source == QuerySource::Inline;
                match number {
                    Ok(v) => self.judge_number(v, MetricKind::Query),
                    Err(None) => Verdict::Fail {
                        reason: "no values found".to_string(),
                        event: if inline {
                            format!("Halt advancement no values found for metric: {m}")
                        } else {
                            format!(
                                "Halt advancement no values found for custom metric: {m}: no values found"
                            )
                        },
                    },
                    Err(Some(e)) => Verdict::Error {
                        event: if inline {
                            format!("Prometheus query failed for {m}: {e}")
                        } else {
                            format!("Metric query failed for {m}: {e}")
                        },
                        reason: e,
                    },
                }
            }
        }
        .with_names(name, ns, m)
    }

    /// Success rates and custom values: inclusive range, else the legacy threshold.
    fn judge_number(&self, v: f64, kind: MetricKind) -> Verdict {
        if check_metric(kind, v, self.range, self.threshold) {
            return Verdict::Pass;
        }
        let (op, bound) = match self.range {
            Some(r) => match r.min {
                Some(min) if v < min => ("<", min),
                _ => (">", r.max.unwrap_or(f64::NAN)),
            },
            None if kind == MetricKind::RequestSuccessRate => ("<", self.threshold),
            None => (">", self.threshold),
        };
        let reason = if kind == MetricKind::RequestSuccessRate {
            format!("{}% {op} {}%", go_fixed2(v), go_float(bound))
        } else {
            format!("{} {op} {}", go_fixed2(v), go_float(bound))
        };
        Verdict::Fail {
            reason,
            event: String::new(),
        }
    }

    fn judge_duration(&self, ms: f64) -> Verdict {
        if check_metric(MetricKind::RequestDuration, ms, self.range, self.threshold) {
            return Verdict::Pass;
        }
        let v = duration_ms(ms).unwrap_or(0.0);
        let below = |b: Option<f64>| b.and_then(duration_ms).is_some_and(|b| v < b);
        let (op, bound) = match self.range {
            Some(r) if below(r.min) => ("<", r.min.unwrap_or(0.0)),
            Some(r) => (">", r.max.unwrap_or(0.0)),
            None => (">", self.threshold),
        };
        Verdict::Fail {
            reason: format!("{} {op} {}", go_duration_ms(v), go_duration_ms(bound)),
            event: String::new(),
        }
    }

    /// Judges the answers to this plan's requests, in order: the first failure
    /// decides, a missing answer is an error, a planning error ends the check.
    pub fn evaluate<I>(&self, answers: I) -> Verdict
    where
        I: IntoIterator<Item = Result<Answer, String>>,
    {
        let mut answers = answers.into_iter();
        for step in &self.steps {
            match step {
                PlanStep::Query(request) => {
                    let verdict = match answers.next() {
                        Some(answer) => self.judge(request, answer),
                        None => {
                            let reason = format!("no answer for the query {:?}", request.query);
                            Verdict::Error {
                                event: format!("Metric query failed for {}: {reason}", self.metric),
                                reason,
                            }
                        }
                    };
                    if !verdict.is_pass() {
                        return verdict;
                    }
                }
                PlanStep::Error(e) => {
                    return Verdict::Error {
                        reason: e.to_string(),
                        event: e.event(),
                    };
                }
            }
        }
        Verdict::Pass
    }

    /// The machine's result for a verdict of this plan.
    pub fn result(&self, verdict: &Verdict) -> MetricResult {
        MetricResult {
            name: self.metric.clone(),
            outcome: verdict.outcome(),
        }
    }
}

impl Verdict {
    /// Fills in the event of a range failure: `Halt <name>.<ns> advancement ...`.
    fn with_names(self, name: &str, ns: &str, metric: &str) -> Verdict {
        match self {
            Verdict::Fail { reason, event } if event.is_empty() => {
                let event = if metric == "request-success-rate" {
                    format!("Halt {name}.{ns} advancement success rate {reason}")
                } else if metric == "request-duration" {
                    format!("Halt {name}.{ns} advancement request duration {reason}")
                } else {
                    format!("Halt {name}.{ns} advancement {metric} {reason}")
                };
                Verdict::Fail { reason, event }
            }
            other => other,
        }
    }
}

/// Runs the checks the machine asked for (`Action::RunMetricChecks { metrics }`), in
/// order, with `query` answering each request; stops after the first metric that does
/// not pass (the machine reads a missing result as failed, and stops at the first
/// failure anyway). A `query` error becomes an error verdict with its text.
pub fn run_metric_checks<A, E, F>(
    canary: &Canary,
    metrics: &[String],
    templates: &[MetricTemplate],
    ctx: &CheckContext<'_>,
    query: &mut F,
) -> Vec<MetricResult>
where
    A: Into<Answer>,
    E: fmt::Display,
    F: FnMut(&QueryRequest) -> Result<A, E>,
{
    let mut results = Vec::with_capacity(metrics.len());
    for name in metrics {
        let plan = plan_metric_check(canary, name, templates, ctx);
        let verdict = run_plan(&plan, query);
        let pass = verdict.is_pass();
        results.push(plan.result(&verdict));
        if !pass {
            break;
        }
    }
    results
}

/// Runs one plan with `query`, lazily: a request after a failing one is not made.
pub fn run_plan<A, E, F>(plan: &MetricCheckPlan, query: &mut F) -> Verdict
where
    A: Into<Answer>,
    E: fmt::Display,
    F: FnMut(&QueryRequest) -> Result<A, E>,
{
    for step in plan.steps() {
        match step {
            PlanStep::Query(request) => {
                let answer = query(request).map(Into::into).map_err(|e| e.to_string());
                let verdict = plan.judge(request, answer);
                if !verdict.is_pass() {
                    return verdict;
                }
            }
            PlanStep::Error(e) => {
                return Verdict::Error {
                    reason: e.to_string(),
                    event: e.event(),
                };
            }
        }
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_matches_fmt_v() {
        assert_eq!(go_float(99.0), "99");
        assert_eq!(go_float(99.5), "99.5");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456789.0), "1.23456789e+08");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
        assert_eq!(go_fixed2(98.456), "98.46");
        assert_eq!(go_duration_ms(1500.9), "1.5s");
        assert_eq!(go_duration_ms(500.0), "500ms");
    }
}
