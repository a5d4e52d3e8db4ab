//! Scenario and property tests of the blue-green machine, driven through the simulator.

use std::borrow::Cow;

use crate::canary::{Action, AnalysisRunKind};
use crate::sim::{AlwaysSucceeds, AnalysisScript, Harness, PassRecord, SimCluster, SimRun};
use crate::spec::Rollout;
use crate::status::{AnalysisPhase, PauseReason, RolloutPhase};
use crate::time::Timestamp;

const T0: Timestamp = Timestamp::from_secs(1_800_000_000);
const ACTIVE: &str = "web";
const PREVIEW: &str = "web-preview";

/// A blue-green rollout named `web` with `replicas` pods and a preview service; `extra`
/// holds further `blueGreen` fields, one per line, without indentation.
fn rollout(extra: &str, replicas: i32) -> Rollout {
    build_rollout(true, extra, replicas)
}

fn build_rollout(preview_service: bool, extra: &str, replicas: i32) -> Rollout {
    let mut strategy = format!("    blueGreen:\n      activeService: {ACTIVE}\n");
    if preview_service {
        strategy.push_str(&format!("      previewService: {PREVIEW}\n"));
    }
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        strategy.push_str("      ");
        strategy.push_str(line);
        strategy.push('\n');
    }
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
{strategy}"
    );
    Rollout::from_yaml(&text).expect("test rollout parses")
}

const PRE: &str = "prePromotionAnalysis: {templates: [{templateName: smoke}]}";
const POST: &str = "postPromotionAnalysis: {templates: [{templateName: soak}]}";
const MANUAL: &str = "autoPromotionEnabled: false";

/// Deploys revision `v1` to completion, then switches the template hash to `v2`.
fn deployed(ro: Rollout, cluster: SimCluster) -> Harness {
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
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
    h.now = h.now.add_secs(600);
    h.pod_template_hash = "v2".into();
    h
}

fn run_with(h: &mut Harness, script: &mut dyn AnalysisScript, secs: i64) -> Vec<PassRecord> {
    let mut recs = Vec::new();
    let until = h.now.add_secs(secs);
    h.run(script, until, |r, _| recs.push(r.clone()));
    recs
}

fn run_quiet(h: &mut Harness, secs: i64) -> Vec<PassRecord> {
    run_with(h, &mut AlwaysSucceeds { after_seconds: 60 }, secs)
}

fn spec_of(h: &Harness, hash: &str) -> i32 {
    h.cluster.replica_set(hash).map_or(0, |rs| rs.spec_replicas)
}

/// The first pass with an action matching `f`.
fn first_with(recs: &[PassRecord], f: impl Fn(&Action) -> bool) -> Option<&PassRecord> {
    recs.iter().find(|r| r.actions.iter().any(&f))
}

fn switched_to(service: &'static str, hash: &'static str) -> impl Fn(&Action) -> bool {
    move |a| {
        matches!(a, Action::SetServiceSelector { service: s, pod_template_hash: p }
            if s == service && p == hash)
    }
}

fn scaled(hash: &'static str, to: i32) -> impl Fn(&Action) -> bool {
    move |a| {
        matches!(a, Action::ScaleReplicaSet { pod_template_hash: p, replicas }
            if p == hash && *replicas == to)
    }
}

fn event_at(recs: &[PassRecord], reason: &str) -> Option<Timestamp> {
    recs.iter()
        .find(|r| r.events.iter().any(|e| e.reason == reason))
        .map(|r| r.at)
}

fn secs_between(a: Timestamp, b: Timestamp) -> i64 {
    b.millis_since(a) / 1000
}

fn runs_of(h: &Harness, kind: AnalysisRunKind) -> usize {
    h.cluster.runs.iter().filter(|r| r.kind == kind).count()
}

/// Runs succeed or fail by kind, `after` seconds after they start.
struct ByKind {
    pre: AnalysisPhase,
    post: AnalysisPhase,
    after: i64,
}

impl AnalysisScript for ByKind {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        if now < run.started_at.add_secs(self.after) {
            return None;
        }
        let phase = if run.kind == AnalysisRunKind::PostPromotion {
            self.post
        } else {
            self.pre
        };
        Some((phase, format!("Metric \"m\" assessed {}", phase.as_str())))
    }
    fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
        Some(run.started_at.add_secs(self.after))
    }
}

fn script(pre: AnalysisPhase, post: AnalysisPhase) -> ByKind {
    ByKind {
        pre,
        post,
        after: 60,
    }
}

fn promote(h: &mut Harness) {
    crate::command::promote(&h.rollout, &h.status).apply(&mut h.rollout, &mut h.status);
}

// ---- 1. a new revision is previewed next to the active one ------------------------------

#[test]
fn new_revision_is_created_empty_then_previewed_next_to_the_active_set() {
    let mut h = deployed(rollout(MANUAL, 3), SimCluster::new(10));
    let recs = run_quiet(&mut h, 600);
    // The first pass creates the ReplicaSet with 0 pods and points the preview at it.
    assert!(matches!(
        &recs[0].actions[..],
        [
            Action::CreateReplicaSet { pod_template_hash, replicas: 0 },
            Action::SetServiceSelector { service, .. },
        ] if pod_template_hash == "v2" && service == PREVIEW
    ));
    assert_eq!(recs[0].status.blue_green.preview_selector, "v2");
    assert!(
        recs[0]
            .events
            .iter()
            .any(|e| e.reason == "RolloutUpdated" && e.message == "Rollout updated to revision 2")
    );
    // The next one scales it to full size (no previewReplicaCount).
    assert!(recs[1].actions.iter().any(scaled("v2", 3)), "{:?}", recs[1]);
    // The active service never moved; both sets run at full size.
    assert!(first_with(&recs, switched_to(ACTIVE, "v2")).is_none());
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
    assert_eq!(h.cluster.service_selector(PREVIEW), Some("v2"));
    assert_eq!(h.status.blue_green.active_selector, "v1");
    assert_eq!((spec_of(&h, "v1"), spec_of(&h, "v2")), (3, 3));
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.status.message, "BlueGreenPause");
}

