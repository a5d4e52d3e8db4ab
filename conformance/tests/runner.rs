//! The runner itself: unknown kinds fail, the directory argument is honoured, both
//! envelopes are read, deviations are reported (and stale ones flagged), and every kind
//! of `replica_counts.json` has a working adapter (hand-made fixture cases).

use std::path::{Path, PathBuf};

use rollout_conformance::{Deviation, FileStatus, Outcome, run_dir};
use serde_json::{Value, json};

/// A scratch vector directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("rollout-conformance-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, rel: &str, content: &Value) {
        self.write_text(rel, &serde_json::to_string_pretty(content).expect("json"));
    }

    fn write_text(&self, rel: &str, content: &str) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create group dir");
        std::fs::write(path, content).expect("write vector file");
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An in-tree case (argo-rc-003), known to pass.
fn passing_case() -> Value {
    json!({
        "id": "ok-1",
        "kind": "basic_canary",
        "input": {
            "rollout": {"spec_replicas": 10, "max_surge": "20%", "max_unavailable": 0,
                        "steps": [{"set_weight": 20}], "traffic_routing": false,
                        "max_traffic_weight": null, "dynamic_stable_scale": false,
                        "min_pods_per_replica_set": null, "abort_scale_down_delay_seconds": null},
            "status": {"current_step_index": null, "stable_hash": "stable",
                       "current_pod_hash": "canary", "abort": false, "promote_full": false},
            "stable_rs": {"name": "stable", "spec_replicas": 10, "available_replicas": 10},
            "canary_rs": {"name": "canary", "spec_replicas": 0, "available_replicas": 0},
            "other_rss": [],
            "current_traffic_weights": null
        },
        "expected": {"canary": 2, "stable": 10}
    })
}

fn unknown_kind_case() -> Value {
    json!({"id": "new-1", "kind": "scale_to_the_moon", "input": {}, "expected": {"canary": 1}})
}

fn case_outcome<'r>(
    report: &'r rollout_conformance::RunReport,
    file: &str,
    id: &str,
) -> &'r Outcome {
    let f = report
        .files
        .iter()
        .find(|f| f.path() == file)
        .expect("file reported");
    match &f.status {
        FileStatus::Ran(cases) => {
            &cases
                .iter()
                .find(|c| c.id == id)
                .expect("case reported")
                .outcome
        }
        FileStatus::Unsupported => panic!("{file} was not run"),
        _ => panic!("unexpected status"),
    }
}

#[test]
fn unknown_kinds_fail_and_the_directory_argument_is_honoured() {
    let dir = TempDir::new("unknown-kind");
    dir.write(
        "argo/replica_counts.json",
        &json!([passing_case(), unknown_kind_case()]),
    );
    // A file no handler covers (a future area) is reported, not failed.
    dir.write("argo/zz_future_area.json", &json!([]));
    dir.write(
        "kayenta/zz_future_area.json",
        &json!({"description": "x", "cases": []}),
    );
    dir.write_text("argo/README.md", "not a vector file");

    let report = run_dir(dir.path(), &[]).expect("run");
    assert_eq!(
        report.lines(),
        [
            "conformance argo/replica_counts.json: 1 passed, 1 failed, 0 deviations",
            "conformance argo/zz_future_area.json: unsupported",
            "conformance kayenta/zz_future_area.json: unsupported",
        ]
    );
    assert!(!report.is_success());
    let failures = report.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .starts_with("argo/replica_counts.json new-1: unknown kind \"scale_to_the_moon\""),
        "{failures:?}"
    );
}

#[test]
fn deviations_are_reported_and_stale_entries_flagged() {
    let dir = TempDir::new("deviations");
    dir.write(
        "argo/replica_counts.json",
        &json!([passing_case(), unknown_kind_case()]),
    );
    let deviation = |id: &str| Deviation {
        file: "argo/replica_counts.json".into(),
        id: id.into(),
        reason: "we differ on purpose".into(),
    };

    let report = run_dir(dir.path(), &[deviation("new-1")]).expect("run");
    assert_eq!(
        report.lines(),
        ["conformance argo/replica_counts.json: 1 passed, 0 failed, 1 deviations"]
    );
    assert!(report.is_success());
    assert_eq!(
        case_outcome(&report, "argo/replica_counts.json", "new-1"),
        &Outcome::Deviation("we differ on purpose".into())
    );

    // A listed case that passes keeps the list honest by failing.
    let report = run_dir(dir.path(), &[deviation("new-1"), deviation("ok-1")]).expect("run");
    assert_eq!(
        report.lines(),
        ["conformance argo/replica_counts.json: 0 passed, 1 failed, 1 deviations"]
    );
    assert!(!report.is_success());

    // An entry naming no case of a file that was run is flagged as well.
    let report = run_dir(dir.path(), &[deviation("new-1"), deviation("gone-7")]).expect("run");
    assert_eq!(report.unmatched_deviations, [deviation("gone-7")]);
    assert!(!report.is_success());
}

#[test]
fn both_envelopes_and_broken_files() {
    let dir = TempDir::new("envelopes");
    // The Flagger/Kayenta envelope, for a file the runner supports.
    dir.write(
        "argo/rollout_phase.json",
        &json!({
            "description": "phase in the other envelope",
            "cases": [{
                "name": "paused by the user",
                "kind": "rollout_phase",
                "input": {
                    "spec": {"strategy": "canary", "spec_replicas": 1, "paused": true},
                    "status": {"updated_replicas": 1, "available_replicas": 1}
                },
                "expect": {"phase": "Paused", "message": "manually paused"}
            }, {
                "name": "no kind at all",
                "input": {},
                "expect": {"phase": "Healthy"}
            }]
        }),
    );
    dir.write_text("argo/replica_counts.json", "[{\"id\": ");
    let report = run_dir(dir.path(), &[]).expect("run");
    assert_eq!(
        report.lines(),
        [
            "conformance argo/replica_counts.json: 0 passed, 1 failed, 0 deviations",
            "conformance argo/rollout_phase.json: 1 passed, 1 failed, 0 deviations",
        ]
    );
}

#[test]
fn a_directory_without_groups_is_an_error() {
    let dir = TempDir::new("empty");
    assert!(run_dir(dir.path(), &[]).is_err());
}

#[test]
fn every_replica_count_kind_has_an_adapter() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let report = run_dir(&fixtures, &[]).expect("run");
    let failures = report.failures();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let kinds: std::collections::BTreeSet<String> = serde_json::from_str::<Vec<Value>>(
        &std::fs::read_to_string(fixtures.join("argo/replica_counts.json")).expect("read"),
    )
    .expect("json")
    .iter()
    .map(|c| c["kind"].as_str().expect("kind").to_string())
    .collect();
    assert_eq!(kinds.len(), 13, "{kinds:?}");
    assert_eq!(
        report.lines(),
        [format!(
            "conformance argo/replica_counts.json: {} passed, 0 failed, 0 deviations",
            report.passed()
        )]
    );
}

#[test]
fn the_in_tree_vectors_all_pass() {
    let report = run_dir(
        &rollout_conformance::in_tree_vectors(),
        &rollout_conformance::load_deviations(&rollout_conformance::in_tree_deviations())
            .expect("deviations"),
    )
    .expect("run");
    assert!(report.is_success(), "{}", report.failures().join("\n"));
    assert!(report.lines().contains(
        &"conformance argo/replica_counts.json: 32 passed, 0 failed, 0 deviations".to_string()
    ));
    assert!(report.lines().contains(
        &"conformance argo/rollout_phase.json: 11 passed, 0 failed, 0 deviations".to_string()
    ));
}
