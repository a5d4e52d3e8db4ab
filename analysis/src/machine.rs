//! The AnalysisRun as a pure state machine.
//!
//! # Model
//!
//! One call of [`reconcile`] is one pass of Argo's analysis controller over an
//! AnalysisRun. It takes these inputs and returns a [`RunDecision`]:
//!
//! - the run's metrics ([`Metric`], already resolved: `{{args.x}}` substituted);
//! - the persisted [`RunStatus`] (all state that must survive a crash lives there);
//! - the [`MeasurementResult`]s the caller's providers returned since the last pass;
//! - `now`, the time of the pass;
//! - `terminate`, the run's `spec.terminate`.
//!
//! [`reconcile_with`] also takes [`RunOptions`]: the run's `dryRun` and
//! `measurementRetention` lists.
//!
//! The [`RunDecision`] holds the new status (borrowed when nothing changed), the
//! [`RunAction`]s to carry out and the time at which the machine wants to be called
//! again even if nothing is observed (`requeue_at`: the earliest time a metric is due).
//!
//! # Call order
//!
//! 1. Call [`reconcile`] with the results that arrived.
//! 2. Persist `decision.status` (when [`RunDecision::status_changed`]).
//! 3. Carry out the actions: [`RunAction::Measure`] asks the metric's provider for a
//!    result (the machine has already recorded an in-flight measurement started at
//!    `now`); [`RunAction::Terminate`] stops an in-flight measurement.
//! 4. Call again with the provider's results as they arrive, or at `requeue_at`.
//!
//! # Semantics
//!
//! Argo's (reference section 2.4):
//!
//! * **Scheduling.** A metric is due when it has no measurement yet and `startedAt +
//!   initialDelay` has passed (an invalid `initialDelay` → never); when its last
//!   measurement finished at least `interval` ago; when its last measurement was an
//!   `Error`, [`ERROR_RETRY_SECONDS`] after it (whatever the interval); or when its last
//!   measurement is in flight and its `resumeAt` has passed. A metric whose phase is
//!   completed, or whose effective count is reached, is never due. Without an interval
//!   a metric measures once (errors are retried).
//! * **Results.** A result is judged by [`evaluate_result`] with the metric's success
//!   and failure conditions (or is an `Error` when the provider failed), completes the
//!   metric's in-flight measurement (or is appended when there is none), and updates the
//!   counters with [`run::record_measurement`]. Results for unknown metrics are ignored.
//! * **Verdict.** Metric phases come from [`run::metric_phase`], the run's phase, message
//!   and dry-run summary from [`run::run_phase`].
//! * **Termination.** When [`run::is_terminating`] (the `terminate` input, or a
//!   non-dry-run metric completed Failed, Error or Inconclusive), no measurement starts,
//!   in-flight ones get [`RunAction::Terminate`] and are recorded Successful with the
//!   message `Metric Terminated`, and the run ends at once with its worst phase so far.
//!   A run terminated by `terminate` whose verdict carries no message gets `Run
//!   Terminated`. Unlike Argo, a metric that completes badly terminates the run in the
//!   same pass instead of the next one.
//! * **GC.** Each metric keeps only its newest measurements: the `measurementRetention`
//!   limit for it (`"*"` matches every metric), else [`DEFAULT_MEASUREMENT_RETENTION`].
//!
//! [`RunOptions`] match metric names exactly (and `"*"`); Argo's rules are unanchored
//! regular expressions, which [`runner::PreparedRun`](crate::runner::PreparedRun) expands to
//! exact names (and reports a rule that matches nothing) before calling this machine.
//!
//! A completed run is left as it is.

use std::borrow::Cow;

use rollout_core::duration::Duration;
use rollout_core::status::AnalysisPhase;
use rollout_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::expr::Value;
use crate::run::{self, LastMeasurement, MetricCounters, MetricLimits};
use crate::template::{DryRun, MeasurementRetention, Metric};
use crate::{MeasurementPhase, evaluate_result};

/// Seconds after an `Error` measurement before the metric is measured again.
pub const ERROR_RETRY_SECONDS: i64 = 10;

/// Measurements kept per metric when no `measurementRetention` applies.
pub const DEFAULT_MEASUREMENT_RETENTION: usize = 10;

/// The message of a measurement stopped because the run terminated.
pub const METRIC_TERMINATED: &str = "Metric Terminated";

/// The run message when `terminate` ended a run whose verdict has no message.
pub const RUN_TERMINATED: &str = "Run Terminated";

