//! Rewrite rules of equality saturation, in one place. A rule is a left-hand egg pattern
//! over op names and a `build` function that checks what the pattern cannot say (constants,
//! attributes, shapes) and returns the equal right-hand side, or refuses.
//!
//! Write linear patterns (each variable once) and check sharing in `build`: egg looks up a
//! subterm whose variables are already bound by its exact hash, which a pattern node (whose
//! attributes are a wildcard) never equals.
//!
//! Recognition rules assume finite activations (no NaN or infinity in the data), as every
//! inference compiler does; they are otherwise exact rewrites.

use crate::egraph::{Match, Rhs, Rule};
use egg::Id;
use mkc_ir::attr::{Attr, Attrs, F64};
use mkc_ir::dialect::tg;
use mkc_ir::ElemType;
use mkc_ir::{Body, OpId};

fn int(v: i64) -> Attr {
    Attr::Int(v, ElemType::I64)
}

fn no_attrs() -> Attrs {
    Attrs::new()
}

/// The recognition and algebra rules the `raise` pass runs.
pub fn recognition() -> Vec<Rule> {
    vec![
        // Algebra: commutativity exposes the patterns below in either operand order.
        Rule {
            name: "commute-mul",
            lhs: "(tg.mul ?a ?b)",
            build: |_| commute(tg::Mul::NAME),
        },
        Rule {
            name: "commute-add",
            lhs: "(tg.add ?a ?b)",
            build: |_| commute(tg::Add::NAME),
        },
        Rule {
            name: "rsqrt",
            lhs: "(tg.reciprocal (tg.sqrt ?x))",
            build: |_| Some(unary(tg::Rsqrt::NAME)),
        },
        Rule {
            name: "rsqrt-div",
            lhs: "(tg.div ?one (tg.sqrt ?x))",
            build: |m| {
                m.is_const(m.var("?one"), 1.0)
                    .then(|| unary(tg::Rsqrt::NAME))
            },
        },
        // x * sigmoid(x) -> silu(x)
        Rule {
            name: "silu",
            lhs: "(tg.mul ?x ?s)",
            build: |m| {
                let (x, s) = (m.var("?x"), m.var("?s"));
                let is_sigmoid_of_x = m.egraph[s].nodes.iter().any(|n| {
                    n.op.as_str() == tg::Sigmoid::NAME
                        && m.egraph.find(n.children[0]) == m.egraph.find(x)
                });
                is_sigmoid_of_x.then(|| unary(tg::Silu::NAME))
            },
        },
        // w * (x * rsqrt(mean(x^2, last axis) + eps)) -> rms_norm(x, w)
        Rule {
            name: "rms-norm",
            lhs: "(tg.mul ?w (tg.mul ?x (tg.rsqrt (tg.add ?ms ?eps))))",
            build: rms_norm,
        },
        // x @ transpose(W) -> matmul(x, W){transpose_b}: read the weight in its stored layout.
        Rule {
            name: "matmul-transposed-weight",
            lhs: "(tg.matmul ?x ?t)",
            build: matmul_transposed_weight,
        },
        // softmax(q k^T * s + mask) v, with torch's NaN guard, GQA repeat and K^T views -> sdpa
        Rule {
            name: "sdpa",
            lhs: "(tg.matmul ?p ?v)",
            build: sdpa,
        },
        // x * cos + concat(-x_hi, x_lo) * sin -> rope(x, cos, sin) with full-width tables
        Rule {
            name: "rope-rotate-half",
            lhs: "(tg.add (tg.mul ?x ?cos) (tg.mul ?rot ?sin))",
            build: rope_rotate_half,
        },
    ]
}

/// `name(?x)`.
fn unary(name: &'static str) -> Vec<Rhs> {
    vec![
        Rhs::Var("?x"),
        Rhs::Op {
            name,
            attrs: no_attrs(),
            children: vec![0],
        },
    ]
}

