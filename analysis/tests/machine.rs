//! The AnalysisRun machine (`rollout_analysis::machine`) driven in virtual time.

use std::borrow::Cow;

use rollout_analysis::expr::Value;
use rollout_analysis::machine::{
    ERROR_RETRY_SECONDS, METRIC_TERMINATED, MeasurementResult, RUN_TERMINATED, RunAction,
    RunDecision, RunOptions, RunStatus, reconcile, reconcile_with,
};
use rollout_analysis::template::{DryRun, IntOrString, MeasurementRetention, Metric};
use rollout_core::status::AnalysisPhase;
use rollout_core::time::Timestamp;

const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

fn at(secs: i64) -> Timestamp {
    T0.add_secs(secs)
}

fn metric(name: &str) -> Metric {
    Metric {
        name: name.into(),
        success_condition: Some("result > 0.5".into()),
        ..Metric::default()
    }
}

fn periodic(name: &str, interval: &str, count: i64) -> Metric {
    Metric {
        interval: Some(interval.into()),
        count: Some(IntOrString::Int(count)),
        ..metric(name)
    }
}

fn measure(name: &str) -> RunAction {
    RunAction::Measure {
        metric: name.into(),
    }
}

fn ok(name: &str, v: f64, secs: i64) -> MeasurementResult {
    MeasurementResult::new(name, Value::Float(v), at(secs))
}

/// Runs one pass and returns the owned status plus the decision's other parts.
fn pass(
    metrics: &[Metric],
    status: &RunStatus,
    observed: &[MeasurementResult],
    secs: i64,
    terminate: bool,
) -> (RunStatus, Vec<RunAction>, Option<Timestamp>) {
    let d = reconcile(metrics, status, observed, at(secs), terminate);
    (d.status.into_owned(), d.actions, d.requeue_at)
}

#[test]
fn interval_count_three_ends_successful() {
    let metrics = [periodic("m", "30s", 3)];
    let (mut st, actions, requeue) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    assert_eq!(actions, vec![measure("m")]);
    assert_eq!(requeue, None);
    assert_eq!(st.phase, Some(AnalysisPhase::Running));
    assert_eq!(st.started_at, Some(T0));
    let mut now = 0;
    for i in 1..=3 {
        let (next, actions, requeue) =
            pass(&metrics, &st, &[ok("m", 0.9, now + 1)], now + 1, false);
        st = next;
        let r = st.metric_result("m").expect("result");
        assert_eq!(r.count, i);
        assert_eq!(r.successful, i);
        if i < 3 {
            assert!(actions.is_empty());
            assert_eq!(requeue, Some(at(now + 31)));
            assert_eq!(st.phase, Some(AnalysisPhase::Running));
            // Not due a second early.
            let (same, actions, _) = pass(&metrics, &st, &[], now + 30, false);
            assert!(actions.is_empty());
            assert_eq!(same, st);
            now += 31;
            let (next, actions, _) = pass(&metrics, &st, &[], now, false);
            assert_eq!(actions, vec![measure("m")]);
            st = next;
        } else {
            assert!(actions.is_empty());
            assert_eq!(requeue, None);
        }
    }
    assert_eq!(st.phase, Some(AnalysisPhase::Successful));
    assert_eq!(
        st.metric_result("m").map(|r| r.phase),
        Some(AnalysisPhase::Successful)
    );
    let r = st.metric_result("m").expect("result");
    assert_eq!(r.measurements.len(), 3);
    assert_eq!(r.measurements[2].value, "0.9");
    assert_eq!(r.measurements[2].finished_at, Some(at(now + 1)));
}

