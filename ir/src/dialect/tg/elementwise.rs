//! The elementwise core of `tg`: `tg.constant`, arithmetic, math, comparisons, logic,
//! `tg.where` and `tg.cast`, with numpy broadcasting. Each op's scalar function is part of
//! its definition (the registry's `scalar` hook, [`semantics`]): folding, the reference
//! interpreter, tiling and the kernel all take its elementwise meaning from there.

use super::tensor_operand;
use crate::attr::{round_to, wrap_int, Attr, Attrs, DenseAttr, DenseValues, F64};
use crate::interpret::Eval;
use crate::ir::{Body, OpId};
use crate::registry::{AttrKind, FoldInput, Folded, Registry, Traits};
use crate::tensor::Tensor;
use crate::types::{broadcast_shapes, ElemType, TensorType, Type};

/// Folding gives up above this many elements (a splat result is always folded).
const MAX_FOLD_ELEMENTS: u64 = 1 << 16;

/// One element: floats of every width as f64, integers (and i1) as i64.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    F(f64),
    I(i64),
}

impl Scalar {
    pub fn f(self) -> f64 {
        match self {
            Scalar::F(v) => v,
            Scalar::I(v) => v as f64,
        }
    }
    pub fn i(self) -> i64 {
        match self {
            Scalar::I(v) => v,
            Scalar::F(v) => v as i64,
        }
    }
    /// `tg.cast` to a float8/float4 type: out-of-range values saturate to the largest finite
    /// value (`saturate`, ONNX's default) or become infinity/NaN; E8M0 rounds by `mode`.
    pub fn convert_minifloat(
        self,
        to: ElemType,
        saturate: bool,
        mode: crate::minifloat::RoundMode,
    ) -> Scalar {
        use crate::minifloat::{decode, encode, encode_e8m0};
        let v = self.f();
        let code = if to == ElemType::F8E8M0FNU {
            Some(encode_e8m0(v, saturate, mode))
        } else {
            encode(v, to, saturate)
        };
        Scalar::F(code.and_then(|c| decode(c, to)).unwrap_or(f64::NAN))
    }

    /// Converts to an element type the way `tg.cast` does: floats round to the target width,
    /// float -> int truncates toward zero, anything -> i1 is `!= 0`, ints wrap.
    pub fn convert(self, to: ElemType) -> Scalar {
        match (self, to) {
            (Scalar::F(v), ElemType::I1) => Scalar::I((v != 0.0) as i64),
            (Scalar::I(v), ElemType::I1) => Scalar::I((v != 0) as i64),
            (s, t) if t.is_float() => Scalar::F(round_to(s.f(), t)),
            (Scalar::F(v), t) => Scalar::I(wrap_int(if v.is_nan() { 0 } else { v as i64 }, t)),
            (Scalar::I(v), t) => Scalar::I(wrap_int(v, t)),
        }
    }
}

/// The scalar function of an elementwise op (`None` from the function: undefined, e.g. an
/// integer division by zero).
pub type ScalarFn = Box<dyn Fn(&[Scalar]) -> Option<Scalar>>;

