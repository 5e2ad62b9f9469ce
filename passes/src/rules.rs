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
use mkc_ir::ElemType;

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
            build: |_| commute("tg.mul"),
        },
        Rule {
            name: "commute-add",
            lhs: "(tg.add ?a ?b)",
            build: |_| commute("tg.add"),
        },
        Rule {
            name: "rsqrt",
            lhs: "(tg.reciprocal (tg.sqrt ?x))",
            build: |_| {
                Some(vec![
                    Rhs::Var("?x"),
                    Rhs::Op {
                        name: "tg.rsqrt",
                        attrs: no_attrs(),
                        children: vec![0],
                    },
                ])
            },
        },
        Rule {
            name: "rsqrt-div",
            lhs: "(tg.div ?one (tg.sqrt ?x))",
            build: |m| {
                m.is_const(m.var("?one"), 1.0).then(|| {
                    vec![
                        Rhs::Var("?x"),
                        Rhs::Op {
                            name: "tg.rsqrt",
                            attrs: no_attrs(),
                            children: vec![0],
                        },
                    ]
                })
            },
        },
        // x * sigmoid(x) -> silu(x)
        Rule {
            name: "silu",
            lhs: "(tg.mul ?x ?s)",
            build: |m| {
                let (x, s) = (m.var("?x"), m.var("?s"));
                let is_sigmoid_of_x = m.egraph[s].nodes.iter().any(|n| {
                    n.op.as_str() == "tg.sigmoid"
                        && m.egraph.find(n.children[0]) == m.egraph.find(x)
                });
                is_sigmoid_of_x.then(|| {
                    vec![
                        Rhs::Var("?x"),
                        Rhs::Op {
                            name: "tg.silu",
                            attrs: no_attrs(),
                            children: vec![0],
                        },
                    ]
                })
            },
        },
        // w * (x * rsqrt(mean(x^2, last axis) + eps)) -> rms_norm(x, w)
        Rule {
            name: "rms-norm",
            lhs: "(tg.mul ?w (tg.mul ?x (tg.rsqrt (tg.add ?ms ?eps))))",
            build: rms_norm,
        },
        // x * cos + concat(-x_hi, x_lo) * sin -> rope(x, cos, sin) with full-width tables
        Rule {
            name: "rope-rotate-half",
            lhs: "(tg.add (tg.mul ?x ?cos) (tg.mul ?rot ?sin))",
            build: rope_rotate_half,
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
        .find(|n| n.op.as_str() == "tg.reduce_mean")?;
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
        (n.op.as_str() == "tg.pow"
            && m.egraph.find(n.children[0]) == m.egraph.find(x)
            && m.is_const(n.children[1], 2.0))
            || (n.op.as_str() == "tg.mul"
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
            name: "tg.rms_norm",
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
        if node.op.as_str() != "tg.slice" || m.egraph.find(node.children[0]) != m.egraph.find(x) {
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
        cat.op.as_str() == "tg.concat"
            && cat.children.len() == 2
            && m.egraph.analysis.infos[cat.info as usize]
                .attrs
                .get("axis")
                .and_then(Attr::as_int)
                == Some(last)
            && is_lane_slice(m, cat.children[1], x, 0, half)
            && m.egraph[cat.children[0]].nodes.iter().any(|n| {
                n.op.as_str() == "tg.neg" && is_lane_slice(m, n.children[0], x, half, half)
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
            name: "tg.rope",
            attrs,
            children: vec![0, 1, 2],
        },
    ])
}
