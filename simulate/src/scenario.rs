//! The scenario file: what to simulate, read from YAML.
//!
//! ```yaml
//! name: error-spike
//! seed: 42
//! rollouts: 20000              # N releases; every policy gets the same N
//! inFlight: 20000              # optional: rollouts a worker holds at once (memory bound)
//! maxMinutes: 600              # optional: a rollout still undecided then is "stalled"
//! workload:
//!   podReadySeconds: {min: 5, max: 40}   # per release, uniform, whole seconds
//!   crashLoopShare: 0.1                  # optional: share of bad releases whose pods never become ready
//! metrics:
//!   requestsPerSecond: {min: 20, max: 400}   # per release, uniform
//!   errorRate: {mean: 0.004, sd: 0.002}      # baseline error ratio per release (normal, >= 0)
//!   latencyMs: {mean: 120, sd: 25}           # baseline p99 latency per release (normal, >= 1)
//!   noise: {errorRate: 0.001, latencyMs: 8}  # extra per-measurement noise (sd)
//!   windowSeconds: 60                        # optional: the query window (sampling noise)
//!   seriesPoints: 10                         # optional: points of a judge series
//! releases:
//!   badShare: 0.2
//!   effects:                                 # a bad release draws one, by weight
//!   - {weight: 3, errorRate: 0.02}
//!   - {weight: 1, latencyMs: 150}
//! queries:                                   # how the simulated Prometheus reads a query
//! - {contains: 'version="canary",status=~"5', signal: errorRate, version: canary}
//! policies:
//! - {name: argo-threshold, kind: argo, rollout: argo-rollout.yaml, templates: argo-templates.yaml}
//! - {name: flagger-range, kind: flagger, canary: flagger-canary.yaml}
//! - {name: kayenta-judge, kind: argo, rollout: judge-rollout.yaml, templates: judge-templates.yaml}
//! ```
//!
//! Manifest paths are relative to the scenario file. Every problem is a
//! [`ScenarioError`] naming the field (`releases.effects[1].weight`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The scenario is not well-formed YAML.
    #[error("{path}: {source}")]
    Yaml {
        /// The file (or `<inline>`).
        path: PathBuf,
        /// The parser's error.
        source: rollout_core::spec::SpecError,
    },
    /// A field has the wrong type, is unknown, or a required one is missing.
    #[error("{field}: {message}")]
    Field {
        /// The field's path (`releases.effects[0].weight`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A field has a value the simulator cannot use.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path.
        field: String,
        /// Why.
        reason: String,
    },
    /// A manifest a policy names is missing, unreadable or invalid.
    #[error("policies[{index}] ({policy}): {file}: {message}")]
    Manifest {
        /// Index of the policy.
        index: usize,
        /// Its name.
        policy: String,
        /// The manifest file.
        file: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// A closed interval `[min, max]` a value is drawn from uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// A normal distribution.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normal {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
}

/// The workload model: how pods behave.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    /// Seconds a new pod takes to become available, per release.
    pub pod_ready_seconds: Range,
    /// Share of bad releases whose new pods never become available (failure injection).
    #[serde(default)]
    pub crash_loop_share: f64,
}

/// Per-measurement noise (standard deviations).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Noise {
    /// Added to an observed error ratio.
    #[serde(default)]
    pub error_rate: f64,
    /// Added to an observed latency (ms).
    #[serde(default)]
    pub latency_ms: f64,
}

/// The metric streams.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    /// Requests per second the service receives, per release.
    pub requests_per_second: Range,
    /// The baseline error ratio (0..1), per release.
    pub error_rate: Normal,
    /// The baseline latency (ms), per release.
    pub latency_ms: Normal,
    /// Per-measurement noise on top of the sampling noise of the window.
    #[serde(default)]
    pub noise: Noise,
    /// The window a query aggregates over (seconds): an error ratio measured on `n`
    /// requests has the binomial standard deviation `sqrt(p (1 - p) / n)`.
    #[serde(default = "default_window")]
    pub window_seconds: f64,
    /// Points of a series the judge compares (control and experiment each).
    #[serde(default = "default_points")]
    pub series_points: u32,
}

fn default_window() -> f64 {
    60.0
}

fn default_points() -> u32 {
    10
}

/// What a bad release does to the canary's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Effect {
    /// Relative weight among the effects.
    #[serde(default = "one")]
    pub weight: f64,
    /// Added to the error ratio.
    #[serde(default)]
    pub error_rate: f64,
    /// Added to the latency (ms).
    #[serde(default)]
    pub latency_ms: f64,
}

fn one() -> f64 {
    1.0
}

/// The release mix.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Releases {
    /// Share of releases that are bad (0..1).
    pub bad_share: f64,
    /// The effects a bad release draws from.
    #[serde(default)]
    pub effects: Vec<Effect>,
}

/// A quantity the simulated Prometheus can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Signal {
    /// Error ratio, 0..1.
    ErrorRate,
    /// Success ratio, 0..1.
    SuccessRate,
    /// Success percentage, 0..100.
    SuccessPercent,
    /// Latency in milliseconds.
    LatencyMs,
    /// Latency in seconds.
    LatencySeconds,
    /// Requests per second.
    RequestRate,
}

