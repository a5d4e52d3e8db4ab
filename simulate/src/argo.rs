//! The Argo policy: a `Rollout` driven by rollout-core's canary machine (canary
//! strategy) or blue-green machine (`blueGreen` strategy) on a [`SimCluster`], its
//! analysis runs built from the AnalysisTemplates by the analysis runner ([`build_run`],
//! [`PreparedRun`]) and measured from the release's metric stream: Prometheus queries
//! through the scenario's query rules, the judge plugin (`rollout-rs/judge`) through
//! [`judge_with`] on control and experiment series.
//!
//! The new version's share of production traffic is, for a canary, the router's canary
//! weight (or, without a router, its share of the available pods); for a blue-green
//! rollout, 1 while the active service selects it and 0 otherwise: the preview service
//! gets test traffic only, which the model does not count as exposure (a pre-promotion
//! analysis measures the preview as a canary with no production traffic: its error
//! ratio has the sampling noise of a single request per query window, its latency is
//! unaffected).

use std::borrow::Cow;
use std::rc::Rc;

use rollout_analysis::expr::Value;
use rollout_analysis::machine::{MeasurementResult, RunAction, RunDecision, RunStatus};
use rollout_analysis::provider::judge::{PLUGIN, judge_with};
use rollout_analysis::provider::{Measured, ProviderError};
use rollout_analysis::runner::{
    NoValues, PreparedRun, RunRequest, TemplateCatalog, build_run, to_result,
};
use rollout_analysis::template::Metric;
use rollout_core::bluegreen;
use rollout_core::canary::{self, Action, AnalysisRunKind, Decision, steps_hash};
use rollout_core::hash::HashStr;
use rollout_core::sim::{AlwaysSucceeds, Harness, SimCluster};
use rollout_core::spec::{Rollout, RolloutAnalysis};
use rollout_core::status::{AnalysisPhase, RolloutPhase, RolloutStatus};
use rollout_core::time::Timestamp;

use crate::compact::Parked;
use crate::engine::{Driver, End, Outcome, Track};
use crate::model::{NoiseModel, Release, Stream};
use crate::scenario::{QueryRule, Signal, Version};

/// Pod template hash of the stable revision.
pub(crate) const V1: &str = "v1";
/// Pod template hash of the release.
pub(crate) const V2: &str = "v2";
/// Passes a visit may take (a controller would requeue).
const MAX_PASSES: usize = 64;

/// Which machine drives the rollout.
#[derive(Debug)]
enum Strategy {
    /// `spec.strategy.canary`, with the step hash every rollout of the fleet shares.
    Canary { steps_hash: HashStr },
    /// `spec.strategy.blueGreen`, with the name of the active service.
    BlueGreen { active_service: String },
}

/// The shared part of an Argo policy.
#[derive(Debug)]
pub(crate) struct ArgoDriver {
    rollout: Rollout,
    strategy: Strategy,
    catalog: TemplateCatalog,
    namespace: String,
    name: String,
    /// The status after the first revision, every rollout's starting point.
    status: Parked<RolloutStatus>,
    cluster: SimCluster,
    start: Timestamp,
    rules: Vec<QueryRule>,
    noise: NoiseModel,
    points: u32,
}

/// One analysis run in flight: the prepared run is shared by every rollout of a worker;
/// its status is parked as bytes between reconciliations.
struct LiveRun {
    name: String,
    prepared: Rc<PreparedRun>,
    status: Parked<RunStatus>,
    /// `status.phase`, kept unparked.
    phase: Option<AnalysisPhase>,
    requeue_at: Option<Timestamp>,
    pending: Vec<MeasurementResult>,
    started: bool,
}

/// One rollout. Its status is parked as bytes between visits (a visit unparks it into
/// the worker's scratch status): most of a member's memory otherwise.
pub(crate) struct ArgoMember {
    status: Parked<RolloutStatus>,
    cluster: SimCluster,
    runs: Vec<LiveRun>,
    requeue_at: Option<Timestamp>,
    stream: Stream,
    track: Track,
}

