//! mkc-kernel: the kernel level. It owns the `select-kernels` pass ([`plan`]: the
//! megakernel's settings and, per task code, each op's algorithm and where its temporaries
//! live, recorded as a printed `kernel.plan`) and the generator that renders a scheduled task
//! program and its plan as MLIR text (gpu, scf, arith, llvm, nvvm dialects), rendering
//! the choices the plan records: the per-SM queue loop, event waits and signals
//! (`megakernel`), the task tables (`tables`), one code's ops (`code`, `ops`), the
//! matrix-vector family (`matvec`; block-quantized weights dequantized in registers,
//! `blocks`, or multiplied by 8-bit rounded activations on integer dot products,
//! `blocks_dp4a`), products that add onto their result (`accumulate`: split-K parts by
//! reductions onto global memory), decode attention (`attention`, `attention_online`),
//! norms (`norm`), and the text, loop and inline-PTX helpers (`gen`, `ptx`, `scratch`). It
//! does not lower to PTX (`mkc_lowering::gpu_module_to_ptx` does), nor cut tasks or place
//! them on SMs (`mkc-tasks`).
//!
//! One `gpu.func @step`, launched with one CTA per SM: the CTA walks its SM's queue of the
//! task table, and for each task:
//!
//! 0. its record (code, prefetch spans, waits, signals, parameters) is already in shared
//!    memory: every thread copied a word of it from the table while the previous task ran
//!    (two record buffers), so no task reads the table at global-memory latency;
//! 1. the weights its record names are asked into L2 (`cp.async.bulk.prefetch`: the task's
//!    own, or the next task's, `KernelOptions::prefetch_next`); the task's code (a switch
//!    on it) may copy the first weights of each of its bf16 matrix-vector products into
//!    shared memory, or load its first block-quantized one's into registers (`KernelOptions::preload`,
//!    `KernelOptions::preload_blocks`), then a thread per awaited event spins on it, all at
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
//! polynomial in f64.

mod accumulate;
mod attention;
mod attention_online;
mod blocks;
mod blocks_dp4a;
mod code;
mod gen;
mod matvec;
mod megakernel;
mod norm;
mod ops;
pub mod plan;
mod ptx;
mod scratch;
mod tables;

pub use megakernel::generate;
pub use plan::KernelOptions;

/// Registers this crate's pass: `select-kernels`.
pub fn register_passes(r: &mut mkc_passes::PassRegistry) {
    r.register(plan::info());
}

/// The PTX ISA version (times ten) kernels are lowered to unless their code needs a later one.
pub const BASE_PTX_ISA: u32 = 80;

/// The generated kernel and what the launcher needs to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub mlir: String,
    /// The PTX target it is lowered for (the module's target's chip).
    pub chip: String,
    /// The PTX ISA version it needs, times ten: [`BASE_PTX_ISA`], or 81 where it adds
    /// 16 bytes of f32 at once (`red.global.add.v4.f32`, split-K products).
    pub ptx_isa: u32,
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
