//! The analysis runner: from a rollout machine's `StartAnalysisRun` to a verdict.
//!
//! # Model
//!
//! rollout-core's canary and blue-green machines treat analysis as a port: they emit
//! [`Action::StartAnalysisRun`] (with the rollout's [`RolloutAnalysis`]: template
//! references, args, dry-run and retention rules) and [`Action::TerminateAnalysisRun`],
//! and they observe each run as an [`AnalysisRunState`] (name, phase, message). This
//! module is the other side of that port, in four pure layers:
//!
//! 1. **Templates.** A [`TemplateCatalog`] holds AnalysisTemplates (per namespace) and
//!    ClusterAnalysisTemplates. [`TemplateCatalog::compose`] flattens a list of
//!    references, following `spec.templates` recursively: metrics are concatenated (a
//!    duplicate name is an error), arguments merged (the same name twice must agree),
//!    dry-run and retention rules concatenated. Cycles and missing templates are errors
//!    naming the template.
//! 2. **The AnalysisRun object.** [`build_run`] turns a [`RunRequest`] (usually made with
//!    [`RunRequest::from_action`]) into the `AnalysisRun` Argo's rollout controller would
//!    create: Argo's labels (`rollout-type`, `step-index`, `rollouts-pod-template-hash`),
//!    the analysis' `analysisRunMetadata`, an owner reference to the rollout, and the
//!    composed metrics with the rollout's arguments resolved to literal values
//!    (`podTemplateHashValue: Stable|Latest` and `fieldRef` into the rollout object).
//!    Template arguments with a `secretKeyRef` stay references in the run: secrets are
//!    never written into objects.
//! 3. **A prepared run.** [`PreparedRun::new`] resolves the run's `{{args.name}}` once
//!    (secrets through a [`ValueSource`]) and expands the `dryRun` / `measurementRetention`
//!    rules, which are unanchored regular expressions over metric names (`*` also matches
//!    every metric, as Argo's documentation advertises). A run that cannot be resolved —
//!    a missing secret, a rule that matches no metric — is not an error of the caller:
//!    like Argo, the run itself ends in phase `Error` with a message that names the
//!    argument or rule (secret values redacted). [`PreparedRun::reconcile`] is then one
//!    pass of the [`machine`](crate::machine) over it.
//! 4. **A set of runs.** [`AnalysisRuns`] is an embeddable analysis controller: it takes
//!    the rollout machines' actions ([`AnalysisRuns::apply`]), reports the runs' states
//!    for their next `Observed` ([`AnalysisRuns::states`]), says which metrics to measure
//!    ([`AnalysisRuns::reconcile`] returns [`MeasureRequest`]s), takes the providers'
//!    answers ([`AnalysisRuns::record`]) and names its next wake-up. Everything it holds
//!    is plain data that serializes; the clock and the providers stay outside.
//!
//! Two ways to answer measure requests: a synchronous [`MetricSource`] (simulations,
//! tests, benchmarks: [`AnalysisRuns::settle`] loops until nothing is due), or the async
//! [`Provider`] port through a [`Providers`] registry ([`AnalysisRuns::measure`]), which
//! is what a controller uses with the HTTP and Kubernetes providers.
//!
//! Deviations from Argo: a template without `metadata.namespace` in the catalog is found
//! from every namespace (manifests applied with `kubectl apply -n`), and a run whose
//! arguments cannot be resolved is created in phase `Error` instead of failing the
//! rollout's reconcile.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use rollout_core::canary::{Action, AnalysisRunKind, AnalysisRunState};
use rollout_core::spec::{
    AnalysisRunArgument, AnalysisTemplateRef, PodTemplateHashValue, RolloutAnalysis,
};
use rollout_core::status::AnalysisPhase;
use rollout_core::time::Timestamp;

use crate::expr::Value;
use crate::machine::{MeasurementResult, RunAction, RunDecision, RunOptions, RunStatus};
use crate::provider::{MeasureContext, Measured, Provider, ProviderError};
use crate::template::{
    AnalysisRun, AnalysisRunSpec, AnalysisTemplateSpec, Argument, DryRun, MeasurementRetention,
    Metric, ObjectMeta, ResolvedTemplate, TemplateDocument, TemplateRef, ValueFrom, ValueSource,
    resolve_args_with, template_documents,
};

