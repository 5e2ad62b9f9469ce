//! What an op computes, on host tensors: the interface ops implement for the reference
//! interpreter (`OpDef::interpret`, or `OpDef::scalar` for elementwise ops, which
//! [`eval_op`] broadcasts). The interpreter itself (walking functions and fused groups,
//! weights, caches) is `mkc-runtime`'s.

use crate::attr::{Attr, Attrs};
use crate::dialect::tg::elementwise::{broadcast_source, Scalar};
use crate::ir::{Body, OpId};
use crate::registry::Registry;
use crate::tensor::Tensor;
use crate::tiling::{flat_runs, Region};
use crate::types::{TensorType, Type};
use std::rc::Rc;

/// Loads a weight by name, typed as the op that refers to it says.
pub type WeightFn<'a> = dyn FnMut(&str, &TensorType) -> Result<Rc<Tensor>, String> + 'a;

/// What an op's interpretation sees: the op, its operands' values, and the weights.
pub struct Eval<'a> {
    pub body: &'a Body,
    pub op: OpId,
    pub args: &'a [Rc<Tensor>],
    pub weight: &'a mut WeightFn<'a>,
    /// The elements of the (single) result the caller reads, as boxes; `None`: all of it.
    /// An op may then compute only those and leave every other element poison (NaN, or 0
    /// for integers): the simulator runs one task's tile of an op this way.
    pub only: Option<&'a Region>,
}

impl Eval<'_> {
    pub fn attrs(&self) -> &Attrs {
        &self.body.ops[self.op].attrs
    }

    /// The type of result `i` (a tensor).
    pub fn out_ty(&self, i: usize) -> Result<TensorType, String> {
        let r = self.body.ops[self.op]
            .results
            .get(i)
            .ok_or_else(|| format!("no result #{i}"))?;
        match self.body.ty(*r) {
            Type::Tensor(t) => Ok(t.clone()),
            t => Err(format!("the interpreter handles tensors only, not {t}")),
        }
    }

    /// The types of every result.
    pub fn out_types(&self) -> Result<Vec<TensorType>, String> {
        (0..self.body.ops[self.op].results.len())
            .map(|i| self.out_ty(i))
            .collect()
    }

    pub fn int(&self, k: &str) -> Result<i64, String> {
        self.attrs()
            .get(k)
            .and_then(Attr::as_int)
            .ok_or(format!("missing '{k}'"))
    }

    pub fn float(&self, k: &str) -> Result<f64, String> {
        self.attrs()
            .get(k)
            .and_then(Attr::as_f64)
            .ok_or(format!("missing '{k}'"))
    }

    /// A bool attribute, `d` when absent.
    pub fn flag(&self, k: &str, d: bool) -> bool {
        match self.attrs().get(k) {
            Some(Attr::Bool(b)) => *b,
            _ => d,
        }
    }

    pub fn ints(&self, k: &str) -> Result<Vec<i64>, String> {
        self.attrs()
            .get(k)
            .and_then(Attr::as_array)
            .map(|a| a.iter().filter_map(Attr::as_int).collect())
            .ok_or(format!("missing '{k}'"))
    }

    pub fn arg(&self, i: usize) -> &Tensor {
        &self.args[i]
    }
}

/// Evaluates one op on its operands' values, as its definition says.
pub fn eval_op(e: &mut Eval) -> Result<Vec<Tensor>, String> {
    let name = e.body.ops[e.op].name.as_str();
    let def = Registry::builtin()
        .get(name)
        .ok_or_else(|| format!("the interpreter cannot run '{name}'"))?;
    if let Some(f) = def.interpret {
        return f(e);
    }
    let f = def
        .scalar
        .ok_or_else(|| format!("the interpreter cannot run '{name}'"))?;
    elementwise(e, f(e.attrs()))
}

/// An elementwise op: its scalar function on every element, operands broadcast (numpy).
fn elementwise(
    e: &Eval,
    f: crate::dialect::tg::elementwise::ScalarFn,
) -> Result<Vec<Tensor>, String> {
    let ty = e.out_ty(0)?;
    let args = e.args;
    let mut scratch = vec![Scalar::I(0); args.len()];
    let mut failed = false;
    let t = from_fn_in(ty.clone(), e.only, |i| {
        for (s, a) in scratch.iter_mut().zip(args) {
            *s = a.get(broadcast_source(i, &ty.shape, &a.ty.shape));
        }
        f(&scratch).unwrap_or_else(|| {
            failed = true;
            Scalar::I(0)
        })
    });
    if failed {
        return Err("undefined result (integer division by zero?)".into());
    }
    Ok(vec![t])
}

/// [`Tensor::from_fn`] over the boxes `only` of `ty` (every element when `None`): every
/// other element is poison ([`Tensor::poison`]), and `f` is not called for it.
pub fn from_fn_in(
    ty: TensorType,
    only: Option<&Region>,
    mut f: impl FnMut(usize) -> Scalar,
) -> Tensor {
    let Some(boxes) = only else {
        return Tensor::from_fn(ty, f);
    };
    let mut t = Tensor::poison(ty);
    for b in boxes {
        for (lo, hi) in flat_runs(&t.ty.shape, b) {
            for i in lo as usize..hi as usize {
                t.set(i, f(i));
            }
        }
    }
    t
}

/// Row-major strides of `shape`, in elements.
pub fn strides(shape: &[i64]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1] as usize;
    }
    s
}

/// The multi-index of flat index `i` of `shape`, and back.
pub fn unflatten(mut i: usize, shape: &[i64]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        let n = shape[d] as usize;
        idx[d] = i % n.max(1);
        i /= n.max(1);
    }
    idx
}

pub fn flatten(idx: &[usize], shape: &[i64]) -> usize {
    idx.iter()
        .zip(shape)
        .fold(0, |acc, (&c, &n)| acc * n as usize + c)
}

/// (product of dims before, dim, product of dims after).
pub fn split_at_axis(shape: &[i64], axis: usize) -> (usize, usize, usize) {
    let p = |s: &[i64]| s.iter().product::<i64>() as usize;
    (
        p(&shape[..axis]),
        shape[axis] as usize,
        p(&shape[axis + 1..]),
    )
}

/// The row of a KV cache [ctx, ...] the position `pos` (a scalar) names.
pub fn cache_row(cache: &Tensor, pos: &Tensor) -> Result<usize, String> {
    let (pos, ctx) = (pos.get(0).i(), cache.ty.shape[0]);
    if pos < 0 || pos >= ctx {
        return Err(format!(
            "position {pos} is outside the cache (context {ctx})"
        ));
    }
    Ok(pos as usize)
}
