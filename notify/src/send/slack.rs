//! Slack: incoming webhooks and `chat.postMessage`.
//!
//! An incoming webhook posts `{"text": ..., "blocks": [...]}` to its URL; the webhook
//! decides the channel, so the subscription's recipient is not used (subscribe with an
//! empty recipient, or register one service per webhook). Slack answers `200 ok`, or a
//! 4xx with an error text.
//!
//! `chat.postMessage` posts `{"channel": <recipient>, "text": ..., "blocks": [...]}`
//! with the bot token as `Authorization: Bearer`, to `<api>/chat.postMessage`
//! (`https://slack.com/api` by default). Slack answers `200` with `{"ok": false,
//! "error": "channel_not_found"}` when it refuses: that is a [`SendError::Rejected`],
//! not retried.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::{HttpClient, JSON, Request, Response, RetryPolicy, trim_base};
use crate::dispatch::{SendError, Service};
use crate::notifier::Delivery;

fn payload(delivery: &Delivery) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("text".into(), Value::String(delivery.message.text.clone()));
    if let Some(blocks) = &delivery.message.slack_blocks {
        body.insert("blocks".into(), blocks.clone());
    }
    body
}

/// A Slack incoming webhook.
#[derive(Debug, Clone)]
pub struct SlackWebhook {
    url: String,
    client: HttpClient,
    policy: RetryPolicy,
}

impl SlackWebhook {
    /// A webhook posting to `url`, with the default [`RetryPolicy`].
    pub fn new(client: HttpClient, url: &str) -> Self {
        SlackWebhook {
            url: url.to_string(),
            client,
            policy: RetryPolicy::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }
}

#[async_trait]
impl Service for SlackWebhook {
    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let body = Value::Object(payload(delivery)).to_string().into_bytes();
        let req = Request {
            url: self.url.clone(),
            headers: vec![(JSON.0.into(), JSON.1.into())],
            body,
        };
        self.client
            .post("slack", &self.policy, &req, |_| Ok(()))
            .await
            .map(drop)
    }
}

/// Slack's Web API `chat.postMessage`.
#[derive(Debug, Clone)]
pub struct SlackApi {
    api_url: String,
    token: String,
    username: Option<String>,
    icon_emoji: Option<String>,
    client: HttpClient,
    policy: RetryPolicy,
}

impl SlackApi {
    /// A sender with bot token `token` against `https://slack.com/api`.
    pub fn new(client: HttpClient, token: &str) -> Self {
        SlackApi {
            api_url: "https://slack.com/api".into(),
            token: token.to_string(),
            username: None,
            icon_emoji: None,
            client,
            policy: RetryPolicy::default(),
        }
    }

    /// Replaces the API base URL (Argo's `apiURL`; a local server in tests).
    pub fn with_api_url(mut self, url: &str) -> Self {
        self.api_url = trim_base(url);
        self
    }

    /// Posts as `username` with `icon_emoji` (both optional in Slack).
    pub fn with_identity(mut self, username: Option<&str>, icon_emoji: Option<&str>) -> Self {
        self.username = username.map(str::to_string);
        self.icon_emoji = icon_emoji.map(str::to_string);
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }
}

fn check_ok(resp: &Response) -> Result<(), SendError> {
    let rejected = |error: String| SendError::Rejected {
        service: "slack".into(),
        error,
    };
    let answer: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| rejected(format!("the answer is not JSON: {e}")))?;
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(())
    } else {
        Err(rejected(
            answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("the answer has no \"ok\": true")
                .to_string(),
        ))
    }
}

#[async_trait]
impl Service for SlackApi {
    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let channel = &delivery.key.recipient;
        if channel.is_empty() {
            return Err(SendError::BadRecipient {
                service: "slack".into(),
                recipient: channel.clone(),
                reason: "chat.postMessage needs a channel".into(),
            });
        }
        let mut body = Map::new();
        body.insert("channel".into(), json!(channel));
        body.extend(payload(delivery));
        if let Some(u) = &self.username {
            body.insert("username".into(), json!(u));
        }
        if let Some(i) = &self.icon_emoji {
            body.insert("icon_emoji".into(), json!(i));
        }
        let req = Request {
            url: format!("{}/chat.postMessage", self.api_url),
            headers: vec![
                (JSON.0.into(), "application/json; charset=utf-8".into()),
                ("authorization".into(), format!("Bearer {}", self.token)),
            ],
            body: Value::Object(body).to_string().into_bytes(),
        };
        self.client
            .post("slack", &self.policy, &req, check_ok)
            .await
            .map(drop)
    }
}
