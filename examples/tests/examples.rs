//! Runs the logic of the `quickstart` and `plan` examples and checks their outcomes.

#[path = "../common/quickstart_sim.rs"]
#[allow(dead_code)]
mod quickstart_sim;

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
