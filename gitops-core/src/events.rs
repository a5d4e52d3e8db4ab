//! GitHub webhooks as a library: signature check, event parsing, the flow inputs the
//! events stand for, and Argo-Events-style data filters and trigger parameters.
//!
//! Order of use: [`verify_signature`] on the raw body (constant time, before anything is
//! parsed), [`parse_event`] with the `X-GitHub-Event` header, then [`flow_input`] to turn
//! the event into a flow [`Input`] for a pull request. Every failure is a typed error and
//! nothing is acted on.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::flow::{Command, Input};
use crate::tag::{CommitId, Env};

/// Why a webhook delivery is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    /// The header is not `sha256=<64 hex digits>`.
    #[error("malformed X-Hub-Signature-256 header")]
    MalformedSignature,
    /// The HMAC does not match.
    #[error("signature does not match the body")]
    BadSignature,
    /// No `X-GitHub-Event` header.
    #[error("missing X-GitHub-Event header")]
    MissingEventType,
    /// An event type this library does not handle.
    #[error("unsupported event type {event:?}")]
    UnsupportedEvent {
        /// The `X-GitHub-Event` value.
        event: String,
    },
    /// The body is not valid JSON or a field is missing or mistyped.
    #[error("{event} payload: field `{path}`: {message}")]
    Payload {
        /// The event type.
        event: String,
        /// The JSON path of the offending field (`.` for the document).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A slash command that is not understood.
    #[error("unknown command {text:?}")]
    UnknownCommand {
        /// The command line.
        text: String,
    },
}

/// Checks `X-Hub-Signature-256` (`sha256=<hex>`) over the raw body, in constant time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), EventError> {
    let header = header.ok_or(EventError::MissingSignature)?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(EventError::MalformedSignature)?;
    if hex.len() != 64 {
        return Err(EventError::MalformedSignature);
    }
    let mut expected = [0u8; 32];
    for (i, byte) in expected.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| EventError::MalformedSignature)?;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| EventError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| EventError::BadSignature)
}

/// Computes the `X-Hub-Signature-256` header value for a body (for senders and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// The login.
    pub login: String,
}

/// A label.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label {
    /// Its name.
    pub name: String,
}

/// A branch end of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Branch {
    /// The branch name.
    #[serde(rename = "ref")]
    pub name: String,
    /// The commit.
    pub sha: CommitId,
}

/// The pull request of a `pull_request` or `pull_request_review` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    /// The number.
    pub number: u64,
    /// The head branch.
    pub head: Branch,
    /// The base branch.
    pub base: Branch,
    /// Whether it was merged.
    #[serde(default)]
    pub merged: bool,
    /// Its labels.
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// A `pull_request` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestEvent {
    /// `opened`, `synchronize`, `labeled`, `closed`, ...
    pub action: String,
    /// The pull request.
    pub pull_request: PullRequest,
    /// The label added or removed (`labeled` / `unlabeled`).
    #[serde(default)]
    pub label: Option<Label>,
    /// Who triggered the event.
    pub sender: User,
}

/// A review.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Review {
    /// `approved`, `changes_requested`, `commented`, `dismissed`.
    pub state: String,
    /// The reviewer.
    pub user: User,
    /// The commit reviewed.
    pub commit_id: CommitId,
}

/// A `pull_request_review` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReviewEvent {
    /// `submitted`, `dismissed`, `edited`.
    pub action: String,
    /// The review.
    pub review: Review,
    /// The pull request.
    pub pull_request: PullRequest,
}

/// The issue of an `issue_comment` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Issue {
    /// The number (the pull request number when it is a pull request).
    pub number: u64,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<Value>,
}

/// A comment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Comment {
    /// The text.
    pub body: String,
    /// The author.
    pub user: User,
}

/// An `issue_comment` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssueCommentEvent {
    /// `created`, `edited`, `deleted`.
    pub action: String,
    /// The issue or pull request.
    pub issue: Issue,
    /// The comment.
    pub comment: Comment,
}

