//! Adapter for `flagger/router_smi.json`: Flagger's TrafficSplit through
//! `rollout_traffic::flagger::smi` (the SMI planner with `[canary, primary]` backends).

use rollout_traffic::flagger::FlaggerRouting;
use rollout_traffic::flagger::smi::{get_routes, reconcile, set_routes};
use rollout_traffic::smi::SmiVersion;
use serde_json::{Map, Value, json};

use super::{applied, call_routes, routes_json, routing, subset};
use crate::json::{Res, compare, opt_str};
use crate::{Case, CaseResult};

/// Runs one case of `flagger/router_smi.json`, dispatching on its `op`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    match run(case) {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

fn fixture() -> Value {
    json!({"targetRef": "podinfo", "service": {"name": "podinfo", "port": 80,
           "portName": "http", "targetPort": 9898}})
}

fn backends(after: &Value) -> Value {
    let map: Map<String, Value> = after["spec"]["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b["service"].as_str().unwrap_or_default().to_string(),
                b["weight"].clone(),
            )
        })
        .collect();
    Value::Object(map)
}

fn created(r: &FlaggerRouting, version: SmiVersion) -> Res<Value> {
    let plan = reconcile(None, r, version).map_err(|e| e.to_string())?;
    let after = applied(None, &plan)?;
    let again = reconcile(Some(&after), r, version).map_err(|e| e.to_string())?;
    if !again.is_noop() {
        return Err(format!("reconcile is not idempotent: {:?}", again.patch));
    }
    Ok(after)
}

fn run(case: &Case<'_>) -> Res<Map<String, Value>> {
    let input = case.input;
    let api = opt_str(input, &["api"])?.ok_or("cannot express case: no api")?;
    let version =
        SmiVersion::from_api_version(api).ok_or_else(|| format!("unknown SMI api {api}"))?;
    let canary = input
        .get("canary")
        .filter(|c| c.is_object())
        .cloned()
        .unwrap_or_else(fixture);
    let r = routing(&canary)?;
    let live = created(&r, version)?;
    let mut got = Map::new();
    match case.kind {
        "reconcile" => {
            for (key, want) in case.expected.as_object().into_iter().flatten() {
                let v = match key.as_str() {
                    "trafficsplit_name" => live["metadata"]["name"].clone(),
                    "spec.service" => live["spec"]["service"].clone(),
                    "backends" => backends(&live),
                    "after service.name=test" => {
                        let mut r2 = r.clone();
                        r2.service.name = Some("test".into());
                        let t = created(&r2, version)?;
                        subset(
                            &json!({"trafficsplit_name": t["metadata"]["name"],
                                    "spec.service": t["spec"]["service"]}),
                            want,
                        )
                    }
                    other => return Err(format!("cannot express expected key {other:?}")),
                };
                got.insert(key.clone(), v);
            }
        }
        "set_routes" => {
            let plan = set_routes(Some(&live), &r, version, call_routes(input)?)
                .map_err(|e| e.to_string())?;
            got.insert("backends".into(), backends(&applied(Some(&live), &plan)?));
        }
        "get_routes" => {
            let routes = get_routes(&live, &r).ok_or("no routes in the TrafficSplit")?;
            if let Value::Object(m) = routes_json(routes) {
                got.extend(m);
            }
        }
        other => return Err(format!("unknown op {other:?}")),
    }
    Ok(got)
}
