//! ingress-nginx: a canary Ingress cloned from each stable Ingress, weighted by
//! annotations (Argo Rollouts' `trafficRouting.nginx`).
//!
//! The canary Ingress is named `<rollout>-<stableIngress>-canary` (cut to 253
//! characters). It holds the stable Ingress's rules that send traffic to the stable
//! service, with those backends pointed at the canary service, its `ingressClassName`
//! and `kubernetes.io/ingress.class` annotation, and the annotations (default prefix
//! `nginx.ingress.kubernetes.io`):
//!
//! - `additionalIngressAnnotations`, each key with the prefix (`canary-by-header`,
//!   `canary-by-header-value`, `canary-by-header-pattern`, `canary-by-cookie`, ...);
//! - `canaryIngressAnnotations`, verbatim;
//! - `<prefix>/canary: "true"`, `<prefix>/canary-weight: "<weight>"`, and
//!   `<prefix>/canary-weight-total: "<maxTrafficWeight>"` only when maxTrafficWeight is
//!   set; these win over the others.
//!
//! An existing canary Ingress is updated with a merge patch. The router owns the
//! `<prefix>/canary*` annotations and the ones it writes; annotations other controllers
//! wrote are kept. Header and mirror routes are not expressed by this router (as in
//! Argo, header routing is done through the static `canary-by-header` annotations).

use std::collections::BTreeMap;

use rollout_core::traffic::DesiredRoutes;
use serde_json::{Map, Value, json};

use crate::error::{ObjectRef, RouterError};
use crate::json::{array, str_of};
use crate::patch::Plan;

/// The default annotation prefix.
pub const DEFAULT_PREFIX: &str = "nginx.ingress.kubernetes.io";
/// The ingress class annotation copied from the stable Ingress.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Plans the canary Ingress of one stable Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NginxPlanner {
    /// The rollout's name.
    pub rollout: String,
    /// The stable service.
    pub stable_service: String,
    /// The canary service.
    pub canary_service: String,
    /// `annotationPrefix` (default [`DEFAULT_PREFIX`]).
    pub annotation_prefix: Option<String>,
    /// `additionalIngressAnnotations` (keys without the prefix).
    pub additional_ingress_annotations: BTreeMap<String, String>,
    /// `canaryIngressAnnotations` (written verbatim).
    pub canary_ingress_annotations: BTreeMap<String, String>,
    /// `maxTrafficWeight`, when set.
    pub max_traffic_weight: Option<i32>,
}

/// The canary Ingress name of a stable Ingress.
pub fn canary_ingress_name(rollout: &str, stable_ingress: &str) -> String {
    let mut name = format!("{rollout}-{stable_ingress}-canary");
    if name.len() > 253 {
        let mut cut = 253;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    name
}

impl NginxPlanner {
    fn prefix(&self) -> &str {
        self.annotation_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_PREFIX)
    }

    /// The annotations the router writes for this weight.
    pub fn annotations(&self, stable: &Value, weight: i32) -> Map<String, Value> {
        let p = self.prefix();
        let mut out = Map::new();
        if let Some(class) = stable
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION))
        {
            out.insert(INGRESS_CLASS_ANNOTATION.into(), class.clone());
        }
        for (k, v) in &self.additional_ingress_annotations {
            out.insert(format!("{p}/{k}"), json!(v));
        }
        for (k, v) in &self.canary_ingress_annotations {
            out.insert(k.clone(), json!(v));
        }
        out.insert(format!("{p}/canary"), json!("true"));
        out.insert(format!("{p}/canary-weight"), json!(weight.to_string()));
        if let Some(total) = self.max_traffic_weight {
            out.insert(format!("{p}/canary-weight-total"), json!(total.to_string()));
        }
        out
    }

    /// The canary Ingress the router wants, built from the stable Ingress.
    pub fn desired_canary(&self, stable: &Value, weight: i32) -> Result<Value, RouterError> {
        let stable_ref = ObjectRef::of("Ingress", stable);
        let rules = clone_rules(
            stable,
            &stable_ref,
            &self.stable_service,
            &self.canary_service,
        )?;
        let mut meta = Map::new();
        meta.insert(
            "name".into(),
            json!(canary_ingress_name(&self.rollout, &stable_ref.name)),
        );
        if !stable_ref.namespace.is_empty() {
            meta.insert("namespace".into(), json!(stable_ref.namespace));
        }
        meta.insert(
            "annotations".into(),
            Value::Object(self.annotations(stable, weight)),
        );
        let mut spec = Map::new();
        if let Some(class) = stable.pointer("/spec/ingressClassName") {
            spec.insert("ingressClassName".into(), class.clone());
        }
        spec.insert("rules".into(), Value::Array(rules));
        Ok(json!({
            "apiVersion": stable.get("apiVersion").cloned().unwrap_or(json!("networking.k8s.io/v1")),
            "kind": "Ingress",
            "metadata": meta,
            "spec": spec,
        }))
    }

    /// Plans the canary Ingress: created when `canary` is `None`, else merge-patched.
    pub fn plan(
        &self,
        stable: &Value,
        canary: Option<&Value>,
        desired: &DesiredRoutes,
    ) -> Result<Plan, RouterError> {
        let want = self.desired_canary(stable, desired.weights.canary)?;
        let Some(live) = canary else {
            let object = ObjectRef::of("Ingress", &want);
            return Ok(Plan::create(object, want));
        };
        let object = ObjectRef::of("Ingress", live);
        let p = format!("{}/canary", self.prefix());
        let mut after = live.clone();
        let want_ann = want
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let ann = crate::json::object_mut(&mut after, "/metadata/annotations", &object)?;
        ann.retain(|k, _| !k.starts_with(&p) || want_ann.contains_key(k));
        for (k, v) in want_ann {
            ann.insert(k, v);
        }
        let spec = crate::json::object_mut(&mut after, "/spec", &object)?;
        for key in ["ingressClassName", "rules"] {
            match want.pointer(&format!("/spec/{key}")) {
                Some(v) => {
                    spec.insert(key.into(), v.clone());
                }
                None => {
                    spec.shift_remove(key);
                }
            }
        }
        Ok(Plan::merge(object, live, after))
    }

    /// The canary weight the live canary Ingress carries.
    pub fn read_weight(&self, canary: &Value) -> Option<i32> {
        canary
            .pointer("/metadata/annotations")?
            .get(format!("{}/canary-weight", self.prefix()))?
            .as_str()?
            .parse()
            .ok()
    }
}

/// The rules of `stable` that send traffic to `from`, with those backends pointed at
/// `to` (`networking.k8s.io/v1` `backend.service.name` or the older `serviceName`).
pub fn clone_rules(
    stable: &Value,
    object: &ObjectRef,
    from: &str,
    to: &str,
) -> Result<Vec<Value>, RouterError> {
    let mut rules = Vec::new();
    for rule in array(stable, "/spec/rules", object)? {
        let paths = rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let kept: Vec<Value> = paths
            .into_iter()
            .filter_map(|mut p| {
                let backend = p.get_mut("backend")?;
                if let Some(svc) = backend.get_mut("service") {
                    if str_of(svc, "name") != from {
                        return None;
                    }
                    svc["name"] = json!(to);
                } else if str_of(backend, "serviceName") == from {
                    backend["serviceName"] = json!(to);
                } else {
                    return None;
                }
                Some(p)
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        let mut r = rule.clone();
        r["http"]["paths"] = Value::Array(kept);
        rules.push(r);
    }
    if rules.is_empty() {
        return Err(RouterError::ServiceNotReferenced {
            object: object.clone(),
            service: from.to_string(),
        });
    }
    Ok(rules)
}
