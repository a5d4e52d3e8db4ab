//! Istio: weights on the routes of existing VirtualServices, header and mirror routes,
//! and the DestinationRule subsets of subset-level splitting (Argo Rollouts'
//! `trafficRouting.istio`).
//!
//! For each managed route (HTTP routes by name, or the only HTTP route when none is
//! named; TLS routes by port and SNI hosts; TCP routes by port) the destinations are
//! rewritten: the canary destination (host `canaryService`, or subset
//! `canarySubsetName` with a DestinationRule) gets the canary weight, the stable one
//! `100 - canary - Σ experiment weights - Σ weights of additional subsets` (Istio's total
//! is always 100), experiment services get their weight (appended, sorted by host, when
//! missing), destinations on additional subsets keep theirs, anything else is removed.
//!
//! Flagger's mirroring ([`DesiredRoutes::mirror`]) puts `mirror` (the canary
//! destination) and `mirrorPercentage` on the weighted HTTP routes, and takes a mirror
//! to the canary off them when it ends.
//!
//! Managed routes (`trafficRouting.managedRoutes`) are rebuilt from the desired state on
//! every plan: a header route sends its matches to the canary only, a mirror route keeps
//! the current split and mirrors a percentage to the canary. They are placed first, in
//! `managedRoutes` order, above the user's routes; a managed route that is no longer
//! desired is removed. Every other route and field is left as it is.
//!
//! Plans are JSON patches that `test` each route they change, so a concurrent edit of
//! the same route makes the API server reject the patch.

use rollout_core::spec::{
    IstioDestinationRule, IstioVirtualService, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use rollout_core::traffic::{DesiredRoutes, Weights};
use serde_json::{Map, Value, json};

use crate::error::{ObjectRef, RouterError};
use crate::json::{array, array_mut, int_of, object_mut, str_of};
use crate::patch::Plan;

/// The label Argo puts on DestinationRule subsets.
pub const POD_TEMPLATE_HASH_LABEL: &str = "rollouts-pod-template-hash";
/// The annotation that marks a DestinationRule as managed by a rollout.
pub const MANAGED_BY_ANNOTATION: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
/// Istio's total weight.
pub const TOTAL: i32 = 100;

/// Plans changes to one VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtualServicePlanner {
    /// The stable service.
    pub stable_service: String,
    /// The canary service.
    pub canary_service: String,
    /// The VirtualService and the routes to manage in it.
    pub virtual_service: IstioVirtualService,
    /// Subset-level splitting: the DestinationRule's subsets.
    pub destination_rule: Option<IstioDestinationRule>,
    /// `trafficRouting.managedRoutes`, in order.
    pub managed_routes: Vec<String>,
}

/// Which destinations of a route are which.
enum Role {
    Canary,
    Stable,
    AdditionalSubset,
    Experiment(usize),
    Other,
}

impl VirtualServicePlanner {
    /// The VirtualService's reference (`namespace/name` in the configuration, else the
    /// live object's namespace).
    pub fn object_ref(&self, live: &Value) -> ObjectRef {
        let live_ref = ObjectRef::of("VirtualService", live);
        match self.virtual_service.name.split_once('/') {
            Some((ns, name)) => ObjectRef::new("VirtualService", ns, name),
            None if live_ref.name.is_empty() => ObjectRef::new(
                "VirtualService",
                &live_ref.namespace,
                &self.virtual_service.name,
            ),
            None => live_ref,
        }
    }

