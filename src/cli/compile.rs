//! `mkc import` and `mkc compile`.

use super::{finish, write_output, LevelArg};
use clap::Args;
use mkc_driver::{CompileOptions, Level, ModelOptions, PipelineOptions, SplitK};
use mkc_ir::dialect::kernel::BoxExtents;
use mkc_ir::{ElemType, Target, TargetSpec};
use mkc_kernel::KernelOptions;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::LazyLock;

/// How to import a model (shared by `import`, `compile` and `run`).
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A checkpoint folder, a config.json, an .onnx file, or a .mlir module (IR at any level).
    pub model: PathBuf,
    /// Ignore any weights on disk: weights will be synthesized (deterministically) to run.
    #[arg(long)]
    pub random_weights: bool,
    /// KV-cache length (the longest context the step handles).
    #[arg(long, default_value_t = ModelOptions::default().ctx)]
    pub ctx: i64,
    /// Element type of activations and the KV cache.
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16", "f16"])]
    pub compute: String,
    /// Store the model's matrices (projections, embedding, LM head) in one of ggml's block
    /// formats: quantized as they are loaded (ggml's reference quantization), read by the
    /// kernel as blocks and dequantized in registers. Matrices whose rows are not whole
    /// blocks (32 values; 256 for q4_k and q6_k) keep their type.
    #[arg(long, value_parser = ["q8_0", "q4_0", "q4_1", "q4_k", "q6_k"])]
    pub quantize: Option<String>,
    /// Multiply q8_0, q4_0 and q4_1 weights (from --quantize or a GGUF file) by the
    /// activation rounded to 8 bits in blocks of 32, as llama.cpp does: the kernel then uses
    /// integer dot products (four products an instruction) instead of converting each weight
    /// to f32. Changes the arithmetic slightly; every engine rounds the same way.
    #[arg(long)]
    pub int8_activations: bool,
}

impl ModelArgs {
    pub fn options(&self) -> ModelOptions {
        ModelOptions {
            random_weights: self.random_weights,
            ctx: self.ctx,
            compute: ElemType::from_name(&self.compute).expect("clap checked it"),
            quantize: self
                .quantize
                .as_deref()
                .map(|q| mkc_ir::quant::BlockFormat::from_name(q).expect("clap checked it")),
            int8_activations: self.int8_activations,
        }
    }
}

/// The GPU to compile for (shared by `compile`, `run`, `check` and `tune`).
#[derive(Args, Clone)]
pub struct TargetArgs {
    /// The GPU: a preset of the target description every pass and the kernel read their
    /// machine numbers from (SMs, bandwidth, shared memory, ...); the printed IR carries it
    /// as `mkc.target = #mkc.target<...>`. Default: a .mlir module's own target, else h100.
    #[arg(long, value_parser = Target::PRESETS)]
    pub target: Option<String>,
    /// SMs to compile for (overrides the target's; the kernel runs one CTA on each).
    #[arg(long, value_name = "N")]
    pub sms: Option<u32>,
    /// Global-memory bandwidth, GB/s (overrides the target's measured copy bandwidth): the
    /// cost models and the floor in --stats.
    #[arg(long, value_name = "GB/s")]
    pub bandwidth: Option<f64>,
    /// Any other field of the target, overridden: FIELD=VALUE (repeatable), e.g.
    /// `--target-field task_overhead=4e-7`.
    #[arg(long = "target-field", value_name = "FIELD=VALUE")]
    pub fields: Vec<String>,
}

impl TargetArgs {
    pub fn spec(&self) -> Result<TargetSpec, String> {
        let mut spec = TargetSpec {
            preset: self.target.clone(),
            fields: Vec::new(),
        };
        if let Some(n) = self.sms {
            let max = mkc_ir::target::MAX_SMS;
            if n == 0 || u64::from(n) > max {
                return Err(format!("--sms must be from 1 to {max}, not {n}"));
            }
            spec.fields.push(("sms".into(), n.to_string()));
        }
        if let Some(gbs) = self.bandwidth {
            if !(gbs > 0.0 && gbs.is_finite()) {
                return Err(format!(
                    "--bandwidth must be a positive number of GB/s, not {gbs}"
                ));
            }
            spec.fields
                .push(("bandwidth".into(), format!("{:e}", gbs * 1e9)));
        }
        for f in &self.fields {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| format!("--target-field takes FIELD=VALUE, not '{f}'"))?;
            spec.fields
                .push((k.trim().to_string(), v.trim().to_string()));
        }
        spec.standalone()
            .map_err(|e| format!("--target-field: {e}"))?;
        Ok(spec)
    }
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Write the IR here instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

