//! A generic webhook with HMAC-SHA256 signing.
//!
//! The body is the template's `webhookBody` when it has one, else the event as JSON:
//!
//! ```json
//! {"trigger": "on-rollout-aborted", "reason": "RolloutAborted", "type": "Warning",
//!  "subject": {"kind": "rollout", "namespace": "shop", "name": "web"},
//!  "revision": "6f7c9d8b5", "occurrence": "", "message": "<the event message>",
//!  "text": "<the rendered message>", "link": null, "recipient": "", "facts": {...}}
//! ```
//!
//! With a secret, the exact body bytes are signed: header `X-Signature-256:
//! sha256=<lowercase hex of HMAC-SHA256(secret, body)>` (GitHub's scheme; the header
//! name is configurable). The receiver recomputes it over the raw body.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{HttpClient, JSON, Request, RetryPolicy};
use crate::dispatch::{SendError, Service};
use crate::notifier::Delivery;

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// A generic webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    url: String,
    secret: Option<Vec<u8>>,
    signature_header: String,
    headers: Vec<(String, String)>,
    client: HttpClient,
    policy: RetryPolicy,
}

impl Webhook {
    /// A webhook posting to `url`, unsigned, with the default [`RetryPolicy`].
    pub fn new(client: HttpClient, url: &str) -> Self {
        Webhook {
            url: url.to_string(),
            secret: None,
            signature_header: "X-Signature-256".into(),
            headers: Vec::new(),
            client,
            policy: RetryPolicy::default(),
        }
    }

    /// Signs every body with `secret`.
    pub fn with_secret(mut self, secret: &[u8]) -> Self {
        self.secret = Some(secret.to_vec());
        self
    }

    /// Puts the signature in `header` instead of `X-Signature-256`.
    pub fn with_signature_header(mut self, header: &str) -> Self {
        self.signature_header = header.to_string();
        self
    }

    /// Adds a header to every request (an API key, say).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// The default body: the event as JSON (see the module docs).
pub fn default_body(delivery: &Delivery) -> Value {
    let e = &delivery.event;
    json!({
        "trigger": e.trigger,
        "reason": e.reason,
        "type": e.severity.as_str(),
        "subject": {
            "kind": e.subject.kind,
            "namespace": e.subject.namespace,
            "name": e.subject.name,
        },
        "revision": e.revision,
        "occurrence": e.occurrence,
        "message": e.message,
        "text": delivery.message.text,
        "link": delivery.message.link,
        "recipient": delivery.key.recipient,
        "facts": e.facts,
    })
}

#[async_trait]
impl Service for Webhook {
    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let body = match &delivery.message.webhook_body {
            Some(b) => b.to_string(),
            None => default_body(delivery).to_string(),
        }
        .into_bytes();
        let mut headers = vec![(JSON.0.to_string(), JSON.1.to_string())];
        headers.extend(self.headers.iter().cloned());
        if let Some(secret) = &self.secret {
            headers.push((self.signature_header.clone(), signature(secret, &body)));
        }
        let req = Request {
            url: self.url.clone(),
            headers,
            body,
        };
        self.client
            .post("webhook", &self.policy, &req, |_| Ok(()))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
