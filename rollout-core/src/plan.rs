//! The step table a reviewer wants before applying a canary `Rollout`.
//!
//! [`plan`] validates a rollout and lists, for every canary step, the traffic weight in
//! force, the canary and stable pod counts once the step is reached, what the step waits
//! for (a pause, an analysis run, an experiment, a plugin) and whether the background
//! analysis runs, followed by a final "promoted" row. [`Plan`] renders as an aligned text
//! table with [`std::fmt::Display`].
//!
//! # How the counts are computed
//!
//! The counts come from the same arithmetic the canary machine uses
//! ([`replicas::canary_replica_counts`]), for an update from a fully available stable
//! ReplicaSet of `spec.replicas` pods to a new one:
//!
//! - The first step starts from the stable at `R` pods, all available, and no canary pod.
//! - At each step the function is applied with the step as the current step, the two
//!   ReplicaSets are set to the counts it returns and taken as fully available, and this
//!   is repeated until the counts stop changing. That fixed point is the steady state the
//!   ReplicaSets settle in once the step is reached, and the next step starts from it (as
//!   the controller does). Without traffic routing this is where `maxSurge` and
//!   `maxUnavailable` matter: the weight is approximated by pod counts, reached within
//!   those budgets. With traffic routing the canary gets `ceil(weight · R / max)` pods (or
//!   the `setCanaryScale` in force) and the stable stays at `R` unless
//!   `dynamicStableScale` shrinks it.
//! - The last row is the promotion: the canary becomes the stable with `R` pods and the
//!   old stable is scaled to 0 (after `scaleDownDelaySeconds` with traffic routing).
//!
//! The weight shown for a step is the last `setWeight` at or before it (0 before the
//! first one), which is what the router holds, or what the pod counts approximate,
//! once the step is reached.
//!
//! # Scope
//!
//! Plans cover the canary strategy only: a blue-green rollout has no steps to tabulate,
//! and [`plan`] returns [`PlanError::BlueGreen`] for it rather than a one-row table.
//!
//! ```
//! use rollout_core::plan::plan;
//! use rollout_core::spec::Rollout;
//!
//! let rollout = Rollout::from_yaml(
//!     "apiVersion: argoproj.io/v1alpha1
//! kind: Rollout
//! metadata: {name: web}
//! spec:
//!   replicas: 10
//!   selector: {matchLabels: {app: web}}
//!   template:
//!     metadata: {labels: {app: web}}
//!     spec: {containers: [{name: web, image: web:2}]}
//!   strategy:
//!     canary:
//!       steps:
//!       - setWeight: 10
//!       - pause: {duration: 3m}
//!       - setWeight: 50
//! ",
//! )
//! .unwrap();
//! let plan = plan(&rollout).unwrap();
//! let first = &plan.rows[0];
//! assert_eq!((first.weight, first.canary_replicas, first.stable_replicas), (10, 1, 9));
//! println!("{plan}");
//! ```

use std::fmt;

pub mod bluegreen;
pub mod flagger;

use crate::intstr::IntOrPercent;
use crate::replicas::{self, CanaryReplicaInput, ReplicaError, ReplicaSetCounts};
use crate::spec::{
    CanaryStep, CanaryStrategy, ExperimentStep, Rollout, RolloutAnalysis, SetCanaryScale,
    TrafficRouting, ValidationErrors,
};

/// Why a rollout cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The rollout breaks rules Argo enforces; each error names its field path, e.g.
    /// `spec.strategy.canary.steps[3].setWeight: must be 0..=100, got 120`.
    #[error("invalid Rollout:\n{}", indent(.0))]
    Invalid(#[from] ValidationErrors),
    /// The rollout uses the blue-green strategy: it has stages, not steps; plan it with
    /// [`bluegreen::plan_blue_green`].
    #[error(
        "spec.strategy.blueGreen: a blue-green rollout has stages, not steps (plan it with plan_blue_green)"
    )]
    BlueGreen,
    /// The rollout has no canary strategy at all.
    #[error("spec.strategy.canary: required for a plan")]
    NoCanary,
    /// [`bluegreen::plan_blue_green`] was asked for a rollout without a blue-green strategy.
    #[error("spec.strategy.blueGreen: required for a blue-green plan")]
    NoBlueGreen,
    /// The replica arithmetic rejected the surge or unavailability settings.
    #[error("{path}: {source}")]
    Replicas {
        /// The field the error concerns.
        path: &'static str,
        /// The arithmetic's error.
        source: ReplicaError,
    },
}

