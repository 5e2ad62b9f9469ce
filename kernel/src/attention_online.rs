//! Decode attention's parts in one pass of online softmax, for tiles that hold whole KV
//! groups of query heads.

use crate::attention::*;
use crate::gen::*;
use crate::ops::{temp, OpEmit};
use crate::plan::PlanCx;
use crate::scratch::*;
use mkc_ir::dialect::kernel::Place;
use mkc_ir::dialect::task::TileBox;
use mkc_ir::dialect::tg::query_group;
use mkc_ir::ElemType;

/// Words of the region that holds, in turn, the slots' staged blocks and their states.
fn region_words(slots: i64, per: i64, sub: i64, group: i64, lanes_out: i64) -> i64 {
    (slots * 2 * per * sub * 4).max(slots * group * lanes_out)
}

/// The online pass's temporaries ([`emit_attention_online`]): the slots' staged blocks and
/// states, each slot's factor to the row's max, the row's max per head, the group's query
/// rows.
pub(crate) fn plan_attention_online(cx: &mut PlanCx, q: &View, kc: &View) -> Vec<Place> {
    online_temps(cx.threads, q, kc)
        .iter()
        .map(|shape| cx.scratch.alloc(shape, ElemType::F32))
        .collect()
}

/// The shapes (f32) of [`plan_attention_online`]'s temporaries.
fn online_temps(threads: u32, q: &View, kc: &View) -> [Vec<i64>; 4] {
    let (heads, dim) = (q.shape[0], q.shape[1]);
    let group = query_group(heads, kc.shape[1]);
    let (per, sub) = vector_lanes(dim);
    let slots = (threads / 32) as i64 * (32 / sub);
    [
        vec![region_words(slots, per, sub, group, dim + 2)],
        vec![slots, group],
        vec![group],
        vec![group, dim],
    ]
}

/// Whether the online pass's temporaries all fit the shared memory left: the pass stages
/// K and V blocks there and has no path through global scratch.
pub(crate) fn online_temps_fit_shared(cx: &PlanCx, q: &View, kc: &View) -> bool {
    let bytes = online_temps(cx.threads, q, kc)
        .iter()
        .map(|shape| scratch_bytes(shape, ElemType::F32))
        .sum();
    cx.scratch.fits_shared(bytes)
}

/// Whether [`emit_attention_online`] takes a part's tiles: caches of bf16 with positions
/// contiguous and 16-byte aligned, boxes that hold whole KV groups of query heads, and few
/// enough heads a group times a thread's lanes for the registers (its running sums).
/// (Tiles of one query head keep the three rounds: there the online pass measured slower,
/// 5.98 against 5.94 ms for Llama-3.1-8B at 2047, docs/PERF.md.)
pub(crate) fn online_attention_fits(extents: &[TileBox], q: &View, kc: &View, vc: &View) -> bool {
    if q.shape.len() != 2 || kc.shape.len() != 3 || vc.shape != kc.shape {
        return false;
    }
    let (heads, dim) = (q.shape[0], q.shape[1]);
    let (ctx, kvh) = (kc.shape[0], kc.shape[1]);
    if kvh < 1 || heads % kvh != 0 || kc.shape[2] != dim {
        return false;
    }
    let group = query_group(heads, kvh);
    let per = (dim / 32).max(4);
    let sub = dim / per;
    let contiguous = |v: &View| {
        v.elem == ElemType::BF16 && v.space == 1 && v.base_aligned && v.strides.first() == Some(&1)
    };
    contiguous(kc)
        && contiguous(vc)
        && ctx % 8 == 0
        && dim % per == 0
        && sub >= 2
        && 32 % sub == 0
        && group * per <= 32
        && !extents.is_empty()
        && extents
            .iter()
            .all(|b| b.len() == 3 && b[1].0 % group == 0 && (b[1].1 - b[1].0) % group == 0)
}

