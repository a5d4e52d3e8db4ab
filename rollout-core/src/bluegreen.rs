//! The blue-green state machine.
//!
//! # Model
//!
//! One call of [`reconcile`] is one pass of Argo's rollout controller over a blue-green
//! `Rollout`. It has the canary machine's shape and shares its types: it takes the
//! [`Rollout`], the persisted [`RolloutStatus`], what the caller observed in the cluster
//! ([`Observed`]: the current pod template hash, the ReplicaSets with their counts and
//! `scale-down-deadline` annotations, the analysis runs' phases and the services'
//! selectors) and `now`, and returns a [`Decision`]: the new status (borrowed when nothing
//! changed, so a pass that changes nothing allocates nothing), the [`Action`]s to carry
//! out, the [`Event`]s to record and when to call again (`requeue_at`: the end of an
//! `autoPromotionSeconds` pause, a scale-down deadline, the progress deadline).
//!
//! Two services carry a blue-green release. The **active** service
//! (`blueGreen.activeService`) serves production traffic; the **preview** service
//! (`blueGreen.previewService`, optional) points at the ReplicaSet of the current pod
//! template from the moment it exists. The update is a sequence of gates; each pass
//! moves through as many as it can:
//!
//! 1. A new pod template: the status is reset, the new ReplicaSet is created with 0
//!    pods and the preview service is pointed at it. The pass ends there (as in Argo).
//! 2. The new ReplicaSet is scaled to `previewReplicaCount` (or to `spec.replicas`);
//!    the active ReplicaSet and the stable one stay at `spec.replicas`.
//! 3. Once it is fully available at that size, `prePromotionAnalysis` starts
//!    ([`AnalysisRunKind::PrePromotion`]). `Failed`/`Error` aborts the update;
//!    `Inconclusive` pauses it (`InconclusiveAnalysisRun`).
//! 4. After the analysis succeeded, `autoPromotionEnabled: false` or
//!    `autoPromotionSeconds > 0` adds the `BlueGreenPause` pause condition (with
//!    `controllerPause`). It completes when a user removes it (`promote`) or, with
//!    auto-promotion, `autoPromotionSeconds` after it started.
//! 5. `status.blueGreen.scaleUpPreviewCheckPoint` latches, and a ReplicaSet at the
//!    preview count is scaled to `spec.replicas`.
//! 6. The active service is switched to the new ReplicaSet (`SetServiceSelector`) only
//!    when that ReplicaSet is saturated (`spec.replicas` pods, all available), the pause
//!    is complete and the pre-promotion analysis succeeded. A fast-tracked update
//!    switches as soon as it is saturated: `promote --full`, a return to a ReplicaSet
//!    that still waits on its scale-down deadline (a fast rollback), a return to the
//!    stable ReplicaSet, an active service that selects no pod template hash yet, or one
//!    that already selects the new ReplicaSet.
//! 7. `postPromotionAnalysis` ([`AnalysisRunKind::PostPromotion`]) runs against the
//!    switched service. Only after it succeeds does the new ReplicaSet become
//!    `status.stableRS` ("Completed blue-green update", event `RolloutCompleted`). A
//!    failure aborts: the active service goes back to the stable ReplicaSet.
//! 8. ReplicaSets that are neither stable, current, active nor preview get a
//!    `scale-down-deadline` of now + `scaleDownDelaySeconds` (30) and are scaled to 0
//!    when it passes; `scaleDownDelayRevisionLimit` caps how many of them wait (newest
//!    first; the rest go to 0 at once).
//!
//! An abort (`status.abort`, a failed analysis, `progressDeadlineAbort`) points the
//! active service back at the stable ReplicaSet, stops the analyses and, once the stable
//! ReplicaSet is fully available, gives the new ReplicaSet a deadline of now +
//! `abortScaleDownDelaySeconds` (30; 0 keeps it up), after which it is scaled to 0. The
//! phase is `Degraded` with "RolloutAborted: Rollout aborted update to revision N...".
//! Clearing the abort (`retry`) starts the update over with new analysis runs; a new pod
//! template starts over too. The initial deploy has no analysis and no pause: the active
//! service points at the first ReplicaSet once it is fully available, and that makes it
//! stable.
//!
//! `spec.paused` and an `InconclusiveAnalysisRun` pause halt the update: no scaling of
//! the new ReplicaSet, no service switch, no blue-green pause bookkeeping (an abort still
//! returns the active service to stable). The progress deadline marks a stalled update
//! `Degraded` (`ProgressDeadlineExceeded`); time spent paused or waiting for a
//! promotion analysis does not count.
//!
//! # Call order
//!
//! As for [`crate::canary`]:
//!
//! 1. Observe the cluster and build [`Observed`] (the ReplicaSets oldest first, and the
//!    active and preview services in `services`).
//! 2. Call [`reconcile`].
//! 3. Execute every action, in order. They are idempotent: a pass repeated after a
//!    crash emits them again.
//! 4. Persist `decision.status` (when [`Decision::status_changed`]), then record events.
//! 5. Call again when something observed changes, or at `requeue_at`.
//!
//! Everything the machine needs to continue lives in the status and in the cluster
//! (service selectors, ReplicaSet annotations), so a crash between any two steps loses
//! nothing: the active service's observed selector is the truth about the switch, and
//! `status.blueGreen.activeSelector` / `previewSelector` record it.
//!
//! ```
//! use rollout_core::bluegreen::reconcile;
//! use rollout_core::canary::{Action, Observed, ReplicaSetState, ServiceState};
//! use rollout_core::{spec::Rollout, RolloutStatus, Timestamp};
//!
//! let rollout = Rollout::from_yaml(r#"
//! apiVersion: argoproj.io/v1alpha1
//! kind: Rollout
//! metadata: {name: web}
//! spec:
//!   replicas: 3
//!   selector: {matchLabels: {app: web}}
//!   template:
//!     metadata: {labels: {app: web}}
//!     spec: {containers: [{name: web, image: "web:2"}]}
//!   strategy:
//!     blueGreen: {activeService: web, previewService: web-preview}
//! "#)?;
//! // "v1" is stable and active; "v2" (the new template) is fully available.
//! let mut status = RolloutStatus { stable_rs: "v1".into(), current_pod_hash: "v2".into(),
//!                                  ..RolloutStatus::default() };
//! status.blue_green.active_selector = "v1".into();
//! let rs = |hash: &str| ReplicaSetState { pod_template_hash: hash.into(), spec_replicas: 3,
//!     replicas: 3, ready_replicas: 3, available_replicas: 3, ..ReplicaSetState::default() };
//! let sets = [rs("v1"), rs("v2")];
//! let services = [ServiceState { name: "web".into(), pod_template_hash: "v1".into() },
//!                 ServiceState { name: "web-preview".into(), pod_template_hash: "v2".into() }];
//! let observed = Observed { pod_template_hash: "v2", replica_sets: &sets,
//!                           services: &services, ..Observed::default() };
//! let decision = reconcile(&rollout, &status, &observed, Timestamp::from_secs(1_800_000_000));
//! // No analysis, no pause: the active service switches and v2 becomes stable.
//! assert!(decision.actions.iter().any(|a| matches!(a,
//!     Action::SetServiceSelector { service, pod_template_hash }
//!         if service == "web" && pod_template_hash == "v2")));
//! assert_eq!(decision.status.stable_rs, "v2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where this differs from Argo Rollouts
//!
//! - The initial deploy becomes stable when the active service is switched to it (Argo
//!   records it as stable at once and switches later); the phase is the same.
//! - A `promote` completes a pause of `autoPromotionSeconds` too (Argo then waits for the
//!   seconds anyway, because it only counts them from an existing pause condition).
//! - A return to the stable ReplicaSet is fast-tracked (Argo can pause it again when
//!   `autoPromotionEnabled` is false), and a retry is never mistaken for a fast rollback
//!   because of the abort's own `scale-down-deadline` on the new ReplicaSet.
//! - `scaleUpPreviewCheckPoint` is cleared on abort and retry, so a retry repeats the
//!   preview, its analysis and its pause (Argo keeps it and skips them).
//! - A pre- or post-promotion run is not terminated when the new ReplicaSet briefly
//!   loses a pod (Argo terminates it, which can end it as Successful).
//! - An old ReplicaSet keeps its size while it waits on its deadline (Argo scales one to
//!   `spec.replicas`); with `scaleDownDelaySeconds: 0` it is scaled down at once.
//! - ReplicaSets are visited newest first in the reverse of [`Observed`]'s oldest-first
//!   order rather than sorted by revision.
//! - `status.readyReplicas` counts every ReplicaSet (Argo: the active one), so a preview
//!   warming up counts as progress for the progress deadline.
//! - The abort message names the run: `PrePromotion analysis phase failed: <message>`.
//! - An abort ends an earlier `promote --full`, and an abort requested after one wins
//!   over it (Argo lets `promoteFull` clear every abort, so a progress-deadline abort of
//!   a full promotion flaps forever). A `promote --full` after an abort still clears it.
//! - On abort the active service returns to the stable ReplicaSet only if that
//!   ReplicaSet still exists.
//! - As in the canary machine, the initial deploy has no progress deadline, and a
//!   running promotion analysis stops the deadline clock like a pause does.

