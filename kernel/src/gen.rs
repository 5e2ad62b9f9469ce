//! The kernel's text under construction ([`Gen`]): SSA names, constants and nesting; views
//! of tensors (base, offset, shape, strides) with loads and stores; loops of the CTA's
//! threads or warps over boxes and unions of boxes; reductions across a warp's lanes and
//! across the CTA.

use crate::matvec::*;
use mkc_ir::dialect::kernel::TraceMark;
use mkc_ir::dialect::task::TileBox;
use mkc_ir::{Body, ElemType, ValueId};

/// A box whose bounds are SSA i64 values (read from the task's parameters).
pub(crate) type RBox = Vec<(String, String)>;

/// A box of a region's index space: extents, inner products, first and past-the-end index.
pub(crate) type RegionBox = (Vec<String>, Vec<String>, String, String);

/// Where a tensor's elements are: `base` (an SSA pointer) + `offset` bytes + index · strides.
#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) base: String,
    /// Whether the base offset is a multiple of 16 bytes in every task (places are aligned
    /// to 256 bytes in every buffer but `inputs`).
    pub(crate) base_aligned: bool,
    /// Byte offset: an SSA i64 value (a task parameter, or a constant for scratch).
    pub(crate) offset: String,
    pub(crate) shape: Vec<i64>,
    /// Element strides per logical axis.
    pub(crate) strides: Vec<u64>,
    pub(crate) elem: ElemType,
    /// Address space of `base`: 1 global, 3 shared (scratch).
    pub(crate) space: u32,
}

impl View {
    /// A task's scratch (shared or global), not a value of a buffer.
    pub(crate) fn is_scratch(&self) -> bool {
        self.base == "%scr" || self.base == "%sscr"
    }
}

pub(crate) fn mlir_type(e: ElemType) -> Result<&'static str, String> {
    Ok(match e {
        ElemType::F32 => "f32",
        ElemType::BF16 => "bf16",
        ElemType::F16 => "f16",
        ElemType::F64 => "f64",
        ElemType::I64 => "i64",
        ElemType::I32 => "i32",
        e => return Err(format!("the GPU lowering does not handle {e} tensors yet")),
    })
}

pub(crate) fn row_major(shape: &[i64]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1].max(1) as u64;
    }
    s
}

/// Emits the body of a loop over a box, given the element's multi-index.
pub(crate) type ElementFn<'a> = dyn FnMut(&mut Gen, &[String]) -> Result<(), String> + 'a;

/// [`ElementFn`] told whether this is the thread's (or warp's) first element.
pub(crate) type PeeledFn<'a> = dyn FnMut(&mut Gen, &[String], bool) -> Result<(), String> + 'a;

/// Emits a reduction step, given the induction value and the accumulator; returns the next.
pub(crate) type StepFn<'a> = dyn FnMut(&mut Gen, &str, &str) -> Result<String, String> + 'a;

/// Text of one kernel under construction.
#[derive(Default)]
pub(crate) struct Gen {
    pub(crate) out: String,
    pub(crate) next: usize,
    pub(crate) indent: usize,
    /// Threads per CTA.
    pub(crate) threads: u32,
    /// The weight ring: (slots, slot bytes), when on.
    pub(crate) ring: Option<(u32, u32)>,
    /// Matrix-vector products emitted as streamed.
    pub(crate) streamed: usize,
    /// Weight loads evict first from L2 and skip L1 (`%l2_evict_first` holds the policy).
    pub(crate) weights_evict_first: bool,
    /// The weights loaded before this task's wait, until its matrix-vector product uses them.
    pub(crate) preload: Vec<Preload>,
    /// Codes that preload weights before their wait, and the most blocks one preloads.
    pub(crate) preloaded: usize,
    pub(crate) preload_blocks_max: usize,
    /// The point of a task's code that takes the profile's wait-end stamp instead
    /// (`--trace-mark`), and the SSA name of the queue entry being emitted.
    pub(crate) trace_mark: Option<TraceMark>,
    pub(crate) trace_entry: Option<String>,
    /// Whether a task loads the step's read-only scalars before its wait, and those its code
    /// loaded there: (base, offset, element type, value), what [`Gen::load`] of that scalar
    /// gives.
    pub(crate) early_inputs: bool,
    pub(crate) early: Vec<(String, String, ElemType, String)>,
    /// The codes read the thread's number themselves (`megakernel::pass_name`).
    pub(crate) thread_per_case: bool,
    /// Box extents every task of a code shares are constants (`Codes::uniform`): the
    /// current code's upper bounds made so, each with its lower bound and extent.
    pub(crate) constant_extents: bool,
    pub(crate) fixed_extents: Vec<(String, String, i64)>,
    /// The PTX ISA version the code so far needs (`Kernel::ptx_isa`).
    pub(crate) ptx_isa: u32,
    /// `KernelConfig::prefetch_light_inputs`.
    pub(crate) prefetch_light_inputs: bool,
}

