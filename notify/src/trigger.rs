//! Triggers: notification events derived from what the machines and the release flow
//! already emit. Pure functions; nothing here sends anything.
//!
//! # Rollouts
//!
//! [`rollout_events`] takes one pass of the canary or blue-green machine (the status
//! before and after it, and the [`Event`]s it returned) and names every event with
//! Argo's trigger: the reason in kebab-case with the prefix `on-`
//! ([`trigger_name`]): `on-rollout-updated`,
//! `on-rollout-step-completed`, `on-rollout-paused`, `on-rollout-aborted`,
//! `on-rollout-completed`, `on-rollout-timed-out`, `on-rollout-retry`,
//! `on-scaling-replica-set`, `on-traffic-weight-updated`, ...
//!
//! The machines record AnalysisRun verdicts in the status rather than as events; Argo's
//! controller emits `AnalysisRun<Phase>` events when a run in the status changes phase.
//! [`rollout_events`] does the same from the two statuses: `on-analysis-run-running`,
//! `on-analysis-run-successful`, `on-analysis-run-failed`, `on-analysis-run-error`,
//! `on-analysis-run-inconclusive`, with Argo's message
//! `Step Analysis Run '<name>' Status New: 'Failed' Previous: 'Running'`.
//!
//! The revision of a rollout event is the pod template hash the rollout is updating to
//! (`status.currentPodHash`). The occurrence (see [`OncePer`](crate::OncePer)) is:
//!
//! | trigger | occurrence |
//! |---|---|
//! | `on-rollout-step-completed` | `step-<n>` (1-based) |
//! | `on-rollout-paused` | `<pause reason>@step-<n>` |
//! | `on-analysis-run-*` | the AnalysisRun name |
//! | `on-rollout-updated`, `-completed`, `-aborted`, `-timed-out`, `-retry` | empty: once per revision |
//! | any other | the event message |
//!
//! # The release flow
//!
//! gitops-core's flow has no events of its own; its outcomes map onto three triggers of
//! this crate's choosing, and the pre-sync guard onto a fourth:
//!
//! | trigger | reason | when | subject | revision | occurrence |
//! |---|---|---|---|---|---|
//! | `on-release-created` | `ReleaseCreated` | [`handle`](gitops_core::flow::handle) planned a release (an `Effect::Publish` of a release plan) | `env/<env>` | the commit | the history tag |
//! | `on-rolled-back` | `RolledBack` | [`handle`](gitops_core::flow::handle) planned a rollback | `env/<env>` | the commit rolled back to | the history tag |
//! | `on-release-refused` | `ReleaseRefused` | [`handle`](gitops_core::flow::handle) refused a command | `pr/<n>` | the head commit | the command (`/prod_release`) |
//! | `on-sync-refused` | `SyncRefused` | [`guard`](gitops_core::flow::guard) refused a sync | `env/<env>` | the resolved commit | empty |
//!
//! A release of a commit the environment already runs (no plan, only a comment), an
//! approval, a push or a test result notifies nothing.

use std::collections::BTreeMap;

use gitops_core::flow::{Command, Decision, Effect, GuardRefusal, Input, PrState, Refusal};
use gitops_core::ledger::Plan;
use gitops_core::record::Action as LedgerAction;
use gitops_core::tag::{CommitId, Env};
use rollout_core::canary::{Event, EventType};
use rollout_core::spec::Rollout;
use rollout_core::status::{AnalysisPhase, RolloutAnalysisRunStatus, RolloutStatus};

use crate::event::{NotificationEvent, Severity, Subject, trigger_name};

/// The rollout facts every rollout event carries.
fn rollout_facts(rollout: &Rollout, after: &RolloutStatus) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        f.insert(k.to_string(), v);
    };
    put(
        "rollout.name",
        rollout.metadata.name.clone().unwrap_or_default(),
    );
    put("rollout.namespace", namespace(rollout).to_string());
    put(
        "rollout.phase",
        after
            .phase
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
    );
    put("rollout.message", after.message.clone());
    put("rollout.podTemplateHash", after.current_pod_hash.clone());
    put("rollout.stableHash", after.stable_rs.clone());
    let strategy = &rollout.spec.strategy;
    let steps = strategy.canary.as_ref().map_or(0, |c| c.steps.len());
    put("step.count", steps.to_string());
    if let Some(i) = after.current_step_index {
        put(
            "step.current",
            i.saturating_add(1).min(steps as i32).to_string(),
        );
    }
    if let Some(w) = &after.canary.weights {
        put("weight.canary", w.canary.weight.to_string());
        put("weight.stable", w.stable.weight.to_string());
    }
    f
}