    /// The JSON patch that makes `live` carry `desired`, and the object after it.
    pub fn plan(&self, live: &Value, desired: &DesiredRoutes) -> Result<Plan, RouterError> {
        let object = self.object_ref(live);
        let mut after = live.clone();
        let w = &desired.weights;
        let vs = &self.virtual_service;

        // HTTP routes: weights, then managed routes rebuilt and ordered.
        let http = array(live, "/spec/http", &object)?.to_vec();
        let mut weighted = Vec::new();
        if vs.routes.is_empty() && vs.tls_routes.is_empty() && vs.tcp_routes.is_empty() {
            let user: Vec<usize> = (0..http.len())
                .filter(|i| {
                    !self
                        .managed_routes
                        .iter()
                        .any(|m| m == str_of(&http[*i], "name"))
                })
                .collect();
            if user.len() != 1 {
                return Err(RouterError::AmbiguousRoutes {
                    object,
                    kind: "http",
                    count: user.len(),
                });
            }
            weighted.push(user[0]);
        }
        for name in &vs.routes {
            let i = http
                .iter()
                .position(|r| str_of(r, "name") == name)
                .ok_or_else(|| RouterError::RouteNotFound {
                    object: object.clone(),
                    kind: "http",
                    route: name.clone(),
                })?;
            weighted.push(i);
        }
        let mut http_after = http.clone();
        for &i in &weighted {
            let path = format!("/spec/http/{i}/route");
            self.split(&mut http_after[i], &path, w, &object)?;
        }
        let canary = self.canary_destination(&http_after, &weighted, w);
        for &i in &weighted {
            self.mirror(&mut http_after[i], &canary, desired.mirror, w);
        }
        if !self.managed_routes.is_empty()
            || (!desired.header_routes.is_empty() || !desired.mirror_routes.is_empty())
        {
            http_after = self.managed(http_after, &weighted, desired, &object)?;
        }
        if !http.is_empty() || !http_after.is_empty() {
            *array_mut(&mut after, "/spec/http", &object)? = http_after;
        }

        // TLS routes.
        for cfg in &vs.tls_routes {
            let tls = array_mut(&mut after, "/spec/tls", &object)?;
            let i = tls
                .iter()
                .position(|r| tls_matches(r, cfg.port, &cfg.sni_hosts))
                .ok_or_else(|| RouterError::RouteNotFound {
                    object: object.clone(),
                    kind: "tls",
                    route: format!("port {:?} sniHosts {:?}", cfg.port, cfg.sni_hosts),
                })?;
            let path = format!("/spec/tls/{i}/route");
            self.split(&mut tls[i], &path, w, &object)?;
        }
        // TCP routes.
        for cfg in &vs.tcp_routes {
            let tcp = array_mut(&mut after, "/spec/tcp", &object)?;
            let i = tcp
                .iter()
                .position(|r| port_matches(r, cfg.port))
                .ok_or_else(|| RouterError::RouteNotFound {
                    object: object.clone(),
                    kind: "tcp",
                    route: format!("port {:?}", cfg.port),
                })?;
            let path = format!("/spec/tcp/{i}/route");
            self.split(&mut tcp[i], &path, w, &object)?;
        }
        Ok(Plan::json(object, live, after))
    }

    fn role(&self, dest: &Value, w: &Weights) -> Role {
        let host = str_of(dest, "host");
        let short = host.split('.').next().unwrap_or_default();
        let subset = str_of(dest, "subset");
        if let Some(dr) = &self.destination_rule {
            if subset == dr.canary_subset_name {
                return Role::Canary;
            }
            if subset == dr.stable_subset_name {
                return Role::Stable;
            }
            if dr.additional_subset_names.iter().any(|s| s == subset) {
                return Role::AdditionalSubset;
            }
        } else {
            if short == self.canary_service {
                return Role::Canary;
            }
            if short == self.stable_service {
                return Role::Stable;
            }
        }
        match w.additional.iter().position(|d| d.service_name == short) {
            Some(i) => Role::Experiment(i),
            None => Role::Other,
        }
    }

