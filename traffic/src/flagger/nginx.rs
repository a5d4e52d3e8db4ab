//! Flagger's ingress-nginx canary: the Ingress `<ingressRef>-canary`, a copy of the
//! referenced Ingress whose backends on the apex service point at `<apex>-canary`.
//!
//! After reconcile its annotations are the original ones without any
//! `<prefix>/canary*` and kubectl's last-applied annotation, plus `<prefix>/canary:
//! "true"` and `<prefix>/canary-weight: "0"`. `SetRoutes` writes `canary-weight`, or
//! for A/B testing (`analysis.match`) the header / cookie annotations of the match:
//! a `cookie` header gives `canary-by-cookie`, any other header `canary-by-header` with
//! `canary-by-header-value` (exact) or `canary-by-header-pattern` (regex). A canary
//! weight of 0 resets the annotations to the reconciled form. Updates are merge
//! patches of the annotations.

use rollout_core::flagger::machine::Routes;
use serde_json::{Map, Value, json};

use super::FlaggerRouting;
use crate::error::{ObjectRef, RouterError};
use crate::json::str_of;
use crate::patch::Plan;

/// The canary Ingress name.
pub fn canary_ingress_name(ingress: &str) -> String {
    format!("{ingress}-canary")
}

fn clean_annotations(anns: Option<&Value>, prefix: &str) -> Map<String, Value> {
    let canary = format!("{prefix}/canary");
    anns.and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .filter(|(k, _)| !k.starts_with(&canary) && *k != super::istio::LAST_APPLIED)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn routing_annotations(r: &FlaggerRouting, routes: Routes, prefix: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(format!("{prefix}/canary"), json!("true"));
    if r.is_ab() && routes.canary > 0 {
        for m in &r.analysis.match_ {
            for (name, v) in &m.headers {
                if name.eq_ignore_ascii_case("cookie") {
                    if let Some(x) = &v.exact {
                        out.insert(format!("{prefix}/canary-by-cookie"), json!(x));
                    }
                    continue;
                }
                out.insert(format!("{prefix}/canary-by-header"), json!(name));
                if let Some(x) = &v.exact {
                    out.insert(format!("{prefix}/canary-by-header-value"), json!(x));
                }
                if let Some(x) = &v.regex {
                    out.insert(format!("{prefix}/canary-by-header-pattern"), json!(x));
                }
            }
        }
    } else {
        out.insert(
            format!("{prefix}/canary-weight"),
            json!(routes.canary.to_string()),
        );
    }
    out
}

/// The canary Ingress generated from the referenced Ingress.
pub fn canary_ingress(
    ingress: &Value,
    r: &FlaggerRouting,
    prefix: &str,
) -> Result<Value, RouterError> {
    let object = ObjectRef::of("Ingress", ingress);
    let apex = r.apex();
    let canary = r.canary();
    let mut spec = ingress.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut found = false;
    if let Some(rules) = spec.get_mut("rules").and_then(Value::as_array_mut) {
        for rule in rules {
            let Some(paths) = rule
                .pointer_mut("/http/paths")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for p in paths {
                if let Some(svc) = p.pointer_mut("/backend/service")
                    && str_of(svc, "name") == apex
                {
                    svc["name"] = json!(canary);
                    found = true;
                }
            }
        }
    }
    if !found {
        return Err(RouterError::ServiceNotReferenced {
            object,
            service: apex.to_string(),
        });
    }
    let mut anns = clean_annotations(ingress.pointer("/metadata/annotations"), prefix);
    anns.extend(routing_annotations(r, Routes::PRIMARY, prefix));
    let mut meta = Map::new();
    meta.insert("name".into(), json!(canary_ingress_name(&object.name)));
    if !object.namespace.is_empty() {
        meta.insert("namespace".into(), json!(object.namespace));
    }
    if let Some(labels) = ingress.pointer("/metadata/labels") {
        meta.insert("labels".into(), labels.clone());
    }
    meta.insert("annotations".into(), Value::Object(anns));
    Ok(json!({
        "apiVersion": ingress.get("apiVersion").cloned().unwrap_or(json!("networking.k8s.io/v1")),
        "kind": "Ingress",
        "metadata": meta,
        "spec": spec,
    }))
}

/// Creates the canary Ingress, or brings the live one back to the generated spec and
/// annotations, keeping its routing annotations.
pub fn reconcile(
    ingress: &Value,
    live: Option<&Value>,
    r: &FlaggerRouting,
    prefix: &str,
) -> Result<Plan, RouterError> {
    let want = canary_ingress(ingress, r, prefix)?;
    let Some(live) = live else {
        return Ok(Plan::create(ObjectRef::of("Ingress", &want), want));
    };
    let object = ObjectRef::of("Ingress", live);
    let mut after = live.clone();
    after["spec"] = want["spec"].clone();
    let canary_prefix = format!("{prefix}/canary");
    let mut anns = clean_annotations(ingress.pointer("/metadata/annotations"), prefix);
    match live
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        Some(old) if old.keys().any(|k| k.starts_with(&canary_prefix)) => {
            for (k, v) in old.iter().filter(|(k, _)| k.starts_with(&canary_prefix)) {
                anns.insert(k.clone(), v.clone());
            }
        }
        _ => anns.extend(routing_annotations(r, Routes::PRIMARY, prefix)),
    }
    after["metadata"]["annotations"] = Value::Object(anns);
    Ok(Plan::merge(object, live, after))
}

/// Writes the routes into the live canary Ingress's annotations.
pub fn set_routes(
    live: &Value,
    r: &FlaggerRouting,
    routes: Routes,
    prefix: &str,
) -> Result<Plan, RouterError> {
    let object = ObjectRef::of("Ingress", live);
    let mut after = live.clone();
    let mut anns = clean_annotations(live.pointer("/metadata/annotations"), prefix);
    anns.extend(routing_annotations(r, routes, prefix));
    crate::json::object_mut(&mut after, "/metadata", &object)?
        .insert("annotations".into(), Value::Object(anns));
    Ok(Plan::merge(object, live, after))
}

/// The routes of the live canary Ingress: A/B with a header or cookie annotation is
/// 0/100, otherwise the canary gets `canary-weight`.
pub fn get_routes(live: &Value, r: &FlaggerRouting, prefix: &str) -> Routes {
    let anns = live.pointer("/metadata/annotations");
    let get = |k: &str| {
        anns.and_then(|a| a.get(format!("{prefix}/{k}")))
            .and_then(Value::as_str)
    };
    if r.is_ab() && (get("canary-by-cookie").is_some() || get("canary-by-header").is_some()) {
        return Routes::new(0, 100, false);
    }
    let canary = get("canary-weight")
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    Routes::new(100 - canary, canary, false)
}
