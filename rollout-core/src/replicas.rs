//! Argo Rollouts' replica and weight arithmetic: how many pods the canary and the stable
//! ReplicaSet should run right now.
//!
//! # The model
//!
//! A canary rollout owns up to three kinds of ReplicaSets: the **canary** (the pod template
//! being rolled out, `status.currentPodHash`), the **stable** (the last fully promoted
//! template, `status.stableRS`) and **older** ones left over from interrupted updates.
//! Each reconcile asks "what `spec.replicas` should the canary and the stable have?" and
//! scales towards the answer. The answer depends on:
//!
//! 1. **Which size the canary targets** ([`canary_replicas_or_weight`]). In this order:
//!    a full promotion, no recorded stable, or a canary that *is* the stable → the maximum
//!    weight; with traffic routing, the latest `setCanaryScale` at or before the current
//!    step (ignored after an abort unless `abortScaleDownDelaySeconds` is explicitly 0);
//!    an abort with `dynamicStableScale` → the weight found by walking the `setWeight`
//!    steps backwards ([`desired_weight_on_abort`]); otherwise the current `setWeight`
//!    ([`current_set_weight`]).
//! 2. **Whether traffic routing is used.** With a traffic router the weight is enforced by
//!    the router, so the pod counts only need to be large enough: the canary gets
//!    `ceil(weight·R/maxWeight)` pods ([`traffic_weight_to_replicas`]) and the stable
//!    stays at `R` (or, with `dynamicStableScale`, shrinks only after traffic has left it).
//!    `maxSurge`/`maxUnavailable` are not applied. Without a traffic router the weight is
//!    *approximated by pod counts* ([`approximate_weighted_counts`]) and the move from the
//!    current counts to that target honours the surge and unavailability budgets
//!    ([`resolve_fenceposts`]): the stable is raised first, older ReplicaSets are drained
//!    before the canary or stable shrink, and shrinking is limited to what keeps
//!    `R − maxUnavailable` pods available.
//!
//! [`canary_replica_counts`] puts both paths together; [`at_desired_replica_counts`] is the
//! "this `setWeight`/`setCanaryScale` step is done" check built on it. Blue-green has a
//! single rule for the new ReplicaSet ([`bluegreen_new_rs_replicas`]).
//!
//! # Conventions
//!
//! All functions are pure and allocation-free, and none panics. Arithmetic is done in
//! `i64` and clamped back into `i32`, so absurd inputs give clamped results instead of
//! overflow. Negative pod counts in ReplicaSet inputs are read as they are (Argo does
//! the same); negative `spec.replicas`, `maxSurge` or `maxUnavailable` are rejected with
//! a [`ReplicaError`] by the functions that return `Result`, and clamped to 0 by the
//! plain helpers. A non-positive `maxTrafficWeight` is read as the default 100.
//!
//! ```
//! use rollout_core::replicas::approximate_weighted_counts;
//!
//! // 10 pods, 24% canary weight, surge allowed: 3 canary + 8 stable (27%) is the closest.
//! let c = approximate_weighted_counts(10, 24, 100, 1);
//! assert_eq!((c.canary, c.stable), (3, 8));
//! ```

use crate::intstr::IntOrPercent;
use crate::phase::StrategyKind;

/// The traffic weight that means "all traffic" when `maxTrafficWeight` is unset.
pub const DEFAULT_MAX_TRAFFIC_WEIGHT: i32 = 100;

/// What the replica arithmetic needs to know about one canary step (implemented by
/// `spec::CanaryStep` and by the conformance adapter).
pub trait StepView {
    /// The step's `setWeight`, if it is a `setWeight` step.
    fn set_weight(&self) -> Option<i32>;
    /// The step's `setCanaryScale`, if it is a `setCanaryScale` step.
    fn set_canary_scale(&self) -> Option<CanaryScale>;
}

impl<T: StepView + ?Sized> StepView for &T {
    fn set_weight(&self) -> Option<i32> {
        (**self).set_weight()
    }
    fn set_canary_scale(&self) -> Option<CanaryScale> {
        (**self).set_canary_scale()
    }
}

/// A `setCanaryScale` step: an explicit canary size that does not change traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryScale {
    /// An explicit canary pod count.
    pub replicas: Option<i32>,
    /// A canary size as a weight of `spec.replicas` (may exceed `maxTrafficWeight`).
    pub weight: Option<i32>,
    /// Go back to sizing the canary from the traffic weight.
    pub match_traffic_weight: bool,
}

/// The two numbers of a ReplicaSet that the arithmetic reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaSetCounts {
    /// `spec.replicas` of the ReplicaSet.
    pub spec_replicas: i32,
    /// `status.availableReplicas` of the ReplicaSet.
    pub available_replicas: i32,
}

/// Desired `spec.replicas` of the canary and stable ReplicaSets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// Pods for the canary (new) ReplicaSet.
    pub canary: i32,
    /// Pods for the stable ReplicaSet.
    pub stable: i32,
}

/// Everything [`canary_replica_counts`] reads, as plain values.
#[derive(Debug, Clone, Copy)]
pub struct CanaryReplicaInput<'a, S: StepView> {
    /// `spec.replicas` (the caller applies the default of 1).
    pub spec_replicas: i32,
    /// `canary.maxSurge`; the caller has applied Argo's default (`"25%"`) already.
    pub max_surge: &'a IntOrPercent,
    /// `canary.maxUnavailable`; the caller has applied Argo's default (`"25%"`) already.
    pub max_unavailable: &'a IntOrPercent,
    /// `canary.steps`.
    pub steps: &'a [S],
    /// Whether `canary.trafficRouting` is set.
    pub traffic_routing: bool,
    /// `trafficRouting.maxTrafficWeight`; 100 when unset.
    pub max_traffic_weight: i32,
    /// `canary.dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// `canary.minPodsPerReplicaSet`.
    pub min_pods_per_replica_set: Option<i32>,
    /// `canary.abortScaleDownDelaySeconds`; `None` = unset, which differs from an explicit 0.
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// `status.currentStepIndex` (`None` reads as 0).
    pub current_step_index: Option<i32>,
    /// `status.stableRS` (`""` = no stable recorded yet).
    pub stable_hash: &'a str,
    /// `status.currentPodHash`.
    pub current_pod_hash: &'a str,
    /// `status.abort`.
    pub abort: bool,
    /// `status.promoteFull`.
    pub promote_full: bool,
    /// The stable ReplicaSet; `None` when there is none or when it is the canary itself.
    pub stable_rs: Option<ReplicaSetCounts>,
    /// The canary ReplicaSet, once it exists.
    pub canary_rs: Option<ReplicaSetCounts>,
    /// Every other ReplicaSet of the rollout (older, interrupted updates).
    pub other_rss: &'a [ReplicaSetCounts],
    /// `(canary, stable)` from `status.canary.weights`, when recorded.
    pub current_traffic_weights: Option<(i32, i32)>,
}

/// Where the canary size comes from: an explicit pod count or a weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CanarySize {
    /// `setCanaryScale.replicas`: an explicit pod count.
    Replicas(i32),
    /// A weight out of `maxTrafficWeight` (Argo reports the weight as 0 for `Replicas`).
    Weight(i32),
}

/// A `replicaProgressThreshold`: how available a ReplicaSet must be to count as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressThreshold {
    /// `type: Percent`: at least `value` % of the desired pods are available.
    Percent(i32),
    /// `type: Pods`: at least `value` pods are available (never more than desired).
    Pods(i32),
}

