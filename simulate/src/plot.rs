//! Plots of a report (SVG through plotters' SVG backend; text uses plotters' built-in
//! font metrics, so no system fonts or C libraries are needed).
//!
//! [`write_svg`] draws two panels: the cumulative share of good releases promoted by
//! time since the update, and the cumulative share of bad releases aborted, one line
//! per policy. A policy's curve ending below 100% shows its false aborts (top) or the
//! bad releases it missed (bottom).

use std::path::Path;

use plotters::prelude::*;

use crate::engine::End;
use crate::report::Report;

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
#[error("plot {path}: {message}")]
pub struct PlotError {
    /// The file.
    pub path: String,
    /// The backend's message.
    pub message: String,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The empirical CDF of `times` (minutes) as a share of `of`, as points of a step line.
fn cdf(mut times: Vec<u32>, of: usize) -> Vec<(f64, f64)> {
    times.sort_unstable();
    let mut pts = vec![(0.0, 0.0)];
    if of == 0 {
        return pts;
    }
    // One step per distinct time: the plot stays small for a million releases.
    let mut i = 0;
    while i < times.len() {
        let t = times[i];
        let mut j = i;
        while j < times.len() && times[j] == t {
            j += 1;
        }
        let x = f64::from(t) / 60.0;
        pts.push((x, i as f64 / of as f64));
        pts.push((x, j as f64 / of as f64));
        i = j;
    }
    pts
}

/// Writes the plot of `report` to `path` (SVG).
pub fn write_svg(report: &Report, path: &Path) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let root = SVGBackend::new(path, (960, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let panels = root.split_evenly((2, 1));
    let max_minutes = report
        .policies
        .iter()
        .flat_map(|p| p.outcomes.iter())
        .filter(|o| o.end != End::Stalled)
        .map(|o| f64::from(o.seconds) / 60.0)
        .fold(1.0_f64, f64::max)
        * 1.02;
    for (panel, bad) in panels.iter().zip([false, true]) {
        let (title, end) = if bad {
            (
                format!(
                    "{}: bad releases aborted, by time since the update",
                    report.scenario
                ),
                End::Aborted,
            )
        } else {
            (
                format!(
                    "{}: good releases promoted, by time since the update",
                    report.scenario
                ),
                End::Promoted,
            )
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..max_minutes, 0.0..1.0)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc("share")
            .draw()
            .map_err(|e| err(&e))?;
        for (i, p) in report.policies.iter().enumerate() {
            let of = p.outcomes.iter().filter(|o| o.bad == bad).count();
            let times: Vec<u32> = p
                .outcomes
                .iter()
                .filter(|o| o.bad == bad && o.end == end)
                .map(|o| o.seconds)
                .collect();
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(std::iter::once(PathElement::new(
                    cdf(times, of),
                    color.stroke_width(2),
                )))
                .map_err(|e| err(&e))?
                .label(p.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_steps_up_to_the_share() {
        let pts = cdf(vec![120, 60, 120], 4);
        assert_eq!(
            pts,
            vec![
                (0.0, 0.0),
                (1.0, 0.0),
                (1.0, 0.25),
                (2.0, 0.25),
                (2.0, 0.75)
            ]
        );
    }
}
