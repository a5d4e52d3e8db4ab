//! The Kubernetes Job metric provider (`metrics[].provider.job`), feature `kube`.
//!
//! One measurement is one `batch/v1` Job, built the way Argo Rollouts builds it:
//!
//! * name `<run uid>.<metric name>.<n>` where `n` is the 1-based measurement number
//!   ([`MeasureContext::measurement_index`] + 1, Argo's `count + error + 1`); without a
//!   run UID the run's name takes its place;
//! * namespace: the AnalysisRun's;
//! * labels: the template's `metadata.labels` plus `analysisrun.argoproj.io/uid` (when the
//!   UID is known);
//! * annotations: the template's `metadata.annotations` plus `analysisrun.argoproj.io/name`
//!   and `analysisrun.argoproj.io/metric-name`;
//! * a controller owner reference to the `argoproj.io/v1alpha1` `AnalysisRun` (when the
//!   UID is known), so deleting the run garbage-collects its Jobs;
//! * `spec`: the template's JobSpec, unchanged.
//!
//! The Job is created with a POST; a `409 AlreadyExists` answer (a controller that
//! restarted mid-measurement creates the same name again) adopts the existing Job if it
//! belongs to the same run (its controller reference has the run's UID, or, without a
//! UID, its annotations name the same run and metric), as Argo does. The provider then
//! reads the Job every [`JobProvider::with_poll_interval`] until a `Complete` condition
//! with status `True` ([`MeasurementPhase::Successful`]) or a `Failed` condition with
//! status `True` ([`MeasurementPhase::Failed`]) appears, or the deadline passes
//! ([`ProviderError::Timeout`]; the Job is left running, [`Provider::terminate`] deletes
//! it). API errors become [`ProviderError::Backend`] naming the Job and the HTTP status.
//!
//! [`Provider::terminate`] deletes the Job with `propagationPolicy: Background` (its pods
//! are collected after the Job is gone); a Job that is already gone is not an error. Argo
//! deletes with `Foreground`, which blocks the Job's removal on its pods'; both remove the
//! pods.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};

use super::{MeasureContext, Measured, Provider, ProviderError};
use crate::MeasurementPhase;
use crate::expr::Value;
use crate::template::Metric;

/// Provider name used in errors.
const PROVIDER: &str = "job";

/// The label carrying the AnalysisRun's UID (Argo's job informer filters on it).
pub const RUN_UID_LABEL: &str = "analysisrun.argoproj.io/uid";
/// The annotation carrying the AnalysisRun's name.
pub const RUN_NAME_ANNOTATION: &str = "analysisrun.argoproj.io/name";
/// The annotation carrying the metric's name.
pub const METRIC_NAME_ANNOTATION: &str = "analysisrun.argoproj.io/metric-name";

/// The default time between two reads of a running Job.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The default bound on one measurement (creation to verdict).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3600);

/// The Job metric provider: runs one Kubernetes Job per measurement.
#[derive(Clone)]
pub struct JobProvider {
    client: kube::Client,
    poll_interval: Duration,
    deadline: Duration,
    wait: bool,
}

