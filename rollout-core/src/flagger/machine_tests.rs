//! Scenario and property tests of the Flagger machine, driven tick by tick through a
//! small simulated cluster and router that answer the checks the machine asks for.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::flagger::spec::{Canary, HookType};
use crate::flagger::status::{CanaryPhase, CanaryStatus};

const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

/// A `Canary` for the Deployment `podinfo` with this `analysis`; `edit` may change the
/// JSON before it is read.
fn canary_with(analysis: Value, edit: impl FnOnce(&mut Value)) -> Canary {
    let mut v = json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "default"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": analysis,
        }
    });
    edit(&mut v);
    serde_json::from_value(v).expect("test canary parses")
}

fn canary(analysis: Value) -> Canary {
    canary_with(analysis, |_| {})
}

fn hook(name: &str, type_: &str) -> Value {
    json!({"name": name, "type": type_, "url": format!("http://loadtester/{name}")})
}

type HookPolicy = Box<dyn FnMut(&str, HookType, CanaryPhase) -> bool>;
type MetricPolicy = Box<dyn FnMut(&str) -> MetricOutcome>;

/// One webhook call the simulated caller made.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    name: String,
    hook_type: HookType,
    phase: CanaryPhase,
    awaited: bool,
}

/// A final decision, owned.
#[derive(Debug, Clone)]
struct Out {
    changed: bool,
    actions: Vec<Action>,
    events: Vec<Event>,
    requeue_at: Option<Timestamp>,
    rounds: usize,
}

impl Out {
    fn has(&self, pred: impl Fn(&Action) -> bool) -> bool {
        self.actions.iter().any(pred)
    }

    fn routes(&self) -> Option<Routes> {
        self.actions.iter().rev().find_map(|a| match a {
            Action::SetRoutes {
                primary,
                canary,
                mirrored,
            } => Some(Routes::new(*primary, *canary, *mirrored)),
            _ => None,
        })
    }

    fn alerts(&self) -> Vec<(AlertSeverity, String)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::SendAlert { severity, message } => Some((*severity, message.clone())),
                _ => None,
            })
            .collect()
    }

    fn event_with(&self, text: &str) -> bool {
        self.events.iter().any(|e| e.message.contains(text))
    }
}

struct Sim {
    canary: Canary,
    status: CanaryStatus,
    now: Timestamp,
    hash: String,
    configs: BTreeMap<String, String>,
    primary: Readiness,
    target: Readiness,
    router: Routes,
    /// The `kubernetes` router: writes nothing, reports 0/100 once iterations > 0.
    nop_router: bool,
    /// Routers that ignore the mirrored flag report `false`.
    router_mirrors: bool,
    hooks: HookPolicy,
    metrics: MetricPolicy,
    calls: Vec<Call>,
    metric_runs: usize,
}

impl Sim {
    fn new(canary: Canary) -> Sim {
        let nop_router = canary.spec.provider.as_deref() == Some("kubernetes");
        Sim {
            canary,
            status: CanaryStatus::default(),
            now: T0,
            hash: "v1".into(),
            configs: BTreeMap::new(),
            primary: Readiness::Ready,
            target: Readiness::Ready,
            router: Routes::PRIMARY,
            nop_router,
            router_mirrors: true,
            hooks: Box::new(|_, _, _| true),
            metrics: Box::new(|_| MetricOutcome::Pass),
            calls: Vec::new(),
            metric_runs: 0,
        }
    }

    /// Initialised with `v1`, then the target changed to `v2` (not yet detected).
    fn deployed(canary: Canary) -> Sim {
        let mut sim = Sim::new(canary);
        sim.tick();
        assert_eq!(sim.phase(), Some(CanaryPhase::Initialized));
        sim.hash = "v2".into();
        sim
    }

    /// Deployed and the change detected: Progressing, nothing analysed yet.
    fn progressing(canary: Canary) -> Sim {
        let mut sim = Sim::deployed(canary);
        sim.tick();
        assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
        sim
    }

    fn phase(&self) -> Option<CanaryPhase> {
        self.status.phase
    }

    fn reported_routes(&self) -> Routes {
        if self.nop_router {
            if self.status.iterations > 0 {
                Routes::new(0, 100, false)
            } else {
                Routes::PRIMARY
            }
        } else {
            self.router
        }
    }

    fn observed<'a>(
        &'a self,
        webhooks: &'a [WebhookResult],
        metrics: Option<&'a [MetricResult]>,
    ) -> Observed<'a> {
        Observed {
            target_hash: &self.hash,
            tracked_configs: &self.configs,
            primary: self.primary.clone(),
            canary: self.target.clone(),
            routes: self.reported_routes(),
            metrics,
            webhooks,
        }
    }

    /// One tick, answering the checks the machine asks for.
    fn tick(&mut self) -> Out {
        let mut webhooks: Vec<WebhookResult> = Vec::new();
        let mut metrics: Option<Vec<MetricResult>> = None;
        for rounds in 1..=10 {
            let (awaiting, changed, status, actions, events, requeue_at) = {
                let obs = self.observed(&webhooks, metrics.as_deref());
                let d = tick(&self.canary, &self.status, &obs, self.now);
                (
                    d.awaits_results(),
                    d.status_changed(),
                    d.status.clone().into_owned(),
                    d.actions,
                    d.events,
                    d.requeue_at,
                )
            };
            if awaiting {
                assert!(!changed, "a pending round changed the status");
                assert!(events.is_empty(), "a pending round recorded events");
                assert_eq!(requeue_at, None);
                for action in &actions {
                    match action {
                        Action::CallWebhook {
                            name,
                            hook_type,
                            phase,
                            awaits_result: true,
                            ..
                        } => {
                            self.calls.push(Call {
                                name: name.clone(),
                                hook_type: *hook_type,
                                phase: *phase,
                                awaited: true,
                            });
                            let ok = (self.hooks)(name, *hook_type, *phase);
                            webhooks.push(WebhookResult {
                                name: name.clone(),
                                hook_type: *hook_type,
                                ok,
                                message: if ok { String::new() } else { "403".into() },
                            });
                        }
                        Action::RunMetricChecks { metrics: names } => {
                            self.metric_runs += 1;
                            metrics = Some(
                                names
                                    .iter()
                                    .map(|n| MetricResult {
                                        name: n.clone(),
                                        outcome: (self.metrics)(n),
                                    })
                                    .collect(),
                            );
                        }
                        other => panic!("a pending round carries {other:?}"),
                    }
                }
                continue;
            }
            for action in &actions {
                match action {
                    Action::SetRoutes {
                        primary,
                        canary,
                        mirrored,
                    } => {
                        assert_eq!(primary + canary, 100, "{action:?}");
                        if !self.nop_router {
                            self.router =
                                Routes::new(*primary, *canary, *mirrored && self.router_mirrors);
                        }
                    }
                    Action::CallWebhook {
                        name,
                        hook_type,
                        phase,
                        awaits_result: false,
                        ..
                    } => self.calls.push(Call {
                        name: name.clone(),
                        hook_type: *hook_type,
                        phase: *phase,
                        awaited: false,
                    }),
                    _ => {}
                }
            }
            self.status = status;
            if let Some(t) = requeue_at {
                self.now = t;
            }
            return Out {
                changed,
                actions,
                events,
                requeue_at,
                rounds,
            };
        }
        panic!("the tick did not settle in 10 rounds")
    }

    /// Ticks until the phase is `phase`; returns the outcome of that tick.
    fn tick_until(&mut self, phase: CanaryPhase, max: usize) -> Out {
        for _ in 0..max {
            let out = self.tick();
            if self.phase() == Some(phase) {
                return out;
            }
        }
        panic!("no {phase:?} after {max} ticks: {:?}", self.status)
    }

    fn calls_of(&self, hook_type: HookType) -> Vec<&Call> {
        self.calls
            .iter()
            .filter(|c| c.hook_type == hook_type)
            .collect()
    }
}