/// Why a run could not be built or a catalog loaded. Messages name the template, metric,
/// argument or field; they never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// A referenced template does not exist.
    #[error("{kind} {name:?} not found{}", in_namespace(namespace))]
    TemplateNotFound {
        /// `AnalysisTemplate` or `ClusterAnalysisTemplate`.
        kind: &'static str,
        /// The template name.
        name: String,
        /// The namespace searched (empty for cluster templates).
        namespace: String,
    },
    /// Templates reference each other in a cycle.
    #[error("template references form a cycle: {}", chain.join(" -> "))]
    TemplateCycle {
        /// The names along the cycle, first repeated last.
        chain: Vec<String>,
    },
    /// Two templates define a metric with the same name.
    #[error("two metrics are named {metric:?} (templates {first:?} and {second:?})")]
    DuplicateMetric {
        /// The metric name.
        metric: String,
        /// The template of the first definition.
        first: String,
        /// The template of the second.
        second: String,
    },
    /// Two templates define the same argument differently.
    #[error("argument {name:?} is defined differently by templates {first:?} and {second:?}")]
    ConflictingArgument {
        /// The argument.
        name: String,
        /// The template of the first definition.
        first: String,
        /// The template of the second.
        second: String,
    },
    /// A rollout argument could not be resolved.
    #[error("analysis args[{index}] ({name}): {reason}")]
    RolloutArgument {
        /// Index in the rollout's `args`.
        index: usize,
        /// The argument's name.
        name: String,
        /// What is missing.
        reason: String,
    },
    /// The analysis names no template.
    #[error("the analysis references no template")]
    NoTemplates,
    /// A document could not be read into the catalog.
    #[error("{context}: {message}")]
    Document {
        /// Which document (`document 2 (line 40)`).
        context: String,
        /// What was wrong.
        message: String,
    },
}

fn in_namespace(ns: &str) -> String {
    if ns.is_empty() {
        String::new()
    } else {
        format!(" in namespace {ns:?}")
    }
}

// ---------------------------------------------------------------------------------
// Templates

/// The AnalysisTemplates and ClusterAnalysisTemplates a runner resolves references
/// against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateCatalog {
    /// `(namespace, name)`; namespace `""` when the document had none.
    namespaced: BTreeMap<(String, String), AnalysisTemplateSpec>,
    cluster: BTreeMap<String, AnalysisTemplateSpec>,
}

impl TemplateCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        TemplateCatalog::default()
    }

    /// Every AnalysisTemplate and ClusterAnalysisTemplate of a multi-document YAML
    /// stream; other kinds (Rollouts, Services, ...) are skipped. A template document
    /// that does not parse or validate is an error naming the document.
    pub fn from_yaml(text: &str) -> Result<Self, RunnerError> {
        let mut catalog = TemplateCatalog::new();
        catalog.add_yaml(text)?;
        Ok(catalog)
    }

    /// Adds the templates of a multi-document YAML stream (see [`Self::from_yaml`]).
    pub fn add_yaml(&mut self, text: &str) -> Result<(), RunnerError> {
        let docs = template_documents(text).map_err(|e| RunnerError::Document {
            context: "template stream".into(),
            message: e.to_string(),
        })?;
        for d in docs {
            let context = format!("document {} (line {})", d.index + 1, d.line);
            d.document.validate().map_err(|e| RunnerError::Document {
                context: context.clone(),
                message: e.to_string(),
            })?;
            self.insert(d.document);
        }
        Ok(())
    }

    /// Adds one document; returns `false` (and keeps nothing) when it is not an
    /// AnalysisTemplate or ClusterAnalysisTemplate. A template of the same name replaces
    /// the earlier one.
    pub fn insert(&mut self, doc: TemplateDocument) -> bool {
        match doc {
            TemplateDocument::AnalysisTemplate(t) => {
                let ns = t.metadata.namespace.clone().unwrap_or_default();
                let name = t.metadata.name.clone().unwrap_or_default();
                self.namespaced.insert((ns, name), t.spec);
                true
            }
            TemplateDocument::ClusterAnalysisTemplate(t) => {
                let name = t.metadata.name.clone().unwrap_or_default();
                self.cluster.insert(name, t.spec);
                true
            }
            _ => false,
        }
    }

    /// Adds a namespaced template under `namespace` / `name`.
    pub fn insert_template(&mut self, namespace: &str, name: &str, spec: AnalysisTemplateSpec) {
        self.namespaced
            .insert((namespace.to_string(), name.to_string()), spec);
    }

    /// Adds a ClusterAnalysisTemplate.
    pub fn insert_cluster_template(&mut self, name: &str, spec: AnalysisTemplateSpec) {
        self.cluster.insert(name.to_string(), spec);
    }

    /// The number of templates held.
    pub fn len(&self) -> usize {
        self.namespaced.len() + self.cluster.len()
    }

    /// Whether the catalog holds no template.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(
        &self,
        namespace: &str,
        name: &str,
        cluster: bool,
    ) -> Result<&AnalysisTemplateSpec, RunnerError> {
        let found = if cluster {
            self.cluster.get(name)
        } else {
            self.namespaced
                .get(&(namespace.to_string(), name.to_string()))
                .or_else(|| self.namespaced.get(&(String::new(), name.to_string())))
        };
        found.ok_or_else(|| RunnerError::TemplateNotFound {
            kind: if cluster {
                "ClusterAnalysisTemplate"
            } else {
                "AnalysisTemplate"
            },
            name: name.to_string(),
            namespace: if cluster {
                String::new()
            } else {
                namespace.to_string()
            },
        })
    }

    /// Flattens `refs` (and the templates they reference, recursively) into one spec.
    /// See the module docs for the merge rules.
    pub fn compose(
        &self,
        namespace: &str,
        refs: &[TemplateRef],
    ) -> Result<AnalysisTemplateSpec, RunnerError> {
        if refs.is_empty() {
            return Err(RunnerError::NoTemplates);
        }
        let mut acc = Composer::default();
        let mut stack = Vec::new();
        for r in refs {
            self.compose_into(namespace, r, &mut stack, &mut acc)?;
        }
        Ok(acc.spec)
    }

    fn compose_into(
        &self,
        namespace: &str,
        r: &TemplateRef,
        stack: &mut Vec<String>,
        acc: &mut Composer,
    ) -> Result<(), RunnerError> {
        let key = if r.cluster_scope {
            format!("cluster/{}", r.template_name)
        } else {
            r.template_name.clone()
        };
        if stack.contains(&key) {
            let mut chain = stack.clone();
            chain.push(key);
            return Err(RunnerError::TemplateCycle { chain });
        }
        let spec = self.lookup(namespace, &r.template_name, r.cluster_scope)?;
        stack.push(key.clone());
        acc.add(&key, spec)?;
        for nested in &spec.templates {
            self.compose_into(namespace, nested, stack, acc)?;
        }
        stack.pop();
        Ok(())
    }
}