impl Gen {
    pub(crate) fn line(&mut self, s: impl AsRef<str>) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    pub(crate) fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%v{}", self.next)
    }

    /// `%new = rhs`.
    pub(crate) fn op(&mut self, rhs: impl AsRef<str>) -> String {
        let v = self.fresh();
        self.line(format!("{v} = {}", rhs.as_ref()));
        v
    }

    pub(crate) fn i64c(&mut self, x: i64) -> String {
        self.op(format!("arith.constant {x} : i64"))
    }

    pub(crate) fn idx(&mut self, x: i64) -> String {
        self.op(format!("arith.constant {x} : index"))
    }

    pub(crate) fn f32c(&mut self, x: f64) -> String {
        self.op(format!(
            "arith.constant 0x{:08X} : f32",
            (x as f32).to_bits()
        ))
    }

    pub(crate) fn f64c(&mut self, x: f64) -> String {
        self.op(format!("arith.constant 0x{:016X} : f64", x.to_bits()))
    }

    pub(crate) fn open(&mut self, s: impl AsRef<str>) {
        self.line(s);
        self.indent += 1;
    }

    pub(crate) fn close(&mut self, s: &str) {
        self.indent -= 1;
        self.line(s);
    }

    pub(crate) fn ptr(&mut self, view: &View, idx: &[String]) -> String {
        let eb = view.elem.bytes() as i64;
        let mut acc = view.offset.clone();
        for (i, s) in idx.iter().zip(&view.strides) {
            let st = self.i64c(*s as i64 * eb);
            let t = self.op(format!("arith.muli {i}, {st} : i64"));
            acc = self.op(format!("arith.addi {acc}, {t} : i64"));
        }
        self.op(format!(
            "llvm.getelementptr {}[{acc}] : (!llvm.ptr<{s}>, i64) -> !llvm.ptr<{s}>, i8",
            view.base,
            s = view.space
        ))
    }

    /// Loads an element, converted to the compute type (f32, or i64).
    pub(crate) fn load(&mut self, view: &View, idx: &[String]) -> Result<String, String> {
        if view.shape.is_empty() {
            let early = self
                .early
                .iter()
                .find(|(b, o, e, _)| *b == view.base && *o == view.offset && *e == view.elem);
            if let Some((_, _, _, v)) = early {
                return Ok(v.clone());
            }
        }
        if view.elem.is_block() {
            return self.load_block_elem(view, idx);
        }
        let p = self.ptr(view, idx);
        let t = mlir_type(view.elem)?;
        let v = self.op(format!("llvm.load {p} : !llvm.ptr<{}> -> {t}", view.space));
        Ok(match view.elem {
            ElemType::BF16 | ElemType::F16 => self.op(format!("arith.extf {v} : {t} to f32")),
            ElemType::F64 => self.op(format!("arith.truncf {v} : f64 to f32")),
            ElemType::I32 => self.op(format!("arith.extsi {v} : i32 to i64")),
            _ => v,
        })
    }

    /// Stores a compute-typed value as the view's element type.
    pub(crate) fn store(&mut self, view: &View, idx: &[String], v: &str) -> Result<(), String> {
        let t = mlir_type(view.elem)?;
        let v = match view.elem {
            ElemType::BF16 | ElemType::F16 => self.op(format!("arith.truncf {v} : f32 to {t}")),
            ElemType::F64 => self.op(format!("arith.extf {v} : f32 to f64")),
            ElemType::I32 => self.op(format!("arith.trunci {v} : i64 to i32")),
            _ => v.to_string(),
        };
        let p = self.ptr(view, idx);
        self.line(format!(
            "llvm.store {v}, {p} : {t}, !llvm.ptr<{}>",
            view.space
        ));
        Ok(())
    }

    pub(crate) fn barrier(&mut self) {
        self.line("gpu.barrier");
    }

    /// A box's extents, the row-major stride of each axis within it, and its element count.
    pub(crate) fn box_extents(&mut self, b: &RBox) -> (Vec<String>, Vec<String>, String) {
        let ext: Vec<String> = b
            .iter()
            .map(|(lo, hi)| {
                match self
                    .fixed_extents
                    .iter()
                    .find(|(h, l, _)| h == hi && l == lo)
                {
                    Some(&(_, _, e)) => self.i64c(e),
                    None => self.op(format!("arith.subi {hi}, {lo} : i64")),
                }
            })
            .collect();
        let mut inners = vec![String::new(); ext.len()];
        let mut inner = self.i64c(1);
        for k in (0..ext.len()).rev() {
            inners[k] = inner.clone();
            inner = self.op(format!("arith.muli {inner}, {} : i64", ext[k]));
        }
        (ext, inners, inner)
    }

    /// `body(multi-index)` for every element of the box `b` (bounds are SSA i64 values),
    /// the threads (`first` = %tid, `step` = %nthreads) or the warps taking turns.
    pub(crate) fn for_box_by(
        &mut self,
        b: &RBox,
        first: &str,
        step: &str,
        body: &mut ElementFn,
    ) -> Result<(), String> {
        let (ext, inners, inner) = self.box_extents(b);
        let nn = self.op(format!("arith.index_cast {inner} : i64 to index"));
        let i = self.fresh();
        self.open(format!("scf.for {i} = {first} to {nn} step {step} {{"));
        let li = self.op(format!("arith.index_cast {i} : index to i64"));
        let mut idx = Vec::new();
        for k in 0..ext.len() {
            let q = self.op(format!("arith.divsi {li}, {} : i64", inners[k]));
            let r = if k == 0 {
                q
            } else {
                self.op(format!("arith.remsi {q}, {} : i64", ext[k]))
            };
            idx.push(self.op(format!("arith.addi {r}, {} : i64", b[k].0)));
        }
        body(self, &idx)?;
        self.close("}");
        Ok(())
    }

    /// `body(multi-index)` for every element of a union of boxes (of one rank), the CTA's
    /// threads taking turns over it as one index space, so the
    /// threads share all of it: a region of many small boxes (a tile of rope pairs, of lanes
    /// of every head) keeps every thread busy instead of one box after another.
    pub(crate) fn for_region(&mut self, r: &[RBox], body: &mut ElementFn) -> Result<(), String> {
        self.for_region_by(r, "%tid", "%nthreads", 1, body)
    }

    /// [`Gen::for_region`] with one warp per element (the lanes then share the element's
    /// work, see [`Gen::lane_reduce`]).
    pub(crate) fn for_region_warp(
        &mut self,
        r: &[RBox],
        body: &mut ElementFn,
    ) -> Result<(), String> {
        self.for_region_by(r, "%warp", "%nwarps", 1, body)
    }

    /// The boxes of a region as one index space: per box its extents, inner products, and
    /// where it starts and ends in the union; and the union's element count.
    pub(crate) fn region_boxes(&mut self, r: &[RBox]) -> (Vec<RegionBox>, String) {
        let mut boxes = Vec::new();
        let mut start = self.i64c(0);
        for b in r {
            let (ext, inners, inner) = self.box_extents(b);
            let end = self.op(format!("arith.addi {start}, {inner} : i64"));
            boxes.push((ext, inners, start, end.clone()));
            start = end;
        }
        (boxes, start)
    }

    /// The multi-index of element `li` (an i64 below the count) of the union of boxes `r`:
    /// its index in every box, then the one of the box that holds it (the first whose end
    /// is past it).
    pub(crate) fn region_index(
        &mut self,
        r: &[RBox],
        boxes: &[RegionBox],
        li: &str,
    ) -> Vec<String> {
        let mut idx: Vec<String> = Vec::new();
        for (j, (ext, inners, at, end)) in boxes.iter().enumerate().rev() {
            let local = self.op(format!("arith.subi {li}, {at} : i64"));
            let mine: Vec<String> = (0..ext.len())
                .map(|k| {
                    // (The outermost axis needs no remainder: local < its extent times the
                    // inner product.)
                    let q = self.op(format!("arith.divsi {local}, {} : i64", inners[k]));
                    let rr = if k == 0 {
                        q
                    } else {
                        self.op(format!("arith.remsi {q}, {} : i64", ext[k]))
                    };
                    self.op(format!("arith.addi {rr}, {} : i64", r[j][k].0))
                })
                .collect();
            idx = if idx.is_empty() {
                mine
            } else {
                let here = self.op(format!("arith.cmpi slt, {li}, {end} : i64"));
                mine.iter()
                    .zip(&idx)
                    .map(|(m, o)| self.op(format!("arith.select {here}, {m}, {o} : i64")))
                    .collect()
            };
        }
        idx
    }

    /// [`Gen::for_region_warp`], with each warp's first turn, when `peel`, emitted apart
    /// (`body(.., true)`) before the loop over the others (`body(.., false)`).
    pub(crate) fn for_region_warp_peeled(
        &mut self,
        r: &[RBox],
        peel: bool,
        body: &mut PeeledFn,
    ) -> Result<(), String> {
        if !peel || r.is_empty() {
            return self.for_region_warp(r, &mut |g, o| body(g, o, false));
        }
        let (boxes, total) = self.region_boxes(r);
        let warp = self.op("arith.index_cast %warp : index to i64");
        let has = self.op(format!("arith.cmpi slt, {warp}, {total} : i64"));
        self.open(format!("scf.if {has} {{"));
        let idx = self.region_index(r, &boxes, &warp);
        body(self, &idx, true)?;
        self.close("}");
        let second = self.op("arith.addi %warp, %nwarps : index");
        self.for_region_by(r, &second, "%nwarps", 1, &mut |g, o| body(g, o, false))
    }

    /// `body` for every element of the union of boxes `r`, `unroll` elements a round per
    /// thread (or warp): i, i + step, ...; one past the end is clamped to the last element,
    /// which is then computed twice by the same thread (a body only reads inputs and
    /// stores its element, and no task writes a value it reads, so that is harmless).
    pub(crate) fn for_region_by(
        &mut self,
        r: &[RBox],
        first: &str,
        step: &str,
        unroll: i64,
        body: &mut ElementFn,
    ) -> Result<(), String> {
        if r.is_empty() {
            return Ok(());
        }
        let (boxes, total) = self.region_boxes(r);
        let nn = self.op(format!("arith.index_cast {total} : i64 to index"));
        let one = self.i64c(1);
        let last = self.op(format!("arith.subi {total}, {one} : i64"));
        let i = self.fresh();
        let round = if unroll > 1 {
            let u = self.idx(unroll);
            self.op(format!("arith.muli {step}, {u} : index"))
        } else {
            step.to_string()
        };
        self.open(format!("scf.for {i} = {first} to {nn} step {round} {{"));
        let i0 = self.op(format!("arith.index_cast {i} : index to i64"));
        let step64 = self.op(format!("arith.index_cast {step} : index to i64"));
        for u in 0..unroll {
            let li = if u == 0 {
                i0.clone()
            } else {
                let uc = self.i64c(u);
                let du = self.op(format!("arith.muli {step64}, {uc} : i64"));
                let li = self.op(format!("arith.addi {i0}, {du} : i64"));
                self.op(format!("arith.minsi {li}, {last} : i64"))
            };
            let idx = self.region_index(r, &boxes, &li);
            body(self, &idx)?;
        }
        self.close("}");
        Ok(())
    }

    /// A box with constant bounds.
    pub(crate) fn const_box(&mut self, b: &TileBox) -> RBox {
        b.iter()
            .map(|&(lo, hi)| (self.i64c(lo), self.i64c(hi)))
            .collect()
    }

    /// The lanes of a warp share `for k in 0..n` (lane l takes k = l, l + 32, ...), each
    /// carrying f32 accumulators; then the lanes combine theirs (sum, or max) by butterfly
    /// shuffles, so every lane holds the result. `init` is the identity (0, or -inf for
    /// max). Each lane takes 4 values of k per round with its own accumulators, so their
    /// loads are in flight together (a k past n is clamped to n - 1 and its value dropped).
    pub(crate) fn lane_reduce(
        &mut self,
        n: &str,
        init: &str,
        max: bool,
        body: &mut StepFn,
    ) -> Result<String, String> {
        const UNROLL: usize = 4;
        let (k, res) = (self.fresh(), self.fresh());
        let accs: Vec<String> = (0..UNROLL).map(|_| self.fresh()).collect();
        let nidx = self.op(format!("arith.index_cast {n} : i64 to index"));
        let one = self.i64c(1);
        let last = self.op(format!("arith.subi {n}, {one} : i64"));
        let step = self.idx(32 * UNROLL as i64);
        let iter: Vec<String> = accs.iter().map(|a| format!("{a} = {init}")).collect();
        let tys = ["f32"; UNROLL].join(", ");
        self.open(format!(
            "{res}:{UNROLL} = scf.for {k} = %lane to {nidx} step {step} iter_args({}) -> ({tys}) {{",
            iter.join(", ")
        ));
        let k0 = self.op(format!("arith.index_cast {k} : index to i64"));
        let mut nexts = Vec::new();
        for (j, acc) in accs.iter().enumerate() {
            let dj = self.i64c(32 * j as i64);
            let kj = self.op(format!("arith.addi {k0}, {dj} : i64"));
            let ok = self.op(format!("arith.cmpi slt, {kj}, {n} : i64"));
            let kc = self.op(format!("arith.minsi {kj}, {last} : i64"));
            let next = body(self, &kc, acc)?;
            nexts.push(self.op(format!("arith.select {ok}, {next}, {acc} : f32")));
        }
        self.line(format!("scf.yield {} : {tys}", nexts.join(", ")));
        self.close("}");
        let mut v = format!("{res}#0");
        for j in 1..UNROLL {
            v = if max {
                self.op(format!("arith.maximumf {v}, {res}#{j} : f32"))
            } else {
                self.op(format!("arith.addf {v}, {res}#{j} : f32"))
            };
        }
        Ok(self.warp_combine(v, max))
    }

    /// The whole CTA sums `body(k)` for k in 0..n: each thread takes k = tid, tid + 256, ...
    /// with 8 independent loads in flight per round, the warps reduce by shuffles, and their
    /// partial sums meet in `partials` (8 f32 of scratch). Every thread gets the total.
    pub(crate) fn cta_sum(
        &mut self,
        n: i64,
        partials: &View,
        body: &mut StepFn,
    ) -> Result<String, String> {
        const UNROLL: i64 = 8;
        let t = self.threads as i64;
        let (kk, acc, res) = (self.fresh(), self.fresh(), self.fresh());
        let nn = self.idx(n);
        let step = self.idx(t * UNROLL);
        let zero = self.f32c(0.0);
        let head = format!("{res} = scf.for {kk} = %tid to {nn} step {step}");
        self.sum_loop(
            &head,
            &kk,
            &acc,
            &zero,
            t,
            UNROLL,
            &mut |g| (g.i64c(n), g.i64c(n - 1)),
            body,
        )?;
        let v = self.warp_combine(res, false);
        let w64 = self.op("arith.index_cast %warp : index to i64");
        self.store_lane0(partials, &[w64], &v)?;
        self.barrier();
        let mut total = self.f32c(0.0);
        for w in 0..(t / 32) {
            let i = self.i64c(w);
            let p = self.load(partials, &[i])?;
            total = self.op(format!("arith.addf {total}, {p} : f32"));
        }
        // The partials are reused by the next row.
        self.barrier();
        Ok(total)
    }

    /// The body of an f32 sum loop opened by `head` (`%res = scf.for %k = .. to .. step ..`):
    /// `unroll` values per round, k, k + gap, ..., their loads in flight together; a value
    /// at or past the end (`bounds` gives the end and the last index, made inside the loop)
    /// is clamped to the last index and dropped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sum_loop(
        &mut self,
        head: &str,
        kk: &str,
        acc: &str,
        zero: &str,
        gap: i64,
        unroll: i64,
        bounds: &mut dyn FnMut(&mut Gen) -> (String, String),
        body: &mut StepFn,
    ) -> Result<(), String> {
        self.open(format!("{head} iter_args({acc} = {zero}) -> (f32) {{"));
        let k0 = self.op(format!("arith.index_cast {kk} : index to i64"));
        let (end, last) = bounds(self);
        let mut vals = Vec::new();
        for j in 0..unroll {
            let dj = self.i64c(gap * j);
            let k = self.op(format!("arith.addi {k0}, {dj} : i64"));
            let ok = self.op(format!("arith.cmpi slt, {k}, {end} : i64"));
            let kc = self.op(format!("arith.minsi {k}, {last} : i64"));
            let v = body(self, &kc, zero)?;
            vals.push((ok, v));
        }
        let mut sum = acc.to_string();
        for (ok, v) in vals {
            let v = self.op(format!("arith.select {ok}, {v}, {zero} : f32"));
            sum = self.op(format!("arith.addf {sum}, {v} : f32"));
        }
        self.line(format!("scf.yield {sum} : f32"));
        self.close("}");
        Ok(())
    }

    /// This lane's (group, place in its group) for groups of `sub` lanes of a warp.
    pub(crate) fn lane_split(&mut self, sub: i64) -> (String, String) {
        let lane = self.op("arith.index_cast %lane : index to i64");
        let subc = self.i64c(sub);
        let g = self.op(format!("arith.divsi {lane}, {subc} : i64"));
        let r = self.op(format!("arith.remsi {lane}, {subc} : i64"));
        (g, r)
    }

    /// Combines every lane's `v` across the warp (sum, or max) by butterfly shuffles: every
    /// lane gets the result.
    pub(crate) fn warp_combine(&mut self, v: String, max: bool) -> String {
        self.lanes_combine(v, 32, max)
    }

    /// [`Gen::warp_combine`] within each aligned group of `width` lanes (a power of two).
    pub(crate) fn lanes_combine(&mut self, mut v: String, width: i64, max: bool) -> String {
        let mut off = width / 2;
        while off >= 1 {
            let o = self.op(format!("arith.constant {off} : i32"));
            let other = self.op(format!(
                "nvvm.shfl.sync bfly %full_mask, {v}, {o}, %clamp31 : f32 -> f32"
            ));
            v = if max {
                self.op(format!("arith.maximumf {v}, {other} : f32"))
            } else {
                self.op(format!("arith.addf {v}, {other} : f32"))
            };
            off /= 2;
        }
        v
    }

    /// Sums each of `vals` over every aligned group of `width` lanes (a power of two), each
    /// lane left with a share of the sums: at each butterfly level a lane keeps half its
    /// values (the lower half where its bit of the level is clear) and sends the other half
    /// to its partner, which adds it, so `n` values cost about `n` shuffles where summing each
    /// would take `n log2(width)`. Returns the lane's values, the sums of indices
    /// `base..base + k` (`k` their count), and the offsets of the levels that halved (the
    /// first the most significant bit of `base / k`; see [`Gen::lanes_gather`]).
    pub(crate) fn lanes_reduce_scatter(
        &mut self,
        mut vals: Vec<String>,
        width: i64,
    ) -> (Vec<String>, Vec<i64>) {
        let lane = self.op("arith.index_cast %lane : index to i32");
        let mut splits = Vec::new();
        let mut o = width / 2;
        while o >= 1 {
            let oc = self.op(format!("arith.constant {o} : i32"));
            if halves(vals.len()) {
                let bit = self.op(format!("arith.andi {lane}, {oc} : i32"));
                let z = self.op("arith.constant 0 : i32");
                let upper = self.op(format!("arith.cmpi ne, {bit}, {z} : i32"));
                let half = vals.len() / 2;
                let mut next = Vec::with_capacity(half);
                for i in 0..half {
                    let (a, b) = (&vals[i], &vals[half + i]);
                    let send = self.op(format!("arith.select {upper}, {a}, {b} : f32"));
                    let keep = self.op(format!("arith.select {upper}, {b}, {a} : f32"));
                    let got = self.op(format!(
                        "nvvm.shfl.sync bfly %full_mask, {send}, {oc}, %clamp31 : f32 -> f32"
                    ));
                    next.push(self.op(format!("arith.addf {keep}, {got} : f32")));
                }
                vals = next;
                splits.push(o);
            } else {
                for v in vals.iter_mut() {
                    let got = self.op(format!(
                        "nvvm.shfl.sync bfly %full_mask, {v}, {oc}, %clamp31 : f32 -> f32"
                    ));
                    *v = self.op(format!("arith.addf {v}, {got} : f32"));
                }
            }
            o /= 2;
        }
        (vals, splits)
    }

    /// Sum `v` of a [`Gen::lanes_reduce_scatter`] (its `held` values and `splits`), fetched by
    /// every lane from a lane of its group (whose first lane is `lane0`, an i32) that holds it.
    pub(crate) fn lanes_gather(
        &mut self,
        held: &[String],
        splits: &[i64],
        v: usize,
        lane0: &str,
    ) -> String {
        let (src, i) = scatter_holder(splits, held.len(), v);
        let sc = self.op(format!("arith.constant {src} : i32"));
        let at = self.op(format!("arith.addi {lane0}, {sc} : i32"));
        self.op(format!(
            "nvvm.shfl.sync idx %full_mask, {}, {at}, %clamp31 : f32 -> f32",
            held[i]
        ))
    }

    /// The bounds along `axis` of the box numbered `which` (an i64 SSA value) of `need`.
    pub(crate) fn box_bounds(
        &mut self,
        need: &[RBox],
        which: &str,
        axis: usize,
    ) -> (String, String) {
        let (mut lo, mut hi) = need[0][axis].clone();
        for (i, b) in need.iter().enumerate().skip(1) {
            let ic = self.i64c(i as i64);
            let here = self.op(format!("arith.cmpi eq, {which}, {ic} : i64"));
            lo = self.op(format!("arith.select {here}, {}, {lo} : i64", b[axis].0));
            hi = self.op(format!("arith.select {here}, {}, {hi} : i64", b[axis].1));
        }
        (lo, hi)
    }

    /// A store by lane 0 of each warp (after a [`Gen::lane_reduce`]).
    pub(crate) fn store_lane0(
        &mut self,
        view: &View,
        idx: &[String],
        v: &str,
    ) -> Result<(), String> {
        self.open("scf.if %lane0 {");
        self.store(view, idx, v)?;
        self.close("}");
        Ok(())
    }
}

