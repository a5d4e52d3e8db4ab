//! Every `Rollout` in the Argo Rollouts corpus (`testdata/corpus/argo-rollouts/`: examples,
//! end-to-end tests and documentation snippets of argoproj/argo-rollouts) must parse and
//! validate, except the documents listed in [`REJECTED`], which must fail with exactly the
//! listed error. A new failure, or a listed document that starts to pass, fails the test.

use std::collections::BTreeMap;
use std::fs;

use rollout_core::spec::{Rollout, RolloutDocument, SpecError, rollout_documents};
use serde_json::{Value, json};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/corpus/argo-rollouts");

/// Number of corpus files and of `Rollout` documents in them.
const FILES: usize = 121;
const ROLLOUTS: usize = 121;

/// A corpus document that is not a valid Rollout on its own.
struct Rejected {
    file: &'static str,
    /// Index of the document in the file (as reported by `rollout_documents`).
    doc: usize,
    /// A substring of the error (`path: message`).
    error: &'static str,
    /// The document is a fragment: it omits `metadata.name`, `spec.selector` and/or
    /// `spec.template`, and is valid once those are filled in with boilerplate.
    fragment: bool,
}

const fn rejected(file: &'static str, doc: usize, error: &'static str) -> Rejected {
    Rejected {
        file,
        doc,
        error,
        fragment: false,
    }
}

const fn fragment(file: &'static str, doc: usize, error: &'static str) -> Rejected {
    Rejected {
        file,
        doc,
        error,
        fragment: true,
    }
}

const TEMPLATE_REQUIRED: &str = "spec.template: required unless spec.workloadRef is set";
const SELECTOR_REQUIRED: &str = "spec.selector: required unless spec.workloadRef is set";
const NO_SPEC: &str = "spec: missing required field";
const SERVICE_PORT: &str =
    "spec.strategy.canary.trafficRouting.alb.servicePort: missing required field";
const RESOURCE_PLUGIN: &str = "spec.resourcePlugin: unknown field";

