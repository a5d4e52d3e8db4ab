//! Argo's verdict rules for an AnalysisRun, as pure functions over counters.
//!
//! * [`record_measurement`] updates a metric's counters with one completed measurement
//!   (Argo's counter table: an `Error` does not count towards `count`).
//! * [`metric_phase`] decides one metric's phase from its counters and limits
//!   (Argo's `assessMetricStatus`, rules 1-6 of the reference, in order).
//! * [`limit_breach`] names the limit a metric broke and Argo's reason text
//!   (`assessMetricFailureInconclusiveOrError`).
//! * [`run_phase`] re-assesses every metric and folds them into the run's phase, message
//!   and dry-run summary (`assessRunStatus`); [`is_terminating`] is Argo's
//!   `IsTerminating`.
//! * [`is_worse`] and [`worst`] order phases: Successful < Running < Pending <
//!   Inconclusive < Error < Failed.

use rollout_core::status::AnalysisPhase;

/// Argo's default `consecutiveErrorLimit`.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;

/// The limits of one metric, as its AnalysisTemplate spells them (`None` = unset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricLimits {
    /// Metric name.
    pub name: String,
    /// `count`: how many measurements to take; `None` or `0` with an interval means
    /// "indefinite", `None` or `0` without an interval means one (see
    /// [`MetricLimits::effective_count`]).
    pub count: Option<i32>,
    /// `failureLimit` (default 0; `-1` disables the failure limit).
    pub failure_limit: Option<i32>,
    /// `inconclusiveLimit` (default 0).
    pub inconclusive_limit: Option<i32>,
    /// `consecutiveErrorLimit` (default [`DEFAULT_CONSECUTIVE_ERROR_LIMIT`]).
    pub consecutive_error_limit: Option<i32>,
    /// `consecutiveSuccessLimit` (default 0 = disabled).
    pub consecutive_success_limit: Option<i32>,
    /// `interval` as written (e.g. `"60s"`); only its presence matters here.
    pub interval: Option<String>,
    /// `initialDelay` as written; not used by the verdict rules.
    pub initial_delay: Option<String>,
    /// Whether the metric runs in dry-run mode (its outcome never affects the run phase).
    pub dry_run: bool,
}

impl MetricLimits {
    /// A metric with the given name and every limit unset.
    pub fn new(name: impl Into<String>) -> Self {
        MetricLimits {
            name: name.into(),
            ..MetricLimits::default()
        }
    }

    /// The failure limit in force (`failureLimit`, default 0; negative = disabled).
    pub fn failure_limit(&self) -> i32 {
        self.failure_limit.unwrap_or(0)
    }

    /// The inconclusive limit in force (default 0).
    pub fn inconclusive_limit(&self) -> i32 {
        self.inconclusive_limit.unwrap_or(0)
    }

    /// The consecutive-error limit in force (default 4).
    pub fn consecutive_error_limit(&self) -> i32 {
        self.consecutive_error_limit
            .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT)
    }

    /// The consecutive-success limit in force (default 0 = disabled).
    pub fn consecutive_success_limit(&self) -> i32 {
        self.consecutive_success_limit.unwrap_or(0)
    }

    /// Argo's `EffectiveCount`: `count` when set and non-zero; else 1 when there is no
    /// interval; else `None` (the metric measures indefinitely).
    pub fn effective_count(&self) -> Option<i32> {
        match self.count {
            Some(c) if c != 0 => Some(c),
            _ if self.interval.as_deref().is_none_or(str::is_empty) => Some(1),
            _ => None,
        }
    }
}

/// The newest measurement of a metric, as far as the verdict rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastMeasurement {
    /// Its phase (`Running` or `Pending` while in flight).
    pub phase: AnalysisPhase,
}

impl LastMeasurement {
    /// Whether the measurement has completed (its phase is a completed one).
    pub fn is_finished(self) -> bool {
        self.phase.is_completed()
    }
}

/// The counters of one metric result (`status.metricResults[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricCounters {
    /// The stored phase (`None` = unset). A completed phase sticks.
    pub phase: Option<AnalysisPhase>,
    /// Completed, non-error measurements.
    pub count: i32,
    /// Successful measurements.
    pub successful: i32,
    /// Failed measurements.
    pub failed: i32,
    /// Inconclusive measurements.
    pub inconclusive: i32,
    /// Errored measurements.
    pub error: i32,
    /// Errors in a row.
    pub consecutive_error: i32,
    /// Successes in a row.
    pub consecutive_success: i32,
    /// The newest measurement, or `None` when nothing was measured yet.
    pub last_measurement: Option<LastMeasurement>,
    /// The provider's message (`result.message`), or empty.
    pub message: String,
}

