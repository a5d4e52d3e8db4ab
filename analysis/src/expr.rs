//! The condition language of AnalysisTemplates: a subset of expr-lang.
//!
//! Source text is tokenized and parsed (precedence climbing) into an [`Expr`] tree once by
//! [`Program::compile`]; the tree is then evaluated any number of times by
//! [`Program::eval`] against an [`Env`] that binds `result`. Every error carries the byte
//! position in the source it refers to.

use std::collections::BTreeMap;
use std::fmt;

/// A runtime value: the shapes a metric provider hands to the evaluator.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// Go `nil` (including a typed nil pointer).
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` / `int64`.
    Int(i64),
    /// `float64`.
    Float(f64),
    /// `string`.
    String(String),
    /// A slice (`[]float64`, `[]any`).
    Array(Vec<Value>),
    /// `map[string]any`.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Converts decoded JSON the way Go's `encoding/json` does into `any`: every number
    /// becomes a [`Value::Float`].
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The Go type name used in error messages (`int`, `float64`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Array(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// Formats a float the way Go's `strconv.FormatFloat(f, 'f'/'e', -1, 64)` and
/// `encoding/json` do: shortest round-trip digits, exponent form outside `[1e-6, 1e21)`,
/// and `NaN` / `+Inf` / `-Inf` for the non-finite values.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        if let Some((mant, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let digits = if digits.len() < 2 {
                format!("0{digits}")
            } else {
                digits.to_string()
            };
            return format!("{mant}e{sign}{digits}");
        }
        return s;
    }
    format!("{f}")
}

/// The environment an expression runs in: the value bound to `result`.
#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    /// The metric result.
    pub result: Value,
}

impl Env {
    /// An environment binding `result`.
    pub fn new(result: Value) -> Self {
        Env { result }
    }
}

/// Why an expression could not be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text is not a well-formed expression.
    #[error("syntax error: {message} (byte {position})")]
    Syntax {
        /// Byte offset in the source.
        position: usize,
        /// What was wrong.
        message: String,
    },
    /// An identifier that is neither `result` nor a builtin.
    #[error("unknown name {name} (byte {position})")]
    UnknownName {
        /// Byte offset in the source.
        position: usize,
        /// The identifier.
        name: String,
    },
    /// Evaluation failed (type mismatch, index out of range, helper failure, ...).
    #[error("{message} (byte {position})")]
    Eval {
        /// Byte offset of the failing sub-expression.
        position: usize,
        /// What went wrong, in expr-lang / Go wording where known.
        message: String,
    },
}

impl ExprError {
    /// Byte offset in the source the error refers to.
    pub fn position(&self) -> usize {
        match self {
            ExprError::Syntax { position, .. }
            | ExprError::UnknownName { position, .. }
            | ExprError::Eval { position, .. } => *position,
        }
    }
}

fn eval_err(position: usize, message: impl Into<String>) -> ExprError {
    ExprError::Eval {
        position,
        message: message.into(),
    }
}

fn syntax(position: usize, message: impl Into<String>) -> ExprError {
    ExprError::Syntax {
        position,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------
// AST
// ---------------------------------------------------------------------------------------

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinOp {
    /// `||` / `or`
    Or,
    /// `&&` / `and`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `**`
    Pow,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
        }
    }

    /// (precedence, right associative)
    fn prec(self) -> (u8, bool) {
        match self {
            BinOp::Or => (1, false),
            BinOp::And => (2, false),
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In => {
                (3, false)
            }
            BinOp::Add | BinOp::Sub => (4, false),
            BinOp::Mul | BinOp::Div | BinOp::Mod => (5, false),
            BinOp::Pow => (7, true),
        }
    }
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnOp {
    /// `!` / `not`
    Not,
    /// `-`
    Neg,
    /// `+`
    Plus,
}

/// A builtin function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Builtin {
    /// `len(x)`
    Len,
    /// `all(arr, pred)`
    All,
    /// `any(arr, pred)`
    Any,
    /// `none(arr, pred)`
    None,
    /// `one(arr, pred)`
    One,
    /// `filter(arr, pred)`
    Filter,
    /// `map(arr, f)`
    Map,
    /// `count(arr, pred)`
    Count,
    /// `abs(x)`
    Abs,
    /// `max(...)`
    Max,
    /// `min(...)`
    Min,
    /// `asInt(x)` (Argo)
    AsInt,
    /// `asFloat(x)` (Argo)
    AsFloat,
    /// `isNaN(x)` (Argo)
    IsNaN,
    /// `isInf(x)` (Argo)
    IsInf,
    /// `isNil(x)` (Argo)
    IsNil,
    /// `default(x, d)` (Argo)
    Default,
}

const BUILTINS: &[(&str, Builtin)] = &[
    ("len", Builtin::Len),
    ("all", Builtin::All),
    ("any", Builtin::Any),
    ("none", Builtin::None),
    ("one", Builtin::One),
    ("filter", Builtin::Filter),
    ("map", Builtin::Map),
    ("count", Builtin::Count),
    ("abs", Builtin::Abs),
    ("max", Builtin::Max),
    ("min", Builtin::Min),
    ("asInt", Builtin::AsInt),
    ("asFloat", Builtin::AsFloat),
    ("isNaN", Builtin::IsNaN),
    ("isInf", Builtin::IsInf),
    ("isNil", Builtin::IsNil),
    ("default", Builtin::Default),
];

impl Builtin {
    /// The name as written in expressions.
    pub fn name(self) -> &'static str {
        BUILTINS
            .iter()
            .find(|(_, b)| *b == self)
            .map_or("?", |(n, _)| n)
    }

    fn lookup(name: &str) -> Option<Builtin> {
        BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    fn takes_predicate(self) -> bool {
        matches!(
            self,
            Builtin::All
                | Builtin::Any
                | Builtin::None
                | Builtin::One
                | Builtin::Filter
                | Builtin::Map
                | Builtin::Count
        )
    }
}

/// One node of the syntax tree, with the byte position it starts at.
///
/// Equality ignores positions, so a tree printed with `Display` and parsed again compares
/// equal to the original.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Byte offset of the node in the source.
    pub position: usize,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

/// The kinds of syntax nodes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExprKind {
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal.
    Str(String),
    /// `result`
    Result,
    /// `#`, the element inside a predicate.
    Pointer,
    /// `[a, b, ...]`
    Array(Vec<Expr>),
    /// `a.b` or `a["b"]` (the key as an expression).
    Member(Box<Expr>, Box<Expr>),
    /// A unary operation.
    Unary(UnOp, Box<Expr>),
    /// A binary operation.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A builtin call; predicate arguments are stored as plain expressions using `#`.
    Call(Builtin, Vec<Expr>),
}

