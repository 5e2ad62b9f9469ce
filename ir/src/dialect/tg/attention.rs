//! The decode step's attention and its inputs: rotary embedding (`tg.rope`, and its cos/sin
//! tables `tg.rope_cos_sin`), the KV cache's update (`tg.kv_append`), decode attention over
//! the cache (`tg.attention`, or in parts `tg.attention_partial` and their
//! `tg.attention_combine`) and ONNX's full-sequence `tg.sdpa`. Grouped-query attention
//! throughout: query head h reads KV head h / (heads / kv_heads).

use super::{bool_attr, f64_attr, int_attr, tensor_operand};
use crate::attr::{Attr, Attrs};
use crate::dialect::task::TileBox;
use crate::dialect::tg::elementwise::{broadcast_source, Scalar};
use crate::interpret::{cache_row, Eval};
use crate::op::OpRef;
use crate::registry::{AttrKind, Registry, Traits};
use crate::tensor::Tensor;
use crate::tiling::{full_box, NeedsInput, Region};
use crate::types::{broadcast_shapes, ElemType, TensorType, Type};
use std::rc::Rc;

crate::op_kinds! {
    /// Rotary embedding of x's first lanes by cos/sin tables.
    Rope = "tg.rope",
    /// The cos and sin tables of rotary embedding at a position.
    RopeCosSin = "tg.rope_cos_sin",
    /// The KV cache with the step's row replaced.
    KvAppend = "tg.kv_append",
    /// Full-sequence scaled dot-product attention (ONNX graphs).
    Sdpa = "tg.sdpa",
    /// Decode attention of the step's queries over the cache's rows 0..=pos (K's row pos
    /// from an optional fifth operand, the step's new row, instead of the cache).
    Attention = "tg.attention",
    /// Decode attention over one of `parts` runs of the cache's rows, unnormalised (K's
    /// row pos as `tg.attention`'s).
    AttentionPartial = "tg.attention_partial",
    /// Decode attention's output from its parts.
    AttentionCombine = "tg.attention_combine",
}

/// Query heads a KV head serves (grouped-query attention; 1 without grouping).
pub fn query_group(heads: i64, kv_heads: i64) -> i64 {
    (heads / kv_heads.max(1)).max(1)
}

/// The heads of decode attention (`tg.attention`, `tg.attention_partial`): queries
/// [.., heads, head_dim] over caches [positions, kv_heads, head_dim].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeHeads {
    pub heads: i64,
    pub head_dim: i64,
    pub kv_heads: i64,
    /// Positions the caches hold.
    pub positions: i64,
}

impl DecodeHeads {
    /// From the shapes of the queries and the K cache; None unless they have those ranks.
    pub fn of_shapes(q: &[i64], cache: &[i64]) -> Option<DecodeHeads> {
        if q.len() < 2 || cache.len() != 3 {
            return None;
        }
        Some(DecodeHeads {
            heads: q[q.len() - 2],
            head_dim: q[q.len() - 1],
            kv_heads: cache[1],
            positions: cache[0],
        })
    }

    /// Query heads a KV head serves.
    pub fn group(&self) -> i64 {
        query_group(self.heads, self.kv_heads)
    }
}

/// Decode attention's typed accessors, for both of its ops.
pub trait DecodeAttention {
    /// Its heads (None when the operands are not decode attention's ranks).
    fn decode_heads(&self) -> Option<DecodeHeads>;
}

impl<K> DecodeAttention for OpRef<'_, K>
where
    K: crate::op::OpKind + IsDecodeAttention,
{
    fn decode_heads(&self) -> Option<DecodeHeads> {
        DecodeHeads::of_shapes(&self.operand_type(0)?.shape, &self.operand_type(1)?.shape)
    }
}

/// The op kinds that are decode attention.
pub trait IsDecodeAttention {}
impl IsDecodeAttention for Attention {}
impl IsDecodeAttention for AttentionPartial {}

