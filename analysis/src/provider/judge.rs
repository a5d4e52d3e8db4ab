//! The statistical judge as a metric provider: canary against baseline, Kayenta-style.
//!
//! # Model
//!
//! A judge metric compares, for each of its series, a **control** sample (the baseline,
//! for example the pods of an Argo `experiment` step running the stable version, or the
//! stable pods themselves) with an **experiment** sample (the canary), classifies each
//! series with [`judge_metric`] (Mann-Whitney interval, effect size, direction,
//! criticality, NaN strategy, outlier removal) and scores the classifications with
//! Kayenta's weighted group scorer. The measurement is the score:
//!
//! * without `successCondition` / `failureCondition`, the provider decides: score ≥
//!   `thresholds.pass` is `Successful`, ≥ `thresholds.marginal` is `Inconclusive` (the
//!   rollout pauses for a human, as Argo does for inconclusive runs), below is `Failed`;
//! * with conditions, the result is a map the conditions can read:
//!   `result.score`, `result.classification` (`Pass` / `Marginal` / `Fail`) and
//!   `result.metrics.<name>` (the label: `Pass`, `High`, `Low`, `Nodata`, ...).
//!
//! The configuration sits in Argo's metric plugin field, so templates stay valid Argo
//! documents:
//!
//! ```yaml
//! provider:
//!   plugin:
//!     rollout-rs/judge:
//!       thresholds: {pass: 90, marginal: 75}
//!       groupWeights: {errors: 60, latency: 40}   # optional; the rest share equally
//!       metrics:
//!       - name: error-rate
//!         groups: [errors]
//!         direction: increase                    # increase | decrease | either
//!         critical: true                         # a critical High fails the canary
//!         nanStrategy: remove                    # remove | replace
//!         outliers: {strategy: remove, outlierFactor: 3}
//!         effectSize: {measure: meanRatio, allowedIncrease: 1.1, criticalIncrease: 2}
//!         control:    {prometheus: {query: 'rate(errors{version="stable"}[1m])'}}
//!         experiment: {prometheus: {query: 'rate(errors{version="canary"}[1m])'}}
//!       - name: latency-p99
//!         groups: [latency]
//!         direction: increase
//!         control:    {values: [101, 99, 103]}   # inline samples (tests, simulations)
//!         experiment: {values: [102, 98, 104]}
//! ```
//!
//! A series is either inline `values` or a source-specific object that a
//! [`SeriesSource`] fetches (a Prometheus range query, a recorded file, a simulator's
//! stream). [`judge`] is the pure core; [`JudgeProvider`] the async [`Provider`];
//! [`judge_with`] the synchronous form for simulations.
//!
//! Unlike Kayenta, an unknown `direction`, `nanStrategy`, `outliers.strategy` or
//! `effectSize.measure` is a configuration error naming the field rather than a silent
//! default.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::MeasurementPhase;
use crate::expr::Value;
use crate::judge::{
    Classification, DEFAULT_OUTLIER_FACTOR, Direction, EffectSizeMeasure, MetricConfig,
    MetricResult, NanStrategy, Score, ScoreClassification, classify_score, judge_metric, score,
};
use crate::provider::{MeasureContext, Measured, Provider, ProviderError};
use crate::template::Metric;

/// The plugin name under `provider.plugin`.
pub const PLUGIN: &str = "rollout-rs/judge";

const NAME: &str = "judge";

/// `provider.plugin["rollout-rs/judge"]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgeSpec {
    /// Score thresholds.
    pub thresholds: Thresholds,
    /// Configured group weights (percent); groups without one share the rest.
    #[serde(default)]
    pub group_weights: BTreeMap<String, f64>,
    /// The series to compare.
    pub metrics: Vec<JudgeMetric>,
}

/// `thresholds`: the summary score's pass and marginal levels (0-100).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Thresholds {
    /// A score at or above passes.
    pub pass: f64,
    /// A score at or above (and below `pass`) is marginal.
    pub marginal: f64,
}