fn write_str_lit(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Writes the left operand of a binary `op`: a chain of the same left-associative
/// operator (`a && b && c`) is written flat, without parentheses around its links, so
/// that long chains print (and re-parse) without nesting.
fn write_chain(f: &mut fmt::Formatter<'_>, op: BinOp, e: &Expr) -> fmt::Result {
    match &e.kind {
        ExprKind::Binary(inner, l, r) if *inner == op && !op.prec().1 => {
            write_chain(f, op, l)?;
            write!(f, " {} {r}", op.symbol())
        }
        _ => write!(f, "{e}"),
    }
}

impl fmt::Display for Expr {
    /// Fully parenthesised source text that parses back to an equal tree (chains of one
    /// left-associative operator are written flat: `(a && b && c)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Nil => f.write_str("nil"),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Int(i) => {
                if *i < 0 {
                    // i64::MIN has no positive literal; print as a parenthesised expression.
                    write!(f, "({})", i)
                } else {
                    write!(f, "{i}")
                }
            }
            ExprKind::Float(x) => {
                if x.is_finite() && *x >= 0.0 {
                    let s = format!("{x:?}");
                    f.write_str(&s)
                } else {
                    write!(f, "({x:?})")
                }
            }
            ExprKind::Str(s) => write_str_lit(f, s),
            ExprKind::Result => f.write_str("result"),
            ExprKind::Pointer => f.write_str("#"),
            ExprKind::Array(items) => {
                f.write_str("[")?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
            ExprKind::Member(obj, key) => write!(f, "{obj}[{key}]"),
            ExprKind::Unary(op, e) => match op {
                UnOp::Not => write!(f, "(!{e})"),
                UnOp::Neg => write!(f, "(-{e})"),
                UnOp::Plus => write!(f, "(+{e})"),
            },
            ExprKind::Binary(op, l, r) => {
                f.write_str("(")?;
                write_chain(f, *op, l)?;
                write!(f, " {} {r})", op.symbol())
            }
            ExprKind::Ternary(c, a, b) => write!(f, "({c} ? {a} : {b})"),
            ExprKind::Call(b, args) => {
                write!(f, "{}(", b.name())?;
                for (i, e) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if i == 1 && b.takes_predicate() {
                        write!(f, "{{{e}}}")?;
                    } else {
                        write!(f, "{e}")?;
                    }
                }
                f.write_str(")")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
    Eof,
}

const OPS: &[&str] = &[
    "**", "==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "%", "<", ">", "!", "(", ")",
    "[", "]", "{", "}", ",", ".", "?", ":", "#",
];

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                i += 1;
            }
            let mut is_float = false;
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                is_float = true;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    is_float = true;
                    i = j;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = src[start..i].chars().filter(|c| *c != '_').collect();
            let tok = if is_float {
                let x: f64 = text
                    .parse()
                    .map_err(|_| syntax(start, format!("invalid float literal {text}")))?;
                // Go's ParseFloat rejects a literal beyond the largest float64 (ErrRange)
                // instead of making it infinite; infinity has no literal to print back.
                if x.is_infinite() {
                    return Err(syntax(
                        start,
                        format!("invalid float literal {text}: value out of range"),
                    ));
                }
                Tok::Float(x)
            } else {
                Tok::Int(
                    text.parse()
                        .map_err(|_| syntax(start, format!("invalid integer literal {text}")))?,
                )
            };
            out.push((tok, start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$')
            {
                i += 1;
            }
            out.push((Tok::Ident(src[start..i].to_string()), start));
            continue;
        }
        if c == b'"' || c == b'\'' {
            let quote = c as char;
            let mut s = String::new();
            let mut chars = src[i + 1..].char_indices();
            let mut closed = None;
            while let Some((off, ch)) = chars.next() {
                if ch == quote {
                    closed = Some(i + 1 + off + 1);
                    break;
                }
                if ch == '\\' {
                    let Some((eoff, esc)) = chars.next() else {
                        break;
                    };
                    match esc {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        '0' => s.push('\0'),
                        '\\' | '\'' | '"' => s.push(esc),
                        'u' => {
                            let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                            let ch = u32::from_str_radix(&hex, 16)
                                .ok()
                                .filter(|_| hex.len() == 4)
                                .and_then(char::from_u32)
                                .ok_or_else(|| {
                                    syntax(i + 1 + eoff - 1, "invalid unicode escape")
                                })?;
                            s.push(ch);
                        }
                        _ => return Err(syntax(i + 1 + eoff - 1, "invalid escape sequence")),
                    }
                    continue;
                }
                s.push(ch);
            }
            let Some(end) = closed else {
                return Err(syntax(start, "literal not terminated"));
            };
            out.push((Tok::Str(s), start));
            i = end;
            continue;
        }
        let rest = &src[i..];
        match OPS.iter().find(|op| rest.starts_with(**op)) {
            Some(op) => {
                out.push((Tok::Op(op), start));
                i += op.len();
            }
            None => {
                let ch = rest.chars().next().unwrap_or('?');
                return Err(syntax(start, format!("unexpected character {ch:?}")));
            }
        }
    }
    out.push((Tok::Eof, src.len()));
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