/// The heads of `op` if it is decode attention (either op).
pub fn decode_heads(body: &crate::Body, op: crate::OpId) -> Option<DecodeHeads> {
    match Attention::of(body, op) {
        Some(a) => a.decode_heads(),
        None => AttentionPartial::of(body, op)?.decode_heads(),
    }
}

impl OpRef<'_, AttentionPartial> {
    /// The runs of the context it is cut into.
    pub fn parts(&self) -> i64 {
        self.int("parts").unwrap_or(1)
    }
}

pub fn register(r: &mut Registry) {
    let pure = Traits::PURE;
    r.op(
        Rope::NAME,
        "rotary embedding: the first 2*R lanes of x's last dim rotated by cos/sin [..., R] (halves, or interleaved pairs)",
    )
    .operands(3)
    .results(1)
    .optional_attr("interleaved", AttrKind::Bool)
    .optional_attr("full_width", AttrKind::Bool)
    .traits(pure)
    .infer(infer_rope)
    .interpret(|e| {
        Ok(vec![rope(
            e.arg(0),
            e.arg(1),
            e.arg(2),
            e.flag("interleaved", false),
            e.flag("full_width", false),
        )])
    })
    .tile(tile_rope);
    r.op(
        RopeCosSin::NAME,
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
    .infer(infer_rope_cos_sin)
    .interpret(rope_cos_sin);
    r.op(
        KvAppend::NAME,
        "the cache [ctx, kv_heads, head_dim] with row `pos` replaced by `new` [kv_heads, head_dim]",
    )
    .operands(3)
    .results(1)
    .traits(pure)
    .infer(infer_kv_append)
    .interpret(kv_append)
    .tile(|n| {
        // In place, the cache's old contents are not read: only the new row.
        let new = n.map(&|b| vec![b[1..].to_vec()]);
        let cache = if n.in_place {
            None
        } else {
            Some(n.out.clone())
        };
        vec![cache, Some(new), n.full(2)]
    });
    r.op(
        Sdpa::NAME,
        "softmax(q k^T * scale + mask) v over [.., heads, seq, dim]; GQA by head groups; fully masked rows give 0",
    )
    .operands(3..=4)
    .results(1)
    .attr("scale", AttrKind::Float)
    .traits(pure | Traits::HEAVY)
    .infer(infer_sdpa)
    .interpret(|e| Ok(vec![sdpa(e.args, e.float("scale")?, e.out_ty(0)?)]));
    r.op(
        Attention::NAME,
        "decode attention of q [heads, head_dim] over cache rows 0..=pos (causal), GQA by head groups; with a fifth operand k_row [kv_heads, head_dim], K's row pos is k_row instead of the cache's",
    )
    .operands(4..=5)
    .results(1)
    .attr("scale", AttrKind::Float)
    .traits(pure | Traits::HEAVY)
    .infer(infer_attention)
    .interpret(interpret_attention)
    .tile(tile_attention);
    r.op(
        AttentionPartial::NAME,
        "decode attention over part p of P runs of 8-position blocks of rows 0..=pos: [P, heads, dim + 2] f32 of (sum of e^(s-m) v, m, sum of e^(s-m)); k_row as tg.attention's",
    )
    .operands(4..=5)
    .results(1)
    .attr("scale", AttrKind::Float)
    .attr("parts", AttrKind::Int)
    .traits(pure | Traits::HEAVY)
    .infer(infer_attention_partial)
    .interpret(interpret_attention)
    .tile(tile_attention_partial);
    r.op(
        AttentionCombine::NAME,
        "decode attention's output [heads, dim] from the parts of tg.attention_partial (rescaled to their common maximum)",
    )
    .operands(1)
    .results(1)
    .traits(pure)
    .verify(verify_attention_combine)
    .interpret(|e| Ok(vec![attention_combine(e.arg(0), e.out_ty(0)?)]))
    .tile(|n| {
        // Every part of the heads a tile outputs, each with its maximum and sum.
        let p = &n.shapes[0];
        if p.len() != 3 {
            return n.all_full();
        }
        vec![Some(n.map(&|b| vec![vec![(0, p[0]), b[0], (0, p[2])]]))]
    });
}

fn rope_cos_sin(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let inv = rope_inv_freq(e.attrs())?;
    let p = e.arg(0);
    let ty = e.out_ty(0)?;
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

fn kv_append(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let (cache, new) = (e.arg(0), e.arg(1));
    let pos = cache_row(cache, e.arg(2))?;
    let row = new.len();
    let start = pos * row;
    Ok(vec![Tensor::from_fn(cache.ty.clone(), |i| {
        if (start..start + row).contains(&i) {
            new.get(i - start)
        } else {
            cache.get(i)
        }
    })])
}

fn interpret_attention(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let (q, v) = (e.arg(0), e.arg(2));
    let pos = cache_row(e.arg(1), e.arg(3))?;
    // With the step's K row apart, the cache's row pos is not used (it may not be written
    // yet): the row takes its place.
    let k = Keys {
        cache: e.arg(1),
        row: e.args.get(4).map(|r| &**r),
        pos,
    };
    let k = &k;
    let (scale, ty) = (e.float("scale")?, e.out_ty(0)?);
    // Which heads (and parts) to compute: those `e.only` reaches, or all.
    let wanted = |idx: &[usize]| {
        e.only.is_none_or(|boxes| {
            boxes.iter().any(|b| {
                idx.iter()
                    .zip(b)
                    .all(|(&i, &(lo, hi))| lo <= i as i64 && (i as i64) < hi)
            })
        })
    };
    Ok(vec![if Attention::is(e.body, e.op) {
        attention(q, k, v, pos, scale, ty, &wanted)
    } else {
        attention_partial(q, k, v, pos, scale, ty, &wanted)
    }])
}

/// The lanes of a rope's last axis that lane `l` reads.
fn rope_partner(l: i64, rotated: i64, interleaved: bool) -> i64 {
    if l >= 2 * rotated {
        l
    } else if interleaved {
        l ^ 1
    } else if l < rotated {
        l + rotated
    } else {
        l - rotated
    }
}

/// A lane of x needs its partner lane too; the tables whole.
fn tile_rope(n: &NeedsInput) -> Vec<Option<Region>> {
    let w = n.shapes[1].last().copied().unwrap_or(0);
    let rotated = if n.flag("full_width") { w / 2 } else { w };
    let inter = n.flag("interleaved");
    let x = n.map(&|b| {
        let (lo, hi) = *b.last().expect("rope input has rank >= 1");
        let mut lanes: Vec<i64> = (lo..hi)
            .flat_map(|l| [l, rope_partner(l, rotated, inter)])
            .collect();
        lanes.sort_unstable();
        lanes.dedup();
        let mut out = Vec::new();
        let mut i = 0;
        while i < lanes.len() {
            let mut j = i;
            while j + 1 < lanes.len() && lanes[j + 1] == lanes[j] + 1 {
                j += 1;
            }
            let mut x = b.clone();
            *x.last_mut().unwrap() = (lanes[i], lanes[j] + 1);
            out.push(x);
            i = j + 1;
        }
        out
    });
    vec![Some(x), n.full(1), n.full(2)]
}

/// The box of a cache [ctx, kv_heads, dim] that query heads `heads` (GQA groups of `group`)
/// read: their KV heads over every position.
fn kv_rows(cache: &[i64], group: i64, heads: (i64, i64)) -> TileBox {
    let mut x = full_box(cache);
    x[1] = (heads.0 / group, (heads.1 + group - 1) / group);
    x
}

/// A tile of heads needs their queries and their KV heads' caches over every position.
fn tile_attention(n: &NeedsInput) -> Vec<Option<Region>> {
    let shapes = &n.shapes;
    let q = &shapes[0];
    let rank = q.len();
    let Some(heads) = DecodeHeads::of_shapes(q, &shapes[1]) else {
        return n.all_full();
    };
    let group = heads.group();
    let rq = n.map(&|b| {
        let mut x = b.clone();
        x[rank - 1] = (0, q[rank - 1]);
        vec![x]
    });
    let rk = n.map(&|b| vec![kv_rows(&shapes[1], group, b[rank - 2])]);
    with_k_row(n, vec![Some(rq), Some(rk.clone()), Some(rk), n.full(3)])
}

/// The step's K row (a fifth operand) of the KV heads whose cache rows a tile reads.
fn with_k_row(n: &NeedsInput, mut needs: Vec<Option<Region>>) -> Vec<Option<Region>> {
    if n.shapes.len() > 4 {
        let row = needs[1]
            .as_ref()
            .map(|r| r.iter().map(|b| b[1..].to_vec()).collect());
        needs.push(row);
    }
    needs
}

/// [parts, heads, dim + 2]: a part reads only its run of positions, but which run is the
/// step's (the position's), so a tile reads its heads' whole cache rows.
fn tile_attention_partial(n: &NeedsInput) -> Vec<Option<Region>> {
    let (q, kc) = (&n.shapes[0], &n.shapes[1]);
    let heads = DecodeHeads::of_shapes(q, kc);
    let (Some(heads), 2) = (heads, q.len()) else {
        return n.all_full();
    };
    let group = heads.group();
    let rq = n.map(&|b| vec![vec![b[1], (0, q[1])]]);
    let rk = n.map(&|b| vec![kv_rows(kc, group, b[1])]);
    with_k_row(n, vec![Some(rq), Some(rk.clone()), Some(rk), n.full(3)])
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
    if let Some(row) = ins.get(4) {
        let row = tensor_operand(row, 4)?;
        if row.shape != k.shape[1..] || row.elem != k.elem {
            return Err(format!(
                "the step's K row must be [{kv_heads}, {dim}] of the cache's element type, not {row}"
            ));
        }
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

/// Decode attention's keys: the K cache, and with the step's K row apart that row in place
/// of the cache's row `pos`.
struct Keys<'a> {
    cache: &'a Tensor,
    row: Option<&'a Tensor>,
    pos: usize,
}

impl Keys<'_> {
    /// Lane `e` of KV head `kh` at position `t`.
    fn at(&self, t: usize, kh: usize, e: usize) -> f64 {
        let (kv_heads, dim) = (
            self.cache.ty.shape[1] as usize,
            self.cache.ty.shape[2] as usize,
        );
        match self.row {
            Some(row) if t == self.pos => row.f(kh * dim + e),
            _ => self.cache.f((t * kv_heads + kh) * dim + e),
        }
    }
}

/// Head `h` of decode attention over cache rows `rows`: (the sum of e^(s - m) v over the
/// rows, m = the largest score s, the sum of e^(s - m)); no rows give (0, -inf, 0).
fn attend(
    q: &Tensor,
    k: &Keys,
    v: &Tensor,
    h: usize,
    rows: std::ops::Range<usize>,
    scale: f64,
) -> (Vec<f64>, f64, f64) {
    let dim = q.ty.shape[1] as usize;
    let kv_heads = k.cache.ty.shape[1] as usize;
    let kh = h / query_group(q.ty.shape[0], k.cache.ty.shape[1]) as usize;
    let scores: Vec<f64> = rows
        .clone()
        .map(|t| {
            (0..dim)
                .map(|e| q.f(h * dim + e) * k.at(t, kh, e))
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

/// Every head `wanted` (by its index in the result) reaches; the others poison.
fn attention(
    q: &Tensor,
    k: &Keys,
    v: &Tensor,
    pos: usize,
    scale: f64,
    ty: TensorType,
    wanted: &dyn Fn(&[usize]) -> bool,
) -> Tensor {
    let (heads, dim) = (q.ty.shape[0] as usize, q.ty.shape[1] as usize);
    let mut out = vec![f64::NAN; heads * dim];
    for h in (0..heads).filter(|&h| wanted(&[h])) {
        let (o, _, l) = attend(q, k, v, h, 0..pos + 1, scale);
        for (e, x) in o.into_iter().enumerate() {
            out[h * dim + e] = x / l;
        }
    }
    Tensor::from_fn(ty, |i| Scalar::F(out[i]))
}

/// `tg.attention_partial`: per part and head, [sum of e^(s - m) v, m, sum of e^(s - m)];
/// every (part, head) `wanted` reaches, the others poison.
fn attention_partial(
    q: &Tensor,
    k: &Keys,
    v: &Tensor,
    pos: usize,
    scale: f64,
    ty: TensorType,
    wanted: &dyn Fn(&[usize]) -> bool,
) -> Tensor {
    let (parts, heads, row) = (
        ty.shape[0] as usize,
        ty.shape[1] as usize,
        ty.shape[2] as usize,
    );
    let mut out = vec![f64::NAN; parts * heads * row];
    for p in 0..parts {
        let (lo, hi) = attention_part(pos as i64 + 1, p as i64, parts as i64);
        for h in (0..heads).filter(|&h| wanted(&[p, h])) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Data;

    fn t(shape: &[i64], v: Vec<f32>) -> Tensor {
        Tensor {
            ty: TensorType::new(shape.to_vec(), ElemType::F32),
            data: Data::F32(v),
        }
    }

    /// Attention's parts, combined, are attention: for every position (short runs leave
    /// parts empty, long ones cut it into uneven runs), parts count and GQA grouping. Both,
    /// restricted to some heads (and parts), equal the whole there and are poison elsewhere.
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
                let k = &Keys {
                    cache: &k,
                    row: None,
                    pos,
                };
                let want = attention(&q, k, &v, pos, 0.3, out.clone(), &|_| true);
                let pty = TensorType::new(vec![parts, heads as i64, dim as i64 + 2], ElemType::F32);
                let p = attention_partial(&q, k, &v, pos, 0.3, pty, &|_| true);
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
                // Restricted to some (part, head)s, those equal the whole; the rest poison.
                let some = |idx: &[usize]| (idx[0] + idx[1]) % 3 == 1;
                let q_only = attention_partial(&q, k, &v, pos, 0.3, p.ty.clone(), &some);
                let row = dim + 2;
                for i in 0..p.len() {
                    let (part, head) = (i / (heads * row), i / row % heads);
                    match some(&[part, head]) {
                        true => assert_eq!(q_only.f(i).to_bits(), p.f(i).to_bits(), "{i}"),
                        false => assert!(q_only.f(i).is_nan(), "{i}"),
                    }
                }
                let one_head = |idx: &[usize]| idx[0] == 2;
                let a_only = attention(&q, k, &v, pos, 0.3, out.clone(), &one_head);
                for i in 0..heads * dim {
                    match i / dim == 2 {
                        true => assert_eq!(a_only.f(i).to_bits(), want.f(i).to_bits(), "{i}"),
                        false => assert!(a_only.f(i).is_nan(), "{i}"),
                    }
                }
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

    /// With the step's K row apart (a fifth operand), attention equals attention over the
    /// cache with that row appended, both whole and in parts, and never uses the cache's
    /// row pos (poison there changes nothing). The row's tile need is its KV heads'.
    #[test]
    fn a_k_row_apart_is_the_appended_cache() {
        let text = r#"
func.func @f(%q: tensor<4x8xf32>, %kc: tensor<16x2x8xf32>, %vc: tensor<16x2x8xf32>, %row: tensor<2x8xf32>, %pos: tensor<i64>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<3x4x10xf32>, tensor<3x4x10xf32>) {
  %kc2 = "tg.kv_append"(%kc, %row, %pos) : (tensor<16x2x8xf32>, tensor<2x8xf32>, tensor<i64>) -> tensor<16x2x8xf32>
  %a = "tg.attention"(%q, %kc2, %vc, %pos) {scale = 0.3 : f64} : (tensor<4x8xf32>, tensor<16x2x8xf32>, tensor<16x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  %b = "tg.attention"(%q, %kc, %vc, %pos, %row) {scale = 0.3 : f64} : (tensor<4x8xf32>, tensor<16x2x8xf32>, tensor<16x2x8xf32>, tensor<i64>, tensor<2x8xf32>) -> tensor<4x8xf32>
  %c = "tg.attention_partial"(%q, %kc2, %vc, %pos) {scale = 0.3 : f64, parts = 3 : i64} : (tensor<4x8xf32>, tensor<16x2x8xf32>, tensor<16x2x8xf32>, tensor<i64>) -> tensor<3x4x10xf32>
  %d = "tg.attention_partial"(%q, %kc, %vc, %pos, %row) {scale = 0.3 : f64, parts = 3 : i64} : (tensor<4x8xf32>, tensor<16x2x8xf32>, tensor<16x2x8xf32>, tensor<i64>, tensor<2x8xf32>) -> tensor<3x4x10xf32>
  return %a, %b, %c, %d : tensor<4x8xf32>, tensor<4x8xf32>, tensor<3x4x10xf32>, tensor<3x4x10xf32>
}"#;
        let body = crate::parse_text("k_row.mlir", text).unwrap();
        let ops: Vec<crate::OpId> = body.walk(body.root).into_iter().collect();
        let named = |n: &str| -> Vec<crate::OpId> {
            ops.iter()
                .copied()
                .filter(|&o| body.ops[o].name == n)
                .collect()
        };
        let wave =
            |n: usize, a: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * a).sin() * 1.7).collect() };
        let q = Rc::new(t(&[4, 8], wave(32, 0.37)));
        let row = Rc::new(t(&[2, 8], wave(16, 0.23)));
        let vc = Rc::new(t(&[16, 2, 8], wave(256, 0.53)));
        let mut no_weights =
            |_: &str, _: &TensorType| -> Result<Rc<Tensor>, String> { Err("no weights".into()) };
        for pos in [0usize, 5, 15] {
            let mut k = wave(256, 0.91);
            k[pos * 16..pos * 16 + 16].fill(f32::NAN);
            let kc = Rc::new(t(&[16, 2, 8], k));
            let p = Rc::new(Tensor {
                ty: TensorType::new(vec![], ElemType::I64),
                data: crate::tensor::Data::I64(vec![pos as i64]),
            });
            let mut run = |op: crate::OpId, args: Vec<Rc<Tensor>>| -> Tensor {
                let mut e = crate::interpret::Eval {
                    body: &body,
                    op,
                    args: &args,
                    weight: &mut no_weights,
                    only: None,
                };
                crate::interpret::eval_op(&mut e).unwrap().remove(0)
            };
            let kc2 = Rc::new(run(
                named(KvAppend::NAME)[0],
                vec![kc.clone(), row.clone(), p.clone()],
            ));
            for name in [Attention::NAME, AttentionPartial::NAME] {
                let [appended, apart] = named(name)[..] else {
                    panic!("two {name}");
                };
                let want = run(
                    appended,
                    vec![q.clone(), kc2.clone(), vc.clone(), p.clone()],
                );
                let got = run(
                    apart,
                    vec![q.clone(), kc.clone(), vc.clone(), p.clone(), row.clone()],
                );
                for i in 0..want.len() {
                    assert_eq!(
                        got.f(i).to_bits(),
                        want.f(i).to_bits(),
                        "{name} at {pos}: {i}"
                    );
                }
            }
        }
        // A tile of query heads 2..4 (KV head 1) needs that KV head's row.
        let apart = named(AttentionPartial::NAME)[1];
        let outs = vec![Some(vec![vec![(0, 3), (2, 4), (0, 10)]])];
        let needs = crate::tiling::operand_needs(&body, apart, &outs, false);
        assert_eq!(needs[4], Some(vec![vec![(1, 2), (0, 8)]]));
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
