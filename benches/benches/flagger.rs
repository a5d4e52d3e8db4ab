//! Flagger's loop: single `flagger::machine::tick` calls, and a fleet of canaries driven
//! through a whole run in virtual time.
//!
//! ```text
//! cargo bench -p rollout-benches --bench flagger
//! ```
//!
//! The canary is a weighted one on Istio (stepWeight 10, maxWeight 50, interval 1m,
//! builtin metrics request-success-rate and request-duration, both passing).
//!
//! - `tick/noop/succeeded`: the canary after a successful run, its target unchanged: the
//!   machine's one genuine no-op (no action, no event, the status borrowed). A canary in
//!   a run never has a no-op tick: every analysis tick asks for its checks and moves a
//!   counter, waiting for readiness records a warning event, and suspend records an event.
//! - `tick/wait/canary_not_ready`: Progressing, the canary pods not ready yet: the
//!   retriable wait (one Warning event, status unchanged).
//! - `tick/advance/weight_10_to_20`: Progressing at weight 10, the metric results supplied:
//!   the round that moves the weight to 20 (new status, SetRoutes, one event).
//! - `tick/advance/weight_10_to_20_both_rounds`: the whole loop tick a caller runs: the
//!   round that asks for the metric checks, then the one above.
//!
//! Then the fleet: 100,000 canaries, each initialised on its first revision, get a new
//! one and are driven to Succeeded: the run start, the pre-rollout tick (weight 10), four
//! analysed weight steps (20 to 50), the promotion, the traffic shift back and the
//! finalisation. All canaries share one virtual clock; their tickers are spread over the
//! minute. A "tick" is one loop tick of one canary; a "call" is one `tick` call, check
//! rounds included. The run is reported once (wall time, calls per second, ns per call
//! against the ~3 ms Argo Rollouts' controller spends on a no-op reconcile), then
//! criterion measures batches of `BATCH` canaries with calls as its throughput unit.
//! Without `--bench` (as under `cargo test --benches`) a small fleet is run instead.

#[path = "../common/flagger_scenario.rs"]
#[allow(dead_code)]
mod flagger_scenario;
#[path = "../common/scenario.rs"]
#[allow(dead_code)]
mod scenario;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use flagger_scenario::{Member, V2};
use rollout_core::flagger::machine::{Readiness, Routes, tick};
use rollout_core::flagger::spec::Canary;
use rollout_core::flagger::status::CanaryPhase;
use rollout_core::time::Timestamp;

/// The size of the reported fleet run.
const FLEET: usize = 100_000;
/// The canaries per criterion iteration.
const BATCH: usize = 20_000;

fn bench_ticks(c: &mut Criterion) {
    let canary = flagger_scenario::canary();
    let results = flagger_scenario::passing();

    let (idle, idle_now) = flagger_scenario::succeeded(&canary);
    let idle_obs = idle.observed(idle_now);
    let d = tick(&canary, &idle.status, &idle_obs, idle_now);
    assert!(d.is_noop(), "an idle succeeded canary is a no-op: {d:?}");
    drop(d);

    let (at_10, now) = flagger_scenario::progressing_at_10(&canary);
    let mut waiting_obs = at_10.observed(now);
    waiting_obs.canary = Readiness::Waiting(
        "waiting for rollout to finish: 0 of 2 updated replicas are available".into(),
    );
    let d = tick(&canary, &at_10.status, &waiting_obs, now);
    assert!(!d.status_changed() && d.actions.is_empty() && d.events.len() == 1);
    drop(d);

    let request_obs = at_10.observed(now);
    let d = tick(&canary, &at_10.status, &request_obs, now);
    assert!(d.awaits_results() && !d.status_changed());
    drop(d);
    let mut results_obs = at_10.observed(now);
    results_obs.metrics = Some(&results);
    let d = tick(&canary, &at_10.status, &results_obs, now);
    assert!(d.status_changed() && !d.awaits_results());
    assert_eq!(d.routes(), Some(Routes::new(80, 20, false)));
    drop(d);

    let mut g = c.benchmark_group("tick");
    g.bench_function("noop/succeeded", |b| {
        b.iter(|| {
            tick(
                black_box(&canary),
                black_box(&idle.status),
                black_box(&idle_obs),
                black_box(idle_now),
            )
        });
    });
    g.bench_function("wait/canary_not_ready", |b| {
        b.iter(|| {
            tick(
                black_box(&canary),
                black_box(&at_10.status),
                black_box(&waiting_obs),
                black_box(now),
            )
        });
    });
    g.bench_function("advance/weight_10_to_20", |b| {
        b.iter(|| {
            tick(
                black_box(&canary),
                black_box(&at_10.status),
                black_box(&results_obs),
                black_box(now),
            )
        });
    });
    g.bench_function("advance/weight_10_to_20_both_rounds", |b| {
        b.iter(|| {
            let first = tick(
                black_box(&canary),
                black_box(&at_10.status),
                black_box(&request_obs),
                black_box(now),
            );
            let pending = first.awaits_results();
            drop(first);
            let second = tick(
                black_box(&canary),
                black_box(&at_10.status),
                black_box(&results_obs),
                black_box(now),
            );
            (pending, second)
        });
    });
    g.finish();
}

