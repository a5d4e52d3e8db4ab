//! Scenario and property tests of the canary machine, driven through the simulator.

use crate::canary::{Action, AnalysisRunKind};
use crate::sim::{AlwaysSucceeds, AnalysisScript, Harness, SimCluster, SimRun};
use crate::spec::Rollout;
use crate::status::{AnalysisPhase, PauseReason, RolloutPhase};
use crate::time::Timestamp;

const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

pub(crate) fn rollout(yaml_strategy: &str, replicas: i32) -> Rollout {
    let text = format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: web:1
  strategy:
{yaml_strategy}"
    );
    Rollout::from_yaml(&text).expect("test rollout parses")
}

pub(crate) const QUICKSTART_STEPS: &str = "    canary:
      steps:
      - setWeight: 10
      - pause: {duration: 3m}
      - setWeight: 50
      - analysis:
          templates:
          - templateName: success-rate
      - setWeight: 100
";

/// Deploys revision `v1` to completion, then switches the template hash to `v2`.
pub(crate) fn deployed(ro: Rollout, cluster: SimCluster) -> Harness {
    let mut h = Harness::new(ro, "v1", cluster, T0);
    h.run(
        &mut AlwaysSucceeds { after_seconds: 60 },
        T0.add_secs(3600),
        |_, _| {},
    );
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(
        h.status.phase,
        Some(RolloutPhase::Healthy),
        "{:?}",
        h.status
    );
    h.pod_template_hash = "v2".into();
    h
}

struct Fails;
impl AnalysisScript for Fails {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        (now >= run.started_at.add_secs(60)).then(|| {
            (
                AnalysisPhase::Failed,
                "Metric \"success-rate\" assessed Failed".into(),
            )
        })
    }
    fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
        Some(run.started_at.add_secs(60))
    }
}

#[test]
fn healthy_canary_is_promoted() {
    let mut h = deployed(rollout(QUICKSTART_STEPS, 10), SimCluster::new(10));
    let mut log = Vec::new();
    h.run(
        &mut AlwaysSucceeds { after_seconds: 60 },
        T0.add_secs(7200),
        |rec, c| {
            let canary = c.replica_set("v2").map_or(0, |r| r.spec_replicas);
            let stable = c.replica_set("v1").map_or(0, |r| r.spec_replicas);
            log.push((
                rec.at.millis_since(T0) / 1000,
                rec.status.current_step_index,
                canary,
                stable,
            ));
        },
    );
    println!("{log:?}");
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 0);
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 10);
    // The 10% step put 1 canary pod next to the stable ones.
    assert!(
        log.iter().any(|&(_, i, c, _)| i == Some(1) && c == 1),
        "{log:?}"
    );
    // The pause lasted three minutes.
    let entered = log.iter().find(|e| e.1 == Some(1)).unwrap().0;
    let left = log.iter().find(|e| e.1 == Some(2)).unwrap().0;
    assert_eq!(left - entered, 180, "{log:?}");
}

#[test]
fn failed_analysis_aborts_back_to_stable() {
    let mut h = deployed(rollout(QUICKSTART_STEPS, 10), SimCluster::new(10));
    h.run(&mut Fails, T0.add_secs(7200), |_, _| {});
    assert!(h.status.abort);
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert!(
        h.status
            .message
            .starts_with("RolloutAborted: Rollout aborted update to revision 2"),
        "{}",
        h.status.message
    );
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 10);
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 0);
    let started = h
        .cluster
        .runs
        .iter()
        .filter(|r| matches!(r.kind, AnalysisRunKind::Step { index: 3 }))
        .count();
    assert_eq!(started, 1);
    let _ = (Action::RemoveManagedRoutes, PauseReason::CanaryPauseStep);
}

const ISTIO: &str = "    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        managedRoutes:
        - name: header-route
        istio:
          virtualService:
            name: web-vs
            routes: [primary]
      steps:
      - setWeight: 20
      - setHeaderRoute:
          name: header-route
          match:
          - headerName: x-canary
            headerValue: {exact: 'yes'}
      - pause: {}
      - setWeight: 60
      - pause: {duration: 30s}
";

fn run_quiet(h: &mut Harness, secs: i64) -> Vec<crate::sim::PassRecord> {
    let mut recs = Vec::new();
    let until = h.now.add_secs(secs);
    h.run(&mut AlwaysSucceeds { after_seconds: 60 }, until, |r, _| {
        recs.push(r.clone())
    });
    recs
}

fn svc(h: &Harness, name: &str) -> String {
    h.cluster
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .pod_template_hash
        .clone()
}