    /// Rewrites the destinations of one route (`route` holds `route: [...]`).
    fn split(
        &self,
        route: &mut Value,
        path: &str,
        w: &Weights,
        object: &ObjectRef,
    ) -> Result<(), RouterError> {
        let dests = route
            .get("route")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| crate::json::shape(object, path, "an array"))?;
        let subset_sum: i64 = dests
            .iter()
            .filter(|d| {
                matches!(
                    self.role(d.get("destination").unwrap_or(&Value::Null), w),
                    Role::AdditionalSubset
                )
            })
            .filter_map(|d| int_of(d, "weight"))
            .sum();
        let stable = (i64::from(TOTAL - w.canary - w.additional_sum()) - subset_sum).max(0);
        let mut seen = vec![false; w.additional.len()];
        let mut out = Vec::with_capacity(dests.len());
        for mut d in dests {
            let weight = match self.role(d.get("destination").unwrap_or(&Value::Null), w) {
                Role::Canary => i64::from(w.canary),
                Role::Stable => stable,
                Role::AdditionalSubset => {
                    out.push(d);
                    continue;
                }
                Role::Experiment(i) => {
                    seen[i] = true;
                    i64::from(w.additional[i].weight)
                }
                Role::Other => continue,
            };
            if let Value::Object(m) = &mut d {
                m.insert("weight".into(), json!(weight));
            }
            out.push(d);
        }
        let mut extra: Vec<&rollout_core::status::WeightDestination> = w
            .additional
            .iter()
            .zip(&seen)
            .filter(|(_, s)| !**s)
            .map(|(d, _)| d)
            .collect();
        extra.sort_by(|a, b| a.service_name.cmp(&b.service_name));
        for d in extra {
            out.push(json!({"destination": {"host": d.service_name}, "weight": d.weight}));
        }
        if let Value::Object(m) = route {
            m.insert("route".into(), Value::Array(out));
        }
        Ok(())
    }

    /// Flagger-style mirroring of a weighted route: with `Some(percentage)` the route
    /// mirrors to the canary (`mirrorPercentage` unless 100); with `None` a mirror to
    /// the canary is removed (a mirror elsewhere is the user's and stays).
    fn mirror(&self, route: &mut Value, canary: &Value, mirror: Option<i32>, w: &Weights) {
        let Value::Object(m) = route else {
            return;
        };
        match mirror {
            Some(p) => {
                m.insert("mirror".into(), canary.clone());
                if p == 100 {
                    m.shift_remove("mirrorPercentage");
                } else {
                    m.insert("mirrorPercentage".into(), json!({"value": p}));
                }
            }
            None => {
                if m.get("mirror")
                    .is_some_and(|d| matches!(self.role(d, w), Role::Canary))
                {
                    m.shift_remove("mirror");
                    m.shift_remove("mirrorPercentage");
                }
            }
        }
    }

    /// The canary destination header and mirror routes use: the one of the first
    /// weighted route, else the canary service (and subset).
    fn canary_destination(&self, http: &[Value], weighted: &[usize], w: &Weights) -> Value {
        let found = weighted.first().and_then(|&i| {
            http[i]
                .get("route")
                .and_then(Value::as_array)?
                .iter()
                .filter_map(|d| d.get("destination"))
                .find(|d| matches!(self.role(d, w), Role::Canary))
                .cloned()
        });
        found.unwrap_or_else(|| {
            let mut d = Map::new();
            d.insert("host".into(), json!(self.canary_service));
            if let Some(dr) = &self.destination_rule {
                d.insert("subset".into(), json!(dr.canary_subset_name));
            }
            Value::Object(d)
        })
    }

    fn managed(
        &self,
        http: Vec<Value>,
        weighted: &[usize],
        desired: &DesiredRoutes,
        object: &ObjectRef,
    ) -> Result<Vec<Value>, RouterError> {
        for name in desired
            .header_routes
            .iter()
            .map(|r| &r.name)
            .chain(desired.mirror_routes.iter().map(|r| &r.name))
        {
            if !self.managed_routes.contains(name) {
                return Err(RouterError::Invalid {
                    object: object.clone(),
                    message: format!("route {name:?} is not listed in managedRoutes"),
                });
            }
        }
        let canary = self.canary_destination(&http, weighted, &desired.weights);
        let split = weighted
            .first()
            .and_then(|&i| http[i].get("route"))
            .cloned()
            .unwrap_or_else(|| json!([{"destination": canary, "weight": 100}]));
        let mut out = Vec::with_capacity(http.len());
        for name in &self.managed_routes {
            if let Some(r) = desired.header_routes.iter().find(|r| &r.name == name) {
                out.push(header_route(r, &canary));
            } else if let Some(r) = desired.mirror_routes.iter().find(|r| &r.name == name) {
                out.push(mirror_route(r, &split, &canary));
            }
        }
        out.extend(
            http.into_iter()
                .filter(|r| !self.managed_routes.iter().any(|m| m == str_of(r, "name"))),
        );
        Ok(out)
    }
}

/// Istio's string match (`exact` / `prefix` / `regex`).
pub fn string_match(m: &StringMatch) -> Value {
    let mut out = Map::new();
    for (k, v) in [
        ("exact", &m.exact),
        ("prefix", &m.prefix),
        ("regex", &m.regex),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            out.insert(k.into(), json!(v));
        }
    }
    Value::Object(out)
}

