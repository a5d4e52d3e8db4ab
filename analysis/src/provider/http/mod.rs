//! HTTP metric providers (feature `http`): Prometheus, web and scrape.
//!
//! # The model
//!
//! Each provider turns one resolved [`Metric`](crate::template::Metric) into one HTTP
//! request, sends it through a shared [`HttpClient`], and hands the answer to the pure
//! parsers of [`crate::provider`] ([`prometheus`](crate::provider::prometheus),
//! [`exposition`](crate::provider::exposition), [`jsonpath`](crate::provider::jsonpath)).
//! Whatever goes wrong becomes a typed [`ProviderError`], which the runner records as an
//! `Error` measurement (counted by `consecutiveErrorLimit`); no input makes a provider
//! panic or hang:
//!
//! | what happened | error |
//! |---|---|
//! | bad URL, unsupported field (`sigv4`), https without a TLS provider | [`ProviderError::Config`] naming the field |
//! | connection refused, DNS failure, reset | [`ProviderError::Unreachable`] |
//! | no complete answer within the metric's timeout | [`ProviderError::Timeout`] |
//! | a non-2xx status | [`ProviderError::Status`] with the first 512 bytes of the body |
//! | an answer that does not decode | [`ProviderError::Decode`] (or `Query` for Prometheus' error envelope) |
//!
//! Time-dependent requests (Prometheus' `time=`, range starts and ends) read a
//! [`Clock`], so tests and simulations can pin it ([`FixedClock`]); [`SystemClock`] is
//! the default.
//!
//! # Transport and TLS
//!
//! The workspace builds reqwest with `rustls-no-provider`: the application chooses the
//! rustls `CryptoProvider` (ring or aws-lc-rs) and installs it as the process default.
//! reqwest panics when a client is built without one, so [`HttpClient`] never asks it to:
//! plain `http://` requests go through a hyper client, which needs no TLS at all, and
//! `https://` requests go through reqwest only when a provider was installed before
//! [`HttpClient::new`]; otherwise they fail with [`ProviderError::Config`]. Plain
//! requests do not follow redirects (a 3xx is a [`ProviderError::Status`]).
//!
//! Requests need a Tokio runtime with the time driver enabled (the timeouts use it).

pub mod prometheus;
pub mod scrape;
pub mod web;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rollout_core::time::Timestamp;

use super::ProviderError;

pub use prometheus::PrometheusProvider;
pub use scrape::ScrapeProvider;
pub use web::WebProvider;

/// Longest body a provider reads (32 MiB); a longer answer is a [`ProviderError::Decode`].
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// How much of an error body [`ProviderError::Status`] keeps.
pub const ERROR_BODY_BYTES: usize = 512;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_millis(ms)
    }
}

/// A clock stopped at one instant (tests, simulations, replays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// One request, as a provider builds it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) provider: &'static str,
    /// The field the URL came from (for `Config` errors).
    pub(crate) url_field: &'static str,
    pub(crate) method: http::Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) timeout: Duration,
    pub(crate) insecure: bool,
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Response {
    /// The answer if its status is 2xx, else a [`ProviderError::Status`].
    pub(crate) fn success(self, req: &Request) -> Result<Response, ProviderError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(status_error(
                req.provider,
                &req.url,
                self.status,
                &self.body,
            ))
        }
    }
}

/// The HTTP transport shared by the providers (cheap to clone; connections are pooled).
#[derive(Clone)]
pub struct HttpClient {
    plain: HyperClient<HttpConnector, Full<Bytes>>,
    tls: Option<TlsClients>,
}

#[derive(Clone)]
struct TlsClients {
    verified: reqwest::Client,
    insecure: reqwest::Client,
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

impl HttpClient {
    /// A client for `http://`, and for `https://` when a rustls `CryptoProvider` is
    /// installed as the process default (see the module docs). Never panics.
    pub fn new() -> HttpClient {
        let plain = HyperClient::builder(TokioExecutor::new()).build_http();
        let tls = rustls::crypto::CryptoProvider::get_default().and_then(|_| {
            let verified = reqwest::Client::builder().build().ok()?;
            let insecure = reqwest::Client::builder()
                .tls_danger_accept_invalid_certs(true)
                .build()
                .ok()?;
            Some(TlsClients { verified, insecure })
        });
        HttpClient { plain, tls }
    }

    /// Whether `https://` URLs can be used.
    pub fn supports_https(&self) -> bool {
        self.tls.is_some()
    }

