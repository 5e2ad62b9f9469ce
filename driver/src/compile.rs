//! `compile`: a model to any level, as a value. Import, attach the target, run the level's
//! pipeline (or the caller's), and for the megakernel's levels generate the kernel (and,
//! with MLIR, its PTX). An artifact of a Hugging Face decode step may hold other programs
//! for short and long steps (`short/`, `long/`): this module decides when, and compiles
//! them beside the main one.

use crate::import::{import_model, ModelOptions};
use crate::level::{Level, PipelineOptions};
use mkc_ir::dialect::kernel::KernelPlan;
use mkc_ir::dialect::task::TaskProgram;
use mkc_ir::dialect::tg::{self, DecodeAttention, DecodeHeads};
use mkc_ir::{Body, Target, TargetSpec};
use mkc_kernel::Kernel;
use mkc_passes::manager::RunReport;
use mkc_passes::options::PassOptions;
use mkc_tasks::schedule::{Estimate, Machine};
use mkc_tasks::traffic::StepTraffic;
use std::path::{Path, PathBuf};

/// Positions below which an artifact runs its short steps' program by default.
pub const DEFAULT_SHORT_STEPS: i64 = 192;

/// Everything that decides what `compile` makes.
#[derive(Clone, Debug, PartialEq)]
pub struct CompileOptions {
    pub model: ModelOptions,
    /// The GPU: a preset (or a .mlir module's own target) with any field overridden.
    pub target: TargetSpec,
    pub level: Level,
    /// Replaces the level's default pipeline.
    pub pipeline: Option<String>,
    /// The default pipelines' options (the kernel's among them: a pipeline of the kernel
    /// levels without `select-kernels` gets one with these after it).
    pub passes: PipelineOptions,
    /// Artifact: steps below this position run a program with attention unsplit (0: none;
    /// `None`: [`DEFAULT_SHORT_STEPS`] where the defaults apply).
    pub short_steps: Option<i64>,
    /// Artifact: steps from this position on run a program with attention in tiles of a KV
    /// head's query heads (0: none; `None`: where one layer's K cache reaches 2^20 values).
    pub long_steps: Option<i64>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            model: ModelOptions::default(),
            target: TargetSpec::default(),
            level: Level::Fused,
            pipeline: None,
            passes: PipelineOptions::default(),
            short_steps: None,
            long_steps: None,
        }
    }
}

/// A generated megakernel and, in a build with MLIR, its PTX.
pub struct CompiledKernel {
    pub kernel: Kernel,
    pub ptx: Option<String>,
    /// Seconds to generate and lower it.
    pub seconds: f64,
}

/// Another program of an artifact: its folder, the position it starts (`long`) or ends
/// (`short`) at, and the program.
pub struct Alternate {
    pub name: &'static str,
    pub steps: i64,
    pub compiled: Compiled,
}

/// What `compile` made.
pub struct Compiled {
    pub model: PathBuf,
    pub level: Level,
    pub target: Target,
    /// The pipeline that ran.
    pub pipeline: String,
    pub body: Body,
    pub report: RunReport,
    pub import_s: f64,
    /// The bytes a step must move (read at the tensor level, before any pass).
    pub traffic: StepTraffic,
    /// The task program, when the pipeline made one.
    pub program: Option<TaskProgram>,
    /// The schedule's estimate, when it is scheduled.
    pub estimate: Option<Estimate>,
    /// The megakernel, at the kernel levels.
    pub kernel: Option<CompiledKernel>,
    /// An artifact's other programs.
    pub alternates: Vec<Alternate>,
}

impl Compiled {
    /// The positions below which the `short/` program runs (0: none).
    pub fn short_steps(&self) -> i64 {
        self.alternate_steps("short")
    }

    /// The position from which the `long/` program runs (0: none).
    pub fn long_steps(&self) -> i64 {
        self.alternate_steps("long")
    }

    fn alternate_steps(&self, name: &str) -> i64 {
        self.alternates
            .iter()
            .find(|a| a.name == name)
            .map_or(0, |a| a.steps)
    }
}

/// The machine the schedule's estimate assumes: the target, with measured costs when the
/// options name a cost model.
pub fn machine(target: &Target, passes: &PipelineOptions) -> Result<Machine, String> {
    let mut m = Machine::new(target);
    if let Some(f) = &passes.cost_model {
        m.read_cost_model(f)?;
    }
    Ok(m)
}

