//! Property tests over arbitrary input: nothing panics, edits are idempotent and keep
//! every other line, signatures only verify for the signed body.

use gitops_core::events::{parse_command, parse_event, sign, verify_signature};
use gitops_core::sync::{CompareOptions, compare, health, plan_sync};
use gitops_core::writeback::{ImageUpdate, set_helm_value, set_kustomize_image};
use proptest::prelude::*;
use serde_json::{Value, json};

fn yamlish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("images:".to_string()),
        Just("- name: web".to_string()),
        Just("  - name: web".to_string()),
        Just("    newTag: \"1.0\" # c".to_string()),
        Just("  newTag: '1.0'".to_string()),
        Just("    digest: sha256:aa".to_string()),
        Just("image:".to_string()),
        Just("  tag: 1.0".to_string()),
        Just("  tag: [1]".to_string()),
        Just("# comment".to_string()),
        Just(String::new()),
        "\\PC{0,20}",
    ];
    proptest::collection::vec(line, 0..12).prop_map(|l| l.join("\n") + "\n")
}

proptest! {
    #[test]
    fn edits_never_panic_and_are_idempotent(text in yamlish(), tag in "[a-z0-9.]{1,8}") {
        let update = ImageUpdate { name: "web".into(), new_tag: Some(tag.clone()), ..ImageUpdate::default() };
        if let Ok(e) = set_kustomize_image("k.yaml", &text, &update) {
            // Editing the result again changes nothing.
            let again = set_kustomize_image("k.yaml", &e.text, &update).unwrap();
            prop_assert!(again.is_noop(), "{:?} -> {:?}", e.text, again.text);
            // Nothing is removed: every old line is still there, in order, or was the edited one.
            let kept = text.lines().filter(|l| e.text.lines().any(|n| n == *l)).count();
            prop_assert!(kept + e.changes.len() >= text.lines().count());
        }
        if let Ok(e) = set_helm_value("v.yaml", &text, "image.tag", &tag) {
            let again = set_helm_value("v.yaml", &e.text, "image.tag", &tag).unwrap();
            prop_assert!(again.is_noop());
            prop_assert_eq!(e.text.lines().count(), text.lines().count());
        }
    }

    #[test]
    fn payload_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), kind in 0usize..6) {
        let event = ["pull_request", "pull_request_review", "issue_comment", "push", "create", "ping"][kind];
        let _ = parse_event(event, &body);
        let _ = parse_command(&String::from_utf8_lossy(&body));
    }

    #[test]
    fn signatures_verify_only_the_signed_body(
        secret in proptest::collection::vec(any::<u8>(), 0..40),
        body in proptest::collection::vec(any::<u8>(), 0..100),
        other in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let sig = sign(&secret, &body);
        prop_assert!(verify_signature(&secret, &body, Some(&sig)).is_ok());
        if other != body {
            prop_assert!(verify_signature(&secret, &other, Some(&sig)).is_err());
        }
    }

    #[test]
    fn health_and_compare_never_panic(
        kind in prop_oneof![Just("Deployment"), Just("StatefulSet"), Just("Service"), Just("Ingress"), Just("PersistentVolumeClaim"), Just("Rollout")],
        replicas in prop_oneof![Just(json!(null)), Just(json!(3)), Just(json!("x")), Just(json!(-1))],
        phase in prop_oneof![Just(json!(null)), Just(json!("Paused")), Just(json!(7))],
        gen_ in prop_oneof![Just(json!(1)), Just(json!("1")), Just(json!(null))],
    ) {
        let obj: Value = json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "x", "generation": gen_, "annotations": {"argocd.argoproj.io/sync-wave": phase}},
            "spec": {"replicas": replicas, "updateStrategy": {"rollingUpdate": {"partition": replicas}}},
            "status": {"phase": phase, "observedGeneration": gen_, "readyReplicas": replicas, "loadBalancer": {"ingress": replicas}}
        });
        let _ = health(&obj);
        let _ = compare(std::slice::from_ref(&obj), &[obj.clone(), json!({"kind": 1})], &CompareOptions::default());
        let _ = plan_sync(&[obj]);
    }
}
