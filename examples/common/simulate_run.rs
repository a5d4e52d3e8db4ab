//! The `simulate` example's work, shared with its test: load a scenario, run every
//! policy, write the CSVs and the plot, and render the summary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rollout_simulate::{Report, RunOptions, Simulation};

/// What a run produced.
pub(crate) struct Outputs {
    /// The report.
    pub(crate) report: Report,
    /// The table and totals, as printed.
    pub(crate) text: String,
    /// The deterministic CSV, the wall-clock CSV and the SVG plot.
    pub(crate) files: [PathBuf; 3],
}

/// Loads `scenario`, runs it with `opts`, writes `<out>/<name>.csv`,
/// `<out>/<name>-perf.csv` and `<out>/<name>.svg`.
pub(crate) fn simulate(
    scenario: &Path,
    out: &Path,
    opts: RunOptions<'_>,
) -> Result<Outputs, Box<dyn std::error::Error>> {
    let sim = Simulation::load(scenario)?;
    let report = sim.run(opts);
    let mut text = format!(
        "{} ({} releases per policy, seed {})\n\n",
        report.scenario, report.rollouts, report.seed
    );
    text.push_str(&report.table());
    let wall: f64 = report.policies.iter().map(|p| p.perf.wall_seconds).sum();
    let decisions: u64 = report.policies.iter().map(|p| p.summary.decisions).sum();
    let _ = writeln!(
        text,
        "\n{} rollouts in {:.1} s wall on {} threads: {} decisions, {:.0} decisions/s",
        report.rollouts * report.policies.len() as u64,
        wall,
        report.policies.first().map_or(0, |p| p.perf.threads),
        decisions,
        decisions as f64 / wall.max(1e-9)
    );
    std::fs::create_dir_all(out)?;
    let csv = out.join(format!("{}.csv", report.scenario));
    std::fs::write(&csv, report.to_csv())?;
    let perf = out.join(format!("{}-perf.csv", report.scenario));
    std::fs::write(&perf, report.perf_csv())?;
    let svg = out.join(format!("{}.svg", report.scenario));
    rollout_simulate::plot::write_svg(&report, &svg)?;
    Ok(Outputs {
        report,
        text,
        files: [csv, perf, svg],
    })
}
