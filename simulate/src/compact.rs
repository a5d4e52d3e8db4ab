//! Statuses parked between visits as bytes.
//!
//! A [`RolloutStatus`] is about 760 bytes inline plus its strings and conditions, an
//! AnalysisRun's [`RunStatus`] a few hundred with its metric results; a fleet holds tens
//! of thousands of them between visits, and the machines only read one at a time.
//! [`Parked`] keeps one as a compact byte string (flags, varint lengths, millisecond
//! timestamps) and [`Parked::unpark_into`] rebuilds it field for field into a worker's
//! scratch status, reusing that status' allocations. The round trip is exact (every
//! field, in order), so the decisions made on an unparked status are the ones the
//! original would give. A status holding an enum value this codec does not know (the
//! enums are `#[non_exhaustive]`) is kept as it is.

use rollout_analysis::machine::{Measurement, MetricResult, RunStatus, RunSummary};
use rollout_core::status::{
    AnalysisPhase, BlueGreenStatus, CanaryStatus, ConditionStatus, ConditionType, PauseCondition,
    PauseReason, RolloutAnalysisRunStatus, RolloutCondition, RolloutPhase, RolloutStatus,
    TrafficWeights, WeightDestination,
};
use rollout_core::time::Timestamp;

/// A status type the codec knows.
pub(crate) trait Compact: Clone {
    /// Appends `self`; `None` if it holds a value the codec does not know.
    fn write(&self, w: &mut Vec<u8>) -> Option<()>;
    /// Overwrites `out` with the value at the reader; `None` on bytes not written by
    /// [`Compact::write`].
    fn read_into(r: &mut Reader<'_>, out: &mut Self) -> Option<()>;
}

impl Compact for RolloutStatus {
    fn write(&self, w: &mut Vec<u8>) -> Option<()> {
        write_status(w, self)
    }

    fn read_into(r: &mut Reader<'_>, out: &mut Self) -> Option<()> {
        read_status(r, out)
    }
}

impl Compact for RunStatus {
    fn write(&self, w: &mut Vec<u8>) -> Option<()> {
        write_run_status(w, self)
    }

    fn read_into(r: &mut Reader<'_>, out: &mut Self) -> Option<()> {
        read_run_status(r, out)
    }
}

/// A status between visits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parked<T> {
    /// Encoded.
    Bytes(Box<[u8]>),
    /// Kept as it is (it holds a value the codec does not know).
    Plain(Box<T>),
}

impl<T: Compact> Parked<T> {
    /// Parks `status`.
    pub(crate) fn park(status: &T) -> Parked<T> {
        let mut w = Vec::with_capacity(256);
        match status.write(&mut w) {
            Some(()) => Parked::Bytes(w.into_boxed_slice()),
            None => Parked::Plain(Box::new(status.clone())),
        }
    }

    /// Writes the parked status into `out` (whose allocations are reused). Returns
    /// `false` (leaving `out` unspecified) only if the bytes are not a status this codec
    /// wrote, which cannot happen for bytes from [`Parked::park`].
    pub(crate) fn unpark_into(&self, out: &mut T) -> bool {
        match self {
            Parked::Bytes(b) => {
                let mut r = Reader { b, at: 0 };
                T::read_into(&mut r, out).is_some() && r.at == b.len()
            }
            Parked::Plain(s) => {
                out.clone_from(s);
                true
            }
        }
    }
}

// ---- writing ----

fn put_u64(w: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        w.push((v as u8) | 0x80);
        v >>= 7;
    }
    w.push(v as u8);
}

/// Zig-zag, so small negative numbers stay short.
fn put_i64(w: &mut Vec<u8>, v: i64) {
    put_u64(w, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    put_u64(w, s.len() as u64);
    w.extend_from_slice(s.as_bytes());
}

fn put_opt_i64(w: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => w.push(0),
        Some(v) => {
            w.push(1);
            put_i64(w, v);
        }
    }
}

