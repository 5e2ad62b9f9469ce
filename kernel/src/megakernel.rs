//! The megakernel: one `gpu.func @step`, a CTA per SM walking its queue of the task tables.
//! Its module head (the shared-memory globals and the kernel's constant values), the queue
//! loop with its record copies, L2 prefetches and waits, the switch over the codes, and the
//! signals that end each task.

use crate::code::*;
use crate::gen::*;
use crate::matvec::*;
use crate::tables::{tables, Tables};
use crate::Kernel;
use mkc_ir::dialect::kernel::{BoxExtents, KernelConfig, KernelPlan, TraceMark};
use mkc_ir::dialect::task::{BufferId, TaskProgram};
use mkc_ir::{Body, EntityRef};
use std::fmt::Write;

/// Stands for the offset of the shared scratch in the kernel's text until it is known.
pub(crate) const SSCR_OFF: &str = "__SSCR_OFF__";

/// The megakernel of `body`'s scheduled task program, as its `kernel.plan` says, and its
/// tables.
pub fn generate(body: &Body) -> Result<Kernel, String> {
    let program = &TaskProgram::from_body(body)?;
    let plan = KernelPlan::from_body(body)?;
    let opts = &plan.config;
    let gpu = mkc_ir::Target::of(body)?;
    let schedule = program
        .schedule
        .as_ref()
        .ok_or("the task graph is not scheduled (run the 'schedule' pass)")?;
    let codes = Codes::of(body, program, opts.extents == BoxExtents::Split)?;
    let matches = codes.first.len() == plan.codes.len()
        && codes
            .first
            .iter()
            .zip(&plan.codes)
            .all(|(t, c)| t.index() == c.task);
    if !matches {
        return Err(
            "the kernel plan does not match the task program (run 'select-kernels' after 'schedule')"
                .into(),
        );
    }
    let t = tables(program, schedule, &codes, opts);
    let mut g = Gen {
        out: String::new(),
        next: 0,
        indent: 0,
        threads: opts.threads,
        ring: (opts.ring_slots > 0).then_some((opts.ring_slots, opts.ring_slot_bytes)),
        streamed: 0,
        weights_evict_first: opts.weights_evict_first,
        preload: Vec::new(),
        preloaded: 0,
        preload_blocks_max: 0,
        trace_mark: opts.trace_mark,
        trace_entry: None,
        early_inputs: opts.early_inputs,
        early: Vec::new(),
        thread_per_case: false,
        constant_extents: opts.extents != BoxExtents::Record,
        fixed_extents: Vec::new(),
        ptx_isa: crate::BASE_PTX_ISA,
        prefetch_light_inputs: opts.prefetch_light_inputs,
    };
    // Dynamic shared memory: the weight ring's slots, then the preload buffer (16 bytes a
    // thread per block, for as many blocks as a code preloads), then the tasks' scratch
    // (its offset is filled in once the codes are made).
    let ring_bytes = g.ring.map_or(0, |(slots, bytes)| slots * bytes);
    emit_head(&mut g, opts, &t, codes.buffers.len());
    let weights = program
        .graph
        .buffers
        .iter()
        .find(|(_, b)| b.name == "weights")
        .map(|(id, _)| id);
    let scratch = QueueLoop {
        body,
        program,
        codes: &codes,
        plan: &plan,
        records: Records {
            per_thread: t.per_thread,
            threads: opts.threads as usize,
        },
        weights,
    }
    .emit(&mut g)?;
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
        codes.first.len()
    );
    let preload_bytes = g.preload_blocks_max as u32 * opts.threads * 16;
    mlir.push_str(
        &g.out
            .replacen(SSCR_OFF, &(ring_bytes + preload_bytes).to_string(), 1),
    );
    let smem_max = scratch.smem_max;
    let dynamic_smem = if g.streamed == 0 && smem_max == 0 && g.preloaded == 0 {
        0
    } else {
        ring_bytes + preload_bytes + smem_max as u32
    };
    // A CTA may use at most the target's shared memory, static and dynamic.
    let static_smem = 3 * t.rec_len as u64 * 8 + 16;
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
        ptx_isa: g.ptx_isa,
        name: "step".into(),
        threads: opts.threads,
        ctas: schedule.queues.len(),
        scratch_per_cta: scratch.global_max.max(16),
        codes: codes.first.len(),
        tasks: t.tasks,
        entries: t.entries,
        queues: t.queues,
        dynamic_smem,
        streamed: g.streamed,
        global_scratch: scratch.global_codes,
    })
}

