//! Adapter for `kayenta/scoring.json`: [`score`] (Kayenta's weighted-sum group scorer).
//! `summary_score` and, when given, each of `group_scores` are compared exactly.

use std::collections::BTreeMap;

use rollout_analysis::judge::{Label, MetricResult, score};
use serde_json::Value as Json;

use super::{close, num};
use crate::{Case, CaseResult};

/// Runs one case of `kayenta/scoring.json`. The cases carry no `kind`; a case with one
/// is a failure.
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

fn result_of(r: &Json) -> Result<MetricResult, String> {
    let name = r
        .get("name")
        .and_then(Json::as_str)
        .ok_or("result without name")?;
    let label = r
        .get("classification")
        .and_then(Json::as_str)
        .and_then(Label::parse)
        .ok_or_else(|| format!("result {name}: unknown classification"))?;
    let groups = r
        .get("groups")
        .and_then(Json::as_array)
        .ok_or_else(|| format!("result {name}: no groups"))?
        .iter()
        .map(|g| {
            g.as_str()
                .map(str::to_string)
                .ok_or("group is not a string")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let flag = |key: &str| -> Result<bool, String> {
        match r.get(key) {
            None | Some(Json::Null) => Ok(false),
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("result {name}: {key} is not a boolean: {other}")),
        }
    };
    Ok(MetricResult {
        name: name.to_string(),
        label,
        groups,
        critical: flag("critical")?,
        muted: flag("muted")?,
    })
}

fn run(input: &Json, expected: &Json) -> Result<(), String> {
    let mut weights = BTreeMap::new();
    if let Some(w) = input.get("group_weights") {
        let w = w.as_object().ok_or("group_weights is not an object")?;
        for (g, v) in w {
            weights.insert(g.clone(), num(v, "group weight")?);
        }
    }
    let results = input
        .get("results")
        .and_then(Json::as_array)
        .ok_or("missing results")?
        .iter()
        .map(result_of)
        .collect::<Result<Vec<_>, _>>()?;
    let got = score(&weights, &results);
    let map = expected.as_object().ok_or("expect is not an object")?;
    for (key, want) in map {
        match key.as_str() {
            "summary_score" => close("summary_score", got.summary_score, num(want, key)?, 0.0)?,
            "group_scores" => {
                let want = want.as_object().ok_or("group_scores is not an object")?;
                if want.len() != got.groups.len() {
                    return Err(format!(
                        "group_scores: expected {} groups, got {:?}",
                        want.len(),
                        got.groups
                    ));
                }
                for (g, w) in want {
                    let actual = got
                        .groups
                        .iter()
                        .find(|x| &x.name == g)
                        .ok_or_else(|| format!("group_scores: no group {g}"))?;
                    close(&format!("group {g}"), actual.score, num(w, g)?, 0.0)?;
                }
            }
            other => return Err(format!("unknown expectation {other:?}")),
        }
    }
    Ok(())
}