fn gelu(x: f64, tanh_approx: bool) -> f64 {
    if tanh_approx {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
    } else {
        0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn float1(f: fn(f64) -> f64) -> ScalarFn {
    Box::new(move |a| Some(Scalar::F(f(a[0].f()))))
}

fn num2(ff: fn(f64, f64) -> f64, fi: fn(i64, i64) -> Option<i64>) -> ScalarFn {
    Box::new(move |a| match (a[0], a[1]) {
        (Scalar::I(x), Scalar::I(y)) => fi(x, y).map(Scalar::I),
        (x, y) => Some(Scalar::F(ff(x.f(), y.f()))),
    })
}

fn cmp2(ff: fn(f64, f64) -> bool, fi: fn(i64, i64) -> bool) -> ScalarFn {
    Box::new(move |a| {
        let r = match (a[0], a[1]) {
            (Scalar::I(x), Scalar::I(y)) => fi(x, y),
            (x, y) => ff(x.f(), y.f()),
        };
        Some(Scalar::I(r as i64))
    })
}

/// The scalar semantics of an elementwise op (its definition's `scalar` hook), given its
/// attributes. Results are converted to the result element type by the caller
/// ([`Scalar::convert`]).
pub fn semantics(name: &str, attrs: &Attrs) -> Option<ScalarFn> {
    Registry::builtin().get(name)?.scalar.map(|f| f(attrs))
}

crate::op_kinds! {
    /// A dense literal or a named weight.
    Constant = "tg.constant",
    Add = "tg.add",
    Sub = "tg.sub",
    Mul = "tg.mul",
    Div = "tg.div",
    Max = "tg.max",
    Min = "tg.min",
    Pow = "tg.pow",
    And = "tg.and",
    Or = "tg.or",
    Eq = "tg.eq",
    Lt = "tg.lt",
    Le = "tg.le",
    Gt = "tg.gt",
    Ge = "tg.ge",
    Neg = "tg.neg",
    Abs = "tg.abs",
    Relu = "tg.relu",
    Exp = "tg.exp",
    Log = "tg.log",
    Sqrt = "tg.sqrt",
    Rsqrt = "tg.rsqrt",
    Reciprocal = "tg.reciprocal",
    Tanh = "tg.tanh",
    Sigmoid = "tg.sigmoid",
    Silu = "tg.silu",
    Erf = "tg.erf",
    Cos = "tg.cos",
    Sin = "tg.sin",
    Gelu = "tg.gelu",
    IsNan = "tg.isnan",
    Not = "tg.not",
    Where = "tg.where",
    /// Each element converted to the result's element type.
    Cast = "tg.cast",
}

/// NaN propagates through max and min.
fn nan_or(a: f64, b: f64, f: fn(f64, f64) -> f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        f(a, b)
    }
}

/// One row of an elementwise table: the op, its summary, its scalar function.
type Row = (&'static str, &'static str, crate::registry::ScalarHook);

pub fn register(r: &mut Registry) {
    r.op(
        Constant::NAME,
        "a tensor given by a dense literal or a named weight",
    )
    .results(1)
    .attr("value", AttrKind::DenseOrWeight)
    .traits(Traits::PURE | Traits::CONSTANT_LIKE)
    .verify(verify_constant)
    .interpret(constant);

    let ew = Traits::PURE | Traits::ELEMENTWISE;
    let comm = ew | Traits::COMMUTATIVE;
    let binary: [(Row, Traits, crate::registry::FoldFn); 7] = [
        (
            (Add::NAME, "elementwise sum", |_| {
                num2(|a, b| a + b, |a, b| Some(a.wrapping_add(b)))
            }),
            comm,
            fold_add,
        ),
        (
            (Sub::NAME, "elementwise difference", |_| {
                num2(|a, b| a - b, |a, b| Some(a.wrapping_sub(b)))
            }),
            ew,
            fold_sub,
        ),
        (
            (Mul::NAME, "elementwise product", |_| {
                num2(|a, b| a * b, |a, b| Some(a.wrapping_mul(b)))
            }),
            comm,
            fold_mul,
        ),
        // Integer division truncates toward zero (as ONNX and C do).
        (
            (
                Div::NAME,
                "elementwise quotient (integers truncate toward zero)",
                |_| num2(|a, b| a / b, |a, b| a.checked_div(b)),
            ),
            ew,
            fold_div,
        ),
        (
            (Max::NAME, "elementwise maximum (NaN propagates)", |_| {
                num2(|a, b| nan_or(a, b, f64::max), |a, b| Some(a.max(b)))
            }),
            comm,
            fold_const,
        ),
        (
            (Min::NAME, "elementwise minimum (NaN propagates)", |_| {
                num2(|a, b| nan_or(a, b, f64::min), |a, b| Some(a.min(b)))
            }),
            comm,
            fold_const,
        ),
        (
            (Pow::NAME, "elementwise power", |_| {
                num2(f64::powf, |a, b| {
                    u32::try_from(b).ok().map(|e| a.wrapping_pow(e))
                })
            }),
            ew,
            fold_pow,
        ),
    ];
    for ((name, summary, scalar), traits, fold) in binary {
        r.op(name, summary)
            .operands(2)
            .results(1)
            .traits(traits)
            .infer(infer_binary)
            .fold(fold)
            .scalar(scalar);
    }
    let logical: [Row; 2] = [
        (And::NAME, "elementwise logical and of i1 tensors", |_| {
            Box::new(|a| Some(Scalar::I((a[0].i() != 0 && a[1].i() != 0) as i64)))
        }),
        (Or::NAME, "elementwise logical or of i1 tensors", |_| {
            Box::new(|a| Some(Scalar::I((a[0].i() != 0 || a[1].i() != 0) as i64)))
        }),
    ];
    for (name, summary, scalar) in logical {
        r.op(name, summary)
            .operands(2)
            .results(1)
            .traits(comm)
            .infer(infer_logical)
            .fold(fold_const)
            .scalar(scalar);
    }
    let compare: [Row; 5] = [
        (Eq::NAME, "elementwise a == b, as i1", |_| {
            cmp2(|a, b| a == b, |a, b| a == b)
        }),
        (Lt::NAME, "elementwise a < b, as i1", |_| {
            cmp2(|a, b| a < b, |a, b| a < b)
        }),
        (Le::NAME, "elementwise a <= b, as i1", |_| {
            cmp2(|a, b| a <= b, |a, b| a <= b)
        }),
        (Gt::NAME, "elementwise a > b, as i1", |_| {
            cmp2(|a, b| a > b, |a, b| a > b)
        }),
        (Ge::NAME, "elementwise a >= b, as i1", |_| {
            cmp2(|a, b| a >= b, |a, b| a >= b)
        }),
    ];
    for (name, summary, scalar) in compare {
        r.op(name, summary)
            .operands(2)
            .results(1)
            .traits(ew)
            .infer(infer_compare)
            .fold(fold_const)
            .scalar(scalar);
    }
    register_unary(r, ew);
    r.op(
        Where::NAME,
        "elementwise cond ? a : b, numpy broadcasting over all three",
    )
    .operands(3)
    .results(1)
    .traits(ew)
    .infer(infer_where)
    .fold(fold_where)
    .scalar(|_| Box::new(|a| Some(if a[0].i() != 0 { a[1] } else { a[2] })));
    r.op(
        Cast::NAME,
        "converts each element to the result's element type",
    )
    .operands(1)
    .results(1)
    .optional_attr("saturate", AttrKind::Bool)
    .optional_attr("round_mode", AttrKind::Str)
    .traits(ew)
    .verify(verify_cast)
    .fold(fold_cast)
    // (The conversion is the store's: the caller converts every result.)
    .scalar(|_| Box::new(|a| Some(a[0])))
    .interpret(cast);
}

/// The elementwise ops of one operand.
fn register_unary(r: &mut Registry, ew: Traits) {
    r.op(Neg::NAME, "elementwise negation")
        .operands(1)
        .results(1)
        .traits(ew)
        .infer(infer_same)
        .fold(fold_neg)
        .scalar(|_| {
            Box::new(|a| {
                Some(match a[0] {
                    Scalar::I(x) => Scalar::I(x.wrapping_neg()),
                    Scalar::F(x) => Scalar::F(-x),
                })
            })
        });
    let same: [Row; 2] = [
        (Abs::NAME, "elementwise absolute value", |_| {
            Box::new(|a| {
                Some(match a[0] {
                    Scalar::I(x) => Scalar::I(x.wrapping_abs()),
                    Scalar::F(x) => Scalar::F(x.abs()),
                })
            })
        }),
        (Relu::NAME, "elementwise max(x, 0)", |_| {
            Box::new(|a| {
                Some(match a[0] {
                    Scalar::I(x) => Scalar::I(x.max(0)),
                    Scalar::F(x) => Scalar::F(if x < 0.0 { 0.0 } else { x }),
                })
            })
        }),
    ];
    for (name, summary, scalar) in same {
        r.op(name, summary)
            .operands(1)
            .results(1)
            .traits(ew)
            .infer(infer_same)
            .fold(fold_const)
            .scalar(scalar);
    }
    let float_unary: [Row; 11] = [
        (Exp::NAME, "elementwise e^x", |_| float1(f64::exp)),
        (Log::NAME, "elementwise natural logarithm", |_| {
            float1(f64::ln)
        }),
        (Sqrt::NAME, "elementwise square root", |_| float1(f64::sqrt)),
        (Rsqrt::NAME, "elementwise 1/sqrt(x)", |_| {
            float1(|x| 1.0 / x.sqrt())
        }),
        (Reciprocal::NAME, "elementwise 1/x", |_| float1(|x| 1.0 / x)),
        (Tanh::NAME, "elementwise hyperbolic tangent", |_| {
            float1(f64::tanh)
        }),
        (Sigmoid::NAME, "elementwise 1/(1+e^-x)", |_| float1(sigmoid)),
        (Silu::NAME, "elementwise x*sigmoid(x)", |_| {
            float1(|x| x * sigmoid(x))
        }),
        (Erf::NAME, "elementwise error function", |_| {
            float1(libm::erf)
        }),
        (Cos::NAME, "elementwise cosine", |_| float1(f64::cos)),
        (Sin::NAME, "elementwise sine", |_| float1(f64::sin)),
    ];
    for (name, summary, scalar) in float_unary {
        r.op(name, summary)
            .operands(1)
            .results(1)
            .traits(ew)
            .infer(infer_float_unary)
            .fold(fold_const)
            .scalar(scalar);
    }
    r.op(
        Gelu::NAME,
        "elementwise GELU; approximate = \"tanh\" for the tanh form",
    )
    .operands(1)
    .results(1)
    .optional_attr("approximate", AttrKind::Str)
    .traits(ew)
    .infer(infer_float_unary)
    .fold(fold_const)
    .scalar(|attrs| {
        let tanh = matches!(attrs.get("approximate"), Some(Attr::Str(s)) if s == "tanh");
        Box::new(move |a| Some(Scalar::F(gelu(a[0].f(), tanh))))
    });
    r.op(IsNan::NAME, "elementwise isnan(x), as i1")
        .operands(1)
        .results(1)
        .traits(ew)
        .infer(|ins, _| {
            let t = tensor_operand(&ins[0], 0)?;
            if !t.elem.is_float() {
                return Err(format!("requires a float tensor, but the operand is {t}"));
            }
            Ok(vec![Type::tensor(t.shape.clone(), ElemType::I1)])
        })
        .fold(fold_const)
        .scalar(|_| Box::new(|a| Some(Scalar::I(a[0].f().is_nan() as i64))));
    r.op(Not::NAME, "elementwise logical not of an i1 tensor")
        .operands(1)
        .results(1)
        .traits(ew)
        .infer(|ins, _| {
            let t = tensor_operand(&ins[0], 0)?;
            if t.elem != ElemType::I1 {
                return Err(format!("requires an i1 tensor, but the operand is {t}"));
            }
            Ok(vec![ins[0].clone()])
        })
        .fold(fold_const)
        .scalar(|_| Box::new(|a| Some(Scalar::I((a[0].i() == 0) as i64))));
}

/// `tg.constant`: its dense value, or the named weight.
fn constant(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    match e.attrs().get("value") {
        Some(Attr::Dense(d)) => Ok(vec![Tensor::from_dense(d)]),
        Some(Attr::Weight(name)) => {
            let ty = e.out_ty(0)?;
            let name = name.clone();
            Ok(vec![(*(e.weight)(&name, &ty)?).clone()])
        }
        _ => Err("bad value".into()),
    }
}

/// `tg.cast`: to a float8/float4 type as `saturate` and `round_mode` say; to any other type
/// as every elementwise op converts its results.
fn cast(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    use crate::minifloat::RoundMode;
    let ty = e.out_ty(0)?;
    let a = e.arg(0);
    if !ty.elem.is_minifloat() {
        return Ok(vec![Tensor::from_fn(ty, |i| a.get(i))]);
    }
    let saturate = e.flag("saturate", true);
    let mode = match e.attrs().get("round_mode").and_then(Attr::as_str) {
        Some("down") => RoundMode::Down,
        Some("nearest") => RoundMode::Nearest,
        _ => RoundMode::Up,
    };
    let el = ty.elem;
    Ok(vec![Tensor::from_fn(ty, |i| {
        a.get(i).convert_minifloat(el, saturate, mode)
    })])
}

fn verify_constant(body: &Body, op: OpId) -> Result<(), String> {
    let result = body.ty(body.ops[op].results[0]);
    match body.ops[op].attrs.get("value") {
        Some(Attr::Dense(d)) if Type::Tensor(d.ty.clone()) != *result => Err(format!(
            "value has type {}, but the result has type {result}",
            d.ty
        )),
        Some(Attr::Weight(_)) if result.as_tensor().is_none() => {
            Err(format!("a weight must be a tensor, not {result}"))
        }
        _ => Ok(()),
    }
}

fn verify_cast(body: &Body, op: OpId) -> Result<(), String> {
    let input = tensor_operand(body.ty(body.ops[op].operands[0]), 0)?;
    let result = body.ty(body.ops[op].results[0]);
    let out = result
        .as_tensor()
        .ok_or_else(|| format!("result must be a tensor, but is {result}"))?;
    if out.shape != input.shape {
        return Err(format!("changes the shape: {input} to {out}"));
    }
    Ok(())
}

fn infer_binary(ins: &[Type], _: &Attrs) -> Result<Vec<Type>, String> {
    let (a, b) = (tensor_operand(&ins[0], 0)?, tensor_operand(&ins[1], 1)?);
    if a.elem != b.elem {
        return Err(format!(
            "operands have different element types: {} and {}",
            a.elem, b.elem
        ));
    }
    let shape = broadcast_shapes(&a.shape, &b.shape).ok_or_else(|| {
        format!("operands have incompatible shapes for broadcasting: {a} and {b}")
    })?;
    Ok(vec![Type::tensor(shape, a.elem)])
}

fn infer_compare(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let t = infer_binary(ins, attrs)?;
    let shape = t[0].as_tensor().expect("tensor").shape.clone();
    Ok(vec![Type::tensor(shape, ElemType::I1)])
}

fn infer_logical(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let t = infer_binary(ins, attrs)?;
    if t[0].elem() != Some(ElemType::I1) {
        return Err("operands must be i1 tensors".into());
    }
    Ok(t)
}

fn infer_where(ins: &[Type], _: &Attrs) -> Result<Vec<Type>, String> {
    let c = tensor_operand(&ins[0], 0)?;
    let (a, b) = (tensor_operand(&ins[1], 1)?, tensor_operand(&ins[2], 2)?);
    if c.elem != ElemType::I1 {
        return Err(format!("the condition must be an i1 tensor, but is {c}"));
    }
    if a.elem != b.elem {
        return Err(format!(
            "the two choices have different element types: {} and {}",
            a.elem, b.elem
        ));
    }
    let shape = broadcast_shapes(&c.shape, &a.shape)
        .and_then(|s| broadcast_shapes(&s, &b.shape))
        .ok_or_else(|| format!("operands have incompatible shapes: {c}, {a} and {b}"))?;
    Ok(vec![Type::tensor(shape, a.elem)])
}

fn infer_same(ins: &[Type], _: &Attrs) -> Result<Vec<Type>, String> {
    tensor_operand(&ins[0], 0)?;
    Ok(vec![ins[0].clone()])
}

fn infer_float_unary(ins: &[Type], _: &Attrs) -> Result<Vec<Type>, String> {
    let t = tensor_operand(&ins[0], 0)?;
    if !t.elem.is_float() {
        return Err(format!("requires a float tensor, but the operand is {t}"));
    }
    Ok(vec![ins[0].clone()])
}

// ------------------------------------------------------------------------------- folding

/// The flat index into `in_shape` that broadcasts to flat index `i` of `out_shape`.
pub fn broadcast_source(mut i: usize, out_shape: &[i64], in_shape: &[i64]) -> usize {
    let offset = out_shape.len() - in_shape.len();
    let mut src = 0usize;
    let mut stride = 1usize;
    for d in (0..out_shape.len()).rev() {
        let coord = i % out_shape[d] as usize;
        i /= out_shape[d] as usize;
        if d >= offset {
            let dim = in_shape[d - offset] as usize;
            if dim != 1 {
                src += coord * stride;
            }
            stride *= dim;
        }
    }
    src
}

fn dense_scalar(d: &DenseAttr, i: usize) -> Scalar {
    let i = if d.splat { 0 } else { i };
    match &d.values {
        DenseValues::Int(v) => Scalar::I(v[i]),
        DenseValues::Float(v) => Scalar::F(v[i].0),
    }
}

/// Evaluates an elementwise function over constant operands into a constant of type `out`.
pub fn eval_dense(
    out: &TensorType,
    inputs: &[&DenseAttr],
    f: &dyn Fn(&[Scalar]) -> Option<Scalar>,
) -> Option<Attr> {
    let splat = inputs.iter().all(|d| d.splat);
    let n = if splat { 1 } else { out.num_elements() };
    if n > MAX_FOLD_ELEMENTS {
        return None;
    }
    let mut args = vec![Scalar::I(0); inputs.len()];
    let mut floats = Vec::new();
    let mut ints = Vec::new();
    for i in 0..n as usize {
        for (a, d) in args.iter_mut().zip(inputs) {
            let src = if d.splat {
                0
            } else {
                broadcast_source(i, &out.shape, &d.ty.shape)
            };
            *a = dense_scalar(d, src);
        }
        match f(&args)?.convert(out.elem) {
            Scalar::F(v) => floats.push(F64(v)),
            Scalar::I(v) => ints.push(v),
        }
    }
    let values = if out.elem.is_float() {
        DenseValues::Float(floats)
    } else {
        DenseValues::Int(ints)
    };
    Some(Attr::Dense(DenseAttr {
        ty: out.clone(),
        splat,
        values,
    }))
}

fn dense<'a>(inp: &FoldInput<'a>, i: usize) -> Option<&'a DenseAttr> {
    inp.constants
        .get(i)
        .copied()
        .flatten()
        .and_then(Attr::as_dense)
}

