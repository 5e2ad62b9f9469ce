//! mkc-passes: the pass manager and the passes that work on any level of mkc's IR.
//!
//! It owns: pipeline strings in MLIR's grammar ([`pipeline`]), typed pass options
//! ([`options`]), the pass manager with verification after each pass and instrumentation
//! ([`manager`]: IR printing, timing, statistics), the generic passes (`canonicalize`, `cse`,
//! `dce`; `attach-target`, which sets the module's target description), and the `opt`
//! driver ([`driver`]: parse, verify, run a pipeline, print). It does not own IR data
//! structures (`mkc-ir`) or the passes of a level (`mkc-fusion`,
//! `mkc-tasks`, `mkc-kernel`): each of those crates registers its own into a
//! [`PassRegistry`].

pub mod attach_target;
pub mod canonicalize;
pub mod cse;
pub mod dce;
pub mod driver;
pub mod manager;
pub mod options;
pub mod pipeline;

pub use manager::{Instrumentation, Pass, PassContext, PassInfo, PassManager, PassRegistry};

/// Registers this crate's passes: `attach-target`, `canonicalize`, `cse`, `dce`.
pub fn register_passes(r: &mut PassRegistry) {
    r.register(attach_target::info());
    r.register(canonicalize::info());
    r.register(cse::info());
    r.register(dce::info());
}

#[doc = include_str!("../../docs/writing-a-pass.md")]
pub mod walkthrough {}
