//! Flagger's Istio objects: DestinationRules `<apex>-primary` and `<apex>-canary`, and
//! the VirtualService `<apex>`.
//!
//! The VirtualService's hosts are the apex and `service.hosts`, its gateways
//! `service.gateways` (default `mesh`). Its HTTP route carries `service.match`,
//! `rewrite`, `timeout`, `retries`, `corsPolicy` and `headers`, and routes to the
//! primary and the canary (with `port.number` when `portDiscovery` is set and the first
//! gateway is not `mesh`, or with delegation). Mirroring adds `mirror` (the canary) and
//! `mirrorPercentage` (`mirrorWeight`, when positive). A/B testing puts the analysis
//! matches (combined with the service matches) on a first route and the service matches
//! on a second one to the primary only. With `appProtocol: tcp` the route is a TCP
//! route. Session affinity adds a sticky route matching the canary cookie and makes the
//! weighted route set it (the cookie value is an argument: the caller draws it).

use rollout_core::flagger::machine::Routes;
use rollout_core::flagger::spec::SessionAffinity;
use serde_json::{Map, Value, json};

use super::{FlaggerRouting, matches_json, weight};
use crate::error::{ObjectRef, RouterError};
use crate::json::{int_of, str_of};
use crate::patch::Plan;

/// The annotation holding the VirtualService spec Flagger found before taking it over.
pub const ORIGINAL_CONFIGURATION: &str = "flagger.kubernetes.io/original-configuration";
/// kubectl's last-applied annotation (wins over [`ORIGINAL_CONFIGURATION`]).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const API_VERSION: &str = "networking.istio.io/v1beta1";

/// The session affinity cookies of a run (`status.sessionAffinityCookie` and
/// `status.previousSessionAffinityCookie`), each `<name>=<value>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionCookies {
    /// The cookie routing sticky clients to the canary (empty: none).
    pub current: String,
    /// The cookie of the previous run, expired once the canary weight is back to 0.
    pub previous: String,
}

impl SessionCookies {
    /// Advances the cookies for a canary weight: a new cookie `<cookieName>=<value>`
    /// when traffic starts going to the canary, the current one moved to `previous`
    /// when it stops. `value` is the random part (Flagger draws 10 ASCII letters).
    pub fn advance(&mut self, affinity: &SessionAffinity, canary_weight: i32, value: &str) {
        if canary_weight > 0 && self.current.is_empty() {
            self.current = format!("{}={value}", affinity.cookie_name);
        } else if canary_weight == 0 && !self.current.is_empty() {
            self.previous = std::mem::take(&mut self.current);
        }
    }
}

fn cookie_attributes(a: &SessionAffinity, cookie: &str, max_age: i64) -> String {
    let mut s = format!("{cookie}; Max-Age={max_age}");
    if let Some(d) = a.domain.as_deref().filter(|d| !d.is_empty()) {
        s.push_str(&format!("; Domain={d}"));
    }
    if a.http_only {
        s.push_str("; HttpOnly");
    }
    if a.partitioned {
        s.push_str("; Partitioned");
    }
    if let Some(p) = a.path.as_deref().filter(|p| !p.is_empty()) {
        s.push_str(&format!("; Path={p}"));
    }
    if let Some(p) = a.same_site.as_deref().filter(|p| !p.is_empty()) {
        s.push_str(&format!("; SameSite={p}"));
    }
    if a.secure {
        s.push_str("; Secure");
    }
    s
}

fn cookie_regex(cookie: &str) -> String {
    let (name, value) = cookie.split_once('=').unwrap_or((cookie, ""));
    format!(".*{name}.*{value}.*")
}

/// The two DestinationRules (`<apex>-canary`, `<apex>-primary`).
pub fn destination_rules(r: &FlaggerRouting) -> [Value; 2] {
    [r.canary(), r.primary()].map(|name| {
        let mut spec = Map::new();
        spec.insert("host".into(), json!(name));
        if let Some(tp) = &r.service.traffic_policy {
            spec.insert("trafficPolicy".into(), tp.clone());
        }
        json!({
            "apiVersion": API_VERSION,
            "kind": "DestinationRule",
            "metadata": r.metadata(&name),
            "spec": spec,
        })
    })
}

fn is_tcp(r: &FlaggerRouting) -> bool {
    r.service
        .app_protocol
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("tcp"))
}

fn gateways(r: &FlaggerRouting) -> Vec<String> {
    if r.service.delegation {
        Vec::new()
    } else if r.service.gateways.is_empty() {
        vec!["mesh".into()]
    } else {
        r.service.gateways.clone()
    }
}

fn destination(r: &FlaggerRouting, host: &str, w: i32) -> Value {
    let gw = gateways(r);
    let mut dest = Map::new();
    dest.insert("host".into(), json!(host));
    if r.service.port_discovery && (r.service.delegation || gw.first().is_some_and(|g| g != "mesh"))
    {
        dest.insert("port".into(), json!({"number": r.service.port}));
    }
    json!({"destination": dest, "weight": weight(w)})
}

