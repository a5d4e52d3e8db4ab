//! Gateway API HTTPRoute (`gateway.networking.k8s.io/v1`): backendRef weights, header
//! rules for A/B tests and the request mirror filter (Argo Rollouts' Gateway API plugin
//! semantics; Linkerd and Flagger's `gatewayapi` provider write the same fields).
//!
//! Every rule (other than managed ones) with a backendRef to the canary or the stable
//! service is weighted: the canary gets the canary weight, the stable the stable weight,
//! experiment services theirs (appended when missing, with the stable's port). Other
//! backendRefs are left alone. A rule that sends traffic to neither is not touched; a
//! route where no rule does is an error.
//!
//! Flagger's mirroring ([`DesiredRoutes::mirror`]) adds a `RequestMirror` filter to
//! the canary on the weighted rules, and removes it when it ends.
//!
//! Managed routes become rules named after them (`rules[].name`), first, in
//! `managedRoutes` order: a header route matches its headers (`Exact`, or
//! `RegularExpression` for regex and prefix matches) and sends to the canary only; a
//! mirror route matches path / method / headers, keeps the current split and mirrors a
//! percentage to the canary with a `RequestMirror` filter.
//!
//! Plans are JSON patches that `test` each rule they change.

use rollout_core::spec::{SetHeaderRoute, SetMirrorRoute, StringMatch};
use rollout_core::traffic::{DesiredRoutes, Weights};
use serde_json::{Map, Value, json};

use crate::error::{ObjectRef, RouterError};
use crate::json::{array, array_mut, int_of, str_of};
use crate::patch::Plan;

/// Plans changes to one HTTPRoute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpRoutePlanner {
    /// The stable service.
    pub stable_service: String,
    /// The canary service.
    pub canary_service: String,
    /// `managedRoutes`, in order.
    pub managed_routes: Vec<String>,
}

impl HttpRoutePlanner {
    /// The JSON patch that makes `live` carry `desired`, and the object after it.
    pub fn plan(&self, live: &Value, desired: &DesiredRoutes) -> Result<Plan, RouterError> {
        let object = ObjectRef::of("HTTPRoute", live);
        let w = &desired.weights;
        let rules = array(live, "/spec/rules", &object)?.to_vec();
        let mut weighted = Vec::new();
        let mut out = Vec::with_capacity(rules.len());
        for rule in rules.iter() {
            let name = str_of(rule, "name");
            if !name.is_empty() && self.managed_routes.iter().any(|m| m == name) {
                continue;
            }
            let mut rule = rule.clone();
            if self.weigh(&mut rule, w) {
                weighted.push(out.len());
                self.mirror(&mut rule, desired.mirror);
            }
            out.push(rule);
        }
        if weighted.is_empty() {
            return Err(RouterError::ServiceNotReferenced {
                object,
                service: self.stable_service.clone(),
            });
        }
        for name in desired
            .header_routes
            .iter()
            .map(|r| &r.name)
            .chain(desired.mirror_routes.iter().map(|r| &r.name))
        {
            if !self.managed_routes.contains(name) {
                return Err(RouterError::Invalid {
                    object,
                    message: format!("route {name:?} is not listed in managedRoutes"),
                });
            }
        }
        let split = out[weighted[0]]
            .get("backendRefs")
            .cloned()
            .unwrap_or(Value::Null);
        let canary = canary_ref(&split, &self.canary_service);
        let mut managed = Vec::new();
        for name in &self.managed_routes {
            let rule = if let Some(r) = desired.header_routes.iter().find(|r| &r.name == name) {
                header_rule(r, &canary)
            } else if let Some(r) = desired.mirror_routes.iter().find(|r| &r.name == name) {
                mirror_rule(r, &split, &canary)
            } else {
                continue;
            };
            // The API server fills in the schema's defaults: a live rule that is this
            // one plus those defaults already carries it (no rewrite on every pass).
            let same = rules
                .iter()
                .find(|l| str_of(l, "name") == name.as_str())
                .filter(|l| **l == with_server_defaults(&rule));
            managed.push(same.cloned().unwrap_or(rule));
        }
        managed.extend(out);
        let mut after = live.clone();
        *array_mut(&mut after, "/spec/rules", &object)? = managed;
        Ok(Plan::json(object, live, after))
    }

