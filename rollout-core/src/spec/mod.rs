//! Argo Rollouts `Rollout` documents (`argoproj.io/v1alpha1`): types, parsing and
//! validation.
//!
//! # What is modelled
//!
//! [`Rollout`] is the whole object: `apiVersion`, `kind`, `metadata` (Kubernetes
//! `ObjectMeta`), [`RolloutSpec`] and an optional [`RolloutStatus`]. The spec covers every
//! field of Argo's CRD: the pod `template` (k8s-openapi's `PodTemplateSpec`) or a
//! [`WorkloadRef`], the top-level knobs, the [`CanaryStrategy`] with all eight
//! [`CanaryStep`] kinds, [`TrafficRouting`] for every built-in router (Istio, NGINX, ALB,
//! SMI, Ambassador, App Mesh, Traefik, APISIX) and plugins, background analysis, and the
//! [`BlueGreenStrategy`]. Field names on the wire are Argo's (camelCase); Rust names are
//! their snake_case forms. Values are kept as written where the form matters: `maxSurge:
//! "25%"` stays a string ([`IntOrPercent`](crate::intstr::IntOrPercent)), `duration:
//! "90"` stays text ([`PauseDuration`]), plugin configurations stay JSON. Parsing, then
//! serializing with serde_json and parsing again gives an equal value.
//!
//! A [`CanaryStep`] holds exactly one kind. Argo itself only forbids combining
//! `setWeight`, `pause`, `experiment` and `analysis` in one step, and some of its examples
//! put `setCanaryScale` and `setHeaderRoute` (and a `pause`) in a single step; such steps
//! cannot be represented here and are rejected with a parse error naming the step.
//!
//! [`Rollout::from_yaml`] reads one document; [`rollout_documents`] and
//! [`rollouts_from_yaml_documents`] read a multi-document manifest, keep its `Rollout`
//! documents and skip the other kinds.
//!
//! # Unknown fields
//!
//! Objects Argo owns are strict (`deny_unknown_fields`): a typo such as `setWieght` or
//! `canaryServce` is an error that names the field, because the API server would drop
//! such a field silently (the CRD prunes unknown fields) and the rollout would behave
//! differently from what its author wrote. Objects Argo does not own keep their own
//! rules: `metadata`, the pod `template`, label selectors (k8s-openapi ignores unknown
//! fields, as the API server's typed decoding does) and free-form plugin configuration
//! (`trafficRouting.plugins`, `plugin.config`), which is kept verbatim. The `status` is
//! read leniently too ([`RolloutStatus`]), since it is written by a controller.
//!
//! An explicit `null` for an optional field reads as "absent", as the API server treats
//! it; `pause: null` is the one exception that matters: a step with a null body is an
//! error, not an indefinite pause.
//!
//! # Errors: parsing versus validation
//!
//! Reading ([`Rollout::from_yaml`], [`Rollout::from_json_value`],
//! [`rollouts_from_yaml_documents`]) fails with a [`SpecError`] only when the document
//! cannot be represented at all: YAML syntax (with line and column), a wrong `apiVersion`
//! or `kind`, a value of the wrong type, an unknown or missing required field, a step
//! with zero or two kinds. Such errors name the field by its JSON path, e.g.
//! `spec.strategy.canary.steps[3].setWeight: invalid type: string "x", expected i32`.
//! The YAML is first read into a `serde_json::Value`, then into the typed structs with
//! `serde_path_to_error`, which records the path.
//!
//! [`Rollout::validate`] then checks the rules Argo's controller and the API server
//! enforce on a well-typed object (ranges, one-of constraints, references between
//! fields such as managed routes, services required by traffic routing) and returns
//! *all* violations as [`ValidationErrors`], each with the same kind of path:
//! `spec.strategy.canary.steps[3].setWeight: must be 0..=100`. A rollout that parses
//! and validates passes Argo's own validation. The pod spec inside the template is
//! checked only as far as the rollout depends on it (at least one container, labels
//! matching the selector); the rest is the API server's business.

mod analysis;
mod bluegreen;
mod canary;
mod error;
pub(crate) mod serde_util;
mod traffic;
mod validate;
pub mod yaml;

