//! The appliers against kube's tower-test mock API server: every request is checked
//! (verb, path, query, content type, body) and answered by hand.

#![cfg(feature = "kube")]

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use rollout_core::spec::IstioVirtualService;
use rollout_core::traffic::{DesiredRoutes, Verification, Weights};
use rollout_traffic::istio::VirtualServicePlanner;
use rollout_traffic::kube::{ApplyError, KubeApplier, resources};
use rollout_traffic::nginx::NginxPlanner;
use rollout_traffic::{ObjectRef, Patch};
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

type MockHandle = Handle<Request<Body>, Response<Body>>;

const VS_PATH: &str = "/apis/networking.istio.io/v1beta1/namespaces/default/virtualservices";
const ING_PATH: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";

fn mock() -> (KubeApplier, MockHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        KubeApplier::new(kube::Client::new(service, "default")),
        handle,
    )
}

struct Seen {
    method: Method,
    path: String,
    query: String,
    content_type: Option<String>,
    body: Value,
    send: SendResponse<Response<Body>>,
}

async fn next(handle: &mut MockHandle) -> Seen {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request within 5 s"))
        .unwrap_or_else(|| panic!("the client went away"));
    let (parts, body) = request.into_parts();
    let bytes = body.collect_bytes().await.expect("request body");
    Seen {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        },
        send,
    }
}

fn respond(send: SendResponse<Response<Body>>, code: u16, body: &Value) {
    let mut response = Response::new(Body::from(serde_json::to_vec(body).unwrap()));
    *response.status_mut() = StatusCode::from_u16(code).unwrap();
    send.send_response(response);
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

async fn no_more_requests(handle: &mut MockHandle) {
    let extra = tokio::time::timeout(Duration::from_millis(50), handle.next_request()).await;
    assert!(extra.is_err(), "an unexpected request was sent");
}

fn live_vs() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "default", "resourceVersion": "7"},
        "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "stable"}, "weight": 100},
            {"destination": {"host": "canary"}, "weight": 0}]}]}
    })
}

fn vs_planner() -> VirtualServicePlanner {
    VirtualServicePlanner {
        stable_service: "stable".into(),
        canary_service: "canary".into(),
        virtual_service: IstioVirtualService {
            name: "vs".into(),
            routes: vec!["primary".into()],
            ..IstioVirtualService::default()
        },
        ..VirtualServicePlanner::default()
    }
}

fn desired(canary: i32) -> DesiredRoutes {
    DesiredRoutes {
        weights: Weights::new(canary, 100),
        ..DesiredRoutes::default()
    }
}

fn expected_ops() -> Value {
    json!([
        {"op": "test", "path": "/spec/http/0", "value": live_vs()["spec"]["http"][0]},
        {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 80},
        {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 20}
    ])
}

fn assert_get(seen: &Seen, path: &str) {
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.path, path);
    assert_eq!(seen.query, "");
    assert_eq!(seen.body, Value::Null);
}

fn assert_json_patch(seen: &Seen) {
    assert_eq!(seen.method, Method::PATCH);
    assert_eq!(seen.path, format!("{VS_PATH}/vs"));
    assert_eq!(seen.query, "&fieldManager=rollout-traffic");
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/json-patch+json")
    );
    assert_eq!(seen.body, expected_ops());
}

#[tokio::test]
async fn istio_weights_go_out_as_a_tested_json_patch_and_are_read_back() {
    let (applier, mut handle) = mock();
    let server = tokio::spawn(async move {
        let get = next(&mut handle).await;
        assert_get(&get, &format!("{VS_PATH}/vs"));
        respond(get.send, 200, &live_vs());
        let patch = next(&mut handle).await;
        assert_json_patch(&patch);
        let mut patched = live_vs();
        patched["spec"]["http"][0]["route"][0]["weight"] = json!(80);
        patched["spec"]["http"][0]["route"][1]["weight"] = json!(20);
        patched["metadata"]["resourceVersion"] = json!("8");
        respond(patch.send, 200, &patched);
        let back = next(&mut handle).await;
        assert_get(&back, &format!("{VS_PATH}/vs"));
        respond(back.send, 200, &patched);
        no_more_requests(&mut handle).await;
    });
    let planner = vs_planner();
    let d = desired(20);
    let applied = applier
        .reconcile(
            &resources::virtual_service("v1beta1"),
            &ObjectRef::new("VirtualService", "default", "vs"),
            |live| planner.plan(live.expect("the VirtualService exists"), &d),
        )
        .await
        .expect("applied");
    assert_eq!(applied.verification, Verification::Verified);
    assert_eq!(applied.object["spec"]["http"][0]["route"][1]["weight"], 20);
    assert!(matches!(applied.plan.patch, Patch::Json(_)));
    server.await.unwrap();
}