#[derive(Default)]
struct Composer {
    spec: AnalysisTemplateSpec,
    metric_origin: BTreeMap<String, String>,
    arg_origin: BTreeMap<String, String>,
}

impl Composer {
    fn add(&mut self, origin: &str, spec: &AnalysisTemplateSpec) -> Result<(), RunnerError> {
        for m in &spec.metrics {
            if let Some(first) = self.metric_origin.get(&m.name) {
                return Err(RunnerError::DuplicateMetric {
                    metric: m.name.clone(),
                    first: first.clone(),
                    second: origin.to_string(),
                });
            }
            self.metric_origin
                .insert(m.name.clone(), origin.to_string());
            self.spec.metrics.push(m.clone());
        }
        for a in &spec.args {
            match self.spec.args.iter_mut().find(|x| x.name == a.name) {
                None => {
                    self.arg_origin.insert(a.name.clone(), origin.to_string());
                    self.spec.args.push(a.clone());
                }
                Some(existing) if existing == a => {}
                Some(existing) if existing.value.is_none() && existing.value_from.is_none() => {
                    *existing = a.clone();
                }
                Some(_) if a.value.is_none() && a.value_from.is_none() => {}
                Some(_) => {
                    return Err(RunnerError::ConflictingArgument {
                        name: a.name.clone(),
                        first: self.arg_origin.get(&a.name).cloned().unwrap_or_default(),
                        second: origin.to_string(),
                    });
                }
            }
        }
        for d in &spec.dry_run {
            if !self.spec.dry_run.contains(d) {
                self.spec.dry_run.push(d.clone());
            }
        }
        for r in &spec.measurement_retention {
            if !self.spec.measurement_retention.contains(r) {
                self.spec.measurement_retention.push(r.clone());
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// The AnalysisRun object

/// Everything [`build_run`] needs to know about the run to create.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest<'a> {
    /// Namespace of the rollout (and of the run).
    pub namespace: &'a str,
    /// Name of the rollout.
    pub rollout_name: &'a str,
    /// UID of the rollout, for the owner reference (none without one).
    pub rollout_uid: Option<&'a str>,
    /// The rollout object as JSON, for `fieldRef` arguments (`None`: such arguments
    /// cannot be resolved).
    pub rollout: Option<&'a serde_json::Value>,
    /// Name of the run.
    pub name: &'a str,
    /// Step, background, pre- or post-promotion.
    pub kind: AnalysisRunKind,
    /// Templates, args and rules.
    pub analysis: &'a RolloutAnalysis,
    /// Hash of the canary (latest) pods.
    pub canary_hash: &'a str,
    /// Hash of the stable pods.
    pub stable_hash: &'a str,
}

impl<'a> RunRequest<'a> {
    /// The request an [`Action::StartAnalysisRun`] makes (`None` for other actions).
    pub fn from_action(
        action: &'a Action,
        namespace: &'a str,
        rollout_name: &'a str,
    ) -> Option<RunRequest<'a>> {
        match action {
            Action::StartAnalysisRun {
                name,
                kind,
                analysis,
                canary_hash,
                stable_hash,
            } => Some(RunRequest {
                namespace,
                rollout_name,
                rollout_uid: None,
                rollout: None,
                name,
                kind: *kind,
                analysis,
                canary_hash,
                stable_hash,
            }),
            _ => None,
        }
    }
}

/// Argo's `rollout-type` label value for a run kind.
pub fn rollout_type_label(kind: AnalysisRunKind) -> &'static str {
    match kind {
        AnalysisRunKind::Step { .. } => "Step",
        AnalysisRunKind::Background => "Background",
        AnalysisRunKind::PrePromotion => "PrePromotion",
        AnalysisRunKind::PostPromotion => "PostPromotion",
        _ => "Unknown",
    }
}

/// The AnalysisRun object for `req` (see the module docs).
pub fn build_run(
    catalog: &TemplateCatalog,
    req: &RunRequest<'_>,
) -> Result<AnalysisRun, RunnerError> {
    let refs: Vec<TemplateRef> = req
        .analysis
        .templates
        .iter()
        .map(|t: &AnalysisTemplateRef| TemplateRef {
            template_name: t.template_name.clone(),
            cluster_scope: t.cluster_scope,
        })
        .collect();
    let composed = catalog.compose(req.namespace, &refs)?;
    let rollout_args = rollout_args(req)?;

    // The run's args: the templates' args, overridden by the rollout's literal values
    // (rollout args the templates do not declare are dropped, as Argo does).
    let args: Vec<Argument> = composed
        .args
        .iter()
        .map(
            |a| match rollout_args.iter().rev().find(|(n, _)| n == &a.name) {
                Some((_, v)) => Argument {
                    name: a.name.clone(),
                    value: Some(v.clone()),
                    value_from: None,
                },
                None => a.clone(),
            },
        )
        .collect();

    let mut dry_run = composed.dry_run.clone();
    for d in &req.analysis.dry_run {
        let d = DryRun {
            metric_name: d.metric_name.clone(),
        };
        if !dry_run.contains(&d) {
            dry_run.push(d);
        }
    }
    let mut retention = composed.measurement_retention.clone();
    for r in &req.analysis.measurement_retention {
        let r = MeasurementRetention {
            metric_name: r.metric_name.clone(),
            limit: r.limit,
        };
        if !retention.contains(&r) {
            retention.push(r);
        }
    }

    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    if let Some(meta) = &req.analysis.analysis_run_metadata {
        labels.extend(meta.labels.clone());
        annotations.extend(meta.annotations.clone());
    }
    labels.insert(
        "rollout-type".to_string(),
        rollout_type_label(req.kind).to_string(),
    );
    if let AnalysisRunKind::Step { index } = req.kind {
        labels.insert("step-index".to_string(), index.to_string());
    }
    labels.insert(
        "rollouts-pod-template-hash".to_string(),
        req.canary_hash.to_string(),
    );
    let owner_references = req.rollout_uid.map(|uid| {
        vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "argoproj.io/v1alpha1".into(),
                kind: "Rollout".into(),
                name: req.rollout_name.to_string(),
                uid: uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
        ]
    });
    Ok(AnalysisRun {
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "AnalysisRun".into(),
        metadata: ObjectMeta {
            name: Some(req.name.to_string()),
            namespace: Some(req.namespace.to_string()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references,
            ..ObjectMeta::default()
        },
        spec: AnalysisRunSpec {
            metrics: composed.metrics,
            args,
            dry_run,
            measurement_retention: retention,
            terminate: false,
            ttl_strategy: None,
        },
        status: None,
    })
}

/// The rollout's args as literal values.
fn rollout_args(req: &RunRequest<'_>) -> Result<Vec<(String, String)>, RunnerError> {
    let mut out = Vec::with_capacity(req.analysis.args.len());
    for (index, a) in req.analysis.args.iter().enumerate() {
        let a: &AnalysisRunArgument = a;
        let err = |reason: String| RunnerError::RolloutArgument {
            index,
            name: a.name.clone(),
            reason,
        };
        let value = if let Some(v) = &a.value {
            v.clone()
        } else if let Some(vf) = &a.value_from {
            if let Some(which) = &vf.pod_template_hash_value {
                match which {
                    PodTemplateHashValue::Stable => req.stable_hash.to_string(),
                    PodTemplateHashValue::Latest => req.canary_hash.to_string(),
                    _ => return Err(err("unknown podTemplateHashValue".into())),
                }
            } else if let Some(f) = &vf.field_ref {
                let obj = req
                    .rollout
                    .ok_or_else(|| err("fieldRef needs the rollout object".into()))?;
                field_path_value(obj, &f.field_path)
                    .ok_or_else(|| err(format!("fieldRef {:?} matches no field", f.field_path)))?
            } else {
                return Err(err("valueFrom has no source".into()));
            }
        } else {
            // An arg with neither value nor valueFrom leaves the template's default.
            continue;
        };
        out.push((a.name.clone(), value));
    }
    Ok(out)
}

/// The value at a Kubernetes field path (`metadata.name`,
/// `metadata.labels['app.kubernetes.io/name']`, `spec.replicas`) rendered as text:
/// strings as they are, other values as JSON. `None` when the path matches nothing or
/// is malformed.
pub fn field_path_value(obj: &serde_json::Value, path: &str) -> Option<String> {
    let mut cur = obj;
    let mut rest = path.trim();
    let mut first = true;
    while !rest.is_empty() {
        if let Some(sub) = rest.strip_prefix('[') {
            // `[...]`: a quoted key or an index.
            let close = sub.find(']')?;
            let key = sub[..close].trim();
            let key = key
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| key.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
                .unwrap_or(key);
            cur = match cur {
                serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                other => other.get(key)?,
            };
            rest = &sub[close + 1..];
        } else {
            // `.name` (the first segment has no dot).
            let body = if first { rest } else { rest.strip_prefix('.')? };
            let end = body.find(['.', '[']).unwrap_or(body.len());
            let seg = &body[..end];
            if seg.is_empty() {
                return None;
            }
            cur = cur.get(seg)?;
            rest = &body[end..];
        }
        first = false;
    }
    Some(match cur {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => return None,
        other => other.to_string(),
    })
}

// ---------------------------------------------------------------------------------
// A prepared run

/// An AnalysisRun ready to be reconciled: arguments substituted once, rules expanded.
#[derive(Clone)]
pub struct PreparedRun {
    metrics: Vec<Metric>,
    dry_run: Vec<DryRun>,
    retention: Vec<MeasurementRetention>,
    resolved: Option<ResolvedTemplate>,
    /// Why the run cannot run (it ends in `Error` with this message).
    invalid: Option<String>,
}

impl fmt::Debug for PreparedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedRun")
            .field("metrics", &self.metrics.len())
            .field("dry_run", &self.dry_run)
            .field("retention", &self.retention)
            .field("resolved", &self.resolved)
            .field("invalid", &self.invalid)
            .finish()
    }
}

