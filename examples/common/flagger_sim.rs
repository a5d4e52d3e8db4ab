//! The quickstart's Flagger section: an A/B testing `Canary` (Istio, header and cookie
//! match) driven through `flagger::machine::tick` in virtual time, on a tiny in-memory
//! world — the target and primary Deployments (pods ready a few seconds after they are
//! created), an Istio router that applies the routes it is given and reports them back,
//! a load tester answering the webhooks, and a metric source sampling success rate and
//! latency from a seeded stream. A healthy release is promoted, then a bad one is rolled
//! back. Shared by the `quickstart` example and the examples' tests.
//!
//! The driver is the loop the machine's docs describe: observe, tick; while the decision
//! only asks for check results, run the checks and tick again at the same `now`; then
//! execute the actions, persist the status and come back at `requeue_at`.

use crate::util::{Noise, mm_ss, tag};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use rollout_analysis::flagger::{CheckContext, QueryRequest, run_metric_checks};
use rollout_core::flagger::machine::{
    Action, DeploymentState, Event, EventType, MetricOutcome, MetricResult, Observed, Readiness,
    Routes, ScaleTo, WebhookResult, tick,
};
use rollout_core::flagger::spec::{
    AlertSeverity, Canary, CanaryAnalysis, HookType, Strategy, StringMatch,
};
use rollout_core::flagger::status::{CanaryPhase, CanaryStatus};
use rollout_core::hash::fnv_hash;
use rollout_core::time::Timestamp;

/// The `Canary`: podinfo behind Istio, A/B testing for 5 iterations on requests that
/// carry `x-canary: insider` or the `canary=always` cookie.
pub(crate) const CANARY_YAML: &str = r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 120
  service:
    port: 9898
    targetPort: 9898
    gateways:
    - public-gateway.istio-system.svc.cluster.local
    hosts:
    - app.example.com
  analysis:
    interval: 1m
    threshold: 2
    iterations: 5
    match:
    - headers:
        x-canary:
          exact: "insider"
    - headers:
        cookie:
          regex: "^(.*?;)?(canary=always)(;.*)?$"
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    - name: request-duration
      thresholdRange:
        max: 500
      interval: 1m
    webhooks:
    - name: acceptance-test
      type: pre-rollout
      url: http://flagger-loadtester.test/
      timeout: 30s
      metadata:
        type: bash
        cmd: "curl -sd 'test' http://podinfo-canary:9898/token | grep token"
    - name: approve
      type: confirm-promotion
      url: http://flagger-loadtester.test/gate/check
"#;

/// The image running before the releases.
pub(crate) const INITIAL_IMAGE: &str = "ghcr.io/stefanprodan/podinfo:6.0.0";
/// `spec.replicas` of the target Deployment.
pub(crate) const REPLICAS: i32 = 2;
/// Seconds a new pod takes to become ready and available.
pub(crate) const POD_READY_SECONDS: i64 = 10;
/// The webhook that approves the promotion: it says no on its first call of a release.
pub(crate) const GATE: &str = "approve";
/// Minutes between the end of one release and the next `set image`.
const IDLE_MINUTES: i64 = 10;
/// The `set image` lands this many seconds before one of Flagger's ticks.
const LEAD_SECONDS: i64 = 15;
/// Loop ticks a release may take before the simulation gives up.
const MAX_TICKS: usize = 100;
/// Rounds one tick may take (one per gate; a handful at most).
const MAX_ROUNDS: usize = 16;

/// 2026-01-01T00:00:00Z: the virtual clock starts here (as in the Argo runs).
const T0: Timestamp = Timestamp::from_secs(1_767_225_600);