/// The deepest syntax tree accepted: nodes on the longest path from the root to a leaf,
/// where the links of a chain of one left-associative operator (`a && b && c`) count as
/// one level, as they are printed and parsed without nesting.
/// `Display` parenthesises every node, which costs at most 4 levels of [`MAX_NESTING`] per
/// tree level when the text is parsed again, so every tree within this depth parses back
/// from its printed form.
const MAX_TREE_DEPTH: usize = 24;

/// The parser's recursion bound (parentheses, operators, indexes, arguments). A level
/// costs several stack frames (about 9 KiB per parenthesis in a debug build), so this
/// keeps parsing well inside a 2 MiB thread stack.
const MAX_NESTING: usize = 100;

/// The most binary operators in one chain at one level (`a && b && ...`).
const MAX_CHAIN: usize = 256;

/// The deepest tree accepted counting every node (evaluation and drop recurse over it).
const MAX_ABSOLUTE_DEPTH: usize = 320;

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }

    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn expect(&mut self, op: &str) -> Result<usize, ExprError> {
        if self.is_op(op) {
            Ok(self.bump().1)
        } else {
            Err(syntax(
                self.pos(),
                format!("expected {op:?}, found {}", describe(self.peek())),
            ))
        }
    }

    fn binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Op("||") => BinOp::Or,
            Tok::Op("&&") => BinOp::And,
            Tok::Op("==") => BinOp::Eq,
            Tok::Op("!=") => BinOp::Ne,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op("<=") => BinOp::Le,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op(">=") => BinOp::Ge,
            Tok::Op("+") => BinOp::Add,
            Tok::Op("-") => BinOp::Sub,
            Tok::Op("*") => BinOp::Mul,
            Tok::Op("/") => BinOp::Div,
            Tok::Op("%") => BinOp::Mod,
            Tok::Op("**") => BinOp::Pow,
            Tok::Ident(s) if s == "or" => BinOp::Or,
            Tok::Ident(s) if s == "and" => BinOp::And,
            Tok::Ident(s) if s == "in" => BinOp::In,
            _ => return None,
        })
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(syntax(self.pos(), "expression nested too deeply"));
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let cond = self.binary(0)?;
        let out = if self.is_op("?") {
            let position = cond.position;
            self.bump();
            let a = self.expression()?;
            self.expect(":")?;
            let b = self.expression()?;
            Expr {
                kind: ExprKind::Ternary(Box::new(cond), Box::new(a), Box::new(b)),
                position,
            }
        } else {
            cond
        };
        self.depth -= 1;
        Ok(out)
    }

    fn binary(&mut self, min: u8) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        let mut chain = 0;
        while let Some(op) = self.binop() {
            let (prec, right) = op.prec();
            if prec < min {
                break;
            }
            self.bump();
            chain += 1;
            if chain > MAX_CHAIN {
                return Err(syntax(
                    self.pos(),
                    "expression has too many operators in a row",
                ));
            }
            self.enter()?;
            let rhs = self.binary(if right { prec } else { prec + 1 })?;
            self.depth -= 1;
            let position = lhs.position;
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                position,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        let position = self.pos();
        let op = match self.peek() {
            Tok::Op("!") => Some(UnOp::Not),
            Tok::Ident(s) if s == "not" => Some(UnOp::Not),
            Tok::Op("-") => Some(UnOp::Neg),
            Tok::Op("+") => Some(UnOp::Plus),
            _ => None,
        };
        match op {
            Some(op) => {
                self.bump();
                self.enter()?;
                // Unary binds tighter than binary operators except `**`, as in expr-lang.
                let operand = if op == UnOp::Not {
                    self.unary()?
                } else {
                    let base = self.unary()?;
                    self.pow_tail(base)?
                };
                self.depth -= 1;
                Ok(Expr {
                    kind: ExprKind::Unary(op, Box::new(operand)),
                    position,
                })
            }
            None => self.postfix(),
        }
    }

    fn pow_tail(&mut self, base: Expr) -> Result<Expr, ExprError> {
        if self.is_op("**") {
            self.bump();
            self.enter()?;
            let rhs = self.unary()?;
            let rhs = self.pow_tail(rhs)?;
            self.depth -= 1;
            let position = base.position;
            return Ok(Expr {
                kind: ExprKind::Binary(BinOp::Pow, Box::new(base), Box::new(rhs)),
                position,
            });
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        let depth = self.depth;
        loop {
            if self.is_op(".") || self.is_op("[") {
                self.enter()?;
            }
            if self.is_op(".") {
                self.bump();
                let (tok, p) = self.bump();
                let Tok::Ident(name) = tok else {
                    return Err(syntax(
                        p,
                        format!("expected name, found {}", describe(&tok)),
                    ));
                };
                if self.is_op("(") {
                    return Err(syntax(self.pos(), format!("unknown method {name}")));
                }
                let position = e.position;
                e = Expr {
                    kind: ExprKind::Member(
                        Box::new(e),
                        Box::new(Expr {
                            kind: ExprKind::Str(name),
                            position: p,
                        }),
                    ),
                    position,
                };
            } else if self.is_op("[") {
                self.bump();
                let key = self.expression()?;
                self.expect("]")?;
                let position = e.position;
                e = Expr {
                    kind: ExprKind::Member(Box::new(e), Box::new(key)),
                    position,
                };
            } else if self.is_op("(") {
                return Err(syntax(self.pos(), "value is not callable"));
            } else {
                self.depth = depth;
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let (tok, position) = self.bump();
        let kind = match tok {
            Tok::Int(i) => ExprKind::Int(i),
            Tok::Float(x) => ExprKind::Float(x),
            Tok::Str(s) => ExprKind::Str(s),
            Tok::Op("#") => ExprKind::Pointer,
            Tok::Op("(") => {
                let e = self.expression()?;
                self.expect(")")?;
                return Ok(e);
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                if !self.is_op("]") {
                    loop {
                        items.push(self.expression()?);
                        if self.is_op(",") {
                            self.bump();
                            if self.is_op("]") {
                                break;
                            }
                        } else {
                            break;
                        }
                    }
                }
                self.expect("]")?;
                ExprKind::Array(items)
            }
            Tok::Ident(name) => match name.as_str() {
                "nil" => ExprKind::Nil,
                "true" => ExprKind::Bool(true),
                "false" => ExprKind::Bool(false),
                "result" => ExprKind::Result,
                _ => match Builtin::lookup(&name) {
                    Some(b) if self.is_op("(") => return self.call(b, position),
                    _ => return Err(ExprError::UnknownName { position, name }),
                },
            },
            other => {
                return Err(syntax(position, format!("unexpected {}", describe(&other))));
            }
        };
        Ok(Expr { kind, position })
    }

    fn call(&mut self, b: Builtin, position: usize) -> Result<Expr, ExprError> {
        self.expect("(")?;
        let mut args = Vec::new();
        if !self.is_op(")") {
            loop {
                if args.len() == 1 && b.takes_predicate() && self.is_op("{") {
                    self.bump();
                    args.push(self.expression()?);
                    self.expect("}")?;
                } else {
                    args.push(self.expression()?);
                }
                if self.is_op(",") {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect(")")?;
        let arity_ok = match b {
            Builtin::Max | Builtin::Min => !args.is_empty(),
            Builtin::Default => args.len() == 2,
            _ if b.takes_predicate() => args.len() == 2,
            _ => args.len() == 1,
        };
        if !arity_ok {
            return Err(syntax(
                position,
                format!(
                    "wrong number of arguments for {} ({})",
                    b.name(),
                    args.len()
                ),
            ));
        }
        Ok(Expr {
            kind: ExprKind::Call(b, args),
            position,
        })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Int(i) => format!("{i}"),
        Tok::Float(x) => format!("{x}"),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Ident(s) => s.clone(),
        Tok::Op(o) => format!("{o:?}"),
        Tok::Eof => "end of input".into(),
    }
}

/// Parses source text into a syntax tree.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    let e = p.expression()?;
    if *p.peek() != Tok::Eof {
        return Err(syntax(
            p.pos(),
            format!("unexpected {}", describe(p.peek())),
        ));
    }
    if let Some(position) = too_deep(&e, 1, 1) {
        return Err(syntax(position, "expression nested too deeply"));
    }
    Ok(e)
}

/// The position of the first node deeper than [`MAX_TREE_DEPTH`] (counting a chain of
/// one left-associative operator as one level) or than [`MAX_ABSOLUTE_DEPTH`] (counting
/// every node); `depth` and `absolute` are `e`'s own. Recursion is bounded by the
/// parser's [`MAX_NESTING`] and [`MAX_CHAIN`].
fn too_deep(e: &Expr, depth: usize, absolute: usize) -> Option<usize> {
    if depth > MAX_TREE_DEPTH || absolute > MAX_ABSOLUTE_DEPTH {
        return Some(e.position);
    }
    let child = |c: &Expr| too_deep(c, depth + 1, absolute + 1);
    match &e.kind {
        ExprKind::Array(items) | ExprKind::Call(_, items) => items.iter().find_map(child),
        ExprKind::Binary(op, a, b) => {
            let chained =
                matches!(&a.kind, ExprKind::Binary(inner, _, _) if inner == op && !op.prec().1);
            let left = if chained {
                too_deep(a, depth, absolute + 1)
            } else {
                child(a)
            };
            left.or_else(|| child(b))
        }
        ExprKind::Member(a, b) => child(a).or_else(|| child(b)),
        ExprKind::Unary(_, a) => child(a),
        ExprKind::Ternary(c, a, b) => child(c).or_else(|| child(a)).or_else(|| child(b)),
        ExprKind::Nil
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Result
        | ExprKind::Pointer => None,
    }
}

// ---------------------------------------------------------------------------------------
// Program and evaluation
// ---------------------------------------------------------------------------------------

/// A compiled expression: parse once, evaluate many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    source: String,
    ast: Expr,
}

impl Program {
    /// Parses `src`; the error gives the byte position of the problem.
    pub fn compile(src: &str) -> Result<Program, ExprError> {
        Ok(Program {
            source: src.to_string(),
            ast: parse(src)?,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax tree.
    pub fn ast(&self) -> &Expr {
        &self.ast
    }

    /// Evaluates against `env`.
    pub fn eval(&self, env: &Env) -> Result<Value, ExprError> {
        eval(&self.ast, env, None)
    }
}

fn truthy(v: &Value, pos: usize, what: &str) -> Result<bool, ExprError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(eval_err(
            pos,
            format!("invalid operation: {what} (non-bool {})", other.type_name()),
        )),
    }
}

/// Deep equality with Go/expr-lang numeric mixing (`1 == 1.0`, NaN never equal).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            a.as_f64() == b.as_f64()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && equal(v1, v2))
        }
        _ => a == b,
    }
}

fn compare(op: BinOp, a: &Value, b: &Value, pos: usize) -> Result<bool, ExprError> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            match a.as_f64().zip(b.as_f64()) {
                Some((x, y)) => x.partial_cmp(&y),
                None => None,
            }
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => {
            return Err(eval_err(
                pos,
                format!(
                    "invalid operation: {} (mismatched types {} and {})",
                    op.symbol(),
                    a.type_name(),
                    b.type_name()
                ),
            ));
        }
    };
    let Some(ord) = ord else {
        return Ok(false); // NaN compares false with everything.
    };
    Ok(match op {
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

fn arith(op: BinOp, a: &Value, b: &Value, pos: usize) -> Result<Value, ExprError> {
    let mismatch = || {
        eval_err(
            pos,
            format!(
                "invalid operation: {} (mismatched types {} and {})",
                op.symbol(),
                a.type_name(),
                b.type_name()
            ),
        )
    };
    match (op, a, b) {
        (BinOp::Add, Value::String(x), Value::String(y)) => {
            return Ok(Value::String(format!("{x}{y}")));
        }
        (BinOp::Add, Value::Array(x), Value::Array(y)) => {
            let mut v = x.clone();
            v.extend(y.iter().cloned());
            return Ok(Value::Array(v));
        }
        _ => {}
    }
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        return Ok(match op {
            BinOp::Add => Value::Int(x.wrapping_add(y)),
            BinOp::Sub => Value::Int(x.wrapping_sub(y)),
            BinOp::Mul => Value::Int(x.wrapping_mul(y)),
            BinOp::Div => Value::Float(x as f64 / y as f64),
            BinOp::Mod => {
                if y == 0 {
                    return Err(eval_err(pos, "integer divide by zero"));
                }
                Value::Int(x.wrapping_rem(y))
            }
            _ => Value::Float((x as f64).powf(y as f64)),
        });
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Err(mismatch());
    };
    Ok(Value::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Mod => return Err(mismatch()),
        _ => x.powf(y),
    }))
}

