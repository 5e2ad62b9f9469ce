//! `split-attention`: decode attention as parts over runs of the context and a combine
//! (flash-decoding). `tg.attention` becomes `tg.attention_partial` (per part and head: the
//! output's unnormalised sum, the largest score and the sum of exponentials over the part's
//! run of positions) and `tg.attention_combine` (the parts rescaled to one maximum and
//! normalised). Tiles of the parts cut the context, so a long context spreads over more
//! SMs instead of every task walking all of it; the combine is light: `fuse` makes it a
//! group of its own, whose tasks `tile` runs on the SM that finishes the last part of their
//! heads (or, with `fuse{combine=prologue}`, a prologue of the output projection).
//!
//! The runs are cut at run time from the step's position (`tg.attention_partial`'s
//! definition), so a short context is spread as evenly as a long one.

use mkc_ir::attr::Attr;
use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::tg;
use mkc_ir::{Body, ElemType, OpId, OpSpec, Type};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;

mkc_passes::pass_options! {
    /// Options of `split-attention`.
    pub struct SplitAttentionOptions {
        /// Parts the context is cut into (at most one per 8 positions of the cache; 1: no split; 0: the target's SMs / heads, at most 16, a task per part and head for every SM).
        parts: i64 = 0 => "parts",
    }
}

pub struct SplitAttention {
    pub options: SplitAttentionOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "split-attention",
        summary:
            "decode attention as parts over runs of the context plus a combine (flash-decoding)",
        anchor: None,
        options: SplitAttentionOptions::describe,
        statistics: &[("split", "attention ops split into parts")],
        create: |o| {
            let options = SplitAttentionOptions::parse(o)?;
            if options.parts < 0 {
                return Err(format!(
                    "parts must be 0 (automatic) or more, not {}",
                    options.parts
                ));
            }
            Ok(Box::new(SplitAttention { options }))
        },
    }
}

impl Pass for SplitAttention {
    fn run(&mut self, body: &mut Body, root: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let sms = mkc_ir::Target::of(body)
            .map_err(|e| Diagnostic::error(body.ops[root].loc, format!("split-attention: {e}")))?
            .sms as i64;
        let mut n = 0;
        for op in body.walk(root) {
            if body.ops[op].name == tg::Attention::NAME && split(body, op, &self.options, sms) {
                n += 1;
            }
        }
        cx.count("split", n);
        Ok(())
    }
}

/// Replaces one `tg.attention` by its parts and their combine; false when the cache is too
/// short for two parts (or the op is not decode attention over [ctx, kv_heads, dim] caches).
fn split(body: &mut Body, op: OpId, o: &SplitAttentionOptions, sms: i64) -> bool {
    let Some(h) = tg::decode_heads(body, op) else {
        return false;
    };
    let d = body.ops[op].clone();
    // (Automatic: a task per part and query head fills the SMs; the tile pass may still
    // merge parts or heads into fewer tasks where that is as fast. At most 16: the combine
    // of a head reads all its parts. `sms / kv_heads` parts make tiles of a KV head's
    // query heads, which share its loads: faster at long contexts, slower at short ones;
    // docs/PERF.md.)
    let parts = match o.parts {
        0 => (sms / h.heads.max(1)).min(16),
        n => n,
    };
    let parts = parts.min((h.positions + 7) / 8);
    if parts < 2 {
        return false;
    }
    let mut spec = OpSpec::new(tg::AttentionPartial::NAME)
        .operands(d.operands.clone())
        .results(vec![Type::tensor(
            vec![parts, h.heads, h.head_dim + 2],
            ElemType::F32,
        )])
        .attr("parts", Attr::Int(parts, ElemType::I64))
        .loc(d.loc);
    for (name, a) in d.attrs.iter() {
        spec = spec.attr(name, a.clone());
    }
    let partial = body.create_op(spec);
    body.insert_op_before(op, partial);
    let combine = body.create_op(
        OpSpec::new(tg::AttentionCombine::NAME)
            .operands(vec![body.ops[partial].results[0]])
            .results(vec![body.ty(d.results[0]).clone()])
            .loc(d.loc),
    );
    body.insert_op_before(op, combine);
    let (old, new) = (d.results[0], body.ops[combine].results[0]);
    body.replace_all_uses(old, new);
    body.erase_op(op);
    true
}