#[cfg(test)]
mod tests;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use analysis::{
    AnalysisRunArgument, AnalysisRunMetadata, AnalysisTemplateRef, ArgumentValueFrom,
    BackgroundAnalysis, DryRun, ExperimentAnalysis, ExperimentStep, ExperimentTemplate, FieldRef,
    MeasurementRetention, PodMetadata, PodTemplateHashValue, RolloutAnalysis, SpecRef,
    TemplateService,
};
pub use bluegreen::BlueGreenStrategy;
pub use canary::{
    AntiAffinity, CanaryStep, CanaryStrategy, HeaderRoutingMatch, PauseDuration, PauseStep,
    PingPong, PluginStep, PreferredAntiAffinity, ProgressThresholdType, ReplicaProgressThreshold,
    RequiredAntiAffinity, RouteMatch, SetCanaryScale, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
pub use error::{SpecError, ValidationError, ValidationErrors};
pub use traffic::{
    AlbTrafficRouting, AmbassadorTrafficRouting, ApisixRoute, ApisixTrafficRouting,
    AppMeshTrafficRouting, AppMeshVirtualNodeGroup, AppMeshVirtualNodeRef, AppMeshVirtualService,
    IstioDestinationRule, IstioTcpRoute, IstioTlsRoute, IstioTrafficRouting, IstioVirtualService,
    ManagedRoute, NginxTrafficRouting, SmiTrafficRouting, StickinessConfig, TraefikTrafficRouting,
    TrafficRouting,
};

use crate::status::RolloutStatus;
use crate::time::Timestamp;
use serde_util::{is_false, null_default};

/// The `apiVersion` of an Argo `Rollout`.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";
/// The `kind` of an Argo `Rollout`.
pub const KIND: &str = "Rollout";

/// An Argo Rollouts `Rollout` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// Always `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// Always `Rollout`.
    pub kind: String,
    /// Name, namespace, labels, annotations, ...
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: RolloutSpec,
    /// The observed state, as written by a controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RolloutStatus>,
}

impl Rollout {
    /// Reads one YAML document (a text with several documents is an error; see
    /// [`rollouts_from_yaml_documents`]).
    pub fn from_yaml(text: &str) -> Result<Rollout, SpecError> {
        let value = yaml::parse_document(text, 0)?;
        Rollout::from_json_value(value)
    }

