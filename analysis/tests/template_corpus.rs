//! The analysis-template corpus: every AnalysisTemplate, ClusterAnalysisTemplate,
//! AnalysisRun and MetricTemplate document of the Argo Rollouts and Flagger snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rollout_analysis::template::{
    AnalysisTemplateSpec, ArgError, Argument, TemplateDocument, ValueFrom, resolve_args,
    resolve_args_with, template_documents,
};

fn corpus_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus");
    let mut files = Vec::new();
    for dir in ["argo-rollouts", "flagger"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    files.sort();
    files
}

fn file_key(p: &Path) -> String {
    let dir = p.parent().unwrap().file_name().unwrap().to_string_lossy();
    format!("{dir}/{}", p.file_name().unwrap().to_string_lossy())
}

/// Splits on `---` lines and returns the documents whose kind is one of ours, with their
/// index among non-empty documents (as `template_documents` counts them).
fn our_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs.push(cur);
    let content = |d: &str| {
        d.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
    };
    docs.into_iter()
        .filter(|d| content(d))
        .enumerate()
        .filter(|(_, d)| {
            d.lines().any(|l| {
                let l = l.trim_end();
                [
                    "kind: AnalysisTemplate",
                    "kind: ClusterAnalysisTemplate",
                    "kind: AnalysisRun",
                    "kind: MetricTemplate",
                ]
                .contains(&l)
            })
        })
        .collect()
}

/// `(file, doc index, error substring, reason)`: the documents that are rejected, with the
/// exact error text expected (parse or validation error, `Display` form).
const EXPECTED_FAILURES: &[(&str, usize, &str, &str)] = &[
    (
        "argo-rollouts/docs__analysis__kayenta__3.yaml",
        0,
        "spec.metrics[0].provider.kayenta.interval: unknown field",
        "docs example puts interval/count/thresholds inside the kayenta provider; Argo's \
         KayentaMetric has no such fields (the CRD would prune them)",
    ),
    (
        "argo-rollouts/docs__features__analysis__3.yaml",
        0,
        "spec.args[1].value: invalid type: integer `9090`, expected a string",
        "arg values are strings in the CRD; an unquoted 9090 is rejected by the API server",
    ),
    (
        "flagger/docs__gitbook__usage__metrics__1.yaml",
        0,
        "spec.provider.type: invalid type: null, expected a string",
        "a field reference with every value left empty (comments only)",
    ),
    (
        "flagger/docs__gitbook__usage__metrics__10.yaml",
        0,
        "spec.query: must not be empty",
        "docs fragment showing only the provider (no query)",
    ),
    (
        "flagger/docs__gitbook__usage__metrics__14.yaml",
        0,
        "apiVersion: expected \"flagger.app/v1beta1\" for kind MetricTemplate, found \"flagger.app/v1alpha1\"",
        "old API version in the docs",
    ),
    (
        "flagger/docs__gitbook__usage__metrics__22.yaml",
        0,
        "spec.query: must not be empty",
        "docs fragment showing only the provider (no query)",
    ),
];

fn check(doc: &str) -> Result<TemplateDocument, String> {
    let d = TemplateDocument::from_yaml(doc).map_err(|e| e.to_string())?;
    d.validate().map_err(|e| e.to_string())?;
    Ok(d)
}

#[test]
fn corpus_parses_and_validates_except_listed() {
    let mut parsed = 0;
    let mut rejected = Vec::new();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let files = corpus_files();
    assert_eq!(files.len(), 78, "corpus files");
    for f in &files {
        let key = file_key(f);
        let text = std::fs::read_to_string(f).unwrap();
        let docs = our_documents(&text);
        assert!(!docs.is_empty(), "{key}: no template document");
        for (i, doc) in docs {
            match check(&doc) {
                Ok(d) => {
                    parsed += 1;
                    *by_kind.entry(d.kind()).or_default() += 1;
                }
                Err(e) => rejected.push((key.clone(), i, e)),
            }
        }
    }
    let got: Vec<(String, usize)> = rejected.iter().map(|(f, i, _)| (f.clone(), *i)).collect();
    let want: Vec<(String, usize)> = EXPECTED_FAILURES
        .iter()
        .map(|(f, i, _, _)| (f.to_string(), *i))
        .collect();
    assert_eq!(got, want, "rejected documents: {rejected:#?}");
    for ((_, _, err), (file, _, want, reason)) in rejected.iter().zip(EXPECTED_FAILURES) {
        assert!(
            err.contains(want),
            "{file}: expected {want:?} ({reason}), got {err:?}"
        );
    }
    assert_eq!(parsed, 75);
    let kinds: Vec<(&str, usize)> = by_kind.into_iter().collect();
    assert_eq!(
        kinds,
        vec![
            ("AnalysisRun", 3),
            ("AnalysisTemplate", 39),
            ("ClusterAnalysisTemplate", 2),
            ("MetricTemplate", 31),
        ]
    );
}

