//! `cse`: merges identical pure operations (same name, operands, attributes and result
//! types) when the first dominates the second.

use crate::manager::{Pass, PassContext, PassInfo};
use crate::options::PassOptions;
use mkc_ir::diag::Diagnostic;
use mkc_ir::registry::Traits;
use mkc_ir::{Attrs, BlockId, Body, OpId, Type, ValueId};
use std::collections::HashMap;

crate::pass_options! {
    /// `cse` takes no options.
    pub struct CseOptions {}
}

pub struct Cse;

pub fn info() -> PassInfo {
    PassInfo {
        name: "cse",
        summary: "eliminate common subexpressions (identical pure ops)",
        anchor: None,
        options: CseOptions::describe,
        statistics: &[(
            "eliminated",
            "operations replaced by an earlier identical one",
        )],
        create: |o| {
            CseOptions::parse(o)?;
            Ok(Box::new(Cse))
        },
    }
}

#[derive(PartialEq, Eq, Hash)]
struct Key {
    name: String,
    operands: Vec<ValueId>,
    attrs: Attrs,
    types: Vec<Type>,
}

impl Pass for Cse {
    fn run(&mut self, body: &mut Body, op: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let mut scopes: Vec<HashMap<Key, OpId>> = Vec::new();
        let mut eliminated = 0;
        let regions = body.ops[op].regions.clone();
        for r in regions {
            for b in body.regions[r].blocks.clone() {
                cse_block(body, op, b, &mut scopes, cx, &mut eliminated);
            }
        }
        cx.count("eliminated", eliminated);
        Ok(())
    }
}

/// Processes a block with the tables of its enclosing blocks visible (they dominate it).
fn cse_block(
    body: &mut Body,
    root: OpId,
    block: BlockId,
    scopes: &mut Vec<HashMap<Key, OpId>>,
    cx: &PassContext,
    eliminated: &mut u64,
) {
    scopes.push(HashMap::new());
    for op in body.blocks[block].ops.clone() {
        let data = &body.ops[op];
        let def = cx.registry.get(&data.name);
        let eligible = data.regions.is_empty()
            && !data.results.is_empty()
            && def.is_some_and(|d| d.traits.contains(Traits::PURE));
        if eligible {
            let mut operands = data.operands.clone();
            if def.is_some_and(|d| d.traits.contains(Traits::COMMUTATIVE)) {
                operands.sort();
            }
            let key = Key {
                name: data.name.clone(),
                operands,
                attrs: data.attrs.clone(),
                types: data.results.iter().map(|&r| body.ty(r).clone()).collect(),
            };
            let existing = scopes.iter().rev().find_map(|s| s.get(&key)).copied();
            match existing {
                Some(prev) => {
                    let pairs: Vec<_> = body.ops[op]
                        .results
                        .iter()
                        .copied()
                        .zip(body.ops[prev].results.iter().copied())
                        .collect();
                    for (old, new) in pairs {
                        body.replace_uses_in(root, old, new);
                    }
                    body.erase_op(op);
                    *eliminated += 1;
                    continue;
                }
                None => {
                    scopes.last_mut().expect("pushed above").insert(key, op);
                }
            }
        }
        // Nested regions: an isolated op sees nothing from outside.
        let isolated = cx
            .registry
            .has_trait(&body.ops[op].name, Traits::ISOLATED_FROM_ABOVE);
        let mut fresh = Vec::new();
        let inner_scopes = if isolated { &mut fresh } else { &mut *scopes };
        for r in body.ops[op].regions.clone() {
            for b in body.regions[r].blocks.clone() {
                cse_block(body, root, b, inner_scopes, cx, eliminated);
            }
        }
    }
    scopes.pop();
}