/// `tg.attention_partial` ([P, heads, dim + 2]: per part and query head the unnormalised
/// output, the largest score, the sum of exponentials) in one pass of online softmax, for
/// tiles that hold a KV head's query heads whole ([`online_attention_fits`]). Per (part,
/// KV head) row of the boxes, in turn: the CTA's slots (groups of `sub` lanes, each lane
/// `per` lanes of the head) take the run's blocks of 8 positions in turn. A slot copies a
/// block's K and V into shared memory together (`cp.async`, 16 bytes a lane each: all in
/// flight at once, no registers held; loaded into registers, ptxas issued them a few at a
/// time), scores it for every query head of the group at once (partial dots summed over
/// the slot by a reduce-scatter, then gathered by every lane), and folds it into its
/// running max, sum and output lanes. The slots' states then meet in shared memory, each
/// rescaled to the row's max. One round trip to the caches a block, where the three-round
/// form takes three and holds one query head at a time.
pub(crate) fn emit_attention_online(
    g: &mut Gen,
    cx: &mut TaskCx,
    e: &OpEmit,
    scale: f64,
    np: i64,
) -> Result<(), String> {
    let (ins, need, res) = (&e.ins, e.need, &e.res);
    let (q, kc, vc) = (&ins[0], &ins[1], &ins[2]);
    let (heads, dim) = (q.shape[0], q.shape[1]);
    let (ctx, kvh) = (kc.shape[0], kc.shape[1]);
    let group = query_group(heads, kvh);
    let per = (dim / 32).max(4);
    let sub = dim / per;
    let spw = 32 / sub;
    let slots = (g.threads / 32) as i64 * spw;
    let lanes_out = dim + 2;
    let parts_of = PartWindows::new(g, &ins[3], ctx, np)?;
    // One region holds, in turn, the slots' staged blocks ([slot, K or V, lane's lane,
    // lane], 16 bytes each: a warp's lanes read consecutive 16 bytes) and then their states
    // (per query head of the group: output lanes, max, sum).
    let region = cx.place(
        g,
        temp(e, 0)?,
        &[region_words(slots, per, sub, group, lanes_out)],
        ElemType::F32,
    )?;
    let stage = View {
        shape: vec![slots, 2, per, sub, 4],
        strides: row_major(&[slots, 2, per, sub, 4]),
        ..region.clone()
    };
    let states = View {
        shape: vec![slots, group, lanes_out],
        strides: row_major(&[slots, group, lanes_out]),
        ..region
    };
    // Per (slot, head) its factor to the row's max; the row's max per head; the group's
    // query rows, scaled.
    let factors = cx.place(g, temp(e, 1)?, &[slots, group], ElemType::F32)?;
    let maxes = cx.place(g, temp(e, 2)?, &[group], ElemType::F32)?;
    let qsh = cx.place(g, temp(e, 3)?, &[group, dim], ElemType::F32)?;
    let z = g.i64c(0);
    let c8 = g.i64c(8);
    let c7 = g.i64c(7);
    let grc = g.i64c(group);
    let grm = g.i64c(group - 1);
    let warp = g.op("arith.index_cast %warp : index to i64");
    let (sw, si) = g.lane_split(sub);
    let spwc = g.i64c(spw);
    let slot = g.op(format!("arith.muli {warp}, {spwc} : i64"));
    let slot = g.op(format!("arith.addi {slot}, {sw} : i64"));
    let perc = g.i64c(per);
    let d0 = g.op(format!("arith.muli {si}, {perc} : i64"));
    let subc = g.i64c(sub);
    let slot_lane0 = g.op(format!("arith.muli {sw}, {subc} : i64"));
    let slot_lane0 = g.op(format!("arith.trunci {slot_lane0} : i64 to i32"));
    // Scores in base 2: q is scaled by log2(e) too, and the max is stored back in base e.
    let qscale = g.f32c(scale * std::f64::consts::LOG2_E);
    let ninf = g.f32c(f64::NEG_INFINITY);
    let zero = g.f32c(0.0);
    let slots_i = g.idx(slots);
    let on = Online {
        q,
        kc,
        vc,
        res,
        dim,
        group,
        per,
        sub,
        slots,
        lanes_out,
        parts_of,
        stage,
        states,
        factors,
        maxes,
        qsh,
        z,
        c8,
        c7,
        warp,
        sw,
        si,
        spwc,
        slot,
        d0,
        slot_lane0,
        ninf,
        zero,
        slots_i,
    };
    for b in need {
        let k0 = g.op(format!("arith.divsi {}, {grc} : i64", b[1].0));
        let k1 = g.op(format!("arith.addi {}, {grm} : i64", b[1].1));
        let k1 = g.op(format!("arith.divsi {k1}, {grc} : i64"));
        let pi0 = g.op(format!("arith.index_cast {} : i64 to index", b[0].0));
        let pi1 = g.op(format!("arith.index_cast {} : i64 to index", b[0].1));
        let ki0 = g.op(format!("arith.index_cast {k0} : i64 to index"));
        let ki1 = g.op(format!("arith.index_cast {k1} : i64 to index"));
        let (pp, kk) = (g.fresh(), g.fresh());
        g.open(format!("scf.for {pp} = {pi0} to {pi1} step %c1_idx {{"));
        g.open(format!("scf.for {kk} = {ki0} to {ki1} step %c1_idx {{"));
        let p = g.op(format!("arith.index_cast {pp} : index to i64"));
        let kv = g.op(format!("arith.index_cast {kk} : index to i64"));
        // The row's heads: the KV group's, hbase..hbase + group.
        let hbase = g.op(format!("arith.muli {kv}, {grc} : i64"));
        let (lo, hi) = on.parts_of.window(g, &p);
        // The group's query rows, scaled, into shared memory (a thread an element): the
        // block loop reads a lane's few there instead of holding them all.
        let heads_lanes = g.const_box(&vec![(0, group), (0, dim)]);
        g.for_box_by(&heads_lanes, "%tid", "%nthreads", &mut |g, o| {
            let (gh, dl) = (o[0].clone(), o[1].clone());
            let h = g.op(format!("arith.addi {hbase}, {gh} : i64"));
            let x = g.load(on.q, &[h, dl.clone()])?;
            let x = g.op(format!("arith.mulf {x}, {qscale} : f32"));
            g.store(&on.qsh, &[gh, dl], &x)
        })?;
        g.barrier();
        // With the step's K row apart: each head's score at the step's position, from it
        // (every lane of every warp holds them), in place of the cache's unwritten row.
        let k_row = match ins.get(4) {
            Some(k_row) => Some(k_row_scores(g, &on, k_row, &kv)?),
            None => None,
        };
        let out = online_blocks(g, &on, &kv, &lo, &hi, k_row.as_ref())?;
        online_merge(g, &on, &out, &p, &hbase, b)?;
        g.close("}");
        g.close("}");
    }
    Ok(())
}

