//! Reductions along axes: `tg.reduce_sum|mean|max|min`, `tg.argmax` (and its two phases,
//! `tg.argmax_partial` and `tg.argmax_combine`) and `tg.softmax`.

use super::{bool_attr, check_axis, int_attr, ints_attr, tensor_operand};
use crate::attr::Attrs;
use crate::dialect::tg::elementwise::{broadcast_source, Scalar};
use crate::interpret::{flatten, split_at_axis, unflatten, Eval};
use crate::registry::{AttrKind, Registry, Traits};
use crate::tensor::{Data, Tensor};
use crate::tiling::{norm_axis, whole_axes_needs, NeedsInput, Region};
use crate::types::{ElemType, TensorType, Type};

crate::op_kinds! {
    /// Sum over `axes`.
    ReduceSum = "tg.reduce_sum",
    /// Mean over `axes`.
    ReduceMean = "tg.reduce_mean",
    /// Maximum over `axes`.
    ReduceMax = "tg.reduce_max",
    /// Minimum over `axes`.
    ReduceMin = "tg.reduce_min",
    /// Index of the maximum along `axis`.
    ArgMax = "tg.argmax",
    /// Per equal part of a vector: its largest element and that element's index.
    ArgMaxPartial = "tg.argmax_partial",
    /// The index of the largest of the parts' winners.
    ArgMaxCombine = "tg.argmax_combine",
    /// Softmax along `axis`.
    Softmax = "tg.softmax",
}

pub fn register(r: &mut Registry) {
    let reduction = Traits::PURE | Traits::REDUCTION;
    for (name, summary) in [
        (ReduceSum::NAME, "sum over `axes`"),
        (ReduceMean::NAME, "mean over `axes`"),
        (ReduceMax::NAME, "maximum over `axes`"),
        (ReduceMin::NAME, "minimum over `axes`"),
    ] {
        r.op(name, summary)
            .operands(1)
            .results(1)
            .attr("axes", AttrKind::Array)
            .optional_attr("keepdims", AttrKind::Bool)
            .traits(reduction)
            .infer(infer_reduce)
            .interpret(|e| {
                let a = e.arg(0);
                let axes = reduce_axes(e.attrs(), a.ty.rank())?;
                let name = e.body.ops[e.op].name.as_str();
                Ok(vec![reduce(name, a, &axes, e.out_ty(0)?)])
            });
    }
    r.op(
        ArgMax::NAME,
        "index of the maximum along `axis` (first, or last if select_last_index), as i64",
    )
    .operands(1)
    .results(1)
    .attr("axis", AttrKind::Int)
    .optional_attr("keepdims", AttrKind::Bool)
    .optional_attr("select_last_index", AttrKind::Bool)
    .traits(reduction)
    .infer(infer_argmax)
    .interpret(argmax)
    .tile(tile_argmax);
    r.op(
        ArgMaxPartial::NAME,
        "per part of a vector cut into `parts` equal runs: the element argmax picks within the part and its index in the vector, as [parts, 2] f32 (value, index)",
    )
    .operands(1)
    .results(1)
    .attr("parts", AttrKind::Int)
    .optional_attr("select_last_index", AttrKind::Bool)
    .traits(Traits::PURE)
    .infer(infer_argmax_partial)
    .interpret(argmax_partial)
    .tile(|n| {
        // Part p reads its run of the vector.
        let run = n.shapes[0][0] / n.out_shape[0].max(1);
        vec![Some(n.map(&|b| vec![vec![(b[0].0 * run, b[0].1 * run)]]))]
    });
    r.op(
        ArgMaxCombine::NAME,
        "the index (i64) of the largest value of argmax_partial's [parts, 2] winners: the first part's of equals (the last's if select_last_index)",
    )
    .operands(1)
    .results(1)
    .optional_attr("select_last_index", AttrKind::Bool)
    .traits(reduction)
    .infer(|ins, _| {
        let t = tensor_operand(&ins[0], 0)?;
        if t.rank() != 2 || t.shape[1] != 2 || t.elem != ElemType::F32 {
            return Err(format!(
                "argmax_combine takes the [parts, 2] f32 winners of argmax_partial, not {}",
                ins[0]
            ));
        }
        Ok(vec![Type::tensor(vec![], ElemType::I64)])
    })
    .interpret(argmax_combine)
    .tile(|n| n.all_full());
    r.op(Softmax::NAME, "softmax along `axis`, computed in f32")
        .operands(1)
        .results(1)
        .attr("axis", AttrKind::Int)
        .traits(reduction)
        .infer(infer_float_same)
        .interpret(softmax)
        .tile(|n| {
            let axis = norm_axis(n.int_attr("axis").unwrap_or(-1), n.out_shape.len());
            whole_axes_needs(n, axis..axis + 1)
        });
}

