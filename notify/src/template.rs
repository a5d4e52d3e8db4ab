//! Message templates.
//!
//! # Syntax
//!
//! A template is text with placeholders in double braces: `{{rollout.name}}`,
//! `{{ step.index }}` (spaces inside the braces are ignored). A placeholder names one
//! of the [`VARIABLES`], or `context.<key>` for a key of the notifier's context (links
//! such as `context.dashboardUrl`, like Argo's `.context`), or is a double-quoted
//! literal (`{{"{{"}}` writes two braces). There is no other logic: no conditionals,
//! no pipelines. Everything is checked when the template is loaded: an unclosed
//! placeholder, an empty one, and an unknown variable or context key are
//! [`TemplateError`]s naming the template, the field and the byte offset.
//!
//! A known variable the event does not carry (a `step.index` in an
//! `on-rollout-aborted` message) renders as the empty string.
//!
//! # Fields
//!
//! A [`TemplateSpec`] has the `message` (Slack's `text`, the GitHub comment, the
//! commit-status description), an optional `link` (the commit status' `target_url`),
//! and optional JSON documents for Slack `blocks` and the webhook body whose string
//! leaves are templates (so rendering can never produce invalid JSON).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::NotificationEvent;

/// The template variables and what they hold.
pub const VARIABLES: &[(&str, &str)] = &[
    ("event.trigger", "the trigger name (`on-rollout-aborted`)"),
    ("event.reason", "the event reason (`RolloutAborted`)"),
    ("event.type", "`Normal` or `Warning`"),
    ("event.message", "the event message as the machine wrote it"),
    (
        "event.revision",
        "the revision: pod template hash or commit SHA",
    ),
    ("service", "the service the message goes to (`slack`)"),
    ("recipient", "the recipient (a channel, a repository)"),
    ("rollout.name", "the rollout's name"),
    ("rollout.namespace", "the rollout's namespace"),
    ("rollout.phase", "Healthy, Progressing, Paused or Degraded"),
    ("rollout.message", "the rollout's status message"),
    ("rollout.podTemplateHash", "the hash being rolled out"),
    ("rollout.stableHash", "the stable ReplicaSet's hash"),
    ("step.index", "the step completed or paused at (1-based)"),
    ("step.current", "the current step after the pass (1-based)"),
    ("step.count", "the number of canary steps"),
    ("pause.reason", "why the rollout paused (`CanaryPauseStep`)"),
    ("weight.canary", "the canary traffic weight"),
    ("weight.stable", "the stable traffic weight"),
    ("analysis.name", "the AnalysisRun's name"),
    (
        "analysis.kind",
        "Step, Background, PrePromotion or PostPromotion",
    ),
    ("analysis.phase", "the AnalysisRun's phase"),
    ("analysis.message", "the AnalysisRun's message"),
    ("release.env", "the environment"),
    ("release.commit", "the commit SHA"),
    ("release.shortCommit", "the abbreviated commit SHA"),
    ("release.from", "the commit the pointer moved from"),
    ("release.tag", "the history tag written"),
    ("release.action", "`release` or `rollback`"),
    ("release.by", "who ran the command"),
    (
        "release.approvals",
        "the counted approvers, comma-separated",
    ),
    ("release.pr", "the pull request number"),
    ("refusal.message", "why the flow or the guard refused"),
    ("refusal.command", "the refused command (`/prod_release`)"),
    ("refusal.actor", "who sent the refused command"),
];

/// A template as configured (serde: camelCase field names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateSpec {
    /// The message text.
    pub message: String,
    /// A link (GitHub commit status `target_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Slack `blocks`: JSON whose string leaves are templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_blocks: Option<Value>,
    /// The webhook body: JSON whose string leaves are templates (default: the event as
    /// JSON, see the webhook sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_body: Option<Value>,
}

/// Why a template does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `{{` without a closing `}}`.
    #[error("template {template:?}, {field}: `{{{{` at byte {offset} is never closed")]
    Unclosed {
        /// The template's name.
        template: String,
        /// The field (`message`, `slackBlocks[0].text`).
        field: String,
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// `{{}}`.
    #[error("template {template:?}, {field}: empty placeholder at byte {offset}")]
    Empty {
        /// The template's name.
        template: String,
        /// The field.
        field: String,
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// A placeholder that names no variable and no context key.
    #[error("template {template:?}, {field}: unknown placeholder {name:?} at byte {offset}")]
    Unknown {
        /// The template's name.
        template: String,
        /// The field.
        field: String,
        /// What the placeholder says.
        name: String,
        /// Byte offset of the `{{`.
        offset: usize,
    },
}

/// One piece of a parsed text.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Var(String),
}

/// A parsed text template.
#[derive(Debug, Clone, PartialEq)]
struct Text(Vec<Piece>);

/// A parsed JSON template.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Plain(Value),
    Text(Text),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// A loaded template: every placeholder checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    name: String,
    message: Text,
    link: Option<Text>,
    slack_blocks: Option<Json>,
    webhook_body: Option<Json>,
}

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The message text.
    pub text: String,
    /// The link, if the template has one.
    pub link: Option<String>,
    /// Slack blocks, if the template has them.
    pub slack_blocks: Option<Value>,
    /// The webhook body, if the template has one.
    pub webhook_body: Option<Value>,
}

