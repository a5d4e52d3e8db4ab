//! Flagger `Canary` documents (`flagger.app/v1beta1`): types, parsing and validation.
//!
//! # What is modelled
//!
//! [`Canary`] is the whole object: `apiVersion`, `kind`, `metadata` (Kubernetes
//! `ObjectMeta`), [`CanarySpec`] and an optional [`CanaryStatus`]. The spec covers every
//! field of Flagger's CRD (snapshot 1.44.0): the target, autoscaler, ingress, route and
//! upstream references, the generated Services and routing options ([`CanaryService`]),
//! and the analysis ([`CanaryAnalysis`]: schedule, weights, [`CanaryMetric`]s,
//! [`CanaryWebhook`]s, [`CanaryAlert`]s, A/B match conditions, session affinity). Field
//! names on the wire are Flagger's (camelCase); Rust names are their snake_case forms
//! (`match` is `match_`). Parsing, then serializing with serde_json and parsing again
//! gives an equal value.
//!
//! Flagger derives most of its behaviour from a few numbers; the accessors apply its
//! defaults: [`CanaryAnalysis::interval_seconds`], [`CanaryAnalysis::threshold`],
//! [`CanaryAnalysis::max_weight`], [`CanaryAnalysis::strategy`] (and
//! [`CanarySpec::strategy`], which knows that provider `kubernetes` forces blue/green),
//! [`CanarySpec::progress_deadline_seconds`], ...
//!
//! [`Canary::from_yaml`] reads one document; [`canary_documents`] and
//! [`canaries_from_yaml_documents`] read a multi-document manifest, keep its `Canary`
//! documents and skip the other kinds (Deployments, Services, `MetricTemplate`s, ...).
//!
//! # Unknown fields
//!
//! Objects Flagger owns are strict (`deny_unknown_fields`): the `Canary` itself, its
//! spec, the references, `service` (but not the Istio and Gateway API objects inside it),
//! `analysis`, metrics, `thresholdRange`, webhooks, alerts, `sessionAffinity`, the
//! `apex`/`primary`/`canary` metadata. A typo such as `stepWieght` is an error naming the
//! field (`spec.analysis.stepWieght: unknown field, expected one of ...`), because the
//! API server prunes fields its CRD does not list and the canary would silently behave
//! differently from what its author wrote. The deprecated `canaryAnalysis` alias is not
//! in the CRD (the API server drops it), so it is rejected too.
//!
//! Objects Flagger passes through to a mesh or gateway are kept as written: Istio's
//! `trafficPolicy` is a plain JSON value; `match` ([`HttpMatchRequest`] and its
//! [`StringMatch`]es), `rewrite`, `retries`, `headers`, `corsPolicy`, `gatewayRefs` and
//! `mirror` type the fields Flagger's routers read and keep any other field in an
//! `extra` map, so a field added by a newer Istio or Gateway API version survives a round
//! trip. (Flagger's CRD lists the fields it knows for some of these objects, and the API
//! server would prune others; this crate keeps them rather than guess which version of
//! the CRD is installed.) `metadata` follows k8s-openapi (unknown fields ignored), and
//! the `status` ([`CanaryStatus`]) is read leniently, since a controller writes it.
//!
//! An explicit `null` for an optional field reads as "absent", as the API server treats
//! it.
//!
//! # Errors: parsing versus validation
//!
//! Reading fails with a [`SpecError`] (the type of [`crate::spec`], shared by both APIs)
//! only when the document cannot be represented: YAML syntax, a wrong `apiVersion` or
//! `kind` (reported as a [`SpecError::Field`] at `apiVersion` / `kind`), a value of the
//! wrong type, an unknown field of a strict object, or a missing field the types require
//! (`spec.targetRef`, its `kind` and `name`, `service.port` when `service` is written,
//! `metrics[].name`, `webhooks[].name` and `.url`, `alerts[].name` and `.providerRef`,
//! `sessionAffinity.cookieName`: all required by Flagger's CRD). The path names the field:
//! `spec.analysis.stepWeight: invalid type: string "x", expected i32`.
//!
//! [`Canary::validate`] then checks the rules of a well-typed canary and returns *all*
//! violations as [`ValidationErrors`], each with its path. The rules come from three
//! places, and each one says which in `validate.rs`: Flagger's CRD (what the API server
//! rejects: enums, required fields, the `analysis` one-of, duration patterns), Flagger's
//! own checks (session affinity cookie names, delegation without hosts or gateways, the
//! references each provider needs, metrics without a query), and settings under which
//! Flagger's loop can never finish (a `maxWeight` above 100, a `stepWeights` ladder that
//! does not increase, a `thresholdRange` no value can satisfy).

