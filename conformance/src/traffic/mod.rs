//! Adapters for the traffic router vectors (`argo/traffic_routers.json`,
//! `flagger/router_*.json`), run against `rollout-traffic`'s planners.
//!
//! Every plan is also checked end to end: its patch, applied to the live object the way
//! the API server applies it, must give the object the planner says it gives, and
//! planning that object again must give no patch.

pub mod argo_routers;
pub mod flagger_gateway;
pub mod flagger_istio;
pub mod flagger_nginx;
pub mod flagger_smi;

use rollout_core::flagger::machine::Routes;
use rollout_core::flagger::spec::{CanaryAnalysis, CanaryService};
use rollout_traffic::Plan;
use rollout_traffic::flagger::FlaggerRouting;
use serde_json::{Map, Value, json};

use crate::json::{Res, parse};

/// Applies the plan's patch to `live` and checks the result is the planned object.
pub(crate) fn applied(live: Option<&Value>, plan: &Plan) -> Res<Value> {
    let got = rollout_traffic::patch::apply(live, &plan.patch)
        .map_err(|e| format!("the patch of {} does not apply: {e}", plan.object))?;
    if got != plan.after {
        return Err(format!(
            "the patch of {} gives {got}, the plan says {}",
            plan.object, plan.after
        ));
    }
    Ok(got)
}

/// A list of strings (absent: empty).
pub(crate) fn str_list(v: Option<&Value>) -> Res<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => parse(v, "a list of strings"),
    }
}

/// The entries of `actual` under the keys of `expected` (missing ones as `null`), so
/// that comparing with `expected` checks inclusion.
pub(crate) fn subset(actual: &Value, expected: &Value) -> Value {
    let map: Map<String, Value> = expected
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| (k.clone(), actual.get(k).cloned().unwrap_or(Value::Null)))
        .collect();
    Value::Object(map)
}

/// A Flagger case's canary, as the routers read it.
pub(crate) fn routing(canary: &Value) -> Res<FlaggerRouting> {
    let service: CanaryService = parse(
        canary.get("service").unwrap_or(&json!({})),
        "canary service",
    )?;
    let analysis: CanaryAnalysis = match canary.get("analysis") {
        None | Some(Value::Null) => CanaryAnalysis::default(),
        Some(a) => parse(a, "canary analysis")?,
    };
    Ok(FlaggerRouting {
        namespace: canary
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .into(),
        target: canary
            .get("targetRef")
            .and_then(Value::as_str)
            .unwrap_or("podinfo")
            .into(),
        service,
        analysis,
        owner_reference: Some(
            json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "name": canary.get("name").and_then(Value::as_str).unwrap_or("podinfo"),
            "uid": "00000000-0000-0000-0000-000000000001", "controller": true}),
        ),
    })
}

/// `{primary, canary, mirrored}` of routes.
pub(crate) fn routes_json(r: Routes) -> Value {
    json!({"primary": r.primary, "canary": r.canary, "mirrored": r.mirrored})
}

/// Routes from a call `{primary, canary | canary_weight, mirrored}`.
pub(crate) fn call_routes(v: &Value) -> Res<Routes> {
    let int = |keys: &[&str]| crate::json::req_i32(v, keys);
    Ok(Routes::new(
        int(&["primary"])?,
        int(&["canary_weight", "canary"])?,
        crate::json::opt_bool(v, &["mirrored"])?.unwrap_or(false),
    ))
}

/// A property the case states in words: the expected text when it holds, else what
/// was found instead.
pub(crate) fn holds(expected: &Value, ok: bool, found: impl FnOnce() -> String) -> Value {
    if ok {
        expected.clone()
    } else {
        json!(format!("violated: {}", found()))
    }
}
