//! Counts the heap allocations of one `canary::reconcile` pass (not a timing benchmark).
//!
//! ```text
//! cargo bench -p rollout-benches --bench allocations
//! ```
//!
//! The goal is zero allocations for a pass that changes nothing: a controller resyncing
//! a fleet of paused or healthy rollouts does mostly such passes. The same is reported
//! for one `flagger::machine::tick` of an idle Flagger canary, and of a tick that moves
//! its weight, and for one `bluegreen::reconcile` pass of a blue-green rollout waiting at
//! each of its gates, and of the pass that switches its active service.

#[path = "../common/scenario.rs"]
#[allow(dead_code)]
mod scenario;

#[path = "../common/bluegreen_scenario.rs"]
#[allow(dead_code)]
mod bluegreen_scenario;

#[path = "../common/flagger_scenario.rs"]
#[allow(dead_code)]
mod flagger_scenario;

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
    flagger();
    blue_green();
}

/// The same for one `flagger::machine::tick`: the idle canary after a successful run
/// (the machine's no-op), and the round that moves the weight from 10 to 20.
fn flagger() {
    use rollout_core::flagger::machine::tick;

    let canary = flagger_scenario::canary();
    let (idle, now) = flagger_scenario::succeeded(&canary);
    let observed = idle.observed(now);
    let _ = tick(&canary, &idle.status, &observed, now);
    let (allocs, bytes, noop) = count(|| tick(&canary, &idle.status, &observed, now).is_noop());
    println!(
        "no-op Flagger tick (succeeded, target unchanged): {allocs} allocations, {bytes} bytes (no-op: {noop})"
    );
    let results = flagger_scenario::passing();
    let (at_10, now) = flagger_scenario::progressing_at_10(&canary);
    let mut observed = at_10.observed(now);
    observed.metrics = Some(&results);
    let (allocs, bytes, (changed, events)) = count(|| {
        let d = tick(&canary, &at_10.status, &observed, now);
        (d.status_changed(), d.events.len())
    });
    println!(
        "weight-advancing Flagger tick (10 -> 20, metric results supplied): {allocs} allocations, {bytes} bytes (status changed: {changed}, events: {events})"
    );
}

/// The same for one `bluegreen::reconcile` pass: the update waiting on each of its gates
/// and the resynced Healthy rollout (no-ops), and the pass that switches `web-active` to
/// the new ReplicaSet.
fn blue_green() {
    use bluegreen_scenario as bg;

    for (label, h) in [
        (
            "pre-promotion analysis running",
            bg::pre_promotion_running(),
        ),
        ("paused in BlueGreenPause", bg::paused()),
        (
            "switched, post-promotion analysis running",
            bg::post_promotion_running(),
        ),
        ("healthy", bg::healthy()),
    ] {
        let _ = bg::decide(&h, h.now);
        let (allocs, bytes, noop) = count(|| bg::decide(&h, h.now).is_noop());
        println!(
            "no-op blue-green reconcile ({label}): {allocs} allocations, {bytes} bytes (no-op: {noop})"
        );
    }
    let h = bg::about_to_switch();
    let _ = bg::decide(&h, h.now);
    let (allocs, bytes, (actions, events)) = count(|| {
        let d = bg::decide(&h, h.now);
        (d.actions.len(), d.events.len())
    });
    println!(
        "active-service-switching blue-green reconcile (promoted, new ReplicaSet saturated): {allocs} allocations, {bytes} bytes (actions: {actions}, events: {events}, switches: {})",
        bg::is_switch(&h)
    );
}
