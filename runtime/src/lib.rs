//! mkc-runtime: executes mkc programs. On the CPU: the reference interpreter of the tensor
//! level ([`interp`]: it walks functions and fused groups and caches weights; what each op
//! computes is its definition's, `mkc_ir::interpret`), which every other level is checked
//! against, and the simulator of a scheduled task graph ([`sim`]: SM queues, event counters,
//! seeded interleavings). On the GPU (feature `cuda`, `gpu`): loading a compiled artifact
//! and launching its one persistent kernel per decode step through the CUDA driver (cudarc,
//! libcuda loaded at run time). [`compare`]: the one NaN-aware comparison of computed
//! numbers with references that every check uses. It never links MLIR, so a runtime-only
//! `mkc` stays small enough to ship to a GPU host. It does not import models
//! (`mkc-frontends`) or compile them (`mkc-driver`).

pub mod artifact;
pub mod compare;
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod image;
pub mod interp;
pub mod profile;
pub mod sim;

pub use interp::Interpreter;
pub use mkc_ir::tensor::{self, Data, Tensor};
pub use sim::Simulator;

/// Whether this build can talk to a GPU at all (the `cuda` feature).
pub const CUDA_ENABLED: bool = cfg!(feature = "cuda");
