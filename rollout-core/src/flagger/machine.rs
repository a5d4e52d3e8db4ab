//! One tick of Flagger's per-canary loop as a pure function.
//!
//! # Model
//!
//! Flagger runs one loop per `Canary`, once every `analysis.interval` (`advanceCanary`).
//! [`tick`] is one run of that loop. It takes four inputs and returns a [`Decision`]:
//!
//! - the [`Canary`] (its `spec` and `metadata`);
//! - the persisted [`CanaryStatus`] (everything that must survive a crash lives there:
//!   phase, failed checks, iterations, the hashes of the applied and promoted revisions);
//! - [`Observed`]: what Flagger reads on every tick — the hash of the target's pod
//!   template and the checksums of the ConfigMaps/Secrets it uses, the readiness of the
//!   primary and canary workloads, the routes as the router reports them (**routes, not
//!   status, are the source of truth for weights**), and the results of the checks the
//!   machine asked for on this tick (webhooks and metrics);
//! - `now`, the time of the tick.
//!
//! The [`Decision`] holds the new status (borrowed when nothing changed), the [`Action`]s
//! to carry out in order (create the primary, scale the target, write routes, copy the
//! target spec to the primary, call webhooks, send alerts), the [`Event`]s to record, and
//! `requeue_at`, the next tick (`now + interval`). Nothing inside does I/O or reads a
//! clock.
//!
//! # Call order, and the check protocol
//!
//! Webhooks and metric checks are actions *and* inputs: the machine never calls HTTP, it
//! asks for the checks it needs and reads their results on a later call **at the same
//! `now`**. A tick is therefore a small loop:
//!
//! 1. Observe the cluster and the router; build [`Observed`] with empty
//!    [`webhooks`](Observed::webhooks) and [`metrics`](Observed::metrics) `None`.
//! 2. Call [`tick`].
//! 3. If [`Decision::awaits_results`] is true, the decision holds **only** the checks the
//!    tick is waiting for — [`Action::CallWebhook`] with `awaits_result: true` and/or
//!    [`Action::RunMetricChecks`] — and its status is the old one, unchanged, with no
//!    events. Run those checks, add their outcomes to the results ([`WebhookResult`],
//!    [`MetricResult`]; keep the earlier ones), and go back to 2 with the same `now` and
//!    the same observations. The machine re-evaluates the tick from the start and gets
//!    further each time; a tick needs at most one round per gate it meets (confirm-rollout;
//!    or rollback, pre-rollout / rollout hooks, metrics, confirm-traffic-increase,
//!    confirm-promotion), so a handful of rounds at most.
//! 4. Otherwise the decision is final: execute every action in order (the idempotent
//!    ones are safe to repeat after a crash; `CallWebhook` with `awaits_result: false` —
//!    post-rollout and event hooks — is fire-and-forget, Flagger only logs the outcome),
//!    persist `decision.status` when [`Decision::status_changed`], record the events.
//! 5. Call again at `requeue_at` with fresh observations and no results.
//!
//! Hooks of one stage are requested together, in declaration order. Flagger calls them one
//! by one and stops at the first one that decides the stage (the first failure; for
//! `rollback` hooks the first success); the machine reads the results the same way, so a
//! caller may call them in order and stop at the deciding one, or call them all. Results
//! are matched by hook name and type and belong to the tick: start every tick with none.
//! A metric the machine asked for but that has no [`MetricResult`] counts as failed.
//!
//! # Semantics
//!
//! Those of Flagger's `advanceCanary` (reference B.1–B.10), in its order:
//! `suspend` stops everything; a canary without a phase is initialised (primary created,
//! and once it is ready, target scaler paused, apex Service pointed at the primary, target
//! scaled to 0, routes created: phase Initialized); then the loop only acts when a run is
//! in progress or the target (pod-template hash, or tracked configs) changed since
//! `lastAppliedSpec` (a change back to `lastPromotedSpec` is not a new revision, and a
//! failed revision is never retried); the primary must be ready (a stuck primary rolls
//! back, or in Promoting/Finalising sends all traffic to the canary and fails); a new
//! revision passes the confirm-rollout gate (else Waiting), scales the target up and
//! resets the status to Progressing; a new revision during the analysis restarts it
//! (routes 100/0, counters 0); the canary must be ready (stuck: rollback with "progress
//! deadline exceeded"); `skipAnalysis` promotes at once; a successful rollback hook rolls
//! back; Promoting shifts traffic back to the primary (all at once, or by
//! `stepWeightPromotion`) and then Finalising scales the target to 0 and succeeds;
//! `failedChecks >= threshold` rolls back (so the rollback comes one tick after the
//! threshold-th failure); then the checks (pre-rollout hooks on the first tick of a run,
//! else rollout hooks and metrics — a failure is one more failed check and ends the tick),
//! and one step of the strategy: A/B testing and blue/green count iterations (blue/green
//! adds a tick that routes all traffic to the canary before promoting), the canary
//! strategy moves the weight by [`next_step_weight`] — overshooting `maxWeight` as Flagger
//! does — after a mirror-only step when `mirror` is set, behind the
//! confirm-traffic-increase gate, and starts the promotion behind the confirm-promotion
//! gate (else WaitingPromotion) once the weight reached `maxWeight`.
//!
//! Setting a phase has Flagger's side effects on the status (reference B.2): any phase but
//! Progressing, Waiting and Promoting zeroes `canaryWeight` and `iterations`;
//! WaitingPromotion sets `iterations` to `analysis.iterations - 1`; Initialized and
//! Succeeded set `lastPromotedSpec`; every write stamps `lastTransitionTime`; the
//! `Promoted` condition follows the phase.
//!
//! # Where this differs from Flagger
//!
//! - Webhook and metric calls are requests and results (above), not calls inside the loop.
//! - The idempotent object syncs Flagger repeats on every tick (Services, primary workload,
//!   primary autoscaler, routing objects) are asked for only while initialising; a
//!   controller re-syncs those objects when the `Canary` spec changes.
//! - Weights are computed from the canary weight alone, with `primary = 100 - canary` and
//!   the canary weight clamped to `0..=100`, so every [`Action::SetRoutes`] sums to 100.
//!   Flagger adjusts the primary weight the router reports, which only differs when the
//!   router reports a pair that does not sum to 100.
//! - In Promoting with `stepWeightPromotion`, a canary weight already at 0 finalises the
//!   promotion (Flagger waits forever); a negative `stepWeightPromotion` promotes in one
//!   step. A/B testing promotes when `status.iterations >= iterations` (Flagger: `==`, which
//!   never promotes once the spec lowered `iterations` below the count).
//! - In Failed, `lastAppliedSpec` and the tracked configs are re-synced only when they
//!   differ and the target is not a new revision. Flagger rewrites the status (with a new
//!   `lastTransitionTime`) on every tick, even when the target is a new revision: if that
//!   tick then waits (primary not ready), the next tick no longer sees the revision as
//!   new and it is never analysed. Here an idle failed canary is a no-op tick and a new
//!   revision stays new until its run starts.
//! - Deletion with `revertOnDeletion` (the Canary carries `metadata.deletionTimestamp`):
//!   phase Terminating, the target's autoscaler resumed and the target scaled up, then one
//!   [`Action::RevertOnDeletion`] (apex Service back to the target, routing restored,
//!   finalizer removed) once the target is ready. Flagger retries that wait with a short
//!   backoff inside one call; here each tick re-checks.
//! - Not modelled: the metric-provider probe of new canaries (log only), session-affinity
//!   cookies in the status (router concern), and the controller's default provider: a
//!   `Canary` without `spec.provider` is treated as a mesh provider, not `kubernetes`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::canary::{Event, EventType};
use crate::duration::Duration;
use crate::flagger::spec::{
    AlertSeverity, Canary, CanaryAnalysis, CanaryMetric, CanarySpec, CanaryWebhook, HookType,
    Strategy,
};
use crate::flagger::status::{CanaryCondition, CanaryPhase, CanaryStatus};
use crate::hash::fnv_hash;
use crate::time::Timestamp;

