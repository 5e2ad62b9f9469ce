//! mkc-fusion: the fused level. It decides which tensor-level (`tg`) ops become one task
//! kind of the megakernel and groups them into `fused.group`s.
//!
//! It owns: the e-graph bridge ([`egraph`]: an egg language over `tg`), the rewrite and
//! fusion rule tables ([`rules`]), the fusion cost model ([`cost`]), and the passes `raise`
//! (equality saturation alone: recognise rms_norm, rope, silu, attention in decomposed
//! graphs) and `fuse` (saturation, then grouping under the rules and the cost model; with
//! `k-row`, attention first takes a per-head-normalised K row apart, [`k_row`]). It does
//! not own the tensor-level ops (`mkc-ir`), tiling or scheduling (`mkc-tasks`).

pub mod cost;
pub mod egraph;
pub mod fuse;
pub mod k_row;
pub mod raise;
pub mod rules;

/// Registers this crate's passes: `raise`, `fuse`.
pub fn register_passes(r: &mut mkc_passes::PassRegistry) {
    r.register(raise::info());
    r.register(fuse::info());
}

#[doc = include_str!("../../docs/writing-a-fusion-rule.md")]
pub mod walkthrough {}
