//! mkc-driver: the compiler as a library. It owns what turns a model into outputs at any
//! level, behind typed options: importing ([`import`]), the levels and their default
//! pipelines ([`level`]), compiling to a level and the policy of an artifact's other
//! programs ([`compile`](mod@compile)), writing artifacts ([`artifact`]) and caching them for
//! compile-on-first-run ([`artifact_cache`]), compile statistics ([`stats`]),
//! the registry of every crate's passes ([`pass_registry`]), and the commands that run what
//! was compiled: checks against references ([`check`]), decoding (a loaded model with its
//! KV cache kept across calls: [`session`]; [`run`]: greedy or sampled
//! ([`sample`]), streamed as text ([`stream`]), with the tokenizer a GGUF file carries:
//! [`gguf_tokenizer`]; a model's chat template: [`chat`]), the ONNX node suite ([`onnx_test`]),
//! the schedule's picture ([`svg`]), cost models from traces ([`tune`]) and, with the
//! `cuda` feature, timing on the GPU (`bench`). It does not own any pass, op or kernel code
//! (the level crates), nor command-line parsing (the `mkc` binary).

pub mod artifact;
pub mod artifact_cache;
#[cfg(feature = "cuda")]
pub mod bench;
pub mod chat;
pub mod check;
pub mod compile;
pub mod gguf_tokenizer;
pub mod import;
pub mod level;
pub mod onnx_test;
pub mod run;
pub mod sample;
pub mod session;
pub mod stats;
pub mod stream;
pub mod svg;
pub mod tune;

pub use compile::{compile, CompileOptions, Compiled};
pub use import::{import_model, ModelOptions};
pub use level::{Level, PipelineOptions, SplitK};

use mkc_passes::manager::RunReport;
use mkc_passes::PassRegistry;

/// Every pass mkc ships: the generic ones, fusion's, the task level's and the kernel's.
pub fn pass_registry() -> PassRegistry {
    let mut r = PassRegistry::new();
    mkc_passes::register_passes(&mut r);
    mkc_fusion::register_passes(&mut r);
    mkc_tasks::register_passes(&mut r);
    mkc_kernel::register_passes(&mut r);
    r
}

/// Runs `pipeline` over `body` with every pass mkc ships, verifying after each pass.
pub fn run_pipeline(body: &mut mkc_ir::Body, pipeline: &str) -> Result<RunReport, String> {
    mkc_passes::driver::run_pipeline(body, pipeline, &pass_registry())
}

/// The PTX of a generated kernel, for its target's chip (MLIR's NVVM pipeline, in process).
#[cfg(feature = "mlir")]
pub fn lower_to_ptx(k: &mkc_kernel::Kernel) -> Result<String, String> {
    mkc_lowering::gpu_module_to_ptx(&k.mlir, "kernel.mlir", &k.chip, k.ptx_isa)
        .map(|p| p.concat())
        .map_err(|e| e.to_string())
}

/// Without MLIR no kernel can be lowered (the runtime-only build).
#[cfg(not(feature = "mlir"))]
pub fn lower_to_ptx(_: &mkc_kernel::Kernel) -> Result<String, String> {
    Err("this mkc was built without MLIR (the runtime-only build): it cannot lower kernels to PTX; build with the default features".into())
}
