//! New-image detection: which tag of an image repository an application should run,
//! as pure functions over the list of tags a registry returned.
//!
//! # The model (Argo CD Image Updater's)
//!
//! An image is tracked with an **update strategy** and optional **tag filters**:
//!
//! 1. the registry's tags are filtered: a tag must be allowed by `allow-tags`
//!    ([`AllowTags`]: `any`, the default, or `regexp:<re>`, an unanchored search) and
//!    must not match any `ignore-tags` glob ([`Glob`]: `*`, `?`, `[a-z]`, `[^0-9]`,
//!    `\` escapes, as Go's `filepath.Match`);
//! 2. the surviving tags are sorted by the strategy ([`Strategy`]) and the **last** one
//!    is the candidate:
//!    - `semver`: tags that parse as (loose) semantic versions ([`parse_version`]:
//!      optional `v` prefix, minor and patch optional) and satisfy the constraint
//!      ([`Constraint`], Masterminds' grammar); pre-releases only when the constraint
//!      names one (`1.x-0`); the highest version wins;
//!    - `newest-build` (alias `latest`): by the image's build time ([`Tag::created`],
//!      read from the image config by the registry adapter), equal times broken by tag
//!      name; tags without a build time sort first;
//!    - `digest`: the one mutable tag named in the constraint (`latest`); the candidate
//!      carries the registry's current digest for it;
//!    - `alphabetical` (alias `name`): lexical order of the names (calendar versions).
//! 3. [`detect`] compares the candidate with what runs now ([`Current`]): with `digest`
//!    an update is due when the digest differs (or none is known); otherwise when the
//!    tag name differs. As in Image Updater, a current tag outside the constraint is
//!    "updated" to the candidate even if that is a lower version.
//!
//! The registry adapter (`gitops_core::registry`, feature `registry`) produces the
//! [`Tag`] list; [`write_update`] (feature `git`) turns an [`Update`] into a
//! write-back commit ([`crate::writeback`]) and [`release_through_flow`] feeds that
//! commit to the release flow ([`crate::flow`]).
//!
//! # Differences from Image Updater
//!
//! - An invalid `allow-tags` matcher or `ignore-tags` glob is a typed [`ImageError`]
//!   when the policy is built; Image Updater logs it and matches nothing (for
//!   `allow-tags`) or ignores nothing (for a bad glob). Both end in no update here.
//! - Version parts in constraints are digits or a single `x`, `X` or `*`; Masterminds'
//!   character class also lets through oddities such as `1x`.
//! - Regular expressions use Rust's `regex` crate (RE2-like, as Go's `regexp`); `\d`
//!   and `\w` are Unicode-aware here and ASCII-only in Go.
//! - Equal semantic versions (`1.2` and `v1.2.0`) are ordered by tag name so the
//!   choice is deterministic; Go's unstable sort leaves it unspecified.
//!
//! ```
//! use gitops_core::image::{detect, Current, Detection, Policy, Strategy, Tag};
//!
//! let tags: Vec<Tag> = ["1.0.0", "v1.2.0", "1.3.0-rc.1", "2.0.0", "latest"]
//!     .into_iter()
//!     .map(Tag::named)
//!     .collect();
//! let policy = Policy::new(Strategy::parse("semver", "^1.0")?);
//! let current = Current { tag: Some("1.0.0".into()), digest: None };
//! let Detection::Update(update) = detect(&policy, &current, &tags) else { panic!() };
//! assert_eq!(update.new_tag, "v1.2.0");
//! // Pre-releases only when the constraint asks for them.
//! let policy = Policy::new(Strategy::parse("semver", "1.x-0")?);
//! assert_eq!(policy.candidate(&tags).map(|t| t.name.as_str()), Some("1.3.0-rc.1"));
//! # Ok::<(), gitops_core::image::ImageError>(())
//! ```

use std::cmp::Ordering;
use std::fmt;

/// Why a strategy, constraint, filter, time or template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A semantic-version constraint that does not parse.
    #[error("invalid semver constraint {constraint:?}: {reason}")]
    BadConstraint {
        /// The whole constraint.
        constraint: String,
        /// What is wrong, naming the part.
        reason: String,
    },
    /// An update strategy name that is not known.
    #[error(
        "unknown update strategy {strategy:?} (expected semver, newest-build, latest, digest, alphabetical or name)"
    )]
    UnknownStrategy {
        /// The name given.
        strategy: String,
    },
    /// The `digest` strategy needs the tag to track.
    #[error("the digest strategy needs a tag to track (e.g. `repo:latest`), got {constraint:?}")]
    MissingDigestTag {
        /// The constraint given.
        constraint: String,
    },
    /// An `allow-tags` matcher that is neither `any` nor a valid `regexp:<re>`.
    #[error("invalid allow-tags matcher {matcher:?}: {reason}")]
    BadAllowTags {
        /// The matcher.
        matcher: String,
        /// What is wrong.
        reason: String,
    },
    /// An `ignore-tags` glob that does not parse.
    #[error("invalid ignore-tags glob {pattern:?}: {reason}")]
    BadGlob {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A build time that is not RFC 3339.
    #[error("invalid build time {value:?}: {reason}")]
    BadTime {
        /// The text.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A commit message template with a placeholder this module does not fill.
    #[error(
        "unknown placeholder {placeholder:?} in commit message template (known: {{{{image}}}}, {{{{old}}}}, {{{{new}}}}, {{{{digest}}}}, {{{{old_digest}}}}, {{{{app}}}}, {{{{changes}}}})"
    )]
    UnknownPlaceholder {
        /// The placeholder, braces included.
        placeholder: String,
    },
}

/// An image build time (the image config's `created`), UTC, nanosecond resolution.
/// Years 0001 to 9999, so Go's zero time (`0001-01-01T00:00:00Z`, what reproducible
/// builds often write) is representable and sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuildTime {
    secs: i64,
    nanos: u32,
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl BuildTime {
    /// A build time from seconds since the Unix epoch and a sub-second part
    /// (clamped below one second).
    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        BuildTime {
            secs,
            nanos: nanos.min(999_999_999),
        }
    }

    /// Seconds since the Unix epoch (negative before 1970).
    pub fn unix_secs(self) -> i64 {
        self.secs
    }

    /// The sub-second part in nanoseconds.
    pub fn subsec_nanos(self) -> u32 {
        self.nanos
    }

    /// Parses RFC 3339 (`2026-11-22T04:05:06.123456789Z`, `...+02:00`; `t`/`z` in
    /// either case), as Docker and OCI image configs write `created`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, ImageError> {
        let bad = |reason| ImageError::BadTime {
            value: text.to_string(),
            reason,
        };
        let b = text.as_bytes();
        if b.len() < 20 {
            return Err(bad("too short for YYYY-MM-DDThh:mm:ssZ"));
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, ImageError> {
            let s = &b[r];
            if s.iter().all(u8::is_ascii_digit) {
                Ok(s.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
            } else {
                Err(bad("expected digits"))
            }
        };
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return Err(bad("expected YYYY-MM-DDThh:mm:ss"));
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(bad("expected hh:mm:ss"));
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if y < 1 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
            return Err(bad("date out of range"));
        }
        if h > 23 || mi > 59 || s > 60 {
            return Err(bad("time of day out of range"));
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return Err(bad("empty fraction of a second"));
            }
            for _ in (i - start).min(9)..9 {
                nanos *= 10;
            }
        }
        let offset = match b.get(i) {
            Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                if oh > 23 || om > 59 {
                    return Err(bad("offset out of range"));
                }
                let o = oh * 3600 + om * 60;
                if *sign == b'-' { -o } else { o }
            }
            _ => return Err(bad("expected Z or a +hh:mm offset at the end")),
        };
        // A leap second (:60) counts as the next second, as Go's parser does.
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
        Ok(BuildTime { secs, nanos })
    }
}

