//! The Argo policy: a `Rollout` (canary strategy) driven by rollout-core's canary machine
//! on a [`SimCluster`], its analysis runs built from the AnalysisTemplates by the
//! analysis runner ([`build_run`], [`PreparedRun`]) and measured from the release's
//! metric stream: Prometheus queries through the scenario's query rules, the judge
//! plugin (`rollout-rs/judge`) through [`judge_with`] on control and experiment series.

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
use rollout_core::canary::{Action, AnalysisRunKind, Decision, reconcile, steps_hash};
use rollout_core::hash::HashStr;
use rollout_core::sim::{AlwaysSucceeds, Harness, SimCluster};
use rollout_core::spec::{Rollout, RolloutAnalysis};
use rollout_core::status::{AnalysisPhase, RolloutPhase, RolloutStatus};
use rollout_core::time::Timestamp;

use crate::engine::{Driver, End, Outcome, Track};
use crate::model::{NoiseModel, Release, Stream};
use crate::scenario::{QueryRule, Signal, Version};

/// Pod template hash of the stable revision.
pub(crate) const V1: &str = "v1";
/// Pod template hash of the release.
pub(crate) const V2: &str = "v2";
/// Passes a visit may take (a controller would requeue).
const MAX_PASSES: usize = 64;

/// The shared part of an Argo policy.
#[derive(Debug)]
pub(crate) struct ArgoDriver {
    rollout: Rollout,
    steps_hash: HashStr,
    catalog: TemplateCatalog,
    namespace: String,
    name: String,
    status: RolloutStatus,
    cluster: SimCluster,
    start: Timestamp,
    rules: Vec<QueryRule>,
    noise: NoiseModel,
    points: u32,
}

/// One analysis run in flight: the prepared run is shared by every rollout of a worker.
struct LiveRun {
    name: String,
    prepared: Rc<PreparedRun>,
    status: RunStatus,
    requeue_at: Option<Timestamp>,
    pending: Vec<MeasurementResult>,
    started: bool,
}

/// One rollout.
pub(crate) struct ArgoMember {
    status: RolloutStatus,
    cluster: SimCluster,
    runs: Vec<LiveRun>,
    requeue_at: Option<Timestamp>,
    stream: Stream,
    track: Track,
}

/// Prepared runs by (kind, analysis): building one composes templates, resolves
/// arguments and compiles rules, so a worker does it once per step.
#[derive(Default)]
pub(crate) struct PreparedCache {
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
        let Some(canary) = rollout.spec.strategy.canary.as_ref() else {
            return Err("only the canary strategy is simulated".into());
        };
        let steps_hash = steps_hash(&canary.steps);
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
        cluster.runs.clear();
        let namespace = rollout
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = rollout.metadata.name.clone().unwrap_or_default();
        Ok(ArgoDriver {
            steps_hash,
            catalog,
            namespace,
            name,
            status: h.status,
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

    fn canary_share(status: &RolloutStatus, cluster: &SimCluster) -> f64 {
        if status.stable_rs == V2 {
            return 1.0;
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
    /// their phases into the cluster; completed runs are dropped.
    fn settle(&self, m: &mut ArgoMember, now: Timestamp) {
        let share = Self::canary_share(&m.status, &m.cluster);
        let ArgoMember {
            runs,
            cluster,
            stream,
            ..
        } = m;
        for run in runs.iter_mut() {
            for _ in 0..16 {
                let due = !run.started
                    || !run.pending.is_empty()
                    || run.requeue_at.is_some_and(|t| t <= now);
                if !due {
                    break;
                }
                run.started = true;
                let pending = std::mem::take(&mut run.pending);
                let RunDecision {
                    status,
                    actions,
                    requeue_at,
                } = run.prepared.reconcile(&run.status, &pending, now, false);
                let new_status = match status {
                    Cow::Owned(s) => Some(s),
                    Cow::Borrowed(_) => None,
                };
                if let Some(s) = new_status {
                    run.status = s;
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
            if let Some(phase) = run.status.phase.filter(|p| *p != AnalysisPhase::Pending)
                && let Some(state) = cluster
                    .analysis_runs
                    .iter_mut()
                    .find(|s| s.name == run.name)
                && (state.phase != phase || state.message != run.status.message)
            {
                state.phase = phase;
                state.message.clone_from(&run.status.message);
            }
        }
        runs.retain(|r| !r.status.phase.is_some_and(AnalysisPhase::is_completed));
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
            cluster.broken_hashes.push(V2.to_string());
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
        for _ in 0..MAX_PASSES {
            m.cluster.advance(now);
            self.settle(m, now);
            let mut observed = m.cluster.observed(V2);
            // A controller keeps the step hash per spec generation; the fleet shares one.
            observed.steps_hash = Some(self.steps_hash);
            let decision = reconcile(&self.rollout, &m.status, &observed, now);
            m.track.decisions += 1;
            m.requeue_at = decision.requeue_at;
            if decision.is_noop() {
                break;
            }
            let Decision {
                status, actions, ..
            } = decision;
            let new_status = match status {
                Cow::Owned(s) => Some(s),
                Cow::Borrowed(_) => None,
            };
            for a in &actions {
                match a {
                    Action::StartAnalysisRun { name, .. }
                        if !m.runs.iter().any(|r| &r.name == name) =>
                    {
                        match self.prepared(cache, a) {
                            Ok(prepared) => m.runs.push(LiveRun {
                                name: name.clone(),
                                prepared,
                                status: RunStatus::default(),
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
            m.cluster.runs.clear();
            if let Some(s) = new_status {
                m.status = s;
            }
        }
        m.track.share = Self::canary_share(&m.status, &m.cluster);
        if m.status.stable_rs == V2 {
            m.track.decide(End::Promoted, now);
        } else if m.status.abort {
            m.track.decide(End::Aborted, now);
        }
    }

    fn next(&self, m: &ArgoMember, now: Timestamp) -> Option<Timestamp> {
        match m.track.decided {
            Some((End::Promoted, _)) => return None,
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