fn scaled(out: &Out, to: ScaleTo) -> bool {
    out.has(|a| *a == Action::ScaleTarget { replicas: to })
}

// ---- initialisation ------------------------------------------------------------------

#[test]
fn initialization_waits_for_the_primary() {
    let mut sim = Sim::new(canary(json!({"stepWeight": 10, "maxWeight": 50})));
    sim.primary = Readiness::Waiting("podinfo-primary not ready".into());
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Initializing));
    assert_eq!(
        out.actions,
        vec![Action::InitializeServices, Action::InitializePrimary]
    );
    assert!(out.event_with("podinfo-primary not ready"));
    assert_eq!(out.requeue_at, Some(T0.add_secs(60)));
    let cond = &sim.status.conditions[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_str()
        ),
        ("Promoted", "Unknown", "Initializing")
    );

    sim.primary = Readiness::Ready;
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Initialized));
    assert_eq!(
        out.actions[..5],
        [
            Action::InitializeServices,
            Action::InitializePrimary,
            Action::ReconcileApexService,
            Action::ScaleTarget {
                replicas: ScaleTo::Zero
            },
            Action::ReconcileRouting,
        ]
    );
    assert_eq!(
        out.alerts(),
        vec![(
            AlertSeverity::Info,
            "New Deployment detected, initialization completed.".to_string()
        )]
    );
    assert_eq!(sim.status.last_applied_spec, "v1");
    assert_eq!(sim.status.last_promoted_spec, "v1");
    assert_eq!(sim.status.conditions[0].status, "True");
    assert_eq!(
        sim.status.conditions[0].message,
        "Deployment initialization completed."
    );

    // Nothing changed: an idle tick does nothing at all.
    let out = sim.tick();
    assert!(!out.changed && out.actions.is_empty() && out.events.is_empty());
}

#[test]
fn initialization_with_autoscaler_and_appmesh() {
    let c = canary_with(json!({"stepWeight": 10}), |v| {
        v["spec"]["provider"] = json!("appmesh:v1beta2");
        v["spec"]["autoscalerRef"] = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"});
    });
    let mut sim = Sim::new(c);
    let out = sim.tick();
    assert_eq!(
        out.actions[..7],
        [
            Action::InitializeServices,
            Action::ReconcileRouting,
            Action::InitializePrimary,
            Action::ReconcilePrimaryScaler,
            Action::PauseTargetScaler,
            Action::ReconcileApexService,
            Action::ScaleTarget {
                replicas: ScaleTo::Zero
            },
        ]
    );
    sim.hash = "v2".into();
    let out = sim.tick();
    assert_eq!(
        out.actions[1..3],
        [
            Action::ResumeTargetScaler,
            Action::ScaleTarget {
                replicas: ScaleTo::Up
            }
        ]
    );
}

#[test]
fn stuck_primary_while_initializing_fails() {
    let mut sim = Sim::new(canary(json!({"stepWeight": 10})));
    sim.primary =
        Readiness::Failed("deployment \"podinfo-primary\" exceeded its progress deadline".into());
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
    assert!(scaled(&out, ScaleTo::Zero));
    assert_eq!(out.routes(), Some(Routes::PRIMARY));
}

// ---- the canary strategy -------------------------------------------------------------

#[test]
fn canary_progression_to_succeeded() {
    let c = canary(json!({
        "stepWeight": 20, "maxWeight": 50, "threshold": 10,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
        "webhooks": [hook("smoke", "pre-rollout"), hook("load", "rollout"), hook("notify", "post-rollout")]
    }));
    let mut sim = Sim::deployed(c);

    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    assert!(scaled(&out, ScaleTo::Up));
    assert_eq!(out.routes(), None);
    assert!(out.event_with("New revision detected! Scaling up podinfo.default"));
    assert_eq!(sim.status.last_applied_spec, "v2");
    assert_eq!(sim.status.last_promoted_spec, "v1");

    let mut weights = Vec::new();
    for _ in 0..3 {
        let out = sim.tick();
        weights.push(out.routes().expect("a weight step"));
        assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    }
    assert_eq!(
        weights,
        vec![
            Routes::new(80, 20, false),
            Routes::new(60, 40, false),
            Routes::new(40, 60, false)
        ]
    );
    assert_eq!(sim.status.canary_weight, 60);
    // Pre-rollout once (first analysis tick), then rollout hooks and metrics.
    assert_eq!(sim.calls_of(HookType::PreRollout).len(), 1);
    assert_eq!(sim.calls_of(HookType::Rollout).len(), 2);
    assert_eq!(sim.metric_runs, 2);

    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Promoting));
    assert!(out.has(|a| *a == Action::Promote));
    assert_eq!(out.routes(), None);
    assert_eq!(sim.status.canary_weight, 60, "Promoting keeps the weight");

    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Finalising));
    assert_eq!(out.routes(), Some(Routes::PRIMARY));
    assert_eq!(sim.status.canary_weight, 0);

    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Succeeded));
    assert!(scaled(&out, ScaleTo::Zero));
    assert_eq!(sim.status.last_promoted_spec, "v2");
    let cond = &sim.status.conditions[0];
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "Succeeded")
    );
    assert_eq!(
        sim.calls_of(HookType::PostRollout),
        vec![&Call {
            name: "notify".into(),
            hook_type: HookType::PostRollout,
            phase: CanaryPhase::Succeeded,
            awaited: false
        }]
    );
    assert!(out.alerts().iter().any(|(s, m)| *s == AlertSeverity::Info
        && m == "Canary analysis completed successfully, promotion finished."));

    // Promoted: idle.
    let out = sim.tick();
    assert!(!out.changed && out.actions.is_empty());
}

#[test]
fn step_weights_ladder_caps_at_100() {
    for (ladder, expected) in [
        (json!([1, 2, 10, 80]), vec![1, 2, 10, 80]),
        (json!([1, 2, 10, 200]), vec![1, 2, 10, 100]),
    ] {
        let mut sim = Sim::progressing(canary(json!({"stepWeights": ladder})));
        let mut weights = Vec::new();
        loop {
            let out = sim.tick();
            if sim.phase() == Some(CanaryPhase::Promoting) {
                break;
            }
            weights.push(out.routes().expect("a step").canary);
            assert!(weights.len() < 10);
        }
        assert_eq!(weights, expected);
    }
}

#[test]
fn next_step_weight_follows_flagger() {
    let a: CanaryAnalysis = serde_json::from_value(json!({"stepWeights": [1, 2, 10, 80]})).unwrap();
    assert_eq!(
        [0, 1, 2, 10, 80, 100, 50].map(|w| next_step_weight(&a, w)),
        [1, 1, 8, 70, 20, 1, 50]
    );
    let a: CanaryAnalysis = serde_json::from_value(json!({"stepWeight": 30})).unwrap();
    assert_eq!(next_step_weight(&a, 90), 30);
    let a: CanaryAnalysis = serde_json::from_value(json!({})).unwrap();
    assert_eq!(next_step_weight(&a, 0), 0);
}

#[test]
fn without_steps_the_canary_analyses_forever() {
    let mut sim = Sim::progressing(canary(json!({"threshold": 3})));
    for _ in 0..5 {
        let out = sim.tick();
        assert_eq!(out.routes(), None);
        assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    }
}