/// One compared series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgeMetric {
    /// Name (unique within the judge).
    pub name: String,
    /// Groups it scores in (default: one group named after the metric).
    #[serde(default)]
    pub groups: Vec<String>,
    /// `increase`, `decrease` or `either` (default).
    #[serde(default)]
    pub direction: Option<String>,
    /// `remove` (default) or `replace`.
    #[serde(default)]
    pub nan_strategy: Option<String>,
    /// Outlier handling (default: keep).
    #[serde(default)]
    pub outliers: Option<OutlierSpec>,
    /// A failure of this metric fails the canary.
    #[serde(default)]
    pub critical: bool,
    /// Missing data fails the metric.
    #[serde(default)]
    pub must_have_data: bool,
    /// Ignored by the scorer.
    #[serde(default)]
    pub muted: bool,
    /// Effect size thresholds.
    #[serde(default)]
    pub effect_size: Option<EffectSizeSpec>,
    /// Confidence of the interval (default 0.98).
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Tolerance (default 0.25).
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// The baseline series.
    pub control: Series,
    /// The canary series.
    pub experiment: Series,
}

/// `outliers`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierSpec {
    /// `keep` (default) or `remove`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// IQR factor (default 3).
    #[serde(default)]
    pub outlier_factor: Option<f64>,
}

/// `effectSize`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EffectSizeSpec {
    /// `meanRatio` (default) or `cles`.
    #[serde(default)]
    pub measure: Option<String>,
    /// A High needs effect ≥ this.
    #[serde(default)]
    pub allowed_increase: Option<f64>,
    /// A Low needs effect ≤ this.
    #[serde(default)]
    pub allowed_decrease: Option<f64>,
    /// A critical High needs effect ≥ this.
    #[serde(default)]
    pub critical_increase: Option<f64>,
    /// A critical Low needs effect ≤ this.
    #[serde(default)]
    pub critical_decrease: Option<f64>,
}

/// A sample: inline values, or an object a [`SeriesSource`] understands.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Series {
    /// `{values: [...]}`.
    Values {
        /// The observations.
        values: Vec<f64>,
    },
    /// Anything else, handed to the [`SeriesSource`].
    Source(serde_json::Value),
}

/// Which side of the comparison a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The baseline.
    Control,
    /// The canary.
    Experiment,
}

fn config_error(field: impl Into<String>, reason: impl Into<String>) -> ProviderError {
    ProviderError::Config {
        provider: NAME,
        field: field.into(),
        reason: reason.into(),
    }
}

/// Reads the judge configuration of `metric` (`provider.plugin["rollout-rs/judge"]`).
/// Errors name the field.
pub fn parse_spec(metric: &Metric) -> Result<JudgeSpec, ProviderError> {
    let raw = metric
        .provider
        .plugin
        .as_ref()
        .and_then(|p| p.get(PLUGIN))
        .ok_or_else(|| config_error(format!("plugin.{PLUGIN}"), "missing"))?;
    let spec: JudgeSpec = serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
        config_error(
            format!("plugin.{PLUGIN}.{}", e.path()),
            e.inner().to_string(),
        )
    })?;
    if spec.metrics.is_empty() {
        return Err(config_error(
            format!("plugin.{PLUGIN}.metrics"),
            "at least one metric is needed",
        ));
    }
    for (i, m) in spec.metrics.iter().enumerate() {
        if spec.metrics[..i].iter().any(|o| o.name == m.name) {
            return Err(config_error(
                format!("plugin.{PLUGIN}.metrics[{i}].name"),
                format!("duplicate metric name {:?}", m.name),
            ));
        }
        metric_config(&spec, i)?;
    }
    let t = spec.thresholds;
    if t.marginal.is_nan() || t.pass.is_nan() || t.marginal > t.pass {
        return Err(config_error(
            format!("plugin.{PLUGIN}.thresholds"),
            "marginal must be a number not above pass",
        ));
    }
    Ok(spec)
}

