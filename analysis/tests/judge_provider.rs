//! Kayenta's outlier removal and the judge as a metric provider.

use std::sync::Arc;

use rollout_analysis::MeasurementPhase;
use rollout_analysis::expr::Value;
use rollout_analysis::judge::{Label, percentile_r7, remove_outliers};
use rollout_analysis::provider::judge::{JudgeProvider, Role, judge, judge_with, parse_spec};
use rollout_analysis::provider::{MeasureContext, Measured, Provider, ProviderError};
use rollout_analysis::runner::{AnalysisRuns, Providers, TemplateCatalog};
use rollout_analysis::template::Metric;
use rollout_core::status::AnalysisPhase;
use rollout_core::time::Timestamp;

fn metric(yaml: &str) -> Metric {
    serde_saphyr::from_str(yaml).expect("metric parses")
}

/// A seeded sample around `mean` (uniform noise of half-width `spread`).
fn sample(seed: u64, n: usize, mean: f64, spread: f64) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            mean + spread * (2.0 * u - 1.0)
        })
        .collect()
}

fn inline(values: &[f64]) -> String {
    let v: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
    format!("{{values: [{}]}}", v.join(", "))
}

fn judge_metric_yaml(control: &[f64], experiment: &[f64], extra: &str) -> Metric {
    metric(&format!(
        r#"
name: judge
provider:
  plugin:
    rollout-rs/judge:
      thresholds: {{pass: 90, marginal: 50}}
      metrics:
      - name: error-rate
        direction: increase
        {extra}
        control: {}
        experiment: {}
"#,
        inline(control),
        inline(experiment)
    ))
}

#[test]
fn r7_percentiles() {
    let d = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(percentile_r7(&d, 0.25), 1.75);
    assert_eq!(percentile_r7(&d, 0.5), 2.5);
    assert_eq!(percentile_r7(&d, 1.0), 4.0);
    assert_eq!(percentile_r7(&[7.0], 0.3), 7.0);
    assert!(percentile_r7(&[], 0.5).is_nan());
}

#[test]
fn iqr_outliers_are_removed_with_reduced_sensitivity() {
    let mut d: Vec<f64> = (1..=20).map(f64::from).collect();
    d.push(1000.0);
    // p99 = 20 + 0.8 * 980 = 804: 1000 lies beyond it and beyond p75 + 3 iqr = 46.
    let kept = remove_outliers(&d, 3.0);
    assert_eq!(kept.len(), 20);
    assert!(!kept.contains(&1000.0));
    // Without an extreme point nothing is removed; order and NaN are kept.
    let d = [5.0, f64::NAN, 1.0, 3.0];
    let kept = remove_outliers(&d, 3.0);
    assert_eq!(kept.len(), 4);
    assert_eq!(kept[0], 5.0);
}

#[test]
fn a_worse_canary_fails_and_a_similar_one_passes() {
    let control = sample(1, 50, 1.0, 0.2);
    let bad = sample(2, 50, 3.0, 0.2);
    let good = sample(3, 50, 1.0, 0.2);
    let m = judge_metric_yaml(&control, &bad, "critical: true");
    let spec = parse_spec(&m).expect("spec");
    let report = judge(&spec, &[(control.clone(), bad.clone())]).expect("judged");
    assert_eq!(report.metrics[0].1.label, Label::High);
    assert!(report.metrics[0].1.critical);
    assert_eq!(report.score.summary_score, 0.0);
    assert_eq!(report.phase(), MeasurementPhase::Failed);

    let m = judge_metric_yaml(&control, &good, "");
    let out = judge_with(&m, |_, _, _| unreachable!("inline values only")).expect("judged");
    assert_eq!(
        out,
        Measured::Verdict {
            phase: MeasurementPhase::Successful,
            value: Value::Float(100.0)
        }
    );
    // A lower error rate is not bad when only an increase is.
    let better = sample(4, 50, 0.2, 0.1);
    let m = judge_metric_yaml(&control, &better, "");
    let out = judge_with(&m, |_, _, _| unreachable!()).expect("judged");
    assert!(matches!(
        out,
        Measured::Verdict {
            phase: MeasurementPhase::Successful,
            ..
        }
    ));
}

#[test]
fn conditions_see_the_report() {
    let control = sample(1, 30, 1.0, 0.2);
    let bad = sample(2, 30, 3.0, 0.2);
    let mut m = judge_metric_yaml(&control, &bad, "");
    m.success_condition =
        Some("result.score >= 90 && result.metrics['error-rate'] == 'Pass'".into());
    let out = judge_with(&m, |_, _, _| unreachable!()).expect("judged");
    let Measured::Value(v) = out else {
        panic!("a value is expected: {out:?}")
    };
    let e = rollout_analysis::evaluate_result(m.success_condition.as_deref(), None, &v);
    assert_eq!(e.phase, MeasurementPhase::Failed);
}

