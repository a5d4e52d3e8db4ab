//! Wiring: the planners a Rollout's `trafficRouting` selects, and an in-memory router
//! implementing the `TrafficRouter` port over them.
//!
//! [`RolloutRouting::from_rollout`] reads `spec.strategy.canary` (services,
//! `trafficRouting`, `managedRoutes`, `maxTrafficWeight`) and lists the routing objects
//! of every configured router ([`RolloutRouting::targets`]): each Istio VirtualService
//! (and the DestinationRule), each Nginx stable Ingress's canary Ingress, the SMI
//! TrafficSplit, and the HTTPRoutes of the Gateway API plugin
//! (`plugins["argoproj-labs/gatewayAPI"]` with `httpRoute` or `httpRoutes[].name`).
//! [`RolloutRouting::plan`] plans one target given the live objects.
//!
//! [`MemoryRouter`] keeps the objects in memory and implements
//! [`TrafficRouter`](rollout_core::traffic::TrafficRouter): every command updates the
//! desired routes, plans every target and applies the plans to its objects, recording
//! them for the caller (a simulator, the `plan` example, or a controller that sends
//! them itself). Routers that Argo ships but this crate does not implement (ALB,
//! Ambassador, App Mesh, Traefik, APISIX, other plugins) are reported as unsupported.

use std::collections::BTreeMap;

use rollout_core::spec::{
    IstioVirtualService, Rollout, SetHeaderRoute, SetMirrorRoute, TrafficRouting,
};
use rollout_core::traffic::{DesiredRoutes, TrafficCommand, TrafficRouter, Verification, Weights};
use serde_json::Value;

use crate::error::{ObjectRef, RouterError};
use crate::gateway::HttpRoutePlanner;
use crate::istio::{VirtualServicePlanner, plan_destination_rule};
use crate::nginx::{NginxPlanner, canary_ingress_name};
use crate::patch::{Plan, apply};
use crate::smi::{SmiPlanner, SmiVersion};

/// The Gateway API plugin's name in `trafficRouting.plugins`.
pub const GATEWAY_API_PLUGIN: &str = "argoproj-labs/gatewayAPI";

/// One routing object a rollout's routers write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// An Istio VirtualService and the routes to manage in it.
    VirtualService(ObjectRef, IstioVirtualService),
    /// The Istio DestinationRule of subset-level splitting.
    DestinationRule(ObjectRef),
    /// The canary Ingress of a stable Ingress (the stable one is read, not written).
    CanaryIngress {
        /// The canary Ingress.
        canary: ObjectRef,
        /// The stable Ingress it is cloned from.
        stable: ObjectRef,
    },
    /// The SMI TrafficSplit.
    TrafficSplit(ObjectRef),
    /// A Gateway API HTTPRoute.
    HttpRoute(ObjectRef),
}

impl Target {
    /// The object written.
    pub fn object(&self) -> &ObjectRef {
        match self {
            Target::VirtualService(o, _)
            | Target::DestinationRule(o)
            | Target::TrafficSplit(o)
            | Target::HttpRoute(o) => o,
            Target::CanaryIngress { canary, .. } => canary,
        }
    }
}

/// The routers of one rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRouting {
    /// The rollout's name.
    pub rollout: String,
    /// Its namespace.
    pub namespace: String,
    /// `canaryService`.
    pub canary_service: String,
    /// `stableService`.
    pub stable_service: String,
    /// `trafficRouting`.
    pub routing: TrafficRouting,
    /// The SMI API version to write.
    pub smi_version: SmiVersion,
}

fn split_name<'a>(name: &'a str, namespace: &'a str) -> (&'a str, &'a str) {
    name.split_once('/').unwrap_or((namespace, name))
}

