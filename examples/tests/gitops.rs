//! Runs the `gitops_flow` example on a temp repository and checks the ledger it leaves.

#[path = "../gitops_flow.rs"]
mod gitops_flow;

use gitops_core::envs::Readiness;
use gitops_core::ledger::EntryRecord;
use gitops_core::record::Action;
use gitops_core::tag::Env;

#[test]
fn the_gitops_example_runs_the_whole_flow() {
    let dir = std::env::temp_dir().join(format!("gitops-example-test-{}", std::process::id()));
    let outcome = gitops_flow::run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let outcome = outcome.expect("the example runs");
    let (c1, c2) = (&outcome.heads[0], &outcome.heads[1]);
    let canary = Env::new("canary").unwrap();
    let prod = Env::new("prod").unwrap();
    // Both environments are back on 1.0.0 after the two rollbacks; the hand-moved
    // pointer is on 1.1.0 and was refused by the guard.
    assert_eq!(outcome.ledger.pointer(&canary), Some(c1));
    assert_eq!(outcome.ledger.pointer(&prod), Some(c2));
    assert!(
        outcome.guard_refusal.contains("outside the flow"),
        "{}",
        outcome.guard_refusal
    );
    assert!(
        outcome.flow_refusal.contains("integration tests"),
        "{}",
        outcome.flow_refusal
    );
    // History: canary release 1, release 2, rollback; prod the same.
    for env in [&canary, &prod] {
        let actions: Vec<(Action, &str)> = outcome
            .ledger
            .history(env)
            .iter()
            .map(|h| match &h.record {
                EntryRecord::Valid(r) => (r.action, if &h.commit == c1 { "c1" } else { "c2" }),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            actions,
            vec![
                (Action::Release, "c1"),
                (Action::Release, "c2"),
                (Action::Rollback, "c1")
            ]
        );
    }
    let text = outcome.lines.join("\n");
    assert!(
        text.contains("refused: roll back prod before canary"),
        "{text}"
    );
    assert!(text.contains("pre-sync guard refuses"), "{text}");
    // PR #2's staging environment: created from the added file, ready after the
    // simulated sync (three polls, 30 s apart), tested, torn down by the deletion.
    let staging = &outcome.staging;
    assert_eq!(staging.created, ["staging-v1-1-0"]);
    assert_eq!(staging.readiness, Readiness::Ready);
    assert_eq!(staging.polls, 3);
    assert!(staging.tested);
    assert_eq!(staging.deleted, ["staging-v1-1-0"]);
    assert_eq!(staging.left, 0);
    for line in [
        "== staging environment for web 1.1.0",
        "add apps/staging/manifests/1.1.0.json",
        "plan: create staging-v1-1-0 from apps/staging/manifests/1.1.0.json: Namespace/staging-v1-1-0, Deployment/web, Service/web",
        "gate +0s: staging-v1-1-0 Synced/Progressing: Deployment/web: Waiting for rollout to finish: 0 out of 2 new replicas have been updated...",
        "gate +60s: staging-v1-1-0 Synced/Healthy",
        "smoke tests of web 1.1.0 in staging-v1-1-0: passed",
        "remove apps/staging/manifests/1.1.0.json",
        "plan: delete staging-v1-1-0; 0 staging environment(s) left",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