/// A `push` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PushEvent {
    /// The full ref (`refs/heads/main`, `refs/tags/prod_release`).
    #[serde(rename = "ref")]
    pub refname: String,
    /// The old target (all zeros when created).
    pub before: String,
    /// The new target (all zeros when deleted).
    pub after: String,
    /// Whether the ref was created.
    #[serde(default)]
    pub created: bool,
    /// Whether the ref was deleted.
    #[serde(default)]
    pub deleted: bool,
    /// Whether it was a forced update.
    #[serde(default)]
    pub forced: bool,
}

impl PushEvent {
    /// The short ref name as Argo CD computes it: `refs/<kind>/<rest>` -> `<rest>`.
    pub fn short_ref(&self) -> &str {
        let mut parts = self.refname.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("refs"), Some(_), Some(rest)) => rest,
            _ => &self.refname,
        }
    }
}

/// A `create` event (a branch or tag was created).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreateEvent {
    /// The short ref name.
    #[serde(rename = "ref")]
    pub refname: String,
    /// `branch` or `tag`.
    pub ref_type: String,
}

/// A parsed webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `pull_request`.
    PullRequest(Box<PullRequestEvent>),
    /// `pull_request_review`.
    Review(Box<ReviewEvent>),
    /// `issue_comment`.
    IssueComment(Box<IssueCommentEvent>),
    /// `push`.
    Push(PushEvent),
    /// `create`.
    Create(CreateEvent),
    /// `ping` (sent when a hook is installed).
    Ping,
}

fn typed<T: for<'de> Deserialize<'de>>(event: &str, body: &[u8]) -> Result<T, EventError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| EventError::Payload {
        event: event.to_string(),
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Parses a payload given the `X-GitHub-Event` header value.
pub fn parse_event(event: &str, body: &[u8]) -> Result<Event, EventError> {
    Ok(match event {
        "pull_request" => Event::PullRequest(Box::new(typed(event, body)?)),
        "pull_request_review" => Event::Review(Box::new(typed(event, body)?)),
        "issue_comment" => Event::IssueComment(Box::new(typed(event, body)?)),
        "push" => Event::Push(typed(event, body)?),
        "create" => Event::Create(typed(event, body)?),
        "ping" => {
            typed::<Value>(event, body)?;
            Event::Ping
        }
        other => {
            return Err(EventError::UnsupportedEvent {
                event: other.to_string(),
            });
        }
    })
}

/// Verifies and parses one delivery: `headers` as `(name, value)` pairs (names
/// case-insensitive).
pub fn receive(secret: &[u8], headers: &[(&str, &str)], body: &[u8]) -> Result<Event, EventError> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    verify_signature(secret, body, header("X-Hub-Signature-256"))?;
    let event = header("X-GitHub-Event").ok_or(EventError::MissingEventType)?;
    parse_event(event, body)
}

/// Parses a slash command (the first line of a comment, or a label name with the slash
/// optional): `/<env>_release`, `/rollback <env>`, `/test pass|fail [note]`. `Ok(None)`
/// when the text is not a command at all.
pub fn parse_command(text: &str) -> Result<Option<Command>, EventError> {
    let line = text.lines().next().unwrap_or("").trim();
    let Some(cmd) = line.strip_prefix('/') else {
        return Ok(None);
    };
    let unknown = || EventError::UnknownCommand {
        text: line.to_string(),
    };
    let mut words = cmd.split_whitespace();
    let head = words.next().ok_or_else(unknown)?;
    match head {
        "rollback" => {
            let env = words.next().ok_or_else(unknown)?;
            if words.next().is_some() {
                return Err(unknown());
            }
            Ok(Some(Command::Rollback {
                env: Env::new(env).map_err(|_| unknown())?,
            }))
        }
        "test" => {
            let passed = match words.next() {
                Some("pass") => true,
                Some("fail") => false,
                _ => return Err(unknown()),
            };
            Ok(Some(Command::ManualTest {
                passed,
                note: words.collect::<Vec<_>>().join(" "),
            }))
        }
        _ => {
            let env = head.strip_suffix("_release").ok_or_else(unknown)?;
            if words.next().is_some() {
                return Err(unknown());
            }
            Ok(Some(Command::Release {
                env: Env::new(env).map_err(|_| unknown())?,
            }))
        }
    }
}

