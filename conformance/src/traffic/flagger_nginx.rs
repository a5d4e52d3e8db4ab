//! Adapter for `flagger/router_nginx.json`: Flagger's canary Ingress through
//! `rollout_traffic::flagger::nginx`.
//!
//! The vectors give the referenced Ingress in a short form (`rules[].paths[].backend`
//! with `service` and `port`); the adapter writes it as a `networking.k8s.io/v1`
//! Ingress.

use rollout_traffic::flagger::FlaggerRouting;
use rollout_traffic::flagger::nginx::{get_routes, reconcile, set_routes};
use serde_json::{Map, Value, json};

use super::{applied, call_routes, routing, subset};
use crate::json::{Res, compare, opt_str};
use crate::{Case, CaseResult};

/// Runs one case of `flagger/router_nginx.json`, dispatching on its `op`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    match run(case) {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

fn ingress(short: &Value) -> Value {
    let rules: Vec<Value> = short["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let paths: Vec<Value> = r["paths"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    json!({"path": p["path"], "pathType": "Prefix", "backend": {"service": {
                        "name": p["backend"]["service"],
                        "port": {"number": p["backend"]["port"]}}}})
                })
                .collect();
            json!({"host": r["host"], "http": {"paths": paths}})
        })
        .collect();
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": short["name"], "namespace": "default",
                     "annotations": short["annotations"]},
        "spec": {"rules": rules},
    })
}

fn step(live: &Value, r: &FlaggerRouting, call: &Value, prefix: &str) -> Res<Value> {
    let routes = call_routes(call)?;
    let plan = set_routes(live, r, routes, prefix).map_err(|e| e.to_string())?;
    let after = applied(Some(live), &plan)?;
    let back = get_routes(&after, r, prefix);
    if back.canary != routes.canary && !(r.is_ab() && routes.canary > 0) {
        return Err(format!(
            "get_routes reads {back:?} after writing {routes:?}"
        ));
    }
    Ok(after)
}

fn run(case: &Case<'_>) -> Res<Map<String, Value>> {
    let input = case.input;
    let prefix = opt_str(input, &["annotations_prefix"])?.unwrap_or("nginx.ingress.kubernetes.io");
    let r = routing(
        input
            .get("canary")
            .ok_or("cannot express case: no canary")?,
    )?;
    let stable = ingress(
        input
            .get("ingress")
            .ok_or("cannot express case: no ingress")?,
    );
    let plan = reconcile(&stable, None, &r, prefix).map_err(|e| e.to_string())?;
    let live = applied(None, &plan)?;
    let again = reconcile(&stable, Some(&live), &r, prefix).map_err(|e| e.to_string())?;
    if !again.is_noop() {
        return Err(format!("reconcile is not idempotent: {:?}", again.patch));
    }
    let anns = |v: &Value| v["metadata"]["annotations"].clone();
    let mut got = Map::new();
    match case.kind {
        "reconcile" => {
            got.insert(
                "canary_ingress_name".into(),
                live["metadata"]["name"].clone(),
            );
            got.insert(
                "annotations_include".into(),
                subset(&anns(&live), &case.expected["annotations_include"]),
            );
        }
        "set_routes_sequence" => {
            let mut cur = live;
            let mut each = Vec::new();
            let wants = case.expected["after_each_call"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for (i, call) in input["calls"].as_array().into_iter().flatten().enumerate() {
                cur = step(&cur, &r, call, prefix)?;
                each.push(subset(&anns(&cur), wants.get(i).unwrap_or(&Value::Null)));
            }
            got.insert("after_each_call".into(), Value::Array(each));
        }
        "reconcile_then_set_routes" => {
            let after = step(&live, &r, &input["set_routes"], prefix)?;
            got.insert(
                "annotations_include".into(),
                subset(&anns(&after), &case.expected["annotations_include"]),
            );
        }
        other => return Err(format!("unknown op {other:?}")),
    }
    Ok(got)
}
