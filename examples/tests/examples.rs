//! Runs the logic of the `quickstart` and `plan` examples and checks their outcomes.

#[path = "../common/quickstart_sim.rs"]
#[allow(dead_code)]
mod quickstart_sim;
#[path = "../common/util.rs"]
mod util;

#[path = "../common/plan_file.rs"]
#[allow(dead_code)]
mod plan_file;

use quickstart_sim::{Entry, MANIFEST};
use rollout_core::status::{AnalysisPhase, RolloutPhase};

#[test]
fn quickstart_promotes_the_good_release_and_aborts_the_bad_one() {
    let q = quickstart_sim::run().expect("the quickstart runs");
    assert_eq!(q.updates.len(), 2);

    // 1. The healthy release is promoted: it is the stable, Healthy, with all 10 pods,
    //    and the old stable is scaled to zero.
    let good = &q.updates[0];
    assert_ne!(good.stable_hash, good.canary_hash);
    assert_eq!(good.status.stable_rs, good.canary_hash);
    assert_eq!(good.status.phase, Some(RolloutPhase::Healthy));
    assert!(!good.status.abort);
    let new = good.cluster.replica_set(&good.canary_hash).unwrap();
    assert_eq!((new.spec_replicas, new.available_replicas), (10, 10));
    let old = good.cluster.replica_set(&good.stable_hash).unwrap();
    assert_eq!((old.spec_replicas, old.available_replicas), (0, 0));
    // Three passing measurements, the last one deciding the run.
    let measurements: Vec<_> = good
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Measurement(m) => Some(m),
            Entry::Pass(_) => None,
        })
        .collect();
    assert_eq!(measurements.len(), 3);
    assert!(measurements.iter().all(|m| m.ok));
    assert_eq!(
        measurements[2].verdict.as_ref().map(|v| v.0),
        Some(AnalysisPhase::Successful)
    );
    // The 10% step ran 1 canary pod next to 9 stable ones, and the pause lasted 3m.
    let passes: Vec<_> = good
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Pass(p) => Some(p),
            Entry::Measurement(_) => None,
        })
        .collect();
    assert!(
        passes
            .iter()
            .any(|p| p.step.starts_with("2/5") && p.canary == (1, 1) && p.stable == (9, 9))
    );
    let paused = passes
        .iter()
        .find(|p| p.phase.starts_with("Paused"))
        .unwrap();
    let resumed = passes.iter().find(|p| p.step.starts_with("3/5")).unwrap();
    assert_eq!(resumed.at.millis_since(paused.at), 180_000);

    // 2. The bad release fails its analysis at the second failing measurement and is
    //    aborted: Degraded, the stable unchanged, every canary pod gone.
    let bad = &q.updates[1];
    assert_eq!(bad.stable_hash, good.canary_hash);
    assert_eq!(bad.status.stable_rs, bad.stable_hash);
    assert_eq!(bad.status.phase, Some(RolloutPhase::Degraded));
    assert!(bad.status.abort);
    assert!(
        bad.status
            .message
            .starts_with("RolloutAborted: Rollout aborted update to revision 3"),
        "{}",
        bad.status.message
    );
    let canary = bad.cluster.replica_set(&bad.canary_hash).unwrap();
    assert_eq!((canary.spec_replicas, canary.available_replicas), (0, 0));
    let stable = bad.cluster.replica_set(&bad.stable_hash).unwrap();
    assert_eq!((stable.spec_replicas, stable.available_replicas), (10, 10));
    let failed: Vec<_> = bad
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Measurement(m) if !m.ok => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[1].verdict.as_ref().map(|v| v.0),
        Some(AnalysisPhase::Failed)
    );
}

#[test]
fn quickstart_output_is_deterministic_and_readable() {
    let a = quickstart_sim::render(&quickstart_sim::run().unwrap());
    let b = quickstart_sim::render(&quickstart_sim::run().unwrap());
    assert_eq!(a, b);
    for needle in [
        "== Update 1: 1.0 -> 1.1",
        "Paused: CanaryPauseStep",
        "measurement 3/3: success-rate",
        "-> run Successful",
        "-> Healthy after",
        "== Update 2: 1.1 -> 1.2",
        "-> run Failed: Metric \"success-rate\" assessed Failed due to failed (2) > failureLimit (1)",
        "-> Degraded after",
    ] {
        assert!(a.contains(needle), "missing {needle:?} in\n{a}");
    }
}

