//! The [`Workloads`] port over kube (feature `kube`): ReplicaSets and services of a
//! `Rollout` on a real API server.
//!
//! # The model
//!
//! Argo Rollouts keeps one ReplicaSet per pod template, named `<rollout>-<hash>` and
//! labelled `rollouts-pod-template-hash: <hash>`, owned by the Rollout (a controller
//! owner reference carrying the Rollout's `uid`). Everything the machines need to know
//! about a ReplicaSet is on the object itself:
//!
//! | field | read as |
//! |---|---|
//! | label `rollouts-pod-template-hash` | [`ReplicaSetState::pod_template_hash`] |
//! | annotation `rollout.argoproj.io/revision` | [`ReplicaSetState::revision`] (0 when absent or not a number) |
//! | `spec.replicas`, `status.{replicas, readyReplicas, availableReplicas}` | the counts |
//! | annotation `scale-down-deadline` (RFC 3339) | [`ReplicaSetState::scale_down_deadline`] (ignored when unparsable, as Argo does) |
//!
//! and a service points at a ReplicaSet through its selector's
//! `rollouts-pod-template-hash`.
//!
//! [`KubeWorkloads::observe`] lists the ReplicaSets of the rollout's namespace that match
//! `spec.selector.matchLabels`, keeps those whose controller owner is the rollout (by
//! `uid`: a ReplicaSet of a deleted and recreated rollout of the same name is not
//! claimed), and sorts them oldest first (creation time, then revision, then name). It
//! reads the canary / stable (or active / preview) services that exist.
//!
//! [`KubeWorkloads::execute`] carries out the workload actions with merge patches
//! (`application/merge-patch+json`, field manager [`FIELD_MANAGER`]), each idempotent:
//!
//! - `CreateReplicaSet` creates the ReplicaSet in Argo's shape (template labels plus the
//!   hash, selector plus the hash, revision one above the rollout's highest,
//!   `desired-replicas`, `minReadySeconds`, the controller owner reference). If it
//!   already exists (`409`), it is adopted: its `spec.replicas` is set to the requested
//!   count and, when it has no controller owner, the rollout becomes its owner. One owned
//!   by another controller is a [`WorkloadsError::Collision`].
//! - `ScaleReplicaSet` sets `spec.replicas` and the `desired-replicas` annotation.
//! - `DeleteReplicaSet` deletes the rollout's set (background propagation); one that
//!   is already gone is not an error.
//! - `SetScaleDownDeadline` sets (RFC 3339, UTC) or removes the `scale-down-deadline`
//!   annotation.
//! - `SetServiceSelector` sets the service's `rollouts-pod-template-hash` selector and
//!   marks it `argo-rollouts.argoproj.io/managed-by-rollouts: <rollout>`.
//!
//! Every other action is not a workload action and is accepted without a request.
//! Errors are typed ([`WorkloadsError`]) and name the object; nothing panics on input.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::canary::{Action, ReplicaSetState, ServiceState};
use crate::driver::{Workloads, WorkloadsState};
use crate::spec::Rollout;
use crate::time::Timestamp;

/// The field manager named on every write.
pub const FIELD_MANAGER: &str = "rollout-core";
/// The label (on ReplicaSets, pods and service selectors) carrying the pod template hash.
pub const POD_TEMPLATE_HASH_LABEL: &str = "rollouts-pod-template-hash";
/// The ReplicaSet annotation carrying the revision.
pub const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";
/// The ReplicaSet annotation carrying the rollout's `spec.replicas`.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "rollout.argoproj.io/desired-replicas";
/// The ReplicaSet annotation carrying the scale-down deadline (RFC 3339).
pub const SCALE_DOWN_DEADLINE_ANNOTATION: &str = "scale-down-deadline";
/// The service annotation naming the rollout that manages its selector.
pub const MANAGED_BY_ANNOTATION: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";

