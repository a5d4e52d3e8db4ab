//! Adapter for `argo/traffic_routers.json`: what Argo's Istio, SMI and Nginx routers
//! write for a desired weight, run through `rollout-traffic`'s planners.
//!
//! The vectors state routes in a short form (`{host, weight}` destinations, an Ingress
//! reduced to its annotations); the adapter builds the real objects around them, plans,
//! checks that the plan's patch applied to the live object gives the planned object,
//! and reads the asserted fields back from the planned object.

use std::collections::BTreeMap;

use rollout_core::spec::IstioVirtualService;
use rollout_core::status::WeightDestination;
use rollout_core::traffic::{DesiredRoutes, Weights};
use rollout_traffic::Patch;
use rollout_traffic::istio::VirtualServicePlanner;
use rollout_traffic::nginx::NginxPlanner;
use rollout_traffic::smi::{SmiPlanner, SmiVersion};
use serde_json::{Map, Value, json};

use super::{applied, str_list, subset};
use crate::json::{Res, actual, compare, opt_i32, opt_str, req_i32};
use crate::{Case, CaseResult};

/// Runs one case of `argo/traffic_routers.json`, dispatching on its `kind`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let result = match case.kind {
        "istio_virtualservice" => istio(case.input),
        "smi_trafficsplit" => smi(case),
        "nginx_canary_ingress" => nginx(case.input, case.expected),
        other => Err(format!("unknown kind {other:?}")),
    };
    match result {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

fn weights(input: &Value) -> Res<Weights> {
    let canary = req_i32(input, &["desired_weight"])?;
    let mut additional = Vec::new();
    if let Some(list) = input.get("additional").and_then(Value::as_array) {
        for a in list {
            additional.push(WeightDestination {
                weight: req_i32(a, &["weight"])?,
                service_name: opt_str(a, &["service"])?.unwrap_or_default().to_string(),
                pod_template_hash: String::new(),
            });
        }
    }
    let mut w = Weights::new(canary, 100);
    w.stable = 100 - canary - additional.iter().map(|d| d.weight).sum::<i32>();
    w.additional = additional;
    Ok(w)
}

fn istio(input: &Value) -> Res<Map<String, Value>> {
    let stable = opt_str(input, &["stable_service"])?.unwrap_or("stable");
    let canary = opt_str(input, &["canary_service"])?.unwrap_or("canary");
    let vs = input
        .get("virtual_service")
        .ok_or("cannot express case: no virtual_service")?;
    // Short destinations `{host, weight}` become Istio's `{destination: {host}, weight}`.
    let mut spec = vs.clone();
    for section in ["http", "tls", "tcp"] {
        if let Some(routes) = spec.get_mut(section).and_then(Value::as_array_mut) {
            for r in routes {
                if let Some(dests) = r.get_mut("route").and_then(Value::as_array_mut) {
                    for d in dests {
                        if let Some(host) = d.get("host").cloned() {
                            *d = json!({"destination": {"host": host}, "weight": d["weight"]});
                        }
                    }
                }
            }
        }
    }
    let live = json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "vsvc", "namespace": "default"},
        "spec": spec,
    });
    let planner = VirtualServicePlanner {
        stable_service: stable.into(),
        canary_service: canary.into(),
        virtual_service: IstioVirtualService {
            name: "vsvc".into(),
            routes: str_list(input.get("managed_http_routes"))?,
            ..IstioVirtualService::default()
        },
        ..VirtualServicePlanner::default()
    };
    let desired = DesiredRoutes {
        weights: weights(input)?,
        ..DesiredRoutes::default()
    };
    let plan = planner.plan(&live, &desired).map_err(|e| e.to_string())?;
    let after = applied(Some(&live), &plan)?;
    let mut http = Map::new();
    for r in after["spec"]["http"].as_array().into_iter().flatten() {
        let weight = |host: &str| {
            r["route"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["destination"]["host"] == host)
                .map_or(Value::Null, |d| d["weight"].clone())
        };
        http.insert(
            r["name"].as_str().unwrap_or_default().to_string(),
            json!({"canary": weight(canary), "stable": weight(stable)}),
        );
    }
    Ok(actual([("http", Value::Object(http))]))
}

