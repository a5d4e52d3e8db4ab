//! The HTTP senders against recording servers on 127.0.0.1: exact payloads, the HMAC
//! signature checked independently, GitHub paths and bodies, Slack's `ok: false`,
//! retries with backoff and `Retry-After`, timeouts, and a dispatch that never fails.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Reply, Server, closed_port};
use hmac::{Hmac, Mac};
use rollout_notify::send::{
    GithubComments, GithubStatuses, HttpClient, RetryPolicy, SlackApi, SlackWebhook, StatusState,
    Webhook,
};
use rollout_notify::{
    Delivery, Dispatcher, NotificationEvent, NotifiedState, Notifier, SendError, Service, Severity,
    Subject, Subscription, TemplateSpec, TriggerSpec,
};
use serde_json::json;
use sha2::Sha256;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
    }
}

fn aborted() -> NotificationEvent {
    NotificationEvent {
        trigger: "on-rollout-aborted".into(),
        reason: "RolloutAborted".into(),
        severity: Severity::Warning,
        message: "Rollout aborted update to revision 3: Metric \"success-rate\" assessed Failed"
            .into(),
        subject: Subject::rollout("shop", "web"),
        revision: "v3".into(),
        occurrence: String::new(),
        facts: [
            ("rollout.name", "web"),
            ("rollout.namespace", "shop"),
            ("release.pr", "42"),
            ("release.commit", SHA),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

fn notifier(spec: TemplateSpec) -> Notifier {
    let ctx: BTreeMap<String, String> = [("dashboard".to_string(), "http://dash".to_string())]
        .into_iter()
        .collect();
    let mut n = Notifier::new(ctx);
    n.add_template("t", &spec).expect("template loads");
    n.add_trigger("on-rollout-aborted", TriggerSpec::send("t"))
        .expect("trigger");
    n
}

/// The single delivery of `aborted()` to `recipient` of `service` under `spec`.
fn delivery_with(spec: TemplateSpec, service: &str, recipient: &str) -> Delivery {
    let subs = [Subscription::new(
        "on-rollout-aborted",
        service,
        [recipient],
    )];
    let mut plan = notifier(spec).plan(&[aborted()], &subs, &NotifiedState::new());
    assert_eq!(plan.len(), 1);
    plan.remove(0)
}

fn delivery(service: &str, recipient: &str) -> Delivery {
    delivery_with(
        TemplateSpec {
            message: "{{rollout.name}} aborted".into(),
            link: Some("{{context.dashboard}}/{{rollout.name}}".into()),
            ..TemplateSpec::default()
        },
        service,
        recipient,
    )
}

#[tokio::test]
async fn slack_webhook_posts_text_and_blocks() {
    let server = Server::start(Reply::new(200, "ok"));
    let d = delivery_with(
        TemplateSpec {
            message: "{{rollout.name}} aborted".into(),
            slack_blocks: Some(json!([
                {"type": "section", "text": {"type": "mrkdwn", "text": "*{{rollout.namespace}}/{{rollout.name}}*: {{event.message}}"}}
            ])),
            ..TemplateSpec::default()
        },
        "slack",
        "",
    );
    let hook = SlackWebhook::new(
        HttpClient::new(),
        &format!("{}/services/T1/B2/x", server.url()),
    )
    .with_retry(fast());
    hook.send(&d).await.expect("sent");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/services/T1/B2/x");
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!(
        reqs[0].json(),
        json!({
            "text": "web aborted",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                "text": "*shop/web*: Rollout aborted update to revision 3: Metric \"success-rate\" assessed Failed"}}]
        })
    );
}

