//! Decode attention in three rounds (scores, their max and sum, the output), its parts'
//! windows over the step's positions, and the combine of the parts.

use crate::attention_online::*;
use crate::gen::*;
use crate::megakernel::trace_mark;
use crate::ops::{temp, OpEmit};
use crate::plan::PlanCx;
use crate::scratch::*;
use mkc_ir::attr::Attr;
use mkc_ir::dialect::kernel::{AttentionAlgorithm, Choice, KvLoads, Place, TraceMark};
use mkc_ir::dialect::task::TileBox;
use mkc_ir::dialect::tg::{self, query_group};
use mkc_ir::ElemType;

impl Gen {
    /// Attention: the KV head of query head `h` (GQA groups of `group`), and the first of the
    /// `per` head lanes of sub-lane `si`.
    pub(crate) fn kv_head_and_first_lane(
        &mut self,
        h: &str,
        group: i64,
        si: &str,
        per: i64,
    ) -> (String, String) {
        let gr = self.i64c(group);
        let kvi = self.op(format!("arith.divsi {h}, {gr} : i64"));
        let perc = self.i64c(per);
        let d0 = self.op(format!("arith.muli {si}, {perc} : i64"));
        (kvi, d0)
    }
}

/// How decode attention's parts cut the step's positions 0..=pos
/// (`mkc_ir::dialect::tg::attention_part`): blocks of 8 positions, ceil(blocks / parts)
/// at most a part.
pub(crate) struct PartWindows {
    /// Positions the step reads: pos + 1, at most the cache's length.
    pub(crate) upto: String,
    /// Blocks of 8 positions in 0..upto.
    pub(crate) blocks: String,
    /// The number of parts (a constant).
    pub(crate) npc: String,
}

impl PartWindows {
    pub(crate) fn new(g: &mut Gen, pos: &View, ctx: i64, parts: i64) -> Result<Self, String> {
        let pos = g.load(pos, &[])?;
        let one = g.i64c(1);
        let cctx = g.i64c(ctx);
        let upto = g.op(format!("arith.addi {pos}, {one} : i64"));
        let upto = g.op(format!("arith.minsi {upto}, {cctx} : i64"));
        let (c7, c8) = (g.i64c(7), g.i64c(8));
        let blocks = g.op(format!("arith.addi {upto}, {c7} : i64"));
        let blocks = g.op(format!("arith.divsi {blocks}, {c8} : i64"));
        let npc = g.i64c(parts);
        Ok(PartWindows { upto, blocks, npc })
    }

    /// The step's position (the last of the positions it reads).
    pub(crate) fn last(&self, g: &mut Gen) -> String {
        let one = g.i64c(1);
        g.op(format!("arith.subi {}, {one} : i64", self.upto))
    }

    /// Positions lo..hi of part `p`.
    pub(crate) fn window(&self, g: &mut Gen, p: &str) -> (String, String) {
        let (blocks, npc, upto) = (&self.blocks, &self.npc, &self.upto);
        let c8 = g.i64c(8);
        let a = g.op(format!("arith.muli {p}, {blocks} : i64"));
        let a = g.op(format!("arith.divsi {a}, {npc} : i64"));
        let c_p1 = g.i64c(1);
        let p1 = g.op(format!("arith.addi {p}, {c_p1} : i64"));
        let b = g.op(format!("arith.muli {p1}, {blocks} : i64"));
        let b = g.op(format!("arith.divsi {b}, {npc} : i64"));
        let lo = g.op(format!("arith.muli {a}, {c8} : i64"));
        let hi = g.op(format!("arith.muli {b}, {c8} : i64"));
        let hi = g.op(format!("arith.minsi {hi}, {upto} : i64"));
        let lo = g.op(format!("arith.minsi {lo}, {hi} : i64"));
        (lo, hi)
    }
}

/// Decode attention of q [heads, dim] over the caches' rows 0..=pos: `tg.attention` (`parts`
/// None: the normalised output [heads, dim]) or `tg.attention_partial` (`parts` P: per part
/// and head of the boxes, the unnormalised output, the largest score and the sum of
/// exponentials over the part's run of positions, [P, heads, dim + 2]). Three rounds, each
/// over the (part, head) rows the boxes need: the scores of the row's run into scratch, the
/// row's max and sum, then the output lanes.
pub(crate) fn emit_attention(g: &mut Gen, cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let (ins, need, res) = (&e.ins, e.need, &e.res);
    let scale = e.d.attrs.get("scale").and_then(Attr::as_f64).unwrap_or(1.0);
    let parts = (e.name == tg::AttentionPartial::NAME).then(|| e.int_attr("parts").unwrap_or(1));
    let (q, kc, vc) = (&ins[0], &ins[1], &ins[2]);
    let (heads, dim) = (q.shape[0], q.shape[1]);
    let (ctx, kvh) = (kc.shape[0], kc.shape[1]);
    let group = query_group(heads, kvh);
    let np = parts.unwrap_or(1).max(1);
    let Choice::Attention {
        algorithm,
        scores: score_loads,
        values: value_loads,
        lanes: group_lanes,
    } = e.plan.choice
    else {
        return Err("internal error: the plan gives attention no algorithm".into());
    };
    if algorithm == AttentionAlgorithm::Online {
        return emit_attention_online(g, cx, e, scale, np);
    }
    let group_lanes = group_lanes as i64;
    // The result's axes: [parts,] heads, lanes.
    let (ha, la) = if parts.is_some() { (1, 2) } else { (0, 1) };
    // The parts and heads needed: the hulls of the needed boxes.
    let hull = |g: &mut Gen, axis: usize| {
        let (mut lo, mut hi) = need[0][axis].clone();
        for b in &need[1..] {
            lo = g.op(format!("arith.minsi {lo}, {} : i64", b[axis].0));
            hi = g.op(format!("arith.maxsi {hi}, {} : i64", b[axis].1));
        }
        (lo, hi)
    };
    let (h0, h1) = hull(g, ha);
    let (p0, p1) = match parts {
        Some(_) => hull(g, 0),
        None => (g.i64c(0), g.i64c(1)),
    };
    let z0 = g.i64c(0);
    // A part's run of the step's positions is at most `run` long (its 8-position blocks
    // are ceil(blocks / parts) at most): the scores' scratch is indexed from the run's start.
    let run = 8 * (((ctx + 7) / 8 + np - 1) / np);
    // The scores and per-row statistics of the task's rows only (one box: its parts and
    // heads; every task of the code has a box of these extents, which the code's key
    // carries: `plan_task`), so that they fit in shared memory: sized for every part and
    // head they would go to L2 at long contexts.
    let (wp, wh) = match cx.extents.as_slice() {
        [b] => (
            if parts.is_some() { b[0].1 - b[0].0 } else { 1 },
            b[ha].1 - b[ha].0,
        ),
        _ => (np, heads),
    };
    let origin = if cx.extents.len() == 1 {
        vec![p0.clone(), h0.clone()]
    } else {
        vec![z0.clone(), z0.clone()]
    };
    let scores = cx.place_window(
        g,
        temp(e, 0)?,
        &[np, heads, run],
        &[wp, wh, run],
        &origin,
        ElemType::F32,
    )?;
    let parts_of = PartWindows::new(g, &ins[3], ctx, np)?;
    let (blocks, npc) = (parts_of.blocks.clone(), parts_of.npc.clone());
    let (c7, c8) = (g.i64c(7), g.i64c(8));
    let c_most = g.i64c(np - 1);
    let most = g.op(format!("arith.addi {blocks}, {c_most} : i64"));
    let most = g.op(format!("arith.divsi {most}, {npc} : i64"));
    let z = g.i64c(0);
    // With the cache stored as bf16, positions contiguous (a head's lane over all
    // positions is one span) and aligned, a lane loads 8 positions of one lane of k
    // at once (16 bytes): a warp per (row, blocks of 8 positions), `sub` lanes per
    // block each with `per` lanes of q, their 8 partial dots met by shuffles. (The
    // scalar path below loads 2 bytes at a time: 8 times the load instructions.)
    let (per, sub) = vector_lanes(dim);
    let fast = score_loads == KvLoads::Vector;
    let fast_v = value_loads == KvLoads::Vector;
    // A part's query heads that share a KV head share its loads: a warp loads a block of
    // K (or V) once for every query head of the task in its group.
    let shared = score_loads == KvLoads::Group;
    let r = Rounds {
        q,
        kc,
        vc,
        k_row: ins.get(4),
        need,
        res,
        scale,
        parts,
        dim,
        group,
        ha,
        la,
        h0,
        h1,
        p0,
        p1,
        z,
        c7,
        c8,
        most,
        scores,
        parts_of,
        per,
        sub,
    };
    if shared {
        scores_group(g, &r)?;
    } else if fast {
        scores_vector(g, &r)?;
    } else {
        scores_scalar(g, &r)?;
    }
    g.barrier();
    trace_mark(g, TraceMark::AttentionScores);
    let stats = cx.place_window(
        g,
        temp(e, 1)?,
        &[np, heads, 2],
        &[wp, wh, 2],
        &origin,
        ElemType::F32,
    )?;
    row_stats(g, &r, &stats)?;
    g.barrier();
    trace_mark(g, TraceMark::AttentionStats);
    // The output: a warp per (row, group of `lanes` lanes, the plan's) of the boxes,
    // 32 / lanes threads per lane each taking every (32 / lanes)-th position or block of 8
    // positions of the row's run: a warp's load covers consecutive positions of its lanes
    // in the cache's storage; the threads of a lane meet by shuffles.
    if shared {
        return attention_output_shared(
            g,
            &AttentionOutput {
                need,
                res,
                vc,
                scores: &r.scores,
                dim,
                group,
                lanes: group_lanes,
                ha,
                la,
            },
            &|g, p| r.parts_of.window(g, p),
        );
    }
    output_rows(g, &r, &stats, fast_v, group_lanes)
}

