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
    h.run(&mut AlwaysSucceeds { after_seconds: 60 }, T0.add_secs(3600), |_, _| {});
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy), "{:?}", h.status);
    h.pod_template_hash = "v2".into();
    h
}

struct Fails;
impl AnalysisScript for Fails {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        (now >= run.started_at.add_secs(60))
            .then(|| (AnalysisPhase::Failed, "Metric \"success-rate\" assessed Failed".into()))
    }
    fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
        Some(run.started_at.add_secs(60))
    }
}

#[test]
fn healthy_canary_is_promoted() {
    let mut h = deployed(rollout(QUICKSTART_STEPS, 10), SimCluster::new(10));
    let mut log = Vec::new();
    h.run(&mut AlwaysSucceeds { after_seconds: 60 }, T0.add_secs(7200), |rec, c| {
        let canary = c.replica_set("v2").map_or(0, |r| r.spec_replicas);
        let stable = c.replica_set("v1").map_or(0, |r| r.spec_replicas);
        log.push((rec.at.millis_since(T0) / 1000, rec.status.current_step_index, canary, stable));
    });
    println!("{log:?}");
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 0);
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 10);
    // The 10% step put 1 canary pod next to the stable ones.
    assert!(log.iter().any(|&(_, i, c, _)| i == Some(1) && c == 1), "{log:?}");
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
    assert!(h.status.message.starts_with("RolloutAborted: Rollout aborted update to revision 2"), "{}", h.status.message);
    assert_eq!(h.cluster.replica_set("v1").unwrap().spec_replicas, 10);
    assert_eq!(h.cluster.replica_set("v2").unwrap().spec_replicas, 0);
    let started = h.cluster.runs.iter().filter(|r| matches!(r.kind, AnalysisRunKind::Step { index: 3 })).count();
    assert_eq!(started, 1);
    let _ = (Action::RemoveManagedRoutes, PauseReason::CanaryPauseStep);
}
