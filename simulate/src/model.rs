//! Releases and their metric streams: seeded draws, no state shared between rollouts.

use crate::scenario::{Scenario, Signal, Version};

/// SplitMix64: a small, fast, seedable generator (enough for simulation noise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    /// A generator for stream `stream` of rollout `index` under `seed`: independent of
    /// every other rollout and of the order rollouts are simulated in.
    pub fn new(seed: u64, index: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        let a = r.next_u64() ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut r = Rng(a);
        let b = r.next_u64() ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng(b)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[min, max]`.
    pub fn uniform(&mut self, min: f64, max: f64) -> f64 {
        min + (max - min) * self.unit()
    }

    /// A standard normal sample (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// One release: what the new version does, drawn from the scenario for one index.
/// Every policy sees the same release for the same index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Release {
    /// Index of the release (0-based).
    pub index: u32,
    /// Whether it is bad (its effect is applied to the canary's metrics).
    pub bad: bool,
    /// Pods of the new version never become available.
    pub crash_loop: bool,
    /// Seconds a new pod takes to become available.
    pub pod_ready_seconds: i64,
    /// Requests per second the service receives.
    pub requests_per_second: f64,
    /// The stable version's error ratio.
    pub base_error_rate: f64,
    /// The stable version's latency (ms).
    pub base_latency_ms: f64,
    /// Added to the canary's error ratio (0 for a good release).
    pub effect_error_rate: f64,
    /// Added to the canary's latency (0 for a good release).
    pub effect_latency_ms: f64,
}

impl Release {
    /// A good release with a zero baseline (used to set up a policy's first revision).
    pub fn neutral(index: u32) -> Release {
        Release {
            index,
            bad: false,
            crash_loop: false,
            pod_ready_seconds: 0,
            requests_per_second: 0.0,
            base_error_rate: 0.0,
            base_latency_ms: 1.0,
            effect_error_rate: 0.0,
            effect_latency_ms: 0.0,
        }
    }

    /// Draws release `index` of `scenario`. Always draws the same number of values, so
    /// the draws of one field never depend on another.
    pub fn draw(scenario: &Scenario, index: u32) -> Release {
        let mut rng = Rng::new(scenario.seed, u64::from(index), 0);
        let bad = rng.unit() < scenario.releases.bad_share;
        let crash = rng.unit() < scenario.workload.crash_loop_share;
        let ready = scenario.workload.pod_ready_seconds;
        let pod_ready_seconds = rng.uniform(ready.min, ready.max).round() as i64;
        let rps = scenario.metrics.requests_per_second;
        let requests_per_second = rng.uniform(rps.min, rps.max);
        let e = scenario.metrics.error_rate;
        let base_error_rate = (e.mean + e.sd * rng.normal()).clamp(0.0, 1.0);
        let l = scenario.metrics.latency_ms;
        let base_latency_ms = (l.mean + l.sd * rng.normal()).max(1.0);
        let total: f64 = scenario.releases.effects.iter().map(|e| e.weight).sum();
        let mut pick = rng.unit() * total;
        let mut effect = scenario.releases.effects.last().copied();
        for e in &scenario.releases.effects {
            if pick < e.weight {
                effect = Some(*e);
                break;
            }
            pick -= e.weight;
        }
        let (effect_error_rate, effect_latency_ms) = match effect {
            Some(e) if bad => (e.error_rate, e.latency_ms),
            _ => (0.0, 0.0),
        };
        Release {
            index,
            bad,
            crash_loop: bad && crash,
            pod_ready_seconds,
            requests_per_second,
            base_error_rate,
            base_latency_ms,
            effect_error_rate,
            effect_latency_ms,
        }
    }
}

/// The metric stream of one rollout: answers what a Prometheus query would return for
/// the release at a given canary traffic share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stream {
    /// The release.
    pub release: Release,
    rng: Rng,
    /// Measurements answered.
    pub answered: u32,
}

/// Noise parameters shared by every stream of a scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseModel {
    /// Query window (s).
    pub window_seconds: f64,
    /// Extra sd of an error ratio.
    pub error_rate: f64,
    /// Extra sd of a latency (ms).
    pub latency_ms: f64,
}

impl NoiseModel {
    /// From the scenario.
    pub fn of(scenario: &Scenario) -> NoiseModel {
        NoiseModel {
            window_seconds: scenario.metrics.window_seconds,
            error_rate: scenario.metrics.noise.error_rate,
            latency_ms: scenario.metrics.noise.latency_ms,
        }
    }
}

impl Stream {
    /// The stream of `release` for one policy (the noise is seeded by the release).
    pub fn new(seed: u64, release: Release) -> Stream {
        Stream {
            release,
            rng: Rng::new(seed, u64::from(release.index), 1),
            answered: 0,
        }
    }

    /// One observation of `signal` of `version`, with `canary_share` (0..1) of the
    /// traffic at the canary.
    pub fn sample(
        &mut self,
        noise: &NoiseModel,
        signal: Signal,
        version: Version,
        canary_share: f64,
    ) -> f64 {
        self.answered += 1;
        let r = &self.release;
        let canary = version == Version::Canary;
        let share = if canary {
            canary_share
        } else {
            1.0 - canary_share
        };
        let requests = (r.requests_per_second * share * noise.window_seconds).max(1.0);
        let p = if canary {
            (r.base_error_rate + r.effect_error_rate).clamp(0.0, 1.0)
        } else {
            r.base_error_rate
        };
        let error_sd = (p * (1.0 - p) / requests).sqrt();
        let z1 = self.rng.normal();
        let z2 = self.rng.normal();
        let error = (p + error_sd * z1 + noise.error_rate * z2).clamp(0.0, 1.0);
        let latency = if canary {
            r.base_latency_ms + r.effect_latency_ms
        } else {
            r.base_latency_ms
        };
        let z3 = self.rng.normal();
        let latency = (latency + noise.latency_ms * z3).max(0.0);
        match signal {
            Signal::ErrorRate => error,
            Signal::SuccessRate => 1.0 - error,
            Signal::SuccessPercent => 100.0 * (1.0 - error),
            Signal::LatencyMs => latency,
            Signal::LatencySeconds => latency / 1000.0,
            Signal::RequestRate => r.requests_per_second * share,
        }
    }
}