impl std::fmt::Debug for JobProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobProvider")
            .field("poll_interval", &self.poll_interval)
            .field("deadline", &self.deadline)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl JobProvider {
    /// A provider talking to the API server behind `client`, polling every
    /// [`DEFAULT_POLL_INTERVAL`] for at most [`DEFAULT_DEADLINE`].
    pub fn new(client: kube::Client) -> Self {
        JobProvider {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
            deadline: DEFAULT_DEADLINE,
            wait: true,
        }
    }

    /// Answers without waiting: one measurement creates (or adopts) the Job and reads
    /// it once; a Job without a verdict yet is [`Measured::InProgress`], asked again
    /// after the poll interval (the AnalysisRun keeps a `Running` measurement with
    /// `resumeAt`, as Argo's does). A controller uses this so that a long Job never
    /// holds its reconcile. The deadline then counts from the Job's creation time.
    pub fn without_waiting(mut self) -> Self {
        self.wait = false;
        self
    }

    /// Sets the time between two reads of a running Job.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the bound on one measurement, from the create request to the verdict.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The time between two reads of a running Job.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// The bound on one measurement.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    async fn create_or_adopt(
        &self,
        api: &Api<Job>,
        ctx: &MeasureContext<'_>,
        metric: &Metric,
        job: &Job,
        name: &str,
    ) -> Result<Job, ProviderError> {
        match api.create(&PostParams::default(), job).await {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                let existing = api
                    .get(name)
                    .await
                    .map_err(|e| api_error(ctx.namespace, name, "read (to adopt)", &e))?;
                if owned_by_run(&existing, ctx, &metric.name) {
                    Ok(existing)
                } else {
                    Err(backend(
                        ctx.namespace,
                        name,
                        "already exists and belongs to another AnalysisRun",
                    ))
                }
            }
            Err(e) => Err(api_error(ctx.namespace, name, "create", &e)),
        }
    }

    async fn run_to_verdict(
        &self,
        api: &Api<Job>,
        ctx: &MeasureContext<'_>,
        metric: &Metric,
        job: &Job,
        name: &str,
    ) -> Result<Measured, ProviderError> {
        let mut current = self.create_or_adopt(api, ctx, metric, job, name).await?;
        loop {
            if let Some(phase) = job_verdict(&current) {
                return Ok(Measured::Verdict {
                    phase,
                    value: Value::Nil,
                });
            }
            tokio::time::sleep(self.poll_interval).await;
            current = api
                .get(name)
                .await
                .map_err(|e| api_error(ctx.namespace, name, "read", &e))?;
        }
    }
}

