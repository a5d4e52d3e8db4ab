//! Adapter for `kayenta/metric_classification.json`: [`classify`] (the Mann-Whitney
//! classifier, `classifier.type = "mann_whitney"`) and [`classify_mean_inequality`]
//! (`"mean_inequality"`). The classifier's tolerance, confidence, effect size
//! thresholds `[decrease, increase]`, critical thresholds and measure come from the case;
//! the expected label, and `critical` / `deviation` when given, are checked.
//!
//! The two "tied ranks" cases (both samples constant) go through the seeded noise of
//! [`MetricConfig::noise_seed`] (its default); their expected labels do not depend on it.

use rollout_analysis::judge::{
    Direction, EffectSizeMeasure, Label, MetricConfig, NanStrategy, classify,
    classify_mean_inequality,
};
use serde_json::Value as Json;

use super::{close, num, num_array, req_num};
use crate::{Case, CaseResult};

/// Runs one case of `kayenta/metric_classification.json`. The cases carry no `kind`;
/// a case with one is a failure.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let result = if case.kind.is_empty() {
        run(case.input, case.expected)
    } else {
        Err(format!("unknown kind {:?}", case.kind))
    };
    match result {
        Ok(()) => CaseResult::Pass,
        Err(e) => CaseResult::Fail(e),
    }
}

fn flag(input: &Json, key: &str) -> Result<bool, String> {
    match input.get(key) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("{key} is not a boolean: {other}")),
    }
}

fn pair(v: &Json, key: &str) -> Result<(f64, f64), String> {
    match v.get(key).and_then(Json::as_array).map(Vec::as_slice) {
        Some([a, b]) => Ok((num(a, key)?, num(b, key)?)),
        _ => Err(format!("{key} is not a pair")),
    }
}

fn run(input: &Json, expected: &Json) -> Result<(), String> {
    let experiment = num_array(input, "experiment")?;
    let control = num_array(input, "control")?;
    let mut config = MetricConfig::default();
    config.direction = match input.get("direction").and_then(Json::as_str) {
        Some("increase") => Direction::Increase,
        Some("decrease") => Direction::Decrease,
        Some("either") | None => Direction::Either,
        Some(other) => return Err(format!("unknown direction {other:?}")),
    };
    config.nan_strategy = match input.get("nan_strategy").and_then(Json::as_str) {
        Some("remove") | None => NanStrategy::Remove,
        Some("replace") => NanStrategy::Replace,
        Some(other) => return Err(format!("unknown nan_strategy {other:?}")),
    };
    config.critical = flag(input, "is_critical")?;
    config.must_have_data = flag(input, "is_data_required")?;
    let classifier = input.get("classifier").ok_or("missing classifier")?;
    let got = match classifier.get("type").and_then(Json::as_str) {
        Some("mann_whitney") => {
            config.tolerance = req_num(classifier, "tolerance")?;
            config.confidence = req_num(classifier, "confidence_level")?;
            (config.allowed_decrease, config.allowed_increase) =
                pair(classifier, "effect_size_thresholds")?;
            (config.critical_decrease, config.critical_increase) =
                pair(classifier, "critical_thresholds")?;
            config.effect_size_measure =
                match classifier.get("effect_size_measure").and_then(Json::as_str) {
                    Some("meanRatio") => EffectSizeMeasure::MeanRatio,
                    Some("cles") => EffectSizeMeasure::Cles,
                    other => return Err(format!("unknown effect_size_measure {other:?}")),
                };
            classify(&control, &experiment, &config)
        }
        Some("mean_inequality") => classify_mean_inequality(&control, &experiment, &config),
        other => return Err(format!("unknown classifier type {other:?}")),
    };
    let map = expected.as_object().ok_or("expect is not an object")?;
    for (key, want) in map {
        match key.as_str() {
            "classification" => {
                let want = want
                    .as_str()
                    .and_then(Label::parse)
                    .ok_or_else(|| format!("unknown classification {want}"))?;
                if got.label != want {
                    return Err(format!(
                        "classification: expected {}, got {} ({got:?})",
                        want.as_str(),
                        got.label.as_str()
                    ));
                }
            }
            "critical" => {
                let want = want.as_bool().ok_or("critical is not a boolean")?;
                if got.critical != want {
                    return Err(format!("critical: expected {want}, got {}", got.critical));
                }
            }
            "deviation" => close("deviation", got.deviation, num(want, key)?, 0.0)?,
            other => return Err(format!("unknown expectation {other:?}")),
        }
    }
    Ok(())
}
