//! Flagger's Gateway API HTTPRoute `<apex>` (`gatewayapi:v1` writes
//! `gateway.networking.k8s.io/v1`, `gatewayapi:v1beta1` `v1beta1`).
//!
//! `parentRefs` are `service.gatewayRefs`, `hostnames` `service.hosts`. The first rule
//! carries `service.match` (default path prefix `/`), the header modifier filters of
//! `service.headers` (entries sorted by name, then value, so repeated generation is
//! identical), `service.mirror` filters, the `timeouts` (`timeout`,
//! `backendTimeout`) and the backendRefs `<apex>-primary` / `<apex>-canary` with their
//! weights. Blue/green mirroring (`mirrored` with iterations) adds a `RequestMirror`
//! filter to the canary. A/B testing puts the analysis matches (combined with the
//! service matches) on the first rule and the service matches on a second rule to the
//! primary only. `get_routes` only answers once every parent status of a `parentRef`
//! has `Accepted=True` for the current generation.

use rollout_core::flagger::machine::Routes;
use rollout_core::flagger::spec::{HeaderOperations, Headers, HttpMatchRequest, StringMatch};
use serde_json::{Map, Value, json};

use super::FlaggerRouting;
use crate::error::{ObjectRef, RouterError};
use crate::json::{int_of, str_of};
use crate::patch::Plan;

/// `gateway.networking.k8s.io/v1`.
pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";

fn string_match(name: &str, m: &StringMatch) -> Option<Value> {
    if let Some(v) = &m.exact {
        Some(json!({"type": "Exact", "name": name, "value": v}))
    } else {
        m.regex
            .as_ref()
            .map(|v| json!({"type": "RegularExpression", "name": name, "value": v}))
    }
}

/// One Istio-style match as a Gateway API match.
pub fn http_match(m: &HttpMatchRequest) -> Value {
    let mut out = Map::new();
    if let Some(uri) = &m.uri {
        let (kind, value) = if let Some(v) = &uri.exact {
            ("Exact", v.clone())
        } else if let Some(v) = &uri.regex {
            ("RegularExpression", v.clone())
        } else {
            (
                "PathPrefix",
                uri.prefix.clone().unwrap_or_else(|| "/".into()),
            )
        };
        out.insert("path".into(), json!({"type": kind, "value": value}));
    }
    if let Some(method) = m.method.as_ref().and_then(|x| x.exact.as_ref()) {
        out.insert("method".into(), json!(method));
    }
    let headers: Vec<Value> = m
        .headers
        .iter()
        .filter_map(|(k, v)| string_match(k, v))
        .collect();
    if !headers.is_empty() {
        out.insert("headers".into(), Value::Array(headers));
    }
    let query: Vec<Value> = m
        .query_params
        .iter()
        .filter_map(|(k, v)| string_match(k, v))
        .collect();
    if !query.is_empty() {
        out.insert("queryParams".into(), Value::Array(query));
    }
    if out.is_empty() {
        out.insert("path".into(), json!({"type": "PathPrefix", "value": "/"}));
    }
    Value::Object(out)
}

fn matches(ms: &[HttpMatchRequest]) -> Vec<Value> {
    if ms.is_empty() {
        return vec![json!({"path": {"type": "PathPrefix", "value": "/"}})];
    }
    ms.iter().map(http_match).collect()
}

fn modifier(kind: &str, key: &str, ops: &HeaderOperations) -> Option<Value> {
    let sorted = |m: &std::collections::BTreeMap<String, String>| {
        let mut v: Vec<(&String, &String)> = m.iter().collect();
        v.sort();
        v.into_iter()
            .map(|(n, x)| json!({"name": n, "value": x}))
            .collect::<Vec<_>>()
    };
    let mut body = Map::new();
    if !ops.set.is_empty() {
        body.insert("set".into(), Value::Array(sorted(&ops.set)));
    }
    if !ops.add.is_empty() {
        body.insert("add".into(), Value::Array(sorted(&ops.add)));
    }
    if !ops.remove.is_empty() {
        let mut r = ops.remove.clone();
        r.sort();
        body.insert("remove".into(), json!(r));
    }
    if body.is_empty() {
        return None;
    }
    Some(json!({"type": kind, key: body}))
}

