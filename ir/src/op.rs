//! Op kinds as types. Each dialect declares its ops' kinds next to their definitions with
//! [`op_kinds!`](crate::op_kinds): a unit type per op whose `NAME` is its spelling, so code
//! names ops by type (`MatMul::NAME`, `RmsNorm::is(body, op)`), not by string; and
//! [`OpRef`] views an op as its kind, with the typed accessors its definition gives it
//! (`Attention::of(body, op)?.group()`), as MLIR's generated op classes do.

use crate::attr::{Attr, Attrs};
use crate::ir::{Body, OpId, ValueId};
use crate::types::TensorType;
use std::marker::PhantomData;

/// An op kind: its name, as the registry and the textual form spell it.
pub trait OpKind {
    const NAME: &'static str;
}

/// An op of kind `K` in a body.
pub struct OpRef<'a, K> {
    pub body: &'a Body,
    pub op: OpId,
    kind: PhantomData<K>,
}

impl<K> Clone for OpRef<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for OpRef<'_, K> {}

impl<'a, K: OpKind> OpRef<'a, K> {
    /// `op` as a `K`, if it is one.
    pub fn of(body: &'a Body, op: OpId) -> Option<Self> {
        (body.ops[op].name == K::NAME).then_some(OpRef {
            body,
            op,
            kind: PhantomData,
        })
    }

    pub fn attrs(&self) -> &'a Attrs {
        &self.body.ops[self.op].attrs
    }

    pub fn operand(&self, i: usize) -> ValueId {
        self.body.ops[self.op].operands[i]
    }

    pub fn result(&self, i: usize) -> ValueId {
        self.body.ops[self.op].results[i]
    }

    /// The tensor type of operand `i` (the verifier has checked the op's operand types).
    pub fn operand_type(&self, i: usize) -> Option<&'a TensorType> {
        self.body.ty(self.operand(i)).as_tensor()
    }

    pub fn result_type(&self, i: usize) -> Option<&'a TensorType> {
        self.body.ty(self.result(i)).as_tensor()
    }

    pub fn int(&self, k: &str) -> Option<i64> {
        self.attrs().get(k).and_then(Attr::as_int)
    }

    pub fn float(&self, k: &str) -> Option<f64> {
        self.attrs().get(k).and_then(Attr::as_f64)
    }

    /// A bool (or unit) attribute, false when absent.
    pub fn flag(&self, k: &str) -> bool {
        matches!(
            self.attrs().get(k),
            Some(Attr::Bool(true)) | Some(Attr::Unit)
        )
    }
}

/// Declares op kinds: `Kind = "dialect.name"` each, with its doc comment.
///
/// ```
/// mkc_ir::op_kinds! {
///     /// x * 2
///     Twice = "demo.twice",
/// }
/// assert_eq!(Twice::NAME, "demo.twice");
/// ```
#[macro_export]
macro_rules! op_kinds {
    ($( $(#[$meta:meta])* $kind:ident = $name:literal ),* $(,)?) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct $kind;

            impl $kind {
                pub const NAME: &'static str = $name;

                /// Whether `op` is one.
                pub fn is(body: &$crate::Body, op: $crate::OpId) -> bool {
                    body.ops[op].name == $name
                }

                /// `op` as one, if it is.
                pub fn of(
                    body: &$crate::Body,
                    op: $crate::OpId,
                ) -> Option<$crate::op::OpRef<'_, $kind>> {
                    $crate::op::OpRef::of(body, op)
                }
            }

            impl $crate::op::OpKind for $kind {
                const NAME: &'static str = $name;
            }
        )*
    };
}
