//! Argo Rollouts analysis semantics, as pure functions.
//!
//! # The model
//!
//! An AnalysisTemplate metric asks a provider (Prometheus, Datadog, a web endpoint, ...)
//! for a **result** and judges it with two optional boolean expressions written in
//! expr-lang: `successCondition` (S) and `failureCondition` (F). The expression sees the
//! result as `result` (pointers dereferenced, a typed nil pointer becomes `nil`) plus
//! Argo's helpers `asInt`, `asFloat`, `isNaN`, `isInf`, `isNil` and `default`, and expr's
//! builtins (`len`, `all`, `any`, `none`, `one`, `filter`, `map`, `count`, `abs`, `max`,
//! `min`, `in`, `#` predicates).
//!
//! One measurement becomes a [`MeasurementPhase`]:
//!
//! | S set | F set | phase |
//! |---|---|---|
//! | no | no | Successful |
//! | yes | no | Successful if S, else Failed |
//! | no | yes | Failed if F, else Successful |
//! | yes | yes | Failed if F; else Successful if S; else Inconclusive |
//!
//! An expression that fails to compile or run, or that does not yield a bool, makes the
//! measurement `Error` with the message `could not evaluate successCondition "<expr>":
//! <err>` (or `failureCondition`); when the result is nil or an empty list the message
//! instead says `metric result is nil or empty: no data returned from the metric provider`.
//! NaN compares false with everything, so `result >= 0.9` on NaN fails.
//!
//! # The API
//!
//! * [`expr`]: the language — [`expr::Program::compile`] once, [`expr::Program::eval`]
//!   many times against an [`expr::Env`] binding `result` to an [`expr::Value`].
//! * [`eval_condition`]: one expression that must yield a bool (Argo's `EvalCondition`).
//! * [`evaluate_result`]: both conditions to an [`Evaluation`] (Argo's `EvaluateResult`),
//!   including the measurement value as Argo stores it ([`format_measurement`]).
//! * [`run`]: the verdict rules over counters — a metric's phase from its limits
//!   ([`run::metric_phase`]), the run's worst-of phase, message and dry-run summary
//!   ([`run::run_phase`]), the counter table ([`run::record_measurement`]).
//! * [`machine`]: the AnalysisRun as a pure state machine — [`machine::reconcile`] turns
//!   the metrics, the persisted [`machine::RunStatus`] and the providers' results into a
//!   new status, [`machine::RunAction`]s (measure, terminate) and the next wake-up.
//! * [`flagger`]: Flagger's metric checks (inclusive `thresholdRange`, whole-millisecond
//!   request durations, legacy `threshold`).
//! * [`judge`]: a Kayenta-style statistical canary judge (Mann-Whitney interval and
//!   Hodges-Lehmann estimate, metric classification, weighted-sum scoring).
//! * [`provider`]: provider results — the Prometheus HTTP API response to a [`expr::Value`]
//!   ([`provider::prometheus`]) and a strict text exposition parser ([`provider::exposition`]).
//! * `kube_runs` (feature `kube`): the `Analysis` port of rollout-core's driver on a
//!   Kubernetes API server — AnalysisRun objects created, measured and updated in place.
//! * [`template`]: AnalysisTemplate / ClusterAnalysisTemplate / AnalysisRun and Flagger
//!   MetricTemplate documents — parsing with field paths, validation, `{{args.x}}` resolution.

pub mod expr;
pub mod flagger;
pub mod judge;
#[cfg(feature = "kube")]
pub mod kube_runs;
pub mod machine;
pub mod provider;
pub mod run;
pub mod runner;
#[cfg(feature = "sim")]
pub mod sim;
pub mod template;

use expr::{Env, ExprError, Program, Value, format_float};

/// The phase of one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MeasurementPhase {
    /// The success condition held (or no condition was set).
    Successful,
    /// The failure condition held (or only S was set and it was false).
    Failed,
    /// Both conditions set and both false.
    Inconclusive,
    /// A condition could not be evaluated.
    Error,
}