fn put_time(w: &mut Vec<u8>, t: Option<Timestamp>) {
    put_opt_i64(w, t.map(Timestamp::as_millis));
}

fn phase_code(p: AnalysisPhase) -> Option<u8> {
    Some(match p {
        AnalysisPhase::Pending => 0,
        AnalysisPhase::Running => 1,
        AnalysisPhase::Successful => 2,
        AnalysisPhase::Failed => 3,
        AnalysisPhase::Error => 4,
        AnalysisPhase::Inconclusive => 5,
        _ => return None,
    })
}

fn rollout_phase_code(p: Option<RolloutPhase>) -> Option<u8> {
    Some(match p {
        None => 0,
        Some(RolloutPhase::Healthy) => 1,
        Some(RolloutPhase::Progressing) => 2,
        Some(RolloutPhase::Paused) => 3,
        Some(RolloutPhase::Degraded) => 4,
        Some(_) => return None,
    })
}

fn pause_code(r: PauseReason) -> Option<u8> {
    Some(match r {
        PauseReason::CanaryPauseStep => 0,
        PauseReason::BlueGreenPause => 1,
        PauseReason::InconclusiveAnalysisRun => 2,
        PauseReason::InconclusiveExperiment => 3,
        _ => return None,
    })
}

fn condition_type_code(t: ConditionType) -> Option<u8> {
    Some(match t {
        ConditionType::Available => 0,
        ConditionType::Progressing => 1,
        ConditionType::Paused => 2,
        ConditionType::Completed => 3,
        ConditionType::Healthy => 4,
        ConditionType::ReplicaFailure => 5,
        ConditionType::InvalidSpec => 6,
        _ => return None,
    })
}

fn condition_status_code(s: ConditionStatus) -> Option<u8> {
    Some(match s {
        ConditionStatus::True => 0,
        ConditionStatus::False => 1,
        ConditionStatus::Unknown => 2,
        _ => return None,
    })
}

fn write_run(w: &mut Vec<u8>, r: Option<&RolloutAnalysisRunStatus>) -> Option<()> {
    match r {
        None => w.push(0),
        Some(r) => {
            w.push(1);
            put_str(w, &r.name);
            w.push(phase_code(r.status)?);
            put_str(w, &r.message);
        }
    }
    Some(())
}

fn write_destination(w: &mut Vec<u8>, d: &WeightDestination) {
    put_i64(w, i64::from(d.weight));
    put_str(w, &d.service_name);
    put_str(w, &d.pod_template_hash);
}

