//! Appliers (feature `kube`): carry a plan out through kube, read the object back and
//! verify it.
//!
//! [`KubeApplier::reconcile`] is the whole loop for one routing object: read it (absent
//! is `None`), plan with the caller's planner, send the plan with the content type of
//! its patch (`application/json-patch+json` for JSON patches with their `test`
//! operations, `application/merge-patch+json` for merge patches, a `POST` for a create;
//! never a strategic merge patch, which custom resources do not support), read the
//! object back and plan again: no patch means the object carries the desired routes
//! ([`Verification::Verified`]); anything else (an admission webhook or another
//! controller changed it) is reported as [`Verification::NotVerified`].
//!
//! The API server applies a patch atomically. A conflict (`409`) or a rejected patch
//! (`422`, which includes a failed `test` operation, and `400`) is a typed
//! [`ApplyError`] and nothing else is sent, so the routes stay as they were; the caller
//! retries on its next pass with a fresh read.
//!
//! [`KubeTraffic`] is the driver's [`Traffic`] port over the same loop: for a
//! Rollout it lists the routing objects ([`RolloutRouting::targets`]), and for each one
//! reads what the planner needs (the canary Ingress and its stable Ingress for Nginx),
//! plans the desired routes, sends, reads back and verifies. A write that lost a race
//! with another writer (`409`, or a JSON patch whose `test` operation failed because
//! the route arrays changed between the read and the write) is re-read and re-planned
//! (up to [`KubeTraffic::with_conflict_retries`] times), so the other writer's fields
//! are kept and the routes still end up as desired.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch as KubePatch, PatchParams, PostParams,
};
use rollout_core::driver::Traffic;
use rollout_core::spec::Rollout;
use rollout_core::traffic::{DesiredRoutes, Verification};
use serde_json::Value;

use crate::error::{ObjectRef, RouterError};
use crate::patch::{Patch, PatchOp, Plan};
use crate::router::{RolloutRouting, Target};
use crate::smi::SmiVersion;

/// The field manager named on every write.
pub const FIELD_MANAGER: &str = "rollout-traffic";

/// The API resources of the routing objects.
pub mod resources {
    use super::{ApiResource, GroupVersionKind};

    fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    /// `networking.istio.io/<version>` VirtualService (`v1alpha3`, `v1beta1`, `v1`).
    pub fn virtual_service(version: &str) -> ApiResource {
        resource(
            "networking.istio.io",
            version,
            "VirtualService",
            "virtualservices",
        )
    }

    /// `networking.istio.io/<version>` DestinationRule.
    pub fn destination_rule(version: &str) -> ApiResource {
        resource(
            "networking.istio.io",
            version,
            "DestinationRule",
            "destinationrules",
        )
    }

    /// `networking.k8s.io/v1` Ingress.
    pub fn ingress() -> ApiResource {
        resource("networking.k8s.io", "v1", "Ingress", "ingresses")
    }

    /// `split.smi-spec.io/<version>` TrafficSplit.
    pub fn traffic_split(version: crate::smi::SmiVersion) -> ApiResource {
        let v = version
            .api_version()
            .rsplit('/')
            .next()
            .unwrap_or("v1alpha1");
        resource("split.smi-spec.io", v, "TrafficSplit", "trafficsplits")
    }

    /// `gateway.networking.k8s.io/<version>` HTTPRoute (`v1`, `v1beta1`).
    pub fn http_route(version: &str) -> ApiResource {
        resource(
            "gateway.networking.k8s.io",
            version,
            "HTTPRoute",
            "httproutes",
        )
    }
}

