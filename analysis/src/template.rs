//! Analysis template documents: Argo's `AnalysisTemplate`, `ClusterAnalysisTemplate` and
//! `AnalysisRun` (`argoproj.io/v1alpha1`) and Flagger's `MetricTemplate`
//! (`flagger.app/v1beta1`): types, parsing, validation and argument resolution.
//!
//! # Reading
//!
//! [`TemplateDocument::from_yaml`] reads one document of any of the four kinds;
//! [`template_documents`] reads a multi-document manifest and keeps only those kinds
//! (Rollouts, Services, Deployments, ... are skipped). The YAML is first read into a
//! `serde_json::Value`, then into the typed structs with `serde_path_to_error`, so every
//! error names the field, e.g. `spec.metrics[0].provider.prometheus.query: invalid type:
//! integer `1`, expected a string`. Errors are [`SpecError`]s, as for Rollouts.
//!
//! # Unknown fields and providers
//!
//! Objects Argo owns are strict (`deny_unknown_fields`): a typo is an error naming the
//! field. The providers this project implements — `prometheus`, `web`, `job` and
//! `kayenta` — are modelled field by field and strictly. The others (`datadog`,
//! `newRelic`, `wavefront`, `cloudWatch`, `graphite`, `influxdb`, `skywalking`, `plugin`)
//! are kept verbatim as free-form `serde_json::Value`, so that documents written for newer
//! Argo versions still read and round-trip; only their presence counts (for the
//! exactly-one-provider rule). A job's `metadata` and `spec` are free-form too (they belong
//! to Kubernetes, not to Argo). An `AnalysisRun`'s `status` is kept as free-form JSON.
//!
//! # Validation
//!
//! [`AnalysisTemplateSpec::validate`] (and the `validate` methods of the documents) check
//! Argo's rules and return *all* violations as [`ValidationErrors`] with field paths: at
//! least one metric (unless the template composes others through `templates`), unique
//! names, `failureLimit >= -1`, `inconclusiveLimit >= 0`, `consecutiveErrorLimit >= 0`,
//! `consecutiveSuccessLimit >= 0`, failureLimit and consecutiveSuccessLimit not both
//! disabled, `count >= failureLimit + consecutiveSuccessLimit` and `count >=
//! inconclusiveLimit` when `count > 0`, `count > 1` requires an `interval`, durations parse
//! (Go syntax, [`Duration`]) and exactly one provider. Values that are still `{{args.x}}`
//! placeholders are not checked until [`resolve_args`] has substituted them.
//!
//! # Arguments
//!
//! [`resolve_args`] merges the template's `args` with the rollout's (rollout values win),
//! fails with [`ArgError`] naming the argument when a required one has no value, and
//! substitutes `{{args.name}}` in every string of the metrics (provider fields and
//! conditions). Values read from Secrets never appear in error messages;
//! [`ResolvedTemplate::redact`] removes them from any message.

use rollout_core::spec::yaml::{Chunk, parse_document, split_documents};
use std::collections::{BTreeMap, BTreeSet};

use rollout_core::duration::Duration;
use rollout_core::spec::{SpecError, ValidationError, ValidationErrors};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The `apiVersion` of Argo's analysis objects.
pub const ARGO_API_VERSION: &str = "argoproj.io/v1alpha1";
/// The `apiVersion` of Flagger's `MetricTemplate`.
pub const FLAGGER_API_VERSION: &str = "flagger.app/v1beta1";

fn is_false(b: &bool) -> bool {
    !*b
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An integer that may also be written as a string (Kubernetes `IntOrString`), e.g.
/// `count: 5`, `count: "5"` or `count: "{{args.count}}"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// Written as a number.
    Int(i64),
    /// Written as a string.
    String(String),
}

impl IntOrString {
    /// The integer value, if it is one (a string is parsed); `None` for placeholders or
    /// other text.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            IntOrString::Int(i) => Some(*i),
            IntOrString::String(s) => s.trim().parse().ok(),
        }
    }

    fn is_placeholder(&self) -> bool {
        matches!(self, IntOrString::String(s) if s.contains("{{"))
    }
}