fn smi(case: &Case<'_>) -> Res<Map<String, Value>> {
    let input = case.input;
    let subcase = case
        .raw
        .pointer("/source/subcase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = SmiVersion::from_api_version(subcase)
        .ok_or_else(|| format!("cannot express case: no SMI version in subcase {subcase:?}"))?;
    let planner = SmiPlanner {
        rollout: opt_str(input, &["rollout_name"])?
            .unwrap_or_default()
            .into(),
        namespace: "default".into(),
        stable_service: opt_str(input, &["stable_service"])?
            .unwrap_or_default()
            .into(),
        canary_service: opt_str(input, &["canary_service"])?
            .unwrap_or_default()
            .into(),
        root_service: opt_str(input, &["root_service"])?.map(String::from),
        traffic_split_name: opt_str(input, &["traffic_split_name"])?.map(String::from),
        version,
        ..SmiPlanner::default()
    };
    let desired = DesiredRoutes {
        weights: weights(input)?,
        ..DesiredRoutes::default()
    };
    let exists = input
        .get("exists")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let live = if exists {
        let p = planner
            .plan(None, &DesiredRoutes::stable(100))
            .map_err(|e| e.to_string())?;
        Some(p.after)
    } else {
        None
    };
    let plan = planner
        .plan(live.as_ref(), &desired)
        .map_err(|e| e.to_string())?;
    let action = match plan.patch {
        Patch::Create(_) => "create",
        Patch::None => "none",
        _ => "patch",
    };
    let after = applied(live.as_ref(), &plan)?;
    let backends: Vec<Value> = rollout_traffic::smi::read_backends(&after)
        .into_iter()
        .map(|(service, weight)| json!({"service": service, "weight": weight}))
        .collect();
    let weight_type_ok = after["spec"]["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|b| b["weight"].is_string() == (version == SmiVersion::V1Alpha1));
    if !weight_type_ok {
        return Err(format!(
            "weights of {subcase} written as the wrong type: {after}"
        ));
    }
    Ok(actual([
        ("action", json!(action)),
        ("name", after["metadata"]["name"].clone()),
        ("spec_service", after["spec"]["service"].clone()),
        ("backends", Value::Array(backends)),
    ]))
}

fn stable_ingress(name: &str, service: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default",
                     "annotations": {"kubernetes.io/ingress.class": "nginx"}},
        "spec": {"rules": [{"host": "fakehost.example.com", "http": {"paths": [{
            "path": "/foo", "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": service, "port": {"name": "use-annotation"}}}}]}}]}
    })
}

fn string_map(v: Option<&Value>) -> Res<BTreeMap<String, String>> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| format!("cannot express map {v}: {e}"))
        }
    }
}

fn nginx(input: &Value, expected: &Value) -> Res<Map<String, Value>> {
    let stable_name = opt_str(input, &["stable_ingress"])?.unwrap_or("stable-ingress");
    let stable_service = opt_str(input, &["stable_service"])?.unwrap_or("stable-service");
    let planner = NginxPlanner {
        rollout: opt_str(input, &["rollout_name"])?
            .unwrap_or("rollout")
            .into(),
        stable_service: stable_service.into(),
        canary_service: opt_str(input, &["canary_service"])?
            .unwrap_or("canary-service")
            .into(),
        annotation_prefix: opt_str(input, &["annotation_prefix"])?.map(String::from),
        additional_ingress_annotations: string_map(input.get("additional_ingress_annotations"))?,
        canary_ingress_annotations: string_map(input.get("canary_ingress_annotations"))?,
        max_traffic_weight: opt_i32(input, &["max_traffic_weight"])?,
    };
    let mut stable = stable_ingress(stable_name, stable_service);
    let existing = match input.get("existing_canary_annotations") {
        None | Some(Value::Null) => None,
        Some(anns) => {
            // The existing canary Ingress: what the router created, with the
            // annotations the case gives.
            stable["metadata"]
                .as_object_mut()
                .map(|m| m.shift_remove("annotations"));
            let mut c = planner
                .desired_canary(&stable, 0)
                .map_err(|e| e.to_string())?;
            c["metadata"]["annotations"] = anns.clone();
            Some(c)
        }
    };
    let desired = DesiredRoutes {
        weights: Weights::new(req_i32(input, &["desired_weight"])?, 100),
        ..DesiredRoutes::default()
    };
    let plan = planner
        .plan(&stable, existing.as_ref(), &desired)
        .map_err(|e| e.to_string())?;
    let after = applied(existing.as_ref(), &plan)?;
    let mut got = Map::new();
    for key in expected
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
    {
        let v = match key {
            "canary_ingress_name" => after["metadata"]["name"].clone(),
            "backend_service" => after
                .pointer("/spec/rules/0/http/paths/0/backend/service/name")
                .cloned()
                .unwrap_or(Value::Null),
            "annotations_include" => subset(
                &after["metadata"]["annotations"],
                &expected["annotations_include"],
            ),
            "merge_patch" => match &plan.patch {
                Patch::Merge(m) => {
                    // Equal as JSON to the expected text: report the expected text.
                    let want: Value = serde_json::from_str(expected[key].as_str().unwrap_or(""))
                        .map_err(|e| format!("cannot express merge_patch: {e}"))?;
                    if *m == want {
                        expected[key].clone()
                    } else {
                        json!(m.to_string())
                    }
                }
                other => json!(format!("{other:?}")),
            },
            other => return Err(format!("cannot express expected key {other:?}")),
        };
        got.insert(key.to_string(), v);
    }
    Ok(got)
}