impl RolloutRouting {
    /// The routing of a canary Rollout with `trafficRouting`; an error names what is
    /// missing or unsupported.
    pub fn from_rollout(rollout: &Rollout) -> Result<RolloutRouting, RouterError> {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        let object = ObjectRef::new("Rollout", &namespace, &name);
        let invalid = |message: &str| RouterError::Invalid {
            object: object.clone(),
            message: message.to_string(),
        };
        let canary = rollout
            .spec
            .strategy
            .canary
            .as_ref()
            .ok_or_else(|| invalid("not a canary rollout"))?;
        let routing = canary
            .traffic_routing
            .clone()
            .ok_or_else(|| invalid("spec.strategy.canary.trafficRouting is not set"))?;
        let unsupported = [
            ("alb", routing.alb.is_some()),
            ("ambassador", routing.ambassador.is_some()),
            ("appMesh", routing.app_mesh.is_some()),
            ("traefik", routing.traefik.is_some()),
            ("apisix", routing.apisix.is_some()),
        ];
        if let Some((router, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(invalid(&format!(
                "trafficRouting.{router} is not supported by rollout-traffic"
            )));
        }
        if let Some(other) = routing
            .plugins
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .find(|k| *k != GATEWAY_API_PLUGIN)
        {
            return Err(invalid(&format!(
                "trafficRouting.plugins[{other:?}] is not supported by rollout-traffic"
            )));
        }
        Ok(RolloutRouting {
            rollout: name,
            namespace,
            canary_service: canary.canary_service.clone().unwrap_or_default(),
            stable_service: canary.stable_service.clone().unwrap_or_default(),
            routing,
            smi_version: SmiVersion::default(),
        })
    }

    fn managed_routes(&self) -> Vec<String> {
        self.routing
            .managed_routes
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    /// The routing objects written, in the order they are planned.
    pub fn targets(&self) -> Vec<Target> {
        let ns = self.namespace.as_str();
        let mut out = Vec::new();
        if let Some(istio) = &self.routing.istio {
            for vs in istio
                .virtual_service
                .iter()
                .chain(istio.virtual_services.iter())
            {
                let (n, name) = split_name(&vs.name, ns);
                out.push(Target::VirtualService(
                    ObjectRef::new("VirtualService", n, name),
                    vs.clone(),
                ));
            }
            if let Some(dr) = &istio.destination_rule {
                let (n, name) = split_name(&dr.name, ns);
                out.push(Target::DestinationRule(ObjectRef::new(
                    "DestinationRule",
                    n,
                    name,
                )));
            }
        }
        if let Some(nginx) = &self.routing.nginx {
            for stable in nginx
                .stable_ingress
                .iter()
                .chain(nginx.stable_ingresses.iter())
            {
                out.push(Target::CanaryIngress {
                    canary: ObjectRef::new(
                        "Ingress",
                        ns,
                        &canary_ingress_name(&self.rollout, stable),
                    ),
                    stable: ObjectRef::new("Ingress", ns, stable),
                });
            }
        }
        if let Some(smi) = &self.routing.smi {
            let name = smi
                .traffic_split_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| self.rollout.clone());
            out.push(Target::TrafficSplit(ObjectRef::new(
                "TrafficSplit",
                ns,
                &name,
            )));
        }
        if let Some(cfg) = self
            .routing
            .plugins
            .as_ref()
            .and_then(|p| p.get(GATEWAY_API_PLUGIN))
        {
            let route_ns = cfg.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            let mut names: Vec<&str> = cfg
                .get("httpRoute")
                .and_then(Value::as_str)
                .into_iter()
                .collect();
            if let Some(list) = cfg.get("httpRoutes").and_then(Value::as_array) {
                names.extend(list.iter().filter_map(|r| r.get("name")?.as_str()));
            }
            for name in names {
                out.push(Target::HttpRoute(ObjectRef::new(
                    "HTTPRoute",
                    route_ns,
                    name,
                )));
            }
        }
        out
    }

    /// Plans one target. `objects` holds the live objects by reference (a missing
    /// canary Ingress or TrafficSplit is created; other missing objects are errors).
    pub fn plan(
        &self,
        target: &Target,
        objects: &BTreeMap<ObjectRef, Value>,
        desired: &DesiredRoutes,
    ) -> Result<Plan, RouterError> {
        let live = objects.get(target.object());
        let need = || {
            live.ok_or_else(|| RouterError::NotFound {
                object: target.object().clone(),
            })
        };
        let istio = self.routing.istio.as_ref();
        match target {
            Target::VirtualService(_, vs) => VirtualServicePlanner {
                stable_service: self.stable_service.clone(),
                canary_service: self.canary_service.clone(),
                virtual_service: vs.clone(),
                destination_rule: istio.and_then(|i| i.destination_rule.clone()),
                managed_routes: self.managed_routes(),
            }
            .plan(need()?, desired),
            Target::DestinationRule(_) => {
                let dr = istio
                    .and_then(|i| i.destination_rule.as_ref())
                    .ok_or_else(|| RouterError::NotFound {
                        object: target.object().clone(),
                    })?;
                plan_destination_rule(need()?, dr, &self.rollout, &desired.weights)
            }
            Target::CanaryIngress { stable, .. } => {
                let nginx = self.routing.nginx.clone().unwrap_or_default();
                let stable_obj = objects.get(stable).ok_or_else(|| RouterError::NotFound {
                    object: stable.clone(),
                })?;
                NginxPlanner {
                    rollout: self.rollout.clone(),
                    stable_service: self.stable_service.clone(),
                    canary_service: self.canary_service.clone(),
                    annotation_prefix: nginx.annotation_prefix,
                    additional_ingress_annotations: nginx.additional_ingress_annotations,
                    canary_ingress_annotations: nginx.canary_ingress_annotations,
                    max_traffic_weight: self.routing.max_traffic_weight,
                }
                .plan(stable_obj, live, desired)
            }
            Target::TrafficSplit(_) => {
                let smi = self.routing.smi.clone().unwrap_or_default();
                SmiPlanner {
                    rollout: self.rollout.clone(),
                    owner_kind: String::new(),
                    namespace: self.namespace.clone(),
                    stable_service: self.stable_service.clone(),
                    canary_service: self.canary_service.clone(),
                    root_service: smi.root_service,
                    traffic_split_name: smi.traffic_split_name,
                    version: self.smi_version,
                }
                .plan(live, desired)
            }
            Target::HttpRoute(_) => HttpRoutePlanner {
                stable_service: self.stable_service.clone(),
                canary_service: self.canary_service.clone(),
                managed_routes: self.managed_routes(),
            }
            .plan(need()?, desired),
        }
    }
}

/// The `TrafficRouter` port over objects held in memory.
#[derive(Debug, Clone)]
pub struct MemoryRouter {
    routing: RolloutRouting,
    desired: DesiredRoutes,
    objects: BTreeMap<ObjectRef, Value>,
    sent: Vec<Plan>,
}

impl MemoryRouter {
    /// A router over these objects (the stable Ingresses, VirtualServices, ...), all
    /// traffic to the stable.
    pub fn new(
        routing: RolloutRouting,
        objects: impl IntoIterator<Item = (ObjectRef, Value)>,
    ) -> MemoryRouter {
        let total = routing.routing.max_traffic_weight.unwrap_or(100);
        MemoryRouter {
            routing,
            desired: DesiredRoutes::stable(total),
            objects: objects.into_iter().collect(),
            sent: Vec::new(),
        }
    }

