//! The tag grammar: environments, commit ids, UTC second stamps and the two kinds of
//! ledger tags (`<env>_release` and `<env>_<YYYYMMDDhhmmss>`).
//!
//! A tag name is split on its **last** underscore, so environment names may contain
//! underscores (`canary_eu_release` is the pointer of `canary_eu`). The suffix is either
//! `release` or exactly fourteen digits forming a valid UTC date-time; the fixed width
//! makes lexical order of history tags their chronological order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name is not a ledger tag, an environment, a stamp or a commit id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// The environment name is not usable inside a tag name.
    #[error("invalid environment name {env:?}: {reason}")]
    InvalidEnv {
        /// The rejected environment name.
        env: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The tag has no `_` separating environment and suffix.
    #[error("tag {tag:?} has no `_<suffix>`")]
    NoSeparator {
        /// The tag name.
        tag: String,
    },
    /// The suffix is neither `release` nor a 14-digit stamp.
    #[error("tag {tag:?} has suffix {suffix:?}, expected `release` or 14 digits (YYYYMMDDhhmmss)")]
    BadSuffix {
        /// The tag name.
        tag: String,
        /// The suffix after the last `_`.
        suffix: String,
    },
    /// The 14 digits do not form a valid UTC date-time.
    #[error("invalid stamp {stamp:?}: {reason}")]
    BadStamp {
        /// The rejected digits.
        stamp: String,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// A time outside the years 1970 to 9999.
    #[error("time {unix_secs} s is outside the years 1970 to 9999")]
    TimeOutOfRange {
        /// Seconds since the Unix epoch.
        unix_secs: i64,
    },
    /// Not a 40- or 64-digit hexadecimal commit id.
    #[error("invalid commit id {input:?}: expected 40 or 64 hexadecimal digits")]
    BadCommitId {
        /// The rejected text.
        input: String,
    },
}

/// An environment name (`dev`, `canary`, `prod`, `canary_eu`).
///
/// Accepted: 1 to 64 ASCII letters, digits, `_`, `-` and `.`, starting with a letter or
/// digit, without `..` and not ending with `.` (so that every tag built from it is a
/// valid git refname component).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Env(String);

impl Env {
    /// Validates an environment name.
    pub fn new(name: impl Into<String>) -> Result<Self, TagError> {
        let env: String = name.into();
        let bad = |reason| TagError::InvalidEnv {
            env: env.clone(),
            reason,
        };
        if env.is_empty() {
            return Err(bad("empty"));
        }
        if env.len() > 64 {
            return Err(bad("longer than 64 characters"));
        }
        if !env.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(bad("must start with a letter or a digit"));
        }
        if !env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(bad(
                "only ASCII letters, digits, `_`, `-` and `.` are allowed",
            ));
        }
        if env.contains("..") {
            return Err(bad("must not contain `..`"));
        }
        if env.ends_with('.') {
            return Err(bad("must not end with `.`"));
        }
        Ok(Env(env))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pointer tag of this environment (`<env>_release`).
    pub fn pointer(&self) -> LedgerTag {
        LedgerTag::Pointer(self.clone())
    }

    /// The history tag of this environment at `at` (`<env>_<YYYYMMDDhhmmss>`).
    pub fn history(&self, at: Stamp) -> LedgerTag {
        LedgerTag::History(self.clone(), at)
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Env {
    type Error = TagError;
    fn try_from(s: String) -> Result<Self, TagError> {
        Env::new(s)
    }
}

impl From<Env> for String {
    fn from(e: Env) -> String {
        e.0
    }
}

impl std::str::FromStr for Env {
    type Err = TagError;
    fn from_str(s: &str) -> Result<Self, TagError> {
        Env::new(s)
    }
}

/// A peeled commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hexadecimal digits.
///
/// The ledger only ever stores and compares commit ids, never tag-object ids: annotated
/// and lightweight tags pointing at the same commit resolve to the same `CommitId`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitId(String);

impl CommitId {
    /// Parses a commit id (upper-case digits are lowered).
    pub fn new(hex: &str) -> Result<Self, TagError> {
        if (hex.len() == 40 || hex.len() == 64) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(CommitId(hex.to_ascii_lowercase()))
        } else {
            Err(TagError::BadCommitId {
                input: hex.to_string(),
            })
        }
    }

    /// A commit id from hex digits known to be valid (libgit2's rendering of an oid).
    #[cfg(feature = "git")]
    pub(crate) fn from_trusted_hex(hex: String) -> Self {
        debug_assert!(CommitId::new(&hex).is_ok());
        CommitId(hex.to_ascii_lowercase())
    }

    /// The hexadecimal digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first seven digits, for messages.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CommitId {
    type Error = TagError;
    fn try_from(s: String) -> Result<Self, TagError> {
        CommitId::new(&s)
    }
}

impl From<CommitId> for String {
    fn from(c: CommitId) -> String {
        c.0
    }
}

impl std::str::FromStr for CommitId {
    type Err = TagError;
    fn from_str(s: &str) -> Result<Self, TagError> {
        CommitId::new(s)
    }
}

/// A UTC time with one-second resolution between 1970 and 9999: the `now` every ledger
/// operation takes, and the suffix of history tags (`YYYYMMDDhhmmss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(i64);

const MAX_UNIX_SECS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

impl Stamp {
    /// A stamp from seconds since the Unix epoch.
    pub fn from_unix_secs(unix_secs: i64) -> Result<Self, TagError> {
        if (0..=MAX_UNIX_SECS).contains(&unix_secs) {
            Ok(Stamp(unix_secs))
        } else {
            Err(TagError::TimeOutOfRange { unix_secs })
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(self) -> i64 {
        self.0
    }

    /// This stamp plus `secs` seconds (clamped to the supported range).
    #[must_use]
    pub fn add_secs(self, secs: i64) -> Self {
        Stamp(self.0.saturating_add(secs).clamp(0, MAX_UNIX_SECS))
    }

    /// Parses the 14 digits `YYYYMMDDhhmmss` (UTC).
    pub fn parse(digits: &str) -> Result<Self, TagError> {
        let bad = |reason| TagError::BadStamp {
            stamp: digits.to_string(),
            reason,
        };
        let b = digits.as_bytes();
        if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
            return Err(bad("expected exactly 14 digits"));
        }
        let n = |r: std::ops::Range<usize>| {
            b[r].iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
        };
        let (y, mo, d, h, mi, s) = (n(0..4), n(4..6), n(6..8), n(8..10), n(10..12), n(12..14));
        if y < 1970 {
            return Err(bad("year before 1970"));
        }
        if !(1..=12).contains(&mo) {
            return Err(bad("month out of range"));
        }
        if d < 1 || d > days_in_month(y, mo) {
            return Err(bad("day out of range"));
        }
        if h > 23 || mi > 59 || s > 59 {
            return Err(bad("time of day out of range"));
        }
        Ok(Stamp(
            days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s,
        ))
    }

    /// The calendar fields `(year, month, day, hour, minute, second)` in UTC.
    pub fn fields(self) -> (i64, i64, i64, i64, i64, i64) {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
    }
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Stamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Stamp {
    /// `YYYYMMDDhhmmss`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.fields();
        write!(f, "{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (years >= 1970 only).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let mut days = 0;
    for year in 1970..y {
        days += if is_leap(year) { 366 } else { 365 };
    }
    for month in 1..m {
        days += days_in_month(y, month);
    }
    days + d - 1
}

fn civil_from_days(mut days: i64) -> (i64, i64, i64) {
    // Jump whole 400-year cycles (146097 days) first; 1970 + 400k keeps the leap pattern.
    let cycles = days / 146_097;
    days -= cycles * 146_097;
    let mut y = 1970 + cycles * 400;
    loop {
        let len = if is_leap(y) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        y += 1;
    }
    let mut m = 1;
    while days >= days_in_month(y, m) {
        days -= days_in_month(y, m);
        m += 1;
    }
    (y, m, days + 1)
}

/// A tag the ledger understands.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum LedgerTag {
    /// `<env>_release`: what is deployed in the environment (moved by releases and
    /// rollbacks).
    Pointer(Env),
    /// `<env>_<YYYYMMDDhhmmss>`: one entry of the environment's history (never moved,
    /// never deleted).
    History(Env, Stamp),
}

impl LedgerTag {
    /// Parses a short tag name (`prod_release`, `canary_eu_20261122013000`); a
    /// `refs/tags/` prefix is accepted and ignored.
    pub fn parse(name: &str) -> Result<Self, TagError> {
        let short = name.strip_prefix("refs/tags/").unwrap_or(name);
        let Some((env, suffix)) = short.rsplit_once('_') else {
            return Err(TagError::NoSeparator {
                tag: short.to_string(),
            });
        };
        let env = Env::new(env)?;
        if suffix == "release" {
            return Ok(LedgerTag::Pointer(env));
        }
        if suffix.len() == 14 && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(LedgerTag::History(env, Stamp::parse(suffix)?));
        }
        Err(TagError::BadSuffix {
            tag: short.to_string(),
            suffix: suffix.to_string(),
        })
    }

    /// The environment the tag belongs to.
    pub fn env(&self) -> &Env {
        match self {
            LedgerTag::Pointer(e) | LedgerTag::History(e, _) => e,
        }
    }

    /// The short tag name.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// The full refname (`refs/tags/<name>`).
    pub fn refname(&self) -> String {
        format!("refs/tags/{self}")
    }
}

impl fmt::Display for LedgerTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerTag::Pointer(e) => write!(f, "{e}_release"),
            LedgerTag::History(e, at) => write!(f, "{e}_{at}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_pointer_and_history_with_underscored_envs() {
        let t = LedgerTag::parse("canary_eu_release").unwrap();
        assert_eq!(t, LedgerTag::Pointer(Env::new("canary_eu").unwrap()));
        let t = LedgerTag::parse("refs/tags/prod_20261122013005").unwrap();
        let LedgerTag::History(env, at) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(env.as_str(), "prod");
        assert_eq!(at.fields(), (2026, 11, 22, 1, 30, 5));
        assert_eq!(t.refname(), "refs/tags/prod_20261122013005");
    }

    #[test]
    fn rejects_bad_names() {
        assert!(matches!(
            LedgerTag::parse("release"),
            Err(TagError::NoSeparator { .. })
        ));
        assert!(matches!(
            LedgerTag::parse("prod_v1"),
            Err(TagError::BadSuffix { .. })
        ));
        assert!(matches!(
            LedgerTag::parse("prod_20261322013005"),
            Err(TagError::BadStamp {
                reason: "month out of range",
                ..
            })
        ));
        assert!(matches!(
            LedgerTag::parse("prod_20250229000000"),
            Err(TagError::BadStamp { .. })
        ));
        assert!(LedgerTag::parse("prod_20240229000000").is_ok());
        assert!(matches!(
            LedgerTag::parse("_release"),
            Err(TagError::InvalidEnv { .. })
        ));
        assert!(matches!(
            LedgerTag::parse("a..b_release"),
            Err(TagError::InvalidEnv { .. })
        ));
        assert!(matches!(
            LedgerTag::parse("pr od_release"),
            Err(TagError::InvalidEnv { .. })
        ));
        assert!(CommitId::new("abc").is_err());
        assert_eq!(
            CommitId::new(&"A".repeat(40)).unwrap().as_str(),
            "a".repeat(40)
        );
    }

    #[test]
    fn stamp_edges() {
        assert_eq!(
            Stamp::from_unix_secs(0).unwrap().to_string(),
            "19700101000000"
        );
        assert_eq!(
            Stamp::from_unix_secs(MAX_UNIX_SECS).unwrap().to_string(),
            "99991231235959"
        );
        assert!(Stamp::from_unix_secs(-1).is_err());
        assert!(Stamp::from_unix_secs(MAX_UNIX_SECS + 1).is_err());
        // 2026-11-22T01:30:05Z
        assert_eq!(
            Stamp::parse("20261122013005").unwrap().unix_secs(),
            1_795_311_005
        );
    }

    fn env_strategy() -> impl Strategy<Value = Env> {
        "[a-z0-9][a-z0-9_-]{0,20}".prop_map(|s| Env::new(s).unwrap())
    }

    proptest! {
        #[test]
        fn tag_grammar_round_trips(env in env_strategy(), secs in 0..=MAX_UNIX_SECS, pointer: bool) {
            let tag = if pointer {
                env.pointer()
            } else {
                env.history(Stamp::from_unix_secs(secs).unwrap())
            };
            let parsed = LedgerTag::parse(&tag.name()).unwrap();
            prop_assert_eq!(&parsed, &tag);
            prop_assert_eq!(LedgerTag::parse(&tag.refname()).unwrap(), tag);
        }

        #[test]
        fn stamp_digits_round_trip(secs in 0..=MAX_UNIX_SECS) {
            let s = Stamp::from_unix_secs(secs).unwrap();
            prop_assert_eq!(Stamp::parse(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn parse_never_panics(name in "\\PC{0,40}") {
            let _ = LedgerTag::parse(&name);
        }

        #[test]
        fn history_order_is_lexical(a in 0..=MAX_UNIX_SECS, b in 0..=MAX_UNIX_SECS) {
            let (sa, sb) = (Stamp::from_unix_secs(a).unwrap(), Stamp::from_unix_secs(b).unwrap());
            prop_assert_eq!(sa.cmp(&sb), sa.to_string().cmp(&sb.to_string()));
        }
    }
}