fn namespace(rollout: &Rollout) -> &str {
    rollout.metadata.namespace.as_deref().unwrap_or("default")
}

/// The notification events of one machine pass: its `events` named by trigger, and the
/// AnalysisRun phase changes between `before` and `after` (see the module docs).
pub fn rollout_events(
    rollout: &Rollout,
    before: &RolloutStatus,
    after: &RolloutStatus,
    events: &[Event],
) -> Vec<NotificationEvent> {
    let facts = rollout_facts(rollout, after);
    let revision = if after.current_pod_hash.is_empty() {
        before.current_pod_hash.clone()
    } else {
        after.current_pod_hash.clone()
    };
    let subject = Subject::rollout(
        namespace(rollout),
        rollout.metadata.name.as_deref().unwrap_or(""),
    );
    let make = |reason: &str,
                severity,
                message: String,
                occurrence: String,
                extra: Vec<(&str, String)>| {
        let mut facts = facts.clone();
        for (k, v) in extra {
            facts.insert(k.to_string(), v);
        }
        NotificationEvent {
            trigger: trigger_name(reason),
            reason: reason.to_string(),
            severity,
            message,
            subject: subject.clone(),
            revision: revision.clone(),
            occurrence,
            facts,
        }
    };
    let mut out = Vec::new();

    let slots: [(
        &str,
        &Option<RolloutAnalysisRunStatus>,
        &Option<RolloutAnalysisRunStatus>,
    ); 4] = [
        (
            "Step",
            &before.canary.current_step_analysis_run_status,
            &after.canary.current_step_analysis_run_status,
        ),
        (
            "Background",
            &before.canary.current_background_analysis_run_status,
            &after.canary.current_background_analysis_run_status,
        ),
        (
            "PrePromotion",
            &before.blue_green.pre_promotion_analysis_run_status,
            &after.blue_green.pre_promotion_analysis_run_status,
        ),
        (
            "PostPromotion",
            &before.blue_green.post_promotion_analysis_run_status,
            &after.blue_green.post_promotion_analysis_run_status,
        ),
    ];
    for (kind, prev, now) in slots {
        let Some(run) = now else { continue };
        if run.status == AnalysisPhase::Pending {
            continue;
        }
        let previous = prev.as_ref().filter(|p| p.name == run.name);
        if previous.is_some_and(|p| p.status == run.status) {
            continue;
        }
        let prev_str = previous.map_or("NoPreviousStatus", |p| p.status.as_str());
        let phase = run.status.as_str();
        let severity = if matches!(run.status, AnalysisPhase::Failed | AnalysisPhase::Error) {
            Severity::Warning
        } else {
            Severity::Normal
        };
        out.push(make(
            &format!("AnalysisRun{phase}"),
            severity,
            format!(
                "{kind} Analysis Run '{}' Status New: '{phase}' Previous: '{prev_str}'",
                run.name
            ),
            run.name.clone(),
            vec![
                ("analysis.name", run.name.clone()),
                ("analysis.kind", kind.to_string()),
                ("analysis.phase", phase.to_string()),
                ("analysis.message", run.message.clone()),
            ],
        ));
    }

    for e in events {
        let severity = match e.type_ {
            EventType::Warning => Severity::Warning,
            _ => Severity::Normal,
        };
        let (occurrence, extra) = match e.reason {
            "RolloutStepCompleted" => {
                let n = step_of_message(&e.message)
                    .unwrap_or_else(|| before.current_step_index.unwrap_or(0).saturating_add(1));
                (format!("step-{n}"), vec![("step.index", n.to_string())])
            }
            "RolloutPaused" => {
                let n = after.current_step_index.unwrap_or(0).saturating_add(1);
                let why = e
                    .message
                    .rsplit_once('(')
                    .and_then(|(_, r)| r.strip_suffix(')'))
                    .unwrap_or("");
                (
                    format!("{why}@step-{n}"),
                    vec![
                        ("step.index", n.to_string()),
                        ("pause.reason", why.to_string()),
                    ],
                )
            }
            "RolloutUpdated" | "RolloutCompleted" | "RolloutAborted" | "RolloutTimedOut"
            | "RolloutRetry" => (String::new(), Vec::new()),
            _ => (e.message.clone(), Vec::new()),
        };
        out.push(make(
            e.reason,
            severity,
            e.message.clone(),
            occurrence,
            extra,
        ));
    }
    out
}

