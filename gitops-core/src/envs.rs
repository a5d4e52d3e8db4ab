//! Ephemeral environments from git: a git-files generator in the manner of Argo CD's
//! ApplicationSet, a pure planner between two revisions, and a wait-for-ready gate.
//!
//! # The model
//!
//! A change gets its own short-lived environment by adding a file to the manifests
//! repository, for example `apps/staging/manifests/1.1.0.json`, and loses it when the
//! file is deleted. Nothing but the repository says which environments exist:
//!
//! ```text
//! files at a revision ──FilesGenerator (globs)──▶ parameter sets (one per file, or per
//!   element of a file holding an array) ──EnvTemplate──▶ environments, keyed by their
//!   rendered name, each with its manifests
//! environments at revision A, environments at revision B ──diff──▶ EnvPlan
//!   { create, update, delete, unchanged }
//! ```
//!
//! - [`FilesGenerator`] selects files with globs ([`Glob`]; exclude patterns beat include
//!   patterns) and turns each into parameter sets ([`Params`]): the file's keys flattened
//!   with dots (`image.tag`, `hosts.0`), then the path parameters `path` (the file's
//!   directory), `path[n]` (its segments), `path.basename` (the right-most directory),
//!   `path.filename`, `path.basenameNormalized` and `path.filenameNormalized`, optionally
//!   under a prefix (`pathParamPrefix`). Path parameters win over file keys of the same
//!   name, as in ApplicationSet.
//! - [`EnvTemplate`] is the environment's name template and its manifests (any JSON:
//!   a namespace, an Argo CD `Application`, plain workloads) with `{{param}}`
//!   placeholders in strings and object keys. A placeholder naming no parameter is an
//!   error ([`EnvError::UnknownParam`]) naming the file, the key and where in the
//!   template it appears.
//! - [`generate`] renders every environment of one revision; [`diff`] compares two
//!   environment sets: a name only in the new set is created, one only in the old set is
//!   deleted, one in both whose parameters or manifests differ is updated. [`plan`] does
//!   both for the files of two revisions. [`EnvPlan::apply`] turns the old set into the
//!   new one.
//!
//! # Errors: all or nothing
//!
//! A malformed file (not UTF-8, bad JSON or YAML, not an object or an array of objects),
//! an unknown placeholder, an invalid or duplicate environment name is an [`EnvError`]
//! naming the path. Generation does not stop at the first one: every file is read and
//! **every** error is reported ([`GenerateError`], [`PlanError`]), and then **no plan is
//! returned**. A plan is therefore always complete. This is deliberate: skipping a
//! malformed file would make its environment look deleted, and tearing down an
//! environment because someone committed a typo is worse than not creating the next one
//! until the typo is fixed. ApplicationSet behaves the same way (a generator error stops
//! the whole reconcile).
//!
//! # The wait-for-ready gate
//!
//! An environment is ready when every application in it is synced and healthy
//! ([`crate::sync::SyncStatus`], [`crate::sync::HealthStatus`]). [`Gate::evaluate`] is a
//! pure function of observations and `now`: [`Readiness::Failed`] as soon as an
//! application is `Degraded`, [`Readiness::Ready`] when all are `Synced` and `Healthy`,
//! [`Readiness::TimedOut`] at or after the deadline, [`Readiness::Waiting`] otherwise
//! (with what is still pending). [`AppObservation::from_objects`] observes an application
//! from its desired and live objects with [`crate::sync::compare`] and
//! [`crate::sync::app_health`]; [`AppObservation::from_application`] reads an Argo CD
//! `Application`'s status. [`wait_until_ready`] polls with an observe closure and a
//! sleep function the caller provides (no runtime inside), and always terminates.
//!
//! # The git adapter
//!
//! With the `git` feature, [`read_files`] reads the selected files at a revision
//! straight from the object database (no checkout), through
//! [`crate::git::GitRepo::list_files`] and [`crate::git::GitRepo::read_file`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use gitops_core::envs::{EnvTemplate, FilesGenerator, plan};
//!
//! let generator = FilesGenerator::glob("apps/staging/manifests/*.json")?;
//! let template = EnvTemplate::new(
//!     "staging-{{slug}}",
//!     vec![serde_json::json!({
//!         "apiVersion": "v1", "kind": "Namespace",
//!         "metadata": {"name": "staging-{{slug}}", "labels": {"version": "{{version}}"}}
//!     })],
//! )?;
//! let before = BTreeMap::new();
//! let mut after = BTreeMap::new();
//! after.insert(
//!     "apps/staging/manifests/1.1.0.json".to_string(),
//!     br#"{"version": "1.1.0", "slug": "v1-1-0"}"#.to_vec(),
//! );
//! let p = plan(&generator, &template, &before, &after)?;
//! assert_eq!(p.create[0].name, "staging-v1-1-0");
//! assert_eq!(p.create[0].params["path.filename"], "1.1.0.json");
//! assert_eq!(p.create[0].manifests[0]["metadata"]["labels"]["version"], "1.1.0");
//! let p = plan(&generator, &template, &after, &before)?;
//! assert_eq!(p.delete[0].name, "staging-v1-1-0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Deviations from ApplicationSet
//!
//! - Globbing defaults to [`Globbing::Strict`] (ApplicationSet's
//!   `--enable-new-git-file-globbing`: `*` stays inside a path segment, `**` spans
//!   segments); ApplicationSet's default greedy globbing is [`Globbing::Greedy`].
//! - Unknown placeholders are errors; ApplicationSet's fasttemplate mode leaves them in
//!   the output verbatim.
//! - Flattened values: integers render as integers (Go renders every JSON number as a
//!   float64, `1000000` as `1e+06`) and `null` as the empty string (Go: `<nil>`).
//! - Files ending in `.json` are parsed as strict JSON (ApplicationSet parses every file
//!   as YAML); other files as YAML. An empty file gives one parameter set holding only
//!   the path parameters, as in ApplicationSet.
//! - There is no goTemplate mode, no `values` field and no sync policy
//!   (`create-only`, ...): the plan is always the full difference (policy `sync`).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::sync::{self, CompareOptions, HealthStatus, ResourceKey, SyncStatus};
use crate::tag::Stamp;

/// The contents of a revision: path (relative, `/`-separated) → bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// One parameter set: name → value.
pub type Params = BTreeMap<String, String>;

/// Environments by name.
pub type EnvSet = BTreeMap<String, Environment>;

// ---------------------------------------------------------------------------------------
// Globs

/// How `*` treats `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Globbing {
    /// `*`, `?` and classes stay inside one path segment; `**` as a whole segment spans
    /// any number of segments (`a/**/b.json` matches `a/b.json` and `a/x/y/b.json`).
    /// ApplicationSet with `--enable-new-git-file-globbing`.
    #[default]
    Strict,
    /// `*` (and `**`) also match `/`: `dir/*.json` matches nested files too.
    /// ApplicationSet's default.
    Greedy,
}

/// A glob pattern that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad glob {pattern:?} at byte {at}: {reason}")]
pub struct GlobError {
    /// The pattern.
    pub pattern: String,
    /// Byte offset of the problem in the pattern.
    pub at: usize,
    /// What is wrong.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`.
    One {
        cross: bool,
    },
    /// `[...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
        cross: bool,
    },
    /// `*` (raw count kept until segment context is known).
    Stars(usize),
    /// Any run of characters (`cross`: including `/`).
    Star {
        cross: bool,
    },
    /// `**/`: empty, or anything ending in `/`.
    AnyDirs,
}

#[derive(Debug, Clone)]
enum Node {
    Tok(Token),
    Alt(Vec<Vec<Node>>),
}

const MAX_ALTERNATIVES: usize = 256;
const MAX_BRACE_DEPTH: usize = 16;

