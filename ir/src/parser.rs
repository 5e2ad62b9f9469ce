//! The textual form's parser: MLIR syntax, the generic op form for every op, and the pretty
//! forms of `module`, `func.func` and `func.return`. It never panics; the first error stops it
//! and is returned as a [`Diagnostic`] pointing at the offending token.

use crate::attr::{round_to, wrap_int, Attr, Attrs, DenseAttr, DenseValues, F64};
use crate::diag::{Diagnostic, FileId, Loc};
use crate::dialect::builtin;
use crate::ir::{Body, OpId, OpSpec, RegionData, RegionId, ValueData, ValueDef, ValueId};
use crate::registry::Registry;
use crate::types::{ElemType, TensorType, Type};
use std::collections::HashMap;

/// Parses a whole source text into a module. `file` names the text in diagnostics.
pub fn parse(text: &str, file: FileId, registry: &Registry) -> Result<Body, Diagnostic> {
    let mut p = Parser::new(text, file, registry);
    p.parse_top()?;
    Ok(p.body)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Eof,
    /// `foo`, `func.func`, `f32`
    Bare(String),
    /// `%name` (without `%`)
    Percent(String),
    /// `^bb0` (without `^`)
    Caret(String),
    /// `@name` or `@"quoted"` (without `@`)
    At(String),
    /// `#name` (without `#`)
    Hash(String),
    /// `!dialect.type` (without `!`)
    Bang(String),
    Int(String),
    Float(String),
    Str(String),
    Punct(&'static str),
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Eof => "end of file".into(),
        Tok::Bare(s) => format!("'{s}'"),
        Tok::Percent(s) => format!("'%{s}'"),
        Tok::Caret(s) => format!("'^{s}'"),
        Tok::At(s) => format!("'@{s}'"),
        Tok::Hash(s) => format!("'#{s}'"),
        Tok::Bang(s) => format!("'!{s}'"),
        Tok::Int(s) | Tok::Float(s) => format!("'{s}'"),
        Tok::Str(_) => "string".into(),
        Tok::Punct(p) => format!("'{p}'"),
    }
}

/// Names visible in one region (or the top level).
struct Scope {
    /// `%name` -> the values it defines (`%name#i` is element i).
    names: HashMap<String, (Vec<ValueId>, Loc)>,
    /// Uses of names not yet defined: (name, result number) -> (placeholder, first use).
    pending: HashMap<(String, usize), (ValueId, Loc)>,
    isolated: bool,
}

type PResult<T> = Result<T, Diagnostic>;

struct Parser<'a> {
    src: &'a str,
    file: FileId,
    registry: &'a Registry,
    line_starts: Vec<usize>,
    /// Byte offset of the next unread character.
    pos: usize,
    tok: Tok,
    tok_start: usize,
    body: Body,
    scopes: Vec<Scope>,
    /// Nesting depth of regions/attributes, bounded so hostile input cannot overflow the stack.
    depth: usize,
}