/// One tag of an image repository, with what the registry said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The tag name.
    pub name: String,
    /// The image's build time (the config's `created`; for a multi-platform index the
    /// newest of the platforms considered). Only `newest-build` needs it.
    pub created: Option<BuildTime>,
    /// The manifest digest (`sha256:...`) the tag points at. Only `digest` needs it.
    pub digest: Option<String>,
}

impl Tag {
    /// A tag with a name only.
    pub fn named(name: impl Into<String>) -> Self {
        Tag {
            name: name.into(),
            created: None,
            digest: None,
        }
    }
}

const MAX_VERSION_LEN: usize = 256;

fn parse_core(core: &str, allow_x: bool) -> Option<[Option<u64>; 3]> {
    // `None` in a part: a wildcard (`x`, `X`, `*`) or absent; `Some(None)` for absent
    // is folded into the same thing because Masterminds treats both alike.
    let mut out = [None, None, None];
    let mut parts = core.split('.');
    for slot in out.iter_mut() {
        match parts.next() {
            None => break,
            Some(p) if allow_x && matches!(p, "x" | "X" | "*") => *slot = None,
            Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => {
                *slot = Some(p.parse::<u64>().ok()?);
            }
            Some(_) => return None,
        }
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// Splits `v?core(-pre)?(+build)?` and validates pre-release and build identifiers
/// (non-empty, `[0-9A-Za-z-]`, numeric pre-release identifiers without leading zeros).
fn split_version(text: &str) -> Option<(&str, semver::Prerelease, semver::BuildMetadata)> {
    if text.len() > MAX_VERSION_LEN {
        return None;
    }
    let t = text.strip_prefix('v').unwrap_or(text);
    let (rest, build) = match t.split_once('+') {
        Some((_, "")) | Some((_, "-")) => return None,
        Some((r, b)) => (r, semver::BuildMetadata::new(b).ok()?),
        None => (t, semver::BuildMetadata::EMPTY),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((_, "")) => return None,
        Some((c, p)) => (c, semver::Prerelease::new(p).ok()?),
        None => (rest, semver::Prerelease::EMPTY),
    };
    Some((core, pre, build))
}

/// Parses a tag as a semantic version the way Masterminds' `NewVersion` (with its
/// default coercion) does: an optional lowercase `v`, `MAJOR[.MINOR[.PATCH]]` (missing
/// parts are 0, leading zeros allowed), then an optional `-pre-release` and
/// `+build`. `None` for anything else (`latest`, `1.2.3.4`, `1.0.0-01`).
pub fn parse_version(tag: &str) -> Option<semver::Version> {
    let (core, pre, build) = split_version(tag)?;
    let [major, minor, patch] = parse_core(core, false)?;
    Some(semver::Version {
        major: major?,
        minor: minor.unwrap_or(0),
        patch: patch.unwrap_or(0),
        pre,
        build,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

const OPS: [(&str, Op); 12] = [
    ("!=", Op::NotEqual),
    (">=", Op::GreaterEqual),
    ("=>", Op::GreaterEqual),
    ("<=", Op::LessEqual),
    ("=<", Op::LessEqual),
    ("~>", Op::Tilde),
    (">", Op::Greater),
    ("<", Op::Less),
    ("=", Op::TildeOrEqual),
    ("~", Op::Tilde),
    ("^", Op::Caret),
    ("", Op::TildeOrEqual),
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    con: semver::Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

fn pre_guard(v: &semver::Version, c: &Comparator) -> bool {
    // A pre-release only satisfies a comparator that names a pre-release itself
    // (Masterminds issue 21).
    !v.pre.is_empty() && c.con.pre.is_empty()
}

impl Comparator {
    fn parse(op: Op, token: &str) -> Option<Comparator> {
        let (core, pre, _build) = split_version(token)?;
        let [major, minor, patch] = parse_core(core, true)?;
        let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
        let (ma, mi, pa) = match (major, minor, patch) {
            (None, _, _) => {
                dirty = true;
                (0, 0, 0)
            }
            (Some(ma), None, _) => {
                dirty = true;
                minor_dirty = true;
                (ma, 0, 0)
            }
            (Some(ma), Some(mi), None) => {
                dirty = true;
                patch_dirty = true;
                (ma, mi, 0)
            }
            (Some(ma), Some(mi), Some(pa)) => (ma, mi, pa),
        };
        Some(Comparator {
            op,
            con: semver::Version {
                major: ma,
                minor: mi,
                patch: pa,
                pre,
                build: semver::BuildMetadata::EMPTY,
            },
            dirty,
            minor_dirty,
            patch_dirty,
        })
    }

    fn check(&self, v: &semver::Version) -> bool {
        let c = &self.con;
        match self.op {
            Op::NotEqual => {
                if self.dirty {
                    if pre_guard(v, self) {
                        return false;
                    }
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return v.pre != c.pre;
                        }
                        return false;
                    }
                }
                v.cmp_precedence(c) != Ordering::Equal
            }
            Op::Greater => {
                if pre_guard(v, self) {
                    return false;
                }
                if !self.dirty {
                    return v.cmp_precedence(c) == Ordering::Greater;
                }
                if v.major > c.major {
                    true
                } else if v.major < c.major || self.minor_dirty {
                    false
                } else if self.patch_dirty {
                    v.minor > c.minor
                } else {
                    v.cmp_precedence(c) == Ordering::Greater
                }
            }
            Op::Less => !pre_guard(v, self) && v.cmp_precedence(c) == Ordering::Less,
            Op::GreaterEqual => !pre_guard(v, self) && v.cmp_precedence(c) != Ordering::Less,
            Op::LessEqual => {
                if pre_guard(v, self) {
                    return false;
                }
                if !self.dirty {
                    return v.cmp_precedence(c) != Ordering::Greater;
                }
                if v.major > c.major {
                    return false;
                }
                !(v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            Op::Tilde => self.tilde(v),
            Op::TildeOrEqual => {
                if pre_guard(v, self) {
                    return false;
                }
                if self.dirty {
                    return self.tilde(v);
                }
                v.cmp_precedence(c) == Ordering::Equal
            }
            Op::Caret => self.caret(v),
        }
    }

    fn tilde(&self, v: &semver::Version) -> bool {
        let c = &self.con;
        if pre_guard(v, self) || v.cmp_precedence(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }

    fn caret(&self, v: &semver::Version) -> bool {
        let c = &self.con;
        if pre_guard(v, self) || v.cmp_precedence(c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

/// A semantic-version constraint in Masterminds' grammar (what Image Updater uses):
///
/// - comparators `=`, `!=`, `>`, `<`, `>=`, `=>`, `<=`, `=<`, `~` / `~>` (same minor
///   when given), `^` (same major, or same minor / patch below 1.0), or none (`=`);
/// - wildcards `x`, `X`, `*` in the version (`1.2.x`, `1.x`, `*`); missing parts
///   are wildcards (`1.2` is `1.2.x`); a bare wildcard version means "like `~`";
/// - AND: comparators separated by spaces or commas (`>=1.0 <2.0`, `>= 1.0, < 2.0`);
/// - OR: `||` between AND groups;
/// - hyphen ranges `1.2 - 1.4.5` (spaces around the hyphen): `>= 1.2, <= 1.4.5`;
/// - a pre-release version satisfies a comparator only if that comparator names a
///   pre-release (`>=1.0.0-0`, `1.x-0`); empty means `*` (any release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    text: String,
    any_of: Vec<Vec<Comparator>>,
}

fn is_version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '*')
}

/// Rewrites `A - B` (whitespace on both sides of the hyphen) into `>= A, <= B`.
fn rewrite_ranges(s: &str) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let is_plain = |w: &str| {
        !w.is_empty()
            && w.chars().all(is_version_char)
            && w.chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, 'v' | 'x' | 'X' | '*'))
    };
    while i < words.len() {
        if i + 2 < words.len()
            && words[i + 1] == "-"
            && is_plain(words[i])
            && is_plain(words[i + 2])
        {
            out.push(format!(">= {}, <= {}", words[i], words[i + 2]));
            i += 3;
        } else {
            out.push(words[i].to_string());
            i += 1;
        }
    }
    out.join(" ")
}

impl Constraint {
    /// Parses a constraint; the error names the offending part.
    pub fn parse(text: &str) -> Result<Constraint, ImageError> {
        let bad = |reason: String| ImageError::BadConstraint {
            constraint: text.to_string(),
            reason,
        };
        if text.len() > 4 * MAX_VERSION_LEN {
            return Err(bad("longer than 1024 bytes".into()));
        }
        if text.trim().is_empty() {
            return Constraint::parse("*");
        }
        let rewritten = rewrite_ranges(text);
        let mut any_of = Vec::new();
        for group in rewritten.split("||") {
            let mut all_of = Vec::new();
            let mut rest = group.trim_start();
            if rest.trim().is_empty() {
                return Err(bad("an empty alternative around `||`".into()));
            }
            let mut first = true;
            while !rest.trim().is_empty() {
                if !first {
                    // Separator: whitespace, or a comma with optional whitespace.
                    let trimmed = rest.trim_start();
                    let had_space = trimmed.len() < rest.len();
                    rest = match trimmed.strip_prefix(',') {
                        Some(r) => r.trim_start(),
                        None if had_space => trimmed,
                        None => {
                            return Err(bad(format!(
                                "expected a space or a comma before {trimmed:?}"
                            )));
                        }
                    };
                    if rest.is_empty() {
                        return Err(bad("a trailing comma".into()));
                    }
                }
                first = false;
                let (op_text, op) = OPS
                    .iter()
                    .find(|(t, _)| rest.starts_with(t))
                    .copied()
                    .unwrap_or(("", Op::TildeOrEqual));
                let after_op = rest[op_text.len()..].trim_start();
                let end = after_op
                    .find(|c: char| !is_version_char(c))
                    .unwrap_or(after_op.len());
                let token = &after_op[..end];
                if token.is_empty() {
                    let at: String = after_op.chars().take(16).collect();
                    return Err(bad(format!(
                        "expected a version after {op_text:?}, found {at:?}"
                    )));
                }
                let cmp = Comparator::parse(op, token)
                    .ok_or_else(|| bad(format!("{token:?} is not a version (or wildcard)")))?;
                all_of.push(cmp);
                rest = &after_op[end..];
            }
            any_of.push(all_of);
        }
        Ok(Constraint {
            text: text.to_string(),
            any_of,
        })
    }

    /// The constraint as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `v` satisfies the constraint.
    pub fn matches(&self, v: &semver::Version) -> bool {
        self.any_of.iter().any(|g| g.iter().all(|c| c.check(v)))
    }
}

impl std::str::FromStr for Constraint {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, ImageError> {
        Constraint::parse(s)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An update strategy with its parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// The highest semantic version satisfying the constraint.
    Semver {
        /// The constraint (`*` when none was given).
        constraint: Constraint,
    },
    /// The most recently built image.
    NewestBuild,
    /// Follow the digest of one mutable tag.
    Digest {
        /// The tag (`latest`).
        tag: String,
    },
    /// The lexically greatest tag.
    Alphabetical,
}

impl Strategy {
    /// Builds a strategy from Image Updater's names (`semver`, `newest-build` or its
    /// deprecated alias `latest`, `digest`, `alphabetical` or its deprecated alias
    /// `name`) and the constraint part of `repo:<constraint>` (a semver constraint for
    /// `semver`, the tag to track for `digest`, ignored otherwise).
    pub fn parse(name: &str, constraint: &str) -> Result<Strategy, ImageError> {
        match name {
            "semver" | "" => Ok(Strategy::Semver {
                constraint: Constraint::parse(constraint)?,
            }),
            "newest-build" | "latest" => Ok(Strategy::NewestBuild),
            "alphabetical" | "name" => Ok(Strategy::Alphabetical),
            "digest" => {
                let tag = constraint.trim();
                if tag.is_empty() || tag.contains(|c: char| c.is_whitespace() || c == ':') {
                    return Err(ImageError::MissingDigestTag {
                        constraint: constraint.to_string(),
                    });
                }
                Ok(Strategy::Digest {
                    tag: tag.to_string(),
                })
            }
            other => Err(ImageError::UnknownStrategy {
                strategy: other.to_string(),
            }),
        }
    }

    /// Which strategy, without its parameter.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::Semver { .. } => StrategyKind::Semver,
            Strategy::NewestBuild => StrategyKind::NewestBuild,
            Strategy::Digest { .. } => StrategyKind::Digest,
            Strategy::Alphabetical => StrategyKind::Alphabetical,
        }
    }

    /// Image Updater's name of the strategy.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Whether the strategy needs per-tag registry metadata (build times or digests),
    /// which costs one or more requests per tag.
    pub fn needs_metadata(&self) -> bool {
        matches!(self, Strategy::NewestBuild | Strategy::Digest { .. })
    }
}

/// The update strategies, without parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StrategyKind {
    /// `semver`.
    Semver,
    /// `newest-build`.
    NewestBuild,
    /// `digest`.
    Digest,
    /// `alphabetical`.
    Alphabetical,
}

impl StrategyKind {
    /// Image Updater's name.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Semver => "semver",
            StrategyKind::NewestBuild => "newest-build",
            StrategyKind::Digest => "digest",
            StrategyKind::Alphabetical => "alphabetical",
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `allow-tags`: which tags are considered at all.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AllowTags {
    /// Every tag (`any`, the default).
    Any,
    /// Tags in which the regular expression finds a match (`regexp:<re>`).
    Regexp(regex::Regex),
}

impl AllowTags {
    /// Parses `any` or `regexp:<re>`.
    pub fn parse(matcher: &str) -> Result<AllowTags, ImageError> {
        if matcher == "any" {
            return Ok(AllowTags::Any);
        }
        let Some(re) = matcher.strip_prefix("regexp:") else {
            return Err(ImageError::BadAllowTags {
                matcher: matcher.to_string(),
                reason: "expected `any` or `regexp:<expression>`".into(),
            });
        };
        regex::RegexBuilder::new(re)
            .size_limit(1 << 20)
            .build()
            .map(AllowTags::Regexp)
            .map_err(|e| ImageError::BadAllowTags {
                matcher: matcher.to_string(),
                reason: e.to_string(),
            })
    }

    /// Whether `tag` is allowed.
    pub fn allows(&self, tag: &str) -> bool {
        match self {
            AllowTags::Any => true,
            AllowTags::Regexp(re) => re.is_match(tag),
        }
    }
}

impl PartialEq for AllowTags {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AllowTags::Any, AllowTags::Any) => true,
            (AllowTags::Regexp(a), AllowTags::Regexp(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobTok {
    Lit(char),
    One,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl GlobTok {
    fn matches(&self, c: char) -> bool {
        match self {
            GlobTok::Lit(l) => *l == c,
            GlobTok::One => c != '/',
            GlobTok::Star => false,
            GlobTok::Class { negated, ranges } => {
                let hit = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                hit != *negated
            }
        }
    }
}

/// An `ignore-tags` pattern with Go `filepath.Match` syntax: `*` (any run of
/// characters but `/`), `?` (one character but `/`), `[abc]`, `[a-z]`, `[^0-9]`, and
/// `\` escaping the next character. The whole tag must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    toks: Vec<GlobTok>,
}

impl Glob {
    /// Parses a pattern; malformed classes and a trailing `\` are errors.
    pub fn parse(pattern: &str) -> Result<Glob, ImageError> {
        let bad = |reason| ImageError::BadGlob {
            pattern: pattern.to_string(),
            reason,
        };
        let mut toks = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if toks.last() != Some(&GlobTok::Star) {
                        toks.push(GlobTok::Star);
                    }
                }
                '?' => toks.push(GlobTok::One),
                '\\' => toks.push(GlobTok::Lit(
                    chars.next().ok_or_else(|| bad("trailing backslash"))?,
                )),
                '[' => {
                    let negated = chars.peek() == Some(&'^');
                    if negated {
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    let esc =
                        |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| match chars.next() {
                            None => Err(bad("unterminated character class")),
                            Some('-') | Some(']') => {
                                Err(bad("`-` or `]` where a character was expected"))
                            }
                            Some('\\') => chars.next().ok_or_else(|| bad("trailing backslash")),
                            Some(c) => Ok(c),
                        };
                    loop {
                        if chars.peek() == Some(&']') && !ranges.is_empty() {
                            chars.next();
                            break;
                        }
                        let lo = esc(&mut chars)?;
                        let hi = if chars.peek() == Some(&'-') {
                            chars.next();
                            let hi = esc(&mut chars)?;
                            if hi < lo {
                                return Err(bad("a range whose end is below its start"));
                            }
                            hi
                        } else {
                            lo
                        };
                        ranges.push((lo, hi));
                    }
                    toks.push(GlobTok::Class { negated, ranges });
                }
                c => toks.push(GlobTok::Lit(c)),
            }
        }
        Ok(Glob {
            pattern: pattern.to_string(),
            toks,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let toks = &self.toks;
        let (mut p, mut t) = (0usize, 0usize);
        // The last `*` seen and the text position it currently extends to.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if let Some(tok) = toks.get(p) {
                if *tok == GlobTok::Star {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                if tok.matches(text[t]) {
                    p += 1;
                    t += 1;
                    continue;
                }
            }
            match star {
                Some((sp, st)) if text[st] != '/' => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                _ => return false,
            }
        }
        toks[p..].iter().all(|t| *t == GlobTok::Star)
    }
}

/// How an image is tracked: the strategy and the tag filters.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The update strategy.
    pub strategy: Strategy,
    /// `allow-tags`.
    pub allow: AllowTags,
    /// `ignore-tags`.
    pub ignore: Vec<Glob>,
}

impl Policy {
    /// A policy with no filters.
    pub fn new(strategy: Strategy) -> Self {
        Policy {
            strategy,
            allow: AllowTags::Any,
            ignore: Vec::new(),
        }
    }

    /// Sets `allow-tags` from its text.
    pub fn allow_tags(mut self, matcher: &str) -> Result<Self, ImageError> {
        self.allow = AllowTags::parse(matcher)?;
        Ok(self)
    }

    /// Sets `ignore-tags` from their texts.
    pub fn ignore_tags<S: AsRef<str>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> Result<Self, ImageError> {
        self.ignore = patterns
            .into_iter()
            .map(|p| Glob::parse(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// Whether the filters let `tag` through.
    pub fn permits(&self, tag: &str) -> bool {
        self.allow.allows(tag) && !self.ignore.iter().any(|g| g.matches(tag))
    }

    /// The tags that qualify, in the strategy's order (the candidate last).
    pub fn ranked<'a>(&self, tags: &'a [Tag]) -> Vec<&'a Tag> {
        let permitted = tags.iter().filter(|t| self.permits(&t.name));
        match &self.strategy {
            Strategy::Semver { constraint } => {
                let mut v: Vec<(semver::Version, &Tag)> = permitted
                    .filter_map(|t| parse_version(&t.name).map(|v| (v, t)))
                    .filter(|(v, _)| constraint.matches(v))
                    .collect();
                v.sort_by(|(a, ta), (b, tb)| {
                    a.cmp_precedence(b).then_with(|| ta.name.cmp(&tb.name))
                });
                v.into_iter().map(|(_, t)| t).collect()
            }
            Strategy::NewestBuild => {
                let mut v: Vec<&Tag> = permitted.collect();
                v.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
                v
            }
            Strategy::Digest { tag } => permitted
                .filter(|t| &t.name == tag && t.digest.is_some())
                .collect(),
            Strategy::Alphabetical => {
                let mut v: Vec<&Tag> = permitted.collect();
                v.sort_by(|a, b| a.name.cmp(&b.name));
                v
            }
        }
    }

    /// The update candidate: the last of [`Policy::ranked`].
    pub fn candidate<'a>(&self, tags: &'a [Tag]) -> Option<&'a Tag> {
        self.ranked(tags).pop()
    }
}

/// What the application runs now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    /// The tag (`None`: untagged or unknown).
    pub tag: Option<String>,
    /// The digest pinned, if any.
    pub digest: Option<String>,
}

/// A detected update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The strategy that chose it.
    pub strategy: StrategyKind,
    /// The tag running now.
    pub old_tag: Option<String>,
    /// The tag to run.
    pub new_tag: String,
    /// The digest pinned now.
    pub old_digest: Option<String>,
    /// The digest to pin: set by the `digest` strategy (and carried along when the
    /// registry reported one for the candidate).
    pub new_digest: Option<String>,
}

