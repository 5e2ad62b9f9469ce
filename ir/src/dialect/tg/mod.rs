//! `tg`: the tensor-graph dialect, the `tensor` level of mkc. (It is spelled `tg` because
//! MLIR's own `tensor` dialect owns that namespace in `mlir-opt`, which rejects unknown ops
//! of a registered dialect.)
//!
//! Each op is defined once, in the file of its family: its kind (`op_kinds!`: `tg::MatMul`,
//! ...), syntax, verifier, shape inference, folding, and the interfaces the other levels ask
//! of it: its meaning on host tensors (`interpret`, or `scalar` for elementwise ops), what a
//! tile of its result needs of its operands (`tile`), whether fusion anchors a group at it
//! or it reduces an axis (the `HEAVY` and `REDUCTION` traits).
//!
//! Conventions: shapes are static; axes in attributes are non-negative (importers normalise
//! negative ONNX axes); ops whose result type cannot be inferred from operands and attributes
//! (reshape, expand, cast, iota) take it from the declared result type and verify it.

pub mod attention;
pub mod elementwise;
pub mod linalg;
pub mod norm;
pub mod reduce;
pub mod shape;

use crate::attr::{Attr, Attrs};
use crate::registry::Registry;
use crate::types::{TensorType, Type};

pub use attention::*;
pub use elementwise::*;
pub use linalg::*;
pub use norm::*;
pub use reduce::*;
pub use shape::*;

pub fn register(r: &mut Registry) {
    elementwise::register(r);
    shape::register(r);
    linalg::register(r);
    reduce::register(r);
    norm::register(r);
    attention::register(r);
}

/// Operand `i` as a tensor, or the error every op reports.
pub(crate) fn tensor_operand(t: &Type, i: usize) -> Result<&TensorType, String> {
    t.as_tensor()
        .ok_or_else(|| format!("operand #{i} must be a tensor, but is {t}"))
}

pub(crate) fn int_attr(attrs: &Attrs, name: &str) -> Result<i64, String> {
    match attrs.get(name) {
        Some(Attr::Int(v, _)) => Ok(*v),
        _ => Err(format!("requires integer attribute '{name}'")),
    }
}

pub(crate) fn f64_attr(attrs: &Attrs, name: &str) -> Result<f64, String> {
    attrs
        .get(name)
        .and_then(Attr::as_f64)
        .ok_or_else(|| format!("requires float attribute '{name}'"))
}

pub(crate) fn bool_attr(attrs: &Attrs, name: &str, default: bool) -> bool {
    match attrs.get(name) {
        Some(Attr::Bool(b)) => *b,
        _ => default,
    }
}

pub(crate) fn ints_attr(attrs: &Attrs, name: &str) -> Result<Vec<i64>, String> {
    match attrs.get(name) {
        Some(Attr::Array(items)) => items
            .iter()
            .map(|a| {
                a.as_int()
                    .ok_or_else(|| format!("'{name}' must hold integers"))
            })
            .collect(),
        _ => Err(format!("requires integer array attribute '{name}'")),
    }
}

/// An array attribute of i64 integers.
pub fn ints(values: &[i64]) -> Attr {
    Attr::Array(
        values
            .iter()
            .map(|&v| Attr::Int(v, crate::types::ElemType::I64))
            .collect(),
    )
}

/// Checks `0 <= axis < rank`.
pub(crate) fn check_axis(axis: i64, rank: usize, what: &str) -> Result<usize, String> {
    if axis < 0 || axis as usize >= rank.max(1) || (rank == 0) {
        return Err(format!("{what} {axis} is out of range for rank {rank}"));
    }
    Ok(axis as usize)
}