use std::borrow::Cow;
use std::sync::LazyLock;

use crate::canary::{
    Action, AnalysisRunKind, Decision, Event, EventType, Observed, ReplicaSetState, ServiceState,
    analysis_run_name,
};
use crate::phase::{self, PhaseInput, StrategyKind};
use crate::replicas::{self, BlueGreenReplicaInput};
use crate::spec::{BlueGreenStrategy, Rollout, RolloutAnalysis};
use crate::status::{
    AnalysisPhase, ConditionStatus, ConditionType, PauseCondition, PauseReason,
    RolloutAnalysisRunStatus, RolloutStatus,
};
use crate::time::Timestamp;

/// Stands in for the strategy of a rollout that has none (reported as `InvalidSpec`).
static NO_STRATEGY: LazyLock<BlueGreenStrategy> = LazyLock::new(BlueGreenStrategy::default);

/// Runs one reconcile pass of the blue-green strategy. See the module docs for the model
/// and the call order.
pub fn reconcile<'a>(
    rollout: &Rollout,
    status: &'a RolloutStatus,
    observed: &Observed<'_>,
    now: Timestamp,
) -> Decision<'a> {
    let strategy = rollout.spec.strategy.blue_green.as_ref();
    let mut pass = Pass {
        orig: status,
        rollout,
        bg: strategy.unwrap_or(&NO_STRATEGY),
        observed,
        now,
        st: Cow::Borrowed(status),
        actions: Vec::new(),
        events: Vec::new(),
        requeue_at: None,
        replicas: rollout.spec.replicas().max(0),
        retried: false,
    };
    match strategy {
        None => pass.invalid_spec("the blue-green machine needs spec.strategy.blueGreen"),
        Some(bg) if bg.active_service.is_empty() => {
            pass.invalid_spec("spec.strategy.blueGreen.activeService: Required value");
        }
        Some(_) => pass.run(),
    }
    pass.finish()
}

/// Which promotion analysis a status record or a run belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Promotion {
    Pre,
    Post,
}

impl Promotion {
    fn label(self) -> &'static str {
        match self {
            Promotion::Pre => "PrePromotion",
            Promotion::Post => "PostPromotion",
        }
    }

    fn kind(self) -> AnalysisRunKind {
        match self {
            Promotion::Pre => AnalysisRunKind::PrePromotion,
            Promotion::Post => AnalysisRunKind::PostPromotion,
        }
    }
}

