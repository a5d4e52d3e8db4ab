//! A client for the OCI distribution API (Docker Registry HTTP API v2): the adapter
//! that feeds [`crate::image`]'s pure strategies with tags, digests and build times.
//!
//! # The model
//!
//! A registry serves, per repository (`shop/web`):
//!
//! - `GET /v2/<repo>/tags/list[?n=<page>&last=<tag>]`: the tag names, possibly in pages
//!   chained by a `Link: <...>; rel="next"` header ([`RegistryClient::tags`] follows
//!   them, bounded by [`RegistryConfig::max_pages`]);
//! - `GET|HEAD /v2/<repo>/manifests/<tag or digest>`: a manifest, negotiated with
//!   `Accept` (Docker v2 manifest and manifest list, OCI image manifest and index). Its
//!   digest is the `Docker-Content-Digest` header, checked here against the SHA-256 of
//!   the bytes. An image manifest names a config blob; an index (multi-platform) names
//!   one image manifest per platform ([`Platform`]);
//! - `GET /v2/<repo>/blobs/<digest>`: a blob; the image config's `created` is the build
//!   time `newest-build` sorts by ([`RegistryClient::build_time`]).
//!
//! Authentication follows the registry's challenge: a `401` with
//! `WWW-Authenticate: Basic ...` is answered with the configured credentials; one with
//! `WWW-Authenticate: Bearer realm=...,service=...,scope=...` sends the credentials (if
//! any) to the token endpoint at `realm` and retries with the token, which is cached per
//! repository until the registry refuses it again. Failures are typed
//! ([`RegistryError`]) with the status, repository and reference.
//!
//! Every request has a timeout ([`RegistryConfig::timeout`]) and every body a size
//! bound ([`RegistryConfig::max_body_bytes`]). reqwest builds its TLS configuration
//! even for `http://`, from the process-level rustls `CryptoProvider`: the client
//! installs ring's if none is installed (so building a client never panics). Proxies
//! from the environment are used, except for loopback registries.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, LINK, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::image::{BuildTime, Policy, Strategy, Tag};

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

const ACCEPT_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Why a registry call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The client configuration is unusable.
    #[error("registry configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A repository name the distribution spec does not allow.
    #[error("invalid repository name {repository:?}")]
    BadRepository {
        /// The name.
        repository: String,
    },
    /// A reference that is neither a tag nor a digest.
    #[error("invalid reference {reference:?} (expected a tag or <algorithm>:<hex>)")]
    BadReference {
        /// The reference.
        reference: String,
    },
    /// The registry answered with an unexpected status.
    #[error(
        "{url}: HTTP {status} for {repository}{}{}",
        fmt_ref(reference),
        fmt_body(body)
    )]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The repository.
        repository: String,
        /// The tag or digest, if the request had one.
        reference: Option<String>,
        /// The URL requested.
        url: String,
        /// The start of the response body (the registry's error JSON).
        body: String,
    },
    /// The registry refused the request for lack of (valid) credentials.
    #[error("{url}: HTTP 401 for {repository}{} ({})", fmt_ref(reference), if *credentials_sent { "credentials refused" } else { "no credentials configured" })]
    Unauthorized {
        /// The repository.
        repository: String,
        /// The tag or digest, if the request had one.
        reference: Option<String>,
        /// The URL requested.
        url: String,
        /// The `WWW-Authenticate` challenge, if any.
        challenge: Option<String>,
        /// Whether credentials or a token were sent.
        credentials_sent: bool,
    },
    /// The bearer-token endpoint failed.
    #[error("token endpoint {realm}: {reason}")]
    TokenEndpoint {
        /// The realm URL.
        realm: String,
        /// Its HTTP status, if it answered.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("{url}: no answer within {timeout_ms} ms")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// A connection or protocol failure.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An answer that does not follow the API.
    #[error("{url}: unexpected answer: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The content's SHA-256 differs from the digest the registry claims or the one
    /// requested.
    #[error("{repository}@{reference}: digest {expected} expected, content hashes to {actual}")]
    DigestMismatch {
        /// The repository.
        repository: String,
        /// The tag or digest requested.
        reference: String,
        /// The digest claimed or requested.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A body larger than [`RegistryConfig::max_body_bytes`].
    #[error("{url}: body larger than {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// More tag pages than [`RegistryConfig::max_pages`].
    #[error("{repository}: more than {pages} pages of tags")]
    TooManyPages {
        /// The repository.
        repository: String,
        /// The limit.
        pages: usize,
    },
}

fn fmt_ref(r: &Option<String>) -> String {
    r.as_ref().map(|r| format!(":{r}")).unwrap_or_default()
}

fn fmt_body(b: &str) -> String {
    if b.is_empty() {
        String::new()
    } else {
        format!(": {b}")
    }
}

/// A user name and password (basic auth, or for the token endpoint).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How to reach a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The base URL (`http://127.0.0.1:5000`, `https://registry.example.com`).
    pub url: String,
    /// Credentials, if the registry wants them.
    pub credentials: Option<Credentials>,
    /// Timeout of each request (connect and whole answer).
    pub timeout: Duration,
    /// The `n` of tag-list pages (`None`: the registry's default).
    pub page_size: Option<u32>,
    /// At most this many tag-list pages.
    pub max_pages: usize,
    /// At most this many bytes per body (manifests, configs, tag pages).
    pub max_body_bytes: usize,
}