/// The classifier configuration and outlier factor of `spec.metrics[i]`.
fn metric_config(spec: &JudgeSpec, i: usize) -> Result<(MetricConfig, Option<f64>), ProviderError> {
    let m = &spec.metrics[i];
    let field = |f: &str| format!("plugin.{PLUGIN}.metrics[{i}].{f}");
    let measure = match m.effect_size.as_ref().and_then(|e| e.measure.as_deref()) {
        None | Some("meanRatio") => EffectSizeMeasure::MeanRatio,
        Some("cles") => EffectSizeMeasure::Cles,
        Some(other) => {
            return Err(config_error(
                field("effectSize.measure"),
                format!("unknown measure {other:?} (meanRatio or cles)"),
            ));
        }
    };
    let mut c = MetricConfig::default().with_measure(measure);
    c.direction = match m.direction.as_deref() {
        None | Some("either") => Direction::Either,
        Some("increase") => Direction::Increase,
        Some("decrease") => Direction::Decrease,
        Some(other) => {
            return Err(config_error(
                field("direction"),
                format!("unknown direction {other:?} (increase, decrease or either)"),
            ));
        }
    };
    c.nan_strategy = match m.nan_strategy.as_deref() {
        None | Some("remove") => NanStrategy::Remove,
        Some("replace") => NanStrategy::Replace,
        Some(other) => {
            return Err(config_error(
                field("nanStrategy"),
                format!("unknown strategy {other:?} (remove or replace)"),
            ));
        }
    };
    c.critical = m.critical;
    c.must_have_data = m.must_have_data;
    if let Some(e) = &m.effect_size {
        c.allowed_increase = e.allowed_increase.unwrap_or(c.allowed_increase);
        c.allowed_decrease = e.allowed_decrease.unwrap_or(c.allowed_decrease);
        c.critical_increase = e.critical_increase.unwrap_or(c.critical_increase);
        c.critical_decrease = e.critical_decrease.unwrap_or(c.critical_decrease);
    }
    if let Some(conf) = m.confidence {
        if !(conf > 0.0 && conf < 1.0) {
            return Err(config_error(field("confidence"), "must be in (0, 1)"));
        }
        c.confidence = conf;
    }
    if let Some(t) = m.tolerance {
        if t.is_nan() || t < 0.0 {
            return Err(config_error(field("tolerance"), "must be a number >= 0"));
        }
        c.tolerance = t;
    }
    let outliers = match &m.outliers {
        None => None,
        Some(o) => match o.strategy.as_deref() {
            None | Some("keep") => None,
            Some("remove") => {
                let f = o.outlier_factor.unwrap_or(DEFAULT_OUTLIER_FACTOR);
                if f.is_nan() || f < 0.0 {
                    return Err(config_error(
                        field("outliers.outlierFactor"),
                        "must be a number >= 0",
                    ));
                }
                Some(f)
            }
            Some(other) => {
                return Err(config_error(
                    field("outliers.strategy"),
                    format!("unknown strategy {other:?} (keep or remove)"),
                ));
            }
        },
    };
    Ok((c, outliers))
}

/// What the judge decided.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeReport {
    /// Each metric's classification, in spec order.
    pub metrics: Vec<(String, Classification)>,
    /// The summary score and group scores.
    pub score: Score,
    /// The score against the thresholds.
    pub classification: ScoreClassification,
}

impl JudgeReport {
    /// The measurement phase the score decides.
    pub fn phase(&self) -> MeasurementPhase {
        match self.classification {
            ScoreClassification::Pass => MeasurementPhase::Successful,
            ScoreClassification::Marginal => MeasurementPhase::Inconclusive,
            _ => MeasurementPhase::Failed,
        }
    }

    /// The report as the `result` the conditions see: `score`, `classification`,
    /// `metrics.<name>`.
    pub fn to_value(&self) -> Value {
        let mut map = BTreeMap::new();
        map.insert("score".to_string(), Value::Float(self.score.summary_score));
        map.insert(
            "classification".to_string(),
            Value::String(
                match self.classification {
                    ScoreClassification::Pass => "Pass",
                    ScoreClassification::Marginal => "Marginal",
                    _ => "Fail",
                }
                .to_string(),
            ),
        );
        let metrics = self
            .metrics
            .iter()
            .map(|(n, c)| (n.clone(), Value::String(c.label.as_str().to_string())))
            .collect();
        map.insert("metrics".to_string(), Value::Map(metrics));
        Value::Map(map)
    }
}

/// The pure judge: `samples[i]` is `(control, experiment)` of `spec.metrics[i]`.
pub fn judge(
    spec: &JudgeSpec,
    samples: &[(Vec<f64>, Vec<f64>)],
) -> Result<JudgeReport, ProviderError> {
    if samples.len() != spec.metrics.len() {
        return Err(config_error(
            format!("plugin.{PLUGIN}.metrics"),
            format!(
                "{} metrics but {} samples were given",
                spec.metrics.len(),
                samples.len()
            ),
        ));
    }
    let mut metrics = Vec::with_capacity(samples.len());
    let mut results = Vec::with_capacity(samples.len());
    for (i, (m, (control, experiment))) in spec.metrics.iter().zip(samples).enumerate() {
        let (config, outliers) = metric_config(spec, i)?;
        let c = judge_metric(control, experiment, &config, outliers);
        results.push(MetricResult {
            name: m.name.clone(),
            label: c.label,
            groups: if m.groups.is_empty() {
                vec![m.name.clone()]
            } else {
                m.groups.clone()
            },
            critical: c.critical,
            muted: m.muted,
        });
        metrics.push((m.name.clone(), c));
    }
    let score = score(&spec.group_weights, &results);
    let classification = classify_score(
        score.summary_score,
        spec.thresholds.pass,
        spec.thresholds.marginal,
    );
    Ok(JudgeReport {
        metrics,
        score,
        classification,
    })
}