struct Pass<'r, 'a, 'o> {
    orig: &'a RolloutStatus,
    rollout: &'r Rollout,
    bg: &'r BlueGreenStrategy,
    observed: &'r Observed<'o>,
    now: Timestamp,
    st: Cow<'a, RolloutStatus>,
    actions: Vec<Action>,
    events: Vec<Event>,
    requeue_at: Option<Timestamp>,
    /// `spec.replicas` (default 1, never negative).
    replicas: i32,
    /// This pass noticed that a user cleared the abort.
    retried: bool,
}

impl<'r, 'a, 'o> Pass<'r, 'a, 'o> {
    // ---- plumbing -----------------------------------------------------------------------

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
        self.update_phase();
    }

    fn run(&mut self) {
        if self.st.condition(ConditionType::InvalidSpec).is_some() {
            self.s()
                .conditions
                .retain(|c| c.type_ != ConditionType::InvalidSpec);
        }
        if self.sync_revision() {
            // A new pod template: create its ReplicaSet and point the preview at it; the
            // next pass goes on from the reset status (as Argo does).
            self.scale_new();
            self.sync_preview();
            self.sync_counts();
            self.sync_progress();
            self.update_phase();
            return;
        }
        self.sync_selectors_from_services();
        self.sync_promote_full();
        self.sync_analysis_observations();
        self.sync_abort_sources();
        self.start_abort_if_needed();
        self.sync_retry();
        let pause_complete = self.sync_pause();
        self.sync_checkpoint(pause_complete);
        self.scale_current();
        self.sync_preview();
        self.sync_active(pause_complete);
        self.sync_runs();
        self.try_promote();
        self.scale_down_others();
        let scaled = self.actions.iter().any(|a| {
            matches!(
                a,
                Action::CreateReplicaSet { .. } | Action::ScaleReplicaSet { .. }
            )
        });
        if !scaled {
            let stable = self.st.stable_rs.clone();
            self.actions.extend(crate::canary::history_to_delete(
                self.rollout.spec.revision_history_limit(),
                self.observed.replica_sets,
                self.cur(),
                &stable,
            ));
        }
        self.sync_counts();
        self.sync_progress();
        self.update_phase();
    }

    // ---- what the pass looks at ---------------------------------------------------------

    fn cur(&self) -> &'o str {
        self.observed.pod_template_hash
    }

    fn find_rs(&self, hash: &str) -> Option<&'o ReplicaSetState> {
        if hash.is_empty() {
            return None;
        }
        let all: &'o [ReplicaSetState] = self.observed.replica_sets;
        all.iter().find(|rs| rs.pod_template_hash == hash)
    }

    fn new_rs(&self) -> Option<&'o ReplicaSetState> {
        self.find_rs(self.cur())
    }

    /// The stable ReplicaSet when it is not the new one.
    fn stable_rs(&self) -> Option<&'o ReplicaSetState> {
        if self.at_stable() {
            return None;
        }
        self.find_rs(&self.st.stable_rs)
    }

    fn service(&self, name: &str) -> Option<&'o ServiceState> {
        if name.is_empty() {
            return None;
        }
        let all: &'o [ServiceState] = self.observed.services;
        all.iter().find(|s| s.name == name)
    }

    fn preview_service(&self) -> Option<&'r str> {
        self.bg.preview_service.as_deref().filter(|s| !s.is_empty())
    }

    fn is_initial(&self) -> bool {
        self.st.stable_rs.is_empty()
    }

    fn at_stable(&self) -> bool {
        !self.st.stable_rs.is_empty() && self.st.stable_rs == self.cur()
    }

    fn in_update(&self) -> bool {
        !self.is_initial() && !self.at_stable()
    }

    /// The hash the active service selects (as recorded from the service this pass).
    fn active(&self) -> &str {
        &self.st.blue_green.active_selector
    }

    /// `spec.paused` or an inconclusive analysis halts an update (Argo's `haltProgress`).
    fn halted(&self) -> bool {
        self.in_update()
            && (self.rollout.spec.paused
                || self
                    .st
                    .pause_condition(PauseReason::InconclusiveAnalysisRun)
                    .is_some())
    }

    fn needs_controller_pause(&self) -> bool {
        !self.bg.auto_promotion_enabled() || self.bg.auto_promotion_seconds.unwrap_or(0) > 0
    }

    /// Moving back to a ReplicaSet that still waits on its scale-down deadline.
    fn fast_rollback(&self) -> bool {
        !self.st.abort
            && !self.retried
            && self.in_update()
            && self
                .new_rs()
                .is_some_and(|rs| rs.scale_down_deadline.is_some())
    }

    /// Updates that skip the pause and the pre-promotion analysis.
    fn fast_tracked(&self) -> bool {
        self.st.promote_full
            || !self.in_update()
            || self.active().is_empty()
            || self.active() == self.cur()
            || self.fast_rollback()
    }

    fn preview_count(&self) -> Option<i32> {
        self.bg
            .preview_replica_count
            .map(|p| p.clamp(0, self.replicas))
    }

    /// Argo's desired size for the new ReplicaSet (`previewReplicaCount` rule).
    fn desired_new(&self) -> i32 {
        if !self.in_update() {
            return self.replicas;
        }
        let active = self.active();
        replicas::bluegreen_new_rs_replicas(&BlueGreenReplicaInput {
            spec_replicas: self.replicas,
            preview_replica_count: self.preview_count(),
            promote_full: self.st.promote_full,
            new_rs_hash: self.cur(),
            current_pod_hash: &self.st.current_pod_hash,
            active_selector: active,
            active_rs_exists: self.find_rs(active).is_some(),
            paused: self.rollout.spec.paused || !self.st.pause_conditions.is_empty(),
            scale_up_preview_check_point: self.st.blue_green.scale_up_preview_check_point,
        })
    }

    /// The new ReplicaSet is at its desired size and fully available.
    fn ready_for_pause(&self) -> bool {
        let desired = self.desired_new();
        self.new_rs()
            .is_some_and(|rs| rs.spec_replicas == desired && rs.available_replicas >= desired)
    }

    /// The new ReplicaSet runs `spec.replicas` pods, all available.
    fn saturated(&self) -> bool {
        let r = self.replicas;
        self.new_rs()
            .is_some_and(|rs| rs.spec_replicas == r && rs.available_replicas >= r)
    }

    fn record(&self, which: Promotion) -> Option<&RolloutAnalysisRunStatus> {
        match which {
            Promotion::Pre => self
                .st
                .blue_green
                .pre_promotion_analysis_run_status
                .as_ref(),
            Promotion::Post => self
                .st
                .blue_green
                .post_promotion_analysis_run_status
                .as_ref(),
        }
    }

    fn record_slot(
        s: &mut RolloutStatus,
        which: Promotion,
    ) -> &mut Option<RolloutAnalysisRunStatus> {
        match which {
            Promotion::Pre => &mut s.blue_green.pre_promotion_analysis_run_status,
            Promotion::Post => &mut s.blue_green.post_promotion_analysis_run_status,
        }
    }

    fn analysis(&self, which: Promotion) -> Option<&'r RolloutAnalysis> {
        match which {
            Promotion::Pre => self.bg.pre_promotion_analysis.as_ref(),
            Promotion::Post => self.bg.post_promotion_analysis.as_ref(),
        }
    }

    fn succeeded(&self, which: Promotion) -> bool {
        self.record(which)
            .is_some_and(|r| r.status == AnalysisPhase::Successful)
    }

    fn pre_complete(&self) -> bool {
        self.bg.pre_promotion_analysis.is_none()
            || self.fast_tracked()
            || self.succeeded(Promotion::Pre)
    }

    /// The revision of the new ReplicaSet; before it exists, the next revision number.
    fn revision_label(&self) -> String {
        match self.new_rs() {
            Some(rs) if rs.revision > 0 => rs.revision.to_string(),
            Some(_) => self.cur().to_string(),
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

    // ---- revisions, commands, analysis results ------------------------------------------

    /// A new pod template resets the update; returns whether it did.
    fn sync_revision(&mut self) -> bool {
        if self.st.current_pod_hash == self.cur() {
            return false;
        }
        self.terminate_runs();
        let hash = self.cur();
        let back_to_stable = self.is_initial() || self.st.stable_rs == hash;
        let now = self.now;
        let message = format!("ReplicaSet \"{}-{hash}\" is progressing.", self.name());
        let s = self.s();
        s.current_pod_hash = hash.to_string();
        clear_update_state(s);
        self.set_progressing(ConditionStatus::True, "ReplicaSetUpdated", &message, now);
        if !back_to_stable {
            self.event(
                EventType::Normal,
                "RolloutUpdated",
                format!("Rollout updated to revision {}", self.revision_label()),
            );
        }
        true
    }

    /// Records the selectors the services have (Argo reads them back every pass).
    fn sync_selectors_from_services(&mut self) {
        if let Some(svc) = self.service(&self.bg.active_service)
            && svc.pod_template_hash != self.st.blue_green.active_selector
        {
            self.s()
                .blue_green
                .active_selector
                .clone_from(&svc.pod_template_hash);
            self.touch_progress();
        }
        if let Some(name) = self.preview_service()
            && let Some(svc) = self.service(name)
            && svc.pod_template_hash != self.st.blue_green.preview_selector
        {
            self.s()
                .blue_green
                .preview_selector
                .clone_from(&svc.pod_template_hash);
        }
    }

    /// `promote --full` skips pauses and analyses and clears an earlier abort. An abort
    /// requested after it (not yet recorded in `abortedAt`) wins and cancels it.
    fn sync_promote_full(&mut self) {
        if !self.st.promote_full {
            return;
        }
        if self.st.abort && self.st.aborted_at.is_none() {
            self.s().promote_full = false;
            return;
        }
        if !self.st.pause_conditions.is_empty() || self.st.controller_pause || self.st.abort {
            self.terminate_runs();
            let s = self.s();
            s.pause_conditions.clear();
            s.controller_pause = false;
            s.abort = false;
            s.aborted_at = None;
        }
    }

    fn sync_analysis_observations(&mut self) {
        for which in [Promotion::Pre, Promotion::Post] {
            let Some(rec) = self.record(which) else {
                continue;
            };
            let Some(obs) = self
                .observed
                .analysis_runs
                .iter()
                .find(|r| r.name == rec.name)
            else {
                continue;
            };
            if (rec.status != obs.phase || rec.message != obs.message)
                && let Some(rec) = Self::record_slot(self.s(), which)
            {
                rec.status = obs.phase;
                rec.message.clone_from(&obs.message);
            }
        }
    }

    /// Failed / Error runs abort the update; Inconclusive ones pause it.
    fn sync_abort_sources(&mut self) {
        if !self.in_update() || self.st.abort {
            return;
        }
        let mut abort_msg: Option<String> = None;
        let mut inconclusive = false;
        for which in [Promotion::Pre, Promotion::Post] {
            let Some(rec) = self.record(which) else {
                continue;
            };
            match rec.status {
                AnalysisPhase::Failed | AnalysisPhase::Error if abort_msg.is_none() => {
                    let phase = if rec.status == AnalysisPhase::Failed {
                        "failed"
                    } else {
                        "error"
                    };
                    let label = which.label();
                    abort_msg = Some(if rec.message.is_empty() {
                        format!("{label} analysis phase {phase}")
                    } else {
                        format!("{label} analysis phase {phase}: {}", rec.message)
                    });
                }
                AnalysisPhase::Inconclusive => inconclusive = true,
                _ => {}
            }
        }
        if let Some(msg) = abort_msg {
            self.abort_now(&msg);
            return;
        }
        if !inconclusive
            || self
                .st
                .pause_condition(PauseReason::InconclusiveAnalysisRun)
                .is_some()
        {
            return;
        }
        if self.st.controller_pause && self.st.pause_conditions.is_empty() {
            // A user cleared the inconclusive pause: run the analysis again (Argo).
            let s = self.s();
            for which in [Promotion::Pre, Promotion::Post] {
                let slot = Self::record_slot(s, which);
                if slot
                    .as_ref()
                    .is_some_and(|r| r.status == AnalysisPhase::Inconclusive)
                {
                    *slot = None;
                }
            }
            s.controller_pause = false;
            return;
        }
        let now = self.now;
        let s = self.s();
        s.pause_conditions.push(PauseCondition {
            reason: PauseReason::InconclusiveAnalysisRun,
            start_time: now,
        });
        s.controller_pause = true;
        self.event(
            EventType::Warning,
            "RolloutPaused",
            "Rollout is paused (InconclusiveAnalysisRun)".to_string(),
        );
    }

    /// A user (or a script) set `status.abort`: record it once.
    fn start_abort_if_needed(&mut self) {
        if self.st.abort && self.st.aborted_at.is_none() {
            if !self.in_update() {
                // Nothing to abort: Argo ignores an abort without an update in flight.
                self.s().abort = false;
                return;
            }
            self.abort_now("");
        }
    }

    /// Aborts the update: the Progressing condition says why (`RolloutAborted`).
    fn abort_now(&mut self, reason: &str) {
        let mut message = format!(
            "Rollout aborted update to revision {}",
            self.revision_label()
        );
        if !reason.is_empty() {
            message.push_str(": ");
            message.push_str(reason);
        }
        self.mark_aborted();
        let now = self.now;
        self.set_progressing(ConditionStatus::False, "RolloutAborted", &message, now);
        self.event(EventType::Warning, "RolloutAborted", message);
    }

    fn mark_aborted(&mut self) {
        self.terminate_runs();
        let now = self.now;
        let s = self.s();
        s.abort = true;
        s.aborted_at = Some(now);
        // An abort ends an earlier `promote --full` (Argo keeps both and flaps between
        // them when the progress deadline aborts a full promotion).
        s.promote_full = false;
        s.pause_conditions.clear();
        s.controller_pause = false;
        s.blue_green.scale_up_preview_check_point = false;
    }

    /// `status.abort` went back to false after an abort (`kubectl argo rollouts retry`):
    /// the update starts over with new analysis runs.
    fn sync_retry(&mut self) {
        if self.st.abort || !self.in_update() {
            return;
        }
        let aborted = self
            .st
            .condition(ConditionType::Progressing)
            .is_some_and(|c| c.reason == "RolloutAborted");
        if !aborted && self.st.aborted_at.is_none() {
            return;
        }
        self.retried = true;
        self.terminate_runs();
        let now = self.now;
        let s = self.s();
        s.aborted_at = None;
        s.blue_green.pre_promotion_analysis_run_status = None;
        s.blue_green.post_promotion_analysis_run_status = None;
        s.blue_green.scale_up_preview_check_point = false;
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

    /// Terminates the recorded promotion runs that have not completed.
    fn terminate_runs(&mut self) {
        for which in [Promotion::Pre, Promotion::Post] {
            if let Some(rec) = self.record(which)
                && !rec.status.is_completed()
                && !self.observed_completed(&rec.name)
            {
                self.actions.push(Action::TerminateAnalysisRun {
                    name: rec.name.clone(),
                });
            }
        }
    }

    fn observed_completed(&self, name: &str) -> bool {
        self.observed
            .analysis_runs
            .iter()
            .any(|r| r.name == name && r.phase.is_completed())
    }

    // ---- the blue-green pause -----------------------------------------------------------

    /// Adds, times and removes the `BlueGreenPause` condition; returns whether the pause
    /// is complete (or not needed).
    fn sync_pause(&mut self) -> bool {
        if !self.in_update() || self.st.abort {
            return false;
        }
        let cond = self
            .st
            .pause_condition(PauseReason::BlueGreenPause)
            .cloned();
        if !self.needs_controller_pause()
            || self.fast_tracked()
            || self.st.blue_green.scale_up_preview_check_point
        {
            self.end_blue_green_pause(cond.is_some());
            return true;
        }
        if self.halted() {
            return false;
        }
        match cond {
            Some(c) => {
                let secs = self.bg.auto_promotion_seconds.unwrap_or(0);
                if self.bg.auto_promotion_enabled() && secs > 0 {
                    let end = c.start_time.add_secs(i64::from(secs));
                    if self.now >= end {
                        self.end_blue_green_pause(true);
                        return true;
                    }
                    self.wake_at(end);
                }
                false
            }
            // The condition is gone while the controller paused: a user promoted.
            None if self.st.controller_pause => {
                self.end_blue_green_pause(false);
                true
            }
            None => {
                if self.ready_for_pause() && self.pre_complete() {
                    let now = self.now;
                    let s = self.s();
                    s.pause_conditions.push(PauseCondition {
                        reason: PauseReason::BlueGreenPause,
                        start_time: now,
                    });
                    s.controller_pause = true;
                    self.event(
                        EventType::Normal,
                        "RolloutPaused",
                        "Rollout is paused (BlueGreenPause)".to_string(),
                    );
                    let secs = self.bg.auto_promotion_seconds.unwrap_or(0);
                    if self.bg.auto_promotion_enabled() && secs > 0 {
                        self.wake_at(now.add_secs(i64::from(secs)));
                    }
                }
                false
            }
        }
    }

    /// Removes the `BlueGreenPause` condition (if `present`) and, once no pause is left,
    /// `controllerPause`.
    fn end_blue_green_pause(&mut self, present: bool) {
        let clear_controller = self.st.controller_pause
            && self
                .st
                .pause_conditions
                .iter()
                .all(|c| c.reason == PauseReason::BlueGreenPause);
        if !present && !clear_controller {
            return;
        }
        let s = self.s();
        s.pause_conditions
            .retain(|c| c.reason != PauseReason::BlueGreenPause);
        if s.pause_conditions.is_empty() {
            s.controller_pause = false;
        }
        self.touch_progress();
    }

    /// `scaleUpPreviewCheckPoint` latches once the preview passed its analysis and pause
    /// at `previewReplicaCount` available pods.
    fn sync_checkpoint(&mut self, pause_complete: bool) {
        let Some(count) = self.preview_count() else {
            return;
        };
        if self.st.blue_green.scale_up_preview_check_point
            || !self.in_update()
            || self.st.abort
            || self.halted()
            || !pause_complete
            || !self.pre_complete()
        {
            return;
        }
        if self
            .new_rs()
            .is_some_and(|rs| rs.available_replicas >= count)
        {
            self.s().blue_green.scale_up_preview_check_point = true;
            self.touch_progress();
        }
    }

    // ---- replica sets -------------------------------------------------------------------

    /// Deadlines of the stable and new ReplicaSets, the active and stable ReplicaSets at
    /// full size, the new ReplicaSet at its desired size.
    fn scale_current(&mut self) {
        if let Some(stable) = self.stable_rs()
            && stable.scale_down_deadline.is_some()
        {
            self.set_deadline(stable, None);
        }
        if let Some(new_rs) = self.new_rs()
            && new_rs.scale_down_deadline.is_some()
            && !self.st.abort
            && (self.at_stable() || self.retried)
        {
            self.set_deadline(new_rs, None);
        }
        let r = self.replicas;
        let cur = self.cur();
        let stable = self.stable_rs();
        if let Some(rs) = stable
            && rs.spec_replicas != r
        {
            self.scale_rs(rs, r, false);
        }
        if let Some(rs) = self.find_rs(self.active())
            && rs.pod_template_hash != cur
            && !stable.is_some_and(|s| std::ptr::eq(s, rs))
            && rs.spec_replicas != r
        {
            self.scale_rs(rs, r, false);
        }
        self.scale_new();
    }

    fn scale_new(&mut self) {
        if self.halted() {
            return;
        }
        let Some(new_rs) = self.new_rs() else {
            if !self.st.abort {
                let hash = self.cur();
                self.actions.push(Action::CreateReplicaSet {
                    pod_template_hash: hash.to_string(),
                    replicas: 0,
                });
                self.event(
                    EventType::Normal,
                    "ScalingReplicaSet",
                    format!("Created ReplicaSet {}-{hash} with size 0", self.name()),
                );
            }
            return;
        };
        if self.st.abort && self.in_update() {
            self.scale_down_after_abort(new_rs);
            return;
        }
        let desired = self.desired_new();
        if new_rs.spec_replicas != desired {
            self.scale_rs(new_rs, desired, false);
        }
    }

    /// After an abort the new ReplicaSet keeps its pods until the stable one is fully
    /// available and then for `abortScaleDownDelaySeconds` (0: for good).
    fn scale_down_after_abort(&mut self, new_rs: &'o ReplicaSetState) {
        let delay = self.bg.abort_scale_down_delay_seconds();
        if delay <= 0 {
            return;
        }
        match new_rs.scale_down_deadline {
            None => {
                let stable_ready = self
                    .stable_rs()
                    .is_some_and(|s| s.available_replicas >= self.replicas);
                if stable_ready && new_rs.spec_replicas > 0 {
                    let deadline = self.now.add_secs(i64::from(delay));
                    self.set_deadline(new_rs, Some(deadline));
                    self.wake_at(deadline);
                }
            }
            Some(d) if d > self.now => self.wake_at(d),
            // The deadline stays on the scaled-down ReplicaSet (as in Argo), so the next
            // pass does not start a new one.
            Some(_) if new_rs.spec_replicas != 0 => self.scale_rs(new_rs, 0, true),
            Some(_) => {}
        }
    }

    /// Whether a ReplicaSet is still referenced by the status or a service.
    fn referenced(&self, rs: &ReplicaSetState) -> bool {
        let h = rs.pod_template_hash.as_str();
        h.is_empty()
            || h == self.st.stable_rs
            || h == self.cur()
            || h == self.st.blue_green.active_selector
            || h == self.st.blue_green.preview_selector
    }

    /// Older ReplicaSets wait `scaleDownDelaySeconds` on a deadline and then go to 0;
    /// beyond `scaleDownDelayRevisionLimit` they go at once.
    fn scale_down_others(&mut self) {
        if self
            .st
            .pause_condition(PauseReason::InconclusiveAnalysisRun)
            .is_some()
        {
            return;
        }
        // With post-promotion analysis and no explicit delay, nothing goes before the
        // analysis succeeded (Argo).
        if self.bg.post_promotion_analysis.is_some()
            && self.bg.scale_down_delay_seconds.is_none()
            && self.in_update()
            && self.active() == self.cur()
            && !self.succeeded(Promotion::Post)
        {
            return;
        }
        let limit = self
            .bg
            .scale_down_delay_revision_limit
            .unwrap_or(i32::MAX)
            .max(0);
        let delay = self.bg.scale_down_delay_seconds().max(0);
        let now = self.now;
        let mut annotated = 0i32;
        let all: &'o [ReplicaSetState] = self.observed.replica_sets;
        for rs in all.iter().rev() {
            if rs.spec_replicas == 0 || self.referenced(rs) {
                continue;
            }
            match rs.scale_down_deadline {
                None if annotated < limit && delay > 0 => {
                    annotated += 1;
                    let deadline = now.add_secs(i64::from(delay));
                    self.set_deadline(rs, Some(deadline));
                    self.wake_at(deadline);
                }
                None => self.scale_rs(rs, 0, false),
                Some(d) => {
                    annotated = annotated.saturating_add(1);
                    if annotated > limit || d <= now {
                        self.scale_rs(rs, 0, false);
                    } else {
                        self.wake_at(d);
                    }
                }
            }
        }
    }

    fn set_deadline(&mut self, rs: &ReplicaSetState, deadline: Option<Timestamp>) {
        self.actions.push(Action::SetScaleDownDeadline {
            pod_template_hash: rs.pod_template_hash.clone(),
            deadline,
        });
    }

    fn scale_rs(&mut self, rs: &ReplicaSetState, replicas: i32, keep_deadline: bool) {
        let verb = if replicas > rs.spec_replicas {
            "up"
        } else {
            "down"
        };
        self.actions.push(Action::ScaleReplicaSet {
            pod_template_hash: rs.pod_template_hash.clone(),
            replicas,
        });
        if replicas == 0 && rs.scale_down_deadline.is_some() && !keep_deadline {
            self.set_deadline(rs, None);
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

    // ---- services -----------------------------------------------------------------------

    /// Points `service` at `hash` unless it already selects it; returns whether it wrote.
    fn switch_service(&mut self, service: &str, hash: &str) -> bool {
        let current = self.service(service);
        if current.is_some_and(|s| s.pod_template_hash == hash) {
            return false;
        }
        self.actions.push(Action::SetServiceSelector {
            service: service.to_string(),
            pod_template_hash: hash.to_string(),
        });
        self.event(
            EventType::Normal,
            "SwitchService",
            format!(
                "Switched selector for service '{service}' from '{}' to '{hash}'",
                current.map_or("", |s| s.pod_template_hash.as_str())
            ),
        );
        true
    }

    /// The preview service follows the current pod template.
    fn sync_preview(&mut self) {
        let Some(name) = self.preview_service() else {
            return;
        };
        if self.halted() {
            return;
        }
        let hash = self.cur();
        self.switch_service(name, hash);
        if self.st.blue_green.preview_selector != hash {
            self.s().blue_green.preview_selector = hash.to_string();
        }
    }

    /// The active service: back to stable on abort; to the new ReplicaSet once it is
    /// saturated and promoted (or fast-tracked).
    fn sync_active(&mut self, pause_complete: bool) {
        let to_stable = if self.st.abort && self.in_update() {
            // Never point the service at a ReplicaSet that is gone.
            if self.find_rs(&self.st.stable_rs).is_none() {
                return;
            }
            true
        } else if self.halted() || !self.saturated() {
            return;
        } else if self.fast_tracked() || (pause_complete && self.pre_complete()) {
            false
        } else {
            return;
        };
        let target: &str = if to_stable {
            &self.st.stable_rs
        } else {
            self.cur()
        };
        if self.active() != target
            || self
                .service(&self.bg.active_service)
                .is_none_or(|s| s.pod_template_hash != target)
        {
            let target = target.to_string();
            self.point_active(target);
        }
    }

    fn point_active(&mut self, hash: String) {
        let service = self.bg.active_service.as_str();
        self.switch_service(service, &hash);
        if self.st.blue_green.active_selector != hash {
            self.s().blue_green.active_selector = hash;
            self.touch_progress();
        }
    }

    // ---- analysis runs ------------------------------------------------------------------

    /// Starts the pre-promotion run once the preview is ready, and the post-promotion run
    /// once the active service selects the saturated new ReplicaSet.
    fn sync_runs(&mut self) {
        if !self.in_update()
            || self.st.abort
            || self.st.promote_full
            || self.fast_rollback()
            || self
                .st
                .pause_condition(PauseReason::InconclusiveAnalysisRun)
                .is_some()
        {
            return;
        }
        let switched = self.active() == self.cur();
        if let Some(a) = self.analysis(Promotion::Pre)
            && self.record(Promotion::Pre).is_none()
            && !self.active().is_empty()
            && !switched
            && self.preview_ready()
        {
            self.start_run(Promotion::Pre, a);
        }
        if let Some(a) = self.analysis(Promotion::Post)
            && self.record(Promotion::Post).is_none()
            && switched
            && self.saturated()
        {
            self.start_run(Promotion::Post, a);
        }
    }

    /// The preview runs at `previewReplicaCount` (or full size), all available.
    fn preview_ready(&self) -> bool {
        match self.preview_count() {
            Some(count) => self
                .new_rs()
                .is_some_and(|rs| rs.spec_replicas == count && rs.available_replicas >= count),
            None => self.saturated(),
        }
    }

    fn start_run(&mut self, which: Promotion, analysis: &RolloutAnalysis) {
        let name = analysis_run_name(self.name(), self.cur(), which.kind(), self.now);
        self.actions.push(Action::StartAnalysisRun {
            name: name.clone(),
            kind: which.kind(),
            analysis: analysis.clone(),
            canary_hash: self.cur().to_string(),
            stable_hash: self.st.stable_rs.clone(),
        });
        *Self::record_slot(self.s(), which) = Some(RolloutAnalysisRunStatus {
            name,
            status: AnalysisPhase::Pending,
            message: String::new(),
        });
    }

    // ---- promotion ----------------------------------------------------------------------

    /// The new ReplicaSet becomes stable once the active service selects it and the
    /// post-promotion analysis (if any) succeeded.
    fn try_promote(&mut self) {
        if self.at_stable() || self.st.abort || self.active() != self.cur() {
            return;
        }
        let reason: Cow<'static, str> = if self.is_initial() {
            Cow::Borrowed("Initial deploy")
        } else if self.st.promote_full {
            Cow::Borrowed("Full promotion requested")
        } else if self.bg.post_promotion_analysis.is_some() {
            if self.fast_rollback() {
                Cow::Owned(format!(
                    "Rollback to '{}-{}' within scaleDownDelay",
                    self.name(),
                    self.cur()
                ))
            } else if self.succeeded(Promotion::Post) {
                Cow::Borrowed("Completed blue-green update")
            } else {
                return;
            }
        } else {
            Cow::Borrowed("Completed blue-green update")
        };
        self.promote(&reason);
    }

    fn promote(&mut self, reason: &str) {
        self.terminate_runs();
        let now = self.now;
        let hash = self.cur();
        let message = format!(
            "ReplicaSet \"{}-{hash}\" has successfully progressed.",
            self.name()
        );
        let event = format!(
            "Rollout completed update to revision {} ({hash}): {reason}",
            self.revision_label()
        );
        let s = self.s();
        s.stable_rs = hash.to_string();
        s.pause_conditions.clear();
        s.controller_pause = false;
        s.abort = false;
        s.aborted_at = None;
        s.promote_full = false;
        s.blue_green.scale_up_preview_check_point = false;
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
        self.event(EventType::Normal, "RolloutCompleted", event);
    }

    // ---- counts, conditions, progress deadline, phase -----------------------------------

    fn sync_counts(&mut self) {
        let mut replicas = 0;
        let mut ready = 0;
        let mut available = 0;
        for rs in self.observed.replica_sets {
            replicas += rs.replicas;
            ready += rs.ready_replicas;
            available += rs.available_replicas;
        }
        let mut hpa = replicas;
        if let Some(active) = self.find_rs(self.active()) {
            available = active.available_replicas;
            hpa = active.replicas;
        }
        let updated = self.new_rs().map_or(0, |rs| rs.replicas);
        let st = &*self.st;
        if st.replicas == replicas
            && st.ready_replicas == ready
            && st.available_replicas == available
            && st.updated_replicas == updated
            && st.hpa_replicas == hpa
        {
            return;
        }
        let s = self.s();
        s.replicas = replicas;
        s.hpa_replicas = hpa;
        s.ready_replicas = ready;
        s.available_replicas = available;
        s.updated_replicas = updated;
        // Progress: refresh the deadline, and leave a timed-out state (as Argo does).
        let timed_out = self
            .st
            .condition(ConditionType::Progressing)
            .is_some_and(|c| c.reason == phase::REASON_PROGRESS_DEADLINE_EXCEEDED);
        if timed_out && self.in_update() && !self.st.abort {
            let message = format!(
                "ReplicaSet \"{}-{}\" is progressing.",
                self.name(),
                self.cur()
            );
            let now = self.now;
            self.set_progressing(ConditionStatus::True, "ReplicaSetUpdated", &message, now);
        } else {
            self.touch_progress();
        }
    }

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

    /// Paused, or waiting for a promotion analysis: the progress deadline does not run.
    fn waiting(&self) -> bool {
        self.rollout.spec.paused
            || !self.st.pause_conditions.is_empty()
            || [Promotion::Pre, Promotion::Post]
                .into_iter()
                .any(|w| self.record(w).is_some_and(|r| !r.status.is_completed()))
    }

    fn sync_progress(&mut self) {
        let now = self.now;
        let paused = self.rollout.spec.paused || !self.st.pause_conditions.is_empty();
        if self.in_update() && !self.st.abort {
            let reason_paused = self
                .st
                .condition(ConditionType::Progressing)
                .is_some_and(|c| c.reason == "RolloutPaused");
            if paused && !reason_paused {
                self.set_progressing(
                    ConditionStatus::Unknown,
                    "RolloutPaused",
                    "Rollout is paused",
                    now,
                );
            } else if !paused && reason_paused {
                self.set_progressing(
                    ConditionStatus::True,
                    "RolloutResumed",
                    "Rollout is resumed",
                    now,
                );
            }
        }
        // Available: the active ReplicaSet is saturated.
        let r = self.replicas;
        let available = self
            .find_rs(self.active())
            .is_some_and(|rs| rs.spec_replicas == r && rs.available_replicas >= r);
        let (status, message) = if available {
            (ConditionStatus::True, "Rollout has minimum availability")
        } else {
            (
                ConditionStatus::False,
                "Rollout does not have minimum availability",
            )
        };
        self.set_condition(ConditionType::Available, status, "AvailableReason", message);
        if self.at_stable() {
            let healthy = self.active() == self.cur()
                && self.st.available_replicas >= r
                && self.st.updated_replicas >= r;
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
        if self.is_initial() || self.st.abort || self.waiting() {
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
            self.cur()
        );
        self.set_progressing(
            ConditionStatus::False,
            phase::REASON_PROGRESS_DEADLINE_EXCEEDED,
            &message,
            now,
        );
        self.event(EventType::Warning, "RolloutTimedOut", message.clone());
        if self.rollout.spec.progress_deadline_abort {
            // The condition keeps saying ProgressDeadlineExceeded: that is why it aborted.
            self.mark_aborted();
            self.event(EventType::Warning, "RolloutAborted", message);
            // The abort acts in this pass: the active service goes back to stable.
            if let Some(new_rs) = self.new_rs() {
                self.scale_down_after_abort(new_rs);
            }
            self.sync_active(false);
        }
    }

    fn update_phase(&mut self) {
        let spec = &self.rollout.spec;
        let generation = self.rollout.metadata.generation.unwrap_or(0);
        let input = PhaseInput {
            strategy: StrategyKind::BlueGreen,
            spec_replicas: spec.replicas(),
            traffic_routing: false,
            paused: spec.paused,
            restart_at: spec.restart_at,
            post_promotion_analysis: self.bg.post_promotion_analysis.is_some(),
            generation,
            template_resolved_from_ref: false,
            workload_generation: None,
            status: &self.st,
        };
        // Compared as parts: a pass that changes nothing builds no message.
        let (phase, message) = phase::calculate_phase_message(&input);
        if self.st.phase != Some(phase) || !message.is(&self.st.message) {
            let message = message.to_string();
            let s = self.s();
            s.phase = Some(phase);
            s.message = message;
        }
        if generation > 0 && self.st.observed_generation.parse::<i64>().ok() != Some(generation) {
            self.s().observed_generation = generation.to_string();
        }
    }
}

/// Forgets everything that belongs to one attempt at an update (a new pod template).
fn clear_update_state(s: &mut RolloutStatus) {
    s.pause_conditions.clear();
    s.controller_pause = false;
    s.abort = false;
    s.aborted_at = None;
    s.promote_full = false;
    s.blue_green.pre_promotion_analysis_run_status = None;
    s.blue_green.post_promotion_analysis_run_status = None;
    s.blue_green.scale_up_preview_check_point = false;
}

#[cfg(test)]
#[path = "bluegreen_tests.rs"]
mod tests;
