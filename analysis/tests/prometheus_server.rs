//! The Prometheus provider against a REAL Prometheus server.
//!
//! The test writes an OpenMetrics file with known samples (request counters of a good
//! and a bad canary, a latency histogram, a latency gauge), backfills it into a fresh
//! TSDB with `promtool tsdb create-blocks-from openmetrics`, starts `prometheus` on a
//! free 127.0.0.1 port with no scrape targets (`rollout_testenv::prometheus`: under
//! `timeout`, so it stops by itself even if this process dies; killed on drop
//! otherwise), and asserts exact results of
//! instant and range queries at fixed times inside the data (the provider's clock is
//! pinned). Then it runs the corpus' `success-rate` AnalysisTemplate end to end: parse,
//! resolve args, measure through the provider, drive `machine::reconcile_with` in
//! virtual time until the run completes — Successful on the good canary, Failed on the
//! bad one.
//!
//! The data sit a few hours in the past, aligned on the hour, on a 15 s grid: every
//! query time used is a sample time, so the 5 m lookback and `irate` see exactly the
//! samples written. Needs `prometheus` and `promtool` on PATH (`./scripts/test.sh`
//! installs them); without them the test fails, it never passes silently.
#![cfg(feature = "http")]

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rollout_analysis::expr::Value;
use rollout_analysis::machine::{MeasurementResult, RunOptions, RunStatus, reconcile_with};
use rollout_analysis::provider::http::{Clock, HttpClient, PrometheusProvider};
use rollout_analysis::provider::{MeasureContext, Measured, Provider, ProviderError};
use rollout_analysis::template::{self, Argument, Metric, PrometheusMetric, TemplateDocument};
use rollout_core::status::AnalysisPhase;
use rollout_core::time::Timestamp;
use rollout_testenv::prometheus::Prometheus;

const STEP_S: i64 = 15;
const STEPS: i64 = 240; // one hour of samples
const GOOD: &str = "good.default.svc.cluster.local";
const BAD: &str = "bad.default.svc.cluster.local";

/// Per-step counter increments: (service, response_code, increment per 15 s).
const REQUESTS: [(&str, &str, i64); 4] = [
    (GOOD, "200", 1485), // 99 req/s
    (GOOD, "500", 15),   // 1 req/s   -> success rate 0.99
    (BAD, "200", 1200),  // 80 req/s
    (BAD, "500", 300),   // 20 req/s  -> success rate 0.8
];

/// Cumulative histogram bucket increments per step (`le`, increment).
const BUCKETS: [(&str, i64); 4] = [("0.1", 30), ("0.5", 60), ("1", 75), ("+Inf", 75)];