/// `n` of `Rollout step n/m completed (...)`.
fn step_of_message(message: &str) -> Option<i32> {
    let rest = message.strip_prefix("Rollout step ")?;
    rest.split('/').next()?.parse().ok()
}

/// How a command reads in a comment (`/prod_release`, `/rollback prod`, `/test pass`).
fn command_text(command: &Command) -> String {
    match command {
        Command::Release { env } => format!("/{env}_release"),
        Command::Rollback { env } => format!("/rollback {env}"),
        Command::ManualTest { passed, .. } => {
            format!("/test {}", if *passed { "pass" } else { "fail" })
        }
        other => format!("{other:?}"),
    }
}

fn command_env(command: &Command) -> Option<&Env> {
    match command {
        Command::Release { env } | Command::Rollback { env } => Some(env),
        _ => None,
    }
}

fn plan_event(plan: &Plan) -> NotificationEvent {
    let short = |c: &CommitId| c.short().to_string();
    let r = &plan.record;
    let mut facts = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        facts.insert(k.to_string(), v);
    };
    put("release.env", plan.env.to_string());
    put("release.commit", plan.to.to_string());
    put("release.shortCommit", short(&plan.to));
    put(
        "release.from",
        plan.from
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    );
    put("release.tag", plan.history_tag.name());
    put("release.action", plan.action.to_string());
    put("release.by", r.provenance.by.clone());
    put("release.approvals", r.provenance.approvals.join(", "));
    put(
        "release.pr",
        r.provenance.pr.map(|p| p.to_string()).unwrap_or_default(),
    );
    let (trigger, reason, severity, message) = match plan.action {
        LedgerAction::Release => (
            "on-release-created",
            "ReleaseCreated",
            Severity::Normal,
            format!("released {} to {}", short(&plan.to), plan.env),
        ),
        LedgerAction::Rollback => (
            "on-rolled-back",
            "RolledBack",
            Severity::Warning,
            match &plan.from {
                Some(from) => format!(
                    "rolled {} back to {} (from {})",
                    plan.env,
                    short(&plan.to),
                    short(from)
                ),
                None => format!("rolled {} back to {}", plan.env, short(&plan.to)),
            },
        ),
        // A ledger action added later: named after the action.
        other => (
            "on-ledger-changed",
            "LedgerChanged",
            Severity::Normal,
            format!("{other} of {} to {}", plan.env, short(&plan.to)),
        ),
    };
    NotificationEvent {
        trigger: trigger.into(),
        reason: reason.into(),
        severity,
        message,
        subject: Subject::env(plan.env.as_str()),
        revision: plan.to.to_string(),
        occurrence: plan.history_tag.name(),
        facts,
    }
}

/// The notification events of one handled flow input: a release or rollback for every
/// ledger plan the decision publishes, or the refusal of a command (see the module
/// docs). `state` is the pull request's state the input was handled against.
pub fn flow_events(
    state: &PrState,
    input: &Input,
    result: &Result<Decision, Refusal>,
) -> Vec<NotificationEvent> {
    match result {
        Ok(decision) => decision
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Publish(plan) => Some(plan_event(plan)),
                _ => None,
            })
            .collect(),
        Err(refusal) => {
            let (actor, command) = match input {
                Input::Command { actor, command } => (actor.clone(), Some(command)),
                _ => (String::new(), None),
            };
            let text = command.map(command_text).unwrap_or_default();
            let mut facts = BTreeMap::new();
            let mut put = |k: &str, v: String| {
                facts.insert(k.to_string(), v);
            };
            put("refusal.message", refusal.to_string());
            put("refusal.command", text.clone());
            put("refusal.actor", actor.clone());
            put("release.pr", state.pr.to_string());
            put("release.commit", state.head.to_string());
            put("release.shortCommit", state.head.short().to_string());
            put(
                "release.env",
                command
                    .and_then(command_env)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            );
            vec![NotificationEvent {
                trigger: "on-release-refused".into(),
                reason: "ReleaseRefused".into(),
                severity: Severity::Warning,
                message: if actor.is_empty() {
                    format!("refused: {refusal}")
                } else {
                    format!("refused {text} by @{actor}: {refusal}")
                },
                subject: Subject::pull_request(state.pr),
                revision: state.head.to_string(),
                occurrence: text,
                facts,
            }]
        }
    }
}

