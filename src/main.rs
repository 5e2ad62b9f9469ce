//! `mkc`: the command-line driver. Each subcommand is a thin layer over a library crate.

mod check;
mod onnx_test;

use clap::{Args, Parser, Subcommand};
use mkc_passes::driver::{opt, OptConfig};
use mkc_passes::{Instrumentation, PassRegistry};
use std::io::{Read, Write};
use std::path::PathBuf;
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
    Opt(OptArgs),
    /// Import a model into the tensor level (`tg` dialect) and print it.
    ///
    /// MODEL is a Hugging Face checkpoint folder (config.json + model.safetensors, or
    /// sharded with model.safetensors.index.json), a bare config.json (shapes only: enough to
    /// compile), or an .onnx file. Checkpoints are checked tensor by tensor against the
    /// config. The result is the decode step: (token, position, KV caches, weights) ->
    /// (logits, updated caches); weights are arguments named by their checkpoint names.
    Import(ImportArgs),
    /// Check a model's logits against a fixture's references (teacher-forced).
    ///
    /// Feeds the fixture's `tokens_bf16` one position at a time through the decode step and
    /// compares each position's logits with row i of `logits_f32` from
    /// reference.safetensors. The last line is one JSON object:
    /// {"engine", "frontend", "positions", "max_rel_err", "argmax_agree"}. Exits 0 only
    /// when max_rel_err <= the engine's tolerance (1e-3 for interp) and every argmax agrees.
    Check(CheckArgs),
    /// Run ONNX backend test cases on the reference interpreter.
    ///
    /// Each DIR holds model.onnx and test_data_set_N/{input_K.pb, output_K.pb}, as in the
    /// ONNX project's backend node tests. Prints a line per failure with the reason, and last
    /// `N passed, M failed, K skipped` (skipped: a cleanly reported unsupported element type,
    /// such as float8 or string). Exits 1 when any case fails.
    OnnxTest(OnnxTestArgs),
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
    /// A checkpoint folder, a config.json, or an .onnx file.
    model: PathBuf,
    /// Write the IR here instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
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
    /// Run this pass pipeline on the imported IR before executing it (e.g. `raise`).
    #[arg(long = "pass-pipeline", default_value = "")]
    pipeline: String,
    /// Print a line per position.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Args)]
struct OnnxTestArgs {
    /// Test case folders.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Also print passing and skipped cases.
    #[arg(long, short)]
    verbose: bool,
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
        Command::Check(a) => run_check(a),
        Command::OnnxTest(a) => {
            let (_, failed, _) = onnx_test::run_all(&a.dirs, a.verbose);
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
        print!("{}", PassRegistry::with_builtin_passes().describe());
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
    let out = opt(&name, &text, &config);
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

fn run_import(a: ImportArgs) -> ExitCode {
    let result = (|| -> Result<String, String> {
        let registry = mkc_ir::Registry::with_all_dialects();
        if a.model.extension().is_some_and(|e| e == "onnx") {
            use mkc_frontends::onnx::{import, ImportOptions, OnnxModel};
            let model = OnnxModel::open(&a.model).map_err(|e| e.to_string())?;
            let body = import(&model, &ImportOptions::default())
                .map_err(|e| format!("{}: {e}", a.model.display()))?;
            if let Some(e) = mkc_ir::verify::verify(&body, &registry, Default::default()).first() {
                return Err(format!(
                    "internal error: the imported IR does not verify: {}",
                    e.message
                ));
            }
            return Ok(mkc_ir::printer::print(&body));
        }
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
        let body = mkc_frontends::build_decode_step(&model.config, &types, &opts)?;
        if let Some(e) = mkc_ir::verify::verify(&body, &registry, Default::default()).first() {
            return Err(format!(
                "internal error: the imported IR does not verify: {}",
                e.message
            ));
        }
        Ok(mkc_ir::printer::print(&body))
    })();
    match result.and_then(|ir| write_output(a.output.as_deref(), &ir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_check(a: CheckArgs) -> ExitCode {
    let tolerance = match a.engine {
        check::Engine::Interp => 1e-3,
    };
    let verbose = a.verbose;
    let mut progress = |pos: usize, err: f64, agree: bool| {
        if verbose {
            eprintln!(
                "position {pos:>3}: rel_err {err:.3e} argmax {}",
                if agree { "agrees" } else { "DIFFERS" }
            );
        }
    };
    let result = if a.onnx {
        check::check_onnx(&a.fixture, a.engine, &a.pipeline, &mut progress)
    } else {
        check::check_hf(&a.fixture, a.engine, &a.pipeline, &mut progress)
    };
    match result {
        Ok(report) => {
            let ok = report.max_rel_err() <= tolerance
                && report.argmax_agree() == report.per_position.len();
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
        Err(e) => {
            eprintln!("mkc: error: {e}");
            ExitCode::FAILURE
        }
    }
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