#[tokio::test]
async fn slack_api_posts_to_the_channel_with_the_token() {
    let server = Server::start(Reply::new(200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#));
    let api = SlackApi::new(HttpClient::new(), "xoxb-secret")
        .with_api_url(&format!("{}/api/", server.url()))
        .with_identity(Some("rollouts"), Some(":rocket:"))
        .with_retry(fast());
    api.send(&delivery("slack", "#deploys"))
        .await
        .expect("sent");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/api/chat.postMessage");
    assert_eq!(reqs[0].header("authorization"), Some("Bearer xoxb-secret"));
    assert_eq!(
        reqs[0].header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        reqs[0].json(),
        json!({"channel": "#deploys", "text": "web aborted", "username": "rollouts", "icon_emoji": ":rocket:"})
    );
}

#[tokio::test]
async fn slack_api_ok_false_is_a_rejection_and_not_retried() {
    let server = Server::start(Reply::new(
        200,
        r#"{"ok":false,"error":"channel_not_found"}"#,
    ));
    let api = SlackApi::new(HttpClient::new(), "xoxb")
        .with_api_url(&format!("{}/api", server.url()))
        .with_retry(fast());
    let err = api.send(&delivery("slack", "#nope")).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Rejected {
            service: "slack".into(),
            error: "channel_not_found".into()
        }
    );
    assert_eq!(server.requests().len(), 1, "a rejection is final");
    // An answer that is not JSON is a rejection too, and so is an empty channel.
    server.push(Reply::new(200, "ok"));
    let err = api.send(&delivery("slack", "#x")).await.unwrap_err();
    assert!(matches!(err, SendError::Rejected { .. }), "{err:?}");
    let err = api.send(&delivery("slack", "")).await.unwrap_err();
    assert!(matches!(err, SendError::BadRecipient { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn webhook_signs_the_exact_body() {
    let server = Server::start(Reply::new(204, ""));
    let hook = Webhook::new(
        HttpClient::new(),
        &format!("{}/hooks/rollouts", server.url()),
    )
    .with_secret(b"s3cret")
    .with_header("x-api-key", "k1")
    .with_retry(fast());
    hook.send(&delivery("webhook", "")).await.expect("sent");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/rollouts")
    );
    assert_eq!(r.header("x-api-key"), Some("k1"));
    // Verify the signature independently over the raw bytes received.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").expect("key");
    mac.update(&r.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        r.header("x-signature-256"),
        Some(format!("sha256={expected}").as_str())
    );
    assert_eq!(
        r.json(),
        json!({
            "trigger": "on-rollout-aborted",
            "reason": "RolloutAborted",
            "type": "Warning",
            "subject": {"kind": "rollout", "namespace": "shop", "name": "web"},
            "revision": "v3",
            "occurrence": "",
            "message": "Rollout aborted update to revision 3: Metric \"success-rate\" assessed Failed",
            "text": "web aborted",
            "link": "http://dash/web",
            "recipient": "",
            "facts": {
                "release.commit": SHA,
                "release.pr": "42",
                "rollout.name": "web",
                "rollout.namespace": "shop"
            }
        })
    );
}

#[tokio::test]
async fn webhook_template_body_and_signature_header() {
    let server = Server::start(Reply::new(200, ""));
    let d = delivery_with(
        TemplateSpec {
            message: "m".into(),
            webhook_body: Some(json!({"rollout": "{{rollout.name}}", "ok": false, "n": 3})),
            ..TemplateSpec::default()
        },
        "webhook",
        "",
    );
    Webhook::new(HttpClient::new(), &server.url())
        .with_secret(b"k")
        .with_signature_header("X-Hub-Signature-256")
        .with_retry(fast())
        .send(&d)
        .await
        .expect("sent");
    let r = &server.requests()[0];
    assert_eq!(r.body, br#"{"rollout":"web","ok":false,"n":3}"#);
    assert_eq!(r.path, "/");
    assert_eq!(
        r.header("x-hub-signature-256"),
        Some(rollout_notify::send::webhook::signature(b"k", &r.body).as_str())
    );
    assert_eq!(r.header("x-signature-256"), None);
}

#[tokio::test]
async fn github_comment_and_status() {
    let server = Server::start(Reply::new(201, "{}"));
    let comments = GithubComments::new(HttpClient::new(), "ghp_1")
        .with_base_url(&format!("{}/api/v3/", server.url()))
        .with_retry(fast());
    comments
        .send(&delivery("github", "acme/web"))
        .await
        .expect("comment from release.pr");
    comments
        .send(&delivery("github", "acme/web#7"))
        .await
        .expect("comment to #7");
    let statuses = GithubStatuses::new(HttpClient::new(), "ghp_1", "rollouts/prod")
        .with_base_url(&format!("{}/api/v3", server.url()))
        .with_retry(fast());
    statuses
        .send(&delivery("github", "acme/web"))
        .await
        .expect("status");
    let long = delivery_with(
        TemplateSpec {
            message: "x".repeat(300),
            ..TemplateSpec::default()
        },
        "github",
        "acme/web@abc123",
    );
    statuses
        .clone()
        .with_state("on-rollout-aborted", StatusState::Error)
        .send(&long)
        .await
        .expect("status with override");
    let reqs = server.requests();
    let got: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("POST", "/api/v3/repos/acme/web/issues/42/comments"),
            ("POST", "/api/v3/repos/acme/web/issues/7/comments"),
            (
                "POST",
                format!("/api/v3/repos/acme/web/statuses/{SHA}").as_str()
            ),
            ("POST", "/api/v3/repos/acme/web/statuses/abc123"),
        ]
    );
    for r in &reqs {
        assert_eq!(r.header("authorization"), Some("Bearer ghp_1"));
        assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
        assert!(r.header("user-agent").is_some());
    }
    assert_eq!(reqs[0].json(), json!({"body": "web aborted"}));
    assert_eq!(
        reqs[2].json(),
        json!({"state": "failure", "target_url": "http://dash/web", "description": "web aborted", "context": "rollouts/prod"})
    );
    assert_eq!(
        reqs[3].json(),
        json!({"state": "error", "description": "x".repeat(140), "context": "rollouts/prod"})
    );
}

#[tokio::test]
async fn github_recipient_errors_send_nothing() {
    let server = Server::start(Reply::new(201, "{}"));
    let comments = GithubComments::new(HttpClient::new(), "t").with_base_url(&server.url());
    let err = comments
        .send(&delivery("github", "not-a-repo"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::BadRecipient { .. }), "{err:?}");
    let err = comments
        .send(&delivery("github", "acme/web#x1"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::BadRecipient { .. }), "{err:?}");
    let mut d = delivery("github", "acme/web");
    d.event.facts.clear();
    let err = comments.send(&d).await.unwrap_err();
    assert!(matches!(err, SendError::MissingFact { .. }), "{err:?}");
    let statuses = GithubStatuses::new(HttpClient::new(), "t", "c").with_base_url(&server.url());
    let err = statuses.send(&d).await.unwrap_err();
    assert!(matches!(err, SendError::MissingFact { .. }), "{err:?}");
    let err = statuses
        .send(&delivery("github", "acme/web@not-hex"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::BadRecipient { .. }), "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn retries_5xx_with_exponential_backoff() {
    let server = Server::start(Reply::new(200, "ok"));
    server.fail(2, 502);
    let hook = SlackWebhook::new(HttpClient::new(), &server.url()).with_retry(fast());
    hook.send(&delivery("slack", ""))
        .await
        .expect("third attempt succeeds");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs.iter().all(|r| r.body == reqs[0].body),
        "same payload each time"
    );
    // Lower bounds only: a sleep never ends early.
    assert!(reqs[1].at - reqs[0].at >= Duration::from_millis(20));
    assert!(reqs[2].at - reqs[1].at >= Duration::from_millis(40));
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let server = Server::start(Reply::new(200, "ok"));
    server.push(Reply::new(429, "slow down").header("Retry-After", "1"));
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(1),
        ..fast()
    };
    let hook = Webhook::new(HttpClient::new(), &server.url()).with_retry(policy);
    hook.send(&delivery("webhook", ""))
        .await
        .expect("second attempt succeeds");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[1].at - reqs[0].at >= Duration::from_secs(1),
        "waited for Retry-After, not the 1 ms backoff"
    );
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let server = Server::start(Reply::new(503, "down"));
    let hook = Webhook::new(HttpClient::new(), &server.url()).with_retry(fast());
    let err = hook.send(&delivery("webhook", "")).await.unwrap_err();
    let SendError::Exhausted { attempts, last } = err else {
        panic!("expected Exhausted, got {err:?}");
    };
    assert_eq!(attempts, 3);
    assert!(
        matches!(*last, SendError::Status { status: 503, ref body, .. } if body == "down"),
        "{last:?}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = Server::start(Reply::new(404, "no_service"));
    let hook = SlackWebhook::new(HttpClient::new(), &server.url()).with_retry(fast());
    let err = hook.send(&delivery("slack", "")).await.unwrap_err();
    assert!(
        matches!(err, SendError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retried() {
    let server = Server::start(Reply::new(200, "ok").delayed(Duration::from_secs(3)));
    let policy = RetryPolicy {
        max_attempts: 2,
        timeout: Duration::from_millis(100),
        ..fast()
    };
    let hook = Webhook::new(HttpClient::new(), &server.url()).with_retry(policy);
    let err = hook.send(&delivery("webhook", "")).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Exhausted { attempts: 2, last } if matches!(**last, SendError::Timeout { timeout_ms: 100, .. })),
        "{err:?}"
    );
    let refused = Webhook::new(
        HttpClient::new(),
        &format!("http://127.0.0.1:{}/", closed_port()),
    )
    .with_retry(policy);
    let err = refused.send(&delivery("webhook", "")).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Exhausted { attempts: 2, last } if matches!(**last, SendError::Unreachable { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_urls_and_https_without_a_provider_are_config_errors() {
    let client = HttpClient::new();
    assert!(
        !client.supports_https(),
        "no rustls provider in this test binary"
    );
    for url in ["https://hooks.example.invalid/x", "ftp://x/", "not a url"] {
        let err = Webhook::new(client.clone(), url)
            .with_retry(fast())
            .send(&delivery("webhook", ""))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Config { .. }), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn a_failing_sender_never_fails_the_dispatch() {
    let slack = Server::start(Reply::new(200, "ok"));
    let broken = Server::start(Reply::new(500, "boom"));
    let mut dispatcher = Dispatcher::new();
    dispatcher
        .register(
            "slack",
            SlackWebhook::new(HttpClient::new(), &slack.url()).with_retry(fast()),
        )
        .register(
            "webhook",
            Webhook::new(HttpClient::new(), &broken.url()).with_retry(fast()),
        );
    let mut n = Notifier::with_catalog(BTreeMap::new()).expect("catalog");
    n.add_trigger("on-rollout-aborted", TriggerSpec::send("rollout-aborted"))
        .expect("trigger");
    let subs = [
        Subscription::new("on-rollout-aborted", "slack", [""]),
        Subscription::new("on-rollout-aborted", "webhook", [""]),
        Subscription::new("on-rollout-aborted", "teams", ["x"]),
    ];
    let mut state = NotifiedState::new();
    let plan = n.plan(&[aborted()], &subs, &state);
    assert_eq!(plan.len(), 3);
    let report = dispatcher.spawn(plan).await.expect("the task ends");
    assert_eq!(report.delivered.len(), 1);
    assert_eq!(report.delivered[0].service, "slack");
    assert!(!report.all_delivered());
    let failed: Vec<(&str, bool)> = report
        .failed
        .iter()
        .map(|f| {
            (
                f.key.service.as_str(),
                matches!(f.error, SendError::Exhausted { attempts: 3, .. })
                    || matches!(f.error, SendError::UnknownService { .. }),
            )
        })
        .collect();
    assert_eq!(failed, [("webhook", true), ("teams", true)]);
    assert_eq!(broken.requests().len(), 3);
    // Only the delivered one is recorded: the next plan retries the failed two.
    state.record(&report);
    let again = n.plan(&[aborted()], &subs, &state);
    let services: Vec<&str> = again.iter().map(|d| d.key.service.as_str()).collect();
    assert_eq!(services, ["webhook", "teams"]);
    assert_eq!(slack.requests().len(), 1);
    assert_eq!(
        slack.requests()[0].json(),
        json!({"text": "Rollout shop/web has been aborted: Rollout aborted update to revision 3: Metric \"success-rate\" assessed Failed"})
    );
}
