//! The JSONPath dialect of the web provider's `jsonPath` field.
//!
//! # The model
//!
//! Argo's web provider hands the response body to Kubernetes' `jsonpath` package, whose
//! templates wrap one path in braces: `{$.data.ok}`, `{.items[0].value}`, `{$}` (the
//! default: the whole document). A path is a chain of steps applied to a set of nodes,
//! starting from the root; every step maps each node to zero or more nodes:
//!
//! | step | selects |
//! |---|---|
//! | `$` (or nothing) | the root (only at the start) |
//! | `.name`, `['name']`, `["a.b"]` | the member `name` of an object |
//! | `[2]`, `[-1]` | an array element, counted from the end when negative |
//! | `[1:3]`, `[::2]`, `[-2:]` | a slice of an array (`start:end:step`, step > 0) |
//! | `[0,2]`, `['a','b']` | a union of indices or names |
//! | `.*`, `[*]` | every member of an object or element of an array |
//! | `..name`, `..*`, `..[0]` | the step applied to the node and all its descendants |
//! | `[?(@.x == 1)]` | the array elements (or object members) for which the filter holds |
//!
//! Filters compare a path relative to the element (`@.a.b`) with a literal (number,
//! `'string'` or `"string"`, `true`, `false`, `null`) using `==`, `!=`, `<`, `<=`, `>`,
//! `>=`, or test that the path exists (`[?(@.a)]`). Numbers compare as floats, strings
//! by bytes; comparing values of different types is false (except `!=`).
//!
//! A path is compiled once ([`JsonPath::compile`]; a malformed one is a
//! [`JsonPathError::Syntax`] with its byte position) and evaluated many times
//! ([`JsonPath::find`]: every matching node, in document order). Like Kubernetes'
//! jsonpath (and so Argo), a path that matches nothing is an error
//! ([`JsonPathError::NoMatch`]) naming the path. [`JsonPath::select`] turns the matches
//! into the value bound to `result` the way Go's `encoding/json` decodes into `any`
//! (every number a `float64`, objects as maps): one match gives that value, several a
//! list. Argo's web provider itself keeps only the first match ([`JsonPath::first`]).

use std::fmt;

use serde_json::Value as Json;

use crate::expr::Value;

/// Why a path did not compile, or matched nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonPathError {
    /// The path is malformed.
    #[error("invalid JSONPath {path:?} at byte {position}: {message}")]
    Syntax {
        /// The path as written.
        path: String,
        /// Byte offset of the problem in `path`.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// The path selected no node of the document.
    #[error("JSONPath {path:?} matched nothing")]
    NoMatch {
        /// The path as written.
        path: String,
    },
}

/// A compiled JSONPath (see the module docs for the dialect).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    source: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Child(Selector),
    Descendant(Selector),
}

