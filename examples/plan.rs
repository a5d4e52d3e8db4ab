//! Prints the step table of every `Rollout` in YAML files: weights, canary and stable
//! pods, pauses and gates per step, before anything is applied.
//!
//! ```text
//! cargo run -p rollout-examples --example plan -- examples/rollout.yaml [MORE.yaml ...]
//! ```
//!
//! Multi-document files are fine: every `kind: Rollout` document is planned and other
//! kinds are skipped. A manifest that Argo would reject is reported with the path of
//! each offending field (`spec.strategy.canary.steps[3].setWeight: must be 0..=100`) and
//! the exit status is 1; bad usage exits with 2.

#[path = "common/plan_file.rs"]
mod plan_file;

use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() || files.iter().any(|f| f == "-h" || f == "--help") {
        eprintln!("usage: plan FILE.yaml [FILE.yaml ...]");
        eprintln!("prints the canary step table of every Rollout in the files");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for (i, file) in files.iter().enumerate() {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {file}: {e}");
                failed = true;
                continue;
            }
        };
        let report = plan_file::plan_text(file, &text);
        if i > 0 && !report.output.is_empty() {
            println!();
        }
        print!("{}", report.output);
        for e in &report.errors {
            eprintln!("error: {e}");
        }
        failed |= !report.ok();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
