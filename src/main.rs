//! `mkc`: the command-line driver. Each subcommand is a thin layer over a library crate.

mod check;
mod onnx_test;
mod svg;

use clap::{Args, Parser, Subcommand};
use mkc_passes::driver::{opt, OptConfig};
use mkc_passes::Instrumentation;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// The megakernel's default knobs (here, not in `mkc-lowering`, which the runtime-only
/// build does not have).
mod kernel_defaults {
    pub const THREADS: u32 = 512;
    pub const PREFETCH_BYTES: u64 = 65536;
    pub const PREFETCH: &str = "next";
    pub const STREAM_SLOTS: u32 = 0;
    pub const SLOT_BYTES: u32 = 32 << 10;
    pub const MATVEC_ROWS: u32 = 1;
    pub const SMEM_SCRATCH: u32 = 96 << 10;
    pub const WEIGHT_CACHE: &str = "evict-first";
    pub const PRELOAD: u32 = 0;
    pub const MATVEC_UNROLL: u32 = 4;
    pub const ATTENTION_LANES: u32 = 2;
    pub const EVENT_ORDER: &str = "release-acquire";
    pub const WAITS: &str = "parallel";
    pub const NORM_WEIGHTS: &str = "staged";
    pub const ATTENTION_KERNEL: &str = "online";
}

/// mkc compiles a whole LLM decode step into one persistent GPU kernel (a megakernel).
///
/// Levels: tensor graph (`tg` dialect) -> e-graph fusion -> tile-level tasks with events ->
/// schedule (SMs, queues, memory) -> MLIR gpu/nvvm -> PTX -> one kernel launch per step.
#[derive(Parser)]
#[command(name = "mkc", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse IR, run a pass pipeline on it and print the result (like mlir-opt).
    ///
    /// Reads MLIR syntax (generic op form; `module`, `func.func` and `return` also in their
    /// pretty forms), verifies it, runs `--pass-pipeline`, verifies after every pass and
    /// prints the module to stdout (or `-o`). Errors are printed as
    /// `file:line:col: error: message` with the source line, and exit with status 1.
    Opt(OptArgs),
    /// Import a model into the tensor level (`tg` dialect) and print it.
    ///
    /// MODEL is a Hugging Face checkpoint folder (config.json + model.safetensors, or
    /// sharded with model.safetensors.index.json), a bare config.json (shapes only: enough to
    /// compile), or an .onnx file. Checkpoints are checked tensor by tensor against the
    /// config. The result is the decode step: (token, position, KV caches, weights) ->
    /// (logits, updated caches); weights are arguments named by their checkpoint names.
    Import(ImportArgs),
    /// Compile a model: import, then the default pipeline up to the --emit level.
    ///
    /// --emit=tensor: canonicalize, cse, dce. --emit=fused: canonicalize, fuse (equality
    /// saturation, fusion rules, cost model), cse, dce: one fused.group per task kind.
    /// --emit=tasks adds `tile` (every group's results cut into tasks with exact byte ranges and
    /// events; a task.graph next to the function), --emit=schedule adds `schedule` (SM and
    /// queue slot per task; --sms N), --emit=schedule-svg draws it; --emit=mlir|ptx generate
    /// the megakernel, --emit=artifact -o DIR writes what `mkc bench/check/run --engine gpu`
    /// load (PTX, task tables, the scheduled program, config, manifest).
    /// --stats FILE writes one JSON object with per-pass wall times and counters (for fuse:
    /// e-nodes, e-classes, iterations, stop reason, rule hits, cost before and after),
    /// "fused_groups", and "step_traffic": the bytes a step must read (weights, the embedding
    /// row it looks up, full KV caches; cache_bytes_per_position for shorter contexts) and
    /// writes, and floor_ms = read_bytes / --bandwidth; with a task level, "tasks" (counts,
    /// tasks per kind, and the schedule's estimate: step, floor, critical path, busy time per
    /// SM).
    Compile(Box<CompileArgs>),
    /// Generate tokens greedily with a Hugging Face model (checkpoint, or config with
    /// --random-weights).
    ///
    /// Feeds the prompt one position at a time through the decode step, then appends the
    /// step's own argmax token until --max-new-tokens; prints the tokens as they come and the
    /// tokens/s at the end (and the text, when a tokenizer.json is beside the model).
    /// --engine interp runs the step on the CPU reference interpreter (--level fused: the
    /// fused IR); --engine sim the scheduled program on the GPU simulator; --engine gpu a
    /// compiled artifact (--artifact DIR) on the GPU, which computes each step's argmax.
    Run(RunArgs),
    /// Check a model's logits against a fixture's references (teacher-forced).
    ///
    /// Feeds the fixture's `tokens_bf16` one position at a time through the decode step and
    /// compares each position's logits with row i of `logits_f32` from
    /// reference.safetensors. The last line is one JSON object:
    /// {"engine", "frontend", "positions", "max_rel_err", "argmax_agree"}. Exits 0 only
    /// when max_rel_err <= the engine's tolerance and enough argmax agree: interp 1e-3 and
    /// all; sim (the scheduled program on the simulator; --seeds N interleavings, the worst
    /// reported) and gpu (an artifact on the GPU, beside the simulator, whose logits must be
    /// within 1e-2 of the GPU's) 2e-2 and all but one.
    Check(CheckArgs),
    /// Run ONNX backend test cases on the reference interpreter.
    ///
    /// Each DIR holds model.onnx and test_data_set_N/{input_K.pb, output_K.pb}, as in the
    /// ONNX project's backend node tests. Prints a line per failure with the reason, and last
    /// `N passed, M failed, K skipped` (skipped: a cleanly reported unsupported element type,
    /// such as float8 or string). Exits 1 when any case fails.
    OnnxTest(OnnxTestArgs),
    /// Show the CUDA device and, with --bandwidth, measure its copy bandwidth.
    ///
    /// Prints one JSON object: name, compute capability, SMs, memory, shared memory per
    /// block, and (with --bandwidth) the median device-to-device copy bandwidth (read + write
    /// bytes per second, CUDA events), the denominator of the memory floor; with --ptx, the
    /// result of running the example kernel lowered by `mlir-to-ptx`. Exits 1 with the
    /// reason when there is no driver or device.
    GpuInfo(GpuInfoArgs),
    /// Time the decode step of a compiled artifact on the GPU.
    ///
    /// Loads ARTIFACT (`mkc compile MODEL --emit=artifact -o DIR`) with the checkpoint's
    /// weights (--weights) or random ones, writes one token at position --pos (the KV cache
    /// then holds --pos earlier positions), launches --warmup steps, then times --steps
    /// launches with CUDA events. Prints one JSON line: median ms per step, the bytes the
    /// cost model says a step moves, the achieved GB/s, and that as a share of the measured
    /// device copy bandwidth.
    Bench(BenchArgs),
    /// Fit a cost model to a profiled step, for the scheduler.
    ///
    /// Reads a trace from `mkc bench ARTIFACT --trace TRACE` and fits, per task kind, the
    /// measured work time of its tasks to `fixed + bytes / rate` (least squares). Writes
    /// {"kinds": {KIND: {"fixed_us", "gbps_per_sm", "tasks"}}}, which
    /// `schedule{cost-model=FILE}` uses instead of the bandwidth share, so the schedule's
    /// estimate (compile --stats) is in measured terms.
    Tune(TuneArgs),
    /// Lower an MLIR file holding `gpu.module`s to PTX, in process (built with `mlir`).
    ///
    /// Runs MLIR's NVVM pipeline (nvvm-attach-target, convert-gpu-to-nvvm, gpu-to-llvm,
    /// gpu-module-to-binary{format=isa}) and prints the PTX of each module. Errors are MLIR's
    /// own diagnostics with their locations.
    #[cfg(feature = "mlir")]
    MlirToPtx(MlirToPtxArgs),
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Write the IR here instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
}

/// The level `compile` stops at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Emit {
    /// The tensor level, cleaned up (canonicalize, cse, dce).
    Tensor,
    /// After fusion: one fused.group per megakernel task kind.
    Fused,
    /// After tiling: the fused IR plus a task.graph (tasks, byte ranges, events, placement).
    Tasks,
    /// After scheduling: every task with its SM and queue slot.
    Schedule,
    /// The schedule as an SVG picture (-o FILE.svg): per-SM timeline and one layer's event graph.
    ScheduleSvg,
    /// The megakernel as MLIR (gpu, scf, arith, llvm, nvvm dialects).
    Mlir,
    /// The megakernel's PTX (sm_90a).
    Ptx,
    /// A folder (-o DIR) the runtime runs: PTX, the scheduled program, a manifest.
    Artifact,
}

impl Emit {
    fn name(self) -> &'static str {
        match self {
            Emit::Tensor => "tensor",
            Emit::Fused => "fused",
            Emit::Tasks => "tasks",
            Emit::Schedule => "schedule",
            Emit::ScheduleSvg => "schedule-svg",
            Emit::Mlir => "mlir",
            Emit::Ptx => "ptx",
            Emit::Artifact => "artifact",
        }
    }
    /// The level's pipeline, its passes' options set from the command line's.
    fn pipeline(self, o: &PipelineOptions) -> String {
        let mut passes = vec!["canonicalize".to_string()];
        if self != Emit::Tensor {
            passes.push(format!(
                "split-attention{{parts={} sms={}}}",
                o.attention_parts, o.sms
            ));
            passes.push(format!("fuse{{combine={}}}", o.attention_combine));
        }
        passes.extend(["cse".to_string(), "dce".to_string()]);
        if !matches!(self, Emit::Tensor | Emit::Fused) {
            // Options at their defaults stay out of the pipeline's text.
            use std::fmt::Write as _;
            let mut tile = format!("sms={}", o.sms);
            if !o.prune_waits {
                tile.push_str(" prune-waits=false");
            }
            if o.last_signal_bytes != 16384.0 {
                write!(tile, " last-signal-bytes={}", o.last_signal_bytes).unwrap();
            }
            passes.push(format!("tile{{{tile}}}"));
        }
        if !matches!(self, Emit::Tensor | Emit::Fused | Emit::Tasks) {
            passes.push(match &o.cost_model {
                Some(f) => format!("schedule{{sms={} cost-model={}}}", o.sms, f.display()),
                None => format!("schedule{{sms={}}}", o.sms),
            });
        }
        format!("builtin.module({})", passes.join(","))
    }
}

