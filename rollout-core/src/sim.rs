//! An in-memory simulated cluster and a virtual-time harness (feature `test-util`).
//!
//! [`SimCluster`] carries out [`Action`]s the way a Kubernetes cluster with the Argo
//! controller's adapters would: ReplicaSets get created and scaled, new pods become
//! available after a configurable delay (or never, to model a crash-looping release),
//! services switch selectors, the router holds weights and routes, analysis runs exist
//! with phases that a script decides. [`Harness`] runs the loop a controller runs —
//! observe, reconcile, execute, persist — in virtual time, jumping from one
//! interesting instant to the next. Tests, examples, benchmarks and downstream users
//! drive whole rollouts with it in microseconds. The pass calls the canary
//! [`reconcile`], or [`bluegreen::reconcile`] for a rollout with
//! `spec.strategy.blueGreen` (the active and preview services are then created by the
//! machine's first `SetServiceSelector`).

use crate::bluegreen;
use crate::canary::{
    Action, AnalysisRunKind, AnalysisRunState, Decision, Event, ExperimentState, Observed,
    ReplicaSetState, ServiceState, reconcile,
};
use crate::spec::{Rollout, RolloutAnalysis};
use crate::status::{AnalysisPhase, RolloutStatus};
use crate::time::Timestamp;

/// Pods of one ReplicaSet that are not available yet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    hash: String,
    available_at: Timestamp,
    count: i32,
}

/// An analysis run the machine started.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRun {
    /// Run name.
    pub name: String,
    /// Step, background, pre- or post-promotion.
    pub kind: AnalysisRunKind,
    /// When it was created.
    pub started_at: Timestamp,
    /// Terminated by the machine.
    pub terminated: bool,
    /// Templates, args and rules the run was started with.
    pub analysis: RolloutAnalysis,
    /// Hash of the canary pods when it started.
    pub canary_hash: String,
    /// Hash of the stable pods when it started.
    pub stable_hash: String,
}

/// The traffic split the router holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimTraffic {
    /// Canary weight.
    pub canary: i32,
    /// Stable weight.
    pub stable: i32,
    /// Total.
    pub total: i32,
}

/// A simulated cluster: ReplicaSets, services, a traffic router and analysis runs.
#[derive(Debug, Clone, Default)]
pub struct SimCluster {
    /// The ReplicaSets, oldest first.
    pub replica_sets: Vec<ReplicaSetState>,
    /// Service selectors.
    pub services: Vec<ServiceState>,
    /// Analysis runs with the phases the script gave them.
    pub analysis_runs: Vec<AnalysisRunState>,
    /// Every analysis run ever started.
    pub runs: Vec<SimRun>,
    /// Experiments (phases set by the caller).
    pub experiments: Vec<ExperimentState>,
    /// The weights last written to the router.
    pub traffic: Option<SimTraffic>,
    /// Managed header and mirror routes currently installed, by name.
    pub managed_routes: Vec<String>,
    /// Seconds before a new pod becomes available.
    pub pod_ready_seconds: i64,
    /// Pod template hashes whose pods never become available (a broken release).
    pub broken_hashes: Vec<String>,
    /// Whether the router verifies weights (`Some(true)` after each write) or cannot.
    pub router_verifies: bool,
    pending: Vec<Pending>,
    next_revision: i64,
}

impl SimCluster {
    /// An empty cluster whose pods take `pod_ready_seconds` to become available.
    pub fn new(pod_ready_seconds: i64) -> Self {
        SimCluster {
            pod_ready_seconds,
            next_revision: 1,
            ..SimCluster::default()
        }
    }

    /// What a controller would observe, for a rollout whose template hashes to `hash`.
    pub fn observed<'a>(&'a self, pod_template_hash: &'a str) -> Observed<'a> {
        Observed {
            pod_template_hash,
            replica_sets: &self.replica_sets,
            analysis_runs: &self.analysis_runs,
            experiments: &self.experiments,
            step_plugins: &[],
            traffic_verified: if self.router_verifies && self.traffic.is_some() {
                Some(true)
            } else {
                None
            },
            services: &self.services,
            steps_hash: None,
        }
    }

