//! Properties of every planner: a plan's patch (applied by an independent RFC 6902 /
//! RFC 7386 implementation, the `json-patch` crate) gives the planned object; planning
//! that object again gives no patch; fields the router does not own survive byte for
//! byte; and the weights of every planned split sum to the router's total.

use proptest::prelude::*;
use rollout_core::flagger::machine::Routes;
use rollout_core::spec::{
    HeaderRoutingMatch, IstioVirtualService, RouteMatch, SetHeaderRoute, SetMirrorRoute,
    StringMatch,
};
use rollout_core::status::WeightDestination;
use rollout_core::traffic::{DesiredRoutes, Weights};
use rollout_traffic::flagger::FlaggerRouting;
use rollout_traffic::gateway::HttpRoutePlanner;
use rollout_traffic::istio::VirtualServicePlanner;
use rollout_traffic::nginx::NginxPlanner;
use rollout_traffic::smi::{SmiPlanner, SmiVersion};
use rollout_traffic::{Patch, Plan};
use serde_json::{Value, json};

/// Applies a patch with the `json-patch` crate (not the crate's own applier).
fn send(live: Option<&Value>, patch: &Patch) -> Value {
    match (live, patch) {
        (_, Patch::Create(v)) => v.clone(),
        (Some(l), Patch::None) => l.clone(),
        (Some(l), Patch::Json(_)) => {
            let mut doc = l.clone();
            let ops: Vec<json_patch::PatchOperation> =
                serde_json::from_value(patch.body()).expect("valid JSON patch");
            json_patch::patch(&mut doc, &ops).expect("the patch applies");
            doc
        }
        (Some(l), Patch::Merge(m)) => {
            let mut doc = l.clone();
            json_patch::merge(&mut doc, m);
            doc
        }
        (_, other) => panic!("cannot send {other:?} here"),
    }
}

fn check_plan(live: Option<&Value>, plan: &Plan) -> Value {
    let after = send(live, &plan.patch);
    assert_eq!(after, plan.after, "the patch gives the planned object");
    after
}

/// An arbitrary JSON value no router owns.
fn foreign() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[a-z/~ .]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z~/]{1,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn weights() -> impl Strategy<Value = Weights> {
    (0..=100i32, prop::collection::vec(0..=20i32, 0..3)).prop_map(|(canary, extra)| {
        let mut w = Weights::new(canary, 100);
        let mut left = 100 - canary;
        for (i, e) in extra.into_iter().enumerate() {
            let e = e.min(left);
            left -= e;
            w.additional.push(WeightDestination {
                weight: e,
                service_name: format!("exp-{i}"),
                pod_template_hash: String::new(),
            });
        }
        w.stable = left;
        w
    })
}

fn header(name: &str, value: &str) -> SetHeaderRoute {
    SetHeaderRoute {
        name: name.into(),
        r#match: vec![HeaderRoutingMatch {
            header_name: "x-canary".into(),
            header_value: StringMatch {
                exact: Some(value.into()),
                ..StringMatch::default()
            },
        }],
    }
}

fn mirror(name: &str, pct: i32) -> SetMirrorRoute {
    SetMirrorRoute {
        name: name.into(),
        r#match: vec![RouteMatch {
            path: Some(StringMatch {
                prefix: Some("/api".into()),
                ..StringMatch::default()
            }),
            ..RouteMatch::default()
        }],
        percentage: Some(pct),
    }
}

fn desired() -> impl Strategy<Value = DesiredRoutes> {
    (
        weights(),
        any::<bool>(),
        prop::option::of(1..=100i32),
        prop::option::of(1..=100i32),
    )
        .prop_map(|(weights, h, m, flagger_mirror)| DesiredRoutes {
            weights,
            header_routes: if h {
                vec![header("set-header", "yes")]
            } else {
                vec![]
            },
            mirror_routes: m.map(|p| vec![mirror("set-mirror", p)]).unwrap_or_default(),
            mirror: flagger_mirror,
        })
}

