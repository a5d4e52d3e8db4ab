//! The Experiment machine: what runs behind a canary `experiment` step.
//!
//! # Model
//!
//! An Argo `Experiment` runs one or more ReplicaSets side by side — typically a
//! *baseline* built from the stable pod template and a *canary* built from the new one,
//! each with its own replica count — for a duration, and runs analyses against them. It
//! is what a statistical judge of canary versus baseline needs: two populations of the
//! same size started at the same time.
//!
//! [`reconcile`] is one pass of Argo's experiment controller, in the style of
//! [`crate::canary::reconcile`]: it takes the experiment's definition
//! ([`ExperimentInput`]: the step, the pod template hashes `specRef: stable | canary`
//! resolve to, whether the rollout asked to terminate it), the persisted
//! [`ExperimentStatus`], what was observed ([`ExperimentObserved`]: the template
//! ReplicaSets and the analysis runs), and `now`. It returns an [`ExperimentDecision`]:
//! the new status (borrowed when unchanged), [`ExperimentAction`]s and the next wake-up.
//!
//! # Life cycle (Argo's)
//!
//! 1. `Pending`: a ReplicaSet per template is created with its replicas.
//! 2. When every template is fully available: `Running`, `availableAt = now`, and every
//!    analysis starts.
//! 3. The experiment ends when its `duration` has passed since `availableAt` (analyses
//!    still running are terminated, which counts as success); without a duration, when
//!    every analysis marked `requiredForCompletion` has finished (and never on its own
//!    when none is marked); or when the rollout terminates it.
//! 4. Its phase is the worst of its analyses (Failed > Error > Inconclusive >
//!    Successful); any analysis that fails ends the experiment at once.
//! 5. On completion the template ReplicaSets are scaled to 0 after
//!    `scaleDownDelaySeconds` (default 30).
//!
//! The canary machine maps the outcome onto the step: `Successful` completes it,
//! `Failed` / `Error` abort the rollout, `Inconclusive` pauses it
//! (`InconclusiveExperiment`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::canary::AnalysisRunState;
use crate::spec::{ExperimentAnalysis, ExperimentStep, SpecRef};
use crate::status::AnalysisPhase;
use crate::time::Timestamp;

/// Default seconds before the template ReplicaSets of a finished experiment are scaled down.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;

/// `status` of an `argoproj.io/v1alpha1` `Experiment` (Argo's JSON names).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// Phase of the experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// Why it is in that phase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When every template became available (the duration counts from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Timestamp>,
    /// One entry per template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_statuses: Vec<TemplateStatus>,
    /// One entry per analysis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis_runs: Vec<ExperimentAnalysisRunStatus>,
}

/// Status of one template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatus {
    /// Template name.
    pub name: String,
    /// Pods of its ReplicaSet.
    #[serde(default)]
    pub replicas: i32,
    /// Available pods.
    #[serde(default)]
    pub available_replicas: i32,
    /// Where the template is.
    pub status: TemplateStatusCode,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
    /// Pod template hash of its ReplicaSet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_template_hash: String,
    /// Service in front of it, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_name: String,
}

/// Argo's template status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TemplateStatusCode {
    /// Pods are being created.
    Progressing,
    /// Every pod is available.
    Running,
    /// The experiment ended and the template served its time.
    Successful,
    /// The experiment ended badly.
    Failed,
}

/// Status of one analysis of the experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisRunStatus {
    /// Analysis name (from the step).
    pub name: String,
    /// Name of the AnalysisRun.
    pub analysis_run: String,
    /// Its phase.
    pub phase: AnalysisPhase,
    /// Its message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The definition of one experiment.
#[derive(Debug, Clone, Copy)]
pub struct ExperimentInput<'a> {
    /// Experiment name (the canary machine's `StartExperiment` name).
    pub name: &'a str,
    /// The `experiment` step.
    pub step: &'a ExperimentStep,
    /// Pod template hash `specRef: canary` resolves to.
    pub canary_hash: &'a str,
    /// Pod template hash `specRef: stable` resolves to.
    pub stable_hash: &'a str,
    /// The rollout asked to terminate it (`spec.terminate`).
    pub terminate: bool,
}

