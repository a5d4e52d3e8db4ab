//! The blue-green rollouts and states the benchmarks share: 10 pods behind `web-active`,
//! a 3-pod preview behind `web-preview`, the first revision deployed, and the update to
//! the second revision stopped at each gate.

use rollout_core::bluegreen::reconcile;
use rollout_core::canary::{Action, Decision};
use rollout_core::command;
use rollout_core::sim::{AlwaysSucceeds, Harness, SimCluster};
use rollout_core::spec::Rollout;
use rollout_core::status::{AnalysisPhase, PauseReason, RolloutPhase};
use rollout_core::time::Timestamp;

/// Pod template hash of the first revision.
pub(crate) const V1: &str = "v1";
/// Pod template hash of the second revision.
pub(crate) const V2: &str = "v2";
/// The active service.
pub(crate) const ACTIVE: &str = "web-active";
/// Seconds a new pod takes to become available.
pub(crate) const POD_READY_SECONDS: i64 = 10;
/// Seconds an analysis run takes to succeed.
pub(crate) const ANALYSIS_SECONDS: i64 = 30;
/// `autoPromotionSeconds` of [`auto`].
pub(crate) const AUTO_PROMOTION_SECONDS: i64 = 60;
/// The start of virtual time.
pub(crate) const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

/// Argo Rollouts' controller logs show about 3 ms per reconcile that changes nothing.
pub(crate) const ARGO_NOOP_RECONCILE_SECONDS: f64 = 0.003;

fn rollout(promotion: &str) -> Rollout {
    Rollout::from_yaml(&format!(
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
    blueGreen:
      activeService: {ACTIVE}
      previewService: web-preview
      previewReplicaCount: 3
      scaleDownDelaySeconds: 30
      prePromotionAnalysis:
        templates:
        - templateName: smoke-test
{promotion}"
    ))
    .expect("the benchmark rollout parses")
}

/// Manual promotion, with post-promotion analysis.
pub(crate) fn manual() -> Rollout {
    rollout(
        "      autoPromotionEnabled: false
      postPromotionAnalysis:
        templates:
        - templateName: success-rate
",
    )
}

/// Promoted automatically [`AUTO_PROMOTION_SECONDS`] after the pause starts; no
/// post-promotion analysis.
pub(crate) fn auto() -> Rollout {
    rollout(&format!(
        "      autoPromotionSeconds: {AUTO_PROMOTION_SECONDS}\n"
    ))
}

/// The first revision of `rollout` deployed and Healthy, with the template now hashing
/// to [`V2`].
pub(crate) fn deployed(rollout: Rollout) -> Harness {
    let mut h = Harness::new(rollout, V1, SimCluster::new(POD_READY_SECONDS), T0);
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

/// Passes (analysis runs succeeding after [`ANALYSIS_SECONDS`]), jumping to the next
/// instant whenever a pass is quiet, until `done` holds.
fn drive(mut h: Harness, what: &str, done: impl Fn(&Harness) -> bool) -> Harness {
    let mut script = AlwaysSucceeds {
        after_seconds: ANALYSIS_SECONDS,
    };
    for _ in 0..1000 {
        // What the next pass will observe: pods ready by now, analysis verdicts due.
        h.cluster.advance(h.now);
        h.run_script(&mut script);
        if done(&h) {
            return h;
        }
        let rec = h.pass();
        let quiet = rec.actions.is_empty() && rec.events.is_empty() && !rec.status_changed;
        if quiet && !h.run_script(&mut script) {
            match h.next_instant(&script) {
                Some(t) => h.now = t,
                None => break,
            }
        }
    }
    panic!("the update never reached {what}: {:?}", h.status);
}

/// The manual update with its preview up and the pre-promotion analysis running, the
/// clock 5 s into it.
pub(crate) fn pre_promotion_running() -> Harness {
    let mut h = drive(deployed(manual()), "the pre-promotion analysis", |h| {
        h.status
            .blue_green
            .pre_promotion_analysis_run_status
            .as_ref()
            .is_some_and(|r| r.status == AnalysisPhase::Running)
    });
    h.now = h.now.add_secs(5);
    h
}

/// The manual update in its `BlueGreenPause`, the clock 10 s into it.
pub(crate) fn paused() -> Harness {
    let mut h = drive(deployed(manual()), "the BlueGreenPause", |h| {
        h.status
            .pause_condition(PauseReason::BlueGreenPause)
            .is_some()
    });
    h.now = h.now.add_secs(10);
    h
}

fn switches_active(d: &Decision<'_>) -> bool {
    d.actions.iter().any(|a| {
        matches!(a, Action::SetServiceSelector { service, pod_template_hash }
            if service == ACTIVE && pod_template_hash == V2)
    })
}

/// The manual update promoted, its new ReplicaSet saturated: the next pass switches the
/// active service.
pub(crate) fn about_to_switch() -> Harness {
    let mut h = paused();
    command::promote(&h.rollout, &h.status).apply(&mut h.rollout, &mut h.status);
    drive(h, "the switch", |h| switches_active(&decide(h, h.now)))
}

/// Whether the pass of `h` at its clock switches the active service to [`V2`].
pub(crate) fn is_switch(h: &Harness) -> bool {
    switches_active(&decide(h, h.now))
}

/// The manual update switched, its post-promotion analysis running, the clock 5 s in.
pub(crate) fn post_promotion_running() -> Harness {
    let mut h = drive(about_to_switch(), "the post-promotion analysis", |h| {
        h.status
            .blue_green
            .post_promotion_analysis_run_status
            .as_ref()
            .is_some_and(|r| r.status == AnalysisPhase::Running)
    });
    h.now = h.now.add_secs(5);
    h
}

/// The first revision of the manual rollout deployed, resynced.
pub(crate) fn healthy() -> Harness {
    let mut h = deployed(manual());
    h.pod_template_hash = V1.to_string();
    h
}

/// One reconcile of the harness's state at `now`, without executing anything.
pub(crate) fn decide(h: &Harness, now: Timestamp) -> Decision<'_> {
    let observed = h.cluster.observed(&h.pod_template_hash);
    reconcile(&h.rollout, &h.status, &observed, now)
}