impl Default for ProgressThreshold {
    /// Argo's default: 100 % of the desired pods.
    fn default() -> Self {
        ProgressThreshold::Percent(100)
    }
}

/// Extra facts for [`at_desired_replica_counts`] that are not part of the count inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AtDesiredCheck {
    /// `status.replicas` of the stable ReplicaSet (pods created); `None` = assume it
    /// equals the stable's `spec.replicas`.
    pub stable_status_replicas: Option<i32>,
    /// `canary.replicaProgressThreshold`; `None` = the canary must be exactly at desired.
    pub replica_progress_threshold: Option<ProgressThreshold>,
}

/// Inputs of the blue-green new-ReplicaSet size rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlueGreenReplicaInput<'a> {
    /// `spec.replicas` (the caller applies the default of 1).
    pub spec_replicas: i32,
    /// `blueGreen.previewReplicaCount`.
    pub preview_replica_count: Option<i32>,
    /// `status.promoteFull`.
    pub promote_full: bool,
    /// Pod template hash of the new ReplicaSet.
    pub new_rs_hash: &'a str,
    /// `status.currentPodHash`.
    pub current_pod_hash: &'a str,
    /// `status.blueGreen.activeSelector`.
    pub active_selector: &'a str,
    /// Whether a ReplicaSet with the active selector's hash exists.
    pub active_rs_exists: bool,
    /// `spec.paused`, or any pause condition present.
    pub paused: bool,
    /// `status.blueGreen.scaleUpPreviewCheckPoint`.
    pub scale_up_preview_check_point: bool,
}

/// Why replica counts cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// `maxSurge` is a string that is not a percentage.
    #[error("invalid maxSurge {value:?}: must be an integer or a percentage such as \"25%\"")]
    InvalidMaxSurge {
        /// The rejected text.
        value: String,
    },
    /// `maxUnavailable` is a string that is not a percentage.
    #[error("invalid maxUnavailable {value:?}: must be an integer or a percentage such as \"25%\"")]
    InvalidMaxUnavailable {
        /// The rejected text.
        value: String,
    },
    /// `maxSurge` resolves to a negative number of pods.
    #[error("maxSurge must not be negative, got {value}")]
    NegativeMaxSurge {
        /// The resolved (negative) pod count.
        value: i32,
    },
    /// `maxUnavailable` resolves to a negative number of pods.
    #[error("maxUnavailable must not be negative, got {value}")]
    NegativeMaxUnavailable {
        /// The resolved (negative) pod count.
        value: i32,
    },
    /// `spec.replicas` is negative.
    #[error("spec.replicas must not be negative, got {value}")]
    NegativeReplicas {
        /// The rejected replica count.
        value: i32,
    },
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn clamp_count(v: i64) -> i32 {
    v.clamp(0, i64::from(i32::MAX)) as i32
}

/// `maxTrafficWeight`, with non-positive values read as the default.
fn max_weight_of(max_weight: i32) -> i64 {
    if max_weight <= 0 {
        i64::from(DEFAULT_MAX_TRAFFIC_WEIGHT)
    } else {
        i64::from(max_weight)
    }
}

/// `ceil(a / b)` for `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