/// A release: an image and how its metrics behave.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    /// What the release is called in the output.
    pub(crate) title: &'static str,
    /// The image `kubectl set image` puts in the target's template.
    pub(crate) image: &'static str,
    /// Request success rate (percent) the stream hovers around, and its noise half-width.
    pub(crate) success_rate: (f64, f64),
    /// Request duration (milliseconds) the stream hovers around, and its noise half-width.
    pub(crate) latency_ms: (f64, f64),
    /// Seed of the noise.
    pub(crate) seed: u64,
}

/// The healthy release.
pub(crate) const GOOD: Release = Release {
    title: "a healthy release (success rate ~99.6%, latency ~200ms)",
    image: "ghcr.io/stefanprodan/podinfo:6.0.1",
    success_rate: (99.6, 0.3),
    latency_ms: (200.0, 30.0),
    seed: 11,
};

/// The bad release.
pub(crate) const BAD: Release = Release {
    title: "a bad release (success rate ~96%, latency ~700ms)",
    image: "ghcr.io/stefanprodan/podinfo:6.0.2",
    success_rate: (96.0, 1.0),
    latency_ms: (700.0, 60.0),
    seed: 12,
};

/// Why the simulation could not run (a broken canary, or a run that never ends).
pub(crate) type Error = Box<dyn std::error::Error>;

/// A sampled value as Flagger prints it: `96.16` for a rate, `753ms` for a duration.
fn number(value: f64, unit: &str) -> String {
    if unit == "ms" {
        format!("{value:.0}ms")
    } else {
        format!("{value:.2}")
    }
}

/// A threshold as Flagger prints it: `99`, `500ms`.
fn bound(value: f64, unit: &str) -> String {
    if unit == "ms" {
        format!("{value}ms")
    } else {
        format!("{value}")
    }
}

/// The unit of a builtin metric's values.
fn unit_of(metric: &str) -> &'static str {
    match metric {
        "request-success-rate" => "%",
        "request-duration" => "ms",
        _ => "",
    }
}

/// The hash Flagger compares with `lastAppliedSpec`: here, of the pod template's image.
pub(crate) fn template_hash(image: &str) -> String {
    fnv_hash(image).to_string()
}

/// A Deployment of the simulated cluster. The controller observes every change at
/// once; a template change replaces all pods, and a new pod is ready
/// [`POD_READY_SECONDS`] after it was created.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Workload {
    /// Its name.
    pub(crate) name: String,
    /// The image of its pod template.
    pub(crate) image: String,
    /// `spec.replicas`.
    pub(crate) replicas: i32,
    /// `metadata.generation`.
    pub(crate) generation: i64,
    /// When each pod is (or was) ready.
    pub(crate) pods: Vec<Timestamp>,
}

impl Workload {
    fn new(name: &str, image: &str, replicas: i32, now: Timestamp) -> Workload {
        let mut w = Workload {
            name: name.to_string(),
            image: image.to_string(),
            replicas: 0,
            generation: 1,
            pods: Vec::new(),
        };
        w.scale(replicas, now);
        w
    }

    fn scale(&mut self, replicas: i32, now: Timestamp) {
        let replicas = replicas.max(0);
        if replicas != self.replicas {
            self.generation += 1;
        }
        self.replicas = replicas;
        let want = usize::try_from(replicas).unwrap_or(0);
        self.pods.truncate(want);
        let ready_at = now.add_secs(POD_READY_SECONDS);
        self.pods.resize(want, ready_at);
    }

    fn set_image(&mut self, image: &str, now: Timestamp) {
        if self.image == image {
            return;
        }
        self.image = image.to_string();
        self.generation += 1;
        let ready_at = now.add_secs(POD_READY_SECONDS);
        self.pods.iter_mut().for_each(|p| *p = ready_at);
    }