/// Constant folding through the op's [`semantics`], when every operand is a dense constant.
fn fold_const(inp: &FoldInput) -> Option<Vec<Folded>> {
    let data = &inp.body.ops[inp.op];
    let inputs: Option<Vec<&DenseAttr>> = (0..data.operands.len()).map(|i| dense(inp, i)).collect();
    let inputs = inputs?;
    let f = semantics(&data.name, &data.attrs)?;
    let out = inp.result_type(0).as_tensor()?;
    Some(vec![Folded::Constant(eval_dense(out, &inputs, &*f)?)])
}

/// `x op c -> x` when every element of the constant operand `c` (at `const_idx`) equals
/// `identity` and the result has x's type (broadcasting does not change it).
fn identity(inp: &FoldInput, const_idx: usize, identity: f64) -> Option<Vec<Folded>> {
    let c = dense(inp, const_idx)?;
    if !c.is_all(identity) {
        return None;
    }
    let x = inp.operand(1 - const_idx);
    (inp.body.ty(x) == inp.result_type(0)).then(|| vec![Folded::Value(x)])
}

fn fold_add(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_const(inp)
        .or_else(|| identity(inp, 1, 0.0))
        .or_else(|| identity(inp, 0, 0.0))
}

fn fold_sub(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_const(inp).or_else(|| identity(inp, 1, 0.0))
}