/// What the rows of the online pass share.
struct Online<'a> {
    q: &'a View,
    kc: &'a View,
    vc: &'a View,
    res: &'a View,
    dim: i64,
    group: i64,
    /// A thread's lanes of a head, the lanes of a slot, and the slots of the CTA.
    per: i64,
    sub: i64,
    slots: i64,
    lanes_out: i64,
    parts_of: PartWindows,
    stage: View,
    states: View,
    factors: View,
    maxes: View,
    qsh: View,
    z: String,
    c8: String,
    c7: String,
    warp: String,
    /// This lane's slot of its warp and place in it, its slot, first lane and first lane's
    /// number.
    sw: String,
    si: String,
    spwc: String,
    slot: String,
    d0: String,
    slot_lane0: String,
    ninf: String,
    zero: String,
    slots_i: String,
}

/// The block loop of one row: the warp's slots take the run's blocks of 8 positions in
/// turn, each staged into shared memory, scored for every head of the KV group, and folded
/// into the slot's running max, sum and output lanes. Returns the loop's results.
/// Per head of KV head `kv`'s group, q . k_row in the scores' base (q as staged: scaled
/// by the scale and log2(e)), summed over each warp's lanes; and the step's position.
fn k_row_scores(
    g: &mut Gen,
    o: &Online,
    k_row: &View,
    kv: &str,
) -> Result<(Vec<String>, String), String> {
    let lane = g.op("arith.index_cast %lane : index to i64");
    let mut scores = Vec::new();
    for gh in 0..o.group {
        let ghc = g.i64c(gh);
        scores.push(warp_dot(g, &lane, (&o.qsh, &ghc), (k_row, kv), o.dim)?);
    }
    let pos = o.parts_of.last(g);
    Ok((scores, pos))
}

