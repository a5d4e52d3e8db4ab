//! Sending: the [`Service`] port, and the [`Dispatcher`] that sends every delivery of a
//! plan and reports, never fails.
//!
//! A rollout must never wait on, or fail because of, a chat server. The dispatcher
//! sends deliveries to different recipients concurrently (those to one recipient in
//! order), each through its service's own bounded retries
//! and per-request timeouts, and returns a [`DispatchReport`]: what was delivered and
//! what failed, with typed [`SendError`]s. Nothing is propagated; the caller records
//! the report in its [`NotifiedState`](crate::NotifiedState) and logs the failures.
//! With feature `http`, `Dispatcher::spawn` runs the dispatch on the Tokio runtime so
//! the caller's pass does not even wait for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::notifier::{Delivery, DeliveryKey};

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No service is registered under the subscription's service name.
    #[error("no service named {service:?}")]
    UnknownService {
        /// The name.
        service: String,
    },
    /// The recipient does not fit the service (e.g. not `owner/repo`).
    #[error("{service}: recipient {recipient:?} is not valid: {reason}")]
    BadRecipient {
        /// The service.
        service: String,
        /// The recipient.
        recipient: String,
        /// What is expected.
        reason: String,
    },
    /// The event lacks what the service needs (a commit for a commit status).
    #[error("{service}: the event has no {what}")]
    MissingFact {
        /// The service.
        service: String,
        /// What is missing.
        what: String,
    },
    /// The service is misconfigured (bad URL, https without a TLS provider).
    #[error("{service}: {reason}")]
    Config {
        /// The service.
        service: String,
        /// Why.
        reason: String,
    },
    /// The connection failed.
    #[error("{service}: {url} unreachable: {reason}")]
    Unreachable {
        /// The service.
        service: String,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer within the per-request timeout.
    #[error("{service}: {url} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The service.
        service: String,
        /// The URL.
        url: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// A non-2xx answer.
    #[error("{service}: {url} answered {status}: {body}")]
    Status {
        /// The service.
        service: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A 2xx answer that says the message was not accepted (Slack's `ok: false`).
    #[error("{service}: rejected: {error}")]
    Rejected {
        /// The service.
        service: String,
        /// The service's error code (`channel_not_found`).
        error: String,
    },
    /// Retries exhausted; the last error.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<SendError>,
    },
}

impl SendError {
    /// Whether another attempt may succeed: connection errors, timeouts, 5xx and 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Unreachable { .. } | SendError::Timeout { .. } => true,
            SendError::Status { status, .. } => *status == 429 || (500..600).contains(status),
            _ => false,
        }
    }
}

/// A notification service (Slack, a webhook, GitHub, ...): sends one delivery.
#[async_trait]
pub trait Service: Send + Sync {
    /// Sends `delivery` (retrying as the service sees fit); `Ok` once it was accepted.
    async fn send(&self, delivery: &Delivery) -> Result<(), SendError>;
}

/// A delivery that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which delivery.
    pub key: DeliveryKey,
    /// Why.
    pub error: SendError,
}

/// The outcome of a dispatch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct DispatchReport {
    /// Deliveries accepted by their service.
    pub delivered: Vec<DeliveryKey>,
    /// Deliveries that failed.
    pub failed: Vec<Failure>,
}

