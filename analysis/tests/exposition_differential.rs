//! Differential test of the exposition parser against the `prometheus-parse` crate.
//!
//! Where `prometheus-parse` reads a sample the way the text format defines it, ours must
//! read it identically (name, labels, value, timestamp). The inputs where they differ
//! are listed in [`DISAGREEMENTS`], each with the reason and the result the format
//! defines, which ours must produce; that list also asserts that `prometheus-parse`
//! still differs, so a fix upstream shows up here. Generated inputs (simple names,
//! labels and values both parsers understand) must agree exactly.
//!
//! Only untyped, counter and gauge samples are compared: `prometheus-parse` folds
//! histogram and summary lines into one grouped value.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rollout_analysis::provider::exposition::{self, Sample};

/// The timestamp we ask `prometheus-parse` to stamp on samples without one:
/// 2100-01-01T00:00:00.123Z in milliseconds, which no input uses.
fn sentinel() -> i64 {
    4_102_444_800_123
}

/// A sample as compared: name, labels, value bits (NaN equal to NaN), timestamp.
type Row = (String, BTreeMap<String, String>, u64, Option<i64>);

fn bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

fn ours(text: &str) -> Result<Vec<Row>, exposition::ExpositionError> {
    Ok(exposition::parse(text)?
        .into_iter()
        .map(|s: Sample| (s.name, s.labels, bits(s.value), s.timestamp_ms))
        .collect())
}

fn theirs(text: &str) -> Vec<Row> {
    use prometheus_parse::{Scrape, Value};
    let at = chrono_at(sentinel());
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = Scrape::parse_at(lines, at).unwrap_or_else(|e| panic!("prometheus-parse: {e}"));
    scrape
        .samples
        .into_iter()
        .filter_map(|s| {
            let v = match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => return None,
            };
            let ts = s.timestamp.timestamp_millis();
            let labels: BTreeMap<String, String> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Some((s.metric, labels, bits(v), (ts != sentinel()).then_some(ts)))
        })
        .collect()
}

fn chrono_at(ms: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(|| panic!("bad sentinel {ms}"))
}