impl RegistryConfig {
    /// Defaults: no credentials, 30 s per request, the registry's page size, 1000
    /// pages, 4 MiB per body.
    pub fn new(url: impl Into<String>) -> Self {
        RegistryConfig {
            url: url.into(),
            credentials: None,
            timeout: Duration::from_secs(30),
            page_size: None,
            max_pages: 1000,
            max_body_bytes: 4 << 20,
        }
    }
}

/// An OS / architecture (/ variant) pair: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub struct Platform {
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub architecture: String,
    /// `variant`.
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`; `None` if malformed.
    pub fn parse(text: &str) -> Option<Platform> {
        let mut it = text.split('/');
        let (os, arch) = (it.next()?, it.next()?);
        let variant = it.next().map(str::to_string);
        if os.is_empty() || arch.is_empty() || it.next().is_some() || variant.as_deref() == Some("")
        {
            return None;
        }
        Some(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant,
        })
    }

    /// Whether `self` (a wanted platform) covers `other`: a wanted platform without a
    /// variant covers every variant.
    pub fn covers(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor inside a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content.
    #[serde(default)]
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    #[serde(default)]
    pub size: u64,
    /// For index entries: the platform.
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// What a manifest describes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestKind {
    /// One image: a config blob and layers.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layers.
        layers: Vec<Descriptor>,
    },
    /// A multi-platform index / manifest list.
    Index {
        /// One entry per platform (and possibly attestations, platform `unknown`).
        manifests: Vec<Descriptor>,
    },
}

/// A manifest as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its media type (`Content-Type`, else the body's `mediaType`).
    pub media_type: String,
    /// Its digest (`sha256:...`), verified against the bytes.
    pub digest: String,
    /// What it describes.
    pub kind: ManifestKind,
    /// The bytes as served.
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// For an index: the digest of each platform's image manifest, in index order
    /// (entries without a platform, or with os `unknown`, are skipped). Empty for an
    /// image manifest.
    pub fn platform_digests(&self) -> Vec<(Platform, String)> {
        match &self.kind {
            ManifestKind::Index { manifests } => manifests
                .iter()
                .filter_map(|d| {
                    let p = d.platform.as_ref()?;
                    (p.os != "unknown").then(|| (p.clone(), d.digest.clone()))
                })
                .collect(),
            ManifestKind::Image { .. } => Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    created: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// The SHA-256 digest of `bytes` as `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in hash {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

fn is_component(c: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        let sep_start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok || sep.is_empty() {
            return false;
        }
    }
    true
}

