//! Every `Canary` in the Flagger corpus (`testdata/corpus/flagger/`: examples, end-to-end
//! tests and documentation snippets of fluxcd/flagger, the files that hold a `Canary`) must
//! parse and validate, except the documents listed in [`REJECTED`], which must fail with
//! the listed error. A new failure, or a listed document that starts to pass, fails the
//! test.

use std::collections::BTreeMap;
use std::fs;

use rollout_core::flagger::spec::{
    Canary, CanaryDocument, SpecError, Strategy, canaries_from_yaml_documents, canary_documents,
};
use serde_json::{Value, json};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/corpus/flagger");

/// Number of corpus files and of `Canary` documents in them.
const FILES: usize = 77;
const CANARIES: usize = 78;

/// A corpus document that is not a valid Canary on its own.
struct Rejected {
    file: &'static str,
    /// Index of the document in the file (as reported by `canary_documents`).
    doc: usize,
    /// A substring of the error (`path: message`).
    error: &'static str,
    /// The document is a fragment that omits `targetRef`, `analysis` and/or
    /// `metadata.name`, and is valid once those are filled in with boilerplate.
    fragment: bool,
}

const fn fragment(file: &'static str, doc: usize, error: &'static str) -> Rejected {
    Rejected {
        file,
        doc,
        error,
        fragment: true,
    }
}

const NO_TARGET: &str = "spec.targetRef: missing required field";
const NO_ANALYSIS: &str = "spec.analysis: required";

const NO_PORT: &str = "spec.service.port: missing required field";

/// Every rejected document is a documentation snippet that shows one section of the spec.
/// Fields are read in document order, so the first missing field in that order is the one
/// reported (a `service` without `port` comes before the missing `targetRef`).
const REJECTED: &[Rejected] = &[
    // FAQ: Istio routing options of `service` only.
    fragment("docs__gitbook__faq__12.yaml", 0, NO_TARGET),
    // FAQ: a `trafficPolicy` for a backend only.
    fragment("docs__gitbook__faq__15.yaml", 0, NO_TARGET),
    // FAQ: the `service` section with its target; no analysis.
    fragment("docs__gitbook__faq__2.yaml", 0, NO_ANALYSIS),
    // FAQ: two canaries sharing a host, `service` only.
    fragment("docs__gitbook__faq__20.yaml", 0, NO_TARGET),
    fragment("docs__gitbook__faq__20.yaml", 1, NO_TARGET),
    // FAQ: mTLS `trafficPolicy` only (no port, no name).
    fragment("docs__gitbook__faq__21.yaml", 0, NO_PORT),
    fragment("docs__gitbook__faq__22.yaml", 0, NO_PORT),
    // FAQ: port discovery, `service` only (no name).
    fragment("docs__gitbook__faq__5.yaml", 0, NO_TARGET),
    // Gateway API tutorial: CORS, timeouts, header, rewrite options (no port).
    fragment(
        "docs__gitbook__tutorials__gatewayapi-progressive-delivery__10.yaml",
        0,
        NO_PORT,
    ),
    fragment(
        "docs__gitbook__tutorials__gatewayapi-progressive-delivery__6.yaml",
        0,
        NO_PORT,
    ),
    fragment(
        "docs__gitbook__tutorials__gatewayapi-progressive-delivery__7.yaml",
        0,
        NO_PORT,
    ),
    fragment(
        "docs__gitbook__tutorials__gatewayapi-progressive-delivery__8.yaml",
        0,
        NO_PORT,
    ),
    fragment(
        "docs__gitbook__tutorials__gatewayapi-progressive-delivery__9.yaml",
        0,
        NO_PORT,
    ),
    // Istio tutorial: the traffic-mirroring `analysis` only.
    fragment(
        "docs__gitbook__tutorials__istio-progressive-delivery__3.yaml",
        0,
        NO_TARGET,
    ),
    // Istio tutorial: a TCP `service` ("# omitted for brevity").
    fragment(
        "docs__gitbook__tutorials__istio-progressive-delivery__5.yaml",
        0,
        NO_TARGET,
    ),
    // Zero-downtime guide: Istio retries in `service` only.
    fragment(
        "docs__gitbook__tutorials__zero-downtime-deployments__6.yaml",
        0,
        NO_TARGET,
    ),
];

/// The corpus files (`*.yaml`), sorted by name, with their text.
fn corpus() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(DIR)
        .expect("corpus directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
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
fn outcome(doc: &CanaryDocument) -> Result<&Canary, String> {
    match &doc.result {
        Err(e) => {
            assert!(e.path().is_some(), "parse error without a field path: {e}");
            Err(e.to_string())
        }
        Ok(c) => match c.validate() {
            Ok(()) => Ok(c),
            Err(errs) => Err(errs.to_string()),
        },
    }
}

#[test]
fn every_canary_parses_and_validates_except_the_listed_ones() {
    let files = corpus();
    assert_eq!(files.len(), FILES, "corpus files changed");
    let mut failures: BTreeMap<(String, usize), String> = BTreeMap::new();
    let mut canaries = 0;
    for (name, text) in &files {
        for doc in canary_documents(text) {
            canaries += 1;
            if let Err(e) = outcome(&doc) {
                failures.insert((name.clone(), doc.index), e);
            }
        }
    }
    assert_eq!(canaries, CANARIES, "number of Canary documents changed");

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

/// Fills in what documentation fragments leave out: a name, a target, a service port and
/// an analysis.
fn complete_fragment(mut v: Value) -> Value {
    let obj = v.as_object_mut().expect("a mapping");
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if meta.get("name").is_none() {
        meta["name"] = json!("fragment");
    }
    let spec = obj
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .expect("fragments have a spec");
    spec.entry("targetRef").or_insert_with(
        || json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "fragment"}),
    );
    let service = spec.entry("service").or_insert_with(|| json!({}));
    if service.get("port").is_none() {
        service["port"] = json!(9898);
    }
    spec.entry("analysis")
        .or_insert_with(|| json!({"interval": "1m", "threshold": 5, "stepWeight": 10}));
    v
}

