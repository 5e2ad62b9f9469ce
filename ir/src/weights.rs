//! The interface between checkpoints and whatever reads weights: importers expose a
//! [`WeightSource`], executors ask it for tensors by name. Raw bytes are little-endian, in
//! the checkpoint's own element type; nothing is converted or copied until asked for.

use crate::types::ElemType;
use std::borrow::Cow;

/// One tensor of a checkpoint, as stored.
#[derive(Clone, Debug)]
pub struct RawTensor<'a> {
    pub elem: ElemType,
    pub shape: Vec<i64>,
    /// Row-major, little-endian, `elem.bytes()` per element (bool: one byte).
    pub bytes: Cow<'a, [u8]>,
}

/// Named weights, e.g. a memory-mapped safetensors checkpoint or an ONNX model's initializers.
pub trait WeightSource {
    /// The tensor called `name`, or an error naming what is wrong.
    fn raw(&self, name: &str) -> Result<RawTensor<'_>, String>;
}

/// No weights at all (for IR without weight references).
pub struct NoWeights;

impl WeightSource for NoWeights {
    fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
        Err(format!("no weights are loaded, but the IR needs '{name}'"))
    }
}
