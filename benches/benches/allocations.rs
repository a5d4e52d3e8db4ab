//! Counts the heap allocations of one `canary::reconcile` pass (not a timing benchmark).
//!
//! ```text
//! cargo bench -p rollout-benches --bench allocations
//! ```
//!
//! The goal is zero allocations for a pass that changes nothing: a controller resyncing
//! a fleet of paused or healthy rollouts does mostly such passes.

#[path = "../common/scenario.rs"]
#[allow(dead_code)]
mod scenario;

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations (and bytes) made while `f` runs, and what `f` returned.
fn count<T>(f: impl FnOnce() -> T) -> (usize, usize, T) {
    let region = Region::new(GLOBAL);
    let out = f();
    let stats = region.change();
    (
        stats.allocations + stats.reallocations,
        stats.bytes_allocated,
        out,
    )
}

fn main() {
    let paused = scenario::paused_at_step_2();
    let mut healthy = scenario::deployed();
    healthy.pod_template_hash = scenario::V1.to_string();

    for (label, h) in [("paused at step 2/10", &paused), ("healthy", &healthy)] {
        // Warm up lazily initialised statics first.
        let _ = scenario::decide(h, h.now);
        let (allocs, bytes, noop) = count(|| scenario::decide(h, h.now).is_noop());
        println!("no-op reconcile ({label}): {allocs} allocations, {bytes} bytes (no-op: {noop})");
    }
    let end_of_pause = paused.now.add_secs(60);
    let (allocs, bytes, changed) = count(|| {
        let d = scenario::decide(&paused, end_of_pause);
        (d.status_changed(), d.events.len())
    });
    println!(
        "step-advancing reconcile (pause of step 2/10 ends): {allocs} allocations, {bytes} bytes (status changed: {}, events: {})",
        changed.0, changed.1
    );
}
