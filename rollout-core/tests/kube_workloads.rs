//! `KubeWorkloads` against a real kube-apiserver (rollout-testenv): every object it
//! writes is accepted by the API server and reads back as the machines expect.

#![cfg(feature = "kube")]

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use rollout_core::canary::{Action, ServiceState};
use rollout_core::driver::Workloads;
use rollout_core::kube::{KubeWorkloads, WorkloadsError};
use rollout_core::spec::Rollout;
use rollout_core::time::Timestamp;
use rollout_testenv::{TestEnv, kinds};
use serde_json::json;

async fn setup(prefix: &str) -> (Arc<TestEnv>, Client, String) {
    let env = match TestEnv::shared().await {
        Ok(env) => env,
        Err(e) => panic!("test environment: {e}"),
    };
    let client = env.client().expect("client");
    let ns = env
        .create_namespace(&client, prefix)
        .await
        .expect("namespace");
    (env, client, ns)
}

fn manifest(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": { "name": name },
        "spec": {
            "replicas": 4,
            "minReadySeconds": 3,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name, "tier": "web" } },
                "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] }
            },
            "strategy": { "canary": {
                "canaryService": format!("{name}-canary"),
                "stableService": format!("{name}-stable"),
                "steps": [{ "setWeight": 20 }, { "pause": {} }]
            } }
        }
    })
}

/// Creates the Rollout on the API server and reads it back (with its uid) as the
/// typed spec.
async fn create_rollout(client: &Client, ns: &str, name: &str) -> Rollout {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kinds::rollout());
    let obj: DynamicObject = serde_json::from_value(manifest(name)).expect("rollout object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create rollout");
    let back = api.get(name).await.expect("read rollout back");
    let mut value = serde_json::to_value(back).expect("to json");
    // The typed spec keeps the fields a controller reads; drop the server's bookkeeping.
    if let Some(meta) = value["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    if let Some(obj) = value.as_object_mut() {
        obj.remove("status");
    }
    let ro = Rollout::from_json_value(value).expect("typed rollout");
    assert!(ro.metadata.uid.is_some(), "uid read back");
    ro
}

async fn create_service(client: &Client, ns: &str, name: &str, app: &str) {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name },
        "spec": { "selector": { "app": app }, "ports": [{ "port": 80 }] }
    }))
    .expect("service");
    api.create(&PostParams::default(), &svc)
        .await
        .expect("create service");
}

fn create(hash: &str, replicas: i32) -> Action {
    Action::CreateReplicaSet {
        pod_template_hash: hash.into(),
        replicas,
    }
}

#[tokio::test]
async fn creates_replica_sets_in_argos_shape_idempotently() {
    let (_env, client, ns) = setup("wl-create").await;
    let ro = create_rollout(&client, &ns, "web").await;
    let mut port = KubeWorkloads::new(client.clone());

    port.execute(&ro, &create("aaa", 4)).await.expect("create");
    // The same action again (a pass repeated after a crash) is not an error, and a
    // different count is adopted.
    port.execute(&ro, &create("aaa", 4)).await.expect("again");
    port.execute(&ro, &create("aaa", 3)).await.expect("adopt");

    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let rs = api.get("web-aaa").await.expect("web-aaa exists");
    let labels = rs.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(labels.get("tier").map(String::as_str), Some("web"));
    assert_eq!(
        labels.get("rollouts-pod-template-hash").map(String::as_str),
        Some("aaa")
    );
    let ann = rs.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get("rollout.argoproj.io/revision").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        ann.get("rollout.argoproj.io/desired-replicas")
            .map(String::as_str),
        Some("4")
    );
    let owner = &rs.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str()
        ),
        ("argoproj.io/v1alpha1", "Rollout", "web")
    );
    assert_eq!(Some(&owner.uid), ro.metadata.uid.as_ref());
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    let spec = rs.spec.clone();
    assert_eq!(spec.replicas, Some(3), "adopted with the new count");
    assert_eq!(spec.min_ready_seconds, Some(3));
    let sel = spec.selector.match_labels.clone().unwrap_or_default();
    assert_eq!(
        sel,
        BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("rollouts-pod-template-hash".to_string(), "aaa".to_string()),
        ])
    );
    let tpl_labels = spec
        .template
        .and_then(|t| t.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();
    assert_eq!(
        tpl_labels
            .get("rollouts-pod-template-hash")
            .map(String::as_str),
        Some("aaa")
    );

    // The next set gets the next revision; observe lists both, oldest first.
    port.execute(&ro, &create("bbb", 1)).await.expect("second");
    let seen = port.observe(&ro).await.expect("observe");
    let hashes: Vec<(&str, i64, i32)> = seen
        .replica_sets
        .iter()
        .map(|r| (r.pod_template_hash.as_str(), r.revision, r.spec_replicas))
        .collect();
    assert_eq!(hashes, [("aaa", 1, 3), ("bbb", 2, 1)]);
}