#[test]
fn preview_replica_count_sizes_the_preview() {
    let mut h = deployed(
        rollout(&format!("{MANUAL}\npreviewReplicaCount: 1"), 4),
        SimCluster::new(10),
    );
    run_quiet(&mut h, 600);
    assert_eq!((spec_of(&h, "v1"), spec_of(&h, "v2")), (4, 1));
    assert!(!h.status.blue_green.scale_up_preview_check_point);
    assert_eq!(h.status.message, "BlueGreenPause");
}

#[test]
fn initial_deploy_has_no_analysis_and_no_pause() {
    let ro = rollout(&format!("{MANUAL}\n{PRE}\n{POST}"), 3);
    let mut h = Harness::new(ro, "v1", SimCluster::new(10), T0);
    let recs = run_quiet(&mut h, 600);
    assert!(h.cluster.runs.is_empty());
    assert!(recs.iter().all(|r| r.status.pause_conditions.is_empty()));
    let switch = first_with(&recs, switched_to(ACTIVE, "v1")).unwrap();
    assert_eq!(
        secs_between(T0, switch.at),
        10,
        "the active service waits for the pods"
    );
    assert_eq!(switch.status.stable_rs, "v1");
    assert!(
        switch
            .events
            .iter()
            .any(|e| e.reason == "RolloutCompleted" && e.message.ends_with("Initial deploy"))
    );
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(h.status.blue_green.preview_selector, "v1");
}

// ---- 2. pre-promotion analysis ------------------------------------------------------------

#[test]
fn pre_promotion_analysis_starts_once_the_preview_is_available() {
    let mut h = deployed(rollout(PRE, 3), SimCluster::new(10));
    let start = h.now;
    let recs = run_quiet(&mut h, 600);
    let started = h
        .cluster
        .runs
        .iter()
        .find(|r| r.kind == AnalysisRunKind::PrePromotion)
        .unwrap();
    assert_eq!(secs_between(start, started.started_at), 10);
    // While it runs, the cutover is pending.
    let during = recs
        .iter()
        .find(|r| r.at > started.started_at && r.at < started.started_at.add_secs(60));
    if let Some(r) = during {
        assert_eq!(r.status.message, "active service cutover pending");
    }
    // No pause (auto-promotion): the switch follows the analysis at once.
    let switch = first_with(&recs, switched_to(ACTIVE, "v2")).unwrap();
    assert_eq!(secs_between(start, switch.at), 70);
    assert_eq!(switch.status.stable_rs, "v2");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(runs_of(&h, AnalysisRunKind::PrePromotion), 1);
}

#[test]
fn failed_pre_promotion_analysis_aborts() {
    let mut h = deployed(rollout(PRE, 3), SimCluster::new(10));
    let mut fails = script(AnalysisPhase::Failed, AnalysisPhase::Successful);
    let recs = run_with(&mut h, &mut fails, 600);
    assert!(h.status.abort);
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        h.status.message,
        "RolloutAborted: Rollout aborted update to revision 2: PrePromotion analysis phase \
         failed: Metric \"m\" assessed Failed"
    );
    assert!(first_with(&recs, switched_to(ACTIVE, "v2")).is_none());
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
    let aborted = event_at(&recs, "RolloutAborted").unwrap();
    let down = first_with(&recs, scaled("v2", 0)).unwrap().at;
    assert_eq!(
        secs_between(aborted, down),
        30,
        "abortScaleDownDelaySeconds"
    );
    assert_eq!((spec_of(&h, "v1"), spec_of(&h, "v2")), (3, 0));
}

struct InconclusiveOnce {
    seen: usize,
}

impl AnalysisScript for InconclusiveOnce {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        if now < run.started_at.add_secs(60) {
            return None;
        }
        self.seen += 1;
        Some(if self.seen == 1 {
            (AnalysisPhase::Inconclusive, String::new())
        } else {
            (AnalysisPhase::Successful, String::new())
        })
    }
    fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
        Some(run.started_at.add_secs(60))
    }
}

#[test]
fn inconclusive_pre_promotion_pauses_and_promote_runs_it_again() {
    let mut h = deployed(rollout(PRE, 3), SimCluster::new(10));
    let mut sc = InconclusiveOnce { seen: 0 };
    run_with(&mut h, &mut sc, 600);
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.status.message, "InconclusiveAnalysisRun");
    assert!(h.status.controller_pause);
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
    // Nothing happens while paused.
    assert!(run_with(&mut h, &mut sc, 3600).is_empty());
    promote(&mut h);
    run_with(&mut h, &mut sc, 600);
    assert_eq!(runs_of(&h, AnalysisRunKind::PrePromotion), 2);
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v2"));
}

// ---- 3. the blue-green pause --------------------------------------------------------------

