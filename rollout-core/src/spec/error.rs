//! Parse errors ([`SpecError`]) and validation errors ([`ValidationErrors`]).

use std::fmt;

/// Why a document could not be read as a `Rollout`.
///
/// Every variant that concerns one field names it with its JSON path, written the way
/// `kubectl explain` and Argo do: `spec.strategy.canary.steps[3].setWeight`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The text is not well-formed YAML (syntax, duplicate keys, bad aliases).
    #[error("invalid yaml at line {line}, column {column}: {message}")]
    Yaml {
        /// 1-based line of the error (0 when the parser could not tell).
        line: u64,
        /// 1-based column of the error (0 when the parser could not tell).
        column: u64,
        /// The parser's description.
        message: String,
    },
    /// The document is not a mapping (a scalar, a list, or empty).
    #[error("document is not a mapping: found {found}")]
    NotAMapping {
        /// What was found instead (`a list`, `a string`, ...).
        found: &'static str,
    },
    /// `apiVersion` is missing or is not `argoproj.io/v1alpha1`.
    #[error("apiVersion: expected \"argoproj.io/v1alpha1\", found {}", describe(.found))]
    WrongApiVersion {
        /// The `apiVersion` of the document, if it has a string one.
        found: Option<String>,
    },
    /// `kind` is missing or is not `Rollout`.
    #[error("kind: expected \"Rollout\", found {}", describe(.found))]
    WrongKind {
        /// The `kind` of the document, if it has a string one.
        found: Option<String>,
    },
    /// A field has the wrong type or shape, is unknown, or a required one is missing.
    #[error("{path}: {message}")]
    Field {
        /// JSON path of the field, e.g. `spec.strategy.canary.steps[3].setWeight`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// An error in one document of a multi-document YAML text.
    #[error("document {index} (line {line}): {source}")]
    Document {
        /// 0-based index of the document among the non-empty documents of the text.
        index: usize,
        /// 1-based line where the document starts.
        line: usize,
        /// The error in that document.
        #[source]
        source: Box<SpecError>,
    },
}

fn describe(found: &Option<String>) -> String {
    match found {
        Some(s) => format!("{s:?}"),
        None => "nothing".to_string(),
    }
}

impl SpecError {
    /// The JSON path of the offending field, when the error concerns one field.
    ///
    /// `apiVersion` and `kind` errors report `"apiVersion"` / `"kind"`; YAML syntax errors
    /// and non-mapping documents have no path.
    pub fn path(&self) -> Option<&str> {
        match self {
            SpecError::Field { path, .. } => Some(path),
            SpecError::WrongApiVersion { .. } => Some("apiVersion"),
            SpecError::WrongKind { .. } => Some("kind"),
            SpecError::Document { source, .. } => source.path(),
            SpecError::Yaml { .. } | SpecError::NotAMapping { .. } => None,
        }
    }

    /// The document index, for errors from [`super::rollouts_from_yaml_documents`].
    pub fn document_index(&self) -> Option<usize> {
        match self {
            SpecError::Document { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// Builds a [`SpecError::Field`] from a serde error and the path it happened at.
    ///
    /// serde reports unknown and missing fields on the enclosing object; the field's
    /// own name is moved into the path so that the path names the field itself.
    pub(crate) fn from_serde(path: &str, message: &str) -> SpecError {
        let (path, message) = move_field_into_path(path, message);
        SpecError::Field { path, message }
    }
}

/// `("spec", "unknown field `x`, expected ...")` → `("spec.x", "unknown field, expected ...")`.
fn move_field_into_path(path: &str, message: &str) -> (String, String) {
    for prefix in ["unknown field", "missing field"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(rest) = rest.strip_prefix(" `")
            && let Some((name, tail)) = rest.split_once('`')
        {
            let what = if prefix == "missing field" {
                "missing required field"
            } else {
                prefix
            };
            let base = normalize_root(path);
            // serde_path_to_error already records an unknown key it has read; a missing
            // field is reported on its parent.
            let already = base == name || base.ends_with(&format!(".{name}"));
            let path = if already {
                base.to_string()
            } else {
                join_path(base, name)
            };
            return (path, format!("{what}{tail}"));
        }
    }
    (normalize_root(path).to_string(), message.to_string())
}

/// serde_path_to_error prints the root as `.`; this module prints it as an empty path.
fn normalize_root(path: &str) -> &str {
    if path == "." { "" } else { path }
}

pub(crate) fn join_path(parent: &str, child: &str) -> String {
    let parent = normalize_root(parent);
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// One broken rule found by [`super::Rollout::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValidationError {
    /// JSON path of the field, e.g. `spec.strategy.canary.steps[3].setWeight`.
    pub path: String,
    /// What is wrong, in lowercase, e.g. `must be 0..=100`.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Every rule a `Rollout` breaks, in the order of the fields (never empty when returned
/// as an error).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No errors at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first error at exactly `path`, if any.
    pub fn at(&self, path: &str) -> Option<&ValidationError> {
        self.0.iter().find(|e| e.path == path)
    }

    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }
}

impl fmt::Display for ValidationErrors {
    /// One `path: message` per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ValidationErrors {
    type Item = ValidationError;
    type IntoIter = std::vec::IntoIter<ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