#[test]
fn multi_document_loader_keeps_only_template_kinds() {
    for f in corpus_files() {
        let key = file_key(&f);
        let text = std::fs::read_to_string(&f).unwrap();
        let ours = our_documents(&text);
        // Validation is separate: only parse failures stop the loader.
        let failing = ours
            .iter()
            .any(|(_, d)| TemplateDocument::from_yaml(d).is_err());
        match template_documents(&text) {
            Ok(docs) => {
                assert!(!failing, "{key}: expected a failure");
                let idx: Vec<usize> = docs.iter().map(|d| d.index).collect();
                let want: Vec<usize> = ours.iter().map(|(i, _)| *i).collect();
                assert_eq!(idx, want, "{key}");
            }
            Err(e) => {
                assert!(failing, "{key}: {e}");
                assert!(e.document_index().is_some(), "{key}: {e}");
            }
        }
    }
}

#[test]
fn corpus_round_trips() {
    for f in corpus_files() {
        let key = file_key(&f);
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, doc) in our_documents(&text) {
            let Ok(d) = TemplateDocument::from_yaml(&doc) else {
                continue;
            };
            let json = d.to_json_value();
            let again = TemplateDocument::from_json_value(json.clone())
                .unwrap_or_else(|e| panic!("{key} #{i}: {e}"));
            assert_eq!(again, d, "{key} #{i}");
            assert_eq!(again.to_json_value(), json, "{key} #{i}");
            let text = serde_json::to_string(&json).unwrap();
            let from_text = TemplateDocument::from_yaml(&text).unwrap();
            assert_eq!(from_text, d, "{key} #{i} via JSON text");
        }
    }
}

#[test]
fn truncated_documents_never_panic() {
    for f in corpus_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let cuts: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .filter(|i| i % 7 == 0)
            .collect();
        for cut in cuts {
            let part = &text[..cut];
            let _ = template_documents(part);
            if let Ok(d) = TemplateDocument::from_yaml(part) {
                let _ = d.validate();
            }
        }
    }
}

const TEMPLATE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service-name
  - name: count
    value: "3"
  - name: api-token
    valueFrom:
      secretKeyRef:
        name: token-secret
        key: apiToken
  metrics:
  - name: success-rate
    interval: 1m
    count: "{{args.count}}"
    successCondition: result[0] >= 0.95 && "{{args.service-name}}" != ""
    provider:
      prometheus:
        address: http://prometheus:9090
        query: sum(rate(requests{service="{{args.service-name}}"}[5m]))
        headers:
        - key: Authorization
          value: "Bearer {{args.api-token}}"
"#;

fn template_spec() -> AnalysisTemplateSpec {
    match TemplateDocument::from_yaml(TEMPLATE).unwrap() {
        TemplateDocument::AnalysisTemplate(t) => t.spec,
        other => panic!("{other:?}"),
    }
}