/// Whether `name` is a valid repository name (`shop/web`, `library/nginx`).
pub fn valid_repository(name: &str) -> bool {
    name.len() <= 255 && name.split('/').all(is_component)
}

fn is_digest(r: &str) -> bool {
    let Some((alg, hex)) = r.split_once(':') else {
        return false;
    };
    !alg.is_empty()
        && alg
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+._-".contains(&c))
        && !hex.is_empty()
        && hex
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"=_-".contains(&c))
}

fn is_tag(r: &str) -> bool {
    let b = r.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: HashMap<String, String>,
}

fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = match h.find(' ') {
        Some(i) => (&h[..i], h[i + 1..].trim()),
        None => (h, ""),
    };
    let mut params = HashMap::new();
    let mut chars = rest.char_indices().peekable();
    let b = rest;
    loop {
        while let Some((_, c)) = chars.peek() {
            if *c == ',' || c.is_whitespace() {
                chars.next();
            } else {
                break;
            }
        }
        let Some((start, _)) = chars.peek().copied() else {
            break;
        };
        let mut eq = None;
        for (i, c) in chars.by_ref() {
            if c == '=' {
                eq = Some(i);
                break;
            }
        }
        let eq = eq?;
        let key = b[start..eq].trim().to_ascii_lowercase();
        let mut value = String::new();
        if chars.peek().map(|(_, c)| *c) == Some('"') {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some((_, c)) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.insert(key, value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(LINK) {
        let v = v.to_str().ok()?;
        for part in v.split(',') {
            let part = part.trim();
            let (Some(open), Some(close)) = (part.find('<'), part.find('>')) else {
                continue;
            };
            if close < open {
                continue;
            }
            let params = &part[close + 1..];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                return Some(part[open + 1..close].to_string());
            }
        }
    }
    None
}

#[derive(Debug, Default)]
struct AuthState {
    /// Basic credentials were asked for once: send them up front.
    basic: bool,
    /// Bearer tokens by repository.
    tokens: HashMap<String, String>,
}

/// What a request is about, for errors and auth scopes.
struct Target<'a> {
    repository: &'a str,
    reference: Option<&'a str>,
}

/// An OCI distribution API client. Cheap to share by reference; the token cache is
/// behind a mutex never held across an await.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    config: RegistryConfig,
    auth: Mutex<AuthState>,
}

