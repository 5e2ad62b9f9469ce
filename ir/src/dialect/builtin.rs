//! `builtin.module`, `func.func` and `func.return`: the structure every level shares.

use crate::attr::Attr;
use crate::ir::{Body, OpId, ValueId};
use crate::registry::{AttrKind, Registry, Traits};
use crate::types::Type;

crate::op_kinds! {
    /// The top-level container of functions.
    Module = "builtin.module",
    /// A function.
    Func = "func.func",
    /// Returns the function's results.
    Return = "func.return",
}

pub fn register(r: &mut Registry) {
    r.op(Module::NAME, "the top-level container of functions")
        .regions(1)
        .optional_attr("sym_name", AttrKind::Str)
        .traits(Traits::ISOLATED_FROM_ABOVE | Traits::SYMBOL_TABLE)
        .verify(verify_module);
    r.op(
        Func::NAME,
        "a function: one region whose entry block takes the arguments",
    )
    .regions(1)
    .attr("sym_name", AttrKind::Str)
    .attr("function_type", AttrKind::Type)
    .optional_attr("sym_visibility", AttrKind::Str)
    .optional_attr("arg_attrs", AttrKind::Array)
    .traits(Traits::ISOLATED_FROM_ABOVE | Traits::SYMBOL)
    .verify(verify_func);
    r.op(Return::NAME, "returns the function's results")
        .operands(crate::registry::Arity::ANY)
        .traits(Traits::TERMINATOR | Traits::PURE)
        .verify(verify_return);
}

fn verify_module(body: &Body, op: OpId) -> Result<(), String> {
    let region = body.ops[op].regions[0];
    if body.regions[region].blocks.len() != 1 {
        return Err("must have exactly one block".into());
    }
    let block = body.regions[region].blocks[0];
    if !body.blocks[block].args.is_empty() {
        return Err("block cannot have arguments".into());
    }
    if let Some(t) = body.ops[op].attrs.get(crate::target::TARGET_ATTR) {
        crate::target::Target::from_attr(t)?;
    }
    Ok(())
}

/// The function's signature, when its `function_type` attribute is a function type.
pub fn signature(body: &Body, func: OpId) -> Option<(&[Type], &[Type])> {
    match body.ops[func].attrs.get("function_type") {
        Some(Attr::Type(Type::Function(i, o))) => Some((i, o)),
        _ => None,
    }
}

/// The module's first function (the decode step or the graph an importer made).
pub fn first_func(body: &Body) -> Option<OpId> {
    body.blocks[body.module_block()]
        .ops
        .iter()
        .copied()
        .find(|&o| body.ops[o].name == Func::NAME)
}

/// A function's entry block, taken apart: its arguments, its ops in order up to the
/// terminator (the steps), and its `func.return`.
pub struct FuncBody {
    pub args: Vec<ValueId>,
    pub steps: Vec<OpId>,
    pub ret: OpId,
}

/// `func`'s [`FuncBody`]; an error when it has no body or does not end in a return.
pub fn func_body(body: &Body, func: OpId) -> Result<FuncBody, String> {
    let entry = body
        .entry_block(func, 0)
        .ok_or("the function has no body")?;
    let mut steps = body.blocks[entry].ops.clone();
    let ret = steps
        .pop()
        .filter(|&o| Return::is(body, o))
        .ok_or("the function has no return")?;
    Ok(FuncBody {
        args: body.blocks[entry].args.clone(),
        steps,
        ret,
    })
}

/// The checkpoint name of argument `i` of `func`, when it is a weight (`{mkc.weight = "..."}`).
pub fn weight_arg_name(body: &Body, func: OpId, i: usize) -> Option<&str> {
    let attrs = body.ops[func].attrs.get("arg_attrs")?.as_array()?;
    match attrs.get(i)? {
        Attr::Dict(e) => e
            .iter()
            .find(|(k, _)| k == "mkc.weight")
            .and_then(|(_, v)| v.as_str()),
        _ => None,
    }
}

fn verify_func(body: &Body, op: OpId) -> Result<(), String> {
    let Some((ins, _)) = signature(body, op) else {
        return Err("attribute 'function_type' must be a function type".into());
    };
    let Some(entry) = body.entry_block(op, 0) else {
        return Err("must have a body".into());
    };
    let args = &body.blocks[entry].args;
    if args.len() != ins.len() {
        return Err(format!(
            "has {} entry block arguments, but its type lists {} inputs",
            args.len(),
            ins.len()
        ));
    }
    for (i, (&a, t)) in args.iter().zip(ins).enumerate() {
        if body.ty(a) != t {
            return Err(format!(
                "entry block argument #{i} has type {}, but the function type says {t}",
                body.ty(a)
            ));
        }
    }
    if let Some(Attr::Array(list)) = body.ops[op].attrs.get("arg_attrs") {
        if list.len() != ins.len() || !list.iter().all(|a| matches!(a, Attr::Dict(_))) {
            return Err("'arg_attrs' must hold one dictionary per argument".into());
        }
    }
    match body.blocks[entry].ops.last() {
        Some(&last) if body.ops[last].name == Return::NAME => Ok(()),
        _ => Err("body must end with 'func.return'".into()),
    }
}

fn verify_return(body: &Body, op: OpId) -> Result<(), String> {
    let func = body
        .parent_op(op)
        .filter(|&f| body.ops[f].name == Func::NAME);
    let Some(func) = func else {
        return Err("must be directly inside a 'func.func'".into());
    };
    let Some((_, outs)) = signature(body, func) else {
        return Ok(()); // reported on the function
    };
    let operands = &body.ops[op].operands;
    if operands.len() != outs.len() {
        return Err(format!(
            "returns {} values, but the function returns {}",
            operands.len(),
            outs.len()
        ));
    }
    for (i, (&v, t)) in operands.iter().zip(outs).enumerate() {
        if body.ty(v) != t {
            return Err(format!(
                "operand #{i} has type {}, but the function returns {t}",
                body.ty(v)
            ));
        }
    }
    Ok(())
}