    /// The objects as they are now.
    pub fn objects(&self) -> &BTreeMap<ObjectRef, Value> {
        &self.objects
    }

    /// The desired routes folded so far.
    pub fn desired(&self) -> &DesiredRoutes {
        &self.desired
    }

    /// The plans applied since the last call (only the ones that changed something).
    pub fn take_sent(&mut self) -> Vec<Plan> {
        std::mem::take(&mut self.sent)
    }

    fn command(&mut self, command: &TrafficCommand) -> Result<(), RouterError> {
        self.desired.apply(command);
        for target in self.routing.targets() {
            let plan = self.routing.plan(&target, &self.objects, &self.desired)?;
            if plan.is_noop() {
                continue;
            }
            let after = apply(self.objects.get(&plan.object), &plan.patch).map_err(|message| {
                RouterError::Invalid {
                    object: plan.object.clone(),
                    message,
                }
            })?;
            self.objects.insert(plan.object.clone(), after);
            self.sent.push(plan);
        }
        Ok(())
    }
}

impl TrafficRouter for MemoryRouter {
    type Error = RouterError;

    fn name(&self) -> &str {
        "rollout-traffic"
    }

    fn set_weight(&mut self, weights: &Weights) -> Result<(), RouterError> {
        self.command(&TrafficCommand::SetWeight(weights.clone()))
    }

    fn set_header_route(&mut self, route: &SetHeaderRoute) -> Result<(), RouterError> {
        self.command(&TrafficCommand::SetHeaderRoute(route.clone()))
    }

    fn remove_header_route(&mut self, name: &str) -> Result<(), RouterError> {
        self.command(&TrafficCommand::RemoveHeaderRoute(name.into()))
    }

    fn set_mirror_route(&mut self, route: &SetMirrorRoute) -> Result<(), RouterError> {
        self.command(&TrafficCommand::SetMirrorRoute(route.clone()))
    }

    fn remove_mirror_route(&mut self, name: &str) -> Result<(), RouterError> {
        self.command(&TrafficCommand::RemoveMirrorRoute(name.into()))
    }

    fn verify_weight(&mut self, weights: &Weights) -> Result<Verification, RouterError> {
        let mut desired = self.desired.clone();
        desired.weights = weights.clone();
        for target in self.routing.targets() {
            let v = crate::verify(&self.routing.plan(&target, &self.objects, &desired));
            if v != Verification::Verified {
                return Ok(v);
            }
        }
        Ok(Verification::Verified)
    }

    fn remove_managed_routes(&mut self) -> Result<(), RouterError> {
        self.command(&TrafficCommand::RemoveManagedRoutes)
    }

    /// Every command, Flagger's mirroring included, updates the desired routes and
    /// replans.
    fn execute(&mut self, command: &TrafficCommand) -> Result<(), RouterError> {
        self.command(command)
    }
}