/// Compiles `model` as `o` says.
pub fn compile(model: &Path, o: &CompileOptions) -> Result<Compiled, String> {
    let start = std::time::Instant::now();
    let mut body = import_model(model, &o.model)?;
    let import_s = start.elapsed().as_secs_f64();
    let target = o.target.apply(&mut body)?;
    // Traffic is a property of the model, read at the tensor level before any pass.
    let func = mkc_ir::dialect::builtin::first_func(&body).ok_or("the model has no function")?;
    let traffic = mkc_tasks::traffic::step_traffic(&body, func)?;
    let pipeline = o
        .pipeline
        .clone()
        .unwrap_or_else(|| o.level.pipeline(&o.passes));
    let plan = alternates_plan(o, &target, &body)?;
    // The other programs compile each on a thread of its own while the main program
    // compiles on this one (threads with the main thread's stack: the passes recurse as
    // deep on either).
    let imported = body.clone();
    let (alternates, main) = std::thread::scope(|s| {
        let threads: Vec<_> = plan
            .programs
            .iter()
            .map(|&program| {
                let (target, imported) = (&target, &imported);
                std::thread::Builder::new()
                    .stack_size(8 << 20)
                    .spawn_scoped(s, move || {
                        compile_alternate(model, o, target, program, imported)
                    })
            })
            .collect();
        let main = compile_main(&mut body, &pipeline, o, &target);
        let alternates: Result<Vec<Alternate>, String> = threads
            .into_iter()
            .map(|t| {
                t.map_err(|e| format!("cannot start a thread: {e}"))?
                    .join()
                    .map_err(|_| {
                        "internal error: compiling another program of the artifact panicked"
                            .to_string()
                    })?
            })
            .collect();
        (alternates, main)
    });
    let MainProgram {
        report,
        program,
        estimate,
        kernel,
    } = main?;
    let alternates = alternates?;
    let compiled = Compiled {
        model: model.to_path_buf(),
        level: o.level,
        target,
        pipeline,
        body,
        report,
        import_s,
        traffic,
        program,
        estimate,
        kernel,
        alternates,
    };
    check_shared_memory(&compiled)?;
    Ok(compiled)
}

/// The main program's products beside its module.
struct MainProgram {
    report: RunReport,
    program: Option<TaskProgram>,
    estimate: Option<Estimate>,
    kernel: Option<CompiledKernel>,
}

/// The main program: `pipeline` run on `body`, its task program and the schedule's
/// estimate, and at the megakernel's levels its kernel.
fn compile_main(
    body: &mut Body,
    pipeline: &str,
    o: &CompileOptions,
    target: &Target,
) -> Result<MainProgram, String> {
    let report = crate::run_pipeline(body, pipeline)?;
    let program = TaskProgram::find(body)
        .map(|_| TaskProgram::from_body(body))
        .transpose()?;
    let estimate = match program
        .as_ref()
        .and_then(|p| Some((p, p.schedule.as_ref()?)))
    {
        Some((p, s)) => Some(mkc_tasks::schedule::estimate(
            &p.graph,
            s,
            &machine(target, &o.passes)?,
        )?),
        None => None,
    };
    let kernel = if o.level.is_kernel() {
        if program.as_ref().is_none_or(|p| p.schedule.is_none()) {
            return Err(
                "--emit=mlir|ptx|artifact needs a pipeline that ends with 'schedule'".into(),
            );
        }
        if KernelPlan::find(body).is_none() {
            let select = format!(
                "builtin.module({})",
                o.passes.kernel.spell("select-kernels")
            );
            crate::run_pipeline(body, &select)?;
        }
        Some(generate_kernel(body, o.level)?)
    } else {
        None
    };
    Ok(MainProgram {
        report,
        program,
        estimate,
        kernel,
    })
}