#[test]
fn configuration_errors_name_the_field() {
    let m = judge_metric_yaml(
        &[1.0],
        &[2.0],
        "nanStrategy: drop\n        effectSize: {measure: ratio}",
    );
    let err = parse_spec(&m).unwrap_err();
    assert_eq!(
        err.to_string(),
        "judge provider: invalid plugin.rollout-rs/judge.metrics[0].effectSize.measure: unknown measure \"ratio\" (meanRatio or cles)"
    );
    let m = judge_metric_yaml(&[1.0], &[2.0], "outliers: {strategy: drop}");
    assert!(
        parse_spec(&m)
            .unwrap_err()
            .to_string()
            .contains("metrics[0].outliers.strategy")
    );
    let m = metric(
        "name: j\nprovider:\n  plugin:\n    rollout-rs/judge:\n      thresholds: {pass: 90}\n      metrics: []\n",
    );
    let err = parse_spec(&m).unwrap_err();
    assert!(err.to_string().contains("thresholds"), "{err}");
    let m = metric("name: j\nprovider:\n  web: {url: http://x}\n");
    assert!(matches!(parse_spec(&m), Err(ProviderError::Config { .. })));
}

#[test]
fn sources_fetch_what_is_not_inline() {
    let m = metric(
        r#"
name: judge
provider:
  plugin:
    rollout-rs/judge:
      thresholds: {pass: 90, marginal: 50}
      metrics:
      - name: latency
        control: {prometheus: {query: 'p99{version="stable"}'}}
        experiment: {prometheus: {query: 'p99{version="canary"}'}}
"#,
    );
    let mut asked = Vec::new();
    let out = judge_with(&m, |name, role, series| {
        asked.push((
            name.to_string(),
            role,
            series["prometheus"]["query"].clone(),
        ));
        Ok(sample(
            if role == Role::Control { 7 } else { 8 },
            40,
            100.0,
            5.0,
        ))
    })
    .expect("judged");
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0].1, Role::Control);
    assert!(matches!(
        out,
        Measured::Verdict {
            phase: MeasurementPhase::Successful,
            ..
        }
    ));
    // The async provider without a source refuses such series with a typed error.
    let p = JudgeProvider::new();
    let ctx = MeasureContext {
        namespace: "ns",
        run_name: "r",
        run_uid: None,
        measurement_index: 0,
    };
    let err = futures::executor::block_on(p.measure(&ctx, &m)).unwrap_err();
    assert!(err.to_string().contains("metrics[0].control"), "{err}");
}

#[test]
fn the_judge_runs_inside_an_analysis_run() {
    let control = sample(1, 40, 1.0, 0.2);
    let bad = sample(2, 40, 3.0, 0.2);
    let template = format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: judge}}
spec:
  metrics:
  - name: canary-vs-baseline
    provider:
      plugin:
        rollout-rs/judge:
          thresholds: {{pass: 90, marginal: 50}}
          metrics:
          - name: error-rate
            direction: increase
            control: {}
            experiment: {}
"#,
        inline(&control),
        inline(&bad)
    );
    let catalog = TemplateCatalog::from_yaml(&template).expect("template");
    let mut runs = AnalysisRuns::new(catalog.clone(), "ns");
    let analysis: rollout_core::spec::RolloutAnalysis =
        serde_saphyr::from_str("templates: [{templateName: judge}]").expect("analysis");
    let req = rollout_analysis::runner::RunRequest {
        namespace: "ns",
        rollout_name: "web",
        rollout_uid: None,
        rollout: None,
        name: "web-1",
        kind: rollout_core::canary::AnalysisRunKind::Background,
        analysis: &analysis,
        canary_hash: "a",
        stable_hash: "b",
    };
    runs.insert(rollout_analysis::runner::build_run(&catalog, &req).expect("run"));
    let providers =
        Providers::new().with("plugin:rollout-rs/judge", Arc::new(JudgeProvider::new()));
    let now = || Timestamp::from_secs(1_767_225_600);
    futures::executor::block_on(runs.measure(&providers, &now));
    let r = &runs.runs()[0];
    assert_eq!(
        r.status.phase,
        Some(AnalysisPhase::Failed),
        "{:?}",
        r.status
    );
    assert_eq!(r.status.metric_results[0].measurements[0].value, "0");
}
