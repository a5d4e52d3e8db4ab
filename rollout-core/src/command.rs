//! The `kubectl argo rollouts` commands as pure functions.
//!
//! Argo has no API server of its own: its CLI changes a rollout by patching
//! `spec.paused`, `spec.restartAt` and a few status fields, and the controller reacts.
//! Each function here computes the same change as a [`Patch`] from the rollout and its
//! status. A caller can [`Patch::apply`] it to in-memory objects (a simulator, a test,
//! the quickstart) or send [`Patch::spec_merge_patch`] / [`Patch::status_merge_patch`]
//! to a real API server (`application/merge-patch+json`, the status one to the
//! `status` subresource), exactly as the plugin does.
//!
//! | command | change |
//! |---|---|
//! | [`promote`] | unpause; clear pause conditions, or else move to the next canary step |
//! | [`promote_full`] | unpause; `status.promoteFull = true` |
//! | [`skip_current_step`] / [`skip_all_steps`] | `status.currentStepIndex` + 1 / = step count |
//! | [`abort`] / [`retry`] | `status.abort = true` / `false` |
//! | [`pause`] / [`resume`] | `spec.paused = true` / `false` |
//! | [`restart`] | `spec.restartAt = now + delay` |
//! | [`set_image`] | replace container images in `spec.template` |

use serde_json::{Map, Value, json};

use crate::spec::Rollout;
use crate::status::{AnalysisPhase, PauseReason, RolloutStatus};
use crate::time::Timestamp;

/// Why a command cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The command needs a canary strategy with steps.
    #[error("rollout {rollout:?}: {command} needs a canary strategy with steps")]
    NoCanarySteps {
        /// Rollout name.
        rollout: String,
        /// The command.
        command: &'static str,
    },
    /// `set image` named a container the template does not have.
    #[error("rollout {rollout:?}: no container named {container:?} in spec.template")]
    ContainerNotFound {
        /// Rollout name.
        rollout: String,
        /// The container asked for.
        container: String,
    },
    /// The rollout takes its template from `spec.workloadRef`; patch that object instead.
    #[error(
        "rollout {rollout:?}: spec.template is not set (the template comes from spec.workloadRef)"
    )]
    NoTemplate {
        /// Rollout name.
        rollout: String,
    },
}

/// A change computed by a command. Empty fields leave things as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Patch {
    /// New `spec.paused`.
    pub spec_paused: Option<bool>,
    /// New `spec.restartAt`.
    pub spec_restart_at: Option<Timestamp>,
    /// Set `status.pauseConditions` to null.
    pub clear_pause_conditions: bool,
    /// New `status.controllerPause`.
    pub controller_pause: Option<bool>,
    /// New `status.currentStepIndex`.
    pub current_step_index: Option<i32>,
    /// New `status.abort`.
    pub abort: Option<bool>,
    /// New `status.promoteFull`.
    pub promote_full: Option<bool>,
}

impl Patch {
    /// Whether the patch changes nothing.
    pub fn is_noop(&self) -> bool {
        *self == Patch::default()
    }

    /// Applies the patch to in-memory objects.
    pub fn apply(&self, rollout: &mut Rollout, status: &mut RolloutStatus) {
        if let Some(p) = self.spec_paused {
            rollout.spec.paused = p;
        }
        if let Some(t) = self.spec_restart_at {
            rollout.spec.restart_at = Some(t);
        }
        if self.clear_pause_conditions {
            status.pause_conditions.clear();
        }
        if let Some(c) = self.controller_pause {
            status.controller_pause = c;
        }
        if let Some(i) = self.current_step_index {
            status.current_step_index = Some(i);
        }
        if let Some(a) = self.abort {
            status.abort = a;
        }
        if let Some(f) = self.promote_full {
            status.promote_full = f;
        }
    }

    /// The merge patch for the Rollout object (`{"spec": {...}}`), if any.
    pub fn spec_merge_patch(&self) -> Option<Value> {
        let mut spec = Map::new();
        if let Some(p) = self.spec_paused {
            spec.insert("paused".into(), Value::Bool(p));
        }
        if let Some(t) = self.spec_restart_at {
            spec.insert("restartAt".into(), Value::String(t.to_string()));
        }
        (!spec.is_empty()).then(|| json!({ "spec": spec }))
    }

