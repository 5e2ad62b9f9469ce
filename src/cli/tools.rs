//! `mkc opt`, `onnx-test`, `tune`, `bench`, `gpu-info` and `mlir-to-ptx`.

use super::compile::TargetArgs;
use super::{finish, read_input, write_output};
use clap::Args;
use mkc_passes::driver::{opt, OptConfig};
use mkc_passes::Instrumentation;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct OptArgs {
    /// Input file; `-` or nothing reads stdin.
    #[arg(default_value = "-")]
    pub input: String,
    /// The pass pipeline, e.g. `builtin.module(func.func(canonicalize,cse),dce)`.
    /// A pipeline without an anchor runs on the module. See --list-passes. Passes read the
    /// machine from the module's `mkc.target` (the H100 preset without one); the
    /// `attach-target{preset=h200 sms=64}` pass sets it.
    #[arg(long = "pass-pipeline", short = 'p', default_value = "")]
    pub pipeline: String,
    /// Write the output here instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// List the available passes with their options and statistics, then exit.
    #[arg(long)]
    pub list_passes: bool,
    /// Print the IR (to stderr) before every pass.
    #[arg(long)]
    pub print_ir_before_all: bool,
    /// Print the IR (to stderr) after every pass.
    #[arg(long)]
    pub print_ir_after_all: bool,
    /// Print the IR before each run of pass P (repeatable, or comma-separated).
    #[arg(long = "print-ir-before", value_name = "P", value_delimiter = ',')]
    pub print_ir_before: Vec<String>,
    /// Print the IR after each run of pass P (repeatable, or comma-separated).
    #[arg(long = "print-ir-after", value_name = "P", value_delimiter = ',')]
    pub print_ir_after: Vec<String>,
    /// Print the IR after a pass only when the pass changed it.
    #[arg(long)]
    pub print_ir_after_change: bool,
    /// Report the wall time of every pass (to stderr).
    #[arg(long)]
    pub timing: bool,
    /// Report the counters each pass declares (to stderr).
    #[arg(long)]
    pub pass_statistics: bool,
    /// Do not verify the IR after each pass (the input is still verified).
    #[arg(long)]
    pub no_verify: bool,
    /// Accept ops of dialects mkc does not know.
    #[arg(long)]
    pub allow_unregistered_dialect: bool,
}

pub fn run_opt(a: OptArgs) -> ExitCode {
    let passes = mkc_driver::pass_registry();
    if a.list_passes {
        print!("{}", passes.describe());
        return ExitCode::SUCCESS;
    }
    let (name, text) = match read_input(&a.input) {
        Ok(t) => t,
        Err(e) => return finish(Err(e)),
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
    let out = opt(&name, &text, &config, &passes);
    eprint!("{}", out.log);
    match out.result {
        Ok(ir) => finish(write_output(a.output.as_deref(), &ir)),
        Err(diags) => {
            eprint!("{diags}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Args)]
pub struct OnnxTestArgs {
    /// Test case folders.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Also print passing and skipped cases.
    #[arg(long, short)]
    pub verbose: bool,
    /// Run this pass pipeline on each imported model before executing it (e.g. `fuse`): the
    /// suite then checks that the passes preserve every case's results.
    #[arg(long = "pass-pipeline", default_value = "")]
    pub pipeline: String,
}

pub fn run_onnx_test(a: OnnxTestArgs) -> ExitCode {
    let (_, failed, _) = mkc_driver::onnx_test::run_all(&a.dirs, a.verbose, &a.pipeline);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Args)]
pub struct TuneArgs {
    /// A trace from `mkc bench ARTIFACT --trace FILE`, as written or gzipped.
    pub trace: PathBuf,
    /// Write the cost model here instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// The scheduled program the trace ran (`mkc compile MODEL --emit=schedule`, or the
    /// artifact's program.mlir; short/program.mlir below --short-steps): the model then takes
    /// the event latency measured in the trace (a waiting task's wait end less its last
    /// producer's end, the median) and the task switch (a task's end to the next one's wait
    /// end on its SM where that one had nothing left to wait for, the 10th percentile), and
    /// one JSON line gives them, the schedule's estimate under the model against the traced
    /// step, and per task kind the mean time its phases add to the step, traced and
    /// estimated (the cost model goes to -o).
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// The GPU the trace was measured on.
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run_tune(a: TuneArgs) -> ExitCode {
    finish((|| {
        let text = read_trace(&a.trace)?;
        let name = a.trace.display().to_string();
        let target = a.target.spec()?.standalone()?;
        let Some(sched) = &a.schedule else {
            let model = mkc_driver::tune::fit_trace(&text, &name, &target)?;
            return write_output(a.output.as_deref(), &model);
        };
        if matches!(a.output.as_deref(), None | Some("-")) {
            return Err(
                "--schedule prints the prediction on stdout: write the cost model with -o FILE"
                    .into(),
            );
        }
        let sched_text = std::fs::read_to_string(sched)
            .map_err(|e| format!("cannot read '{}': {e}", sched.display()))?;
        let sname = sched.display().to_string();
        let t = mkc_driver::tune::tune_against((&text, &name), (&sched_text, &sname), &target)?;
        write_output(a.output.as_deref(), &t.model)?;
        let p = &t.prediction;
        println!(
            "{}",
            serde_json::json!({
                "trace": name,
                "schedule": sname,
                "tasks": p.tasks,
                "event_latency_us": t.event_latency_s.map(|l| l * 1e6),
                "task_switch_us": t.task_switch_s.map(|l| l * 1e6),
                "measured_ms": p.measured_s * 1e3,
                "estimate_ms": p.estimate_s * 1e3,
                "error": p.error(),
                "phases": p.phases.iter().map(|(k, m)| (k.clone(), serde_json::json!({
                    "phases": m.phases,
                    "traced_us": m.traced_us,
                    "estimated_us": m.estimated_us,
                }))).collect::<serde_json::Map<_, _>>(),
            })
        );
        Ok(())
    })())
}

/// The text of the trace at `path`, decompressed where it is gzipped (it starts with
/// gzip's magic bytes).
fn read_trace(path: &std::path::Path) -> Result<String, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| format!("cannot decompress '{}' (gzip): {e}", path.display()))?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "'{}' is not a trace (not UTF-8 text, nor gzipped): {e}",
            path.display()
        )
    })
}

