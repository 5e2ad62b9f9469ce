//! `mkc`: the command line. Each subcommand parses its arguments into the driver's typed
//! options (`mkc-driver`), calls it, and prints what it returns; the compiler itself is the
//! driver and the level crates.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    Opt(cli::tools::OptArgs),
    /// Import a model into the tensor level (`tg` dialect) and print it.
    ///
    /// MODEL is a Hugging Face checkpoint folder (config.json + model.safetensors, or
    /// sharded with model.safetensors.index.json), a bare config.json (shapes only: enough to
    /// compile), or an .onnx file. Checkpoints are checked tensor by tensor against the
    /// config. The result is the decode step: (token, position, KV caches, weights) ->
    /// (logits, updated caches); weights are arguments named by their checkpoint names.
    Import(cli::compile::ImportArgs),
    /// Compile a model: import, then the default pipeline up to the --emit level.
    ///
    /// Every level is compiled for a target (--target, a preset; --sms, --bandwidth and
    /// --target-field override its fields), which the module carries as `mkc.target`.
    /// --emit=tensor: canonicalize, cse, dce. --emit=fused: canonicalize, fuse (equality
    /// saturation, fusion rules, cost model), cse, dce: one fused.group per task kind.
    /// --emit=tasks adds `tile` (every group's results cut into tasks with exact byte ranges and
    /// events; a task.graph next to the function), --emit=schedule adds `schedule` (SM and
    /// queue slot per task), --emit=schedule-svg draws it; --emit=mlir|ptx generate
    /// the megakernel, --emit=artifact -o DIR writes what `mkc bench/check/run --engine gpu`
    /// load (PTX, task tables, the scheduled program, config, manifest).
    /// --stats FILE writes one JSON object with per-pass wall times and counters (for fuse:
    /// e-nodes, e-classes, iterations, stop reason, rule hits, cost before and after),
    /// "fused_groups", and "step_traffic": the bytes a step must read (weights, the embedding
    /// row it looks up, full KV caches; cache_bytes_per_position for shorter contexts) and
    /// writes, and floor_ms = read_bytes / the target's bandwidth; with a task level, "tasks" (counts,
    /// tasks per kind, and the schedule's estimate: step, floor, critical path, busy time per
    /// SM).
    Compile(Box<cli::compile::CompileArgs>),
    /// Generate tokens with a Hugging Face model (checkpoint, GGUF file, or config with
    /// --random-weights): greedily, or sampled with --temperature.
    ///
    /// Feeds the prompt one position at a time through the decode step, then appends the
    /// step's argmax (or, with --temperature, a token the host draws from the step's logits,
    /// seeded by --seed) until the model's end-of-sequence token, a --stop string or
    /// --max-new-tokens; prints the text as it comes when the model has a tokenizer (a GGUF
    /// file's own, or a tokenizer.json beside it), else the token ids, then a JSON line with
    /// the tokens, the stop_reason ("eos", "stop_string" or "max_new_tokens") and tokens/s.
    /// --engine interp runs the step on the CPU reference interpreter (--level fused: the
    /// fused IR); --engine sim the scheduled program on the GPU simulator; --engine gpu a
    /// compiled artifact on the GPU, which computes each step's argmax: --artifact DIR, else
    /// the one cached for the model, compiled on first use. Without --engine: gpu when there
    /// is a CUDA device, else interp.
    Run(cli::run::RunArgs),
    /// Serve a model over HTTP with OpenAI's API (completions, chat, models, health, metrics).
    ///
    /// Loads MODEL once on --engine (as `mkc run` takes it), then listens on --host:--port:
    /// POST /v1/completions (a prompt as text or as an array of token ids) and
    /// POST /v1/chat/completions (the model's chat template), whole or with "stream": true as
    /// server-sent events in OpenAI's chunk format; max_tokens, temperature, top_p, top_k,
    /// seed and stop as OpenAI defines them; answers carry the generated token_ids too.
    /// GET /v1/models, GET /health, and GET /metrics (Prometheus text: requests, tokens, time
    /// to first token, time per output token, queue depth). One sequence runs at a time:
    /// requests queue in arrival order; a request sharing a prefix with the previous one's
    /// tokens reuses its KV cache; a client that disconnects cancels its generation. Bad
    /// requests get OpenAI-style JSON errors (4xx). The first line on stdout is
    /// `mkc serve: listening on http://ADDRESS`; one line per request goes to stderr; Ctrl-C
    /// stops it.
    Serve(cli::serve::ServeArgs),
    /// Chat with a model through its own chat template, the KV cache kept across turns.
    ///
    /// Reads one user message a line from stdin (/exit or end of input ends, /reset starts
    /// over), renders the whole conversation with the model's chat template (a GGUF file's
    /// tokenizer.chat_template, tokenizer_config.json's chat_template, or chat_template.jinja
    /// beside the model; Jinja, as transformers renders it), feeds only the tokens the KV
    /// cache does not already hold, and streams the answer until the model's end-of-sequence
    /// token or --max-new-tokens. Sampling as `mkc run`; --system sets the system message;
    /// --verbose prints each turn's tokens and counts on stderr.
    Chat(Box<cli::chat::ChatArgs>),
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
    Check(cli::run::CheckArgs),
    /// Run ONNX backend test cases on the reference interpreter.
    ///
    /// Each DIR holds model.onnx and test_data_set_N/{input_K.pb, output_K.pb}, as in the
    /// ONNX project's backend node tests. Prints a line per failure with the reason, and last
    /// `N passed, M failed, K skipped` (skipped: a cleanly reported unsupported element type,
    /// such as float8 or string). Exits 1 when any case fails.
    OnnxTest(cli::tools::OnnxTestArgs),
    /// Show the CUDA device and, with --bandwidth, measure its copy bandwidth.
    ///
    /// Prints one JSON object: name, compute capability, SMs, memory, shared memory per
    /// block, and (with --bandwidth) the median device-to-device copy bandwidth (read + write
    /// bytes per second, CUDA events), the denominator of the memory floor; with --ptx, the
    /// result of running the example kernel lowered by `mlir-to-ptx`. Exits 1 with the
    /// reason when there is no driver or device.
    GpuInfo(cli::tools::GpuInfoArgs),
    /// Time the decode step of a compiled artifact on the GPU.
    ///
    /// Loads ARTIFACT (`mkc compile MODEL --emit=artifact -o DIR`) with the checkpoint's
    /// weights (--weights) or random ones, writes one token at position --pos (the KV cache
    /// then holds --pos earlier positions), launches --warmup steps, then times --steps
    /// launches with CUDA events. Prints one JSON line: median ms per step, the bytes the
    /// cost model says a step moves, the achieved GB/s, and that as a share of the measured
    /// device copy bandwidth.
    Bench(cli::tools::BenchArgs),
    /// Fit a cost model to a profiled step, for the scheduler.
    ///
    /// Reads a trace from `mkc bench ARTIFACT --trace TRACE` and fits, per task kind, the
    /// measured work time of its tasks to `fixed + bytes / rate` (least squares). A phase of
    /// the step ends with its slowest task, and the estimate gives every task of a size one
    /// time, so each size is priced at the expected slowest of a phase: with n tasks of the
    /// kind a phase, the n/(n+1) quantile of the size's times; and it keeps how the times
    /// spread within a phase around that price. Writes {"kinds": {KIND: {"fixed_us",
    /// "gbps_per_sm", "tasks", "tasks_per_phase", "quantile", "spread"}}}, which
    /// `schedule{cost-model=FILE}` uses instead of the bandwidth share to place tasks; the
    /// schedule's estimate (compile --stats, and tune --schedule's) draws each task's time
    /// from its kind's spread and averages the step over 32 draws.
    Tune(cli::tools::TuneArgs),
    /// Lower an MLIR file holding `gpu.module`s to PTX, in process (built with `mlir`).
    ///
    /// Runs MLIR's NVVM pipeline (nvvm-attach-target, convert-gpu-to-nvvm, gpu-to-llvm,
    /// gpu-module-to-binary{format=isa}) and prints the PTX of each module. Errors are MLIR's
    /// own diagnostics with their locations.
    #[cfg(feature = "mlir")]
    MlirToPtx(cli::tools::MlirToPtxArgs),
}