/// Why an observation or an action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadsError {
    /// The rollout has no `metadata.name`.
    #[error("the rollout has no metadata.name")]
    MissingName,
    /// The rollout has no `metadata.namespace`.
    #[error("rollout {rollout:?} has no metadata.namespace")]
    MissingNamespace {
        /// The rollout.
        rollout: String,
    },
    /// The rollout has no `metadata.uid` (it was not read from the API server), so
    /// its ReplicaSets cannot be told from others.
    #[error("rollout {namespace}/{rollout} has no metadata.uid")]
    MissingUid {
        /// Its namespace.
        namespace: String,
        /// The rollout.
        rollout: String,
    },
    /// The rollout has no `spec.template` (`workloadRef` is not resolved).
    #[error("rollout {namespace}/{rollout} has no spec.template")]
    MissingTemplate {
        /// Its namespace.
        namespace: String,
        /// The rollout.
        rollout: String,
    },
    /// No ReplicaSet of the rollout carries this pod template hash.
    #[error(
        "rollout {namespace}/{rollout} has no ReplicaSet with pod template hash {pod_template_hash:?}"
    )]
    ReplicaSetNotFound {
        /// The namespace.
        namespace: String,
        /// The rollout.
        rollout: String,
        /// The hash looked for.
        pod_template_hash: String,
    },
    /// The ReplicaSet to create exists and another controller owns it.
    #[error(
        "ReplicaSet {namespace}/{name} exists and is owned by {owner_kind} {owner_name} (uid {owner_uid})"
    )]
    Collision {
        /// The namespace.
        namespace: String,
        /// The ReplicaSet.
        name: String,
        /// The owner's kind.
        owner_kind: String,
        /// The owner's name.
        owner_name: String,
        /// The owner's uid.
        owner_uid: String,
    },
    /// The API server answered with an error status.
    #[error("{verb} {kind} {namespace}/{name}: API error {code}: {message}")]
    Api {
        /// `list`, `get`, `create` or `patch`.
        verb: &'static str,
        /// `ReplicaSet` or `Service`.
        kind: &'static str,
        /// The namespace.
        namespace: String,
        /// The object (empty for a list).
        name: String,
        /// HTTP status code.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// The request got no answer (connection, TLS, decoding, ...).
    #[error("{verb} {kind} {namespace}/{name}: request failed: {source}")]
    Transport {
        /// `list`, `get`, `create` or `patch`.
        verb: &'static str,
        /// `ReplicaSet` or `Service`.
        kind: &'static str,
        /// The namespace.
        namespace: String,
        /// The object (empty for a list).
        name: String,
        /// What kube reported.
        #[source]
        source: Box<kube::Error>,
    },
}

impl WorkloadsError {
    /// The HTTP status code, for an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            WorkloadsError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What a request was, to name it in an error.
struct Req<'a> {
    verb: &'static str,
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
}

impl Req<'_> {
    fn err(&self, e: kube::Error) -> WorkloadsError {
        match e {
            kube::Error::Api(status) => WorkloadsError::Api {
                verb: self.verb,
                kind: self.kind,
                namespace: self.namespace.to_string(),
                name: self.name.to_string(),
                code: status.code,
                message: status.message,
            },
            source => WorkloadsError::Transport {
                verb: self.verb,
                kind: self.kind,
                namespace: self.namespace.to_string(),
                name: self.name.to_string(),
                source: Box::new(source),
            },
        }
    }
}

/// The rollout's identity: what every request needs.
struct Target<'a> {
    name: &'a str,
    namespace: &'a str,
    uid: &'a str,
}

fn target(rollout: &Rollout) -> Result<Target<'_>, WorkloadsError> {
    let meta = &rollout.metadata;
    let name = meta
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(WorkloadsError::MissingName)?;
    let namespace = meta
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| WorkloadsError::MissingNamespace {
            rollout: name.to_string(),
        })?;
    let uid = meta
        .uid
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| WorkloadsError::MissingUid {
            namespace: namespace.to_string(),
            rollout: name.to_string(),
        })?;
    Ok(Target {
        name,
        namespace,
        uid,
    })
}

fn match_labels(rollout: &Rollout) -> BTreeMap<String, String> {
    rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default()
}

fn controller_owner(rs: &ReplicaSet) -> Option<&OwnerReference> {
    rs.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn hash_of(rs: &ReplicaSet) -> &str {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
        .map_or("", String::as_str)
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata, REVISION_ANNOTATION)
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0)
}

/// A ReplicaSet as the machines see it.
pub fn replica_set_state(rs: &ReplicaSet) -> ReplicaSetState {
    let status = rs.status.as_ref();
    ReplicaSetState {
        pod_template_hash: hash_of(rs).to_string(),
        revision: revision_of(rs),
        spec_replicas: rs.spec.replicas.unwrap_or(1),
        replicas: status.map_or(0, |s| s.replicas),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        available_replicas: status.and_then(|s| s.available_replicas).unwrap_or(0),
        scale_down_deadline: annotation(&rs.metadata, SCALE_DOWN_DEADLINE_ANNOTATION)
            .and_then(|d| Timestamp::parse_rfc3339(d.trim()).ok()),
    }
}