/// What the three rounds of decode attention share.
struct Rounds<'a> {
    q: &'a View,
    kc: &'a View,
    vc: &'a View,
    /// The step's K row [kv_heads, dim] apart from the cache (`tg.attention`'s fifth
    /// operand): the cache's row pos is not read for the score at pos.
    k_row: Option<&'a View>,
    need: &'a [RBox],
    res: &'a View,
    scale: f64,
    parts: Option<i64>,
    dim: i64,
    group: i64,
    /// The result's axes of heads and lanes.
    ha: usize,
    la: usize,
    /// The hulls of the needed heads and parts.
    h0: String,
    h1: String,
    p0: String,
    p1: String,
    z: String,
    c7: String,
    c8: String,
    /// The most blocks of 8 positions a part's run holds.
    most: String,
    scores: View,
    parts_of: PartWindows,
    /// A thread's lanes of a head, and the lanes that share a position ([`vector_lanes`]).
    per: i64,
    sub: i64,
}

/// The scores when a warp loads a block of K once for every query head of the task in its
/// KV group: a warp per (part, KV head, blocks of 8 positions).
fn scores_group(g: &mut Gen, r: &Rounds) -> Result<(), String> {
    let Rounds {
        h0,
        h1,
        p0,
        p1,
        z,
        c7,
        c8,
        most,
        scores,
        ..
    } = r;
    let q = r.q;
    let kc = r.kc;
    let scale = r.scale;
    let group = r.group;
    let per = r.per;
    let sub = r.sub;
    let window = |g: &mut Gen, p: &str| r.parts_of.window(g, p);
    let gr = g.i64c(group);
    let g1 = g.i64c(group - 1);
    let k0 = g.op(format!("arith.divsi {h0}, {gr} : i64"));
    let k1 = g.op(format!("arith.addi {h1}, {g1} : i64"));
    let k1 = g.op(format!("arith.divsi {k1}, {gr} : i64"));
    let bpw = 32 / sub;
    let bpwc = g.i64c(bpw);
    let c_items = g.i64c(bpw - 1);
    let items = g.op(format!("arith.addi {most}, {c_items} : i64"));
    let items = g.op(format!("arith.divsi {items}, {bpwc} : i64"));
    let zero = g.f32c(0.0);
    let sc = g.f32c(scale);
    let rows = vec![(p0.clone(), p1.clone()), (k0, k1), (z.clone(), items)];
    g.for_region_warp(&[rows], &mut |g, o| {
        let (lo, hi) = window(g, &o[0]);
        let (bi, si) = g.lane_split(sub);
        let first = g.op(format!("arith.divsi {lo}, {c8} : i64"));
        let b0 = g.op(format!("arith.muli {}, {bpwc} : i64", o[2]));
        let b = g.op(format!("arith.addi {first}, {b0} : i64"));
        let b = g.op(format!("arith.addi {b}, {bi} : i64"));
        let end = g.op(format!("arith.addi {hi}, {c7} : i64"));
        let end = g.op(format!("arith.divsi {end}, {c8} : i64"));
        let one = g.i64c(1);
        let lastb = g.op(format!("arith.subi {end}, {one} : i64"));
        let bc = g.op(format!("arith.minsi {b}, {lastb} : i64"));
        let bc = g.op(format!("arith.maxsi {bc}, {z} : i64"));
        let q0 = g.op(format!("arith.muli {bc}, {c8} : i64"));
        let kvi = o[1].clone();
        let perc = g.i64c(per);
        let d0 = g.op(format!("arith.muli {si}, {perc} : i64"));
        let mut kv = Vec::new();
        let mut lanes = Vec::new();
        for dd in 0..per {
            let ddc = g.i64c(dd);
            let dl = g.op(format!("arith.addi {d0}, {ddc} : i64"));
            let kp = g.ptr(kc, &[q0.clone(), kvi.clone(), dl.clone()]);
            kv.push(g.op(format!(
                "llvm.load {kp} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<8xbf16>"
            )));
            lanes.push(dl);
        }
        let lead = g.op(format!("arith.cmpi eq, {si}, {z} : i64"));
        let inb = g.op(format!("arith.cmpi slt, {b}, {end} : i64"));
        let lead = g.op(format!("arith.andi {lead}, {inb} : i1"));
        let grc = g.i64c(group);
        let hbase = g.op(format!("arith.muli {kvi}, {grc} : i64"));
        // The task's query heads of this KV head, one after another (a loop with bounds
        // known at run time: unrolled, every head's dots at once would spill).
        let hend = g.op(format!("arith.addi {hbase}, {grc} : i64"));
        let hfrom = g.op(format!("arith.maxsi {hbase}, {h0} : i64"));
        let hto = g.op(format!("arith.minsi {hend}, {h1} : i64"));
        let hfi = g.op(format!("arith.index_cast {hfrom} : i64 to index"));
        let hti = g.op(format!("arith.index_cast {hto} : i64 to index"));
        let j = g.fresh();
        g.open(format!("scf.for {j} = {hfi} to {hti} step %c1_idx {{"));
        {
            let h = g.op(format!("arith.index_cast {j} : index to i64"));
            let qs: Vec<String> = lanes
                .iter()
                .map(|dl| g.load(q, &[h.clone(), dl.clone()]))
                .collect::<Result<_, _>>()?;
            // (K widened per head: kept as bf16 across the loop, it takes half the
            // registers.)
            let kf: Vec<String> = kv
                .iter()
                .map(|k| g.op(format!("arith.extf {k} : vector<8xbf16> to vector<8xf32>")))
                .collect();
            let mut acc: Vec<String> = (0..8).map(|_| zero.clone()).collect();
            for (qv, k) in qs.iter().zip(&kf) {
                for (jj, a) in acc.iter_mut().enumerate() {
                    let c = g.op(format!("arith.constant {jj} : i32"));
                    let e = g.op(format!(
                        "llvm.extractelement {k}[{c} : i32] : vector<8xf32>"
                    ));
                    let m = g.op(format!("arith.mulf {qv}, {e} : f32"));
                    *a = g.op(format!("arith.addf {a}, {m} : f32"));
                }
            }
            let lead_h = lead.clone();
            for (jj, a) in acc.into_iter().enumerate() {
                let dot = g.lanes_combine(a, sub, false);
                let jjc = g.i64c(jj as i64);
                let p = g.op(format!("arith.addi {q0}, {jjc} : i64"));
                let valid = g.op(format!("arith.cmpi slt, {p}, {hi} : i64"));
                let st = g.op(format!("arith.andi {lead_h}, {valid} : i1"));
                let v = g.op(format!("arith.mulf {dot}, {sc} : f32"));
                let t = g.op(format!("arith.subi {p}, {lo} : i64"));
                g.open(format!("scf.if {st} {{"));
                g.store(scores, &[o[0].clone(), h.clone(), t], &v)?;
                g.close("}");
            }
        }
        g.close("}");
        Ok(())
    })?;
    Ok(())
}