/// The index Argo treats as current: `None` and negative values read as 0.
fn step_index(current_step_index: Option<i32>) -> usize {
    usize::try_from(current_step_index.unwrap_or(0)).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Fenceposts
// ---------------------------------------------------------------------------------------

/// Resolves `maxSurge` and `maxUnavailable` against `replicas`: percentages round **up**
/// for surge and **down** for unavailable, and when both resolve to 0, unavailable
/// becomes 1. An unset value is passed as `IntOrPercent::Int(0)`: Argo resolves a missing
/// value as 0 at this level (the rollout-level default of 25% is applied before). The
/// result is not capped here (see [`max_unavailable`]): `(0%, 0%, 0)` resolves to `(0, 1)`.
pub fn resolve_fenceposts(
    max_surge: &IntOrPercent,
    max_unavailable: &IntOrPercent,
    replicas: i32,
) -> Result<(i32, i32), ReplicaError> {
    if replicas < 0 {
        return Err(ReplicaError::NegativeReplicas { value: replicas });
    }
    let surge = max_surge
        .resolve(replicas, true)
        .map_err(|e| ReplicaError::InvalidMaxSurge { value: e.value })?;
    let unavailable = max_unavailable
        .resolve(replicas, false)
        .map_err(|e| ReplicaError::InvalidMaxUnavailable { value: e.value })?;
    if surge < 0 {
        return Err(ReplicaError::NegativeMaxSurge { value: surge });
    }
    if unavailable < 0 {
        return Err(ReplicaError::NegativeMaxUnavailable { value: unavailable });
    }
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// The surge budget in pods: the resolved `maxSurge` for canary, 0 for blue-green.
/// The caller passes the values with Argo's defaults (`"25%"`) applied.
pub fn max_surge(
    strategy: StrategyKind,
    max_surge: &IntOrPercent,
    max_unavailable: &IntOrPercent,
    replicas: i32,
) -> Result<i32, ReplicaError> {
    match strategy {
        StrategyKind::BlueGreen => Ok(0),
        StrategyKind::Canary => {
            resolve_fenceposts(max_surge, max_unavailable, replicas).map(|f| f.0)
        }
    }
}

/// The unavailability budget in pods: the resolved `maxUnavailable`, capped at
/// `replicas`, 0 when `replicas` is 0, and 0 for blue-green. The caller passes the values
/// with Argo's defaults (`"25%"`) applied.
pub fn max_unavailable(
    strategy: StrategyKind,
    max_surge: &IntOrPercent,
    max_unavailable: &IntOrPercent,
    replicas: i32,
) -> Result<i32, ReplicaError> {
    match strategy {
        StrategyKind::BlueGreen => Ok(0),
        StrategyKind::Canary => {
            let (_, unavailable) = resolve_fenceposts(max_surge, max_unavailable, replicas)?;
            Ok(if replicas == 0 {
                0
            } else {
                unavailable.min(replicas)
            })
        }
    }
}

// ---------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------

/// `ceil(weight · replicas / maxWeight)`: the pods needed to serve `weight` of the traffic.
/// Negative inputs count as 0.
pub fn traffic_weight_to_replicas(replicas: i32, weight: i32, max_weight: i32) -> i32 {
    let r = i64::from(replicas.max(0));
    let w = i64::from(weight.max(0));
    clamp_count(ceil_div(r * w, max_weight_of(max_weight)))
}

/// The best integer split of `replicas` pods approximating `weight` out of `max_weight`
/// for the canary, without a traffic router.
///
/// Candidates are (ceil, R), (floor, R) and, when `max_surge > 0`, (ceil, R+1) and
/// (floor, R+1); a floor candidate is skipped when the exact value is a .5 tie or when it
/// is 0 and zero is not allowed (zero is allowed for weights 0 and max, and for one pod
/// without surge); the ceil candidate at R is skipped when it would leave no stable pod and
/// zero is not allowed. The first candidate closest to the weight wins. So the two sum to
/// R or R+1, and both get a pod for weights strictly between 0 and max when R ≥ 2 or
/// surge is allowed. The weight is clamped to `0..=max_weight`.
pub fn approximate_weighted_counts(
    replicas: i32,
    weight: i32,
    max_weight: i32,
    max_surge: i32,
) -> ReplicaCounts {
    if replicas <= 0 {
        return ReplicaCounts {
            canary: 0,
            stable: 0,
        };
    }
    let r = i64::from(replicas);
    let max = max_weight_of(max_weight);
    let w = i64::from(weight).clamp(0, max);
    let ceil = ceil_div(r * w, max);
    let floor = (r * w).div_euclid(max);
    let tied = |total: i64| 2 * (total * w).rem_euclid(max) == max;
    let zero_allowed = w == max || w == 0 || (r == 1 && max_surge <= 0);

    // At most four candidates, kept on the stack.
    let mut options = [(0i64, 0i64); 4];
    let mut n = 0;
    let mut push = |c: i64, t: i64| {
        options[n] = (c, t);
        n += 1;
    };
    if ceil < r || zero_allowed {
        push(ceil, r);
    }
    if !tied(r) && (floor != 0 || zero_allowed) {
        push(floor, r);
    }
    if max_surge > 0 {
        push(ceil, r + 1);
        if !tied(r + 1) && (floor != 0 || zero_allowed) {
            push(floor, r + 1);
        }
    }
    if n == 0 {
        return ReplicaCounts {
            canary: 0,
            stable: clamp_count(r),
        };
    }
    // |c·max/t − w| compared exactly: |c·max − w·t| / t.
    // In i128: numerators reach 2^62 and are multiplied by a total of up to 2^31.
    let delta = |(c, t): (i64, i64)| (i128::from((c * max - w * t).abs()), i128::from(t));
    let mut best = options[0];
    for &candidate in &options[1..n] {
        let (num_c, den_c) = delta(candidate);
        let (num_b, den_b) = delta(best);
        if num_c * den_b < num_b * den_c {
            best = candidate;
        }
    }
    ReplicaCounts {
        canary: clamp_count(best.0),
        stable: clamp_count(best.1 - best.0),
    }
}

/// The last `setWeight` at or before the current step (Argo's `GetCurrentSetWeight`):
/// 0 when aborted, `max_weight` when there are no steps or all steps are done, 0 when no
/// `setWeight` precedes the current step. A `None` or negative index reads as 0.
///
/// `promoteFull` is not considered here; [`canary_replicas_or_weight`] applies it first.
pub fn current_set_weight<S: StepView>(
    steps: &[S],
    current_step_index: Option<i32>,
    abort: bool,
    max_weight: i32,
) -> i32 {
    if abort {
        return 0;
    }
    let idx = step_index(current_step_index);
    if idx >= steps.len() {
        return clamp_i32(max_weight_of(max_weight));
    }
    steps[..=idx]
        .iter()
        .rev()
        .find_map(StepView::set_weight)
        .unwrap_or(0)
}

/// The weight an aborted rollout with `dynamicStableScale` steps back to: walking the
/// `setWeight` steps from the last one backwards, the first weight whose pod count
/// ([`traffic_weight_to_replicas`]) is below `max(R − stableAvailable, canaryAvailable)`,
/// or below just `R − stableAvailable` when `abortScaleDownDelaySeconds` is explicitly
/// positive (so the canary can drain on its deadline; argoproj/argo-rollouts#4898).
/// 0 when no step qualifies.
pub fn desired_weight_on_abort<S: StepView>(
    steps: &[S],
    spec_replicas: i32,
    max_weight: i32,
    stable_available: i32,
    canary_available: i32,
    abort_scale_down_delay_seconds: Option<i32>,
) -> i32 {
    let r = i64::from(spec_replicas.max(0));
    let missing_stable = r - i64::from(stable_available);
    let limit = match abort_scale_down_delay_seconds {
        Some(d) if d > 0 => missing_stable,
        _ => missing_stable.max(i64::from(canary_available)),
    };
    steps
        .iter()
        .rev()
        .filter_map(StepView::set_weight)
        .find(|&w| i64::from(traffic_weight_to_replicas(spec_replicas, w, max_weight)) < limit)
        .unwrap_or(0)
}

/// The `setCanaryScale` in force: the latest one at or before the current step, with
/// traffic routing only, unless it is `matchTrafficWeight`, and not after an abort unless
/// `abortScaleDownDelaySeconds` is explicitly 0.
pub fn active_set_canary_scale<S: StepView>(
    input: &CanaryReplicaInput<'_, S>,
) -> Option<CanaryScale> {
    if !input.traffic_routing {
        return None;
    }
    if input.abort && input.abort_scale_down_delay_seconds != Some(0) {
        return None;
    }
    let idx = step_index(input.current_step_index);
    if idx >= input.steps.len() {
        return None;
    }
    let scs = input.steps[..=idx]
        .iter()
        .rev()
        .find_map(StepView::set_canary_scale)?;
    (!scs.match_traffic_weight).then_some(scs)
}

/// Whether the stable ReplicaSet exists and is not the canary itself.
fn stable_rs_of<S: StepView>(input: &CanaryReplicaInput<'_, S>) -> Option<ReplicaSetCounts> {
    if !input.stable_hash.is_empty() && input.stable_hash == input.current_pod_hash {
        return None;
    }
    input.stable_rs
}

/// Where the canary size comes from (Argo's `GetCanaryReplicasOrWeight`), see the module
/// docs for the order of the rules.
pub fn canary_replicas_or_weight<S: StepView>(input: &CanaryReplicaInput<'_, S>) -> CanarySize {
    let max = clamp_i32(max_weight_of(input.max_traffic_weight));
    if input.promote_full
        || input.stable_hash.is_empty()
        || input.current_pod_hash == input.stable_hash
    {
        return CanarySize::Weight(max);
    }
    if let Some(scs) = active_set_canary_scale(input) {
        if let Some(replicas) = scs.replicas {
            return CanarySize::Replicas(replicas);
        }
        if let Some(weight) = scs.weight {
            return CanarySize::Weight(weight);
        }
    }
    if input.abort
        && input.dynamic_stable_scale
        && let (Some(stable), Some(canary)) = (stable_rs_of(input), input.canary_rs)
    {
        return CanarySize::Weight(desired_weight_on_abort(
            input.steps,
            input.spec_replicas,
            input.max_traffic_weight,
            stable.available_replicas,
            canary.available_replicas,
            input.abort_scale_down_delay_seconds,
        ));
    }
    CanarySize::Weight(current_set_weight(
        input.steps,
        input.current_step_index,
        input.abort,
        input.max_traffic_weight,
    ))
}

// ---------------------------------------------------------------------------------------
// Counts
// ---------------------------------------------------------------------------------------

/// The pods of a ReplicaSet that count as available when deciding how much may be scaled
/// down: its spec when the spec is below availability (the extra pods are about to go) or
/// when availability is ignored, else its available pods. 0 for no ReplicaSet.
pub fn replicas_for_scale_down(rs: Option<ReplicaSetCounts>, ignore_availability: bool) -> i32 {
    match rs {
        None => 0,
        Some(rs) if rs.spec_replicas < rs.available_replicas || ignore_availability => {
            rs.spec_replicas
        }
        Some(rs) => rs.available_replicas,
    }
}

/// Raises a non-zero count to `minPodsPerReplicaSet` (capped at `spec.replicas`).
fn with_min_pods(count: i32, min_pods: Option<i32>, replicas: i32) -> i32 {
    match min_pods {
        Some(min) if count != 0 => count.max(min.min(replicas)),
        _ => count,
    }
}

/// Canary and stable counts for the current reconcile; dispatches on `traffic_routing`
/// to [`traffic_routed_canary_counts`] or [`basic_canary_counts`].
pub fn canary_replica_counts<S: StepView>(
    input: &CanaryReplicaInput<'_, S>,
) -> Result<ReplicaCounts, ReplicaError> {
    if input.traffic_routing {
        traffic_routed_canary_counts(input)
    } else {
        basic_canary_counts(input)
    }
}

/// Counts with a traffic router. The canary gets the `setCanaryScale` replicas, or
/// `ceil(weight·R/max)` raised to `minPodsPerReplicaSet`; the stable stays at R. With
/// `dynamicStableScale` the stable gets the larger of the desired and the current stable
/// traffic share, and after an abort the canary keeps pods for the traffic it still gets;
/// `minPodsPerReplicaSet` then applies to both. maxSurge/maxUnavailable are not used.
pub fn traffic_routed_canary_counts<S: StepView>(
    input: &CanaryReplicaInput<'_, S>,
) -> Result<ReplicaCounts, ReplicaError> {
    let r = input.spec_replicas;
    if r < 0 {
        return Err(ReplicaError::NegativeReplicas { value: r });
    }
    let max = input.max_traffic_weight;
    let min_pods = input.min_pods_per_replica_set;
    let (mut canary, weight) = match canary_replicas_or_weight(input) {
        CanarySize::Replicas(n) => (n.max(0), 0),
        CanarySize::Weight(w) => (
            with_min_pods(traffic_weight_to_replicas(r, w, max), min_pods, r),
            w,
        ),
    };
    if !input.dynamic_stable_scale {
        return Ok(ReplicaCounts { canary, stable: r });
    }
    let stable_weight = clamp_i32(max_weight_of(max) - i64::from(weight));
    let mut stable = traffic_weight_to_replicas(r, stable_weight, max);
    if let Some((canary_weight, current_stable_weight)) = input.current_traffic_weights {
        stable = stable.max(traffic_weight_to_replicas(r, current_stable_weight, max));
        if input.abort {
            canary = canary.max(traffic_weight_to_replicas(r, canary_weight, max));
        }
    }
    Ok(ReplicaCounts {
        canary: with_min_pods(canary, min_pods, r),
        stable: with_min_pods(stable, min_pods, r),
    })
}

/// Scales the drained ReplicaSet down toward `desired` by at most `budget` pods.
fn scale_down_toward(
    drain: Option<ReplicaSetCounts>,
    desired: i64,
    budget: i64,
    current: i64,
) -> i64 {
    match drain {
        Some(rs) if i64::from(rs.spec_replicas) > desired => {
            desired.max(i64::from(rs.spec_replicas) - budget)
        }
        _ => current,
    }
}

/// Keeps `drain + adjust ≤ max_allowed` while keeping availability ≥ `min_available`:
/// first trims the adjusted ReplicaSet (giving back pods its availability needs), then the
/// drained one. Returns `(drain, adjust)`.
fn adjust_within_limits(
    drain: Option<ReplicaSetCounts>,
    adjust: Option<ReplicaSetCounts>,
    mut drain_count: i64,
    mut adjust_count: i64,
    max_allowed: i64,
    min_available: i64,
) -> (i64, i64) {
    let mut available = 0;
    let over = (adjust_count + drain_count - max_allowed).max(0);
    if let Some(d) = drain {
        available += i64::from(d.available_replicas).min(drain_count);
    }
    if let Some(a) = adjust {
        let a_available = i64::from(a.available_replicas);
        adjust_count -= over;
        available += a_available.min(adjust_count);
        let lost_availability = (a_available - adjust_count).max(0);
        let still_needed = (min_available - available).max(0);
        adjust_count += lost_availability.min(still_needed);
        drain_count -= (adjust_count + drain_count - max_allowed).max(0);
    }
    (drain_count, adjust_count)
}

/// Counts without a traffic router: the weight is approximated by pod counts and reached
/// within the maxSurge/maxUnavailable budgets (stable raised first, older ReplicaSets
/// drained first, shrinking limited to what keeps `R − maxUnavailable` available).
pub fn basic_canary_counts<S: StepView>(
    input: &CanaryReplicaInput<'_, S>,
) -> Result<ReplicaCounts, ReplicaError> {
    let (surge, unavailable) =
        resolve_fenceposts(input.max_surge, input.max_unavailable, input.spec_replicas)?;
    let r = i64::from(input.spec_replicas);
    let max_unavailable = if r == 0 {
        0
    } else {
        i64::from(unavailable).min(r)
    };
    let weight = match canary_replicas_or_weight(input) {
        CanarySize::Weight(w) => w,
        CanarySize::Replicas(_) => 0,
    };
    let target =
        approximate_weighted_counts(input.spec_replicas, weight, input.max_traffic_weight, surge);
    let mut desired_canary = i64::from(target.canary);
    let mut desired_stable = i64::from(target.stable);

    let canary_rs = input.canary_rs;
    let stable_rs = stable_rs_of(input);
    let spec = |rs: Option<ReplicaSetCounts>| rs.map_or(0, |rs| i64::from(rs.spec_replicas));
    let mut canary_count = spec(canary_rs);
    let mut stable_count = 0;
    match stable_rs {
        Some(stable) => stable_count = i64::from(stable.spec_replicas),
        None => {
            // No stable (or it is the canary): the rollout just goes to 100 %.
            desired_canary = r;
            desired_stable = 0;
        }
    }

    let max_allowed = r + i64::from(surge);
    let others: i64 = input
        .other_rss
        .iter()
        .map(|rs| i64::from(rs.spec_replicas))
        .sum();
    let total = others + spec(canary_rs) + spec(stable_rs);
    let mut scale_up = max_allowed - total;

    if let Some(stable) = stable_rs {
        let stable_spec = i64::from(stable.spec_replicas);
        if stable_spec < desired_stable && scale_up > 0 {
            if stable_spec + scale_up < desired_stable {
                stable_count = stable_spec + scale_up;
                scale_up = 0;
            } else {
                stable_count = desired_stable;
                scale_up -= desired_stable - stable_spec;
            }
        }
    }
    if let Some(canary) = canary_rs {
        let canary_spec = i64::from(canary.spec_replicas);
        if canary_spec < desired_canary && scale_up > 0 {
            canary_count = desired_canary.min(canary_spec + scale_up);
        }
    }

    let done = |canary: i64, stable: i64| ReplicaCounts {
        canary: clamp_count(canary),
        stable: clamp_count(stable),
    };
    if others > 0 {
        // Older ReplicaSets are drained before the canary or stable shrink.
        return Ok(done(canary_count, stable_count));
    }

    let min_available = r - max_unavailable;
    let increasing = canary_rs.is_none_or(|c| desired_canary >= i64::from(c.spec_replicas));
    let counted = i64::from(replicas_for_scale_down(canary_rs, !increasing))
        + i64::from(replicas_for_scale_down(stable_rs, increasing));
    if counted <= min_available {
        return Ok(done(canary_count, stable_count));
    }
    let budget = counted - min_available;
    if !increasing {
        canary_count = scale_down_toward(canary_rs, desired_canary, budget, canary_count);
        (canary_count, stable_count) = adjust_within_limits(
            canary_rs,
            stable_rs,
            canary_count,
            stable_count,
            max_allowed,
            min_available,
        );
    } else if stable_rs.is_some() {
        stable_count = scale_down_toward(stable_rs, desired_stable, budget, stable_count);
        (stable_count, canary_count) = adjust_within_limits(
            stable_rs,
            canary_rs,
            stable_count,
            canary_count,
            max_allowed,
            min_available,
        );
    }
    Ok(done(canary_count, stable_count))
}

// ---------------------------------------------------------------------------------------
// Step completion
// ---------------------------------------------------------------------------------------

impl ProgressThreshold {
    /// Whether `available` pods out of `desired` meet the threshold. Always met when
    /// nothing is desired.
    pub fn is_met(self, available: i32, desired: i32) -> bool {
        if desired <= 0 {
            return true;
        }
        let available = i64::from(available);
        let desired = i64::from(desired);
        match self {
            ProgressThreshold::Percent(p) => available * 100 >= i64::from(p) * desired,
            ProgressThreshold::Pods(n) => available >= i64::from(n).min(desired),
        }
    }
}

/// Whether `available` of `desired` pods meet `threshold` (the default, 100 %, when unset).
pub fn replica_progress_threshold_met(
    threshold: Option<ProgressThreshold>,
    available: i32,
    desired: i32,
) -> bool {
    threshold.unwrap_or_default().is_met(available, desired)
}

/// Whether a ReplicaSet exists, has `desired` as its spec and is available enough:
/// exactly `desired` available pods without a threshold, or the threshold met.
pub fn all_desired_available(
    rs: Option<ReplicaSetCounts>,
    desired: i32,
    threshold: Option<ProgressThreshold>,
) -> bool {
    let Some(rs) = rs else { return false };
    if rs.spec_replicas != desired {
        return false;
    }
    match threshold {
        None => rs.available_replicas == desired,
        Some(t) => t.is_met(rs.available_replicas, desired),
    }
}

/// The "step reached" check for `setWeight`/`setCanaryScale` steps: computes the desired
/// counts with [`canary_replica_counts`] and checks them with [`replica_sets_at_desired`].
pub fn at_desired_replica_counts<S: StepView>(
    input: &CanaryReplicaInput<'_, S>,
    check: &AtDesiredCheck,
) -> Result<bool, ReplicaError> {
    let desired = canary_replica_counts(input)?;
    let older_available = input
        .other_rss
        .iter()
        .map(|rs| i64::from(rs.available_replicas))
        .sum::<i64>();
    Ok(replica_sets_at_desired(
        desired,
        input.canary_rs,
        stable_rs_of(input),
        check,
        input.traffic_routing,
        input.dynamic_stable_scale,
        clamp_i32(older_available),
    ))
}

/// Whether the ReplicaSets have reached `desired`: the canary is at its desired count and
/// available (see [`all_desired_available`]); the stable's spec and created pods equal its
/// desired count (not checked with traffic routing and `dynamicStableScale`); without
/// traffic routing, the older ReplicaSets have no available pods (`older_available`).
pub fn replica_sets_at_desired(
    desired: ReplicaCounts,
    canary_rs: Option<ReplicaSetCounts>,
    stable_rs: Option<ReplicaSetCounts>,
    check: &AtDesiredCheck,
    traffic_routing: bool,
    dynamic_stable_scale: bool,
    older_available: i32,
) -> bool {
    if !all_desired_available(canary_rs, desired.canary, check.replica_progress_threshold) {
        return false;
    }
    if !traffic_routing || !dynamic_stable_scale {
        let Some(stable) = stable_rs else {
            return false;
        };
        let created = check.stable_status_replicas.unwrap_or(stable.spec_replicas);
        if stable.spec_replicas != desired.stable || created != desired.stable {
            return false;
        }
    }
    traffic_routing || older_available == 0
}

// ---------------------------------------------------------------------------------------
// Blue-green
// ---------------------------------------------------------------------------------------

/// `spec.replicas` for the new ReplicaSet of a blue-green rollout: R, or
/// `previewReplicaCount` while another ReplicaSet is active. R again on a full promotion,
/// when no active ReplicaSet exists or it is the new one, and once the preview is allowed
/// to scale up (`scaleUpPreviewCheckPoint`, not paused) — unless the new ReplicaSet is not
/// the current pod hash (a newer update restarts at the preview count).
pub fn bluegreen_new_rs_replicas(input: &BlueGreenReplicaInput<'_>) -> i32 {
    let full = input.spec_replicas.max(0);
    if input.promote_full {
        return full;
    }
    let Some(preview) = input.preview_replica_count else {
        return full;
    };
    let preview = preview.max(0);
    if input.active_selector.is_empty()
        || !input.active_rs_exists
        || input.active_selector == input.new_rs_hash
    {
        return full;
    }
    if input.new_rs_hash != input.current_pod_hash {
        return preview;
    }
    if !input.paused && input.scale_up_preview_check_point {
        return full;
    }
    preview
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, Copy, Default)]
    struct Step {
        weight: Option<i32>,
        scale: Option<CanaryScale>,
    }

    impl StepView for Step {
        fn set_weight(&self) -> Option<i32> {
            self.weight
        }
        fn set_canary_scale(&self) -> Option<CanaryScale> {
            self.scale
        }
    }

    fn w(weight: i32) -> Step {
        Step {
            weight: Some(weight),
            scale: None,
        }
    }

    fn rs(spec: i32, available: i32) -> ReplicaSetCounts {
        ReplicaSetCounts {
            spec_replicas: spec,
            available_replicas: available,
        }
    }

    struct Fixture {
        surge: IntOrPercent,
        unavailable: IntOrPercent,
        steps: Vec<Step>,
        others: Vec<ReplicaSetCounts>,
    }

    impl Fixture {
        fn new(surge: IntOrPercent, unavailable: IntOrPercent, steps: Vec<Step>) -> Self {
            Fixture {
                surge,
                unavailable,
                steps,
                others: Vec::new(),
            }
        }

        fn input(
            &self,
            replicas: i32,
            stable: Option<ReplicaSetCounts>,
            canary: Option<ReplicaSetCounts>,
        ) -> CanaryReplicaInput<'_, Step> {
            CanaryReplicaInput {
                spec_replicas: replicas,
                max_surge: &self.surge,
                max_unavailable: &self.unavailable,
                steps: &self.steps,
                traffic_routing: false,
                max_traffic_weight: 100,
                dynamic_stable_scale: false,
                min_pods_per_replica_set: None,
                abort_scale_down_delay_seconds: None,
                current_step_index: None,
                stable_hash: "stable",
                current_pod_hash: "canary",
                abort: false,
                promote_full: false,
                stable_rs: stable,
                canary_rs: canary,
                other_rss: &self.others,
                current_traffic_weights: None,
            }
        }
    }

    fn counts(canary: i32, stable: i32) -> ReplicaCounts {
        ReplicaCounts { canary, stable }
    }

    #[test]
    fn fenceposts() {
        let p = IntOrPercent::percent;
        let unset = IntOrPercent::Int(0);
        assert_eq!(resolve_fenceposts(&p(0), &p(0), 0), Ok((0, 1)));
        assert_eq!(resolve_fenceposts(&p(39), &p(39), 10), Ok((4, 3)));
        assert_eq!(resolve_fenceposts(&unset, &p(39), 10), Ok((0, 3)));
        assert_eq!(resolve_fenceposts(&p(39), &unset, 10), Ok((4, 0)));
        assert_eq!(resolve_fenceposts(&unset, &unset, 10), Ok((0, 1)));
        assert_eq!(
            resolve_fenceposts(&IntOrPercent::Str("oops".into()), &p(39), 10),
            Err(ReplicaError::InvalidMaxSurge {
                value: "oops".into()
            })
        );
        assert_eq!(
            resolve_fenceposts(&p(55), &IntOrPercent::Str("urg".into()), 10),
            Err(ReplicaError::InvalidMaxUnavailable {
                value: "urg".into()
            })
        );
        assert_eq!(
            resolve_fenceposts(&IntOrPercent::Int(-1), &unset, 10),
            Err(ReplicaError::NegativeMaxSurge { value: -1 })
        );
        assert_eq!(
            resolve_fenceposts(&unset, &unset, -1),
            Err(ReplicaError::NegativeReplicas { value: -1 })
        );
    }

    #[test]
    fn surge_and_unavailable_budgets() {
        let one = IntOrPercent::Int(1);
        let c = StrategyKind::Canary;
        assert_eq!(max_surge(c, &IntOrPercent::Int(5), &one, 10), Ok(5));
        assert_eq!(max_surge(c, &IntOrPercent::percent(50), &one, 10), Ok(5));
        assert_eq!(max_surge(StrategyKind::BlueGreen, &one, &one, 10), Ok(0));
        assert_eq!(max_unavailable(c, &one, &IntOrPercent::Int(5), 10), Ok(5));
        assert_eq!(max_unavailable(c, &one, &IntOrPercent::Int(10), 5), Ok(5));
        assert_eq!(max_unavailable(c, &one, &IntOrPercent::Int(10), 0), Ok(0));
        assert_eq!(
            max_unavailable(c, &one, &IntOrPercent::percent(100), 5),
            Ok(5)
        );
        assert_eq!(
            max_unavailable(StrategyKind::BlueGreen, &one, &one, 1),
            Ok(0)
        );
    }

    #[test]
    fn approximation_table() {
        // (R, w, S) -> (canary, stable), from Argo's TestApproximateWeightedNewStableReplicaCounts.
        let table: &[(i32, i32, i32, i32, i32)] = &[
            (0, 50, 1, 0, 0),
            (1, 0, 0, 0, 1),
            (1, 1, 0, 0, 1),
            (1, 49, 0, 0, 1),
            (1, 50, 0, 1, 0),
            (1, 99, 0, 1, 0),
            (1, 1, 1, 1, 1),
            (1, 100, 1, 1, 0),
            (2, 1, 0, 1, 1),
            (2, 99, 0, 1, 1),
            (2, 1, 1, 1, 2),
            (2, 99, 1, 2, 1),
            (3, 10, 0, 1, 2),
            (3, 50, 0, 2, 1),
            (3, 10, 1, 1, 3),
            (3, 33, 1, 1, 2),
            (3, 49, 1, 2, 2),
            (10, 14, 0, 1, 9),
            (10, 15, 0, 2, 8),
            (10, 99, 0, 9, 1),
            (10, 1, 1, 1, 10),
            (10, 18, 1, 2, 9),
            (10, 23, 1, 2, 8),
            (10, 24, 1, 3, 8),
            (10, 99, 1, 10, 1),
            (10, 100, 1, 10, 0),
        ];
        for &(r, weight, s, c, st) in table {
            assert_eq!(
                approximate_weighted_counts(r, weight, 100, s),
                counts(c, st),
                "R={r} w={weight} S={s}"
            );
        }
    }

    #[test]
    fn basic_canary_rows() {
        // Rows of TestCalculateReplicaCountsForCanary not in the conformance vectors.
        let f = Fixture::new(IntOrPercent::Int(2), IntOrPercent::Int(0), vec![w(20)]);
        assert_eq!(
            canary_replica_counts(&f.input(10, Some(rs(10, 10)), Some(rs(0, 0)))),
            Ok(counts(2, 10))
        );
        let f = Fixture::new(IntOrPercent::Int(2), IntOrPercent::Int(1), vec![w(50)]);
        assert_eq!(
            canary_replica_counts(&f.input(10, Some(rs(10, 10)), Some(rs(0, 0)))),
            Ok(counts(2, 9))
        );
        let mut f = Fixture::new(IntOrPercent::Int(1), IntOrPercent::Int(0), vec![w(30)]);
        f.others.push(rs(3, 3));
        assert_eq!(
            canary_replica_counts(&f.input(10, Some(rs(1, 1)), Some(rs(0, 0)))),
            Ok(counts(1, 7))
        );
        let f = Fixture::new(IntOrPercent::Int(1), IntOrPercent::Int(0), vec![w(100)]);
        assert_eq!(
            canary_replica_counts(&f.input(10, Some(rs(10, 2)), Some(rs(10, 8)))),
            Ok(counts(9, 2))
        );
        let f = Fixture::new(IntOrPercent::Int(0), IntOrPercent::Int(1), vec![w(5)]);
        assert_eq!(
            canary_replica_counts(&f.input(10, Some(rs(9, 9)), Some(rs(0, 0)))),
            Ok(counts(1, 9))
        );
        let f = Fixture::new(IntOrPercent::Int(0), IntOrPercent::Int(2), vec![w(99)]);
        assert_eq!(
            canary_replica_counts(&f.input(3, Some(rs(1, 1)), Some(rs(0, 0)))),
            Ok(counts(2, 1))
        );
        let f = Fixture::new(IntOrPercent::Int(1), IntOrPercent::Int(0), vec![w(0)]);
        assert_eq!(
            canary_replica_counts(&f.input(4, Some(rs(0, 0)), Some(rs(4, 4)))),
            Ok(counts(4, 1))
        );
        let f = Fixture::new(IntOrPercent::Int(4), IntOrPercent::Int(4), vec![w(1)]);
        let mut input = f.input(4, Some(rs(4, 4)), Some(rs(0, 0)));
        input.promote_full = true;
        assert_eq!(canary_replica_counts(&input), Ok(counts(4, 0)));
        // New deployment: the stable is the canary itself.
        let f = Fixture::new(IntOrPercent::Int(0), IntOrPercent::Int(1), vec![w(10)]);
        let mut input = f.input(10, None, Some(rs(10, 0)));
        input.stable_hash = "canary";
        assert_eq!(canary_replica_counts(&input), Ok(counts(10, 0)));
    }

    #[test]
    fn traffic_routed_rows() {
        let f = Fixture::new(
            IntOrPercent::Int(0),
            IntOrPercent::Int(0),
            vec![Step {
                weight: Some(100),
                scale: Some(CanaryScale {
                    replicas: None,
                    weight: Some(200),
                    match_traffic_weight: false,
                }),
            }],
        );
        let mut input = f.input(4, None, None);
        input.traffic_routing = true;
        assert_eq!(canary_replica_counts(&input), Ok(counts(8, 4)));
        // Aborted with abortScaleDownDelaySeconds: 0 keeps the setCanaryScale size.
        let f = Fixture::new(
            IntOrPercent::Int(0),
            IntOrPercent::Int(0),
            vec![Step {
                weight: None,
                scale: Some(CanaryScale {
                    replicas: Some(1),
                    weight: None,
                    match_traffic_weight: false,
                }),
            }],
        );
        let mut input = f.input(1, None, None);
        input.traffic_routing = true;
        input.abort = true;
        input.abort_scale_down_delay_seconds = Some(0);
        assert_eq!(canary_replica_counts(&input), Ok(counts(1, 1)));
        input.abort_scale_down_delay_seconds = Some(30);
        assert_eq!(canary_replica_counts(&input), Ok(counts(0, 1)));
        // Dynamic stable scale: desired canary 20 > actual 10.
        let f = Fixture::new(IntOrPercent::Int(0), IntOrPercent::Int(1), vec![w(20)]);
        let mut input = f.input(10, None, None);
        input.traffic_routing = true;
        input.dynamic_stable_scale = true;
        input.current_traffic_weights = Some((10, 90));
        assert_eq!(canary_replica_counts(&input), Ok(counts(2, 9)));
    }

    #[test]
    fn set_weight_and_canary_size() {
        let steps = [w(10)];
        assert_eq!(current_set_weight(&steps, Some(1), false, 100), 100);
        assert_eq!(current_set_weight(&steps, Some(0), false, 100), 10);
        assert_eq!(current_set_weight(&steps, Some(0), true, 100), 0);
        assert_eq!(current_set_weight::<Step>(&[], None, false, 100), 100);
        assert_eq!(
            current_set_weight(&[Step::default(), w(5)], Some(0), false, 100),
            0
        );
        assert_eq!(current_set_weight(&steps, Some(-3), false, 100), 10);

        let scs = |replicas, weight| Step {
            weight: None,
            scale: Some(CanaryScale {
                replicas,
                weight,
                match_traffic_weight: false,
            }),
        };
        let f = Fixture::new(
            IntOrPercent::Int(1),
            IntOrPercent::Int(1),
            vec![w(10), scs(None, Some(20))],
        );
        let mut input = f.input(10, None, None);
        input.traffic_routing = true;
        input.current_step_index = Some(1);
        input.current_pod_hash = "";
        input.stable_hash = "stable-rs";
        assert_eq!(canary_replicas_or_weight(&input), CanarySize::Weight(20));
        let f = Fixture::new(
            IntOrPercent::Int(1),
            IntOrPercent::Int(1),
            vec![w(10), scs(Some(5), None)],
        );
        let mut input = f.input(10, None, None);
        input.traffic_routing = true;
        input.current_step_index = Some(1);
        input.current_pod_hash = "";
        input.stable_hash = "stable-rs";
        assert_eq!(canary_replicas_or_weight(&input), CanarySize::Replicas(5));
        input.stable_hash = "";
        input.abort = true;
        assert_eq!(canary_replicas_or_weight(&input), CanarySize::Weight(100));
    }

    #[test]
    fn abort_walk() {
        let steps = [w(20), w(60)];
        // max(10 - 4, 1) = 6: 60% needs 6 pods (not below), 20% needs 2.
        assert_eq!(desired_weight_on_abort(&steps, 10, 100, 4, 1, None), 20);
        // Canary still has 7 available pods: 60% (6 pods) qualifies.
        assert_eq!(desired_weight_on_abort(&steps, 10, 100, 4, 7, None), 60);
        // Explicit positive delay: only the missing stable pods count (#4898).
        assert_eq!(desired_weight_on_abort(&steps, 10, 100, 4, 7, Some(30)), 20);
        // Stable fully back: nothing qualifies.
        assert_eq!(desired_weight_on_abort(&steps, 10, 100, 10, 0, None), 0);
        assert_eq!(desired_weight_on_abort(&steps, 0, 100, 0, 0, None), 0);
    }

    #[test]
    fn scale_down_counting() {
        assert_eq!(replicas_for_scale_down(None, false), 0);
        assert_eq!(replicas_for_scale_down(Some(rs(3, 5)), false), 3);
        assert_eq!(replicas_for_scale_down(Some(rs(3, 2)), true), 3);
        assert_eq!(replicas_for_scale_down(Some(rs(3, 2)), false), 2);
        assert_eq!(traffic_weight_to_replicas(10, 0, 100), 0);
        assert_eq!(traffic_weight_to_replicas(10, 33, 100), 4);
        assert_eq!(traffic_weight_to_replicas(10, 99, 100), 10);
        assert_eq!(traffic_weight_to_replicas(10, 5, 1000), 1);
    }

    #[test]
    fn thresholds() {
        assert!(ProgressThreshold::Percent(80).is_met(4, 5));
        assert!(!ProgressThreshold::Percent(80).is_met(3, 5));
        assert!(!replica_progress_threshold_met(None, 4, 5));
        assert!(replica_progress_threshold_met(None, 5, 5));
        assert!(ProgressThreshold::Pods(3).is_met(3, 5));
        assert!(ProgressThreshold::Pods(9).is_met(5, 5));
        assert!(!all_desired_available(None, 0, None));
        assert!(all_desired_available(Some(rs(5, 5)), 5, None));
        assert!(!all_desired_available(Some(rs(5, 4)), 5, None));
        assert!(all_desired_available(
            Some(rs(5, 4)),
            5,
            Some(ProgressThreshold::Percent(80))
        ));
        assert!(!all_desired_available(
            Some(rs(4, 4)),
            5,
            Some(ProgressThreshold::Percent(80))
        ));
    }

    #[test]
    fn at_desired_rows() {
        // TestAtDesiredReplicaCountsForCanary (basic canary, setCanaryScale ignored).
        let scs = CanaryScale {
            replicas: Some(2),
            weight: Some(2),
            match_traffic_weight: false,
        };
        let step = |weight| Step {
            weight: Some(weight),
            scale: Some(scs),
        };
        let f = Fixture::new(IntOrPercent::Int(1), IntOrPercent::Int(1), vec![step(50)]);
        let check = |stable_created| AtDesiredCheck {
            stable_status_replicas: Some(stable_created),
            replica_progress_threshold: None,
        };
        let input = f.input(4, Some(rs(2, 2)), Some(rs(2, 2)));
        assert_eq!(at_desired_replica_counts(&input, &check(2)), Ok(true));
        assert_eq!(at_desired_replica_counts(&input, &check(3)), Ok(false));
        let input = f.input(4, Some(rs(2, 2)), Some(rs(2, 1)));
        assert_eq!(at_desired_replica_counts(&input, &check(2)), Ok(false));
        let f = Fixture::new(IntOrPercent::Int(1), IntOrPercent::Int(1), vec![step(75)]);
        let input = f.input(4, Some(rs(2, 2)), Some(rs(3, 3)));
        assert_eq!(at_desired_replica_counts(&input, &check(2)), Ok(false));
        let input = f.input(4, Some(rs(1, 0)), Some(rs(3, 3)));
        assert_eq!(at_desired_replica_counts(&input, &check(1)), Ok(true));
    }

    #[test]
    fn bluegreen_preview() {
        let base = BlueGreenReplicaInput {
            spec_replicas: 10,
            preview_replica_count: Some(1),
            promote_full: false,
            new_rs_hash: "foo",
            current_pod_hash: "foo",
            active_selector: "bar",
            active_rs_exists: true,
            paused: false,
            scale_up_preview_check_point: false,
        };
        assert_eq!(bluegreen_new_rs_replicas(&base), 1);
        let no_active = BlueGreenReplicaInput {
            active_selector: "",
            ..base
        };
        assert_eq!(bluegreen_new_rs_replicas(&no_active), 10);
        let active_is_new = BlueGreenReplicaInput {
            active_selector: "foo",
            ..base
        };
        assert_eq!(bluegreen_new_rs_replicas(&active_is_new), 10);
        let newer = BlueGreenReplicaInput {
            current_pod_hash: "baz",
            scale_up_preview_check_point: true,
            ..base
        };
        assert_eq!(bluegreen_new_rs_replicas(&newer), 1);
        let ready = BlueGreenReplicaInput {
            scale_up_preview_check_point: true,
            ..base
        };
        assert_eq!(bluegreen_new_rs_replicas(&ready), 10);
        let paused = BlueGreenReplicaInput {
            paused: true,
            ..ready
        };
        assert_eq!(bluegreen_new_rs_replicas(&paused), 1);
        let full = BlueGreenReplicaInput {
            promote_full: true,
            ..base
        };
        assert_eq!(bluegreen_new_rs_replicas(&full), 10);
    }

    fn any_int_or_percent() -> impl Strategy<Value = IntOrPercent> {
        prop_oneof![
            any::<i32>().prop_map(IntOrPercent::Int),
            (0i32..300).prop_map(IntOrPercent::percent),
            ".{0,4}".prop_map(IntOrPercent::Str),
        ]
    }

    fn any_rs() -> impl Strategy<Value = Option<ReplicaSetCounts>> {
        prop::option::of((any::<i32>(), any::<i32>()).prop_map(|(s, a)| rs(s, a)))
    }

    fn any_step() -> impl Strategy<Value = Step> {
        (
            prop::option::of(any::<i32>()),
            prop::option::of((
                prop::option::of(any::<i32>()),
                prop::option::of(any::<i32>()),
                any::<bool>(),
            )),
        )
            .prop_map(|(weight, scale)| Step {
                weight,
                scale: scale.map(|(replicas, weight, match_traffic_weight)| CanaryScale {
                    replicas,
                    weight,
                    match_traffic_weight,
                }),
            })
    }

    fn small_rs(max: i32) -> impl Strategy<Value = Option<ReplicaSetCounts>> {
        prop::option::of((0..=max, 0..=max).prop_map(|(s, a)| rs(s, a)))
    }

    proptest! {
        #[test]
        fn approximation_sums_to_r_or_r_plus_one(r in 0i32..2000, weight in 0i32..=100, surge in 0i32..3) {
            let c = approximate_weighted_counts(r, weight, 100, surge);
            let sum = c.canary + c.stable;
            prop_assert!(c.canary >= 0 && c.stable >= 0);
            if r == 0 {
                prop_assert_eq!(sum, 0);
            } else if surge == 0 {
                prop_assert_eq!(sum, r);
            } else {
                prop_assert!(sum == r || sum == r + 1);
            }
            if weight > 0 && weight < 100 && (r >= 2 || (r >= 1 && surge > 0)) {
                prop_assert!(c.canary >= 1 && c.stable >= 1, "{:?}", c);
            }
        }

        #[test]
        fn approximation_never_panics(r in any::<i32>(), weight in any::<i32>(), max in any::<i32>(), surge in any::<i32>()) {
            let c = approximate_weighted_counts(r, weight, max, surge);
            prop_assert!(c.canary >= 0 && c.stable >= 0);
        }

        #[test]
        fn arbitrary_inputs_never_panic(
            replicas in any::<i32>(),
            surge in any_int_or_percent(),
            unavailable in any_int_or_percent(),
            steps in prop::collection::vec(any_step(), 0..4),
            traffic_routing in any::<bool>(),
            max_weight in any::<i32>(),
            dynamic in any::<bool>(),
            min_pods in prop::option::of(any::<i32>()),
            delay in prop::option::of(any::<i32>()),
            idx in prop::option::of(any::<i32>()),
            flags in (any::<bool>(), any::<bool>(), any::<bool>()),
            stable in any_rs(),
            canary in any_rs(),
            others in prop::collection::vec((any::<i32>(), any::<i32>()).prop_map(|(s, a)| rs(s, a)), 0..3),
            weights in prop::option::of((any::<i32>(), any::<i32>())),
        ) {
            let input = CanaryReplicaInput {
                spec_replicas: replicas,
                max_surge: &surge,
                max_unavailable: &unavailable,
                steps: &steps,
                traffic_routing,
                max_traffic_weight: max_weight,
                dynamic_stable_scale: dynamic,
                min_pods_per_replica_set: min_pods,
                abort_scale_down_delay_seconds: delay,
                current_step_index: idx,
                stable_hash: if flags.0 { "stable" } else { "" },
                current_pod_hash: "canary",
                abort: flags.1,
                promote_full: flags.2,
                stable_rs: stable,
                canary_rs: canary,
                other_rss: &others,
                current_traffic_weights: weights,
            };
            if let Ok(c) = canary_replica_counts(&input) {
                prop_assert!(c.canary >= 0 && c.stable >= 0);
            }
            let _ = at_desired_replica_counts(&input, &AtDesiredCheck::default());
            let _ = canary_replicas_or_weight(&input);
        }

        #[test]
        fn basic_counts_stay_within_budgets(
            replicas in 0i32..50,
            surge in 0i32..5,
            unavailable in 0i32..5,
            weight in 0i32..=100,
            stable in small_rs(60),
            canary in small_rs(60),
        ) {
            let surge_v = IntOrPercent::Int(surge);
            let unavailable_v = IntOrPercent::Int(unavailable);
            let steps = [w(weight)];
            let input = CanaryReplicaInput {
                spec_replicas: replicas,
                max_surge: &surge_v,
                max_unavailable: &unavailable_v,
                steps: &steps,
                traffic_routing: false,
                max_traffic_weight: 100,
                dynamic_stable_scale: false,
                min_pods_per_replica_set: None,
                abort_scale_down_delay_seconds: None,
                current_step_index: None,
                stable_hash: "stable",
                current_pod_hash: "canary",
                abort: false,
                promote_full: false,
                stable_rs: stable,
                canary_rs: canary,
                other_rss: &[],
                current_traffic_weights: None,
            };
            let c = canary_replica_counts(&input).unwrap();
            let (s, _) = resolve_fenceposts(&surge_v, &unavailable_v, replicas).unwrap();
            let bound = |current: Option<ReplicaSetCounts>| {
                (replicas + s).max(current.map_or(0, |rs| rs.spec_replicas))
            };
            prop_assert!(c.canary >= 0 && c.canary <= bound(canary), "{:?}", c);
            prop_assert!(c.stable >= 0 && c.stable <= bound(stable), "{:?}", c);
        }

        #[test]
        fn traffic_routed_counts_are_bounded(
            replicas in 0i32..1000,
            weight in 0i32..=100,
            current in 0i32..=100,
            min_pods in prop::option::of(0i32..20),
            dynamic in any::<bool>(),
            abort in any::<bool>(),
        ) {
            let zero = IntOrPercent::Int(0);
            let steps = [w(weight)];
            let input = CanaryReplicaInput {
                spec_replicas: replicas,
                max_surge: &zero,
                max_unavailable: &zero,
                steps: &steps,
                traffic_routing: true,
                max_traffic_weight: 100,
                dynamic_stable_scale: dynamic,
                min_pods_per_replica_set: min_pods,
                abort_scale_down_delay_seconds: None,
                current_step_index: None,
                stable_hash: "stable",
                current_pod_hash: "canary",
                abort,
                promote_full: false,
                stable_rs: None,
                canary_rs: None,
                other_rss: &[],
                current_traffic_weights: Some((current, 100 - current)),
            };
            let c = canary_replica_counts(&input).unwrap();
            prop_assert!(c.canary >= 0 && c.canary <= replicas, "{:?}", c);
            prop_assert!(c.stable >= 0 && c.stable <= replicas, "{:?}", c);
        }
    }
}
