//! Router behaviour beyond the conformance vectors: subset-level splitting, TLS / TCP
//! routes, managed header and mirror routes, ownership and the typed errors.

use rollout_core::spec::{
    HeaderRoutingMatch, IstioDestinationRule, IstioTcpRoute, IstioTlsRoute, IstioVirtualService,
    RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use rollout_core::traffic::{DesiredRoutes, TrafficCommand, Verification, Weights};
use rollout_traffic::gateway::HttpRoutePlanner;
use rollout_traffic::istio::{VirtualServicePlanner, plan_destination_rule};
use rollout_traffic::linkerd::LinkerdPlanner;
use rollout_traffic::nginx::NginxPlanner;
use rollout_traffic::smi::{SmiPlanner, SmiVersion};
use rollout_traffic::{Patch, RouterError, verify};
use serde_json::{Value, json};

fn exact(v: &str) -> StringMatch {
    StringMatch {
        exact: Some(v.into()),
        ..StringMatch::default()
    }
}

fn weights(canary: i32) -> DesiredRoutes {
    DesiredRoutes {
        weights: Weights::new(canary, 100),
        ..DesiredRoutes::default()
    }
}

fn vs() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "default"},
        "spec": {
            "hosts": ["web"],
            "http": [
                {"name": "primary", "route": [
                    {"destination": {"host": "web", "subset": "stable"}, "weight": 100},
                    {"destination": {"host": "web", "subset": "canary"}, "weight": 0}]},
                {"name": "other", "route": [{"destination": {"host": "other"}}]}
            ],
            "tls": [{"match": [{"port": 443, "sniHosts": ["web.example.com"]}], "route": [
                {"destination": {"host": "web", "subset": "stable"}, "weight": 100},
                {"destination": {"host": "web", "subset": "canary"}, "weight": 0}]}],
            "tcp": [{"match": [{"port": 5000}], "route": [
                {"destination": {"host": "web", "subset": "stable"}, "weight": 100},
                {"destination": {"host": "web", "subset": "canary"}, "weight": 0}]}]
        }
    })
}

fn istio_planner() -> VirtualServicePlanner {
    VirtualServicePlanner {
        stable_service: "web-stable".into(),
        canary_service: "web-canary".into(),
        virtual_service: IstioVirtualService {
            name: "default/vs".into(),
            routes: vec!["primary".into()],
            tls_routes: vec![IstioTlsRoute {
                port: Some(443),
                sni_hosts: vec!["web.example.com".into()],
            }],
            tcp_routes: vec![IstioTcpRoute { port: Some(5000) }],
        },
        destination_rule: Some(IstioDestinationRule {
            name: "web".into(),
            canary_subset_name: "canary".into(),
            stable_subset_name: "stable".into(),
            additional_subset_names: vec![],
        }),
        managed_routes: vec!["header".into(), "mirror".into()],
    }
}

#[test]
fn istio_subset_level_split_covers_http_tls_and_tcp() {
    let live = vs();
    let plan = istio_planner().plan(&live, &weights(30)).unwrap();
    for section in ["http", "tls", "tcp"] {
        let route = &plan.after["spec"][section][0]["route"];
        assert_eq!(route[0]["weight"], 70, "{section}");
        assert_eq!(route[1]["weight"], 30, "{section}");
    }
    assert_eq!(plan.after["spec"]["http"][1], live["spec"]["http"][1]);
    // Each changed route is tested before it is edited.
    let Patch::Json(ops) = &plan.patch else {
        panic!("a JSON patch")
    };
    let body = serde_json::to_value(ops).unwrap();
    assert_eq!(
        body[0],
        json!({"op": "test", "path": "/spec/http/0", "value": live["spec"]["http"][0]})
    );
    assert_eq!(
        body[1],
        json!({"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 70})
    );
    assert_eq!(
        verify(&istio_planner().plan(&plan.after, &weights(30))),
        Verification::Verified
    );
    assert!(matches!(
        verify(&istio_planner().plan(&live, &weights(30))),
        Verification::NotVerified(_)
    ));
}

#[test]
fn istio_managed_routes_come_first_in_managed_routes_order_and_go_away() {
    let planner = istio_planner();
    let mut d = weights(20);
    d.apply(&TrafficCommand::SetMirrorRoute(SetMirrorRoute {
        name: "mirror".into(),
        r#match: vec![RouteMatch {
            method: Some(exact("GET")),
            ..RouteMatch::default()
        }],
        percentage: Some(25),
    }));
    d.apply(&TrafficCommand::SetHeaderRoute(SetHeaderRoute {
        name: "header".into(),
        r#match: vec![HeaderRoutingMatch {
            header_name: "x-canary".into(),
            header_value: exact("yes"),
        }],
    }));
    let plan = planner.plan(&vs(), &d).unwrap();
    let http = plan.after["spec"]["http"].as_array().unwrap();
    let names: Vec<&str> = http.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["header", "mirror", "primary", "other"]);
    assert_eq!(
        http[0],
        json!({"name": "header", "match": [{"headers": {"x-canary": {"exact": "yes"}}}],
               "route": [{"destination": {"host": "web", "subset": "canary"}, "weight": 100}]})
    );
    assert_eq!(
        http[1]["mirror"],
        json!({"host": "web", "subset": "canary"})
    );
    assert_eq!(http[1]["mirrorPercentage"], json!({"value": 25}));
    assert_eq!(http[1]["match"], json!([{"method": {"exact": "GET"}}]));
    assert_eq!(http[1]["route"], http[2]["route"]);
    // The array changes length: it is tested whole.
    let body = plan.patch.body();
    assert_eq!(body[0]["op"], "test");
    assert_eq!(body[0]["path"], "/spec/http");

    d.apply(&TrafficCommand::RemoveManagedRoutes);
    let back = planner.plan(&plan.after, &d).unwrap();
    let names: Vec<&str> = back.after["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["primary", "other"]);
}

