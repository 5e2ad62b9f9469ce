//! Neural-network ops of `tg`: matmul, reductions, softmax, normalisations, rotary position
//! embedding, and the decode-step state ops (KV-cache append, attention over the cache).
//!
//! Mixed precision: where an op reads weights (`matmul`'s `b`, the norms' scale and bias),
//! their float type may differ from the activation's; the op computes in f32 (f64 for f64
//! activations) and produces the activation's element type.

use super::{bool_attr, check_axis, f64_attr, int_attr, ints_attr, tensor_operand};
use crate::attr::{Attr, Attrs};
use crate::registry::{Arity, AttrKind, Registry, Traits};
use crate::types::{broadcast_shapes, ElemType, TensorType, Type};

pub fn register(r: &mut Registry) {
    let pure = Traits::PURE;
    r.op(
        "tg.matmul",
        "numpy matmul: batched and broadcast; transpose_b = true reads b as [..., N, K]",
    )
    .operands(2)
    .results(1)
    .optional_attr("transpose_b", AttrKind::Bool)
    .traits(pure)
    .infer(infer_matmul);
    for (name, summary) in [
        ("tg.reduce_sum", "sum over `axes`"),
        ("tg.reduce_mean", "mean over `axes`"),
        ("tg.reduce_max", "maximum over `axes`"),
        ("tg.reduce_min", "minimum over `axes`"),
    ] {
        r.op(name, summary)
            .operands(1)
            .results(1)
            .attr("axes", AttrKind::Array)
            .optional_attr("keepdims", AttrKind::Bool)
            .traits(pure)
            .infer(infer_reduce);
    }
    r.op(
        "tg.argmax",
        "index of the maximum along `axis` (first, or last if select_last_index), as i64",
    )
    .operands(1)
    .results(1)
    .attr("axis", AttrKind::Int)
    .optional_attr("keepdims", AttrKind::Bool)
    .optional_attr("select_last_index", AttrKind::Bool)
    .traits(pure)
    .infer(infer_argmax);
    r.op("tg.softmax", "softmax along `axis`, computed in f32")
        .operands(1)
        .results(1)
        .attr("axis", AttrKind::Int)
        .traits(pure)
        .infer(infer_float_same);
    r.op(
        "tg.rms_norm",
        "x / sqrt(mean(x^2 over dims axis..) + epsilon) * scale, computed in f32",
    )
    .operands(2)
    .results(1)
    .attr("axis", AttrKind::Int)
    .attr("epsilon", AttrKind::Float)
    .traits(pure)
    .infer(infer_rms_norm);
    r.op(
        "tg.layer_norm",
        "(x - mean) / sqrt(var + epsilon) * scale [+ bias] over dims axis..; optional results: mean, 1/stddev",
    )
    .operands(2..=3)
    .results(Arity(1..=3))
    .attr("axis", AttrKind::Int)
    .attr("epsilon", AttrKind::Float)
    .traits(pure)
    .verify(verify_layer_norm);
    r.op(
        "tg.rope",
        "rotary embedding: the first 2*R lanes of x's last dim rotated by cos/sin [..., R] (halves, or interleaved pairs)",
    )
    .operands(3)
    .results(1)
    .optional_attr("interleaved", AttrKind::Bool)
    .optional_attr("full_width", AttrKind::Bool)
    .traits(pure)
    .infer(infer_rope);
    r.op(
        "tg.rope_cos_sin",
        "cos and sin of position * inv_freq for rotary embedding (rope_type default or llama3), f32",
    )
    .operands(1)
    .results(2)
    .attr("theta", AttrKind::Float)
    .attr("dim", AttrKind::Int)
    .optional_attr("rope_type", AttrKind::Str)
    .optional_attr("factor", AttrKind::Float)
    .optional_attr("low_freq_factor", AttrKind::Float)
    .optional_attr("high_freq_factor", AttrKind::Float)
    .optional_attr("original_max_position_embeddings", AttrKind::Int)
    .traits(pure)
    .infer(infer_rope_cos_sin);
    r.op(
        "tg.kv_append",
        "the cache [ctx, kv_heads, head_dim] with row `pos` replaced by `new` [kv_heads, head_dim]",
    )
    .operands(3)
    .results(1)
    .traits(pure)
    .infer(infer_kv_append);
    r.op(
        "tg.sdpa",
        "softmax(q k^T * scale + mask) v over [.., heads, seq, dim]; GQA by head groups; fully masked rows give 0",
    )
    .operands(3..=4)
    .results(1)
    .attr("scale", AttrKind::Float)
    .traits(pure)
    .infer(infer_sdpa);
    r.op(
        "tg.attention",
        "decode attention of q [heads, head_dim] over cache rows 0..=pos (causal), GQA by head groups",
    )
    .operands(4)
    .results(1)
    .attr("scale", AttrKind::Float)
    .traits(pure)
    .infer(infer_attention);
    r.op(
        "tg.attention_partial",
        "decode attention over part p of P runs of 8-position blocks of rows 0..=pos: [P, heads, dim + 2] f32 of (sum of e^(s-m) v, m, sum of e^(s-m))",
    )
    .operands(4)
    .results(1)
    .attr("scale", AttrKind::Float)
    .attr("parts", AttrKind::Int)
    .traits(pure)
    .infer(infer_attention_partial);
    r.op(
        "tg.attention_combine",
        "decode attention's output [heads, dim] from the parts of tg.attention_partial (rescaled to their common maximum)",
    )
    .operands(1)
    .results(1)
    .traits(pure)
    .verify(verify_attention_combine);
}