/// The result of [`detect`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detection {
    /// No tag qualifies: nothing to do.
    NoCandidate,
    /// The candidate is what runs.
    UpToDate {
        /// The candidate's name.
        tag: String,
    },
    /// Something else should run.
    Update(Update),
}

/// Chooses the candidate among `tags` and compares it with `current`.
pub fn detect(policy: &Policy, current: &Current, tags: &[Tag]) -> Detection {
    let Some(candidate) = policy.candidate(tags) else {
        return Detection::NoCandidate;
    };
    let due = match policy.strategy {
        Strategy::Digest { .. } => current.digest != candidate.digest,
        _ => current.tag.as_deref() != Some(candidate.name.as_str()),
    };
    if !due {
        return Detection::UpToDate {
            tag: candidate.name.clone(),
        };
    }
    Detection::Update(Update {
        strategy: policy.strategy.kind(),
        old_tag: current.tag.clone(),
        new_tag: candidate.name.clone(),
        old_digest: current.digest.clone(),
        new_digest: candidate.digest.clone(),
    })
}

/// Where an image is written back in the manifests repository.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A Kustomize `images:` entry ([`crate::writeback::set_kustomize_image`]).
    Kustomize {
        /// The `kustomization.yaml` path in the repository.
        file: String,
        /// The entry's `name`.
        name: String,
    },
    /// Helm values keys ([`crate::writeback::set_helm_value`]).
    Helm {
        /// The values file path in the repository.
        file: String,
        /// The dotted key of the tag (`image.tag`).
        tag_key: String,
        /// The dotted key of the digest (`image.digest`); without it the `digest`
        /// strategy writes `tag@digest` into the tag key.
        digest_key: Option<String>,
    },
}

