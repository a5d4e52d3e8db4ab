//! The quickstart's blue-green section: a blue-green `Rollout` (5 pods behind
//! `web-active`, a 2-pod preview behind `web-preview`, a smoke test before the promotion,
//! a success-rate check after it, manual promotion) deployed on an in-memory cluster and
//! updated twice in virtual time through `bluegreen::reconcile`. A person promotes each
//! release a minute after it pauses. The healthy release takes over `web-active`; the bad
//! one passes its smoke test but fails its success rate once it serves production, and
//! the machine switches `web-active` back. Shared by the `quickstart` example and the
//! examples' tests.

use crate::util::{Noise, counts, image, mm_ss, tag, template_hash};
use std::fmt::Write as _;

use rollout_core::canary::{AnalysisRunKind, Event, EventType};
use rollout_core::command;
use rollout_core::plan::bluegreen::{BlueGreenPlan, plan_blue_green};
use std::collections::BTreeMap;

use rollout_analysis::expr::Value;
use rollout_analysis::provider::{Measured, ProviderError};
use rollout_analysis::runner::{ManagedRun, MetricSource, TemplateCatalog};
use rollout_analysis::sim::SimAnalysis;
use rollout_analysis::template::{Metric, TemplateRef};
use rollout_core::sim::{AlwaysSucceeds, AnalysisScript, Harness, PassRecord, SimCluster, SimRun};
use rollout_core::spec::{Rollout, RolloutAnalysis, rollout_documents};
use rollout_core::status::{
    AnalysisPhase, PauseReason, RolloutAnalysisRunStatus, RolloutPhase, RolloutStatus,
};
use rollout_core::time::Timestamp;

/// The manifest: the Rollout, its two AnalysisTemplates and its two Services.
pub(crate) const MANIFEST: &str = r#"# A blue-green release of `web`: production traffic goes to web-active. A new
# template comes up at 2 pods behind web-preview, must pass a smoke test there, then
# waits for someone to promote it; it then grows to 5 pods, takes over web-active and
# must keep its success rate for a minute and a half. The old pods stay up for 30 s
# after that, for a fast rollback.
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 5
  revisionHistoryLimit: 3
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
        image: ghcr.io/example/web:1.0
        ports:
        - name: http
          containerPort: 8080
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
  strategy:
    blueGreen:
      activeService: web-active
      previewService: web-preview
      previewReplicaCount: 2
      autoPromotionEnabled: false
      scaleDownDelaySeconds: 30
      abortScaleDownDelaySeconds: 30
      prePromotionAnalysis:
        templates:
        - templateName: smoke-test
        args:
        - name: service-name
          value: web-preview
      postPromotionAnalysis:
        templates:
        - templateName: success-rate
        args:
        - name: service-name
          value: web-active
---
# Before the promotion: a load tester sends the smoke suite to web-preview; every
# measurement must see at least 99% of its requests pass.
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: smoke-test
spec:
  args:
  - name: service-name
  metrics:
  - name: pass-rate
    interval: 10s
    count: 3
    failureLimit: 0
    successCondition: result[0] >= 0.99
    provider:
      prometheus:
        address: http://prometheus.monitoring:9090
        query: |
          sum(rate(smoke_requests_total{service="{{args.service-name}}",result="pass"}[1m]))
          /
          sum(rate(smoke_requests_total{service="{{args.service-name}}"}[1m]))
---
# After the promotion: production traffic on web-active; a second failing measurement
# fails the run, which switches web-active back.
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service-name
  metrics:
  - name: success-rate
    interval: 30s
    count: 3
    failureLimit: 1
    successCondition: result[0] >= 0.95
    provider:
      prometheus:
        address: http://prometheus.monitoring:9090
        query: |
          sum(rate(http_requests_total{service="{{args.service-name}}",code!~"5.."}[1m]))
          /
          sum(rate(http_requests_total{service="{{args.service-name}}"}[1m]))
---
apiVersion: v1
kind: Service
metadata:
  name: web-active
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: http
---
apiVersion: v1
kind: Service
metadata:
  name: web-preview
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: http
"#;