/// Restores the default action of SIGPIPE, which Rust's runtime ignores: `mkc import MODEL
/// | head -1` then ends quietly when `head` closes the pipe (status 141, as other Unix tools
/// do) instead of panicking in `println!` on the failed write.
#[cfg(unix)]
fn die_quietly_on_a_closed_pipe() {
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: `signal` is async-signal-safe and called before any other thread starts;
    // SIG_DFL installs no handler code.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn die_quietly_on_a_closed_pipe() {}

fn main() -> ExitCode {
    die_quietly_on_a_closed_pipe();
    let cli = Cli::parse();
    match cli.command {
        Command::Opt(a) => cli::tools::run_opt(a),
        Command::Import(a) => cli::compile::run_import(a),
        Command::Compile(a) => cli::compile::run_compile(*a),
        Command::Run(a) => cli::run::run_generate(a),
        Command::Serve(a) => cli::serve::run_serve(a),
        Command::Chat(a) => cli::chat::run_chat(*a),
        Command::Check(a) => cli::run::run_check(a),
        Command::GpuInfo(a) => cli::tools::run_gpu_info(a),
        Command::Bench(a) => cli::tools::run_bench(a),
        Command::Tune(a) => cli::tools::run_tune(a),
        Command::OnnxTest(a) => cli::tools::run_onnx_test(a),
        #[cfg(feature = "mlir")]
        Command::MlirToPtx(a) => cli::tools::run_mlir_to_ptx(a),
    }
}
