//! `split-k`: a residual add of a product, `r + x @ wᵀ`, becomes `tg.matmul_acc(x, w, r)`, a
//! sum that tasks add their parts onto in any order, so that the product needs no phase of
//! its own. Which products (`SplitKOptions`):
//!
//! - `attention`: x is attention's output reshaped (a layer's output projection). `fuse`
//!   puts the product in attention's group, or with attention in parts the combine's, and
//!   `tile` cuts the group along K: each task adds the part of its heads' lanes.
//! - `mlp` (the pass's default, as `--split-k` alone): x is computed from another product
//!   by elementwise ops (an MLP's down projection, `r + down(silu(gate(h)) * up(h))`).
//!   `fuse` puts it in the group that computes x (the gate/up tiles): each task computes its
//!   slice of x and adds its part.
//!
//! The tasks that computed `r` also write it into the sum (its initial value). With both
//! options a layer's sums form a chain: the down projection's sum is onto the output
//! projection's (whose adders then add onto both), and the next layer's output projection
//! starts from a copy of it (`tg.cast` to its own type), which `fuse` gives to the tasks
//! that read the layer's input anyway (its q/k/v): three phases a layer.
//!
//! Only f32, f16 and bf16 weights of rank 2 read transposed (`tile` stores them [K, N], so
//! that a slice of K is one span) and vector inputs; with `blocks`, also block weights
//! multiplied by the rounded input (`act_q8`, which `int8-activations` sets on Q8_0, Q4_0
//! and Q4_1 products and the sum keeps; `tile` stores them K-block-major). The rest (exact
//! block products) stays as it is.

use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::tg;
use mkc_ir::registry::Registry;
use mkc_ir::{Body, ElemType, OpId, OpSpec, ValueId};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;

mkc_passes::pass_options! {
    /// Options of `split-k`.
    pub struct SplitKOptions {
        /// Elementwise ops between the product and the other product that computes its input, at most.
        depth: usize = 3 => "depth",
        /// Products of vectors computed from another product (an MLP's down projection).
        mlp: bool = true => "mlp",
        /// Products of attention's output (the output projection): attention's tasks add their part.
        attention: bool = false => "attention",
        /// Also products of block weights by the input rounded to 8 bits (act_q8).
        blocks: bool = false => "blocks",
    }
}

pub struct SplitK {
    pub options: SplitKOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "split-k",
        summary: "residual adds of products (a layer's output projection, or its MLP's down projection) as sums that the tasks before them add their parts onto (tg.matmul_acc)",
        anchor: None,
        options: SplitKOptions::describe,
        statistics: &[("rewritten", "adds of products rewritten to tg.matmul_acc")],
        create: |o| {
            Ok(Box::new(SplitK {
                options: SplitKOptions::parse(o)?,
            }))
        },
    }
}

impl Pass for SplitK {
    fn run(&mut self, body: &mut Body, root: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let mut n = 0;
        // (Each rewrite erases a product used once, by its add: other counts stay right.)
        let uses = body.use_counts(root);
        for op in body.walk(root) {
            if body.ops[op].name == tg::Add::NAME && rewrite(body, op, &self.options, |v| uses[v]) {
                n += 1;
            }
        }
        cx.count("rewritten", n);
        Ok(())
    }
}

/// Whether `v` is a split-K sum (a `tg.matmul_acc`'s result).
fn is_sum(body: &Body, v: ValueId) -> bool {
    body.def_op(v)
        .is_some_and(|o| body.ops[o].name == tg::MatMulAcc::NAME)
}

/// Whether `v` is a weight: an argument of the function (not a value computed in the step).
fn is_argument(body: &Body, v: ValueId) -> bool {
    body.def_op(v).is_none()
}