/// A worker's scratch: prepared runs by (kind, analysis) — building one composes
/// templates, resolves arguments and compiles rules, so a worker does it once per step —
/// and the statuses of the rollout being visited and of the run being reconciled.
#[derive(Default)]
pub(crate) struct PreparedCache {
    status: RolloutStatus,
    run_status: RunStatus,
    entries: Vec<(
        AnalysisRunKind,
        RolloutAnalysis,
        Result<Rc<PreparedRun>, String>,
    )>,
}

impl ArgoDriver {
    /// Deploys the first revision of `rollout` (analysis always succeeding) and keeps
    /// that state as every rollout's starting point.
    pub(crate) fn new(
        rollout: Rollout,
        catalog: TemplateCatalog,
        rules: Vec<QueryRule>,
        noise: NoiseModel,
        points: u32,
        t0: Timestamp,
    ) -> Result<ArgoDriver, String> {
        let strategy = match (
            &rollout.spec.strategy.canary,
            &rollout.spec.strategy.blue_green,
        ) {
            // As `Harness::pass` (which deploys the first revision) decides.
            (_, Some(bg)) => Strategy::BlueGreen {
                active_service: bg.active_service.clone(),
            },
            (Some(canary), None) => Strategy::Canary {
                steps_hash: steps_hash(&canary.steps),
            },
            (None, None) => {
                return Err("the Rollout has neither a canary nor a blueGreen strategy".into());
            }
        };
        let mut h = Harness::new(rollout.clone(), V1, SimCluster::new(0), t0);
        h.run(
            &mut AlwaysSucceeds { after_seconds: 0 },
            t0.add_secs(86_400),
            |_, _| {},
        );
        if h.status.phase != Some(RolloutPhase::Healthy) || h.status.stable_rs != V1 {
            return Err(format!(
                "the first revision never became Healthy (phase {:?})",
                h.status.phase
            ));
        }
        let mut cluster = h.cluster;
        cluster.runs = Vec::new();
        shrink_cluster(&mut cluster);
        let namespace = rollout
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = rollout.metadata.name.clone().unwrap_or_default();
        Ok(ArgoDriver {
            strategy,
            catalog,
            namespace,
            name,
            status: Parked::park(&h.status),
            cluster,
            start: h.now.add_secs(60),
            rollout,
            rules,
            noise,
            points,
        })
    }

    fn prepared(
        &self,
        cache: &mut PreparedCache,
        action: &Action,
    ) -> Result<Rc<PreparedRun>, String> {
        let Action::StartAnalysisRun { kind, analysis, .. } = action else {
            return Err("not a StartAnalysisRun".into());
        };
        if let Some((_, _, p)) = cache
            .entries
            .iter()
            .find(|(k, a, _)| k == kind && a == analysis)
        {
            return p.clone();
        }
        let built = RunRequest::from_action(action, &self.namespace, &self.name)
            .ok_or_else(|| "not a StartAnalysisRun".to_string())
            .and_then(|req| build_run(&self.catalog, &req).map_err(|e| e.to_string()))
            .map(|run| Rc::new(PreparedRun::new(&run, &NoValues)));
        cache.entries.push((*kind, analysis.clone(), built.clone()));
        built
    }

    /// The new version's share (0..1) of production traffic.
    fn canary_share(&self, status: &RolloutStatus, cluster: &SimCluster) -> f64 {
        if status.stable_rs == V2 {
            return 1.0;
        }
        if let Strategy::BlueGreen { active_service } = &self.strategy {
            return if cluster.service_selector(active_service) == Some(V2) {
                1.0
            } else {
                0.0
            };
        }
        if let Some(t) = cluster.traffic.filter(|t| t.total > 0) {
            return f64::from(t.canary.max(0)) / f64::from(t.total);
        }
        let (mut canary, mut all) = (0i64, 0i64);
        for rs in &cluster.replica_sets {
            let a = i64::from(rs.available_replicas.max(0));
            all += a;
            if rs.pod_template_hash == V2 {
                canary += a;
            }
        }
        if all == 0 {
            0.0
        } else {
            canary as f64 / all as f64
        }
    }
}

