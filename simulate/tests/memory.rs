//! Memory per in-flight rollout, measured with a counting allocator.

use std::alloc::System;
use std::path::Path;

use rollout_simulate::{RunOptions, Scenario, Simulation};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn heap_bytes() -> usize {
    let s = GLOBAL.stats();
    // stats_alloc already counts reallocations in the two totals.
    let live = s.bytes_allocated as i128 - s.bytes_deallocated as i128;
    usize::try_from(live.max(0)).unwrap_or(usize::MAX)
}

#[test]
fn memory_per_in_flight_rollout_does_not_grow_with_the_fleet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for file in ["error-spike.yaml", "bluegreen.yaml"] {
        let mut figures = Vec::new();
        let mut kinds = Vec::new();
        for n in [400, 1600] {
            let mut s = Scenario::from_file(&dir.join(file)).unwrap();
            s.rollouts = n;
            let sim = Simulation::new(s, &dir).unwrap();
            let r = sim.run(RunOptions {
                threads: 1,
                in_flight: 200,
                heap_bytes: Some(heap_bytes),
                ..RunOptions::default()
            });
            let per: Vec<f64> = r
                .policies
                .iter()
                .map(|p| p.perf.bytes_per_in_flight.unwrap())
                .collect();
            eprintln!("{file}, {n} releases: bytes per in-flight rollout {per:?}");
            figures.push(per);
            kinds = r.policies.iter().map(|p| p.kind).collect();
        }
        for ((small, large), kind) in figures[0].iter().zip(&figures[1]).zip(&kinds) {
            // The same in-flight count holds the same memory, however many rollouts ran
            // before (nothing accumulates across chunks) ...
            assert!(large / small < 1.3 && small / large < 1.3, "{figures:?}");
            // ... and it stays under 2 KB per rollout: 1.4 to 1.8 KB for the Argo
            // policies (statuses parked as bytes between visits), 0.66 KB for Flagger.
            let limit = if *kind == "flagger" { 1024.0 } else { 2048.0 };
            assert!(
                *small < limit && *large < limit,
                "{file} {kind}: {figures:?}"
            );
        }
    }
}