#[derive(Debug, Clone, PartialEq)]
enum Selector {
    Name(String),
    Index(i64),
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
    },
    Union(Vec<Selector>),
    Wildcard,
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    /// The relative path after `@`.
    path: Vec<Step>,
    test: Option<(CmpOp, Json)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, position: usize, message: impl Into<String>) -> Result<T, JsonPathError> {
        Err(JsonPathError::Syntax {
            path: self.src.to_string(),
            position,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), JsonPathError> {
        if self.eat(b) {
            Ok(())
        } else {
            self.err(self.pos, format!("expected '{}'", b as char))
        }
    }

    fn is_name_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b >= 0x80
    }

    fn name(&mut self) -> Result<String, JsonPathError> {
        let start = self.pos;
        while self.peek().is_some_and(Self::is_name_byte) {
            self.pos += 1;
        }
        if self.pos == start {
            return self.err(start, "expected a member name");
        }
        Ok(self.src[start..self.pos].to_string())
    }

    /// Steps until something that is not `.`, `..` or `[` (the end, `}`, a space, an
    /// operator inside a filter).
    fn steps(&mut self) -> Result<Vec<Step>, JsonPathError> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') if self.peek_at(1) == Some(b'.') => {
                    self.pos += 2;
                    let sel = match self.peek() {
                        Some(b'[') => self.bracket()?,
                        Some(b'*') => {
                            self.pos += 1;
                            Selector::Wildcard
                        }
                        _ => Selector::Name(self.name()?),
                    };
                    steps.push(Step::Descendant(sel));
                }
                Some(b'.') => {
                    self.pos += 1;
                    let sel = match self.peek() {
                        Some(b'*') => {
                            self.pos += 1;
                            Selector::Wildcard
                        }
                        Some(b'[') => self.bracket()?,
                        _ => Selector::Name(self.name()?),
                    };
                    steps.push(Step::Child(sel));
                }
                Some(b'[') => steps.push(Step::Child(self.bracket()?)),
                _ => return Ok(steps),
            }
        }
    }

    fn integer(&mut self) -> Result<Option<i64>, JsonPathError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<i64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => self.err(start, format!("invalid integer {text:?}")),
        }
    }

    fn quoted(&mut self) -> Result<String, JsonPathError> {
        let start = self.pos;
        let Some(quote) = self.peek().filter(|b| matches!(b, b'\'' | b'"')) else {
            return self.err(start, "expected a quoted string");
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.src[self.pos..].chars().next() else {
                return self.err(start, "unterminated string");
            };
            self.pos += c.len_utf8();
            if c as u32 == u32::from(quote) {
                return Ok(out);
            }
            if c == '\\' {
                let Some(e) = self.src[self.pos..].chars().next() else {
                    return self.err(start, "unterminated string");
                };
                self.pos += e.len_utf8();
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    other => out.push(other),
                }
            } else {
                out.push(c);
            }
        }
    }

    /// One bracket selector, positioned on `[`.
    fn bracket(&mut self) -> Result<Selector, JsonPathError> {
        let open = self.pos;
        self.expect(b'[')?;
        self.skip_ws();
        let sel = match self.peek() {
            Some(b'*') => {
                self.pos += 1;
                Selector::Wildcard
            }
            Some(b'?') => {
                self.pos += 1;
                Selector::Filter(self.filter()?)
            }
            Some(b'\'' | b'"') => {
                let mut names = vec![Selector::Name(self.quoted()?)];
                self.skip_ws();
                while self.eat(b',') {
                    self.skip_ws();
                    names.push(Selector::Name(self.quoted()?));
                    self.skip_ws();
                }
                if names.len() == 1 {
                    names.remove(0)
                } else {
                    Selector::Union(names)
                }
            }
            _ => self.index_or_slice()?,
        };
        self.skip_ws();
        if !self.eat(b']') {
            if self.peek().is_none() {
                return self.err(open, "unclosed '['");
            }
            return self.err(self.pos, "expected ']'");
        }
        Ok(sel)
    }

    fn index_or_slice(&mut self) -> Result<Selector, JsonPathError> {
        let start_pos = self.pos;
        let first = self.integer()?;
        self.skip_ws();
        if self.peek() == Some(b':') {
            self.pos += 1;
            self.skip_ws();
            let end = self.integer()?;
            self.skip_ws();
            let mut step = 1;
            if self.eat(b':') {
                self.skip_ws();
                let step_pos = self.pos;
                if let Some(s) = self.integer()? {
                    if s <= 0 {
                        return self.err(step_pos, "slice step must be positive");
                    }
                    step = s;
                }
            }
            return Ok(Selector::Slice {
                start: first,
                end,
                step,
            });
        }
        let Some(first) = first else {
            return self.err(
                start_pos,
                "expected an index, a slice, a name, '*' or a filter",
            );
        };
        let mut items = vec![Selector::Index(first)];
        while self.eat(b',') {
            self.skip_ws();
            let p = self.pos;
            match self.integer()? {
                Some(n) => items.push(Selector::Index(n)),
                None => return self.err(p, "expected an index"),
            }
            self.skip_ws();
        }
        if items.len() == 1 {
            Ok(items.remove(0))
        } else {
            Ok(Selector::Union(items))
        }
    }

    /// A filter, positioned after `?`: `(@.path [op literal])`.
    fn filter(&mut self) -> Result<Filter, JsonPathError> {
        self.skip_ws();
        self.expect(b'(')?;
        self.skip_ws();
        self.expect(b'@')?;
        let path = self.steps()?;
        self.skip_ws();
        let op_pos = self.pos;
        let op = match (self.peek(), self.peek_at(1)) {
            (Some(b'='), Some(b'=')) => Some((CmpOp::Eq, 2)),
            (Some(b'!'), Some(b'=')) => Some((CmpOp::Ne, 2)),
            (Some(b'<'), Some(b'=')) => Some((CmpOp::Le, 2)),
            (Some(b'>'), Some(b'=')) => Some((CmpOp::Ge, 2)),
            (Some(b'<'), _) => Some((CmpOp::Lt, 1)),
            (Some(b'>'), _) => Some((CmpOp::Gt, 1)),
            (Some(b')'), _) => None,
            _ => return self.err(op_pos, "expected a comparison operator or ')'"),
        };
        let test = match op {
            None => None,
            Some((op, len)) => {
                self.pos += len;
                self.skip_ws();
                Some((op, self.literal()?))
            }
        };
        self.skip_ws();
        self.expect(b')')?;
        Ok(Filter { path, test })
    }

    fn literal(&mut self) -> Result<Json, JsonPathError> {
        let start = self.pos;
        match self.peek() {
            Some(b'\'' | b'"') => Ok(Json::String(self.quoted()?)),
            Some(b) if b.is_ascii_digit() || b == b'-' || b == b'+' => {
                while self.peek().is_some_and(|b| {
                    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
                }) {
                    self.pos += 1;
                }
                let text = &self.src[start..self.pos];
                match text.trim_start_matches('+').parse::<f64>() {
                    Ok(f) => Ok(serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
                    Err(_) => self.err(start, format!("invalid number {text:?}")),
                }
            }
            _ => {
                while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                    self.pos += 1;
                }
                match &self.src[start..self.pos] {
                    "true" => Ok(Json::Bool(true)),
                    "false" => Ok(Json::Bool(false)),
                    "null" | "nil" => Ok(Json::Null),
                    _ => self.err(
                        start,
                        "expected a literal (number, string, true, false, null)",
                    ),
                }
            }
        }
    }
}