/// Answers one measurement of `metric` from the stream.
pub(crate) fn measure(
    stream: &mut Stream,
    rules: &[QueryRule],
    noise: &NoiseModel,
    points: u32,
    share: f64,
    metric: &Metric,
) -> Result<Measured, ProviderError> {
    let lookup = |query: &str| -> Result<(Signal, Version), ProviderError> {
        rules
            .iter()
            .find(|r| query.contains(&r.contains))
            .map(|r| (r.signal, r.version))
            .ok_or_else(|| ProviderError::Query {
                provider: "prometheus",
                error_type: "bad_data".into(),
                message: format!("the simulated Prometheus has no rule for {query:?}"),
            })
    };
    if metric
        .provider
        .plugin
        .as_ref()
        .is_some_and(|p| p.get(PLUGIN).is_some())
    {
        return judge_with(metric, |_, _, series| {
            let query = series
                .get("prometheus")
                .and_then(|p| p.get("query"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let (signal, version) = lookup(query)?;
            Ok((0..points)
                .map(|_| stream.sample(noise, signal, version, share))
                .collect())
        });
    }
    let Some(query) = metric
        .provider
        .prometheus
        .as_ref()
        .and_then(|p| p.query.as_deref())
    else {
        return Err(ProviderError::NotConfigured {
            metric: metric.name.clone(),
            provider: "prometheus".into(),
        });
    };
    let (signal, version) = lookup(query)?;
    let v = stream.sample(noise, signal, version, share);
    // An instant vector with one sample, as the Prometheus provider hands it over.
    Ok(Measured::Value(Value::Array(vec![Value::Float(v)])))
}

impl ArgoDriver {
    /// Reconciles and measures every live run until nothing is due at `now`, and copies
    /// the phases of the runs it reconciled into the cluster (a run that was not due has
    /// not changed since); completed runs are dropped. `scratch` holds the status of the
    /// run being reconciled.
    fn settle(
        &self,
        m: &mut ArgoMember,
        status: &RolloutStatus,
        scratch: &mut RunStatus,
        now: Timestamp,
    ) {
        let share = self.canary_share(status, &m.cluster);
        let ArgoMember {
            runs,
            cluster,
            stream,
            ..
        } = m;
        for run in runs.iter_mut() {
            let mut unparked = false;
            let mut changed = false;
            for _ in 0..16 {
                let due = !run.started
                    || !run.pending.is_empty()
                    || run.requeue_at.is_some_and(|t| t <= now);
                if !due {
                    break;
                }
                if !unparked {
                    if !run.status.unpark_into(scratch) {
                        // Not bytes `Parked::park` wrote (cannot happen).
                        *scratch = RunStatus {
                            phase: Some(AnalysisPhase::Error),
                            message: "the simulator lost the run's status".into(),
                            ..RunStatus::default()
                        };
                        changed = true;
                        unparked = true;
                        break;
                    }
                    unparked = true;
                }
                run.started = true;
                let pending = std::mem::take(&mut run.pending);
                let RunDecision {
                    status,
                    actions,
                    requeue_at,
                } = run.prepared.reconcile(scratch, &pending, now, false);
                let new_status = match status {
                    Cow::Owned(s) => Some(s),
                    Cow::Borrowed(_) => None,
                };
                if let Some(s) = new_status {
                    *scratch = s;
                    changed = true;
                }
                run.requeue_at = requeue_at;
                for a in actions {
                    if let RunAction::Measure { metric } = a
                        && let Some(def) = run.prepared.metric(&metric)
                    {
                        let answer =
                            measure(stream, &self.rules, &self.noise, self.points, share, def);
                        run.pending.push(to_result(&metric, answer, now));
                    }
                }
            }
            if !unparked {
                continue;
            }
            if changed {
                run.status = Parked::park(scratch);
                run.phase = scratch.phase;
            }
            if let Some(phase) = scratch.phase.filter(|p| *p != AnalysisPhase::Pending)
                && let Some(state) = cluster
                    .analysis_runs
                    .iter_mut()
                    .find(|s| s.name == run.name)
                && (state.phase != phase || state.message != scratch.message)
            {
                state.phase = phase;
                state.message.clone_from(&scratch.message);
            }
        }
        runs.retain(|r| !r.phase.is_some_and(AnalysisPhase::is_completed));
    }

    /// One pass of the rollout's machine.
    fn reconcile<'a>(
        &'a self,
        status: &'a RolloutStatus,
        cluster: &'a SimCluster,
        now: Timestamp,
    ) -> Decision<'a> {
        let mut observed = cluster.observed(V2);
        match &self.strategy {
            Strategy::Canary { steps_hash } => {
                // A controller keeps the step hash per spec generation; the fleet shares one.
                observed.steps_hash = Some(*steps_hash);
                canary::reconcile(&self.rollout, status, &observed, now)
            }
            Strategy::BlueGreen { .. } => {
                bluegreen::reconcile(&self.rollout, status, &observed, now)
            }
        }
    }
}

