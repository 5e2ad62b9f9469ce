//! One op of a task's slice, rendered over the boxes the slice needs.

use crate::attention::*;
use crate::gen::*;
use crate::scratch::*;
use mkc_ir::attr::Attr;
use mkc_ir::dialect::tg::nn::rope_inv_freq;
use mkc_ir::tiling::full_box;
use mkc_ir::{ElemType, OpId};

pub(crate) fn scalar(g: &mut Gen, name: &str, a: &[String], float: bool) -> Result<String, String> {
    let (t, p) = if float { ("f32", "f") } else { ("i64", "i") };
    Ok(match (name, float) {
        ("tg.add", _) => g.op(format!("arith.add{p} {}, {} : {t}", a[0], a[1])),
        ("tg.sub", _) => g.op(format!("arith.sub{p} {}, {} : {t}", a[0], a[1])),
        ("tg.mul", _) => g.op(format!("arith.mul{p} {}, {} : {t}", a[0], a[1])),
        ("tg.div", true) => g.op(format!("arith.divf {}, {} : f32", a[0], a[1])),
        ("tg.max", true) => g.op(format!("arith.maximumf {}, {} : f32", a[0], a[1])),
        ("tg.min", true) => g.op(format!("arith.minimumf {}, {} : f32", a[0], a[1])),
        ("tg.neg", true) => g.op(format!("arith.negf {} : f32", a[0])),
        ("tg.exp", true) => g.exp(&a[0]),
        ("tg.sqrt", true) => g.sqrt(&a[0]),
        ("tg.rsqrt", true) => {
            let s = g.sqrt(&a[0]);
            let one = g.f32c(1.0);
            g.op(format!("arith.divf {one}, {s} : f32"))
        }
        ("tg.reciprocal", true) => {
            let one = g.f32c(1.0);
            g.op(format!("arith.divf {one}, {} : f32", a[0]))
        }
        ("tg.sigmoid" | "tg.silu", true) => {
            let n = g.op(format!("arith.negf {} : f32", a[0]));
            let e = g.exp(&n);
            let one = g.f32c(1.0);
            let d = g.op(format!("arith.addf {one}, {e} : f32"));
            let s = g.op(format!("arith.divf {one}, {d} : f32"));
            if name == "tg.silu" {
                g.op(format!("arith.mulf {}, {s} : f32", a[0]))
            } else {
                s
            }
        }
        ("tg.relu", true) => {
            let z = g.f32c(0.0);
            g.op(format!("arith.maximumf {}, {z} : f32", a[0]))
        }
        _ => {
            return Err(format!(
                "the GPU lowering has no code for '{name}' on {} yet",
                if float { "floats" } else { "integers" }
            ))
        }
    })
}