/// The rollout's name, as `kubectl argo rollouts promote` takes it.
pub(crate) const ROLLOUT: &str = "web";
/// Seconds a new pod takes to become ready and available.
pub(crate) const POD_READY_SECONDS: i64 = 15;
/// Seconds the person looks at the paused preview before promoting it.
pub(crate) const REVIEW_SECONDS: i64 = 60;
/// Virtual seconds an update may take before the simulation stops it.
const UPDATE_LIMIT_SECONDS: i64 = 3600;
/// Passes at one instant before the loop moves on (a handful are needed).
const MAX_PASSES_PER_INSTANT: usize = 64;

/// 2026-01-01T00:00:00Z: the virtual clock starts here (as in the canary runs).
const T0: Timestamp = Timestamp::from_secs(1_767_225_600);

/// An AnalysisTemplate of [`MANIFEST`] with one metric, as the scripted analysis
/// controller evaluates it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Template {
    /// `metadata.name`.
    pub(crate) name: &'static str,
    /// The metric's name.
    pub(crate) metric: &'static str,
    /// `interval`, in seconds.
    pub(crate) interval_seconds: i64,
    /// `count`.
    pub(crate) count: usize,
    /// `failureLimit`.
    pub(crate) failure_limit: usize,
    /// The threshold of `successCondition: result[0] >= threshold`.
    pub(crate) threshold: f64,
}

/// The pre-promotion smoke test.
pub(crate) const SMOKE_TEST: Template = Template {
    name: "smoke-test",
    metric: "pass-rate",
    interval_seconds: 10,
    count: 3,
    failure_limit: 0,
    threshold: 0.99,
};

/// The post-promotion success rate (the canary runs' template).
pub(crate) const SUCCESS_RATE: Template = Template {
    name: "success-rate",
    metric: "success-rate",
    interval_seconds: 30,
    count: 3,
    failure_limit: 1,
    threshold: 0.95,
};

const TEMPLATES: [Template; 2] = [SMOKE_TEST, SUCCESS_RATE];

/// Where a metric stream hovers: a mean and the half-width of uniform noise around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stream {
    /// The mean.
    pub(crate) mean: f64,
    /// Half-width of the noise.
    pub(crate) spread: f64,
}

/// A release: an image and how it fares under each template.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    /// What the release is called in the output.
    pub(crate) title: &'static str,
    /// The image `kubectl argo rollouts set image` puts in the template.
    pub(crate) image: &'static str,
    /// The smoke suite's pass rate on web-preview.
    pub(crate) smoke: Stream,
    /// The success rate of production requests.
    pub(crate) success_rate: Stream,
    /// Seed of the noise.
    pub(crate) seed: u64,
}

impl Release {
    fn stream(&self, template: &Template) -> Option<Stream> {
        match template.name {
            "smoke-test" => Some(self.smoke),
            "success-rate" => Some(self.success_rate),
            _ => None,
        }
    }
}

/// The healthy release.
pub(crate) const GOOD: Release = Release {
    title: "a healthy release (smoke tests pass, success rate ~99.5%)",
    image: "ghcr.io/example/web:1.1",
    smoke: Stream {
        mean: 0.998,
        spread: 0.002,
    },
    success_rate: Stream {
        mean: 0.995,
        spread: 0.004,
    },
    seed: 21,
};

/// The bad release: the smoke suite passes, real traffic does not.
pub(crate) const BAD: Release = Release {
    title: "a bad release (smoke tests pass, success rate ~93% under production traffic)",
    image: "ghcr.io/example/web:1.2",
    smoke: Stream {
        mean: 0.997,
        spread: 0.003,
    },
    success_rate: Stream {
        mean: 0.93,
        spread: 0.02,
    },
    seed: 22,
};