/// Updates `counters` with one completed measurement of phase `phase` (Argo's table):
///
/// | measurement | count | successful | failed | inconclusive | error | consecutiveError | consecutiveSuccess |
/// |---|---|---|---|---|---|---|---|
/// | Successful | +1 | +1 | | | | 0 | +1 |
/// | Failed | +1 | | +1 | | | 0 | 0 |
/// | Inconclusive | +1 | | | +1 | | 0 | 0 |
/// | Error | | | | | +1 | +1 | 0 |
///
/// It also records the measurement as the last one. A phase that is not a completed one
/// (`Pending`, `Running`) only records an in-flight last measurement. Counters saturate
/// instead of overflowing.
pub fn record_measurement(counters: &mut MetricCounters, phase: AnalysisPhase) {
    fn inc(x: &mut i32) {
        *x = x.saturating_add(1);
    }
    counters.last_measurement = Some(LastMeasurement { phase });
    match phase {
        AnalysisPhase::Successful => {
            inc(&mut counters.count);
            inc(&mut counters.successful);
            counters.consecutive_error = 0;
            inc(&mut counters.consecutive_success);
        }
        AnalysisPhase::Failed => {
            inc(&mut counters.count);
            inc(&mut counters.failed);
            counters.consecutive_error = 0;
            counters.consecutive_success = 0;
        }
        AnalysisPhase::Inconclusive => {
            inc(&mut counters.count);
            inc(&mut counters.inconclusive);
            counters.consecutive_error = 0;
            counters.consecutive_success = 0;
        }
        AnalysisPhase::Error => {
            inc(&mut counters.error);
            inc(&mut counters.consecutive_error);
            counters.consecutive_success = 0;
        }
        _ => {}
    }
}

/// The rank of a phase in Argo's worst-of order.
fn rank(phase: AnalysisPhase) -> u8 {
    match phase {
        AnalysisPhase::Successful => 0,
        AnalysisPhase::Running => 1,
        AnalysisPhase::Pending => 2,
        AnalysisPhase::Inconclusive => 3,
        AnalysisPhase::Error => 4,
        AnalysisPhase::Failed => 5,
        // Phases added later rank with Pending (not completed, not good).
        _ => 2,
    }
}

/// Argo's `IsWorse(current, candidate)`: whether `candidate` is strictly worse than
/// `current` in the order Successful < Running < Pending < Inconclusive < Error < Failed.
pub fn is_worse(current: AnalysisPhase, candidate: AnalysisPhase) -> bool {
    rank(candidate) > rank(current)
}

/// Argo's `Worst`: the worse of two phases (`a` when they rank equal).
pub fn worst(a: AnalysisPhase, b: AnalysisPhase) -> AnalysisPhase {
    if is_worse(a, b) { b } else { a }
}

/// The phase of one metric from its counters (Argo's `assessMetricStatus`).
///
/// 0. A stored completed phase sticks.
/// 1. No measurement: Successful when `terminating`, else Pending.
/// 2. Last measurement unfinished: Running.
/// 3. Limit checks, later overriding earlier: `failed > failureLimit` (unless the limit
///    is negative) → Failed; `inconclusive > inconclusiveLimit` → Inconclusive;
///    `consecutiveError > consecutiveErrorLimit` → Error.
/// 4. `consecutiveSuccessLimit > 0` and `consecutiveSuccess >= it` → Successful.
/// 5. Effective count reached: Inconclusive when both the failure limit (unset or ≥ 0)
///    and the consecutive-success limit apply; Failed when only the consecutive-success
///    limit applies; else Successful.
/// 6. Successful when `terminating`, else Running.
pub fn metric_phase(
    limits: &MetricLimits,
    counters: &MetricCounters,
    terminating: bool,
) -> AnalysisPhase {
    if let Some(phase) = counters.phase
        && phase.is_completed()
    {
        return phase;
    }
    let Some(last) = counters.last_measurement else {
        return if terminating {
            AnalysisPhase::Successful
        } else {
            AnalysisPhase::Pending
        };
    };
    if !last.is_finished() {
        return AnalysisPhase::Running;
    }
    if let Some(breach) = limit_breach(limits, counters) {
        return breach.phase;
    }
    let success_limit = limits.consecutive_success_limit();
    if success_limit > 0 && counters.consecutive_success >= success_limit {
        return AnalysisPhase::Successful;
    }
    if let Some(count) = limits.effective_count()
        && counters.count >= count
    {
        let failure_applies = limits.failure_limit.is_none_or(|l| l >= 0);
        let success_applies = success_limit > 0;
        return match (failure_applies, success_applies) {
            (true, true) => AnalysisPhase::Inconclusive,
            (false, true) => AnalysisPhase::Failed,
            _ => AnalysisPhase::Successful,
        };
    }
    if terminating {
        AnalysisPhase::Successful
    } else {
        AnalysisPhase::Running
    }
}

