//! Conformance runner: replays the peer projects' table tests (Argo Rollouts, Flagger,
//! Kayenta), restated as JSON vectors, against `rollout-core`'s public API.
//!
//! # Layout and contract
//!
//! The vectors live in a directory with one sub-directory per group (`argo/`, `flagger/`,
//! `kayenta/`) holding `.json` files. The directory is `$CONFORMANCE_DIR` when set, else
//! the in-tree copy under `vectors/` ([`conformance_dir`]). [`run_dir`] walks every group
//! and every `.json` file in name order and produces one [`FileReport`] per file, which
//! prints as exactly one line:
//!
//! * `conformance <group>/<file>: N passed, M failed, D deviations` for a file with a
//!   registered handler ([`handler_for`]);
//! * `conformance <group>/<file>: unsupported` for a file of an area not built yet.
//!
//! Inside a supported file every case runs; an unknown `kind`/`op` or a case the adapter
//! cannot express is a **failure**, never a skip. Cases the project deliberately handles
//! differently are listed in `deviations.json` (`[{file, id, reason}]`, see [`Deviation`])
//! and report as deviations; a listed case that passes is reported as a failure so the
//! list stays honest.
//!
//! # Envelopes
//!
//! Two envelope styles exist and both are normalised into a [`Case`]:
//!
//! * Argo: a top-level array of `{id, kind, source, input, expected, notes?}`;
//! * Flagger and Kayenta: `{description, cases: [{name, kind | op, input, expect, ...}]}`
//!   (cases without an `input` object get the whole case as input).
//!
//! # Adding an area
//!
//! Write a `fn(&Case<'_>) -> CaseResult` that dispatches on [`Case::kind`] and register it
//! in [`handler_for`] under its group and file name.

pub mod argo;
pub mod flagger;
mod json;
pub mod kayenta;
pub mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The environment variable naming an alternative vector directory.
pub const CONFORMANCE_DIR_ENV: &str = "CONFORMANCE_DIR";

/// One case, normalised from either envelope style.
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    /// `id` (Argo) or `name` (Flagger, Kayenta).
    pub id: &'a str,
    /// `kind`, or `op` (Flagger); `""` when the case has neither.
    pub kind: &'a str,
    /// `input`, or the whole case when it has no `input` object.
    pub input: &'a Value,
    /// `expected` (Argo) or `expect` (Flagger, Kayenta); `null` when absent.
    pub expected: &'a Value,
    /// The case as written.
    pub raw: &'a Value,
}

/// The verdict of a handler on one case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaseResult {
    /// The project's answer equals the expected one.
    Pass,
    /// A different answer, or a case the adapter cannot express; the text says which,
    /// with expected and actual values.
    Fail(String),
}

/// Runs one case of a supported file.
pub type Handler = fn(&Case<'_>) -> CaseResult;

/// The handler for a vector file, or `None` when its area is not supported yet.
pub fn handler_for(group: &str, file: &str) -> Option<Handler> {
    match (group, file) {
        ("argo", "analysis_status.json") => Some(argo::analysis_status::run_case),
        ("argo", "conditions.json") => Some(argo::conditions::run_case),
        ("argo", "replica_counts.json") => Some(argo::replica_counts::run_case),
        ("argo", "rollout_phase.json") => Some(argo::rollout_phase::run_case),
        ("argo", "traffic_routers.json") => Some(traffic::argo_routers::run_case),
        ("flagger", "metric_checks.json") => Some(flagger::metric_checks::run_case),
        ("flagger", "router_gatewayapi.json") => Some(traffic::flagger_gateway::run_case),
        ("flagger", "router_istio.json") => Some(traffic::flagger_istio::run_case),
        ("flagger", "router_nginx.json") => Some(traffic::flagger_nginx::run_case),
        ("flagger", "router_smi.json") => Some(traffic::flagger_smi::run_case),
        ("flagger", "weight_progression.json") => Some(flagger::weight_progression::run_case),
        ("kayenta", "mann_whitney.json") => Some(kayenta::mann_whitney::run_case),
        ("kayenta", "metric_classification.json") => Some(kayenta::metric_classification::run_case),
        ("kayenta", "scoring.json") => Some(kayenta::scoring::run_case),
        _ => None,
    }
}

/// A case the project deliberately answers differently from the peer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// `<group>/<file>`, e.g. `argo/replica_counts.json`.
    pub file: String,
    /// The case id (Argo) or name (Flagger, Kayenta).
    pub id: String,
    /// Why the project differs.
    pub reason: String,
}

