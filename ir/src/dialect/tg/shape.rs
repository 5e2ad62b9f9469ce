//! Shape and data-movement ops of `tg`: reshape, transpose, concat, split, slice, expand,
//! gather, iota.

use super::{check_axis, int_attr, ints_attr, tensor_operand};
use crate::attr::Attrs;
use crate::ir::{Body, OpId};
use crate::registry::{Arity, AttrKind, Registry, Traits};
use crate::types::{broadcast_shapes, Type};

pub fn register(r: &mut Registry) {
    let pure = Traits::PURE;
    r.op(
        "tg.reshape",
        "the same elements (row-major) with the result's shape",
    )
    .operands(1)
    .results(1)
    .traits(pure)
    .verify(verify_reshape);
    r.op(
        "tg.transpose",
        "permutes dimensions: result dim i is operand dim perm[i]",
    )
    .operands(1)
    .results(1)
    .attr("perm", AttrKind::Array)
    .traits(pure)
    .infer(infer_transpose);
    r.op("tg.concat", "joins tensors along `axis`")
        .operands(Arity::at_least(1))
        .results(1)
        .attr("axis", AttrKind::Int)
        .traits(pure)
        .infer(infer_concat);
    r.op(
        "tg.split",
        "cuts a tensor along `axis` into pieces of `sizes`",
    )
    .operands(1)
    .results(Arity::at_least(1))
    .attr("axis", AttrKind::Int)
    .attr("sizes", AttrKind::Array)
    .traits(pure)
    .infer(infer_split);
    r.op(
        "tg.slice",
        "result[i...] = x[offsets + i*strides ...] per dimension (strides may be negative)",
    )
    .operands(1)
    .results(1)
    .attr("offsets", AttrKind::Array)
    .attr("sizes", AttrKind::Array)
    .attr("strides", AttrKind::Array)
    .traits(pure)
    .infer(infer_slice);
    r.op(
        "tg.expand",
        "broadcasts the operand to the result's shape (numpy rules)",
    )
    .operands(1)
    .results(1)
    .traits(pure)
    .verify(verify_expand);
    r.op(
        "tg.gather",
        "picks slices of `data` along `axis` by integer indices (negative counts from the end)",
    )
    .operands(2)
    .results(1)
    .attr("axis", AttrKind::Int)
    .traits(pure)
    .infer(infer_gather);
    r.op(
        "tg.gather_elements",
        "result[i] = data[i with coordinate `axis` replaced by indices[i]]; shape of indices",
    )
    .operands(2)
    .results(1)
    .attr("axis", AttrKind::Int)
    .traits(pure)
    .infer(infer_gather_elements);
    r.op(
        "tg.iota",
        "a rank-1 tensor: start, start + step, start + 2*step, ...",
    )
    .results(1)
    .attr("start", AttrKind::Any)
    .attr("step", AttrKind::Any)
    .traits(pure)
    .verify(verify_iota);
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
        let last = o + (n - 1).max(0) * s;
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
    Ok(vec![Type::tensor(shape, data.elem)])
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
