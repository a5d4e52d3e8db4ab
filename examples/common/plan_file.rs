//! Plans every `Rollout` of a (multi-document) YAML text; shared by the `plan` example
//! and the examples' tests.

use std::fmt::Write as _;

use rollout_core::canary::Action;
use rollout_core::flagger::spec::canary_documents;
use rollout_core::plan::bluegreen::{BlueGreenPlan, plan_blue_green};
use rollout_core::plan::flagger::{FlaggerPlan, plan_canary};
use rollout_core::plan::{Plan, plan};
use rollout_core::spec::yaml::split_documents;
use rollout_core::spec::{CanaryStep, Rollout, rollout_documents};
use rollout_core::traffic::{TrafficCommand, TrafficRouter};
use rollout_traffic::ObjectRef;
use rollout_traffic::patch::{Patch, PatchOp};
use rollout_traffic::router::{MemoryRouter, RolloutRouting, Target};

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
                if let Some(routes) = route_section(&rollout, text) {
                    let _ = writeln!(report.output, "{routes}");
                }
                report.plans.push((doc.index, p));
            }
            Err(e) => report.errors.push(format!("{place}: Rollout {name}: {e}")),
        }
    }
    report
}

/// The routing objects of `text` (VirtualServices, DestinationRules, Ingresses,
/// TrafficSplits, HTTPRoutes), by reference; `namespace` fills in a missing one.
fn routing_objects(text: &str, namespace: &str) -> Vec<(ObjectRef, serde_json::Value)> {
    const KINDS: [&str; 5] = [
        "VirtualService",
        "DestinationRule",
        "Ingress",
        "TrafficSplit",
        "HTTPRoute",
    ];
    let mut out = Vec::new();
    for chunk in split_documents(text).iter().filter(|c| c.has_content) {
        let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(chunk.text) else {
            continue;
        };
        let kind = doc["kind"].as_str().unwrap_or_default();
        if !KINDS.contains(&kind) {
            continue;
        }
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or(namespace);
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        out.push((ObjectRef::new(kind, ns, name), doc));
    }
    out
}

/// One line per change a plan makes.
fn patch_lines(patch: &Patch) -> Vec<String> {
    let compact = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
    match patch {
        Patch::Json(ops) => ops
            .iter()
            .filter_map(|op| match op {
                PatchOp::Test { .. } => None,
                PatchOp::Add { path, value } => Some(format!("add {path} = {}", compact(value))),
                PatchOp::Replace { path, value } => {
                    Some(format!("replace {path} = {}", compact(value)))
                }
                PatchOp::Remove { path } => Some(format!("remove {path}")),
                other => Some(format!("{other:?}")),
            })
            .collect(),
        Patch::Merge(v) => vec![format!("merge {}", compact(v))],
        Patch::Create(v) => vec![format!(
            "create {} {}",
            v["kind"].as_str().unwrap_or("object"),
            compact(&v["spec"])
        )],
        _ => Vec::new(),
    }
}

/// For a canary with `trafficRouting`: the patches its routers would send at each step
/// (and at the end of the update), planned against the routing objects found in the
/// same file. `None` without traffic routing.
fn route_section(rollout: &Rollout, text: &str) -> Option<String> {
    let canary = rollout.spec.strategy.canary.as_ref()?;
    canary.traffic_routing.as_ref()?;
    let mut out = String::new();
    let routing = match RolloutRouting::from_rollout(rollout) {
        Ok(r) => r,
        Err(e) => return Some(format!("  routes: {e}")),
    };
    let objects = routing_objects(text, &routing.namespace);
    let missing: Vec<String> = routing
        .targets()
        .iter()
        .filter_map(|t| match t {
            Target::VirtualService(o, _) | Target::DestinationRule(o) | Target::HttpRoute(o) => {
                Some(o)
            }
            Target::CanaryIngress { stable, .. } => Some(stable),
            _ => None,
        })
        .filter(|o| !objects.iter().any(|(r, _)| r == *o))
        .map(|o| format!("{} {}/{}", o.kind, o.namespace, o.name))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "  routes: add {} to the file to see the patches each step sends",
            missing.join(", ")
        ));
    }
    let total = canary.max_traffic_weight();
    let mut router = MemoryRouter::new(routing, objects);
    let weight = |w: i32| Action::SetTrafficWeight {
        canary_weight: w,
        stable_weight: total - w,
        total,
        canary_hash: "canary".into(),
        stable_hash: "stable".into(),
        additional: Vec::new(),
    };
    let _ = writeln!(out, "  routes (what the routers send):");
    let mut steps: Vec<(String, Vec<Action>)> = Vec::new();
    for (i, step) in canary.steps.iter().enumerate() {
        let actions: Vec<Action> = step
            .parts()
            .iter()
            .filter_map(|p| match p {
                CanaryStep::SetWeight(w) => Some(weight(*w)),
                CanaryStep::SetHeaderRoute(h) => Some(Action::SetHeaderRoute(h.clone())),
                CanaryStep::SetMirrorRoute(m) => Some(Action::SetMirrorRoute(m.clone())),
                _ => None,
            })
            .collect();
        steps.push((format!("step {}", i + 1), actions));
    }
    steps.push((
        "promoted".into(),
        vec![Action::RemoveManagedRoutes, weight(0)],
    ));
    for (label, actions) in steps {
        for a in &actions {
            if let Some(cmd) = TrafficCommand::from_action(a)
                && let Err(e) = router.execute(&cmd)
            {
                let _ = writeln!(out, "    {label}: error: {e}");
            }
        }
        for plan in router.take_sent() {
            let o = &plan.object;
            for line in patch_lines(&plan.patch) {
                let _ = writeln!(
                    out,
                    "    {label:<9} {} {}/{}: {line}",
                    o.kind, o.namespace, o.name
                );
            }
        }
    }
    Some(out.trim_end().to_string())
}