/// The megakernel of a scheduled module with its kernel plan, and its PTX where this build
/// can lower it.
fn generate_kernel(body: &Body, level: Level) -> Result<CompiledKernel, String> {
    let start = std::time::Instant::now();
    let kernel = mkc_kernel::generate(body)?;
    let ptx = if level >= Level::Ptx {
        Some(crate::lower_to_ptx(&kernel)?)
    } else {
        None
    };
    Ok(CompiledKernel {
        kernel,
        ptx,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The other programs an artifact holds, and the parts of attention each takes.
struct AlternatesPlan {
    /// (folder, position it starts or ends at, attention parts).
    programs: Vec<(&'static str, i64, i64)>,
}

/// `short_steps` and `long_steps`: which other programs to compile (as asked, or as the
/// defaults choose), checked against the model and the options.
fn alternates_plan(
    o: &CompileOptions,
    target: &Target,
    body: &Body,
) -> Result<AlternatesPlan, String> {
    let by_default = o.level == Level::Artifact
        && o.pipeline.is_none()
        && o.passes.attention_parts == 0
        && takes_position(body);
    let short_steps = match o.short_steps {
        Some(p) if p < 0 => return Err(format!("--short-steps must be 0 or more, not {p}")),
        Some(p) => p,
        None if by_default => DEFAULT_SHORT_STEPS,
        None => 0,
    };
    let attention = attention_heads(body);
    let long_steps = match o.long_steps {
        Some(p) if p < 0 => return Err(format!("--long-steps must be 0 or more, not {p}")),
        Some(p) => p,
        None if by_default => attention.as_ref().map_or(0, default_long_steps),
        None => 0,
    };
    if short_steps > 0 && long_steps > 0 && long_steps < short_steps {
        return Err(format!(
            "--long-steps {long_steps} is below --short-steps {short_steps}: each position runs one program"
        ));
    }
    let mut programs = Vec::new();
    for (name, steps) in [("short", short_steps), ("long", long_steps)] {
        if steps == 0 {
            continue;
        }
        if o.level != Level::Artifact || o.pipeline.is_some() {
            return Err(format!("--{name}-steps makes another program of an artifact: it needs --emit=artifact and the default pipeline"));
        }
        if !takes_position(body) {
            return Err(format!(
                "--{name}-steps needs a decode step that takes the position (a Hugging Face model)"
            ));
        }
        let parts = if name == "short" {
            1
        } else {
            let s = attention.ok_or("--long-steps needs a model with decode attention")?;
            if s.kv_heads >= s.heads {
                return Err(format!(
                    "--long-steps needs grouped-query attention; this model has {} KV heads for {} query heads",
                    s.kv_heads, s.heads
                ));
            }
            (target.sms as i64 / s.kv_heads).clamp(2, 16)
        };
        programs.push((name, steps, parts));
    }
    Ok(AlternatesPlan { programs })
}

/// Compiles the imported step again for each other program of the plan: the same options,
/// attention in the program's parts, no programs of its own.
/// One of the other programs of an artifact: (its folder, the position it starts or ends
/// at, its attention parts).
fn compile_alternate(
    model: &Path,
    o: &CompileOptions,
    target: &Target,
    (name, steps, parts): (&'static str, i64, i64),
    imported: &Body,
) -> Result<Alternate, String> {
    let passes = PipelineOptions {
        attention_parts: parts,
        ..o.passes.clone()
    };
    let pipeline = Level::Artifact.pipeline(&passes);
    let mut body = imported.clone();
    let report = crate::run_pipeline(&mut body, &pipeline)?;
    let p = TaskProgram::from_body(&body)?;
    let func = mkc_ir::dialect::builtin::first_func(imported).ok_or("the model has no function")?;
    let kernel = Some(generate_kernel(&body, Level::Artifact)?);
    Ok(Alternate {
        name,
        steps,
        compiled: Compiled {
            model: model.to_path_buf(),
            level: Level::Artifact,
            target: target.clone(),
            pipeline,
            traffic: mkc_tasks::traffic::step_traffic(imported, func)?,
            body,
            report,
            import_s: 0.0,
            program: Some(p),
            estimate: None,
            kernel,
            alternates: Vec::new(),
        },
    })
}

/// The programs of an artifact must run on one memory: every input and weight placed alike,
/// every buffer but the workspace sized alike (checked again when the runtime loads them).
fn check_shared_memory(c: &Compiled) -> Result<(), String> {
    if c.alternates.is_empty() {
        return Ok(());
    }
    let parse = |compiled: &Compiled, name: &str| {
        mkc_runtime::image::Program::of_body(compiled.body.clone(), name)
    };
    let main = parse(c, "program.mlir")?;
    let mut sizes: Vec<usize> = main
        .tasks
        .graph
        .buffers
        .values()
        .map(|b| b.bytes as usize)
        .collect();
    for a in &c.alternates {
        let other = parse(&a.compiled, &format!("{}/program.mlir", a.name))?;
        mkc_runtime::image::shares_memory(&main, &other, &mut sizes)
            .map_err(|e| format!("--{}-steps {}: {e}", a.name, a.steps))?;
    }
    Ok(())
}

/// Where the long steps' program starts by default: the position at which one layer's K
/// cache holds 2^20 values, if the caches hold it and attention is grouped (0: none).
/// Measured, not derived: KV-head tiles paid from there for the models timed.
fn default_long_steps(h: &DecodeHeads) -> i64 {
    let per_position = (h.kv_heads * h.head_dim).max(1);
    let at = ((1i64 << 20) + per_position - 1) / per_position;
    if h.kv_heads < h.heads && at < h.positions {
        at
    } else {
        0
    }
}

/// The heads of a step's decode attention (its first `tg.attention`).
fn attention_heads(body: &Body) -> Option<DecodeHeads> {
    let func = mkc_ir::dialect::builtin::first_func(body)?;
    body.walk(func)
        .into_iter()
        .find_map(|o| tg::Attention::of(body, o))?
        .decode_heads()
}

/// Whether `body`'s step is a Hugging Face decode step: (token, position, caches...,
/// weights...), the position its second argument, a scalar i64.
pub fn takes_position(body: &Body) -> bool {
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