    /// Sends `req`; any HTTP status is an `Ok` answer (see [`Response::success`]).
    pub(crate) async fn send(&self, req: &Request) -> Result<Response, ProviderError> {
        let config = |reason: String| ProviderError::Config {
            provider: req.provider,
            field: req.url_field.to_string(),
            reason,
        };
        let uri: http::Uri = req
            .url
            .parse()
            .map_err(|e| config(format!("{:?} is not a valid URL: {e}", req.url)))?;
        if uri.host().is_none() {
            return Err(config(format!("{:?} has no host", req.url)));
        }
        let timeout_ms = u64::try_from(req.timeout.as_millis()).unwrap_or(u64::MAX);
        let timed_out = || ProviderError::Timeout {
            provider: req.provider,
            address: req.url.clone(),
            timeout_ms,
        };
        let fut = async {
            match uri.scheme_str() {
                Some("http") => self.send_plain(req, uri.clone()).await,
                Some("https") => match &self.tls {
                    Some(tls) => {
                        let client = if req.insecure {
                            &tls.insecure
                        } else {
                            &tls.verified
                        };
                        send_tls(client, req).await
                    }
                    None => Err(config(
                        "https needs a rustls CryptoProvider installed as the process default \
                         before the HttpClient is built (rustls-no-provider)"
                            .to_string(),
                    )),
                },
                other => Err(config(format!(
                    "unsupported URL scheme {:?} (http or https)",
                    other.unwrap_or("")
                ))),
            }
        };
        match tokio::time::timeout(req.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(timed_out()),
        }
    }

    async fn send_plain(&self, req: &Request, uri: http::Uri) -> Result<Response, ProviderError> {
        let mut builder = http::Request::builder().method(req.method.clone()).uri(uri);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let body = Full::new(Bytes::from(req.body.clone().unwrap_or_default()));
        let request = builder.body(body).map_err(|e| ProviderError::Config {
            provider: req.provider,
            field: "headers".into(),
            reason: e.to_string(),
        })?;
        let response = self.plain.request(request).await.map_err(|e| {
            let reason = error_chain(&e);
            if e.is_connect() {
                ProviderError::Unreachable {
                    provider: req.provider,
                    address: req.url.clone(),
                    reason,
                }
            } else {
                ProviderError::Unreachable {
                    provider: req.provider,
                    address: req.url.clone(),
                    reason: format!("request failed: {reason}"),
                }
            }
        })?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| read_error(req, &*e))?
            .to_bytes();
        Ok(Response { status, body })
    }
}

async fn send_tls(client: &reqwest::Client, req: &Request) -> Result<Response, ProviderError> {
    let mut builder = client.request(req.method.clone(), &req.url);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let response = builder.send().await.map_err(|e| {
        let reason = error_chain(&e);
        if e.is_builder() {
            ProviderError::Config {
                provider: req.provider,
                field: req.url_field.to_string(),
                reason,
            }
        } else {
            ProviderError::Unreachable {
                provider: req.provider,
                address: req.url.clone(),
                reason,
            }
        }
    })?;
    let status = response.status().as_u16();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_long(req));
    }
    let body = response.bytes().await.map_err(|e| read_error(req, &e))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_long(req));
    }
    Ok(Response { status, body })
}

fn too_long(req: &Request) -> ProviderError {
    ProviderError::Decode {
        provider: req.provider,
        reason: format!("the response body is longer than {MAX_BODY_BYTES} bytes"),
    }
}

fn read_error(req: &Request, e: &(dyn std::error::Error + 'static)) -> ProviderError {
    if e.is::<http_body_util::LengthLimitError>() {
        return too_long(req);
    }
    ProviderError::Unreachable {
        provider: req.provider,
        address: req.url.clone(),
        reason: format!("reading the response failed: {}", error_chain(e)),
    }
}

/// A [`ProviderError::Status`] keeping the first [`ERROR_BODY_BYTES`] of the body (cut at
/// a character boundary, invalid UTF-8 replaced).
pub(crate) fn status_error(
    provider: &'static str,
    address: &str,
    status: u16,
    body: &[u8],
) -> ProviderError {
    ProviderError::Status {
        provider,
        address: address.to_string(),
        status,
        body: body_prefix(body),
    }
}

fn body_prefix(body: &[u8]) -> String {
    let cut = &body[..body.len().min(ERROR_BODY_BYTES)];
    let text = String::from_utf8_lossy(cut);
    // A multi-byte character cut in half at the end shows as U+FFFD; drop it.
    if cut.len() < body.len() {
        text.trim_end_matches('\u{fffd}').to_string()
    } else {
        text.into_owned()
    }
}

/// The message of an error and its sources, `a: b: c`.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

/// Fetches an OAuth2 access token with the client-credentials grant (RFC 6749 4.4), as
/// Go's `clientcredentials` package does: `POST tokenUrl` with
/// `grant_type=client_credentials` and the space-separated `scope`, the client id and
/// secret form-encoded in a Basic `Authorization` header. Returns the `access_token`.
pub(crate) async fn oauth2_token(
    client: &HttpClient,
    provider: &'static str,
    oauth: &crate::template::OAuth2,
    timeout: Duration,
    insecure: bool,
) -> Result<String, ProviderError> {
    let token_url = oauth
        .token_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ProviderError::Config {
            provider,
            field: "authentication.oauth2.tokenUrl".into(),
            reason: "is required".into(),
        })?;
    let id = form_encode(oauth.client_id.as_deref().unwrap_or(""));
    let secret = form_encode(oauth.client_secret.as_deref().unwrap_or(""));
    let mut body = "grant_type=client_credentials".to_string();
    if !oauth.scopes.is_empty() {
        body.push_str("&scope=");
        body.push_str(&form_encode(&oauth.scopes.join(" ")));
    }
    let req = Request {
        provider,
        url_field: "authentication.oauth2.tokenUrl",
        method: http::Method::POST,
        url: token_url.to_string(),
        headers: vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("Accept".into(), "application/json".into()),
            ("Authorization".into(), basic_auth_header(&id, &secret)),
        ],
        body: Some(body.into_bytes()),
        timeout,
        insecure,
    };
    let resp = client.send(&req).await?.success(&req)?;
    let decode = |reason: String| ProviderError::Decode {
        provider,
        reason: format!("token endpoint {token_url}: {reason}"),
    };
    let json: serde_json::Value =
        serde_json::from_slice(&resp.body).map_err(|e| decode(e.to_string()))?;
    json.get("access_token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| decode("no access_token in the answer".into()))
}

