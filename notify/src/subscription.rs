//! Subscriptions: who gets which trigger through which service.
//!
//! Argo's annotation form, on the Rollout (or any object the caller chooses):
//!
//! ```text
//! notifications.argoproj.io/subscribe.<trigger>.<service>: <recipient>;<recipient>
//! notifications.argoproj.io/subscribe.<service>: <recipients>      # the default triggers
//! ```
//!
//! Recipients are separated by `;` or `,` and trimmed; an empty value subscribes the
//! service's default recipient (the empty string; a webhook needs none). Other
//! annotations are ignored; a malformed subscription annotation is a
//! [`SubscriptionError`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The annotation prefix of a subscription.
pub const ANNOTATION_PREFIX: &str = "notifications.argoproj.io/subscribe.";

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The trigger (`on-rollout-completed`); `None`: the notifier's default triggers.
    pub trigger: Option<String>,
    /// The service name the notifier's dispatcher knows (`slack`, `github`).
    pub service: String,
    /// The recipients (channels, repositories); never empty.
    pub recipients: Vec<String>,
}

impl Subscription {
    /// A subscription of `recipients` to `trigger` through `service`.
    pub fn new(
        trigger: &str,
        service: &str,
        recipients: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let mut recipients: Vec<String> = recipients.into_iter().map(Into::into).collect();
        if recipients.is_empty() {
            recipients.push(String::new());
        }
        Subscription {
            trigger: Some(trigger.to_string()),
            service: service.to_string(),
            recipients,
        }
    }
}

/// Why a subscription annotation does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The key after the prefix is not `<trigger>.<service>` or `<service>`.
    #[error(
        "annotation {key:?}: expected {ANNOTATION_PREFIX}<trigger>.<service> or {ANNOTATION_PREFIX}<service>"
    )]
    Malformed {
        /// The annotation key.
        key: String,
    },
    /// A trigger or service name with characters outside `[A-Za-z0-9_-]`.
    #[error("annotation {key:?}: {what} {name:?} may only contain letters, digits, '-' and '_'")]
    BadName {
        /// The annotation key.
        key: String,
        /// `trigger` or `service`.
        what: &'static str,
        /// The offending name.
        name: String,
    },
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The subscriptions in an annotation map (Argo's form), in key order.
pub fn from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<Subscription>, SubscriptionError> {
    let mut out = Vec::new();
    for (key, value) in annotations {
        let Some(rest) = key.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        let (trigger, service) = match parts.as_slice() {
            [service] => (None, *service),
            [trigger, service] => (Some(*trigger), *service),
            _ => return Err(SubscriptionError::Malformed { key: key.clone() }),
        };
        for (what, name) in [("trigger", trigger), ("service", Some(service))] {
            if let Some(name) = name
                && !valid_name(name)
            {
                return Err(SubscriptionError::BadName {
                    key: key.clone(),
                    what,
                    name: name.to_string(),
                });
            }
        }
        let mut recipients: Vec<String> = value
            .split([';', ','])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        if recipients.is_empty() {
            recipients.push(String::new());
        }
        out.push(Subscription {
            trigger: trigger.map(str::to_string),
            service: service.to_string(),
            recipients,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_argo_annotations() {
        let subs = from_annotations(&map(&[
            (
                "notifications.argoproj.io/subscribe.on-rollout-aborted.slack",
                "#alerts; #deploys ,",
            ),
            (
                "notifications.argoproj.io/subscribe.on-rollout-completed.webhook",
                "",
            ),
            ("notifications.argoproj.io/subscribe.github", "acme/web"),
            ("rollout.argoproj.io/revision", "3"),
        ]))
        .expect("parses");
        assert_eq!(
            subs,
            [
                Subscription {
                    trigger: None,
                    service: "github".into(),
                    recipients: vec!["acme/web".into()],
                },
                Subscription::new("on-rollout-aborted", "slack", ["#alerts", "#deploys"]),
                Subscription::new("on-rollout-completed", "webhook", Vec::<String>::new()),
            ]
        );
        assert_eq!(subs[2].recipients, [""]);
    }

    #[test]
    fn malformed_keys_are_errors() {
        let e = from_annotations(&map(&[("notifications.argoproj.io/subscribe.a.b.c", "x")]))
            .unwrap_err();
        assert!(matches!(e, SubscriptionError::Malformed { .. }));
        let e = from_annotations(&map(&[("notifications.argoproj.io/subscribe.on-x.", "x")]))
            .unwrap_err();
        assert_eq!(
            e,
            SubscriptionError::BadName {
                key: "notifications.argoproj.io/subscribe.on-x.".into(),
                what: "service",
                name: String::new(),
            }
        );
        let e = from_annotations(&map(&[(
            "notifications.argoproj.io/subscribe.on x.slack",
            "x",
        )]))
        .unwrap_err();
        assert!(matches!(
            e,
            SubscriptionError::BadName {
                what: "trigger",
                ..
            }
        ));
    }
}
