//! Traffic routers for progressive delivery: Istio, Linkerd, ingress-nginx, SMI and
//! Gateway API, as pure planners plus (feature `kube`) appliers.
//!
//! # The model
//!
//! A canary with traffic routing shifts requests by editing routing objects other tools
//! also own: a VirtualService a platform team wrote, an Ingress the application chart
//! renders, an HTTPRoute a gateway controller reports on. A router must write exactly
//! the fields its peers (Argo Rollouts, Flagger) write, keep every other field byte for
//! byte, and be able to say whether the live object carries what it wanted.
//!
//! The machines in `rollout-core` emit route actions; `rollout_core::traffic` turns them
//! into [`TrafficCommand`]s and folds those into a [`DesiredRoutes`]: the weights and the
//! managed header / mirror routes that must exist. Each router here is a **planner**:
//!
//! ```text
//! plan(live object as JSON, desired routes) -> Plan { patch to send, object after it }
//! ```
//!
//! Planners hold no state and do no I/O. They edit a copy of the live
//! [`serde_json::Value`] (key order preserved) through a few hand-written accessors for
//! the fields they own, so unknown and foreign fields survive untouched, and derive the
//! patch from the two objects ([`patch`]): a JSON patch with `test` operations where
//! someone else may edit the same route array concurrently (VirtualService, HTTPRoute,
//! DestinationRule), a merge patch where the router owns what it writes (the canary
//! Ingress's annotations, a TrafficSplit's backends), or a create. Planning the object
//! after a plan gives no patch, which is also how weights are verified ([`verify`]).
//!
//! The appliers (feature `kube`, module `kube`) send a plan through kube with the
//! content type of its patch (never strategic merge on custom resources), read the
//! object back and verify it; a conflict or a rejected patch is a typed error and the
//! previous routes stay as they were.
//!
//! # The routers
//!
//! - [`istio`]: VirtualService HTTP / TLS / TCP routes, host- or subset-level splitting
//!   with a DestinationRule, header and mirror routes in `managedRoutes` order.
//! - [`nginx`]: the canary Ingress cloned from each stable Ingress, weighted by
//!   annotations.
//! - [`smi`]: TrafficSplit `v1alpha1` (quantity weights) to `v1alpha3`.
//! - [`linkerd`]: SMI or Gateway API, as Linkerd supports both.
//! - [`gateway`]: Gateway API HTTPRoute backendRef weights, header rules, request mirror.
//! - [`flagger`]: the objects Flagger generates for a `Canary` (Istio VirtualService and
//!   DestinationRules, canary Ingress, TrafficSplit, HTTPRoute) and how its `SetRoutes`
//!   / `GetRoutes` map onto them.
//! - [`router`]: the planners a Rollout's `trafficRouting` selects, and
//!   [`router::MemoryRouter`], the `TrafficRouter` port over objects held in memory.
//!
//! # Example
//!
//! ```
//! use rollout_core::traffic::{DesiredRoutes, Weights};
//! use rollout_traffic::istio::VirtualServicePlanner;
//! use rollout_core::spec::IstioVirtualService;
//! use serde_json::json;
//!
//! let live = json!({
//!     "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
//!     "metadata": {"name": "vs", "namespace": "default"},
//!     "spec": {"hosts": ["web"], "http": [{"name": "primary", "retries": {"attempts": 3},
//!         "route": [{"destination": {"host": "stable"}, "weight": 100},
//!                   {"destination": {"host": "canary"}, "weight": 0}]}]}
//! });
//! let planner = VirtualServicePlanner {
//!     stable_service: "stable".into(),
//!     canary_service: "canary".into(),
//!     virtual_service: IstioVirtualService { name: "vs".into(), routes: vec!["primary".into()],
//!                                            ..Default::default() },
//!     ..Default::default()
//! };
//! let desired = DesiredRoutes { weights: Weights::new(10, 100), ..Default::default() };
//! let plan = planner.plan(&live, &desired)?;
//! assert_eq!(plan.after["spec"]["http"][0]["route"][1]["weight"], 10);
//! assert_eq!(plan.after["spec"]["http"][0]["retries"], json!({"attempts": 3}));
//! // The plan's own result needs nothing more.
//! assert!(planner.plan(&plan.after, &desired)?.is_noop());
//! # Ok::<(), rollout_traffic::RouterError>(())
//! ```
//!
//! # Where this differs from Argo Rollouts and Flagger
//!
//! - Planners are declarative: they make the object carry the whole desired state
//!   (weights and every managed route) instead of replaying one call, so a repeated or
//!   reordered command changes nothing and verification is "planning again gives no
//!   patch". Argo's built-in routers other than ALB and plugins cannot verify at all.
//! - Istio: a managed route is rebuilt from its step on every plan (Argo adds or
//!   removes it only when its step runs); the DestinationRule keeps subsets it does not
//!   own (Argo drops them from its managed copy) and is relabelled whenever hashes are
//!   given (Argo delays the switch while a ReplicaSet is not fully available; here the
//!   caller decides when to send).
//! - Istio and Gateway API changes are JSON patches that `test` only the routes they
//!   edit (the peers replace the whole object with an update, which any concurrent
//!   change fails): an unrelated concurrent edit goes through, an edit of the same
//!   route makes the patch fail.
//! - SMI and the Gateway API router write the stable weight the machine computed out
//!   of `maxTrafficWeight`; Istio keeps Argo's fixed total of 100.
//! - The Gateway API router keeps backendRefs it does not own and marks managed rules
//!   with `rules[].name` (Argo's plugin tracks them in a ConfigMap).
//! - Flagger's random session-affinity cookie is an argument
//!   ([`flagger::istio::SessionCookies::advance`]), so plans are reproducible.

mod error;
pub mod flagger;
pub mod gateway;
pub mod istio;
mod json;
#[cfg(feature = "kube")]
pub mod kube;
pub mod linkerd;
pub mod nginx;
pub mod patch;
pub mod router;
pub mod smi;

pub use error::{ObjectRef, RouterError};
pub use patch::{Patch, PatchOp, Plan};
pub use rollout_core::traffic::{DesiredRoutes, TrafficCommand, Verification, Weights};

/// Verification by planning: the live object carries `desired` when planning it again
/// gives no patch.
pub fn verify(plan: &Result<Plan, RouterError>) -> rollout_core::traffic::Verification {
    match plan {
        Ok(p) if p.is_noop() => Verification::Verified,
        Ok(p) => Verification::NotVerified(format!(
            "{} differs from the desired routes: {}",
            p.object,
            p.patch.body()
        )),
        Err(e) => Verification::NotVerified(e.to_string()),
    }
}