    /// Flagger-style mirroring of a weighted rule: a `RequestMirror` filter to the
    /// canary (with `percent` unless 100), removed when `mirror` is `None`; other
    /// filters stay.
    fn mirror(&self, rule: &mut Value, mirror: Option<i32>) {
        let refs = rule.get("backendRefs").cloned().unwrap_or(Value::Null);
        let canary = canary_ref(&refs, &self.canary_service);
        let Value::Object(m) = rule else {
            return;
        };
        let mut filters: Vec<Value> = m
            .get("filters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let had = filters.len();
        filters.retain(|f| {
            !(str_of(f, "type") == "RequestMirror"
                && f.pointer("/requestMirror/backendRef/name")
                    .and_then(Value::as_str)
                    == Some(self.canary_service.as_str()))
        });
        let removed = filters.len() != had;
        if let Some(p) = mirror {
            let mut body = Map::new();
            body.insert("backendRef".into(), canary);
            if p != 100 {
                body.insert("percent".into(), json!(p));
            }
            filters.push(json!({"type": "RequestMirror", "requestMirror": body}));
        } else if !removed {
            return;
        }
        if filters.is_empty() {
            m.shift_remove("filters");
        } else {
            m.insert("filters".into(), Value::Array(filters));
        }
    }

    /// Weighs one rule; false when it sends to neither canary nor stable.
    fn weigh(&self, rule: &mut Value, w: &Weights) -> bool {
        let Some(refs) = rule.get_mut("backendRefs").and_then(Value::as_array_mut) else {
            return false;
        };
        let mut touched = false;
        let mut seen = vec![false; w.additional.len()];
        let mut stable_port = None;
        for r in refs.iter_mut() {
            let name = str_of(r, "name").to_string();
            let weight = if name == self.canary_service {
                w.canary
            } else if name == self.stable_service {
                stable_port = r.get("port").cloned();
                w.stable
            } else if let Some(i) = w.additional.iter().position(|d| d.service_name == name) {
                seen[i] = true;
                w.additional[i].weight
            } else {
                continue;
            };
            touched |= name == self.canary_service || name == self.stable_service;
            r["weight"] = json!(weight);
        }
        if touched {
            for (d, _) in w.additional.iter().zip(seen).filter(|(_, s)| !s) {
                let mut r = Map::new();
                r.insert("name".into(), json!(d.service_name));
                if let Some(p) = &stable_port {
                    r.insert("port".into(), p.clone());
                }
                r.insert("weight".into(), json!(d.weight));
                refs.push(Value::Object(r));
            }
        }
        touched
    }
}

/// A rule as the API server stores it: the defaults of the HTTPRoute schema filled
/// in (a match without a path matches the `PathPrefix` `/`; header and query matches
/// are `Exact`; a backendRef is a core `Service` of weight 1; a rule without matches
/// matches everything).
pub fn with_server_defaults(rule: &Value) -> Value {
    fn backend_ref(r: &mut Value, weight: bool) {
        if let Value::Object(m) = r {
            m.entry("group").or_insert_with(|| json!(""));
            m.entry("kind").or_insert_with(|| json!("Service"));
            if weight {
                m.entry("weight").or_insert_with(|| json!(1));
            }
        }
    }
    let mut out = rule.clone();
    let Value::Object(m) = &mut out else {
        return out;
    };
    let matches = m
        .entry("matches")
        .or_insert_with(|| json!([{"path": {"type": "PathPrefix", "value": "/"}}]));
    for mt in matches.as_array_mut().into_iter().flatten() {
        let Value::Object(mm) = mt else { continue };
        let path = mm
            .entry("path")
            .or_insert_with(|| json!({"type": "PathPrefix", "value": "/"}));
        if let Value::Object(p) = path {
            p.entry("type").or_insert_with(|| json!("PathPrefix"));
            p.entry("value").or_insert_with(|| json!("/"));
        }
        for key in ["headers", "queryParams"] {
            for h in mm
                .get_mut(key)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Value::Object(h) = h {
                    h.entry("type").or_insert_with(|| json!("Exact"));
                }
            }
        }
    }
    for r in m
        .get_mut("backendRefs")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        backend_ref(r, true);
    }
    for f in m
        .get_mut("filters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(r) = f.pointer_mut("/requestMirror/backendRef") {
            backend_ref(r, false);
        }
    }
    out
}