#[tokio::test]
async fn scales_sets_deadlines_and_reports_status_counts() {
    let (env, client, ns) = setup("wl-scale").await;
    let ro = create_rollout(&client, &ns, "web").await;
    let mut port = KubeWorkloads::new(client.clone());
    port.execute(&ro, &create("aaa", 2)).await.expect("create");

    port.execute(
        &ro,
        &Action::ScaleReplicaSet {
            pod_template_hash: "aaa".into(),
            replicas: 5,
        },
    )
    .await
    .expect("scale");
    env.data_plane()
        .expect("data plane")
        .make_replicaset_ready(&ns, "web-aaa")
        .await
        .expect("ready");
    let state = port.observe(&ro).await.expect("observe");
    let rs = &state.replica_sets[0];
    assert_eq!(
        (
            rs.spec_replicas,
            rs.replicas,
            rs.ready_replicas,
            rs.available_replicas
        ),
        (5, 5, 5, 5)
    );
    assert_eq!(rs.scale_down_deadline, None);

    let deadline = Timestamp::parse_rfc3339("2030-01-02T03:04:05Z").expect("time");
    port.execute(
        &ro,
        &Action::SetScaleDownDeadline {
            pod_template_hash: "aaa".into(),
            deadline: Some(deadline),
        },
    )
    .await
    .expect("set deadline");
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let raw = api.get("web-aaa").await.expect("get");
    assert_eq!(
        raw.metadata
            .annotations
            .unwrap_or_default()
            .get("scale-down-deadline")
            .map(String::as_str),
        Some("2030-01-02T03:04:05Z")
    );
    let state = port.observe(&ro).await.expect("observe");
    assert_eq!(state.replica_sets[0].scale_down_deadline, Some(deadline));

    for _ in 0..2 {
        port.execute(
            &ro,
            &Action::SetScaleDownDeadline {
                pod_template_hash: "aaa".into(),
                deadline: None,
            },
        )
        .await
        .expect("remove deadline (twice: idempotent)");
    }
    let raw = api.get("web-aaa").await.expect("get");
    assert!(
        !raw.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("scale-down-deadline")
    );
    let state = port.observe(&ro).await.expect("observe");
    assert_eq!(state.replica_sets[0].scale_down_deadline, None);

    // Route actions are not workload actions: accepted without a request.
    port.execute(&ro, &Action::RemoveManagedRoutes)
        .await
        .expect("no-op");

    // An old revision beyond revisionHistoryLimit is deleted; twice is not an error.
    for _ in 0..2 {
        port.execute(
            &ro,
            &Action::DeleteReplicaSet {
                pod_template_hash: "aaa".into(),
            },
        )
        .await
        .expect("delete (twice: idempotent)");
    }
    assert!(api.get_opt("web-aaa").await.expect("get").is_none());
    assert!(
        port.observe(&ro)
            .await
            .expect("observe")
            .replica_sets
            .is_empty()
    );
}

#[tokio::test]
async fn switches_service_selectors_and_observes_them() {
    let (_env, client, ns) = setup("wl-svc").await;
    let ro = create_rollout(&client, &ns, "web").await;
    let mut port = KubeWorkloads::new(client.clone());

    // Only the services that exist are reported.
    create_service(&client, &ns, "web-stable", "web").await;
    let state = port.observe(&ro).await.expect("observe");
    assert_eq!(
        state.services,
        [ServiceState {
            name: "web-stable".into(),
            pod_template_hash: String::new()
        }]
    );

    create_service(&client, &ns, "web-canary", "web").await;
    port.execute(
        &ro,
        &Action::SetServiceSelector {
            service: "web-canary".into(),
            pod_template_hash: "bbb".into(),
        },
    )
    .await
    .expect("switch canary");
    let state = port.observe(&ro).await.expect("observe");
    assert_eq!(
        state.services,
        [
            ServiceState {
                name: "web-canary".into(),
                pod_template_hash: "bbb".into()
            },
            ServiceState {
                name: "web-stable".into(),
                pod_template_hash: String::new()
            },
        ]
    );
    let api: Api<Service> = Api::namespaced(client.clone(), &ns);
    let svc = api.get("web-canary").await.expect("get");
    let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
    assert_eq!(selector.get("app").map(String::as_str), Some("web"), "kept");
    assert_eq!(
        svc.metadata
            .annotations
            .unwrap_or_default()
            .get("argo-rollouts.argoproj.io/managed-by-rollouts")
            .map(String::as_str),
        Some("web")
    );
}

