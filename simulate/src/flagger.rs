//! The Flagger policy: a `Canary` driven by rollout-core's Flagger machine, its metric
//! checks answered by rollout-analysis' Flagger checks ([`run_metric_checks`]: builtin
//! `request-success-rate` / `request-duration`, inline queries and MetricTemplates,
//! `thresholdRange` rules) on the release's metric stream.

use std::borrow::Cow;

use rollout_analysis::flagger::check::run_metric_checks;
use rollout_analysis::flagger::{BuiltinMetric, CheckContext, QueryRequest, QuerySource};
use rollout_analysis::template::MetricTemplate;
use rollout_core::flagger::machine::{
    Action, DeploymentState, MetricResult, Observed, Readiness, Routes, ScaleTo, WebhookResult,
    tick,
};
use rollout_core::flagger::spec::{Canary, CanaryAnalysis};
use rollout_core::flagger::status::{CanaryPhase, CanaryStatus};
use rollout_core::time::Timestamp;

use crate::argo::{V1, V2};
use crate::engine::{Driver, End, Outcome, Track};
use crate::model::{NoiseModel, Release, Stream};
use crate::scenario::{QueryRule, Signal, Version};

/// Rounds of one tick (one per gate at most).
const MAX_ROUNDS: usize = 8;

/// A Deployment as Flagger sees it: all pods of a generation become ready together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Deploy {
    replicas: i32,
    generation: i64,
    ready_at: Timestamp,
    never_ready: bool,
}

impl Deploy {
    fn scale(&mut self, replicas: i32, now: Timestamp, ready_seconds: i64) {
        if replicas != self.replicas {
            self.generation += 1;
            if replicas > self.replicas {
                self.ready_at = now.add_secs(ready_seconds);
            }
            self.replicas = replicas;
        }
    }

    fn state(&self, name: &str, now: Timestamp) -> DeploymentState {
        let available = if self.never_ready || now < self.ready_at {
            0
        } else {
            self.replicas
        };
        let waiting = available < self.replicas;
        DeploymentState {
            name: name.to_string(),
            generation: self.generation,
            observed_generation: self.generation,
            spec_replicas: Some(self.replicas),
            replicas: self.replicas,
            updated_replicas: self.replicas,
            available_replicas: available,
            progressing_reason: waiting.then(|| "ReplicaSetUpdated".to_string()),
            unavailable_since: waiting.then_some(self.ready_at),
        }
    }
}

/// The shared part of a Flagger policy.
#[derive(Debug)]
pub(crate) struct FlaggerDriver {
    canary: Canary,
    templates: Vec<MetricTemplate>,
    mesh: String,
    replicas: i32,
    status: CanaryStatus,
    routes: Routes,
    primary: Deploy,
    target: Deploy,
    start: Timestamp,
    rules: Vec<QueryRule>,
    noise: NoiseModel,
}

/// One canary.
pub(crate) struct FlaggerMember {
    status: CanaryStatus,
    routes: Routes,
    primary: Deploy,
    target: Deploy,
    primary_new: bool,
    target_hash: &'static str,
    requeue_at: Option<Timestamp>,
    stream: Stream,
    track: Track,
}

impl FlaggerDriver {
    /// Initialises `canary` (the first revision promoted to the primary) and keeps that
    /// state as every rollout's starting point.
    pub(crate) fn new(
        canary: Canary,
        templates: Vec<MetricTemplate>,
        replicas: i32,
        rules: Vec<QueryRule>,
        noise: NoiseModel,
        t0: Timestamp,
    ) -> Result<FlaggerDriver, String> {
        let mesh = canary
            .spec
            .provider
            .clone()
            .unwrap_or_else(|| "istio".into());
        let mut d = FlaggerDriver {
            canary,
            templates,
            mesh,
            replicas,
            status: CanaryStatus::default(),
            routes: Routes::PRIMARY,
            primary: Deploy {
                replicas: 0,
                generation: 1,
                ready_at: t0,
                never_ready: false,
            },
            target: Deploy {
                replicas,
                generation: 1,
                ready_at: t0,
                never_ready: false,
            },
            start: t0,
            rules: Vec::new(),
            noise,
        };
        let mut m = FlaggerMember {
            status: CanaryStatus::default(),
            routes: Routes::PRIMARY,
            primary: d.primary,
            target: d.target,
            primary_new: false,
            target_hash: V1,
            requeue_at: None,
            stream: Stream::new(0, Release::neutral(0)),
            track: Track::new(t0),
        };
        let mut now = t0;
        for _ in 0..1000 {
            d.tick(&mut m, now, 0);
            if m.status.phase == Some(CanaryPhase::Initialized) {
                d.status = m.status;
                d.routes = m.routes;
                d.primary = m.primary;
                d.target = m.target;
                d.start = now.add_secs(d.interval());
                d.rules = rules;
                return Ok(d);
            }
            now = m.requeue_at.unwrap_or(now.add_secs(d.interval()));
        }
        Err(format!(
            "the canary never reached Initialized (phase {:?})",
            m.status.phase
        ))
    }

    fn interval(&self) -> i64 {
        self.canary
            .spec
            .analysis
            .as_ref()
            .map_or(60, CanaryAnalysis::interval_seconds)
    }

