//! The blue-green machine: single `bluegreen::reconcile` decisions, and a fleet of
//! blue-green rollouts driven through a whole update in virtual time.
//!
//! ```text
//! cargo bench -p rollout-benches --bench bluegreen
//! ```
//!
//! The rollout has 10 pods behind `web-active` and a 3-pod preview behind `web-preview`
//! (see `common/bluegreen_scenario.rs`).
//!
//! - `bluegreen/noop/paused`: the manual update waits in its `BlueGreenPause`; the pass
//!   finds nothing to do (no action, no event, the status borrowed unchanged).
//! - `bluegreen/noop/healthy`: the deployed first revision resynced.
//! - `bluegreen/noop/pre_promotion_running`, `.../post_promotion_running`: the update
//!   waits on an analysis run.
//! - `bluegreen/switch/active_service`: the promoted update's new ReplicaSet has become
//!   saturated; the pass points `web-active` at it and starts the post-promotion run.
//!
//! Then a fleet: every rollout (`autoPromotionSeconds: 60`, a pre-promotion analysis
//! that succeeds after 30 s, no post-promotion analysis) starts from its first revision
//! deployed, gets a new pod template and is driven until the new revision is stable and
//! the old ReplicaSet scaled to 0 — the preview at 3 pods, the analysis, the pause, the
//! scale-up to 10, the switch, the 30 s scale-down delay. All rollouts share one virtual
//! clock: a queue ordered by wake-up time hands each rollout to the controller loop
//! (observe, `bluegreen::reconcile`, execute, persist, until a pass changes nothing).
//! A "decision" is one `reconcile` call, quiet ones included. The 100,000-rollout run is
//! reported once (wall time, decisions per second, the time per decision against the
//! ~3 ms Argo Rollouts' controller spends on a no-op reconcile); criterion measures
//! batches of `BATCH` rollouts with decisions as its throughput unit. Without `--bench`
//! (as under `cargo test --benches`) small fleets are run instead.

#[path = "../common/bluegreen_scenario.rs"]
#[allow(dead_code)]
mod scenario;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use rollout_core::bluegreen::reconcile;
use rollout_core::canary::Decision;
use rollout_core::sim::SimCluster;
use rollout_core::spec::Rollout;
use rollout_core::status::{AnalysisPhase, RolloutPhase, RolloutStatus};
use rollout_core::time::Timestamp;

/// The size of the reported fleet run.
const FLEET: usize = 100_000;
/// The rollouts per criterion iteration.
const BATCH: usize = 20_000;
/// Passes a visit may take before it gives up (a controller would requeue).
const MAX_PASSES_PER_VISIT: usize = 64;

fn bench_decisions(c: &mut Criterion) {
    let paused = scenario::paused();
    let healthy = scenario::healthy();
    let pre = scenario::pre_promotion_running();
    let post = scenario::post_promotion_running();
    let switch = scenario::about_to_switch();

    // Check the states are what the names say.
    for h in [&paused, &healthy, &pre, &post] {
        assert!(scenario::decide(h, h.now).is_noop(), "{:?}", h.status);
    }
    assert!(scenario::is_switch(&switch));
    assert!(scenario::decide(&switch, switch.now).status_changed());

    let mut g = c.benchmark_group("bluegreen");
    for (name, h) in [
        ("noop/paused", &paused),
        ("noop/healthy", &healthy),
        ("noop/pre_promotion_running", &pre),
        ("noop/post_promotion_running", &post),
        ("switch/active_service", &switch),
    ] {
        let observed = h.cluster.observed(&h.pod_template_hash);
        g.bench_function(name, |b| {
            b.iter(|| {
                reconcile(
                    black_box(&h.rollout),
                    black_box(&h.status),
                    black_box(&observed),
                    black_box(h.now),
                )
            });
        });
    }
    g.finish();
}

/// One rollout of the fleet: its persisted status and its (simulated) cluster objects.
#[derive(Clone)]
struct Member {
    status: RolloutStatus,
    cluster: SimCluster,
    requeue_at: Option<Timestamp>,
}

/// What a fleet run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FleetStats {
    decisions: u64,
    visits: u64,
    done: usize,
    virtual_seconds: i64,
}

/// `n` copies of the deployed first revision, now to be updated to the second.
fn fleet(n: usize) -> (Rollout, Vec<Member>, Timestamp) {
    let h = scenario::deployed(scenario::auto());
    let member = Member {
        status: h.status.clone(),
        cluster: h.cluster.clone(),
        requeue_at: None,
    };
    (h.rollout, vec![member; n], h.now)
}

/// The analysis controller: a run succeeds `ANALYSIS_SECONDS` after it started.
fn run_analysis(cluster: &mut SimCluster, now: Timestamp) {
    let SimCluster {
        runs,
        analysis_runs,
        ..
    } = cluster;
    // The simulator records a run in both lists, in the same order.
    for (run, state) in runs.iter().zip(analysis_runs.iter_mut()) {
        if !run.terminated
            && !state.phase.is_completed()
            && now >= run.started_at.add_secs(scenario::ANALYSIS_SECONDS)
        {
            state.phase = AnalysisPhase::Successful;
        }
    }
}

