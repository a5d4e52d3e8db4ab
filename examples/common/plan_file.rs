//! Plans every `Rollout` of a (multi-document) YAML text; shared by the `plan` example
//! and the examples' tests.

use std::fmt::Write as _;

use rollout_core::flagger::spec::canary_documents;
use rollout_core::plan::bluegreen::{BlueGreenPlan, plan_blue_green};
use rollout_core::plan::flagger::{FlaggerPlan, plan_canary};
use rollout_core::plan::{Plan, plan};
use rollout_core::spec::rollout_documents;

/// What planning one file gave.
#[derive(Debug)]
pub(crate) struct FileReport {
    /// The plan of each Rollout document that could be planned, with its document index.
    pub(crate) plans: Vec<(usize, Plan)>,
    /// The stage table of each blue-green Rollout document, with its document index.
    pub(crate) blue_green: Vec<(usize, BlueGreenPlan)>,
    /// The tick table of each Flagger Canary document, with its document index.
    pub(crate) flagger: Vec<(usize, FlaggerPlan)>,
    /// One message per Rollout document that could not be read or planned.
    pub(crate) errors: Vec<String>,
    /// Everything to print on standard output: the tables, in document order.
    pub(crate) output: String,
}

impl FileReport {
    /// Whether every Rollout document was planned, and there was at least one.
    pub(crate) fn ok(&self) -> bool {
        self.errors.is_empty()
            && !(self.plans.is_empty() && self.blue_green.is_empty() && self.flagger.is_empty())
    }
}

/// Plans every `Rollout` document of `text`; `source` names the file in messages.
/// Documents of other kinds (Services, AnalysisTemplates, ...) are skipped.
pub(crate) fn plan_text(source: &str, text: &str) -> FileReport {
    let docs = rollout_documents(text);
    let canaries = canary_documents(text);
    let mut report = FileReport {
        plans: Vec::new(),
        blue_green: Vec::new(),
        flagger: Vec::new(),
        errors: Vec::new(),
        output: String::new(),
    };
    if docs.is_empty() && canaries.is_empty() {
        report.errors.push(format!(
            "{source}: no Rollout (argoproj.io) or Canary (flagger.app) document found"
        ));
        return report;
    }
    let many = docs.len() + canaries.len() > 1;
    for doc in canaries {
        let place = format!("{source}: document {} (line {})", doc.index + 1, doc.line);
        match doc
            .result
            .map_err(|e| format!("cannot read the Canary: {e}"))
            .and_then(|c| {
                plan_canary(&c).map_err(|e| {
                    format!(
                        "Canary {}: {e}",
                        c.metadata.name.as_deref().unwrap_or("(unnamed)")
                    )
                })
            }) {
            Ok(p) => {
                if many || !report.output.is_empty() {
                    let _ = writeln!(report.output, "# {place}");
                }
                let _ = writeln!(report.output, "{p}");
                report.flagger.push((doc.index, p));
            }
            Err(e) => report.errors.push(format!("{place}: {e}")),
        }
    }
    for doc in docs {
        let place = format!("{source}: document {} (line {})", doc.index + 1, doc.line);
        let rollout = match doc.result {
            Ok(r) => r,
            Err(e) => {
                report
                    .errors
                    .push(format!("{place}: cannot read the Rollout: {e}"));
                continue;
            }
        };
        let name = rollout.metadata.name.as_deref().unwrap_or("(unnamed)");
        if rollout.blue_green().is_some() {
            match plan_blue_green(&rollout) {
                Ok(p) => {
                    if many || !report.output.is_empty() {
                        let _ = writeln!(report.output, "# {place}");
                    }
                    let _ = writeln!(report.output, "{p}");
                    report.blue_green.push((doc.index, p));
                }
                Err(e) => report.errors.push(format!("{place}: Rollout {name}: {e}")),
            }
            continue;
        }
        match plan(&rollout) {
            Ok(p) => {
                if many || !report.output.is_empty() {
                    let _ = writeln!(report.output, "# {place}");
                }
                let _ = writeln!(report.output, "{p}");
                report.plans.push((doc.index, p));
            }
            Err(e) => report.errors.push(format!("{place}: Rollout {name}: {e}")),
        }
    }
    report
}
