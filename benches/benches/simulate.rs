//! The fleet simulator's hot loop: batches of releases through each policy of the
//! shipped `error-spike` scenario, on one thread.
//!
//! ```text
//! cargo bench -p rollout-benches --bench simulate
//! ```
//!
//! Each iteration drives `BATCH` releases from the update to their promotion or abort:
//! the machine calls, the analysis runs (conditions or the judge) and the metric
//! streams. Throughput is counted in decisions (machine calls). Without `--bench` (as
//! under `cargo test --benches`) a tiny batch is run once.

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use rollout_simulate::{RunOptions, Scenario, Simulation};

/// Releases per criterion iteration.
const BATCH: u64 = 2_000;

fn simulation(rollouts: u64, policy: &str) -> Simulation {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut s = Scenario::from_file(&dir.join("error-spike.yaml")).expect("the scenario loads");
    s.rollouts = rollouts;
    s.policies.retain(|p| p.name == policy);
    Simulation::new(s, &dir).expect("the manifests load")
}

fn one_thread() -> RunOptions<'static> {
    RunOptions {
        threads: 1,
        ..RunOptions::default()
    }
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let batch = if benching { BATCH } else { 20 };
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("simulate");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(if benching { 15 } else { 1 }));
    for policy in ["argo-threshold", "flagger-range", "kayenta-judge"] {
        let sim = simulation(batch, policy);
        // The run is deterministic: count its decisions once for the throughput.
        let decisions: u64 = sim
            .run(one_thread())
            .policies
            .iter()
            .map(|p| p.summary.decisions)
            .sum();
        g.throughput(Throughput::Elements(decisions));
        g.bench_function(format!("{policy}_{batch}_releases"), |b| {
            b.iter(|| sim.run(one_thread()));
        });
    }
    g.finish();
    c.final_summary();
}
