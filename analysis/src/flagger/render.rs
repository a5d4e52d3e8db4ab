//! Rendering of a `MetricTemplate` query (`spec.query`), as Flagger does it.
//!
//! # The model
//!
//! Flagger parses `spec.query` as a Go `text/template` with no data (dot is nil) and
//! eight niladic functions taken from the canary and the metric:
//!
//! | function | value |
//! |---|---|
//! | `name` | the canary's name |
//! | `namespace` | the canary's namespace |
//! | `target` | `spec.targetRef.name` |
//! | `service` | `spec.service.name`, else the target |
//! | `ingress` | `spec.ingressRef.name`, else the target |
//! | `route` | `spec.routeRef.name`, else the target (Knative: the latest created revision, an input) |
//! | `interval` | the metric's `interval` (default `1m`) |
//! | `variables` | the metric's `templateVariables`, a map read as `variables.<key>` |
//!
//! A key missing from `templateVariables` is an error (Flagger's own test pins it). Dot
//! is nil, so `{{ .name }}` fails as it does in Flagger. Spaces inside the braces are
//! optional (`{{namespace}}` and `{{ namespace }}` are the same), `{{-` and `-}}` trim
//! the whitespace next to the action, and `{{/* comments */}}` render nothing.
//!
//! # What is supported
//!
//! The subset Flagger's templates use: the eight functions, `variables.<key>`, string
//! literals, `printf` with `%s` / `%v` / `%%` (Flagger's Skipper tutorial builds its
//! route pattern with it), trim markers and comments. Control structures (`if`,
//! `range`, ...), pipelines, numbers, template variables (`$x`), parentheses, Go's other
//! builtin functions and arguments to the eight functions are rejected with
//! [`RenderError::Unsupported`] or [`RenderError::Arguments`], never rendered wrongly.
//! Every error names what failed and where ([`Position`]).

use std::collections::BTreeMap;
use std::fmt;

use rollout_core::flagger::spec::{Canary, CanaryMetric};

/// The values a query template sees (Flagger's `MetricTemplateModel`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryModel {
    /// The canary's name (`{{ name }}`).
    pub name: String,
    /// The canary's namespace (`{{ namespace }}`).
    pub namespace: String,
    /// `spec.targetRef.name` (`{{ target }}`).
    pub target: String,
    /// `spec.service.name`, else the target (`{{ service }}`).
    pub service: String,
    /// `spec.ingressRef.name`, else the target (`{{ ingress }}`).
    pub ingress: String,
    /// `spec.routeRef.name`, else the target (`{{ route }}`).
    pub route: String,
    /// The metric's query window (`{{ interval }}`).
    pub interval: String,
    /// The metric's `templateVariables` (`{{ variables.<key> }}`).
    pub variables: BTreeMap<String, String>,
}

impl QueryModel {
    /// The model Flagger builds for `metric` of `canary`. A canary without a namespace
    /// is read as being in `default` (as the Flagger machine does); the Knative revision
    /// Flagger uses as `route` is not in the spec, so set [`route`](Self::route) from
    /// the cluster for Knative canaries.
    pub fn from_canary(canary: &Canary, metric: &CanaryMetric) -> QueryModel {
        let spec = &canary.spec;
        let target = spec.target_ref.name.clone();
        let or_target = |s: Option<&str>| match s {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => target.clone(),
        };
        QueryModel {
            name: canary.metadata.name.clone().unwrap_or_default(),
            namespace: canary
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            service: or_target(spec.service.name.as_deref()),
            ingress: or_target(spec.ingress_ref.as_ref().map(|r| r.name.as_str())),
            route: or_target(spec.route_ref.as_ref().map(|r| r.name.as_str())),
            interval: metric.interval().to_string(),
            variables: metric.template_variables.clone(),
            target,
        }
    }