    /// The merge patch for the `status` subresource (`{"status": {...}}`), if any.
    pub fn status_merge_patch(&self) -> Option<Value> {
        let mut status = Map::new();
        if self.clear_pause_conditions {
            status.insert("pauseConditions".into(), Value::Null);
        }
        if let Some(c) = self.controller_pause {
            status.insert("controllerPause".into(), Value::Bool(c));
        }
        if let Some(i) = self.current_step_index {
            status.insert("currentStepIndex".into(), Value::from(i));
        }
        if let Some(a) = self.abort {
            status.insert("abort".into(), Value::Bool(a));
        }
        if let Some(f) = self.promote_full {
            status.insert("promoteFull".into(), Value::Bool(f));
        }
        (!status.is_empty()).then(|| json!({ "status": status }))
    }
}

fn name(rollout: &Rollout) -> String {
    rollout.metadata.name.clone().unwrap_or_default()
}

fn step_count(rollout: &Rollout) -> Option<i32> {
    rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .filter(|c| !c.steps.is_empty())
        .map(|c| i32::try_from(c.steps.len()).unwrap_or(i32::MAX))
}

/// `kubectl argo rollouts promote`: unpauses, then clears the pause conditions if there
/// are any, otherwise moves a canary to its next step (which skips a running analysis or
/// experiment step). An inconclusive step analysis is promoted past, not re-run.
pub fn promote(rollout: &Rollout, status: &RolloutStatus) -> Patch {
    let mut patch = Patch {
        spec_paused: rollout.spec.paused.then_some(false),
        ..Patch::default()
    };
    let steps = step_count(rollout);
    let index = status.current_step_index.unwrap_or(0);
    if !status.pause_conditions.is_empty() {
        patch.clear_pause_conditions = true;
        let inconclusive_step = status
            .pause_condition(PauseReason::InconclusiveAnalysisRun)
            .is_some()
            && status
                .canary
                .current_step_analysis_run_status
                .as_ref()
                .is_some_and(|r| r.status == AnalysisPhase::Inconclusive);
        if inconclusive_step
            && status.controller_pause
            && let Some(n) = steps
            && index < n
        {
            patch.controller_pause = Some(false);
            patch.current_step_index = Some(index + 1);
        }
    } else if let Some(n) = steps
        && index < n
    {
        patch.current_step_index = Some(index + 1);
    }
    patch
}

/// `kubectl argo rollouts promote --full`: unpauses and skips every remaining step,
/// pause and analysis (the ReplicaSets still respect maxSurge / maxUnavailable).
pub fn promote_full(rollout: &Rollout, status: &RolloutStatus) -> Patch {
    Patch {
        spec_paused: rollout.spec.paused.then_some(false),
        promote_full: (status.current_pod_hash != status.stable_rs && !status.promote_full)
            .then_some(true),
        ..Patch::default()
    }
}

/// `kubectl argo rollouts promote --skip-current-step` (deprecated in Argo).
pub fn skip_current_step(rollout: &Rollout, status: &RolloutStatus) -> Result<Patch, CommandError> {
    let n = step_count(rollout).ok_or_else(|| CommandError::NoCanarySteps {
        rollout: name(rollout),
        command: "skip-current-step",
    })?;
    let index = status.current_step_index.unwrap_or(0);
    Ok(Patch {
        current_step_index: (index < n).then_some(index + 1),
        ..Patch::default()
    })
}

/// `kubectl argo rollouts promote --skip-all-steps` (deprecated in Argo).
pub fn skip_all_steps(rollout: &Rollout, status: &RolloutStatus) -> Result<Patch, CommandError> {
    let n = step_count(rollout).ok_or_else(|| CommandError::NoCanarySteps {
        rollout: name(rollout),
        command: "skip-all-steps",
    })?;
    Ok(Patch {
        current_step_index: (status.current_step_index != Some(n)).then_some(n),
        ..Patch::default()
    })
}

