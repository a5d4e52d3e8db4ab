//! A fleet simulator: many releases through the real rollout machines, the real analysis
//! runner and the judge, in virtual time, to compare analysis policies.
//!
//! # The model
//!
//! A **scenario** ([`scenario::Scenario`], read from YAML) describes N releases of a
//! service and the policies to compare. Release `i` is drawn from the seed alone
//! ([`model::Release::draw`]): good or bad (`releases.badShare`), and if bad, an effect
//! on the new version's error ratio and/or latency; the service's request rate and
//! baseline error ratio and latency; how long new pods take to become available; and,
//! for a share of the bad releases, pods that never become available (failure
//! injection). Every policy sees exactly the same N releases.
//!
//! A **policy** is a real manifest driven by a real machine:
//!
//! * `kind: argo` — an Argo `Rollout` through rollout-core's canary `reconcile` (canary
//!   strategy) or blue-green `reconcile` (`blueGreen`: pre- and post-promotion analysis,
//!   the active service switched to the new version and, after a failed analysis or an
//!   abort, back) on a simulated cluster ([`rollout_core::sim::SimCluster`]). Its
//!   analysis runs are built from the scenario's AnalysisTemplates by
//!   rollout-analysis' runner (`build_run`, `PreparedRun`: the condition language,
//!   `failureLimit`, `count`, `interval`, dry-run rules, phases and messages are the
//!   real ones). A metric whose provider is `plugin: rollout-rs/judge` is judged
//!   Kayenta-style ([`rollout_analysis::provider::judge`]) on control (stable) and
//!   experiment (canary) series.
//! * `kind: flagger` — a Flagger `Canary` through the Flagger `tick`, its metric checks
//!   answered by rollout-analysis' Flagger checks (builtin `request-success-rate` and
//!   `request-duration`, `thresholdRange`, the failed-checks `threshold`).
//!
//! **Metrics** are what a Prometheus would answer: each query is mapped to a signal of
//! the canary or the stable pods by the scenario's `queries` rules (builtin Flagger
//! queries are recognised as such). A measured error ratio has the binomial sampling
//! noise of the requests the measured pods received in the query window (so a canary at
//! 10% weight is noisier than one at 60%), plus the scenario's extra noise; latency is
//! the baseline plus the effect plus noise. Streams are seeded per release. A
//! blue-green release serves all the production traffic while the active service
//! selects it and none before: its preview gets test traffic only, which is not counted
//! as exposure, and a pre-promotion analysis measures it as a canary without production
//! traffic (an error ratio with the noise of a single request, an unaffected latency).
//!
//! **Time** is virtual. Each rollout starts from its first revision deployed and
//! Healthy (Initialized for Flagger), is updated to the release at the same instant, and
//! is visited only when something can change for it: a pod becoming available, the
//! machine's requeue, an analysis run's next measurement. A visit runs the controller
//! loop — observe, decide, execute, persist — until a pass changes nothing. Rollouts do
//! not interact, so the engine drives them in chunks on worker threads; a release's
//! outcome depends only on the seed and its index, and the results are byte-identical
//! for any thread count or chunk size.
//!
//! **Outputs** per policy ([`report::Summary`]): detection rate (bad releases aborted),
//! false-abort rate (good releases aborted), time to promote (good releases) and time to
//! abort (bad releases) as median / p90 / p99, the requests served by bad versions
//! until their rollout ended (exposure: request rate × the new version's traffic share,
//! integrated over seconds), machine calls; and wall-clock figures ([`engine::Perf`]):
//! decisions per second and live heap per in-flight rollout (measured with the caller's
//! counting allocator, [`engine::RunOptions::heap_bytes`]).
//!
//! # Use
//!
//! ```no_run
//! use rollout_simulate::{RunOptions, Simulation};
//!
//! let sim = Simulation::load(std::path::Path::new("scenarios/error-spike.yaml"))?;
//! let report = sim.run(RunOptions::default());
//! print!("{}", report.table());
//! std::fs::write("error-spike.csv", report.to_csv())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`plot::write_svg`] draws the distributions (SVG, no system fonts needed).

mod argo;
mod compact;
pub mod engine;
mod flagger;
pub mod model;
pub mod plot;
pub mod report;
pub mod scenario;

use std::path::{Path, PathBuf};

use rollout_analysis::runner::TemplateCatalog;
use rollout_analysis::template::{TemplateDocument, template_documents};
use rollout_core::flagger::spec::canary_documents;
use rollout_core::spec::rollout_documents;
use rollout_core::time::Timestamp;

pub use engine::{End, Outcome, Perf, Progress, RunOptions};
pub use report::{PolicyReport, Quantiles, Report, Summary};
pub use scenario::{Scenario, ScenarioError};

use crate::argo::ArgoDriver;
use crate::flagger::FlaggerDriver;
use crate::model::{NoiseModel, Release, Stream};
use crate::scenario::PolicyKind;

/// 2026-01-01T00:00:00Z: virtual time starts here.
const T0: Timestamp = Timestamp::from_secs(1_767_225_600);
/// Rollouts a worker holds at once unless the scenario says otherwise.
const DEFAULT_IN_FLIGHT: u64 = 20_000;
/// Virtual minutes before an undecided rollout counts as stalled.
const DEFAULT_MAX_MINUTES: u64 = 1440;

#[derive(Debug)]
enum PolicyDriver {
    Argo(Box<ArgoDriver>),
    Flagger(Box<FlaggerDriver>),
}

