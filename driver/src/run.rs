//! `run`: greedy decoding with a Hugging Face model's decode step, on any engine: the
//! reference interpreter (tensor or fused level), the simulator of the scheduled program, or
//! a compiled artifact on the GPU (which computes each step's argmax itself).

use crate::check::Engine;
use crate::import::{import_model, ModelOptions};
use crate::level::{Level, PipelineOptions};
use mkc_ir::weights::WeightSource;
use mkc_ir::{ElemType, TargetSpec, TensorType};
use mkc_runtime::interp::i64_tensor;
use mkc_runtime::Tensor;
use std::path::{Path, PathBuf};

/// How to decode.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub model: ModelOptions,
    pub engine: Engine,
    /// The level the interpreter runs (tensor or fused); the simulator runs the schedule.
    pub level: Level,
    /// `Engine::Gpu`: the artifact compiled from the model.
    pub artifact: Option<PathBuf>,
    /// The target the simulator's program is compiled for.
    pub target: TargetSpec,
    /// Tokens never generated (`--ignore-eos` bans the end-of-sequence ids): where the step's
    /// argmax is one, the next is the argmax of its logits without them.
    pub banned: Vec<i64>,
}

/// One decode step: (token, position) -> the next token.
type Stepper<'a> = Box<dyn FnMut(i64, usize) -> Result<i64, String> + 'a>;

/// The step's token, or, when it is banned, the best of its logits that is not.
fn unbanned(
    next: i64,
    banned: &[i64],
    logits: impl FnOnce() -> Result<Tensor, String>,
) -> Result<i64, String> {
    if !banned.contains(&next) {
        return Ok(next);
    }
    let l = logits()?.to_f64();
    let best = l
        .iter()
        .enumerate()
        .filter(|(i, _)| !banned.contains(&(*i as i64)))
        .try_fold(None::<(usize, f64)>, |best, (i, &x)| {
            if x.is_nan() {
                return Err(format!("logit {i} is NaN"));
            }
            Ok(match best {
                Some((_, b)) if b >= x => best,
                _ => Some((i, x)),
            })
        })?;
    best.map(|(i, _)| i as i64)
        .ok_or_else(|| "every token is banned".to_string())
}

/// What a decode produced.
pub struct Generation {
    /// The level that ran ("tensor", "fused", "schedule" or "artifact").
    pub level: &'static str,
    pub generated: Vec<i64>,
    /// Steps run (the prompt's and the generated tokens' but the last).
    pub steps: usize,
    pub seconds: f64,
}

/// A model's tokenizer, with what a chat or a stop at the end needs.
pub struct TokenizerInfo {
    pub tokenizer: tokenizers::Tokenizer,
    /// The BOS token, where the model names one (a GGUF file's metadata).
    pub bos: Option<u32>,
    /// The tokens that end a generation (a GGUF file's EOS).
    pub eos: Vec<u32>,
    /// The Jinja chat template (a GGUF file's `tokenizer.chat_template`).
    pub chat_template: Option<String>,
}

/// The model's tokenizer, if it has one: a GGUF file's own (its `tokenizer.ggml.*`
/// metadata, see [`crate::gguf_tokenizer`]), else the tokenizer.json beside its config.
pub fn tokenizer_of(model: &Path) -> Result<Option<TokenizerInfo>, String> {
    if model.is_file() && mkc_frontends::gguf::is_gguf(model) {
        let meta = mkc_frontends::gguf::GgufModel::open(model)?.tokenizer()?;
        if let Some(meta) = meta {
            let tokenizer = crate::gguf_tokenizer::tokenizer_from_gguf(&meta)
                .map_err(|e| format!("{}: {e}", model.display()))?;
            return Ok(Some(TokenizerInfo {
                tokenizer,
                bos: meta.bos,
                eos: meta.eos.into_iter().collect(),
                chat_template: meta.chat_template,
            }));
        }
    }
    let dir = if model.is_dir() {
        model.to_path_buf()
    } else {
        model.parent().map(PathBuf::from).unwrap_or_default()
    };
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    let tokenizer = tokenizers::Tokenizer::from_file(&path)
        .map_err(|e| format!("{}: not a tokenizer: {e}", path.display()))?;
    Ok(Some(TokenizerInfo {
        tokenizer,
        bos: None,
        eos: Vec::new(),
        chat_template: None,
    }))
}

