//! The run verdict rules (`rollout_analysis::run`) against the reference's examples,
//! plus a property: a final run phase is never better than its worst non-dry-run metric.

use proptest::prelude::*;
use rollout_analysis::run::{
    DryRunSummary, LastMeasurement, MetricCounters, MetricLimits, is_terminating, is_worse,
    limit_breach, metric_phase, record_measurement, run_phase, worst,
};
use rollout_core::status::AnalysisPhase;
use rollout_core::status::AnalysisPhase::{
    Error, Failed, Inconclusive, Pending, Running, Successful,
};

fn metric(name: &str) -> MetricLimits {
    MetricLimits {
        interval: Some("60s".into()),
        ..MetricLimits::new(name)
    }
}

fn counters(phases: &[AnalysisPhase]) -> MetricCounters {
    let mut c = MetricCounters::default();
    for p in phases {
        record_measurement(&mut c, *p);
    }
    c
}

#[test]
fn no_measurement_is_pending_or_successful_when_terminating() {
    let c = MetricCounters::default();
    assert_eq!(metric_phase(&metric("m"), &c, false), Pending);
    assert_eq!(metric_phase(&metric("m"), &c, true), Successful);
}

#[test]
fn in_flight_measurement_is_running() {
    let c = counters(&[Successful, Running]);
    assert_eq!(metric_phase(&metric("m"), &c, true), Running);
}

#[test]
fn completed_phase_sticks() {
    let c = MetricCounters {
        phase: Some(Failed),
        ..counters(&[Running])
    };
    assert_eq!(metric_phase(&metric("m"), &c, false), Failed);
}

#[test]
fn later_limit_checks_override_earlier_ones() {
    let mut c = counters(&[Failed, Inconclusive]);
    assert_eq!(metric_phase(&metric("m"), &c, false), Inconclusive);
    for _ in 0..5 {
        record_measurement(&mut c, Error);
    }
    assert_eq!(metric_phase(&metric("m"), &c, false), Error);
    let breach = limit_breach(&metric("m"), &c).expect("breach");
    assert_eq!(
        breach.reason,
        "consecutiveErrors (5) > consecutiveErrorLimit (4)"
    );
}

#[test]
fn consecutive_errors_at_the_limit_keep_running() {
    let c = counters(&[Error, Error, Error, Error]);
    assert_eq!(c.count, 0);
    assert_eq!(metric_phase(&metric("m"), &c, false), Running);
}

#[test]
fn count_reached_with_both_limits_is_inconclusive() {
    let l = MetricLimits {
        count: Some(3),
        failure_limit: Some(1),
        consecutive_success_limit: Some(3),
        ..metric("m")
    };
    let c = counters(&[Successful, Failed, Successful]);
    assert_eq!(metric_phase(&l, &c, false), Inconclusive);
    let only_success = MetricLimits {
        failure_limit: Some(-1),
        ..l.clone()
    };
    assert_eq!(metric_phase(&only_success, &c, false), Failed);
    let streak = counters(&[Failed, Successful, Successful, Successful]);
    assert_eq!(metric_phase(&l, &streak, false), Successful);
}

#[test]
fn no_interval_means_one_measurement() {
    let l = MetricLimits::new("once");
    assert_eq!(l.effective_count(), Some(1));
    assert_eq!(metric("m").effective_count(), None);
    assert_eq!(
        metric_phase(&l, &counters(&[Successful]), false),
        Successful
    );
}

#[test]
fn run_message_names_the_first_worst_metric() {
    let failed = MetricCounters {
        message: "Provider Error".into(),
        ..counters(&[Failed])
    };
    let metrics = vec![
        (MetricLimits::new("ok"), counters(&[Successful])),
        (MetricLimits::new("bad"), failed.clone()),
        (MetricLimits::new("bad-too"), counters(&[Failed])),
    ];
    let v = run_phase(&metrics, false);
    assert_eq!(v.phase, Failed);
    assert_eq!(
        v.message,
        "Metric \"bad\" assessed Failed due to failed (1) > failureLimit (0): \
         \"Error Message: Provider Error\""
    );
    assert_eq!(v.dry_run_summary, DryRunSummary::default());
}

