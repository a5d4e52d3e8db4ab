//! Runs the `simulate` example on a small copy of a shipped scenario and checks its
//! outputs.

use std::path::Path;
use std::process::Command;

#[test]
fn simulate_example_writes_table_csv_and_plot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("rollout-simulate-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A small copy of the shipped scenario, with manifests found from its directory.
    let text = std::fs::read_to_string(root.join("scenarios/error-spike.yaml")).unwrap();
    let manifests = root.join("scenarios/manifests");
    let text = text
        .replace("rollouts: 20000", "rollouts: 300")
        .replace("manifests/", &format!("{}/", manifests.display()));
    let scenario = dir.join("small.yaml");
    std::fs::write(&scenario, text).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "simulate", "--"])
        .arg(&scenario)
        .args(["--threads", "2", "--out"])
        .arg(&dir)
        .current_dir(&root)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for policy in ["argo-threshold", "flagger-range", "kayenta-judge"] {
        assert!(stdout.contains(policy), "{stdout}");
    }
    let csv = std::fs::read_to_string(dir.join("error-spike.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let svg = std::fs::read_to_string(dir.join("error-spike.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("kayenta-judge"));
    let _ = std::fs::remove_dir_all(&dir);
}