fn openmetrics(t0: i64) -> String {
    let mut out = String::new();
    out.push_str("# HELP istio_requests Requests.\n# TYPE istio_requests counter\n");
    for (svc, code, inc) in REQUESTS {
        for k in 0..=STEPS {
            let _ = writeln!(
                out,
                "istio_requests_total{{reporter=\"source\",destination_service=\"{svc}\",response_code=\"{code}\"}} {} {}",
                inc * k,
                t0 + k * STEP_S
            );
        }
    }
    out.push_str("# TYPE request_duration_seconds histogram\n");
    for (le, inc) in BUCKETS {
        for k in 0..=STEPS {
            let _ = writeln!(
                out,
                "request_duration_seconds_bucket{{service=\"good\",le=\"{le}\"}} {} {}",
                inc * k,
                t0 + k * STEP_S
            );
        }
    }
    for k in 0..=STEPS {
        let _ = writeln!(
            out,
            "request_duration_seconds_count{{service=\"good\"}} {} {}",
            75 * k,
            t0 + k * STEP_S
        );
    }
    for k in 0..=STEPS {
        let _ = writeln!(
            out,
            "request_duration_seconds_sum{{service=\"good\"}} {} {}",
            30 * k,
            t0 + k * STEP_S
        );
    }
    out.push_str("# TYPE http_latency_ms gauge\n");
    for (svc, f) in [
        ("bad", latency_bad as fn(i64) -> i64),
        ("good", latency_good),
    ] {
        for k in 0..=STEPS {
            let _ = writeln!(
                out,
                "http_latency_ms{{service=\"{svc}\"}} {} {}",
                f(k),
                t0 + k * STEP_S
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

fn latency_good(k: i64) -> i64 {
    100 + (k % 7) * 10
}

fn latency_bad(k: i64) -> i64 {
    100 + k * 10
}

fn start_prometheus(t0: i64) -> Prometheus {
    Prometheus::start(&openmetrics(t0)).unwrap_or_else(|e| panic!("{}", report(&e)))
}

/// The error and its sources, one per line.
fn report(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    out
}

/// A clock the test moves.
struct VirtualClock(AtomicI64);

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

const CTX: MeasureContext<'static> = MeasureContext {
    namespace: "default",
    run_name: "run",
    run_uid: None,
    measurement_index: 0,
};

struct Fixture {
    server: Prometheus,
    clock: Arc<VirtualClock>,
    provider: PrometheusProvider,
    t0: i64,
}

impl Fixture {
    fn at_step(&self, k: i64) -> Timestamp {
        Timestamp::from_secs(self.t0 + k * STEP_S)
    }

    fn set_now(&self, t: Timestamp) {
        self.clock.0.store(t.as_millis(), Ordering::SeqCst);
    }

    async fn query(&self, q: &str) -> Result<Value, ProviderError> {
        self.provider
            .query(&PrometheusMetric {
                address: Some(self.server.address()),
                query: Some(q.to_string()),
                ..PrometheusMetric::default()
            })
            .await
    }

    async fn range(&self, q: &str, start: &str, step: &str) -> Result<Value, ProviderError> {
        self.provider
            .query(&PrometheusMetric {
                address: Some(self.server.address()),
                query: Some(q.to_string()),
                range_query: Some(template::RangeQuery {
                    start: Some(start.to_string()),
                    end: Some("now()".into()),
                    step: Some(step.to_string()),
                }),
                ..PrometheusMetric::default()
            })
            .await
    }
}

fn floats(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|f| Value::Float(*f)).collect())
}

fn ok(r: Result<Value, ProviderError>) -> Value {
    r.unwrap_or_else(|e| panic!("query failed: {e}"))
}

fn success_rate_query(service: &str) -> String {
    format!(
        "sum(irate(istio_requests_total{{reporter=\"source\",destination_service=~\"{service}\",response_code!~\"5.*\"}}[5m])) / \
         sum(irate(istio_requests_total{{reporter=\"source\",destination_service=~\"{service}\"}}[5m]))"
    )
}

async fn check_queries(fx: &Fixture) {
    fx.set_now(fx.at_step(120));
    // A raw counter at a sample time.
    assert_eq!(
        ok(fx
            .query(&format!(
                "istio_requests_total{{destination_service=\"{GOOD}\",response_code=\"500\"}}"
            ))
            .await),
        floats(&[1800.0])
    );
    // The success rates the template computes.
    assert_eq!(
        ok(fx.query(&success_rate_query(GOOD)).await),
        floats(&[0.99])
    );
    assert_eq!(ok(fx.query(&success_rate_query(BAD)).await), floats(&[0.8]));
    // A scalar.
    assert_eq!(
        ok(fx
            .query(&format!(
                "scalar(sum(irate(istio_requests_total{{destination_service=\"{GOOD}\"}}[5m])))"
            ))
            .await),
        Value::Float(100.0)
    );
    // A histogram quantile: per second 2 <= 0.1, 4 <= 0.5, 5 <= 1; the median's rank
    // 2.5 falls in (0.1, 0.5], interpolated as Prometheus does.
    let want = 0.1 + (0.5 - 0.1) * ((2.5 - 2.0) / (4.0 - 2.0));
    assert_eq!(
        ok(fx
            .query(
                "histogram_quantile(0.5, sum by (le) (irate(request_duration_seconds_bucket{service=\"good\"}[5m])))"
            )
            .await),
        floats(&[want])
    );
    // Special floats.
    match ok(fx.query("vector(0) / 0").await) {
        Value::Array(v) => assert!(matches!(v.as_slice(), [Value::Float(f)] if f.is_nan())),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ok(fx.query("vector(1) / 0").await),
        floats(&[f64::INFINITY])
    );
    assert_eq!(
        ok(fx.query("vector(-1) / 0").await),
        floats(&[f64::NEG_INFINITY])
    );
    // No data: the empty list.
    assert_eq!(ok(fx.query("no_such_metric").await), Value::Array(vec![]));
    // The error envelope.
    match fx.query("sum(").await {
        Err(ProviderError::Query { error_type, .. }) => assert_eq!(error_type, "bad_data"),
        other => panic!("{other:?}"),
    }
    // A range query: the 5 minutes before step 120, one point a minute (4 steps).
    let want: Vec<f64> = (100..=120)
        .step_by(4)
        .map(|k| latency_bad(k) as f64)
        .collect();
    assert_eq!(
        ok(fx
            .range(
                "http_latency_ms{service=\"bad\"}",
                "now() - duration(\"5m\")",
                "1m"
            )
            .await),
        floats(&want)
    );
    // A matrix of two series is flattened, series in label order (bad, then good).
    let mut both = want.clone();
    both.extend((100..=120).step_by(4).map(|k| latency_good(k) as f64));
    assert_eq!(
        ok(fx
            .range("http_latency_ms", "now() - duration(\"5m\")", "1m")
            .await),
        floats(&both)
    );
}

fn corpus_metrics(service: &str, address: &str) -> Vec<Metric> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/corpus/argo-rollouts/docs__analysis__prometheus__0.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let TemplateDocument::AnalysisTemplate(t) =
        TemplateDocument::from_yaml(&text).unwrap_or_else(|e| panic!("parse: {e}"))
    else {
        panic!("not an AnalysisTemplate");
    };
    let args = [Argument {
        name: "service-name".into(),
        value: Some(service.into()),
        value_from: None,
    }];
    let mut resolved = template::resolve_args(&t.spec, &args).unwrap_or_else(|e| panic!("{e}"));
    for m in &mut resolved.metrics {
        if let Some(p) = m.provider.prometheus.as_mut() {
            // The template points at prometheus.example.com; use the test server.
            p.address = Some(address.to_string());
        }
    }
    resolved.metrics
}

