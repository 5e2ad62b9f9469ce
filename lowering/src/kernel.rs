//! The megakernel of a scheduled task program, as MLIR text (gpu, scf, arith, llvm, nvvm
//! dialects) that [`crate::gpu_module_to_ptx`] lowers to PTX.
//!
//! One `gpu.func @step`, launched with one CTA per SM: the CTA switches on its block id to
//! its SM's queue, and runs each task of it in order:
//!
//! 1. wait: thread 0 spins (acquire loads at device scope, with nanosleep) until every event
//!    the task waits on reaches `target * step`; a fence and a barrier hand that on to the
//!    CTA;
//! 2. compute: the task's slice (the ops its tile needs, from [`mkc_ir::tiling::slice`]),
//!    op by op, each over exactly the boxes the slice needs, the CTA's threads splitting the
//!    elements; intermediates live in the SM's scratch region of global memory (L2);
//! 3. write the tile to its place (an in-place KV cache update writes the row of the step's
//!    position; f32 caches are rounded through bf16, as the simulator stores them);
//! 4. signal: a barrier, then thread 0 fences (release, device scope) and adds 1 to each of
//!    its events.
//!
//! Arithmetic is f32 (integers i64), weights and caches converted on load. Transcendentals use
//! PTX's `ex2.approx` and `sqrt.rn` through inline assembly (the NVVM conversion would call
//! libdevice, which a driver-only host does not have); rope angles use a range-reduced
//! polynomial in f64. This first code generator is deliberately plain, one element per
//! thread and dot products by one thread: correctness first, speed is the next issue.

use mkc_ir::attr::Attr;
use mkc_ir::dialect::task::TaskProgram;
use mkc_ir::dialect::tg::nn::rope_inv_freq;
use mkc_ir::tasks::TileBox;
use mkc_ir::tiling::{full_box, result_in_place, slice, Region};
use mkc_ir::{Body, ElemType, EntityRef, OpId, ValueId};
use std::collections::HashMap;
use std::fmt::Write;

/// Threads per CTA.
pub const THREADS: u32 = 256;

/// The generated kernel and what the launcher needs to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub mlir: String,
    /// Kernel name inside the `gpu.module @mkc`.
    pub name: String,
    pub threads: u32,
    /// CTAs to launch (one per SM of the schedule).
    pub ctas: usize,
    /// Bytes of scratch each CTA needs (the launcher allocates `ctas` of them).
    pub scratch_per_cta: u64,
    /// Distinct task codes in the kernel.
    pub codes: usize,
    /// The task table: per task, its code, waits (event, target), signals and parameters
    /// (byte offsets, then boxes), as i64 words.
    pub tasks: Vec<i64>,
    /// Per queue entry, the word where its task's record starts.
    pub entries: Vec<i64>,
    /// Per SM, (first entry, number of entries).
    pub queues: Vec<i64>,
}

/// A box whose bounds are SSA i64 values (read from the task's parameters).
type RBox = Vec<(String, String)>;

/// Where a tensor's elements are: `base` (an SSA pointer) + `offset` bytes + index · strides.
#[derive(Clone, Debug)]
struct View {
    base: String,
    /// Whether the base offset is a multiple of 16 bytes in every task (places are aligned
    /// to 256 bytes in every buffer but `inputs`).
    base_aligned: bool,
    /// Byte offset: an SSA i64 value (a task parameter, or a constant for scratch).
    offset: String,
    shape: Vec<i64>,
    /// Element strides per logical axis.
    strides: Vec<u64>,
    elem: ElemType,
}

fn mlir_type(e: ElemType) -> Result<&'static str, String> {
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

fn row_major(shape: &[i64]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1].max(1) as u64;
    }
    s
}

/// Emits the body of a loop over a box, given the element's multi-index.
type ElementFn<'a> = dyn FnMut(&mut Gen, &[String]) -> Result<(), String> + 'a;
/// Emits a reduction step, given the induction value and the accumulator; returns the next.
type StepFn<'a> = dyn FnMut(&mut Gen, &str, &str) -> Result<String, String> + 'a;

/// Text of one kernel under construction.
struct Gen {
    out: String,
    next: usize,
    indent: usize,
}

