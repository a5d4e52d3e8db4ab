//! The persisted Flagger `Canary` status, with Flagger's JSON names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// `status` of a `flagger.app/v1beta1` `Canary`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// Where the canary is in its life cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<CanaryPhase>,
    /// Failed checks of the current run.
    #[serde(default)]
    pub failed_checks: i32,
    /// Traffic weight of the canary (percent).
    #[serde(default)]
    pub canary_weight: i32,
    /// Iterations done (A/B testing and blue/green).
    #[serde(default)]
    pub iterations: i32,
    /// Hash of the target's pod template the current run is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_applied_spec: String,
    /// Hash of the pod template last promoted to the primary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_promoted_spec: String,
    /// ConfigMaps / Secrets the target uses, name to checksum.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tracked_configs: BTreeMap<String, String>,
    /// Cookie of the current session-affinity run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session_affinity_cookie: String,
    /// Cookie of the previous session-affinity run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub previous_session_affinity_cookie: String,
    /// Cookie that pins sessions to the primary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub primary_session_affinity_cookie: String,
    /// When the phase last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
    /// Conditions (Flagger writes one, `Promoted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<CanaryCondition>,
}

/// Flagger's canary phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CanaryPhase {
    /// The canary was just created.
    Initializing,
    /// Primary created and ready; routing in place; target scaled to 0.
    Initialized,
    /// A new revision waits for its confirm-rollout gate.
    Waiting,
    /// Analysis in progress.
    Progressing,
    /// Promotion is due but its confirm-promotion gate has not opened.
    WaitingPromotion,
    /// The canary spec was copied to the primary; traffic moves back to it.
    Promoting,
    /// Traffic is back on the primary; the target is being scaled to 0.
    Finalising,
    /// The run ended with a promotion.
    Succeeded,
    /// The run was rolled back.
    Failed,
    /// The canary is being deleted with revertOnDeletion.
    Terminating,
    /// Declared by Flagger, never set by it.
    Terminated,
}

impl CanaryPhase {
    /// The name Flagger uses.
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryPhase::Initializing => "Initializing",
            CanaryPhase::Initialized => "Initialized",
            CanaryPhase::Waiting => "Waiting",
            CanaryPhase::Progressing => "Progressing",
            CanaryPhase::WaitingPromotion => "WaitingPromotion",
            CanaryPhase::Promoting => "Promoting",
            CanaryPhase::Finalising => "Finalising",
            CanaryPhase::Succeeded => "Succeeded",
            CanaryPhase::Failed => "Failed",
            CanaryPhase::Terminating => "Terminating",
            CanaryPhase::Terminated => "Terminated",
        }
    }
}

impl std::fmt::Display for CanaryPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryCondition {
    /// Condition type (`Promoted`).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Last time the condition was refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Timestamp>,
    /// Last time the status flipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
    /// The phase that set it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