#[test]
fn plan_of_the_sample_manifest() {
    let report = plan_file::plan_text("rollout.yaml", MANIFEST);
    assert!(report.ok(), "{:?}", report.errors);
    // The AnalysisTemplate and the Service are skipped.
    assert_eq!(report.plans.len(), 1);
    let (index, plan) = &report.plans[0];
    assert_eq!(*index, 0);
    let rows: Vec<(&str, i32, i32, i32)> = plan
        .rows
        .iter()
        .map(|r| {
            (
                r.step.as_str(),
                r.weight,
                r.canary_replicas,
                r.stable_replicas,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("setWeight: 10", 10, 1, 9),
            ("pause: 3m", 10, 1, 9),
            ("setWeight: 50", 50, 5, 5),
            ("analysis: success-rate", 50, 5, 5),
            ("setWeight: 100", 100, 10, 0),
            ("promoted", 100, 10, 0),
        ]
    );
    let table: Vec<&str> = report.output.lines().collect();
    assert!(
        table.iter().any(|l| l.starts_with("STEP  ACTION")),
        "{}",
        report.output
    );
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("2/5   pause: 3m") && l.ends_with("3m")),
        "{}",
        report.output
    );
}

const HEAD: &str = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: NAME
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: web, image: web:1}
  strategy:
";

fn manifest(name: &str, strategy: &str) -> String {
    format!("{}{strategy}", HEAD.replace("NAME", name))
}

#[test]
fn plan_reports_field_paths_and_keeps_going() {
    let text = [
        manifest(
            "ok",
            "    canary:\n      steps:\n      - setWeight: 25\n      - pause: {}\n",
        ),
        manifest(
            "bad-weight",
            "    canary:\n      steps:\n      - setWeight: 10\n      - setWeight: 150\n",
        ),
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n".to_string(),
        manifest("typo", "    canary:\n      steps:\n      - setWieght: 10\n"),
        manifest("bg", "    blueGreen:\n      activeService: web\n"),
    ]
    .join("---\n");
    let report = plan_file::plan_text("many.yaml", &text);
    assert!(!report.ok());
    assert_eq!(report.plans.len(), 1);
    assert_eq!(report.plans[0].1.name.as_deref(), Some("ok"));
    assert!(
        report.output.contains("# many.yaml: document 1"),
        "{}",
        report.output
    );
    assert_eq!(report.errors.len(), 2, "{:#?}", report.errors);
    assert!(
        report.errors[0].contains("Rollout bad-weight")
            && report.errors[0].contains("spec.strategy.canary.steps[1].setWeight"),
        "{}",
        report.errors[0]
    );
    assert!(
        report.errors[1].contains("document 4")
            && report.errors[1].contains("spec.strategy.canary.steps[0].setWieght"),
        "{}",
        report.errors[1]
    );
    // The blue-green rollout gets its stage table.
    assert_eq!(report.blue_green.len(), 1);
    assert_eq!(report.blue_green[0].1.active_service, "web");
    assert!(
        report.output.contains("switch web to the new ReplicaSet"),
        "{}",
        report.output
    );
}

#[test]
fn plan_of_a_file_without_rollouts_is_an_error() {
    let report = plan_file::plan_text("svc.yaml", "apiVersion: v1\nkind: Service\n");
    assert!(!report.ok());
    assert_eq!(
        report.errors,
        ["svc.yaml: no Rollout (argoproj.io) or Canary (flagger.app) document found"]
    );
}

#[test]
fn plan_never_panics_on_the_argo_corpus() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rollout-core/testdata/corpus/argo-rollouts"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut planned = 0;
    let mut files = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        files += 1;
        let report = plan_file::plan_text(&path.display().to_string(), &text);
        for (_, plan) in &report.plans {
            planned += 1;
            let last = plan.rows.last().unwrap();
            assert!(last.promoted);
            assert_eq!(last.canary_replicas, plan.replicas);
            for row in &plan.rows {
                assert!(row.canary_replicas >= 0 && row.stable_replicas >= 0);
                assert!((0..=plan.max_traffic_weight).contains(&row.weight));
            }
        }
    }
    assert!(
        files == 0 || planned > 0,
        "no corpus rollout could be planned"
    );
}

#[test]
fn plan_covers_flagger_canaries() {
    let text = "apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 20
";
    let report = plan_file::plan_text("canary.yaml", text);
    assert!(report.ok(), "{:?}", report.errors);
    let weights: Vec<i32> = report.flagger[0]
        .1
        .ticks
        .iter()
        .filter(|t| t.phase == "Progressing")
        .map(|t| t.canary)
        .collect();
    assert_eq!(weights, [0, 20, 40, 60]);
    assert!(
        report
            .output
            .contains("a healthy release is promoted after 6m"),
        "{}",
        report.output
    );
}