fn online_blocks(
    g: &mut Gen,
    o: &Online,
    kv: &str,
    lo: &str,
    hi: &str,
    k_row: Option<&(Vec<String>, String)>,
) -> Result<String, String> {
    let Online {
        stage,
        qsh,
        z,
        c8,
        c7,
        warp,
        sw,
        si,
        spwc,
        slot,
        d0,
        slot_lane0,
        ninf,
        zero,
        slots_i,
        ..
    } = o;
    let kc = o.kc;
    let vc = o.vc;
    let group = o.group;
    let per = o.per;
    let sub = o.sub;
    // The warp's slots take blocks first + slot, + slots, ...: the loop runs over the
    // warp's first slot's blocks, so every lane of a warp runs as many rounds (its
    // shuffles span the warp); a later slot's block past the end is clamped to the last
    // and folds in nothing.
    let (first, end) = run_blocks(g, lo, hi, c7, c8);
    let wfirst = g.op(format!("arith.muli {warp}, {spwc} : i64"));
    let start = g.op(format!("arith.addi {first}, {wfirst} : i64"));
    let si_i = g.op(format!("arith.index_cast {start} : i64 to index"));
    let ei_i = g.op(format!("arith.index_cast {end} : i64 to index"));
    let lastb = last_of(g, &end);
    // The running state: per head its max and sum, then this lane's output lanes.
    let nstate = (2 + per) * group;
    let (ng, np_) = (group as usize, per as usize);
    let carried: Vec<String> = (0..nstate).map(|_| g.fresh()).collect();
    let init: Vec<String> = carried
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", if i < ng { &ninf } else { &zero }))
        .collect();
    let tys = vec!["f32"; nstate as usize].join(", ");
    let (bb, out) = (g.fresh(), g.fresh());
    g.open(format!(
        "{out}:{nstate} = scf.for {bb} = {si_i} to {ei_i} step {slots_i} iter_args({}) -> ({tys}) {{",
        init.join(", ")
    ));
    let blk = g.op(format!("arith.index_cast {bb} : index to i64"));
    let blk = g.op(format!("arith.addi {blk}, {sw} : i64"));
    let live = g.op(format!("arith.cmpi slt, {blk}, {end} : i64"));
    let blk = g.op(format!("arith.minsi {blk}, {lastb} : i64"));
    let q0 = g.op(format!("arith.muli {blk}, {c8} : i64"));
    let mut staged = [Vec::new(), Vec::new()];
    for (which, cache) in [kc, vc].into_iter().enumerate() {
        let wc = g.i64c(which as i64);
        for dd in 0..per {
            let ddc = g.i64c(dd);
            let dl = g.op(format!("arith.addi {d0}, {ddc} : i64"));
            let src = g.ptr(cache, &[q0.clone(), kv.to_string(), dl]);
            let dst = g.ptr(
                stage,
                &[slot.clone(), wc.clone(), ddc, si.clone(), z.clone()],
            );
            g.cp_async16(&dst, &src);
            staged[which].push(dst);
        }
    }
    g.cp_async_commit();
    g.preload_wait();
    let [ks, vs] = staged;
    // Every head's partial dots with the block's 8 positions over this lane's lanes
    // (each K element widened once, used for every head), summed over the slot by one
    // reduce-scatter: each lane is left a few of the sums.
    let mut dots: Vec<String> = (0..group * 8).map(|_| zero.clone()).collect();
    for (dd, kp) in ks.iter().enumerate() {
        let k = g.load_words16(kp);
        let ddc = g.i64c(dd as i64);
        let dl = g.op(format!("arith.addi {d0}, {ddc} : i64"));
        // (Volatile: loads the loop would otherwise hoist, holding every head's lanes.)
        let qv: Vec<String> = (0..group)
            .map(|gh| {
                let ghc = g.i64c(gh);
                let p = g.ptr(qsh, &[ghc, dl.clone()]);
                g.op(format!("llvm.load volatile {p} : !llvm.ptr<3> -> f32"))
            })
            .collect();
        for j in 0..8usize {
            let e = g.bf16_of_words(&k, j);
            for (gh, qv) in qv.iter().enumerate() {
                let a = &mut dots[gh * 8 + j];
                let m = g.op(format!("arith.mulf {qv}, {e} : f32"));
                *a = g.op(format!("arith.addf {a}, {m} : f32"));
            }
        }
    }
    let (held, splits) = g.lanes_reduce_scatter(dots, sub);
    let mut next = carried.clone();
    for gh in 0..ng {
        // The head's 8 scores, gathered by every lane from the lanes that hold them;
        // past the run, -inf. Then its max, the rescale of the running state, weights.
        let mut s = Vec::new();
        for j in 0..8 {
            let x = g.lanes_gather(&held, &splits, gh * 8 + j, slot_lane0);
            let jc = g.i64c(j as i64);
            let pj = g.op(format!("arith.addi {q0}, {jc} : i64"));
            let x = match k_row {
                Some((scores, pos)) => {
                    let at = g.op(format!("arith.cmpi eq, {pj}, {pos} : i64"));
                    g.op(format!("arith.select {at}, {}, {x} : f32", scores[gh]))
                }
                None => x,
            };
            let ok = g.op(format!("arith.cmpi slt, {pj}, {hi} : i64"));
            s.push(g.op(format!("arith.select {ok}, {x}, {ninf} : f32")));
        }
        let mut mb = s[0].clone();
        for x in &s[1..] {
            mb = g.op(format!("arith.maximumf {mb}, {x} : f32"));
        }
        let m_old = &carried[gh];
        let mn = g.op(format!("arith.maximumf {m_old}, {mb} : f32"));
        let dm = g.op(format!("arith.subf {m_old}, {mn} : f32"));
        let alpha = g.ex2(&dm);
        let w: Vec<String> = s
            .iter()
            .map(|x| {
                let d = g.op(format!("arith.subf {x}, {mn} : f32"));
                g.ex2(&d)
            })
            .collect();
        let mut l = g.op(format!("arith.mulf {}, {alpha} : f32", carried[ng + gh]));
        for x in &w {
            l = g.op(format!("arith.addf {l}, {x} : f32"));
        }
        for (dd, vp) in vs.iter().enumerate() {
            let v = g.load_words16(vp);
            let at = 2 * ng + gh * np_ + dd;
            let mut a = g.op(format!("arith.mulf {}, {alpha} : f32", carried[at]));
            for (j, wj) in w.iter().enumerate() {
                let e = g.bf16_of_words(&v, j);
                let m = g.op(format!("arith.mulf {wj}, {e} : f32"));
                a = g.op(format!("arith.addf {a}, {m} : f32"));
            }
            next[at] = a;
        }
        next[gh] = mn;
        next[ng + gh] = l;
    }
    // (A clamped block keeps the state: its scores would be those of the last block.)
    let next: Vec<String> = next
        .iter()
        .zip(&carried)
        .map(|(n, c)| g.op(format!("arith.select {live}, {n}, {c} : f32")))
        .collect();
    g.line(format!("scf.yield {} : {tys}", next.join(", ")));
    g.close("}");
    Ok(out)
}