/// Positions `lo..hi` of part `p` of `parts` over the rows `0..n` of a decode step: the
/// `ceil(n / 8)` blocks of 8 positions cut into `parts` near-equal runs (with fewer blocks
/// than parts, some runs are empty). `tg.attention_partial`'s definition; the interpreter
/// and the kernel both use it.
pub fn attention_part(n: i64, p: i64, parts: i64) -> (i64, i64) {
    let blocks = (n + 7) / 8;
    let lo = 8 * (p * blocks / parts);
    let hi = (8 * ((p + 1) * blocks / parts)).min(n);
    (lo.min(hi), hi)
}

fn infer_float_same(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let t = tensor_operand(&ins[0], 0)?;
    if !t.elem.is_float() {
        return Err(format!("requires a float tensor, but the operand is {t}"));
    }
    check_axis(int_attr(attrs, "axis")?, t.rank(), "axis")?;
    Ok(vec![ins[0].clone()])
}

/// The shape of numpy's matmul of `a` and `b` (b already in [..., K, N] orientation).
pub fn matmul_shape(a: &[i64], b: &[i64]) -> Result<Vec<i64>, String> {
    if a.is_empty() || b.is_empty() {
        return Err("matmul operands must have rank >= 1".into());
    }
    let a2: Vec<i64> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<i64> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(format!("contraction dimensions differ: {k} and {k2}"));
    }
    let batch = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2])
        .ok_or("batch dimensions do not broadcast")?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(out)
}