/// `status` of an AnalysisRun, as Argo writes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    /// The run's phase (`None` before the first pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// Why the run is in its phase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the run started (set by the first pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// One entry per metric that has been measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_results: Vec<MetricResult>,
    /// Outcomes of the dry-run metrics (present when there are any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
}

impl RunStatus {
    /// The result of the metric named `name`.
    pub fn metric_result(&self, name: &str) -> Option<&MetricResult> {
        self.metric_results.iter().find(|r| r.name == name)
    }
}

fn is_zero(x: &i32) -> bool {
    *x == 0
}

/// `status.metricResults[]`: one metric's measurements and counters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// Metric name.
    pub name: String,
    /// The metric's phase.
    #[serde(default)]
    pub phase: AnalysisPhase,
    /// The newest measurements, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// Completed, non-error measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    /// Successful measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub successful: i32,
    /// Failed measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,
    /// Inconclusive measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inconclusive: i32,
    /// Errored measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: i32,
    /// Errors in a row.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_error: i32,
    /// Successes in a row.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_success: i32,
    /// The newest error message, or the dry-run assessment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Whether the metric runs in dry-run mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// `status.metricResults[].measurements[]`: one measurement.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// `Running` while in flight, then the measurement's phase.
    #[serde(default)]
    pub phase: AnalysisPhase,
    /// The provider's result as Argo stores it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// When the measurement started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it finished (`None` while in flight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// When an in-flight measurement should be resumed (asked again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Timestamp>,
    /// Error or termination message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `status.dryRunSummary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Dry-run metrics.
    #[serde(default)]
    pub count: i32,
    /// Dry-run metrics assessed Successful.
    #[serde(default)]
    pub successful: i32,
    /// Dry-run metrics assessed Failed.
    #[serde(default)]
    pub failed: i32,
    /// Dry-run metrics assessed Inconclusive.
    #[serde(default)]
    pub inconclusive: i32,
    /// Dry-run metrics assessed Error.
    #[serde(default)]
    pub error: i32,
}

/// A result a provider returned for a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementResult {
    /// The metric's name.
    pub metric: String,
    /// The provider's result (bound to `result` in the conditions).
    pub value: Value,
    /// When the provider answered.
    pub finished_at: Timestamp,
    /// A provider failure: the measurement is an `Error` with this message and `value`
    /// is not judged.
    pub error: Option<String>,
    /// A verdict the provider decided itself (Argo's Job and Kayenta providers): the
    /// conditions are not evaluated and `value` is stored as it is formatted.
    pub verdict: Option<MeasurementPhase>,
    /// The provider has not decided yet (a Job still running): the measurement stays
    /// `Running` with this `resumeAt`, counts nothing, and is measured again then.
    pub resume_at: Option<Timestamp>,
}

impl MeasurementResult {
    /// A successful answer from the provider.
    pub fn new(metric: impl Into<String>, value: Value, finished_at: Timestamp) -> Self {
        MeasurementResult {
            metric: metric.into(),
            value,
            finished_at,
            error: None,
            verdict: None,
            resume_at: None,
        }
    }

    /// A result whose phase the provider decided (a Job that succeeded or failed, a
    /// judge's score against its thresholds).
    pub fn with_verdict(
        metric: impl Into<String>,
        value: Value,
        phase: MeasurementPhase,
        finished_at: Timestamp,
    ) -> Self {
        MeasurementResult {
            metric: metric.into(),
            value,
            finished_at,
            error: None,
            verdict: Some(phase),
            resume_at: None,
        }
    }

    /// A provider failure.
    pub fn error(
        metric: impl Into<String>,
        message: impl Into<String>,
        finished_at: Timestamp,
    ) -> Self {
        MeasurementResult {
            metric: metric.into(),
            value: Value::Nil,
            finished_at,
            error: Some(message.into()),
            verdict: None,
            resume_at: None,
        }
    }

    /// An answer that is not one yet: the measurement stays in flight (Argo's
    /// `Running` measurement with `resumeAt`) and is asked for again at `resume_at`.
    pub fn in_progress(
        metric: impl Into<String>,
        resume_at: Timestamp,
        answered_at: Timestamp,
    ) -> Self {
        MeasurementResult {
            metric: metric.into(),
            value: Value::Nil,
            finished_at: answered_at,
            error: None,
            verdict: None,
            resume_at: Some(resume_at),
        }
    }
}