impl DispatchReport {
    /// Whether every delivery was accepted.
    pub fn all_delivered(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Services by name, and the dispatch of deliveries to them.
#[derive(Clone, Default)]
pub struct Dispatcher {
    services: BTreeMap<String, Arc<dyn Service>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Dispatcher {
    /// A dispatcher without services.
    pub fn new() -> Self {
        Dispatcher::default()
    }

    /// Registers `service` under `name` (the `<service>` of subscriptions).
    pub fn register(&mut self, name: &str, service: impl Service + 'static) -> &mut Self {
        self.services.insert(name.to_string(), Arc::new(service));
        self
    }

    /// Sends every delivery and reports; never fails. Deliveries to one recipient of
    /// one service go one after the other, in their input order (a channel reads "analysis
    /// failed" before "rollout aborted", as the events happened); different recipients
    /// are served concurrently. Deliveries come back in the report in their input order
    /// (delivered and failed separately).
    pub async fn dispatch(&self, deliveries: &[Delivery]) -> DispatchReport {
        // One lane per (service, recipient), in order of first appearance.
        let mut lane_of: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut queues: Vec<Vec<usize>> = Vec::new();
        for (i, d) in deliveries.iter().enumerate() {
            let lane = *lane_of
                .entry((d.key.service.as_str(), d.key.recipient.as_str()))
                .or_insert_with(|| {
                    queues.push(Vec::new());
                    queues.len() - 1
                });
            queues[lane].push(i);
        }
        let lanes = queues.into_iter().map(|queue| async move {
            let mut out = Vec::with_capacity(queue.len());
            for i in queue {
                let d = &deliveries[i];
                let result = match self.services.get(&d.key.service) {
                    Some(service) => service.send(d).await,
                    None => Err(SendError::UnknownService {
                        service: d.key.service.clone(),
                    }),
                };
                out.push((i, result));
            }
            out
        });
        let mut results: Vec<(usize, Result<(), SendError>)> = futures::future::join_all(lanes)
            .await
            .into_iter()
            .flatten()
            .collect();
        results.sort_by_key(|(i, _)| *i);
        let mut report = DispatchReport::default();
        for (i, result) in results {
            let key = deliveries[i].key.clone();
            match result {
                Ok(()) => report.delivered.push(key),
                Err(error) => report.failed.push(Failure { key, error }),
            }
        }
        report
    }

    /// Runs [`Dispatcher::dispatch`] as a Tokio task: the caller goes on and may await
    /// the report later (or drop the handle). Needs a Tokio runtime.
    #[cfg(feature = "http")]
    pub fn spawn(&self, deliveries: Vec<Delivery>) -> tokio::task::JoinHandle<DispatchReport> {
        let this = self.clone();
        tokio::spawn(async move { this.dispatch(&deliveries).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{NotificationEvent, Severity, Subject};
    use crate::notifier::{NotifiedState, Notifier};
    use crate::subscription::Subscription;
    use std::sync::Mutex;

    /// Records what it is asked to send; fails for recipient `#down`.
    #[derive(Default)]
    struct Fake {
        seen: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Service for Arc<Fake> {
        async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
            let r = delivery.key.recipient.clone();
            self.seen
                .lock()
                .map_err(|_| SendError::Config {
                    service: "fake".into(),
                    reason: "poisoned".into(),
                })?
                .push(r.clone());
            if r == "#down" {
                return Err(SendError::Status {
                    service: "fake".into(),
                    url: "mem:".into(),
                    status: 500,
                    body: String::new(),
                });
            }
            Ok(())
        }
    }

    #[test]
    fn failures_are_reported_not_raised() {
        let fake = Arc::new(Fake::default());
        let mut d = Dispatcher::new();
        d.register("fake", fake.clone());
        let n = Notifier::with_catalog(Default::default()).expect("catalog");
        let event = NotificationEvent {
            trigger: "on-rollout-completed".into(),
            reason: "RolloutCompleted".into(),
            severity: Severity::Normal,
            message: String::new(),
            subject: Subject::rollout("a", "b"),
            revision: "r".into(),
            occurrence: String::new(),
            facts: Default::default(),
        };
        let subs = [Subscription::new(
            "on-rollout-completed",
            "fake",
            ["#ok", "#down"],
        )];
        let mut state = NotifiedState::new();
        let plan = n.plan(std::slice::from_ref(&event), &subs, &state);
        let report = futures::executor::block_on(d.dispatch(&plan));
        assert_eq!(report.delivered.len(), 1);
        assert_eq!(report.delivered[0].recipient, "#ok");
        assert_eq!(report.failed.len(), 1);
        assert!(report.failed[0].error.is_retryable());
        state.record(&report);
        let again = n.plan(&[event], &subs, &state);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].key.recipient, "#down");
        let seen = fake.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen, ["#ok", "#down"]);
    }
}
