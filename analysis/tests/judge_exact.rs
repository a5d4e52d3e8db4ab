//! The Mann-Whitney test's p-values: the exact path against brute-force enumeration,
//! both paths against SciPy 1.17's `mannwhitneyu` on fixed data (values recorded from
//! SciPy), and R's exact interval.

use proptest::prelude::*;
use rollout_analysis::judge::{JudgeError, Method, mann_whitney, u_frequencies};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-300)
}

#[test]
fn exact_small_samples_match_scipy_and_r() {
    let t = mann_whitney(
        &[10.0, 20.0, 30.0, 40.0],
        &[1.0, 2.0, 3.0, 4.0],
        0.95,
        Method::Auto,
    )
    .expect("test");
    assert_eq!(t.method, Method::Exact);
    assert_eq!(t.u, 16.0);
    // SciPy: mannwhitneyu(x, y, method='exact').pvalue = 0.02857142857142857 (2/70).
    assert!(
        close(t.p_value, 0.028_571_428_571_428_57, 1e-12),
        "{}",
        t.p_value
    );
    // R: wilcox.test(x, y, conf.int = TRUE) gives [6, 39] and 22.5.
    assert_eq!(t.interval.lower_confidence, 6.0);
    assert_eq!(t.interval.upper_confidence, 39.0);
    assert_eq!(t.interval.estimate, 22.5);

    let t = mann_whitney(
        &[1.1, 2.3, 3.5, 4.2, 5.9, 7.7],
        &[0.5, 1.7, 2.8, 3.1, 6.4],
        0.95,
        Method::Exact,
    )
    .expect("test");
    assert!(
        close(t.p_value, 0.428_571_428_571_428_55, 1e-12),
        "{}",
        t.p_value
    );
}

#[test]
fn normal_path_matches_scipy() {
    let x: Vec<f64> = (1..=60).map(f64::from).collect();
    let y: Vec<f64> = (20..80).map(|v| f64::from(v) + 0.5).collect();
    let t = mann_whitney(&x, &y, 0.95, Method::Auto).expect("test");
    assert_eq!(t.method, Method::Normal);
    assert_eq!(t.u, 820.0);
    // SciPy: method='asymptotic', use_continuity=True.
    assert!(
        close(t.p_value, 2.732_193_785_354_400_5e-7, 1e-9),
        "{}",
        t.p_value
    );

    // With ties: the tie-corrected variance.
    let x = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 8.0, 9.0, 9.0];
    let y = [2.0, 3.0, 4.0, 4.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 10.0, 11.0];
    let t = mann_whitney(&x, &y, 0.95, Method::Auto).expect("test");
    assert_eq!(t.method, Method::Normal, "ties force the normal path");
    assert_eq!(t.u, 42.5);
    assert!(
        close(t.p_value, 0.154_543_684_505_658_36, 1e-9),
        "{}",
        t.p_value
    );
    // Exact was asked, but ties make it normal (as R does).
    let e = mann_whitney(&x, &y, 0.95, Method::Exact).expect("test");
    assert_eq!(e.method, Method::Normal);
}

#[test]
fn bad_input_is_a_typed_error() {
    assert_eq!(
        mann_whitney(&[], &[1.0], 0.95, Method::Auto),
        Err(JudgeError::EmptySample)
    );
    assert_eq!(
        mann_whitney(&[f64::NAN], &[1.0], 0.95, Method::Auto),
        Err(JudgeError::NonFinite)
    );
    assert_eq!(
        mann_whitney(&[1.0], &[2.0], 1.0, Method::Auto),
        Err(JudgeError::BadConfidence)
    );
}

#[test]
fn u_frequencies_are_the_gaussian_binomial() {
    // m = n = 2: U in 0..=4 with counts 1 1 2 1 1 (C(4,2) = 6).
    assert_eq!(u_frequencies(2, 2), vec![1.0, 1.0, 2.0, 1.0, 1.0]);
    // Totals are binomial coefficients; the distribution is symmetric.
    let f = u_frequencies(7, 5);
    assert_eq!(f.iter().sum::<f64>(), 792.0);
    for k in 0..f.len() {
        assert_eq!(f[k], f[f.len() - 1 - k]);
    }
}

/// P(U <= u) by enumerating every way to choose which of the m + n ranks are x's.
fn brute_force_p(m: usize, n: usize, u: f64) -> f64 {
    let total = m + n;
    let mut count = 0u64;
    let mut le = 0u64;
    let mut ge = 0u64;
    for mask in 0u32..(1 << total) {
        if mask.count_ones() as usize != m {
            continue;
        }
        // U = sum of x ranks (1-based) - m(m+1)/2.
        let rank_sum: usize = (0..total)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| i + 1)
            .sum();
        let uu = (rank_sum - m * (m + 1) / 2) as f64;
        count += 1;
        if uu <= u {
            le += 1;
        }
        if uu >= u {
            ge += 1;
        }
    }
    let p = le.min(ge) as f64 / count as f64;
    (2.0 * p).min(1.0)
}

proptest! {
    #[test]
    fn exact_p_values_equal_enumeration(
        xs in proptest::collection::btree_set(0u32..1000, 1..7),
        ys in proptest::collection::btree_set(1000u32..2000, 1..7),
        shift in 0u32..1000,
    ) {
        // Distinct values (no ties), x shifted so that the samples interleave.
        let x: Vec<f64> = xs.iter().map(|v| f64::from(*v) * 2.0 + f64::from(shift) * 2.0).collect();
        let y: Vec<f64> = ys.iter().map(|v| f64::from(*v) * 2.0 + 1.0 - 2000.0).collect();
        let t = mann_whitney(&x, &y, 0.9, Method::Exact).expect("test");
        prop_assert_eq!(t.method, Method::Exact);
        let expected = brute_force_p(x.len(), y.len(), t.u);
        prop_assert!((t.p_value - expected).abs() < 1e-12, "{} vs {}", t.p_value, expected);
        prop_assert!(t.interval.lower_confidence <= t.interval.estimate);
        prop_assert!(t.interval.estimate <= t.interval.upper_confidence);
    }
}
