//! The conformance run: every case of every vector file in `$CONFORMANCE_DIR` (or the
//! in-tree `vectors/`), one summary line per file. Fails when any case failed.
//!
//! This is a `harness = false` test so that the summary lines are always printed.

use std::process::ExitCode;

use rollout_conformance::{
    FileStatus, Outcome, conformance_dir, in_tree_deviations, load_deviations, run_dir,
};

fn main() -> ExitCode {
    // Test runners that list tests first (e.g. nextest) get the one test there is.
    if std::env::args().any(|a| a == "--list") {
        println!("vectors: test");
        return ExitCode::SUCCESS;
    }
    let dir = conformance_dir();
    let deviations = match load_deviations(&in_tree_deviations()) {
        Ok(d) => d,
        Err(e) => {
            println!("conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match run_dir(&dir, &deviations) {
        Ok(r) => r,
        Err(e) => {
            println!("conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("conformance vectors: {}", dir.display());
    for line in report.lines() {
        println!("{line}");
    }
    for file in &report.files {
        if let FileStatus::Ran(cases) = &file.status {
            for case in cases {
                if let Outcome::Deviation(reason) = &case.outcome {
                    println!("deviation {} {}: {reason}", file.path(), case.id);
                }
            }
        }
    }
    for failure in report.failures() {
        println!("FAILED {failure}");
    }
    for d in &report.unmatched_deviations {
        println!(
            "FAILED deviations.json lists {} {} but that file has no such case",
            d.file, d.id
        );
    }
    println!(
        "conformance: {} passed, {} failed",
        report.passed(),
        report.failed() + report.unmatched_deviations.len()
    );
    if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
