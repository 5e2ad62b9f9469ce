//! The megakernel of a scheduled task program, as MLIR text (gpu, scf, arith, llvm, nvvm
//! dialects) that `mkc_lowering::gpu_module_to_ptx` lowers to PTX.
//!
//! One `gpu.func @step`, launched with one CTA per SM: the CTA walks its SM's queue of the
//! task table, and for each task:
//!
//! 0. its record (code, prefetch spans, waits, signals, parameters) is already in shared
//!    memory: every thread copied a word of it from the table while the previous task ran
//!    (two record buffers), so no task reads the table at global-memory latency;
//! 1. the weights its record names are asked into L2 (`cp.async.bulk.prefetch`: the task's
//!    own, or the next task's, `KernelOptions::prefetch_next`); the task's code (a switch
//!    on it) may copy the first weights of its first matrix-vector product into shared
//!    memory (`KernelOptions::preload`), then a thread per awaited event spins on it, all at
//!    once (acquire loads at device scope, with nanosleep), until it reaches
//!    `target * step`; a barrier
//!    (after an acquire fence with `KernelOptions::event_fences`) hands that on to the CTA;
//! 2. compute: the task's slice (the ops its tile needs, from [`mkc_ir::tiling::slice`]),
//!    op by op, each over exactly the boxes the slice needs; elementwise work a thread per
//!    element over the union of the boxes, reductions by warps (shuffles) or the whole CTA;
//!    matrix-vector products a warp per row with 16-byte weight loads, or (with a weight
//!    ring, `KernelOptions::stream_slots`) their weight rows streamed into shared memory by
//!    bulk asynchronous copies completing on mbarriers; intermediates live in shared
//!    memory (`KernelOptions::smem_scratch` bytes) and past that in the SM's scratch region
//!    of global memory (L2), and the last op stores straight to the tile's place when it
//!    computes exactly the tile;
//! 3. an in-place KV cache update writes the row of the step's position (f32 caches are
//!    stored as bf16, [`mkc_ir::dialect::task::storage_elem`]: the simulator rounds them so too);
//! 4. signal: a barrier, then thread 0 adds 1 to each of its events with a release
//!    reduction at device scope (or a release fence and relaxed adds, `event_fences`).
//!
//! Arithmetic is f32 (integers i64), weights and caches converted on load. Transcendentals use
//! PTX's `ex2.approx` and `sqrt.rn` through inline assembly (the NVVM conversion would call
//! libdevice, which a driver-only host does not have); rope angles use a range-reduced
//! polynomial in f64. docs/PERF.md measures each of these choices.

use mkc_ir::attr::Attr;
use mkc_ir::dialect::task::TaskProgram;
use mkc_ir::dialect::task::TileBox;
use mkc_ir::dialect::tg::nn::rope_inv_freq;
use mkc_ir::tiling::{full_box, group_signature, result_in_place, slice, Region};
use mkc_ir::{Body, ElemType, EntityRef, OpId, ValueId};
use std::collections::HashMap;
use std::fmt::Write;

/// How the megakernel is generated (the knobs the speed work measures; `mkc compile`'s
/// flags take their defaults from [`KernelOptions::default`]).
#[derive(Clone, Debug, PartialEq)]
pub struct KernelOptions {
    /// Threads per CTA (a multiple of 32, at most 1024).
    pub threads: u32,
    /// Bytes of each task's weights asked into L2 (`cp.async.bulk.prefetch`) before the task
    /// waits on its events, so HBM streams while the SM waits; 0 turns it off.
    pub prefetch_bytes: u64,
    /// Prefetch the next task's weights (at the start of each task) instead of the task's own.
    pub prefetch_next: bool,
    /// Slots of the shared-memory ring that matrix-vector products stream their weight rows
    /// through (bulk asynchronous copies completing on mbarriers, issued `stream_slots`
    /// chunks ahead); 0 reads weights with ordinary loads instead.
    pub stream_slots: u32,
    /// Bytes of one ring slot (a chunk: as many whole weight rows as fit).
    pub slot_bytes: u32,
    /// Registers per thread ptxas may use (`.maxnreg`); `None`: the whole register file of
    /// one CTA per SM (65536 / threads, at most 255); 0: ptxas decides (it budgets for two
    /// CTAs per SM and spills where one CTA would not need to).
    pub max_registers: Option<u32>,
    /// Weight rows a warp streams at once in a matrix-vector product (1 or 2).
    pub matvec_rows: u32,
    /// Bytes of shared memory for a task's intermediate values (a norm's output, a matrix-
    /// vector product's rows before their epilogue); values past it, and all with 0, live
    /// in a per-CTA scratch region of global memory.
    pub smem_scratch: u32,
    /// Load matrix-vector weights with an L2 evict-first policy and without allocating in
    /// L1: the weights pass through once a step, so the caches keep what is read again (the
    /// KV cache, activations, rope tables, norm weights).
    pub weights_evict_first: bool,
    /// 16-byte weight loads per lane a task issues before it waits on its events: the first
    /// blocks of each warp's first row of the task's first matrix-vector product, so they
    /// stream while the task waits (0 turns it off).
    pub preload: u32,
    /// Most 16-byte weight loads per lane a matrix-vector loop issues per iteration (1, 2,
    /// 4 or 8; fewer where K is not a multiple of 256 times it).
    pub matvec_unroll: u32,
    /// Events with explicit device-scope fences (a release fence before each signal's
    /// relaxed add, an acquire fence after the wait's acquire loads); off: the adds are
    /// release operations and the acquire loads alone order the wait.
    pub event_fences: bool,
    /// Poll a task's counters a thread each, all at once (off: thread 0 polls them in turn).
    pub parallel_waits: bool,
    /// RMS norms copy their weight into shared memory (`cp.async`) as they start, beside
    /// the sum of squares' loads (off: a global load when they normalize, after the sum).
    pub staged_norm_weights: bool,
    /// Output lanes of decode attention one warp computes (1, 2, 4 or 8): its 32 threads
    /// split the positions among them, 32 / lanes threads a lane.
    pub attention_lanes: u32,
    /// Attention parts whose tiles hold a KV head's query heads run in one pass of online
    /// softmax (K and V loaded together, [`emit_attention_online`]); off: three rounds
    /// (scores, their max and sum, the output) with barriers between.
    pub attention_online: bool,
}

impl Default for KernelOptions {
    /// The kernel `mkc compile` generates unless told otherwise (docs/PERF.md measures each
    /// choice).
    fn default() -> Self {
        KernelOptions {
            threads: 512,
            prefetch_bytes: 64 << 10,
            prefetch_next: true,
            stream_slots: 0,
            slot_bytes: 32 << 10,
            max_registers: None,
            matvec_rows: 1,
            smem_scratch: 96 << 10,
            weights_evict_first: true,
            preload: 0,
            matvec_unroll: 4,
            event_fences: false,
            parallel_waits: true,
            staged_norm_weights: true,
            attention_lanes: 2,
            attention_online: true,
        }
    }
}

/// Rows one streamed chunk holds at most (the size of the per-row sums in shared memory).
const STREAM_ROWS: i64 = 256;

/// Stands for the offset of the shared scratch in the kernel's text until it is known.
const SSCR_OFF: &str = "__SSCR_OFF__";

/// Shared memory a CTA keeps from its task scratch (for the task records and the ring's
/// bookkeeping), and from the weight ring (for those and the scratch a task needs).
const SCRATCH_RESERVE: u64 = 11 << 10;
const RING_RESERVE: u64 = 27 << 10;

/// The most bytes one prefetch instruction asks for (a table entry).
const PREFETCH_CHUNK: u64 = 16 << 10;

/// The generated kernel and what the launcher needs to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub mlir: String,
    /// The PTX target it is lowered for (the module's target's chip).
    pub chip: String,
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
    /// Bytes of dynamic shared memory each CTA needs (the weight ring, then the tasks'
    /// scratch in shared memory).
    pub dynamic_smem: u32,
    /// Matrix-vector products that stream their weights through the ring (of all codes).
    pub streamed: usize,
    /// The codes that keep intermediate values in global scratch (past the shared budget,
    /// read back from L2): (code number, task kind, bytes).
    pub global_scratch: Vec<(usize, String, u64)>,
}

/// Blocks of 256 elements a warp's matrix-vector loop loads per iteration (all loads issued
/// before any math): up to `most`, as many as divide K.
fn matvec_unroll(k: i64, most: i64) -> i64 {
    [8i64, 4, 2, 1]
        .into_iter()
        .find(|&u| u <= most && k % (256 * u) == 0)
        .unwrap_or(1)
}

/// A box whose bounds are SSA i64 values (read from the task's parameters).
type RBox = Vec<(String, String)>;

/// A box of a region's index space: extents, inner products, first and past-the-end index.
type RegionBox = (Vec<String>, Vec<String>, String, String);

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
    /// Address space of `base`: 1 global, 3 shared (scratch).
    space: u32,
}