/// A flow input for a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrInput {
    /// The pull request.
    pub pr: u64,
    /// What happened.
    pub input: Input,
}

/// Maps base branches to environments (a merged pull request deploys its base's
/// environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchMap(pub BTreeMap<String, Env>);

impl Default for BranchMap {
    /// development -> dev, sandbox -> sandbox, release -> integration, main -> live.
    fn default() -> Self {
        let pairs = [
            ("development", "dev"),
            ("sandbox", "sandbox"),
            ("release", "integration"),
            ("main", "live"),
        ];
        BranchMap(
            pairs
                .iter()
                .filter_map(|(b, e)| Env::new(*e).ok().map(|e| (b.to_string(), e)))
                .collect(),
        )
    }
}

impl BranchMap {
    /// The environment of a branch.
    pub fn env(&self, branch: &str) -> Option<&Env> {
        self.0.get(branch)
    }
}

/// What an event means for the flow. `Ok(None)`: nothing to do (other actions, comments
/// that are not commands, issues that are not pull requests, pushes). Label-based
/// conversion: a `labeled` pull request whose label is a command name (`canary_release`,
/// `/rollback prod`) is that command from the sender.
pub fn flow_input(event: &Event) -> Result<Option<PrInput>, EventError> {
    Ok(match event {
        Event::IssueComment(e) => {
            if e.action != "created" || e.issue.pull_request.is_none() {
                return Ok(None);
            }
            parse_command(&e.comment.body)?.map(|command| PrInput {
                pr: e.issue.number,
                input: Input::Command {
                    actor: e.comment.user.login.clone(),
                    command,
                },
            })
        }
        Event::PullRequest(e) => {
            let pr = e.pull_request.number;
            match e.action.as_str() {
                "opened" | "synchronize" | "reopened" => Some(PrInput {
                    pr,
                    input: Input::Pushed {
                        head: e.pull_request.head.sha.clone(),
                    },
                }),
                "labeled" => {
                    let Some(label) = &e.label else {
                        return Ok(None);
                    };
                    let text = if label.name.starts_with('/') {
                        label.name.clone()
                    } else {
                        format!("/{}", label.name)
                    };
                    match parse_command(&text) {
                        Ok(Some(command)) => Some(PrInput {
                            pr,
                            input: Input::Command {
                                actor: e.sender.login.clone(),
                                command,
                            },
                        }),
                        // Ordinary labels are not commands.
                        _ => None,
                    }
                }
                _ => None,
            }
        }
        Event::Review(e) => {
            let pr = e.pull_request.number;
            match (e.action.as_str(), e.review.state.as_str()) {
                ("submitted", "approved") => Some(PrInput {
                    pr,
                    input: Input::Approved {
                        reviewer: e.review.user.login.clone(),
                        commit: e.review.commit_id.clone(),
                    },
                }),
                ("dismissed", _) => Some(PrInput {
                    pr,
                    input: Input::Dismissed {
                        reviewer: e.review.user.login.clone(),
                    },
                }),
                _ => None,
            }
        }
        _ => None,
    })
}

/// The environment a merged pull request deploys (`closed` + `merged` into a mapped
/// base branch).
pub fn merged_env<'a>(event: &Event, map: &'a BranchMap) -> Option<(&'a Env, CommitId)> {
    match event {
        Event::PullRequest(e) if e.action == "closed" && e.pull_request.merged => map
            .env(&e.pull_request.base.name)
            .map(|env| (env, e.pull_request.head.sha.clone())),
        _ => None,
    }
}