/// Which pods a query measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Version {
    /// The new version.
    Canary,
    /// The stable (baseline, primary) version.
    Stable,
}

/// One rule of the simulated Prometheus: a query containing `contains` answers `signal`
/// of `version`. The first matching rule wins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryRule {
    /// A substring of the query.
    pub contains: String,
    /// What it measures.
    pub signal: Signal,
    /// Of which pods.
    pub version: Version,
}

/// The kind of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum PolicyKind {
    /// An Argo `Rollout` (canary or blue-green strategy) with AnalysisTemplates: the
    /// canary or blue-green machine and the analysis runner (threshold conditions, or the
    /// judge plugin).
    Argo,
    /// A Flagger `Canary`: the Flagger machine and its metric checks.
    Flagger,
}

/// One policy as written in the scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// Its name in the outputs.
    pub name: String,
    /// Argo or Flagger.
    pub kind: PolicyKind,
    /// Argo: the file holding the `Rollout`.
    #[serde(default)]
    pub rollout: Option<String>,
    /// Argo: the file holding its AnalysisTemplates (Flagger: MetricTemplates).
    #[serde(default)]
    pub templates: Option<String>,
    /// Flagger: the file holding the `Canary`.
    #[serde(default)]
    pub canary: Option<String>,
    /// Flagger: replicas of the target Deployment (default 10).
    #[serde(default)]
    pub replicas: Option<i32>,
}

/// A scenario as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Its name (used for output files).
    pub name: String,
    /// The seed: the same seed gives the same results.
    pub seed: u64,
    /// Releases to simulate (per policy).
    pub rollouts: u64,
    /// Rollouts a worker drives at once (default 20,000): bounds memory.
    #[serde(default)]
    pub in_flight: Option<u64>,
    /// Virtual minutes after which an undecided rollout counts as stalled (default 1440).
    #[serde(default)]
    pub max_minutes: Option<u64>,
    /// The workload model.
    pub workload: Workload,
    /// The metric streams.
    pub metrics: Metrics,
    /// The release mix.
    pub releases: Releases,
    /// How queries map to signals.
    #[serde(default)]
    pub queries: Vec<QueryRule>,
    /// The policies to compare.
    pub policies: Vec<PolicySpec>,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_range(field: &str, r: Range, lo: f64, hi: f64) -> Result<(), ScenarioError> {
    if !(r.min.is_finite() && r.max.is_finite()) || r.min > r.max {
        return Err(invalid(field, "needs finite min <= max"));
    }
    if r.min < lo || r.max > hi {
        return Err(invalid(field, format!("must lie within {lo}..={hi}")));
    }
    Ok(())
}

fn check_normal(field: &str, n: Normal) -> Result<(), ScenarioError> {
    if !n.mean.is_finite() || !n.sd.is_finite() || n.sd < 0.0 {
        return Err(invalid(field, "needs a finite mean and sd >= 0"));
    }
    Ok(())
}

fn check_share(field: &str, v: f64) -> Result<(), ScenarioError> {
    if !(0.0..=1.0).contains(&v) {
        return Err(invalid(field, "must be within 0..=1"));
    }
    Ok(())
}