#[test]
fn manual_promotion_waits_for_promote() {
    let mut h = deployed(rollout(&format!("{MANUAL}\n{PRE}"), 3), SimCluster::new(10));
    let recs = run_quiet(&mut h, 600);
    let paused = event_at(&recs, "RolloutPaused").unwrap();
    // The pause comes after the pre-promotion analysis (started at +10, done at +70).
    assert_eq!(secs_between(recs[0].at, paused), 70);
    assert!(h.status.controller_pause);
    assert_eq!(
        h.status
            .pause_condition(PauseReason::BlueGreenPause)
            .map(|c| c.start_time),
        Some(paused)
    );
    assert!(
        run_quiet(&mut h, 3600).is_empty(),
        "nothing happens while paused"
    );
    let patch = crate::command::promote(&h.rollout, &h.status);
    assert_eq!(
        patch.status_merge_patch().unwrap(),
        serde_json::json!({"status": {"pauseConditions": null}})
    );
    patch.apply(&mut h.rollout, &mut h.status);
    let promoted_at = h.now;
    let recs = run_quiet(&mut h, 600);
    let switch = first_with(&recs, switched_to(ACTIVE, "v2")).unwrap();
    assert_eq!(switch.at, promoted_at, "promote switches in the next pass");
    assert!(!switch.status.controller_pause);
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn auto_promotion_seconds_promote_after_the_delay() {
    let mut h = deployed(rollout("autoPromotionSeconds: 120", 3), SimCluster::new(10));
    let recs = run_quiet(&mut h, 600);
    let paused = recs
        .iter()
        .find(|r| r.events.iter().any(|e| e.reason == "RolloutPaused"))
        .unwrap();
    assert_eq!(paused.requeue_at, Some(paused.at.add_secs(120)));
    let switch = first_with(&recs, switched_to(ACTIVE, "v2")).unwrap();
    assert_eq!(secs_between(paused.at, switch.at), 120);
    assert_eq!(h.status.stable_rs, "v2");
}

#[test]
fn promote_ends_an_auto_promotion_pause_early() {
    let mut h = deployed(
        rollout("autoPromotionSeconds: 3600", 3),
        SimCluster::new(10),
    );
    run_quiet(&mut h, 60);
    assert_eq!(h.status.message, "BlueGreenPause");
    promote(&mut h);
    run_quiet(&mut h, 60);
    assert_eq!(h.status.stable_rs, "v2");
}

// ---- 4. scaleUpPreviewCheckPoint ----------------------------------------------------------

#[test]
fn preview_scales_to_full_size_after_the_pause_then_switches() {
    let mut h = deployed(
        rollout(&format!("{MANUAL}\npreviewReplicaCount: 1\n{PRE}"), 4),
        SimCluster::new(10),
    );
    run_quiet(&mut h, 600);
    assert_eq!(spec_of(&h, "v2"), 1);
    assert_eq!(h.status.message, "BlueGreenPause");
    promote(&mut h);
    let promoted_at = h.now;
    let recs = run_quiet(&mut h, 600);
    // The same pass latches the checkpoint and scales the preview to full size.
    let up = first_with(&recs, scaled("v2", 4)).unwrap();
    assert_eq!(up.at, promoted_at);
    assert!(up.status.blue_green.scale_up_preview_check_point);
    // The switch waits for the 3 new pods (10 s).
    let switch = first_with(&recs, switched_to(ACTIVE, "v2")).unwrap();
    assert_eq!(secs_between(promoted_at, switch.at), 10);
    assert_eq!(runs_of(&h, AnalysisRunKind::PrePromotion), 1);
    assert_eq!(h.status.stable_rs, "v2");
    assert!(!h.status.blue_green.scale_up_preview_check_point);
}

// ---- 5. the switch ------------------------------------------------------------------------

#[test]
fn active_service_never_switches_to_an_unavailable_release() {
    let mut cluster = SimCluster::new(10);
    cluster.broken_hashes.push("v2".into());
    let mut h = deployed(rollout("", 3), cluster);
    let recs = run_quiet(&mut h, 300);
    assert!(first_with(&recs, switched_to(ACTIVE, "v2")).is_none());
    assert_eq!(h.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(h.status.message, "active service cutover pending");
}

#[test]
fn promote_full_skips_pause_and_analysis() {
    let mut h = deployed(
        rollout(&format!("{MANUAL}\n{PRE}\n{POST}"), 3),
        SimCluster::new(10),
    );
    let mut slow = AlwaysSucceeds { after_seconds: 900 };
    run_with(&mut h, &mut slow, 60);
    let pre = h
        .status
        .blue_green
        .pre_promotion_analysis_run_status
        .clone()
        .unwrap();
    let patch = crate::command::promote_full(&h.rollout, &h.status);
    assert_eq!(
        patch.status_merge_patch().unwrap(),
        serde_json::json!({"status": {"promoteFull": true}})
    );
    patch.apply(&mut h.rollout, &mut h.status);
    let recs = run_with(&mut h, &mut slow, 60);
    assert!(
        recs[0]
            .actions
            .contains(&Action::TerminateAnalysisRun { name: pre.name })
    );
    assert!(
        recs.iter()
            .flat_map(|r| &r.events)
            .any(|e| e.reason == "RolloutCompleted"
                && e.message.ends_with("Full promotion requested"))
    );
    assert_eq!(runs_of(&h, AnalysisRunKind::PostPromotion), 0);
    assert_eq!(h.status.stable_rs, "v2");
    assert!(!h.status.promote_full);
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn fast_rollback_within_the_scale_down_delay_skips_pause_and_analysis() {
    let extra = format!("{MANUAL}\n{PRE}\n{POST}\nscaleDownDelaySeconds: 300");
    let mut h = deployed(rollout(&extra, 3), SimCluster::new(10));
    run_quiet(&mut h, 600);
    promote(&mut h);
    run_quiet(&mut h, 120);
    assert_eq!(h.status.stable_rs, "v2");
    let v1 = h.cluster.replica_set("v1").unwrap();
    assert!(v1.scale_down_deadline.is_some());
    assert_eq!(v1.spec_replicas, 3, "kept up during the delay");
    let runs_before = h.cluster.runs.len();
    // Roll back to v1 while it still waits on its deadline.
    h.pod_template_hash = "v1".into();
    let back = h.now;
    let recs = run_quiet(&mut h, 600);
    let switch = first_with(&recs, switched_to(ACTIVE, "v1")).unwrap();
    assert_eq!(switch.at, back, "no pause, no analysis");
    assert!(switch.events.iter().any(|e| {
        e.reason == "RolloutCompleted"
            && e.message
                .ends_with("Rollback to 'web-v1' within scaleDownDelay")
    }));
    assert_eq!(h.cluster.runs.len(), runs_before);
    assert!(recs.iter().all(|r| r.status.pause_conditions.is_empty()));
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(
        h.cluster.replica_set("v1").unwrap().scale_down_deadline,
        None
    );
    // v2 in turn waits 300 s, then goes.
    let down = first_with(&recs, scaled("v2", 0)).unwrap();
    assert_eq!(secs_between(back, down.at), 300);
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn returning_to_the_stable_template_mid_update_switches_back_at_once() {
    let mut h = deployed(
        rollout(&format!("{MANUAL}\n{POST}"), 3),
        SimCluster::new(10),
    );
    run_quiet(&mut h, 600);
    promote(&mut h);
    // Switched, post-promotion analysis running (it takes 600 s).
    run_with(&mut h, &mut AlwaysSucceeds { after_seconds: 600 }, 30);
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v2"));
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(h.status.message, "waiting for analysis to complete");
    h.pod_template_hash = "v1".into();
    let back = h.now;
    let recs = run_quiet(&mut h, 600);
    assert_eq!(
        first_with(&recs, switched_to(ACTIVE, "v1")).unwrap().at,
        back
    );
    assert!(
        recs[0]
            .actions
            .iter()
            .any(|a| matches!(a, Action::TerminateAnalysisRun { .. }))
    );
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(spec_of(&h, "v2"), 0);
}

// ---- 6. post-promotion analysis -----------------------------------------------------------

#[test]
fn post_promotion_analysis_gates_the_stable_set() {
    let mut h = deployed(rollout(POST, 3), SimCluster::new(10));
    let recs = run_quiet(&mut h, 600);
    let switch = first_with(&recs, switched_to(ACTIVE, "v2")).unwrap();
    assert_eq!(switch.status.stable_rs, "v1");
    let post = h
        .cluster
        .runs
        .iter()
        .find(|r| r.kind == AnalysisRunKind::PostPromotion)
        .unwrap();
    assert_eq!(
        post.started_at, switch.at,
        "post-promotion starts with the switch"
    );
    assert_eq!(switch.status.message, "waiting for analysis to complete");
    let done = event_at(&recs, "RolloutCompleted").unwrap();
    assert_eq!(secs_between(switch.at, done), 60);
    assert_eq!(h.status.stable_rs, "v2");
    // The old set is kept until the analysis succeeded, then for the delay.
    let down = first_with(&recs, scaled("v1", 0)).unwrap();
    assert_eq!(secs_between(done, down.at), 30);
}

#[test]
fn failed_post_promotion_analysis_flips_the_active_service_back() {
    let mut h = deployed(rollout(POST, 3), SimCluster::new(10));
    let mut fails = script(AnalysisPhase::Successful, AnalysisPhase::Error);
    let recs = run_with(&mut h, &mut fails, 600);
    let switch = first_with(&recs, switched_to(ACTIVE, "v2")).unwrap().at;
    let back = first_with(&recs, switched_to(ACTIVE, "v1")).unwrap().at;
    assert_eq!(secs_between(switch, back), 60);
    assert!(h.status.abort);
    assert_eq!(h.status.stable_rs, "v1");
    assert!(
        h.status
            .message
            .starts_with("RolloutAborted: Rollout aborted update to revision 2: PostPromotion analysis phase error"),
        "{}",
        h.status.message
    );
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
    let down = first_with(&recs, scaled("v2", 0)).unwrap().at;
    assert_eq!(secs_between(back, down), 30);
    assert_eq!(spec_of(&h, "v1"), 3);
}

// ---- 7. scale-down of old ReplicaSets -----------------------------------------------------

#[test]
fn old_active_set_is_scaled_down_after_the_delay() {
    let mut h = deployed(rollout("", 3), SimCluster::new(10));
    let recs = run_quiet(&mut h, 600);
    let promoted = event_at(&recs, "RolloutCompleted").unwrap();
    let deadline = recs
        .iter()
        .flat_map(|r| &r.actions)
        .find_map(|a| match a {
            Action::SetScaleDownDeadline {
                pod_template_hash,
                deadline: Some(d),
            } if pod_template_hash == "v1" => Some(*d),
            _ => None,
        })
        .unwrap();
    assert_eq!(deadline, promoted.add_secs(30));
    let down = first_with(&recs, scaled("v1", 0)).unwrap();
    assert_eq!(down.at, deadline);
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));

    let mut h = deployed(rollout("scaleDownDelaySeconds: 0", 3), SimCluster::new(10));
    let recs = run_quiet(&mut h, 600);
    let promoted = event_at(&recs, "RolloutCompleted").unwrap();
    assert_eq!(first_with(&recs, scaled("v1", 0)).unwrap().at, promoted);
}

#[test]
fn scale_down_delay_revision_limit_scales_the_oldest_down_at_once() {
    let extra = "scaleDownDelaySeconds: 600\nscaleDownDelayRevisionLimit: 1";
    let mut h = deployed(rollout(extra, 2), SimCluster::new(10));
    run_quiet(&mut h, 30);
    assert_eq!(h.status.stable_rs, "v2");
    assert_eq!(spec_of(&h, "v1"), 2, "v1 waits on its deadline");
    h.pod_template_hash = "v3".into();
    let recs = run_quiet(&mut h, 30);
    let promoted = event_at(&recs, "RolloutCompleted").unwrap();
    assert_eq!(h.status.stable_rs, "v3");
    // v2 takes the only slot; v1 goes at once.
    assert_eq!(first_with(&recs, scaled("v1", 0)).unwrap().at, promoted);
    assert_eq!(spec_of(&h, "v2"), 2);
    assert!(
        h.cluster
            .replica_set("v2")
            .unwrap()
            .scale_down_deadline
            .is_some()
    );
}

// ---- 8. abort and retry -------------------------------------------------------------------

#[test]
fn user_abort_keeps_the_stable_active_and_scales_the_preview_down_after_the_delay() {
    let mut h = deployed(rollout(&format!("{MANUAL}\n{PRE}"), 3), SimCluster::new(10));
    run_quiet(&mut h, 600);
    assert_eq!(h.status.message, "BlueGreenPause");
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    let aborted_at = h.now;
    let recs = run_quiet(&mut h, 600);
    assert!(h.status.abort);
    assert!(h.status.pause_conditions.is_empty());
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        h.status.message,
        "RolloutAborted: Rollout aborted update to revision 2"
    );
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
    let down = first_with(&recs, scaled("v2", 0)).unwrap();
    assert_eq!(secs_between(aborted_at, down.at), 30);
    assert!(
        h.cluster
            .replica_set("v2")
            .unwrap()
            .scale_down_deadline
            .is_some(),
        "the deadline stays so that the abort does not start a new one"
    );
    assert!(run_quiet(&mut h, 3600).is_empty(), "an abort converges");

    // Retry starts over: a new preview, a new analysis run, the pause again.
    crate::command::retry(&h.status).apply(&mut h.rollout, &mut h.status);
    let recs = run_quiet(&mut h, 600);
    assert!(recs[0].events.iter().any(|e| e.reason == "RolloutRetry"));
    assert!(!h.status.abort);
    assert_eq!(
        h.cluster.replica_set("v2").unwrap().scale_down_deadline,
        None
    );
    assert_eq!(spec_of(&h, "v2"), 3);
    assert_eq!(runs_of(&h, AnalysisRunKind::PrePromotion), 2);
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.status.message, "BlueGreenPause");
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
    promote(&mut h);
    run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v2");
}

