//! HTTP senders (feature `http`): Slack, a signed webhook, GitHub.
//!
//! # Transport
//!
//! Every sender goes through an [`HttpClient`]: plain `http://` URLs through a hyper
//! client (no TLS needed, what the tests' local servers use), `https://` through reqwest
//! once the binary has installed a rustls `CryptoProvider` as the process default before
//! the client is built (the workspace builds reqwest with `rustls-no-provider`, and
//! reqwest panics when a client is built without a provider, so [`HttpClient::new`]
//! only builds one when a provider is there); without one an `https://` URL is a
//! [`SendError::Config`]. Redirects are not followed.
//!
//! # Retries
//!
//! [`RetryPolicy`]: each attempt has its own timeout; connection errors, timeouts, 5xx
//! and 429 are retried up to `max_attempts` in all, after an exponential backoff
//! (`initial_backoff`, doubled per attempt, capped at `max_backoff`) or, when the answer
//! has a `Retry-After` in seconds, after that long (capped at `max_retry_after`). Other
//! answers (4xx, Slack's `ok: false`) are final. When the attempts run out the error is
//! [`SendError::Exhausted`] with the last error.

pub mod github;
pub mod slack;
pub mod webhook;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::dispatch::SendError;

pub use github::{GithubComments, GithubStatuses, StatusState};
pub use slack::{SlackApi, SlackWebhook};
pub use webhook::Webhook;

/// Longest answer body read (1 MiB); the rest is dropped.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of an error body a [`SendError::Status`] keeps.
const ERROR_BODY_BYTES: usize = 512;

/// Attempts, backoff and timeouts of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least one is always made).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Longest wait a `Retry-After` header may ask for.
    pub max_retry_after: Duration,
    /// Timeout of each attempt (connect, send and read the answer).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, 500 ms doubling to at most 8 s, `Retry-After` up to 60 s, 10 s per
    /// attempt.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The backoff after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// An HTTP client for the senders (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    plain: HyperClient<HttpConnector, Full<Bytes>>,
    tls: Option<reqwest::Client>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("https", &self.tls.is_some())
            .finish()
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

/// One request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// One answer.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Bytes,
}

fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

fn truncate(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(ERROR_BODY_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl HttpClient {
    /// A client for `http://`, and for `https://` when a rustls `CryptoProvider` is
    /// installed as the process default. Never panics.
    pub fn new() -> HttpClient {
        let plain = HyperClient::builder(TokioExecutor::new()).build_http();
        let tls = rustls::crypto::CryptoProvider::get_default()
            .and_then(|_| reqwest::Client::builder().build().ok());
        HttpClient { plain, tls }
    }

    /// Whether `https://` URLs can be used.
    pub fn supports_https(&self) -> bool {
        self.tls.is_some()
    }

    /// One POST attempt with a timeout.
    async fn post_once(
        &self,
        service: &str,
        req: &Request,
        timeout: Duration,
    ) -> Result<Response, SendError> {
        let config = |reason: String| SendError::Config {
            service: service.to_string(),
            reason,
        };
        let uri: http::Uri = req
            .url
            .parse()
            .map_err(|e| config(format!("{:?} is not a valid URL: {e}", req.url)))?;
        if uri.host().is_none() {
            return Err(config(format!("{:?} has no host", req.url)));
        }
        let fut = async {
            match uri.scheme_str() {
                Some("http") => self.post_plain(service, req, uri.clone()).await,
                Some("https") => match &self.tls {
                    Some(client) => post_tls(client, service, req).await,
                    None => Err(config(
                        "https needs a rustls CryptoProvider installed as the process default \
                         before the HttpClient is built"
                            .to_string(),
                    )),
                },
                other => Err(config(format!(
                    "unsupported URL scheme {:?} (http or https)",
                    other.unwrap_or("")
                ))),
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout {
                service: service.to_string(),
                url: req.url.clone(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    async fn post_plain(
        &self,
        service: &str,
        req: &Request,
        uri: http::Uri,
    ) -> Result<Response, SendError> {
        let unreachable = |reason: String| SendError::Unreachable {
            service: service.to_string(),
            url: req.url.clone(),
            reason,
        };
        let mut builder = http::Request::builder().method(http::Method::POST).uri(uri);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body.clone())))
            .map_err(|e| SendError::Config {
                service: service.to_string(),
                reason: format!("invalid request header: {e}"),
            })?;
        let response = self
            .plain
            .request(request)
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the answer failed: {}", error_chain(&*e))))?
            .to_bytes();
        Ok(Response {
            status,
            retry_after,
            body,
        })
    }

    /// POSTs `req`, retrying under `policy`; `accept` judges a 2xx answer (and is not
    /// retried when it refuses).
    pub(crate) async fn post(
        &self,
        service: &str,
        policy: &RetryPolicy,
        req: &Request,
        accept: impl Fn(&Response) -> Result<(), SendError>,
    ) -> Result<Response, SendError> {
        let attempts = policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (error, wait) = match self.post_once(service, req, policy.timeout).await {
                Ok(resp) if (200..300).contains(&resp.status) => {
                    accept(&resp)?;
                    return Ok(resp);
                }
                Ok(resp) => {
                    let wait = resp.retry_after.map(|d| d.min(policy.max_retry_after));
                    (
                        SendError::Status {
                            service: service.to_string(),
                            url: req.url.clone(),
                            status: resp.status,
                            body: truncate(&resp.body),
                        },
                        wait,
                    )
                }
                Err(e) => (e, None),
            };
            if !error.is_retryable() {
                return Err(error);
            }
            if attempt >= attempts {
                return Err(if attempt == 1 {
                    error
                } else {
                    SendError::Exhausted {
                        attempts: attempt,
                        last: Box::new(error),
                    }
                });
            }
            tokio::time::sleep(wait.unwrap_or_else(|| policy.backoff(attempt))).await;
        }
    }
}

async fn post_tls(
    client: &reqwest::Client,
    service: &str,
    req: &Request,
) -> Result<Response, SendError> {
    let mut builder = client.post(&req.url);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let response = builder.body(req.body.clone()).send().await.map_err(|e| {
        if e.is_builder() {
            SendError::Config {
                service: service.to_string(),
                reason: error_chain(&e),
            }
        } else {
            SendError::Unreachable {
                service: service.to_string(),
                url: req.url.clone(),
                reason: error_chain(&e),
            }
        }
    })?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = response.bytes().await.map_err(|e| SendError::Unreachable {
        service: service.to_string(),
        url: req.url.clone(),
        reason: format!("reading the answer failed: {}", error_chain(&e)),
    })?;
    let body = if body.len() > MAX_BODY_BYTES {
        body.slice(..MAX_BODY_BYTES)
    } else {
        body
    };
    Ok(Response {
        status,
        retry_after,
        body,
    })
}

/// `base` without trailing slashes.
fn trim_base(base: &str) -> String {
    base.trim_end_matches('/').to_string()
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        let got: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 500, 500]);
        assert_eq!(p.backoff(200), Duration::from_millis(500));
    }

    #[test]
    fn error_bodies_are_cut_at_char_boundaries() {
        let body = "é".repeat(400);
        let cut = truncate(body.as_bytes());
        assert_eq!(cut.len(), 512);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
