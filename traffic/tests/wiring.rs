//! A Rollout's `trafficRouting` selects the planners; the machine's route actions,
//! through the `TrafficRouter` port, move the weights on the routing objects.

use rollout_core::canary::Action;
use rollout_core::spec::{HeaderRoutingMatch, Rollout, SetHeaderRoute, StringMatch};
use rollout_core::traffic::{TrafficCommand, TrafficRouter, Verification, Weights};
use rollout_traffic::ObjectRef;
use rollout_traffic::router::{MemoryRouter, RolloutRouting, Target};
use serde_json::json;

const ROLLOUT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "web:2"}]}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        managedRoutes: [{name: beta-users}]
        istio:
          virtualService: {name: web-vs, routes: [primary]}
        smi: {}
      steps: [{setWeight: 20}, {setHeaderRoute: {name: beta-users, match: [{headerName: x-beta, headerValue: {exact: "1"}}]}}, {pause: {}}]
"#;

fn vs() -> serde_json::Value {
    json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "web-vs", "namespace": "shop"},
        "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "web-stable"}, "weight": 100},
            {"destination": {"host": "web-canary"}, "weight": 0}]}]}})
}

#[test]
fn route_actions_move_weights_on_every_router_of_the_rollout() {
    let rollout = Rollout::from_yaml(ROLLOUT).unwrap();
    let routing = RolloutRouting::from_rollout(&rollout).unwrap();
    let targets = routing.targets();
    assert_eq!(targets.len(), 2);
    assert!(matches!(&targets[1], Target::TrafficSplit(o) if o.name == "web"));
    let vs_ref = ObjectRef::new("VirtualService", "shop", "web-vs");
    let mut router = MemoryRouter::new(routing, [(vs_ref.clone(), vs())]);

    let actions = [
        Action::SetTrafficWeight {
            canary_weight: 20,
            stable_weight: 80,
            total: 100,
            canary_hash: "v2".into(),
            stable_hash: "v1".into(),
            additional: vec![],
        },
        Action::SetHeaderRoute(SetHeaderRoute {
            name: "beta-users".into(),
            r#match: vec![HeaderRoutingMatch {
                header_name: "x-beta".into(),
                header_value: StringMatch {
                    exact: Some("1".into()),
                    ..StringMatch::default()
                },
            }],
        }),
    ];
    for a in &actions {
        router
            .execute(&TrafficCommand::from_action(a).unwrap())
            .unwrap();
    }
    let sent = router.take_sent();
    assert_eq!(
        sent.len(),
        3,
        "VirtualService, TrafficSplit (created), VirtualService"
    );
    let vs = &router.objects()[&vs_ref];
    assert_eq!(vs["spec"]["http"][0]["name"], "beta-users");
    assert_eq!(vs["spec"]["http"][1]["route"][0]["weight"], 80);
    assert_eq!(vs["spec"]["http"][1]["route"][1]["weight"], 20);
    let ts = &router.objects()[&ObjectRef::new("TrafficSplit", "shop", "web")];
    assert_eq!(
        ts["spec"]["backends"][0],
        json!({"service": "web-canary", "weight": "20"})
    );
    assert_eq!(
        router
            .verify_weight(&router.desired().weights.clone())
            .unwrap(),
        Verification::Verified
    );
    assert!(matches!(
        router.verify_weight(&Weights::new(50, 100)).unwrap(),
        Verification::NotVerified(_)
    ));

    router
        .execute(&TrafficCommand::from_action(&Action::RemoveManagedRoutes).unwrap())
        .unwrap();
    let vs = &router.objects()[&vs_ref];
    assert_eq!(vs["spec"]["http"].as_array().unwrap().len(), 1);
    // Nothing changes: nothing is sent.
    router
        .set_weight(&router.desired().weights.clone())
        .unwrap();
    router.take_sent();
    router
        .set_weight(&router.desired().weights.clone())
        .unwrap();
    assert!(router.take_sent().is_empty());
}

#[test]
fn unsupported_routers_are_named() {
    let text = ROLLOUT.replace("smi: {}", "alb: {ingress: web, servicePort: 80}");
    let rollout = Rollout::from_yaml(&text).unwrap();
    let err = RolloutRouting::from_rollout(&rollout).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Rollout shop/web: trafficRouting.alb is not supported by rollout-traffic"
    );
}