impl JsonPath {
    /// Compiles a path: a Kubernetes template with one expression in braces
    /// (`{$.data.ok}`), or the bare expression (`$.data.ok`, `.data.ok`). An empty path
    /// or `{}` selects the whole document, like `{$}`.
    pub fn compile(path: &str) -> Result<JsonPath, JsonPathError> {
        let mut p = Parser {
            src: path,
            bytes: path.as_bytes(),
            pos: 0,
        };
        p.skip_ws();
        let braced = p.eat(b'{');
        p.skip_ws();
        if p.peek() == Some(b'$') {
            p.pos += 1;
        }
        let steps = p.steps()?;
        p.skip_ws();
        if braced {
            if p.peek().is_none() {
                return p.err(p.pos, "expected '}'");
            }
            p.expect(b'}')?;
            p.skip_ws();
        }
        if p.pos < p.bytes.len() {
            let message = match p.peek() {
                Some(b'}') if !braced => "unexpected '}' without '{'".to_string(),
                _ => match path[p.pos..].chars().next() {
                    Some(c) => format!("unexpected character {c:?}"),
                    None => "unexpected input".to_string(),
                },
            };
            return p.err(p.pos, message);
        }
        Ok(JsonPath {
            source: path.to_string(),
            steps,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Every node the path selects, in document order; [`JsonPathError::NoMatch`] when
    /// there is none.
    pub fn find<'v>(&self, document: &'v Json) -> Result<Vec<&'v Json>, JsonPathError> {
        let found = eval_steps(&self.steps, vec![document]);
        if found.is_empty() {
            return Err(JsonPathError::NoMatch {
                path: self.source.clone(),
            });
        }
        Ok(found)
    }

    /// The matches as the value bound to `result`: one match gives that value, several
    /// give a list (numbers are floats, as Go decodes JSON into `any`).
    pub fn select(&self, document: &Json) -> Result<Value, JsonPathError> {
        let found = self.find(document)?;
        if let [one] = found.as_slice() {
            return Ok(Value::from_json(one));
        }
        Ok(Value::Array(
            found.into_iter().map(Value::from_json).collect(),
        ))
    }

    /// The first match, what Argo's web provider binds to `result`.
    pub fn first<'v>(&self, document: &'v Json) -> Result<&'v Json, JsonPathError> {
        let found = self.find(document)?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| JsonPathError::NoMatch {
                path: self.source.clone(),
            })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn eval_steps<'v>(steps: &[Step], mut nodes: Vec<&'v Json>) -> Vec<&'v Json> {
    for step in steps {
        let mut next = Vec::new();
        for node in nodes {
            match step {
                Step::Child(sel) => apply(sel, node, &mut next),
                Step::Descendant(sel) => {
                    let mut all = Vec::new();
                    descendants(node, &mut all);
                    for n in all {
                        apply(sel, n, &mut next);
                    }
                }
            }
        }
        nodes = next;
        if nodes.is_empty() {
            break;
        }
    }
    nodes
}

