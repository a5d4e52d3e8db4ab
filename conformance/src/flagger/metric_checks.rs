//! Adapter for `flagger/metric_checks.json`: Flagger's `thresholdRange` check, mapped
//! onto [`rollout_analysis::flagger::check_threshold_range`].
//!
//! `input.value` is a number (or `"NaN"`); `input.thresholdRange` holds optional `min`
//! and `max`. Only the `threshold_range` kind is supported; any other kind fails.

use rollout_analysis::flagger::check_threshold_range;
use serde_json::{Map, Value, json};

use crate::json::{Res, actual, compare};
use crate::{Case, CaseResult};

/// Runs one case of `flagger/metric_checks.json`, dispatching on its `kind`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let result = match case.kind {
        "threshold_range" => threshold_range(case.input),
        other => Err(format!("unknown kind {other:?}")),
    };
    match result {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

fn number(v: &Value, what: &str) -> Res<f64> {
    match v {
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        other => other
            .as_f64()
            .ok_or_else(|| format!("{what} is not a number: {other}")),
    }
}

fn bound(range: &Value, key: &str) -> Res<Option<f64>> {
    match range.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => number(v, key).map(Some),
    }
}

fn threshold_range(input: &Value) -> Res<Map<String, Value>> {
    let value = number(input.get("value").ok_or("no value")?, "value")?;
    let range = match input.get("thresholdRange") {
        Some(r @ Value::Object(_)) => r,
        other => return Err(format!("cannot express thresholdRange {other:?}")),
    };
    let pass = check_threshold_range(value, bound(range, "min")?, bound(range, "max")?);
    Ok(actual([("pass", json!(pass))]))
}
