//! Adapter for `flagger/router_istio.json`: Flagger's VirtualService and
//! DestinationRules through `rollout_traffic::flagger::istio`.
//!
//! Some expectations are stated in words ("routes unchanged", "sticky 0/100"); the
//! adapter checks each such property on the planned objects and reports the expected
//! text only when it holds. Flagger draws the session cookie at random; the adapter
//! passes a fixed value and compares cookie strings with it written as `<cookie>`.

use rollout_core::flagger::machine::Routes;
use rollout_core::flagger::spec::SessionAffinity;
use rollout_traffic::ObjectRef;
use rollout_traffic::flagger::FlaggerRouting;
use rollout_traffic::flagger::istio::{
    LAST_APPLIED, ORIGINAL_CONFIGURATION, SessionCookies, destination_rules, finalize, get_routes,
    reconcile, set_routes,
};
use serde_json::{Map, Value, json};

use super::{applied, call_routes, holds, routes_json, routing};
use crate::json::{Res, compare, parse};
use crate::{Case, CaseResult};

const COOKIE_VALUE: &str = "xYzAbCdEfG";

/// Runs one case of `flagger/router_istio.json`, dispatching on its `op`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    match run(case) {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

fn created(r: &FlaggerRouting, cookies: &SessionCookies) -> Res<Value> {
    let plan = reconcile(None, r, cookies).map_err(|e| e.to_string())?;
    let live = applied(None, &plan)?;
    let again = reconcile(Some(&live), r, cookies).map_err(|e| e.to_string())?;
    if !again.is_noop() {
        return Err(format!("reconcile is not idempotent: {:?}", again.patch));
    }
    Ok(live)
}

fn set(live: &Value, r: &FlaggerRouting, routes: Routes, cookies: &SessionCookies) -> Res<Value> {
    let plan = set_routes(live, r, routes, cookies).map_err(|e| e.to_string())?;
    let after = applied(Some(live), &plan)?;
    let again = set_routes(&after, r, routes, cookies).map_err(|e| e.to_string())?;
    if !again.is_noop() {
        return Err(format!("set_routes is not idempotent: {:?}", again.patch));
    }
    Ok(after)
}

fn http(v: &Value) -> Vec<Value> {
    v.pointer("/spec/http")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `{host: weight}` of a route.
fn weights_of(route: &Value) -> Value {
    let map: Map<String, Value> = route["route"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["destination"]["host"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                d["weight"].clone(),
            )
        })
        .collect();
    Value::Object(map)
}

fn split_is(route: &Value, r: &FlaggerRouting, primary: i64, canary: i64) -> bool {
    let w = weights_of(route);
    w[r.primary()] == json!(primary) && w[r.canary()] == json!(canary)
}

fn canary_set_cookie(route: &Value, r: &FlaggerRouting) -> Option<String> {
    route["route"]
        .as_array()?
        .iter()
        .find(|d| d["destination"]["host"] == json!(r.canary()))?
        .pointer("/headers/response/add/Set-Cookie")?
        .as_str()
        .map(String::from)
}

fn cookie_regex(route: &Value) -> String {
    route
        .pointer("/match/0/headers/Cookie/regex")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn route_set_cookie(route: &Value) -> String {
    route
        .pointer("/headers/response/add/Set-Cookie")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn uri_and_headers(matches: &Value) -> Value {
    let list: Vec<Value> = matches
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let mut o = Map::new();
            for k in ["uri", "headers"] {
                if let Some(v) = m.get(k) {
                    o.insert(k.into(), v.clone());
                }
            }
            Value::Object(o)
        })
        .collect();
    Value::Array(list)
}