fn write_status(w: &mut Vec<u8>, s: &RolloutStatus) -> Option<()> {
    // Field order as declared in `RolloutStatus`.
    let RolloutStatus {
        abort,
        pause_conditions,
        controller_pause,
        aborted_at,
        current_pod_hash,
        current_step_hash,
        replicas,
        updated_replicas,
        ready_replicas,
        available_replicas,
        current_step_index,
        collision_count,
        observed_generation,
        conditions,
        canary,
        blue_green,
        hpa_replicas,
        selector,
        stable_rs,
        restarted_at,
        promote_full,
        phase,
        message,
        workload_observed_generation,
    } = s;
    w.push(u8::from(*abort) | u8::from(*controller_pause) << 1 | u8::from(*promote_full) << 2);
    put_u64(w, pause_conditions.len() as u64);
    for p in pause_conditions {
        w.push(pause_code(p.reason)?);
        put_i64(w, p.start_time.as_millis());
    }
    put_time(w, *aborted_at);
    put_str(w, current_pod_hash);
    put_str(w, current_step_hash);
    for n in [
        replicas,
        updated_replicas,
        ready_replicas,
        available_replicas,
    ] {
        put_i64(w, i64::from(*n));
    }
    put_opt_i64(w, current_step_index.map(i64::from));
    put_opt_i64(w, collision_count.map(i64::from));
    put_str(w, observed_generation);
    put_u64(w, conditions.len() as u64);
    for c in conditions {
        w.push(condition_type_code(c.type_)?);
        w.push(condition_status_code(c.status)?);
        put_time(w, c.last_update_time);
        put_time(w, c.last_transition_time);
        put_str(w, &c.reason);
        put_str(w, &c.message);
    }
    let CanaryStatus {
        current_step_analysis_run_status,
        current_background_analysis_run_status,
        current_experiment,
        weights,
        stable_ping_pong,
    } = canary;
    write_run(w, current_step_analysis_run_status.as_ref())?;
    write_run(w, current_background_analysis_run_status.as_ref())?;
    put_str(w, current_experiment);
    match weights {
        None => w.push(0),
        Some(t) => {
            w.push(1);
            write_destination(w, &t.canary);
            write_destination(w, &t.stable);
            put_u64(w, t.additional.len() as u64);
            for d in &t.additional {
                write_destination(w, d);
            }
            w.push(match t.verified {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
        }
    }
    put_str(w, stable_ping_pong);
    let BlueGreenStatus {
        preview_selector,
        active_selector,
        scale_up_preview_check_point,
        pre_promotion_analysis_run_status,
        post_promotion_analysis_run_status,
    } = blue_green;
    put_str(w, preview_selector);
    put_str(w, active_selector);
    w.push(u8::from(*scale_up_preview_check_point));
    write_run(w, pre_promotion_analysis_run_status.as_ref())?;
    write_run(w, post_promotion_analysis_run_status.as_ref())?;
    put_i64(w, i64::from(*hpa_replicas));
    put_str(w, selector);
    put_str(w, stable_rs);
    put_time(w, *restarted_at);
    w.push(rollout_phase_code(*phase)?);
    put_str(w, message);
    put_str(w, workload_observed_generation);
    Some(())
}

fn put_opt_phase(w: &mut Vec<u8>, p: Option<AnalysisPhase>) -> Option<()> {
    w.push(match p {
        None => 0,
        Some(p) => 1 + phase_code(p)?,
    });
    Some(())
}

fn write_run_status(w: &mut Vec<u8>, s: &RunStatus) -> Option<()> {
    let RunStatus {
        phase,
        message,
        started_at,
        metric_results,
        dry_run_summary,
    } = s;
    put_opt_phase(w, *phase)?;
    put_str(w, message);
    put_time(w, *started_at);
    put_u64(w, metric_results.len() as u64);
    for m in metric_results {
        let MetricResult {
            name,
            phase,
            measurements,
            count,
            successful,
            failed,
            inconclusive,
            error,
            consecutive_error,
            consecutive_success,
            message,
            dry_run,
        } = m;
        put_str(w, name);
        w.push(phase_code(*phase)?);
        put_u64(w, measurements.len() as u64);
        for x in measurements {
            let Measurement {
                phase,
                value,
                started_at,
                finished_at,
                resume_at,
                message,
            } = x;
            w.push(phase_code(*phase)?);
            put_str(w, value);
            put_time(w, *started_at);
            put_time(w, *finished_at);
            put_time(w, *resume_at);
            put_str(w, message);
        }
        for n in [
            count,
            successful,
            failed,
            inconclusive,
            error,
            consecutive_error,
            consecutive_success,
        ] {
            put_i64(w, i64::from(*n));
        }
        put_str(w, message);
        w.push(u8::from(*dry_run));
    }
    match dry_run_summary {
        None => w.push(0),
        Some(RunSummary {
            count,
            successful,
            failed,
            inconclusive,
            error,
        }) => {
            w.push(1);
            for n in [count, successful, failed, inconclusive, error] {
                put_i64(w, i64::from(*n));
            }
        }
    }
    Some(())
}

// ---- reading ----

/// Reads what the writers above wrote.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn i64(&mut self) -> Option<i64> {
        let z = self.u64()?;
        Some((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    fn i32(&mut self) -> Option<i32> {
        i32::try_from(self.i64()?).ok()
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }

    fn str_into(&mut self, out: &mut String) -> Option<()> {
        let n = self.len()?;
        let end = self.at.checked_add(n)?;
        let s = std::str::from_utf8(self.b.get(self.at..end)?).ok()?;
        self.at = end;
        out.clear();
        out.push_str(s);
        Some(())
    }

    fn opt_i64(&mut self) -> Option<Option<i64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.i64()?)),
            _ => None,
        }
    }

    fn time(&mut self) -> Option<Option<Timestamp>> {
        Some(self.opt_i64()?.map(Timestamp::from_millis))
    }

    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// A count of entries that take at least one byte each.
    fn count(&mut self) -> Option<usize> {
        let n = self.len()?;
        (n <= self.b.len() - self.at).then_some(n)
    }
}