impl RegistryClient {
    /// Builds a client; refuses a URL that is not `http://` or `https://` with a host.
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let bad = |field, reason: String| RegistryError::Config { field, reason };
        let mut base = Url::parse(&config.url)
            .map_err(|e| bad("url", format!("{:?} is not a URL: {e}", config.url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad(
                "url",
                format!("{:?} is not an http:// or https:// URL", config.url),
            ));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        if config.timeout.is_zero() {
            return Err(bad("timeout", "must be positive".into()));
        }
        if config.page_size == Some(0) {
            return Err(bad("page_size", "must be positive".into()));
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another installer is fine: a provider is installed.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let loopback = matches!(
            base.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        );
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("gitops-core/", env!("CARGO_PKG_VERSION")));
        if loopback {
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| bad("url", format!("cannot build an HTTP client: {e}")))?;
        Ok(RegistryClient {
            http,
            base,
            config,
            auth: Mutex::new(AuthState::default()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|e| RegistryError::Config {
            field: "url",
            reason: format!("cannot join {path:?}: {e}"),
        })
    }

    fn transport(&self, url: &Url, e: &reqwest::Error) -> RegistryError {
        if e.is_timeout() {
            RegistryError::Timeout {
                url: url.to_string(),
                timeout_ms: u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX),
            }
        } else {
            let mut reason = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                reason.push_str(": ");
                reason.push_str(&s.to_string());
                src = s.source();
            }
            RegistryError::Transport {
                url: url.to_string(),
                reason,
            }
        }
    }

    async fn read_body(
        &self,
        url: &Url,
        mut resp: reqwest::Response,
    ) -> Result<Vec<u8>, RegistryError> {
        let limit = self.config.max_body_bytes;
        let too_large = || RegistryError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(too_large());
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(url, &e))? {
            if out.len() + chunk.len() > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    fn scope_key(repository: &str) -> String {
        format!("repository:{repository}:pull")
    }

    async fn fetch_token(
        &self,
        challenge: &Challenge,
        repository: &str,
    ) -> Result<String, RegistryError> {
        let realm = challenge.params.get("realm").cloned().unwrap_or_default();
        let fail = |status: Option<u16>, reason: String| RegistryError::TokenEndpoint {
            realm: realm.clone(),
            status,
            reason,
        };
        let mut url =
            Url::parse(&realm).map_err(|e| fail(None, format!("realm is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail(None, "realm is not an http(s) URL".into()));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = challenge.params.get("service") {
                q.append_pair("service", service);
            }
            let scope = challenge
                .params
                .get("scope")
                .cloned()
                .unwrap_or_else(|| Self::scope_key(repository));
            q.append_pair("scope", &scope);
        }
        let mut req = self.http.get(url.clone());
        if let Some(c) = &self.config.credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| match self.transport(&url, &e) {
                RegistryError::Timeout { timeout_ms, .. } => {
                    fail(None, format!("no answer within {timeout_ms} ms"))
                }
                other => fail(None, other.to_string()),
            })?;
        let status = resp.status();
        let body = self
            .read_body(&url, resp)
            .await
            .map_err(|e| fail(Some(status.as_u16()), e.to_string()))?;
        if !status.is_success() {
            return Err(fail(
                Some(status.as_u16()),
                format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(256)])
                ),
            ));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| fail(Some(status.as_u16()), format!("not a token answer: {e}")))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail(Some(status.as_u16()), "no token in the answer".into()))
    }

    /// Sends one request, answering one authentication challenge; returns the final
    /// response (any status but 401).
    async fn send(
        &self,
        method: Method,
        url: &Url,
        accept: Option<&str>,
        target: &Target<'_>,
    ) -> Result<reqwest::Response, RegistryError> {
        let scope = Self::scope_key(target.repository);
        let mut challenged = false;
        loop {
            let (token, basic) = {
                let st = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                (st.tokens.get(&scope).cloned(), st.basic)
            };
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            let creds = self.config.credentials.as_ref();
            let sent = match (&token, creds) {
                (Some(t), _) => {
                    req = req.bearer_auth(t);
                    true
                }
                (None, Some(c)) if basic => {
                    req = req.basic_auth(&c.username, Some(&c.password));
                    true
                }
                _ => false,
            };
            let resp = req.send().await.map_err(|e| self.transport(url, &e))?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let header = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let unauthorized = || RegistryError::Unauthorized {
                repository: target.repository.to_string(),
                reference: target.reference.map(str::to_string),
                url: url.to_string(),
                challenge: header.clone(),
                credentials_sent: sent,
            };
            if challenged {
                return Err(unauthorized());
            }
            challenged = true;
            let Some(ch) = header.as_deref().and_then(parse_challenge) else {
                return Err(unauthorized());
            };
            match ch.scheme.as_str() {
                "bearer" => {
                    let token = self.fetch_token(&ch, target.repository).await?;
                    let mut st = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                    st.tokens.insert(scope.clone(), token);
                }
                "basic" if creds.is_some() && !basic => {
                    let mut st = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                    st.basic = true;
                }
                _ => return Err(unauthorized()),
            }
        }
    }

    fn status_error(
        url: &Url,
        status: StatusCode,
        target: &Target<'_>,
        body: &[u8],
    ) -> RegistryError {
        RegistryError::Status {
            status: status.as_u16(),
            repository: target.repository.to_string(),
            reference: target.reference.map(str::to_string),
            url: url.to_string(),
            body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        }
    }

    fn check_repository(repository: &str) -> Result<(), RegistryError> {
        if valid_repository(repository) {
            Ok(())
        } else {
            Err(RegistryError::BadRepository {
                repository: repository.to_string(),
            })
        }
    }

    fn check_reference(reference: &str) -> Result<(), RegistryError> {
        if is_tag(reference) || is_digest(reference) {
            Ok(())
        } else {
            Err(RegistryError::BadReference {
                reference: reference.to_string(),
            })
        }
    }

    /// Whether the registry answers `GET /v2/` (200, or 401 asking for credentials).
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let url = self.url("v2/")?;
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.transport(&url, &e))?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::UNAUTHORIZED => Ok(()),
            s => Err(RegistryError::Status {
                status: s.as_u16(),
                repository: String::new(),
                reference: None,
                url: url.to_string(),
                body: String::new(),
            }),
        }
    }

    /// All tags of `repository`, following `Link` pages (in the registry's order).
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        Self::check_repository(repository)?;
        let target = Target {
            repository,
            reference: None,
        };
        let mut url = self.url(&format!("v2/{repository}/tags/list"))?;
        if let Some(n) = self.config.page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..self.config.max_pages {
            if !seen.insert(url.to_string()) {
                return Err(RegistryError::BadResponse {
                    url: url.to_string(),
                    reason: "the Link header points back to a page already read".into(),
                });
            }
            let resp = self.send(Method::GET, &url, None, &target).await?;
            let status = resp.status();
            let next = next_link(resp.headers());
            let body = self.read_body(&url, resp).await?;
            if !status.is_success() {
                return Err(Self::status_error(&url, status, &target, &body));
            }
            let page: TagPage =
                serde_json::from_slice(&body).map_err(|e| RegistryError::BadResponse {
                    url: url.to_string(),
                    reason: format!("not a tag list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(next) = next else {
                return Ok(tags);
            };
            let next_url = url.join(&next).map_err(|e| RegistryError::BadResponse {
                url: url.to_string(),
                reason: format!("bad Link target {next:?}: {e}"),
            })?;
            if next_url.origin() != self.base.origin() {
                return Err(RegistryError::BadResponse {
                    url: url.to_string(),
                    reason: format!("Link target {next:?} is on another host"),
                });
            }
            url = next_url;
        }
        Err(RegistryError::TooManyPages {
            repository: repository.to_string(),
            pages: self.config.max_pages,
        })
    }

    fn checked_digest(
        target: &Target<'_>,
        reference: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<String, RegistryError> {
        let actual = sha256_digest(body);
        let mismatch = |expected: &str| RegistryError::DigestMismatch {
            repository: target.repository.to_string(),
            reference: reference.to_string(),
            expected: expected.to_string(),
            actual: actual.clone(),
        };
        if let Some(claimed) = headers
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            && claimed.starts_with("sha256:")
            && claimed != actual
        {
            return Err(mismatch(claimed));
        }
        if reference.starts_with("sha256:") && reference != actual {
            return Err(mismatch(reference));
        }
        Ok(actual)
    }

    /// The manifest `reference` (tag or digest) of `repository`, any of the four media
    /// types, with its verified digest.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        Self::check_repository(repository)?;
        Self::check_reference(reference)?;
        let target = Target {
            repository,
            reference: Some(reference),
        };
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"))?;
        let resp = self
            .send(Method::GET, &url, Some(ACCEPT_MANIFESTS), &target)
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = self.read_body(&url, resp).await?;
        if !status.is_success() {
            return Err(Self::status_error(&url, status, &target, &body));
        }
        let digest = Self::checked_digest(&target, reference, &headers, &body)?;
        let raw: RawManifest =
            serde_json::from_slice(&body).map_err(|e| RegistryError::BadResponse {
                url: url.to_string(),
                reason: format!("not a manifest: {e}"),
            })?;
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .filter(|v| v.starts_with("application/vnd."));
        let media_type = content_type.or(raw.media_type.clone()).unwrap_or_default();
        let kind = match (raw.manifests, raw.config) {
            (Some(manifests), _) if media_type != DOCKER_MANIFEST && media_type != OCI_MANIFEST => {
                ManifestKind::Index { manifests }
            }
            (_, Some(config)) if media_type != DOCKER_MANIFEST_LIST && media_type != OCI_INDEX => {
                ManifestKind::Image {
                    config,
                    layers: raw.layers.unwrap_or_default(),
                }
            }
            _ => {
                return Err(RegistryError::BadResponse {
                    url: url.to_string(),
                    reason: format!(
                        "media type {media_type:?} is neither an image manifest with a config nor an index"
                    ),
                });
            }
        };
        Ok(Manifest {
            media_type,
            digest,
            kind,
            bytes: body,
        })
    }

    /// The digest `reference` resolves to, from a `HEAD` (`Docker-Content-Digest`);
    /// falls back to a `GET` and hashing when the registry sends no digest header.
    pub async fn digest(&self, repository: &str, reference: &str) -> Result<String, RegistryError> {
        Self::check_repository(repository)?;
        Self::check_reference(reference)?;
        let target = Target {
            repository,
            reference: Some(reference),
        };
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"))?;
        let resp = self
            .send(Method::HEAD, &url, Some(ACCEPT_MANIFESTS), &target)
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Self::status_error(&url, status, &target, &[]));
        }
        match resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
        {
            Some(d) if is_digest(d) => Ok(d.to_string()),
            _ => Ok(self.manifest(repository, reference).await?.digest),
        }
    }

    /// The `created` time of the image config blob `config_digest` (`None` when the
    /// config has none). The blob's content is checked against its digest.
    pub async fn build_time(
        &self,
        repository: &str,
        config_digest: &str,
    ) -> Result<Option<BuildTime>, RegistryError> {
        Self::check_repository(repository)?;
        if !is_digest(config_digest) {
            return Err(RegistryError::BadReference {
                reference: config_digest.to_string(),
            });
        }
        let target = Target {
            repository,
            reference: Some(config_digest),
        };
        let url = self.url(&format!("v2/{repository}/blobs/{config_digest}"))?;
        let resp = self.send(Method::GET, &url, None, &target).await?;
        let status = resp.status();
        let body = self.read_body(&url, resp).await?;
        if !status.is_success() {
            return Err(Self::status_error(&url, status, &target, &body));
        }
        // Redirects to storage carry no digest header: check the bytes themselves.
        Self::checked_digest(&target, config_digest, &HeaderMap::new(), &body)?;
        let config: ImageConfig =
            serde_json::from_slice(&body).map_err(|e| RegistryError::BadResponse {
                url: url.to_string(),
                reason: format!("not an image config: {e}"),
            })?;
        config
            .created
            .map(|c| {
                BuildTime::parse_rfc3339(&c).map_err(|e| RegistryError::BadResponse {
                    url: url.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// A tag with its digest and build time. For an index the build time is the newest
    /// among the platforms `platforms` selects (all when empty; [`Platform::covers`]);
    /// `None` when no platform matches.
    pub async fn tag_metadata(
        &self,
        repository: &str,
        tag: &str,
        platforms: &[Platform],
    ) -> Result<Tag, RegistryError> {
        let manifest = self.manifest(repository, tag).await?;
        let created = match &manifest.kind {
            ManifestKind::Image { config, .. } => {
                self.build_time(repository, &config.digest).await?
            }
            ManifestKind::Index { .. } => {
                let mut newest: Option<BuildTime> = None;
                for (platform, digest) in manifest.platform_digests() {
                    if !platforms.is_empty() && !platforms.iter().any(|p| p.covers(&platform)) {
                        continue;
                    }
                    let child = self.manifest(repository, &digest).await?;
                    let ManifestKind::Image { config, .. } = &child.kind else {
                        continue;
                    };
                    let created = self.build_time(repository, &config.digest).await?;
                    newest = newest.max(created);
                }
                newest
            }
        };
        Ok(Tag {
            name: tag.to_string(),
            created,
            digest: Some(manifest.digest),
        })
    }

    /// The tags `policy` chooses among, with the metadata its strategy needs: names
    /// only for `semver` and `alphabetical`; digest and build time of every permitted
    /// tag for `newest-build` (one or more requests per tag); the digest of the one
    /// tracked tag for `digest`. Filters are applied before any metadata is read.
    pub async fn tags_for(
        &self,
        repository: &str,
        policy: &Policy,
        platforms: &[Platform],
    ) -> Result<Vec<Tag>, RegistryError> {
        let names = self.tags(repository).await?;
        let permitted = names.into_iter().filter(|t| policy.permits(t));
        match &policy.strategy {
            Strategy::NewestBuild => {
                let mut out = Vec::new();
                for name in permitted {
                    out.push(self.tag_metadata(repository, &name, platforms).await?);
                }
                Ok(out)
            }
            Strategy::Digest { tag } => {
                let mut out = Vec::new();
                for name in permitted.filter(|n| n == tag) {
                    let digest = self.digest(repository, &name).await?;
                    out.push(Tag {
                        name,
                        created: None,
                        digest: Some(digest),
                    });
                }
                Ok(out)
            }
            _ => Ok(permitted.map(Tag::named).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.invalid/token",service="registry.example.invalid",scope="repository:shop/web:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example.invalid/token");
        assert_eq!(c.params["scope"], "repository:shop/web:pull,push");
        let c = parse_challenge(r#"Basic realm="basic-realm""#).unwrap();
        assert_eq!(
            (c.scheme.as_str(), c.params["realm"].as_str()),
            ("basic", "basic-realm")
        );
        assert_eq!(parse_challenge(r#"Bearer realm="open"#), None);
        assert_eq!(
            parse_challenge("Bearer realm").map(|c| c.params.len()),
            None
        );
    }

    #[test]
    fn links_names_and_digests() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            "</v2/shop/web/tags/list?last=b&n=2>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/shop/web/tags/list?last=b&n=2")
        );
        h.insert(LINK, "<https://x.invalid/a>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link(&h), None);
        for ok in ["shop/web", "library/nginx", "a", "a_b/c__d", "a--b.c/0"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "Shop/web", "", "a//b", "-a", "a-", "a/../b", "a..b", "a___b",
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
        assert!(is_tag("v1.2.3-rc.1") && is_tag("_x") && !is_tag(".x") && !is_tag("a:b"));
        assert!(is_digest(&sha256_digest(b"")) && !is_digest("sha256") && !is_digest(":ab"));
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux/arm64").unwrap().covers(&p));
        assert!(!p.covers(&Platform::parse("linux/arm64/v7").unwrap()));
        assert_eq!(Platform::parse("linux"), None);
        assert_eq!(Platform::parse("linux/amd64/"), None);
    }

    #[test]
    fn config_is_checked() {
        for (url, field) in [("ftp://x", "url"), ("not a url", "url"), ("http://", "url")] {
            assert!(
                matches!(RegistryClient::new(RegistryConfig::new(url)), Err(RegistryError::Config { field: f, .. }) if f == field),
                "{url}"
            );
        }
        let mut c = RegistryConfig::new("http://127.0.0.1:1");
        c.timeout = Duration::ZERO;
        assert!(RegistryClient::new(c).is_err());
        let c = Credentials {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
