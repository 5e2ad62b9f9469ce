//! `run`: decoding with a Hugging Face model's decode step, on any engine: the reference
//! interpreter (tensor or fused level), the simulator of the scheduled program, or a compiled
//! artifact on the GPU (which computes each step's argmax itself). Greedy by default; with a
//! temperature the host samples from the step's logits ([`crate::sample`]). Generation ends
//! at the model's end-of-sequence tokens ([`eos_ids`]), at a stop string (the caller's, see
//! [`crate::stream`]), or after the tokens asked for.

use crate::check::Engine;
use crate::import::{import_model, ModelOptions};
use crate::level::{Level, PipelineOptions};
use crate::sample::{Sampler, SamplingOptions};
use mkc_ir::weights::WeightSource;
use mkc_ir::{ElemType, TargetSpec, TensorType};
use mkc_runtime::interp::i64_tensor;
use mkc_runtime::Tensor;
use std::ops::ControlFlow;
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
    /// argmax is one, the next is the argmax of its logits without them; a sampled token is
    /// drawn from the others.
    pub banned: Vec<i64>,
    /// Tokens that end the generation once generated (the model's end-of-sequence ids,
    /// [`eos_ids`]; empty with `--ignore-eos`).
    pub eos: Vec<i64>,
    /// Greedy (the default) or sampled.
    pub sampling: SamplingOptions,
}

/// One decode step: (token, position, whether the logits are wanted) -> (the step's argmax,
/// the logits when wanted).
type Stepper<'a> = Box<dyn FnMut(i64, usize, bool) -> Result<(i64, Option<Tensor>), String> + 'a>;

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

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It generated an end-of-sequence token.
    Eos,
    /// The caller's `on_token` stopped it (a stop string appeared in the text).
    StopString,
    /// It generated the tokens asked for.
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
    /// Steps run (the prompt's and the generated tokens' but the last).
    pub steps: usize,
    pub seconds: f64,
}

/// A model's tokenizer, with what a chat or a stop at the end needs.
pub struct TokenizerInfo {
    pub tokenizer: tokenizers::Tokenizer,
    /// The BOS token, where the model names one (a GGUF file's metadata).
    pub bos: Option<u32>,
    /// The tokens that end a generation ([`eos_ids`]).
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
        eos: eos_ids(model)?,
        chat_template: None,
    }))
}

/// The tokens that end a generation: a GGUF file's `tokenizer.ggml.eos_token_id`; for a
/// checkpoint, `eos_token_id` (a token id or a list of them) of the generation_config.json
/// beside its config, else of its config.json (transformers' order); none where neither
/// names one.
pub fn eos_ids(model: &Path) -> Result<Vec<u32>, String> {
    if model.is_file() && mkc_frontends::gguf::is_gguf(model) {
        let meta = mkc_frontends::gguf::GgufModel::open(model)?.tokenizer()?;
        return Ok(meta.and_then(|m| m.eos).into_iter().collect());
    }
    let (dir, config) = if model.is_dir() {
        (model.to_path_buf(), model.join("config.json"))
    } else {
        let dir = model.parent().map(PathBuf::from).unwrap_or_default();
        (dir, model.to_path_buf())
    };
    for path in [dir.join("generation_config.json"), config] {
        if let Some(ids) = eos_of_file(&path)? {
            return Ok(ids);
        }
    }
    Ok(Vec::new())
}

/// `eos_token_id` of a JSON file: `None` where the file or the key is absent (or null).
fn eos_of_file(path: &Path) -> Result<Option<Vec<u32>>, String> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let bad = |v: &serde_json::Value| {
        format!(
            "{}: eos_token_id must be a token id or a list of token ids, not {v}",
            path.display()
        )
    };
    let id = |v: &serde_json::Value| {
        v.as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| bad(v))
    };
    match v.get("eos_token_id") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Array(ids)) => {
            ids.iter().map(id).collect::<Result<_, _>>().map(Some)
        }
        Some(v) => Ok(Some(vec![id(v)?])),
    }
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