/// One measurement by the analysis controller.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measurement {
    /// When it was taken.
    pub(crate) at: Timestamp,
    /// The template it belongs to.
    pub(crate) template: Template,
    /// The AnalysisRun.
    pub(crate) run: String,
    /// Pre- or post-promotion.
    pub(crate) kind: AnalysisRunKind,
    /// 1-based number of the measurement in its run.
    pub(crate) number: usize,
    /// The measured value.
    pub(crate) value: f64,
    /// Whether the success condition held.
    pub(crate) ok: bool,
    /// The run's verdict, when this measurement decided it.
    pub(crate) verdict: Option<(AnalysisPhase, String)>,
}

/// The release's seeded series, answering the templates' Prometheus queries: the smoke
/// suite's pass rate for `pass-rate`, the production success rate for `success-rate`.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    release: Release,
    noise: Noise,
    /// Values answered and not yet logged: (time, run, template, value).
    answered: Vec<(Timestamp, String, Template, f64)>,
}

impl MetricSource for Sampler {
    fn measure(
        &mut self,
        run: &ManagedRun,
        metric: &Metric,
        now: Timestamp,
    ) -> Result<Measured, ProviderError> {
        let template = TEMPLATES
            .iter()
            .find(|t| t.metric == metric.name)
            .copied()
            .ok_or_else(|| ProviderError::Query {
                provider: "prometheus",
                error_type: "bad_data".into(),
                message: format!("the simulated server has no series for {}", metric.name),
            })?;
        let stream = self
            .release
            .stream(&template)
            .ok_or_else(|| ProviderError::Query {
                provider: "prometheus",
                error_type: "bad_data".into(),
                message: format!(
                    "release {} has no {} series",
                    self.release.image, template.name
                ),
            })?;
        let value =
            (stream.mean + stream.spread * (2.0 * self.noise.next_unit() - 1.0)).clamp(0.0, 1.0);
        self.answered
            .push((now, run.name().to_string(), template, value));
        Ok(Measured::Value(Value::Array(vec![Value::Float(value)])))
    }
}

/// The analysis controller of the blue-green runs: rollout-analysis' runner
/// ([`SimAnalysis`]) runs the AnalysisTemplates the rollout's pre- and post-promotion
/// analyses name (from [`MANIFEST`]) against the release's seeded series, and keeps a
/// log of the measurements for the timeline.
#[derive(Debug, Clone)]
pub(crate) struct MetricStream {
    analysis: SimAnalysis<Sampler>,
    kinds: BTreeMap<String, AnalysisRunKind>,
    taken: BTreeMap<String, usize>,
    /// Every measurement taken, in order.
    pub(crate) log: Vec<Measurement>,
}

impl MetricStream {
    /// A stream for `release`, evaluating the templates `rollout`'s analyses name.
    pub(crate) fn new(rollout: &Rollout, release: Release) -> Result<Self, Error> {
        let bg = rollout
            .spec
            .strategy
            .blue_green
            .as_ref()
            .ok_or("the rollout has no blueGreen strategy")?;
        let catalog = TemplateCatalog::from_yaml(MANIFEST)?;
        let named = bg
            .pre_promotion_analysis
            .iter()
            .chain(bg.post_promotion_analysis.iter())
            .flat_map(|a: &RolloutAnalysis| a.templates.iter());
        for t in named {
            let spec = catalog.compose(
                "default",
                &[TemplateRef {
                    template_name: t.template_name.clone(),
                    cluster_scope: t.cluster_scope,
                }],
            )?;
            for m in &spec.metrics {
                let template = TEMPLATES.iter().find(|x| x.metric == m.name);
                if template.and_then(|x| release.stream(x)).is_none() {
                    return Err(format!(
                        "release {} has no series for metric {}",
                        release.image, m.name
                    )
                    .into());
                }
            }
        }
        let sampler = Sampler {
            release,
            noise: Noise(release.seed),
            answered: Vec::new(),
        };
        let name = rollout.metadata.name.clone().unwrap_or_default();
        Ok(MetricStream {
            analysis: SimAnalysis::new(catalog, "default", &name, sampler),
            kinds: BTreeMap::new(),
            taken: BTreeMap::new(),
            log: Vec::new(),
        })
    }

