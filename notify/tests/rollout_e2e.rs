//! End to end: a real canary driven by rollout-core's simulator through a healthy
//! update and one whose analysis fails and aborts it; every pass's events go through
//! the trigger layer, the notifier and the dispatcher to recording servers, with the
//! subscriptions read from the Rollout's annotations. A replayed pass (its status write
//! lost) does not notify again.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Reply, Server};
use rollout_core::sim::{AlwaysSucceeds, AnalysisScript, Harness, SimCluster, SimRun};
use rollout_core::spec::Rollout;
use rollout_core::status::{AnalysisPhase, RolloutPhase};
use rollout_core::time::Timestamp;
use rollout_notify::send::{HttpClient, RetryPolicy, SlackWebhook, Webhook};
use rollout_notify::{
    Dispatcher, NotificationEvent, NotifiedState, Notifier, from_annotations, rollout_events,
};
use serde_json::Value;

const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

fn rollout() -> Rollout {
    Rollout::from_yaml(
        "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
  annotations:
    notifications.argoproj.io/subscribe.on-rollout-updated.webhook: ''
    notifications.argoproj.io/subscribe.on-rollout-step-completed.webhook: ''
    notifications.argoproj.io/subscribe.on-rollout-completed.webhook: ''
    notifications.argoproj.io/subscribe.on-analysis-run-failed.webhook: ''
    notifications.argoproj.io/subscribe.on-rollout-aborted.webhook: ''
    notifications.argoproj.io/subscribe.on-rollout-aborted.slack: '#deploys'
    notifications.argoproj.io/subscribe.on-rollout-completed.slack: '#deploys'
spec:
  replicas: 4
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: web:1
  strategy:
    canary:
      steps:
      - setWeight: 25
      - pause: {duration: 1m}
      - setWeight: 50
      - analysis:
          templates:
          - templateName: success-rate
      - setWeight: 100
",
    )
    .expect("rollout parses")
}

/// Every run fails 60 s after it starts.
struct Fails;
impl AnalysisScript for Fails {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        (now >= run.started_at.add_secs(60)).then(|| {
            (
                AnalysisPhase::Failed,
                "Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)"
                    .into(),
            )
        })
    }
    fn next_check(&self, run: &SimRun, _now: Timestamp) -> Option<Timestamp> {
        Some(run.started_at.add_secs(60))
    }
}

/// A pass that emitted events, with the harness as it was just before it.
struct Pass {
    before: Harness,
    events: Vec<NotificationEvent>,
}

/// Runs the harness as `Harness::run` does (settle, then jump to the next instant) and
/// returns the notification events of every pass, with a snapshot before each.
fn drive(h: &mut Harness, script: &mut dyn AnalysisScript, until: Timestamp) -> Vec<Pass> {
    let mut out = Vec::new();
    loop {
        for _ in 0..64 {
            h.run_script(script);
            let snapshot = h.clone();
            let rec = h.pass();
            let events = rollout_events(&h.rollout, &snapshot.status, &rec.status, &rec.events);
            let quiet = rec.actions.is_empty() && rec.events.is_empty() && !rec.status_changed;
            if !events.is_empty() {
                out.push(Pass {
                    before: snapshot,
                    events,
                });
            }
            if quiet && !h.run_script(script) {
                break;
            }
        }
        match h.next_instant(script) {
            Some(t) if t <= until => h.now = t,
            _ => return out,
        }
    }
}

struct Pipeline {
    notifier: Notifier,
    dispatcher: Dispatcher,
    state: NotifiedState,
    webhook: Server,
    slack: Server,
}