fn descendants<'v>(node: &'v Json, out: &mut Vec<&'v Json>) {
    out.push(node);
    match node {
        Json::Array(items) => items.iter().for_each(|i| descendants(i, out)),
        Json::Object(m) => m.values().for_each(|v| descendants(v, out)),
        _ => {}
    }
}

fn resolve_index(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let idx = if i < 0 { len.checked_add(i)? } else { i };
    (0..len)
        .contains(&idx)
        .then(|| usize::try_from(idx).ok())
        .flatten()
}

fn apply<'v>(sel: &Selector, node: &'v Json, out: &mut Vec<&'v Json>) {
    match sel {
        Selector::Name(name) => {
            if let Some(v) = node.as_object().and_then(|m| m.get(name)) {
                out.push(v);
            }
        }
        Selector::Index(i) => {
            if let Some(items) = node.as_array()
                && let Some(idx) = resolve_index(*i, items.len())
            {
                out.push(&items[idx]);
            }
        }
        Selector::Slice { start, end, step } => {
            if let Some(items) = node.as_array() {
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let clamp = |v: i64| {
                    if v < 0 {
                        len.saturating_add(v).max(0)
                    } else {
                        v.min(len)
                    }
                };
                let s = start.map_or(0, clamp);
                let e = end.map_or(len, clamp);
                let step = usize::try_from(*step).unwrap_or(1).max(1);
                let (Ok(s), Ok(e)) = (usize::try_from(s), usize::try_from(e)) else {
                    return;
                };
                if s < e {
                    out.extend(items[s..e].iter().step_by(step));
                }
            }
        }
        Selector::Union(items) => items.iter().for_each(|s| apply(s, node, out)),
        Selector::Wildcard => match node {
            Json::Array(items) => out.extend(items.iter()),
            Json::Object(m) => out.extend(m.values()),
            _ => {}
        },
        Selector::Filter(filter) => {
            let candidates: Vec<&Json> = match node {
                Json::Array(items) => items.iter().collect(),
                Json::Object(m) => m.values().collect(),
                _ => Vec::new(),
            };
            out.extend(candidates.into_iter().filter(|c| filter.holds(c)));
        }
    }
}

impl Filter {
    fn holds(&self, element: &Json) -> bool {
        let found = eval_steps(&self.path, vec![element]);
        match &self.test {
            None => !found.is_empty(),
            Some((op, literal)) => found.iter().any(|v| compare(v, *op, literal)),
        }
    }
}