struct Loader<'a> {
    template: &'a str,
    context: &'a BTreeMap<String, String>,
}

impl Loader<'_> {
    fn text(&self, field: &str, src: &str) -> Result<Text, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = src;
        let mut base = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_string()));
            }
            let offset = base + open;
            let after = &rest[open + 2..];
            let close = find_close(after).ok_or_else(|| TemplateError::Unclosed {
                template: self.template.to_string(),
                field: field.to_string(),
                offset,
            })?;
            let inner = after[..close].trim();
            if inner.is_empty() {
                return Err(TemplateError::Empty {
                    template: self.template.to_string(),
                    field: field.to_string(),
                    offset,
                });
            }
            if let Some(lit) = inner
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .filter(|s| !s.contains('"'))
            {
                pieces.push(Piece::Literal(lit.to_string()));
            } else if self.known(inner) {
                pieces.push(Piece::Var(inner.to_string()));
            } else {
                return Err(TemplateError::Unknown {
                    template: self.template.to_string(),
                    field: field.to_string(),
                    name: inner.to_string(),
                    offset,
                });
            }
            let consumed = open + 2 + close + 2;
            base += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        Ok(Text(pieces))
    }

    fn known(&self, name: &str) -> bool {
        if let Some(key) = name.strip_prefix("context.") {
            return self.context.contains_key(key);
        }
        VARIABLES.iter().any(|(v, _)| *v == name)
    }

    fn json(&self, field: &str, value: &Value) -> Result<Json, TemplateError> {
        Ok(match value {
            Value::String(s) => Json::Text(self.text(field, s)?),
            Value::Array(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.json(&format!("{field}[{i}]"), v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.json(&format!("{field}.{k}"), v)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => Json::Plain(other.clone()),
        })
    }
}

/// Where the `}}` closing a placeholder starts in `s`, skipping over a quoted literal.
fn find_close(s: &str) -> Option<usize> {
    let trimmed = s.trim_start();
    if let Some(quoted) = trimmed.strip_prefix('"') {
        let lead = s.len() - trimmed.len();
        let end = quoted.find('"')? + 1 + lead + 1;
        return s[end..].find("}}").map(|i| i + end);
    }
    s.find("}}")
}

/// What a render reads: the event, where the message goes, and the context.
struct Scope<'a> {
    event: &'a NotificationEvent,
    service: &'a str,
    recipient: &'a str,
    context: &'a BTreeMap<String, String>,
}

impl Scope<'_> {
    fn get(&self, name: &str) -> &str {
        match name {
            "service" => self.service,
            "recipient" => self.recipient,
            _ => match name.strip_prefix("context.") {
                Some(key) => self.context.get(key).map_or("", String::as_str),
                None => self.event.fact(name).unwrap_or(""),
            },
        }
    }

    fn text(&self, t: &Text) -> String {
        let mut out = String::new();
        for p in &t.0 {
            match p {
                Piece::Literal(s) => out.push_str(s),
                Piece::Var(v) => out.push_str(self.get(v)),
            }
        }
        out
    }

    fn json(&self, j: &Json) -> Value {
        match j {
            Json::Plain(v) => v.clone(),
            Json::Text(t) => Value::String(self.text(t)),
            Json::Array(items) => Value::Array(items.iter().map(|i| self.json(i)).collect()),
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.json(v)))
                    .collect(),
            ),
        }
    }
}

