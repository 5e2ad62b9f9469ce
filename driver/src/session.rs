//! A session: one model loaded once (weights, the engine's program or artifact) with its KV
//! cache, kept across calls, on any engine (the interpreter, the simulator, the GPU). Each
//! [`Session::generate`] feeds a prompt after the tokens already in the cache and appends
//! what it generates; [`Session::truncate`] forgets a suffix, so a caller reuses a shared
//! prefix (a chat's earlier turns) by truncating to it and feeding only the rest.
//! `mkc run` ([`crate::run::generate`]), `mkc chat` and `mkc serve` all decode through it.

use crate::check::Engine;
use crate::import::{import_model, ModelOptions};
use crate::level::{Level, PipelineOptions};
use crate::sample::Sampler;
use mkc_frontends::config::ModelConfig;
use mkc_frontends::HfModel;
use mkc_ir::weights::{RawTensor, WeightSource};
use mkc_ir::{Body, ElemType, TensorType};
use mkc_runtime::interp::i64_tensor;
use mkc_runtime::Tensor;
use std::ops::ControlFlow;
use std::path::Path;

pub use crate::run::RunOptions;
pub use crate::sample::SamplingOptions;

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It generated an end-of-sequence token.
    Eos,
    /// The caller's `on_token` stopped it (a stop string appeared in the text).
    StopString,
    /// It generated the tokens asked for, or the context is full.
    MaxNewTokens,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::StopString => "stop_string",
            StopReason::MaxNewTokens => "max_new_tokens",
        }
    }
}

/// What a decode produced.
pub struct Generation {
    /// The level that ran ("tensor", "fused", "schedule" or "artifact").
    pub level: &'static str,
    /// The generated tokens, the end-of-sequence one included where it ended them.
    pub generated: Vec<i64>,
    pub stop_reason: StopReason,
    /// Steps run (the tokens fed: the prompt's, and the generated ones but the last).
    pub steps: usize,
    pub seconds: f64,
}

/// One decode step: (token, position, whether the logits are wanted) -> (the step's argmax,
/// the logits when wanted).
type Stepper<'a> = Box<dyn FnMut(i64, usize, bool) -> Result<(i64, Option<Tensor>), String> + 'a>;

/// The weights a model runs with, owning the model they are read from.
type BoxedWeights<'a> = Box<dyn WeightSource + 'a>;

self_cell::self_cell!(
    struct ModelWeights {
        owner: HfModel,
        #[covariant]
        dependent: BoxedWeights,
    }
);

impl WeightSource for ModelWeights {
    fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
        self.borrow_dependent().raw(name)
    }
}

/// What the engine borrows: the weights and, on the CPU, the program it runs.
struct Loaded {
    weights: ModelWeights,
    /// The program and the type of its KV caches.
    body: Option<(Body, TensorType)>,
}

self_cell::self_cell!(
    struct LoadedEngine {
        owner: Loaded,
        #[not_covariant]
        dependent: Stepper,
    }
);

/// One loaded model with its KV cache, kept across calls.
pub struct Session {
    engine: LoadedEngine,
    level: &'static str,
    context: usize,
    vocab: i64,
    /// Tokens never generated (`RunOptions::banned`).
    banned: Vec<i64>,
    /// The tokens in the cache, in order: fed, or generated (the last generated one is fed
    /// by the next call).
    tokens: Vec<i64>,
    /// How many of `tokens` the KV cache holds rows for.
    fed: usize,
}

/// The next token: the step's argmax when greedy and not banned, else the sampler's pick
/// from the logits.
fn pick(
    sampler: &mut Sampler,
    argmax: i64,
    logits: Option<Tensor>,
    banned: &[i64],
) -> Result<i64, String> {
    if sampler.options.is_greedy() && !banned.contains(&argmax) {
        return Ok(argmax);
    }
    let logits = logits.ok_or("internal error: the step returned no logits")?;
    sampler.pick(&logits.to_f64(), banned)
}

impl Session {
    /// Loads the model once (weights, engine, artifact); `context` is the positions the cache
    /// holds (at most the model's max_position_embeddings; on the GPU at most the KV cache
    /// of the artifact given with `--artifact`, which then sets it).
    pub fn open(path: &Path, o: &RunOptions, context: usize) -> Result<Session, String> {
        Session::open_with(path, o, |config| {
            let max = config.max_position_embeddings;
            if context == 0 || context as i64 > max {
                return Err(format!(
                    "{}: a context of {context} positions: it must be from 1 to the model's {max} (its max_position_embeddings)",
                    path.display()
                ));
            }
            Ok(context)
        })
    }

