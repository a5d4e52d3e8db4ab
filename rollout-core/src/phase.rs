//! The rollout phase and message, computed the way Argo Rollouts reports them.
//!
//! Argo summarises a rollout in `status.phase` (`Healthy`, `Progressing`, `Paused`,
//! `Degraded`) plus a short `status.message`. The controller computes both from the spec
//! and the status on every reconcile ([`calculate_phase`]); clients (the CLI, the UI,
//! notifications) call a wrapper ([`rollout_phase`]) that first checks whether the
//! controller has caught up with the object:
//!
//! 1. `status.observedGeneration` is numeric and below `metadata.generation` →
//!    Progressing, "waiting for rollout spec update to be observed" (a non-numeric,
//!    pre-1.0 observedGeneration hash skips this check);
//! 2. `status.controllerPause` is set but there are no pause conditions (a promote the
//!    controller has not seen yet) → Progressing, "waiting for rollout to unpause";
//! 3. the template comes from a `workloadRef` and the referenced workload's generation
//!    (the `rollout.argoproj.io/workload-generation` annotation) differs from
//!    `status.workloadObservedGeneration` → Progressing, "waiting for rollout spec update
//!    to be observed for the reference workload";
//! 4. then the phase stored in the status, if the controller wrote one; otherwise the
//!    controller's computation.
//!
//! The controller's computation checks, in order: a condition of type `InvalidSpec` or
//! with reason `RolloutAborted`/`ProgressDeadlineExceeded` (Degraded, `"<reason>: <msg>"`),
//! `spec.paused` (Paused, "manually paused"), any pause condition (Paused, its reason), an
//! unfinished `restartAt`, too few updated or available pods, then the strategy-specific
//! checks (blue-green service cutover and post-promotion verification; basic-canary old
//! pods; the canary not yet stable), and reports Healthy when none applies. The messages
//! are Argo's exact strings.
//!
//! ```
//! use rollout_core::phase::{calculate_phase, PhaseInput, StrategyKind};
//! use rollout_core::status::{RolloutPhase, RolloutStatus};
//!
//! let status = RolloutStatus { updated_replicas: 3, ..Default::default() };
//! let input = PhaseInput::new(StrategyKind::Canary, 5, &status);
//! let (phase, message) = calculate_phase(&input);
//! assert_eq!(phase, RolloutPhase::Progressing);
//! assert_eq!(message, "more replicas need to be updated");
//! ```

use std::borrow::Cow;

use crate::status::{ConditionType, RolloutPhase, RolloutStatus};
use crate::time::Timestamp;

/// Which deployment strategy a rollout uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StrategyKind {
    /// `spec.strategy.canary`.
    Canary,
    /// `spec.strategy.blueGreen`.
    BlueGreen,
}

/// Message while `metadata.generation` has not been observed.
pub const MSG_SPEC_NOT_OBSERVED: &str = "waiting for rollout spec update to be observed";
/// Message while a promote has cleared the pause conditions but not `controllerPause`.
pub const MSG_UNPAUSING: &str = "waiting for rollout to unpause";
/// Message while the referenced workload's generation has not been observed.
pub const MSG_WORKLOAD_NOT_OBSERVED: &str =
    "waiting for rollout spec update to be observed for the reference workload";
/// Message of a `spec.paused` rollout.
pub const MSG_MANUALLY_PAUSED: &str = "manually paused";
/// Message while `spec.restartAt` has not been carried out.
pub const MSG_RESTARTING: &str = "rollout is restarting";
/// Message while fewer pods than `spec.replicas` run the current template.
pub const MSG_MORE_REPLICAS: &str = "more replicas need to be updated";
/// Message while updated pods are not all available.
pub const MSG_BECOMING_AVAILABLE: &str = "updated replicas are still becoming available";
/// Message while the blue-green active service still selects the old pods.
pub const MSG_CUTOVER_PENDING: &str = "active service cutover pending";
/// Message while blue-green post-promotion analysis runs.
pub const MSG_WAITING_FOR_ANALYSIS: &str = "waiting for analysis to complete";
/// Message while blue-green post-promotion verification is pending.
pub const MSG_POST_PROMOTION: &str = "waiting for post-promotion verification to complete";
/// Message while a basic canary still has old pods.
pub const MSG_OLD_REPLICAS: &str = "old replicas are pending termination";
/// Message while a canary has steps left.
pub const MSG_STEPS_PENDING: &str = "waiting for all steps to complete";

