//! Per-policy summaries: rates, time quantiles, exposure; CSV and a terminal table.

use std::fmt::Write as _;

use crate::engine::{End, Outcome, Perf};

/// Median, p90 and p99 of a set of durations (seconds), nearest rank; `None` when empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantiles {
    /// How many values.
    pub count: u64,
    /// 50th percentile.
    pub p50: Option<u32>,
    /// 90th percentile.
    pub p90: Option<u32>,
    /// 99th percentile.
    pub p99: Option<u32>,
}

impl Quantiles {
    /// Of `values` (sorted here).
    pub fn of(mut values: Vec<u32>) -> Quantiles {
        values.sort_unstable();
        let rank = |q: f64| -> Option<u32> {
            if values.is_empty() {
                return None;
            }
            let r = (q * values.len() as f64).ceil() as usize;
            values.get(r.clamp(1, values.len()) - 1).copied()
        };
        Quantiles {
            count: values.len() as u64,
            p50: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
        }
    }
}

/// What one policy did with the releases (deterministic for a seed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Good releases.
    pub good: u64,
    /// Bad releases.
    pub bad: u64,
    /// Bad releases aborted.
    pub detected: u64,
    /// Bad releases promoted.
    pub missed: u64,
    /// Good releases aborted.
    pub false_aborts: u64,
    /// Releases neither promoted nor aborted in time.
    pub stalled: u64,
    /// `detected / bad`.
    pub detection_rate: f64,
    /// `false_aborts / good`.
    pub false_abort_rate: f64,
    /// Time to promote, over the good releases promoted.
    pub promote: Quantiles,
    /// Time to abort, over the bad releases aborted.
    pub abort: Quantiles,
    /// Requests served by bad versions, over all bad releases.
    pub bad_exposure: f64,
    /// `bad_exposure / bad`.
    pub bad_exposure_per_release: f64,
    /// Machine calls.
    pub decisions: u64,
    /// Metric measurements.
    pub measurements: u64,
}

impl Summary {
    /// Of the outcomes of one policy.
    pub fn of(outcomes: &[Outcome]) -> Summary {
        let mut s = Summary::default();
        let mut promote = Vec::new();
        let mut abort = Vec::new();
        for o in outcomes {
            s.decisions += u64::from(o.decisions);
            s.measurements += u64::from(o.measurements);
            if o.bad {
                s.bad += 1;
                s.bad_exposure += o.exposure;
            } else {
                s.good += 1;
            }
            match (o.bad, o.end) {
                (true, End::Aborted) => {
                    s.detected += 1;
                    abort.push(o.seconds);
                }
                (true, End::Promoted) => s.missed += 1,
                (false, End::Aborted) => s.false_aborts += 1,
                (false, End::Promoted) => promote.push(o.seconds),
                _ => s.stalled += 1,
            }
        }
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        s.detection_rate = ratio(s.detected, s.bad);
        s.false_abort_rate = ratio(s.false_aborts, s.good);
        s.bad_exposure_per_release = if s.bad == 0 {
            0.0
        } else {
            s.bad_exposure / s.bad as f64
        };
        s.promote = Quantiles::of(promote);
        s.abort = Quantiles::of(abort);
        s
    }
}

/// One policy's results.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyReport {
    /// The policy's name.
    pub name: String,
    /// `argo` or `flagger`.
    pub kind: &'static str,
    /// Every release's outcome, in release order.
    pub outcomes: Vec<Outcome>,
    /// The summary.
    pub summary: Summary,
    /// Wall-clock figures.
    pub perf: Perf,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Its seed.
    pub seed: u64,
    /// Releases per policy.
    pub rollouts: u64,
    /// Per policy, in the scenario's order.
    pub policies: Vec<PolicyReport>,
}