fn infer_float_same(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let t = tensor_operand(&ins[0], 0)?;
    if !t.elem.is_float() {
        return Err(format!("requires a float tensor, but the operand is {t}"));
    }
    check_axis(int_attr(attrs, "axis")?, t.rank(), "axis")?;
    Ok(vec![ins[0].clone()])
}

/// Sorted, unique, in-range reduction axes.
pub fn reduce_axes(attrs: &Attrs, rank: usize) -> Result<Vec<usize>, String> {
    let mut axes = Vec::new();
    for a in ints_attr(attrs, "axes")? {
        axes.push(check_axis(a, rank, "axis")?);
    }
    let n = axes.len();
    axes.sort();
    axes.dedup();
    if axes.len() != n {
        return Err("axes repeat".into());
    }
    Ok(axes)
}

fn reduced_shape(shape: &[i64], axes: &[usize], keepdims: bool) -> Vec<i64> {
    let mut out = Vec::new();
    for (d, &n) in shape.iter().enumerate() {
        if axes.contains(&d) {
            if keepdims {
                out.push(1);
            }
        } else {
            out.push(n);
        }
    }
    out
}

fn infer_reduce(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let t = tensor_operand(&ins[0], 0)?;
    let axes = reduce_axes(attrs, t.rank())?;
    let shape = reduced_shape(&t.shape, &axes, bool_attr(attrs, "keepdims", true));
    Ok(vec![Type::tensor(shape, t.elem)])
}

fn infer_argmax(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let t = tensor_operand(&ins[0], 0)?;
    let axis = check_axis(int_attr(attrs, "axis")?, t.rank(), "axis")?;
    let shape = reduced_shape(&t.shape, &[axis], bool_attr(attrs, "keepdims", true));
    Ok(vec![Type::tensor(shape, ElemType::I64)])
}

fn reduce(name: &str, a: &Tensor, axes: &[usize], ty: TensorType) -> Tensor {
    let shape = &a.ty.shape;
    let kept: Vec<i64> = shape
        .iter()
        .enumerate()
        .map(|(d, &n)| if axes.contains(&d) { 1 } else { n })
        .collect();
    let groups = kept.iter().product::<i64>() as usize;
    let count = (a.len() / groups.max(1)).max(1);
    let float = a.ty.elem.is_float();
    let mut acc: Vec<Option<Scalar>> = vec![None; groups];
    for i in 0..a.len() {
        let g = broadcast_source(flatten(&unflatten(i, shape), shape), shape, &kept);
        let v = a.get(i);
        acc[g] = Some(match (acc[g], name) {
            (None, _) => v,
            (Some(s), ReduceMax::NAME) => pick(s, v, true, float),
            (Some(s), ReduceMin::NAME) => pick(s, v, false, float),
            (Some(Scalar::I(x)), _) if !float => Scalar::I(x.wrapping_add(v.i())),
            (Some(s), _) => Scalar::F(s.f() + v.f()),
        });
    }
    // The identity of an empty reduction: the lowest (max) or highest (min) value of the type.
    let e = a.ty.elem;
    let (lowest, highest) = match e {
        _ if float => (Scalar::F(f64::NEG_INFINITY), Scalar::F(f64::INFINITY)),
        ElemType::I1 => (Scalar::I(0), Scalar::I(1)),
        _ if e.is_unsigned() => (
            Scalar::I(0),
            Scalar::I(if e.bits() == 64 {
                -1
            } else {
                (1i64 << e.bits()) - 1
            }),
        ),
        _ => (
            Scalar::I(i64::MIN >> (64 - e.bits())),
            Scalar::I(i64::MAX >> (64 - e.bits())),
        ),
    };
    Tensor::from_fn(ty, |g| {
        let s = acc[g].unwrap_or(match name {
            ReduceMax::NAME => lowest,
            ReduceMin::NAME => highest,
            _ => Scalar::I(0),
        });
        if name == ReduceMean::NAME {
            if float {
                Scalar::F(s.f() / count as f64)
            } else {
                Scalar::I(s.i() / count as i64)
            }
        } else {
            s
        }
    })
}

