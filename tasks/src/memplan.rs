//! The memory plan of a step: where every intermediate value lives in one workspace arena
//! (offsets reused once a value is dead), the KV caches' own region, and the packed layout
//! of the weights.
//!
//! Steps are the function's top-level ops in order (at the fused level, one per
//! `fused.group`). A value is live from the step that defines it through the last step
//! that reads it; its bytes are reused only by values defined after that step, because all
//! tasks of a step may still be reading while others write. Returned values live to the
//! end. A result that is an updated KV cache (`tg.kv_append`, directly or yielded from a
//! group) is the cache itself, written in place, and takes no arena space. A sum a
//! split-K product adds onto lives from the step that writes its initial value
//! ([`accumulates_onto`]).
//!
//! Weights are packed in the order the steps first read them in full (a `tg.gather` lookup
//! does not count), so the q/k/v or gate/up weights of one fused group sit side by side and
//! a task streams one contiguous span.

use mkc_ir::dialect::builtin;
use mkc_ir::dialect::builtin::weight_arg_name;
use mkc_ir::dialect::fused;
use mkc_ir::dialect::tg;
use mkc_ir::tiling::accumulates_onto;
use mkc_ir::{Body, OpId, ValueId};
use std::collections::{HashMap, HashSet};

/// Offsets are aligned to this many bytes (a full 128-byte line, twice, for TMA).
pub const ALIGN: u64 = 256;

#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub value: ValueId,
    pub offset: u64,
    pub bytes: u64,
    /// Steps (top-level op positions) from its definition through its last use.
    pub first: usize,
    pub last: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryPlan {
    /// Intermediate values in the workspace arena.
    pub arena: Vec<Placement>,
    pub arena_bytes: u64,
    /// What the arena would need without reuse.
    pub unshared_bytes: u64,
    /// KV caches (function arguments), one after another.
    pub caches: Vec<(ValueId, u64, u64)>,
    pub cache_bytes: u64,
    /// Weights by checkpoint name: (name, offset, bytes) in the packed weight region.
    pub weights: Vec<(String, u64, u64)>,
    pub weight_bytes: u64,
}