/// Name, namespace, labels, ... (Kubernetes `ObjectMeta`).
pub type ObjectMeta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// An Argo `AnalysisTemplate` or `ClusterAnalysisTemplate` (same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisTemplate {
    /// Always `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// `AnalysisTemplate` or `ClusterAnalysisTemplate`.
    pub kind: String,
    /// Name, namespace, labels, ...
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The template.
    pub spec: AnalysisTemplateSpec,
}

/// The spec of a template (and, with extra fields, of a run).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisTemplateSpec {
    /// The metrics.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metrics: Vec<Metric>,
    /// Arguments (an arg without value is required).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Argument>,
    /// Metrics (Go regexps over names) run in dry-run mode.
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
    /// Other templates whose metrics and args are merged into this one.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub templates: Vec<TemplateRef>,
}

/// A reference to another template (`spec.templates[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRef {
    /// The template's name.
    #[serde(default)]
    pub template_name: String,
    /// A `ClusterAnalysisTemplate` rather than a namespaced one.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub cluster_scope: bool,
}

/// `dryRun[]`: a Go regexp (unanchored) over metric names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DryRun {
    /// The pattern.
    pub metric_name: String,
}

/// `measurementRetention[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeasurementRetention {
    /// The pattern (Go regexp, unanchored) over metric names.
    pub metric_name: String,
    /// Measurements kept.
    pub limit: i32,
}

/// A template or run argument.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Argument {
    /// The name used in `{{args.name}}`.
    pub name: String,
    /// A literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where the value comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// `args[].valueFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueFrom {
    /// A key of a Secret in the run's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A field of the rollout, e.g. `metadata.labels['region']`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
    /// The stable or latest pod-template hash (rollout side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_hash_value: Option<String>,
}

/// `valueFrom.secretKeyRef`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret.
    pub name: String,
    /// The key.
    pub key: String,
}

/// `valueFrom.fieldRef`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldRef {
    /// The field path.
    pub field_path: String,
}

/// One metric.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metric {
    /// Unique name.
    pub name: String,
    /// Time between measurements (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Delay before the first measurement (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// Number of measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// expr-lang condition for success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// expr-lang condition for failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Failed measurements tolerated (default 0; -1 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// Inconclusive measurements tolerated (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// Consecutive errors tolerated (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// Consecutive successes that end the metric successfully (default 0 = disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<IntOrString>,
    /// Where measurements come from.
    #[serde(default)]
    pub provider: MetricProvider,
}

/// `metrics[].provider`: exactly one field must be set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricProvider {
    /// Prometheus query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// HTTP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    /// Kubernetes Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobMetric>,
    /// Kayenta canary analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kayenta: Option<KayentaMetric>,
    /// Datadog (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<Value>,
    /// New Relic (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_relic: Option<Value>,
    /// Wavefront (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wavefront: Option<Value>,
    /// CloudWatch (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch: Option<Value>,
    /// Graphite (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphite: Option<Value>,
    /// InfluxDB (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influxdb: Option<Value>,
    /// SkyWalking (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skywalking: Option<Value>,
    /// Metric plugins, `{"<name>": config}` (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Value>,
}

impl MetricProvider {
    /// Names (Argo spelling) of the providers that are set.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                out.push(name);
            }
        };
        add(self.prometheus.is_some(), "prometheus");
        add(self.web.is_some(), "web");
        add(self.job.is_some(), "job");
        add(self.kayenta.is_some(), "kayenta");
        add(self.datadog.is_some(), "datadog");
        add(self.new_relic.is_some(), "newRelic");
        add(self.wavefront.is_some(), "wavefront");
        add(self.cloud_watch.is_some(), "cloudWatch");
        add(self.graphite.is_some(), "graphite");
        add(self.influxdb.is_some(), "influxdb");
        add(self.skywalking.is_some(), "skywalking");
        add(self.plugin.is_some(), "plugin");
        out
    }
}

/// An HTTP header (`{key, value}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// Name.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// `prometheus` provider.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusMetric {
    /// Server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// PromQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Query timeout in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Skip TLS verification.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub insecure: bool,
    /// Extra HTTP headers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers: Vec<Header>,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// A range query instead of an instant one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_query: Option<RangeQuery>,
}