    fn answer(&self, stream: &mut Stream, share: f64, req: &QueryRequest) -> Result<f64, String> {
        match &req.source {
            QuerySource::Builtin {
                observer, metric, ..
            } => match metric {
                BuiltinMetric::RequestSuccessRate => {
                    Ok(stream.sample(&self.noise, Signal::SuccessPercent, Version::Canary, share))
                }
                BuiltinMetric::RequestDuration => {
                    let ms = stream.sample(&self.noise, Signal::LatencyMs, Version::Canary, share);
                    Ok(ms / observer.duration_ms(1.0))
                }
                other => Err(format!("the simulator does not model {other:?}")),
            },
            _ => {
                let rule = self
                    .rules
                    .iter()
                    .find(|r| req.query.contains(&r.contains))
                    .ok_or_else(|| {
                        format!("the simulated Prometheus has no rule for {:?}", req.query)
                    })?;
                Ok(stream.sample(&self.noise, rule.signal, rule.version, share))
            }
        }
    }

    /// One tick at `now`, answering the checks it asks for; returns machine calls.
    fn tick(&self, m: &mut FlaggerMember, now: Timestamp, ready_seconds: i64) -> u32 {
        let analysis = self.canary.spec.analysis.as_ref();
        let deadline = self.canary.spec.progress_deadline_seconds();
        let primary = if m.primary.replicas == 0 && m.status.phase.is_none() {
            Readiness::Waiting("primary is being created".into())
        } else {
            m.primary.state("primary", now).primary_readiness(
                analysis.map_or(100, CanaryAnalysis::primary_ready_threshold),
                deadline,
                now,
            )
        };
        let target = m.target.state("target", now).readiness(
            analysis.map_or(100, CanaryAnalysis::canary_ready_threshold),
            deadline,
            now,
        );
        let configs = std::collections::BTreeMap::new();
        let share = Self::share(m);
        let mut metrics: Option<Vec<MetricResult>> = None;
        let mut webhooks: Vec<WebhookResult> = Vec::new();
        let ctx = CheckContext::new(&self.mesh, "http://prometheus.sim:9090");
        let mut calls = 0;
        for _ in 0..MAX_ROUNDS {
            let observed = Observed {
                target_hash: m.target_hash,
                tracked_configs: &configs,
                primary: primary.clone(),
                canary: target.clone(),
                routes: m.routes,
                metrics: metrics.as_deref(),
                webhooks: &webhooks,
            };
            let decision = tick(&self.canary, &m.status, &observed, now);
            calls += 1;
            if decision.awaits_results() {
                for request in &decision.actions {
                    match request {
                        Action::CallWebhook {
                            name, hook_type, ..
                        } => webhooks.push(WebhookResult::ok(name.clone(), *hook_type)),
                        Action::RunMetricChecks { metrics: names } => {
                            let stream = &mut m.stream;
                            metrics = Some(run_metric_checks(
                                &self.canary,
                                names,
                                &self.templates,
                                &ctx,
                                &mut |req: &QueryRequest| self.answer(stream, share, req),
                            ));
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let new_status = match decision.status {
                Cow::Owned(s) => Some(s),
                Cow::Borrowed(_) => None,
            };
            m.requeue_at = decision.requeue_at;
            for action in &decision.actions {
                match action {
                    Action::InitializePrimary if m.primary.replicas == 0 => {
                        m.primary.scale(self.replicas, now, ready_seconds);
                    }
                    Action::ScaleTarget { replicas } => {
                        let n = match replicas {
                            ScaleTo::Zero => 0,
                            _ => self.replicas,
                        };
                        m.target.scale(n, now, ready_seconds);
                    }
                    Action::SetRoutes {
                        primary,
                        canary,
                        mirrored,
                    } => m.routes = Routes::new(*primary, *canary, *mirrored),
                    Action::Promote => {
                        m.primary.generation += 1;
                        m.primary.ready_at = now.add_secs(ready_seconds);
                        m.primary.never_ready = m.target.never_ready;
                        m.primary_new = m.target_hash == V2;
                    }
                    _ => {}
                }
            }
            if let Some(s) = new_status {
                m.status = s;
            }
            break;
        }
        calls
    }

    /// Share of traffic the new version serves.
    fn share(m: &FlaggerMember) -> f64 {
        let canary = f64::from(m.routes.canary.clamp(0, 100)) / 100.0;
        if m.primary_new { 1.0 } else { canary }
    }
}

impl Driver for FlaggerDriver {
    type Member = FlaggerMember;
    type Cache = ();

    fn start(&self) -> Timestamp {
        self.start
    }

    fn member(&self, release: Release, stream: Stream) -> FlaggerMember {
        let mut target = self.target;
        // The new image: a new generation whose pods are not created until Flagger
        // scales the target up.
        target.generation += 1;
        target.never_ready = release.crash_loop;
        FlaggerMember {
            status: self.status.clone(),
            routes: self.routes,
            primary: self.primary,
            target,
            primary_new: false,
            target_hash: V2,
            requeue_at: None,
            stream,
            track: Track::new(self.start),
        }
    }

    fn visit(&self, m: &mut FlaggerMember, now: Timestamp, _cache: &mut ()) {
        m.track.advance(now, m.stream.release.requests_per_second);
        let calls = self.tick(m, now, m.stream.release.pod_ready_seconds);
        m.track.decisions += calls;
        m.track.share = Self::share(m);
        match m.status.phase {
            Some(CanaryPhase::Succeeded) => m.track.decide(End::Promoted, now),
            Some(CanaryPhase::Failed) => m.track.decide(End::Aborted, now),
            _ => {}
        }
    }

    fn next(&self, m: &FlaggerMember, now: Timestamp) -> Option<Timestamp> {
        if m.track.decided.is_some() {
            return None;
        }
        m.requeue_at.filter(|t| *t > now)
    }

    fn outcome(&self, m: &FlaggerMember, now: Timestamp) -> Outcome {
        m.track.outcome(&m.stream, now)
    }
}