/// What happened to one case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Matched the expected answer.
    Passed,
    /// Did not match, or could not be run; the text explains.
    Failed(String),
    /// Did not match, as recorded in the deviation list (the reason given there).
    Deviation(String),
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// The case id or name.
    pub id: String,
    /// What happened.
    pub outcome: Outcome,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileStatus {
    /// No handler: the area is not built yet.
    Unsupported,
    /// The cases were run.
    Ran(Vec<CaseReport>),
}

/// The outcome of one vector file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// Group directory (`argo`, `flagger`, `kayenta`, ...).
    pub group: String,
    /// File name (`replica_counts.json`, ...).
    pub file: String,
    /// Whether and how it ran.
    pub status: FileStatus,
}

impl FileReport {
    /// `<group>/<file>`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.group, self.file)
    }

    fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        match &self.status {
            FileStatus::Unsupported => 0,
            FileStatus::Ran(cases) => cases.iter().filter(|c| pred(&c.outcome)).count(),
        }
    }

    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Passed))
    }

    /// Cases that failed (including stale deviation entries).
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    /// Cases reported as deviations.
    pub fn deviations(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Deviation(_)))
    }
}

impl fmt::Display for FileReport {
    /// The one summary line of the file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            FileStatus::Unsupported => write!(f, "conformance {}: unsupported", self.path()),
            FileStatus::Ran(_) => write!(
                f,
                "conformance {}: {} passed, {} failed, {} deviations",
                self.path(),
                self.passed(),
                self.failed(),
                self.deviations()
            ),
        }
    }
}

/// The outcome of a whole run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunReport {
    /// One report per vector file, in walk order.
    pub files: Vec<FileReport>,
    /// Deviation entries whose file was run but that name no case of it.
    pub unmatched_deviations: Vec<Deviation>,
}

impl RunReport {
    /// One summary line per file.
    pub fn lines(&self) -> Vec<String> {
        self.files.iter().map(ToString::to_string).collect()
    }

    /// Total passed cases.
    pub fn passed(&self) -> usize {
        self.files.iter().map(FileReport::passed).sum()
    }

    /// Total failed cases.
    pub fn failed(&self) -> usize {
        self.files.iter().map(FileReport::failed).sum()
    }

    /// Total deviations.
    pub fn deviations(&self) -> usize {
        self.files.iter().map(FileReport::deviations).sum()
    }

    /// `<group>/<file> <id>: <detail>` for every failed case.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for file in &self.files {
            if let FileStatus::Ran(cases) = &file.status {
                for case in cases {
                    if let Outcome::Failed(detail) = &case.outcome {
                        out.push(format!("{} {}: {}", file.path(), case.id, detail));
                    }
                }
            }
        }
        out
    }

    /// True when no case failed and every deviation entry matched a case.
    pub fn is_success(&self) -> bool {
        self.failed() == 0 && self.unmatched_deviations.is_empty()
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// A directory or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The deviation list is not a JSON list of `{file, id, reason}`.
    #[error("invalid deviation list {path}: {source}")]
    Deviations {
        /// The deviation file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The vector directory has no group directories.
    #[error("no vector groups found in {path}")]
    Empty {
        /// The directory.
        path: PathBuf,
    },
}

/// The in-tree copy of the vectors.
pub fn in_tree_vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// The in-tree deviation list.
pub fn in_tree_deviations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deviations.json")
}

/// `$CONFORMANCE_DIR` when set and not empty, else [`in_tree_vectors`].
pub fn conformance_dir() -> PathBuf {
    match std::env::var_os(CONFORMANCE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => in_tree_vectors(),
    }
}

/// Reads a deviation list (`[{file, id, reason}]`).
pub fn load_deviations(path: &Path) -> Result<Vec<Deviation>, RunnerError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunnerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| RunnerError::Deviations {
        path: path.to_path_buf(),
        source,
    })
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, RunnerError> {
    let io = |source| RunnerError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        entries.push(entry.map_err(io)?.path());
    }
    entries.sort();
    Ok(entries)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs every vector file under `dir` (one sub-directory per group).
