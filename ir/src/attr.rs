//! Attributes: compile-time constant data attached to operations.

use crate::types::{ElemType, TensorType, Type};
use std::fmt::{self, Write};
use std::hash::{Hash, Hasher};

/// An f64 compared and hashed by its bits, so attributes can be map keys (CSE needs that).
#[derive(Clone, Copy, Debug)]
pub struct F64(pub f64);

impl PartialEq for F64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for F64 {}
impl Hash for F64 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

/// The elements of a dense attribute, flattened row-major. Integers of every width (and i1,
/// and ui64 reinterpreted) are stored as i64; floats of every width as f64, already rounded
/// to their element type.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum DenseValues {
    Int(Vec<i64>),
    Float(Vec<F64>),
}

impl DenseValues {
    pub fn len(&self) -> usize {
        match self {
            DenseValues::Int(v) => v.len(),
            DenseValues::Float(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `dense<...> : tensor<...>`. A splat holds exactly one value.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DenseAttr {
    pub ty: TensorType,
    pub splat: bool,
    pub values: DenseValues,
}

impl DenseAttr {
    /// A splat of one float value (rounded to the element type).
    pub fn splat_f64(ty: TensorType, v: f64) -> DenseAttr {
        let values = if ty.elem.is_float() {
            DenseValues::Float(vec![F64(round_to(v, ty.elem))])
        } else {
            DenseValues::Int(vec![wrap_int(v as i64, ty.elem)])
        };
        DenseAttr {
            ty,
            splat: true,
            values,
        }
    }

    /// The value at flat index `i` as f64 (a splat answers every index).
    pub fn get_f64(&self, i: usize) -> f64 {
        let i = if self.splat { 0 } else { i };
        match &self.values {
            DenseValues::Int(v) => {
                if self.ty.elem == ElemType::U64 {
                    v[i] as u64 as f64
                } else {
                    v[i] as f64
                }
            }
            DenseValues::Float(v) => v[i].0,
        }
    }

    pub fn get_i64(&self, i: usize) -> i64 {
        let i = if self.splat { 0 } else { i };
        match &self.values {
            DenseValues::Int(v) => v[i],
            DenseValues::Float(v) => v[i].0 as i64,
        }
    }

    /// If every element equals `v`.
    pub fn is_all(&self, v: f64) -> bool {
        let n = if self.splat { 1 } else { self.values.len() };
        (0..n).all(|i| self.get_f64(i) == v)
    }
}

/// Rounds an f64 to the nearest value of a float element type.
pub fn round_to(v: f64, elem: ElemType) -> f64 {
    match elem {
        ElemType::F32 => v as f32 as f64,
        ElemType::F16 => half::f16::from_f64(v).to_f64(),
        ElemType::BF16 => half::bf16::from_f64(v).to_f64(),
        e if e.is_minifloat() => crate::minifloat::round(v, e).unwrap_or(v),
        _ => v,
    }
}

/// Wraps an integer to the width (and signedness) of an integer element type.
pub fn wrap_int(v: i64, elem: ElemType) -> i64 {
    match elem {
        ElemType::I32 => v as i32 as i64,
        ElemType::I16 => v as i16 as i64,
        ElemType::I8 => v as i8 as i64,
        ElemType::I1 => v & 1,
        ElemType::U32 => v as u32 as i64,
        ElemType::U16 => v as u16 as i64,
        ElemType::U8 => v as u8 as i64,
        ElemType::I4 => (v << 60) >> 60,
        ElemType::U4 => v & 0xF,
        ElemType::I2 => (v << 62) >> 62,
        ElemType::U2 => v & 0x3,
        _ => v,
    }
}

/// Every attribute the IR knows.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Attr {
    /// A key present without a value: `{inplace}`.
    Unit,
    Bool(bool),
    /// An integer of an integer type or `index`: `3 : i32`.
    Int(i64, ElemType),
    /// A float of a float type: `1.0e-05 : f32`.
    Float(F64, ElemType),
    Str(String),
    Type(Type),
    /// `@a` or the nested `@a::@b`.
    SymbolRef(Vec<String>),
    Array(Vec<Attr>),
    /// Sorted by key, as MLIR keeps dictionaries.
    Dict(Vec<(String, Attr)>),
    Dense(DenseAttr),
    /// A reference to external weight data by name: `#mkc.weight<"model.embed_tokens.weight">`.
    /// Weights are never inlined into IR text.
    Weight(String),
    /// Any other dialect attribute `#dialect.body`, kept verbatim.
    Opaque {
        dialect: String,
        body: String,
    },
}

impl Attr {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Attr::Int(v, _) => Some(*v),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Attr::Float(v, _) => Some(v.0),
            Attr::Int(v, _) => Some(*v as f64),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Attr::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Attr::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_type(&self) -> Option<&Type> {
        match self {
            Attr::Type(t) => Some(t),
            _ => None,
        }
    }
    pub fn as_dense(&self) -> Option<&DenseAttr> {
        match self {
            Attr::Dense(d) => Some(d),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Attr]> {
        match self {
            Attr::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A short name of the attribute's kind, for diagnostics.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Attr::Unit => "unit",
            Attr::Bool(_) => "bool",
            Attr::Int(..) => "integer",
            Attr::Float(..) => "float",
            Attr::Str(_) => "string",
            Attr::Type(_) => "type",
            Attr::SymbolRef(_) => "symbol reference",
            Attr::Array(_) => "array",
            Attr::Dict(_) => "dictionary",
            Attr::Dense(_) => "dense elements",
            Attr::Weight(_) => "weight reference",
            Attr::Opaque { .. } => "dialect attribute",
        }
    }
}

/// Formats a float of a given element type so that MLIR parses it back to the same value:
/// shortest round-trip digits, always with a `.`; non-finite values as hex bit patterns.
pub fn format_float(v: f64, elem: ElemType) -> String {
    if !v.is_finite() {
        if elem.is_minifloat() {
            let code = crate::minifloat::encode(v, elem, false).unwrap_or(0);
            return format!("0x{code:02X}");
        }
        return match elem {
            ElemType::F64 => format!("0x{:016X}", v.to_bits()),
            ElemType::F16 => format!("0x{:04X}", half::f16::from_f64(v).to_bits()),
            ElemType::BF16 => format!("0x{:04X}", half::bf16::from_f64(v).to_bits()),
            _ => format!("0x{:08X}", (v as f32).to_bits()),
        };
    }
    // f32 and narrower print through f32: their shortest f32 digits identify them exactly.
    let (plain, exp) = if elem == ElemType::F64 {
        (format!("{v}"), format!("{v:e}"))
    } else {
        let x = v as f32;
        (format!("{x}"), format!("{x:e}"))
    };
    let a = v.abs();
    let s = if a == 0.0 || (1e-4..1e16).contains(&a) {
        plain
    } else {
        exp
    };
    if s.contains('.') {
        return s;
    }
    match s.find('e') {
        Some(i) => format!("{}.0{}", &s[..i], &s[i..]),
        None => format!("{s}.0"),
    }
}

/// Writes a string literal with MLIR's escapes.
pub fn write_string(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for b in s.bytes() {
        match b {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => f.write_char(b as char)?,
            _ => write!(f, "\\{b:02X}")?,
        }
    }
    f.write_char('"')
}

fn write_int(f: &mut impl Write, v: i64, elem: ElemType) -> fmt::Result {
    match elem {
        ElemType::I1 => f.write_str(if v != 0 { "true" } else { "false" }),
        ElemType::U64 => write!(f, "{}", v as u64),
        _ => write!(f, "{v}"),
    }
}

impl fmt::Display for DenseAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let elem = self.ty.elem;
        let write_one = |f: &mut fmt::Formatter<'_>, i: usize| -> fmt::Result {
            match &self.values {
                DenseValues::Int(v) => write_int(f, v[i], elem),
                DenseValues::Float(v) => f.write_str(&format_float(v[i].0, elem)),
            }
        };
        f.write_str("dense<")?;
        if self.ty.num_elements() == 0 {
            // `dense<>`: nested brackets cannot express a zero-sized inner dimension.
        } else if self.splat || self.ty.rank() == 0 {
            write_one(f, 0)?;
        } else {
            // Nested brackets, one level per dimension.
            fn rec(
                f: &mut fmt::Formatter<'_>,
                shape: &[i64],
                start: usize,
                write_one: &dyn Fn(&mut fmt::Formatter<'_>, usize) -> fmt::Result,
            ) -> fmt::Result {
                f.write_char('[')?;
                let stride: usize = shape[1..].iter().map(|&d| d as usize).product();
                for i in 0..shape[0] as usize {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if shape.len() == 1 {
                        write_one(f, start + i)?;
                    } else {
                        rec(f, &shape[1..], start + i * stride, write_one)?;
                    }
                }
                f.write_char(']')
            }
            rec(f, &self.ty.shape, 0, &write_one)?;
        }
        write!(f, "> : {}", self.ty)
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Unit => f.write_str("unit"),
            Attr::Bool(b) => write!(f, "{b}"),
            Attr::Int(v, ElemType::I1) => write_int(f, *v, ElemType::I1),
            Attr::Int(v, e) => {
                write_int(f, *v, *e)?;
                write!(f, " : {e}")
            }
            Attr::Float(v, e) => write!(f, "{} : {e}", format_float(v.0, *e)),
            Attr::Str(s) => write_string(f, s),
            Attr::Type(t) => write!(f, "{t}"),
            Attr::SymbolRef(path) => {
                for (i, p) in path.iter().enumerate() {
                    if i > 0 {
                        f.write_str("::")?;
                    }
                    f.write_char('@')?;
                    write_symbol_name(f, p)?;
                }
                Ok(())
            }
            Attr::Array(items) => {
                f.write_char('[')?;
                crate::types::write_list(f, items)?;
                f.write_char(']')
            }
            Attr::Dict(entries) => write_dict(f, entries),
            Attr::Dense(d) => write!(f, "{d}"),
            Attr::Weight(name) => {
                f.write_str("#mkc.weight<")?;
                write_string(f, name)?;
                f.write_char('>')
            }
            Attr::Opaque { dialect, body } => write!(f, "#{dialect}.{body}"),
        }
    }
}

/// `{a = 1 : i64, flag}`; unit entries print as the bare key.
pub fn write_dict(f: &mut impl Write, entries: &[(String, Attr)]) -> fmt::Result {
    f.write_char('{')?;
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_key(f, k)?;
        if *v != Attr::Unit {
            write!(f, " = {v}")?;
        }
    }
    f.write_char('}')
}