fn indent(errors: &ValidationErrors) -> String {
    let mut out = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("  ");
        out.push_str(&e.to_string());
    }
    out
}

impl PlanError {
    /// The field paths the error concerns (one per validation error).
    pub fn paths(&self) -> Vec<&str> {
        match self {
            PlanError::Invalid(errors) => errors.iter().map(|e| e.path.as_str()).collect(),
            PlanError::BlueGreen | PlanError::NoBlueGreen => vec!["spec.strategy.blueGreen"],
            PlanError::NoCanary => vec!["spec.strategy.canary"],
            PlanError::Replicas { path, .. } => vec![path],
        }
    }
}

/// How long a step pauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanPause {
    /// A timed pause of this many seconds.
    Seconds(i64),
    /// A pause without a duration: it lasts until the rollout is promoted.
    UntilPromoted,
}

/// What a step waits for besides its pods, before the next step starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanGate {
    /// An AnalysisRun from these templates must succeed.
    Analysis {
        /// The `templateName`s, in order.
        templates: Vec<String>,
    },
    /// An Experiment must succeed.
    Experiment {
        /// The experiment's ReplicaSet template names.
        templates: Vec<String>,
        /// The template names of its analyses.
        analyses: Vec<String>,
        /// Its `duration`, as written.
        duration: Option<String>,
    },
    /// A step plugin must report success.
    Plugin {
        /// The plugin name.
        name: String,
    },
}

/// The background analysis of a canary (`spec.strategy.canary.analysis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanBackground {
    /// The `templateName`s, in order.
    pub templates: Vec<String>,
    /// The 0-based step index from which the run exists (`startingStep`, default 0).
    pub starting_step: usize,
}

/// One row of a [`Plan`]: a canary step, or the final promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// 0-based index of the step in `spec.strategy.canary.steps`; for the promotion row,
    /// the number of steps (Argo's `status.currentStepIndex` once all steps are done).
    pub index: usize,
    /// Whether this is the final promotion row rather than a step.
    pub promoted: bool,
    /// A short description: `setWeight: 10`, `pause: 3m`, `pause (until promoted)`,
    /// `analysis: success-rate, latency`, `setCanaryScale: replicas 3`, ...
    pub step: String,
    /// The traffic weight in force once the step is reached: the last `setWeight` at or
    /// before it (out of [`Plan::max_traffic_weight`]).
    pub weight: i32,
    /// Canary pods once the step is reached and the ReplicaSets have settled.
    pub canary_replicas: i32,
    /// Stable pods once the step is reached and the ReplicaSets have settled.
    pub stable_replicas: i32,
    /// The step's pause, for `pause` steps.
    pub pause: Option<PlanPause>,
    /// What the step waits for, for `analysis`, `experiment` and `plugin` steps.
    pub gate: Option<PlanGate>,
    /// Whether the step completes only once the ReplicaSets are at their counts
    /// (`setWeight` and `setCanaryScale` steps).
    pub waits_for_pods: bool,
    /// Whether the background analysis runs while this step is current.
    pub background_analysis: bool,
}

/// The plan of a canary rollout: its settings and one [`PlanRow`] per step plus the
/// promotion. See the [module docs](self) for how the numbers are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `metadata.name` (or `generateName`), if set.
    pub name: Option<String>,
    /// `spec.replicas` (default 1).
    pub replicas: i32,
    /// `maxSurge` as written, or Argo's default `25%`.
    pub max_surge: IntOrPercent,
    /// `maxSurge` resolved to pods (rounded up); not used with traffic routing.
    pub max_surge_pods: i32,
    /// `maxUnavailable` as written, or Argo's default `25%`.
    pub max_unavailable: IntOrPercent,
    /// `maxUnavailable` resolved to pods (rounded down); not used with traffic routing.
    pub max_unavailable_pods: i32,
    /// The traffic routers by name (`istio`, `nginx, smi`, `plugin argoproj-labs/gatewayAPI`),
    /// or `None` for a basic canary whose weights are approximated by pod counts.
    pub traffic_routing: Option<String>,
    /// The weight that means "all traffic" (`maxTrafficWeight`, default 100).
    pub max_traffic_weight: i32,
    /// Whether `dynamicStableScale` shrinks the stable as traffic leaves it.
    pub dynamic_stable_scale: bool,
    /// The background analysis, if any.
    pub background_analysis: Option<PlanBackground>,
    /// One row per step, then the promotion row.
    pub rows: Vec<PlanRow>,
}