#[test]
fn traffic_routed_canary_with_header_route_and_manual_promotion() {
    let mut h = deployed(rollout(ISTIO, 5), SimCluster::new(5));
    let recs = run_quiet(&mut h, 600);
    // Parked at the indefinite pause (step index 2) with 20% of traffic and a header route.
    assert_eq!(h.status.current_step_index, Some(2));
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.status.message, "CanaryPauseStep");
    assert_eq!(h.cluster.traffic.unwrap().canary, 20);
    assert_eq!(h.cluster.managed_routes, vec!["header-route".to_string()]);
    // ceil(20% of 5) = 1 canary pod; the stable keeps all 5 (no surge with traffic routing).
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 1);
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 5);
    assert_eq!(svc(&h, "web-canary"), "v2");
    assert_eq!(svc(&h, "web-stable"), "v1");
    assert!(recs.iter().flat_map(|r| &r.actions).all(
        |a| !matches!(a, Action::SetTrafficWeight { canary_weight, .. } if *canary_weight > 20)
    ));

    // Nothing happens while paused.
    assert!(run_quiet(&mut h, 3600).is_empty());

    // kubectl argo rollouts promote
    let patch = crate::command::promote(&h.rollout, &h.status);
    assert_eq!(
        patch.status_merge_patch().unwrap(),
        serde_json::json!({"status": {"pauseConditions": null}})
    );
    patch.apply(&mut h.rollout, &mut h.status);
    let recs = run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert!(h.cluster.managed_routes.is_empty());
    assert_eq!(
        h.cluster.traffic.unwrap().canary,
        0,
        "weight returns to 0 once both services select v2"
    );
    assert_eq!(svc(&h, "web-stable"), "v2");
    // The old stable was kept for scaleDownDelaySeconds (30 s) after the switch.
    let promoted_at = recs
        .iter()
        .find(|r| r.events.iter().any(|e| e.reason == "RolloutCompleted"))
        .unwrap()
        .at;
    let scaled_down_at = recs
        .iter()
        .find(|r| r.actions.iter().any(|a| matches!(a, Action::ScaleReplicaSet { pod_template_hash, replicas: 0 } if pod_template_hash == "v1")))
        .unwrap()
        .at;
    assert_eq!(scaled_down_at.millis_since(promoted_at), 30_000);
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 0);
}

#[test]
fn abort_with_traffic_routing_keeps_canary_for_the_delay_then_retry_restarts() {
    let mut h = deployed(rollout(ISTIO, 5), SimCluster::new(5));
    run_quiet(&mut h, 600);
    assert_eq!(h.status.current_step_index, Some(2));
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    let recs = run_quiet(&mut h, 600);
    assert!(h.status.abort);
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(h.status.current_step_index, Some(0));
    assert_eq!(h.cluster.traffic.unwrap().canary, 0);
    assert!(h.cluster.managed_routes.is_empty());
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 0);
    let aborted_at = recs[0].at;
    let scaled = recs
        .iter()
        .find(|r| r.actions.iter().any(|a| matches!(a, Action::ScaleReplicaSet { pod_template_hash, replicas: 0 } if pod_template_hash == "v2")))
        .unwrap()
        .at;
    assert_eq!(
        scaled.millis_since(aborted_at),
        30_000,
        "abortScaleDownDelaySeconds defaults to 30"
    );
    let svc = h
        .cluster
        .services
        .iter()
        .find(|s| s.name == "web-canary")
        .unwrap();
    assert_eq!(
        svc.pod_template_hash, "v1",
        "the canary service points back at stable"
    );

    crate::command::retry(&h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 600);
    assert!(!h.status.abort);
    assert_eq!(
        h.status.current_step_index,
        Some(2),
        "steps start again from 0 and stop at the pause"
    );
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.cluster.traffic.unwrap().canary, 20);
}

#[test]
fn promote_full_skips_the_remaining_steps() {
    let mut h = deployed(rollout(ISTIO, 5), SimCluster::new(5));
    run_quiet(&mut h, 600);
    let patch = crate::command::promote_full(&h.rollout, &h.status);
    assert_eq!(
        patch.status_merge_patch().unwrap(),
        serde_json::json!({"status": {"promoteFull": true}})
    );
    patch.apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v2");
    assert!(!h.status.promote_full);
    assert_eq!(h.status.current_step_index, Some(5));
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn new_template_mid_rollout_restarts_steps_and_retires_the_intermediate_set() {
    let mut h = deployed(rollout(ISTIO, 5), SimCluster::new(5));
    run_quiet(&mut h, 600);
    assert_eq!(h.status.current_step_index, Some(2));
    h.pod_template_hash = "v3".into();
    run_quiet(&mut h, 600);
    assert_eq!(h.status.current_pod_hash, "v3");
    assert_eq!(h.status.current_step_index, Some(2));
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(
        h.cluster.replica_set("v2").unwrap().spec_replicas,
        0,
        "no traffic targets v2"
    );
    assert_eq!(h.cluster.replica_set("v3").unwrap().spec_replicas, 1);
    // Back to the stable template: steps are skipped.
    h.pod_template_hash = "v1".into();
    run_quiet(&mut h, 600);
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(h.cluster.replica_set("v3").unwrap().spec_replicas, 0);
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 5);
}

#[test]
fn basic_canary_new_template_mid_rollout_drains_the_intermediate_set() {
    let mut h = deployed(rollout(QUICKSTART_STEPS, 10), SimCluster::new(10));
    run_quiet(&mut h, 60);
    assert_eq!(h.status.current_step_index, Some(1));
    h.pod_template_hash = "v3".into();
    run_quiet(&mut h, 150);
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 0);
    assert_eq!(h.status.current_step_index, Some(1));
    assert_eq!(h.cluster.replica_set("v3").unwrap().spec_replicas, 1);
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 9);
}

fn with_deadline(extra: &str) -> Rollout {
    let mut ro = rollout(QUICKSTART_STEPS, 4);
    ro.spec.progress_deadline_seconds = Some(120);
    ro.spec.progress_deadline_abort = extra == "abort";
    ro
}