impl Pipeline {
    fn new() -> Pipeline {
        let webhook = Server::start(Reply::new(200, ""));
        let slack = Server::start(Reply::new(200, "ok"));
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        };
        let mut dispatcher = Dispatcher::new();
        dispatcher
            .register(
                "webhook",
                Webhook::new(HttpClient::new(), &webhook.url())
                    .with_secret(b"k")
                    .with_retry(policy),
            )
            .register(
                "slack",
                SlackWebhook::new(HttpClient::new(), &slack.url()).with_retry(policy),
            );
        Pipeline {
            notifier: Notifier::with_catalog(BTreeMap::new()).expect("catalog"),
            dispatcher,
            state: NotifiedState::new(),
            webhook,
            slack,
        }
    }

    /// Plans, dispatches and records `events` as a controller would after a pass;
    /// returns how many deliveries were planned.
    async fn notify(&mut self, rollout: &Rollout, events: &[NotificationEvent]) -> usize {
        let annotations = rollout.metadata.annotations.clone().unwrap_or_default();
        let subs = from_annotations(&annotations).expect("subscriptions parse");
        let plan = self.notifier.plan(events, &subs, &self.state);
        let report = self.dispatcher.dispatch(&plan).await;
        assert!(report.all_delivered(), "{:?}", report.failed);
        self.state.record(&report);
        // The state is persisted as JSON between passes.
        let json = serde_json::to_string(&self.state).expect("state serialises");
        self.state = serde_json::from_str(&json).expect("state deserialises");
        plan.len()
    }

    /// `(trigger, occurrence)` of every webhook request so far.
    fn webhook_log(&self) -> Vec<(String, String)> {
        self.webhook
            .requests()
            .iter()
            .map(|r| {
                let v: Value = r.json();
                (
                    v["trigger"].as_str().unwrap_or("").to_string(),
                    v["occurrence"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn canary_update_and_abort_notify_subscribers_once() {
    let mut h = Harness::new(rollout(), "v1", SimCluster::new(15), T0);
    let mut p = Pipeline::new();
    // The initial deploy: notifies on-rollout-completed for v1.
    for pass in drive(
        &mut h,
        &mut AlwaysSucceeds { after_seconds: 60 },
        T0.add_secs(3600),
    ) {
        p.notify(&h.rollout, &pass.events).await;
    }
    assert_eq!(h.status.phase, Some(RolloutPhase::Healthy));
    let initial = p.webhook_log();
    assert_eq!(initial, pairs(&[("on-rollout-completed", "")]));

    // A healthy update to v2.
    h.pod_template_hash = "v2".into();
    let until = h.now.add_secs(3600);
    for pass in drive(&mut h, &mut AlwaysSucceeds { after_seconds: 60 }, until) {
        p.notify(&h.rollout, &pass.events).await;
    }
    assert_eq!(h.status.stable_rs, "v2");
    let log = p.webhook_log();
    assert_eq!(
        log[initial.len()..],
        pairs(&[
            ("on-rollout-updated", ""),
            ("on-rollout-step-completed", "step-1"),
            ("on-rollout-step-completed", "step-2"),
            ("on-rollout-step-completed", "step-3"),
            ("on-rollout-step-completed", "step-4"),
            ("on-rollout-step-completed", "step-5"),
            ("on-rollout-completed", ""),
        ])[..]
    );
    let v2: Vec<Value> = p.webhook.requests()[initial.len()..]
        .iter()
        .map(|r| r.json())
        .collect();
    assert!(v2.iter().all(|v| v["revision"] == "v2"), "{v2:?}");
    assert_eq!(
        v2[2]["text"],
        "Rollout shop/web step 2/5 has been completed."
    );
    assert_eq!(v2[2]["facts"]["step.index"], "2");

    // A bad update to v3: its analysis fails and the rollout aborts.
    h.pod_template_hash = "v3".into();
    let until = h.now.add_secs(3600);
    let before_v3 = p.webhook.requests().len();
    let slack_before_v3 = p.slack.requests().len();
    let passes = drive(&mut h, &mut Fails, until);
    for pass in &passes {
        p.notify(&h.rollout, &pass.events).await;
    }
    assert_eq!(h.status.phase, Some(RolloutPhase::Degraded));
    let log = p.webhook_log();
    assert_eq!(
        log[before_v3..],
        pairs(&[
            ("on-rollout-updated", ""),
            ("on-rollout-step-completed", "step-1"),
            ("on-rollout-step-completed", "step-2"),
            ("on-rollout-step-completed", "step-3"),
            // The run's name is the machine's: <rollout>-<hash>-<step index>-<suffix>.
            ("on-analysis-run-failed", "web-v3-3-mywpop80"),
            ("on-rollout-aborted", ""),
        ])[..]
    );
    let failed: Value = p.webhook.requests()[before_v3 + 4].json();
    assert_eq!(failed["type"], "Warning");
    assert_eq!(failed["facts"]["analysis.phase"], "Failed");
    assert_eq!(
        failed["facts"]["analysis.message"],
        "Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)"
    );
    assert_eq!(
        failed["message"],
        "Step Analysis Run 'web-v3-3-mywpop80' Status New: 'Failed' Previous: 'Running'"
    );
    // Slack got the v2 completion before and now exactly the abort.
    let slack: Vec<Value> = p.slack.requests()[slack_before_v3..]
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(
        slack[0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Rollout shop/web has been aborted: ")),
        "{slack:?}"
    );

    // Replay the aborting pass from the harness as it was before it (its status write
    // was lost): the machine emits the abort again, the notifier sends nothing.
    let aborting = passes
        .iter()
        .find(|pass| {
            pass.events
                .iter()
                .any(|e| e.trigger == "on-rollout-aborted")
        })
        .expect("a pass aborted");
    let mut replay = aborting.before.clone();
    let before_status = replay.status.clone();
    let rec = replay.pass();
    let again = rollout_events(&replay.rollout, &before_status, &rec.status, &rec.events);
    assert_eq!(
        again.iter().map(|e| &e.trigger).collect::<Vec<_>>(),
        aborting
            .events
            .iter()
            .map(|e| &e.trigger)
            .collect::<Vec<_>>(),
        "the replayed pass emits the same events"
    );
    let sent_before = (p.webhook.requests().len(), p.slack.requests().len());
    assert_eq!(p.notify(&replay.rollout, &again).await, 0);
    assert_eq!(
        (p.webhook.requests().len(), p.slack.requests().len()),
        sent_before
    );
    // Every webhook request is signed.
    for r in p.webhook.requests() {
        assert_eq!(
            r.header("x-signature-256"),
            Some(rollout_notify::send::webhook::signature(b"k", &r.body).as_str())
        );
    }
    // And the state is small: one key per delivery made.
    assert_eq!(
        p.state.len(),
        p.webhook.requests().len() + p.slack.requests().len()
    );
}