/// The VirtualService spec for these routes (and cookies, with session affinity).
pub fn virtual_service_spec(
    r: &FlaggerRouting,
    routes: Routes,
    cookies: &SessionCookies,
) -> Result<Value, RouterError> {
    let object = ObjectRef::new("VirtualService", &r.namespace, r.apex());
    let svc = &r.service;
    if svc.delegation && (!svc.hosts.is_empty() || !svc.gateways.is_empty()) {
        return Err(RouterError::Invalid {
            object,
            message: "a delegate VirtualService cannot have hosts or gateways".into(),
        });
    }
    let mut spec = Map::new();
    if !svc.delegation {
        let mut hosts = vec![r.apex().to_string()];
        hosts.extend(svc.hosts.iter().filter(|h| *h != r.apex()).cloned());
        spec.insert("hosts".into(), json!(hosts));
        spec.insert("gateways".into(), json!(gateways(r)));
    } else {
        spec.insert("hosts".into(), json!([]));
    }
    let primary = r.primary();
    let canary = r.canary();
    let split = || {
        json!([
            destination(r, &primary, routes.primary),
            destination(r, &canary, routes.canary)
        ])
    };
    if is_tcp(r) {
        let ports: Vec<Value> = svc
            .match_
            .iter()
            .filter_map(|m| m.port)
            .map(|p| json!({"port": p}))
            .collect();
        let mut route = Map::new();
        if !ports.is_empty() {
            route.insert("match".into(), Value::Array(ports));
        }
        route.insert("route".into(), split());
        spec.insert("tcp".into(), json!([route]));
        return Ok(Value::Object(spec));
    }
    let base = |matches: Vec<Value>| {
        let mut m = Map::new();
        if !matches.is_empty() {
            m.insert("match".into(), Value::Array(matches));
        }
        for (k, v) in [
            ("rewrite", svc.rewrite.as_ref().map(serde_json::to_value)),
            ("timeout", svc.timeout.as_ref().map(serde_json::to_value)),
            ("retries", svc.retries.as_ref().map(serde_json::to_value)),
            (
                "corsPolicy",
                svc.cors_policy.as_ref().map(serde_json::to_value),
            ),
            ("headers", svc.headers.as_ref().map(serde_json::to_value)),
        ] {
            if let Some(Ok(v)) = v {
                m.insert(k.into(), v);
            }
        }
        m
    };
    let service_matches = matches_json(&svc.match_);
    let mut http = Vec::new();
    if r.is_ab() {
        let mut ab = base(matches_json(&r.merged_matches()));
        ab.insert("route".into(), split());
        http.push(Value::Object(ab));
        let mut rest = base(service_matches);
        rest.insert(
            "route".into(),
            json!([destination(r, &primary, routes.primary)]),
        );
        http.push(Value::Object(rest));
        return Ok(finish(spec, http));
    }
    let affinity = r.analysis.session_affinity.as_ref();
    if affinity.is_some() {
        let sticky_cookie = if routes.canary > 0 {
            &cookies.current
        } else {
            &cookies.previous
        };
        if !sticky_cookie.is_empty() {
            let mut matches: Vec<Value> = if service_matches.is_empty() {
                vec![json!({})]
            } else {
                service_matches.clone()
            };
            for m in &mut matches {
                if let Value::Object(m) = m {
                    let headers = m.entry("headers").or_insert_with(|| json!({}));
                    headers["Cookie"] = json!({"regex": cookie_regex(sticky_cookie)});
                }
            }
            let mut sticky = base(matches);
            if routes.canary > 0 {
                sticky.insert(
                    "route".into(),
                    json!([destination(r, &primary, 0), destination(r, &canary, 100)]),
                );
            } else {
                sticky.insert(
                    "route".into(),
                    json!([destination(r, &primary, 100), destination(r, &canary, 0)]),
                );
                let expire = format!("{sticky_cookie}; Max-Age=-1");
                let headers = sticky.entry("headers").or_insert_with(|| json!({}));
                headers["response"]["add"]["Set-Cookie"] = json!(expire);
            }
            http.push(Value::Object(sticky));
        }
    }
    let mut main = base(service_matches);
    let mut route = split();
    if let (Some(a), true) = (affinity, routes.canary > 0 && !cookies.current.is_empty()) {
        let set = cookie_attributes(a, &cookies.current, a.max_age.unwrap_or(86400));
        route[1]["headers"] = json!({"response": {"add": {"Set-Cookie": set}}});
    }
    main.insert("route".into(), route);
    if routes.mirrored {
        main.insert("mirror".into(), json!({"host": canary}));
        if let Some(w) = r.mirror_weight() {
            main.insert("mirrorPercentage".into(), json!({"value": w}));
        }
    }
    http.push(Value::Object(main));
    Ok(finish(spec, http))
}

fn finish(mut spec: Map<String, Value>, http: Vec<Value>) -> Value {
    spec.insert("http".into(), Value::Array(http));
    Value::Object(spec)
}

