//! The [`Analysis`] port of rollout-core's driver on a Kubernetes API server (feature
//! `kube`).
//!
//! # The model
//!
//! The AnalysisRun objects in the API server are the whole state: their `spec` is what
//! [`build_run`] made when the run started (metrics with the rollout's arguments
//! resolved, dry-run and retention rules, `terminate`) and their `status` is Argo's
//! [`RunStatus`], written back after every pass that changed it. Nothing is kept in
//! memory between calls, so a [`KubeAnalysis`] can be dropped, restarted or replaced
//! by Argo's own controller at any time; a pass cut short (a crash between measuring and
//! writing the status) measures again on the next one.
//!
//! * [`Analysis::execute`] with [`Action::StartAnalysisRun`] reads the templates the
//!   rollout references (AnalysisTemplates in the rollout's namespace,
//!   ClusterAnalysisTemplates, following their `spec.templates` recursively), builds the
//!   run with [`RunRequest::from_action`] and [`build_run`] (the rollout object serves
//!   `fieldRef` arguments) and creates it, with Argo's labels and a controller owner
//!   reference to the rollout. A run that already exists (`409 AlreadyExists`) is
//!   success: starting is idempotent. A referenced template that does not exist is
//!   [`KubeAnalysisError::TemplateNotFound`] naming it. [`Action::TerminateAnalysisRun`]
//!   merge-patches `spec.terminate: true`; a run that is gone (`404`) is success. Other
//!   actions are not the analysis port's and are ignored.
//! * [`Analysis::observe`] lists the AnalysisRuns of the rollout's namespace whose
//!   owner references carry the rollout's UID. Completed runs are reported from their
//!   status. The others go into an [`AnalysisRuns`] set with their persisted status
//!   ([`AnalysisRuns::insert_with_status`]): the run machine decides from the status
//!   what is due at `now` (a first measurement, the next one after `interval`, the
//!   verdict of a terminated run), [`AnalysisRuns::measure`] asks the [`Providers`]
//!   (stamping answers with `now`), and every status that changed is written back. The
//!   answer lists every run of the rollout, completed ones too, and the earliest time a
//!   run wants to measure again. A provider that waits for its answer (the Job
//!   provider by default polls its Job until a verdict) holds the pass until it answers
//!   or reaches its own deadline; a controller configures it with
//!   `JobProvider::without_waiting`, whose `Measured::InProgress` leaves the
//!   measurement `Running` with `resumeAt` in the written status, and the pass at that
//!   time reads the same Job again.
//!
//! `secretKeyRef` arguments are resolved at each pass from the `core/v1` Secrets of the
//! run's namespace (only the Secrets the runs name are read); a missing Secret or key
//! makes the run end in phase `Error` with a message naming the argument, as in Argo.
//! Secret values are never written into objects or errors.
//!
//! The status is written with a JSON merge patch of `{"status": ...}` (fields the new
//! status no longer has are set to `null`). Argo's AnalysisRun CRD declares no `status`
//! subresource, so the status is part of the object; when the CRD in the cluster does
//! declare one, the patch goes to `/status` instead (the first write finds out which,
//! and the answer is remembered).
//!
//! # The API
//!
//! [`KubeAnalysis::new`] over a [`kube::Client`] and the [`Providers`] to measure with;
//! errors are [`KubeAnalysisError`]s naming the run or template and carrying the HTTP
//! code of a failed request.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{GroupVersionKind, TypeMeta};
use rollout_core::canary::{Action, AnalysisRunState};
use rollout_core::driver::{Analysis, AnalysisState};
use rollout_core::spec::Rollout;
use rollout_core::time::Timestamp;

use crate::machine::RunStatus;
use crate::runner::{
    AnalysisRuns, Providers, RunRequest, RunnerError, Secrets, TemplateCatalog, build_run,
};
use crate::template::{ARGO_API_VERSION, AnalysisRun, TemplateDocument};