/// The HTTP route of a `setHeaderRoute` step: its matches to the canary only.
pub fn header_route(route: &SetHeaderRoute, canary: &Value) -> Value {
    let headers: Map<String, Value> = route
        .r#match
        .iter()
        .map(|m| (m.header_name.clone(), string_match(&m.header_value)))
        .collect();
    json!({
        "name": route.name,
        "match": [{"headers": headers}],
        "route": [{"destination": canary, "weight": 100}],
    })
}

/// The HTTP route of a `setMirrorRoute` step: the current split, mirrored to the canary.
pub fn mirror_route(route: &SetMirrorRoute, split: &Value, canary: &Value) -> Value {
    let matches: Vec<Value> = route
        .r#match
        .iter()
        .map(|m| {
            let mut out = Map::new();
            if let Some(method) = &m.method {
                out.insert("method".into(), string_match(method));
            }
            if let Some(path) = &m.path {
                out.insert("uri".into(), string_match(path));
            }
            if !m.headers.is_empty() {
                let h: Map<String, Value> = m
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), string_match(v)))
                    .collect();
                out.insert("headers".into(), Value::Object(h));
            }
            Value::Object(out)
        })
        .collect();
    json!({
        "name": route.name,
        "match": matches,
        "route": split,
        "mirror": canary,
        "mirrorPercentage": {"value": route.percentage.unwrap_or(100)},
    })
}

fn tls_matches(route: &Value, port: Option<i64>, sni: &[String]) -> bool {
    route
        .get("match")
        .and_then(Value::as_array)
        .is_some_and(|ms| {
            ms.iter().any(|m| {
                port.is_none_or(|p| int_of(m, "port") == Some(p))
                    && sni.iter().all(|h| {
                        m.get("sniHosts")
                            .and_then(Value::as_array)
                            .is_some_and(|hs| hs.iter().any(|x| x.as_str() == Some(h)))
                    })
            })
        })
}

fn port_matches(route: &Value, port: Option<i64>) -> bool {
    match port {
        None => true,
        Some(p) => route
            .get("match")
            .and_then(Value::as_array)
            .is_some_and(|ms| ms.iter().any(|m| int_of(m, "port") == Some(p))),
    }
}

/// Plans the DestinationRule of subset-level splitting: the canary and stable subsets
/// get the `rollouts-pod-template-hash` label of their ReplicaSet, and the object the
/// `managed-by-rollouts` annotation. Other subsets and fields are left alone.
pub fn plan_destination_rule(
    live: &Value,
    config: &IstioDestinationRule,
    rollout: &str,
    weights: &Weights,
) -> Result<Plan, RouterError> {
    let object = ObjectRef::of("DestinationRule", live);
    let mut after = live.clone();
    for (subset, hash) in [
        (&config.canary_subset_name, &weights.canary_hash),
        (&config.stable_subset_name, &weights.stable_hash),
    ] {
        let subsets = array_mut(&mut after, "/spec/subsets", &object)?;
        let i = subsets
            .iter()
            .position(|s| str_of(s, "name") == subset)
            .ok_or_else(|| RouterError::SubsetNotFound {
                object: object.clone(),
                subset: subset.clone(),
            })?;
        if hash.is_empty() {
            continue;
        }
        let labels = object_mut(&mut after, &format!("/spec/subsets/{i}/labels"), &object)?;
        labels.insert(POD_TEMPLATE_HASH_LABEL.into(), json!(hash));
    }
    crate::json::set_annotation(&mut after, MANAGED_BY_ANNOTATION, rollout, &object)?;
    Ok(Plan::json(object, live, after))
}

/// The weights a VirtualService route carries: `(canary, stable)` of the first route
/// with both destinations, for verification and `GetRoutes`.
pub fn read_weights(
    live: &Value,
    canary_host: &str,
    stable_host: &str,
    section: &str,
) -> Option<(i64, i64)> {
    let routes = live.pointer(&format!("/spec/{section}"))?.as_array()?;
    routes.iter().find_map(|r| {
        let dests = r.get("route")?.as_array()?;
        let weight = |host: &str| {
            dests
                .iter()
                .find(|d| d.pointer("/destination/host").and_then(Value::as_str) == Some(host))
                .map(|d| int_of(d, "weight").unwrap_or(0))
        };
        Some((weight(canary_host)?, weight(stable_host)?))
    })
}