/// The module up to the queue loop: the shared-memory globals, the kernel's signature and
/// bounds, the values every code uses (thread, warp and lane numbers, the scratch bases),
/// and the weight ring's set-up.
fn emit_head(g: &mut Gen, opts: &KernelConfig, t: &Tables, buffers: usize) {
    let ring_bytes = g.ring.map_or(0, |(slots, bytes)| slots * bytes);
    let params: Vec<String> = (0..buffers)
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
    // task's entry for the CTA (word 1 of @claim; word 0 holds 0 for the thread's number,
    // `emit_thread_values`).
    g.line(format!(
        "llvm.mlir.global internal @records() {{addr_space = 3 : i32, alignment = 16 : i64}} : !llvm.array<{} x i64>",
        3 * t.rec_len
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
    // The plan's registers a thread (the whole register file of one CTA per SM, unless told
    // otherwise: ptxas, left alone, budgets for two CTAs per SM and spills); above 256
    // threads the block size must be stated too.
    let regs = opts.registers;
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
    emit_constants(g, ring_bytes);
    if let Some((slots, _)) = g.ring {
        emit_ring_setup(g, slots);
    }
}

/// The values every code uses: this CTA's SM, its scratch bases, the block's size in threads
/// and warps. This thread's number as the code before the queue loop uses it is `%tid_e`
/// (`%tid64_e`, `%is_t0_e`); the loop defines its own (`emit_thread_values`).
fn emit_constants(g: &mut Gen, ring_bytes: u32) {
    g.line("%sm = gpu.block_id x");
    g.line("%tid_e = gpu.thread_id x");
    g.line("%nthreads = gpu.block_dim x");
    g.line("%sm64 = arith.index_cast %sm : index to i64");
    g.line("%tid64_e = arith.index_cast %tid_e : index to i64");
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
    g.line("%is_t0_e = arith.cmpi eq, %tid_e, %c0_idx : index");
    g.line("%no_trace = llvm.mlir.zero : !llvm.ptr<1>");
    g.line("%has_trace = llvm.icmp \"ne\" %trace, %no_trace : !llvm.ptr<1>");
    g.line("%c32_idx = arith.constant 32 : index");
    g.line("%nwarps = arith.divui %nthreads, %c32_idx : index");
    g.line("%full_mask = arith.constant -1 : i32");
    g.line("%clamp31 = arith.constant 31 : i32");
}

/// The name of a thread value (`%tid`, `%tid64`, `%is_t0`, `%tracing`) that code outside
/// the codes (the queue loop's pass: records, prefetches, signals, stamps) uses: with
/// thread values per code, the pass has its own, suffixed `_p`.
pub(crate) fn pass_name(g: &Gen, name: &str) -> String {
    match g.thread_per_case {
        true => format!("{name}_p"),
        false => name.to_string(),
    }
}

/// This thread's number and what follows from it (`%tid`, `%tid64`, `%warp`, `%lane`,
/// `%lane0`, `%is_t0`, `%tracing`, each name suffixed `sfx`), defined at the top of each
/// pass of the queue loop, and with `Gen::thread_per_case` at the top of each code too.
/// The number is read by an opaque instruction, so that LLVM cannot hoist the codes'
/// address arithmetic out of the loop: hoisted, those values stay live across every code
/// and hold registers that the code with the most live values needs. An opaque `mov` of
/// `%tid.x` stops LLVM, not ptxas, which computed them once a pass before the switch; per
/// code, `%tid.x` plus a volatile load of a shared word holding 0 (word 0 of @claim), its
/// text tagged per code (`tid of code N`; `// code N` names a code in the text) so that
/// LLVM does not merge the codes' reads.
fn emit_thread_values(g: &mut Gen, sfx: &str, tag: &str) {
    if g.thread_per_case {
        g.line(format!(
            "%zero_at{sfx} = llvm.ptrtoint %claim : !llvm.ptr<3> to i32"
        ));
        g.line(format!(
            "%tid_u32{sfx} = llvm.inline_asm has_side_effects \"{{ .reg .u32 z; ld.volatile.shared.u32 z, [$1]; mov.u32 $0, %tid.x; add.u32 $0, $0, z; }} // {tag}\", \"=r,r\" %zero_at{sfx} : (i32) -> i32"
        ));
    } else {
        g.line(format!(
            "%tid_u32{sfx} = llvm.inline_asm has_side_effects \"mov.u32 $0, %tid.x;\", \"=r\" : () -> i32"
        ));
    }
    // A block has at most 1024 threads: the mask tells LLVM the number's range, as the
    // intrinsic would, so that the arithmetic on it stays narrow.
    g.line(format!("%tid_mask{sfx} = arith.constant 1023 : i32"));
    g.line(format!(
        "%tid_u10{sfx} = arith.andi %tid_u32{sfx}, %tid_mask{sfx} : i32"
    ));
    g.line(format!(
        "%tid{sfx} = arith.index_castui %tid_u10{sfx} : i32 to index"
    ));
    g.line(format!(
        "%tid64{sfx} = arith.index_cast %tid{sfx} : index to i64"
    ));
    g.line(format!(
        "%is_t0{sfx} = arith.cmpi eq, %tid{sfx}, %c0_idx : index"
    ));
    g.line(format!(
        "%tracing{sfx} = arith.andi %has_trace, %is_t0{sfx} : i1"
    ));
    g.line(format!(
        "%warp{sfx} = arith.divui %tid{sfx}, %c32_idx : index"
    ));
    g.line(format!(
        "%lane{sfx} = arith.remui %tid{sfx}, %c32_idx : index"
    ));
    g.line(format!(
        "%lane0{sfx} = arith.cmpi eq, %lane{sfx}, %c0_idx : index"
    ));
}

/// The weight ring's set-up: thread 0 initialises the slots' barriers and the count, every
/// thread zeroes the sums (a chunk leaves its sums zero again). The barrier after the first
/// record orders this.
fn emit_ring_setup(g: &mut Gen, slots: u32) {
    g.line("%ring = llvm.mlir.addressof @dsmem : !llvm.ptr<3>");
    g.line("%ring_bars = llvm.mlir.addressof @ring_bars : !llvm.ptr<3>");
    g.line("%ring_count = llvm.mlir.addressof @ring_count : !llvm.ptr<3>");
    g.line("%ring_sums = llvm.mlir.addressof @ring_sums : !llvm.ptr<3>");
    g.open("scf.if %is_t0_e {");
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
    g.open(format!("scf.for {i} = %tid_e to {n} step %nthreads {{"));
    let i64_ = g.op(format!("arith.index_cast {i} : index to i64"));
    let p = g.op(format!(
        "llvm.getelementptr %ring_sums[{i64_}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, f32"
    ));
    let zf = g.f32c(0.0);
    g.line(format!("llvm.store {zf}, {p} : f32, !llvm.ptr<3>"));
    g.close("}");
}

/// Copying records of the task table into shared memory: every thread the words tid,
/// tid + threads, ... (`per_thread` of them).
struct Records {
    per_thread: usize,
    threads: usize,
}

impl Records {
    /// Word `i` of a global i64 array.
    fn word(g: &mut Gen, base: &str, i: &str) -> String {
        let p = g.op(format!(
            "llvm.getelementptr {base}[{i}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i64"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<1> -> i64"))
    }

    /// Word `i` of a record in shared memory.
    fn sword(g: &mut Gen, base: &str, i: &str) -> String {
        let p = g.op(format!(
            "llvm.getelementptr {base}[{i}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<3> -> i64"))
    }

    /// This thread's words of the record at word `rec` of the table (an i64), the thread's
    /// number `tid64` (an i64).
    fn load_at(&self, g: &mut Gen, tid64: &str, rec: &str) -> Vec<String> {
        (0..self.per_thread)
            .map(|j| {
                let dj = g.i64c((j * self.threads) as i64);
                let i = g.op(format!("arith.addi {tid64}, {dj} : i64"));
                let at = g.op(format!("arith.addi {rec}, {i} : i64"));
                Records::word(g, "%tasks", &at)
            })
            .collect()
    }

    /// ... and of the record of queue entry `entry`.
    fn load(&self, g: &mut Gen, tid64: &str, entry: &str) -> Vec<String> {
        let rec = Records::word(g, "%entries", entry);
        self.load_at(g, tid64, &rec)
    }

    fn store(&self, g: &mut Gen, tid64: &str, buf: &str, vals: &[String]) {
        for (j, v) in vals.iter().enumerate() {
            let dj = g.i64c((j * self.threads) as i64);
            let i = g.op(format!("arith.addi {tid64}, {dj} : i64"));
            let p = g.op(format!(
                "llvm.getelementptr {buf}[{i}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
            ));
            g.line(format!("llvm.store {v}, {p} : i64, !llvm.ptr<3>"));
        }
    }
}

/// With `--trace-mark` at `at`: the wait-end stamp of the task being emitted, taken here
/// (after the wait's, which it overwrites), so the trace's work slice starts at this point.
pub(crate) fn trace_mark(g: &mut Gen, at: TraceMark) {
    if g.trace_mark == Some(at) {
        if let Some(ent) = g.trace_entry.clone() {
            stamp(g, "%tracing", &ent, 1);
        }
    }
}

/// The profile: with a trace buffer, thread 0 stamps (globaltimer, ns) each entry's start
/// (k = 0), the end of its wait (1) and its end (2): three u64 per entry.
fn stamp(g: &mut Gen, tracing: &str, ent: &str, k: i64) {
    g.open(format!("scf.if {tracing} {{"));
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
}

/// What the codes' scratch came to: the most shared and global bytes a code takes, and the
/// codes with values in global scratch (number, kind, bytes).
struct ScratchUse {
    smem_max: u64,
    global_max: u64,
    global_codes: Vec<(usize, String, u64)>,
}

/// The loop of a CTA over its queue.
struct QueueLoop<'a> {
    body: &'a Body,
    program: &'a TaskProgram,
    codes: &'a Codes,
    plan: &'a KernelPlan,
    records: Records,
    weights: Option<BufferId>,
}

/// The SSA values of one pass of the queue loop that its sections share.
struct Entry {
    /// The record (in shared memory) and entry of the task running, and whether it is the
    /// queued one (else the task a last signal ran).
    recp: String,
    ent: String,
    is_first: String,
    /// The next queue entry's record (stored at the end of the queued task), the buffers
    /// for it and for a task a last signal runs.
    next_vals: Vec<String>,
    nxtp: String,
    runp: String,
    one: String,
    two: String,
    z: String,
    loop_types: &'static str,
}

impl QueueLoop<'_> {
    /// The queue loop: the first record into buffer 0, then per entry the task (and the
    /// tasks its last signals run, in turn).
    fn emit(&self, g: &mut Gen) -> Result<ScratchUse, String> {
        let two = g.i64c(2);
        let qi = g.op(format!("arith.muli %sm64, {two} : i64"));
        let first = Records::word(g, "%queues", &qi);
        let one = g.i64c(1);
        let qi1 = g.op(format!("arith.addi {qi}, {one} : i64"));
        let count = Records::word(g, "%queues", &qi1);
        // The loop's bounds in i32: they stay live across every code, in one register each.
        let lo = g.op(format!("arith.trunci {first} : i64 to i32"));
        let n = g.op(format!("arith.trunci {count} : i64 to i32"));
        let hi = g.op(format!("arith.addi {lo}, {n} : i32"));
        let one32 = g.op("arith.constant 1 : i32");
        let last32 = g.op(format!("arith.subi {hi}, {one32} : i32"));
        // The first record into buffer 0.
        let any = g.op(format!("arith.cmpi ult, {lo}, {hi} : i32"));
        g.open(format!("scf.if {any} {{"));
        let vals = self.records.load(g, "%tid64_e", &first);
        self.records.store(g, "%tid64_e", "%records", &vals);
        g.close("}");
        if self.plan.config.opaque_thread_number {
            // Word 0 of @claim holds 0: each pass adds it to the thread's number
            // (`emit_thread_values`).
            g.open("scf.if %is_t0_e {");
            let z32 = g.op("arith.constant 0 : i32");
            g.line(format!("llvm.store {z32}, %claim : i32, !llvm.ptr<3>"));
            g.close("}");
        }
        g.barrier();
        let e = g.fresh();
        g.open(format!("scf.for {e} = {lo} to {hi} step {one32} : i32 {{"));
        g.thread_per_case = self.plan.config.opaque_thread_number;
        emit_thread_values(g, &pass_name(g, ""), "pass");
        let e64 = g.op(format!("arith.extui {e} : i32 to i64"));
        // Entry k of the queue uses buffer k mod 2; a task run on a last signal, buffer 2.
        let rel = g.op(format!("arith.subi {e}, {lo} : i32"));
        let rel = g.op(format!("arith.extui {rel} : i32 to i64"));
        let par = g.op(format!("arith.andi {rel}, {one} : i64"));
        let other = g.op(format!("arith.xori {par}, {one} : i64"));
        let rec_len = self.records.per_thread * self.records.threads;
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
        stamp(g, &pass_name(g, "%tracing"), &e64, 0);
        // The next entry's record is loaded now and stored at the end of this task (the last
        // entry loads its own again).
        let nx = g.op(format!("arith.addi {e}, {one32} : i32"));
        let nx = g.op(format!("arith.minui {nx}, {last32} : i32"));
        let nx = g.op(format!("arith.extui {nx} : i32 to i64"));
        let next_vals = self.records.load(g, &pass_name(g, "%tid64"), &nx);
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
        stamp(g, &pass_name(g, "%tracing"), &ent, 0);
        g.close("}");
        let z = g.i64c(0);
        let en = Entry {
            recp: rp,
            ent,
            is_first,
            next_vals,
            nxtp,
            runp,
            one,
            two,
            z,
            loop_types,
        };
        let scratch = self.emit_task(g, &en)?;
        g.close("}");
        g.close("}");
        Ok(scratch)
    }

    /// One task of the loop: its prefetches, the switch over the codes (each waits on the
    /// task's events where it is ready to), the next record's copy, and its signals.
    fn emit_task(&self, g: &mut Gen, en: &Entry) -> Result<ScratchUse, String> {
        let (recp, one, two, z) = (&en.recp, &en.one, &en.two, &en.z);
        let code = Records::sword(g, recp, z);
        let npf = Records::sword(g, recp, one);
        self.emit_prefetch(g, recp, &npf, one, two);
        // Where the waits start: after the prefetch spans.
        let pf2 = g.op(format!("arith.muli {npf}, {two} : i64"));
        let wbase_at = g.op(format!("arith.addi {pf2}, {two} : i64"));
        let nw = Records::sword(g, recp, &wbase_at);
        let wait = Wait {
            config: &self.plan.config,
            nw: nw.clone(),
            wbase_at: wbase_at.clone(),
            recp,
            ent: &en.ent,
            one,
            two,
        };
        // Where the signals and the parameters start: the count, whether one runs a task,
        // four words a signal.
        let w2n = g.op(format!("arith.muli {nw}, {two} : i64"));
        let sat = g.op(format!("arith.addi {w2n}, {wbase_at} : i64"));
        let sat = g.op(format!("arith.addi {sat}, {one} : i64"));
        let ns_count = Records::sword(g, recp, &sat);
        let sat1 = g.op(format!("arith.addi {sat}, {one} : i64"));
        let runs = Records::sword(g, recp, &sat1);
        let sat2 = g.op(format!("arith.addi {sat1}, {one} : i64"));
        let four = g.i64c(4);
        let s4 = g.op(format!("arith.muli {ns_count}, {four} : i64"));
        let pat = g.op(format!("arith.addi {sat2}, {s4} : i64"));
        let params_p = g.op(format!(
            "llvm.getelementptr {recp}[{pat}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
        ));
        // The record of the task this one's last signal may run, loaded while it computes.
        let runs_b = g.op(format!("arith.cmpi ne, {runs}, {z} : i64"));
        let per_thread = self.records.per_thread;
        let run_vals: Vec<String> = (0..per_thread).map(|_| g.fresh()).collect();
        let run_types = vec!["i64"; per_thread].join(", ");
        g.open(format!(
            "{} = scf.if {runs_b} -> ({run_types}) {{",
            run_vals.join(", ")
        ));
        let rr = g.op(format!("arith.subi {runs}, {one} : i64"));
        let vals = self.records.load_at(g, &pass_name(g, "%tid64"), &rr);
        g.line(format!("scf.yield {} : {run_types}", vals.join(", ")));
        g.close("} else {");
        g.indent += 1;
        let zeros: Vec<String> = (0..per_thread).map(|_| z.clone()).collect();
        g.line(format!("scf.yield {} : {run_types}", zeros.join(", ")));
        g.close("}");
        g.trace_entry = Some(en.ent.clone());
        let scratch = self.emit_switch(g, &code, &params_p, &wait)?;
        // The next record into the other buffer (its last reader, the previous task's
        // signal, is done: thread 0 passed this task's wait barrier after it).
        g.open(format!("scf.if {} {{", en.is_first));
        self.records
            .store(g, &pass_name(g, "%tid64"), &en.nxtp, &en.next_vals);
        g.close("}");
        g.barrier();
        stamp(g, &pass_name(g, "%tracing"), &en.ent, 2);
        let signals = Signals {
            ns_count,
            sat2,
            four,
            runs_b,
            run_vals,
        };
        self.emit_signals(g, en, &signals);
        Ok(scratch)
    }

    /// Asks L2 for the weights the record names (`npf` spans), before the wait.
    fn emit_prefetch(&self, g: &mut Gen, recp: &str, npf: &str, one: &str, two: &str) {
        let Some(wb) = self.weights.filter(|_| self.plan.config.prefetch_bytes > 0) else {
            return;
        };
        let wbase = format!("%b{}", wb.index());
        let ni = g.op(format!("arith.index_cast {npf} : i64 to index"));
        let i = g.fresh();
        let tid = pass_name(g, "%tid");
        g.open(format!("scf.for {i} = {tid} to {ni} step %nthreads {{"));
        let i64_ = g.op(format!("arith.index_cast {i} : index to i64"));
        let at = g.op(format!("arith.muli {i64_}, {two} : i64"));
        let at = g.op(format!("arith.addi {at}, {two} : i64"));
        let off = Records::sword(g, recp, &at);
        let at1 = g.op(format!("arith.addi {at}, {one} : i64"));
        let len = Records::sword(g, recp, &at1);
        let len32 = g.op(format!("arith.trunci {len} : i64 to i32"));
        let p = g.op(format!(
            "llvm.getelementptr {wbase}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
        ));
        g.line(format!(
            "llvm.inline_asm has_side_effects \"cp.async.bulk.prefetch.L2.global [$0], $1;\", \"l,r\" {p}, {len32} : (!llvm.ptr<1>, i32) -> ()"
        ));
        g.close("}");
    }

    /// The switch over the codes: each case the code of its tasks (which waits where the
    /// plan lets it).
    fn emit_switch(
        &self,
        g: &mut Gen,
        code: &str,
        params_p: &str,
        wait: &Wait,
    ) -> Result<ScratchUse, String> {
        let code_idx = g.op(format!("arith.index_cast {code} : i64 to index"));
        g.open(format!("scf.index_switch {code_idx}"));
        let mut scratch = ScratchUse {
            smem_max: 0,
            global_max: 0,
            global_codes: Vec::new(),
        };
        for (c, (example, code)) in self.codes.first.iter().zip(&self.plan.codes).enumerate() {
            let task = &self.program.graph.tasks[*example];
            g.open(format!("case {c} {{"));
            g.line(format!(
                "// code {c}: {} (group {} result {}), like {example}",
                task.kind, task.group, task.output
            ));
            if g.thread_per_case {
                emit_thread_values(g, "", &format!("tid of code {c}"));
            }
            let shape = self.codes.shape(self.body, self.program, c)?;
            emit_code(g, self.codes, &shape, code, params_p, &|g| wait.emit(g))
                .map_err(|e| format!("{example} ({}): {e}", task.kind))?;
            scratch.global_max = scratch.global_max.max(code.scratch);
            scratch.smem_max = scratch.smem_max.max(code.smem);
            if code.scratch > 0 {
                scratch
                    .global_codes
                    .push((c, task.kind.clone(), code.scratch));
            }
            g.line("scf.yield");
            g.close("}");
        }
        g.open("default {");
        g.line("scf.yield");
        g.close("}");
        Ok(scratch)
    }

    /// Signal: fence, then one relaxed add per counter (a release pattern), or release adds.
    /// An event whose last signal runs a task: an add that returns the count (acquire and
    /// release); the task that makes it ready leaves the task's entry in @claim (its record
    /// is already loaded); the CTA then runs it from buffer 2.
    fn emit_signals(&self, g: &mut Gen, en: &Entry, s: &Signals) {
        let fences = self.plan.config.event_fences;
        let (recp, one, z) = (&en.recp, &en.one, &en.z);
        let none = g.i64c(-1);
        let claim1 = g.op(format!(
            "llvm.getelementptr %claim[{one}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
        ));
        g.open(format!("scf.if {} {{", pass_name(g, "%is_t0")));
        g.open(format!("scf.if {} {{", s.runs_b));
        g.line(format!("llvm.store {none}, {claim1} : i64, !llvm.ptr<3>"));
        g.close("}");
        if fences {
            g.line("llvm.fence syncscope(\"device\") release");
        }
        let nsi = g.op(format!("arith.index_cast {} : i64 to index", s.ns_count));
        let s_ = g.fresh();
        g.open(format!("scf.for {s_} = %c0_idx to {nsi} step %c1_idx {{"));
        let s64 = g.op(format!("arith.index_cast {s_} : index to i64"));
        let s4 = g.op(format!("arith.muli {s64}, {} : i64", s.four));
        let si = g.op(format!("arith.addi {}, {s4} : i64", s.sat2));
        let sev = Records::sword(g, recp, &si);
        let si1 = g.op(format!("arith.addi {si}, {one} : i64"));
        let target = Records::sword(g, recp, &si1);
        let si2 = g.op(format!("arith.addi {si1}, {one} : i64"));
        let run_rec = Records::sword(g, recp, &si2);
        let si3 = g.op(format!("arith.addi {si2}, {one} : i64"));
        let run_ent = Records::sword(g, recp, &si3);
        let sp = g.op(format!(
            "llvm.getelementptr %counters[{sev}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i32"
        ));
        let one32 = g.op("arith.constant 1 : i32");
        let plain = g.op(format!("arith.cmpi slt, {run_rec}, {z} : i64"));
        g.open(format!("scf.if {plain} {{"));
        if fences {
            g.op(format!(
                "llvm.atomicrmw add {sp}, {one32} monotonic : !llvm.ptr<1>, i32"
            ));
        } else {
            // A release add: it orders every write the barrier above made visible to thread
            // 0. (Inline PTX: LLVM's NVPTX backend drops the ordering of an atomicrmw.)
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
        g.open(format!("{next_ent} = scf.if {} -> (i64) {{", s.runs_b));
        g.barrier();
        let ce = g.op(format!("llvm.load {claim1} : !llvm.ptr<3> -> i64"));
        let claimed = g.op(format!("arith.cmpi sge, {ce}, {z} : i64"));
        g.open(format!("scf.if {claimed} {{"));
        self.records
            .store(g, &pass_name(g, "%tid64"), &en.runp, &s.run_vals);
        g.barrier();
        g.close("}");
        g.line(format!("scf.yield {ce} : i64"));
        g.close("} else {");
        g.indent += 1;
        g.line(format!("scf.yield {none} : i64"));
        g.close("}");
        let no = g.op("arith.constant false");
        g.line(format!(
            "scf.yield {}, {next_ent}, {no} : {}",
            en.runp, en.loop_types
        ));
    }
}

/// The SSA values the signals of a task use: how many it has and where they start, whether
/// one runs a task, and that task's record.
struct Signals {
    ns_count: String,
    sat2: String,
    four: String,
    runs_b: String,
    run_vals: Vec<String>,
}

/// A task's wait, emitted by its code where it is ready to (after what the code loads before
/// it): a thread per counter spins on it, all at once (or thread 0 on each in turn), then
/// the barrier hands the acquires on to the CTA. (One thread polling them in turn paid an L2
/// round trip per counter after the last became ready.)
struct Wait<'a> {
    config: &'a KernelConfig,
    /// The number of waits, and the word where they start in the record `recp`.
    nw: String,
    wbase_at: String,
    recp: &'a str,
    ent: &'a str,
    one: &'a str,
    two: &'a str,
}

impl Wait<'_> {
    fn emit(&self, g: &mut Gen) {
        let parallel = self.config.parallel_waits;
        let (first, step) = if parallel {
            ("%tid", "%nthreads")
        } else {
            ("%c0_idx", "%c1_idx")
        };
        let (one, two) = (self.one, self.two);
        if !parallel {
            g.open("scf.if %is_t0 {");
        }
        let nwi = g.op(format!("arith.index_cast {} : i64 to index", self.nw));
        let w = g.fresh();
        g.open(format!("scf.for {w} = {first} to {nwi} step {step} {{"));
        let w64 = g.op(format!("arith.index_cast {w} : index to i64"));
        let w2 = g.op(format!("arith.muli {w64}, {two} : i64"));
        let w2 = g.op(format!("arith.addi {w2}, {} : i64", self.wbase_at));
        let wi = g.op(format!("arith.addi {w2}, {one} : i64"));
        let ev = Records::sword(g, self.recp, &wi);
        let wi1 = g.op(format!("arith.addi {wi}, {one} : i64"));
        let target = Records::sword(g, self.recp, &wi1);
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
        if self.config.poll_sleep_ns > 0 {
            let ns = g.op(format!(
                "arith.constant {} : i32",
                self.config.poll_sleep_ns
            ));
            g.line(format!("nvvm.nanosleep {ns}"));
        }
        g.line("scf.yield");
        g.close("}");
        if self.config.event_fences {
            g.line("llvm.fence syncscope(\"device\") acquire");
        }
        g.close("}");
        if !parallel {
            g.close("}");
        }
        g.barrier();
        stamp(g, "%tracing", self.ent, 1);
    }
}