/// The slots' states of one row meet: each rescaled to the row's max, summed, and stored
/// where a box of the result (part `p`, heads from `hbase`) holds them.
fn online_merge(
    g: &mut Gen,
    o: &Online,
    out: &str,
    p: &str,
    hbase: &str,
    b: &[(String, String)],
) -> Result<(), String> {
    let Online {
        states,
        factors,
        maxes,
        z,
        si,
        slot,
        d0,
        ninf,
        zero,
        ..
    } = o;
    let res = o.res;
    let dim = o.dim;
    let group = o.group;
    let per = o.per;
    let slots = o.slots;
    let lanes_out = o.lanes_out;
    let (ng, np_) = (group as usize, per as usize);
    let got = |i: usize| format!("{out}#{i}");
    // The states replace the staged blocks: every slot's loop must be over.
    g.barrier();
    for gh in 0..ng {
        let ghc = g.i64c(gh as i64);
        for dd in 0..per {
            let ddc = g.i64c(dd);
            let dl = g.op(format!("arith.addi {d0}, {ddc} : i64"));
            let v = got(2 * ng + gh * np_ + dd as usize);
            g.store(states, &[slot.clone(), ghc.clone(), dl], &v)?;
        }
        let lead = g.op(format!("arith.cmpi eq, {si}, {z} : i64"));
        g.open(format!("scf.if {lead} {{"));
        for (k, v) in [(dim, got(gh)), (dim + 1, got(ng + gh))] {
            let kc = g.i64c(k);
            g.store(states, &[slot.clone(), ghc.clone(), kc], &v)?;
        }
        g.close("}");
    }
    g.barrier();
    // Per (slot, head): its factor 2^(m - M) to the row's max M (0 for a slot with no
    // positions).
    let slots_heads = g.const_box(&vec![(0, slots), (0, group)]);
    g.for_box_by(&slots_heads, "%tid", "%nthreads", &mut |g, o| {
        let (sl, gh) = (o[0].clone(), o[1].clone());
        let mc = g.i64c(dim);
        let mx = over_slots(g, slots, ninf, true, &mut |g, sc| {
            g.load(states, &[sc.to_string(), gh.clone(), mc.clone()])
        })?;
        let m = g.load(states, &[sl.clone(), gh.clone(), mc.clone()])?;
        let d = g.op(format!("arith.subf {m}, {mx} : f32"));
        let f = g.ex2(&d);
        let empty = g.op(format!("arith.cmpf oeq, {m}, {ninf} : f32"));
        let f = g.op(format!("arith.select {empty}, {zero}, {f} : f32"));
        g.store(factors, &[sl.clone(), gh.clone()], &f)?;
        let first_slot = g.op(format!("arith.cmpi eq, {sl}, {z} : i64"));
        g.open(format!("scf.if {first_slot} {{"));
        g.store(maxes, &[gh], &mx)?;
        g.close("}");
        Ok(())
    })?;
    g.barrier();
    // The row's result: per head its lanes, max (base e) and sum, where a box holds them.
    let heads_out = g.const_box(&vec![(0, group), (0, lanes_out)]);
    g.for_box_by(&heads_out, "%tid", "%nthreads", &mut |g, o| {
        let (gh, ln) = (o[0].clone(), o[1].clone());
        let y = over_slots(g, slots, zero, false, &mut |g, sc| {
            let f = g.load(factors, &[sc.to_string(), gh.clone()])?;
            let x = g.load(states, &[sc.to_string(), gh.clone(), ln.clone()])?;
            Ok(g.op(format!("arith.mulf {f}, {x} : f32")))
        })?;
        let mx = g.load(maxes, std::slice::from_ref(&gh))?;
        let ln2 = g.f32c(std::f64::consts::LN_2);
        let m = g.op(format!("arith.mulf {mx}, {ln2} : f32"));
        let dmc = g.i64c(dim);
        let is_m = g.op(format!("arith.cmpi eq, {ln}, {dmc} : i64"));
        let y = g.op(format!("arith.select {is_m}, {m}, {y} : f32"));
        let h = g.op(format!("arith.addi {hbase}, {gh} : i64"));
        let mut inside = g.op("arith.constant true");
        for (x, (blo, bhi)) in [&h, &ln].into_iter().zip(&b[1..]) {
            let a = g.op(format!("arith.cmpi sge, {x}, {blo} : i64"));
            let c = g.op(format!("arith.cmpi slt, {x}, {bhi} : i64"));
            let ac = g.op(format!("arith.andi {a}, {c} : i1"));
            inside = g.op(format!("arith.andi {inside}, {ac} : i1"));
        }
        g.open(format!("scf.if {inside} {{"));
        g.store(res, &[p.to_string(), h, ln], &y)?;
        g.close("}");
        Ok(())
    })?;
    // (The next row stages its blocks over the states, and rewrites q.)
    g.barrier();
    Ok(())
}

