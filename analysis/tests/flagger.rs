//! Flagger's metric checks (`rollout_analysis::flagger`), reference B.11.

use proptest::prelude::*;
use rollout_analysis::flagger::{
    MetricKind, ThresholdRange, check_legacy_threshold, check_metric, check_request_duration_range,
    check_threshold_range,
};

#[test]
fn range_bounds_are_inclusive_and_optional() {
    assert!(check_threshold_range(100.0, Some(0.0), Some(100.0)));
    assert!(check_threshold_range(99.0, Some(99.0), None));
    assert!(!check_threshold_range(98.99, Some(99.0), None));
    assert!(check_threshold_range(500.0, None, Some(500.0)));
    assert!(!check_threshold_range(500.01, None, Some(500.0)));
    assert!(!check_threshold_range(f64::NAN, Some(0.0), Some(100.0)));
}

#[test]
fn request_duration_compares_whole_milliseconds() {
    // 500.7 ms truncates to 500 ms, within max 500.
    assert!(check_request_duration_range(500.7, None, Some(500.0)));
    assert!(!check_request_duration_range(501.2, None, Some(500.0)));
    let r = ThresholdRange {
        min: None,
        max: Some(500.0),
    };
    assert!(check_metric(
        MetricKind::RequestDuration,
        500.7,
        Some(r),
        0.0
    ));
    assert!(!check_metric(MetricKind::Query, 500.7, Some(r), 0.0));
}

#[test]
fn legacy_threshold_rules() {
    assert!(check_metric(
        MetricKind::RequestSuccessRate,
        99.5,
        None,
        99.0
    ));
    assert!(!check_metric(
        MetricKind::RequestSuccessRate,
        98.0,
        None,
        99.0
    ));
    assert!(check_metric(
        MetricKind::RequestDuration,
        500.0,
        None,
        500.0
    ));
    assert!(!check_metric(
        MetricKind::RequestDuration,
        501.0,
        None,
        500.0
    ));
    // A template metric with neither range nor threshold fails for any value above 0.
    assert!(!check_metric(MetricKind::Query, 0.1, None, 0.0));
    assert!(check_metric(MetricKind::Query, 0.0, None, 0.0));
    assert!(!check_legacy_threshold(
        MetricKind::RequestSuccessRate,
        f64::NAN,
        0.0
    ));
}

proptest! {
    #[test]
    fn range_check_matches_its_definition(
        v in -1e6f64..1e6,
        min in prop::option::of(-1e6f64..1e6),
        max in prop::option::of(-1e6f64..1e6),
    ) {
        let expected = min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m);
        prop_assert_eq!(check_threshold_range(v, min, max), expected);
    }
}