impl View {
    /// A task's scratch (shared or global), not a value of a buffer.
    fn is_scratch(&self) -> bool {
        self.base == "%scr" || self.base == "%sscr"
    }
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
/// [`ElementFn`] told whether this is the thread's (or warp's) first element.
type PeeledFn<'a> = dyn FnMut(&mut Gen, &[String], bool) -> Result<(), String> + 'a;
/// Emits a reduction step, given the induction value and the accumulator; returns the next.
type StepFn<'a> = dyn FnMut(&mut Gen, &str, &str) -> Result<String, String> + 'a;

/// Text of one kernel under construction.
struct Gen {
    out: String,
    next: usize,
    indent: usize,
    /// Threads per CTA.
    threads: u32,
    /// The weight ring: (slots, slot bytes), when on.
    ring: Option<(u32, u32)>,
    /// Weight rows a warp streams at once in a matrix-vector product.
    matvec_rows: i64,
    /// Most blocks of 256 elements a warp's matrix-vector loop loads per iteration.
    matvec_unroll: i64,
    /// Output lanes of decode attention a warp takes (its threads split the positions).
    attention_lanes: i64,
    /// `KernelOptions::attention_online`.
    attention_online: bool,
    /// Matrix-vector products emitted as streamed.
    streamed: usize,
    /// Bytes of scratch a task may place in shared memory.
    smem_scratch: u64,
    /// Weight loads evict first from L2 and skip L1 (`%l2_evict_first` holds the policy).
    weights_evict_first: bool,
    /// `KernelOptions::staged_norm_weights`.
    staged_norm_weights: bool,
    /// 16-byte weight loads per lane issued before a task's wait (`KernelOptions::preload`).
    preload_depth: u32,
    /// The weights loaded before this task's wait, until its matrix-vector product uses them.
    preload: Option<Preload>,
    /// Codes that preload weights before their wait, and the most blocks one preloads.
    preloaded: usize,
    preload_blocks_max: usize,
}

/// Weight blocks a warp loaded before the task's wait: of its first row of the product `op`
/// (the row of its first turn of [`Gen::for_region_warp`]), 16 bytes a lane of each block
/// of 256 elements from the row's start.
struct Preload {
    op: OpId,
    blocks: usize,
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
            "llvm.getelementptr {}[{acc}] : (!llvm.ptr<{s}>, i64) -> !llvm.ptr<{s}>, i8",
            view.base,
            s = view.space
        ))
    }

    /// Loads an element, converted to the compute type (f32, or i64).
    fn load(&mut self, view: &View, idx: &[String]) -> Result<String, String> {
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
    fn store(&mut self, view: &View, idx: &[String], v: &str) -> Result<(), String> {
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

    /// 16 bytes of weights (8 bf16) at the global pointer `p`.
    fn weight_load16(&mut self, p: &str) -> String {
        if !self.weights_evict_first {
            return self.op(format!(
                "llvm.load {p} {{alignment = 16 : i64}} : !llvm.ptr<1> -> vector<8xbf16>"
            ));
        }
        let st = "!llvm.struct<(i32, i32, i32, i32)>";
        let r = self.op(format!(
            "llvm.inline_asm \"ld.global.L1::no_allocate.L2::cache_hint.v4.u32 {{$0, $1, $2, $3}}, [$4], $5;\", \"=r,=r,=r,=r,l,l\" {p}, %l2_evict_first : (!llvm.ptr<1>, i64) -> {st}"
        ));
        let mut v = self.op("llvm.mlir.undef : vector<4xi32>");
        for i in 0..4 {
            let e = self.op(format!("llvm.extractvalue {r}[{i}] : {st}"));
            let c = self.op(format!("arith.constant {i} : i32"));
            v = self.op(format!(
                "llvm.insertelement {e}, {v}[{c} : i32] : vector<4xi32>"
            ));
        }
        self.op(format!(
            "llvm.bitcast {v} : vector<4xi32> to vector<8xbf16>"
        ))
    }

    fn barrier(&mut self) {
        self.line("gpu.barrier");
    }

    /// A box's extents, the row-major stride of each axis within it, and its element count.
    fn box_extents(&mut self, b: &RBox) -> (Vec<String>, Vec<String>, String) {
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
        (ext, inners, inner)
    }

    /// `body(multi-index)` for every element of the box `b` (bounds are SSA i64 values),
    /// the threads (`first` = %tid, `step` = %nthreads) or the warps taking turns.
    fn for_box_by(
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
    fn for_region(&mut self, r: &[RBox], body: &mut ElementFn) -> Result<(), String> {
        self.for_region_by(r, "%tid", "%nthreads", 1, body)
    }

    /// [`Gen::for_region`] with one warp per element (the lanes then share the element's
    /// work, see [`Gen::lane_reduce`]).
    fn for_region_warp(&mut self, r: &[RBox], body: &mut ElementFn) -> Result<(), String> {
        self.for_region_by(r, "%warp", "%nwarps", 1, body)
    }

    /// The boxes of a region as one index space: per box its extents, inner products, and
    /// where it starts and ends in the union; and the union's element count.
    fn region_boxes(&mut self, r: &[RBox]) -> (Vec<RegionBox>, String) {
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
    fn region_index(&mut self, r: &[RBox], boxes: &[RegionBox], li: &str) -> Vec<String> {
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
    fn for_region_warp_peeled(
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
    fn for_region_by(
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

    /// Copies, before the task's wait, `blocks` blocks of this warp's first row of the
    /// product `op` (the row of its first turn of [`Gen::for_region_warp`] over `need`)
    /// into the thread's slots of the preload buffer, 16 bytes a lane each, asynchronously
    /// (`cp.async`: no registers held across the wait). A warp without a row copies the
    /// region's last (never read). Each thread reads back only what it copied, after
    /// `cp.async.wait_all`, so no barrier guards the buffer.
    fn emit_preload(
        &mut self,
        op: OpId,
        w: &View,
        need: &[RBox],
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
            let dst = self.preload_slot(b);
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
        self.preload_blocks_max = self.preload_blocks_max.max(blocks);
        Some(Preload { op, blocks })
    }

    /// Closes this thread's asynchronous copies issued so far into a group.
    fn cp_async_commit(&mut self) {
        self.line(
            "llvm.inline_asm has_side_effects \"cp.async.commit_group;\", \"~{memory}\" : () -> ()",
        );
    }

    /// One asynchronous 16-byte copy from global `src` to shared `dst` (`cp.async`, no L1).
    fn cp_async16(&mut self, dst: &str, src: &str) {
        let dst32 = self.op(format!("llvm.ptrtoint {dst} : !llvm.ptr<3> to i32"));
        // (No L2 cache hint: with one, some kernels met CUDA_ERROR_ILLEGAL_INSTRUCTION on
        // the H100, docs/PERF.md.)
        self.line(format!(
            "llvm.inline_asm has_side_effects \"cp.async.cg.shared.global [$0], [$1], 16;\", \"r,l,~{{memory}}\" {dst32}, {src} : (i32, !llvm.ptr<1>) -> ()"
        ));
    }

    /// This thread's slot of block `b` in the preload buffer (16 bytes).
    fn preload_slot(&mut self, b: usize) -> String {
        let t = self.threads as i64;
        let at = self.i64c(16 * t * b as i64);
        let c16 = self.i64c(16);
        let mine = self.op(format!("arith.muli %tid64, {c16} : i64"));
        let at = self.op(format!("arith.addi {at}, {mine} : i64"));
        self.op(format!(
            "llvm.getelementptr %pre[{at}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i8"
        ))
    }

    /// Waits for this thread's preload copies (`cp.async`) to land in shared memory.
    fn preload_wait(&mut self) {
        self.line(
            "llvm.inline_asm has_side_effects \"cp.async.wait_all;\", \"~{memory}\" : () -> ()",
        );
    }

    /// A box with constant bounds.
    fn const_box(&mut self, b: &TileBox) -> RBox {
        b.iter()
            .map(|&(lo, hi)| (self.i64c(lo), self.i64c(hi)))
            .collect()
    }

    /// The lanes of a warp share `for k in 0..n` (lane l takes k = l, l + 32, ...), each
    /// carrying f32 accumulators; then the lanes combine theirs (sum, or max) by butterfly
    /// shuffles, so every lane holds the result. `init` is the identity (0, or -inf for
    /// max). Each lane takes 4 values of k per round with its own accumulators, so their
    /// loads are in flight together (a k past n is clamped to n - 1 and its value dropped).
    fn lane_reduce(
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

    /// The dot product of a bf16 weight row and an input row (f32 or bf16), both contiguous
    /// and 16-byte aligned, `k` a multiple of 8: lane l takes elements 8l..8l+8, then every
    /// 256th block, with 16-byte loads; the lanes' sums are combined by shuffles.
    fn lane_dot8(&mut self, w: &str, a: &str, a_of: &View, k: i64) -> Result<String, String> {
        Ok(self
            .rows_dot8(&[w.to_string()], a, a_of, k, None)?
            .remove(0))
    }

    /// [`Gen::lane_dot8`] of several weight rows with one input row at once: each 16-byte
    /// block of the input is loaded once for all of them, and the loads of every row are
    /// in flight together (a warp on one row waits for 4 loads a lane; on two, for 8).
    ///
    /// `pre`: the first blocks of the (single) row, loaded before the task's wait
    /// ([`Preload`]): they start the sum and the loop starts past them.
    fn rows_dot8(
        &mut self,
        ws: &[String],
        a: &str,
        a_of: &View,
        k: i64,
        pre: Option<usize>,
    ) -> Result<Vec<String>, String> {
        let a_elem = a_of.elem;
        let unroll = matvec_unroll(k, self.matvec_unroll);
        let kk = self.fresh();
        let accs: Vec<String> = ws.iter().map(|_| self.fresh()).collect();
        let res = self.fresh();
        let c8 = self.idx(8);
        let mut start = self.op(format!("arith.muli %lane, {c8} : index"));
        let kn = self.idx(k);
        let step = self.idx(256 * unroll);
        let zero = self.f32c(0.0);
        let mut init = vec![zero.clone(); ws.len()];
        if let Some(blocks) = pre {
            debug_assert!(ws.len() == 1 && blocks as i64 % unroll == 0);
            debug_assert!(256 * (blocks as i64 - 1) < k);
            let k0 = self.op(format!("arith.index_cast {start} : index to i64"));
            // The loop's rounds and order of additions (so the sum is the one without the
            // preload), the blocks read back from shared memory. A partial last block adds
            // only for lanes inside K (the others' slots hold nothing, their input index is
            // clamped).
            let mut total = zero.clone();
            for round in 0..blocks as i64 / unroll {
                let mut terms = Vec::new();
                for b in round * unroll..(round + 1) * unroll {
                    let slot = self.preload_slot(b as usize);
                    let wv = self.op(format!(
                        "llvm.load {slot} {{alignment = 16 : i64}} : !llvm.ptr<3> -> vector<8xbf16>"
                    ));
                    let db = self.i64c(256 * b);
                    let k64 = self.op(format!("arith.addi {k0}, {db} : i64"));
                    let (k64, inside) = if 256 * (b + 1) > k {
                        let kn = self.i64c(k);
                        let inside = self.op(format!("arith.cmpi slt, {k64}, {kn} : i64"));
                        let lastb = self.i64c(k - 8);
                        (
                            self.op(format!("arith.minsi {k64}, {lastb} : i64")),
                            Some(inside),
                        )
                    } else {
                        (k64, None)
                    };
                    let av = self.input_block8(a, a_of, &k64);
                    terms.push((wv, av, inside));
                }
                for (wv, av, inside) in terms {
                    let af = self.widen8(&av, a_elem);
                    let t = self.add_products8(&total, &wv, &af);
                    total = match inside {
                        Some(ok) => self.op(format!("arith.select {ok}, {t}, {total} : f32")),
                        None => t,
                    };
                }
            }
            init[0] = total;
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
        for u in 0..unroll {
            let du = self.i64c(256 * u);
            let k64 = self.op(format!("arith.addi {k0}, {du} : i64"));
            // With no unrolling the loop bound keeps lanes past K out; unrolled blocks all
            // lie inside K (K is a multiple of 256 * unroll).
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
            loaded.push((wvs, av));
        }
        let mut sums = accs.clone();
        for (wvs, av) in loaded {
            let af = self.widen8(&av, a_elem);
            for (sum, wv) in sums.iter_mut().zip(wvs) {
                *sum = self.add_products8(sum, &wv, &af);
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

    /// The whole CTA sums `body(k)` for k in 0..n: each thread takes k = tid, tid + 256, ...
    /// with 8 independent loads in flight per round, the warps reduce by shuffles, and their
    /// partial sums meet in `partials` (8 f32 of scratch). Every thread gets the total.
    fn cta_sum(&mut self, n: i64, partials: &View, body: &mut StepFn) -> Result<String, String> {
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

    /// The 8 input values of a matrix-vector product from element `k` (an i64) of the row
    /// at `a` (of `a_of`'s type and address space), in one 16- or 32-byte load.
    fn input_block8(&mut self, a: &str, a_of: &View, k: &str) -> String {
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
    fn widen8(&mut self, v: &str, elem: ElemType) -> String {
        if elem == ElemType::BF16 {
            self.op(format!("arith.extf {v} : vector<8xbf16> to vector<8xf32>"))
        } else {
            v.to_string()
        }
    }

    /// `sum` plus the 8 products of `wv` (8 bf16 weights) and `af` (8 f32), added one after
    /// another in order (the matrix-vector loop's order, whatever path computes it).
    fn add_products8(&mut self, sum: &str, wv: &str, af: &str) -> String {
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
    fn dot8(&mut self, wv: &str, av: &str, a_elem: ElemType) -> String {
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
    fn stream_matvec(
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

    /// The body of an f32 sum loop opened by `head` (`%res = scf.for %k = .. to .. step ..`):
    /// `unroll` values per round, k, k + gap, ..., their loads in flight together; a value
    /// at or past the end (`bounds` gives the end and the last index, made inside the loop)
    /// is clamped to the last index and dropped.
    #[allow(clippy::too_many_arguments)]
    fn sum_loop(
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
    fn lane_split(&mut self, sub: i64) -> (String, String) {
        let lane = self.op("arith.index_cast %lane : index to i64");
        let subc = self.i64c(sub);
        let g = self.op(format!("arith.divsi {lane}, {subc} : i64"));
        let r = self.op(format!("arith.remsi {lane}, {subc} : i64"));
        (g, r)
    }

    /// Attention: the KV head of query head `h` (GQA groups of `group`), and the first of the
    /// `per` head lanes of sub-lane `si`.
    fn kv_head_and_first_lane(
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

    /// Combines every lane's `v` across the warp (sum, or max) by butterfly shuffles: every
    /// lane gets the result.
    fn warp_combine(&mut self, v: String, max: bool) -> String {
        self.lanes_combine(v, 32, max)
    }

    /// [`Gen::warp_combine`] within each aligned group of `width` lanes (a power of two).
    fn lanes_combine(&mut self, mut v: String, width: i64, max: bool) -> String {
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
    fn lanes_reduce_scatter(
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
    fn lanes_gather(&mut self, held: &[String], splits: &[i64], v: usize, lane0: &str) -> String {
        let (src, i) = scatter_holder(splits, held.len(), v);
        let sc = self.op(format!("arith.constant {src} : i32"));
        let at = self.op(format!("arith.addi {lane0}, {sc} : i32"));
        self.op(format!(
            "nvvm.shfl.sync idx %full_mask, {}, {at}, %clamp31 : f32 -> f32",
            held[i]
        ))
    }

    /// The bounds along `axis` of the box numbered `which` (an i64 SSA value) of `need`.
    fn box_bounds(&mut self, need: &[RBox], which: &str, axis: usize) -> (String, String) {
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
    fn store_lane0(&mut self, view: &View, idx: &[String], v: &str) -> Result<(), String> {
        self.open("scf.if %lane0 {");
        self.store(view, idx, v)?;
        self.close("}");
        Ok(())
    }

    fn exp(&mut self, x: &str) -> String {
        let l2e = self.f32c(std::f64::consts::LOG2_E);
        let y = self.op(format!("arith.mulf {x}, {l2e} : f32"));
        self.ex2(&y)
    }

    /// 16 bytes of shared memory at `p` as `vector<4xi32>`, loaded where it is read
    /// (volatile: not hoisted or shared between reads, so not held in registers between).
    fn load_words16(&mut self, p: &str) -> String {
        self.op(format!(
            "llvm.load volatile {p} {{alignment = 16 : i64}} : !llvm.ptr<3> -> vector<4xi32>"
        ))
    }

    /// Element `j` of 8 bf16 held as `vector<4xi32>` (16 bytes as loaded), widened to f32 by
    /// a shift or a mask of its word: the words stay packed in registers (held as a
    /// `vector<8xbf16>`, PTX unpacks them into 16-bit registers, twice the registers).
    fn bf16_of_words(&mut self, words: &str, j: usize) -> String {
        let c = self.op(format!("arith.constant {} : i32", j / 2));
        let w = self.op(format!(
            "llvm.extractelement {words}[{c} : i32] : vector<4xi32>"
        ));
        let bits = if j.is_multiple_of(2) {
            let sh = self.op("arith.constant 16 : i32");
            self.op(format!("arith.shli {w}, {sh} : i32"))
        } else {
            let mask = self.op("arith.constant -65536 : i32");
            self.op(format!("arith.andi {w}, {mask} : i32"))
        };
        self.op(format!("arith.bitcast {bits} : i32 to f32"))
    }

    /// 2^x (`ex2.approx`: 2^-inf = 0).
    fn ex2(&mut self, x: &str) -> String {
        self.op(format!(
            "llvm.inline_asm \"ex2.approx.f32 $0, $1;\", \"=f,f\" {x} : (f32) -> f32"
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
    /// Bytes of its scratch in shared memory.
    smem_used: u64,
    /// The task's output, where the op computing it stores directly (see [`direct_output`]).
    direct: Option<(ValueId, View)>,
    /// The boxes of the op being emitted as the example task's (every task sharing the code
    /// has boxes of these extents).
    extents: Vec<TileBox>,
    /// Per box of the op being emitted, its largest extent per axis over the code's tasks.
    largest: Vec<Vec<i64>>,
}

impl TaskCx<'_> {
    fn scratch(&mut self, g: &mut Gen, shape: &[i64], elem: ElemType) -> View {
        let compute = if elem.is_float() {
            ElemType::F32
        } else {
            ElemType::I64
        };
        let bytes = shape.iter().product::<i64>().max(1) as u64 * compute.bytes() as u64;
        let bytes = bytes.div_ceil(16) * 16;
        // Shared memory while the budget lasts: a value written and read back by the same
        // CTA then costs no trip to L2.
        let shared = self.smem_used + bytes <= g.smem_scratch;
        let used = if shared {
            &mut self.smem_used
        } else {
            &mut self.scratch_used
        };
        let offset = g.i64c(*used as i64);
        *used += bytes;
        View {
            base_aligned: true,
            base: if shared { "%sscr" } else { "%scr" }.into(),
            offset,
            shape: shape.to_vec(),
            strides: row_major(shape),
            elem: compute,
            space: if shared { 3 } else { 1 },
        }
    }

    /// A copy of the global `v` in shared memory, by asynchronous copies issued now (16
    /// bytes each, a few a thread, committed as a group): the caller waits for them
    /// (`Gen::preload_wait`, then a barrier) before reading the copy. None when `v` is not
    /// contiguous, 16-byte aligned and a multiple of 16 bytes, or the shared budget left
    /// cannot hold it.
    fn stage(&mut self, g: &mut Gen, v: &View) -> Option<View> {
        let bytes = v.shape.iter().product::<i64>().max(1) as u64 * v.elem.bytes() as u64;
        let ok = v.space == 1
            && v.base_aligned
            && v.strides == row_major(&v.shape)
            && matches!(v.elem, ElemType::BF16 | ElemType::F16 | ElemType::F32)
            && bytes.is_multiple_of(16)
            && self.smem_used + bytes <= g.smem_scratch;
        if !ok {
            return None;
        }
        let c = self.scratch(g, &[bytes as i64 / 4], ElemType::F32);
        let copy = View {
            shape: v.shape.clone(),
            strides: row_major(&v.shape),
            elem: v.elem,
            ..c
        };
        let zeros: Vec<String> = v.shape.iter().map(|_| g.i64c(0)).collect();
        let src0 = g.ptr(v, &zeros);
        let dst0 = g.ptr(&copy, &zeros);
        // A few chunks a thread, unrolled (a loop here made ptxas spill elsewhere).
        let chunks = bytes as i64 / 16;
        let t = g.threads as i64;
        for j in 0..(chunks + t - 1) / t {
            let dj = g.i64c(j * t);
            let c = g.op(format!("arith.addi %tid64, {dj} : i64"));
            let partial = (j + 1) * t > chunks;
            if partial {
                let nc = g.i64c(chunks);
                let inside = g.op(format!("arith.cmpi slt, {c}, {nc} : i64"));
                g.open(format!("scf.if {inside} {{"));
            }
            let c16 = g.i64c(16);
            let off = g.op(format!("arith.muli {c}, {c16} : i64"));
            let src = g.op(format!(
                "llvm.getelementptr {src0}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let dst = g.op(format!(
                "llvm.getelementptr {dst0}[{off}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i8"
            ));
            g.cp_async16(&dst, &src);
            if partial {
                g.close("}");
            }
        }
        g.cp_async_commit();
        Some(copy)
    }

    /// Scratch for the `window` of a `full`-shaped value that starts at `origin` (run-time
    /// indices): indexed like the full value, it holds only the window, so a task's share
    /// of a value sized for every task stays small enough for shared memory. Every index
    /// must lie inside the window.
    fn scratch_window(
        &mut self,
        g: &mut Gen,
        full: &[i64],
        window: &[i64],
        origin: &[String],
        elem: ElemType,
    ) -> View {
        let mut v = self.scratch(g, window, elem);
        let eb = v.elem.bytes() as i64;
        let mut off = v.offset.clone();
        for (o, st) in origin.iter().zip(&v.strides) {
            let c = g.i64c(*st as i64 * eb);
            let t = g.op(format!("arith.muli {o}, {c} : i64"));
            off = g.op(format!("arith.subi {off}, {t} : i64"));
        }
        v.offset = off;
        v.shape = full.to_vec();
        v
    }

    /// Scratch for the result of the op being emitted: the whole value where it fits the
    /// shared memory left; past that, only a window the size of its one needed box (the
    /// largest of the code's tasks': every write and read of it lies there), so it may still
    /// fit, and at worst
    /// takes less global scratch. (A value sized for every task, an MLP intermediate of
    /// 8192 or 14336 rows, went to L2 where the task needs a hundred rows of it.)
    fn result_scratch(
        &mut self,
        g: &mut Gen,
        shape: &[i64],
        elem: ElemType,
        need: &[RBox],
    ) -> View {
        let compute = if elem.is_float() { 4 } else { 8 };
        let full = (shape.iter().product::<i64>().max(1) as u64 * compute).div_ceil(16) * 16;
        match (self.largest.as_slice(), need) {
            ([b], [n]) if self.smem_used + full > g.smem_scratch && b.len() == shape.len() => {
                let window = b.clone();
                let origin: Vec<String> = n.iter().map(|(lo, _)| lo.clone()).collect();
                self.scratch_window(g, shape, &window, &origin, elem)
            }
            _ => self.scratch(g, shape, elem),
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

/// How decode attention's parts cut the step's positions 0..=pos
/// (`mkc_ir::dialect::tg::nn::attention_part`): blocks of 8 positions, ceil(blocks / parts)
/// at most a part.
struct PartWindows {
    /// Positions the step reads: pos + 1, at most the cache's length.
    upto: String,
    /// Blocks of 8 positions in 0..upto.
    blocks: String,
    /// The number of parts (a constant).
    npc: String,
}

impl PartWindows {
    fn new(g: &mut Gen, pos: &View, ctx: i64, parts: i64) -> Result<Self, String> {
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

    /// Positions lo..hi of part `p`.
    fn window(&self, g: &mut Gen, p: &str) -> (String, String) {
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
fn emit_attention(
    g: &mut Gen,
    cx: &mut TaskCx,
    ins: &[View],
    need: &[RBox],
    res: &View,
    scale: f64,
    parts: Option<i64>,
) -> Result<(), String> {
    let (q, kc, vc) = (&ins[0], &ins[1], &ins[2]);
    if q.shape.len() != 2 || kc.shape.len() != 3 {
        return Err("the GPU lowering handles decode attention of [heads, dim] only".into());
    }
    let (heads, dim) = (q.shape[0], q.shape[1]);
    let (ctx, kvh) = (kc.shape[0], kc.shape[1]);
    let group = (heads / kvh.max(1)).max(1);
    let np = parts.unwrap_or(1).max(1);
    if parts.is_some() && g.attention_online && online_attention_fits(cx, q, kc, vc) {
        return emit_attention_online(g, cx, ins, need, res, scale, np);
    }
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
    let scores = cx.scratch_window(g, &[np, heads, run], &[wp, wh, run], &origin, ElemType::F32);
    let parts_of = PartWindows::new(g, &ins[3], ctx, np)?;
    let (blocks, npc) = (parts_of.blocks.clone(), parts_of.npc.clone());
    let (c7, c8) = (g.i64c(7), g.i64c(8));
    let c_most = g.i64c(np - 1);
    let most = g.op(format!("arith.addi {blocks}, {c_most} : i64"));
    let most = g.op(format!("arith.divsi {most}, {npc} : i64"));
    let window = |g: &mut Gen, p: &str| parts_of.window(g, p);
    let z = g.i64c(0);
    // With the cache stored as bf16, positions contiguous (a head's lane over all
    // positions is one span) and aligned, a lane loads 8 positions of one lane of k
    // at once (16 bytes): a warp per (row, blocks of 8 positions), `sub` lanes per
    // block each with `per` lanes of q, their 8 partial dots met by shuffles. (The
    // scalar path below loads 2 bytes at a time: 8 times the load instructions.)
    let per = (dim / 32).max(4);
    let sub = dim / per.max(1);
    let fast = kc.elem == ElemType::BF16
        && kc.space == 1
        && kc.base_aligned
        && kc.strides.first() == Some(&1)
        && ctx % 8 == 0
        && dim % per == 0
        && sub >= 1
        && 32 % sub == 0;
    let fast_v = vc.elem == ElemType::BF16
        && vc.space == 1
        && vc.base_aligned
        && vc.strides.first() == Some(&1)
        && ctx % 8 == 0;
    // A part's query heads that share a KV head share its loads: a warp loads a block of
    // K (or V) once for every query head of the task in its group. (Parts only: whole
    // attention keeps one head a warp.)
    let shared = parts.is_some()
        && group > 1
        && fast
        && fast_v
        && cx
            .extents
            .iter()
            .all(|b| b[ha].0 % group == 0 && (b[ha].1 - b[ha].0) % group == 0);
    if shared {
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
                    g.store(&scores, &[o[0].clone(), h.clone(), t], &v)?;
                    g.close("}");
                }
            }
            g.close("}");
            Ok(())
        })?;
    } else if fast {
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
            let (first, end) = run_blocks(g, &lo, &hi, &c7, &c8);
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
            let lead = g.op(format!("arith.cmpi eq, {si}, {z} : i64"));
            let inb = g.op(format!("arith.cmpi slt, {b}, {end} : i64"));
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
                g.store(&scores, &[o[0].clone(), o[1].clone(), t], &v)?;
                g.close("}");
            }
            Ok(())
        })?;
    } else {
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
            g.store(&scores, &[o[0].clone(), o[1].clone(), t], &sv)?;
            g.close("}");
            Ok(())
        })?;
    }
    g.barrier();
    // Per row: the max, then each score turned into its weight e^(s - m) and their sum (or
    // its inverse, for the normalised output). A part's m and sum are also two lanes of its
    // result, where a box holds them.
    let stats = cx.scratch_window(g, &[np, heads, 2], &[wp, wh, 2], &origin, ElemType::F32);
    let rows = vec![(p0.clone(), p1.clone()), (h0.clone(), h1.clone())];
    g.for_region_warp(&[rows], &mut |g, o| {
        let (lo, hi) = window(g, &o[0]);
        let n = g.op(format!("arith.subi {hi}, {lo} : i64"));
        let ninf = g.f32c(f64::NEG_INFINITY);
        let m = g.lane_reduce(&n, &ninf, true, &mut |g, t, acc| {
            let s = g.load(&scores, &[o[0].clone(), o[1].clone(), t.to_string()])?;
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
        let s = g.load(&scores, &at)?;
        let d = g.op(format!("arith.subf {s}, {m} : f32"));
        let e = g.exp(&d);
        g.store(&scores, &at, &e)?;
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
        g.store_lane0(&stats, &[o[0].clone(), o[1].clone(), zi], &m)?;
        g.store_lane0(&stats, &[o[0].clone(), o[1].clone(), onei], &second)
    })?;
    g.barrier();
    // The output: a warp per (row, group of `attention_lanes` lanes, 2 by default) of the
    // boxes, 32 / lanes threads per lane each taking every (32 / lanes)-th position or
    // block of 8 positions of the row's run: a warp's load covers consecutive positions
    // of its lanes in the cache's storage; the threads of a lane meet by shuffles.
    // A part's run is short next to the whole context: there a warp takes more lanes
    // (fewer threads a lane), so that one round of the CTA's warps covers the task's rows
    // (its parts and heads: several heads when they share a KV head).
    let group_lanes = match parts {
        Some(_) => {
            let warps = (g.threads / 32) as i64;
            // (Heads that share a KV head share a warp.)
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
            let mut l = g.attention_lanes;
            while l < 32 && rows * ((dim + l - 1) / l) > warps {
                l *= 2;
            }
            l
        }
        None => g.attention_lanes,
    };
    const UNROLL: i64 = 8;
    if shared {
        return attention_output_shared(
            g,
            &AttentionOutput {
                need,
                res,
                vc,
                scores: &scores,
                dim,
                group,
                lanes: group_lanes,
                ha,
                la,
            },
            &window,
        );
    }
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
        let second = g.load(&stats, &[p.clone(), h.clone(), one.clone()])?;
        // With `fast_v` each thread of a lane takes blocks of 8 positions: one 16-byte
        // load of the lane's values (positions contiguous), 8 weights; positions past the
        // run's end in its last block drop out. Otherwise a position at a time.
        let tot = if fast_v {
            v_row_sum(
                g,
                &VBlock {
                    vc,
                    scores: &scores,
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
                    let e = g.load(&scores, &[p.clone(), h.clone(), t])?;
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

/// Whether [`emit_attention_online`] takes a part's tiles: caches of bf16 with positions
/// contiguous and 16-byte aligned, boxes that hold whole KV groups of query heads, and few
/// enough heads a group times a thread's lanes for the registers (its running sums).
/// (Tiles of one query head keep the three rounds: there the online pass measured slower,
/// 5.98 against 5.94 ms for Llama-3.1-8B at 2047, docs/PERF.md.)
fn online_attention_fits(cx: &TaskCx, q: &View, kc: &View, vc: &View) -> bool {
    if q.shape.len() != 2 || kc.shape.len() != 3 || vc.shape != kc.shape {
        return false;
    }
    let (heads, dim) = (q.shape[0], q.shape[1]);
    let (ctx, kvh) = (kc.shape[0], kc.shape[1]);
    if kvh < 1 || heads % kvh != 0 || kc.shape[2] != dim {
        return false;
    }
    let group = heads / kvh;
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
        && !cx.extents.is_empty()
        && cx
            .extents
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
fn emit_attention_online(
    g: &mut Gen,
    cx: &mut TaskCx,
    ins: &[View],
    need: &[RBox],
    res: &View,
    scale: f64,
    np: i64,
) -> Result<(), String> {
    let (q, kc, vc) = (&ins[0], &ins[1], &ins[2]);
    let (heads, dim) = (q.shape[0], q.shape[1]);
    let (ctx, kvh) = (kc.shape[0], kc.shape[1]);
    let group = heads / kvh;
    let per = (dim / 32).max(4);
    let sub = dim / per;
    let spw = 32 / sub;
    let slots = (g.threads / 32) as i64 * spw;
    let lanes_out = dim + 2;
    let parts_of = PartWindows::new(g, &ins[3], ctx, np)?;
    // One region holds, in turn, the slots' staged blocks ([slot, K or V, lane's lane,
    // lane], 16 bytes each: a warp's lanes read consecutive 16 bytes) and then their states
    // (per query head of the group: output lanes, max, sum).
    let stage_words = slots * 2 * per * sub * 4;
    let state_words = slots * group * lanes_out;
    let region = cx.scratch(g, &[stage_words.max(state_words)], ElemType::F32);
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
    let factors = cx.scratch(g, &[slots, group], ElemType::F32);
    let maxes = cx.scratch(g, &[group], ElemType::F32);
    let qsh = cx.scratch(g, &[group, dim], ElemType::F32);
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
        let (lo, hi) = parts_of.window(g, &p);
        // The group's query rows, scaled, into shared memory (a thread an element): the
        // block loop reads a lane's few there instead of holding them all.
        let heads_lanes = g.const_box(&vec![(0, group), (0, dim)]);
        g.for_box_by(&heads_lanes, "%tid", "%nthreads", &mut |g, o| {
            let (gh, dl) = (o[0].clone(), o[1].clone());
            let h = g.op(format!("arith.addi {hbase}, {gh} : i64"));
            let x = g.load(q, &[h, dl.clone()])?;
            let x = g.op(format!("arith.mulf {x}, {qscale} : f32"));
            g.store(&qsh, &[gh, dl], &x)
        })?;
        g.barrier();
        // The warp's slots take blocks first + slot, + slots, ...: the loop runs over the
        // warp's first slot's blocks, so every lane of a warp runs as many rounds (its
        // shuffles span the warp); a later slot's block past the end is clamped to the last
        // and folds in nothing.
        let (first, end) = run_blocks(g, &lo, &hi, &c7, &c8);
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
                let src = g.ptr(cache, &[q0.clone(), kv.clone(), dl]);
                let dst = g.ptr(
                    &stage,
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
                    let p = g.ptr(&qsh, &[ghc, dl.clone()]);
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
                let x = g.lanes_gather(&held, &splits, gh * 8 + j, &slot_lane0);
                let jc = g.i64c(j as i64);
                let pj = g.op(format!("arith.addi {q0}, {jc} : i64"));
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
        let got = |i: usize| format!("{out}#{i}");
        // The states replace the staged blocks: every slot's loop must be over.
        g.barrier();
        for gh in 0..ng {
            let ghc = g.i64c(gh as i64);
            for dd in 0..per {
                let ddc = g.i64c(dd);
                let dl = g.op(format!("arith.addi {d0}, {ddc} : i64"));
                let v = got(2 * ng + gh * np_ + dd as usize);
                g.store(&states, &[slot.clone(), ghc.clone(), dl], &v)?;
            }
            let lead = g.op(format!("arith.cmpi eq, {si}, {z} : i64"));
            g.open(format!("scf.if {lead} {{"));
            for (k, v) in [(dim, got(gh)), (dim + 1, got(ng + gh))] {
                let kc = g.i64c(k);
                g.store(&states, &[slot.clone(), ghc.clone(), kc], &v)?;
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
            let mx = over_slots(g, slots, &ninf, true, &mut |g, sc| {
                g.load(&states, &[sc.to_string(), gh.clone(), mc.clone()])
            })?;
            let m = g.load(&states, &[sl.clone(), gh.clone(), mc.clone()])?;
            let d = g.op(format!("arith.subf {m}, {mx} : f32"));
            let f = g.ex2(&d);
            let empty = g.op(format!("arith.cmpf oeq, {m}, {ninf} : f32"));
            let f = g.op(format!("arith.select {empty}, {zero}, {f} : f32"));
            g.store(&factors, &[sl.clone(), gh.clone()], &f)?;
            let first_slot = g.op(format!("arith.cmpi eq, {sl}, {z} : i64"));
            g.open(format!("scf.if {first_slot} {{"));
            g.store(&maxes, &[gh], &mx)?;
            g.close("}");
            Ok(())
        })?;
        g.barrier();
        // The row's result: per head its lanes, max (base e) and sum, where a box holds them.
        let heads_out = g.const_box(&vec![(0, group), (0, lanes_out)]);
        g.for_box_by(&heads_out, "%tid", "%nthreads", &mut |g, o| {
            let (gh, ln) = (o[0].clone(), o[1].clone());
            let y = over_slots(g, slots, &zero, false, &mut |g, sc| {
                let f = g.load(&factors, &[sc.to_string(), gh.clone()])?;
                let x = g.load(&states, &[sc.to_string(), gh.clone(), ln.clone()])?;
                Ok(g.op(format!("arith.mulf {f}, {x} : f32")))
            })?;
            let mx = g.load(&maxes, std::slice::from_ref(&gh))?;
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
            g.store(res, &[p.clone(), h, ln], &y)?;
            g.close("}");
            Ok(())
        })?;
        // (The next row stages its blocks over the states, and rewrites q.)
        g.barrier();
        g.close("}");
        g.close("}");
    }
    Ok(())
}

/// A part's run lo..hi in blocks of 8 positions: the first block and one past the last
/// (`c7`, `c8`: the constants 7 and 8).
fn run_blocks(g: &mut Gen, lo: &str, hi: &str, c7: &str, c8: &str) -> (String, String) {
    let first = g.op(format!("arith.divsi {lo}, {c8} : i64"));
    let end = g.op(format!("arith.addi {hi}, {c7} : i64"));
    let end = g.op(format!("arith.divsi {end}, {c8} : i64"));
    (first, end)
}

/// `end - 1`.
fn last_of(g: &mut Gen, end: &str) -> String {
    let one = g.i64c(1);
    g.op(format!("arith.subi {end}, {one} : i64"))
}

/// Whether a level of [`Gen::lanes_reduce_scatter`] halves `n` values (else it adds each).
fn halves(n: usize) -> bool {
    n >= 2 && n.is_multiple_of(2)
}

/// Where sum `v` of a [`Gen::lanes_reduce_scatter`] is after it: the offset of a lane that
/// holds it from its group's first lane, and its index among the lane's `k` values. (Held
/// are sums base..base + k, base the sum over halving levels of half the values then if
/// the lane's bit of the level is set: the first level the most significant bit of
/// base / k.)
fn scatter_holder(splits: &[i64], k: usize, v: usize) -> (i64, usize) {
    let c = v / k;
    let ns = splits.len();
    let src = splits
        .iter()
        .enumerate()
        .map(|(t, o)| ((c >> (ns - 1 - t)) & 1) as i64 * o)
        .sum();
    (src, v % k)
}

/// The sum (or max) of `term(slot)` over `slots` slots: a loop taking a few a round, their
/// loads in flight together (unrolled whole, every load would be hoisted at once).
fn over_slots(
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

/// One block of 8 positions of a part's (or the whole) run in attention's output: part `p`,
/// head `h` (its weights' row), lane `lc` of KV head `kvi`, positions `lo..hi` of the run.
struct VBlock<'a> {
    vc: &'a View,
    scores: &'a View,
    p: &'a str,
    h: &'a str,
    kvi: &'a str,
    lc: &'a str,
    lo: &'a str,
    hi: &'a str,
    c8: &'a str,
}

/// Σ w·v over block `k`'s positions before `hi` (w = e^(s − m), the weights the scores were
/// turned into): one 16-byte load of the lane's V (positions contiguous), 8 weights.
fn v_block_sum(g: &mut Gen, b: &VBlock, k: &str) -> Result<String, String> {
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
fn v_row_sum(g: &mut Gen, b: &VBlock, off: &str, per_lane: i64) -> Result<String, String> {
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
struct AttentionOutput<'a> {
    need: &'a [RBox],
    res: &'a View,
    vc: &'a View,
    scores: &'a View,
    dim: i64,
    group: i64,
    lanes: i64,
    /// The result's heads and lanes axes.
    ha: usize,
    la: usize,
}

/// A part's output when its query heads share KV heads: a warp per (box, part, KV head,
/// group of `lanes` lanes), `32 / lanes` threads a lane each taking every (32 / lanes)-th
/// block of 8 positions of the part's run, for each query head of the box in the KV
/// head's group in turn (the first brings the V blocks into L1; the others hit there).
fn attention_output_shared(
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
fn emit_attention_combine(
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
    task: &mkc_ir::dialect::task::Task,
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
        let need = merged_need(body, &sl, op);
        // Attention's scratch holds its boxes' rows only (`emit_attention`): tasks whose
        // boxes differ in size get codes of their own.
        if matches!(
            body.ops[op].name.as_str(),
            "tg.attention" | "tg.attention_partial"
        ) {
            for b in &need {
                for &(lo, hi) in b {
                    let _ = write!(key, "x{}", hi - lo);
                }
            }
        }
        push_region(&mut key, &need);
    }
    push_region(&mut key, &task.tile);
    if direct_output(body, &sl, group, task).is_some() {
        key.push_str("#direct");
    }
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
pub fn generate(
    body: &Body,
    program: &TaskProgram,
    opts: &KernelOptions,
) -> Result<Kernel, String> {
    let gpu = mkc_ir::Target::of(body)?;
    if opts.threads == 0 || !opts.threads.is_multiple_of(32) || opts.threads > gpu.threads_per_cta {
        return Err(format!(
            "threads per CTA must be a multiple of 32 up to {}, not {}",
            gpu.threads_per_cta, opts.threads
        ));
    }
    if !(1..=2).contains(&opts.matvec_rows) {
        return Err(format!(
            "a warp streams 1 or 2 weight rows at once in a matrix-vector product, not {}",
            opts.matvec_rows
        ));
    }
    if ![1, 2, 4, 8].contains(&opts.attention_lanes) {
        return Err(format!(
            "a warp computes 1, 2, 4 or 8 lanes of attention's output, not {}",
            opts.attention_lanes
        ));
    }
    if ![1, 2, 4, 8].contains(&opts.matvec_unroll) {
        return Err(format!(
            "a matrix-vector loop issues 1, 2, 4 or 8 loads per lane a round, not {}",
            opts.matvec_unroll
        ));
    }
    if opts.stream_slots > 0 {
        // Bulk copies need 16-byte aligned slots; a Hopper CTA opts into at most 227 KiB
        // of shared memory, of which the records and the ring's bookkeeping take some.
        if opts.slot_bytes < 16 || !opts.slot_bytes.is_multiple_of(16) {
            return Err(format!(
                "the weight ring's slots must be a multiple of 16 bytes, not {}",
                opts.slot_bytes
            ));
        }
        let ring = opts.stream_slots as u64 * opts.slot_bytes as u64;
        let most = gpu.smem_per_cta as u64 - RING_RESERVE;
        if ring > most {
            return Err(format!(
                "a weight ring of {} slots of {} bytes ({ring} bytes) does not fit a CTA's shared memory (at most {most} bytes)",
                opts.stream_slots, opts.slot_bytes
            ));
        }
    }
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
    let mut codes: Vec<(String, mkc_ir::dialect::task::TaskId)> = Vec::new();
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
    // Per code, each box's largest extent per axis over its tasks (the key fixes how many
    // boxes, in which order): a value windowed to its box has room for any of them.
    let mut code_extents: Vec<Vec<i64>> = vec![Vec::new(); codes.len()];
    for (c, plan) in &plans {
        let ext: Vec<i64> = plan.boxes.chunks(2).map(|b| b[1] - b[0]).collect();
        let m = &mut code_extents[*c];
        if m.is_empty() {
            *m = ext;
        } else {
            for (a, b) in m.iter_mut().zip(ext) {
                *a = (*a).max(b);
            }
        }
    }
    // The tables: one record per task, entries per SM queue. A record: code, the weight
    // spans to prefetch into L2 (count, then byte offset and length each), waits (count,
    // then event and target each), signals (count, then events), the code's parameters.
    // A CTA copies each record into shared memory before the task runs (the next one while
    // the current one computes), so the task reads its words at shared-memory latency: the
    // table itself is evicted from L2 by the weights streaming past every step.
    let weights = program
        .graph
        .buffers
        .iter()
        .find(|(_, b)| b.name == "weights")
        .map(|(id, _)| id);
    // Which task follows each task in its SM's queue, and which tasks open a queue.
    let mut next_in_queue = vec![None; program.graph.tasks.len()];
    let mut opens_queue = vec![false; program.graph.tasks.len()];
    for q in &schedule.queues {
        for w in q.windows(2) {
            next_in_queue[w[0].index()] = Some(w[1]);
        }
        if let Some(t) = q.first() {
            opens_queue[t.index()] = true;
        }
    }
    // Tasks run on the last signal of an event (`Task::on_last_signal`) have no queue: their
    // entries (for the profile's stamps) follow every queue's.
    let queued_entries: usize = schedule.queues.iter().map(Vec::len).sum();
    let mut run_entry = vec![-1i64; program.graph.tasks.len()];
    let mut inline_tasks = Vec::new();
    for (t, task) in &program.graph.tasks {
        if task.on_last_signal {
            run_entry[t.index()] = (queued_entries + inline_tasks.len()) as i64;
            inline_tasks.push(t);
        }
    }
    let runs_on = program.graph.on_last_signal();
    let mut tasks_words: Vec<i64> = Vec::new();
    let mut record_at = vec![0i64; program.graph.tasks.len()];
    let mut record_max = 0usize;
    // Words to fill with the record of a task laid out later.
    let mut record_refs: Vec<(usize, mkc_ir::dialect::task::TaskId)> = Vec::new();
    for (t, task) in &program.graph.tasks {
        let (c, plan) = &plans[t.index()];
        let at = tasks_words.len();
        record_at[t.index()] = at as i64;
        tasks_words.push(*c as i64);
        // The weights asked into L2 before the wait: the task's own, or (prefetch_next) the
        // next task's of the queue, so they stream while this one waits and computes (the
        // first task of a queue asks for its own too).
        let mut spans = Vec::new();
        if !opts.prefetch_next || opens_queue[t.index()] {
            spans.extend(prefetch_spans(task, weights, opts.prefetch_bytes));
        }
        if opts.prefetch_next {
            if let Some(n) = next_in_queue[t.index()] {
                let next = &program.graph.tasks[n];
                spans.extend(prefetch_spans(next, weights, opts.prefetch_bytes));
            }
        }
        tasks_words.push(spans.len() as i64);
        for (start, len) in spans {
            tasks_words.extend([start as i64, len as i64]);
        }
        // (A task run on its wait's last signal starts with it ready.)
        let waits: &[mkc_ir::dialect::task::EventId] = if task.on_last_signal {
            &[]
        } else {
            &task.waits
        };
        tasks_words.push(waits.len() as i64);
        for e in waits {
            tasks_words.extend([e.index() as i64, program.graph.events[*e].target as i64]);
        }
        // Signals: their count, the record + 1 of the task one of them runs (0: none), then
        // per signal its event, the event's target, and the record and entry of the task
        // its last signal runs (-1).
        tasks_words.push(task.signals.len() as i64);
        // (At most one signal runs a task, so one word names it: its record + 1, or 0.)
        match task.signals.iter().find_map(|e| runs_on[e.index()]) {
            Some(r) => {
                record_refs.push((tasks_words.len(), r));
                tasks_words.push(-2);
            }
            None => tasks_words.push(0),
        }
        for e in &task.signals {
            tasks_words.extend([e.index() as i64, program.graph.events[*e].target as i64]);
            match runs_on[e.index()] {
                Some(r) => {
                    record_refs.push((tasks_words.len(), r));
                    tasks_words.extend([-1, run_entry[r.index()]]);
                }
                None => tasks_words.extend([-1, -1]),
            }
        }
        tasks_words.extend(plan.offsets.iter().map(|&o| o as i64));
        tasks_words.extend(&plan.boxes);
        record_max = record_max.max(tasks_words.len() - at);
    }
    for (at, r) in record_refs {
        // (-2 marks the header word: the record + 1.)
        tasks_words[at] = record_at[r.index()] + (tasks_words[at] == -2) as i64;
    }
    // Every thread copies the words tid, tid + threads, ... of a record: `per_thread` words,
    // each record buffer `per_thread * threads` long. The table is padded so that copying
    // past the last record stays inside it.
    let threads = opts.threads as usize;
    let per_thread = record_max.div_ceil(threads).max(1);
    let rec_len = per_thread * threads;
    tasks_words.resize(tasks_words.len() + rec_len, 0);
    let mut entries: Vec<i64> = Vec::new();
    let mut queues: Vec<i64> = Vec::new();
    for q in &schedule.queues {
        queues.extend([entries.len() as i64, q.len() as i64]);
        entries.extend(q.iter().map(|t| record_at[t.index()]));
    }
    entries.extend(inline_tasks.iter().map(|t| record_at[t.index()]));

    let mut g = Gen {
        out: String::new(),
        next: 0,
        indent: 0,
        threads: opts.threads,
        ring: (opts.stream_slots > 0).then_some((opts.stream_slots, opts.slot_bytes)),
        matvec_rows: opts.matvec_rows as i64,
        matvec_unroll: opts.matvec_unroll as i64,
        attention_lanes: opts.attention_lanes as i64,
        attention_online: opts.attention_online,
        streamed: 0,
        // The ring comes first; the scratch gets what shared memory it leaves.
        smem_scratch: (opts.smem_scratch as u64).min(
            (gpu.smem_per_cta as u64 - SCRATCH_RESERVE)
                .saturating_sub(opts.stream_slots as u64 * opts.slot_bytes as u64),
        ),
        weights_evict_first: opts.weights_evict_first,
        staged_norm_weights: opts.staged_norm_weights,
        preload_depth: opts.preload,
        preload: None,
        preloaded: 0,
        preload_blocks_max: 0,
    };
    // Dynamic shared memory: the weight ring's slots, then the tasks' scratch.
    let ring_bytes = g.ring.map_or(0, |(slots, bytes)| slots * bytes);
    // The preload buffer follows the ring: 16 bytes a thread per block, for as many blocks
    // as a code preloads (known once the codes are made: the scratch's offset is filled in
    // then).
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
    // Three record buffers in shared memory: the running queued task's, the next one's, and
    // that of a task run on the last signal of an event; and where thread 0 leaves a claimed
    // task's entry for the CTA (word 1 of @claim; word 0 is unused, kept so that the kernel
    // stays the one measured).
    g.line(format!(
        "llvm.mlir.global internal @records() {{addr_space = 3 : i32, alignment = 16 : i64}} : !llvm.array<{} x i64>",
        3 * rec_len
    ));
    g.line("llvm.mlir.global internal @claim() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<2 x i64>");
    // The dynamic shared memory. External: it follows the static (an internal zero-length
    // global is demoted by LLVM to a static variable among the others).
    g.line("llvm.mlir.global external @dsmem() {addr_space = 3 : i32, alignment = 128 : i64} : !llvm.array<0 x i8>");
    // The weight ring: its slots (dynamic shared memory), an mbarrier per slot, the chunks
    // it has served so far, and per-row sums for two chunks.
    if let Some((slots, _)) = g.ring {
        g.line(format!(
            "llvm.mlir.global internal @ring_bars() {{addr_space = 3 : i32, alignment = 8 : i64}} : !llvm.array<{slots} x i64>"
        ));
        g.line("llvm.mlir.global internal @ring_count() {addr_space = 3 : i32, alignment = 8 : i64} : !llvm.array<1 x i64>");
        g.line(format!(
            "llvm.mlir.global internal @ring_sums() {{addr_space = 3 : i32, alignment = 16 : i64}} : !llvm.array<{} x f32>",
            2 * STREAM_ROWS
        ));
    }
    // One CTA per SM: its threads may share the whole register file. ptxas, left alone,
    // budgets for two CTAs per SM (128 registers at 256 threads, 64 at 512) and spills;
    // above 256 threads the block size must be stated too.
    let regs = opts
        .max_registers
        .unwrap_or((gpu.registers_per_sm / opts.threads).min(gpu.registers_per_thread) / 8 * 8);
    let mut attrs = Vec::new();
    if opts.threads > 256 {
        attrs.push(format!("nvvm.maxntid = array<i32: {}, 1, 1>", opts.threads));
    }
    if regs > 0 && opts.threads > 256 {
        attrs.push(format!("nvvm.maxnreg = {regs} : i32"));
    }
    let bounds = if attrs.is_empty() {
        String::new()
    } else {
        format!(" attributes {{{}}}", attrs.join(", "))
    };
    g.open(format!(
        "gpu.func @step({}) kernel{bounds} {{",
        params.join(", ")
    ));
    g.line("%sm = gpu.block_id x");
    g.line("%tid = gpu.thread_id x");
    g.line("%nthreads = gpu.block_dim x");
    g.line("%sm64 = arith.index_cast %sm : index to i64");
    g.line("%tid64 = arith.index_cast %tid : index to i64");
    g.line("%scr_off = arith.muli %sm64, %scratch_stride : i64");
    g.line(
        "%scr = llvm.getelementptr %scratch[%scr_off] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8",
    );
    g.line("%records = llvm.mlir.addressof @records : !llvm.ptr<3>");
    g.line("%claim = llvm.mlir.addressof @claim : !llvm.ptr<3>");
    g.line("%dsmem = llvm.mlir.addressof @dsmem : !llvm.ptr<3>");
    if g.weights_evict_first {
        g.line("%l2_evict_first = llvm.inline_asm has_side_effects \"createpolicy.fractional.L2::evict_first.b64 $0, 1.0;\", \"=l\" : () -> i64");
    }
    g.line(format!("%pre_off = arith.constant {ring_bytes} : i64"));
    g.line("%pre = llvm.getelementptr %dsmem[%pre_off] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i8");
    g.line(format!("%sscr_off = arith.constant {SSCR_OFF} : i64"));
    g.line(
        "%sscr = llvm.getelementptr %dsmem[%sscr_off] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i8",
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
    if let Some((slots, _)) = g.ring {
        g.line("%ring = llvm.mlir.addressof @dsmem : !llvm.ptr<3>");
        g.line("%ring_bars = llvm.mlir.addressof @ring_bars : !llvm.ptr<3>");
        g.line("%ring_count = llvm.mlir.addressof @ring_count : !llvm.ptr<3>");
        g.line("%ring_sums = llvm.mlir.addressof @ring_sums : !llvm.ptr<3>");
        // Thread 0 sets up the barriers and the count; everyone zeroes the sums (a chunk
        // leaves its sums zero again). The barrier after the first record orders this.
        g.open("scf.if %is_t0 {");
        for s in 0..slots {
            let i = g.i64c(s as i64);
            let b = g.op(format!(
                "llvm.getelementptr %ring_bars[{i}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
            ));
            let b32 = g.op(format!("llvm.ptrtoint {b} : !llvm.ptr<3> to i32"));
            let one = g.op("arith.constant 1 : i32");
            g.line(format!(
                "llvm.inline_asm has_side_effects \"mbarrier.init.shared::cta.b64 [$0], $1;\", \"r,r,~{{memory}}\" {b32}, {one} : (i32, i32) -> ()"
            ));
        }
        let z = g.i64c(0);
        g.line(format!("llvm.store {z}, %ring_count : i64, !llvm.ptr<3>"));
        g.line("llvm.inline_asm has_side_effects \"fence.mbarrier_init.release.cluster;\", \"~{memory}\"  : () -> ()");
        g.line("llvm.inline_asm has_side_effects \"fence.proxy.async.shared::cta;\", \"~{memory}\"  : () -> ()");
        g.close("}");
        let n = g.idx(2 * STREAM_ROWS);
        let i = g.fresh();
        g.open(format!("scf.for {i} = %tid to {n} step %nthreads {{"));
        let i64_ = g.op(format!("arith.index_cast {i} : index to i64"));
        let p = g.op(format!(
            "llvm.getelementptr %ring_sums[{i64_}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, f32"
        ));
        let zf = g.f32c(0.0);
        g.line(format!("llvm.store {zf}, {p} : f32, !llvm.ptr<3>"));
        g.close("}");
    }
    // Word i of a global i64 array, and of a record in shared memory.
    let word = |g: &mut Gen, base: &str, i: &str| -> String {
        let p = g.op(format!(
            "llvm.getelementptr {base}[{i}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i64"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<1> -> i64"))
    };
    let sword = |g: &mut Gen, base: &str, i: &str| -> String {
        let p = g.op(format!(
            "llvm.getelementptr {base}[{i}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<3> -> i64"))
    };
    // This thread's words of the record at word `rec` of the table (an i64).
    let load_record_at = |g: &mut Gen, rec: &str| -> Vec<String> {
        (0..per_thread)
            .map(|j| {
                let dj = g.i64c((j * threads) as i64);
                let i = g.op(format!("arith.addi %tid64, {dj} : i64"));
                let at = g.op(format!("arith.addi {rec}, {i} : i64"));
                word(g, "%tasks", &at)
            })
            .collect()
    };
    // ... and of the record of queue entry `entry`.
    let load_record = |g: &mut Gen, entry: &str| -> Vec<String> {
        let rec = word(g, "%entries", entry);
        load_record_at(g, &rec)
    };
    let store_record = |g: &mut Gen, buf: &str, vals: &[String]| {
        for (j, v) in vals.iter().enumerate() {
            let dj = g.i64c((j * threads) as i64);
            let i = g.op(format!("arith.addi %tid64, {dj} : i64"));
            let p = g.op(format!(
                "llvm.getelementptr {buf}[{i}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
            ));
            g.line(format!("llvm.store {v}, {p} : i64, !llvm.ptr<3>"));
        }
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
    let last64 = g.op(format!("arith.addi {first}, {count} : i64"));
    let last64 = g.op(format!("arith.subi {last64}, {one} : i64"));
    // The first record into buffer 0.
    let any = g.op(format!("arith.cmpi ult, {lo}, {hi} : index"));
    g.open(format!("scf.if {any} {{"));
    let vals = load_record(&mut g, &first);
    store_record(&mut g, "%records", &vals);
    g.close("}");
    g.barrier();
    let e = g.fresh();
    g.open(format!("scf.for {e} = {lo} to {hi} step %c1_idx {{"));
    let e64 = g.op(format!("arith.index_cast {e} : index to i64"));
    // Entry k of the queue uses buffer k mod 2; a task run on a last signal, buffer 2.
    let rel = g.op(format!("arith.subi {e64}, {first} : i64"));
    let par = g.op(format!("arith.andi {rel}, {one} : i64"));
    let other = g.op(format!("arith.xori {par}, {one} : i64"));
    let len = g.i64c(rec_len as i64);
    let cur_at = g.op(format!("arith.muli {par}, {len} : i64"));
    let nxt_at = g.op(format!("arith.muli {other}, {len} : i64"));
    let run_at = g.i64c(2 * rec_len as i64);
    let recp = g.op(format!(
        "llvm.getelementptr %records[{cur_at}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
    ));
    let nxtp = g.op(format!(
        "llvm.getelementptr %records[{nxt_at}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
    ));
    let runp = g.op(format!(
        "llvm.getelementptr %records[{run_at}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
    ));
    // The profile: with a trace buffer, thread 0 stamps (globaltimer, ns) each entry's start,
    // the end of its wait and its end: three u64 per entry.
    let stamp = |g: &mut Gen, ent: &str, k: i64| {
        g.open("scf.if %tracing {");
        let t = g.op("nvvm.read.ptx.sreg.globaltimer : i64");
        let three = g.i64c(3);
        let base = g.op(format!("arith.muli {ent}, {three} : i64"));
        let kk = g.i64c(k);
        let at = g.op(format!("arith.addi {base}, {kk} : i64"));
        let p = g.op(format!(
            "llvm.getelementptr %trace[{at}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i64"
        ));
        g.line(format!("llvm.store {t}, {p} : i64, !llvm.ptr<1>"));
        g.close("}");
    };
    stamp(&mut g, &e64, 0);
    // The next entry's record is loaded now and stored at the end of this task (the last
    // entry loads its own again).
    let nx = g.op(format!("arith.addi {e64}, {one} : i64"));
    let nx = g.op(format!("arith.minsi {nx}, {last64} : i64"));
    let next_vals = load_record(&mut g, &nx);
    // The queued task, then the task its last signal runs, if it claims one: a loop over
    // (record, entry, whether it is the queued one) while the entry is one.
    let (rp0, ent0, first0) = (g.fresh(), g.fresh(), g.fresh());
    let (rp, ent, is_first) = (g.fresh(), g.fresh(), g.fresh());
    let res = g.fresh();
    let yes = g.op("arith.constant true");
    let loop_types = "!llvm.ptr<3>, i64, i1";
    g.open(format!(
        "{res}:3 = scf.while ({rp0} = {recp}, {ent0} = {e64}, {first0} = {yes}) : ({loop_types}) -> ({loop_types}) {{"
    ));
    let z0 = g.i64c(0);
    let go = g.op(format!("arith.cmpi sge, {ent0}, {z0} : i64"));
    g.line(format!(
        "scf.condition({go}) {rp0}, {ent0}, {first0} : {loop_types}"
    ));
    g.close("} do {");
    g.line(format!(
        "^bb0({rp}: !llvm.ptr<3>, {ent}: i64, {is_first}: i1):"
    ));
    g.indent += 1;
    let not_first = g.op(format!("arith.xori {is_first}, {yes} : i1"));
    g.open(format!("scf.if {not_first} {{"));
    stamp(&mut g, &ent, 0);
    g.close("}");
    let recp = rp.clone();
    let z = g.i64c(0);
    let code = sword(&mut g, &recp, &z);
    let npf = sword(&mut g, &recp, &one);
    // Ask L2 for the weights the record names, before the wait.
    if let Some(wb) = weights.filter(|_| opts.prefetch_bytes > 0) {
        let wbase = format!("%b{}", wb.index());
        let ni = g.op(format!("arith.index_cast {npf} : i64 to index"));
        let i = g.fresh();
        g.open(format!("scf.for {i} = %tid to {ni} step %nthreads {{"));
        let i64_ = g.op(format!("arith.index_cast {i} : index to i64"));
        let at = g.op(format!("arith.muli {i64_}, {two} : i64"));
        let at = g.op(format!("arith.addi {at}, {two} : i64"));
        let off = sword(&mut g, &recp, &at);
        let at1 = g.op(format!("arith.addi {at}, {one} : i64"));
        let len = sword(&mut g, &recp, &at1);
        let len32 = g.op(format!("arith.trunci {len} : i64 to i32"));
        let p = g.op(format!(
            "llvm.getelementptr {wbase}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        g.line(format!(
            "llvm.inline_asm has_side_effects \"cp.async.bulk.prefetch.L2.global [$0], $1;\", \"l,r\" {p}, {len32} : (!llvm.ptr<1>, i32) -> ()"
        ));
        g.close("}");
    }
    // Where the waits start: after the prefetch spans.
    let pf2 = g.op(format!("arith.muli {npf}, {two} : i64"));
    let wbase_at = g.op(format!("arith.addi {pf2}, {two} : i64"));
    let nw = sword(&mut g, &recp, &wbase_at);
    // Wait (in each code, after what it loads before its wait): a thread per counter spins
    // on it, all at once, then the barrier hands the acquires on to the CTA. (One thread
    // polling them in turn paid an L2 round trip per counter after the last became ready.)
    let (first, step) = if opts.parallel_waits {
        ("%tid", "%nthreads")
    } else {
        ("%c0_idx", "%c1_idx")
    };
    let wait = |g: &mut Gen| {
        if !opts.parallel_waits {
            g.open("scf.if %is_t0 {");
        }
        let nwi = g.op(format!("arith.index_cast {nw} : i64 to index"));
        let w = g.fresh();
        g.open(format!("scf.for {w} = {first} to {nwi} step {step} {{"));
        let w64 = g.op(format!("arith.index_cast {w} : index to i64"));
        let w2 = g.op(format!("arith.muli {w64}, {two} : i64"));
        let w2 = g.op(format!("arith.addi {w2}, {wbase_at} : i64"));
        let wi = g.op(format!("arith.addi {w2}, {one} : i64"));
        let ev = sword(g, &recp, &wi);
        let wi1 = g.op(format!("arith.addi {wi}, {one} : i64"));
        let target = sword(g, &recp, &wi1);
        let t32 = g.op(format!("arith.trunci {target} : i64 to i32"));
        let want = g.op(format!("arith.muli {t32}, %step : i32"));
        let cp = g.op(format!(
            "llvm.getelementptr %counters[{ev}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i32"
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
        if opts.event_fences {
            g.line("llvm.fence syncscope(\"device\") acquire");
        }
        g.close("}");
        if !opts.parallel_waits {
            g.close("}");
        }
        g.barrier();
        stamp(g, &ent, 1);
    };
    // Where the signals and the parameters start: the count, whether one runs a task, four
    // words a signal.
    let w2n = g.op(format!("arith.muli {nw}, {two} : i64"));
    let sat = g.op(format!("arith.addi {w2n}, {wbase_at} : i64"));
    let sat = g.op(format!("arith.addi {sat}, {one} : i64"));
    let ns_count = sword(&mut g, &recp, &sat);
    let sat1 = g.op(format!("arith.addi {sat}, {one} : i64"));
    let runs = sword(&mut g, &recp, &sat1);
    let sat2 = g.op(format!("arith.addi {sat1}, {one} : i64"));
    let four = g.i64c(4);
    let s4 = g.op(format!("arith.muli {ns_count}, {four} : i64"));
    let pat = g.op(format!("arith.addi {sat2}, {s4} : i64"));
    let params_p = g.op(format!(
        "llvm.getelementptr {recp}[{pat}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
    ));
    // The record of the task this one's last signal may run, loaded while it computes.
    let runs_b = g.op(format!("arith.cmpi ne, {runs}, {z} : i64"));
    let run_vals: Vec<String> = (0..per_thread).map(|_| g.fresh()).collect();
    let run_types = vec!["i64"; per_thread].join(", ");
    g.open(format!(
        "{} = scf.if {runs_b} -> ({run_types}) {{",
        run_vals.join(", ")
    ));
    let rr = g.op(format!("arith.subi {runs}, {one} : i64"));
    let vals = load_record_at(&mut g, &rr);
    g.line(format!("scf.yield {} : {run_types}", vals.join(", ")));
    g.close("} else {");
    g.indent += 1;
    let zeros: Vec<String> = (0..per_thread).map(|_| z.clone()).collect();
    g.line(format!("scf.yield {} : {run_types}", zeros.join(", ")));
    g.close("}");
    let code_idx = g.op(format!("arith.index_cast {code} : i64 to index"));
    g.open(format!("scf.index_switch {code_idx}"));
    let (mut scratch_max, mut smem_max) = (0u64, 0u64);
    let mut global_scratch = Vec::new();
    for (c, (_, example)) in codes.iter().enumerate() {
        let task = &program.graph.tasks[*example];
        g.open(format!("case {c} {{"));
        g.line(format!(
            "// code {c}: {} (group {} result {}), like {example}",
            task.kind, task.group, task.output
        ));
        let used = emit_code(
            &mut g,
            body,
            &steps,
            &placed,
            &strides,
            &buffers,
            task,
            &code_extents[c],
            &params_p,
            &wait,
        )
        .map_err(|e| format!("{example} ({}): {e}", task.kind))?;
        scratch_max = scratch_max.max(used.0);
        smem_max = smem_max.max(used.1);
        if used.0 > 0 {
            global_scratch.push((c, task.kind.clone(), used.0));
        }
        g.line("scf.yield");
        g.close("}");
    }
    g.open("default {");
    g.line("scf.yield");
    g.close("}");
    // The next record into the other buffer (its last reader, the previous task's signal,
    // is done: thread 0 passed this task's wait barrier after it).
    g.open(format!("scf.if {is_first} {{"));
    store_record(&mut g, &nxtp, &next_vals);
    g.close("}");
    g.barrier();
    stamp(&mut g, &ent, 2);
    // Signal: fence, then one relaxed add per counter (a release pattern), or release adds.
    // An event whose last signal runs a task: an add that returns the count (acquire and
    // release); the task that makes it ready leaves the task's entry in @claim (its record
    // is already loaded).
    let none = g.i64c(-1);
    let claim1 = g.op(format!(
        "llvm.getelementptr %claim[{one}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
    ));
    g.open("scf.if %is_t0 {");
    g.open(format!("scf.if {runs_b} {{"));
    g.line(format!("llvm.store {none}, {claim1} : i64, !llvm.ptr<3>"));
    g.close("}");
    if opts.event_fences {
        g.line("llvm.fence syncscope(\"device\") release");
    }
    let nsi = g.op(format!("arith.index_cast {ns_count} : i64 to index"));
    let s_ = g.fresh();
    g.open(format!("scf.for {s_} = %c0_idx to {nsi} step %c1_idx {{"));
    let s64 = g.op(format!("arith.index_cast {s_} : index to i64"));
    let s4 = g.op(format!("arith.muli {s64}, {four} : i64"));
    let si = g.op(format!("arith.addi {sat2}, {s4} : i64"));
    let sev = sword(&mut g, &recp, &si);
    let si1 = g.op(format!("arith.addi {si}, {one} : i64"));
    let target = sword(&mut g, &recp, &si1);
    let si2 = g.op(format!("arith.addi {si1}, {one} : i64"));
    let run_rec = sword(&mut g, &recp, &si2);
    let si3 = g.op(format!("arith.addi {si2}, {one} : i64"));
    let run_ent = sword(&mut g, &recp, &si3);
    let sp = g.op(format!(
        "llvm.getelementptr %counters[{sev}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i32"
    ));
    let one32 = g.op("arith.constant 1 : i32");
    let plain = g.op(format!("arith.cmpi slt, {run_rec}, {z} : i64"));
    g.open(format!("scf.if {plain} {{"));
    if opts.event_fences {
        g.op(format!(
            "llvm.atomicrmw add {sp}, {one32} monotonic : !llvm.ptr<1>, i32"
        ));
    } else {
        // A release add: it orders every write the barrier above made visible to thread 0.
        // (Inline PTX: LLVM's NVPTX backend drops the ordering of an atomicrmw.)
        g.line(format!(
            "llvm.inline_asm has_side_effects \"red.release.gpu.global.add.u32 [$0], $1;\", \"l,r,~{{memory}}\" {sp}, {one32} : (!llvm.ptr<1>, i32) -> ()"
        ));
    }
    g.close("} else {");
    g.indent += 1;
    let old = g.op(format!(
        "llvm.inline_asm has_side_effects \"atom.acq_rel.gpu.global.add.u32 $0, [$1], $2;\", \"=r,l,r,~{{memory}}\" {sp}, {one32} : (!llvm.ptr<1>, i32) -> i32"
    ));
    let now = g.op(format!("arith.addi {old}, {one32} : i32"));
    let t32 = g.op(format!("arith.trunci {target} : i64 to i32"));
    let want = g.op(format!("arith.muli {t32}, %step : i32"));
    let last = g.op(format!("arith.cmpi eq, {now}, {want} : i32"));
    g.open(format!("scf.if {last} {{"));
    g.line(format!(
        "llvm.store {run_ent}, {claim1} : i64, !llvm.ptr<3>"
    ));
    g.close("}");
    g.close("}");
    g.close("}");
    g.close("}");
    // The CTA reads what thread 0 claimed; a claimed task's record goes to buffer 2.
    let next_ent = g.fresh();
    g.open(format!("{next_ent} = scf.if {runs_b} -> (i64) {{"));
    g.barrier();
    let ce = g.op(format!("llvm.load {claim1} : !llvm.ptr<3> -> i64"));
    let claimed = g.op(format!("arith.cmpi sge, {ce}, {z} : i64"));
    g.open(format!("scf.if {claimed} {{"));
    store_record(&mut g, &runp, &run_vals);
    g.barrier();
    g.close("}");
    g.line(format!("scf.yield {ce} : i64"));
    g.close("} else {");
    g.indent += 1;
    g.line(format!("scf.yield {none} : i64"));
    g.close("}");
    let no = g.op("arith.constant false");
    g.line(format!("scf.yield {runp}, {next_ent}, {no} : {loop_types}"));
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
    let preload_bytes = g.preload_blocks_max as u32 * opts.threads * 16;
    mlir.push_str(
        &g.out
            .replacen(SSCR_OFF, &(ring_bytes + preload_bytes).to_string(), 1),
    );
    let dynamic_smem = if g.streamed == 0 && smem_max == 0 && g.preloaded == 0 {
        0
    } else {
        ring_bytes + preload_bytes + smem_max as u32
    };
    // A CTA may use at most the target's shared memory, static and dynamic.
    let static_smem = 3 * rec_len as u64 * 8 + 16;
    if static_smem + dynamic_smem as u64 > gpu.smem_per_cta as u64 {
        return Err(format!(
            "the kernel needs {} bytes of shared memory per CTA (task records {static_smem}, weight ring {ring_bytes}, preload buffer {preload_bytes}, task scratch {smem_max}); an SM offers at most {}: lower --preload, --smem-scratch or the ring's size",
            static_smem + dynamic_smem as u64,
            gpu.smem_per_cta
        ));
    }
    Ok(Kernel {
        mlir,
        chip: gpu.chip,
        name: "step".into(),
        threads: opts.threads,
        ctas: schedule.queues.len(),
        scratch_per_cta: scratch_max.max(16),
        codes: codes.len(),
        tasks: tasks_words,
        entries,
        queues,
        dynamic_smem,
        streamed: g.streamed,
        global_scratch,
    })
}

/// The spans of weights a task reads, the first `budget` bytes of them, 16-byte aligned
/// inside each span, in pieces of at most [`PREFETCH_CHUNK`] bytes: (byte offset, length).
fn prefetch_spans(
    task: &mkc_ir::dialect::task::Task,
    weights: Option<mkc_ir::dialect::task::BufferId>,
    budget: u64,
) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    let mut left = budget;
    for r in task.reads.iter().filter(|r| Some(r.buffer) == weights) {
        let mut start = r.start.div_ceil(16) * 16;
        let end = (r.end / 16 * 16).min(start + left);
        while start < end && left > 0 {
            let len = (end - start).min(PREFETCH_CHUNK);
            spans.push((start, len));
            start += len;
            left -= len;
        }
    }
    spans
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
    task: &mkc_ir::dialect::task::Task,
    largest: &[i64],
    params: &str,
    wait: &dyn Fn(&mut Gen),
) -> Result<(u64, u64), String> {
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
    // Parameters are words of the task's record in shared memory.
    let mut param = |g: &mut Gen| {
        let i = g.i64c(next);
        next += 1;
        let p = g.op(format!(
            "llvm.getelementptr {params}[{i}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<3> -> i64"))
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
            elem: mkc_ir::dialect::task::storage_elem(&buffers[b], t.elem),
            space: 1,
        }
    };
    let mut cx = TaskCx {
        body,
        views: HashMap::new(),
        scratch_used: 0,
        smem_used: 0,
        direct: None,
        extents: Vec::new(),
        largest: Vec::new(),
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
    let direct = direct_output(body, &sl, group, task);
    if direct.is_some() {
        cx.direct = Some((y, out.clone()));
    }
    let ops: Vec<OpId> = sl
        .ops
        .iter()
        .copied()
        .filter(|op| !(in_place && body.ops[*op].results.contains(&y)))
        .collect();
    // The task waits on its events here; the first blocks of its first matrix-vector
    // product's weights are loaded before (the boxes of the ops up to it are words of the
    // record, already in shared memory).
    let mut needs: Vec<Vec<RBox>> = Vec::new();
    g.preload = None;
    let preloaded = ops
        .iter()
        .enumerate()
        .find_map(|(i, &op)| preload_blocks(g, &cx, op).map(|b| (i, b)));
    let first_matvec = preloaded.map(|(i, _)| i);
    if let Some((p, blocks)) = preloaded {
        for &op in &ops[..=p] {
            needs.push(read_region(g, &merged_need(body, &sl, op)));
        }
        let w = cx.view(body.ops[ops[p]].operands[1])?.clone();
        g.preload = g.emit_preload(ops[p], &w, &needs[p], blocks);
    }
    wait(g);
    let mut needs = needs.into_iter();
    // Where this op's boxes start in the code's largest extents (`largest`, per axis).
    let mut at = 0usize;
    for (i, &op) in ops.iter().enumerate() {
        let need = match needs.next() {
            Some(n) => n,
            None => read_region(g, &merged_need(body, &sl, op)),
        };
        if first_matvec == Some(i) {
            // Every thread, whether its warp reads its copies or not: none is left in
            // flight to land after the next task's.
            g.preload_wait();
        }
        cx.extents = merged_need(body, &sl, op);
        cx.largest = cx
            .extents
            .iter()
            .map(|b| {
                let e = largest.get(at..at + b.len()).unwrap_or_default().to_vec();
                at += b.len();
                e
            })
            .collect();
        emit_op(g, &mut cx, op, &need).map_err(|e| format!("'{}': {e}", body.ops[op].name))?;
        if direct == Some(op) {
            // The tile is written; the barrier after the task orders it.
            return Ok((cx.scratch_used, cx.smem_used));
        }
        g.barrier();
    }
    let tile = read_region(g, &task.tile);
    // Write the tile.
    if in_place {
        let ka = body.def_op(y).expect("in place results are kv_append");
        let new = cx.view(body.ops[ka].operands[1])?.clone();
        let pos = cx.view(body.ops[ka].operands[2])?.clone();
        let p = g.load(&pos, &[])?;
        let rows: Vec<RBox> = tile.iter().map(|b| b[1..].to_vec()).collect();
        {
            g.for_region(&rows, &mut |g, o| {
                let x = g.load(&new, o)?;
                let mut i = vec![p.clone()];
                i.extend(o.iter().cloned());
                g.store(&out, &i, &x)
            })?;
        }
    } else {
        let src = cx.view(y)?.clone();
        g.for_region(&tile, &mut |g, o| {
            let x = g.load(&src, o)?;
            g.store(&out, o, &x)
        })?;
    }
    Ok((cx.scratch_used, cx.smem_used))
}

/// How many blocks of 256 weights a lane loads before the task's wait for `op`, when it is
/// a matrix-vector product that takes the warp-per-row path with 16-byte weight loads
/// (a multiple of its loop's unroll, at most K / 256); `None` when nothing is preloaded.
fn preload_blocks(g: &Gen, cx: &TaskCx, op: OpId) -> Option<usize> {
    let body = cx.body;
    let d = &body.ops[op];
    if g.preload_depth == 0 || d.name != "tg.matmul" || g.matvec_rows != 1 {
        return None;
    }
    let tb = matches!(
        d.attrs.get("transpose_b"),
        Some(Attr::Bool(true)) | Some(Attr::Unit)
    );
    // The weights are a value the task reads from its buffer (an argument of the group).
    let w = cx.views.get(&d.operands[1])?;
    let a_shape = shape_of(body, d.operands[0]);
    let kdim = *a_shape.last()?;
    let single_row = a_shape[..a_shape.len() - 1].iter().product::<i64>() == 1;
    // The weight ring would take it instead.
    let ringed = g.ring.is_some_and(|(_, bytes)| 2 * kdim <= bytes as i64);
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
    // With K a multiple of 256 the loop takes `unroll` whole blocks a round: so does the
    // preload. Otherwise it takes one block a round, the last one partial (lanes past K
    // skip it): the preload may take that one too.
    let unroll = matvec_unroll(kdim, g.matvec_unroll);
    let blocks = if kdim % 256 == 0 {
        (g.preload_depth as i64).min(kdim / 256) / unroll * unroll
    } else {
        (g.preload_depth as i64).min((kdim + 255) / 256)
    };
    (blocks > 0).then_some(blocks as usize)
}

/// The op that may store a task's output straight to its place instead of to scratch (saving
/// a copy and a barrier): the output is not updated in place, and it is the first result of
/// the slice's last op, which computes exactly the tile. (A value stored narrower than its
/// type, an f32 KV cache kept as bf16, is rounded by the store itself.)
fn direct_output(
    body: &Body,
    sl: &mkc_ir::tiling::Slice,
    group: OpId,
    task: &mkc_ir::dialect::task::Task,
) -> Option<OpId> {
    if result_in_place(body, group, task.output) {
        return None;
    }
    let block = body.entry_block(group, 0)?;
    let y = body.ops[*body.blocks[block].ops.last()?].operands[task.output];
    let op = body.def_op(y)?;
    if sl.ops.last() != Some(&op) || body.ops[op].results.first() != Some(&y) {
        return None;
    }
    let mut need = merged_need(body, sl, op);
    let mut tile = task.tile.clone();
    need.sort();
    tile.sort();
    (need == tile).then_some(op)
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
