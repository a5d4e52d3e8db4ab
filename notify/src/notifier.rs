//! The notifier: triggers configured with templates, and the pure planning step from
//! events and subscriptions to deliveries, deduplicated against [`NotifiedState`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{NotificationEvent, Subject};
use crate::subscription::Subscription;
use crate::template::{Message, Template, TemplateError, TemplateSpec};

/// How often one trigger notifies one recipient (Argo's `oncePer`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum OncePer {
    /// Once per subject, revision and occurrence (the step, the AnalysisRun, the history
    /// tag; see [`trigger`](crate::trigger)). The default.
    #[default]
    Occurrence,
    /// Once per subject and revision, whatever the occurrence.
    Revision,
    /// Every time the event happens (no deduplication).
    Always,
}

/// A configured trigger: the templates it sends and its deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSpec {
    /// Names of the templates to send, each a message of its own.
    pub send: Vec<String>,
    /// Deduplication.
    #[serde(default)]
    pub once_per: OncePer,
}

impl TriggerSpec {
    /// Sends `template`, deduplicated per occurrence.
    pub fn send(template: &str) -> Self {
        TriggerSpec {
            send: vec![template.to_string()],
            once_per: OncePer::Occurrence,
        }
    }
}

/// Why the notifier's configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A template does not load.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A trigger sends a template that is not configured.
    #[error("trigger {trigger:?} sends template {template:?}, which is not configured")]
    UnknownTemplate {
        /// The trigger.
        trigger: String,
        /// The template it names.
        template: String,
    },
    /// A trigger sends nothing.
    #[error("trigger {trigger:?} sends no template")]
    NoTemplates {
        /// The trigger.
        trigger: String,
    },
}

/// What identifies one notification for deduplication (and in a dispatch report).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeliveryKey {
    /// What it is about.
    pub subject: Subject,
    /// The trigger.
    pub trigger: String,
    /// The template.
    pub template: String,
    /// The service.
    pub service: String,
    /// The recipient.
    pub recipient: String,
    /// The revision.
    pub revision: String,
    /// The occurrence (empty under [`OncePer::Revision`]).
    pub occurrence: String,
    /// The trigger's deduplication.
    pub once_per: OncePer,
}

/// One message to send: to whom, what, and the event it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its identity.
    pub key: DeliveryKey,
    /// The rendered template.
    pub message: Message,
    /// The event.
    pub event: NotificationEvent,
}

/// The deliveries already made, per [`DeliveryKey`]: a small serialisable set the caller
/// persists next to the rollout's status (Argo keeps the same in an annotation).
///
/// Record a dispatch report with [`NotifiedState::record`] and persist the state after
/// the dispatch: failed deliveries are not recorded and are planned again next time; a
/// crash between sending and persisting sends again (at least once, never silently
/// lost).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifiedState {
    sent: BTreeSet<DeliveryKey>,
}

impl NotifiedState {
    /// An empty state.
    pub fn new() -> Self {
        NotifiedState::default()
    }

    /// Whether `key` was delivered.
    pub fn contains(&self, key: &DeliveryKey) -> bool {
        self.sent.contains(key)
    }

    /// Marks `key` delivered (a key of [`OncePer::Always`] is not kept).
    pub fn mark(&mut self, key: DeliveryKey) {
        if key.once_per != OncePer::Always {
            self.sent.insert(key);
        }
    }

    /// Marks every delivered key of `report`.
    pub fn record(&mut self, report: &crate::dispatch::DispatchReport) {
        for key in &report.delivered {
            self.mark(key.clone());
        }
    }

    /// Forgets the deliveries about `subject` at any revision other than `keep`, so the
    /// state stays small (call it when a rollout completes a revision).
    pub fn forget_other_revisions(&mut self, subject: &Subject, keep: &str) {
        self.sent
            .retain(|k| &k.subject != subject || k.revision == keep);
    }

    /// How many deliveries are recorded.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// The recorded keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &DeliveryKey> {
        self.sent.iter()
    }
}

/// Triggers, templates, context and default triggers.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    context: BTreeMap<String, String>,
    templates: BTreeMap<String, Template>,
    triggers: BTreeMap<String, TriggerSpec>,
    default_triggers: Vec<String>,
}