/// Something the caller must do after a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunAction {
    /// Ask the metric's provider for a result and pass it to the next call.
    Measure {
        /// The metric's name.
        metric: String,
    },
    /// Stop the metric's in-flight measurement.
    Terminate {
        /// The metric's name.
        metric: String,
    },
}

/// The outcome of one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDecision<'a> {
    /// The new status; borrowed when the pass changed nothing.
    pub status: Cow<'a, RunStatus>,
    /// What to do, in order.
    pub actions: Vec<RunAction>,
    /// When to call again even if nothing is observed (`None`: only on new results, or
    /// never once the run is completed).
    pub requeue_at: Option<Timestamp>,
}

impl RunDecision<'_> {
    /// Whether the status must be persisted.
    pub fn status_changed(&self) -> bool {
        matches!(self.status, Cow::Owned(_))
    }

    /// Whether the run has completed.
    pub fn is_completed(&self) -> bool {
        self.status.phase.is_some_and(AnalysisPhase::is_completed)
    }
}

/// The run's `dryRun` and `measurementRetention` lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions<'s> {
    /// Metrics in dry-run mode (`"*"` matches every metric).
    pub dry_run: &'s [DryRun],
    /// Per-metric measurement retention (`"*"` matches every metric).
    pub measurement_retention: &'s [MeasurementRetention],
}

impl RunOptions<'_> {
    fn is_dry_run(&self, metric: &str) -> bool {
        self.dry_run
            .iter()
            .any(|d| d.metric_name == metric || d.metric_name == "*")
    }

    fn retention(&self, metric: &str) -> usize {
        let exact = self
            .measurement_retention
            .iter()
            .find(|r| r.metric_name == metric);
        let any = || {
            self.measurement_retention
                .iter()
                .find(|r| r.metric_name == "*")
        };
        exact
            .or_else(any)
            .and_then(|r| usize::try_from(r.limit).ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MEASUREMENT_RETENTION)
    }
}

/// One pass over an AnalysisRun with no dry-run metrics and the default retention. See
/// the module docs.
pub fn reconcile<'a>(
    metrics: &[Metric],
    status: &'a RunStatus,
    observed: &[MeasurementResult],
    now: Timestamp,
    terminate: bool,
) -> RunDecision<'a> {
    reconcile_with(
        metrics,
        RunOptions::default(),
        status,
        observed,
        now,
        terminate,
    )
}

fn limit_of(v: Option<&crate::template::IntOrString>) -> Option<i32> {
    v.and_then(|v| v.as_int())
        .map(|i| i32::try_from(i).unwrap_or(if i < 0 { i32::MIN } else { i32::MAX }))
}

fn limits_of(metric: &Metric, dry_run: bool) -> MetricLimits {
    MetricLimits {
        name: metric.name.clone(),
        count: limit_of(metric.count.as_ref()),
        failure_limit: limit_of(metric.failure_limit.as_ref()),
        inconclusive_limit: limit_of(metric.inconclusive_limit.as_ref()),
        consecutive_error_limit: limit_of(metric.consecutive_error_limit.as_ref()),
        consecutive_success_limit: limit_of(metric.consecutive_success_limit.as_ref()),
        interval: metric.interval.clone(),
        initial_delay: metric.initial_delay.clone(),
        dry_run,
    }
}

fn counters_of(result: Option<&MetricResult>) -> MetricCounters {
    let Some(r) = result else {
        return MetricCounters::default();
    };
    MetricCounters {
        phase: Some(r.phase),
        count: r.count,
        successful: r.successful,
        failed: r.failed,
        inconclusive: r.inconclusive,
        error: r.error,
        consecutive_error: r.consecutive_error,
        consecutive_success: r.consecutive_success,
        last_measurement: r
            .measurements
            .last()
            .map(|m| LastMeasurement { phase: m.phase }),
        message: r.message.clone(),
    }
}

fn store_counters(r: &mut MetricResult, c: &MetricCounters) {
    r.count = c.count;
    r.successful = c.successful;
    r.failed = c.failed;
    r.inconclusive = c.inconclusive;
    r.error = c.error;
    r.consecutive_error = c.consecutive_error;
    r.consecutive_success = c.consecutive_success;
}

fn phase_of(p: MeasurementPhase) -> AnalysisPhase {
    match p {
        MeasurementPhase::Successful => AnalysisPhase::Successful,
        MeasurementPhase::Failed => AnalysisPhase::Failed,
        MeasurementPhase::Inconclusive => AnalysisPhase::Inconclusive,
        _ => AnalysisPhase::Error,
    }
}

