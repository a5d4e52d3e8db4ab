//! `spec.strategy.canary.trafficRouting`: every router Argo ships, plus plugins.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::serde_util::null_default;

/// The traffic routers of a canary. Several may be set at once (e.g. SMI and Nginx).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficRouting {
    /// Istio VirtualService(s) and DestinationRule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioTrafficRouting>,
    /// NGINX Ingress controller (canary Ingress with annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxTrafficRouting>,
    /// AWS Load Balancer Controller (ALB Ingress actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbTrafficRouting>,
    /// SMI TrafficSplit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smi: Option<SmiTrafficRouting>,
    /// Ambassador (Emissary) Mappings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambassador: Option<AmbassadorTrafficRouting>,
    /// AWS App Mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_mesh: Option<AppMeshTrafficRouting>,
    /// Traefik weighted TraefikService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikTrafficRouting>,
    /// Apache APISIX Route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apisix: Option<ApisixTrafficRouting>,
    /// Traffic router plugins, keyed `<org>/<name>`; their configuration is free-form
    /// and kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<BTreeMap<String, serde_json::Value>>,
    /// Routes Argo manages for `setHeaderRoute` / `setMirrorRoute`; the order is their
    /// precedence.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub managed_routes: Vec<ManagedRoute>,
    /// The weight that means "all traffic" (default 100; Nginx and plugins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
}

impl TrafficRouting {
    /// True when at least one router (built-in or plugin) is configured.
    pub fn has_router(&self) -> bool {
        self.istio.is_some()
            || self.nginx.is_some()
            || self.alb.is_some()
            || self.smi.is_some()
            || self.ambassador.is_some()
            || self.app_mesh.is_some()
            || self.traefik.is_some()
            || self.apisix.is_some()
            || self.plugins.as_ref().is_some_and(|p| !p.is_empty())
    }

    /// True when at least one traffic router plugin is configured.
    pub fn has_plugins(&self) -> bool {
        self.plugins.as_ref().is_some_and(|p| !p.is_empty())
    }
}

/// A route managed by the rollout (for header and mirror routes).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedRoute {
    /// Route name, referenced by `setHeaderRoute.name` / `setMirrorRoute.name`.
    pub name: String,
}

/// Istio routing: weights on VirtualService routes, optionally subset-based through a
/// DestinationRule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioTrafficRouting {
    /// A single VirtualService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<IstioVirtualService>,
    /// Several VirtualServices.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub virtual_services: Vec<IstioVirtualService>,
    /// DestinationRule whose subsets are relabelled with the pod template hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_rule: Option<IstioDestinationRule>,
}

/// An Istio VirtualService and the routes in it to manage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioVirtualService {
    /// VirtualService name (`name` or `namespace/name`).
    pub name: String,
    /// HTTP route names (may be omitted when the VirtualService has one HTTP route).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub routes: Vec<String>,
    /// TLS routes, matched by port and SNI hosts.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tls_routes: Vec<IstioTlsRoute>,
    /// TCP routes, matched by port.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tcp_routes: Vec<IstioTcpRoute>,
}

/// A TLS route of an Istio VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioTlsRoute {
    /// Port the route matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// SNI hosts the route matches.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sni_hosts: Vec<String>,
}

/// A TCP route of an Istio VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioTcpRoute {
    /// Port the route matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

/// An Istio DestinationRule with a canary and a stable subset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioDestinationRule {
    /// DestinationRule name.
    pub name: String,
    /// Subset pointed at the canary pods.
    pub canary_subset_name: String,
    /// Subset pointed at the stable pods.
    pub stable_subset_name: String,
    /// Further subsets (e.g. for experiments).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_subset_names: Vec<String>,
}

/// NGINX Ingress routing: Argo clones the stable Ingress into a canary Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NginxTrafficRouting {
    /// Annotation prefix of the controller (default `nginx.ingress.kubernetes.io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// The stable Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_ingress: Option<String>,
    /// Several stable Ingresses.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub stable_ingresses: Vec<String>,
    /// Extra canary annotations, written with the annotation prefix.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub additional_ingress_annotations: BTreeMap<String, String>,
    /// Annotations copied verbatim onto the canary Ingress.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub canary_ingress_annotations: BTreeMap<String, String>,
}

/// AWS ALB Ingress routing: weighted forward actions on the Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlbTrafficRouting {
    /// The Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    /// Several Ingresses.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ingresses: Vec<String>,
    /// Service port the action forwards to.
    pub service_port: i32,
    /// Service referenced by the Ingress rule (default: the stable service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// Annotation prefix of the controller (default `alb.ingress.kubernetes.io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// Target group stickiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness_config: Option<StickinessConfig>,
}

/// ALB target group stickiness.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StickinessConfig {
    /// Stickiness on.
    #[serde(default, deserialize_with = "null_default")]
    pub enabled: bool,
    /// Stickiness duration.
    pub duration_seconds: i64,
}

/// SMI TrafficSplit routing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmiTrafficRouting {
    /// The service clients call (default: the stable service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// TrafficSplit name (default: the rollout name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_split_name: Option<String>,
}

/// Ambassador routing: Argo creates canary Mappings next to the given ones.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmbassadorTrafficRouting {
    /// Names of the Mappings.
    pub mappings: Vec<String>,
}

/// AWS App Mesh routing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppMeshTrafficRouting {
    /// The virtual service (and its router's routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<AppMeshVirtualService>,
    /// The canary and stable virtual nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_node_group: Option<AppMeshVirtualNodeGroup>,
}

/// An App Mesh virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppMeshVirtualService {
    /// Virtual service name.
    pub name: String,
    /// Routes of its virtual router to manage.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub routes: Vec<String>,
}

/// The App Mesh virtual nodes for canary and stable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppMeshVirtualNodeGroup {
    /// Virtual node of the canary pods.
    pub canary_virtual_node_ref: AppMeshVirtualNodeRef,
    /// Virtual node of the stable pods.
    pub stable_virtual_node_ref: AppMeshVirtualNodeRef,
}

/// A reference to an App Mesh VirtualNode.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppMeshVirtualNodeRef {
    /// VirtualNode name.
    pub name: String,
}

/// Traefik routing through a weighted TraefikService.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraefikTrafficRouting {
    /// Name of the weighted TraefikService.
    pub weighted_traefik_service_name: String,
}

/// Apache APISIX routing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApisixTrafficRouting {
    /// The ApisixRoute to manage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<ApisixRoute>,
}

/// An ApisixRoute and the HTTP rules in it to manage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApisixRoute {
    /// ApisixRoute name.
    pub name: String,
    /// Names of the HTTP rules.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<String>,
}