impl Plan {
    /// The rows of the steps, without the promotion row.
    pub fn steps(&self) -> &[PlanRow] {
        match self.rows.split_last() {
            Some((last, steps)) if last.promoted => steps,
            _ => &self.rows,
        }
    }

    /// The total of timed pauses, in seconds: the least time the update takes besides
    /// pods becoming ready and gates passing.
    pub fn timed_pause_seconds(&self) -> i64 {
        self.rows
            .iter()
            .filter_map(|r| match r.pause {
                Some(PlanPause::Seconds(s)) => Some(s.max(0)),
                _ => None,
            })
            .sum()
    }

    /// Whether some step pauses until a user promotes the rollout.
    pub fn needs_manual_promotion(&self) -> bool {
        self.rows
            .iter()
            .any(|r| r.pause == Some(PlanPause::UntilPromoted))
    }
}

/// Argo's default for `maxSurge` and `maxUnavailable`.
const DEFAULT_BUDGET_PERCENT: i32 = 25;

/// Hashes standing for the two ReplicaSets in the arithmetic; only their difference matters.
const STABLE_HASH: &str = "stable";
const CANARY_HASH: &str = "canary";

/// Validates `rollout` and computes its step table. See the [module docs](self).
///
/// # Errors
///
/// [`PlanError::Invalid`] with every validation error (each naming its field path);
/// [`PlanError::BlueGreen`] for a blue-green rollout; [`PlanError::NoCanary`] when there
/// is no canary strategy; [`PlanError::Replicas`] if the surge settings cannot be resolved.
pub fn plan(rollout: &Rollout) -> Result<Plan, PlanError> {
    rollout.validate()?;
    let Some(cs) = rollout.canary() else {
        return Err(if rollout.blue_green().is_some() {
            PlanError::BlueGreen
        } else {
            PlanError::NoCanary
        });
    };
    let replicas = rollout.spec.replicas().max(0);
    let max_surge = cs
        .max_surge
        .clone()
        .unwrap_or_else(|| IntOrPercent::percent(DEFAULT_BUDGET_PERCENT));
    let max_unavailable = cs
        .max_unavailable
        .clone()
        .unwrap_or_else(|| IntOrPercent::percent(DEFAULT_BUDGET_PERCENT));
    let (surge_pods, unavailable_pods) =
        replicas::resolve_fenceposts(&max_surge, &max_unavailable, replicas).map_err(|e| {
            let path = match e {
                ReplicaError::InvalidMaxUnavailable { .. }
                | ReplicaError::NegativeMaxUnavailable { .. } => {
                    "spec.strategy.canary.maxUnavailable"
                }
                ReplicaError::NegativeReplicas { .. } => "spec.replicas",
                _ => "spec.strategy.canary.maxSurge",
            };
            PlanError::Replicas { path, source: e }
        })?;
    let max_weight = cs.max_traffic_weight();
    let background = cs.analysis.as_ref().map(|bg| PlanBackground {
        templates: template_names(&bg.analysis),
        starting_step: usize::try_from(bg.starting_step.unwrap_or(0)).unwrap_or(0),
    });

    let mut settle = Settle {
        cs,
        replicas,
        max_surge: &max_surge,
        max_unavailable: &max_unavailable,
        max_weight,
        canary: 0,
        stable: replicas,
    };
    let mut rows = Vec::with_capacity(cs.steps.len() + 1);
    for (index, step) in cs.steps.iter().enumerate() {
        let weight = weight_at(&cs.steps, index, max_weight);
        settle.reach(index, weight)?;
        rows.push(PlanRow {
            index,
            promoted: false,
            step: describe(step),
            weight,
            canary_replicas: settle.canary,
            stable_replicas: settle.stable,
            pause: step.parts().iter().find_map(|part| match part {
                CanaryStep::Pause(p) => Some(match p.duration_seconds() {
                    Some(s) => PlanPause::Seconds(s.max(0)),
                    None => PlanPause::UntilPromoted,
                }),
                _ => None,
            }),
            gate: step.parts().iter().find_map(gate),
            waits_for_pods: step.parts().iter().any(|part| {
                matches!(
                    part,
                    CanaryStep::SetWeight(_) | CanaryStep::SetCanaryScale(_)
                )
            }),
            background_analysis: background
                .as_ref()
                .is_some_and(|bg| index >= bg.starting_step),
        });
    }
    rows.push(PlanRow {
        index: cs.steps.len(),
        promoted: true,
        step: "promoted".to_string(),
        weight: max_weight,
        canary_replicas: replicas,
        stable_replicas: 0,
        pause: None,
        gate: None,
        waits_for_pods: true,
        background_analysis: false,
    });

    Ok(Plan {
        name: rollout
            .metadata
            .name
            .clone()
            .or_else(|| rollout.metadata.generate_name.clone()),
        replicas,
        max_surge,
        max_surge_pods: surge_pods,
        max_unavailable,
        max_unavailable_pods: unavailable_pods.min(replicas),
        traffic_routing: cs.traffic_routing.as_ref().map(router_names),
        max_traffic_weight: max_weight,
        dynamic_stable_scale: cs.dynamic_stable_scale,
        background_analysis: background,
        rows,
    })
}