/// Why the analysis port could not read, create, terminate or update a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KubeAnalysisError {
    /// The rollout lacks metadata the port needs (a namespace, a name, a UID: rollouts
    /// read from an API server have all three).
    #[error("rollout {rollout:?} has no metadata.{field}")]
    RolloutMetadata {
        /// The rollout's name (empty when that is what is missing).
        rollout: String,
        /// The missing field (`namespace`, `name`, `uid`).
        field: &'static str,
    },
    /// A template the run references does not exist.
    #[error(
        "analysis run {run:?}: {kind} {name:?} not found{}",
        in_namespace(namespace)
    )]
    TemplateNotFound {
        /// The run that was to be started.
        run: String,
        /// `AnalysisTemplate` or `ClusterAnalysisTemplate`.
        kind: &'static str,
        /// The template's name.
        name: String,
        /// The namespace searched (empty for cluster templates).
        namespace: String,
    },
    /// A template in the API server does not parse or validate.
    #[error("{kind} {name:?} is invalid: {message}")]
    InvalidTemplate {
        /// `AnalysisTemplate` or `ClusterAnalysisTemplate`.
        kind: &'static str,
        /// The template's name.
        name: String,
        /// What is wrong, with the field path.
        message: String,
    },
    /// The run could not be built from the templates (a cycle, a duplicate metric,
    /// conflicting arguments, a rollout argument that cannot be resolved).
    #[error("analysis run {run:?} cannot be built: {message}")]
    Build {
        /// The run that was to be started.
        run: String,
        /// The runner's reason.
        message: String,
    },
    /// An AnalysisRun object in the API server does not parse (its spec or its status).
    #[error("AnalysisRun {namespace}/{run} is malformed: {message}")]
    MalformedRun {
        /// The run's namespace.
        namespace: String,
        /// The run's name.
        run: String,
        /// What is wrong, with the field path.
        message: String,
    },
    /// A request to the API server failed.
    #[error("{verb} {object} failed: {}{message}", code.map(|c| format!("HTTP {c}: ")).unwrap_or_default())]
    Api {
        /// What was attempted (`create`, `list`, `patch status of`, ...).
        verb: &'static str,
        /// The object (`AnalysisRun ns/name`, `AnalysisTemplate ns/name`, ...).
        object: String,
        /// The HTTP status code, when the server answered.
        code: Option<u16>,
        /// The server's (or the transport's) message.
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

fn api_error(verb: &'static str, object: String, err: kube::Error) -> KubeAnalysisError {
    match err {
        kube::Error::Api(status) => KubeAnalysisError::Api {
            verb,
            object,
            code: Some(status.code),
            message: if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            },
        },
        other => KubeAnalysisError::Api {
            verb,
            object,
            code: None,
            message: other.to_string(),
        },
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind),
        plural,
    )
}

fn analysis_run_resource() -> ApiResource {
    resource("AnalysisRun", "analysisruns")
}

/// The `kind` of a template reference.
fn template_kind(cluster: bool) -> &'static str {
    if cluster {
        "ClusterAnalysisTemplate"
    } else {
        "AnalysisTemplate"
    }
}

/// The [`Analysis`] port on a Kubernetes API server (see the [module docs](self)).
#[derive(Clone)]
pub struct KubeAnalysis {
    client: kube::Client,
    providers: Providers,
    /// Whether the AnalysisRun CRD has a `status` subresource (`None`: not known yet).
    status_subresource: Option<bool>,
}

impl std::fmt::Debug for KubeAnalysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeAnalysis")
            .field("providers", &self.providers)
            .field("status_subresource", &self.status_subresource)
            .finish_non_exhaustive()
    }
}

/// What [`Rollout`] metadata the port needs.
struct RolloutId<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
}