/// A compiled glob over `/`-separated paths: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, `**`,
/// `{a,b}` alternatives and `\` escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    alternatives: Vec<Vec<Token>>,
}

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str, globbing: Globbing) -> Result<Glob, GlobError> {
        let err = |at, reason| GlobError {
            pattern: pattern.to_string(),
            at,
            reason,
        };
        if pattern.is_empty() {
            return Err(err(0, "empty pattern"));
        }
        let chars: Vec<(usize, char)> = pattern.char_indices().collect();
        let mut i = 0;
        let nodes = parse_seq(&chars, &mut i, 0, false).map_err(|(at, r)| err(at, r))?;
        let mut alternatives = vec![Vec::new()];
        expand(&nodes, &mut alternatives).map_err(|r| err(0, r))?;
        let alternatives = alternatives
            .into_iter()
            .map(|toks| finish(toks, globbing))
            .collect();
        Ok(Glob {
            pattern: pattern.to_string(),
            alternatives,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<char> = path.chars().collect();
        self.alternatives.iter().any(|t| match_tokens(t, &path))
    }
}

type ParseErr = (usize, &'static str);

fn parse_seq(
    chars: &[(usize, char)],
    i: &mut usize,
    depth: usize,
    in_alt: bool,
) -> Result<Vec<Node>, ParseErr> {
    let mut out = Vec::new();
    while let Some(&(at, c)) = chars.get(*i) {
        match c {
            ',' | '}' if in_alt => return Ok(out),
            '{' => {
                if depth >= MAX_BRACE_DEPTH {
                    return Err((at, "alternatives nested too deeply"));
                }
                *i += 1;
                let mut alts = Vec::new();
                loop {
                    alts.push(parse_seq(chars, i, depth + 1, true)?);
                    match chars.get(*i) {
                        Some((_, ',')) => *i += 1,
                        Some((_, '}')) => {
                            *i += 1;
                            break;
                        }
                        _ => return Err((at, "unclosed {")),
                    }
                }
                out.push(Node::Alt(alts));
            }
            '\\' => match chars.get(*i + 1) {
                Some(&(_, e)) => {
                    out.push(Node::Tok(Token::Lit(e)));
                    *i += 2;
                }
                None => return Err((at, "dangling \\")),
            },
            '?' => {
                out.push(Node::Tok(Token::One { cross: false }));
                *i += 1;
            }
            '*' => {
                let mut n = 0;
                while let Some((_, '*')) = chars.get(*i) {
                    n += 1;
                    *i += 1;
                }
                out.push(Node::Tok(Token::Stars(n)));
            }
            '[' => {
                *i += 1;
                let negated = matches!(chars.get(*i), Some((_, '!' | '^')));
                if negated {
                    *i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(&(_, c)) = chars.get(*i) else {
                        return Err((at, "unclosed ["));
                    };
                    if c == ']' && !first {
                        *i += 1;
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        *i += 1;
                        match chars.get(*i) {
                            Some(&(_, e)) => e,
                            None => return Err((at, "unclosed [")),
                        }
                    } else {
                        c
                    };
                    *i += 1;
                    let is_range = matches!(chars.get(*i), Some((_, '-')))
                        && !matches!(chars.get(*i + 1), Some((_, ']')) | None);
                    if is_range {
                        let Some(&(hi_at, hi)) = chars.get(*i + 1) else {
                            return Err((at, "unclosed ["));
                        };
                        if hi < lo {
                            return Err((hi_at, "character range out of order"));
                        }
                        ranges.push((lo, hi));
                        *i += 2;
                    } else {
                        ranges.push((lo, lo));
                    }
                }
                out.push(Node::Tok(Token::Class {
                    negated,
                    ranges,
                    cross: false,
                }));
            }
            _ => {
                out.push(Node::Tok(Token::Lit(c)));
                *i += 1;
            }
        }
    }
    // Inside braces, the caller reports the unclosed brace at its position.
    Ok(out)
}

fn expand(nodes: &[Node], acc: &mut Vec<Vec<Token>>) -> Result<(), &'static str> {
    for node in nodes {
        match node {
            Node::Tok(t) => {
                for a in acc.iter_mut() {
                    a.push(t.clone());
                }
            }
            Node::Alt(alts) => {
                let mut next = Vec::new();
                for alt in alts {
                    let mut branch = acc.clone();
                    expand(alt, &mut branch)?;
                    next.extend(branch);
                    if next.len() > MAX_ALTERNATIVES {
                        return Err("too many {,} alternatives");
                    }
                }
                *acc = next;
            }
        }
    }
    Ok(())
}

/// Resolves `*` runs against their segment context and applies the globbing mode.
fn finish(toks: Vec<Token>, globbing: Globbing) -> Vec<Token> {
    let greedy = globbing == Globbing::Greedy;
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let tok = &toks[i];
        match tok {
            Token::Stars(n) => {
                let at_start = matches!(out.last(), None | Some(Token::Lit('/') | Token::AnyDirs));
                let next = toks.get(i + 1);
                if greedy {
                    out.push(Token::Star { cross: true });
                } else if *n >= 2 && at_start && next == Some(&Token::Lit('/')) {
                    out.push(Token::AnyDirs);
                    i += 1; // the `/` is part of `**/`
                } else if *n >= 2 && at_start && next.is_none() {
                    out.push(Token::Star { cross: true });
                } else {
                    out.push(Token::Star { cross: false });
                }
            }
            Token::One { .. } => out.push(Token::One { cross: greedy }),
            Token::Class {
                negated, ranges, ..
            } => out.push(Token::Class {
                negated: *negated,
                ranges: ranges.clone(),
                cross: greedy,
            }),
            other => out.push(other.clone()),
        }
        i += 1;
    }
    out
}

/// Dynamic programming over (token, position): linear in tokens × path length, no
/// backtracking blow-up.
fn match_tokens(toks: &[Token], path: &[char]) -> bool {
    let n = path.len();
    let mut next: Vec<bool> = (0..=n).map(|j| j == n).collect();
    let mut cur = vec![false; n + 1];
    for tok in toks.iter().rev() {
        match tok {
            Token::Star { cross } => {
                cur[n] = next[n];
                for j in (0..n).rev() {
                    cur[j] = next[j] || ((*cross || path[j] != '/') && cur[j + 1]);
                }
            }
            Token::AnyDirs => {
                let mut q = false;
                cur[n] = next[n];
                for j in (0..n).rev() {
                    q = q || (path[j] == '/' && next[j + 1]);
                    cur[j] = next[j] || q;
                }
            }
            Token::Stars(_) => {
                // Never left after `finish`; match like a segment `*`.
                cur[n] = next[n];
                for j in (0..n).rev() {
                    cur[j] = next[j] || (path[j] != '/' && cur[j + 1]);
                }
            }
            single => {
                cur[n] = false;
                for (j, &c) in path.iter().enumerate() {
                    let ok = match single {
                        Token::Lit(l) => c == *l,
                        Token::One { cross } => *cross || c != '/',
                        Token::Class {
                            negated,
                            ranges,
                            cross,
                        } => {
                            (*cross || c != '/')
                                && ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
                                    != *negated
                        }
                        _ => false,
                    };
                    cur[j] = ok && next[j + 1];
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    next[0]
}

// ---------------------------------------------------------------------------------------
// Errors

/// Why a file, or an environment rendered from it, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Not UTF-8, or not valid JSON / YAML.
    #[error("{path}: cannot parse: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column where it gives them).
        message: String,
    },
    /// The file (or an element of its top-level array) is not an object.
    #[error("{path}{}: expected an object or an array of objects, found {found}", element_suffix(.element))]
    NotAnObject {
        /// The file.
        path: String,
        /// The array element, when the file holds an array.
        element: Option<usize>,
        /// What was found (`string`, `number`, ...).
        found: &'static str,
    },
    /// A template placeholder names no parameter of this file.
    #[error("{path}: unknown parameter {{{{{key}}}}} in the template at {at}")]
    UnknownParam {
        /// The file.
        path: String,
        /// The placeholder's key.
        key: String,
        /// Where in the template (`name`, or a JSON pointer into the manifests).
        at: String,
    },
    /// Two object keys of the template rendered to the same key.
    #[error("{path}: template keys at {at} both render to {key:?}")]
    DuplicateKey {
        /// The file.
        path: String,
        /// The rendered key.
        key: String,
        /// The object's JSON pointer in the manifests.
        at: String,
    },
    /// The rendered environment name is not a DNS-1123 subdomain.
    #[error("{path}: environment name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The file.
        path: String,
        /// The rendered name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two parameter sets rendered the same environment name.
    #[error("environment {name:?} is generated by both {first} and {second}")]
    DuplicateName {
        /// The name.
        name: String,
        /// The first file generating it (element suffix `#n` for arrays).
        first: String,
        /// The second one.
        second: String,
    },
}

impl EnvError {
    /// The file the error is about (the second file for [`EnvError::DuplicateName`]).
    pub fn path(&self) -> &str {
        match self {
            EnvError::Parse { path, .. }
            | EnvError::NotAnObject { path, .. }
            | EnvError::UnknownParam { path, .. }
            | EnvError::DuplicateKey { path, .. }
            | EnvError::InvalidName { path, .. } => path,
            EnvError::DuplicateName { second, .. } => second,
        }
    }
}

fn summary(errors: &[EnvError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn element_suffix(element: &Option<usize>) -> String {
    element.map(|e| format!(" element {e}")).unwrap_or_default()
}

/// Every error of one revision; nothing was generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct GenerateError {
    /// The errors, in path order.
    pub errors: Vec<EnvError>,
}

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} error(s), no environments generated: {}",
            self.errors.len(),
            summary(&self.errors)
        )
    }
}

