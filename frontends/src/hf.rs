//! The Hugging Face importer: a checkpoint folder (or a bare config.json) becomes the
//! decode-step function in the `tg` dialect:
//!
//! ```text
//! func.func @decode_step(%token: tensor<i64>, %pos: tensor<i64>,
//!                        %k_cache_0: tensor<CxKxDxf32>, %v_cache_0: ..., ...,
//!                        %w0: tensor<VxHxbf16> {mkc.weight = "model.embed_tokens.weight"}, ...)
//!     -> (tensor<Vxf32> logits, tensor<i64> next token, k caches..., v caches...)
//! ```
//!
//! Weights are arguments named by their checkpoint tensor name; activations and the KV cache
//! use the compute type (f32 by default); weights keep their checkpoint type and ops read
//! them as they are (mixed precision), so no weight is converted or copied at import.

use crate::checkpoint::Checkpoint;
use crate::config::{ModelConfig, RopeScaling};
use crate::gguf::GgufModel;
use mkc_ir::attr::{Attr, F64};
use mkc_ir::dialect::builtin;
use mkc_ir::dialect::tg;
use mkc_ir::weights::{RawTensor, WeightSource};
use mkc_ir::{Attrs, BlockId, Body, ElemType, OpSpec, Type, ValueId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How to build the decode step.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// KV-cache length (positions 0..max_context).
    pub max_context: i64,
    /// Element type of activations and the KV cache.
    pub compute: ElemType,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_context: 2048,
            compute: ElemType::F32,
        }
    }
}

/// A model's weights, as stored.
pub enum Weights {
    Safetensors(Checkpoint),
    /// A GGUF file, its tensors under Hugging Face names.
    Gguf(Box<GgufModel>),
}

impl Weights {
    /// A tensor's element type and shape.
    pub fn info(&self, name: &str) -> Option<(ElemType, Vec<i64>)> {
        match self {
            Weights::Safetensors(c) => c.info(name).map(|i| (i.elem, i.shape.clone())),
            Weights::Gguf(g) => g.info(name).map(|i| (i.ty.elem(), i.shape())),
        }
    }

    /// Every tensor's name.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Weights::Safetensors(c) => c.tensors().map(|(n, _)| n).collect(),
            Weights::Gguf(g) => g.tensors().map(|(n, _, _)| n).collect(),
        }
    }

    /// The GGUF file, when the weights come from one.
    pub fn gguf(&self) -> Option<&GgufModel> {
        match self {
            Weights::Gguf(g) => Some(g),
            Weights::Safetensors(_) => None,
        }
    }
}

impl WeightSource for Weights {
    fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
        match self {
            Weights::Safetensors(c) => c.raw(name),
            Weights::Gguf(g) => g.raw(name),
        }
    }
}

/// A model as found on disk.
pub struct HfModel {
    pub dir: PathBuf,
    pub config: ModelConfig,
    /// `None` when only a config.json was given.
    pub checkpoint: Option<Weights>,
}

/// Tensors transformers itself ignores when loading.
fn ignorable(name: &str, config: &ModelConfig) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
        || (config.tie_word_embeddings && name == "lm_head.weight")
}

impl HfModel {
    /// `path` is a checkpoint folder or a config.json. A folder without safetensors is a
    /// config-only model (shapes are enough to compile).
    pub fn open(path: &Path) -> Result<HfModel, String> {
        if crate::gguf::is_gguf(path) {
            let g = GgufModel::open(path)?;
            let w = Weights::Gguf(Box::new(g));
            let config = w.gguf().expect("gguf").config.clone();
            check_tensors(&config, &w).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(HfModel {
                dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                config,
                checkpoint: Some(w),
            });
        }
        let (dir, config_path) = if path.is_dir() {
            (path.to_path_buf(), path.join("config.json"))
        } else {
            (
                path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                path.to_path_buf(),
            )
        };
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| format!("cannot read {}: {e}", config_path.display()))?;
        let config =
            ModelConfig::parse(&text).map_err(|e| format!("{}: {e}", config_path.display()))?;
        let has_weights = path.is_dir()
            && (dir.join("model.safetensors").is_file()
                || dir.join("model.safetensors.index.json").is_file());
        let checkpoint = if has_weights {
            let c = Weights::Safetensors(Checkpoint::open(&dir)?);
            check_tensors(&config, &c).map_err(|e| format!("{}: {e}", dir.display()))?;
            Some(c)
        } else {
            None
        };
        Ok(HfModel {
            dir,
            config,
            checkpoint,
        })
    }

    /// The element type each weight has (the checkpoint's, or the config's dtype).
    pub fn weight_types(&self) -> HashMap<String, ElemType> {
        self.config
            .expected_weights()
            .into_iter()
            .map(|(n, _)| {
                let e = self
                    .checkpoint
                    .as_ref()
                    .and_then(|c| c.info(&n))
                    .map_or(self.config.dtype, |(e, _)| e);
                (n, e)
            })
            .collect()
    }
}