impl Target {
    /// The file edited.
    pub fn file(&self) -> &str {
        match self {
            Target::Kustomize { file, .. } | Target::Helm { file, .. } => file,
        }
    }

    /// The edit of `text` this update makes (pure). Kustomize: `newTag`, plus `digest`
    /// for the `digest` strategy (Kustomize renders `name:tag@digest`). Helm: the tag
    /// key, plus the digest key (or `tag@digest` in the tag key) for the `digest`
    /// strategy. Other strategies leave an existing Kustomize `digest:` field as it is
    /// (the line editor does not delete fields), which keeps pinning the old image: do
    /// not mix a pinned digest with a tag strategy.
    pub fn edit(
        &self,
        text: &str,
        update: &Update,
    ) -> Result<crate::writeback::Edit, crate::writeback::WriteBackError> {
        use crate::writeback::{ImageUpdate, set_helm_value, set_kustomize_image};
        let pin = if update.strategy == StrategyKind::Digest {
            update.new_digest.clone()
        } else {
            None
        };
        match self {
            Target::Kustomize { file, name } => set_kustomize_image(
                file,
                text,
                &ImageUpdate {
                    name: name.clone(),
                    new_name: None,
                    new_tag: Some(update.new_tag.clone()),
                    digest: pin,
                },
            ),
            Target::Helm {
                file,
                tag_key,
                digest_key,
            } => match (pin, digest_key) {
                (Some(d), Some(dk)) => {
                    let first = set_helm_value(file, text, tag_key, &update.new_tag)?;
                    let second = set_helm_value(file, &first.text, dk, &d)?;
                    let mut changes = first.changes;
                    changes.extend(second.changes);
                    Ok(crate::writeback::Edit {
                        text: second.text,
                        changes,
                    })
                }
                (Some(d), None) => {
                    set_helm_value(file, text, tag_key, &format!("{}@{d}", update.new_tag))
                }
                (None, _) => set_helm_value(file, text, tag_key, &update.new_tag),
            },
        }
    }
}