pub fn run_import(a: ImportArgs) -> ExitCode {
    let result = mkc_driver::import_model(&a.model.model, &a.model.options())
        .map(|b| mkc_ir::printer::print(&b));
    finish(result.and_then(|ir| write_output(a.output.as_deref(), &ir)))
}

/// The kernel's defaults, which the flags show.
static KERNEL: LazyLock<KernelOptions> = LazyLock::new(KernelOptions::default);

fn pick(on: bool, yes: &'static str, no: &'static str) -> &'static str {
    if on {
        yes
    } else {
        no
    }
}

#[derive(Args, Clone)]
pub struct CompileArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Write the IR here instead of stdout (a folder for --emit=artifact).
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// The level to stop at and print.
    #[arg(long, value_enum, default_value = "fused")]
    pub emit: LevelArg,
    /// Write one JSON object: the target, per pass its wall time, counters and notes,
    /// fused_groups, step_traffic (bytes a step reads and writes, and the bandwidth floor in
    /// ms), memory_plan (workspace arena with reuse, KV cache and packed weight regions), and
    /// with a task level the tasks and the schedule's estimate.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Replace the default pipeline of the --emit level.
    #[arg(long = "pass-pipeline")]
    pub pipeline: Option<String>,
    /// Schedule (and estimate) with measured task costs: a file `mkc tune` wrote.
    #[arg(long, value_name = "FILE")]
    pub cost_model: Option<PathBuf>,
    /// Decode attention over the context in N parts whose tiles run on different SMs, and a
    /// combine (the `split-attention` pass, flash-decoding); 1 keeps it whole, 0 picks the
    /// target's SMs / heads (at most 16). The parts cut the step's positions at run time, so
    /// short contexts spread too.
    #[arg(long, value_name = "N", default_value_t = PipelineOptions::default().attention_parts)]
    pub attention_parts: i64,
    /// The argmax of a long vector (the LM head's logits) as N parts' winners, each a run
    /// of the vector, and their combine (the `split-argmax` pass), so that its reads spread
    /// over tasks; 1 (the default) keeps it whole, 0 picks the most parts, at most the
    /// target's SMs, that cut it into equal runs of a multiple of 4 elements, each at least
    /// 256 long.
    #[arg(long, value_name = "N", default_value_t = PipelineOptions::default().argmax_parts)]
    pub argmax_parts: i64,
    /// Where attention's combine of its parts runs: `task`, tasks of its own, each run on
    /// the SM that finishes the last part of its heads (no wait of its own); `prologue`, in
    /// every task of the output projection.
    #[arg(long, value_name = "task|prologue", default_value = "task",
          value_parser = ["task", "prologue"])]
    pub attention_combine: String,
    /// Tiling: drop the waits another wait of the same task implies (release/acquire
    /// causality is transitive), and counters then unawaited (`tile{prune-waits}`).
    #[arg(long, value_name = "BOOL", default_value_t = PipelineOptions::default().prune_waits,
          action = clap::ArgAction::Set)]
    pub prune_waits: bool,
    /// Tiling: a task moving fewer bytes than this, with one wait, runs on its event's last
    /// signal on the signalling SM (no wait, no queue slot); attention's tasks never do
    /// (their work grows with the position); 0: only attention's combine does
    /// (`tile{last-signal-bytes}`).
    #[arg(long, value_name = "BYTES",
          default_value_t = PipelineOptions::default().last_signal_bytes)]
    pub last_signal_bytes: f64,
    /// Tiling: no task moves fewer bytes than this unless its result cannot be cut (a
    /// task that moves too little is all overhead); smaller lets small results (Qwen3's
    /// q/k norm and rope) spread over more SMs (`tile{min-tile-bytes}`).
    #[arg(long, value_name = "BYTES",
          default_value_t = PipelineOptions::default().min_tile_bytes)]
    pub min_tile_bytes: f64,
    /// Tiling: the same for groups without a heavy op (no weights to stream: Qwen3's q/k
    /// norm and rope), which may then spread over more SMs (`tile{min-light-tile-bytes}`).
    #[arg(long, value_name = "BYTES",
          default_value_t = PipelineOptions::default().min_light_tile_bytes)]
    pub min_light_tile_bytes: f64,
    /// Fusion: which residual add becomes a sum that tasks add their parts onto, in any
    /// order (`split-k` before `fuse`), so that its projection has no phase of its own:
    /// `attention`, each layer's output projection, added by attention's tasks (or its
    /// parts' combine's), each the part of its heads' lanes; `mlp`, the down projection,
    /// added by the gate/up tasks, each a slice of the intermediate vector (`--split-k`
    /// alone); `both`, the two (attention's tasks add onto the down projection's sum too,
    /// and each layer's q/k/v tasks copy its input as the two sums' start: three phases a
    /// layer); `none`, every projection a phase of its own.
    #[arg(long, value_name = "WHICH", num_args = 0..=1,
          default_value = PipelineOptions::default().split_k.name(),
          default_missing_value = "mlp",
          value_parser = clap::builder::PossibleValuesParser::new(SplitK::ALL.map(SplitK::name)))]
    pub split_k: String,
    /// Fusion: where a layer's K row is normalised per head (Qwen3's q/k norm), decode
    /// attention's tasks compute it (and the query's norm and rope) themselves instead of
    /// a group of their own between q/k/v and attention; the row then goes into the cache
    /// after attention has read the cache (`fuse{k-row}`).
    #[arg(long)]
    pub k_row: bool,
    /// Artifact: steps at positions below P run a second program compiled with attention
    /// unsplit (`short/` in the artifact: no combine phase, faster at short contexts),
    /// sharing the first's memory; 0: one program. Hugging Face models only (their step
    /// takes the position). Default: 192 for an artifact of such a model with the default
    /// pipeline and attention parts, else 0 (docs/PERF.md measures the threshold).
    #[arg(long, value_name = "P")]
    pub short_steps: Option<i64>,
    /// Artifact: steps at positions P and beyond run a third program with attention in the
    /// target's SMs / KV heads parts, at most 16 (`long/`: where parts x query heads
    /// outnumber the SMs, a tile holds a KV head's query heads, which share its loads:
    /// faster at long contexts, slower at short ones), sharing the first's memory; 0: none.
    /// Hugging Face models with grouped-query attention only. Default, for an artifact of
    /// such a model with the default pipeline and attention parts: the position where one
    /// layer's K cache reaches 2^20 values, when the caches hold it, else 0 (a fit to the
    /// models docs/PERF.md measures, not a derived rule).
    #[arg(long, value_name = "P")]
    pub long_steps: Option<i64>,
    #[command(flatten)]
    pub kernel: KernelArgs,
}

