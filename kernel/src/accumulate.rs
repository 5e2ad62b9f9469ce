//! `tg.matmul_acc`: a product that adds onto its result. A split-K task (boxes of the [K, N]
//! the product sums over, `tile` cuts them along K) adds its part, `sum_k x[k] w[n, k]` over
//! its K range, onto every row n of the sum in global memory with atomic adds (`red.global`):
//! other tasks add theirs in any order. Its weight is stored [K, N] (`tile` places it so):
//! its K range is one span, each thread reads 8 rows n at once (16 bytes) down K, the CTA's
//! threads split K into groups, each group's parts are stored in shared memory (plain
//! stores: a float atomic add on shared memory is a compare-and-swap loop on sm_90) and
//! summed over the groups after a barrier, then added 16 bytes at a time
//! (`red.global.add.v4.f32`). A row tile (rank-1 boxes, where `tile` did not split K)
//! computes `acc + x w^T` and stores it.

use crate::gen::*;
use crate::ops::{temp, OpEmit};
use crate::plan::PlanCx;
use crate::scratch::*;
use mkc_ir::dialect::kernel::{Choice, Place};
use mkc_ir::ElemType;

/// 16-byte weight loads a thread has in flight at once down K.
const LOADS_IN_FLIGHT: i64 = 4;

/// The threads' layout over a split-K part of `n` rows: chunks of 8 rows (one 16-byte load
/// a row of K), `groups` of threads each taking every `groups`-th K of the range.
fn groups(threads: i64, n: i64) -> (i64, i64) {
    let chunks = n / 8;
    (chunks, (threads / chunks.max(1)).max(1))
}

/// Whether a split-K part reads its weight 8 rows at a time: bf16 stored [K, N] (row n's
/// stride 1), N a multiple of 8 with a thread for every 8 rows, and boxes over all of N.
fn vectorized(w: &View, need: &[RBox], n: i64, threads: i64) -> bool {
    reads_8_rows(w, n, threads) && w.base_aligned && need.iter().all(|b| b.len() == 2)
}

/// Whether a weight stored [K, N] is read 8 rows at a time by `threads` threads: bf16, row
/// n's stride 1, N a multiple of 8, at most a chunk of 8 rows a thread (the layout has no
/// loop over chunks).
fn reads_8_rows(w: &View, n: i64, threads: i64) -> bool {
    w.elem == ElemType::BF16 && w.strides.first() == Some(&1) && n % 8 == 0 && n / 8 <= threads
}

/// The plan of a `tg.matmul_acc`: a split-K part's groups' sums in shared memory (f32, a
/// row of the sum for each group), when its threads split K into several groups; and for a
/// part read 8 rows at a time, the first loads of its loop copied before the wait
/// (`KernelOptions::preload_split_k`).
pub(crate) fn plan_matmul_acc(cx: &mut PlanCx, w: &View, n: i64) -> (Vec<Place>, Choice) {
    let split = cx.extents.iter().any(|b| b.len() == 2);
    let (_, groups) = groups(cx.threads as i64, n);
    let temps = if split && groups > 1 {
        vec![cx.scratch.alloc(&[groups * n], ElemType::F32)]
    } else {
        vec![]
    };
    let preload = (cx.options.preload_split_k as i64).min(LOADS_IN_FLIGHT) as u32;
    let read8 = reads_8_rows(w, n, cx.threads as i64);
    let choice = if split && read8 && w.base_aligned && preload > 0 {
        Choice::SplitK { preload }
    } else {
        Choice::None
    };
    (temps, choice)
}

/// A thread's place in a split-K part of `n` rows: whether it takes part, its K offset in
/// the range (its group) and its first row, `(active, group, row0)`.
fn thread_place(g: &mut Gen, chunks: i64, groups: i64) -> (String, String, String) {
    let (cc, used) = (g.i64c(chunks), g.i64c(chunks * groups));
    let tid = "%tid64";
    let active = g.op(format!("arith.cmpi slt, {tid}, {used} : i64"));
    let chunk = g.op(format!("arith.remsi {tid}, {cc} : i64"));
    let group = g.op(format!("arith.divsi {tid}, {cc} : i64"));
    let eight = g.i64c(8);
    let row0 = g.op(format!("arith.muli {chunk}, {eight} : i64"));
    (active, group, row0)
}

/// The K of a thread's `i`-th load in its loop's first round over `k0..k1`, clamped to the
/// range's last, and whether it is inside the range.
fn first_round_k(
    g: &mut Gen,
    k0: &str,
    k1: &str,
    group: &str,
    groups: i64,
    i: i64,
) -> (String, String) {
    let first = g.op(format!("arith.addi {k0}, {group} : i64"));
    let off = g.i64c(groups * i);
    let k = g.op(format!("arith.addi {first}, {off} : i64"));
    let inside = g.op(format!("arith.cmpi slt, {k}, {k1} : i64"));
    let one = g.i64c(1);
    let last = g.op(format!("arith.subi {k1}, {one} : i64"));
    (g.op(format!("arith.minsi {k}, {last} : i64")), inside)
}

