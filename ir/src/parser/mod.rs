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

mod attr;

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
