//! The `web` provider: one HTTP request, a JSONPath into the answer.
//!
//! # The model
//!
//! As Argo's web provider does, a measurement sends `method` (`GET` by default, `POST`
//! or `PUT`) to `url` with `headers` and, for `POST`/`PUT`, either `body` (text) or
//! `jsonBody` (any JSON, sent with `Content-Type: application/json`), and waits at most
//! `timeoutSeconds` (default [`DEFAULT_TIMEOUT_SECONDS`]; zero or negative means the
//! default). Then:
//!
//! * a non-2xx answer is a [`ProviderError::Status`];
//! * a body that is not JSON (an empty one included) is taken as it is: the measurement
//!   is **Successful** with the raw text as its value, and the conditions are not
//!   evaluated ([`Measured::Verdict`]) — Argo's behaviour;
//! * a JSON body goes through `jsonPath` (default `{$}`, see
//!   [`crate::provider::jsonpath`]); the **first** match, decoded as Go decodes JSON into
//!   `any` (numbers are floats), is the `result` the conditions judge
//!   ([`Measured::Value`]); a path matching nothing is a [`ProviderError::Decode`].
//!
//! Setting both `body` and `jsonBody`, a body on a `GET`, an unknown method or a
//! malformed `jsonPath` is a [`ProviderError::Config`] naming the field. `insecure`
//! skips TLS verification (https only); `authentication.oauth2` (client credentials,
//! as Argo) fetches a token from `tokenUrl` first and sends it as
//! `Authorization: Bearer`; `authentication.basicAuth` sends an `Authorization: Basic`
//! header; `authentication.sigv4` is not supported and fails with a
//! [`ProviderError::Config`].

use std::time::Duration;

use super::{HttpClient, Request, oauth2_token, request_headers, set_header};
use crate::MeasurementPhase;
use crate::expr::Value;
use crate::provider::jsonpath::JsonPath;
use crate::provider::{MeasureContext, Measured, Provider, ProviderError};
use crate::template::{Metric, WebMetric};

/// Argo's default timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 10;

const NAME: &str = "web";

fn config(field: impl Into<String>, reason: impl Into<String>) -> ProviderError {
    ProviderError::Config {
        provider: NAME,
        field: field.into(),
        reason: reason.into(),
    }
}

/// The web provider (see the module docs).
#[derive(Debug, Clone)]
pub struct WebProvider {
    client: HttpClient,
    default_timeout: Duration,
}

impl Default for WebProvider {
    fn default() -> Self {
        WebProvider::new(HttpClient::new())
    }
}

impl WebProvider {
    /// A provider on `client`.
    pub fn new(client: HttpClient) -> Self {
        WebProvider {
            client,
            default_timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS as u64),
        }
    }

    /// The timeout used when a metric sets no positive `timeoutSeconds`.
    #[must_use]
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Sends the request a metric's `web` section describes and interprets the answer.
    pub async fn fetch(&self, spec: &WebMetric) -> Result<Measured, ProviderError> {
        let method = match spec.method.as_deref().unwrap_or("") {
            "" | "GET" => http::Method::GET,
            "POST" => http::Method::POST,
            "PUT" => http::Method::PUT,
            other => {
                return Err(config(
                    "method",
                    format!("{other:?} is not GET, POST or PUT"),
                ));
            }
        };
        if spec.url.trim().is_empty() {
            return Err(config("url", "is required"));
        }
        let text_body = spec.body.as_deref().filter(|b| !b.is_empty());
        let body = match (text_body, &spec.json_body) {
            (Some(_), Some(_)) => {
                return Err(config("body", "use either body or jsonBody, not both"));
            }
            (Some(_), None) | (None, Some(_)) if method == http::Method::GET => {
                return Err(config(
                    if text_body.is_some() {
                        "body"
                    } else {
                        "jsonBody"
                    },
                    "a body can only be sent with POST or PUT",
                ));
            }
            (Some(b), None) => Some(b.as_bytes().to_vec()),
            (None, Some(j)) => {
                Some(serde_json::to_vec(j).map_err(|e| config("jsonBody", e.to_string()))?)
            }
            (None, None) => None,
        };
        let path_src = spec
            .json_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("{$}");
        let path = JsonPath::compile(path_src).map_err(|e| config("jsonPath", e.to_string()))?;
        let timeout = spec
            .timeout_seconds
            .filter(|t| *t > 0)
            .map_or(self.default_timeout, |t| {
                Duration::from_secs(u64::try_from(t).unwrap_or(u64::MAX))
            });
        let mut headers = request_headers(spec.authentication.as_ref(), &spec.headers)
            .map_err(|(f, r)| config(f, r))?;
        if spec.json_body.is_some() {
            set_header(&mut headers, "Content-Type", "application/json");
        }
        if let Some(oauth) = spec.authentication.as_ref().and_then(|a| a.oauth2.as_ref()) {
            let token = oauth2_token(&self.client, NAME, oauth, timeout, spec.insecure).await?;
            set_header(&mut headers, "Authorization", &format!("Bearer {token}"));
        }
        let req = Request {
            provider: NAME,
            url_field: "url",
            method,
            url: spec.url.trim().to_string(),
            headers,
            body,
            timeout,
            insecure: spec.insecure,
        };
        let resp = self.client.send(&req).await?.success(&req)?;
        interpret(&path, &resp.body)
    }
}

/// What Argo makes of a 2xx body (see the module docs).
pub fn interpret(path: &JsonPath, body: &[u8]) -> Result<Measured, ProviderError> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(Measured::Verdict {
            phase: MeasurementPhase::Successful,
            value: Value::String(String::from_utf8_lossy(body).into_owned()),
        });
    };
    let first = path.first(&doc).map_err(|e| ProviderError::Decode {
        provider: NAME,
        reason: format!("could not find JSONPath in body: {e}"),
    })?;
    Ok(Measured::Value(Value::from_json(first)))
}

#[async_trait::async_trait]
impl Provider for WebProvider {
    async fn measure(
        &self,
        _ctx: &MeasureContext<'_>,
        metric: &Metric,
    ) -> Result<Measured, ProviderError> {
        let spec = metric
            .provider
            .web
            .as_ref()
            .ok_or_else(|| config("web", "the metric has no web provider"))?;
        self.fetch(spec).await
    }
}