/// A Go duration in milliseconds (`None` when absent; `Err` when it does not parse or
/// is negative).
fn duration_ms(text: Option<&str>) -> Result<Option<i64>, ()> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => match Duration::parse(t) {
            Ok(d) if !d.is_negative() => Ok(Some(d.as_millis())),
            _ => Err(()),
        },
    }
}

fn in_flight(m: &Measurement) -> bool {
    !m.phase.is_completed()
}

/// Completes `result`'s in-flight measurement (or appends one) and counts it.
fn complete(
    result: &mut MetricResult,
    phase: AnalysisPhase,
    value: String,
    message: String,
    finished_at: Timestamp,
) {
    let slot = match result.measurements.last_mut() {
        Some(m) if in_flight(m) => m,
        _ => {
            result.measurements.push(Measurement {
                started_at: Some(finished_at),
                ..Measurement::default()
            });
            let last = result.measurements.len() - 1;
            &mut result.measurements[last]
        }
    };
    slot.phase = phase;
    slot.value = value;
    slot.finished_at = Some(finished_at);
    slot.resume_at = None;
    slot.message = message.clone();
    let mut counters = counters_of(Some(result));
    run::record_measurement(&mut counters, phase);
    store_counters(result, &counters);
    if phase == AnalysisPhase::Error {
        result.message = message;
    }
}

/// One pass over an AnalysisRun. See the module docs.
pub fn reconcile_with<'a>(
    metrics: &[Metric],
    options: RunOptions<'_>,
    status: &'a RunStatus,
    observed: &[MeasurementResult],
    now: Timestamp,
    terminate: bool,
) -> RunDecision<'a> {
    if status.phase.is_some_and(AnalysisPhase::is_completed) {
        return RunDecision {
            status: Cow::Borrowed(status),
            actions: Vec::new(),
            requeue_at: None,
        };
    }
    let mut st = status.clone();
    let mut actions = Vec::new();
    let started_at = *st.started_at.get_or_insert(now);
    let limits: Vec<MetricLimits> = metrics
        .iter()
        .map(|m| limits_of(m, options.is_dry_run(&m.name)))
        .collect();

    // Results from the providers.
    for obs in observed {
        let Some(metric) = metrics.iter().find(|m| m.name == obs.metric) else {
            continue;
        };
        let Some(result) = st.metric_results.iter_mut().find(|r| r.name == obs.metric) else {
            st.metric_results.push(MetricResult {
                name: obs.metric.clone(),
                dry_run: options.is_dry_run(&obs.metric),
                ..MetricResult::default()
            });
            if let Some(r) = st.metric_results.last_mut() {
                record(r, metric, obs);
            }
            continue;
        };
        if result.phase.is_completed() {
            continue;
        }
        record(result, metric, obs);
    }

    // Verdict, terminating in-flight measurements when the run terminates.
    let mut terminating = false;
    for _ in 0..2 {
        terminating = run::is_terminating(terminate, &pairs(&limits, &st));
        if terminating {
            for result in &mut st.metric_results {
                if result.measurements.last().is_some_and(in_flight)
                    && metrics.iter().any(|m| m.name == result.name)
                {
                    actions.push(RunAction::Terminate {
                        metric: result.name.clone(),
                    });
                    complete(
                        result,
                        AnalysisPhase::Successful,
                        String::new(),
                        METRIC_TERMINATED.to_string(),
                        now,
                    );
                }
            }
        }
        let verdict = run::run_phase(&pairs(&limits, &st), terminating);
        for (i, l) in limits.iter().enumerate() {
            if let Some(r) = st.metric_results.iter_mut().find(|r| r.name == l.name) {
                if let Some(p) = verdict.metric_phases.get(i) {
                    r.phase = *p;
                }
                if let Some(m) = verdict.metric_messages.get(i) {
                    r.message.clone_from(m);
                }
                r.dry_run = l.dry_run;
            }
        }
        if terminating || !run::is_terminating(terminate, &pairs(&limits, &st)) {
            break;
        }
    }
    let verdict = run::run_phase(&pairs(&limits, &st), terminating);
    let s = verdict.dry_run_summary;
    st.dry_run_summary = (s.count > 0).then_some(RunSummary {
        count: s.count,
        successful: s.successful,
        failed: s.failed,
        inconclusive: s.inconclusive,
        error: s.error,
    });

    let mut requeue_at = None;
    if verdict.phase.is_completed() {
        st.phase = Some(verdict.phase);
        st.message = verdict.message;
        if terminate && st.message.is_empty() {
            st.message = RUN_TERMINATED.to_string();
        }
    } else {
        st.phase = Some(AnalysisPhase::Running);
        st.message = String::new();
        for (metric, l) in metrics.iter().zip(&limits) {
            let result = st.metric_results.iter().find(|r| r.name == metric.name);
            let Some(due) = due_at(l, result, started_at) else {
                continue;
            };
            if due <= now {
                actions.push(RunAction::Measure {
                    metric: metric.name.clone(),
                });
                start_measurement(&mut st, l, now);
            } else {
                requeue_at = Some(requeue_at.map_or(due, |r: Timestamp| r.min(due)));
            }
        }
    }

    for result in &mut st.metric_results {
        let keep = options.retention(&result.name);
        let len = result.measurements.len();
        if len > keep {
            result.measurements.drain(..len - keep);
        }
    }

    let status = if st == *status {
        Cow::Borrowed(status)
    } else {
        Cow::Owned(st)
    };
    RunDecision {
        status,
        actions,
        requeue_at,
    }
}