    fn rs_mut(&mut self, hash: &str) -> Option<&mut ReplicaSetState> {
        self.replica_sets
            .iter_mut()
            .find(|r| r.pod_template_hash == hash)
    }

    /// Carries out the actions of one decision at time `now`.
    pub fn apply(&mut self, actions: &[Action], now: Timestamp) {
        for action in actions {
            match action {
                Action::CreateReplicaSet {
                    pod_template_hash,
                    replicas,
                } => {
                    if self.rs_mut(pod_template_hash).is_none() {
                        let revision = self.next_revision;
                        self.next_revision += 1;
                        self.replica_sets.push(ReplicaSetState {
                            pod_template_hash: pod_template_hash.clone(),
                            revision,
                            ..ReplicaSetState::default()
                        });
                    }
                    self.scale(pod_template_hash, *replicas, now);
                }
                Action::ScaleReplicaSet {
                    pod_template_hash,
                    replicas,
                } => self.scale(pod_template_hash, *replicas, now),
                Action::DeleteReplicaSet { pod_template_hash } => {
                    self.replica_sets
                        .retain(|rs| &rs.pod_template_hash != pod_template_hash);
                }
                Action::SetScaleDownDeadline {
                    pod_template_hash,
                    deadline,
                } => {
                    if let Some(rs) = self.rs_mut(pod_template_hash) {
                        rs.scale_down_deadline = *deadline;
                    }
                }
                Action::SetServiceSelector {
                    service,
                    pod_template_hash,
                } => match self.services.iter_mut().find(|s| &s.name == service) {
                    Some(s) => s.pod_template_hash.clone_from(pod_template_hash),
                    None => self.services.push(ServiceState {
                        name: service.clone(),
                        pod_template_hash: pod_template_hash.clone(),
                    }),
                },
                Action::SetTrafficWeight {
                    canary_weight,
                    stable_weight,
                    total,
                    ..
                } => {
                    self.traffic = Some(SimTraffic {
                        canary: *canary_weight,
                        stable: *stable_weight,
                        total: *total,
                    });
                }
                Action::SetHeaderRoute(r) => {
                    self.managed_routes.retain(|n| n != &r.name);
                    if !r.r#match.is_empty() {
                        self.managed_routes.push(r.name.clone());
                    }
                }
                Action::SetMirrorRoute(r) => {
                    self.managed_routes.retain(|n| n != &r.name);
                    if !r.r#match.is_empty() {
                        self.managed_routes.push(r.name.clone());
                    }
                }
                Action::RemoveManagedRoutes => self.managed_routes.clear(),
                Action::StartAnalysisRun {
                    name,
                    kind,
                    analysis,
                    canary_hash,
                    stable_hash,
                } if !self.analysis_runs.iter().any(|r| &r.name == name) => {
                    self.analysis_runs.push(AnalysisRunState {
                        name: name.clone(),
                        phase: AnalysisPhase::Running,
                        message: String::new(),
                    });
                    self.runs.push(SimRun {
                        name: name.clone(),
                        kind: *kind,
                        started_at: now,
                        terminated: false,
                        analysis: analysis.clone(),
                        canary_hash: canary_hash.clone(),
                        stable_hash: stable_hash.clone(),
                    });
                }
                Action::TerminateAnalysisRun { name } => {
                    if let Some(r) = self.runs.iter_mut().find(|r| &r.name == name) {
                        r.terminated = true;
                    }
                    if let Some(r) = self.analysis_runs.iter_mut().find(|r| &r.name == name)
                        && !r.phase.is_completed()
                    {
                        r.phase = AnalysisPhase::Successful;
                        r.message = "Run Terminated".to_string();
                    }
                }
                Action::StartExperiment { name, .. }
                    if !self.experiments.iter().any(|e| &e.name == name) =>
                {
                    self.experiments.push(ExperimentState {
                        name: name.clone(),
                        phase: AnalysisPhase::Running,
                        message: String::new(),
                    });
                }
                Action::TerminateExperiment { name } => {
                    if let Some(e) = self.experiments.iter_mut().find(|e| &e.name == name)
                        && !e.phase.is_completed()
                    {
                        e.phase = AnalysisPhase::Successful;
                    }
                }
                // Step plugins are not simulated; the machine waits for them.
                _ => {}
            }
        }
    }

    fn scale(&mut self, hash: &str, replicas: i32, now: Timestamp) {
        let ready_at = now.add_secs(self.pod_ready_seconds);
        let broken = self.broken_hashes.iter().any(|h| h == hash);
        let Some(rs) = self.rs_mut(hash) else { return };
        let replicas = replicas.max(0);
        let old = rs.spec_replicas;
        rs.spec_replicas = replicas;
        rs.replicas = replicas;
        if replicas > old {
            if !broken {
                self.pending.push(Pending {
                    hash: hash.to_string(),
                    available_at: ready_at,
                    count: replicas - old,
                });
            }
        } else {
            // Unavailable pods are removed first, then available ones.
            let mut to_remove = old - replicas;
            for p in self.pending.iter_mut().rev().filter(|p| p.hash == hash) {
                let n = p.count.min(to_remove);
                p.count -= n;
                to_remove -= n;
            }
            self.pending.retain(|p| p.count > 0);
            if let Some(rs) = self.rs_mut(hash) {
                rs.available_replicas = rs.available_replicas.min(replicas);
                rs.ready_replicas = rs.available_replicas;
            }
        }
    }

    /// Makes pods whose delay has passed available.
    pub fn advance(&mut self, now: Timestamp) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].available_at <= now {
                let p = self.pending.swap_remove(i);
                if let Some(rs) = self.rs_mut(&p.hash) {
                    rs.available_replicas = (rs.available_replicas + p.count).min(rs.spec_replicas);
                    rs.ready_replicas = rs.available_replicas;
                }
            } else {
                i += 1;
            }
        }
    }

    /// When the next pending pod becomes available.
    pub fn next_change(&self) -> Option<Timestamp> {
        self.pending.iter().map(|p| p.available_at).min()
    }

    /// Sets an analysis run's phase (what the analysis controller would do).
    pub fn set_run_phase(&mut self, name: &str, phase: AnalysisPhase, message: &str) {
        if let Some(r) = self.analysis_runs.iter_mut().find(|r| r.name == name) {
            r.phase = phase;
            r.message = message.to_string();
        }
    }

    /// The ReplicaSet with this hash.
    pub fn replica_set(&self, hash: &str) -> Option<&ReplicaSetState> {
        self.replica_sets
            .iter()
            .find(|r| r.pod_template_hash == hash)
    }

    /// The pod template hash a service selects, if the service exists.
    pub fn service_selector(&self, service: &str) -> Option<&str> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .map(|s| s.pod_template_hash.as_str())
    }
}