    /// Reads a JSON value (e.g. from `serde_json::from_str`, or a Kubernetes watch).
    pub fn from_json_value(v: Value) -> Result<Rollout, SpecError> {
        let Value::Object(obj) = &v else {
            return Err(SpecError::NotAMapping {
                found: value_kind(&v),
            });
        };
        let as_text = |key: &str| {
            obj.get(key).map(|k| match k {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        if obj.get("kind").and_then(Value::as_str) != Some(KIND) {
            return Err(SpecError::WrongKind {
                found: as_text("kind"),
            });
        }
        if obj.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION) {
            return Err(SpecError::WrongApiVersion {
                found: as_text("apiVersion"),
            });
        }
        serde_path_to_error::deserialize::<_, Rollout>(v)
            .map_err(|e| SpecError::from_serde(&e.path().to_string(), &e.inner().to_string()))
    }

    /// Checks every rule Argo enforces on a well-typed rollout; all violations are
    /// returned, in field order.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let errors = validate::validate(self);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The canary strategy, if that is the strategy in use.
    pub fn canary(&self) -> Option<&CanaryStrategy> {
        self.spec.strategy.canary.as_ref()
    }

    /// The blue-green strategy, if that is the strategy in use.
    pub fn blue_green(&self) -> Option<&BlueGreenStrategy> {
        self.spec.strategy.blue_green.as_ref()
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "an empty document",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// One `Rollout` document of a multi-document YAML text.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutDocument {
    /// 0-based index of the document among the non-empty documents of the text.
    pub index: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The rollout, or why it could not be read.
    pub result: Result<Rollout, SpecError>,
}

/// Reads the `Rollout` documents of a multi-document YAML text (`---` separated).
///
/// Returns one entry per document whose `kind` is `Rollout`, in order; documents of other
/// kinds (Services, Ingresses, AnalysisTemplates, ...) and empty documents are skipped.
/// A document that is not valid YAML cannot be classified and is returned as an error
/// too, and so is a `Rollout` of another API group (it fails the `apiVersion` check).
/// Each entry carries the document's index and first line.
pub fn rollout_documents(text: &str) -> Vec<RolloutDocument> {
    let mut out = Vec::new();
    let mut index = 0usize;
    for chunk in yaml::split_documents(text) {
        if !chunk.has_content {
            continue;
        }
        let result = match yaml::parse_document(chunk.text, chunk.first_line - 1) {
            Err(e) => Err(e),
            Ok(Value::Null) => continue,
            Ok(value) => {
                if value.get("kind").and_then(Value::as_str) != Some(KIND) {
                    index += 1;
                    continue;
                }
                Rollout::from_json_value(value)
            }
        };
        out.push(RolloutDocument {
            index,
            line: chunk.first_line,
            result,
        });
        index += 1;
    }
    out
}

/// Reads the `Rollout` documents of a multi-document YAML text: like
/// [`rollout_documents`], with each error wrapped in [`SpecError::Document`] so that it
/// names its document.
pub fn rollouts_from_yaml_documents(text: &str) -> Vec<Result<Rollout, SpecError>> {
    rollout_documents(text)
        .into_iter()
        .map(|d| {
            d.result.map_err(|e| SpecError::Document {
                index: d.index,
                line: d.line,
                source: Box::new(e),
            })
        })
        .collect()
}

/// `spec` of a `Rollout`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutSpec {
    /// Desired pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Selects the rollout's pods; required unless `workloadRef` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The pod template (or use `workloadRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    /// Take the pod template from a Deployment, ReplicaSet or PodTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRef>,
    /// Seconds a pod must be ready to count as available (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// Old ReplicaSets to keep (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// Manually paused.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub paused: bool,
    /// Seconds without progress before the rollout is `Degraded` (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Abort the update when the progress deadline passes.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub progress_deadline_abort: bool,
    /// Restart (evict) pods older than this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<Timestamp>,
    /// Fast-track rollbacks within this many revisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindow>,
    /// Canary or blue-green (exactly one).
    #[serde(default)]
    pub strategy: RolloutStrategy,
    /// How many finished AnalysisRuns and Experiments to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisRunStrategy>,
}

impl RolloutSpec {
    /// `replicas`, defaulting to 1.
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    /// `progressDeadlineSeconds`, defaulting to 600.
    pub fn progress_deadline_seconds(&self) -> i32 {
        self.progress_deadline_seconds.unwrap_or(600)
    }

    /// `minReadySeconds`, defaulting to 0.
    pub fn min_ready_seconds(&self) -> i32 {
        self.min_ready_seconds.unwrap_or(0)
    }

    /// `revisionHistoryLimit`, defaulting to 10.
    pub fn revision_history_limit(&self) -> i32 {
        self.revision_history_limit.unwrap_or(10)
    }
}

/// A reference to the workload that provides the pod template.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadRef {
    /// API version of the workload, e.g. `apps/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `Deployment`, `ReplicaSet` or `PodTemplate`.
    #[serde(default)]
    pub kind: String,
    /// Name of the workload (same namespace).
    #[serde(default)]
    pub name: String,
    /// What to do with a referenced Deployment (default: leave it alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDown>,
}

/// How a Deployment referenced by `workloadRef` is scaled down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ScaleDown {
    /// Leave the Deployment alone.
    Never,
    /// Scale the Deployment to 0 once the rollout is Healthy.
    #[serde(rename = "onsuccess")]
    OnSuccess,
    /// Scale the Deployment down as the rollout scales up.
    Progressively,
}

/// `spec.rollbackWindow`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackWindow {
    /// Rolling back to one of this many previous revisions skips steps and analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisions: Option<i32>,
}

/// `spec.analysis`: history limits for AnalysisRuns and Experiments.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisRunStrategy {
    /// Successful runs to keep (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_run_history_limit: Option<i32>,
    /// Unsuccessful runs to keep (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsuccessful_run_history_limit: Option<i32>,
}

/// `spec.strategy`: exactly one of `canary` and `blueGreen`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutStrategy {
    /// The canary strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
    /// The blue-green strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
}