/// `prometheus.rangeQuery` (`start`/`end` are expr-lang time expressions).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RangeQuery {
    /// Start expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Step (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// Provider authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authentication {
    /// AWS SigV4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4>,
    /// OAuth2 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// Basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// `authentication.sigv4`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sigv4 {
    /// AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AWS profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Role to assume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// `authentication.oauth2`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2 {
    /// Token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Scopes.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scopes: Vec<String>,
}

/// `authentication.basicAuth`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `web` provider.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebMetric {
    /// URL.
    #[serde(default)]
    pub url: String,
    /// `GET` (default), `POST` or `PUT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Extra headers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers: Vec<Header>,
    /// Request body as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Request body as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_body: Option<Value>,
    /// Timeout in seconds (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// JSONPath into the response (default `{$}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// Skip TLS verification.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub insecure: bool,
    /// Authentication (OAuth2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// `job` provider: a Kubernetes Job (free-form metadata and JobSpec).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobMetric {
    /// Job metadata (labels, annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The JobSpec.
    #[serde(default)]
    pub spec: Value,
}

/// `kayenta` provider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KayentaMetric {
    /// Kayenta URL.
    #[serde(default)]
    pub address: String,
    /// Application name.
    #[serde(default)]
    pub application: String,
    /// Canary config name.
    #[serde(default)]
    pub canary_config_name: String,
    /// Metrics account.
    #[serde(default)]
    pub metrics_account_name: String,
    /// Configuration account.
    #[serde(default)]
    pub configuration_account_name: String,
    /// Storage account.
    #[serde(default)]
    pub storage_account_name: String,
    /// Score thresholds.
    #[serde(default)]
    pub threshold: KayentaThreshold,
    /// Scopes compared.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scopes: Vec<KayentaScope>,
}

/// `kayenta.threshold`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KayentaThreshold {
    /// Score at or above which the measurement succeeds.
    #[serde(default)]
    pub pass: i64,
    /// Score at or above which it is inconclusive.
    #[serde(default)]
    pub marginal: i64,
}

/// `kayenta.scopes[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KayentaScope {
    /// Scope name.
    #[serde(default)]
    pub name: String,
    /// The control (baseline).
    #[serde(default)]
    pub control_scope: ScopeDetail,
    /// The experiment (canary).
    #[serde(default)]
    pub experiment_scope: ScopeDetail,
}

/// A Kayenta scope.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopeDetail {
    /// Scope selector.
    #[serde(default)]
    pub scope: String,
    /// Region.
    #[serde(default)]
    pub region: String,
    /// Step in seconds.
    #[serde(default)]
    pub step: i64,
    /// Start time.
    #[serde(default)]
    pub start: String,
    /// End time.
    #[serde(default)]
    pub end: String,
}

/// An Argo `AnalysisRun`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisRun {
    /// Always `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// Always `AnalysisRun`.
    pub kind: String,
    /// Name, namespace, labels, ...
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The run.
    pub spec: AnalysisRunSpec,
    /// Status as written by a controller (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// The spec of an `AnalysisRun`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisRunSpec {
    /// The metrics.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metrics: Vec<Metric>,
    /// Arguments.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Argument>,
    /// Dry-run rules.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dry_run: Vec<DryRun>,
    /// Retention rules.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Stop the run.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub terminate: bool,
    /// Garbage collection after completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
}

/// `spec.ttlStrategy` of a run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TtlStrategy {
    /// Seconds after any completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i32>,
    /// Seconds after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i32>,
    /// Seconds after a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i32>,
}

/// A Flagger `MetricTemplate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricTemplate {
    /// Always `flagger.app/v1beta1`.
    pub api_version: String,
    /// Always `MetricTemplate`.
    pub kind: String,
    /// Name, namespace, labels, ...
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The template.
    pub spec: MetricTemplateSpec,
}

/// The spec of a Flagger `MetricTemplate`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricTemplateSpec {
    /// Where the query runs.
    pub provider: MetricTemplateProvider,
    /// The query, a Go text/template (`{{ namespace }}`, `{{ target }}`, `{{ interval }}`).
    #[serde(default)]
    pub query: String,
}

