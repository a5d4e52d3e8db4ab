//! The driver: one reconcile pass of a real controller, through three ports.
//!
//! The machines ([`canary::reconcile`], [`bluegreen::reconcile`]) decide; somebody has
//! to observe the cluster before the call and carry the actions out after it. The
//! driver is that somebody, written once against three ports a caller implements (or
//! takes from the library crates' `kube` features):
//!
//! | port | observes | carries out |
//! |---|---|---|
//! | [`Workloads`] | the rollout's ReplicaSets and its services' selectors | create / scale / annotate ReplicaSets, switch selectors |
//! | [`Traffic`] | whether the routing objects hold the desired routes | make them hold [`DesiredRoutes`] |
//! | [`Analysis`] | the phases of the rollout's AnalysisRuns (after measuring what is due) | start and terminate runs |
//!
//! One [`Driver::pass`]:
//!
//! 1. computes the pod template hash of `spec.template` (with `status.collisionCount`);
//! 2. observes through the three ports; the traffic port verifies, without writing, that
//!    the routing objects hold the routes the *persisted* status stands for
//!    ([`DesiredRoutes::for_status`]), and that becomes `Observed::traffic_verified`;
//! 3. calls the canary or blue-green machine;
//! 4. executes the actions in their order, each through its port (route actions are
//!    folded into the desired routes and applied at once, so a lower weight is written
//!    before the canary shrinks, as the machine ordered);
//! 5. repairs drift: when the objects did not verify and no route action of this pass
//!    wrote them, the traffic port is asked to hold the routes the *new* status stands
//!    for (another writer changed a weight, or a routing object was deleted);
//! 6. returns the new status (when it changed), the events and the wake-up time: the
//!    earlier of the machine's `requeue_at` and the analysis port's.
//!
//! The first observation only reads: a pass that starts from a stale status (its
//! predecessor's status write was lost) must not write that stale status's routes
//! back, which would flap the traffic; the machine re-emits whatever the stale status
//! lacks.
//!
//! The caller persists the status (the `status` subresource), records the events and
//! calls again at the wake-up or when a watched object changes. The driver is async but
//! runtime-agnostic (no timers, no spawning) and reads no clock: `now` is an argument.
//!
//! Crash safety is the machines': every action is idempotent and the status is
//! persisted after the actions, so a pass cut short anywhere (a port error, a killed
//! process) is repeated by the next one from the old status. A port error stops the
//! pass at the failing action and names it; nothing after it runs.
//!
//! Experiments and step plugins have no port yet: a pass whose decision starts one is
//! refused with [`DriverError::Unsupported`] before any action runs.

use std::future::Future;

use crate::bluegreen;
use crate::canary::{
    self, Action, AnalysisRunState, Decision, Event, Observed, ReplicaSetState, ServiceState,
};
use crate::spec::{CanaryStep, Rollout};
use crate::status::RolloutStatus;
use crate::time::Timestamp;
use crate::traffic::{DesiredRoutes, TrafficCommand, Verification, Weights};

/// A port's error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the [`Workloads`] port observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadsState {
    /// The ReplicaSets the rollout owns, oldest first.
    pub replica_sets: Vec<ReplicaSetState>,
    /// The selectors of the rollout's services (canary / stable, active / preview)
    /// that exist.
    pub services: Vec<ServiceState>,
}

/// ReplicaSets and services.
pub trait Workloads {
    /// Why an observation or an action failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The rollout's ReplicaSets (oldest first) and its services' selectors.
    fn observe(
        &mut self,
        rollout: &Rollout,
    ) -> impl Future<Output = Result<WorkloadsState, Self::Error>> + Send;