/// Bounds nesting (regions count twice: op + region). Debug builds spend ~10 KB of stack per
/// level, so this keeps even a 2 MB test thread safe; real IR nests a handful of levels.
const MAX_DEPTH: usize = 100;

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.' | b'-')
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, file: FileId, registry: &'a Registry) -> Self {
        let mut line_starts = vec![0];
        for (i, b) in src.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Parser {
            src,
            file,
            registry,
            line_starts,
            pos: 0,
            tok: Tok::Eof,
            tok_start: 0,
            body: Body::new(),
            scopes: Vec::new(),
            depth: 0,
        }
    }

    fn loc_at(&self, offset: usize) -> Loc {
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let col = self
            .src
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        Loc {
            file: Some(self.file),
            line: line as u32,
            col: col as u32,
        }
    }

    fn loc(&self) -> Loc {
        self.loc_at(self.tok_start)
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(Diagnostic::error(self.loc(), msg))
    }

    fn err_at<T>(&self, loc: Loc, msg: impl Into<String>) -> PResult<T> {
        Err(Diagnostic::error(loc, msg))
    }

    // ---------------------------------------------------------------- lexer

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn peek_byte(&self, off: usize) -> Option<u8> {
        self.bytes().get(self.pos + off).copied()
    }

    fn skip_trivia(&mut self) {
        loop {
            match self.peek_byte(0) {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') if self.peek_byte(1) == Some(b'/') => {
                    while let Some(b) = self.peek_byte(0) {
                        if b == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn ident_from(&mut self, start: usize) -> String {
        let mut end = start;
        while end < self.src.len() && is_id_char(self.bytes()[end]) {
            end += 1;
        }
        self.pos = end;
        self.src[start..end].to_string()
    }

    /// Reads the next token into `self.tok`.
    fn bump(&mut self) -> PResult<()> {
        self.skip_trivia();
        self.tok_start = self.pos;
        let Some(c) = self.peek_byte(0) else {
            self.tok = Tok::Eof;
            return Ok(());
        };
        self.tok = match c {
            b'%' | b'^' | b'#' | b'!' => {
                let start = self.pos + 1;
                let name = self.ident_from(start);
                if name.is_empty() {
                    return self.err(format!("expected an identifier after '{}'", c as char));
                }
                match c {
                    b'%' => Tok::Percent(name),
                    b'^' => Tok::Caret(name),
                    b'#' => Tok::Hash(name),
                    _ => Tok::Bang(name),
                }
            }
            b'@' => {
                self.pos += 1;
                if self.peek_byte(0) == Some(b'"') {
                    Tok::At(self.lex_string()?)
                } else {
                    let start = self.pos;
                    let name = self.ident_from(start);
                    if name.is_empty() {
                        return self.err("expected a symbol name after '@'");
                    }
                    Tok::At(name)
                }
            }
            b'"' => Tok::Str(self.lex_string()?),
            b'0'..=b'9' => self.lex_number(),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                let mut end = start;
                // Bare identifiers do not contain '-' (it would swallow `->`).
                while end < self.src.len()
                    && (self.bytes()[end].is_ascii_alphanumeric()
                        || matches!(self.bytes()[end], b'_' | b'$' | b'.'))
                {
                    end += 1;
                }
                self.pos = end;
                Tok::Bare(self.src[start..end].to_string())
            }
            _ => {
                const PUNCTS: [&str; 17] = [
                    "->", "::", "{-#", "(", ")", "{", "}", "[", "]", "<", ">", ",", ":", "=", "-",
                    "?", "*",
                ];
                let rest = &self.src[self.pos..];
                match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                    Some(p) => {
                        self.pos += p.len();
                        Tok::Punct(p)
                    }
                    None => {
                        let ch = rest.chars().next().unwrap_or('?');
                        return self.err(format!("unexpected character '{ch}'"));
                    }
                }
            }
        };
        Ok(())
    }

    fn lex_number(&mut self) -> Tok {
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            self.pos = i;
            return Tok::Int(self.src[start..i].to_string());
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            float = true;
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if matches!(b.get(i), Some(b'e' | b'E')) {
                let mut j = i + 1;
                if matches!(b.get(j), Some(b'+' | b'-')) {
                    j += 1;
                }
                if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
        }
        self.pos = i;
        let s = self.src[start..i].to_string();
        if float {
            Tok::Float(s)
        } else {
            Tok::Int(s)
        }
    }

    /// Lexes a `"..."` literal at `self.pos` with MLIR's escapes.
    fn lex_string(&mut self) -> PResult<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek_byte(0) else {
                self.tok_start = start;
                return self.err("unterminated string");
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\n' => {
                    self.tok_start = start;
                    return self.err("unterminated string");
                }
                b'\\' => {
                    let Some(e) = self.peek_byte(0) else {
                        self.tok_start = start;
                        return self.err("unterminated string");
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'"' | b'\\' => out.push(e),
                        h if h.is_ascii_hexdigit() => {
                            let l = self.peek_byte(0).filter(|c| c.is_ascii_hexdigit());
                            let Some(l) = l else {
                                self.tok_start = self.pos - 2;
                                return self.err("bad escape: expected two hex digits");
                            };
                            self.pos += 1;
                            let v = u8::from_str_radix(&format!("{}{}", h as char, l as char), 16)
                                .unwrap_or(0);
                            out.push(v);
                        }
                        _ => {
                            self.tok_start = self.pos - 2;
                            return self.err("unknown escape in string literal");
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        match String::from_utf8(out) {
            Ok(s) => Ok(s),
            Err(_) => {
                self.tok_start = start;
                self.err("string literal is not valid UTF-8")
            }
        }
    }

    /// Reads raw text up to the `>` matching an already consumed `<`, leaving `pos` after it.
    fn raw_angle_body(&mut self) -> PResult<String> {
        let start = self.pos;
        let mut depth = 1usize;
        let b = self.bytes();
        let mut i = start;
        let mut in_str = false;
        while i < b.len() {
            let c = b[i];
            if in_str {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    in_str = false;
                }
            } else {
                match c {
                    b'"' => in_str = true,
                    b'<' | b'(' | b'[' | b'{' => depth += 1,
                    b'>' | b')' | b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            self.pos = i + 1;
                            return Ok(self.src[start..i].to_string());
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.tok_start = start;
        self.err("unbalanced '<'")
    }

    fn is(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Punct(q) if *q == p)
    }

    fn is_bare(&self, s: &str) -> bool {
        matches!(&self.tok, Tok::Bare(b) if b == s)
    }

    fn eat(&mut self, p: &str) -> PResult<bool> {
        if self.is(p) {
            self.bump()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect(&mut self, p: &str) -> PResult<()> {
        if self.is(p) {
            self.bump()
        } else {
            self.err(format!("expected '{p}', found {}", describe(&self.tok)))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("nesting is too deep");
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Skips an optional trailing `loc(...)`.
    fn skip_location(&mut self) -> PResult<()> {
        if self.is_bare("loc") {
            self.bump()?;
            if !self.is("(") {
                return self.err("expected '(' after 'loc'");
            }
            // Raw scan of the balanced parentheses; the token after it is read next.
            self.raw_angle_body()?;
            self.bump()?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- types

    fn parse_type(&mut self) -> PResult<Type> {
        self.enter()?;
        let t = self.parse_type_inner();
        self.leave();
        t
    }

    fn parse_type_inner(&mut self) -> PResult<Type> {
        match self.tok.clone() {
            Tok::Bare(name) => {
                if let Some(e) = ElemType::from_name(&name) {
                    self.bump()?;
                    return Ok(Type::Scalar(e));
                }
                match name.as_str() {
                    "none" => {
                        self.bump()?;
                        Ok(Type::None)
                    }
                    "tensor" => {
                        // `tensor<` is lexed by hand: `2x3xbf16` is not made of MLIR tokens.
                        if self.peek_byte(0) != Some(b'<') {
                            self.bump()?;
                            return self.err("expected '<' after 'tensor'");
                        }
                        self.pos += 1;
                        let body_start = self.pos;
                        let body = self.raw_angle_body()?;
                        let t = self.tensor_body(&body, body_start)?;
                        self.bump()?;
                        Ok(Type::Tensor(t))
                    }
                    _ => self.err(format!("unsupported type '{name}'")),
                }
            }
            Tok::Bang(name) => {
                let Some((dialect, rest)) = name.split_once('.') else {
                    return self.err(format!("dialect type '!{name}' needs a 'dialect.' prefix"));
                };
                let (dialect, mut body) = (dialect.to_string(), rest.to_string());
                if self.peek_byte(0) == Some(b'<') {
                    self.pos += 1;
                    let inner = self.raw_angle_body()?;
                    body = format!("{body}<{inner}>");
                }
                self.bump()?;
                Ok(Type::Opaque { dialect, body })
            }
            Tok::Punct("(") => {
                self.bump()?;
                let mut ins = Vec::new();
                if !self.is(")") {
                    loop {
                        ins.push(self.parse_type()?);
                        if !self.eat(",")? {
                            break;
                        }
                    }
                }
                self.expect(")")?;
                self.expect("->")?;
                let outs = self.parse_result_types()?;
                Ok(Type::Function(ins, outs))
            }
            t => self.err(format!("expected a type, found {}", describe(&t))),
        }
    }

    /// After `->`: one type, or a parenthesised list.
    fn parse_result_types(&mut self) -> PResult<Vec<Type>> {
        if self.is("(") {
            // `(a) -> b` is a function type, `(a, b)` a list: look past the parentheses.
            let save = (self.pos, self.tok.clone(), self.tok_start);
            self.bump()?;
            let mut outs = Vec::new();
            if !self.is(")") {
                loop {
                    outs.push(self.parse_type()?);
                    if !self.eat(",")? {
                        break;
                    }
                }
            }
            self.expect(")")?;
            if self.is("->") {
                (self.pos, self.tok, self.tok_start) = save;
                return Ok(vec![self.parse_type()?]);
            }
            Ok(outs)
        } else {
            Ok(vec![self.parse_type()?])
        }
    }

    fn tensor_body(&self, body: &str, start: usize) -> PResult<TensorType> {
        let bad = |msg: String| Err(Diagnostic::error(self.loc_at(start), msg));
        let mut rest = body.trim();
        let mut shape = Vec::new();
        loop {
            let digits = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 && rest.as_bytes().get(digits) == Some(&b'x') {
                match rest[..digits].parse::<i64>() {
                    Ok(d) if d <= i64::from(u32::MAX) => shape.push(d),
                    _ => return bad(format!("dimension '{}' is too large", &rest[..digits])),
                }
                rest = &rest[digits + 1..];
            } else if rest.starts_with("?x") {
                return bad("dynamic dimensions are not supported: mkc needs static shapes".into());
            } else {
                break;
            }
        }
        match ElemType::from_name(rest) {
            Some(elem) => Ok(TensorType { shape, elem }),
            None => bad(format!("bad tensor type 'tensor<{body}>': expected dimensions 'NxMx' and an element type (f32, bf16, i64, ...)")),
        }
    }

    // ---------------------------------------------------------------- attributes

    fn parse_attr(&mut self) -> PResult<Attr> {
        self.enter()?;
        let a = self.parse_attr_inner();
        self.leave();
        a
    }

    fn parse_attr_inner(&mut self) -> PResult<Attr> {
        match self.tok.clone() {
            Tok::Int(_) | Tok::Float(_) | Tok::Punct("-") => {
                let loc = self.loc();
                let num = self.parse_number()?;
                let ty = if self.eat(":")? {
                    let tloc = self.loc();
                    match self.parse_type()? {
                        Type::Scalar(e) => e,
                        t => return self.err_at(tloc, format!("a number cannot have type {t}")),
                    }
                } else if matches!(num, Num::Float(_)) {
                    ElemType::F64
                } else {
                    ElemType::I64
                };
                num_to_attr(num, ty).ok_or_else(|| {
                    Diagnostic::error(loc, format!("the literal is not a valid {ty} value"))
                })
            }
            Tok::Bare(b) if b == "true" || b == "false" => {
                self.bump()?;
                Ok(Attr::Bool(b == "true"))
            }
            Tok::Bare(b) if b == "unit" => {
                self.bump()?;
                Ok(Attr::Unit)
            }
            Tok::Bare(b) if b == "dense" => self.parse_dense(),
            Tok::Str(s) => {
                self.bump()?;
                Ok(Attr::Str(s))
            }
            Tok::Punct("[") => {
                self.bump()?;
                let mut items = Vec::new();
                if !self.is("]") {
                    loop {
                        items.push(self.parse_attr()?);
                        if !self.eat(",")? {
                            break;
                        }
                    }
                }
                self.expect("]")?;
                Ok(Attr::Array(items))
            }
            Tok::Punct("{") => Ok(Attr::Dict(self.parse_attr_dict()?.entries().to_vec())),
            Tok::At(first) => {
                self.bump()?;
                let mut path = vec![first];
                while self.eat("::")? {
                    match self.tok.clone() {
                        Tok::At(n) => {
                            self.bump()?;
                            path.push(n);
                        }
                        t => {
                            return self.err(format!(
                                "expected a symbol after '::', found {}",
                                describe(&t)
                            ))
                        }
                    }
                }
                Ok(Attr::SymbolRef(path))
            }
            Tok::Hash(name) => {
                let Some((dialect, rest)) = name.split_once('.') else {
                    return self.err(format!(
                        "attribute aliases ('#{name}') are not supported; write the attribute inline"
                    ));
                };
                let (dialect, rest) = (dialect.to_string(), rest.to_string());
                if self.peek_byte(0) != Some(b'<') {
                    self.bump()?;
                    return Ok(Attr::Opaque {
                        dialect,
                        body: rest,
                    });
                }
                self.pos += 1;
                let inner_start = self.pos;
                let inner = self.raw_angle_body()?;
                self.bump()?;
                if dialect == "mkc" && rest == "weight" {
                    // The body must be exactly one string literal.
                    let mut sub = Parser::new(&inner, self.file, self.registry);
                    let bad = || {
                        Diagnostic::error(
                            self.loc_at(inner_start),
                            "expected #mkc.weight<\"tensor name\">",
                        )
                    };
                    sub.bump().map_err(|_| bad())?;
                    let Tok::Str(s) = sub.tok.clone() else {
                        return Err(bad());
                    };
                    sub.bump().map_err(|_| bad())?;
                    if sub.tok != Tok::Eof {
                        return Err(bad());
                    }
                    return Ok(Attr::Weight(s));
                }
                Ok(Attr::Opaque {
                    dialect,
                    body: format!("{rest}<{inner}>"),
                })
            }
            Tok::Bare(_) | Tok::Bang(_) | Tok::Punct("(") => Ok(Attr::Type(self.parse_type()?)),
            t => self.err(format!("expected an attribute, found {}", describe(&t))),
        }
    }

    fn parse_number(&mut self) -> PResult<Num> {
        let neg = self.eat("-")?;
        let t = self.tok.clone();
        let n = match &t {
            Tok::Int(s) => {
                let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    u64::from_str_radix(h, 16).ok().map(Num::Hex)
                } else {
                    s.parse::<i128>().ok().map(Num::Int)
                };
                match v {
                    Some(Num::Int(v)) if neg => Num::Int(-v),
                    Some(Num::Hex(_)) if neg => {
                        return self.err("a hex literal cannot be negative")
                    }
                    Some(v) => v,
                    None => return self.err(format!("integer literal '{s}' is out of range")),
                }
            }
            Tok::Float(s) => match s.parse::<f64>() {
                Ok(v) => Num::Float(if neg { -v } else { v }),
                Err(_) => return self.err(format!("bad float literal '{s}'")),
            },
            t => return self.err(format!("expected a number, found {}", describe(t))),
        };
        self.bump()?;
        Ok(n)
    }

    /// `{k = v, flag}` (the braces included).
    fn parse_attr_dict(&mut self) -> PResult<Attrs> {
        self.expect("{")?;
        let mut attrs = Attrs::new();
        if !self.is("}") {
            loop {
                let kloc = self.loc();
                let key = match self.tok.clone() {
                    Tok::Bare(k) => k,
                    Tok::Str(k) => k,
                    t => {
                        return self.err(format!(
                            "expected an attribute name, found {}",
                            describe(&t)
                        ))
                    }
                };
                self.bump()?;
                let value = if self.eat("=")? {
                    self.parse_attr()?
                } else {
                    Attr::Unit
                };
                if attrs.get(&key).is_some() {
                    return self.err_at(kloc, format!("duplicate attribute '{key}'"));
                }
                attrs.set(key, value);
                if !self.eat(",")? {
                    break;
                }
            }
        }
        self.expect("}")?;
        Ok(attrs)
    }

    fn parse_dense(&mut self) -> PResult<Attr> {
        let loc = self.loc();
        // `dense<` : the `<` directly follows the keyword.
        self.bump()?;
        self.expect("<")?;
        let mut elems = Vec::new();
        let mut shape: Option<Vec<i64>> = None;
        let mut hex: Option<Vec<u8>> = None;
        if let Tok::Str(s) = self.tok.clone() {
            let Some(h) = s.strip_prefix("0x") else {
                return self.err("expected a hex string \"0x...\" in dense<>");
            };
            if h.len() % 2 != 0 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                return self.err("bad hex data in dense<>");
            }
            hex = Some(
                (0..h.len() / 2)
                    .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0))
                    .collect(),
            );
            self.bump()?;
        } else if !self.is(">") {
            let mut sh = Vec::new();
            self.dense_elements(&mut elems, &mut sh, 0)?;
            shape = Some(sh);
        }
        self.expect(">")?;
        self.expect(":")?;
        let tloc = self.loc();
        let ty = match self.parse_type()? {
            Type::Tensor(t) => t,
            t => return self.err_at(tloc, format!("dense<> needs a tensor type, found {t}")),
        };
        let n = ty.num_elements();
        if let Some(bytes) = hex {
            return dense_from_hex(&bytes, ty)
                .ok_or_else(|| Diagnostic::error(loc, "hex data does not match the tensor type"));
        }
        let empty_literal = shape.is_none();
        let shape = shape.unwrap_or_default();
        let splat = elems.len() == 1 && shape.is_empty();
        if empty_literal && n != 0 {
            return self.err_at(
                loc,
                format!("empty dense<> for a non-empty {}", Type::Tensor(ty)),
            );
        }
        if !splat && !empty_literal && shape != ty.shape {
            let got = shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x");
            return self.err_at(
                loc,
                format!(
                    "dense<> literal has shape [{got}] but the type is {}",
                    Type::Tensor(ty)
                ),
            );
        }
        let values = if ty.elem.is_float() {
            let mut v = Vec::with_capacity(elems.len());
            for e in elems {
                match num_to_attr(e, ty.elem) {
                    Some(Attr::Float(f, _)) => v.push(f),
                    _ => return self.err_at(loc, format!("element is not a valid {}", ty.elem)),
                }
            }
            DenseValues::Float(v)
        } else {
            let mut v = Vec::with_capacity(elems.len());
            for e in elems {
                match num_to_attr(e, ty.elem) {
                    Some(Attr::Int(i, _)) => v.push(i),
                    Some(Attr::Bool(b)) => v.push(b as i64),
                    _ => return self.err_at(loc, format!("element is not a valid {}", ty.elem)),
                }
            }
            DenseValues::Int(v)
        };
        Ok(Attr::Dense(DenseAttr { ty, splat, values }))
    }

    /// Nested `[...]` lists of numbers; records the shape of the first path and checks the rest.
    fn dense_elements(
        &mut self,
        out: &mut Vec<Num>,
        shape: &mut Vec<i64>,
        dim: usize,
    ) -> PResult<()> {
        self.enter()?;
        let r = self.dense_elements_inner(out, shape, dim);
        self.leave();
        r
    }

    fn dense_elements_inner(
        &mut self,
        out: &mut Vec<Num>,
        shape: &mut Vec<i64>,
        dim: usize,
    ) -> PResult<()> {
        if self.is("[") {
            let loc = self.loc();
            self.bump()?;
            let mut count = 0i64;
            if !self.is("]") {
                loop {
                    self.dense_elements(out, shape, dim + 1)?;
                    count += 1;
                    if !self.eat(",")? {
                        break;
                    }
                }
            }
            self.expect("]")?;
            if shape.len() <= dim {
                shape.resize(dim + 1, -1);
            }
            if shape[dim] == -1 {
                shape[dim] = count;
            } else if shape[dim] != count {
                return self.err_at(loc, "dense<> literal is ragged: sublists differ in length");
            }
            Ok(())
        } else {
            if dim < shape.len() {
                return self.err("dense<> literal is ragged: expected a nested list");
            }
            let n = match self.tok.clone() {
                Tok::Bare(b) if b == "true" || b == "false" => {
                    self.bump()?;
                    Num::Int((b == "true") as i128)
                }
                _ => self.parse_number()?,
            };
            out.push(n);
            Ok(())
        }
    }

    // ---------------------------------------------------------------- values

    fn push_scope(&mut self, isolated: bool) {
        self.scopes.push(Scope {
            names: HashMap::new(),
            pending: HashMap::new(),
            isolated,
        });
    }

    /// Pops a scope; its unresolved forward references move to the parent scope, or are errors
    /// when the scope is isolated.
    fn pop_scope(&mut self) -> PResult<()> {
        let Some(scope) = self.scopes.pop() else {
            return Ok(());
        };
        let parent_ok = !scope.isolated && !self.scopes.is_empty();
        let mut pending: Vec<_> = scope.pending.into_iter().collect();
        pending.sort_by_key(|(_, (_, loc))| (loc.line, loc.col));
        for ((name, idx), (ph, loc)) in pending {
            if parent_ok {
                let parent = self.scopes.last_mut().expect("checked");
                parent.pending.entry((name, idx)).or_insert((ph, loc));
            } else {
                return self.err_at(loc, format!("use of undeclared SSA value name '%{name}'"));
            }
        }
        Ok(())
    }

    /// Resolves `%name#idx` used with type `ty`.
    fn use_value(&mut self, name: &str, idx: usize, ty: &Type, loc: Loc) -> PResult<ValueId> {
        for scope in self.scopes.iter().rev() {
            if let Some((vals, _)) = scope.names.get(name) {
                let Some(&v) = vals.get(idx) else {
                    return self.err_at(
                        loc,
                        format!(
                            "result number {idx} is out of range: '%{name}' has {} results",
                            vals.len()
                        ),
                    );
                };
                return self.check_use_type(v, name, ty, loc);
            }
            if let Some(&(ph, _)) = scope.pending.get(&(name.to_string(), idx)) {
                return self.check_use_type(ph, name, ty, loc);
            }
            if scope.isolated {
                break;
            }
        }
        let ph = self.body.values.push(ValueData {
            ty: ty.clone(),
            def: ValueDef::Placeholder,
        });
        if let Some(scope) = self.scopes.last_mut() {
            scope.pending.insert((name.to_string(), idx), (ph, loc));
        }
        Ok(ph)
    }

    fn check_use_type(&self, v: ValueId, name: &str, ty: &Type, loc: Loc) -> PResult<ValueId> {
        let have = &self.body.values[v].ty;
        if have != ty {
            return self.err_at(
                loc,
                format!("use of value '%{name}' expects different type than prior uses: '{ty}' vs '{have}'"),
            );
        }
        Ok(v)
    }

    /// Binds `%name` to values in the current scope, resolving earlier forward references.
    fn define(&mut self, name: &str, values: Vec<ValueId>, loc: Loc) -> PResult<()> {
        let Some(scope) = self.scopes.last_mut() else {
            return Ok(());
        };
        if let Some((_, prev)) = scope.names.get(name) {
            return Err(
                Diagnostic::error(loc, format!("redefinition of SSA value '%{name}'"))
                    .with_note(*prev, "previously defined here"),
            );
        }
        let mut resolved = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            if let Some((ph, use_loc)) = scope.pending.remove(&(name.to_string(), i)) {
                resolved.push((ph, v, use_loc));
            }
        }
        scope.names.insert(name.to_string(), (values, loc));
        for (ph, v, use_loc) in resolved {
            if self.body.values[ph].ty != self.body.values[v].ty {
                return self.err_at(
                    use_loc,
                    format!(
                        "'%{name}' is defined with type '{}' but was used with type '{}'",
                        self.body.values[v].ty, self.body.values[ph].ty
                    ),
                );
            }
            for op in self.body.ops.values_mut() {
                for o in &mut op.operands {
                    if *o == ph {
                        *o = v;
                    }
                }
            }
        }
        Ok(())
    }

    /// `%name` or `%name#3`, returning (name, index, loc).
    fn parse_value_ref(&mut self) -> PResult<(String, usize, Loc)> {
        let loc = self.loc();
        let Tok::Percent(name) = self.tok.clone() else {
            return self.err(format!(
                "expected an SSA value, found {}",
                describe(&self.tok)
            ));
        };
        // `%0#1`: the `#1` directly follows.
        let mut idx = 0;
        if self.peek_byte(0) == Some(b'#') {
            self.bump()?;
            let Tok::Hash(n) = self.tok.clone() else {
                return self.err("expected a result number after '#'");
            };
            idx = match n.parse::<usize>() {
                Ok(i) => i,
                Err(_) => return self.err(format!("bad result number '#{n}'")),
            };
        }
        self.bump()?;
        Ok((name, idx, loc))
    }

    // ---------------------------------------------------------------- operations

    fn parse_top(&mut self) -> PResult<()> {
        self.bump()?;
        self.push_scope(true);
        let block = self.body.module_block();
        while self.tok != Tok::Eof {
            if self.is("{-#") {
                return self.err("resource sections '{-# ... #-}' are not supported");
            }
            if let Tok::Hash(_) = self.tok {
                return self.err("attribute aliases are not supported; write attributes inline");
            }
            if let Tok::Bang(_) = self.tok {
                return self.err("type aliases are not supported; write types inline");
            }
            let op = self.parse_op()?;
            self.body.append_op(block, op);
        }
        self.pop_scope()?;
        // A single top-level `builtin.module` is the module itself (as in MLIR).
        let ops = self.body.blocks[block].ops.clone();
        if let [only] = ops[..] {
            let data = &self.body.ops[only];
            if data.name == builtin::Module::NAME && data.results.is_empty() {
                self.body.erase_op(only);
                self.body.root = only;
            }
        }
        Ok(())
    }

    fn parse_op(&mut self) -> PResult<OpId> {
        self.enter()?;
        let r = self.parse_op_inner();
        self.leave();
        r
    }

    fn parse_op_inner(&mut self) -> PResult<OpId> {
        let loc = self.loc();
        // Result bindings: `%a, %b:2 =`
        let mut bindings: Vec<(String, usize, Loc)> = Vec::new();
        if let Tok::Percent(_) = self.tok {
            loop {
                let bloc = self.loc();
                let Tok::Percent(name) = self.tok.clone() else {
                    return self.err(format!(
                        "expected an SSA value name, found {}",
                        describe(&self.tok)
                    ));
                };
                self.bump()?;
                let mut count = 1;
                if self.eat(":")? {
                    let Tok::Int(n) = self.tok.clone() else {
                        return self.err("expected a result count after ':'");
                    };
                    count = match n.parse::<usize>() {
                        Ok(c) if c > 0 && c < 1 << 16 => c,
                        _ => return self.err(format!("bad result count '{n}'")),
                    };
                    self.bump()?;
                }
                bindings.push((name, count, bloc));
                if !self.eat(",")? {
                    break;
                }
            }
            self.expect("=")?;
        }
        let op_loc = self.loc();
        let op = match self.tok.clone() {
            Tok::Str(name) => self.parse_generic(name, op_loc)?,
            Tok::Bare(b) if b == "module" || b == builtin::Module::NAME => self.parse_module(op_loc)?,
            Tok::Bare(b) if b == builtin::Func::NAME => self.parse_func(op_loc)?,
            Tok::Bare(b) if b == "return" || b == builtin::Return::NAME => self.parse_return(op_loc)?,
            Tok::Bare(b) => {
                return self.err(format!(
                    "custom assembly form of '{b}' is not supported; write it in generic form: \"{b}\"(...) : (...) -> ..."
                ))
            }
            t => return self.err(format!("expected an operation, found {}", describe(&t))),
        };
        self.skip_location()?;
        let results = self.body.ops[op].results.clone();
        let wanted: usize = bindings.iter().map(|b| b.1).sum();
        if wanted != results.len() {
            return self.err_at(
                loc,
                format!(
                    "operation defines {} results but {} names were bound",
                    results.len(),
                    wanted
                ),
            );
        }
        let mut next = 0;
        for (name, count, bloc) in bindings {
            self.define(&name, results[next..next + count].to_vec(), bloc)?;
            next += count;
        }
        Ok(op)
    }

    fn is_isolated(&self, name: &str) -> bool {
        self.registry.get(name).is_some_and(|d| {
            d.traits
                .contains(crate::registry::Traits::ISOLATED_FROM_ABOVE)
        })
    }

    fn parse_generic(&mut self, name: String, loc: Loc) -> PResult<OpId> {
        if !crate::attr::is_bare_identifier(&name) {
            return self.err(format!(
                "operation name {name:?} is not an identifier (letters, digits, '_', '$', '.')"
            ));
        }
        if !name.contains('.') || name.ends_with('.') {
            return self.err(format!(
                "operation name '{name}' needs a dialect prefix, like \"tg.{name}\""
            ));
        }
        self.bump()?;
        self.expect("(")?;
        let mut operand_refs = Vec::new();
        if !self.is(")") {
            loop {
                operand_refs.push(self.parse_value_ref()?);
                if !self.eat(",")? {
                    break;
                }
            }
        }
        self.expect(")")?;
        if self.is("[") {
            return self.err("block successors are not supported (mkc regions have one block)");
        }
        let mut attrs = Attrs::new();
        if self.is("<") {
            // Properties `<{...}>`: treated as ordinary attributes.
            self.bump()?;
            for (k, v) in self.parse_attr_dict()?.entries() {
                attrs.set(k.clone(), v.clone());
            }
            self.expect(">")?;
        }
        let mut regions = Vec::new();
        if self.is("(") {
            self.bump()?;
            let isolated = self.is_isolated(&name);
            loop {
                regions.push(self.parse_region(None, isolated)?);
                if !self.eat(",")? {
                    break;
                }
            }
            self.expect(")")?;
        }
        if self.is("{") {
            let dict_loc = self.loc();
            for (k, v) in self.parse_attr_dict()?.entries() {
                if attrs.get(k).is_some() {
                    return self.err_at(dict_loc, format!("attribute '{k}' is given twice"));
                }
                attrs.set(k.clone(), v.clone());
            }
        }
        self.expect(":")?;
        let tloc = self.loc();
        let (ins, outs) = match self.parse_type()? {
            Type::Function(i, o) => (i, o),
            t => {
                return self.err_at(
                    tloc,
                    format!("expected a function type '(...) -> ...', found {t}"),
                )
            }
        };
        if ins.len() != operand_refs.len() {
            return self.err_at(
                tloc,
                format!(
                    "{} operands present, but the type lists {}",
                    operand_refs.len(),
                    ins.len()
                ),
            );
        }
        let mut operands = Vec::with_capacity(ins.len());
        for ((n, i, l), ty) in operand_refs.iter().zip(&ins) {
            operands.push(self.use_value(n, *i, ty, *l)?);
        }
        let op = self.body.create_op(OpSpec {
            name,
            operands,
            result_types: outs,
            attrs,
            num_regions: 0,
            loc,
        });
        self.attach_regions(op, regions);
        Ok(op)
    }

    fn attach_regions(&mut self, op: OpId, regions: Vec<RegionId>) {
        for r in regions {
            self.body.regions[r].parent = Some(op);
            self.body.ops[op].regions.push(r);
        }
    }

    /// `{ ops... ^bb1(...): ops... }`. `entry_args` are the function's arguments when the
    /// entry block's arguments come from a signature.
    fn parse_region(
        &mut self,
        entry_args: Option<Vec<(String, Type, Loc)>>,
        isolated: bool,
    ) -> PResult<RegionId> {
        self.enter()?;
        let r = self.parse_region_inner(entry_args, isolated);
        self.leave();
        r
    }

    fn parse_region_inner(
        &mut self,
        entry_args: Option<Vec<(String, Type, Loc)>>,
        isolated: bool,
    ) -> PResult<RegionId> {
        self.expect("{")?;
        self.push_scope(isolated);
        let region = self.body.regions.push(RegionData::default());
        let mut block_names: HashMap<String, Loc> = HashMap::new();
        if let Some(args) = entry_args {
            self.new_block(region, args)?;
            if let Tok::Caret(_) = self.tok {
                return self.err(
                    "the entry block's arguments come from the signature; it cannot have a label",
                );
            }
        } else if !self.is("}") && !matches!(self.tok, Tok::Caret(_)) {
            self.new_block(region, Vec::new())?;
        }
        loop {
            if self.is("}") {
                break;
            }
            if let Tok::Caret(label) = self.tok.clone() {
                let lloc = self.loc();
                if let Some(prev) = block_names.insert(label.clone(), lloc) {
                    return Err(Diagnostic::error(
                        lloc,
                        format!("redefinition of block '^{label}'"),
                    )
                    .with_note(prev, "previously defined here"));
                }
                self.bump()?;
                let mut args = Vec::new();
                if self.eat("(")? {
                    if !self.is(")") {
                        loop {
                            let (n, i, aloc) = self.parse_value_ref()?;
                            if i != 0 {
                                return self
                                    .err_at(aloc, "a block argument cannot have a result number");
                            }
                            self.expect(":")?;
                            let ty = self.parse_type()?;
                            args.push((n, ty, aloc));
                            if !self.eat(",")? {
                                break;
                            }
                        }
                    }
                    self.expect(")")?;
                }
                self.expect(":")?;
                self.new_block(region, args)?;
                continue;
            }
            if self.tok == Tok::Eof {
                return self.err("expected '}' to close the region");
            }
            let op = self.parse_op()?;
            let block = *self.body.regions[region]
                .blocks
                .last()
                .expect("a block exists");
            self.body.append_op(block, op);
        }
        self.expect("}")?;
        self.pop_scope()?;
        Ok(region)
    }

    fn new_block(&mut self, region: RegionId, args: Vec<(String, Type, Loc)>) -> PResult<()> {
        let types: Vec<Type> = args.iter().map(|a| a.1.clone()).collect();
        let block = self.body.append_block(region, &types);
        let vals = self.body.blocks[block].args.clone();
        for ((name, _, loc), v) in args.into_iter().zip(vals) {
            self.define(&name, vec![v], loc)?;
        }
        Ok(())
    }

    /// `module [@name] [attributes {...}] { ... }`
    fn parse_module(&mut self, loc: Loc) -> PResult<OpId> {
        self.bump()?;
        let mut attrs = Attrs::new();
        if let Tok::At(name) = self.tok.clone() {
            self.bump()?;
            attrs.set("sym_name", Attr::Str(name));
        }
        if self.is_bare("attributes") {
            self.bump()?;
            for (k, v) in self.parse_attr_dict()?.entries() {
                attrs.set(k.clone(), v.clone());
            }
        }
        let region = self.parse_region(None, true)?;
        if self.body.regions[region].blocks.is_empty() {
            self.body.append_block(region, &[]);
        }
        let op = self.body.create_op(OpSpec {
            name: builtin::Module::NAME.into(),
            operands: vec![],
            result_types: vec![],
            attrs,
            num_regions: 0,
            loc,
        });
        self.attach_regions(op, vec![region]);
        Ok(op)
    }

    /// `func.func [private] @name(%a: T {attrs}, ...) [-> R] [attributes {...}] { ... }`
    fn parse_func(&mut self, loc: Loc) -> PResult<OpId> {
        self.bump()?;
        let mut attrs = Attrs::new();
        if let Tok::Bare(v) = self.tok.clone() {
            if v == "private" || v == "public" || v == "nested" {
                self.bump()?;
                attrs.set("sym_visibility", Attr::Str(v));
            }
        }
        let Tok::At(name) = self.tok.clone() else {
            return self.err(format!(
                "expected a function name '@name', found {}",
                describe(&self.tok)
            ));
        };
        self.bump()?;
        attrs.set("sym_name", Attr::Str(name));
        self.expect("(")?;
        let mut args = Vec::new();
        let mut arg_attrs = Vec::new();
        if !self.is(")") {
            loop {
                let (n, i, aloc) = self.parse_value_ref()?;
                if i != 0 {
                    return self.err_at(aloc, "an argument cannot have a result number");
                }
                self.expect(":")?;
                let ty = self.parse_type()?;
                let a = if self.is("{") {
                    self.parse_attr_dict()?
                } else {
                    Attrs::new()
                };
                arg_attrs.push(Attr::Dict(a.entries().to_vec()));
                args.push((n, ty, aloc));
                if !self.eat(",")? {
                    break;
                }
            }
        }
        self.expect(")")?;
        let results = if self.eat("->")? {
            self.parse_result_types()?
        } else {
            Vec::new()
        };
        if self.is_bare("attributes") {
            self.bump()?;
            for (k, v) in self.parse_attr_dict()?.entries() {
                attrs.set(k.clone(), v.clone());
            }
        }
        let ins = args.iter().map(|a| a.1.clone()).collect();
        attrs.set("function_type", Attr::Type(Type::Function(ins, results)));
        if arg_attrs.iter().any(|a| *a != Attr::Dict(vec![])) {
            attrs.set("arg_attrs", Attr::Array(arg_attrs));
        }
        if !self.is("{") {
            return self.err("function declarations without a body are not supported");
        }
        let region = self.parse_region(Some(args), true)?;
        let op = self.body.create_op(OpSpec {
            name: builtin::Func::NAME.into(),
            operands: vec![],
            result_types: vec![],
            attrs,
            num_regions: 0,
            loc,
        });
        self.attach_regions(op, vec![region]);
        Ok(op)
    }

    /// `return [%a, %b : T1, T2]`
    fn parse_return(&mut self, loc: Loc) -> PResult<OpId> {
        self.bump()?;
        let mut refs = Vec::new();
        if let Tok::Percent(_) = self.tok {
            loop {
                refs.push(self.parse_value_ref()?);
                if !self.eat(",")? {
                    break;
                }
            }
            self.expect(":")?;
        }
        let mut operands = Vec::new();
        for (i, (n, idx, l)) in refs.iter().enumerate() {
            if i > 0 {
                self.expect(",")?;
            }
            let ty = self.parse_type()?;
            operands.push(self.use_value(n, *idx, &ty, *l)?);
        }
        Ok(self.body.create_op(OpSpec {
            name: builtin::Return::NAME.into(),
            operands,
            result_types: vec![],
            attrs: Attrs::new(),
            num_regions: 0,
            loc,
        }))
    }
}

/// A numeric literal before its type is known.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i128),
    /// `0x...`: a bit pattern (for floats) or an unsigned integer.
    Hex(u64),
    Float(f64),
}

fn num_to_attr(n: Num, ty: ElemType) -> Option<Attr> {
    if ty.is_float() {
        let v = match n {
            Num::Float(f) => f,
            Num::Int(i) => i as f64,
            Num::Hex(bits) => match ty {
                ElemType::F64 => f64::from_bits(bits),
                ElemType::F32 => f32::from_bits(u32::try_from(bits).ok()?) as f64,
                ElemType::F16 => half::f16::from_bits(u16::try_from(bits).ok()?).to_f64(),
                t if t.is_minifloat() => {
                    crate::minifloat::decode(u32::try_from(bits).ok().filter(|&b| b < 256)?, t)?
                }

                _ => half::bf16::from_bits(u16::try_from(bits).ok()?).to_f64(),
            },
        };
        return Some(Attr::Float(F64(round_to(v, ty)), ty));
    }
    let v: i128 = match n {
        Num::Int(i) => i,
        Num::Hex(h) => h as i128,
        Num::Float(_) => return None,
    };
    let (lo, hi): (i128, i128) = match ty {
        ElemType::I1 => (0, 1),
        ElemType::U64 => (0, u64::MAX as i128),
        t if t.is_unsigned() => (0, (1i128 << t.bits()) - 1),
        t => (-(1i128 << (t.bits() - 1)), (1i128 << (t.bits() - 1)) - 1),
    };
    // Negative literals of unsigned types are rejected; signed ones may be written as their
    // unsigned bit pattern, as MLIR allows.
    let v = if v > hi && !ty.is_unsigned() && ty != ElemType::I1 && v < (1i128 << ty.bits()) {
        v - (1i128 << ty.bits())
    } else {
        v
    };
    if v < lo || v > hi {
        return None;
    }
    Some(Attr::Int(wrap_int(v as i64, ty), ty))
}

fn dense_from_hex(bytes: &[u8], ty: TensorType) -> Option<Attr> {
    let w = ty.elem.bytes();
    if w == 0 || !bytes.len().is_multiple_of(w) {
        return None;
    }
    let n = bytes.len() / w;
    let splat = n == 1 && ty.num_elements() != 1;
    if !splat && n as u64 != ty.num_elements() {
        return None;
    }
    let raw = |i: usize| -> u64 {
        let mut v = 0u64;
        for (k, b) in bytes[i * w..(i + 1) * w].iter().enumerate() {
            v |= (*b as u64) << (8 * k);
        }
        v
    };
    let values = if ty.elem.is_float() {
        DenseValues::Float(
            (0..n)
                .map(|i| match num_to_attr(Num::Hex(raw(i)), ty.elem) {
                    Some(Attr::Float(f, _)) => f,
                    _ => F64(0.0),
                })
                .collect(),
        )
    } else {
        DenseValues::Int(
            (0..n)
                .map(|i| {
                    let r = raw(i);
                    let sign_ext = if ty.elem.is_unsigned() || w == 8 {
                        r as i64
                    } else {
                        let shift = 64 - 8 * w as u32;
                        ((r << shift) as i64) >> shift
                    };
                    wrap_int(sign_ext, ty.elem)
                })
                .collect(),
        )
    };
    Some(Attr::Dense(DenseAttr { ty, splat, values }))
}
