//! Decode attention that takes the step's K row apart from the cache (`fuse{k-row}`).
//!
//! Where the step's K row is normalised per head (Qwen3's q/k norm), it cannot be an epilogue
//! of the q/k/v products: a norm needs a whole head, and a task a head is too slow. It was
//! then a light group of its own between q/k/v and attention, one more phase a layer.
//! Instead, `attention(q, kv_append(kc, k, pos), ..)` becomes `attention(q, kc, .., k')`,
//! where `k'` is a copy of the light ops that compute `k` (its norm and rope): each
//! attention task computes its KV heads' row itself, as a prologue beside the query's
//! (the `attention-prologue` rule), and the original chain with its `kv_append` only
//! updates the cache, after attention has read it (`rebuild` orders a cache's readers before
//! the group that updates it in place). Where the cost model keeps that update in the q/k/v
//! group (projections so small that a task a head is cheap), the row's norm and rope run
//! twice: harmless.

use mkc_ir::dialect::tg;
use mkc_ir::{Body, OpId, OpSpec, ValueId};
use std::collections::HashMap;

/// Light ops a K row's (or a query's) chain may hold after the q/k/v products: what decode
/// attention's tasks compute as their prologue (`attention-prologue`).
pub(crate) const CHAIN_OPS: &[&str] = &[
    tg::Rope::NAME,
    tg::RmsNorm::NAME,
    tg::Reshape::NAME,
    tg::Cast::NAME,
];

/// The light ops computing `v` back to the first heavy or outside value, in block order,
/// when they hold a norm (otherwise the row is an epilogue of its product already).
fn normalised_chain(body: &Body, v: ValueId) -> Option<Vec<OpId>> {
    let mut chain = Vec::new();
    let mut at = v;
    while let Some(d) = body.def_op(at) {
        if !CHAIN_OPS.contains(&body.ops[d].name.as_str()) {
            break;
        }
        chain.push(d);
        at = body.ops[d].operands[0];
    }
    chain.reverse();
    // Leading reshapes and casts stay shared: the copy reads what the original reads after
    // them (one result of the q/k/v group, not two).
    let first = chain.iter().position(|&o| {
        !matches!(
            body.ops[o].name.as_str(),
            tg::Reshape::NAME | tg::Cast::NAME
        )
    })?;
    chain.drain(..first);
    chain
        .iter()
        .any(|&o| body.ops[o].name == tg::RmsNorm::NAME)
        .then_some(chain)
}

/// Rewrites every decode attention of `block_ops` whose K cache is the step's
/// `kv_append` of a normalised row. Returns how many.
pub fn take_k_rows(body: &mut Body, block_ops: &[OpId]) -> u64 {
    let mut n = 0;
    for &a in block_ops {
        let d = &body.ops[a];
        if !matches!(
            d.name.as_str(),
            tg::Attention::NAME | tg::AttentionPartial::NAME
        ) || d.operands.len() != 4
        {
            continue;
        }
        let (kc_new, pos) = (d.operands[1], d.operands[3]);
        let Some(append) = body
            .def_op(kc_new)
            .filter(|&o| body.ops[o].name == tg::KvAppend::NAME)
        else {
            continue;
        };
        let ap = &body.ops[append];
        if ap.operands[2] != pos {
            continue;
        }
        let (kc, k) = (ap.operands[0], ap.operands[1]);
        let Some(chain) = normalised_chain(body, k) else {
            continue;
        };
        // The copy, placed before the attention.
        let mut copy: HashMap<ValueId, ValueId> = HashMap::new();
        for &o in &chain {
            let src = body.ops[o].clone();
            let mut spec = OpSpec::new(src.name.clone())
                .operands(
                    src.operands
                        .iter()
                        .map(|v| *copy.get(v).unwrap_or(v))
                        .collect::<Vec<_>>(),
                )
                .results(
                    src.results
                        .iter()
                        .map(|&r| body.ty(r).clone())
                        .collect::<Vec<_>>(),
                )
                .loc(src.loc);
            for (name, at) in src.attrs.iter() {
                spec = spec.attr(name, at.clone());
            }
            let c = body.create_op(spec);
            body.insert_op_before(a, c);
            for (&r, &cr) in src.results.iter().zip(&body.ops[c].results) {
                copy.insert(r, cr);
            }
        }
        let row = copy[&k];
        let ops = &mut body.ops[a].operands;
        ops[1] = kc;
        ops.push(row);
        n += 1;
    }
    n
}