/// A loaded scenario: its policies' manifests read, checked and deployed.
#[derive(Debug)]
pub struct Simulation {
    scenario: Scenario,
    policies: Vec<(String, PolicyDriver)>,
}

impl Simulation {
    /// Reads a scenario file and the manifests it names (relative to its directory).
    pub fn load(path: &Path) -> Result<Simulation, ScenarioError> {
        let scenario = Scenario::from_file(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Simulation::new(scenario, dir)
    }

    /// Loads the manifests of `scenario`, relative to `dir`.
    pub fn new(scenario: Scenario, dir: &Path) -> Result<Simulation, ScenarioError> {
        scenario.check()?;
        let noise = NoiseModel::of(&scenario);
        let mut policies = Vec::new();
        for (index, p) in scenario.policies.iter().enumerate() {
            let fail = |file: &PathBuf, message: String| ScenarioError::Manifest {
                index,
                policy: p.name.clone(),
                file: file.clone(),
                message,
            };
            let read = |name: &str| -> Result<(PathBuf, String), ScenarioError> {
                let file = dir.join(name);
                std::fs::read_to_string(&file)
                    .map(|t| (file.clone(), t))
                    .map_err(|e| fail(&file, e.to_string()))
            };
            let driver = match p.kind {
                PolicyKind::Argo => {
                    let (file, text) = read(p.rollout.as_deref().unwrap_or_default())?;
                    let rollout = rollout_documents(&text)
                        .into_iter()
                        .next()
                        .ok_or_else(|| fail(&file, "no Rollout document".into()))?
                        .result
                        .map_err(|e| fail(&file, e.to_string()))?;
                    rollout.validate().map_err(|e| fail(&file, e.to_string()))?;
                    let (tfile, ttext) = read(p.templates.as_deref().unwrap_or_default())?;
                    let catalog = TemplateCatalog::from_yaml(&ttext)
                        .map_err(|e| fail(&tfile, e.to_string()))?;
                    let d = ArgoDriver::new(
                        rollout,
                        catalog,
                        scenario.queries.clone(),
                        noise,
                        scenario.metrics.series_points,
                        T0,
                    )
                    .map_err(|e| fail(&file, e))?;
                    PolicyDriver::Argo(Box::new(d))
                }
                PolicyKind::Flagger => {
                    let (file, text) = read(p.canary.as_deref().unwrap_or_default())?;
                    let canary = canary_documents(&text)
                        .into_iter()
                        .next()
                        .ok_or_else(|| fail(&file, "no Canary document".into()))?
                        .result
                        .map_err(|e| fail(&file, e.to_string()))?;
                    canary.validate().map_err(|e| fail(&file, e.to_string()))?;
                    let templates = match &p.templates {
                        None => Vec::new(),
                        Some(t) => {
                            let (tfile, ttext) = read(t)?;
                            template_documents(&ttext)
                                .map_err(|e| fail(&tfile, e.to_string()))?
                                .into_iter()
                                .filter_map(|d| match d.document {
                                    TemplateDocument::MetricTemplate(m) => Some(m),
                                    _ => None,
                                })
                                .collect()
                        }
                    };
                    let d = FlaggerDriver::new(
                        canary,
                        templates,
                        p.replicas.unwrap_or(10),
                        scenario.queries.clone(),
                        noise,
                        T0,
                    )
                    .map_err(|e| fail(&file, e))?;
                    PolicyDriver::Flagger(Box::new(d))
                }
            };
            policies.push((p.name.clone(), driver));
        }
        Ok(Simulation { scenario, policies })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Release `index` of the scenario (the same for every policy).
    pub fn release(&self, index: u32) -> Release {
        Release::draw(&self.scenario, index)
    }

    /// Runs every policy over the scenario's releases, one policy after the other.
    pub fn run(&self, opts: RunOptions<'_>) -> Report {
        let s = &self.scenario;
        // `check` bounds `rollouts` to u32.
        let n = u32::try_from(s.rollouts).unwrap_or(u32::MAX);
        let chunk = if opts.in_flight > 0 {
            opts.in_flight
        } else {
            usize::try_from(s.in_flight.unwrap_or(DEFAULT_IN_FLIGHT)).unwrap_or(usize::MAX)
        };
        let max_seconds = i64::try_from(s.max_minutes.unwrap_or(DEFAULT_MAX_MINUTES))
            .unwrap_or(i64::MAX / 120)
            .saturating_mul(60);
        let releases = |i: u32| {
            let r = Release::draw(s, i);
            (r, Stream::new(s.seed, r))
        };
        let count = self.policies.len();
        let mut reports = Vec::with_capacity(count);
        for (k, (name, driver)) in self.policies.iter().enumerate() {
            let at = (k, count);
            let (outcomes, perf, kind) = match driver {
                PolicyDriver::Argo(d) => {
                    let (o, p) =
                        engine::run_policy(d.as_ref(), &releases, n, max_seconds, chunk, opts, at);
                    (o, p, "argo")
                }
                PolicyDriver::Flagger(d) => {
                    let (o, p) =
                        engine::run_policy(d.as_ref(), &releases, n, max_seconds, chunk, opts, at);
                    (o, p, "flagger")
                }
            };
            let summary = Summary::of(&outcomes);
            reports.push(PolicyReport {
                name: name.clone(),
                kind,
                outcomes,
                summary,
                perf,
            });
        }
        Report {
            scenario: s.name.clone(),
            seed: s.seed,
            rollouts: s.rollouts,
            policies: reports,
        }
    }
}
