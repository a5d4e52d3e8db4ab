//! One `canary::reconcile` decision, for a 10-step basic canary of 10 pods.
//!
//! ```text
//! cargo bench -p rollout-benches --bench reconcile
//! ```
//!
//! - `noop/paused`: the update waits in the 1-minute pause of step 2/10; the pass finds
//!   nothing to do (no action, no event, the status borrowed unchanged).
//! - `noop/healthy`: a fully promoted rollout resynced.
//! - `advance/pause_ends`: the same paused state once the pause is over: the pass
//!   completes the step (a new status, one event).
//! - `noop/paused_cached_hash`: `noop/paused` with the step hash kept by the caller
//!   (`Observed::steps_hash`), as a controller does per spec generation.
//! - `parts/step_hash_10_steps`: the step hash a pass computes when the caller does not
//!   keep it (part of the first three).
//!
//! Argo Rollouts' controller logs about 3 ms per no-op reconcile; divide to compare.

#[path = "../common/scenario.rs"]
#[allow(dead_code)]
mod scenario;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rollout_core::canary::reconcile;

fn bench_reconcile(c: &mut Criterion) {
    let paused = scenario::paused_at_step_2();
    let mut healthy = scenario::deployed();
    healthy.pod_template_hash = scenario::V1.to_string();
    let end_of_pause = paused.now.add_secs(60);

    // Check the states are what the names say.
    assert!(scenario::decide(&paused, paused.now).is_noop());
    assert!(scenario::decide(&healthy, healthy.now).is_noop());
    let advancing = scenario::decide(&paused, end_of_pause);
    assert!(advancing.status_changed());
    assert_eq!(advancing.status.current_step_index, Some(2));
    drop(advancing);

    let mut g = c.benchmark_group("reconcile");
    for (name, h, now, cached) in [
        ("noop/paused", &paused, paused.now, false),
        ("noop/paused_cached_hash", &paused, paused.now, true),
        ("noop/healthy", &healthy, healthy.now, false),
        ("advance/pause_ends", &paused, end_of_pause, false),
    ] {
        let mut observed = h.cluster.observed(&h.pod_template_hash);
        if cached {
            let steps = &h.rollout.spec.strategy.canary.as_ref().unwrap().steps;
            observed.steps_hash = Some(rollout_core::canary::steps_hash(steps));
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                reconcile(
                    black_box(&h.rollout),
                    black_box(&h.status),
                    black_box(&observed),
                    black_box(now),
                )
            });
        });
    }
    g.finish();

    // What a pass costs besides its decisions: the step hash it recomputes to notice
    // edited steps (the steps serialized as JSON into FNV-1a), and the replica arithmetic.
    let mut g = c.benchmark_group("parts");
    let steps = &paused.rollout.spec.strategy.canary.as_ref().unwrap().steps;
    g.bench_function("step_hash_10_steps", |b| {
        b.iter(|| rollout_core::hash::fnv_hash(black_box(steps)));
    });
    g.finish();
}

criterion_group!(benches, bench_reconcile);
criterion_main!(benches);