/// What the command line sets in the default pipelines.
struct PipelineOptions {
    sms: usize,
    attention_parts: i64,
    attention_combine: String,
    cost_model: Option<PathBuf>,
    prune_waits: bool,
    last_signal_bytes: f64,
}

impl PipelineOptions {
    fn new(sms: usize) -> PipelineOptions {
        PipelineOptions {
            sms,
            attention_parts: 0,
            attention_combine: "task".into(),
            cost_model: None,
            prune_waits: true,
            last_signal_bytes: 16384.0,
        }
    }
}

#[derive(Args, Clone)]
struct CompileArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Write the IR here instead of stdout (a folder for --emit=artifact).
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// The level to stop at and print.
    #[arg(long, value_enum, default_value = "fused")]
    emit: Emit,
    /// Write one JSON object: per pass its wall time, counters and notes, fused_groups, and
    /// step_traffic (bytes a step reads and writes, and the bandwidth floor in ms), and
    /// memory_plan (workspace arena with reuse, KV cache and packed weight regions).
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Replace the default pipeline of the --emit level.
    #[arg(long = "pass-pipeline")]
    pipeline: Option<String>,
    /// Global-memory bandwidth (GB/s) for the step-time floor in --stats; the default is the
    /// H100 copy bandwidth `mkc gpu-info --bandwidth` measured (docs/PERF.md).
    #[arg(long, value_name = "GB/s", default_value_t = 3013.0)]
    bandwidth: f64,
    /// SMs to tile and schedule for (--emit=tasks|schedule|schedule-svg).
    #[arg(long, default_value_t = 132)]
    sms: usize,
    /// Schedule (and estimate) with measured task costs: a file `mkc tune` wrote.
    #[arg(long, value_name = "FILE")]
    cost_model: Option<PathBuf>,
    /// Decode attention over the context in N parts whose tiles run on different SMs, and a
    /// combine (the `split-attention` pass, flash-decoding); 1 keeps it whole, 0 picks
    /// --sms / heads (at most 16). The parts cut the step's positions at run time, so short
    /// contexts spread too.
    #[arg(long, value_name = "N", default_value_t = 0)]
    attention_parts: i64,
    /// Where attention's combine of its parts runs: `task`, tasks of its own, each run on
    /// the SM that finishes the last part of its heads (no wait of its own); `prologue`, in
    /// every task of the output projection.
    #[arg(long, value_name = "task|prologue", default_value = "task",
          value_parser = ["task", "prologue"])]
    attention_combine: String,
    /// Megakernel: threads per CTA (a multiple of 32, at most 1024).
    #[arg(long, default_value_t = kernel_defaults::THREADS)]
    threads: u32,
    /// Megakernel: bytes of weights each task asks into L2 at its start (0: none): by
    /// default the next task's in the SM's queue (--prefetch), so they stream while this
    /// task waits and computes.
    #[arg(long, value_name = "BYTES", default_value_t = kernel_defaults::PREFETCH_BYTES)]
    l2_prefetch: u64,
    /// Megakernel: whose weights a task asks into L2 before its wait: its own, or the next
    /// task's of its SM's queue (so they stream while this one waits and computes).
    #[arg(long, value_name = "own|next", default_value = kernel_defaults::PREFETCH,
          value_parser = ["own", "next"])]
    prefetch: String,
    /// Megakernel: slots of the shared-memory ring that matrix-vector products stream
    /// their weight rows through with bulk asynchronous copies (0: ordinary loads).
    #[arg(long, value_name = "N", default_value_t = kernel_defaults::STREAM_SLOTS)]
    stream_slots: u32,
    /// Megakernel: bytes of one ring slot (whole weight rows; a 16-byte multiple).
    #[arg(long, value_name = "BYTES", default_value_t = kernel_defaults::SLOT_BYTES)]
    slot_bytes: u32,
    /// Megakernel: registers per thread ptxas may use, above 256 threads (default: the
    /// whole register file of one CTA per SM, 65536 / threads; 0: ptxas decides).
    #[arg(long, value_name = "N")]
    max_registers: Option<u32>,
    /// Megakernel: weight rows a warp streams at once in a matrix-vector product (1 or 2;
    /// 2 loads each block of the input once for both, and keeps twice the loads in flight).
    #[arg(long, value_name = "N", default_value_t = kernel_defaults::MATVEC_ROWS)]
    matvec_rows: u32,
    /// Megakernel: bytes of shared memory for a task's intermediate values (a norm's
    /// output, rows before their epilogue); what does not fit, and all with 0, goes to a
    /// per-SM scratch region of global memory.
    #[arg(long, value_name = "BYTES", default_value_t = kernel_defaults::SMEM_SCRATCH)]
    smem_scratch: u32,
    /// Megakernel: how matrix-vector products load their weights: evict-first (an L2
    /// evict-first policy, no L1 allocation: caches keep the KV cache and activations) or
    /// normal (plain loads).
    #[arg(long, value_name = "POLICY", default_value = kernel_defaults::WEIGHT_CACHE,
          value_parser = ["evict-first", "normal"])]
    weight_cache: String,
    /// Megakernel: 16-byte weight loads per lane a task issues before it waits on its
    /// events (the first blocks of its first matrix-vector product's rows, one row a warp),
    /// so weights stream while the SM waits for the previous phase; 0: none.
    #[arg(long, value_name = "N", default_value_t = kernel_defaults::PRELOAD)]
    preload: u32,
    /// Megakernel: most 16-byte weight loads per lane a matrix-vector loop issues a round
    /// (1, 2, 4 or 8; fewer where K is not a multiple of 256 times it).
    #[arg(long, value_name = "N", default_value_t = kernel_defaults::MATVEC_UNROLL)]
    matvec_unroll: u32,
    /// Megakernel: output lanes of decode attention a warp computes (1, 2, 4 or 8; its
    /// threads split the positions: fewer lanes, fewer positions a thread).
    #[arg(long, value_name = "N", default_value_t = kernel_defaults::ATTENTION_LANES)]
    attention_lanes: u32,
    /// Megakernel: how events order memory: fences (a device-scope release fence before a
    /// signal's relaxed add, an acquire fence after a wait) or release-acquire (release adds,
    /// acquire loads, no fences).
    #[arg(long, value_name = "ORDER", default_value = kernel_defaults::EVENT_ORDER,
          value_parser = ["fences", "release-acquire"])]
    event_order: String,
    /// Megakernel: how a task polls the counters it waits on: a thread each, all at once
    /// (parallel), or thread 0 one after another (serial: an L2 round trip for each
    /// counter after the last to become ready).
    #[arg(long, value_name = "MODE", default_value = kernel_defaults::WAITS,
          value_parser = ["parallel", "serial"])]
    waits: String,
    /// Megakernel: where an RMS norm's weight comes from when it normalizes: staged (loaded
    /// into shared memory beside the sum of squares, one L2 round trip for both) or global
    /// (loaded then, a round trip of its own before the product that follows can start).
    #[arg(long, value_name = "MODE", default_value = kernel_defaults::NORM_WEIGHTS,
          value_parser = ["staged", "global"])]
    norm_weights: String,
    /// Megakernel: how an attention part whose tiles hold a KV head's query heads runs:
    /// online (one pass of online softmax: each block of 8 positions' K and V loaded
    /// together, scored for every head of the group at once) or phases (scores, then
    /// their max and sum, then the output, barriers between: three round trips).
    #[arg(long, value_name = "MODE", default_value = kernel_defaults::ATTENTION_KERNEL,
          value_parser = ["online", "phases"])]
    attention_kernel: String,
    /// Artifact: steps at positions below P run a second program compiled with attention
    /// unsplit (`short/` in the artifact: no combine phase, faster at short contexts),
    /// sharing the first's memory; 0: one program. Hugging Face models only (their step
    /// takes the position). Default: 192 for an artifact of such a model with the default
    /// pipeline and attention parts, else 0 (on an H100 unsplit attention was 0.4-3% faster
    /// below 192 positions, as fast at 192-256, and slower beyond: docs/PERF.md).
    #[arg(long, value_name = "P")]
    short_steps: Option<i64>,
    /// Artifact: steps at positions P and beyond run a third program with attention in
    /// --sms / KV heads parts, at most 16 (`long/`: where parts x query heads outnumber the
    /// SMs, a tile holds a KV head's query heads, which share its loads: faster at long
    /// contexts, slower at short ones), sharing the first's memory; 0: none. Hugging Face
    /// models with grouped-query attention only.
    /// Default, for an artifact of such a model with the default pipeline and attention
    /// parts: the position where one layer's K cache reaches 2^20 values, when the caches
    /// hold it, else 0 (on an H100 such tiles were 1-4% faster for Llama-3.1-8B and
    /// Qwen3-0.6B from 1024 positions, where they reach it, and 1-5% slower for
    /// Llama-3.2-1B, half their values a position, below 2048: docs/PERF.md).
    #[arg(long, value_name = "P")]
    long_steps: Option<i64>,
    /// Tiling: drop the waits another wait of the same task implies (release/acquire
    /// causality is transitive), and counters then unawaited (`tile{prune-waits}`).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    prune_waits: bool,
    /// Tiling: a task moving fewer bytes than this, with one wait, runs on its event's last
    /// signal on the signalling SM (no wait, no queue slot); attention's tasks never do
    /// (their work grows with the position); 0: only attention's combine does
    /// (`tile{last-signal-bytes}`).
    #[arg(long, value_name = "BYTES", default_value_t = 16384.0)]
    last_signal_bytes: f64,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt token ids, comma-separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "prompt")]
    prompt_ids: Vec<i64>,
    /// Prompt text, encoded with the model's tokenizer.json (which must be beside its
    /// config); the generated tokens are then decoded too.
    #[arg(long, conflicts_with = "prompt_ids")]
    prompt: Option<String>,
    /// Tokens to generate after the prompt.
    #[arg(long, default_value_t = 16)]
    max_new_tokens: usize,
    /// What runs the step.
    #[arg(long, value_enum, default_value = "interp")]
    engine: check::Engine,
    /// The IR level to run.
    #[arg(long, value_enum, default_value = "fused")]
    level: Emit,
    /// --engine gpu: the artifact compiled from this model (`--emit=artifact -o DIR`).
    #[arg(long, value_name = "DIR")]
    artifact: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// A fixture folder: config.json, model.safetensors, reference.safetensors.
    fixture: PathBuf,
    /// What computes the logits.
    #[arg(long, value_enum, default_value = "interp")]
    engine: check::Engine,
    /// Use the fixture's model.onnx (full-sequence forward) instead of its checkpoint.
    #[arg(long)]
    onnx: bool,
    /// The level to run: the imported tensor IR, or the fused IR (after `compile --emit=fused`'s pipeline).
    #[arg(long, value_enum, default_value = "tensor")]
    level: Emit,
    /// Run this pass pipeline on the imported IR before executing it (overrides --level).
    #[arg(long = "pass-pipeline")]
    pipeline: Option<String>,
    /// --engine sim: SMs to tile and schedule for.
    #[arg(long, default_value_t = 132)]
    sms: usize,
    /// --engine gpu: the artifact to run (`mkc compile FIXTURE --emit=artifact -o DIR`).
    #[arg(long, value_name = "DIR")]
    artifact: Option<PathBuf>,
    /// --engine sim: run the check once per seed 0..N (a seed picks the interleaving of
    /// the SM queues); the report is the worst run.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Print a line per position.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Args)]