/// Every error of either revision; no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlanError {
    /// The errors at the old revision.
    pub old: Vec<EnvError>,
    /// The errors at the new revision.
    pub new: Vec<EnvError>,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no plan: {} error(s) at the old revision, {} at the new one: {}",
            self.old.len(),
            self.new.len(),
            summary(&[self.old.as_slice(), self.new.as_slice()].concat())
        )
    }
}

/// A template placeholder that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template at {at}: {reason}")]
pub struct TemplateError {
    /// Where (`name`, or a JSON pointer into the manifests).
    pub at: String,
    /// What is wrong.
    pub reason: &'static str,
}

// ---------------------------------------------------------------------------------------
// The generator

/// The git-files generator: which files, and how their parameters are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesGenerator {
    globbing: Globbing,
    include: Vec<Glob>,
    exclude: Vec<Glob>,
    path_param_prefix: Option<String>,
}

impl FilesGenerator {
    /// A generator selecting nothing yet.
    pub fn new(globbing: Globbing) -> Self {
        FilesGenerator {
            globbing,
            include: Vec::new(),
            exclude: Vec::new(),
            path_param_prefix: None,
        }
    }

    /// A generator selecting the files matching `pattern` ([`Globbing::Strict`]).
    pub fn glob(pattern: &str) -> Result<Self, GlobError> {
        FilesGenerator::new(Globbing::Strict).include(pattern)
    }

    /// Also selects the files matching `pattern`.
    pub fn include(mut self, pattern: &str) -> Result<Self, GlobError> {
        self.include.push(Glob::new(pattern, self.globbing)?);
        Ok(self)
    }

    /// Drops the files matching `pattern` (excludes beat includes).
    pub fn exclude(mut self, pattern: &str) -> Result<Self, GlobError> {
        self.exclude.push(Glob::new(pattern, self.globbing)?);
        Ok(self)
    }

    /// Names the path parameters `<prefix>.path...` (ApplicationSet's
    /// `pathParamPrefix`).
    #[must_use]
    pub fn path_param_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_param_prefix = Some(prefix.into());
        self
    }

    /// Whether `path` is selected.
    pub fn selects(&self, path: &str) -> bool {
        self.include.iter().any(|g| g.matches(path))
            && !self.exclude.iter().any(|g| g.matches(path))
    }

    /// The parameter sets of one file: one per object (a file may hold one object or an
    /// array of them; an empty file or array gives one set of path parameters only).
    pub fn param_sets(&self, path: &str, content: &[u8]) -> Result<Vec<Params>, EnvError> {
        let objects = parse_file(path, content)?;
        let mut base = Params::new();
        path_params(self.path_param_prefix.as_deref(), path, &mut base);
        Ok(objects
            .into_iter()
            .map(|obj| {
                let mut params = Params::new();
                for (k, v) in &obj {
                    flatten(k, v, &mut params);
                }
                params.extend(base.iter().map(|(k, v)| (k.clone(), v.clone())));
                params
            })
            .collect())
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn parse_file(path: &str, content: &[u8]) -> Result<Vec<Map<String, Value>>, EnvError> {
    let parse_err = |message: String| EnvError::Parse {
        path: path.to_string(),
        message,
    };
    let text = std::str::from_utf8(content)
        .map_err(|e| parse_err(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let value = if text.trim().is_empty() {
        Value::Null
    } else if path.to_ascii_lowercase().ends_with(".json") {
        serde_json::from_str::<Value>(text).map_err(|e| parse_err(e.to_string()))?
    } else {
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_str_with_options::<Value>(text, options)
            .map_err(|e| parse_err(e.to_string()))?
    };
    let not_object = |element, v: &Value| EnvError::NotAnObject {
        path: path.to_string(),
        element,
        found: kind_of(v),
    };
    match value {
        Value::Null => Ok(vec![Map::new()]),
        Value::Object(m) => Ok(vec![m]),
        Value::Array(items) if items.is_empty() => Ok(vec![Map::new()]),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(m) => Ok(m),
                other => Err(not_object(Some(i), &other)),
            })
            .collect(),
        other => Err(not_object(None, &other)),
    }
}

/// Flattens with dots (`a.b`, `list.0`); empty objects and arrays give nothing.
fn flatten(key: &str, v: &Value, out: &mut Params) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{key}.{k}"), v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{key}.{i}"), v, out);
            }
        }
        Value::String(s) => {
            out.insert(key.to_string(), s.clone());
        }
        Value::Bool(b) => {
            out.insert(key.to_string(), b.to_string());
        }
        Value::Number(n) => {
            out.insert(key.to_string(), n.to_string());
        }
        Value::Null => {
            out.insert(key.to_string(), String::new());
        }
    }
}

/// Go's `path.Dir` and `path.Base` for the clean relative paths git stores.
fn dir_and_base(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", base)) => ("/", base),
        Some((dir, base)) => (dir, base),
        None => (".", path),
    }
}

fn path_params(prefix: Option<&str>, file: &str, out: &mut Params) {
    let name = match prefix {
        Some(p) if !p.is_empty() => format!("{p}.path"),
        _ => "path".to_string(),
    };
    let (dir, filename) = dir_and_base(file);
    let basename = dir_and_base(dir).1;
    out.insert(name.clone(), dir.to_string());
    out.insert(format!("{name}.basename"), basename.to_string());
    out.insert(format!("{name}.filename"), filename.to_string());
    out.insert(
        format!("{name}.basenameNormalized"),
        sanitize_name(basename),
    );
    out.insert(
        format!("{name}.filenameNormalized"),
        sanitize_name(filename),
    );
    for (i, seg) in dir.split('/').enumerate() {
        if !seg.is_empty() {
            out.insert(format!("{name}[{i}]"), seg.to_string());
        }
    }
}

/// ApplicationSet's name normalisation: lowercase, every character outside `[-a-z0-9.]`
/// replaced by `-`, at most 253 characters, leading and trailing `-` and `.` trimmed.
pub fn sanitize_name(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(253)
        .collect();
    s.trim_matches(|c| c == '-' || c == '.').to_string()
}

