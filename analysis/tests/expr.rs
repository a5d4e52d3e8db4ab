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

/// The checks of the `expr_compile` fuzz target (analysis/fuzz): a compiled program prints
/// to text that parses back to an equal tree and prints the same again, and evaluating it
/// never panics.
fn fuzz_checks(src: &str) {
    let Ok(program) = Program::compile(src) else {
        return;
    };
    let printed = program.ast().to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("{src:?} printed as {printed:?}: {e}"));
    assert_eq!(&again, program.ast(), "{src:?} printed as {printed:?}");
    assert_eq!(again.to_string(), printed, "{src:?}");
    let results = [
        Value::Nil,
        Value::Float(0.97),
        Value::Float(f64::NAN),
        Value::Int(-3),
        Value::String("0.5".into()),
        Value::Array(vec![
            Value::Float(0.99),
            Value::Float(f64::INFINITY),
            Value::Nil,
        ]),
        Value::Array(Vec::new()),
        map(&[
            ("a", Value::Float(2.0)),
            ("b", Value::Bool(true)),
            ("c", Value::Array(vec![Value::Int(1), Value::Int(7)])),
        ]),
    ];
    for result in results {
        let _ = program.eval(&Env::new(result));
    }
}

/// Every input the fuzzer ever crashed on (analysis/fuzz/regressions/, minimized) goes
/// through the fuzz target's checks, so CI keeps them fixed without a nightly toolchain.
#[test]
fn fuzz_regressions_compile() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut checked = 0;
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        if path.extension().is_some_and(|x| x == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The target only looks at UTF-8 input, as here.
        if let Ok(src) = std::str::from_utf8(&bytes) {
            fuzz_checks(src);
        }
        checked += 1;
    }
    assert!(checked > 0, "no regression inputs in {}", dir.display());
}

/// Found by the fuzzer: `9e999` used to become an infinite literal that printed as `inf`,
/// which does not parse. Go's `ParseFloat` (and so expr-lang) rejects it as out of range.
#[test]
fn float_literal_out_of_range_is_a_syntax_error() {
    let e = Program::compile("result < 9e999").unwrap_err();
    assert_eq!(e.position(), 9);
    assert!(
        e.to_string()
            .contains("invalid float literal 9e999: value out of range"),
        "{e}"
    );
    assert!(Program::compile("-1_0e9999").is_err());
    // Arithmetic may still overflow, and an underflowing literal is zero, as in Go.
    assert_eq!(ok("1e308 * 10"), Value::Float(f64::INFINITY));
    assert_eq!(ok("1e-400"), Value::Float(0.0));
    fuzz_checks("-2 *9e87777777777777777777\n -3 ** 2 ");
}

/// Found by the fuzzer: a program within the nesting limit printed (fully parenthesised)
/// to text beyond it. The limit is now on the tree's depth (24), which the parser's
/// nesting bound (100) leaves room for in any such tree's printed form.
#[test]
fn printed_form_of_a_deep_tree_parses_back() {
    let crash = "-2 *--2 *-----------------------------------------------------------4";
    fuzz_checks(crash);
    // 59 nested negations: deeper than the tree bound, so rejected up front now.
    assert!(Program::compile(crash).is_err());

    // The worst shapes at the limit, each a tree of depth exactly 24.
    let right_nested = "1 + (".repeat(23) + "1" + &")".repeat(23);
    let negations = "-".repeat(23) + "1";
    let pow_chain = "2 ** ".repeat(23) + "1";
    let member_chain = "result".to_string() + &"[0]".repeat(21) + "[" + &"-".repeat(21) + "1]";
    let ternaries = "true ? 1 : ".repeat(23) + "1";
    let predicates = "all(result, {".repeat(11) + "true" + &"})".repeat(11);
    for src in [
        &right_nested,
        &negations,
        &pow_chain,
        &member_chain,
        &ternaries,
        &predicates,
    ] {
        assert!(Program::compile(src).is_ok(), "{src}");
        fuzz_checks(src);
    }
    // One level deeper is rejected, with the position of the first node too deep.
    let e = Program::compile(&("-".repeat(24) + "1")).unwrap_err();
    assert_eq!(e.position(), 24, "{e}");
    assert!(e.to_string().contains("nested too deeply"), "{e}");
    // Parentheses alone do not deepen the tree, up to the parser's own bound.
    assert!(Program::compile(&("(".repeat(90) + "1" + &")".repeat(90))).is_ok());
}

/// Parsing at the nesting bound fits in a 1.5 MiB stack even in a debug build (threads
/// get 2 MiB by default).
#[test]
fn nesting_bound_fits_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(3 << 19)
        .spawn(|| {
            for src in [
                "(".repeat(99) + "1" + &")".repeat(99),
                "(".repeat(10_000) + "1" + &")".repeat(10_000),
                "-".repeat(1_000) + "1",
                "!".repeat(1_000) + "true",
                "2 ** ".repeat(1_000) + "1",
                "true ? 1 : ".repeat(1_000) + "1",
                "[".repeat(1_000) + &"]".repeat(1_000),
                "all(result, {".repeat(300) + "true" + &"})".repeat(300),
                "result".to_string() + &"[(".repeat(300) + "1" + &")]".repeat(300),
            ] {
                let _ = Program::compile(&src).map(|p| p.eval(&Env::new(Value::Nil)));
            }
        })
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    assert!(
        handle.join().is_ok(),
        "the parser overflowed a 1.5 MiB stack"
    );
}

#[test]
fn long_chains_of_one_operator_compile_and_print_flat() {
    let terms: Vec<String> = (0..200).map(|i| format!("result[{i}] > 0")).collect();
    let src = terms.join(" && ");
    let p = Program::compile(&src).expect("a 200-term chain compiles");
    let printed = p.ast().to_string();
    assert!(
        printed.starts_with("((result[0] > 0) && (result[1] > 0) && "),
        "{printed}"
    );
    let again = Program::compile(&printed).expect("the printed form compiles");
    assert_eq!(again.ast(), p.ast());
    let sums: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    let p = Program::compile(&format!("{} == 19900", sums.join(" + "))).expect("sum chain");
    assert_eq!(
        p.eval(&Env::new(Value::Nil)).expect("evaluates"),
        Value::Bool(true)
    );
    // Beyond 256 links the chain is a syntax error at the operator, not a stack overflow.
    let ones = vec!["1"; 100_000].join(" + ");
    assert!(matches!(
        Program::compile(&ones),
        Err(ExprError::Syntax { .. })
    ));
}