fn arg(name: &str, value: &str) -> Argument {
    Argument {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

#[test]
fn resolves_args_with_secrets() {
    let spec = template_spec();
    spec.validate().unwrap();
    let source = |name: &str, vf: &ValueFrom| {
        assert_eq!(name, "api-token");
        vf.secret_key_ref
            .as_ref()
            .map(|_| "s3cr3t-token".to_string())
    };
    let resolved = resolve_args_with(&spec, &[arg("service-name", "checkout")], &source).unwrap();
    let m = &resolved.metrics[0];
    let prom = m.provider.prometheus.as_ref().unwrap();
    assert_eq!(
        prom.query.as_deref(),
        Some(r#"sum(rate(requests{service="checkout"}[5m]))"#)
    );
    assert_eq!(prom.headers[0].value, "Bearer s3cr3t-token");
    assert_eq!(
        m.success_condition.as_deref(),
        Some(r#"result[0] >= 0.95 && "checkout" != """#)
    );
    assert_eq!(m.count.as_ref().and_then(|c| c.as_int()), Some(3));
    assert!(resolved.is_secret("api-token"));
    assert!(!format!("{resolved:?}").contains("s3cr3t"));
    assert_eq!(
        resolved.redact("auth failed with s3cr3t-token"),
        "auth failed with *****"
    );
    // Rollout args override template values.
    let resolved = resolve_args_with(
        &spec,
        &[arg("service-name", "a"), arg("count", "5")],
        &source,
    )
    .unwrap();
    assert_eq!(
        resolved.metrics[0].count.as_ref().and_then(|c| c.as_int()),
        Some(5)
    );
}

#[test]
fn missing_required_arg_names_it() {
    let spec = template_spec();
    let err = resolve_args(&spec, &[]).unwrap_err();
    assert_eq!(
        err,
        ArgError::Missing {
            name: "service-name".into()
        }
    );
    assert_eq!(err.to_string(), "args.service-name was not resolved");
    let err = resolve_args(&spec, &[arg("service-name", "x")]).unwrap_err();
    assert_eq!(
        err,
        ArgError::Unresolved {
            name: "api-token".into()
        }
    );
}

#[test]
fn secret_values_never_in_errors() {
    let mut spec = template_spec();
    spec.metrics[0].count = Some(rollout_analysis::template::IntOrString::String(
        "{{args.api-token}}".into(),
    ));
    spec.metrics[0]
        .provider
        .prometheus
        .as_mut()
        .unwrap()
        .timeout = None;
    let source = |_: &str, _: &ValueFrom| Some("hunter2".to_string());
    let resolved = resolve_args_with(&spec, &[arg("service-name", "x")], &source).unwrap();
    // A count that is not a number is a validation matter, and redaction still applies.
    assert!(!format!("{resolved:?}").contains("hunter2"));
    let mut spec = template_spec();
    spec.metrics[0].success_condition = Some("{{args.nope}}".into());
    let err = resolve_args_with(&spec, &[arg("service-name", "x")], &source).unwrap_err();
    assert_eq!(
        err,
        ArgError::Unknown {
            name: "nope".into()
        }
    );
    assert!(!err.to_string().contains("hunter2"));
}

fn errors_of(yaml: &str) -> Vec<String> {
    match TemplateDocument::from_yaml(yaml).unwrap().validate() {
        Ok(()) => Vec::new(),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn validation_rules_with_paths() {
    let yaml = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  metrics:
  - name: a
    count: 2
    failureLimit: 3
    provider: {web: {url: "http://x"}}
  - name: a
    interval: 5x
    initialDelay: nope
    inconclusiveLimit: -1
    consecutiveErrorLimit: -2
    failureLimit: -2
    provider: {}
  - name: b
    failureLimit: -1
    provider:
      prometheus: {query: up}
      datadog: {query: x}
"#;
    assert_eq!(
        errors_of(yaml),
        vec![
            "spec.metrics[0].count: count (2) must be >= failureLimit + consecutiveSuccessLimit (3)",
            "spec.metrics[0].interval: interval must be specified when count > 1",
            "spec.metrics[1].name: duplicate metric name \"a\"",
            "spec.metrics[1].failureLimit: must be >= -1",
            "spec.metrics[1].inconclusiveLimit: must be >= 0",
            "spec.metrics[1].consecutiveErrorLimit: must be >= 0",
            "spec.metrics[1].interval: invalid duration \"5x\": unknown unit \"x\" in duration \"5x\"",
            "spec.metrics[1].initialDelay: invalid duration \"nope\": invalid duration \"nope\"",
            "spec.metrics[1].provider: no provider specified",
            "spec.metrics[2].failureLimit: failureLimit and consecutiveSuccessLimit cannot both be disabled",
            "spec.metrics[2].provider: multiple providers specified: prometheus, datadog",
        ]
    );
    let empty =
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata: {name: r}\nspec: {}\n";
    assert_eq!(
        errors_of(empty),
        vec!["spec.metrics: at least one metric is required"]
    );
}

#[test]
fn parse_errors_name_the_field() {
    let yaml = r#"
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: t}
spec:
  metrics:
  - name: a
    provider:
      prometheus:
        query: [1]
"#;
    let err = TemplateDocument::from_yaml(yaml).unwrap_err();
    assert_eq!(
        err.path(),
        Some("spec.metrics[0].provider.prometheus.query")
    );
    let typo = yaml.replace("query: [1]", "qurey: up");
    let err = TemplateDocument::from_yaml(&typo).unwrap_err();
    assert_eq!(
        err.path(),
        Some("spec.metrics[0].provider.prometheus.qurey")
    );
    let err = TemplateDocument::from_yaml("kind: Rollout\napiVersion: argoproj.io/v1alpha1\n")
        .unwrap_err();
    assert_eq!(err.path(), Some("kind"));
    // Free-form providers keep whatever they hold.
    let ff = yaml.replace(
        "prometheus:\n        query: [1]",
        "plugin:\n        argoproj-labs/x: {any: [1, 2]}",
    );
    let d = TemplateDocument::from_yaml(&ff).unwrap();
    d.validate().unwrap();
}