/// The megakernel's knobs (their defaults are [`KernelOptions::default`]).
#[derive(Args, Clone)]
pub struct KernelArgs {
    /// Megakernel: threads per CTA (a multiple of 32, at most the target's).
    #[arg(long, default_value_t = KERNEL.threads)]
    pub threads: u32,
    /// Megakernel: bytes of weights each task asks into L2 at its start (0: none): by
    /// default the next task's in the SM's queue (--prefetch), so they stream while this
    /// task waits and computes.
    #[arg(long, value_name = "BYTES", default_value_t = KERNEL.prefetch_bytes)]
    pub l2_prefetch: u64,
    /// Megakernel: whose weights a task asks into L2 before its wait: its own, or the next
    /// task's of its SM's queue (so they stream while this one waits and computes).
    #[arg(long, value_name = "own|next", default_value = pick(KERNEL.prefetch_next, "next", "own"),
          value_parser = ["own", "next"])]
    pub prefetch: String,
    /// Megakernel: slots of the shared-memory ring that matrix-vector products stream
    /// their weight rows through with bulk asynchronous copies (0: ordinary loads).
    #[arg(long, value_name = "N", default_value_t = KERNEL.stream_slots)]
    pub stream_slots: u32,
    /// Megakernel: bytes of one ring slot (whole weight rows; a 16-byte multiple).
    #[arg(long, value_name = "BYTES", default_value_t = KERNEL.slot_bytes)]
    pub slot_bytes: u32,
    /// Megakernel: registers per thread ptxas may use, above 256 threads (default: the
    /// target's register file of one SM over the threads; 0: ptxas decides).
    #[arg(long, value_name = "N")]
    pub max_registers: Option<u32>,
    /// Megakernel: weight rows a warp streams at once in a matrix-vector product (1 or 2;
    /// 2 loads each block of the input once for both, and keeps twice the loads in flight).
    #[arg(long, value_name = "N", default_value_t = KERNEL.matvec_rows)]
    pub matvec_rows: u32,
    /// Megakernel: a warp streams 2 weight rows at once in the products whose tasks give
    /// each warp at least N rows (an LM head's long run of rows); 0: --matvec-rows decides.
    #[arg(long, value_name = "N", default_value_t = KERNEL.rows_from)]
    pub matvec_rows_from: u32,
    /// Megakernel: bytes of shared memory for a task's intermediate values (a norm's
    /// output, rows before their epilogue); what does not fit, and all with 0, goes to a
    /// per-SM scratch region of global memory.
    #[arg(long, value_name = "BYTES", default_value_t = KERNEL.smem_scratch)]
    pub smem_scratch: u32,
    /// Megakernel: how matrix-vector products load their weights: evict-first (an L2
    /// evict-first policy, no L1 allocation: caches keep the KV cache and activations) or
    /// normal (plain loads).
    #[arg(long, value_name = "POLICY",
          default_value = pick(KERNEL.weights_evict_first, "evict-first", "normal"),
          value_parser = ["evict-first", "normal"])]
    pub weight_cache: String,
    /// Megakernel: 16-byte weight loads per lane a task issues before it waits on its
    /// events, for each of its matrix-vector products of bf16 weights (the first blocks of
    /// their rows, one row a warp, copied into shared memory), so weights stream while the
    /// SM waits for the previous phase. Whole rounds of the product's loop only: fewer
    /// loads than a round (4 a lane where K is a multiple of 1024) preload nothing; 0: none.
    #[arg(long, value_name = "N", default_value_t = KERNEL.preload)]
    pub preload: u32,
    /// Megakernel: the same for the first product of q8_0, q4_0 or q4_1 weights: its first
    /// pieces, at most its loop's first round, loaded into registers before the wait; 0: none.
    #[arg(long, value_name = "N", default_value_t = KERNEL.preload_blocks)]
    pub preload_blocks: u32,
    /// Megakernel: the same for the parts of a split-K product (--split-k): the first
    /// 16-byte loads of a thread's K range of the down weight (at most 4), copied into
    /// shared memory before the wait; 0: none.
    #[arg(long, value_name = "N", default_value_t = KERNEL.preload_split_k)]
    pub preload_split_k: u32,
    /// Megakernel: after its wait, a task asks into L1 the small inputs in global memory of
    /// the norms and ropes after its first op (attention's own q/k norms and rope with
    /// --k-row), so that their loads do not each wait for L2 in turn.
    #[arg(long)]
    pub prefetch_light_inputs: bool,
    /// Megakernel: how two products of one input row over the same rows (an MLP's gate and
    /// up, bf16 weights) run: paired (one loop, a warp taking a row of each at once, the
    /// loads of both in flight together) or apart (one after the other).
    #[arg(long, value_name = "MODE",
          default_value = pick(KERNEL.pair_products, "paired", "apart"),
          value_parser = ["paired", "apart"])]
    pub products: String,
    /// Megakernel: most 16-byte weight loads per lane a matrix-vector loop issues a round
    /// (1, 2, 4 or 8; fewer where K is not a multiple of 256 times it).
    #[arg(long, value_name = "N", default_value_t = KERNEL.matvec_unroll)]
    pub matvec_unroll: u32,
    /// Megakernel: the rounds of a matrix-vector loop over K (bf16 weights): fewest (the
    /// fewest rounds of at most --matvec-unroll loads that cover K, loads past K dropped)
    /// or whole (as many loads a round as divide K, one where none does).
    #[arg(long, value_name = "MODE",
          default_value = pick(KERNEL.fewest_rounds, "fewest", "whole"),
          value_parser = ["fewest", "whole"])]
    pub matvec_rounds: String,
    /// Megakernel: output lanes of decode attention a warp computes (1, 2, 4 or 8; its
    /// threads split the positions: fewer lanes, fewer positions a thread).
    #[arg(long, value_name = "N", default_value_t = KERNEL.attention_lanes)]
    pub attention_lanes: u32,
    /// Megakernel: how events order memory: fences (a device-scope release fence before a
    /// signal's relaxed add, an acquire fence after a wait) or release-acquire (release adds,
    /// acquire loads, no fences).
    #[arg(long, value_name = "ORDER",
          default_value = pick(KERNEL.event_fences, "fences", "release-acquire"),
          value_parser = ["fences", "release-acquire"])]
    pub event_order: String,
    /// Megakernel: how a task polls the counters it waits on: a thread each, all at once
    /// (parallel), or thread 0 one after another (serial: an L2 round trip for each
    /// counter after the last to become ready).
    #[arg(long, value_name = "MODE", default_value = pick(KERNEL.parallel_waits, "parallel", "serial"),
          value_parser = ["parallel", "serial"])]
    pub waits: String,
    /// Megakernel: when a task loads the scalars it reads from buffers no task of the step
    /// writes (the step's position): before-wait (while it waits: attention's addresses,
    /// which depend on the position, are known when the wait ends) or after-wait (where its
    /// ops use them: a round trip to L2 after the wait, since the wait's acquire empties L1).
    #[arg(long, value_name = "WHEN", default_value = pick(KERNEL.early_inputs, "before-wait", "after-wait"),
          value_parser = ["before-wait", "after-wait"])]
    pub step_inputs: String,
    /// Megakernel: nanoseconds a thread polling a counter sleeps between two loads of it
    /// (`nanosleep`, which sleeps up to twice that); 0: it loads again at once.
    #[arg(long, value_name = "NS", default_value_t = KERNEL.poll_sleep)]
    pub poll_sleep: u32,
    /// Megakernel: how the thread's number is read: loaded (by each code, plus a volatile
    /// load of a shared word holding 0, so that ptxas cannot hoist the codes' arithmetic on
    /// it out of the queue loop, where it would hold registers across every code), mov (once
    /// a pass, an opaque move of `%tid.x`, which stops LLVM, not ptxas), or auto (loaded,
    /// unless a product dequantizes blocks of quantized weights).
    #[arg(long, value_name = "HOW", default_value = KERNEL.thread_number.as_str(),
          value_parser = ["auto", "loaded", "mov"])]
    pub thread_number: String,
    /// Megakernel: where the extents of a task's boxes come from: record (every bound is a
    /// word of the task's record), constant (an extent every task of a code shares is a
    /// constant of the code, so its index arithmetic divides by constants, not by words
    /// read at run time) or split (constant, and the tasks of a code whose extents differ,
    /// rows split unevenly over the tasks, get a code for each set of extents).
    #[arg(long, value_name = "FROM", default_value = KERNEL.tile_extents.as_str(),
          value_parser = BoxExtents::NAMES)]
    pub tile_extents: String,
    /// Megakernel: where an RMS norm's weight comes from when it normalizes: staged (loaded
    /// into shared memory beside the sum of squares, one L2 round trip for both) or global
    /// (loaded then, a round trip of its own before the product that follows can start).
    #[arg(long, value_name = "MODE",
          default_value = pick(KERNEL.staged_norm_weights, "staged", "global"),
          value_parser = ["staged", "global"])]
    pub norm_weights: String,
    /// Megakernel: how an attention part whose tiles hold a KV head's query heads runs:
    /// online (one pass of online softmax: each block of 8 positions' K and V loaded
    /// together, scored for every head of the group at once) or phases (scores, then
    /// their max and sum, then the output, barriers between: three round trips).
    #[arg(long, value_name = "MODE",
          default_value = pick(KERNEL.attention_online, "online", "phases"),
          value_parser = ["online", "phases"])]
    pub attention_kernel: String,
    /// Megakernel, for profiling: where a traced task (`mkc bench --trace`) takes its
    /// wait-end stamp instead, so the trace's work slice starts there and its wait slice
    /// holds the wait and the code before: attention-scores (the end of attention's scores
    /// round), attention-stats (of its max and sum), input-rounded (of a dp4a product's
    /// input rounding to 8 bits; a task's last), op-N (the end of op N of every code that
    /// has one, its ops counted from 0). Off: after the wait.
    #[arg(long, value_name = "POINT")]
    pub trace_mark: Option<String>,
}

