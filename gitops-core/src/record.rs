//! The structured message of a history tag: what happened, where, to which commit, from
//! which commit, who did it, who approved it and which pull request it came from.
//!
//! The message is plain text, one `key: value` per line after a fixed first line, so it
//! reads well in `git show` and parses strictly:
//!
//! ```text
//! gitops-core ledger record v1
//! action: release
//! env: prod
//! at: 20261122013000
//! commit: 4b825dc642cb6eb9a060e54bf8d69288fbee4904
//! previous: -
//! by: release-bot
//! approvals: alice, bob
//! pr: 42
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tag::{CommitId, Env, Stamp};

/// The first line of every record.
pub const RECORD_HEADER: &str = "gitops-core ledger record v1";

/// What a history tag records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Action {
    /// The pointer moved forward to a released commit.
    Release,
    /// The pointer moved back to the previous release.
    Rollback,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Release => "release",
            Action::Rollback => "rollback",
        })
    }
}

/// Who asked for a change and on what authority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The actor (a login or a bot identity).
    pub by: String,
    /// Logins of the approvers (may be empty, e.g. for rollbacks).
    pub approvals: Vec<String>,
    /// The pull request the change came from.
    pub pr: Option<u64>,
}

impl Provenance {
    /// A provenance with an actor only.
    pub fn by(actor: impl Into<String>) -> Self {
        Provenance {
            by: actor.into(),
            ..Provenance::default()
        }
    }

    /// Checks that every field can be written into a record.
    pub fn validate(&self) -> Result<(), RecordError> {
        check_login("by", &self.by)?;
        for a in &self.approvals {
            check_login("approvals", a)?;
        }
        Ok(())
    }
}

fn check_login(field: &'static str, v: &str) -> Result<(), RecordError> {
    let ok = !v.is_empty()
        && v.len() <= 100
        && v != "-"
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'[' | b']'));
    if ok {
        Ok(())
    } else {
        Err(RecordError::BadValue {
            field,
            value: v.to_string(),
            reason: "expected 1 to 100 of ASCII letters, digits, `-`, `_`, `.`, `[`, `]`",
        })
    }
}

/// One parsed history-tag message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Release or rollback.
    pub action: Action,
    /// The environment.
    pub env: Env,
    /// When (also the suffix of the history tag).
    pub at: Option<Stamp>,
    /// The commit the pointer moved to.
    pub commit: CommitId,
    /// The commit the pointer moved from (`None`: first release).
    pub previous: Option<CommitId>,
    /// Who and on what authority.
    pub provenance: Provenance,
}

