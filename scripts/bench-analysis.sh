#!/usr/bin/env bash
# The Mann-Whitney benchmark against SciPy, on the same data in the same run:
#   1. `cargo bench -p rollout-benches --bench judge` (release) writes the samples and our
#      answers to target/analysis-bench/ and times judge::mann_whitney and its parts;
#   2. benches/scipy/mannwhitney_peer.py times scipy.stats.mannwhitneyu and the NumPy
#      Hodges-Lehmann estimate + interval on those samples and checks U and the p-value
#      (to 1e-9) against ours;
#   3. the ratios are printed.
# Installs numpy and scipy with pip when they are missing. Extra arguments go to criterion
# (for example `--quick`).
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/analysis-bench
if ! python3 -c 'import numpy, scipy' 2>/dev/null; then
    echo "installing numpy and scipy with pip" >&2
    python3 -m pip install --quiet numpy scipy 2>/dev/null \
        || python3 -m pip install --quiet --user numpy scipy 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages numpy scipy
fi

cargo bench -p rollout-benches --bench judge -- "$@"
peer_json=$(python3 benches/scipy/mannwhitney_peer.py "$out") || peer_status=$?

python3 - "$peer_json" "${peer_status:-0}" <<'PY'
import json, sys
from pathlib import Path

peer = json.loads(sys.argv[1])
status = int(sys.argv[2])

def ours(name):
    path = Path("target/criterion/mann_whitney") / name / "new/estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"] / 1e9

rows = [
    ("test (U + p-value)", ours("p_value_10k_10k"), peer["seconds_test"], "scipy.stats.mannwhitneyu"),
    ("estimate + 95% interval", ours("ci_10k_10k"), peer["seconds_interval"], "numpy ranks + brentq"),
    ("full (test + interval)", ours("full_10k_10k"), peer["seconds_full"], "both"),
]
print()
print(f"Mann-Whitney, 10,000 + 10,000 samples, medians (scipy {peer['scipy']}, numpy {peer['numpy']})")
print(f"{'what':<26} {'ours':>12} {'peer':>12} {'peer/ours':>10}  peer")
for what, mine, theirs, who in rows:
    print(f"{what:<26} {mine * 1e3:>9.3f} ms {theirs * 1e3:>9.3f} ms {theirs / mine:>9.1f}x  {who}")
print()
print(f"U: ours == scipy: {peer['u_equal']} ({peer['u']:.1f})")
print(f"p-value: scipy {peer['p_value']!r}, |ours - scipy| = {peer['p_abs_diff']:.3e} "
      f"({'OK' if peer['p_within_1e-9'] else 'MISMATCH'}: tolerance 1e-9)")
print(f"estimate and interval: max |ours - numpy| = {peer['interval_max_abs_diff']:.3e} "
      f"(root tolerance 1e-4)")
sys.exit(status)
PY