    /// Moves the measurements answered since the last call into [`Self::log`], with
    /// their verdicts as the runner judged them.
    fn collect(&mut self) {
        let answered = std::mem::take(&mut self.analysis.source_mut().answered);
        for (at, run_name, template, value) in answered {
            let Some(run) = self.analysis.runs().run(&run_name) else {
                continue;
            };
            let number = {
                let n = self.taken.entry(run_name.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let result = run.status.metric_result(template.metric);
            let ok = result
                .and_then(|r| r.measurements.iter().find(|m| m.finished_at == Some(at)))
                .is_some_and(|m| m.phase == AnalysisPhase::Successful);
            let completed = run.status.phase.is_some_and(AnalysisPhase::is_completed);
            let last =
                result.is_some_and(|r| usize::try_from(r.count + r.error).unwrap_or(0) == number);
            let verdict = (completed && last).then(|| {
                (
                    run.status.phase.unwrap_or(AnalysisPhase::Error),
                    run.status.message.clone(),
                )
            });
            let kind = self
                .kinds
                .get(&run_name)
                .copied()
                .unwrap_or(AnalysisRunKind::PrePromotion);
            self.log.push(Measurement {
                at,
                template,
                run: run_name,
                kind,
                number,
                value,
                ok,
                verdict,
            });
        }
    }
}

impl AnalysisScript for MetricStream {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        self.kinds.insert(run.name.clone(), run.kind);
        let v = self.analysis.verdict(run, now);
        self.collect();
        v
    }

    fn next_check(&self, run: &SimRun, now: Timestamp) -> Option<Timestamp> {
        self.analysis.next_check(run, now)
    }
}

/// Where an update stands, read from the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The new ReplicaSet comes up behind the preview service.
    Preview,
    /// The pre-promotion analysis runs.
    PrePromotion,
    /// `BlueGreenPause`: waiting for `promote`.
    Paused,
    /// Promoted: the new ReplicaSet grows to full size.
    ScaleUp,
    /// The active service selects the new ReplicaSet; post-promotion analysis runs.
    PostPromotion,
    /// The active service selects the new ReplicaSet, nothing runs.
    Switched,
    /// The new ReplicaSet is the stable one.
    Promoted,
    /// Aborted: back on the stable ReplicaSet.
    Aborted,
}

impl Stage {
    fn of(st: &RolloutStatus, new_hash: &str) -> Stage {
        let running = |r: &Option<RolloutAnalysisRunStatus>| {
            r.as_ref().is_some_and(|r| !r.status.is_completed())
        };
        let bg = &st.blue_green;
        if st.abort {
            Stage::Aborted
        } else if st.stable_rs == new_hash {
            Stage::Promoted
        } else if bg.active_selector == new_hash {
            if running(&bg.post_promotion_analysis_run_status) {
                Stage::PostPromotion
            } else {
                Stage::Switched
            }
        } else if st.pause_condition(PauseReason::BlueGreenPause).is_some() {
            Stage::Paused
        } else if bg.scale_up_preview_check_point {
            Stage::ScaleUp
        } else if running(&bg.pre_promotion_analysis_run_status) {
            Stage::PrePromotion
        } else {
            Stage::Preview
        }
    }

    /// The label in the timeline.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stage::Preview => "preview",
            Stage::PrePromotion => "pre-promotion analysis",
            Stage::Paused => "paused",
            Stage::ScaleUp => "scale up",
            Stage::PostPromotion => "post-promotion analysis",
            Stage::Switched => "switched",
            Stage::Promoted => "promoted",
            Stage::Aborted => "aborted",
        }
    }
}

/// One pass of the controller that did something.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PassLine {
    /// Time of the pass.
    pub(crate) at: Timestamp,
    /// Where the update stands after the pass.
    pub(crate) stage: Stage,
    /// The pod template hash `web-active` selects (empty: none).
    pub(crate) active: String,
    /// The pod template hash `web-preview` selects (empty: none).
    pub(crate) preview: String,
    /// The ReplicaSet that was stable before the update: (spec, available).
    pub(crate) old: (i32, i32),
    /// The new ReplicaSet: (spec, available).
    pub(crate) new: (i32, i32),
    /// The pre-promotion run's phase, as recorded in the status.
    pub(crate) pre: String,
    /// The post-promotion run's phase.
    pub(crate) post: String,
    /// Phase and message.
    pub(crate) phase: String,
    /// The events of the pass.
    pub(crate) events: Vec<Event>,
}

