//! The canary state machine.
//!
//! # Model
//!
//! One call of [`reconcile`] is one pass of Argo's rollout controller over a canary
//! `Rollout`. It takes four inputs and returns a [`Decision`]:
//!
//! - the [`Rollout`] (its `spec` and `metadata.name`);
//! - the persisted [`RolloutStatus`] (all state that must survive a crash lives there);
//! - [`Observed`]: what the caller saw in the cluster just before the call (the hash of
//!   the current pod template, the ReplicaSets with their counts and scale-down
//!   deadlines, the phases of analysis runs, experiments and step plugins, whether the
//!   router verified the weights, the services' selectors);
//! - `now`, the time of the pass.
//!
//! The [`Decision`] holds the new status (borrowed when nothing changed, so a no-op pass
//! allocates nothing), the [`Action`]s to carry out, the [`Event`]s to record, and the
//! time at which the machine wants to be called again even if nothing changes
//! (`requeue_at`: a timed pause ending, a scale-down deadline, the progress deadline).
//!
//! # Call order
//!
//! 1. Observe the cluster and build [`Observed`].
//! 2. Call [`reconcile`].
//! 3. Execute every action, in order. They are idempotent: a pass repeated after a
//!    crash emits them again.
//! 4. Persist `decision.status` (when [`Decision::status_changed`]), then record events.
//! 5. Call again when something observed changes, or at `requeue_at`.
//!
//! If the process dies between 3 and 4, the next pass starts from the old status and
//! emits the same actions again; if it dies after 4, the next pass continues from the
//! new status. Either way nothing is lost.
//!
//! # Semantics
//!
//! Those of Argo Rollouts (see the crate docs for where this deviates): steps advance
//! one per pass; a pass that scales a ReplicaSet stops there ("not finished
//! reconciling"); `setWeight` completes when the ReplicaSets are at their counts and the
//! router holds the weight (and did not report it unverified); `pause` adds the
//! `CanaryPauseStep` condition and completes after its duration or when a user clears
//! the condition; analysis steps complete when their run is `Successful`, abort on
//! `Failed`/`Error` and pause on `Inconclusive`; an abort returns traffic and replicas
//! to the stable ReplicaSet and keeps the canary pods for `abortScaleDownDelaySeconds`;
//! a new pod template or new steps restart the steps; `promoteFull` skips them; the
//! progress deadline marks the rollout `Degraded` (and aborts it with
//! `progressDeadlineAbort`).

use std::borrow::Cow;
use std::sync::LazyLock;

use crate::hash::HashStr;
use crate::intstr::IntOrPercent;
use crate::phase::{self, PhaseInput, StrategyKind};
use crate::replicas::{
    self, AtDesiredCheck, CanaryReplicaInput, CanaryScale, ProgressThreshold, ReplicaSetCounts,
    StepView,
};
use crate::spec::Rollout;
use crate::spec::{
    BackgroundAnalysis, CanaryStep, CanaryStrategy, ExperimentStep, ProgressThresholdType,
    RolloutAnalysis, SetHeaderRoute, SetMirrorRoute, SpecRef,
};
use crate::status::{
    AnalysisPhase, ConditionStatus, ConditionType, PauseCondition, PauseReason,
    RolloutAnalysisRunStatus, RolloutStatus, TrafficWeights, WeightDestination,
};
use crate::time::Timestamp;

/// Argo's default for `maxSurge` and `maxUnavailable`.
static DEFAULT_25_PERCENT: LazyLock<IntOrPercent> = LazyLock::new(|| IntOrPercent::percent(25));

/// Seconds between traffic verification retries (Argo's `ROLLOUT_VERIFY_RETRY_INTERVAL`).
pub const VERIFY_RETRY_SECONDS: i64 = 10;

/// Default `scaleDownDelaySeconds` and `abortScaleDownDelaySeconds` with traffic routing.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;

/// What the caller observed in the cluster just before the pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed<'a> {
    /// Hash of the rollout's current pod template (see [`crate::hash::pod_template_hash`]).
    pub pod_template_hash: &'a str,
    /// The ReplicaSets the rollout owns, oldest first.
    pub replica_sets: &'a [ReplicaSetState],
    /// Analysis runs the rollout started, by name.
    pub analysis_runs: &'a [AnalysisRunState],
    /// Experiments the rollout started, by name.
    pub experiments: &'a [ExperimentState],
    /// Step plugins, by step index.
    pub step_plugins: &'a [StepPluginState],
    /// What the traffic router reports for the weights last written: `Some(true)`
    /// verified, `Some(false)` not (yet) verified, `None` the router cannot verify.
    pub traffic_verified: Option<bool>,
    /// Current selectors (pod template hash) of the canary and stable services.
    pub services: &'a [ServiceState],
    /// The step hash of the current spec ([`steps_hash`]), when the caller keeps it per
    /// spec generation. `None`: the pass computes it (about half the cost of a pass that
    /// changes nothing). A stale value hides an edit of the steps, so recompute it
    /// whenever `metadata.generation` changes.
    pub steps_hash: Option<HashStr>,
}

/// The hash of a canary strategy's steps, as stored in `status.currentStepHash`.
pub fn steps_hash(steps: &[CanaryStep]) -> HashStr {
    crate::hash::fnv_hash(steps)
}

/// One ReplicaSet owned by the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaSetState {
    /// Its `rollouts-pod-template-hash`.
    pub pod_template_hash: String,
    /// Its `rollout.argoproj.io/revision` annotation (0 when unknown).
    pub revision: i64,
    /// `spec.replicas`.
    pub spec_replicas: i32,
    /// `status.replicas`: pods that exist.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
    /// Its `scale-down-deadline` annotation, if any.
    pub scale_down_deadline: Option<Timestamp>,
}

impl ReplicaSetState {
    fn counts(&self) -> ReplicaSetCounts {
        ReplicaSetCounts {
            spec_replicas: self.spec_replicas,
            available_replicas: self.available_replicas,
        }
    }
}

/// An analysis run's phase as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisRunState {
    /// Run name.
    pub name: String,
    /// Its phase.
    pub phase: AnalysisPhase,
    /// Its message, if any.
    pub message: String,
}

/// An experiment's phase as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentState {
    /// Experiment name.
    pub name: String,
    /// Its phase (experiments use the analysis phases).
    pub phase: AnalysisPhase,
    /// Its message, if any.
    pub message: String,
}

/// A step plugin's status as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPluginState {
    /// Index of the `plugin` step.
    pub step_index: i32,
    /// Phase the plugin reports.
    pub phase: AnalysisPhase,
    /// Message the plugin reports.
    pub message: String,
    /// When the plugin wants to be called again while Running.
    pub backoff_until: Option<Timestamp>,
}

/// A service's selector as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// Service name.
    pub name: String,
    /// The `rollouts-pod-template-hash` it selects (empty: none).
    pub pod_template_hash: String,
}

/// Which analysis run an [`Action::StartAnalysisRun`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnalysisRunKind {
    /// The run of an `analysis` step (label `rollout-type: Step`).
    Step {
        /// The step's index.
        index: i32,
    },
    /// The background run of `spec.strategy.canary.analysis` (`rollout-type: Background`).
    Background,
    /// A blue-green `prePromotionAnalysis` run (`rollout-type: PrePromotion`).
    PrePromotion,
    /// A blue-green `postPromotionAnalysis` run (`rollout-type: PostPromotion`).
    PostPromotion,
}

/// Something the caller must do in the cluster. Every action is idempotent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Create the ReplicaSet for the current pod template with this many replicas.
    CreateReplicaSet {
        /// Pod template hash of the new ReplicaSet.
        pod_template_hash: String,
        /// Initial `spec.replicas`.
        replicas: i32,
    },
    /// Set a ReplicaSet's `spec.replicas`.
    ScaleReplicaSet {
        /// Which ReplicaSet.
        pod_template_hash: String,
        /// New `spec.replicas`.
        replicas: i32,
    },
    /// Delete an old ReplicaSet: beyond `revisionHistoryLimit`, scaled to zero, neither
    /// the current nor the stable one.
    DeleteReplicaSet {
        /// Which ReplicaSet.
        pod_template_hash: String,
    },
    /// Set (or remove, with `None`) a ReplicaSet's `scale-down-deadline` annotation.
    SetScaleDownDeadline {
        /// Which ReplicaSet.
        pod_template_hash: String,
        /// The deadline.
        deadline: Option<Timestamp>,
    },
    /// Point a service at a ReplicaSet (selector `rollouts-pod-template-hash`).
    SetServiceSelector {
        /// Service name.
        service: String,
        /// Pod template hash to select.
        pod_template_hash: String,
    },
    /// Route `canary_weight` of `total` to the canary and `stable_weight` to the stable.
    SetTrafficWeight {
        /// Canary weight.
        canary_weight: i32,
        /// Stable weight.
        stable_weight: i32,
        /// The total (maxTrafficWeight).
        total: i32,
        /// Pod template hash of the canary.
        canary_hash: String,
        /// Pod template hash of the stable.
        stable_hash: String,
        /// Experiment templates with a `weight`, while their experiment step runs
        /// (the stable gets `total - canary - Σ additional`).
        additional: Vec<WeightDestination>,
    },
    /// Add or replace a managed header route (no `match`: remove it).
    SetHeaderRoute(SetHeaderRoute),
    /// Add or replace a managed mirror route (no `match`: remove it).
    SetMirrorRoute(SetMirrorRoute),
    /// Remove every managed route (end of the update, or abort).
    RemoveManagedRoutes,
    /// Create an AnalysisRun.
    StartAnalysisRun {
        /// Name the run must get (recorded in the status).
        name: String,
        /// Step or background run.
        kind: AnalysisRunKind,
        /// Templates, args, dryRun and retention rules.
        analysis: RolloutAnalysis,
        /// Hash of the canary pods (for `podTemplateHashValue: Latest`).
        canary_hash: String,
        /// Hash of the stable pods (for `podTemplateHashValue: Stable`).
        stable_hash: String,
    },
    /// Terminate an AnalysisRun (`spec.terminate: true`).
    TerminateAnalysisRun {
        /// Run name.
        name: String,
    },
    /// Create the Experiment of an `experiment` step.
    StartExperiment {
        /// Name it must get.
        name: String,
        /// Step index.
        step_index: i32,
        /// The step.
        experiment: ExperimentStep,
        /// Canary pod template hash.
        canary_hash: String,
        /// Stable pod template hash.
        stable_hash: String,
    },
    /// Terminate an Experiment.
    TerminateExperiment {
        /// Experiment name.
        name: String,
    },
    /// Run (or keep running) the plugin of a `plugin` step.
    RunStepPlugin {
        /// Step index.
        step_index: i32,
        /// Plugin name.
        name: String,
        /// Plugin configuration.
        config: Option<serde_json::Value>,
    },
    /// Tell step plugins the update was aborted.
    AbortStepPlugins,
}