fn infer_matmul(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let (a, b) = (tensor_operand(&ins[0], 0)?, tensor_operand(&ins[1], 1)?);
    if a.elem.is_float() != b.elem.is_float() || (!a.elem.is_float() && a.elem != b.elem) {
        return Err(format!(
            "operand element types {} and {} do not mix",
            a.elem, b.elem
        ));
    }
    let mut bs = b.shape.clone();
    if bool_attr(attrs, "transpose_b", false) {
        if bs.len() < 2 {
            return Err("transpose_b needs b of rank >= 2".into());
        }
        let n = bs.len();
        bs.swap(n - 1, n - 2);
    }
    let shape = matmul_shape(&a.shape, &bs).map_err(|e| format!("{e} ({a} x {b})"))?;
    Ok(vec![Type::tensor(shape, a.elem)])
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

fn infer_rope(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let x = tensor_operand(&ins[0], 0)?;
    let (c, s) = (tensor_operand(&ins[1], 1)?, tensor_operand(&ins[2], 2)?);
    if !x.elem.is_float() || !c.elem.is_float() || c != s {
        return Err(format!(
            "needs a float x and float cos/sin of one type; got {x}, {c}, {s}"
        ));
    }
    let (Some(&d), Some(&w)) = (x.shape.last(), c.shape.last()) else {
        return Err("x, cos and sin need rank >= 1".into());
    };
    // full_width: cos/sin have one value per rotated lane (2R), as rotate-half graphs use.
    let full = bool_attr(attrs, "full_width", false);
    if full && w % 2 != 0 {
        return Err(format!("full-width cos/sin need an even width, not {w}"));
    }
    let r = if full { w / 2 } else { w };
    if 2 * r > d {
        return Err(format!("cos/sin cover {} lanes but x has only {d}", 2 * r));
    }
    let lead = &x.shape[..x.rank() - 1];
    if broadcast_shapes(lead, &c.shape[..c.rank() - 1]).as_deref() != Some(lead) {
        return Err(format!(
            "cos/sin {c} do not broadcast over the leading dims of {x}"
        ));
    }
    Ok(vec![ins[0].clone()])
}

fn infer_rope_cos_sin(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let p = tensor_operand(&ins[0], 0)?;
    if p.elem.is_float() {
        return Err(format!("positions must be integers, but are {p}"));
    }
    let dim = int_attr(attrs, "dim")?;
    if dim <= 0 || dim % 2 != 0 {
        return Err(format!("dim must be positive and even, but is {dim}"));
    }
    f64_attr(attrs, "theta")?;
    match attrs.get("rope_type") {
        None => {}
        Some(Attr::Str(t)) if t == "default" => {}
        Some(Attr::Str(t)) if t == "llama3" => {
            for k in ["factor", "low_freq_factor", "high_freq_factor"] {
                f64_attr(attrs, k)?;
            }
            int_attr(attrs, "original_max_position_embeddings")?;
        }
        Some(other) => return Err(format!("unsupported rope_type {other}")),
    }
    let mut shape = p.shape.clone();
    shape.push(dim / 2);
    let t = Type::tensor(shape, ElemType::F32);
    Ok(vec![t.clone(), t])
}

fn check_pos(t: &Type, i: usize) -> Result<(), String> {
    let p = tensor_operand(t, i)?;
    if p.rank() != 0 || p.elem.is_float() {
        return Err(format!(
            "the position must be a rank-0 integer tensor, but is {p}"
        ));
    }
    Ok(())
}

fn infer_kv_append(ins: &[Type], _: &Attrs) -> Result<Vec<Type>, String> {
    let (c, n) = (tensor_operand(&ins[0], 0)?, tensor_operand(&ins[1], 1)?);
    check_pos(&ins[2], 2)?;
    if c.rank() != 3 || n.rank() != 2 || c.shape[1..] != n.shape[..] || c.elem != n.elem {
        return Err(format!("needs a cache [ctx, heads, dim] and a row [heads, dim] of one element type; got {c} and {n}"));
    }
    Ok(vec![ins[0].clone()])
}

fn infer_attention(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let q = tensor_operand(&ins[0], 0)?;
    let (k, v) = (tensor_operand(&ins[1], 1)?, tensor_operand(&ins[2], 2)?);
    check_pos(&ins[3], 3)?;
    f64_attr(attrs, "scale")?;
    if q.rank() != 2 || k.rank() != 3 || k.shape != v.shape || !q.elem.is_float() {
        return Err(format!(
            "needs q [heads, dim] and caches [ctx, kv_heads, dim]; got {q}, {k}, {v}"
        ));
    }
    let (heads, dim, kv_heads) = (q.shape[0], q.shape[1], k.shape[1]);
    if k.shape[2] != dim || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(format!(
            "{heads} query heads of dim {dim} cannot share {kv_heads} kv heads of dim {}",
            k.shape[2]
        ));
    }
    Ok(vec![ins[0].clone()])
}

fn infer_attention_partial(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let parts = int_attr(attrs, "parts")?;
    if parts < 1 {
        return Err(format!("needs at least one part, not {parts}"));
    }
    let t = infer_attention(ins, attrs)?;
    let q = tensor_operand(&t[0], 0)?;
    Ok(vec![Type::tensor(
        vec![parts, q.shape[0], q.shape[1] + 2],
        ElemType::F32,
    )])
}