    /// The value of one of the seven string functions (`name`, `namespace`, `target`,
    /// `service`, `ingress`, `route`, `interval`); `None` for any other name.
    pub fn function(&self, name: &str) -> Option<&str> {
        Some(match name {
            "name" => &self.name,
            "namespace" => &self.namespace,
            "target" => &self.target,
            "service" => &self.service,
            "ingress" => &self.ingress,
            "route" => &self.route,
            "interval" => &self.interval,
            _ => return None,
        })
    }
}

/// The names a query template may call.
pub const TEMPLATE_FUNCTIONS: [&str; 8] = [
    "name",
    "namespace",
    "target",
    "service",
    "ingress",
    "route",
    "interval",
    "variables",
];

/// Where in the template something is: a byte offset, and the 1-based line and column
/// (in characters) it falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// Byte offset from the start of the template.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to its length and moved back to
    /// a character boundary).
    pub fn at(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position {
            offset,
            line,
            column,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a query template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A `{{` without its `}}`.
    #[error("unclosed action at {position}")]
    UnclosedAction {
        /// Where the action starts.
        position: Position,
    },
    /// A `{{/*` comment without `*/}}`.
    #[error("unclosed comment at {position}")]
    UnclosedComment {
        /// Where the comment starts.
        position: Position,
    },
    /// A name that is not one of [`TEMPLATE_FUNCTIONS`].
    #[error("function {name:?} not defined at {position}")]
    UnknownFunction {
        /// The name.
        name: String,
        /// Where it is.
        position: Position,
    },
    /// `{{ variables.<key> }}` with a key `templateVariables` does not have.
    #[error("map has no entry for key {key:?} (variables.{key} at {position})")]
    MissingVariable {
        /// The key.
        key: String,
        /// Where the reference is.
        position: Position,
    },
    /// A function given arguments (they all take none).
    #[error("wrong number of args for {name}: want 0 got {got} at {position}")]
    Arguments {
        /// The function.
        name: String,
        /// How many arguments were given.
        got: usize,
        /// Where the function is.
        position: Position,
    },
    /// A field of a string (`{{ target.x }}`, `{{ variables.a.b }}`).
    #[error("can't evaluate field {field} of {name} (a string) at {position}")]
    FieldOfString {
        /// What was dereferenced (`target`, `variables.a`).
        name: String,
        /// The field asked for.
        field: String,
        /// Where the reference is.
        position: Position,
    },
    /// `{{ .x }}`: the template's data is nil.
    #[error("nil data; no entry for key {key:?} at {position}")]
    NilData {
        /// The key asked of dot (empty for a bare `.`).
        key: String,
        /// Where it is.
        position: Position,
    },
    /// Valid Go template syntax outside the supported subset (control structures,
    /// pipelines, literals, `$` variables, parentheses), or an empty action.
    #[error("unsupported template action {action:?} at {position}: {reason}")]
    Unsupported {
        /// The action's text, trimmed.
        action: String,
        /// Where the action starts.
        position: Position,
        /// What is not supported.
        reason: &'static str,
    },
}

impl RenderError {
    /// Where the error is.
    pub fn position(&self) -> Position {
        match self {
            RenderError::UnclosedAction { position }
            | RenderError::UnclosedComment { position }
            | RenderError::UnknownFunction { position, .. }
            | RenderError::MissingVariable { position, .. }
            | RenderError::Arguments { position, .. }
            | RenderError::FieldOfString { position, .. }
            | RenderError::NilData { position, .. }
            | RenderError::Unsupported { position, .. } => *position,
        }
    }
}

/// Go template "space": space, tab, carriage return, newline.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

const KEYWORDS: [&str; 13] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    "nil", "true", "false",
];