/// A [`ValueSource`] that knows no values (every `secretKeyRef` fails to resolve).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoValues;

impl ValueSource for NoValues {
    fn lookup(&self, _name: &str, _value_from: &ValueFrom) -> Option<String> {
        None
    }
}

/// Secret values by `(secret name, key)`, for tests and embedded use.
#[derive(Debug, Clone, Default)]
pub struct Secrets(pub BTreeMap<(String, String), String>);

impl ValueSource for Secrets {
    fn lookup(&self, _name: &str, value_from: &ValueFrom) -> Option<String> {
        let r = value_from.secret_key_ref.as_ref()?;
        self.0.get(&(r.name.clone(), r.key.clone())).cloned()
    }
}

impl PreparedRun {
    /// Prepares `run`, asking `secrets` for `secretKeyRef` arguments.
    pub fn new(run: &AnalysisRun, secrets: &dyn ValueSource) -> PreparedRun {
        Self::from_spec(&run.spec, secrets)
    }

    /// Prepares a run spec.
    pub fn from_spec(spec: &AnalysisRunSpec, secrets: &dyn ValueSource) -> PreparedRun {
        let template = AnalysisTemplateSpec {
            metrics: spec.metrics.clone(),
            args: spec.args.clone(),
            dry_run: spec.dry_run.clone(),
            measurement_retention: spec.measurement_retention.clone(),
            templates: Vec::new(),
        };
        let names: Vec<&str> = spec.metrics.iter().map(|m| m.name.as_str()).collect();
        let mut invalid = None;
        let dry_run = match expand_rules(
            "dryRun",
            spec.dry_run.iter().map(|d| d.metric_name.as_str()),
            &names,
        ) {
            Ok(v) => v
                .into_iter()
                .map(|(_, n)| DryRun {
                    metric_name: n.to_string(),
                })
                .collect(),
            Err(e) => {
                invalid = Some(e);
                Vec::new()
            }
        };
        let retention = match expand_rules(
            "measurementRetention",
            spec.measurement_retention
                .iter()
                .map(|r| r.metric_name.as_str()),
            &names,
        ) {
            Ok(v) => {
                // The first rule matching a metric wins.
                let mut seen = BTreeSet::new();
                v.into_iter()
                    .filter(|(_, n)| seen.insert(*n))
                    .map(|(i, n)| MeasurementRetention {
                        metric_name: n.to_string(),
                        limit: spec.measurement_retention[i].limit,
                    })
                    .collect()
            }
            Err(e) => {
                invalid.get_or_insert(e);
                Vec::new()
            }
        };
        let (metrics, resolved) = match resolve_args_with(&template, &[], secrets) {
            Ok(r) => (r.metrics.clone(), Some(r)),
            Err(e) => {
                invalid.get_or_insert(e.to_string());
                (spec.metrics.clone(), None)
            }
        };
        PreparedRun {
            metrics,
            dry_run,
            retention,
            resolved,
            invalid,
        }
    }