/// `Vec::push` that grows the capacity by one only (a member holds one or two runs).
trait PushExact<T> {
    fn push_exact(&mut self, value: T);
}

impl<T> PushExact<T> for Vec<T> {
    fn push_exact(&mut self, value: T) {
        self.reserve_exact(1);
        self.push(value);
    }
}

/// Gives back the spare capacity of the cluster's vectors (contents unchanged).
fn shrink_cluster(c: &mut SimCluster) {
    c.replica_sets.shrink_to_fit();
    c.services.shrink_to_fit();
    c.analysis_runs.shrink_to_fit();
    c.experiments.shrink_to_fit();
    c.managed_routes.shrink_to_fit();
    c.broken_hashes.shrink_to_fit();
}

/// Gives back the spare capacity a visit left in a member (contents unchanged, so the
/// next decisions are the same): a fleet holds tens of thousands of members at once.
fn shrink(m: &mut ArgoMember) {
    shrink_cluster(&mut m.cluster);
    m.runs.shrink_to_fit();
    for r in &mut m.runs {
        r.pending.shrink_to_fit();
    }
}

impl Driver for ArgoDriver {
    type Member = ArgoMember;
    type Cache = PreparedCache;

    fn start(&self) -> Timestamp {
        self.start
    }

    fn member(&self, release: Release, stream: Stream) -> ArgoMember {
        let mut cluster = self.cluster.clone();
        cluster.pod_ready_seconds = release.pod_ready_seconds;
        if release.crash_loop {
            cluster.broken_hashes.push_exact(V2.to_string());
        }
        ArgoMember {
            status: self.status.clone(),
            cluster,
            runs: Vec::new(),
            requeue_at: None,
            stream,
            track: Track::new(self.start),
        }
    }