fn fold_mul(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_const(inp)
        .or_else(|| identity(inp, 1, 1.0))
        .or_else(|| identity(inp, 0, 1.0))
}

fn fold_div(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_const(inp).or_else(|| identity(inp, 1, 1.0))
}

fn fold_pow(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_const(inp).or_else(|| identity(inp, 1, 1.0))
}

fn fold_neg(inp: &FoldInput) -> Option<Vec<Folded>> {
    // neg(neg(x)) -> x is exact.
    if let Some(d) = inp.body.def_op(inp.operand(0)) {
        if inp.body.ops[d].name == Neg::NAME {
            return Some(vec![Folded::Value(inp.body.ops[d].operands[0])]);
        }
    }
    fold_const(inp)
}

/// where(c, a, b) with a constant condition that is all true (false) is a (b), when that
/// operand already has the result's type.
fn fold_where(inp: &FoldInput) -> Option<Vec<Folded>> {
    if let Some(c) = dense(inp, 0) {
        for (value, pick) in [(1.0, 1), (0.0, 2)] {
            if c.is_all(value) && inp.body.ty(inp.operand(pick)) == inp.result_type(0) {
                return Some(vec![Folded::Value(inp.operand(pick))]);
            }
        }
    }
    fold_const(inp)
}

fn fold_cast(inp: &FoldInput) -> Option<Vec<Folded>> {
    // A cast to the same type is the identity.
    let x = inp.operand(0);
    if inp.body.ty(x) == inp.result_type(0) {
        return Some(vec![Folded::Value(x)]);
    }
    fold_const(inp)
}