    /// The metrics, arguments substituted.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The metric named `name`.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Why the run cannot run, if it cannot.
    pub fn invalid(&self) -> Option<&str> {
        self.invalid.as_deref()
    }

    /// `message` with secret argument values replaced by `*****`.
    pub fn redact(&self, message: &str) -> String {
        match &self.resolved {
            Some(r) => r.redact(message),
            None => message.to_string(),
        }
    }

    /// One pass of the [`machine`](crate::machine) over the run. Provider error
    /// messages are redacted before they are stored.
    pub fn reconcile<'a>(
        &self,
        status: &'a RunStatus,
        observed: &[MeasurementResult],
        now: Timestamp,
        terminate: bool,
    ) -> RunDecision<'a> {
        if let Some(message) = &self.invalid {
            if status.phase.is_some_and(AnalysisPhase::is_completed) {
                return RunDecision {
                    status: std::borrow::Cow::Borrowed(status),
                    actions: Vec::new(),
                    requeue_at: None,
                };
            }
            let mut st = status.clone();
            st.phase = Some(AnalysisPhase::Error);
            st.message = message.clone();
            st.started_at.get_or_insert(now);
            return RunDecision {
                status: std::borrow::Cow::Owned(st),
                actions: Vec::new(),
                requeue_at: None,
            };
        }
        let needs_redaction = observed
            .iter()
            .any(|o| o.error.as_ref().is_some_and(|e| self.redact(e) != *e));
        let redacted;
        let observed = if needs_redaction {
            redacted = observed
                .iter()
                .map(|o| {
                    let mut o = o.clone();
                    if let Some(e) = &o.error {
                        o.error = Some(self.redact(e));
                    }
                    o
                })
                .collect::<Vec<_>>();
            &redacted[..]
        } else {
            observed
        };
        crate::machine::reconcile_with(
            &self.metrics,
            RunOptions {
                dry_run: &self.dry_run,
                measurement_retention: &self.retention,
            },
            status,
            observed,
            now,
            terminate,
        )
    }
}

