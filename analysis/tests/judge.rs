//! Tests of the Kayenta-style judge (`rollout_analysis::judge`).

use std::collections::BTreeMap;

use proptest::prelude::*;
use rollout_analysis::judge::{
    Direction, EffectSizeMeasure, JudgeError, Label, MetricConfig, MetricResult, NanStrategy,
    ScoreClassification, classify, classify_mean_inequality, classify_score, cles,
    mann_whitney_u_test, mean_ratio, normal_quantile, round_half_up_2, score, shift_range,
    wilcoxon_diff, wilcoxon_root, zeroin,
};

fn near(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn normal_quantile_known_values() {
    assert!(near(normal_quantile(0.01), -2.326_347_874_040_841, 1e-14));
    assert!(near(normal_quantile(0.025), -1.959_963_984_540_054, 1e-14));
    assert!(near(normal_quantile(0.975), 1.959_963_984_540_054, 1e-14));
    assert_eq!(normal_quantile(0.5), 0.0);
    assert!(near(normal_quantile(1e-10), -6.361_340_902_404_056, 1e-12));
    assert!(near(normal_quantile(1e-300), -37.047_096_299_361_2, 1e-9));
    assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
    assert_eq!(normal_quantile(1.0), f64::INFINITY);
    assert!(normal_quantile(-0.1).is_nan());
    assert!(normal_quantile(1.1).is_nan());
    assert!(normal_quantile(f64::NAN).is_nan());
}

#[test]
fn normal_quantile_is_antisymmetric_and_monotone() {
    let mut prev = f64::NEG_INFINITY;
    for i in 1..1000 {
        let p = f64::from(i) / 1000.0;
        let z = normal_quantile(p);
        assert!(z > prev, "not increasing at {p}");
        assert!(near(z, -normal_quantile(1.0 - p), 1e-12));
        prev = z;
    }
}

#[test]
fn research_note_example_clamps_to_the_shift_range() {
    let e = [10.0, 20.0, 30.0, 40.0];
    let c = [1.0, 2.0, 3.0, 4.0];
    let r = mann_whitney_u_test(&e, &c, 0.95).unwrap();
    assert_eq!(r.lower_confidence, 6.0);
    assert_eq!(r.upper_confidence, 39.0);
    assert!(near(r.estimate, 22.5, 1e-6));
    assert_eq!(shift_range(&e, &c), Some((6.0, 39.0)));
}

#[test]
fn wilcoxon_diff_is_zero_centred_for_identical_samples() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert_eq!(wilcoxon_diff(0.0, 0.0, &x, &x).unwrap(), 0.0);
    // Decreasing in mu.
    let a = wilcoxon_diff(-1.0, 0.0, &x, &x).unwrap();
    let b = wilcoxon_diff(1.0, 0.0, &x, &x).unwrap();
    assert!(a > 0.0 && b < 0.0);
    // The quantile is subtracted.
    assert!(near(wilcoxon_diff(0.0, 1.5, &x, &x).unwrap(), -1.5, 1e-15));
    assert!(near(wilcoxon_root(0.0, &x, &x).unwrap(), 0.0, 1e-4));
}

#[test]
fn shifted_sample_estimate_recovers_the_shift() {
    let c: Vec<f64> = (0..40).map(|i| f64::from(i) * 0.37 % 5.0).collect();
    let e: Vec<f64> = c.iter().map(|v| v + 3.0).collect();
    let r = mann_whitney_u_test(&e, &c, 0.98).unwrap();
    assert!(near(r.estimate, 3.0, 1e-3), "{r:?}");
    assert!(
        r.lower_confidence < 3.0 && 3.0 < r.upper_confidence,
        "{r:?}"
    );
}

#[test]
fn errors_instead_of_panics() {
    assert_eq!(
        mann_whitney_u_test(&[], &[1.0], 0.95),
        Err(JudgeError::EmptySample)
    );
    assert_eq!(
        mann_whitney_u_test(&[1.0], &[], 0.95),
        Err(JudgeError::EmptySample)
    );
    assert_eq!(
        mann_whitney_u_test(&[1.0, f64::NAN], &[1.0, 2.0], 0.95),
        Err(JudgeError::NonFinite)
    );
    assert_eq!(
        mann_whitney_u_test(&[1.0, 2.0], &[1.0, 2.0], 1.0),
        Err(JudgeError::BadConfidence)
    );
    assert_eq!(
        mann_whitney_u_test(&[1.0, 2.0], &[1.0, 2.0], f64::NAN),
        Err(JudgeError::BadConfidence)
    );
    assert_eq!(
        wilcoxon_diff(0.0, 0.0, &[2.0, 2.0], &[2.0]),
        Err(JudgeError::AllTied)
    );
    assert_eq!(
        wilcoxon_diff(0.0, 0.0, &[], &[2.0]),
        Err(JudgeError::EmptySample)
    );
    assert_eq!(shift_range(&[], &[1.0]), None);
}