/// The two ReplicaSets as the plan walks the steps.
struct Settle<'a> {
    cs: &'a CanaryStrategy,
    replicas: i32,
    max_surge: &'a IntOrPercent,
    max_unavailable: &'a IntOrPercent,
    max_weight: i32,
    canary: i32,
    stable: i32,
}

impl Settle<'_> {
    /// Moves the ReplicaSets to their fixed point with step `index` current.
    fn reach(&mut self, index: usize, weight: i32) -> Result<(), PlanError> {
        let current_step_index = Some(i32::try_from(index).unwrap_or(i32::MAX));
        let weights = Some((weight, self.max_weight - weight));
        // Each round moves at least one pod, so R·4 + a margin bounds the walk; a cycle
        // (which the arithmetic should never produce) stops there at the last counts.
        let rounds = usize::try_from(self.replicas).unwrap_or(0) * 4 + 16;
        for _ in 0..rounds {
            let input = CanaryReplicaInput {
                spec_replicas: self.replicas,
                max_surge: self.max_surge,
                max_unavailable: self.max_unavailable,
                steps: &self.cs.steps,
                traffic_routing: self.cs.traffic_routing.is_some(),
                max_traffic_weight: self.max_weight,
                dynamic_stable_scale: self.cs.dynamic_stable_scale,
                min_pods_per_replica_set: self.cs.min_pods_per_replica_set,
                abort_scale_down_delay_seconds: self.cs.abort_scale_down_delay_seconds,
                current_step_index,
                stable_hash: STABLE_HASH,
                current_pod_hash: CANARY_HASH,
                abort: false,
                promote_full: false,
                stable_rs: Some(available(self.stable)),
                canary_rs: Some(available(self.canary)),
                other_rss: &[],
                current_traffic_weights: weights,
            };
            let next =
                replicas::canary_replica_counts(&input).map_err(|source| PlanError::Replicas {
                    path: "spec.strategy.canary",
                    source,
                })?;
            if (next.canary, next.stable) == (self.canary, self.stable) {
                break;
            }
            self.canary = next.canary;
            self.stable = next.stable;
        }
        Ok(())
    }
}

fn available(n: i32) -> ReplicaSetCounts {
    ReplicaSetCounts {
        spec_replicas: n,
        available_replicas: n,
    }
}

/// The last `setWeight` at or before `index`, clamped to `0..=max`; 0 before the first.
fn weight_at(steps: &[CanaryStep], index: usize, max: i32) -> i32 {
    steps
        .iter()
        .take(index + 1)
        .rev()
        .find_map(|s| {
            s.parts().iter().find_map(|part| match part {
                CanaryStep::SetWeight(w) => Some((*w).clamp(0, max)),
                _ => None,
            })
        })
        .unwrap_or(0)
}

fn template_names(a: &RolloutAnalysis) -> Vec<String> {
    a.templates
        .iter()
        .map(|t| t.template_name.clone())
        .collect()
}

fn gate(step: &CanaryStep) -> Option<PlanGate> {
    match step {
        CanaryStep::Analysis(a) => Some(PlanGate::Analysis {
            templates: template_names(a),
        }),
        CanaryStep::Experiment(e) => Some(PlanGate::Experiment {
            templates: e.templates.iter().map(|t| t.name.clone()).collect(),
            analyses: e.analyses.iter().map(|a| a.template_name.clone()).collect(),
            duration: e.duration.clone(),
        }),
        CanaryStep::Plugin(p) => Some(PlanGate::Plugin {
            name: p.name.clone(),
        }),
        _ => None,
    }
}

/// The short description of a step used in [`PlanRow::step`]; the parts of a step with
/// several kinds are joined with ` + `.
fn describe(step: &CanaryStep) -> String {
    let parts: Vec<String> = step.parts().iter().map(describe_part).collect();
    parts.join(" + ")
}