// ---- the quickstart's Flagger section ----------------------------------------------------

#[path = "../common/flagger_sim.rs"]
#[allow(dead_code)]
mod flagger_sim;

use flagger_sim::{Check, TickLine, Update};
use rollout_core::flagger::machine::{Action, Routes, ScaleTo};
use rollout_core::flagger::spec::{AlertSeverity, HookType, Strategy};
use rollout_core::flagger::status::CanaryPhase;

/// The ticks that did something.
fn shown(u: &Update) -> Vec<&TickLine> {
    u.ticks.iter().filter(|t| !t.noop).collect()
}

/// The phases of the ticks that did something, repeats collapsed.
fn phase_runs(u: &Update) -> Vec<CanaryPhase> {
    let mut phases: Vec<CanaryPhase> = shown(u).iter().filter_map(|t| t.status.phase).collect();
    phases.dedup();
    phases
}

/// The calls of the webhook `name` over the run: (tick time, answer).
fn hook_calls(u: &Update, name: &str) -> Vec<(i64, HookType, bool)> {
    u.ticks
        .iter()
        .flat_map(|t| {
            t.checks.iter().filter_map(move |c| match c {
                Check::Webhook {
                    name: n,
                    hook_type,
                    ok,
                } if n == name => Some((t.at.millis_since(u.started) / 1000, *hook_type, *ok)),
                _ => None,
            })
        })
        .collect()
}

fn metric_checks(t: &TickLine) -> Vec<bool> {
    t.checks
        .iter()
        .filter_map(|c| match c {
            Check::Metric { ok, .. } => Some(*ok),
            Check::Webhook { .. } => None,
        })
        .collect()
}

#[test]
fn flagger_quickstart_canary_is_a_valid_ab_test() {
    let c = flagger_sim::canary().expect("the canary parses and validates");
    assert_eq!(c.spec.strategy(), Strategy::ABTesting);
    let a = c.spec.analysis.as_ref().unwrap();
    assert_eq!(
        (a.interval_seconds(), a.threshold(), a.iterations()),
        (60, 2, 5)
    );
    assert_eq!(a.match_.len(), 2);
    assert_eq!(
        a.match_[1].headers["cookie"].regex.as_deref(),
        Some("^(.*?;)?(canary=always)(;.*)?$")
    );
}

#[test]
fn flagger_quickstart_promotes_the_good_release() {
    let q = flagger_sim::run().expect("the Flagger quickstart runs");
    assert_eq!(q.updates.len(), 2);
    assert_eq!(
        q.init.last().and_then(|t| t.status.phase),
        Some(CanaryPhase::Initialized)
    );
    let good = &q.updates[0];
    let hash = flagger_sim::template_hash(flagger_sim::GOOD.image);

    // Succeeded, with all traffic back on the primary, which runs the new image, and the
    // target scaled to zero.
    assert_eq!(good.status.phase, Some(CanaryPhase::Succeeded));
    assert_eq!(good.world.routes, Some(Routes::PRIMARY));
    let primary = good.world.primary.as_ref().unwrap();
    assert_eq!(primary.image, flagger_sim::GOOD.image);
    assert_eq!(primary.available(good.ticks.last().unwrap().at), 2);
    assert_eq!(
        (good.world.target.replicas, good.world.target.pods.len()),
        (0, 0)
    );
    assert_eq!(good.status.last_applied_spec, hash);
    assert_eq!(good.status.last_promoted_spec, hash);
    assert_eq!(good.status.failed_checks, 0);
    assert_eq!(good.status.conditions[0].status, "True");

    assert_eq!(
        phase_runs(good),
        [
            CanaryPhase::Progressing,
            CanaryPhase::WaitingPromotion,
            CanaryPhase::Promoting,
            CanaryPhase::Finalising,
            CanaryPhase::Succeeded,
        ]
    );
    // The iterations count up to analysis.iterations, one per tick; matching requests go
    // to the canary from the first analysed tick until the promotion.
    let progressing: Vec<&TickLine> = shown(good)
        .into_iter()
        .filter(|t| t.status.phase == Some(CanaryPhase::Progressing))
        .collect();
    let iterations: Vec<i32> = progressing.iter().map(|t| t.status.iterations).collect();
    assert_eq!(iterations, [0, 1, 2, 3, 4, 5]);
    assert!(
        progressing[1..]
            .iter()
            .all(|t| t.routes == Routes::new(0, 100, false))
    );
    // The pre-rollout acceptance test runs once, on the first analysed tick; the metrics
    // on every later one, all passing.
    assert_eq!(
        hook_calls(good, "acceptance-test"),
        [(75, HookType::PreRollout, true)]
    );
    assert!(metric_checks(progressing[1]).is_empty());
    let checked: Vec<Vec<bool>> = good
        .ticks
        .iter()
        .map(metric_checks)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        checked.len(),
        7,
        "iterations 2..=5, two ticks in WaitingPromotion and the one that promotes"
    );
    assert!(checked.iter().all(|c| c == &[true, true]));
    // One tick after the promotion the primary rollout is done; traffic shifts back in one
    // step, then the target is scaled down.
    let fin = shown(good)
        .into_iter()
        .find(|t| t.status.phase == Some(CanaryPhase::Finalising))
        .unwrap();
    assert_eq!(fin.routes, Routes::PRIMARY);
    let last = good.ticks.last().unwrap();
    assert!(last.actions.contains(&Action::ScaleTarget {
        replicas: ScaleTo::Zero
    }));
}

