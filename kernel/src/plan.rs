//! `select-kernels`: decides what the megakernel does and records it in the module as a
//! `kernel.plan` (`mkc_ir::dialect::kernel`): the kernel-wide settings, and per task code
//! where each op's result and temporaries live and which algorithm it runs (a
//! matrix-vector product's path, a norm's weight staging, attention's algorithm and loads,
//! the blocks preloaded before a wait). The generator ([`crate::generate`]) only renders
//! the plan, so these choices print, parse back and can be file-tested.

use crate::code::{CodeShape, Codes};
use crate::gen::View;
use crate::matvec::preload_count;
use crate::ops::plan_op;
use crate::scratch::ScratchPlan;
use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::kernel::{
    BoxExtents, Choice, CodePlan, KernelConfig, KernelPlan, MatvecPath, OpPlan, Place, TraceMark,
};
use mkc_ir::dialect::task::{TaskProgram, TileBox};
use mkc_ir::{Body, EntityRef, OpId, Target, ValueId};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;
use std::collections::HashMap;

mkc_passes::pass_options! {
    /// How the megakernel is generated (`mkc compile`'s kernel flags; docs/PERF.md measures each).
    pub struct KernelOptions {
        /// Threads per CTA (a multiple of 32, at most the target's).
        threads: u32 = 512 => "threads",
        /// Bytes of weights each task asks into L2 (cp.async.bulk.prefetch) before its wait, so HBM streams while the SM waits; 0: none.
        prefetch_bytes: u64 = 64 << 10 => "l2-prefetch",
        /// Prefetch the next task's weights (of the SM's queue) instead of the task's own.
        prefetch_next: bool = true => "prefetch-next",
        /// Slots of the shared-memory ring that matrix-vector products stream their weight rows through (bulk copies completing on mbarriers); 0: ordinary loads.
        stream_slots: u32 = 0 => "stream-slots",
        /// Bytes of one ring slot (whole weight rows; a multiple of 16).
        slot_bytes: u32 = 32 << 10 => "slot-bytes",
        /// Registers per thread ptxas may use: auto (the target's register file of one SM over the threads), or a number (0: ptxas decides).
        max_registers: Option<u32> = None => "max-registers",
        /// Weight rows a warp streams at once in a matrix-vector product (1 or 2).
        matvec_rows: u32 = 1 => "matvec-rows",
        /// Stream 2 rows at once in products whose tasks give each warp at least this many rows (the LM head); 0: as matvec-rows says.
        rows_from: u32 = 0 => "matvec-rows-from",
        /// Bytes of shared memory for a task's intermediate values; past it they go to the CTA's region of global memory.
        smem_scratch: u32 = 96 << 10 => "smem-scratch",
        /// Load matrix-vector weights with an L2 evict-first policy and no L1 allocation (they pass once a step; the caches keep what is read again).
        weights_evict_first: bool = true => "weights-evict-first",
        /// 16-byte weight loads per lane a task issues before its wait for each of its matrix-vector products of bf16 weights (their first blocks, each product its own shared-memory slots); 0: none.
        preload: u32 = 3 => "preload",
        /// 16-byte weight loads per thread a split-K part (`--split-k`) copies into shared memory before its wait (the first of its loop's first round, at most 4); 0: none.
        preload_split_k: u32 = 0 => "preload-split-k",
        /// Run two bf16 matrix-vector products of one input row over the same rows (an MLP's gate and up) in one loop, a warp taking a row of each at once, their loads in flight together.
        pair_products: bool = true => "pair-products",
        /// 16-byte weight loads per lane a task issues before its wait for its first matrix-vector product of Q8_0, Q4_0 or Q4_1 weights (at most its loop's first round), held in registers; 0: none.
        preload_blocks: u32 = 4 => "preload-blocks",
        /// Most 16-byte weight loads per lane a matrix-vector loop issues a round (1, 2, 4 or 8).
        matvec_unroll: u32 = 4 => "matvec-unroll",
        /// Rounds of a matrix-vector loop: the fewest that cover K (a last round's loads past K dropped), instead of loads a round that divide K.
        fewest_rounds: bool = true => "fewest-rounds",
        /// Events with device-scope fences (a release fence before a signal's relaxed add, an acquire fence after a wait) instead of release adds and acquire loads.
        event_fences: bool = false => "event-fences",
        /// Poll a task's counters a thread each, all at once (off: thread 0 in turn).
        parallel_waits: bool = true => "parallel-waits",
        /// Nanoseconds a thread polling a counter sleeps between its loads (`nanosleep`; 0: it loads again at once).
        poll_sleep: u32 = 32 => "poll-sleep",
        /// Load the scalars a task reads from buffers no task of the step writes (the step's position) before its wait, so attention's addresses are known as it ends.
        early_inputs: bool = true => "early-inputs",
        /// How each code reads the thread's number: loaded (with a volatile load of a shared zero added, so that ptxas cannot hoist the codes' arithmetic on it out of the loop, where it holds registers across every code), mov (once a pass, an opaque move), or auto (loaded unless a product dequantizes blocks: those kernels then spill).
        thread_number: String = "auto".to_string() => "thread-number",
        /// Where a code's box extents come from: record (every bound a word of the task's record), constant (an extent every task of a code shares is a constant of the code's text, so its index arithmetic divides by constants), or split (constant, with the tasks of a code whose extents differ given a code per set of extents).
        tile_extents: String = "constant".to_string() => "tile-extents",
        /// RMS norms copy their weight into shared memory as they start, beside the sum of squares' loads.
        staged_norm_weights: bool = true => "staged-norm-weights",
        /// Output lanes of decode attention a warp computes at least (1, 2, 4 or 8).
        attention_lanes: u32 = 2 => "attention-lanes",
        /// Attention parts whose tiles hold a KV head's query heads run one pass of online softmax (off: three rounds).
        attention_online: bool = true => "attention-online",
        /// After its wait, a task asks into L1 (`prefetch.global.L1`) the small global inputs of the light ops after its first (norms, rope: a K row normalised by attention's tasks, `--k-row`), so that their loads do not each wait a round trip to L2 in turn.
        prefetch_light_inputs: bool = false => "prefetch-light-inputs",
        /// Where a traced task takes its wait-end stamp instead (attention-scores, attention-stats, input-rounded; empty: after the wait), to time a part of a task's code.
        trace_mark: String = String::new() => "trace-mark",
    }
}