    fn visit(&self, m: &mut ArgoMember, now: Timestamp, cache: &mut PreparedCache) {
        m.track.advance(now, m.stream.release.requests_per_second);
        let mut status = std::mem::take(&mut cache.status);
        if !m.status.unpark_into(&mut status) {
            // Not bytes `Parked::park` wrote (cannot happen): the rollout ends here.
            m.track.decide(End::Stalled, now);
            cache.status = status;
            return;
        }
        let mut run_status = std::mem::take(&mut cache.run_status);
        let mut changed = false;
        for _ in 0..MAX_PASSES {
            m.cluster.advance(now);
            self.settle(m, &status, &mut run_status, now);
            let decision = self.reconcile(&status, &m.cluster, now);
            m.track.decisions += 1;
            m.requeue_at = decision.requeue_at;
            if decision.is_noop() {
                break;
            }
            let Decision {
                status: decided,
                actions,
                ..
            } = decision;
            let new_status = match decided {
                Cow::Owned(s) => Some(s),
                Cow::Borrowed(_) => None,
            };
            for a in &actions {
                match a {
                    Action::StartAnalysisRun { name, .. }
                        if !m.runs.iter().any(|r| &r.name == name) =>
                    {
                        match self.prepared(cache, a) {
                            Ok(prepared) => m.runs.push_exact(LiveRun {
                                name: name.clone(),
                                prepared,
                                status: Parked::park(&RunStatus::default()),
                                phase: None,
                                requeue_at: None,
                                pending: Vec::new(),
                                started: false,
                            }),
                            Err(message) => {
                                m.cluster.apply(std::slice::from_ref(a), now);
                                m.cluster
                                    .set_run_phase(name, AnalysisPhase::Error, &message);
                            }
                        }
                    }
                    Action::TerminateAnalysisRun { name } => {
                        m.runs.retain(|r| &r.name != name);
                    }
                    _ => {}
                }
            }
            m.cluster.apply(&actions, now);
            // The runs are driven here; the cluster's copies of their specs are not needed.
            m.cluster.runs = Vec::new();
            if let Some(s) = new_status {
                status = s;
                changed = true;
            }
        }
        m.track.share = self.canary_share(&status, &m.cluster);
        shrink(m);
        if status.stable_rs == V2 {
            m.track.decide(End::Promoted, now);
        } else if status.abort {
            m.track.decide(End::Aborted, now);
        }
        if changed {
            m.status = Parked::park(&status);
        }
        cache.status = status;
        cache.run_status = run_status;
    }

    fn next(&self, m: &ArgoMember, now: Timestamp) -> Option<Timestamp> {
        match m.track.decided {
            Some((End::Promoted | End::Stalled, _)) => return None,
            Some((End::Aborted, _)) if m.track.share == 0.0 => return None,
            _ => {}
        }
        [m.cluster.next_change(), m.requeue_at]
            .into_iter()
            .flatten()
            .chain(m.runs.iter().filter_map(|r| r.requeue_at))
            .filter(|t| *t > now)
            .min()
    }

    fn outcome(&self, m: &ArgoMember, now: Timestamp) -> Outcome {
        m.track.outcome(&m.stream, now)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::Effect;
    use crate::{PolicyDriver, Scenario, Simulation};

    /// The blue-green policy of the shipped scenario, every release bad with `effect`
    /// (or good, for `None`).
    fn bluegreen(effect: Option<Effect>) -> (Simulation, usize) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut s = Scenario::from_file(&dir.join("bluegreen.yaml")).unwrap();
        s.rollouts = 40;
        match effect {
            Some(e) => {
                s.releases.bad_share = 1.0;
                s.releases.effects = vec![e];
            }
            None => s.releases.bad_share = 0.0,
        }
        let sim = Simulation::new(s, &dir).unwrap();
        let k = sim
            .scenario
            .policies
            .iter()
            .position(|p| p.name == "bluegreen-analysis")
            .unwrap();
        (sim, k)
    }

    /// Drives release `index` to its end; returns the member, the end time and the
    /// active service's selector after every visit where it changed.
    fn drive(sim: &Simulation, k: usize, index: u32) -> (ArgoMember, Timestamp, Vec<String>) {
        let PolicyDriver::Argo(d) = &sim.policies[k].1 else {
            panic!("not an Argo policy");
        };
        assert!(matches!(d.strategy, Strategy::BlueGreen { .. }));
        let release = sim.release(index);
        let mut m = d.member(release, Stream::new(sim.scenario.seed, release));
        let mut cache = PreparedCache::default();
        let mut now = d.start();
        let mut selectors: Vec<String> = vec![];
        for _ in 0..10_000 {
            d.visit(&mut m, now, &mut cache);
            let active = m.cluster.service_selector("web-active").unwrap_or("");
            if selectors.last().is_none_or(|s| s != active) {
                selectors.push(active.to_string());
            }
            match d.next(&m, now) {
                Some(t) => now = t,
                None => break,
            }
        }
        (m, now, selectors)
    }