fn align(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// The `tg.attention_combine` a group computes its only result from (through row-major
/// reshapes), and the step of the group producing its parts.
pub(crate) fn combine_of(body: &Body, steps: &[OpId], group: OpId) -> Option<(OpId, usize)> {
    let block = body.entry_block(group, 0)?;
    let ops = &body.blocks[block].ops;
    let y = *ops.last()?;
    let mut v = *body.ops[y].operands.first()?;
    let comb = loop {
        let d = body.def_op(v)?;
        match body.ops[d].name.as_str() {
            tg::AttentionCombine::NAME => break d,
            tg::Reshape::NAME => v = body.ops[d].operands[0],
            _ => return None,
        }
    };
    // The parts come in as a block argument: the group's operand, another step's result.
    let arg = body.ops[comb].operands[0];
    let i = body.blocks[block].args.iter().position(|&a| a == arg)?;
    let outer = body.ops[group].operands[i];
    let producer = body.def_op(outer)?;
    let s = steps.iter().position(|&o| o == producer)?;
    Some((comb, s))
}

/// The earliest step whose result step `p`'s op reads (`p` itself when it reads none).
fn feeders(body: &Body, steps: &[OpId], p: usize) -> usize {
    body.ops[steps[p]]
        .operands
        .iter()
        .filter_map(|&v| body.def_op(v))
        .filter_map(|d| steps.iter().position(|&o| o == d))
        .min()
        .map_or(p, |f| f.min(p))
}

/// Whether `v` (a result of a top-level op) is an updated KV cache.
fn is_cache_update(body: &Body, v: ValueId) -> bool {
    let Some(op) = body.def_op(v) else {
        return false;
    };
    let data = &body.ops[op];
    if data.name == tg::KvAppend::NAME {
        return true;
    }
    if data.name != fused::Group::NAME {
        return false;
    }
    let k = data.results.iter().position(|&r| r == v).expect("a result");
    let Some(block) = body.entry_block(op, 0) else {
        return false;
    };
    let yielded = body.blocks[block]
        .ops
        .last()
        .and_then(|&y| body.ops[y].operands.get(k).copied());
    yielded.is_some_and(|y| is_cache_update(body, y))
}

/// Whether `op` (a top-level op) only updates KV caches that no step reads (`read`: what the
/// steps but the return read; the function returns them): nothing in the step waits for it.
fn updates_caches_only(body: &Body, read: &HashSet<ValueId>, op: OpId) -> bool {
    let results = &body.ops[op].results;
    !results.is_empty()
        && results
            .iter()
            .all(|&v| is_cache_update(body, v) && !read.contains(&v))
}

/// The operands a top-level op reads in full: all but the table of a row lookup.
fn full_reads(body: &Body, op: OpId) -> Vec<ValueId> {
    let data = &body.ops[op];
    let Some(block) = body
        .entry_block(op, 0)
        .filter(|_| data.name == fused::Group::NAME)
    else {
        if data.name == tg::Gather::NAME {
            return data.operands.iter().skip(1).copied().collect();
        }
        return data.operands.clone();
    };
    // Inside a group: a region argument used only as a gather table is not read in full.
    let mut read_in_full = HashSet::new();
    for o in body.walk(op) {
        let d = &body.ops[o];
        let skip = usize::from(d.name == tg::Gather::NAME);
        read_in_full.extend(d.operands.iter().skip(skip).copied());
    }
    data.operands
        .iter()
        .zip(&body.blocks[block].args)
        .filter(|(_, a)| read_in_full.contains(*a))
        .map(|(&v, _)| v)
        .collect()
}

pub fn plan_memory(body: &Body, func: OpId) -> Result<MemoryPlan, String> {
    let entry = body
        .entry_block(func, 0)
        .ok_or("the function has no body")?;
    let steps = &body.blocks[entry].ops;
    let args = &body.blocks[entry].args;
    let weight_name = |i: usize| weight_arg_name(body, func, i).map(str::to_string);
    let arg_index: HashMap<ValueId, usize> =
        args.iter().enumerate().map(|(i, &a)| (a, i)).collect();
    let mut plan = MemoryPlan::default();

    // Weights, in the order steps first read them in full; then any read only by lookups.
    let mut placed = vec![false; args.len()];
    let place_weight = |plan: &mut MemoryPlan, i: usize, name: String| {
        let b = body.ty(args[i]).byte_size();
        plan.weights.push((name, plan.weight_bytes, b));
        plan.weight_bytes = align(plan.weight_bytes + b);
    };
    for &op in steps {
        for v in full_reads(body, op) {
            if let Some(&i) = arg_index.get(&v) {
                if let (false, Some(name)) = (placed[i], weight_name(i)) {
                    placed[i] = true;
                    place_weight(&mut plan, i, name);
                }
            }
        }
    }
    for (i, done) in placed.iter_mut().enumerate() {
        if let (false, Some(name)) = (*done, weight_name(i)) {
            *done = true;
            place_weight(&mut plan, i, name);
        }
    }

    // KV caches: the arguments `tg.kv_append` updates, directly or through a group.
    let ret = steps
        .last()
        .filter(|&&o| body.ops[o].name == builtin::Return::NAME)
        .copied();
    let mut cache_args = Vec::new();
    for &op in steps {
        let data = &body.ops[op];
        let inner: Vec<OpId> = if data.name == fused::Group::NAME {
            body.walk(op)
        } else {
            vec![op]
        };
        for o in inner {
            if body.ops[o].name != tg::KvAppend::NAME {
                continue;
            }
            // Follow the cache operand back to a function argument (through the group).
            let mut v = body.ops[o].operands[0];
            if data.name == fused::Group::NAME {
                let block = body.entry_block(op, 0).expect("a group has a body");
                if let Some(k) = body.blocks[block].args.iter().position(|&a| a == v) {
                    v = data.operands[k];
                }
            }
            if arg_index.contains_key(&v) && !cache_args.contains(&v) {
                cache_args.push(v);
            }
        }
    }
    for v in cache_args {
        let b = body.ty(v).byte_size();
        plan.caches.push((v, plan.cache_bytes, b));
        plan.cache_bytes = align(plan.cache_bytes + b);
    }

    // Intermediates: liveness over steps, then first fit in definition order.
    let mut last_use: HashMap<ValueId, usize> = HashMap::new();
    let read: HashSet<ValueId> = steps
        .iter()
        .filter(|&&o| body.ops[o].name != builtin::Return::NAME)
        .flat_map(|&o| body.ops[o].operands.iter().copied())
        .collect();
    for (s, &op) in steps.iter().enumerate() {
        // A step that only updates caches (`fuse{k-row}`'s K row, after attention read the
        // cache) is off the critical path: what it reads stays live to the step's end, so
        // that no later step waits for it to reuse those bytes.
        let last = if updates_caches_only(body, &read, op) {
            steps.len()
        } else {
            s
        };
        for &v in &body.ops[op].operands {
            last_use.insert(v, last.max(last_use.get(&v).copied().unwrap_or(0)));
        }
    }
    if let Some(r) = ret {
        for &v in &body.ops[r].operands {
            last_use.insert(v, steps.len());
        }
    }
    for (s, &op) in steps.iter().enumerate() {
        // Attention's combine may run on the SM of its parts' last task (`tile` makes it
        // so) while other parts still read their inputs, and while tasks of the steps that
        // feed the parts, which its own parts need not wait for (Qwen3's q/k norm and rope
        // cut by heads), still read theirs: it reuses only what is dead before those steps.
        // A sum a split-K product accumulates is written first by the tasks of the step
        // that computes its initial value (`accumulates_onto`).
        let from = if body.ops[op].name == fused::Group::NAME {
            let from =
                combine_of(body, steps, op).map_or(s, |(_, p)| feeders(body, steps, p).min(s));
            accumulates_onto(body, steps, op).map_or(from, |(_, _, p)| p.min(from))
        } else {
            s
        };
        let mut live: Vec<Placement> = plan
            .arena
            .iter()
            .filter(|p| p.last >= from)
            .cloned()
            .collect();
        for &v in &body.ops[op].results {
            if is_cache_update(body, v) {
                continue;
            }
            let b = body.ty(v).byte_size();
            let last = last_use.get(&v).copied().unwrap_or(s);
            plan.unshared_bytes += align(b);
            live.sort_by_key(|p| p.offset);
            let mut offset = 0;
            for p in &live {
                if offset + b <= p.offset {
                    break;
                }
                offset = offset.max(align(p.offset + p.bytes));
            }
            let p = Placement {
                value: v,
                offset,
                bytes: b,
                first: from,
                last,
            };
            plan.arena_bytes = plan.arena_bytes.max(align(offset + b));
            live.push(p.clone());
            plan.arena.push(p);
        }
    }
    Ok(plan)
}

impl MemoryPlan {
    /// Checks that no two values live at the same step share bytes, and that weights and
    /// caches do not overlap within their regions.
    pub fn check(&self) -> Result<(), String> {
        for (i, a) in self.arena.iter().enumerate() {
            for b in &self.arena[i + 1..] {
                let live_together = a.first <= b.last && b.first <= a.last;
                let overlap = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
                if live_together && overlap {
                    return Err(format!(
                        "{} [{}..{}] and {} [{}..{}] are live together and overlap",
                        a.value,
                        a.offset,
                        a.offset + a.bytes,
                        b.value,
                        b.offset,
                        b.offset + b.bytes
                    ));
                }
            }
        }
        let disjoint = |spans: Vec<(u64, u64)>, what: &str| -> Result<(), String> {
            let mut s = spans;
            s.sort();
            for w in s.windows(2) {
                if w[0].0 + w[0].1 > w[1].0 {
                    return Err(format!("{what} overlap at offset {}", w[1].0));
                }
            }
            Ok(())
        };
        disjoint(self.weights.iter().map(|w| (w.1, w.2)).collect(), "weights")?;
        disjoint(self.caches.iter().map(|c| (c.1, c.2)).collect(), "caches")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(src: &str) -> (Body, MemoryPlan) {
        let body = mkc_ir::parse_text("t.mlir", src).unwrap_or_else(|e| panic!("{e}"));
        let func = mkc_ir::dialect::builtin::first_func(&body).unwrap();
        let p = plan_memory(&body, func).unwrap();
        p.check().unwrap();
        (body, p)
    }

    #[test]
    fn dead_values_give_their_bytes_to_later_ones() {
        let (_, p) = plan(
            r#"func.func @f(%x: tensor<64xf32>) -> tensor<64xf32> {
              %a = "tg.exp"(%x) : (tensor<64xf32>) -> tensor<64xf32>
              %b = "tg.exp"(%a) : (tensor<64xf32>) -> tensor<64xf32>
              %c = "tg.exp"(%b) : (tensor<64xf32>) -> tensor<64xf32>
              %d = "tg.exp"(%c) : (tensor<64xf32>) -> tensor<64xf32>
              func.return %d : tensor<64xf32>
            }"#,
        );
        // a (0..256) is dead after step 1, so c reuses it; b and d alternate likewise.
        let offsets: Vec<u64> = p.arena.iter().map(|q| q.offset).collect();
        assert_eq!(offsets, [0, 256, 0, 256]);
        assert_eq!(p.arena_bytes, 512);
        assert_eq!(p.unshared_bytes, 1024);
    }

    #[test]
    fn a_value_read_later_is_not_overwritten() {
        let (_, p) = plan(
            r#"func.func @f(%x: tensor<64xf32>) -> tensor<64xf32> {
              %a = "tg.exp"(%x) : (tensor<64xf32>) -> tensor<64xf32>
              %b = "tg.exp"(%a) : (tensor<64xf32>) -> tensor<64xf32>
              %c = "tg.exp"(%b) : (tensor<64xf32>) -> tensor<64xf32>
              %d = "tg.add"(%a, %c) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
              func.return %d : tensor<64xf32>
            }"#,
        );
        let offsets: Vec<u64> = p.arena.iter().map(|q| q.offset).collect();
        // a lives to step 3: c cannot take its place, but b's.
        assert_eq!(offsets, [0, 256, 512, 256]);
    }

    #[test]
    fn caches_are_updated_in_place_and_weights_packed_in_reading_order() {
        let (body, p) = plan(
            r#"func.func @step(%tok: tensor<i64>, %pos: tensor<i64>, %cache: tensor<16x2x4xbf16>,
                    %emb: tensor<100x8xbf16> {mkc.weight = "emb"},
                    %wk: tensor<8x8xbf16> {mkc.weight = "k"},
                    %wq: tensor<8x8xbf16> {mkc.weight = "q"}) -> (tensor<8xbf16>, tensor<16x2x4xbf16>) {
              %x = "tg.gather"(%emb, %tok) {axis = 0 : i64} : (tensor<100x8xbf16>, tensor<i64>) -> tensor<8xbf16>
              %q = "tg.matmul"(%wq, %x) : (tensor<8x8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
              %k = "tg.matmul"(%wk, %x) : (tensor<8x8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
              %r = "tg.reshape"(%k) : (tensor<8xbf16>) -> tensor<2x4xbf16>
              %c = "tg.kv_append"(%cache, %r, %pos) : (tensor<16x2x4xbf16>, tensor<2x4xbf16>, tensor<i64>) -> tensor<16x2x4xbf16>
              func.return %q, %c : tensor<8xbf16>, tensor<16x2x4xbf16>
            }"#,
        );
        let names: Vec<&str> = p.weights.iter().map(|w| w.0.as_str()).collect();
        assert_eq!(names, ["q", "k", "emb"]);
        assert_eq!(p.weights[1].1, 256);
        assert_eq!(p.caches.len(), 1);
        assert_eq!(p.cache_bytes, 256);
        // x, q, k, r in the arena; the cache update is not.
        assert_eq!(p.arena.len(), 4);
        assert!(p
            .arena
            .iter()
            .all(|q| !body.ty(q.value).to_string().starts_with("tensor<16x")));
    }

    #[test]
    fn the_checker_rejects_overlapping_live_values() {
        let mut p = MemoryPlan::default();
        for (i, first) in [0usize, 1].into_iter().enumerate() {
            p.arena.push(Placement {
                value: ValueId::from_u32(i as u32),
                offset: 0,
                bytes: 64,
                first,
                last: 2,
            });
        }
        assert!(p
            .check()
            .unwrap_err()
            .contains("are live together and overlap"));
    }
}