/// The scores with a bf16 cache whose positions are contiguous: a warp per (row, blocks of
/// 8 positions), `sub` lanes per block each with `per` lanes of q, their 8 partial dots met
/// by shuffles.
fn scores_vector(g: &mut Gen, r: &Rounds) -> Result<(), String> {
    let Rounds {
        h0,
        h1,
        p0,
        p1,
        z,
        c7,
        c8,
        most,
        scores,
        ..
    } = r;
    let q = r.q;
    let kc = r.kc;
    let scale = r.scale;
    let group = r.group;
    let per = r.per;
    let sub = r.sub;
    let window = |g: &mut Gen, p: &str| r.parts_of.window(g, p);
    let bpw = 32 / sub;
    let bpwc = g.i64c(bpw);
    let c_items = g.i64c(bpw - 1);
    let items = g.op(format!("arith.addi {most}, {c_items} : i64"));
    let items = g.op(format!("arith.divsi {items}, {bpwc} : i64"));
    let zero = g.f32c(0.0);
    let sc = g.f32c(scale);
    let rows = vec![
        (p0.clone(), p1.clone()),
        (h0.clone(), h1.clone()),
        (z.clone(), items),
    ];
    g.for_region_warp(&[rows], &mut |g, o| {
        let (lo, hi) = window(g, &o[0]);
        let (bi, si) = g.lane_split(sub);
        // A block past the run's last loads the last (and stores nothing).
        let (first, end) = run_blocks(g, &lo, &hi, c7, c8);
        let lastb = last_of(g, &end);
        let (kvi, d0) = g.kv_head_and_first_lane(&o[1], group, &si, per);
        // One pointer held: the thread's first lane of K at position 0; its other lanes
        // are a constant stride on, a block 16 bytes on (the block's arithmetic is the
        // same for every lane: LLVM keeps one copy).
        let row0 = g.ptr(kc, &[z.clone(), kvi.clone(), d0.clone()]);
        let lane_bytes = kc.strides[2] as i64 * 2;
        let at = |g: &mut Gen, dd: i64, item: &str| {
            let b0 = g.op(format!("arith.muli {item}, {bpwc} : i64"));
            let b = g.op(format!("arith.addi {first}, {b0} : i64"));
            let b = g.op(format!("arith.addi {b}, {bi} : i64"));
            let bc = g.op(format!("arith.minsi {b}, {lastb} : i64"));
            let bc = g.op(format!("arith.maxsi {bc}, {z} : i64"));
            let c16 = g.i64c(16);
            let off = g.op(format!("arith.muli {bc}, {c16} : i64"));
            let rc = g.i64c(dd * lane_bytes);
            let off = g.op(format!("arith.addi {off}, {rc} : i64"));
            let p = g.op(format!(
                "llvm.getelementptr {row0}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            (p, b, bc)
        };
        let mut loaded = Vec::new();
        let mut block = None;
        for dd in 0..per {
            let ddc = g.i64c(dd);
            let dl = g.op(format!("arith.addi {d0}, {ddc} : i64"));
            let qv = g.load(q, &[o[1].clone(), dl])?;
            let (kp, b, bc) = at(g, dd, &o[2]);
            let kv = g.op(format!(
                "llvm.load {kp} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<8xbf16>"
            ));
            loaded.push((qv, kv));
            block.get_or_insert((b, bc));
        }
        let (b, bc) = block.expect("a lane or more");
        let q0 = g.op(format!("arith.muli {bc}, {c8} : i64"));
        let mut acc: Vec<String> = (0..8).map(|_| zero.clone()).collect();
        for (qv, kv) in loaded {
            let kf = g.op(format!("arith.extf {kv} : vector<8xbf16> to vector<8xf32>"));
            for (j, a) in acc.iter_mut().enumerate() {
                let c = g.op(format!("arith.constant {j} : i32"));
                let e = g.op(format!(
                    "llvm.extractelement {kf}[{c} : i32] : vector<8xf32>"
                ));
                let m = g.op(format!("arith.mulf {qv}, {e} : f32"));
                *a = g.op(format!("arith.addf {a}, {m} : f32"));
            }
        }
        let inb = g.op(format!("arith.cmpi slt, {b}, {end} : i64"));
        if sub >= 8 {
            // The 8 dots summed over the block's lanes by a reduce-scatter: it halves them at
            // offsets sub/2, sub/4, sub/8, so those bits of a lane's place in its block name
            // the position it holds; the lanes below sub/8 hold copies, the lowest stores.
            let (held, splits) = g.lanes_reduce_scatter(acc, sub);
            if held.len() != 1 || splits != [sub / 2, sub / 4, sub / 8] {
                return Err(
                    "internal error: the scores' reduce-scatter left a lane other than one sum"
                        .into(),
                );
            }
            let shift = g.i64c((sub / 8).trailing_zeros() as i64);
            let j = g.op(format!("arith.shrsi {si}, {shift} : i64"));
            let low = g.i64c(sub / 8 - 1);
            let lowb = g.op(format!("arith.andi {si}, {low} : i64"));
            let lead = g.op(format!("arith.cmpi eq, {lowb}, {z} : i64"));
            let lead = g.op(format!("arith.andi {lead}, {inb} : i1"));
            let p = g.op(format!("arith.addi {q0}, {j} : i64"));
            let valid = g.op(format!("arith.cmpi slt, {p}, {hi} : i64"));
            let st = g.op(format!("arith.andi {lead}, {valid} : i1"));
            let v = g.op(format!("arith.mulf {}, {sc} : f32", held[0]));
            let t = g.op(format!("arith.subi {p}, {lo} : i64"));
            g.open(format!("scf.if {st} {{"));
            g.store(scores, &[o[0].clone(), o[1].clone(), t], &v)?;
            g.close("}");
            return Ok(());
        }
        let lead = g.op(format!("arith.cmpi eq, {si}, {z} : i64"));
        let lead = g.op(format!("arith.andi {lead}, {inb} : i1"));
        for (j, a) in acc.into_iter().enumerate() {
            let dot = g.lanes_combine(a, sub, false);
            let jc = g.i64c(j as i64);
            let p = g.op(format!("arith.addi {q0}, {jc} : i64"));
            let valid = g.op(format!("arith.cmpi slt, {p}, {hi} : i64"));
            let st = g.op(format!("arith.andi {lead}, {valid} : i1"));
            let v = g.op(format!("arith.mulf {dot}, {sc} : f32"));
            let t = g.op(format!("arith.subi {p}, {lo} : i64"));
            g.open(format!("scf.if {st} {{"));
            g.store(scores, &[o[0].clone(), o[1].clone(), t], &v)?;
            g.close("}");
        }
        Ok(())
    })?;
    Ok(())
}

/// The scores a position at a time: a warp per (row, run of positions), `sub` lanes per
/// position, each with its `per` lanes of q and k loaded at once.
fn scores_scalar(g: &mut Gen, r: &Rounds) -> Result<(), String> {
    let Rounds {
        h0,
        h1,
        p0,
        p1,
        z,
        c8,
        most,
        scores,
        ..
    } = r;
    let q = r.q;
    let kc = r.kc;
    let scale = r.scale;
    let dim = r.dim;
    let group = r.group;
    let window = |g: &mut Gen, p: &str| r.parts_of.window(g, p);
    // A warp per (row, run of positions): `sub` lanes per position, each with its
    // `per` lanes of q and k loaded at once (positions are contiguous in the cache's
    // storage, so the lanes of a warp that share a sub-lane read consecutive words);
    // the sub-lanes' dots meet by shuffles. One round of loads per position, where a
    // thread per position would wait for dim / 16.
    let sub = [8i64, 4, 2]
        .into_iter()
        .find(|&s| dim % s == 0 && dim / s >= 16)
        .unwrap_or(1);
    let per = dim / sub;
    let ppw = 32 / sub;
    let ppwc = g.i64c(ppw);
    let positions = g.op(format!("arith.muli {most}, {c8} : i64"));
    let c_items = g.i64c(ppw - 1);
    let items = g.op(format!("arith.addi {positions}, {c_items} : i64"));
    let items = g.op(format!("arith.divsi {items}, {ppwc} : i64"));
    let rows = vec![
        (p0.clone(), p1.clone()),
        (h0.clone(), h1.clone()),
        (z.clone(), items),
    ];
    g.for_region_warp(&[rows], &mut |g, o| {
        let (lo, hi) = window(g, &o[0]);
        let (pi, si) = g.lane_split(sub);
        let t0 = g.op(format!("arith.muli {}, {ppwc} : i64", o[2]));
        let t = g.op(format!("arith.addi {t0}, {pi} : i64"));
        let p = g.op(format!("arith.addi {lo}, {t} : i64"));
        let valid = g.op(format!("arith.cmpi slt, {p}, {hi} : i64"));
        let one = g.i64c(1);
        let lastp = g.op(format!("arith.subi {hi}, {one} : i64"));
        let pc = g.op(format!("arith.minsi {p}, {lastp} : i64"));
        let pc = g.op(format!("arith.maxsi {pc}, {z} : i64"));
        let (kvi, d0) = g.kv_head_and_first_lane(&o[1], group, &si, per);
        let mut dot = g.f32c(0.0);
        for b0 in (0..per).step_by(16) {
            let mut pairs = Vec::new();
            for dd in b0..(b0 + 16).min(per) {
                let ddc = g.i64c(dd);
                let k = g.op(format!("arith.addi {d0}, {ddc} : i64"));
                let a = g.load(q, &[o[1].clone(), k.clone()])?;
                let b = g.load(kc, &[pc.clone(), kvi.clone(), k])?;
                pairs.push((a, b));
            }
            for (a, b) in pairs {
                let m = g.op(format!("arith.mulf {a}, {b} : f32"));
                dot = g.op(format!("arith.addf {dot}, {m} : f32"));
            }
        }
        let dot = g.lanes_combine(dot, sub, false);
        let sc = g.f32c(scale);
        let sv = g.op(format!("arith.mulf {dot}, {sc} : f32"));
        let first = g.op(format!("arith.cmpi eq, {si}, {z} : i64"));
        let st = g.op(format!("arith.andi {valid}, {first} : i1"));
        g.open(format!("scf.if {st} {{"));
        g.store(scores, &[o[0].clone(), o[1].clone(), t], &sv)?;
        g.close("}");
        Ok(())
    })?;
    Ok(())
}

/// The second round: per row its max, its scores turned into weights e^(s - m) in place,
/// and their sum (or its inverse, for the normalised output).
fn row_stats(g: &mut Gen, r: &Rounds, stats: &View) -> Result<(), String> {
    let Rounds {
        h0,
        h1,
        p0,
        p1,
        scores,
        ..
    } = r;
    let need = r.need;
    let res = r.res;
    let parts = r.parts;
    let dim = r.dim;
    let window = |g: &mut Gen, p: &str| r.parts_of.window(g, p);
    // Per row: the max, then each score turned into its weight e^(s - m) and their sum (or
    // its inverse, for the normalised output). A part's m and sum are also two lanes of its
    // result, where a box holds them.
    let rows = vec![(p0.clone(), p1.clone()), (h0.clone(), h1.clone())];
    g.for_region_warp(&[rows], &mut |g, o| {
        let (lo, hi) = window(g, &o[0]);
        if let Some(k_row) = r.k_row {
            score_of_k_row(g, r, k_row, &o[1], &o[0], (&lo, &hi))?;
        }
        let n = g.op(format!("arith.subi {hi}, {lo} : i64"));
        let ninf = g.f32c(f64::NEG_INFINITY);
        let m = g.lane_reduce(&n, &ninf, true, &mut |g, t, acc| {
            let s = g.load(scores, &[o[0].clone(), o[1].clone(), t.to_string()])?;
            Ok(g.op(format!("arith.maximumf {acc}, {s} : f32")))
        })?;
        // In place, once: the output's lanes would each take every exponential again.
        let zero = g.f32c(0.0);
        let (t, acc, part) = (g.fresh(), g.fresh(), g.fresh());
        let ni = g.op(format!("arith.index_cast {n} : i64 to index"));
        g.open(format!(
            "{part} = scf.for {t} = %lane to {ni} step %c32_idx iter_args({acc} = {zero}) -> (f32) {{"
        ));
        let ti = g.op(format!("arith.index_cast {t} : index to i64"));
        let at = [o[0].clone(), o[1].clone(), ti];
        let s = g.load(scores, &at)?;
        let d = g.op(format!("arith.subf {s}, {m} : f32"));
        let e = g.exp(&d);
        g.store(scores, &at, &e)?;
        let next = g.op(format!("arith.addf {acc}, {e} : f32"));
        g.line(format!("scf.yield {next} : f32"));
        g.close("}");
        let l = g.warp_combine(part, false);
        let second = if parts.is_some() {
            for (k, v) in [(dim, &m), (dim + 1, &l)] {
                let kc = g.i64c(k);
                let mut held = g.op("arith.constant false");
                for b in need {
                    let mut inside = g.op("arith.constant true");
                    for (x, (lo, hi)) in [&o[0], &o[1], &kc].into_iter().zip(b) {
                        let a = g.op(format!("arith.cmpi sge, {x}, {lo} : i64"));
                        let c = g.op(format!("arith.cmpi slt, {x}, {hi} : i64"));
                        let ac = g.op(format!("arith.andi {a}, {c} : i1"));
                        inside = g.op(format!("arith.andi {inside}, {ac} : i1"));
                    }
                    held = g.op(format!("arith.ori {held}, {inside} : i1"));
                }
                g.open(format!("scf.if {held} {{"));
                g.store_lane0(res, &[o[0].clone(), o[1].clone(), kc], v)?;
                g.close("}");
            }
            l
        } else {
            let onef = g.f32c(1.0);
            g.op(format!("arith.divf {onef}, {l} : f32"))
        };
        let zi = g.i64c(0);
        let onei = g.i64c(1);
        g.store_lane0(stats, &[o[0].clone(), o[1].clone(), zi], &m)?;
        g.store_lane0(stats, &[o[0].clone(), o[1].clone(), onei], &second)
    })?;
    Ok(())
}

/// With the step's K row apart from the cache: the score at the step's position (the run's
/// last, where the row's part holds it), q . k_row * scale, replaces the one the scores
/// round made from the cache's row (not yet written). A warp per row; the lane that owns
/// the position in the statistics' loops (every 32nd from its lane) stores it, so it reads
/// it back itself with no synchronisation.
fn score_of_k_row(
    g: &mut Gen,
    r: &Rounds,
    k_row: &View,
    h: &str,
    p: &str,
    (lo, hi): (&str, &str),
) -> Result<(), String> {
    let last = r.parts_of.last(g);
    let a = g.op(format!("arith.cmpi sge, {last}, {lo} : i64"));
    let b = g.op(format!("arith.cmpi slt, {last}, {hi} : i64"));
    let held = g.op(format!("arith.andi {a}, {b} : i1"));
    let gr = g.i64c(r.group);
    let kvh = g.op(format!("arith.divsi {h}, {gr} : i64"));
    let lane = g.op("arith.index_cast %lane : index to i64");
    let dot = warp_dot(g, &lane, (r.q, h), (k_row, &kvh), r.dim)?;
    let sc = g.f32c(r.scale);
    let s = g.op(format!("arith.mulf {dot}, {sc} : f32"));
    let t = g.op(format!("arith.subi {last}, {lo} : i64"));
    let c31 = g.i64c(31);
    let owner = g.op(format!("arith.andi {t}, {c31} : i64"));
    let own = g.op(format!("arith.cmpi eq, {owner}, {lane} : i64"));
    let st = g.op(format!("arith.andi {held}, {own} : i1"));
    g.open(format!("scf.if {st} {{"));
    g.store(&r.scores, &[p.to_string(), h.to_string(), t], &s)?;
    g.close("}");
    Ok(())
}

/// Row `a.1` of `a` . row `b.1` of `b` over their first `dim` lanes, summed over the warp
/// (every lane holds it): lane `lane` (an i64) takes lanes lane, lane + 32, ...
pub(crate) fn warp_dot(
    g: &mut Gen,
    lane: &str,
    a: (&View, &str),
    b: (&View, &str),
    dim: i64,
) -> Result<String, String> {
    let mut acc = g.f32c(0.0);
    let dlast = g.i64c(dim - 1);
    for j in 0..(dim + 31) / 32 {
        let dj = g.i64c(32 * j);
        let l = g.op(format!("arith.addi {lane}, {dj} : i64"));
        let ok = g.op(format!("arith.cmpi sle, {l}, {dlast} : i64"));
        let lc = g.op(format!("arith.minsi {l}, {dlast} : i64"));
        let av = g.load(a.0, &[a.1.to_string(), lc.clone()])?;
        let bv = g.load(b.0, &[b.1.to_string(), lc])?;
        let m = g.op(format!("arith.mulf {av}, {bv} : f32"));
        let zero = g.f32c(0.0);
        let m = g.op(format!("arith.select {ok}, {m}, {zero} : f32"));
        acc = g.op(format!("arith.addf {acc}, {m} : f32"));
    }
    Ok(g.warp_combine(acc, false))
}

/// The third round (rows of one query head a warp): each output lane the weighted sum of
/// its values over the row's run.
fn output_rows(
    g: &mut Gen,
    r: &Rounds,
    stats: &View,
    fast_v: bool,
    group_lanes: i64,
) -> Result<(), String> {
    let Rounds {
        p0,
        p1,
        z,
        c8,
        scores,
        ..
    } = r;
    let vc = r.vc;
    let need = r.need;
    let res = r.res;
    let parts = r.parts;
    let dim = r.dim;
    let group = r.group;
    let ha = r.ha;
    let la = r.la;
    let window = |g: &mut Gen, p: &str| r.parts_of.window(g, p);
    const UNROLL: i64 = 8;
    let per_lane = 32 / group_lanes;
    let gc = g.i64c(group_lanes);
    let g1 = g.i64c(group_lanes - 1);
    let dimc = g.i64c(dim);
    let mut items: Vec<RBox> = Vec::new();
    for (i, b) in need.iter().enumerate() {
        let (l0, l1) = &b[la];
        let l1 = g.op(format!("arith.minsi {l1}, {dimc} : i64"));
        let span = g.op(format!("arith.subi {l1}, {l0} : i64"));
        let span = g.op(format!("arith.maxsi {span}, {z} : i64"));
        let groups = g.op(format!("arith.addi {span}, {g1} : i64"));
        let groups = g.op(format!("arith.divsi {groups}, {gc} : i64"));
        let (bi, bj) = (g.i64c(i as i64), g.i64c(i as i64 + 1));
        let part = if parts.is_some() {
            b[0].clone()
        } else {
            (p0.clone(), p1.clone())
        };
        items.push(vec![(bi, bj), part, b[ha].clone(), (z.clone(), groups)]);
    }
    g.for_region_warp(&items, &mut |g, o| {
        let (l0, l1) = g.box_bounds(need, &o[0], la);
        let l1 = g.op(format!("arith.minsi {l1}, {dimc} : i64"));
        let (p, h) = (o[1].clone(), o[2].clone());
        let (lo, hi) = window(g, &p);
        let lane = g.op("arith.index_cast %lane : index to i64");
        let plc = g.i64c(per_lane);
        let li = g.op(format!("arith.divsi {lane}, {plc} : i64"));
        let off = g.op(format!("arith.remsi {lane}, {plc} : i64"));
        let gc = g.i64c(group_lanes);
        let first = g.op(format!("arith.muli {}, {gc} : i64", o[3]));
        let first = g.op(format!("arith.addi {first}, {l0} : i64"));
        let ln = g.op(format!("arith.addi {first}, {li} : i64"));
        let one = g.i64c(1);
        let lastl = g.op(format!("arith.subi {l1}, {one} : i64"));
        let lc = g.op(format!("arith.minsi {ln}, {lastl} : i64"));
        let lc = g.op(format!("arith.maxsi {lc}, {z} : i64"));
        let gr = g.i64c(group);
        let kvi = g.op(format!("arith.divsi {h}, {gr} : i64"));
        let second = g.load(stats, &[p.clone(), h.clone(), one.clone()])?;
        // With `fast_v` each thread of a lane takes blocks of 8 positions: one 16-byte
        // load of the lane's values (positions contiguous), 8 weights; positions past the
        // run's end in its last block drop out. Otherwise a position at a time.
        let tot = if fast_v {
            v_row_sum(
                g,
                &VBlock {
                    vc,
                    scores,
                    p: &p,
                    h: &h,
                    kvi: &kvi,
                    lc: &lc,
                    lo: &lo,
                    hi: &hi,
                    c8,
                },
                &off,
                per_lane,
            )?
        } else {
            let (pp, acc, tot) = (g.fresh(), g.fresh(), g.fresh());
            let zf = g.f32c(0.0);
            let start = g.op(format!("arith.addi {lo}, {off} : i64"));
            let si = g.op(format!("arith.index_cast {start} : i64 to index"));
            let ci = g.op(format!("arith.index_cast {hi} : i64 to index"));
            let step = g.idx(per_lane * UNROLL);
            let head = format!("{tot} = scf.for {pp} = {si} to {ci} step {step}");
            g.sum_loop(
                &head,
                &pp,
                &acc,
                &zf,
                per_lane,
                UNROLL,
                &mut |g| {
                    let one = g.i64c(1);
                    let last = g.op(format!("arith.subi {hi}, {one} : i64"));
                    (hi.clone(), last)
                },
                &mut |g, k, _| {
                    let t = g.op(format!("arith.subi {k}, {lo} : i64"));
                    let e = g.load(scores, &[p.clone(), h.clone(), t])?;
                    let v = g.load(vc, &[k.to_string(), kvi.clone(), lc.clone()])?;
                    Ok(g.op(format!("arith.mulf {e}, {v} : f32")))
                },
            )?;
            tot
        };
        let y = g.lanes_combine(tot.clone(), per_lane, false);
        let (y, idx) = match parts {
            Some(_) => (y, vec![p.clone(), h.clone(), ln.clone()]),
            None => (
                g.op(format!("arith.mulf {y}, {second} : f32")),
                vec![h.clone(), ln.clone()],
            ),
        };
        let inside = g.op(format!("arith.cmpi slt, {ln}, {l1} : i64"));
        let lead = g.op(format!("arith.cmpi eq, {off}, {z} : i64"));
        let st = g.op(format!("arith.andi {inside}, {lead} : i1"));
        g.open(format!("scf.if {st} {{"));
        g.store(res, &idx, &y)?;
        g.close("}");
        Ok(())
    })?;
    Ok(())
}

/// A part's run lo..hi in blocks of 8 positions: the first block and one past the last
/// (`c7`, `c8`: the constants 7 and 8).
pub(crate) fn run_blocks(g: &mut Gen, lo: &str, hi: &str, c7: &str, c8: &str) -> (String, String) {
    let first = g.op(format!("arith.divsi {lo}, {c8} : i64"));
    let end = g.op(format!("arith.addi {hi}, {c7} : i64"));
    let end = g.op(format!("arith.divsi {end}, {c8} : i64"));
    (first, end)
}

/// `end - 1`.
pub(crate) fn last_of(g: &mut Gen, end: &str) -> String {
    let one = g.i64c(1);
    g.op(format!("arith.subi {end}, {one} : i64"))
}

/// One block of 8 positions of a part's (or the whole) run in attention's output: part `p`,
/// head `h` (its weights' row), lane `lc` of KV head `kvi`, positions `lo..hi` of the run.
pub(crate) struct VBlock<'a> {
    pub(crate) vc: &'a View,
    pub(crate) scores: &'a View,
    pub(crate) p: &'a str,
    pub(crate) h: &'a str,
    pub(crate) kvi: &'a str,
    pub(crate) lc: &'a str,
    pub(crate) lo: &'a str,
    pub(crate) hi: &'a str,
    pub(crate) c8: &'a str,
}

/// Σ w·v over block `k`'s positions before `hi` (w = e^(s − m), the weights the scores were
/// turned into): one 16-byte load of the lane's V (positions contiguous), 8 weights.
pub(crate) fn v_block_sum(g: &mut Gen, b: &VBlock, k: &str) -> Result<String, String> {
    let (c8, lo, hi) = (b.c8, b.lo, b.hi);
    let q0 = g.op(format!("arith.muli {k}, {c8} : i64"));
    let vp = g.ptr(b.vc, &[q0.clone(), b.kvi.to_string(), b.lc.to_string()]);
    let vv = g.op(format!(
        "llvm.load {vp} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<8xbf16>"
    ));
    let vf = g.op(format!("arith.extf {vv} : vector<8xbf16> to vector<8xf32>"));
    let mut sum = g.f32c(0.0);
    // (A position past the run in its last block reads a score slot this step never wrote,
    // inside the row: its weight is dropped, whatever it holds.)
    let t0 = g.op(format!("arith.subi {q0}, {lo} : i64"));
    for j in 0..8 {
        let jc = g.i64c(j);
        let p1 = g.op(format!("arith.addi {q0}, {jc} : i64"));
        let valid = g.op(format!("arith.cmpi slt, {p1}, {hi} : i64"));
        let t = g.op(format!("arith.addi {t0}, {jc} : i64"));
        let e = g.load(b.scores, &[b.p.to_string(), b.h.to_string(), t])?;
        let c = g.op(format!("arith.constant {j} : i32"));
        let v = g.op(format!(
            "llvm.extractelement {vf}[{c} : i32] : vector<8xf32>"
        ));
        let ev = g.op(format!("arith.mulf {e}, {v} : f32"));
        let z = g.f32c(0.0);
        let ev = g.op(format!("arith.select {valid}, {ev}, {z} : f32"));
        sum = g.op(format!("arith.addf {sum}, {ev} : f32"));
    }
    Ok(sum)
}

/// This thread's share of one output lane of a row: [`v_block_sum`] over the run's blocks
/// from the thread's `off`-th, every `per_lane`-th, two a round.
pub(crate) fn v_row_sum(
    g: &mut Gen,
    b: &VBlock,
    off: &str,
    per_lane: i64,
) -> Result<String, String> {
    let (c8, lo, hi) = (b.c8, b.lo, b.hi);
    let c7 = g.i64c(7);
    let s0 = g.op(format!("arith.divsi {lo}, {c8} : i64"));
    let e = g.op(format!("arith.addi {hi}, {c7} : i64"));
    let count = g.op(format!("arith.divsi {e}, {c8} : i64"));
    let start = g.op(format!("arith.addi {s0}, {off} : i64"));
    let si = g.op(format!("arith.index_cast {start} : i64 to index"));
    let ci = g.op(format!("arith.index_cast {count} : i64 to index"));
    let step = g.idx(per_lane * 2);
    let (pp, acc, tot) = (g.fresh(), g.fresh(), g.fresh());
    let zf = g.f32c(0.0);
    let head = format!("{tot} = scf.for {pp} = {si} to {ci} step {step}");
    g.sum_loop(
        &head,
        &pp,
        &acc,
        &zf,
        per_lane,
        2,
        &mut |g| {
            let one = g.i64c(1);
            let last = g.op(format!("arith.subi {count}, {one} : i64"));
            (count.clone(), last)
        },
        &mut |g, k, _| v_block_sum(g, b, k),
    )?;
    Ok(tot)
}

/// What [`attention_output_shared`] writes from.
pub(crate) struct AttentionOutput<'a> {
    pub(crate) need: &'a [RBox],
    pub(crate) res: &'a View,
    pub(crate) vc: &'a View,
    pub(crate) scores: &'a View,
    pub(crate) dim: i64,
    pub(crate) group: i64,
    pub(crate) lanes: i64,
    /// The result's heads and lanes axes.
    pub(crate) ha: usize,
    pub(crate) la: usize,
}