fn rollout_id(rollout: &Rollout) -> Result<RolloutId<'_>, KubeAnalysisError> {
    let meta = &rollout.metadata;
    let missing = |field| KubeAnalysisError::RolloutMetadata {
        rollout: meta.name.clone().unwrap_or_default(),
        field,
    };
    Ok(RolloutId {
        name: meta.name.as_deref().ok_or_else(|| missing("name"))?,
        namespace: meta
            .namespace
            .as_deref()
            .ok_or_else(|| missing("namespace"))?,
        uid: meta.uid.as_deref().ok_or_else(|| missing("uid"))?,
    })
}

/// An AnalysisRun of the rollout as read from the API server.
struct ReadRun {
    run: AnalysisRun,
    status: RunStatus,
}

impl KubeAnalysis {
    /// A port talking to the API server behind `client` and measuring with `providers`.
    pub fn new(client: kube::Client, providers: Providers) -> Self {
        KubeAnalysis {
            client,
            providers,
            status_subresource: None,
        }
    }

    /// The providers the port measures with.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    fn runs_api(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &analysis_run_resource())
    }

    /// The templates `refs` name, and the ones they compose, read from the API server.
    /// Missing templates are left out (composing then names them).
    async fn catalog(
        &self,
        namespace: &str,
        refs: impl Iterator<Item = (String, bool)>,
    ) -> Result<TemplateCatalog, KubeAnalysisError> {
        let mut catalog = TemplateCatalog::new();
        let mut queue: Vec<(String, bool)> = refs.collect();
        let mut seen = BTreeSet::new();
        while let Some((name, cluster)) = queue.pop() {
            if !seen.insert((name.clone(), cluster)) {
                continue;
            }
            let kind = template_kind(cluster);
            let (api, object) = if cluster {
                (
                    Api::<DynamicObject>::all_with(
                        self.client.clone(),
                        &resource(kind, "clusteranalysistemplates"),
                    ),
                    format!("{kind} {name}"),
                )
            } else {
                (
                    Api::<DynamicObject>::namespaced_with(
                        self.client.clone(),
                        namespace,
                        &resource(kind, "analysistemplates"),
                    ),
                    format!("{kind} {namespace}/{name}"),
                )
            };
            let Some(mut obj) = api
                .get_opt(&name)
                .await
                .map_err(|e| api_error("get", object, e))?
            else {
                continue;
            };
            obj.types = Some(TypeMeta {
                api_version: ARGO_API_VERSION.into(),
                kind: kind.into(),
            });
            let invalid = |message: String| KubeAnalysisError::InvalidTemplate {
                kind,
                name: name.clone(),
                message,
            };
            let value = serde_json::to_value(&obj).map_err(|e| invalid(e.to_string()))?;
            let doc =
                TemplateDocument::from_json_value(value).map_err(|e| invalid(e.to_string()))?;
            doc.validate().map_err(|e| invalid(e.to_string()))?;
            let spec = match doc {
                TemplateDocument::AnalysisTemplate(t) => t.spec,
                TemplateDocument::ClusterAnalysisTemplate(t) => t.spec,
                other => return Err(invalid(format!("unexpected kind {}", other.kind()))),
            };
            queue.extend(
                spec.templates
                    .iter()
                    .map(|t| (t.template_name.clone(), t.cluster_scope)),
            );
            if cluster {
                catalog.insert_cluster_template(&name, spec);
            } else {
                catalog.insert_template(namespace, &name, spec);
            }
        }
        Ok(catalog)
    }

    async fn start(&self, rollout: &Rollout, action: &Action) -> Result<(), KubeAnalysisError> {
        let id = rollout_id(rollout)?;
        let Some(mut req) = RunRequest::from_action(action, id.namespace, id.name) else {
            return Ok(());
        };
        let run_name = req.name.to_string();
        let catalog = self
            .catalog(
                id.namespace,
                req.analysis
                    .templates
                    .iter()
                    .map(|t| (t.template_name.clone(), t.cluster_scope)),
            )
            .await?;
        let rollout_json = serde_json::to_value(rollout).ok();
        req.rollout_uid = Some(id.uid);
        req.rollout = rollout_json.as_ref();
        let run = build_run(&catalog, &req).map_err(|e| match e {
            RunnerError::TemplateNotFound {
                kind,
                name,
                namespace,
            } => KubeAnalysisError::TemplateNotFound {
                run: run_name.clone(),
                kind,
                name,
                namespace,
            },
            other => KubeAnalysisError::Build {
                run: run_name.clone(),
                message: other.to_string(),
            },
        })?;
        let object = format!("AnalysisRun {}/{run_name}", id.namespace);
        let obj: DynamicObject = serde_json::to_value(&run)
            .and_then(serde_json::from_value)
            .map_err(|e| KubeAnalysisError::Build {
                run: run_name.clone(),
                message: e.to_string(),
            })?;
        match self
            .runs_api(id.namespace)
            .create(&PostParams::default(), &obj)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => Ok(()),
            Err(e) => Err(api_error("create", object, e)),
        }
    }

    async fn terminate(&self, rollout: &Rollout, name: &str) -> Result<(), KubeAnalysisError> {
        let id = rollout_id(rollout)?;
        let patch = serde_json::json!({ "spec": { "terminate": true } });
        match self
            .runs_api(id.namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(api_error(
                "terminate",
                format!("AnalysisRun {}/{name}", id.namespace),
                e,
            )),
        }
    }

    /// The rollout's runs, oldest first.
    async fn read_runs(&self, id: &RolloutId<'_>) -> Result<Vec<ReadRun>, KubeAnalysisError> {
        let list = self
            .runs_api(id.namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| api_error("list", format!("AnalysisRuns in {}", id.namespace), e))?;
        let mut objects: Vec<DynamicObject> = list
            .items
            .into_iter()
            .filter(|o| {
                o.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == id.uid)
            })
            .collect();
        objects.sort_by(|a, b| {
            let key = |o: &DynamicObject| {
                (
                    o.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    o.metadata.name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        objects
            .into_iter()
            .map(|o| parse_run(id.namespace, o))
            .collect()
    }

    async fn secrets(
        &self,
        namespace: &str,
        runs: &[ReadRun],
    ) -> Result<Secrets, KubeAnalysisError> {
        let names: BTreeSet<&str> = runs
            .iter()
            .flat_map(|r| &r.run.spec.args)
            .filter_map(|a| a.value_from.as_ref()?.secret_key_ref.as_ref())
            .map(|r| r.name.as_str())
            .collect();
        let mut values = BTreeMap::new();
        if names.is_empty() {
            return Ok(Secrets(values));
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        for name in names {
            let secret = api
                .get_opt(name)
                .await
                .map_err(|e| api_error("get", format!("Secret {namespace}/{name}"), e))?;
            // A missing Secret (or key) fails the run that needs it, naming the argument.
            let Some(data) = secret.and_then(|s| s.data) else {
                continue;
            };
            for (key, bytes) in data {
                if let Ok(text) = String::from_utf8(bytes.0) {
                    values.insert((name.to_string(), key), text);
                }
            }
        }
        Ok(Secrets(values))
    }

    /// Writes `status` as the run's status (see the module docs).
    async fn write_status(
        &mut self,
        namespace: &str,
        name: &str,
        status: &RunStatus,
    ) -> Result<(), KubeAnalysisError> {
        let object = format!("AnalysisRun {namespace}/{name}");
        let mut value = serde_json::to_value(status).map_err(|e| KubeAnalysisError::Api {
            verb: "encode status of",
            object: object.clone(),
            code: None,
            message: e.to_string(),
        })?;
        if let Some(map) = value.as_object_mut() {
            for key in [
                "phase",
                "message",
                "startedAt",
                "metricResults",
                "dryRunSummary",
            ] {
                map.entry(key).or_insert(serde_json::Value::Null);
            }
        }
        let patch = serde_json::json!({ "status": value });
        let api = self.runs_api(namespace);
        let params = PatchParams::default();
        if self.status_subresource != Some(false) {
            match api.patch_status(name, &params, &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.status_subresource = Some(true);
                    return Ok(());
                }
                // No status subresource (or no run): try the object itself.
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(api_error("patch status of", object, e)),
            }
        }
        match api.patch(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {
                self.status_subresource = Some(false);
                Ok(())
            }
            // Deleted since it was listed: nothing left to write to.
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(api_error("patch status of", object, e)),
        }
    }

    async fn observe_runs(
        &mut self,
        rollout: &Rollout,
        now: Timestamp,
    ) -> Result<AnalysisState, KubeAnalysisError> {
        let id = rollout_id(rollout)?;
        let read = self.read_runs(&id).await?;
        let mut order = Vec::with_capacity(read.len());
        let mut done: BTreeMap<String, AnalysisRunState> = BTreeMap::new();
        let mut active = Vec::new();
        for r in read {
            let name = r.run.metadata.name.clone().unwrap_or_default();
            order.push(name.clone());
            match r.status.phase {
                Some(phase) if phase.is_completed() => {
                    done.insert(
                        name.clone(),
                        AnalysisRunState {
                            name,
                            phase,
                            message: r.status.message,
                        },
                    );
                }
                _ => active.push(r),
            }
        }
        let mut wake_at = None;
        if !active.is_empty() {
            let secrets = self.secrets(id.namespace, &active).await?;
            let mut runs =
                AnalysisRuns::new(TemplateCatalog::new(), id.namespace).with_secrets(secrets);
            let mut before = BTreeMap::new();
            for r in active {
                let name = r.run.metadata.name.clone().unwrap_or_default();
                before.insert(name, r.status.clone());
                runs.insert_with_status(r.run, r.status);
            }
            runs.measure(&self.providers, &move || now).await;
            for managed in runs.runs() {
                let name = managed.name().to_string();
                if before.get(&name) != Some(&managed.status) {
                    self.write_status(id.namespace, &name, &managed.status)
                        .await?;
                }
                done.insert(name, managed.state());
            }
            wake_at = runs.next_wakeup();
        }
        let runs = order.into_iter().filter_map(|n| done.remove(&n)).collect();
        Ok(AnalysisState { runs, wake_at })
    }
}

/// An AnalysisRun object as the typed run and its status.
fn parse_run(namespace: &str, mut obj: DynamicObject) -> Result<ReadRun, KubeAnalysisError> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let malformed = |message: String| KubeAnalysisError::MalformedRun {
        namespace: namespace.to_string(),
        run: name.clone(),
        message,
    };
    obj.types = Some(TypeMeta {
        api_version: ARGO_API_VERSION.into(),
        kind: "AnalysisRun".into(),
    });
    let value = serde_json::to_value(&obj).map_err(|e| malformed(e.to_string()))?;
    let run =
        match TemplateDocument::from_json_value(value).map_err(|e| malformed(e.to_string()))? {
            TemplateDocument::AnalysisRun(run) => run,
            other => return Err(malformed(format!("unexpected kind {}", other.kind()))),
        };
    let status = match &run.status {
        None | Some(serde_json::Value::Null) => RunStatus::default(),
        Some(s) => serde_path_to_error::deserialize::<_, RunStatus>(s).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "status".to_string()
            } else {
                format!("status.{path}")
            };
            malformed(format!("{field}: {}", e.inner()))
        })?,
    };
    Ok(ReadRun { run, status })
}

impl Analysis for KubeAnalysis {
    type Error = KubeAnalysisError;

    async fn observe(
        &mut self,
        rollout: &Rollout,
        now: Timestamp,
    ) -> Result<AnalysisState, KubeAnalysisError> {
        self.observe_runs(rollout, now).await
    }

    async fn execute(
        &mut self,
        rollout: &Rollout,
        action: &Action,
        _now: Timestamp,
    ) -> Result<(), KubeAnalysisError> {
        match action {
            Action::StartAnalysisRun { .. } => self.start(rollout, action).await,
            Action::TerminateAnalysisRun { name } => self.terminate(rollout, name).await,
            _ => Ok(()),
        }
    }
}
