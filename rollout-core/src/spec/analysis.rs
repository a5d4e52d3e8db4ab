//! Analysis references (inline `analysis` steps, background and blue-green analysis) and
//! the `experiment` step.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

use super::serde_util::{is_false, null_default};

/// Labels and annotations added to pods while they have a role (`canaryMetadata`,
/// `stableMetadata`, `previewMetadata`, `activeMetadata`) or to an experiment's
/// ReplicaSet (Argo's `PodTemplateMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodMetadata {
    /// Labels to add.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// Labels and annotations added to the AnalysisRuns a rollout creates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisRunMetadata {
    /// Labels to add.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// An AnalysisRun to create from one or more templates (`analysis` step,
/// `prePromotionAnalysis`, `postPromotionAnalysis`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutAnalysis {
    /// The templates whose metrics are combined into one AnalysisRun.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub templates: Vec<AnalysisTemplateRef>,
    /// Arguments passed to the templates.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<AnalysisRunArgument>,
    /// Metrics evaluated in dry-run mode (their failures do not fail the run).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Labels and annotations for the AnalysisRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
}

/// Background analysis of a canary (`spec.strategy.canary.analysis`): a
/// [`RolloutAnalysis`] that runs for the whole update, from `startingStep` on.
///
/// On the wire the analysis fields and `startingStep` sit side by side in one object.
/// Reading goes through an explicit field list (not `#[serde(flatten)]`) so that unknown
/// fields are rejected and errors keep their field path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "BackgroundAnalysisRepr")]
pub struct BackgroundAnalysis {
    /// The analysis to run.
    #[serde(flatten)]
    pub analysis: RolloutAnalysis,
    /// Index of the step from which the run is created (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<i32>,
}

/// The wire form of [`BackgroundAnalysis`], used for reading.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BackgroundAnalysisRepr {
    #[serde(default, deserialize_with = "null_default")]
    templates: Vec<AnalysisTemplateRef>,
    #[serde(default, deserialize_with = "null_default")]
    args: Vec<AnalysisRunArgument>,
    #[serde(default, deserialize_with = "null_default")]
    dry_run: Vec<DryRun>,
    #[serde(default, deserialize_with = "null_default")]
    measurement_retention: Vec<MeasurementRetention>,
    #[serde(default)]
    analysis_run_metadata: Option<AnalysisRunMetadata>,
    #[serde(default)]
    starting_step: Option<i32>,
}

impl From<BackgroundAnalysisRepr> for BackgroundAnalysis {
    fn from(r: BackgroundAnalysisRepr) -> Self {
        BackgroundAnalysis {
            analysis: RolloutAnalysis {
                templates: r.templates,
                args: r.args,
                dry_run: r.dry_run,
                measurement_retention: r.measurement_retention,
                analysis_run_metadata: r.analysis_run_metadata,
            },
            starting_step: r.starting_step,
        }
    }
}

/// A reference to an `AnalysisTemplate` (or `ClusterAnalysisTemplate`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisTemplateRef {
    /// Name of the template.
    #[serde(default)]
    pub template_name: String,
    /// Look the name up among `ClusterAnalysisTemplate`s instead of the namespace's
    /// `AnalysisTemplate`s.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub cluster_scope: bool,
}

/// An argument for an AnalysisRun: a literal `value` or a `valueFrom` reference.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisRunArgument {
    /// Argument name, as used in `{{args.<name>}}`.
    pub name: String,
    /// A literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where to take the value from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgumentValueFrom>,
}

/// The source of an argument value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgumentValueFrom {
    /// The pod template hash of the stable or the latest ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_hash_value: Option<PodTemplateHashValue>,
    /// A field of the Rollout, e.g. `metadata.labels['app']`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// Which ReplicaSet's pod template hash an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PodTemplateHashValue {
    /// The stable ReplicaSet.
    Stable,
    /// The newest ReplicaSet.
    Latest,
}

/// A reference to a field of the Rollout object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldRef {
    /// Path of the field, e.g. `metadata.name`.
    pub field_path: String,
}

/// A metric to run in dry-run mode.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DryRun {
    /// Metric name (Argo allows regular expressions such as `.*`).
    pub metric_name: String,
}

/// How many measurements of a metric an AnalysisRun keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeasurementRetention {
    /// Metric name (Argo allows regular expressions such as `.*`).
    pub metric_name: String,
    /// Number of measurements to keep.
    pub limit: i32,
}

/// The `experiment` canary step: run ReplicaSets from the stable or canary template
/// (and optionally analyses) next to the rollout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentStep {
    /// The ReplicaSets to run.
    #[serde(default, deserialize_with = "null_default")]
    pub templates: Vec<ExperimentTemplate>,
    /// How long the experiment runs (Go duration or a number of seconds as a string);
    /// unset = until the analyses finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Analyses run against the experiment.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub analyses: Vec<ExperimentAnalysis>,
    /// Metrics evaluated in dry-run mode.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Labels and annotations for the AnalysisRuns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
    /// Delay before the experiment's ReplicaSets are scaled down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
}

/// One ReplicaSet of an experiment step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentTemplate {
    /// Name of the template (unique within the step).
    pub name: String,
    /// Which pod template to copy.
    pub spec_ref: SpecRef,
    /// Number of pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Share of traffic for these pods (traffic routing with ALB, SMI or Istio only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Selector for the ReplicaSet (default: the rollout's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Extra labels and annotations for the ReplicaSet's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodMetadata>,
    /// Create a Service for the ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<TemplateService>,
}

/// Which ReplicaSet an experiment template copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SpecRef {
    /// The stable ReplicaSet's template.
    Stable,
    /// The canary (new) ReplicaSet's template.
    Canary,
}

/// The Service created for an experiment template.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateService {
    /// Service name (default: generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An analysis run as part of an experiment step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentAnalysis {
    /// Name of this analysis within the experiment.
    pub name: String,
    /// The template to run.
    pub template_name: String,
    /// Look `templateName` up among `ClusterAnalysisTemplate`s.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub cluster_scope: bool,
    /// Arguments passed to the template.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<AnalysisRunArgument>,
    /// The experiment completes only once this analysis has completed.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub required_for_completion: bool,
}