impl SplitKOptions {
    /// Whether the products of `v` are the options' to rewrite: attention's output (whole, or
    /// its parts' combine) reshaped to a vector, or one computed from a `tg.matmul`'s result.
    fn takes(&self, body: &Body, v: ValueId) -> bool {
        let Some(d) = body.def_op(v) else {
            return false;
        };
        let data = &body.ops[d];
        if data.name == tg::Reshape::NAME {
            let Some(a) = body.def_op(data.operands[0]) else {
                return false;
            };
            let name = &body.ops[a].name;
            return self.attention
                && (name == tg::Attention::NAME || name == tg::AttentionCombine::NAME);
        }
        self.mlp && computed_by_product(body, v, self.depth)
    }
}

/// Whether `v` is computed from a `tg.matmul`'s result by at most `depth` elementwise ops.
fn computed_by_product(body: &Body, v: ValueId, depth: usize) -> bool {
    let Some(d) = body.def_op(v) else {
        return false;
    };
    let data = &body.ops[d];
    if data.name == tg::MatMul::NAME {
        return true;
    }
    let elementwise = Registry::builtin()
        .get(&data.name)
        .is_some_and(|def| def.scalar.is_some());
    depth > 0
        && elementwise
        && data
            .operands
            .iter()
            .any(|&o| computed_by_product(body, o, depth - 1))
}

/// `add(r, matmul(h, w))` (either order) -> `matmul_acc(h, w, r)`, when the product is a
/// float weight read transposed by a vector the options take ([`SplitKOptions::takes`]),
/// used only by this add, `r` has the result's type and is not itself such a sum.
fn rewrite(body: &mut Body, add: OpId, o: &SplitKOptions, uses: impl Fn(ValueId) -> u32) -> bool {
    let d = body.ops[add].clone();
    for (m, r) in [(0, 1), (1, 0)] {
        let (pv, r) = (d.operands[m], d.operands[r]);
        let Some(p) = body.def_op(pv) else { continue };
        let pd = body.ops[p].clone();
        let flag = |name: &str| matches!(pd.attrs.get(name), Some(mkc_ir::attr::Attr::Bool(true)));
        let act_q8 = flag("act_q8");
        if pd.name != tg::MatMul::NAME || !flag("transpose_b") || uses(pv) != 1 {
            continue;
        }
        let (h, w) = (pd.operands[0], pd.operands[1]);
        let weight = body.ty(w).as_tensor().is_some_and(|t| {
            t.rank() == 2
                && match t.elem {
                    ElemType::F32 | ElemType::F16 | ElemType::BF16 => !act_q8,
                    ElemType::Block(_) => o.blocks && act_q8,
                    _ => false,
                }
        });
        let vector = body.ty(h).as_tensor().is_some_and(|t| t.rank() == 1);
        if !weight || !vector || !is_argument(body, w) || !o.takes(body, h) {
            continue;
        }
        if body.ty(r) != body.ty(d.results[0]) || body.ty(pv) != body.ty(d.results[0]) {
            continue;
        }
        // A sum onto another sum starts from the inner one's initial value, and the inner
        // one's adders add onto both (`mkc_ir::tiling::accumulates_onto`); one level deep: a
        // sum onto a sum onto a sum starts from a copy of it instead, which the tasks that
        // read it (a layer's norm) write once it is complete.
        let r = if is_sum(body, r)
            && body
                .def_op(r)
                .is_some_and(|o| is_sum(body, body.ops[o].operands[2]))
        {
            let copy = body.create_op(
                OpSpec::new(tg::Cast::NAME)
                    .operands(vec![r])
                    .results(vec![body.ty(r).clone()])
                    .loc(d.loc),
            );
            body.insert_op_before(add, copy);
            body.ops[copy].results[0]
        } else {
            r
        };
        let mut spec = OpSpec::new(tg::MatMulAcc::NAME)
            .operands(vec![h, w, r])
            .results(vec![body.ty(d.results[0]).clone()])
            .loc(d.loc);
        if act_q8 {
            spec = spec.attr("act_q8", mkc_ir::attr::Attr::Bool(true));
        }
        let acc = body.create_op(spec);
        body.insert_op_before(add, acc);
        body.replace_all_uses(d.results[0], body.ops[acc].results[0]);
        body.erase_op(add);
        body.erase_op(p);
        return true;
    }
    false
}