fn describe_part(step: &CanaryStep) -> String {
    match step {
        CanaryStep::SetWeight(w) => format!("setWeight: {w}"),
        CanaryStep::Pause(p) => match &p.duration {
            Some(d) => format!("pause: {d}"),
            None => "pause (until promoted)".to_string(),
        },
        CanaryStep::SetCanaryScale(s) => format!("setCanaryScale: {}", describe_scale(s)),
        CanaryStep::SetHeaderRoute(r) => {
            if r.r#match.is_empty() {
                format!("setHeaderRoute: {} (remove)", r.name)
            } else {
                format!("setHeaderRoute: {}", r.name)
            }
        }
        CanaryStep::SetMirrorRoute(r) => {
            if r.r#match.is_empty() {
                format!("setMirrorRoute: {} (remove)", r.name)
            } else {
                format!(
                    "setMirrorRoute: {} {}%",
                    r.name,
                    r.percentage.unwrap_or(100)
                )
            }
        }
        CanaryStep::Analysis(a) => format!("analysis: {}", template_names(a).join(", ")),
        CanaryStep::Experiment(e) => describe_experiment(e),
        CanaryStep::Plugin(p) => format!("plugin: {}", p.name),
        other => other.kind().to_string(),
    }
}

fn describe_scale(s: &SetCanaryScale) -> String {
    match (s.replicas, s.weight) {
        (Some(n), _) => format!("replicas {n}"),
        (None, Some(w)) => format!("weight {w}"),
        (None, None) if s.match_traffic_weight => "matchTrafficWeight".to_string(),
        (None, None) => "(empty)".to_string(),
    }
}

fn describe_experiment(e: &ExperimentStep) -> String {
    let names: Vec<&str> = e.templates.iter().map(|t| t.name.as_str()).collect();
    match &e.duration {
        Some(d) => format!("experiment: {} for {d}", names.join(", ")),
        None => format!("experiment: {}", names.join(", ")),
    }
}

/// The configured routers: built-in ones by their field name, plugins by their key.
fn router_names(tr: &TrafficRouting) -> String {
    let mut names: Vec<String> = [
        ("istio", tr.istio.is_some()),
        ("nginx", tr.nginx.is_some()),
        ("alb", tr.alb.is_some()),
        ("smi", tr.smi.is_some()),
        ("ambassador", tr.ambassador.is_some()),
        ("appMesh", tr.app_mesh.is_some()),
        ("traefik", tr.traefik.is_some()),
        ("apisix", tr.apisix.is_some()),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| n.to_string())
    .collect();
    if let Some(plugins) = &tr.plugins {
        names.extend(plugins.keys().map(|k| format!("plugin {k}")));
    }
    names.join(", ")
}

/// `1` → `1 pod`, `3` → `3 pods`.
fn pods(n: i32) -> String {
    if n == 1 {
        "1 pod".to_string()
    } else {
        format!("{n} pods")
    }
}

