//! Adapter for `flagger/weight_progression.json`: a `Canary` built from the case's
//! `analysis` (and `target_kind`, `provider`), driven tick by tick through
//! [`rollout_core::flagger::machine::tick`].
//!
//! The simulated cluster follows the README's recipe for Flagger's scheduler tests: the
//! primary and the canary are ready before every tick, every check passes (every webhook
//! the machine asks for answers success, every metric passes — the test fixture's
//! metrics server answers 100 to every query), and a simulated router holds the routes:
//! each [`Action::SetRoutes`] is written to it and its state is what the next tick
//! observes. The `kubernetes` provider gets Flagger's no-op router (writes nothing,
//! reports 0/100 once iterations started).
//!
//! A case starts from a new `Canary` (initialised at revision `v1`), then the target
//! changes to `v2`. The expectation keys say what is recorded:
//!
//! * `ticks_after_revision_change`: the routes after each tick, the first tick being the
//!   one that detects the change;
//! * `ticks_after_canary_ready`: the same, from the tick after the detection;
//! * `after_first_step`: the routes after the first tick after the detection;
//! * `next_tick_phase`: the phase after one more tick; `then`: the phase and routes
//!   after each further tick;
//! * `after_second_revision_detected`: the target changes again (`v3`), one tick, routes
//!   and status;
//! * `canary_weights` (documented sequences): the canary weight after each tick after
//!   the detection until the phase leaves Progressing, and `then` names what came next
//!   (`"promotion"` for Promoting).
//!
//! Only the asserted fields are compared; an unknown input or expectation key, or a
//! check the vectors say fails (`all_checks_pass: false`), cannot be expressed and fails.

use rollout_core::flagger::machine::{
    Action, MetricResult, Observed, Readiness, Routes, WebhookResult, tick,
};
use rollout_core::flagger::spec::Canary;
use rollout_core::flagger::status::{CanaryPhase, CanaryStatus};
use rollout_core::time::Timestamp;
use serde_json::{Map, Value, json};

use crate::json::{Res, compare, opt_bool, opt_str};
use crate::{Case, CaseResult};

/// The time of the first tick: 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp::from_secs(1_767_225_600);

/// Ticks a documented sequence may take before it must have left Progressing.
const MAX_TICKS: usize = 200;

/// Runs one case of `flagger/weight_progression.json`, dispatching on its `kind`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let result = match case.kind {
        "tick_sequence" => tick_sequence(case.input, case.expected),
        "documented_sequence" => documented_sequence(case.input, case.expected),
        other => Err(format!("unknown kind {other:?}")),
    };
    match result {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

/// The `Canary` a case describes.
fn canary_of(input: &Value) -> Res<Canary> {
    let Some(fields) = input.as_object() else {
        return Err(format!("cannot express input {input}"));
    };
    for key in fields.keys() {
        if !matches!(
            key.as_str(),
            "analysis" | "target_kind" | "provider" | "all_checks_pass"
        ) {
            return Err(format!("cannot express input key {key:?}"));
        }
    }
    if opt_bool(input, &["all_checks_pass"])? == Some(false) {
        return Err("cannot express case: the adapter runs with every check passing".into());
    }
    let analysis = match input.get("analysis") {
        Some(a @ Value::Object(_)) => a.clone(),
        Some(other) => return Err(format!("cannot express analysis {other}")),
        None => return Err("cannot express case: no analysis".into()),
    };
    let target_ref = match opt_str(input, &["target_kind"])?.unwrap_or("Deployment") {
        "Deployment" => json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"}),
        "DaemonSet" => json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "podinfo"}),
        "Service" => json!({"apiVersion": "v1", "kind": "Service", "name": "podinfo"}),
        other => return Err(format!("cannot express target_kind {other:?}")),
    };
    let mut spec = json!({
        "targetRef": target_ref,
        "service": {"port": 9898},
        "analysis": analysis,
    });
    if let Some(provider) = opt_str(input, &["provider"])? {
        spec["provider"] = json!(provider);
    }
    let doc = json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "default"},
        "spec": spec,
    });
    serde_json::from_value(doc).map_err(|e| format!("cannot express canary: {e}"))
}

/// A canary in a simulated cluster where everything is ready and every check passes.
struct Run {
    canary: Canary,
    status: CanaryStatus,
    now: Timestamp,
    hash: String,
    router: Routes,
    nop_router: bool,
}

impl Run {
    fn new(canary: Canary) -> Run {
        let nop_router = canary.spec.provider.as_deref() == Some("kubernetes");
        Run {
            canary,
            status: CanaryStatus::default(),
            now: T0,
            hash: "v1".into(),
            router: Routes::PRIMARY,
            nop_router,
        }
    }

    /// A new canary, initialised at `v1`, whose target then changes to `v2`.
    fn deployed(canary: Canary) -> Res<Run> {
        let mut run = Run::new(canary);
        for _ in 0..3 {
            run.tick()?;
            if run.status.phase == Some(CanaryPhase::Initialized) {
                run.hash = "v2".into();
                return Ok(run);
            }
        }
        Err(format!(
            "the canary did not initialise: phase {:?}",
            run.status.phase
        ))
    }

    fn reported_routes(&self) -> Routes {
        match (self.nop_router, self.status.iterations > 0) {
            (false, _) => self.router,
            (true, true) => Routes::new(0, 100, false),
            (true, false) => Routes::PRIMARY,
        }
    }