fn commute(name: &'static str) -> Option<Vec<Rhs>> {
    Some(vec![
        Rhs::Var("?b"),
        Rhs::Var("?a"),
        Rhs::Op {
            name,
            attrs: no_attrs(),
            children: vec![0, 1],
        },
    ])
}

/// The single float value of a constant class (a splat or a one-element tensor).
fn scalar_const(m: &Match, id: Id) -> Option<f64> {
    let d = m.constant(id)?;
    (d.splat || d.ty.num_elements() == 1).then(|| d.get_f64(0))
}

fn rms_norm(m: &Match) -> Option<Vec<Rhs>> {
    let (x, ms, eps) = (m.var("?x"), m.var("?ms"), m.var("?eps"));
    let xt = m.ty(x)?;
    let last = xt.rank().checked_sub(1)?;
    let eps = scalar_const(m, eps)?;
    // ?ms must be mean(pow(x, 2)) over the last axis, keeping it.
    let mean = m.egraph[ms]
        .nodes
        .iter()
        .find(|n| n.op.as_str() == tg::ReduceMean::NAME)?;
    let attrs = &m.egraph.analysis.infos[mean.info as usize].attrs;
    let axes: Vec<i64> = attrs
        .get("axes")?
        .as_array()?
        .iter()
        .filter_map(Attr::as_int)
        .collect();
    if axes != [last as i64] || attrs.get("keepdims") != Some(&Attr::Bool(true)) {
        return None;
    }
    let sq = mean.children[0];
    let squares = m.egraph[sq].nodes.iter().any(|n| {
        (n.op.as_str() == tg::Pow::NAME
            && m.egraph.find(n.children[0]) == m.egraph.find(x)
            && m.is_const(n.children[1], 2.0))
            || (n.op.as_str() == tg::Mul::NAME
                && m.egraph.find(n.children[0]) == m.egraph.find(x)
                && m.egraph.find(n.children[1]) == m.egraph.find(x))
    });
    if !squares {
        return None;
    }
    let attrs: Attrs = [
        ("axis", int(last as i64)),
        ("epsilon", Attr::Float(F64(eps), ElemType::F64)),
    ]
    .into_iter()
    .collect();
    Some(vec![
        Rhs::Var("?x"),
        Rhs::Var("?w"),
        Rhs::Op {
            name: tg::RmsNorm::NAME,
            attrs,
            children: vec![0, 1],
        },
    ])
}

/// Whether class `id` holds a last-axis slice of `x` covering lanes `from..from+n` (stride 1,
/// every other dim whole).
fn is_lane_slice(m: &Match, id: Id, x: Id, from: i64, n: i64) -> bool {
    let Some(xt) = m.ty(x) else { return false };
    let r = xt.rank();
    m.egraph[id].nodes.iter().any(|node| {
        if node.op.as_str() != tg::Slice::NAME
            || m.egraph.find(node.children[0]) != m.egraph.find(x)
        {
            return false;
        }
        let a = &m.egraph.analysis.infos[node.info as usize].attrs;
        let get = |k: &str| -> Vec<i64> {
            a.get(k)
                .and_then(Attr::as_array)
                .map(|v| v.iter().filter_map(Attr::as_int).collect())
                .unwrap_or_default()
        };
        let (off, size, stride) = (get("offsets"), get("sizes"), get("strides"));
        if off.len() != r || size.len() != r || stride.len() != r {
            return false;
        }
        (0..r).all(|d| {
            stride[d] == 1
                && if d == r - 1 {
                    off[d] == from && size[d] == n
                } else {
                    off[d] == 0 && size[d] == xt.shape[d]
                }
        })
    })
}