impl Gen {
    fn line(&mut self, s: impl AsRef<str>) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%v{}", self.next)
    }

    /// `%new = rhs`.
    fn op(&mut self, rhs: impl AsRef<str>) -> String {
        let v = self.fresh();
        self.line(format!("{v} = {}", rhs.as_ref()));
        v
    }

    fn i64c(&mut self, x: i64) -> String {
        self.op(format!("arith.constant {x} : i64"))
    }

    fn idx(&mut self, x: i64) -> String {
        self.op(format!("arith.constant {x} : index"))
    }

    fn f32c(&mut self, x: f64) -> String {
        self.op(format!(
            "arith.constant 0x{:08X} : f32",
            (x as f32).to_bits()
        ))
    }

    fn f64c(&mut self, x: f64) -> String {
        self.op(format!("arith.constant 0x{:016X} : f64", x.to_bits()))
    }

    fn open(&mut self, s: impl AsRef<str>) {
        self.line(s);
        self.indent += 1;
    }

    fn close(&mut self, s: &str) {
        self.indent -= 1;
        self.line(s);
    }

    fn ptr(&mut self, view: &View, idx: &[String]) -> String {
        let eb = view.elem.bytes() as i64;
        let mut acc = view.offset.clone();
        for (i, s) in idx.iter().zip(&view.strides) {
            let st = self.i64c(*s as i64 * eb);
            let t = self.op(format!("arith.muli {i}, {st} : i64"));
            acc = self.op(format!("arith.addi {acc}, {t} : i64"));
        }
        self.op(format!(
            "llvm.getelementptr {}[{acc}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8",
            view.base
        ))
    }

    /// Loads an element, converted to the compute type (f32, or i64).
    fn load(&mut self, view: &View, idx: &[String]) -> Result<String, String> {
        let p = self.ptr(view, idx);
        let t = mlir_type(view.elem)?;
        let v = self.op(format!("llvm.load {p} : !llvm.ptr<1> -> {t}"));
        Ok(match view.elem {
            ElemType::BF16 | ElemType::F16 => self.op(format!("arith.extf {v} : {t} to f32")),
            ElemType::F64 => self.op(format!("arith.truncf {v} : f64 to f32")),
            ElemType::I32 => self.op(format!("arith.extsi {v} : i32 to i64")),
            _ => v,
        })
    }

    /// Stores a compute-typed value as the view's element type.
    fn store(&mut self, view: &View, idx: &[String], v: &str) -> Result<(), String> {
        let t = mlir_type(view.elem)?;
        let v = match view.elem {
            ElemType::BF16 | ElemType::F16 => self.op(format!("arith.truncf {v} : f32 to {t}")),
            ElemType::F64 => self.op(format!("arith.extf {v} : f32 to f64")),
            ElemType::I32 => self.op(format!("arith.trunci {v} : i64 to i32")),
            _ => v.to_string(),
        };
        let p = self.ptr(view, idx);
        self.line(format!("llvm.store {v}, {p} : {t}, !llvm.ptr<1>"));
        Ok(())
    }

    fn barrier(&mut self) {
        self.line("gpu.barrier");
    }

    /// `body(multi-index)` for every element of the box `b` (bounds are SSA i64 values),
    /// the CTA's threads taking turns.
    fn for_box(&mut self, b: &RBox, body: &mut ElementFn) -> Result<(), String> {
        self.for_box_by(b, "%tid", "%nthreads", body)
    }

    /// [`Gen::for_box`] with one warp per element (the lanes then share the element's work,
    /// see [`Gen::lane_reduce`]).
    fn for_box_warp(&mut self, b: &RBox, body: &mut ElementFn) -> Result<(), String> {
        self.for_box_by(b, "%warp", "%nwarps", body)
    }

    fn for_box_by(
        &mut self,
        b: &RBox,
        first: &str,
        step: &str,
        body: &mut ElementFn,
    ) -> Result<(), String> {
        let ext: Vec<String> = b
            .iter()
            .map(|(lo, hi)| self.op(format!("arith.subi {hi}, {lo} : i64")))
            .collect();
        let mut inners = vec![String::new(); ext.len()];
        let mut inner = self.i64c(1);
        for k in (0..ext.len()).rev() {
            inners[k] = inner.clone();
            inner = self.op(format!("arith.muli {inner}, {} : i64", ext[k]));
        }
        let nn = self.op(format!("arith.index_cast {inner} : i64 to index"));
        let i = self.fresh();
        self.open(format!("scf.for {i} = {first} to {nn} step {step} {{"));
        let li = self.op(format!("arith.index_cast {i} : index to i64"));
        let mut idx = Vec::new();
        for k in 0..ext.len() {
            let q = self.op(format!("arith.divsi {li}, {} : i64", inners[k]));
            let r = self.op(format!("arith.remsi {q}, {} : i64", ext[k]));
            idx.push(self.op(format!("arith.addi {r}, {} : i64", b[k].0)));
        }
        body(self, &idx)?;
        self.close("}");
        Ok(())
    }

    /// A box with constant bounds.
    fn const_box(&mut self, b: &TileBox) -> RBox {
        b.iter()
            .map(|&(lo, hi)| (self.i64c(lo), self.i64c(hi)))
            .collect()
    }

    /// The lanes of a warp share `for k in 0..n` (lane l takes k = l, l + 32, ...), each
    /// carrying an f32 accumulator; then the lanes combine theirs (sum, or max) by
    /// butterfly shuffles, so every lane holds the result.
    fn lane_reduce(
        &mut self,
        n: &str,
        init: &str,
        max: bool,
        body: &mut StepFn,
    ) -> Result<String, String> {
        let (k, acc, res) = (self.fresh(), self.fresh(), self.fresh());
        let nidx = self.op(format!("arith.index_cast {n} : i64 to index"));
        self.open(format!(
            "{res} = scf.for {k} = %lane to {nidx} step %c32_idx iter_args({acc} = {init}) -> (f32) {{"
        ));
        let kk = self.op(format!("arith.index_cast {k} : index to i64"));
        let next = body(self, &kk, &acc)?;
        self.line(format!("scf.yield {next} : f32"));
        self.close("}");
        Ok(self.warp_combine(res, max))
    }

    /// The dot product of a bf16 weight row and an input row (f32 or bf16), both contiguous
    /// and 16-byte aligned, `k` a multiple of 8: lane l takes elements 8l..8l+8, then every
    /// 256th block, with 16-byte loads; the lanes' sums are combined by shuffles.
    fn lane_dot8(&mut self, w: &str, a: &str, a_elem: ElemType, k: i64) -> Result<String, String> {
        // Up to 4 blocks of 256 elements per iteration, all loads issued before any math, so
        // each warp keeps several 16-byte loads per lane in flight.
        let unroll = [4i64, 2, 1]
            .into_iter()
            .find(|u| k % (256 * u) == 0)
            .unwrap_or(1);
        let (kk, acc, res) = (self.fresh(), self.fresh(), self.fresh());
        let c8 = self.idx(8);
        let start = self.op(format!("arith.muli %lane, {c8} : index"));
        let kn = self.idx(k);
        let step = self.idx(256 * unroll);
        let zero = self.f32c(0.0);
        self.open(format!(
            "{res} = scf.for {kk} = {start} to {kn} step {step} iter_args({acc} = {zero}) -> (f32) {{"
        ));
        let k0 = self.op(format!("arith.index_cast {kk} : index to i64"));
        let mut loaded = Vec::new();
        for u in 0..unroll {
            let du = self.i64c(256 * u);
            let k64 = self.op(format!("arith.addi {k0}, {du} : i64"));
            // With no unrolling the loop bound keeps lanes past K out; unrolled blocks all
            // lie inside K (K is a multiple of 256 * unroll).
            let two = self.i64c(2);
            let wb = self.op(format!("arith.muli {k64}, {two} : i64"));
            let wp = self.op(format!(
                "llvm.getelementptr {w}[{wb}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let wv = self.op(format!(
                "llvm.load {wp} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<8xbf16>"
            ));
            let ab = self.i64c(a_elem.bytes() as i64);
            let ao = self.op(format!("arith.muli {k64}, {ab} : i64"));
            let ap = self.op(format!(
                "llvm.getelementptr {a}[{ao}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let at = if a_elem == ElemType::BF16 {
                "bf16"
            } else {
                "f32"
            };
            let av = self.op(format!(
                "llvm.load {ap} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<8x{at}>"
            ));
            loaded.push((wv, av));
        }
        let mut sum = acc.clone();
        for (wv, av) in loaded {
            let wf = self.op(format!("arith.extf {wv} : vector<8xbf16> to vector<8xf32>"));
            let af = if a_elem == ElemType::BF16 {
                self.op(format!("arith.extf {av} : vector<8xbf16> to vector<8xf32>"))
            } else {
                av
            };
            let prod = self.op(format!("arith.mulf {wf}, {af} : vector<8xf32>"));
            for j in 0..8 {
                let c = self.op(format!("arith.constant {j} : i32"));
                let e = self.op(format!(
                    "llvm.extractelement {prod}[{c} : i32] : vector<8xf32>"
                ));
                sum = self.op(format!("arith.addf {sum}, {e} : f32"));
            }
        }
        self.line(format!("scf.yield {sum} : f32"));
        self.close("}");
        let v = self.warp_combine(res, false);
        Ok(v)
    }

    /// The whole CTA sums `body(k)` for k in 0..n: each thread takes k = tid, tid + 256, ...
    /// with 8 independent loads in flight per round, the warps reduce by shuffles, and their
    /// partial sums meet in `partials` (8 f32 of scratch). Every thread gets the total.
    fn cta_sum(&mut self, n: i64, partials: &View, body: &mut StepFn) -> Result<String, String> {
        const UNROLL: i64 = 8;
        let t = THREADS as i64;
        let (kk, acc, res) = (self.fresh(), self.fresh(), self.fresh());
        let nn = self.idx(n);
        let step = self.idx(t * UNROLL);
        let zero = self.f32c(0.0);
        self.open(format!(
            "{res} = scf.for {kk} = %tid to {nn} step {step} iter_args({acc} = {zero}) -> (f32) {{"
        ));
        let k0 = self.op(format!("arith.index_cast {kk} : index to i64"));
        let nc = self.i64c(n);
        let last = self.i64c(n - 1);
        let mut vals = Vec::new();
        for j in 0..UNROLL {
            let dj = self.i64c(t * j);
            let k = self.op(format!("arith.addi {k0}, {dj} : i64"));
            let ok = self.op(format!("arith.cmpi slt, {k}, {nc} : i64"));
            let kc = self.op(format!("arith.minsi {k}, {last} : i64"));
            let v = body(self, &kc, &zero)?;
            vals.push((ok, v));
        }
        let mut sum = acc.clone();
        for (ok, v) in vals {
            let v = self.op(format!("arith.select {ok}, {v}, {zero} : f32"));
            sum = self.op(format!("arith.addf {sum}, {v} : f32"));
        }
        self.line(format!("scf.yield {sum} : f32"));
        self.close("}");
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

    /// Combines every lane's `v` across the warp (sum, or max) by butterfly shuffles: every
    /// lane gets the result.
    fn warp_combine(&mut self, mut v: String, max: bool) -> String {
        for off in [16, 8, 4, 2, 1] {
            let o = self.op(format!("arith.constant {off} : i32"));
            let other = self.op(format!(
                "nvvm.shfl.sync bfly %full_mask, {v}, {o}, %clamp31 : f32 -> f32"
            ));
            v = if max {
                self.op(format!("arith.maximumf {v}, {other} : f32"))
            } else {
                self.op(format!("arith.addf {v}, {other} : f32"))
            };
        }
        v
    }

    /// A store by lane 0 of each warp (after a [`Gen::lane_reduce`]).
    fn store_lane0(&mut self, view: &View, idx: &[String], v: &str) -> Result<(), String> {
        self.open("scf.if %lane0 {");
        self.store(view, idx, v)?;
        self.close("}");
        Ok(())
    }

    fn exp(&mut self, x: &str) -> String {
        let l2e = self.f32c(std::f64::consts::LOG2_E);
        let y = self.op(format!("arith.mulf {x}, {l2e} : f32"));
        self.op(format!(
            "llvm.inline_asm \"ex2.approx.f32 $0, $1;\", \"=f,f\" {y} : (f32) -> f32"
        ))
    }

    fn sqrt(&mut self, x: &str) -> String {
        self.op(format!(
            "llvm.inline_asm \"sqrt.rn.f32 $0, $1;\", \"=f,f\" {x} : (f32) -> f32"
        ))
    }

    /// cos and sin of an f64 angle >= 0: reduction by multiples of pi/2 (in two parts), then
    /// Taylor series on [-pi/4, pi/4] (error below 1e-16).
    fn cos_sin(&mut self, x: &str) -> (String, String) {
        let two_over_pi = self.f64c(std::f64::consts::FRAC_2_PI);
        let half = self.f64c(0.5);
        let t = self.op(format!("arith.mulf {x}, {two_over_pi} : f64"));
        let t = self.op(format!("arith.addf {t}, {half} : f64"));
        let k = self.op(format!("arith.fptosi {t} : f64 to i64"));
        let kf = self.op(format!("arith.sitofp {k} : i64 to f64"));
        let p1 = self.f64c(std::f64::consts::FRAC_PI_2);
        let p2 = self.f64c(6.123_233_995_736_766e-17);
        let a = self.op(format!("arith.mulf {kf}, {p1} : f64"));
        let r = self.op(format!("arith.subf {x}, {a} : f64"));
        let b = self.op(format!("arith.mulf {kf}, {p2} : f64"));
        let r = self.op(format!("arith.subf {r}, {b} : f64"));
        let r2 = self.op(format!("arith.mulf {r}, {r} : f64"));
        // Horner on r^2: cos = sum (-1)^n r^2n/(2n)!, sin = r * sum (-1)^n r^2n/(2n+1)!.
        let series = |g: &mut Gen, odd: bool| {
            let mut acc = g.f64c(0.0);
            for n in (0..10).rev() {
                let m = if odd { 2 * n + 1 } else { 2 * n };
                let f: f64 = (1..=m).map(|i| i as f64).product();
                let c = g.f64c(if n % 2 == 0 { 1.0 } else { -1.0 } / f);
                let t = g.op(format!("arith.mulf {acc}, {r2} : f64"));
                acc = g.op(format!("arith.addf {t}, {c} : f64"));
            }
            acc
        };
        let c = series(self, false);
        let s0 = series(self, true);
        let s = self.op(format!("arith.mulf {s0}, {r} : f64"));
        // Quadrant k mod 4: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c).
        let three = self.i64c(3);
        let q = self.op(format!("arith.andi {k}, {three} : i64"));
        let one = self.i64c(1);
        let two = self.i64c(2);
        let swap = self.op(format!("arith.andi {q}, {one} : i64"));
        let zero = self.i64c(0);
        let swap = self.op(format!("arith.cmpi ne, {swap}, {zero} : i64"));
        let cos0 = self.op(format!("arith.select {swap}, {s}, {c} : f64"));
        let sin0 = self.op(format!("arith.select {swap}, {c}, {s} : f64"));
        // cos is negated in quadrants 1 and 2, sin in 2 and 3.
        let q12a = self.op(format!("arith.cmpi eq, {q}, {one} : i64"));
        let q12b = self.op(format!("arith.cmpi eq, {q}, {two} : i64"));
        let q12 = self.op(format!("arith.ori {q12a}, {q12b} : i1"));
        let q23 = self.op(format!("arith.cmpi sge, {q}, {two} : i64"));
        let ncos = self.op(format!("arith.negf {cos0} : f64"));
        let nsin = self.op(format!("arith.negf {sin0} : f64"));
        let cos = self.op(format!("arith.select {q12}, {ncos}, {cos0} : f64"));
        let sin = self.op(format!("arith.select {q23}, {nsin}, {sin0} : f64"));
        (cos, sin)
    }
}

/// Per task: the views of every value it touches and scratch placement.
struct TaskCx<'a> {
    body: &'a Body,
    views: HashMap<ValueId, View>,
    scratch_used: u64,
}