/// Feeds `prompt`, then each generated token, through the decode step until `max_new`
/// tokens are generated or one of `o.eos` is; `on_token` sees each generated token but an
/// end-of-sequence one as it comes, and may end the generation there (`Break`: a stop string).
pub fn generate(
    path: &Path,
    o: &RunOptions,
    prompt: &[i64],
    max_new: usize,
    on_token: &mut dyn FnMut(i64) -> Result<ControlFlow<()>, String>,
) -> Result<Generation, String> {
    if crate::import::is_onnx(path) {
        return Err("run takes a Hugging Face model (a checkpoint folder or a config.json); ONNX graphs have no decode step".into());
    }
    if prompt.is_empty() {
        return Err("the prompt is empty".into());
    }
    check_engine_options(o)?;
    let mut sampler = Sampler::new(o.sampling.clone())?;
    let model = mkc_frontends::HfModel::open(path)?;
    let needed = prompt.len() + max_new;
    let vocab = model.config.vocab_size;
    if let Some(bad) = prompt.iter().find(|&&t| t < 0 || t >= vocab) {
        return Err(format!(
            "prompt token {bad} is outside the vocabulary (0..{vocab})"
        ));
    }
    check_context(
        path,
        model.config.max_position_embeddings,
        prompt.len(),
        max_new,
    )?;
    let owned = crate::import::model_weights(path, &model, &o.model)?;
    let weights: &dyn WeightSource = owned.as_ref();
    // (Declared before the stepper, which may borrow it.)
    let mut holder = None;
    let mut step: Stepper;
    let level;
    if o.engine == Engine::Gpu {
        level = "artifact";
        step = gpu_stepper(path, o, weights, prompt.len(), needed)?;
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
        )?;
    }
    // The logits come back to the host only where the host picks from them.
    let want_logits = !o.sampling.is_greedy() || !o.banned.is_empty();
    let start = std::time::Instant::now();
    let mut tokens = prompt.to_vec();
    let mut stop_reason = StopReason::MaxNewTokens;
    let mut steps = 0;
    for pos in 0..needed - 1 {
        let generating = pos + 1 >= prompt.len();
        let at = |e: String| format!("position {pos}: {e}");
        let (argmax, logits) = step(tokens[pos], pos, generating && want_logits).map_err(at)?;
        steps += 1;
        if !generating {
            continue;
        }
        let next = pick(&mut sampler, argmax, logits, &o.banned).map_err(at)?;
        tokens.push(next);
        if o.eos.contains(&next) {
            stop_reason = StopReason::Eos;
            break;
        }
        if on_token(next)?.is_break() {
            stop_reason = StopReason::StopString;
            break;
        }
    }
    Ok(Generation {
        level,
        generated: tokens[prompt.len()..].to_vec(),
        stop_reason,
        steps,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A prompt, and the tokens to generate after it, must fit the model's context (its
/// `max_position_embeddings`, a GGUF file's `context_length`): refused before anything runs.
fn check_context(path: &Path, context: i64, prompt: usize, max_new: usize) -> Result<(), String> {
    if prompt as i64 > context {
        return Err(format!(
            "{}: the prompt is {prompt} tokens, longer than the model's context ({context} positions, its max_position_embeddings)",
            path.display()
        ));
    }
    if (prompt + max_new) as i64 > context {
        return Err(format!(
            "{}: the prompt's {prompt} tokens and {max_new} new ones need {} positions, more than the model's context ({context}, its max_position_embeddings): lower --max-new-tokens to {} at most",
            path.display(),
            prompt + max_new,
            context - prompt as i64
        ));
    }
    Ok(())
}

/// A step on the CPU: the interpreter, or the simulator of the scheduled program; the KV
/// caches held here between steps.
fn cpu_stepper<'a>(
    body: &'a mkc_ir::Body,
    weights: &'a dyn WeightSource,
    engine: Engine,
    cache_ty: TensorType,
    caches: usize,
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
/// and the position, and reads the logits back only when it samples from them.
#[cfg(feature = "cuda")]
fn gpu_stepper<'a>(
    model: &Path,
    o: &RunOptions,
    weights: &'a dyn WeightSource,
    prompt: usize,
    needed: usize,
) -> Result<Stepper<'a>, String> {
    let dir = o.artifact.as_ref().ok_or(
        "run --engine gpu needs --artifact DIR (`mkc compile MODEL --emit=artifact -o DIR`)",
    )?;
    let art = mkc_runtime::artifact::Artifact::open(dir)?;
    art.check_model(&[model])?;
    let program = mkc_runtime::image::Program::parse(&art.program, "program.mlir")?;
    // Before anything is loaded: the positions must fit the artifact's KV cache.
    let ctx = program.cache_positions();
    if prompt as i64 > ctx {
        return Err(format!(
            "{}: the prompt is {prompt} tokens, longer than the artifact's KV cache ({ctx} positions): compile with a larger --ctx",
            dir.display()
        ));
    }
    if needed as i64 > ctx {
        return Err(format!(
            "{}: {needed} positions (the prompt's {prompt} tokens and {} new ones) do not fit the artifact's KV cache ({ctx}): compile with a larger --ctx or lower --max-new-tokens",
            dir.display(),
            needed - prompt
        ));
    }
    eprintln!("mkc: loading {} onto the GPU", dir.display());
    let stored = crate::import::as_stored(&program.body, weights);
    let mut gpu = mkc_runtime::gpu::GpuRunner::new(&art, &stored, 0)?;
    let n = gpu.program.inputs.len();
    Ok(Box::new(move |token, pos, want_logits| {
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
    }))
}