#[test]
fn dry_run_metrics_only_feed_the_summary() {
    let dry = MetricLimits {
        dry_run: true,
        ..metric("dry")
    };
    let metrics = vec![
        (dry.clone(), counters(&[Failed])),
        (MetricLimits::new("once"), counters(&[Successful])),
    ];
    assert!(!is_terminating(false, &metrics));
    let v = run_phase(&metrics, false);
    assert_eq!(v.phase, Successful);
    assert_eq!(v.message, "");
    assert_eq!(
        v.dry_run_summary,
        DryRunSummary {
            count: 1,
            failed: 1,
            ..DryRunSummary::default()
        }
    );
    assert_eq!(
        v.metric_messages[0],
        "Metric assessed Failed due to failed (1) > failureLimit (0)"
    );
}

#[test]
fn terminating_ends_the_run_with_the_worst_so_far() {
    let metrics = vec![
        (metric("running"), counters(&[Successful])),
        (metric("idle"), MetricCounters::default()),
    ];
    assert_eq!(run_phase(&metrics, false).phase, Running);
    assert!(is_terminating(true, &metrics));
    assert_eq!(run_phase(&metrics, true).phase, Successful);
}

fn phase() -> impl Strategy<Value = AnalysisPhase> {
    prop::sample::select(vec![
        Successful,
        Running,
        Pending,
        Inconclusive,
        Error,
        Failed,
    ])
}

fn limits_strategy() -> impl Strategy<Value = MetricLimits> {
    (
        prop::option::of(0..6i32),
        prop::option::of(-1..4i32),
        prop::option::of(0..3i32),
        prop::option::of(0..3i32),
        prop::option::of(0..4i32),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(count, fl, il, el, sl, interval, dry_run)| MetricLimits {
            count,
            failure_limit: fl,
            inconclusive_limit: il,
            consecutive_error_limit: el,
            consecutive_success_limit: sl,
            interval: interval.then(|| "30s".to_string()),
            dry_run,
            ..MetricLimits::new("m")
        })
}

fn counters_strategy() -> impl Strategy<Value = MetricCounters> {
    (
        prop::option::of(phase()),
        prop::collection::vec(phase(), 0..8),
    )
        .prop_map(|(stored, measured)| MetricCounters {
            phase: stored,
            ..counters(&measured)
        })
}

proptest! {
    #[test]
    fn run_phase_is_never_better_than_the_worst_metric(
        metrics in prop::collection::vec((limits_strategy(), counters_strategy()), 1..5),
        terminating in any::<bool>(),
    ) {
        let v = run_phase(&metrics, terminating);
        prop_assert_eq!(v.metric_phases.len(), metrics.len());
        // While a metric is still measuring (and the run is not terminating) the run
        // reports Running, as Argo does; a final verdict is never better than any
        // completed non-dry-run metric.
        if !v.phase.is_completed() {
            prop_assert_eq!(v.phase, Running);
            prop_assert!(!terminating);
            prop_assert!(v.metric_phases.iter().any(|p| !p.is_completed()));
        }
        for ((limits, _), p) in metrics.iter().zip(&v.metric_phases) {
            if limits.dry_run || !p.is_completed() || !v.phase.is_completed() {
                continue;
            }
            prop_assert!(!is_worse(v.phase, *p), "run {:?} better than metric {:?}", v.phase, p);
        }
        let worst_completed = metrics
            .iter()
            .zip(&v.metric_phases)
            .filter(|((l, _), p)| !l.dry_run && p.is_completed())
            .map(|(_, p)| *p)
            .reduce(worst);
        if let Some(w) = worst_completed
            && (terminating || v.metric_phases.iter().all(|p| p.is_completed()))
        {
            prop_assert_eq!(v.phase, w);
        }
        let dry = metrics.iter().filter(|(l, _)| l.dry_run).count();
        prop_assert_eq!(usize::try_from(v.dry_run_summary.count).ok(), Some(dry));
    }

    #[test]
    fn metric_phase_never_panics_and_completed_phases_stick(
        limits in limits_strategy(),
        c in counters_strategy(),
        terminating in any::<bool>(),
    ) {
        let p = metric_phase(&limits, &c, terminating);
        if let Some(stored) = c.phase.filter(|s| s.is_completed()) {
            prop_assert_eq!(p, stored);
        }
        if c.last_measurement.is_some_and(|m: LastMeasurement| !m.is_finished()) && c.phase.is_none() {
            prop_assert_eq!(p, Running);
        }
    }
}
