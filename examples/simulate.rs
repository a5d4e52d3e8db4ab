//! Runs a fleet scenario: every policy over the same releases, in virtual time.
//!
//! ```text
//! cargo run --release -p rollout-examples --example simulate -- scenarios/error-spike.yaml
//! cargo run --release -p rollout-examples --example simulate -- scenarios/error-spike.yaml --threads 1 --out /tmp/sim
//! ```
//!
//! Prints a table per policy (detection rate, false-abort rate, time to promote and to
//! abort, requests served by bad versions, decisions per second, heap per in-flight
//! rollout) and writes `<out>/<scenario>.csv` (deterministic: the same seed gives the
//! same bytes), `<out>/<scenario>-perf.csv` (wall-clock figures) and `<out>/<scenario>.svg`
//! (the distributions). `--out` defaults to `target/simulate`. A progress bar goes to
//! stderr. Memory is measured with a counting global allocator: live heap above the
//! level before a policy's run, divided by the rollouts in flight, at the highest sample.

#[path = "common/simulate_run.rs"]
// The test reads the report; the example prints the text.
#[allow(dead_code)]
mod simulate_run;

use std::alloc::System;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use rollout_simulate::{Progress, RunOptions, Scenario};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes.
fn heap_bytes() -> usize {
    let s = GLOBAL.stats();
    // stats_alloc already counts reallocations in the two totals.
    let live = s.bytes_allocated as i128 - s.bytes_deallocated as i128;
    usize::try_from(live.max(0)).unwrap_or(usize::MAX)
}

struct Args {
    scenario: PathBuf,
    out: PathBuf,
    threads: usize,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut scenario = None;
    let mut out = PathBuf::from("target/simulate");
    let mut threads = 0;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().ok_or("--out needs a directory")?.into(),
            "--threads" => {
                threads = it
                    .next()
                    .and_then(|t| t.parse().ok())
                    .ok_or("--threads needs a number")?;
            }
            _ if scenario.is_none() && !a.starts_with("--") => scenario = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(Args {
        scenario: scenario.ok_or("usage: simulate <scenario.yaml> [--threads N] [--out DIR]")?,
        out,
        threads,
    })
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    // Read once here for the progress bar's policy names.
    let s = Scenario::from_file(&args.scenario)?;
    eprintln!(
        "{}: {} releases x {} policies (seed {})",
        s.name,
        s.rollouts,
        s.policies.len(),
        s.seed
    );
    let names: Vec<String> = s.policies.iter().map(|p| p.name.clone()).collect();
    let last = Mutex::new((usize::MAX, 0u64));
    let started = Instant::now();
    let bar = |p: Progress| {
        let Ok(mut last) = last.lock() else { return };
        let permille = p.done * 1000 / p.total.max(1);
        if last.0 == p.policy && last.1 == permille {
            return;
        }
        *last = (p.policy, permille);
        let filled = usize::try_from(p.done * 30 / p.total.max(1)).unwrap_or(30);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}/{}] {:<16} [{}{}] {:>5.1}% {:>8}/{} {:>6.0} s",
            p.policy + 1,
            p.policies,
            names.get(p.policy).map_or("", String::as_str),
            "#".repeat(filled),
            ".".repeat(30 - filled.min(30)),
            permille as f64 / 10.0,
            p.done,
            p.total,
            started.elapsed().as_secs_f64()
        );
        if p.done == p.total {
            let _ = writeln!(err);
        }
    };
    let outputs = simulate_run::simulate(
        &args.scenario,
        &args.out,
        RunOptions {
            threads: args.threads,
            heap_bytes: Some(heap_bytes),
            progress: Some(&bar),
            ..RunOptions::default()
        },
    )?;
    println!();
    print!("{}", outputs.text);
    let [csv, perf, svg] = &outputs.files;
    println!(
        "wrote {}, {} and {}",
        csv.display(),
        perf.display(),
        svg.display()
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("simulate: {e}");
        std::process::exit(1);
    }
}
