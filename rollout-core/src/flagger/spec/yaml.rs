//! YAML text → `serde_json::Value`, one document at a time.
//!
//! A copy of the document splitter of [`crate::spec`] (private there): multi-document
//! texts are split on document markers by hand so that one malformed document does not
//! hide the others, and every error names a line of the whole text.

use serde_json::Value;

use crate::spec::SpecError;

/// One document of a multi-document text.
pub(super) struct Chunk<'a> {
    /// 1-based line of the whole text where the chunk starts.
    pub(super) first_line: usize,
    /// The chunk's text, including its `---` marker line if it has one.
    pub(super) text: &'a str,
    /// The chunk has something besides markers, directives, comments and blank lines.
    pub(super) has_content: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// `---` (alone or followed by whitespace and more).
    Start,
    /// `...` (alone or followed by whitespace).
    End,
    /// `%YAML ...`, `%TAG ...`.
    Directive,
    /// Blank or a comment.
    Trivia,
    Content,
}

fn marker(line: &str, m: &str) -> bool {
    line.strip_prefix(m)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
}

fn classify(line: &str) -> LineKind {
    if marker(line, "---") {
        LineKind::Start
    } else if marker(line, "...") {
        LineKind::End
    } else if line.starts_with('%') {
        LineKind::Directive
    } else {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            LineKind::Trivia
        } else {
            LineKind::Content
        }
    }
}

/// Splits a YAML stream into its documents.
///
/// A `---` line opens a new document unless the current one has seen neither content nor
/// a `---` yet (so a comment header stays with the first document); a `%` directive line
/// after content opens a new document too; a `...` line closes the current document.
pub(super) fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut first_line = 1usize;
    let mut seen_start = false;
    let mut has_content = false;
    let mut closed = false;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let kind = classify(bare);
        let opens = match kind {
            LineKind::Start | LineKind::Directive => seen_start || has_content || closed,
            LineKind::Content => closed,
            LineKind::End | LineKind::Trivia => false,
        };
        if opens {
            chunks.push(Chunk {
                first_line,
                text: &text[start..offset],
                has_content,
            });
            start = offset;
            first_line = i + 1;
            seen_start = false;
            has_content = false;
            closed = false;
        }
        match kind {
            LineKind::Start => {
                seen_start = true;
                let rest = bare[3..].trim();
                if !rest.is_empty() && !rest.starts_with('#') {
                    has_content = true;
                }
            }
            LineKind::End => closed = true,
            LineKind::Content => has_content = true,
            LineKind::Directive | LineKind::Trivia => {}
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        first_line,
        text: &text[start..],
        has_content,
    });
    chunks
}

/// Parses one YAML document into a JSON value. `line_offset` is added to reported lines.
pub(super) fn parse_document(text: &str, line_offset: usize) -> Result<Value, SpecError> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let line = if line == 0 {
            0
        } else {
            line.saturating_add(line_offset as u64)
        };
        let message = e.render_with_formatter(&serde_saphyr::UserMessageFormatter);
        let first = message.lines().next().unwrap_or(&message);
        let message = match first.rfind(" at line ") {
            Some(i) => first[..i].to_string(),
            None => first.to_string(),
        };
        SpecError::Yaml {
            line,
            column,
            message,
        }
    })
}