pub(crate) fn shape_of(body: &Body, v: ValueId) -> Vec<i64> {
    body.ty(v)
        .as_tensor()
        .map(|t| t.shape.clone())
        .unwrap_or_default()
}

pub(crate) fn elem_of(body: &Body, v: ValueId) -> ElemType {
    body.ty(v).as_tensor().map_or(ElemType::F32, |t| t.elem)
}

/// The indices of an operand of shape `s` that a result index `o` (of `out` shape) reads
/// under numpy broadcasting.
pub(crate) fn broadcast_idx(g: &mut Gen, o: &[String], out: &[i64], s: &[i64]) -> Vec<String> {
    let off = out.len() - s.len();
    (0..s.len())
        .map(|k| {
            if s[k] == 1 && out[k + off] != 1 {
                g.i64c(0)
            } else {
                o[k + off].clone()
            }
        })
        .collect()
}

/// Row-major flat index of `idx` in `shape`, and back.
pub(crate) fn flatten(g: &mut Gen, idx: &[String], shape: &[i64]) -> String {
    let st = row_major(shape);
    let mut acc = g.i64c(0);
    for (i, s) in idx.iter().zip(st) {
        let c = g.i64c(s as i64);
        let t = g.op(format!("arith.muli {i}, {c} : i64"));
        acc = g.op(format!("arith.addi {acc}, {t} : i64"));
    }
    acc
}