pub fn run_dir(dir: &Path, deviations: &[Deviation]) -> Result<RunReport, RunnerError> {
    let mut report = RunReport::default();
    let mut listed: BTreeMap<(&str, &str), &Deviation> = BTreeMap::new();
    for d in deviations {
        listed.insert((d.file.as_str(), d.id.as_str()), d);
    }
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut ran_files: BTreeSet<String> = BTreeSet::new();

    let groups: Vec<PathBuf> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if groups.is_empty() {
        return Err(RunnerError::Empty {
            path: dir.to_path_buf(),
        });
    }
    for group_dir in groups {
        let group = name_of(&group_dir);
        for path in sorted_entries(&group_dir)? {
            if !path.is_file() || path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let file = name_of(&path);
            let Some(handler) = handler_for(&group, &file) else {
                report.files.push(FileReport {
                    group: group.clone(),
                    file,
                    status: FileStatus::Unsupported,
                });
                continue;
            };
            let rel = format!("{group}/{file}");
            ran_files.insert(rel.clone());
            let text = std::fs::read_to_string(&path).map_err(|source| RunnerError::Io {
                path: path.clone(),
                source,
            })?;
            let cases = run_file(&text, handler, |id| {
                listed.get(&(rel.as_str(), id)).copied()
            });
            for case in &cases {
                seen.insert((rel.clone(), case.id.clone()));
            }
            report.files.push(FileReport {
                group: group.clone(),
                file,
                status: FileStatus::Ran(cases),
            });
        }
    }
    report.unmatched_deviations = deviations
        .iter()
        .filter(|d| ran_files.contains(&d.file) && !seen.contains(&(d.file.clone(), d.id.clone())))
        .cloned()
        .collect();
    Ok(report)
}

/// Splits a file into cases; a file that is not one of the two envelopes is one failure.
fn cases_of(doc: &Value) -> Result<Vec<Case<'_>>, String> {
    let (list, id_key, expected_key) = match doc {
        Value::Array(list) => (list, "id", "expected"),
        Value::Object(map) => match map.get("cases") {
            Some(Value::Array(list)) => (list, "name", "expect"),
            _ => return Err("object envelope without a \"cases\" list".into()),
        },
        _ => return Err("neither a list of cases nor {description, cases}".into()),
    };
    let mut cases = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let Some(obj) = raw.as_object() else {
            return Err(format!("case #{i} is not an object"));
        };
        let id = obj
            .get(id_key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("case #{i} has no string {id_key:?}"))?;
        let kind = obj
            .get("kind")
            .or_else(|| obj.get("op"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let input = match obj.get("input") {
            Some(v @ Value::Object(_)) => v,
            _ => raw,
        };
        let expected = obj.get(expected_key).unwrap_or(&Value::Null);
        cases.push(Case {
            id,
            kind,
            input,
            expected,
            raw,
        });
    }
    Ok(cases)
}

fn run_file<'d>(
    text: &str,
    handler: Handler,
    deviation: impl Fn(&str) -> Option<&'d Deviation>,
) -> Vec<CaseReport> {
    let doc: Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            return vec![CaseReport {
                id: "<file>".into(),
                outcome: Outcome::Failed(format!("not valid JSON: {e}")),
            }];
        }
    };
    let cases = match cases_of(&doc) {
        Ok(cases) => cases,
        Err(e) => {
            return vec![CaseReport {
                id: "<file>".into(),
                outcome: Outcome::Failed(e),
            }];
        }
    };
    let mut ids = BTreeSet::new();
    cases
        .iter()
        .map(|case| {
            let result = if ids.insert(case.id) {
                handler(case)
            } else {
                CaseResult::Fail(format!("duplicate case id {:?}", case.id))
            };
            let outcome = match (result, deviation(case.id)) {
                (CaseResult::Pass, None) => Outcome::Passed,
                (CaseResult::Fail(detail), None) => Outcome::Failed(detail),
                (CaseResult::Fail(_), Some(d)) => Outcome::Deviation(d.reason.clone()),
                (CaseResult::Pass, Some(_)) => {
                    Outcome::Failed("listed in deviations.json but passes: remove the entry".into())
                }
            };
            CaseReport {
                id: case.id.to_string(),
                outcome,
            }
        })
        .collect()
}