impl KernelArgs {
    pub fn options(&self) -> KernelOptions {
        KernelOptions {
            threads: self.threads,
            prefetch_bytes: self.l2_prefetch,
            prefetch_next: self.prefetch == "next",
            stream_slots: self.stream_slots,
            slot_bytes: self.slot_bytes,
            max_registers: self.max_registers,
            matvec_rows: self.matvec_rows,
            rows_from: self.matvec_rows_from,
            smem_scratch: self.smem_scratch,
            weights_evict_first: self.weight_cache == "evict-first",
            preload: self.preload,
            preload_blocks: self.preload_blocks,
            preload_split_k: self.preload_split_k,
            prefetch_light_inputs: self.prefetch_light_inputs,
            pair_products: self.products == "paired",
            fewest_rounds: self.matvec_rounds == "fewest",
            matvec_unroll: self.matvec_unroll,
            attention_lanes: self.attention_lanes,
            attention_online: self.attention_kernel == "online",
            event_fences: self.event_order == "fences",
            parallel_waits: self.waits == "parallel",
            poll_sleep: self.poll_sleep,
            early_inputs: self.step_inputs == "before-wait",
            thread_number: self.thread_number.clone(),
            tile_extents: self.tile_extents.clone(),
            staged_norm_weights: self.norm_weights == "staged",
            trace_mark: self.trace_mark.clone().unwrap_or_default(),
        }
    }
}

