//! `mkc`: the command-line driver. Each subcommand is a thin layer over a library crate.

use clap::{Args, Parser, Subcommand};
use mkc_passes::driver::{opt, OptConfig};
use mkc_passes::{Instrumentation, PassRegistry};
use std::io::{Read, Write};
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
    /// Lower an MLIR file holding `gpu.module`s to PTX, in process (built with `mlir`).
    ///
    /// Runs MLIR's NVVM pipeline (nvvm-attach-target, convert-gpu-to-nvvm, gpu-to-llvm,
    /// gpu-module-to-binary{format=isa}) and prints the PTX of each module. Errors are MLIR's
    /// own diagnostics with their locations.
    #[cfg(feature = "mlir")]
    MlirToPtx(MlirToPtxArgs),
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