/// A part's output when its query heads share KV heads: a warp per (box, part, KV head,
/// group of `lanes` lanes), `32 / lanes` threads a lane each taking every (32 / lanes)-th
/// block of 8 positions of the part's run, for each query head of the box in the KV
/// head's group in turn (the first brings the V blocks into L1; the others hit there).
pub(crate) fn attention_output_shared(
    g: &mut Gen,
    a: &AttentionOutput,
    window: &dyn Fn(&mut Gen, &str) -> (String, String),
) -> Result<(), String> {
    let (need, group, ha, la) = (a.need, a.group, a.ha, a.la);
    let per_lane = 32 / a.lanes;
    let z = g.i64c(0);
    let c8 = g.i64c(8);
    let gc = g.i64c(a.lanes);
    let g1 = g.i64c(a.lanes - 1);
    let dimc = g.i64c(a.dim);
    let grc = g.i64c(group);
    let grm = g.i64c(group - 1);
    let mut items: Vec<RBox> = Vec::new();
    for (i, b) in need.iter().enumerate() {
        let (l0, l1) = &b[la];
        let l1 = g.op(format!("arith.minsi {l1}, {dimc} : i64"));
        let span = g.op(format!("arith.subi {l1}, {l0} : i64"));
        let span = g.op(format!("arith.maxsi {span}, {z} : i64"));
        let groups = g.op(format!("arith.addi {span}, {g1} : i64"));
        let groups = g.op(format!("arith.divsi {groups}, {gc} : i64"));
        let (bi, bj) = (g.i64c(i as i64), g.i64c(i as i64 + 1));
        let kv0 = g.op(format!("arith.divsi {}, {grc} : i64", b[ha].0));
        let kv1 = g.op(format!("arith.addi {}, {grm} : i64", b[ha].1));
        let kv1 = g.op(format!("arith.divsi {kv1}, {grc} : i64"));
        items.push(vec![
            (bi, bj),
            b[0].clone(),
            (kv0, kv1),
            (z.clone(), groups),
        ]);
    }
    g.for_region_warp(&items, &mut |g, o| {
        let (l0, l1) = g.box_bounds(need, &o[0], la);
        let l1 = g.op(format!("arith.minsi {l1}, {dimc} : i64"));
        let (hb0, hb1) = g.box_bounds(need, &o[0], ha);
        let (p, kvi) = (o[1].clone(), o[2].clone());
        let (lo, hi) = window(g, &p);
        let lane = g.op("arith.index_cast %lane : index to i64");
        let plc = g.i64c(per_lane);
        let li = g.op(format!("arith.divsi {lane}, {plc} : i64"));
        let off = g.op(format!("arith.remsi {lane}, {plc} : i64"));
        let first = g.op(format!("arith.muli {}, {gc} : i64", o[3]));
        let first = g.op(format!("arith.addi {first}, {l0} : i64"));
        let ln = g.op(format!("arith.addi {first}, {li} : i64"));
        let one = g.i64c(1);
        let lastl = g.op(format!("arith.subi {l1}, {one} : i64"));
        let lc = g.op(format!("arith.minsi {ln}, {lastl} : i64"));
        let lc = g.op(format!("arith.maxsi {lc}, {z} : i64"));
        // The query heads of this KV head in the box, one after another (a loop: registers
        // stay free); each head's pass reloads the V blocks the first one brought into L1.
        let hbase = g.op(format!("arith.muli {kvi}, {grc} : i64"));
        let hend = g.op(format!("arith.addi {hbase}, {grc} : i64"));
        let hfrom = g.op(format!("arith.maxsi {hbase}, {hb0} : i64"));
        let hto = g.op(format!("arith.minsi {hend}, {hb1} : i64"));
        let hfi = g.op(format!("arith.index_cast {hfrom} : i64 to index"));
        let hti = g.op(format!("arith.index_cast {hto} : i64 to index"));
        let j = g.fresh();
        g.open(format!("scf.for {j} = {hfi} to {hti} step %c1_idx {{"));
        let h = g.op(format!("arith.index_cast {j} : index to i64"));
        let tot = v_row_sum(
            g,
            &VBlock {
                vc: a.vc,
                scores: a.scores,
                p: &p,
                h: &h,
                kvi: &kvi,
                lc: &lc,
                lo: &lo,
                hi: &hi,
                c8: &c8,
            },
            &off,
            per_lane,
        )?;
        let y = g.lanes_combine(tot.clone(), per_lane, false);
        let inside = g.op(format!("arith.cmpi slt, {ln}, {l1} : i64"));
        let lead = g.op(format!("arith.cmpi eq, {off}, {z} : i64"));
        let st = g.op(format!("arith.andi {inside}, {lead} : i1"));
        g.open(format!("scf.if {st} {{"));
        g.store(a.res, &[p.clone(), h.clone(), ln.clone()], &y)?;
        g.close("}");
        g.close("}");
        Ok(())
    })
}

