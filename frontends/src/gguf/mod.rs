//! GGUF models (llama.cpp's format) of the llama, qwen2 and qwen3 architectures: the
//! hyper-parameters from the file's metadata become a [`ModelConfig`] (checked by the same
//! code as a config.json), llama.cpp's tensor names map back to Hugging Face's, and weights
//! stay as stored (quantized blocks included) except the q/k rows that llama.cpp's
//! converter permutes for llama-family models, which are put back in place. The tokenizer
//! the file carries is described by [`TokenizerMeta`]; building a tokenizer from it is the
//! driver's business. [`write`] goes the other way: a GGUF writer, and the export of a
//! Hugging Face checkpoint as llama.cpp's converter would write it.

pub mod file;
pub mod write;

#[cfg(test)]
mod tests;

pub use file::{GgmlType, GgufFile, MetaValue, TensorInfo};
pub use write::{gguf_from_checkpoint, ExportTypes, GgufWriter, Layout};

use crate::config::ModelConfig;
use mkc_ir::weights::{RawTensor, WeightSource};
use mkc_ir::ElemType;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::path::Path;

/// Whether `path` names a GGUF file (by its extension or its first four bytes).
pub fn is_gguf(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        return true;
    }
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
        && &magic == file::MAGIC
}

/// llama.cpp's names of the tensors outside the layers, with Hugging Face's.
const GLOBAL_NAMES: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// llama.cpp's stems of a layer's tensors (`blk.N.STEM.weight`), with Hugging Face's
/// (`model.layers.N.STEM.weight`).
const LAYER_NAMES: [(&str, &str); 11] = [
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// The Hugging Face name of a llama.cpp tensor name, or `None` for names mkc has no use for.
pub fn hf_name(gguf: &str) -> Option<String> {
    if let Some((_, hf)) = GLOBAL_NAMES.iter().find(|(g, _)| *g == gguf) {
        return Some(hf.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: u32 = layer.parse().ok()?;
    let (stem, suffix) = rest.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let (_, hf) = LAYER_NAMES.iter().find(|(g, _)| *g == stem)?;
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// The llama.cpp name of a Hugging Face tensor name (the inverse of [`hf_name`]), or `None`
/// for names llama.cpp's converter does not write.
pub fn gguf_name(hf: &str) -> Option<String> {
    if let Some((g, _)) = GLOBAL_NAMES.iter().find(|(_, h)| *h == hf) {
        return Some(g.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: u32 = layer.parse().ok()?;
    let (stem, suffix) = rest.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let (g, _) = LAYER_NAMES.iter().find(|(_, h)| *h == stem)?;
    Some(format!("blk.{layer}.{g}.{suffix}"))
}

/// How the file's own tokenizer is described (`tokenizer.ggml.*`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenizerMeta {
    /// `gpt2` (byte-level BPE) or `llama` (SentencePiece), as llama.cpp names them.
    pub model: String,
    /// The pre-tokenizer llama.cpp selects for BPE (`smollm`, `llama-bpe`, `qwen2`, ...).
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// llama.cpp's token types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    pub token_types: Vec<i32>,
    pub merges: Vec<String>,
    pub scores: Vec<f32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unknown: Option<u32>,
    pub padding: Option<u32>,
    /// Whether a BOS token starts every encoding (`tokenizer.ggml.add_bos_token`; absent:
    /// llama.cpp's default, true for `llama` vocabularies only).
    pub add_bos: bool,
    /// Whether SentencePiece text gets a leading space (`tokenizer.ggml.add_space_prefix`;
    /// absent: llama.cpp's default, true for `llama` vocabularies only).
    pub add_space_prefix: bool,
    pub chat_template: Option<String>,
}

/// A GGUF model: its config, its tensors under Hugging Face names, and its tokenizer.
pub struct GgufModel {
    pub file: GgufFile,
    pub arch: String,
    pub config: ModelConfig,
    /// Whether q/k projection rows are stored permuted (llama.cpp's llama converter).
    permuted_qk: bool,
    /// Hugging Face name -> index into `file.tensors`.
    names: std::collections::BTreeMap<String, usize>,
}

const ARCHES: [&str; 3] = ["llama", "qwen2", "qwen3"];

impl GgufModel {
    pub fn open(path: &Path) -> Result<GgufModel, String> {
        let file = GgufFile::open(path)?;
        let arch = file
            .string("general.architecture")?
            .ok_or_else(|| format!("{}: no 'general.architecture' metadata", path.display()))?
            .to_string();
        if !ARCHES.contains(&arch.as_str()) {
            return Err(format!(
                "{}: architecture '{arch}' is not one mkc reads from GGUF ({})",
                path.display(),
                ARCHES.join(", ")
            ));
        }
        let mut names = std::collections::BTreeMap::new();
        for (i, (name, _)) in file.tensors.iter().enumerate() {
            match hf_name(name) {
                Some(hf) => {
                    names.insert(hf, i);
                }
                None if name == "rope_freqs.weight" => {
                    return Err(format!(
                        "{}: tensor 'rope_freqs.weight' (per-frequency rope factors, as llama \
                         3.1+ conversions store their rope scaling) is not supported yet",
                        path.display()
                    ))
                }
                None => {
                    return Err(format!(
                        "{}: tensor '{name}' is not one a {arch} model has",
                        path.display()
                    ))
                }
            }
        }
        let config_json = config_json(&file, &arch, &names)?;
        let config = ModelConfig::parse(&config_json.to_string()).map_err(|e| {
            format!(
                "{}: the model its metadata describes: {}",
                path.display(),
                in_gguf_terms(&e, &arch)
            )
        })?;
        Ok(GgufModel {
            permuted_qk: arch == "llama",
            file,
            arch,
            config,
            names,
        })
    }

    /// Every tensor under its Hugging Face name: (element type, row-major shape).
    pub fn tensors(&self) -> impl Iterator<Item = (&str, ElemType, Vec<i64>)> {
        self.names.iter().map(|(n, &i)| {
            let t = &self.file.tensors[i].1;
            (n.as_str(), t.ty.elem(), t.shape())
        })
    }

    pub fn info(&self, hf: &str) -> Option<&TensorInfo> {
        self.names.get(hf).map(|&i| &self.file.tensors[i].1)
    }

    /// The tokenizer the file describes, when it has one.
    pub fn tokenizer(&self) -> Result<Option<TokenizerMeta>, String> {
        tokenizer_meta(&self.file)
    }

    /// Rows of a q/k projection that llama.cpp stored interleaved per head (the two rope
    /// halves of each head alternate), put back in Hugging Face's order.
    fn unpermute(
        &self,
        hf: &str,
        info: &TensorInfo,
        data: &[u8],
    ) -> Option<Result<Vec<u8>, String>> {
        let heads = if hf.ends_with("self_attn.q_proj.weight")
            || hf.ends_with("self_attn.q_proj.bias")
        {
            self.config.num_heads
        } else if hf.ends_with("self_attn.k_proj.weight") || hf.ends_with("self_attn.k_proj.bias") {
            self.config.num_kv_heads
        } else {
            return None;
        };
        let rows = info.shape()[0] as usize;
        if heads <= 0
            || rows == 0
            || !rows.is_multiple_of(2 * heads as usize)
            || !data.len().is_multiple_of(rows)
        {
            return Some(Err(format!(
                "{}: '{hf}' has {rows} rows, not two halves of each of {heads} heads",
                self.file.path.display()
            )));
        }
        let row_bytes = data.len() / rows;
        let d = rows / heads as usize;
        let half = d / 2;
        let mut out = vec![0u8; data.len()];
        for h in 0..heads as usize {
            for s in 0..2 {
                for j in 0..half {
                    let to = h * d + s * half + j;
                    let from = h * d + 2 * j + s;
                    out[to * row_bytes..(to + 1) * row_bytes]
                        .copy_from_slice(&data[from * row_bytes..(from + 1) * row_bytes]);
                }
            }
        }
        Some(Ok(out))
    }
}

impl WeightSource for GgufModel {
    fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
        let info = self
            .info(name)
            .ok_or_else(|| format!("{}: no tensor for '{name}'", self.file.path.display()))?;
        let data = self.file.data(info);
        let bytes = match self.permuted_qk.then(|| self.unpermute(name, info, data)) {
            Some(Some(rows)) => Cow::Owned(rows?),
            _ => Cow::Borrowed(data),
        };
        Ok(RawTensor {
            elem: info.ty.elem(),
            shape: info.shape(),
            bytes,
        })
    }
}

/// Integer hyper-parameters: `{arch}.KEY` in GGUF, the config.json key.
const INT_KEYS: [(&str, &str); 8] = [
    ("block_count", "num_hidden_layers"),
    ("embedding_length", "hidden_size"),
    ("feed_forward_length", "intermediate_size"),
    ("attention.head_count", "num_attention_heads"),
    ("attention.head_count_kv", "num_key_value_heads"),
    ("attention.key_length", "head_dim"),
    ("context_length", "max_position_embeddings"),
    ("vocab_size", "vocab_size"),
];

/// A config.json error about the config [`config_json`] made, in the file's terms: each
/// config.json key it names (a whole word, quoted or not) becomes the metadata key it came
/// from, quoted.
fn in_gguf_terms(e: &str, arch: &str) -> String {
    let floats = [
        ("attention.layer_norm_rms_epsilon", "rms_norm_eps"),
        ("rope.freq_base", "rope_theta"),
    ];
    let key_of = |w: &str| INT_KEYS.iter().chain(&floats).find(|(_, hf)| *hf == w);
    let e = e.trim_start_matches("config.json: ");
    let mut out = String::new();
    let mut word = String::new();
    let mut unquote = false;
    for c in e.chars().map(Some).chain([None]) {
        if let Some(c) = c.filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
            word.push(c);
            continue;
        }
        match key_of(&word) {
            Some((key, _)) => {
                unquote = out.ends_with('"') && c == Some('"');
                if unquote {
                    out.pop();
                }
                out.push_str(&format!("'{arch}.{key}'"));
            }
            None => out.push_str(&word),
        }
        word.clear();
        match c {
            Some('"') if unquote => unquote = false,
            Some(c) => out.push(c),
            None => {}
        }
    }
    out
}

/// The config.json the metadata amounts to, so that one parser checks both.
fn config_json(
    f: &GgufFile,
    arch: &str,
    names: &std::collections::BTreeMap<String, usize>,
) -> Result<Value, String> {
    let mut c = Map::new();
    c.insert("model_type".into(), json!(arch));
    c.insert("hidden_act".into(), json!("silu"));
    for (key, hf) in INT_KEYS {
        // Bounded here only to fit JSON; the config parser applies the real limits.
        if let Some(v) = f.int(&format!("{arch}.{key}"), 0, i64::MAX as i128)? {
            c.insert(hf.into(), json!(v as i64));
        }
    }
    if !c.contains_key("vocab_size") {
        // Older files: the vocabulary is the embedding's row count.
        if let Some(&i) = names.get("model.embed_tokens.weight") {
            c.insert("vocab_size".into(), json!(f.tensors[i].1.shape()[0]));
        }
    }
    if let Some(eps) = f.float(&format!("{arch}.attention.layer_norm_rms_epsilon"))? {
        c.insert("rms_norm_eps".into(), json!(eps));
    }
    if let Some(theta) = f.float(&format!("{arch}.rope.freq_base"))? {
        c.insert("rope_theta".into(), json!(theta));
    }
    match f.string(&format!("{arch}.rope.scaling.type"))? {
        None | Some("none") => {}
        Some(other) => {
            return Err(format!(
                "{}: rope scaling '{other}' is not supported from GGUF",
                f.path.display()
            ))
        }
    }
    if let Some(n) = f.int(&format!("{arch}.rope.dimension_count"), 0, i64::MAX as i128)? {
        let heads = c.get("num_attention_heads").and_then(Value::as_i64);
        let hidden = c.get("hidden_size").and_then(Value::as_i64);
        let head_dim = c.get("head_dim").and_then(Value::as_i64).or(heads
            .zip(hidden)
            .filter(|(h, _)| *h > 0)
            .map(|(h, x)| x / h));
        // A head size of 0 is the config parser's to report.
        if head_dim.is_some_and(|d| d > 0 && d as i128 != n) {
            return Err(format!(
                "{}: rope over {n} of each head's {} dimensions (partial rotary) is not supported",
                f.path.display(),
                head_dim.unwrap_or(0)
            ));
        }
    }
    let has = |n: &str| names.contains_key(n);
    c.insert("tie_word_embeddings".into(), json!(!has("lm_head.weight")));
    c.insert(
        "attention_bias".into(),
        json!(has("model.layers.0.self_attn.q_proj.bias")),
    );
    c.insert(
        "mlp_bias".into(),
        json!(has("model.layers.0.mlp.gate_proj.bias")),
    );
    Ok(Value::Object(c))
}

fn tokenizer_meta(f: &GgufFile) -> Result<Option<TokenizerMeta>, String> {
    let Some(model) = f.string("tokenizer.ggml.model")? else {
        return Ok(None);
    };
    let str_item = |v: &MetaValue| match v {
        MetaValue::Str(s) => Some(s.clone()),
        _ => None,
    };
    let id = |key: &str| -> Result<Option<u32>, String> {
        Ok(f.int(key, 0, u32::MAX as i128)?.map(|i| i as u32))
    };
    // llama.cpp's defaults where a key is absent: SentencePiece vocabularies add a BOS and
    // a space prefix, byte-level BPE ones neither.
    let spm = model == "llama";
    let tokens = f
        .array("tokenizer.ggml.tokens", "strings", str_item)?
        .ok_or_else(|| format!("{}: no 'tokenizer.ggml.tokens'", f.path.display()))?;
    let meta = TokenizerMeta {
        model: model.to_string(),
        pre: f.string("tokenizer.ggml.pre")?.map(str::to_string),
        token_types: f
            .array("tokenizer.ggml.token_type", "integers", |v| {
                v.as_int().and_then(|i| i32::try_from(i).ok())
            })?
            .unwrap_or_default(),
        merges: f
            .array("tokenizer.ggml.merges", "strings", str_item)?
            .unwrap_or_default(),
        scores: f
            .array("tokenizer.ggml.scores", "numbers", |v| {
                v.as_f64().map(|x| x as f32)
            })?
            .unwrap_or_default(),
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?,
        unknown: id("tokenizer.ggml.unknown_token_id")?,
        padding: id("tokenizer.ggml.padding_token_id")?,
        add_bos: f.bool("tokenizer.ggml.add_bos_token")?.unwrap_or(spm),
        add_space_prefix: f.bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(spm),
        chat_template: f.string("tokenizer.chat_template")?.map(str::to_string),
        tokens,
    };
    let n = meta.tokens.len();
    for (what, v) in [
        ("bos", meta.bos),
        ("eos", meta.eos),
        ("unknown", meta.unknown),
        ("padding", meta.padding),
    ] {
        if let Some(i) = v.filter(|&i| i as usize >= n) {
            return Err(format!(
                "{}: the {what} token id {i} is outside the vocabulary of {n}",
                f.path.display()
            ));
        }
    }
    if !meta.token_types.is_empty() && meta.token_types.len() != n {
        return Err(format!(
            "{}: {} token types for {n} tokens",
            f.path.display(),
            meta.token_types.len()
        ));
    }
    Ok(Some(meta))
}
