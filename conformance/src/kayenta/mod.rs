//! Adapters for the Kayenta judge vectors (`kayenta/*.json`), mapped onto
//! [`rollout_analysis::judge`].

pub mod mann_whitney;
pub mod metric_classification;
pub mod scoring;

use serde_json::Value as Json;

/// A number, or `"NaN"` / `"Infinity"` / `"-Infinity"` as the vectors encode them.
pub(crate) fn num(v: &Json, what: &str) -> Result<f64, String> {
    match v {
        Json::Number(n) => n.as_f64().ok_or_else(|| format!("{what}: bad number {n}")),
        Json::String(s) if s == "NaN" => Ok(f64::NAN),
        Json::String(s) if s == "Infinity" || s == "+Infinity" => Ok(f64::INFINITY),
        Json::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        other => Err(format!("{what}: not a number: {other}")),
    }
}

/// A required number under `key`.
pub(crate) fn req_num(v: &Json, key: &str) -> Result<f64, String> {
    num(v.get(key).ok_or_else(|| format!("missing {key}"))?, key)
}

/// A required array of numbers under `key`.
pub(crate) fn num_array(v: &Json, key: &str) -> Result<Vec<f64>, String> {
    v.get(key)
        .and_then(Json::as_array)
        .ok_or_else(|| format!("missing array {key}"))?
        .iter()
        .map(|x| num(x, key))
        .collect()
}

/// Checks `actual` against `expected` within `tol` (NaN matches NaN).
pub(crate) fn close(what: &str, actual: f64, expected: f64, tol: f64) -> Result<(), String> {
    let ok = if expected.is_nan() {
        actual.is_nan()
    } else {
        (actual - expected).abs() <= tol || actual == expected
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected {expected:?} (±{tol:e}), got {actual:?}"
        ))
    }
}