#[test]
fn abort_scale_down_delay_zero_keeps_the_preview() {
    let mut h = deployed(
        rollout(&format!("{MANUAL}\nabortScaleDownDelaySeconds: 0"), 3),
        SimCluster::new(10),
    );
    run_quiet(&mut h, 600);
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 3600);
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(spec_of(&h, "v2"), 3);
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
}

#[test]
fn user_abort_after_the_switch_returns_the_active_service_to_stable() {
    let mut h = deployed(rollout(POST, 3), SimCluster::new(10));
    run_with(&mut h, &mut AlwaysSucceeds { after_seconds: 900 }, 60);
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v2"));
    let post = h
        .status
        .blue_green
        .post_promotion_analysis_run_status
        .clone()
        .unwrap();
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    let recs = run_quiet(&mut h, 600);
    assert_eq!(
        first_with(&recs, switched_to(ACTIVE, "v1")).unwrap().at,
        recs[0].at
    );
    assert!(
        recs[0]
            .actions
            .contains(&Action::TerminateAnalysisRun { name: post.name })
    );
    assert_eq!(spec_of(&h, "v2"), 0);
    assert_eq!(h.status.stable_rs, "v1");
}

#[test]
fn a_new_template_while_aborted_starts_over() {
    let mut h = deployed(rollout(MANUAL, 3), SimCluster::new(10));
    run_quiet(&mut h, 600);
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 10);
    assert!(h.status.abort);
    h.pod_template_hash = "v3".into();
    run_quiet(&mut h, 600);
    assert!(!h.status.abort);
    assert_eq!(h.status.message, "BlueGreenPause");
    assert_eq!(h.cluster.service_selector(PREVIEW), Some("v3"));
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
    assert_eq!(
        (spec_of(&h, "v1"), spec_of(&h, "v2"), spec_of(&h, "v3")),
        (3, 0, 3)
    );
    promote(&mut h);
    run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v3");
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn a_new_template_during_the_preview_retires_the_intermediate_set() {
    let mut h = deployed(rollout(MANUAL, 3), SimCluster::new(10));
    run_quiet(&mut h, 600);
    h.pod_template_hash = "v3".into();
    let changed = h.now;
    let recs = run_quiet(&mut h, 600);
    let down = first_with(&recs, scaled("v2", 0)).unwrap();
    assert_eq!(secs_between(changed, down.at), 30, "scaleDownDelaySeconds");
    assert_eq!(h.status.message, "BlueGreenPause");
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
}