/// Why a tag message is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The first line is not [`RECORD_HEADER`].
    #[error("not a ledger record (first line is not {RECORD_HEADER:?})")]
    NotARecord,
    /// A required field is absent.
    #[error("record field `{field}` is missing")]
    MissingField {
        /// The field name.
        field: &'static str,
    },
    /// A field appears twice.
    #[error("record field `{field}` appears twice")]
    DuplicateField {
        /// The field name.
        field: String,
    },
    /// A line that is not a known `key: value`.
    #[error("record line {line:?} is not a known `key: value`")]
    UnknownLine {
        /// The offending line.
        line: String,
    },
    /// A field value is malformed.
    #[error("record field `{field}` has invalid value {value:?}: {reason}")]
    BadValue {
        /// The field name.
        field: &'static str,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

const FIELDS: [&str; 8] = [
    "action",
    "env",
    "at",
    "commit",
    "previous",
    "by",
    "approvals",
    "pr",
];

impl Record {
    /// Renders the tag message (ends with a newline).
    pub fn render(&self) -> String {
        let opt = |c: &Option<CommitId>| c.as_ref().map_or("-".to_string(), |c| c.to_string());
        let approvals = if self.provenance.approvals.is_empty() {
            "-".to_string()
        } else {
            self.provenance.approvals.join(", ")
        };
        format!(
            "{RECORD_HEADER}\naction: {}\nenv: {}\nat: {}\ncommit: {}\nprevious: {}\nby: {}\napprovals: {}\npr: {}\n",
            self.action,
            self.env,
            self.at.map_or("-".to_string(), |a| a.to_string()),
            self.commit,
            opt(&self.previous),
            self.provenance.by,
            approvals,
            self.provenance
                .pr
                .map_or("-".to_string(), |p| p.to_string()),
        )
    }

    /// Parses a tag message strictly: the header, every field exactly once, nothing else
    /// (blank lines and trailing whitespace are tolerated).
    pub fn parse(message: &str) -> Result<Record, RecordError> {
        let mut lines = message.lines().map(str::trim_end).filter(|l| !l.is_empty());
        if lines.next() != Some(RECORD_HEADER) {
            return Err(RecordError::NotARecord);
        }
        let mut values: [Option<&str>; 8] = [None; 8];
        for line in lines {
            let Some((key, value)) = line
                .split_once(": ")
                .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
            else {
                return Err(RecordError::UnknownLine {
                    line: line.to_string(),
                });
            };
            let Some(i) = FIELDS.iter().position(|f| *f == key) else {
                return Err(RecordError::UnknownLine {
                    line: line.to_string(),
                });
            };
            if values[i].replace(value.trim()).is_some() {
                return Err(RecordError::DuplicateField {
                    field: key.to_string(),
                });
            }
        }
        let get = |i: usize| values[i].ok_or(RecordError::MissingField { field: FIELDS[i] });
        let bad = |field: &'static str, value: &str, reason: &'static str| RecordError::BadValue {
            field,
            value: value.to_string(),
            reason,
        };
        let action = match get(0)? {
            "release" => Action::Release,
            "rollback" => Action::Rollback,
            other => return Err(bad("action", other, "expected `release` or `rollback`")),
        };
        let env = Env::new(get(1)?)
            .map_err(|_| bad("env", values[1].unwrap_or(""), "invalid environment name"))?;
        let at = match get(2)? {
            "-" => None,
            s => Some(Stamp::parse(s).map_err(|_| bad("at", s, "expected YYYYMMDDhhmmss"))?),
        };
        let commit = CommitId::new(get(3)?)
            .map_err(|_| bad("commit", values[3].unwrap_or(""), "expected a commit id"))?;
        let previous = match get(4)? {
            "-" => None,
            s => Some(
                CommitId::new(s).map_err(|_| bad("previous", s, "expected a commit id or `-`"))?,
            ),
        };
        let by = get(5)?.to_string();
        check_login("by", &by)?;
        let approvals = match get(6)? {
            "-" => Vec::new(),
            s => s.split(',').map(|a| a.trim().to_string()).collect(),
        };
        for a in &approvals {
            check_login("approvals", a)?;
        }
        let pr = match get(7)? {
            "-" => None,
            s => Some(
                s.parse::<u64>()
                    .map_err(|_| bad("pr", s, "expected a number or `-`"))?,
            ),
        };
        Ok(Record {
            action,
            env,
            at,
            commit,
            previous,
            provenance: Provenance { by, approvals, pr },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Record {
        Record {
            action: Action::Rollback,
            env: Env::new("canary_eu").unwrap(),
            at: Some(Stamp::parse("20261122013000").unwrap()),
            commit: CommitId::new(&"a".repeat(40)).unwrap(),
            previous: Some(CommitId::new(&"b".repeat(40)).unwrap()),
            provenance: Provenance {
                by: "release-bot[bot]".into(),
                approvals: vec!["alice".into(), "bob".into()],
                pr: Some(42),
            },
        }
    }

    #[test]
    fn round_trips() {
        let r = sample();
        assert_eq!(Record::parse(&r.render()).unwrap(), r);
        let mut r = sample();
        r.previous = None;
        r.provenance.approvals.clear();
        r.provenance.pr = None;
        assert_eq!(Record::parse(&r.render()).unwrap(), r);
    }

    #[test]
    fn strict() {
        assert_eq!(Record::parse("release prod"), Err(RecordError::NotARecord));
        let text = sample().render();
        let missing = text.replace("pr: 42\n", "");
        assert_eq!(
            Record::parse(&missing),
            Err(RecordError::MissingField { field: "pr" })
        );
        let dup = format!("{text}pr: 43\n");
        assert!(matches!(
            Record::parse(&dup),
            Err(RecordError::DuplicateField { .. })
        ));
        let extra = format!("{text}signed: yes\n");
        assert!(matches!(
            Record::parse(&extra),
            Err(RecordError::UnknownLine { .. })
        ));
        let forged = text.replace("action: rollback", "action: deploy");
        assert!(matches!(
            Record::parse(&forged),
            Err(RecordError::BadValue {
                field: "action",
                ..
            })
        ));
        assert!(Provenance::by("a b").validate().is_err());
        assert!(Provenance::by("").validate().is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = Record::parse(&text);
            let _ = Record::parse(&format!("{RECORD_HEADER}\n{text}"));
        }
    }
}
