//! Shape and data-movement ops of `tg`: reshape, transpose, concat, split, slice, expand,
//! gather, iota.

use super::{check_axis, int_attr, ints_attr, tensor_operand};
use crate::attr::{Attr, Attrs};
use crate::dialect::tg::elementwise::{broadcast_source, Scalar};
use crate::interpret::{flatten, strides, unflatten, Eval};
use crate::ir::{Body, OpId};
use crate::registry::{Arity, AttrKind, Registry, Traits};
use crate::tensor::Tensor;
use crate::tiling::{flat_runs, flat_to_boxes, full_box, NeedsInput, Region};
use crate::types::{broadcast_shapes, Type};

crate::op_kinds! {
    /// The same elements under another shape.
    Reshape = "tg.reshape",
    /// Permuted dimensions.
    Transpose = "tg.transpose",
    /// Tensors joined along an axis.
    Concat = "tg.concat",
    /// A tensor cut along an axis.
    Split = "tg.split",
    /// A strided window.
    Slice = "tg.slice",
    /// A broadcast.
    Expand = "tg.expand",
    /// Slices picked by indices (the embedding lookup).
    Gather = "tg.gather",
    /// Elements picked by indices.
    GatherElements = "tg.gather_elements",
    /// start, start + step, ...
    Iota = "tg.iota",
}

pub fn register(r: &mut Registry) {
    let pure = Traits::PURE;
    r.op(
        Reshape::NAME,
        "the same elements (row-major) with the result's shape",
    )
    .operands(1)
    .results(1)
    .traits(pure)
    .verify(verify_reshape)
    .interpret(|e| Ok(vec![e.arg(0).reshaped(e.out_ty(0)?.shape)]))
    .tile(tile_reshape);
    r.op(
        Transpose::NAME,
        "permutes dimensions: result dim i is operand dim perm[i]",
    )
    .operands(1)
    .results(1)
    .attr("perm", AttrKind::Array)
    .traits(pure)
    .infer(infer_transpose)
    .interpret(transpose)
    .tile(tile_transpose);
    r.op(Concat::NAME, "joins tensors along `axis`")
        .operands(Arity::at_least(1))
        .results(1)
        .attr("axis", AttrKind::Int)
        .traits(pure)
        .infer(infer_concat)
        .interpret(concat);
    r.op(
        Split::NAME,
        "cuts a tensor along `axis` into pieces of `sizes`",
    )
    .operands(1)
    .results(Arity::at_least(1))
    .attr("axis", AttrKind::Int)
    .attr("sizes", AttrKind::Array)
    .traits(pure)
    .infer(infer_split)
    .interpret(split);
    r.op(
        Slice::NAME,
        "result[i...] = x[offsets + i*strides ...] per dimension (strides may be negative)",
    )
    .operands(1)
    .results(1)
    .attr("offsets", AttrKind::Array)
    .attr("sizes", AttrKind::Array)
    .attr("strides", AttrKind::Array)
    .traits(pure)
    .infer(infer_slice)
    .interpret(slice);
    r.op(
        Expand::NAME,
        "broadcasts the operand to the result's shape (numpy rules)",
    )
    .operands(1)
    .results(1)
    .traits(pure)
    .verify(verify_expand)
    .interpret(|e| {
        let ty = e.out_ty(0)?;
        let a = e.arg(0);
        Ok(vec![Tensor::from_fn(ty.clone(), |i| {
            a.get(broadcast_source(i, &ty.shape, &a.ty.shape))
        })])
    });
    r.op(
        Gather::NAME,
        "picks slices of `data` along `axis` by integer indices (negative counts from the end)",
    )
    .operands(2)
    .results(1)
    .attr("axis", AttrKind::Int)
    .traits(pure | Traits::HEAVY)
    .infer(infer_gather)
    .interpret(gather);
    r.op(
        GatherElements::NAME,
        "result[i] = data[i with coordinate `axis` replaced by indices[i]]; shape of indices",
    )
    .operands(2)
    .results(1)
    .attr("axis", AttrKind::Int)
    .traits(pure)
    .infer(infer_gather_elements)
    .interpret(gather_elements);
    r.op(
        Iota::NAME,
        "a rank-1 tensor: start, start + step, start + 2*step, ...",
    )
    .results(1)
    .attr("start", AttrKind::Any)
    .attr("step", AttrKind::Any)
    .traits(pure)
    .verify(verify_iota)
    .interpret(iota);
}