/// One template ReplicaSet as observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateSetState {
    /// Template name.
    pub template: String,
    /// `spec.replicas`.
    pub spec_replicas: i32,
    /// Available pods.
    pub available_replicas: i32,
}

/// What was observed for the experiment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExperimentObserved<'a> {
    /// Its template ReplicaSets.
    pub template_sets: &'a [TemplateSetState],
    /// Its analysis runs, by run name.
    pub analysis_runs: &'a [AnalysisRunState],
}

/// Something to do for the experiment. Every action is idempotent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExperimentAction {
    /// Create the ReplicaSet of a template from the pod template `spec_ref` points at.
    CreateTemplateSet {
        /// Template name.
        template: String,
        /// Stable or canary.
        spec_ref: SpecRef,
        /// The pod template hash it copies.
        pod_template_hash: String,
        /// Replicas.
        replicas: i32,
        /// Name of the Service to create in front of it, if the template asks for one.
        service: Option<String>,
    },
    /// Set a template ReplicaSet's `spec.replicas`.
    ScaleTemplateSet {
        /// Template name.
        template: String,
        /// Replicas.
        replicas: i32,
    },
    /// Create an AnalysisRun for one of the experiment's analyses.
    StartAnalysisRun {
        /// Name the run must get.
        name: String,
        /// The analysis (template, args).
        analysis: ExperimentAnalysis,
    },
    /// Terminate an AnalysisRun.
    TerminateAnalysisRun {
        /// Run name.
        name: String,
    },
}

/// The outcome of one pass.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct ExperimentDecision<'a> {
    /// The new status (borrowed when unchanged).
    pub status: Cow<'a, ExperimentStatus>,
    /// Actions to execute, in order.
    pub actions: Vec<ExperimentAction>,
    /// Call again at this time even if nothing observed changes.
    pub requeue_at: Option<Timestamp>,
}

impl ExperimentDecision<'_> {
    /// Whether the status differs from the one passed in.
    pub fn status_changed(&self) -> bool {
        matches!(self.status, Cow::Owned(_))
    }

    /// The experiment's phase after this pass.
    pub fn phase(&self) -> AnalysisPhase {
        self.status.phase.unwrap_or(AnalysisPhase::Pending)
    }
}

/// The name of the Service of a template: its `service.name`, else `<experiment>-<template>`.
pub fn template_service_name(
    experiment: &str,
    template: &crate::spec::ExperimentTemplate,
) -> Option<String> {
    template.service.as_ref().map(|s| {
        s.name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{experiment}-{}", template.name))
    })
}

/// The name of the AnalysisRun of an analysis: `<experiment>-<analysis>`.
pub fn analysis_run_name(experiment: &str, analysis: &str) -> String {
    format!("{experiment}-{analysis}")
}

/// The duration of the step in seconds, if it has a valid one.
pub fn duration_seconds(step: &ExperimentStep) -> Option<i64> {
    let d = step.duration.as_deref()?;
    if let Ok(secs) = d.parse::<i64>() {
        return Some(secs);
    }
    crate::duration::Duration::parse(d)
        .ok()
        .map(|d| d.as_millis().div_euclid(1000))
}

