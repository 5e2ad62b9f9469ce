//! mkc-frontends: importers that turn user models (ONNX graphs, Hugging Face checkpoints)
//! into mkc's tensor-level IR (`tg` dialect). It does not run or optimise models.
//!
//! The importers arrive with the frontends issue; the crate exists so the workspace layout
//! and dependency direction (frontends -> ir) are fixed from the start.