/// Feeds `prompt`, then each step's own token, through the decode step until `max_new`
/// tokens are generated; `on_token` sees each as it comes.
pub fn generate(
    path: &Path,
    o: &RunOptions,
    prompt: &[i64],
    max_new: usize,
    on_token: &mut dyn FnMut(i64),
) -> Result<Generation, String> {
    if crate::import::is_onnx(path) {
        return Err("run takes a Hugging Face model (a checkpoint folder or a config.json); ONNX graphs have no decode step".into());
    }
    if prompt.is_empty() {
        return Err("the prompt is empty".into());
    }
    let model = mkc_frontends::HfModel::open(path)?;
    let needed = prompt.len() + max_new;
    let vocab = model.config.vocab_size;
    if let Some(bad) = prompt.iter().find(|&&t| t < 0 || t >= vocab) {
        return Err(format!(
            "prompt token {bad} is outside the vocabulary (0..{vocab})"
        ));
    }
    let owned = crate::import::model_weights(&model, &o.model);
    let weights: &dyn WeightSource = owned.as_ref();
    // (Declared before the stepper, which may borrow it.)
    let mut holder = None;
    let mut step: Stepper;
    let level;
    if o.engine == Engine::Gpu {
        level = "artifact";
        step = gpu_stepper(path, o, weights, needed)?;
    } else {
        let model_opts = ModelOptions {
            ctx: o.model.ctx.max(needed as i64),
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
        level = run_level.name();
        let cfg = &model.config;
        let cache_ty = TensorType::new(
            [model_opts.ctx, cfg.num_kv_heads, cfg.head_dim],
            model_opts.compute,
        );
        check_cache_fits(2 * cfg.num_layers, &cache_ty)?;
        let body = holder.insert(body);
        step = cpu_stepper(
            body,
            weights,
            o.engine,
            cache_ty,
            2 * cfg.num_layers as usize,
            o.banned.clone(),
        )?;
    }
    let start = std::time::Instant::now();
    let mut tokens = prompt.to_vec();
    for pos in 0..needed - 1 {
        let next = step(tokens[pos], pos).map_err(|e| format!("position {pos}: {e}"))?;
        if pos + 1 >= prompt.len() {
            tokens.push(next);
            on_token(next);
        }
    }
    Ok(Generation {
        level,
        generated: tokens[prompt.len()..].to_vec(),
        steps: needed - 1,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A step on the CPU: the interpreter, or the simulator of the scheduled program; the KV
/// caches held here between steps.
fn cpu_stepper<'a>(
    body: &'a mkc_ir::Body,
    weights: &'a dyn WeightSource,
    engine: Engine,
    cache_ty: TensorType,
    caches: usize,
    banned: Vec<i64>,
) -> Result<Stepper<'a>, String> {
    let mut interp = mkc_runtime::Interpreter::new(body, weights);
    let func = interp.func("decode_step")?;
    let mut sim = match engine {
        Engine::Sim => Some(mkc_runtime::Simulator::new(body, weights, 0)?),
        _ => None,
    };
    let zero = |_| mkc_ir::dialect::tg::elementwise::Scalar::F(0.0);
    let mut caches: Vec<Tensor> = (0..caches)
        .map(|_| Tensor::from_fn(cache_ty.clone(), zero))
        .collect();
    Ok(Box::new(move |token, pos| {
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
        unbanned(next, &banned, || Ok(logits))
    }))
}

/// A step on the GPU: the artifact's kernel computes the argmax; the host only writes the
/// token and the position.
#[cfg(feature = "cuda")]
fn gpu_stepper<'a>(
    model: &Path,
    o: &RunOptions,
    weights: &'a dyn WeightSource,
    needed: usize,
) -> Result<Stepper<'a>, String> {
    let dir = o.artifact.as_ref().ok_or(
        "run --engine gpu needs --artifact DIR (`mkc compile MODEL --emit=artifact -o DIR`)",
    )?;
    let art = mkc_runtime::artifact::Artifact::open(dir)?;
    art.check_model(&[model])?;
    eprintln!("mkc: loading {} onto the GPU", dir.display());
    let program = mkc_runtime::image::Program::parse(&art.program, "program.mlir")?;
    let stored = crate::import::as_stored(&program.body, weights);
    let mut gpu = mkc_runtime::gpu::GpuRunner::new(&art, &stored, 0)?;
    let n = gpu.program.inputs.len();
    let ctx = gpu.program.cache_positions();
    if needed as i64 > ctx {
        return Err(format!(
            "{needed} positions do not fit the artifact's KV cache ({ctx}): compile with a larger --ctx"
        ));
    }
    let banned = o.banned.clone();
    Ok(Box::new(move |token, pos| {
        let t = i64_tensor(&[], vec![token]);
        let p = i64_tensor(&[], vec![pos as i64]);
        let mut inputs: Vec<Option<&Tensor>> = vec![Some(&t), Some(&p)];
        inputs.resize(n, None);
        if banned.is_empty() {
            return Ok(gpu.call(&inputs, &[1])?[0].get(0).i());
        }
        let mut outs = gpu.call(&inputs, &[0, 1])?;
        let next = outs[1].get(0).i();
        unbanned(next, &banned, || Ok(outs.swap_remove(0)))
    }))
}

#[cfg(not(feature = "cuda"))]
fn gpu_stepper<'a>(
    _: &Path,
    _: &RunOptions,
    _: &'a dyn WeightSource,
    _: usize,
) -> Result<Stepper<'a>, String> {
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
