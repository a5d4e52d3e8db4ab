//! The condition language against the `cel` crate (cel-rust 0.15), on the same inputs.
//!
//! ```text
//! cargo bench -p rollout-benches --bench expr
//! ```
//!
//! Group `expr_eval`: one evaluation of an already compiled program with `result` already
//! bound (`rollout_analysis::expr::Program::eval` against an `Env`, and
//! `cel::Program::execute` against a `cel::Context` holding the variable and the
//! registered functions). Each case is an AnalysisTemplate condition and the CEL
//! expression a user would write for it:
//!
//! | case | ours (expr-lang) | CEL | result |
//! |---|---|---|---|
//! | `index` | `result[0] >= 0.95` | same | `[0.97]` |
//! | `scalar` | `result < 0.05` | same | `0.02` |
//! | `all_10` | `len(result) > 0 && all(result, {# < 100})` | `size(result) > 0 && result.all(x, x < 100)` | 10 floats |
//! | `is_nan` | `result[0] >= 0.95 && !isNaN(result[0])` | same, `isNaN` registered | `[0.97]` |
//! | `default` | `default(result, 0) >= 1` | same, `default` registered | `3.0` |
//!
//! Group `expr_compile`: compiling the same sources (`Program::compile` on both sides;
//! CEL's stdlib environment is built once, outside the loop).
//!
//! Both sides are checked to give `true` on every case before anything is timed.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use rollout_analysis::expr::{Env, Program, Value};

/// One benchmark case.
struct Case {
    name: &'static str,
    ours: &'static str,
    cel: &'static str,
    result: Value,
}

fn cases() -> Vec<Case> {
    let ten: Vec<Value> = (0..10).map(|i| Value::Float(f64::from(i) * 9.5)).collect();
    vec![
        Case {
            name: "index",
            ours: "result[0] >= 0.95",
            cel: "result[0] >= 0.95",
            result: Value::Array(vec![Value::Float(0.97)]),
        },
        Case {
            name: "scalar",
            ours: "result < 0.05",
            cel: "result < 0.05",
            result: Value::Float(0.02),
        },
        Case {
            name: "all_10",
            ours: "len(result) > 0 && all(result, {# < 100})",
            cel: "size(result) > 0 && result.all(x, x < 100)",
            result: Value::Array(ten),
        },
        Case {
            name: "is_nan",
            ours: "result[0] >= 0.95 && !isNaN(result[0])",
            cel: "result[0] >= 0.95 && !isNaN(result[0])",
            result: Value::Array(vec![Value::Float(0.97)]),
        },
        Case {
            name: "default",
            ours: "default(result, 0) >= 1",
            cel: "default(result, 0) >= 1",
            result: Value::Float(3.0),
        },
    ]
}

/// The same value as a CEL value (numbers stay floats, as Go's JSON decoding makes them).
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Int(i) => cel::Value::Int(*i),
        Value::Float(f) => cel::Value::Float(*f),
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Map(map) => {
            let entries: std::collections::HashMap<String, cel::Value> =
                map.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(entries)
        }
        // `Nil` and any future variant.
        _ => cel::Value::Null,
    }
}

/// A CEL context binding `result` and Argo's helpers the cases use.
fn cel_context(result: &Value) -> cel::Context<'static, 'static> {
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("result", to_cel(result));
    ctx.add_function("isNaN", |x: f64| x.is_nan())
        .unwrap_or_else(|e| panic!("registering isNaN: {e:?}"));
    ctx.add_function("default", |v: cel::Value, d: cel::Value| -> cel::Value {
        match v {
            cel::Value::Null => d,
            other => other,
        }
    })
    .unwrap_or_else(|e| panic!("registering default: {e:?}"));
    ctx
}

fn bench_eval(c: &mut Criterion) {
    let mut g = c.benchmark_group("expr_eval");
    for case in cases() {
        let ours = Program::compile(case.ours).unwrap_or_else(|e| panic!("{}: {e}", case.ours));
        let env = Env::new(case.result.clone());
        let theirs =
            cel::Program::compile(case.cel).unwrap_or_else(|e| panic!("{}: {e:?}", case.cel));
        let ctx = cel_context(&case.result);
        // Same answer on both sides before timing anything.
        assert_eq!(ours.eval(&env), Ok(Value::Bool(true)), "{}", case.ours);
        assert_eq!(
            theirs.execute(&ctx).map_err(|e| format!("{e:?}")),
            Ok(cel::Value::Bool(true)),
            "{}",
            case.cel
        );
        g.bench_function(format!("{}/ours", case.name), |b| {
            b.iter(|| black_box(&ours).eval(black_box(&env)))
        });
        g.bench_function(format!("{}/cel", case.name), |b| {
            b.iter(|| black_box(&theirs).execute(black_box(&ctx)))
        });
    }
    g.finish();
}

fn bench_compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("expr_compile");
    for case in cases() {
        g.bench_function(format!("{}/ours", case.name), |b| {
            b.iter(|| Program::compile(black_box(case.ours)))
        });
        g.bench_function(format!("{}/cel", case.name), |b| {
            b.iter(|| cel::Program::compile(black_box(case.cel)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_eval, bench_compile);
criterion_main!(benches);