#[tokio::test]
async fn a_conflict_is_typed_and_nothing_else_is_sent() {
    let (applier, mut handle) = mock();
    let server = tokio::spawn(async move {
        let get = next(&mut handle).await;
        respond(get.send, 200, &live_vs());
        let patch = next(&mut handle).await;
        assert_json_patch(&patch);
        respond(
            patch.send,
            409,
            &status(409, "Conflict", "the object has been modified"),
        );
        no_more_requests(&mut handle).await;
    });
    let planner = vs_planner();
    let d = desired(20);
    let err = applier
        .reconcile(
            &resources::virtual_service("v1beta1"),
            &ObjectRef::new("VirtualService", "default", "vs"),
            |live| planner.plan(live.expect("exists"), &d),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApplyError::Conflict { object, .. } if object.name == "vs"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "conflict writing VirtualService default/vs: the object has been modified"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn a_failed_test_operation_is_a_rejected_patch() {
    let (applier, mut handle) = mock();
    let server = tokio::spawn(async move {
        let get = next(&mut handle).await;
        respond(get.send, 200, &live_vs());
        let patch = next(&mut handle).await;
        assert_json_patch(&patch);
        respond(
            patch.send,
            422,
            &status(
                422,
                "Invalid",
                "the server rejected our request: test operation failed",
            ),
        );
        no_more_requests(&mut handle).await;
    });
    let planner = vs_planner();
    let d = desired(20);
    let err = applier
        .reconcile(
            &resources::virtual_service("v1beta1"),
            &ObjectRef::new("VirtualService", "default", "vs"),
            |live| planner.plan(live.expect("exists"), &d),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApplyError::Rejected { .. }), "{err:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn a_read_back_that_differs_is_not_verified() {
    let (applier, mut handle) = mock();
    let server = tokio::spawn(async move {
        let get = next(&mut handle).await;
        respond(get.send, 200, &live_vs());
        let patch = next(&mut handle).await;
        assert_json_patch(&patch);
        respond(patch.send, 200, &live_vs());
        // A webhook put the weights back.
        let back = next(&mut handle).await;
        respond(back.send, 200, &live_vs());
        no_more_requests(&mut handle).await;
    });
    let planner = vs_planner();
    let d = desired(20);
    let applied = applier
        .reconcile(
            &resources::virtual_service("v1beta1"),
            &ObjectRef::new("VirtualService", "default", "vs"),
            |live| planner.plan(live.expect("exists"), &d),
        )
        .await
        .expect("sent");
    assert!(
        matches!(applied.verification, Verification::NotVerified(_)),
        "{:?}",
        applied.verification
    );
    server.await.unwrap();
}

#[tokio::test]
async fn an_unchanged_object_gets_no_write() {
    let (applier, mut handle) = mock();
    let server = tokio::spawn(async move {
        let get = next(&mut handle).await;
        respond(get.send, 200, &live_vs());
        no_more_requests(&mut handle).await;
    });
    let planner = vs_planner();
    let d = desired(0);
    let applied = applier
        .reconcile(
            &resources::virtual_service("v1beta1"),
            &ObjectRef::new("VirtualService", "default", "vs"),
            |live| planner.plan(live.expect("exists"), &d),
        )
        .await
        .expect("nothing to do");
    assert!(applied.plan.is_noop());
    assert_eq!(applied.verification, Verification::Verified);
    server.await.unwrap();
}

fn stable_ingress() -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "stable", "port": {"number": 80}}}}]}}]}})
}

fn nginx_planner() -> NginxPlanner {
    NginxPlanner {
        rollout: "ro".into(),
        stable_service: "stable".into(),
        canary_service: "canary".into(),
        ..NginxPlanner::default()
    }
}