#[test]
fn progress_deadline_marks_the_rollout_degraded() {
    let mut cluster = SimCluster::new(10);
    cluster.broken_hashes.push("v2".into());
    let mut h = deployed(with_deadline(""), cluster);
    run_quiet(&mut h, 3600);
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert!(
        h.status.message.starts_with(
            "ProgressDeadlineExceeded: ReplicaSet \"web-v2\" has timed out progressing."
        ),
        "{}",
        h.status.message
    );
    assert!(
        !h.status.abort,
        "without progressDeadlineAbort the update stays in place"
    );
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 1);
}

#[test]
fn progress_deadline_abort_rolls_back() {
    let mut cluster = SimCluster::new(10);
    cluster.broken_hashes.push("v2".into());
    let mut h = deployed(with_deadline("abort"), cluster);
    run_quiet(&mut h, 3600);
    assert!(h.status.abort);
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 0);
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 4);
}

struct Inconclusive;
impl AnalysisScript for Inconclusive {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        (now >= run.started_at.add_secs(60)).then(|| (AnalysisPhase::Inconclusive, String::new()))
    }
    fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
        Some(run.started_at.add_secs(60))
    }
}

#[test]
fn inconclusive_analysis_pauses_and_promote_moves_past_it() {
    let mut h = deployed(rollout(QUICKSTART_STEPS, 10), SimCluster::new(10));
    let until = h.now.add_secs(3600);
    h.run(&mut Inconclusive, until, |_, _| {});
    assert_eq!(h.status.current_step_index, Some(3));
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.status.message, "InconclusiveAnalysisRun");
    let patch = crate::command::promote(&h.rollout, &h.status);
    assert_eq!(patch.current_step_index, Some(4));
    patch.apply(&mut h.rollout, &mut h.status);
    let until = h.now.add_secs(3600);
    h.run(&mut Inconclusive, until, |_, _| {});
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn background_analysis_failure_aborts() {
    let strategy = "    canary:
      analysis:
        startingStep: 1
        templates:
        - templateName: error-rate
      steps:
      - setWeight: 20
      - pause: {duration: 10m}
      - setWeight: 80
";
    let mut h = deployed(rollout(strategy, 5), SimCluster::new(5));
    let until = h.now.add_secs(3600);
    h.run(&mut Fails, until, |_, _| {});
    assert!(h.status.abort);
    assert!(
        h.status
            .message
            .contains("Background analysis phase failed"),
        "{}",
        h.status.message
    );
    let bg: Vec<_> = h
        .cluster
        .runs
        .iter()
        .filter(|r| r.kind == AnalysisRunKind::Background)
        .collect();
    assert_eq!(bg.len(), 1);
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 0);
}

#[test]
fn manual_pause_holds_everything() {
    let mut h = deployed(rollout(QUICKSTART_STEPS, 10), SimCluster::new(10));
    crate::command::pause(&h.rollout).apply(&mut h.rollout, &mut h.status);
    assert!(run_quiet(&mut h, 3600).iter().all(|r| r.actions.is_empty()));
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.status.message, "manually paused");
    crate::command::resume(&h.rollout).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 7200);
    assert_eq!(h.status.stable_rs, "v2");
}

#[test]
fn noop_pass_borrows_the_status() {
    let mut h = deployed(rollout(QUICKSTART_STEPS, 10), SimCluster::new(10));
    run_quiet(&mut h, 60);
    let observed = h.cluster.observed(&h.pod_template_hash);
    let d = crate::canary::reconcile(&h.rollout, &h.status, &observed, h.now);
    assert!(d.is_noop(), "{d:?}");
}

mod properties {
    use super::*;
    use crate::canary::Action;
    use crate::sim::PassRecord;
    use crate::status::RolloutStatus;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum StepSpec {
        Weight(i32),
        CanaryScale(i32),
        Pause(Option<u16>),
        Analysis,
    }

    #[derive(Debug, Clone, Copy)]
    enum Verdict {
        Pass,
        Fail,
        Inconclusive,
    }

    #[derive(Debug, Clone, Copy)]
    enum Cmd {
        Abort,
        Promote,
        PromoteFull,
        Retry,
    }

    #[derive(Debug, Clone)]
    struct Scenario {
        replicas: i32,
        traffic_routing: bool,
        dynamic: bool,
        surge: Option<String>,
        unavailable: Option<String>,
        steps: Vec<StepSpec>,
        ready_secs: i64,
        broken: bool,
        verdicts: Vec<Verdict>,
        commands: Vec<(i64, Cmd)>,
        abort_delay: Option<i32>,
        min_pods: Option<i32>,
    }