    /// One tick: answers every check the machine asks for with success, then applies
    /// the final decision.
    fn tick(&mut self) -> Res<()> {
        let mut webhooks: Vec<WebhookResult> = Vec::new();
        let mut metrics: Option<Vec<MetricResult>> = None;
        for _ in 0..16 {
            let observed = Observed {
                target_hash: &self.hash,
                primary: Readiness::Ready,
                canary: Readiness::Ready,
                routes: self.reported_routes(),
                metrics: metrics.as_deref(),
                webhooks: &webhooks,
                ..Observed::default()
            };
            let decision = tick(&self.canary, &self.status, &observed, self.now);
            if decision.awaits_results() {
                for action in &decision.actions {
                    match action {
                        Action::CallWebhook {
                            name, hook_type, ..
                        } => webhooks.push(WebhookResult::ok(name.clone(), *hook_type)),
                        Action::RunMetricChecks { metrics: names } => {
                            metrics = Some(names.iter().map(MetricResult::pass).collect());
                        }
                        other => return Err(format!("a pending tick asked for {other:?}")),
                    }
                }
                continue;
            }
            if let Some(routes) = decision.routes().filter(|_| !self.nop_router) {
                self.router = routes;
            }
            if let Some(next) = decision.requeue_at {
                self.now = next;
            }
            self.status = decision.into_status();
            return Ok(());
        }
        Err("a tick kept asking for checks".into())
    }

    fn phase(&self) -> Value {
        self.status
            .phase
            .map_or(Value::Null, |p| Value::String(p.as_str().to_string()))
    }

    /// Everything a case may assert after a tick.
    fn snapshot(&self) -> Res<Value> {
        let routes = self.reported_routes();
        let status =
            serde_json::to_value(&self.status).map_err(|e| format!("status to JSON: {e}"))?;
        Ok(json!({
            "primary": routes.primary,
            "canary": routes.canary,
            "mirrored": routes.mirrored,
            "phase": self.phase(),
            "status": status,
        }))
    }

    fn tick_snapshot(&mut self) -> Res<Value> {
        self.tick()?;
        self.snapshot()
    }
}

/// `actual` reduced to the shape of `expected`: the keys `expected` has (each of which
/// `actual` must have), element by element for lists.
fn project(expected: &Value, actual: &Value) -> Res<Value> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            let mut out = Map::new();
            for (key, sub) in want {
                let Some(value) = got.get(key) else {
                    return Err(format!("cannot express expected key {key:?}"));
                };
                out.insert(key.clone(), project(sub, value)?);
            }
            Ok(Value::Object(out))
        }
        (Value::Array(want), Value::Array(got)) => got
            .iter()
            .enumerate()
            .map(|(i, value)| want.get(i).map_or(Ok(value.clone()), |w| project(w, value)))
            .collect::<Res<Vec<_>>>()
            .map(Value::Array),
        (Value::Object(_), other) => Err(format!("cannot express expected object, got {other}")),
        _ => Ok(actual.clone()),
    }
}

fn expected_len(expected: &Value, key: &str) -> Res<usize> {
    expected
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::len)
        .ok_or_else(|| format!("cannot express {key}: not a list"))
}

/// Keys of a `tick_sequence` expectation, in the order they happen.
const TICK_KEYS: [&str; 6] = [
    "ticks_after_revision_change",
    "ticks_after_canary_ready",
    "after_first_step",
    "next_tick_phase",
    "then",
    "after_second_revision_detected",
];

fn tick_sequence(input: &Value, expected: &Value) -> Res<Map<String, Value>> {
    let Some(want) = expected.as_object() else {
        return Err(format!("cannot express expected value {expected}"));
    };
    if let Some(key) = want.keys().find(|k| !TICK_KEYS.contains(&k.as_str())) {
        return Err(format!("cannot express expected key {key:?}"));
    }
    let mut run = Run::deployed(canary_of(input)?)?;
    let mut detected = false;
    let mut got = Map::new();
    for key in TICK_KEYS {
        let Some(shape) = want.get(key) else { continue };
        if key != "ticks_after_revision_change" && !detected {
            run.tick()?;
            detected = true;
        }
        let value = match key {
            "ticks_after_revision_change" | "ticks_after_canary_ready" | "then" => {
                let mut ticks = Vec::new();
                for _ in 0..expected_len(expected, key)? {
                    ticks.push(run.tick_snapshot()?);
                }
                detected = true;
                Value::Array(ticks)
            }
            "after_first_step" => run.tick_snapshot()?,
            "next_tick_phase" => {
                run.tick()?;
                run.phase()
            }
            "after_second_revision_detected" => {
                run.hash = "v3".into();
                run.tick_snapshot()?
            }
            other => return Err(format!("cannot express expected key {other:?}")),
        };
        got.insert(key.to_string(), project(shape, &value)?);
    }
    Ok(got)
}

fn documented_sequence(input: &Value, expected: &Value) -> Res<Map<String, Value>> {
    let Some(want) = expected.as_object() else {
        return Err(format!("cannot express expected value {expected}"));
    };
    if let Some(key) = want
        .keys()
        .find(|k| !matches!(k.as_str(), "canary_weights" | "then"))
    {
        return Err(format!("cannot express expected key {key:?}"));
    }
    let mut run = Run::deployed(canary_of(input)?)?;
    run.tick()?;
    if run.status.phase != Some(CanaryPhase::Progressing) {
        return Err(format!(
            "the revision change was not detected: phase {:?}",
            run.status.phase
        ));
    }
    let mut weights = Vec::new();
    for _ in 0..MAX_TICKS {
        run.tick()?;
        if run.status.phase != Some(CanaryPhase::Progressing) {
            break;
        }
        weights.push(run.reported_routes().canary);
    }
    let then = match run.status.phase {
        Some(CanaryPhase::Promoting) => "promotion".to_string(),
        Some(other) => other.as_str().to_lowercase(),
        None => "none".to_string(),
    };
    let mut got = Map::new();
    got.insert("canary_weights".into(), json!(weights));
    got.insert("then".into(), json!(then));
    Ok(got)
}