fn virtual_service(user_routes: usize, extra: &Value) -> Value {
    let mut http = vec![json!({
        "name": "primary",
        "x-foreign": extra,
        "route": [
            {"destination": {"host": "stable.default.svc.cluster.local", "port": {"number": 80}}, "weight": 100},
            {"destination": {"host": "canary"}, "weight": 0, "headers": extra},
        ],
    })];
    for i in 0..user_routes {
        http.push(json!({"name": format!("user-{i}"), "x": extra,
            "route": [{"destination": {"host": "other"}, "weight": 100}]}));
    }
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "default", "annotations": {"a/b": "c"}, "x": extra},
        "spec": {"hosts": ["web"], "gateways": ["mesh"], "http": http, "x-spec": extra},
        "status": extra,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn istio_plans_are_idempotent_keep_foreign_fields_and_sum_to_100(
        d in desired(), users in 0..3usize, extra in foreign()
    ) {
        let live = virtual_service(users, &extra);
        let planner = VirtualServicePlanner {
            stable_service: "stable".into(),
            canary_service: "canary".into(),
            virtual_service: IstioVirtualService {
                name: "vs".into(),
                routes: vec!["primary".into()],
                ..IstioVirtualService::default()
            },
            destination_rule: None,
            managed_routes: vec!["set-header".into(), "set-mirror".into()],
        };
        let plan = planner.plan(&live, &d).unwrap();
        let after = check_plan(Some(&live), &plan);
        prop_assert!(planner.plan(&after, &d).unwrap().is_noop());
        // Foreign fields, byte for byte.
        for p in ["/metadata", "/status", "/spec/hosts", "/spec/gateways", "/spec/x-spec"] {
            prop_assert_eq!(
                serde_json::to_string(&after.pointer(p)).unwrap(),
                serde_json::to_string(&live.pointer(p)).unwrap()
            );
        }
        let http = after["spec"]["http"].as_array().unwrap();
        let managed = d.header_routes.len() + d.mirror_routes.len();
        prop_assert_eq!(http.len(), 1 + users + managed);
        for (i, r) in http[managed + 1..].iter().enumerate() {
            prop_assert_eq!(r, &live["spec"]["http"][i + 1]);
        }
        let primary = &http[managed];
        prop_assert_eq!(&primary["x-foreign"], &extra);
        let sum: i64 = primary["route"].as_array().unwrap().iter()
            .map(|r| r["weight"].as_i64().unwrap()).sum();
        prop_assert_eq!(sum, 100);
        prop_assert_eq!(&primary["route"][1]["headers"], &extra);
    }

    #[test]
    fn smi_plans_are_idempotent_and_sum_to_the_total(
        w in weights(), v1 in any::<bool>(), extra in foreign()
    ) {
        let planner = SmiPlanner {
            rollout: "web".into(),
            namespace: "default".into(),
            stable_service: "stable".into(),
            canary_service: "canary".into(),
            version: if v1 { SmiVersion::V1Alpha1 } else { SmiVersion::V1Alpha3 },
            ..SmiPlanner::default()
        };
        let d = DesiredRoutes { weights: w, ..DesiredRoutes::default() };
        let created = planner.plan(None, &DesiredRoutes::stable(100)).unwrap();
        let mut live = check_plan(None, &created);
        live["metadata"]["labels"] = json!({"x": "y"});
        live["spec"]["matches"] = extra.clone();
        let plan = planner.plan(Some(&live), &d).unwrap();
        let after = check_plan(Some(&live), &plan);
        prop_assert!(planner.plan(Some(&after), &d).unwrap().is_noop());
        prop_assert_eq!(&after["spec"]["matches"], &extra);
        prop_assert_eq!(&after["metadata"], &live["metadata"]);
        let sum: i64 = rollout_traffic::smi::read_backends(&after).iter().map(|b| b.1).sum();
        prop_assert_eq!(sum, 100);
    }

    #[test]
    fn nginx_plans_are_idempotent_and_keep_foreign_annotations(
        weight in 0..=100i32, total in prop::option::of(100..=1000i32), extra in foreign()
    ) {
        let stable = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example.com",
                "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "stable", "port": {"number": 80}}}}]}}]},
        });
        let planner = NginxPlanner {
            rollout: "ro".into(),
            stable_service: "stable".into(),
            canary_service: "canary".into(),
            max_traffic_weight: total,
            ..NginxPlanner::default()
        };
        let weight = weight * total.unwrap_or(100) / 100;
        let d = DesiredRoutes { weights: Weights::new(weight, total.unwrap_or(100)), ..DesiredRoutes::default() };
        let created = planner.plan(&stable, None, &DesiredRoutes::stable(100)).unwrap();
        let mut live = check_plan(None, &created);
        live["metadata"]["annotations"]["other.controller/state"] = json!("kept");
        live["metadata"]["x"] = extra.clone();
        live["status"] = extra.clone();
        let plan = planner.plan(&stable, Some(&live), &d).unwrap();
        prop_assert!(matches!(plan.patch, Patch::Merge(_) | Patch::None));
        let after = check_plan(Some(&live), &plan);
        prop_assert!(planner.plan(&stable, Some(&after), &d).unwrap().is_noop());
        prop_assert_eq!(&after["metadata"]["annotations"]["other.controller/state"], &json!("kept"));
        prop_assert_eq!(&after["metadata"]["x"], &extra);
        prop_assert_eq!(&after["status"], &extra);
        prop_assert_eq!(planner.read_weight(&after), Some(weight));
    }

    #[test]
    fn gateway_plans_are_idempotent_keep_foreign_rules_and_sum_to_the_total(
        d in desired(), extra in foreign()
    ) {
        let live = json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "default", "generation": 3},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "x": extra,
                 "backendRefs": [{"name": "stable", "port": 80, "weight": 100},
                                 {"name": "canary", "port": 80, "weight": 0}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                 "backendRefs": [{"name": "other", "port": 80}]},
            ]},
            "status": extra,
        });
        let planner = HttpRoutePlanner {
            stable_service: "stable".into(),
            canary_service: "canary".into(),
            managed_routes: vec!["set-header".into(), "set-mirror".into()],
        };
        let plan = planner.plan(&live, &d).unwrap();
        let after = check_plan(Some(&live), &plan);
        prop_assert!(planner.plan(&after, &d).unwrap().is_noop());
        let rules = after["spec"]["rules"].as_array().unwrap();
        let managed = d.header_routes.len() + d.mirror_routes.len();
        prop_assert_eq!(&rules[managed + 1], &live["spec"]["rules"][1]);
        prop_assert_eq!(&rules[managed]["x"], &extra);
        prop_assert_eq!(&after["status"], &extra);
        let sum: i64 = rules[managed]["backendRefs"].as_array().unwrap().iter()
            .map(|b| b["weight"].as_i64().unwrap()).sum();
        prop_assert_eq!(sum, i64::from(d.weights.total));
    }

    #[test]
    fn flagger_set_routes_are_idempotent_and_sum_to_100(
        canary in 0..=100i32, mirrored in any::<bool>(), ab in any::<bool>()
    ) {
        let routes = Routes::new(100 - canary, canary, mirrored);
        let mut r = FlaggerRouting {
            namespace: "default".into(),
            target: "podinfo".into(),
            ..FlaggerRouting::default()
        };
        r.service.port = 9898;
        r.service.gateway_refs = serde_json::from_value(json!([{"name": "gw"}])).unwrap();
        if ab {
            r.analysis.match_ = serde_json::from_value(
                json!([{"headers": {"x-user": {"exact": "test"}}}])).unwrap();
        }
        let cookies = rollout_traffic::flagger::istio::SessionCookies::default();
        let vs = check_plan(None, &rollout_traffic::flagger::istio::reconcile(None, &r, &cookies).unwrap());
        let plan = rollout_traffic::flagger::istio::set_routes(&vs, &r, routes, &cookies).unwrap();
        let after = check_plan(Some(&vs), &plan);
        prop_assert!(rollout_traffic::flagger::istio::set_routes(&after, &r, routes, &cookies).unwrap().is_noop());
        let got = rollout_traffic::flagger::istio::get_routes(&after, &r).unwrap();
        prop_assert_eq!((got.primary, got.canary), (routes.primary, routes.canary));
        prop_assert_eq!(got.primary + got.canary, 100);

        let hr = check_plan(None, &rollout_traffic::flagger::gateway::reconcile(None, &r, false).unwrap());
        let plan = rollout_traffic::flagger::gateway::set_routes(&hr, &r, routes).unwrap();
        let after = check_plan(Some(&hr), &plan);
        prop_assert!(rollout_traffic::flagger::gateway::set_routes(&after, &r, routes).unwrap().is_noop());
        let got = rollout_traffic::flagger::gateway::read_routes(&after, &r).unwrap();
        prop_assert_eq!(got.primary + got.canary, 100);
    }
}