#[test]
fn zeroin_finds_a_simple_root_and_propagates_errors() {
    let r: Result<f64, ()> = zeroin(|x| Ok(x * x - 2.0), 0.0, 2.0, 1e-12, 1000);
    assert!(near(r.unwrap(), std::f64::consts::SQRT_2, 1e-10));
    let r: Result<f64, &str> = zeroin(|_| Err("boom"), 0.0, 1.0, 1e-4, 1000);
    assert_eq!(r, Err("boom"));
    // A root at an end point is returned as is.
    let r: Result<f64, ()> = zeroin(Ok, 0.0, 1.0, 1e-4, 1000);
    assert_eq!(r, Ok(0.0));
}

fn config() -> MetricConfig {
    let mut c = MetricConfig::default();
    c.tolerance = 0.1;
    c.confidence = 0.95;
    c
}

fn series(base: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| base + ((i * 7) % 11) as f64 * 0.1).collect()
}

#[test]
fn default_config_is_kayentas_judge() {
    let c = MetricConfig::default();
    assert_eq!(c.tolerance, 0.25);
    assert_eq!(c.confidence, 0.98);
    assert_eq!(c.direction, Direction::Either);
    assert_eq!(c.nan_strategy, NanStrategy::Remove);
    assert_eq!(c.allowed_increase, 1.0);
    let c = c.with_measure(EffectSizeMeasure::Cles);
    assert_eq!((c.allowed_decrease, c.critical_increase), (0.5, 0.5));
}

#[test]
fn classify_high_low_and_direction() {
    let low = series(10.0, 30);
    let high = series(20.0, 30);
    let cfg = config();
    assert_eq!(classify(&low, &high, &cfg).label, Label::High);
    assert_eq!(classify(&high, &low, &cfg).label, Label::Low);
    let mut dec = cfg;
    dec.direction = Direction::Decrease;
    assert_eq!(classify(&low, &high, &dec).label, Label::Pass);
    let mut inc = cfg;
    inc.direction = Direction::Increase;
    assert_eq!(classify(&high, &low, &inc).label, Label::Pass);
    let same = classify(&low, &low, &cfg);
    assert_eq!(same.label, Label::Pass);
    assert_eq!(same.deviation, 1.0);
}

#[test]
fn classify_missing_data() {
    let data = [1.0, 2.0, 3.0];
    let mut cfg = config();
    let r = classify(&data, &[], &cfg);
    assert_eq!(
        (r.label, r.critical, r.deviation),
        (Label::Nodata, false, 1.0)
    );
    cfg.must_have_data = true;
    assert_eq!(classify(&data, &[], &cfg).label, Label::NodataFailMetric);
    cfg.critical = true;
    let r = classify(&data, &[f64::NAN, f64::NAN], &cfg);
    assert_eq!((r.label, r.critical), (Label::Nodata, true));
    cfg.nan_strategy = NanStrategy::Replace;
    assert_eq!(classify(&[], &data, &cfg).label, Label::Pass);
    assert_eq!(
        classify_mean_inequality(&[], &data, &config()).deviation,
        0.0
    );
}

#[test]
fn classify_constant_samples_is_deterministic() {
    let e = [10.0; 5];
    let c = [0.0; 5];
    let a = classify(&c, &e, &config());
    let b = classify(&c, &e, &config());
    assert_eq!(a.label, Label::High);
    assert_eq!(a.label, b.label);
    assert!(a.deviation.is_nan());
    assert_eq!(classify(&[3.0; 4], &[3.0; 2], &config()).label, Label::Pass);
    let mut other_seed = config();
    other_seed.noise_seed = 42;
    assert_eq!(classify(&c, &e, &other_seed).label, Label::High);
}

#[test]
fn classify_critical_thresholds() {
    let e = [20.0, 22.0, 21.0, 25.0, 30.0];
    let c = [1.0, 2.2, 1.1, 2.5, 3.0];
    let mut cfg = config();
    cfg.critical = true;
    let r = classify(&c, &e, &cfg);
    assert_eq!((r.label, r.critical), (Label::High, true));
    cfg.critical_increase = 13.0;
    let r = classify(&c, &e, &cfg);
    assert_eq!((r.label, r.critical), (Label::High, false));
    assert!(near(r.deviation, mean_ratio(&c, &e), 0.0));
    assert!(near(r.deviation, 12.04, 0.01));
}

