//! GitHub Actions expressions (`${{ ... }}`), evaluated as far as the workflow file says.
//!
//! Audit does not run workflows; it asks which values an expression *can* take. A literal
//! (`${{ 'namespace-profile-default' }}`), `format(...)` of known values, a matrix value and the
//! `cond && 'a' || 'b'` idiom all take values the file shows, and a runner label written that
//! way is judged as if written out. Anything that depends on the run (the event's payload,
//! inputs, outputs of other jobs, variables) is *open*: it may take values the file does not
//! show. `github.event_name` is known when audit judges one event at a time (a job's `if:`).
//!
//! The grammar and the semantics are those of GitHub's documentation ("Evaluate expressions in
//! workflows and actions"): literals, context paths, `!`, comparisons (strings compare
//! case-insensitively), `&&` and `||` returning one of their operands, and the functions
//! `format`, `contains`, `startsWith`, `endsWith`, `join` and `fromJSON`. Hostile text cannot
//! make it recurse without bound or produce more than [`MAX_VALUES`] values.

use crate::span::{Span, Spanned};

use super::yaml::Node;

/// At most this many values are followed through an expression; past it, the expression is
/// open.
pub const MAX_VALUES: usize = 64;

/// Expressions nested deeper than this (parentheses, `!`, calls) are open.
const MAX_DEPTH: usize = 32;

/// Expressions longer than this many tokens are open: a workflow's are a few dozen, and the
/// limit bounds the depth of a long chain of `||`, which is evaluated recursively.
const MAX_TOKENS: usize = 512;

/// A value an expression can take.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Spanned<Value>>),
    Map(Vec<(String, Spanned<Value>)>),
}

impl Value {
    /// GitHub's truthiness: `false`, `0`, `''`, `null` and NaN are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Str(s) => !s.is_empty(),
            Value::List(_) | Value::Map(_) => true,
        }
    }

    /// The value as text, as GitHub writes it into a string (`format`, a template).
    pub fn text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Value::Num(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            Value::List(_) => "Array".into(),
            Value::Map(_) => "Object".into(),
        }
    }

    /// A YAML node of the workflow as a value, keeping each part's place.
    pub fn from_node(node: &Spanned<Node>) -> Spanned<Value> {
        let value = match &node.value {
            Node::Null => Value::Null,
            Node::Scalar(s) => Value::Str(s.clone()),
            Node::Seq(items) => Value::List(items.iter().map(Value::from_node).collect()),
            Node::Map(_) => Value::Map(
                node.value
                    .entries()
                    .map(|(k, v)| (k.value.to_string(), Value::from_node(v)))
                    .collect(),
            ),
        };
        Spanned::new(value, node.span)
    }
}

/// The values an expression can take: those the file shows, and whether there may be others.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcomes {
    /// Each with the place it is written when it comes from the file (a matrix value), else
    /// an unknown place.
    pub values: Vec<Spanned<Value>>,
    /// The expression may also take values the file does not show.
    pub open: bool,
}

impl Outcomes {
    fn open() -> Outcomes {
        Outcomes {
            values: Vec::new(),
            open: true,
        }
    }

    fn of(value: Value) -> Outcomes {
        Outcomes {
            values: vec![Spanned::new(value, Span::UNKNOWN)],
            open: false,
        }
    }

    /// Either boolean (a comparison whose sides are not known, `success()`).
    fn either_bool() -> Outcomes {
        Outcomes {
            values: vec![
                Spanned::new(Value::Bool(true), Span::UNKNOWN),
                Spanned::new(Value::Bool(false), Span::UNKNOWN),
            ],
            open: false,
        }
    }

    fn push(&mut self, v: Spanned<Value>) {
        if self.values.len() >= MAX_VALUES {
            self.open = true;
        } else if !self.values.iter().any(|w| w.value == v.value) {
            self.values.push(v);
        }
    }

    fn extend(&mut self, other: Outcomes) {
        self.open |= other.open;
        for v in other.values {
            self.push(v);
        }
    }