/// Go's predefined template functions other than `printf` (valid in Flagger, not
/// supported here).
const GO_BUILTINS: [&str; 18] = [
    "and", "call", "eq", "ge", "gt", "html", "index", "js", "le", "len", "lt", "ne", "not", "or",
    "print", "println", "slice", "urlquery",
];

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits a leading identifier off `s`.
fn split_ident(s: &str) -> (&str, &str) {
    if !s.chars().next().is_some_and(is_ident_start) {
        return ("", s);
    }
    let end = s
        .char_indices()
        .find(|&(_, c)| !is_ident_char(c))
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// The byte index of the `}}` that closes an action whose text starts at `from`,
/// skipping `}}` inside string literals. `None` when the action is not closed.
fn find_close(template: &str, from: usize) -> Option<usize> {
    let bytes = template.as_bytes();
    let mut i = from;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(b'"') if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'`' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

/// Renders a `MetricTemplate` query with `model` (see the module docs for the subset).
pub fn render_query(template: &str, model: &QueryModel) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest_start = 0usize;
    while let Some(rel) = template[rest_start..].find("{{") {
        let open = rest_start + rel;
        let mut text = &template[rest_start..open];
        let mut content_start = open + 2;
        let mut chars = template[content_start..].chars();
        if chars.next() == Some('-') && chars.next().is_some_and(is_space) {
            text = text.trim_end_matches(is_space);
            content_start += 1;
        }
        out.push_str(text);

        let body = &template[content_start..];
        let lead = body.len() - body.trim_start_matches(is_space).len();
        let (close, trim_right) = if body[lead..].starts_with("/*") {
            let comment_at = content_start + lead;
            let unclosed = || RenderError::UnclosedComment {
                position: Position::at(template, open),
            };
            let end_rel = template[comment_at + 2..].find("*/").ok_or_else(unclosed)?;
            let after = comment_at + 2 + end_rel + 2;
            let tail = &template[after..];
            if tail.starts_with("}}") {
                (after, false)
            } else if tail.starts_with(is_space) && tail[1..].starts_with("-}}") {
                (after + 2, true)
            } else {
                return Err(unclosed());
            }
        } else {
            let close = find_close(template, content_start).ok_or(RenderError::UnclosedAction {
                position: Position::at(template, open),
            })?;
            let inner = &template[content_start..close];
            let trim_right = inner.ends_with('-')
                && inner[..inner.len() - 1]
                    .chars()
                    .next_back()
                    .is_some_and(is_space);
            let inner_end = if trim_right { close - 1 } else { close };
            let value = eval_action(template, content_start, inner_end, model)?;
            out.push_str(&value);
            (close, trim_right)
        };
        rest_start = close + 2;
        if trim_right {
            let tail = &template[rest_start..];
            rest_start += tail.len() - tail.trim_start_matches(is_space).len();
        }
    }
    out.push_str(&template[rest_start..]);
    Ok(out)
}

/// One token of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'t> {
    /// A name, with the `.field` chain after it.
    Name(&'t str, Vec<&'t str>),
    /// A string literal, unquoted.
    Str(String),
    /// `.field` on dot.
    Dot(&'t str),
    /// Anything else: a reason it is not supported.
    Other(&'static str),
}

/// Reads a Go interpreted string literal starting after its opening quote; returns the
/// value and the rest after the closing quote.
fn read_string(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                _ => return None,
            },
            '\n' => return None,
            c => out.push(c),
        }
    }
    None
}

/// Splits an action into tokens, each with its byte offset inside the action.
fn tokenize(action: &str) -> Vec<(usize, Token<'_>)> {
    let mut tokens = Vec::new();
    let mut rest = action;
    loop {
        rest = rest.trim_start_matches(is_space);
        let at = action.len() - rest.len();
        let Some(c) = rest.chars().next() else {
            return tokens;
        };
        let (token, next) = if c == '"' {
            match read_string(&rest[1..]) {
                Some((v, next)) => (Token::Str(v), next),
                None => (
                    Token::Other("unsupported or unterminated string literal"),
                    "",
                ),
            }
        } else if c == '`' {
            match rest[1..].find('`') {
                Some(end) => (Token::Str(rest[1..=end].to_string()), &rest[end + 2..]),
                None => (Token::Other("unterminated raw string"), ""),
            }
        } else if c == '.' {
            let (key, next) = split_ident(&rest[1..]);
            (Token::Dot(key), next)
        } else if is_ident_start(c) {
            let (name, mut next) = split_ident(rest);
            let mut fields = Vec::new();
            while let Some(after) = next.strip_prefix('.') {
                let (field, after) = split_ident(after);
                if field.is_empty() {
                    break;
                }
                fields.push(field);
                next = after;
            }
            if next.starts_with(|c: char| !is_space(c)) {
                (Token::Other("unexpected character after a name"), "")
            } else {
                (Token::Name(name, fields), next)
            }
        } else if c == '|' {
            (Token::Other("pipelines are not supported"), "")
        } else {
            (
                Token::Other(
                    "only the template functions, printf and string literals are supported \
                     (no numbers, `$` variables, parentheses)",
                ),
                "",
            )
        };
        tokens.push((at, token));
        rest = next;
    }
}