fn canary_ref(split: &Value, canary: &str) -> Value {
    let found = split
        .as_array()
        .and_then(|refs| refs.iter().find(|r| str_of(r, "name") == canary))
        .cloned();
    let mut r = found.unwrap_or_else(|| json!({"name": canary}));
    if let Value::Object(m) = &mut r {
        m.shift_remove("weight");
        m.shift_remove("filters");
    }
    r
}

/// Escapes a literal for a regular expression.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Gateway API header (or query) match from a string match.
pub fn header_match(name: &str, m: &StringMatch) -> Value {
    let (kind, value) = if let Some(v) = m.exact.as_deref().filter(|v| !v.is_empty()) {
        ("Exact", v.to_string())
    } else if let Some(v) = m.regex.as_deref().filter(|v| !v.is_empty()) {
        ("RegularExpression", v.to_string())
    } else {
        let p = m.prefix.as_deref().unwrap_or_default();
        ("RegularExpression", format!("^{}.*", regex_escape(p)))
    };
    json!({"type": kind, "name": name, "value": value})
}

fn path_match(m: &StringMatch) -> Value {
    if let Some(v) = m.exact.as_deref().filter(|v| !v.is_empty()) {
        json!({"type": "Exact", "value": v})
    } else if let Some(v) = m.regex.as_deref().filter(|v| !v.is_empty()) {
        json!({"type": "RegularExpression", "value": v})
    } else {
        json!({"type": "PathPrefix", "value": m.prefix.as_deref().unwrap_or("/")})
    }
}

/// The rule of a `setHeaderRoute` step: its headers to the canary only.
pub fn header_rule(route: &SetHeaderRoute, canary: &Value) -> Value {
    let headers: Vec<Value> = route
        .r#match
        .iter()
        .map(|m| header_match(&m.header_name, &m.header_value))
        .collect();
    json!({
        "name": route.name,
        "matches": [{"headers": headers}],
        "backendRefs": [canary],
    })
}

/// The rule of a `setMirrorRoute` step: the current split, mirrored to the canary.
pub fn mirror_rule(route: &SetMirrorRoute, split: &Value, canary: &Value) -> Value {
    let matches: Vec<Value> = route
        .r#match
        .iter()
        .map(|m| {
            let mut out = Map::new();
            if let Some(p) = &m.path {
                out.insert("path".into(), path_match(p));
            }
            if let Some(method) = m.method.as_ref().and_then(|x| x.exact.clone()) {
                out.insert("method".into(), json!(method));
            }
            if !m.headers.is_empty() {
                let h: Vec<Value> = m.headers.iter().map(|(k, v)| header_match(k, v)).collect();
                out.insert("headers".into(), Value::Array(h));
            }
            Value::Object(out)
        })
        .collect();
    let mut mirror = Map::new();
    mirror.insert("backendRef".into(), canary.clone());
    if let Some(p) = route.percentage.filter(|p| *p != 100) {
        mirror.insert("percent".into(), json!(p));
    }
    json!({
        "name": route.name,
        "matches": matches,
        "filters": [{"type": "RequestMirror", "requestMirror": mirror}],
        "backendRefs": split,
    })
}

/// `(canary, stable)` weights of the first rule with both backendRefs.
pub fn read_weights(live: &Value, canary: &str, stable: &str) -> Option<(i64, i64)> {
    live.pointer("/spec/rules")?
        .as_array()?
        .iter()
        .find_map(|r| {
            let refs = r.get("backendRefs")?.as_array()?;
            let weight = |name: &str| {
                refs.iter()
                    .find(|b| str_of(b, "name") == name)
                    .map(|b| int_of(b, "weight").unwrap_or(1))
            };
            Some((weight(canary)?, weight(stable)?))
        })
}
