//! `tg`: the tensor-graph dialect, the `tensor` level of mkc. (It is spelled `tg` because
//! MLIR's own `tensor` dialect owns that namespace in `mlir-opt`, which rejects unknown ops
//! of a registered dialect.)
//!
//! This file holds the elementwise core: `tg.constant` and the arithmetic ops with numpy
//! broadcasting, each with shape inference and folding (constant folding and the algebraic
//! identities that are exact in floating point).

use crate::attr::{round_to, wrap_int, Attr, Attrs, DenseAttr, DenseValues, F64};
use crate::ir::{Body, OpId};
use crate::registry::{AttrKind, FoldInput, Folded, Registry, Traits};
use crate::types::{broadcast_shapes, TensorType, Type};

/// Folding gives up above this many elements (a splat result is always folded).
const MAX_FOLD_ELEMENTS: u64 = 1 << 16;

pub fn register(r: &mut Registry) {
    r.op(
        "tg.constant",
        "a tensor given by a dense literal or a named weight",
    )
    .results(1)
    .attr("value", AttrKind::DenseOrWeight)
    .traits(Traits::PURE | Traits::CONSTANT_LIKE)
    .verify(verify_constant);

    let binary = Traits::PURE | Traits::ELEMENTWISE;
    let comm = binary | Traits::COMMUTATIVE;
    let bin = [
        (
            "tg.add",
            "elementwise sum, numpy broadcasting",
            comm,
            fold_add as _,
        ),
        (
            "tg.sub",
            "elementwise difference, numpy broadcasting",
            binary,
            fold_sub as _,
        ),
        (
            "tg.mul",
            "elementwise product, numpy broadcasting",
            comm,
            fold_mul as _,
        ),
        (
            "tg.div",
            "elementwise quotient, numpy broadcasting",
            binary,
            fold_div as _,
        ),
        (
            "tg.max",
            "elementwise maximum, numpy broadcasting",
            comm,
            fold_max as _,
        ),
        (
            "tg.min",
            "elementwise minimum, numpy broadcasting",
            comm,
            fold_min as _,
        ),
        (
            "tg.pow",
            "elementwise power (float), numpy broadcasting",
            binary,
            fold_pow as _,
        ),
    ];
    for (name, summary, traits, fold) in bin {
        r.op(name, summary)
            .operands(2)
            .results(1)
            .traits(traits)
            .infer(infer_binary)
            .fold(fold);
    }
    r.op("tg.neg", "elementwise negation")
        .operands(1)
        .results(1)
        .traits(binary)
        .infer(infer_same)
        .fold(fold_neg);
    r.op("tg.abs", "elementwise absolute value")
        .operands(1)
        .results(1)
        .traits(binary)
        .infer(infer_same)
        .fold(fold_abs);
    let float_unary = [
        ("tg.exp", "elementwise e^x", fold_exp as _),
        ("tg.log", "elementwise natural logarithm", fold_log as _),
        ("tg.sqrt", "elementwise square root", fold_sqrt as _),
        ("tg.rsqrt", "elementwise 1/sqrt(x)", fold_rsqrt as _),
        ("tg.reciprocal", "elementwise 1/x", fold_reciprocal as _),
        ("tg.tanh", "elementwise hyperbolic tangent", fold_tanh as _),
        ("tg.sigmoid", "elementwise 1/(1+e^-x)", fold_sigmoid as _),
    ];
    for (name, summary, fold) in float_unary {
        r.op(name, summary)
            .operands(1)
            .results(1)
            .traits(binary)
            .infer(infer_float_unary)
            .fold(fold);
    }
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

fn tensor_operand(t: &Type, i: usize) -> Result<&TensorType, String> {
    t.as_tensor()
        .ok_or_else(|| format!("operand #{i} must be a tensor, but is {t}"))
}

fn infer_binary(ins: &[Type], _: &Attrs) -> Result<Vec<Type>, String> {
    let a = tensor_operand(&ins[0], 0)?;
    let b = tensor_operand(&ins[1], 1)?;
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
fn broadcast_source(mut i: usize, out_shape: &[i64], in_shape: &[i64]) -> usize {
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

/// Integer semantics of an elementwise op; `None` where it is undefined (division by zero).
type IntFn<'a> = &'a dyn Fn(&[i64]) -> Option<i64>;

/// Evaluates an elementwise op over constant operands into a constant of `out` type.
fn eval_elementwise(
    out: &TensorType,
    inputs: &[&DenseAttr],
    f_float: &dyn Fn(&[f64]) -> f64,
    f_int: Option<IntFn>,
) -> Option<Attr> {
    let splat = inputs.iter().all(|d| d.splat);
    let n = if splat { 1 } else { out.num_elements() };
    if n > MAX_FOLD_ELEMENTS {
        return None;
    }
    let idx = |d: &DenseAttr, i: usize| {
        if d.splat {
            0
        } else {
            broadcast_source(i, &out.shape, &d.ty.shape)
        }
    };
    let values = if out.elem.is_float() {
        let mut v = Vec::with_capacity(n as usize);
        let mut args = vec![0.0; inputs.len()];
        for i in 0..n as usize {
            for (a, d) in args.iter_mut().zip(inputs) {
                *a = d.get_f64(idx(d, i));
            }
            v.push(F64(round_to(f_float(&args), out.elem)));
        }
        DenseValues::Float(v)
    } else {
        let f_int = f_int?;
        let mut v = Vec::with_capacity(n as usize);
        let mut args = vec![0i64; inputs.len()];
        for i in 0..n as usize {
            for (a, d) in args.iter_mut().zip(inputs) {
                *a = d.get_i64(idx(d, i));
            }
            v.push(wrap_int(f_int(&args)?, out.elem));
        }
        DenseValues::Int(v)
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

fn fold_binary(
    inp: &FoldInput,
    f_float: &dyn Fn(f64, f64) -> f64,
    f_int: Option<&dyn Fn(i64, i64) -> Option<i64>>,
) -> Option<Vec<Folded>> {
    let (a, b) = (dense(inp, 0)?, dense(inp, 1)?);
    let out = inp.result_type(0).as_tensor()?;
    let ff = |x: &[f64]| f_float(x[0], x[1]);
    let fi = f_int.map(|f| move |x: &[i64]| f(x[0], x[1]));
    let c = eval_elementwise(out, &[a, b], &ff, fi.as_ref().map(|f| f as IntFn))?;
    Some(vec![Folded::Constant(c)])
}

fn fold_unary(
    inp: &FoldInput,
    f_float: &dyn Fn(f64) -> f64,
    f_int: Option<&dyn Fn(i64) -> Option<i64>>,
) -> Option<Vec<Folded>> {
    let a = dense(inp, 0)?;
    let out = inp.result_type(0).as_tensor()?;
    let ff = |x: &[f64]| f_float(x[0]);
    let fi = f_int.map(|f| move |x: &[i64]| f(x[0]));
    let c = eval_elementwise(out, &[a], &ff, fi.as_ref().map(|f| f as IntFn))?;
    Some(vec![Folded::Constant(c)])
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
    fold_binary(
        inp,
        &|a, b| a + b,
        Some(&|a: i64, b: i64| Some(a.wrapping_add(b))),
    )
    .or_else(|| identity(inp, 1, 0.0))
    .or_else(|| identity(inp, 0, 0.0))
}

fn fold_sub(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_binary(
        inp,
        &|a, b| a - b,
        Some(&|a: i64, b: i64| Some(a.wrapping_sub(b))),
    )
    .or_else(|| identity(inp, 1, 0.0))
}

fn fold_mul(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_binary(
        inp,
        &|a, b| a * b,
        Some(&|a: i64, b: i64| Some(a.wrapping_mul(b))),
    )
    .or_else(|| identity(inp, 1, 1.0))
    .or_else(|| identity(inp, 0, 1.0))
}

fn fold_div(inp: &FoldInput) -> Option<Vec<Folded>> {
    // Integer division truncates toward zero (as ONNX and C do); by zero it does not fold.
    fold_binary(inp, &|a, b| a / b, Some(&|a: i64, b: i64| a.checked_div(b)))
        .or_else(|| identity(inp, 1, 1.0))
}

fn fold_max(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_binary(
        inp,
        &|a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        },
        Some(&|a: i64, b: i64| Some(a.max(b))),
    )
}

fn fold_min(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_binary(
        inp,
        &|a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        },
        Some(&|a: i64, b: i64| Some(a.min(b))),
    )
}

fn fold_pow(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_binary(inp, &f64::powf, None).or_else(|| identity(inp, 1, 1.0))
}

fn fold_neg(inp: &FoldInput) -> Option<Vec<Folded>> {
    // neg(neg(x)) -> x is exact.
    if let Some(d) = inp.body.def_op(inp.operand(0)) {
        if inp.body.ops[d].name == "tg.neg" {
            return Some(vec![Folded::Value(inp.body.ops[d].operands[0])]);
        }
    }
    fold_unary(inp, &|a| -a, Some(&|a: i64| Some(a.wrapping_neg())))
}

fn fold_abs(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_unary(inp, &f64::abs, Some(&|a: i64| Some(a.wrapping_abs())))
}

fn fold_exp(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_unary(inp, &f64::exp, None)
}
fn fold_log(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_unary(inp, &f64::ln, None)
}
fn fold_sqrt(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_unary(inp, &f64::sqrt, None)
}
fn fold_rsqrt(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_unary(inp, &|a| 1.0 / a.sqrt(), None)
}
fn fold_reciprocal(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_unary(inp, &|a| 1.0 / a, None)
}
fn fold_tanh(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_unary(inp, &f64::tanh, None)
}
fn fold_sigmoid(inp: &FoldInput) -> Option<Vec<Folded>> {
    fold_unary(inp, &|a| 1.0 / (1.0 + (-a).exp()), None)
}

/// A constant's value for an element type, used by tests and passes.
pub fn splat(ty: TensorType, v: f64) -> Attr {
    Attr::Dense(DenseAttr::splat_f64(ty, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ElemType;

    #[test]
    fn broadcast_source_maps_indices() {
        // out [2,3], in [3]: index (1,2) -> 2
        assert_eq!(broadcast_source(5, &[2, 3], &[3]), 2);
        // out [2,3], in [2,1]: index (1,2) -> 1
        assert_eq!(broadcast_source(5, &[2, 3], &[2, 1]), 1);
        assert_eq!(broadcast_source(4, &[2, 3], &[]), 0);
    }

    #[test]
    fn elementwise_eval_broadcasts_and_rounds() {
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
        let Some(Attr::Dense(r)) = eval_elementwise(&out, &[&a, &b], &|x| x[0] + x[1], None) else {
            panic!("did not fold")
        };
        assert_eq!(r.values.len(), 6);
        assert_eq!(r.get_f64(4), round_to(2.0 + 0.2, ElemType::BF16));
        // Integers wrap to their width.
        let i = DenseAttr {
            ty: TensorType::new([1], ElemType::I8),
            splat: true,
            values: DenseValues::Int(vec![100]),
        };
        let out = TensorType::new([1], ElemType::I8);
        let Some(Attr::Dense(r)) =
            eval_elementwise(&out, &[&i, &i], &|_| 0.0, Some(&|x| Some(x[0] + x[1])))
        else {
            panic!("did not fold")
        };
        assert_eq!(r.get_i64(0), -56);
    }
}