/// Drives one AnalysisRun in virtual time from `start`. `stop_after`: terminate the run
/// (as a rollout does when it completes) after that many measurements.
async fn drive(
    fx: &Fixture,
    metrics: &[Metric],
    start: Timestamp,
    stop_after: Option<usize>,
) -> RunStatus {
    let mut status = RunStatus::default();
    let mut observed: Vec<MeasurementResult> = Vec::new();
    let mut now = start;
    let mut measured = 0usize;
    for _ in 0..100 {
        let terminate = stop_after.is_some_and(|n| measured >= n);
        let decision = reconcile_with(
            metrics,
            RunOptions::default(),
            &status,
            &observed,
            now,
            terminate,
        );
        let completed = decision.is_completed();
        let actions = decision.actions.clone();
        let requeue = decision.requeue_at;
        let next = decision.status.into_owned();
        status = next;
        observed.clear();
        if completed {
            return status;
        }
        for action in actions {
            let rollout_analysis::machine::RunAction::Measure { metric } = action else {
                continue;
            };
            let Some(m) = metrics.iter().find(|m| m.name == metric) else {
                panic!("unknown metric {metric}");
            };
            fx.set_now(now);
            measured += 1;
            observed.push(match fx.provider.measure(&CTX, m).await {
                Ok(Measured::Value(v)) => MeasurementResult::new(&metric, v, now),
                Ok(Measured::Verdict { phase, value }) => {
                    MeasurementResult::with_verdict(&metric, value, phase, now)
                }
                Ok(other) => panic!("{other:?}"),
                Err(e) => MeasurementResult::error(&metric, e.to_string(), now),
            });
        }
        if observed.is_empty() && stop_after.is_none_or(|n| measured < n) {
            now = requeue.unwrap_or_else(|| panic!("run stalled: {status:?}"));
        }
    }
    panic!("run did not complete: {status:?}");
}

async fn check_corpus_template(fx: &Fixture) {
    // Start 20 minutes into the data; the metric measures every 5 minutes.
    let start = fx.at_step(80);

    let good = drive(
        fx,
        &corpus_metrics(GOOD, &fx.server.address()),
        start,
        Some(4),
    )
    .await;
    assert_eq!(good.phase, Some(AnalysisPhase::Successful), "{good:#?}");
    let r = good
        .metric_result("success-rate")
        .unwrap_or_else(|| panic!("no result: {good:#?}"));
    assert_eq!(r.successful, 4, "{good:#?}");
    assert!(
        r.measurements.iter().all(|m| m.value == "[0.99]"),
        "{good:#?}"
    );

    let bad = drive(fx, &corpus_metrics(BAD, &fx.server.address()), start, None).await;
    assert_eq!(bad.phase, Some(AnalysisPhase::Failed), "{bad:#?}");
    let r = bad
        .metric_result("success-rate")
        .unwrap_or_else(|| panic!("no result: {bad:#?}"));
    // failureLimit 3: the fourth failed measurement fails the run.
    assert_eq!(r.failed, 4, "{bad:#?}");
    assert_eq!(r.phase, AnalysisPhase::Failed);
    assert!(
        r.measurements.iter().all(|m| m.value == "[0.8]"),
        "{bad:#?}"
    );
    let times: Vec<i64> = r
        .measurements
        .iter()
        .filter_map(|m| m.finished_at.map(|t| t.millis_since(start) / 1000))
        .collect();
    assert_eq!(times, vec![0, 300, 600, 900]);
}

#[tokio::test]
async fn real_prometheus_queries_and_corpus_template() {
    // Four hours ago, on the hour: older than anything Prometheus' head would hold.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let t0 = (now_s - 4 * 3600).div_euclid(3600) * 3600;
    let server = start_prometheus(t0);
    let clock = Arc::new(VirtualClock(AtomicI64::new(0)));
    let provider = PrometheusProvider::new(HttpClient::new()).with_clock(clock.clone());
    let fx = Fixture {
        server,
        clock,
        provider,
        t0,
    };
    check_queries(&fx).await;
    check_corpus_template(&fx).await;
}