    /// Pods ready at `now`.
    pub(crate) fn available(&self, now: Timestamp) -> i32 {
        let n = self.pods.iter().filter(|p| **p <= now).count();
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    /// What Flagger reads from the Deployment.
    fn state(&self, now: Timestamp) -> DeploymentState {
        let replicas = i32::try_from(self.pods.len()).unwrap_or(i32::MAX);
        DeploymentState {
            name: self.name.clone(),
            generation: self.generation,
            observed_generation: self.generation,
            spec_replicas: Some(self.replicas),
            replicas,
            updated_replicas: replicas,
            available_replicas: self.available(now),
            progressing_reason: None,
            unavailable_since: None,
        }
    }
}

/// The simulated cluster, router, load tester and metric source.
#[derive(Debug, Clone)]
pub(crate) struct World {
    /// The target Deployment (`podinfo`), which serves as the canary.
    pub(crate) target: Workload,
    /// `podinfo-primary`, once Flagger created it.
    pub(crate) primary: Option<Workload>,
    /// The Istio VirtualService's routes, once Flagger created it.
    pub(crate) routes: Option<Routes>,
    /// The `-primary` and `-canary` Services exist.
    pub(crate) services: bool,
    /// The apex Service selects the primary pods.
    pub(crate) apex_to_primary: bool,
    /// Alerts sent, with the time.
    pub(crate) alerts: Vec<(Timestamp, AlertSeverity, String)>,
    /// Calls of the [`GATE`] webhook in the current release.
    gate_calls: usize,
    /// The release whose metrics the source reports.
    release: Option<Release>,
    noise: Noise,
}

impl World {
    fn new(now: Timestamp) -> World {
        World {
            target: Workload::new("podinfo", INITIAL_IMAGE, REPLICAS, now),
            primary: None,
            routes: None,
            services: false,
            apex_to_primary: false,
            alerts: Vec::new(),
            gate_calls: 0,
            release: None,
            noise: Noise(0),
        }
    }

    /// `kubectl set image deployment/podinfo podinfod=<image>`.
    fn set_image(&mut self, release: Release, now: Timestamp) {
        self.target.set_image(release.image, now);
        self.release = Some(release);
        self.noise = Noise(release.seed);
        self.gate_calls = 0;
    }

    fn reported_routes(&self) -> Routes {
        self.routes.unwrap_or(Routes::PRIMARY)
    }

    fn readiness(&self, canary: &Canary, now: Timestamp) -> (Readiness, Readiness) {
        let analysis = canary.spec.analysis.as_ref();
        let deadline = canary.spec.progress_deadline_seconds();
        let primary_threshold = analysis.map_or(100, CanaryAnalysis::primary_ready_threshold);
        let canary_threshold = analysis.map_or(100, CanaryAnalysis::canary_ready_threshold);
        let primary = match &self.primary {
            Some(p) => p
                .state(now)
                .primary_readiness(primary_threshold, deadline, now),
            None => Readiness::Waiting(format!(
                "waiting for rollout to finish: {}-primary is being created",
                self.target.name
            )),
        };
        let target = self
            .target
            .state(now)
            .readiness(canary_threshold, deadline, now);
        (primary, target)
    }

    /// The load tester: every hook passes, except the gate on its first call.
    fn call_webhook(&mut self, name: &str) -> bool {
        if name == GATE {
            self.gate_calls += 1;
            self.gate_calls > 1
        } else {
            true
        }
    }