/// Why `name` is not a DNS-1123 subdomain (what Kubernetes object names must be).
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > 253 {
        return Some("longer than 253 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Some("only lowercase letters, digits, '-' and '.' are allowed");
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(name.bytes().next()) || !alnum(name.bytes().last()) {
        return Some("must start and end with a letter or digit");
    }
    None
}

// ---------------------------------------------------------------------------------------
// The template

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Param(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Text {
    segs: Vec<Seg>,
    at: String,
}

impl Text {
    fn parse(s: &str, at: String) -> Result<Text, TemplateError> {
        let mut segs = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segs.push(Seg::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError {
                    at,
                    reason: "unclosed {{",
                });
            };
            let key = after[..close].trim();
            if key.is_empty() {
                return Err(TemplateError {
                    at,
                    reason: "empty placeholder {{}}",
                });
            }
            segs.push(Seg::Param(key.to_string()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segs.push(Seg::Lit(rest.to_string()));
        }
        Ok(Text { segs, at })
    }

    fn render(&self, path: &str, params: &Params) -> Result<String, EnvError> {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Lit(s) => out.push_str(s),
                Seg::Param(k) => match params.get(k) {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(EnvError::UnknownParam {
                            path: path.to_string(),
                            key: k.clone(),
                            at: self.at.clone(),
                        });
                    }
                },
            }
        }
        Ok(out)
    }

    fn keys<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        for seg in &self.segs {
            if let Seg::Param(k) = seg {
                out.insert(k);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tree {
    Str(Text),
    Obj(Vec<(Text, Tree)>, String),
    Arr(Vec<Tree>),
    Plain(Value),
}

fn pointer_token(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

impl Tree {
    fn compile(v: &Value, at: &str) -> Result<Tree, TemplateError> {
        Ok(match v {
            Value::String(s) => Tree::Str(Text::parse(s, at.to_string())?),
            Value::Array(a) => Tree::Arr(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| Tree::compile(v, &format!("{at}/{i}")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Tree::Obj(
                m.iter()
                    .map(|(k, v)| {
                        let child = format!("{at}/{}", pointer_token(k));
                        Ok((Text::parse(k, child.clone())?, Tree::compile(v, &child)?))
                    })
                    .collect::<Result<_, _>>()?,
                at.to_string(),
            ),
            other => Tree::Plain(other.clone()),
        })
    }

    fn render(&self, path: &str, params: &Params) -> Result<Value, EnvError> {
        Ok(match self {
            Tree::Str(t) => Value::String(t.render(path, params)?),
            Tree::Arr(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.render(path, params))
                    .collect::<Result<_, _>>()?,
            ),
            Tree::Obj(entries, at) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    let key = k.render(path, params)?;
                    let value = v.render(path, params)?;
                    if m.insert(key.clone(), value).is_some() {
                        return Err(EnvError::DuplicateKey {
                            path: path.to_string(),
                            key,
                            at: if at.is_empty() {
                                "/".into()
                            } else {
                                at.clone()
                            },
                        });
                    }
                }
                Value::Object(m)
            }
            Tree::Plain(v) => v.clone(),
        })
    }

    fn keys<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Tree::Str(t) => t.keys(out),
            Tree::Arr(items) => items.iter().for_each(|t| t.keys(out)),
            Tree::Obj(entries, _) => {
                for (k, v) in entries {
                    k.keys(out);
                    v.keys(out);
                }
            }
            Tree::Plain(_) => {}
        }
    }
}

/// An environment's name template and manifests, compiled once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvTemplate {
    name: Text,
    manifests: Tree,
}

impl EnvTemplate {
    /// Compiles the name template (e.g. `staging-{{slug}}`) and the manifests (any JSON;
    /// `{{param}}` placeholders in strings and object keys, spaces inside the braces
    /// ignored). Placeholders are checked for syntax here and against each file's
    /// parameters when rendering.
    pub fn new(name: &str, manifests: Vec<Value>) -> Result<Self, TemplateError> {
        Ok(EnvTemplate {
            name: Text::parse(name, "name".to_string())?,
            manifests: Tree::compile(&Value::Array(manifests), "")?,
        })
    }

    /// The parameter names the template uses.
    pub fn params(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.name.keys(&mut out);
        self.manifests.keys(&mut out);
        out
    }