fn opt(v: Option<u32>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

fn mmss(v: Option<u32>) -> String {
    v.map_or_else(|| "-".into(), |s| format!("{}:{:02}", s / 60, s % 60))
}

impl Report {
    /// The deterministic results as CSV, one line per policy: the same seed gives the
    /// same bytes whatever the thread count.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "scenario,seed,policy,kind,rollouts,good,bad,detected,missed,false_aborts,stalled,\
             detection_rate,false_abort_rate,promote_p50_s,promote_p90_s,promote_p99_s,\
             abort_p50_s,abort_p90_s,abort_p99_s,bad_exposure_requests,\
             bad_exposure_per_bad_release,decisions,measurements\n",
        );
        for p in &self.policies {
            let s = &p.summary;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{:.6},{:.6},{},{},{},{},{},{},{:.1},{:.3},{},{}",
                self.scenario,
                self.seed,
                p.name,
                p.kind,
                self.rollouts,
                s.good,
                s.bad,
                s.detected,
                s.missed,
                s.false_aborts,
                s.stalled,
                s.detection_rate,
                s.false_abort_rate,
                opt(s.promote.p50),
                opt(s.promote.p90),
                opt(s.promote.p99),
                opt(s.abort.p50),
                opt(s.abort.p90),
                opt(s.abort.p99),
                s.bad_exposure,
                s.bad_exposure_per_release,
                s.decisions,
                s.measurements,
            );
        }
        out
    }

    /// The wall-clock figures as CSV (these differ from run to run).
    pub fn perf_csv(&self) -> String {
        let mut out = String::from(
            "scenario,policy,threads,wall_s,decisions,decisions_per_s,peak_in_flight,bytes_per_in_flight\n",
        );
        for p in &self.policies {
            let _ = writeln!(
                out,
                "{},{},{},{:.3},{},{:.0},{},{}",
                self.scenario,
                p.name,
                p.perf.threads,
                p.perf.wall_seconds,
                p.summary.decisions,
                p.perf.decisions_per_second,
                p.perf.peak_in_flight,
                p.perf
                    .bytes_per_in_flight
                    .map_or_else(String::new, |b| format!("{b:.0}")),
            );
        }
        out
    }

    /// A table for the terminal.
    pub fn table(&self) -> String {
        let header = [
            "policy",
            "detected",
            "false aborts",
            "promote p50/p90/p99",
            "abort p50/p90/p99",
            "bad req. served",
            "stalled",
            "decisions/s",
            "B/rollout",
        ];
        let mut rows: Vec<[String; 9]> = Vec::new();
        for p in &self.policies {
            let s = &p.summary;
            rows.push([
                p.name.clone(),
                format!(
                    "{:.1}% ({}/{})",
                    100.0 * s.detection_rate,
                    s.detected,
                    s.bad
                ),
                format!(
                    "{:.2}% ({}/{})",
                    100.0 * s.false_abort_rate,
                    s.false_aborts,
                    s.good
                ),
                format!(
                    "{} / {} / {}",
                    mmss(s.promote.p50),
                    mmss(s.promote.p90),
                    mmss(s.promote.p99)
                ),
                format!(
                    "{} / {} / {}",
                    mmss(s.abort.p50),
                    mmss(s.abort.p90),
                    mmss(s.abort.p99)
                ),
                format!("{:.0} per bad", s.bad_exposure_per_release),
                s.stalled.to_string(),
                format!("{:.0}", p.perf.decisions_per_second),
                p.perf
                    .bytes_per_in_flight
                    .map_or_else(|| "-".into(), |b| format!("{b:.0}")),
            ]);
        }
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[&str]| {
            let mut l = String::new();
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                if i > 0 {
                    l.push_str(" | ");
                }
                let _ = write!(l, "{c:<w$}");
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&mut out, &header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        line(&mut out, &rule);
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            line(&mut out, &cells);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let q = Quantiles::of((1..=100).rev().collect());
        assert_eq!((q.p50, q.p90, q.p99), (Some(50), Some(90), Some(99)));
        assert_eq!(Quantiles::of(vec![7]).p99, Some(7));
        assert_eq!(Quantiles::of(Vec::new()).p50, None);
    }
}
