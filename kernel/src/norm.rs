//! Reductions over an axis: RMS norms and argmax.

use crate::gen::*;
use crate::ops::{temp, OpEmit};
use crate::plan::PlanCx;
use crate::scratch::*;
use mkc_ir::attr::Attr;
use mkc_ir::dialect::kernel::{Choice, Place};
use mkc_ir::tiling::full_box;
use mkc_ir::ElemType;

/// The rows of a norm over `axis..` of `x` (its leading axes).
fn norm_rows(x: &View, axis_attr: Option<i64>) -> (usize, Vec<i64>) {
    let rank = x.shape.len();
    let axis = axis_attr.unwrap_or(0).rem_euclid(rank.max(1) as i64) as usize;
    (axis, x.shape[..axis].to_vec())
}

/// A norm's temporaries (1/rms per row, the CTA's partial sums, and its weight staged in
/// shared memory where the budget holds it) and whether one row takes the whole CTA.
pub(crate) fn plan_rms_norm(
    cx: &mut PlanCx,
    ins: &[View],
    axis: Option<i64>,
) -> (Vec<Place>, Choice) {
    let (x, w) = (&ins[0], &ins[1]);
    let (axis, rows) = norm_rows(x, axis);
    let mut temps = vec![
        cx.scratch.alloc(&rows, ElemType::F32),
        cx.scratch.alloc(&[(cx.threads / 32) as i64], ElemType::F32),
    ];
    // The weight is copied into shared memory by asynchronous copies issued first, so they
    // travel with the sum of squares' loads of x (a contiguous, 16-byte-aligned weight
    // over the normalized axes only).
    let staged = match cx.options.staged_norm_weights && w.shape.len() <= x.shape.len() - axis {
        true => cx.scratch.stage(w),
        false => None,
    };
    temps.extend(staged.clone());
    let choice = Choice::Norm {
        cta: rows.iter().product::<i64>() == 1,
        staged: staged.is_some(),
    };
    (temps, choice)
}

/// Argmax's temporary: the warps' (value, index) pairs.
pub(crate) fn plan_argmax(cx: &mut PlanCx) -> Vec<Place> {
    vec![cx
        .scratch
        .alloc(&[(cx.threads / 32) as i64, 2], ElemType::F32)]
}