/// The routes of a live VirtualService: the weights of the route that sends to the
/// canary, and whether it mirrors to the canary.
pub fn get_routes(live: &Value, r: &FlaggerRouting) -> Result<Routes, RouterError> {
    let object = ObjectRef::of("VirtualService", live);
    let canary = r.canary();
    let primary = r.primary();
    for section in ["http", "tcp"] {
        let Some(routes) = live
            .pointer(&format!("/spec/{section}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for route in routes {
            let Some(dests) = route.get("route").and_then(Value::as_array) else {
                continue;
            };
            let w = |host: &str| {
                dests
                    .iter()
                    .find(|d| d.pointer("/destination/host").and_then(Value::as_str) == Some(host))
                    .map(|d| int_of(d, "weight").unwrap_or(0) as i32)
            };
            if let Some(c) = w(&canary) {
                let mirrored = route
                    .get("mirror")
                    .is_some_and(|m| str_of(m, "host") == canary);
                // Skip the sticky route (everything to the canary by cookie).
                if route.pointer("/match/0/headers/Cookie").is_some() {
                    continue;
                }
                return Ok(Routes::new(w(&primary).unwrap_or(0), c, mirrored));
            }
        }
    }
    Err(RouterError::RouteNotFound {
        object,
        kind: "http",
        route: format!("with destination {canary}"),
    })
}

/// Creates the VirtualService, or brings the live one back to the generated spec,
/// keeping its routes (weights, mirroring). When Flagger takes over a VirtualService
/// it did not create (no `Canary` owner), the spec it found is stored in
/// [`ORIGINAL_CONFIGURATION`] unless kubectl's annotation holds it.
pub fn reconcile(
    live: Option<&Value>,
    r: &FlaggerRouting,
    cookies: &SessionCookies,
) -> Result<Plan, RouterError> {
    let Some(live) = live else {
        let spec = virtual_service_spec(r, Routes::PRIMARY, cookies)?;
        let obj = json!({
            "apiVersion": API_VERSION,
            "kind": "VirtualService",
            "metadata": r.metadata(r.apex()),
            "spec": spec,
        });
        return Ok(Plan::create(
            ObjectRef::new("VirtualService", &r.namespace, r.apex()),
            obj,
        ));
    };
    let object = ObjectRef::of("VirtualService", live);
    let routes = get_routes(live, r).unwrap_or(Routes::PRIMARY);
    let spec = virtual_service_spec(r, routes, cookies)?;
    let mut after = live.clone();
    let anns = live.pointer("/metadata/annotations");
    let stored = anns
        .is_some_and(|a| a.get(ORIGINAL_CONFIGURATION).is_some() || a.get(LAST_APPLIED).is_some());
    if !stored
        && !r.owns(live)
        && let Some(old) = live.get("spec")
    {
        let text = serde_json::to_string(old).unwrap_or_default();
        crate::json::set_annotation(&mut after, ORIGINAL_CONFIGURATION, &text, &object)?;
    }
    after["spec"] = spec;
    Ok(Plan::json(object, live, after))
}

/// Writes the routes (from the machine's `SetRoutes`) into the live VirtualService.
pub fn set_routes(
    live: &Value,
    r: &FlaggerRouting,
    routes: Routes,
    cookies: &SessionCookies,
) -> Result<Plan, RouterError> {
    let object = ObjectRef::of("VirtualService", live);
    let spec = virtual_service_spec(r, routes, cookies)?;
    let mut after = live.clone();
    let out = crate::json::object_mut(&mut after, "/spec", &object)?;
    for key in ["http", "tcp"] {
        match spec.get(key) {
            Some(v) => {
                out.insert(key.into(), v.clone());
            }
            None => {
                out.shift_remove(key);
            }
        }
    }
    Ok(Plan::json(object, live, after))
}

/// Restores the VirtualService spec stored before Flagger took it over (kubectl's
/// last-applied configuration first, then [`ORIGINAL_CONFIGURATION`]); `None` when
/// neither is there (the object is left as it is).
pub fn finalize(live: Option<&Value>, name: &ObjectRef) -> Result<Option<Plan>, RouterError> {
    let live = live.ok_or_else(|| RouterError::NotFound {
        object: name.clone(),
    })?;
    let object = ObjectRef::of("VirtualService", live);
    let anns = live.pointer("/metadata/annotations");
    let stored = |key: &str| anns.and_then(|a| a.get(key)).and_then(Value::as_str);
    let spec = if let Some(text) = stored(LAST_APPLIED) {
        let v: Value = serde_json::from_str(text).map_err(|e| RouterError::Invalid {
            object: object.clone(),
            message: format!("annotation {LAST_APPLIED}: {e}"),
        })?;
        v.get("spec").cloned()
    } else if let Some(text) = stored(ORIGINAL_CONFIGURATION) {
        Some(
            serde_json::from_str(text).map_err(|e| RouterError::Invalid {
                object: object.clone(),
                message: format!("annotation {ORIGINAL_CONFIGURATION}: {e}"),
            })?,
        )
    } else {
        None
    };
    Ok(spec.map(|spec| {
        let mut after = live.clone();
        after["spec"] = spec;
        Plan::json(object, live, after)
    }))
}