    /// Renders the environment of one parameter set read from `path`.
    pub fn render(
        &self,
        path: &str,
        element: usize,
        params: Params,
    ) -> Result<Environment, EnvError> {
        let name = self.name.render(path, &params)?;
        if let Some(reason) = name_problem(&name) {
            return Err(EnvError::InvalidName {
                path: path.to_string(),
                name,
                reason,
            });
        }
        let manifests = match self.manifests.render(path, &params)? {
            Value::Array(items) => items,
            other => vec![other],
        };
        Ok(Environment {
            name,
            source: path.to_string(),
            element,
            params,
            manifests,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Environments and the plan

/// One environment, as generated at a revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// Its name (the rendered name template; unique within a revision).
    pub name: String,
    /// The file it comes from.
    pub source: String,
    /// Its element in the file (0 unless the file holds an array).
    pub element: usize,
    /// Its parameters (file keys and path parameters).
    pub params: Params,
    /// Its rendered manifests.
    pub manifests: Vec<Value>,
}

impl Environment {
    fn origin(&self) -> String {
        if self.element == 0 {
            self.source.clone()
        } else {
            format!("{}#{}", self.source, self.element)
        }
    }
}

/// Every environment of one revision (`files` holds at least the selected files; others
/// are ignored), or every error.
pub fn generate(
    generator: &FilesGenerator,
    template: &EnvTemplate,
    files: &Files,
) -> Result<EnvSet, GenerateError> {
    let mut envs = EnvSet::new();
    let mut errors = Vec::new();
    for (path, content) in files.iter().filter(|(p, _)| generator.selects(p)) {
        let sets = match generator.param_sets(path, content) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for (element, params) in sets.into_iter().enumerate() {
            let env = match template.render(path, element, params) {
                Ok(env) => env,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if let Some(first) = envs.get(&env.name) {
                errors.push(EnvError::DuplicateName {
                    name: env.name.clone(),
                    first: first.origin(),
                    second: env.origin(),
                });
                continue;
            }
            envs.insert(env.name.clone(), env);
        }
    }
    if errors.is_empty() {
        Ok(envs)
    } else {
        Err(GenerateError { errors })
    }
}

/// An environment whose parameters or manifests changed.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvUpdate {
    /// As it was.
    pub before: Environment,
    /// As it becomes.
    pub after: Environment,
    /// The parameters added, removed or changed, sorted.
    pub changed: Vec<String>,
}

/// What to do to go from one environment set to another. Every list is sorted by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvPlan {
    /// New environments.
    pub create: Vec<Environment>,
    /// Changed environments.
    pub update: Vec<EnvUpdate>,
    /// Environments to tear down (as they were).
    pub delete: Vec<Environment>,
    /// Names of the environments left as they are.
    pub unchanged: Vec<String>,
}

impl EnvPlan {
    /// Nothing to create, update or delete.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    /// Applies the plan to `set` (the set it was planned from becomes the target set).
    pub fn apply(&self, set: &mut EnvSet) {
        for env in &self.delete {
            set.remove(&env.name);
        }
        for env in &self.create {
            set.insert(env.name.clone(), env.clone());
        }
        for u in &self.update {
            set.insert(u.after.name.clone(), u.after.clone());
        }
    }
}

/// The plan from `current` to `desired`: names only in `desired` are created, names only
/// in `current` deleted, names in both updated when their parameters or manifests differ.
pub fn diff(current: &EnvSet, desired: &EnvSet) -> EnvPlan {
    let mut plan = EnvPlan::default();
    for (name, want) in desired {
        match current.get(name) {
            None => plan.create.push(want.clone()),
            Some(have) if have.params == want.params && have.manifests == want.manifests => {
                plan.unchanged.push(name.clone());
            }
            Some(have) => {
                let keys: BTreeSet<&String> =
                    have.params.keys().chain(want.params.keys()).collect();
                let changed = keys
                    .into_iter()
                    .filter(|k| have.params.get(*k) != want.params.get(*k))
                    .cloned()
                    .collect();
                plan.update.push(EnvUpdate {
                    before: have.clone(),
                    after: want.clone(),
                    changed,
                });
            }
        }
    }
    for (name, have) in current {
        if !desired.contains_key(name) {
            plan.delete.push(have.clone());
        }
    }
    plan
}

/// The plan between two revisions' files, or every error of both.
pub fn plan(
    generator: &FilesGenerator,
    template: &EnvTemplate,
    old: &Files,
    new: &Files,
) -> Result<EnvPlan, PlanError> {
    match (
        generate(generator, template, old),
        generate(generator, template, new),
    ) {
        (Ok(a), Ok(b)) => Ok(diff(&a, &b)),
        (a, b) => Err(PlanError {
            old: a.err().map(|e| e.errors).unwrap_or_default(),
            new: b.err().map(|e| e.errors).unwrap_or_default(),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// The wait-for-ready gate

/// What is known about one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppObservation {
    /// The application.
    pub app: String,
    /// Its sync status (`None`: unknown or not observed).
    pub sync: Option<SyncStatus>,
    /// Its health (`None`: unknown or not observed).
    pub health: Option<HealthStatus>,
    /// Why it is not ready (empty when it is, or when nothing says).
    pub message: String,
}

impl AppObservation {
    /// An observation.
    pub fn new(
        app: impl Into<String>,
        sync: Option<SyncStatus>,
        health: Option<HealthStatus>,
    ) -> Self {
        AppObservation {
            app: app.into(),
            sync,
            health,
            message: String::new(),
        }
    }

    /// Observes an application from its desired objects and the live objects it tracks
    /// ([`sync::compare`] without ignored fields, [`sync::app_health`]). The message
    /// names the first out-of-sync resource, else the worst resource's health message.
    pub fn from_objects(app: impl Into<String>, desired: &[Value], live: &[Value]) -> Self {
        let cmp = sync::compare(desired, live, &CompareOptions::default());
        let counted = desired
            .iter()
            .filter(|o| ResourceKey::of(o).is_some())
            .count();
        let health = sync::app_health(counted, live);
        let describe = |k: &ResourceKey| format!("{}/{}", k.kind, k.name);
        let message = if let Some(r) = cmp
            .resources
            .iter()
            .find(|r| r.status == SyncStatus::OutOfSync)
        {
            format!(
                "{} is out of sync ({})",
                describe(&r.key),
                r.reason.as_deref().unwrap_or("differs")
            )
        } else {
            live.iter()
                .filter_map(|o| sync::health(o).map(|h| (h, ResourceKey::of(o))))
                .filter(|(h, _)| h.status == health && health != HealthStatus::Healthy)
                .map(|(h, k)| match k {
                    Some(k) if h.message.is_empty() => {
                        format!("{} is {:?}", describe(&k), h.status)
                    }
                    Some(k) => format!("{}: {}", describe(&k), h.message),
                    None => h.message,
                })
                .next()
                .unwrap_or_default()
        };
        AppObservation {
            app: app.into(),
            sync: Some(cmp.status),
            health: Some(health),
            message,
        }
    }

    /// Reads an Argo CD `Application`'s `status.sync.status` and `status.health`
    /// (`Unknown` or absent fields are `None`). `None` without `metadata.name`.
    pub fn from_application(app: &Value) -> Option<Self> {
        let name = app.pointer("/metadata/name")?.as_str()?;
        let sync = match app.pointer("/status/sync/status").and_then(Value::as_str) {
            Some("Synced") => Some(SyncStatus::Synced),
            Some("OutOfSync") => Some(SyncStatus::OutOfSync),
            _ => None,
        };
        let health = app
            .pointer("/status/health/status")
            .and_then(|h| serde_json::from_value::<HealthStatus>(h.clone()).ok())
            .filter(|h| *h != HealthStatus::Unknown);
        let message = app
            .pointer("/status/health/message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Some(AppObservation {
            app: name.to_string(),
            sync,
            health,
            message,
        })
    }

    fn is_ready(&self) -> bool {
        self.sync == Some(SyncStatus::Synced) && self.health == Some(HealthStatus::Healthy)
    }
}

/// Whether an environment may move on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// Every application is synced and healthy.
    Ready,
    /// Not yet; the deadline has not passed.
    Waiting {
        /// The applications not ready yet (unobserved ones with `None`s), by name.
        pending: Vec<AppObservation>,
    },
    /// The deadline passed with applications still pending.
    TimedOut {
        /// The deadline.
        deadline: Stamp,
        /// The applications not ready, by name.
        pending: Vec<AppObservation>,
    },
    /// An application is degraded (the first one by name).
    Failed {
        /// The application.
        app: String,
        /// Its health message.
        message: String,
    },
}

impl Readiness {
    /// Whether waiting is over (anything but [`Readiness::Waiting`]).
    pub fn is_final(&self) -> bool {
        !matches!(self, Readiness::Waiting { .. })
    }
}

/// The applications an environment needs ready, and by when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// The applications.
    pub apps: BTreeSet<String>,
    /// The deadline.
    pub deadline: Stamp,
}

impl Gate {
    /// A gate over `apps`.
    pub fn new(apps: impl IntoIterator<Item = impl Into<String>>, deadline: Stamp) -> Self {
        Gate {
            apps: apps.into_iter().map(Into::into).collect(),
            deadline,
        }
    }

    /// The verdict for `observed` at `now`, in this order: any application `Degraded` →
    /// [`Readiness::Failed`]; all synced and healthy → [`Readiness::Ready`] (even at or
    /// after the deadline); `now >= deadline` → [`Readiness::TimedOut`]; else
    /// [`Readiness::Waiting`]. Observations of other applications are ignored (of
    /// duplicates the last counts); an application never observed is pending. A gate
    /// without applications is ready.
    pub fn evaluate(&self, observed: &[AppObservation], now: Stamp) -> Readiness {
        let by_app: BTreeMap<&str, &AppObservation> = observed
            .iter()
            .filter(|o| self.apps.contains(&o.app))
            .map(|o| (o.app.as_str(), o))
            .collect();
        if let Some(o) = by_app
            .values()
            .find(|o| o.health == Some(HealthStatus::Degraded))
        {
            return Readiness::Failed {
                app: o.app.clone(),
                message: o.message.clone(),
            };
        }
        let pending: Vec<AppObservation> = self
            .apps
            .iter()
            .filter_map(|app| match by_app.get(app.as_str()) {
                Some(o) if o.is_ready() => None,
                Some(o) => Some((*o).clone()),
                None => Some(AppObservation::new(app.clone(), None, None)),
            })
            .collect();
        if pending.is_empty() {
            Readiness::Ready
        } else if now >= self.deadline {
            Readiness::TimedOut {
                deadline: self.deadline,
                pending,
            }
        } else {
            Readiness::Waiting { pending }
        }
    }
}

/// One round of observations and when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// When.
    pub at: Stamp,
    /// What was seen.
    pub apps: Vec<AppObservation>,
}

/// Polls until the gate's verdict is final: `observe`, evaluate, and while
/// [`Readiness::Waiting`] `sleep` for `interval` (at least one second, never past the
/// deadline) and observe again. An observe error ends the wait with that error.
///
/// Runtime-agnostic: `sleep` is the caller's (`tokio::time::sleep`, a virtual clock in
/// tests). It always terminates: time is taken as the later of the observation's `at` and
/// the first observation's `at` plus everything slept, so even a clock that does not move
/// reaches the deadline.
pub async fn wait_until_ready<E, O, OF, S, SF>(
    gate: &Gate,
    interval: Duration,
    mut observe: O,
    mut sleep: S,
) -> Result<Readiness, E>
where
    O: FnMut() -> OF,
    OF: Future<Output = Result<Observation, E>>,
    S: FnMut(Duration) -> SF,
    SF: Future<Output = ()>,
{
    let interval = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX).max(1);
    let mut floor: Option<Stamp> = None;
    loop {
        let obs = observe().await?;
        let now = match floor {
            Some(f) if f > obs.at => f,
            _ => obs.at,
        };
        let verdict = gate.evaluate(&obs.apps, now);
        if verdict.is_final() {
            return Ok(verdict);
        }
        let remaining = gate.deadline.unix_secs() - now.unix_secs();
        let secs = interval.min(remaining).max(1);
        sleep(Duration::from_secs(secs.unsigned_abs())).await;
        floor = Some(now.add_secs(secs));
    }
}