/// The traffic Flagger distributes between primary and canary (percent).
pub const TOTAL_WEIGHT: i32 = 100;

/// The tick period of a canary without `analysis` (seconds).
pub const DEFAULT_INTERVAL_SECONDS: i64 = 60;

/// The provider without a mesh: blue/green only, the router does nothing.
pub const KUBERNETES_PROVIDER: &str = "kubernetes";

/// Iterations the `kubernetes` provider uses when `analysis.iterations` is below 1.
pub const KUBERNETES_DEFAULT_ITERATIONS: i32 = 10;

/// The reason of every event Flagger records.
pub const EVENT_REASON: &str = "Synced";

/// The one condition type Flagger writes.
pub const PROMOTED_CONDITION: &str = "Promoted";

/// Whether a workload is ready, as Flagger decides it (reference B.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Readiness {
    /// Ready: the rollout finished and enough updated replicas are available. For the
    /// primary in Promoting this means "the primary rollout finished".
    #[default]
    Ready,
    /// Not ready yet; the tick waits and tries again next interval (a retriable error).
    Waiting(String),
    /// Will not become ready: progress deadline exceeded, primary scaled to zero (a
    /// non-retriable error).
    Failed(String),
}

/// The routes as the router reports them (`GetRoutes`), or as an action writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Routes {
    /// Weight of the `<apex>-primary` destination (percent).
    pub primary: i32,
    /// Weight of the `<apex>-canary` destination (percent).
    pub canary: i32,
    /// Whether traffic is mirrored to the canary.
    pub mirrored: bool,
}

impl Routes {
    /// Everything to the primary, not mirrored (what a new routing object holds).
    pub const PRIMARY: Routes = Routes::new(TOTAL_WEIGHT, 0, false);

    /// Routes with these weights.
    pub const fn new(primary: i32, canary: i32, mirrored: bool) -> Routes {
        Routes {
            primary,
            canary,
            mirrored,
        }
    }
}

impl Default for Routes {
    fn default() -> Routes {
        Routes::PRIMARY
    }
}

/// The outcome of one metric check, as the caller's analysis evaluated it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricOutcome {
    /// The value is within the metric's threshold.
    Pass,
    /// The value is out of range, or there was no value ("no values found"); the text
    /// says which.
    Fail(String),
    /// The query could not be run (provider, template or rendering error).
    Error(String),
}

/// The result of one metric check for this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricResult {
    /// `analysis.metrics[].name`.
    pub name: String,
    /// What the check found.
    pub outcome: MetricOutcome,
}

impl MetricResult {
    /// A passing check.
    pub fn pass(name: impl Into<String>) -> MetricResult {
        MetricResult {
            name: name.into(),
            outcome: MetricOutcome::Pass,
        }
    }

    /// A failed check.
    pub fn fail(name: impl Into<String>, message: impl Into<String>) -> MetricResult {
        MetricResult {
            name: name.into(),
            outcome: MetricOutcome::Fail(message.into()),
        }
    }

    /// A check that could not be run.
    pub fn error(name: impl Into<String>, message: impl Into<String>) -> MetricResult {
        MetricResult {
            name: name.into(),
            outcome: MetricOutcome::Error(message.into()),
        }
    }
}

/// The result of one webhook call the machine asked for on this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResult {
    /// `analysis.webhooks[].name`.
    pub name: String,
    /// `analysis.webhooks[].type` (results are matched on name and type).
    pub hook_type: HookType,
    /// The call succeeded: final HTTP status at most 202, after the hook's retries.
    pub ok: bool,
    /// Why it failed (used in events), or empty.
    pub message: String,
}

impl WebhookResult {
    /// A successful call.
    pub fn ok(name: impl Into<String>, hook_type: HookType) -> WebhookResult {
        WebhookResult {
            name: name.into(),
            hook_type,
            ok: true,
            message: String::new(),
        }
    }

    /// A failed call.
    pub fn failed(
        name: impl Into<String>,
        hook_type: HookType,
        message: impl Into<String>,
    ) -> WebhookResult {
        WebhookResult {
            name: name.into(),
            hook_type,
            ok: false,
            message: message.into(),
        }
    }
}

/// An empty config map, the default of [`Observed::tracked_configs`].
static NO_CONFIGS: BTreeMap<String, String> = BTreeMap::new();

/// What the caller observed just before the tick, and the check results of this tick.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// Hash of the target's pod template (of the `ServiceSpec` for `kind: Service`), e.g.
    /// [`crate::hash::fnv_hash`] of it. Compared with `lastAppliedSpec` and
    /// `lastPromotedSpec`.
    pub target_hash: &'a str,
    /// Checksums of the ConfigMaps and Secrets the target uses, by name (empty when none,
    /// or when config tracking is off). Compared with `status.trackedConfigs`.
    pub tracked_configs: &'a BTreeMap<String, String>,
    /// Readiness of the `-primary` workload (with `primaryReadyThreshold`).
    pub primary: Readiness,
    /// Readiness of the target (canary) workload (with `canaryReadyThreshold`).
    pub canary: Readiness,
    /// The routes as the router reports them now.
    pub routes: Routes,
    /// Metric results of this tick; `None` until the machine asked for them with
    /// [`Action::RunMetricChecks`].
    pub metrics: Option<&'a [MetricResult]>,
    /// Webhook results of this tick, for the calls the machine asked for.
    pub webhooks: &'a [WebhookResult],
}

impl Default for Observed<'_> {
    fn default() -> Self {
        Observed {
            target_hash: "",
            tracked_configs: &NO_CONFIGS,
            primary: Readiness::Ready,
            canary: Readiness::Ready,
            routes: Routes::PRIMARY,
            metrics: None,
            webhooks: &[],
        }
    }
}

/// How far [`Action::ScaleTarget`] scales the target workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScaleTo {
    /// To zero replicas (a DaemonSet gets the `flagger.app/scale-to-zero: "true"` node
    /// selector instead).
    Zero,
    /// Up from zero, as Flagger's `ScaleFromZero`: the target's own `spec.replicas` if
    /// set and positive, else the primary's, else the autoscaler's minimum if above 1,
    /// else 1.
    Up,
}

