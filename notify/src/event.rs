//! The notification event: what happened, to what, at which revision, and the facts a
//! template may show.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Normal or Warning, as the Kubernetes event the notification comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Severity {
    /// Progress as expected.
    Normal,
    /// Something went wrong (abort, failed analysis, refusal, rollback).
    Warning,
}

impl Severity {
    /// `Normal` or `Warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "Normal",
            Severity::Warning => "Warning",
        }
    }
}

/// What a notification is about: a rollout, an environment of the release flow, or a
/// pull request. Part of the deduplication key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// `rollout`, `env` or `pr`.
    pub kind: String,
    /// The namespace (empty for release-flow subjects).
    pub namespace: String,
    /// The rollout name, the environment, or the pull request number.
    pub name: String,
}

impl Subject {
    /// A rollout.
    pub fn rollout(namespace: &str, name: &str) -> Self {
        Subject {
            kind: "rollout".into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// An environment of the release flow.
    pub fn env(env: &str) -> Self {
        Subject {
            kind: "env".into(),
            namespace: String::new(),
            name: env.into(),
        }
    }

    /// A pull request of the release flow.
    pub fn pull_request(number: u64) -> Self {
        Subject {
            kind: "pr".into(),
            namespace: String::new(),
            name: number.to_string(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One thing that happened, under the name of the trigger it fires.
///
/// `revision` and `occurrence` are the two halves of the deduplication key (see
/// [`OncePer`](crate::OncePer)): the revision the subject is at (a rollout's pod
/// template hash, a commit SHA) and what distinguishes this event from others of the
/// same trigger within that revision (the step, the AnalysisRun name, the history tag;
/// empty when the trigger happens once per revision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEvent {
    /// The trigger name, e.g. `on-rollout-aborted`.
    pub trigger: String,
    /// The reason it comes from, e.g. `RolloutAborted`.
    pub reason: String,
    /// Normal or Warning.
    pub severity: Severity,
    /// The event's message as the machine wrote it.
    pub message: String,
    /// What it is about.
    pub subject: Subject,
    /// The revision the subject is at.
    pub revision: String,
    /// What distinguishes it within the revision (may be empty).
    pub occurrence: String,
    /// Template variables (`rollout.name`, `step.index`, ...; see
    /// [`VARIABLES`](crate::template::VARIABLES)) with their values for this event.
    pub facts: BTreeMap<String, String>,
}

impl NotificationEvent {
    /// The value of template variable `name`, including the `event.*` variables that
    /// come from the event's own fields.
    pub fn fact(&self, name: &str) -> Option<&str> {
        match name {
            "event.trigger" => Some(&self.trigger),
            "event.reason" => Some(&self.reason),
            "event.type" => Some(self.severity.as_str()),
            "event.message" => Some(&self.message),
            "event.revision" => Some(&self.revision),
            _ => self.facts.get(name).map(String::as_str),
        }
    }
}

/// Argo's trigger name for an event reason: CamelCase to kebab-case with the prefix
/// `on-` (`RolloutStepCompleted` becomes `on-rollout-step-completed`,
/// `AnalysisRunFailed` becomes `on-analysis-run-failed`).
pub fn trigger_name(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len() + 8);
    out.push_str("on");
    let chars: Vec<char> = reason.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && !chars[i - 1].is_ascii_uppercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i == 0 || prev_lower || next_lower {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            if i == 0 {
                out.push('-');
            }
            out.push(*c);
        } else {
            out.push('-');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_names_follow_argo() {
        for (reason, trigger) in [
            ("RolloutCompleted", "on-rollout-completed"),
            ("RolloutStepCompleted", "on-rollout-step-completed"),
            ("RolloutUpdated", "on-rollout-updated"),
            ("RolloutPaused", "on-rollout-paused"),
            ("RolloutAborted", "on-rollout-aborted"),
            ("ScalingReplicaSet", "on-scaling-replica-set"),
            ("AnalysisRunRunning", "on-analysis-run-running"),
            ("AnalysisRunFailed", "on-analysis-run-failed"),
            ("AnalysisRunError", "on-analysis-run-error"),
            ("TrafficWeightUpdated", "on-traffic-weight-updated"),
            ("RolloutNotCompleted", "on-rollout-not-completed"),
            ("RolloutTimedOut", "on-rollout-timed-out"),
        ] {
            assert_eq!(trigger_name(reason), trigger, "{reason}");
        }
    }

    #[test]
    fn subject_display() {
        assert_eq!(
            Subject::rollout("prod", "web").to_string(),
            "rollout/prod/web"
        );
        assert_eq!(Subject::env("canary").to_string(), "env/canary");
        assert_eq!(Subject::pull_request(7).to_string(), "pr/7");
    }
}