#[test]
fn failure_limit_breach_ends_failed_and_stops_measuring() {
    let metrics = [periodic("m", "30s", 5)];
    let (st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let (st, actions, requeue) = pass(&metrics, &st, &[ok("m", 0.1, 1)], 1, false);
    assert_eq!(st.phase, Some(AnalysisPhase::Failed));
    assert_eq!(
        st.message,
        "Metric \"m\" assessed Failed due to failed (1) > failureLimit (0)"
    );
    assert!(actions.is_empty());
    assert_eq!(requeue, None);
    let d = reconcile(&metrics, &st, &[ok("m", 0.9, 100)], at(100), false);
    assert!(d.actions.is_empty());
    assert!(!d.status_changed());
    assert!(d.is_completed());
}

#[test]
fn failure_limit_tolerates_failures() {
    let mut m = periodic("m", "30s", 3);
    m.failure_limit = Some(IntOrString::Int(1));
    let metrics = [m];
    let (st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let (st, _, requeue) = pass(&metrics, &st, &[ok("m", 0.1, 1)], 1, false);
    assert_eq!(st.phase, Some(AnalysisPhase::Running));
    assert_eq!(requeue, Some(at(31)));
}

#[test]
fn error_retries_after_ten_seconds_whatever_the_interval() {
    let metrics = [periodic("m", "5m", 3)];
    let (st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let failure = MeasurementResult::error("m", "connection refused", at(2));
    let (st, actions, requeue) = pass(&metrics, &st, &[failure], 2, false);
    assert!(actions.is_empty());
    assert_eq!(requeue, Some(at(2 + ERROR_RETRY_SECONDS)));
    let r = st.metric_result("m").expect("result");
    assert_eq!((r.count, r.error, r.consecutive_error), (0, 1, 1));
    assert_eq!(r.measurements[0].phase, AnalysisPhase::Error);
    assert_eq!(r.measurements[0].message, "connection refused");
    let (_, actions, _) = pass(&metrics, &st, &[], 11, false);
    assert!(actions.is_empty());
    let (_, actions, _) = pass(&metrics, &st, &[], 12, false);
    assert_eq!(actions, vec![measure("m")]);
}

#[test]
fn condition_that_cannot_be_evaluated_is_an_error() {
    let metrics = [periodic("m", "30s", 3)];
    let (st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let nil = MeasurementResult::new("m", Value::Nil, at(1));
    let (st, _, requeue) = pass(&metrics, &st, &[nil], 1, false);
    let r = st.metric_result("m").expect("result");
    assert_eq!(r.measurements[0].phase, AnalysisPhase::Error);
    assert!(r.message.contains("no data returned"), "{}", r.message);
    assert_eq!(requeue, Some(at(11)));
}

#[test]
fn initial_delay_postpones_the_first_measurement() {
    let metrics = [Metric {
        initial_delay: Some("1m".into()),
        ..metric("m")
    }];
    let (st, actions, requeue) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    assert!(actions.is_empty());
    assert_eq!(requeue, Some(at(60)));
    let (_, actions, _) = pass(&metrics, &st, &[], 59, false);
    assert!(actions.is_empty());
    let (st, actions, _) = pass(&metrics, &st, &[], 60, false);
    assert_eq!(actions, vec![measure("m")]);
    // Without an interval the metric measures once.
    let (st, actions, requeue) = pass(&metrics, &st, &[ok("m", 0.7, 61)], 61, false);
    assert!(actions.is_empty());
    assert_eq!(requeue, None);
    assert_eq!(st.phase, Some(AnalysisPhase::Successful));
}

#[test]
fn invalid_initial_delay_never_measures() {
    let metrics = [Metric {
        initial_delay: Some("soon".into()),
        ..metric("m")
    }];
    let (_, actions, requeue) = pass(&metrics, &RunStatus::default(), &[], 1000, false);
    assert!(actions.is_empty());
    assert_eq!(requeue, None);
}

#[test]
fn consecutive_error_limit_ends_in_error() {
    let mut m = periodic("m", "30s", 10);
    m.consecutive_error_limit = Some(IntOrString::Int(2));
    let metrics = [m];
    let (mut st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let mut now = 0;
    for i in 1..=3 {
        let failure = MeasurementResult::error("m", "timeout", at(now + 1));
        let (next, actions, requeue) = pass(&metrics, &st, &[failure], now + 1, false);
        st = next;
        if i < 3 {
            assert_eq!(st.phase, Some(AnalysisPhase::Running));
            assert_eq!(requeue, Some(at(now + 11)));
            now += 11;
            let (next, actions, _) = pass(&metrics, &st, &[], now, false);
            assert_eq!(actions, vec![measure("m")]);
            st = next;
        } else {
            assert!(actions.is_empty());
            assert_eq!(requeue, None);
        }
    }
    assert_eq!(st.phase, Some(AnalysisPhase::Error));
    assert_eq!(
        st.message,
        "Metric \"m\" assessed Error due to consecutiveErrors (3) > consecutiveErrorLimit (2): \
         \"Error Message: timeout\""
    );
}

#[test]
fn terminate_stops_in_flight_measurements() {
    let metrics = [periodic("m", "30s", 5)];
    let (st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let (st, _, _) = pass(&metrics, &st, &[ok("m", 0.9, 1)], 1, false);
    let (st, actions, _) = pass(&metrics, &st, &[], 31, false);
    assert_eq!(actions, vec![measure("m")]);
    let (st, actions, requeue) = pass(&metrics, &st, &[], 40, true);
    assert_eq!(actions, vec![RunAction::Terminate { metric: "m".into() }]);
    assert_eq!(requeue, None);
    assert_eq!(st.phase, Some(AnalysisPhase::Successful));
    assert_eq!(st.message, RUN_TERMINATED);
    let r = st.metric_result("m").expect("result");
    let last = r.measurements.last().expect("measurement");
    assert_eq!(last.message, METRIC_TERMINATED);
    assert_eq!(last.finished_at, Some(at(40)));
    assert_eq!(r.phase, AnalysisPhase::Successful);
}

#[test]
fn terminate_before_any_measurement() {
    let metrics = [Metric {
        initial_delay: Some("1h".into()),
        ..metric("m")
    }];
    let (st, actions, requeue) = pass(&metrics, &RunStatus::default(), &[], 0, true);
    assert!(actions.is_empty());
    assert_eq!(requeue, None);
    assert_eq!(st.phase, Some(AnalysisPhase::Successful));
    assert_eq!(st.message, RUN_TERMINATED);
}

#[test]
fn failed_metric_terminates_the_others() {
    let metrics = [metric("bad"), periodic("slow", "30s", 5)];
    let (st, actions, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    assert_eq!(actions, vec![measure("bad"), measure("slow")]);
    let (st, actions, _) = pass(&metrics, &st, &[ok("bad", 0.0, 1)], 1, false);
    assert_eq!(
        actions,
        vec![RunAction::Terminate {
            metric: "slow".into()
        }]
    );
    assert_eq!(st.phase, Some(AnalysisPhase::Failed));
}

#[test]
fn dry_run_metric_does_not_affect_the_phase() {
    let metrics = [metric("real"), metric("dry")];
    let dry = [DryRun {
        metric_name: "dry".into(),
    }];
    let options = RunOptions {
        dry_run: &dry,
        ..RunOptions::default()
    };
    let st = RunStatus::default();
    let d = reconcile_with(&metrics, options, &st, &[], at(0), false);
    assert_eq!(d.actions, vec![measure("real"), measure("dry")]);
    let st = d.status.into_owned();
    let observed = [ok("real", 0.9, 1), ok("dry", 0.1, 1)];
    let d = reconcile_with(&metrics, options, &st, &observed, at(1), false);
    assert_eq!(d.status.phase, Some(AnalysisPhase::Successful));
    assert_eq!(d.status.message, "");
    let summary = d.status.dry_run_summary.expect("summary");
    assert_eq!(
        (summary.count, summary.failed, summary.successful),
        (1, 1, 0)
    );
    let r = d.status.metric_result("dry").expect("result");
    assert!(r.dry_run);
    assert_eq!(r.phase, AnalysisPhase::Failed);
    assert_eq!(
        r.message,
        "Metric assessed Failed due to failed (1) > failureLimit (0)"
    );
}

fn run_measurements(metrics: &[Metric], options: RunOptions<'_>, n: i64) -> RunStatus {
    let mut st = RunStatus::default();
    for i in 0..n {
        let d = reconcile_with(metrics, options, &st, &[], at(i * 2), false);
        assert_eq!(d.actions, vec![measure("m")], "pass {i}");
        st = d.status.into_owned();
        let obs = [MeasurementResult::new("m", Value::Int(i), at(i * 2 + 1))];
        st = reconcile_with(metrics, options, &st, &obs, at(i * 2 + 1), false)
            .status
            .into_owned();
    }
    st
}

#[test]
fn retention_keeps_the_newest_measurements() {
    let metrics = [Metric {
        success_condition: Some("result >= 0".into()),
        ..periodic("m", "1s", 50)
    }];
    let st = run_measurements(&metrics, RunOptions::default(), 12);
    let values: Vec<_> = st.metric_results[0]
        .measurements
        .iter()
        .map(|m| m.value.clone())
        .collect();
    assert_eq!(values, ["2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]);
    assert_eq!(st.metric_results[0].count, 12);

    let retention = [MeasurementRetention {
        metric_name: "m".into(),
        limit: 3,
    }];
    let options = RunOptions {
        measurement_retention: &retention,
        ..RunOptions::default()
    };
    let st = run_measurements(&metrics, options, 5);
    let values: Vec<_> = st.metric_results[0]
        .measurements
        .iter()
        .map(|m| m.value.clone())
        .collect();
    assert_eq!(values, ["2", "3", "4"]);
}

#[test]
fn no_op_pass_borrows_the_status() {
    let metrics = [periodic("m", "30s", 3)];
    let (st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let d: RunDecision<'_> = reconcile(&metrics, &st, &[], at(5), false);
    assert!(matches!(d.status, Cow::Borrowed(_)));
    assert!(d.actions.is_empty());
    assert_eq!(d.requeue_at, None);
    let (st, _, _) = pass(&metrics, &st, &[ok("m", 0.9, 6)], 6, false);
    let d = reconcile(&metrics, &st, &[], at(20), false);
    assert!(!d.status_changed());
    assert_eq!(d.requeue_at, Some(at(36)));
}

#[test]
fn unknown_metric_results_are_ignored() {
    let metrics = [periodic("m", "30s", 3)];
    let (st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let d = reconcile(&metrics, &st, &[ok("other", 1.0, 1)], at(1), false);
    assert!(!d.status_changed());
}

#[test]
fn run_status_json_round_trip() {
    let metrics = [periodic("m", "30s", 3)];
    let (st, _, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    let (st, _, _) = pass(
        &metrics,
        &st,
        &[MeasurementResult::error("m", "boom", at(1))],
        1,
        false,
    );
    let json = serde_json::to_value(&st).expect("serialize");
    assert_eq!(json["phase"], "Running");
    assert_eq!(json["startedAt"], "2027-01-15T08:00:00Z");
    assert_eq!(json["metricResults"][0]["consecutiveError"], 1);
    assert_eq!(
        json["metricResults"][0]["measurements"][0]["finishedAt"],
        "2027-01-15T08:00:01Z"
    );
    let back: RunStatus = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, st);

    let argo = r#"{
        "phase": "Successful",
        "message": "",
        "startedAt": "2026-11-21T10:00:00Z",
        "metricResults": [{
            "name": "success-rate",
            "phase": "Successful",
            "measurements": [{
                "phase": "Successful",
                "value": "[0.99]",
                "startedAt": "2026-11-21T10:00:00Z",
                "finishedAt": "2026-11-21T10:00:01Z"
            }],
            "count": 1,
            "successful": 1,
            "consecutiveSuccess": 1,
            "dryRun": true
        }],
        "dryRunSummary": {"count": 1, "successful": 1, "failed": 0, "inconclusive": 0, "error": 0}
    }"#;
    let st: RunStatus = serde_json::from_str(argo).expect("argo status");
    assert_eq!(st.metric_results[0].measurements[0].value, "[0.99]");
    let again: RunStatus =
        serde_json::from_str(&serde_json::to_string(&st).expect("serialize")).expect("parse");
    assert_eq!(again, st);
}

#[test]
fn an_in_progress_answer_keeps_the_measurement_running_until_resume_at() {
    let metrics = [metric("m")];
    let (st, actions, _) = pass(&metrics, &RunStatus::default(), &[], 0, false);
    assert_eq!(actions, vec![measure("m")]);
    // The provider has no answer yet (a Job still running): look again at +10 s.
    let pending = MeasurementResult::in_progress("m", at(10), at(1));
    let (st, actions, requeue) = pass(&metrics, &st, &[pending], 1, false);
    assert!(actions.is_empty());
    assert_eq!(requeue, Some(at(10)));
    assert_eq!(st.phase, Some(AnalysisPhase::Running));
    let r = st.metric_result("m").expect("result");
    assert_eq!((r.count, r.measurements.len()), (0, 1), "nothing counted");
    assert_eq!(r.measurements[0].phase, AnalysisPhase::Running);
    assert_eq!(r.measurements[0].resume_at, Some(at(10)));
    // Not due before resumeAt; at it, the same measurement is asked for again ...
    let (same, actions, _) = pass(&metrics, &st, &[], 9, false);
    assert!(actions.is_empty());
    assert_eq!(same, st);
    let (st, actions, _) = pass(&metrics, &st, &[], 10, false);
    assert_eq!(actions, vec![measure("m")]);
    let r = st.metric_result("m").expect("result");
    assert_eq!(r.measurements.len(), 1, "resumed, not a new measurement");
    assert_eq!(r.measurements[0].resume_at, None);
    // ... and completes in place with the answer.
    let (st, _, _) = pass(&metrics, &st, &[ok("m", 0.9, 11)], 11, false);
    assert_eq!(st.phase, Some(AnalysisPhase::Successful));
    let r = st.metric_result("m").expect("result");
    assert_eq!((r.count, r.successful, r.measurements.len()), (1, 1, 1));
    assert_eq!(r.measurements[0].started_at, Some(at(0)));
}