/// Shared memory a CTA keeps from its task scratch (for the task records and the ring's
/// bookkeeping), and from the weight ring (for those and the scratch a task needs).
pub(crate) const SCRATCH_RESERVE: u64 = 11 << 10;
pub(crate) const RING_RESERVE: u64 = 27 << 10;

impl KernelOptions {
    /// The checks that need no target.
    fn check(&self) -> Result<(), String> {
        if !(1..=2).contains(&self.matvec_rows) {
            return Err(format!(
                "a warp streams 1 or 2 weight rows at once in a matrix-vector product, not {}",
                self.matvec_rows
            ));
        }
        if ![1, 2, 4, 8].contains(&self.attention_lanes) {
            return Err(format!(
                "a warp computes 1, 2, 4 or 8 lanes of attention's output, not {}",
                self.attention_lanes
            ));
        }
        if ![1, 2, 4, 8].contains(&self.matvec_unroll) {
            return Err(format!(
                "a matrix-vector loop issues 1, 2, 4 or 8 loads per lane a round, not {}",
                self.matvec_unroll
            ));
        }
        if !["auto", "loaded", "mov"].contains(&self.thread_number.as_str()) {
            return Err(format!(
                "the thread's number is read auto, loaded or mov, not '{}'",
                self.thread_number
            ));
        }
        if self.stream_slots > 0 && (self.slot_bytes < 16 || !self.slot_bytes.is_multiple_of(16)) {
            // (Bulk copies need 16-byte aligned slots.)
            return Err(format!(
                "the weight ring's slots must be a multiple of 16 bytes, not {}",
                self.slot_bytes
            ));
        }
        Ok(())
    }