#[test]
fn mirroring_pre_step() {
    let c = canary_with(
        json!({"stepWeight": 10, "maxWeight": 50, "mirror": true, "threshold": 10,
               "webhooks": [hook("gate", "confirm-traffic-increase")]}),
        |v| v["spec"]["provider"] = json!("istio"),
    );
    let mut sim = Sim::progressing(c);
    let out = sim.tick();
    assert_eq!(out.routes(), Some(Routes::new(100, 0, true)));
    assert_eq!(sim.calls_of(HookType::PreRollout).len(), 0);
    let out = sim.tick();
    assert_eq!(out.routes(), Some(Routes::new(90, 10, false)));
    // The traffic-increase gate is skipped while mirrored.
    assert_eq!(sim.calls_of(HookType::ConfirmTrafficIncrease).len(), 1);
    let out = sim.tick();
    assert_eq!(out.routes(), Some(Routes::new(80, 20, false)));
}

#[test]
fn mirroring_with_a_router_that_cannot_mirror_repeats_the_pre_step() {
    let mut sim = Sim::progressing(canary(json!({"stepWeight": 10, "mirror": true})));
    sim.router_mirrors = false;
    for _ in 0..3 {
        let out = sim.tick();
        assert_eq!(out.routes(), Some(Routes::new(100, 0, true)));
    }
}

// ---- failed checks -------------------------------------------------------------------

#[test]
fn failed_checks_roll_back_one_tick_after_the_threshold() {
    let c = canary(json!({
        "stepWeight": 10, "maxWeight": 50, "threshold": 2,
        "metrics": [{"name": "request-success-rate"}, {"name": "latency", "templateRef": {"name": "latency"}}],
        "webhooks": [hook("notify", "post-rollout")]
    }));
    let mut sim = Sim::progressing(c);
    assert_eq!(sim.tick().routes(), Some(Routes::new(90, 10, false)));

    sim.metrics = Box::new(|name| {
        if name == "latency" {
            MetricOutcome::Fail("650 > 500".into())
        } else {
            MetricOutcome::Pass
        }
    });
    let out = sim.tick();
    assert_eq!(sim.status.failed_checks, 1);
    assert!(out.event_with("Halt podinfo.default advancement latency 650 > 500"));
    assert_eq!(out.routes(), None);
    let out = sim.tick();
    assert_eq!(sim.status.failed_checks, 2);
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing), "not yet");
    assert_eq!(out.routes(), None);

    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
    assert_eq!(out.routes(), Some(Routes::PRIMARY));
    assert!(scaled(&out, ScaleTo::Zero));
    assert!(out.alerts().contains(&(
        AlertSeverity::Error,
        "Failed checks threshold reached 2".to_string()
    )));
    assert_eq!(
        (sim.status.failed_checks, sim.status.canary_weight),
        (0, 0),
        "rollback writes a fresh status"
    );
    assert_eq!(
        sim.calls_of(HookType::PostRollout)[0].phase,
        CanaryPhase::Failed
    );
    assert_eq!(sim.status.conditions[0].status, "False");

    // A failed revision is not retried.
    for _ in 0..3 {
        let out = sim.tick();
        assert!(!out.changed && out.actions.is_empty());
    }
    // A different one is.
    sim.hash = "v3".into();
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    assert_eq!(sim.status.last_applied_spec, "v3");
}

#[test]
fn metric_errors_and_missing_results_count_as_failures() {
    let c = canary(json!({
        "stepWeight": 10, "threshold": 5,
        "metrics": [{"name": "custom", "templateRef": {"name": "custom"}}, {"name": "request-duration"}]
    }));
    let mut sim = Sim::progressing(c);
    sim.tick();
    sim.metrics = Box::new(|_| MetricOutcome::Error("no values found".into()));
    let out = sim.tick();
    // Builtin metrics come first.
    assert!(out.event_with("Metric query failed for request-duration: no values found"));
    assert_eq!(sim.status.failed_checks, 1);

    // Results that do not cover the metrics asked for.
    let st = sim.status.clone();
    let results = [MetricResult::pass("request-duration")];
    let obs = Observed {
        target_hash: "v2",
        routes: sim.router,
        metrics: Some(&results),
        ..Observed::default()
    };
    let d = tick(&sim.canary, &st, &obs, sim.now);
    assert_eq!(d.status.failed_checks, 2);
    assert!(
        d.events
            .iter()
            .any(|e| e.message.contains("no result for metric custom"))
    );
}

#[test]
fn pre_rollout_failure_counts_and_is_retried() {
    let c = canary(json!({"stepWeight": 25, "threshold": 3,
                          "webhooks": [hook("migrate", "pre-rollout")]}));
    let mut sim = Sim::progressing(c);
    sim.hooks = Box::new(|_, _, _| false);
    for n in 1..=2 {
        let out = sim.tick();
        assert_eq!(sim.status.failed_checks, n);
        assert!(out.event_with("pre-rollout check migrate failed"));
    }
    sim.hooks = Box::new(|_, _, _| true);
    let out = sim.tick();
    assert_eq!(out.routes(), Some(Routes::new(75, 25, false)));
    assert_eq!(sim.calls_of(HookType::PreRollout).len(), 3);
    assert_eq!(sim.status.failed_checks, 2, "never reset during a run");
}

#[test]
fn rollout_hook_failure_counts() {
    let c = canary(json!({"stepWeight": 25, "threshold": 1,
                          "webhooks": [hook("load", "rollout")]}));
    let mut sim = Sim::progressing(c);
    sim.tick();
    sim.hooks = Box::new(|_, t, _| t != HookType::Rollout);
    let out = sim.tick();
    assert!(out.event_with("external check load failed"));
    assert_eq!(sim.status.failed_checks, 1);
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
}

// ---- gates ---------------------------------------------------------------------------

#[test]
fn confirm_rollout_waits_then_progresses() {
    let c = canary(json!({"stepWeight": 10, "webhooks": [hook("approve", "confirm-rollout")]}));
    let mut sim = Sim::deployed(c);
    sim.hooks = Box::new(|_, _, _| false);

    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Waiting));
    assert!(!scaled(&out, ScaleTo::Up), "the canary stays at 0 replicas");
    assert!(out.event_with("Halt podinfo.default advancement waiting for approval approve"));
    assert_eq!(
        out.alerts(),
        vec![(
            AlertSeverity::Warn,
            "Canary is waiting for approval.".to_string()
        )]
    );
    assert_eq!(sim.calls[0].phase, CanaryPhase::Initialized);

    for _ in 0..3 {
        let out = sim.tick();
        assert_eq!(sim.phase(), Some(CanaryPhase::Waiting));
        assert!(out.alerts().is_empty(), "alerted once");
    }
    assert_eq!(
        sim.calls.last().map(|c| c.phase),
        Some(CanaryPhase::Waiting)
    );

    sim.hooks = Box::new(|_, _, _| true);
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    assert!(scaled(&out, ScaleTo::Up));
    assert!(out.event_with("Confirm-rollout check approve passed"));
    assert_eq!(sim.status.last_applied_spec, "v2");
    let out = sim.tick();
    assert_eq!(out.routes(), Some(Routes::new(90, 10, false)));
    assert_eq!(
        sim.calls_of(HookType::ConfirmRollout).len(),
        5,
        "not re-run in a run"
    );
}