/// The sum (or max) of `term(slot)` over `slots` slots: a loop taking a few a round, their
/// loads in flight together (unrolled whole, every load would be hoisted at once).
pub(crate) fn over_slots(
    g: &mut Gen,
    slots: i64,
    init: &str,
    max: bool,
    term: &mut dyn FnMut(&mut Gen, &str) -> Result<String, String>,
) -> Result<String, String> {
    let u = [4i64, 2, 1]
        .into_iter()
        .find(|u| slots % u == 0)
        .unwrap_or(1);
    let (i, acc, res) = (g.fresh(), g.fresh(), g.fresh());
    let n = g.idx(slots);
    let step = g.idx(u);
    g.open(format!(
        "{res} = scf.for {i} = %c0_idx to {n} step {step} iter_args({acc} = {init}) -> (f32) {{"
    ));
    let i0 = g.op(format!("arith.index_cast {i} : index to i64"));
    let mut terms = Vec::new();
    for k in 0..u {
        let kc = g.i64c(k);
        let sk = g.op(format!("arith.addi {i0}, {kc} : i64"));
        terms.push(term(g, &sk)?);
    }
    let mut a = acc.clone();
    for t in terms {
        a = if max {
            g.op(format!("arith.maximumf {a}, {t} : f32"))
        } else {
            g.op(format!("arith.addf {a}, {t} : f32"))
        };
    }
    g.line(format!("scf.yield {a} : f32"));
    g.close("}");
    Ok(res)
}