impl CompileArgs {
    pub fn options(&self) -> Result<CompileOptions, String> {
        Ok(CompileOptions {
            model: self.model.options(),
            target: self.target.spec()?,
            level: self.emit.0,
            pipeline: self.pipeline.clone(),
            passes: PipelineOptions {
                attention_parts: self.attention_parts,
                argmax_parts: self.argmax_parts,
                attention_combine: self.attention_combine.clone(),
                cost_model: self.cost_model.clone(),
                prune_waits: self.prune_waits,
                last_signal_bytes: self.last_signal_bytes,
                min_tile_bytes: self.min_tile_bytes,
                min_light_tile_bytes: self.min_light_tile_bytes,
                split_k: SplitK::from_name(&self.split_k).expect("clap checked it"),
                k_row: self.k_row,
                kernel: self.kernel.options(),
            },
            short_steps: self.short_steps,
            long_steps: self.long_steps,
        })
    }
}

pub fn run_compile(a: CompileArgs) -> ExitCode {
    finish((|| {
        let o = a.options()?;
        let c = mkc_driver::compile(&a.model.model, &o)?;
        note_split_k_unused(&c, o.passes.split_k);
        note_k_row_unused(&c, o.passes.k_row);
        match o.level {
            Level::Mlir | Level::Ptx | Level::Artifact => emit_kernel(&a, &c)?,
            Level::ScheduleSvg => {
                let (Some(p), Some(e)) = (&c.program, &c.estimate) else {
                    return Err(
                        "--emit=schedule-svg needs a pipeline that ends with 'schedule'".into(),
                    );
                };
                let title = a.model.model.display().to_string();
                write_output(a.output.as_deref(), &mkc_driver::svg::render(p, e, &title))?;
            }
            _ => write_output(a.output.as_deref(), &mkc_ir::printer::print(&c.body))?,
        }
        if let Some(path) = &a.stats {
            let json = mkc_driver::stats::stats(&c)?.to_string();
            std::fs::write(path, json + "\n")
                .map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
        }
        Ok(())
    })())
}