/// `spec.provider` of a `MetricTemplate`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricTemplateProvider {
    /// `prometheus`, `datadog`, `cloudwatch`, `newrelic`, `graphite`, ...
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Server address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Credentials Secret (in the template's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectRef>,
    /// HTTP headers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Cloud region (CloudWatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Skip TLS verification.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub insecure_skip_verify: bool,
}

/// A reference by name to an object in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectRef {
    /// Name.
    pub name: String,
}

/// One document of any of the four kinds.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TemplateDocument {
    /// `AnalysisTemplate`.
    AnalysisTemplate(AnalysisTemplate),
    /// `ClusterAnalysisTemplate`.
    ClusterAnalysisTemplate(AnalysisTemplate),
    /// `AnalysisRun`.
    AnalysisRun(AnalysisRun),
    /// Flagger `MetricTemplate`.
    MetricTemplate(MetricTemplate),
}

/// `(apiVersion, kind)` pairs read by this module.
const KINDS: [(&str, &str); 4] = [
    (ARGO_API_VERSION, "AnalysisTemplate"),
    (ARGO_API_VERSION, "ClusterAnalysisTemplate"),
    (ARGO_API_VERSION, "AnalysisRun"),
    (FLAGGER_API_VERSION, "MetricTemplate"),
];

/// `true` when `kind` is one of the kinds this module reads.
pub fn is_template_kind(kind: &str) -> bool {
    KINDS.iter().any(|(_, k)| *k == kind)
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, SpecError> {
    serde_path_to_error::deserialize::<_, T>(v)
        .map_err(|e| field_error(&e.path().to_string(), &e.inner().to_string()))
}

/// Moves the field named by serde's "unknown/missing field" message into the path.
fn field_error(path: &str, message: &str) -> SpecError {
    let base = if path == "." { "" } else { path };
    for prefix in ["unknown field", "missing field"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(rest) = rest.strip_prefix(" `")
            && let Some((name, tail)) = rest.split_once('`')
        {
            let what = if prefix == "missing field" {
                "missing required field"
            } else {
                prefix
            };
            let already = base == name || base.ends_with(&format!(".{name}"));
            let path = if already || base.is_empty() && name.is_empty() {
                base.to_string()
            } else if base.is_empty() {
                name.to_string()
            } else {
                format!("{base}.{name}")
            };
            return SpecError::Field {
                path,
                message: format!("{what}{tail}"),
            };
        }
    }
    SpecError::Field {
        path: base.to_string(),
        message: message.to_string(),
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

impl TemplateDocument {
    /// Reads one YAML document.
    pub fn from_yaml(text: &str) -> Result<TemplateDocument, SpecError> {
        TemplateDocument::from_json_value(parse_document(text, 0)?)
    }

    /// Reads a JSON value.
    pub fn from_json_value(v: Value) -> Result<TemplateDocument, SpecError> {
        let Value::Object(obj) = &v else {
            return Err(SpecError::NotAMapping {
                found: value_kind(&v),
            });
        };
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let Some((api, kind)) = KINDS.iter().find(|(_, k)| *k == kind).copied() else {
            return Err(SpecError::Field {
                path: "kind".into(),
                message: format!(
                    "expected AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun or \
                     MetricTemplate, found {}",
                    obj.get("kind")
                        .map_or("nothing".to_string(), |k| k.to_string())
                ),
            });
        };
        if obj.get("apiVersion").and_then(Value::as_str) != Some(api) {
            return Err(SpecError::Field {
                path: "apiVersion".into(),
                message: format!(
                    "expected {api:?} for kind {kind}, found {}",
                    obj.get("apiVersion")
                        .map_or("nothing".to_string(), |k| k.to_string())
                ),
            });
        }
        Ok(match kind {
            "AnalysisTemplate" => TemplateDocument::AnalysisTemplate(typed(v)?),
            "ClusterAnalysisTemplate" => TemplateDocument::ClusterAnalysisTemplate(typed(v)?),
            "AnalysisRun" => TemplateDocument::AnalysisRun(typed(v)?),
            _ => TemplateDocument::MetricTemplate(typed(v)?),
        })
    }

    /// The document's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            TemplateDocument::AnalysisTemplate(_) => "AnalysisTemplate",
            TemplateDocument::ClusterAnalysisTemplate(_) => "ClusterAnalysisTemplate",
            TemplateDocument::AnalysisRun(_) => "AnalysisRun",
            TemplateDocument::MetricTemplate(_) => "MetricTemplate",
        }
    }

    /// The object's name.
    pub fn name(&self) -> Option<&str> {
        let meta = match self {
            TemplateDocument::AnalysisTemplate(t)
            | TemplateDocument::ClusterAnalysisTemplate(t) => &t.metadata,
            TemplateDocument::AnalysisRun(r) => &r.metadata,
            TemplateDocument::MetricTemplate(m) => &m.metadata,
        };
        meta.name.as_deref()
    }

    /// Serializes to JSON (the inverse of [`TemplateDocument::from_json_value`]).
    pub fn to_json_value(&self) -> Value {
        let r = match self {
            TemplateDocument::AnalysisTemplate(t)
            | TemplateDocument::ClusterAnalysisTemplate(t) => serde_json::to_value(t),
            TemplateDocument::AnalysisRun(r) => serde_json::to_value(r),
            TemplateDocument::MetricTemplate(m) => serde_json::to_value(m),
        };
        // Serializing plain structs with string keys into a Value cannot fail.
        r.unwrap_or(Value::Null)
    }

    /// Checks Argo's (or Flagger's) rules; all violations, with field paths.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        match self {
            TemplateDocument::AnalysisTemplate(t)
            | TemplateDocument::ClusterAnalysisTemplate(t) => t.spec.validate(),
            TemplateDocument::AnalysisRun(r) => r.spec.validate(),
            TemplateDocument::MetricTemplate(m) => m.spec.validate(),
        }
    }
}