/// A constant's value for an element type, used by tests and passes.
pub fn splat(ty: TensorType, v: f64) -> Attr {
    Attr::Dense(DenseAttr::splat_f64(ty, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_source_maps_indices() {
        // out [2,3], in [3]: index (1,2) -> 2
        assert_eq!(broadcast_source(5, &[2, 3], &[3]), 2);
        // out [2,3], in [2,1]: index (1,2) -> 1
        assert_eq!(broadcast_source(5, &[2, 3], &[2, 1]), 1);
        assert_eq!(broadcast_source(4, &[2, 3], &[]), 0);
    }

    #[test]
    fn eval_broadcasts_rounds_and_wraps() {
        let a = DenseAttr {
            ty: TensorType::new([2, 1], ElemType::BF16),
            splat: false,
            values: DenseValues::Float(vec![F64(1.0), F64(2.0)]),
        };
        let b = DenseAttr {
            ty: TensorType::new([3], ElemType::BF16),
            splat: false,
            values: DenseValues::Float(vec![F64(0.1), F64(0.2), F64(0.3)]),
        };
        let out = TensorType::new([2, 3], ElemType::BF16);
        let add = semantics("tg.add", &Attrs::new()).unwrap();
        let Some(Attr::Dense(r)) = eval_dense(&out, &[&a, &b], &*add) else {
            panic!("did not fold")
        };
        assert_eq!(r.values.len(), 6);
        assert_eq!(r.get_f64(4), round_to(2.0 + 0.2, ElemType::BF16));
        let i = DenseAttr {
            ty: TensorType::new([1], ElemType::I8),
            splat: true,
            values: DenseValues::Int(vec![100]),
        };
        let out = TensorType::new([1], ElemType::I8);
        let Some(Attr::Dense(r)) = eval_dense(&out, &[&i, &i], &*add) else {
            panic!("did not fold")
        };
        assert_eq!(r.get_i64(0), -56);
    }

    #[test]
    fn conversions_follow_cast_rules() {
        assert_eq!(Scalar::F(-2.7).convert(ElemType::I32), Scalar::I(-2));
        assert_eq!(Scalar::F(0.5).convert(ElemType::I1), Scalar::I(1));
        assert_eq!(Scalar::I(300).convert(ElemType::U8), Scalar::I(44));
        assert_eq!(
            Scalar::F(0.1).convert(ElemType::BF16),
            Scalar::F(round_to(0.1, ElemType::BF16))
        );
        let gelu_exact = semantics("tg.gelu", &Attrs::new()).unwrap();
        let v = gelu_exact(&[Scalar::F(1.0)]).unwrap().f();
        assert!((v - 0.8413447460685429).abs() < 1e-12, "{v}");
    }
}