/// Runs one pass of the experiment. See the module docs for the model.
pub fn reconcile<'a>(
    input: &ExperimentInput<'_>,
    status: &'a ExperimentStatus,
    observed: &ExperimentObserved<'_>,
    now: Timestamp,
) -> ExperimentDecision<'a> {
    let mut st: Cow<'a, ExperimentStatus> = Cow::Borrowed(status);
    let mut actions = Vec::new();
    let mut requeue_at: Option<Timestamp> = None;
    let wake = |t: Timestamp, r: &mut Option<Timestamp>| {
        *r = Some(r.map_or(t, |x| x.min(t)));
    };
    let step = input.step;
    let completed = st.phase.is_some_and(AnalysisPhase::is_completed);

    // Observed analysis phases into the status.
    for (i, run) in status.analysis_runs.iter().enumerate() {
        if let Some(o) = observed
            .analysis_runs
            .iter()
            .find(|o| o.name == run.analysis_run)
            && (o.phase != run.phase || o.message != run.message)
        {
            let r = &mut st.to_mut().analysis_runs[i];
            r.phase = o.phase;
            r.message.clone_from(&o.message);
        }
    }

    if completed {
        // Scale the templates down once the delay has passed.
        let delay = i64::from(
            step.scale_down_delay_seconds
                .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
                .max(0),
        );
        let ended = st
            .template_statuses
            .iter()
            .filter_map(|t| t.last_transition_time)
            .max()
            .unwrap_or(now);
        let at = ended.add_secs(delay);
        for set in observed
            .template_sets
            .iter()
            .filter(|s| s.spec_replicas > 0)
        {
            if now >= at {
                actions.push(ExperimentAction::ScaleTemplateSet {
                    template: set.template.clone(),
                    replicas: 0,
                });
            } else {
                wake(at, &mut requeue_at);
            }
        }
        return finish(st, status, actions, requeue_at);
    }

    // Templates: create and size their ReplicaSets, and record their availability.
    let mut all_available = !step.templates.is_empty();
    for t in &step.templates {
        let replicas = t.replicas.unwrap_or(1).max(0);
        let hash = match t.spec_ref {
            SpecRef::Stable => input.stable_hash,
            _ => input.canary_hash,
        };
        let set = observed.template_sets.iter().find(|s| s.template == t.name);
        let available = set.map_or(0, |s| s.available_replicas);
        match set {
            None => actions.push(ExperimentAction::CreateTemplateSet {
                template: t.name.clone(),
                spec_ref: t.spec_ref,
                pod_template_hash: hash.to_string(),
                replicas,
                service: template_service_name(input.name, t),
            }),
            Some(s) if s.spec_replicas != replicas => {
                actions.push(ExperimentAction::ScaleTemplateSet {
                    template: t.name.clone(),
                    replicas,
                });
            }
            Some(_) => {}
        }
        let running = set.is_some_and(|s| s.spec_replicas == replicas) && available >= replicas;
        all_available &= running;
        let code = if running {
            TemplateStatusCode::Running
        } else {
            TemplateStatusCode::Progressing
        };
        let service = template_service_name(input.name, t).unwrap_or_default();
        match st.template_statuses.iter().position(|s| s.name == t.name) {
            Some(i) => {
                let cur = &st.template_statuses[i];
                if cur.status != code
                    || cur.available_replicas != available
                    || cur.replicas != replicas
                {
                    let s = &mut st.to_mut().template_statuses[i];
                    if s.status != code {
                        s.last_transition_time = Some(now);
                    }
                    s.status = code;
                    s.available_replicas = available;
                    s.replicas = replicas;
                }
            }
            None => st.to_mut().template_statuses.push(TemplateStatus {
                name: t.name.clone(),
                replicas,
                available_replicas: available,
                status: code,
                last_transition_time: Some(now),
                pod_template_hash: hash.to_string(),
                service_name: service,
            }),
        }
    }

    if all_available && st.available_at.is_none() {
        let s = st.to_mut();
        s.available_at = Some(now);
    }
    if st.phase.is_none() {
        st.to_mut().phase = Some(AnalysisPhase::Pending);
    }

    // Analyses start once every template is available.
    if st.available_at.is_some() {
        if st.phase == Some(AnalysisPhase::Pending) {
            st.to_mut().phase = Some(AnalysisPhase::Running);
        }
        for a in &step.analyses {
            if st.analysis_runs.iter().any(|r| r.name == a.name) {
                continue;
            }
            let run = analysis_run_name(input.name, &a.name);
            actions.push(ExperimentAction::StartAnalysisRun {
                name: run.clone(),
                analysis: a.clone(),
            });
            st.to_mut().analysis_runs.push(ExperimentAnalysisRunStatus {
                name: a.name.clone(),
                analysis_run: run,
                phase: AnalysisPhase::Pending,
                message: String::new(),
            });
        }
    }

    // The verdict.
    let worst = st
        .analysis_runs
        .iter()
        .map(|r| r.phase)
        .filter(|p| {
            matches!(
                p,
                AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
            )
        })
        .max_by_key(|p| severity(*p));
    let duration_done = match (st.available_at, duration_seconds(step)) {
        (Some(at), Some(d)) => {
            let end = at.add_secs(d.max(0));
            if now < end {
                wake(end, &mut requeue_at);
            }
            now >= end
        }
        _ => false,
    };
    let required: Vec<&str> = step
        .analyses
        .iter()
        .filter(|a| a.required_for_completion)
        .map(|a| a.name.as_str())
        .collect();
    let required_done = !required.is_empty()
        && required.iter().all(|name| {
            st.analysis_runs
                .iter()
                .any(|r| r.name == *name && r.phase.is_completed())
        });
    let ending = if let Some(bad) = worst {
        let run = st
            .analysis_runs
            .iter()
            .find(|r| r.phase == bad)
            .map(|r| (r.name.clone(), r.message.clone()))
            .unwrap_or_default();
        Some((
            bad,
            format!("Analysis '{}' assessed {}: {}", run.0, bad.as_str(), run.1),
        ))
    } else if input.terminate {
        Some((
            AnalysisPhase::Successful,
            "Experiment terminated".to_string(),
        ))
    } else if duration_done {
        Some((
            AnalysisPhase::Successful,
            "Experiment has completed its duration".to_string(),
        ))
    } else if required_done {
        Some((
            AnalysisPhase::Successful,
            "Analyses required for completion have completed".to_string(),
        ))
    } else {
        None
    };

    if let Some((phase, message)) = ending {
        for r in &st.analysis_runs {
            if !r.phase.is_completed() {
                actions.push(ExperimentAction::TerminateAnalysisRun {
                    name: r.analysis_run.clone(),
                });
            }
        }
        let code = if phase == AnalysisPhase::Successful {
            TemplateStatusCode::Successful
        } else {
            TemplateStatusCode::Failed
        };
        let s = st.to_mut();
        s.phase = Some(phase);
        s.message = message;
        for t in &mut s.template_statuses {
            t.status = code;
            t.last_transition_time = Some(now);
        }
        let delay = i64::from(
            step.scale_down_delay_seconds
                .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
                .max(0),
        );
        // Template creation for a terminated experiment is pointless.
        actions.retain(|a| !matches!(a, ExperimentAction::CreateTemplateSet { .. }));
        wake(now.add_secs(delay), &mut requeue_at);
    }
    finish(st, status, actions, requeue_at)
}