/// The default commit message template: Image Updater's wording.
pub const DEFAULT_COMMIT_TEMPLATE: &str =
    "build: automatic update of {{app}}\n\nupdates image {{image}} tag '{{old}}' to '{{new}}'\n";

/// Renders a commit message template for an update of `image`: `{{image}}`,
/// `{{old}}` (the old tag, empty if none), `{{new}}`, `{{digest}}` (the new digest,
/// empty if none), `{{old_digest}}`; `{{app}}` and `{{changes}}` are left for
/// [`crate::writeback::commit_message`]. Any other `{{...}}` is an error.
pub fn render_template(template: &str, image: &str, update: &Update) -> Result<String, ImageError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find("}}") else {
            return Err(ImageError::UnknownPlaceholder {
                placeholder: after.chars().take(32).collect(),
            });
        };
        let placeholder = &after[..close + 2];
        match placeholder[2..placeholder.len() - 2].trim() {
            "image" => out.push_str(image),
            "old" => out.push_str(update.old_tag.as_deref().unwrap_or("")),
            "new" => out.push_str(&update.new_tag),
            "digest" => out.push_str(update.new_digest.as_deref().unwrap_or("")),
            "old_digest" => out.push_str(update.old_digest.as_deref().unwrap_or("")),
            "app" => out.push_str("{{app}}"),
            "changes" => out.push_str("{{changes}}"),
            _ => {
                return Err(ImageError::UnknownPlaceholder {
                    placeholder: placeholder.to_string(),
                });
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Why a write-back of a detected update failed.
#[cfg(feature = "git")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageWriteError {
    /// The commit message template was refused.
    #[error(transparent)]
    Template(#[from] ImageError),
    /// The edit or git failed.
    #[error(transparent)]
    WriteBack(#[from] crate::writeback::WriteBackFailure),
}

/// Writes `update` of `image` into `target` on the tip of `branch` as one commit
/// (compare-and-swap on the tip, pushed when the repository has a remote) whose message
/// is `template` rendered by [`render_template`] and then
/// [`crate::writeback::commit_message`]. `None`: the file already says so, no commit.
#[cfg(feature = "git")]
#[allow(clippy::too_many_arguments)] // each is a distinct input of one commit
pub fn write_update(
    repo: &crate::git::GitRepo,
    branch: &str,
    target: &Target,
    image: &str,
    update: &Update,
    template: &str,
    app: &str,
    now: crate::tag::Stamp,
) -> Result<Option<crate::tag::CommitId>, ImageWriteError> {
    let message = render_template(template, image, update)?;
    Ok(crate::writeback::write_back(
        repo,
        branch,
        target.file(),
        |text| target.edit(text, update),
        &message,
        app,
        now,
    )?)
}

/// Asks the release flow to release a write-back `commit` to `env` on behalf of
/// `actor`: the pull request's head moves to `commit` (if it is not there yet), then
/// the release command is handled. The flow's rules apply unchanged (approvals of
/// that commit, test results for later environments, releasers); a refusal changes
/// nothing. The decision's state is after both inputs, its effects are the release's.
pub fn release_through_flow(
    state: &crate::flow::PrState,
    ledger: &crate::ledger::Ledger,
    config: &crate::flow::FlowConfig,
    actor: &str,
    env: &crate::tag::Env,
    commit: &crate::tag::CommitId,
    now: crate::tag::Stamp,
) -> Result<crate::flow::Decision, crate::flow::Refusal> {
    use crate::flow::{Command, Input, handle};
    let mut state = state.clone();
    if state.head != *commit {
        let pushed = handle(
            &state,
            ledger,
            config,
            &Input::Pushed {
                head: commit.clone(),
            },
            now,
        )?;
        state = pushed.state;
    }
    handle(
        &state,
        ledger,
        config,
        &Input::Command {
            actor: actor.to_string(),
            command: Command::Release { env: env.clone() },
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        parse_version(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    fn sat(c: &str, ver: &str) -> bool {
        Constraint::parse(c).unwrap().matches(&v(ver))
    }

    #[test]
    fn versions_parse_loosely() {
        assert_eq!(v("v1.2"), semver::Version::new(1, 2, 0));
        assert_eq!(v("1"), semver::Version::new(1, 0, 0));
        assert_eq!(v("01.002.3"), semver::Version::new(1, 2, 3));
        assert_eq!(v("1.2.3-rc.1+build.5").pre.as_str(), "rc.1");
        for bad in [
            "latest", "1.2.3.4", "V1.2.3", "1.0.0-01", "1.0.0-", "1.0.0+", "x", "", "v", "1..2",
        ] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        assert!(parse_version(&"1".repeat(300)).is_none());
    }

    #[test]
    fn masterminds_constraints() {
        // caret
        assert!(sat("^1.2", "1.9.9") && !sat("^1.2", "2.0.0") && !sat("^1.2", "1.1.9"));
        assert!(sat("^0.2.3", "0.2.9") && !sat("^0.2.3", "0.3.0"));
        assert!(sat("^0.0.3", "0.0.3") && !sat("^0.0.3", "0.0.4"));
        assert!(sat("^0", "0.9.0") && !sat("^0", "1.0.0"));
        assert!(sat("^0.0", "0.0.9") && !sat("^0.0", "0.1.0"));
        // tilde
        assert!(sat("~1.2", "1.2.9") && !sat("~1.2", "1.3.0"));
        assert!(sat("~1.2.3", "1.2.4") && !sat("~1.2.3", "1.2.2") && !sat("~1.2.3", "1.3.0"));
        assert!(sat("~1", "1.9.0") && !sat("~1", "2.0.0"));
        assert!(sat("~>2.0", "2.0.5"));
        assert!(sat("~0.0.0", "3.1.0") && !sat("~0.0", "0.1.0"));
        // wildcards and bare versions
        assert!(sat("1.x", "1.5.0") && !sat("1.x", "2.0.0"));
        assert!(sat("1.2.x", "1.2.7") && !sat("1.2.x", "1.3.0"));
        assert!(sat("1.2", "1.2.7") && !sat("1.2", "1.3.0"));
        assert!(sat("*", "9.9.9") && sat("", "0.0.1"));
        assert!(sat("=1.2.3", "1.2.3") && !sat("1.2.3", "1.2.4"));
        assert!(sat("1.2.3", "1.2.3+meta"));
        // ranges, AND, OR, hyphen
        assert!(sat(">=1.0 <2.0", "1.9.0") && !sat(">=1.0 <2.0", "2.0.0"));
        assert!(sat(">= 1.0, < 2.0", "1.0.0") && !sat(">=1.0,<2.0", "0.9.0"));
        assert!(sat("<1.0 || >=3", "0.5.0") && sat("<1.0 || >=3", "3.1.0"));
        assert!(!sat("<1.0 || >=3", "2.0.0"));
        assert!(sat("1.2 - 1.4", "1.4.9") && !sat("1.2 - 1.4", "1.5.0"));
        assert!(sat("1.2 - 1.4", "1.2.0") && !sat("1.2 - 1.4", "1.1.9"));
        // dirty comparisons
        assert!(!sat(">1", "1.9.0") && sat(">1", "2.0.0"));
        assert!(!sat(">1.1", "1.1.9") && sat(">1.1", "1.2.0"));
        assert!(sat("<=1.2", "1.2.9") && !sat("<=1.2", "1.3.0"));
        assert!(sat("!=1.x", "2.0.0") && !sat("!=1.x", "1.3.0"));
        assert!(sat("!=1.2.3", "1.2.4") && !sat("!=1.2.3", "1.2.3"));
        // pre-releases only on request
        assert!(!sat("^1.0", "1.3.0-rc.1") && !sat("*", "1.0.0-beta"));
        assert!(sat("1.x-0", "1.3.0-rc.1") && sat(">=1.0.0-0", "1.3.0-rc.1"));
        assert!(sat(">=1.3.0-rc.1", "1.3.0-rc.2") && !sat(">=1.3.0-rc.2", "1.3.0-rc.1"));
        assert!(sat(">1.3.0-rc.2", "1.3.0-rc.10"));
    }

    #[test]
    fn bad_constraints_name_the_part() {
        for (c, part) in [
            (">=1.0 <", "<"),
            ("1.0.0.0", "1.0.0.0"),
            ("foo", "foo"),
            (">=1.0,", "trailing comma"),
            ("1.0 ||", "empty alternative"),
            (">=1.0<2.0", "<2.0"),
            ("^1.0-01", "1.0-01"),
        ] {
            match Constraint::parse(c) {
                Err(ImageError::BadConstraint { constraint, reason }) => {
                    assert_eq!(constraint, c);
                    assert!(reason.contains(part), "{c}: {reason}");
                }
                other => panic!("{c}: {other:?}"),
            }
        }
    }

    fn tags(names: &[&str]) -> Vec<Tag> {
        names.iter().map(|n| Tag::named(*n)).collect()
    }

    #[test]
    fn strategies_pick_the_last() {
        let t = tags(&["1.0.0", "v1.2.0", "1.10.0", "1.3.0-rc.1", "2.0.0", "latest"]);
        let pick = |p: &Policy| p.candidate(&t).map(|t| t.name.clone());
        let semver = |c: &str| Policy::new(Strategy::parse("semver", c).unwrap());
        assert_eq!(pick(&semver("")).as_deref(), Some("2.0.0"));
        assert_eq!(pick(&semver("~1.2")).as_deref(), Some("v1.2.0"));
        assert_eq!(pick(&semver("^1.0")).as_deref(), Some("1.10.0"));
        assert_eq!(pick(&semver("3.x")), None);
        assert_eq!(
            pick(&Policy::new(Strategy::Alphabetical)).as_deref(),
            Some("v1.2.0")
        );
        let filtered = Policy::new(Strategy::Alphabetical)
            .allow_tags("regexp:^[0-9]")
            .unwrap()
            .ignore_tags(["2.*"])
            .unwrap();
        assert_eq!(pick(&filtered).as_deref(), Some("1.3.0-rc.1"));
        let ignore_all = semver("").ignore_tags(["*"]).unwrap();
        assert_eq!(
            detect(&ignore_all, &Current::default(), &t),
            Detection::NoCandidate
        );

        let built = |n: &str, s: i64| Tag {
            name: n.into(),
            created: Some(BuildTime::from_unix(s, 0)),
            digest: None,
        };
        let b = vec![
            built("f33bacd", 100),
            built("latest", 100),
            built("a1", 50),
            Tag::named("nodate"),
        ];
        let newest = Policy::new(Strategy::parse("newest-build", "").unwrap());
        let names: Vec<&str> = newest.ranked(&b).iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["nodate", "a1", "f33bacd", "latest"]);
        let newest = newest.allow_tags("regexp:^[0-9a-f]{7}$").unwrap();
        assert_eq!(newest.candidate(&b).unwrap().name, "f33bacd");
    }

    #[test]
    fn detection_and_digests() {
        let latest = |d: &str| Tag {
            name: "latest".into(),
            created: None,
            digest: Some(d.into()),
        };
        let policy = Policy::new(Strategy::parse("digest", "latest").unwrap());
        let now = Current {
            tag: Some("latest".into()),
            digest: Some("sha256:aa".into()),
        };
        assert_eq!(
            detect(&policy, &now, &[latest("sha256:aa"), Tag::named("v1")]),
            Detection::UpToDate {
                tag: "latest".into()
            }
        );
        let Detection::Update(u) = detect(&policy, &now, &[latest("sha256:bb")]) else {
            panic!()
        };
        assert_eq!(u.new_digest.as_deref(), Some("sha256:bb"));
        assert_eq!(u.old_digest.as_deref(), Some("sha256:aa"));
        assert!(matches!(
            Strategy::parse("digest", ""),
            Err(ImageError::MissingDigestTag { .. })
        ));
        assert!(matches!(
            Strategy::parse("newest", ""),
            Err(ImageError::UnknownStrategy { .. })
        ));
        // A current tag outside the constraint is "updated", even downwards.
        let p = Policy::new(Strategy::parse("semver", "~1.2").unwrap());
        let Detection::Update(u) = detect(
            &p,
            &Current {
                tag: Some("1.9.0".into()),
                digest: None,
            },
            &tags(&["1.2.5", "1.9.0"]),
        ) else {
            panic!()
        };
        assert_eq!(
            (u.old_tag.as_deref(), u.new_tag.as_str()),
            (Some("1.9.0"), "1.2.5")
        );
    }

    #[test]
    fn filters_and_globs() {
        assert!(matches!(
            AllowTags::parse("^v1"),
            Err(ImageError::BadAllowTags { .. })
        ));
        assert!(matches!(
            AllowTags::parse("regexp:(unclosed"),
            Err(ImageError::BadAllowTags { matcher, .. }) if matcher == "regexp:(unclosed"
        ));
        assert!(AllowTags::parse("regexp:(?i)^V").unwrap().allows("v1"));
        let g = |p: &str| Glob::parse(p).unwrap();
        assert!(g("v1.*").matches("v1.2.3") && !g("v1.*").matches("v2.0"));
        assert!(g("?.?").matches("1.2") && !g("?.?").matches("1.22"));
        assert!(g("[0-9]*").matches("1abc") && !g("[^0-9]*").matches("1abc"));
        assert!(g("a\\*").matches("a*") && !g("a\\*").matches("ab"));
        assert!(g("*-rc*").matches("1.0-rc1") && !g("*").matches("a/b"));
        for bad in ["[", "[]", "[a-", "a\\", "[z-a]", "[^]"] {
            assert!(
                matches!(Glob::parse(bad), Err(ImageError::BadGlob { ref pattern, .. }) if pattern == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn build_times() {
        let t = BuildTime::parse_rfc3339("2026-11-22T04:05:06.5Z").unwrap();
        assert_eq!(
            (t.unix_secs(), t.subsec_nanos()),
            (1_795_320_306, 500_000_000)
        );
        let o = BuildTime::parse_rfc3339("2026-11-22T06:05:06.5+02:00").unwrap();
        assert_eq!(o, t);
        let zero = BuildTime::parse_rfc3339("0001-01-01T00:00:00Z").unwrap();
        assert!(zero < BuildTime::from_unix(0, 0));
        let n = BuildTime::parse_rfc3339("2026-11-22T04:05:06.123456789123Z").unwrap();
        assert_eq!(n.subsec_nanos(), 123_456_789);
        for bad in [
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-22T04:05:06",
            "2026-11-22T04:05:06.Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T04:05:06+0200",
        ] {
            assert!(BuildTime::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates() {
        let u = Update {
            strategy: StrategyKind::Semver,
            old_tag: Some("1.0.0".into()),
            new_tag: "1.1.0".into(),
            old_digest: None,
            new_digest: Some("sha256:ab".into()),
        };
        assert_eq!(
            render_template(DEFAULT_COMMIT_TEMPLATE, "reg/web", &u).unwrap(),
            "build: automatic update of {{app}}\n\nupdates image reg/web tag '1.0.0' to '1.1.0'\n"
        );
        assert_eq!(
            render_template("{{ image }}@{{digest}} [{{old_digest}}]", "w", &u).unwrap(),
            "w@sha256:ab []"
        );
        assert_eq!(
            render_template("x {{tag}}", "w", &u),
            Err(ImageError::UnknownPlaceholder {
                placeholder: "{{tag}}".into()
            })
        );
        assert!(render_template("x {{new", "w", &u).is_err());
    }

    /// The reference glob matcher: plain recursion over the token list.
    fn naive(toks: &[GlobTok], text: &[char]) -> bool {
        match toks.split_first() {
            None => text.is_empty(),
            Some((GlobTok::Star, rest)) => (0..=text.len())
                .take_while(|&i| i == 0 || text[i - 1] != '/')
                .any(|i| naive(rest, &text[i..])),
            Some((tok, rest)) => {
                text.first().is_some_and(|c| tok.matches(*c)) && naive(rest, &text[1..])
            }
        }
    }

    fn version_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (
            0u64..4,
            0u64..4,
            0u64..4,
            proptest::option::of("(alpha|rc)\\.[0-9]"),
        )
            .prop_map(|(a, b, c, pre)| match pre {
                Some(p) => format!("{a}.{b}.{c}-{p}"),
                None => format!("{a}.{b}.{c}"),
            })
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_the_naive_matcher(
            pattern in "[ab?*/]{0,8}|\\[a-b\\][ab*]{0,4}",
            text in "[ab/]{0,10}",
        ) {
            let g = Glob::parse(&pattern).unwrap();
            let chars: Vec<char> = text.chars().collect();
            proptest::prop_assert_eq!(g.matches(&text), naive(&g.toks, &chars), "{} vs {}", pattern, text);
        }

        #[test]
        fn caret_and_tilde_are_ranges(
            (a, b, c) in (0u64..4, 0u64..4, 0u64..4),
            x in version_text(),
        ) {
            let ver = v(&x);
            let (lo, caret_hi, tilde_hi) = (
                format!("{a}.{b}.{c}"),
                if a > 0 { format!("{}.0.0", a + 1) } else if b > 0 { format!("0.{}.0", b + 1) } else { format!("0.0.{}", c + 1) },
                format!("{a}.{}.0", b + 1),
            );
            proptest::prop_assert_eq!(
                sat(&format!("^{lo}"), &x),
                sat(&format!(">={lo}, <{caret_hi}"), &x),
                "^{} on {}", lo, ver
            );
            // Masterminds' special case: `~0.0.0` is `>=0.0.0`.
            let tilde_range = if (a, b, c) == (0, 0, 0) {
                ">=0.0.0".to_string()
            } else {
                format!(">={lo} <{tilde_hi}")
            };
            proptest::prop_assert_eq!(
                sat(&format!("~{lo}"), &x),
                sat(&tilde_range, &x),
                "~{} on {}", lo, ver
            );
            // Hyphen ranges are inclusive bounds; OR is any; AND is all.
            proptest::prop_assert_eq!(
                sat(&format!("{lo} - {}.{}.{}", a + 1, b, c), &x),
                sat(&format!(">={lo} <={}.{}.{}", a + 1, b, c), &x)
            );
            let (p, q) = (format!(">{lo}"), format!("<{lo}"));
            proptest::prop_assert_eq!(
                sat(&format!("{p} || {q}"), &x),
                sat(&p, &x) || sat(&q, &x)
            );
            proptest::prop_assert_eq!(sat(&format!("{p}, {q}"), &x), sat(&p, &x) && sat(&q, &x));
            // Pre-releases never satisfy a constraint that names none.
            if !ver.pre.is_empty() {
                let caret = format!("^{lo}");
                proptest::prop_assert!(!sat(&caret, &x) && !sat("*", &x));
            }
        }

        #[test]
        fn the_candidate_is_the_highest_permitted(
            names in proptest::collection::vec(version_text(), 0..12),
            vprefix in proptest::collection::vec(proptest::bool::ANY, 12),
        ) {
            let tags: Vec<Tag> = names
                .iter()
                .zip(&vprefix)
                .map(|(n, p)| Tag::named(if *p { format!("v{n}") } else { n.clone() }))
                .collect();
            let policy = Policy::new(Strategy::parse("semver", ">=1.0.0-0").unwrap());
            let best = tags
                .iter()
                .filter_map(|t| parse_version(&t.name).filter(|v| v.major >= 1))
                .max_by(|a, b| a.cmp_precedence(b));
            let got = policy.candidate(&tags).and_then(|t| parse_version(&t.name));
            proptest::prop_assert_eq!(
                got.map(|g| (g.major, g.minor, g.patch, g.pre)),
                best.map(|g| (g.major, g.minor, g.patch, g.pre))
            );
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,40}") {
            let _ = Constraint::parse(&s).map(|c| c.matches(&semver::Version::new(1, 2, 3)));
            let _ = parse_version(&s);
            let _ = Glob::parse(&s).map(|g| g.matches(&s));
            let _ = BuildTime::parse_rfc3339(&s);
            let _ = AllowTags::parse(&s);
        }

        #[test]
        fn build_times_round_trip(secs in 0i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let days = secs.div_euclid(86_400);
            let (y, m, d) = {
                // civil_from_days
                let z = days + 719_468;
                let era = z.div_euclid(146_097);
                let doe = z - era * 146_097;
                let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
                let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
                let mp = (5 * doy + 2) / 153;
                let d = doy - (153 * mp + 2) / 5 + 1;
                let m = if mp < 10 { mp + 3 } else { mp - 9 };
                (yoe + era * 400 + i64::from(m <= 2), m, d)
            };
            let r = secs.rem_euclid(86_400);
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
                r / 3600,
                r % 3600 / 60,
                r % 60
            );
            proptest::prop_assert_eq!(
                BuildTime::parse_rfc3339(&text).unwrap(),
                BuildTime::from_unix(secs, nanos)
            );
        }
    }

    #[test]
    fn targets_edit_kustomize_and_helm() {
        let u = Update {
            strategy: StrategyKind::Digest,
            old_tag: Some("latest".into()),
            new_tag: "latest".into(),
            old_digest: None,
            new_digest: Some("sha256:cd".into()),
        };
        let k = Target::Kustomize {
            file: "k.yaml".into(),
            name: "web".into(),
        };
        let e = k
            .edit("images:\n- name: web\n  newTag: latest\n", &u)
            .unwrap();
        assert_eq!(
            e.text,
            "images:\n- name: web\n  newTag: latest\n  digest: sha256:cd\n"
        );
        let values = "image:\n  tag: old\n  digest: \"\"\n";
        let h = Target::Helm {
            file: "values.yaml".into(),
            tag_key: "image.tag".into(),
            digest_key: Some("image.digest".into()),
        };
        let e = h.edit(values, &u).unwrap();
        assert_eq!(e.text, "image:\n  tag: latest\n  digest: \"sha256:cd\"\n");
        assert_eq!(e.changes.len(), 2);
        let h = Target::Helm {
            file: "values.yaml".into(),
            tag_key: "image.tag".into(),
            digest_key: None,
        };
        let e = h.edit(values, &u).unwrap();
        assert!(
            e.text.starts_with("image:\n  tag: latest@sha256:cd\n"),
            "{}",
            e.text
        );
    }
}