/// RMS normalisation over `axis..`: per row 1/rms (the CTA on one row, a warp a row on
/// several), then every element of the boxes scaled by it and the weight.
pub(crate) fn emit_rms_norm(g: &mut Gen, cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let out_shape = &e.out_shape;
    let d = e.d;
    let int_attr = |k: &str| e.int_attr(k);
    let x = &ins[0];
    let (axis, rows) = norm_rows(x, int_attr("axis"));
    let eps = d
        .attrs
        .get("epsilon")
        .and_then(Attr::as_f64)
        .unwrap_or(1e-6);
    let cols: i64 = x.shape[axis..].iter().product();
    let Choice::Norm {
        cta: one_row,
        staged,
    } = e.plan.choice
    else {
        return Err("internal error: the plan gives a norm no choice".into());
    };
    let stats = cx.place(g, temp(e, 0)?, &rows, ElemType::F32)?;
    let partials = cx.place(g, temp(e, 1)?, &[(g.threads / 32) as i64], ElemType::F32)?;
    // The weight is copied into shared memory by asynchronous copies issued first,
    // so they travel with phase 1's loads of x: phase 2 then reads x again (from
    // L1) and the weight from shared memory, instead of paying an L2 round trip for
    // the weight before the product that follows can start. (A contiguous,
    // 16-byte-aligned weight over the normalized axes only.)
    let w_in = &ins[1];
    let staged_w = match staged {
        true => Some(cx.place_stage(g, temp(e, 2)?, w_in)?),
        false => None,
    };
    // Phase 1: 1/rms per row. One row (the hidden state) takes the whole CTA; several
    // (q/k's heads) take a warp each, all at once.
    let all_rows = g.const_box(&full_box(&rows));
    let (first, step) = if one_row {
        ("%c0_idx", "%c1_idx")
    } else {
        ("%warp", "%nwarps")
    };
    g.for_box_by(&all_rows, first, step, &mut |g, ri| {
        let rs = row_major(&x.shape[axis..]);
        let xs = x.shape[axis..].to_vec();
        let mut square = |g: &mut Gen, k: &str, acc: &str| -> Result<String, String> {
            let mut i: Vec<String> = ri.to_vec();
            i.extend(unflatten_with(g, k, &xs, &rs));
            let v = g.load(x, &i)?;
            let sq = g.op(format!("arith.mulf {v}, {v} : f32"));
            Ok(if acc.is_empty() {
                sq
            } else {
                g.op(format!("arith.addf {acc}, {sq} : f32"))
            })
        };
        let sum = if one_row {
            g.cta_sum(cols, &partials, &mut |g, k, _| square(g, k, ""))?
        } else {
            let n = g.i64c(cols);
            let zero = g.f32c(0.0);
            g.lane_reduce(&n, &zero, false, &mut square)?
        };
        let nf = g.f32c(cols as f64);
        let mean = g.op(format!("arith.divf {sum}, {nf} : f32"));
        let e = g.f32c(eps);
        let me = g.op(format!("arith.addf {mean}, {e} : f32"));
        let s = g.sqrt(&me);
        let one = g.f32c(1.0);
        let inv = g.op(format!("arith.divf {one}, {s} : f32"));
        g.open(if one_row {
            "scf.if %is_t0 {"
        } else {
            "scf.if %lane0 {"
        });
        g.store(&stats, ri, &inv)?;
        g.close("}");
        Ok(())
    })?;
    if staged_w.is_some() {
        g.preload_wait();
    }
    g.barrier();
    // Four elements a round, their loads in flight together: a round trip to L2
    // costs about a microsecond under load, and 4096 elements over 512 threads
    // would pay it 8 times in a row. (Unrolling every elementwise loop so measured
    // slower: boxes of several axes pay their index arithmetic per element.)
    g.for_region_by(need, "%tid", "%nthreads", 4, &mut |g, o| {
        let v = g.load(x, o)?;
        let inv = g.load(&stats, &o[..axis])?;
        let wi = broadcast_idx(g, o, out_shape, &ins[1].shape);
        let w = g.load(staged_w.as_ref().unwrap_or(&ins[1]), &wi)?;
        let t = g.op(format!("arith.mulf {v}, {inv} : f32"));
        let y = g.op(format!("arith.mulf {t}, {w} : f32"));
        g.store(res, o, &y)
    })?;
    Ok(())
}

/// Loads a thread's argmax issues a round.
const UNROLL: i64 = 16;

/// Element (with `per` 4: 16-byte chunk) c = k0 + threads * j, j < `unroll`, of the run of
/// `n` elements from `start` (an i64, a multiple of `per`) along `axis` of the row at
/// `base`: (in range, index from the run's start, value) of each element, in increasing
/// index order; chunk c holds elements 4c..4c + 4 of the run.
#[allow(clippy::too_many_arguments)]
fn argmax_loads(
    g: &mut Gen,
    x: &View,
    base: &[String],
    axis: usize,
    start: &str,
    n: i64,
    k0: &str,
    per: i64,
    unroll: i64,
) -> Result<Vec<(String, String, String)>, String> {
    let t = g.threads as i64;
    let count = g.i64c(n / per);
    let lastc = g.i64c(n / per - 1);
    let mut loads = Vec::new();
    for j in 0..unroll {
        let dj = g.i64c(t * j);
        let cj = g.op(format!("arith.addi {k0}, {dj} : i64"));
        let ok = g.op(format!("arith.cmpi slt, {cj}, {count} : i64"));
        let cc = g.op(format!("arith.minsi {cj}, {lastc} : i64"));
        let mut i = base.to_vec();
        if per == 1 {
            i[axis] = g.op(format!("arith.addi {cc}, {start} : i64"));
            let v = g.load(x, &i)?;
            loads.push((ok, cj, v));
            continue;
        }
        let pc = g.i64c(per);
        let e0 = g.op(format!("arith.muli {cc}, {pc} : i64"));
        i[axis] = g.op(format!("arith.addi {e0}, {start} : i64"));
        let p = g.ptr(x, &i);
        let v = g.op(format!(
            "llvm.load {p} {{alignment = 16 : i64}} : !llvm.ptr<{}> -> vector<4xf32>",
            x.space
        ));
        let k = g.op(format!("arith.muli {cj}, {pc} : i64"));
        for e in 0..per {
            let ec = g.op(format!("arith.constant {e} : i32"));
            let xe = g.op(format!(
                "llvm.extractelement {v}[{ec} : i32] : vector<4xf32>"
            ));
            let de = g.i64c(e);
            let ke = g.op(format!("arith.addi {k}, {de} : i64"));
            loads.push((ok.clone(), ke, xe));
        }
    }
    Ok(loads)
}