/// `kubectl argo rollouts abort`: the controller returns traffic and pods to stable.
pub fn abort(status: &RolloutStatus) -> Patch {
    Patch {
        abort: (!status.abort).then_some(true),
        ..Patch::default()
    }
}

/// `kubectl argo rollouts retry rollout`: clears the abort; steps start again from 0.
pub fn retry(status: &RolloutStatus) -> Patch {
    Patch {
        abort: status.abort.then_some(false),
        ..Patch::default()
    }
}

/// `kubectl argo rollouts pause`: a manual pause (`spec.paused`).
pub fn pause(rollout: &Rollout) -> Patch {
    Patch {
        spec_paused: (!rollout.spec.paused).then_some(true),
        ..Patch::default()
    }
}

/// Ends a manual pause (`spec.paused = false`) without promoting anything else.
pub fn resume(rollout: &Rollout) -> Patch {
    Patch {
        spec_paused: rollout.spec.paused.then_some(false),
        ..Patch::default()
    }
}

/// `kubectl argo rollouts restart [--in DELAY]`: sets `spec.restartAt`.
pub fn restart(now: Timestamp, delay_seconds: i64) -> Patch {
    Patch {
        spec_restart_at: Some(now.add_secs(delay_seconds.max(0))),
        ..Patch::default()
    }
}