impl Template {
    /// Loads `spec` as template `name`; `context` is the set of `context.<key>` keys
    /// placeholders may use.
    pub fn load(
        name: &str,
        spec: &TemplateSpec,
        context: &BTreeMap<String, String>,
    ) -> Result<Template, TemplateError> {
        let l = Loader {
            template: name,
            context,
        };
        Ok(Template {
            name: name.to_string(),
            message: l.text("message", &spec.message)?,
            link: spec
                .link
                .as_deref()
                .map(|s| l.text("link", s))
                .transpose()?,
            slack_blocks: spec
                .slack_blocks
                .as_ref()
                .map(|v| l.json("slackBlocks", v))
                .transpose()?,
            webhook_body: spec
                .webhook_body
                .as_ref()
                .map(|v| l.json("webhookBody", v))
                .transpose()?,
        })
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders the template for `event` going to `recipient` of `service`.
    pub fn render(
        &self,
        event: &NotificationEvent,
        service: &str,
        recipient: &str,
        context: &BTreeMap<String, String>,
    ) -> Message {
        let scope = Scope {
            event,
            service,
            recipient,
            context,
        };
        Message {
            text: scope.text(&self.message),
            link: self.link.as_ref().map(|t| scope.text(t)),
            slack_blocks: self.slack_blocks.as_ref().map(|j| scope.json(j)),
            webhook_body: self.webhook_body.as_ref().map(|j| scope.json(j)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Severity, Subject};
    use serde_json::json;

    fn ctx() -> BTreeMap<String, String> {
        [("dashboard".to_string(), "https://dash.example".to_string())]
            .into_iter()
            .collect()
    }

    fn event() -> NotificationEvent {
        NotificationEvent {
            trigger: "on-rollout-step-completed".into(),
            reason: "RolloutStepCompleted".into(),
            severity: Severity::Normal,
            message: "Rollout step 1/3 completed (setWeight: 20)".into(),
            subject: Subject::rollout("shop", "web"),
            revision: "abc".into(),
            occurrence: "step-1".into(),
            facts: [
                ("rollout.name", "web"),
                ("rollout.namespace", "shop"),
                ("step.index", "1"),
                ("step.count", "3"),
                ("weight.canary", "20"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    fn spec(message: &str) -> TemplateSpec {
        TemplateSpec {
            message: message.into(),
            ..TemplateSpec::default()
        }
    }

    #[test]
    fn renders_placeholders_context_and_literals() {
        let t = Template::load(
            "step",
            &TemplateSpec {
                message: "{{rollout.namespace}}/{{ rollout.name }} step {{step.index}}/{{step.count}} at {{weight.canary}}% ({{event.revision}}) {{\"{{\"}}x}} -> {{recipient}}@{{service}}{{analysis.name}}".into(),
                link: Some("{{context.dashboard}}/rollouts/{{rollout.name}}".into()),
                slack_blocks: Some(json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*{{rollout.name}}* \"quoted\""}, "n": 1}])),
                webhook_body: None,
            },
            &ctx(),
        )
        .expect("loads");
        let m = t.render(&event(), "slack", "#deploys", &ctx());
        assert_eq!(
            m.text,
            "shop/web step 1/3 at 20% (abc) {{x}} -> #deploys@slack"
        );
        assert_eq!(m.link.as_deref(), Some("https://dash.example/rollouts/web"));
        assert_eq!(
            m.slack_blocks,
            Some(
                json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*web* \"quoted\""}, "n": 1}])
            )
        );
        assert_eq!(m.webhook_body, None);
    }

    #[test]
    fn load_errors_are_typed_with_offsets() {
        let e = Template::load("t", &spec("hi {{rollout.nme}}"), &ctx()).unwrap_err();
        assert_eq!(
            e,
            TemplateError::Unknown {
                template: "t".into(),
                field: "message".into(),
                name: "rollout.nme".into(),
                offset: 3
            }
        );
        let e = Template::load("t", &spec("{{context.nope}}"), &ctx()).unwrap_err();
        assert!(matches!(e, TemplateError::Unknown { ref name, .. } if name == "context.nope"));
        let e = Template::load("t", &spec("a {{rollout.name"), &ctx()).unwrap_err();
        assert!(
            matches!(e, TemplateError::Unclosed { offset: 2, .. }),
            "{e:?}"
        );
        let e = Template::load("t", &spec("ab{{ }}"), &ctx()).unwrap_err();
        assert!(matches!(e, TemplateError::Empty { offset: 2, .. }), "{e:?}");
        let e = Template::load(
            "t",
            &TemplateSpec {
                message: "ok".into(),
                webhook_body: Some(json!({"a": [1, "{{bad}}"]})),
                ..TemplateSpec::default()
            },
            &ctx(),
        )
        .unwrap_err();
        assert!(
            matches!(e, TemplateError::Unknown { ref field, .. } if field == "webhookBody.a[1]"),
            "{e:?}"
        );
    }

    #[test]
    fn odd_input() {
        let load = |s: &str| Template::load("t", &spec(s), &ctx());
        let render = |s: &str| load(s).map(|t| t.render(&event(), "", "", &ctx()).text);
        for s in ["{{", "{{\"", "{{\"}}", "{{\"a\"", "x {{ \"a\" "] {
            assert!(
                matches!(load(s), Err(TemplateError::Unclosed { .. })),
                "{s:?}: {:?}",
                load(s)
            );
        }
        assert_eq!(render("}} {"), Ok("}} {".to_string()));
        assert_eq!(render("{{ \"x\" }}"), Ok("x".to_string()));
        assert_eq!(render("{{\"}}\"}}"), Ok("}}".to_string()));
        assert!(matches!(
            load("é{{é}}"),
            Err(TemplateError::Unknown { offset: 2, ref name, .. }) if name == "é"
        ));
        assert!(matches!(
            load("{{{{}}}}"),
            Err(TemplateError::Unknown { offset: 0, ref name, .. }) if name == "{{"
        ));
    }

    proptest::proptest! {
        /// Loading and rendering never panic; text without `{{` renders as itself.
        #[test]
        fn never_panics(s in "[{}\"a-z. é]{0,40}") {
            if let Ok(t) = Template::load("t", &spec(&s), &ctx()) {
                let out = t.render(&event(), "svc", "rcpt", &ctx());
                if !s.contains("{{") {
                    proptest::prop_assert_eq!(out.text, s);
                }
            } else {
                proptest::prop_assert!(s.contains("{{"));
            }
        }
    }
}
