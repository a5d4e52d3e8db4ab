//! Adapter for `flagger/router_gatewayapi.json`: Flagger's HTTPRoute through
//! `rollout_traffic::flagger::gateway`.

use rollout_core::flagger::spec::Headers;
use rollout_traffic::flagger::FlaggerRouting;
use rollout_traffic::flagger::gateway::{get_routes, make_filters, reconcile, set_routes};
use serde_json::{Map, Value, json};

use super::{applied, call_routes, holds, routes_json, routing};
use crate::json::{Res, compare, parse};
use crate::{Case, CaseResult};

/// Runs one case of `flagger/router_gatewayapi.json`, dispatching on its `op`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    match run(case) {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

fn created(r: &FlaggerRouting) -> Res<Value> {
    let plan = reconcile(None, r, false).map_err(|e| e.to_string())?;
    let live = applied(None, &plan)?;
    let again = reconcile(Some(&live), r, false).map_err(|e| e.to_string())?;
    if !again.is_noop() {
        return Err(format!("reconcile is not idempotent: {:?}", again.patch));
    }
    Ok(live)
}

fn rules(v: &Value) -> Vec<Value> {
    v.pointer("/spec/rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn run(case: &Case<'_>) -> Res<Map<String, Value>> {
    let input = case.input;
    let expected = case.expected;
    let mut got = Map::new();
    match case.kind {
        "reconcile" => {
            let r = routing(&input["canary"])?;
            let live = created(&r)?;
            let rs = rules(&live);
            let refs: Vec<Value> = rs[0]["backendRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| json!({"name": b["name"], "weight": b["weight"]}))
                .collect();
            // A foreign annotation survives a reconcile.
            let mut foreign = live.clone();
            foreign["metadata"]["annotations"] = json!({"foo": "bar"});
            let plan = reconcile(Some(&foreign), &r, false).map_err(|e| e.to_string())?;
            let after = applied(Some(&foreign), &plan)?;
            got.insert("rules".into(), json!(rs.len()));
            got.insert("backendRefs".into(), Value::Array(refs));
            got.insert("rules[0].timeouts".into(), rs[0]["timeouts"].clone());
            got.insert(
                "foreign_annotation_preserved".into(),
                after["metadata"]["annotations"].clone(),
            );
        }
        "set_routes" => {
            let r = routing(&input["canary"])?;
            let live = created(&r)?;
            let plan = set_routes(&live, &r, call_routes(input)?).map_err(|e| e.to_string())?;
            let after = applied(Some(&live), &plan)?;
            got.insert(
                "rules[0].backendRefs[0].weight".into(),
                after
                    .pointer("/spec/rules/0/backendRefs/0/weight")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
        }
        "set_routes_sequence" => {
            let r = routing(&input["canary"])?;
            let mut cur = created(&r)?;
            for (i, call) in input["calls"].as_array().into_iter().flatten().enumerate() {
                let before = cur.clone();
                let plan =
                    if let Some(phase) = call.get("reconcile_with_phase").and_then(Value::as_str) {
                        let keep = matches!(phase, "Waiting" | "Progressing" | "WaitingPromotion");
                        reconcile(Some(&cur), &r, keep)
                    } else {
                        set_routes(&cur, &r, call_routes(call)?)
                    }
                    .map_err(|e| e.to_string())?;
                cur = applied(Some(&cur), &plan)?;
                let rs = rules(&cur);
                let filters = rs
                    .first()
                    .and_then(|x| x["filters"].as_array().cloned())
                    .unwrap_or_default();
                match i {
                    0 => {
                        let found = filters.iter().find(|f| f["type"] == "RequestMirror").map(|f| {
                            json!({"type": f["type"], "backendRef.name": f["requestMirror"]["backendRef"]["name"]})
                        });
                        got.insert(
                            "after_call_1".into(),
                            json!({
                                "rules": rs.len(),
                                "rules[0].filters_contains": found.unwrap_or(Value::Null),
                            }),
                        );
                    }
                    1 => {
                        got.insert(
                            "after_reconcile".into(),
                            holds(&expected["after_reconcile"], cur == before, || {
                                cur.to_string()
                            }),
                        );
                    }
                    2 => {
                        got.insert(
                            "after_call_3".into(),
                            json!({"rules": rs.len(), "rules[0].filters_len": filters.len()}),
                        );
                    }
                    _ => return Err("cannot express a fourth call".into()),
                }
            }
        }
        "make_filters" => {
            let headers: Headers = parse(&input["headers"], "headers")?;
            let first = make_filters(Some(&headers));
            let same = (0..10).all(|_| make_filters(Some(&headers)) == first);
            let sorted = first.iter().all(|f| {
                f.as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(_, v)| v.as_object())
                    .all(|body| {
                        body.values().filter_map(Value::as_array).all(|list| {
                            let keys: Vec<(String, String)> = list
                                .iter()
                                .map(|e| {
                                    (
                                        e["name"].as_str().unwrap_or_default().into(),
                                        e["value"].as_str().unwrap_or_default().into(),
                                    )
                                })
                                .collect();
                            keys.windows(2).all(|w| w[0] <= w[1])
                        })
                    })
            });
            got.insert(
                "deterministic".into(),
                holds(
                    &expected["deterministic"],
                    same && sorted && first.len() == 2,
                    || format!("{first:?}"),
                ),
            );
        }
        "get_routes" => {
            let r = routing(
                &json!({"targetRef": "podinfo", "service": {"name": "podinfo", "port": 9898,
                "gatewayRefs": input["route"]["parentRefs"]}}),
            )?;
            let mut live = created(&r)?;
            live["metadata"]["generation"] = input["route"]["generation"].clone();
            let refs: Vec<Value> = input["route"]["backendRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| json!({"group": "", "kind": "Service", "name": b["name"], "port": 9898, "weight": b["weight"]}))
                .collect();
            live["spec"]["rules"][0]["backendRefs"] = Value::Array(refs);
            let mut results = Vec::new();
            for statuses in input["parent_status_sequence"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let parents: Vec<Value> = statuses
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        json!({"parentRef": s["parentRef"], "controllerName": "example.com/gateway",
                        "conditions": [{"type": "Accepted", "status": s["Accepted"],
                                        "observedGeneration": s["observedGeneration"]}]})
                    })
                    .collect();
                live["status"] = json!({"parents": parents});
                results.push(match get_routes(&live, &r) {
                    Ok(routes) => routes_json(routes),
                    Err(_) => json!("error"),
                });
            }
            got.insert("results".into(), Value::Array(results));
        }
        other => return Err(format!("unknown op {other:?}")),
    }
    Ok(got)
}