fn record(result: &mut MetricResult, metric: &Metric, obs: &MeasurementResult) {
    if let (None, Some(resume_at)) = (&obs.error, obs.resume_at) {
        match result.measurements.last_mut() {
            Some(m) if in_flight(m) => m.resume_at = Some(resume_at),
            _ => result.measurements.push(Measurement {
                phase: AnalysisPhase::Running,
                started_at: Some(obs.finished_at),
                resume_at: Some(resume_at),
                ..Measurement::default()
            }),
        }
        result.phase = AnalysisPhase::Running;
        return;
    }
    let (phase, value, message) = match (&obs.error, obs.verdict) {
        (Some(message), _) => (AnalysisPhase::Error, String::new(), message.clone()),
        (None, Some(phase)) => (
            phase_of(phase),
            crate::format_measurement(&obs.value, crate::ValueStyle::RawString),
            String::new(),
        ),
        (None, None) => {
            let e = evaluate_result(
                metric.success_condition.as_deref(),
                metric.failure_condition.as_deref(),
                &obs.value,
            );
            (phase_of(e.phase), e.value, e.message.unwrap_or_default())
        }
    };
    complete(result, phase, value, message, obs.finished_at);
}

fn pairs(limits: &[MetricLimits], st: &RunStatus) -> Vec<(MetricLimits, MetricCounters)> {
    limits
        .iter()
        .map(|l| (l.clone(), counters_of(st.metric_result(&l.name))))
        .collect()
}

/// When the metric is next due (`None`: not by time).
fn due_at(
    limits: &MetricLimits,
    result: Option<&MetricResult>,
    started_at: Timestamp,
) -> Option<Timestamp> {
    let last = match result {
        Some(r) if r.phase.is_completed() => return None,
        Some(r) => {
            if limits.effective_count().is_some_and(|c| r.count >= c) {
                return None;
            }
            r.measurements.last()
        }
        None => None,
    };
    let Some(last) = last else {
        let delay = duration_ms(limits.initial_delay.as_deref()).ok()?;
        return Some(started_at.add_millis(delay.unwrap_or(0)));
    };
    if in_flight(last) {
        return last.resume_at;
    }
    let finished = last.finished_at?;
    if last.phase == AnalysisPhase::Error {
        return Some(finished.add_secs(ERROR_RETRY_SECONDS));
    }
    let interval = duration_ms(limits.interval.as_deref()).ok()??;
    Some(finished.add_millis(interval))
}

fn start_measurement(st: &mut RunStatus, limits: &MetricLimits, now: Timestamp) {
    let fresh = Measurement {
        phase: AnalysisPhase::Running,
        started_at: Some(now),
        ..Measurement::default()
    };
    match st.metric_results.iter_mut().find(|r| r.name == limits.name) {
        Some(r) => {
            match r.measurements.last_mut() {
                // Resuming an in-flight measurement: ask again, keep it.
                Some(m) if in_flight(m) => m.resume_at = None,
                _ => r.measurements.push(fresh),
            }
            r.phase = AnalysisPhase::Running;
        }
        None => st.metric_results.push(MetricResult {
            name: limits.name.clone(),
            phase: AnalysisPhase::Running,
            measurements: vec![fresh],
            dry_run: limits.dry_run,
            ..MetricResult::default()
        }),
    }
}