/// The next instant after `now` at which something can change for `m`.
fn next_instant(m: &Member, now: Timestamp) -> Option<Timestamp> {
    let analysis = m
        .cluster
        .runs
        .iter()
        .zip(&m.cluster.analysis_runs)
        .filter(|(r, s)| !r.terminated && !s.phase.is_completed())
        .map(|(r, _)| r.started_at.add_secs(scenario::ANALYSIS_SECONDS));
    [m.cluster.next_change(), m.requeue_at]
        .into_iter()
        .flatten()
        .chain(analysis)
        .filter(|t| *t > now)
        .min()
}

/// One visit: passes at `now` until one changes nothing. Returns the decisions made.
fn visit(rollout: &Rollout, m: &mut Member, now: Timestamp) -> u64 {
    let mut decisions = 0;
    for _ in 0..MAX_PASSES_PER_VISIT {
        m.cluster.advance(now);
        run_analysis(&mut m.cluster, now);
        let observed = m.cluster.observed(scenario::V2);
        let decision = reconcile(rollout, &m.status, &observed, now);
        decisions += 1;
        m.requeue_at = decision.requeue_at;
        if decision.is_noop() {
            break;
        }
        let Decision {
            status, actions, ..
        } = decision;
        let new_status = match status {
            Cow::Owned(s) => Some(s),
            Cow::Borrowed(_) => None,
        };
        m.cluster.apply(&actions, now);
        if let Some(s) = new_status {
            m.status = s;
        }
    }
    decisions
}

/// Whether `m` finished its update: the new revision stable and Healthy, the active
/// service on it, the old ReplicaSet at 0.
fn finished(m: &Member) -> bool {
    m.status.phase == Some(RolloutPhase::Healthy)
        && m.status.stable_rs == scenario::V2
        && m.cluster.service_selector(scenario::ACTIVE) == Some(scenario::V2)
        && m.cluster
            .replica_set(scenario::V1)
            .is_some_and(|rs| rs.spec_replicas == 0)
}

/// Drives every member to the end of its update.
fn run_fleet(rollout: &Rollout, members: &mut [Member], start: Timestamp) -> FleetStats {
    let mut stats = FleetStats::default();
    let mut queue: BinaryHeap<Reverse<(Timestamp, u32)>> = (0..members.len())
        .filter_map(|i| u32::try_from(i).ok())
        .map(|i| Reverse((start, i)))
        .collect();
    let mut last = start;
    while let Some(Reverse((now, i))) = queue.pop() {
        let m = &mut members[i as usize];
        stats.decisions += visit(rollout, m, now);
        stats.visits += 1;
        last = last.max(now);
        if let Some(t) = next_instant(m, now) {
            queue.push(Reverse((t, i)));
        }
    }
    stats.done = members.iter().filter(|m| finished(m)).count();
    stats.virtual_seconds = last.millis_since(start) / 1000;
    stats
}

/// Runs a fleet of `n` once and prints what it did and how fast.
fn report(n: usize) {
    let t = Instant::now();
    let (rollout, mut members, start) = fleet(n);
    let setup = t.elapsed();
    let t = Instant::now();
    let stats = run_fleet(&rollout, &mut members, start);
    let wall = t.elapsed();
    assert_eq!(
        stats.done, n,
        "every rollout ends Healthy on the new revision, the old one scaled to 0"
    );
    let per_decision = wall.as_secs_f64() / stats.decisions as f64;
    println!(
        "bluegreen fleet: {n} rollouts x blue-green update (preview 3/10, 30 s analysis, \
         60 s auto-promotion, 30 s scale-down delay): {} decisions ({:.1} per rollout) in \
         {} visits, {} s of virtual time",
        stats.decisions,
        stats.decisions as f64 / n as f64,
        stats.visits,
        stats.virtual_seconds
    );
    println!(
        "bluegreen fleet: wall time {:.3} s (+ {:.3} s to build the fleet): {:.0} decisions/s, \
         {:.0} ns per decision = 1/{:.0} of Argo's ~3 ms no-op reconcile",
        wall.as_secs_f64(),
        setup.as_secs_f64(),
        stats.decisions as f64 / wall.as_secs_f64(),
        per_decision * 1e9,
        scenario::ARGO_NOOP_RECONCILE_SECONDS / per_decision
    );
}

fn bench_fleet(c: &mut Criterion, batch: usize) {
    let (rollout, members, start) = fleet(batch);
    // The run is deterministic: count its decisions once for the throughput.
    let decisions = run_fleet(&rollout, &mut members.clone(), start).decisions;
    let mut g = c.benchmark_group("bluegreen_fleet");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(decisions));
    g.bench_function(format!("{batch}_rollouts_full_update"), |b| {
        b.iter_batched(
            || members.clone(),
            |mut m| run_fleet(&rollout, &mut m, start),
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    report(if benching { FLEET } else { 100 });
    let mut c = Criterion::default().configure_from_args();
    bench_decisions(&mut c);
    bench_fleet(&mut c, if benching { BATCH } else { 10 });
    c.final_summary();
}