/// The catalog: one template and trigger per built-in trigger (see
/// [`Notifier::with_catalog`]).
const CATALOG: &[(&str, &str, &str)] = &[
    (
        "on-rollout-updated",
        "rollout-updated",
        "Rollout {{rollout.namespace}}/{{rollout.name}} has been updated to {{rollout.podTemplateHash}}.",
    ),
    (
        "on-rollout-step-completed",
        "rollout-step-completed",
        "Rollout {{rollout.namespace}}/{{rollout.name}} step {{step.index}}/{{step.count}} has been completed.",
    ),
    (
        "on-rollout-paused",
        "rollout-paused",
        "Rollout {{rollout.namespace}}/{{rollout.name}} has been paused ({{pause.reason}}).",
    ),
    (
        "on-rollout-aborted",
        "rollout-aborted",
        "Rollout {{rollout.namespace}}/{{rollout.name}} has been aborted: {{event.message}}",
    ),
    (
        "on-rollout-completed",
        "rollout-completed",
        "Rollout {{rollout.namespace}}/{{rollout.name}} has been completed.",
    ),
    (
        "on-analysis-run-running",
        "analysis-run-running",
        "Rollout {{rollout.namespace}}/{{rollout.name}} analysis run {{analysis.name}} is running.",
    ),
    (
        "on-analysis-run-failed",
        "analysis-run-failed",
        "Rollout {{rollout.namespace}}/{{rollout.name}} analysis run {{analysis.name}} failed: {{analysis.message}}",
    ),
    (
        "on-analysis-run-error",
        "analysis-run-error",
        "Rollout {{rollout.namespace}}/{{rollout.name}} analysis run {{analysis.name}} had an error: {{analysis.message}}",
    ),
    (
        "on-scaling-replica-set",
        "scaling-replicaset",
        "Rollout {{rollout.namespace}}/{{rollout.name}}: {{event.message}}",
    ),
    (
        "on-release-created",
        "release-created",
        "Released {{release.shortCommit}} to {{release.env}} (PR #{{release.pr}} by @{{release.by}}).",
    ),
    (
        "on-rolled-back",
        "rolled-back",
        "Rolled {{release.env}} back to {{release.shortCommit}} (by @{{release.by}}).",
    ),
    (
        "on-release-refused",
        "release-refused",
        "Refused {{refusal.command}} on PR #{{release.pr}} by @{{refusal.actor}}: {{refusal.message}}",
    ),
    (
        "on-sync-refused",
        "sync-refused",
        "Sync of {{release.env}} to {{release.shortCommit}} refused: {{refusal.message}}",
    ),
];

impl Notifier {
    /// An empty notifier: no templates, no triggers; `context` holds the values of the
    /// `context.<key>` placeholders.
    pub fn new(context: BTreeMap<String, String>) -> Self {
        Notifier {
            context,
            ..Notifier::default()
        }
    }

    /// A notifier with the catalog: a template and a trigger (deduplicated per
    /// occurrence) for each of `on-rollout-updated`, `on-rollout-step-completed`,
    /// `on-rollout-paused`, `on-rollout-aborted`, `on-rollout-completed`,
    /// `on-analysis-run-running`, `on-analysis-run-failed`, `on-analysis-run-error`,
    /// `on-scaling-replica-set`, `on-release-created`, `on-rolled-back`,
    /// `on-release-refused` and `on-sync-refused`. The template of trigger `on-x` is
    /// named `x` (Argo's names; `scaling-replicaset` for `on-scaling-replica-set`).
    pub fn with_catalog(context: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut n = Notifier::new(context);
        for (trigger, template, message) in CATALOG {
            n.add_template(
                template,
                &TemplateSpec {
                    message: (*message).to_string(),
                    ..TemplateSpec::default()
                },
            )?;
            n.add_trigger(trigger, TriggerSpec::send(template))?;
        }
        Ok(n)
    }

