//! `dce`: removes operations that have no side effects and whose results are unused.

use crate::manager::{Pass, PassContext, PassInfo};
use crate::options::PassOptions;
use mkc_ir::diag::Diagnostic;
use mkc_ir::registry::{Registry, Traits};
use mkc_ir::{Body, OpId};

crate::pass_options! {
    /// `dce` takes no options.
    pub struct DceOptions {}
}

pub struct Dce;

pub fn info() -> PassInfo {
    PassInfo {
        name: "dce",
        summary: "erase pure operations whose results are unused",
        anchor: None,
        options: DceOptions::describe,
        statistics: &[("erased", "operations erased")],
        create: |o| {
            DceOptions::parse(o)?;
            Ok(Box::new(Dce))
        },
    }
}

impl Pass for Dce {
    fn run(&mut self, body: &mut Body, op: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let n = erase_dead_ops(body, op, cx.registry);
        cx.count("erased", n);
        Ok(())
    }
}

/// Whether an op may be erased once its results are unused.
pub fn is_removable(registry: &Registry, name: &str) -> bool {
    registry
        .get(name)
        .is_some_and(|d| d.traits.contains(Traits::PURE) && !d.traits.contains(Traits::TERMINATOR))
}

/// Erases dead pure ops nested under `root`; returns how many were erased.
pub fn erase_dead_ops(body: &mut Body, root: OpId, registry: &Registry) -> u64 {
    let mut uses = body.use_counts(root);
    let mut erased = 0;
    // Reverse pre-order visits users before the values they use, so one sweep removes chains.
    for op in body.walk(root).into_iter().rev() {
        if !body.is_attached(op) || !is_removable(registry, &body.ops[op].name) {
            continue;
        }
        if body.ops[op].results.iter().any(|&r| uses[r] > 0) {
            continue;
        }
        for o in std::iter::once(op).chain(body.walk(op)) {
            for &v in &body.ops[o].operands {
                uses[v] -= 1;
            }
        }
        body.erase_op(op);
        erased += 1;
    }
    erased
}
