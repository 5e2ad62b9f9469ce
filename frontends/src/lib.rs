//! mkc-frontends: importers that turn user models into mkc's tensor-level IR (`tg`).
//!
//! - [`hf`]: Hugging Face checkpoints (config.json + safetensors, sharded too) of the llama,
//!   mistral, qwen2 and qwen3 families, into the decode-step function.
//! - [`gguf`]: GGUF files (llama.cpp's format) of the llama, qwen2 and qwen3 architectures,
//!   read as the same model (config, tensors under Hugging Face names, quantized blocks kept)
//!   with the tokenizer description the file carries.
//! - [`quantize`]: `--quantize`, a model's matrices in a ggml block format.
//! - [`onnx`]: ONNX graphs (opset >= 13, external data) into a function over the graph's
//!   inputs.
//!
//! Weights stay where they are: importers reference them by name and expose them through
//! [`mkc_ir::weights::WeightSource`] (memory-mapped). This crate does not run models.

pub mod checkpoint;
pub mod config;
pub mod gguf;
pub mod hf;
pub mod onnx;
pub mod quantize;
pub mod random;

pub use checkpoint::Checkpoint;
pub use config::ModelConfig;
pub use hf::{build_decode_step, DecodeOptions, HfModel, Weights};
