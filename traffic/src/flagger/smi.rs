//! Flagger's SMI TrafficSplit `<apex>`: `spec.service` is the first of `service.hosts`
//! (default the apex) and the backends are `[<apex>-canary, <apex>-primary]`, which is
//! exactly [`SmiPlanner`]'s order, so this module only configures it. Linkerd
//! (`provider: linkerd`) uses `v1alpha1`; `smi:v1alpha2` / `osm` `v1alpha2`;
//! `smi:v1alpha3` `v1alpha3`.

use rollout_core::flagger::machine::Routes;
use serde_json::Value;

use super::{FlaggerRouting, desired};
use crate::error::RouterError;
use crate::patch::Plan;
use crate::smi::{SmiPlanner, SmiVersion, read_backends};

/// The SMI planner configured for a Canary.
pub fn planner(r: &FlaggerRouting, version: SmiVersion) -> SmiPlanner {
    SmiPlanner {
        rollout: r.apex().to_string(),
        owner_kind: "Canary".into(),
        namespace: r.namespace.clone(),
        stable_service: r.primary(),
        canary_service: r.canary(),
        root_service: Some(
            r.service
                .hosts
                .first()
                .cloned()
                .unwrap_or_else(|| r.apex().to_string()),
        ),
        traffic_split_name: Some(r.apex().to_string()),
        version,
    }
}

/// Creates the TrafficSplit (all traffic to the primary), or brings the live one back
/// to the generated form; a live split whose backends are not the primary and canary is
/// reset to 100/0.
pub fn reconcile(
    live: Option<&Value>,
    r: &FlaggerRouting,
    version: SmiVersion,
) -> Result<Plan, RouterError> {
    let routes = live
        .and_then(|l| get_routes(l, r))
        .unwrap_or(Routes::PRIMARY);
    planner(r, version).plan(live, &desired(routes))
}

/// Writes the routes.
pub fn set_routes(
    live: Option<&Value>,
    r: &FlaggerRouting,
    version: SmiVersion,
    routes: Routes,
) -> Result<Plan, RouterError> {
    planner(r, version).plan(live, &desired(routes))
}

/// The routes of a live TrafficSplit (`None` when its backends are not exactly the
/// canary and the primary).
pub fn get_routes(live: &Value, r: &FlaggerRouting) -> Option<Routes> {
    let b = read_backends(live);
    let canary = r.canary();
    let primary = r.primary();
    match b.as_slice() {
        [(c, cw), (p, pw)] if *c == canary && *p == primary => {
            Some(Routes::new(*pw as i32, *cw as i32, false))
        }
        _ => None,
    }
}