/// Whether the (value, index) pair `(ov, oi)` beats `(bv, bix)`: a larger value, or an
/// equal one at a smaller index (a larger one for `last`); an index of -1 is no pair, which
/// loses to any. The new pair.
fn argmax_pick(
    g: &mut Gen,
    last: bool,
    (bv, bix): (&str, &str),
    (ov, oi): (&str, &str),
) -> (String, String) {
    let none = g.op("arith.constant -1 : i32");
    let gt = g.op(format!("arith.cmpf ogt, {ov}, {bv} : f32"));
    let eq = g.op(format!("arith.cmpf oeq, {ov}, {bv} : f32"));
    let order = if last { "sgt" } else { "slt" };
    let tie = g.op(format!("arith.cmpi {order}, {oi}, {bix} : i32"));
    let tie = g.op(format!("arith.andi {eq}, {tie} : i1"));
    let mine_none = g.op(format!("arith.cmpi eq, {bix}, {none} : i32"));
    let other_some = g.op(format!("arith.cmpi ne, {oi}, {none} : i32"));
    let take = g.op(format!("arith.ori {gt}, {tie} : i1"));
    let take = g.op(format!("arith.ori {take}, {mine_none} : i1"));
    let take = g.op(format!("arith.andi {take}, {other_some} : i1"));
    let nv = g.op(format!("arith.select {take}, {ov}, {bv} : f32"));
    let ni = g.op(format!("arith.select {take}, {oi}, {bix} : i32"));
    (nv, ni)
}

/// The run of `n` elements from `start` (an i64) along `axis` of the row at `base`, and how
/// argmax reads it.
struct ArgmaxRun<'a> {
    x: &'a View,
    base: Vec<String>,
    axis: usize,
    start: String,
    n: i64,
    per: i64,
    last: bool,
    /// Loads in flight a round ([`UNROLL`] at most).
    unroll: i64,
}

/// The CTA's argmax of a run, up to the warps' winners: thread t takes element (or 16-byte
/// chunk) t, t + threads, ... with the run's `unroll` loads in flight, in increasing order; the warps
/// compare (value, index) pairs by shuffles and store theirs in `partials`; a barrier.
/// Ties go to the first index (or the last). [`warps_winner`] then gives the run's.
fn cta_argmax(g: &mut Gen, r: &ArgmaxRun, partials: &View) -> Result<(), String> {
    let t = g.threads as i64;
    let (k, best, bi, rb, ri) = (g.fresh(), g.fresh(), g.fresh(), g.fresh(), g.fresh());
    let nn = g.idx(r.n / r.per);
    let step = g.idx(t * r.unroll);
    let ninf = g.f32c(f64::NEG_INFINITY);
    let none = g.op("arith.constant -1 : i32");
    g.open(format!(
        "{rb}, {ri} = scf.for {k} = %tid to {nn} step {step} iter_args({best} = {ninf}, {bi} = {none}) -> (f32, i32) {{"
    ));
    let k0 = g.op(format!("arith.index_cast {k} : index to i64"));
    let loads = argmax_loads(g, r.x, &r.base, r.axis, &r.start, r.n, &k0, r.per, r.unroll)?;
    let (mut cb, mut ci) = (best.clone(), bi.clone());
    for (ok, kj, v) in loads {
        let cmp = if r.last { "oge" } else { "ogt" };
        let better = g.op(format!("arith.cmpf {cmp}, {v}, {cb} : f32"));
        let empty = g.op(format!("arith.cmpi eq, {ci}, {none} : i32"));
        let take = g.op(format!("arith.ori {better}, {empty} : i1"));
        let take = g.op(format!("arith.andi {take}, {ok} : i1"));
        let k32 = g.op(format!("arith.trunci {kj} : i64 to i32"));
        cb = g.op(format!("arith.select {take}, {v}, {cb} : f32"));
        ci = g.op(format!("arith.select {take}, {k32}, {ci} : i32"));
    }
    g.line(format!("scf.yield {cb}, {ci} : f32, i32"));
    g.close("}");
    let (mut bv, mut bix) = (rb.clone(), ri.clone());
    for off in [16, 8, 4, 2, 1] {
        let o32 = g.op(format!("arith.constant {off} : i32"));
        let ov = g.op(format!(
            "nvvm.shfl.sync bfly %full_mask, {bv}, {o32}, %clamp31 : f32 -> f32"
        ));
        let oi = g.op(format!(
            "nvvm.shfl.sync bfly %full_mask, {bix}, {o32}, %clamp31 : i32 -> i32"
        ));
        (bv, bix) = argmax_pick(g, r.last, (&bv, &bix), (&ov, &oi));
    }
    let w64 = g.op("arith.index_cast %warp : index to i64");
    let z = g.i64c(0);
    let one = g.i64c(1);
    let bif = g.op(format!("arith.sitofp {bix} : i32 to f32"));
    g.store_lane0(partials, &[w64.clone(), z.clone()], &bv)?;
    g.store_lane0(partials, &[w64, one.clone()], &bif)?;
    g.barrier();
    Ok(())
}