/// `kubectl argo rollouts set image ROLLOUT CONTAINER=IMAGE` (`*` for every container):
/// updates init, regular and ephemeral containers of `spec.template` in place and
/// returns how many containers changed.
pub fn set_image(
    rollout: &mut Rollout,
    container: &str,
    image: &str,
) -> Result<usize, CommandError> {
    let rname = name(rollout);
    let Some(pod) = rollout.spec.template.as_mut().and_then(|t| t.spec.as_mut()) else {
        return Err(CommandError::NoTemplate { rollout: rname });
    };
    let mut matched = 0usize;
    let mut changed = 0usize;
    let mut visit = |c_name: &str, c_image: &mut Option<String>| {
        if container == "*" || c_name == container {
            matched += 1;
            if c_image.as_deref() != Some(image) {
                *c_image = Some(image.to_string());
                changed += 1;
            }
        }
    };
    for c in pod.init_containers.iter_mut().flatten() {
        visit(&c.name, &mut c.image);
    }
    for c in &mut pod.containers {
        visit(&c.name, &mut c.image);
    }
    for c in pod.ephemeral_containers.iter_mut().flatten() {
        visit(&c.name, &mut c.image);
    }
    if matched == 0 {
        return Err(CommandError::ContainerNotFound {
            rollout: rname,
            container: container.to_string(),
        });
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{PauseCondition, RolloutAnalysisRunStatus};

    fn rollout(steps: &str) -> Rollout {
        Rollout::from_yaml(&format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      initContainers: [{{name: init, image: 'init:1'}}]
      containers: [{{name: web, image: 'web:1'}}, {{name: side, image: 'side:1'}}]
  strategy:
    canary:
      steps: {steps}
"
        ))
        .unwrap()
    }

    #[test]
    fn promote_unpauses_then_clears_pauses_or_bumps_the_step() {
        let mut ro = rollout("[{setWeight: 10}, {pause: {}}, {setWeight: 50}]");
        ro.spec.paused = true;
        let mut st = RolloutStatus {
            current_step_index: Some(1),
            pause_conditions: vec![PauseCondition {
                reason: PauseReason::CanaryPauseStep,
                start_time: Timestamp::EPOCH,
            }],
            controller_pause: true,
            ..RolloutStatus::default()
        };
        let p = promote(&ro, &st);
        assert_eq!(
            p.spec_merge_patch(),
            Some(json!({"spec": {"paused": false}}))
        );
        assert_eq!(
            p.status_merge_patch(),
            Some(json!({"status": {"pauseConditions": null}}))
        );
        p.apply(&mut ro, &mut st);
        assert!(!ro.spec.paused && st.pause_conditions.is_empty());
        // No pause left: promote moves to the next step, never past the last one.
        let p = promote(&ro, &st);
        assert_eq!(
            p.status_merge_patch(),
            Some(json!({"status": {"currentStepIndex": 2}}))
        );
        st.current_step_index = Some(3);
        assert!(promote(&ro, &st).is_noop());
    }

    #[test]
    fn promote_past_an_inconclusive_analysis_step() {
        let ro = rollout("[{analysis: {templates: [{templateName: t}]}}, {setWeight: 50}]");
        let st = RolloutStatus {
            current_step_index: Some(0),
            pause_conditions: vec![PauseCondition {
                reason: PauseReason::InconclusiveAnalysisRun,
                start_time: Timestamp::EPOCH,
            }],
            controller_pause: true,
            canary: crate::status::CanaryStatus {
                current_step_analysis_run_status: Some(RolloutAnalysisRunStatus {
                    name: "r".into(),
                    status: AnalysisPhase::Inconclusive,
                    message: String::new(),
                }),
                ..Default::default()
            },
            ..RolloutStatus::default()
        };
        let p = promote(&ro, &st);
        assert_eq!(
            p.status_merge_patch(),
            Some(
                json!({"status": {"pauseConditions": null, "controllerPause": false, "currentStepIndex": 1}})
            )
        );
    }

    #[test]
    fn promote_full_abort_retry_skip() {
        let ro = rollout("[{setWeight: 10}, {setWeight: 50}]");
        let mut st = RolloutStatus {
            current_pod_hash: "b".into(),
            stable_rs: "a".into(),
            ..RolloutStatus::default()
        };
        assert_eq!(promote_full(&ro, &st).promote_full, Some(true));
        st.stable_rs = "b".into();
        assert!(promote_full(&ro, &st).is_noop(), "nothing to promote");
        assert_eq!(
            abort(&st).status_merge_patch(),
            Some(json!({"status": {"abort": true}}))
        );
        st.abort = true;
        assert!(abort(&st).is_noop());
        assert_eq!(
            retry(&st).status_merge_patch(),
            Some(json!({"status": {"abort": false}}))
        );
        assert_eq!(
            skip_current_step(&ro, &st).unwrap().current_step_index,
            Some(1)
        );
        assert_eq!(
            skip_all_steps(&ro, &st).unwrap().current_step_index,
            Some(2)
        );
        let mut bg = ro.clone();
        bg.spec.strategy.canary.as_mut().unwrap().steps.clear();
        assert!(matches!(
            skip_current_step(&bg, &st),
            Err(CommandError::NoCanarySteps {
                command: "skip-current-step",
                ..
            })
        ));
    }

    #[test]
    fn pause_resume_restart() {
        let mut ro = rollout("[{setWeight: 10}]");
        let mut st = RolloutStatus::default();
        pause(&ro).apply(&mut ro, &mut st);
        assert!(ro.spec.paused);
        assert!(pause(&ro).is_noop());
        resume(&ro).apply(&mut ro, &mut st);
        assert!(!ro.spec.paused);
        let p = restart(Timestamp::from_secs(1_800_000_000), 10);
        assert_eq!(
            p.spec_merge_patch(),
            Some(json!({"spec": {"restartAt": "2027-01-15T08:00:10Z"}}))
        );
    }

    #[test]
    fn set_image_by_name_or_star() {
        let mut ro = rollout("[{setWeight: 10}]");
        assert_eq!(set_image(&mut ro, "web", "web:2").unwrap(), 1);
        assert_eq!(
            set_image(&mut ro, "web", "web:2").unwrap(),
            0,
            "already set"
        );
        assert_eq!(set_image(&mut ro, "*", "all:3").unwrap(), 3);
        assert!(matches!(
            set_image(&mut ro, "nope", "x"),
            Err(CommandError::ContainerNotFound { .. })
        ));
        ro.spec.template = None;
        assert!(matches!(
            set_image(&mut ro, "web", "x"),
            Err(CommandError::NoTemplate { .. })
        ));
    }
}