#[test]
fn flagger_quickstart_waits_for_promotion_approval_once() {
    let q = flagger_sim::run().unwrap();
    let good = &q.updates[0];
    // One WaitingPromotion episode, right before Promoting (checked in the phase runs).
    let runs = phase_runs(good);
    let at = runs
        .iter()
        .position(|p| *p == CanaryPhase::WaitingPromotion)
        .unwrap();
    assert_eq!(
        runs.iter()
            .filter(|p| **p == CanaryPhase::WaitingPromotion)
            .count(),
        1
    );
    assert_eq!(runs[at + 1], CanaryPhase::Promoting);
    // The gate says no at 06:15 (iterations 5/5 done): WaitingPromotion, which sets
    // iterations to analysis.iterations - 1; the next tick counts iteration 5 again
    // without asking the gate; the one after asks again, gets a yes and promotes.
    assert_eq!(
        hook_calls(good, flagger_sim::GATE),
        [
            (375, HookType::ConfirmPromotion, false),
            (495, HookType::ConfirmPromotion, true)
        ]
    );
    let waiting: Vec<&TickLine> = shown(good)
        .into_iter()
        .filter(|t| t.status.phase == Some(CanaryPhase::WaitingPromotion))
        .collect();
    let trace: Vec<(i64, i32)> = waiting
        .iter()
        .map(|t| (t.at.millis_since(good.started) / 1000, t.status.iterations))
        .collect();
    assert_eq!(trace, [(375, 4), (435, 5)]);
    let halts = good
        .ticks
        .iter()
        .flat_map(|t| &t.events)
        .filter(|e| e.message.contains("waiting for promotion approval approve"))
        .count();
    assert_eq!(halts, 1);
    let waiting_alerts: Vec<_> = good
        .world
        .alerts
        .iter()
        .filter(|(_, s, m)| {
            *s == AlertSeverity::Warn && m == "Canary promotion is waiting for approval."
        })
        .collect();
    assert_eq!(waiting_alerts.len(), 1);
    // The spec is copied to the primary once, on the tick the gate opened.
    let promotes: Vec<i64> = good
        .ticks
        .iter()
        .filter(|t| t.actions.contains(&Action::Promote))
        .map(|t| t.at.millis_since(good.started) / 1000)
        .collect();
    assert_eq!(promotes, [495]);
}