fn run(case: &Case<'_>) -> Res<Map<String, Value>> {
    let input = case.input;
    let expected = case.expected;
    let canary = input.get("canary").cloned().unwrap_or_else(
        || json!({"name": "podinfo", "namespace": "default", "targetRef": "podinfo", "service": {"port": 9898}}),
    );
    let r = routing(&canary)?;
    let none = SessionCookies::default();
    let mut got = Map::new();
    match case.kind {
        "reconcile" => {
            let live = match created(&r, &none) {
                Ok(v) => v,
                Err(e) if expected.get("error").is_some() => {
                    got.insert("error".into(), json!(e));
                    return Ok(got);
                }
                Err(e) => return Err(e),
            };
            let hs = http(&live);
            for (key, want) in expected.as_object().into_iter().flatten() {
                let v = match key.as_str() {
                    "error" => Value::Null,
                    "notes" | "rule" => want.clone(),
                    "destination_rules" => Value::Array(
                        destination_rules(&r)
                            .iter()
                            .map(|d| d["metadata"]["name"].clone())
                            .collect(),
                    ),
                    "virtual_service" => live["metadata"]["name"].clone(),
                    "http_routes" => json!(hs.len()),
                    "destinations_in_route" => json!(hs[0]["route"].as_array().map_or(0, Vec::len)),
                    "after_adding_host test.example.com" => {
                        let mut r2 = r.clone();
                        r2.service.hosts.push("test.example.com".into());
                        let plan = reconcile(Some(&live), &r2, &none).map_err(|e| e.to_string())?;
                        let after = applied(Some(&live), &plan)?;
                        json!({"hosts_count": after["spec"]["hosts"].as_array().map_or(0, Vec::len)})
                    }
                    "drift" => {
                        let mut drifted = live.clone();
                        drifted["spec"]["gateways"]
                            .as_array_mut()
                            .ok_or("no gateways")?
                            .push(json!("istio/drift-gateway"));
                        let plan =
                            reconcile(Some(&drifted), &r, &none).map_err(|e| e.to_string())?;
                        let after = applied(Some(&drifted), &plan)?;
                        holds(want, after["spec"] == live["spec"], || after.to_string())
                    }
                    "http[0].corsPolicy.allowMethods_len" => {
                        json!(
                            hs[0]["corsPolicy"]["allowMethods"]
                                .as_array()
                                .map_or(0, Vec::len)
                        )
                    }
                    "http[0].match" => uri_and_headers(&hs[0]["match"]),
                    "http[1].match" => {
                        uri_and_headers(&hs.get(1).cloned().unwrap_or_default()["match"])
                    }
                    "http[0].route[0].destination.port.number" => {
                        hs[0]["route"][0]["destination"]["port"]["number"].clone()
                    }
                    other => return Err(format!("cannot express expected key {other:?}")),
                };
                got.insert(key.clone(), v);
            }
        }
        "set_routes" | "reconcile_then_set_routes" => {
            let live = created(&r, &none)?;
            let routes_after_reconcile = http(&live).len();
            let after = set(&live, &r, call_routes(input)?, &none)?;
            let hs = http(&after);
            for key in expected
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str())
            {
                let v = match key {
                    "http_routes_after_reconcile" => json!(routes_after_reconcile),
                    "route_weights" => weights_of(&hs[0]),
                    "mirror" => hs[0].get("mirror").cloned().unwrap_or(Value::Null),
                    "mirror_host" => hs[0]["mirror"]["host"].clone(),
                    "mirror_percentage" => hs[0]["mirrorPercentage"]["value"].clone(),
                    "tcp_route_weights" => weights_of(&after["spec"]["tcp"][0]),
                    other => return Err(format!("cannot express expected key {other:?}")),
                };
                got.insert(key.to_string(), v);
            }
        }
        "get_routes" => {
            let live = created(&r, &none)?;
            let routes = get_routes(&live, &r).map_err(|e| e.to_string())?;
            if let Value::Object(m) = routes_json(routes) {
                got.extend(m);
            }
            let mut r2 = r.clone();
            r2.analysis.mirror = true;
            let untouched = get_routes(&live, &r2).map_err(|e| e.to_string())?;
            got.insert(
                "with analysis.mirror=true but VS untouched".into(),
                json!({"mirrored": untouched.mirrored}),
            );
            let mut mirrored = live.clone();
            for route in mirrored["spec"]["http"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                route["mirror"] = json!({"host": r.canary()});
            }
            let m = get_routes(&mirrored, &r).map_err(|e| e.to_string())?;
            got.insert(
                "after setting http[].mirror.host=podinfo-canary".into(),
                routes_json(m),
            );
        }
        "set_routes_sequence" => session_sequence(&r, input, expected, &mut got)?,
        "session_affinity_rules" => session_rules(input, expected, &mut got)?,
        "finalize" => finalize_case(&r, expected, &mut got)?,
        other => return Err(format!("unknown op {other:?}")),
    }
    Ok(got)
}