/// Evaluates the action `template[start..end]` (without delimiters and trim markers).
fn eval_action(
    template: &str,
    start: usize,
    end: usize,
    model: &QueryModel,
) -> Result<String, RenderError> {
    let raw = &template[start..end];
    let lead = raw.len() - raw.trim_start_matches(is_space).len();
    let action = raw.trim_matches(is_space);
    let base = start + lead;
    let pos = |at: usize| Position::at(template, base + at);
    let unsupported = |reason: &'static str| RenderError::Unsupported {
        action: action.to_string(),
        position: pos(0),
        reason,
    };
    let tokens = tokenize(action);
    if let Some(reason) = tokens.iter().find_map(|(_, t)| match t {
        Token::Other(reason) => Some(*reason),
        _ => None,
    }) {
        return Err(unsupported(reason));
    }
    let Some(((at, first), args)) = tokens.split_first() else {
        return Err(unsupported("an action must call a function"));
    };
    match first {
        Token::Name(name, fields) if *name == "printf" && fields.is_empty() => {
            let Some(((fat, format), values)) = args.split_first() else {
                return Err(RenderError::Arguments {
                    name: "printf".into(),
                    got: 0,
                    position: pos(*at),
                });
            };
            let Token::Str(format) = format else {
                return Err(RenderError::Unsupported {
                    action: action.to_string(),
                    position: pos(*fat),
                    reason: "the printf format must be a string literal",
                });
            };
            let values = values
                .iter()
                .map(|(vat, v)| operand(v, pos(*vat), model, &unsupported))
                .collect::<Result<Vec<_>, _>>()?;
            go_sprintf(format, &values).ok_or_else(|| {
                unsupported("printf verbs other than %s, %v and %% are not supported")
            })
        }
        Token::Name(name, _) if KEYWORDS.contains(name) => Err(unsupported(
            "control structures and literals are not supported",
        )),
        Token::Name(name, _) if GO_BUILTINS.contains(name) => Err(unsupported(
            "Go's builtin functions other than printf are not supported",
        )),
        Token::Name(name, _) if !args.is_empty() && TEMPLATE_FUNCTIONS.contains(name) => {
            Err(RenderError::Arguments {
                name: (*name).to_string(),
                got: args.len(),
                position: pos(*at),
            })
        }
        Token::Str(s) if args.is_empty() => Ok(s.clone()),
        Token::Str(_) => Err(unsupported("a string literal takes no arguments")),
        other => operand(other, pos(*at), model, &unsupported),
    }
}

