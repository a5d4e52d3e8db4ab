//! The rollout and states the benchmarks share: a 10-step basic canary of 10 pods, its
//! first revision deployed, and the update to the second revision stopped at a pause.

use rollout_core::canary::{Decision, reconcile};
use rollout_core::sim::{AlwaysSucceeds, Harness, SimCluster};
use rollout_core::spec::Rollout;
use rollout_core::status::RolloutPhase;
use rollout_core::time::Timestamp;

/// Pod template hash of the first revision.
pub(crate) const V1: &str = "v1";
/// Pod template hash of the second revision.
pub(crate) const V2: &str = "v2";
/// Seconds a new pod takes to become available.
pub(crate) const POD_READY_SECONDS: i64 = 10;
/// Seconds an analysis run takes to succeed.
pub(crate) const ANALYSIS_SECONDS: i64 = 60;
/// The start of virtual time.
pub(crate) const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

/// Argo Rollouts' controller logs show about 3 ms per reconcile that changes nothing.
pub(crate) const ARGO_NOOP_RECONCILE_SECONDS: f64 = 0.003;

/// The 10-step canary: weights 10, 20, 40, 60, 80 with 1-minute pauses and an analysis.
pub(crate) fn rollout() -> Rollout {
    Rollout::from_yaml(
        "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
spec:
  replicas: 10
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
        image: ghcr.io/example/web:1.0
  strategy:
    canary:
      steps:
      - setWeight: 10
      - pause: {duration: 1m}
      - setWeight: 20
      - pause: {duration: 1m}
      - setWeight: 40
      - analysis:
          templates:
          - templateName: success-rate
      - setWeight: 60
      - pause: {duration: 1m}
      - setWeight: 80
      - pause: {duration: 1m}
",
    )
    .expect("the benchmark rollout parses")
}

/// The first revision deployed and Healthy, with the template now hashing to [`V2`].
pub(crate) fn deployed() -> Harness {
    let mut h = Harness::new(rollout(), V1, SimCluster::new(POD_READY_SECONDS), T0);
    h.run(
        &mut AlwaysSucceeds { after_seconds: 0 },
        T0.add_secs(3600),
        |_, _| {},
    );
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(h.status.stable_rs, V1);
    h.now = h.now.add_secs(600);
    h.pod_template_hash = V2.to_string();
    h
}

/// The update to [`V2`] driven to the 1-minute pause of step 2/10 (index 1), with the
/// clock 10 s into the pause: a pass now has nothing to do.
pub(crate) fn paused_at_step_2() -> Harness {
    let mut h = deployed();
    let script = AlwaysSucceeds {
        after_seconds: ANALYSIS_SECONDS,
    };
    for _ in 0..1000 {
        let rec = h.pass();
        if h.status.current_step_index == Some(1) && !h.status.pause_conditions.is_empty() {
            h.now = h.now.add_secs(10);
            return h;
        }
        let quiet = rec.actions.is_empty() && rec.events.is_empty() && !rec.status_changed;
        if quiet && let Some(t) = h.next_instant(&script) {
            h.now = t;
        }
    }
    panic!(
        "the update never reached the pause of step 2: {:?}",
        h.status
    );
}

/// One reconcile of the harness's state at `now`, without executing anything.
pub(crate) fn decide(h: &Harness, now: Timestamp) -> Decision<'_> {
    let observed = h.cluster.observed(&h.pod_template_hash);
    reconcile(&h.rollout, &h.status, &observed, now)
}
