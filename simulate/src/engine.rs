//! The fleet engine: chunks of rollouts driven through one policy in virtual time, on a
//! pool of worker threads.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use rollout_core::time::Timestamp;

use crate::model::{Release, Stream};

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum End {
    /// The new version became the stable one.
    Promoted,
    /// The rollout was aborted (Argo) or rolled back (Flagger).
    Aborted,
    /// Neither within the scenario's `maxMinutes` (or nothing more could happen).
    Stalled,
}

impl End {
    /// `promoted`, `aborted`, `stalled`.
    pub fn as_str(self) -> &'static str {
        match self {
            End::Promoted => "promoted",
            End::Aborted => "aborted",
            End::Stalled => "stalled",
        }
    }
}

/// What happened to one release under one policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The release was bad.
    pub bad: bool,
    /// How it ended.
    pub end: End,
    /// Seconds of virtual time from the update to the promotion (stable switched to the
    /// new version) or to the abort decision; for a stalled rollout, to when it stopped.
    pub seconds: u32,
    /// Requests the new version served from the update to the end of the rollout
    /// (request rate times its share of traffic, integrated over seconds).
    pub exposure: f64,
    /// Machine calls (`reconcile` / `tick`, quiet ones included).
    pub decisions: u32,
    /// Metric measurements answered.
    pub measurements: u32,
}

impl Outcome {
    /// A placeholder, overwritten when the rollout ends.
    pub(crate) const EMPTY: Outcome = Outcome {
        bad: false,
        end: End::Stalled,
        seconds: 0,
        exposure: 0.0,
        decisions: 0,
        measurements: 0,
    };
}

/// What every driver keeps per rollout besides its machine state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Track {
    pub(crate) start: Timestamp,
    pub(crate) last: Timestamp,
    /// Share of traffic (0..1) the new version serves since `last`.
    pub(crate) share: f64,
    pub(crate) exposure: f64,
    pub(crate) decisions: u32,
    pub(crate) decided: Option<(End, Timestamp)>,
}

impl Track {
    pub(crate) fn new(start: Timestamp) -> Track {
        Track {
            start,
            last: start,
            share: 0.0,
            exposure: 0.0,
            decisions: 0,
            decided: None,
        }
    }

    /// Adds the traffic served since the last visit.
    pub(crate) fn advance(&mut self, now: Timestamp, requests_per_second: f64) {
        let secs = now.millis_since(self.last) as f64 / 1000.0;
        if secs > 0.0 {
            self.exposure += self.share * requests_per_second * secs;
            self.last = now;
        }
    }

    pub(crate) fn decide(&mut self, end: End, now: Timestamp) {
        if self.decided.is_none() {
            self.decided = Some((end, now));
        }
    }

    pub(crate) fn outcome(&self, stream: &Stream, now: Timestamp) -> Outcome {
        let (end, at) = self.decided.unwrap_or((End::Stalled, now));
        Outcome {
            bad: stream.release.bad,
            end,
            seconds: u32::try_from(at.millis_since(self.start) / 1000).unwrap_or(u32::MAX),
            exposure: self.exposure,
            decisions: self.decisions,
            measurements: stream.answered,
        }
    }
}

/// A policy's machine and world, per rollout.
pub(crate) trait Driver: Sync {
    /// One rollout's state.
    type Member;
    /// Per-worker scratch (caches shared by the rollouts of a chunk).
    type Cache: Default;
    /// When the update starts (the same for every rollout).
    fn start(&self) -> Timestamp;
    /// The state of a rollout about to be updated to `release`.
    fn member(&self, release: Release, stream: Stream) -> Self::Member;
    /// One visit at `now`: observe, decide, execute until nothing changes.
    fn visit(&self, m: &mut Self::Member, now: Timestamp, cache: &mut Self::Cache);
    /// The next instant something can change, or `None` when the rollout is over.
    fn next(&self, m: &Self::Member, now: Timestamp) -> Option<Timestamp>;
    /// Its outcome, when it is over at `now`.
    fn outcome(&self, m: &Self::Member, now: Timestamp) -> Outcome;
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Index of the policy being run.
    pub policy: usize,
    /// Policies in all.
    pub policies: usize,
    /// Rollouts of this policy that ended.
    pub done: u64,
    /// Rollouts of this policy in all.
    pub total: u64,
}

/// How to run a simulation (none of it changes the results).
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Worker threads (0: the machine's parallelism).
    pub threads: usize,
    /// Rollouts a worker holds at once (0: the scenario's `inFlight`).
    pub in_flight: usize,
    /// Live heap bytes of the process (a counting allocator), to report memory per
    /// in-flight rollout.
    pub heap_bytes: Option<fn() -> usize>,
    /// Called as rollouts end (from worker threads).
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("threads", &self.threads)
            .field("in_flight", &self.in_flight)
            .field("heap_bytes", &self.heap_bytes.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Wall-clock figures of one policy's run (these vary from run to run).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Perf {
    /// Wall time of the policy's run.
    pub wall_seconds: f64,
    /// Machine calls per wall second.
    pub decisions_per_second: f64,
    /// Worker threads.
    pub threads: usize,
    /// Most rollouts in flight at once (over all workers).
    pub peak_in_flight: u64,
    /// The highest live heap above the level before the run (sampled every 256
    /// visits per worker and when a chunk is fully built), divided by the most rollouts
    /// in flight at once (needs [`RunOptions::heap_bytes`]). Includes the engine's own
    /// per-rollout overhead (the chunk's member slots, the wake-up queue).
    pub bytes_per_in_flight: Option<f64>,
}

struct Shared<'a> {
    next_chunk: AtomicUsize,
    done: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    heap_peak: AtomicUsize,
    baseline: usize,
    opts: RunOptions<'a>,
    policy: usize,
    policies: usize,
    total: u64,
}