impl Gen {
    /// Copies, before the task's wait, the first `loads` 16-byte loads of this thread's
    /// first round in a split-K part (the first of the `need` boxes) into its slots of the
    /// preload buffer from `slot0` (`cp.async`; the part reads them back after
    /// `cp.async.wait_all`, each thread only its own: no barrier).
    pub(crate) fn emit_split_k_preload(
        &mut self,
        op: mkc_ir::OpId,
        w: &View,
        need: &[RBox],
        n: i64,
        slot0: usize,
        loads: usize,
    ) -> Option<crate::matvec::Preload> {
        let b = need.first().filter(|b| b.len() == 2)?;
        let (chunks, groups) = groups(self.threads as i64, n);
        let (active, group, row0) = thread_place(self, chunks, groups);
        self.open(format!("scf.if {active} {{"));
        for i in 0..loads {
            let (kc, _) = first_round_k(self, &b[0].0, &b[0].1, &group, groups, i as i64);
            let src = self.ptr(w, &[row0.clone(), kc]);
            let dst = self.preload_slot(slot0 + i);
            self.cp_async16(&dst, &src);
        }
        self.cp_async_commit();
        self.close("}");
        self.preloaded += 1;
        self.preload_blocks_max = self.preload_blocks_max.max(slot0 + loads);
        Some(crate::matvec::Preload {
            op,
            slot0,
            blocks: loads,
            held: Vec::new(),
        })
    }
}