    /// Whether the expression is false whatever happens (an `if:` that never lets the job run).
    pub fn always_false(&self) -> bool {
        !self.open && self.values.iter().all(|v| !v.value.truthy())
    }
}

/// What an expression may read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Env<'a> {
    /// The job's `strategy.matrix` as written.
    pub matrix: Option<&'a Spanned<Node>>,
    /// `github.event_name`, when the event is known.
    pub event_name: Option<&'a str>,
}

/// Evaluates the expression `source` (the text between `${{` and `}}`).
pub fn evaluate(source: &str, env: &Env<'_>) -> Outcomes {
    let Some(tokens) = tokenize(source).filter(|t| t.len() <= MAX_TOKENS) else {
        return Outcomes::open();
    };
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        depth: 0,
    };
    match parser.expression() {
        Some(expr) if parser.at == tokens.len() => eval(&expr, env),
        _ => Outcomes::open(),
    }
}

/// One piece of a template: text as written, or an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// The expression's source, and the whole `${{ ... }}` as written.
    Expression(&'a str, &'a str),
}

/// Splits text in which `${{ ... }}` may appear (a runs-on label, an `if:`) into pieces. An
/// unclosed `${{` is text, as GitHub leaves it.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("${{") {
        let inner = &rest[open + 3..];
        let Some(close) = closing_braces(inner) else {
            break;
        };
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        out.push(Piece::Expression(
            &inner[..close],
            &rest[open..open + 3 + close + 2],
        ));
        rest = &inner[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// The offset of the `}}` that closes an expression, skipping string literals.
fn closing_braces(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The condition of an `if:`: an expression with or without `${{ }}` around it.
pub fn condition(text: &str, env: &Env<'_>) -> Outcomes {
    match pieces(text.trim()).as_slice() {
        [Piece::Expression(source, _)] => evaluate(source, env),
        [] => Outcomes::of(Value::Bool(true)),
        p if p.iter().any(|p| matches!(p, Piece::Expression(..))) => {
            // Text around an expression: the whole is a string, true unless empty.
            Outcomes::of(Value::Bool(true))
        }
        _ => evaluate(text, env),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Str(String),
    Num(f64),
    Ident(String),
    Dot,
    Star,
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Comma,
    Not,
    Op(Op),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

fn tokenize(s: &str) -> Option<Vec<Token>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let two = |t: &[u8]| b[i..].starts_with(t);
        let (token, len) = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'\'' => {
                // '' inside a literal is one quote.
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    let rest = s.get(j..)?;
                    let q = rest.find('\'')?;
                    text.push_str(&rest[..q]);
                    j += q + 1;
                    if b.get(j) == Some(&b'\'') {
                        text.push('\'');
                        j += 1;
                    } else {
                        break;
                    }
                }
                (Token::Str(text), j - i)
            }
            b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => (Token::Dot, 1),
            b'*' => (Token::Star, 1),
            b'(' => (Token::Open, 1),
            b')' => (Token::Close, 1),
            b'[' => (Token::OpenBracket, 1),
            b']' => (Token::CloseBracket, 1),
            b',' => (Token::Comma, 1),
            _ if two(b"&&") => (Token::Op(Op::And), 2),
            _ if two(b"||") => (Token::Op(Op::Or), 2),
            _ if two(b"==") => (Token::Op(Op::Eq), 2),
            _ if two(b"!=") => (Token::Op(Op::Ne), 2),
            _ if two(b"<=") => (Token::Op(Op::Le), 2),
            _ if two(b">=") => (Token::Op(Op::Ge), 2),
            b'<' => (Token::Op(Op::Lt), 1),
            b'>' => (Token::Op(Op::Gt), 1),
            b'!' => (Token::Not, 1),
            b'0'..=b'9' | b'-' | b'.' => {
                let len = b[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+')))
                    .unwrap_or(b.len() - i);
                let text = &s[i..i + len];
                let n = if let Some(hex) = text.strip_prefix("0x") {
                    i64::from_str_radix(hex, 16).ok()? as f64
                } else {
                    text.parse::<f64>().ok()?
                };
                (Token::Num(n), len)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let len = b[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-')))
                    .unwrap_or(b.len() - i);
                (Token::Ident(s[i..i + len].to_string()), len)
            }
            _ => return None,
        };
        out.push(token);
        i += len;
    }
    Some(out)
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Lit(Value),
    /// A context and the properties or indexes read from it.
    Path(String, Vec<Segment>),
    Call(String, Vec<Expr>),
    Not(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Name(String),
    Index(Expr),
    /// `.*`: every element.
    All,
}

struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.at);
        self.at += 1;
        t
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expression(&mut self) -> Option<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let e = self.binary(0);
        self.depth -= 1;
        e
    }

    /// Precedence climbing: `||` < `&&` < equality < comparison.
    fn binary(&mut self, level: u8) -> Option<Expr> {
        const LEVELS: [&[Op]; 4] = [
            &[Op::Or],
            &[Op::And],
            &[Op::Eq, Op::Ne],
            &[Op::Lt, Op::Le, Op::Gt, Op::Ge],
        ];
        let Some(ops) = LEVELS.get(level as usize) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        while let Some(Token::Op(op)) = self.peek() {
            let op = *op;
            if !ops.contains(&op) {
                break;
            }
            self.at += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn unary(&mut self) -> Option<Expr> {
        if self.eat(&Token::Not) {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return None;
            }
            let inner = self.unary()?;
            self.depth -= 1;
            return Some(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Option<Expr> {
        let base = match self.next()?.clone() {
            Token::Str(s) => return Some(Expr::Lit(Value::Str(s))),
            Token::Num(n) => return Some(Expr::Lit(Value::Num(n))),
            Token::Open => {
                let e = self.expression()?;
                self.eat(&Token::Close).then_some(e)?
            }
            Token::Ident(name) => match name.as_str() {
                "true" => return Some(Expr::Lit(Value::Bool(true))),
                "false" => return Some(Expr::Lit(Value::Bool(false))),
                "null" => return Some(Expr::Lit(Value::Null)),
                _ if self.eat(&Token::Open) => {
                    let mut args = Vec::new();
                    if !self.eat(&Token::Close) {
                        loop {
                            args.push(self.expression()?);
                            if self.eat(&Token::Close) {
                                break;
                            }
                            self.eat(&Token::Comma).then_some(())?;
                        }
                    }
                    Expr::Call(name.to_ascii_lowercase(), args)
                }
                _ => Expr::Path(name, Vec::new()),
            },
            _ => return None,
        };
        self.segments(base)
    }

    /// `.name`, `.*` and `[index]` after a context or a call.
    fn segments(&mut self, base: Expr) -> Option<Expr> {
        let (name, mut segments) = match base {
            Expr::Path(name, segments) => (name, segments),
            // Properties of a call's result (`fromJSON('...').x`): kept as a path over it.
            other => {
                if !matches!(self.peek(), Some(Token::Dot | Token::OpenBracket)) {
                    return Some(other);
                }
                return self.segments_of_call(other);
            }
        };
        loop {
            if self.eat(&Token::Dot) {
                match self.next()?.clone() {
                    Token::Ident(n) => segments.push(Segment::Name(n)),
                    Token::Star => segments.push(Segment::All),
                    _ => return None,
                }
            } else if self.eat(&Token::OpenBracket) {
                let index = self.expression()?;
                self.eat(&Token::CloseBracket).then_some(())?;
                segments.push(Segment::Index(index));
            } else {
                return Some(Expr::Path(name, segments));
            }
        }
    }

    /// A call followed by properties: `fromJSON(x).a` becomes the call `.get(fromJSON(x), 'a')`.
    fn segments_of_call(&mut self, mut base: Expr) -> Option<Expr> {
        loop {
            let key = if self.eat(&Token::Dot) {
                match self.next()?.clone() {
                    Token::Ident(n) => Expr::Lit(Value::Str(n)),
                    _ => return None,
                }
            } else if self.eat(&Token::OpenBracket) {
                let index = self.expression()?;
                self.eat(&Token::CloseBracket).then_some(())?;
                index
            } else {
                return Some(base);
            };
            base = Expr::Call(".get".into(), vec![base, key]);
        }
    }
}

fn eval(expr: &Expr, env: &Env<'_>) -> Outcomes {
    match expr {
        Expr::Lit(v) => Outcomes::of(v.clone()),
        Expr::Path(context, segments) => eval_path(context, segments, env),
        Expr::Not(inner) => {
            let inner = eval(inner, env);
            if inner.open {
                return Outcomes::either_bool();
            }
            let mut out = Outcomes::default();
            for v in inner.values {
                out.push(Spanned::new(Value::Bool(!v.value.truthy()), Span::UNKNOWN));
            }
            out
        }
        Expr::Binary(Op::And, l, r) => {
            // `a && b` is `a` when `a` is false, else `b`. An open `a` may be false; a false
            // value is never a label, so `false` stands for all of them.
            let left = eval(l, env);
            let mut out = Outcomes::default();
            let mut right_too = left.open;
            if left.open {
                out.push(Spanned::new(Value::Bool(false), Span::UNKNOWN));
            }
            for v in left.values {
                if v.value.truthy() {
                    right_too = true;
                } else {
                    out.push(v);
                }
            }
            if right_too {
                out.extend(eval(r, env));
            }
            out
        }
        Expr::Binary(Op::Or, l, r) => {
            // `a || b` is `a` when `a` is true, else `b`.
            let left = eval(l, env);
            let mut out = Outcomes {
                values: Vec::new(),
                open: left.open,
            };
            let mut right_too = left.open;
            for v in left.values {
                if v.value.truthy() {
                    out.push(v);
                } else {
                    right_too = true;
                }
            }
            if right_too {
                out.extend(eval(r, env));
            }
            out
        }
        Expr::Binary(op, l, r) => {
            let (left, right) = (eval(l, env), eval(r, env));
            if left.open || right.open {
                return Outcomes::either_bool();
            }
            let mut out = Outcomes::default();
            for a in &left.values {
                for b in &right.values {
                    let result = match op {
                        Op::Eq => loosely_equal(&a.value, &b.value),
                        Op::Ne => !loosely_equal(&a.value, &b.value),
                        // Ordering is rare in a runner label or an event test: either.
                        _ => return Outcomes::either_bool(),
                    };
                    out.push(Spanned::new(Value::Bool(result), Span::UNKNOWN));
                }
            }
            out
        }
        Expr::Call(name, args) => call(name, args, env),
    }
}

/// GitHub's `==`: strings compare case-insensitively; other types compare as numbers.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.eq_ignore_ascii_case(y),
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => false,
        _ => number(a) == number(b),
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Num(n) => *n,
        Value::Str(s) if s.trim().is_empty() => 0.0,
        Value::Str(s) => s.trim().parse().unwrap_or(f64::NAN),
        Value::List(_) | Value::Map(_) => f64::NAN,
    }
}

fn eval_path(context: &str, segments: &[Segment], env: &Env<'_>) -> Outcomes {
    if context.eq_ignore_ascii_case("matrix") {
        return matrix_path(segments, env);
    }
    if context.eq_ignore_ascii_case("github")
        && let [Segment::Name(n)] = segments
        && n.eq_ignore_ascii_case("event_name")
        && let Some(event) = env.event_name
    {
        return Outcomes::of(Value::Str(event.to_string()));
    }
    Outcomes::open()
}

/// `matrix.KEY...`: every value KEY takes in the job's matrix (its lists and its `include`
/// entries), then the properties read from it.
fn matrix_path(segments: &[Segment], env: &Env<'_>) -> Outcomes {
    let (Some(matrix), Some(Segment::Name(key))) = (env.matrix, segments.first()) else {
        return Outcomes::open();
    };
    let Some(values) = matrix_values(matrix, key) else {
        return Outcomes::open();
    };
    let mut out = Outcomes::default();
    for v in values {
        out.extend(read(Value::from_node(v), &segments[1..], env));
    }
    out
}

/// Every value `key` takes in `matrix`, or `None` when the matrix is not in the file (absent,
/// or itself an expression) or never names `key`.
pub fn matrix_values<'a>(matrix: &'a Spanned<Node>, key: &str) -> Option<Vec<&'a Spanned<Node>>> {
    if !matches!(matrix.value, Node::Map(_)) {
        return None;
    }
    let mut values: Vec<&Spanned<Node>> = Vec::new();
    for list in matrix.value.get_all(key) {
        match &list.value {
            Node::Seq(items) => values.extend(items.iter()),
            _ => values.push(list),
        }
    }
    for include in matrix.value.get_all("include") {
        for entry in include.value.items() {
            values.extend(entry.value.get_all(key));
        }
    }
    (!values.is_empty()).then_some(values)
}