fn fetch(obj: &Value, key: &Value, pos: usize) -> Result<Value, ExprError> {
    match (obj, key) {
        (Value::Map(m), Value::String(k)) => Ok(m.get(k).cloned().unwrap_or(Value::Nil)),
        (Value::Array(items), Value::Int(_) | Value::Float(_)) => {
            let i = match key {
                Value::Int(i) => *i,
                Value::Float(f) if f.fract() == 0.0 && f.is_finite() => *f as i64,
                _ => return Err(eval_err(pos, "array index must be an integer")),
            };
            let len = items.len() as i64;
            let idx = if i < 0 { i + len } else { i };
            if idx < 0 || idx >= len {
                return Err(eval_err(
                    pos,
                    format!("index out of range: {i} (array length is {len})"),
                ));
            }
            Ok(items[idx as usize].clone())
        }
        (Value::String(s), Value::Int(i)) => {
            let chars: Vec<char> = s.chars().collect();
            let len = chars.len() as i64;
            let idx = if *i < 0 { i + len } else { *i };
            if idx < 0 || idx >= len {
                return Err(eval_err(
                    pos,
                    format!("index out of range: {i} (array length is {len})"),
                ));
            }
            Ok(Value::String(chars[idx as usize].to_string()))
        }
        _ => Err(eval_err(
            pos,
            format!("cannot fetch {} from {}", render_key(key), obj.type_name()),
        )),
    }
}

