//! A strict parser and renderer for the Prometheus text exposition format (what a
//! `/metrics` endpoint returns).
//!
//! Every line is a blank line, a comment (`# HELP name text`, `# TYPE name type`, or any
//! other `# ...`), or a sample `name{label="value",...} value [timestamp_ms]`. Metric names
//! may contain `:` (recording rules); label values may contain `,`, `=`, and the escapes
//! `\\`, `\"` and `\n`; values are Go floats (`NaN`, `+Inf`, `-Inf`). A line that does not
//! parse is an error with its line and column — nothing is skipped silently.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::parse_go_float;
use crate::expr::format_float;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// The labels, unescaped.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
    /// The optional timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ExpositionError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

struct Line {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Line {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExpositionError> {
        Err(ExpositionError {
            line: self.line,
            column: self.pos + 1,
            message: message.into(),
        })
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        self.pos - start
    }
    fn ident(&mut self, allow_colon: bool, what: &str) -> Result<String, ExpositionError> {
        let start = self.pos;
        let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':');
        match self.peek() {
            Some(c) if ok_first(c) => self.pos += 1,
            _ => return self.err(format!("expected {what}")),
        }
        while let Some(c) = self.peek() {
            if ok_first(c) || c.is_ascii_digit() {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }
    fn token(&mut self) -> String {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c != ' ' && c != '\t') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
    fn expect(&mut self, c: char) -> Result<(), ExpositionError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected {c:?}"))
        }
    }
    fn label_value(&mut self) -> Result<String, ExpositionError> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return self.err("unterminated label value"),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\\') => out.push('\\'),
                        Some('"') => out.push('"'),
                        Some('n') => out.push('\n'),
                        Some(c) => return self.err(format!("invalid escape \\{c} in label value")),
                        None => return self.err("unterminated label value"),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
    fn sample(&mut self) -> Result<Sample, ExpositionError> {
        let name = self.ident(true, "metric name")?;
        let mut labels = BTreeMap::new();
        let mut blanks = self.skip_blanks();
        if self.peek() == Some('{') {
            self.pos += 1;
            loop {
                self.skip_blanks();
                if self.peek() == Some('}') {
                    self.pos += 1;
                    break;
                }
                let label_start = self.pos;
                let label = self.ident(false, "label name")?;
                self.skip_blanks();
                self.expect('=')?;
                self.skip_blanks();
                let value = self.label_value()?;
                if labels.insert(label.clone(), value).is_some() {
                    self.pos = label_start;
                    return self.err(format!("duplicate label {label:?}"));
                }
                self.skip_blanks();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some('}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.err("expected ',' or '}'"),
                }
            }
            blanks = self.skip_blanks();
        }
        if blanks == 0 {
            return self.err("expected whitespace before the value");
        }
        let value_start = self.pos;
        let raw = self.token();
        let Some(value) = parse_go_float(&raw) else {
            self.pos = value_start;
            return self.err(format!("invalid sample value {raw:?}"));
        };
        let mut timestamp_ms = None;
        if self.skip_blanks() > 0 && self.peek().is_some() {
            let ts_start = self.pos;
            let raw = self.token();
            let valid = raw.strip_prefix('-').unwrap_or(&raw);
            let parsed = (!valid.is_empty() && valid.bytes().all(|b| b.is_ascii_digit()))
                .then(|| raw.parse::<i64>().ok())
                .flatten();
            match parsed {
                Some(ts) => timestamp_ms = Some(ts),
                None => {
                    self.pos = ts_start;
                    return self.err(format!("invalid timestamp {raw:?}"));
                }
            }
            self.skip_blanks();
        }
        if self.peek().is_some() {
            return self.err("unexpected trailing characters");
        }
        Ok(Sample {
            name,
            labels,
            value,
            timestamp_ms,
        })
    }
    fn comment(&mut self) -> Result<(), ExpositionError> {
        // Positioned after '#'.
        if self.skip_blanks() == 0 {
            return Ok(());
        }
        let keyword = self.token();
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(());
        }
        if self.skip_blanks() == 0 {
            return self.err(format!("expected whitespace after {keyword}"));
        }
        self.ident(true, "metric name")?;
        if keyword == "HELP" {
            if self.peek().is_some() && self.skip_blanks() == 0 {
                return self.err("expected whitespace after the metric name");
            }
            // The docstring may escape `\\` and `\n`.
            while let Some(c) = self.peek() {
                self.pos += 1;
                if c == '\\' {
                    match self.peek() {
                        Some('\\' | 'n') => self.pos += 1,
                        Some(c) => return self.err(format!("invalid escape \\{c} in HELP")),
                        None => return self.err("dangling backslash in HELP"),
                    }
                }
            }
            return Ok(());
        }
        if self.skip_blanks() == 0 {
            return self.err("expected whitespace after the metric name");
        }
        let ty_start = self.pos;
        let ty = self.token();
        if !matches!(
            ty.as_str(),
            "counter" | "gauge" | "histogram" | "summary" | "untyped"
        ) {
            self.pos = ty_start;
            return self.err(format!("unknown metric type {ty:?}"));
        }
        self.skip_blanks();
        if self.peek().is_some() {
            return self.err("unexpected trailing characters");
        }
        Ok(())
    }
}

/// Parses an exposition text into its samples, in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ExpositionError> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let mut line = Line {
            chars: raw.chars().collect(),
            pos: 0,
            line: i + 1,
        };
        line.skip_blanks();
        match line.peek() {
            None => {}
            Some('#') => {
                line.pos += 1;
                line.comment()?;
            }
            Some(_) => out.push(line.sample()?),
        }
    }
    Ok(out)
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders samples as exposition text, one line each (the inverse of [`parse`] for
/// samples with valid metric and label names).
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    for s in samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label(&mut out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(&format_float(s.value));
        if let Some(ts) = s.timestamp_ms {
            let _ = write!(out, " {ts}");
        }
        out.push('\n');
    }
    out
}