#[test]
fn fragments_are_valid_once_completed() {
    for r in REJECTED.iter().filter(|r| r.fragment) {
        let text = fs::read_to_string(format!("{DIR}/{}", r.file)).expect("corpus file");
        let docs: Vec<&str> = text.split("\n---\n").collect();
        let doc = docs.get(r.doc).expect("document of the fragment");
        let value: Value = serde_saphyr::from_str(doc).expect("fragment is YAML");
        let canary = Canary::from_json_value(complete_fragment(value))
            .unwrap_or_else(|e| panic!("{} #{}: {e}", r.file, r.doc));
        if let Err(errs) = canary.validate() {
            panic!(
                "{} #{}: still invalid once completed:\n{errs}",
                r.file, r.doc
            );
        }
    }
}

#[test]
fn round_trip_through_json() {
    let mut checked = 0;
    for (name, text) in corpus() {
        for doc in canary_documents(&text) {
            let Ok(canary) = doc.result else { continue };
            let json = serde_json::to_value(&canary).expect("serializes");
            let again = Canary::from_json_value(json.clone())
                .unwrap_or_else(|e| panic!("{name} #{}: re-parse failed: {e}", doc.index));
            assert_eq!(
                again, canary,
                "{name} #{}: round trip changed the value",
                doc.index
            );
            // Serializing is deterministic and stable.
            assert_eq!(serde_json::to_value(&again).expect("serializes"), json);
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        CANARIES - REJECTED.iter().filter(|r| r.error != NO_ANALYSIS).count()
    );
}

/// The values the machine reads, on a few well-known documents.
#[test]
fn corpus_strategies_and_defaults() {
    let read = |file: &str| -> Canary {
        let text = fs::read_to_string(format!("{DIR}/{file}")).expect("corpus file");
        let mut docs = canary_documents(&text);
        assert_eq!(docs.len(), 1, "{file}");
        docs.remove(0)
            .result
            .unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let c = read("artifacts__examples__istio-abtest.yaml");
    assert_eq!(c.spec.strategy(), Strategy::ABTesting);
    let c = read("docs__gitbook__tutorials__kubernetes-blue-green__0.yaml");
    assert_eq!(c.spec.strategy(), Strategy::BlueGreen);
    let c = read("artifacts__examples__linkerd-canary-steps.yaml");
    let a = c.analysis().expect("analysis");
    assert_eq!(c.spec.strategy(), Strategy::Canary);
    assert!(!a.step_weights.is_empty());
    assert_eq!(
        a.max_weight(),
        a.step_weights.last().copied().unwrap_or(0).min(100)
    );
    let c = read("artifacts__examples__istio-canary.yaml");
    let a = c.analysis().expect("analysis");
    assert_eq!(c.spec.strategy(), Strategy::Canary);
    assert!(a.interval_seconds() >= 10);
    assert!(a.threshold() >= 1);

    // Every strategy occurs in the corpus.
    let mut seen = BTreeMap::new();
    for (_, text) in corpus() {
        for doc in canary_documents(&text) {
            if let Ok(c) = doc.result {
                *seen.entry(c.spec.strategy().as_str()).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}

#[test]
fn reports_carry_document_index_and_line() {
    let file = "docs__gitbook__tutorials__linkerd-progressive-delivery__0.yaml";
    let text = fs::read_to_string(format!("{DIR}/{file}")).expect("corpus file");
    let docs = canary_documents(&text);
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    // Two MetricTemplates come first.
    assert_eq!(doc.index, 2);
    assert!(
        text.lines()
            .nth(doc.line - 1)
            .is_some_and(|l| l.starts_with("---"))
    );
    assert!(doc.result.is_ok());
    // A typo in that document is reported with its index and the field path.
    let broken = text.replacen("stepWeight:", "stepWieght:", 1);
    let wrapped = canaries_from_yaml_documents(&broken);
    let err = wrapped[0].as_ref().expect_err("rejected document");
    assert!(matches!(err, SpecError::Document { index: 2, .. }), "{err}");
    assert_eq!(err.path(), Some("spec.analysis.stepWieght"));
}

/// Damaged documents never panic: every file cut short at many points, and with each
/// line dropped in turn.
#[test]
fn damaged_documents_do_not_panic() {
    let mut runs = 0usize;
    for (_, text) in corpus() {
        let cuts: Vec<usize> = (0..text.len())
            .step_by(41)
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        for cut in cuts {
            for doc in canary_documents(&text[..cut]) {
                if let Ok(c) = doc.result {
                    let _ = c.validate();
                }
            }
            runs += 1;
        }
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let damaged: String = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            for doc in canary_documents(&damaged) {
                if let Ok(c) = doc.result {
                    let _ = c.validate();
                    let _ = c.spec.strategy();
                    if let Some(a) = c.analysis() {
                        let _ = (a.interval_seconds(), a.threshold(), a.max_weight());
                    }
                }
            }
            runs += 1;
        }
    }
    assert!(runs > 3000, "only {runs} damaged inputs");
}