#[test]
fn istio_errors_name_the_route_and_the_object() {
    let mut planner = istio_planner();
    planner.virtual_service.routes = vec!["missing".into()];
    let err = planner.plan(&vs(), &weights(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "http route \"missing\" not found in VirtualService default/vs"
    );
    assert!(matches!(
        err,
        RouterError::RouteNotFound { kind: "http", .. }
    ));

    let mut planner = istio_planner();
    planner.virtual_service.routes.clear();
    planner.virtual_service.tls_routes.clear();
    planner.virtual_service.tcp_routes.clear();
    planner.managed_routes.clear();
    let err = planner.plan(&vs(), &weights(10)).unwrap_err();
    assert!(matches!(err, RouterError::AmbiguousRoutes { count: 2, .. }));

    let mut bad = vs();
    bad["spec"]["http"] = json!({"not": "an array"});
    let err = istio_planner().plan(&bad, &weights(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VirtualService default/vs: /spec/http must be an array"
    );
}

#[test]
fn istio_host_level_split_with_experiments() {
    let live = json!({"metadata": {"name": "vs", "namespace": "ns"}, "spec": {"http": [{"route": [
        {"destination": {"host": "stable.ns.svc.cluster.local"}, "weight": 100},
        {"destination": {"host": "canary"}, "weight": 0},
        {"destination": {"host": "stale-experiment"}, "weight": 0}]}]}});
    let planner = VirtualServicePlanner {
        stable_service: "stable".into(),
        canary_service: "canary".into(),
        virtual_service: IstioVirtualService {
            name: "vs".into(),
            ..IstioVirtualService::default()
        },
        ..VirtualServicePlanner::default()
    };
    let mut d = weights(10);
    d.weights.additional = vec![rollout_core::status::WeightDestination {
        weight: 5,
        service_name: "exp-b".into(),
        pod_template_hash: String::new(),
    }];
    d.weights.stable = 85;
    let plan = planner.plan(&live, &d).unwrap();
    assert_eq!(
        plan.after["spec"]["http"][0]["route"],
        json!([
            {"destination": {"host": "stable.ns.svc.cluster.local"}, "weight": 85},
            {"destination": {"host": "canary"}, "weight": 10},
            {"destination": {"host": "exp-b"}, "weight": 5}
        ])
    );
}

#[test]
fn destination_rule_subsets_get_the_pod_template_hashes() {
    let live = json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"host": "web", "subsets": [
            {"name": "stable", "labels": {"app": "web"}},
            {"name": "canary", "labels": {"app": "web"}, "trafficPolicy": {"x": 1}},
            {"name": "other"}]}});
    let mut w = Weights::new(10, 100);
    w.canary_hash = "abc".into();
    w.stable_hash = "def".into();
    let plan = plan_destination_rule(
        &live,
        istio_planner().destination_rule.as_ref().unwrap(),
        "ro",
        &w,
    )
    .unwrap();
    assert_eq!(
        plan.after["spec"]["subsets"][0]["labels"],
        json!({"app": "web", "rollouts-pod-template-hash": "def"})
    );
    assert_eq!(
        plan.after["spec"]["subsets"][1]["labels"]["rollouts-pod-template-hash"],
        "abc"
    );
    assert_eq!(
        plan.after["spec"]["subsets"][1]["trafficPolicy"],
        json!({"x": 1})
    );
    assert_eq!(plan.after["spec"]["subsets"][2], json!({"name": "other"}));
    assert_eq!(
        plan.after["metadata"]["annotations"]["argo-rollouts.argoproj.io/managed-by-rollouts"],
        "ro"
    );
    let mut missing = live.clone();
    missing["spec"]["subsets"].as_array_mut().unwrap().remove(1);
    let err = plan_destination_rule(
        &missing,
        istio_planner().destination_rule.as_ref().unwrap(),
        "ro",
        &w,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "subset \"canary\" not found in DestinationRule default/web"
    );
}

