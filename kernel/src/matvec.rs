//! Matrix-vector products: a warp per weight row (or pair of rows) with 16-byte loads, the
//! weight ring that streams rows through shared memory with bulk copies, and the preload of
//! a product's first blocks before its task's wait.

use crate::gen::*;
use crate::ops::{temp, OpEmit};
use crate::scratch::*;
use crate::KernelOptions;
use mkc_ir::attr::Attr;
use mkc_ir::dialect::kernel::{Choice, MatvecPath};
use mkc_ir::dialect::tg;
use mkc_ir::{Body, ElemType, OpId, ValueId};
use std::collections::HashMap;

/// Rows one streamed chunk holds at most (the size of the per-row sums in shared memory).
pub(crate) const STREAM_ROWS: i64 = 256;

/// Blocks of 256 elements a warp's matrix-vector loop loads per round (all loads issued
/// before any math), at most `most`: with `fewest`, the fewest rounds that cover K's
/// blocks, then the fewest blocks a round that keep that count (the blocks of a last round
/// past K are loaded and dropped: a round of 3 covers K = 576 where rounds of 1 take three
/// trips to memory); else as many as divide K (one where none does).
pub(crate) fn matvec_unroll(k: i64, most: i64, fewest: bool) -> i64 {
    if !fewest {
        return [8i64, 4, 2, 1]
            .into_iter()
            .find(|&u| u <= most && k % (256 * u) == 0)
            .unwrap_or(1);
    }
    let blocks = (k + 255) / 256;
    let rounds = (blocks + most - 1) / most;
    ((blocks + rounds - 1) / rounds).max(1)
}

/// Weight blocks a warp loaded before the task's wait: of its first row of the product `op`
/// (the row of its first turn of [`Gen::for_region_warp`]), 16 bytes a lane of each block
/// of 256 elements from the row's start.
pub(crate) struct Preload {
    pub(crate) op: OpId,
    /// The first of its slots in the shared-memory preload buffer (bf16 rows), and how many.
    pub(crate) slot0: usize,
    pub(crate) blocks: usize,
    /// A block-quantized weight's first pieces, held in registers (none for bf16 rows, whose
    /// blocks wait in the shared-memory preload buffer).
    pub(crate) held: Vec<crate::blocks::Piece>,
}

impl Gen {
    /// The weights loaded before the wait for the product `op`, if any.
    pub(crate) fn take_preload(&mut self, op: OpId) -> Option<Preload> {
        let i = self.preload.iter().position(|p| p.op == op)?;
        Some(self.preload.remove(i))
    }