fn severity(p: AnalysisPhase) -> u8 {
    match p {
        AnalysisPhase::Failed => 3,
        AnalysisPhase::Error => 2,
        AnalysisPhase::Inconclusive => 1,
        _ => 0,
    }
}

fn finish<'a>(
    st: Cow<'a, ExperimentStatus>,
    orig: &'a ExperimentStatus,
    actions: Vec<ExperimentAction>,
    requeue_at: Option<Timestamp>,
) -> ExperimentDecision<'a> {
    let status = match st {
        Cow::Owned(s) if s == *orig => Cow::Borrowed(orig),
        other => other,
    };
    ExperimentDecision {
        status,
        actions,
        requeue_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(yaml: &str) -> ExperimentStep {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        serde_json::from_value(v).unwrap()
    }

    const STEP: &str = "
duration: 5m
templates:
- name: baseline
  specRef: stable
  replicas: 2
- name: canary
  specRef: canary
  replicas: 2
  service: {}
analyses:
- name: judge
  templateName: mann-whitney
";

    struct Out {
        actions: Vec<ExperimentAction>,
        changed: bool,
        phase: AnalysisPhase,
        status: ExperimentStatus,
        requeue_at: Option<Timestamp>,
    }

    struct World {
        sets: Vec<TemplateSetState>,
        runs: Vec<AnalysisRunState>,
        status: ExperimentStatus,
    }

    impl World {
        fn pass(&mut self, step: &ExperimentStep, now: Timestamp, ready: bool) -> Out {
            let input = ExperimentInput {
                name: "web-exp",
                step,
                canary_hash: "v2",
                stable_hash: "v1",
                terminate: false,
            };
            let observed = ExperimentObserved {
                template_sets: &self.sets,
                analysis_runs: &self.runs,
            };
            let d = reconcile(&input, &self.status, &observed, now);
            let out = Out {
                changed: d.status_changed(),
                phase: d.phase(),
                status: d.status.into_owned(),
                actions: d.actions,
                requeue_at: d.requeue_at,
            };
            for a in &out.actions {
                match a {
                    ExperimentAction::CreateTemplateSet {
                        template, replicas, ..
                    } => {
                        self.sets.push(TemplateSetState {
                            template: template.clone(),
                            spec_replicas: *replicas,
                            available_replicas: 0,
                        });
                    }
                    ExperimentAction::ScaleTemplateSet { template, replicas } => {
                        if let Some(s) = self.sets.iter_mut().find(|s| &s.template == template) {
                            s.spec_replicas = *replicas;
                            s.available_replicas = s.available_replicas.min(*replicas);
                        }
                    }
                    ExperimentAction::StartAnalysisRun { name, .. } => {
                        self.runs.push(AnalysisRunState {
                            name: name.clone(),
                            phase: AnalysisPhase::Running,
                            message: String::new(),
                        })
                    }
                    ExperimentAction::TerminateAnalysisRun { name } => {
                        if let Some(r) = self.runs.iter_mut().find(|r| &r.name == name) {
                            r.phase = AnalysisPhase::Successful;
                        }
                    }
                }
            }
            if ready {
                for s in &mut self.sets {
                    s.available_replicas = s.spec_replicas;
                }
            }
            self.status = out.status.clone();
            out
        }
    }

    fn world() -> World {
        World {
            sets: Vec::new(),
            runs: Vec::new(),
            status: ExperimentStatus::default(),
        }
    }

    #[test]
    fn runs_for_its_duration_then_scales_down() {
        let s = step(STEP);
        let t0 = Timestamp::from_secs(1_800_000_000);
        let mut w = world();
        let d = w.pass(&s, t0, true);
        assert_eq!(d.actions.len(), 2, "{:?}", d.actions);
        assert!(
            matches!(&d.actions[1], ExperimentAction::CreateTemplateSet { service: Some(n), pod_template_hash, .. } if n == "web-exp-canary" && pod_template_hash == "v2")
        );
        assert_eq!(d.phase, AnalysisPhase::Pending);
        let d = w.pass(&s, t0.add_secs(10), false);
        assert_eq!(d.phase, AnalysisPhase::Running);
        assert_eq!(w.status.available_at, Some(t0.add_secs(10)));
        assert!(
            matches!(&d.actions[..], [ExperimentAction::StartAnalysisRun { name, .. }] if name == "web-exp-judge")
        );
        assert_eq!(d.requeue_at, Some(t0.add_secs(310)));
        // The run is observed Running; then nothing changes until the duration has passed.
        let d = w.pass(&s, t0.add_secs(50), false);
        assert!(d.changed && d.actions.is_empty());
        assert_eq!(w.status.analysis_runs[0].phase, AnalysisPhase::Running);
        let d = w.pass(&s, t0.add_secs(100), false);
        assert!(d.actions.is_empty() && !d.changed);
        let d = w.pass(&s, t0.add_secs(310), false);
        assert_eq!(d.phase, AnalysisPhase::Successful);
        assert!(matches!(
            &d.actions[..],
            [ExperimentAction::TerminateAnalysisRun { .. }]
        ));
        assert_eq!(d.requeue_at, Some(t0.add_secs(340)));
        let d = w.pass(&s, t0.add_secs(340), false);
        assert_eq!(d.actions.len(), 2);
        assert!(w.sets.iter().all(|s| s.spec_replicas == 0));
    }

    #[test]
    fn a_failed_analysis_fails_the_experiment_at_once() {
        let s = step(STEP);
        let t0 = Timestamp::from_secs(1_800_000_000);
        let mut w = world();
        let _ = w.pass(&s, t0, true);
        let _ = w.pass(&s, t0.add_secs(10), false);
        w.runs[0].phase = AnalysisPhase::Failed;
        w.runs[0].message = "canary worse than baseline".into();
        let d = w.pass(&s, t0.add_secs(60), false);
        assert_eq!(d.phase, AnalysisPhase::Failed);
        assert_eq!(
            w.status.message,
            "Analysis 'judge' assessed Failed: canary worse than baseline"
        );
        assert!(
            w.status
                .template_statuses
                .iter()
                .all(|t| t.status == TemplateStatusCode::Failed)
        );
    }

    #[test]
    fn without_duration_required_analyses_end_it() {
        let s = step(
            "
templates:
- {name: canary, specRef: canary}
analyses:
- {name: a, templateName: t, requiredForCompletion: true}
- {name: b, templateName: t}
",
        );
        let t0 = Timestamp::from_secs(1_800_000_000);
        let mut w = world();
        let _ = w.pass(&s, t0, true);
        let _ = w.pass(&s, t0.add_secs(5), false);
        assert_eq!(w.runs.len(), 2);
        w.runs[0].phase = AnalysisPhase::Successful;
        let d = w.pass(&s, t0.add_secs(50), false);
        assert_eq!(d.phase, AnalysisPhase::Successful);
        assert!(
            matches!(&d.actions[..], [ExperimentAction::TerminateAnalysisRun { name }] if name == "web-exp-b")
        );
    }

    #[test]
    fn inconclusive_and_terminate() {
        let s = step(STEP);
        let t0 = Timestamp::from_secs(1_800_000_000);
        let mut w = world();
        let _ = w.pass(&s, t0, true);
        let _ = w.pass(&s, t0.add_secs(10), false);
        w.runs[0].phase = AnalysisPhase::Inconclusive;
        assert_eq!(
            w.pass(&s, t0.add_secs(20), false).phase,
            AnalysisPhase::Inconclusive
        );

        let mut w = world();
        let _ = w.pass(&s, t0, false);
        let input = ExperimentInput {
            name: "web-exp",
            step: &s,
            canary_hash: "v2",
            stable_hash: "v1",
            terminate: true,
        };
        let observed = ExperimentObserved {
            template_sets: &w.sets,
            analysis_runs: &w.runs,
        };
        let d = reconcile(&input, &w.status, &observed, t0.add_secs(1));
        assert_eq!(d.phase(), AnalysisPhase::Successful);
        assert_eq!(d.status.message, "Experiment terminated");
    }

    #[test]
    fn status_round_trips_with_argo_names() {
        let json = r#"{"phase":"Running","availableAt":"2026-01-01T00:00:00Z",
            "templateStatuses":[{"name":"canary","replicas":1,"availableReplicas":1,"status":"Running","podTemplateHash":"v2"}],
            "analysisRuns":[{"name":"judge","analysisRun":"web-exp-judge","phase":"Running"}]}"#;
        let s: ExperimentStatus = serde_json::from_str(json).unwrap();
        assert_eq!(s.template_statuses[0].status, TemplateStatusCode::Running);
        let back: ExperimentStatus =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