fn verify_attention_combine(body: &crate::Body, op: crate::OpId) -> Result<(), String> {
    let p = tensor_operand(body.ty(body.ops[op].operands[0]), 0)?;
    let result = body.ty(body.ops[op].results[0]);
    let out = result
        .as_tensor()
        .ok_or_else(|| format!("result must be a tensor, but is {result}"))?;
    if p.rank() != 3 || p.elem != ElemType::F32 || p.shape[2] < 3 {
        return Err(format!(
            "needs the parts of tg.attention_partial, [parts, heads, dim + 2] f32; got {p}"
        ));
    }
    if out.shape != [p.shape[1], p.shape[2] - 2] || !out.elem.is_float() {
        return Err(format!(
            "the result must be a float [{}, {}], not {out}",
            p.shape[1],
            p.shape[2] - 2
        ));
    }
    Ok(())
}

fn infer_sdpa(ins: &[Type], attrs: &Attrs) -> Result<Vec<Type>, String> {
    let q = tensor_operand(&ins[0], 0)?;
    let (k, v) = (tensor_operand(&ins[1], 1)?, tensor_operand(&ins[2], 2)?);
    f64_attr(attrs, "scale")?;
    let r = q.rank();
    if r < 3
        || k.rank() != r
        || v.rank() != r
        || !q.elem.is_float()
        || k.elem != q.elem
        || v.elem != q.elem
    {
        return Err(format!("needs q, k, v of one float type and rank >= 3 ([.., heads, seq, dim]); got {q}, {k}, {v}"));
    }
    let (hq, s, d) = (q.shape[r - 3], q.shape[r - 2], q.shape[r - 1]);
    let (hk, t) = (k.shape[r - 3], k.shape[r - 2]);
    if k.shape[r - 1] != d || v.shape[r - 3] != hk || v.shape[r - 2] != t || hk == 0 || hq % hk != 0
    {
        return Err(format!("q {q}, k {k} and v {v} do not fit together"));
    }
    if q.shape[..r - 3] != k.shape[..r - 3] || q.shape[..r - 3] != v.shape[..r - 3] {
        return Err("q, k and v must have the same batch dims".into());
    }
    if let Some(m) = ins.get(3) {
        let m = tensor_operand(m, 3)?;
        let mut full = q.shape[..r - 1].to_vec();
        full.push(t);
        if broadcast_shapes(&full, &m.shape).as_deref() != Some(&full[..]) || !m.elem.is_float() {
            return Err(format!(
                "the mask {m} does not broadcast to the scores [.., {s}, {t}]"
            ));
        }
    }
    let mut out = q.shape.clone();
    out[r - 1] = v.shape[r - 1];
    Ok(vec![Type::tensor(out, q.elem)])
}

/// Inverse frequencies of rotary embedding for `dim` lanes (HF's `_compute_default_rope_parameters`
/// and `_compute_llama3_parameters`).
pub fn rope_inv_freq(attrs: &Attrs) -> Result<Vec<f64>, String> {
    let theta = f64_attr(attrs, "theta")?;
    let dim = int_attr(attrs, "dim")?;
    let mut inv: Vec<f64> = (0..dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / dim as f64))
        .collect();
    if matches!(attrs.get("rope_type"), Some(Attr::Str(t)) if t == "llama3") {
        let factor = f64_attr(attrs, "factor")?;
        let low = f64_attr(attrs, "low_freq_factor")?;
        let high = f64_attr(attrs, "high_freq_factor")?;
        let old = int_attr(attrs, "original_max_position_embeddings")? as f64;
        let low_wavelen = old / low;
        let high_wavelen = old / high;
        for f in &mut inv {
            let wavelen = 2.0 * std::f64::consts::PI / *f;
            if wavelen > low_wavelen {
                *f /= factor;
            } else if wavelen >= high_wavelen {
                let smooth = (old / wavelen - low) / (high - low);
                *f = (1.0 - smooth) * *f / factor + smooth * *f;
            }
        }
    }
    Ok(inv)
}