/// A line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    /// A controller pass.
    Pass(PassLine),
    /// A metric measurement by the analysis controller.
    Measurement(Measurement),
    /// `kubectl argo rollouts promote web`, with the status patch it sent.
    Promote {
        /// When.
        at: Timestamp,
        /// The merge patch of the `status` subresource.
        patch: String,
    },
}

impl Entry {
    fn at(&self) -> Timestamp {
        match self {
            Entry::Pass(p) => p.at,
            Entry::Measurement(m) => m.at,
            Entry::Promote { at, .. } => *at,
        }
    }
}

/// One update, from `set image` to the end.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    /// The release rolled out.
    pub(crate) release: Release,
    /// The image that was stable before.
    pub(crate) old_image: String,
    /// Pod template hash of the stable ReplicaSet before the update.
    pub(crate) old_hash: String,
    /// Pod template hash of the new ReplicaSet.
    pub(crate) new_hash: String,
    /// When the update started.
    pub(crate) started: Timestamp,
    /// The timeline.
    pub(crate) entries: Vec<Entry>,
    /// Controller passes run, including the quiet ones.
    pub(crate) passes: usize,
    /// The status when nothing more happened.
    pub(crate) status: RolloutStatus,
    /// The cluster then.
    pub(crate) cluster: SimCluster,
}

impl Update {
    /// The pass lines.
    pub(crate) fn passes(&self) -> impl Iterator<Item = &PassLine> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Pass(p) => Some(p),
            _ => None,
        })
    }

    /// The measurements.
    pub(crate) fn measurements(&self) -> impl Iterator<Item = &Measurement> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Measurement(m) => Some(m),
            _ => None,
        })
    }

    /// When the user promoted.
    pub(crate) fn promotions(&self) -> Vec<Timestamp> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Promote { at, .. } => Some(*at),
                _ => None,
            })
            .collect()
    }

    /// The first pass with an event of this reason.
    pub(crate) fn event_at(&self, reason: &str) -> Option<Timestamp> {
        self.passes()
            .find(|p| p.events.iter().any(|e| e.reason == reason))
            .map(|p| p.at)
    }

    /// Seconds from the start of the update.
    pub(crate) fn secs(&self, at: Timestamp) -> i64 {
        at.millis_since(self.started) / 1000
    }
}

/// The whole blue-green section.
#[derive(Debug, Clone)]
pub(crate) struct BlueGreen {
    /// Its stage table.
    pub(crate) plan: BlueGreenPlan,
    /// The first image.
    pub(crate) initial_image: String,
    /// Pod template hash of the first image.
    pub(crate) initial_hash: String,
    /// When the initial deploy became Healthy, in seconds from the start.
    pub(crate) initial_healthy_after: i64,
    /// The healthy update, then the bad one.
    pub(crate) updates: Vec<Update>,
}

/// Why the simulation could not run (a broken manifest, a stuck update).
pub(crate) type Error = Box<dyn std::error::Error>;

/// Reads the Rollout of [`MANIFEST`].
pub(crate) fn manifest_rollout() -> Result<Rollout, Error> {
    let doc = rollout_documents(MANIFEST)
        .into_iter()
        .next()
        .ok_or("the blue-green manifest has no Rollout")?;
    Ok(doc.result?)
}

fn run_phase(r: Option<&RolloutAnalysisRunStatus>) -> String {
    r.map_or_else(|| "-".to_string(), |r| r.status.as_str().to_string())
}