/// Why a plan was not carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The router could not plan (see [`RouterError`]).
    #[error(transparent)]
    Plan(#[from] RouterError),
    /// The object changed under the write (`409`): nothing was changed.
    #[error("conflict writing {object}: {message}")]
    Conflict {
        /// The object.
        object: ObjectRef,
        /// The API server's message.
        message: String,
    },
    /// The API server rejected the patch (`422`, e.g. a failed `test`, or `400`):
    /// nothing was changed.
    #[error("{object} rejected the patch: {message}")]
    Rejected {
        /// The object.
        object: ObjectRef,
        /// The API server's message.
        message: String,
    },
    /// The object to patch does not exist (`404`).
    #[error("{object} not found")]
    NotFound {
        /// The object.
        object: ObjectRef,
    },
    /// Any other API error.
    #[error("API error {code} on {object}: {message}")]
    Api {
        /// The object.
        object: ObjectRef,
        /// HTTP status code.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// The request did not get an answer (connection, decoding, ...).
    #[error("request for {object} failed: {source}")]
    Transport {
        /// The object.
        object: ObjectRef,
        /// What kube reported.
        #[source]
        source: Box<kube::Error>,
    },
    /// The plan cannot be encoded as a request body.
    #[error("cannot encode the plan for {object}: {message}")]
    Encode {
        /// The object.
        object: ObjectRef,
        /// What is wrong.
        message: String,
    },
}

/// The status message followed by its causes (`field: message`): for a patch the
/// API server could not apply, the reason is only in the causes.
fn status_message(status: &kube::core::Status) -> String {
    let mut message = status.message.clone();
    for cause in status.details.iter().flat_map(|d| d.causes.iter()) {
        if cause.message.is_empty() || message.contains(&cause.message) {
            continue;
        }
        message.push_str(": ");
        if !cause.field.is_empty() {
            message.push_str(&cause.field);
            message.push_str(": ");
        }
        message.push_str(&cause.message);
    }
    message
}

fn api_error(object: &ObjectRef, e: kube::Error) -> ApplyError {
    let object = object.clone();
    match e {
        kube::Error::Api(status) => match status.code {
            409 => ApplyError::Conflict {
                object,
                message: status.message,
            },
            400 | 422 => ApplyError::Rejected {
                object,
                message: status_message(&status),
            },
            404 => ApplyError::NotFound { object },
            code => ApplyError::Api {
                object,
                code,
                message: status.message,
            },
        },
        source => ApplyError::Transport {
            object,
            source: Box::new(source),
        },
    }
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The plan that was carried out.
    pub plan: Plan,
    /// The object as read back after the write (the live object when nothing was sent).
    pub object: Value,
    /// Whether the object read back carries the desired routes.
    pub verification: Verification,
}

/// Sends plans through a kube client.
#[derive(Clone)]
pub struct KubeApplier {
    client: Client,
}

impl std::fmt::Debug for KubeApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApplier").finish_non_exhaustive()
    }
}

impl KubeApplier {
    /// An applier on this client.
    pub fn new(client: Client) -> KubeApplier {
        KubeApplier { client }
    }