fn session_sequence(
    r: &FlaggerRouting,
    input: &Value,
    expected: &Value,
    got: &mut Map<String, Value>,
) -> Res<()> {
    let affinity = r
        .analysis
        .session_affinity
        .clone()
        .ok_or("cannot express case: no sessionAffinity")?;
    let mut cookies = SessionCookies::default();
    let mut cur = created(r, &cookies)?;
    let mut used = String::new();
    for (i, call) in input["calls"].as_array().into_iter().flatten().enumerate() {
        let key = format!("after_call_{}", i + 1);
        let want = &expected[&key];
        if call.get("reconcile").is_some() {
            let plan = reconcile(Some(&cur), r, &cookies).map_err(|e| e.to_string())?;
            let after = applied(Some(&cur), &plan)?;
            got.insert(
                "after_reconcile".into(),
                holds(&expected["after_reconcile"], after == cur, || {
                    after.to_string()
                }),
            );
            continue;
        }
        let routes = call_routes(call)?;
        cookies.advance(&affinity, routes.canary, COOKIE_VALUE);
        if !cookies.current.is_empty() {
            used = cookies.current.clone();
        }
        cur = set(&cur, r, routes, &cookies)?;
        let hs = http(&cur);
        let empty = Value::Null;
        let (h0, h1) = (hs.first().unwrap_or(&empty), hs.get(1).unwrap_or(&empty));
        let mut out = Map::new();
        for k in want
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
        {
            let w = &want[k];
            let v = match (i, k) {
                (_, "http_routes") => json!(hs.len()),
                (_, "status.sessionAffinityCookie_prefix") => {
                    json!(cookies.current.split('=').next().unwrap_or_default())
                }
                (_, "status.sessionAffinityCookie") => json!(cookies.current),
                (_, "status.previousSessionAffinityCookie") => {
                    holds(w, cookies.previous == used && !used.is_empty(), || {
                        cookies.previous.clone()
                    })
                }
                (3, "http[0]") => holds(
                    w,
                    split_is(h0, r, 100, 0)
                        && route_set_cookie(h0) == format!("{used}; Max-Age=-1"),
                    || h0.to_string(),
                ),
                (3, "http[1]") => holds(
                    w,
                    split_is(h1, r, 100, 0) && canary_set_cookie(h1, r).is_none(),
                    || h1.to_string(),
                ),
                (_, "http[0]") => holds(
                    w,
                    cookie_regex(h0).contains(&affinity.cookie_name) && split_is(h0, r, 0, 100),
                    || h0.to_string(),
                ),
                (_, "http[1]") => {
                    let set_cookie = canary_set_cookie(h1, r).unwrap_or_default();
                    let attrs = [
                        "Domain=flagger.app",
                        "HttpOnly",
                        "Max-Age=300",
                        "Partitioned",
                        "Path=/app",
                        "SameSite=Strict",
                        "Secure",
                    ];
                    holds(
                        w,
                        split_is(h1, r, routes.primary.into(), routes.canary.into())
                            && set_cookie.starts_with(&affinity.cookie_name)
                            && attrs.iter().all(|a| set_cookie.contains(a)),
                        || h1.to_string(),
                    )
                }
                (_, other) => return Err(format!("cannot express expected key {other:?}")),
            };
            out.insert(k.to_string(), v);
        }
        got.insert(key, Value::Object(out));
    }
    Ok(())
}