/// Decides the phase of running analysis runs: called for each run that is not
/// completed, with the time; returns the new phase and message, or `None` to leave it.
pub trait AnalysisScript {
    /// The verdict for `run` at `now`, if it has one.
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)>;
    /// The next time the script may change a verdict for `run`.
    fn next_check(&self, run: &SimRun, now: Timestamp) -> Option<Timestamp>;
}

/// Every run succeeds `after_seconds` after it starts.
#[derive(Debug, Clone, Copy)]
pub struct AlwaysSucceeds {
    /// Seconds a run takes.
    pub after_seconds: i64,
}

impl AnalysisScript for AlwaysSucceeds {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        (now >= run.started_at.add_secs(self.after_seconds))
            .then(|| (AnalysisPhase::Successful, String::new()))
    }

    fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
        Some(run.started_at.add_secs(self.after_seconds))
    }
}

/// One pass as recorded by the [`Harness`].
#[derive(Debug, Clone, PartialEq)]
pub struct PassRecord {
    /// Time of the pass.
    pub at: Timestamp,
    /// The actions it emitted.
    pub actions: Vec<Action>,
    /// The events it emitted.
    pub events: Vec<Event>,
    /// The status after it.
    pub status: RolloutStatus,
    /// Its wake-up request.
    pub requeue_at: Option<Timestamp>,
    /// Whether it changed the status.
    pub status_changed: bool,
}