    /// Carries out one of [`Action::CreateReplicaSet`], [`Action::ScaleReplicaSet`],
    /// [`Action::DeleteReplicaSet`] (an absent set is already deleted),
    /// [`Action::SetScaleDownDeadline`] and [`Action::SetServiceSelector`] (the driver
    /// passes no other). Must be idempotent.
    fn execute(
        &mut self,
        rollout: &Rollout,
        action: &Action,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The routing objects of a rollout with `trafficRouting`.
pub trait Traffic {
    /// Why the routes could not be read or written.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Makes every routing object of the rollout carry `desired` (no write when it
    /// already does) and reports whether the objects, read back, hold it.
    fn reconcile(
        &mut self,
        rollout: &Rollout,
        desired: &DesiredRoutes,
    ) -> impl Future<Output = Result<Verification, Self::Error>> + Send;

    /// Reads the routing objects and reports whether they carry `desired`, writing
    /// nothing (an object the router would create is `NotVerified`).
    fn verify(
        &mut self,
        rollout: &Rollout,
        desired: &DesiredRoutes,
    ) -> impl Future<Output = Result<Verification, Self::Error>> + Send;
}

/// What the [`Analysis`] port observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalysisState {
    /// The phases of the rollout's analysis runs, by name.
    pub runs: Vec<AnalysisRunState>,
    /// When a run next wants to measure (`None`: only on a change).
    pub wake_at: Option<Timestamp>,
}

/// Analysis runs.
pub trait Analysis {
    /// Why a run could not be read, measured, created or terminated.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Takes the measurements that are due at `now` for the rollout's runs, records
    /// them, and reports every run's phase.
    fn observe(
        &mut self,
        rollout: &Rollout,
        now: Timestamp,
    ) -> impl Future<Output = Result<AnalysisState, Self::Error>> + Send;

