//! The `TrafficRouter` port: what the machines ask of a traffic router, as data and as a
//! trait.
//!
//! The canary machine emits route actions ([`canary::Action::SetTrafficWeight`],
//! [`canary::Action::SetHeaderRoute`], [`canary::Action::SetMirrorRoute`],
//! [`canary::Action::RemoveManagedRoutes`]); the Flagger machine emits
//! [`flagger::machine::Action::SetRoutes`]. [`TrafficCommand::from_action`] and
//! [`TrafficCommand::from_flagger_action`] turn them into router commands, and
//! [`DesiredRoutes`] folds a sequence of commands into the state every router must reach:
//! the weights, and the managed header and mirror routes that should exist.
//!
//! Routers are declarative: given the live routing object and a [`DesiredRoutes`], a
//! router plans the change that makes the object carry exactly that state (the
//! `rollout-traffic` crate holds the planners for Istio, Nginx, SMI, Linkerd and Gateway
//! API). Planning twice gives no change, so commands are idempotent and a process may
//! crash between any two of them.
//!
//! [`TrafficRouter`] is the synchronous port a caller implements (or uses from
//! `rollout-traffic`) to carry commands out; asynchronous adapters (kube) offer the same
//! operations as `async` methods.
//!
//! [`canary::Action::SetTrafficWeight`]: crate::canary::Action::SetTrafficWeight
//! [`canary::Action::SetHeaderRoute`]: crate::canary::Action::SetHeaderRoute
//! [`canary::Action::SetMirrorRoute`]: crate::canary::Action::SetMirrorRoute
//! [`canary::Action::RemoveManagedRoutes`]: crate::canary::Action::RemoveManagedRoutes
//! [`flagger::machine::Action::SetRoutes`]: crate::flagger::machine::Action::SetRoutes

use crate::canary::Action;
use crate::flagger::machine::{Action as FlaggerAction, Routes};
use crate::spec::{SetHeaderRoute, SetMirrorRoute};
use crate::status::WeightDestination;

/// The weights a router must write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights {
    /// Canary weight.
    pub canary: i32,
    /// Stable weight (`total - canary - Σ additional`).
    pub stable: i32,
    /// The weight that means "all traffic" (maxTrafficWeight, default 100).
    pub total: i32,
    /// Experiment destinations with their weights.
    pub additional: Vec<WeightDestination>,
    /// Pod template hash of the canary (labels a DestinationRule subset); may be empty.
    pub canary_hash: String,
    /// Pod template hash of the stable; may be empty.
    pub stable_hash: String,
}

impl Weights {
    /// `canary` of `total`, the rest to the stable, no experiment destinations.
    pub fn new(canary: i32, total: i32) -> Weights {
        Weights {
            canary,
            stable: total - canary,
            total,
            additional: Vec::new(),
            canary_hash: String::new(),
            stable_hash: String::new(),
        }
    }

    /// The sum of the experiment weights.
    pub fn additional_sum(&self) -> i32 {
        self.additional.iter().map(|d| d.weight).sum()
    }
}

impl Default for Weights {
    /// Everything to the stable (a fresh routing object).
    fn default() -> Weights {
        Weights::new(0, 100)
    }
}

/// One command for a router.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrafficCommand {
    /// Route these weights.
    SetWeight(Weights),
    /// Add or replace the managed header route of this name (an empty `match` removes it).
    SetHeaderRoute(SetHeaderRoute),
    /// Remove the managed header route of this name.
    RemoveHeaderRoute(String),
    /// Add or replace the managed mirror route of this name (an empty `match` removes it).
    SetMirrorRoute(SetMirrorRoute),
    /// Remove the managed mirror route of this name.
    RemoveMirrorRoute(String),
    /// Remove every managed header and mirror route.
    RemoveManagedRoutes,
    /// Flagger mirroring: mirror this percentage of requests to the canary (`None`: stop).
    SetMirror(Option<i32>),
}