impl TaskCx<'_> {
    fn scratch(&mut self, g: &mut Gen, shape: &[i64], elem: ElemType) -> View {
        let compute = if elem.is_float() {
            ElemType::F32
        } else {
            ElemType::I64
        };
        let bytes = shape.iter().product::<i64>().max(1) as u64 * compute.bytes() as u64;
        let offset = g.i64c(self.scratch_used as i64);
        self.scratch_used += bytes.div_ceil(16) * 16;
        View {
            base_aligned: true,
            base: "%scr".into(),
            offset,
            shape: shape.to_vec(),
            strides: row_major(shape),
            elem: compute,
        }
    }

    fn view(&self, v: ValueId) -> Result<&View, String> {
        self.views
            .get(&v)
            .ok_or_else(|| format!("internal error: {v} has no place in the kernel"))
    }
}

fn shape_of(body: &Body, v: ValueId) -> Vec<i64> {
    body.ty(v)
        .as_tensor()
        .map(|t| t.shape.clone())
        .unwrap_or_default()
}

fn elem_of(body: &Body, v: ValueId) -> ElemType {
    body.ty(v).as_tensor().map_or(ElemType::F32, |t| t.elem)
}

/// The indices of an operand of shape `s` that a result index `o` (of `out` shape) reads
/// under numpy broadcasting.
fn broadcast_idx(g: &mut Gen, o: &[String], out: &[i64], s: &[i64]) -> Vec<String> {
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
fn flatten(g: &mut Gen, idx: &[String], shape: &[i64]) -> String {
    let st = row_major(shape);
    let mut acc = g.i64c(0);
    for (i, s) in idx.iter().zip(st) {
        let c = g.i64c(s as i64);
        let t = g.op(format!("arith.muli {i}, {c} : i64"));
        acc = g.op(format!("arith.addi {acc}, {t} : i64"));
    }
    acc
}

fn unflatten(g: &mut Gen, flat: &str, shape: &[i64]) -> Vec<String> {
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

fn scalar(g: &mut Gen, name: &str, a: &[String], float: bool) -> Result<String, String> {
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
fn emit_op(g: &mut Gen, cx: &mut TaskCx, op: OpId, need: &[RBox]) -> Result<(), String> {
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
    let res = cx.scratch(g, &out_shape, out_elem);
    match name {
        "tg.cast" => {
            for b in need {
                g.for_box(b, &mut |g, o| {
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
        }
        _ if elementwise => {
            for b in need {
                g.for_box(b, &mut |g, o| {
                    let mut args = Vec::new();
                    for v in &ins {
                        let i = broadcast_idx(g, o, &out_shape, &v.shape);
                        args.push(g.load(v, &i)?);
                    }
                    let y = scalar(g, name, &args, float_out)?;
                    g.store(&res, o, &y)
                })?;
            }
        }
        "tg.reshape" => {
            for b in need {
                g.for_box(b, &mut |g, o| {
                    let f = flatten(g, o, &out_shape);
                    let i = unflatten(g, &f, &ins[0].shape);
                    let x = g.load(&ins[0], &i)?;
                    g.store(&res, o, &x)
                })?;
            }
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
            for b in need {
                g.for_box(b, &mut |g, o| {
                    let mut i = vec![String::new(); o.len()];
                    for (k, &p) in perm.iter().enumerate() {
                        i[p] = o[k].clone();
                    }
                    let x = g.load(&ins[0], &i)?;
                    g.store(&res, o, &x)
                })?;
            }
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
            let aligned = |v: &View| v.base == "%scr" || v.base_aligned;
            let vectorised = tb
                && kdim % 8 == 0
                && w.elem == ElemType::BF16
                && w.strides == [kdim as u64, 1]
                && a.strides.last() == Some(&1)
                && matches!(a.elem, ElemType::F32 | ElemType::BF16)
                && aligned(w)
                && aligned(a);
            if vectorised {
                for b in need {
                    g.for_box_warp(b, &mut |g, o| {
                        let n = o.last().unwrap().clone();
                        let z = g.i64c(0);
                        let mut ai: Vec<String> = o[..a.shape.len() - 1].to_vec();
                        ai.push(z.clone());
                        let row_a = g.ptr(a, &ai);
                        let row_w = g.ptr(w, &[n, z]);
                        let acc = g.lane_dot8(&row_w, &row_a, a.elem, kdim)?;
                        g.store_lane0(&res, o, &acc)
                    })?;
                }
                cx.views.insert(r, res);
                return Ok(());
            }
            for b in need {
                g.for_box_warp(b, &mut |g, o| {
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
            let partials = cx.scratch(g, &[(THREADS / 32) as i64], ElemType::F32);
            // Phase 1: 1/rms per row, the whole CTA on each row in turn (a decode step has
            // one row, or one per head).
            let all_rows = g.const_box(&full_box(&rows));
            g.for_box_by(&all_rows, "%c0_idx", "%c1_idx", &mut |g, ri| {
                let rs = row_major(&x.shape[axis..]);
                let xs = x.shape[axis..].to_vec();
                let sum = g.cta_sum(cols, &partials, &mut |g, k, _| {
                    let mut i: Vec<String> = ri.to_vec();
                    i.extend(unflatten_with(g, k, &xs, &rs));
                    let v = g.load(x, &i)?;
                    Ok(g.op(format!("arith.mulf {v}, {v} : f32")))
                })?;
                let nf = g.f32c(cols as f64);
                let mean = g.op(format!("arith.divf {sum}, {nf} : f32"));
                let e = g.f32c(eps);
                let me = g.op(format!("arith.addf {mean}, {e} : f32"));
                let s = g.sqrt(&me);
                let one = g.f32c(1.0);
                let inv = g.op(format!("arith.divf {one}, {s} : f32"));
                g.open("scf.if %is_t0 {");
                g.store(&stats, ri, &inv)?;
                g.close("}");
                Ok(())
            })?;
            g.barrier();
            for b in need {
                g.for_box(b, &mut |g, o| {
                    let v = g.load(x, o)?;
                    let inv = g.load(&stats, &o[..axis])?;
                    let wi = broadcast_idx(g, o, &out_shape, &ins[1].shape);
                    let w = g.load(&ins[1], &wi)?;
                    let t = g.op(format!("arith.mulf {v}, {inv} : f32"));
                    let y = g.op(format!("arith.mulf {t}, {w} : f32"));
                    g.store(&res, o, &y)
                })?;
            }
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
            for b in need {
                g.for_box(b, &mut |g, o| {
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
            }
            let _ = dl;
        }
        "tg.rope_cos_sin" => {
            let inv = rope_inv_freq(&d.attrs)?;
            let half = inv.len() as i64;
            let res2 = cx.scratch(g, &out_shape, out_elem);
            let pos = &ins[0];
            // Both results over the union of what is needed of either.
            for b in need {
                g.for_box(b, &mut |g, o| {
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
            }
            let _ = half;
            cx.views.insert(d.results[1], res2);
        }
        "tg.gather" => {
            let axis = int_attr("axis").unwrap_or(0) as usize;
            let (t, ix) = (&ins[0], &ins[1]);
            let ir = ix.shape.len();
            for b in need {
                g.for_box(b, &mut |g, o| {
                    // out = t[..axis] + idx dims + t[axis+1..]
                    let row = g.load(ix, &o[axis..axis + ir])?;
                    let mut i: Vec<String> = o[..axis].to_vec();
                    i.push(row);
                    i.extend(o[axis + ir..].iter().cloned());
                    let x = g.load(t, &i)?;
                    g.store(&res, o, &x)
                })?;
            }
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
            let partials = cx.scratch(g, &[(THREADS / 32) as i64, 2], ElemType::F32);
            let n = x.shape[axis];
            const UNROLL: i64 = 8;
            let t = THREADS as i64;
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
        "tg.attention" => {
            let (q, kc, vc) = (&ins[0], &ins[1], &ins[2]);
            if q.shape.len() != 2 || kc.shape.len() != 3 {
                return Err(
                    "the GPU lowering handles decode attention of [heads, dim] only".into(),
                );
            }
            let (heads, dim) = (q.shape[0], q.shape[1]);
            let (ctx, kvh) = (kc.shape[0], kc.shape[1]);
            let group = (heads / kvh.max(1)).max(1);
            let scale = d.attrs.get("scale").and_then(Attr::as_f64).unwrap_or(1.0);
            // The heads needed: the hull of the needed boxes.
            let mut h0 = need[0][0].0.clone();
            let mut h1 = need[0][0].1.clone();
            for b in &need[1..] {
                h0 = g.op(format!("arith.minsi {h0}, {} : i64", b[0].0));
                h1 = g.op(format!("arith.maxsi {h1}, {} : i64", b[0].1));
            }
            let scores = cx.scratch(g, &[heads, ctx], ElemType::F32);
            let stats = cx.scratch(g, &[heads, 2], ElemType::F32);
            let pos = g.load(&ins[3], &[])?;
            // Scores for positions 0..=pos.
            let c0 = g.i64c(0);
            // Positions 0..=pos only (not the whole cache): the box's bound is the step's.
            let one = g.i64c(1);
            let cctx = g.i64c(ctx);
            let upto = g.op(format!("arith.addi {pos}, {one} : i64"));
            let upto = g.op(format!("arith.minsi {upto}, {cctx} : i64"));
            g.for_box_warp(&vec![(h0.clone(), h1.clone()), (c0, upto)], &mut |g, o| {
                let ok = g.op(format!("arith.cmpi sle, {}, {pos} : i64", o[1]));
                g.open(format!("scf.if {ok} {{"));
                let gr = g.i64c(group);
                let kvi = g.op(format!("arith.divsi {}, {gr} : i64", o[0]));
                let zero = g.f32c(0.0);
                let dn = g.i64c(dim);
                let dot = g.lane_reduce(&dn, &zero, false, &mut |g, k, acc| {
                    let a = g.load(q, &[o[0].clone(), k.to_string()])?;
                    let b = g.load(kc, &[o[1].clone(), kvi.clone(), k.to_string()])?;
                    let p = g.op(format!("arith.mulf {a}, {b} : f32"));
                    Ok(g.op(format!("arith.addf {acc}, {p} : f32")))
                })?;
                let sc = g.f32c(scale);
                let s = g.op(format!("arith.mulf {dot}, {sc} : f32"));
                g.store_lane0(&scores, &[o[0].clone(), o[1].clone()], &s)?;
                g.close("}");
                Ok(())
            })?;
            g.barrier();
            // Per head: max and sum of exp.
            g.for_box_warp(&vec![(h0.clone(), h1.clone())], &mut |g, o| {
                let one = g.i64c(1);
                let n = g.op(format!("arith.addi {pos}, {one} : i64"));
                let ninf = g.f32c(f64::NEG_INFINITY);
                let m = g.lane_reduce(&n, &ninf, true, &mut |g, p, acc| {
                    let s = g.load(&scores, &[o[0].clone(), p.to_string()])?;
                    Ok(g.op(format!("arith.maximumf {acc}, {s} : f32")))
                })?;
                let zero = g.f32c(0.0);
                let l = g.lane_reduce(&n, &zero, false, &mut |g, p, acc| {
                    let s = g.load(&scores, &[o[0].clone(), p.to_string()])?;
                    let t = g.op(format!("arith.subf {s}, {m} : f32"));
                    let e = g.exp(&t);
                    Ok(g.op(format!("arith.addf {acc}, {e} : f32")))
                })?;
                let z = g.i64c(0);
                g.store_lane0(&stats, &[o[0].clone(), z], &m)?;
                g.store_lane0(&stats, &[o[0].clone(), one.clone()], &l)
            })?;
            g.barrier();
            for b in need {
                g.for_box_warp(b, &mut |g, o| {
                    let hl = o[0].clone();
                    let z = g.i64c(0);
                    let one = g.i64c(1);
                    let m = g.load(&stats, &[hl.clone(), z])?;
                    let l = g.load(&stats, &[hl.clone(), one.clone()])?;
                    let gr = g.i64c(group);
                    let kvi = g.op(format!("arith.divsi {}, {gr} : i64", o[0]));
                    let n = g.op(format!("arith.addi {pos}, {one} : i64"));
                    let zero = g.f32c(0.0);
                    let acc = g.lane_reduce(&n, &zero, false, &mut |g, p, acc| {
                        let s = g.load(&scores, &[hl.clone(), p.to_string()])?;
                        let t = g.op(format!("arith.subf {s}, {m} : f32"));
                        let e = g.exp(&t);
                        let v = g.load(vc, &[p.to_string(), kvi.clone(), o[1].clone()])?;
                        let ev = g.op(format!("arith.mulf {e}, {v} : f32"));
                        Ok(g.op(format!("arith.addf {acc}, {ev} : f32")))
                    })?;
                    let y = g.op(format!("arith.divf {acc}, {l} : f32"));
                    g.store_lane0(&res, o, &y)
                })?;
            }
        }
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
                g.for_box_warp(&rows, &mut |g, o| {
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
                g.for_box_warp(&rows, &mut |g, o| {
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
            for b in need {
                g.for_box_warp(b, &mut |g, o| {
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
        }
        "tg.constant" => {
            let value = d.attrs.get("value").and_then(Attr::as_dense);
            let Some(dense) = value.filter(|x| x.splat || x.values.len() == 1) else {
                return Err("the GPU lowering handles splat constants inside groups only".into());
            };
            let v = dense.get_f64(0);
            for b in need {
                g.for_box(b, &mut |g, o| {
                    let c = if float_out {
                        g.f32c(v)
                    } else {
                        g.i64c(v as i64)
                    };
                    g.store(&res, o, &c)
                })?;
            }
        }
        _ => return Err(format!("the GPU lowering has no code for '{name}' yet")),
    }
    cx.views.insert(r, res);
    Ok(())
}

/// Multi-index of flat `k` (an i64 SSA value) over `shape` with strides `st`.
fn unflatten_with(g: &mut Gen, k: &str, shape: &[i64], st: &[u64]) -> Vec<String> {
    (0..shape.len())
        .map(|i| {
            let d = g.i64c(st[i] as i64);
            let q = g.op(format!("arith.divsi {k}, {d} : i64"));
            let e = g.i64c(shape[i].max(1));
            g.op(format!("arith.remsi {q}, {e} : i64"))
        })
        .collect()
}

/// A group's structure, independent of which layer it is: its operand types, and per op
/// its name, attributes, operands (numbered locally) and result types. Tasks of groups with
/// one structure, one result and one shape of regions share their code.
fn group_signature(body: &Body, group: OpId) -> String {
    let block = body.entry_block(group, 0).expect("a group has a body");
    let mut local: HashMap<ValueId, usize> = HashMap::new();
    let mut sig = String::new();
    for &a in &body.blocks[block].args {
        local.insert(a, local.len());
        let _ = write!(sig, "{};", body.ty(a));
    }
    for &o in &body.blocks[block].ops {
        let d = &body.ops[o];
        let _ = write!(sig, "|{}", d.name);
        for (k, v) in d.attrs.iter() {
            let _ = write!(sig, " {k}={v}");
        }
        for v in &d.operands {
            let _ = write!(sig, " %{}", local.get(v).copied().unwrap_or(usize::MAX));
        }
        for &r in &d.results {
            local.insert(r, local.len());
            let _ = write!(sig, " :{}", body.ty(r));
        }
    }
    sig
}

/// Everything a task's code needs that varies between tasks sharing it: the byte offsets of
/// the tensors it reads and writes, and the boxes it computes (in the order the code reads
/// them), with the key of its code.
struct TaskPlan {
    key: String,
    offsets: Vec<u64>,
    boxes: Vec<i64>,
}

/// The slice of a task and the order of its parameters.
fn plan_task(
    body: &Body,
    steps: &[OpId],
    signatures: &[String],
    placed: &HashMap<ValueId, (usize, u64)>,
    task: &mkc_ir::tasks::Task,
) -> Result<TaskPlan, String> {
    let group = steps[task.group];
    let sl = slice(body, group, task.output, &task.tile)?;
    let block = body.entry_block(group, 0).expect("a group has a body");
    let operands = &body.ops[group].operands;
    let results = &body.ops[group].results;
    let ops = &body.blocks[block].ops;
    let y = body.ops[*ops.last().expect("a yield")].operands[task.output];
    let in_place = result_in_place(body, group, task.output);
    let mut key = format!("{}#out{}#", signatures[task.group], task.output);
    let mut offsets = Vec::new();
    let place = |v: ValueId| {
        placed
            .get(&v)
            .copied()
            .ok_or_else(|| format!("internal error: {v} has no place"))
    };
    for &i in &sl.args {
        let (b, o) = place(operands[i])?;
        let _ = write!(key, "a{i}@{b},");
        offsets.push(o);
    }
    for &(v, j) in &sl.loaded {
        let (b, o) = place(results[j])?;
        let _ = write!(
            key,
            "l{}:{j}@{b},",
            ops.iter()
                .position(|&x| body.def_op(v) == Some(x))
                .unwrap_or(0)
        );
        offsets.push(o);
    }
    let (b, o) = place(results[task.output])?;
    let _ = write!(key, "out@{b}#");
    offsets.push(o);
    let mut boxes = Vec::new();
    let mut push_region = |key: &mut String, r: &Region| {
        let _ = write!(key, "{},", r.len());
        for b in r {
            for &(lo, hi) in b {
                boxes.extend([lo, hi]);
            }
        }
    };
    for &op in &sl.ops {
        if in_place && body.ops[op].results.contains(&y) {
            continue;
        }
        let _ = write!(key, "op{},", ops.iter().position(|&x| x == op).unwrap_or(0));
        push_region(&mut key, &merged_need(body, &sl, op));
    }
    push_region(&mut key, &task.tile);
    Ok(TaskPlan {
        key,
        offsets,
        boxes,
    })
}

fn merged_need(body: &Body, sl: &mkc_ir::tiling::Slice, op: OpId) -> Region {
    let mut need: Region = Vec::new();
    for r in &body.ops[op].results {
        for b in sl.needs.get(r).cloned().unwrap_or_default() {
            mkc_ir::tiling::add_box(&mut need, b);
        }
    }
    need
}

/// The megakernel of `body`'s scheduled task program, and its tables.
pub fn generate(body: &Body, program: &TaskProgram) -> Result<Kernel, String> {
    let schedule = program
        .schedule
        .as_ref()
        .ok_or("the task graph is not scheduled (run the 'schedule' pass)")?;
    let func = mkc_ir::dialect::builtin::first_func(body).ok_or("the module has no function")?;
    let entry = body
        .entry_block(func, 0)
        .ok_or("the function has no body")?;
    let steps: Vec<OpId> = body.blocks[entry]
        .ops
        .iter()
        .copied()
        .filter(|&o| body.ops[o].name != "func.return")
        .collect();
    let buffers: Vec<String> = program
        .graph
        .buffers
        .values()
        .map(|b| b.name.clone())
        .collect();
    // Where every argument and top-level result lives, and its strides.
    let mut placed: HashMap<ValueId, (usize, u64)> = HashMap::new();
    let mut strides: HashMap<ValueId, Vec<u64>> = HashMap::new();
    for (v, l) in program.layouts(body)? {
        placed.insert(v, (l.buffer.index(), l.offset));
        strides.insert(v, l.strides());
    }
    // Plan every task; tasks with one key share one code. (A group's structure is worked out
    // once, not per task.)
    let signatures: Vec<String> = steps
        .iter()
        .map(|&op| {
            if body.ops[op].name == "fused.group" {
                group_signature(body, op)
            } else {
                String::new()
            }
        })
        .collect();
    let mut codes: Vec<(String, mkc_ir::tasks::TaskId)> = Vec::new();
    let mut code_of: HashMap<String, usize> = HashMap::new();
    let mut plans = Vec::with_capacity(program.graph.tasks.len());
    for (t, task) in &program.graph.tasks {
        let plan = plan_task(body, &steps, &signatures, &placed, task)?;
        let c = *code_of.entry(plan.key.clone()).or_insert_with(|| {
            codes.push((plan.key.clone(), t));
            codes.len() - 1
        });
        plans.push((c, plan));
    }
    // The tables: one record per task, entries per SM queue.
    let mut tasks_words: Vec<i64> = Vec::new();
    let mut record_at = vec![0i64; program.graph.tasks.len()];
    for (t, task) in &program.graph.tasks {
        let (c, plan) = &plans[t.index()];
        record_at[t.index()] = tasks_words.len() as i64;
        tasks_words.push(*c as i64);
        tasks_words.push(task.waits.len() as i64);
        for e in &task.waits {
            tasks_words.extend([e.index() as i64, program.graph.events[*e].target as i64]);
        }
        tasks_words.push(task.signals.len() as i64);
        tasks_words.extend(task.signals.iter().map(|e| e.index() as i64));
        tasks_words.extend(plan.offsets.iter().map(|&o| o as i64));
        tasks_words.extend(&plan.boxes);
    }
    let mut entries: Vec<i64> = Vec::new();
    let mut queues: Vec<i64> = Vec::new();
    for q in &schedule.queues {
        queues.extend([entries.len() as i64, q.len() as i64]);
        entries.extend(q.iter().map(|t| record_at[t.index()]));
    }

    let mut g = Gen {
        out: String::new(),
        next: 0,
        indent: 0,
    };
    let params: Vec<String> = (0..buffers.len())
        .map(|i| format!("%b{i}: !llvm.ptr<1>"))
        .chain(
            [
                "%tasks: !llvm.ptr<1>",
                "%entries: !llvm.ptr<1>",
                "%queues: !llvm.ptr<1>",
                "%scratch: !llvm.ptr<1>",
                "%scratch_stride: i64",
                "%counters: !llvm.ptr<1>",
                "%step: i32",
                "%trace: !llvm.ptr<1>",
            ]
            .map(String::from),
        )
        .collect();
    g.line("module attributes {gpu.container_module} {");
    g.indent += 1;
    g.open("gpu.module @mkc {");
    g.open(format!("gpu.func @step({}) kernel {{", params.join(", ")));
    g.line("%sm = gpu.block_id x");
    g.line("%tid = gpu.thread_id x");
    g.line("%nthreads = gpu.block_dim x");
    g.line("%sm64 = arith.index_cast %sm : index to i64");
    g.line("%scr_off = arith.muli %sm64, %scratch_stride : i64");
    g.line(
        "%scr = llvm.getelementptr %scratch[%scr_off] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8",
    );
    g.line("%c0_idx = arith.constant 0 : index");
    g.line("%c1_idx = arith.constant 1 : index");
    g.line("%is_t0 = arith.cmpi eq, %tid, %c0_idx : index");
    g.line("%no_trace = llvm.mlir.zero : !llvm.ptr<1>");
    g.line("%has_trace = llvm.icmp \"ne\" %trace, %no_trace : !llvm.ptr<1>");
    g.line("%tracing = arith.andi %has_trace, %is_t0 : i1");
    g.line("%c32_idx = arith.constant 32 : index");
    g.line("%warp = arith.divui %tid, %c32_idx : index");
    g.line("%lane = arith.remui %tid, %c32_idx : index");
    g.line("%nwarps = arith.divui %nthreads, %c32_idx : index");
    g.line("%lane0 = arith.cmpi eq, %lane, %c0_idx : index");
    g.line("%full_mask = arith.constant -1 : i32");
    g.line("%clamp31 = arith.constant 31 : i32");
    let word = |g: &mut Gen, base: &str, i: &str| -> String {
        let eight = g.i64c(8);
        let off = g.op(format!("arith.muli {i}, {eight} : i64"));
        let p = g.op(format!(
            "llvm.getelementptr {base}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<1> -> i64"))
    };
    let two = g.i64c(2);
    let qi = g.op(format!("arith.muli %sm64, {two} : i64"));
    let first = word(&mut g, "%queues", &qi);
    let one = g.i64c(1);
    let qi1 = g.op(format!("arith.addi {qi}, {one} : i64"));
    let count = word(&mut g, "%queues", &qi1);
    let lo = g.op(format!("arith.index_cast {first} : i64 to index"));
    let n = g.op(format!("arith.index_cast {count} : i64 to index"));
    let hi = g.op(format!("arith.addi {lo}, {n} : index"));
    let e = g.fresh();
    g.open(format!("scf.for {e} = {lo} to {hi} step %c1_idx {{"));
    let e64 = g.op(format!("arith.index_cast {e} : index to i64"));
    // The profile: with a trace buffer, thread 0 stamps (globaltimer, ns) each entry's start,
    // the end of its wait and its end: three u64 per queue entry.
    let stamp = |g: &mut Gen, k: i64| {
        g.open("scf.if %tracing {");
        let t = g.op("nvvm.read.ptx.sreg.globaltimer : i64");
        let three = g.i64c(3);
        let base = g.op(format!("arith.muli {e64}, {three} : i64"));
        let kk = g.i64c(k);
        let at = g.op(format!("arith.addi {base}, {kk} : i64"));
        let eight = g.i64c(8);
        let b = g.op(format!("arith.muli {at}, {eight} : i64"));
        let p = g.op(format!(
            "llvm.getelementptr %trace[{b}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        g.line(format!("llvm.store {t}, {p} : i64, !llvm.ptr<1>"));
        g.close("}");
    };
    stamp(&mut g, 0);
    let rec = word(&mut g, "%entries", &e64);
    let eight = g.i64c(8);
    let rec_b = g.op(format!("arith.muli {rec}, {eight} : i64"));
    let recp = g.op(format!(
        "llvm.getelementptr %tasks[{rec_b}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
    ));
    let z = g.i64c(0);
    let code = word(&mut g, &recp, &z);
    let nw = word(&mut g, &recp, &one);
    let four = g.i64c(4);
    // Wait: thread 0 spins on each counter, then hands the acquire on to the CTA.
    g.open("scf.if %is_t0 {");
    let nwi = g.op(format!("arith.index_cast {nw} : i64 to index"));
    let w = g.fresh();
    g.open(format!("scf.for {w} = %c0_idx to {nwi} step %c1_idx {{"));
    let w64 = g.op(format!("arith.index_cast {w} : index to i64"));
    let w2 = g.op(format!("arith.muli {w64}, {two} : i64"));
    let wi = g.op(format!("arith.addi {w2}, {two} : i64"));
    let ev = word(&mut g, &recp, &wi);
    let wi1 = g.op(format!("arith.addi {wi}, {one} : i64"));
    let target = word(&mut g, &recp, &wi1);
    let t32 = g.op(format!("arith.trunci {target} : i64 to i32"));
    let want = g.op(format!("arith.muli {t32}, %step : i32"));
    let evb = g.op(format!("arith.muli {ev}, {four} : i64"));
    let cp = g.op(format!(
        "llvm.getelementptr %counters[{evb}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
    ));
    g.open("scf.while : () -> () {");
    let v = g.op(format!(
        "llvm.load {cp} atomic syncscope(\"device\") acquire {{alignment = 4 : i64}} : !llvm.ptr<1> -> i32"
    ));
    let lt = g.op(format!("arith.cmpi ult, {v}, {want} : i32"));
    g.line(format!("scf.condition({lt})"));
    g.close("} do {");
    g.indent += 1;
    let ns = g.op("arith.constant 32 : i32");
    g.line(format!("nvvm.nanosleep {ns}"));
    g.line("scf.yield");
    g.close("}");
    g.close("}");
    g.line("llvm.fence syncscope(\"device\") acquire");
    g.close("}");
    g.barrier();
    stamp(&mut g, 1);
    // Where the signals and the parameters start.
    let w2n = g.op(format!("arith.muli {nw}, {two} : i64"));
    let sat = g.op(format!("arith.addi {w2n}, {two} : i64"));
    let ns_count = word(&mut g, &recp, &sat);
    let sat1 = g.op(format!("arith.addi {sat}, {one} : i64"));
    let pat = g.op(format!("arith.addi {sat1}, {ns_count} : i64"));
    let pb = g.op(format!("arith.muli {pat}, {eight} : i64"));
    let params_p = g.op(format!(
        "llvm.getelementptr {recp}[{pb}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
    ));
    let code_idx = g.op(format!("arith.index_cast {code} : i64 to index"));
    g.open(format!("scf.index_switch {code_idx}"));
    let mut scratch_max = 0u64;
    for (c, (_, example)) in codes.iter().enumerate() {
        let task = &program.graph.tasks[*example];
        g.open(format!("case {c} {{"));
        g.line(format!(
            "// code {c}: {} (group {} result {}), like {example}",
            task.kind, task.group, task.output
        ));
        let used = emit_code(
            &mut g, body, &steps, &placed, &strides, &buffers, task, &params_p,
        )
        .map_err(|e| format!("{example} ({}): {e}", task.kind))?;
        scratch_max = scratch_max.max(used);
        g.line("scf.yield");
        g.close("}");
    }
    g.open("default {");
    g.line("scf.yield");
    g.close("}");
    g.barrier();
    stamp(&mut g, 2);
    // Signal: fence, then one relaxed add per counter (a release pattern).
    g.open("scf.if %is_t0 {");
    g.line("llvm.fence syncscope(\"device\") release");
    let nsi = g.op(format!("arith.index_cast {ns_count} : i64 to index"));
    let s_ = g.fresh();
    g.open(format!("scf.for {s_} = %c0_idx to {nsi} step %c1_idx {{"));
    let s64 = g.op(format!("arith.index_cast {s_} : index to i64"));
    let si = g.op(format!("arith.addi {sat1}, {s64} : i64"));
    let sev = word(&mut g, &recp, &si);
    let sevb = g.op(format!("arith.muli {sev}, {four} : i64"));
    let sp = g.op(format!(
        "llvm.getelementptr %counters[{sevb}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
    ));
    let one32 = g.op("arith.constant 1 : i32");
    g.op(format!(
        "llvm.atomicrmw add {sp}, {one32} monotonic : !llvm.ptr<1>, i32"
    ));
    g.close("}");
    g.close("}");
    g.close("}");
    g.line("gpu.return");
    g.close("}");
    g.close("}");
    g.indent -= 1;
    g.line("}");
    let mut mlir = String::new();
    let _ = writeln!(
        mlir,
        "// mkc megakernel: {} tasks on {} SMs, {} events, {} codes",
        program.graph.tasks.len(),
        schedule.queues.len(),
        program.graph.events.len(),
        codes.len()
    );
    mlir.push_str(&g.out);
    Ok(Kernel {
        mlir,
        name: "step".into(),
        threads: THREADS,
        ctas: schedule.queues.len(),
        scratch_per_cta: scratch_max.max(16),
        codes: codes.len(),
        tasks: tasks_words,
        entries,
        queues,
    })
}

/// The code of the tasks like `task`: its slice, op by op, over the boxes and at the offsets
/// the task's parameters give. Returns the scratch bytes it uses.
#[allow(clippy::too_many_arguments)]
fn emit_code(
    g: &mut Gen,
    body: &Body,
    steps: &[OpId],
    placed: &HashMap<ValueId, (usize, u64)>,
    strides: &HashMap<ValueId, Vec<u64>>,
    buffers: &[String],
    task: &mkc_ir::tasks::Task,
    params: &str,
) -> Result<u64, String> {
    let sl = slice(body, steps[task.group], task.output, &task.tile)?;
    let group = steps[task.group];
    let block = body.entry_block(group, 0).expect("a group has a body");
    let bargs = &body.blocks[block].args;
    let operands = &body.ops[group].operands;
    let results = &body.ops[group].results;
    let ops = &body.blocks[block].ops;
    let y = body.ops[*ops.last().expect("a yield")].operands[task.output];
    let in_place = result_in_place(body, group, task.output);
    let mut next = 0i64;
    let mut param = |g: &mut Gen| {
        let i = g.i64c(next);
        next += 1;
        let eight = g.i64c(8);
        let off = g.op(format!("arith.muli {i}, {eight} : i64"));
        let p = g.op(format!(
            "llvm.getelementptr {params}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<1> -> i64"))
    };
    let view_of = |g: &mut Gen, v: ValueId, param: &mut dyn FnMut(&mut Gen) -> String| {
        let (b, _) = placed[&v];
        let t = body.ty(v).as_tensor().expect("placed values are tensors");
        View {
            base_aligned: buffers[b] != "inputs",
            base: format!("%b{b}"),
            offset: param(g),
            shape: t.shape.clone(),
            strides: strides[&v].clone(),
            elem: t.elem,
        }
    };
    let mut cx = TaskCx {
        body,
        views: HashMap::new(),
        scratch_used: 0,
    };
    for &i in &sl.args {
        let v = view_of(g, operands[i], &mut param);
        cx.views.insert(bargs[i], v);
    }
    for &(v, j) in &sl.loaded {
        let view = view_of(g, results[j], &mut param);
        cx.views.insert(v, view);
    }
    let out = view_of(g, results[task.output], &mut param);
    let mut read_region = |g: &mut Gen, r: &Region| -> Vec<RBox> {
        r.iter()
            .map(|b| b.iter().map(|_| (param(g), param(g))).collect())
            .collect()
    };
    for &op in &sl.ops {
        if in_place && body.ops[op].results.contains(&y) {
            continue;
        }
        let need = read_region(g, &merged_need(body, &sl, op));
        emit_op(g, &mut cx, op, &need).map_err(|e| format!("'{}': {e}", body.ops[op].name))?;
        g.barrier();
    }
    let tile = read_region(g, &task.tile);
    // Write the tile.
    let round_bf16 = buffers[placed[&results[task.output]].0] == "kv" && out.elem == ElemType::F32;
    if in_place {
        let ka = body.def_op(y).expect("in place results are kv_append");
        let new = cx.view(body.ops[ka].operands[1])?.clone();
        let pos = cx.view(body.ops[ka].operands[2])?.clone();
        let p = g.load(&pos, &[])?;
        for b in &tile {
            g.for_box(&b[1..].to_vec(), &mut |g, o| {
                let x = g.load(&new, o)?;
                let x = if round_bf16 { round(g, &x) } else { x };
                let mut i = vec![p.clone()];
                i.extend(o.iter().cloned());
                g.store(&out, &i, &x)
            })?;
        }
    } else {
        let src = cx.view(y)?.clone();
        for b in &tile {
            g.for_box(b, &mut |g, o| {
                let x = g.load(&src, o)?;
                let x = if round_bf16 { round(g, &x) } else { x };
                g.store(&out, o, &x)
            })?;
        }
    }
    Ok(cx.scratch_used)
}

/// f32 -> bf16 -> f32 (what the simulator stores in an f32 cache).
fn round(g: &mut Gen, x: &str) -> String {
    let b = g.op(format!("arith.truncf {x} : f32 to bf16"));
    g.op(format!("arith.extf {b} : bf16 to f32"))
}
