#!/usr/bin/env python3
"""SciPy / NumPy peer of `cargo bench -p rollout-benches --bench judge`.

Reads the samples the bench wrote (target/analysis-bench/mannwhitney.csv, columns
experiment,control) and the bench's own answers (mannwhitney_ours.json), then times, on the
same data:

* test: scipy.stats.mannwhitneyu(experiment, control, alternative="two-sided",
  method="asymptotic", use_continuity=True) -> U1 and the two-sided p-value (normal
  approximation with tie correction and continuity correction);
* interval: the Hodges-Lehmann estimate of the shift experiment - control and its 95%
  confidence interval, which SciPy does not provide, computed the way our judge (and R's
  wilcox.test(conf.int=TRUE, exact=FALSE, correct=TRUE)) does: each is a root, found by
  scipy.optimize.brentq with xtol=1e-4 on [min(x)-max(y), max(x)-min(y)], of the tie- and
  continuity-corrected normal score of the rank sum of (experiment - mu) against control.
  One score evaluation is vectorised NumPy: one argsort of the 20,000 values, tie groups
  from the sorted array, average ranks by np.repeat, then sums;
* full: test + interval, the peer of our judge::mann_whitney.

It checks U and the p-value against ours (p to 1e-9) and the estimate and interval
against ours (to the root tolerance), and prints one JSON object.
"""

import json
import math
import sys
import timeit
from pathlib import Path

import numpy as np
import scipy
from scipy import optimize, stats

ROOT_TOL = 1e-4


def load(directory):
    data = np.loadtxt(directory / "mannwhitney.csv", delimiter=",", skiprows=1)
    ours = json.loads((directory / "mannwhitney_ours.json").read_text())
    return np.ascontiguousarray(data[:, 0]), np.ascontiguousarray(data[:, 1]), ours


def test(x, y):
    r = stats.mannwhitneyu(
        x, y, alternative="two-sided", method="asymptotic", use_continuity=True
    )
    return float(r.statistic), float(r.pvalue)


def score(mu, q, x, y):
    """Corrected normal score of the rank sum of x - mu against y, minus q."""
    m, n = len(x), len(y)
    combined = np.concatenate((x - mu, y))
    order = np.argsort(combined, kind="stable")
    s = combined[order]
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1], [True])))
    counts = np.diff(starts)
    average = starts[:-1] + (counts + 1) / 2.0
    ranks_sorted = np.repeat(average, counts)
    rank_sum = ranks_sorted[order < m].sum()
    dz = rank_sum - m * (m + 1) / 2.0 - m * n / 2.0
    correction = 0.5 * np.sign(dz)
    total = m + n
    ties = (counts.astype(np.float64) ** 3 - counts).sum()
    sigma = math.sqrt((m * n / 12.0) * ((total + 1) - ties / (total * (total - 1))))
    return (dz - correction) / sigma - q


def interval(x, y, confidence=0.95):
    lo, hi = x.min() - y.max(), x.max() - y.min()
    z = abs(stats.norm.ppf((1 - confidence) / 2))

    def root(q, clamp):
        if clamp:
            if score(lo, q, x, y) <= 0:
                return lo
            if score(hi, q, x, y) >= 0:
                return hi
        return optimize.brentq(score, lo, hi, args=(q, x, y), xtol=ROOT_TOL)

    return root(z, True), root(-z, True), root(0.0, False)


def median_seconds(fn, number, repeat):
    """Median over `repeat` runs of the mean time of `number` calls (criterion's median is
    what the Rust side reports)."""
    runs = sorted(t / number for t in timeit.repeat(fn, number=number, repeat=repeat))
    mid = len(runs) // 2
    return runs[mid] if len(runs) % 2 else (runs[mid - 1] + runs[mid]) / 2


def main():
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("target/analysis-bench")
    x, y, ours = load(directory)
    u, p = test(x, y)
    lower, upper, estimate = interval(x, y)
    out = {
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "n_experiment": len(x),
        "n_control": len(y),
        "u": u,
        "p_value": p,
        "estimate": estimate,
        "lower_confidence": lower,
        "upper_confidence": upper,
        "u_equal": u == ours["u"],
        "p_abs_diff": abs(p - ours["p_value"]),
        "p_within_1e-9": abs(p - ours["p_value"]) <= 1e-9,
        "interval_max_abs_diff": max(
            abs(estimate - ours["estimate"]),
            abs(lower - ours["lower_confidence"]),
            abs(upper - ours["upper_confidence"]),
        ),
        "seconds_test": median_seconds(lambda: test(x, y), number=20, repeat=9),
        "seconds_interval": median_seconds(lambda: interval(x, y), number=1, repeat=9),
        "seconds_full": median_seconds(
            lambda: (test(x, y), interval(x, y)), number=1, repeat=9
        ),
    }
    print(json.dumps(out))
    return 0 if out["u_equal"] and out["p_within_1e-9"] else 1


if __name__ == "__main__":
    sys.exit(main())