impl TrafficCommand {
    /// The router command behind a canary machine action, if it is a route action.
    pub fn from_action(action: &Action) -> Option<TrafficCommand> {
        Some(match action {
            Action::SetTrafficWeight {
                canary_weight,
                stable_weight,
                total,
                canary_hash,
                stable_hash,
                additional,
            } => TrafficCommand::SetWeight(Weights {
                canary: *canary_weight,
                stable: *stable_weight,
                total: *total,
                additional: additional.clone(),
                canary_hash: canary_hash.clone(),
                stable_hash: stable_hash.clone(),
            }),
            Action::SetHeaderRoute(r) if r.r#match.is_empty() => {
                TrafficCommand::RemoveHeaderRoute(r.name.clone())
            }
            Action::SetHeaderRoute(r) => TrafficCommand::SetHeaderRoute(r.clone()),
            Action::SetMirrorRoute(r) if r.r#match.is_empty() => {
                TrafficCommand::RemoveMirrorRoute(r.name.clone())
            }
            Action::SetMirrorRoute(r) => TrafficCommand::SetMirrorRoute(r.clone()),
            Action::RemoveManagedRoutes => TrafficCommand::RemoveManagedRoutes,
            _ => return None,
        })
    }

    /// The router commands behind a Flagger machine action: the weights, then the
    /// mirror (`mirror_weight` is `analysis.mirrorWeight`, 0 or absent meaning all).
    pub fn from_flagger_action(
        action: &FlaggerAction,
        mirror_weight: Option<i32>,
    ) -> Option<[TrafficCommand; 2]> {
        let FlaggerAction::SetRoutes {
            primary,
            canary,
            mirrored,
        } = action
        else {
            return None;
        };
        Some(Self::from_flagger_routes(
            Routes::new(*primary, *canary, *mirrored),
            mirror_weight,
        ))
    }

    /// The router commands that write Flagger routes.
    pub fn from_flagger_routes(routes: Routes, mirror_weight: Option<i32>) -> [TrafficCommand; 2] {
        let mut weights = Weights::new(routes.canary, 100);
        weights.stable = routes.primary;
        let mirror = routes
            .mirrored
            .then(|| mirror_weight.filter(|w| *w > 0).unwrap_or(100));
        [
            TrafficCommand::SetWeight(weights),
            TrafficCommand::SetMirror(mirror),
        ]
    }
}

/// The state a router must reach: weights and the managed routes that exist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredRoutes {
    /// The weights.
    pub weights: Weights,
    /// Managed header routes, in the order they were set.
    pub header_routes: Vec<SetHeaderRoute>,
    /// Managed mirror routes, in the order they were set.
    pub mirror_routes: Vec<SetMirrorRoute>,
    /// Flagger mirroring of the main route: the percentage mirrored to the canary.
    pub mirror: Option<i32>,
}

impl DesiredRoutes {
    /// Everything to the stable, out of `total`, no managed routes.
    pub fn stable(total: i32) -> DesiredRoutes {
        DesiredRoutes {
            weights: Weights::new(0, total),
            ..DesiredRoutes::default()
        }
    }

    /// Folds one command in.
    pub fn apply(&mut self, command: &TrafficCommand) {
        match command {
            TrafficCommand::SetWeight(w) => self.weights = w.clone(),
            TrafficCommand::SetHeaderRoute(r) => {
                self.remove_route(&r.name);
                if !r.r#match.is_empty() {
                    self.header_routes.push(r.clone());
                }
            }
            TrafficCommand::SetMirrorRoute(r) => {
                self.remove_route(&r.name);
                if !r.r#match.is_empty() {
                    self.mirror_routes.push(r.clone());
                }
            }
            TrafficCommand::RemoveHeaderRoute(name) | TrafficCommand::RemoveMirrorRoute(name) => {
                self.remove_route(name);
            }
            TrafficCommand::RemoveManagedRoutes => {
                self.header_routes.clear();
                self.mirror_routes.clear();
            }
            TrafficCommand::SetMirror(m) => self.mirror = *m,
        }
    }

    /// Folds the route actions of a decision in (other actions are ignored).
    pub fn apply_actions<'a>(&mut self, actions: impl IntoIterator<Item = &'a Action>) {
        for action in actions {
            if let Some(command) = TrafficCommand::from_action(action) {
                self.apply(&command);
            }
        }
    }

    /// Whether a managed route of this name is desired.
    pub fn has_route(&self, name: &str) -> bool {
        self.header_routes.iter().any(|r| r.name == name)
            || self.mirror_routes.iter().any(|r| r.name == name)
    }

    fn remove_route(&mut self, name: &str) {
        self.header_routes.retain(|r| r.name != name);
        self.mirror_routes.retain(|r| r.name != name);
    }
}

/// What a router found when asked to verify the weights.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// The live objects carry the desired weights and routes.
    Verified,
    /// They do not (yet); the text says what differs.
    NotVerified(String),
    /// The router cannot verify.
    NotApplicable,
}

