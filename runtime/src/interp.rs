//! The reference interpreter: executes `tg` IR on the CPU. It is the numeric reference every
//! other level is checked against, so it favours plain, obviously-correct loops: arithmetic
//! in f64, every op's result rounded to its element type (so bf16 in the IR means bf16
//! rounding here), reductions and dot products accumulated in f64.

use crate::tensor::{Data, Tensor};
use mkc_ir::attr::Attr;
use mkc_ir::dialect::tg::elementwise::{broadcast_source, semantics, Scalar};
use mkc_ir::dialect::tg::nn::{attention_part, matmul_shape, reduce_axes, rope_inv_freq};
use mkc_ir::weights::WeightSource;
use mkc_ir::{Body, ElemType, OpId, TensorType, Type, ValueId};
use std::collections::HashMap;
use std::rc::Rc;

/// Executes functions of one module; caches weights across calls (a decode loop calls the
/// step function once per position).
pub struct Interpreter<'a> {
    body: &'a Body,
    weights: &'a dyn WeightSource,
    cache: HashMap<String, Rc<Tensor>>,
}

fn err_at(body: &Body, op: OpId, msg: impl std::fmt::Display) -> String {
    let d = &body.ops[op];
    if d.loc.is_known() {
        format!("'{}' at line {}: {msg}", d.name, d.loc.line)
    } else {
        format!("'{}': {msg}", d.name)
    }
}

fn tensor_type(t: &Type) -> Result<&TensorType, String> {
    t.as_tensor()
        .ok_or_else(|| format!("the interpreter handles tensors only, not {t}"))
}

impl<'a> Interpreter<'a> {
    pub fn new(body: &'a Body, weights: &'a dyn WeightSource) -> Self {
        Interpreter {
            body,
            weights,
            cache: HashMap::new(),
        }
    }

    /// The function called `name`.
    pub fn func(&self, name: &str) -> Result<OpId, String> {
        let b = self.body;
        b.blocks[b.module_block()]
            .ops
            .iter()
            .copied()
            .find(|&o| {
                b.ops[o].name == "func.func"
                    && b.ops[o].attrs.get("sym_name").and_then(Attr::as_str) == Some(name)
            })
            .ok_or_else(|| format!("no function @{name} in the module"))
    }