// ---------------------------------------------------------------------------------------
// The git adapter

/// Reads the files `generator` selects at `rev` (a SHA, tag, branch or `HEAD`) without a
/// checkout: the commit it resolves to, and the files.
#[cfg(feature = "git")]
pub fn read_files(
    repo: &crate::git::GitRepo,
    rev: &str,
    generator: &FilesGenerator,
) -> Result<(crate::tag::CommitId, Files), crate::git::GitError> {
    let commit = repo.resolve(rev)?;
    let mut files = Files::new();
    for path in repo.list_files(&commit)? {
        if generator.selects(&path) {
            let content = repo.read_file(&commit, &path)?;
            files.insert(path, content);
        }
    }
    Ok((commit, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn strict(p: &str) -> Glob {
        Glob::new(p, Globbing::Strict).unwrap()
    }

    #[test]
    fn strict_globs_keep_star_inside_a_segment() {
        let g = strict("apps/staging/manifests/*.json");
        assert!(g.matches("apps/staging/manifests/1.2.3.json"));
        assert!(!g.matches("apps/staging/manifests/old/1.2.3.json"));
        assert!(!g.matches("apps/staging/manifests/1.2.3.yaml"));
        let g = strict("apps/**/manifests/*.json");
        assert!(g.matches("apps/manifests/a.json"));
        assert!(g.matches("apps/eu/staging/manifests/a.json"));
        assert!(!g.matches("other/manifests/a.json"));
        let g = strict("apps/**");
        assert!(g.matches("apps/a/b/c.json"));
        assert!(!g.matches("app/a.json"));
        let g = strict("**/*.{json,yaml}");
        assert!(g.matches("x.json") && g.matches("a/b/x.yaml") && !g.matches("a/x.yml"));
        let g = strict("v[0-9].?.[!x]");
        assert!(g.matches("v1.2.3") && !g.matches("v1.2.x") && !g.matches("va.2.3"));
        assert!(!strict("a?b").matches("a/b"));
        assert!(strict("a\\*b").matches("a*b") && !strict("a\\*b").matches("axb"));
        // `**` inside a segment is a plain `*`.
        assert!(!strict("a**b").matches("a/b") && strict("a**b").matches("axxb"));
    }

    #[test]
    fn greedy_globs_cross_directories() {
        let g = Glob::new("apps/*.json", Globbing::Greedy).unwrap();
        assert!(g.matches("apps/x/y.json"));
        assert!(!strict("apps/*.json").matches("apps/x/y.json"));
    }

    #[test]
    fn excludes_beat_includes() {
        let g = FilesGenerator::glob("apps/**/*.json")
            .unwrap()
            .include("extra/*.yaml")
            .unwrap()
            .exclude("apps/**/old/*")
            .unwrap();
        assert!(g.selects("apps/a/x.json"));
        assert!(!g.selects("apps/a/old/x.json"));
        assert!(g.selects("extra/e.yaml"));
        assert!(!g.selects("extra/e.json"));
        assert!(!FilesGenerator::new(Globbing::Strict).selects("a"));
    }

    #[test]
    fn bad_globs_are_typed_errors() {
        for (p, at, reason) in [
            ("a/[bc", 2, "unclosed ["),
            ("a/{b,c", 2, "unclosed {"),
            ("a\\", 1, "dangling \\"),
            ("[z-a]", 3, "character range out of order"),
            ("", 0, "empty pattern"),
        ] {
            let e = Glob::new(p, Globbing::Strict).unwrap_err();
            assert_eq!((e.at, e.reason), (at, reason), "{p}");
        }
        let many = "{a,b}".repeat(9);
        assert_eq!(
            Glob::new(&many, Globbing::Strict).unwrap_err().reason,
            "too many {,} alternatives"
        );
    }

    #[test]
    fn params_follow_the_git_files_generator() {
        let g = FilesGenerator::glob("apps/**/*.yaml").unwrap();
        let yaml = b"image:\n  tag: \"1.2\"\n  pull: true\nhosts: [a.example, b.example]\nreplicas: 3\nratio: 0.5\nnote: ~\nempty: {}\npath: ignored\n";
        let sets = g.param_sets("apps/Staging_EU/v1.2.yaml", yaml).unwrap();
        assert_eq!(sets.len(), 1);
        let p = &sets[0];
        let want: Params = [
            ("image.tag", "1.2"),
            ("image.pull", "true"),
            ("hosts.0", "a.example"),
            ("hosts.1", "b.example"),
            ("replicas", "3"),
            ("ratio", "0.5"),
            ("note", ""),
            ("path", "apps/Staging_EU"),
            ("path[0]", "apps"),
            ("path[1]", "Staging_EU"),
            ("path.basename", "Staging_EU"),
            ("path.basenameNormalized", "staging-eu"),
            ("path.filename", "v1.2.yaml"),
            ("path.filenameNormalized", "v1.2.yaml"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(p, &want);
        let g = g.path_param_prefix("src");
        let p = &g.param_sets("top.json", b"[]").unwrap()[0];
        assert_eq!(p["src.path"], ".");
        assert_eq!(p["src.path.basename"], ".");
        assert_eq!(p["src.path.filename"], "top.json");
        assert_eq!(p["src.path[0]"], ".");
        let sets = g
            .param_sets("a/b.json", br#"[{"n": 1}, {"n": 2}]"#)
            .unwrap();
        assert_eq!(sets.iter().map(|s| &s["n"]).collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(g.param_sets("a/b.yaml", b"").unwrap().len(), 1);
    }

    #[test]
    fn sanitize_matches_applicationset() {
        assert_eq!(
            sanitize_name("--Feature_X/1.2.3.JSON.."),
            "feature-x-1.2.3.json"
        );
        assert_eq!(sanitize_name(&"a".repeat(300)).len(), 253);
        assert_eq!(sanitize_name("__"), "");
    }

    #[test]
    fn malformed_files_name_their_path() {
        let g = FilesGenerator::glob("envs/*").unwrap();
        let parse = |p: &str, c: &[u8]| g.param_sets(p, c).unwrap_err();
        assert!(
            matches!(parse("envs/a.json", b"{\"a\": "), EnvError::Parse { path, .. } if path == "envs/a.json")
        );
        assert!(
            matches!(parse("envs/a.yaml", b"a: [1, 2"), EnvError::Parse { path, .. } if path == "envs/a.yaml")
        );
        assert!(
            matches!(parse("envs/a.yaml", b"\xff\xfe"), EnvError::Parse { message, .. } if message == "not UTF-8 at byte 0")
        );
        assert_eq!(
            parse("envs/a.json", b"\"text\""),
            EnvError::NotAnObject {
                path: "envs/a.json".into(),
                element: None,
                found: "string"
            }
        );
        assert_eq!(
            parse("envs/a.yaml", b"- a: 1\n- 2\n"),
            EnvError::NotAnObject {
                path: "envs/a.yaml".into(),
                element: Some(1),
                found: "number"
            }
        );
        assert_eq!(
            parse("envs/a.yaml", b"- a: 1\n- 2\n").to_string(),
            "envs/a.yaml element 1: expected an object or an array of objects, found number"
        );
    }

    fn template() -> EnvTemplate {
        EnvTemplate::new(
            "staging-{{ slug }}",
            vec![
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "staging-{{slug}}"}}),
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "staging-{{slug}}",
                                    "labels": {"from/{{path.basename}}": "{{path.filename}}"}},
                       "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "web:{{version}}"}]}}}}),
            ],
        )
        .unwrap()
    }

    fn files(entries: &[(&str, &str)]) -> Files {
        entries
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn template_renders_strings_and_keys() {
        let t = template();
        assert_eq!(
            t.params().into_iter().collect::<Vec<_>>(),
            ["path.basename", "path.filename", "slug", "version"]
        );
        let g = FilesGenerator::glob("m/*.json").unwrap();
        let envs = generate(
            &g,
            &t,
            &files(&[
                ("m/1.json", r#"{"slug": "v1", "version": "1.0"}"#),
                ("other/x", "junk"),
            ]),
        )
        .unwrap();
        let env = &envs["staging-v1"];
        assert_eq!(env.manifests[1]["metadata"]["labels"]["from/m"], "1.json");
        assert_eq!(
            env.manifests[1]["spec"]["template"]["spec"]["containers"][0]["image"],
            "web:1.0"
        );
        assert_eq!(env.manifests[1]["spec"]["replicas"], 1);
        assert_eq!(
            EnvTemplate::new("x", vec![json!({"a": "{{b"})]).unwrap_err(),
            TemplateError {
                at: "/0/a".into(),
                reason: "unclosed {{"
            }
        );
        assert_eq!(EnvTemplate::new("{{ }}", vec![]).unwrap_err().at, "name");
    }

    #[test]
    fn render_errors_are_typed_and_all_reported() {
        let g = FilesGenerator::glob("m/*.json").unwrap();
        let err = generate(
            &g,
            &template(),
            &files(&[
                ("m/1.json", r#"{"slug": "v1"}"#),
                ("m/2.json", r#"{"slug": "v2", "version": "2"}"#),
                ("m/3.json", r#"{"slug": "V_3", "version": "3"}"#),
                ("m/4.json", r#"{"slug": "v2", "version": "4"}"#),
                ("m/5.json", "nope"),
            ]),
        )
        .unwrap_err();
        assert_eq!(
            err.errors,
            vec![
                EnvError::UnknownParam {
                    path: "m/1.json".into(),
                    key: "version".into(),
                    at: "/1/spec/template/spec/containers/0/image".into()
                },
                EnvError::InvalidName {
                    path: "m/3.json".into(),
                    name: "staging-V_3".into(),
                    reason: "only lowercase letters, digits, '-' and '.' are allowed"
                },
                EnvError::DuplicateName {
                    name: "staging-v2".into(),
                    first: "m/2.json".into(),
                    second: "m/4.json".into()
                },
                EnvError::Parse {
                    path: "m/5.json".into(),
                    message: "expected ident at line 1 column 2".into()
                },
            ]
        );
        assert_eq!(err.errors[2].path(), "m/4.json");
        assert!(
            err.to_string().starts_with(
                "4 error(s), no environments generated: m/1.json: unknown parameter {{version}}"
            ),
            "{err}"
        );
        let dup = EnvTemplate::new("e", vec![json!({"{{a}}": 1, "{{b}}": 2})]).unwrap();
        let err =
            generate(&g, &dup, &files(&[("m/1.json", r#"{"a": "k", "b": "k"}"#)])).unwrap_err();
        assert_eq!(
            err.errors,
            vec![EnvError::DuplicateKey {
                path: "m/1.json".into(),
                key: "k".into(),
                at: "/0".into()
            }]
        );
    }

    #[test]
    fn plan_creates_updates_and_deletes() {
        let g = FilesGenerator::glob("m/*.json").unwrap();
        let t = template();
        let old = files(&[
            ("m/1.json", r#"{"slug": "v1", "version": "1"}"#),
            ("m/2.json", r#"{"slug": "v2", "version": "2"}"#),
            ("m/3.json", r#"{"slug": "v3", "version": "3"}"#),
        ]);
        let new = files(&[
            ("m/1.json", r#"{"slug": "v1", "version": "1"}"#),
            (
                "m/2.json",
                r#"{"slug": "v2", "version": "2.1", "extra": "x"}"#,
            ),
            ("m/4.json", r#"{"slug": "v4", "version": "4"}"#),
        ]);
        let p = plan(&g, &t, &old, &new).unwrap();
        let names = |v: &[Environment]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&p.create), ["staging-v4"]);
        assert_eq!(names(&p.delete), ["staging-v3"]);
        assert_eq!(p.unchanged, ["staging-v1"]);
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].changed, ["extra", "version"]);
        assert_eq!(
            p.update[0].after.manifests[1]["spec"]["template"]["spec"]["containers"][0]["image"],
            "web:2.1"
        );
        assert!(plan(&g, &t, &new, &new).unwrap().is_empty());
        // A file renamed under the same name is an update of its path parameters.
        let moved = files(&[("m/one.json", r#"{"slug": "v1", "version": "1"}"#)]);
        let p = plan(
            &g,
            &t,
            &files(&[("m/1.json", r#"{"slug": "v1", "version": "1"}"#)]),
            &moved,
        )
        .unwrap();
        assert_eq!(
            p.update[0].changed,
            ["path.filename", "path.filenameNormalized"]
        );
    }

    #[test]
    fn a_malformed_file_never_deletes_its_environment() {
        let g = FilesGenerator::glob("m/*.json").unwrap();
        let t = template();
        let old = files(&[
            ("m/1.json", r#"{"slug": "v1", "version": "1"}"#),
            ("m/2.json", r#"{"slug": "v2", "version": "2"}"#),
        ]);
        let new = files(&[
            ("m/1.json", r#"{"slug": "v1", "version": "1"#),
            ("m/3.json", r#"{"slug": "v3", "version": "3"}"#),
        ]);
        let err = plan(&g, &t, &old, &new).unwrap_err();
        assert!(err.old.is_empty());
        assert_eq!(err.new.len(), 1);
        assert_eq!(err.new[0].path(), "m/1.json");
        let err = plan(&g, &t, &new, &old).unwrap_err();
        assert_eq!((err.old.len(), err.new.len()), (1, 0));
        assert!(
            err.to_string().starts_with(
                "no plan: 1 error(s) at the old revision, 0 at the new one: m/1.json: cannot parse"
            ),
            "{err}"
        );
    }

    fn obs(app: &str, sync: SyncStatus, health: HealthStatus) -> AppObservation {
        AppObservation::new(app, Some(sync), Some(health))
    }

    fn at(s: i64) -> Stamp {
        Stamp::from_unix_secs(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn gate_verdicts() {
        use HealthStatus::*;
        use SyncStatus::*;
        let gate = Gate::new(["api", "web"], at(300));
        let web_ready = obs("web", Synced, Healthy);
        let api_progressing = obs("api", Synced, Progressing);
        assert_eq!(
            gate.evaluate(&[web_ready.clone(), api_progressing.clone()], at(10)),
            Readiness::Waiting {
                pending: vec![api_progressing.clone()]
            }
        );
        assert_eq!(
            gate.evaluate(std::slice::from_ref(&web_ready), at(10)),
            Readiness::Waiting {
                pending: vec![AppObservation::new("api", None, None)]
            }
        );
        assert_eq!(
            gate.evaluate(
                &[web_ready.clone(), obs("api", OutOfSync, Healthy)],
                at(300)
            ),
            Readiness::TimedOut {
                deadline: at(300),
                pending: vec![obs("api", OutOfSync, Healthy)]
            }
        );
        assert_eq!(
            gate.evaluate(&[web_ready.clone(), obs("api", Synced, Healthy)], at(999)),
            Readiness::Ready
        );
        let mut degraded = obs("api", OutOfSync, Degraded);
        degraded.message = "Deployment/api: exceeded its progress deadline".into();
        assert_eq!(
            gate.evaluate(
                &[web_ready.clone(), degraded, obs("other", Synced, Degraded)],
                at(1)
            ),
            Readiness::Failed {
                app: "api".into(),
                message: "Deployment/api: exceeded its progress deadline".into()
            }
        );
        assert_eq!(
            Gate::new(Vec::<String>::new(), at(0)).evaluate(&[], at(5)),
            Readiness::Ready
        );
        // Suspended is not ready.
        assert!(
            !gate
                .evaluate(&[web_ready, obs("api", Synced, Suspended)], at(1))
                .is_final()
        );
    }

    #[test]
    fn observations_from_objects_and_applications() {
        let desired = vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "s1"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "s1"}, "spec": {"replicas": 2}}),
        ];
        let o = AppObservation::from_objects("s1", &desired, &[]);
        assert_eq!(
            (o.sync, o.health),
            (Some(SyncStatus::OutOfSync), Some(HealthStatus::Missing))
        );
        assert_eq!(o.message, "Namespace/s1 is out of sync (missing)");
        let mut live = desired.clone();
        live[1]["status"] = json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1});
        let o = AppObservation::from_objects("s1", &desired, &live);
        assert_eq!(
            (o.sync, o.health),
            (Some(SyncStatus::Synced), Some(HealthStatus::Progressing))
        );
        assert_eq!(
            o.message,
            "Deployment/web: Waiting for rollout to finish: 1 of 2 updated replicas are available..."
        );
        live[1]["status"]["availableReplicas"] = json!(2);
        assert!(AppObservation::from_objects("s1", &desired, &live).is_ready());
        let app = json!({"metadata": {"name": "web-staging"}, "status": {
            "sync": {"status": "Synced"}, "health": {"status": "Degraded", "message": "boom"}}});
        let o = AppObservation::from_application(&app).unwrap();
        assert_eq!(
            o,
            AppObservation {
                app: "web-staging".into(),
                sync: Some(SyncStatus::Synced),
                health: Some(HealthStatus::Degraded),
                message: "boom".into()
            }
        );
        let unknown = json!({"metadata": {"name": "x"}, "status": {"sync": {"status": "Unknown"}, "health": {"status": "Unknown"}}});
        let o = AppObservation::from_application(&unknown).unwrap();
        assert_eq!((o.sync, o.health), (None, None));
        assert_eq!(AppObservation::from_application(&json!({})), None);
    }

    /// Polls a future whose pieces never return `Pending` (everything here is ready).
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for _ in 0..1_000_000 {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
        panic!("the future never completed");
    }

    #[test]
    fn the_poll_loop_sleeps_until_ready_and_never_past_the_deadline() {
        use std::cell::{Cell, RefCell};
        let gate = Gate::new(["web"], at(100));
        let clock = Cell::new(at(0));
        let slept = RefCell::new(Vec::new());
        let calls = Cell::new(0);
        let r: Result<Readiness, ()> = block_on(wait_until_ready(
            &gate,
            Duration::from_secs(30),
            || {
                calls.set(calls.get() + 1);
                let health = if clock.get() >= at(60) {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Progressing
                };
                let o = Observation {
                    at: clock.get(),
                    apps: vec![obs("web", SyncStatus::Synced, health)],
                };
                async move { Ok(o) }
            },
            |d| {
                slept.borrow_mut().push(d.as_secs());
                clock.set(clock.get().add_secs(i64::try_from(d.as_secs()).unwrap()));
                async {}
            },
        ));
        assert_eq!(r, Ok(Readiness::Ready));
        assert_eq!(*slept.borrow(), [30, 30]);
        assert_eq!(calls.get(), 3);
        // Never ready: the last sleep stops at the deadline, then TimedOut.
        slept.borrow_mut().clear();
        clock.set(at(0));
        let r: Result<Readiness, ()> = block_on(wait_until_ready(
            &gate,
            Duration::from_secs(40),
            || {
                let o = Observation {
                    at: clock.get(),
                    apps: vec![],
                };
                async move { Ok(o) }
            },
            |d| {
                slept.borrow_mut().push(d.as_secs());
                clock.set(clock.get().add_secs(i64::try_from(d.as_secs()).unwrap()));
                async {}
            },
        ));
        assert!(matches!(r, Ok(Readiness::TimedOut { deadline, .. }) if deadline == at(100)));
        assert_eq!(*slept.borrow(), [40, 40, 20]);
        // A frozen clock and a zero interval still end at the deadline.
        let polls = Cell::new(0);
        let r: Result<Readiness, ()> = block_on(wait_until_ready(
            &Gate::new(["web"], at(5)),
            Duration::ZERO,
            || {
                polls.set(polls.get() + 1);
                async {
                    Ok(Observation {
                        at: at(0),
                        apps: vec![],
                    })
                }
            },
            |_| async {},
        ));
        assert!(matches!(r, Ok(Readiness::TimedOut { .. })));
        assert_eq!(polls.get(), 6);
        // Errors end the wait.
        let r = block_on(wait_until_ready(
            &gate,
            Duration::from_secs(1),
            || async { Err::<Observation, _>("down") },
            |_| async {},
        ));
        assert_eq!(r, Err("down"));
    }

    // --- property: planning then applying reaches the new revision's set.

    fn arb_files() -> impl Strategy<Value = Files> {
        let path = prop::sample::select(vec![
            "m/a.json",
            "m/b.json",
            "m/c.yaml",
            "m/d.json",
            "m/sub/e.json",
            "other/f.json",
        ]);
        let content =
            (0u8..3, 0u8..3, prop::option::of(0u8..2)).prop_map(|(slug, version, extra)| {
                let mut m = json!({"slug": format!("s{slug}"), "version": format!("{version}")});
                if let Some(x) = extra {
                    m["extra"] = json!({"n": x});
                }
                m.to_string().into_bytes()
            });
        prop::collection::btree_map(path.prop_map(str::to_string), content, 0..6)
    }

    proptest! {
        #[test]
        fn plan_then_apply_gives_the_new_set(old in arb_files(), new in arb_files()) {
            let g = FilesGenerator::glob("m/**/*.{json,yaml}").unwrap();
            let t = EnvTemplate::new(
                "{{path.filenameNormalized}}",
                vec![json!({"kind": "ConfigMap", "metadata": {"name": "{{slug}}"}, "data": {"v": "{{version}}"}})],
            ).unwrap();
            let before = generate(&g, &t, &old).unwrap();
            let after = generate(&g, &t, &new).unwrap();
            let p = plan(&g, &t, &old, &new).unwrap();
            let mut applied = before.clone();
            p.apply(&mut applied);
            prop_assert_eq!(&applied, &after);
            // Every name is in exactly one list; unchanged ones are equal on both sides.
            let mut seen = BTreeSet::new();
            for n in p.create.iter().map(|e| &e.name)
                .chain(p.update.iter().map(|u| &u.after.name))
                .chain(p.delete.iter().map(|e| &e.name))
                .chain(p.unchanged.iter())
            {
                prop_assert!(seen.insert(n.clone()), "{} listed twice", n);
            }
            prop_assert_eq!(seen, before.keys().chain(after.keys()).cloned().collect::<BTreeSet<_>>());
            for n in &p.unchanged {
                prop_assert_eq!(&before[n], &after[n]);
            }
            for u in &p.update {
                prop_assert!(!u.changed.is_empty());
            }
            prop_assert!(plan(&g, &t, &new, &new).unwrap().is_empty());
            prop_assert!(!after.contains_key("f.json"));
        }

        #[test]
        fn any_malformed_selected_file_blocks_the_whole_plan(
            old in arb_files(),
            bad in prop::sample::select(vec!["m/a.json", "m/c.yaml", "other/f.json"]),
            junk in prop::sample::select(vec!["{", "[1]", "\"s\"", "a: [", "- 1"]),
        ) {
            let g = FilesGenerator::glob("m/**/*.{json,yaml}").unwrap();
            let t = EnvTemplate::new("{{path.filenameNormalized}}", vec![]).unwrap();
            let mut new = old.clone();
            new.insert(bad.to_string(), junk.as_bytes().to_vec());
            let result = plan(&g, &t, &old, &new);
            if bad.starts_with("other/") {
                prop_assert!(result.is_ok());
            } else {
                let err = result.unwrap_err();
                prop_assert!(err.old.is_empty());
                prop_assert_eq!(err.new.len(), 1);
                prop_assert_eq!(err.new[0].path(), bad);
            }
        }

        #[test]
        fn globs_and_params_never_panic(pattern in "[a-z*?/{},\\[\\]!\\\\.-]{0,16}", path in "[a-z/.]{0,16}", content in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(g) = Glob::new(&pattern, Globbing::Strict) {
                let _ = g.matches(&path);
            }
            let _ = FilesGenerator::new(Globbing::Greedy).param_sets(&path, &content);
        }
    }
}
