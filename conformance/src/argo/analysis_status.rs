//! Adapter for `argo/analysis_status.json`: Argo's `assessMetricStatus` and
//! `assessRunStatus`, mapped onto [`rollout_analysis::run::metric_phase`] and
//! [`rollout_analysis::run::run_phase`].
//!
//! `metric` becomes a [`MetricLimits`] and `result` a [`MetricCounters`]: phase `""` is
//! unset, and of `measurements` (phases, or objects with a `phase`) only the newest
//! matters. For `run_phase`, a metric is dry-run when `dry_run_metrics` names it or its
//! result says `dry_run: true`; a metric without a result gets empty counters;
//! `terminating` is [`is_terminating`] over `spec_terminate` and the stored phases.
//! `metric_phases` compares the named metrics' re-assessed phases.

use rollout_analysis::run::{
    LastMeasurement, MetricCounters, MetricLimits, is_terminating, metric_phase, run_phase,
};
use rollout_core::status::AnalysisPhase;
use serde_json::{Map, Value, json};

use crate::json::{Res, actual, compare, opt_bool, opt_i32, opt_str};
use crate::{Case, CaseResult};

/// Runs one case of `argo/analysis_status.json`, dispatching on its `kind`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let result = match case.kind {
        "metric_phase" => one_metric(case.input),
        "run_phase" => whole_run(case.input, case.expected),
        other => Err(format!("unknown kind {other:?}")),
    };
    match result {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

fn phase_of(s: &str) -> Res<Option<AnalysisPhase>> {
    Ok(Some(match s {
        "" => return Ok(None),
        "Pending" => AnalysisPhase::Pending,
        "Running" => AnalysisPhase::Running,
        "Successful" => AnalysisPhase::Successful,
        "Failed" => AnalysisPhase::Failed,
        "Error" => AnalysisPhase::Error,
        "Inconclusive" => AnalysisPhase::Inconclusive,
        other => return Err(format!("unknown phase {other:?}")),
    }))
}

fn limits_of(metric: &Value) -> Res<MetricLimits> {
    let name = opt_str(metric, &["name"])?.ok_or("metric without a name")?;
    Ok(MetricLimits {
        name: name.to_string(),
        count: opt_i32(metric, &["count"])?,
        failure_limit: opt_i32(metric, &["failure_limit"])?,
        inconclusive_limit: opt_i32(metric, &["inconclusive_limit"])?,
        consecutive_error_limit: opt_i32(metric, &["consecutive_error_limit"])?,
        consecutive_success_limit: opt_i32(metric, &["consecutive_success_limit"])?,
        interval: opt_str(metric, &["interval"])?.map(str::to_string),
        initial_delay: opt_str(metric, &["initial_delay"])?.map(str::to_string),
        dry_run: false,
    })
}

fn counters_of(result: &Value) -> Res<MetricCounters> {
    let int = |key: &str| opt_i32(result, &[key]).map(Option::unwrap_or_default);
    let last_measurement = match result.get("measurements") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => match list.last() {
            None => None,
            Some(m) => {
                let phase = match m {
                    Value::String(s) => s.as_str(),
                    Value::Object(_) => opt_str(m, &["phase"])?.unwrap_or(""),
                    other => return Err(format!("cannot express measurement {other}")),
                };
                let phase = phase_of(phase)?.unwrap_or(AnalysisPhase::Pending);
                Some(LastMeasurement { phase })
            }
        },
        Some(other) => return Err(format!("measurements is not a list: {other}")),
    };
    Ok(MetricCounters {
        phase: phase_of(opt_str(result, &["phase"])?.unwrap_or(""))?,
        count: int("count")?,
        successful: int("successful")?,
        failed: int("failed")?,
        inconclusive: int("inconclusive")?,
        error: int("error")?,
        consecutive_error: int("consecutive_error")?,
        consecutive_success: int("consecutive_success")?,
        last_measurement,
        message: opt_str(result, &["message"])?.unwrap_or("").to_string(),
    })
}

fn one_metric(input: &Value) -> Res<Map<String, Value>> {
    let limits = limits_of(input.get("metric").ok_or("no metric")?)?;
    let counters = counters_of(input.get("result").ok_or("no result")?)?;
    let terminating = opt_bool(input, &["terminating"])?.unwrap_or(false);
    let phase = metric_phase(&limits, &counters, terminating);
    Ok(actual([("metric_phase", json!(phase.as_str()))]))
}

fn whole_run(input: &Value, expected: &Value) -> Res<Map<String, Value>> {
    let list = |key: &str| match input.get(key) {
        None | Some(Value::Null) => Ok(&[][..]),
        Some(Value::Array(items)) => Ok(items.as_slice()),
        Some(other) => Err(format!("{key} is not a list: {other}")),
    };
    let dry_names: Vec<&str> = list("dry_run_metrics")?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or(format!("dry-run metric name {v} is not a string"))
        })
        .collect::<Res<_>>()?;
    let results = list("results")?;
    let mut metrics = Vec::new();
    for metric in list("metrics")? {
        let mut limits = limits_of(metric)?;
        let result = results
            .iter()
            .find(|r| r.get("name").and_then(Value::as_str) == Some(limits.name.as_str()));
        let counters = result.map(counters_of).transpose()?.unwrap_or_default();
        let result_dry = match result {
            Some(r) => opt_bool(r, &["dry_run"])?.unwrap_or(false),
            None => false,
        };
        limits.dry_run = result_dry || dry_names.contains(&limits.name.as_str());
        metrics.push((limits, counters));
    }
    for r in results {
        let name = opt_str(r, &["name"])?.unwrap_or("");
        if !metrics.iter().any(|(l, _)| l.name == name) {
            return Err(format!("cannot express result {name:?} of no metric"));
        }
    }
    let spec_terminate = opt_bool(input, &["spec_terminate"])?.unwrap_or(false);
    let terminating = is_terminating(spec_terminate, &metrics);
    let verdict = run_phase(&metrics, terminating);
    let s = verdict.dry_run_summary;
    // Only the metrics the case names are compared.
    let named = expected.get("metric_phases").and_then(Value::as_object);
    let phases: Map<String, Value> = metrics
        .iter()
        .zip(&verdict.metric_phases)
        .filter(|((l, _), _)| named.is_some_and(|n| n.contains_key(&l.name)))
        .map(|((l, _), p)| (l.name.clone(), json!(p.as_str())))
        .collect();
    Ok(actual([
        ("run_phase", json!(verdict.phase.as_str())),
        ("message", json!(verdict.message)),
        (
            "dry_run_summary",
            json!({
                "count": s.count,
                "successful": s.successful,
                "failed": s.failed,
                "inconclusive": s.inconclusive,
                "error": s.error,
            }),
        ),
        ("metric_phases", Value::Object(phases)),
    ]))
}
