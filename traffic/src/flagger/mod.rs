//! Flagger's routing objects: what Flagger generates for a `Canary` and how its
//! `SetRoutes` / `GetRoutes` map onto them.
//!
//! Unlike Argo Rollouts, which edits routing objects the user wrote, Flagger owns the
//! routing objects of a canary and generates them from `spec.service` and
//! `spec.analysis`: the apex service `<apex>` splits traffic between `<apex>-primary`
//! and `<apex>-canary`. Each sub-module has three entry points, all pure:
//!
//! - `reconcile`: create the objects, or bring an existing one back to the generated
//!   form (drift is overwritten) while keeping the live weights, as Flagger does;
//! - `set_routes`: write a [`Routes`] (primary / canary weight, mirroring) from the
//!   Flagger machine's `SetRoutes` action;
//! - `get_routes`: read the routes back (the machine's `Observed` routes).
//!
//! SMI reuses [`crate::smi::SmiPlanner`] unchanged (backends `[canary, primary]`), and
//! the weights of a VirtualService go through the same destination rules as Argo's.

pub mod gateway;
pub mod istio;
pub mod nginx;
pub mod smi;

use rollout_core::flagger::machine::Routes;
use rollout_core::flagger::spec::{CanaryAnalysis, CanaryService, HttpMatchRequest};
use serde_json::{Value, json};

/// What the Flagger routers read from a `Canary`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlaggerRouting {
    /// The Canary's namespace.
    pub namespace: String,
    /// `spec.targetRef.name`.
    pub target: String,
    /// `spec.service`.
    pub service: CanaryService,
    /// `spec.analysis` (default when absent).
    pub analysis: CanaryAnalysis,
    /// The owner reference generated objects get (the Canary, with its uid); objects
    /// without an owner of kind `Canary` were not created by Flagger.
    pub owner_reference: Option<Value>,
}

impl FlaggerRouting {
    /// The routing view of a `Canary`.
    pub fn from_canary(canary: &rollout_core::flagger::spec::Canary) -> FlaggerRouting {
        FlaggerRouting {
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
            target: canary.spec.target_ref.name.clone(),
            service: canary.spec.service.clone(),
            analysis: canary.spec.analysis.clone().unwrap_or_default(),
            owner_reference: canary.metadata.uid.as_ref().map(|uid| {
                json!({
                    "apiVersion": "flagger.app/v1beta1",
                    "kind": "Canary",
                    "name": canary.metadata.name.clone().unwrap_or_default(),
                    "uid": uid,
                    "controller": true,
                    "blockOwnerDeletion": true,
                })
            }),
        }
    }

    /// The apex service name (`service.name`, default the target's name).
    pub fn apex(&self) -> &str {
        self.service
            .name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.target)
    }

    /// `<apex>-primary`.
    pub fn primary(&self) -> String {
        format!("{}-primary", self.apex())
    }

    /// `<apex>-canary`.
    pub fn canary(&self) -> String {
        format!("{}-canary", self.apex())
    }

    /// Metadata of a generated object named `name`.
    pub fn metadata(&self, name: &str) -> Value {
        let mut meta = serde_json::Map::new();
        meta.insert("name".into(), json!(name));
        meta.insert("namespace".into(), json!(self.namespace));
        if let Some(owner) = &self.owner_reference {
            meta.insert("ownerReferences".into(), json!([owner]));
        }
        Value::Object(meta)
    }

    /// Whether a live object was created by Flagger (an owner of kind `Canary`).
    pub fn owns(&self, live: &Value) -> bool {
        live.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|os| os.iter().any(|o| o.get("kind") == Some(&json!("Canary"))))
    }

    /// A/B testing: `analysis.match` is set.
    pub fn is_ab(&self) -> bool {
        !self.analysis.match_.is_empty()
    }

    /// Blue/green or A/B: `analysis.iterations` > 0.
    pub fn iterations(&self) -> i32 {
        self.analysis.iterations.unwrap_or(0)
    }

    /// `mirrorWeight` when positive.
    pub fn mirror_weight(&self) -> Option<i32> {
        self.analysis.mirror_weight.filter(|w| *w > 0)
    }

    /// The A/B matches: every analysis match combined with every service match (a copy
    /// of the service match with the analysis match's headers and source labels); the
    /// analysis matches as they are when the service has none.
    pub fn merged_matches(&self) -> Vec<HttpMatchRequest> {
        if self.service.match_.is_empty() {
            return self.analysis.match_.clone();
        }
        let mut out = Vec::new();
        for a in &self.analysis.match_ {
            for s in &self.service.match_ {
                let mut m = s.clone();
                m.headers = a.headers.clone();
                m.source_labels = a.source_labels.clone();
                out.push(m);
            }
        }
        out
    }
}

/// The matches as JSON.
pub(crate) fn matches_json(matches: &[HttpMatchRequest]) -> Vec<Value> {
    matches
        .iter()
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
        .collect()
}

/// `routes` as desired weights out of 100.
pub fn desired(routes: Routes) -> rollout_core::traffic::DesiredRoutes {
    let mut d = rollout_core::traffic::DesiredRoutes::stable(100);
    d.weights.canary = routes.canary;
    d.weights.stable = routes.primary;
    d
}

/// A Flagger weight as written.
pub(crate) fn weight(w: i32) -> Value {
    json!(w)
}