/// Something the caller must do. Every action but the webhook calls is idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Create the `<apex>-primary` and `<apex>-canary` Services (Kubernetes router
    /// `Initialize`).
    InitializeServices,
    /// Create the `<target>-primary` workload from the target, with its ConfigMap/Secret
    /// copies, if it does not exist (`Initialize`).
    InitializePrimary,
    /// Reconcile the primary's copy of the autoscaler (`autoscalerRef`).
    ReconcilePrimaryScaler,
    /// Pause the target's autoscaler (KEDA: `autoscaling.keda.sh/paused-replicas: "0"`;
    /// HPA: nothing).
    PauseTargetScaler,
    /// Resume the target's autoscaler.
    ResumeTargetScaler,
    /// Add the finalizer `finalizer.flagger.app` to the Canary (`revertOnDeletion`).
    AddFinalizer,
    /// The Canary is being deleted with `revertOnDeletion` and the target serves again:
    /// point the apex Service back at the target's pods, restore the provider's routing
    /// objects to what they were before Flagger (mesh router `Finalize`), and remove the
    /// finalizer so the deletion completes.
    RevertOnDeletion,
    /// Point the apex Service at the primary pods (Kubernetes router `Reconcile`).
    ReconcileApexService,
    /// Create or update the routing objects of the provider (mesh router `Reconcile`);
    /// new objects send all traffic to the primary, existing weights are kept.
    ReconcileRouting,
    /// Scale the target workload.
    ScaleTarget {
        /// To zero or up from zero.
        replicas: ScaleTo,
    },
    /// Write the routes (`SetRoutes`); weights are percentages and sum to 100.
    SetRoutes {
        /// Weight of the primary.
        primary: i32,
        /// Weight of the canary.
        canary: i32,
        /// Mirror traffic to the canary.
        mirrored: bool,
    },
    /// Copy the target's spec (and its ConfigMaps/Secrets) to the primary, which starts
    /// the primary's rollout (`Promote`).
    Promote,
    /// POST `{name, namespace, phase, checksum, metadata}` (the canary's name and
    /// namespace) to the hook's URL, with its timeout and retries; success is a final
    /// status of at most 202.
    CallWebhook {
        /// The hook's name.
        name: String,
        /// The hook's type.
        hook_type: HookType,
        /// The phase sent in the payload.
        phase: CanaryPhase,
        /// Where to POST.
        url: String,
        /// Request timeout (10 s unless the hook sets one).
        timeout: Duration,
        /// Retries of a failed call.
        retries: i32,
        /// Skip TLS verification.
        disable_tls: bool,
        /// The payload's metadata (for `event` hooks, with `eventMessage`, `eventType`
        /// and `timestamp` added).
        metadata: BTreeMap<String, String>,
        /// The payload's checksum of the revision under test ([`run_checksum`]).
        checksum: String,
        /// The tick waits for the result: report it in [`Observed::webhooks`] and tick
        /// again at the same `now`. `false`: fire and forget.
        awaits_result: bool,
    },
    /// Evaluate these metrics (names of `analysis.metrics`, in Flagger's order: builtin
    /// metrics first) and tick again at the same `now` with [`Observed::metrics`] set.
    RunMetricChecks {
        /// Metric names.
        metrics: Vec<String>,
    },
    /// Notify the alert providers (`analysis.alerts`, filtered by their severity; without
    /// alerts, the controller's global notifier).
    SendAlert {
        /// Severity of the message.
        severity: AlertSeverity,
        /// The text.
        message: String,
    },
}

impl Action {
    /// Whether the tick that emitted this action waits for its result.
    pub fn awaits_result(&self) -> bool {
        match self {
            Action::CallWebhook { awaits_result, .. } => *awaits_result,
            Action::RunMetricChecks { .. } => true,
            _ => false,
        }
    }
}

/// The outcome of one tick (or of one round of a tick, see [`Decision::awaits_results`]).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Decision<'a> {
    /// The new status (borrowed when unchanged).
    pub status: Cow<'a, CanaryStatus>,
    /// Actions to execute, in order.
    pub actions: Vec<Action>,
    /// Events to record (reason [`EVENT_REASON`]).
    pub events: Vec<Event>,
    /// The next tick: `now + interval`. `None` while the tick awaits results.
    pub requeue_at: Option<Timestamp>,
}

impl Decision<'_> {
    /// Whether the status differs from the one passed in.
    pub fn status_changed(&self) -> bool {
        matches!(self.status, Cow::Owned(_))
    }

    /// Whether the tick asks for nothing: no action, no event, no status change.
    pub fn is_noop(&self) -> bool {
        self.actions.is_empty() && self.events.is_empty() && !self.status_changed()
    }

    /// Whether this decision only requests checks: the caller runs them and ticks again
    /// at the same `now` with their results (see the module docs).
    pub fn awaits_results(&self) -> bool {
        self.actions.iter().any(Action::awaits_result)
    }

    /// The routes the last [`Action::SetRoutes`] writes, if any.
    pub fn routes(&self) -> Option<Routes> {
        self.actions.iter().rev().find_map(|a| match a {
            Action::SetRoutes {
                primary,
                canary,
                mirrored,
            } => Some(Routes::new(*primary, *canary, *mirrored)),
            _ => None,
        })
    }

    /// The new status, owned.
    pub fn into_status(self) -> CanaryStatus {
        self.status.into_owned()
    }
}

/// The weight the canary strategy adds to `canary_weight` on its next step (Flagger's
/// `nextStepWeight`, reference B.3): `stepWeight` when it is positive or there are no
/// `stepWeights`; otherwise the distance to the next entry of `stepWeights` (from 0: the
/// first entry; from an entry: the next one), never more than what is left to 100, and 1
/// when nothing is left (so a canary at 100 still moves on to promotion).
pub fn next_step_weight(analysis: &CanaryAnalysis, canary_weight: i32) -> i32 {
    let step_weight = analysis.step_weight();
    let steps = &analysis.step_weights;
    if step_weight > 0 || steps.is_empty() {
        return step_weight;
    }
    let room = TOTAL_WEIGHT.saturating_sub(canary_weight);
    if room == 0 {
        return 1;
    }
    if canary_weight == 0 {
        return steps.first().map_or(room, |&first| room.min(first));
    }
    steps
        .windows(2)
        .find(|w| w[0] == canary_weight)
        .map_or(room, |w| room.min(w[1].saturating_sub(canary_weight)))
}

/// The checksum sent in webhook payloads: a hash of the revision under test (its
/// pod-template hash and tracked config checksums).
pub fn run_checksum(last_applied_spec: &str, tracked_configs: &BTreeMap<String, String>) -> String {
    #[derive(Serialize)]
    struct Revision<'a> {
        last_applied_spec: &'a str,
        tracked_configs: &'a BTreeMap<String, String>,
    }
    fnv_hash(&Revision {
        last_applied_spec,
        tracked_configs,
    })
    .to_string()
}

