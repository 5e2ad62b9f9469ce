//! mkc-passes: the pass manager and the passes that work on any level of mkc's IR.
//!
//! It owns: pipeline strings in MLIR's grammar ([`pipeline`]), typed pass options
//! ([`options`]), the pass manager with verification after each pass and instrumentation
//! ([`manager`]: IR printing, timing, statistics), the generic passes (`canonicalize`, `cse`,
//! `dce`), and the `mkc opt` driver ([`driver`]). It does not own IR data structures
//! (`mkc-ir`) or level-specific lowering passes (they register into a [`PassRegistry`]).

pub mod canonicalize;
pub mod cost;
pub mod cse;
pub mod dce;
pub mod driver;
pub mod egraph;
pub mod fuse;
pub mod manager;
pub mod memplan;
pub mod options;
pub mod pipeline;
pub mod raise;
pub mod rules;
pub mod schedule;
pub mod split_attention;
pub mod tile;
pub mod traffic;

#[cfg(test)]
mod testing {
    /// Parses and verifies IR text; a failure renders its diagnostics.
    pub fn parse(src: &str) -> mkc_ir::Body {
        let mut sources = mkc_ir::SourceMap::new();
        let registry = mkc_ir::Registry::with_all_dialects();
        mkc_ir::parse_and_verify(&mut sources, "t.mlir", src, &registry, Default::default())
            .unwrap_or_else(|d| panic!("{}", mkc_ir::diag::render_all(&d, &sources)))
    }
}

pub use manager::{Instrumentation, Pass, PassContext, PassInfo, PassManager, PassRegistry};

#[doc = include_str!("../../docs/writing-a-pass.md")]
pub mod walkthrough {}

#[doc = include_str!("../../docs/writing-a-fusion-rule.md")]
pub mod fusion_walkthrough {}