    /// The kernel-wide settings on `target`.
    pub fn config(&self, target: &Target) -> Result<KernelConfig, String> {
        self.check()?;
        if self.threads == 0
            || !self.threads.is_multiple_of(32)
            || self.threads > target.threads_per_cta
        {
            return Err(format!(
                "threads per CTA must be a multiple of 32 up to {}, not {}",
                target.threads_per_cta, self.threads
            ));
        }
        let ring = self.stream_slots as u64 * self.slot_bytes as u64;
        let most = target.smem_per_cta as u64 - RING_RESERVE;
        if ring > most {
            return Err(format!(
                "a weight ring of {} slots of {} bytes ({ring} bytes) does not fit a CTA's shared memory (at most {most} bytes)",
                self.stream_slots, self.slot_bytes
            ));
        }
        // One CTA per SM: its threads may share the whole register file (ptxas, left alone,
        // budgets for two CTAs per SM and spills).
        let registers = self.max_registers.unwrap_or(
            (target.registers_per_sm / self.threads).min(target.registers_per_thread) / 8 * 8,
        );
        Ok(KernelConfig {
            threads: self.threads,
            registers,
            prefetch_bytes: self.prefetch_bytes,
            prefetch_next: self.prefetch_next,
            ring_slots: self.stream_slots,
            ring_slot_bytes: self.slot_bytes,
            // The ring comes first; the scratch gets what shared memory it leaves.
            smem_scratch: (self.smem_scratch as u64)
                .min((target.smem_per_cta as u64 - SCRATCH_RESERVE).saturating_sub(ring)),
            weights_evict_first: self.weights_evict_first,
            event_fences: self.event_fences,
            parallel_waits: self.parallel_waits,
            poll_sleep_ns: self.poll_sleep,
            early_inputs: self.early_inputs,
            // (Decided with the codes: `plan`.)
            opaque_thread_number: false,
            extents: BoxExtents::parse(&self.tile_extents)?,
            trace_mark: TraceMark::parse(&self.trace_mark)?,
            prefetch_light_inputs: self.prefetch_light_inputs,
        })
    }
}

pub struct SelectKernels {
    pub options: KernelOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "select-kernels",
        summary: "decide the megakernel's settings and each task code's algorithms and scratch (adds a kernel.plan)",
        anchor: None,
        options: KernelOptions::describe,
        statistics: &[
            ("codes", "task codes"),
            ("global-scratch-codes", "codes with intermediate values in global scratch"),
        ],
        create: |o| {
            let options = KernelOptions::parse(o)?;
            options.check()?;
            Ok(Box::new(SelectKernels { options }))
        },
    }
}

impl Pass for SelectKernels {
    fn run(&mut self, body: &mut Body, _op: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let at = |m: String| {
            let loc = TaskProgram::find(body)
                .map(|o| body.ops[o].loc)
                .unwrap_or_default();
            Diagnostic::error(loc, format!("select-kernels: {m}"))
        };
        let program = TaskProgram::from_body(body).map_err(at)?;
        let target = Target::of(body).map_err(at)?;
        let plan = plan(body, &program, &self.options, &target).map_err(at)?;
        cx.count("codes", plan.codes.len() as u64);
        cx.count(
            "global-scratch-codes",
            plan.codes.iter().filter(|c| c.scratch > 0).count() as u64,
        );
        plan.store(body);
        Ok(())
    }
}

/// The plan of `body`'s scheduled task program under `o` on `target`.
pub fn plan(
    body: &Body,
    program: &TaskProgram,
    o: &KernelOptions,
    target: &Target,
) -> Result<KernelPlan, String> {
    if program.schedule.is_none() {
        return Err("the task graph is not scheduled (run the 'schedule' pass)".into());
    }
    let mut config = o.config(target)?;
    let codes = Codes::of(body, program, config.extents == BoxExtents::Split)?;
    let plans: Vec<CodePlan> = (0..codes.first.len())
        .map(|c| {
            let shape = codes.shape(body, program, c)?;
            plan_code(&codes, &shape, &config, o)
                .map_err(|e| format!("{} ({}): {e}", codes.first[c], shape.task.kind))
        })
        .collect::<Result<_, String>>()?;
    // `auto`: kernels of block-quantized products spilled with it (docs/PERF.md, session 24).
    let blocks = plans.iter().flat_map(|c| &c.ops).any(|op| {
        matches!(
            op.choice,
            Choice::Matvec {
                path: MatvecPath::Blocks | MatvecPath::Dp4a,
                ..
            }
        )
    });
    config.opaque_thread_number = match o.thread_number.as_str() {
        "loaded" => true,
        "mov" => false,
        _ => !blocks,
    };
    Ok(KernelPlan {
        config,
        codes: plans,
    })
}

/// What the planning of one code knows: the layout of every value so far, the scratch
/// taken, and the boxes of the op being planned.
pub(crate) struct PlanCx<'a> {
    pub(crate) body: &'a Body,
    pub(crate) views: HashMap<ValueId, View>,
    pub(crate) scratch: ScratchPlan,
    pub(crate) options: &'a KernelOptions,
    pub(crate) threads: u32,
    /// The task's output, where the op computing it stores directly.
    pub(crate) direct: Option<(ValueId, View)>,
    /// The boxes of the op being planned (the code's first task's), and each box's largest
    /// extent per axis over the code's tasks.
    pub(crate) extents: Vec<TileBox>,
    pub(crate) largest: Vec<Vec<i64>>,
    /// Where an input row is rounded to 8 bits: the products of one row share the buffer.
    pub(crate) rounded: HashMap<ValueId, mkc_ir::dialect::kernel::Place>,
}