/// The names of the services a rollout's strategy points at, in order, without
/// duplicates: canary, stable (canary strategy), active, preview (blue-green).
pub fn service_names(rollout: &Rollout) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    if let Some(c) = rollout.spec.strategy.canary.as_ref() {
        names.extend(c.canary_service.as_deref());
        names.extend(c.stable_service.as_deref());
    }
    if let Some(b) = rollout.spec.strategy.blue_green.as_ref() {
        names.push(b.active_service.as_str());
        names.extend(b.preview_service.as_deref());
    }
    let mut out: Vec<&str> = Vec::new();
    for n in names {
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// The [`Workloads`] port over a kube client (see the module docs).
#[derive(Clone)]
pub struct KubeWorkloads {
    client: Client,
}

impl std::fmt::Debug for KubeWorkloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeWorkloads").finish_non_exhaustive()
    }
}

impl KubeWorkloads {
    /// The port on this client.
    pub fn new(client: Client) -> KubeWorkloads {
        KubeWorkloads { client }
    }

    fn replica_sets(&self, namespace: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn params() -> PatchParams {
        PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        }
    }

    /// The ReplicaSets the rollout owns (controller owner with its uid), oldest first.
    async fn owned(
        &self,
        t: &Target<'_>,
        rollout: &Rollout,
    ) -> Result<Vec<ReplicaSet>, WorkloadsError> {
        let selector = match_labels(rollout)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut params = ListParams::default();
        if !selector.is_empty() {
            params = params.labels(&selector);
        }
        let list = self
            .replica_sets(t.namespace)
            .list(&params)
            .await
            .map_err(|e| {
                Req {
                    verb: "list",
                    kind: "ReplicaSet",
                    namespace: t.namespace,
                    name: "",
                }
                .err(e)
            })?;
        let mut owned: Vec<ReplicaSet> = list
            .items
            .into_iter()
            .filter(|rs| controller_owner(rs).is_some_and(|o| o.uid == t.uid))
            .collect();
        owned.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then_with(|| revision_of(a).cmp(&revision_of(b)))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        Ok(owned)
    }

    /// The name of the rollout's ReplicaSet with this hash: `<rollout>-<hash>` when
    /// that one is the rollout's, else the owned one labelled with the hash.
    async fn find(
        &self,
        t: &Target<'_>,
        rollout: &Rollout,
        hash: &str,
    ) -> Result<String, WorkloadsError> {
        let owned = self.owned(t, rollout).await?;
        let conventional = format!("{}-{hash}", t.name);
        owned
            .iter()
            .filter(|rs| hash_of(rs) == hash)
            .filter_map(|rs| rs.metadata.name.clone())
            .min_by_key(|n| *n != conventional)
            .ok_or_else(|| WorkloadsError::ReplicaSetNotFound {
                namespace: t.namespace.to_string(),
                rollout: t.name.to_string(),
                pod_template_hash: hash.to_string(),
            })
    }

    async fn patch_replica_set(
        &self,
        namespace: &str,
        name: &str,
        body: &Value,
    ) -> Result<(), WorkloadsError> {
        self.replica_sets(namespace)
            .patch(name, &Self::params(), &Patch::Merge(body))
            .await
            .map_err(|e| {
                Req {
                    verb: "patch",
                    kind: "ReplicaSet",
                    namespace,
                    name,
                }
                .err(e)
            })?;
        Ok(())
    }

    /// Patches the rollout's ReplicaSet with this hash (found by name first, by label
    /// when the conventional name does not exist).
    async fn patch_by_hash(
        &self,
        t: &Target<'_>,
        rollout: &Rollout,
        hash: &str,
        body: &Value,
    ) -> Result<(), WorkloadsError> {
        let name = self.find(t, rollout, hash).await?;
        self.patch_replica_set(t.namespace, &name, body).await
    }

