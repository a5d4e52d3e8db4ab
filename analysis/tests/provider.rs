//! Provider result parsing (`rollout_analysis::provider`): the Prometheus HTTP API response
//! and the text exposition format.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rollout_analysis::expr::Value;
use rollout_analysis::provider::exposition::{self, Sample};
use rollout_analysis::provider::prometheus::{
    PrometheusError, QueryData, parse_response, to_value,
};

fn value_of(body: &str) -> Value {
    to_value(&parse_response(body.as_bytes()).expect("parses"))
}

#[test]
fn scalar_becomes_a_float() {
    let v = value_of(
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"0.97"]}}"#,
    );
    assert_eq!(v, Value::Float(0.97));
}

#[test]
fn vector_of_two_becomes_a_list() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"pod":"a"},"value":[1700000000,"1"]},
        {"metric":{"pod":"b"},"value":[1700000000,"2.5"]}]}}"#;
    let r = parse_response(body.as_bytes()).unwrap();
    match &r.data {
        QueryData::Vector(s) => {
            assert_eq!(s.len(), 2);
            assert_eq!(s[1].metric.get("pod").map(String::as_str), Some("b"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        to_value(&r),
        Value::Array(vec![Value::Float(1.0), Value::Float(2.5)])
    );
}

#[test]
fn matrix_is_flattened() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1,"11"],[2,"12"]]},
        {"metric":{"x":"y"},"values":[[1,"13"],[2,"14"]]}]}}"#;
    let v = value_of(body);
    assert_eq!(
        v,
        Value::Array(
            [11.0, 12.0, 13.0, 14.0]
                .into_iter()
                .map(Value::Float)
                .collect()
        )
    );
}

#[test]
fn string_result_is_a_string() {
    let v = value_of(r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#);
    assert_eq!(v, Value::String("hello".into()));
}

#[test]
fn empty_results_are_no_values() {
    for body in [
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[]}]}}"#,
    ] {
        let err = parse_response(body.as_bytes()).unwrap_err();
        assert_eq!(err, PrometheusError::NoValues);
        assert_eq!(err.to_string(), "no values found");
    }
}

#[test]
fn error_envelope_is_typed() {
    let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5","warnings":["w"]}"#;
    assert_eq!(
        parse_response(body.as_bytes()).unwrap_err(),
        PrometheusError::Api {
            error_type: "bad_data".into(),
            error: "parse error at char 5".into()
        }
    );
}

#[test]
fn warnings_and_infos_are_kept() {
    let body = r#"{"status":"success","warnings":["w1"],"infos":["i1"],
        "data":{"resultType":"scalar","result":[1,"1"]}}"#;
    let r = parse_response(body.as_bytes()).unwrap();
    assert_eq!(r.warnings, vec!["w1".to_string()]);
    assert_eq!(r.infos, vec!["i1".to_string()]);
}

#[test]
fn nan_and_infinities_parse_go_style() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{},"value":[1,"NaN"]},{"metric":{},"value":[1,"+Inf"]},
        {"metric":{},"value":[1,"-Inf"]},{"metric":{},"value":[1,"1e3"]}]}}"#;
    let Value::Array(items) = value_of(body) else {
        panic!("not an array")
    };
    let f: Vec<f64> = items
        .iter()
        .map(|v| match v {
            Value::Float(f) => *f,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(f[0].is_nan());
    assert_eq!(f[1], f64::INFINITY);
    assert_eq!(f[2], f64::NEG_INFINITY);
    assert_eq!(f[3], 1000.0);
    let Value::Float(s) =
        value_of(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#)
    else {
        panic!("not a float")
    };
    assert!(s.is_nan());
}

#[test]
fn malformed_fields_report_their_json_path() {
    let cases = [
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},{"metric":{},"value":[1,"abc"]}]}}"#,
            "data.result[1].value[1]",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":5},"value":[1,"1"]}]}}"#,
            "data.result[0].metric.a",
        ),
        (
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],["x","2"]]}]}}"#,
            "data.result[0].values[1][0]",
        ),
        (r#"{"status":"weird"}"#, "status"),
        (
            r#"{"status":"success","data":{"resultType":"table","result":[]}}"#,
            "data.resultType",
        ),
    ];
    for (body, want) in cases {
        match parse_response(body.as_bytes()) {
            Err(PrometheusError::Malformed { path, .. }) => assert_eq!(path, want, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    assert!(matches!(
        parse_response(b"{not json"),
        Err(PrometheusError::Malformed { .. })
    ));
    assert!(matches!(
        parse_response(br#"{"status":"success"}"#),
        Err(PrometheusError::Malformed { path, .. }) if path == "data"
    ));
}

#[test]
fn native_histograms_are_rejected() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{},"histogram":[1,{"count":"2","sum":"3","buckets":[]}]}]}}"#;
    assert_eq!(
        parse_response(body.as_bytes()).unwrap_err(),
        PrometheusError::NativeHistogram {
            path: "data.result[0].histogram".into()
        }
    );
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"histograms":[[1,{"count":"2","sum":"3"}]]}]}}"#;
    assert!(matches!(
        parse_response(body.as_bytes()),
        Err(PrometheusError::NativeHistogram { .. })
    ));
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// The prometheus-parse 0.2.5 bugs (rust-ecosystem.md 1.5), each handled.

