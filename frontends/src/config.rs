//! Hugging Face `config.json` for the llama, mistral, qwen2 and qwen3 families. Both rope
//! styles are read: top-level `rope_theta`/`rope_scaling` (most hub checkpoints) and
//! transformers 5's `rope_parameters`.

use mkc_ir::ElemType;
use serde_json::Value;

/// Rotary embedding frequencies.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    Default,
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: i64,
    },
}

/// The shapes and options of a decoder-only model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub model_type: String,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_layers: i64,
    pub num_heads: i64,
    pub num_kv_heads: i64,
    pub head_dim: i64,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    /// Biases on q/k/v projections (qwen2 always; llama/qwen3 with `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on the output projection (llama's `attention_bias`).
    pub o_bias: bool,
    pub mlp_bias: bool,
    /// RMSNorm of q and k per head before rope (qwen3).
    pub qk_norm: bool,
    pub max_position_embeddings: i64,
    /// The sliding-window size when the model uses one.
    pub sliding_window: Option<i64>,
    /// The checkpoint's weight dtype (`dtype` / `torch_dtype`).
    pub dtype: ElemType,
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// Largest value accepted for a size in config.json. Far above any real model (vocabularies
/// are ~2^18, hidden sizes ~2^14, depths ~2^7), low enough that a corrupt value is reported
/// instead of building a graph that never finishes or whose sizes overflow.
fn max_of(key: &str) -> i64 {
    match key {
        "num_hidden_layers" => 4096,
        "num_attention_heads" | "num_key_value_heads" => 1 << 14,
        _ => 1 << 24,
    }
}

fn int(v: &Value, key: &str) -> Result<i64, String> {
    let x = get(v, key)
        .ok_or_else(|| format!("config.json: missing \"{key}\""))?
        .as_i64()
        .filter(|&x| x > 0)
        .ok_or_else(|| format!("config.json: \"{key}\" must be a positive integer"))?;
    let max = max_of(key);
    if x > max {
        return Err(format!(
            "config.json: \"{key}\" = {x} is implausibly large (mkc accepts at most {max})"
        ));
    }
    Ok(x)
}

fn opt_int(v: &Value, key: &str) -> Result<Option<i64>, String> {
    match get(v, key) {
        None => Ok(None),
        Some(_) => int(v, key).map(Some),
    }
}

fn num(v: &Value, key: &str) -> Result<Option<f64>, String> {
    match get(v, key) {
        None => Ok(None),
        Some(x) => x
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("config.json: \"{key}\" must be a number")),
    }
}

/// An optional string field: absent is `None`, any other JSON type is an error.
fn opt_str<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match get(v, key) {
        None => Ok(None),
        Some(x) => x
            .as_str()
            .map(Some)
            .ok_or_else(|| format!("config.json: \"{key}\" must be a string, not {x}")),
    }
}

fn flag(v: &Value, key: &str, default: bool) -> Result<bool, String> {
    match get(v, key) {
        None => Ok(default),
        Some(x) => x
            .as_bool()
            .ok_or_else(|| format!("config.json: \"{key}\" must be true or false")),
    }
}

pub const SUPPORTED_TYPES: [&str; 4] = ["llama", "mistral", "qwen2", "qwen3"];

