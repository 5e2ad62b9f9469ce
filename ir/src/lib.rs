//! mkc-ir: the IR machinery every level of mkc shares, in the style of MLIR.
//!
//! It owns: the arena-based IR ([`ir`]), types and attributes, the textual form
//! ([`parser`], [`printer`]: MLIR syntax that `mlir-opt --allow-unregistered-dialect` parses),
//! diagnostics with source locations ([`diag`]), the dialect registry ([`registry`]), the
//! verifier ([`verify`]), the dialects (`builtin`/`func`; `tg`, the tensor level; `fused`;
//! `task`, with its graph form: tasks over byte ranges, events, schedules; `kernel`, the
//! kernel's plan), the target description ([`target`]), and ggml's block-quantized weight
//! formats ([`quant`]: layouts, dequantization and quantization, an element type of weights). Each op is defined once, in its
//! dialect's file: its kind as a type ([`op`]: `tg::MatMul::NAME`, typed accessors), its
//! signature, verifier, shape inference and folds, and the interfaces the other levels ask
//! of it: what it computes on host tensors ([`interpret`], over [`tensor`]), what a tile of
//! its result needs of its operands ([`tiling`]), and whether fusion treats it as heavy or a
//! reduction (registry traits). It does not own passes (see `mkc-passes`), importers
//! (`mkc-frontends`), the interpreter's walk over functions (`mkc-runtime`) or code
//! generation (`mkc-kernel`).

pub mod attr;
pub mod diag;
pub mod dialect;
pub mod interpret;
pub mod ir;
pub mod minifloat;
pub mod op;
pub mod parser;
pub mod printer;
pub mod quant;
pub mod registry;
pub mod target;
pub mod tensor;
pub mod tiling;
pub mod types;
pub mod verify;
pub mod weights;

pub use attr::{Attr, Attrs};
pub use cranelift_entity::EntityRef;
pub use diag::{Diagnostic, Loc, SourceMap};
pub use ir::{BlockId, Body, OpId, OpSpec, RegionId, ValueId};
pub use registry::Registry;
pub use target::{Target, TargetSpec};
pub use types::{ElemType, TensorType, Type};

/// Parses `text` (named `name` in diagnostics) and verifies it. On failure returns the
/// diagnostics rendered against `sources`, where the text has been added.
pub fn parse_and_verify(
    sources: &mut SourceMap,
    name: &str,
    text: &str,
    registry: &Registry,
    opts: verify::VerifyOptions,
) -> Result<Body, Vec<Diagnostic>> {
    let file = sources.add(name, text);
    let body = parser::parse(text, file, registry).map_err(|d| vec![d])?;
    let errors = verify::verify(&body, registry, opts);
    if errors.is_empty() {
        Ok(body)
    } else {
        Err(errors)
    }
}

/// Parses and verifies `text` (named `name` in diagnostics) against every dialect mkc
/// ships; a failure is its diagnostics rendered as `name:line:col: error: ...` lines.
pub fn parse_text(name: &str, text: &str) -> Result<Body, String> {
    let mut sources = SourceMap::new();
    let registry = Registry::with_all_dialects();
    parse_and_verify(&mut sources, name, text, &registry, Default::default())
        .map_err(|d| diag::render_all(&d, &sources).trim_end().to_string())
}

#[doc = include_str!("../../docs/ir-reference.md")]
pub mod reference {}