    fn api(&self, resource: &ApiResource, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, resource)
    }

    /// Reads an object (`None` when it does not exist).
    pub async fn get(
        &self,
        resource: &ApiResource,
        object: &ObjectRef,
    ) -> Result<Option<Value>, ApplyError> {
        let found = self
            .api(resource, &object.namespace)
            .get_opt(&object.name)
            .await
            .map_err(|e| api_error(object, e))?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| ApplyError::Encode {
                    object: object.clone(),
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// Sends a plan (nothing for [`Patch::None`]).
    pub async fn send(&self, resource: &ApiResource, plan: &Plan) -> Result<(), ApplyError> {
        let object = &plan.object;
        let api = self.api(resource, &object.namespace);
        let encode = |e: serde_json::Error| ApplyError::Encode {
            object: object.clone(),
            message: e.to_string(),
        };
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match &plan.patch {
            Patch::None => return Ok(()),
            Patch::Json(_) => {
                let ops: json_patch::Patch =
                    serde_json::from_value(plan.patch.body()).map_err(encode)?;
                api.patch(&object.name, &params, &KubePatch::Json::<()>(ops))
                    .await
                    .map_err(|e| api_error(object, e))?;
            }
            Patch::Merge(body) => {
                api.patch(&object.name, &params, &KubePatch::Merge(body))
                    .await
                    .map_err(|e| api_error(object, e))?;
            }
            Patch::Create(body) => {
                let obj: DynamicObject = serde_json::from_value(body.clone()).map_err(encode)?;
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                api.create(&params, &obj)
                    .await
                    .map_err(|e| api_error(object, e))?;
            }
        }
        Ok(())
    }

    /// Reads `object`, plans with `planner`, sends the plan, reads the object back and
    /// verifies it by planning again.
    pub async fn reconcile<F>(
        &self,
        resource: &ApiResource,
        object: &ObjectRef,
        planner: F,
    ) -> Result<Applied, ApplyError>
    where
        F: Fn(Option<&Value>) -> Result<Plan, RouterError>,
    {
        let live = self.get(resource, object).await?;
        let plan = planner(live.as_ref())?;
        if plan.is_noop()
            && let Some(live) = live
        {
            return Ok(Applied {
                plan,
                object: live,
                verification: Verification::Verified,
            });
        }
        self.send(resource, &plan).await?;
        let back = self
            .get(resource, &plan.object)
            .await?
            .ok_or_else(|| ApplyError::NotFound {
                object: plan.object.clone(),
            })?;
        let verification = crate::verify(&planner(Some(&back)));
        Ok(Applied {
            plan,
            object: back,
            verification,
        })
    }
}

/// The message of the API server's `422` for a JSON patch it could not apply.
const PATCH_NOT_APPLIED: &str = "the server rejected our request due to an error in our request";

/// Whether a failed write lost a race with another writer, so that a fresh read and a
/// new plan may succeed: a `409`, or a JSON patch (with `test` operations) the API
/// server could not apply to the object as it is now.
fn lost_race(error: &ApplyError, plan: &Plan) -> bool {
    match error {
        ApplyError::Conflict { .. } => true,
        ApplyError::Rejected { message, .. } => {
            let tested = matches!(&plan.patch, Patch::Json(ops)
                if ops.iter().any(|op| matches!(op, PatchOp::Test { .. })));
            // The API server answers a JSON patch it cannot apply (a failed `test`, a
            // path the object no longer has) with a bare 422 carrying this message and
            // no causes; a schema violation names the object and the fields instead.
            let message = message.to_ascii_lowercase();
            tested
                && [
                    PATCH_NOT_APPLIED,
                    "testing value",
                    "test failed",
                    "does not apply",
                    "doc is missing",
                ]
                .iter()
                .any(|m| message.contains(m))
        }
        _ => false,
    }
}

/// The driver's [`Traffic`] port over kube (see the module docs).
#[derive(Clone)]
pub struct KubeTraffic {
    applier: KubeApplier,
    istio_version: String,
    gateway_version: String,
    smi_version: SmiVersion,
    conflict_retries: u32,
}

impl std::fmt::Debug for KubeTraffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTraffic")
            .field("istio_version", &self.istio_version)
            .field("gateway_version", &self.gateway_version)
            .field("smi_version", &self.smi_version)
            .field("conflict_retries", &self.conflict_retries)
            .finish_non_exhaustive()
    }
}

impl KubeTraffic {
    /// The port on this client: Istio `v1beta1`, Gateway API `v1`, SMI `v1alpha1`, five
    /// retries after a lost race.
    pub fn new(client: Client) -> KubeTraffic {
        KubeTraffic {
            applier: KubeApplier::new(client),
            istio_version: "v1beta1".into(),
            gateway_version: "v1".into(),
            smi_version: SmiVersion::default(),
            conflict_retries: 5,
        }
    }

    /// The `networking.istio.io` version to read and write (`v1alpha3`, `v1beta1`, `v1`).
    #[must_use]
    pub fn with_istio_version(mut self, version: &str) -> KubeTraffic {
        self.istio_version = version.to_string();
        self
    }

    /// The `gateway.networking.k8s.io` version of HTTPRoutes (`v1`, `v1beta1`).
    #[must_use]
    pub fn with_gateway_version(mut self, version: &str) -> KubeTraffic {
        self.gateway_version = version.to_string();
        self
    }

    /// The SMI TrafficSplit version.
    #[must_use]
    pub fn with_smi_version(mut self, version: SmiVersion) -> KubeTraffic {
        self.smi_version = version;
        self
    }

    /// How many times a write that lost a race is re-read, re-planned and re-sent
    /// before its error is returned.
    #[must_use]
    pub fn with_conflict_retries(mut self, retries: u32) -> KubeTraffic {
        self.conflict_retries = retries;
        self
    }

    /// The applier underneath.
    pub fn applier(&self) -> &KubeApplier {
        &self.applier
    }