#[tokio::test]
async fn nginx_creates_the_canary_ingress_then_merge_patches_it() {
    let (applier, mut handle) = mock();
    let stable = stable_ingress();
    let want2 = nginx_planner().desired_canary(&stable, 10).unwrap();
    let server = tokio::spawn(async move {
        let get = next(&mut handle).await;
        assert_get(&get, &format!("{ING_PATH}/ro-web-canary"));
        respond(get.send, 404, &status(404, "NotFound", "not found"));
        let post = next(&mut handle).await;
        assert_eq!(post.method, Method::POST);
        assert_eq!(post.path, ING_PATH);
        assert_eq!(post.query, "&fieldManager=rollout-traffic");
        assert_eq!(post.content_type.as_deref(), Some("application/json"));
        assert_eq!(post.body, want2);
        respond(post.send, 201, &want2);
        let back = next(&mut handle).await;
        respond(back.send, 200, &want2);

        let get = next(&mut handle).await;
        respond(get.send, 200, &want2);
        let patch = next(&mut handle).await;
        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(patch.path, format!("{ING_PATH}/ro-web-canary"));
        assert_eq!(patch.query, "&fieldManager=rollout-traffic");
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(
            patch.body,
            json!({"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "30"}}})
        );
        let mut patched = want2.clone();
        patched["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] =
            json!("30");
        respond(patch.send, 200, &patched);
        let back = next(&mut handle).await;
        respond(back.send, 200, &patched);
        no_more_requests(&mut handle).await;
    });
    let planner = nginx_planner();
    let target = ObjectRef::new("Ingress", "default", "ro-web-canary");
    for weight in [10, 30] {
        let d = desired(weight);
        let applied = applier
            .reconcile(&resources::ingress(), &target, |live| {
                planner.plan(&stable, live, &d)
            })
            .await
            .expect("applied");
        assert_eq!(applied.verification, Verification::Verified);
        assert_eq!(planner.read_weight(&applied.object), Some(weight));
    }
    server.await.unwrap();
}

#[tokio::test]
async fn smi_creates_its_traffic_split_and_gateway_routes_are_json_patched() {
    use rollout_traffic::gateway::HttpRoutePlanner;
    use rollout_traffic::smi::{SmiPlanner, SmiVersion};
    let (applier, mut handle) = mock();
    let smi = SmiPlanner {
        rollout: "ro".into(),
        namespace: "default".into(),
        stable_service: "stable".into(),
        canary_service: "canary".into(),
        version: SmiVersion::V1Alpha3,
        ..SmiPlanner::default()
    };
    let split2 = smi.plan(None, &desired(25)).unwrap().after;
    let route2 = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"rules": [{"backendRefs": [
            {"name": "stable", "port": 80, "weight": 100}, {"name": "canary", "port": 80, "weight": 0}]}]}});
    let server = tokio::spawn(async move {
        let ts = "/apis/split.smi-spec.io/v1alpha3/namespaces/default/trafficsplits";
        let get = next(&mut handle).await;
        assert_get(&get, &format!("{ts}/ro"));
        respond(get.send, 404, &status(404, "NotFound", "not found"));
        let post = next(&mut handle).await;
        assert_eq!(
            (post.method.clone(), post.path.as_str()),
            (Method::POST, ts)
        );
        assert_eq!(post.content_type.as_deref(), Some("application/json"));
        assert_eq!(post.body, split2);
        respond(post.send, 201, &split2);
        let back = next(&mut handle).await;
        respond(back.send, 200, &split2);

        let hr = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/web";
        let get = next(&mut handle).await;
        assert_get(&get, hr);
        respond(get.send, 200, &route2);
        let patch = next(&mut handle).await;
        assert_eq!(
            (patch.method.clone(), patch.path.as_str()),
            (Method::PATCH, hr)
        );
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/json-patch+json")
        );
        assert_eq!(
            patch.body,
            json!([
                {"op": "test", "path": "/spec/rules/0", "value": route2["spec"]["rules"][0]},
                {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 75},
                {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 25}
            ])
        );
        let mut patched = route2.clone();
        patched["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(75);
        patched["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(25);
        patched["status"] = json!({"parents": []});
        respond(patch.send, 200, &patched);
        let back = next(&mut handle).await;
        respond(back.send, 200, &patched);
        no_more_requests(&mut handle).await;
    });
    let d = desired(25);
    let applied = applier
        .reconcile(
            &resources::traffic_split(SmiVersion::V1Alpha3),
            &ObjectRef::new("TrafficSplit", "default", "ro"),
            |live| smi.plan(live, &d),
        )
        .await
        .expect("created");
    assert_eq!(applied.verification, Verification::Verified);
    let gw = HttpRoutePlanner {
        stable_service: "stable".into(),
        canary_service: "canary".into(),
        managed_routes: vec![],
    };
    let applied = applier
        .reconcile(
            &resources::http_route("v1"),
            &ObjectRef::new("HTTPRoute", "default", "web"),
            |live| gw.plan(live.expect("exists"), &d),
        )
        .await
        .expect("patched");
    assert_eq!(applied.verification, Verification::Verified);
    server.await.unwrap();
}