    /// The metric checks: rollout-analysis' Flagger planner renders the builtin Istio
    /// queries for each metric asked for and judges the answers against the metric's
    /// `thresholdRange` (Flagger's messages); this world plays Prometheus, answering the
    /// success-rate and P99-latency queries from the release's seeded streams.
    fn measure(&mut self, canary: &Canary, names: &[String]) -> (Vec<MetricResult>, Vec<Check>) {
        let release = self.release;
        let noise = &mut self.noise;
        let mut sampled: BTreeMap<String, (f64, &'static str)> = BTreeMap::new();
        let ctx = CheckContext::new("istio", "http://prometheus.istio-system:9090");
        let results = run_metric_checks(canary, names, &[], &ctx, &mut |req: &QueryRequest| {
            let r = release.ok_or("no series: nothing was released yet")?;
            let q = req.query.as_str();
            let (value, unit) = if q.contains("istio_request_duration_milliseconds_bucket") {
                (noise.around(r.latency_ms).max(0.0), "ms")
            } else if q.contains("istio_requests_total")
                && q.contains("destination_workload=~\"podinfo\"")
            {
                (noise.around(r.success_rate).clamp(0.0, 100.0), "%")
            } else {
                return Err(format!("no series for query {q}"));
            };
            sampled.insert(req.metric.clone(), (value, unit));
            Ok(value)
        });
        let checks = results
            .iter()
            .map(|r| {
                let sample = sampled.get(&r.name);
                Check::Metric {
                    name: r.name.clone(),
                    value: sample.map(|s| s.0),
                    unit: sample.map_or("", |s| s.1),
                    ok: r.outcome == MetricOutcome::Pass,
                }
            })
            .collect();
        (results, checks)
    }

    /// Carries out one final decision's actions.
    fn execute(&mut self, actions: &[Action], now: Timestamp, calls: &mut Vec<Check>) {
        for action in actions {
            match action {
                Action::InitializeServices => self.services = true,
                Action::InitializePrimary => {
                    let target = &self.target;
                    self.primary.get_or_insert_with(|| {
                        let name = format!("{}-primary", target.name);
                        Workload::new(&name, &target.image, target.replicas, now)
                    });
                }
                Action::ReconcileApexService => self.apex_to_primary = true,
                Action::ReconcileRouting => {
                    self.routes.get_or_insert(Routes::PRIMARY);
                }
                Action::ScaleTarget { replicas } => {
                    let n = match replicas {
                        ScaleTo::Zero => 0,
                        _ => REPLICAS,
                    };
                    self.target.scale(n, now);
                }
                Action::SetRoutes {
                    primary,
                    canary,
                    mirrored,
                } => self.routes = Some(Routes::new(*primary, *canary, *mirrored)),
                Action::Promote => {
                    let image = self.target.image.clone();
                    if let Some(p) = &mut self.primary {
                        p.set_image(&image, now);
                    }
                }
                Action::CallWebhook {
                    name,
                    hook_type,
                    awaits_result: false,
                    ..
                } => {
                    // Fire and forget (post-rollout and event hooks).
                    let ok = self.call_webhook(name);
                    calls.push(Check::Webhook {
                        name: name.clone(),
                        hook_type: *hook_type,
                        ok,
                    });
                }
                Action::SendAlert { severity, message } => {
                    self.alerts.push((now, *severity, message.clone()));
                }
                // Autoscalers are not simulated; check requests are answered by the loop.
                _ => {}
            }
        }
    }
}

/// A check made during a tick: a metric sample or a webhook call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    /// A metric sample; `value` is `None` when the source had none.
    Metric {
        /// `analysis.metrics[].name`.
        name: String,
        /// The sampled value.
        value: Option<f64>,
        /// `%` or `ms`.
        unit: &'static str,
        /// Within its `thresholdRange`.
        ok: bool,
    },
    /// A webhook call.
    Webhook {
        /// The hook's name.
        name: String,
        /// The hook's type.
        hook_type: HookType,
        /// The call succeeded (for a gate: it is open).
        ok: bool,
    },
}

/// One of Flagger's ticks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TickLine {
    /// Time of the tick.
    pub(crate) at: Timestamp,
    /// The status after the tick.
    pub(crate) status: CanaryStatus,
    /// The routes the router reports after the tick.
    pub(crate) routes: Routes,
    /// Primary: (image, spec replicas, ready pods) after the tick.
    pub(crate) primary: Option<(String, i32, i32)>,
    /// Target (canary): (image, spec replicas, ready pods) after the tick.
    pub(crate) canary: (String, i32, i32),
    /// Metric samples and webhook calls of the tick, in order.
    pub(crate) checks: Vec<Check>,
    /// The actions of the final decision.
    pub(crate) actions: Vec<Action>,
    /// The events of the final decision.
    pub(crate) events: Vec<Event>,
    /// `tick` calls this tick took (1 + one per round of check results).
    pub(crate) rounds: usize,
    /// The tick asked for nothing.
    pub(crate) noop: bool,
}