// ---- 9. progress deadline, manual pause, phases ------------------------------------------

fn with_deadline(abort: bool) -> Rollout {
    let mut ro = rollout("", 3);
    ro.spec.progress_deadline_seconds = Some(120);
    ro.spec.progress_deadline_abort = abort;
    ro
}

#[test]
fn progress_deadline_marks_the_rollout_degraded() {
    let mut cluster = SimCluster::new(10);
    cluster.broken_hashes.push("v2".into());
    let mut h = deployed(with_deadline(false), cluster);
    let start = h.now;
    let recs = run_quiet(&mut h, 3600);
    let timed_out = event_at(&recs, "RolloutTimedOut").unwrap();
    assert!((120..=121).contains(&secs_between(start, timed_out)));
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        h.status.message,
        "ProgressDeadlineExceeded: ReplicaSet \"web-v2\" has timed out progressing."
    );
    assert!(!h.status.abort);
    assert_eq!(spec_of(&h, "v2"), 3, "the update stays in place");
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
}

#[test]
fn progress_deadline_abort_scales_the_preview_down() {
    let mut cluster = SimCluster::new(10);
    cluster.broken_hashes.push("v2".into());
    let mut h = deployed(with_deadline(true), cluster);
    let recs = run_quiet(&mut h, 3600);
    assert!(h.status.abort);
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert!(h.status.message.starts_with("ProgressDeadlineExceeded"));
    let timed_out = event_at(&recs, "RolloutTimedOut").unwrap();
    let down = first_with(&recs, scaled("v2", 0)).unwrap().at;
    assert_eq!(secs_between(timed_out, down), 30);
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
}