/// Properties and indexes read from a value.
fn read(value: Spanned<Value>, segments: &[Segment], env: &Env<'_>) -> Outcomes {
    let Some((first, rest)) = segments.split_first() else {
        let mut out = Outcomes::default();
        out.push(value);
        return out;
    };
    let keys = match first {
        Segment::Name(n) => Outcomes::of(Value::Str(n.clone())),
        Segment::Index(e) => eval(e, env),
        Segment::All => {
            let Value::List(items) = value.value else {
                return Outcomes::open();
            };
            let mut out = Outcomes::default();
            for item in items {
                out.extend(read(item, rest, env));
            }
            return out;
        }
    };
    if keys.open {
        return Outcomes::open();
    }
    let mut out = Outcomes::default();
    for key in keys.values {
        out.extend(read(member(&value.value, &key.value), rest, env));
    }
    out
}

/// `value[key]`: a property of an object (case-insensitive), an element of an array, else null.
fn member(value: &Value, key: &Value) -> Spanned<Value> {
    let found = match (value, key) {
        (Value::Map(pairs), Value::Str(k)) => pairs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone()),
        (Value::List(items), Value::Num(n)) if *n >= 0.0 && n.fract() == 0.0 => {
            items.get(*n as usize).cloned()
        }
        _ => None,
    };
    found.unwrap_or(Spanned::new(Value::Null, Span::UNKNOWN))
}

