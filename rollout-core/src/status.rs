//! The persisted `Rollout` status, field for field as Argo Rollouts writes it.
//!
//! Everything the machines need to continue after a crash lives here: the step index,
//! pause conditions with their start times, the abort flag, the recorded traffic
//! weights, the analysis runs in flight and the conditions (whose `lastUpdateTime`
//! drives the progress deadline). The JSON names are Argo's, so a status written by
//! Argo can be handed to [`crate::canary::reconcile`] and the other way round.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// `status` of an `argoproj.io/v1alpha1` `Rollout`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The update was aborted (by a user, a failed analysis or the progress deadline).
    #[serde(default, skip_serializing_if = "is_false")]
    pub abort: bool,
    /// Why the rollout is paused by the controller, with when each pause started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    /// The controller (not the user) paused the rollout; a user clearing
    /// `pauseConditions` while this is set counts as a promotion of the pause.
    #[serde(default, skip_serializing_if = "is_false")]
    pub controller_pause: bool,
    /// When the abort happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<Timestamp>,
    /// Hash of the pod template the rollout is moving to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_pod_hash: String,
    /// Hash of the canary steps, to notice a change of steps mid-rollout.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_step_hash: String,
    /// Pods of all ReplicaSets owned by the rollout.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replicas: i32,
    /// Pods of the ReplicaSet with the current pod hash.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub updated_replicas: i32,
    /// Ready pods across ReplicaSets.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ready_replicas: i32,
    /// Available pods across ReplicaSets.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub available_replicas: i32,
    /// Index of the canary step being executed; `None` when the strategy has no steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    /// Collision counter for the pod template hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// The `metadata.generation` the status reflects (Argo stores it as a string).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observed_generation: String,
    /// Conditions such as `Progressing`, `Available`, `Completed`, `Healthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RolloutCondition>,
    /// Canary-specific status.
    #[serde(default, skip_serializing_if = "CanaryStatus::is_empty")]
    pub canary: CanaryStatus,
    /// Blue-green-specific status.
    #[serde(default, skip_serializing_if = "BlueGreenStatus::is_empty")]
    pub blue_green: BlueGreenStatus,
    /// Replicas as reported to the HPA.
    #[serde(rename = "HPAReplicas", default, skip_serializing_if = "is_zero")]
    pub hpa_replicas: i32,
    /// Label selector in string form, for the scale subresource.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Hash of the stable ReplicaSet (`status.stableRS`).
    #[serde(rename = "stableRS", default, skip_serializing_if = "String::is_empty")]
    pub stable_rs: String,
    /// The last `spec.restartAt` that has been carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<Timestamp>,
    /// `kubectl argo rollouts promote --full` was requested.
    #[serde(default, skip_serializing_if = "is_false")]
    pub promote_full: bool,
    /// The phase as computed by [`crate::phase`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RolloutPhase>,
    /// The message that goes with the phase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Generation of the referenced workload (`workloadRef`) that was observed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload_observed_generation: String,
}

/// The four phases Argo reports for a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RolloutPhase {
    /// Fully promoted and available.
    Healthy,
    /// An update is in flight.
    Progressing,
    /// Paused by the user or by the controller.
    Paused,
    /// Aborted, invalid, or past its progress deadline.
    Degraded,
}

impl RolloutPhase {
    /// The name Argo uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutPhase::Healthy => "Healthy",
            RolloutPhase::Progressing => "Progressing",
            RolloutPhase::Paused => "Paused",
            RolloutPhase::Degraded => "Degraded",
        }
    }
}

impl std::fmt::Display for RolloutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A controller pause with its reason and start time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    /// Why the rollout is paused.
    pub reason: PauseReason,
    /// When the pause started; timed pauses count from here.
    pub start_time: Timestamp,
}

/// Argo's pause reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PauseReason {
    /// A `pause` step of the canary strategy.
    CanaryPauseStep,
    /// A blue-green pause before promotion.
    BlueGreenPause,
    /// An analysis run ended `Inconclusive`.
    InconclusiveAnalysisRun,
    /// An experiment ended `Inconclusive`.
    InconclusiveExperiment,
}

impl PauseReason {
    /// The name Argo uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::CanaryPauseStep => "CanaryPauseStep",
            PauseReason::BlueGreenPause => "BlueGreenPause",
            PauseReason::InconclusiveAnalysisRun => "InconclusiveAnalysisRun",
            PauseReason::InconclusiveExperiment => "InconclusiveExperiment",
        }
    }
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCondition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: ConditionStatus,
    /// Last time the condition was refreshed (drives the progress deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Timestamp>,
    /// Last time the status flipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
    /// Machine-readable reason, such as `ReplicaSetUpdated` or `RolloutAborted`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Rollout condition types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ConditionType {
    /// Enough pods are available.
    Available,
    /// An update is progressing (or failed to).
    Progressing,
    /// The rollout is paused.
    Paused,
    /// The update completed.
    Completed,
    /// The rollout is healthy.
    Healthy,
    /// A ReplicaSet could not create pods.
    ReplicaFailure,
    /// The spec is invalid.
    InvalidSpec,
}

