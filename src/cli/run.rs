//! `mkc run` and `mkc check`.

use super::compile::{ModelArgs, TargetArgs};
use super::{finish, EngineArg, LevelArg};
use clap::Args;
use mkc_driver::check::{self, CheckReport, Engine};
use mkc_driver::run::{eos_ids, generate, tokenizer_of, RunOptions};
use mkc_driver::sample::SamplingOptions;
use mkc_driver::stream::TextStream;
use mkc_driver::{Level, PipelineOptions};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Prompt token ids, comma-separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "prompt")]
    pub prompt_ids: Vec<i64>,
    /// Prompt text, encoded with the model's tokenizer (a GGUF file's own, else the
    /// tokenizer.json beside its config); the generated tokens are then decoded too.
    #[arg(long, conflicts_with = "prompt_ids")]
    pub prompt: Option<String>,
    /// Tokens to generate after the prompt, at most (generation ends earlier at an
    /// end-of-sequence token or a --stop string). The prompt and these must fit the model's
    /// context (its max_position_embeddings) and, on the GPU, the artifact's KV cache.
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Generation ends at the model's end-of-sequence tokens (a GGUF file's
    /// tokenizer.ggml.eos_token_id; for a checkpoint, eos_token_id of its
    /// generation_config.json, else of its config.json), which are not printed as text.
    /// With --ignore-eos it never generates them: where one is the best, it takes the next
    /// best (transformers' `min_new_tokens`, llama.cpp's `--ignore-eos`).
    #[arg(long)]
    pub ignore_eos: bool,
    /// End the generation once the generated text contains STRING (repeatable; needs a
    /// tokenizer). The text is printed up to it, without it.
    #[arg(long, value_name = "STRING")]
    pub stop: Vec<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// What runs the step (shared by `run` and `chat`).
#[derive(Args)]
pub struct EngineArgs {
    /// What runs the step. Default: gpu when the CUDA driver reports a device, else interp
    /// (said on stderr). On the GPU without --artifact, the model is compiled on first use
    /// (in a build with MLIR) and the artifact cached under $XDG_CACHE_HOME or ~/.cache,
    /// in mkc/artifacts/, keyed by the model's bytes, the options and the mkc version.
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
    /// The IR level the interpreter runs: tensor or fused (other levels are refused).
    #[arg(long, value_enum, default_value = "fused")]
    pub level: LevelArg,
    /// --engine gpu: the artifact compiled from this model (`--emit=artifact -o DIR`)
    /// instead of the cached one.
    #[arg(long, value_name = "DIR")]
    pub artifact: Option<PathBuf>,
}

impl EngineArgs {
    /// The engine asked for, else the default (said on stderr).
    pub fn engine(&self) -> Engine {
        if let Some(e) = self.engine {
            return e.0;
        }
        let (engine, why) = mkc_driver::session::default_engine();
        eprintln!("mkc: engine {} ({why}; --engine chooses)", engine.name());
        engine
    }
}

/// How each next token is picked (shared by `run` and `chat`).
#[derive(Args)]
pub struct SamplingArgs {
    /// Sampling temperature: 0 (the default) is greedy, the step's own argmax; above 0 the
    /// host draws each token from the softmax of the logits divided by T (the logits then
    /// come back from the GPU every step).
    #[arg(long, value_name = "T", default_value_t = 0.0)]
    pub temperature: f64,
    /// With --temperature: draw only from the K most likely tokens (0: all). Applied after
    /// the temperature and before --top-p, as transformers does.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub top_k: usize,
    /// With --temperature: draw only from the smallest set of most likely tokens whose
    /// probability reaches P, in (0, 1] (1: all).
    #[arg(long, value_name = "P", default_value_t = 1.0)]
    pub top_p: f64,
    /// The seed of the sampler's random generator: the same seed and options give the same
    /// tokens.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn options(&self) -> SamplingOptions {
        SamplingOptions {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        }
    }
}

