//! `run`: decoding with a Hugging Face model's decode step, on any engine: the reference
//! interpreter (tensor or fused level), the simulator of the scheduled program, or a compiled
//! artifact on the GPU (which computes each step's argmax itself), as a one-off [`Session`];
//! and what a run needs: its options, the model's tokenizer and end-of-sequence tokens.
//! Greedy by default; with a temperature the host samples from the step's logits
//! ([`crate::sample`]). Generation ends at the model's end-of-sequence tokens ([`eos_ids`]),
//! at a stop string (the caller's, see [`crate::stream`]), or after the tokens asked for.

use crate::check::Engine;
use crate::import::ModelOptions;
use crate::level::Level;
use crate::sample::SamplingOptions;
use crate::session::Session;
use mkc_ir::TargetSpec;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

pub use crate::session::{Generation, StopReason};

/// How to decode.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub model: ModelOptions,
    pub engine: Engine,
    /// The level the interpreter runs (tensor or fused); the simulator runs the schedule.
    pub level: Level,
    /// `Engine::Gpu`: the artifact compiled from the model; `None`: the one cached for it,
    /// compiled on first use ([`crate::artifact_cache`]).
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
        // A config.json is the model; an .onnx or .mlir file's config is the one beside it.
        let config = if model.extension().is_some_and(|e| e == "json") {
            model.to_path_buf()
        } else {
            dir.join("config.json")
        };
        (dir, config)
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

/// Feeds `prompt`, then each generated token, through the decode step until `max_new`
/// tokens are generated or one of `o.eos` is; `on_token` sees each generated token but an
/// end-of-sequence one as it comes, and may end the generation there (`Break`: a stop string).
/// A one-off [`Session`] whose context holds `--ctx` positions, or the prompt and the new
/// tokens where they need more.
pub fn generate(
    path: &Path,
    o: &RunOptions,
    prompt: &[i64],
    max_new: usize,
    on_token: &mut dyn FnMut(i64) -> Result<ControlFlow<()>, String>,
) -> Result<Generation, String> {
    crate::session::takes_a_model(path)?;
    if prompt.is_empty() {
        return Err("the prompt is empty".into());
    }
    let needed = prompt.len() + max_new;
    let mut session = Session::open_with(path, o, |config| {
        let vocab = config.vocab_size;
        if let Some(bad) = prompt.iter().find(|&&t| t < 0 || t >= vocab) {
            return Err(format!(
                "prompt token {bad} is outside the vocabulary (0..{vocab})"
            ));
        }
        let max = config.max_position_embeddings;
        check_context(path, max, prompt.len(), max_new)?;
        // (As --ctx says, even beyond the model's positions: a KV cache that does not fit
        // memory is refused when the engine loads.)
        Ok(o.model.ctx.max(needed as i64).max(0) as usize)
    })?;
    // An artifact given on the GPU holds the positions it was compiled for.
    let ctx = session.context();
    if o.engine == Engine::Gpu && needed > ctx {
        let dir = o.artifact.as_deref().unwrap_or(Path::new("the artifact"));
        if prompt.len() > ctx {
            return Err(format!(
                "{}: the prompt is {} tokens, longer than the artifact's KV cache ({ctx} positions): compile with a larger --ctx",
                dir.display(),
                prompt.len()
            ));
        }
        return Err(format!(
            "{}: {needed} positions (the prompt's {} tokens and {max_new} new ones) do not fit the artifact's KV cache ({ctx}): compile with a larger --ctx or lower --max-new-tokens",
            dir.display(),
            prompt.len()
        ));
    }
    session.generate(prompt, max_new, &o.sampling, &o.eos, on_token)
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
    fn run_refuses_onnx_graphs_and_ir_modules_by_name() {
        for (file, why) in [("m.onnx", "no decode step"), ("step.mlir", "mkc compile")] {
            let e = crate::session::takes_a_model(Path::new(file)).unwrap_err();
            assert!(e.starts_with(file) && e.contains(why), "{e}");
        }
        assert!(crate::session::takes_a_model(Path::new("config.json")).is_ok());
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
        // A module or ONNX file takes the config beside it, not itself as JSON.
        std::fs::write(dir.join("step.mlir"), "module {}").unwrap();
        assert_eq!(eos_ids(&dir.join("step.mlir")).unwrap(), [2]);
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
