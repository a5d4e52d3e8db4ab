//! Adapter for `argo/conditions.json`: Argo's `EvaluateResult` and `EvalCondition`, mapped
//! onto [`rollout_analysis::evaluate_result`] and [`rollout_analysis::eval_condition`].
//!
//! The `result` is built from `result_go_type`: `int` gives an integer, a typed nil
//! pointer gives nil, everything else is decoded from JSON as Go does (numbers are
//! `float64`; `{"$float": "NaN" | "+Inf" | "-Inf"}` is the non-JSON float). A
//! `string (raw body; not valid JSON)` result is stored verbatim, as the web provider does.
//!
//! Expected errors are checked, not only their presence: `error` as a string must occur
//! in the message, every `error_contains` entry must occur, and `error_regex` (a literal
//! pattern in these vectors, with `\` escapes) must occur once its escapes are removed.

use rollout_analysis::expr::Value;
use rollout_analysis::{ValueStyle, eval_condition, evaluate_result, format_measurement};
use serde_json::Value as Json;

use crate::{Case, CaseResult};

/// Runs one case of `argo/conditions.json`, dispatching on its `kind`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let result = match case.kind {
        "evaluate_result" => evaluate(case.input, case.expected),
        "eval_condition" => condition(case.input, case.expected),
        other => Err(format!("unknown kind {other:?}")),
    };
    match result {
        Ok(()) => CaseResult::Pass,
        Err(e) => CaseResult::Fail(e),
    }
}

fn str_field<'a>(input: &'a Json, key: &str) -> Result<Option<&'a str>, String> {
    match input.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key} is not a string: {other}")),
    }
}

fn to_value(json: &Json) -> Result<Value, String> {
    Ok(match json {
        Json::Object(m) if m.len() == 1 && m.contains_key("$float") => {
            match m.get("$float").and_then(Json::as_str) {
                Some("NaN") => Value::Float(f64::NAN),
                Some("+Inf") => Value::Float(f64::INFINITY),
                Some("-Inf") => Value::Float(f64::NEG_INFINITY),
                other => return Err(format!("bad $float {other:?}")),
            }
        }
        Json::Array(items) => Value::Array(items.iter().map(to_value).collect::<Result<_, _>>()?),
        Json::Object(m) => {
            let mut out = std::collections::BTreeMap::new();
            for (k, v) in m {
                out.insert(k.clone(), to_value(v)?);
            }
            Value::Map(out)
        }
        other => Value::from_json(other),
    })
}

/// The result and how its measurement value is stored.
fn result_of(input: &Json) -> Result<(Value, ValueStyle), String> {
    let go_type = str_field(input, "result_go_type")?.ok_or("missing result_go_type")?;
    let raw = input.get("result").ok_or("missing result")?;
    let value = match go_type {
        "int" => match raw.as_i64() {
            Some(i) => Value::Int(i),
            None => return Err(format!("result {raw} is not an int")),
        },
        t if t.starts_with('*') && t.ends_with("(nil)") => Value::Nil,
        "bool" | "string" | "float64" | "[]float64" | "map[string]any" | "[]any of float64" => {
            to_value(raw)?
        }
        t if t.starts_with("string (raw body") => {
            let s = raw.as_str().ok_or("raw body result is not a string")?;
            return Ok((Value::String(s.to_string()), ValueStyle::RawString));
        }
        other => return Err(format!("cannot express result_go_type {other:?}")),
    };
    Ok((value, ValueStyle::Json))
}

fn check_error(expected: &Json, message: Option<&str>) -> Result<(), String> {
    let want_error = match expected.get("error") {
        None | Some(Json::Bool(false)) | Some(Json::Null) => {
            expected.get("error_contains").is_some() || expected.get("error_regex").is_some()
        }
        Some(_) => true,
    };
    match (want_error, message) {
        (false, None) => return Ok(()),
        (false, Some(m)) => return Err(format!("unexpected error {m:?}")),
        (true, None) => return Err("expected an error, got none".into()),
        (true, Some(_)) => {}
    }
    let message = message.unwrap_or_default();
    let mut needles: Vec<String> = Vec::new();
    if let Some(Json::String(s)) = expected.get("error") {
        needles.push(s.clone());
    }
    if let Some(list) = expected.get("error_contains") {
        let list = list.as_array().ok_or("error_contains is not a list")?;
        for n in list {
            needles.push(
                n.as_str()
                    .ok_or("error_contains entry not a string")?
                    .to_string(),
            );
        }
    }
    if let Some(re) = expected.get("error_regex") {
        let re = re.as_str().ok_or("error_regex is not a string")?;
        needles.push(re.replace('\\', ""));
    }
    for n in needles {
        if !message.contains(&n) {
            return Err(format!("error {message:?} does not contain {n:?}"));
        }
    }
    Ok(())
}

fn evaluate(input: &Json, expected: &Json) -> Result<(), String> {
    let success = str_field(input, "success_condition")?;
    let failure = str_field(input, "failure_condition")?;
    let (result, style) = result_of(input)?;
    let eval = evaluate_result(success, failure, &result);
    let phase = expected
        .get("phase")
        .and_then(Json::as_str)
        .ok_or("expected has no phase")?;
    if eval.phase.as_str() != phase {
        return Err(format!(
            "expected phase {phase} got {} (message {:?})",
            eval.phase.as_str(),
            eval.message
        ));
    }
    if let Some(want) = expected.get("measurement_value") {
        let want = want.as_str().ok_or("measurement_value is not a string")?;
        let got = format_measurement(&result, style);
        if got != want {
            return Err(format!("expected measurement_value {want:?} got {got:?}"));
        }
    }
    check_error(expected, eval.message.as_deref())
}

fn condition(input: &Json, expected: &Json) -> Result<(), String> {
    let expression = str_field(input, "expression")?.ok_or("missing expression")?;
    let (result, _) = result_of(input)?;
    let got = eval_condition(expression, &result);
    let want = expected
        .get("value")
        .and_then(Json::as_bool)
        .ok_or("expected has no bool value")?;
    let value = *got.as_ref().unwrap_or(&false);
    if value != want {
        return Err(format!("expected value {want} got {got:?}"));
    }
    let message = got.as_ref().err().map(ToString::to_string);
    check_error(expected, message.as_deref())
}