    fn int_or_percent() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            (0..4i32).prop_map(|n| Some(n.to_string())),
            (0..60i32).prop_map(|p| Some(format!("'{p}%'"))),
        ]
    }

    fn scenario() -> impl Strategy<Value = Scenario> {
        let step = prop_oneof![
            3 => (0..=100i32).prop_map(StepSpec::Weight),
            1 => (0..6i32).prop_map(StepSpec::CanaryScale),
            1 => prop::option::of(0..400u16).prop_map(StepSpec::Pause),
            1 => Just(StepSpec::Analysis),
        ];
        let verdict = prop_oneof![
            4 => Just(Verdict::Pass),
            1 => Just(Verdict::Fail),
            1 => Just(Verdict::Inconclusive),
        ];
        let cmd = prop_oneof![
            Just(Cmd::Abort),
            Just(Cmd::Promote),
            Just(Cmd::PromoteFull),
            Just(Cmd::Retry)
        ];
        (
            1..=12i32,
            any::<bool>(),
            any::<bool>(),
            int_or_percent(),
            int_or_percent(),
            prop::collection::vec(step, 1..7),
            1..40i64,
            prop::bool::weighted(0.15),
            prop::collection::vec(verdict, 8),
            prop::collection::vec((0..2000i64, cmd), 0..4),
            (
                prop::option::of(prop_oneof![Just(0), Just(10)]),
                prop::option::of(1..3i32),
            ),
        )
            .prop_map(
                |(
                    replicas,
                    traffic_routing,
                    dynamic,
                    surge,
                    unavailable,
                    steps,
                    ready_secs,
                    broken,
                    verdicts,
                    commands,
                    (abort_delay, min_pods),
                )| Scenario {
                    replicas,
                    traffic_routing,
                    dynamic: traffic_routing && dynamic,
                    surge,
                    unavailable,
                    steps,
                    ready_secs,
                    broken,
                    verdicts,
                    commands,
                    abort_delay: abort_delay.filter(|_| traffic_routing),
                    min_pods: min_pods.filter(|_| traffic_routing),
                },
            )
    }

    fn build(sc: &Scenario) -> Rollout {
        let mut y = String::from("    canary:\n");
        if let Some(s) = &sc.surge {
            y += &format!("      maxSurge: {s}\n");
        }
        if let Some(u) = &sc.unavailable {
            y += &format!("      maxUnavailable: {u}\n");
        }
        if sc.traffic_routing {
            y += "      canaryService: c\n      stableService: s\n      trafficRouting:\n        smi: {}\n";
            if sc.dynamic {
                y += "      dynamicStableScale: true\n";
            }
            if let Some(d) = sc.abort_delay {
                y += &format!("      abortScaleDownDelaySeconds: {d}\n");
            }
            if let Some(m) = sc.min_pods {
                y += &format!("      minPodsPerReplicaSet: {m}\n");
            }
        }
        y += "      steps:\n";
        for s in &sc.steps {
            match s {
                StepSpec::Weight(w) => y += &format!("      - setWeight: {w}\n"),
                // setCanaryScale needs traffic routing; without it the step is skipped.
                StepSpec::CanaryScale(n) if sc.traffic_routing => {
                    y += &format!("      - setCanaryScale: {{replicas: {n}}}\n");
                }
                StepSpec::CanaryScale(_) => {}
                StepSpec::Pause(None) => y += "      - pause: {}\n",
                StepSpec::Pause(Some(d)) => y += &format!("      - pause: {{duration: {d}}}\n"),
                StepSpec::Analysis => y += "      - analysis: {templates: [{templateName: t}]}\n",
            }
        }
        let mut ro = rollout(&y, sc.replicas);
        ro.spec.progress_deadline_seconds = Some(900);
        ro
    }

    struct Scripted(Vec<Verdict>);
    impl AnalysisScript for Scripted {
        fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
            if now < run.started_at.add_secs(45) {
                return None;
            }
            let i = (run.started_at.as_secs() as usize) % self.0.len();
            Some(match self.0[i] {
                Verdict::Pass => (AnalysisPhase::Successful, String::new()),
                Verdict::Fail => (AnalysisPhase::Failed, "metric failed".into()),
                Verdict::Inconclusive => (AnalysisPhase::Inconclusive, String::new()),
            })
        }
        fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
            Some(run.started_at.add_secs(45))
        }
    }

    /// How to interfere with persistence during a run.
    #[derive(Clone, Copy)]
    enum Persist {
        Normal,
        /// Lose the status write of pass number N (crash after executing its actions).
        DropWriteAt(usize),
        /// Write every status through JSON and read it back.
        JsonRoundTrip,
    }

    struct Run {
        records: Vec<PassRecord>,
        harness: Harness,
    }

    fn apply_cmd(h: &mut Harness, cmd: Cmd) {
        let patch = match cmd {
            Cmd::Abort => crate::command::abort(&h.status),
            Cmd::Promote => crate::command::promote(&h.rollout, &h.status),
            Cmd::PromoteFull => crate::command::promote_full(&h.rollout, &h.status),
            Cmd::Retry => crate::command::retry(&h.status),
        };
        patch.apply(&mut h.rollout, &mut h.status);
    }

    fn drive(
        sc: &Scenario,
        persist: Persist,
        mut check: impl FnMut(&Harness, &SimCluster, &PassRecord),
    ) -> Run {
        let mut cluster = SimCluster::new(sc.ready_secs);
        if sc.broken {
            cluster.broken_hashes.push("v2".into());
        }
        let mut h = deployed(build(sc), cluster);
        let start = h.now;
        let until = start.add_secs(6 * 3600);
        let mut script = Scripted(sc.verdicts.clone());
        let mut cmds: Vec<(Timestamp, Cmd)> = sc
            .commands
            .iter()
            .map(|(t, c)| (start.add_secs(*t), *c))
            .collect();
        cmds.sort_by_key(|c| c.0);
        let mut records = Vec::new();
        let mut n = 0usize;
        loop {
            while cmds.first().is_some_and(|c| c.0 <= h.now) {
                let (_, c) = cmds.remove(0);
                apply_cmd(&mut h, c);
            }
            for _ in 0..64 {
                h.run_script(&mut script);
                let before = h.cluster.clone();
                let saved = h.status.clone();
                let rec = h.pass();
                match persist {
                    Persist::DropWriteAt(k) if k == n => h.status = saved,
                    Persist::JsonRoundTrip => {
                        let json = serde_json::to_string(&h.status).unwrap();
                        h.status = serde_json::from_str::<RolloutStatus>(&json).unwrap();
                    }
                    _ => {}
                }
                n += 1;
                check(&h, &before, &rec);
                let quiet = rec.actions.is_empty() && rec.events.is_empty() && !rec.status_changed;
                records.push(rec);
                if quiet && !h.run_script(&mut script) {
                    break;
                }
            }
            let next = [h.next_instant(&script), cmds.first().map(|c| c.0)]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => h.now = t.max(h.now),
                _ => break,
            }
        }
        Run {
            records,
            harness: h,
        }
    }

    fn resolve(v: &Option<String>, total: i32, up: bool) -> i32 {
        let ip = match v {
            None => crate::IntOrPercent::percent(25),
            Some(s) if s.starts_with('\'') => {
                crate::IntOrPercent::Str(s.trim_matches('\'').to_string())
            }
            Some(s) => crate::IntOrPercent::Int(s.parse().unwrap()),
        };
        ip.resolve(total, up).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 160, .. ProptestConfig::default() })]

        /// Weights stay within 0..=max and add up; basic canaries respect maxSurge and
        /// never scale available pods below replicas - maxUnavailable.
        #[test]
        fn invariants_hold_at_every_decision(sc in scenario()) {
            let r = sc.replicas;
            let surge = resolve(&sc.surge, r, true);
            let mut unavail = resolve(&sc.unavailable, r, false);
            if surge == 0 && unavail == 0 { unavail = 1; }
            let unavail = unavail.min(r);
            let mut failures = Vec::new();
            drive(&sc, Persist::Normal, |h, before, rec| {
                for a in &rec.actions {
                    if let Action::SetTrafficWeight { canary_weight, stable_weight, total, .. } = a
                        && (!(0..=*total).contains(canary_weight) || canary_weight + stable_weight != *total) {
                            failures.push(format!("bad weights {a:?}"));
                        }
                }
                if let Some(w) = &rec.status.canary.weights
                    && (w.canary.weight < 0 || w.canary.weight + w.stable.weight != 100) {
                        failures.push(format!("bad status weights {w:?}"));
                    }
                let scales_to_zero = sc.steps.iter().any(|s| matches!(s, StepSpec::CanaryScale(0)));
                if sc.traffic_routing && !scales_to_zero {
                    // Traffic only reaches a canary that has available pods (unless a
                    // setCanaryScale of 0 pods says otherwise).
                    let canary_weight = h.cluster.traffic.map_or(0, |t| t.canary);
                    let canary_available = h.cluster.replica_set("v2").map_or(0, |rs| rs.available_replicas);
                    if canary_weight > 0 && canary_available == 0 && rec.status.stable_rs != "v2" {
                        failures.push(format!("weight {canary_weight} on a canary without available pods at {:?}", rec.actions));
                    }
                }
                if !sc.traffic_routing {
                    let total: i32 = h.cluster.replica_sets.iter().map(|rs| rs.spec_replicas).sum();
                    let before_total: i32 = before.replica_sets.iter().map(|rs| rs.spec_replicas).sum();
                    if total > (r + surge).max(before_total) {
                        failures.push(format!("surge exceeded: {total} > {r}+{surge} at {:?}", rec.actions));
                    }
                    let avail = |c: &SimCluster| -> i32 { c.replica_sets.iter().map(|rs| rs.available_replicas.min(rs.spec_replicas)).sum() };
                    let before_avail: i32 = before.replica_sets.iter().map(|rs| rs.available_replicas).sum();
                    let after = avail(&h.cluster);
                    if after < before_avail.min(r - unavail) {
                        failures.push(format!("availability {before_avail} -> {after} below {r}-{unavail} at {:?}", rec.actions));
                    }
                }
            });
            prop_assert!(failures.is_empty(), "{:?}", failures);
        }

        /// An abort always ends with all traffic and all pods back on the stable set. (The
        /// abort comes after the controller saw the new template: an abort set before
        /// that is cleared by the update, as in Argo.)
        #[test]
        fn abort_converges_to_stable(mut sc in scenario(), at in 1..900i64) {
            sc.commands = vec![(at, Cmd::Abort)];
            sc.verdicts = vec![Verdict::Pass];
            let run = drive(&sc, Persist::Normal, |_, _, _| {});
            let h = &run.harness;
            if h.status.stable_rs == "v2" {
                // The update finished before the abort arrived: nothing to abort.
                prop_assert!(!h.status.abort);
                return Ok(());
            }
            prop_assert!(h.status.abort);
            prop_assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
            let stable = h.cluster.replica_set("v1").unwrap();
            prop_assert_eq!(stable.spec_replicas, sc.replicas);
            prop_assert_eq!(stable.available_replicas, sc.replicas);
            // `abortScaleDownDelaySeconds: 0` keeps a setCanaryScale-sized canary (Argo:
            // "never scale down"); every other abort removes it.
            let keeps_canary = sc.abort_delay == Some(0)
                && sc.steps.iter().any(|s| matches!(s, StepSpec::CanaryScale(_)));
            if !keeps_canary {
                prop_assert_eq!(h.cluster.replica_set("v2").map_or(0, |rs| rs.spec_replicas), 0);
            }
            if sc.traffic_routing {
                prop_assert_eq!(h.cluster.traffic.map_or(0, |t| t.canary), 0);
            }
        }

        /// Liveness: a healthy release with passing analysis and no indefinite pause is
        /// always promoted.
        #[test]
        fn healthy_release_is_always_promoted(mut sc in scenario()) {
            sc.commands.clear();
            sc.broken = false;
            sc.verdicts = vec![Verdict::Pass];
            for s in &mut sc.steps {
                if let StepSpec::Pause(None) = s {
                    *s = StepSpec::Pause(Some(30));
                }
            }
            let run = drive(&sc, Persist::Normal, |_, _, _| {});
            let h = &run.harness;
            prop_assert_eq!(&h.status.stable_rs, "v2", "{:?}", h.status);
            prop_assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
            prop_assert_eq!(h.cluster.replica_set("v2").map(|rs| rs.available_replicas), Some(sc.replicas));
            prop_assert_eq!(h.cluster.replica_set("v1").map(|rs| rs.spec_replicas), Some(0));
        }

        /// Crash safety: losing any one status write (after its actions ran) changes
        /// nothing about where the rollout ends, and a status that goes through JSON
        /// at every pass gives exactly the decisions of an uninterrupted run.
        #[test]
        fn replay_from_any_prefix(sc in scenario(), crash in 0..200usize) {
            let clean = drive(&sc, Persist::Normal, |_, _, _| {});
            let json = drive(&sc, Persist::JsonRoundTrip, |_, _, _| {});
            prop_assert_eq!(&clean.records, &json.records);
            let crashed = drive(&sc, Persist::DropWriteAt(crash), |_, _, _| {});
            let (a, b) = (&clean.harness, &crashed.harness);
            prop_assert_eq!(&a.status.stable_rs, &b.status.stable_rs);
            prop_assert_eq!(a.status.abort, b.status.abort);
            prop_assert_eq!(a.status.phase, b.status.phase);
            prop_assert_eq!(&a.status.message, &b.status.message);
            prop_assert_eq!(a.status.current_step_index, b.status.current_step_index);
            let specs = |h: &Harness| h.cluster.replica_sets.iter().map(|rs| (rs.pod_template_hash.clone(), rs.spec_replicas)).collect::<Vec<_>>();
            prop_assert_eq!(specs(a), specs(b));
            prop_assert_eq!(a.cluster.traffic, b.cluster.traffic);
        }
    }
}

