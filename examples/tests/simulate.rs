//! Runs the `simulate` example's work on a small copy of a shipped scenario and checks
//! its outputs.

#[path = "../common/simulate_run.rs"]
mod simulate_run;

use std::path::Path;

use rollout_simulate::RunOptions;

#[test]
fn simulate_writes_table_csv_and_plot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("rollout-simulate-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A small copy of the shipped scenario, its manifests found from the copy.
    let text = std::fs::read_to_string(root.join("scenarios/error-spike.yaml")).unwrap();
    let manifests = root.join("scenarios/manifests");
    let text = text
        .replace("rollouts: 20000", "rollouts: 150")
        .replace("manifests/", &format!("{}/", manifests.display()));
    let scenario = dir.join("small.yaml");
    std::fs::write(&scenario, text).unwrap();
    let out = simulate_run::simulate(&scenario, &dir, RunOptions::default()).unwrap();
    for policy in ["argo-threshold", "flagger-range", "kayenta-judge"] {
        assert!(out.text.contains(policy), "{}", out.text);
    }
    assert!(out.text.contains("450 rollouts"), "{}", out.text);
    let [csv, perf, svg] = &out.files;
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv, out.report.to_csv());
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains(",kayenta-judge,argo,150,"), "{csv}");
    assert_eq!(std::fs::read_to_string(perf).unwrap().lines().count(), 4);
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("kayenta-judge"));
    let _ = std::fs::remove_dir_all(&dir);
}