/// Whether `s` can be written without quotes as a bare identifier.
pub fn is_bare_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

fn write_key(f: &mut impl Write, k: &str) -> fmt::Result {
    if is_bare_identifier(k) {
        f.write_str(k)
    } else {
        write_string(f, k)
    }
}

/// Writes a symbol name (after the `@`), quoting it when it is not a bare identifier.
pub fn write_symbol_name(f: &mut impl Write, s: &str) -> fmt::Result {
    if is_bare_identifier(s) {
        f.write_str(s)
    } else {
        write_string(f, s)
    }
}

/// An ordered attribute dictionary (sorted by name, unique names), as on an operation.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Attrs(Vec<(String, Attr)>);

impl Attrs {
    pub fn new() -> Self {
        Attrs(Vec::new())
    }

    pub fn get(&self, name: &str) -> Option<&Attr> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Sets `name`, replacing any previous value.
    pub fn set(&mut self, name: impl Into<String>, value: Attr) {
        let name = name.into();
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Attr> {
        let i = self
            .0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()?;
        Some(self.0.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Attr)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn entries(&self) -> &[(String, Attr)] {
        &self.0
    }
}

impl<K: Into<String>> FromIterator<(K, Attr)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (K, Attr)>>(iter: I) -> Self {
        let mut a = Attrs::new();
        for (k, v) in iter {
            a.set(k, v);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_with_a_dot_and_round_trip() {
        assert_eq!(format_float(1.0, ElemType::F32), "1.0");
        assert_eq!(format_float(1e-5, ElemType::F32), "1.0e-5");
        assert_eq!(format_float(1e-5, ElemType::F64), "1.0e-5");
        assert_eq!(format_float(-0.0, ElemType::F32), "-0.0");
        assert_eq!(format_float(0.1f32 as f64, ElemType::F32), "0.1");
        assert_eq!(format_float(1e20, ElemType::F64), "1.0e20");
        assert_eq!(format_float(f64::NAN, ElemType::F32), "0x7FC00000");
        assert_eq!(format_float(f64::INFINITY, ElemType::BF16), "0x7F80");
        for v in [2.71f32 as f64, 1.5e-7, 6.02e23, 123456.78] {
            let s = format_float(v, ElemType::F32);
            assert_eq!(s.parse::<f32>().unwrap() as f64, v as f32 as f64, "{s}");
        }
    }

    #[test]
    fn dense_prints_nested() {
        let d = DenseAttr {
            ty: TensorType::new([2, 2], ElemType::I32),
            splat: false,
            values: DenseValues::Int(vec![1, 2, 3, 4]),
        };
        assert_eq!(d.to_string(), "dense<[[1, 2], [3, 4]]> : tensor<2x2xi32>");
        let s = DenseAttr::splat_f64(TensorType::new([3], ElemType::BF16), 0.1);
        assert_eq!(s.to_string(), "dense<0.100097656> : tensor<3xbf16>");
    }

    #[test]
    fn attrs_stay_sorted() {
        let mut a = Attrs::new();
        a.set("b", Attr::Unit);
        a.set("a", Attr::Bool(true));
        a.set("b", Attr::Bool(false));
        let keys: Vec<_> = a.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(a.get("b"), Some(&Attr::Bool(false)));
    }
}
