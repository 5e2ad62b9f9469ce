//! Normalisations over the trailing axes `axis..`: `tg.rms_norm` and `tg.layer_norm`. They
//! compute in f32 or better; the scale (and bias) may have another float type than x.

use super::{check_axis, f64_attr, int_attr, tensor_operand};
use crate::attr::Attrs;
use crate::dialect::tg::elementwise::{broadcast_source, Scalar};
use crate::interpret::Eval;
use crate::registry::{Arity, AttrKind, Registry, Traits};
use crate::tensor::Tensor;
use crate::tiling::{norm_axis, whole_axes_needs, NeedsInput, Region};
use crate::types::{broadcast_shapes, TensorType, Type};
use std::rc::Rc;

crate::op_kinds! {
    /// x / rms(x) * scale over `axis..`.
    RmsNorm = "tg.rms_norm",
    /// (x - mean) / stddev * scale [+ bias] over `axis..`.
    LayerNorm = "tg.layer_norm",
}

impl crate::op::OpRef<'_, RmsNorm> {
    /// The first normalised axis (the rest follow it).
    pub fn axis(&self) -> i64 {
        self.int("axis").unwrap_or(0)
    }

    pub fn epsilon(&self) -> f64 {
        self.float("epsilon").unwrap_or(1e-6)
    }
}

pub fn register(r: &mut Registry) {
    let reduction = Traits::PURE | Traits::REDUCTION;
    r.op(
        RmsNorm::NAME,
        "x / sqrt(mean(x^2 over dims axis..) + epsilon) * scale, computed in f32",
    )
    .operands(2)
    .results(1)
    .attr("axis", AttrKind::Int)
    .attr("epsilon", AttrKind::Float)
    .traits(reduction)
    .infer(infer_rms_norm)
    .interpret(interpret_norm)
    .tile(tile_norm);
    r.op(
        LayerNorm::NAME,
        "(x - mean) / sqrt(var + epsilon) * scale [+ bias] over dims axis..; optional results: mean, 1/stddev",
    )
    .operands(2..=3)
    .results(Arity(1..=3))
    .attr("axis", AttrKind::Int)
    .attr("epsilon", AttrKind::Float)
    .traits(reduction)
    .verify(verify_layer_norm)
    .interpret(interpret_norm)
    .tile(tile_norm);
}

fn interpret_norm(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    norm(
        &e.body.ops[e.op].name,
        e.args,
        e.int("axis")? as usize,
        e.float("epsilon")?,
        e.out_types()?,
    )
}

/// A tile needs its rows of x over every normalised axis, and the scale (and bias) whole.
fn tile_norm(n: &NeedsInput) -> Vec<Option<Region>> {
    let rank = n.out_shape.len();
    let axis = norm_axis(n.int_attr("axis").unwrap_or(-1), rank);
    whole_axes_needs(n, axis..rank)
}

/// `scale` (and `bias`) must broadcast to the normalised trailing dims `x.shape[axis..]`.
fn check_norm_param(x: &TensorType, axis: usize, p: &TensorType, what: &str) -> Result<(), String> {
    if !p.elem.is_float() {
        return Err(format!("{what} must be a float tensor, but is {p}"));
    }
    let tail = &x.shape[axis..];
    if broadcast_shapes(tail, &p.shape).as_deref() != Some(tail) {
        return Err(format!(
            "{what} {p} does not broadcast to the normalised dims {tail:?}"
        ));
    }
    Ok(())
}

fn infer_rms_norm(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let x = tensor_operand(&ins[0], 0)?;
    if !x.elem.is_float() {
        return Err(format!("requires a float tensor, but the operand is {x}"));
    }
    let axis = check_axis(int_attr(attrs, "axis")?, x.rank(), "axis")?;
    check_norm_param(x, axis, tensor_operand(&ins[1], 1)?, "scale")?;
    f64_attr(attrs, "epsilon")?;
    Ok(vec![ins[0].clone()])
}

fn verify_layer_norm(body: &crate::ir::Body, op: crate::ir::OpId) -> Result<(), String> {
    let data = &body.ops[op];
    let x = tensor_operand(body.ty(data.operands[0]), 0)?;
    if !x.elem.is_float() {
        return Err(format!("requires a float tensor, but the operand is {x}"));
    }
    let axis = check_axis(int_attr(&data.attrs, "axis")?, x.rank(), "axis")?;
    for (i, what) in [(1, "scale"), (2, "bias")] {
        if let Some(&v) = data.operands.get(i) {
            check_norm_param(x, axis, tensor_operand(body.ty(v), i)?, what)?;
        }
    }
    if body.ty(data.results[0]) != body.ty(data.operands[0]) {
        return Err(format!(
            "result #0 must have the operand's type {}",
            Type::Tensor(x.clone())
        ));
    }
    let stat_shape: Vec<i64> = (0..x.rank())
        .map(|d| if d < axis { x.shape[d] } else { 1 })
        .collect();
    for (i, &r) in data.results.iter().enumerate().skip(1) {
        match body.ty(r).as_tensor() {
            Some(t) if t.shape == stat_shape && t.elem.is_float() => {}
            _ => {
                return Err(format!(
                    "result #{i} must be a float tensor of shape {stat_shape:?}, but is {}",
                    body.ty(r)
                ))
            }
        }
    }
    Ok(())
}

fn norm(
    name: &str,
    args: &[Rc<Tensor>],
    axis: usize,
    eps: f64,
    tys: Vec<TensorType>,
) -> Result<Vec<Tensor>, String> {
    let x = &args[0];
    let shape = &x.ty.shape;
    let rows: usize = shape[..axis].iter().product::<i64>() as usize;
    let width: usize = shape[axis..].iter().product::<i64>() as usize;
    let tail = &shape[axis..];
    let param = |t: &Tensor, j: usize| t.f(broadcast_source(j, tail, &t.ty.shape));
    let mut y = vec![0f64; x.len()];
    let (mut means, mut inv_stds) = (vec![0f64; rows], vec![0f64; rows]);
    for r in 0..rows {
        let row: Vec<f64> = (0..width).map(|j| x.f(r * width + j)).collect();
        let w = width.max(1) as f64;
        if name == RmsNorm::NAME {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / w;
            let inv = 1.0 / (ms + eps).sqrt();
            for j in 0..width {
                y[r * width + j] = row[j] * inv * param(&args[1], j);
            }
        } else {
            let mean = row.iter().sum::<f64>() / w;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / w;
            let inv = 1.0 / (var + eps).sqrt();
            means[r] = mean;
            inv_stds[r] = inv;
            for j in 0..width {
                let bias = args.get(2).map_or(0.0, |b| param(b, j));
                y[r * width + j] = (row[j] - mean) * inv * param(&args[1], j) + bias;
            }
        }
    }
    let mut outs = vec![Tensor::from_fn(tys[0].clone(), |i| Scalar::F(y[i]))];
    if let Some(t) = tys.get(1) {
        outs.push(Tensor::from_fn(t.clone(), |i| Scalar::F(means[i])));
    }
    if let Some(t) = tys.get(2) {
        outs.push(Tensor::from_fn(t.clone(), |i| Scalar::F(inv_stds[i])));
    }
    Ok(outs)
}