    /// [`Session::open`] with the context chosen (and checked) from the model's config.
    pub(crate) fn open_with(
        path: &Path,
        o: &RunOptions,
        context_of: impl FnOnce(&ModelConfig) -> Result<usize, String>,
    ) -> Result<Session, String> {
        takes_a_model(path)?;
        check_engine_options(o)?;
        o.sampling.validate()?;
        let model = HfModel::open(path)?;
        let context = context_of(&model.config)?;
        let config = model.config.clone();
        let weights =
            ModelWeights::try_new(model, |m| crate::import::model_weights(path, m, &o.model))?;
        let (loaded, level) = if o.engine == Engine::Gpu {
            let loaded = Loaded {
                weights,
                body: None,
            };
            (loaded, "artifact")
        } else {
            let model_opts = ModelOptions {
                ctx: context as i64,
                ..o.model.clone()
            };
            let mut body = import_model(path, &model_opts)?;
            o.target.apply(&mut body)?;
            // The simulator runs the scheduled program; the interpreter the level asked for.
            let run_level = match (o.engine, o.level) {
                (Engine::Sim, _) => Level::Schedule,
                (_, Level::Tensor) => Level::Tensor,
                _ => Level::Fused,
            };
            if run_level != Level::Tensor {
                crate::run_pipeline(&mut body, &run_level.pipeline(&PipelineOptions::default()))?;
            }
            let cache_ty = TensorType::new(
                [model_opts.ctx, config.num_kv_heads, config.head_dim],
                model_opts.compute,
            );
            check_cache_fits(2 * config.num_layers, &cache_ty)?;
            let loaded = Loaded {
                weights,
                body: Some((body, cache_ty)),
            };
            (loaded, run_level.name())
        };
        let mut held = context;
        let engine = LoadedEngine::try_new(loaded, |l| -> Result<Stepper<'_>, String> {
            match &l.body {
                Some((body, cache_ty)) => {
                    cpu_stepper(body, &l.weights, o.engine, cache_ty.clone(), &config)
                }
                None => {
                    let (step, positions) = gpu_stepper(path, o, &l.weights, context)?;
                    held = held.min(positions);
                    Ok(step)
                }
            }
        })?;
        Ok(Session {
            engine,
            level,
            context: held,
            vocab: config.vocab_size,
            banned: o.banned.clone(),
            tokens: Vec::new(),
            fed: 0,
        })
    }

    /// Positions the cache holds.
    pub fn context(&self) -> usize {
        self.context
    }

    /// The tokens already in the cache (fed or generated), in order.
    pub fn tokens(&self) -> &[i64] {
        &self.tokens
    }

    /// The level the engine runs ("tensor", "fused", "schedule" or "artifact").
    pub fn level(&self) -> &'static str {
        self.level
    }

    /// Forgets everything from position `len` on (0: a fresh conversation). Later steps
    /// overwrite those cache rows.
    pub fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
        self.fed = self.fed.min(self.tokens.len());
    }

    /// Feeds `prompt` after the tokens already in the cache, then generates up to `max_new`
    /// tokens (stopping at `eos`, or when `on_token` returns Break, or when the context is
    /// full), sampling with `sampling`. The generated tokens stay in the cache (an
    /// end-of-sequence token too), so the next call continues the conversation. A prompt that
    /// does not fit the context is an error before anything runs. `on_token` sees each
    /// generated token but an end-of-sequence one.
    pub fn generate(
        &mut self,
        prompt: &[i64],
        max_new: usize,
        sampling: &SamplingOptions,
        eos: &[i64],
        on_token: &mut dyn FnMut(i64) -> Result<ControlFlow<()>, String>,
    ) -> Result<Generation, String> {
        let mut sampler = Sampler::new(sampling.clone())?;
        let vocab = self.vocab;
        if let Some(bad) = prompt.iter().find(|&&t| t < 0 || t >= vocab) {
            return Err(format!(
                "prompt token {bad} is outside the vocabulary (0..{vocab})"
            ));
        }
        if prompt.is_empty() && self.tokens.is_empty() {
            return Err("the prompt is empty".into());
        }
        let total = self.tokens.len() + prompt.len();
        if total > self.context {
            return Err(format!(
                "the prompt is {} tokens after the {} already in the cache: {total} positions, more than the context ({} positions)",
                prompt.len(),
                self.tokens.len(),
                self.context
            ));
        }
        // With nothing new to feed, the last token is fed again (its cache row rewritten
        // alike) for its step's logits.
        if prompt.is_empty() && self.fed == self.tokens.len() {
            self.fed -= 1;
        }
        self.tokens.extend_from_slice(prompt);
        // The tokens generated stay within the context.
        let max_new = max_new.min(self.context - self.tokens.len());
        // The logits come back to the host only where the host picks from them.
        let want_logits = !sampling.is_greedy() || !self.banned.is_empty();
        let start = std::time::Instant::now();
        let mut generated = Vec::new();
        let mut stop_reason = StopReason::MaxNewTokens;
        let mut steps = 0;
        while generated.len() < max_new {
            let pos = self.fed;
            let token = self.tokens[pos];
            let last = pos + 1 == self.tokens.len();
            let at = |e: String| format!("position {pos}: {e}");
            let (argmax, logits) = self
                .engine
                .with_dependent_mut(|_, step| step(token, pos, last && want_logits))
                .map_err(at)?;
            self.fed += 1;
            steps += 1;
            if !last {
                continue;
            }
            let next = pick(&mut sampler, argmax, logits, &self.banned).map_err(at)?;
            self.tokens.push(next);
            generated.push(next);
            if eos.contains(&next) {
                stop_reason = StopReason::Eos;
                break;
            }
            if on_token(next)?.is_break() {
                stop_reason = StopReason::StopString;
                break;
            }
        }
        Ok(Generation {
            level: self.level,
            generated,
            stop_reason,
            steps,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// Refuses what sessions do not run: ONNX graphs (no decode step) and IR modules (no
/// config or tokenizer of a model).
pub(crate) fn takes_a_model(path: &Path) -> Result<(), String> {
    const TAKES: &str =
        "run takes a Hugging Face model (a checkpoint folder, a config.json or a GGUF file)";
    if crate::import::is_onnx(path) {
        return Err(format!(
            "{}: {TAKES}; ONNX graphs have no decode step",
            path.display()
        ));
    }
    if path.extension().is_some_and(|e| e == "mlir") {
        return Err(format!(
            "{}: {TAKES}; a .mlir module is IR without the model's config: compile it with `mkc compile`, or check a pipeline with `mkc check MODEL --pass-pipeline`",
            path.display()
        ));
    }
    Ok(())
}

/// The most positions a session of the model at `path` may hold: its
/// max_position_embeddings (a GGUF file's context_length).
pub fn max_context(path: &Path) -> Result<usize, String> {
    Ok(HfModel::open(path)?.config.max_position_embeddings.max(0) as usize)
}

/// The engine when none is asked for: the GPU when the CUDA driver reports a device, else
/// the interpreter; and why.
pub fn default_engine() -> (Engine, String) {
    #[cfg(feature = "cuda")]
    let why = match mkc_runtime::gpu::unavailable_reason() {
        None => return (Engine::Gpu, "a CUDA device is present".into()),
        Some(why) => why,
    };
    #[cfg(not(feature = "cuda"))]
    let why = "this mkc was built without the `cuda` feature".to_string();
    (Engine::Interp, format!("no GPU: {why}"))
}

/// Options that mean nothing to the engine asked for are errors, not silently ignored:
/// the interpreter runs the tensor or the fused IR only, and an artifact runs on the GPU.
fn check_engine_options(o: &RunOptions) -> Result<(), String> {
    if o.engine == Engine::Interp && !matches!(o.level, Level::Tensor | Level::Fused) {
        return Err(format!(
            "--level {}: the interpreter runs the tensor or the fused IR (give --level tensor or --level fused)",
            o.level.name()
        ));
    }
    if let (Some(a), false) = (&o.artifact, o.engine == Engine::Gpu) {
        return Err(format!(
            "--artifact {}: an artifact runs only with --engine gpu (not --engine {})",
            a.display(),
            o.engine.name()
        ));
    }
    Ok(())
}

/// A step on the CPU: the interpreter, or the simulator of the scheduled program; the KV
/// caches held here between steps.
fn cpu_stepper<'a>(
    body: &'a Body,
    weights: &'a dyn WeightSource,
    engine: Engine,
    cache_ty: TensorType,
    config: &ModelConfig,
) -> Result<Stepper<'a>, String> {
    let mut interp = mkc_runtime::Interpreter::new(body, weights);
    let func = interp.func("decode_step")?;
    let mut sim = match engine {
        Engine::Sim => Some(mkc_runtime::Simulator::new(body, weights, 0)?),
        _ => None,
    };
    let zero = |_| mkc_ir::dialect::tg::elementwise::Scalar::F(0.0);
    let mut caches: Vec<Tensor> = (0..2 * config.num_layers)
        .map(|_| Tensor::from_fn(cache_ty.clone(), zero))
        .collect();
    Ok(Box::new(move |token, pos, want_logits| {
        let mut inputs = vec![
            i64_tensor(&[], vec![token]),
            i64_tensor(&[], vec![pos as i64]),
        ];
        inputs.append(&mut caches);
        let mut outs = match &mut sim {
            Some(sim) => sim.call(&inputs).map_err(|e| e.to_string()),
            None => interp.call(func, inputs),
        }?;
        let logits = outs.remove(0);
        let next = outs.remove(0).get(0).i();
        caches = outs;
        Ok((next, want_logits.then_some(logits)))
    }))
}

/// A step on the GPU: the artifact's kernel computes the argmax; the host writes the token
/// and the position, and reads the logits back only when it samples from them. Returns the
/// stepper and the positions the artifact's KV cache holds.
#[cfg(feature = "cuda")]
fn gpu_stepper<'a>(
    model: &Path,
    o: &RunOptions,
    weights: &'a dyn WeightSource,
    context: usize,
) -> Result<(Stepper<'a>, usize), String> {
    // No compile for a GPU that is not there.
    if let Some(why) = mkc_runtime::gpu::unavailable_reason() {
        return Err(format!(
            "--engine gpu: {why} (--engine interp runs on the CPU)"
        ));
    }
    let dir = crate::artifact_cache::artifact_for(model, o, context)?;
    let start = std::time::Instant::now();
    let art = mkc_runtime::artifact::Artifact::open(&dir)?;
    art.check_model(&[model])?;
    let program = mkc_runtime::image::Program::parse(&art.program, "program.mlir")?;
    let positions = program.cache_positions().max(0) as usize;
    let stored = crate::import::as_stored(&program.body, weights);
    let mut gpu = mkc_runtime::gpu::GpuRunner::new(&art, &stored, 0)?;
    eprintln!(
        "mkc: loaded {} onto the GPU in {:.2} s",
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    let n = gpu.program.inputs.len();
    let step: Stepper<'a> = Box::new(move |token, pos, want_logits| {
        let t = i64_tensor(&[], vec![token]);
        let p = i64_tensor(&[], vec![pos as i64]);
        let mut inputs: Vec<Option<&Tensor>> = vec![Some(&t), Some(&p)];
        inputs.resize(n, None);
        if !want_logits {
            return Ok((gpu.call(&inputs, &[1])?[0].get(0).i(), None));
        }
        let mut outs = gpu.call(&inputs, &[0, 1])?;
        let next = outs[1].get(0).i();
        Ok((next, Some(outs.swap_remove(0))))
    });
    Ok((step, positions))
}