mod analysis;
mod service;
mod validate;

// YAML loading and serde helpers are shared with the Argo spec module.
use crate::spec::{serde_util, yaml};

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use analysis::{
    AlertSeverity, BUILTIN_METRICS, CanaryAlert, CanaryAnalysis, CanaryMetric, CanaryWebhook,
    HookType, SessionAffinity, Strategy, ThresholdRange,
};
pub use service::{
    BackendRef, CanaryService, CorsPolicy, CustomMetadata, GatewayRef, HeaderOperations, Headers,
    HttpMatchRequest, HttpRequestMirror, HttpRetry, HttpRewrite, IntOrString, StringMatch,
    UnmanagedMetadata,
};

use crate::flagger::status::CanaryStatus;
pub use crate::spec::{SpecError, ValidationError, ValidationErrors};
use serde_util::{is_false, null_default};

/// The `apiVersion` of a Flagger `Canary`.
pub const API_VERSION: &str = "flagger.app/v1beta1";
/// The `kind` of a Flagger `Canary`.
pub const KIND: &str = "Canary";

/// A Flagger `Canary` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Canary {
    /// Always `flagger.app/v1beta1`.
    pub api_version: String,
    /// Always `Canary`.
    pub kind: String,
    /// Name, namespace, labels, annotations, ...
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: CanarySpec,
    /// The observed state, as written by a controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CanaryStatus>,
}

impl Default for Canary {
    /// An empty canary with [`API_VERSION`] and [`KIND`] filled in.
    fn default() -> Self {
        Canary {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            metadata: ObjectMeta::default(),
            spec: CanarySpec::default(),
            status: None,
        }
    }
}

impl Canary {
    /// Reads one YAML document (a text with several documents is an error; see
    /// [`canaries_from_yaml_documents`]).
    pub fn from_yaml(text: &str) -> Result<Canary, SpecError> {
        let value = yaml::parse_document(text, 0)?;
        Canary::from_json_value(value)
    }

    /// Reads a JSON value (e.g. from `serde_json::from_str`, or a Kubernetes watch).
    pub fn from_json_value(v: Value) -> Result<Canary, SpecError> {
        let Value::Object(obj) = &v else {
            return Err(SpecError::NotAMapping {
                found: value_kind(&v),
            });
        };
        let found = |key: &str| match obj.get(key) {
            None => "nothing".to_string(),
            Some(Value::String(s)) => format!("{s:?}"),
            Some(other) => other.to_string(),
        };
        if obj.get("kind").and_then(Value::as_str) != Some(KIND) {
            return Err(SpecError::Field {
                path: "kind".to_string(),
                message: format!("expected {KIND:?}, found {}", found("kind")),
            });
        }
        if obj.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION) {
            return Err(SpecError::Field {
                path: "apiVersion".to_string(),
                message: format!("expected {API_VERSION:?}, found {}", found("apiVersion")),
            });
        }
        serde_path_to_error::deserialize::<_, Canary>(v)
            .map_err(|e| SpecError::from_serde(&e.path().to_string(), &e.inner().to_string()))
    }

    /// Checks every rule of a well-typed canary (see the module docs); all violations
    /// are returned, in field order.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let errors = validate::validate(self);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The analysis, if there is one.
    pub fn analysis(&self) -> Option<&CanaryAnalysis> {
        self.spec.analysis.as_ref()
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

/// One `Canary` document of a multi-document YAML text.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryDocument {
    /// 0-based index of the document among the non-empty documents of the text.
    pub index: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The canary, or why it could not be read.
    pub result: Result<Canary, SpecError>,
}

/// Reads the `Canary` documents of a multi-document YAML text (`---` separated).
///
/// Returns one entry per document whose `kind` is `Canary`, in order; documents of other
/// kinds and empty documents are skipped. A document that is not valid YAML cannot be
/// classified and is returned as an error too, and so is a `Canary` of another API group
/// (it fails the `apiVersion` check). Each entry carries the document's index and first
/// line.
pub fn canary_documents(text: &str) -> Vec<CanaryDocument> {
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
                Canary::from_json_value(value)
            }
        };
        out.push(CanaryDocument {
            index,
            line: chunk.first_line,
            result,
        });
        index += 1;
    }
    out
}