/// One document of a multi-document text, as returned by [`template_documents`].
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDocumentAt {
    /// 0-based index among the non-empty documents of the text.
    pub index: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The document.
    pub document: TemplateDocument,
}

/// Reads every `AnalysisTemplate`, `ClusterAnalysisTemplate`, `AnalysisRun` and
/// `MetricTemplate` document of a multi-document YAML text, skipping other kinds.
///
/// Errors are [`SpecError::Document`]s naming the document index and line; the first
/// error stops reading.
pub fn template_documents(text: &str) -> Result<Vec<TemplateDocumentAt>, SpecError> {
    let mut out = Vec::new();
    let mut index = 0usize;
    for Chunk {
        first_line: line,
        text: chunk,
        has_content,
    } in split_documents(text)
    {
        if !has_content {
            continue;
        }
        let wrap = |e: SpecError| SpecError::Document {
            index,
            line,
            source: Box::new(e),
        };
        let value = parse_document(chunk, line.saturating_sub(1)).map_err(wrap)?;
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        if value.is_object() && is_template_kind(kind) {
            let document = TemplateDocument::from_json_value(value).map_err(wrap)?;
            out.push(TemplateDocumentAt {
                index,
                line,
                document,
            });
        }
        index += 1;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Validation

struct Errors(Vec<ValidationError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

fn check_duration(errors: &mut Errors, path: &str, value: Option<&str>) {
    if let Some(v) = value
        && !v.contains("{{")
        && let Err(e) = Duration::parse(v)
    {
        errors.push(path, format!("invalid duration {v:?}: {e}"));
    }
}

/// A limit's integer value, reporting unparsable text. `None` when unset or a placeholder.
fn limit(errors: &mut Errors, path: &str, v: Option<&IntOrString>) -> Option<i64> {
    let v = v?;
    if v.is_placeholder() {
        return None;
    }
    match v.as_int() {
        Some(i) => Some(i),
        None => {
            errors.push(path, "must be an integer");
            None
        }
    }
}

fn validate_metrics(errors: &mut Errors, metrics: &[Metric], require_metric: bool) {
    if metrics.is_empty() && require_metric {
        errors.push("spec.metrics", "at least one metric is required");
    }
    let mut names = BTreeSet::new();
    for (i, m) in metrics.iter().enumerate() {
        let p = format!("spec.metrics[{i}]");
        if m.name.is_empty() {
            errors.push(format!("{p}.name"), "must not be empty");
        } else if !names.insert(m.name.as_str()) {
            errors.push(
                format!("{p}.name"),
                format!("duplicate metric name {:?}", m.name),
            );
        }
        let path = |f: &str| format!("{p}.{f}");
        let count = limit(errors, &path("count"), m.count.as_ref());
        let failure = limit(errors, &path("failureLimit"), m.failure_limit.as_ref());
        let inconclusive = limit(
            errors,
            &path("inconclusiveLimit"),
            m.inconclusive_limit.as_ref(),
        );
        let cerr = limit(
            errors,
            &path("consecutiveErrorLimit"),
            m.consecutive_error_limit.as_ref(),
        );
        let csucc = limit(
            errors,
            &path("consecutiveSuccessLimit"),
            m.consecutive_success_limit.as_ref(),
        );
        if count.is_some_and(|c| c < 0) {
            errors.push(path("count"), "must be >= 0");
        }
        if failure.is_some_and(|f| f < -1) {
            errors.push(path("failureLimit"), "must be >= -1");
        }
        if inconclusive.is_some_and(|v| v < 0) {
            errors.push(path("inconclusiveLimit"), "must be >= 0");
        }
        if cerr.is_some_and(|v| v < 0) {
            errors.push(path("consecutiveErrorLimit"), "must be >= 0");
        }
        if csucc.is_some_and(|v| v < 0) {
            errors.push(path("consecutiveSuccessLimit"), "must be >= 0");
        }
        // Defaults: failureLimit 0, consecutiveSuccessLimit 0 (disabled).
        let failure_unresolved = m.failure_limit.as_ref().is_some_and(|v| v.is_placeholder());
        let csucc_unresolved = m
            .consecutive_success_limit
            .as_ref()
            .is_some_and(|v| v.is_placeholder());
        if !failure_unresolved
            && !csucc_unresolved
            && failure == Some(-1)
            && csucc.unwrap_or(0) == 0
        {
            errors.push(
                path("failureLimit"),
                "failureLimit and consecutiveSuccessLimit cannot both be disabled",
            );
        }
        if let Some(c) = count.filter(|c| *c > 0) {
            let f = failure.unwrap_or(0).max(0);
            let s = csucc.unwrap_or(0).max(0);
            if !failure_unresolved && !csucc_unresolved && c < f + s {
                errors.push(
                    path("count"),
                    format!(
                        "count ({c}) must be >= failureLimit + consecutiveSuccessLimit ({})",
                        f + s
                    ),
                );
            }
            if let Some(ic) = inconclusive.filter(|ic| *ic >= 0)
                && c < ic
            {
                errors.push(
                    path("count"),
                    format!("count ({c}) must be >= inconclusiveLimit ({ic})"),
                );
            }
            if c > 1 && m.interval.as_deref().unwrap_or("").is_empty() {
                errors.push(
                    path("interval"),
                    "interval must be specified when count > 1",
                );
            }
        }
        check_duration(errors, &path("interval"), m.interval.as_deref());
        check_duration(errors, &path("initialDelay"), m.initial_delay.as_deref());
        let kinds = m.provider.kinds();
        match kinds.len() {
            0 => errors.push(path("provider"), "no provider specified"),
            1 => {}
            _ => errors.push(
                path("provider"),
                format!("multiple providers specified: {}", kinds.join(", ")),
            ),
        }
    }
}

fn validate_common(
    errors: &mut Errors,
    args: &[Argument],
    dry_run: &[DryRun],
    retention: &[MeasurementRetention],
) {
    let mut names = BTreeSet::new();
    for (i, a) in args.iter().enumerate() {
        let p = format!("spec.args[{i}]");
        if a.name.is_empty() {
            errors.push(format!("{p}.name"), "must not be empty");
        } else if !names.insert(a.name.as_str()) {
            errors.push(
                format!("{p}.name"),
                format!("duplicate argument name {:?}", a.name),
            );
        }
        if let Some(vf) = &a.value_from {
            let n = [
                vf.secret_key_ref.is_some(),
                vf.field_ref.is_some(),
                vf.pod_template_hash_value.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if n != 1 {
                errors.push(
                    format!("{p}.valueFrom"),
                    "exactly one of secretKeyRef, fieldRef, podTemplateHashValue is required",
                );
            }
            if a.value.is_some() {
                errors.push(
                    format!("{p}.value"),
                    "value and valueFrom cannot both be set",
                );
            }
        }
    }
    for (i, d) in dry_run.iter().enumerate() {
        if d.metric_name.is_empty() {
            errors.push(format!("spec.dryRun[{i}].metricName"), "must not be empty");
        }
    }
    for (i, r) in retention.iter().enumerate() {
        if r.metric_name.is_empty() {
            errors.push(
                format!("spec.measurementRetention[{i}].metricName"),
                "must not be empty",
            );
        }
        if r.limit < 0 {
            errors.push(
                format!("spec.measurementRetention[{i}].limit"),
                "must be >= 0",
            );
        }
    }
}

impl AnalysisTemplateSpec {
    /// Checks Argo's rules (see the module docs); all violations, in field order.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Errors(Vec::new());
        validate_metrics(&mut errors, &self.metrics, self.templates.is_empty());
        validate_common(
            &mut errors,
            &self.args,
            &self.dry_run,
            &self.measurement_retention,
        );
        for (i, t) in self.templates.iter().enumerate() {
            if t.template_name.is_empty() {
                errors.push(
                    format!("spec.templates[{i}].templateName"),
                    "must not be empty",
                );
            }
        }
        errors.finish()
    }
}

impl AnalysisRunSpec {
    /// Checks Argo's rules (see the module docs); all violations, in field order.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Errors(Vec::new());
        validate_metrics(&mut errors, &self.metrics, true);
        validate_common(
            &mut errors,
            &self.args,
            &self.dry_run,
            &self.measurement_retention,
        );
        errors.finish()
    }
}

impl MetricTemplateSpec {
    /// Checks Flagger's rules: a provider type and a query.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Errors(Vec::new());
        if self.provider.kind.is_empty() {
            errors.push("spec.provider.type", "must not be empty");
        }
        if self.query.trim().is_empty() {
            errors.push("spec.query", "must not be empty");
        }
        errors.finish()
    }
}

// ---------------------------------------------------------------------------------------
// Arguments

/// Why arguments could not be resolved. Messages name arguments, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// A required argument (no value in the template) got no value.
    #[error("args.{name} was not resolved")]
    Missing {
        /// The argument.
        name: String,
    },
    /// An argument's `valueFrom` could not be looked up.
    #[error("args.{name}: valueFrom could not be resolved")]
    Unresolved {
        /// The argument.
        name: String,
    },
    /// A `{{args.name}}` placeholder names no argument.
    #[error("failed to resolve {{{{args.{name}}}}}: no such argument")]
    Unknown {
        /// The name in the placeholder.
        name: String,
    },
    /// After substitution a metric no longer has its typed shape (e.g. a count that is not
    /// a number). The message is redacted.
    #[error("{path}: {message}")]
    Invalid {
        /// JSON path in the template.
        path: String,
        /// What is wrong (secret values redacted).
        message: String,
    },
}