#[test]
fn label_value_with_comma_is_kept_whole() {
    let s = exposition::parse("http_requests_total{path=\"/a,b\",code=\"200\"} 3\n").unwrap();
    assert_eq!(s[0].labels, labels(&[("path", "/a,b"), ("code", "200")]));
}

#[test]
fn recording_rule_names_with_colons_parse() {
    let s = exposition::parse("job:http_requests:rate5m{job=\"api\"} 12.5\n").unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "job:http_requests:rate5m");
    assert_eq!(s[0].value, 12.5);
}

#[test]
fn escaped_quotes_backslashes_and_newlines_unescape() {
    let s = exposition::parse(r#"m{msg="say \"hi\"",p="C:\\dir",n="a\nb"} 1"#).unwrap();
    assert_eq!(
        s[0].labels,
        labels(&[("msg", "say \"hi\""), ("p", "C:\\dir"), ("n", "a\nb")])
    );
}

#[test]
fn label_value_with_equals_is_kept() {
    let s = exposition::parse("m{q=\"a=b\",r=\"==\"} 1\n").unwrap();
    assert_eq!(s[0].labels, labels(&[("q", "a=b"), ("r", "==")]));
}

#[test]
fn unparsable_value_is_an_error_not_skipped() {
    let err = exposition::parse("ok 1\nbad{a=\"b\"} twelve\nok 2\n").unwrap_err();
    assert_eq!((err.line, err.column), (2, 12));
    assert!(err.message.contains("twelve"), "{err}");
}

#[test]
fn timestamps_are_taken_from_the_text() {
    let s = exposition::parse("m 1 1700000000000\nn 2\n").unwrap();
    assert_eq!(s[0].timestamp_ms, Some(1_700_000_000_000));
    assert_eq!(s[1].timestamp_ms, None);
    // Deterministic: parsing twice gives the same result.
    assert_eq!(
        exposition::parse("n 2\n").unwrap(),
        exposition::parse("n 2\n").unwrap()
    );
}

#[test]
fn full_exposition_with_comments_and_special_values() {
    let text = "# HELP http_requests_total The total.\n\
                # TYPE http_requests_total counter\n\
                http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                \n\
                # a free comment\n\
                rpc_duration_seconds{quantile=\"0.5\"} NaN\n\
                up +Inf\n\
                down -Inf\n\
                metric_without_timestamp_and_labels 12.47\n";
    let s = exposition::parse(text).unwrap();
    assert_eq!(s.len(), 5);
    assert!(s[1].value.is_nan());
    assert_eq!(s[2].value, f64::INFINITY);
    assert_eq!(s[3].value, f64::NEG_INFINITY);
    assert!(s[4].labels.is_empty());
}

#[test]
fn strictness() {
    for (text, line) in [
        ("m{a=\"b\" 1", 1),
        ("m{a=\"b\\x\"} 1", 1),
        ("m{a=\"b\",a=\"c\"} 1", 1),
        ("1m 1", 1),
        ("m 1 notatime", 1),
        ("m 1 2 3", 1),
        ("ok 1\n# TYPE m weird", 2),
        ("m", 1),
        ("m{a=b} 1", 1),
    ] {
        let err = exposition::parse(text).unwrap_err();
        assert_eq!(err.line, line, "{text}: {err}");
    }
}

fn sample_strategy() -> impl Strategy<Value = Sample> {
    let name = "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}";
    let label_name = "[a-zA-Z_][a-zA-Z0-9_]{0,8}";
    let label_value = prop_oneof![
        "[ -~]{0,12}",
        Just("say \"hi\"".to_string()),
        Just("a,b=c".to_string()),
        Just("back\\slash\nnewline".to_string()),
        "[\"\\\\\n,={} a-zé]{0,10}",
    ];
    let value = prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        -1e6f64..1e6,
    ];
    (
        name,
        proptest::collection::btree_map(label_name, label_value, 0..4),
        value,
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(name, labels, value, timestamp_ms)| Sample {
            name,
            labels,
            value,
            timestamp_ms,
        })
}

proptest! {
    #[test]
    fn render_parse_round_trip(samples in proptest::collection::vec(sample_strategy(), 0..6)) {
        let text = exposition::render(&samples);
        let back = exposition::parse(&text).unwrap();
        prop_assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            prop_assert_eq!(&a.name, &b.name);
            prop_assert_eq!(&a.labels, &b.labels);
            prop_assert_eq!(a.timestamp_ms, b.timestamp_ms);
            if a.value.is_nan() {
                prop_assert!(b.value.is_nan());
            } else {
                prop_assert_eq!(a.value.to_bits(), b.value.to_bits());
            }
        }
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,200}") {
        let _ = exposition::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_near_valid_input(text in "[a-z:_{}=\",\\\\ #\n0-9.+-]{0,80}") {
        let _ = exposition::parse(&text);
    }

    #[test]
    fn prometheus_parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_response(&body);
    }
}
