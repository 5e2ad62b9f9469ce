//! Types and attributes: tensor types, numbers, strings, dictionaries and dense
//! elements, each checked against its declared type.

use super::*;

impl Parser<'_> {
    // ---------------------------------------------------------------- types

    pub(super) fn parse_type(&mut self) -> PResult<Type> {
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
    pub(super) fn parse_result_types(&mut self) -> PResult<Vec<Type>> {
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
                    Ok(d) if d <= crate::types::MAX_DIM => shape.push(d),
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
    pub(super) fn parse_attr_dict(&mut self) -> PResult<Attrs> {
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
    if ty == ElemType::I1 {
        // `1 : i1` is `true`, as in MLIR: one attribute, which prints as `true` (an i1
        // integer attribute once printed so and came back a bool; found by fuzzing).
        return Some(Attr::Bool(v != 0));
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