/// `tg.attention_combine` over the boxes of [heads, dim], a thread per element: the parts'
/// maximum, then their outputs and sums rescaled to it (a part with no positions has
/// m = -inf and weighs 0). Every load's address is known before the task starts, so they
/// all go out at once.
pub(crate) fn emit_attention_combine(
    g: &mut Gen,
    ins: &[View],
    need: &[RBox],
    res: &View,
) -> Result<(), String> {
    let pv = &ins[0];
    let (np, dim) = (pv.shape[0], pv.shape[2] - 2);
    let (dm, dl) = (g.i64c(dim), g.i64c(dim + 1));
    // Elements a round per thread: their 3 * parts loads (written by other SMs, so from L2)
    // in flight together. With 16 parts, four elements' 192 loads made ptxas issue them a
    // few at a time: a combine task of a KV group's four heads took 6.3 us at 2047
    // positions, 3.6 with two elements, 2.0 with one (docs/PERF.md). (One element with 13
    // parts made a fixture's kernel spill 4 bytes; two do not.)
    let unroll = match np {
        ..=4 => 4,
        5..=15 => 2,
        _ => 1,
    };
    g.for_region_by(need, "%tid", "%nthreads", unroll, &mut |g, o| {
        let mut ms = Vec::new();
        for p in 0..np {
            let pc = g.i64c(p);
            ms.push(g.load(pv, &[pc, o[0].clone(), dm.clone()])?);
        }
        let mut mx = ms[0].clone();
        for m in &ms[1..] {
            mx = g.op(format!("arith.maximumf {mx}, {m} : f32"));
        }
        let (mut num, mut den) = (g.f32c(0.0), g.f32c(0.0));
        for (p, m) in ms.iter().enumerate() {
            let pc = g.i64c(p as i64);
            let x = g.load(pv, &[pc.clone(), o[0].clone(), o[1].clone()])?;
            let l = g.load(pv, &[pc, o[0].clone(), dl.clone()])?;
            let d = g.op(format!("arith.subf {m}, {mx} : f32"));
            let w = g.exp(&d);
            let wx = g.op(format!("arith.mulf {w}, {x} : f32"));
            num = g.op(format!("arith.addf {num}, {wx} : f32"));
            let wl = g.op(format!("arith.mulf {w}, {l} : f32"));
            den = g.op(format!("arith.addf {den}, {wl} : f32"));
        }
        let y = g.op(format!("arith.divf {num}, {den} : f32"));
        g.store(res, o, &y)
    })
}

