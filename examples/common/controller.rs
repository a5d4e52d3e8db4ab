//! The controller behind `examples/controller.rs`, shared with its end-to-end tests.
//!
//! A kube-rs [`Controller`] over Argo's `Rollout` custom resource (the real
//! `argoproj.io/v1alpha1` CRD, so existing manifests apply unchanged). Each reconcile is
//! one [`Driver::pass`] through the library's kube ports:
//!
//! - [`KubeWorkloads`] (rollout-core, feature `kube`): the ReplicaSets the Rollout owns
//!   and its services' selectors;
//! - [`KubeTraffic`] (rollout-traffic, feature `kube`): Istio, Nginx, SMI and Gateway API
//!   routing objects, written with the right patch type and verified by reading back;
//! - [`KubeAnalysis`] (rollout-analysis, feature `kube`): AnalysisRun objects built from
//!   the cluster's AnalysisTemplates and measured through the Prometheus, web and Job
//!   providers.
//!
//! The new status goes to the `status` subresource with the resourceVersion the pass
//! read (a concurrent `kubectl argo rollouts promote` makes the write fail with a
//! conflict, and the pass is repeated on the fresh object), events go to the Events API,
//! and the Rollout is requeued at the machine's wake-up. The controller watches the
//! ReplicaSets and AnalysisRuns it owns, so a pod becoming ready triggers a pass.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource};
use rollout_analysis::kube_runs::KubeAnalysis;
use rollout_analysis::provider::http::{HttpClient, PrometheusProvider, WebProvider};
use rollout_analysis::provider::job::JobProvider;
use rollout_analysis::runner::Providers;
use rollout_core::RolloutStatus;
use rollout_core::Timestamp;
use rollout_core::canary::EventType;
use rollout_core::driver::{Driver, DriverError, PassOutcome};
use rollout_core::kube::KubeWorkloads;
use rollout_core::spec::{Rollout, SpecError};
use rollout_traffic::kube::KubeTraffic;

/// The name the controller reports events and field ownership under.
pub(crate) const CONTROLLER_NAME: &str = "rollouts-rs-controller";

/// A clock: wall time in the example, anything in tests.
pub(crate) type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Called after every successful pass with the rollout's name and the outcome.
pub(crate) type PassHook = Arc<dyn Fn(&str, &PassOutcome) + Send + Sync>;

/// The wall clock.
pub(crate) fn wall_clock() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Timestamp::from_secs(secs)
}

/// `argoproj.io/v1alpha1` Rollout.
pub(crate) fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// `argoproj.io/v1alpha1` AnalysisRun.
pub(crate) fn analysis_run_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AnalysisRun"),
        "analysisruns",
    )
}

/// The metric providers: Prometheus and web over plain HTTP (a binary that needs
/// HTTPS installs a rustls CryptoProvider first), Job through the API server without
/// waiting (the measurement stays Running with `resumeAt` until the Job decides).
pub(crate) fn default_providers(client: &Client) -> Providers {
    Providers::new()
        .with(
            "prometheus",
            Arc::new(PrometheusProvider::new(HttpClient::new())),
        )
        .with("web", Arc::new(WebProvider::new(HttpClient::new())))
        .with(
            "job",
            // A Job is read once per pass: a long one never holds the reconcile.
            Arc::new(
                JobProvider::new(client.clone())
                    .with_poll_interval(Duration::from_secs(2))
                    .without_waiting(),
            ),
        )
}

/// What every reconcile shares.
pub(crate) struct Context {
    /// The API client.
    pub(crate) client: Client,
    /// Metric providers by name.
    pub(crate) providers: Providers,
    /// Where events go.
    pub(crate) recorder: Recorder,
    /// The time of a pass.
    pub(crate) clock: Clock,
    /// Observes passes (tests record weights and phases with it).
    pub(crate) on_pass: Option<PassHook>,
    /// Prints a line per pass to stderr.
    pub(crate) verbose: bool,
}

impl Context {
    /// A context on `client` with the default providers and the wall clock.
    pub(crate) fn new(client: Client) -> Context {
        Context {
            providers: default_providers(&client),
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: CONTROLLER_NAME.into(),
                    instance: None,
                },
            ),
            client,
            clock: Arc::new(wall_clock),
            on_pass: None,
            verbose: false,
        }
    }
}