const REJECTED: &[Rejected] = &[
    // Step-plugin snippet: only the steps are shown.
    fragment(
        "docs__features__canary__plugins__3.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    // Kustomize base: the selector is added by kustomize's commonLabels.
    fragment("docs__features__kustomize__3.yaml", 0, SELECTOR_REQUIRED),
    // Notifications snippet: metadata (the subscription annotation) only.
    rejected("docs__features__notifications__2.yaml", 0, NO_SPEC),
    // The specification page lists `replicaProgressThreshold` as a step, but it is a field
    // of the canary strategy (the CRD has no such step; the API server would prune it and
    // leave an empty step). The page also has placeholders (`scaleDown:
    // never|onsuccess|progressively`, a made-up status); the unit test
    // `specification_page_fields_are_modelled` parses it with those fixed. Fields are read
    // in document order, so the placeholder, which comes first, is what is reported.
    rejected(
        "docs__features__specification__0.yaml",
        0,
        "spec.workloadRef.scaleDown: unknown variant `never|onsuccess|progressively`",
    ),
    // ALB snippet showing `ingress` and `ingresses` side by side as alternatives.
    rejected(
        "docs__features__traffic-management__alb__0.yaml",
        0,
        "spec.strategy.canary.trafficRouting.alb.ingresses: ingress and ingresses are mutually exclusive",
    ),
    // ALB snippets that show one option and omit the required `servicePort`.
    rejected(
        "docs__features__traffic-management__alb__3.yaml",
        0,
        SERVICE_PORT,
    ),
    rejected(
        "docs__features__traffic-management__alb__4.yaml",
        0,
        SERVICE_PORT,
    ),
    rejected(
        "docs__features__traffic-management__alb__7.yaml",
        0,
        SERVICE_PORT,
    ),
    // ALB with ping-pong but no `rootService`, which Argo's validation requires for that
    // combination ("Root service field is required for the configuration with ALB and
    // ping-pong feature enabled").
    rejected(
        "docs__features__traffic-management__alb__6.yaml",
        0,
        "spec.strategy.canary.trafficRouting.alb.rootService: required with alb and pingPong",
    ),
    // Traffic-management overview: `trafficRouting: {}` placeholder.
    rejected(
        "docs__features__traffic-management__index__0.yaml",
        0,
        "spec.strategy.canary.trafficRouting: must configure at least one traffic router",
    ),
    // Managed-routes snippet: routes without any router.
    rejected(
        "docs__features__traffic-management__index__1.yaml",
        0,
        "spec.strategy.canary.trafficRouting: must configure at least one traffic router",
    ),
    // Header and mirror route snippets: the strategy only.
    fragment(
        "docs__features__traffic-management__index__2.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    fragment(
        "docs__features__traffic-management__index__3.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    fragment(
        "docs__features__traffic-management__mixed__0.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    // Notification service snippets: metadata only.
    rejected(
        "docs__generated__notification-services__pagerduty__3.yaml",
        0,
        NO_SPEC,
    ),
    rejected(
        "docs__generated__notification-services__pagerduty_v2__3.yaml",
        0,
        NO_SPEC,
    ),
    // Getting-started guides: the strategy only (the full manifests live elsewhere).
    fragment(
        "docs__getting-started__alb__index__0.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    fragment(
        "docs__getting-started__istio__index__0.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    fragment(
        "docs__getting-started__mixed__index__0.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    fragment(
        "docs__getting-started__mixed__index__1.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    fragment(
        "docs__getting-started__mixed__index__2.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    fragment(
        "docs__getting-started__nginx__index__0.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    fragment(
        "docs__getting-started__smi__index__0.yaml",
        0,
        TEMPLATE_REQUIRED,
    ),
    // Plugin docs: the strategy only.
    fragment("docs__plugins__2.yaml", 0, TEMPLATE_REQUIRED),
    fragment("docs__plugins__3.yaml", 0, TEMPLATE_REQUIRED),
    // Design proposal for a `spec.resourcePlugin` field that Argo does not have.
    rejected(
        "docs__proposals__resource-plugin__11.yaml",
        0,
        RESOURCE_PLUGIN,
    ),
    rejected(
        "docs__proposals__resource-plugin__13.yaml",
        0,
        RESOURCE_PLUGIN,
    ),
    rejected(
        "docs__proposals__resource-plugin__14.yaml",
        0,
        RESOURCE_PLUGIN,
    ),
    rejected(
        "docs__proposals__resource-plugin__15.yaml",
        0,
        RESOURCE_PLUGIN,
    ),
    rejected(
        "docs__proposals__resource-plugin__16.yaml",
        0,
        RESOURCE_PLUGIN,
    ),
    rejected(
        "docs__proposals__resource-plugin__5.yaml",
        0,
        RESOURCE_PLUGIN,
    ),
    rejected(
        "docs__proposals__resource-plugin__7.yaml",
        0,
        RESOURCE_PLUGIN,
    ),
];

/// The corpus files, sorted by name, with their text.
fn corpus() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(DIR)
        .expect("corpus directory")
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 file name")
                .to_string();
            let text = fs::read_to_string(&path).expect("utf-8 corpus file");
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// Parse and validate; the error as `path: message` text.
fn outcome(doc: &RolloutDocument) -> Result<&Rollout, String> {
    match &doc.result {
        Err(e) => {
            assert!(e.path().is_some(), "parse error without a field path: {e}");
            Err(e.to_string())
        }
        Ok(ro) => match ro.validate() {
            Ok(()) => Ok(ro),
            Err(errs) => Err(errs.to_string()),
        },
    }
}

#[test]
fn every_rollout_parses_and_validates_except_the_listed_ones() {
    let files = corpus();
    assert_eq!(files.len(), FILES, "corpus files changed");
    let mut failures: BTreeMap<(String, usize), String> = BTreeMap::new();
    let mut rollouts = 0;
    for (name, text) in &files {
        for doc in rollout_documents(text) {
            rollouts += 1;
            if let Err(e) = outcome(&doc) {
                failures.insert((name.clone(), doc.index), e);
            }
        }
    }
    assert_eq!(rollouts, ROLLOUTS, "number of Rollout documents changed");

    let mut problems = Vec::new();
    for r in REJECTED {
        match failures.remove(&(r.file.to_string(), r.doc)) {
            None => problems.push(format!(
                "{} #{}: expected to fail, but passed",
                r.file, r.doc
            )),
            Some(e) if !e.contains(r.error) => problems.push(format!(
                "{} #{}: expected an error containing {:?}, got:\n{e}",
                r.file, r.doc, r.error
            )),
            Some(_) => {}
        }
    }
    for ((file, doc), e) in failures {
        problems.push(format!("{file} #{doc}: unexpected failure:\n{e}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Fills in what documentation fragments leave out: a name, a selector and a pod template.
fn complete_fragment(mut v: Value) -> Value {
    let labels = v
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({"app": "fragment"}));
    let obj = v.as_object_mut().expect("a mapping");
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if meta.get("name").is_none() {
        meta["name"] = json!("fragment");
    }
    let spec = obj
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .expect("fragments have a spec");
    if !spec.contains_key("workloadRef") {
        spec.entry("selector")
            .or_insert_with(|| json!({"matchLabels": labels.clone()}));
        spec.entry("template").or_insert_with(|| {
            json!({
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}
            })
        });
    }
    v
}

#[test]
fn fragments_are_valid_once_completed() {
    for r in REJECTED.iter().filter(|r| r.fragment) {
        let text = fs::read_to_string(format!("{DIR}/{}", r.file)).expect("corpus file");
        assert_eq!(r.doc, 0, "fragments are single documents");
        let value: Value = serde_saphyr::from_str(&text).expect("fragment is one YAML document");
        let ro = Rollout::from_json_value(complete_fragment(value))
            .unwrap_or_else(|e| panic!("{}: {e}", r.file));
        if let Err(errs) = ro.validate() {
            panic!("{}: still invalid once completed:\n{errs}", r.file);
        }
    }
}

#[test]
fn round_trip_through_json() {
    let mut checked = 0;
    for (name, text) in corpus() {
        for doc in rollout_documents(&text) {
            let Ok(ro) = doc.result else { continue };
            let json = serde_json::to_value(&ro).expect("serializes");
            let again = Rollout::from_json_value(json.clone())
                .unwrap_or_else(|e| panic!("{name} #{}: re-parse failed: {e}", doc.index));
            assert_eq!(
                again, ro,
                "{name} #{}: round trip changed the value",
                doc.index
            );
            // Serializing is deterministic and stable.
            assert_eq!(serde_json::to_value(&again).expect("serializes"), json);
            checked += 1;
        }
    }
    assert!(
        checked >= ROLLOUTS - REJECTED.len(),
        "only {checked} round trips"
    );
}

#[test]
fn reports_carry_document_index_and_line() {
    let text = fs::read_to_string(format!(
        "{DIR}/test__e2e__apisix__rollout-apisix-canary-set-header.yaml"
    ))
    .expect("corpus file");
    let docs = rollout_documents(&text);
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!(doc.index, 3);
    assert!(
        text.lines()
            .nth(doc.line - 1)
            .is_some_and(|l| l.starts_with("---") || doc.line == 1)
    );
    // The document combines pause, setCanaryScale and setHeaderRoute in one step, which
    // Argo accepts.
    let wrapped = rollout_core::spec::rollouts_from_yaml_documents(&text);
    let ro = wrapped[0].as_ref().expect("combined step parses");
    assert_eq!(ro.canary().map(|c| c.steps[0].parts().len()), Some(3));
    // A typo in that document is reported with its index and the field path.
    let broken = text.replacen("setHeaderRoute:", "setHeaderRoutes:", 1);
    let wrapped = rollout_core::spec::rollouts_from_yaml_documents(&broken);
    let err = wrapped[0].as_ref().expect_err("rejected document");
    assert!(matches!(err, SpecError::Document { index: 3, .. }), "{err}");
    assert_eq!(
        err.path(),
        Some("spec.strategy.canary.steps[0].setHeaderRoutes")
    );
}

/// Damaged documents never panic: every file cut short at many points, and with each
/// line dropped in turn.
#[test]
fn damaged_documents_do_not_panic() {
    let mut runs = 0usize;
    for (_, text) in corpus() {
        let cuts: Vec<usize> = (0..text.len())
            .step_by(97)
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        for cut in cuts {
            let _ = rollout_documents(&text[..cut]);
            runs += 1;
        }
        let lines: Vec<&str> = text.lines().collect();
        for skip in (0..lines.len()).step_by(4) {
            let damaged: String = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            for doc in rollout_documents(&damaged) {
                if let Ok(ro) = doc.result {
                    let _ = ro.validate();
                }
            }
            runs += 1;
        }
    }
    assert!(runs > 1000, "only {runs} damaged inputs");
}