fn rope_rotate_half(m: &Match) -> Option<Vec<Rhs>> {
    let (x, rot) = (m.var("?x"), m.var("?rot"));
    let xt = m.ty(x)?;
    let d = *xt.shape.last()?;
    if d % 2 != 0 {
        return None;
    }
    let half = d / 2;
    let last = xt.rank() as i64 - 1;
    // ?rot = concat(neg(x[.., half..]), x[.., ..half]) along the last axis.
    let is_rotate_half = m.egraph[rot].nodes.iter().any(|cat| {
        cat.op.as_str() == tg::Concat::NAME
            && cat.children.len() == 2
            && m.egraph.analysis.infos[cat.info as usize]
                .attrs
                .get("axis")
                .and_then(Attr::as_int)
                == Some(last)
            && is_lane_slice(m, cat.children[1], x, 0, half)
            && m.egraph[cat.children[0]].nodes.iter().any(|n| {
                n.op.as_str() == tg::Neg::NAME && is_lane_slice(m, n.children[0], x, half, half)
            })
    });
    if !is_rotate_half {
        return None;
    }
    let (c, s) = (m.ty(m.var("?cos"))?, m.ty(m.var("?sin"))?);
    if c.shape.last() != Some(&d) || s.shape.last() != Some(&d) {
        return None;
    }
    let attrs: Attrs = [("full_width", Attr::Bool(true))].into_iter().collect();
    Some(vec![
        Rhs::Var("?x"),
        Rhs::Var("?cos"),
        Rhs::Var("?sin"),
        Rhs::Op {
            name: tg::Rope::NAME,
            attrs,
            children: vec![0, 1, 2],
        },
    ])
}

fn ints_of(a: &Attrs, k: &str) -> Vec<i64> {
    a.get(k)
        .and_then(Attr::as_array)
        .map(|v| v.iter().filter_map(Attr::as_int).collect())
        .unwrap_or_default()
}

/// `x` itself, or `x [B, H, T, D]` with each head repeated `g` times
/// (reshape to [B, H, 1, T, D], expand to [B, H, g, T, D], reshape to [B, H*g, T, D]):
/// returns (x, g).
fn unrepeat(m: &Match, id: Id) -> (Id, i64) {
    for (r, _) in m.nodes(id, tg::Reshape::NAME) {
        let e = r.children[0];
        for (ex, _) in m.nodes(e, tg::Expand::NAME) {
            let u = ex.children[0];
            for (un, _) in m.nodes(u, tg::Reshape::NAME) {
                let x = un.children[0];
                let (Some(xt), Some(ut), Some(et), Some(rt)) =
                    (m.ty(x), m.ty(u), m.ty(e), m.ty(id))
                else {
                    continue;
                };
                if xt.rank() != 4 || ut.rank() != 5 || et.rank() != 5 || rt.rank() != 4 {
                    continue;
                }
                let (b, h, t, d) = (xt.shape[0], xt.shape[1], xt.shape[2], xt.shape[3]);
                let g = et.shape[2];
                if ut.shape == [b, h, 1, t, d]
                    && et.shape == [b, h, g, t, d]
                    && rt.shape == [b, h * g, t, d]
                {
                    return (x, g);
                }
            }
        }
    }
    (id, 1)
}