    fn weight(&mut self, name: &str, ty: &TensorType) -> Result<Rc<Tensor>, String> {
        if let Some(t) = self.cache.get(name) {
            return Ok(t.clone());
        }
        let raw = self.weights.raw(name)?;
        let t = Rc::new(Tensor::from_raw(&raw, ty).map_err(|e| format!("weight '{name}' {e}"))?);
        self.cache.insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// Runs `func`. Arguments marked `{mkc.weight = "name"}` are loaded from the weight
    /// source; the others are taken from `inputs`, in order.
    pub fn call(&mut self, func: OpId, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
        let body = self.body;
        let entry = body
            .entry_block(func, 0)
            .ok_or("the function has no body")?;
        let mut values: HashMap<ValueId, Rc<Tensor>> = HashMap::new();
        let mut inputs = inputs.into_iter();
        for (i, &a) in body.blocks[entry].args.iter().enumerate() {
            let ty = tensor_type(body.ty(a))?;
            let weight = mkc_ir::dialect::builtin::weight_arg_name(body, func, i);
            let t = match weight {
                Some(name) => self.weight(name, ty)?,
                None => {
                    let t = inputs
                        .next()
                        .ok_or_else(|| format!("missing input for argument #{i}"))?;
                    if t.ty != *ty {
                        return Err(format!("argument #{i} expects {ty}, got {}", t.ty));
                    }
                    Rc::new(t)
                }
            };
            values.insert(a, t);
        }
        if inputs.next().is_some() {
            return Err("more inputs than the function takes".into());
        }
        for &op in &body.blocks[entry].ops {
            let data = &body.ops[op];
            if data.name == "func.return" {
                return data
                    .operands
                    .iter()
                    .map(|v| {
                        values
                            .get(v)
                            .map(|t| (**t).clone())
                            .ok_or_else(|| "undefined value".to_string())
                    })
                    .collect();
            }
            let args: Vec<Rc<Tensor>> = data
                .operands
                .iter()
                .map(|v| {
                    values
                        .get(v)
                        .cloned()
                        .ok_or_else(|| err_at(body, op, "uses an undefined value"))
                })
                .collect::<Result<_, _>>()?;
            let outs = self.eval_op(op, &args).map_err(|e| err_at(body, op, e))?;
            for (&r, t) in data.results.iter().zip(outs) {
                values.insert(r, Rc::new(t));
            }
        }
        Err("the function has no return".into())
    }

    /// Evaluates one op on the given operand values (importers fold constants with it).
    pub fn eval_op(&mut self, op: OpId, args: &[Rc<Tensor>]) -> Result<Vec<Tensor>, String> {
        let body = self.body;
        let data = &body.ops[op];
        let attrs = &data.attrs;
        let out_ty = |i: usize| tensor_type(body.ty(data.results[i])).cloned();
        let int = |k: &str| {
            attrs
                .get(k)
                .and_then(Attr::as_int)
                .ok_or(format!("missing '{k}'"))
        };
        let float = |k: &str| {
            attrs
                .get(k)
                .and_then(Attr::as_f64)
                .ok_or(format!("missing '{k}'"))
        };
        let flag = |k: &str, d: bool| match attrs.get(k) {
            Some(Attr::Bool(b)) => *b,
            _ => d,
        };
        let ints = |k: &str| -> Result<Vec<i64>, String> {
            attrs
                .get(k)
                .and_then(Attr::as_array)
                .map(|a| a.iter().filter_map(Attr::as_int).collect())
                .ok_or(format!("missing '{k}'"))
        };
        let one = |t: Tensor| Ok(vec![t]);
        match data.name.as_str() {
            "tg.constant" => match attrs.get("value") {
                Some(Attr::Dense(d)) => one(Tensor::from_dense(d)),
                Some(Attr::Weight(name)) => {
                    let ty = out_ty(0)?;
                    one((*self.weight(name, &ty)?).clone())
                }
                _ => Err("bad value".into()),
            },
            "tg.reshape" => one(args[0].reshaped(out_ty(0)?.shape)),
            "tg.expand" => {
                let ty = out_ty(0)?;
                let a = &args[0];
                one(Tensor::from_fn(ty.clone(), |i| {
                    a.get(broadcast_source(i, &ty.shape, &a.ty.shape))
                }))
            }
            "tg.transpose" => {
                let ty = out_ty(0)?;
                let perm = ints("perm")?;
                let a = &args[0];
                let in_strides = strides(&a.ty.shape);
                one(Tensor::from_fn(ty.clone(), |i| {
                    let idx = unflatten(i, &ty.shape);
                    let src: usize = idx
                        .iter()
                        .zip(&perm)
                        .map(|(&c, &p)| c * in_strides[p as usize])
                        .sum();
                    a.get(src)
                }))
            }
            "tg.concat" => {
                let ty = out_ty(0)?;
                let axis = int("axis")? as usize;
                let mut starts = vec![0i64];
                for a in args {
                    starts.push(starts.last().unwrap() + a.ty.shape[axis]);
                }
                one(Tensor::from_fn(ty.clone(), |i| {
                    let mut idx = unflatten(i, &ty.shape);
                    let c = idx[axis] as i64;
                    let k = starts.partition_point(|&s| s <= c) - 1;
                    idx[axis] = (c - starts[k]) as usize;
                    args[k].get(flatten(&idx, &args[k].ty.shape))
                }))
            }
            "tg.split" => {
                let axis = int("axis")? as usize;
                let a = &args[0];
                let mut offset = 0usize;
                let mut outs = Vec::new();
                for r in 0..data.results.len() {
                    let ty = out_ty(r)?;
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
            "tg.slice" => {
                let ty = out_ty(0)?;
                let (offsets, stride) = (ints("offsets")?, ints("strides")?);
                let a = &args[0];
                one(Tensor::from_fn(ty.clone(), |i| {
                    let idx: Vec<usize> = unflatten(i, &ty.shape)
                        .iter()
                        .enumerate()
                        .map(|(d, &c)| (offsets[d] + c as i64 * stride[d]) as usize)
                        .collect();
                    a.get(flatten(&idx, &a.ty.shape))
                }))
            }
            "tg.gather" => {
                let ty = out_ty(0)?;
                let axis = int("axis")? as usize;
                let (d, ix) = (&args[0], &args[1]);
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
                one(Tensor::from_fn(ty.clone(), |i| {
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
                }))
            }
            "tg.gather_elements" => {
                let ty = out_ty(0)?;
                let axis = int("axis")? as usize;
                let (d, ix) = (&args[0], &args[1]);
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
                    None => one(t),
                }
            }
            "tg.iota" => {
                let ty = out_ty(0)?;
                let (start, step) = (attrs.get("start"), attrs.get("step"));
                let as_scalar = |a: Option<&Attr>| match a {
                    Some(Attr::Int(v, _)) => Ok(Scalar::I(*v)),
                    Some(Attr::Float(v, _)) => Ok(Scalar::F(v.0)),
                    _ => Err("start and step must be numbers".to_string()),
                };
                let (s, st) = (as_scalar(start)?, as_scalar(step)?);
                one(Tensor::from_fn(ty, |i| match (s, st) {
                    (Scalar::I(a), Scalar::I(b)) => Scalar::I(a + b * i as i64),
                    (a, b) => Scalar::F(a.f() + b.f() * i as f64),
                }))
            }
            "tg.matmul" => one(matmul(
                &args[0],
                &args[1],
                flag("transpose_b", false),
                out_ty(0)?,
            )?),
            "tg.reduce_sum" | "tg.reduce_mean" | "tg.reduce_max" | "tg.reduce_min" => {
                let a = &args[0];
                let axes = reduce_axes(attrs, a.ty.rank())?;
                one(reduce(&data.name, a, &axes, out_ty(0)?))
            }
            "tg.argmax" => {
                let a = &args[0];
                let axis = int("axis")? as usize;
                let last = flag("select_last_index", false);
                let ty = out_ty(0)?;
                let (outer, n, inner) = split_at_axis(&a.ty.shape, axis);
                let mut out = Vec::with_capacity(outer * inner);
                for o in 0..outer {
                    for j in 0..inner {
                        let mut best = 0usize;
                        for k in 1..n {
                            let (v, b) = (
                                a.f((o * n + k) * inner + j),
                                a.f((o * n + best) * inner + j),
                            );
                            if v > b || (last && v == b) {
                                best = k;
                            }
                        }
                        out.push(best as i64);
                    }
                }
                one(Tensor {
                    ty,
                    data: Data::I64(out),
                })
            }
            "tg.softmax" => {
                let a = &args[0];
                let axis = int("axis")? as usize;
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
                one(Tensor::from_fn(out_ty(0)?, |i| Scalar::F(v[i])))
            }
            "tg.rms_norm" | "tg.layer_norm" => norm(
                &data.name,
                args,
                int("axis")? as usize,
                float("epsilon")?,
                (0..data.results.len())
                    .map(out_ty)
                    .collect::<Result<_, _>>()?,
            ),
            "tg.cast" if out_ty(0)?.elem.is_minifloat() => {
                use mkc_ir::minifloat::RoundMode;
                let ty = out_ty(0)?;
                let saturate = flag("saturate", true);
                let mode = match attrs.get("round_mode").and_then(Attr::as_str) {
                    Some("down") => RoundMode::Down,
                    Some("nearest") => RoundMode::Nearest,
                    _ => RoundMode::Up,
                };
                let a = &args[0];
                let e = ty.elem;
                one(Tensor::from_fn(ty, |i| {
                    a.get(i).convert_minifloat(e, saturate, mode)
                }))
            }
            "tg.rope" => one(rope(
                &args[0],
                &args[1],
                &args[2],
                flag("interleaved", false),
                flag("full_width", false),
            )),
            "tg.sdpa" => one(sdpa(args, float("scale")?, out_ty(0)?)),
            "fused.group" => {
                // A group's region computes its results from its operands.
                let region = self.body.ops[op].regions[0];
                let block = *self.body.regions[region]
                    .blocks
                    .first()
                    .ok_or("empty group")?;
                let mut vals: HashMap<ValueId, Rc<Tensor>> = HashMap::new();
                for (&a, t) in self.body.blocks[block].args.iter().zip(args) {
                    vals.insert(a, t.clone());
                }
                for &inner in &self.body.blocks[block].ops.clone() {
                    let d = &self.body.ops[inner];
                    let ins: Vec<Rc<Tensor>> = d
                        .operands
                        .iter()
                        .map(|v| {
                            vals.get(v).cloned().ok_or_else(|| {
                                err_at(self.body, inner, "uses a value from outside its group")
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    if d.name == "fused.yield" {
                        return Ok(ins.iter().map(|t| (**t).clone()).collect());
                    }
                    let outs = self
                        .eval_op(inner, &ins)
                        .map_err(|e| err_at(self.body, inner, e))?;
                    for (&r, t) in self.body.ops[inner].results.iter().zip(outs) {
                        vals.insert(r, Rc::new(t));
                    }
                }
                Err("the group has no fused.yield".into())
            }
            "tg.rope_cos_sin" => {
                let inv = rope_inv_freq(attrs)?;
                let p = &args[0];
                let ty = out_ty(0)?;
                let half = inv.len();
                // HF computes the angles in f32: emulate its rounding.
                let angle = |i: usize| {
                    let f = inv[i % half] as f32;
                    (p.get(i / half).f() as f32 * f) as f64
                };
                Ok(vec![
                    Tensor::from_fn(ty.clone(), |i| Scalar::F(angle(i).cos())),
                    Tensor::from_fn(ty, |i| Scalar::F(angle(i).sin())),
                ])
            }
            "tg.kv_append" => {
                let (cache, new) = (&args[0], &args[1]);
                let pos = cache_row(cache, &args[2])?;
                let row = new.len();
                let start = pos * row;
                one(Tensor::from_fn(cache.ty.clone(), |i| {
                    if (start..start + row).contains(&i) {
                        new.get(i - start)
                    } else {
                        cache.get(i)
                    }
                }))
            }
            "tg.attention" | "tg.attention_partial" => {
                let (q, k, v) = (&args[0], &args[1], &args[2]);
                let pos = cache_row(k, &args[3])?;
                let (scale, ty) = (float("scale")?, out_ty(0)?);
                one(if data.name == "tg.attention" {
                    attention(q, k, v, pos, scale, ty)
                } else {
                    attention_partial(q, k, v, pos, scale, ty)
                })
            }
            "tg.attention_combine" => one(attention_combine(&args[0], out_ty(0)?)),
            name => {
                let f = semantics(name, attrs)
                    .ok_or_else(|| format!("the interpreter cannot run '{name}'"))?;
                let ty = out_ty(0)?;
                let mut scratch = vec![Scalar::I(0); args.len()];
                let mut failed = false;
                let t = Tensor::from_fn(ty.clone(), |i| {
                    for (s, a) in scratch.iter_mut().zip(args) {
                        *s = a.get(broadcast_source(i, &ty.shape, &a.ty.shape));
                    }
                    f(&scratch).unwrap_or_else(|| {
                        failed = true;
                        Scalar::I(0)
                    })
                });
                if failed {
                    return Err("undefined result (integer division by zero?)".into());
                }
                one(t)
            }
        }
    }
}

fn strides(shape: &[i64]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1] as usize;
    }
    s
}

fn unflatten(mut i: usize, shape: &[i64]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        let n = shape[d] as usize;
        idx[d] = i % n.max(1);
        i /= n.max(1);
    }
    idx
}

fn flatten(idx: &[usize], shape: &[i64]) -> usize {
    idx.iter()
        .zip(shape)
        .fold(0, |acc, (&c, &n)| acc * n as usize + c)
}

/// (product of dims before, dim, product of dims after).
fn split_at_axis(shape: &[i64], axis: usize) -> (usize, usize, usize) {
    let p = |s: &[i64]| s.iter().product::<i64>() as usize;
    (
        p(&shape[..axis]),
        shape[axis] as usize,
        p(&shape[axis + 1..]),
    )
}

fn matmul(a: &Tensor, b: &Tensor, transpose_b: bool, ty: TensorType) -> Result<Tensor, String> {
    let a2: Vec<i64> = if a.ty.rank() == 1 {
        vec![1, a.ty.shape[0]]
    } else {
        a.ty.shape.clone()
    };
    let mut b2: Vec<i64> = if b.ty.rank() == 1 {
        vec![b.ty.shape[0], 1]
    } else {
        b.ty.shape.clone()
    };
    let nb = b2.len();
    let b_stored = b2.clone();
    if transpose_b {
        b2.swap(nb - 1, nb - 2);
    }
    let (m, k, n) = (
        a2[a2.len() - 2] as usize,
        a2[a2.len() - 1] as usize,
        b2[nb - 1] as usize,
    );
    let batch_shape = matmul_shape(&a2, &b2)?;
    let batch_shape = &batch_shape[..batch_shape.len() - 2];
    let batches: usize = batch_shape.iter().product::<i64>() as usize;
    let (a_batch, b_batch) = (&a2[..a2.len() - 2], &b_stored[..nb - 2]);
    let mut out = Vec::with_capacity(batches * m * n);
    // Element access without copying whole operands (weights can be gigabytes).
    let get = |t: &Tensor, i: usize| -> f64 {
        match &t.data {
            Data::F32(v) => v[i] as f64,
            Data::F64(v) => v[i],
            Data::I64(v) => v[i] as f64,
        }
    };
    let int = !ty.elem.is_float();
    for bi in 0..batches {
        let ab = broadcast_source(bi, batch_shape, a_batch) * m * k;
        let bb = broadcast_source(bi, batch_shape, b_batch) * k * n;
        for i in 0..m {
            let row = ab + i * k;
            for j in 0..n {
                let b_at = |p: usize| {
                    if transpose_b {
                        bb + j * k + p
                    } else {
                        bb + p * n + j
                    }
                };
                if int {
                    let mut acc = 0i64;
                    for p in 0..k {
                        acc = acc.wrapping_add(a.get(row + p).i().wrapping_mul(b.get(b_at(p)).i()));
                    }
                    out.push(Scalar::I(acc));
                } else {
                    let mut acc = 0f64;
                    for p in 0..k {
                        acc += get(a, row + p) * get(b, b_at(p));
                    }
                    out.push(Scalar::F(acc));
                }
            }
        }
    }
    Ok(Tensor::from_fn(ty, |i| out[i]))
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
            (Some(s), "tg.reduce_max") => pick(s, v, true, float),
            (Some(s), "tg.reduce_min") => pick(s, v, false, float),
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
            "tg.reduce_max" => lowest,
            "tg.reduce_min" => highest,
            _ => Scalar::I(0),
        });
        if name == "tg.reduce_mean" {
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
        if name == "tg.rms_norm" {
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

fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, interleaved: bool, full_width: bool) -> Tensor {
    let d = *x.ty.shape.last().unwrap() as usize;
    let w = *cos.ty.shape.last().unwrap() as usize;
    let r = if full_width { w / 2 } else { w };
    let lead = &x.ty.shape[..x.ty.rank() - 1];
    let cs_lead = &cos.ty.shape[..cos.ty.rank() - 1];
    Tensor::from_fn(x.ty.clone(), |i| {
        let (row, lane) = (i / d, i % d);
        if lane >= 2 * r {
            return x.get(i);
        }
        let base = row * d;
        let cs_row = broadcast_source(row, lead, cs_lead) * w;
        let (j, first) = if interleaved {
            (lane / 2, lane % 2 == 0)
        } else {
            (lane % r, lane < r)
        };
        // Full-width tables hold a value per lane; half-width ones one per rotated pair.
        let at = if full_width { lane } else { j };
        let (c, s) = (cos.f(cs_row + at), sin.f(cs_row + at));
        let (x1, x2) = if interleaved {
            (x.f(base + 2 * j), x.f(base + 2 * j + 1))
        } else {
            (x.f(base + j), x.f(base + j + r))
        };
        Scalar::F(if first {
            x1 * c - x2 * s
        } else {
            x2 * c + x1 * s
        })
    })
}

/// The step's position `pos` (a rank-0 tensor) as a row of `cache` [ctx, ..], or an error
/// when it is outside.
fn cache_row(cache: &Tensor, pos: &Tensor) -> Result<usize, String> {
    let (pos, ctx) = (pos.get(0).i(), cache.ty.shape[0]);
    if pos < 0 || pos >= ctx {
        return Err(format!(
            "position {pos} is outside the cache (context {ctx})"
        ));
    }
    Ok(pos as usize)
}

/// Head `h` of decode attention over cache rows `rows`: (the sum of e^(s - m) v over the
/// rows, m = the largest score s, the sum of e^(s - m)); no rows give (0, -inf, 0).
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    h: usize,
    rows: std::ops::Range<usize>,
    scale: f64,
) -> (Vec<f64>, f64, f64) {
    let (heads, dim) = (q.ty.shape[0] as usize, q.ty.shape[1] as usize);
    let kv_heads = k.ty.shape[1] as usize;
    let kh = h / (heads / kv_heads);
    let scores: Vec<f64> = rows
        .clone()
        .map(|t| {
            (0..dim)
                .map(|e| q.f(h * dim + e) * k.f((t * kv_heads + kh) * dim + e))
                .sum::<f64>()
                * scale
        })
        .collect();
    let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut out = vec![0f64; dim];
    let mut l = 0.0;
    for (t, &s) in rows.zip(&scores) {
        let p = (s - m).exp();
        l += p;
        for (e, o) in out.iter_mut().enumerate() {
            *o += p * v.f((t * kv_heads + kh) * dim + e);
        }
    }
    (out, m, l)
}

fn attention(q: &Tensor, k: &Tensor, v: &Tensor, pos: usize, scale: f64, ty: TensorType) -> Tensor {
    let (heads, dim) = (q.ty.shape[0] as usize, q.ty.shape[1] as usize);
    let mut out = vec![0f64; heads * dim];
    for h in 0..heads {
        let (o, _, l) = attend(q, k, v, h, 0..pos + 1, scale);
        for (e, x) in o.into_iter().enumerate() {
            out[h * dim + e] = x / l;
        }
    }
    Tensor::from_fn(ty, |i| Scalar::F(out[i]))
}

/// `tg.attention_partial`: per part and head, [sum of e^(s - m) v, m, sum of e^(s - m)].
fn attention_partial(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    pos: usize,
    scale: f64,
    ty: TensorType,
) -> Tensor {
    let (parts, heads, row) = (
        ty.shape[0] as usize,
        ty.shape[1] as usize,
        ty.shape[2] as usize,
    );
    let mut out = vec![0f64; parts * heads * row];
    for p in 0..parts {
        let (lo, hi) = attention_part(pos as i64 + 1, p as i64, parts as i64);
        for h in 0..heads {
            let (o, m, l) = attend(q, k, v, h, lo as usize..hi as usize, scale);
            let at = (p * heads + h) * row;
            out[at..at + row - 2].copy_from_slice(&o);
            out[at + row - 2] = m;
            out[at + row - 1] = l;
        }
    }
    Tensor::from_fn(ty, |i| Scalar::F(out[i]))
}

/// `tg.attention_combine`: the parts rescaled to their common maximum, summed, normalised.
fn attention_combine(parts: &Tensor, ty: TensorType) -> Tensor {
    let (n, heads, row) = (
        parts.ty.shape[0] as usize,
        parts.ty.shape[1] as usize,
        parts.ty.shape[2] as usize,
    );
    let dim = row - 2;
    let at = |p: usize, h: usize, e: usize| parts.f((p * heads + h) * row + e);
    Tensor::from_fn(ty, |i| {
        let (h, e) = (i / dim, i % dim);
        let m = (0..n)
            .map(|p| at(p, h, dim))
            .fold(f64::NEG_INFINITY, f64::max);
        let (mut o, mut l) = (0.0, 0.0);
        for p in 0..n {
            let w = (at(p, h, dim) - m).exp();
            o += w * at(p, h, e);
            l += w * at(p, h, dim + 1);
        }
        Scalar::F(o / l)
    })
}

fn sdpa(args: &[Rc<Tensor>], scale: f64, ty: TensorType) -> Tensor {
    let (q, k, v) = (&args[0], &args[1], &args[2]);
    let r = q.ty.rank();
    let (hq, s, d) = (
        q.ty.shape[r - 3] as usize,
        q.ty.shape[r - 2] as usize,
        q.ty.shape[r - 1] as usize,
    );
    let (hk, t) = (k.ty.shape[r - 3] as usize, k.ty.shape[r - 2] as usize);
    let dv = v.ty.shape[r - 1] as usize;
    let batches = q.len() / (hq * s * d).max(1);
    let group = hq / hk.max(1);
    let mut scores_shape = q.ty.shape[..r - 1].to_vec();
    scores_shape.push(t as i64);
    let mut out = vec![0f64; batches * hq * s * dv];
    for b in 0..batches {
        for h in 0..hq {
            let kh = h / group;
            for i in 0..s {
                let mut sc: Vec<f64> = (0..t)
                    .map(|j| {
                        let dot: f64 = (0..d)
                            .map(|e| {
                                q.f(((b * hq + h) * s + i) * d + e)
                                    * k.f(((b * hk + kh) * t + j) * d + e)
                            })
                            .sum();
                        dot * scale
                    })
                    .collect();
                if let Some(m) = args.get(3) {
                    for (j, x) in sc.iter_mut().enumerate() {
                        let flat = ((b * hq + h) * s + i) * t + j;
                        *x += m.f(broadcast_source(flat, &scores_shape, &m.ty.shape));
                    }
                }
                let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if mx == f64::NEG_INFINITY {
                    continue; // fully masked row: weights 0
                }
                let z: f64 = sc.iter().map(|x| (x - mx).exp()).sum();
                for (j, x) in sc.iter().enumerate() {
                    let p = (x - mx).exp() / z;
                    for e in 0..dv {
                        out[((b * hq + h) * s + i) * dv + e] +=
                            p * v.f(((b * hk + kh) * t + j) * dv + e);
                    }
                }
            }
        }
    }
    Tensor::from_fn(ty, |i| Scalar::F(out[i]))
}

/// Relative L2 error of `got` against `want`: ||got - want|| / ||want||.
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Index of the first maximum.
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Helper for callers that build inputs: a rank-0 or rank-1 i64 tensor.
pub fn i64_tensor(shape: &[i64], values: Vec<i64>) -> Tensor {
    Tensor {
        ty: TensorType::new(shape.to_vec(), ElemType::I64),
        data: Data::I64(values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[i64], v: Vec<f32>) -> Tensor {
        Tensor {
            ty: TensorType::new(shape.to_vec(), ElemType::F32),
            data: Data::F32(v),
        }
    }

    /// Attention's parts, combined, are attention: for every position (short runs leave
    /// parts empty, long ones cut it into uneven runs), parts count and GQA grouping.
    #[test]
    fn combined_parts_are_attention() {
        let (heads, kv, dim, ctx) = (4usize, 2usize, 8usize, 40usize);
        let wave =
            |n: usize, a: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * a).sin() * 1.7).collect() };
        let q = t(&[heads as i64, dim as i64], wave(heads * dim, 0.37));
        let k = t(
            &[ctx as i64, kv as i64, dim as i64],
            wave(ctx * kv * dim, 0.91),
        );
        let v = t(
            &[ctx as i64, kv as i64, dim as i64],
            wave(ctx * kv * dim, 0.53),
        );
        let out = TensorType::new(vec![heads as i64, dim as i64], ElemType::F32);
        for parts in [1i64, 2, 3, 4, 8] {
            for pos in [0usize, 5, 8, 17, 39] {
                let want = attention(&q, &k, &v, pos, 0.3, out.clone());
                let pty = TensorType::new(vec![parts, heads as i64, dim as i64 + 2], ElemType::F32);
                let p = attention_partial(&q, &k, &v, pos, 0.3, pty);
                // The runs tile 0..=pos in order, 8-position blocks unsplit; with fewer
                // blocks than parts some are empty.
                let n = pos as i64 + 1;
                let mut next = 0;
                for i in 0..parts {
                    let (lo, hi) = attention_part(n, i, parts);
                    assert_eq!(lo, next, "part {i} of {parts} at {pos}");
                    assert!(lo % 8 == 0 || lo == hi);
                    assert!(hi - lo <= 8 * ((n + 7) / 8 + parts - 1) / parts);
                    next = hi;
                }
                assert_eq!(next, n);
                let got = attention_combine(&p, out.clone());
                for i in 0..heads * dim {
                    assert!(
                        (got.f(i) - want.f(i)).abs() < 1e-5,
                        "parts {parts}, pos {pos}, element {i}: {} vs {}",
                        got.f(i),
                        want.f(i)
                    );
                }
            }
        }
    }

    /// Full-width rope equals x*cos + rotate_half(x)*sin, lane by lane.
    #[test]
    fn full_width_rope_is_rotate_half() {
        let d = 8;
        let x = t(&[2, 8], (0..16).map(|i| i as f32 * 0.5 - 3.0).collect());
        let cos = t(&[1, 8], (0..8).map(|i| (i as f32 * 0.3).cos()).collect());
        let sin = t(&[1, 8], (0..8).map(|i| (i as f32 * 0.7).sin()).collect());
        let got = rope(&x, &cos, &sin, false, true);
        for row in 0..2 {
            for lane in 0..d {
                let xv = |l: usize| x.f(row * d + l);
                let rot = if lane < d / 2 {
                    -xv(lane + d / 2)
                } else {
                    xv(lane - d / 2)
                };
                let want = xv(lane) * cos.f(lane) + rot * sin.f(lane);
                let g = got.f(row * d + lane);
                assert!(
                    (g - want).abs() < 1e-5,
                    "row {row} lane {lane}: {g} vs {want}"
                );
            }
        }
    }
}