#[test]
fn muted_confirm_rollout_does_not_alert() {
    let mut gate = hook("approve", "confirm-rollout");
    gate["muteAlert"] = json!(true);
    let mut sim = Sim::deployed(canary(json!({"stepWeight": 10, "webhooks": [gate]})));
    sim.hooks = Box::new(|_, _, _| false);
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Waiting));
    assert!(out.alerts().is_empty());
}

#[test]
fn confirm_traffic_increase_blocks_without_penalty() {
    let c = canary(json!({"stepWeight": 10, "maxWeight": 30,
                          "webhooks": [hook("more", "confirm-traffic-increase")]}));
    let mut sim = Sim::progressing(c);
    sim.tick();
    assert_eq!(sim.router, Routes::new(90, 10, false));

    sim.hooks = Box::new(|_, t, _| t != HookType::ConfirmTrafficIncrease);
    for _ in 0..3 {
        let out = sim.tick();
        assert_eq!(out.routes(), None);
        assert!(out.event_with("waiting for traffic increase approval more"));
        assert_eq!(
            out.alerts(),
            vec![(
                AlertSeverity::Warn,
                "Canary traffic increase is waiting for approval.".to_string()
            )]
        );
    }
    assert_eq!(sim.status.failed_checks, 0);
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));

    sim.hooks = Box::new(|_, _, _| true);
    assert_eq!(sim.tick().routes(), Some(Routes::new(80, 20, false)));
    assert!(
        sim.calls_of(HookType::ConfirmTrafficIncrease)
            .iter()
            .all(|c| c.phase == CanaryPhase::Progressing)
    );
}

#[test]
fn closed_traffic_gate_at_weight_zero_reruns_pre_rollout() {
    let c = canary(json!({"stepWeight": 10,
        "webhooks": [hook("migrate", "pre-rollout"), hook("more", "confirm-traffic-increase")]}));
    let mut sim = Sim::progressing(c);
    sim.hooks = Box::new(|_, t, _| t != HookType::ConfirmTrafficIncrease);
    sim.tick();
    sim.tick();
    assert_eq!(sim.calls_of(HookType::PreRollout).len(), 2);
    assert_eq!(sim.router, Routes::PRIMARY);
}

#[test]
fn confirm_promotion_holds_in_waiting_promotion() {
    let c = canary(json!({"stepWeight": 50, "maxWeight": 50, "threshold": 2,
        "metrics": [{"name": "request-success-rate"}],
        "webhooks": [hook("promote", "confirm-promotion"), hook("more", "confirm-traffic-increase")]}));
    let mut sim = Sim::progressing(c);
    sim.hooks = Box::new(|_, t, _| t != HookType::ConfirmPromotion);
    sim.tick();
    assert_eq!(sim.router, Routes::new(50, 50, false));
    assert_eq!(sim.calls_of(HookType::ConfirmTrafficIncrease).len(), 1);

    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::WaitingPromotion));
    assert!(out.event_with("waiting for promotion approval promote"));
    assert_eq!(
        out.alerts(),
        vec![(
            AlertSeverity::Warn,
            "Canary promotion is waiting for approval.".to_string()
        )]
    );
    assert_eq!(sim.status.canary_weight, 0, "status weight is cosmetic");
    assert_eq!(sim.status.iterations, -1, "analysis.iterations - 1");
    assert_eq!(
        sim.router,
        Routes::new(50, 50, false),
        "routes keep the weight"
    );

    let runs = sim.metric_runs;
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::WaitingPromotion));
    assert!(out.alerts().is_empty());
    assert_eq!(sim.metric_runs, runs + 1, "analysis keeps running");
    assert_eq!(
        sim.calls_of(HookType::ConfirmTrafficIncrease).len(),
        2,
        "no traffic-increase gate in WaitingPromotion"
    );

    sim.hooks = Box::new(|_, _, _| true);
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Promoting));
    assert!(out.has(|a| *a == Action::Promote));
}

#[test]
fn failed_checks_still_roll_back_in_waiting_promotion() {
    let c = canary(json!({"stepWeight": 100, "threshold": 1,
        "metrics": [{"name": "request-success-rate"}],
        "webhooks": [hook("promote", "confirm-promotion")]}));
    let mut sim = Sim::progressing(c);
    sim.hooks = Box::new(|_, t, _| t != HookType::ConfirmPromotion);
    sim.tick();
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::WaitingPromotion));
    sim.metrics = Box::new(|_| MetricOutcome::Fail("50 < 99".into()));
    sim.tick();
    assert_eq!(sim.status.failed_checks, 1);
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
}

#[test]
fn rollback_hook_rolls_back_at_once() {
    let c = canary(json!({"stepWeight": 10, "threshold": 10,
        "webhooks": [hook("abort", "rollback"), hook("notify", "post-rollout")]}));
    let mut sim = Sim::progressing(c);
    sim.hooks = Box::new(|_, t, _| t != HookType::Rollback);
    let out = sim.tick();
    assert!(out.event_with("Rollback hook abort not signaling a rollback"));
    sim.tick();
    assert_eq!(sim.router, Routes::new(80, 20, false));

    sim.hooks = Box::new(|_, _, _| true);
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
    assert!(out.event_with("Rolling back podinfo.default manual webhook invoked"));
    assert!(out.alerts().contains(&(
        AlertSeverity::Warn,
        "Rolling back manual webhook invoked".to_string()
    )));
    assert_eq!(out.routes(), Some(Routes::PRIMARY));
    assert!(scaled(&out, ScaleTo::Zero));
    let rollback_calls = sim.calls_of(HookType::Rollback);
    assert!(
        rollback_calls
            .iter()
            .all(|c| c.phase == CanaryPhase::Progressing)
    );
    assert_eq!(
        sim.calls_of(HookType::PostRollout)[0].phase,
        CanaryPhase::Failed
    );
}

// ---- the check protocol --------------------------------------------------------------