#[test]
fn cles_and_mean_ratio() {
    assert_eq!(cles(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
    assert_eq!(cles(&[3.0, 4.0], &[1.0, 2.0]), 0.0);
    assert_eq!(cles(&[1.0, 2.0], &[1.0, 2.0]), 0.5);
    assert!(cles(&[], &[1.0]).is_nan());
    assert_eq!(mean_ratio(&[2.0], &[4.0]), 2.0);
    assert!(mean_ratio(&[0.0], &[4.0]).is_nan());
}

#[test]
fn mean_inequality() {
    let a = [1.0, 2.0, 3.0];
    let b = [10.0, 20.0, 30.0];
    assert_eq!(
        classify_mean_inequality(&a, &b, &config()).label,
        Label::High
    );
    assert_eq!(
        classify_mean_inequality(&b, &a, &config()).label,
        Label::Low
    );
    assert_eq!(
        classify_mean_inequality(&a, &a, &config()).label,
        Label::Pass
    );
}

fn result(name: &str, label: Label, group: &str, critical: bool) -> MetricResult {
    MetricResult {
        name: name.into(),
        label,
        groups: vec![group.into()],
        critical,
        muted: false,
    }
}

#[test]
fn scoring_examples() {
    let none = BTreeMap::new();
    let three = [
        result("a", Label::Pass, "g", false),
        result("b", Label::High, "g", false),
        result("c", Label::Low, "g", false),
    ];
    assert_eq!(score(&none, &three).summary_score, 33.33);
    let mut w = BTreeMap::new();
    w.insert("g1".to_string(), 15.0);
    w.insert("g2".to_string(), 85.0);
    let r = [
        result("a", Label::High, "g1", false),
        result("b", Label::Low, "g1", false),
        result("c", Label::Pass, "g1", false),
        result("d", Label::High, "g2", false),
    ];
    assert_eq!(score(&w, &r).summary_score, 5.0);
    let crit = [
        result("a", Label::Pass, "g", false),
        result("b", Label::Nodata, "g", true),
    ];
    let s = score(&none, &crit);
    assert_eq!(s.summary_score, 0.0);
    assert!(s.reason.is_some());
    assert_eq!(score(&none, &[]).summary_score, 0.0);
}

#[test]
fn scoring_nodata_muted_and_unweighted_share() {
    let none = BTreeMap::new();
    let mut muted = result("m", Label::High, "g", true);
    muted.muted = true;
    let r = [result("a", Label::Pass, "g", false), muted];
    assert_eq!(score(&none, &r).summary_score, 100.0);
    // A group with only Nodata is flagged and counts as 100 when the run goes on.
    let r = [
        result("a", Label::Pass, "g1", false),
        result("b", Label::High, "g1", false),
        result("c", Label::Nodata, "g2", false),
    ];
    let s = score(&none, &r);
    let g2 = s.groups.iter().find(|g| g.name == "g2").unwrap();
    assert!(g2.no_data);
    assert_eq!(g2.score, 0.0);
    assert_eq!(s.summary_score, 75.0);
    // A configured weight for an absent group still uses budget.
    let mut w = BTreeMap::new();
    w.insert("absent".to_string(), 50.0);
    let r = [result("a", Label::Pass, "g", false)];
    assert_eq!(score(&w, &r).summary_score, 50.0);
}

#[test]
fn rounding_and_thresholds() {
    assert_eq!(round_half_up_2(33.333_333), 33.33);
    assert_eq!(round_half_up_2(0.125), 0.13);
    assert_eq!(round_half_up_2(66.666_666), 66.67);
    assert_eq!(round_half_up_2(-1.005), -1.01);
    assert!(round_half_up_2(f64::NAN).is_nan());
    assert_eq!(classify_score(95.0, 95.0, 75.0), ScoreClassification::Pass);
    assert_eq!(
        classify_score(80.0, 95.0, 75.0),
        ScoreClassification::Marginal
    );
    assert_eq!(classify_score(10.0, 95.0, 75.0), ScoreClassification::Fail);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn classify_never_panics(
        c in prop::collection::vec(prop_oneof![Just(f64::NAN), Just(0.0), -1e6f64..1e6], 0..20),
        e in prop::collection::vec(prop_oneof![Just(f64::NAN), Just(0.0), -1e6f64..1e6], 0..20),
        replace in any::<bool>(),
    ) {
        let mut cfg = MetricConfig::default();
        if replace {
            cfg.nan_strategy = NanStrategy::Replace;
        }
        let _ = classify(&c, &e, &cfg);
        let _ = classify_mean_inequality(&c, &e, &cfg);
    }

    #[test]
    fn interval_contains_estimate(
        c in prop::collection::vec(-100.0f64..100.0, 3..25),
        e in prop::collection::vec(-100.0f64..100.0, 3..25),
    ) {
        if let Ok(r) = mann_whitney_u_test(&e, &c, 0.95) {
            prop_assert!(r.lower_confidence <= r.estimate + 1e-3);
            prop_assert!(r.estimate <= r.upper_confidence + 1e-3);
        }
    }
}