#[test]
fn flagger_quickstart_rolls_the_bad_release_back() {
    let q = flagger_sim::run().unwrap();
    let bad = &q.updates[1];
    let ticks = shown(bad);
    let threshold = 2;

    assert_eq!(bad.status.phase, Some(CanaryPhase::Failed));
    assert_eq!(
        phase_runs(bad),
        [CanaryPhase::Progressing, CanaryPhase::Failed]
    );
    // Each analysed tick fails its metrics: one failed check per tick, and the tick that
    // reaches the threshold still stays Progressing.
    let failing: Vec<&TickLine> = ticks
        .iter()
        .copied()
        .filter(|t| metric_checks(t).contains(&false))
        .collect();
    assert_eq!(failing.len(), threshold);
    let counts: Vec<i32> = failing.iter().map(|t| t.status.failed_checks).collect();
    assert_eq!(counts, [1, 2]);
    let reached = failing[threshold - 1];
    assert_eq!(reached.status.phase, Some(CanaryPhase::Progressing));
    assert!(
        reached
            .events
            .iter()
            .any(|e| { e.message == "Halt podinfo.test advancement success rate 96.88% < 99%" })
    );
    // The rollback comes on the next tick: routes back to the primary, target scaled to
    // zero, phase Failed with a fresh status (failedChecks written as 0, as Flagger's
    // SyncStatus does).
    let last = *ticks.last().unwrap();
    assert_eq!(last.at.millis_since(reached.at), 60_000);
    assert!(last.actions.contains(&Action::SetRoutes {
        primary: 100,
        canary: 0,
        mirrored: false
    }));
    assert!(last.actions.contains(&Action::ScaleTarget {
        replicas: ScaleTo::Zero
    }));
    assert!(
        last.events
            .iter()
            .any(|e| e.message == "Rolling back podinfo.test failed checks threshold reached 2")
    );
    assert!(bad.world.alerts.iter().any(|(_, s, m)| {
        *s == AlertSeverity::Error && m == "Failed checks threshold reached 2"
    }));
    assert_eq!(
        (
            bad.status.failed_checks,
            bad.status.iterations,
            bad.status.canary_weight
        ),
        (0, 0, 0)
    );
    assert_eq!(bad.status.conditions[0].status, "False");
    assert_eq!(bad.world.routes, Some(Routes::PRIMARY));
    assert_eq!(
        (bad.world.target.replicas, bad.world.target.pods.len()),
        (0, 0)
    );
    // The primary keeps the good release; the bad one is recorded as applied, not promoted.
    let primary = bad.world.primary.as_ref().unwrap();
    assert_eq!(primary.image, flagger_sim::GOOD.image);
    assert_eq!(
        bad.status.last_applied_spec,
        flagger_sim::template_hash(flagger_sim::BAD.image)
    );
    assert_eq!(
        bad.status.last_promoted_spec,
        flagger_sim::template_hash(flagger_sim::GOOD.image)
    );
    assert!(hook_calls(bad, flagger_sim::GATE).is_empty());
    assert!(
        !bad.ticks
            .iter()
            .any(|t| t.actions.contains(&Action::Promote))
    );
}

#[test]
fn flagger_quickstart_output_is_deterministic_and_readable() {
    let a = flagger_sim::render(&flagger_sim::run().unwrap());
    let b = flagger_sim::render(&flagger_sim::run().unwrap());
    assert_eq!(a, b);
    for needle in [
        "Flagger Canary podinfo.test: A/B testing on istio",
        "Initial deploy of podinfo 6.0.0: Initialized after 01:00",
        "== Release 1: 6.0.0 -> 6.0.1",
        "0/100 matching -> canary",
        "acceptance-test (pre-rollout) ok",
        "approve (confirm-promotion) no",
        "WaitingPromotion",
        "approve (confirm-promotion) yes",
        "-> Succeeded after 10:15",
        "== Release 2: 6.0.1 -> 6.0.2",
        "success-rate 96.88% FAILED",
        "WARNING Rolling back podinfo.test failed checks threshold reached 2",
        "-> Failed after 04:15",
    ] {
        assert!(a.contains(needle), "missing {needle:?} in\n{a}");
    }
}

// ---- the quickstart's blue-green section -------------------------------------------------

#[path = "../common/bluegreen_sim.rs"]
#[allow(dead_code)]
mod bluegreen_sim;

use rollout_core::canary::AnalysisRunKind;

/// Seconds between two instants.
fn secs_between(a: rollout_core::time::Timestamp, b: rollout_core::time::Timestamp) -> i64 {
    b.millis_since(a) / 1000
}