/// Every tensor the config implies is present with its shape and a float dtype, and nothing
/// unexpected is there.
pub fn check_tensors(config: &ModelConfig, ckpt: &Weights) -> Result<(), String> {
    let expected = config.expected_weights();
    let mut problems = Vec::new();
    for (name, shape) in &expected {
        match ckpt.info(name) {
            None => problems.push(format!("missing tensor '{name}' (shape {shape:?})")),
            Some((_, s)) if &s != shape => problems.push(format!(
                "tensor '{name}' has shape {s:?}, but the config implies {shape:?}"
            )),
            Some((e, _)) if !e.is_float() => problems.push(format!(
                "tensor '{name}' has dtype {e}, expected a float type"
            )),
            _ => {}
        }
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    for name in ckpt.names() {
        if !known.contains(name) && !ignorable(name, config) {
            problems.push(format!(
                "unexpected tensor '{name}' for a {} model with this config",
                config.model_type
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Builds ops into one block.
struct Builder<'a> {
    body: &'a mut Body,
    block: BlockId,
}

impl Builder<'_> {
    fn op(
        &mut self,
        name: &str,
        operands: Vec<ValueId>,
        ty: Type,
        attrs: Vec<(&str, Attr)>,
    ) -> ValueId {
        let mut a = Attrs::new();
        for (k, v) in attrs {
            a.set(k, v);
        }
        let op = self.body.build(
            self.block,
            OpSpec {
                name: name.into(),
                operands,
                result_types: vec![ty],
                attrs: a,
                num_regions: 0,
                loc: Default::default(),
            },
        );
        self.body.ops[op].results[0]
    }

    fn ty(&self, v: ValueId) -> Type {
        self.body.ty(v).clone()
    }

    fn shape_of(&self, v: ValueId) -> Vec<i64> {
        self.body
            .ty(v)
            .as_tensor()
            .map(|t| t.shape.clone())
            .unwrap_or_default()
    }

    fn cast(&mut self, v: ValueId, e: ElemType) -> ValueId {
        if self.body.ty(v).elem() == Some(e) {
            return v;
        }
        let ty = Type::tensor(self.shape_of(v), e);
        self.op(tg::Cast::NAME, vec![v], ty, vec![])
    }

    fn reshape(&mut self, v: ValueId, shape: Vec<i64>) -> ValueId {
        let e = self.body.ty(v).elem().expect("tensor");
        self.op(tg::Reshape::NAME, vec![v], Type::tensor(shape, e), vec![])
    }

    fn binary(&mut self, name: &str, a: ValueId, b: ValueId) -> ValueId {
        let ty = self.ty(a);
        self.op(name, vec![a, b], ty, vec![])
    }

    /// x [K] times W [N, K] (PyTorch Linear layout) -> [N], plus an optional bias [N].
    fn linear(&mut self, x: ValueId, w: ValueId, bias: Option<ValueId>) -> ValueId {
        let n = self.shape_of(w)[0];
        let e = self.body.ty(x).elem().expect("tensor");
        let y = self.op(
            tg::MatMul::NAME,
            vec![x, w],
            Type::tensor(vec![n], e),
            vec![("transpose_b", Attr::Bool(true))],
        );
        match bias {
            Some(b) => {
                let b = self.cast(b, e);
                self.binary(tg::Add::NAME, y, b)
            }
            None => y,
        }
    }

    fn rms_norm(&mut self, x: ValueId, w: ValueId, axis: i64, eps: f64) -> ValueId {
        let ty = self.ty(x);
        self.op(
            tg::RmsNorm::NAME,
            vec![x, w],
            ty,
            vec![
                ("axis", Attr::Int(axis, ElemType::I64)),
                ("epsilon", Attr::Float(F64(eps), ElemType::F64)),
            ],
        )
    }
}

/// Builds the decode-step module. `weight_types` gives each weight's element type.
pub fn build_decode_step(
    config: &ModelConfig,
    weight_types: &HashMap<String, ElemType>,
    opts: &DecodeOptions,
) -> Result<Body, String> {
    let c = config;
    if opts.max_context < 1 {
        return Err("the context length must be at least 1".into());
    }
    if let Some(w) = c.sliding_window {
        if w < opts.max_context {
            return Err(format!(
                "sliding-window attention (window {w}) is not supported; compile with a context of at most {w}"
            ));
        }
    }
    let e = opts.compute;
    if !e.is_float() {
        return Err(format!("the compute type must be a float type, not {e}"));
    }
    let (h, d, hq, hkv, ctx) = (
        c.hidden_size,
        c.head_dim,
        c.num_heads,
        c.num_kv_heads,
        opts.max_context,
    );
    let scalar_i64 = Type::tensor(vec![], ElemType::I64);
    let cache_ty = Type::tensor(vec![ctx, hkv, d], e);
    let weights = c.expected_weights();

    let mut body = Body::new();
    let mut arg_types = vec![scalar_i64.clone(), scalar_i64];
    let mut arg_attrs = vec![Attr::Dict(vec![]), Attr::Dict(vec![])];
    for _ in 0..2 * c.num_layers {
        arg_types.push(cache_ty.clone());
        arg_attrs.push(Attr::Dict(vec![]));
    }
    for (name, shape) in &weights {
        let et = *weight_types.get(name).unwrap_or(&c.dtype);
        arg_types.push(Type::tensor(shape.clone(), et));
        arg_attrs.push(Attr::Dict(vec![(
            "mkc.weight".into(),
            Attr::Str(name.clone()),
        )]));
    }
    let mut result_types = vec![
        Type::tensor(vec![c.vocab_size], e),
        Type::tensor(vec![], ElemType::I64),
    ];
    for _ in 0..2 * c.num_layers {
        result_types.push(cache_ty.clone());
    }
    let func = body.create_op(
        OpSpec::new(builtin::Func::NAME)
            .regions(1)
            .attr("sym_name", Attr::Str("decode_step".into()))
            .attr(
                "function_type",
                Attr::Type(Type::Function(arg_types.clone(), result_types)),
            )
            .attr("arg_attrs", Attr::Array(arg_attrs)),
    );
    let module_block = body.module_block();
    body.append_op(module_block, func);
    let region = body.ops[func].regions[0];
    let block = body.append_block(region, &arg_types);
    let args = body.blocks[block].args.clone();
    let (token, pos) = (args[0], args[1]);
    let caches = args[2..2 + 2 * c.num_layers as usize].to_vec();
    let w: HashMap<&str, ValueId> = weights
        .iter()
        .zip(&args[2 + 2 * c.num_layers as usize..])
        .map(|((n, _), &v)| (n.as_str(), v))
        .collect();
    let wt = |n: &str| -> ValueId { w[n] };
    let wopt = |n: &str| -> Option<ValueId> { w.get(n).copied() };

    let mut b = Builder {
        body: &mut body,
        block,
    };
    let embed = wt("model.embed_tokens.weight");
    let emb_e = b.body.ty(embed).elem().expect("tensor");
    // A block-quantized table's rows come out dequantized (f32).
    let row_e = if emb_e.is_block() {
        ElemType::F32
    } else {
        emb_e
    };
    let row = b.op(
        tg::Gather::NAME,
        vec![embed, token],
        Type::tensor(vec![h], row_e),
        vec![("axis", Attr::Int(0, ElemType::I64))],
    );
    let mut x = b.cast(row, e);

    let mut rope_attrs = vec![
        ("theta", Attr::Float(F64(c.rope_theta), ElemType::F64)),
        ("dim", Attr::Int(d, ElemType::I64)),
    ];
    if let RopeScaling::Llama3 {
        factor,
        low_freq_factor,
        high_freq_factor,
        original_max_position_embeddings,
    } = c.rope_scaling
    {
        rope_attrs.extend([
            ("rope_type", Attr::Str("llama3".into())),
            ("factor", Attr::Float(F64(factor), ElemType::F64)),
            (
                "low_freq_factor",
                Attr::Float(F64(low_freq_factor), ElemType::F64),
            ),
            (
                "high_freq_factor",
                Attr::Float(F64(high_freq_factor), ElemType::F64),
            ),
            (
                "original_max_position_embeddings",
                Attr::Int(original_max_position_embeddings, ElemType::I64),
            ),
        ]);
    }
    let half_ty = Type::tensor(vec![d / 2], ElemType::F32);
    let cs_op = b.body.build(
        block,
        OpSpec::new(tg::RopeCosSin::NAME)
            .operands(vec![pos])
            .results(vec![half_ty.clone(), half_ty])
            .loc(Default::default()),
    );
    for (k, v) in rope_attrs {
        b.body.ops[cs_op].attrs.set(k, v);
    }
    let (mut cos, mut sin) = (b.body.ops[cs_op].results[0], b.body.ops[cs_op].results[1]);
    cos = b.cast(cos, e);
    sin = b.cast(sin, e);

    let mut new_caches = Vec::new();
    let scale = 1.0 / (d as f64).sqrt();
    for l in 0..c.num_layers {
        let p = format!("model.layers.{l}");
        let n1 = b.rms_norm(
            x,
            wt(&format!("{p}.input_layernorm.weight")),
            0,
            c.rms_norm_eps,
        );
        let proj = |b: &mut Builder, name: &str| {
            let wv = wt(&format!("{p}.self_attn.{name}_proj.weight"));
            let bias = wopt(&format!("{p}.self_attn.{name}_proj.bias"));
            b.linear(n1, wv, bias)
        };
        let (q, k, v) = (proj(&mut b, "q"), proj(&mut b, "k"), proj(&mut b, "v"));
        let mut q = b.reshape(q, vec![hq, d]);
        let mut k = b.reshape(k, vec![hkv, d]);
        let v = b.reshape(v, vec![hkv, d]);
        if c.qk_norm {
            q = b.rms_norm(
                q,
                wt(&format!("{p}.self_attn.q_norm.weight")),
                1,
                c.rms_norm_eps,
            );
            k = b.rms_norm(
                k,
                wt(&format!("{p}.self_attn.k_norm.weight")),
                1,
                c.rms_norm_eps,
            );
        }
        let qty = b.ty(q);
        let q = b.op(tg::Rope::NAME, vec![q, cos, sin], qty, vec![]);
        let kty = b.ty(k);
        let k = b.op(tg::Rope::NAME, vec![k, cos, sin], kty, vec![]);
        let (kc, vc) = (caches[2 * l as usize], caches[2 * l as usize + 1]);
        let kc = b.op(
            tg::KvAppend::NAME,
            vec![kc, k, pos],
            cache_ty.clone(),
            vec![],
        );
        let vc = b.op(
            tg::KvAppend::NAME,
            vec![vc, v, pos],
            cache_ty.clone(),
            vec![],
        );
        new_caches.extend([kc, vc]);
        let att = b.op(
            tg::Attention::NAME,
            vec![q, kc, vc, pos],
            Type::tensor(vec![hq, d], e),
            vec![("scale", Attr::Float(F64(scale), ElemType::F64))],
        );
        let att = b.reshape(att, vec![hq * d]);
        let o = b.linear(
            att,
            wt(&format!("{p}.self_attn.o_proj.weight")),
            wopt(&format!("{p}.self_attn.o_proj.bias")),
        );
        x = b.binary(tg::Add::NAME, x, o);
        let n2 = b.rms_norm(
            x,
            wt(&format!("{p}.post_attention_layernorm.weight")),
            0,
            c.rms_norm_eps,
        );
        let mlp = |b: &mut Builder, name: &str, input: ValueId| {
            let wv = wt(&format!("{p}.mlp.{name}_proj.weight"));
            b.linear(input, wv, wopt(&format!("{p}.mlp.{name}_proj.bias")))
        };
        let gate = mlp(&mut b, "gate", n2);
        let up = mlp(&mut b, "up", n2);
        let gty = b.ty(gate);
        let act = b.op(tg::Silu::NAME, vec![gate], gty, vec![]);
        let act = b.binary(tg::Mul::NAME, act, up);
        let down = mlp(&mut b, "down", act);
        x = b.binary(tg::Add::NAME, x, down);
    }
    let xn = b.rms_norm(x, wt("model.norm.weight"), 0, c.rms_norm_eps);
    let head = if c.tie_word_embeddings {
        embed
    } else {
        wt("lm_head.weight")
    };
    let logits = b.linear(xn, head, None);
    // Greedy decoding picks the next token on the device.
    let next = b.op(
        tg::ArgMax::NAME,
        vec![logits],
        Type::tensor(vec![], ElemType::I64),
        vec![
            ("axis", Attr::Int(0, ElemType::I64)),
            ("keepdims", Attr::Bool(false)),
        ],
    );
    let mut ret = vec![logits, next];
    ret.extend(new_caches);
    b.body
        .build(block, OpSpec::new(builtin::Return::NAME).operands(ret));
    Ok(body)
}