fn pick(a: Scalar, b: Scalar, max: bool, float: bool) -> Scalar {
    if float {
        let (x, y) = (a.f(), b.f());
        if x.is_nan() || y.is_nan() {
            return Scalar::F(f64::NAN);
        }
        Scalar::F(if max { x.max(y) } else { x.min(y) })
    } else {
        let (x, y) = (a.i(), b.i());
        Scalar::I(if max { x.max(y) } else { x.min(y) })
    }
}

fn infer_argmax_partial(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let t = tensor_operand(&ins[0], 0)?;
    let parts = int_attr(attrs, "parts")?;
    let n = t.shape.first().copied().unwrap_or(0);
    if t.rank() != 1 || !t.elem.is_float() {
        return Err(format!(
            "argmax_partial takes a float vector, not {}",
            ins[0]
        ));
    }
    if parts < 1 || n < parts || n % parts != 0 {
        return Err(format!(
            "argmax_partial cuts its {n} elements into equal, non-empty parts: {parts} parts do not"
        ));
    }
    // Indices travel as f32: exact below 2^24.
    if n > 1 << 24 {
        return Err(format!(
            "argmax_partial takes at most 2^24 elements (its indices are f32), not {n}"
        ));
    }
    Ok(vec![Type::tensor(vec![parts, 2], ElemType::F32)])
}

/// The `k` in `0..n` argmax picks by the values `value(k)`: the running best from 0, taken
/// over by a larger value (or an equal one, with `last`). `tg.argmax`, each part of
/// `tg.argmax_partial` and `tg.argmax_combine` all pick by this rule.
fn argmax_index(n: usize, last: bool, value: impl Fn(usize) -> f64) -> usize {
    let mut best = 0;
    for k in 1..n {
        let (v, b) = (value(k), value(best));
        if v > b || (last && v == b) {
            best = k;
        }
    }
    best
}

fn argmax_partial(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let a = e.arg(0);
    let parts = e.int("parts")? as usize;
    let last = e.flag("select_last_index", false);
    let run = a.len() / parts.max(1);
    let mut out = Vec::with_capacity(2 * parts);
    for p in 0..parts {
        let i = p * run + argmax_index(run, last, |k| a.f(p * run + k));
        out.extend([Scalar::F(a.f(i)), Scalar::F(i as f64)]);
    }
    Ok(vec![Tensor::from_fn(e.out_ty(0)?, |i| out[i])])
}

fn argmax_combine(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let w = e.arg(0);
    let last = e.flag("select_last_index", false);
    let best = argmax_index(w.len() / 2, last, |p| w.f(2 * p));
    let i = w.f(2 * best + 1) as i64;
    Ok(vec![Tensor::from_fn(e.out_ty(0)?, |_| Scalar::I(i))])
}

fn argmax(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let a = e.arg(0);
    let axis = e.int("axis")? as usize;
    let last = e.flag("select_last_index", false);
    let ty = e.out_ty(0)?;
    let (outer, n, inner) = split_at_axis(&a.ty.shape, axis);
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for j in 0..inner {
            let best = argmax_index(n, last, |k| a.f((o * n + k) * inner + j));
            out.push(best as i64);
        }
    }
    Ok(vec![Tensor {
        ty,
        data: Data::I64(out),
    }])
}

fn softmax(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let a = e.arg(0);
    let axis = e.int("axis")? as usize;
    let (outer, n, inner) = split_at_axis(&a.ty.shape, axis);
    let mut v = a.to_f64();
    for o in 0..outer {
        for j in 0..inner {
            let at = |k: usize| (o * n + k) * inner + j;
            let m = (0..n).map(|k| v[at(k)]).fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = (0..n).map(|k| (v[at(k)] - m).exp()).sum();
            for k in 0..n {
                v[at(k)] = (v[at(k)] - m).exp() / s;
            }
        }
    }
    Ok(vec![Tensor::from_fn(e.out_ty(0)?, |i| Scalar::F(v[i]))])
}

/// A result element needs its operand's whole `axis`.
fn tile_argmax(n: &NeedsInput) -> Vec<Option<Region>> {
    let rank = n.shapes[0].len();
    let axis = norm_axis(n.int_attr("axis").unwrap_or(0), rank);
    let keep = n.flag("keepdims");
    let extent = n.shapes[0][axis];
    vec![Some(n.map(&|b| {
        let mut x = b.clone();
        if keep {
            x[axis] = (0, extent);
        } else {
            x.insert(axis, (0, extent));
        }
        vec![x]
    }))]
}