    /// Carries out [`Action::StartAnalysisRun`] (creating a run that already exists is
    /// not an error) or [`Action::TerminateAnalysisRun`].
    fn execute(
        &mut self,
        rollout: &Rollout,
        action: &Action,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A [`Traffic`] port for rollouts without traffic routing: never called by the driver
/// for those, and an error if a rollout with routing reaches it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTraffic;

/// The error of [`NoTraffic`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("rollout {rollout:?} has trafficRouting but the driver has no traffic port")]
pub struct NoTrafficError {
    /// The rollout.
    pub rollout: String,
}

impl Traffic for NoTraffic {
    type Error = NoTrafficError;

    async fn reconcile(
        &mut self,
        rollout: &Rollout,
        _desired: &DesiredRoutes,
    ) -> Result<Verification, NoTrafficError> {
        Err(NoTrafficError {
            rollout: rollout.metadata.name.clone().unwrap_or_default(),
        })
    }

    async fn verify(
        &mut self,
        rollout: &Rollout,
        desired: &DesiredRoutes,
    ) -> Result<Verification, NoTrafficError> {
        self.reconcile(rollout, desired).await
    }
}

/// Which port failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Port {
    /// [`Workloads`].
    Workloads,
    /// [`Traffic`].
    Traffic,
    /// [`Analysis`].
    Analysis,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Port::Workloads => "workloads",
            Port::Traffic => "traffic",
            Port::Analysis => "analysis",
        })
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The rollout has no `spec.template` (it uses `spec.workloadRef`, which the driver
    /// does not resolve).
    #[error("rollout {rollout:?}: spec.template is not set (spec.workloadRef is not supported)")]
    NoTemplate {
        /// The rollout.
        rollout: String,
    },
    /// The decision asks for something no port carries out; nothing was executed.
    #[error("rollout {rollout:?}: the driver has no port for {action}")]
    Unsupported {
        /// The rollout.
        rollout: String,
        /// The action (`StartExperiment`, `RunStepPlugin`, ...).
        action: &'static str,
    },
    /// A port failed while observing (`during` is `observe`) or carrying out an action
    /// (`during` names it; the actions before it were carried out).
    #[error("rollout {rollout:?}: {port} port failed during {during}: {source}")]
    Port {
        /// The rollout.
        rollout: String,
        /// Which port.
        port: Port,
        /// `observe` or the action.
        during: String,
        /// The port's error.
        #[source]
        source: BoxError,
    },
}

impl DriverError {
    /// The port's error, when a port failed.
    pub fn port_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            DriverError::Port { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// The outcome of one [`Driver::pass`].
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct PassOutcome {
    /// The status to persist (`None`: unchanged).
    pub status: Option<RolloutStatus>,
    /// The actions carried out, in order.
    pub actions: Vec<Action>,
    /// Events to record (Argo's reasons).
    pub events: Vec<Event>,
    /// Call again at this time even if nothing changes.
    pub requeue_at: Option<Timestamp>,
    /// The pod template hash of the current `spec.template`.
    pub pod_template_hash: String,
    /// What the traffic port reported before the machine ran (`None` without routing).
    pub traffic: Option<Verification>,
}

/// Runs passes through three ports (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Driver<W, T, A> {
    /// ReplicaSets and services.
    pub workloads: W,
    /// Routing objects.
    pub traffic: T,
    /// Analysis runs.
    pub analysis: A,
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::CreateReplicaSet { .. } => "CreateReplicaSet",
        Action::ScaleReplicaSet { .. } => "ScaleReplicaSet",
        Action::DeleteReplicaSet { .. } => "DeleteReplicaSet",
        Action::SetScaleDownDeadline { .. } => "SetScaleDownDeadline",
        Action::SetServiceSelector { .. } => "SetServiceSelector",
        Action::SetTrafficWeight { .. } => "SetTrafficWeight",
        Action::SetHeaderRoute(_) => "SetHeaderRoute",
        Action::SetMirrorRoute(_) => "SetMirrorRoute",
        Action::RemoveManagedRoutes => "RemoveManagedRoutes",
        Action::StartAnalysisRun { .. } => "StartAnalysisRun",
        Action::TerminateAnalysisRun { .. } => "TerminateAnalysisRun",
        Action::StartExperiment { .. } => "StartExperiment",
        Action::TerminateExperiment { .. } => "TerminateExperiment",
        Action::RunStepPlugin { .. } => "RunStepPlugin",
        Action::AbortStepPlugins => "AbortStepPlugins",
    }
}

fn describe(action: &Action) -> String {
    match action {
        Action::CreateReplicaSet {
            pod_template_hash,
            replicas,
        } => format!("CreateReplicaSet({pod_template_hash}, {replicas})"),
        Action::ScaleReplicaSet {
            pod_template_hash,
            replicas,
        } => format!("ScaleReplicaSet({pod_template_hash}, {replicas})"),
        Action::SetScaleDownDeadline {
            pod_template_hash, ..
        } => format!("SetScaleDownDeadline({pod_template_hash})"),
        Action::DeleteReplicaSet { pod_template_hash } => {
            format!("DeleteReplicaSet({pod_template_hash})")
        }
        Action::SetServiceSelector {
            service,
            pod_template_hash,
        } => format!("SetServiceSelector({service}, {pod_template_hash})"),
        Action::SetTrafficWeight { canary_weight, .. } => {
            format!("SetTrafficWeight({canary_weight})")
        }
        Action::StartAnalysisRun { name, .. } => format!("StartAnalysisRun({name})"),
        Action::TerminateAnalysisRun { name } => format!("TerminateAnalysisRun({name})"),
        other => action_name(other).to_string(),
    }
}

impl DesiredRoutes {
    /// The routes a persisted status stands for: the weights of
    /// `status.canary.weights` (everything to the stable when there are none) and,
    /// while an update is in progress and not aborted, the managed header and mirror
    /// routes set by the steps up to the current one (a later step with the same name
    /// replaces or, without `match`, removes a route). What the driver asks the traffic
    /// port to hold before a pass.
    pub fn for_status(rollout: &Rollout, status: &RolloutStatus) -> DesiredRoutes {
        let canary = rollout.spec.strategy.canary.as_ref();
        let total = canary.map_or(100, |c| c.max_traffic_weight());
        let mut desired = DesiredRoutes::stable(total);
        if let Some(w) = &status.canary.weights {
            desired.weights = Weights {
                canary: w.canary.weight,
                stable: w.stable.weight,
                total,
                additional: w.additional.clone(),
                canary_hash: w.canary.pod_template_hash.clone(),
                stable_hash: w.stable.pod_template_hash.clone(),
            };
        }
        let in_update = !status.current_pod_hash.is_empty()
            && !status.stable_rs.is_empty()
            && status.current_pod_hash != status.stable_rs;
        if !in_update || status.abort {
            return desired;
        }
        let Some(steps) = canary.map(|c| &c.steps) else {
            return desired;
        };
        let upto = status
            .current_step_index
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(0);
        if upto >= steps.len() {
            return desired;
        }
        for step in &steps[..=upto] {
            for part in step.parts() {
                let command = match part {
                    CanaryStep::SetHeaderRoute(r) => {
                        TrafficCommand::from_action(&Action::SetHeaderRoute(r.clone()))
                    }
                    CanaryStep::SetMirrorRoute(r) => {
                        TrafficCommand::from_action(&Action::SetMirrorRoute(r.clone()))
                    }
                    _ => None,
                };
                if let Some(c) = command {
                    desired.apply(&c);
                }
            }
        }
        desired
    }
}

fn has_routing(rollout: &Rollout) -> bool {
    rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .is_some_and(|c| c.traffic_routing.is_some())
}

impl<W: Workloads, T: Traffic, A: Analysis> Driver<W, T, A> {
    /// A driver over three ports.
    pub fn new(workloads: W, traffic: T, analysis: A) -> Self {
        Driver {
            workloads,
            traffic,
            analysis,
        }
    }