fn verify_reshape(body: &Body, op: OpId) -> Result<(), String> {
    let a = tensor_operand(body.ty(body.ops[op].operands[0]), 0)?;
    let r = body.ty(body.ops[op].results[0]);
    let r = r
        .as_tensor()
        .ok_or_else(|| format!("result must be a tensor, but is {r}"))?;
    if a.elem != r.elem || a.num_elements() != r.num_elements() {
        return Err(format!("cannot reshape {a} into {r}"));
    }
    Ok(())
}

fn infer_transpose(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let a = tensor_operand(&ins[0], 0)?;
    let perm = ints_attr(attrs, "perm")?;
    let mut seen = vec![false; a.rank()];
    if perm.len() != a.rank() {
        return Err(format!(
            "perm has {} entries for rank {}",
            perm.len(),
            a.rank()
        ));
    }
    for &p in &perm {
        let p = check_axis(p, a.rank(), "perm entry")?;
        if std::mem::replace(&mut seen[p], true) {
            return Err(format!("perm {perm:?} is not a permutation"));
        }
    }
    let shape = perm
        .iter()
        .map(|&p| a.shape[p as usize])
        .collect::<Vec<_>>();
    Ok(vec![Type::tensor(shape, a.elem)])
}

fn infer_concat(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let first = tensor_operand(&ins[0], 0)?;
    let axis = check_axis(int_attr(attrs, "axis")?, first.rank(), "axis")?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for (i, t) in ins.iter().enumerate() {
        let t = tensor_operand(t, i)?;
        let same = t.elem == first.elem
            && t.rank() == first.rank()
            && (0..t.rank()).all(|d| d == axis || t.shape[d] == first.shape[d]);
        if !same {
            return Err(format!(
                "operand #{i} ({t}) does not match {first} outside axis {axis}"
            ));
        }
        shape[axis] += t.shape[axis];
    }
    Ok(vec![Type::tensor(shape, first.elem)])
}

fn infer_split(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let a = tensor_operand(&ins[0], 0)?;
    let axis = check_axis(int_attr(attrs, "axis")?, a.rank(), "axis")?;
    let sizes = ints_attr(attrs, "sizes")?;
    if sizes.iter().any(|&s| s < 0) || sizes.iter().sum::<i64>() != a.shape[axis] {
        return Err(format!(
            "sizes {sizes:?} do not add up to dimension {axis} of {a}"
        ));
    }
    Ok(sizes
        .iter()
        .map(|&s| {
            let mut shape = a.shape.clone();
            shape[axis] = s;
            Type::tensor(shape, a.elem)
        })
        .collect())
}

fn infer_slice(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let a = tensor_operand(&ins[0], 0)?;
    let (offsets, sizes, strides) = (
        ints_attr(attrs, "offsets")?,
        ints_attr(attrs, "sizes")?,
        ints_attr(attrs, "strides")?,
    );
    if offsets.len() != a.rank() || sizes.len() != a.rank() || strides.len() != a.rank() {
        return Err(format!(
            "offsets, sizes and strides need {} entries each",
            a.rank()
        ));
    }
    for d in 0..a.rank() {
        let (o, n, s, dim) = (offsets[d], sizes[d], strides[d], a.shape[d]);
        if s == 0 || n < 0 {
            return Err(format!(
                "dimension {d}: stride must be non-zero and size non-negative"
            ));
        }
        let Some(last) = (n - 1).max(0).checked_mul(s).and_then(|x| x.checked_add(o)) else {
            return Err(format!(
                "dimension {d}: offset {o}, size {n} and stride {s} overflow 64 bits"
            ));
        };
        if n > 0 && (o < 0 || o >= dim || last < 0 || last >= dim) {
            return Err(format!(
                "dimension {d}: elements {o}..={last} (stride {s}) are outside 0..{dim}"
            ));
        }
    }
    Ok(vec![Type::tensor(sizes, a.elem)])
}