#[test]
fn combined_step_scales_routes_and_pauses_together() {
    let strategy = "    canary:
      canaryService: c
      stableService: s
      trafficRouting:
        managedRoutes: [{name: set-header}]
        apisix:
          route: {name: r, rules: [r]}
      steps:
      - pause: {duration: 15}
        setCanaryScale: {replicas: 2}
        setHeaderRoute:
          name: set-header
          match: [{headerName: trace, headerValue: {exact: debug}}]
      - setWeight: 50
";
    let mut h = deployed(rollout(strategy, 4), SimCluster::new(5));
    let recs = run_quiet(&mut h, 12);
    assert_eq!(h.status.current_step_index, Some(0), "paused for 15 s");
    assert_eq!(
        h.cluster.replica_set("v2").unwrap().spec_replicas,
        2,
        "setCanaryScale applies during the pause"
    );
    assert_eq!(h.cluster.managed_routes, vec!["set-header".to_string()]);
    assert_eq!(
        h.cluster.traffic.map_or(0, |t| t.canary),
        0,
        "no weight before the first setWeight"
    );
    assert!(
        recs.iter()
            .any(|r| r.events.iter().any(|e| e.reason == "RolloutPaused"))
    );
    run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v2");
}

#[test]
fn abort_with_dynamic_stable_scale_and_min_pods_ends() {
    // Argo's dynamic step-down never reaches weight 0 here: minPodsPerReplicaSet keeps
    // two canary pods available, and the walk keeps choosing setWeight 1.
    let strategy = "    canary:
      canaryService: c
      stableService: s
      trafficRouting:
        smi: {}
      dynamicStableScale: true
      minPodsPerReplicaSet: 2
      steps:
      - setWeight: 1
      - pause: {}
";
    let mut h = deployed(rollout(strategy, 2), SimCluster::new(1));
    run_quiet(&mut h, 30);
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 2);
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 600);
    assert_eq!(h.cluster.traffic.unwrap().canary, 0);
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 0);
    assert_eq!(h.cluster.replica_set("v1").unwrap().available_replicas, 2);
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
}