    /// One pass: observe, reconcile, execute (see the module docs). The caller persists
    /// [`PassOutcome::status`].
    pub async fn pass(
        &mut self,
        rollout: &Rollout,
        status: &RolloutStatus,
        now: Timestamp,
    ) -> Result<PassOutcome, DriverError> {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let port_err = |port: Port, during: String| {
            let name = name.clone();
            move |e: BoxError| DriverError::Port {
                rollout: name,
                port,
                during,
                source: e,
            }
        };
        let template = rollout
            .spec
            .template
            .as_ref()
            .ok_or_else(|| DriverError::NoTemplate {
                rollout: name.clone(),
            })?;
        let hash = crate::hash::pod_template_hash(template, status.collision_count).to_string();

        let workloads = self
            .workloads
            .observe(rollout)
            .await
            .map_err(|e| port_err(Port::Workloads, "observe".into())(Box::new(e)))?;
        let analysis = self
            .analysis
            .observe(rollout, now)
            .await
            .map_err(|e| port_err(Port::Analysis, "observe".into())(Box::new(e)))?;
        let routing = has_routing(rollout);
        let mut desired = DesiredRoutes::for_status(rollout, status);
        let traffic = if routing {
            Some(
                self.traffic
                    .verify(rollout, &desired)
                    .await
                    .map_err(|e| port_err(Port::Traffic, "observe".into())(Box::new(e)))?,
            )
        } else {
            None
        };

        let observed = Observed {
            pod_template_hash: &hash,
            replica_sets: &workloads.replica_sets,
            analysis_runs: &analysis.runs,
            traffic_verified: traffic.as_ref().and_then(Verification::as_status),
            services: &workloads.services,
            ..Observed::default()
        };
        let decision: Decision<'_> = if rollout.spec.strategy.blue_green.is_some() {
            bluegreen::reconcile(rollout, status, &observed, now)
        } else {
            canary::reconcile(rollout, status, &observed, now)
        };
        let changed = decision.status_changed();
        let Decision {
            status: new_status,
            actions,
            events,
            requeue_at,
        } = decision;

        if let Some(a) = actions.iter().find(|a| {
            matches!(
                a,
                Action::StartExperiment { .. }
                    | Action::TerminateExperiment { .. }
                    | Action::RunStepPlugin { .. }
                    | Action::AbortStepPlugins
            )
        }) {
            return Err(DriverError::Unsupported {
                rollout: name,
                action: action_name(a),
            });
        }

        let mut routes_written = false;
        for action in &actions {
            match action {
                Action::CreateReplicaSet { .. }
                | Action::ScaleReplicaSet { .. }
                | Action::DeleteReplicaSet { .. }
                | Action::SetScaleDownDeadline { .. }
                | Action::SetServiceSelector { .. } => self
                    .workloads
                    .execute(rollout, action)
                    .await
                    .map_err(|e| port_err(Port::Workloads, describe(action))(Box::new(e)))?,
                Action::SetTrafficWeight { .. }
                | Action::SetHeaderRoute(_)
                | Action::SetMirrorRoute(_)
                | Action::RemoveManagedRoutes => {
                    desired.apply_actions(std::iter::once(action));
                    if routing {
                        routes_written = true;
                        self.traffic
                            .reconcile(rollout, &desired)
                            .await
                            .map_err(|e| port_err(Port::Traffic, describe(action))(Box::new(e)))?;
                    }
                }
                Action::StartAnalysisRun { .. } | Action::TerminateAnalysisRun { .. } => self
                    .analysis
                    .execute(rollout, action, now)
                    .await
                    .map_err(|e| port_err(Port::Analysis, describe(action))(Box::new(e)))?,
                _ => {}
            }
        }

        if routing
            && !routes_written
            && traffic
                .as_ref()
                .is_some_and(|v| matches!(v, Verification::NotVerified(_)))
        {
            let repair = DesiredRoutes::for_status(rollout, &new_status);
            self.traffic
                .reconcile(rollout, &repair)
                .await
                .map_err(|e| port_err(Port::Traffic, "repair".into())(Box::new(e)))?;
        }