/// The headers of a request from a metric's `authentication` and `headers`: basic auth
/// first (SigV4 is refused), then each header in order, a later key replacing an earlier
/// one. An error is the field and what is wrong with it.
pub(crate) fn request_headers(
    authentication: Option<&crate::template::Authentication>,
    extra: &[crate::template::Header],
) -> Result<Vec<(String, String)>, (&'static str, &'static str)> {
    let mut headers = Vec::new();
    if let Some(auth) = authentication {
        if auth.sigv4.is_some() {
            return Err(("authentication.sigv4", "AWS SigV4 signing is not supported"));
        }
        if let Some(basic) = &auth.basic_auth {
            let user = basic.username.as_deref().unwrap_or("");
            let pass = basic.password.as_deref().unwrap_or("");
            set_header(
                &mut headers,
                "Authorization",
                &basic_auth_header(user, pass),
            );
        }
    }
    for h in extra {
        if h.key.is_empty() {
            return Err(("headers", "a header has an empty key"));
        }
        set_header(&mut headers, &h.key, &h.value);
    }
    Ok(headers)
}

/// Sets a header the way Go's `Header.Set` does: replaces any earlier value of the same
/// (case-insensitive) name.
pub(crate) fn set_header(headers: &mut Vec<(String, String)>, key: &str, value: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    headers.push((key.to_string(), value.to_string()));
}

/// `Authorization: Basic ...` for a user name and password.
pub(crate) fn basic_auth_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64(format!("{username}:{password}").as_bytes())
    )
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes `s` for a query string (`application/x-www-form-urlencoded`).
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `base` + `path` + `?k=v&...` (the base's trailing `/` dropped, its own query kept).
pub(crate) fn join_url(base: &str, path: &str, params: &[(&str, String)]) -> String {
    let (base, existing) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let mut url = format!("{}{}", base.trim_end_matches('/'), path);
    let mut parts: Vec<String> = existing
        .filter(|q| !q.is_empty())
        .map(|q| vec![q.to_string()])
        .unwrap_or_default();
    parts.extend(
        params
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))),
    );
    if !parts.is_empty() {
        url.push('?');
        url.push_str(&parts.join("&"));
    }
    url
}

/// Seconds since the epoch as Prometheus reads them (`1700000000.123`).
pub(crate) fn unix_seconds(t: Timestamp) -> String {
    let ms = t.as_millis();
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        format!("{sign}{secs}")
    } else {
        format!("{sign}{secs}.{frac:03}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
        assert_eq!(
            basic_auth_header("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn urls_and_times() {
        assert_eq!(
            join_url(
                "http://p:9090/",
                "/api/v1/query",
                &[("query", "sum(x{a=\"b c\"})".into())]
            ),
            "http://p:9090/api/v1/query?query=sum%28x%7Ba%3D%22b+c%22%7D%29"
        );
        assert_eq!(
            join_url("http://p/prom?x=1", "/api/v1/query", &[("a", "1".into())]),
            "http://p/prom/api/v1/query?x=1&a=1"
        );
        assert_eq!(
            unix_seconds(Timestamp::from_millis(1_700_000_000_123)),
            "1700000000.123"
        );
        assert_eq!(unix_seconds(Timestamp::from_secs(5)), "5");
        assert_eq!(unix_seconds(Timestamp::from_millis(-1500)), "-1.500");
    }

    #[test]
    fn error_bodies_are_cut_at_512_bytes() {
        let long = "é".repeat(400);
        let cut = body_prefix(long.as_bytes());
        assert!(cut.len() <= ERROR_BODY_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(body_prefix(b"short"), "short");
    }
}