impl Scenario {
    /// Parses a scenario from YAML text (not yet checked: see [`Scenario::check`]).
    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        Self::from_yaml_at(text, Path::new("<inline>"))
    }

    fn from_yaml_at(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let value = rollout_core::spec::yaml::parse_document(text, 0).map_err(|source| {
            ScenarioError::Yaml {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let scenario: Scenario = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            ScenarioError::Field {
                field: if field == "." { String::new() } else { field },
                message: e.into_inner().to_string(),
            }
        })?;
        scenario.check()?;
        Ok(scenario)
    }

    /// Reads and checks a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_at(&text, path)
    }

    /// Checks the values the types cannot: ranges, shares, weights, unique names.
    pub fn check(&self) -> Result<(), ScenarioError> {
        if self.rollouts == 0 || self.rollouts > u64::from(u32::MAX) {
            return Err(invalid("rollouts", "must be within 1..=4294967295"));
        }
        if self.in_flight == Some(0) {
            return Err(invalid("inFlight", "must be at least 1"));
        }
        if self.max_minutes == Some(0) {
            return Err(invalid("maxMinutes", "must be at least 1"));
        }
        check_range(
            "workload.podReadySeconds",
            self.workload.pod_ready_seconds,
            0.0,
            86_400.0,
        )?;
        check_share("workload.crashLoopShare", self.workload.crash_loop_share)?;
        let m = &self.metrics;
        check_range("metrics.requestsPerSecond", m.requests_per_second, 0.0, 1e9)?;
        check_normal("metrics.errorRate", m.error_rate)?;
        check_normal("metrics.latencyMs", m.latency_ms)?;
        for (field, v) in [
            ("metrics.noise.errorRate", m.noise.error_rate),
            ("metrics.noise.latencyMs", m.noise.latency_ms),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(field, "must be a finite sd >= 0"));
            }
        }
        if !(m.window_seconds.is_finite() && m.window_seconds > 0.0) {
            return Err(invalid("metrics.windowSeconds", "must be positive"));
        }
        if m.series_points < 2 || m.series_points > 10_000 {
            return Err(invalid("metrics.seriesPoints", "must be within 2..=10000"));
        }
        check_share("releases.badShare", self.releases.bad_share)?;
        if self.releases.bad_share > 0.0 && self.releases.effects.is_empty() {
            return Err(invalid(
                "releases.effects",
                "bad releases need at least one effect",
            ));
        }
        for (i, e) in self.releases.effects.iter().enumerate() {
            if !(e.weight.is_finite() && e.weight > 0.0) {
                return Err(invalid(
                    format!("releases.effects[{i}].weight"),
                    "must be positive",
                ));
            }
            if !e.error_rate.is_finite() || !e.latency_ms.is_finite() {
                return Err(invalid(
                    format!("releases.effects[{i}]"),
                    "effects must be finite",
                ));
            }
        }
        for (i, q) in self.queries.iter().enumerate() {
            if q.contains.is_empty() {
                return Err(invalid(
                    format!("queries[{i}].contains"),
                    "must not be empty",
                ));
            }
        }
        if self.policies.is_empty() {
            return Err(invalid("policies", "name at least one policy"));
        }
        for (i, p) in self.policies.iter().enumerate() {
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    format!("policies[{i}].name"),
                    "must be non-empty letters, digits, '-' or '_'",
                ));
            }
            if self.policies[..i].iter().any(|o| o.name == p.name) {
                return Err(invalid(
                    format!("policies[{i}].name"),
                    format!("duplicate policy name {:?}", p.name),
                ));
            }
            let need = |field: &str, v: &Option<String>| {
                if v.is_none() {
                    Err(invalid(
                        format!("policies[{i}].{field}"),
                        format!("required for kind {:?}", p.kind),
                    ))
                } else {
                    Ok(())
                }
            };
            let forbid = |field: &str, set: bool| {
                if set {
                    Err(invalid(
                        format!("policies[{i}].{field}"),
                        format!("not used by kind {:?}", p.kind),
                    ))
                } else {
                    Ok(())
                }
            };
            match p.kind {
                PolicyKind::Argo => {
                    need("rollout", &p.rollout)?;
                    need("templates", &p.templates)?;
                    forbid("canary", p.canary.is_some())?;
                    forbid("replicas", p.replicas.is_some())?;
                }
                PolicyKind::Flagger => {
                    need("canary", &p.canary)?;
                    forbid("rollout", p.rollout.is_some())?;
                    if p.replicas.is_some_and(|r| !(1..=10_000).contains(&r)) {
                        return Err(invalid(
                            format!("policies[{i}].replicas"),
                            "must be within 1..=10000",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The query rule for `query`, if any.
    pub fn rule_for(&self, query: &str) -> Option<&QueryRule> {
        self.queries.iter().find(|q| query.contains(&q.contains))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
name: t
seed: 1
rollouts: 10
workload: {podReadySeconds: {min: 1, max: 2}}
metrics:
  requestsPerSecond: {min: 1, max: 2}
  errorRate: {mean: 0.01, sd: 0}
  latencyMs: {mean: 100, sd: 0}
releases: {badShare: 0.5, effects: [{errorRate: 0.1}]}
policies: [{name: a, kind: flagger, canary: c.yaml}]
";

    #[test]
    fn minimal_parses() {
        let s = Scenario::from_yaml(MINIMAL).unwrap();
        assert_eq!(s.metrics.series_points, 10);
        assert_eq!(s.releases.effects[0].weight, 1.0);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = MINIMAL.replace("{errorRate: 0.1}", "{errorRate: 0.1, wieght: 2}");
        let e = Scenario::from_yaml(&bad).unwrap_err();
        assert!(
            matches!(&e, ScenarioError::Field { field, .. } if field == "releases.effects[0].wieght"),
            "{e}"
        );
        let bad = MINIMAL.replace("badShare: 0.5", "badShare: 1.5");
        let e = Scenario::from_yaml(&bad).unwrap_err();
        assert_eq!(e.to_string(), "releases.badShare: must be within 0..=1");
        let bad = MINIMAL.replace("rollouts: 10", "rollouts: ten");
        let e = Scenario::from_yaml(&bad).unwrap_err();
        assert!(matches!(&e, ScenarioError::Field { field, .. } if field == "rollouts"));
        let bad = MINIMAL.replace("canary: c.yaml", "rollout: r.yaml");
        let e = Scenario::from_yaml(&bad).unwrap_err();
        assert!(e.to_string().starts_with("policies[0].canary"), "{e}");
        let e = Scenario::from_yaml("name: [").unwrap_err();
        assert!(matches!(e, ScenarioError::Yaml { .. }));
    }
}