    async fn create(
        &self,
        t: &Target<'_>,
        rollout: &Rollout,
        hash: &str,
        replicas: i32,
    ) -> Result<(), WorkloadsError> {
        let template =
            rollout
                .spec
                .template
                .as_ref()
                .ok_or_else(|| WorkloadsError::MissingTemplate {
                    namespace: t.namespace.to_string(),
                    rollout: t.name.to_string(),
                })?;
        let owned = self.owned(t, rollout).await?;
        let revision = owned
            .iter()
            .map(revision_of)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let name = format!("{}-{hash}", t.name);

        let mut template = template.clone();
        let template_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        let labels = template_meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.into());
        let labels = labels.clone();
        let mut selector = match_labels(rollout);
        selector.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.into());
        let annotations = BTreeMap::from([
            (REVISION_ANNOTATION.to_string(), revision.to_string()),
            (
                DESIRED_REPLICAS_ANNOTATION.to_string(),
                rollout.spec.replicas().to_string(),
            ),
        ]);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(t.namespace.to_string()),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: Some(vec![self.owner_ref(t)]),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: rollout.spec.min_ready_seconds,
                selector: LabelSelector {
                    match_labels: Some(selector),
                    match_expressions: None,
                },
                template: Some(template),
            },
            status: None,
        };
        let api = self.replica_sets(t.namespace);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        match api.create(&params, &rs).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                self.adopt(t, &name, replicas).await
            }
            Err(e) => Err(Req {
                verb: "create",
                kind: "ReplicaSet",
                namespace: t.namespace,
                name: &name,
            }
            .err(e)),
        }
    }

    fn owner_ref(&self, t: &Target<'_>) -> OwnerReference {
        OwnerReference {
            api_version: crate::spec::API_VERSION.into(),
            kind: crate::spec::KIND.into(),
            name: t.name.into(),
            uid: t.uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// The ReplicaSet to create exists: make it the requested size (and the rollout's,
    /// when no controller owns it).
    async fn adopt(&self, t: &Target<'_>, name: &str, replicas: i32) -> Result<(), WorkloadsError> {
        let existing = self
            .replica_sets(t.namespace)
            .get(name)
            .await
            .map_err(|e| {
                Req {
                    verb: "get",
                    kind: "ReplicaSet",
                    namespace: t.namespace,
                    name,
                }
                .err(e)
            })?;
        let mut body = json!({});
        match controller_owner(&existing) {
            Some(o) if o.uid != t.uid => {
                return Err(WorkloadsError::Collision {
                    namespace: t.namespace.to_string(),
                    name: name.to_string(),
                    owner_kind: o.kind.clone(),
                    owner_name: o.name.clone(),
                    owner_uid: o.uid.clone(),
                });
            }
            Some(_) => {}
            None => {
                let mut owners = existing
                    .metadata
                    .owner_references
                    .clone()
                    .unwrap_or_default();
                owners.push(self.owner_ref(t));
                body["metadata"] = json!({ "ownerReferences": owners });
            }
        }
        let current = existing.spec.replicas;
        if current != Some(replicas) {
            body["spec"] = json!({ "replicas": replicas });
        }
        if body.as_object().is_some_and(serde_json::Map::is_empty) {
            return Ok(());
        }
        self.patch_replica_set(t.namespace, name, &body).await
    }

    async fn observe_services(
        &self,
        namespace: &str,
        rollout: &Rollout,
    ) -> Result<Vec<ServiceState>, WorkloadsError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let mut out = Vec::new();
        for name in service_names(rollout) {
            let found = api.get_opt(name).await.map_err(|e| {
                Req {
                    verb: "get",
                    kind: "Service",
                    namespace,
                    name,
                }
                .err(e)
            })?;
            if let Some(svc) = found {
                let hash = svc
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .and_then(|s| s.get(POD_TEMPLATE_HASH_LABEL))
                    .cloned()
                    .unwrap_or_default();
                out.push(ServiceState {
                    name: name.to_string(),
                    pod_template_hash: hash,
                });
            }
        }
        Ok(out)
    }
}

impl Workloads for KubeWorkloads {
    type Error = WorkloadsError;

    async fn observe(&mut self, rollout: &Rollout) -> Result<WorkloadsState, WorkloadsError> {
        let t = target(rollout)?;
        let replica_sets = self
            .owned(&t, rollout)
            .await?
            .iter()
            .map(replica_set_state)
            .collect();
        let services = self.observe_services(t.namespace, rollout).await?;
        Ok(WorkloadsState {
            replica_sets,
            services,
        })
    }