fn render_key(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => crate::format_measurement(other, crate::ValueStyle::Json),
    }
}

fn eval(e: &Expr, env: &Env, pointer: Option<&Value>) -> Result<Value, ExprError> {
    let pos = e.position;
    Ok(match &e.kind {
        ExprKind::Nil => Value::Nil,
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Int(i) => Value::Int(*i),
        ExprKind::Float(x) => Value::Float(*x),
        ExprKind::Str(s) => Value::String(s.clone()),
        ExprKind::Result => env.result.clone(),
        ExprKind::Pointer => match pointer {
            Some(v) => v.clone(),
            None => return Err(eval_err(pos, "# used outside of a predicate")),
        },
        ExprKind::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| eval(i, env, pointer))
                .collect::<Result<_, _>>()?,
        ),
        ExprKind::Member(obj, key) => {
            let o = eval(obj, env, pointer)?;
            let k = eval(key, env, pointer)?;
            fetch(&o, &k, key.position)?
        }
        ExprKind::Unary(op, inner) => {
            let v = eval(inner, env, pointer)?;
            match (op, &v) {
                (UnOp::Not, _) => Value::Bool(!truthy(&v, pos, "!")?),
                (UnOp::Neg, Value::Int(i)) => Value::Int(i.wrapping_neg()),
                (UnOp::Neg, Value::Float(x)) => Value::Float(-x),
                (UnOp::Plus, Value::Int(_) | Value::Float(_)) => v,
                _ => {
                    return Err(eval_err(
                        pos,
                        format!("invalid operation: unary on {}", v.type_name()),
                    ));
                }
            }
        }
        ExprKind::Binary(op, l, r) => {
            let a = eval(l, env, pointer)?;
            match op {
                BinOp::And => {
                    if !truthy(&a, pos, "&&")? {
                        return Ok(Value::Bool(false));
                    }
                    let b = eval(r, env, pointer)?;
                    return Ok(Value::Bool(truthy(&b, r.position, "&&")?));
                }
                BinOp::Or => {
                    if truthy(&a, pos, "||")? {
                        return Ok(Value::Bool(true));
                    }
                    let b = eval(r, env, pointer)?;
                    return Ok(Value::Bool(truthy(&b, r.position, "||")?));
                }
                _ => {}
            }
            let b = eval(r, env, pointer)?;
            match op {
                BinOp::Eq => Value::Bool(equal(&a, &b)),
                BinOp::Ne => Value::Bool(!equal(&a, &b)),
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    Value::Bool(compare(*op, &a, &b, pos)?)
                }
                BinOp::In => match &b {
                    Value::Array(items) => Value::Bool(items.iter().any(|i| equal(&a, i))),
                    Value::Map(m) => match &a {
                        Value::String(k) => Value::Bool(m.contains_key(k)),
                        _ => Value::Bool(false),
                    },
                    Value::Nil => Value::Bool(false),
                    other => {
                        return Err(eval_err(
                            r.position,
                            format!("operator \"in\" not defined on {}", other.type_name()),
                        ));
                    }
                },
                _ => arith(*op, &a, &b, pos)?,
            }
        }
        ExprKind::Ternary(c, a, b) => {
            let cv = eval(c, env, pointer)?;
            if truthy(&cv, c.position, "?:")? {
                eval(a, env, pointer)?
            } else {
                eval(b, env, pointer)?
            }
        }
        ExprKind::Call(b, args) => call(*b, args, env, pointer, pos)?,
    })
}