/// The run's (value, index from its start) from the warps' winners in `partials`, the
/// first warp's of equals (the last's with `last`): for thread 0 to use.
fn warps_winner(g: &mut Gen, last: bool, partials: &View) -> Result<(String, String), String> {
    let (z, one) = (g.i64c(0), g.i64c(1));
    let mut acc: Option<(String, String)> = None;
    for w in 0..(g.threads as i64 / 32) {
        let wi = g.i64c(w);
        let v = g.load(partials, &[wi.clone(), z.clone()])?;
        let fi = g.load(partials, &[wi, one.clone()])?;
        let i = g.op(format!("arith.fptosi {fi} : f32 to i32"));
        acc = Some(match acc {
            None => (v, i),
            Some((av, ai)) => argmax_pick(g, last, (&av, &ai), (&v, &i)),
        });
    }
    Ok(acc.expect("at least one warp"))
}

/// Whether argmax along `axis` of `x` (`n` elements) may read 16-byte chunks of 4 f32s: the
/// axis contiguous, every row and run (`run`: the length of the runs it is cut into)
/// starting 16-byte aligned.
fn argmax_per(x: &View, axis: usize, run: i64) -> i64 {
    let rank = x.shape.len();
    let wide = x.elem == ElemType::F32
        && axis == rank - 1
        && x.strides[axis] == 1
        && run % 4 == 0
        && x.strides[..axis].iter().all(|s| s % 4 == 0)
        && (x.base_aligned || x.is_scratch());
    if wide {
        4
    } else {
        1
    }
}

/// The index of the largest element along `axis`, for each element of the boxes: the whole
/// CTA on each in turn.
pub(crate) fn emit_argmax(g: &mut Gen, cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let int_attr = |k: &str| e.int_attr(k);
    let flag = |k: &str| e.flag(k);
    let x = &ins[0];
    let rank = x.shape.len();
    let axis = int_attr("axis").unwrap_or(0).rem_euclid(rank.max(1) as i64) as usize;
    let keep = flag("keepdims");
    let last = flag("select_last_index");
    if x.shape[axis] >= 1 << 24 {
        return Err("argmax over more than 2^24 elements".into());
    }
    let partials = cx.place(g, temp(e, 0)?, &[(g.threads / 32) as i64, 2], ElemType::F32)?;
    let n = x.shape[axis];
    // 16-byte loads of 4 f32s where they can: a quarter of the rounds of L2 latency (a
    // vocabulary's logits are 4 of them).
    let per = argmax_per(x, axis, n);
    for b in need {
        g.for_box_by(b, "%c0_idx", "%c1_idx", &mut |g, o| {
            let mut base: Vec<String> = o.to_vec();
            if !keep {
                let z = g.i64c(0);
                base.insert(axis, z);
            }
            let start = g.i64c(0);
            let run = ArgmaxRun {
                x,
                base,
                axis,
                start,
                n,
                per,
                last,
                unroll: UNROLL,
            };
            cta_argmax(g, &run, &partials)?;
            g.open("scf.if %is_t0 {");
            let (_, ai) = warps_winner(g, last, &partials)?;
            let r64 = g.op(format!("arith.extsi {ai} : i32 to i64"));
            g.store(res, o, &r64)?;
            g.close("}");
            g.barrier();
            Ok(())
        })?;
    }
    Ok(())
}