/// Emits one op of a slice: every element of `need` for its result(s), into scratch.
pub(crate) fn emit_op(g: &mut Gen, cx: &mut TaskCx, op: OpId, need: &[RBox]) -> Result<(), String> {
    let body = cx.body;
    let d = &body.ops[op];
    let name = d.name.as_str();
    let r = d.results[0];
    let out_shape = shape_of(body, r);
    let out_elem = elem_of(body, r);
    let ins: Vec<View> = d
        .operands
        .iter()
        .map(|&v| cx.view(v).cloned())
        .collect::<Result<_, _>>()?;
    let int_attr = |k: &str| d.attrs.get(k).and_then(Attr::as_int);
    let flag = |k: &str| matches!(d.attrs.get(k), Some(Attr::Bool(true)) | Some(Attr::Unit));
    let float_out = out_elem.is_float();
    let elementwise = mkc_ir::dialect::tg::elementwise::semantics(name, &d.attrs).is_some();
    let direct = matches!(&cx.direct, Some((v, _)) if *v == r);
    // A reshape of a row-major value is the same elements: a new view of them, no copy.
    if name == "tg.reshape" && !direct && ins[0].strides == row_major(&ins[0].shape) {
        let view = View {
            shape: out_shape.clone(),
            strides: row_major(&out_shape),
            ..ins[0].clone()
        };
        cx.views.insert(r, view);
        return Ok(());
    }
    let res = match &cx.direct {
        Some((v, view)) if *v == r => view.clone(),
        _ => cx.result_scratch(g, &out_shape, out_elem, need),
    };
    match name {
        "tg.cast" => {
            g.for_region(need, &mut |g, o| {
                let x = g.load(&ins[0], o)?;
                let y = match (ins[0].elem.is_float(), float_out) {
                    (true, true) | (false, false) => x,
                    (false, true) => g.op(format!("arith.sitofp {x} : i64 to f32")),
                    (true, false) => g.op(format!("arith.fptosi {x} : f32 to i64")),
                };
                // A float cast rounds to its type.
                let y = if matches!(out_elem, ElemType::BF16 | ElemType::F16) {
                    let t = mlir_type(out_elem)?;
                    let n = g.op(format!("arith.truncf {y} : f32 to {t}"));
                    g.op(format!("arith.extf {n} : {t} to f32"))
                } else {
                    y
                };
                g.store(&res, o, &y)
            })?;
        }
        _ if elementwise => {
            g.for_region(need, &mut |g, o| {
                let mut args = Vec::new();
                for v in &ins {
                    let i = broadcast_idx(g, o, &out_shape, &v.shape);
                    args.push(g.load(v, &i)?);
                }
                let y = scalar(g, name, &args, float_out)?;
                g.store(&res, o, &y)
            })?;
        }
        "tg.reshape" => {
            g.for_region(need, &mut |g, o| {
                let f = flatten(g, o, &out_shape);
                let i = unflatten(g, &f, &ins[0].shape);
                let x = g.load(&ins[0], &i)?;
                g.store(&res, o, &x)
            })?;
        }
        "tg.transpose" => {
            let perm: Vec<usize> = d
                .attrs
                .get("perm")
                .and_then(Attr::as_array)
                .unwrap_or(&[])
                .iter()
                .filter_map(|a| a.as_int().map(|x| x as usize))
                .collect();
            g.for_region(need, &mut |g, o| {
                let mut i = vec![String::new(); o.len()];
                for (k, &p) in perm.iter().enumerate() {
                    i[p] = o[k].clone();
                }
                let x = g.load(&ins[0], &i)?;
                g.store(&res, o, &x)
            })?;
        }
        "tg.matmul" => {
            let (a, w) = (&ins[0], &ins[1]);
            let tb = flag("transpose_b");
            if w.shape.len() != 2 {
                return Err(
                    "the GPU lowering handles matmul of a vector or matrix by a 2-D weight only"
                        .into(),
                );
            }
            let kdim = *a.shape.last().unwrap();
            // The fast path: weight rows and the input contiguous along K, 16-byte aligned
            // (packed weights, the arena and scratch are), K a multiple of 8: each lane
            // streams 8 weights (16 bytes) at a time.
            let aligned = |v: &View| v.is_scratch() || v.base_aligned;
            let vectorised = tb
                && kdim % 8 == 0
                && w.elem == ElemType::BF16
                && w.strides == [kdim as u64, 1]
                && a.strides.last() == Some(&1)
                && matches!(a.elem, ElemType::F32 | ElemType::BF16)
                && aligned(w)
                && aligned(a);
            // A matrix-vector product streams its weight rows through the shared-memory
            // ring when there is one and the rows fit a slot.
            let single_row = a.shape[..a.shape.len() - 1].iter().product::<i64>() == 1;
            let fits = g.ring.is_some_and(|(_, bytes)| 2 * kdim <= bytes as i64);
            if vectorised && single_row && fits && !need.is_empty() && !w.is_scratch() {
                g.stream_matvec(a, w, &res, need, kdim)?;
                g.streamed += 1;
                cx.views.insert(r, res);
                return Ok(());
            }
            if vectorised && single_row && g.matvec_rows > 1 {
                // A warp per group of `matvec_rows` rows, their loads in flight at once. The
                // groups of every box are one index space (box number, group), so a tile of
                // several short boxes (rope's lane pairs) keeps every warp busy.
                let rows_per_warp = g.matvec_rows;
                let rc = g.i64c(rows_per_warp);
                let r1 = g.i64c(rows_per_warp - 1);
                let z = g.i64c(0);
                let last = need[0].len() - 1;
                let mut pair_boxes: Vec<RBox> = Vec::new();
                for (i, b) in need.iter().enumerate() {
                    let (n0, n1) = &b[last];
                    let span = g.op(format!("arith.subi {n1}, {n0} : i64"));
                    let pairs = g.op(format!("arith.addi {span}, {r1} : i64"));
                    let pairs = g.op(format!("arith.divsi {pairs}, {rc} : i64"));
                    let (bi, bj) = (g.i64c(i as i64), g.i64c(i as i64 + 1));
                    pair_boxes.push(vec![(bi, bj), (z.clone(), pairs)]);
                }
                // The leading axes are single (a matrix-vector product): every box's are 0.
                let lead: Vec<String> = need[0][..last].iter().map(|x| x.0.clone()).collect();
                g.for_region_warp(&pair_boxes, &mut |g, o| {
                    let (n0, n1) = g.box_bounds(need, &o[0], last);
                    let mut ai = lead.clone();
                    ai.truncate(a.shape.len() - 1);
                    ai.push(z.clone());
                    let row_a = g.ptr(a, &ai);
                    let first = g.op(format!("arith.muli {}, {rc} : i64", o[1]));
                    let first = g.op(format!("arith.addi {first}, {n0} : i64"));
                    let one = g.i64c(1);
                    let lastn = g.op(format!("arith.subi {n1}, {one} : i64"));
                    let mut rows = Vec::new();
                    let mut ptrs = Vec::new();
                    for r in 0..rows_per_warp {
                        let rr = g.i64c(r);
                        let n = g.op(format!("arith.addi {first}, {rr} : i64"));
                        let nc = g.op(format!("arith.minsi {n}, {lastn} : i64"));
                        ptrs.push(g.ptr(w, &[nc, z.clone()]));
                        rows.push(n);
                    }
                    let sums = g.rows_dot8(&ptrs, &row_a, a, kdim, None)?;
                    for (n, v) in rows.into_iter().zip(sums) {
                        let inside = g.op(format!("arith.cmpi slt, {n}, {n1} : i64"));
                        let st = g.op(format!("arith.andi {inside}, %lane0 : i1"));
                        g.open(format!("scf.if {st} {{"));
                        let mut oi = lead.clone();
                        oi.push(n);
                        g.store(&res, &oi, &v)?;
                        g.close("}");
                    }
                    Ok(())
                })?;
                cx.views.insert(r, res);
                return Ok(());
            }
            if vectorised {
                // Blocks of its first row a warp loaded before the task's wait: that row's
                // turn is peeled off the loop (the blocks are dead after it).
                let pre = g.preload.take_if(|p| p.op == op);
                g.for_region_warp_peeled(need, pre.is_some(), &mut |g, o, first| {
                    let n = o.last().unwrap().clone();
                    let z = g.i64c(0);
                    let mut ai: Vec<String> = o[..a.shape.len() - 1].to_vec();
                    ai.push(z.clone());
                    let row_a = g.ptr(a, &ai);
                    let row_w = g.ptr(w, &[n, z]);
                    let acc = match (&pre, first) {
                        (Some(p), true) => g
                            .rows_dot8(&[row_w], &row_a, a, kdim, Some(p.blocks))?
                            .remove(0),
                        _ => g.lane_dot8(&row_w, &row_a, a, kdim)?,
                    };
                    g.store_lane0(&res, o, &acc)
                })?;
                cx.views.insert(r, res);
                return Ok(());
            }
            g.for_region_warp(need, &mut |g, o| {
                let n = o.last().unwrap().clone();
                let lead: Vec<String> = o[..a.shape.len() - 1].to_vec();
                let zero = g.f32c(0.0);
                let kn = g.i64c(kdim);
                let acc = g.lane_reduce(&kn, &zero, false, &mut |g, k, acc| {
                    let mut ai = lead.clone();
                    ai.push(k.to_string());
                    let x = g.load(a, &ai)?;
                    let wi = if tb {
                        vec![n.clone(), k.to_string()]
                    } else {
                        vec![k.to_string(), n.clone()]
                    };
                    let y = g.load(w, &wi)?;
                    let p = g.op(format!("arith.mulf {x}, {y} : f32"));
                    Ok(g.op(format!("arith.addf {acc}, {p} : f32")))
                })?;
                g.store_lane0(&res, o, &acc)
            })?;
        }
        "tg.rms_norm" => {
            let x = &ins[0];
            let rank = x.shape.len();
            let axis = int_attr("axis").unwrap_or(0).rem_euclid(rank.max(1) as i64) as usize;
            let eps = d
                .attrs
                .get("epsilon")
                .and_then(Attr::as_f64)
                .unwrap_or(1e-6);
            let rows: Vec<i64> = x.shape[..axis].to_vec();
            let cols: i64 = x.shape[axis..].iter().product();
            let stats = cx.scratch(g, &rows, ElemType::F32);
            let partials = cx.scratch(g, &[(g.threads / 32) as i64], ElemType::F32);
            // The weight is copied into shared memory by asynchronous copies issued first,
            // so they travel with phase 1's loads of x: phase 2 then reads x again (from
            // L1) and the weight from shared memory, instead of paying an L2 round trip for
            // the weight before the product that follows can start. (A contiguous,
            // 16-byte-aligned weight over the normalized axes only.)
            let w_in = &ins[1];
            let staged_w = if g.staged_norm_weights && w_in.shape.len() <= rank - axis {
                cx.stage(g, w_in)
            } else {
                None
            };
            // Phase 1: 1/rms per row. One row (the hidden state) takes the whole CTA; several
            // (q/k's heads) take a warp each, all at once.
            let all_rows = g.const_box(&full_box(&rows));
            let one_row = rows.iter().product::<i64>() == 1;
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
                let wi = broadcast_idx(g, o, &out_shape, &ins[1].shape);
                let w = g.load(staged_w.as_ref().unwrap_or(&ins[1]), &wi)?;
                let t = g.op(format!("arith.mulf {v}, {inv} : f32"));
                let y = g.op(format!("arith.mulf {t}, {w} : f32"));
                g.store(&res, o, &y)
            })?;
        }
        "tg.rope" => {
            let x = &ins[0];
            let dl = *x.shape.last().unwrap();
            let w = *ins[1].shape.last().unwrap();
            let full = flag("full_width");
            let inter = flag("interleaved");
            let rot = if full { w / 2 } else { w };
            let lead = x.shape[..x.shape.len() - 1].to_vec();
            let cs_lead = ins[1].shape[..ins[1].shape.len() - 1].to_vec();
            g.for_region(need, &mut |g, o| {
                let k = o.len() - 1;
                let lane = o[k].clone();
                let two_r = g.i64c(2 * rot);
                let rotated = g.op(format!("arith.cmpi slt, {lane}, {two_r} : i64"));
                // Lane pair (j, first) and partner lane.
                let (j, first, p1, p2) = if inter {
                    let two = g.i64c(2);
                    let j = g.op(format!("arith.divsi {lane}, {two} : i64"));
                    let m = g.op(format!("arith.remsi {lane}, {two} : i64"));
                    let z = g.i64c(0);
                    let first = g.op(format!("arith.cmpi eq, {m}, {z} : i64"));
                    let a = g.op(format!("arith.muli {j}, {two} : i64"));
                    let one = g.i64c(1);
                    let b2 = g.op(format!("arith.addi {a}, {one} : i64"));
                    (j, first, a, b2)
                } else {
                    let r = g.i64c(rot.max(1));
                    let j = g.op(format!("arith.remsi {lane}, {r} : i64"));
                    let first = g.op(format!("arith.cmpi slt, {lane}, {r} : i64"));
                    let b2 = g.op(format!("arith.addi {j}, {r} : i64"));
                    (j.clone(), first, j, b2)
                };
                // Lanes past 2R pass through: read them at their own index.
                let p1 = g.op(format!("arith.select {rotated}, {p1}, {lane} : i64"));
                let p2 = g.op(format!("arith.select {rotated}, {p2}, {lane} : i64"));
                let mut i1 = o[..k].to_vec();
                i1.push(p1);
                let mut i2 = o[..k].to_vec();
                i2.push(p2);
                let x1 = g.load(x, &i1)?;
                let x2 = g.load(x, &i2)?;
                let at = if full { lane.clone() } else { j };
                let wm1 = g.i64c(w - 1);
                let at = g.op(format!("arith.minsi {at}, {wm1} : i64"));
                let row = flatten(g, &o[..k], &lead);
                let row_idx = unflatten(g, &row, &lead);
                let mut ci = broadcast_idx(g, &row_idx, &lead, &cs_lead);
                ci.push(at);
                let c = g.load(&ins[1], &ci)?;
                let s = g.load(&ins[2], &ci)?;
                let a = g.op(format!("arith.mulf {x1}, {c} : f32"));
                let b1 = g.op(format!("arith.mulf {x2}, {s} : f32"));
                let yf = g.op(format!("arith.subf {a}, {b1} : f32"));
                let a2 = g.op(format!("arith.mulf {x2}, {c} : f32"));
                let b3 = g.op(format!("arith.mulf {x1}, {s} : f32"));
                let ys = g.op(format!("arith.addf {a2}, {b3} : f32"));
                let y = g.op(format!("arith.select {first}, {yf}, {ys} : f32"));
                let own = g.load(x, o)?;
                let y = g.op(format!("arith.select {rotated}, {y}, {own} : f32"));
                g.store(&res, o, &y)
            })?;
            let _ = dl;
        }
        "tg.rope_cos_sin" => {
            let inv = rope_inv_freq(&d.attrs)?;
            let half = inv.len() as i64;
            let res2 = cx.scratch(g, &out_shape, out_elem);
            let pos = &ins[0];
            // Both results over the union of what is needed of either.
            g.for_region(need, &mut |g, o| {
                let k = o.len() - 1;
                let p = g.load(pos, &o[..k])?;
                let pf = g.op(format!("arith.sitofp {p} : i64 to f32"));
                // The inverse frequency, rounded to f32 as transformers holds it.
                let mut f = g.f32c(inv[0]);
                for (i, &v) in inv.iter().enumerate().skip(1) {
                    let c = g.i64c(i as i64);
                    let is = g.op(format!("arith.cmpi eq, {}, {c} : i64", o[k]));
                    let fv = g.f32c(v);
                    f = g.op(format!("arith.select {is}, {fv}, {f} : f32"));
                }
                let ang = g.op(format!("arith.mulf {pf}, {f} : f32"));
                let a64 = g.op(format!("arith.extf {ang} : f32 to f64"));
                let (c, s) = g.cos_sin(&a64);
                let c = g.op(format!("arith.truncf {c} : f64 to f32"));
                let s = g.op(format!("arith.truncf {s} : f64 to f32"));
                g.store(&res, o, &c)?;
                g.store(&res2, o, &s)
            })?;
            let _ = half;
            cx.views.insert(d.results[1], res2);
        }
        "tg.gather" => {
            let axis = int_attr("axis").unwrap_or(0) as usize;
            let (t, ix) = (&ins[0], &ins[1]);
            let ir = ix.shape.len();
            g.for_region(need, &mut |g, o| {
                // out = t[..axis] + idx dims + t[axis+1..]
                let row = g.load(ix, &o[axis..axis + ir])?;
                let mut i: Vec<String> = o[..axis].to_vec();
                i.push(row);
                i.extend(o[axis + ir..].iter().cloned());
                let x = g.load(t, &i)?;
                g.store(&res, o, &x)
            })?;
        }
        "tg.argmax" => {
            let x = &ins[0];
            let rank = x.shape.len();
            let axis = int_attr("axis").unwrap_or(0).rem_euclid(rank.max(1) as i64) as usize;
            let keep = flag("keepdims");
            let last = flag("select_last_index");
            if x.shape[axis] >= 1 << 24 {
                return Err("argmax over more than 2^24 elements".into());
            }
            let partials = cx.scratch(g, &[(g.threads / 32) as i64, 2], ElemType::F32);
            let n = x.shape[axis];
            const UNROLL: i64 = 16;
            let t = g.threads as i64;
            for b in need {
                // The whole CTA on each result in turn: thread t takes t, t + 256, ... with 8
                // loads in flight, the warps compare (value, index) pairs by shuffles, and
                // thread 0 combines the warps'; ties go to the first index (or the last).
                g.for_box_by(b, "%c0_idx", "%c1_idx", &mut |g, o| {
                    let mut base: Vec<String> = o.to_vec();
                    if !keep {
                        let z = g.i64c(0);
                        base.insert(axis, z);
                    }
                    let (k, best, bi, rb, ri) =
                        (g.fresh(), g.fresh(), g.fresh(), g.fresh(), g.fresh());
                    let nn = g.idx(n);
                    let step = g.idx(t * UNROLL);
                    let ninf = g.f32c(f64::NEG_INFINITY);
                    let none = g.op("arith.constant -1 : i32");
                    g.open(format!(
                        "{rb}, {ri} = scf.for {k} = %tid to {nn} step {step} iter_args({best} = {ninf}, {bi} = {none}) -> (f32, i32) {{"
                    ));
                    let k0 = g.op(format!("arith.index_cast {k} : index to i64"));
                    let nc = g.i64c(n);
                    let lastk = g.i64c(n - 1);
                    let mut loads = Vec::new();
                    for j in 0..UNROLL {
                        let dj = g.i64c(t * j);
                        let kj = g.op(format!("arith.addi {k0}, {dj} : i64"));
                        let ok = g.op(format!("arith.cmpi slt, {kj}, {nc} : i64"));
                        let kc = g.op(format!("arith.minsi {kj}, {lastk} : i64"));
                        let mut i = base.clone();
                        i[axis] = kc;
                        let v = g.load(x, &i)?;
                        loads.push((ok, kj, v));
                    }
                    let (mut cb, mut ci) = (best.clone(), bi.clone());
                    for (ok, kj, v) in loads {
                        let cmp = if last { "oge" } else { "ogt" };
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
                    // Pairs compare: the other wins on a larger value, or an equal value at a
                    // smaller index (a larger one for select_last_index); none loses.
                    let pick = |g: &mut Gen, bv: &str, bix: &str, ov: &str, oi: &str| {
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
                    };
                    let (mut bv, mut bix) = (rb.clone(), ri.clone());
                    for off in [16, 8, 4, 2, 1] {
                        let o32 = g.op(format!("arith.constant {off} : i32"));
                        let ov = g.op(format!(
                            "nvvm.shfl.sync bfly %full_mask, {bv}, {o32}, %clamp31 : f32 -> f32"
                        ));
                        let oi = g.op(format!(
                            "nvvm.shfl.sync bfly %full_mask, {bix}, {o32}, %clamp31 : i32 -> i32"
                        ));
                        (bv, bix) = pick(g, &bv, &bix, &ov, &oi);
                    }
                    let w64 = g.op("arith.index_cast %warp : index to i64");
                    let z = g.i64c(0);
                    let one = g.i64c(1);
                    let bif = g.op(format!("arith.sitofp {bix} : i32 to f32"));
                    g.store_lane0(&partials, &[w64.clone(), z.clone()], &bv)?;
                    g.store_lane0(&partials, &[w64, one.clone()], &bif)?;
                    g.barrier();
                    g.open("scf.if %is_t0 {");
                    let mut acc: Option<(String, String)> = None;
                    for w in 0..(t / 32) {
                        let wi = g.i64c(w);
                        let v = g.load(&partials, &[wi.clone(), z.clone()])?;
                        let fi = g.load(&partials, &[wi, one.clone()])?;
                        let i = g.op(format!("arith.fptosi {fi} : f32 to i32"));
                        acc = Some(match acc {
                            None => (v, i),
                            Some((av, ai)) => pick(g, &av, &ai, &v, &i),
                        });
                    }
                    let (_, ai) = acc.expect("at least one warp");
                    let r64 = g.op(format!("arith.extsi {ai} : i32 to i64"));
                    g.store(&res, o, &r64)?;
                    g.close("}");
                    g.barrier();
                    Ok(())
                })?;
            }
        }
        "tg.attention" | "tg.attention_partial" => {
            let scale = d.attrs.get("scale").and_then(Attr::as_f64).unwrap_or(1.0);
            let parts = (name == "tg.attention_partial").then(|| int_attr("parts").unwrap_or(1));
            emit_attention(g, cx, &ins, need, &res, scale, parts)?;
        }
        "tg.attention_combine" => emit_attention_combine(g, &ins, need, &res)?,
        "tg.sdpa" => {
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
            let group = (hq / hk.max(1)).max(1);
            let scale = d.attrs.get("scale").and_then(Attr::as_f64).unwrap_or(1.0);
            let mask = ins.get(3).cloned();
            let mut scores_shape = q.shape[..r - 1].to_vec();
            scores_shape.push(t);
            let scores = cx.scratch(g, &scores_shape, ElemType::F32);
            let mut stats_shape = q.shape[..r - 1].to_vec();
            stats_shape.push(2);
            let stats = cx.scratch(g, &stats_shape, ElemType::F32);
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
                g.store_lane0(&res, o, &y)
            })?;
        }
        "tg.constant" => {
            let value = d.attrs.get("value").and_then(Attr::as_dense);
            let Some(dense) = value.filter(|x| x.splat || x.values.len() == 1) else {
                return Err("the GPU lowering handles splat constants inside groups only".into());
            };
            let v = dense.get_f64(0);
            g.for_region(need, &mut |g, o| {
                let c = if float_out {
                    g.f32c(v)
                } else {
                    g.i64c(v as i64)
                };
                g.store(&res, o, &c)
            })?;
        }
        _ => return Err(format!("the GPU lowering has no code for '{name}' yet")),
    }
    cx.views.insert(r, res);
    Ok(())
}