/// What a fleet run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FleetStats {
    /// Loop ticks.
    ticks: u64,
    /// `tick` calls, check rounds included.
    calls: u64,
    /// Canaries that ended Succeeded on [`V2`].
    succeeded: usize,
    /// Virtual seconds from the start to the last tick.
    virtual_seconds: i64,
}

/// `n` canaries initialised on the first revision with the second one applied, and the
/// time of the first tick of the run (each canary's ticker is offset by `i % 60` s).
fn fleet(canary: &Canary, n: usize) -> (Vec<Member>, Timestamp) {
    let (m, now) = flagger_scenario::deployed(canary);
    (vec![m; n], now)
}

/// Drives every member to the end of its run.
fn run_fleet(canary: &Canary, members: &mut [Member], start: Timestamp) -> FleetStats {
    let results = flagger_scenario::passing();
    let mut stats = FleetStats::default();
    let mut queue: BinaryHeap<Reverse<(Timestamp, u32)>> = (0..members.len())
        .filter_map(|i| u32::try_from(i).ok())
        .map(|i| Reverse((start.add_secs(i64::from(i % 60)), i)))
        .collect();
    let mut last = start;
    while let Some(Reverse((now, i))) = queue.pop() {
        let m = &mut members[i as usize];
        let (calls, noop) = m.tick(canary, &results, now);
        stats.ticks += 1;
        stats.calls += calls;
        last = last.max(now);
        let finished = !noop && m.status.phase == Some(CanaryPhase::Succeeded);
        if !finished && let Some(t) = m.requeue_at {
            queue.push(Reverse((t, i)));
        }
    }
    stats.succeeded = members
        .iter()
        .filter(|m| {
            m.status.phase == Some(CanaryPhase::Succeeded) && m.status.last_promoted_spec == V2
        })
        .count();
    stats.virtual_seconds = last.millis_since(start) / 1000;
    stats
}

/// Runs a fleet of `n` once and prints what it did and how fast.
fn report(canary: &Canary, n: usize) {
    let t = Instant::now();
    let (mut members, start) = fleet(canary, n);
    let setup = t.elapsed();
    let t = Instant::now();
    let stats = run_fleet(canary, &mut members, start);
    let wall = t.elapsed();
    assert_eq!(
        stats.succeeded, n,
        "every canary ends Succeeded on the new revision"
    );
    let secs = wall.as_secs_f64();
    let per_call = secs / stats.calls as f64;
    let per_tick = secs / stats.ticks as f64;
    println!(
        "flagger fleet: {n} canaries x stepWeight 10 to 50: {} ticks ({:.1} per canary), \
         {} machine calls ({:.1} per canary, check rounds included), {} s of virtual time",
        stats.ticks,
        stats.ticks as f64 / n as f64,
        stats.calls,
        stats.calls as f64 / n as f64,
        stats.virtual_seconds
    );
    println!(
        "flagger fleet: wall time {secs:.3} s (+ {:.3} s to build the fleet): {:.0} ticks/s \
         ({:.0} ns per tick), {:.0} calls/s ({:.0} ns per call = 1/{:.0} of Argo's ~3 ms \
         no-op reconcile)",
        setup.as_secs_f64(),
        stats.ticks as f64 / secs,
        per_tick * 1e9,
        stats.calls as f64 / secs,
        per_call * 1e9,
        scenario::ARGO_NOOP_RECONCILE_SECONDS / per_call
    );
}

fn bench_fleet(c: &mut Criterion, canary: &Canary, batch: usize) {
    let (members, start) = fleet(canary, batch);
    // The run is deterministic: count its calls once for the throughput.
    let calls = run_fleet(canary, &mut members.clone(), start).calls;
    let mut g = c.benchmark_group("flagger_fleet");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(calls));
    g.bench_function(format!("{batch}_canaries_to_succeeded"), |b| {
        b.iter_batched(
            || members.clone(),
            |mut m| run_fleet(canary, &mut m, start),
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let canary = flagger_scenario::canary();
    report(&canary, if benching { FLEET } else { 100 });
    let mut c = Criterion::default().configure_from_args();
    bench_ticks(&mut c);
    bench_fleet(&mut c, &canary, if benching { BATCH } else { 10 });
    c.final_summary();
}
