//! `fused`: the level after fusion. A `fused.group` is one task kind of the megakernel: its
//! region holds the `tg` ops it computes, reading only the group's operands (block
//! arguments) and handing its results to `fused.yield`. Values crossing group boundaries
//! are the ones that travel through global memory.
//!
//! ```text
//! %x2 = "fused.group"(%x, %a, %wo) ({
//! ^bb0(%r: tensor<2048xf32>, %in: tensor<2048xf32>, %w: tensor<2048x2048xbf16>):
//!   %o = "tg.matmul"(%in, %w) {transpose_b = true} : (...) -> tensor<2048xf32>
//!   %s = "tg.add"(%r, %o) : (...) -> tensor<2048xf32>
//!   "fused.yield"(%s) : (tensor<2048xf32>) -> ()
//! }) {kind = "matmul_residual"} : (...) -> tensor<2048xf32>
//! ```

use crate::ir::{Body, OpId};
use crate::registry::{Arity, AttrKind, Registry, Traits};

crate::op_kinds! {
    /// Ops computed together as one task kind.
    Group = "fused.group",
    /// The results of the enclosing group.
    Yield = "fused.yield",
}

pub fn register(r: &mut Registry) {
    r.op(
        Group::NAME,
        "ops computed together as one task kind; the region reads only the operands",
    )
    .operands(Arity::ANY)
    .results(Arity::at_least(1))
    .regions(1)
    .attr("kind", AttrKind::Str)
    .traits(Traits::PURE | Traits::ISOLATED_FROM_ABOVE)
    .verify(verify_group);
    r.op(Yield::NAME, "the results of the enclosing fused.group")
        .operands(Arity::ANY)
        .traits(Traits::TERMINATOR | Traits::PURE)
        .verify(verify_yield);
}

fn verify_group(body: &Body, op: OpId) -> Result<(), String> {
    let data = &body.ops[op];
    let block = body.entry_block(op, 0).ok_or("needs a body block")?;
    let args = &body.blocks[block].args;
    if args.len() != data.operands.len() {
        return Err(format!(
            "has {} operands but its block takes {} arguments",
            data.operands.len(),
            args.len()
        ));
    }
    for (i, (&a, &v)) in args.iter().zip(&data.operands).enumerate() {
        if body.ty(a) != body.ty(v) {
            return Err(format!(
                "block argument #{i} has type {}, but operand #{i} is {}",
                body.ty(a),
                body.ty(v)
            ));
        }
    }
    match body.blocks[block].ops.last() {
        Some(&last) if body.ops[last].name == Yield::NAME => {
            let ys = &body.ops[last].operands;
            if ys.len() != data.results.len()
                || ys
                    .iter()
                    .zip(&data.results)
                    .any(|(&y, &r)| body.ty(y) != body.ty(r))
            {
                return Err("fused.yield does not match the group's results".into());
            }
            Ok(())
        }
        _ => Err("the body must end with fused.yield".into()),
    }
}

fn verify_yield(body: &Body, op: OpId) -> Result<(), String> {
    match body.parent_op(op) {
        Some(p) if body.ops[p].name == Group::NAME => Ok(()),
        _ => Err("must be directly inside a fused.group".into()),
    }
}