        let requeue_at = match (requeue_at, analysis.wake_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(PassOutcome {
            status: changed.then(|| new_status.into_owned()),
            actions,
            events,
            requeue_at,
            pod_template_hash: hash,
            traffic,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimCluster;
    use crate::status::AnalysisPhase;
    use std::convert::Infallible;

    /// The simulated cluster as all three ports.
    #[derive(Default)]
    struct Sim {
        cluster: SimCluster,
        desired: Vec<DesiredRoutes>,
        now: Timestamp,
        fail_on: Option<&'static str>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("injected failure")]
    struct Injected;

    // The ports need `Send` futures; the tests share the cluster through a `Mutex`.
    struct Shared(std::sync::Arc<std::sync::Mutex<Sim>>);

    impl Workloads for Shared {
        type Error = Injected;
        async fn observe(&mut self, _: &Rollout) -> Result<WorkloadsState, Injected> {
            let mut s = self.0.lock().unwrap();
            let now = s.now;
            s.cluster.advance(now);
            let o = s.cluster.observed("");
            Ok(WorkloadsState {
                replica_sets: o.replica_sets.to_vec(),
                services: o.services.to_vec(),
            })
        }
        async fn execute(&mut self, _: &Rollout, action: &Action) -> Result<(), Injected> {
            let mut s = self.0.lock().unwrap();
            if s.fail_on == Some(action_name(action)) {
                return Err(Injected);
            }
            let now = s.now;
            s.cluster.apply(std::slice::from_ref(action), now);
            Ok(())
        }
    }

    struct T(std::sync::Arc<std::sync::Mutex<Sim>>);
    impl Traffic for T {
        type Error = Infallible;
        async fn reconcile(
            &mut self,
            _: &Rollout,
            desired: &DesiredRoutes,
        ) -> Result<Verification, Infallible> {
            let mut s = self.0.lock().unwrap();
            if s.desired.last() != Some(desired) {
                s.desired.push(desired.clone());
            }
            Ok(Verification::Verified)
        }
        async fn verify(
            &mut self,
            _: &Rollout,
            _: &DesiredRoutes,
        ) -> Result<Verification, Infallible> {
            Ok(Verification::Verified)
        }
    }

    struct An(std::sync::Arc<std::sync::Mutex<Sim>>);
    impl Analysis for An {
        type Error = Infallible;
        async fn observe(
            &mut self,
            _: &Rollout,
            _: Timestamp,
        ) -> Result<AnalysisState, Infallible> {
            let s = self.0.lock().unwrap();
            Ok(AnalysisState {
                runs: s.cluster.analysis_runs.clone(),
                wake_at: None,
            })
        }
        async fn execute(
            &mut self,
            _: &Rollout,
            action: &Action,
            now: Timestamp,
        ) -> Result<(), Infallible> {
            let mut s = self.0.lock().unwrap();
            s.cluster.apply(std::slice::from_ref(action), now);
            if let Action::StartAnalysisRun { name, .. } = action {
                s.cluster.set_run_phase(name, AnalysisPhase::Successful, "");
            }
            Ok(())
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        // The ports above never wait: one poll completes every future.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a test port waited"),
        }
    }

    const ROLLOUT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "web:1"}]}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        istio: {virtualService: {name: web, routes: [primary]}}
        managedRoutes: [{name: beta}]
      steps:
      - setWeight: 20
      - setHeaderRoute: {name: beta, match: [{headerName: x-beta, headerValue: {exact: "1"}}]}
      - analysis: {templates: [{templateName: ok}]}
      - setWeight: 50
      - pause: {duration: 10s}
"#;

    type D = Driver<Shared, T, An>;

    fn driver(sim: &std::sync::Arc<std::sync::Mutex<Sim>>) -> D {
        Driver::new(Shared(sim.clone()), T(sim.clone()), An(sim.clone()))
    }

    /// Passes until quiet, then jumps to the wake-up; returns the final status.
    fn run(d: &mut D, ro: &Rollout, mut st: RolloutStatus, until: i64) -> RolloutStatus {
        let sim = d.workloads.0.clone();
        for _ in 0..200 {
            let now = sim.lock().unwrap().now;
            let out = block_on(d.pass(ro, &st, now)).unwrap();
            let quiet = out.actions.is_empty() && out.status.is_none();
            if let Some(s) = out.status {
                st = s;
            }
            if quiet {
                let next = out
                    .requeue_at
                    .into_iter()
                    .chain(sim.lock().unwrap().cluster.next_change())
                    .filter(|t| *t > now)
                    .min();
                match next {
                    Some(t) if t.as_secs() <= until => sim.lock().unwrap().now = t,
                    _ => break,
                }
            }
        }
        st
    }

    #[test]
    fn drives_a_routed_canary_to_completion_through_the_ports() {
        let sim = std::sync::Arc::new(std::sync::Mutex::new(Sim {
            cluster: SimCluster::new(5),
            now: Timestamp::from_secs(1_800_000_000),
            ..Sim::default()
        }));
        let mut ro = Rollout::from_yaml(ROLLOUT).unwrap();
        let mut d = driver(&sim);
        let st = run(&mut d, &ro, RolloutStatus::default(), 1_800_001_000);
        assert!(!st.stable_rs.is_empty());
        sim.lock().unwrap().desired.clear();
        crate::command::set_image(&mut ro, "web", "web:2").unwrap();
        let st = run(&mut d, &ro, st, 1_800_002_000);
        assert_eq!(st.stable_rs, st.current_pod_hash, "promoted");
        let s = sim.lock().unwrap();
        let weights: Vec<i32> = s.desired.iter().map(|d| d.weights.canary).collect();
        let mut steps = weights.clone();
        steps.dedup();
        assert_eq!(steps, [0, 20, 50, 100, 0], "weights written: {weights:?}");
        // The header route appears at step 1, stays through the analysis and the
        // second weight, and is removed at the end.
        let with_route: Vec<(i32, bool)> = s
            .desired
            .iter()
            .map(|d| (d.weights.canary, d.has_route("beta")))
            .collect();
        assert!(with_route.contains(&(20, true)) && with_route.contains(&(50, true)));
        assert_eq!(with_route.last(), Some(&(0, false)));
    }

    #[test]
    fn desired_routes_for_a_persisted_status_survive_a_restart() {
        let ro = Rollout::from_yaml(ROLLOUT).unwrap();
        let mut st = RolloutStatus {
            current_pod_hash: "b".into(),
            stable_rs: "a".into(),
            current_step_index: Some(3),
            ..RolloutStatus::default()
        };
        st.canary.weights = Some(crate::status::TrafficWeights {
            canary: crate::status::WeightDestination {
                weight: 50,
                service_name: "web-canary".into(),
                pod_template_hash: "b".into(),
            },
            stable: crate::status::WeightDestination {
                weight: 50,
                service_name: "web-stable".into(),
                pod_template_hash: "a".into(),
            },
            ..Default::default()
        });
        let d = DesiredRoutes::for_status(&ro, &st);
        assert_eq!((d.weights.canary, d.weights.stable), (50, 50));
        assert!(d.has_route("beta"));
        st.current_step_index = Some(0);
        assert!(!DesiredRoutes::for_status(&ro, &st).has_route("beta"));
        st.current_step_index = Some(3);
        st.abort = true;
        assert!(!DesiredRoutes::for_status(&ro, &st).has_route("beta"));
    }

    #[test]
    fn a_failing_port_names_the_action_and_the_next_pass_repeats_it() {
        let sim = std::sync::Arc::new(std::sync::Mutex::new(Sim {
            cluster: SimCluster::new(0),
            now: Timestamp::from_secs(1_800_000_000),
            fail_on: Some("CreateReplicaSet"),
            ..Sim::default()
        }));
        let ro = Rollout::from_yaml(ROLLOUT).unwrap();
        let mut d = driver(&sim);
        let now = Timestamp::from_secs(1_800_000_000);
        let err = block_on(d.pass(&ro, &RolloutStatus::default(), now)).unwrap_err();
        assert!(
            matches!(&err, DriverError::Port { port: Port::Workloads, during, .. } if during.starts_with("CreateReplicaSet(")),
            "{err}"
        );
        sim.lock().unwrap().fail_on = None;
        let out = block_on(d.pass(&ro, &RolloutStatus::default(), now)).unwrap();
        assert!(
            out.actions
                .iter()
                .any(|a| matches!(a, Action::CreateReplicaSet { .. }))
        );
    }

    #[test]
    fn a_rollout_without_a_template_is_refused() {
        let mut ro = Rollout::from_yaml(ROLLOUT).unwrap();
        ro.spec.template = None;
        let sim = std::sync::Arc::new(std::sync::Mutex::new(Sim {
            cluster: SimCluster::new(0),
            ..Sim::default()
        }));
        let mut d = driver(&sim);
        let err = block_on(d.pass(&ro, &RolloutStatus::default(), Timestamp::EPOCH)).unwrap_err();
        assert!(matches!(err, DriverError::NoTemplate { .. }));
    }
}