/// Expands rules (unanchored regexps, or `*`) into `(rule index, metric)` pairs; a rule
/// that matches nothing, or does not compile, is Argo's error message.
fn expand_rules<'n>(
    field: &str,
    rules: impl Iterator<Item = &'n str>,
    names: &[&'n str],
) -> Result<Vec<(usize, &'n str)>, String> {
    let mut out = Vec::new();
    for (i, rule) in rules.enumerate() {
        let matched: Vec<&str> = if rule == "*" {
            names.to_vec()
        } else {
            let re = regex::Regex::new(rule)
                .map_err(|e| format!("{field}[{i}]: invalid metric name pattern: {e}"))?;
            names.iter().copied().filter(|n| re.is_match(n)).collect()
        };
        if matched.is_empty() {
            return Err(format!(
                "{field}[{i}]: Rule didn't match any metric name(s)"
            ));
        }
        out.extend(matched.into_iter().map(|n| (i, n)));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// A set of runs

/// One run held by [`AnalysisRuns`].
#[derive(Debug, Clone)]
pub struct ManagedRun {
    /// The AnalysisRun object (its `spec.terminate` set once terminated).
    pub run: AnalysisRun,
    /// Its persisted status.
    pub status: RunStatus,
    /// Provider answers not yet reconciled.
    pub pending: Vec<MeasurementResult>,
    /// Metrics whose measurement was requested and not yet answered.
    pub in_flight: Vec<String>,
    /// When the run wants its next pass.
    pub requeue_at: Option<Timestamp>,
    prepared: PreparedRun,
}

impl ManagedRun {
    /// The run's name.
    pub fn name(&self) -> &str {
        self.run.metadata.name.as_deref().unwrap_or_default()
    }

    /// The run's phase as the rollout machines observe it (`Pending` before its first
    /// pass).
    pub fn state(&self) -> AnalysisRunState {
        AnalysisRunState {
            name: self.name().to_string(),
            phase: self.status.phase.unwrap_or(AnalysisPhase::Pending),
            message: self.status.message.clone(),
        }
    }

    /// The prepared form of the run.
    pub fn prepared(&self) -> &PreparedRun {
        &self.prepared
    }
}

/// A measurement to take: the run, the metric and the context a provider needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureRequest {
    /// The run's name.
    pub run: String,
    /// The metric's name.
    pub metric: String,
    /// Index of this measurement among the metric's measurements.
    pub measurement_index: u64,
    /// Whether the run asks to stop an in-flight measurement instead.
    pub terminate: bool,
}

/// A synchronous metric source: simulations, tests and benchmarks answer measure
/// requests with it (see [`AnalysisRuns::settle`]).
pub trait MetricSource {
    /// The answer for one measurement of `metric` at `now`, for the run `run`.
    fn measure(
        &mut self,
        run: &ManagedRun,
        metric: &Metric,
        now: Timestamp,
    ) -> Result<Measured, ProviderError>;
}

impl<F> MetricSource for F
where
    F: FnMut(&ManagedRun, &Metric, Timestamp) -> Result<Measured, ProviderError>,
{
    fn measure(
        &mut self,
        run: &ManagedRun,
        metric: &Metric,
        now: Timestamp,
    ) -> Result<Measured, ProviderError> {
        self(run, metric, now)
    }
}

/// An embeddable analysis controller over a set of runs (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct AnalysisRuns {
    catalog: TemplateCatalog,
    namespace: String,
    runs: Vec<ManagedRun>,
    secrets: Secrets,
}

impl AnalysisRuns {
    /// A controller for runs in `namespace`, resolving templates from `catalog`.
    pub fn new(catalog: TemplateCatalog, namespace: impl Into<String>) -> Self {
        AnalysisRuns {
            catalog,
            namespace: namespace.into(),
            runs: Vec::new(),
            secrets: Secrets::default(),
        }
    }

    /// Sets the secret values `secretKeyRef` arguments resolve to.
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// The runs, oldest first.
    pub fn runs(&self) -> &[ManagedRun] {
        &self.runs
    }

    /// The run named `name`.
    pub fn run(&self, name: &str) -> Option<&ManagedRun> {
        self.runs.iter().find(|r| r.name() == name)
    }