    /// Adds (or replaces) template `name`.
    pub fn add_template(
        &mut self,
        name: &str,
        spec: &TemplateSpec,
    ) -> Result<&mut Self, ConfigError> {
        let t = Template::load(name, spec, &self.context)?;
        self.templates.insert(name.to_string(), t);
        Ok(self)
    }

    /// Adds (or replaces) trigger `name`; its templates must be configured.
    pub fn add_trigger(&mut self, name: &str, spec: TriggerSpec) -> Result<&mut Self, ConfigError> {
        if spec.send.is_empty() {
            return Err(ConfigError::NoTemplates {
                trigger: name.to_string(),
            });
        }
        if let Some(missing) = spec.send.iter().find(|t| !self.templates.contains_key(*t)) {
            return Err(ConfigError::UnknownTemplate {
                trigger: name.to_string(),
                template: missing.clone(),
            });
        }
        self.triggers.insert(name.to_string(), spec);
        Ok(self)
    }

    /// The triggers a subscription without a trigger (`subscribe.<service>`) gets.
    pub fn set_default_triggers(&mut self, triggers: impl IntoIterator<Item = impl Into<String>>) {
        self.default_triggers = triggers.into_iter().map(Into::into).collect();
    }

    /// The configured trigger `name`.
    pub fn trigger(&self, name: &str) -> Option<&TriggerSpec> {
        self.triggers.get(name)
    }

