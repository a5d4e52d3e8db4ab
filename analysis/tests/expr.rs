//! Unit tests per language feature, plus property tests.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rollout_analysis::expr::{Env, Expr, ExprError, Program, Value, parse};
use rollout_analysis::{
    ConditionError, MeasurementPhase, ValueStyle, eval_condition, evaluate_result,
    format_measurement,
};

fn run(src: &str, result: Value) -> Result<Value, ExprError> {
    Program::compile(src)?.eval(&Env::new(result))
}

fn ok(src: &str) -> Value {
    run(src, Value::Nil).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[test]
fn literals() {
    assert_eq!(ok("nil"), Value::Nil);
    assert_eq!(ok("true"), Value::Bool(true));
    assert_eq!(ok("42"), Value::Int(42));
    assert_eq!(ok("1_000"), Value::Int(1000));
    assert_eq!(ok("1.5"), Value::Float(1.5));
    assert_eq!(ok("2e3"), Value::Float(2000.0));
    assert_eq!(ok("'a\\'b'"), Value::String("a'b".into()));
    assert_eq!(ok("\"x\\ny\""), Value::String("x\ny".into()));
    assert_eq!(
        ok("[1, 'a']"),
        Value::Array(vec![Value::Int(1), Value::String("a".into())])
    );
}

#[test]
fn arithmetic() {
    assert_eq!(ok("1 + 2 * 3"), Value::Int(7));
    assert_eq!(ok("(1 + 2) * 3"), Value::Int(9));
    assert_eq!(ok("7 / 2"), Value::Float(3.5));
    assert_eq!(ok("7 % 3"), Value::Int(1));
    assert_eq!(ok("2 ** 3 ** 2"), Value::Float(512.0));
    assert_eq!(ok("-2 ** 2"), Value::Float(-4.0));
    assert_eq!(ok("1 + 0.5"), Value::Float(1.5));
    assert_eq!(ok("'a' + 'b'"), Value::String("ab".into()));
    let e = run("1 % 0", Value::Nil).unwrap_err();
    assert_eq!(e.position(), 0);
    let e = run("1 + 'a'", Value::Nil).unwrap_err();
    assert!(
        e.to_string().contains("mismatched types int and string"),
        "{e}"
    );
}

#[test]
fn comparison_and_nan() {
    assert_eq!(ok("1 == 1.0"), Value::Bool(true));
    assert_eq!(ok("1 < 1.5"), Value::Bool(true));
    assert_eq!(ok("'a' < 'b'"), Value::Bool(true));
    assert_eq!(ok("nil == nil"), Value::Bool(true));
    let nan = Value::Float(f64::NAN);
    for src in [
        "result == result",
        "result < 1",
        "result >= 1",
        "result > 1",
    ] {
        assert_eq!(run(src, nan.clone()).unwrap(), Value::Bool(false), "{src}");
    }
    assert_eq!(run("result != result", nan).unwrap(), Value::Bool(true));
    let e = run("result < 1", Value::String("x".into())).unwrap_err();
    assert_eq!(e.position(), 0);
}

#[test]
fn logic_and_ternary() {
    assert_eq!(ok("true && false || true"), Value::Bool(true));
    assert_eq!(ok("true and not false"), Value::Bool(true));
    assert_eq!(ok("!true or false"), Value::Bool(false));
    assert_eq!(ok("false && 1"), Value::Bool(false), "short circuit");
    assert_eq!(ok("1 > 2 ? 'a' : 'b'"), Value::String("b".into()));
    let e = run("true && 1", Value::Nil).unwrap_err();
    assert_eq!(e.position(), 8);
}

#[test]
fn member_index_and_in() {
    let r = map(&[
        ("a", map(&[("b", Value::Float(3.0))])),
        (
            "list",
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        ),
    ]);
    assert_eq!(run("result.a.b", r.clone()).unwrap(), Value::Float(3.0));
    assert_eq!(
        run("result['a']['b']", r.clone()).unwrap(),
        Value::Float(3.0)
    );
    assert_eq!(run("result.missing", r.clone()).unwrap(), Value::Nil);
    assert_eq!(run("result.list[-1]", r.clone()).unwrap(), Value::Int(3));
    assert_eq!(run("result.list[0]", r.clone()).unwrap(), Value::Int(1));
    assert_eq!(
        run("2.0 in result.list", r.clone()).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(run("'a' in result", r.clone()).unwrap(), Value::Bool(true));
    let e = run("result.list[5]", r.clone()).unwrap_err();
    assert_eq!(e.position(), 12);
    assert!(e.to_string().contains("index out of range"));
    let e = run("result.a.b.c", r).unwrap_err();
    assert_eq!(e.position(), 11);
}

#[test]
fn builtins() {
    let r = Value::Array(vec![
        Value::Float(1.0),
        Value::Float(5.0),
        Value::Float(3.0),
    ]);
    let t = |src: &str| run(src, r.clone()).unwrap();
    assert_eq!(t("len(result)"), Value::Int(3));
    assert_eq!(t("all(result, {# < 10})"), Value::Bool(true));
    assert_eq!(t("all(result, # > 1)"), Value::Bool(false));
    assert_eq!(t("any(result, {# > 4})"), Value::Bool(true));
    assert_eq!(t("none(result, {# > 5})"), Value::Bool(true));
    assert_eq!(t("one(result, {# > 4})"), Value::Bool(true));
    assert_eq!(t("count(result, {# > 2})"), Value::Int(2));
    assert_eq!(t("len(filter(result, {# > 2}))"), Value::Int(2));
    assert_eq!(t("map(result, {# * 2})[1]"), Value::Float(10.0));
    assert_eq!(t("max(result)"), Value::Float(5.0));
    assert_eq!(t("min(result)"), Value::Float(1.0));
    assert_eq!(ok("max(1, 2.5)"), Value::Float(2.5));
    assert_eq!(ok("abs(-3)"), Value::Int(3));
    assert_eq!(ok("asInt('12')"), Value::Int(12));
    assert_eq!(ok("asInt(1.9)"), Value::Int(1));
    let e = run("asInt('1.1')", Value::Nil).unwrap_err();
    assert!(
        e.to_string()
            .contains("strconv.ParseInt: parsing \"1.1\": invalid syntax")
    );
    assert_eq!(e.position(), 6);
    assert_eq!(ok("asFloat('1.5')"), Value::Float(1.5));
    assert!(run("asFloat('x')", Value::Nil).is_err());
    assert_eq!(
        run("isNaN(result)", Value::Float(f64::NAN)).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        run("isInf(result)", Value::Float(f64::NEG_INFINITY)).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(ok("isNil(result)"), Value::Bool(true));
    assert_eq!(ok("default(result, 7)"), Value::Int(7));
    // Argo: the first argument is ignored, `result` is always used.
    assert_eq!(
        run("default(nil, 7)", Value::Int(1)).unwrap(),
        Value::Int(1)
    );
}

#[test]
fn compile_errors_have_positions() {
    let cases: &[(&str, usize)] = &[
        ("1 +", 3),
        ("(1", 2),
        ("a == true", 0),
        ("result == foo", 10),
        ("'abc", 0),
        ("1 @ 2", 2),
        ("result.Name()", 11),
        ("len(1, 2)", 0),
        ("1 2", 2),
    ];
    for (src, pos) in cases {
        let e = Program::compile(src).unwrap_err();
        assert_eq!(e.position(), *pos, "{src}: {e}");
    }
    assert!(matches!(
        Program::compile("a").unwrap_err(),
        ExprError::UnknownName { position: 0, .. }
    ));
    let deep = "(".repeat(10_000) + "1" + &")".repeat(10_000);
    assert!(Program::compile(&deep).is_err());
    let chain = "1".to_string() + &" + 1".repeat(10_000);
    assert!(Program::compile(&chain).is_err());
}

#[test]
fn conditions() {
    assert_eq!(
        eval_condition("result == true", &Value::Bool(true)),
        Ok(true)
    );
    assert_eq!(
        eval_condition("1", &Value::Nil).unwrap_err(),
        ConditionError::NotBool { type_name: "int" }
    );
    assert_eq!(
        eval_condition("1", &Value::Nil).unwrap_err().to_string(),
        "expected bool, but got int"
    );
}

#[test]
fn evaluate_table() {
    use MeasurementPhase::*;
    let r = Value::Bool(true);
    let e = |s, f| evaluate_result(s, f, &r).phase;
    assert_eq!(e(None, None), Successful);
    assert_eq!(e(Some("true"), None), Successful);
    assert_eq!(e(Some("false"), None), Failed);
    assert_eq!(e(None, Some("true")), Failed);
    assert_eq!(e(None, Some("false")), Successful);
    assert_eq!(e(Some("true"), Some("true")), Failed);
    assert_eq!(e(Some("true"), Some("false")), Successful);
    assert_eq!(e(Some("false"), Some("false")), Inconclusive);
    let err = evaluate_result(Some("a == true"), None, &r);
    assert_eq!(err.phase, Error);
    assert!(
        err.message
            .unwrap()
            .starts_with("could not evaluate successCondition \"a == true\": ")
    );
    let empty = evaluate_result(Some("result[0] > 1"), None, &Value::Array(vec![]));
    assert!(
        empty
            .message
            .unwrap()
            .contains("metric result is nil or empty")
    );
    let nan = Value::Float(f64::NAN);
    assert_eq!(
        evaluate_result(Some("result >= 0.9"), None, &nan).phase,
        Failed
    );
    assert_eq!(
        evaluate_result(Some("result >= 0.9"), Some("result < 0.9"), &nan).phase,
        Inconclusive
    );
}

#[test]
fn measurement_values() {
    let j = |v: Value| format_measurement(&v, ValueStyle::Json);
    assert_eq!(j(Value::Float(10.0)), "10");
    assert_eq!(j(Value::Float(f64::INFINITY)), "+Inf");
    assert_eq!(j(Value::Float(1e-7)), "1e-07");
    assert_eq!(
        j(Value::Array(vec![Value::Float(11.0), Value::Float(0.5)])),
        "[11,0.5]"
    );
    assert_eq!(j(Value::String("0".into())), "\"0\"");
    assert_eq!(j(Value::Nil), "[]");
    assert_eq!(
        format_measurement(&Value::String("OK".into()), ValueStyle::RawString),
        "OK"
    );
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("result".to_string()),
        Just("nil".to_string()),
        Just("true".to_string()),
        Just("#".to_string()),
        (0i64..1_000_000).prop_map(|i| i.to_string()),
        (0.0f64..1e6).prop_map(|f| format!("{f:?}")),
        "[a-z '\"\\\\]{0,6}".prop_map(|s| format!("{s:?}")),
    ]
}

fn gen_expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 40, 3, |inner| {
        let ops = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "**", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "and",
            "or", "in",
        ]);
        let funcs = prop::sample::select(vec!["len", "abs", "isNil", "asInt", "isNaN"]);
        let preds =
            prop::sample::select(vec!["all", "any", "none", "one", "filter", "map", "count"]);
        prop_oneof![
            (inner.clone(), ops, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (prop::sample::select(vec!["-", "!", "not "]), inner.clone())
                .prop_map(|(op, a)| format!("{op}{a}")),
            inner.clone().prop_map(|a| format!("({a})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("{a} ? {b} : {c}")),
            (inner.clone(), "[a-z]{1,4}").prop_map(|(a, k)| format!("{a}.{k}")),
            (inner.clone(), inner.clone()).prop_map(|(a, k)| format!("{a}[{k}]")),
            (funcs, inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (preds, inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| format!("{f}({a}, {{{b}}})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("max({a}, {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("[{a}, {b}]")),
        ]
    })
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        "[a-z0-9.]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 20, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4).prop_map(Value::Map),
        ]
    })
}

proptest! {
    #[test]
    fn display_round_trips(src in gen_expr()) {
        // The generator only writes well-formed expressions, so parsing must succeed.
        let ast = parse(&src).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
        let printed = ast.to_string();
        let again: Expr = parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(&again, &ast, "{} printed as {}", src, printed);
        prop_assert_eq!(again.to_string(), printed);
    }

    #[test]
    fn generated_expressions_never_panic(src in gen_expr(), v in arb_value()) {
        if let Ok(p) = Program::compile(&src) {
            let _ = p.eval(&Env::new(v.clone()));
        }
        let _ = evaluate_result(Some(&src), Some(&src), &v);
    }

    #[test]
    fn arbitrary_strings_never_panic(src in "\\PC{0,40}", v in arb_value()) {
        if let Ok(p) = Program::compile(&src) {
            let _ = p.eval(&Env::new(v));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(src in "[ -~]{0,40}") {
        let _ = Program::compile(&src).map(|p| p.eval(&Env::new(Value::Nil)));
    }
}

#[test]
fn display_round_trips_examples() {
    let samples = [
        "result.a >= 2 && result.b && all(result.c, {# < 5}) && result.d == nil",
        "len(result) == 0 || result[0] >= 0.95",
        "all(result, # > 10)",
        "-2 ** -3 ** 2 % 4",
        "not true ? [1, 'x\"y', 2.5][-1] : result['k'].z",
        "default(result, 1) < 0.05 or isNaN(result) and 2 in result",
        "max(1, 2, 3) - min(result) / abs(-1.5e-7)",
        "map(filter(result, {# > 1}), {# * 2})",
    ];
    for src in samples {
        let ast = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let printed = ast.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(again, ast, "{src} printed as {printed}");
    }
}