/// Condition status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known.
    Unknown,
}

/// `status.canary`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The analysis run of the current `analysis` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The background analysis run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_background_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The experiment of the current `experiment` step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_experiment: String,
    /// The traffic weights last written to the router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
    /// `ping` or `pong` when ping-pong services are used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_ping_pong: String,
}

impl CanaryStatus {
    fn is_empty(&self) -> bool {
        *self == CanaryStatus::default()
    }
}

/// `status.blueGreen`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStatus {
    /// Pod hash the preview service selects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preview_selector: String,
    /// Pod hash the active service selects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub active_selector: String,
    /// The preview ReplicaSet may now scale to full size.
    #[serde(default, skip_serializing_if = "is_false")]
    pub scale_up_preview_check_point: bool,
    /// The pre-promotion analysis run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The post-promotion analysis run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
}

impl BlueGreenStatus {
    fn is_empty(&self) -> bool {
        *self == BlueGreenStatus::default()
    }
}

/// Name and phase of an analysis run the rollout started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisRunStatus {
    /// AnalysisRun name.
    pub name: String,
    /// Last observed phase of the run.
    pub status: AnalysisPhase,
    /// Message of the run, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Phase of an AnalysisRun (and of a measurement or metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum AnalysisPhase {
    /// Not started.
    #[default]
    Pending,
    /// Measuring.
    Running,
    /// Passed.
    Successful,
    /// Failed its failure limit.
    Failed,
    /// Could not measure (too many consecutive errors).
    Error,
    /// Neither passed nor failed.
    Inconclusive,
}

impl AnalysisPhase {
    /// The name Argo uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisPhase::Pending => "Pending",
            AnalysisPhase::Running => "Running",
            AnalysisPhase::Successful => "Successful",
            AnalysisPhase::Failed => "Failed",
            AnalysisPhase::Error => "Error",
            AnalysisPhase::Inconclusive => "Inconclusive",
        }
    }

    /// Successful, Failed, Error or Inconclusive.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            AnalysisPhase::Successful
                | AnalysisPhase::Failed
                | AnalysisPhase::Error
                | AnalysisPhase::Inconclusive
        )
    }
}

/// `status.canary.weights`: what the traffic router was last told.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    /// Weight of the canary destination.
    pub canary: WeightDestination,
    /// Weight of the stable destination.
    pub stable: WeightDestination,
    /// Experiment destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional: Vec<WeightDestination>,
    /// Whether the router confirmed the weights (`None`: the router cannot verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// One weighted destination.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    /// Share of traffic, out of the rollout's maxTrafficWeight.
    #[serde(default)]
    pub weight: i32,
    /// Service that receives it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    /// Pod template hash behind the service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_template_hash: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl RolloutStatus {
    /// The condition of the given type, if present.
    pub fn condition(&self, t: ConditionType) -> Option<&RolloutCondition> {
        self.conditions.iter().find(|c| c.type_ == t)
    }

    /// The pause condition with the given reason, if present.
    pub fn pause_condition(&self, r: PauseReason) -> Option<&PauseCondition> {
        self.pause_conditions.iter().find(|c| c.reason == r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argo_json_names_round_trip() {
        let json = r#"{
            "abort": true,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}],
            "controllerPause": true,
            "currentPodHash": "abc",
            "currentStepIndex": 2,
            "stableRS": "def",
            "HPAReplicas": 3,
            "observedGeneration": "4",
            "canary": {"weights": {"canary": {"weight": 10, "serviceName": "c", "podTemplateHash": "abc"},
                                   "stable": {"weight": 90, "serviceName": "s", "podTemplateHash": "def"}},
                       "currentStepAnalysisRunStatus": {"name": "r", "status": "Running"}},
            "blueGreen": {"activeSelector": "def"},
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                            "lastUpdateTime": "2026-01-01T00:00:00Z"}],
            "phase": "Paused",
            "message": "CanaryPauseStep"
        }"#;
        let s: RolloutStatus = serde_json::from_str(json).unwrap();
        assert_eq!(s.stable_rs, "def");
        assert_eq!(s.hpa_replicas, 3);
        assert_eq!(s.canary.weights.as_ref().unwrap().canary.weight, 10);
        let again: RolloutStatus =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }
}