struct TuneArgs {
    /// A trace from `mkc bench ARTIFACT --trace FILE`.
    trace: PathBuf,
    /// Write the cost model here instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
}

fn run_tune(a: TuneArgs) -> ExitCode {
    let result = (|| -> Result<String, String> {
        let text = std::fs::read_to_string(&a.trace)
            .map_err(|e| format!("cannot read '{}': {e}", a.trace.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a trace: {e}", a.trace.display()))?;
        let events = v
            .get("traceEvents")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| format!("{}: no traceEvents", a.trace.display()))?;
        let mut points: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
        for e in events.iter().filter(|e| e["cat"] == "task") {
            let (Some(kind), Some(dur), Some(bytes)) = (
                e["name"].as_str(),
                e["dur"].as_f64(),
                e["args"]["bytes"].as_f64(),
            ) else {
                return Err(format!(
                    "{}: a task event lacks name, dur or bytes",
                    a.trace.display()
                ));
            };
            points
                .entry(kind.to_string())
                .or_default()
                .push((bytes, dur * 1e-6));
        }
        if points.is_empty() {
            return Err(format!("{}: no task events", a.trace.display()));
        }
        let mut kinds = serde_json::Map::new();
        for (kind, pts) in &points {
            if let Some(c) = mkc_tasks::schedule::fit_kind(pts) {
                kinds.insert(
                    kind.clone(),
                    serde_json::json!({
                        "fixed_us": c.fixed_s * 1e6,
                        "gbps_per_sm": c.bytes_per_s / 1e9,
                        "tasks": pts.len(),
                    }),
                );
            }
        }
        // The kernel mkc generates today does not stream a task's weights before its wait.
        Ok(serde_json::to_string_pretty(&serde_json::json!({
            "kinds": kinds,
            "prefetch_bytes": 0,
            "event_latency_us": 1.0,
        }))
        .expect("json serialises")
            + "\n")
    })();
    match result.and_then(|t| write_output(a.output.as_deref(), &t)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Args)]
struct BenchArgs {
    /// The artifact folder.
    artifact: PathBuf,
    /// A checkpoint folder to take the weights from (default: random weights).
    #[arg(long, value_name = "DIR")]
    weights: Option<PathBuf>,
    /// The position the timed step writes (the KV cache holds this many earlier positions).
    #[arg(long, visible_alias = "ctx", default_value_t = 128)]
    pos: i64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Also profile one step: write its per-task timeline as a Chrome/Perfetto trace JSON
    /// here (and as an SVG picture beside it, FILE with .svg), and add time per task kind,
    /// the median time of each kind of phase (a group's first task start to the next
    /// group's), the median task and the median wait before a task of each kind, wait share
    /// and idle share per SM to the output.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

#[derive(Args)]
struct GpuInfoArgs {
    /// The device ordinal.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Also measure device-to-device copy bandwidth.
    #[arg(long)]
    bandwidth: bool,
    /// Bytes per copy for --bandwidth.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: usize,
    /// Timed runs for --bandwidth and --ptx (the median is reported).
    #[arg(long, default_value_t = 50)]
    iters: usize,
    /// Also load this PTX (from `mkc mlir-to-ptx examples/scale_kernel.mlir`), run its
    /// `scale` kernel on 2^24 floats, compare with the host and time it; exits 1 on any
    /// mismatch.
    #[arg(long, value_name = "FILE")]
    ptx: Option<PathBuf>,
}

#[derive(Args)]
struct OnnxTestArgs {
    /// Test case folders.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Also print passing and skipped cases.
    #[arg(long, short)]
    verbose: bool,
    /// Run this pass pipeline on each imported model before executing it (e.g. `fuse`): the
    /// suite then checks that the passes preserve every case's results.
    #[arg(long = "pass-pipeline", default_value = "")]
    pipeline: String,
}

#[cfg(feature = "mlir")]
#[derive(Args)]
struct MlirToPtxArgs {
    /// Input file; `-` or nothing reads stdin.
    #[arg(default_value = "-")]
    input: String,
    /// The target GPU architecture.
    #[arg(long, default_value = "sm_90a")]
    chip: String,
    /// Write the PTX here instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
}

#[derive(Args)]
struct OptArgs {
    /// Input file; `-` or nothing reads stdin.
    #[arg(default_value = "-")]
    input: String,
    /// The pass pipeline, e.g. `builtin.module(func.func(canonicalize,cse),dce)`.
    /// A pipeline without an anchor runs on the module. See --list-passes.
    #[arg(long = "pass-pipeline", short = 'p', default_value = "")]
    pipeline: String,
    /// Write the output here instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// List the available passes with their options and statistics, then exit.
    #[arg(long)]
    list_passes: bool,
    /// Print the IR (to stderr) before every pass.
    #[arg(long)]
    print_ir_before_all: bool,
    /// Print the IR (to stderr) after every pass.
    #[arg(long)]
    print_ir_after_all: bool,
    /// Print the IR before each run of pass P (repeatable, or comma-separated).
    #[arg(long = "print-ir-before", value_name = "P", value_delimiter = ',')]
    print_ir_before: Vec<String>,
    /// Print the IR after each run of pass P (repeatable, or comma-separated).
    #[arg(long = "print-ir-after", value_name = "P", value_delimiter = ',')]
    print_ir_after: Vec<String>,
    /// Print the IR after a pass only when the pass changed it.
    #[arg(long)]
    print_ir_after_change: bool,
    /// Report the wall time of every pass (to stderr).
    #[arg(long)]
    timing: bool,
    /// Report the counters each pass declares (to stderr).
    #[arg(long)]
    pass_statistics: bool,
    /// Do not verify the IR after each pass (the input is still verified).
    #[arg(long)]
    no_verify: bool,
    /// Accept ops of dialects mkc does not know.
    #[arg(long)]
    allow_unregistered_dialect: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Opt(a) => run_opt(a),
        Command::Import(a) => run_import(a),
        Command::Compile(a) => run_compile(*a),
        Command::Run(a) => run_generate(a),
        Command::Check(a) => run_check(a),
        Command::GpuInfo(a) => run_gpu_info(a),
        Command::Bench(a) => run_bench(a),
        Command::Tune(a) => run_tune(a),
        Command::OnnxTest(a) => {
            let (_, failed, _) = onnx_test::run_all(&a.dirs, a.verbose, &a.pipeline);
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        #[cfg(feature = "mlir")]
        Command::MlirToPtx(a) => run_mlir_to_ptx(a),
    }
}

#[cfg(feature = "mlir")]
fn run_mlir_to_ptx(a: MlirToPtxArgs) -> ExitCode {
    let result = read_input(&a.input).and_then(|(name, text)| {
        mkc_lowering::gpu_module_to_ptx(&text, &name, &a.chip).map_err(|e| e.to_string())
    });
    let result = result.and_then(|ptx| {
        if ptx.is_empty() {
            return Err("the input holds no gpu.module".to_string());
        }
        write_output(a.output.as_deref(), &ptx.concat())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_opt(a: OptArgs) -> ExitCode {
    if a.list_passes {
        print!("{}", mkc_driver::pass_registry().describe());
        return ExitCode::SUCCESS;
    }
    let (name, text) = match read_input(&a.input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mkc: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = OptConfig {
        pipeline: a.pipeline,
        instrumentation: Instrumentation {
            print_ir_before_all: a.print_ir_before_all,
            print_ir_after_all: a.print_ir_after_all,
            print_ir_before: a.print_ir_before,
            print_ir_after: a.print_ir_after,
            print_ir_after_change: a.print_ir_after_change,
            timing: a.timing,
            statistics: a.pass_statistics,
            verify_each: !a.no_verify,
        },
        verify: mkc_ir::verify::VerifyOptions {
            allow_unregistered: a.allow_unregistered_dialect,
        },
    };
    let out = opt(&name, &text, &config, &mkc_driver::pass_registry());
    eprint!("{}", out.log);
    match out.result {
        Ok(ir) => match write_output(a.output.as_deref(), &ir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mkc: error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(diags) => {
            eprint!("{diags}");
            ExitCode::FAILURE
        }
    }
}

/// How to import a model (shared by `import` and `compile`).
#[derive(Args, Clone)]
struct ModelArgs {
    /// A checkpoint folder, a config.json, an .onnx file, or a .mlir module (IR at any level).
    model: PathBuf,
    /// Ignore any weights on disk: weights will be synthesized (deterministically) to run.
    #[arg(long)]
    random_weights: bool,
    /// KV-cache length (the longest context the step handles).
    #[arg(long, default_value_t = 2048)]
    ctx: i64,
    /// Element type of activations and the KV cache.
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16", "f16"])]
    compute: String,
}

/// Imports a model into verified `tg` IR.
fn import_model(a: &ModelArgs) -> Result<mkc_ir::Body, String> {
    let registry = mkc_ir::Registry::with_all_dialects();
    if a.model.extension().is_some_and(|e| e == "mlir") {
        // IR at any level: parsed and verified, with diagnostics against the file.
        let text = std::fs::read_to_string(&a.model)
            .map_err(|e| format!("cannot read '{}': {e}", a.model.display()))?;
        let mut sources = mkc_ir::SourceMap::new();
        let name = a.model.display().to_string();
        return mkc_ir::parse_and_verify(&mut sources, &name, &text, &registry, Default::default())
            .map_err(|d| {
                mkc_ir::diag::render_all(&d, &sources)
                    .trim_end()
                    .to_string()
            });
    }
    let body = if a.model.extension().is_some_and(|e| e == "onnx") {
        use mkc_frontends::onnx::{import, ImportOptions, OnnxModel};
        let model = OnnxModel::open(&a.model).map_err(|e| e.to_string())?;
        import(&model, &ImportOptions::default())
            .map_err(|e| format!("{}: {e}", a.model.display()))?
    } else {
        let compute = mkc_ir::ElemType::from_name(&a.compute).expect("clap checked it");
        let model = mkc_frontends::HfModel::open(&a.model)?;
        let types = if a.random_weights {
            model
                .config
                .expected_weights()
                .into_iter()
                .map(|(n, _)| (n, model.config.dtype))
                .collect()
        } else {
            model.weight_types()
        };
        let opts = mkc_frontends::DecodeOptions {
            max_context: a.ctx,
            compute,
        };
        mkc_frontends::build_decode_step(&model.config, &types, &opts)?
    };
    if let Some(e) = mkc_ir::verify::verify(&body, &registry, Default::default()).first() {
        return Err(format!(
            "internal error: the imported IR does not verify: {}",
            e.message
        ));
    }
    Ok(body)
}

fn run_import(a: ImportArgs) -> ExitCode {
    let result = import_model(&a.model).map(|b| mkc_ir::printer::print(&b));
    match result.and_then(|ir| write_output(a.output.as_deref(), &ir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_compile(a: CompileArgs) -> ExitCode {
    let result = (|| -> Result<(), String> {
        let start = std::time::Instant::now();
        let mut body = import_model(&a.model)?;
        let import_s = start.elapsed().as_secs_f64();
        if !(a.bandwidth > 0.0 && a.bandwidth.is_finite()) {
            return Err(format!(
                "--bandwidth must be a positive number of GB/s, not {}",
                a.bandwidth
            ));
        }
        // Traffic is a property of the model, read at the tensor level before any pass.
        let func =
            mkc_ir::dialect::builtin::first_func(&body).ok_or("the model has no function")?;
        let traffic = mkc_tasks::traffic::step_traffic(&body, func)?;
        if a.sms == 0 {
            return Err("--sms must be at least 1".into());
        }
        let pipeline = a.pipeline.clone().unwrap_or_else(|| {
            a.emit.pipeline(&PipelineOptions {
                attention_parts: a.attention_parts,
                attention_combine: a.attention_combine.clone(),
                cost_model: a.cost_model.clone(),
                prune_waits: a.prune_waits,
                last_signal_bytes: a.last_signal_bytes,
                ..PipelineOptions::new(a.sms)
            })
        });
        // The other programs: the same step with attention unsplit for short steps, in
        // tiles of a KV head's query heads for long ones, compiled first into `short/` and
        // `long/` (the main artifact's manifest then points at them).
        // They compile on a thread of their own while the main program's passes run.
        let imported = body.clone();
        let (alternates, report) = std::thread::scope(|s| {
            // (The main thread's stack size: the passes recurse as deep on either.)
            let alternates = std::thread::Builder::new()
                .stack_size(8 << 20)
                .spawn_scoped(s, || compile_alternates(&a, &imported));
            let report = mkc_driver::run_pipeline(&mut body, &pipeline);
            (alternates.map(|t| t.join()), report)
        });
        let alternates = alternates
            .map_err(|e| format!("cannot start a thread: {e}"))?
            .map_err(|_| "internal error: compiling another program of the artifact panicked")??;
        let report = report?;
        use mkc_ir::dialect::task::TaskProgram;
        let program = TaskProgram::find(&body)
            .map(|_| TaskProgram::from_body(&body))
            .transpose()?;
        let mut machine = mkc_tasks::schedule::Machine {
            sms: a.sms,
            bandwidth: a.bandwidth * 1e9,
            ..Default::default()
        };
        if let Some(f) = &a.cost_model {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read '{}': {e}", f.display()))?;
            mkc_tasks::schedule::apply_cost_model(&mut machine, &text)
                .map_err(|e| format!("{}: {e}", f.display()))?;
        }
        let estimate = match program
            .as_ref()
            .and_then(|p| Some((p, p.schedule.as_ref()?)))
        {
            Some((p, s)) => Some(mkc_tasks::schedule::estimate(&p.graph, s, &machine)?),
            None => None,
        };
        if matches!(a.emit, Emit::Mlir | Emit::Ptx | Emit::Artifact) {
            let p = program
                .as_ref()
                .ok_or("--emit=mlir|ptx|artifact needs a pipeline that ends with 'schedule'")?;
            emit_kernel(&a, &body, p, alternates)?;
            if let (true, Some(dir)) = (alternates.any(), &a.output) {
                // The programs must run on one memory: checked here, and again at load.
                let d = std::path::Path::new(dir);
                let read = |f: &std::path::Path| {
                    std::fs::read_to_string(f)
                        .map_err(|e| format!("cannot read '{}': {e}", f.display()))
                };
                let main = mkc_runtime::image::Program::parse(
                    &read(&d.join("program.mlir"))?,
                    "program.mlir",
                )?;
                let mut sizes: Vec<usize> = main
                    .tasks
                    .graph
                    .buffers
                    .values()
                    .map(|b| b.bytes as usize)
                    .collect();
                for (name, steps) in alternates.folders() {
                    let sp = mkc_runtime::image::Program::parse(
                        &read(&d.join(name).join("program.mlir"))?,
                        &format!("{name}/program.mlir"),
                    )?;
                    mkc_runtime::image::shares_memory(&main, &sp, &mut sizes)
                        .map_err(|e| format!("--{name}-steps {steps}: {e}"))?;
                }
            }
        } else if a.emit == Emit::ScheduleSvg {
            let (Some(p), Some(e)) = (&program, &estimate) else {
                return Err(
                    "--emit=schedule-svg needs a pipeline that ends with 'schedule'".into(),
                );
            };
            let title = a.model.model.display().to_string();
            write_output(a.output.as_deref(), &svg::render(p, e, &title))?;
        } else {
            let ir = mkc_ir::printer::print(&body);
            write_output(a.output.as_deref(), &ir)?;
        }
        if let Some(path) = &a.stats {
            let func = mkc_ir::dialect::builtin::first_func(&body)
                .ok_or("the pipeline left no function")?;
            let memory = mkc_tasks::memplan::plan_memory(&body, func)?;
            memory
                .check()
                .map_err(|e| format!("internal error: the memory plan is invalid: {e}"))?;
            let tasks = program.as_ref().map(|p| task_stats(p, estimate.as_ref()));
            let mut json = stats_json(&a, &pipeline, &report, import_s, &body, &traffic, &memory);
            if let Some(t) = tasks {
                // One more key in the same object.
                json.pop();
                json.push_str(&format!(",\"tasks\":{t}}}"));
            }
            std::fs::write(path, json + "\n")
                .map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The megakernel of a scheduled module: its MLIR, its PTX, or the artifact folder.
#[cfg(feature = "mlir")]
fn emit_kernel(
    a: &CompileArgs,
    body: &mkc_ir::Body,
    p: &mkc_ir::dialect::task::TaskProgram,
    alternates: Alternates,
) -> Result<(), String> {
    let start = std::time::Instant::now();
    let opts = mkc_kernel::KernelOptions {
        threads: a.threads,
        prefetch_bytes: a.l2_prefetch,
        prefetch_next: a.prefetch == "next",
        stream_slots: a.stream_slots,
        slot_bytes: a.slot_bytes,
        max_registers: a.max_registers,
        matvec_rows: a.matvec_rows,
        smem_scratch: a.smem_scratch,
        weights_evict_first: a.weight_cache == "evict-first",
        preload: a.preload,
        matvec_unroll: a.matvec_unroll,
        attention_lanes: a.attention_lanes,
        attention_online: a.attention_kernel == "online",
        event_fences: a.event_order == "fences",
        parallel_waits: a.waits == "parallel",
        staged_norm_weights: a.norm_weights == "staged",
    };
    let k = mkc_kernel::generate(body, p, &opts)?;
    if a.emit == Emit::Mlir {
        return write_output(a.output.as_deref(), &k.mlir);
    }
    let ptx = mkc_lowering::gpu_module_to_ptx(&k.mlir, "kernel.mlir", "sm_90a")
        .map_err(|e| e.to_string())?
        .concat();
    eprintln!(
        "mkc: kernel: {} task codes ({} streamed matvecs), {} lines of MLIR -> {} bytes of PTX in {:.2} s",
        k.codes,
        k.streamed,
        k.mlir.lines().count(),
        ptx.len(),
        start.elapsed().as_secs_f64()
    );
    // Values past the shared budget cost a trip to L2 each time they are read back.
    if !k.global_scratch.is_empty() {
        let mut codes = k.global_scratch.clone();
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
            "mkc: note: intermediate values in global scratch, read back from L2: {}; --smem-scratch {} is the shared budget",
            list.join(", "),
            a.smem_scratch
        );
    }
    if a.emit == Emit::Ptx {
        return write_output(a.output.as_deref(), &ptx);
    }
    let dir = a.output.as_deref().ok_or("--emit=artifact needs -o DIR")?;
    write_artifact(
        std::path::Path::new(dir),
        body,
        p,
        &k,
        &ptx,
        &a.model.model.display().to_string(),
        alternates,
    )?;
    eprintln!("mkc: wrote the artifact to {dir}");
    Ok(())
}

/// The programs an artifact holds besides its main one: `short/` for the steps at positions
/// below `short_steps`, `long/` for those from `long_steps` on (0: none).
#[derive(Clone, Copy, Default)]
struct Alternates {
    short_steps: i64,
    long_steps: i64,
}

impl Alternates {
    fn any(&self) -> bool {
        self.short_steps > 0 || self.long_steps > 0
    }

    /// Each folder an artifact may hold, with the position it starts or ends at (0: none).
    fn all(&self) -> [(&'static str, i64); 2] {
        [("short", self.short_steps), ("long", self.long_steps)]
    }

    /// The folders there are, with the position each starts or ends at.
    fn folders(&self) -> Vec<(&'static str, i64)> {
        self.all().into_iter().filter(|f| f.1 > 0).collect()
    }
}

/// `--short-steps` and `--long-steps`: compiles `body` (the imported step) again into the
/// artifact's `short/` (attention unsplit) and `long/` (attention in tiles of a KV head's
/// query heads) as asked, or as the defaults choose.
fn compile_alternates(a: &CompileArgs, body: &mkc_ir::Body) -> Result<Alternates, String> {
    let by_default = a.emit == Emit::Artifact
        && a.pipeline.is_none()
        && a.attention_parts == 0
        && takes_position(body);
    let short_steps = match a.short_steps {
        Some(p) if p < 0 => return Err(format!("--short-steps must be 0 or more, not {p}")),
        Some(p) => p,
        None if by_default => DEFAULT_SHORT_STEPS,
        None => 0,
    };
    let attention = attention_shape(body);
    let long_steps = match a.long_steps {
        Some(p) if p < 0 => return Err(format!("--long-steps must be 0 or more, not {p}")),
        Some(p) => p,
        None if by_default => attention.map_or(0, |s| s.default_long_steps()),
        None => 0,
    };
    if short_steps > 0 && long_steps > 0 && long_steps < short_steps {
        return Err(format!(
            "--long-steps {long_steps} is below --short-steps {short_steps}: each position runs one program"
        ));
    }
    let alts = Alternates {
        short_steps,
        long_steps,
    };
    for (name, _) in alts.folders() {
        if a.emit != Emit::Artifact || a.pipeline.is_some() {
            return Err(format!("--{name}-steps makes another program of an artifact: it needs --emit=artifact and the default pipeline"));
        }
        if !takes_position(body) {
            return Err(format!(
                "--{name}-steps needs a decode step that takes the position (a Hugging Face model)"
            ));
        }
    }
    if short_steps > 0 {
        compile_alternate(a, body.clone(), "short", 1)?;
    }
    if long_steps > 0 {
        let s = attention.ok_or("--long-steps needs a model with decode attention")?;
        if s.kv_heads >= s.heads {
            return Err(format!(
                "--long-steps needs grouped-query attention; this model has {} KV heads for {} query heads",
                s.kv_heads, s.heads
            ));
        }
        compile_alternate(
            a,
            body.clone(),
            "long",
            (a.sms as i64 / s.kv_heads).clamp(2, 16),
        )?;
    }
    Ok(alts)
}

/// Compiles `body` with attention in `parts` into the artifact's folder `name`.
fn compile_alternate(
    a: &CompileArgs,
    mut body: mkc_ir::Body,
    name: &str,
    parts: i64,
) -> Result<(), String> {
    let pipeline = Emit::Artifact.pipeline(&PipelineOptions {
        attention_parts: parts,
        attention_combine: a.attention_combine.clone(),
        cost_model: a.cost_model.clone(),
        prune_waits: a.prune_waits,
        last_signal_bytes: a.last_signal_bytes,
        ..PipelineOptions::new(a.sms)
    });
    mkc_driver::run_pipeline(&mut body, &pipeline)?;
    let p = mkc_ir::dialect::task::TaskProgram::from_body(&body)?;
    let dir = a.output.as_deref().ok_or("--emit=artifact needs -o DIR")?;
    let sub = std::path::Path::new(dir).join(name);
    let sa = CompileArgs {
        output: Some(sub.display().to_string()),
        ..a.clone()
    };
    emit_kernel(&sa, &body, &p, Alternates::default())
}

/// Positions below which an artifact runs its short steps' program by default.
const DEFAULT_SHORT_STEPS: i64 = 192;

/// Decode attention's heads in a step (its first `tg.attention`).
#[derive(Clone, Copy)]
struct AttentionShape {
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
    /// Positions the KV caches hold.
    positions: i64,
}

impl AttentionShape {
    /// Where the long steps' program starts by default: the position at which one layer's
    /// K cache holds 2^20 values, if the caches hold it and attention is grouped (0: none).
    /// Measured, not derived: KV-head tiles paid from there for the models timed.
    fn default_long_steps(&self) -> i64 {
        let per_position = (self.kv_heads * self.head_dim).max(1);
        let at = ((1i64 << 20) + per_position - 1) / per_position;
        if self.kv_heads < self.heads && at < self.positions {
            at
        } else {
            0
        }
    }
}

fn attention_shape(body: &mkc_ir::Body) -> Option<AttentionShape> {
    let func = mkc_ir::dialect::builtin::first_func(body)?;
    let op = body
        .walk(func)
        .into_iter()
        .find(|&o| body.ops[o].name == "tg.attention")?;
    let operands = &body.ops[op].operands;
    let q = body.ty(*operands.first()?).as_tensor()?;
    let k = body.ty(*operands.get(1)?).as_tensor()?;
    if q.rank() != 2 || k.rank() != 3 {
        return None;
    }
    Some(AttentionShape {
        heads: q.shape[0],
        kv_heads: k.shape[1],
        head_dim: k.shape[2],
        positions: k.shape[0],
    })
}

/// Whether `body`'s step is a Hugging Face decode step: (token, position, caches...,
/// weights...), the position its second argument, a scalar i64.
fn takes_position(body: &mkc_ir::Body) -> bool {
    let Some(func) = mkc_ir::dialect::builtin::first_func(body) else {
        return false;
    };
    let Some(entry) = body.entry_block(func, 0) else {
        return false;
    };
    let is_pos = body.blocks[entry].args.get(1).is_some_and(|&v| {
        body.ty(v)
            .as_tensor()
            .is_some_and(|t| t.shape.is_empty() && t.elem == mkc_ir::ElemType::I64)
    });
    is_pos && mkc_ir::dialect::builtin::weight_arg_name(body, func, 1).is_none()
}

/// Writes an artifact folder: the PTX, the kernel's MLIR, the scheduled program, the tables
/// and the manifest.
#[cfg(feature = "mlir")]
fn write_artifact(
    dir: &std::path::Path,
    body: &mkc_ir::Body,
    p: &mkc_ir::dialect::task::TaskProgram,
    k: &mkc_kernel::Kernel,
    ptx: &str,
    model: &str,
    alternates: Alternates,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes)
            .map_err(|e| format!("cannot write '{}': {e}", dir.join(name).display()))
    };
    write("kernel.ptx", ptx.as_bytes())?;
    write("kernel.mlir", k.mlir.as_bytes())?;
    for (name, words) in [
        ("tasks.bin", &k.tasks),
        ("entries.bin", &k.entries),
        ("queues.bin", &k.queues),
    ] {
        write(name, &mkc_runtime::artifact::words_to_bytes(words))?;
    }
    let program = mkc_ir::printer::print(body);
    write("program.mlir", program.as_bytes())?;
    // The model's description: its config.json (a checkpoint folder or a config), or the file.
    let source = std::path::Path::new(model);
    let config = if source.is_dir() {
        Some(source.join("config.json"))
    } else if source.extension().is_some_and(|e| e == "json") {
        Some(source.to_path_buf())
    } else {
        None
    };
    let description = match &config {
        Some(c) if c.is_file() => {
            let text =
                std::fs::read(c).map_err(|e| format!("cannot read '{}': {e}", c.display()))?;
            write("config.json", &text)?;
            text
        }
        _ => std::fs::read(source).unwrap_or_default(),
    };
    let manifest = mkc_runtime::artifact::Manifest {
        format: mkc_runtime::artifact::FORMAT,
        mkc_version: env!("CARGO_PKG_VERSION").to_string(),
        target: "sm_90a".into(),
        kernel: k.name.clone(),
        threads: k.threads,
        dynamic_smem: k.dynamic_smem,
        ctas: k.ctas,
        scratch_per_cta: k.scratch_per_cta,
        events: p.graph.events.len(),
        codes: k.codes,
        model: model.to_string(),
        model_hash: mkc_runtime::artifact::hash(&description),
        program_hash: mkc_runtime::artifact::hash(program.as_bytes()),
        short_steps: alternates.short_steps,
        long_steps: alternates.long_steps,
        // (A Hugging Face step's position is its second input: `takes_position`.)
        position_input: alternates.any().then_some(1),
    };
    // Another program left from an earlier compile into this folder is not this one's.
    for (name, steps) in alternates.all() {
        let stale = dir.join(name);
        if steps == 0 && stale.join("manifest.json").is_file() {
            std::fs::remove_dir_all(&stale)
                .map_err(|e| format!("cannot remove '{}': {e}", stale.display()))?;
        }
    }
    write("manifest.json", manifest.to_json().as_bytes())
}

/// `check --engine gpu` without --artifact, in a build with MLIR: compiles the fixture with
/// the default pipeline into a temporary artifact.
#[cfg(feature = "mlir")]
fn compile_artifact_for(model: &std::path::Path) -> Result<PathBuf, String> {
    let args = ModelArgs {
        model: model.to_path_buf(),
        random_weights: false,
        ctx: 2048,
        compute: "f32".into(),
    };
    let mut body = import_model(&args)?;
    mkc_driver::run_pipeline(
        &mut body,
        &Emit::Artifact.pipeline(&PipelineOptions::new(132)),
    )?;
    let p = mkc_ir::dialect::task::TaskProgram::from_body(&body)?;
    let opts = mkc_kernel::KernelOptions {
        threads: kernel_defaults::THREADS,
        prefetch_bytes: kernel_defaults::PREFETCH_BYTES,
        prefetch_next: kernel_defaults::PREFETCH == "next",
        stream_slots: kernel_defaults::STREAM_SLOTS,
        slot_bytes: kernel_defaults::SLOT_BYTES,
        max_registers: None,
        matvec_rows: kernel_defaults::MATVEC_ROWS,
        smem_scratch: kernel_defaults::SMEM_SCRATCH,
        weights_evict_first: kernel_defaults::WEIGHT_CACHE == "evict-first",
        preload: kernel_defaults::PRELOAD,
        matvec_unroll: kernel_defaults::MATVEC_UNROLL,
        attention_lanes: kernel_defaults::ATTENTION_LANES,
        attention_online: kernel_defaults::ATTENTION_KERNEL == "online",
        event_fences: kernel_defaults::EVENT_ORDER == "fences",
        parallel_waits: kernel_defaults::WAITS == "parallel",
        staged_norm_weights: kernel_defaults::NORM_WEIGHTS == "staged",
    };
    let k = mkc_kernel::generate(&body, &p, &opts)?;
    let ptx = mkc_lowering::gpu_module_to_ptx(&k.mlir, "kernel.mlir", "sm_90a")
        .map_err(|e| e.to_string())?
        .concat();
    let dir = std::env::temp_dir().join(format!("mkc-artifact-{}", std::process::id()));
    write_artifact(
        &dir,
        &body,
        &p,
        &k,
        &ptx,
        &model.display().to_string(),
        Alternates::default(),
    )?;
    eprintln!("mkc: compiled {} to {}", model.display(), dir.display());
    Ok(dir)
}

#[cfg(not(feature = "mlir"))]
fn compile_artifact_for(_: &std::path::Path) -> Result<PathBuf, String> {
    Err("--engine gpu needs --artifact DIR in a build without MLIR (make it with `mkc compile FIXTURE --emit=artifact -o DIR`)".into())
}

#[cfg(not(feature = "mlir"))]
fn emit_kernel(
    _: &CompileArgs,
    _: &mkc_ir::Body,
    _: &mkc_ir::dialect::task::TaskProgram,
    _: Alternates,
) -> Result<(), String> {
    Err("this mkc was built without MLIR (the runtime-only build): it cannot generate kernels; build with the default features".into())
}

/// The task level in --stats: counts, tasks per kind, and (once scheduled) the estimate.
fn task_stats(
    p: &mkc_ir::dialect::task::TaskProgram,
    e: Option<&mkc_tasks::schedule::Estimate>,
) -> serde_json::Value {
    use serde_json::json;
    let mut per_kind = std::collections::BTreeMap::<&str, usize>::new();
    for t in p.graph.tasks.values() {
        *per_kind.entry(&t.kind).or_default() += 1;
    }
    let waits: usize = p.graph.tasks.values().map(|t| t.waits.len()).sum();
    let mut j = json!({
        "tasks": p.graph.tasks.len(),
        "events": p.graph.events.len(),
        "waits": waits,
        "tasks_per_kind": per_kind,
        "buffers": p.graph.buffers.values().map(|b| json!({"name": b.name, "bytes": b.bytes})).collect::<Vec<_>>(),
    });
    if let Some(e) = e {
        let busy_us: Vec<f64> = e.busy_s.iter().map(|b| (b * 1e8).round() / 100.0).collect();
        let idle =
            1.0 - e.busy_s.iter().sum::<f64>() / (e.step_s * e.busy_s.len() as f64).max(1e-30);
        j["estimate"] = json!({
            "step_ms": e.step_s * 1e3,
            "floor_ms": e.floor_s * 1e3,
            "critical_path_ms": e.critical_path_s * 1e3,
            "step_over_floor": e.step_s / e.floor_s.max(1e-30),
            "idle_share": idle,
            "busy_us_per_sm": busy_us,
        });
    }
    j
}

/// One JSON object: the pipeline, per pass its wall time, counters and notes, and the number
/// of fused groups in the result.
fn stats_json(
    a: &CompileArgs,
    pipeline: &str,
    r: &mkc_passes::manager::RunReport,
    import_s: f64,
    body: &mkc_ir::Body,
    traffic: &mkc_tasks::traffic::StepTraffic,
    memory: &mkc_tasks::memplan::MemoryPlan,
) -> String {
    use serde_json::{json, Map, Value};
    let mut passes = Vec::new();
    for (name, stats) in &r.statistics {
        let wall: f64 = r
            .timings
            .iter()
            .filter(|t| &t.1 == name)
            .map(|t| t.2.as_secs_f64())
            .sum();
        let counters: Map<String, Value> = stats
            .iter()
            .map(|s| (s.name.clone(), json!(s.value)))
            .collect();
        let notes: Map<String, Value> = r
            .notes
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, m)| m.iter().map(|(k, v)| (k.clone(), json!(v))))
            .collect();
        passes.push(json!({"name": name, "wall_s": wall, "counters": counters, "notes": notes}));
    }
    let groups = body
        .walk(body.root)
        .iter()
        .filter(|&&o| body.ops[o].name == "fused.group")
        .count();
    json!({
        "model": a.model.model.display().to_string(),
        "emit": a.emit.name(),
        "pipeline": pipeline,
        "import_s": import_s,
        "total_s": r.total.as_secs_f64(),
        "passes": passes,
        "fused_groups": groups,
        // The worst-case step (caches full); cache_bytes_per_position gives any other.
        "step_traffic": {
            "weight_bytes": traffic.weight_bytes,
            "cache_bytes": traffic.cache_bytes,
            "cache_bytes_per_position": traffic.cache_bytes_per_position,
            "input_bytes": traffic.input_bytes,
            "read_bytes": traffic.read_bytes(),
            "write_bytes": traffic.write_bytes,
            "bandwidth_gbps": a.bandwidth,
            "floor_ms": traffic.read_bytes() / (a.bandwidth * 1e9) * 1e3,
        },
        // Where values live: the workspace arena (with reuse), caches, packed weights.
        "memory_plan": {
            "arena_bytes": memory.arena_bytes,
            "arena_bytes_without_reuse": memory.unshared_bytes,
            "arena_values": memory.arena.len(),
            "cache_bytes": memory.cache_bytes,
            "caches": memory.caches.len(),
            "weight_bytes": memory.weight_bytes,
            "weights": memory.weights.len(),
        },
    })
    .to_string()
}

/// The model's tokenizer.json (beside its config), if it has one.
fn tokenizer_of(model: &std::path::Path) -> Result<Option<tokenizers::Tokenizer>, String> {
    let dir = if model.is_dir() {
        model.to_path_buf()
    } else {
        model.parent().map(PathBuf::from).unwrap_or_default()
    };
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    tokenizers::Tokenizer::from_file(&path)
        .map(Some)
        .map_err(|e| format!("{}: not a tokenizer: {e}", path.display()))
}

/// `,"text":"..."` for the JSON line: the generated tokens decoded, when there is a tokenizer.
fn text_field(tok: &Option<tokenizers::Tokenizer>, ids: &[i64]) -> Result<String, String> {
    let Some(t) = tok else {
        return Ok(String::new());
    };
    let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    let text = t
        .decode(&ids, true)
        .map_err(|e| format!("cannot decode the generated tokens: {e}"))?;
    println!("{text}");
    Ok(format!(",\"text\":{}", serde_json::Value::String(text)))
}

fn run_generate(mut a: RunArgs) -> ExitCode {
    let result = (|| -> Result<(), String> {
        if a.model.model.extension().is_some_and(|e| e == "onnx") {
            return Err("run takes a Hugging Face model (a checkpoint folder or a config.json); ONNX graphs have no decode step".into());
        }
        let tok = tokenizer_of(&a.model.model)?;
        if let Some(text) = &a.prompt {
            let t = tok.as_ref().ok_or_else(|| {
                format!(
                    "--prompt needs a tokenizer.json beside {} (or give --prompt-ids)",
                    a.model.model.display()
                )
            })?;
            let enc = t
                .encode(text.as_str(), true)
                .map_err(|e| format!("cannot encode the prompt: {e}"))?;
            a.prompt_ids = enc.get_ids().iter().map(|&i| i as i64).collect();
            if a.prompt_ids.is_empty() {
                return Err("the prompt encodes to no tokens".into());
            }
        }
        let a = &a;
        let model = mkc_frontends::HfModel::open(&a.model.model)?;
        let needed = a.prompt_ids.len() + a.max_new_tokens;
        let ctx = a.model.ctx.max(needed as i64);
        let opts = mkc_frontends::DecodeOptions {
            max_context: ctx,
            compute: mkc_ir::ElemType::from_name(&a.model.compute).expect("clap checked it"),
        };
        let random;
        let weights: &dyn mkc_ir::weights::WeightSource =
            match (&model.checkpoint, a.model.random_weights) {
                (Some(c), false) => c,
                _ => {
                    let cfg = &model.config;
                    random = mkc_frontends::random::RandomWeights::new(
                        cfg.expected_weights()
                            .into_iter()
                            .map(|(n, s)| (n, cfg.dtype, s)),
                        0,
                    );
                    &random
                }
            };
        let types = if model.checkpoint.is_some() && !a.model.random_weights {
            model.weight_types()
        } else {
            model
                .config
                .expected_weights()
                .into_iter()
                .map(|(n, _)| (n, model.config.dtype))
                .collect()
        };
        let mut body = mkc_frontends::build_decode_step(&model.config, &types, &opts)?;
        let vocab = model.config.vocab_size;
        if let Some(bad) = a.prompt_ids.iter().find(|&&t| t < 0 || t >= vocab) {
            return Err(format!(
                "prompt token {bad} is outside the vocabulary (0..{vocab})"
            ));
        }
        // The simulator runs the scheduled program; the interpreter the level asked for.
        let level = match a.engine {
            check::Engine::Gpu => return run_on_gpu(a, weights, &tok),
            check::Engine::Sim => Emit::Schedule,
            check::Engine::Interp => match a.level {
                Emit::Tensor => Emit::Tensor,
                _ => Emit::Fused,
            },
        };
        if level != Emit::Tensor {
            mkc_driver::run_pipeline(&mut body, &level.pipeline(&PipelineOptions::new(132)))?;
        }
        let mut interp = mkc_runtime::Interpreter::new(&body, weights);
        let func = interp.func("decode_step")?;
        let mut sim = match a.engine {
            check::Engine::Sim => Some(mkc_runtime::Simulator::new(&body, weights, 0)?),
            _ => None,
        };
        let cfg = &model.config;
        let cache_ty = mkc_ir::TensorType::new([ctx, cfg.num_kv_heads, cfg.head_dim], opts.compute);
        check_cache_fits(2 * cfg.num_layers, &cache_ty)?;
        let zero = |_| mkc_ir::dialect::tg::elementwise::Scalar::F(0.0);
        let mut caches: Vec<mkc_runtime::Tensor> = (0..2 * cfg.num_layers)
            .map(|_| mkc_runtime::Tensor::from_fn(cache_ty.clone(), zero))
            .collect();
        greedy(a, level.name(), &tok, &mut |token, pos| {
            let t = mkc_runtime::interp::i64_tensor(&[], vec![token]);
            let p = mkc_runtime::interp::i64_tensor(&[], vec![pos as i64]);
            let mut inputs = vec![t, p];
            inputs.append(&mut caches);
            let mut outs = match &mut sim {
                Some(sim) => sim.call(&inputs).map_err(|e| e.to_string()),
                None => interp.call(func, inputs),
            }?;
            let _logits = outs.remove(0);
            let next = outs.remove(0).get(0).i();
            caches = outs;
            Ok(next)
        })
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The interpreter holds every KV cache in memory (and a step copies one at a time), so a
/// `--ctx` far beyond what the machine holds is refused up front rather than aborting in the
/// allocator halfway through.
fn check_cache_fits(count: i64, ty: &mkc_ir::TensorType) -> Result<(), String> {
    // f32 storage per element in the interpreter (f64 for an f64 compute type).
    let per_elem = if ty.elem == mkc_ir::ElemType::F64 {
        8
    } else {
        4
    };
    let bytes = (count as u128) * (ty.num_elements() as u128) * per_elem;
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u128>().ok())
            .map(|kb| kb * 1024)
    });
    // One extra cache for the copy a step makes; half of memory leaves room for the rest.
    let need = bytes + bytes / (count.max(1) as u128);
    // Without /proc/meminfo, assume a modest 32 GiB machine.
    let total = total.unwrap_or(32 << 30);
    let limit = total / 2;
    if need > limit {
        let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
        return Err(format!(
            "the KV caches for a context of {} positions need {:.1} GiB on the interpreter; this machine has {:.1} GiB (lower --ctx)",
            ty.shape[0],
            gib(need),
            gib(total)
        ));
    }
    Ok(())
}

fn run_check(a: CheckArgs) -> ExitCode {
    // The simulator stores bf16 and computes each task in f32 or better: the bar is
    // 2e-2 and at most one argmax in 27 flipping at a near tie; the interpreter computes
    // like the reference, so it must agree everywhere.
    let (tolerance, flips) = match a.engine {
        check::Engine::Interp => (1e-3, 0),
        check::Engine::Sim | check::Engine::Gpu => (2e-2, 1),
    };
    if a.engine == check::Engine::Gpu {
        return run_check_gpu(&a, tolerance, flips);
    }
    let verbose = a.verbose;
    let mut progress = |pos: usize, err: f64, agree: bool| {
        if verbose {
            eprintln!(
                "position {pos:>3}: rel_err {err:.3e} argmax {}",
                if agree { "agrees" } else { "DIFFERS" }
            );
        }
    };
    let level = match (a.engine, a.level) {
        // The simulator runs the scheduled program.
        (check::Engine::Sim, _) => Emit::Schedule,
        (_, level) => level,
    };
    let pipeline = a.pipeline.clone().unwrap_or_else(|| match level {
        Emit::Tensor => String::new(),
        level => level.pipeline(&PipelineOptions::new(a.sms)),
    });
    let mut worst: Option<check::CheckReport> = None;
    for seed in 0..a.seeds.max(1) {
        let result = if a.onnx {
            check::check_onnx(&a.fixture, a.engine, seed, &pipeline, &mut progress)
        } else {
            check::check_hf(&a.fixture, a.engine, seed, &pipeline, &mut progress)
        };
        match result {
            Ok(report) => {
                if a.seeds > 1 {
                    eprintln!("seed {seed}: {}", report.json());
                }
                let worse = worst.as_ref().is_none_or(|w| {
                    (report.argmax_agree(), -report.max_rel_err())
                        < (w.argmax_agree(), -w.max_rel_err())
                });
                if worse {
                    worst = Some(report);
                }
            }
            Err(e) => {
                eprintln!("mkc: error: seed {seed}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let report = worst.expect("at least one seed");
    let ok = report.max_rel_err() <= tolerance
        && report.argmax_agree() + flips >= report.per_position.len();
    println!("{}", report.json());
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "mkc: check failed: max_rel_err {:.3e} (tolerance {tolerance:e}), argmax agrees at {} of {} positions",
            report.max_rel_err(),
            report.argmax_agree(),
            report.per_position.len()
        );
        ExitCode::FAILURE
    }
}

#[cfg(feature = "cuda")]
fn run_check_gpu(a: &CheckArgs, tolerance: f64, flips: usize) -> ExitCode {
    let verbose = a.verbose;
    let mut progress = |pos: usize, err: f64, agree: bool| {
        if verbose {
            eprintln!(
                "position {pos:>3}: rel_err {err:.3e} argmax {}",
                if agree { "agrees" } else { "DIFFERS" }
            );
        }
    };
    let result = (|| {
        let model = if a.onnx {
            a.fixture.join("model.onnx")
        } else {
            a.fixture.clone()
        };
        let compiled;
        let dir = match &a.artifact {
            Some(d) => d,
            None => {
                compiled = compile_artifact_for(&model)?;
                &compiled
            }
        };
        if a.onnx {
            check::check_onnx_gpu(&a.fixture, dir, &mut progress)
        } else {
            check::check_hf_gpu(&a.fixture, dir, &mut progress)
        }
    })();
    match result {
        Ok((report, vs_sim)) => {
            let ok = report.max_rel_err() <= tolerance
                && report.argmax_agree() + flips >= report.per_position.len()
                && vs_sim <= 1e-2;
            let mut j = report.json();
            j.pop();
            println!("{j},\"max_rel_err_vs_sim\":{vs_sim:.6e}}}");
            if ok {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "mkc: check failed: max_rel_err {:.3e} (tolerance {tolerance:e}), argmax agrees at {} of {} positions, GPU vs simulator {vs_sim:.3e} (tolerance 1e-2)",
                    report.max_rel_err(),
                    report.argmax_agree(),
                    report.per_position.len()
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn run_check_gpu(_: &CheckArgs, _: f64, _: usize) -> ExitCode {
    eprintln!(
        "mkc: error: this mkc was built without the `cuda` feature: it cannot run --engine gpu"
    );
    ExitCode::FAILURE
}

/// Greedy decoding: feeds the prompt, then each step's own token, through `step(token,
/// position) -> next token`, printing the generated tokens as they come, then the JSON line
/// (with the decoded text when there is a tokenizer).
fn greedy(
    a: &RunArgs,
    level: &str,
    tok: &Option<tokenizers::Tokenizer>,
    step: &mut dyn FnMut(i64, usize) -> Result<i64, String>,
) -> Result<(), String> {
    let needed = a.prompt_ids.len() + a.max_new_tokens;
    let start = std::time::Instant::now();
    let mut tokens = a.prompt_ids.clone();
    let mut out = std::io::stdout();
    for pos in 0..needed - 1 {
        let next = step(tokens[pos], pos).map_err(|e| format!("position {pos}: {e}"))?;
        if pos + 1 >= a.prompt_ids.len() {
            tokens.push(next);
            let _ = write!(out, "{next} ");
            let _ = out.flush();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!();
    let generated = &tokens[a.prompt_ids.len()..];
    let text = text_field(tok, generated)?;
    println!(
        "{{\"engine\":\"{}\",\"level\":\"{level}\",\"prompt\":{},\"generated\":{generated:?},\"tokens_per_s\":{:.1}{text}}}",
        a.engine.name(),
        a.prompt_ids.len(),
        (needed - 1) as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// `run --engine gpu`: greedy decoding with the artifact's kernel, the GPU computing each
/// step's argmax; the host only writes the token and the position.
#[cfg(feature = "cuda")]
fn run_on_gpu(
    a: &RunArgs,
    weights: &dyn mkc_ir::weights::WeightSource,
    tok: &Option<tokenizers::Tokenizer>,
) -> Result<(), String> {
    let dir = a.artifact.as_ref().ok_or(
        "run --engine gpu needs --artifact DIR (`mkc compile MODEL --emit=artifact -o DIR`)",
    )?;
    let art = mkc_runtime::artifact::Artifact::open(dir)?;
    eprintln!("mkc: loading {} onto the GPU", dir.display());
    let mut gpu = mkc_runtime::gpu::GpuRunner::new(&art, weights, 0)?;
    let n = gpu.program.inputs.len();
    let ctx = gpu.program.cache_positions();
    let needed = a.prompt_ids.len() + a.max_new_tokens;
    if needed as i64 > ctx {
        return Err(format!(
            "{needed} positions do not fit the artifact's KV cache ({ctx}): compile with a larger --ctx"
        ));
    }
    greedy(a, "artifact", tok, &mut |token, pos| {
        let t = mkc_runtime::interp::i64_tensor(&[], vec![token]);
        let p = mkc_runtime::interp::i64_tensor(&[], vec![pos as i64]);
        let mut inputs: Vec<Option<&mkc_runtime::Tensor>> = vec![Some(&t), Some(&p)];
        inputs.resize(n, None);
        Ok(gpu.call(&inputs, &[1])?[0].get(0).i())
    })
}

#[cfg(not(feature = "cuda"))]
fn run_on_gpu(
    _: &RunArgs,
    _: &dyn mkc_ir::weights::WeightSource,
    _: &Option<tokenizers::Tokenizer>,
) -> Result<(), String> {
    Err("this mkc was built without the `cuda` feature: it cannot run on a GPU".into())
}

#[cfg(feature = "cuda")]
fn run_gpu_info(a: GpuInfoArgs) -> ExitCode {
    use mkc_runtime::gpu;
    let result = (|| -> Result<String, String> {
        let d = gpu::probe(a.device)?;
        let mut j = serde_json::json!({
            "device": a.device,
            "name": d.name,
            "compute_capability": format!("{}.{}", d.compute_capability.0, d.compute_capability.1),
            "sms": d.sms,
            "total_mem_bytes": d.total_mem,
            "smem_per_block_optin": d.smem_per_block_optin,
            "clock_khz": d.clock_khz,
        });
        if a.bandwidth {
            let bw = gpu::copy_bandwidth(a.device, a.bytes, a.iters)?;
            j["copy_bandwidth_gbs"] = serde_json::json!(bw / 1e9);
            j["copy_bytes"] = serde_json::json!(a.bytes);
            j["copy_iters"] = serde_json::json!(a.iters);
        }
        if let Some(path) = &a.ptx {
            let ptx = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
            let k = gpu::check_scale_kernel(a.device, &ptx, 1 << 24, a.iters)?;
            j["ptx_kernel"] = serde_json::json!({
                "file": path.display().to_string(),
                "elements": k.elements,
                "mismatches": k.mismatches,
                "median_us": k.median_us,
                "gbs": 8.0 * k.elements as f64 / (k.median_us * 1e-6) / 1e9,
            });
            if k.mismatches > 0 {
                println!("{j}");
                return Err(format!(
                    "the PTX kernel computed {} of {} elements wrong",
                    k.mismatches, k.elements
                ));
            }
        }
        Ok(j.to_string())
    })();
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "cuda")]
fn run_bench(a: BenchArgs) -> ExitCode {
    use mkc_runtime::gpu::GpuRunner;
    let result = (|| -> Result<String, String> {
        let art = mkc_runtime::artifact::Artifact::open(&a.artifact)?;
        let program = mkc_runtime::image::Program::parse(&art.program, "program.mlir")?;
        let func = mkc_ir::dialect::builtin::first_func(&program.body).ok_or("no function")?;
        let entry = program.body.entry_block(func, 0).ok_or("no body")?;
        let model;
        let random;
        let weights: &dyn mkc_ir::weights::WeightSource = match &a.weights {
            Some(dir) => {
                model = mkc_frontends::HfModel::open(dir)?;
                model
                    .checkpoint
                    .as_ref()
                    .ok_or_else(|| format!("{}: no safetensors weights", dir.display()))?
            }
            None => {
                let list: Vec<(String, mkc_ir::ElemType, Vec<i64>)> = program.body.blocks[entry]
                    .args
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &v)| {
                        let name =
                            mkc_ir::dialect::builtin::weight_arg_name(&program.body, func, i)?;
                        let t = program.body.ty(v).as_tensor()?;
                        Some((name.to_string(), t.elem, t.shape.clone()))
                    })
                    .collect();
                random = mkc_frontends::random::RandomWeights::new(list, 0);
                &random
            }
        };
        let start = std::time::Instant::now();
        let mut gpu = GpuRunner::new(&art, weights, 0)?;
        let load_s = start.elapsed().as_secs_f64();
        let n = gpu.program.inputs.len();
        let ctx = gpu.program.cache_positions();
        if a.pos < 0 || a.pos >= ctx {
            return Err(format!(
                "--pos {} is outside the artifact's KV cache (0..{ctx})",
                a.pos
            ));
        }
        let tok = mkc_runtime::interp::i64_tensor(&[], vec![1]);
        let pos = mkc_runtime::interp::i64_tensor(&[], vec![a.pos]);
        let mut inputs: Vec<Option<&mkc_runtime::Tensor>> = vec![Some(&tok), Some(&pos)];
        inputs.resize(n, None);
        let first = gpu.call(&inputs, &[1])?;
        let ms = gpu.time_steps(a.warmup, a.steps)?;
        let bytes: f64 = gpu
            .active_program()
            .tasks
            .graph
            .tasks
            .values()
            .map(|t| t.bytes)
            .sum();
        let trace = match &a.trace {
            Some(path) => Some(write_trace(&mut gpu, path, &art.manifest.model)?),
            None => None,
        };
        let copy = mkc_runtime::gpu::copy_bandwidth(0, 1 << 30, 20)?;
        let gbps = bytes / (ms * 1e-3) / 1e9;
        Ok(serde_json::json!({
            "trace": trace,
            "artifact": a.artifact.display().to_string(),
            "model": art.manifest.model,
            "pos": a.pos,
            "program": gpu.active_name(),
            "steps": a.steps + a.warmup + 1,
            "load_s": load_s,
            "first_token": first[0].get(0).i(),
            "median_ms": ms,
            "bytes_per_step": bytes,
            "gbps": gbps,
            "copy_gbps": copy / 1e9,
            "share_of_copy_bandwidth": gbps * 1e9 / copy,
            "floor_ms": bytes / copy * 1e3,
        })
        .to_string())
    })();
    match result {
        Ok(j) => {
            println!("{j}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Profiles one step, writes its timeline as Chrome trace events (one track per SM; a task's
/// wait and its work as separate slices) and as an SVG picture beside it, and sums it up.
#[cfg(feature = "cuda")]
fn write_trace(
    gpu: &mut mkc_runtime::gpu::GpuRunner,
    path: &std::path::Path,
    model: &str,
) -> Result<serde_json::Value, String> {
    use serde_json::json;
    let stamps = gpu.trace_step()?;
    let tasks = &gpu.active_program().tasks;
    let queues = &tasks.schedule.as_ref().ok_or("not scheduled")?.queues;
    let t0 = stamps
        .iter()
        .map(|s| s[0])
        .filter(|&t| t > 0)
        .min()
        .unwrap_or(0);
    let end = stamps.iter().map(|s| s[2]).max().unwrap_or(t0);
    let span = (end - t0) as f64 / 1e3;
    let mut events = Vec::new();
    let mut per_kind: std::collections::BTreeMap<String, f64> = Default::default();
    let (mut work, mut wait) = (0.0f64, 0.0f64);
    let mut idle = Vec::new();
    let mut e = 0usize;
    let n = tasks.graph.tasks.len();
    let (mut start_s, mut finish_s) = (vec![0.0; n], vec![0.0; n]);
    let mut busy_s = Vec::new();
    // (kind, µs) of each task's work, and of the wait before each queued task.
    let mut works: Vec<(&str, f64)> = Vec::new();
    let mut waits: Vec<(&str, f64)> = Vec::new();
    for (sm, q) in queues.iter().enumerate() {
        let mut busy = 0.0;
        for &t in q {
            let [a, b, c] = stamps[e];
            e += 1;
            let task = &tasks.graph.tasks[t];
            let us = |x: u64| (x.saturating_sub(t0)) as f64 / 1e3;
            let (w, d) = (us(b) - us(a), us(c) - us(b));
            start_s[t.as_u32() as usize] = us(b) * 1e-6;
            finish_s[t.as_u32() as usize] = us(c) * 1e-6;
            wait += w;
            work += d;
            busy += d;
            *per_kind.entry(task.kind.clone()).or_default() += d;
            works.push((&task.kind, d));
            waits.push((&task.kind, w));
            events.push(json!({"name": "wait", "cat": "wait", "ph": "X", "pid": 0, "tid": sm, "ts": us(a), "dur": w}));
            events.push(json!({"name": task.kind, "cat": "task", "ph": "X", "pid": 0, "tid": sm, "ts": us(b), "dur": d,
                "args": {"task": t.to_string(), "group": task.group, "output": task.output, "bytes": task.bytes}}));
        }
        idle.push(1.0 - busy / span.max(1e-9));
        busy_s.push(busy * 1e-6);
    }
    // Tasks run on the last signal of an event: their entries follow the queues'; each ran
    // on the SM of the last of its event's signallers to finish.
    let sm_of = tasks.sms(&finish_s).ok_or("not scheduled")?;
    let inline: Vec<_> = tasks
        .graph
        .tasks
        .iter()
        .filter(|(_, t)| t.on_last_signal)
        .map(|(id, _)| id)
        .collect();
    let mut inline_stamps = Vec::new();
    for &t in &inline {
        let [a, _, c] = stamps[e];
        e += 1;
        let task = &tasks.graph.tasks[t];
        let sm = sm_of[t.as_u32() as usize];
        let us = |x: u64| (x.saturating_sub(t0)) as f64 / 1e3;
        let d = us(c) - us(a);
        start_s[t.as_u32() as usize] = us(a) * 1e-6;
        finish_s[t.as_u32() as usize] = us(c) * 1e-6;
        work += d;
        if let Some(b) = busy_s.get_mut(sm) {
            *b += d * 1e-6;
            idle[sm] -= d / span.max(1e-9);
        }
        *per_kind.entry(task.kind.clone()).or_default() += d;
        works.push((&task.kind, d));
        events.push(json!({"name": task.kind, "cat": "task", "ph": "X", "pid": 0, "tid": sm, "ts": us(a), "dur": d,
            "args": {"task": t.to_string(), "group": task.group, "output": task.output, "bytes": task.bytes, "on_last_signal": true}}));
        inline_stamps.push((t, a));
    }
    std::fs::write(
        path,
        json!({"traceEvents": events, "displayTimeUnit": "ns"}).to_string(),
    )
    .map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
    // The same timeline as a picture, beside the trace.
    let svg_path = path.with_extension("svg");
    let measured = mkc_tasks::schedule::Estimate {
        step_s: span * 1e-6,
        critical_path_s: 0.0,
        floor_s: 0.0,
        busy_s,
        start_s,
        finish_s,
    };
    std::fs::write(&svg_path, svg::render_measured(tasks, &measured, model))
        .map_err(|e| format!("cannot write '{}': {e}", svg_path.display()))?;
    let mean_idle = idle.iter().sum::<f64>() / idle.len().max(1) as f64;
    let starts: Vec<mkc_runtime::profile::TaskStart> = queues
        .iter()
        .flatten()
        .zip(&stamps)
        .map(|(&t, s)| (t, s[1]))
        .chain(inline_stamps)
        .map(|(t, start)| mkc_runtime::profile::TaskStart {
            group: tasks.graph.tasks[t].group,
            kind: &tasks.graph.tasks[t].kind,
            start,
        })
        .collect();
    Ok(json!({
        "file": path.display().to_string(),
        "svg": svg_path.display().to_string(),
        "step_us": span,
        "phase_us_per_kind": mkc_runtime::profile::phase_medians(&starts),
        "work_us_per_kind": per_kind,
        "task_us_median_per_kind": mkc_runtime::profile::kind_medians(works),
        "wait_us_median_per_kind": mkc_runtime::profile::kind_medians(waits),
        "work_share": work / (span * queues.len() as f64).max(1e-9),
        "wait_share": wait / (span * queues.len() as f64).max(1e-9),
        "mean_idle_share_per_sm": mean_idle,
    }))
}

#[cfg(not(feature = "cuda"))]
fn run_bench(_: BenchArgs) -> ExitCode {
    eprintln!("mkc: error: this mkc was built without the `cuda` feature: it cannot run on a GPU");
    ExitCode::FAILURE
}

#[cfg(not(feature = "cuda"))]
fn run_gpu_info(_: GpuInfoArgs) -> ExitCode {
    eprintln!("mkc: error: this mkc was built without the `cuda` feature");
    ExitCode::FAILURE
}

/// Reads a file, or stdin for `-`; returns (name for diagnostics, text).
fn read_input(path: &str) -> Result<(String, String), String> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(("<stdin>".into(), s))
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read '{path}': {e}"))?;
        let s = String::from_utf8(bytes).map_err(|_| format!("'{path}' is not UTF-8 text"))?;
        Ok((path.to_string(), s))
    }
}

fn write_output(path: Option<&str>, text: &str) -> Result<(), String> {
    match path {
        None | Some("-") => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write stdout: {e}")),
        Some(p) => std::fs::write(p, text).map_err(|e| format!("cannot write '{p}': {e}")),
    }
}