#[derive(Args)]
pub struct BenchArgs {
    /// The artifact folder.
    pub artifact: PathBuf,
    /// A checkpoint folder to take the weights from (default: random weights).
    #[arg(long, value_name = "DIR")]
    pub weights: Option<PathBuf>,
    /// The position the timed step writes (the KV cache holds this many earlier positions).
    #[arg(long, visible_alias = "ctx", default_value_t = 128)]
    pub pos: i64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Also profile one step: write its per-task timeline as a Chrome/Perfetto trace JSON
    /// here (and as an SVG picture beside it, FILE with .svg), and add time per task kind,
    /// the median time of each kind of phase (a group's first task start to the next
    /// group's), the median task and the median wait before a task of each kind, wait share
    /// and idle share per SM to the output.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

#[cfg(feature = "cuda")]
pub fn run_bench(a: BenchArgs) -> ExitCode {
    let o = mkc_driver::bench::BenchOptions {
        weights: a.weights,
        pos: a.pos,
        warmup: a.warmup,
        steps: a.steps,
        trace: a.trace,
    };
    finish(mkc_driver::bench::bench(&a.artifact, &o).map(|j| println!("{j}")))
}

#[cfg(not(feature = "cuda"))]
pub fn run_bench(_: BenchArgs) -> ExitCode {
    finish(Err(
        "this mkc was built without the `cuda` feature: it cannot run on a GPU".into(),
    ))
}

#[derive(Args)]
pub struct GpuInfoArgs {
    /// The device ordinal.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Also measure device-to-device copy bandwidth.
    #[arg(long)]
    pub bandwidth: bool,
    /// Bytes per copy for --bandwidth.
    #[arg(long, default_value_t = 1 << 30)]
    pub bytes: usize,
    /// Timed runs for --bandwidth and --ptx (the median is reported).
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Also load this PTX (from `mkc mlir-to-ptx examples/scale_kernel.mlir`), run its
    /// `scale` kernel on 2^24 floats, compare with the host and time it; exits 1 on any
    /// mismatch.
    #[arg(long, value_name = "FILE")]
    pub ptx: Option<PathBuf>,
}

#[cfg(feature = "cuda")]
pub fn run_gpu_info(a: GpuInfoArgs) -> ExitCode {
    let o = mkc_driver::bench::GpuInfoOptions {
        device: a.device,
        bandwidth: a.bandwidth,
        bytes: a.bytes,
        iters: a.iters,
        ptx: a.ptx,
    };
    finish(mkc_driver::bench::gpu_info(&o).map(|j| println!("{j}")))
}

#[cfg(not(feature = "cuda"))]
pub fn run_gpu_info(_: GpuInfoArgs) -> ExitCode {
    finish(Err("this mkc was built without the `cuda` feature".into()))
}

#[cfg(feature = "mlir")]
#[derive(Args)]
pub struct MlirToPtxArgs {
    /// Input file; `-` or nothing reads stdin.
    #[arg(default_value = "-")]
    pub input: String,
    /// The target GPU architecture.
    #[arg(long, default_value_t = mkc_ir::Target::h100().chip)]
    pub chip: String,
    /// Write the PTX here instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

#[cfg(feature = "mlir")]
pub fn run_mlir_to_ptx(a: MlirToPtxArgs) -> ExitCode {
    let result = mkc_ir::target::check_chip(&a.chip)
        .map_err(|e| format!("--chip {e}"))
        .and_then(|()| read_input(&a.input))
        .and_then(|(name, text)| {
            mkc_lowering::gpu_module_to_ptx(&text, &name, &a.chip, mkc_kernel::BASE_PTX_ISA)
                .map_err(|e| e.to_string())
        });
    finish(result.and_then(|ptx| {
        if ptx.is_empty() {
            return Err("the input holds no gpu.module".to_string());
        }
        write_output(a.output.as_deref(), &ptx.concat())
    }))
}
