//! Webhook deliveries: GitHub-shaped payloads to flow inputs; broken payloads and bad
//! signatures are typed errors naming the field.

use gitops_core::events::{
    BranchMap, Event, EventError, flow_input, merged_env, parse_event, receive, sign,
};
use gitops_core::flow::{Command, Input};
use gitops_core::tag::{CommitId, Env};
use serde_json::json;

const SECRET: &[u8] = b"webhook-secret";
const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";

fn deliver(event: &str, body: &serde_json::Value) -> Result<Event, EventError> {
    let body = serde_json::to_vec(body).unwrap();
    let sig = sign(SECRET, &body);
    receive(
        SECRET,
        &[("x-github-event", event), ("X-Hub-Signature-256", &sig)],
        &body,
    )
}

fn pr(action: &str) -> serde_json::Value {
    json!({
        "action": action,
        "number": 42,
        "pull_request": {
            "number": 42,
            "head": {"ref": "feature/x", "sha": HEAD},
            "base": {"ref": "main", "sha": HEAD},
            "merged": action == "closed",
            "labels": []
        },
        "sender": {"login": "alice"}
    })
}

#[test]
fn comments_reviews_and_labels_become_flow_inputs() {
    let comment = json!({
        "action": "created",
        "issue": {"number": 42, "pull_request": {"url": "https://api.example.invalid/pulls/42"}},
        "comment": {"body": "/prod_release", "user": {"login": "carol"}}
    });
    let input = flow_input(&deliver("issue_comment", &comment).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(input.pr, 42);
    assert_eq!(
        input.input,
        Input::Command {
            actor: "carol".into(),
            command: Command::Release {
                env: Env::new("prod").unwrap()
            }
        }
    );
    // A comment on a plain issue, or not a command: nothing to do.
    let mut on_issue = comment.clone();
    on_issue["issue"]
        .as_object_mut()
        .unwrap()
        .remove("pull_request");
    assert_eq!(
        flow_input(&deliver("issue_comment", &on_issue).unwrap()).unwrap(),
        None
    );
    let mut chatter = comment.clone();
    chatter["comment"]["body"] = json!("looks good");
    assert_eq!(
        flow_input(&deliver("issue_comment", &chatter).unwrap()).unwrap(),
        None
    );
    let mut bad = comment.clone();
    bad["comment"]["body"] = json!("/deploy everything");
    assert!(matches!(
        flow_input(&deliver("issue_comment", &bad).unwrap()),
        Err(EventError::UnknownCommand { .. })
    ));

    let review = json!({
        "action": "submitted",
        "review": {"state": "approved", "user": {"login": "bob"}, "commit_id": HEAD},
        "pull_request": pr("opened")["pull_request"].clone()
    });
    let input = flow_input(&deliver("pull_request_review", &review).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        input.input,
        Input::Approved {
            reviewer: "bob".into(),
            commit: CommitId::new(HEAD).unwrap()
        }
    );

    let mut labeled = pr("labeled");
    labeled["label"] = json!({"name": "canary_release"});
    let input = flow_input(&deliver("pull_request", &labeled).unwrap())
        .unwrap()
        .unwrap();
    assert!(matches!(
        input.input,
        Input::Command {
            command: Command::Release { .. },
            ..
        }
    ));
    labeled["label"] = json!({"name": "bug"});
    assert_eq!(
        flow_input(&deliver("pull_request", &labeled).unwrap()).unwrap(),
        None
    );

    let pushed = flow_input(&deliver("pull_request", &pr("synchronize")).unwrap())
        .unwrap()
        .unwrap();
    assert!(matches!(pushed.input, Input::Pushed { .. }));

    let merged = deliver("pull_request", &pr("closed")).unwrap();
    let map = BranchMap::default();
    assert_eq!(merged_env(&merged, &map).unwrap().0.as_str(), "live");
    assert_eq!(map.env("release").unwrap().as_str(), "integration");
    assert_eq!(map.env("development").unwrap().as_str(), "dev");
}

#[test]
fn push_and_create() {
    let push = json!({
        "ref": "refs/tags/prod_release",
        "before": HEAD, "after": HEAD, "forced": true
    });
    let Event::Push(p) = deliver("push", &push).unwrap() else {
        panic!()
    };
    assert_eq!(p.short_ref(), "prod_release");
    assert!(p.forced);
    let create = json!({"ref": "prod_20261122013000", "ref_type": "tag"});
    assert!(matches!(
        deliver("create", &create).unwrap(),
        Event::Create(_)
    ));
    assert!(matches!(
        deliver("ping", &json!({"zen": "x"})).unwrap(),
        Event::Ping
    ));
}

#[test]
fn broken_payloads_name_the_field() {
    let mut review = json!({
        "action": "submitted",
        "review": {"state": "approved", "user": {"login": "bob"}, "commit_id": "nope"},
        "pull_request": pr("opened")["pull_request"].clone()
    });
    match deliver("pull_request_review", &review).unwrap_err() {
        EventError::Payload { event, path, .. } => {
            assert_eq!(event, "pull_request_review");
            assert_eq!(path, "review.commit_id");
        }
        other => panic!("{other:?}"),
    }
    review["review"]["commit_id"] = json!(HEAD);
    review["pull_request"]["number"] = json!("forty-two");
    match deliver("pull_request_review", &review).unwrap_err() {
        EventError::Payload { path, .. } => assert_eq!(path, "pull_request.number"),
        other => panic!("{other:?}"),
    }
    let comment = json!({"action": "created", "issue": {"number": 1}, "comment": {"body": "/x"}});
    match deliver("issue_comment", &comment).unwrap_err() {
        EventError::Payload { path, message, .. } => {
            assert_eq!(path, "comment");
            assert!(message.contains("user"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_event("push", b"{not json"),
        Err(EventError::Payload { .. })
    ));
    assert!(matches!(
        parse_event("deployment", b"{}"),
        Err(EventError::UnsupportedEvent { .. })
    ));
}

#[test]
fn bad_signatures_are_refused_before_parsing() {
    let body = br#"{"action":"created"}"#;
    let wrong = sign(b"other-secret", body);
    assert_eq!(
        receive(
            SECRET,
            &[
                ("X-GitHub-Event", "issue_comment"),
                ("X-Hub-Signature-256", &wrong)
            ],
            body
        ),
        Err(EventError::BadSignature)
    );
    assert_eq!(
        receive(SECRET, &[("X-GitHub-Event", "issue_comment")], body),
        Err(EventError::MissingSignature)
    );
    // A tampered body with the original signature.
    let sig = sign(SECRET, body);
    assert_eq!(
        receive(SECRET, &[("X-Hub-Signature-256", &sig)], body),
        Err(EventError::MissingEventType)
    );
    assert_eq!(
        receive(
            SECRET,
            &[
                ("X-GitHub-Event", "issue_comment"),
                ("X-Hub-Signature-256", &sig)
            ],
            br#"{"action":"deleted"}"#
        ),
        Err(EventError::BadSignature)
    );
}
