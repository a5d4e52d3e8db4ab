//! The text exposition parser against `prometheus-parse` 0.2 on the same text.
//!
//! ```text
//! cargo bench -p rollout-benches --bench exposition
//! ```
//!
//! The input is a generated `/metrics` page of 1,040 lines: 20 metric families (counters
//! and gauges, each with `# HELP` and `# TYPE`), 50 samples each with three labels, some
//! with a millisecond timestamp. It holds only lines both parsers read the same way (no
//! commas, `=` or escapes in label values, no `:` in names, no histograms): the check
//! before timing asserts that both find the same 1,000 samples with the same values.
//!
//! * `ours`: `rollout_analysis::provider::exposition::parse(&str)`, which returns every
//!   sample (name, labels, value, timestamp) or the first malformed line's error.
//! * `prometheus_parse`: `prometheus_parse::Scrape::parse` over the lines as
//!   `io::Result<String>` items (the form its API takes, as from `BufRead::lines`; the
//!   line copies are part of its cost).

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rollout_analysis::provider::exposition;

/// The exposition text (1,040 lines).
fn page() -> String {
    let mut text = String::new();
    for family in 0..20 {
        let (kind, name) = if family % 2 == 0 {
            ("counter", format!("http_requests_{family}_total"))
        } else {
            ("gauge", format!("queue_depth_{family}"))
        };
        let _ = writeln!(text, "# HELP {name} Metric family number {family}.");
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for i in 0..50 {
            let method = ["GET", "POST", "PUT", "DELETE"][i % 4];
            let code = [200, 201, 404, 500, 503][i % 5];
            let value = (family * 1000 + i) as f64 * 1.25;
            let _ = write!(
                text,
                "{name}{{method=\"{method}\",code=\"{code}\",path=\"/api/v1/items/{i}\"}} {value}"
            );
            if i % 3 == 0 {
                let _ = write!(text, " {}", 1_767_225_600_000_i64 + i as i64);
            }
            text.push('\n');
        }
    }
    text
}

fn theirs(text: &str) -> std::io::Result<prometheus_parse::Scrape> {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
}

fn their_value(v: &prometheus_parse::Value) -> Option<f64> {
    match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => Some(*x),
        _ => None,
    }
}

fn bench_exposition(c: &mut Criterion) {
    let text = page();
    assert_eq!(text.lines().count(), 1040);

    // Both parsers must read the page the same way before anything is timed.
    let ours = exposition::parse(&text).unwrap_or_else(|e| panic!("ours: {e}"));
    let scrape = theirs(&text).unwrap_or_else(|e| panic!("prometheus-parse: {e}"));
    assert_eq!(ours.len(), 1000);
    assert_eq!(scrape.samples.len(), ours.len());
    for (a, b) in ours.iter().zip(&scrape.samples) {
        assert_eq!(a.name, b.metric);
        assert_eq!(Some(a.value), their_value(&b.value), "{}", a.name);
        for (k, v) in &a.labels {
            assert_eq!(b.labels.get(k), Some(v.as_str()), "{} {k}", a.name);
        }
    }

    let mut g = c.benchmark_group("exposition_1040_lines");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("ours", |b| b.iter(|| exposition::parse(black_box(&text))));
    g.bench_function("prometheus_parse", |b| b.iter(|| theirs(black_box(&text))));
    g.finish();
}

criterion_group!(benches, bench_exposition);
criterion_main!(benches);