/// The notification event of a pre-sync [`guard`](gitops_core::flow::guard) verdict: one
/// `on-sync-refused` event for a refusal, none for a pass.
pub fn guard_events(
    env: &Env,
    resolved: &CommitId,
    verdict: &Result<(), GuardRefusal>,
) -> Vec<NotificationEvent> {
    let Err(refusal) = verdict else {
        return Vec::new();
    };
    let mut facts = BTreeMap::new();
    facts.insert("release.env".to_string(), env.to_string());
    facts.insert("release.commit".to_string(), resolved.to_string());
    facts.insert(
        "release.shortCommit".to_string(),
        resolved.short().to_string(),
    );
    facts.insert("refusal.message".to_string(), refusal.to_string());
    vec![NotificationEvent {
        trigger: "on-sync-refused".into(),
        reason: "SyncRefused".into(),
        severity: Severity::Warning,
        message: format!("sync of {env} to {} refused: {refusal}", resolved.short()),
        subject: Subject::env(env.as_str()),
        revision: resolved.to_string(),
        occurrence: String::new(),
        facts,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitops_core::flow::{ApprovalPolicy, FlowConfig, handle};
    use gitops_core::ledger::Ledger;
    use gitops_core::tag::Stamp;
    use rollout_core::status::AnalysisPhase;

    fn rollout() -> Rollout {
        Rollout::from_yaml(
            "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web:1
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {}
      - setWeight: 60
",
        )
        .expect("rollout parses")
    }

    fn event(type_: EventType, reason: &'static str, message: &str) -> Event {
        Event {
            type_,
            reason,
            message: message.into(),
        }
    }

    #[test]
    fn machine_events_become_argo_triggers_with_occurrences() {
        let ro = rollout();
        let before = RolloutStatus {
            current_pod_hash: "abc".into(),
            current_step_index: Some(0),
            ..RolloutStatus::default()
        };
        let after = RolloutStatus {
            current_step_index: Some(1),
            ..before.clone()
        };
        let got = rollout_events(
            &ro,
            &before,
            &after,
            &[
                event(
                    EventType::Normal,
                    "RolloutStepCompleted",
                    "Rollout step 1/3 completed (setWeight: 20)",
                ),
                event(
                    EventType::Normal,
                    "RolloutPaused",
                    "Rollout is paused (CanaryPauseStep)",
                ),
                event(EventType::Warning, "RolloutAborted", "Rollout aborted"),
            ],
        );
        let summary: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|e| {
                (
                    e.trigger.as_str(),
                    e.occurrence.as_str(),
                    e.revision.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("on-rollout-step-completed", "step-1", "abc"),
                ("on-rollout-paused", "CanaryPauseStep@step-2", "abc"),
                ("on-rollout-aborted", "", "abc"),
            ]
        );
        assert_eq!(got[0].fact("step.index"), Some("1"));
        assert_eq!(got[0].fact("step.count"), Some("3"));
        assert_eq!(got[0].fact("rollout.namespace"), Some("shop"));
        assert_eq!(got[0].subject, Subject::rollout("shop", "web"));
        assert_eq!(got[1].fact("pause.reason"), Some("CanaryPauseStep"));
        assert_eq!(got[2].severity, Severity::Warning);
        assert_eq!(got[2].fact("event.type"), Some("Warning"));
    }

    #[test]
    fn analysis_phase_changes_follow_argo() {
        let ro = rollout();
        let run = |phase, message: &str| {
            Some(RolloutAnalysisRunStatus {
                name: "web-abc-2-1".into(),
                status: phase,
                message: message.into(),
            })
        };
        let mut before = RolloutStatus {
            current_pod_hash: "abc".into(),
            ..RolloutStatus::default()
        };
        let mut after = before.clone();
        after.canary.current_step_analysis_run_status = run(AnalysisPhase::Running, "");
        let got = rollout_events(&ro, &before, &after, &[]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].trigger, "on-analysis-run-running");
        assert_eq!(
            got[0].message,
            "Step Analysis Run 'web-abc-2-1' Status New: 'Running' Previous: 'NoPreviousStatus'"
        );
        before = after.clone();
        assert!(
            rollout_events(&ro, &before, &after, &[]).is_empty(),
            "no change, no event"
        );
        after.canary.current_step_analysis_run_status = run(
            AnalysisPhase::Failed,
            "Metric \"success-rate\" assessed Failed",
        );
        let got = rollout_events(&ro, &before, &after, &[]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].trigger, "on-analysis-run-failed");
        assert_eq!(got[0].severity, Severity::Warning);
        assert_eq!(got[0].occurrence, "web-abc-2-1");
        assert_eq!(
            got[0].message,
            "Step Analysis Run 'web-abc-2-1' Status New: 'Failed' Previous: 'Running'"
        );
        assert_eq!(
            got[0].fact("analysis.message"),
            Some("Metric \"success-rate\" assessed Failed")
        );
        after.canary.current_step_analysis_run_status = run(AnalysisPhase::Error, "boom");
        assert_eq!(
            rollout_events(&ro, &before, &after, &[])[0].trigger,
            "on-analysis-run-error"
        );
    }

    fn c(n: u8) -> CommitId {
        CommitId::new(&format!("{n:02x}").repeat(20)).expect("commit id")
    }
    fn env(s: &str) -> Env {
        Env::new(s).expect("env")
    }
    fn config() -> FlowConfig {
        FlowConfig {
            envs: vec![env("canary"), env("prod")],
            approval: ApprovalPolicy {
                tech_leads: ["alice".to_string()].into_iter().collect(),
                min_approvals: 1,
            },
            releasers: Default::default(),
        }
    }

    #[test]
    fn flow_outcomes_become_release_triggers() {
        let cfg = config();
        let mut ledger = Ledger::new();
        let t = |s: i64| Stamp::from_unix_secs(1_795_300_000 + s).expect("stamp");
        let mut state = PrState::new(7, c(1));
        let release = Input::Command {
            actor: "carol".into(),
            command: Command::Release { env: env("canary") },
        };
        // Not approved yet: refused.
        let refused = handle(&state, &ledger, &cfg, &release, t(1));
        let got = flow_events(&state, &release, &refused);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].trigger, "on-release-refused");
        assert_eq!(got[0].subject, Subject::pull_request(7));
        assert_eq!(got[0].occurrence, "/canary_release");
        assert_eq!(got[0].fact("refusal.actor"), Some("carol"));
        assert_eq!(
            got[0].fact("refusal.message"),
            Some(format!("needs 1 tech-lead approval(s) of {}, has 0", c(1)).as_str())
        );
        let approve = Input::Approved {
            reviewer: "alice".into(),
            commit: c(1),
        };
        let d = handle(&state, &ledger, &cfg, &approve, t(2)).expect("approval");
        assert!(flow_events(&state, &approve, &Ok(d.clone())).is_empty());
        state = d.state;
        let d = handle(&state, &ledger, &cfg, &release, t(3)).expect("release");
        let got = flow_events(&state, &release, &Ok(d.clone()));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].trigger, "on-release-created");
        assert_eq!(got[0].subject, Subject::env("canary"));
        assert_eq!(got[0].revision, c(1).to_string());
        assert_eq!(got[0].fact("release.pr"), Some("7"));
        assert_eq!(got[0].fact("release.by"), Some("carol"));
        assert_eq!(got[0].fact("release.approvals"), Some("alice"));
        assert!(
            got[0].occurrence.starts_with("canary_"),
            "{}",
            got[0].occurrence
        );
        for e in &d.effects {
            if let Effect::Publish(p) = e {
                ledger.apply(p).expect("apply");
            }
        }
        // A second release of another commit, then a rollback.
        let mut state2 = PrState::new(8, c(2));
        state2.approvals.insert("alice".into(), c(2));
        let d = handle(&state2, &ledger, &cfg, &release, t(4)).expect("release 2");
        for e in &d.effects {
            if let Effect::Publish(p) = e {
                ledger.apply(p).expect("apply");
            }
        }
        let rollback = Input::Command {
            actor: "carol".into(),
            command: Command::Rollback { env: env("canary") },
        };
        let d = handle(&state2, &ledger, &cfg, &rollback, t(5));
        let got = flow_events(&state2, &rollback, &d);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].trigger, "on-rolled-back");
        assert_eq!(got[0].revision, c(1).to_string());
        assert_eq!(got[0].fact("release.from"), Some(c(2).to_string().as_str()));
        assert_eq!(
            got[0].message,
            format!(
                "rolled canary back to {} (from {})",
                c(1).short(),
                c(2).short()
            )
        );
    }

    #[test]
    fn guard_refusal_is_an_event() {
        let ledger = Ledger::new();
        let policy = config().approval;
        let verdict = gitops_core::flow::guard(&env("prod"), &c(3), &ledger, &policy);
        let got = guard_events(&env("prod"), &c(3), &verdict);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].trigger, "on-sync-refused");
        assert_eq!(
            got[0].fact("refusal.message"),
            Some("prod_release does not exist")
        );
        assert!(guard_events(&env("prod"), &c(3), &Ok(())).is_empty());
    }
}
