//! mkc-runtime: loads a compiled mkc artifact (PTX, task tables, memory and weight plans)
//! and launches its one persistent kernel per decode step through the CUDA driver (cudarc,
//! libcuda loaded at run time). It never links MLIR, so a runtime-only `mkc` stays small
//! enough to ship to a GPU host.
//!
//! The artifact format and the launcher arrive with the GPU lowering; for now this crate
//! only answers whether a CUDA driver is present.

/// Whether this build can talk to a GPU at all (the `cuda` feature).
pub const CUDA_ENABLED: bool = cfg!(feature = "cuda");