#[test]
fn bluegreen_quickstart_manifest_matches_the_scripted_templates() {
    let ro = bluegreen_sim::manifest_rollout().expect("the blue-green manifest parses");
    assert_eq!(ro.metadata.name.as_deref(), Some(bluegreen_sim::ROLLOUT));
    assert_eq!(ro.spec.replicas(), 5);
    let bg = ro.spec.strategy.blue_green.as_ref().unwrap();
    assert_eq!(bg.active_service, "web-active");
    assert_eq!(bg.preview_service.as_deref(), Some("web-preview"));
    assert_eq!(bg.preview_replica_count, Some(2));
    assert!(!bg.auto_promotion_enabled());
    assert_eq!(bg.scale_down_delay_seconds(), 30);
    assert_eq!(bg.abort_scale_down_delay_seconds(), 30);
    let name = |a: Option<&rollout_core::spec::RolloutAnalysis>| {
        a.map(|a| a.templates[0].template_name.clone())
    };
    assert_eq!(
        name(bg.pre_promotion_analysis.as_ref()).as_deref(),
        Some(bluegreen_sim::SMOKE_TEST.name)
    );
    assert_eq!(
        name(bg.post_promotion_analysis.as_ref()).as_deref(),
        Some(bluegreen_sim::SUCCESS_RATE.name)
    );
    // The scripted analysis controller uses what the AnalysisTemplates say.
    for (t, interval, success) in [
        (bluegreen_sim::SMOKE_TEST, "10s", "0.99"),
        (bluegreen_sim::SUCCESS_RATE, "30s", "0.95"),
    ] {
        let doc = bluegreen_sim::MANIFEST
            .split("\n---\n")
            .find(|d| {
                d.contains("kind: AnalysisTemplate") && d.contains(&format!("name: {}\n", t.name))
            })
            .unwrap();
        for line in [
            format!("- name: {}", t.metric),
            format!("interval: {interval}"),
            format!("count: {}", t.count),
            format!("failureLimit: {}", t.failure_limit),
            format!("successCondition: result[0] >= {success}"),
        ] {
            assert!(doc.contains(&line), "{} lacks {line:?}", t.name);
        }
        assert_eq!(t.threshold.to_string(), success);
        assert_eq!(format!("{}s", t.interval_seconds), interval);
    }
}

#[test]
fn bluegreen_quickstart_promotes_the_healthy_release() {
    let b = bluegreen_sim::run().expect("the blue-green quickstart runs");
    assert_eq!(b.initial_healthy_after, bluegreen_sim::POD_READY_SECONDS);
    assert_eq!(b.updates.len(), 2);
    let good = &b.updates[0];
    assert_eq!(good.old_hash, b.initial_hash);
    assert_ne!(good.old_hash, good.new_hash);

    // The outcome: promoted, Healthy, both services on the new revision, all 5 pods up,
    // the old set at 0.
    assert_eq!(good.status.stable_rs, good.new_hash);
    assert_eq!(good.status.phase, Some(RolloutPhase::Healthy));
    assert!(!good.status.abort);
    assert_eq!(
        good.cluster.service_selector("web-active"),
        Some(good.new_hash.as_str())
    );
    assert_eq!(
        good.cluster.service_selector("web-preview"),
        Some(good.new_hash.as_str())
    );
    let new = good.cluster.replica_set(&good.new_hash).unwrap();
    assert_eq!((new.spec_replicas, new.available_replicas), (5, 5));
    let old = good.cluster.replica_set(&good.old_hash).unwrap();
    assert_eq!((old.spec_replicas, old.available_replicas), (0, 0));

    // The preview: until the promotion, 2 pods behind web-preview while web-active stays
    // on the old set; the smoke test passes three times on them.
    let passes: Vec<_> = good.passes().collect();
    let promotions = good.promotions();
    assert_eq!(promotions.len(), 1, "one promote");
    let promoted = promotions[0];
    let before: Vec<_> = passes.iter().filter(|p| p.at < promoted).collect();
    assert!(before.len() > 3);
    assert!(before.iter().all(|p| {
        p.active == good.old_hash && p.preview == good.new_hash && p.old == (5, 5) && p.new.0 <= 2
    }));
    let smoke: Vec<_> = good
        .measurements()
        .filter(|m| m.kind == AnalysisRunKind::PrePromotion)
        .collect();
    assert_eq!(smoke.len(), 3);
    assert!(
        smoke
            .iter()
            .all(|m| m.ok && m.template.name == "smoke-test")
    );
    assert_eq!(
        smoke[2].verdict.as_ref().map(|v| v.0),
        Some(AnalysisPhase::Successful)
    );

    // The pause: after the smoke test, at 2/2 pods; the promote comes REVIEW_SECONDS later.
    let paused = good.event_at("RolloutPaused").unwrap();
    assert_eq!(paused, smoke[2].at);
    let at_pause = passes.iter().find(|p| p.at == paused).unwrap();
    assert_eq!(at_pause.stage, bluegreen_sim::Stage::Paused);
    assert_eq!(at_pause.new, (2, 2));
    assert_eq!(at_pause.phase, "Paused: BlueGreenPause");
    assert_eq!(promoted, paused.add_secs(bluegreen_sim::REVIEW_SECONDS));

    // The promote scales the preview to 5 at once; the switch waits for the 3 new pods.
    let scaled = passes.iter().find(|p| p.new.0 == 5).unwrap();
    assert_eq!(scaled.at, promoted);
    assert_eq!(scaled.active, good.old_hash);
    let switch = passes.iter().find(|p| p.active == good.new_hash).unwrap();
    assert_eq!(
        secs_between(promoted, switch.at),
        bluegreen_sim::POD_READY_SECONDS
    );
    assert_eq!(switch.new, (5, 5));
    assert!(switch.events.iter().any(|e| e.reason == "SwitchService"
        && e.message.contains("'web-active'")
        && e.message.ends_with(&format!("to '{}'", good.new_hash))));

    // Post-promotion: three passing measurements from the switch on, then the new set
    // becomes stable; the old one keeps its 5 pods until then.
    let post: Vec<_> = good
        .measurements()
        .filter(|m| m.kind == AnalysisRunKind::PostPromotion)
        .collect();
    assert_eq!(post.len(), 3);
    assert!(post.iter().all(|m| m.ok));
    assert_eq!(post[0].at, switch.at);
    let completed = good.event_at("RolloutCompleted").unwrap();
    assert_eq!(completed, post[2].at);
    assert!(
        passes
            .iter()
            .filter(|p| p.at < completed)
            .all(|p| p.old == (5, 5))
    );

    // The old set goes to 0 exactly scaleDownDelaySeconds (30 s) after the new one became
    // stable: as in Argo, it stays referenced as the stable set (and so kept) while the
    // post-promotion analysis runs.
    let down = passes.iter().find(|p| p.old.0 == 0).unwrap();
    assert_eq!(secs_between(completed, down.at), 30);
    assert_eq!(
        secs_between(switch.at, down.at),
        30 + bluegreen_sim::SUCCESS_RATE.interval_seconds * 2
    );
    assert_eq!(down.stage, bluegreen_sim::Stage::Promoted);
}