/// A limit a metric broke: the phase it causes and Argo's reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitBreach {
    /// Failed, Inconclusive or Error.
    pub phase: AnalysisPhase,
    /// E.g. `failed (1) > failureLimit (0)`.
    pub reason: String,
}

/// Argo's `assessMetricFailureInconclusiveOrError`: the last of the broken limits, in
/// the order failure, inconclusive, consecutive errors, with its reason
/// (`failed (N) > failureLimit (L)`, `inconclusive (N) > inconclusiveLimit (L)`,
/// `consecutiveErrors (N) > consecutiveErrorLimit (L)`); `None` when no limit is broken.
pub fn limit_breach(limits: &MetricLimits, counters: &MetricCounters) -> Option<LimitBreach> {
    let mut breach = None;
    let failure_limit = limits.failure_limit();
    if failure_limit >= 0 && counters.failed > failure_limit {
        breach = Some(LimitBreach {
            phase: AnalysisPhase::Failed,
            reason: format!(
                "failed ({}) > failureLimit ({failure_limit})",
                counters.failed
            ),
        });
    }
    let inconclusive_limit = limits.inconclusive_limit();
    if counters.inconclusive > inconclusive_limit {
        breach = Some(LimitBreach {
            phase: AnalysisPhase::Inconclusive,
            reason: format!(
                "inconclusive ({}) > inconclusiveLimit ({inconclusive_limit})",
                counters.inconclusive
            ),
        });
    }
    let error_limit = limits.consecutive_error_limit();
    if counters.consecutive_error > error_limit {
        breach = Some(LimitBreach {
            phase: AnalysisPhase::Error,
            reason: format!(
                "consecutiveErrors ({}) > consecutiveErrorLimit ({error_limit})",
                counters.consecutive_error
            ),
        });
    }
    breach
}

/// Argo's `IsTerminating`: the spec asks to terminate, or a non-dry-run metric's stored
/// phase is Failed, Error or Inconclusive.
pub fn is_terminating(spec_terminate: bool, metrics: &[(MetricLimits, MetricCounters)]) -> bool {
    spec_terminate
        || metrics.iter().any(|(limits, counters)| {
            !limits.dry_run
                && matches!(
                    counters.phase,
                    Some(
                        AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
                    )
                )
        })
}

/// Outcome counts of the dry-run metrics (`status.dryRunSummary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DryRunSummary {
    /// Dry-run metrics in the spec.
    pub count: i32,
    /// Dry-run metrics assessed Successful.
    pub successful: i32,
    /// Dry-run metrics assessed Failed.
    pub failed: i32,
    /// Dry-run metrics assessed Inconclusive.
    pub inconclusive: i32,
    /// Dry-run metrics assessed Error.
    pub error: i32,
}

/// The verdict on a whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunVerdict {
    /// The run's phase.
    pub phase: AnalysisPhase,
    /// The run's message: `Metric "<name>" assessed <Phase> due to <reason>` for the
    /// first non-dry-run metric that set the worst phase (with `: "Error Message:
    /// <provider message>"` appended when the provider gave one); empty while Running or
    /// when the worst metric broke no limit.
    pub message: String,
    /// Outcomes of the dry-run metrics.
    pub dry_run_summary: DryRunSummary,
    /// The re-assessed phase of every metric, in input order.
    pub metric_phases: Vec<AnalysisPhase>,
    /// Every metric's message after assessment, in input order: a completed dry-run
    /// metric that broke a limit gets `Metric assessed <Phase> due to <reason>` (plus the
    /// provider message as above); the others keep theirs.
    pub metric_messages: Vec<String>,
}

