//! `--quantize FORMAT`: a model's matrices (projections, the embedding and the LM head)
//! stored in one of ggml's block formats, whatever the checkpoint keeps them as. It decides
//! which weights change type and wraps a weight source to quantize them as they are read
//! (ggml's reference quantization, `mkc_ir::quant`); norm scales and biases stay as they are.

use mkc_ir::quant::BlockFormat;
use mkc_ir::tensor::{Data, Tensor};
use mkc_ir::weights::{RawTensor, WeightSource};
use mkc_ir::{ElemType, TensorType};
use std::borrow::Cow;
use std::collections::HashMap;

/// Whether a weight of this (Hugging Face) name and shape is a matrix `--quantize` stores
/// in a block format: a 2-D projection, embedding or LM head whose rows are whole blocks.
pub fn quantizable(name: &str, shape: &[i64], f: BlockFormat) -> bool {
    let matrix = name.ends_with("_proj.weight")
        || name == "model.embed_tokens.weight"
        || name == "lm_head.weight";
    matrix && shape.len() == 2 && shape[1] > 0 && shape[1] % f.block_elems() as i64 == 0
}

/// The element types of `weights` (name -> (type, shape)) once quantized to `f`: matrices
/// that are not already block-quantized take `f`.
pub fn quantized_types(
    weights: impl IntoIterator<Item = (String, ElemType, Vec<i64>)>,
    f: BlockFormat,
) -> HashMap<String, ElemType> {
    weights
        .into_iter()
        .map(|(n, e, s)| {
            let q = !e.is_block() && e.is_float() && quantizable(&n, &s, f);
            let e = if q { ElemType::Block(f) } else { e };
            (n, e)
        })
        .collect()
}

/// Values in f32 as a block format: ggml's reference quantization, row by row.
pub fn quantize(f: BlockFormat, values: &[f32]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(f.storage_bytes(values.len() as u64).unwrap_or(0) as usize);
    f.quantize(values, &mut out)?;
    Ok(out)
}

/// A weight source whose tensors of block types (in `types`) are quantized from the inner
/// source's values on every read.
pub struct Quantized<'a> {
    pub inner: &'a dyn WeightSource,
    pub types: HashMap<String, ElemType>,
}

impl WeightSource for Quantized<'_> {
    fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
        let raw = self.inner.raw(name)?;
        let Some(&ElemType::Block(f)) = self.types.get(name) else {
            return Ok(raw);
        };
        if raw.elem == ElemType::Block(f) {
            return Ok(raw);
        }
        let t = Tensor::from_raw(&raw, &TensorType::new(raw.shape.clone(), raw.elem))
            .map_err(|e| format!("weight '{name}' {e}"))?;
        let values: Vec<f32> = match t.data {
            Data::F32(v) => v,
            Data::F64(v) => v.into_iter().map(|x| x as f32).collect(),
            Data::I64(_) => return Err(format!("weight '{name}' is not a float tensor")),
        };
        let bytes = quantize(f, &values).map_err(|e| format!("weight '{name}': {e}"))?;
        Ok(RawTensor {
            elem: ElemType::Block(f),
            shape: raw.shape,
            bytes: Cow::Owned(bytes),
        })
    }
}