fn pass_line(rec: &PassRecord, h: &Harness, old_hash: &str, new_hash: &str) -> PassLine {
    let st = &rec.status;
    let bg = h.rollout.spec.strategy.blue_green.as_ref();
    let selector = |name: Option<&str>| {
        name.and_then(|n| h.cluster.service_selector(n))
            .unwrap_or_default()
            .to_string()
    };
    let phase = match st.phase {
        Some(p) if st.message.is_empty() => p.to_string(),
        Some(p) => format!("{p}: {}", st.message),
        None => "-".to_string(),
    };
    PassLine {
        at: rec.at,
        stage: Stage::of(st, new_hash),
        active: selector(bg.map(|b| b.active_service.as_str())),
        preview: selector(bg.and_then(|b| b.preview_service.as_deref())),
        old: counts(&h.cluster, old_hash),
        new: counts(&h.cluster, new_hash),
        pre: run_phase(st.blue_green.pre_promotion_analysis_run_status.as_ref()),
        post: run_phase(st.blue_green.post_promotion_analysis_run_status.as_ref()),
        phase,
        events: rec.events.clone(),
    }
}

/// When the person promotes: [`REVIEW_SECONDS`] after the `BlueGreenPause` started.
fn promotion_due(h: &Harness) -> Option<Timestamp> {
    h.status
        .pause_condition(PauseReason::BlueGreenPause)
        .map(|c| c.start_time.add_secs(REVIEW_SECONDS))
}

/// Rolls `release` out from the harness's state until nothing more happens.
fn update(h: &mut Harness, release: Release) -> Result<Update, Error> {
    let old_image = image(&h.rollout);
    let old_hash = h.status.stable_rs.clone();
    // `kubectl argo rollouts set image web web=<image>`.
    command::set_image(&mut h.rollout, "web", release.image)?;
    let new_hash = template_hash(&h.rollout)?;
    h.pod_template_hash.clone_from(&new_hash);

    let started = h.now;
    let until = started.add_secs(UPDATE_LIMIT_SECONDS);
    let mut script = MetricStream::new(&h.rollout, release)?;
    let mut entries = Vec::new();
    let mut passes = 0;
    // The controller loop in virtual time (as in the canary runs), with a person who
    // promotes a paused rollout once they have looked at the preview.
    loop {
        for _ in 0..MAX_PASSES_PER_INSTANT {
            h.run_script(&mut script);
            entries.extend(script.log.drain(..).map(Entry::Measurement));
            let rec = h.pass();
            passes += 1;
            let quiet = rec.actions.is_empty() && rec.events.is_empty() && !rec.status_changed;
            if !quiet {
                entries.push(Entry::Pass(pass_line(&rec, h, &old_hash, &new_hash)));
                continue;
            }
            let measured = h.run_script(&mut script);
            entries.extend(script.log.drain(..).map(Entry::Measurement));
            if !measured {
                break;
            }
        }
        let promote_at = promotion_due(h);
        if let Some(at) = promote_at
            && at <= h.now
        {
            // `kubectl argo rollouts promote web`.
            let patch = command::promote(&h.rollout, &h.status);
            if patch.is_noop() {
                return Err("promote had nothing to change in a paused rollout".into());
            }
            let text = patch
                .status_merge_patch()
                .map_or_else(String::new, |p| p.to_string());
            patch.apply(&mut h.rollout, &mut h.status);
            entries.push(Entry::Promote {
                at: h.now,
                patch: text,
            });
            continue;
        }
        let next = [h.next_instant(&script), promote_at]
            .into_iter()
            .flatten()
            .filter(|t| *t > h.now)
            .min();
        match next {
            Some(t) if t <= until => h.now = t,
            _ => break,
        }
    }
    Ok(Update {
        release,
        old_image,
        old_hash,
        new_hash,
        started,
        entries,
        passes,
        status: h.status.clone(),
        cluster: h.cluster.clone(),
    })
}

