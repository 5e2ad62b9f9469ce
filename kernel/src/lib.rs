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

mod attention;
mod attention_online;
mod code;
mod gen;
mod matvec;
mod megakernel;
mod ops;
mod ptx;
mod scratch;

pub use megakernel::generate;

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