#[test]
fn bluegreen_quickstart_switches_the_bad_release_back() {
    let b = bluegreen_sim::run().unwrap();
    let (good, bad) = (&b.updates[0], &b.updates[1]);
    assert_eq!(bad.old_hash, good.new_hash);

    // The smoke test passes, the person promotes, web-active switches to the new set.
    let smoke: Vec<_> = bad
        .measurements()
        .filter(|m| m.kind == AnalysisRunKind::PrePromotion)
        .collect();
    assert_eq!(smoke.len(), 3);
    assert!(smoke.iter().all(|m| m.ok));
    assert_eq!(bad.promotions().len(), 1);
    let passes: Vec<_> = bad.passes().collect();
    let switch = passes.iter().find(|p| p.active == bad.new_hash).unwrap();

    // Production traffic fails it: two failing measurements fail the run.
    let post: Vec<_> = bad
        .measurements()
        .filter(|m| m.kind == AnalysisRunKind::PostPromotion)
        .collect();
    assert_eq!(post.len(), 2);
    assert!(post.iter().all(|m| !m.ok));
    assert_eq!(
        post[1].verdict,
        Some((
            AnalysisPhase::Failed,
            "Metric \"success-rate\" assessed Failed due to failed (2) > failureLimit (1)"
                .to_string()
        ))
    );

    // The abort: in the pass that sees the failure, web-active goes back to the old set.
    let aborted = bad.event_at("RolloutAborted").unwrap();
    assert_eq!(aborted, post[1].at);
    assert_eq!(
        secs_between(switch.at, aborted),
        bluegreen_sim::SUCCESS_RATE.interval_seconds
    );
    let back = passes
        .iter()
        .find(|p| p.at >= switch.at && p.active == bad.old_hash)
        .unwrap();
    assert_eq!(back.at, aborted);
    assert_eq!(back.stage, bluegreen_sim::Stage::Aborted);
    assert!(
        back.events.iter().any(|e| e.reason == "SwitchService"
            && e.message.ends_with(&format!("to '{}'", bad.old_hash)))
    );
    assert_eq!(
        bad.cluster.service_selector("web-active"),
        Some(bad.old_hash.as_str())
    );

    // Degraded with Argo's message; the stable set unchanged and at full size.
    assert_eq!(bad.status.phase, Some(RolloutPhase::Degraded));
    assert!(bad.status.abort);
    assert_eq!(bad.status.stable_rs, bad.old_hash);
    assert_eq!(
        bad.status.message,
        "RolloutAborted: Rollout aborted update to revision 3: PostPromotion analysis phase \
         failed: Metric \"success-rate\" assessed Failed due to failed (2) > failureLimit (1)"
    );
    let old = bad.cluster.replica_set(&bad.old_hash).unwrap();
    assert_eq!((old.spec_replicas, old.available_replicas), (5, 5));
    assert!(passes.iter().all(|p| p.old == (5, 5)));

    // The preview keeps its pods for abortScaleDownDelaySeconds (30 s), then goes to 0.
    let down = passes
        .iter()
        .find(|p| p.new.0 == 0 && p.at > switch.at)
        .unwrap();
    assert_eq!(secs_between(aborted, down.at), 30);
    let new = bad.cluster.replica_set(&bad.new_hash).unwrap();
    assert_eq!((new.spec_replicas, new.available_replicas), (0, 0));
}