#[async_trait::async_trait]
impl Provider for JobProvider {
    async fn measure(
        &self,
        ctx: &MeasureContext<'_>,
        metric: &Metric,
    ) -> Result<Measured, ProviderError> {
        let job = build_job(ctx, metric)?;
        let name = job_name(ctx, &metric.name);
        let api: Api<Job> = Api::namespaced(self.client.clone(), ctx.namespace);
        if !self.wait {
            let current = self.create_or_adopt(&api, ctx, metric, &job, &name).await?;
            if let Some(phase) = job_verdict(&current) {
                return Ok(Measured::Verdict {
                    phase,
                    value: Value::Nil,
                });
            }
            let age = current
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| {
                    let created = std::time::UNIX_EPOCH
                        + Duration::from_secs(u64::try_from(t.0.as_second()).ok()?);
                    std::time::SystemTime::now().duration_since(created).ok()
                })
                .unwrap_or_default();
            if age > self.deadline {
                return Err(ProviderError::Timeout {
                    provider: PROVIDER,
                    address: format!("{}/{name}", ctx.namespace),
                    timeout_ms: u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX),
                });
            }
            return Ok(Measured::InProgress {
                retry_after: self.poll_interval,
            });
        }
        match tokio::time::timeout(
            self.deadline,
            self.run_to_verdict(&api, ctx, metric, &job, &name),
        )
        .await
        {
            Ok(result) => result,
            Err(_elapsed) => Err(ProviderError::Timeout {
                provider: PROVIDER,
                address: format!("{}/{name}", ctx.namespace),
                timeout_ms: u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    async fn terminate(
        &self,
        ctx: &MeasureContext<'_>,
        metric: &Metric,
    ) -> Result<(), ProviderError> {
        let name = job_name(ctx, &metric.name);
        let api: Api<Job> = Api::namespaced(self.client.clone(), ctx.namespace);
        let delete = async {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
                Err(e) => Err(api_error(ctx.namespace, &name, "delete", &e)),
            }
        };
        match tokio::time::timeout(self.deadline, delete).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ProviderError::Timeout {
                provider: PROVIDER,
                address: format!("{}/{name}", ctx.namespace),
                timeout_ms: u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }
}

/// The Job's name for a measurement: `<run uid>.<metric>.<n>` with `n` the 1-based
/// measurement number (the run's name replaces the UID when there is none).
pub fn job_name(ctx: &MeasureContext<'_>, metric_name: &str) -> String {
    let owner = ctx.run_uid.unwrap_or(ctx.run_name);
    format!(
        "{owner}.{metric_name}.{}",
        ctx.measurement_index.saturating_add(1)
    )
}

/// Builds the Job of a measurement of `metric` (see the [module docs](self)), without
/// talking to the API server.
///
/// # Errors
///
/// [`ProviderError::Config`] when the metric has no `job` section, or when its
/// `metadata` or `spec` is not a valid ObjectMeta / JobSpec (the field path is given).
pub fn build_job(ctx: &MeasureContext<'_>, metric: &Metric) -> Result<Job, ProviderError> {
    let Some(section) = metric.provider.job.as_ref() else {
        return Err(ProviderError::Config {
            provider: PROVIDER,
            field: "job".into(),
            reason: format!("metric {:?} has no job provider section", metric.name),
        });
    };
    let template_meta: ObjectMeta = match &section.metadata {
        None | Some(serde_json::Value::Null) => ObjectMeta::default(),
        Some(meta) => decode(meta, "metadata")?,
    };
    let spec: JobSpec = decode(&section.spec, "spec")?;

    let mut labels: BTreeMap<String, String> = template_meta.labels.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = template_meta.annotations.unwrap_or_default();
    annotations.insert(RUN_NAME_ANNOTATION.into(), ctx.run_name.into());
    annotations.insert(METRIC_NAME_ANNOTATION.into(), metric.name.clone());
    let owner_references = ctx.run_uid.map(|uid| {
        labels.insert(RUN_UID_LABEL.into(), uid.into());
        vec![OwnerReference {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "AnalysisRun".into(),
            name: ctx.run_name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]
    });
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(ctx, &metric.name)),
            namespace: Some(ctx.namespace.into()),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: Some(annotations),
            owner_references,
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// The verdict a Job's conditions give: `Complete`=True is Successful, `Failed`=True is
/// Failed, anything else (no condition yet, `Suspended`, `FailureTarget`,
/// `SuccessCriteriaMet`) means the Job is still running.
pub fn job_verdict(job: &Job) -> Option<MeasurementPhase> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    let mut verdict = None;
    for condition in conditions {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Complete" => verdict = Some(MeasurementPhase::Successful),
            "Failed" => verdict = Some(MeasurementPhase::Failed),
            _ => {}
        }
    }
    verdict
}

/// Whether an existing Job was made for this run (and metric): its controller owner
/// reference carries the run's UID, or, without a UID, its annotations name the run and
/// the metric.
fn owned_by_run(job: &Job, ctx: &MeasureContext<'_>, metric_name: &str) -> bool {
    match ctx.run_uid {
        Some(uid) => job
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.controller == Some(true) && r.uid == uid),
        None => job.metadata.annotations.as_ref().is_some_and(|a| {
            a.get(RUN_NAME_ANNOTATION).map(String::as_str) == Some(ctx.run_name)
                && a.get(METRIC_NAME_ANNOTATION).map(String::as_str) == Some(metric_name)
        }),
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    section: &str,
) -> Result<T, ProviderError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            section.to_string()
        } else {
            format!("{section}.{path}")
        };
        ProviderError::Config {
            provider: PROVIDER,
            field,
            reason: e.into_inner().to_string(),
        }
    })
}

fn backend(namespace: &str, name: &str, what: &str) -> ProviderError {
    ProviderError::Backend {
        provider: PROVIDER,
        message: format!("job {namespace}/{name}: {what}"),
    }
}

fn api_error(namespace: &str, name: &str, verb: &str, err: &kube::Error) -> ProviderError {
    let what = match err {
        kube::Error::Api(status) => {
            let mut s = format!("{verb} failed: HTTP {}", status.code);
            if !status.reason.is_empty() {
                s.push(' ');
                s.push_str(&status.reason);
            }
            if !status.message.is_empty() {
                s.push_str(": ");
                s.push_str(&status.message);
            }
            s
        }
        other => format!("{verb} failed: {other}"),
    };
    backend(namespace, name, &what)
}