pub(crate) fn emit_matmul_acc(g: &mut Gen, cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let (x, w, acc) = (&e.ins[0], &e.ins[1], &e.ins[2]);
    if w.elem.is_block() || e.d.attrs.get("act_q8").is_some() {
        // (`split-k{blocks}` sums run on the interpreter and the simulator.)
        return Err(format!(
            "a split-K sum of a {} weight (split-k{{blocks}}) has no kernel path yet",
            w.elem
        ));
    }
    let n = e.out_shape[0];
    // Where the part goes: the result, and the sums onto it (where it is the task's output).
    let is_output = cx
        .direct
        .as_ref()
        .is_some_and(|(v, _)| e.d.results.contains(v));
    let mut targets = vec![e.res.clone()];
    if is_output {
        targets.extend(cx.onto.iter().cloned());
    }
    if !e.need.iter().any(|b| b.len() == 2) {
        if targets.len() > 1 {
            return Err("internal error: a sum onto another is added onto by row tiles".into());
        }
        return emit_rows(g, e, x, w, acc);
    }
    if targets.iter().any(|s| s.space != 1 || s.is_scratch()) {
        return Err(
            "internal error: a split-K part adds onto a sum that is not in global memory".into(),
        );
    }
    if !vectorized(w, e.need, n, g.threads as i64) || targets.iter().any(|s| !s.base_aligned) {
        return emit_scalar_parts(g, e, x, w, &targets);
    }
    let (chunks, groups) = groups(g.threads as i64, n);
    let sums = match groups {
        1 => None,
        _ => Some(cx.place(g, temp(e, 0)?, &[groups * n], ElemType::F32)?),
    };
    let gc = g.i64c(groups);
    let pre = g.take_preload(e.op);
    let (active, group, row0) = thread_place(g, chunks, groups);
    g.open(format!("scf.if {active} {{"));
    let mut parts: Vec<String> = Vec::new();
    for (i, b) in e.need.iter().enumerate() {
        let (k0, k1) = b[0].clone();
        let copied = pre
            .as_ref()
            .filter(|_| i == 0)
            .map(|p| (p.slot0, p.blocks as i64, groups));
        let part = part_of(g, x, w, (&k0, &k1), (&group, &gc), &row0, copied)?;
        parts.push(part);
    }
    let mut total = parts[0].clone();
    for p in &parts[1..] {
        total = g.op(format!("arith.addf {total}, {p} : vector<8xf32>"));
    }
    let lane = |g: &mut Gen, j: i64| {
        let c = g.op(format!("arith.constant {j} : i32"));
        g.op(format!(
            "llvm.extractelement {total}[{c} : i32] : vector<8xf32>"
        ))
    };
    match &sums {
        Some(s) => {
            // The group's rows: element group * n + row.
            let nc = g.i64c(n);
            let at = g.op(format!("arith.muli {group}, {nc} : i64"));
            let at = g.op(format!("arith.addi {at}, {row0} : i64"));
            for j in 0..8 {
                let v = lane(g, j);
                let jc = g.i64c(j);
                let i = g.op(format!("arith.addi {at}, {jc} : i64"));
                g.store(s, &[i], &v)?;
            }
        }
        None => {
            for half in 0..2 {
                let vs: Vec<String> = (0..4).map(|j| lane(g, 4 * half + j)).collect();
                let hc = g.i64c(4 * half);
                let row = g.op(format!("arith.addi {row0}, {hc} : i64"));
                for s in &targets {
                    add4_to(g, s, &row, &vs);
                }
            }
        }
    }
    g.close("}");
    if let Some(s) = &sums {
        g.barrier();
        // Four rows a thread, summed over the groups in order, one 16-byte reduction onto
        // the sum.
        let quads = g.const_box(&vec![(0, n / 4)]);
        g.for_region(&[quads], &mut |g, o| {
            let four = g.i64c(4);
            let row = g.op(format!("arith.muli {}, {four} : i64", o[0]));
            let mut vs = Vec::new();
            for j in 0..4 {
                let jc = g.i64c(j);
                let r = g.op(format!("arith.addi {row}, {jc} : i64"));
                let mut v = g.load(s, std::slice::from_ref(&r))?;
                for gi in 1..groups {
                    let off = g.i64c(gi * n);
                    let ri = g.op(format!("arith.addi {r}, {off} : i64"));
                    let p = g.load(s, &[ri])?;
                    v = g.op(format!("arith.addf {v}, {p} : f32"));
                }
                vs.push(v);
            }
            for t in &targets {
                add4_to(g, t, &row, &vs);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// One thread's part over `k0..k1` for rows `row0..row0 + 8`: every `groups`-th K from
/// `k0 + group`, `LOADS_IN_FLIGHT` loads issued before their products (a K past the range
/// is clamped to its last and its product dropped). `copied`: the first loads of the first
/// round wait in the preload buffer (its first slot, how many, and the part's groups as a
/// constant); that round is summed in the loop's order before it, and the loop starts a
/// round later.
fn part_of(
    g: &mut Gen,
    x: &View,
    w: &View,
    (k0, k1): (&str, &str),
    (group, groups): (&str, &str),
    row0: &str,
    copied: Option<(usize, i64, i64)>,
) -> Result<String, String> {
    let mut zero8 = g.op("arith.constant dense<0.0> : vector<8xf32>");
    let mut first = g.op(format!("arith.addi {k0}, {group} : i64"));
    if let Some((slot0, loads, gn)) = copied {
        let mut terms = Vec::new();
        for i in 0..LOADS_IN_FLIGHT {
            let (kc, inside) = first_round_k(g, k0, k1, group, gn, i);
            let wv = match i < loads {
                true => {
                    let slot = g.preload_slot(slot0 + i as usize);
                    g.op(format!(
                        "llvm.load {slot} {{alignment = 16 : i64}} : !llvm.ptr<3> -> vector<8xbf16>"
                    ))
                }
                false => {
                    let p = g.ptr(w, &[row0.to_string(), kc.clone()]);
                    g.weight_load16(&p)
                }
            };
            terms.push((wv, inside, kc));
        }
        zero8 = fma_round(g, x, &zero8, terms)?;
        let skip = g.i64c(gn * LOADS_IN_FLIGHT);
        first = g.op(format!("arith.addi {first}, {skip} : i64"));
    }
    let u = g.i64c(LOADS_IN_FLIGHT);
    let round = g.op(format!("arith.muli {groups}, {u} : i64"));
    let one = g.i64c(1);
    let last = g.op(format!("arith.subi {k1}, {one} : i64"));
    let (lo, hi, st) = (
        g.op(format!("arith.index_cast {first} : i64 to index")),
        g.op(format!("arith.index_cast {k1} : i64 to index")),
        g.op(format!("arith.index_cast {round} : i64 to index")),
    );
    let kv = g.fresh();
    let accv = g.fresh();
    let out = g.fresh();
    g.open(format!(
        "{out} = scf.for {kv} = {lo} to {hi} step {st} iter_args({accv} = {zero8}) -> (vector<8xf32>) {{"
    ));
    let kb = g.op(format!("arith.index_cast {kv} : index to i64"));
    let mut loads = Vec::new();
    for i in 0..LOADS_IN_FLIGHT {
        let ic = g.i64c(i);
        let off = g.op(format!("arith.muli {groups}, {ic} : i64"));
        let k = g.op(format!("arith.addi {kb}, {off} : i64"));
        let inside = g.op(format!("arith.cmpi slt, {k}, {k1} : i64"));
        let kc = g.op(format!("arith.minsi {k}, {last} : i64"));
        let p = g.ptr(w, &[row0.to_string(), kc.clone()]);
        loads.push((g.weight_load16(&p), inside, kc));
    }
    let acc = fma_round(g, x, &accv, loads)?;
    g.line(format!("scf.yield {acc} : vector<8xf32>"));
    g.close("}");
    Ok(out)
}

/// `acc` plus a round's products, in order: each 8 rows' weights at one K (`vector<8xbf16>`)
/// times x there, or 0 where that K is past the range.
fn fma_round(
    g: &mut Gen,
    x: &View,
    acc: &str,
    terms: Vec<(String, String, String)>,
) -> Result<String, String> {
    let mut acc = acc.to_string();
    let zero = g.f32c(0.0);
    for (wv, inside, kc) in terms {
        let xk = g.load(x, &[kc])?;
        let xk = g.op(format!("arith.select {inside}, {xk}, {zero} : f32"));
        let xs = g.op(format!("vector.broadcast {xk} : f32 to vector<8xf32>"));
        let wf = g.op(format!("arith.extf {wv} : vector<8xbf16> to vector<8xf32>"));
        acc = g.op(format!(
            "llvm.intr.fma({wf}, {xs}, {acc}) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>"
        ));
    }
    Ok(acc)
}

/// `v` added onto element `row` of the f32 sum `s` in global memory, atomically.
fn add_to(g: &mut Gen, s: &View, row: &str, v: &str) {
    let p = g.ptr(s, &[row.to_string()]);
    g.op(format!(
        "llvm.atomicrmw fadd {p}, {v} monotonic : !llvm.ptr<{}>, f32",
        s.space
    ));
}

/// `vs` (4 f32) added onto rows `row..row + 4` of the f32 sum `s` in global memory (16-byte
/// aligned there) by one vector reduction, which needs PTX 8.1.
fn add4_to(g: &mut Gen, s: &View, row: &str, vs: &[String]) {
    g.ptx_isa = g.ptx_isa.max(81);
    let p = g.ptr(s, &[row.to_string()]);
    g.line(format!(
        "llvm.inline_asm has_side_effects \"red.relaxed.gpu.global.add.v4.f32 [$0], {{$1, $2, $3, $4}};\", \"l,f,f,f,f,~{{memory}}\" {p}, {}, {}, {}, {} : (!llvm.ptr<1>, f32, f32, f32, f32) -> ()",
        vs[0], vs[1], vs[2], vs[3]
    ));
}

/// A split-K part element by element (weights not laid out for 16-byte loads): a thread a
/// row, down its K range.
fn emit_scalar_parts(
    g: &mut Gen,
    e: &OpEmit,
    x: &View,
    w: &View,
    sums: &[View],
) -> Result<(), String> {
    let rows: Vec<RBox> = e.need.iter().map(|b| vec![b[1].clone()]).collect();
    let ks: Vec<(String, String)> = e.need.iter().map(|b| b[0].clone()).collect();
    g.for_region(&rows, &mut |g, o| {
        let mut total = g.f32c(0.0);
        for (k0, k1) in &ks {
            let s = dot_range(g, x, w, &o[0], k0, k1)?;
            total = g.op(format!("arith.addf {total}, {s} : f32"));
        }
        for s in sums {
            add_to(g, s, &o[0], &total);
        }
        Ok(())
    })
}

/// A row tile: `acc[n] + sum_k x[k] w[n, k]` for every row n of the boxes, stored.
fn emit_rows(g: &mut Gen, e: &OpEmit, x: &View, w: &View, acc: &View) -> Result<(), String> {
    let k = x.shape[0];
    g.for_region(e.need, &mut |g, o| {
        let (k0, k1) = (g.i64c(0), g.i64c(k));
        let s = dot_range(g, x, w, &o[0], &k0, &k1)?;
        let a = g.load(acc, o)?;
        let v = g.op(format!("arith.addf {a}, {s} : f32"));
        g.store(&e.res, o, &v)
    })
}

/// `sum_{k0 <= k < k1} x[k] w[n, k]`, in order.
fn dot_range(
    g: &mut Gen,
    x: &View,
    w: &View,
    n: &str,
    k0: &str,
    k1: &str,
) -> Result<String, String> {
    let zero = g.f32c(0.0);
    let (lo, hi) = (
        g.op(format!("arith.index_cast {k0} : i64 to index")),
        g.op(format!("arith.index_cast {k1} : i64 to index")),
    );
    let kv = g.fresh();
    let accv = g.fresh();
    let out = g.fresh();
    g.open(format!(
        "{out} = scf.for {kv} = {lo} to {hi} step %c1_idx iter_args({accv} = {zero}) -> (f32) {{"
    ));
    let k = g.op(format!("arith.index_cast {kv} : index to i64"));
    let xv = g.load(x, std::slice::from_ref(&k))?;
    let wv = g.load(w, &[n.to_string(), k])?;
    let s = g.op(format!(
        "llvm.intr.fma({xv}, {wv}, {accv}) : (f32, f32, f32) -> f32"
    ));
    g.line(format!("scf.yield {s} : f32"));
    g.close("}");
    Ok(out)
}