#[test]
fn bluegreen_quickstart_output_is_deterministic_and_readable() {
    let a = bluegreen_sim::render(&bluegreen_sim::run().unwrap());
    let b = bluegreen_sim::render(&bluegreen_sim::run().unwrap());
    assert_eq!(a, b);
    for needle in [
        "Rollout web (5 pods), blue-green: web-active serves production",
        "switch web-active to the new ReplicaSet",
        "Initial deploy of ghcr.io/example/web:1.0: Healthy after 00:15",
        "== Blue-green update 1: 1.0 -> 1.1",
        "smoke-test measurement 3/3: pass-rate",
        "Paused: BlueGreenPause | Rollout is paused (BlueGreenPause)",
        "USER kubectl argo rollouts promote web  (status patch {\"status\":{\"pauseConditions\":null}})",
        "Switched selector for service 'web-active'",
        "Completed blue-green update",
        "-> Healthy after 03:20",
        "30s after the promotion",
        "== Blue-green update 2: 1.1 -> 1.2",
        "success-rate measurement 2/3: success-rate",
        "PostPromotion analysis phase failed",
        "-> Degraded after 02:50",
        "30s after the abort",
    ] {
        assert!(a.contains(needle), "missing {needle:?} in\n{a}");
    }
}

// ---- the quickstart's Istio section ------------------------------------------------------

#[path = "../common/istio_sim.rs"]
#[allow(dead_code)]
mod istio_sim;

#[test]
fn istio_section_moves_virtual_service_weights() {
    let q = istio_sim::run().expect("the Istio section runs");
    let good = &q.updates[0];
    assert_eq!(good.status.phase, Some(RolloutPhase::Healthy));
    // The weights as read back from the VirtualService, in order, without repeats.
    let mut seen: Vec<(i64, i64)> = Vec::new();
    for l in &good.lines {
        if seen.last() != Some(&l.vs_weights) {
            seen.push(l.vs_weights);
        }
    }
    assert_eq!(
        seen,
        [(100, 0), (95, 5), (75, 25), (50, 50), (0, 100), (100, 0)]
    );
    // The header route lives from the first step until the update completes.
    assert!(good.lines[0].header_route);
    assert!(!good.lines.last().unwrap().header_route);
    // Fields the router does not own are kept.
    assert_eq!(
        good.virtual_service["spec"]["http"][0]["retries"],
        q.initial_vs["spec"]["http"][0]["retries"]
    );
    assert_eq!(
        good.virtual_service["spec"]["gateways"],
        q.initial_vs["spec"]["gateways"]
    );

    let bad = &q.updates[1];
    assert_eq!(bad.status.phase, Some(RolloutPhase::Degraded));
    assert!(bad.status.abort);
    let last = bad.lines.last().unwrap();
    assert_eq!(last.vs_weights, (100, 0));
    assert!(!last.header_route);
    assert!(bad.lines.iter().any(|l| l.vs_weights == (75, 25)));
    assert!(!bad.lines.iter().any(|l| l.vs_weights == (50, 50)));
}

#[test]
fn plan_lists_the_route_patches_of_each_step() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rollout-istio.yaml"))
        .expect("manifest");
    let report = plan_file::plan_text("rollout-istio.yaml", &text);
    assert!(report.ok(), "{:?}", report.errors);
    let out = &report.output;
    assert!(out.contains("routes (what the routers send):"), "{out}");
    assert!(
        out.contains(
            "step 2    VirtualService default/shop: replace /spec/http/1/route/1/weight = 5"
        ),
        "{out}"
    );
    assert!(out.contains(
        "promoted  VirtualService default/shop: replace /spec/http/0/route/1/weight = 0"
    ));
    // Without the VirtualService in the file, the section says what is missing.
    let rollout_only = text.split("\n---\n").next().unwrap_or_default();
    let report = plan_file::plan_text("rollout-only.yaml", rollout_only);
    assert!(
        report
            .output
            .contains("routes: add VirtualService default/shop to the file")
    );
}