/// Looks up a dotted path (`body.comment.body`, `a.0.b`; `\.` escapes a dot in a key) in
/// a JSON document.
pub fn lookup<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = doc;
    for key in split_path(path) {
        cur = match cur {
            Value::Object(m) => m.get(&key)?,
            Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn split_path(path: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(p)) = (chars.next(), parts.last_mut()) {
                    p.push(n);
                }
            }
            '.' => parts.push(String::new()),
            c => {
                if let Some(p) = parts.last_mut() {
                    p.push(c)
                }
            }
        }
    }
    parts
}

/// The type a data filter compares as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FilterType {
    /// Regular expressions over the value's text.
    String,
    /// Numbers with a comparator.
    Number,
    /// Booleans.
    Bool,
}

/// How string values match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StringMatch {
    /// The whole text must match (default here).
    #[default]
    Anchored,
    /// Anywhere in the text (Argo Events' behaviour: `main` matches `main-hotfix`).
    Unanchored,
}

/// One data filter: `path`, `type`, `value` (any of them), `comparator`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DataFilter {
    /// The dotted path into the event.
    pub path: String,
    /// How to compare.
    #[serde(rename = "type")]
    pub kind: FilterType,
    /// Accepted values (OR-ed).
    pub value: Vec<String>,
    /// `=` (default), `!=`, `>`, `>=`, `<`, `<=`.
    #[serde(default)]
    pub comparator: String,
    /// Anchored (default) or unanchored string matching.
    #[serde(default)]
    pub string_match: StringMatch,
}

/// Why a filter could not be evaluated (counts as "not matched" in Argo Events; typed
/// here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The path is absent.
    #[error("path `{path}` not found in the event")]
    PathNotFound {
        /// The path.
        path: String,
    },
    /// No values to compare with.
    #[error("filter on `{path}` has no values")]
    NoValues {
        /// The path.
        path: String,
    },
    /// A value does not parse as the filter's type.
    #[error("filter on `{path}`: {value:?} is not a valid {kind}")]
    BadValue {
        /// The path.
        path: String,
        /// The value.
        value: String,
        /// The expected kind.
        kind: &'static str,
    },
    /// An unknown comparator.
    #[error("filter on `{path}`: unknown comparator {comparator:?}")]
    BadComparator {
        /// The path.
        path: String,
        /// The comparator.
        comparator: String,
    },
}