    /// Carries out the analysis actions of a rollout machine's decision: creates runs
    /// for [`Action::StartAnalysisRun`] (once per name), marks runs terminated for
    /// [`Action::TerminateAnalysisRun`]; other actions are ignored. A run that cannot be
    /// built (a missing template) is an error and nothing is created for it; the
    /// actions before it are kept.
    pub fn apply(
        &mut self,
        actions: &[Action],
        rollout_name: &str,
        rollout: Option<&serde_json::Value>,
    ) -> Result<(), RunnerError> {
        for action in actions {
            match action {
                Action::StartAnalysisRun { name, .. } => {
                    if self.run(name).is_some() {
                        continue;
                    }
                    let Some(mut req) =
                        RunRequest::from_action(action, &self.namespace, rollout_name)
                    else {
                        continue;
                    };
                    req.rollout = rollout;
                    let run = build_run(&self.catalog, &req)?;
                    self.insert(run);
                }
                Action::TerminateAnalysisRun { name } => {
                    if let Some(r) = self.runs.iter_mut().find(|r| r.name() == name) {
                        r.run.spec.terminate = true;
                        r.requeue_at = None;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Adds an AnalysisRun object (one built elsewhere, or read from a cluster).
    pub fn insert(&mut self, run: AnalysisRun) {
        let prepared = PreparedRun::new(&run, &self.secrets);
        self.runs.push(ManagedRun {
            run,
            status: RunStatus::default(),
            pending: Vec::new(),
            in_flight: Vec::new(),
            requeue_at: None,
            prepared,
        });
    }

    /// Adds an AnalysisRun object read back from a store (an API server) together with
    /// its persisted `status`, replacing a run of the same name. The run is due: the
    /// next [`reconcile`](Self::reconcile) passes over it, and the run machine decides
    /// from the status whether anything (a measurement, the verdict) is due at that
    /// time.
    pub fn insert_with_status(&mut self, run: AnalysisRun, status: RunStatus) {
        let name = run.metadata.name.clone().unwrap_or_default();
        self.runs.retain(|r| r.name() != name);
        self.insert(run);
        if let Some(r) = self.runs.last_mut() {
            r.status = status;
            r.requeue_at = Some(Timestamp::EPOCH);
        }
    }

    /// The runs' states, for the rollout machine's `Observed::analysis_runs`.
    pub fn states(&self) -> Vec<AnalysisRunState> {
        self.runs.iter().map(ManagedRun::state).collect()
    }

    /// Hands a provider's answer for `run` / `metric` to the next pass.
    pub fn record(&mut self, run: &str, result: MeasurementResult) {
        if let Some(r) = self.runs.iter_mut().find(|r| r.name() == run) {
            r.in_flight.retain(|m| *m != result.metric);
            r.pending.push(result);
        }
    }

    /// Passes over every run that has answers, is due (`requeue_at <= now`), was
    /// terminated or never ran; returns what to measure (and what to stop).
    pub fn reconcile(&mut self, now: Timestamp) -> Vec<MeasureRequest> {
        let mut out = Vec::new();
        for r in &mut self.runs {
            let terminate = r.run.spec.terminate;
            let done = r.status.phase.is_some_and(AnalysisPhase::is_completed);
            if done {
                r.pending.clear();
                continue;
            }
            let due = r.status.phase.is_none()
                || !r.pending.is_empty()
                || terminate
                || r.requeue_at.is_some_and(|t| t <= now);
            if !due {
                continue;
            }
            let pending = std::mem::take(&mut r.pending);
            let decision = r.prepared.reconcile(&r.status, &pending, now, terminate);
            let RunDecision {
                status,
                actions,
                requeue_at,
            } = decision;
            let new_status = match status {
                std::borrow::Cow::Owned(s) => Some(s),
                std::borrow::Cow::Borrowed(_) => None,
            };
            if let Some(s) = new_status {
                r.status = s;
            }
            r.requeue_at = requeue_at;
            for a in actions {
                let (metric, terminate) = match a {
                    RunAction::Measure { metric } => (metric, false),
                    RunAction::Terminate { metric } => (metric, true),
                };
                // Completed measurements so far: the in-flight one's index.
                let measurement_index = r.status.metric_result(&metric).map_or(0, |m| {
                    u64::try_from(i64::from(m.count) + i64::from(m.error)).unwrap_or(0)
                });
                if terminate {
                    r.in_flight.retain(|m| *m != metric);
                } else if !r.in_flight.contains(&metric) {
                    r.in_flight.push(metric.clone());
                }
                out.push(MeasureRequest {
                    run: r.name().to_string(),
                    metric,
                    measurement_index,
                    terminate,
                });
            }
        }
        out
    }

    /// The earliest time a run wants a pass (`None`: only on new answers or actions).
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.runs
            .iter()
            .filter(|r| !r.status.phase.is_some_and(AnalysisPhase::is_completed))
            .filter_map(|r| r.requeue_at)
            .min()
    }

    /// Reconciles and answers measure requests from `source` at `now` until nothing
    /// more is due at `now`. Returns the number of measurements taken.
    pub fn settle(&mut self, source: &mut dyn MetricSource, now: Timestamp) -> usize {
        let mut taken = 0;
        // Each round either completes a measurement or stops; bounded by the metrics.
        for _ in 0..64 {
            let requests = self.reconcile(now);
            let mut answered = false;
            for req in requests.into_iter().filter(|r| !r.terminate) {
                let Some(run) = self.run(&req.run) else {
                    continue;
                };
                let Some(metric) = run.prepared.metric(&req.metric) else {
                    continue;
                };
                let result = to_result(&req.metric, source.measure(run, metric, now), now);
                self.record(&req.run, result);
                taken += 1;
                answered = true;
            }
            if !answered {
                break;
            }
        }
        taken
    }

    /// Reconciles at `now()` and answers the measure requests through `providers`
    /// concurrently, each answer stamped with `now()` when it arrives, then reconciles
    /// again so the answers are judged, until nothing more is due (at most 8 rounds).
    /// Provider errors become `Error` measurements; a metric whose provider is not
    /// registered gets [`ProviderError::NotConfigured`]. Returns the number of
    /// measurements taken.
    pub async fn measure(
        &mut self,
        providers: &Providers,
        now: &(dyn Fn() -> Timestamp + Send + Sync),
    ) -> usize {
        let mut taken = 0;
        for _ in 0..8 {
            let requests = self.reconcile(now());
            if requests.is_empty() {
                break;
            }
            let mut calls = Vec::with_capacity(requests.len());
            for req in requests {
                let Some(run) = self.run(&req.run) else {
                    continue;
                };
                let Some(metric) = run.prepared.metric(&req.metric).cloned() else {
                    continue;
                };
                let namespace = run
                    .run
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone());
                let uid = run.run.metadata.uid.clone();
                calls.push(async move {
                    let ctx = MeasureContext {
                        namespace: &namespace,
                        run_name: &req.run,
                        run_uid: uid.as_deref(),
                        measurement_index: req.measurement_index,
                    };
                    let result = match providers.for_metric(&metric) {
                        // A failed stop changes nothing: the run already recorded the
                        // measurement as terminated.
                        Ok(p) if req.terminate => {
                            let _ = p.terminate(&ctx, &metric).await;
                            None
                        }
                        Ok(p) => Some(to_result(
                            &metric.name,
                            p.measure(&ctx, &metric).await,
                            now(),
                        )),
                        Err(_) if req.terminate => None,
                        Err(e) => Some(to_result(&metric.name, Err(e), now())),
                    };
                    (req.run, result)
                });
            }
            for (run, result) in futures::future::join_all(calls).await {
                if let Some(result) = result {
                    self.record(&run, result);
                    taken += 1;
                }
            }
        }
        taken
    }
}

/// A provider's answer as a [`MeasurementResult`].
pub fn to_result(
    metric: &str,
    answer: Result<Measured, ProviderError>,
    finished_at: Timestamp,
) -> MeasurementResult {
    match answer {
        Ok(Measured::Value(v)) => MeasurementResult::new(metric, v, finished_at),
        Ok(Measured::Verdict { phase, value }) => {
            MeasurementResult::with_verdict(metric, value, phase, finished_at)
        }
        Ok(Measured::InProgress { retry_after }) => {
            let millis = i64::try_from(retry_after.as_millis()).unwrap_or(i64::MAX);
            MeasurementResult::in_progress(
                metric,
                finished_at.add_millis(millis.max(1)),
                finished_at,
            )
        }
        Err(e) => MeasurementResult::error(metric, e.to_string(), finished_at),
    }
}

// ---------------------------------------------------------------------------------
// Providers

/// The providers a controller measures with, by Argo's provider name (`prometheus`,
/// `web`, `job`, `kayenta`, ...) or, for metric plugins, by plugin name
/// (`plugin:<name>`, e.g. `plugin:rollout-rs/scrape`).
#[derive(Clone, Default)]
pub struct Providers {
    by_kind: BTreeMap<String, Arc<dyn Provider>>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_kind.keys()).finish()
    }
}

impl Providers {
    /// No providers.
    pub fn new() -> Self {
        Providers::default()
    }