fn call(name: &str, args: &[Expr], env: &Env<'_>) -> Outcomes {
    let args: Vec<Outcomes> = args.iter().map(|a| eval(a, env)).collect();
    match name {
        "format" => format_call(&args),
        "contains" | "startswith" | "endswith" => {
            let [haystack, needle] = args.as_slice() else {
                return Outcomes::open();
            };
            if haystack.open || needle.open {
                return Outcomes::either_bool();
            }
            let mut out = Outcomes::default();
            for h in &haystack.values {
                for n in &needle.values {
                    let result = match (name, &h.value) {
                        ("contains", Value::List(items)) => {
                            items.iter().any(|i| loosely_equal(&i.value, &n.value))
                        }
                        _ => {
                            let (h, n) = (
                                h.value.text().to_ascii_lowercase(),
                                n.value.text().to_ascii_lowercase(),
                            );
                            match name {
                                "contains" => h.contains(&n),
                                "startswith" => h.starts_with(&n),
                                _ => h.ends_with(&n),
                            }
                        }
                    };
                    out.push(Spanned::new(Value::Bool(result), Span::UNKNOWN));
                }
            }
            out
        }
        "join" => {
            let (list, separator) = match args.as_slice() {
                [list] => (list, None),
                [list, sep] => (list, Some(sep)),
                _ => return Outcomes::open(),
            };
            let separators = match separator {
                None => vec![",".to_string()],
                Some(s) if !s.open => s.values.iter().map(|v| v.value.text()).collect(),
                Some(_) => return Outcomes::open(),
            };
            let mut out = Outcomes {
                values: Vec::new(),
                open: list.open,
            };
            for l in &list.values {
                for sep in &separators {
                    let text = match &l.value {
                        Value::List(items) => items
                            .iter()
                            .map(|i| i.value.text())
                            .collect::<Vec<_>>()
                            .join(sep),
                        other => other.text(),
                    };
                    out.push(Spanned::new(Value::Str(text), Span::UNKNOWN));
                }
            }
            out
        }
        "fromjson" => {
            let [text] = args.as_slice() else {
                return Outcomes::open();
            };
            let mut out = Outcomes {
                values: Vec::new(),
                open: text.open,
            };
            for t in &text.values {
                match serde_json::from_str::<serde_json::Value>(&t.value.text()) {
                    Ok(json) => out.push(Spanned::new(from_json(&json, 0), Span::UNKNOWN)),
                    Err(_) => out.open = true,
                }
            }
            out
        }
        ".get" => {
            let [base, key] = args.as_slice() else {
                return Outcomes::open();
            };
            if base.open || key.open {
                return Outcomes::open();
            }
            let mut out = Outcomes::default();
            for b in &base.values {
                for k in &key.values {
                    out.push(member(&b.value, &k.value));
                }
            }
            out
        }
        "success" | "always" | "failure" | "cancelled" => Outcomes::either_bool(),
        _ => Outcomes::open(),
    }
}