#[tokio::test]
async fn ignores_replica_sets_of_other_owners() {
    let (env, client, ns) = setup("wl-foreign").await;
    let ro = create_rollout(&client, &ns, "web").await;
    let mut port = KubeWorkloads::new(client.clone());
    port.execute(&ro, &create("aaa", 1)).await.expect("create");

    let labels = BTreeMap::from([
        ("app".to_string(), "web".to_string()),
        ("rollouts-pod-template-hash".to_string(), "zzz".to_string()),
    ]);
    let dp = env.data_plane().expect("data plane");
    // No owner at all.
    dp.create_replicaset(&ns, "orphan", &labels, 1)
        .await
        .expect("orphan");
    // Owned by another rollout (same selector).
    dp.create_replicaset(&ns, "foreign", &labels, 1)
        .await
        .expect("foreign");
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let other = OwnerReference {
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        name: "web".into(),
        uid: "00000000-0000-0000-0000-000000000001".into(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    api.patch(
        "foreign",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"ownerReferences": [other.clone()]}})),
    )
    .await
    .expect("set foreign owner");

    let state = port.observe(&ro).await.expect("observe");
    let hashes: Vec<&str> = state
        .replica_sets
        .iter()
        .map(|r| r.pod_template_hash.as_str())
        .collect();
    assert_eq!(hashes, ["aaa"]);

    // Scaling a hash only a foreign set carries is a typed error, not a write to it.
    let err = port
        .execute(
            &ro,
            &Action::ScaleReplicaSet {
                pod_template_hash: "zzz".into(),
                replicas: 3,
            },
        )
        .await
        .expect_err("not ours");
    assert!(
        matches!(&err, WorkloadsError::ReplicaSetNotFound { pod_template_hash, .. } if pod_template_hash == "zzz"),
        "{err}"
    );

    // Creating over a set another controller owns is a collision.
    dp.create_replicaset(
        &ns,
        "web-ccc",
        &BTreeMap::from([("app".to_string(), "web".to_string())]),
        1,
    )
    .await
    .expect("web-ccc");
    api.patch(
        "web-ccc",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"ownerReferences": [other]}})),
    )
    .await
    .expect("set owner");
    let err = port
        .execute(&ro, &create("ccc", 1))
        .await
        .expect_err("collision");
    assert!(
        matches!(&err, WorkloadsError::Collision { name, owner_uid, .. }
            if name == "web-ccc" && owner_uid.ends_with("0001")),
        "{err}"
    );
}

#[tokio::test]
async fn api_errors_are_typed() {
    let (_env, client, ns) = setup("wl-errors").await;
    let ro = create_rollout(&client, &ns, "web").await;
    let mut port = KubeWorkloads::new(client.clone());

    // A service that does not exist: 404 from the API server, naming the object.
    let err = port
        .execute(
            &ro,
            &Action::SetServiceSelector {
                service: "missing".into(),
                pod_template_hash: "aaa".into(),
            },
        )
        .await
        .expect_err("404");
    match &err {
        WorkloadsError::Api {
            verb,
            kind,
            namespace,
            name,
            code,
            ..
        } => {
            assert_eq!(
                (*verb, *kind, namespace.as_str(), name.as_str(), *code),
                ("patch", "Service", ns.as_str(), "missing", 404)
            );
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(err.code(), Some(404));

    // An invalid object: a negative replica count is rejected by validation (422).
    let err = port
        .execute(&ro, &create("neg", -1))
        .await
        .expect_err("422");
    assert_eq!(err.code(), Some(422), "{err}");

    // A rollout in a namespace that does not exist.
    let mut elsewhere = ro.clone();
    elsewhere.metadata.namespace = Some("no-such-namespace".into());
    let err = port
        .execute(&elsewhere, &create("aaa", 1))
        .await
        .expect_err("404 namespace");
    assert_eq!(err.code(), Some(404), "{err}");

    // A rollout not read from the server (no uid) cannot be observed.
    let mut local = ro.clone();
    local.metadata.uid = None;
    assert!(matches!(
        port.observe(&local).await,
        Err(WorkloadsError::MissingUid { .. })
    ));
    let mut no_template = ro.clone();
    no_template.spec.template = None;
    assert!(matches!(
        port.execute(&no_template, &create("aaa", 1)).await,
        Err(WorkloadsError::MissingTemplate { .. })
    ));
}