/// A thread's lanes of a head and the lanes that share a position, where a lane loads 8
/// positions of one lane of K at once.
pub(crate) fn vector_lanes(dim: i64) -> (i64, i64) {
    let per = (dim / 32).max(4);
    (per, dim / per.max(1))
}

/// How decode attention (`parts`: its parts, for `tg.attention_partial`) runs, and its
/// temporaries in the order it takes them.
pub(crate) fn plan_attention(
    cx: &mut PlanCx,
    ins: &[View],
    parts: Option<i64>,
) -> Result<(Vec<Place>, Choice), String> {
    let (q, kc, vc) = (&ins[0], &ins[1], &ins[2]);
    if q.shape.len() != 2 || kc.shape.len() != 3 {
        return Err("the GPU lowering handles decode attention of [heads, dim] only".into());
    }
    let (heads, dim) = (q.shape[0], q.shape[1]);
    let (ctx, kvh) = (kc.shape[0], kc.shape[1]);
    let group = query_group(heads, kvh);
    let np = parts.unwrap_or(1).max(1);
    if parts.is_some()
        && cx.options.attention_online
        && online_attention_fits(&cx.extents, q, kc, vc)
        && online_temps_fit_shared(cx, q, kc)
    {
        let temps = plan_attention_online(cx, q, kc);
        let choice = Choice::Attention {
            algorithm: AttentionAlgorithm::Online,
            scores: KvLoads::Group,
            values: KvLoads::Group,
            lanes: 0,
        };
        return Ok((temps, choice));
    }
    // The result's axes: [parts,] heads, lanes.
    let ha = if parts.is_some() { 1 } else { 0 };
    let run = 8 * (((ctx + 7) / 8 + np - 1) / np);
    let (wp, wh) = match cx.extents.as_slice() {
        [b] => (
            if parts.is_some() { b[0].1 - b[0].0 } else { 1 },
            b[ha].1 - b[ha].0,
        ),
        _ => (np, heads),
    };
    let scores_place = cx.scratch.alloc_window(&[wp, wh, run], ElemType::F32);
    // With the cache stored as bf16, positions contiguous (a head's lane over all positions
    // is one span) and aligned, a lane loads 8 positions of one lane of k at once (16
    // bytes); the scalar path loads 2 bytes at a time: 8 times the load instructions.
    let (per, sub) = vector_lanes(dim);
    let contiguous = |v: &View| {
        v.elem == ElemType::BF16
            && v.space == 1
            && v.base_aligned
            && v.strides.first() == Some(&1)
            && ctx % 8 == 0
    };
    let fast = contiguous(kc) && dim % per == 0 && sub >= 1 && 32 % sub == 0;
    let fast_v = contiguous(vc);
    // A part's query heads that share a KV head share its loads (parts only: whole
    // attention keeps one head a warp).
    let shared = parts.is_some()
        && group > 1
        && fast
        && fast_v
        && cx
            .extents
            .iter()
            .all(|b| b[ha].0 % group == 0 && (b[ha].1 - b[ha].0) % group == 0);
    let stats_place = cx.scratch.alloc_window(&[wp, wh, 2], ElemType::F32);
    // A part's run is short next to the whole context: there a warp takes more lanes (fewer
    // threads a lane), so that one round of the CTA's warps covers the task's rows (its
    // parts and heads: several heads when they share a KV head).
    let lanes = cx.options.attention_lanes as i64;
    let lanes = match parts {
        Some(_) => {
            let warps = (cx.threads / 32) as i64;
            let heads_of = |b: &TileBox| {
                if shared {
                    (b[ha].1 + group - 1) / group - b[ha].0 / group
                } else {
                    b[ha].1 - b[ha].0
                }
            };
            let rows = cx
                .extents
                .iter()
                .map(|b| (b[0].1 - b[0].0) * heads_of(b))
                .sum::<i64>()
                .max(1);
            let mut l = lanes;
            while l < 32 && rows * ((dim + l - 1) / l) > warps {
                l *= 2;
            }
            l
        }
        None => lanes,
    };
    let loads = |vector: bool| match (shared, vector) {
        (true, _) => KvLoads::Group,
        (false, true) => KvLoads::Vector,
        (false, false) => KvLoads::Scalar,
    };
    let choice = Choice::Attention {
        algorithm: AttentionAlgorithm::Rounds,
        scores: loads(fast),
        values: loads(fast_v),
        lanes: lanes as u32,
    };
    Ok((vec![scores_place, stats_place], choice))
}