    /// Registers `provider` for the provider name `kind`.
    pub fn with(mut self, kind: impl Into<String>, provider: Arc<dyn Provider>) -> Self {
        self.by_kind.insert(kind.into(), provider);
        self
    }

    /// The provider for `metric`: by its provider name, or by `plugin:<name>` for the
    /// first plugin it configures.
    pub fn for_metric(&self, metric: &Metric) -> Result<&dyn Provider, ProviderError> {
        let kinds = metric.provider.kinds();
        let key = match kinds.first() {
            Some(&"plugin") => metric
                .provider
                .plugin
                .as_ref()
                .and_then(|p| p.as_object())
                .and_then(|o| o.keys().next())
                .map(|k| format!("plugin:{k}"))
                .unwrap_or_else(|| "plugin".to_string()),
            Some(k) => (*k).to_string(),
            None => String::new(),
        };
        self.by_kind
            .get(&key)
            .map(|p| p.as_ref())
            .ok_or_else(|| ProviderError::NotConfigured {
                metric: metric.name.clone(),
                provider: if key.is_empty() {
                    "(none)".to_string()
                } else {
                    key
                },
            })
    }
}

/// A constant answer, for wiring tests and examples: every measurement returns `value`.
#[derive(Debug, Clone)]
pub struct Fixed(pub Value);

#[async_trait::async_trait]
impl Provider for Fixed {
    async fn measure(
        &self,
        _ctx: &MeasureContext<'_>,
        _metric: &Metric,
    ) -> Result<Measured, ProviderError> {
        Ok(Measured::Value(self.0.clone()))
    }
}