/// `k` transposed in its last two dims, as `transpose` or as torch's
/// reshape(transpose(reshape(k, [B*H, T, D]), [0, 2, 1]), [B, H, D, T]) where the inner
/// reshape may read the head-repeat's expand directly. Returns (k [B, Hkv, T, D], groups).
fn untranspose(m: &Match, id: Id) -> Option<(Id, i64)> {
    let t = m.ty(id)?;
    let r = t.rank();
    for (n, a) in m.nodes(id, tg::Transpose::NAME) {
        let perm = ints_of(a, "perm");
        let mut swap: Vec<i64> = (0..r as i64).collect();
        swap.swap(r - 1, r - 2);
        if perm == swap {
            return Some(unrepeat(m, n.children[0]));
        }
    }
    if r != 4 {
        return None;
    }
    let (b, h, d, tt) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3]);
    for (outer, _) in m.nodes(id, tg::Reshape::NAME) {
        for (tr, a) in m.nodes(outer.children[0], tg::Transpose::NAME) {
            if ints_of(a, "perm") != [0, 2, 1] {
                continue;
            }
            for (inner, _) in m.nodes(tr.children[0], tg::Reshape::NAME) {
                let src = inner.children[0];
                let st = m.ty(src)?;
                if m.ty(tr.children[0])?.shape != [b * h, tt, d] {
                    continue;
                }
                // src is k [B, H, T, D], or the expand [B, Hkv, g, T, D] of a head repeat.
                if st.shape == [b, h, tt, d] {
                    return Some(unrepeat(m, src));
                }
                if st.rank() == 5
                    && st.shape[3..] == [tt, d]
                    && st.shape[0] == b
                    && st.shape[1] * st.shape[2] == h
                {
                    for (ex, _) in m.nodes(src, tg::Expand::NAME) {
                        for (un, _) in m.nodes(ex.children[0], tg::Reshape::NAME) {
                            let k = un.children[0];
                            if m.ty(k)?.shape == [b, st.shape[1], tt, d] {
                                return Some((k, st.shape[2]));
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

/// `x * c` with a scalar constant `c` -> (x, c); otherwise (x, 1).
fn unscale(m: &Match, id: Id) -> (Id, f64) {
    for (n, _) in m.nodes(id, tg::Mul::NAME) {
        for (x, c) in [
            (n.children[0], n.children[1]),
            (n.children[1], n.children[0]),
        ] {
            if let Some(v) = scalar_const(m, c) {
                if m.ty(x) == m.ty(id) {
                    return (x, v);
                }
            }
        }
    }
    (id, 1.0)
}

fn sdpa(m: &Match) -> Option<Vec<Rhs>> {
    let (p, v) = (m.var("?p"), m.var("?v"));
    let pt = m.ty(p)?;
    let last = pt.rank() as i64 - 1;
    if pt.rank() != 4 {
        return None;
    }
    // p = softmax(s) over the last axis, possibly behind a guard that zeroes rows with no
    // attendable key: torch's where(isnan(p), 0, p), or where(max(mask) == -inf, 0, p) as
    // the ONNX importer writes it. Both are what sdpa does with a fully masked row.
    let softmax_input = |c: Id| {
        m.nodes(c, tg::Softmax::NAME)
            .find(|(_, a)| a.get("axis").and_then(Attr::as_int) == Some(last))
            .map(|(n, _)| n.children[0])
    };
    let mut guard_mask: Option<Id> = None;
    let s = softmax_input(p).or_else(|| {
        m.nodes(p, tg::Where::NAME).find_map(|(w, _)| {
            let (c, zero, sm) = (w.children[0], w.children[1], w.children[2]);
            if !m.is_const(zero, 0.0) {
                return None;
            }
            let nan_guard = m
                .nodes(c, tg::IsNan::NAME)
                .any(|(i, _)| m.egraph.find(i.children[0]) == m.egraph.find(sm));
            let row_guard = m.nodes(c, tg::Eq::NAME).find_map(|(eq, _)| {
                let (mx, ninf) = (eq.children[0], eq.children[1]);
                m.is_const(ninf, f64::NEG_INFINITY)
                    .then(|| {
                        m.nodes(mx, tg::ReduceMax::NAME)
                            .find(|(r, a)| {
                                let rank = m.ty(r.children[0]).map_or(0, |t| t.rank() as i64);
                                ints_of(a, "axes") == [rank - 1]
                                    && a.get("keepdims") == Some(&Attr::Bool(true))
                            })
                            .map(|(r, _)| r.children[0])
                    })
                    .flatten()
            });
            if nan_guard {
                softmax_input(sm)
            } else if let Some(mask) = row_guard {
                guard_mask = Some(mask);
                softmax_input(sm)
            } else {
                None
            }
        })
    })?;
    // s = [c0 *] qk [+ mask]
    let mut candidates: Vec<(Id, Option<Id>)> = vec![(s, None)];
    for (a, _) in m.nodes(s, tg::Add::NAME) {
        candidates.push((a.children[0], Some(a.children[1])));
        candidates.push((a.children[1], Some(a.children[0])));
    }
    for (scaled, mask) in candidates {
        // A row guard is only sdpa's semantics when it tests the very mask that is added.
        if let Some(g) = guard_mask {
            if mask.map(|k| m.egraph.find(k)) != Some(m.egraph.find(g)) {
                continue;
            }
        }
        let (qk, c0) = unscale(m, scaled);
        for (mm, a) in m.nodes(qk, tg::MatMul::NAME) {
            let transposed = a.get("transpose_b") == Some(&Attr::Bool(true));
            let (q, c1) = unscale(m, mm.children[0]);
            let (kx, c2) = unscale(m, mm.children[1]);
            // K^T as a view of K, or K read transposed by the matmul itself.
            let found = if transposed {
                Some(unrepeat(m, kx))
            } else {
                untranspose(m, kx)
            };
            let Some((k, gk)) = found else { continue };
            let (vb, gv) = unrepeat(m, v);
            let (qt, kty, vty) = (m.ty(q)?, m.ty(k)?, m.ty(vb)?);
            if qt.rank() != 4
                || kty.rank() != 4
                || vty.rank() != 4
                || gk != gv
                || kty.shape[1] * gk != qt.shape[1]
            {
                continue;
            }
            let attrs: Attrs = [("scale", Attr::Float(F64(c0 * c1 * c2), ElemType::F64))]
                .into_iter()
                .collect();
            let mut rhs = vec![Rhs::Var("?p"), Rhs::Class(q), Rhs::Class(k), Rhs::Class(vb)];
            let mut children = vec![1, 2, 3];
            if let Some(mk) = mask {
                rhs.push(Rhs::Class(mk));
                children.push(4);
            }
            rhs.push(Rhs::Op {
                name: tg::Sdpa::NAME,
                attrs,
                children,
            });
            return Some(rhs);
        }
    }
    None
}

// ------------------------------------------------------------------------------- fusion

/// When a fusion rule applies, in the order `fuse` runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A light producer joins the group of its (heavy) consumer: it runs before it.
    Prologue,
    /// Heavy ops of one kind reading the same input merge into one group.
    Horizontal,
    /// A light consumer joins its producer's group: it runs on the producer's tiles.
    Epilogue,
    /// A product that accumulates onto its result (`tg.matmul_acc`, from `split-k`) joins
    /// the group that computes its input vector: its tasks each take a slice of that
    /// vector and add their part of the product (the cost model is not asked: `split-k`
    /// decided).
    SplitK,
    /// `split-k`'s copy of a sum (the next sum's initial value) joins a heavy group that
    /// reads the sum too, so that the copy is written when the sum is complete, by tasks
    /// that wait for it anyway (a layer's q/k/v reads its input; the cost model is not
    /// asked).
    SplitKCopy,
    /// Light groups split off one heavy group (the cost model kept them out of it) merge.
    Siblings,
    /// Light ops computed from the step's inputs alone join the embedding group.
    StepPrologue,
}

/// `producer -> consumer` may live inside one group (subject to `fuse`'s legality checks:
/// the group graph stays acyclic, and no reduction consumes a heavy op's whole output).
pub struct FusionRule {
    pub name: &'static str,
    pub stage: Stage,
    pub producer: &'static [&'static str],
    pub consumer: &'static [&'static str],
    /// Extra condition on the concrete ops.
    pub when: fn(&Body, OpId, OpId) -> bool,
}

fn always(_: &Body, _: OpId, _: OpId) -> bool {
    true
}

/// Light ops that run on a matmul's output tiles.
const EPILOGUE_OPS: &[&str] = &[
    tg::Add::NAME,
    tg::Sub::NAME,
    tg::Mul::NAME,
    tg::Silu::NAME,
    tg::Sigmoid::NAME,
    tg::Gelu::NAME,
    tg::Reshape::NAME,
    tg::Slice::NAME,
    tg::Split::NAME,
    tg::Cast::NAME,
    tg::Transpose::NAME,
    tg::Rope::NAME,
    tg::RmsNorm::NAME,
    tg::KvAppend::NAME,
    tg::ArgMax::NAME,
    tg::Neg::NAME,
    tg::Concat::NAME,
];

/// The fusion rules `fuse` applies.
pub fn fusion() -> Vec<FusionRule> {
    vec![
        // rms_norm (and layer_norm) into the following matmul(s): every tile recomputes the
        // norm of the (small) input vector instead of a separate task writing it.
        FusionRule {
            name: "norm-prologue",
            stage: Stage::Prologue,
            producer: &[tg::RmsNorm::NAME, tg::LayerNorm::NAME],
            consumer: &[tg::MatMul::NAME],
            when: |b, p, c| b.ops[c].operands[0] == b.ops[p].results[0],
        },
        // Attention's combine (and its reshape to a vector) into the output projection:
        // every tile recomputes the (small) combine of the parts instead of a separate
        // task writing it, one synchronisation fewer per layer. Only with
        // `fuse{combine=prologue}`: by default the combine is a group of its own whose
        // tasks run on the last signal of their parts (no synchronisation either).
        FusionRule {
            name: "combine-prologue",
            stage: Stage::Prologue,
            producer: &[tg::AttentionCombine::NAME, tg::Reshape::NAME],
            consumer: &[tg::Reshape::NAME, tg::MatMul::NAME],
            when: |b, p, c| {
                let from_combine = |o: OpId| {
                    b.ops[o].name == tg::AttentionCombine::NAME
                        || b.def_op(b.ops[o].operands[0])
                            .is_some_and(|d| b.ops[d].name == tg::AttentionCombine::NAME)
                };
                from_combine(p) && b.ops[c].operands[0] == b.ops[p].results[0]
            },
        },
        // The query's per-head norm and rope, and the step's K row (`k-row`), into decode
        // attention: each task computes its heads' rows instead of a group of their own.
        FusionRule {
            name: "attention-prologue",
            stage: Stage::Prologue,
            producer: crate::k_row::CHAIN_OPS,
            consumer: &[
                tg::Attention::NAME,
                tg::AttentionPartial::NAME,
                tg::Rope::NAME,
                tg::RmsNorm::NAME,
                tg::Reshape::NAME,
                tg::Cast::NAME,
            ],
            when: |b, p, _| crate::k_row::feeds_attention(b, p),
        },
        // Weight-side preparation (a bias cast) is read by the op that uses it.
        FusionRule {
            name: "weight-prologue",
            stage: Stage::Prologue,
            producer: &[tg::Cast::NAME, tg::Reshape::NAME],
            consumer: EPILOGUE_OPS,
            when: reads_only_inputs,
        },
        // q/k/v and gate/up: matmuls reading one input become one group (one pass over it).
        FusionRule {
            name: "horizontal-merge",
            stage: Stage::Horizontal,
            producer: &[],
            consumer: &[tg::MatMul::NAME],
            when: |b, x, y| b.ops[x].attrs.get("transpose_b") == b.ops[y].attrs.get("transpose_b"),
        },
        // Bias, residual add, silu(gate) * up, reshapes, q/k norm, rope, KV append, argmax:
        // epilogues of the matmul that produced their input.
        FusionRule {
            name: "matmul-epilogue",
            stage: Stage::Epilogue,
            producer: &[tg::MatMul::NAME],
            consumer: EPILOGUE_OPS,
            when: always,
        },
        FusionRule {
            name: "epilogue-chain",
            stage: Stage::Epilogue,
            producer: EPILOGUE_OPS,
            consumer: EPILOGUE_OPS,
            when: always,
        },
        // The attention output's reshape/transpose to [tokens, hidden] (after the combine of
        // its parts when it is split).
        FusionRule {
            name: "attention-epilogue",
            stage: Stage::Epilogue,
            producer: &[
                tg::Attention::NAME,
                tg::Sdpa::NAME,
                tg::AttentionCombine::NAME,
            ],
            consumer: &[tg::Reshape::NAME, tg::Transpose::NAME],
            when: always,
        },
        // The embedding row's cast.
        FusionRule {
            name: "gather-epilogue",
            stage: Stage::Epilogue,
            producer: &[tg::Gather::NAME],
            consumer: &[tg::Cast::NAME, tg::Reshape::NAME],
            when: always,
        },
        // An MLP's down projection as split-k (`tg.matmul_acc`) into its gate/up tiles.
        FusionRule {
            name: "split-k-consumer",
            stage: Stage::SplitK,
            producer: &[
                tg::MatMul::NAME,
                tg::Mul::NAME,
                tg::Silu::NAME,
                tg::Gelu::NAME,
                tg::Add::NAME,
                tg::Cast::NAME,
                tg::Reshape::NAME,
            ],
            consumer: &[tg::MatMulAcc::NAME],
            when: |b, p, c| b.ops[c].operands[0] == b.ops[p].results[0],
        },
        // split-k's copy of a layer's input into the q/k/v tasks, which read it.
        FusionRule {
            name: "split-k-copy",
            stage: Stage::SplitKCopy,
            producer: &[],
            consumer: &[tg::Cast::NAME],
            when: |b, _, c| is_copy_of_sum(b, c),
        },
        // Light groups fed by one heavy group (q's and k's per-head norm and rope, kept out
        // of the q/k/v group so that its matrix-vector products split finely) become one.
        FusionRule {
            name: "light-siblings",
            stage: Stage::Siblings,
            producer: &[],
            consumer: EPILOGUE_OPS,
            when: always,
        },
        // Rope tables and other per-step constants from the position join the embedding task.
        FusionRule {
            name: "step-prologue",
            stage: Stage::StepPrologue,
            producer: &[
                tg::RopeCosSin::NAME,
                tg::Cast::NAME,
                tg::Reshape::NAME,
                tg::Iota::NAME,
            ],
            consumer: &[tg::Gather::NAME],
            when: always,
        },
    ]
}

/// Whether `c` could be `split-k`'s copy of a sum: a cast to its operand's own type, of a
/// `tg.matmul_acc`'s result (`fuse` checks that it only starts other sums).
fn is_copy_of_sum(body: &Body, c: OpId) -> bool {
    let d = &body.ops[c];
    d.name == tg::Cast::NAME
        && body.ty(d.operands[0]) == body.ty(d.results[0])
        && body
            .def_op(d.operands[0])
            .is_some_and(|p| body.ops[p].name == tg::MatMulAcc::NAME)
}

/// Whether every operand of `p` is a function argument or a constant.
fn reads_only_inputs(body: &Body, p: OpId, _c: OpId) -> bool {
    body.ops[p].operands.iter().all(|&v| match body.def_op(v) {
        None => true,
        Some(d) => body.ops[d].name == tg::Constant::NAME,
    })
}

fn matmul_transposed_weight(m: &Match) -> Option<Vec<Rhs>> {
    let t = m.var("?t");
    let tt = m.ty(t)?;
    if tt.rank() < 2 {
        return None;
    }
    let r = tt.rank();
    let mut swap: Vec<i64> = (0..r as i64).collect();
    swap.swap(r - 1, r - 2);
    let w = m
        .nodes(t, tg::Transpose::NAME)
        .find(|(_, a)| ints_of(a, "perm") == swap)
        .map(|(n, _)| n.children[0])?;
    let attrs: Attrs = [("transpose_b", Attr::Bool(true))].into_iter().collect();
    Some(vec![
        Rhs::Var("?x"),
        Rhs::Class(w),
        Rhs::Op {
            name: tg::MatMul::NAME,
            attrs,
            children: vec![0, 1],
        },
    ])
}