impl Shared<'_> {
    fn sample_heap(&self) {
        let Some(probe) = self.opts.heap_bytes else {
            return;
        };
        let heap = probe().saturating_sub(self.baseline);
        self.heap_peak.fetch_max(heap, Ordering::Relaxed);
    }

    fn report_progress(&self) {
        if let Some(p) = self.opts.progress {
            p(Progress {
                policy: self.policy,
                policies: self.policies,
                done: self.done.load(Ordering::Relaxed),
                total: self.total,
            });
        }
    }
}

/// Runs releases `0..n` through `driver`; outcomes in release order.
pub(crate) fn run_policy<D: Driver>(
    driver: &D,
    releases: &(dyn Fn(u32) -> (Release, Stream) + Sync),
    n: u32,
    max_seconds: i64,
    chunk: usize,
    opts: RunOptions<'_>,
    (policy, policies): (usize, usize),
) -> (Vec<Outcome>, Perf) {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };
    let n_usize = n as usize;
    // Several chunks per thread balance the load; the split never changes the results.
    let chunk = chunk.min(n_usize.div_ceil(threads * 4)).max(1);
    let chunks = n_usize.div_ceil(chunk);
    let mut outcomes = vec![Outcome::EMPTY; n_usize];
    let shared = Shared {
        next_chunk: AtomicUsize::new(0),
        done: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        peak_in_flight: AtomicU64::new(0),
        heap_peak: AtomicUsize::new(0),
        baseline: opts.heap_bytes.map_or(0, |p| p()),
        opts,
        policy,
        policies,
        total: u64::from(n),
    };
    let started = Instant::now();
    let slots: Vec<Mutex<&mut [Outcome]>> = outcomes.chunks_mut(chunk).map(Mutex::new).collect();
    let decisions = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.min(chunks).max(1) {
            s.spawn(|| {
                let mut cache = D::Cache::default();
                loop {
                    let c = shared.next_chunk.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks {
                        break;
                    }
                    let Ok(mut slot) = slots[c].lock() else {
                        break;
                    };
                    let first = c * chunk;
                    let d = run_chunk(
                        driver,
                        releases,
                        first,
                        &mut slot,
                        max_seconds,
                        &shared,
                        &mut cache,
                    );
                    decisions.fetch_add(d, Ordering::Relaxed);
                }
            });
        }
    });
    drop(slots);
    let wall = started.elapsed().as_secs_f64();
    let decisions = decisions.into_inner();
    let heap_peak = shared.heap_peak.load(Ordering::Relaxed);
    let peak_in_flight = shared.peak_in_flight.load(Ordering::Relaxed);
    let perf = Perf {
        wall_seconds: wall,
        decisions_per_second: if wall > 0.0 {
            decisions as f64 / wall
        } else {
            0.0
        },
        threads,
        peak_in_flight,
        bytes_per_in_flight: (opts.heap_bytes.is_some() && peak_in_flight > 0)
            .then(|| heap_peak as f64 / peak_in_flight as f64),
    };
    (outcomes, perf)
}

/// Drives the releases `first..first + out.len()` to their ends; returns the decisions.
fn run_chunk<D: Driver>(
    driver: &D,
    releases: &(dyn Fn(u32) -> (Release, Stream) + Sync),
    first: usize,
    out: &mut [Outcome],
    max_seconds: i64,
    shared: &Shared<'_>,
    cache: &mut D::Cache,
) -> u64 {
    let start = driver.start();
    let cap = start.add_secs(max_seconds);
    let mut members: Vec<Option<D::Member>> = (0..out.len())
        .map(|k| {
            let index = u32::try_from(first + k).unwrap_or(u32::MAX);
            let (release, stream) = releases(index);
            Some(driver.member(release, stream))
        })
        .collect();
    let n = out.len() as u64;
    let now_in_flight = shared.in_flight.fetch_add(n, Ordering::Relaxed) + n;
    shared
        .peak_in_flight
        .fetch_max(now_in_flight, Ordering::Relaxed);
    let mut queue: BinaryHeap<Reverse<(Timestamp, u32)>> = (0..out.len())
        .filter_map(|k| u32::try_from(k).ok())
        .map(|k| Reverse((start, k)))
        .collect();
    shared.sample_heap();
    let mut visits: u64 = 0;
    let mut decisions: u64 = 0;
    while let Some(Reverse((now, k))) = queue.pop() {
        let Some(m) = members[k as usize].as_mut() else {
            continue;
        };
        driver.visit(m, now, cache);
        visits += 1;
        if visits.is_multiple_of(256) {
            shared.sample_heap();
        }
        match driver.next(m, now) {
            Some(t) if t <= cap => queue.push(Reverse((t, k))),
            _ => {
                let o = driver.outcome(m, now);
                decisions += u64::from(o.decisions);
                out[k as usize] = o;
                members[k as usize] = None;
                shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                let done = shared.done.fetch_add(1, Ordering::Relaxed) + 1;
                if done.is_multiple_of(4096) {
                    shared.report_progress();
                }
            }
        }
    }
    shared.report_progress();
    decisions
}