    /// The API resource of a target's object.
    pub fn resource(&self, target: &Target) -> ApiResource {
        match target {
            Target::VirtualService(..) => resources::virtual_service(&self.istio_version),
            Target::DestinationRule(_) => resources::destination_rule(&self.istio_version),
            Target::CanaryIngress { .. } => resources::ingress(),
            Target::TrafficSplit(_) => resources::traffic_split(self.smi_version),
            Target::HttpRoute(_) => resources::http_route(&self.gateway_version),
        }
    }

    /// The live objects planning `target` needs, by reference.
    async fn read(
        &self,
        resource: &ApiResource,
        target: &Target,
    ) -> Result<BTreeMap<ObjectRef, Value>, ApplyError> {
        let mut objects = BTreeMap::new();
        if let Some(live) = self.applier.get(resource, target.object()).await? {
            objects.insert(target.object().clone(), live);
        }
        if let Target::CanaryIngress { stable, .. } = target
            && let Some(live) = self.applier.get(&resources::ingress(), stable).await?
        {
            objects.insert(stable.clone(), live);
        }
        Ok(objects)
    }

    /// Reads, plans, sends, reads back and verifies one target, re-reading after a lost
    /// race.
    pub async fn reconcile_target(
        &self,
        routing: &RolloutRouting,
        target: &Target,
        desired: &DesiredRoutes,
    ) -> Result<Applied, ApplyError> {
        let resource = self.resource(target);
        let mut retries = 0;
        loop {
            let mut objects = self.read(&resource, target).await?;
            let plan = routing.plan(target, &objects, desired)?;
            if plan.is_noop()
                && let Some(live) = objects.remove(target.object())
            {
                return Ok(Applied {
                    plan,
                    object: live,
                    verification: Verification::Verified,
                });
            }
            if let Err(e) = self.applier.send(&resource, &plan).await {
                if retries < self.conflict_retries && lost_race(&e, &plan) {
                    retries += 1;
                    continue;
                }
                return Err(e);
            }
            let back = self
                .applier
                .get(&resource, &plan.object)
                .await?
                .ok_or_else(|| ApplyError::NotFound {
                    object: plan.object.clone(),
                })?;
            objects.insert(plan.object.clone(), back.clone());
            let verification = crate::verify(&routing.plan(target, &objects, desired));
            return Ok(Applied {
                plan,
                object: back,
                verification,
            });
        }
    }

    /// The routing of a rollout as this port plans it (its SMI version set).
    pub fn routing(&self, rollout: &Rollout) -> Result<RolloutRouting, ApplyError> {
        let mut routing = RolloutRouting::from_rollout(rollout)?;
        routing.smi_version = self.smi_version;
        Ok(routing)
    }
}

impl Traffic for KubeTraffic {
    type Error = ApplyError;

    /// Reconciles every routing object of the rollout, in [`RolloutRouting::targets`]
    /// order; the first object that does not carry `desired` after its write decides
    /// the verification. An error stops at the failing object.
    async fn reconcile(
        &mut self,
        rollout: &Rollout,
        desired: &DesiredRoutes,
    ) -> Result<Verification, ApplyError> {
        let routing = self.routing(rollout)?;
        let mut verification = Verification::Verified;
        for target in routing.targets() {
            let applied = self.reconcile_target(&routing, &target, desired).await?;
            if verification == Verification::Verified
                && applied.verification != Verification::Verified
            {
                verification = applied.verification;
            }
        }
        Ok(verification)
    }

    /// Reads every routing object and plans against it: no patch for any of them is
    /// `Verified`; the first object that would change (or be created) is
    /// `NotVerified`, naming it. Writes nothing.
    async fn verify(
        &mut self,
        rollout: &Rollout,
        desired: &DesiredRoutes,
    ) -> Result<Verification, ApplyError> {
        let routing = self.routing(rollout)?;
        for target in routing.targets() {
            let resource = self.resource(&target);
            let objects = self.read(&resource, &target).await?;
            let plan = routing.plan(&target, &objects, desired)?;
            if !objects.contains_key(target.object()) {
                return Ok(Verification::NotVerified(format!(
                    "{} does not exist yet",
                    target.object()
                )));
            }
            let verification = crate::verify(&Ok(plan));
            if verification != Verification::Verified {
                return Ok(verification);
            }
        }
        Ok(Verification::Verified)
    }
}