    async fn execute(&mut self, rollout: &Rollout, action: &Action) -> Result<(), WorkloadsError> {
        let is_workload_action = matches!(
            action,
            Action::CreateReplicaSet { .. }
                | Action::ScaleReplicaSet { .. }
                | Action::DeleteReplicaSet { .. }
                | Action::SetScaleDownDeadline { .. }
                | Action::SetServiceSelector { .. }
        );
        if !is_workload_action {
            return Ok(());
        }
        let t = target(rollout)?;
        match action {
            Action::CreateReplicaSet {
                pod_template_hash,
                replicas,
            } => self.create(&t, rollout, pod_template_hash, *replicas).await,
            Action::ScaleReplicaSet {
                pod_template_hash,
                replicas,
            } => {
                let body = json!({
                    "metadata": {"annotations": {
                        DESIRED_REPLICAS_ANNOTATION: rollout.spec.replicas().to_string(),
                    }},
                    "spec": {"replicas": replicas},
                });
                self.patch_by_hash(&t, rollout, pod_template_hash, &body)
                    .await
            }
            Action::DeleteReplicaSet { pod_template_hash } => {
                let name = match self.find(&t, rollout, pod_template_hash).await {
                    Ok(name) => name,
                    // Gone already: the action is idempotent.
                    Err(WorkloadsError::ReplicaSetNotFound { .. }) => return Ok(()),
                    Err(e) => return Err(e),
                };
                match self
                    .replica_sets(t.namespace)
                    .delete(&name, &DeleteParams::background())
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                    Err(e) => Err(Req {
                        verb: "delete",
                        kind: "ReplicaSet",
                        namespace: t.namespace,
                        name: &name,
                    }
                    .err(e)),
                }
            }
            Action::SetScaleDownDeadline {
                pod_template_hash,
                deadline,
            } => {
                let value = deadline.map_or(Value::Null, |d| Value::String(d.to_string()));
                let body = json!({
                    "metadata": {"annotations": {SCALE_DOWN_DEADLINE_ANNOTATION: value}},
                });
                self.patch_by_hash(&t, rollout, pod_template_hash, &body)
                    .await
            }
            Action::SetServiceSelector {
                service,
                pod_template_hash,
            } => {
                let body = json!({
                    "metadata": {"annotations": {MANAGED_BY_ANNOTATION: t.name}},
                    "spec": {"selector": {POD_TEMPLATE_HASH_LABEL: pod_template_hash}},
                });
                let api: Api<Service> = Api::namespaced(self.client.clone(), t.namespace);
                api.patch(service, &Self::params(), &Patch::Merge(&body))
                    .await
                    .map_err(|e| {
                        Req {
                            verb: "patch",
                            kind: "Service",
                            namespace: t.namespace,
                            name: service,
                        }
                        .err(e)
                    })?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ReplicaSet {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        ReplicaSet {
            metadata: ObjectMeta {
                labels: map(labels),
                annotations: map(annotations),
                ..ObjectMeta::default()
            },
            ..ReplicaSet::default()
        }
    }

    #[test]
    fn replica_set_state_reads_labels_and_annotations_and_tolerates_garbage() {
        let s = replica_set_state(&rs(
            &[(POD_TEMPLATE_HASH_LABEL, "abc")],
            &[
                (REVISION_ANNOTATION, "7"),
                (SCALE_DOWN_DEADLINE_ANNOTATION, "2026-11-21T10:00:00Z"),
            ],
        ));
        assert_eq!(s.pod_template_hash, "abc");
        assert_eq!(s.revision, 7);
        assert_eq!(
            s.scale_down_deadline,
            Some(Timestamp::parse_rfc3339("2026-11-21T10:00:00Z").unwrap())
        );
        let s = replica_set_state(&rs(
            &[],
            &[
                (REVISION_ANNOTATION, "seven"),
                (SCALE_DOWN_DEADLINE_ANNOTATION, "tomorrow"),
            ],
        ));
        assert_eq!((s.pod_template_hash.as_str(), s.revision), ("", 0));
        assert_eq!(s.scale_down_deadline, None);
    }

    #[test]
    fn missing_metadata_is_a_typed_error() {
        let mut ro = Rollout::from_yaml(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\nspec: {}\n",
        )
        .unwrap();
        assert!(matches!(
            target(&ro),
            Err(WorkloadsError::MissingNamespace { .. })
        ));
        ro.metadata.namespace = Some("ns".into());
        assert!(matches!(
            target(&ro),
            Err(WorkloadsError::MissingUid { .. })
        ));
        ro.metadata.name = None;
        assert!(matches!(target(&ro), Err(WorkloadsError::MissingName)));
    }
}
