//! The Kayenta-style judge's Mann-Whitney on 10,000 + 10,000 samples, with SciPy as the
//! peer (`benches/scipy/mannwhitney_peer.py`, run by `scripts/bench-analysis.sh`).
//!
//! ```text
//! cargo bench -p rollout-benches --bench judge
//! ```
//!
//! Data: a fixed-seed generator (SplitMix64 + Box-Muller) draws the control from
//! N(100, 10) and the experiment from N(100.3, 10), rounded to 0.01 (so there are ties,
//! as real metrics have). Before timing, the bench writes the samples to
//! `target/analysis-bench/mannwhitney.csv` (`experiment,control` per row, shortest
//! round-trip decimals) and its own answers to `target/analysis-bench/mannwhitney_ours.json`
//! for the script to compare with SciPy (`ANALYSIS_BENCH_DIR` overrides the directory).
//!
//! * `mann_whitney/full_10k_10k`: `judge::mann_whitney(experiment, control, 0.95,
//!   Method::Normal)`, what the judge runs per metric: U, the two-sided p-value (normal
//!   approximation with tie and continuity corrections), the Hodges-Lehmann estimate of the
//!   shift and its 95% confidence interval, each of the last three a root (Brent, tolerance
//!   1e-4) of the corrected normal score of the rank sum, as R's
//!   `wilcox.test(conf.int = TRUE, exact = FALSE, correct = TRUE)`. Three roots, each
//!   evaluation a sort and rank of the 20,000 shifted values.
//! * `mann_whitney/ci_10k_10k`: `judge::mann_whitney_u_test`, the estimate and interval
//!   alone (the part SciPy has no function for).
//! * `mann_whitney/p_value_10k_10k`: the test alone, the peer of SciPy's
//!   `mannwhitneyu(experiment, control, method="asymptotic", use_continuity=True)`: the
//!   normal score at shift 0 (`judge::wilcoxon_diff(0, 0, ..)`, one sort and rank) and the
//!   two-sided p-value `erfc(|z| / √2)`, the formula `mann_whitney` uses.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use rollout_analysis::judge::{
    JudgeError, Method, mann_whitney, mann_whitney_u_test, wilcoxon_diff,
};

/// Samples per side.
const N: usize = 10_000;
/// The generator's seed.
const SEED: u64 = 0x6d61_6e6e_7768_6974;

/// SplitMix64, the generator the data comes from.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller, one value per pair of draws).
    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `(experiment, control)`.
fn samples() -> (Vec<f64>, Vec<f64>) {
    let mut rng = SplitMix64(SEED);
    let mut draw = |mean: f64| -> Vec<f64> {
        (0..N)
            .map(|_| ((mean + 10.0 * rng.gaussian()) * 100.0).round() / 100.0)
            .collect()
    };
    let control = draw(100.0);
    let experiment = draw(100.3);
    (experiment, control)
}

/// Two-sided p-value of the normal score at shift 0.
fn p_value(experiment: &[f64], control: &[f64]) -> Result<(f64, f64), JudgeError> {
    let z = wilcoxon_diff(0.0, 0.0, experiment, control)?;
    Ok((
        z,
        statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2),
    ))
}

fn out_dir() -> PathBuf {
    match std::env::var_os("ANALYSIS_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/analysis-bench"),
    }
}

/// Writes the samples and our answers for the SciPy peer script.
fn write_peer_files(experiment: &[f64], control: &[f64]) {
    let dir = out_dir();
    let test = mann_whitney(experiment, control, 0.95, Method::Normal)
        .unwrap_or_else(|e| panic!("mann_whitney: {e}"));
    let result = test.interval;
    let (z, p) = p_value(experiment, control).unwrap_or_else(|e| panic!("p-value: {e}"));
    // The bench's own p-value is the formula `mann_whitney` uses.
    assert!((p - test.p_value).abs() <= 1e-15, "{p} vs {}", test.p_value);
    let mut csv = String::with_capacity(N * 16);
    csv.push_str("experiment,control\n");
    for (e, c) in experiment.iter().zip(control) {
        let _ = writeln!(csv, "{e},{c}");
    }
    let ours = serde_json::json!({
        "n_experiment": experiment.len(),
        "n_control": control.len(),
        "confidence": 0.95,
        "estimate": result.estimate,
        "lower_confidence": result.lower_confidence,
        "upper_confidence": result.upper_confidence,
        "u": test.u,
        "z": z,
        "p_value": test.p_value,
    });
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("mannwhitney.csv"), csv))
        .and_then(|()| std::fs::write(dir.join("mannwhitney_ours.json"), ours.to_string()));
    if let Err(e) = written {
        eprintln!("could not write the peer files to {}: {e}", dir.display());
    }
}

fn bench_judge(c: &mut Criterion) {
    let (experiment, control) = samples();
    write_peer_files(&experiment, &control);

    let mut g = c.benchmark_group("mann_whitney");
    g.sample_size(10);
    g.bench_function("full_10k_10k", |b| {
        b.iter(|| {
            mann_whitney(
                black_box(&experiment),
                black_box(&control),
                0.95,
                Method::Normal,
            )
        })
    });
    g.bench_function("ci_10k_10k", |b| {
        b.iter(|| mann_whitney_u_test(black_box(&experiment), black_box(&control), 0.95))
    });
    g.bench_function("p_value_10k_10k", |b| {
        b.iter(|| p_value(black_box(&experiment), black_box(&control)))
    });
    g.finish();
}

criterion_group!(benches, bench_judge);
criterion_main!(benches);
