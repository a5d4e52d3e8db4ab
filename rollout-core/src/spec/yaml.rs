//! YAML text → `serde_json::Value`, one document at a time.
//!
//! Multi-document texts are split on document markers by hand (instead of handing the
//! whole stream to the YAML parser) so that one malformed document does not hide the
//! others, and so that every error can name its document and a line of the whole text.
//! Other document kinds (Flagger's `Canary`, analysis templates) load through the same
//! two functions.

use serde_json::Value;

use super::error::SpecError;

/// One document of a multi-document text.
pub struct Chunk<'a> {
    /// 1-based line of the whole text where the chunk starts.
    pub first_line: usize,
    /// The chunk's text, including its `---` marker line if it has one.
    pub text: &'a str,
    /// The chunk has something besides markers, directives, comments and blank lines.
    pub has_content: bool,
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
        // `--- value` carries content on the marker line itself.
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
/// after content opens a new document too (directives precede a `---`); a `...` line
/// closes the current document.
pub fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize; // byte offset of the current chunk
    let mut first_line = 1usize;
    let mut seen_start = false;
    let mut has_content = false;
    let mut closed = false;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let bare = line.trim_end_matches(['\n', '\r']);
        let kind = classify(bare);
        let opens = match kind {
            LineKind::Start => seen_start || has_content || closed,
            LineKind::Directive => seen_start || has_content || closed,
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
            first_line = line_no;
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
pub fn parse_document(text: &str, line_offset: usize) -> Result<Value, SpecError> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options::<Value>(text, options)
        .map_err(|e| yaml_error(&e, line_offset))
}

fn yaml_error(e: &serde_saphyr::Error, line_offset: usize) -> SpecError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let line = if line == 0 {
        0
    } else {
        line.saturating_add(line_offset as u64)
    };
    SpecError::Yaml {
        line,
        column,
        message: strip_location(&e.render_with_formatter(&serde_saphyr::UserMessageFormatter)),
    }
}

/// The parser's message without its trailing ` at line L column C` (the error carries
/// the position in its own fields, adjusted to the whole text).
fn strip_location(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Vec<(usize, bool)> {
        split_documents(text)
            .iter()
            .map(|c| (c.first_line, c.has_content))
            .collect()
    }

    #[test]
    fn splits_on_markers() {
        assert_eq!(shape("a: 1\n---\nb: 2\n"), vec![(1, true), (2, true)]);
        assert_eq!(shape("# c\n---\na: 1\n---\n"), vec![(1, true), (4, false)]);
        assert_eq!(
            shape("---\na: 1\n...\n---\nb: 1\n"),
            vec![(1, true), (4, true)]
        );
        assert_eq!(shape("a: |\n  ---\n  x\n"), vec![(1, true)]);
        assert_eq!(
            shape("a: 1\n%YAML 1.2\n---\nb: 1"),
            vec![(1, true), (2, true)]
        );
        assert_eq!(shape(""), vec![(1, false)]);
        assert_eq!(
            shape("--- {a: 1}\n--- {b: 2}\n"),
            vec![(1, true), (2, true)]
        );
    }

    #[test]
    fn reports_whole_text_lines() {
        let err = parse_document("a: [1\n", 10).unwrap_err();
        match err {
            SpecError::Yaml { line, .. } => assert!(line >= 11, "{line}"),
            other => panic!("{other:?}"),
        }
    }
}