#[test]
fn manual_pause_holds_the_update() {
    let mut h = deployed(rollout(PRE, 3), SimCluster::new(10));
    crate::command::pause(&h.rollout).apply(&mut h.rollout, &mut h.status);
    let recs = run_quiet(&mut h, 3600);
    assert!(recs.iter().all(|r| r.actions.is_empty()), "{recs:?}");
    assert_eq!(h.status.phase, Some(RolloutPhase::Paused));
    assert_eq!(h.status.message, "manually paused");
    crate::command::resume(&h.rollout).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 600);
    assert_eq!(h.status.stable_rs, "v2");
}

#[test]
fn phases_along_a_manual_update_with_analyses() {
    let extra = format!("{MANUAL}\npreviewReplicaCount: 1\n{PRE}\n{POST}");
    let mut h = deployed(rollout(&extra, 3), SimCluster::new(10));
    let mut seen = Vec::new();
    let mut note = |recs: Vec<PassRecord>| {
        for r in recs {
            if seen.last() != Some(&r.status.message) {
                seen.push(r.status.message.clone());
            }
        }
    };
    note(run_quiet(&mut h, 600));
    promote(&mut h);
    note(run_quiet(&mut h, 600));
    assert_eq!(
        seen,
        [
            "more replicas need to be updated",
            "BlueGreenPause",
            "more replicas need to be updated",
            "active service cutover pending",
            "waiting for analysis to complete",
            "",
        ]
    );
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
}

#[test]
fn promote_full_and_the_progress_deadline_abort_do_not_flap() {
    let mut cluster = SimCluster::new(10);
    cluster.broken_hashes.push("v2".into());
    let mut h = deployed(with_deadline(true), cluster);
    run_quiet(&mut h, 600);
    assert!(h.status.abort);
    // promote --full after the abort clears it and tries again ...
    crate::command::promote_full(&h.rollout, &h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 30);
    assert!(!h.status.abort);
    assert_eq!(spec_of(&h, "v2"), 3);
    // ... until the deadline aborts it again, which ends the full promotion for good.
    run_quiet(&mut h, 7200);
    assert!(h.status.abort);
    assert!(!h.status.promote_full);
    assert_eq!(spec_of(&h, "v2"), 0);
    assert_eq!(h.requeue_at, None);
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
}

#[test]
fn abort_after_promote_full_wins() {
    let mut h = deployed(rollout(&format!("{MANUAL}\n{PRE}"), 3), SimCluster::new(10));
    let mut slow = AlwaysSucceeds { after_seconds: 900 };
    run_with(&mut h, &mut slow, 5);
    crate::command::promote_full(&h.rollout, &h.status).apply(&mut h.rollout, &mut h.status);
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    run_with(&mut h, &mut slow, 600);
    assert!(h.status.abort);
    assert!(!h.status.promote_full);
    assert_eq!(h.status.stable_rs, "v1");
    assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
}

// ---- no-op passes -------------------------------------------------------------------------

fn assert_noop(h: &Harness) {
    let observed = h.cluster.observed(&h.pod_template_hash);
    let d = super::reconcile(&h.rollout, &h.status, &observed, h.now);
    assert!(d.is_noop(), "{d:?}");
    assert!(matches!(d.status, Cow::Borrowed(_)));
}

#[test]
fn noop_passes_borrow_the_status() {
    let mut h = deployed(rollout(&format!("{MANUAL}\n{PRE}"), 3), SimCluster::new(10));
    run_quiet(&mut h, 600);
    assert_eq!(h.status.message, "BlueGreenPause");
    assert_noop(&h);
    crate::command::abort(&h.status).apply(&mut h.rollout, &mut h.status);
    run_quiet(&mut h, 600);
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    assert_noop(&h);
    h.pod_template_hash = "v1".into();
    run_quiet(&mut h, 600);
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    assert_noop(&h);
}

#[test]
fn a_rollout_without_blue_green_is_an_invalid_spec() {
    let ro = crate::canary_tests::rollout(crate::canary_tests::QUICKSTART_STEPS, 3);
    let status = crate::RolloutStatus::default();
    let d = super::reconcile(&ro, &status, &crate::canary::Observed::default(), T0);
    assert_eq!(d.status.phase, Some(RolloutPhase::Degraded));
    assert!(
        d.status.message.starts_with("InvalidSpec: "),
        "{}",
        d.status.message
    );
    assert!(d.actions.is_empty());
}

// ---- properties ---------------------------------------------------------------------------