pub fn run_generate(a: RunArgs) -> ExitCode {
    finish((|| {
        // Without --prompt the tokenizer only decodes: one that cannot be built is a warning.
        let info = match tokenizer_of(&a.model.model) {
            Ok(info) => info,
            Err(e) if a.prompt.is_none() => {
                eprintln!("mkc: warning: {e}; the generated tokens are not decoded");
                None
            }
            Err(e) => return Err(e),
        };
        let tok = info.as_ref().map(|i| &i.tokenizer);
        let mut prompt = a.prompt_ids.clone();
        if let Some(text) = &a.prompt {
            let t = tok.ok_or_else(|| {
                format!(
                    "--prompt needs a tokenizer: {} is not a GGUF file with one, and there is no tokenizer.json beside it (or give --prompt-ids)",
                    a.model.model.display()
                )
            })?;
            let enc = t
                .encode(text.as_str(), true)
                .map_err(|e| format!("cannot encode the prompt: {e}"))?;
            prompt = enc.get_ids().iter().map(|&i| i as i64).collect();
            if prompt.is_empty() {
                return Err("the prompt encodes to no tokens".into());
            }
        }
        if !a.stop.is_empty() && tok.is_none() {
            return Err(format!(
                "--stop needs a tokenizer to decode the text: {} is not a GGUF file with one, and there is no tokenizer.json beside it",
                a.model.model.display()
            ));
        }
        let eos: Vec<i64> = match &info {
            Some(i) => i.eos.clone(),
            None => eos_ids(&a.model.model)?,
        }
        .into_iter()
        .map(i64::from)
        .collect();
        if a.ignore_eos && eos.is_empty() {
            return Err(format!(
                "--ignore-eos: {} names no end-of-sequence token (no eos_token_id in its metadata, generation_config.json or config.json)",
                a.model.model.display()
            ));
        }
        let (banned, eos) = if a.ignore_eos {
            (eos, Vec::new())
        } else {
            (Vec::new(), eos)
        };
        let o = RunOptions {
            model: a.model.options(),
            engine: a.engine.engine(),
            level: a.engine.level.0,
            artifact: a.engine.artifact.clone(),
            target: a.target.spec()?,
            banned,
            eos,
            sampling: a.sampling.options(),
        };
        // The text as it comes where there is a tokenizer, else the token ids.
        let mut stream = tok.map(|t| TextStream::of_tokenizer(t, &a.stop));
        let mut out = std::io::stdout();
        let g = generate(&a.model.model, &o, &prompt, a.max_new_tokens, &mut |t| {
            let flow = match &mut stream {
                Some(s) => {
                    let piece = s.push(t as u32)?;
                    let _ = write!(out, "{}", piece.text);
                    if piece.stop {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                None => {
                    let _ = write!(out, "{t} ");
                    ControlFlow::Continue(())
                }
            };
            let _ = out.flush();
            Ok(flow)
        })?;
        let text = match &mut stream {
            Some(s) => {
                print!("{}", s.finish()?.text);
                format!(",\"text\":{}", serde_json::Value::from(s.text()))
            }
            None => String::new(),
        };
        println!();
        println!(
            "{{\"engine\":\"{}\",\"level\":\"{}\",\"prompt\":{},\"generated\":{:?},\"stop_reason\":\"{}\",\"tokens_per_s\":{:.1}{text}}}",
            o.engine.name(),
            g.level,
            prompt.len(),
            g.generated,
            g.stop_reason.name(),
            g.steps as f64 / g.seconds.max(1e-9)
        );
        Ok(())
    })())
}

#[derive(Args)]
pub struct CheckArgs {
    /// A fixture folder (config.json, model.safetensors, reference.safetensors), or any
    /// model (a checkpoint folder or a .gguf file) with --reference.
    pub fixture: PathBuf,
    /// The reference to compare with: a safetensors file with `tokens_bf16` [n] (the tokens
    /// fed, one per position) and `logits_f32` [n, vocab] (row i: the logits after token i),
    /// as the fixtures' reference.safetensors. Default: reference.safetensors beside the model.
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,
    /// What computes the logits.
    #[arg(long, value_enum, default_value = "interp")]
    pub engine: EngineArg,
    /// Use the fixture's model.onnx (full-sequence forward) instead of its checkpoint.
    #[arg(long)]
    pub onnx: bool,
    /// The level to run: the imported tensor IR, or the fused IR (after `compile
    /// --emit=fused`'s pipeline).
    #[arg(long, value_enum, default_value = "tensor")]
    pub level: LevelArg,
    /// Run this pass pipeline on the imported IR before executing it (overrides --level).
    #[arg(long = "pass-pipeline")]
    pub pipeline: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// --engine gpu: the artifact to run (`mkc compile FIXTURE --emit=artifact -o DIR`).
    #[arg(long, value_name = "DIR")]
    pub artifact: Option<PathBuf>,
    /// --engine sim: run the check once per seed 0..N (a seed picks the interleaving of
    /// the SM queues); the report is the worst run.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// --engine gpu: do not run the simulator beside the GPU (for models it is too slow
    /// for); the GPU is then checked against the reference only.
    #[arg(long)]
    pub no_sim: bool,
    /// Multiply q8_0/q4_0/q4_1 weights by activations rounded to 8 bits (the
    /// `int8-activations` pass first, as `compile --int8-activations` does).
    #[arg(long)]
    pub int8_activations: bool,
    /// Print a line per position.
    #[arg(long, short)]
    pub verbose: bool,
}

/// The tolerance of an engine: the interpreter computes like the reference, so it must
/// agree everywhere; the simulator and the GPU store bf16 and compute each task in f32 or
/// better: 2e-2, and at most one argmax flipping at a near tie.
fn tolerance(engine: Engine) -> (f64, usize) {
    match engine {
        Engine::Interp => (1e-3, 0),
        Engine::Sim | Engine::Gpu => (2e-2, 1),
    }
}

fn progress(verbose: bool) -> impl FnMut(usize, f64, bool) {
    move |pos, err, agree| {
        if verbose {
            eprintln!(
                "position {pos:>3}: rel_err {err:.3e} argmax {}",
                if agree { "agrees" } else { "DIFFERS" }
            );
        }
    }
}

pub fn run_check(a: CheckArgs) -> ExitCode {
    let engine = a.engine.0;
    // GPU-only options are refused with another engine rather than silently ignored.
    if engine != Engine::Gpu {
        if let Some(art) = &a.artifact {
            return finish(Err(format!(
                "--artifact {}: an artifact runs only with --engine gpu (not --engine {})",
                art.display(),
                engine.name()
            )));
        }
        if a.no_sim {
            return finish(Err(format!(
                "--no-sim only means something with --engine gpu (not --engine {})",
                engine.name()
            )));
        }
    }
    if engine == Engine::Gpu {
        if a.int8_activations {
            return finish(Err(
                "--int8-activations with --engine gpu: the artifact decides the arithmetic; compile it with `mkc compile MODEL --int8-activations --emit=artifact` and pass --artifact".into(),
            ));
        }
        return run_check_gpu(&a);
    }
    let (tol, flips) = tolerance(engine);
    let mut progress = progress(a.verbose);
    let result = (|| -> Result<CheckReport, String> {
        let target = a.target.spec()?;
        // The simulator runs the scheduled program.
        let level = match engine {
            Engine::Sim => Level::Schedule,
            _ => a.level.0,
        };
        let pipeline = a.pipeline.clone().unwrap_or_else(|| match level {
            Level::Tensor => String::new(),
            level => level.pipeline(&PipelineOptions::default()),
        });
        let pipeline = if !a.int8_activations {
            pipeline
        } else if pipeline.is_empty() {
            "builtin.module(int8-activations)".to_string()
        } else if let Some(rest) = pipeline.strip_prefix("builtin.module(") {
            format!("builtin.module(int8-activations,{rest}")
        } else {
            format!("int8-activations,{pipeline}")
        };
        let mut worst: Option<CheckReport> = None;
        for seed in 0..a.seeds.max(1) {
            let run = check::CheckRun {
                engine,
                seed,
                pipeline: &pipeline,
                target: &target,
            };
            let reference = check::reference_path(&a.fixture, a.reference.as_deref())?;
            let report = if a.onnx {
                check::check_onnx(&a.fixture, &reference, &run, &mut progress)
            } else {
                check::check_hf(&a.fixture, &reference, &run, &mut progress)
            }
            .map_err(|e| format!("seed {seed}: {e}"))?;
            if a.seeds > 1 {
                eprintln!("seed {seed}: {}", report.json());
            }
            // A NaN error is the worst (a tuple comparison with NaN is false).
            let worse = worst.as_ref().is_none_or(|w| {
                report.max_rel_err().is_nan()
                    || (report.argmax_agree(), -report.max_rel_err())
                        < (w.argmax_agree(), -w.max_rel_err())
            });
            if worse {
                worst = Some(report);
            }
        }
        Ok(worst.expect("at least one seed"))
    })();
    let report = match result {
        Ok(r) => r,
        Err(e) => return finish(Err(e)),
    };
    println!("{}", report.json());
    judge(&report, tol, flips, None)
}

/// Exit 0 when the report is within the tolerance (and the GPU within `vs_sim`'s bound of
/// the simulator: its worst difference, then the bound), else say why.
fn judge(report: &CheckReport, tol: f64, flips: usize, vs_sim: Option<(f64, f64)>) -> ExitCode {
    let ok = report.max_rel_err() <= tol
        && report.argmax_agree() + flips >= report.per_position.len()
        && vs_sim.is_none_or(|(d, bound)| d <= bound);
    if ok {
        return ExitCode::SUCCESS;
    }
    let sim = vs_sim.map_or(String::new(), |(d, bound)| {
        format!(", GPU vs simulator {d:.3e} (tolerance {bound:e})")
    });
    eprintln!(
        "mkc: check failed: max_rel_err {:.3e} (tolerance {tol:e}), argmax agrees at {} of {} positions{sim}",
        report.max_rel_err(),
        report.argmax_agree(),
        report.per_position.len()
    );
    ExitCode::FAILURE
}

#[cfg(feature = "cuda")]
fn run_check_gpu(a: &CheckArgs) -> ExitCode {
    let (tol, flips) = tolerance(Engine::Gpu);
    let mut progress = progress(a.verbose);
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
                compiled = mkc_driver::artifact::compile_to_temp(&model)?;
                eprintln!(
                    "mkc: compiled {} to {}",
                    model.display(),
                    compiled.display()
                );
                &compiled
            }
        };
        let reference = check::reference_path(&a.fixture, a.reference.as_deref())?;
        if a.onnx {
            check::check_onnx_gpu(&a.fixture, &reference, dir, &mut progress)
                .map(|(r, d)| (r, Some((d, check::GPU_VS_SIM))))
        } else {
            let verbose = a.verbose;
            let mut vs_sim = |pos: usize, d: f64| {
                if verbose {
                    eprintln!("position {pos:>3}: GPU vs simulator {d:.3e}");
                }
            };
            check::check_hf_gpu(
                &a.fixture,
                &reference,
                dir,
                !a.no_sim,
                &mut progress,
                &mut vs_sim,
            )
        }
    })();
    match result {
        Ok((report, vs_sim)) => {
            let mut j = report.json();
            j.pop();
            match vs_sim {
                Some((d, _)) => println!("{j},\"max_rel_err_vs_sim\":{d:.6e}}}"),
                None => println!("{j},\"max_rel_err_vs_sim\":null}}"),
            }
            judge(&report, tol, flips, vs_sim)
        }
        Err(e) => finish(Err(e)),
    }
}

#[cfg(not(feature = "cuda"))]
fn run_check_gpu(_: &CheckArgs) -> ExitCode {
    finish(Err(
        "this mkc was built without the `cuda` feature: it cannot run --engine gpu".into(),
    ))
}