fn phase_of(c: u8) -> Option<AnalysisPhase> {
    Some(match c {
        0 => AnalysisPhase::Pending,
        1 => AnalysisPhase::Running,
        2 => AnalysisPhase::Successful,
        3 => AnalysisPhase::Failed,
        4 => AnalysisPhase::Error,
        5 => AnalysisPhase::Inconclusive,
        _ => return None,
    })
}

fn rollout_phase_of(c: u8) -> Option<Option<RolloutPhase>> {
    Some(match c {
        0 => None,
        1 => Some(RolloutPhase::Healthy),
        2 => Some(RolloutPhase::Progressing),
        3 => Some(RolloutPhase::Paused),
        4 => Some(RolloutPhase::Degraded),
        _ => return None,
    })
}

fn pause_of(c: u8) -> Option<PauseReason> {
    Some(match c {
        0 => PauseReason::CanaryPauseStep,
        1 => PauseReason::BlueGreenPause,
        2 => PauseReason::InconclusiveAnalysisRun,
        3 => PauseReason::InconclusiveExperiment,
        _ => return None,
    })
}

fn condition_type_of(c: u8) -> Option<ConditionType> {
    Some(match c {
        0 => ConditionType::Available,
        1 => ConditionType::Progressing,
        2 => ConditionType::Paused,
        3 => ConditionType::Completed,
        4 => ConditionType::Healthy,
        5 => ConditionType::ReplicaFailure,
        6 => ConditionType::InvalidSpec,
        _ => return None,
    })
}

fn condition_status_of(c: u8) -> Option<ConditionStatus> {
    Some(match c {
        0 => ConditionStatus::True,
        1 => ConditionStatus::False,
        2 => ConditionStatus::Unknown,
        _ => return None,
    })
}

fn read_run(r: &mut Reader<'_>, out: &mut Option<RolloutAnalysisRunStatus>) -> Option<()> {
    match r.u8()? {
        0 => *out = None,
        1 => {
            let run = out.get_or_insert_with(|| RolloutAnalysisRunStatus {
                name: String::new(),
                status: AnalysisPhase::Pending,
                message: String::new(),
            });
            r.str_into(&mut run.name)?;
            run.status = phase_of(r.u8()?)?;
            r.str_into(&mut run.message)?;
        }
        _ => return None,
    }
    Some(())
}

fn read_run_status(r: &mut Reader<'_>, s: &mut RunStatus) -> Option<()> {
    s.phase = match r.u8()? {
        0 => None,
        c => Some(phase_of(c - 1)?),
    };
    r.str_into(&mut s.message)?;
    s.started_at = r.time()?;
    let n = r.count()?;
    resize_with(&mut s.metric_results, n, MetricResult::default);
    for m in &mut s.metric_results {
        r.str_into(&mut m.name)?;
        m.phase = phase_of(r.u8()?)?;
        let n = r.count()?;
        resize_with(&mut m.measurements, n, Measurement::default);
        for x in &mut m.measurements {
            x.phase = phase_of(r.u8()?)?;
            r.str_into(&mut x.value)?;
            x.started_at = r.time()?;
            x.finished_at = r.time()?;
            x.resume_at = r.time()?;
            r.str_into(&mut x.message)?;
        }
        for n in [
            &mut m.count,
            &mut m.successful,
            &mut m.failed,
            &mut m.inconclusive,
            &mut m.error,
            &mut m.consecutive_error,
            &mut m.consecutive_success,
        ] {
            *n = r.i32()?;
        }
        r.str_into(&mut m.message)?;
        m.dry_run = r.bool()?;
    }
    s.dry_run_summary = match r.u8()? {
        0 => None,
        1 => Some(RunSummary {
            count: r.i32()?,
            successful: r.i32()?,
            failed: r.i32()?,
            inconclusive: r.i32()?,
            error: r.i32()?,
        }),
        _ => return None,
    };
    Some(())
}

