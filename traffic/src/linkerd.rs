//! Linkerd: through an SMI TrafficSplit (the linkerd-smi extension, `v1alpha1` by
//! default) or through a Gateway API HTTPRoute (Linkerd's own traffic splitting since
//! 2.12). Both are the planners of [`crate::smi`] and [`crate::gateway`]; this module
//! only picks one.

use rollout_core::traffic::DesiredRoutes;
use serde_json::Value;

use crate::error::{ObjectRef, RouterError};
use crate::gateway::HttpRoutePlanner;
use crate::patch::Plan;
use crate::smi::SmiPlanner;

/// How Linkerd is driven.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkerdPlanner {
    /// An SMI TrafficSplit.
    Smi(SmiPlanner),
    /// A Gateway API HTTPRoute attached to the service.
    HttpRoute {
        /// The HTTPRoute.
        route: ObjectRef,
        /// Its planner.
        planner: HttpRoutePlanner,
    },
}

impl LinkerdPlanner {
    /// Plans the routing object (`live` is `None` when it does not exist: an SMI
    /// TrafficSplit is then created; an HTTPRoute must exist).
    pub fn plan(&self, live: Option<&Value>, desired: &DesiredRoutes) -> Result<Plan, RouterError> {
        match self {
            LinkerdPlanner::Smi(p) => p.plan(live, desired),
            LinkerdPlanner::HttpRoute { route, planner } => match live {
                Some(live) => planner.plan(live, desired),
                None => Err(RouterError::NotFound {
                    object: route.clone(),
                }),
            },
        }
    }
}