    /// Copies, before the task's wait, `blocks` blocks of this warp's first row of the
    /// product `op` (the row of its first turn of [`Gen::for_region_warp`] over `need`)
    /// into the thread's slots of the preload buffer, 16 bytes a lane each, asynchronously
    /// (`cp.async`: no registers held across the wait). A warp without a row copies the
    /// region's last (never read). Each thread reads back only what it copied, after
    /// `cp.async.wait_all`, so no barrier guards the buffer. The copies go to the slots
    /// from `slot0` (each product of a code its own).
    pub(crate) fn emit_preload(
        &mut self,
        op: OpId,
        w: &View,
        need: &[RBox],
        slot0: usize,
        blocks: usize,
    ) -> Option<Preload> {
        let kdim = *w.shape.last().expect("a 2-D weight");
        if need.is_empty() {
            return None;
        }
        let (boxes, total) = self.region_boxes(need);
        let one = self.i64c(1);
        let zero = self.i64c(0);
        let last = self.op(format!("arith.subi {total}, {one} : i64"));
        let warp = self.op("arith.index_cast %warp : index to i64");
        let li = self.op(format!("arith.minsi {warp}, {last} : i64"));
        let li = self.op(format!("arith.maxsi {li}, {zero} : i64"));
        let idx = self.region_index(need, &boxes, &li);
        let row = idx
            .last()
            .expect("a product's rows are its last axis")
            .clone();
        // An empty region has no row to read: nothing is copied.
        let any = self.op(format!("arith.cmpi sgt, {total}, {zero} : i64"));
        self.open(format!("scf.if {any} {{"));
        let row_w = self.ptr(w, &[row, zero]);
        let c8 = self.i64c(8);
        let lane = self.op("arith.index_cast %lane : index to i64");
        let k0 = self.op(format!("arith.muli {lane}, {c8} : i64"));
        for b in 0..blocks {
            let db = self.i64c(256 * b as i64);
            let k = self.op(format!("arith.addi {k0}, {db} : i64"));
            let two = self.i64c(2);
            let wb = self.op(format!("arith.muli {k}, {two} : i64"));
            let src = self.op(format!(
                "llvm.getelementptr {row_w}[{wb}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let dst = self.preload_slot(slot0 + b);
            // A partial last block: lanes past K copy nothing.
            let partial = 256 * (b as i64 + 1) > kdim;
            if partial {
                let kn = self.i64c(kdim);
                let inside = self.op(format!("arith.cmpi slt, {k}, {kn} : i64"));
                self.open(format!("scf.if {inside} {{"));
            }
            self.cp_async16(&dst, &src);
            if partial {
                self.close("}");
            }
        }
        self.cp_async_commit();
        self.close("}");
        self.preloaded += 1;
        self.preload_blocks_max = self.preload_blocks_max.max(slot0 + blocks);
        Some(Preload {
            op,
            slot0,
            blocks,
            held: Vec::new(),
        })
    }

    /// The dot products of bf16 weight rows `ws` and one input row (f32 or bf16), all
    /// contiguous and 16-byte aligned, `k` a multiple of 8: lane l takes elements 8l..8l+8,
    /// then every 256th block, with 16-byte loads; the lanes' sums are combined by shuffles.
    /// Each 16-byte block of the input is loaded once for all rows, and the loads of every
    /// row are in flight together (a warp on one row waits for 4 loads a lane; on two, for 8).
    ///
    /// `unroll` blocks of 256 elements a round ([`matvec_unroll`]). `pre`: per row, the
    /// first of its preload slots and how many blocks (the same for every row), or nothing:
    /// the first blocks of the rows, loaded before the task's wait ([`Preload`]), start the
    /// sums and the loop starts past them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rows_dot8(
        &mut self,
        ws: &[String],
        a: &str,
        a_of: &View,
        k: i64,
        unroll: i64,
        pre: &[(usize, usize)],
    ) -> Result<Vec<String>, String> {
        let a_elem = a_of.elem;
        let kk = self.fresh();
        let accs: Vec<String> = ws.iter().map(|_| self.fresh()).collect();
        let res = self.fresh();
        let c8 = self.idx(8);
        let mut start = self.op(format!("arith.muli %lane, {c8} : index"));
        let kn = self.idx(k);
        let step = self.idx(256 * unroll);
        let zero = self.f32c(0.0);
        let mut init = vec![zero.clone(); ws.len()];
        if let Some(&(_, blocks)) = pre.first() {
            if pre.len() != ws.len() || pre.iter().any(|p| p.1 != blocks) {
                return Err("internal error: the rows of one loop preloaded unlike".into());
            }
            debug_assert!(blocks as i64 % unroll == 0);
            debug_assert!(256 * (blocks as i64 - 1) < k);
            let k0 = self.op(format!("arith.index_cast {start} : index to i64"));
            // The loop's rounds and order of additions (so the sum is the one without the
            // preload), the blocks read back from shared memory. A partial last block adds
            // only for lanes inside K (the others' slots hold nothing, their input index is
            // clamped).
            for round in 0..blocks as i64 / unroll {
                let mut terms = Vec::new();
                for b in round * unroll..(round + 1) * unroll {
                    let wvs: Vec<String> = pre
                        .iter()
                        .map(|&(slot0, _)| {
                            let slot = self.preload_slot(slot0 + b as usize);
                            self.op(format!(
                                "llvm.load {slot} {{alignment = 16 : i64}} : !llvm.ptr<3> -> vector<8xbf16>"
                            ))
                        })
                        .collect();
                    let db = self.i64c(256 * b);
                    let k64 = self.op(format!("arith.addi {k0}, {db} : i64"));
                    let (k64, inside) = self.clamp_past_k(k64, k, 256 * (b + 1) > k);
                    let av = self.input_block8(a, a_of, &k64);
                    terms.push((wvs, av, inside));
                }
                for (wvs, av, inside) in terms {
                    let af = self.widen8(&av, a_elem);
                    for (total, wv) in init.iter_mut().zip(wvs) {
                        *total = self.add_products8_inside(total, &wv, &af, inside.as_deref());
                    }
                }
            }
            let skip = self.idx(256 * blocks as i64);
            start = self.op(format!("arith.addi {start}, {skip} : index"));
        }
        let iter: Vec<String> = accs
            .iter()
            .zip(&init)
            .map(|(x, i)| format!("{x} = {i}"))
            .collect();
        let tys = vec!["f32"; ws.len()].join(", ");
        self.open(format!(
            "{res}:{} = scf.for {kk} = {start} to {kn} step {step} iter_args({}) -> ({tys}) {{",
            ws.len(),
            iter.join(", ")
        ));
        let k0 = self.op(format!("arith.index_cast {kk} : index to i64"));
        let mut loaded = Vec::new();
        // The loop bound keeps a round's first block inside K. Where K is not a multiple
        // of a round, a later block past K is loaded from K's last 8 elements and adds
        // nothing.
        let masked = k % (256 * unroll) != 0;
        for u in 0..unroll {
            let du = self.i64c(256 * u);
            let k64 = self.op(format!("arith.addi {k0}, {du} : i64"));
            let (k64, inside) = self.clamp_past_k(k64, k, masked && u > 0);
            let two = self.i64c(2);
            let wb = self.op(format!("arith.muli {k64}, {two} : i64"));
            let wvs: Vec<String> = ws
                .iter()
                .map(|w| {
                    let wp = self.op(format!(
                        "llvm.getelementptr {w}[{wb}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
                    ));
                    self.weight_load16(&wp)
                })
                .collect();
            let av = self.input_block8(a, a_of, &k64);
            loaded.push((wvs, av, inside));
        }
        let mut sums = accs.clone();
        for (wvs, av, inside) in loaded {
            let af = self.widen8(&av, a_elem);
            for (sum, wv) in sums.iter_mut().zip(wvs) {
                *sum = self.add_products8_inside(sum, &wv, &af, inside.as_deref());
            }
        }
        self.line(format!("scf.yield {} : {tys}", sums.join(", ")));
        self.close("}");
        Ok((0..ws.len())
            .map(|i| {
                let v = format!("{res}#{i}");
                self.warp_combine(v, false)
            })
            .collect())
    }

    /// Where a block from element `k64` (an i64) of a row of `k` may lie past K (`may`): the
    /// index clamped to K's last 8 elements and whether it lies inside K; else as it is.
    fn clamp_past_k(&mut self, k64: String, k: i64, may: bool) -> (String, Option<String>) {
        if !may {
            return (k64, None);
        }
        let kn = self.i64c(k);
        let inside = self.op(format!("arith.cmpi slt, {k64}, {kn} : i64"));
        let lastb = self.i64c(k - 8);
        let clamped = self.op(format!("arith.minsi {k64}, {lastb} : i64"));
        (clamped, Some(inside))
    }

    /// [`Gen::add_products8`], kept only where `inside` (a block past K adds nothing).
    fn add_products8_inside(
        &mut self,
        sum: &str,
        wv: &str,
        af: &str,
        inside: Option<&str>,
    ) -> String {
        let t = self.add_products8(sum, wv, af);
        match inside {
            Some(ok) => self.op(format!("arith.select {ok}, {t}, {sum} : f32")),
            None => t,
        }
    }

    /// The 8 input values of a matrix-vector product from element `k` (an i64) of the row
    /// at `a` (of `a_of`'s type and address space), in one 16- or 32-byte load.
    pub(crate) fn input_block8(&mut self, a: &str, a_of: &View, k: &str) -> String {
        let (sp, at) = (
            a_of.space,
            if a_of.elem == ElemType::BF16 {
                "bf16"
            } else {
                "f32"
            },
        );
        let ab = self.i64c(a_of.elem.bytes() as i64);
        let ao = self.op(format!("arith.muli {k}, {ab} : i64"));
        let ap = self.op(format!(
            "llvm.getelementptr {a}[{ao}] : (!llvm.ptr<{sp}>, i64) -> !llvm.ptr<{sp}>, i8"
        ));
        self.op(format!(
            "llvm.load {ap} {{alignment = 16 : i64}} : !llvm.ptr<{sp}> -> vector<8x{at}>"
        ))
    }

    /// 8 values of type `elem` (bf16 or f32) as f32.
    pub(crate) fn widen8(&mut self, v: &str, elem: ElemType) -> String {
        if elem == ElemType::BF16 {
            self.op(format!("arith.extf {v} : vector<8xbf16> to vector<8xf32>"))
        } else {
            v.to_string()
        }
    }

    /// `sum` plus the 8 products of `wv` (8 bf16 weights) and `af` (8 f32), added one after
    /// another in order (the matrix-vector loop's order, whatever path computes it).
    pub(crate) fn add_products8(&mut self, sum: &str, wv: &str, af: &str) -> String {
        let wf = self.op(format!("arith.extf {wv} : vector<8xbf16> to vector<8xf32>"));
        let prod = self.op(format!("arith.mulf {wf}, {af} : vector<8xf32>"));
        let mut sum = sum.to_string();
        for j in 0..8 {
            let c = self.op(format!("arith.constant {j} : i32"));
            let e = self.op(format!(
                "llvm.extractelement {prod}[{c} : i32] : vector<8xf32>"
            ));
            sum = self.op(format!("arith.addf {sum}, {e} : f32"));
        }
        sum
    }

    /// `x` (8 f32 or bf16 values) · `w` (8 bf16 values) as f32, summed as a tree.
    pub(crate) fn dot8(&mut self, wv: &str, av: &str, a_elem: ElemType) -> String {
        let wf = self.op(format!("arith.extf {wv} : vector<8xbf16> to vector<8xf32>"));
        let af = if a_elem == ElemType::BF16 {
            self.op(format!("arith.extf {av} : vector<8xbf16> to vector<8xf32>"))
        } else {
            av.to_string()
        };
        let prod = self.op(format!("arith.mulf {wf}, {af} : vector<8xf32>"));
        let mut terms: Vec<String> = (0..8)
            .map(|j| {
                let c = self.op(format!("arith.constant {j} : i32"));
                self.op(format!(
                    "llvm.extractelement {prod}[{c} : i32] : vector<8xf32>"
                ))
            })
            .collect();
        while terms.len() > 1 {
            terms = terms
                .chunks(2)
                .map(|p| self.op(format!("arith.addf {}, {} : f32", p[0], p[1])))
                .collect();
        }
        terms.pop().expect("eight terms")
    }

    /// `res[.., n] = x · w[n, :]` for the rows n of the box `b` (the last axis; the leading
    /// axes are single), the weight rows streamed through the shared-memory ring: thread 0
    /// copies chunks of whole rows (`cp.async.bulk`, completing on the slot's mbarrier) up to
    /// `slots` chunks ahead; every warp takes (row, 32-piece segment) jobs of the chunk in
    /// the slot (16 bytes of weights a lane, from shared memory; x from L1), combines its
    /// lanes by shuffles and adds into the row's sum in shared memory; after a barrier the
    /// sums are stored (and zeroed) and the slot is refilled. The ring's count of chunks
    /// served gives each chunk its slot and its barrier's parity.
    pub(crate) fn stream_matvec(
        &mut self,
        a: &View,
        w: &View,
        res: &View,
        need: &[RBox],
        k: i64,
    ) -> Result<(), String> {
        const UNROLL: i64 = 4;
        let (slots, slot_bytes) = self.ring.ok_or("internal error: no weight ring")?;
        let row_bytes = 2 * k;
        let rpp = (slot_bytes as i64 / row_bytes).min(STREAM_ROWS);
        let pieces = k / 8;
        let segs = (pieces + 31) / 32;
        let last = need[0].len() - 1;
        let z = self.i64c(0);
        // The input row: the leading axes are single, the same in every box.
        let mut ai: Vec<String> = need[0][..last].iter().map(|(lo, _)| lo.clone()).collect();
        let lead = ai.clone();
        ai.push(z.clone());
        let xp = self.ptr(a, &ai);
        let w0 = self.ptr(w, &[z.clone(), z.clone()]);
        let rppc = self.i64c(rpp);
        let one = self.i64c(1);
        // Chunks never straddle boxes: box j's chunks start at firsts[j].
        let mut firsts = Vec::new();
        let mut nch = z.clone();
        for b in need {
            let (n0, n1) = &b[last];
            let rows = self.op(format!("arith.subi {n1}, {n0} : i64"));
            let rows1 = self.op(format!("arith.addi {rows}, {rppc} : i64"));
            let rows1 = self.op(format!("arith.subi {rows1}, {one} : i64"));
            let cnt = self.op(format!("arith.divsi {rows1}, {rppc} : i64"));
            firsts.push(nch.clone());
            nch = self.op(format!("arith.addi {nch}, {cnt} : i64"));
        }
        let t0 = self.op("llvm.load %ring_count : !llvm.ptr<3> -> i64");
        let slotsc = self.i64c(slots as i64);
        let sbytes = self.i64c(slot_bytes as i64);
        let rb = self.i64c(row_bytes);
        // Chunk c's rows, its slot and the slot's barrier (as 32-bit shared addresses).
        let chunk = |g: &mut Gen, c: &str| {
            // Its box: the last whose first chunk is at or before c.
            let (mut n0, mut n1, mut f) = (
                need[0][last].0.clone(),
                need[0][last].1.clone(),
                firsts[0].clone(),
            );
            for (b, first) in need.iter().zip(&firsts).skip(1) {
                let here = g.op(format!("arith.cmpi sge, {c}, {first} : i64"));
                n0 = g.op(format!("arith.select {here}, {}, {n0} : i64", b[last].0));
                n1 = g.op(format!("arith.select {here}, {}, {n1} : i64", b[last].1));
                f = g.op(format!("arith.select {here}, {first}, {f} : i64"));
            }
            let cl = g.op(format!("arith.subi {c}, {f} : i64"));
            let a0 = g.op(format!("arith.muli {cl}, {rppc} : i64"));
            let rlo = g.op(format!("arith.addi {n0}, {a0} : i64"));
            let rhi = g.op(format!("arith.addi {rlo}, {rppc} : i64"));
            let rhi = g.op(format!("arith.minsi {rhi}, {n1} : i64"));
            let gi = g.op(format!("arith.addi {t0}, {c} : i64"));
            let slot = g.op(format!("arith.remsi {gi}, {slotsc} : i64"));
            let bar = g.op(format!(
                "llvm.getelementptr %ring_bars[{slot}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
            ));
            let bar32 = g.op(format!("llvm.ptrtoint {bar} : !llvm.ptr<3> to i32"));
            let at = g.op(format!("arith.muli {slot}, {sbytes} : i64"));
            let dst = g.op(format!(
                "llvm.getelementptr %ring[{at}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i8"
            ));
            (rlo, rhi, gi, bar32, dst)
        };
        let issue = |g: &mut Gen, c: &str| {
            let (rlo, rhi, _, bar32, dst) = chunk(g, c);
            let nr = g.op(format!("arith.subi {rhi}, {rlo} : i64"));
            let nb = g.op(format!("arith.muli {nr}, {rb} : i64"));
            let nb32 = g.op(format!("arith.trunci {nb} : i64 to i32"));
            let so = g.op(format!("arith.muli {rlo}, {rb} : i64"));
            let src = g.op(format!(
                "llvm.getelementptr {w0}[{so}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let dst32 = g.op(format!("llvm.ptrtoint {dst} : !llvm.ptr<3> to i32"));
            g.line("llvm.inline_asm has_side_effects \"fence.proxy.async.shared::cta;\", \"~{memory}\"  : () -> ()");
            g.line(format!(
                "llvm.inline_asm has_side_effects \"mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;\", \"r,r,~{{memory}}\" {bar32}, {nb32} : (i32, i32) -> ()"
            ));
            g.line(format!(
                "llvm.inline_asm has_side_effects \"cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [$0], [$1], $2, [$3];\", \"r,l,r,r,~{{memory}}\" {dst32}, {src}, {nb32}, {bar32} : (i32, !llvm.ptr<1>, i32, i32) -> ()"
            ));
        };
        // The first chunks, up to a ring's worth.
        self.open("scf.if %is_t0 {");
        let pro = self.op(format!("arith.minsi {nch}, {slotsc} : i64"));
        let pro_i = self.op(format!("arith.index_cast {pro} : i64 to index"));
        let c = self.fresh();
        self.open(format!("scf.for {c} = %c0_idx to {pro_i} step %c1_idx {{"));
        let c64 = self.op(format!("arith.index_cast {c} : index to i64"));
        issue(self, &c64);
        self.close("}");
        self.close("}");
        let nch_i = self.op(format!("arith.index_cast {nch} : i64 to index"));
        let c = self.fresh();
        self.open(format!("scf.for {c} = %c0_idx to {nch_i} step %c1_idx {{"));
        let c64 = self.op(format!("arith.index_cast {c} : index to i64"));
        let (rlo, rhi, gi, bar32, slotp) = chunk(self, &c64);
        // Wait for the chunk: the barrier's phase of this use of the slot.
        let ph = self.op(format!("arith.divsi {gi}, {slotsc} : i64"));
        let ph = self.op(format!("arith.andi {ph}, {one} : i64"));
        let ph32 = self.op(format!("arith.trunci {ph} : i64 to i32"));
        self.open("scf.while : () -> () {");
        let done = self.op(format!(
            "llvm.inline_asm has_side_effects \"{{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [$1], $2; selp.u32 $0, 1, 0, p; }}\", \"=r,r,r,~{{memory}}\" {bar32}, {ph32} : (i32, i32) -> i32"
        ));
        let z32 = self.op("arith.constant 0 : i32");
        let more = self.op(format!("arith.cmpi eq, {done}, {z32} : i32"));
        self.line(format!("scf.condition({more})"));
        self.close("} do {");
        self.indent += 1;
        self.line("scf.yield");
        self.close("}");
        let nr = self.op(format!("arith.subi {rhi}, {rlo} : i64"));
        let par = self.op(format!("arith.andi {c64}, {one} : i64"));
        let srows = self.i64c(STREAM_ROWS);
        let so = self.op(format!("arith.muli {par}, {srows} : i64"));
        let sums = self.op(format!(
            "llvm.getelementptr %ring_sums[{so}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, f32"
        ));
        // Jobs: (row, part of the row); a warp takes a job, loops over the part's 32-piece
        // segments four at a time (one accumulator), combines its lanes once and adds to
        // the row's sum. Parts split rows so every warp has a job when a chunk holds few.
        let warps = (self.threads / 32) as i64;
        let parts = (warps / rpp).clamp(1, segs);
        let per_part = (segs + parts - 1) / parts;
        let partsc = self.i64c(parts);
        let njobs = self.op(format!("arith.muli {nr}, {partsc} : i64"));
        let njobs_i = self.op(format!("arith.index_cast {njobs} : i64 to index"));
        let lane64 = self.op("arith.index_cast %lane : index to i64");
        let pc = self.i64c(pieces);
        let plast = self.i64c(pieces - 1);
        let segc = self.i64c(segs);
        let ppc = self.i64c(per_part);
        let c32 = self.i64c(32);
        let c16 = self.i64c(16);
        let xb = self.i64c(8 * a.elem.bytes() as i64);
        let at = if a.elem == ElemType::BF16 {
            "bf16"
        } else {
            "f32"
        };
        let j = self.fresh();
        self.open(format!("scf.for {j} = %warp to {njobs_i} step %nwarps {{"));
        let j64 = self.op(format!("arith.index_cast {j} : index to i64"));
        let row = self.op(format!("arith.divsi {j64}, {partsc} : i64"));
        let part = self.op(format!("arith.remsi {j64}, {partsc} : i64"));
        let s0 = self.op(format!("arith.muli {part}, {ppc} : i64"));
        let s1 = self.op(format!("arith.addi {s0}, {ppc} : i64"));
        let s1 = self.op(format!("arith.minsi {s1}, {segc} : i64"));
        let s0i = self.op(format!("arith.index_cast {s0} : i64 to index"));
        let s1i = self.op(format!("arith.index_cast {s1} : i64 to index"));
        let un = self.idx(UNROLL);
        let rowb = self.op(format!("arith.muli {row}, {rb} : i64"));
        let (sg, acc, tot) = (self.fresh(), self.fresh(), self.fresh());
        let zf = self.f32c(0.0);
        self.open(format!(
            "{tot} = scf.for {sg} = {s0i} to {s1i} step {un} iter_args({acc} = {zf}) -> (f32) {{"
        ));
        let sg64 = self.op(format!("arith.index_cast {sg} : index to i64"));
        let mut loaded = Vec::new();
        for u in 0..UNROLL {
            let uc = self.i64c(u);
            let su = self.op(format!("arith.addi {sg64}, {uc} : i64"));
            let live = self.op(format!("arith.cmpi slt, {su}, {s1} : i64"));
            let k8 = self.op(format!("arith.muli {su}, {c32} : i64"));
            let k8 = self.op(format!("arith.addi {k8}, {lane64} : i64"));
            let inside = self.op(format!("arith.cmpi slt, {k8}, {pc} : i64"));
            let ok = self.op(format!("arith.andi {live}, {inside} : i1"));
            let k8 = self.op(format!("arith.minsi {k8}, {plast} : i64"));
            let ko = self.op(format!("arith.muli {k8}, {c16} : i64"));
            let wo = self.op(format!("arith.addi {rowb}, {ko} : i64"));
            let wp = self.op(format!(
                "llvm.getelementptr {slotp}[{wo}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i8"
            ));
            let wv = self.op(format!(
                "llvm.load {wp} {{alignment = 16 : i64}} : !llvm.ptr<3> -> vector<8xbf16>"
            ));
            let xo = self.op(format!("arith.muli {k8}, {xb} : i64"));
            let ap = self.op(format!(
                "llvm.getelementptr {xp}[{xo}] : (!llvm.ptr<{sp}>, i64) -> !llvm.ptr<{sp}>, i8",
                sp = a.space
            ));
            let av = self.op(format!(
                "llvm.load {ap} {{alignment = 16 : i64}} : !llvm.ptr<{sp}> -> vector<8x{at}>",
                sp = a.space
            ));
            loaded.push((ok, wv, av));
        }
        let mut sum = acc.clone();
        for (ok, wv, av) in loaded {
            let d = self.dot8(&wv, &av, a.elem);
            let d = self.op(format!("arith.select {ok}, {d}, {zf} : f32"));
            sum = self.op(format!("arith.addf {sum}, {d} : f32"));
        }
        self.line(format!("scf.yield {sum} : f32"));
        self.close("}");
        let v = self.warp_combine(tot, false);
        self.open("scf.if %lane0 {");
        let sp = self.op(format!(
            "llvm.getelementptr {sums}[{row}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, f32"
        ));
        self.op(format!(
            "llvm.atomicrmw fadd {sp}, {v} monotonic : !llvm.ptr<3>, f32"
        ));
        self.close("}");
        self.close("}");
        self.barrier();
        // The chunk's rows out, their sums zeroed for the chunk after next.
        let nr_i = self.op(format!("arith.index_cast {nr} : i64 to index"));
        let r = self.fresh();
        self.open(format!("scf.for {r} = %tid to {nr_i} step %nthreads {{"));
        let r64 = self.op(format!("arith.index_cast {r} : index to i64"));
        let sp = self.op(format!(
            "llvm.getelementptr {sums}[{r64}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, f32"
        ));
        let v = self.op(format!("llvm.load {sp} : !llvm.ptr<3> -> f32"));
        let n = self.op(format!("arith.addi {rlo}, {r64} : i64"));
        let mut oi = lead.clone();
        oi.push(n);
        self.store(res, &oi, &v)?;
        let zf = self.f32c(0.0);
        self.line(format!("llvm.store {zf}, {sp} : f32, !llvm.ptr<3>"));
        self.close("}");
        // The slot is free: the chunk a ring further on goes into it.
        self.open("scf.if %is_t0 {");
        let nx = self.op(format!("arith.addi {c64}, {slotsc} : i64"));
        let has = self.op(format!("arith.cmpi slt, {nx}, {nch} : i64"));
        self.open(format!("scf.if {has} {{"));
        issue(self, &nx);
        self.close("}");
        self.close("}");
        self.close("}");
        self.open("scf.if %is_t0 {");
        let t1 = self.op(format!("arith.addi {t0}, {nch} : i64"));
        self.line(format!("llvm.store {t1}, %ring_count : i64, !llvm.ptr<3>"));
        self.close("}");
        Ok(())
    }
}

/// How many 16-byte weight loads a lane issues before the task's wait for `op`, planned as
/// `choice`: blocks of 256 bf16 weights on the `row` path ([`preload_blocks`], `preload`);
/// on the `blocks` and `dp4a` paths (`preload-blocks`) the first pieces of the loop's first
/// round, at most its unroll, of a block-quantized weight the task reads from its buffer.
/// `None`: nothing.
pub(crate) fn preload_count(
    body: &Body,
    views: &HashMap<ValueId, View>,
    op: OpId,
    choice: &Choice,
    o: &KernelOptions,
) -> Option<u32> {
    let Choice::Matvec { path, .. } = choice else {
        return None;
    };
    match path {
        MatvecPath::Row => preload_blocks(body, views, op, o).map(|b| b as u32),
        MatvecPath::Blocks | MatvecPath::Dp4a if o.preload_blocks > 0 => {
            let w = views.get(&body.ops[op].operands[1])?;
            let split = crate::blocks::BlockSplit::of_view(w, *path == MatvecPath::Dp4a).ok()?;
            Some((o.preload_blocks as i64).min(split.unroll) as u32)
        }
        _ => None,
    }
}

/// How many blocks of 256 weights a lane loads before the task's wait for `op`, when it is
/// a matrix-vector product that takes the warp-per-row path with 16-byte weight loads from
/// a weight the task reads from its buffer (`views` holds the group's arguments), a multiple
/// of its loop's unroll, at most K / 256; `None` when nothing is preloaded.
pub(crate) fn preload_blocks(
    body: &Body,
    views: &HashMap<ValueId, View>,
    op: OpId,
    o: &KernelOptions,
) -> Option<usize> {
    let d = &body.ops[op];
    if o.preload == 0 || d.name != tg::MatMul::NAME || o.matvec_rows != 1 {
        return None;
    }
    let tb = matches!(
        d.attrs.get("transpose_b"),
        Some(Attr::Bool(true)) | Some(Attr::Unit)
    );
    let w = views.get(&d.operands[1])?;
    let a_shape = shape_of(body, d.operands[0]);
    let kdim = *a_shape.last()?;
    let single_row = a_shape[..a_shape.len() - 1].iter().product::<i64>() == 1;
    // The weight ring would take it instead.
    let ringed = o.stream_slots > 0 && 2 * kdim <= o.slot_bytes as i64;
    let fast = tb
        && kdim % 8 == 0
        && w.elem == ElemType::BF16
        && w.strides == [kdim as u64, 1]
        && w.base_aligned
        && !w.is_scratch()
        && matches!(elem_of(body, d.operands[0]), ElemType::F32 | ElemType::BF16);
    if !fast || !single_row || ringed {
        return None;
    }
    // Whole rounds of the loop, as it takes them (a block past K adds nothing).
    let unroll = matvec_unroll(kdim, o.matvec_unroll as i64, o.fewest_rounds);
    let depth = o.preload as i64;
    let blocks = depth.min((kdim + 255) / 256) / unroll * unroll;
    (blocks > 0).then_some(blocks as usize)
}

/// A matrix-vector product on the path the plan chose ([`choose_matvec`]).
pub(crate) fn emit_matmul(g: &mut Gen, cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let op = e.op;
    let flag = |k: &str| e.flag(k);
    let (a, w) = (&ins[0], &ins[1]);
    let tb = flag("transpose_b");
    let kdim = *a
        .shape
        .last()
        .ok_or("a matrix-vector product of a scalar")?;
    let Choice::Matvec {
        path, rows, unroll, ..
    } = e.plan.choice
    else {
        return Err("internal error: the plan gives a matrix-vector product no path".into());
    };
    let unroll = unroll as i64;
    if e.with.is_some() && path != MatvecPath::Row {
        return Err("internal error: a product off the row path runs another in its loop".into());
    }
    if path == MatvecPath::Ring {
        g.stream_matvec(a, w, res, need, kdim)?;
        g.streamed += 1;
        return Ok(());
    }
    if path == MatvecPath::Rows {
        // A warp per group of `rows` rows, their loads in flight at once. The groups of
        // every box are one index space (box number, group), so a tile of several short
        // boxes (rope's lane pairs) keeps every warp busy.
        let rows_per_warp = rows as i64;
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
            let sums = g.rows_dot8(&ptrs, &row_a, a, kdim, unroll, &[])?;
            for (n, v) in rows.into_iter().zip(sums) {
                let inside = g.op(format!("arith.cmpi slt, {n}, {n1} : i64"));
                let st = g.op(format!("arith.andi {inside}, %lane0 : i1"));
                g.open(format!("scf.if {st} {{"));
                let mut oi = lead.clone();
                oi.push(n);
                g.store(res, &oi, &v)?;
                g.close("}");
            }
            Ok(())
        })?;
        return Ok(());
    }
    if path == MatvecPath::Blocks || path == MatvecPath::Dp4a {
        let held = g.take_preload(op).map(|p| p.held).unwrap_or_default();
        if path == MatvecPath::Blocks {
            return g.block_matvec(a, w, res, need, None, held);
        }
        let lay = crate::blocks_dp4a::Q8Row::of(kdim);
        let place = temp(e, 0)?;
        let x8 = cx.place(g, place, &[lay.words()], ElemType::F32)?;
        // The row is rounded once into the buffer its products share (a product with no
        // boxes rounds nothing).
        let input = e.d.operands[0];
        let round = cx.rounded.get(&input) != Some(place);
        if !need.is_empty() {
            cx.rounded.insert(input, place.clone());
        }
        return g.block_matvec(a, w, res, need, Some((&x8, round)), held);
    }
    if path == MatvecPath::Row {
        // Blocks of its first row a warp loaded before the task's wait: that row's
        // turn is peeled off the loop (the blocks are dead after it). A product run in this
        // one's loop (`with`) takes the same row of its own weight beside it.
        let mut pre: Vec<(usize, usize)> = Vec::new();
        let mut ops = vec![(op, w, res)];
        if let Some(p) = &e.with {
            ops.push((p.op, &p.w, &p.res));
        }
        for &(o, _, _) in &ops {
            if let Some(p) = g.take_preload(o) {
                pre.push((p.slot0, p.blocks));
            }
        }
        g.for_region_warp_peeled(need, !pre.is_empty(), &mut |g, o, first| {
            let n = o.last().unwrap().clone();
            let z = g.i64c(0);
            let mut ai: Vec<String> = o[..a.shape.len() - 1].to_vec();
            ai.push(z.clone());
            let row_a = g.ptr(a, &ai);
            let rows: Vec<String> = ops
                .iter()
                .map(|(_, w, _)| g.ptr(w, &[n.clone(), z.clone()]))
                .collect();
            let pre = if first { pre.as_slice() } else { &[] };
            let sums = g.rows_dot8(&rows, &row_a, a, kdim, unroll, pre)?;
            for ((_, _, res), acc) in ops.iter().zip(sums) {
                g.store_lane0(res, o, &acc)?;
            }
            Ok(())
        })?;
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
        g.store_lane0(res, o, &acc)
    })?;
    Ok(())
}

