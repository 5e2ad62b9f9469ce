//! Importing a model into verified IR: a Hugging Face checkpoint folder or config.json
//! (the decode step), an ONNX graph, or a `.mlir` module at any level.

use mkc_ir::{Body, ElemType};
use std::path::Path;

/// How to import a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelOptions {
    /// Ignore any weights on disk: weights will be synthesized (deterministically) to run.
    pub random_weights: bool,
    /// KV-cache length (the longest context the step handles).
    pub ctx: i64,
    /// Element type of activations and the KV cache.
    pub compute: ElemType,
    /// Store the model's matrices in this block format (`--quantize`).
    pub quantize: Option<mkc_ir::quant::BlockFormat>,
    /// Products by q8_0/q4_0/q4_1 weights read their activation rounded to 8 bits (the
    /// `int8-activations` pass right after import, `--int8-activations`).
    pub int8_activations: bool,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            random_weights: false,
            ctx: 2048,
            compute: ElemType::F32,
            quantize: None,
            int8_activations: false,
        }
    }
}

/// The kind of model a path names.
pub fn is_onnx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "onnx")
}

/// The element type each weight of `model` has as `o` imports it: the checkpoint's (the
/// config's dtype for random weights), then `--quantize`'s block format for its matrices.
pub fn weight_types(
    model: &mkc_frontends::HfModel,
    o: &ModelOptions,
) -> std::collections::HashMap<String, ElemType> {
    let base = if o.random_weights {
        model
            .config
            .expected_weights()
            .into_iter()
            .map(|(n, _)| (n, model.config.dtype))
            .collect()
    } else {
        model.weight_types()
    };
    match o.quantize {
        None => base,
        Some(f) => mkc_frontends::quantize::quantized_types(
            model.config.expected_weights().into_iter().map(|(n, s)| {
                let e = base[&n];
                (n, e, s)
            }),
            f,
        ),
    }
}

/// The weights `model` (read from `path`) runs with under `o`: the checkpoint's (quantized
/// as it is read with `--quantize`), or deterministic random ones of the imported types with
/// `--random-weights`. A model without weights is an error unless random ones were asked for:
/// running invented weights without a word would pass for running the model.
pub fn model_weights<'a>(
    path: &Path,
    model: &'a mkc_frontends::HfModel,
    o: &ModelOptions,
) -> Result<Box<dyn mkc_ir::weights::WeightSource + 'a>, String> {
    let types = weight_types(model, o);
    match (&model.checkpoint, o.random_weights) {
        (Some(c), false) => Ok(Box::new(mkc_frontends::quantize::Quantized {
            inner: c,
            types,
        })),
        (None, false) => Err(no_weights(path)),
        _ => Ok(Box::new(mkc_frontends::random::RandomWeights::new(
            model.config.expected_weights().into_iter().map(|(n, s)| {
                let e = types[&n];
                (n, e, s)
            }),
            0,
        ))),
    }
}

/// The error for running a model that has no weights without `--random-weights`.
pub fn no_weights(path: &Path) -> String {
    format!(
        "{} has no weights: give --random-weights to run it with random ones",
        path.display()
    )
}

/// `weights` as the module `body` stores them: the matrices it keeps in a block format
/// (compiled with `--quantize`) are quantized as they are read; the rest pass through.
pub fn as_stored<'a>(
    body: &Body,
    weights: &'a dyn mkc_ir::weights::WeightSource,
) -> mkc_frontends::quantize::Quantized<'a> {
    let mut types = std::collections::HashMap::new();
    if let Some(func) = mkc_ir::dialect::builtin::first_func(body) {
        if let Some(entry) = body.entry_block(func, 0) {
            for (i, &a) in body.blocks[entry].args.iter().enumerate() {
                let name = mkc_ir::dialect::builtin::weight_arg_name(body, func, i);
                if let (Some(n), Some(e)) = (name, body.ty(a).elem()) {
                    types.insert(n.to_string(), e);
                }
            }
        }
    }
    mkc_frontends::quantize::Quantized {
        inner: weights,
        types,
    }
}

/// Imports `path` into verified IR.
pub fn import_model(path: &Path, o: &ModelOptions) -> Result<Body, String> {
    if path.extension().is_some_and(|e| e == "mlir") {
        if o.int8_activations {
            return Err(format!(
                "{}: --int8-activations rounds a model's products as it is imported; a .mlir module is IR at any level: run the pass in its pipeline (--pass-pipeline 'builtin.module(int8-activations,...)')",
                path.display()
            ));
        }
        // IR at any level: parsed and verified, with diagnostics against the file.
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
        return mkc_ir::parse_text(&path.display().to_string(), &text);
    }
    let body = if is_onnx(path) {
        use mkc_frontends::onnx::{import, ImportOptions, OnnxModel};
        let model = OnnxModel::open(path).map_err(|e| e.to_string())?;
        let mut body = import(&model, &ImportOptions::default())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if o.int8_activations {
            crate::run_pipeline(&mut body, "builtin.module(int8-activations)")
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        body
    } else {
        let model = mkc_frontends::HfModel::open(path)?;
        let types = weight_types(&model, o);
        let opts = mkc_frontends::DecodeOptions {
            max_context: o.ctx,
            compute: o.compute,
        };
        let mut body = mkc_frontends::build_decode_step(&model.config, &types, &opts)?;
        if o.int8_activations {
            crate::run_pipeline(&mut body, "builtin.module(int8-activations)")
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        body
    };
    let registry = mkc_ir::Registry::with_all_dialects();
    if let Some(e) = mkc_ir::verify::verify(&body, &registry, Default::default()).first() {
        return Err(format!(
            "internal error: the imported IR does not verify: {}",
            e.message
        ));
    }
    Ok(body)
}