/// Says so when `--split-k` was asked for and rewrote no residual add (block-quantized
/// weights, or a model without the pattern), rather than compiling the same kernel silently.
fn note_split_k_unused(c: &mkc_driver::Compiled, split_k: SplitK) {
    if split_k != SplitK::None && c.report.counter("split-k", "rewritten") == Some(0) {
        eprintln!(
            "mkc: note: --split-k {} rewrote no projection: it takes f32, f16 and bf16 weights only (block-quantized ones stay as they are)",
            split_k.name()
        );
    }
}

/// Says so when `--k-row` was asked for and took no K row apart (the model's K rows are not
/// normalised per head), rather than compiling the same kernel silently.
fn note_k_row_unused(c: &mkc_driver::Compiled, k_row: bool) {
    if k_row && c.report.counter("fuse", "k-rows") == Some(0) {
        eprintln!(
            "mkc: note: --k-row took no K row apart: it applies where a layer's K row is normalised per head before the cache (Qwen3's q/k norm), and this model's is not"
        );
    }
}

/// Writes the megakernel's MLIR, its PTX or the artifact folder, and says what it made.
fn emit_kernel(a: &CompileArgs, c: &mkc_driver::Compiled) -> Result<(), String> {
    let k = c.kernel.as_ref().ok_or("internal error: no kernel")?;
    if c.level == Level::Mlir {
        return write_output(a.output.as_deref(), &k.kernel.mlir);
    }
    let dir = match c.level {
        Level::Artifact => Some(a.output.as_deref().ok_or("--emit=artifact needs -o DIR")?),
        _ => None,
    };
    for alt in &c.alternates {
        report_kernel(&alt.compiled, a.kernel.smem_scratch);
        if let Some(dir) = dir {
            eprintln!("mkc: wrote the artifact to {dir}/{}", alt.name);
        }
    }
    report_kernel(c, a.kernel.smem_scratch);
    match dir {
        Some(dir) => {
            mkc_driver::artifact::write(std::path::Path::new(dir), c)?;
            eprintln!("mkc: wrote the artifact to {dir}");
            Ok(())
        }
        None => write_output(a.output.as_deref(), k.ptx.as_deref().unwrap_or_default()),
    }
}

/// The kernel's size, and the codes whose intermediate values went to global scratch (each
/// costs a trip to L2 when read back).
fn report_kernel(c: &mkc_driver::Compiled, smem_scratch: u32) {
    let Some(k) = &c.kernel else {
        return;
    };
    eprintln!(
        "mkc: kernel: {} task codes ({} streamed matvecs), {} lines of MLIR -> {} bytes of PTX in {:.2} s",
        k.kernel.codes,
        k.kernel.streamed,
        k.kernel.mlir.lines().count(),
        k.ptx.as_ref().map_or(0, String::len),
        k.seconds
    );
    if !k.kernel.global_scratch.is_empty() {
        let mut codes = k.kernel.global_scratch.clone();
        codes.sort_by_key(|c| std::cmp::Reverse(c.2));
        let mut list: Vec<String> = codes
            .iter()
            .take(4)
            .map(|(c, kind, bytes)| format!("code {c} ({kind}) {bytes} bytes"))
            .collect();
        if codes.len() > 4 {
            list.push(format!("{} more", codes.len() - 4));
        }
        eprintln!(
            "mkc: note: intermediate values in global scratch, read back from L2: {}; --smem-scratch {smem_scratch} is the shared budget",
            list.join(", ")
        );
    }
}