/// What Flagger reads from a Deployment to decide its readiness (reference B.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentState {
    /// The Deployment's name (used in messages).
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`.
    pub observed_generation: i64,
    /// `spec.replicas`.
    pub spec_replicas: Option<i32>,
    /// `status.replicas`.
    pub replicas: i32,
    /// `status.updatedReplicas`.
    pub updated_replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
    /// Reason of the `Progressing` condition, when the Deployment has one.
    pub progressing_reason: Option<String>,
    /// `lastUpdateTime` of the `Available` condition when it is `False` with reason
    /// `MinimumReplicasUnavailable`.
    pub unavailable_since: Option<Timestamp>,
}

impl DeploymentState {
    /// Readiness of the Deployment as the target (canary) or the primary during a run:
    /// waiting while the controller has not observed the latest generation, while
    /// replicas are not all updated, while old replicas terminate, or while fewer than
    /// `ready_threshold` percent of the updated replicas are available; failed when the
    /// `Progressing` condition says `ProgressDeadlineExceeded`, or when those waits last
    /// longer than `progress_deadline_seconds` after the Deployment reported
    /// `MinimumReplicasUnavailable`.
    pub fn readiness(
        &self,
        ready_threshold: i32,
        progress_deadline_seconds: i32,
        now: Timestamp,
    ) -> Readiness {
        if self.generation > self.observed_generation {
            return Readiness::Waiting(
                "waiting for rollout to finish: observed deployment generation less than desired generation"
                    .into(),
            );
        }
        let progressing = self.progressing_reason.as_deref();
        let stuck = progressing.is_some()
            && self
                .unavailable_since
                .is_some_and(|since| since.add_secs(i64::from(progress_deadline_seconds)) < now);
        let wait = |message: String| {
            if stuck {
                Readiness::Failed(message)
            } else {
                Readiness::Waiting(message)
            }
        };
        let threshold_replicas =
            i64::from(self.updated_replicas) * i64::from(ready_threshold) / 100;
        if progressing == Some("ProgressDeadlineExceeded") {
            Readiness::Failed(format!(
                "deployment {:?} exceeded its progress deadline",
                self.name
            ))
        } else if let Some(spec) = self.spec_replicas.filter(|&r| self.updated_replicas < r) {
            wait(format!(
                "waiting for rollout to finish: {} out of {} new replicas have been updated",
                self.updated_replicas, spec
            ))
        } else if self.replicas > self.updated_replicas {
            wait(format!(
                "waiting for rollout to finish: {} old replicas are pending termination",
                i64::from(self.replicas) - i64::from(self.updated_replicas)
            ))
        } else if i64::from(self.available_replicas) < threshold_replicas {
            wait(format!(
                "waiting for rollout to finish: {} of {} (readyThreshold {}%) updated replicas are available",
                self.available_replicas, threshold_replicas, ready_threshold
            ))
        } else {
            Readiness::Ready
        }
    }

    /// Readiness of the primary: [`readiness`](Self::readiness), and failed when the
    /// primary is scaled to zero.
    pub fn primary_readiness(
        &self,
        ready_threshold: i32,
        progress_deadline_seconds: i32,
        now: Timestamp,
    ) -> Readiness {
        match self.readiness(ready_threshold, progress_deadline_seconds, now) {
            Readiness::Ready if self.spec_replicas == Some(0) => Readiness::Failed(format!(
                "halt advancement: primary deployment {:?} is scaled to zero",
                self.name
            )),
            other => other,
        }
    }
}

/// Runs one tick of Flagger's loop for `canary`. See the module docs for the model and
/// the check protocol.
pub fn tick<'a>(
    canary: &Canary,
    status: &'a CanaryStatus,
    observed: &Observed<'_>,
    now: Timestamp,
) -> Decision<'a> {
    let mut t = Tick {
        canary,
        spec: &canary.spec,
        analysis: canary.spec.analysis.as_ref(),
        orig: status,
        obs: observed,
        now,
        st: Cow::Borrowed(status),
        actions: Vec::new(),
        events: Vec::new(),
        requests: Vec::new(),
    };
    let pending = t.run().is_err();
    t.finish(pending)
}

/// The tick stopped to wait for check results.
struct Pending;

type Step<T = ()> = Result<T, Pending>;

/// A hook of a gate that failed.
struct HookFailure<'r> {
    hook: &'r CanaryWebhook,
    message: String,
}

struct Tick<'r, 'a, 'o> {
    canary: &'r Canary,
    spec: &'r CanarySpec,
    analysis: Option<&'r CanaryAnalysis>,
    orig: &'a CanaryStatus,
    obs: &'r Observed<'o>,
    now: Timestamp,
    st: Cow<'a, CanaryStatus>,
    actions: Vec<Action>,
    events: Vec<Event>,
    requests: Vec<Action>,
}

impl<'r, 'a, 'o> Tick<'r, 'a, 'o> {
    // ---- names, spec views --------------------------------------------------------------

    fn name(&self) -> &'r str {
        self.canary.metadata.name.as_deref().unwrap_or("")
    }

    fn namespace(&self) -> &'r str {
        self.canary
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    }

    fn target(&self) -> &'r str {
        &self.spec.target_ref.name
    }

    fn kind(&self) -> &'r str {
        &self.spec.target_ref.kind
    }

    fn provider(&self) -> &'r str {
        self.spec.provider.as_deref().unwrap_or("")
    }

    fn is_kubernetes(&self) -> bool {
        self.provider() == KUBERNETES_PROVIDER
    }

    fn is_appmesh(&self) -> bool {
        self.provider().starts_with("appmesh")
    }

    fn skip_analysis(&self) -> bool {
        self.spec.skip_analysis || self.analysis.is_none()
    }

    fn has_scaler(&self) -> bool {
        self.spec.autoscaler_ref.is_some()
    }

    fn threshold(&self) -> i32 {
        self.analysis.map_or(1, CanaryAnalysis::threshold)
    }

    fn interval_seconds(&self) -> i64 {
        self.analysis
            .map_or(DEFAULT_INTERVAL_SECONDS, CanaryAnalysis::interval_seconds)
    }

    fn webhooks(&self) -> &'r [CanaryWebhook] {
        self.analysis.map_or(&[], |a| a.webhooks.as_slice())
    }

    fn mirror(&self) -> bool {
        self.analysis.is_some_and(|a| a.mirror)
    }

    /// The strategy and iterations in effect: the provider `kubernetes` forces blue/green
    /// (no `match`, at least 1 iteration, 10 when unset).
    fn plan(&self) -> (Strategy, i32) {
        let Some(a) = self.analysis else {
            return (Strategy::Canary, 0);
        };
        let mut iterations = a.iterations();
        let mut ab = !a.match_.is_empty();
        if self.is_kubernetes() {
            ab = false;
            if iterations < 1 {
                iterations = KUBERNETES_DEFAULT_ITERATIONS;
            }
        }
        let strategy = if iterations > 0 && ab {
            Strategy::ABTesting
        } else if iterations > 0 {
            Strategy::BlueGreen
        } else {
            Strategy::Canary
        };
        (strategy, iterations)
    }

    fn phase(&self) -> Option<CanaryPhase> {
        self.st.phase
    }

    // ---- output -------------------------------------------------------------------------

    fn s(&mut self) -> &mut CanaryStatus {
        self.st.to_mut()
    }

    fn act(&mut self, action: Action) {
        self.actions.push(action);
    }

    fn set_routes(&mut self, primary: i32, canary: i32, mirrored: bool) {
        self.act(Action::SetRoutes {
            primary,
            canary,
            mirrored,
        });
    }

    fn event(&mut self, type_: EventType, message: String) {
        self.events.push(Event {
            type_,
            reason: EVENT_REASON,
            message,
        });
    }

    fn info(&mut self, message: String) {
        self.event(EventType::Normal, message);
    }

    fn warn(&mut self, message: String) {
        self.event(EventType::Warning, message);
    }

    fn alert(&mut self, severity: AlertSeverity, message: impl Into<String>) {
        self.act(Action::SendAlert {
            severity,
            message: message.into(),
        });
    }

    fn finish(mut self, pending: bool) -> Decision<'a> {
        if pending {
            return Decision {
                status: Cow::Borrowed(self.orig),
                actions: self.requests,
                events: Vec::new(),
                requeue_at: None,
            };
        }
        self.event_hooks();
        let requeue_at = Some(self.now.add_secs(self.interval_seconds()));
        let status = match self.st {
            Cow::Owned(s) if s == *self.orig => Cow::Borrowed(self.orig),
            other => other,
        };
        Decision {
            status,
            actions: self.actions,
            events: self.events,
            requeue_at,
        }
    }

    // ---- status writes (Flagger's SyncStatus / SetStatus*) ------------------------------

    /// `SyncStatus`: phase and counters as given, the observed revision recorded.
    fn sync_status(
        &mut self,
        phase: CanaryPhase,
        weight: i32,
        failed_checks: i32,
        iterations: i32,
    ) {
        let conditions = promoted_condition(&self.st.conditions, phase, self.kind(), self.now);
        let hash = self.obs.target_hash;
        let configs = self.obs.tracked_configs;
        let now = self.now;
        let s = self.s();
        s.phase = Some(phase);
        s.canary_weight = weight;
        s.failed_checks = failed_checks;
        s.iterations = iterations;
        if s.last_applied_spec != hash {
            s.last_applied_spec = hash.to_string();
        }
        if phase == CanaryPhase::Initialized && s.last_promoted_spec != hash {
            s.last_promoted_spec = hash.to_string();
        }
        if s.tracked_configs != *configs {
            s.tracked_configs = configs.clone();
        }
        s.last_transition_time = Some(now);
        if let Some(c) = conditions {
            s.conditions = c;
        }
    }

    /// `SetStatusPhase`, with its side effects on the counters and `lastPromotedSpec`.
    fn set_phase(&mut self, phase: CanaryPhase) {
        let conditions = promoted_condition(&self.st.conditions, phase, self.kind(), self.now);
        let waiting_iterations = self.plan().1.saturating_sub(1);
        let now = self.now;
        let s = self.s();
        s.phase = Some(phase);
        s.last_transition_time = Some(now);
        if !matches!(
            phase,
            CanaryPhase::Progressing | CanaryPhase::Waiting | CanaryPhase::Promoting
        ) {
            s.canary_weight = 0;
            s.iterations = if phase == CanaryPhase::WaitingPromotion {
                waiting_iterations
            } else {
                0
            };
        }
        if matches!(phase, CanaryPhase::Initialized | CanaryPhase::Succeeded)
            && s.last_promoted_spec != s.last_applied_spec
        {
            s.last_promoted_spec = s.last_applied_spec.clone();
        }
        if let Some(c) = conditions {
            s.conditions = c;
        }
    }

    fn set_weight(&mut self, weight: i32) {
        let now = self.now;
        let s = self.s();
        s.canary_weight = weight;
        s.last_transition_time = Some(now);
    }

    fn set_iterations(&mut self, iterations: i32) {
        let now = self.now;
        let s = self.s();
        s.iterations = iterations;
        s.last_transition_time = Some(now);
    }

    fn add_failed_check(&mut self) {
        let now = self.now;
        let s = self.s();
        s.failed_checks = s.failed_checks.saturating_add(1);
        s.last_transition_time = Some(now);
    }

    // ---- checks -------------------------------------------------------------------------

    fn checksum(&self) -> String {
        run_checksum(&self.st.last_applied_spec, &self.st.tracked_configs)
    }

    fn result(&self, hook: &CanaryWebhook) -> Option<&'o WebhookResult> {
        self.obs
            .webhooks
            .iter()
            .find(|r| r.name == hook.name && r.hook_type == hook.r#type)
    }

    fn call(
        &self,
        hook: &CanaryWebhook,
        phase: CanaryPhase,
        checksum: &str,
        awaits_result: bool,
    ) -> Action {
        Action::CallWebhook {
            name: hook.name.clone(),
            hook_type: hook.r#type,
            phase,
            url: hook.url.clone(),
            timeout: hook.timeout(),
            retries: hook.retries.unwrap_or(0),
            disable_tls: hook.disable_tls,
            metadata: hook.metadata.clone(),
            checksum: checksum.to_string(),
            awaits_result,
        }
    }

    /// Asks for every hook in `rest` that has no result yet; the tick stops.
    fn request_missing<'h>(
        &mut self,
        rest: impl Iterator<Item = &'h CanaryWebhook>,
        phase: CanaryPhase,
        checksum: &str,
    ) -> Pending {
        for hook in rest {
            if self.result(hook).is_none() {
                let call = self.call(hook, phase, checksum, true);
                self.requests.push(call);
            }
        }
        Pending
    }

    /// A gate or check stage: the hooks of `hook_type` in order; the first failure
    /// decides. `Ok(None)`: all passed (or there are none).
    fn hooks_pass(
        &mut self,
        hook_type: HookType,
        phase: CanaryPhase,
        checksum: &str,
    ) -> Step<Option<HookFailure<'r>>> {
        let hooks = self.webhooks();
        for (i, hook) in hooks.iter().enumerate() {
            if hook.r#type != hook_type {
                continue;
            }
            match self.result(hook) {
                None => {
                    let rest = hooks
                        .get(i..)
                        .unwrap_or(&[])
                        .iter()
                        .filter(|h| h.r#type == hook_type);
                    return Err(self.request_missing(rest, phase, checksum));
                }
                Some(r) if r.ok => {
                    if let Some(label) = pass_label(hook_type) {
                        self.info(format!("{label} check {} passed", hook.name));
                    }
                }
                Some(r) => {
                    return Ok(Some(HookFailure {
                        hook,
                        message: r.message.clone(),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The rollback hooks: the first success asks for a rollback.
    fn rollback_requested(&mut self, phase: CanaryPhase) -> Step<bool> {
        let checksum = self.checksum();
        let hooks = self.webhooks();
        for (i, hook) in hooks.iter().enumerate() {
            if hook.r#type != HookType::Rollback {
                continue;
            }
            match self.result(hook) {
                None => {
                    let rest = hooks
                        .get(i..)
                        .unwrap_or(&[])
                        .iter()
                        .filter(|h| h.r#type == HookType::Rollback);
                    return Err(self.request_missing(rest, phase, &checksum));
                }
                Some(r) if r.ok => {
                    self.warn(format!("Rollback check {} passed", hook.name));
                    return Ok(true);
                }
                Some(_) => self.info(format!(
                    "Rollback hook {} not signaling a rollback",
                    hook.name
                )),
            }
        }
        Ok(false)
    }

    /// The metric checks (builtin metrics first, then the others, each in spec order);
    /// `Ok(Some(message))` for the first failure.
    fn metrics_fail(&mut self) -> Step<Option<String>> {
        let metrics: &'r [CanaryMetric] = self.analysis.map_or(&[], |a| a.metrics.as_slice());
        if metrics.is_empty() {
            return Ok(None);
        }
        let ordered = || {
            metrics
                .iter()
                .filter(|m| m.is_builtin())
                .chain(metrics.iter().filter(|m| !m.is_builtin()))
        };
        let Some(results) = self.obs.metrics else {
            self.requests.push(Action::RunMetricChecks {
                metrics: ordered().map(|m| m.name.clone()).collect(),
            });
            return Err(Pending);
        };
        let (name, ns) = (self.name(), self.namespace());
        for metric in ordered() {
            match results.iter().find(|r| r.name == metric.name) {
                None => {
                    return Ok(Some(format!(
                        "Halt {name}.{ns} advancement: no result for metric {}",
                        metric.name
                    )));
                }
                Some(r) => match &r.outcome {
                    MetricOutcome::Pass => {}
                    MetricOutcome::Fail(message) => {
                        // Flagger words its builtin metrics' events differently.
                        let what = match metric.name.as_str() {
                            "request-success-rate" => "success rate",
                            "request-duration" => "request duration",
                            other => other,
                        };
                        return Ok(Some(format!(
                            "Halt {name}.{ns} advancement {what} {message}"
                        )));
                    }
                    MetricOutcome::Error(message) => {
                        return Ok(Some(format!(
                            "Metric query failed for {}: {message}",
                            metric.name
                        )));
                    }
                },
            }
        }
        Ok(None)
    }

    fn post_rollout_hooks(&mut self, phase: CanaryPhase) {
        let checksum = self.checksum();
        for hook in self.webhooks() {
            if hook.r#type == HookType::PostRollout {
                let call = self.call(hook, phase, &checksum, false);
                self.act(call);
            }
        }
    }

    /// `event` hooks receive every event of the tick.
    fn event_hooks(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let phase = self.phase().unwrap_or(CanaryPhase::Initializing);
        let checksum = self.checksum();
        let timestamp = self.now.as_millis().to_string();
        let mut calls = Vec::new();
        for hook in self.webhooks() {
            if hook.r#type != HookType::Event {
                continue;
            }
            for event in &self.events {
                let mut call = self.call(hook, phase, &checksum, false);
                if let Action::CallWebhook { metadata, .. } = &mut call {
                    metadata.insert("eventMessage".into(), event.message.clone());
                    let type_ = match event.type_ {
                        EventType::Warning => "Warning",
                        _ => "Normal",
                    };
                    metadata.insert("eventType".into(), type_.into());
                    metadata.insert("timestamp".into(), timestamp.clone());
                }
                calls.push(call);
            }
        }
        self.actions.extend(calls);
    }

    // ---- the loop -----------------------------------------------------------------------

    fn run(&mut self) -> Step {
        let (name, ns, target) = (self.name(), self.namespace(), self.target());

        // Deletion with revertOnDeletion (Flagger's finalizer): give the target its
        // traffic back before the Canary goes.
        if self.spec.revert_on_deletion && self.canary.metadata.deletion_timestamp.is_some() {
            return self.terminate();
        }

        // 1. suspend
        if self.spec.suspend {
            self.info("skipping canary run as object is suspended".into());
            return Ok(());
        }

        // 2-8. initialisation
        let phase = match self.phase() {
            None | Some(CanaryPhase::Initializing) => return self.initialize(),
            // Terminating without a deletion in progress: nothing to do.
            Some(CanaryPhase::Terminating | CanaryPhase::Terminated) => return Ok(()),
            Some(p) => p,
        };

        // 9. shouldAdvance
        let changed = self.revision_changed();
        if phase == CanaryPhase::Failed && !changed {
            self.resync_failed();
        }
        let in_run = matches!(
            phase,
            CanaryPhase::Progressing
                | CanaryPhase::Waiting
                | CanaryPhase::WaitingPromotion
                | CanaryPhase::Promoting
                | CanaryPhase::Finalising
        );
        if !in_run && !changed {
            return Ok(());
        }

        // 10. primary readiness
        if !self.skip_analysis() {
            match &self.obs.primary {
                Readiness::Ready => {}
                Readiness::Waiting(message) => {
                    self.warn(message.clone());
                    return Ok(());
                }
                Readiness::Failed(message) => {
                    self.warn(message.clone());
                    if matches!(phase, CanaryPhase::Promoting | CanaryPhase::Finalising) {
                        self.failed_promotion(message);
                    } else {
                        self.rollback();
                    }
                    return Ok(());
                }
            }
        }

        // 11. routes, as the router reports them
        let canary_weight = self.obs.routes.canary.clamp(0, TOTAL_WEIGHT);
        let routes = Routes::new(
            TOTAL_WEIGHT - canary_weight,
            canary_weight,
            self.obs.routes.mirrored,
        );

        // 12. a new revision starts a run (through the confirm-rollout gate)
        if !matches!(
            phase,
            CanaryPhase::Progressing
                | CanaryPhase::WaitingPromotion
                | CanaryPhase::Promoting
                | CanaryPhase::Finalising
        ) {
            return self.start_run(phase);
        }

        // 13. a new revision during the analysis restarts it
        if matches!(
            phase,
            CanaryPhase::Progressing | CanaryPhase::WaitingPromotion
        ) && changed
        {
            self.info(format!(
                "New revision detected! Restarting analysis for {target}.{ns}"
            ));
            self.set_routes(TOTAL_WEIGHT, 0, false);
            self.sync_status(CanaryPhase::Progressing, 0, 0, 0);
            return Ok(());
        }

        // 14. canary readiness
        match &self.obs.canary {
            Readiness::Ready => {}
            Readiness::Waiting(message) => {
                self.warn(message.clone());
                return Ok(());
            }
            Readiness::Failed(message) => {
                self.warn(message.clone());
                self.warn(format!(
                    "Rolling back {name}.{ns} progress deadline exceeded {message}"
                ));
                self.alert(
                    AlertSeverity::Error,
                    format!("Progress deadline exceeded {message}"),
                );
                self.rollback();
                return Ok(());
            }
        }

        // 15. skipAnalysis
        if self.skip_analysis() {
            self.promote_without_analysis();
            return Ok(());
        }

        // 16. rollback hooks
        if matches!(
            phase,
            CanaryPhase::Progressing | CanaryPhase::Waiting | CanaryPhase::WaitingPromotion
        ) && self.rollback_requested(phase)?
        {
            self.warn(format!("Rolling back {name}.{ns} manual webhook invoked"));
            self.alert(AlertSeverity::Warn, "Rolling back manual webhook invoked");
            self.rollback();
            return Ok(());
        }

        // 17. promotion: traffic back to the primary
        if phase == CanaryPhase::Promoting {
            if self.has_scaler() {
                self.act(Action::ReconcilePrimaryScaler);
            }
            self.promotion_traffic_shift(routes);
            return Ok(());
        }

        // 18. finalising
        if phase == CanaryPhase::Finalising {
            if self.has_scaler() {
                self.act(Action::PauseTargetScaler);
            }
            self.act(Action::ScaleTarget {
                replicas: ScaleTo::Zero,
            });
            self.set_phase(CanaryPhase::Succeeded);
            self.post_rollout_hooks(CanaryPhase::Succeeded);
            self.info(format!("Promotion completed! Scaling down {target}.{ns}"));
            self.alert(
                AlertSeverity::Info,
                "Canary analysis completed successfully, promotion finished.",
            );
            return Ok(());
        }

        // 19. threshold reached on an earlier tick
        if self.st.failed_checks >= self.threshold() {
            self.rollback();
            return Ok(());
        }

        // 20. checks
        let analysis_mirrored = self.mirror() && routes.mirrored;
        if routes.canary == 0 && self.st.iterations == 0 && !analysis_mirrored {
            self.info(format!("Starting canary analysis for {target}.{ns}"));
            let checksum = self.checksum();
            if let Some(f) =
                self.hooks_pass(HookType::PreRollout, CanaryPhase::Progressing, &checksum)?
            {
                self.warn(format!(
                    "Halt {name}.{ns} advancement pre-rollout check {} failed {}",
                    f.hook.name, f.message
                ));
                self.add_failed_check();
                return Ok(());
            }
        } else {
            let checksum = self.checksum();
            if let Some(f) =
                self.hooks_pass(HookType::Rollout, CanaryPhase::Progressing, &checksum)?
            {
                self.warn(format!(
                    "Halt {name}.{ns} advancement external check {} failed {}",
                    f.hook.name, f.message
                ));
                self.add_failed_check();
                return Ok(());
            }
            if let Some(message) = self.metrics_fail()? {
                self.warn(message);
                self.add_failed_check();
                return Ok(());
            }
        }

        // 21. one step of the strategy
        if self.is_kubernetes() {
            if self.analysis.is_some_and(|a| !a.match_.is_empty()) {
                self.warn("A/B testing is not supported when using the kubernetes provider".into());
            }
            if self.analysis.is_some_and(|a| a.iterations() < 1) {
                self.warn(
                    "Progressive traffic is not supported when using the kubernetes provider"
                        .into(),
                );
                self.warn(format!(
                    "Setting canaryAnalysis.iterations: {KUBERNETES_DEFAULT_ITERATIONS}"
                ));
            }
        }
        match self.plan() {
            (Strategy::ABTesting, iterations) => self.run_ab(iterations),
            (Strategy::BlueGreen, iterations) => self.run_blue_green(iterations, routes),
            _ => self.run_canary(phase, routes),
        }
    }

    fn revision_changed(&self) -> bool {
        let hash = self.obs.target_hash;
        let st = &*self.st;
        let target_changed = if st.last_applied_spec.is_empty() {
            true
        } else if st.last_promoted_spec == hash {
            false
        } else {
            st.last_applied_spec != hash
        };
        target_changed || st.tracked_configs != *self.obs.tracked_configs
    }

    /// In Failed, the status follows a target that did not change to a new revision (a
    /// change back to the promoted spec), so that only a different revision starts a run.
    fn resync_failed(&mut self) {
        let hash = self.obs.target_hash;
        let configs = self.obs.tracked_configs;
        if self.st.last_applied_spec != hash || self.st.tracked_configs != *configs {
            let now = self.now;
            let s = self.s();
            s.last_applied_spec = hash.to_string();
            s.tracked_configs = configs.clone();
            s.last_transition_time = Some(now);
        }
    }

    /// The finalizer of a Canary deleted with `revertOnDeletion`: phase Terminating, the
    /// target's autoscaler resumed and the target scaled up; once it is ready, routing is
    /// reverted and the finalizer removed.
    fn terminate(&mut self) -> Step {
        if self.phase() != Some(CanaryPhase::Terminating) {
            self.set_phase(CanaryPhase::Terminating);
            self.info(format!(
                "Terminating canary {}.{}",
                self.name(),
                self.namespace()
            ));
        }
        match &self.obs.canary {
            Readiness::Ready => {
                self.act(Action::RevertOnDeletion);
                self.info(format!(
                    "Finalized canary {}.{}: traffic restored to {}",
                    self.name(),
                    self.namespace(),
                    self.target()
                ));
            }
            Readiness::Waiting(message) | Readiness::Failed(message) => {
                self.act(Action::ResumeTargetScaler);
                self.act(Action::ScaleTarget {
                    replicas: ScaleTo::Up,
                });
                self.warn(message.clone());
            }
        }
        Ok(())
    }

    fn initialize(&mut self) -> Step {
        if self.phase().is_none() {
            // What Flagger's informer does for a canary without conditions.
            let conditions = promoted_condition(
                &self.st.conditions,
                CanaryPhase::Initializing,
                self.kind(),
                self.now,
            );
            let now = self.now;
            let s = self.s();
            s.phase = Some(CanaryPhase::Initializing);
            s.last_transition_time = Some(now);
            if let Some(c) = conditions {
                s.conditions = c;
            }
        }
        self.act(Action::InitializeServices);
        if self.spec.revert_on_deletion {
            self.act(Action::AddFinalizer);
        }
        if self.is_appmesh() {
            self.act(Action::ReconcileRouting);
        }
        self.act(Action::InitializePrimary);
        if !self.skip_analysis() {
            match &self.obs.primary {
                Readiness::Ready => {}
                Readiness::Waiting(message) => {
                    self.warn(message.clone());
                    return Ok(());
                }
                Readiness::Failed(message) => {
                    self.warn(message.clone());
                    self.rollback();
                    return Ok(());
                }
            }
        }
        if self.has_scaler() {
            self.act(Action::ReconcilePrimaryScaler);
            self.act(Action::PauseTargetScaler);
        }
        self.act(Action::ReconcileApexService);
        self.act(Action::ScaleTarget {
            replicas: ScaleTo::Zero,
        });
        if !self.is_appmesh() {
            self.act(Action::ReconcileRouting);
        }
        self.sync_status(CanaryPhase::Initialized, 0, 0, 0);
        self.info(format!(
            "Initialization done! {}.{}",
            self.name(),
            self.namespace()
        ));
        self.alert(
            AlertSeverity::Info,
            format!("New {} detected, initialization completed.", self.kind()),
        );
        Ok(())
    }

    /// Step 12 for Initialized, Succeeded, Failed and Waiting.
    fn start_run(&mut self, phase: CanaryPhase) -> Step {
        // The payload carries the checksum of the revision asking to start.
        let checksum = run_checksum(self.obs.target_hash, self.obs.tracked_configs);
        if let Some(f) = self.hooks_pass(HookType::ConfirmRollout, phase, &checksum)? {
            if phase != CanaryPhase::Waiting {
                self.set_phase(CanaryPhase::Waiting);
                self.warn(format!(
                    "Halt {}.{} advancement waiting for approval {}",
                    self.name(),
                    self.namespace(),
                    f.hook.name
                ));
                if !f.hook.mute_alert {
                    self.alert(AlertSeverity::Warn, "Canary is waiting for approval.");
                }
            }
            return Ok(());
        }
        self.info(format!(
            "New revision detected! Scaling up {}.{}",
            self.target(),
            self.namespace()
        ));
        self.alert(
            AlertSeverity::Info,
            "New revision detected, progressing canary analysis.",
        );
        if self.has_scaler() {
            self.act(Action::ResumeTargetScaler);
        }
        self.act(Action::ScaleTarget {
            replicas: ScaleTo::Up,
        });
        self.sync_status(CanaryPhase::Progressing, 0, 0, 0);
        Ok(())
    }

    fn rollback(&mut self) {
        let (name, ns) = (self.name(), self.namespace());
        let failed = self.st.failed_checks;
        if failed >= self.threshold() {
            self.warn(format!(
                "Rolling back {name}.{ns} failed checks threshold reached {failed}"
            ));
            self.alert(
                AlertSeverity::Error,
                format!("Failed checks threshold reached {failed}"),
            );
        }
        self.set_routes(TOTAL_WEIGHT, 0, false);
        self.warn(format!("Canary failed! Scaling down {name}.{ns}"));
        if self.has_scaler() {
            self.act(Action::PauseTargetScaler);
        }
        self.act(Action::ScaleTarget {
            replicas: ScaleTo::Zero,
        });
        self.sync_status(CanaryPhase::Failed, 0, 0, 0);
        self.post_rollout_hooks(CanaryPhase::Failed);
    }

    /// The primary cannot become ready after the promotion started: serve everything
    /// from the (healthy) canary and fail, keeping the canary up.
    fn failed_promotion(&mut self, message: &str) {
        let (name, ns, target) = (self.name(), self.namespace(), self.target());
        self.warn(format!(
            "Promotion of {name}.{ns} failed, routing all traffic to {target}: {message}"
        ));
        self.alert(
            AlertSeverity::Error,
            format!("Canary promotion failed, all traffic routed to the canary: {message}"),
        );
        self.set_routes(0, TOTAL_WEIGHT, false);
        let failed = self.st.failed_checks;
        self.sync_status(CanaryPhase::Failed, TOTAL_WEIGHT, failed, 0);
        self.post_rollout_hooks(CanaryPhase::Failed);
    }

    fn copy_to_primary(&mut self) {
        let (target, ns) = (self.target(), self.namespace());
        self.info(format!(
            "Copying {target}.{ns} template spec to {target}-primary.{ns}"
        ));
        self.act(Action::Promote);
    }

    fn promote_without_analysis(&mut self) {
        self.set_routes(TOTAL_WEIGHT, 0, false);
        self.copy_to_primary();
        if self.has_scaler() {
            self.act(Action::ReconcilePrimaryScaler);
            self.act(Action::PauseTargetScaler);
        }
        self.act(Action::ScaleTarget {
            replicas: ScaleTo::Zero,
        });
        self.set_phase(CanaryPhase::Succeeded);
        self.post_rollout_hooks(CanaryPhase::Succeeded);
        self.info(format!(
            "Promotion completed! Canary analysis was skipped for {}.{}",
            self.target(),
            self.namespace()
        ));
        self.alert(
            AlertSeverity::Info,
            "Canary analysis was skipped, promotion finished.",
        );
    }

    fn promotion_traffic_shift(&mut self, routes: Routes) {
        if self.is_kubernetes() {
            self.set_phase(CanaryPhase::Finalising);
            return;
        }
        let step = self
            .analysis
            .map_or(0, CanaryAnalysis::step_weight_promotion);
        if step <= 0 || routes.canary == 0 {
            self.info("Routing all traffic to primary".into());
            self.set_routes(TOTAL_WEIGHT, 0, false);
            self.set_phase(CanaryPhase::Finalising);
            return;
        }
        let canary = routes.canary.saturating_sub(step).max(0);
        let primary = TOTAL_WEIGHT - canary;
        self.set_routes(primary, canary, false);
        self.info(format!(
            "Advance {}.{} primary weight {primary}",
            self.name(),
            self.namespace()
        ));
        if primary == TOTAL_WEIGHT {
            self.set_phase(CanaryPhase::Finalising);
        } else {
            self.set_weight(canary);
        }
    }

    /// The confirm-promotion gate failed: WaitingPromotion (alert when entering it).
    fn wait_for_promotion(&mut self, failure: &HookFailure<'_>) {
        let entering = self.phase() != Some(CanaryPhase::WaitingPromotion);
        self.set_phase(CanaryPhase::WaitingPromotion);
        if entering {
            self.warn(format!(
                "Halt {}.{} advancement waiting for promotion approval {}",
                self.name(),
                self.namespace(),
                failure.hook.name
            ));
            if !failure.hook.mute_alert {
                self.alert(
                    AlertSeverity::Warn,
                    "Canary promotion is waiting for approval.",
                );
            }
        }
    }

    /// The confirm-promotion gate; `Ok(true)` when it is open.
    fn promotion_confirmed(&mut self) -> Step<bool> {
        let checksum = self.checksum();
        match self.hooks_pass(
            HookType::ConfirmPromotion,
            CanaryPhase::Progressing,
            &checksum,
        )? {
            Some(f) => {
                self.wait_for_promotion(&f);
                Ok(false)
            }
            None => Ok(true),
        }
    }

    fn advance_iteration(&mut self, iterations: i32) {
        let next = self.st.iterations.saturating_add(1);
        self.set_iterations(next);
        self.info(format!(
            "Advance {}.{} canary iteration {next}/{iterations}",
            self.name(),
            self.namespace()
        ));
    }

    fn run_ab(&mut self, iterations: i32) -> Step {
        if iterations > self.st.iterations {
            self.set_routes(0, TOTAL_WEIGHT, false);
            self.advance_iteration(iterations);
            return Ok(());
        }
        if !self.promotion_confirmed()? {
            return Ok(());
        }
        self.copy_to_primary();
        self.set_phase(CanaryPhase::Promoting);
        Ok(())
    }

    fn run_blue_green(&mut self, iterations: i32, routes: Routes) -> Step {
        let kubernetes = self.is_kubernetes();
        if iterations > self.st.iterations {
            if !kubernetes && self.mirror() && !routes.mirrored {
                self.set_routes(TOTAL_WEIGHT, 0, true);
            }
            self.advance_iteration(iterations);
            return Ok(());
        }
        if !self.promotion_confirmed()? {
            return Ok(());
        }
        if iterations == self.st.iterations {
            if !kubernetes {
                self.info(if self.mirror() {
                    "Stop traffic mirroring and route all traffic to canary".into()
                } else {
                    "Routing all traffic to canary".into()
                });
                self.set_routes(0, TOTAL_WEIGHT, false);
            }
            let next = self.st.iterations.saturating_add(1);
            self.set_iterations(next);
            return Ok(());
        }
        self.copy_to_primary();
        self.set_phase(CanaryPhase::Promoting);
        Ok(())
    }

    fn run_canary(&mut self, phase: CanaryPhase, routes: Routes) -> Step {
        let Some(analysis) = self.analysis else {
            return Ok(());
        };
        let step = next_step_weight(analysis, routes.canary);
        if step <= 0 {
            // No stepWeight, stepWeights or iterations: Flagger analyses forever.
            return Ok(());
        }
        if !routes.mirrored
            && !matches!(
                phase,
                CanaryPhase::Promoting | CanaryPhase::WaitingPromotion | CanaryPhase::Finalising
            )
        {
            let checksum = self.checksum();
            if let Some(f) = self.hooks_pass(
                HookType::ConfirmTrafficIncrease,
                CanaryPhase::Progressing,
                &checksum,
            )? {
                self.warn(format!(
                    "Halt {}.{} advancement waiting for traffic increase approval {}",
                    self.name(),
                    self.namespace(),
                    f.hook.name
                ));
                if !f.hook.mute_alert {
                    self.alert(
                        AlertSeverity::Warn,
                        "Canary traffic increase is waiting for approval.",
                    );
                }
                return Ok(());
            }
        }
        if routes.canary < analysis.max_weight() {
            let (canary, mirrored) = if analysis.mirror && routes.canary == 0 {
                if routes.mirrored {
                    (step.min(TOTAL_WEIGHT), false)
                } else {
                    (0, true)
                }
            } else {
                (
                    routes.canary.saturating_add(step).min(TOTAL_WEIGHT),
                    routes.mirrored,
                )
            };
            self.set_routes(TOTAL_WEIGHT - canary, canary, mirrored);
            self.set_weight(canary);
            self.info(format!(
                "Advance {}.{} canary weight {canary}",
                self.name(),
                self.namespace()
            ));
            return Ok(());
        }
        if !self.promotion_confirmed()? {
            return Ok(());
        }
        self.copy_to_primary();
        self.set_phase(CanaryPhase::Promoting);
        Ok(())
    }
}

/// The event text of a passing hook, by type (rollout hooks pass silently).
fn pass_label(hook_type: HookType) -> Option<&'static str> {
    match hook_type {
        HookType::ConfirmRollout => Some("Confirm-rollout"),
        HookType::PreRollout => Some("Pre-rollout"),
        HookType::ConfirmPromotion => Some("Confirm-promotion"),
        HookType::ConfirmTrafficIncrease => Some("Confirm-traffic-increase"),
        _ => None,
    }
}

/// The `Promoted` condition for `phase` (Flagger's `MakeStatusConditions`), or `None`
/// when the current one already has the same status and reason.
fn promoted_condition(
    current: &[CanaryCondition],
    phase: CanaryPhase,
    kind: &str,
    now: Timestamp,
) -> Option<Vec<CanaryCondition>> {
    let (status, message) = match phase {
        CanaryPhase::Initialized => ("True", format!("{kind} initialization completed.")),
        CanaryPhase::Waiting | CanaryPhase::WaitingPromotion => {
            ("Unknown", "Waiting for approval.".to_string())
        }
        CanaryPhase::Progressing => (
            "Unknown",
            "New revision detected, progressing canary analysis.".to_string(),
        ),
        CanaryPhase::Promoting => (
            "Unknown",
            "Canary analysis completed, starting primary rolling update.".to_string(),
        ),
        CanaryPhase::Finalising => (
            "Unknown",
            "Canary analysis completed, routing all traffic to primary.".to_string(),
        ),
        CanaryPhase::Succeeded => (
            "True",
            "Canary analysis completed successfully, promotion finished.".to_string(),
        ),
        CanaryPhase::Failed => (
            "False",
            format!("Canary analysis failed, {kind} scaled to zero."),
        ),
        _ => (
            "Unknown",
            format!("New {kind} detected, starting initialization."),
        ),
    };
    let existing = current.iter().find(|c| c.type_ == PROMOTED_CONDITION);
    if existing.is_some_and(|c| c.status == status && c.reason == phase.as_str()) {
        return None;
    }
    let last_transition_time = match existing {
        Some(c) if c.status == status => c.last_transition_time,
        _ => Some(now),
    };
    Some(vec![CanaryCondition {
        type_: PROMOTED_CONDITION.to_string(),
        status: status.to_string(),
        last_update_time: Some(now),
        last_transition_time,
        reason: phase.as_str().to_string(),
        message,
    }])
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