impl MeasurementPhase {
    /// Argo's spelling (`Successful`, `Failed`, `Inconclusive`, `Error`).
    pub fn as_str(self) -> &'static str {
        match self {
            MeasurementPhase::Successful => "Successful",
            MeasurementPhase::Failed => "Failed",
            MeasurementPhase::Inconclusive => "Inconclusive",
            MeasurementPhase::Error => "Error",
        }
    }
}

/// Why a condition did not give a bool.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionError {
    /// Compiling or running the expression failed.
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// The expression ran but did not yield a bool.
    #[error("expected bool, but got {type_name}")]
    NotBool {
        /// The Go type name of what it yielded.
        type_name: &'static str,
    },
}

/// Evaluates one condition against `result`: Argo's `EvalCondition`.
pub fn eval_condition(expression: &str, result: &Value) -> Result<bool, ConditionError> {
    let program = Program::compile(expression)?;
    match program.eval(&Env::new(result.clone()))? {
        Value::Bool(b) => Ok(b),
        other => Err(ConditionError::NotBool {
            type_name: other.type_name(),
        }),
    }
}

/// How [`format_measurement`] renders a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueStyle {
    /// Go's `json.Marshal`, except that bare floats print as `strconv.FormatFloat` does
    /// (`NaN`, `+Inf`) and nil prints as `[]` (how providers store "no data").
    Json,
    /// Strings as they are (the web provider's non-JSON body); other values as `Json`.
    RawString,
}

/// The string Argo stores in `measurement.value` for a result.
pub fn format_measurement(value: &Value, style: ValueStyle) -> String {
    match (value, style) {
        (Value::String(s), ValueStyle::RawString) => s.clone(),
        (Value::Nil, _) => "[]".into(),
        (Value::Float(f), _) => format_float(*f),
        _ => {
            let mut out = String::new();
            write_json(&mut out, value);
            out
        }
    }
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::String(s) => write_json_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, k);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The assessment of one measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The phase.
    pub phase: MeasurementPhase,
    /// The error message when `phase` is `Error`.
    pub message: Option<String>,
    /// The measurement value as Argo stores it ([`ValueStyle::Json`]).
    pub value: String,
}

fn is_nil_or_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Array(a) => a.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
    }
}

/// Assesses one result against the optional success and failure conditions (an empty
/// string counts as unset): Argo's `EvaluateResult`. See the crate docs for the table.
pub fn evaluate_result(success: Option<&str>, failure: Option<&str>, result: &Value) -> Evaluation {
    let success = success.filter(|s| !s.is_empty());
    let failure = failure.filter(|s| !s.is_empty());
    let value = format_measurement(result, ValueStyle::Json);
    let run = |name: &str, expr: &str| -> Result<bool, String> {
        eval_condition(expr, result).map_err(|e| {
            if is_nil_or_empty(result) {
                format!(
                    "could not evaluate {name} {expr:?}: metric result is nil or empty: \
                     no data returned from the metric provider"
                )
            } else {
                format!("could not evaluate {name} {expr:?}: {e}")
            }
        })
    };
    let outcome = (|| -> Result<MeasurementPhase, String> {
        let s = success.map(|e| run("successCondition", e)).transpose()?;
        let f = failure.map(|e| run("failureCondition", e)).transpose()?;
        Ok(match (s, f) {
            (None, None) => MeasurementPhase::Successful,
            (Some(s), None) => {
                if s {
                    MeasurementPhase::Successful
                } else {
                    MeasurementPhase::Failed
                }
            }
            (None, Some(f)) => {
                if f {
                    MeasurementPhase::Failed
                } else {
                    MeasurementPhase::Successful
                }
            }
            (Some(s), Some(f)) => {
                if f {
                    MeasurementPhase::Failed
                } else if s {
                    MeasurementPhase::Successful
                } else {
                    MeasurementPhase::Inconclusive
                }
            }
        })
    })();
    match outcome {
        Ok(phase) => Evaluation {
            phase,
            message: None,
            value,
        },
        Err(message) => Evaluation {
            phase: MeasurementPhase::Error,
            message: Some(message),
            value,
        },
    }
}