pub(crate) fn unflatten(g: &mut Gen, flat: &str, shape: &[i64]) -> Vec<String> {
    let st = row_major(shape);
    (0..shape.len())
        .map(|k| {
            let d = g.i64c(st[k] as i64);
            let q = g.op(format!("arith.divsi {flat}, {d} : i64"));
            let e = g.i64c(shape[k].max(1));
            g.op(format!("arith.remsi {q}, {e} : i64"))
        })
        .collect()
}

/// Multi-index of flat `k` (an i64 SSA value) over `shape` with strides `st`.
pub(crate) fn unflatten_with(g: &mut Gen, k: &str, shape: &[i64], st: &[u64]) -> Vec<String> {
    (0..shape.len())
        .map(|i| {
            let d = g.i64c(st[i] as i64);
            let q = g.op(format!("arith.divsi {k}, {d} : i64"));
            let e = g.i64c(shape[i].max(1));
            g.op(format!("arith.remsi {q}, {e} : i64"))
        })
        .collect()
}

/// Whether a level of [`Gen::lanes_reduce_scatter`] halves `n` values (else it adds each).
pub(crate) fn halves(n: usize) -> bool {
    n >= 2 && n.is_multiple_of(2)
}

/// Where sum `v` of a [`Gen::lanes_reduce_scatter`] is after it: the offset of a lane that
/// holds it from its group's first lane, and its index among the lane's `k` values. (Held
/// are sums base..base + k, base the sum over halving levels of half the values then if
/// the lane's bit of the level is set: the first level the most significant bit of
/// base / k.)
pub(crate) fn scatter_holder(splits: &[i64], k: usize, v: usize) -> (i64, usize) {
    let c = v / k;
    let ns = splits.len();
    let src = splits
        .iter()
        .enumerate()
        .map(|(t, o)| ((c >> (ns - 1 - t)) & 1) as i64 * o)
        .sum();
    (src, v % k)
}