impl PlanCx<'_> {
    pub(crate) fn view(&self, v: ValueId) -> Result<&View, String> {
        self.views
            .get(&v)
            .ok_or_else(|| format!("internal error: {v} has no place in the kernel"))
    }
}

/// The plan of one code: its ops in order, until the one that stores the tile directly.
fn plan_code(
    codes: &Codes,
    shape: &CodeShape,
    config: &KernelConfig,
    o: &KernelOptions,
) -> Result<CodePlan, String> {
    let body = shape.body;
    let group = shape.group;
    let block = body.entry_block(group, 0).expect("a group has a body");
    let bargs = &body.blocks[block].args;
    let operands = &body.ops[group].operands;
    let results = &body.ops[group].results;
    let mut cx = PlanCx {
        body,
        views: HashMap::new(),
        scratch: ScratchPlan {
            budget: config.smem_scratch,
            smem: 0,
            global: 0,
        },
        options: o,
        threads: config.threads,
        direct: None,
        extents: Vec::new(),
        largest: Vec::new(),
        rounded: HashMap::new(),
    };
    for &i in &shape.sl.args {
        cx.views.insert(
            bargs[i],
            codes.placed_view(body, operands[i], String::new()),
        );
    }
    for &(v, j) in &shape.sl.loaded {
        cx.views
            .insert(v, codes.placed_view(body, results[j], String::new()));
    }
    if shape.direct.is_some() {
        let out = codes.placed_view(body, results[shape.task.output], String::new());
        cx.direct = Some((shape.y, out));
    }
    // The first blocks of matrix-vector products reading a weight of their own are loaded
    // before the task's wait: of every bf16 product (into shared memory), of the first
    // block-quantized one (into registers, which the code holds across its wait).
    let mut preloaded = false;
    let mut ops = Vec::new();
    for (i, &op) in shape.ops.iter().enumerate() {
        cx.extents = shape.extents[i].clone();
        cx.largest = shape.largest[i].clone();
        let mut p = plan_op(&mut cx, op, shape.index_of(op))
            .map_err(|e| format!("'{}': {e}", body.ops[op].name))?;
        let in_registers = matches!(
            p.choice,
            Choice::Matvec {
                path: MatvecPath::Blocks | MatvecPath::Dp4a,
                ..
            }
        );
        let n = (!(preloaded && in_registers))
            .then(|| preload_count(body, &cx.views, op, &p.choice, o))
            .flatten();
        if let (Some(n), Choice::Matvec { preload, .. }) = (n, &mut p.choice) {
            *preload = n;
            preloaded = true;
        }
        ops.push(p);
        if shape.direct == Some(op) {
            break;
        }
    }
    if o.pair_products {
        pair_products(shape, &mut ops);
    }
    Ok(CodePlan {
        task: shape.task_id.index(),
        kind: shape.task.kind.clone(),
        smem: cx.scratch.smem,
        scratch: cx.scratch.global,
        direct: shape.direct.is_some(),
        ops,
    })
}

/// Pairs the code's `row` products of one input row whose boxes are the same (the task keys
/// say so for every task of the code), the second's weight an argument of the code and its
/// result in scratch: each pair runs in the first's loop (`with`).
fn pair_products(shape: &CodeShape, ops: &mut [OpPlan]) {
    let body = shape.body;
    let row = |p: &OpPlan| match p.choice {
        Choice::Matvec {
            path: MatvecPath::Row,
            unroll,
            preload,
            with: None,
            ..
        } => Some((unroll, preload)),
        _ => None,
    };
    let computed: Vec<ValueId> = shape
        .ops
        .iter()
        .flat_map(|&op| body.ops[op].results.iter().copied())
        .collect();
    for i in 0..ops.len() {
        let Some(how) = row(&ops[i]) else { continue };
        let first = &body.ops[shape.ops[i]];
        let partner = (i + 1..ops.len()).find(|&j| {
            let second = &body.ops[shape.ops[j]];
            row(&ops[j]) == Some(how)
                && second.operands[0] == first.operands[0]
                && !computed.contains(&second.operands[1])
                && matches!(ops[j].result, Place::Scratch { .. })
                && shape.extents[j] == shape.extents[i]
        });
        if let Some(j) = partner {
            let (a, b) = (ops[i].index as u32, ops[j].index as u32);
            for (p, other) in [(i, b), (j, a)] {
                if let Choice::Matvec { with, .. } = &mut ops[p].choice {
                    *with = Some(other);
                }
            }
        }
    }
}
