//! Release notifications: Argo Rollouts / Argo CD notification semantics over the events
//! this workspace's machines and release flow already produce.
//!
//! # The model
//!
//! ```text
//! machine pass / flow decision ──triggers──▶ NotificationEvent*        (pure)
//!   + subscriptions + NotifiedState ──Notifier::plan──▶ Delivery*       (pure)
//!   ──Dispatcher::dispatch──▶ DispatchReport ──NotifiedState::record──▶ persist
//! ```
//!
//! 1. **Triggers** ([`trigger`]). A notification starts from something that happened: a
//!    canary or blue-green pass's events (`RolloutStepCompleted`, `RolloutAborted`, ...),
//!    an AnalysisRun changing phase in the rollout status, or an outcome of gitops-core's
//!    release flow (a release created, refused, rolled back; a sync refused by the
//!    guard). Each becomes a [`NotificationEvent`] named by its trigger, Argo's
//!    kebab-case reason with the prefix `on-` (`on-rollout-aborted`,
//!    `on-analysis-run-failed`), carrying the facts templates show.
//! 2. **Subscriptions** ([`subscription`]): trigger, service, recipients; parsed from
//!    Argo's annotations `notifications.argoproj.io/subscribe.<trigger>.<service>:
//!    <recipient>;<recipient>` or built directly.
//! 3. **The notifier** ([`Notifier`]) holds the configured triggers (each sends one or
//!    more templates, with an [`OncePer`] deduplication) and the templates
//!    ([`template`]: `{{rollout.name}}` placeholders, checked at load time).
//!    [`Notifier::plan`] turns events and subscriptions into rendered [`Delivery`]s,
//!    leaving out those the [`NotifiedState`] already records: the same trigger for the
//!    same subject, revision and occurrence notifies a recipient once, however often a
//!    pass is replayed.
//! 4. **Sending** ([`dispatch`]): services implement [`Service`]; the [`Dispatcher`] sends
//!    every delivery and returns a [`DispatchReport`]: sending never fails or blocks
//!    the rollout, failures are data. The HTTP services (feature `http`, module
//!    `send`): Slack incoming webhooks and `chat.postMessage`, a generic webhook signed
//!    with HMAC-SHA256, GitHub pull-request comments and commit statuses; all with
//!    bounded retries, exponential backoff, `Retry-After` and per-request timeouts.
//!
//! # Crash safety
//!
//! Like the rest of the library, nothing here keeps hidden state. The caller persists
//! the [`NotifiedState`] (serde) after recording a dispatch report. A delivery that
//! failed is not recorded and is planned again from the next pass's events only if the
//! event recurs; a crash between sending and persisting the state repeats the delivery
//! (at least once). A replayed pass (the status write was lost) re-emits the same
//! events with the same revision and occurrence, which the state filters out.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use rollout_notify::{Notifier, NotifiedState, Subscription, NotificationEvent, Severity, Subject};
//!
//! let notifier = Notifier::with_catalog(BTreeMap::new()).unwrap();
//! let subs = [Subscription::new("on-rollout-aborted", "slack", ["#deploys"])];
//! let event = NotificationEvent {
//!     trigger: "on-rollout-aborted".into(),
//!     reason: "RolloutAborted".into(),
//!     severity: Severity::Warning,
//!     message: "Rollout aborted update to revision 2".into(),
//!     subject: Subject::rollout("shop", "web"),
//!     revision: "6f7c9d8b5".into(),
//!     occurrence: String::new(),
//!     facts: [("rollout.name", "web"), ("rollout.namespace", "shop")]
//!         .into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
//! };
//! let mut state = NotifiedState::new();
//! let plan = notifier.plan(&[event.clone()], &subs, &state);
//! assert_eq!(plan.len(), 1);
//! assert_eq!(
//!     plan[0].message.text,
//!     "Rollout shop/web has been aborted: Rollout aborted update to revision 2"
//! );
//! state.mark(plan[0].key.clone());
//! assert!(notifier.plan(&[event], &subs, &state).is_empty());
//! ```

pub mod dispatch;
pub mod event;
pub mod notifier;
#[cfg(feature = "http")]
pub mod send;
pub mod subscription;
pub mod template;
pub mod trigger;

pub use dispatch::{DispatchReport, Dispatcher, Failure, SendError, Service};
pub use event::{NotificationEvent, Severity, Subject, trigger_name};
pub use notifier::{
    ConfigError, Delivery, DeliveryKey, NotifiedState, Notifier, OncePer, TriggerSpec,
};
pub use subscription::{Subscription, SubscriptionError, from_annotations};
pub use template::{Message, Template, TemplateError, TemplateSpec};
pub use trigger::{flow_events, guard_events, rollout_events};