impl ModelConfig {
    pub fn parse(text: &str) -> Result<ModelConfig, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("config.json is not valid JSON: {e}"))?;
        let model_type = opt_str(&v, "model_type")?
            .ok_or("config.json: missing \"model_type\"")?
            .to_string();
        if !SUPPORTED_TYPES.contains(&model_type.as_str()) {
            return Err(format!(
                "unsupported model_type \"{model_type}\"; mkc supports {}",
                SUPPORTED_TYPES.join(", ")
            ));
        }
        if let Some(act) = opt_str(&v, "hidden_act")? {
            if act != "silu" {
                return Err(format!(
                    "config.json: unsupported hidden_act \"{act}\" (mkc supports silu)"
                ));
            }
        }
        let hidden_size = int(&v, "hidden_size")?;
        let num_heads = int(&v, "num_attention_heads")?;
        let num_kv_heads = opt_int(&v, "num_key_value_heads")?.unwrap_or(num_heads);
        if num_heads % num_kv_heads != 0 {
            return Err(format!(
                "num_attention_heads ({num_heads}) is not a multiple of num_key_value_heads ({num_kv_heads})"
            ));
        }
        let head_dim = match opt_int(&v, "head_dim")? {
            Some(d) => d,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => return Err("config.json: hidden_size is not a multiple of num_attention_heads and head_dim is not given".into()),
        };
        if head_dim % 2 != 0 {
            return Err(format!(
                "head_dim {head_dim} must be even for rotary embedding"
            ));
        }
        // Rope: transformers 5 puts everything in rope_parameters; older configs use
        // rope_theta + rope_scaling at the top level.
        let params = get(&v, "rope_parameters");
        let scaling = params.or_else(|| get(&v, "rope_scaling"));
        let rope_theta = params
            .and_then(|p| num(p, "rope_theta").transpose())
            .transpose()?
            .or(num(&v, "rope_theta")?)
            .unwrap_or(10000.0);
        let rope_type = match scaling {
            Some(s) if get(s, "rope_type").is_some() => opt_str(s, "rope_type")?,
            Some(s) => opt_str(s, "type")?,
            None => None,
        }
        .unwrap_or("default");
        let rope_scaling = match rope_type {
            "default" => RopeScaling::Default,
            "llama3" => {
                let s = scaling.expect("rope_type came from it");
                let need = |k: &str| {
                    num(s, k)?
                        .ok_or_else(|| format!("config.json: llama3 rope scaling needs \"{k}\""))
                };
                RopeScaling::Llama3 {
                    factor: need("factor")?,
                    low_freq_factor: need("low_freq_factor")?,
                    high_freq_factor: need("high_freq_factor")?,
                    original_max_position_embeddings: int(s, "original_max_position_embeddings")?,
                }
            }
            other => {
                return Err(format!(
                    "unsupported rope type \"{other}\" (mkc supports default and llama3)"
                ))
            }
        };
        let attention_bias = flag(&v, "attention_bias", false)?;
        let (qkv_bias, o_bias) = match model_type.as_str() {
            "qwen2" => (true, false),
            "llama" => (attention_bias, attention_bias),
            _ => (attention_bias, false),
        };
        let sliding_window = match model_type.as_str() {
            "qwen2" | "qwen3" if !flag(&v, "use_sliding_window", false)? => None,
            _ => opt_int(&v, "sliding_window")?,
        };
        let dtype_key = if get(&v, "dtype").is_some() {
            "dtype"
        } else {
            "torch_dtype"
        };
        let dtype = match opt_str(&v, dtype_key)? {
            None | Some("bfloat16") => ElemType::BF16,
            Some("float16") => ElemType::F16,
            Some("float32") => ElemType::F32,
            Some(other) => {
                return Err(format!(
                    "config.json: unsupported {dtype_key} \"{other}\" (mkc supports bfloat16, float16, float32)"
                ))
            }
        };
        Ok(ModelConfig {
            vocab_size: int(&v, "vocab_size")?,
            hidden_size,
            intermediate_size: int(&v, "intermediate_size")?,
            num_layers: int(&v, "num_hidden_layers")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: num(&v, "rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            tie_word_embeddings: flag(&v, "tie_word_embeddings", false)?,
            qkv_bias,
            o_bias,
            mlp_bias: flag(&v, "mlp_bias", false)?,
            qk_norm: model_type == "qwen3",
            max_position_embeddings: opt_int(&v, "max_position_embeddings")?.unwrap_or(2048),
            sliding_window,
            dtype,
            model_type,
        })
    }

    /// Every weight the model needs: (checkpoint name, shape), in a stable order.
    pub fn expected_weights(&self) -> Vec<(String, Vec<i64>)> {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let (q, kv) = (
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
        );
        let mut w = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
        for l in 0..self.num_layers {
            let p = format!("model.layers.{l}");
            w.push((format!("{p}.input_layernorm.weight"), vec![h]));
            for (name, rows) in [("q", q), ("k", kv), ("v", kv)] {
                w.push((format!("{p}.self_attn.{name}_proj.weight"), vec![rows, h]));
                if self.qkv_bias {
                    w.push((format!("{p}.self_attn.{name}_proj.bias"), vec![rows]));
                }
            }
            if self.qk_norm {
                w.push((format!("{p}.self_attn.q_norm.weight"), vec![self.head_dim]));
                w.push((format!("{p}.self_attn.k_norm.weight"), vec![self.head_dim]));
            }
            w.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
            if self.o_bias {
                w.push((format!("{p}.self_attn.o_proj.bias"), vec![h]));
            }
            w.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
            for (name, shape) in [
                ("gate", vec![i, h]),
                ("up", vec![i, h]),
                ("down", vec![h, i]),
            ] {
                let rows = shape[0];
                w.push((format!("{p}.mlp.{name}_proj.weight"), shape));
                if self.mlp_bias {
                    w.push((format!("{p}.mlp.{name}_proj.bias"), vec![rows]));
                }
            }
        }
        w.push(("model.norm.weight".to_string(), vec![h]));
        if !self.tie_word_embeddings {
            w.push(("lm_head.weight".to_string(), vec![v, h]));
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA3: &str = r#"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 100, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "tie_word_embeddings": true, "torch_dtype": "bfloat16"}"#;

    #[test]
    fn reads_hub_style_rope() {
        let c = ModelConfig::parse(LLAMA3).unwrap();
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.rope_theta, 500000.0);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
        assert_eq!(c.expected_weights().len(), 1 + 2 * 9 + 1);
    }

    #[test]
    fn reads_transformers5_rope_parameters() {
        let c = ModelConfig::parse(
            r#"{"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
            "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}}"#,
        )
        .unwrap();
        assert_eq!(c.rope_theta, 1e6);
        assert_eq!(c.num_kv_heads, 4);
        assert!(c.qkv_bias && !c.o_bias, "qwen2 has q/k/v biases");
        assert!(c
            .expected_weights()
            .iter()
            .any(|(n, _)| n == "model.layers.0.self_attn.k_proj.bias"));
    }

    #[test]
    fn rejects_what_it_cannot_compile() {
        let e = ModelConfig::parse(r#"{"model_type": "gpt2"}"#).unwrap_err();
        assert!(e.contains("unsupported model_type \"gpt2\""), "{e}");
        let e = ModelConfig::parse(&LLAMA3.replace("llama3", "yarn")).unwrap_err();
        assert!(e.contains("unsupported rope type \"yarn\""), "{e}");
        let e = ModelConfig::parse(&LLAMA3.replace("\"hidden_size\": 64,", "")).unwrap_err();
        assert!(e.contains("missing \"hidden_size\""), "{e}");
        let e = ModelConfig::parse(&LLAMA3.replace(
            "\"num_hidden_layers\": 2",
            "\"num_hidden_layers\": 1099511627776",
        ))
        .unwrap_err();
        assert!(
            e.contains("\"num_hidden_layers\" = 1099511627776 is implausibly large"),
            "{e}"
        );
        let e = ModelConfig::parse("{not json").unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    /// Issue 26: a field of the wrong JSON type was silently defaulted (`"hidden_act": 0.5`
    /// taken as silu, a non-string dtype as bf16); each must be an error naming the key.
    #[test]
    fn rejects_fields_of_the_wrong_type() {
        let with =
            |key: &str, value: &str| LLAMA3.replacen('{', &format!("{{\"{key}\": {value}, "), 1);
        for (key, value) in [
            ("hidden_act", "0.5"),
            ("dtype", "16"),
            ("torch_dtype", "true"),
            ("dtype", "[\"bfloat16\"]"),
        ] {
            let text = with(key, value).replace("\"torch_dtype\": \"bfloat16\"", "\"x\": 0");
            let e = ModelConfig::parse(&text).unwrap_err();
            assert!(
                e.contains("config.json") && e.contains(&format!("\"{key}\" must be a string")),
                "{key}: {e}"
            );
        }
        let e = ModelConfig::parse(&LLAMA3.replace("\"llama\"", "7")).unwrap_err();
        assert!(e.contains("\"model_type\" must be a string"), "{e}");
        let e = ModelConfig::parse(&LLAMA3.replace("\"llama3\"", "3")).unwrap_err();
        assert!(e.contains("\"rope_type\" must be a string"), "{e}");
        let e = ModelConfig::parse(&with("dtype", "\"int4\"")).unwrap_err();
        assert!(e.contains("config.json: unsupported dtype \"int4\""), "{e}");
        // Strings and absent keys still work; null counts as absent.
        let c = ModelConfig::parse(&with("dtype", "\"float16\"")).unwrap();
        assert_eq!(c.dtype, ElemType::F16);
        let c = ModelConfig::parse(&with("hidden_act", "null")).unwrap();
        assert_eq!(c.dtype, ElemType::BF16);
    }
}