    /// The deliveries `events` cause for `subscriptions`, minus those `state` says were
    /// made (and duplicates within `events`). Events of triggers that are not configured
    /// notify nobody, as in Argo. Pure: nothing is sent and `state` is not changed.
    pub fn plan(
        &self,
        events: &[NotificationEvent],
        subscriptions: &[Subscription],
        state: &NotifiedState,
    ) -> Vec<Delivery> {
        let mut planned = BTreeSet::new();
        let mut out = Vec::new();
        for event in events {
            let Some(trigger) = self.triggers.get(&event.trigger) else {
                continue;
            };
            for sub in subscriptions {
                let subscribed = match &sub.trigger {
                    Some(t) => *t == event.trigger,
                    None => self.default_triggers.contains(&event.trigger),
                };
                if !subscribed {
                    continue;
                }
                for template_name in &trigger.send {
                    let Some(template) = self.templates.get(template_name) else {
                        continue;
                    };
                    for recipient in &sub.recipients {
                        let key = DeliveryKey {
                            subject: event.subject.clone(),
                            trigger: event.trigger.clone(),
                            template: template_name.clone(),
                            service: sub.service.clone(),
                            recipient: recipient.clone(),
                            revision: event.revision.clone(),
                            occurrence: match trigger.once_per {
                                OncePer::Revision => String::new(),
                                _ => event.occurrence.clone(),
                            },
                            once_per: trigger.once_per,
                        };
                        if trigger.once_per != OncePer::Always
                            && (state.contains(&key) || !planned.insert(key.clone()))
                        {
                            continue;
                        }
                        let message =
                            template.render(event, &sub.service, recipient, &self.context);
                        out.push(Delivery {
                            key,
                            message,
                            event: event.clone(),
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;

    fn ev(trigger: &str, revision: &str, occurrence: &str) -> NotificationEvent {
        NotificationEvent {
            trigger: trigger.into(),
            reason: String::new(),
            severity: Severity::Normal,
            message: "m".into(),
            subject: Subject::rollout("shop", "web"),
            revision: revision.into(),
            occurrence: occurrence.into(),
            facts: [("rollout.name".to_string(), "web".to_string())]
                .into_iter()
                .collect(),
        }
    }

    fn notifier() -> Notifier {
        Notifier::with_catalog(BTreeMap::new()).expect("catalog loads")
    }

    #[test]
    fn once_per_occurrence_and_revision() {
        let mut n = notifier();
        let subs = [
            Subscription::new("on-rollout-step-completed", "slack", ["#a", "#b"]),
            Subscription::new("on-rollout-completed", "slack", ["#a"]),
        ];
        let mut state = NotifiedState::new();
        let events = [
            ev("on-rollout-step-completed", "r1", "step-1"),
            ev("on-rollout-step-completed", "r1", "step-1"),
            ev("on-rollout-step-completed", "r1", "step-2"),
            ev("on-rollout-aborted", "r1", ""),
        ];
        let plan = n.plan(&events, &subs, &state);
        let got: Vec<(&str, &str)> = plan
            .iter()
            .map(|d| (d.key.recipient.as_str(), d.key.occurrence.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("#a", "step-1"),
                ("#b", "step-1"),
                ("#a", "step-2"),
                ("#b", "step-2")
            ]
        );
        for d in &plan {
            state.mark(d.key.clone());
        }
        assert!(
            n.plan(&events, &subs, &state).is_empty(),
            "already notified"
        );
        // A new revision notifies again.
        let plan = n.plan(
            &[ev("on-rollout-step-completed", "r2", "step-1")],
            &subs,
            &state,
        );
        assert_eq!(plan.len(), 2);
        // Revision-wide dedup ignores the occurrence.
        n.add_trigger(
            "on-rollout-step-completed",
            TriggerSpec {
                send: vec!["rollout-step-completed".into()],
                once_per: OncePer::Revision,
            },
        )
        .expect("trigger");
        let plan = n.plan(&events, &subs, &NotifiedState::new());
        assert_eq!(plan.len(), 2, "one per recipient for revision r1");
        // Always: no dedup, nothing kept.
        n.add_trigger(
            "on-rollout-step-completed",
            TriggerSpec {
                send: vec!["rollout-step-completed".into()],
                once_per: OncePer::Always,
            },
        )
        .expect("trigger");
        let plan = n.plan(&events[..1], &subs, &state);
        assert_eq!(plan.len(), 2);
        let mut s2 = NotifiedState::new();
        s2.mark(plan[0].key.clone());
        assert!(s2.is_empty());
    }

    #[test]
    fn state_round_trips_and_prunes() {
        let n = notifier();
        let subs = [Subscription::new(
            "on-rollout-step-completed",
            "slack",
            ["#a"],
        )];
        let mut state = NotifiedState::new();
        for d in n.plan(
            &[
                ev("on-rollout-step-completed", "r1", "step-1"),
                ev("on-rollout-step-completed", "r2", "step-1"),
            ],
            &subs,
            &state,
        ) {
            state.mark(d.key);
        }
        let json = serde_json::to_string(&state).expect("serialises");
        let back: NotifiedState = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, state);
        state.forget_other_revisions(&Subject::rollout("shop", "web"), "r2");
        assert_eq!(state.len(), 1);
        assert_eq!(state.keys().next().map(|k| k.revision.as_str()), Some("r2"));
    }

    #[test]
    fn default_triggers_and_unconfigured_triggers() {
        let mut n = notifier();
        let subs = [Subscription {
            trigger: None,
            service: "webhook".into(),
            recipients: vec![String::new()],
        }];
        let events = [
            ev("on-rollout-completed", "r1", ""),
            ev("on-traffic-weight-updated", "r1", "x"),
        ];
        assert!(n.plan(&events, &subs, &NotifiedState::new()).is_empty());
        n.set_default_triggers(["on-rollout-completed", "on-traffic-weight-updated"]);
        let plan = n.plan(&events, &subs, &NotifiedState::new());
        assert_eq!(
            plan.len(),
            1,
            "on-traffic-weight-updated has no trigger configured"
        );
        assert_eq!(plan[0].message.text, "Rollout /web has been completed.");
    }

    #[test]
    fn config_errors() {
        let mut n = Notifier::new(BTreeMap::new());
        assert_eq!(
            n.add_trigger("on-x", TriggerSpec::send("nope"))
                .unwrap_err(),
            ConfigError::UnknownTemplate {
                trigger: "on-x".into(),
                template: "nope".into()
            }
        );
        assert!(matches!(
            n.add_trigger(
                "on-x",
                TriggerSpec {
                    send: vec![],
                    once_per: OncePer::Always
                }
            ),
            Err(ConfigError::NoTemplates { .. })
        ));
        assert!(matches!(
            n.add_template(
                "t",
                &TemplateSpec {
                    message: "{{x}}".into(),
                    ..TemplateSpec::default()
                }
            ),
            Err(ConfigError::Template(TemplateError::Unknown { .. }))
        ));
    }
}
