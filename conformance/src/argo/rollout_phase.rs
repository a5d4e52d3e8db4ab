//! Adapter for `argo/rollout_phase.json`: `input.spec` and `input.status` mapped onto
//! [`rollout_core::phase::rollout_phase`] (Argo's client-side `GetRolloutPhase`).
//!
//! Times are relative to a fixed "now" ([`NOW`]): `restart_at`/`restarted_at` may be a
//! Go duration (`"-60s"`), a number of seconds, or an RFC 3339 timestamp.

use rollout_core::duration::Duration;
use rollout_core::phase::{PhaseInput, rollout_phase};
use rollout_core::status::{
    AnalysisPhase, ConditionStatus, ConditionType, PauseCondition, PauseReason,
    RolloutAnalysisRunStatus, RolloutCondition, RolloutPhase, RolloutStatus,
};
use rollout_core::time::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::json::{Res, actual, compare, parse};
use crate::{Case, CaseResult};

/// The fixed "now" relative times are resolved against: 2026-01-01T00:00:00Z.
pub const NOW: Timestamp = Timestamp::from_secs(1_767_225_600);

/// Runs one case of `argo/rollout_phase.json`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let result = match case.kind {
        "rollout_phase" => phase(case.input),
        other => Err(format!("unknown kind {other:?}")),
    };
    match result {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseCase {
    spec: VSpec,
    status: VStatus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VSpec {
    strategy: String,
    #[serde(default)]
    spec_replicas: Option<i32>,
    /// Steps do not feed the phase; accepted for completeness.
    #[serde(default, rename = "steps")]
    _steps: Option<Value>,
    #[serde(default)]
    traffic_routing: Option<bool>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    restart_at: Option<Value>,
    #[serde(default)]
    post_promotion_analysis: Option<bool>,
    #[serde(default)]
    generation: Option<i64>,
    #[serde(default)]
    template_resolved_from_ref: Option<bool>,
    #[serde(default)]
    workload_generation_annotation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VStatus {
    #[serde(default)]
    current_step_index: Option<i32>,
    #[serde(default)]
    replicas: i32,
    #[serde(default)]
    ready_replicas: i32,
    #[serde(default)]
    updated_replicas: i32,
    #[serde(default)]
    available_replicas: i32,
    #[serde(default)]
    stable_rs: String,
    #[serde(default)]
    current_pod_hash: String,
    #[serde(default)]
    observed_generation: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    conditions: Vec<VCondition>,
    #[serde(default)]
    pause_conditions: Vec<Value>,
    #[serde(default)]
    controller_pause: bool,
    #[serde(default)]
    restarted_at: Option<Value>,
    #[serde(default)]
    active_selector: String,
    #[serde(default)]
    workload_observed_generation: String,
    /// Phase of the blue-green post-promotion analysis run, if one exists.
    #[serde(default)]
    post_promotion_analysis_run_status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VCondition {
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
}

fn enum_of<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Res<T> {
    parse(&json!(s), what)
}

/// A time relative to [`NOW`]: a Go duration string, seconds, or RFC 3339.
fn time_of(v: &Value) -> Res<Timestamp> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(|s| NOW.add_secs(s))
            .ok_or_else(|| format!("cannot express time {v}")),
        Value::String(s) => match Duration::parse(s) {
            Ok(d) => Ok(NOW.add_millis(d.as_millis())),
            Err(_) => Timestamp::parse_rfc3339(s).map_err(|e| format!("cannot express time: {e}")),
        },
        other => Err(format!("cannot express time {other}")),
    }
}

fn pause_of(v: &Value) -> Res<PauseCondition> {
    let (reason, start) = match v {
        Value::String(reason) => (reason.as_str(), None),
        Value::Object(o) => (
            o.get("reason")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("cannot express pause condition {v}"))?,
            o.get("start_time").filter(|t| !t.is_null()),
        ),
        _ => return Err(format!("cannot express pause condition {v}")),
    };
    Ok(PauseCondition {
        reason: enum_of::<PauseReason>(reason, "pause reason")?,
        start_time: start.map(time_of).transpose()?.unwrap_or(NOW),
    })
}

fn phase(input: &Value) -> Res<serde_json::Map<String, Value>> {
    let case: PhaseCase = parse(input, "rollout_phase input")?;
    let (spec, st) = (&case.spec, &case.status);
    let strategy = match spec.strategy.as_str() {
        "canary" => rollout_core::phase::StrategyKind::Canary,
        "blueGreen" => rollout_core::phase::StrategyKind::BlueGreen,
        other => return Err(format!("cannot express strategy {other:?}")),
    };
    let mut status = RolloutStatus {
        current_step_index: st.current_step_index,
        replicas: st.replicas,
        ready_replicas: st.ready_replicas,
        updated_replicas: st.updated_replicas,
        available_replicas: st.available_replicas,
        stable_rs: st.stable_rs.clone(),
        current_pod_hash: st.current_pod_hash.clone(),
        observed_generation: st.observed_generation.clone(),
        phase: if st.phase.is_empty() {
            None
        } else {
            Some(enum_of::<RolloutPhase>(&st.phase, "phase")?)
        },
        message: st.message.clone(),
        controller_pause: st.controller_pause,
        restarted_at: st.restarted_at.as_ref().map(time_of).transpose()?,
        workload_observed_generation: st.workload_observed_generation.clone(),
        ..RolloutStatus::default()
    };
    status.blue_green.active_selector = st.active_selector.clone();
    if let Some(run) = &st.post_promotion_analysis_run_status {
        status.blue_green.post_promotion_analysis_run_status = Some(RolloutAnalysisRunStatus {
            name: "post-promotion".into(),
            status: enum_of::<AnalysisPhase>(run, "analysis phase")?,
            message: String::new(),
        });
    }
    for c in &st.conditions {
        status.conditions.push(RolloutCondition {
            type_: enum_of::<ConditionType>(&c.type_, "condition type")?,
            status: match &c.status {
                Some(s) => enum_of::<ConditionStatus>(s, "condition status")?,
                None => ConditionStatus::False,
            },
            last_update_time: None,
            last_transition_time: None,
            reason: c.reason.clone(),
            message: c.message.clone(),
        });
    }
    for p in &st.pause_conditions {
        status.pause_conditions.push(pause_of(p)?);
    }
    let input = PhaseInput {
        strategy,
        spec_replicas: spec.spec_replicas.unwrap_or(1),
        traffic_routing: spec.traffic_routing.unwrap_or(false),
        paused: spec.paused.unwrap_or(false),
        restart_at: spec.restart_at.as_ref().map(time_of).transpose()?,
        post_promotion_analysis: spec.post_promotion_analysis.unwrap_or(false),
        generation: spec.generation.unwrap_or(0),
        template_resolved_from_ref: spec.template_resolved_from_ref.unwrap_or(false),
        workload_generation: spec.workload_generation_annotation.as_deref(),
        status: &status,
    };
    let (phase, message) = rollout_phase(&input);
    Ok(actual([
        ("phase", json!(phase.as_str())),
        ("message", json!(message)),
    ]))
}
