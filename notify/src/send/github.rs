//! GitHub: pull-request comments and commit statuses, against a configurable API base
//! URL (`https://api.github.com` by default; GitHub Enterprise uses
//! `https://<host>/api/v3`).
//!
//! Requests carry `Authorization: Bearer <token>`, `Accept: application/vnd.github+json`,
//! `X-GitHub-Api-Version: 2022-11-28` and a `User-Agent`.
//!
//! | sender | recipient | request |
//! |---|---|---|
//! | [`GithubComments`] | `owner/repo#<n>`, or `owner/repo` with the event's `release.pr` | `POST /repos/{owner}/{repo}/issues/{n}/comments` `{"body": <message>}` |
//! | [`GithubStatuses`] | `owner/repo@<sha>`, or `owner/repo` with the event's `release.commit` | `POST /repos/{owner}/{repo}/statuses/{sha}` `{"state", "target_url"?, "description", "context"}` |
//!
//! The status' `description` is the message cut to GitHub's 140 characters, its
//! `target_url` the template's `link` (omitted when empty), its `state` from the trigger
//! ([`StatusState::for_trigger`], overridable per trigger).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::{HttpClient, JSON, Request, RetryPolicy, trim_base};
use crate::dispatch::{SendError, Service};
use crate::notifier::Delivery;

/// A commit status state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusState {
    /// In progress.
    Pending,
    /// Done and good.
    Success,
    /// Done and bad.
    Failure,
    /// Could not decide.
    Error,
}

impl StatusState {
    /// GitHub's name.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }

    /// The default state of a trigger: `success` for `on-rollout-completed`,
    /// `on-release-created` and `on-analysis-run-successful`; `failure` for
    /// `on-rollout-aborted`, `on-rollout-timed-out`, `on-analysis-run-failed`,
    /// `on-rolled-back`, `on-release-refused` and `on-sync-refused`; `error` for
    /// `on-analysis-run-error`; `pending` for everything else.
    pub fn for_trigger(trigger: &str) -> StatusState {
        match trigger {
            "on-rollout-completed" | "on-release-created" | "on-analysis-run-successful" => {
                StatusState::Success
            }
            "on-rollout-aborted"
            | "on-rollout-timed-out"
            | "on-analysis-run-failed"
            | "on-rolled-back"
            | "on-release-refused"
            | "on-sync-refused" => StatusState::Failure,
            "on-analysis-run-error" => StatusState::Error,
            _ => StatusState::Pending,
        }
    }
}

/// `(owner, repo, suffix after the separator)`.
fn split_recipient(recipient: &str, sep: char) -> Option<(&str, &str, Option<&str>)> {
    let (repo_part, suffix) = match recipient.split_once(sep) {
        Some((r, s)) => (r, Some(s)),
        None => (recipient, None),
    };
    let (owner, repo) = repo_part.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(owner) && ok(repo)).then_some((owner, repo, suffix))
}

fn bad_recipient(recipient: &str, reason: &str) -> SendError {
    SendError::BadRecipient {
        service: "github".into(),
        recipient: recipient.to_string(),
        reason: reason.to_string(),
    }
}

#[derive(Debug, Clone)]
struct Api {
    base: String,
    token: String,
    client: HttpClient,
    policy: RetryPolicy,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> Result<(), SendError> {
        let req = Request {
            url: format!("{}{path}", self.base),
            headers: vec![
                (JSON.0.into(), JSON.1.into()),
                ("accept".into(), "application/vnd.github+json".into()),
                ("authorization".into(), format!("Bearer {}", self.token)),
                ("x-github-api-version".into(), "2022-11-28".into()),
                ("user-agent".into(), "rollout-notify".into()),
            ],
            body: body.to_string().into_bytes(),
        };
        self.client
            .post("github", &self.policy, &req, |_| Ok(()))
            .await
            .map(drop)
    }
}

/// Pull-request comments.
#[derive(Debug, Clone)]
pub struct GithubComments {
    api: Api,
}

impl GithubComments {
    /// Comments with `token` against `https://api.github.com`.
    pub fn new(client: HttpClient, token: &str) -> Self {
        GithubComments {
            api: Api {
                base: "https://api.github.com".into(),
                token: token.to_string(),
                client,
                policy: RetryPolicy::default(),
            },
        }
    }

