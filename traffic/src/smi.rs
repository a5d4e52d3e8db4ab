//! SMI TrafficSplit (Argo Rollouts' `trafficRouting.smi`; also Linkerd's SMI extension).
//!
//! The TrafficSplit is named `trafficSplitName` (default: the rollout's name) and
//! splits `spec.service` (`rootService`, default the stable service) over its backends,
//! in this order: the canary service, the experiment services, the stable service.
//! `split.smi-spec.io/v1alpha1` writes weights as Kubernetes quantities (`"10"`),
//! v1alpha2 and v1alpha3 as integers. The router creates the TrafficSplit when it is
//! missing and otherwise merge-patches it (the router owns `spec.service` and
//! `spec.backends`; other fields and metadata are kept). An existing TrafficSplit whose
//! controller is not the rollout is an error.

use rollout_core::traffic::{DesiredRoutes, Weights};
use serde_json::{Map, Value, json};

use crate::error::{ObjectRef, RouterError};
use crate::json::{array, int_of, str_of};
use crate::patch::Plan;

/// The TrafficSplit API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SmiVersion {
    /// `split.smi-spec.io/v1alpha1` (quantity weights; Linkerd's default).
    #[default]
    V1Alpha1,
    /// `split.smi-spec.io/v1alpha2`.
    V1Alpha2,
    /// `split.smi-spec.io/v1alpha3`.
    V1Alpha3,
}

impl SmiVersion {
    /// The `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            SmiVersion::V1Alpha1 => "split.smi-spec.io/v1alpha1",
            SmiVersion::V1Alpha2 => "split.smi-spec.io/v1alpha2",
            SmiVersion::V1Alpha3 => "split.smi-spec.io/v1alpha3",
        }
    }

    /// The version of an `apiVersion` string.
    pub fn from_api_version(s: &str) -> Option<SmiVersion> {
        match s.rsplit('/').next()? {
            "v1alpha1" => Some(SmiVersion::V1Alpha1),
            "v1alpha2" => Some(SmiVersion::V1Alpha2),
            "v1alpha3" => Some(SmiVersion::V1Alpha3),
            _ => None,
        }
    }

    /// A weight as this version writes it.
    pub fn weight(self, w: i64) -> Value {
        match self {
            SmiVersion::V1Alpha1 => json!(w.to_string()),
            _ => json!(w),
        }
    }
}

/// Plans a TrafficSplit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmiPlanner {
    /// The owner (the rollout's name); the default TrafficSplit name.
    pub rollout: String,
    /// The owner's kind (empty: `Rollout`; Flagger uses `Canary`).
    pub owner_kind: String,
    /// Namespace of the TrafficSplit.
    pub namespace: String,
    /// The stable service.
    pub stable_service: String,
    /// The canary service.
    pub canary_service: String,
    /// `rootService` (default: the stable service).
    pub root_service: Option<String>,
    /// `trafficSplitName` (default: the rollout's name).
    pub traffic_split_name: Option<String>,
    /// The API version to write.
    pub version: SmiVersion,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl SmiPlanner {
    /// The TrafficSplit's name.
    pub fn name(&self) -> &str {
        non_empty(&self.traffic_split_name).unwrap_or(&self.rollout)
    }

    fn owner_kind(&self) -> &str {
        if self.owner_kind.is_empty() {
            "Rollout"
        } else {
            &self.owner_kind
        }
    }

    /// `spec.service`.
    pub fn root_service(&self) -> &str {
        non_empty(&self.root_service).unwrap_or(&self.stable_service)
    }

    /// The backends for these weights: canary, experiments, stable.
    pub fn backends(&self, w: &Weights) -> Vec<Value> {
        let mut out = vec![
            json!({"service": self.canary_service, "weight": self.version.weight(w.canary.into())}),
        ];
        for d in &w.additional {
            out.push(
                json!({"service": d.service_name, "weight": self.version.weight(d.weight.into())}),
            );
        }
        out.push(
            json!({"service": self.stable_service, "weight": self.version.weight(w.stable.into())}),
        );
        out
    }

    /// Plans the TrafficSplit: created when `live` is `None`, else merge-patched.
    pub fn plan(&self, live: Option<&Value>, desired: &DesiredRoutes) -> Result<Plan, RouterError> {
        let backends = Value::Array(self.backends(&desired.weights));
        let Some(live) = live else {
            let mut meta = Map::new();
            meta.insert("name".into(), json!(self.name()));
            if !self.namespace.is_empty() {
                meta.insert("namespace".into(), json!(self.namespace));
            }
            let obj = json!({
                "apiVersion": self.version.api_version(),
                "kind": "TrafficSplit",
                "metadata": meta,
                "spec": {"service": self.root_service(), "backends": backends},
            });
            return Ok(Plan::create(
                ObjectRef::new("TrafficSplit", &self.namespace, self.name()),
                obj,
            ));
        };
        let object = ObjectRef::of("TrafficSplit", live);
        let owners = array(live, "/metadata/ownerReferences", &object)?;
        if let Some(controller) = owners
            .iter()
            .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
            && (str_of(controller, "kind") != self.owner_kind()
                || str_of(controller, "name") != self.rollout)
        {
            return Err(RouterError::NotOwned {
                object,
                owner: format!("{} {}", self.owner_kind(), self.rollout),
            });
        }
        let mut after = live.clone();
        let spec = crate::json::object_mut(&mut after, "/spec", &object)?;
        spec.insert("service".into(), json!(self.root_service()));
        spec.insert("backends".into(), backends);
        Ok(Plan::merge(object, live, after))
    }
}

/// The weight of each backend of a live TrafficSplit, in order (quantities and integers).
pub fn read_backends(live: &Value) -> Vec<(String, i64)> {
    live.pointer("/spec/backends")
        .and_then(Value::as_array)
        .map(|bs| {
            bs.iter()
                .map(|b| {
                    (
                        str_of(b, "service").to_string(),
                        int_of(b, "weight").unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