/// Argo's `assessRunStatus`: re-assesses every metric with [`metric_phase`] and folds the
/// results.
///
/// A metric that has no result yet is passed with [`MetricCounters::default`]. Any
/// metric not completed keeps the run Running, unless `terminating`, in which case the
/// run ends at once with the worst phase so far (Successful when nothing completed).
/// Once all completed, the run takes the worst phase of the non-dry-run metrics, or
/// Successful when only dry-run metrics exist. Dry-run metrics only feed
/// [`RunVerdict::dry_run_summary`].
pub fn run_phase(metrics: &[(MetricLimits, MetricCounters)], terminating: bool) -> RunVerdict {
    let mut worst_phase: Option<AnalysisPhase> = None;
    let mut message = String::new();
    let mut everything_completed = true;
    let mut summary = DryRunSummary::default();
    let mut metric_phases = Vec::with_capacity(metrics.len());
    let mut metric_messages = Vec::with_capacity(metrics.len());

    for (limits, counters) in metrics {
        if limits.dry_run {
            summary.count = summary.count.saturating_add(1);
        }
        let phase = metric_phase(limits, counters, terminating);
        metric_phases.push(phase);
        let mut metric_message = counters.message.clone();
        if !phase.is_completed() {
            everything_completed = false;
        } else {
            let breach = limit_breach(limits, counters);
            let with_provider = |text: String| {
                if counters.message.is_empty() {
                    text
                } else {
                    format!("{text}: \"Error Message: {}\"", counters.message)
                }
            };
            if !limits.dry_run {
                if worst_phase.is_none_or(|w| is_worse(w, phase)) {
                    worst_phase = Some(phase);
                    if let Some(b) = &breach {
                        message = with_provider(format!(
                            "Metric \"{}\" assessed {} due to {}",
                            limits.name,
                            b.phase.as_str(),
                            b.reason
                        ));
                    }
                }
            } else {
                if let Some(b) = &breach {
                    metric_message = with_provider(format!(
                        "Metric assessed {} due to {}",
                        b.phase.as_str(),
                        b.reason
                    ));
                }
                let slot = match phase {
                    AnalysisPhase::Successful => Some(&mut summary.successful),
                    AnalysisPhase::Failed => Some(&mut summary.failed),
                    AnalysisPhase::Inconclusive => Some(&mut summary.inconclusive),
                    AnalysisPhase::Error => Some(&mut summary.error),
                    _ => None,
                };
                if let Some(slot) = slot {
                    *slot = slot.saturating_add(1);
                }
            }
        }
        metric_messages.push(metric_message);
    }

    let (phase, message) = if terminating {
        match worst_phase {
            Some(w) => (w, message),
            None => (AnalysisPhase::Successful, String::new()),
        }
    } else if !everything_completed {
        (AnalysisPhase::Running, String::new())
    } else {
        match worst_phase {
            Some(w) => (w, message),
            None => (AnalysisPhase::Successful, String::new()),
        }
    };
    RunVerdict {
        phase,
        message,
        dry_run_summary: summary,
        metric_phases,
        metric_messages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> MetricLimits {
        MetricLimits {
            interval: Some("60s".into()),
            ..MetricLimits::new("m")
        }
    }

    fn finished(failed: i32) -> MetricCounters {
        MetricCounters {
            count: failed,
            failed,
            last_measurement: Some(LastMeasurement {
                phase: AnalysisPhase::Failed,
            }),
            ..MetricCounters::default()
        }
    }

    #[test]
    fn failure_limit_examples() {
        let l = MetricLimits {
            failure_limit: Some(2),
            ..limits()
        };
        assert_eq!(metric_phase(&l, &finished(3), false), AnalysisPhase::Failed);
        let l = MetricLimits {
            failure_limit: Some(3),
            ..limits()
        };
        assert_eq!(
            metric_phase(&l, &finished(3), false),
            AnalysisPhase::Running
        );
        assert_eq!(
            metric_phase(&l, &finished(3), true),
            AnalysisPhase::Successful
        );
    }

    #[test]
    fn record_measurement_follows_the_table() {
        let mut c = MetricCounters::default();
        record_measurement(&mut c, AnalysisPhase::Successful);
        record_measurement(&mut c, AnalysisPhase::Error);
        assert_eq!((c.count, c.error, c.consecutive_error), (1, 1, 1));
        assert_eq!(c.consecutive_success, 0);
        record_measurement(&mut c, AnalysisPhase::Inconclusive);
        assert_eq!((c.count, c.inconclusive, c.consecutive_error), (2, 1, 0));
        record_measurement(&mut c, AnalysisPhase::Running);
        assert_eq!(c.count, 2);
        assert_eq!(metric_phase(&limits(), &c, false), AnalysisPhase::Running);
    }

    #[test]
    fn ordering() {
        use AnalysisPhase::*;
        let order = [Successful, Running, Pending, Inconclusive, Error, Failed];
        for (i, a) in order.iter().enumerate() {
            for (j, b) in order.iter().enumerate() {
                assert_eq!(is_worse(*a, *b), j > i);
                assert_eq!(worst(*a, *b), order[i.max(j)]);
            }
        }
    }
}