#[test]
fn a_pending_round_only_requests_checks() {
    let c = canary(json!({"stepWeight": 10,
        "webhooks": [hook("a", "pre-rollout"), hook("x", "rollout"), hook("b", "pre-rollout")]}));
    let sim = Sim::progressing(c);
    let status = sim.status.clone();
    let obs = sim.observed(&[], None);
    let d = tick(&sim.canary, &status, &obs, sim.now);
    assert!(d.awaits_results());
    assert!(!d.status_changed() && d.events.is_empty() && d.requeue_at.is_none());
    let names: Vec<_> = d
        .actions
        .iter()
        .map(|a| match a {
            Action::CallWebhook {
                name,
                hook_type,
                phase,
                awaits_result,
                checksum,
                timeout,
                ..
            } => {
                assert!(*awaits_result);
                assert_eq!(*phase, CanaryPhase::Progressing);
                assert_eq!(*checksum, run_checksum("v2", &BTreeMap::new()));
                assert_eq!(*timeout, Duration::from_secs(10));
                (name.as_str(), *hook_type)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        vec![("a", HookType::PreRollout), ("b", HookType::PreRollout)]
    );

    // A failure of the first hook decides the stage; the second is not needed.
    let results = [WebhookResult::failed("a", HookType::PreRollout, "500")];
    let obs = sim.observed(&results, None);
    let d = tick(&sim.canary, &status, &obs, sim.now);
    assert!(!d.awaits_results());
    assert_eq!(d.status.failed_checks, 1);

    // With only the second answered, the first is asked for again.
    let results = [WebhookResult::ok("b", HookType::PreRollout)];
    let obs = sim.observed(&results, None);
    let d = tick(&sim.canary, &status, &obs, sim.now);
    assert!(d.awaits_results());
    assert_eq!(d.actions.len(), 1);

    // Both pass: the tick completes; results for hooks of other ticks are ignored.
    let results = [
        WebhookResult::ok("a", HookType::PreRollout),
        WebhookResult::ok("b", HookType::PreRollout),
        WebhookResult::failed("x", HookType::Rollout, "ignored"),
    ];
    let obs = sim.observed(&results, None);
    let d = tick(&sim.canary, &status, &obs, sim.now);
    assert!(!d.awaits_results());
    assert_eq!(d.routes(), Some(Routes::new(90, 10, false)));
    assert_eq!(d.requeue_at, Some(sim.now.add_secs(60)));
}

#[test]
fn metrics_are_requested_after_rollout_hooks() {
    let c = canary(json!({"stepWeight": 10,
        "metrics": [{"name": "custom", "templateRef": {"name": "t"}}, {"name": "request-success-rate"}],
        "webhooks": [hook("load", "rollout")]}));
    let mut sim = Sim::progressing(c);
    sim.tick();
    let status = sim.status.clone();
    let d = tick(&sim.canary, &status, &sim.observed(&[], None), sim.now);
    assert!(matches!(&d.actions[..], [Action::CallWebhook { name, .. }] if name == "load"));
    let results = [WebhookResult::ok("load", HookType::Rollout)];
    let d = tick(&sim.canary, &status, &sim.observed(&results, None), sim.now);
    assert_eq!(
        d.actions,
        vec![Action::RunMetricChecks {
            metrics: vec!["request-success-rate".into(), "custom".into()]
        }]
    );
    let out = sim.tick();
    assert_eq!(out.rounds, 3);
}

#[test]
fn event_hooks_receive_every_event() {
    let c = canary(json!({"stepWeight": 10, "webhooks": [hook("events", "event")]}));
    let mut sim = Sim::deployed(c);
    let out = sim.tick();
    let calls: Vec<_> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CallWebhook {
                hook_type: HookType::Event,
                metadata,
                awaits_result,
                phase,
                ..
            } => Some((metadata.clone(), *awaits_result, *phase)),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), out.events.len());
    let (metadata, awaits, phase) = &calls[0];
    assert!(!awaits);
    assert_eq!(*phase, CanaryPhase::Progressing);
    assert_eq!(
        metadata.get("eventMessage").map(String::as_str),
        Some("New revision detected! Scaling up podinfo.default")
    );
    assert_eq!(
        metadata.get("eventType").map(String::as_str),
        Some("Normal")
    );
    assert!(metadata.contains_key("timestamp"));
}

// ---- A/B testing and blue/green ------------------------------------------------------

#[test]
fn ab_testing_by_iterations() {
    let c = canary(json!({"iterations": 3, "threshold": 2,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
        "webhooks": [hook("smoke", "pre-rollout")]}));
    let mut sim = Sim::progressing(c);
    let mut trace = Vec::new();
    for _ in 0..3 {
        let out = sim.tick();
        assert_eq!(out.routes(), Some(Routes::new(0, 100, false)));
        trace.push(sim.status.iterations);
    }
    assert_eq!(trace, vec![1, 2, 3], "the pre-rollout tick counts");
    assert_eq!(sim.calls_of(HookType::PreRollout).len(), 1);
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Promoting));
    assert!(out.has(|a| *a == Action::Promote));
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Finalising));
    assert_eq!(out.routes(), Some(Routes::PRIMARY));
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Succeeded));
}

#[test]
fn blue_green_routes_all_traffic_to_the_canary_before_promoting() {
    let c = canary_with(json!({"iterations": 1}), |v| {
        v["spec"]["provider"] = json!("istio")
    });
    let mut sim = Sim::deployed(c);
    let mut phases = Vec::new();
    let mut routes = Vec::new();
    for _ in 0..6 {
        let out = sim.tick();
        phases.push(sim.phase().map(CanaryPhase::as_str).unwrap_or(""));
        routes.push(out.routes());
    }
    assert_eq!(
        phases,
        [
            "Progressing",
            "Progressing",
            "Progressing",
            "Promoting",
            "Finalising",
            "Succeeded"
        ]
    );
    assert_eq!(
        routes,
        [
            None,
            None,
            Some(Routes::new(0, 100, false)),
            None,
            Some(Routes::PRIMARY),
            None
        ]
    );
}

#[test]
fn blue_green_with_mirroring() {
    let c = canary_with(json!({"iterations": 2, "mirror": true}), |v| {
        v["spec"]["provider"] = json!("istio")
    });
    let mut sim = Sim::progressing(c);
    assert_eq!(sim.tick().routes(), Some(Routes::new(100, 0, true)));
    assert_eq!(sim.tick().routes(), None, "already mirrored");
    assert_eq!(sim.status.iterations, 2);
    let out = sim.tick();
    assert_eq!(out.routes(), Some(Routes::new(0, 100, false)));
    assert!(out.event_with("Stop traffic mirroring and route all traffic to canary"));
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Promoting));
}

#[test]
fn blue_green_with_the_kubernetes_provider() {
    let c = canary_with(
        json!({"threshold": 2, "match": [{"headers": {"x": {"exact": "y"}}}]}),
        |v| v["spec"]["provider"] = json!("kubernetes"),
    );
    let mut sim = Sim::progressing(c);
    let out = sim.tick();
    assert!(out.event_with("A/B testing is not supported when using the kubernetes provider"));
    assert!(out.event_with("Setting canaryAnalysis.iterations: 10"));
    assert_eq!(sim.status.iterations, 1);
    for i in 2..=10 {
        let out = sim.tick();
        assert_eq!(out.routes(), None);
        assert_eq!(sim.status.iterations, i);
    }
    // The extra tick: no route switch for the kubernetes router, the count goes on.
    let out = sim.tick();
    assert_eq!(out.routes(), None);
    assert_eq!(sim.status.iterations, 11);
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Promoting));
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Finalising));
    assert_eq!(out.routes(), None, "no traffic shift without a mesh");
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Succeeded));
}

#[test]
fn waiting_promotion_with_iterations_alternates() {
    let c = canary(
        json!({"iterations": 2, "match": [{"headers": {"x": {"exact": "y"}}}],
        "webhooks": [hook("promote", "confirm-promotion")]}),
    );
    let mut sim = Sim::progressing(c);
    sim.hooks = Box::new(|_, t, _| t != HookType::ConfirmPromotion);
    sim.tick();
    sim.tick();
    let mut trace = Vec::new();
    for _ in 0..4 {
        sim.tick();
        trace.push((sim.phase(), sim.status.iterations));
    }
    let wp = Some(CanaryPhase::WaitingPromotion);
    assert_eq!(trace, vec![(wp, 1), (wp, 2), (wp, 1), (wp, 2)]);
    sim.hooks = Box::new(|_, _, _| true);
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Promoting));
}

// ---- promotion -----------------------------------------------------------------------

#[test]
fn step_weight_promotion_shifts_back_gradually() {
    let c = canary(json!({"iterations": 1, "stepWeightPromotion": 50}));
    let mut sim = Sim::progressing(c);
    sim.tick_until(CanaryPhase::Promoting, 5);
    assert_eq!(sim.router, Routes::new(0, 100, false));
    let mut trace = Vec::new();
    for _ in 0..2 {
        let out = sim.tick();
        trace.push((out.routes().map(|r| r.canary), sim.phase()));
    }
    assert_eq!(
        trace,
        vec![
            (Some(50), Some(CanaryPhase::Promoting)),
            (Some(0), Some(CanaryPhase::Finalising))
        ]
    );
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Succeeded));
}