/// The header modifier filters of `service.headers`, entries sorted.
pub fn make_filters(headers: Option<&Headers>) -> Vec<Value> {
    let Some(h) = headers else {
        return Vec::new();
    };
    [
        h.request
            .as_ref()
            .and_then(|o| modifier("RequestHeaderModifier", "requestHeaderModifier", o)),
        h.response
            .as_ref()
            .and_then(|o| modifier("ResponseHeaderModifier", "responseHeaderModifier", o)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn backend(r: &FlaggerRouting, name: &str, w: i32) -> Value {
    json!({"group": "", "kind": "Service", "name": name, "port": r.service.port, "weight": w})
}

/// The HTTPRoute spec for these routes.
pub fn http_route_spec(r: &FlaggerRouting, routes: Routes) -> Result<Value, RouterError> {
    let svc = &r.service;
    if svc.gateway_refs.is_empty() {
        return Err(RouterError::Invalid {
            object: ObjectRef::new("HTTPRoute", &r.namespace, r.apex()),
            message: "service.gatewayRefs is required".into(),
        });
    }
    let mut spec = Map::new();
    spec.insert(
        "parentRefs".into(),
        serde_json::to_value(&svc.gateway_refs).unwrap_or(Value::Null),
    );
    if !svc.hosts.is_empty() {
        spec.insert("hostnames".into(), json!(svc.hosts));
    }
    let primary = r.primary();
    let canary = r.canary();
    let mut filters = make_filters(svc.headers.as_ref());
    for m in &svc.mirror {
        filters.push(json!({"type": "RequestMirror", "requestMirror": m}));
    }
    if routes.mirrored && r.iterations() > 0 {
        filters.push(
            json!({"type": "RequestMirror", "requestMirror": {"backendRef": {
            "group": "", "kind": "Service", "name": canary, "port": svc.port}}}),
        );
    }
    let rule = |ms: Vec<Value>, refs: Vec<Value>| {
        let mut rule = Map::new();
        rule.insert("matches".into(), Value::Array(ms));
        if !filters.is_empty() {
            rule.insert("filters".into(), Value::Array(filters.clone()));
        }
        rule.insert("backendRefs".into(), Value::Array(refs));
        let mut t = Map::new();
        if let Some(x) = &svc.timeout {
            t.insert("request".into(), json!(x));
        }
        if let Some(x) = &svc.backend_timeout {
            t.insert("backendRequest".into(), json!(x));
        }
        if !t.is_empty() {
            rule.insert("timeouts".into(), Value::Object(t));
        }
        Value::Object(rule)
    };
    let split = vec![
        backend(r, &primary, routes.primary),
        backend(r, &canary, routes.canary),
    ];
    let rules = if r.is_ab() {
        vec![
            rule(matches(&r.merged_matches()), split),
            rule(matches(&svc.match_), vec![backend(r, &primary, 100)]),
        ]
    } else {
        vec![rule(matches(&svc.match_), split)]
    };
    spec.insert("rules".into(), Value::Array(rules));
    Ok(Value::Object(spec))
}

/// The weights and mirroring of a live HTTPRoute, without the status check.
pub fn read_routes(live: &Value, r: &FlaggerRouting) -> Option<Routes> {
    let canary = r.canary();
    let primary = r.primary();
    live.pointer("/spec/rules")?
        .as_array()?
        .iter()
        .find_map(|rule| {
            let refs = rule.get("backendRefs")?.as_array()?;
            if refs.len() != 2 {
                return None;
            }
            let w = |n: &str| {
                refs.iter()
                    .find(|b| str_of(b, "name") == n)
                    .map(|b| int_of(b, "weight").unwrap_or(1) as i32)
            };
            let mirrored = rule
                .get("filters")
                .and_then(Value::as_array)
                .is_some_and(|fs| {
                    fs.iter().any(|f| {
                        str_of(f, "type") == "RequestMirror"
                            && f.pointer("/requestMirror/backendRef/name")
                                .and_then(Value::as_str)
                                == Some(canary.as_str())
                    })
                });
            Some(Routes::new(w(&primary)?, w(&canary)?, mirrored))
        })
}

/// The routes of a live HTTPRoute, once every parent status of a spec `parentRef` has
/// `Accepted=True` at `observedGeneration >= metadata.generation`.
pub fn get_routes(live: &Value, r: &FlaggerRouting) -> Result<Routes, RouterError> {
    let object = ObjectRef::of("HTTPRoute", live);
    let generation = live
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let parent_refs = live
        .pointer("/spec/parentRefs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let parents = live
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for p in parents.iter().filter(|p| {
        p.get("parentRef")
            .is_some_and(|pr| parent_refs.contains(pr))
    }) {
        let accepted = p
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| str_of(c, "type") == "Accepted"));
        let ok = accepted.is_some_and(|c| {
            str_of(c, "status") == "True"
                && int_of(c, "observedGeneration").unwrap_or(0) >= generation
        });
        if !ok {
            return Err(RouterError::Invalid {
                object,
                message: format!(
                    "parent {} has not accepted generation {generation}",
                    p.get("parentRef").cloned().unwrap_or(Value::Null)
                ),
            });
        }
    }
    read_routes(live, r).ok_or_else(|| RouterError::RouteNotFound {
        object,
        kind: "rules",
        route: format!("with backendRefs {} and {}", r.primary(), r.canary()),
    })
}

/// Creates the HTTPRoute, or brings the live one back to the generated spec keeping
/// its weights (and its mirror filter when `keep_mirror`: the canary is Waiting,
/// Progressing or WaitingPromotion). Metadata (foreign annotations) is kept.
pub fn reconcile(
    live: Option<&Value>,
    r: &FlaggerRouting,
    keep_mirror: bool,
) -> Result<Plan, RouterError> {
    let Some(live) = live else {
        let obj = json!({
            "apiVersion": API_VERSION,
            "kind": "HTTPRoute",
            "metadata": r.metadata(r.apex()),
            "spec": http_route_spec(r, Routes::PRIMARY)?,
        });
        return Ok(Plan::create(
            ObjectRef::new("HTTPRoute", &r.namespace, r.apex()),
            obj,
        ));
    };
    let mut routes = read_routes(live, r).unwrap_or(Routes::PRIMARY);
    routes.mirrored &= keep_mirror;
    set_routes(live, r, routes)
}

/// Writes the routes into the live HTTPRoute.
pub fn set_routes(live: &Value, r: &FlaggerRouting, routes: Routes) -> Result<Plan, RouterError> {
    let object = ObjectRef::of("HTTPRoute", live);
    let mut after = live.clone();
    after["spec"] = http_route_spec(r, routes)?;
    Ok(Plan::json(object, live, after))
}