const EXPERIMENT: &str = "    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        smi: {}
      steps:
      - setWeight: 20
      - experiment:
          duration: 10m
          templates:
          - {name: baseline, specRef: stable, replicas: 1, weight: 5}
          - {name: canary, specRef: canary, replicas: 1, weight: 5}
          analyses:
          - {name: judge, templateName: mann-whitney}
      - setWeight: 50
";

fn experiment_phase(h: &mut Harness, phase: AnalysisPhase) {
    for e in &mut h.cluster.experiments {
        e.phase = phase;
    }
}

#[test]
fn experiment_step_routes_its_templates_and_completes_on_success() {
    let mut h = deployed(rollout(EXPERIMENT, 5), SimCluster::new(5));
    run_quiet(&mut h, 120);
    assert_eq!(h.status.current_step_index, Some(1));
    assert_eq!(h.cluster.experiments.len(), 1, "one experiment started");
    let name = h.status.canary.current_experiment.clone();
    assert!(name.starts_with("web-v2-1-"), "{name}");
    // The simulated experiment is Running: its weighted templates get 5% each.
    let recs = run_quiet(&mut h, 5);
    let _ = recs;
    let w = h.status.canary.weights.clone().unwrap();
    assert_eq!((w.canary.weight, w.stable.weight), (20, 70));
    assert_eq!(w.additional.len(), 2);
    assert_eq!(w.additional[0].service_name, format!("{name}-baseline"));
    assert_eq!(w.additional[0].pod_template_hash, "v1");
    assert_eq!(w.additional[1].pod_template_hash, "v2");
    experiment_phase(&mut h, AnalysisPhase::Successful);
    run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v2");
    assert!(
        h.status
            .canary
            .weights
            .as_ref()
            .unwrap()
            .additional
            .is_empty()
    );
}