/// One release, from `set image` to the end of its run.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    /// The release.
    pub(crate) release: Release,
    /// The image the primary ran before.
    pub(crate) previous_image: String,
    /// When `set image` was applied.
    pub(crate) started: Timestamp,
    /// Every tick from the first one after `started` to the one that ended the run.
    pub(crate) ticks: Vec<TickLine>,
    /// The status at the end.
    pub(crate) status: CanaryStatus,
    /// The world at the end.
    pub(crate) world: World,
}

impl Update {
    /// `tick` calls in all.
    pub(crate) fn calls(&self) -> usize {
        self.ticks.iter().map(|t| t.rounds).sum()
    }
}

/// The whole Flagger section.
#[derive(Debug, Clone)]
pub(crate) struct FlaggerQuickstart {
    /// The canary.
    pub(crate) canary: Canary,
    /// The ticks of the initialisation.
    pub(crate) init: Vec<TickLine>,
    /// The healthy release, then the bad one.
    pub(crate) updates: Vec<Update>,
}

/// The canary, the world and the clock.
struct Driver {
    canary: Canary,
    status: CanaryStatus,
    world: World,
    /// Time of the next tick.
    now: Timestamp,
}

impl Driver {
    /// One of Flagger's ticks at `self.now`, answering the checks it asks for.
    fn tick(&mut self) -> Result<TickLine, Error> {
        let now = self.now;
        let hash = template_hash(&self.world.target.image);
        let configs = BTreeMap::new();
        let (primary, canary) = self.world.readiness(&self.canary, now);
        let routes = self.world.reported_routes();
        let mut webhooks: Vec<WebhookResult> = Vec::new();
        let mut metrics: Option<Vec<MetricResult>> = None;
        let mut checks = Vec::new();
        for rounds in 1..=MAX_ROUNDS {
            let observed = Observed {
                target_hash: &hash,
                tracked_configs: &configs,
                primary: primary.clone(),
                canary: canary.clone(),
                routes,
                metrics: metrics.as_deref(),
                webhooks: &webhooks,
            };
            let decision = tick(&self.canary, &self.status, &observed, now);
            if decision.awaits_results() {
                let requests = decision.actions;
                for request in &requests {
                    match request {
                        Action::CallWebhook {
                            name,
                            hook_type,
                            awaits_result: true,
                            ..
                        } => {
                            let ok = self.world.call_webhook(name);
                            checks.push(Check::Webhook {
                                name: name.clone(),
                                hook_type: *hook_type,
                                ok,
                            });
                            webhooks.push(if ok {
                                WebhookResult::ok(name.clone(), *hook_type)
                            } else {
                                WebhookResult::failed(name.clone(), *hook_type, "403 Forbidden")
                            });
                        }
                        Action::RunMetricChecks { metrics: names } => {
                            let (results, samples) = self.world.measure(&self.canary, names);
                            checks.extend(samples);
                            metrics = Some(results);
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let noop = decision.is_noop();
            let new_status = match decision.status {
                Cow::Owned(s) => Some(s),
                Cow::Borrowed(_) => None,
            };
            let actions = decision.actions;
            let events = decision.events;
            let next = decision
                .requeue_at
                .ok_or("a final decision without requeue_at")?;
            self.world.execute(&actions, now, &mut checks);
            if let Some(s) = new_status {
                self.status = s;
            }
            self.now = next;
            let w = &self.world;
            return Ok(TickLine {
                at: now,
                status: self.status.clone(),
                routes: w.reported_routes(),
                primary: w
                    .primary
                    .as_ref()
                    .map(|p| (p.image.clone(), p.replicas, p.available(now))),
                canary: (
                    w.target.image.clone(),
                    w.target.replicas,
                    w.target.available(now),
                ),
                checks,
                actions,
                events,
                rounds,
                noop,
            });
        }
        Err(format!("the tick at {now:?} did not settle in {MAX_ROUNDS} rounds").into())
    }

    /// Rolls `release` out: `set image` [`LEAD_SECONDS`] before a tick, then ticks until
    /// the run ends (Succeeded or Failed).
    fn update(&mut self, release: Release) -> Result<Update, Error> {
        let previous_image = self
            .world
            .primary
            .as_ref()
            .map_or_else(|| self.world.target.image.clone(), |p| p.image.clone());
        let started = self.now.add_secs(-LEAD_SECONDS);
        self.world.set_image(release, started);
        let mut ticks = Vec::new();
        for _ in 0..MAX_TICKS {
            let line = self.tick()?;
            let done = !line.noop
                && matches!(
                    line.status.phase,
                    Some(CanaryPhase::Succeeded | CanaryPhase::Failed)
                );
            ticks.push(line);
            if done {
                return Ok(Update {
                    release,
                    previous_image,
                    started,
                    ticks,
                    status: self.status.clone(),
                    world: self.world.clone(),
                });
            }
        }
        Err(format!(
            "the release {} did not finish in {MAX_TICKS} ticks",
            release.image
        )
        .into())
    }

    /// Idle ticks (a settled canary does nothing) until the next release.
    fn idle(&mut self, minutes: i64) -> Result<(), Error> {
        let until = self.now.add_secs(minutes * 60);
        while self.now < until {
            let line = self.tick()?;
            if !line.noop {
                return Err(format!("an idle tick did something: {:?}", line.events).into());
            }
        }
        Ok(())
    }
}

/// Reads [`CANARY_YAML`] and checks it is a valid A/B testing canary.
pub(crate) fn canary() -> Result<Canary, Error> {
    let canary = Canary::from_yaml(CANARY_YAML)?;
    canary.validate()?;
    if canary.spec.strategy() != Strategy::ABTesting {
        return Err("the quickstart canary is not an A/B testing canary".into());
    }
    Ok(canary)
}

/// Runs the Flagger section: initialisation, the healthy release, the bad release.
pub(crate) fn run() -> Result<FlaggerQuickstart, Error> {
    let canary = canary()?;
    let mut d = Driver {
        canary: canary.clone(),
        status: CanaryStatus::default(),
        world: World::new(T0.add_secs(-300)),
        now: T0,
    };
    let mut init = Vec::new();
    while d.status.phase != Some(CanaryPhase::Initialized) {
        if init.len() >= MAX_TICKS {
            return Err("the canary was never initialised".into());
        }
        init.push(d.tick()?);
    }
    d.idle(IDLE_MINUTES)?;
    let good = d.update(GOOD)?;
    d.idle(IDLE_MINUTES)?;
    let bad = d.update(BAD)?;
    Ok(FlaggerQuickstart {
        canary,
        init,
        updates: vec![good, bad],
    })
}

fn describe_match(name: &str, m: &StringMatch) -> String {
    let (kind, value) = if let Some(v) = &m.exact {
        ("exact", v)
    } else if let Some(v) = &m.prefix {
        ("prefix", v)
    } else if let Some(v) = &m.suffix {
        ("suffix", v)
    } else if let Some(v) = &m.regex {
        ("regex", v)
    } else {
        return format!("header {name}");
    };
    format!("header {name} {kind} {value:?}")
}

fn routes_text(routes: Routes, ab: bool) -> String {
    if routes == Routes::PRIMARY {
        "100/0 all -> primary".to_string()
    } else if ab && routes.canary == 100 {
        "0/100 matching -> canary".to_string()
    } else {
        format!("{}/{}", routes.primary, routes.canary)
    }
}

fn check_text(c: &Check) -> String {
    match c {
        Check::Metric {
            name,
            value: Some(v),
            unit,
            ok,
        } => {
            let v = if *unit == "%" {
                format!("{v:.2}%")
            } else {
                format!("{v:.0}{unit}")
            };
            let name = name.strip_prefix("request-").unwrap_or(name);
            format!("{name} {v} {}", if *ok { "ok" } else { "FAILED" })
        }
        Check::Metric { name, .. } => format!("{name} no value FAILED"),
        Check::Webhook {
            name,
            hook_type,
            ok,
        } => {
            let answer = match (hook_type, ok) {
                (HookType::ConfirmPromotion | HookType::ConfirmRollout, true) => "yes",
                (HookType::ConfirmPromotion | HookType::ConfirmRollout, false) => "no",
                (_, true) => "ok",
                (_, false) => "FAILED",
            };
            format!("{name} ({hook_type}) {answer}")
        }
    }
}

fn workload_text(w: Option<&(String, i32, i32)>) -> String {
    w.map_or_else(
        || "-".to_string(),
        |(image, spec, ready)| format!("{} {spec}/{ready}", tag(image)),
    )
}

fn event_text(e: &Event) -> String {
    if e.type_ == EventType::Warning {
        format!("WARNING {}", e.message)
    } else {
        e.message.clone()
    }
}

/// Renders the Flagger section of the quickstart.
pub(crate) fn render(q: &FlaggerQuickstart) -> String {
    let mut out = String::new();
    let c = &q.canary;
    let name = c.metadata.name.as_deref().unwrap_or("canary");
    let ns = c.metadata.namespace.as_deref().unwrap_or("default");
    let analysis = c.spec.analysis.as_ref();
    let iterations = analysis.map_or(0, CanaryAnalysis::iterations);
    let threshold = analysis.map_or(1, CanaryAnalysis::threshold);
    let _ = writeln!(
        out,
        "Flagger Canary {name}.{ns}: {} on {}, Deployment {} ({REPLICAS} pods), simulated in virtual time; pods are ready {POD_READY_SECONDS}s after they are created.",
        match c.spec.strategy() {
            Strategy::ABTesting => "A/B testing",
            other => other.as_str(),
        },
        c.spec.provider.as_deref().unwrap_or("-"),
        c.spec.target_ref.name,
    );
    let matches: Vec<String> = analysis
        .map(|a| {
            a.match_
                .iter()
                .flat_map(|m| m.headers.iter().map(|(h, sm)| describe_match(h, sm)))
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Requests matching {} go to the canary during the analysis; all other requests stay on the primary.",
        matches.join(" or ")
    );
    let metrics: Vec<String> = analysis
        .map(|a| {
            a.metrics
                .iter()
                .map(|m| {
                    let r = m.threshold_range.as_ref();
                    let unit = unit_of(&m.name);
                    match (r.and_then(|r| r.min), r.and_then(|r| r.max)) {
                        (Some(min), _) => format!("{} >= {min}{unit}", m.name),
                        (_, Some(max)) => format!("{} <= {max}{unit}", m.name),
                        _ => m.name.clone(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let hooks: Vec<String> = analysis
        .map(|a| {
            a.webhooks
                .iter()
                .map(|h| format!("{} ({})", h.name, h.r#type))
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Analysis every {}s: {iterations} iterations, rollback after {threshold} failed checks; metrics {}; webhooks {} (the load tester answers no to {GATE} on its first call).",
        analysis.map_or(60, CanaryAnalysis::interval_seconds),
        metrics.join(", "),
        hooks.join(", "),
    );
    let _ = writeln!(out);
    let init_ticks = q.init.len();
    let init_after = q.init.last().map_or(0, |t| t.at.millis_since(T0) / 1000);
    let waits: Vec<String> = q
        .init
        .iter()
        .flat_map(|t| t.events.iter())
        .filter(|e| e.type_ == EventType::Warning)
        .map(|e| e.message.clone())
        .collect();
    let _ = writeln!(
        out,
        "Initial deploy of {} {}: Initialized after {} ({init_ticks} ticks{}); {}-primary serves all traffic, {} is scaled to 0.",
        c.spec.target_ref.name,
        tag(INITIAL_IMAGE),
        mm_ss(init_after),
        if waits.is_empty() {
            String::new()
        } else {
            format!("; first: {}", waits.join(", "))
        },
        c.spec.target_ref.name,
        c.spec.target_ref.name,
    );
    for (i, u) in q.updates.iter().enumerate() {
        let _ = writeln!(out);
        let ab = c.spec.strategy() == Strategy::ABTesting;
        render_update(&mut out, i + 1, u, (iterations, threshold), ab);
    }
    out
}

fn render_update(
    out: &mut String,
    number: usize,
    u: &Update,
    (iterations, threshold): (i32, i32),
    ab: bool,
) {
    let _ = writeln!(
        out,
        "== Release {number}: {} -> {}, {}",
        tag(&u.previous_image),
        tag(u.release.image),
        u.release.title
    );
    let shown: Vec<&TickLine> = u.ticks.iter().filter(|t| !t.noop).collect();
    let checks: Vec<String> = shown
        .iter()
        .map(|t| {
            if t.checks.is_empty() {
                "-".to_string()
            } else {
                t.checks
                    .iter()
                    .map(check_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        })
        .collect();
    let check_w = checks.iter().map(String::len).max().unwrap_or(6).max(6);
    let _ = writeln!(
        out,
        "{:<5}  {:<16}  {:<24}  {:<9}  {:<9}  {:>4}  {:>6}  {:<check_w$}  EVENTS",
        "TIME", "PHASE", "ROUTES", "PRIMARY", "CANARY", "ITER", "FAILED", "CHECKS"
    );
    for (t, checks) in shown.iter().zip(&checks) {
        let secs = t.at.millis_since(u.started) / 1000;
        let events: Vec<String> = t.events.iter().map(event_text).collect();
        let _ = writeln!(
            out,
            "{:<5}  {:<16}  {:<24}  {:<9}  {:<9}  {:>4}  {:>6}  {checks:<check_w$}  {}",
            mm_ss(secs),
            t.status.phase.map_or("-", CanaryPhase::as_str),
            routes_text(t.routes, ab),
            workload_text(t.primary.as_ref()),
            workload_text(Some(&t.canary)),
            format!("{}/{iterations}", t.status.iterations),
            format!("{}/{threshold}", t.status.failed_checks),
            events.join(" | "),
        );
    }
    let last = u.ticks.last();
    let after = last.map_or(0, |t| t.at.millis_since(u.started) / 1000);
    let phase = u.status.phase.map_or("-", CanaryPhase::as_str);
    let primary = u.world.primary.as_ref();
    let primary_image = primary.map_or("-", |p| tag(&p.image));
    let outcome = if u.status.phase == Some(CanaryPhase::Succeeded) {
        format!("primary now runs {primary_image} (promoted)")
    } else {
        let reached = u
            .ticks
            .iter()
            .find(|t| t.status.failed_checks >= threshold)
            .map(|t| mm_ss(t.at.millis_since(u.started) / 1000));
        format!(
            "{}primary keeps {primary_image}",
            reached.map_or(String::new(), |at| format!(
                "failed checks reached {threshold}/{threshold} at {at}, rolled back on the next tick; "
            ))
        )
    };
    let _ = writeln!(
        out,
        "-> {phase} after {} ({} ticks, {} machine calls with the check rounds); {outcome}; {} scaled to {}",
        mm_ss(after),
        u.ticks.len(),
        u.calls(),
        u.world.target.name,
        u.world.target.replicas,
    );
}