#[cfg(test)]
mod tests {
    use super::{halves, scatter_holder};

    /// The reduce-scatter's levels run on a simulated warp (the emitted selects and
    /// butterfly shuffles, lane by lane): every sum must be where `scatter_holder` says, for
    /// the value counts and group widths the online attention uses (a KV group's heads times
    /// 8 positions, groups of 2 to 32 lanes), odd counts included.
    #[test]
    fn every_sum_is_where_the_gather_looks() {
        for width in [2i64, 4, 8, 16, 32] {
            for n in [1usize, 2, 3, 6, 8, 16, 24, 32, 40, 56, 64] {
                // Lane l's value j: distinct per (l, j), so a wrong sum shows.
                let mut vals: Vec<Vec<i64>> = (0..32)
                    .map(|l| (0..n).map(|j| (l * 1000 + j) as i64).collect())
                    .collect();
                let mut splits = Vec::new();
                let mut o = width / 2;
                while o >= 1 {
                    let len = vals[0].len();
                    let next: Vec<Vec<i64>> = (0..32usize)
                        .map(|l| {
                            let partner = &vals[l ^ o as usize];
                            let mine = &vals[l];
                            if halves(len) {
                                let half = len / 2;
                                let upper = l as i64 & o != 0;
                                (0..half)
                                    .map(|i| {
                                        let keep = if upper { mine[half + i] } else { mine[i] };
                                        let got =
                                            if upper { partner[half + i] } else { partner[i] };
                                        keep + got
                                    })
                                    .collect()
                            } else {
                                mine.iter().zip(partner).map(|(a, b)| a + b).collect()
                            }
                        })
                        .collect();
                    if halves(len) {
                        splits.push(o);
                    }
                    vals = next;
                    o /= 2;
                }
                let k = vals[0].len();
                for group in (0..32).step_by(width as usize) {
                    for v in 0..n {
                        let want: i64 = (group..group + width as usize)
                            .map(|l| (l * 1000 + v) as i64)
                            .sum();
                        let (src, i) = scatter_holder(&splits, k, v);
                        assert!(src < width, "width {width} n {n} v {v}");
                        assert_eq!(
                            vals[group + src as usize][i],
                            want,
                            "width {width} n {n} v {v}"
                        );
                    }
                }
            }
        }
    }
}