    /// Replaces the API base URL.
    pub fn with_base_url(mut self, base: &str) -> Self {
        self.api.base = trim_base(base);
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.api.policy = policy;
        self
    }
}

#[async_trait]
impl Service for GithubComments {
    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let recipient = &delivery.key.recipient;
        let (owner, repo, pr) = target(
            delivery,
            '#',
            "expected owner/repo or owner/repo#<n>",
            "release.pr",
            "pull request number (release.pr)",
        )?;
        let n: u64 = pr
            .parse()
            .map_err(|_| bad_recipient(recipient, "the pull request is not a number"))?;
        self.api
            .post(
                &format!("/repos/{owner}/{repo}/issues/{n}/comments"),
                json!({ "body": delivery.message.text }),
            )
            .await
    }
}

/// Commit statuses.
#[derive(Debug, Clone)]
pub struct GithubStatuses {
    api: Api,
    context: String,
    states: BTreeMap<String, StatusState>,
}

impl GithubStatuses {
    /// Statuses with `token` against `https://api.github.com`, under status context
    /// `context` (e.g. `rollouts/prod`).
    pub fn new(client: HttpClient, token: &str, context: &str) -> Self {
        GithubStatuses {
            api: Api {
                base: "https://api.github.com".into(),
                token: token.to_string(),
                client,
                policy: RetryPolicy::default(),
            },
            context: context.to_string(),
            states: BTreeMap::new(),
        }
    }

    /// Replaces the API base URL.
    pub fn with_base_url(mut self, base: &str) -> Self {
        self.api.base = trim_base(base);
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.api.policy = policy;
        self
    }

    /// Uses `state` for `trigger` instead of [`StatusState::for_trigger`].
    pub fn with_state(mut self, trigger: &str, state: StatusState) -> Self {
        self.states.insert(trigger.to_string(), state);
        self
    }
}

/// `owner`, `repo` and the pull request or commit of a recipient
/// `owner/repo<sep><what>`, or of `owner/repo` with `<what>` from the event's `fact`.
fn target<'d>(
    delivery: &'d Delivery,
    sep: char,
    usage: &str,
    fact: &str,
    what: &str,
) -> Result<(&'d str, &'d str, &'d str), SendError> {
    let recipient = &delivery.key.recipient;
    let (owner, repo, named) =
        split_recipient(recipient, sep).ok_or_else(|| bad_recipient(recipient, usage))?;
    let which = match named {
        Some(x) => x,
        None => delivery
            .event
            .fact(fact)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SendError::MissingFact {
                service: "github".into(),
                what: what.into(),
            })?,
    };
    Ok((owner, repo, which))
}

/// `s` cut to at most `max` characters.
fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[async_trait]
impl Service for GithubStatuses {
    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let recipient = &delivery.key.recipient;
        let (owner, repo, sha) = target(
            delivery,
            '@',
            "expected owner/repo or owner/repo@<sha>",
            "release.commit",
            "commit (release.commit)",
        )?;
        if sha.is_empty() || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad_recipient(recipient, "the commit is not a hex SHA"));
        }
        let trigger = &delivery.event.trigger;
        let state = self
            .states
            .get(trigger)
            .copied()
            .unwrap_or_else(|| StatusState::for_trigger(trigger));
        let mut body = Map::new();
        body.insert("state".into(), json!(state.as_str()));
        if let Some(link) = delivery.message.link.as_deref().filter(|l| !l.is_empty()) {
            body.insert("target_url".into(), json!(link));
        }
        body.insert(
            "description".into(),
            json!(cut(&delivery.message.text, 140)),
        );
        body.insert("context".into(), json!(self.context));
        self.api
            .post(
                &format!("/repos/{owner}/{repo}/statuses/{sha}"),
                Value::Object(body),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients() {
        assert_eq!(
            split_recipient("acme/web#12", '#'),
            Some(("acme", "web", Some("12")))
        );
        assert_eq!(
            split_recipient("acme/web.go", '@'),
            Some(("acme", "web.go", None))
        );
        assert_eq!(split_recipient("acme", '#'), None);
        assert_eq!(split_recipient("a/b/c", '#'), None);
        assert_eq!(split_recipient("/web", '#'), None);
    }

    #[test]
    fn descriptions_are_cut_to_140_chars() {
        let s = "é".repeat(200);
        assert_eq!(cut(&s, 140).chars().count(), 140);
        assert_eq!(cut("short", 140), "short");
    }
}