#[test]
fn promoting_waits_for_the_primary_rollout() {
    let c = canary(json!({"stepWeight": 100}));
    let mut sim = Sim::progressing(c);
    sim.tick();
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Promoting));
    sim.primary = Readiness::Waiting("waiting for rollout to finish".into());
    for _ in 0..2 {
        let out = sim.tick();
        assert_eq!(sim.phase(), Some(CanaryPhase::Promoting));
        assert_eq!(out.routes(), None);
    }
    sim.primary = Readiness::Ready;
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Finalising));
}

#[test]
fn stuck_primary_during_promotion_routes_to_the_canary() {
    let c = canary(json!({"stepWeight": 100}));
    let mut sim = Sim::progressing(c);
    sim.tick_until(CanaryPhase::Promoting, 3);
    sim.primary =
        Readiness::Failed("deployment \"podinfo-primary\" exceeded its progress deadline".into());
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
    assert_eq!(out.routes(), Some(Routes::new(0, 100, false)));
    assert_eq!(sim.status.canary_weight, 100);
    assert!(!scaled(&out, ScaleTo::Zero), "the canary keeps serving");
}

// ---- revisions -----------------------------------------------------------------------

#[test]
fn new_revision_mid_analysis_restarts() {
    let c = canary(json!({"stepWeight": 10, "maxWeight": 50, "threshold": 10,
        "metrics": [{"name": "request-success-rate"}],
        "webhooks": [hook("approve", "confirm-rollout"), hook("smoke", "pre-rollout")]}));
    let mut sim = Sim::progressing(c);
    sim.tick();
    sim.tick();
    sim.metrics = Box::new(|_| MetricOutcome::Fail("bad".into()));
    sim.tick();
    assert_eq!((sim.router.canary, sim.status.failed_checks), (20, 1));

    sim.hash = "v3".into();
    let out = sim.tick();
    assert_eq!(out.routes(), Some(Routes::PRIMARY));
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    assert_eq!(
        (
            sim.status.canary_weight,
            sim.status.failed_checks,
            sim.status.iterations
        ),
        (0, 0, 0)
    );
    assert_eq!(sim.status.last_applied_spec, "v3");
    assert!(out.event_with("New revision detected! Restarting analysis for podinfo.default"));
    assert_eq!(
        sim.calls_of(HookType::ConfirmRollout).len(),
        1,
        "not re-run"
    );

    sim.metrics = Box::new(|_| MetricOutcome::Pass);
    sim.tick();
    assert_eq!(
        sim.calls_of(HookType::PreRollout).len(),
        2,
        "pre-rollout again"
    );
    assert_eq!(sim.router, Routes::new(90, 10, false));
}

#[test]
fn tracked_config_change_starts_and_restarts_a_run() {
    let mut sim = Sim::new(canary(json!({"stepWeight": 10})));
    sim.configs
        .insert("configmap/podinfo-config".into(), "aaa".into());
    sim.tick();
    assert_eq!(sim.status.tracked_configs.len(), 1);
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Initialized));

    sim.configs
        .insert("configmap/podinfo-config".into(), "bbb".into());
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    sim.tick();
    sim.configs
        .insert("secret/podinfo-secret".into(), "ccc".into());
    let out = sim.tick();
    assert_eq!(out.routes(), Some(Routes::PRIMARY));
    assert_eq!(sim.status.tracked_configs.len(), 2);
}

#[test]
fn a_change_back_to_the_promoted_spec_is_not_a_new_revision() {
    let mut sim = Sim::deployed(canary(json!({"stepWeight": 50, "threshold": 1,
        "metrics": [{"name": "request-success-rate"}]})));
    sim.metrics = Box::new(|_| MetricOutcome::Fail("bad".into()));
    sim.tick_until(CanaryPhase::Failed, 10);
    // Manual rollback to v1, the promoted spec: no run, the status follows the target.
    sim.hash = "v1".into();
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
    assert!(out.actions.is_empty());
    assert_eq!(sim.status.last_applied_spec, "v1");
    let out = sim.tick();
    assert!(out.is_noop_like());
}

#[test]
fn a_new_revision_after_a_failure_waits_for_the_primary_and_is_not_lost() {
    let mut sim = Sim::deployed(canary(json!({"stepWeight": 50, "threshold": 1,
        "metrics": [{"name": "request-success-rate"}]})));
    sim.metrics = Box::new(|_| MetricOutcome::Fail("bad".into()));
    sim.tick_until(CanaryPhase::Failed, 10);
    sim.metrics = Box::new(|_| MetricOutcome::Pass);
    sim.hash = "v3".into();
    sim.primary = Readiness::Waiting("podinfo-primary not ready".into());
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
    assert_eq!(sim.status.last_applied_spec, "v2");
    sim.primary = Readiness::Ready;
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    assert!(scaled(&out, ScaleTo::Up));
    assert_eq!(sim.status.last_applied_spec, "v3");
}

impl Out {
    fn is_noop_like(&self) -> bool {
        !self.changed && self.actions.is_empty() && self.events.is_empty()
    }
}

// ---- skipAnalysis, suspend, deadlines ------------------------------------------------

#[test]
fn skip_analysis_promotes_on_the_next_tick() {
    let c = canary_with(
        json!({"stepWeight": 10, "webhooks": [hook("notify", "post-rollout")]}),
        |v| v["spec"]["skipAnalysis"] = json!(true),
    );
    let mut sim = Sim::progressing(c);
    sim.primary = Readiness::Waiting("not checked".into());
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Succeeded));
    assert_eq!(out.routes(), Some(Routes::PRIMARY));
    assert!(out.has(|a| *a == Action::Promote));
    assert!(scaled(&out, ScaleTo::Zero));
    assert_eq!(sim.status.last_promoted_spec, "v2");
    assert_eq!(sim.calls_of(HookType::PostRollout).len(), 1);
    assert!(out.alerts().contains(&(
        AlertSeverity::Info,
        "Canary analysis was skipped, promotion finished.".to_string()
    )));
}

#[test]
fn skip_analysis_waits_for_the_canary_and_rolls_back_when_stuck() {
    let c = canary_with(json!({"stepWeight": 10}), |v| {
        v["spec"]["skipAnalysis"] = json!(true)
    });
    let mut sim = Sim::progressing(c);
    sim.target = Readiness::Waiting("0 of 1 updated replicas are available".into());
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    sim.target = Readiness::Failed("progress deadline".into());
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
}

#[test]
fn canary_without_analysis_is_promoted_without_checks() {
    let c = canary_with(json!(null), |v| {
        if let Some(spec) = v["spec"].as_object_mut() {
            spec.remove("analysis");
        }
    });
    let mut sim = Sim::progressing(c);
    sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Succeeded));
}

#[test]
fn suspend_stops_everything_and_resumes_where_it_was() {
    let c = canary(json!({"stepWeight": 10}));
    let mut sim = Sim::progressing(c);
    sim.tick();
    sim.canary.spec.suspend = true;
    sim.hash = "v3".into();
    for _ in 0..3 {
        let out = sim.tick();
        assert!(!out.changed);
        assert!(out.actions.is_empty());
        assert!(out.event_with("skipping canary run as object is suspended"));
        assert!(out.requeue_at.is_some());
    }
    sim.canary.spec.suspend = false;
    sim.hash = "v2".into();
    assert_eq!(sim.tick().routes(), Some(Routes::new(80, 20, false)));
}