/// `180` → `3m`, `5400` → `1h30m`, `45` → `45s`, `0` → `0s`.
fn human_seconds(total: i64) -> String {
    if total <= 0 {
        return "0s".to_string();
    }
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

impl PlanRow {
    /// What the row waits for, as shown in the table's `WAITS FOR` column.
    pub fn waits_for(&self) -> String {
        if self.promoted {
            return "-".to_string();
        }
        if let Some(p) = self.pause {
            return match p {
                PlanPause::Seconds(s) => human_seconds(s),
                PlanPause::UntilPromoted => "promotion (kubectl argo rollouts promote)".to_string(),
            };
        }
        match &self.gate {
            Some(PlanGate::Analysis { templates }) => {
                format!("AnalysisRun ({}) to succeed", templates.join(", "))
            }
            Some(PlanGate::Experiment {
                templates,
                analyses,
                duration,
            }) => {
                let mut s = format!("Experiment ({})", templates.join(", "));
                if !analyses.is_empty() {
                    s.push_str(&format!(" with analysis {}", analyses.join(", ")));
                }
                if let Some(d) = duration {
                    s.push_str(&format!(", {d}"));
                }
                s
            }
            Some(PlanGate::Plugin { name }) => format!("plugin {name} to succeed"),
            None if self.waits_for_pods => "pods ready".to_string(),
            None => "-".to_string(),
        }
    }
}

impl fmt::Display for Plan {
    /// A header with the settings, then one aligned line per row:
    ///
    /// ```text
    /// STEP  ACTION                  WEIGHT  CANARY  STABLE  WAITS FOR
    /// 1/5   setWeight: 10              10%       1       9  pods ready
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_deref().unwrap_or("(unnamed)");
        writeln!(f, "Rollout {name}: canary, {}", pods(self.replicas))?;
        match &self.traffic_routing {
            Some(routers) => {
                write!(
                    f,
                    "  traffic routing: {routers}, maxTrafficWeight {}",
                    self.max_traffic_weight
                )?;
                if self.dynamic_stable_scale {
                    write!(f, ", dynamicStableScale")?;
                }
                writeln!(f)?;
            }
            None => {
                writeln!(
                    f,
                    "  no traffic routing: weights are approximated by pod counts within maxSurge {} ({}) and maxUnavailable {} ({})",
                    self.max_surge,
                    pods(self.max_surge_pods),
                    self.max_unavailable,
                    pods(self.max_unavailable_pods)
                )?;
            }
        }
        if let Some(bg) = &self.background_analysis {
            writeln!(
                f,
                "  background analysis: {} from step {}",
                bg.templates.join(", "),
                bg.starting_step + 1
            )?;
        }
        let n = self.steps().len();
        if n == 0 {
            writeln!(f, "  no steps: a rolling update straight to the new pods")?;
        } else {
            let timed = self.timed_pause_seconds();
            if timed > 0 {
                write!(f, "  timed pauses: {} in all", human_seconds(timed))?;
            } else {
                write!(f, "  timed pauses: none")?;
            }
            if self.needs_manual_promotion() {
                write!(f, "; needs a manual promotion")?;
            }
            writeln!(f)?;
        }
        writeln!(f)?;

        let with_bg = self.background_analysis.is_some();
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    if r.promoted {
                        "done".to_string()
                    } else {
                        format!("{}/{n}", r.index + 1)
                    },
                    r.step.clone(),
                    if self.max_traffic_weight == 100 {
                        format!("{}%", r.weight)
                    } else {
                        format!("{}/{}", r.weight, self.max_traffic_weight)
                    },
                    r.canary_replicas.to_string(),
                    r.stable_replicas.to_string(),
                    if r.background_analysis {
                        "running"
                    } else {
                        "-"
                    }
                    .to_string(),
                    r.waits_for(),
                ]
            })
            .collect();
        let headers = [
            "STEP",
            "ACTION",
            "WEIGHT",
            "CANARY",
            "STABLE",
            "BACKGROUND",
            "WAITS FOR",
        ];
        // Columns 2..=4 are numbers: right-aligned.
        let right = [false, false, true, true, true, false, false];
        let mut widths = headers.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cols: [&str; 7]| -> fmt::Result {
            let mut out = String::new();
            for (i, c) in cols.iter().enumerate() {
                if i == 5 && !with_bg {
                    continue;
                }
                if !out.is_empty() {
                    out.push_str("  ");
                }
                let pad = widths[i].saturating_sub(c.chars().count());
                if right[i] {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(c);
                } else if i == 6 {
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(f, headers)?;
        for row in &cells {
            line(
                f,
                [
                    &row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6],
                ],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(replicas: i32, strategy: &str) -> Rollout {
        let text = format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: web:2
  strategy:
{strategy}"
        );
        Rollout::from_yaml(&text).expect("test rollout parses")
    }

    fn counts(p: &Plan) -> Vec<(i32, i32, i32)> {
        p.rows
            .iter()
            .map(|r| (r.weight, r.canary_replicas, r.stable_replicas))
            .collect()
    }

    const QUICKSTART: &str = "    canary:
      steps:
      - setWeight: 10
      - pause: {duration: 3m}
      - setWeight: 50
      - analysis:
          templates:
          - templateName: success-rate
          - templateName: latency
      - setWeight: 100
      - pause: {}
";

    #[test]
    fn basic_canary_with_default_budgets() {
        let p = plan(&rollout(10, QUICKSTART)).unwrap();
        assert_eq!(p.replicas, 10);
        assert_eq!((p.max_surge_pods, p.max_unavailable_pods), (3, 2));
        assert_eq!(p.traffic_routing, None);
        assert_eq!(
            counts(&p),
            vec![
                (10, 1, 9),
                (10, 1, 9),
                (50, 5, 5),
                (50, 5, 5),
                (100, 10, 0),
                (100, 10, 0),
                (100, 10, 0),
            ]
        );
        let steps: Vec<&str> = p.rows.iter().map(|r| r.step.as_str()).collect();
        assert_eq!(
            steps,
            [
                "setWeight: 10",
                "pause: 3m",
                "setWeight: 50",
                "analysis: success-rate, latency",
                "setWeight: 100",
                "pause (until promoted)",
                "promoted",
            ]
        );
        assert_eq!(p.rows[1].pause, Some(PlanPause::Seconds(180)));
        assert_eq!(p.rows[5].pause, Some(PlanPause::UntilPromoted));
        assert_eq!(
            p.rows[3].gate,
            Some(PlanGate::Analysis {
                templates: vec!["success-rate".into(), "latency".into()]
            })
        );
        assert!(p.rows[6].promoted);
        assert_eq!(p.rows[6].index, 6);
        assert_eq!(p.steps().len(), 6);
        assert_eq!(p.timed_pause_seconds(), 180);
        assert!(p.needs_manual_promotion());
    }

    #[test]
    fn basic_canary_rounding_and_surge() {
        // 4 pods (maxSurge 25 % = 1 pod). 30 %: 1 canary + 3 stable (25 %) is closer than
        // 2 + 2 (50 %) or 2 + 3 (40 %). 60 %: the surge pod gives an exact 3 + 2.
        let p = plan(&rollout(
            4,
            "    canary:
      steps:
      - setWeight: 30
      - setWeight: 60
",
        ))
        .unwrap();
        assert_eq!(counts(&p), vec![(30, 1, 3), (60, 3, 2), (100, 4, 0)]);
    }

    #[test]
    fn basic_canary_without_surge() {
        let p = plan(&rollout(
            10,
            "    canary:
      maxSurge: 0
      maxUnavailable: 1
      steps:
      - setWeight: 20
      - setWeight: 90
",
        ))
        .unwrap();
        assert_eq!((p.max_surge_pods, p.max_unavailable_pods), (0, 1));
        assert_eq!(counts(&p), vec![(20, 2, 8), (90, 9, 1), (100, 10, 0)]);
    }

    #[test]
    fn traffic_routed_with_set_canary_scale_and_routes() {
        let p = plan(&rollout(
            10,
            "    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        managedRoutes:
        - name: header-route
        istio:
          virtualService:
            name: web
            routes: [primary]
      steps:
      - setCanaryScale: {replicas: 3}
      - setHeaderRoute:
          name: header-route
          match:
          - headerName: X-Canary
            headerValue: {exact: 'yes'}
      - setWeight: 5
      - pause: {duration: 1h30m}
      - setCanaryScale: {weight: 50}
      - setWeight: 25
      - setCanaryScale: {matchTrafficWeight: true}
      - setHeaderRoute: {name: header-route}
      - setWeight: 100
",
        ))
        .unwrap();
        assert_eq!(p.traffic_routing.as_deref(), Some("istio"));
        assert_eq!(
            counts(&p),
            vec![
                (0, 3, 10),
                (0, 3, 10),
                (5, 3, 10),
                (5, 3, 10),
                (5, 5, 10),
                (25, 5, 10),
                (25, 3, 10),
                (25, 3, 10),
                (100, 10, 10),
                (100, 10, 0),
            ]
        );
        let steps: Vec<&str> = p.rows.iter().map(|r| r.step.as_str()).collect();
        assert_eq!(steps[0], "setCanaryScale: replicas 3");
        assert_eq!(steps[1], "setHeaderRoute: header-route");
        assert_eq!(steps[3], "pause: 1h30m");
        assert_eq!(steps[4], "setCanaryScale: weight 50");
        assert_eq!(steps[6], "setCanaryScale: matchTrafficWeight");
        assert_eq!(steps[7], "setHeaderRoute: header-route (remove)");
        assert_eq!(p.rows[3].pause, Some(PlanPause::Seconds(5400)));
        assert!(p.to_string().contains("1h30m"));
    }

    #[test]
    fn combined_steps_are_described_part_by_part() {
        let p = plan(&rollout(
            10,
            "    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        managedRoutes:
        - name: header-route
        istio:
          virtualService:
            name: web
            routes: [primary]
      steps:
      - setWeight: 10
        setCanaryScale: {replicas: 4}
      - pause: {duration: 30s}
        setHeaderRoute:
          name: header-route
          match:
          - headerName: X-Canary
            headerValue: {exact: 'yes'}
      - analysis:
          templates:
          - templateName: success-rate
        setCanaryScale: {matchTrafficWeight: true}
",
        ))
        .unwrap();
        // The order of the parts is the parser's; compare them as sets.
        let steps: Vec<Vec<&str>> = p
            .rows
            .iter()
            .map(|r| {
                let mut parts: Vec<&str> = r.step.split(" + ").collect();
                parts.sort_unstable();
                parts
            })
            .collect();
        assert_eq!(
            steps,
            [
                vec!["setCanaryScale: replicas 4", "setWeight: 10"],
                vec!["pause: 30s", "setHeaderRoute: header-route"],
                vec![
                    "analysis: success-rate",
                    "setCanaryScale: matchTrafficWeight"
                ],
                vec!["promoted"],
            ]
        );
        assert_eq!(
            counts(&p),
            vec![(10, 4, 10), (10, 4, 10), (10, 1, 10), (100, 10, 0)]
        );
        assert!(p.rows[0].waits_for_pods);
        assert_eq!(p.rows[1].pause, Some(PlanPause::Seconds(30)));
        assert!(matches!(p.rows[2].gate, Some(PlanGate::Analysis { .. })));
    }

    #[test]
    fn dynamic_stable_scale_shrinks_the_stable() {
        let p = plan(&rollout(
            10,
            "    canary:
      canaryService: web-canary
      stableService: web-stable
      dynamicStableScale: true
      trafficRouting:
        nginx:
          stableIngress: web
      steps:
      - setWeight: 20
      - setWeight: 75
",
        ))
        .unwrap();
        assert_eq!(p.traffic_routing.as_deref(), Some("nginx"));
        assert!(p.dynamic_stable_scale);
        assert_eq!(counts(&p), vec![(20, 2, 8), (75, 8, 3), (100, 10, 0)]);
    }

    #[test]
    fn background_analysis_from_starting_step() {
        let p = plan(&rollout(
            5,
            "    canary:
      analysis:
        startingStep: 2
        templates:
        - templateName: error-rate
      steps:
      - setWeight: 20
      - pause: {duration: 60}
      - setWeight: 40
      - pause: {duration: '90'}
",
        ))
        .unwrap();
        assert_eq!(
            p.background_analysis,
            Some(PlanBackground {
                templates: vec!["error-rate".into()],
                starting_step: 2
            })
        );
        let bg: Vec<bool> = p.rows.iter().map(|r| r.background_analysis).collect();
        assert_eq!(bg, [false, false, true, true, false]);
        assert_eq!(p.timed_pause_seconds(), 150);
        let text = p.to_string();
        assert!(
            text.contains("background analysis: error-rate from step 3"),
            "{text}"
        );
        assert!(text.contains("BACKGROUND"), "{text}");
    }

    #[test]
    fn no_steps_is_a_rolling_update() {
        let p = plan(&rollout(3, "    canary: {}\n")).unwrap();
        assert_eq!(counts(&p), vec![(100, 3, 0)]);
        assert!(p.steps().is_empty());
    }

    #[test]
    fn invalid_rollout_names_the_field() {
        let err = plan(&rollout(
            10,
            "    canary:
      steps:
      - setWeight: 10
      - pause: {}
      - setWeight: 50
      - setWeight: 120
",
        ))
        .unwrap_err();
        assert!(matches!(err, PlanError::Invalid(_)));
        assert_eq!(err.paths(), ["spec.strategy.canary.steps[3].setWeight"]);
        let text = err.to_string();
        assert!(
            text.starts_with("invalid Rollout:\n  spec.strategy.canary.steps[3].setWeight: "),
            "{text}"
        );
    }

    #[test]
    fn blue_green_is_a_typed_error() {
        let err = plan(&rollout(
            3,
            "    blueGreen:
      activeService: web-active
",
        ))
        .unwrap_err();
        assert_eq!(err, PlanError::BlueGreen);
        assert!(err.to_string().contains("plan it with plan_blue_green"));
    }

    #[test]
    fn table_is_aligned() {
        let p = plan(&rollout(10, QUICKSTART)).unwrap();
        let text = p.to_string();
        let table: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("STEP"))
            .collect();
        assert_eq!(table.len(), 8, "{text}");
        // The WEIGHT column ends at the same offset on every line.
        let end = table[0].find("WEIGHT").unwrap() + "WEIGHT".len();
        for l in &table[1..] {
            assert!(l[..end].ends_with('%'), "{text}");
        }
        assert!(table[1].starts_with("1/6"), "{text}");
        assert!(table[7].starts_with("done"), "{text}");
        assert!(!text.contains("BACKGROUND"), "{text}");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_seconds(180), "3m");
        assert_eq!(human_seconds(5400), "1h30m");
        assert_eq!(human_seconds(45), "45s");
        assert_eq!(human_seconds(3661), "1h1m1s");
        assert_eq!(human_seconds(0), "0s");
    }
}
