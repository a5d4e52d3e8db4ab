//! The analysis runner inside rollout-core's simulated cluster (feature `sim`).
//!
//! rollout-core's [`Harness`](rollout_core::sim::Harness) drives a rollout machine in
//! virtual time and asks an [`AnalysisScript`] for the phase of each analysis run it
//! started. [`SimAnalysis`] is that script made of the real parts: every run is built
//! from its templates by [`build_run`](crate::runner::build_run), scheduled and judged by
//! the [`machine`](crate::machine) through [`AnalysisRuns`], and measured by a
//! [`MetricSource`] — a model of Prometheus, a recorded series, a fault injector. Only
//! the metric values are simulated; the conditions, limits, dry-run rules and phase
//! messages are the ones a cluster would see.

use std::collections::BTreeMap;

use rollout_core::canary::Action;
use rollout_core::sim::{AnalysisScript, SimRun};
use rollout_core::status::AnalysisPhase;
use rollout_core::time::Timestamp;

use crate::runner::{AnalysisRuns, MetricSource, TemplateCatalog};

/// An [`AnalysisScript`] backed by the analysis runner and a [`MetricSource`].
#[derive(Debug, Clone)]
pub struct SimAnalysis<S> {
    runs: AnalysisRuns,
    source: S,
    rollout_name: String,
    reported: BTreeMap<String, (AnalysisPhase, String)>,
}

impl<S: MetricSource> SimAnalysis<S> {
    /// Runs for the rollout `rollout_name` in `namespace`, templates from `catalog`,
    /// measured by `source`.
    pub fn new(catalog: TemplateCatalog, namespace: &str, rollout_name: &str, source: S) -> Self {
        SimAnalysis {
            runs: AnalysisRuns::new(catalog, namespace),
            source,
            rollout_name: rollout_name.to_string(),
            reported: BTreeMap::new(),
        }
    }

    /// The runs and their statuses.
    pub fn runs(&self) -> &AnalysisRuns {
        &self.runs
    }

    /// The metric source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The metric source, mutably (to change what it answers between updates).
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    fn ensure(&mut self, run: &SimRun) -> Result<(), String> {
        if self.runs.run(&run.name).is_some() {
            return Ok(());
        }
        let start = Action::StartAnalysisRun {
            name: run.name.clone(),
            kind: run.kind,
            analysis: run.analysis.clone(),
            canary_hash: run.canary_hash.clone(),
            stable_hash: run.stable_hash.clone(),
        };
        self.runs
            .apply(std::slice::from_ref(&start), &self.rollout_name, None)
            .map_err(|e| e.to_string())
    }
}

impl<S: MetricSource> AnalysisScript for SimAnalysis<S> {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        if let Err(message) = self.ensure(run) {
            // A run that cannot be built (a missing template) is an Error run, as the
            // rollout would see it.
            return Some((AnalysisPhase::Error, message));
        }
        self.runs.settle(&mut self.source, now);
        let state = self.runs.run(&run.name)?.state();
        let now_phase = (state.phase, state.message);
        let before = self
            .reported
            .get(&run.name)
            .cloned()
            .unwrap_or((AnalysisPhase::Running, String::new()));
        if now_phase == before || now_phase.0 == AnalysisPhase::Pending {
            return None;
        }
        self.reported.insert(run.name.clone(), now_phase.clone());
        Some(now_phase)
    }

    fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
        match self.runs.run(&run.name) {
            None => Some(run.started_at),
            Some(r) if r.status.phase.is_some_and(AnalysisPhase::is_completed) => None,
            Some(r) => r.requeue_at,
        }
    }
}
