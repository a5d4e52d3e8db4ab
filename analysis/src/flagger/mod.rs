//! Flagger's metric checks (reference A.4, A.8, B.11), as pure functions.
//!
//! # The model
//!
//! Every analysis tick, Flagger checks each `analysis.metrics[]` entry of a canary. A
//! check is one or more queries, each answering **one number**, judged against the
//! metric's bounds:
//!
//! * the builtin `request-success-rate` and `request-duration` run a query Flagger
//!   builds in for the canary's mesh or ingress ([`queries`]: the observer, the exact
//!   PromQL);
//! * an inline `query` runs as written against the metrics server;
//! * a `templateRef` runs the `MetricTemplate`'s query, a Go text/template rendered with
//!   the canary's names ([`render`]).
//!
//! [`check`] plans the queries of one check and judges their answers into the
//! [`MetricResult`](rollout_core::flagger::machine::MetricResult) the Flagger machine
//! takes back; the functions below are the value rules it applies.
//!
//! For each metric value `v`:
//!
//! * with a `thresholdRange`: the check fails when `min` is set and `v < min`, or `max`
//!   is set and `v > max` — both bounds inclusive, either may be absent
//!   ([`check_threshold_range`]);
//! * the builtin `request-duration` compares durations: `v` truncated to whole
//!   milliseconds against `min`/`max` read as milliseconds, truncated the same way
//!   ([`check_request_duration_range`], [`duration_ms`]);
//! * without a range, the legacy `threshold` applies ([`check_legacy_threshold`]):
//!   `request-success-rate` fails when `threshold > v`, `request-duration` when `v >
//!   threshold` ms, an inline query or a template when `v > threshold` (so with neither a
//!   range nor a threshold, any `v > 0` fails).
//!
//! A NaN value fails every check (Flagger's Go comparisons would let it through; a
//! metric that yields NaN has no data, and [`check`] reads it as "no values found").
//! Provider errors and "no values" are failures too, decided before a value exists.
//!
//! # The API
//!
//! * [`queries::Observer`], [`queries::metrics_provider`]: builtin queries per observer.
//! * [`render::render_query`], [`render::QueryModel`]: `MetricTemplate` query rendering.
//! * [`check::plan_metric_check`] → [`check::MetricCheckPlan`] (requests, then
//!   [`evaluate`](check::MetricCheckPlan::evaluate)); [`check::run_metric_checks`] does
//!   it all with a synchronous query function.
//! * [`check_metric`] and friends: the threshold rules alone.

pub mod check;
pub mod queries;
pub mod render;

pub use check::{
    Answer, CheckContext, MetricCheckPlan, PlanError, QueryRequest, QuerySource, Verdict,
    plan_metric_check, run_metric_checks,
};
pub use queries::{BuiltinMetric, Observer, metrics_provider};
pub use render::{QueryModel, RenderError, render_query};

/// Which kind of metric a value comes from; it decides how thresholds compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricKind {
    /// The builtin `request-success-rate` (a percentage).
    RequestSuccessRate,
    /// The builtin `request-duration` (milliseconds).
    RequestDuration,
    /// An inline `query` or a `templateRef` metric.
    Query,
}

/// A `thresholdRange`: inclusive bounds, either optional.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ThresholdRange {
    /// Lowest passing value.
    pub min: Option<f64>,
    /// Highest passing value.
    pub max: Option<f64>,
}

/// Whether `value` lies within the inclusive bounds; an absent bound does not limit.
/// NaN fails.
pub fn check_threshold_range(value: f64, min: Option<f64>, max: Option<f64>) -> bool {
    if value.is_nan() {
        return false;
    }
    let below = min.is_some_and(|m| value < m);
    let above = max.is_some_and(|m| value > m);
    !below && !above
}

/// A value read as milliseconds, truncated toward zero to whole milliseconds (Go's
/// `time.Duration(v) * time.Millisecond`); `None` for NaN.
pub fn duration_ms(value: f64) -> Option<f64> {
    if value.is_nan() {
        None
    } else {
        Some(value.trunc())
    }
}

/// The `request-duration` range check: `value` and the bounds, all in milliseconds, are
/// truncated to whole milliseconds and compared inclusively. NaN fails.
pub fn check_request_duration_range(value: f64, min: Option<f64>, max: Option<f64>) -> bool {
    let Some(v) = duration_ms(value) else {
        return false;
    };
    let bound = |b: Option<f64>| b.and_then(duration_ms);
    // A NaN bound is treated as absent, as a truncated NaN has no millisecond value.
    check_threshold_range(v, bound(min), bound(max))
}

/// The legacy `threshold` check (no `thresholdRange`): success rate fails when
/// `threshold > value`; request duration when `value > threshold` (whole ms); inline
/// queries and templates when `value > threshold`. NaN fails.
pub fn check_legacy_threshold(kind: MetricKind, value: f64, threshold: f64) -> bool {
    if value.is_nan() {
        return false;
    }
    match kind {
        MetricKind::RequestSuccessRate => threshold <= value,
        MetricKind::RequestDuration => match (duration_ms(value), duration_ms(threshold)) {
            (Some(v), Some(t)) => v <= t,
            _ => false,
        },
        MetricKind::Query => value <= threshold,
    }
}

/// One metric check: the range when one is set (durations compared in whole ms for
/// `request-duration`), else the legacy `threshold` (Flagger's default is 0).
pub fn check_metric(
    kind: MetricKind,
    value: f64,
    range: Option<ThresholdRange>,
    threshold: f64,
) -> bool {
    match (range, kind) {
        (Some(r), MetricKind::RequestDuration) => check_request_duration_range(value, r.min, r.max),
        (Some(r), _) => check_threshold_range(value, r.min, r.max),
        (None, _) => check_legacy_threshold(kind, value, threshold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_inclusive() {
        assert!(check_threshold_range(100.0, Some(0.0), Some(100.0)));
        assert!(check_threshold_range(0.0, Some(0.0), Some(100.0)));
        assert!(!check_threshold_range(100.1, Some(0.0), Some(100.0)));
        assert!(!check_threshold_range(-0.1, Some(0.0), None));
        assert!(check_threshold_range(1e9, None, None));
        assert!(!check_threshold_range(f64::NAN, None, None));
    }

    #[test]
    fn durations_truncate_to_ms() {
        assert!(check_request_duration_range(500.9, None, Some(500.0)));
        assert!(!check_request_duration_range(501.0, None, Some(500.9)));
        assert!(check_request_duration_range(99.9, Some(99.0), None));
        assert_eq!(duration_ms(12.7), Some(12.0));
        assert_eq!(duration_ms(f64::NAN), None);
    }

    #[test]
    fn legacy_thresholds() {
        assert!(check_legacy_threshold(
            MetricKind::RequestSuccessRate,
            99.0,
            99.0
        ));
        assert!(!check_legacy_threshold(
            MetricKind::RequestSuccessRate,
            98.9,
            99.0
        ));
        assert!(check_legacy_threshold(
            MetricKind::RequestDuration,
            500.5,
            500.0
        ));
        assert!(!check_legacy_threshold(
            MetricKind::RequestDuration,
            501.0,
            500.0
        ));
        assert!(!check_legacy_threshold(MetricKind::Query, 0.5, 0.0));
        assert!(check_legacy_threshold(MetricKind::Query, 0.0, 0.0));
        assert!(!check_metric(MetricKind::Query, f64::NAN, None, 10.0));
        let r = ThresholdRange {
            min: Some(0.0),
            max: Some(100.0),
        };
        assert!(check_metric(MetricKind::Query, 100.0, Some(r), 0.0));
    }
}