#[test]
fn progress_deadline_fails_the_run() {
    let c = canary(json!({"stepWeight": 10, "threshold": 5}));
    let mut sim = Sim::progressing(c);
    sim.target = Readiness::Waiting("waiting for rollout to finish".into());
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Progressing));
    assert_eq!(sim.status.failed_checks, 0, "waiting is not a failed check");
    assert!(out.event_with("waiting for rollout to finish"));

    sim.target = Readiness::Failed("deployment \"podinfo\" exceeded its progress deadline".into());
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Failed));
    assert!(
        out.alerts().contains(&(
            AlertSeverity::Error,
            "Progress deadline exceeded deployment \"podinfo\" exceeded its progress deadline"
                .to_string()
        ))
    );
    assert!(scaled(&out, ScaleTo::Zero));
}

#[test]
fn deployment_readiness_follows_flagger() {
    let now = T0;
    let ready = DeploymentState {
        name: "podinfo".into(),
        generation: 2,
        observed_generation: 2,
        spec_replicas: Some(4),
        replicas: 4,
        updated_replicas: 4,
        available_replicas: 4,
        progressing_reason: Some("NewReplicaSetAvailable".into()),
        unavailable_since: None,
    };
    assert_eq!(ready.readiness(100, 600, now), Readiness::Ready);
    let lagging = DeploymentState {
        generation: 3,
        ..ready.clone()
    };
    assert!(matches!(
        lagging.readiness(100, 600, now),
        Readiness::Waiting(_)
    ));
    let updating = DeploymentState {
        updated_replicas: 2,
        ..ready.clone()
    };
    assert_eq!(
        updating.readiness(100, 600, now),
        Readiness::Waiting(
            "waiting for rollout to finish: 2 out of 4 new replicas have been updated".into()
        )
    );
    let partial = DeploymentState {
        available_replicas: 2,
        ..ready.clone()
    };
    assert!(matches!(
        partial.readiness(100, 600, now),
        Readiness::Waiting(_)
    ));
    assert_eq!(partial.readiness(50, 600, now), Readiness::Ready);
    let stuck = DeploymentState {
        unavailable_since: Some(now.add_secs(-601)),
        ..partial.clone()
    };
    assert!(matches!(
        stuck.readiness(100, 600, now),
        Readiness::Failed(_)
    ));
    let not_yet = DeploymentState {
        unavailable_since: Some(now.add_secs(-599)),
        ..partial
    };
    assert!(matches!(
        not_yet.readiness(100, 600, now),
        Readiness::Waiting(_)
    ));
    let exceeded = DeploymentState {
        progressing_reason: Some("ProgressDeadlineExceeded".into()),
        ..ready.clone()
    };
    assert!(matches!(
        exceeded.readiness(100, 600, now),
        Readiness::Failed(_)
    ));
    let zero = DeploymentState {
        spec_replicas: Some(0),
        replicas: 0,
        updated_replicas: 0,
        available_replicas: 0,
        ..ready
    };
    assert!(matches!(
        zero.primary_readiness(100, 600, now),
        Readiness::Failed(_)
    ));
}

#[test]
fn status_is_borrowed_when_nothing_changes() {
    let mut sim = Sim::deployed(canary(json!({"stepWeight": 10})));
    sim.hash = "v1".into();
    let status = sim.status.clone();
    let d = tick(&sim.canary, &status, &sim.observed(&[], None), sim.now);
    assert!(d.is_noop());
    assert!(!d.status_changed());
    assert_eq!(d.requeue_at, Some(sim.now.add_secs(60)));
}

#[test]
fn interval_sets_the_requeue() {
    let mut sim = Sim::new(canary(json!({"stepWeight": 10, "interval": "30s"})));
    let out = sim.tick();
    assert_eq!(out.requeue_at, Some(T0.add_secs(30)));
    let mut sim = Sim::new(canary(json!({"stepWeight": 10, "interval": "1s"})));
    assert_eq!(sim.tick().requeue_at, Some(T0.add_secs(10)));
}

// ---- properties ----------------------------------------------------------------------

mod props {
    use proptest::prelude::{Just, ProptestConfig, any, prop_assert, prop_assert_eq, prop_oneof};
    use proptest::{proptest, strategy::Strategy as Gen};

    use super::*;

    /// A small deterministic generator for per-tick observations.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[derive(Debug, Clone)]
    struct SpecParams {
        step_weight: Option<i32>,
        step_weights: Vec<i32>,
        max_weight: Option<i32>,
        iterations: Option<i32>,
        ab: bool,
        mirror: bool,
        step_weight_promotion: Option<i32>,
        threshold: i32,
        provider: &'static str,
        hooks: Vec<&'static str>,
        skip: bool,
    }

    fn build(p: &SpecParams) -> Canary {
        let mut analysis = json!({"threshold": p.threshold, "mirror": p.mirror,
            "metrics": [{"name": "request-success-rate"}]});
        if let Some(w) = p.step_weight {
            analysis["stepWeight"] = json!(w);
        }
        if !p.step_weights.is_empty() {
            analysis["stepWeights"] = json!(p.step_weights);
        }
        if let Some(w) = p.max_weight {
            analysis["maxWeight"] = json!(w);
        }
        if let Some(i) = p.iterations {
            analysis["iterations"] = json!(i);
        }
        if p.ab {
            analysis["match"] = json!([{"headers": {"x-canary": {"exact": "1"}}}]);
        }
        if let Some(s) = p.step_weight_promotion {
            analysis["stepWeightPromotion"] = json!(s);
        }
        analysis["webhooks"] = Value::Array(
            p.hooks
                .iter()
                .enumerate()
                .map(|(i, t)| hook(&format!("h{i}"), t))
                .collect(),
        );
        canary_with(analysis, |v| {
            v["spec"]["provider"] = json!(p.provider);
            v["spec"]["skipAnalysis"] = json!(p.skip);
        })
    }

    const HOOK_TYPES: [&str; 7] = [
        "confirm-rollout",
        "pre-rollout",
        "rollout",
        "confirm-traffic-increase",
        "confirm-promotion",
        "rollback",
        "post-rollout",
    ];

    /// Any spec, including ones Flagger would loop on forever.
    fn any_spec() -> impl Gen<Value = SpecParams> {
        (
            (
                proptest::option::of(-10i32..130),
                proptest::collection::vec(-10i32..220, 0..5),
                proptest::option::of(-10i32..160),
                proptest::option::of(-2i32..5),
                any::<bool>(),
                any::<bool>(),
            ),
            (
                proptest::option::of(-10i32..130),
                -1i32..4,
                prop_oneof![Just("istio"), Just("kubernetes"), Just("linkerd"), Just("")],
                proptest::collection::vec(proptest::sample::select(HOOK_TYPES.to_vec()), 0..4),
                proptest::bool::weighted(0.1),
            ),
        )
            .prop_map(|(a, b)| SpecParams {
                step_weight: a.0,
                step_weights: a.1,
                max_weight: a.2,
                iterations: a.3,
                ab: a.4,
                mirror: a.5,
                step_weight_promotion: b.0,
                threshold: b.1,
                provider: b.2,
                hooks: b.3,
                skip: b.4,
            })
    }

    /// Specs that can reach a promotion: some positive progress per passing tick, and a
    /// `maxWeight` the weight can reach.
    fn live_spec() -> impl Gen<Value = SpecParams> {
        any_spec().prop_map(|mut p| {
            p.step_weights.retain(|w| *w > 0);
            p.step_weights.sort_unstable();
            p.step_weights.dedup();
            if p.step_weight.is_some_and(|w| w <= 0) && p.step_weights.is_empty() {
                p.step_weight = Some(10);
            }
            if p.step_weight.is_none() && p.step_weights.is_empty() && p.iterations.unwrap_or(0) < 1
            {
                p.iterations = Some(2);
            }
            p.max_weight = p.max_weight.map(|w| w.clamp(1, 100));
            p
        })
    }