#[test]
fn experiment_failure_aborts_and_inconclusive_pauses() {
    let mut h = deployed(rollout(EXPERIMENT, 5), SimCluster::new(5));
    run_quiet(&mut h, 120);
    experiment_phase(&mut h, AnalysisPhase::Failed);
    run_quiet(&mut h, 600);
    assert!(h.status.abort);
    assert!(
        h.status.message.contains("Experiment '"),
        "{}",
        h.status.message
    );
    assert_eq!(h.cluster.traffic.unwrap().canary, 0);

    let mut h = deployed(rollout(EXPERIMENT, 5), SimCluster::new(5));
    run_quiet(&mut h, 120);
    experiment_phase(&mut h, AnalysisPhase::Inconclusive);
    run_quiet(&mut h, 600);
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.status.message, "InconclusiveExperiment");
    // Promote (a second later) clears the pause; as in Argo the step then runs a fresh
    // experiment.
    h.now = h.now.add_secs(1);
    crate::command::promote(&h.rollout, &h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 30);
    assert_eq!(h.cluster.experiments.len(), 2);
    assert_eq!(h.status.phase, Some(RolloutPhase::Progressing));
    h.cluster.experiments[1].phase = AnalysisPhase::Successful;
    run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v2");
}

/// The canary machine and the experiment machine together: the step's experiment runs
/// its baseline and canary templates for its duration, its analysis judges them, and
/// the verdict decides the step.
fn run_with_experiments(h: &mut Harness, verdict: AnalysisPhase, until_secs: i64) {
    use crate::experiment::{
        self, ExperimentAction, ExperimentInput, ExperimentObserved, ExperimentStatus,
        TemplateSetState,
    };
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Exp {
        status: ExperimentStatus,
        sets: Vec<TemplateSetState>,
        runs: Vec<crate::canary::AnalysisRunState>,
        started: BTreeMap<String, Timestamp>,
    }
    let mut exps: BTreeMap<String, Exp> = BTreeMap::new();
    let until = h.now.add_secs(until_secs);
    let step = match &h.rollout.spec.strategy.canary.as_ref().unwrap().steps[1] {
        crate::spec::CanaryStep::Experiment(e) => e.clone(),
        other => panic!("step 1 is {other:?}"),
    };
    while h.now <= until {
        let rec = h.pass();
        let busy = !rec.actions.is_empty() || !rec.events.is_empty() || rec.status_changed;
        let mut next = if busy {
            h.now
        } else {
            h.requeue_at.unwrap_or(until.add_secs(1))
        };
        for cluster_exp in &mut h.cluster.experiments {
            let e = exps.entry(cluster_exp.name.clone()).or_default();
            // The analysis of the experiment answers 60 s after it started.
            for run in &mut e.runs {
                let started = e.started[&run.name];
                if !run.phase.is_completed() && h.now >= started.add_secs(60) {
                    run.phase = verdict;
                } else if !run.phase.is_completed() {
                    next = next.min(started.add_secs(60));
                }
            }
            let input = ExperimentInput {
                name: &cluster_exp.name,
                step: &step,
                canary_hash: "v2",
                stable_hash: "v1",
                terminate: false,
            };
            let observed = ExperimentObserved {
                template_sets: &e.sets,
                analysis_runs: &e.runs,
            };
            let d = experiment::reconcile(&input, &e.status, &observed, h.now);
            let phase = d.phase();
            if let Some(t) = d.requeue_at {
                next = next.min(t);
            }
            let actions = d.actions;
            e.status = d.status.into_owned();
            for a in actions {
                match a {
                    ExperimentAction::CreateTemplateSet {
                        template, replicas, ..
                    } => {
                        // Template pods are available at once in this test.
                        e.sets.push(TemplateSetState {
                            template,
                            spec_replicas: replicas,
                            available_replicas: replicas,
                        });
                        next = h.now;
                    }
                    ExperimentAction::ScaleTemplateSet { template, replicas } => {
                        if let Some(s) = e.sets.iter_mut().find(|s| s.template == template) {
                            s.spec_replicas = replicas;
                            s.available_replicas = replicas;
                        }
                    }
                    ExperimentAction::StartAnalysisRun { name, .. } => {
                        e.started.insert(name.clone(), h.now);
                        e.runs.push(crate::canary::AnalysisRunState {
                            name,
                            phase: AnalysisPhase::Running,
                            message: String::new(),
                        });
                        next = next.min(h.now.add_secs(60));
                    }
                    ExperimentAction::TerminateAnalysisRun { name } => {
                        if let Some(r) = e.runs.iter_mut().find(|r| r.name == name) {
                            r.phase = AnalysisPhase::Successful;
                        }
                    }
                }
            }
            if cluster_exp.phase != phase {
                cluster_exp.phase = phase;
                cluster_exp.message.clone_from(&e.status.message);
                next = h.now;
            }
        }
        if let Some(t) = h.cluster.next_change() {
            next = next.min(t);
        }
        if next > h.now {
            h.now = next;
        } else if !busy {
            h.now = h.now.add_millis(1);
        }
    }
}