/// Runs the section: the initial deploy, the healthy update, the bad update.
pub(crate) fn run() -> Result<BlueGreen, Error> {
    let rollout = manifest_rollout()?;
    let plan = plan_blue_green(&rollout)?;
    let initial_image = image(&rollout);
    let initial_hash = template_hash(&rollout)?;
    let mut h = Harness::new(
        rollout,
        &initial_hash,
        SimCluster::new(POD_READY_SECONDS),
        T0,
    );
    // The first revision has nothing to preview: it goes straight behind web-active.
    h.run(
        &mut AlwaysSucceeds { after_seconds: 0 },
        T0.add_secs(UPDATE_LIMIT_SECONDS),
        |_, _| {},
    );
    if h.status.phase != Some(RolloutPhase::Healthy) {
        return Err(format!(
            "the initial deploy did not become Healthy: {:?}",
            h.status.phase
        )
        .into());
    }
    let initial_healthy_after = h.now.millis_since(T0) / 1000;
    h.now = h.now.add_secs(600);
    let good = update(&mut h, GOOD)?;
    h.now = h.now.add_secs(600);
    let bad = update(&mut h, BAD)?;
    Ok(BlueGreen {
        plan,
        initial_image,
        initial_hash,
        initial_healthy_after,
        updates: vec![good, bad],
    })
}

/// An event's message; only its reason when the phase column already says it.
fn event_text(e: &Event, phase: &str) -> String {
    let warning = if e.type_ == EventType::Warning {
        "WARNING "
    } else {
        ""
    };
    if phase.contains(e.message.as_str()) {
        format!("{warning}{}", e.reason)
    } else {
        format!("{warning}{}", e.message)
    }
}

/// `Degraded: RolloutAborted: ...` -> `Degraded`.
fn short_phase(phase: &str) -> &str {
    phase.split_once(':').map_or(phase, |(p, _)| p)
}

fn describe(t: &Template, role: &str, service: &str) -> String {
    format!(
        "Analysis {} ({role}, on {service}): {} every {}s, {} in all, result >= {}; a run fails at failure {}.",
        t.name,
        t.metric,
        t.interval_seconds,
        t.count,
        t.threshold,
        t.failure_limit + 1
    )
}

/// Renders the section.
pub(crate) fn render(b: &BlueGreen) -> String {
    let mut out = String::new();
    let p = &b.plan;
    let preview = p.preview_service.as_deref().unwrap_or("-");
    let _ = writeln!(
        out,
        "Rollout {} ({} pods), blue-green: {} serves production, {preview} the new release; promotion is manual; simulated in virtual time; pods are ready {POD_READY_SECONDS}s after they are created.",
        p.name, p.replicas, p.active_service
    );
    let _ = writeln!(out, "{}", describe(&SMOKE_TEST, "pre-promotion", preview));
    let _ = writeln!(
        out,
        "{}",
        describe(&SUCCESS_RATE, "post-promotion", &p.active_service)
    );
    let _ = writeln!(
        out,
        "A person promotes {REVIEW_SECONDS}s after the rollout pauses (kubectl argo rollouts promote {ROLLOUT})."
    );
    let _ = writeln!(out);
    let _ = write!(out, "{p}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Initial deploy of {}: Healthy after {}; {} selects web-{}.",
        b.initial_image,
        mm_ss(b.initial_healthy_after),
        p.active_service,
        b.initial_hash
    );
    for (i, u) in b.updates.iter().enumerate() {
        let _ = writeln!(out);
        render_update(&mut out, i + 1, u, &p.active_service);
    }
    out
}