#[cfg(not(feature = "cuda"))]
fn gpu_stepper<'a>(
    _: &Path,
    _: &RunOptions,
    _: &'a dyn WeightSource,
    _: usize,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::TextStream;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    fn options(sampling: SamplingOptions, eos: Vec<i64>) -> RunOptions {
        RunOptions {
            model: ModelOptions {
                ctx: 32,
                ..ModelOptions::default()
            },
            engine: Engine::Interp,
            level: Level::Tensor,
            artifact: None,
            target: TargetSpec::default(),
            banned: Vec::new(),
            eos,
            sampling,
        }
    }

    /// mistral-tiny's prompt; transformers' float32 greedy continuation starts
    /// 302, 418, 302, 386, 235, 386.
    const PROMPT: [i64; 11] = [382, 348, 126, 501, 438, 56, 251, 406, 125, 65, 22];

    fn run(o: &RunOptions, max_new: usize) -> (Generation, Vec<i64>) {
        let mut seen = Vec::new();
        let g = generate(&fixture("mistral-tiny"), o, &PROMPT, max_new, &mut |t| {
            seen.push(t);
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        (g, seen)
    }

    fn sampled(temperature: f64, top_k: usize, top_p: f64, seed: u64) -> SamplingOptions {
        SamplingOptions {
            temperature,
            top_k,
            top_p,
            seed,
        }
    }

    #[test]
    fn generation_greedy_sampled_and_stopped() {
        let greedy = run(&options(SamplingOptions::default(), vec![]), 6);
        assert_eq!(greedy.0.generated, [302, 418, 302, 386, 235, 386]);
        assert_eq!(greedy.0.stop_reason, StopReason::MaxNewTokens);
        assert_eq!(greedy.1, greedy.0.generated);
        // Temperature 0 is greedy whatever the other options say; top-k 1 samples the argmax.
        for s in [sampled(0.0, 5, 0.5, 7), sampled(1.0, 1, 1.0, 3)] {
            assert_eq!(run(&options(s, vec![]), 6).0.generated, greedy.0.generated);
        }
        // The same seed draws the same tokens.
        let a = run(&options(sampled(1.5, 0, 0.95, 42), vec![]), 6)
            .0
            .generated;
        let b = run(&options(sampled(1.5, 0, 0.95, 42), vec![]), 6)
            .0
            .generated;
        assert_eq!(a, b);
        // An end-of-sequence token ends the generation: kept in `generated`, not given to
        // `on_token`.
        let (g, seen) = run(&options(SamplingOptions::default(), vec![386]), 6);
        assert_eq!(g.generated, [302, 418, 302, 386]);
        assert_eq!(seen, [302, 418, 302]);
        assert_eq!(g.stop_reason, StopReason::Eos);
        // A stop string across tokens ends it too: the text stops before it.
        let decode = |ids: &[u32]| Ok(ids.iter().map(|i| format!("<{i}>")).collect());
        let mut stream = TextStream::new(Box::new(decode), &["2><386".to_string()]);
        let mut printed = String::new();
        let o = options(SamplingOptions::default(), vec![]);
        let g = generate(&fixture("mistral-tiny"), &o, &PROMPT, 6, &mut |t| {
            let piece = stream.push(t as u32)?;
            printed.push_str(&piece.text);
            Ok(if piece.stop {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .unwrap();
        assert_eq!(g.generated, [302, 418, 302, 386]);
        assert_eq!(g.stop_reason, StopReason::StopString);
        assert_eq!(printed, "<302><418><30");
        assert_eq!(stream.text(), printed);
    }

    #[test]
    fn a_prompt_beyond_the_context_is_refused_before_running() {
        // llama3-tiny's max_position_embeddings is 256.
        let o = options(SamplingOptions::default(), vec![]);
        let path = fixture("llama3-tiny");
        let mut never = |_| -> Result<ControlFlow<()>, String> { panic!("ran") };
        let e = generate(&path, &o, &[1; 300], 4, &mut never).err().unwrap();
        assert!(
            e.contains("the prompt is 300 tokens, longer than the model's context (256 positions"),
            "{e}"
        );
        let e = generate(&path, &o, &[1; 250], 10, &mut never)
            .err()
            .unwrap();
        assert!(e.contains("need 260 positions"), "{e}");
        assert!(e.contains("lower --max-new-tokens to 6 at most"), "{e}");
        // NaN-free but invalid sampling options are refused up front too.
        let bad = options(sampled(-1.0, 0, 1.0, 0), vec![]);
        let e = generate(&path, &bad, &[1], 1, &mut never).err().unwrap();
        assert!(e.contains("--temperature"), "{e}");
    }

    /// Issue 26: `run --level ptx` ran the fused IR without a word; an artifact without
    /// --engine gpu was ignored.
    #[test]
    fn options_the_engine_ignores_are_refused() {
        let path = fixture("llama3-tiny");
        let mut never = |_| -> Result<ControlFlow<()>, String> { panic!("ran") };
        let mut o = options(SamplingOptions::default(), vec![]);
        o.level = Level::Ptx;
        let e = generate(&path, &o, &[1], 1, &mut never).err().unwrap();
        assert!(
            e.starts_with("--level ptx: the interpreter runs the tensor or the fused IR"),
            "{e}"
        );
        let mut o = options(SamplingOptions::default(), vec![]);
        o.engine = Engine::Sim;
        o.artifact = Some(PathBuf::from("art"));
        let e = generate(&path, &o, &[1], 1, &mut never).err().unwrap();
        assert!(
            e.contains("--artifact art: an artifact runs only with --engine gpu"),
            "{e}"
        );
    }

    /// Issue 26: a model without weights ran with invented ones and no word; only
    /// --random-weights may do that.
    #[test]
    fn a_model_without_weights_needs_random_weights() {
        let config = fixture("llama3-tiny").join("config.json");
        let mut o = options(SamplingOptions::default(), vec![]);
        let mut never = |_| -> Result<ControlFlow<()>, String> { Ok(ControlFlow::Continue(())) };
        let e = generate(&config, &o, &[1, 2], 1, &mut never).err().unwrap();
        assert_eq!(
            e,
            format!(
                "{} has no weights: give --random-weights to run it with random ones",
                config.display()
            )
        );
        o.model.random_weights = true;
        let g = generate(&config, &o, &[1, 2], 1, &mut never).unwrap();
        assert_eq!(g.generated.len(), 1);
    }

    #[test]
    fn eos_ids_come_from_generation_config_then_config() {
        let dir = std::env::temp_dir().join(format!("mkc-eos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        write("config.json", r#"{"eos_token_id": 2}"#);
        let _ = std::fs::remove_file(dir.join("generation_config.json"));
        assert_eq!(eos_ids(&dir).unwrap(), [2]);
        assert_eq!(eos_ids(&dir.join("config.json")).unwrap(), [2]);
        write("generation_config.json", r#"{"eos_token_id": [5, 6]}"#);
        assert_eq!(eos_ids(&dir).unwrap(), [5, 6]);
        write("generation_config.json", r#"{"eos_token_id": null}"#);
        assert_eq!(eos_ids(&dir).unwrap(), [2]);
        write("generation_config.json", r#"{"eos_token_id": "</s>"}"#);
        let e = eos_ids(&dir).unwrap_err();
        assert!(
            e.contains("generation_config.json: eos_token_id must be a token id or a list of token ids, not \"</s>\""),
            "{e}"
        );
        write("generation_config.json", r#"{"eos_token_id": [1, -1]}"#);
        assert!(eos_ids(&dir).unwrap_err().contains("not -1"));
        write("generation_config.json", "{");
        assert!(eos_ids(&dir)
            .unwrap_err()
            .contains("generation_config.json: not JSON"));
        std::fs::remove_file(dir.join("generation_config.json")).unwrap();
        write("config.json", "{}");
        assert!(eos_ids(&dir).unwrap().is_empty());
        // The fixtures: llama-tiny's config names 2, qwen3-tiny's null.
        assert_eq!(eos_ids(&fixture("llama-tiny")).unwrap(), [2]);
        assert!(eos_ids(&fixture("qwen3-tiny")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