    fn status(m: &ArgoMember) -> RolloutStatus {
        let mut s = RolloutStatus::default();
        assert!(m.status.unpark_into(&mut s));
        s
    }

    #[test]
    fn a_good_blue_green_release_is_switched_to_and_promoted_after_its_analyses() {
        let (sim, k) = bluegreen(None);
        for index in 0..5 {
            let (m, _, selectors) = drive(&sim, k, index);
            assert_eq!(selectors, [V1, V2], "release {index}");
            let s = status(&m);
            assert_eq!(s.stable_rs, V2);
            let post = s.blue_green.post_promotion_analysis_run_status.unwrap();
            assert_eq!(post.status, AnalysisPhase::Successful);
            let (end, at) = m.track.decided.unwrap();
            assert_eq!(end, End::Promoted);
            // A minute of preview analysis (points at 0, 30 and 60 s), then five
            // 1-minute post-promotion points.
            assert!(at.millis_since(m.track.start) >= 300_000, "{at:?}");
            assert_eq!(m.track.share, 1.0);
            assert!(m.track.exposure > 0.0);
        }
    }

    #[test]
    fn an_error_spike_is_caught_after_the_switch_and_the_active_service_goes_back() {
        let (sim, k) = bluegreen(Some(Effect {
            weight: 1.0,
            error_rate: 0.2,
            latency_ms: 0.0,
        }));
        for index in 0..5 {
            let (m, _, selectors) = drive(&sim, k, index);
            // Served all the traffic for a while, then none again.
            assert_eq!(selectors, [V1, V2, V1], "release {index}");
            let s = status(&m);
            assert!(s.abort);
            assert_eq!(s.stable_rs, V1);
            let post = s.blue_green.post_promotion_analysis_run_status.unwrap();
            assert_eq!(post.status, AnalysisPhase::Failed);
            assert_eq!(m.track.decided.map(|d| d.0), Some(End::Aborted));
            assert_eq!(m.track.share, 0.0);
            assert!(m.track.exposure > 0.0);
        }
    }

    #[test]
    fn a_latency_regression_is_caught_on_the_preview_before_any_traffic() {
        let (sim, k) = bluegreen(Some(Effect {
            weight: 1.0,
            error_rate: 0.0,
            latency_ms: 1000.0,
        }));
        for index in 0..5 {
            let (m, _, selectors) = drive(&sim, k, index);
            assert_eq!(selectors, [V1], "release {index}");
            let s = status(&m);
            assert!(s.abort);
            let pre = s.blue_green.pre_promotion_analysis_run_status.unwrap();
            assert_eq!(pre.status, AnalysisPhase::Failed);
            assert!(s.blue_green.post_promotion_analysis_run_status.is_none());
            assert_eq!(m.track.decided.map(|d| d.0), Some(End::Aborted));
            assert_eq!(m.track.exposure, 0.0);
        }
    }

    #[test]
    fn a_rollout_with_neither_strategy_is_refused() {
        let (sim, k) = bluegreen(None);
        let PolicyDriver::Argo(d) = &sim.policies[k].1 else {
            panic!("not an Argo policy");
        };
        let mut rollout = d.rollout.clone();
        rollout.spec.strategy.blue_green = None;
        let e = ArgoDriver::new(
            rollout,
            d.catalog.clone(),
            d.rules.clone(),
            d.noise,
            d.points,
            crate::T0,
        )
        .unwrap_err();
        assert!(
            e.contains("neither a canary nor a blueGreen strategy"),
            "{e}"
        );
    }
}