fn row(name: &str, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> Row {
    (
        name.to_string(),
        labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        bits(value),
        ts,
    )
}

/// Inputs both parsers read the same way.
fn agreements() -> Vec<(&'static str, Vec<Row>)> {
    vec![
        (
            "a 1\nb{x=\"y\"} 2 1700000000000\n",
            vec![
                row("a", &[], 1.0, None),
                row("b", &[("x", "y")], 2.0, Some(1_700_000_000_000)),
            ],
        ),
        (
            "# HELP m Some help.\n# TYPE m counter\nm 3\n# just a comment\n\nm_created 1.5e9\n",
            vec![row("m", &[], 3.0, None), row("m_created", &[], 1.5e9, None)],
        ),
        (
            "nan_value NaN\ninf_value +Inf\nneg_inf -Inf\n",
            vec![
                row("nan_value", &[], f64::NAN, None),
                row("inf_value", &[], f64::INFINITY, None),
                row("neg_inf", &[], f64::NEG_INFINITY, None),
            ],
        ),
        (
            "# TYPE g gauge\ng{a=\"x y\",b=\"/path/to\"} -0.5 -1000\n",
            vec![row(
                "g",
                &[("a", "x y"), ("b", "/path/to")],
                -0.5,
                Some(-1000),
            )],
        ),
        ("  padded   7  \n", vec![row("padded", &[], 7.0, None)]),
    ]
}

/// Inputs where `prometheus-parse` is wrong, with why, and what the format defines.
#[allow(clippy::type_complexity)]
fn disagreements() -> Vec<(&'static str, &'static str, Result<Vec<Row>, usize>)> {
    vec![
        (
            "label value with a comma: prometheus-parse splits labels on ',' and keeps `/a`",
            "http_requests_total{path=\"/a,b\",code=\"200\"} 5\n",
            Ok(vec![row(
                "http_requests_total",
                &[("path", "/a,b"), ("code", "200")],
                5.0,
                None,
            )]),
        ),
        (
            "label value with '=': prometheus-parse splits on '=' and drops the label",
            "m{q=\"a=b\"} 1\n",
            Ok(vec![row("m", &[("q", "a=b")], 1.0, None)]),
        ),
        (
            "escaped quotes: prometheus-parse does not unescape (and trims the wrong quote)",
            "m{msg=\"say \\\"hi\\\"\"} 1\n",
            Ok(vec![row("m", &[("msg", "say \"hi\"")], 1.0, None)]),
        ),
        (
            "escaped backslash and newline: the format defines \\\\ and \\n; prometheus-parse keeps them raw",
            "m{p=\"C:\\\\dir\",n=\"a\\nb\"} 1\n",
            Ok(vec![row(
                "m",
                &[("p", "C:\\dir"), ("n", "a\nb")],
                1.0,
                None,
            )]),
        ),
        (
            "metric names may contain ':' (recording rules); prometheus-parse drops the line",
            "job:http_requests:rate5m{job=\"api\"} 0.25\n",
            Ok(vec![row(
                "job:http_requests:rate5m",
                &[("job", "api")],
                0.25,
                None,
            )]),
        ),
        (
            "an empty label set is valid; prometheus-parse's regex needs one character in braces",
            "m{} 1\n",
            Ok(vec![row("m", &[], 1.0, None)]),
        ),
        (
            "a label value containing '}' ends prometheus-parse's label match early",
            "m{a=\"}\"} 1\n",
            Ok(vec![row("m", &[("a", "}")], 1.0, None)]),
        ),
        (
            "an unparsable value is an error (line 2); prometheus-parse skips the line silently",
            "ok 1\nbad abc\n",
            Err(2),
        ),
        (
            "trailing tokens after the timestamp are an error; prometheus-parse ignores them",
            "m 1 2 3\n",
            Err(1),
        ),
        (
            "an unterminated label set is an error; prometheus-parse drops the line",
            "ok 1\n\nm{a=\"1\" 2\n",
            Err(3),
        ),
        (
            "a fractional timestamp is invalid (milliseconds are integers); prometheus-parse \
             replaces it with the scrape time",
            "m 1 1.5\n",
            Err(1),
        ),
    ]
}

#[test]
fn agrees_where_prometheus_parse_is_right() {
    for (input, want) in agreements() {
        assert_eq!(ours(input).as_ref().ok(), Some(&want), "ours on {input:?}");
        assert_eq!(theirs(input), want, "prometheus-parse on {input:?}");
    }
}

#[test]
fn listed_disagreements_ours_is_the_format() {
    for (why, input, want) in disagreements() {
        match (&want, ours(input)) {
            (Ok(rows), Ok(got)) => assert_eq!(&got, rows, "{why}"),
            (Err(line), Err(e)) => assert_eq!(e.line, *line, "{why}: {e}"),
            (_, got) => panic!("{why}: ours gave {got:?}"),
        }
        let theirs = theirs(input);
        assert_ne!(
            Ok(theirs.clone()),
            want,
            "prometheus-parse now agrees on {input:?} ({why}): move it to the agreements"
        );
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,8}"
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-z][a-z0-9_]{0,5}", "[a-zA-Z0-9 ./_-]{1,8}", 0..4)
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        (-1e6f64..1e6),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Simple generated expositions: both parsers read the same samples.
    #[test]
    fn generated_inputs_agree(
        samples in proptest::collection::vec(
            (name(), labels(), value(), proptest::option::of(0i64..4_000_000_000_000)),
            1..8,
        )
    ) {
        let samples: Vec<Sample> = samples
            .into_iter()
            .map(|(name, labels, value, timestamp_ms)| Sample { name, labels, value, timestamp_ms })
            .collect();
        let text = exposition::render(&samples);
        let mine = ours(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&mine, &theirs(&text), "{}", text);
    }

    /// Tricky generated label values (commas, '=', quotes, backslashes, newlines, braces)
    /// survive render and parse in ours, whatever prometheus-parse makes of them.
    #[test]
    fn tricky_label_values_round_trip(
        name in "[a-z_:][a-z0-9_:]{0,8}",
        labels in proptest::collection::btree_map(
            "[a-z][a-z0-9_]{0,5}", "[a-z,=\"\\\\\n{} ]{0,10}", 0..4),
        value in value(),
    ) {
        let samples = vec![Sample { name, labels, value, timestamp_ms: None }];
        let text = exposition::render(&samples);
        let back = exposition::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.len(), 1);
        prop_assert_eq!(&back[0].name, &samples[0].name);
        prop_assert_eq!(&back[0].labels, &samples[0].labels);
        prop_assert_eq!(bits(back[0].value), bits(samples[0].value));
    }
}