/// Kubernetes event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventType {
    /// Normal.
    Normal,
    /// Warning.
    Warning,
}

/// A Kubernetes event to record (Argo's reasons: `RolloutCompleted`, `RolloutStepCompleted`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Normal or Warning.
    pub type_: EventType,
    /// Argo's event reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

/// The outcome of one pass.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Decision<'a> {
    /// The new status (borrowed when unchanged).
    pub status: Cow<'a, RolloutStatus>,
    /// Actions to execute, in order.
    pub actions: Vec<Action>,
    /// Events to record.
    pub events: Vec<Event>,
    /// Call again at this time even if nothing observed changes.
    pub requeue_at: Option<Timestamp>,
}

impl Decision<'_> {
    /// Whether the status differs from the one passed in.
    pub fn status_changed(&self) -> bool {
        matches!(self.status, Cow::Owned(_))
    }

    /// Whether the pass asks for nothing: no action, no event, no status change.
    pub fn is_noop(&self) -> bool {
        self.actions.is_empty() && self.events.is_empty() && !self.status_changed()
    }

    /// The new status, owned.
    pub fn into_status(self) -> RolloutStatus {
        self.status.into_owned()
    }
}

impl StepView for CanaryStep {
    fn set_weight(&self) -> Option<i32> {
        self.parts().iter().find_map(|p| match p {
            CanaryStep::SetWeight(w) => Some(*w),
            _ => None,
        })
    }

    fn set_canary_scale(&self) -> Option<CanaryScale> {
        self.parts().iter().find_map(|p| match p {
            CanaryStep::SetCanaryScale(s) => Some(CanaryScale {
                replicas: s.replicas,
                weight: s.weight,
                match_traffic_weight: s.match_traffic_weight,
            }),
            _ => None,
        })
    }
}

/// The old ReplicaSets Argo deletes once there are more than `revisionHistoryLimit`
/// of them (neither the current nor the stable set counts): the oldest revisions
/// first, and only those scaled to zero with no pods left and no scale-down deadline
/// pending (a set still draining is kept, and counted, until a later pass).
pub(crate) fn history_to_delete(
    limit: i32,
    sets: &[ReplicaSetState],
    current: &str,
    stable: &str,
) -> Vec<Action> {
    let mut old: Vec<&ReplicaSetState> = sets
        .iter()
        .filter(|rs| rs.pod_template_hash != current && rs.pod_template_hash != stable)
        .collect();
    let excess = old
        .len()
        .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
    if excess == 0 {
        return Vec::new();
    }
    // Stable sort: sets of unknown revision (0) keep their observed, oldest-first order.
    old.sort_by_key(|rs| rs.revision);
    old.iter()
        .take(excess)
        .filter(|rs| rs.spec_replicas == 0 && rs.replicas == 0 && rs.scale_down_deadline.is_none())
        .map(|rs| Action::DeleteReplicaSet {
            pod_template_hash: rs.pod_template_hash.clone(),
        })
        .collect()
}

/// Runs one reconcile pass of the canary strategy. See the module docs for the model.
pub fn reconcile<'a>(
    rollout: &Rollout,
    status: &'a RolloutStatus,
    observed: &Observed<'_>,
    now: Timestamp,
) -> Decision<'a> {
    let mut pass = Pass {
        orig: status,
        rollout,
        observed,
        now,
        st: Cow::Borrowed(status),
        actions: Vec::new(),
        events: Vec::new(),
        requeue_at: None,
    };
    match rollout.spec.strategy.canary.as_ref() {
        Some(cs) => pass.run(cs),
        None => pass.invalid_spec("the canary machine needs spec.strategy.canary"),
    }
    pass.finish()
}

struct Pass<'r, 'a, 'o> {
    orig: &'a RolloutStatus,
    rollout: &'r Rollout,
    observed: &'r Observed<'o>,
    now: Timestamp,
    st: Cow<'a, RolloutStatus>,
    actions: Vec<Action>,
    events: Vec<Event>,
    requeue_at: Option<Timestamp>,
}

/// Everything derived from the spec once per pass.
struct Ctx<'r> {
    cs: &'r CanaryStrategy,
    steps: &'r [CanaryStep],
    step_count: i32,
    replicas: i32,
    max_surge: &'r IntOrPercent,
    max_unavailable: &'r IntOrPercent,
    max_unavailable_resolved: i32,
    traffic_routing: bool,
    max_weight: i32,
}