/// A rollout, its persisted status, a simulated cluster and a virtual clock.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The rollout being driven.
    pub rollout: Rollout,
    /// The persisted status.
    pub status: RolloutStatus,
    /// The cluster.
    pub cluster: SimCluster,
    /// Virtual time.
    pub now: Timestamp,
    /// Hash of the rollout's current pod template.
    pub pod_template_hash: String,
    /// Last wake-up the machine asked for.
    pub requeue_at: Option<Timestamp>,
}

impl Harness {
    /// A harness at `now` for `rollout` whose current template hashes to `hash`.
    pub fn new(rollout: Rollout, hash: &str, cluster: SimCluster, now: Timestamp) -> Self {
        Harness {
            rollout,
            status: RolloutStatus::default(),
            cluster,
            now,
            pod_template_hash: hash.to_string(),
            requeue_at: None,
        }
    }

    /// One pass: observe, reconcile, execute, persist. Returns the decision's record.
    /// Blue-green rollouts go through [`bluegreen::reconcile`], all others through the
    /// canary [`reconcile`].
    pub fn pass(&mut self) -> PassRecord {
        self.cluster.advance(self.now);
        let observed = self.cluster.observed(&self.pod_template_hash);
        let decision: Decision<'_> = if self.rollout.spec.strategy.blue_green.is_some() {
            bluegreen::reconcile(&self.rollout, &self.status, &observed, self.now)
        } else {
            reconcile(&self.rollout, &self.status, &observed, self.now)
        };
        let changed = decision.status_changed();
        let Decision {
            status,
            actions,
            events,
            requeue_at,
        } = decision;
        let new_status = changed.then(|| status.into_owned());
        self.cluster.apply(&actions, self.now);
        if let Some(s) = new_status {
            self.status = s;
        }
        self.requeue_at = requeue_at;
        PassRecord {
            at: self.now,
            actions,
            events,
            status: self.status.clone(),
            requeue_at,
            status_changed: changed,
        }
    }

    /// Applies the script to running analysis runs; returns whether a phase changed.
    pub fn run_script(&mut self, script: &mut dyn AnalysisScript) -> bool {
        let mut changed = false;
        for run in self.cluster.runs.clone() {
            let done = self
                .cluster
                .analysis_runs
                .iter()
                .any(|r| r.name == run.name && r.phase.is_completed());
            if done || run.terminated {
                continue;
            }
            if let Some((phase, msg)) = script.verdict(&run, self.now) {
                self.cluster.set_run_phase(&run.name, phase, &msg);
                changed = true;
            }
        }
        changed
    }

    /// The next instant at which something can change: a pod becoming available, the
    /// machine's wake-up, or the script's next verdict.
    pub fn next_instant(&self, script: &dyn AnalysisScript) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        let mut consider = |t: Option<Timestamp>| {
            if let Some(t) = t.filter(|t| *t > self.now) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.cluster.next_change());
        consider(self.requeue_at);
        for run in &self.cluster.runs {
            let done = self
                .cluster
                .analysis_runs
                .iter()
                .any(|r| r.name == run.name && r.phase.is_completed());
            if !done && !run.terminated {
                consider(script.next_check(run, self.now));
            }
        }
        next
    }

    /// Runs passes until nothing more happens or `until` is reached, calling `on_pass`
    /// for every pass that did something. Returns the number of passes.
    pub fn run(
        &mut self,
        script: &mut dyn AnalysisScript,
        until: Timestamp,
        mut on_pass: impl FnMut(&PassRecord, &SimCluster),
    ) -> usize {
        let mut passes = 0;
        loop {
            // Settle: pass until a pass does nothing.
            for _ in 0..64 {
                self.run_script(script);
                let rec = self.pass();
                passes += 1;
                let quiet = rec.actions.is_empty() && rec.events.is_empty() && !rec.status_changed;
                if !quiet {
                    on_pass(&rec, &self.cluster);
                }
                if quiet && !self.run_script(script) {
                    break;
                }
            }
            match self.next_instant(script) {
                Some(t) if t <= until => self.now = t,
                _ => return passes,
            }
        }
    }
}
