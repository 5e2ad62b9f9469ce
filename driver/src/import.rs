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
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            random_weights: false,
            ctx: 2048,
            compute: ElemType::F32,
        }
    }
}

/// The kind of model a path names.
pub fn is_onnx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "onnx")
}

/// Imports `path` into verified IR.
pub fn import_model(path: &Path, o: &ModelOptions) -> Result<Body, String> {
    if path.extension().is_some_and(|e| e == "mlir") {
        // IR at any level: parsed and verified, with diagnostics against the file.
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
        return mkc_ir::parse_text(&path.display().to_string(), &text);
    }
    let body = if is_onnx(path) {
        use mkc_frontends::onnx::{import, ImportOptions, OnnxModel};
        let model = OnnxModel::open(path).map_err(|e| e.to_string())?;
        import(&model, &ImportOptions::default()).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        let model = mkc_frontends::HfModel::open(path)?;
        let types = if o.random_weights {
            model
                .config
                .expected_weights()
                .into_iter()
                .map(|(n, _)| (n, model.config.dtype))
                .collect()
        } else {
            model.weight_types()
        };
        let opts = mkc_frontends::DecodeOptions {
            max_context: o.ctx,
            compute: o.compute,
        };
        mkc_frontends::build_decode_step(&model.config, &types, &opts)?
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