impl<'r, 'a, 'o> Pass<'r, 'a, 'o> {
    fn name(&self) -> &'r str {
        self.rollout.metadata.name.as_deref().unwrap_or("rollout")
    }

    fn s(&mut self) -> &mut RolloutStatus {
        self.st.to_mut()
    }

    fn wake_at(&mut self, t: Timestamp) {
        self.requeue_at = Some(self.requeue_at.map_or(t, |r| r.min(t)));
    }

    fn event(&mut self, type_: EventType, reason: &'static str, message: String) {
        self.events.push(Event {
            type_,
            reason,
            message,
        });
    }

    fn finish(self) -> Decision<'a> {
        // A status that was touched but ended up equal is reported as unchanged.
        let st = match self.st {
            Cow::Owned(s) if s == *self.orig => Cow::Borrowed(self.orig),
            other => other,
        };
        Decision {
            status: st,
            actions: self.actions,
            events: self.events,
            requeue_at: self.requeue_at,
        }
    }

    fn invalid_spec(&mut self, message: &str) {
        let msg = format!("The Rollout \"{}\" is invalid: {message}", self.name());
        self.set_condition(
            ConditionType::InvalidSpec,
            ConditionStatus::True,
            "InvalidSpec",
            &msg,
        );
        self.update_phase(None);
    }

    fn run(&mut self, cs: &'r CanaryStrategy) {
        let spec = &self.rollout.spec;
        let replicas = spec.replicas().max(0);
        let max_surge = cs.max_surge.as_ref().unwrap_or(&DEFAULT_25_PERCENT);
        let max_unavailable = cs.max_unavailable.as_ref().unwrap_or(&DEFAULT_25_PERCENT);
        let (_, max_unavailable_resolved) =
            match replicas::resolve_fenceposts(max_surge, max_unavailable, replicas) {
                Ok(v) => v,
                Err(e) => {
                    self.invalid_spec(&e.to_string());
                    return;
                }
            };
        if self.st.condition(ConditionType::InvalidSpec).is_some() {
            self.s()
                .conditions
                .retain(|c| c.type_ != ConditionType::InvalidSpec);
        }
        let ctx = Ctx {
            cs,
            steps: &cs.steps,
            step_count: i32::try_from(cs.steps.len()).unwrap_or(i32::MAX),
            replicas,
            max_surge,
            max_unavailable,
            max_unavailable_resolved,
            traffic_routing: cs.traffic_routing.is_some(),
            max_weight: cs.max_traffic_weight(),
        };

        self.sync_revision(&ctx);
        self.sync_promote_full(&ctx);
        self.sync_analysis_observations();
        self.drop_stale_step_records(&ctx);
        self.sync_abort_sources(&ctx);
        self.start_abort_if_needed(&ctx);
        self.sync_retry();
        self.sync_runs(&ctx);

        // Traffic before pods, as Argo orders it: the weight never points at pods that
        // this pass removes, and only grows once the pods for it are available.
        self.sync_traffic(&ctx);
        self.sync_services(&ctx);
        let scaled = self.scale(&ctx);
        if !scaled {
            let stable = self.st.stable_rs.clone();
            self.actions.extend(history_to_delete(
                self.rollout.spec.revision_history_limit(),
                self.observed.replica_sets,
                self.current_hash(),
                &stable,
            ));
        }
        self.sync_counts(&ctx);
        if !scaled && !self.try_full_promotion(&ctx) {
            self.advance_step(&ctx);
        }
        self.sync_progress(&ctx);
        self.update_phase(Some(&ctx));
    }

    // ---- revisions -------------------------------------------------------------------

    fn current_hash(&self) -> &'o str {
        self.observed.pod_template_hash
    }

    fn find_rs(&self, hash: &str) -> Option<&'o ReplicaSetState> {
        if hash.is_empty() {
            return None;
        }
        self.observed
            .replica_sets
            .iter()
            .find(|rs| rs.pod_template_hash == hash)
    }

    fn new_rs(&self) -> Option<&'o ReplicaSetState> {
        self.find_rs(self.current_hash())
    }

    fn stable_rs(&self) -> Option<&'o ReplicaSetState> {
        let stable = self.st.stable_rs.as_str();
        if stable == self.current_hash() {
            return None;
        }
        self.find_rs(stable)
    }

    /// The revision of the new ReplicaSet; before it exists, the next revision number
    /// (what its `rollout.argoproj.io/revision` annotation will be).
    fn revision_label(&self) -> String {
        match self.new_rs() {
            Some(rs) if rs.revision > 0 => rs.revision.to_string(),
            Some(_) => self.current_hash().to_string(),
            None => {
                let max = self
                    .observed
                    .replica_sets
                    .iter()
                    .map(|rs| rs.revision)
                    .max()
                    .unwrap_or(0);
                (max + 1).to_string()
            }
        }
    }

    fn is_initial(&self) -> bool {
        self.st.stable_rs.is_empty()
    }

    fn at_stable(&self) -> bool {
        !self.st.stable_rs.is_empty() && self.st.stable_rs == self.current_hash()
    }

    fn step_index(&self, ctx: &Ctx<'_>) -> i32 {
        self.st
            .current_step_index
            .unwrap_or(0)
            .clamp(0, ctx.step_count)
    }

    fn sync_revision(&mut self, ctx: &Ctx<'_>) {
        let step_hash = self
            .observed
            .steps_hash
            .unwrap_or_else(|| steps_hash(ctx.steps));
        let step_hash = step_hash.as_str();
        let template_changed = self.st.current_pod_hash != self.current_hash();
        if !template_changed && self.st.current_step_hash == step_hash {
            return;
        }
        // A new pod template or new steps: start the steps again.
        self.terminate_runs();
        let hash = self.current_hash();
        let back_to_stable = self.st.stable_rs.is_empty() || self.st.stable_rs == hash;
        let now = self.now;
        let name = format!("{}-{}", self.name(), hash);
        let s = self.s();
        s.current_pod_hash = hash.to_string();
        s.current_step_hash = step_hash.to_string();
        clear_update_state(s);
        s.current_step_index = if ctx.step_count == 0 {
            None
        } else if back_to_stable {
            Some(ctx.step_count)
        } else {
            Some(0)
        };
        if template_changed {
            let message = format!("ReplicaSet \"{name}\" is progressing.");
            self.set_progressing(ConditionStatus::True, "ReplicaSetUpdated", &message, now);
            if !back_to_stable {
                self.event(
                    EventType::Normal,
                    "RolloutUpdated",
                    format!("Rollout updated to revision {}", self.revision_label()),
                );
            } else if !self.is_initial() {
                self.event(
                    EventType::Normal,
                    "SkipSteps",
                    "Rollback to stable ReplicaSets".to_string(),
                );
            }
        } else {
            self.touch_progress();
        }
    }

    fn sync_promote_full(&mut self, ctx: &Ctx<'_>) {
        if !self.st.promote_full {
            return;
        }
        // An abort requested after `promote --full` (not yet carried out: no abortedAt)
        // wins; it cancels the full promotion when it is carried out. A `promote --full`
        // issued after an abort clears it.
        if self.st.abort && self.st.aborted_at.is_none() {
            return;
        }
        let target = if ctx.step_count == 0 {
            None
        } else {
            Some(ctx.step_count)
        };
        if !self.st.pause_conditions.is_empty()
            || self.st.controller_pause
            || self.st.abort
            || self.st.current_step_index != target
        {
            self.terminate_runs();
            let s = self.s();
            s.pause_conditions.clear();
            s.controller_pause = false;
            s.abort = false;
            s.aborted_at = None;
            s.current_step_index = target;
        }
    }

    // ---- analysis, experiments, plugins ----------------------------------------------

    fn observed_run(&self, name: &str) -> Option<&'o AnalysisRunState> {
        self.observed.analysis_runs.iter().find(|r| r.name == name)
    }

    fn sync_analysis_observations(&mut self) {
        for background in [false, true] {
            let recorded = if background {
                &self.st.canary.current_background_analysis_run_status
            } else {
                &self.st.canary.current_step_analysis_run_status
            };
            let Some(rec) = recorded else { continue };
            let Some(obs) = self.observed_run(&rec.name) else {
                continue;
            };
            if rec.status != obs.phase || rec.message != obs.message {
                let s = self.s();
                let slot = if background {
                    &mut s.canary.current_background_analysis_run_status
                } else {
                    &mut s.canary.current_step_analysis_run_status
                };
                if let Some(rec) = slot {
                    rec.status = obs.phase;
                    rec.message.clone_from(&obs.message);
                }
            }
        }
    }

    /// Whether `name` is a run or experiment this machine created for step `index` of
    /// the current pod template (`<rollout>-<hash>-<index>-<suffix>`).
    fn named_for_step(&self, name: &str, index: i32) -> bool {
        let rest = name
            .strip_prefix(self.name())
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.strip_prefix(self.current_hash()))
            .and_then(|r| r.strip_prefix('-'));
        let Some(rest) = rest else { return false };
        let digits = rest.split('-').next().unwrap_or("");
        digits.parse::<i32>().ok() == Some(index)
    }

    /// A step run or experiment that belongs to a step the rollout has left (promoted
    /// past it, or the steps were reset) is terminated and forgotten.
    fn drop_stale_step_records(&mut self, ctx: &Ctx<'_>) {
        let current = self.current_step(ctx);
        if let Some(rec) = &self.st.canary.current_step_analysis_run_status {
            let live = matches!(current, Some((i, CanaryStep::Analysis(_))) if self.named_for_step(&rec.name, i));
            if !live {
                if !rec.status.is_completed() {
                    self.actions.push(Action::TerminateAnalysisRun {
                        name: rec.name.clone(),
                    });
                }
                self.s().canary.current_step_analysis_run_status = None;
            }
        }
        let exp = self.st.canary.current_experiment.as_str();
        if !exp.is_empty() {
            let live = matches!(current, Some((i, CanaryStep::Experiment(_))) if self.named_for_step(exp, i));
            if !live {
                let done = self
                    .observed
                    .experiments
                    .iter()
                    .any(|e| e.name == exp && e.phase.is_completed());
                if !done {
                    self.actions.push(Action::TerminateExperiment {
                        name: exp.to_string(),
                    });
                }
                self.s().canary.current_experiment.clear();
            }
        }
    }

    /// The current step's index and its [`CanaryStep::primary`] part (the one that
    /// decides completion; a combined step's other parts are read through
    /// [`Pass::current_parts`]).
    fn current_step<'c>(&self, ctx: &Ctx<'c>) -> Option<(i32, &'c CanaryStep)> {
        let i = self.st.current_step_index?;
        let step = ctx.steps.get(usize::try_from(i).ok()?)?;
        Some((i, step.primary()))
    }

    /// Every part of the current step.
    fn current_parts<'c>(&self, ctx: &Ctx<'c>) -> &'c [CanaryStep] {
        self.st
            .current_step_index
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| ctx.steps.get(i))
            .map_or(&[], CanaryStep::parts)
    }

    fn in_update(&self) -> bool {
        !self.is_initial() && !self.at_stable()
    }

    /// Failed / Error / Inconclusive runs, experiments and plugins.
    fn sync_abort_sources(&mut self, ctx: &Ctx<'_>) {
        if !self.in_update() || self.st.abort {
            return;
        }
        let mut abort_msg: Option<String> = None;
        let mut inconclusive: Option<PauseReason> = None;
        for (label, rec) in [
            (
                "Step-based",
                &self.st.canary.current_step_analysis_run_status,
            ),
            (
                "Background",
                &self.st.canary.current_background_analysis_run_status,
            ),
        ] {
            let Some(rec) = rec else { continue };
            match rec.status {
                AnalysisPhase::Failed | AnalysisPhase::Error if abort_msg.is_none() => {
                    let phase = if rec.status == AnalysisPhase::Failed {
                        "failed"
                    } else {
                        "error"
                    };
                    abort_msg = Some(if rec.message.is_empty() {
                        format!("{label} analysis phase {phase}")
                    } else {
                        format!("{label} analysis phase {phase}: {}", rec.message)
                    });
                }
                AnalysisPhase::Inconclusive => {
                    inconclusive = Some(PauseReason::InconclusiveAnalysisRun);
                }
                _ => {}
            }
        }
        if let Some((i, step)) = self.current_step(ctx) {
            match step {
                CanaryStep::Experiment(_) if !self.st.canary.current_experiment.is_empty() => {
                    let name = self.st.canary.current_experiment.as_str();
                    if let Some(e) = self.observed.experiments.iter().find(|e| e.name == name) {
                        match e.phase {
                            AnalysisPhase::Failed | AnalysisPhase::Error if abort_msg.is_none() => {
                                abort_msg = Some(format!(
                                    "Experiment '{}' phase {}: {}",
                                    e.name,
                                    e.phase.as_str(),
                                    e.message
                                ));
                            }
                            AnalysisPhase::Inconclusive => {
                                inconclusive = Some(PauseReason::InconclusiveExperiment);
                            }
                            _ => {}
                        }
                    }
                }
                CanaryStep::Plugin(p) => {
                    if let Some(ps) = self
                        .observed
                        .step_plugins
                        .iter()
                        .find(|p| p.step_index == i)
                        && matches!(ps.phase, AnalysisPhase::Failed | AnalysisPhase::Error)
                        && abort_msg.is_none()
                    {
                        abort_msg = Some(format!(
                            "Step plugin {} phase {}: {}",
                            p.name,
                            ps.phase.as_str(),
                            ps.message
                        ));
                    }
                }
                _ => {}
            }
        }
        if let Some(msg) = abort_msg {
            self.abort_now(ctx, &msg);
            return;
        }
        if let Some(reason) = inconclusive {
            if self.st.pause_condition(reason).is_some() {
                return;
            }
            if self.st.controller_pause && self.st.pause_conditions.is_empty() {
                // A user cleared the inconclusive pause: run the analysis again.
                self.drop_inconclusive_runs();
                self.s().controller_pause = false;
                return;
            }
            let now = self.now;
            let s = self.s();
            s.pause_conditions.push(PauseCondition {
                reason,
                start_time: now,
            });
            s.controller_pause = true;
            self.event(
                EventType::Warning,
                "RolloutPaused",
                format!("Rollout is paused ({})", reason.as_str()),
            );
        }
    }

    fn drop_inconclusive_runs(&mut self) {
        let s = self.s();
        for slot in [
            &mut s.canary.current_step_analysis_run_status,
            &mut s.canary.current_background_analysis_run_status,
        ] {
            if slot
                .as_ref()
                .is_some_and(|r| r.status == AnalysisPhase::Inconclusive)
            {
                *slot = None;
            }
        }
        if !s.canary.current_experiment.is_empty() {
            s.canary.current_experiment.clear();
        }
    }

    /// A user (or the progress deadline) set `status.abort`: record it once.
    fn start_abort_if_needed(&mut self, ctx: &Ctx<'_>) {
        if self.st.abort && self.st.aborted_at.is_none() {
            if !self.in_update() {
                // Nothing to abort: Argo ignores an abort without an update in flight.
                self.s().abort = false;
                return;
            }
            self.abort_now(ctx, "");
        }
    }

    /// Aborts the update: the Progressing condition says why (`RolloutAborted`).
    fn abort_now(&mut self, ctx: &Ctx<'_>, reason: &str) {
        let mut message = format!(
            "Rollout aborted update to revision {}",
            self.revision_label()
        );
        if !reason.is_empty() {
            message.push_str(": ");
            message.push_str(reason);
        }
        self.mark_aborted(ctx);
        let now = self.now;
        self.set_progressing(ConditionStatus::False, "RolloutAborted", &message, now);
        self.event(EventType::Warning, "RolloutAborted", message);
    }

    /// What every abort does: runs and experiments terminated, step plugins told,
    /// managed routes removed, the steps reset to the first one.
    fn mark_aborted(&mut self, ctx: &Ctx<'_>) {
        self.terminate_runs();
        if ctx
            .steps
            .iter()
            .flat_map(CanaryStep::parts)
            .any(|s| matches!(s, CanaryStep::Plugin(_)))
        {
            self.actions.push(Action::AbortStepPlugins);
        }
        if has_managed_routes(ctx.cs) {
            self.actions.push(Action::RemoveManagedRoutes);
        }
        let now = self.now;
        let s = self.s();
        s.abort = true;
        s.aborted_at = Some(now);
        s.promote_full = false;
        s.pause_conditions.clear();
        s.controller_pause = false;
        if ctx.step_count > 0 {
            s.current_step_index = Some(0);
        }
    }

    /// `status.abort` went back to false after an abort (`kubectl argo rollouts retry`).
    fn sync_retry(&mut self) {
        if self.st.abort || !self.in_update() {
            return;
        }
        let aborted = self
            .st
            .condition(ConditionType::Progressing)
            .is_some_and(|c| c.reason == "RolloutAborted");
        if aborted || self.st.aborted_at.is_some() {
            let now = self.now;
            self.s().aborted_at = None;
            self.set_progressing(
                ConditionStatus::True,
                "RolloutRetry",
                "Retrying Rollout after abort",
                now,
            );
            self.event(
                EventType::Normal,
                "RolloutRetry",
                "Retrying Rollout after abort".to_string(),
            );
        }
    }

    fn terminate_runs(&mut self) {
        for rec in [
            &self.st.canary.current_step_analysis_run_status,
            &self.st.canary.current_background_analysis_run_status,
        ]
        .into_iter()
        .flatten()
        {
            if !rec.status.is_completed() {
                self.actions.push(Action::TerminateAnalysisRun {
                    name: rec.name.clone(),
                });
            }
        }
        if !self.st.canary.current_experiment.is_empty() {
            let name = self.st.canary.current_experiment.as_str();
            let done = self
                .observed
                .experiments
                .iter()
                .any(|e| e.name == name && e.phase.is_completed());
            if !done {
                self.actions.push(Action::TerminateExperiment {
                    name: name.to_string(),
                });
            }
        }
    }

    fn paused_by_user_or_inconclusive(&self) -> bool {
        self.rollout.spec.paused
            || self
                .st
                .pause_condition(PauseReason::InconclusiveAnalysisRun)
                .is_some()
            || self
                .st
                .pause_condition(PauseReason::InconclusiveExperiment)
                .is_some()
    }

    /// Start the background run and the current step's run, experiment or plugin.
    fn sync_runs(&mut self, ctx: &Ctx<'_>) {
        if !self.in_update() || self.st.abort || self.st.promote_full {
            return;
        }
        if self.paused_by_user_or_inconclusive() {
            return;
        }
        let index = self.step_index(ctx);
        if let Some(bg) = ctx.cs.analysis.as_ref()
            && self
                .st
                .canary
                .current_background_analysis_run_status
                .is_none()
            && index >= bg.starting_step.unwrap_or(0)
        {
            self.start_run(AnalysisRunKind::Background, background_analysis(bg));
        }
        let Some((i, step)) = self.current_step(ctx) else {
            return;
        };
        match step {
            CanaryStep::Analysis(a)
                if self.st.canary.current_step_analysis_run_status.is_none() =>
            {
                self.start_run(AnalysisRunKind::Step { index: i }, a);
            }
            CanaryStep::Experiment(e) if self.st.canary.current_experiment.is_empty() => {
                let name = format!(
                    "{}-{}-{}-{}",
                    self.name(),
                    self.current_hash(),
                    i,
                    base36(self.now.as_millis())
                );
                self.actions.push(Action::StartExperiment {
                    name: name.clone(),
                    step_index: i,
                    experiment: e.clone(),
                    canary_hash: self.current_hash().to_string(),
                    stable_hash: self.st.stable_rs.clone(),
                });
                self.s().canary.current_experiment = name;
            }
            CanaryStep::Plugin(p) => {
                let state = self
                    .observed
                    .step_plugins
                    .iter()
                    .find(|s| s.step_index == i);
                match state {
                    None => self.actions.push(Action::RunStepPlugin {
                        step_index: i,
                        name: p.name.clone(),
                        config: p.config.clone(),
                    }),
                    Some(s) if s.phase == AnalysisPhase::Running => {
                        let at = s.backoff_until.unwrap_or(self.now).add_secs(5);
                        if at <= self.now {
                            self.actions.push(Action::RunStepPlugin {
                                step_index: i,
                                name: p.name.clone(),
                                config: p.config.clone(),
                            });
                        }
                        self.wake_at(at.max(self.now.add_secs(5)));
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }

    fn start_run(&mut self, kind: AnalysisRunKind, analysis: &RolloutAnalysis) {
        let name = analysis_run_name(self.name(), self.current_hash(), kind, self.now);
        self.actions.push(Action::StartAnalysisRun {
            name: name.clone(),
            kind,
            analysis: analysis.clone(),
            canary_hash: self.current_hash().to_string(),
            stable_hash: self.st.stable_rs.clone(),
        });
        let rec = Some(RolloutAnalysisRunStatus {
            name,
            status: AnalysisPhase::Pending,
            message: String::new(),
        });
        let s = self.s();
        match kind {
            AnalysisRunKind::Step { .. } => s.canary.current_step_analysis_run_status = rec,
            AnalysisRunKind::Background => s.canary.current_background_analysis_run_status = rec,
            // Blue-green runs are started by the blue-green machine.
            AnalysisRunKind::PrePromotion | AnalysisRunKind::PostPromotion => {}
        }
    }

    // ---- replica sets ----------------------------------------------------------------

    fn desired_counts(&self, ctx: &Ctx<'_>) -> Option<replicas::ReplicaCounts> {
        let others = self.other_counts_buf();
        let weights = self
            .st
            .canary
            .weights
            .as_ref()
            .map(|w| (w.canary.weight, w.stable.weight));
        let input = CanaryReplicaInput {
            spec_replicas: ctx.replicas,
            max_surge: ctx.max_surge,
            max_unavailable: ctx.max_unavailable,
            steps: ctx.steps,
            traffic_routing: ctx.traffic_routing,
            max_traffic_weight: ctx.max_weight,
            dynamic_stable_scale: ctx.cs.dynamic_stable_scale,
            min_pods_per_replica_set: ctx.cs.min_pods_per_replica_set,
            abort_scale_down_delay_seconds: abort_delay_for_step_down(ctx.cs),
            current_step_index: self.st.current_step_index,
            stable_hash: &self.st.stable_rs,
            current_pod_hash: self.current_hash(),
            abort: self.st.abort,
            promote_full: self.st.promote_full,
            stable_rs: self.stable_rs().map(ReplicaSetState::counts),
            canary_rs: Some(
                self.new_rs()
                    .map_or(ReplicaSetCounts::default(), ReplicaSetState::counts),
            ),
            other_rss: others.as_slice(),
            current_traffic_weights: weights,
        };
        let mut counts = replicas::canary_replica_counts(&input).ok()?;
        // Abort with dynamicStableScale: once the stable is fully available and no traffic
        // reaches the canary, the canary goes (see `desired_weight`; Argo's step-down walk
        // never ends while minPodsPerReplicaSet keeps canary pods available).
        if self.st.abort
            && ctx.traffic_routing
            && ctx.cs.dynamic_stable_scale
            && input
                .stable_rs
                .is_some_and(|s| s.available_replicas >= ctx.replicas)
            && weights.is_none_or(|(canary, _)| canary == 0)
        {
            counts.canary = 0;
        }
        Some(counts)
    }

    /// Counts of ReplicaSets that are neither the new nor the stable one, on the stack
    /// for the common case.
    fn other_counts_buf(&self) -> SmallCounts {
        let mut buf = SmallCounts::default();
        for rs in self.others() {
            buf.push(rs.counts());
        }
        buf
    }

    /// ReplicaSets that are neither the new nor the stable one. The iterator borrows only
    /// the observed data, so the pass can act while walking it.
    fn others(&self) -> impl Iterator<Item = &'o ReplicaSetState> + 'o {
        let cur = self.current_hash();
        let stable = self.find_rs(&self.st.stable_rs);
        let all: &'o [ReplicaSetState] = self.observed.replica_sets;
        all.iter().filter(move |rs| {
            rs.pod_template_hash != cur && !stable.is_some_and(|s| std::ptr::eq(*rs, s))
        })
    }

    /// Scales ReplicaSets toward their targets; returns whether anything was scaled.
    fn scale(&mut self, ctx: &Ctx<'_>) -> bool {
        if self.paused_by_user_or_inconclusive() && self.in_update() {
            return false;
        }
        let Some(counts) = self.desired_counts(ctx) else {
            self.invalid_spec("cannot compute replica counts");
            return false;
        };
        let mut scaled = false;
        let now = self.now;
        // 1. The stable ReplicaSet first.
        if let Some(stable) = self.stable_rs()
            && stable.spec_replicas != counts.stable
        {
            self.scale_rs(stable, counts.stable);
            scaled = true;
        }
        // 2. The new ReplicaSet.
        match self.new_rs() {
            None => {
                self.actions.push(Action::CreateReplicaSet {
                    pod_template_hash: self.current_hash().to_string(),
                    replicas: counts.canary,
                });
                self.event(
                    EventType::Normal,
                    "ScalingReplicaSet",
                    format!(
                        "Created ReplicaSet {}-{} with size {}",
                        self.name(),
                        self.current_hash(),
                        counts.canary
                    ),
                );
                scaled = true;
            }
            Some(new_rs) if new_rs.spec_replicas != counts.canary => {
                let delayed_abort = self.st.abort
                    && ctx.traffic_routing
                    && counts.canary < new_rs.spec_replicas
                    && self.abort_delay(ctx).is_some();
                let target = counts.canary.max(self.pods_for_routed_weight(ctx, new_rs));
                if delayed_abort {
                    scaled |= self.scale_down_after_abort_delay(ctx, new_rs, counts.canary);
                } else if target != new_rs.spec_replicas {
                    self.scale_rs(new_rs, target);
                    scaled = true;
                }
            }
            Some(_) => {}
        }
        // 3. Older ReplicaSets.
        if ctx.traffic_routing {
            for rs in self.others() {
                if rs.spec_replicas == 0 {
                    continue;
                }
                match rs.scale_down_deadline {
                    Some(d) if d > now => self.wake_at(d),
                    _ => {
                        self.scale_rs(rs, 0);
                        scaled = true;
                    }
                }
            }
        } else {
            scaled |= self.drain_old_basic(ctx);
        }
        scaled
    }

    /// With traffic routing, while the weight has to come down but the router still
    /// holds the higher one, the canary keeps the pods that weight needs (never more than
    /// it has): pods leave only after the traffic has.
    fn pods_for_routed_weight(&self, ctx: &Ctx<'_>, canary: &ReplicaSetState) -> i32 {
        if !ctx.traffic_routing || !self.in_update() {
            return 0;
        }
        let Some(w) = self.st.canary.weights.as_ref() else {
            return 0;
        };
        if w.canary.pod_template_hash != canary.pod_template_hash || w.canary.weight <= 0 {
            return 0;
        }
        // Only while traffic still has to leave (a write this pass could not make yet);
        // a `setCanaryScale` below the weight is the user's choice and goes through.
        if self.desired_weight(ctx) >= w.canary.weight {
            return 0;
        }
        replicas::traffic_weight_to_replicas(ctx.replicas, w.canary.weight, ctx.max_weight)
            .min(canary.spec_replicas)
    }

    fn abort_delay(&self, ctx: &Ctx<'_>) -> Option<i32> {
        match ctx.cs.abort_scale_down_delay_seconds {
            Some(0) => None,
            Some(n) => Some(n),
            None if ctx.cs.dynamic_stable_scale => None,
            None => Some(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
        }
    }

    /// After an abort with traffic routing the canary keeps its pods until the stable is
    /// fully available and then for `abortScaleDownDelaySeconds`.
    fn scale_down_after_abort_delay(
        &mut self,
        ctx: &Ctx<'_>,
        canary: &'o ReplicaSetState,
        target: i32,
    ) -> bool {
        let stable_ready = self
            .stable_rs()
            .is_some_and(|s| s.available_replicas >= ctx.replicas);
        if !stable_ready {
            return false;
        }
        match canary.scale_down_deadline {
            None => {
                let delay = self.abort_delay(ctx).unwrap_or(0);
                let deadline = self.now.add_secs(i64::from(delay));
                self.actions.push(Action::SetScaleDownDeadline {
                    pod_template_hash: canary.pod_template_hash.clone(),
                    deadline: Some(deadline),
                });
                self.wake_at(deadline);
                true
            }
            Some(d) if d > self.now => {
                self.wake_at(d);
                false
            }
            Some(_) => {
                self.scale_rs(canary, target);
                true
            }
        }
    }

    /// Basic canary: drain older ReplicaSets while keeping `replicas - maxUnavailable`
    /// pods available. Unavailable pods go first and cost nothing.
    fn drain_old_basic(&mut self, ctx: &Ctx<'_>) -> bool {
        let min_available = ctx.replicas - ctx.max_unavailable_resolved;
        let total_available: i32 = self
            .observed
            .replica_sets
            .iter()
            .map(|rs| rs.available_replicas)
            .sum();
        let mut budget = (total_available - min_available).max(0);
        let mut scaled = false;
        for rs in self.others() {
            if rs.spec_replicas == 0 {
                continue;
            }
            let unavailable = (rs.spec_replicas - rs.available_replicas).max(0);
            let removable_available = rs.spec_replicas.min(rs.available_replicas).min(budget);
            budget -= removable_available;
            let target = rs.spec_replicas - unavailable - removable_available;
            if target != rs.spec_replicas {
                self.scale_rs(rs, target.max(0));
                scaled = true;
            }
        }
        scaled
    }

    fn scale_rs(&mut self, rs: &ReplicaSetState, replicas: i32) {
        let verb = if replicas > rs.spec_replicas {
            "up"
        } else {
            "down"
        };
        self.actions.push(Action::ScaleReplicaSet {
            pod_template_hash: rs.pod_template_hash.clone(),
            replicas,
        });
        if replicas == 0 && rs.scale_down_deadline.is_some() {
            self.actions.push(Action::SetScaleDownDeadline {
                pod_template_hash: rs.pod_template_hash.clone(),
                deadline: None,
            });
        }
        self.event(
            EventType::Normal,
            "ScalingReplicaSet",
            format!(
                "Scaled {verb} ReplicaSet {}-{} (revision {}) from {} to {}",
                self.name(),
                rs.pod_template_hash,
                rs.revision,
                rs.spec_replicas,
                replicas
            ),
        );
    }

    fn sync_counts(&mut self, _ctx: &Ctx<'_>) {
        let mut replicas = 0;
        let mut ready = 0;
        let mut available = 0;
        for rs in self.observed.replica_sets {
            replicas += rs.replicas;
            ready += rs.ready_replicas;
            available += rs.available_replicas;
        }
        let updated = self.new_rs().map_or(0, |rs| rs.replicas);
        let st = &*self.st;
        if st.replicas != replicas
            || st.ready_replicas != ready
            || st.available_replicas != available
            || st.updated_replicas != updated
            || st.hpa_replicas != replicas
        {
            let s = self.s();
            s.replicas = replicas;
            s.hpa_replicas = replicas;
            s.ready_replicas = ready;
            s.available_replicas = available;
            s.updated_replicas = updated;
            self.touch_progress();
        }
    }

    // ---- traffic -----------------------------------------------------------------------

    fn desired_weight(&self, ctx: &Ctx<'_>) -> i32 {
        let max = ctx.max_weight;
        if self.at_stable() || self.is_initial() {
            return 0;
        }
        let new_available = self.new_rs().map_or(0, |rs| rs.available_replicas);
        if new_available == 0 {
            return 0;
        }
        if self.st.abort {
            if ctx.cs.dynamic_stable_scale {
                let stable_avail = self.stable_rs().map_or(0, |s| s.available_replicas);
                // Once the stable can take all traffic, it gets all of it. (Argo keeps
                // stepping through setWeight values while the canary still has available
                // pods, which `minPodsPerReplicaSet` keeps forever: the abort never ends.)
                if stable_avail >= ctx.replicas {
                    return 0;
                }
                let canary_avail = new_available;
                return replicas::desired_weight_on_abort(
                    ctx.steps,
                    ctx.replicas,
                    max,
                    stable_avail,
                    canary_avail,
                    abort_delay_for_step_down(ctx.cs),
                );
            }
            return 0;
        }
        let current = self
            .st
            .canary
            .weights
            .as_ref()
            .map_or(0, |w| w.canary.weight);
        if self.st.promote_full {
            if ctx.cs.dynamic_stable_scale && ctx.replicas > 0 {
                return (max * new_available / ctx.replicas).min(max);
            }
            return current;
        }
        let index = self.step_index(ctx);
        if index >= ctx.step_count {
            return max;
        }
        // The setWeight in force up to a step index (exclusive).
        let weight_before = |upto: i32| {
            ctx.steps
                .iter()
                .take(usize::try_from(upto).unwrap_or(0))
                .filter_map(StepView::set_weight)
                .next_back()
                .unwrap_or(0)
                .clamp(0, max)
        };
        let previous = weight_before(index);
        let current = weight_before(index + 1);
        // A higher weight waits until the ReplicaSets are at their counts (Argo). A lower
        // one applies at once, so traffic leaves the canary before its pods do (Argo
        // waits for the counts here too, which briefly routes to removed pods).
        if current <= previous {
            return current;
        }
        let at_desired = self
            .desired_counts(ctx)
            .is_some_and(|c| self.counts_reached(ctx, c));
        if at_desired { current } else { previous }
    }

    fn counts_reached(&self, ctx: &Ctx<'_>, c: replicas::ReplicaCounts) -> bool {
        let stable = self.stable_rs();
        let check = AtDesiredCheck {
            stable_status_replicas: stable.map(|s| s.replicas),
            replica_progress_threshold: progress_threshold(ctx.cs),
        };
        let older_available: i32 = self.others().map(|rs| rs.available_replicas).sum();
        replicas::replica_sets_at_desired(
            c,
            self.new_rs().map(ReplicaSetState::counts),
            stable.map(ReplicaSetState::counts),
            &check,
            ctx.traffic_routing,
            ctx.cs.dynamic_stable_scale,
            older_available,
        )
    }

    fn sync_traffic(&mut self, ctx: &Ctx<'_>) {
        if !ctx.traffic_routing {
            return;
        }
        // Header and mirror routes of the current step.
        if self.in_update() && !self.st.abort {
            for part in self.current_parts(ctx) {
                match part {
                    CanaryStep::SetHeaderRoute(r) => {
                        self.actions.push(Action::SetHeaderRoute(r.clone()));
                    }
                    CanaryStep::SetMirrorRoute(r) => {
                        self.actions.push(Action::SetMirrorRoute(r.clone()));
                    }
                    _ => {}
                }
            }
        }
        let max = ctx.max_weight;
        let weight = self.desired_weight(ctx);
        // Never take traffic away from the canary before the stable can serve it.
        if let Some(stable) = self.stable_rs() {
            let needed = replicas::traffic_weight_to_replicas(ctx.replicas, max - weight, max);
            if stable.available_replicas < needed && ctx.cs.dynamic_stable_scale {
                return;
            }
        }
        let canary_hash = self.current_hash();
        let stable_hash = if self.st.stable_rs.is_empty() {
            canary_hash
        } else {
            self.st.stable_rs.as_str()
        };
        let canary_service = ctx.cs.canary_service.as_deref().unwrap_or("");
        let stable_service = ctx.cs.stable_service.as_deref().unwrap_or("");
        let verified = self.observed.traffic_verified;
        // Weighted experiment templates of a running experiment step get their share.
        let experiment = self.running_weighted_experiment(ctx);
        let experiment = experiment
            .as_ref()
            .map(|(step, name)| (*step, name.as_str()));
        let extra: i32 = experiment.map_or(0, |(step, _)| {
            step.templates
                .iter()
                .filter_map(|t| t.weight)
                .map(|w| w.max(0))
                .sum()
        });
        let stable_weight = (max - weight - extra).max(0);
        let same = self.st.canary.weights.as_ref().is_some_and(|w| {
            w.canary.weight == weight
                && w.stable.weight == stable_weight
                && w.canary.pod_template_hash == canary_hash
                && w.stable.pod_template_hash == stable_hash
                && same_additional(&w.additional, experiment, canary_hash, stable_hash)
        });
        if !same {
            let stable_hash = stable_hash.to_string();
            let additional = experiment.map_or_else(Vec::new, |(step, name)| {
                experiment_destinations(step, name, canary_hash, &stable_hash)
            });
            self.actions.push(Action::SetTrafficWeight {
                canary_weight: weight,
                stable_weight,
                total: max,
                canary_hash: canary_hash.to_string(),
                stable_hash: stable_hash.clone(),
                additional: additional.clone(),
            });
            self.event(
                EventType::Normal,
                "TrafficWeightUpdated",
                format!("Traffic weight updated to {weight}"),
            );
            self.s().canary.weights = Some(TrafficWeights {
                canary: WeightDestination {
                    weight,
                    service_name: canary_service.to_string(),
                    pod_template_hash: canary_hash.to_string(),
                },
                stable: WeightDestination {
                    weight: stable_weight,
                    service_name: stable_service.to_string(),
                    pod_template_hash: stable_hash,
                },
                additional,
                // Fresh writes are unverified until the router says otherwise.
                verified: verified.map(|_| false),
            });
            if verified.is_some() {
                self.wake_at(self.now.add_secs(VERIFY_RETRY_SECONDS));
            }
        } else if self.st.canary.weights.as_ref().and_then(|w| w.verified) != verified
            && let Some(w) = self.s().canary.weights.as_mut()
        {
            w.verified = verified;
        }
        if verified == Some(false) {
            self.wake_at(self.now.add_secs(VERIFY_RETRY_SECONDS));
        }
    }

    /// The current experiment step and its experiment's name, when the experiment runs
    /// and has weighted templates (traffic routing only).
    fn running_weighted_experiment<'c>(
        &self,
        ctx: &Ctx<'c>,
    ) -> Option<(&'c ExperimentStep, String)> {
        if self.st.abort || !self.in_update() {
            return None;
        }
        let Some((_, CanaryStep::Experiment(step))) = self.current_step(ctx) else {
            return None;
        };
        if !step.templates.iter().any(|t| t.weight.is_some()) {
            return None;
        }
        let name = self.st.canary.current_experiment.as_str();
        let running = self
            .observed
            .experiments
            .iter()
            .any(|e| e.name == name && e.phase == AnalysisPhase::Running);
        running.then(|| (step, name.to_string()))
    }

    fn sync_services(&mut self, ctx: &Ctx<'_>) {
        let current = self.current_hash();
        let stable = if self.st.stable_rs.is_empty() {
            current
        } else {
            self.st.stable_rs.as_str()
        };
        // The canary service follows the new pods, except after an abort once no traffic
        // reaches them, and before any new pod is available.
        let new_available = self.new_rs().is_some_and(|rs| rs.available_replicas > 0);
        let canary_target = if self.st.abort || !new_available {
            stable
        } else {
            current
        };
        let pairs = [
            (ctx.cs.stable_service.as_deref(), stable),
            (ctx.cs.canary_service.as_deref(), canary_target),
        ];
        for (service, hash) in pairs {
            let Some(service) = service.filter(|s| !s.is_empty()) else {
                continue;
            };
            if hash.is_empty() {
                continue;
            }
            let current = self.observed.services.iter().find(|s| s.name == service);
            if current.is_none_or(|s| s.pod_template_hash != hash) {
                self.actions.push(Action::SetServiceSelector {
                    service: service.to_string(),
                    pod_template_hash: hash.to_string(),
                });
            }
        }
    }

    // ---- promotion and steps -----------------------------------------------------------

    fn try_full_promotion(&mut self, ctx: &Ctx<'_>) -> bool {
        if self.st.abort || self.at_stable() {
            return false;
        }
        let Some(new_rs) = self.new_rs() else {
            return false;
        };
        let available_enough = new_rs.available_replicas >= ctx.replicas
            || progress_threshold(ctx.cs).is_some_and(|t| {
                replicas::replica_progress_threshold_met(
                    Some(t),
                    new_rs.available_replicas,
                    ctx.replicas,
                )
            });
        let reason = if self.is_initial() {
            if new_rs.available_replicas < ctx.replicas {
                return false;
            }
            "Initial deploy".to_string()
        } else if !available_enough {
            return false;
        } else if self.st.promote_full {
            "Full promotion requested".to_string()
        } else if ctx.step_count == 0 || self.step_index(ctx) >= ctx.step_count {
            format!("Completed all {} canary steps", ctx.step_count)
        } else {
            return false;
        };
        if self.paused_by_user_or_inconclusive() && !self.is_initial() {
            return false;
        }
        // With traffic routing the whole weight must be on the canary before the switch.
        if ctx.traffic_routing && !self.is_initial() {
            let full =
                self.st.canary.weights.as_ref().is_some_and(|w| {
                    w.canary.weight == ctx.max_weight && w.verified != Some(false)
                });
            if !full && !self.st.promote_full {
                return false;
            }
        }
        self.promote(ctx, &reason);
        true
    }

    fn promote(&mut self, ctx: &Ctx<'_>, reason: &str) {
        let now = self.now;
        let old_stable = self.stable_rs();
        // The background run ends with the update.
        if let Some(rec) = &self.st.canary.current_background_analysis_run_status
            && !rec.status.is_completed()
        {
            self.actions.push(Action::TerminateAnalysisRun {
                name: rec.name.clone(),
            });
        }
        if has_managed_routes(ctx.cs) && !self.is_initial() {
            self.actions.push(Action::RemoveManagedRoutes);
        }
        if let Some(old) = old_stable
            && ctx.traffic_routing
            && !ctx.cs.dynamic_stable_scale
            && old.spec_replicas > 0
        {
            let delay = ctx
                .cs
                .scale_down_delay_seconds
                .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS);
            let deadline = now.add_secs(i64::from(delay));
            self.actions.push(Action::SetScaleDownDeadline {
                pod_template_hash: old.pod_template_hash.clone(),
                deadline: Some(deadline),
            });
            self.wake_at(deadline);
        }
        let hash = self.current_hash().to_string();
        let name = format!("{}-{}", self.name(), hash);
        let s = self.s();
        s.stable_rs = hash;
        clear_update_state(s);
        s.current_step_index = if ctx.step_count == 0 {
            None
        } else {
            Some(ctx.step_count)
        };
        let message = format!("ReplicaSet \"{name}\" has successfully progressed.");
        self.set_progressing(
            ConditionStatus::True,
            "NewReplicaSetAvailable",
            &message,
            now,
        );
        self.set_condition(
            ConditionType::Completed,
            ConditionStatus::True,
            "RolloutCompleted",
            "Rollout completed update to revision",
        );
        self.event(
            EventType::Normal,
            "RolloutCompleted",
            format!(
                "Rollout completed update to revision {} ({}): {reason}",
                self.revision_label(),
                self.current_hash()
            ),
        );
    }

    fn advance_step(&mut self, ctx: &Ctx<'_>) {
        if !self.in_update() || self.st.abort || self.paused_by_user_or_inconclusive() {
            return;
        }
        let Some((i, step)) = self.current_step(ctx) else {
            return;
        };
        let complete = match step {
            CanaryStep::SetWeight(_) => {
                // As in Argo: the counts are reached and the router did not report the
                // weight unverified. (The weight itself was written earlier in this pass;
                // it stays 0 while the canary has no available pod, e.g. under a
                // `setCanaryScale` of 0, which must not block the step.)
                let at_counts = self
                    .desired_counts(ctx)
                    .is_some_and(|c| self.counts_reached(ctx, c));
                let verified = self
                    .st
                    .canary
                    .weights
                    .as_ref()
                    .is_none_or(|tw| tw.verified != Some(false));
                at_counts && verified
            }
            CanaryStep::SetCanaryScale(_) => self
                .desired_counts(ctx)
                .is_some_and(|c| self.counts_reached(ctx, c)),
            CanaryStep::SetHeaderRoute(_) | CanaryStep::SetMirrorRoute(_) => true,
            CanaryStep::Pause(p) => self.pause_step(p.duration_seconds()),
            CanaryStep::Analysis(_) => self
                .st
                .canary
                .current_step_analysis_run_status
                .as_ref()
                .is_some_and(|r| r.status == AnalysisPhase::Successful),
            CanaryStep::Experiment(_) => {
                let name = self.st.canary.current_experiment.as_str();
                !name.is_empty()
                    && self
                        .observed
                        .experiments
                        .iter()
                        .any(|e| e.name == name && e.phase == AnalysisPhase::Successful)
            }
            CanaryStep::Plugin(_) => self
                .observed
                .step_plugins
                .iter()
                .any(|p| p.step_index == i && p.phase == AnalysisPhase::Successful),
            // `primary` never returns a combined step.
            CanaryStep::Combined(_) => false,
        };
        if !complete {
            return;
        }
        let desc = step_description(step);
        let s = self.s();
        s.current_step_index = Some(i + 1);
        s.canary.current_step_analysis_run_status = None;
        s.canary.current_experiment.clear();
        s.pause_conditions
            .retain(|c| c.reason != PauseReason::CanaryPauseStep);
        s.controller_pause = false;
        self.touch_progress();
        self.event(
            EventType::Normal,
            "RolloutStepCompleted",
            format!(
                "Rollout step {}/{} completed ({desc})",
                i + 1,
                ctx.step_count
            ),
        );
    }

    /// Handles a `pause` step; returns whether it completed.
    fn pause_step(&mut self, duration: Option<i64>) -> bool {
        let now = self.now;
        match self.st.pause_condition(PauseReason::CanaryPauseStep) {
            None if self.st.controller_pause => true, // a user cleared the pause
            None => {
                let s = self.s();
                s.pause_conditions.push(PauseCondition {
                    reason: PauseReason::CanaryPauseStep,
                    start_time: now,
                });
                s.controller_pause = true;
                self.event(
                    EventType::Normal,
                    "RolloutPaused",
                    "Rollout is paused (CanaryPauseStep)".to_string(),
                );
                if let Some(d) = duration {
                    if d <= 0 {
                        return true;
                    }
                    self.wake_at(now.add_secs(d));
                }
                false
            }
            Some(cond) => match duration {
                Some(d) => {
                    let end = cond.start_time.add_secs(d);
                    if now >= end {
                        true
                    } else {
                        self.wake_at(end);
                        false
                    }
                }
                None => false,
            },
        }
    }

    // ---- conditions, progress deadline, phase -----------------------------------------

    fn set_condition(
        &mut self,
        type_: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: &str,
    ) {
        crate::conditions::set_condition(&mut self.st, self.now, type_, status, reason, message);
    }

    fn set_progressing(
        &mut self,
        status: ConditionStatus,
        reason: &str,
        msg: &str,
        now: Timestamp,
    ) {
        crate::conditions::set_progressing(&mut self.st, now, status, reason, msg);
    }

    /// Progress was made: refresh the Progressing condition's `lastUpdateTime`.
    fn touch_progress(&mut self) {
        crate::conditions::touch_progress(&mut self.st, self.now);
    }

    fn at_blocking_step(&self, ctx: &Ctx<'_>) -> bool {
        !self.st.pause_conditions.is_empty()
            || self.rollout.spec.paused
            || matches!(
                self.current_step(ctx),
                Some((
                    _,
                    CanaryStep::Pause(_) | CanaryStep::Analysis(_) | CanaryStep::Experiment(_)
                ))
            )
    }

    fn sync_progress(&mut self, ctx: &Ctx<'_>) {
        let now = self.now;
        // Paused / resumed bookkeeping on the Progressing condition.
        let paused = self.rollout.spec.paused || !self.st.pause_conditions.is_empty();
        if self.in_update() && !self.st.abort {
            if paused {
                let already = self
                    .st
                    .condition(ConditionType::Progressing)
                    .is_some_and(|c| c.reason == "RolloutPaused");
                if !already {
                    self.set_progressing(
                        ConditionStatus::Unknown,
                        "RolloutPaused",
                        "Rollout is paused",
                        now,
                    );
                }
            } else if self
                .st
                .condition(ConditionType::Progressing)
                .is_some_and(|c| c.reason == "RolloutPaused")
            {
                self.set_progressing(
                    ConditionStatus::True,
                    "RolloutResumed",
                    "Rollout is resumed",
                    now,
                );
            }
        }
        // Available.
        let min_available = ctx.replicas - ctx.max_unavailable_resolved;
        let (status, reason, message) = if self.st.available_replicas >= min_available {
            (
                ConditionStatus::True,
                "AvailableReason",
                "Rollout has minimum availability",
            )
        } else {
            (
                ConditionStatus::False,
                "AvailableReason",
                "Rollout does not have minimum availability",
            )
        };
        self.set_condition(ConditionType::Available, status, reason, message);
        // Healthy / Completed once the update is done and everything is available.
        if self.at_stable() {
            let healthy = self.st.available_replicas >= ctx.replicas
                && self.st.updated_replicas >= ctx.replicas
                && self.st.replicas == ctx.replicas;
            let (hs, hmsg) = if healthy {
                (ConditionStatus::True, "Rollout is healthy")
            } else {
                (ConditionStatus::False, "Rollout is not healthy")
            };
            self.set_condition(ConditionType::Healthy, hs, "RolloutHealthy", hmsg);
            return;
        }
        if self
            .st
            .condition(ConditionType::Completed)
            .is_some_and(|c| c.status == ConditionStatus::True)
        {
            self.set_condition(
                ConditionType::Completed,
                ConditionStatus::False,
                "RolloutCompleted",
                "Rollout not completed",
            );
        }
        // Progress deadline: not counted while paused or at a blocking step.
        if self.is_initial() || self.st.abort || self.at_blocking_step(ctx) {
            return;
        }
        let Some(cond) = self.st.condition(ConditionType::Progressing) else {
            return;
        };
        if cond.status != ConditionStatus::True {
            return;
        }
        let Some(last) = cond.last_update_time else {
            return;
        };
        let deadline = last.add_secs(i64::from(self.rollout.spec.progress_deadline_seconds()));
        if now <= deadline {
            self.wake_at(deadline.add_millis(1));
            return;
        }
        let message = format!(
            "ReplicaSet \"{}-{}\" has timed out progressing.",
            self.name(),
            self.current_hash()
        );
        self.set_progressing(
            ConditionStatus::False,
            "ProgressDeadlineExceeded",
            &message,
            now,
        );
        self.event(EventType::Warning, "RolloutTimedOut", message.clone());
        if self.rollout.spec.progress_deadline_abort {
            // The condition keeps saying ProgressDeadlineExceeded: that is why it aborted.
            self.mark_aborted(ctx);
            self.event(EventType::Warning, "RolloutAborted", message);
        }
    }

    fn update_phase(&mut self, ctx: Option<&Ctx<'_>>) {
        let spec = &self.rollout.spec;
        let generation = self.rollout.metadata.generation.unwrap_or(0);
        let input = PhaseInput {
            strategy: StrategyKind::Canary,
            spec_replicas: spec.replicas(),
            traffic_routing: ctx.is_some_and(|c| c.traffic_routing),
            paused: spec.paused,
            restart_at: spec.restart_at,
            post_promotion_analysis: false,
            generation,
            template_resolved_from_ref: false,
            workload_generation: None,
            status: &self.st,
        };
        let (phase, message) = phase::calculate_phase_message(&input);
        if self.st.phase != Some(phase) || !message.is(&self.st.message) {
            let message = message.to_string();
            let s = self.s();
            s.phase = Some(phase);
            s.message = message;
        }
        if generation > 0 {
            let buf = itoa_buf(generation);
            let g = buf.as_str();
            if self.st.observed_generation != g {
                self.s().observed_generation = g.to_string();
            }
        }
    }
}

fn progress_threshold(cs: &CanaryStrategy) -> Option<ProgressThreshold> {
    cs.replica_progress_threshold
        .as_ref()
        .map(|t| match t.r#type {
            ProgressThresholdType::Pods => ProgressThreshold::Pods(t.value),
            _ => ProgressThreshold::Percent(t.value),
        })
}

/// The `abortScaleDownDelaySeconds` the replica arithmetic sees. Argo's dynamic abort
/// walks down the setWeight values while the canary still has available pods; with
/// `minPodsPerReplicaSet` it always has, so the walk never reaches 0. Its fix for
/// argoproj/argo-rollouts#4898 (compare against the missing stable pods only) is chosen
/// by an explicit positive delay; this machine takes that variant whenever
/// `minPodsPerReplicaSet` is set. Unset and a positive delay size the canary alike
/// otherwise, and the machine's own scale-down deadline still reads the spec value.
fn abort_delay_for_step_down(cs: &CanaryStrategy) -> Option<i32> {
    match cs.abort_scale_down_delay_seconds {
        None if cs.min_pods_per_replica_set.is_some() => Some(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
        other => other,
    }
}

/// Forgets everything that belongs to one attempt at an update: pauses, abort, promote
/// --full, the runs and the experiment (a new template, new steps, or the promotion).
fn clear_update_state(s: &mut RolloutStatus) {
    s.pause_conditions.clear();
    s.controller_pause = false;
    s.abort = false;
    s.aborted_at = None;
    s.promote_full = false;
    s.canary.current_step_analysis_run_status = None;
    s.canary.current_background_analysis_run_status = None;
    s.canary.current_experiment.clear();
}

/// The weighted destinations of an experiment's templates.
fn experiment_destinations(
    step: &ExperimentStep,
    experiment: &str,
    canary_hash: &str,
    stable_hash: &str,
) -> Vec<WeightDestination> {
    step.templates
        .iter()
        .filter_map(|t| {
            let weight = t.weight?;
            Some(WeightDestination {
                weight: weight.max(0),
                service_name: crate::experiment::template_service_name(experiment, t)
                    .unwrap_or_else(|| format!("{experiment}-{}", t.name)),
                pod_template_hash: match t.spec_ref {
                    SpecRef::Stable => stable_hash.to_string(),
                    _ => canary_hash.to_string(),
                },
            })
        })
        .collect()
}

/// Whether recorded additional destinations equal the experiment's (without allocating).
fn same_additional(
    recorded: &[WeightDestination],
    experiment: Option<(&ExperimentStep, &str)>,
    canary_hash: &str,
    stable_hash: &str,
) -> bool {
    let Some((step, name)) = experiment else {
        return recorded.is_empty();
    };
    let mut weighted = step.templates.iter().filter(|t| t.weight.is_some());
    let mut rec = recorded.iter();
    loop {
        match (weighted.next(), rec.next()) {
            (None, None) => return true,
            (Some(t), Some(d)) => {
                let hash = match t.spec_ref {
                    SpecRef::Stable => stable_hash,
                    _ => canary_hash,
                };
                let service_ok = match t.service.as_ref().and_then(|s| s.name.as_deref()) {
                    Some(n) if !n.is_empty() => d.service_name == n,
                    _ => d
                        .service_name
                        .strip_prefix(name)
                        .and_then(|r| r.strip_prefix('-'))
                        .is_some_and(|r| r == t.name),
                };
                if d.weight != t.weight.unwrap_or(0).max(0)
                    || d.pod_template_hash != hash
                    || !service_ok
                {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

fn has_managed_routes(cs: &CanaryStrategy) -> bool {
    cs.traffic_routing
        .as_ref()
        .is_some_and(|t| !t.managed_routes.is_empty())
}

fn background_analysis(bg: &BackgroundAnalysis) -> &RolloutAnalysis {
    &bg.analysis
}

fn step_description(step: &CanaryStep) -> String {
    match step {
        CanaryStep::SetWeight(w) => format!("setWeight: {w}"),
        CanaryStep::Pause(p) => match &p.duration {
            Some(d) => format!("pause: {d}"),
            None => "pause".to_string(),
        },
        other => other.kind().to_string(),
    }
}

/// The name of an analysis run a machine starts: `<rollout>-<hash>-<kind>-<time>`, where
/// kind is the step index, `bg`, `pre` or `post`, and time the base-36 Unix milliseconds of the
/// pass (so a retried step never collides with the run it replaces).
pub fn analysis_run_name(
    rollout: &str,
    pod_template_hash: &str,
    kind: AnalysisRunKind,
    now: Timestamp,
) -> String {
    let t = base36(now.as_millis());
    match kind {
        AnalysisRunKind::Step { index } => format!("{rollout}-{pod_template_hash}-{index}-{t}"),
        AnalysisRunKind::Background => format!("{rollout}-{pod_template_hash}-bg-{t}"),
        AnalysisRunKind::PrePromotion => format!("{rollout}-{pod_template_hash}-pre-{t}"),
        AnalysisRunKind::PostPromotion => format!("{rollout}-{pod_template_hash}-post-{t}"),
    }
}

/// Base-36 rendering of a non-negative number (run-name suffixes).
fn base36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".to_string();
    }
    let mut out = Vec::with_capacity(13);
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A small stack buffer for decimal rendering without allocation.
struct ItoaBuf {
    buf: [u8; 24],
    len: usize,
}

impl ItoaBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.buf.len() - self.len..]).unwrap_or("")
    }
}

fn itoa_buf(n: i64) -> ItoaBuf {
    let mut b = ItoaBuf {
        buf: [0; 24],
        len: 0,
    };
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        b.len += 1;
        let pos = b.buf.len() - b.len;
        b.buf[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        b.len += 1;
        let pos = b.buf.len() - b.len;
        b.buf[pos] = b'-';
    }
    b
}

/// Up to eight items inline; more spill into a vector.
#[derive(Default)]
struct SmallCounts {
    inline: [ReplicaSetCounts; 8],
    len: usize,
    spill: Vec<ReplicaSetCounts>,
}

impl SmallCounts {
    fn push(&mut self, c: ReplicaSetCounts) {
        if self.spill.is_empty() && self.len < self.inline.len() {
            self.inline[self.len] = c;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.push(c);
        }
    }

    fn as_slice(&self) -> &[ReplicaSetCounts] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}