#[test]
fn nginx_weight_total_and_prefix() {
    let stable = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"rules": [
            {"host": "a", "http": {"paths": [{"path": "/", "backend": {"service": {"name": "stable", "port": {"number": 80}}}}]}},
            {"host": "b", "http": {"paths": [{"path": "/", "backend": {"service": {"name": "elsewhere", "port": {"number": 80}}}}]}}]}});
    let planner = NginxPlanner {
        rollout: "ro".into(),
        stable_service: "stable".into(),
        canary_service: "canary".into(),
        annotation_prefix: Some("custom.io".into()),
        max_traffic_weight: Some(1000),
        ..NginxPlanner::default()
    };
    let plan = planner.plan(&stable, None, &weights(150)).unwrap();
    let Patch::Create(obj) = &plan.patch else {
        panic!("created")
    };
    assert_eq!(obj["metadata"]["name"], "ro-web-canary");
    assert_eq!(obj["spec"]["rules"].as_array().unwrap().len(), 1);
    assert_eq!(
        obj["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "canary"
    );
    assert_eq!(
        obj["metadata"]["annotations"],
        json!({"custom.io/canary": "true", "custom.io/canary-weight": "150", "custom.io/canary-weight-total": "1000"})
    );
    // maxTrafficWeight unset later: the total annotation goes away.
    let mut planner2 = planner.clone();
    planner2.max_traffic_weight = None;
    let plan2 = planner2.plan(&stable, Some(obj), &weights(15)).unwrap();
    assert_eq!(
        plan2.patch.body(),
        json!({"metadata": {"annotations": {"custom.io/canary-weight": "15", "custom.io/canary-weight-total": null}}})
    );
    let mut nothing = stable.clone();
    nothing["spec"]["rules"].as_array_mut().unwrap().remove(0);
    let err = planner.plan(&nothing, None, &weights(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no rule of Ingress default/web references service \"stable\""
    );
}

#[test]
fn smi_refuses_a_split_owned_by_someone_else_and_patches_its_own() {
    let planner = SmiPlanner {
        rollout: "ro".into(),
        stable_service: "stable".into(),
        canary_service: "canary".into(),
        version: SmiVersion::V1Alpha2,
        ..SmiPlanner::default()
    };
    let foreign = json!({"metadata": {"name": "ro", "namespace": "default", "ownerReferences": [
        {"kind": "Deployment", "name": "x", "controller": true}]}, "spec": {}});
    let err = planner.plan(Some(&foreign), &weights(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "TrafficSplit default/ro is not owned by Rollout ro"
    );
    let own = json!({"metadata": {"name": "ro", "namespace": "default", "ownerReferences": [
        {"kind": "Rollout", "name": "ro", "controller": true}]},
        "spec": {"service": "stable", "backends": [{"service": "canary", "weight": 0}, {"service": "stable", "weight": 100}]}});
    let plan = planner.plan(Some(&own), &weights(10)).unwrap();
    assert_eq!(
        plan.patch.body(),
        json!({"spec": {"backends": [{"service": "canary", "weight": 10}, {"service": "stable", "weight": 90}]}})
    );
    let linkerd = LinkerdPlanner::Smi(planner);
    assert!(
        linkerd
            .plan(Some(&plan.after), &weights(10))
            .unwrap()
            .is_noop()
    );
}

#[test]
fn gateway_header_and_mirror_rules() {
    let live = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"rules": [
        {"backendRefs": [{"name": "stable", "port": 80, "weight": 100}, {"name": "canary", "port": 80, "weight": 0}]}]}});
    let planner = HttpRoutePlanner {
        stable_service: "stable".into(),
        canary_service: "canary".into(),
        managed_routes: vec!["h".into(), "m".into()],
    };
    let mut d = weights(40);
    d.apply(&TrafficCommand::SetHeaderRoute(SetHeaderRoute {
        name: "h".into(),
        r#match: vec![HeaderRoutingMatch {
            header_name: "x-v".into(),
            header_value: StringMatch {
                prefix: Some("beta.".into()),
                ..StringMatch::default()
            },
        }],
    }));
    d.apply(&TrafficCommand::SetMirrorRoute(SetMirrorRoute {
        name: "m".into(),
        r#match: vec![RouteMatch {
            path: Some(exact("/api")),
            ..RouteMatch::default()
        }],
        percentage: Some(10),
    }));
    let plan = planner.plan(&live, &d).unwrap();
    let rules = &plan.after["spec"]["rules"];
    assert_eq!(
        rules[0],
        json!({"name": "h", "matches": [{"headers": [{"type": "RegularExpression", "name": "x-v", "value": "^beta\\..*"}]}],
               "backendRefs": [{"name": "canary", "port": 80}]})
    );
    assert_eq!(
        rules[1]["filters"],
        json!([{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "canary", "port": 80}, "percent": 10}}])
    );
    assert_eq!(
        rules[1]["matches"],
        json!([{"path": {"type": "Exact", "value": "/api"}}])
    );
    assert_eq!(rules[2]["backendRefs"][0]["weight"], 60);
    assert_eq!(rules[2]["backendRefs"][1]["weight"], 40);
    let err = HttpRoutePlanner {
        stable_service: "nope".into(),
        canary_service: "nada".into(),
        managed_routes: vec![],
    }
    .plan(&live, &d)
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no rule of HTTPRoute default/web references service \"nope\""
    );
}