/// `tg.argmax_partial`: for each part of the boxes (their first axis), the CTA's argmax of
/// its run; thread 0 stores the value and the index in the vector (as f32) where the box
/// holds them.
pub(crate) fn emit_argmax_partial(g: &mut Gen, cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let x = &e.ins[0];
    let (n, parts) = (x.shape[0], e.out_shape[0]);
    if n >= 1 << 24 || parts < 1 || n % parts != 0 {
        return Err(format!(
            "internal error: argmax_partial of {n} elements in {parts} parts"
        ));
    }
    let run = n / parts;
    let last = e.flag("select_last_index");
    let partials = cx.place(g, temp(e, 0)?, &[(g.threads / 32) as i64, 2], ElemType::F32)?;
    let per = argmax_per(x, 0, run);
    for b in e.need {
        let parts_box = vec![b[0].clone()];
        let (l0, l1) = b[1].clone();
        g.for_box_by(&parts_box, "%c0_idx", "%c1_idx", &mut |g, o| {
            let rc = g.i64c(run);
            let start = g.op(format!("arith.muli {}, {rc} : i64", o[0]));
            let r = ArgmaxRun {
                x,
                base: vec![start.clone()],
                axis: 0,
                start: start.clone(),
                n: run,
                per,
                last,
                // A part takes a round or a few: no more loads than its run has.
                unroll: ((run / per + g.threads as i64 - 1) / g.threads as i64).clamp(1, UNROLL),
            };
            cta_argmax(g, &r, &partials)?;
            g.open("scf.if %is_t0 {");
            let (v, i) = warps_winner(g, last, &partials)?;
            let i64_ = g.op(format!("arith.extsi {i} : i32 to i64"));
            let at = g.op(format!("arith.addi {i64_}, {start} : i64"));
            let fi = g.op(format!("arith.sitofp {at} : i64 to f32"));
            for (lane, val) in [(0i64, &v), (1, &fi)] {
                let lc = g.i64c(lane);
                let ge = g.op(format!("arith.cmpi sge, {lc}, {l0} : i64"));
                let lt = g.op(format!("arith.cmpi slt, {lc}, {l1} : i64"));
                let held = g.op(format!("arith.andi {ge}, {lt} : i1"));
                g.open(format!("scf.if {held} {{"));
                g.store(&e.res, &[o[0].clone(), lc], val)?;
                g.close("}");
            }
            g.close("}");
            g.barrier();
            Ok(())
        })?;
    }
    Ok(())
}

/// `tg.argmax_combine`: thread 0 walks the parts' winners in order (the pick of
/// `tg.argmax_combine`'s definition) and stores the index.
pub(crate) fn emit_argmax_combine(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let w = &e.ins[0];
    let parts = w.shape[0];
    let last = e.flag("select_last_index");
    if e.need.is_empty() {
        return Ok(());
    }
    g.open("scf.if %is_t0 {");
    let (z, one) = (g.i64c(0), g.i64c(1));
    let v0 = g.load(w, &[z.clone(), z.clone()])?;
    let i0 = g.load(w, &[z.clone(), one.clone()])?;
    let (p, bv, bi, won) = (g.fresh(), g.fresh(), g.fresh(), g.fresh());
    let (lo, hi) = (g.idx(1), g.idx(parts));
    g.open(format!(
        "{won}:2 = scf.for {p} = {lo} to {hi} step %c1_idx iter_args({bv} = {v0}, {bi} = {i0}) -> (f32, f32) {{"
    ));
    let p64 = g.op(format!("arith.index_cast {p} : index to i64"));
    let v = g.load(w, &[p64.clone(), z.clone()])?;
    let i = g.load(w, &[p64, one.clone()])?;
    let cmp = if last { "oge" } else { "ogt" };
    let take = g.op(format!("arith.cmpf {cmp}, {v}, {bv} : f32"));
    let nv = g.op(format!("arith.select {take}, {v}, {bv} : f32"));
    let ni = g.op(format!("arith.select {take}, {i}, {bi} : f32"));
    g.line(format!("scf.yield {nv}, {ni} : f32, f32"));
    g.close("}");
    // The winner's index (its value, the loop's first result, was only compared).
    let r64 = g.op(format!("arith.fptosi {won}#1 : f32 to i64"));
    g.store(&e.res, &[], &r64)?;
    g.close("}");
    Ok(())
}