/// `format('{0}-{1}', a, b)`: every combination of the arguments' values, `{{` and `}}` being
/// braces.
fn format_call(args: &[Outcomes]) -> Outcomes {
    let Some((template, rest)) = args.split_first() else {
        return Outcomes::open();
    };
    let mut out = Outcomes {
        values: Vec::new(),
        open: args.iter().any(|a| a.open),
    };
    let mut combos: Vec<Vec<String>> = vec![Vec::new()];
    for arg in rest {
        let mut next = Vec::new();
        for combo in &combos {
            for v in &arg.values {
                if next.len() >= MAX_VALUES {
                    out.open = true;
                    break;
                }
                let mut c = combo.clone();
                c.push(v.value.text());
                next.push(c);
            }
        }
        combos = next;
    }
    for t in &template.values {
        let t = t.value.text();
        for combo in &combos {
            match fill(&t, combo) {
                Some(text) => out.push(Spanned::new(Value::Str(text), Span::UNKNOWN)),
                None => out.open = true,
            }
        }
    }
    out
}

/// The format string `t` with `{N}` replaced by `args[N]`; `None` when it is malformed.
fn fill(t: &str, args: &[String]) -> Option<String> {
    let mut out = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut digits = String::new();
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                    digits.push(d);
                }
                out.push_str(args.get(digits.parse::<usize>().ok()?)?);
            }
            '}' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn from_json(json: &serde_json::Value, depth: usize) -> Value {
    let unknown = Span::UNKNOWN;
    match json {
        _ if depth > MAX_DEPTH => Value::Null,
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Num(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(items) => Value::List(
            items
                .iter()
                .map(|i| Spanned::new(from_json(i, depth + 1), unknown))
                .collect(),
        ),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), Spanned::new(from_json(v, depth + 1), unknown)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::yaml::parse_tree;

    fn texts(o: &Outcomes) -> Vec<String> {
        o.values.iter().map(|v| v.value.text()).collect()
    }

    fn known(source: &str) -> Vec<String> {
        let o = evaluate(source, &Env::default());
        assert!(!o.open, "{source} is open: {o:?}");
        texts(&o)
    }

    #[test]
    fn literals_formats_and_the_ternary_idiom_are_known() {
        assert_eq!(
            known("'namespace-profile-default'"),
            ["namespace-profile-default"]
        );
        assert_eq!(known("'it''s'"), ["it's"]);
        assert_eq!(
            known("format('namespace-profile-{0}-on-{1}', '16cpu', 'linux-64')"),
            ["namespace-profile-16cpu-on-linux-64"]
        );
        assert_eq!(known("format('{{{0}}}', 'x')"), ["{x}"]);
        assert_eq!(
            known(
                "github.ref == 'refs/heads/main' && 'cirun-openstack-gpu-large' || 'ubuntu-latest'"
            ),
            ["cirun-openstack-gpu-large", "ubuntu-latest"]
        );
        assert_eq!(known("(1 == 1) && 'a' || 'b'"), ["a"]);
        assert_eq!(known("fromJSON('[\"self-hosted\", \"gpu\"]')[1]"), ["gpu"]);
        assert_eq!(known("join(fromJSON('[\"a\", \"b\"]'), '-')"), ["a-b"]);
        assert_eq!(known("contains('ABC', 'b')"), ["true"]);
    }

    #[test]
    fn what_the_run_decides_is_open() {
        for source in [
            "inputs.runner",
            "github.event.comment.body",
            "vars.RUNNER || 'x'",
            "fromJSON(needs.a.outputs.m)",
            "format('{0}', inputs.x)",
            "hashFiles('x')",
            "'unclosed",
            "a ==",
            "((((",
        ] {
            assert!(evaluate(source, &Env::default()).open, "{source}");
        }
        // A long chain is evaluated; a hostile one is open, not a stack overflow.
        let chain = |n: usize| format!("{}'b'", "null || ".repeat(n));
        assert_eq!(known(&chain(100)), ["b"]);
        assert!(evaluate(&chain(100_000), &Env::default()).open);
        // `&&` after an open condition: the label is the right side (or a false value).
        let o = evaluate("inputs.gpu && 'cirun-gpu'", &Env::default());
        assert!(!o.open);
        assert_eq!(texts(&o), ["false", "cirun-gpu"]);
    }

    #[test]
    fn matrix_values_are_read_from_the_job() {
        let tree = parse_tree(
            "w.yml",
            b"matrix:\n  size: [16cpu, 32cpu]\n  include:\n    - size: 64cpu\n      cfg: { runner: depot-ubuntu-24.04 }\n",
        )
        .unwrap();
        let env = Env {
            matrix: tree.value.get("matrix"),
            event_name: None,
        };
        let o = evaluate("format('namespace-profile-{0}', matrix.size)", &env);
        assert_eq!(
            texts(&o),
            [
                "namespace-profile-16cpu",
                "namespace-profile-32cpu",
                "namespace-profile-64cpu"
            ]
        );
        let o = evaluate("matrix.cfg.runner", &env);
        assert_eq!(texts(&o), ["depot-ubuntu-24.04"]);
        assert_eq!(o.values[0].span.line, 5);
        assert!(evaluate("matrix.missing", &env).open);
    }

    #[test]
    fn conditions_on_the_event_are_decided_per_event() {
        let on = |event: &'static str, cond: &str| {
            !condition(
                cond,
                &Env {
                    matrix: None,
                    event_name: Some(event),
                },
            )
            .always_false()
        };
        let cond = "${{ github.event_name != 'pull_request' }}";
        assert!(on("push", cond));
        assert!(!on("pull_request", cond));
        assert!(!on(
            "pull_request",
            "github.event_name == 'push' || github.event_name == 'schedule'"
        ));
        assert!(on(
            "pull_request",
            "github.event_name == 'push' || inputs.force"
        ));
        assert!(!on(
            "Pull_Request",
            "!contains(fromJSON('[\"pull_request\", \"issue_comment\"]'), github.event_name)"
        ));
        assert!(on("push", "success()"));
    }

    #[test]
    fn templates_split_into_text_and_expressions() {
        assert_eq!(
            pieces("cirun-x--${{ github.run_id }}-linux_64"),
            [
                Piece::Text("cirun-x--"),
                Piece::Expression(" github.run_id ", "${{ github.run_id }}"),
                Piece::Text("-linux_64")
            ]
        );
        assert_eq!(
            pieces("${{ '}}' }}"),
            [Piece::Expression(" '}}' ", "${{ '}}' }}")]
        );
        assert_eq!(pieces("a-${{ b"), [Piece::Text("a-${{ b")]);
    }

    proptest::proptest! {
        /// Any text: a result, never a panic, never more than MAX_VALUES values.
        #[test]
        fn any_expression_evaluates(source in "[ -~]{0,80}", nested in 0usize..200) {
            let deep = format!("{}'x'{}", "(".repeat(nested), ")".repeat(nested));
            for s in [source.as_str(), deep.as_str()] {
                let o = evaluate(s, &Env::default());
                proptest::prop_assert!(o.values.len() <= MAX_VALUES);
            }
        }
    }
}
