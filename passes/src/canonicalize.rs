//! `canonicalize`: folds ops with the fold hooks declared next to them (constant folding and
//! algebraic identities), moves constants to the right of commutative ops, and erases dead
//! pure ops, sweeping until nothing changes.

use crate::manager::{Pass, PassContext, PassInfo};
use crate::options::PassOptions;
use mkc_ir::attr::Attr;
use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::tg;
use mkc_ir::registry::{FoldInput, Folded, Registry, Traits};
use mkc_ir::{Body, OpId, OpSpec, Type, ValueId};

crate::pass_options! {
    /// Options of `canonicalize`.
    pub struct CanonicalizeOptions {
        /// Upper bound on the number of sweeps over the IR.
        max_iterations: u32 = 10 => "max-iterations",
    }
}

pub struct Canonicalize {
    pub options: CanonicalizeOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "canonicalize",
        summary: "fold constants, apply algebraic identities, erase dead ops",
        anchor: None,
        options: CanonicalizeOptions::describe,
        statistics: &[
            ("folded", "operations folded to a constant"),
            ("simplified", "operations replaced by an existing value"),
            (
                "reordered",
                "commutative operations with their constant moved right",
            ),
            ("erased", "dead operations erased"),
        ],
        create: |o| {
            Ok(Box::new(Canonicalize {
                options: CanonicalizeOptions::parse(o)?,
            }))
        },
    }
}

/// The constant value of `v`, when a constant-like op with a dense `value` produces it.
pub fn constant_value<'a>(body: &'a Body, registry: &Registry, v: ValueId) -> Option<&'a Attr> {
    let op = body.def_op(v)?;
    let data = &body.ops[op];
    if !registry.has_trait(&data.name, Traits::CONSTANT_LIKE) {
        return None;
    }
    data.attrs
        .get("value")
        .filter(|a| matches!(a, Attr::Dense(_)))
}

impl Pass for Canonicalize {
    fn run(&mut self, body: &mut Body, root: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let registry = cx.registry;
        for _ in 0..self.options.max_iterations.max(1) {
            let mut changed = false;
            for op in body.walk(root) {
                if !body.is_attached(op) {
                    continue;
                }
                let Some(def) = registry.get(&body.ops[op].name) else {
                    continue;
                };
                if def.traits.contains(Traits::COMMUTATIVE) && body.ops[op].operands.len() == 2 {
                    let [a, b] = [body.ops[op].operands[0], body.ops[op].operands[1]];
                    if constant_value(body, registry, a).is_some()
                        && constant_value(body, registry, b).is_none()
                    {
                        body.ops[op].operands.swap(0, 1);
                        cx.count("reordered", 1);
                        changed = true;
                    }
                }
                let Some(fold) = def.fold else { continue };
                let folded = {
                    let constants = body.ops[op]
                        .operands
                        .iter()
                        .map(|&v| constant_value(body, registry, v))
                        .collect();
                    fold(&FoldInput {
                        body,
                        op,
                        constants,
                    })
                };
                let Some(folded) = folded else { continue };
                if folded.len() != body.ops[op].results.len() || !types_match(body, op, &folded) {
                    continue; // a fold hook that disagrees with the op is ignored, not trusted
                }
                let mut kinds = (0, 0);
                for (i, f) in folded.into_iter().enumerate() {
                    let old = body.ops[op].results[i];
                    let new = match f {
                        Folded::Value(v) => {
                            kinds.1 += 1;
                            v
                        }
                        Folded::Constant(attr) => {
                            kinds.0 += 1;
                            materialize(body, op, attr, body.ty(old).clone())
                        }
                    };
                    body.replace_uses_in(root, old, new);
                }
                body.erase_op(op);
                cx.count("folded", (kinds.0 > 0) as u64);
                cx.count("simplified", (kinds.0 == 0) as u64);
                changed = true;
            }
            let erased = crate::dce::erase_dead_ops(body, root, registry);
            cx.count("erased", erased);
            if !changed && erased == 0 {
                break;
            }
        }
        Ok(())
    }
}

fn types_match(body: &Body, op: OpId, folded: &[Folded]) -> bool {
    folded
        .iter()
        .zip(&body.ops[op].results)
        .all(|(f, &r)| match f {
            Folded::Value(v) => body.ty(*v) == body.ty(r),
            Folded::Constant(Attr::Dense(d)) => Type::Tensor(d.ty.clone()) == *body.ty(r),
            Folded::Constant(_) => false,
        })
}

/// Creates `tg.constant` with the folded value right before `op`.
fn materialize(body: &mut Body, op: OpId, value: Attr, ty: Type) -> ValueId {
    let loc = body.ops[op].loc;
    let c = body.create_op(
        OpSpec::new(tg::Constant::NAME)
            .results(vec![ty])
            .attr("value", value)
            .loc(loc),
    );
    body.insert_op_before(op, c);
    body.ops[c].results[0]
}