/// Reads the `Canary` documents of a multi-document YAML text: like
/// [`canary_documents`], with each error wrapped in [`SpecError::Document`] so that it
/// names its document.
pub fn canaries_from_yaml_documents(text: &str) -> Vec<Result<Canary, SpecError>> {
    canary_documents(text)
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

/// `spec` of a `Canary`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanarySpec {
    /// Traffic provider (`istio`, `linkerd`, `nginx`, `gatewayapi:v1`, `kubernetes`, ...);
    /// unset: the controller's `-mesh-provider` flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Prometheus URL for builtin metrics and inline queries; unset: the controller's
    /// `-metrics-server` flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<String>,
    /// The workload to canary: a Deployment, DaemonSet or Service (or a Knative Service).
    pub target_ref: LocalObjectReference,
    /// HorizontalPodAutoscaler or KEDA ScaledObject of the target, cloned for the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler_ref: Option<AutoscalerReference>,
    /// Ingress to copy for the canary (`nginx`, `skipper`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_ref: Option<LocalObjectReference>,
    /// ApisixRoute to copy for the canary (`apisix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_ref: Option<LocalObjectReference>,
    /// Gloo Upstream used as a template for the generated upstreams (`gloo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ref: Option<CrossNamespaceObjectReference>,
    /// The generated Services and routing options.
    #[serde(default, skip_serializing_if = "CanaryService::is_unset")]
    pub service: CanaryService,
    /// How a new revision is analysed (required by the CRD; none behaves as
    /// `skipAnalysis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<CanaryAnalysis>,
    /// Seconds a workload may take to become ready (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Promote a new revision without analysis.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub skip_analysis: bool,
    /// Do nothing until unset; an analysis in progress pauses.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub suspend: bool,
    /// On deletion, restore the target and the routing objects Flagger changed.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub revert_on_deletion: bool,
}

impl CanarySpec {
    /// `progressDeadlineSeconds`, defaulting to 600.
    pub fn progress_deadline_seconds(&self) -> i32 {
        self.progress_deadline_seconds.unwrap_or(600)
    }

    /// Name of the apex Service: `service.name`, else `targetRef.name`.
    pub fn apex_name(&self) -> &str {
        self.service
            .name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.target_ref.name)
    }

    /// Whether a new revision is promoted without analysis: `skipAnalysis`, or no
    /// `analysis` at all (Flagger treats a missing analysis the same way).
    pub fn skips_analysis(&self) -> bool {
        self.skip_analysis || self.analysis.is_none()
    }

    /// The strategy Flagger runs: [`CanaryAnalysis::strategy`], except that provider
    /// `kubernetes` (set on this canary) always runs blue/green (Flagger then drops
    /// `match` and uses 10 iterations when `iterations < 1`). Without an analysis:
    /// [`Strategy::Canary`]. A provider taken from the controller's flag is not known
    /// here.
    pub fn strategy(&self) -> Strategy {
        if self.provider.as_deref() == Some("kubernetes") {
            return Strategy::BlueGreen;
        }
        self.analysis
            .as_ref()
            .map_or(Strategy::Canary, CanaryAnalysis::strategy)
    }
}

/// A reference to an object in the canary's namespace (`targetRef`, `ingressRef`,
/// `routeRef`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectReference {
    /// API version, e.g. `apps/v1` (required by the CRD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// A reference to an object that may live in another namespace (`upstreamRef`,
/// `metrics[].templateRef`, `alerts[].providerRef`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrossNamespaceObjectReference {
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace (default: the canary's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `spec.autoscalerRef`: the target's HorizontalPodAutoscaler or KEDA ScaledObject.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoscalerReference {
    /// API version, e.g. `autoscaling/v2` (required by the CRD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `HorizontalPodAutoscaler` or `ScaledObject`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// KEDA trigger queries for the primary's ScaledObject, by trigger name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub primary_scaler_queries: BTreeMap<String, String>,
    /// Replica bounds for the primary's scaler (default: the target scaler's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_scaler_replicas: Option<ScalerReplicas>,
}

/// `autoscalerRef.primaryScalerReplicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalerReplicas {
    /// Minimum replicas (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Maximum replicas (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
}