#[test]
fn experiment_machine_drives_the_step_to_promotion() {
    let mut h = deployed(rollout(EXPERIMENT, 5), SimCluster::new(5));
    run_with_experiments(&mut h, AnalysisPhase::Successful, 3600);
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn experiment_machine_failure_aborts_the_rollout() {
    let mut h = deployed(rollout(EXPERIMENT, 5), SimCluster::new(5));
    run_with_experiments(&mut h, AnalysisPhase::Failed, 3600);
    assert!(h.status.abort);
    assert!(
        h.status
            .message
            .contains("Analysis 'judge' assessed Failed"),
        "{}",
        h.status.message
    );
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 0);
}

#[test]
fn abort_after_promote_full_wins_and_promote_full_after_abort_clears_it() {
    let mut h = deployed(rollout(ISTIO, 5), SimCluster::new(5));
    run_quiet(&mut h, 600);
    // promote --full, then abort before the controller acts: the abort wins.
    crate::command::promote_full(&h.rollout, &h.status).apply(&mut h.rollout, &mut h.status);
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 600);
    assert!(h.status.abort && !h.status.promote_full);
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    // promote --full after the abort: the update is promoted.
    crate::command::promote_full(&h.rollout, &h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn old_replica_sets_beyond_the_revision_history_limit_are_deleted_once_drained() {
    let mut ro = rollout(
        "    canary:
      steps: [{setWeight: 50}, {pause: {duration: 1m}}]
",
        4,
    );
    ro.spec.revision_history_limit = Some(1);
    let mut h = deployed(ro, SimCluster::new(10));
    let mut deleted = Vec::new();
    for (i, hash) in ["v2", "v3", "v4"].into_iter().enumerate() {
        h.pod_template_hash = hash.into();
        let until = h.now.add_secs(3600);
        h.run(&mut AlwaysSucceeds { after_seconds: 0 }, until, |rec, _| {
            for a in &rec.actions {
                if let Action::DeleteReplicaSet { pod_template_hash } = a {
                    deleted.push(pod_template_hash.clone());
                }
            }
        });
        assert_eq!(h.status.stable_rs, hash, "update {i} promoted");
    }
    // v4 is current and stable; one old set is kept (v3), the older ones go, oldest
    // first, each only once it was scaled to zero.
    assert_eq!(deleted, ["v1", "v2"]);
    let left: Vec<&str> = h
        .cluster
        .replica_sets
        .iter()
        .map(|rs| rs.pod_template_hash.as_str())
        .collect();
    assert_eq!(left, ["v3", "v4"]);
}

#[test]
fn history_cleanup_keeps_sets_that_still_have_pods_or_a_deadline() {
    use crate::canary::{ReplicaSetState, history_to_delete};
    let rs = |hash: &str, revision: i64, replicas: i32| ReplicaSetState {
        pod_template_hash: hash.into(),
        revision,
        spec_replicas: replicas,
        replicas,
        ..ReplicaSetState::default()
    };
    let mut sets = vec![
        rs("a", 1, 0),
        rs("b", 2, 3),
        rs("c", 3, 0),
        rs("d", 4, 0),
        rs("cur", 5, 4),
    ];
    // Three old sets besides current and stable ("d"), limit 1: the two oldest are
    // candidates, and "b" still has pods.
    let del = |sets: &[ReplicaSetState]| -> Vec<String> {
        history_to_delete(1, sets, "cur", "d")
            .into_iter()
            .map(|a| match a {
                Action::DeleteReplicaSet { pod_template_hash } => pod_template_hash,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(del(&sets), ["a"]);
    sets[0].scale_down_deadline = Some(T0);
    assert!(del(&sets).is_empty(), "a deadline is pending");
    assert!(history_to_delete(10, &sets, "cur", "d").is_empty());
}