/// sdpa's temporaries: the scores, and per row its max and sum.
pub(crate) fn plan_sdpa(cx: &mut PlanCx, ins: &[View]) -> Result<Vec<Place>, String> {
    let (q, kv) = (&ins[0], &ins[1]);
    let r = q.shape.len();
    if r < 3 || kv.shape.len() != r || ins[2].shape.len() != r {
        return Err("the GPU lowering handles sdpa of matching ranks >= 3 only".into());
    }
    let t = kv.shape[r - 2];
    let mut scores_shape = q.shape[..r - 1].to_vec();
    scores_shape.push(t);
    let mut stats_shape = q.shape[..r - 1].to_vec();
    stats_shape.push(2);
    Ok(vec![
        cx.scratch.alloc(&scores_shape, ElemType::F32),
        cx.scratch.alloc(&stats_shape, ElemType::F32),
    ])
}

/// softmax(q k^T * scale + mask) v over [.., heads, seq, dim], GQA by head groups; a
/// fully masked row gives 0.
pub(crate) fn emit_sdpa(g: &mut Gen, cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let d = e.d;
    // softmax(q k^T * scale + mask) v over [.., heads, seq, dim], GQA by head
    // groups; a fully masked row gives 0. Three phases over the rows the boxes need:
    // scores, per-row max and sum, then the output.
    let (q, kv, vv) = (&ins[0], &ins[1], &ins[2]);
    let r = q.shape.len();
    if r < 3 || kv.shape.len() != r || vv.shape.len() != r {
        return Err("the GPU lowering handles sdpa of matching ranks >= 3 only".into());
    }
    let (hq, s_len, dq) = (q.shape[r - 3], q.shape[r - 2], q.shape[r - 1]);
    let (hk, t) = (kv.shape[r - 3], kv.shape[r - 2]);
    let group = query_group(hq, hk);
    let scale = d.attrs.get("scale").and_then(Attr::as_f64).unwrap_or(1.0);
    let mask = ins.get(3).cloned();
    let mut scores_shape = q.shape[..r - 1].to_vec();
    scores_shape.push(t);
    let scores = cx.place(g, temp(e, 0)?, &scores_shape, ElemType::F32)?;
    let mut stats_shape = q.shape[..r - 1].to_vec();
    stats_shape.push(2);
    let stats = cx.place(g, temp(e, 1)?, &stats_shape, ElemType::F32)?;
    let _ = s_len;
    let kv_index = |g: &mut Gen, o: &[String], j: &str, e: &str| -> Vec<String> {
        let gr = g.i64c(group);
        let kh = g.op(format!("arith.divsi {}, {gr} : i64", o[r - 3]));
        let mut i: Vec<String> = o[..r - 3].to_vec();
        i.extend([kh, j.to_string(), e.to_string()]);
        i
    };
    let c0 = g.i64c(0);
    let ct = g.i64c(t);
    for b in need {
        let mut rows: RBox = b[..r - 1].to_vec();
        rows.push((c0.clone(), ct.clone()));
        g.for_region_warp(std::slice::from_ref(&rows), &mut |g, o| {
            let zero = g.f32c(0.0);
            let dn = g.i64c(dq);
            let dot = g.lane_reduce(&dn, &zero, false, &mut |g, e, acc| {
                let mut qi: Vec<String> = o[..r - 1].to_vec();
                qi.push(e.to_string());
                let a = g.load(q, &qi)?;
                let ki = kv_index(g, o, &o[r - 1], e);
                let b = g.load(kv, &ki)?;
                let p = g.op(format!("arith.mulf {a}, {b} : f32"));
                Ok(g.op(format!("arith.addf {acc}, {p} : f32")))
            })?;
            let sc = g.f32c(scale);
            let mut x = g.op(format!("arith.mulf {dot}, {sc} : f32"));
            if let Some(m) = &mask {
                let mi = broadcast_idx(g, o, &scores_shape, &m.shape);
                let mv = g.load(m, &mi)?;
                x = g.op(format!("arith.addf {x}, {mv} : f32"));
            }
            g.store_lane0(&scores, o, &x)
        })?;
    }
    g.barrier();
    for b in need {
        let rows: RBox = b[..r - 1].to_vec();
        g.for_region_warp(std::slice::from_ref(&rows), &mut |g, o| {
            let tn = g.i64c(t);
            let ninf = g.f32c(f64::NEG_INFINITY);
            let m = g.lane_reduce(&tn, &ninf, true, &mut |g, j, acc| {
                let mut si = o.to_vec();
                si.push(j.to_string());
                let x = g.load(&scores, &si)?;
                Ok(g.op(format!("arith.maximumf {acc}, {x} : f32")))
            })?;
            let masked = g.op(format!("arith.cmpf oeq, {m}, {ninf} : f32"));
            let zero = g.f32c(0.0);
            let safe_m = g.op(format!("arith.select {masked}, {zero}, {m} : f32"));
            let z = g.lane_reduce(&tn, &zero, false, &mut |g, j, acc| {
                let mut si = o.to_vec();
                si.push(j.to_string());
                let x = g.load(&scores, &si)?;
                let t_ = g.op(format!("arith.subf {x}, {safe_m} : f32"));
                let e = g.exp(&t_);
                Ok(g.op(format!("arith.addf {acc}, {e} : f32")))
            })?;
            let mut i0 = o.to_vec();
            i0.push(g.i64c(0));
            let mut i1 = o.to_vec();
            i1.push(g.i64c(1));
            g.store_lane0(&stats, &i0, &safe_m)?;
            g.store_lane0(&stats, &i1, &z)
        })?;
    }
    g.barrier();
    g.for_region_warp(need, &mut |g, o| {
        let row = &o[..r - 1];
        let mut i0 = row.to_vec();
        i0.push(g.i64c(0));
        let mut i1 = row.to_vec();
        i1.push(g.i64c(1));
        let m = g.load(&stats, &i0)?;
        let z = g.load(&stats, &i1)?;
        let tn = g.i64c(t);
        let zero = g.f32c(0.0);
        let acc = g.lane_reduce(&tn, &zero, false, &mut |g, j, acc| {
            let mut si = row.to_vec();
            si.push(j.to_string());
            let x = g.load(&scores, &si)?;
            let t_ = g.op(format!("arith.subf {x}, {m} : f32"));
            let e = g.exp(&t_);
            let vi = kv_index(g, o, j, &o[r - 1]);
            let v = g.load(vv, &vi)?;
            let p = g.op(format!("arith.mulf {e}, {v} : f32"));
            Ok(g.op(format!("arith.addf {acc}, {p} : f32")))
        })?;
        // A fully masked row has z = 0: its output is 0, not NaN.
        let empty = g.op(format!("arith.cmpf oeq, {z}, {zero} : f32"));
        let y = g.op(format!("arith.divf {acc}, {z} : f32"));
        let y = g.op(format!("arith.select {empty}, {zero}, {y} : f32"));
        g.store_lane0(res, o, &y)
    })?;
    Ok(())
}