impl Verification {
    /// `status.canary.weights.verified`: `Some(true)`, `Some(false)` or `None`.
    pub fn as_status(&self) -> Option<bool> {
        match self {
            Verification::Verified => Some(true),
            Verification::NotVerified(_) => Some(false),
            Verification::NotApplicable => None,
        }
    }
}

/// The traffic router port: every operation the machines need from a router.
///
/// Each call makes the router's objects carry the new desired state (see the module
/// docs); calling it again with the same argument changes nothing.
pub trait TrafficRouter {
    /// What goes wrong (a missing object or route, a conflict, a rejected patch).
    type Error: std::error::Error;

    /// The router's name (`istio`, `nginx`, ...), for events and errors.
    fn name(&self) -> &str;

    /// Route the canary and stable weights (and experiment weights) out of the total.
    fn set_weight(&mut self, weights: &Weights) -> Result<(), Self::Error>;

    /// Add or replace a managed header route.
    fn set_header_route(&mut self, route: &SetHeaderRoute) -> Result<(), Self::Error>;

    /// Remove a managed header route.
    fn remove_header_route(&mut self, name: &str) -> Result<(), Self::Error>;

    /// Add or replace a managed mirror route.
    fn set_mirror_route(&mut self, route: &SetMirrorRoute) -> Result<(), Self::Error>;

    /// Remove a managed mirror route.
    fn remove_mirror_route(&mut self, name: &str) -> Result<(), Self::Error>;

    /// Whether the live objects carry these weights.
    fn verify_weight(&mut self, weights: &Weights) -> Result<Verification, Self::Error>;

    /// Remove every managed route (end of the update, or abort).
    fn remove_managed_routes(&mut self) -> Result<(), Self::Error>;

    /// Carries out one command (the provided method dispatches; Flagger's
    /// [`TrafficCommand::SetMirror`] is a no-op unless a router overrides this).
    fn execute(&mut self, command: &TrafficCommand) -> Result<(), Self::Error> {
        match command {
            TrafficCommand::SetWeight(w) => self.set_weight(w),
            TrafficCommand::SetHeaderRoute(r) => self.set_header_route(r),
            TrafficCommand::RemoveHeaderRoute(n) => self.remove_header_route(n),
            TrafficCommand::SetMirrorRoute(r) => self.set_mirror_route(r),
            TrafficCommand::RemoveMirrorRoute(n) => self.remove_mirror_route(n),
            TrafficCommand::RemoveManagedRoutes => self.remove_managed_routes(),
            TrafficCommand::SetMirror(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{HeaderRoutingMatch, StringMatch};

    fn header(name: &str) -> SetHeaderRoute {
        SetHeaderRoute {
            name: name.into(),
            r#match: vec![HeaderRoutingMatch {
                header_name: "x-canary".into(),
                header_value: StringMatch {
                    exact: Some("yes".into()),
                    ..StringMatch::default()
                },
            }],
        }
    }

    #[test]
    fn commands_fold_into_desired_routes() {
        let mut d = DesiredRoutes::stable(100);
        d.apply(&TrafficCommand::SetWeight(Weights::new(20, 100)));
        d.apply(&TrafficCommand::SetHeaderRoute(header("h1")));
        d.apply(&TrafficCommand::SetHeaderRoute(header("h1")));
        assert_eq!(d.header_routes.len(), 1);
        assert!(d.has_route("h1"));
        d.apply(
            &TrafficCommand::from_action(&Action::SetHeaderRoute(SetHeaderRoute {
                name: "h1".into(),
                r#match: vec![],
            }))
            .unwrap(),
        );
        assert!(!d.has_route("h1"));
        d.apply(&TrafficCommand::SetHeaderRoute(header("h2")));
        d.apply(&TrafficCommand::RemoveManagedRoutes);
        assert!(d.header_routes.is_empty());
        assert_eq!(d.weights.stable, 80);
    }

    #[test]
    fn flagger_routes_map_to_weights_and_mirror() {
        let [w, m] = TrafficCommand::from_flagger_routes(Routes::new(100, 0, true), Some(10));
        assert_eq!(w, TrafficCommand::SetWeight(Weights::new(0, 100)));
        assert_eq!(m, TrafficCommand::SetMirror(Some(10)));
        assert_eq!(Verification::NotApplicable.as_status(), None);
    }
}