fn session_rules(input: &Value, expected: &Value, got: &mut Map<String, Value>) -> Res<()> {
    let affinity: SessionAffinity = parse(&input["sessionAffinity"], "sessionAffinity")?;
    let r = routing(
        &json!({"name": "podinfo", "namespace": "default", "targetRef": "podinfo",
        "service": {"port": 9898},
        "analysis": {"threshold": 10, "stepWeight": 10, "maxWeight": 50,
                     "sessionAffinity": input["sessionAffinity"]}}),
    )?;
    let mut cookies = SessionCookies::default();
    let mut cur = created(&r, &cookies)?;
    let mut used = String::new();
    for w in input["canary_weight_calls"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let w = w.as_i64().ok_or("canary weight must be an integer")? as i32;
        cookies.advance(&affinity, w, COOKIE_VALUE);
        if !cookies.current.is_empty() {
            used = cookies.current.clone();
        }
        cur = set(&cur, &r, Routes::new(100 - w, w, false), &cookies)?;
        let hs = http(&cur);
        let key = format!("weight_{w}");
        let hide = |s: String| {
            s.replace(
                &used,
                if w == 0 {
                    "<previous cookie>"
                } else {
                    "<cookie>"
                },
            )
        };
        let mut out = Map::new();
        for k in expected[&key]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
        {
            let v = match k {
                "rules" => json!(hs.len()),
                "rule0_cookie_regex_contains" => {
                    let re = cookie_regex(&hs[0]);
                    json!(if re.contains(&affinity.cookie_name) {
                        affinity.cookie_name.clone()
                    } else {
                        re
                    })
                }
                "rule0_weights" => {
                    let w = weights_of(&hs[0]);
                    json!({"primary": w[r.primary()], "canary": w[r.canary()]})
                }
                "rule1_canary_set_cookie" => {
                    json!(hide(canary_set_cookie(&hs[1], &r).unwrap_or_default()))
                }
                "rule0_response_set_cookie" => json!(hide(route_set_cookie(&hs[0]))),
                "status.sessionAffinityCookie" => json!(cookies.current),
                other => return Err(format!("cannot express expected key {other:?}")),
            };
            out.insert(k.to_string(), v);
        }
        got.insert(key, Value::Object(out));
    }
    Ok(())
}

fn finalize_case(r: &FlaggerRouting, expected: &Value, got: &mut Map<String, Value>) -> Res<()> {
    let name = ObjectRef::new("VirtualService", "default", r.apex());
    let plan = reconcile(None, r, &SessionCookies::default()).map_err(|e| e.to_string())?;
    let live = applied(None, &plan)?;
    let original =
        json!({"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]});
    let kubectl = json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "spec": {"hosts": ["podinfo.example.com"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]}});
    for (key, want) in expected.as_object().into_iter().flatten() {
        let v = match key.as_str() {
            "vs_missing" => json!(if finalize(None, &name).is_err() {
                "error"
            } else {
                "no error"
            }),
            "no_original_annotation" => {
                let out = finalize(Some(&live), &name).map_err(|e| e.to_string())?;
                holds(want, out.is_none(), || format!("{out:?}"))
            }
            "flagger.kubernetes.io/original-configuration present" => {
                let mut l = live.clone();
                l["metadata"]["annotations"] =
                    json!({ORIGINAL_CONFIGURATION: original.to_string()});
                let out = finalize(Some(&l), &name).map_err(|e| e.to_string())?;
                let after = match &out {
                    Some(p) => applied(Some(&l), p)?,
                    None => l.clone(),
                };
                holds(want, after["spec"] == original, || after.to_string())
            }
            "kubectl.kubernetes.io/last-applied-configuration present" => {
                let mut l = live.clone();
                l["metadata"]["annotations"] = json!({ORIGINAL_CONFIGURATION: original.to_string(),
                                                     LAST_APPLIED: kubectl.to_string()});
                let out = finalize(Some(&l), &name).map_err(|e| e.to_string())?;
                let after = match &out {
                    Some(p) => applied(Some(&l), p)?,
                    None => l.clone(),
                };
                holds(want, after["spec"] == kubectl["spec"], || after.to_string())
            }
            other => return Err(format!("cannot express expected key {other:?}")),
        };
        got.insert(key.clone(), v);
    }
    Ok(())
}