/// Whether `op`'s results reach the query or K row of a decode attention that takes its K
/// row apart, through light chain ops only (each result used once on the way).
pub fn feeds_attention(body: &Body, op: OpId) -> bool {
    let Some(block) = body.ops[op].parent else {
        return false;
    };
    let block_ops = &body.blocks[block].ops;
    let mut at = op;
    for _ in 0..8 {
        let r = body.ops[at].results[0];
        let users: Vec<OpId> = block_ops
            .iter()
            .copied()
            .filter(|&o| body.ops[o].operands.contains(&r))
            .collect();
        let [u] = users[..] else {
            return false;
        };
        let ud = &body.ops[u];
        match ud.name.as_str() {
            // (Only attention that takes its K row apart: elsewhere the query's rope stays
            // an epilogue of its product.)
            tg::Attention::NAME | tg::AttentionPartial::NAME => {
                return ud.operands.len() == 5 && (ud.operands[0] == r || ud.operands[4] == r)
            }
            name if CHAIN_OPS.contains(&name) && ud.operands[0] == r => at = u,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer's K side: `k` through `chain` (ops over %k2 giving %kr), appended at `%p`,
    /// attention at `%pos`; the rewrites `take_k_rows` makes.
    fn rewrites(chain: &str, append_pos: &str) -> u64 {
        let text = format!(
            r#"
func.func @f(%q: tensor<4x8xf32>, %k: tensor<16xf32>, %g: tensor<8xbf16> {{mkc.weight = "k_norm"}}, %cos: tensor<4xf32>, %sin: tensor<4xf32>, %kc: tensor<16x2x8xf32>, %vc: tensor<16x2x8xf32>, %pos: tensor<i64>, %p: tensor<i64>) -> (tensor<4x8xf32>, tensor<16x2x8xf32>) {{
  %k2 = "tg.reshape"(%k) : (tensor<16xf32>) -> tensor<2x8xf32>
{chain}
  %kc2 = "tg.kv_append"(%kc, %kr, {append_pos}) : (tensor<16x2x8xf32>, tensor<2x8xf32>, tensor<i64>) -> tensor<16x2x8xf32>
  %a = "tg.attention"(%q, %kc2, %vc, %pos) {{scale = 0.3 : f64}} : (tensor<4x8xf32>, tensor<16x2x8xf32>, tensor<16x2x8xf32>, tensor<i64>) -> tensor<4x8xf32>
  return %a, %kc2 : tensor<4x8xf32>, tensor<16x2x8xf32>
}}"#
        );
        let mut body = mkc_ir::parse_text("k_row.mlir", &text).unwrap();
        let func = mkc_ir::dialect::builtin::first_func(&body).unwrap();
        let block = body.entry_block(func, 0).unwrap();
        let ops = body.blocks[block].ops.clone();
        let n = take_k_rows(&mut body, &ops);
        // Whatever it did, the function still verifies.
        let text = mkc_ir::printer::print(&body);
        mkc_ir::parse_text("after.mlir", &text).unwrap();
        n
    }

    const NORM_ROPE: &str = r#"
  %kn = "tg.rms_norm"(%k2, %g) {axis = 1 : i64, epsilon = 1.0e-6 : f64} : (tensor<2x8xf32>, tensor<8xbf16>) -> tensor<2x8xf32>
  %kr = "tg.rope"(%kn, %cos, %sin) : (tensor<2x8xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x8xf32>"#;

    #[test]
    fn a_normalised_k_row_is_taken_apart() {
        assert_eq!(rewrites(NORM_ROPE, "%pos"), 1);
    }

    #[test]
    fn rows_without_a_norm_or_at_another_position_stay() {
        // Rope alone: an epilogue of the K product already.
        let rope = r#"
  %kr = "tg.rope"(%k2, %cos, %sin) : (tensor<2x8xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x8xf32>"#;
        assert_eq!(rewrites(rope, "%pos"), 0);
        // Reshapes and casts only.
        let cast = r#"
  %kr = "tg.cast"(%k2) : (tensor<2x8xf32>) -> tensor<2x8xf32>"#;
        assert_eq!(rewrites(cast, "%pos"), 0);
        // Appended at a position other than the one attention reads up to.
        assert_eq!(rewrites(NORM_ROPE, "%p"), 0);
    }
}