mod properties {
    use super::*;
    use crate::status::RolloutStatus;
    use proptest::prelude::*;

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
        Pause,
        Resume,
        /// A third revision (`v3`) replaces the one in flight.
        Update,
    }

    #[derive(Debug, Clone)]
    struct Scenario {
        replicas: i32,
        preview_service: bool,
        preview_count: Option<i32>,
        auto_enabled: Option<bool>,
        auto_seconds: Option<i32>,
        pre: bool,
        post: bool,
        scale_down_delay: Option<i32>,
        abort_delay: Option<i32>,
        revision_limit: Option<i32>,
        deadline_abort: bool,
        ready_secs: i64,
        broken: bool,
        verdicts: Vec<Verdict>,
        commands: Vec<(i64, Cmd)>,
    }

    impl Scenario {
        fn needs_pause(&self) -> bool {
            self.auto_enabled == Some(false) || self.auto_seconds.unwrap_or(0) > 0
        }
    }

    fn scenario() -> impl Strategy<Value = Scenario> {
        let verdict = prop_oneof![
            4 => Just(Verdict::Pass),
            1 => Just(Verdict::Fail),
            1 => Just(Verdict::Inconclusive),
        ];
        let cmd = prop_oneof![
            Just(Cmd::Abort),
            Just(Cmd::Promote),
            Just(Cmd::PromoteFull),
            Just(Cmd::Retry),
            Just(Cmd::Pause),
            Just(Cmd::Resume),
            Just(Cmd::Update),
        ];
        (
            (
                1..=8i32,
                prop::bool::weighted(0.8),
                prop::option::of(1..=8i32),
                prop::option::of(any::<bool>()),
                prop::option::of(prop_oneof![Just(0), 1..300i32]),
                any::<bool>(),
                any::<bool>(),
            ),
            (
                prop::option::of(prop_oneof![Just(0), 1..120i32]),
                prop::option::of(prop_oneof![Just(0), Just(10)]),
                prop::option::of(0..3i32),
                prop::bool::weighted(0.3),
            ),
            1..40i64,
            prop::bool::weighted(0.15),
            prop::collection::vec(verdict, 8),
            prop::collection::vec((0..2000i64, cmd), 0..4),
        )
            .prop_map(
                |(
                    (
                        replicas,
                        preview_service,
                        preview_count,
                        auto_enabled,
                        auto_seconds,
                        pre,
                        post,
                    ),
                    (scale_down_delay, abort_delay, revision_limit, deadline_abort),
                    ready_secs,
                    broken,
                    verdicts,
                    commands,
                )| Scenario {
                    replicas,
                    preview_service,
                    preview_count: preview_count.map(|p| p.min(replicas)),
                    auto_enabled,
                    auto_seconds,
                    pre,
                    post,
                    scale_down_delay,
                    abort_delay,
                    revision_limit,
                    deadline_abort,
                    ready_secs,
                    broken,
                    verdicts,
                    commands,
                },
            )
    }

    fn build(sc: &Scenario) -> Rollout {
        let mut extra = String::new();
        let mut field = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                extra.push_str(&format!("{name}: {v}\n"));
            }
        };
        field(
            "previewReplicaCount",
            sc.preview_count.map(|v| v.to_string()),
        );
        field(
            "autoPromotionEnabled",
            sc.auto_enabled.map(|v| v.to_string()),
        );
        field(
            "autoPromotionSeconds",
            sc.auto_seconds.map(|v| v.to_string()),
        );
        field(
            "scaleDownDelaySeconds",
            sc.scale_down_delay.map(|v| v.to_string()),
        );
        field(
            "abortScaleDownDelaySeconds",
            sc.abort_delay.map(|v| v.to_string()),
        );
        field(
            "scaleDownDelayRevisionLimit",
            sc.revision_limit.map(|v| v.to_string()),
        );
        if sc.pre {
            extra.push_str(PRE);
            extra.push('\n');
        }
        if sc.post {
            extra.push_str(POST);
            extra.push('\n');
        }
        let mut ro = build_rollout(sc.preview_service, &extra, sc.replicas);
        ro.spec.progress_deadline_seconds = Some(900);
        ro.spec.progress_deadline_abort = sc.deadline_abort;
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
            Cmd::Pause => crate::command::pause(&h.rollout),
            Cmd::Resume => crate::command::resume(&h.rollout),
            Cmd::Update => {
                h.pod_template_hash = "v3".into();
                return;
            }
        };
        patch.apply(&mut h.rollout, &mut h.status);
    }

    /// Drives the update to `v2` for six virtual hours. With `promote_pauses`, a user
    /// promotes a minute after every `BlueGreenPause`.
    fn drive(
        sc: &Scenario,
        persist: Persist,
        promote_pauses: bool,
        mut check: impl FnMut(&Harness, &PassRecord),
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
        let mut promote_at: Option<Timestamp> = None;
        loop {
            while cmds.first().is_some_and(|c| c.0 <= h.now) {
                let (_, c) = cmds.remove(0);
                apply_cmd(&mut h, c);
            }
            if promote_at.is_some_and(|t| t <= h.now) {
                promote_at = None;
                if h.status
                    .pause_condition(PauseReason::BlueGreenPause)
                    .is_some()
                {
                    apply_cmd(&mut h, Cmd::Promote);
                }
            }
            for _ in 0..64 {
                h.run_script(&mut script);
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
                check(&h, &rec);
                let quiet = rec.actions.is_empty() && rec.events.is_empty() && !rec.status_changed;
                records.push(rec);
                if quiet && !h.run_script(&mut script) {
                    break;
                }
            }
            if promote_pauses
                && promote_at.is_none()
                && h.status
                    .pause_condition(PauseReason::BlueGreenPause)
                    .is_some()
            {
                promote_at = Some(h.now.add_secs(60));
            }
            let next = [
                h.next_instant(&script),
                cmds.first().map(|c| c.0),
                promote_at,
            ]
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

    proptest! {
        #![proptest_config(ProptestConfig { cases: 192, .. ProptestConfig::default() })]

        /// After every decision is carried out, the ReplicaSet the active service selects
        /// has at least `spec.replicas` available pods (Argo switches only to a saturated
        /// ReplicaSet, and never scales down one a service or the status references);
        /// the status records the service's selector; the stable ReplicaSet stays at full
        /// size; no ReplicaSet is sized above `spec.replicas`; an aborted update points
        /// the active service at the stable ReplicaSet; the blue-green pause only appears
        /// when the spec asks for it.
        #[test]
        fn invariants_hold_at_every_decision(sc in scenario()) {
            let r = sc.replicas;
            let mut failures = Vec::new();
            drive(&sc, Persist::Normal, false, |h, rec| {
                let st = &rec.status;
                let active = h.cluster.service_selector(ACTIVE).unwrap_or("");
                match h.cluster.replica_set(active) {
                    Some(rs) if rs.available_replicas >= r => {}
                    other => failures.push(format!(
                        "active service on {active:?} ({other:?}) after {:?}", rec.actions)),
                }
                if st.blue_green.active_selector != active {
                    failures.push(format!("status active {:?} vs service {active:?}",
                        st.blue_green.active_selector));
                }
                if let Some(stable) = h.cluster.replica_set(&st.stable_rs)
                    && stable.spec_replicas != r {
                    failures.push(format!("stable scaled to {} by {:?}", stable.spec_replicas, rec.actions));
                }
                if let Some(rs) = h.cluster.replica_sets.iter().find(|rs| rs.spec_replicas > r) {
                    failures.push(format!("{rs:?} above spec.replicas"));
                }
                if st.abort && active != st.stable_rs {
                    failures.push(format!("aborted with active {active:?}"));
                }
                if st.pause_condition(PauseReason::BlueGreenPause).is_some() && !sc.needs_pause() {
                    failures.push("blue-green pause without autoPromotion settings".into());
                }
            });
            prop_assert!(failures.is_empty(), "{:?}", failures);
        }

        /// An abort returns the active service to the stable ReplicaSet and converges:
        /// the preview is scaled down `abortScaleDownDelaySeconds` after the abort (kept
        /// with 0), and then nothing is left to do.
        #[test]
        fn abort_converges_to_stable(mut sc in scenario(), at in 1..900i64) {
            sc.commands = vec![(at, Cmd::Abort)];
            sc.verdicts = vec![Verdict::Pass];
            sc.deadline_abort = false;
            let run = drive(&sc, Persist::Normal, false, |_, _| {});
            let h = &run.harness;
            if h.status.stable_rs == "v2" {
                // The update finished before the abort arrived: nothing to abort.
                prop_assert!(!h.status.abort);
                return Ok(());
            }
            prop_assert!(h.status.abort);
            prop_assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
            prop_assert!(h.status.message.starts_with("RolloutAborted: Rollout aborted update to revision 2"));
            prop_assert_eq!(h.cluster.service_selector(ACTIVE), Some("v1"));
            let stable = h.cluster.replica_set("v1").unwrap();
            prop_assert_eq!((stable.spec_replicas, stable.available_replicas), (sc.replicas, sc.replicas));
            let v2 = spec_of(h, "v2");
            if sc.abort_delay == Some(0) {
                prop_assert!(run.records.iter().all(|r| !r.actions.iter().any(scaled("v2", 0))));
            } else {
                prop_assert_eq!(v2, 0);
                let aborted = event_at(&run.records, "RolloutAborted").unwrap();
                let after: Vec<PassRecord> = run.records.iter().filter(|r| r.at >= aborted).cloned().collect();
                if let Some(down) = first_with(&after, scaled("v2", 0)) {
                    let delay = i64::from(sc.abort_delay.unwrap_or(30));
                    prop_assert_eq!(secs_between(aborted, down.at), delay);
                }
            }
            prop_assert_eq!(h.requeue_at, None, "an abort converges");
            prop_assert!(run.records.last().is_some_and(|r| r.actions.is_empty()));
        }

        /// Liveness: a healthy release with passing analyses is always promoted, with
        /// auto-promotion and with a user who promotes each blue-green pause.
        #[test]
        fn healthy_release_is_always_promoted(mut sc in scenario()) {
            sc.commands.clear();
            sc.broken = false;
            sc.verdicts = vec![Verdict::Pass];
            let run = drive(&sc, Persist::Normal, true, |_, _| {});
            let h = &run.harness;
            prop_assert_eq!(&h.status.stable_rs, "v2", "{:?}", h.status);
            prop_assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
            prop_assert_eq!(h.cluster.service_selector(ACTIVE), Some("v2"));
            if sc.preview_service {
                prop_assert_eq!(h.cluster.service_selector(PREVIEW), Some("v2"));
            }
            prop_assert_eq!(h.cluster.replica_set("v2").map(|rs| rs.available_replicas), Some(sc.replicas));
            prop_assert_eq!(spec_of(h, "v1"), 0);
            let pre_runs = runs_of(h, AnalysisRunKind::PrePromotion);
            let post_runs = runs_of(h, AnalysisRunKind::PostPromotion);
            prop_assert_eq!((pre_runs, post_runs), (usize::from(sc.pre), usize::from(sc.post)));
        }

        /// Crash safety: losing any one status write (after its actions ran) changes
        /// nothing about where the rollout ends, and a status that goes through JSON at
        /// every pass gives exactly the decisions of an uninterrupted run.
        #[test]
        fn replay_from_any_prefix(sc in scenario(), crash in 0..120usize) {
            let clean = drive(&sc, Persist::Normal, true, |_, _| {});
            let json = drive(&sc, Persist::JsonRoundTrip, true, |_, _| {});
            prop_assert_eq!(&clean.records, &json.records);
            let crashed = drive(&sc, Persist::DropWriteAt(crash), true, |_, _| {});
            let (a, b) = (&clean.harness, &crashed.harness);
            prop_assert_eq!(&a.status.stable_rs, &b.status.stable_rs);
            prop_assert_eq!(a.status.abort, b.status.abort);
            prop_assert_eq!(a.status.phase, b.status.phase);
            prop_assert_eq!(&a.status.message, &b.status.message);
            prop_assert_eq!(&a.status.blue_green, &b.status.blue_green);
            let specs = |h: &Harness| h.cluster.replica_sets.iter().map(|rs| (rs.pod_template_hash.clone(), rs.spec_replicas)).collect::<Vec<_>>();
            prop_assert_eq!(specs(a), specs(b));
            prop_assert_eq!(&a.cluster.services, &b.cluster.services);
        }
    }
}
