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

use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch as KubePatch, PatchParams, PostParams,
};
use rollout_core::traffic::Verification;
use serde_json::Value;

use crate::error::{ObjectRef, RouterError};
use crate::patch::{Patch, Plan};

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
                message: status.message,
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
