//! `raise`: recognises high-level ops in decomposed graphs by equality saturation. The
//! function becomes an e-graph, the recognition rules (`rules::recognition`: rms_norm from
//! the pow/mean/rsqrt chain, silu from x*sigmoid(x), rope from rotate-half, with the
//! commutativity that exposes them) saturate it, and the smallest equivalent program is
//! extracted. ONNX exports come out with the ops the Hugging Face importer writes directly.

use crate::egraph::{rebuild, rewrites, to_egraph, TgNode};
use mkc_ir::diag::Diagnostic;
use mkc_ir::{Body, OpId};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;
use std::sync::Arc;
use std::time::Duration;

mkc_passes::pass_options! {
    /// Options of `raise`.
    pub struct RaiseOptions {
        /// Stop saturating after this many iterations.
        iter_limit: usize = 12 => "iter-limit",
        /// Stop when the e-graph has this many nodes.
        node_limit: usize = 200000 => "node-limit",
        /// Stop after this many milliseconds.
        time_limit_ms: u64 = 5000 => "time-limit-ms",
        /// Only these rules (comma-separated names); empty: all of them.
        rules: String = String::new() => "rules",
    }
}

pub struct Raise {
    pub options: RaiseOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "raise",
        summary: "recognise high-level ops (rms_norm, silu, rope) by equality saturation",
        anchor: None,
        options: RaiseOptions::describe,
        statistics: &[
            ("e-nodes", "e-graph nodes at the end of saturation"),
            ("e-classes", "e-graph classes at the end of saturation"),
            ("iterations", "saturation iterations"),
            ("rewrites", "rule applications"),
            ("ops-before", "ops in the function before"),
            ("ops-after", "ops in the function after"),
        ],
        create: |o| {
            Ok(Box::new(Raise {
                options: RaiseOptions::parse(o)?,
            }))
        },
    }
}

/// AST size, the extraction cost: fewer, higher-level ops win.
struct OpCount;

impl egg::CostFunction<TgNode> for OpCount {
    type Cost = usize;
    fn cost<C: FnMut(egg::Id) -> usize>(&mut self, enode: &TgNode, mut costs: C) -> usize {
        let own = usize::from(enode.op.as_str() != "arg");
        enode
            .children
            .iter()
            .fold(own, |acc, &c| acc.saturating_add(costs(c)))
    }
}

/// Saturates every function under `op` with `rules` and extracts the smallest program;
/// shared by `raise` and `fuse`. Counts e-nodes, e-classes, iterations, rewrites and per-rule
/// hits (`rule:NAME`), and notes why saturation stopped.
pub fn saturate(
    body: &mut Body,
    op: OpId,
    rules: Vec<crate::egraph::Rule>,
    opts: &RaiseOptions,
    cx: &mut PassContext,
) -> Result<(), Diagnostic> {
    let funcs = crate::egraph::functions(body, op);
    let mut chosen = rules;
    if !opts.rules.is_empty() {
        let wanted: Vec<&str> = opts.rules.split(',').map(str::trim).collect();
        let known: Vec<&str> = chosen.iter().map(|r| r.name).collect();
        if let Some(bad) = wanted.iter().find(|w| !known.contains(w)) {
            return Err(Diagnostic::error(
                body.ops[op].loc,
                format!("unknown rule '{bad}'; rules: {}", known.join(", ")),
            ));
        }
        chosen.retain(|r| wanted.contains(&r.name));
    }
    let registry = Arc::new(cx.registry.clone());
    let rules = rewrites(&chosen, registry);
    for func in funcs {
        let loc = body.ops[func].loc;
        let err = |e: String| Diagnostic::error(loc, e);
        let before = body.walk(func).len();
        let conv = to_egraph(body, func).map_err(err)?;
        let runner = egg::Runner::default()
            .with_egraph(conv.egraph)
            .with_iter_limit(opts.iter_limit)
            .with_node_limit(opts.node_limit)
            .with_time_limit(Duration::from_millis(opts.time_limit_ms))
            .run(&rules);
        for it in &runner.iterations {
            for (rule, n) in &it.applied {
                cx.count(&format!("rule:{rule}"), *n as u64);
                cx.count("rewrites", *n as u64);
            }
        }
        cx.count("e-nodes", runner.egraph.total_number_of_nodes() as u64);
        cx.count("e-classes", runner.egraph.number_of_classes() as u64);
        cx.count("iterations", runner.iterations.len() as u64);
        let reason = match &runner.stop_reason {
            Some(egg::StopReason::Saturated) => "saturated".to_string(),
            Some(egg::StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
            Some(egg::StopReason::NodeLimit(n)) => format!("node limit ({n})"),
            Some(egg::StopReason::TimeLimit(t)) => format!("time limit ({t:.3} s)"),
            Some(egg::StopReason::Other(o)) => o.clone(),
            None => "not run".to_string(),
        };
        cx.note("stop-reason", reason);
        let root = runner.egraph.find(conv.root);
        let (_, expr) = egg::Extractor::new(&runner.egraph, OpCount).find_best(root);
        rebuild(body, func, &expr, &runner.egraph.analysis.infos).map_err(err)?;
        cx.count("ops-before", before as u64);
        cx.count("ops-after", body.walk(func).len() as u64);
    }
    Ok(())
}

impl Pass for Raise {
    fn run(&mut self, body: &mut Body, op: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        saturate(body, op, crate::rules::recognition(), &self.options, cx)
    }
}
