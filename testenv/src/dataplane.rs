//! Playing the data plane: no kubelet or controller-manager runs in the test
//! environment, so nothing ever makes Pods ready or counts a ReplicaSet's
//! replicas. Tests do it through the status subresources instead.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::Error;

/// Replica counts to report in a ReplicaSet's status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// `status.replicas`: Pods that exist.
    pub replicas: i32,
    /// `status.readyReplicas`: Pods whose Ready condition is true.
    pub ready: i32,
    /// `status.availableReplicas`: Pods ready for at least `minReadySeconds`.
    pub available: i32,
}

impl ReplicaCounts {
    /// All `n` replicas exist, are ready and available.
    pub fn all(n: i32) -> ReplicaCounts {
        ReplicaCounts {
            replicas: n,
            ready: n,
            available: n,
        }
    }
}

/// Writes the status a kubelet and the ReplicaSet controller would write.
#[derive(Clone)]
pub struct DataPlane {
    client: Client,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").finish_non_exhaustive()
    }
}

impl DataPlane {
    /// A data plane that writes through `client`.
    pub fn new(client: Client) -> DataPlane {
        DataPlane { client }
    }

    /// Creates a ReplicaSet with `replicas` and a one-container Pod template
    /// labelled (and selected) by `labels`. The image is never pulled.
    pub async fn create_replicaset(
        &self,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        replicas: i32,
    ) -> Result<ReplicaSet, Error> {
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..LabelSelector::default()
                },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels.clone()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "app".to_owned(),
                            image: Some("registry.invalid/app:1".to_owned()),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                }),
                ..ReplicaSetSpec::default()
            },
            status: None,
        };
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        api.create(&PostParams::default(), &rs)
            .await
            .map_err(Error::kube(format!(
                "creating ReplicaSet {namespace}/{name}"
            )))
    }

    /// Sets the ReplicaSet's replica counts (and `observedGeneration` to its
    /// current generation) through the status subresource.
    pub async fn set_replicaset_status(
        &self,
        namespace: &str,
        name: &str,
        counts: ReplicaCounts,
    ) -> Result<ReplicaSet, Error> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let current = api.get(name).await.map_err(Error::kube(format!(
            "reading ReplicaSet {namespace}/{name}"
        )))?;
        let patch = json!({
            "status": {
                "replicas": counts.replicas,
                "fullyLabeledReplicas": counts.replicas,
                "readyReplicas": counts.ready,
                "availableReplicas": counts.available,
                "observedGeneration": current.metadata.generation.unwrap_or(0),
            }
        });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!(
                "setting the status of ReplicaSet {namespace}/{name}"
            )))
    }

    /// Reports every desired replica (`spec.replicas`) of the ReplicaSet as
    /// existing, ready and available, as if its Pods had all come up.
    pub async fn make_replicaset_ready(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<ReplicaSet, Error> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let current = api.get(name).await.map_err(Error::kube(format!(
            "reading ReplicaSet {namespace}/{name}"
        )))?;
        let desired = current.spec.replicas.unwrap_or(1);
        self.set_replicaset_status(namespace, name, ReplicaCounts::all(desired))
            .await
    }

    /// Sets a Pod's phase to `Running` and its `Ready` condition to `ready`,
    /// as a kubelet would after its readiness probe.
    pub async fn set_pod_ready(
        &self,
        namespace: &str,
        name: &str,
        ready: bool,
    ) -> Result<Pod, Error> {
        let status = if ready { "True" } else { "False" };
        let patch = json!({
            "status": {
                "phase": "Running",
                "conditions": [
                    { "type": "Ready", "status": status },
                    { "type": "ContainersReady", "status": status },
                ],
            }
        });
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!(
                "setting the readiness of Pod {namespace}/{name}"
            )))
    }
}