fn compare(left: &Json, op: CmpOp, right: &Json) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (left, right) {
        (Json::Number(a), Json::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Json::String(a), Json::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Json::Bool(a), Json::Bool(b)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Some(a.cmp(b)),
        (Json::Null, Json::Null) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ord) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
        (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Json {
        json!({
            "data": {"ok": true, "successPercent": 0.95, "a.b": 7},
            "items": [
                {"name": "a", "value": 1, "tags": ["x"]},
                {"name": "b", "value": 2.5},
                {"name": "c", "value": 10, "nested": {"name": "deep"}}
            ],
            "status": "green"
        })
    }

    fn sel(path: &str) -> Value {
        match JsonPath::compile(path).and_then(|p| p.select(&doc())) {
            Ok(v) => v,
            Err(e) => panic!("{path}: {e}"),
        }
    }

    fn floats(v: &[f64]) -> Value {
        Value::Array(v.iter().map(|f| Value::Float(*f)).collect())
    }

    #[test]
    fn argo_forms() {
        assert_eq!(sel("{$.data.ok}"), Value::Bool(true));
        assert_eq!(sel("{.status}"), Value::String("green".into()));
        assert_eq!(sel("$.data.successPercent"), Value::Float(0.95));
        assert_eq!(sel("{$.items[0].value}"), Value::Float(1.0));
        assert_eq!(sel("{$}"), Value::from_json(&doc()));
        assert_eq!(sel(""), Value::from_json(&doc()));
        assert_eq!(sel("{}"), Value::from_json(&doc()));
        assert_eq!(sel(" { $.data['a.b'] } "), Value::Float(7.0));
        assert_eq!(sel("{$[\"data\"][\"ok\"]}"), Value::Bool(true));
    }

    #[test]
    fn indices_slices_unions_wildcards() {
        assert_eq!(sel("{$.items[-1].value}"), Value::Float(10.0));
        assert_eq!(sel("{$.items[*].value}"), floats(&[1.0, 2.5, 10.0]));
        assert_eq!(sel("{$.items.*.value}"), floats(&[1.0, 2.5, 10.0]));
        assert_eq!(sel("{$.items[0:2].value}"), floats(&[1.0, 2.5]));
        assert_eq!(sel("{$.items[::2].value}"), floats(&[1.0, 10.0]));
        assert_eq!(sel("{$.items[-2:].value}"), floats(&[2.5, 10.0]));
        assert_eq!(sel("{$.items[0,2].value}"), floats(&[1.0, 10.0]));
        assert_eq!(
            sel("{$.items[0]['name','value']}"),
            Value::Array(vec![Value::String("a".into()), Value::Float(1.0)])
        );
    }

    #[test]
    fn recursive_descent_and_filters() {
        assert_eq!(
            sel("{..name}"),
            Value::Array(
                ["a", "b", "c", "deep"]
                    .iter()
                    .map(|s| Value::String((*s).into()))
                    .collect()
            )
        );
        assert_eq!(sel("{$.items[?(@.value > 2)].name}"), {
            Value::Array(vec![Value::String("b".into()), Value::String("c".into())])
        });
        assert_eq!(sel("{$.items[?(@.name == 'b')].value}"), Value::Float(2.5));
        assert_eq!(sel("{$.items[?(@.tags)].name}"), Value::String("a".into()));
        assert_eq!(
            sel("{$.items[?(@.nested.name != \"x\")].value}"),
            Value::Float(10.0)
        );
        assert_eq!(
            sel("{$.items[?(@.value<=1)].name}"),
            Value::String("a".into())
        );
    }

    #[test]
    fn no_match_names_the_path() {
        let p = JsonPath::compile("{$.data.missing}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.find(&doc()),
            Err(JsonPathError::NoMatch {
                path: "{$.data.missing}".into()
            })
        );
        assert!(
            p.find(&doc())
                .is_err_and(|e| e.to_string().contains("$.data.missing"))
        );
        for path in [
            "{$.items[3]}",
            "{$.items[-4]}",
            "{$.status.x}",
            "{$.items[5:]}",
        ] {
            let p = JsonPath::compile(path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                matches!(p.find(&doc()), Err(JsonPathError::NoMatch { .. })),
                "{path}"
            );
        }
    }

    #[test]
    fn first_is_argo_choice() {
        let p = JsonPath::compile("{$.items[*].value}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.first(&doc()), Ok(&json!(1)));
    }

    #[test]
    fn syntax_errors_carry_the_byte_position() {
        let cases = [
            ("{$.data", 7),
            ("{$.items[0}", 10),
            ("{$.items[", 9),
            ("{$.}", 3),
            ("{$.items[::0]}", 11),
            ("{$.items[?(@.a ~ 1)]}", 15),
            ("{$.items['a}", 9),
            ("$.a}", 3),
            ("{$.a} x", 6),
            ("{$.items[x]}", 9),
            ("{$.items[?(@.a == zz)]}", 18),
        ];
        for (path, pos) in cases {
            match JsonPath::compile(path) {
                Err(JsonPathError::Syntax { position, .. }) => {
                    assert_eq!(position, pos, "{path}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for path in [
            "[",
            "]",
            "..",
            "...",
            "$..",
            "{{}}",
            "[-]",
            "[1:2:3:4]",
            "[?(@)]",
            "['\\",
            "é",
            "[\u{e9}]",
            "[-9223372036854775808]",
            "[99999999999999999999]",
            "[?(@.a == 1e999)]",
        ] {
            if let Ok(p) = JsonPath::compile(path) {
                let _ = p.find(&doc());
            }
        }
        let p = JsonPath::compile("[-9223372036854775808]").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.find(&json!([1])).is_err());
    }
}