fn read_destination(r: &mut Reader<'_>, d: &mut WeightDestination) -> Option<()> {
    d.weight = r.i32()?;
    r.str_into(&mut d.service_name)?;
    r.str_into(&mut d.pod_template_hash)
}

/// Resizes `v` to `n` entries, reusing the ones it has.
fn resize_with<T>(v: &mut Vec<T>, n: usize, new: impl Fn() -> T) {
    v.truncate(n);
    while v.len() < n {
        v.push(new());
    }
}

fn read_status(r: &mut Reader<'_>, s: &mut RolloutStatus) -> Option<()> {
    let flags = r.u8()?;
    s.abort = flags & 1 != 0;
    s.controller_pause = flags & 2 != 0;
    s.promote_full = flags & 4 != 0;
    let n = r.count()?;
    s.pause_conditions.clear();
    for _ in 0..n {
        let reason = pause_of(r.u8()?)?;
        let start_time = Timestamp::from_millis(r.i64()?);
        s.pause_conditions
            .push(PauseCondition { reason, start_time });
    }
    s.aborted_at = r.time()?;
    r.str_into(&mut s.current_pod_hash)?;
    r.str_into(&mut s.current_step_hash)?;
    s.replicas = r.i32()?;
    s.updated_replicas = r.i32()?;
    s.ready_replicas = r.i32()?;
    s.available_replicas = r.i32()?;
    s.current_step_index = r.opt_i64()?.map(i32::try_from).transpose().ok()?;
    s.collision_count = r.opt_i64()?.map(i32::try_from).transpose().ok()?;
    r.str_into(&mut s.observed_generation)?;
    let n = r.count()?;
    resize_with(&mut s.conditions, n, || RolloutCondition {
        type_: ConditionType::Available,
        status: ConditionStatus::Unknown,
        last_update_time: None,
        last_transition_time: None,
        reason: String::new(),
        message: String::new(),
    });
    for c in &mut s.conditions {
        c.type_ = condition_type_of(r.u8()?)?;
        c.status = condition_status_of(r.u8()?)?;
        c.last_update_time = r.time()?;
        c.last_transition_time = r.time()?;
        r.str_into(&mut c.reason)?;
        r.str_into(&mut c.message)?;
    }
    let c = &mut s.canary;
    read_run(r, &mut c.current_step_analysis_run_status)?;
    read_run(r, &mut c.current_background_analysis_run_status)?;
    r.str_into(&mut c.current_experiment)?;
    match r.u8()? {
        0 => c.weights = None,
        1 => {
            let t = c.weights.get_or_insert_with(TrafficWeights::default);
            read_destination(r, &mut t.canary)?;
            read_destination(r, &mut t.stable)?;
            let n = r.count()?;
            resize_with(&mut t.additional, n, WeightDestination::default);
            for d in &mut t.additional {
                read_destination(r, d)?;
            }
            t.verified = match r.u8()? {
                0 => None,
                1 => Some(false),
                2 => Some(true),
                _ => return None,
            };
        }
        _ => return None,
    }
    r.str_into(&mut c.stable_ping_pong)?;
    let bg = &mut s.blue_green;
    r.str_into(&mut bg.preview_selector)?;
    r.str_into(&mut bg.active_selector)?;
    bg.scale_up_preview_check_point = r.bool()?;
    read_run(r, &mut bg.pre_promotion_analysis_run_status)?;
    read_run(r, &mut bg.post_promotion_analysis_run_status)?;
    s.hpa_replicas = r.i32()?;
    r.str_into(&mut s.selector)?;
    r.str_into(&mut s.stable_rs)?;
    s.restarted_at = r.time()?;
    s.phase = rollout_phase_of(r.u8()?)?;
    r.str_into(&mut s.message)?;
    r.str_into(&mut s.workload_observed_generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> RolloutStatus {
        let t = |s| Some(Timestamp::from_secs(s));
        let run = |name: &str, status, message: &str| RolloutAnalysisRunStatus {
            name: name.into(),
            status,
            message: message.into(),
        };
        let dest = |weight, svc: &str, hash: &str| WeightDestination {
            weight,
            service_name: svc.into(),
            pod_template_hash: hash.into(),
        };
        RolloutStatus {
            abort: true,
            pause_conditions: vec![
                PauseCondition {
                    reason: PauseReason::InconclusiveAnalysisRun,
                    start_time: Timestamp::from_millis(-1_500),
                },
                PauseCondition {
                    reason: PauseReason::BlueGreenPause,
                    start_time: Timestamp::from_secs(1_767_225_600),
                },
            ],
            controller_pause: true,
            aborted_at: t(1_767_225_700),
            current_pod_hash: "v2".into(),
            current_step_hash: "5f8d7c9b4".into(),
            replicas: 11,
            updated_replicas: 1,
            ready_replicas: -3,
            available_replicas: i32::MAX,
            current_step_index: Some(i32::MIN),
            collision_count: Some(0),
            observed_generation: "7".into(),
            conditions: vec![
                RolloutCondition {
                    type_: ConditionType::Progressing,
                    status: ConditionStatus::False,
                    last_update_time: t(5),
                    last_transition_time: None,
                    reason: "RolloutAborted".into(),
                    message: "Rollout aborted update to revision 2: é ✓".into(),
                },
                RolloutCondition {
                    type_: ConditionType::InvalidSpec,
                    status: ConditionStatus::Unknown,
                    last_update_time: None,
                    last_transition_time: t(-5),
                    reason: String::new(),
                    message: "x".repeat(300),
                },
            ],
            canary: CanaryStatus {
                current_step_analysis_run_status: Some(run("web-v2-3", AnalysisPhase::Error, "")),
                current_background_analysis_run_status: Some(run(
                    "web-v2-bg",
                    AnalysisPhase::Inconclusive,
                    "Metric \"error-rate\" assessed Failed",
                )),
                current_experiment: "exp".into(),
                weights: Some(TrafficWeights {
                    canary: dest(10, "canary", "v2"),
                    stable: dest(90, "stable", "v1"),
                    additional: vec![dest(5, "exp", "x"), dest(0, "", "")],
                    verified: Some(false),
                }),
                stable_ping_pong: "ping".into(),
            },
            blue_green: BlueGreenStatus {
                preview_selector: "v2".into(),
                active_selector: "v1".into(),
                scale_up_preview_check_point: true,
                pre_promotion_analysis_run_status: Some(run("pre", AnalysisPhase::Successful, "")),
                post_promotion_analysis_run_status: Some(run("post", AnalysisPhase::Failed, "m")),
            },
            hpa_replicas: 4,
            selector: "app=web".into(),
            stable_rs: "v1".into(),
            restarted_at: t(1),
            promote_full: true,
            phase: Some(RolloutPhase::Degraded),
            message: "RolloutAborted: Rollout aborted update to revision 2".into(),
            workload_observed_generation: "3".into(),
        }
    }

    #[test]
    fn every_field_round_trips_into_a_fresh_or_a_used_status() {
        let statuses = [RolloutStatus::default(), full()];
        for s in &statuses {
            let parked = Parked::park(s);
            assert!(matches!(parked, Parked::Bytes(_)));
            let mut fresh = RolloutStatus::default();
            assert!(parked.unpark_into(&mut fresh));
            assert_eq!(&fresh, s);
            // Into scratch space that held the other status: nothing of it survives.
            for other in &statuses {
                let mut used = other.clone();
                assert!(parked.unpark_into(&mut used));
                assert_eq!(&used, s);
            }
        }
    }

    fn run_status() -> RunStatus {
        let t = |s| Some(Timestamp::from_secs(s));
        let measurement = |phase, value: &str, message: &str| Measurement {
            phase,
            value: value.into(),
            started_at: t(10),
            finished_at: t(11),
            resume_at: None,
            message: message.into(),
        };
        RunStatus {
            phase: Some(AnalysisPhase::Failed),
            message: "Metric \"error-rate\" assessed Failed due to failed (3) > failureLimit (2)"
                .into(),
            started_at: t(1_767_225_600),
            metric_results: vec![
                MetricResult {
                    name: "error-rate".into(),
                    phase: AnalysisPhase::Failed,
                    measurements: vec![
                        measurement(AnalysisPhase::Successful, "[0.004]", ""),
                        Measurement {
                            resume_at: t(-20),
                            finished_at: None,
                            ..measurement(AnalysisPhase::Running, "", "")
                        },
                    ],
                    count: 5,
                    successful: 2,
                    failed: 3,
                    inconclusive: -1,
                    error: i32::MAX,
                    consecutive_error: i32::MIN,
                    consecutive_success: 0,
                    message: "x".into(),
                    dry_run: true,
                },
                MetricResult {
                    name: "latency-p99".into(),
                    phase: AnalysisPhase::Error,
                    measurements: vec![measurement(AnalysisPhase::Error, "", "timeout ✓")],
                    ..MetricResult::default()
                },
            ],
            dry_run_summary: Some(RunSummary {
                count: 1,
                successful: 0,
                failed: 1,
                inconclusive: 0,
                error: 0,
            }),
        }
    }

    #[test]
    fn every_run_status_field_round_trips_into_a_fresh_or_a_used_status() {
        let statuses = [RunStatus::default(), run_status()];
        for s in &statuses {
            let parked = Parked::park(s);
            assert!(matches!(parked, Parked::Bytes(_)));
            for other in [RunStatus::default(), run_status()] {
                let mut out = other;
                assert!(parked.unpark_into(&mut out));
                assert_eq!(&out, s);
            }
        }
        let Parked::Bytes(b) = Parked::park(&run_status()) else {
            panic!("not encoded");
        };
        let mut out = RunStatus::default();
        for n in 0..b.len() {
            let cut: Parked<RunStatus> = Parked::Bytes(b[..n].to_vec().into_boxed_slice());
            assert!(!cut.unpark_into(&mut out), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn the_bytes_are_much_smaller_than_the_status() {
        let Parked::Bytes(b) = Parked::park(&full()) else {
            panic!("not encoded");
        };
        // The strings (about 600 bytes here) plus a few bytes per field.
        assert!(b.len() < 720, "{}", b.len());
        assert!(std::mem::size_of::<Parked<RolloutStatus>>() <= 24);
    }

    #[test]
    fn truncated_or_corrupt_bytes_are_refused_without_panicking() {
        let Parked::Bytes(b) = Parked::park(&full()) else {
            panic!("not encoded");
        };
        let mut out = RolloutStatus::default();
        for n in 0..b.len() {
            let cut: Parked<RolloutStatus> = Parked::Bytes(b[..n].to_vec().into_boxed_slice());
            assert!(!cut.unpark_into(&mut out), "prefix of {n} bytes accepted");
        }
        let mut longer = b.to_vec();
        longer.push(0);
        assert!(!Parked::Bytes(longer.into_boxed_slice()).unpark_into(&mut out));
        let mut bad = b.to_vec();
        bad[1] = 0xff; // a pause-condition count no status has
        assert!(!Parked::Bytes(bad.into_boxed_slice()).unpark_into(&mut out));
    }
}