    /// Drives a run with random observations; returns every SetRoutes and the phases.
    fn drive(
        p: &SpecParams,
        seed: u64,
        ticks: usize,
        gates_open_after: usize,
        chaos: bool,
        json_round_trip: bool,
    ) -> (Vec<Routes>, Vec<Option<CanaryPhase>>) {
        let canary = build(p);
        let mut rng = Rng(seed | 1);
        let mut status = CanaryStatus::default();
        let mut router = Routes::PRIMARY;
        let mut now = T0;
        let mut hash = "v1".to_string();
        let mut routes_written = Vec::new();
        let mut phases = Vec::new();
        let configs = BTreeMap::new();
        for n in 0..ticks {
            if n == 2 {
                hash = "v2".into();
            }
            if chaos && rng.chance(3) {
                hash = format!("v{}", 3 + rng.below(3));
            }
            let ready = |rng: &mut Rng| {
                if chaos && rng.chance(10) {
                    if rng.chance(10) {
                        Readiness::Failed("deadline".into())
                    } else {
                        Readiness::Waiting("not yet".into())
                    }
                } else {
                    Readiness::Ready
                }
            };
            let primary = ready(&mut rng);
            let target = ready(&mut rng);
            let reported = if chaos && rng.chance(5) {
                Routes::new(
                    rng.below(200) as i32 - 50,
                    rng.below(200) as i32 - 50,
                    rng.chance(50),
                )
            } else {
                router
            };
            let mut hooks: Vec<WebhookResult> = Vec::new();
            let mut metrics: Option<Vec<MetricResult>> = None;
            let mut settled = false;
            for _ in 0..10 {
                let obs = Observed {
                    target_hash: &hash,
                    tracked_configs: &configs,
                    primary: primary.clone(),
                    canary: target.clone(),
                    routes: reported,
                    metrics: metrics.as_deref(),
                    webhooks: &hooks,
                };
                let d = tick(&canary, &status, &obs, now);
                if json_round_trip {
                    let text = serde_json::to_string(&status).unwrap();
                    let back: CanaryStatus = serde_json::from_str(&text).unwrap();
                    assert_eq!(back, status);
                    let d2 = tick(&canary, &back, &obs, now);
                    assert_eq!(d.actions, d2.actions);
                    assert_eq!(d.events, d2.events);
                    assert_eq!(d.requeue_at, d2.requeue_at);
                    assert_eq!(*d.status, *d2.status);
                    assert_eq!(d.status_changed(), d2.status_changed());
                }
                if d.awaits_results() {
                    for a in &d.actions {
                        match a {
                            Action::CallWebhook {
                                name, hook_type, ..
                            } => {
                                let open = n >= gates_open_after || rng.chance(60);
                                let ok = match hook_type {
                                    HookType::Rollback => !open && rng.chance(5),
                                    _ => open || rng.chance(30),
                                };
                                hooks.push(WebhookResult {
                                    name: name.clone(),
                                    hook_type: *hook_type,
                                    ok,
                                    message: String::new(),
                                });
                            }
                            Action::RunMetricChecks { metrics: names } => {
                                let fail = n < gates_open_after && rng.chance(15);
                                metrics = Some(
                                    names
                                        .iter()
                                        .map(|m| {
                                            if fail {
                                                MetricResult::fail(m, "bad")
                                            } else {
                                                MetricResult::pass(m)
                                            }
                                        })
                                        .collect(),
                                );
                            }
                            other => panic!("pending decision with {other:?}"),
                        }
                    }
                    continue;
                }
                for a in &d.actions {
                    if let Action::SetRoutes {
                        primary,
                        canary,
                        mirrored,
                    } = a
                    {
                        let r = Routes::new(*primary, *canary, *mirrored);
                        routes_written.push(r);
                        if p.provider != "kubernetes" {
                            router = r;
                        }
                    }
                }
                if p.provider == "kubernetes" {
                    router = if d.status.iterations > 0 {
                        Routes::new(0, 100, false)
                    } else {
                        Routes::PRIMARY
                    };
                }
                now = d.requeue_at.expect("a final decision requeues");
                status = d.into_status();
                settled = true;
                break;
            }
            assert!(settled, "tick {n} did not settle");
            phases.push(status.phase);
        }
        (routes_written, phases)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        #[test]
        fn set_routes_always_sum_to_100(p in any_spec(), seed in any::<u64>()) {
            let (routes, _) = drive(&p, seed, 60, 30, true, false);
            for r in routes {
                prop_assert_eq!(r.primary + r.canary, 100, "{:?}", r);
                prop_assert!((0..=100).contains(&r.primary) && (0..=100).contains(&r.canary));
            }
        }

        #[test]
        fn a_run_always_ends_when_gates_open(p in live_spec(), seed in any::<u64>(),
                                             open_after in 0usize..20) {
            let (_, phases) = drive(&p, seed, 200, open_after, false, false);
            let ended = phases.iter().skip(3).any(|ph| {
                matches!(ph, Some(CanaryPhase::Succeeded | CanaryPhase::Failed))
            });
            prop_assert!(ended, "{:?} never ended: {:?}", p, &phases[phases.len().saturating_sub(5)..]);
        }

        #[test]
        fn status_through_json_gives_identical_decisions(p in any_spec(), seed in any::<u64>()) {
            drive(&p, seed, 40, 15, true, true);
        }
    }
}

// ---- deletion with revertOnDeletion -------------------------------------------------------

fn deleting(sim: &mut Sim) {
    sim.canary.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            serde_json::from_value(json!("2027-01-15T08:00:00Z")).expect("time"),
        ));
}

#[test]
fn revert_on_deletion_adds_a_finalizer_and_restores_the_target() {
    let c = canary_with(json!({"stepWeight": 10, "maxWeight": 50}), |v| {
        v["spec"]["revertOnDeletion"] = json!(true);
    });
    let mut sim = Sim::new(c);
    let out = sim.tick();
    assert!(out.has(|a| *a == Action::AddFinalizer), "{:?}", out.actions);

    // Deleted: Terminating, the target scaled back up while it is not ready.
    deleting(&mut sim);
    sim.target = Readiness::Waiting("podinfo is scaled to 0".into());
    let out = sim.tick();
    assert_eq!(sim.phase(), Some(CanaryPhase::Terminating));
    assert!(out.has(|a| *a == Action::ResumeTargetScaler));
    assert!(scaled(&out, ScaleTo::Up));
    assert!(!out.has(|a| *a == Action::RevertOnDeletion));
    // Once the target serves, routing is reverted and the finalizer removed.
    sim.target = Readiness::Ready;
    let out = sim.tick();
    assert!(out.has(|a| *a == Action::RevertOnDeletion));
    assert!(out.event_with("traffic restored to podinfo"));
}

#[test]
fn deletion_without_revert_on_deletion_changes_nothing() {
    let mut sim = Sim::new(canary(json!({"stepWeight": 10, "maxWeight": 50})));
    let out = sim.tick();
    assert!(!out.has(|a| *a == Action::AddFinalizer));
    sim.tick();
    deleting(&mut sim);
    let out = sim.tick();
    assert_ne!(sim.phase(), Some(CanaryPhase::Terminating));
    assert!(!out.has(|a| *a == Action::RevertOnDeletion));
}