/// A template with every `{{args.name}}` substituted.
#[derive(Clone, PartialEq)]
pub struct ResolvedTemplate {
    /// The metrics, substituted.
    pub metrics: Vec<Metric>,
    /// The dry-run rules.
    pub dry_run: Vec<DryRun>,
    /// The retention rules.
    pub measurement_retention: Vec<MeasurementRetention>,
    /// The final argument values, by name.
    pub args: BTreeMap<String, String>,
    secrets: Vec<String>,
}

impl std::fmt::Debug for ResolvedTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let args: BTreeMap<&str, &str> = self
            .args
            .iter()
            .map(|(k, v)| {
                let shown = if self.secrets.contains(v) {
                    "*****"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("ResolvedTemplate")
            .field("metrics", &self.redact(&format!("{:?}", self.metrics)))
            .field("dry_run", &self.dry_run)
            .field("measurement_retention", &self.measurement_retention)
            .field("args", &args)
            .finish()
    }
}

impl ResolvedTemplate {
    /// `message` with every secret value replaced by `*****`.
    pub fn redact(&self, message: &str) -> String {
        redact(message, &self.secrets)
    }

    /// Whether the value of argument `name` came from a Secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.args
            .get(name)
            .is_some_and(|v| self.secrets.contains(v))
    }
}

fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "*****");
    }
    out
}

/// A value for an argument's `valueFrom`, supplied by the caller of
/// [`resolve_args_with`].
pub trait ValueSource {
    /// The value of `value_from` for argument `name`, or `None` when it cannot be found.
    fn lookup(&self, name: &str, value_from: &ValueFrom) -> Option<String>;
}

impl<F: Fn(&str, &ValueFrom) -> Option<String>> ValueSource for F {
    fn lookup(&self, name: &str, value_from: &ValueFrom) -> Option<String> {
        self(name, value_from)
    }
}

/// [`resolve_args_with`] without a source for `valueFrom`: arguments that only have a
/// `valueFrom` fail with [`ArgError::Unresolved`].
pub fn resolve_args(
    template: &AnalysisTemplateSpec,
    rollout_args: &[Argument],
) -> Result<ResolvedTemplate, ArgError> {
    resolve_args_with(template, rollout_args, &|_: &str, _: &ValueFrom| None)
}

/// Merges the template's args with the rollout's (a rollout arg overrides the template
/// arg of the same name, rollout args the template does not declare are ignored, as
/// Argo does), then substitutes `{{args.name}}` in every string of every metric.
///
/// `valueFrom` values are asked from `source`; values from a `secretKeyRef` are secret
/// and are redacted from every error.
pub fn resolve_args_with(
    template: &AnalysisTemplateSpec,
    rollout_args: &[Argument],
    source: &dyn ValueSource,
) -> Result<ResolvedTemplate, ArgError> {
    let mut values = BTreeMap::new();
    let mut secrets = Vec::new();
    for arg in &template.args {
        let chosen = rollout_args
            .iter()
            .rev()
            .find(|a| a.name == arg.name)
            .filter(|a| a.value.is_some() || a.value_from.is_some())
            .unwrap_or(arg);
        let value = if let Some(v) = &chosen.value {
            v.clone()
        } else if let Some(vf) = &chosen.value_from {
            let v = source
                .lookup(&arg.name, vf)
                .ok_or_else(|| ArgError::Unresolved {
                    name: arg.name.clone(),
                })?;
            if vf.secret_key_ref.is_some() {
                secrets.push(v.clone());
            }
            v
        } else {
            return Err(ArgError::Missing {
                name: arg.name.clone(),
            });
        };
        values.insert(arg.name.clone(), value);
    }
    let mut metrics = Vec::with_capacity(template.metrics.len());
    for (i, m) in template.metrics.iter().enumerate() {
        let mut v = serde_json::to_value(m).map_err(|e| ArgError::Invalid {
            path: format!("spec.metrics[{i}]"),
            message: e.to_string(),
        })?;
        substitute(&mut v, &values)?;
        let metric: Metric =
            serde_path_to_error::deserialize(v).map_err(|e| ArgError::Invalid {
                path: match e.path().to_string().as_str() {
                    "." => format!("spec.metrics[{i}]"),
                    sub => format!("spec.metrics[{i}].{sub}"),
                },
                message: redact(&e.inner().to_string(), &secrets),
            })?;
        metrics.push(metric);
    }
    Ok(ResolvedTemplate {
        metrics,
        dry_run: template.dry_run.clone(),
        measurement_retention: template.measurement_retention.clone(),
        args: values,
        secrets,
    })
}

/// Replaces `{{args.name}}` in every string of `v` (integer-or-string fields accept the
/// substituted text, so `count: "{{args.n}}"` becomes `count: "5"`).
fn substitute(v: &mut Value, args: &BTreeMap<String, String>) -> Result<(), ArgError> {
    match v {
        Value::String(s) => {
            *s = substitute_str(s, args)?;
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|i| substitute(i, args)),
        Value::Object(map) => map.values_mut().try_for_each(|i| substitute(i, args)),
        _ => Ok(()),
    }
}

/// Substitutes `{{args.name}}` (no spaces, as Argo's fasttemplate) in one string.
pub fn substitute_str(s: &str, args: &BTreeMap<String, String>) -> Result<String, ArgError> {
    const OPEN: &str = "{{args.";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len()..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let name = &after[..end];
        match args.get(name) {
            Some(v) => out.push_str(v),
            None => {
                return Err(ArgError::Unknown {
                    name: name.to_string(),
                });
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