/// The measurement for `metric` from its report: a verdict, or the report as a value
/// when the metric has its own conditions.
pub fn to_measured(metric: &Metric, report: &JudgeReport) -> Measured {
    if metric.success_condition.is_some() || metric.failure_condition.is_some() {
        Measured::Value(report.to_value())
    } else {
        Measured::Verdict {
            phase: report.phase(),
            value: Value::Float(report.score.summary_score),
        }
    }
}

/// The synchronous judge: fetches every non-inline series with `fetch` (for
/// simulations and tests), judges and returns the measurement.
pub fn judge_with(
    metric: &Metric,
    mut fetch: impl FnMut(&str, Role, &serde_json::Value) -> Result<Vec<f64>, ProviderError>,
) -> Result<Measured, ProviderError> {
    let spec = parse_spec(metric)?;
    let mut samples = Vec::with_capacity(spec.metrics.len());
    for m in &spec.metrics {
        let mut get = |role: Role, s: &Series| match s {
            Series::Values { values } => Ok(values.clone()),
            Series::Source(v) => fetch(&m.name, role, v),
        };
        let control = get(Role::Control, &m.control)?;
        let experiment = get(Role::Experiment, &m.experiment)?;
        samples.push((control, experiment));
    }
    Ok(to_measured(metric, &judge(&spec, &samples)?))
}

/// Fetches the series a judge metric names (a Prometheus range query, a recording...).
#[async_trait::async_trait]
pub trait SeriesSource: Send + Sync {
    /// The observations of `series` (the object under `control` / `experiment`) of the
    /// judge metric `name`.
    async fn fetch(
        &self,
        ctx: &MeasureContext<'_>,
        name: &str,
        role: Role,
        series: &serde_json::Value,
    ) -> Result<Vec<f64>, ProviderError>;
}

/// The judge as a [`Provider`], register it under `plugin:rollout-rs/judge`.
#[derive(Clone, Default)]
pub struct JudgeProvider {
    source: Option<Arc<dyn SeriesSource>>,
}

impl std::fmt::Debug for JudgeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgeProvider")
            .field("source", &self.source.is_some())
            .finish()
    }
}

impl JudgeProvider {
    /// A judge for inline `values` only.
    pub fn new() -> Self {
        JudgeProvider::default()
    }

    /// A judge that fetches non-inline series from `source`.
    pub fn with_source(source: Arc<dyn SeriesSource>) -> Self {
        JudgeProvider {
            source: Some(source),
        }
    }
}

#[async_trait::async_trait]
impl Provider for JudgeProvider {
    async fn measure(
        &self,
        ctx: &MeasureContext<'_>,
        metric: &Metric,
    ) -> Result<Measured, ProviderError> {
        let spec = parse_spec(metric)?;
        let mut samples = Vec::with_capacity(spec.metrics.len());
        for (i, m) in spec.metrics.iter().enumerate() {
            let mut pair = Vec::with_capacity(2);
            for (role, s, key) in [
                (Role::Control, &m.control, "control"),
                (Role::Experiment, &m.experiment, "experiment"),
            ] {
                let values = match s {
                    Series::Values { values } => values.clone(),
                    Series::Source(v) => match &self.source {
                        Some(src) => src.fetch(ctx, &m.name, role, v).await?,
                        None => {
                            return Err(config_error(
                                format!("plugin.{PLUGIN}.metrics[{i}].{key}"),
                                "no series source is configured: use inline values",
                            ));
                        }
                    },
                };
                pair.push(values);
            }
            let experiment = pair.pop().unwrap_or_default();
            let control = pair.pop().unwrap_or_default();
            samples.push((control, experiment));
        }
        Ok(to_measured(metric, &judge(&spec, &samples)?))
    }
}