#[cfg(not(feature = "cuda"))]
fn gpu_stepper<'a>(
    _: &Path,
    _: &RunOptions,
    _: &'a dyn WeightSource,
    _: usize,
) -> Result<(Stepper<'a>, usize), String> {
    Err("this mkc was built without the `cuda` feature: it cannot run on a GPU".into())
}

/// The interpreter holds every KV cache in memory (and a step copies one at a time), so a
/// `--ctx` far beyond what the machine holds is refused up front rather than aborting in the
/// allocator halfway through.
fn check_cache_fits(count: i64, ty: &TensorType) -> Result<(), String> {
    // f32 storage per element in the interpreter (f64 for an f64 compute type).
    let per_elem = if ty.elem == ElemType::F64 { 8 } else { 4 };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Level;
    use mkc_ir::TargetSpec;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    fn options() -> RunOptions {
        RunOptions {
            model: ModelOptions::default(),
            engine: Engine::Interp,
            level: Level::Tensor,
            artifact: None,
            target: TargetSpec::default(),
            banned: Vec::new(),
            eos: Vec::new(),
            sampling: SamplingOptions::default(),
        }
    }

    fn open(context: usize) -> Session {
        Session::open(&fixture("llama-tiny"), &options(), context).unwrap()
    }

    fn gen(s: &mut Session, prompt: &[i64], max_new: usize) -> Vec<i64> {
        let mut seen = Vec::new();
        let g = s
            .generate(
                prompt,
                max_new,
                &SamplingOptions::default(),
                &[],
                &mut |t| {
                    seen.push(t);
                    Ok(ControlFlow::Continue(()))
                },
            )
            .unwrap();
        assert_eq!(seen, g.generated);
        g.generated
    }

    const FIRST: [i64; 5] = [175, 196, 25, 502, 67];
    const SECOND: [i64; 4] = [211, 407, 103, 348];

    #[test]
    fn calls_continue_the_cache_like_one_run_over_the_concatenation() {
        let mut s = open(32);
        let a = gen(&mut s, &FIRST, 3);
        let b = gen(&mut s, &SECOND, 4);
        // Continuing without a prompt feeds the last generated token.
        let c = gen(&mut s, &[], 2);
        assert_eq!((a.len(), b.len(), c.len()), (3, 4, 2));
        let all: Vec<i64> = [&FIRST[..], &a, &SECOND, &b, &c].concat();
        assert_eq!(s.tokens(), all);
        // One fresh session over the concatenation of the first two calls' tokens.
        let mut one = open(32);
        let whole: Vec<i64> = [&FIRST[..], &a, &SECOND].concat();
        assert_eq!(gen(&mut one, &whole, 6), [&b[..], &c].concat());
        // truncate(0) starts afresh: the first call again gives its tokens.
        s.truncate(0);
        assert!(s.tokens().is_empty());
        assert_eq!(gen(&mut s, &FIRST, 3), a);
        // A shared prefix is reused: truncate to it, feed the rest.
        s.truncate(FIRST.len() + 1);
        let other = [9, 8, 7];
        let reused = gen(&mut s, &other, 3);
        let mut fresh = open(32);
        let prefix: Vec<i64> = [&FIRST[..], &a[..1], &other].concat();
        assert_eq!(gen(&mut fresh, &prefix, 3), reused);
    }

    /// The simulator's session keeps its caches across calls too (its own program: the
    /// scheduled one, bf16 caches).
    #[test]
    fn the_simulator_continues_its_cache_across_calls() {
        let o = RunOptions {
            engine: Engine::Sim,
            ..options()
        };
        let path = fixture("llama-tiny");
        let mut s = Session::open(&path, &o, 16).unwrap();
        assert_eq!(s.level(), "schedule");
        let a = gen(&mut s, &FIRST, 2);
        let b = gen(&mut s, &SECOND, 2);
        let mut one = Session::open(&path, &o, 16).unwrap();
        let whole: Vec<i64> = [&FIRST[..], &a, &SECOND].concat();
        assert_eq!(gen(&mut one, &whole, 2), b);
    }

    #[test]
    fn a_prompt_over_the_context_is_refused_with_the_sizes() {
        let mut s = open(12);
        gen(&mut s, &FIRST, 2);
        let mut never = |_| -> Result<ControlFlow<()>, String> { panic!("ran") };
        let e = s
            .generate(&[1; 6], 1, &SamplingOptions::default(), &[], &mut never)
            .err()
            .unwrap();
        assert_eq!(
            e,
            "the prompt is 6 tokens after the 7 already in the cache: 13 positions, more than the context (12 positions)"
        );
        // Nothing ran: the cache is as it was, and generation stops when it is full.
        assert_eq!(s.tokens().len(), 7);
        let g = s
            .generate(&[1; 3], 8, &SamplingOptions::default(), &[], &mut |_| {
                Ok(ControlFlow::Continue(()))
            })
            .unwrap();
        assert_eq!(g.generated.len(), 2);
        assert_eq!(g.stop_reason, StopReason::MaxNewTokens);
        assert_eq!(s.tokens().len(), 12);
        // llama-tiny's max_position_embeddings is 2048.
        let e = Session::open(&fixture("llama-tiny"), &options(), 4096)
            .err()
            .unwrap();
        assert!(
            e.ends_with("a context of 4096 positions: it must be from 1 to the model's 2048 (its max_position_embeddings)"),
            "{e}"
        );
        let e = s
            .generate(&[512], 1, &SamplingOptions::default(), &[], &mut never)
            .err()
            .unwrap();
        assert_eq!(e, "prompt token 512 is outside the vocabulary (0..512)");
    }
}
