//! Fuzzes the condition language front end: any UTF-8 text either fails to compile with an
//! error, or compiles to a tree whose `Display` parses back to an equal tree (and prints
//! the same text again); evaluating a compiled program against a few fixed results never
//! panics.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use rollout_analysis::expr::{Env, Program, Value, parse};

fn results() -> Vec<Value> {
    let mut map = BTreeMap::new();
    map.insert("a".to_string(), Value::Float(2.0));
    map.insert("b".to_string(), Value::Bool(true));
    map.insert(
        "c".to_string(),
        Value::Array(vec![Value::Int(1), Value::Int(7)]),
    );
    vec![
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
        Value::Map(map),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(program) = Program::compile(src) else {
        return;
    };
    let printed = program.ast().to_string();
    let again = match parse(&printed) {
        Ok(ast) => ast,
        Err(e) => panic!("{src:?} printed as {printed:?}, which does not parse: {e}"),
    };
    assert_eq!(&again, program.ast(), "{src:?} printed as {printed:?}");
    assert_eq!(
        again.to_string(),
        printed,
        "{src:?}: printing is not stable"
    );
    for result in results() {
        let _ = program.eval(&Env::new(result));
    }
});