fn verify_expand(body: &Body, op: OpId) -> Result<(), String> {
    let a = tensor_operand(body.ty(body.ops[op].operands[0]), 0)?;
    let r = body.ty(body.ops[op].results[0]);
    let r = r
        .as_tensor()
        .ok_or_else(|| format!("result must be a tensor, but is {r}"))?;
    if a.elem != r.elem || broadcast_shapes(&a.shape, &r.shape).as_deref() != Some(&r.shape[..]) {
        return Err(format!("cannot broadcast {a} to {r}"));
    }
    Ok(())
}

fn infer_gather(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let data = tensor_operand(&ins[0], 0)?;
    let idx = tensor_operand(&ins[1], 1)?;
    let axis = check_axis(int_attr(attrs, "axis")?, data.rank(), "axis")?;
    if idx.elem.is_float() || idx.elem == crate::types::ElemType::I1 {
        return Err(format!("indices must be integers, but are {idx}"));
    }
    let mut shape = data.shape[..axis].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&data.shape[axis + 1..]);
    // Rows of a block-quantized table come out dequantized.
    let elem = match data.elem {
        crate::types::ElemType::Block(_) if axis + 1 == data.rank() => {
            return Err(format!(
                "gathering single values of the block-quantized {data}: gather whole rows"
            ))
        }
        crate::types::ElemType::Block(_) => crate::types::ElemType::F32,
        e => e,
    };
    Ok(vec![Type::tensor(shape, elem)])
}

fn infer_gather_elements(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let data = tensor_operand(&ins[0], 0)?;
    let idx = tensor_operand(&ins[1], 1)?;
    let axis = check_axis(int_attr(attrs, "axis")?, data.rank(), "axis")?;
    if idx.elem.is_float() || idx.rank() != data.rank() {
        return Err(format!(
            "indices must be integers of the data's rank, but are {idx}"
        ));
    }
    if (0..data.rank()).any(|d| d != axis && idx.shape[d] > data.shape[d]) {
        return Err(format!(
            "indices {idx} exceed the data {data} outside axis {axis}"
        ));
    }
    Ok(vec![Type::tensor(idx.shape.clone(), data.elem)])
}

fn verify_iota(body: &Body, op: OpId) -> Result<(), String> {
    let r = body.ty(body.ops[op].results[0]);
    match r.as_tensor() {
        Some(t) if t.rank() == 1 => Ok(()),
        _ => Err(format!("result must be a rank-1 tensor, but is {r}")),
    }
}

fn transpose(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let ty = e.out_ty(0)?;
    let perm = e.ints("perm")?;
    let a = e.arg(0);
    let in_strides = strides(&a.ty.shape);
    Ok(vec![Tensor::from_fn(ty.clone(), |i| {
        let idx = unflatten(i, &ty.shape);
        let src: usize = idx
            .iter()
            .zip(&perm)
            .map(|(&c, &p)| c * in_strides[p as usize])
            .sum();
        a.get(src)
    })])
}

fn concat(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let ty = e.out_ty(0)?;
    let axis = e.int("axis")? as usize;
    let args = e.args;
    let mut starts = vec![0i64];
    for a in args {
        starts.push(starts.last().unwrap() + a.ty.shape[axis]);
    }
    Ok(vec![Tensor::from_fn(ty.clone(), |i| {
        let mut idx = unflatten(i, &ty.shape);
        let c = idx[axis] as i64;
        let k = starts.partition_point(|&s| s <= c) - 1;
        idx[axis] = (c - starts[k]) as usize;
        args[k].get(flatten(&idx, &args[k].ty.shape))
    })])
}

fn split(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let axis = e.int("axis")? as usize;
    let a = e.arg(0);
    let mut offset = 0usize;
    let mut outs = Vec::new();
    for r in 0..e.body.ops[e.op].results.len() {
        let ty = e.out_ty(r)?;
        let off = offset;
        outs.push(Tensor::from_fn(ty.clone(), |i| {
            let mut idx = unflatten(i, &ty.shape);
            idx[axis] += off;
            a.get(flatten(&idx, &a.ty.shape))
        }));
        offset += ty.shape[axis] as usize;
    }
    Ok(outs)
}

fn slice(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let ty = e.out_ty(0)?;
    let (offsets, stride) = (e.ints("offsets")?, e.ints("strides")?);
    let a = e.arg(0);
    Ok(vec![Tensor::from_fn(ty.clone(), |i| {
        let idx: Vec<usize> = unflatten(i, &ty.shape)
            .iter()
            .enumerate()
            .map(|(d, &c)| (offsets[d] + c as i64 * stride[d]) as usize)
            .collect();
        a.get(flatten(&idx, &a.ty.shape))
    })])
}