/// The value of a niladic function, `variables.<key>` or a string literal.
fn operand(
    token: &Token<'_>,
    position: Position,
    model: &QueryModel,
    unsupported: &dyn Fn(&'static str) -> RenderError,
) -> Result<String, RenderError> {
    match token {
        Token::Str(s) => Ok(s.clone()),
        Token::Dot(key) => Err(RenderError::NilData {
            key: (*key).to_string(),
            position,
        }),
        Token::Other(reason) => Err(unsupported(reason)),
        Token::Name(name, fields) => {
            if KEYWORDS.contains(name) || GO_BUILTINS.contains(name) || *name == "printf" {
                return Err(unsupported(
                    "only niladic functions, variables.<key> and string literals may be printf arguments",
                ));
            }
            if !TEMPLATE_FUNCTIONS.contains(name) {
                return Err(RenderError::UnknownFunction {
                    name: (*name).to_string(),
                    position,
                });
            }
            if *name != "variables" {
                return match fields.first() {
                    Some(field) => Err(RenderError::FieldOfString {
                        name: (*name).to_string(),
                        field: (*field).to_string(),
                        position,
                    }),
                    None => Ok(model.function(name).unwrap_or_default().to_string()),
                };
            }
            match fields.as_slice() {
                [] => Ok(go_map_string(&model.variables)),
                [key, rest @ ..] => {
                    let Some(value) = model.variables.get(*key) else {
                        return Err(RenderError::MissingVariable {
                            key: (*key).to_string(),
                            position,
                        });
                    };
                    match rest.first() {
                        Some(field) => Err(RenderError::FieldOfString {
                            name: format!("variables.{key}"),
                            field: (*field).to_string(),
                            position,
                        }),
                        None => Ok(value.clone()),
                    }
                }
            }
        }
    }
}

/// Go's `fmt.Sprintf` for string operands and the verbs `%s`, `%v`, `%%`: a missing
/// operand prints `%!s(MISSING)`, extra operands `%!(EXTRA string=a, string=b)`.
/// `None` for any other verb or flag.
fn go_sprintf(format: &str, values: &[String]) -> Option<String> {
    let mut out = String::with_capacity(format.len());
    let mut next = 0usize;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '%' => out.push('%'),
            verb @ ('s' | 'v') => match values.get(next) {
                Some(v) => {
                    out.push_str(v);
                    next += 1;
                }
                None => {
                    out.push_str("%!");
                    out.push(verb);
                    out.push_str("(MISSING)");
                }
            },
            _ => return None,
        }
    }
    if next < values.len() {
        out.push_str("%!(EXTRA ");
        for (i, v) in values[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str("string=");
            out.push_str(v);
        }
        out.push(')');
    }
    Some(out)
}

/// Go's `fmt` rendering of a `map[string]string`: `map[k1:v1 k2:v2]`, keys sorted.
fn go_map_string(map: &BTreeMap<String, String>) -> String {
    let mut out = String::from("map[");
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push(':');
        out.push_str(v);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> QueryModel {
        QueryModel {
            name: "podinfo".into(),
            namespace: "test".into(),
            target: "podinfo".into(),
            service: "podinfo-svc".into(),
            ingress: "podinfo-ing".into(),
            route: "podinfo-route".into(),
            interval: "1m".into(),
            variables: BTreeMap::from([("k".to_string(), "v".to_string())]),
        }
    }

    #[test]
    fn functions_with_and_without_spaces() {
        let m = model();
        assert_eq!(
            render_query("{{namespace}}/{{ target }}/{{  interval\t}}", &m).unwrap(),
            "test/podinfo/1m"
        );
        assert_eq!(render_query("a {{- name -}} b", &m).unwrap(), "apodinfob");
        assert_eq!(render_query("x{{/* c */}}y", &m).unwrap(), "xy");
        assert_eq!(render_query("x {{- /* c */ -}} y", &m).unwrap(), "xy");
        assert_eq!(render_query("{{ variables }}", &m).unwrap(), "map[k:v]");
    }

    #[test]
    fn errors_have_positions() {
        let m = model();
        let e = render_query("ab\n  {{ variables.nope }}", &m).unwrap_err();
        assert_eq!(
            e,
            RenderError::MissingVariable {
                key: "nope".into(),
                position: Position {
                    offset: 8,
                    line: 2,
                    column: 6
                }
            }
        );
        assert!(matches!(
            render_query("{{ foo }}", &m),
            Err(RenderError::UnknownFunction { .. })
        ));
        assert!(matches!(
            render_query("{{ .name }}", &m),
            Err(RenderError::NilData { .. })
        ));
        assert!(matches!(
            render_query("{{ name", &m),
            Err(RenderError::UnclosedAction { .. })
        ));
    }
}