fn num_arg(v: &Value, b: Builtin, pos: usize) -> Result<f64, ExprError> {
    v.as_f64().ok_or_else(|| {
        eval_err(
            pos,
            format!("invalid argument for {} (type {})", b.name(), v.type_name()),
        )
    })
}

fn call(
    b: Builtin,
    args: &[Expr],
    env: &Env,
    pointer: Option<&Value>,
    pos: usize,
) -> Result<Value, ExprError> {
    if b.takes_predicate() {
        let coll = eval(&args[0], env, pointer)?;
        let items = match coll {
            Value::Array(items) => items,
            Value::Nil => Vec::new(),
            other => {
                return Err(eval_err(
                    args[0].position,
                    format!("cannot iterate over {}", other.type_name()),
                ));
            }
        };
        let pred = &args[1];
        let test = |item: &Value| -> Result<bool, ExprError> {
            let v = eval(pred, env, Some(item))?;
            truthy(&v, pred.position, "predicate")
        };
        return Ok(match b {
            Builtin::All => {
                for i in &items {
                    if !test(i)? {
                        return Ok(Value::Bool(false));
                    }
                }
                Value::Bool(true)
            }
            Builtin::Any => {
                for i in &items {
                    if test(i)? {
                        return Ok(Value::Bool(true));
                    }
                }
                Value::Bool(false)
            }
            Builtin::None => {
                for i in &items {
                    if test(i)? {
                        return Ok(Value::Bool(false));
                    }
                }
                Value::Bool(true)
            }
            Builtin::One | Builtin::Count => {
                let mut n = 0i64;
                for i in &items {
                    if test(i)? {
                        n += 1;
                    }
                }
                if b == Builtin::One {
                    Value::Bool(n == 1)
                } else {
                    Value::Int(n)
                }
            }
            Builtin::Filter => {
                let mut out = Vec::new();
                for i in items {
                    if test(&i)? {
                        out.push(i);
                    }
                }
                Value::Array(out)
            }
            _ => Value::Array(
                items
                    .iter()
                    .map(|i| eval(pred, env, Some(i)))
                    .collect::<Result<_, _>>()?,
            ),
        });
    }
    let vals: Vec<Value> = args
        .iter()
        .map(|a| eval(a, env, pointer))
        .collect::<Result<_, _>>()?;
    let first = &vals[0];
    let apos = args[0].position;
    Ok(match b {
        Builtin::Len => match first {
            Value::String(s) => Value::Int(s.chars().count() as i64),
            Value::Array(a) => Value::Int(a.len() as i64),
            Value::Map(m) => Value::Int(m.len() as i64),
            other => {
                return Err(eval_err(
                    apos,
                    format!("invalid argument for len (type {})", other.type_name()),
                ));
            }
        },
        Builtin::Abs => match first {
            Value::Int(i) => Value::Int(i.wrapping_abs()),
            other => Value::Float(num_arg(other, b, apos)?.abs()),
        },
        Builtin::Max | Builtin::Min => {
            let list: Vec<Value> = match (vals.len(), first) {
                (1, Value::Array(a)) => a.clone(),
                _ => vals.clone(),
            };
            let mut best: Option<Value> = None;
            for v in list {
                num_arg(&v, b, apos)?;
                best = Some(match best {
                    None => v,
                    Some(cur) => {
                        let better = if b == Builtin::Max {
                            compare(BinOp::Gt, &v, &cur, pos)?
                        } else {
                            compare(BinOp::Lt, &v, &cur, pos)?
                        };
                        if better { v } else { cur }
                    }
                });
            }
            match best {
                Some(v) => v,
                None => {
                    return Err(eval_err(
                        apos,
                        format!("not enough arguments to call {}", b.name()),
                    ));
                }
            }
        }
        Builtin::AsInt => match first {
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Int(*f as i64),
            Value::String(s) => match s.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => {
                    return Err(eval_err(
                        apos,
                        format!("strconv.ParseInt: parsing {s:?}: invalid syntax"),
                    ));
                }
            },
            other => {
                return Err(eval_err(
                    apos,
                    format!("asInt: unsupported type {}", other.type_name()),
                ));
            }
        },
        Builtin::AsFloat => match first {
            Value::Int(i) => Value::Float(*i as f64),
            Value::Float(f) => Value::Float(*f),
            Value::String(s) => match parse_go_float(s) {
                Some(f) => Value::Float(f),
                None => {
                    return Err(eval_err(
                        apos,
                        format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"),
                    ));
                }
            },
            other => {
                return Err(eval_err(
                    apos,
                    format!("asFloat: unsupported type {}", other.type_name()),
                ));
            }
        },
        Builtin::IsNaN => Value::Bool(num_arg(first, b, apos)?.is_nan()),
        Builtin::IsInf => Value::Bool(num_arg(first, b, apos)?.is_infinite()),
        Builtin::IsNil => Value::Bool(matches!(first, Value::Nil)),
        // Argo's `default` ignores its first argument and always looks at `result`.
        _ => match &env.result {
            Value::Nil => vals[1].clone(),
            r => r.clone(),
        },
    })
}

fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_start_matches(['+', '-']);
    if matches!(t, "nan" | "inf" | "infinity") {
        return s.parse().ok();
    }
    if t.is_empty() || !t.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse().ok()
}