/// Condition reason of an aborted update.
pub const REASON_ROLLOUT_ABORTED: &str = "RolloutAborted";
/// Condition reason of an exceeded progress deadline.
pub const REASON_PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// The spec facts and the status the phase is computed from.
#[derive(Debug, Clone, Copy)]
pub struct PhaseInput<'a> {
    /// `spec.strategy`.
    pub strategy: StrategyKind,
    /// `spec.replicas` (the caller applies the default of 1).
    pub spec_replicas: i32,
    /// Whether `canary.trafficRouting` is set.
    pub traffic_routing: bool,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.restartAt`.
    pub restart_at: Option<Timestamp>,
    /// Whether `blueGreen.postPromotionAnalysis` is configured.
    pub post_promotion_analysis: bool,
    /// `metadata.generation`.
    pub generation: i64,
    /// Whether the pod template was resolved from `spec.workloadRef`.
    pub template_resolved_from_ref: bool,
    /// The `rollout.argoproj.io/workload-generation` annotation, if present.
    pub workload_generation: Option<&'a str>,
    /// The rollout's status.
    pub status: &'a RolloutStatus,
}

impl<'a> PhaseInput<'a> {
    /// An input with the given strategy, replicas and status; everything else unset.
    pub fn new(strategy: StrategyKind, spec_replicas: i32, status: &'a RolloutStatus) -> Self {
        PhaseInput {
            strategy,
            spec_replicas,
            traffic_routing: false,
            paused: false,
            restart_at: None,
            post_promotion_analysis: false,
            generation: 0,
            template_resolved_from_ref: false,
            workload_generation: None,
            status,
        }
    }
}

/// Whether `metadata.generation` has been observed. A non-numeric observedGeneration (a
/// pre-1.0 hash) or one ahead of the generation counts as observed.
pub fn is_generation_observed(observed_generation: &str, generation: i64) -> bool {
    match observed_generation.parse::<i64>() {
        Err(_) => true,
        Ok(observed) => observed >= generation,
    }
}

/// Whether a promote has cleared the pause conditions but the controller has not yet
/// cleared `controllerPause`.
pub fn is_unpausing(status: &RolloutStatus) -> bool {
    status.controller_pause && status.pause_conditions.is_empty()
}

/// Whether the referenced workload's generation has been observed. True when the
/// annotation is absent or not a number, or when the observed value is not a number.
pub fn is_workload_generation_observed(
    workload_generation: Option<&str>,
    workload_observed_generation: &str,
) -> bool {
    let Some(Ok(wanted)) = workload_generation.map(str::parse::<i32>) else {
        return true;
    };
    match workload_observed_generation.parse::<i32>() {
        Err(_) => true,
        Ok(observed) => observed == wanted,
    }
}

/// The phase and message as clients see them (Argo's `GetRolloutPhase`): the three
/// catch-up checks, then the phase stored in the status, else [`calculate_phase`].
pub fn rollout_phase<'a>(input: &PhaseInput<'a>) -> (RolloutPhase, Cow<'a, str>) {
    let status = input.status;
    if !is_generation_observed(&status.observed_generation, input.generation) {
        return progressing(MSG_SPEC_NOT_OBSERVED);
    }
    if is_unpausing(status) {
        return progressing(MSG_UNPAUSING);
    }
    if input.template_resolved_from_ref
        && !is_workload_generation_observed(
            input.workload_generation,
            &status.workload_observed_generation,
        )
    {
        return progressing(MSG_WORKLOAD_NOT_OBSERVED);
    }
    if let Some(phase) = status.phase {
        return (phase, Cow::Borrowed(status.message.as_str()));
    }
    calculate_phase(input)
}

fn progressing<'a>(message: &'static str) -> (RolloutPhase, Cow<'a, str>) {
    (RolloutPhase::Progressing, Cow::Borrowed(message))
}

/// A phase message kept as borrowed parts, `"<prefix>: <text>"` or just `<text>`, so a
/// machine can compare it with the stored message without building it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseMessage<'a> {
    prefix: &'a str,
    text: &'a str,
}

impl<'a> PhaseMessage<'a> {
    fn plain(text: &'a str) -> Self {
        PhaseMessage { prefix: "", text }
    }

    /// Whether `message` is this message, compared without allocating.
    pub fn is(&self, message: &str) -> bool {
        if self.prefix.is_empty() {
            return message == self.text;
        }
        message
            .strip_prefix(self.prefix)
            .and_then(|m| m.strip_prefix(": "))
            == Some(self.text)
    }

    /// The message as one string (borrowed when it has no prefix).
    pub fn to_cow(&self) -> Cow<'a, str> {
        if self.prefix.is_empty() {
            Cow::Borrowed(self.text)
        } else {
            Cow::Owned(format!("{}: {}", self.prefix, self.text))
        }
    }
}

impl std::fmt::Display for PhaseMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(self.text)
        } else {
            write!(f, "{}: {}", self.prefix, self.text)
        }
    }
}

/// The phase and message (borrowed where Argo's string is a constant) as the controller
/// computes them (Argo's
/// `CalculateRolloutPhase`), without the client-side catch-up checks.
pub fn calculate_phase<'a>(input: &PhaseInput<'a>) -> (RolloutPhase, Cow<'a, str>) {
    let (phase, message) = calculate_phase_message(input);
    (phase, message.to_cow())
}

/// [`calculate_phase`] with the message as [`PhaseMessage`] parts: what the machines use
/// to update `status.message` without allocating when it did not change.
pub fn calculate_phase_message<'a>(input: &PhaseInput<'a>) -> (RolloutPhase, PhaseMessage<'a>) {
    let status = input.status;
    for cond in &status.conditions {
        if cond.type_ == ConditionType::InvalidSpec {
            return (
                RolloutPhase::Degraded,
                PhaseMessage {
                    prefix: "InvalidSpec",
                    text: &cond.message,
                },
            );
        }
        if cond.reason == REASON_ROLLOUT_ABORTED || cond.reason == REASON_PROGRESS_DEADLINE_EXCEEDED
        {
            return (
                RolloutPhase::Degraded,
                PhaseMessage {
                    prefix: &cond.reason,
                    text: &cond.message,
                },
            );
        }
    }
    if input.paused {
        return (
            RolloutPhase::Paused,
            PhaseMessage::plain(MSG_MANUALLY_PAUSED),
        );
    }
    if let Some(pause) = status.pause_conditions.first() {
        return (
            RolloutPhase::Paused,
            PhaseMessage::plain(pause.reason.as_str()),
        );
    }
    if let Some(restart_at) = input.restart_at
        && status.restarted_at != Some(restart_at)
    {
        return progressing_parts(MSG_RESTARTING);
    }
    if status.updated_replicas < input.spec_replicas {
        return progressing_parts(MSG_MORE_REPLICAS);
    }
    if status.available_replicas < status.updated_replicas {
        return progressing_parts(MSG_BECOMING_AVAILABLE);
    }
    let fully_promoted =
        !status.stable_rs.is_empty() && status.stable_rs == status.current_pod_hash;
    match input.strategy {
        StrategyKind::BlueGreen => {
            let active = &status.blue_green.active_selector;
            if active.is_empty() || *active != status.current_pod_hash {
                return progressing_parts(MSG_CUTOVER_PENDING);
            }
            if !fully_promoted {
                let analysis_done = status
                    .blue_green
                    .post_promotion_analysis_run_status
                    .as_ref()
                    .is_some_and(|run| run.status.is_completed());
                if input.post_promotion_analysis && !analysis_done {
                    return progressing_parts(MSG_WAITING_FOR_ANALYSIS);
                }
                return progressing_parts(MSG_POST_PROMOTION);
            }
        }
        StrategyKind::Canary => {
            if !input.traffic_routing && status.replicas > status.updated_replicas {
                return progressing_parts(MSG_OLD_REPLICAS);
            }
            if !fully_promoted {
                return progressing_parts(MSG_STEPS_PENDING);
            }
        }
    }
    (RolloutPhase::Healthy, PhaseMessage::plain(""))
}

fn progressing_parts<'a>(message: &'static str) -> (RolloutPhase, PhaseMessage<'a>) {
    (RolloutPhase::Progressing, PhaseMessage::plain(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{
        AnalysisPhase, ConditionStatus, PauseCondition, PauseReason, RolloutAnalysisRunStatus,
        RolloutCondition,
    };

    fn healthy_status() -> RolloutStatus {
        RolloutStatus {
            replicas: 5,
            updated_replicas: 5,
            ready_replicas: 5,
            available_replicas: 5,
            stable_rs: "abc".into(),
            current_pod_hash: "abc".into(),
            ..Default::default()
        }
    }

    fn cond(type_: ConditionType, reason: &str, message: &str) -> RolloutCondition {
        RolloutCondition {
            type_,
            status: ConditionStatus::False,
            last_update_time: None,
            last_transition_time: None,
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[track_caller]
    fn assert_phase(input: &PhaseInput<'_>, phase: RolloutPhase, message: &str) {
        let (p, m) = rollout_phase(input);
        assert_eq!((p, m.as_ref()), (phase, message));
    }

    #[test]
    fn degraded_conditions_come_first_in_their_order() {
        let mut status = healthy_status();
        status.conditions = vec![
            cond(
                ConditionType::Progressing,
                "RolloutAborted",
                "Rollout aborted update to revision 2",
            ),
            cond(ConditionType::InvalidSpec, "InvalidSpec", "bad"),
        ];
        let input = PhaseInput {
            paused: true,
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(
            &input,
            RolloutPhase::Degraded,
            "RolloutAborted: Rollout aborted update to revision 2",
        );
        status.conditions.reverse();
        let input = PhaseInput::new(StrategyKind::Canary, 5, &status);
        assert_phase(&input, RolloutPhase::Degraded, "InvalidSpec: bad");
    }

    #[test]
    fn pauses() {
        let mut status = healthy_status();
        let input = PhaseInput {
            paused: true,
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(&input, RolloutPhase::Paused, "manually paused");
        status.pause_conditions.push(PauseCondition {
            reason: PauseReason::CanaryPauseStep,
            start_time: Timestamp::EPOCH,
        });
        status.controller_pause = true;
        let input = PhaseInput::new(StrategyKind::Canary, 5, &status);
        assert_phase(&input, RolloutPhase::Paused, "CanaryPauseStep");
        status.pause_conditions.clear();
        let input = PhaseInput::new(StrategyKind::Canary, 5, &status);
        assert_phase(
            &input,
            RolloutPhase::Progressing,
            "waiting for rollout to unpause",
        );
        // The controller's own computation does not know about unpausing.
        assert_eq!(calculate_phase(&input).0, RolloutPhase::Healthy);
    }

    #[test]
    fn restart_and_availability() {
        let mut status = healthy_status();
        let at = Timestamp::from_secs(1000);
        let input = PhaseInput {
            restart_at: Some(at),
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(&input, RolloutPhase::Progressing, "rollout is restarting");
        status.restarted_at = Some(at);
        let input = PhaseInput {
            restart_at: Some(at),
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(&input, RolloutPhase::Healthy, "");
        status.available_replicas = 4;
        let input = PhaseInput::new(StrategyKind::Canary, 5, &status);
        assert_phase(
            &input,
            RolloutPhase::Progressing,
            "updated replicas are still becoming available",
        );
    }

    #[test]
    fn canary_checks() {
        let mut status = healthy_status();
        status.replicas = 7;
        let input = PhaseInput::new(StrategyKind::Canary, 5, &status);
        assert_phase(
            &input,
            RolloutPhase::Progressing,
            "old replicas are pending termination",
        );
        let input = PhaseInput {
            traffic_routing: true,
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(&input, RolloutPhase::Healthy, "");
        status.current_pod_hash = "def".into();
        let input = PhaseInput {
            traffic_routing: true,
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(
            &input,
            RolloutPhase::Progressing,
            "waiting for all steps to complete",
        );
    }

    #[test]
    fn bluegreen_post_promotion() {
        let mut status = healthy_status();
        status.current_pod_hash = "def".into();
        status.blue_green.active_selector = "def".into();
        let input = PhaseInput {
            post_promotion_analysis: true,
            ..PhaseInput::new(StrategyKind::BlueGreen, 5, &status)
        };
        assert_phase(
            &input,
            RolloutPhase::Progressing,
            "waiting for analysis to complete",
        );
        status.blue_green.post_promotion_analysis_run_status = Some(RolloutAnalysisRunStatus {
            name: "run".into(),
            status: AnalysisPhase::Successful,
            message: String::new(),
        });
        let input = PhaseInput {
            post_promotion_analysis: true,
            ..PhaseInput::new(StrategyKind::BlueGreen, 5, &status)
        };
        assert_phase(
            &input,
            RolloutPhase::Progressing,
            "waiting for post-promotion verification to complete",
        );
    }

    #[test]
    fn wrapper_checks() {
        let mut status = healthy_status();
        status.observed_generation = "1".into();
        let input = PhaseInput {
            generation: 2,
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(
            &input,
            RolloutPhase::Progressing,
            "waiting for rollout spec update to be observed",
        );
        status.observed_generation = "7d66d4485f".into();
        let input = PhaseInput {
            generation: 2,
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(&input, RolloutPhase::Healthy, "");
        status.observed_generation = "3".into();
        let input = PhaseInput {
            generation: 2,
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(&input, RolloutPhase::Healthy, "");

        status.workload_observed_generation = "1".into();
        let input = PhaseInput {
            template_resolved_from_ref: true,
            workload_generation: Some("2"),
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(
            &input,
            RolloutPhase::Progressing,
            "waiting for rollout spec update to be observed for the reference workload",
        );
        status.workload_observed_generation = "2".into();
        let input = PhaseInput {
            template_resolved_from_ref: true,
            workload_generation: Some("2"),
            ..PhaseInput::new(StrategyKind::Canary, 5, &status)
        };
        assert_phase(&input, RolloutPhase::Healthy, "");

        // A phase written by the controller is reported as is.
        status.phase = Some(RolloutPhase::Paused);
        status.message = "CanaryPauseStep".into();
        let input = PhaseInput::new(StrategyKind::Canary, 5, &status);
        assert_phase(&input, RolloutPhase::Paused, "CanaryPauseStep");
    }
}