#[test]
fn flagger_routes_drive_the_same_istio_and_gateway_planners() {
    use rollout_core::flagger::machine::Routes;
    let live = json!({"metadata": {"name": "podinfo", "namespace": "test"}, "spec": {"http": [{"route": [
        {"destination": {"host": "podinfo-primary"}, "weight": 100},
        {"destination": {"host": "podinfo-canary"}, "weight": 0}]}]}});
    let planner = VirtualServicePlanner {
        stable_service: "podinfo-primary".into(),
        canary_service: "podinfo-canary".into(),
        virtual_service: IstioVirtualService {
            name: "podinfo".into(),
            ..IstioVirtualService::default()
        },
        ..VirtualServicePlanner::default()
    };
    let mut d = DesiredRoutes::stable(100);
    for c in TrafficCommand::from_flagger_routes(Routes::new(100, 0, true), Some(10)) {
        d.apply(&c);
    }
    let mirrored = planner.plan(&live, &d).unwrap().after;
    assert_eq!(
        mirrored["spec"]["http"][0]["mirror"],
        json!({"host": "podinfo-canary"})
    );
    assert_eq!(
        mirrored["spec"]["http"][0]["mirrorPercentage"],
        json!({"value": 10})
    );
    for c in TrafficCommand::from_flagger_routes(Routes::new(60, 40, false), Some(10)) {
        d.apply(&c);
    }
    let weighted = planner.plan(&mirrored, &d).unwrap().after;
    let mut want = live.clone();
    want["spec"]["http"][0]["route"][0]["weight"] = json!(60);
    want["spec"]["http"][0]["route"][1]["weight"] = json!(40);
    assert_eq!(weighted, want);

    let route = json!({"metadata": {"name": "podinfo", "namespace": "test"}, "spec": {"rules": [{
        "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "a", "value": "b"}]}}],
        "backendRefs": [{"name": "podinfo-primary", "port": 80, "weight": 100},
                        {"name": "podinfo-canary", "port": 80, "weight": 0}]}]}});
    let gw = HttpRoutePlanner {
        stable_service: "podinfo-primary".into(),
        canary_service: "podinfo-canary".into(),
        managed_routes: vec![],
    };
    let mut d = DesiredRoutes::stable(100);
    for c in TrafficCommand::from_flagger_routes(Routes::new(100, 0, true), None) {
        d.apply(&c);
    }
    let mirrored = gw.plan(&route, &d).unwrap().after;
    assert_eq!(
        mirrored["spec"]["rules"][0]["filters"][1],
        json!({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "podinfo-canary", "port": 80}}})
    );
    d.apply(&TrafficCommand::SetMirror(None));
    assert_eq!(gw.plan(&mirrored, &d).unwrap().after, route);
}