/// How a matrix-vector product of `a` by the weight `w` runs: through the weight ring when
/// there is one, the rows fit a slot and the input is one row; a warp per `matvec_rows`
/// rows (or per 2 where a task gives each warp at least `rows_from` rows), or per row, with
/// 16-byte weight loads when weight rows and the input are contiguous along K, 16-byte
/// aligned (packed weights, the arena and scratch are) and K is a multiple of 8; else a
/// warp per row with its lanes taking an element at a time. `(boxes, rows)`: the task's
/// boxes and rows.
pub(crate) fn choose_matvec(
    a: &View,
    w: &View,
    transpose_b: bool,
    act_q8: bool,
    (boxes, rows): (usize, i64),
    o: &KernelOptions,
) -> Result<Choice, String> {
    if w.shape.len() != 2 {
        return Err(
            "the GPU lowering handles matmul of a vector or matrix by a 2-D weight only".into(),
        );
    }
    let kdim = *a
        .shape
        .last()
        .ok_or("a matrix-vector product of a scalar")?;
    let aligned = |v: &View| v.is_scratch() || v.base_aligned;
    let vectorised = transpose_b
        && kdim % 8 == 0
        && w.elem == ElemType::BF16
        && w.strides == [kdim as u64, 1]
        && a.strides.last() == Some(&1)
        && matches!(a.elem, ElemType::F32 | ElemType::BF16)
        && aligned(w)
        && aligned(a);
    let single_row = a.shape[..a.shape.len() - 1].iter().product::<i64>() == 1;
    let fits = o.stream_slots > 0 && 2 * kdim <= o.slot_bytes as i64;
    let blocks = transpose_b
        && matches!(w.elem, ElemType::Block(f) if crate::blocks::vector_path(f))
        && w.strides == [kdim as u64, 1]
        && a.strides.last() == Some(&1)
        && matches!(a.elem, ElemType::F32 | ElemType::BF16)
        && aligned(a);
    if act_q8 {
        // The input row is read once, an element at a time where it must be: only the
        // weight's layout and the row count matter.
        let why = if !single_row {
            Some("activations of one row")
        } else if kdim % 32 != 0 {
            Some("K a multiple of 32")
        } else if !a.elem.is_float() {
            Some("float activations")
        } else if !(transpose_b
            && matches!(w.elem, ElemType::Block(f) if crate::blocks::vector_path(f))
            && w.strides == [kdim as u64, 1])
        {
            Some("a transposed, row-major q8_0, q4_0 or q4_1 weight")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(format!(
                "a product on 8-bit activations (act_q8) of [{}] {} by [{}] {} needs {why}",
                a.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                a.elem,
                w.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                w.elem,
            ));
        }
    }
    let warps = (o.threads / 32).max(1) as i64;
    let many_rows = o.rows_from > 0 && rows >= o.rows_from as i64 * warps;
    let path = if act_q8 {
        MatvecPath::Dp4a
    } else if blocks {
        MatvecPath::Blocks
    } else if vectorised && single_row && fits && boxes > 0 && !w.is_scratch() {
        MatvecPath::Ring
    } else if vectorised && single_row && (o.matvec_rows > 1 || many_rows) {
        MatvecPath::Rows
    } else if vectorised {
        MatvecPath::Row
    } else {
        MatvecPath::Lanes
    };
    Ok(Choice::Matvec {
        path,
        rows: if many_rows { 2 } else { o.matvec_rows },
        unroll: matvec_unroll(kdim, o.matvec_unroll as i64, o.fewest_rounds) as u32,
        preload: 0,
        with: None,
    })
}

#[cfg(test)]
mod tests {
    use super::matvec_unroll;

    #[test]
    fn rounds_divide_k_or_cover_it_in_the_fewest_rounds_of_the_fewest_blocks() {
        // (K, most) -> blocks a round: as many as divide K; or (fewest) the fewest rounds
        // of the fewest blocks, blocks past K dropped.
        for (k, most, want) in [(2048, 4, 4), (576, 4, 1), (1536, 4, 2), (4096, 8, 8)] {
            assert_eq!(
                matvec_unroll(k, most, false),
                want,
                "K = {k}, at most {most}"
            );
        }
        for (k, most, want) in [
            (2048, 4, 4),
            (14336, 4, 4),
            (1024, 8, 4),
            (64, 4, 1),
            (576, 4, 3),
            (1536, 4, 3),
            (896, 4, 4),
            (2560, 4, 4),
            (576, 1, 1),
            (4096, 8, 8),
        ] {
            assert_eq!(
                matvec_unroll(k, most, true),
                want,
                "K = {k}, at most {most}"
            );
        }
    }
}