/// Why a reconcile failed (it is retried after [`RETRY_AFTER`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControllerError {
    /// The object is not a Rollout this library reads.
    #[error("rollout {name:?} is not readable: {source}")]
    Spec {
        /// The object's name.
        name: String,
        /// What is wrong, with the field.
        #[source]
        source: SpecError,
    },
    /// The object could not be encoded.
    #[error("rollout {name:?} cannot be encoded: {source}")]
    Encode {
        /// The object's name.
        name: String,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The Rollout could not be read.
    #[error("reading rollout {name:?}: {source}")]
    Read {
        /// The rollout.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A pass stopped (see [`DriverError`]).
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The status write failed (a `409` means the Rollout changed during the pass).
    #[error("writing the status of rollout {name:?}: {source}")]
    Status {
        /// The rollout.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// How long a failed reconcile waits.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long a reconcile with no wake-up waits before looking again.
pub(crate) const RESYNC: Duration = Duration::from_secs(300);

/// One reconcile of one Rollout.
pub(crate) async fn reconcile(
    obj: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Requeue, ControllerError> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let namespace = obj.metadata.namespace.clone().unwrap_or_default();
    // The watch cache may not hold this controller's last status write yet: a pass on
    // it would repeat the previous pass and lose its status write to a conflict. Read
    // the Rollout fresh (one GET per pass); gone means nothing to do.
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &rollout_resource());
    let Some(fresh) = api
        .get_opt(&name)
        .await
        .map_err(|source| ControllerError::Read {
            name: name.clone(),
            source,
        })?
    else {
        return Ok(Requeue::await_change());
    };
    let obj = Arc::new(fresh);
    let value = serde_json::to_value(&*obj).map_err(|source| ControllerError::Encode {
        name: name.clone(),
        source,
    })?;
    let rollout = Rollout::from_json_value(value).map_err(|source| ControllerError::Spec {
        name: name.clone(),
        source,
    })?;
    let status = rollout.status.clone().unwrap_or_default();
    let now = (ctx.clock)();
    let mut driver = Driver::new(
        KubeWorkloads::new(ctx.client.clone()),
        KubeTraffic::new(ctx.client.clone()),
        KubeAnalysis::new(ctx.client.clone(), ctx.providers.clone()),
    );
    let outcome = driver.pass(&rollout, &status, now).await?;
    if let Some(new_status) = &outcome.status {
        write_status(&ctx.client, &obj, &namespace, new_status).await?;
    }
    let resource = rollout_resource();
    let reference = obj.object_ref(&resource);
    for event in &outcome.events {
        let ev = KubeEvent {
            type_: match event.type_ {
                EventType::Warning => KubeEventType::Warning,
                _ => KubeEventType::Normal,
            },
            reason: event.reason.to_string(),
            note: Some(event.message.clone()),
            action: "Reconcile".into(),
            secondary: None,
        };
        // An event that cannot be recorded must not stop a rollout.
        if let Err(e) = ctx.recorder.publish(&ev, &reference).await
            && ctx.verbose
        {
            eprintln!(
                "{namespace}/{name}: event {} not recorded: {e}",
                event.reason
            );
        }
    }
    if ctx.verbose {
        let st = outcome.status.as_ref().unwrap_or(&status);
        eprintln!(
            "{namespace}/{name}: {} actions, phase {:?} step {:?} weight {:?}",
            outcome.actions.len(),
            st.phase,
            st.current_step_index,
            st.canary.weights.as_ref().map(|w| w.canary.weight),
        );
    }
    if let Some(hook) = &ctx.on_pass {
        hook(&name, &outcome);
    }
    Ok(match outcome.requeue_at {
        Some(at) => {
            let secs = (at.as_secs() - now.as_secs()).max(1);
            Requeue::requeue(Duration::from_secs(u64::try_from(secs).unwrap_or(1)))
        }
        None => Requeue::requeue(RESYNC),
    })
}

/// Replaces the `status` subresource, guarded by the resourceVersion the pass read.
async fn write_status(
    client: &Client,
    obj: &DynamicObject,
    namespace: &str,
    status: &RolloutStatus,
) -> Result<(), ControllerError> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &rollout_resource());
    let mut updated = obj.clone();
    let value = serde_json::to_value(status).map_err(|source| ControllerError::Encode {
        name: name.clone(),
        source,
    })?;
    updated.data["status"] = value;
    let params = PostParams {
        field_manager: Some(CONTROLLER_NAME.into()),
        ..PostParams::default()
    };
    api.replace_status(&name, &params, &updated)
        .await
        .map_err(|source| ControllerError::Status { name, source })?;
    Ok(())
}

fn error_policy(obj: Arc<DynamicObject>, error: &ControllerError, ctx: Arc<Context>) -> Requeue {
    if ctx.verbose {
        let name = obj.metadata.name.as_deref().unwrap_or_default();
        eprintln!("{name}: {error}");
    }
    Requeue::requeue(RETRY_AFTER)
}

/// Runs the controller over the Rollouts of `namespace` (all namespaces with `None`)
/// until the task is dropped or aborted.
pub(crate) async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let rollouts = rollout_resource();
    let runs = analysis_run_resource();
    let (rollout_api, rs_api, run_api): (Api<DynamicObject>, Api<ReplicaSet>, Api<DynamicObject>) =
        match namespace {
            Some(ns) => (
                Api::namespaced_with(client.clone(), ns, &rollouts),
                Api::namespaced(client.clone(), ns),
                Api::namespaced_with(client.clone(), ns, &runs),
            ),
            None => (
                Api::all_with(client.clone(), &rollouts),
                Api::all(client.clone()),
                Api::all_with(client.clone(), &runs),
            ),
        };
    let verbose = ctx.verbose;
    Controller::new_with(rollout_api, watcher::Config::default(), rollouts)
        .owns(rs_api, watcher::Config::default())
        .owns_with(run_api, runs, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if verbose && let Err(e) = result {
                eprintln!("controller: {e}");
            }
        })
        .await;
}
