//! Reading vector JSON with errors that name the field, and comparing expectations.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::CaseResult;

/// A result whose error explains what the adapter could not read.
pub(crate) type Res<T> = Result<T, String>;

/// The value under the first of `keys` that is present and not `null`.
pub(crate) fn get<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().filter_map(|k| v.get(k)).find(|x| !x.is_null())
}

/// Whether any of `keys` is present (even as `null`).
pub(crate) fn has(v: &Value, keys: &[&str]) -> bool {
    keys.iter().any(|k| v.get(k).is_some())
}

fn as_i32(x: &Value, what: &str) -> Res<i32> {
    x.as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| format!("{what} must be a 32-bit integer, got {x}"))
}

/// An optional integer under one of `keys`.
pub(crate) fn opt_i32(v: &Value, keys: &[&str]) -> Res<Option<i32>> {
    get(v, keys).map(|x| as_i32(x, keys[0])).transpose()
}

/// A required integer under one of `keys`.
pub(crate) fn req_i32(v: &Value, keys: &[&str]) -> Res<i32> {
    opt_i32(v, keys)?.ok_or_else(|| format!("cannot express case: no {}", keys.join("/")))
}

/// An optional boolean under one of `keys`.
pub(crate) fn opt_bool(v: &Value, keys: &[&str]) -> Res<Option<bool>> {
    get(v, keys)
        .map(|x| {
            x.as_bool()
                .ok_or_else(|| format!("{} must be a boolean, got {x}", keys[0]))
        })
        .transpose()
}

/// An optional string under one of `keys`.
pub(crate) fn opt_str<'a>(v: &'a Value, keys: &[&str]) -> Res<Option<&'a str>> {
    get(v, keys)
        .map(|x| {
            x.as_str()
                .ok_or_else(|| format!("{} must be a string, got {x}", keys[0]))
        })
        .transpose()
}

/// Deserializes `v` into `T`, naming `what` in the error.
pub(crate) fn parse<T: DeserializeOwned>(v: &Value, what: &str) -> Res<T> {
    serde_json::from_value(v.clone()).map_err(|e| format!("cannot express {what}: {e}"))
}

fn is_error(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// Compares every key of the `expected` object with `actual`. An `error` key only
/// compares whether there was an error (messages are Go's, not ours).
pub(crate) fn compare(expected: &Value, actual: &Map<String, Value>) -> CaseResult {
    let Some(expected) = expected.as_object() else {
        return CaseResult::Fail(format!("cannot express expected value {expected}"));
    };
    if expected.is_empty() {
        return CaseResult::Fail("cannot express case: nothing is expected".into());
    }
    let mut wrong = Vec::new();
    for (key, want) in expected {
        if key == "error" {
            if is_error(Some(want)) != is_error(actual.get(key)) {
                wrong.push(key.as_str());
            }
            continue;
        }
        match actual.get(key) {
            None => {
                return CaseResult::Fail(format!(
                    "cannot express expected key {key:?} (the adapter produces {})",
                    Value::Object(actual.clone())
                ));
            }
            Some(got) if !same(want, got) => wrong.push(key.as_str()),
            Some(_) => {}
        }
    }
    if wrong.is_empty() {
        CaseResult::Pass
    } else {
        let got: Map<String, Value> = expected
            .keys()
            .map(|k| (k.clone(), actual.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        CaseResult::Fail(format!(
            "expected {} actual {} (differs in {})",
            Value::Object(expected.clone()),
            Value::Object(got),
            wrong.join(", ")
        ))
    }
}

/// Builds an actual-value map from key/value pairs.
pub(crate) fn actual<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