impl DataFilter {
    /// Whether the event matches.
    pub fn matches(&self, event: &Value) -> Result<bool, FilterError> {
        let path = || self.path.clone();
        let found =
            lookup(event, &self.path).ok_or_else(|| FilterError::PathNotFound { path: path() })?;
        if self.value.is_empty() {
            return Err(FilterError::NoValues { path: path() });
        }
        let bad = |value: &str, kind| FilterError::BadValue {
            path: path(),
            value: value.to_string(),
            kind,
        };
        match self.kind {
            FilterType::Bool => {
                let actual = match found {
                    Value::Bool(b) => *b,
                    Value::String(s) => s == "true",
                    _ => false,
                };
                for v in &self.value {
                    let want: bool = v.parse().map_err(|_| bad(v, "bool"))?;
                    if want == actual {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            FilterType::Number => {
                let actual = match found {
                    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    Value::String(s) => s.parse().unwrap_or(f64::NAN),
                    _ => f64::NAN,
                };
                for v in &self.value {
                    let want: f64 = v.parse().map_err(|_| bad(v, "number"))?;
                    let hit = match self.comparator.as_str() {
                        "" | "=" => actual == want,
                        "!=" => actual != want,
                        ">" => actual > want,
                        ">=" => actual >= want,
                        "<" => actual < want,
                        "<=" => actual <= want,
                        other => {
                            return Err(FilterError::BadComparator {
                                path: path(),
                                comparator: other.to_string(),
                            });
                        }
                    };
                    if hit {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            FilterType::String => {
                let text = match found {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let negate = match self.comparator.as_str() {
                    "" | "=" => false,
                    "!=" => true,
                    other => {
                        return Err(FilterError::BadComparator {
                            path: path(),
                            comparator: other.to_string(),
                        });
                    }
                };
                for v in &self.value {
                    let pattern = match self.string_match {
                        StringMatch::Anchored => format!("^(?:{v})$"),
                        StringMatch::Unanchored => v.clone(),
                    };
                    let re =
                        regex::Regex::new(&pattern).map_err(|_| bad(v, "regular expression"))?;
                    if re.is_match(&text) != negate {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

/// Whether every filter matches (Argo's default `and`); the first error is returned.
pub fn all_match(filters: &[DataFilter], event: &Value) -> Result<bool, FilterError> {
    for f in filters {
        if !f.matches(event)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// How a parameter is written to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Operation {
    /// Replace (default).
    #[default]
    Overwrite,
    /// Existing text followed by the new text.
    Append,
    /// New text followed by the existing text.
    Prepend,
}

/// A trigger parameter: where the value comes from and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Parameter {
    /// A dotted path into the event.
    #[serde(default, rename = "dataKey")]
    pub data_key: Option<String>,
    /// A template where `{{ path }}` is replaced by the text at `path` in the event
    /// (tried before `dataKey`; a missing path falls back to it).
    #[serde(default, rename = "dataTemplate")]
    pub data_template: Option<String>,
    /// The default when neither resolves.
    #[serde(default)]
    pub value: Option<String>,
    /// The dotted destination path in the trigger document.
    pub dest: String,
    /// Overwrite, append or prepend.
    #[serde(default)]
    pub operation: Operation,
}

/// Why a parameter could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParameterError {
    /// Neither template, key nor default produced a value.
    #[error("parameter for `{dest}` resolved to nothing")]
    Unresolved {
        /// The destination.
        dest: String,
    },
    /// The destination cannot be written (goes through a non-object).
    #[error("destination `{dest}` cannot be written")]
    BadDest {
        /// The destination.
        dest: String,
    },
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render(template: &str, event: &Value) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        out.push_str(&text_of(lookup(event, after[..end].trim())?));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

impl Parameter {
    /// Resolves the value from an event (template, then key, then default).
    pub fn resolve(&self, event: &Value) -> Option<Value> {
        if let Some(v) = self.data_template.as_deref().and_then(|t| render(t, event)) {
            return Some(Value::String(v));
        }
        if let Some(v) = self.data_key.as_deref().and_then(|k| lookup(event, k)) {
            return Some(v.clone());
        }
        self.value.clone().map(Value::String)
    }

    /// Applies the parameter to `doc`.
    pub fn apply(&self, event: &Value, doc: &mut Value) -> Result<(), ParameterError> {
        let value = self
            .resolve(event)
            .ok_or_else(|| ParameterError::Unresolved {
                dest: self.dest.clone(),
            })?;
        let bad = || ParameterError::BadDest {
            dest: self.dest.clone(),
        };
        let keys = split_path(&self.dest);
        let (last, parents) = keys.split_last().ok_or_else(bad)?;
        let mut cur = doc;
        for k in parents {
            cur = match cur {
                Value::Object(m) => m
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Default::default())),
                Value::Array(a) => a
                    .get_mut(k.parse::<usize>().map_err(|_| bad())?)
                    .ok_or_else(bad)?,
                _ => return Err(bad()),
            };
        }
        let slot: &mut Value = match cur {
            Value::Object(m) => m.entry(last.clone()).or_insert(Value::Null),
            Value::Array(a) => a
                .get_mut(last.parse::<usize>().map_err(|_| bad())?)
                .ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        *slot = match (self.operation, &*slot) {
            (Operation::Overwrite, _) | (_, Value::Null) => value,
            (Operation::Append, old) => Value::String(text_of(old) + &text_of(&value)),
            (Operation::Prepend, old) => Value::String(text_of(&value) + &text_of(old)),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signature() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        verify_signature(b"It's a Secret to Everybody", b"Hello, World!", Some(sig)).unwrap();
        assert_eq!(sign(b"It's a Secret to Everybody", b"Hello, World!"), sig);
        assert_eq!(
            verify_signature(b"other", b"Hello, World!", Some(sig)),
            Err(EventError::BadSignature)
        );
        assert_eq!(
            verify_signature(b"k", b"", None),
            Err(EventError::MissingSignature)
        );
        assert_eq!(
            verify_signature(b"k", b"", Some("sha1=00")),
            Err(EventError::MalformedSignature)
        );
        assert_eq!(
            verify_signature(b"k", b"", Some(&format!("sha256={}", "zz".repeat(32)))),
            Err(EventError::MalformedSignature)
        );
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse_command("/canary_release\nplease").unwrap(),
            Some(Command::Release {
                env: Env::new("canary").unwrap()
            })
        );
        assert_eq!(
            parse_command("/rollback prod").unwrap(),
            Some(Command::Rollback {
                env: Env::new("prod").unwrap()
            })
        );
        assert_eq!(
            parse_command("/test fail login broken").unwrap(),
            Some(Command::ManualTest {
                passed: false,
                note: "login broken".into()
            })
        );
        assert_eq!(parse_command("LGTM").unwrap(), None);
        assert!(parse_command("/deploy").is_err());
        assert!(parse_command("/rollback").is_err());
        assert!(parse_command("/test maybe").is_err());
    }

    #[test]
    fn filters_anchored_and_unanchored() {
        let ev = json!({"body": {"ref": "refs/heads/main-hotfix", "n": 3, "ok": true}});
        let mut f = DataFilter {
            path: "body.ref".into(),
            kind: FilterType::String,
            value: vec!["refs/heads/main".into()],
            comparator: String::new(),
            string_match: StringMatch::Anchored,
        };
        assert!(!f.matches(&ev).unwrap());
        f.string_match = StringMatch::Unanchored;
        assert!(f.matches(&ev).unwrap());
        f.comparator = "!=".into();
        assert!(!f.matches(&ev).unwrap());
        let n = DataFilter {
            path: "body.n".into(),
            kind: FilterType::Number,
            value: vec!["2".into()],
            comparator: ">".into(),
            string_match: StringMatch::Anchored,
        };
        assert!(n.matches(&ev).unwrap());
        let b = DataFilter {
            path: "body.ok".into(),
            kind: FilterType::Bool,
            value: vec!["true".into()],
            comparator: String::new(),
            string_match: StringMatch::Anchored,
        };
        assert!(all_match(&[n, b], &ev).unwrap());
        f.path = "body.missing".into();
        assert!(matches!(
            f.matches(&ev),
            Err(FilterError::PathNotFound { .. })
        ));
    }

    #[test]
    fn parameters() {
        let ev = json!({"body": {"number": 12, "sha": "abcdef1234"}});
        let mut doc = json!({"metadata": {"name": "deploy-"}});
        Parameter {
            data_key: None,
            data_template: Some("{{ body.number }}-{{body.sha}}".into()),
            value: None,
            dest: "metadata.name".into(),
            operation: Operation::Append,
        }
        .apply(&ev, &mut doc)
        .unwrap();
        assert_eq!(doc["metadata"]["name"], "deploy-12-abcdef1234");
        Parameter {
            data_key: Some("body.number".into()),
            data_template: None,
            value: None,
            dest: "spec.pr".into(),
            operation: Operation::Overwrite,
        }
        .apply(&ev, &mut doc)
        .unwrap();
        assert_eq!(doc["spec"]["pr"], 12);
        let p = Parameter {
            data_key: Some("body.nope".into()),
            data_template: None,
            value: None,
            dest: "x".into(),
            operation: Operation::Prepend,
        };
        assert!(matches!(
            p.apply(&ev, &mut doc),
            Err(ParameterError::Unresolved { .. })
        ));
    }
}