fn gather(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let ty = e.out_ty(0)?;
    let axis = e.int("axis")? as usize;
    let (d, ix) = (e.arg(0), e.arg(1));
    let dim = d.ty.shape[axis];
    for k in 0..ix.len() {
        let v = ix.get(k).i();
        if v < -dim || v >= dim {
            return Err(format!(
                "index {v} is out of range for dimension {axis} of size {dim}"
            ));
        }
    }
    let ir = ix.ty.rank();
    Ok(vec![Tensor::from_fn(ty.clone(), |i| {
        let idx = unflatten(i, &ty.shape);
        let inner = &idx[axis..axis + ir];
        let mut v = ix.get(flatten(inner, &ix.ty.shape)).i();
        if v < 0 {
            v += dim;
        }
        let mut src: Vec<usize> = idx[..axis].to_vec();
        src.push(v as usize);
        src.extend(&idx[axis + ir..]);
        d.get(flatten(&src, &d.ty.shape))
    })])
}

fn gather_elements(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let ty = e.out_ty(0)?;
    let axis = e.int("axis")? as usize;
    let (d, ix) = (e.arg(0), e.arg(1));
    let dim = d.ty.shape[axis];
    let mut bad = None;
    let t = Tensor::from_fn(ty.clone(), |i| {
        let mut idx = unflatten(i, &ty.shape);
        let mut v = ix.get(i).i();
        if v < 0 {
            v += dim;
        }
        if v < 0 || v >= dim {
            bad = Some(ix.get(i).i());
            return Scalar::I(0);
        }
        idx[axis] = v as usize;
        d.get(flatten(&idx, &d.ty.shape))
    });
    match bad {
        Some(v) => Err(format!(
            "index {v} is out of range for dimension {axis} of size {dim}"
        )),
        None => Ok(vec![t]),
    }
}

fn iota(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let ty = e.out_ty(0)?;
    let (start, step) = (e.attrs().get("start"), e.attrs().get("step"));
    let as_scalar = |a: Option<&Attr>| match a {
        Some(Attr::Int(v, _)) => Ok(Scalar::I(*v)),
        Some(Attr::Float(v, _)) => Ok(Scalar::F(v.0)),
        _ => Err("start and step must be numbers".to_string()),
    };
    let (s, st) = (as_scalar(start)?, as_scalar(step)?);
    Ok(vec![Tensor::from_fn(ty, |i| match (s, st) {
        (Scalar::I(a), Scalar::I(b)) => Scalar::I(a + b * i as i64),
        (a, b) => Scalar::F(a.f() + b.f() * i as f64),
    })])
}

/// A box of the result needs the row-major runs of the operand it holds.
fn tile_reshape(n: &NeedsInput) -> Vec<Option<Region>> {
    let s = &n.shapes[0];
    let out_shape = &n.out_shape;
    let mut v = vec![Some(n.map(&|b| {
        flat_runs(out_shape, b)
            .into_iter()
            .flat_map(|(lo, hi)| flat_to_boxes(s, lo, hi))
            .collect()
    }))];
    v.extend((1..n.shapes.len()).map(|i| n.full(i)));
    v
}

/// `tg.transpose`'s `perm`: result axis i is operand axis `perm[i]` (the verifier has
/// checked it is a permutation of the operand's axes).
pub fn transpose_perm(attrs: &Attrs) -> Vec<usize> {
    attrs
        .get("perm")
        .and_then(Attr::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(|a| a.as_int().map(|x| x as usize))
        .collect()
}

/// A box of the result needs the operand's box with its axes permuted back.
fn tile_transpose(n: &NeedsInput) -> Vec<Option<Region>> {
    let perm = transpose_perm(&n.body.ops[n.op].attrs);
    if perm.len() != n.out_shape.len() {
        return n.all_full();
    }
    vec![Some(n.map(&|b| {
        let mut x = full_box(&n.shapes[0]);
        for (i, &p) in perm.iter().enumerate() {
            x[p] = b[i];
        }
        vec![x]
    }))]
}