fn render_update(out: &mut String, number: usize, u: &Update, active_service: &str) {
    let old_tag = tag(&u.old_image);
    let new_tag = tag(u.release.image);
    let _ = writeln!(
        out,
        "== Blue-green update {number}: {old_tag} -> {new_tag}, {}",
        u.release.title
    );
    let label = |hash: &str| -> String {
        if hash.is_empty() {
            "-".to_string()
        } else if hash == u.new_hash {
            new_tag.to_string()
        } else if hash == u.old_hash {
            old_tag.to_string()
        } else {
            hash.to_string()
        }
    };
    let stage_w = u
        .passes()
        .map(|p| p.stage.as_str().len())
        .max()
        .unwrap_or(5)
        .max(5);
    let old_col = format!("OLD {old_tag}");
    let new_col = format!("NEW {new_tag}");
    let _ = writeln!(
        out,
        "{:<5}  {:<stage_w$}  {:<6}  {:<7}  {:>7}  {:>7}  {:<10}  {:<10}  PHASE | EVENTS",
        "TIME", "STAGE", "ACTIVE", "PREVIEW", old_col, new_col, "PRE", "POST"
    );
    let mut previous: Option<&PassLine> = None;
    for e in &u.entries {
        let t = mm_ss(u.secs(e.at()));
        match e {
            Entry::Pass(p) => {
                // Bookkeeping-only passes look like the one before: not shown.
                let same = previous.is_some_and(|q| {
                    (
                        q.stage, &q.active, &q.preview, q.old, q.new, &q.pre, &q.post, &q.phase,
                    ) == (
                        p.stage, &p.active, &p.preview, p.old, p.new, &p.pre, &p.post, &p.phase,
                    )
                });
                if same && p.events.is_empty() {
                    continue;
                }
                let mut tail = match previous {
                    Some(q) if q.phase == p.phase => short_phase(&p.phase).to_string(),
                    _ => p.phase.clone(),
                };
                for ev in &p.events {
                    tail.push_str(" | ");
                    tail.push_str(&event_text(ev, &p.phase));
                }
                previous = Some(p);
                let _ = writeln!(
                    out,
                    "{t:<5}  {:<stage_w$}  {:<6}  {:<7}  {:>7}  {:>7}  {:<10}  {:<10}  {tail}",
                    p.stage.as_str(),
                    label(&p.active),
                    label(&p.preview),
                    format!("{}/{}", p.old.0, p.old.1),
                    format!("{}/{}", p.new.0, p.new.1),
                    p.pre,
                    p.post,
                );
            }
            Entry::Measurement(m) => {
                let verdict = match &m.verdict {
                    Some((phase, msg)) if msg.is_empty() => format!(" -> run {}", phase.as_str()),
                    Some((phase, msg)) => format!(" -> run {}: {msg}", phase.as_str()),
                    None => String::new(),
                };
                let _ = writeln!(
                    out,
                    "{t:<5}  {:<stage_w$}  {} measurement {}/{}: {} {:.4} {}{verdict}",
                    "",
                    m.template.name,
                    m.number,
                    m.template.count,
                    m.template.metric,
                    m.value,
                    if m.ok { "ok" } else { "FAILED" },
                );
            }
            Entry::Promote { patch, .. } => {
                let _ = writeln!(
                    out,
                    "{t:<5}  {:<stage_w$}  USER kubectl argo rollouts promote {ROLLOUT}  (status patch {patch})",
                    "",
                );
            }
        }
    }
    let end = u.passes().last().map_or(0, |p| u.secs(p.at));
    let active = u.cluster.service_selector(active_service).unwrap_or("");
    let promoted = u.status.stable_rs == u.new_hash;
    // The ReplicaSet that goes: the old one after a promotion, the new one after an abort.
    let (gone_hash, gone_tag, since, since_what) = if promoted {
        (
            &u.old_hash,
            old_tag,
            u.event_at("RolloutCompleted"),
            "the promotion",
        )
    } else {
        (
            &u.new_hash,
            new_tag,
            u.event_at("RolloutAborted"),
            "the abort",
        )
    };
    let scaled_down = u
        .passes()
        .find(|p| {
            if promoted {
                p.old.0 == 0
            } else {
                p.new.0 == 0 && p.stage == Stage::Aborted
            }
        })
        .map(|p| p.at);
    let gone = match (scaled_down, since) {
        (Some(at), Some(since)) => format!(
            "scaled to 0 at {}, {}s after {since_what}",
            mm_ss(u.secs(at)),
            at.millis_since(since) / 1000
        ),
        _ => format!("at {} pods", counts(&u.cluster, gone_hash).0),
    };
    let outcome = if promoted {
        format!(
            "{active_service} selects web-{active} ({}, promoted)",
            label(active)
        )
    } else {
        format!(
            "{active_service} back on web-{active} ({}, kept)",
            label(active)
        )
    };
    let _ = writeln!(
        out,
        "-> {} after {} ({} controller passes); {outcome}; web-{gone_hash} ({gone_tag}) {gone}",
        u.status.phase.map_or("-", RolloutPhase::as_str),
        mm_ss(end),
        u.passes,
    );
}
