//! `fuse`: decides which `tg` ops become one task kind of the megakernel.
//!
//! 1. Equality saturation (egg) with the recognition rules (`rules::recognition`) turns
//!    decomposed graphs (ONNX exports) into the high-level ops; the smallest equivalent
//!    program is extracted (see `raise`).
//! 2. Grouping: every heavy op (a matmul, attention, the embedding gather) anchors a group;
//!    the fusion rules (`rules::fusion`) say which producer -> consumer edges may live inside
//!    a group, stage by stage (prologues, horizontal merges, epilogues, the step prologue).
//!    A merge is taken when it is legal (the group graph stays acyclic; no reduction over a
//!    heavy op's whole output inside its group, except a two-phase argmax) and the cost model
//!    (`cost::CostModel`) says it is cheaper.
//! 3. Each group becomes a `fused.group` whose region holds its ops, named by its `kind`.
//!
//! Today step 2 runs on the extracted program rather than inside the e-graph; the rules and
//! the cost model are the same ones an e-graph extraction would use.

use crate::cost::CostModel;
use crate::raise::{saturate, RaiseOptions};
use crate::rules::{fusion, FusionRule, Stage};
use mkc_ir::attr::Attr;
use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::builtin;
use mkc_ir::dialect::fused;
use mkc_ir::dialect::tg;
use mkc_ir::registry::{Registry, Traits};
use mkc_ir::{Body, OpId, OpSpec, ValueId};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;
use std::collections::{HashMap, HashSet};

mkc_passes::pass_options! {
    /// Options of `fuse`.
    pub struct FuseOptions {
        /// Saturation: stop after this many iterations.
        iter_limit: usize = 12 => "iter-limit",
        /// Saturation: stop when the e-graph has this many nodes.
        node_limit: usize = 200000 => "node-limit",
        /// Saturation: stop after this many milliseconds.
        time_limit_ms: u64 = 5000 => "time-limit-ms",
        /// Cost model: penalty factor for groups that cannot fill every SM.
        unsplit_penalty: f64 = 1.0 => "unsplit-penalty",
        /// Where attention's combine of its parts runs: task (a group of its own, each tile run on the SM that finishes the last part of its heads) or prologue (in every tile of the output projection).
        combine: String = "task".to_string() => "combine",
        /// Decode attention computes the step's K row itself where that row is normalised per head (Qwen3's q/k norm), the query's norm and rope too: no group of their own between q/k/v and attention.
        k_row: bool = false => "k-row",
    }
}

pub struct Fuse {
    pub options: FuseOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "fuse",
        summary: "fuse tg ops into megakernel task kinds (equality saturation + fusion rules + cost model)",
        anchor: None,
        options: FuseOptions::describe,
        statistics: &[
            ("e-nodes", "e-graph nodes at the end of saturation"),
            ("e-classes", "e-graph classes at the end of saturation"),
            ("iterations", "saturation iterations"),
            ("rewrites", "rule applications during saturation"),
            ("fused-groups", "fused groups in the result"),
            ("k-rows", "decode attentions that take the step's K row apart from the cache (k-row)"),
            ("cost-before", "cost model, every op its own group (byte-equivalents)"),
            ("cost-after", "cost model, after fusion (byte-equivalents)"),
        ],
        create: |o| {
            let options = FuseOptions::parse(o)?;
            if !matches!(options.combine.as_str(), "task" | "prologue") {
                return Err(format!(
                    "combine must be 'task' or 'prologue', not '{}'",
                    options.combine
                ));
            }
            Ok(Box::new(Fuse { options }))
        },
    }
}

/// Ops that stream a weight or the KV cache (their definitions' `HEAVY` trait): each
/// anchors a group.
pub fn is_heavy(name: &str) -> bool {
    Registry::builtin().has_trait(name, Traits::HEAVY)
}

/// Ops that reduce over a dimension (the `REDUCTION` trait): they need all of it before
/// they can finish.
pub(crate) fn is_reduction(name: &str) -> bool {
    Registry::builtin().has_trait(name, Traits::REDUCTION)
}

/// The function as a graph of ops, with a partition into groups.
struct Partition<'a> {
    body: &'a Body,
    ops: Vec<OpId>,
    producers: Vec<Vec<usize>>,
    users: Vec<Vec<usize>>,
    group: Vec<usize>,
}

impl<'a> Partition<'a> {
    fn new(body: &'a Body, block_ops: &[OpId]) -> Self {
        // Constants are not tasks: they stay at function level and groups read them.
        let ops: Vec<OpId> = block_ops
            .iter()
            .copied()
            .filter(|&o| {
                !matches!(
                    body.ops[o].name.as_str(),
                    builtin::Return::NAME | tg::Constant::NAME
                )
            })
            .collect();
        let index: HashMap<OpId, usize> = ops.iter().enumerate().map(|(i, &o)| (o, i)).collect();
        let mut producers = vec![Vec::new(); ops.len()];
        let mut users = vec![Vec::new(); ops.len()];
        for (i, &o) in ops.iter().enumerate() {
            for &v in &body.ops[o].operands {
                if let Some(&p) = body.def_op(v).and_then(|d| index.get(&d)) {
                    if !producers[i].contains(&p) {
                        producers[i].push(p);
                        users[p].push(i);
                    }
                }
            }
        }
        let group = (0..ops.len()).collect();
        Partition {
            body,
            ops,
            producers,
            users,
            group,
        }
    }

    fn name(&self, i: usize) -> &str {
        &self.body.ops[self.ops[i]].name
    }

    fn members(&self, g: usize) -> Vec<usize> {
        (0..self.ops.len())
            .filter(|&i| self.group[i] == g)
            .collect()
    }

    /// Whether some op of `to` is reachable from `from` through an op outside both groups.
    fn path_outside(&self, from: usize, to: usize) -> bool {
        let mut stack: Vec<usize> = self
            .members(from)
            .iter()
            .flat_map(|&i| self.users[i].iter().copied())
            .filter(|&u| self.group[u] != from && self.group[u] != to)
            .collect();
        let mut seen = HashSet::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            for &u in &self.users[i] {
                if self.group[u] == to {
                    return true;
                }
                if self.group[u] != from {
                    stack.push(u);
                }
            }
        }
        false
    }

    /// Merging keeps the group graph acyclic, and no reduction in the result consumes (inside
    /// the group) the whole output of a heavy op, except argmax, which tasks do in two phases.
    fn can_merge(&self, a: usize, b: usize) -> bool {
        if a == b {
            return false;
        }
        if self.path_outside(a, b) || self.path_outside(b, a) {
            return false;
        }
        let merged: HashSet<usize> = self.members(a).into_iter().chain(self.members(b)).collect();
        for &r in &merged {
            let name = self.name(r);
            if !is_reduction(name) || name == tg::ArgMax::NAME {
                continue;
            }
            // Heavy ops feeding r inside the merged group.
            let mut stack = self.producers[r].clone();
            let mut seen = HashSet::new();
            while let Some(p) = stack.pop() {
                if !merged.contains(&p) || !seen.insert(p) {
                    continue;
                }
                if is_heavy(self.name(p)) {
                    let heavy_out = self.body.ops[self.ops[p]]
                        .results
                        .first()
                        .and_then(|&v| self.body.ty(v).as_tensor())
                        .map_or(1, |t| t.num_elements());
                    if crate::cost::reduced_extent(self.body, self.ops[r]) >= heavy_out {
                        return false;
                    }
                } else {
                    stack.extend(self.producers[p].iter().copied());
                }
            }
        }
        true
    }

    fn merge(&mut self, a: usize, b: usize) {
        let (keep, gone) = (a.min(b), a.max(b));
        for g in &mut self.group {
            if *g == gone {
                *g = keep;
            }
        }
    }

    /// The cost model's charge for group `g` alone.
    fn group_cost(&self, model: &CostModel, g: usize, outputs: &[ValueId]) -> f64 {
        let members = self.members(g);
        let mut seen = HashSet::new();
        let mut bytes_in = 0.0;
        for &i in &members {
            for &v in &self.body.ops[self.ops[i]].operands {
                let inside = self
                    .body
                    .def_op(v)
                    .is_some_and(|d| members.iter().any(|&m| self.ops[m] == d));
                if !inside && seen.insert(v) {
                    bytes_in += self.body.ty(v).byte_size() as f64;
                }
            }
        }
        let mut bytes_out = 0.0;
        for &i in &members {
            let leaves = self.users[i].iter().any(|&u| self.group[u] != g);
            for &r in &self.body.ops[self.ops[i]].results {
                if leaves || outputs.contains(&r) {
                    bytes_out += self.body.ty(r).byte_size() as f64;
                }
            }
        }
        let ops: Vec<OpId> = members.iter().map(|&i| self.ops[i]).collect();
        let par = crate::cost::group_parallelism(self.body, &ops);
        model.group(bytes_in, bytes_out, bytes_in + bytes_out, par)
    }

    fn has_heavy(&self, g: usize) -> bool {
        self.members(g).iter().any(|&i| is_heavy(self.name(i)))
    }

    /// A light group that reads a heavy group's output (work split off a heavy group).
    fn rooted(&self, g: usize) -> bool {
        !self.has_heavy(g)
            && self.members(g).iter().any(|&m| {
                self.producers[m]
                    .iter()
                    .any(|&q| self.group[q] != g && self.has_heavy(self.group[q]))
            })
    }
}

fn matches_rule(p: &Partition, rule: &FusionRule, producer: usize, consumer: usize) -> bool {
    rule.producer.contains(&p.name(producer)) && rule.consumer.contains(&p.name(consumer))
}

/// Forms the groups. Returns the group of each op and how often each rule fired.
fn partition(
    p: &mut Partition,
    model: &CostModel,
    outputs: &[ValueId],
    skip: &[&str],
) -> HashMap<&'static str, u64> {
    let mut hits: HashMap<&'static str, u64> = HashMap::new();
    let mut rules = fusion();
    rules.retain(|r| !skip.contains(&r.name));
    // Only the two groups a merge touches change cost. The SplitK stage's merges are not
    // the cost model's to refuse (`split-k` decided).
    let mut try_merge = |p: &mut Partition, a: usize, b: usize, rule: &FusionRule| {
        let (ga, gb) = (p.group[a], p.group[b]);
        if ga == gb || !p.can_merge(ga, gb) {
            return;
        }
        let before = p.group_cost(model, ga, outputs) + p.group_cost(model, gb, outputs);
        let saved = p.group.clone();
        p.merge(ga, gb);
        let decided = matches!(rule.stage, Stage::SplitK | Stage::SplitKCopy);
        if decided || p.group_cost(model, p.group[a], outputs) < before {
            *hits.entry(rule.name).or_default() += 1;
        } else {
            p.group = saved;
        }
    };
    for stage in [
        Stage::Prologue,
        Stage::Horizontal,
        Stage::Epilogue,
        Stage::SplitK,
        Stage::SplitKCopy,
        Stage::Siblings,
        Stage::StepPrologue,
    ] {
        let stage_rules: Vec<&FusionRule> = rules.iter().filter(|r| r.stage == stage).collect();
        if matches!(stage, Stage::Prologue | Stage::Epilogue) {
            // All rules of the stage together, to a fixpoint: a chain of light ops follows its
            // anchor whatever rule each link needs.
            let mut changed = true;
            while changed {
                changed = false;
                for rule in &stage_rules {
                    for c in 0..p.ops.len() {
                        for k in 0..p.producers[c].len() {
                            let pr = p.producers[c][k];
                            if p.group[pr] == p.group[c] || !matches_rule(p, rule, pr, c) {
                                continue;
                            }
                            let anchored = if stage == Stage::Epilogue {
                                // A light group the cost model kept out of its producer's
                                // (q/k's per-head norm) still gathers the chain after it.
                                !p.has_heavy(p.group[c])
                                    && (p.has_heavy(p.group[pr]) || p.rooted(p.group[pr]))
                            } else {
                                !p.has_heavy(p.group[pr])
                            };
                            if !anchored || !(rule.when)(p.body, p.ops[pr], p.ops[c]) {
                                continue;
                            }
                            let before = p.group.clone();
                            try_merge(p, pr, c, rule);
                            changed |= p.group != before;
                        }
                    }
                }
            }
            continue;
        }
        for rule in stage_rules {
            match stage {
                Stage::Prologue | Stage::Epilogue => unreachable!("handled above"),
                Stage::SplitK => {
                    for c in 0..p.ops.len() {
                        for k in 0..p.producers[c].len() {
                            let pr = p.producers[c][k];
                            if matches_rule(p, rule, pr, c)
                                && (rule.when)(p.body, p.ops[pr], p.ops[c])
                            {
                                try_merge(p, pr, c, rule);
                            }
                        }
                    }
                }
                Stage::SplitKCopy => {
                    for c in 0..p.ops.len() {
                        if rule.consumer.contains(&p.name(c))
                            && (rule.when)(p.body, p.ops[c], p.ops[c])
                            && starts_sums_only(p, c)
                        {
                            // The first other reader of the sum in a heavy group.
                            let sum = p.producers[c][0];
                            let reader = p.users[sum].iter().copied().find(|&u| {
                                u != c && p.has_heavy(p.group[u]) && p.group[u] != p.group[sum]
                            });
                            if let Some(u) = reader {
                                try_merge(p, u, c, rule);
                            }
                        }
                    }
                }
                Stage::Horizontal => {
                    // Matmuls reading the same value merge (q/k/v; gate/up).
                    for a in 0..p.ops.len() {
                        for b in a + 1..p.ops.len() {
                            if !rule.consumer.contains(&p.name(a)) || p.name(a) != p.name(b) {
                                continue;
                            }
                            let (oa, ob) = (&p.body.ops[p.ops[a]], &p.body.ops[p.ops[b]]);
                            if oa.operands[0] == ob.operands[0]
                                && (rule.when)(p.body, p.ops[a], p.ops[b])
                            {
                                try_merge(p, a, b, rule);
                            }
                        }
                    }
                }
                Stage::Siblings => {
                    // Light groups fed by one heavy group merge: one wait for both. Per light
                    // group, one of its ops and the heavy groups that feed it (found in one
                    // pass, so a large graph costs its size, not its size cubed).
                    let heavy: HashSet<usize> = (0..p.ops.len())
                        .filter(|&i| is_heavy(p.name(i)))
                        .map(|i| p.group[i])
                        .collect();
                    let mut fed: Vec<(usize, HashSet<usize>)> = Vec::new();
                    let mut slot: HashMap<usize, usize> = HashMap::new();
                    for m in 0..p.ops.len() {
                        let g = p.group[m];
                        if heavy.contains(&g) {
                            continue;
                        }
                        let k = *slot.entry(g).or_insert_with(|| {
                            fed.push((m, HashSet::new()));
                            fed.len() - 1
                        });
                        for &q in &p.producers[m] {
                            if p.group[q] != g && heavy.contains(&p.group[q]) {
                                fed[k].1.insert(p.group[q]);
                            }
                        }
                    }
                    fed.retain(|(_, f)| !f.is_empty());
                    for i in 0..fed.len() {
                        for j in i + 1..fed.len() {
                            let (a, b) = (fed[i].0, fed[j].0);
                            if p.group[a] != p.group[b] && !fed[i].1.is_disjoint(&fed[j].1) {
                                try_merge(p, a, b, rule);
                            }
                        }
                    }
                }
                Stage::StepPrologue => {
                    // Light-only groups computed from the step's inputs join the group of the
                    // embedding gather (the first task of a step).
                    let Some(embed) =
                        (0..p.ops.len()).find(|&i| rule.consumer.contains(&p.name(i)))
                    else {
                        continue;
                    };
                    // (Light groups split off a heavy group stay as they are.)
                    let mut light: Vec<usize> = (0..p.ops.len())
                        .filter(|&i| !p.has_heavy(p.group[i]) && !p.rooted(p.group[i]))
                        .collect();
                    // Connected light ops first become one cluster each.
                    for &i in &light.clone() {
                        for &u in &p.users[i].clone() {
                            if !p.has_heavy(p.group[u])
                                && !p.rooted(p.group[u])
                                && p.group[u] != p.group[i]
                                && p.can_merge(p.group[i], p.group[u])
                            {
                                p.merge(p.group[i], p.group[u]);
                            }
                        }
                    }
                    light.retain(|&i| !p.has_heavy(p.group[i]));
                    for i in light {
                        let reads_inputs_only = p
                            .members(p.group[i])
                            .iter()
                            .all(|&m| p.producers[m].iter().all(|&q| p.group[q] == p.group[i]));
                        if reads_inputs_only && rule.producer.contains(&p.name(i)) {
                            try_merge(p, embed, i, rule);
                        }
                    }
                }
            }
        }
    }
    hits
}

/// Whether every user of op `c`'s result takes it as the initial value of a `tg.matmul_acc`
/// (its third operand) only.
fn starts_sums_only(p: &Partition, c: usize) -> bool {
    let y = p.body.ops[p.ops[c]].results[0];
    !p.users[c].is_empty()
        && p.users[c].iter().all(|&u| {
            let d = &p.body.ops[p.ops[u]];
            d.name == tg::MatMulAcc::NAME && d.operands[2] == y && !d.operands[..2].contains(&y)
        })
}

/// A name for a group from what it holds.
fn kind(body: &Body, ops: &[OpId]) -> &'static str {
    let has = |n: &str| ops.iter().any(|&o| body.ops[o].name == n);
    if has(tg::Attention::NAME) || has(tg::AttentionPartial::NAME) || has(tg::Sdpa::NAME) {
        "attention"
    } else if has(tg::MatMulAcc::NAME) {
        if has(tg::AttentionCombine::NAME) {
            "attention_combine_proj"
        } else if has(tg::MatMul::NAME) {
            "mlp"
        } else {
            "proj_accumulate"
        }
    } else if has(tg::MatMul::NAME) {
        if has(tg::Silu::NAME) {
            "mlp_gate_up"
        } else if has(tg::Rope::NAME) || has(tg::KvAppend::NAME) {
            "qkv_rope"
        } else if has(tg::ArgMax::NAME) || !has(tg::Add::NAME) {
            "lm_head"
        } else {
            "proj_residual"
        }
    } else if has(tg::AttentionCombine::NAME) {
        "attention_combine"
    } else if has(tg::Gather::NAME) {
        "embed"
    } else if has(tg::Rope::NAME) {
        "rope"
    } else if has(tg::ArgMaxPartial::NAME) {
        "argmax"
    } else if has(tg::ArgMaxCombine::NAME) {
        "argmax_combine"
    } else {
        "elementwise"
    }
}

/// Whether group `a` depends on group `b`, directly or through others.
fn depends_on(deps: &[HashSet<usize>], a: usize, b: usize) -> bool {
    let mut stack = vec![a];
    let mut seen = HashSet::new();
    while let Some(g) = stack.pop() {
        if g == b {
            return true;
        }
        if seen.insert(g) {
            stack.extend(deps[g].iter().copied());
        }
    }
    false
}

/// Replaces the function's body by one `fused.group` per group, in dependency order.
fn rebuild(body: &mut Body, func: OpId, ops: &[OpId], group: &[usize]) -> Result<usize, String> {
    let block = body.entry_block(func, 0).ok_or("function without a body")?;
    let ret = *body.blocks[block].ops.last().ok_or("empty function")?;
    let mut groups: Vec<Vec<OpId>> = Vec::new();
    let mut gid: HashMap<usize, usize> = HashMap::new();
    for (i, &o) in ops.iter().enumerate() {
        let g = *gid.entry(group[i]).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(o);
    }
    let group_of: HashMap<OpId, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, m)| m.iter().map(move |&o| (o, g)))
        .collect();
    // Topological order of groups (Kahn).
    let n = groups.len();
    let mut deps: Vec<HashSet<usize>> = vec![HashSet::new(); n];
    for (g, members) in groups.iter().enumerate() {
        for &o in members {
            for &v in &body.ops[o].operands {
                if let Some(&h) = body.def_op(v).and_then(|d| group_of.get(&d)) {
                    if h != g {
                        deps[g].insert(h);
                    }
                }
            }
        }
    }
    // A group that updates a KV cache in place comes after the other groups that read the
    // cache's old value (`k-row`'s attention), unless that would make a cycle.
    for (g, members) in groups.iter().enumerate() {
        for &o in members {
            if body.ops[o].name != tg::KvAppend::NAME {
                continue;
            }
            let cache = body.ops[o].operands[0];
            for (h, others) in groups.iter().enumerate() {
                let reads = others
                    .iter()
                    .any(|&x| x != o && body.ops[x].operands.contains(&cache));
                if h != g && reads && !depends_on(&deps, h, g) {
                    deps[g].insert(h);
                }
            }
        }
    }
    let mut order = Vec::new();
    let mut done = vec![false; n];
    while order.len() < n {
        let next = (0..n)
            .find(|&g| !done[g] && deps[g].iter().all(|&d| done[d]))
            .ok_or("fusion made a cycle between groups (a bug)")?;
        done[next] = true;
        order.push(next);
    }
    let constants: Vec<OpId> = body.blocks[block]
        .ops
        .iter()
        .copied()
        .filter(|&o| body.ops[o].name == tg::Constant::NAME)
        .collect();
    for o in body.blocks[block].ops.clone() {
        body.erase_op(o);
    }
    for c in constants {
        body.append_op(block, c);
    }
    let mut outer: HashMap<ValueId, ValueId> = HashMap::new();
    let uses_outside = |body: &Body, v: ValueId, g: usize| {
        body.ops[ret].operands.contains(&v)
            || ops
                .iter()
                .any(|&o| group_of[&o] != g && body.ops[o].operands.contains(&v))
    };
    for g in order {
        let members = &groups[g];
        let inside: HashSet<ValueId> = members
            .iter()
            .flat_map(|&o| body.ops[o].results.iter().copied())
            .collect();
        let mut operands: Vec<ValueId> = Vec::new();
        for &o in members {
            for &v in &body.ops[o].operands {
                if !inside.contains(&v) && !operands.contains(&v) {
                    operands.push(v);
                }
            }
        }
        let results: Vec<ValueId> = members
            .iter()
            .flat_map(|&o| body.ops[o].results.clone())
            .filter(|&v| uses_outside(body, v, g))
            .collect();
        let kind = kind(body, members);
        let outer_operands: Vec<ValueId> = operands
            .iter()
            .map(|v| *outer.get(v).unwrap_or(v))
            .collect();
        let result_types = results
            .iter()
            .map(|&v| body.ty(v).clone())
            .collect::<Vec<_>>();
        let group_op = body.build(
            block,
            OpSpec::new(fused::Group::NAME)
                .operands(outer_operands)
                .results(result_types)
                .regions(1)
                .attr("kind", Attr::Str(kind.into())),
        );
        let region = body.ops[group_op].regions[0];
        let arg_types: Vec<_> = operands.iter().map(|&v| body.ty(v).clone()).collect();
        let inner_block = body.append_block(region, &arg_types);
        let args = body.blocks[inner_block].args.clone();
        let arg_of: HashMap<ValueId, ValueId> = operands.iter().copied().zip(args).collect();
        for &o in members {
            for v in body.ops[o].operands.iter_mut() {
                if let Some(&a) = arg_of.get(v) {
                    *v = a;
                }
            }
            body.append_op(inner_block, o);
        }
        body.build(
            inner_block,
            OpSpec::new(fused::Yield::NAME).operands(results.clone()),
        );
        for (i, &r) in results.iter().enumerate() {
            outer.insert(r, body.ops[group_op].results[i]);
        }
    }
    for v in body.ops[ret].operands.iter_mut() {
        if let Some(&o) = outer.get(v) {
            *v = o;
        }
    }
    body.append_op(block, ret);
    Ok(n)
}

impl Pass for Fuse {
    fn run(&mut self, body: &mut Body, op: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let o = &self.options;
        let sat = RaiseOptions {
            iter_limit: o.iter_limit,
            node_limit: o.node_limit,
            time_limit_ms: o.time_limit_ms,
            rules: String::new(),
        };
        saturate(body, op, crate::rules::recognition(), &sat, cx)?;
        mkc_passes::dce::erase_dead_ops(body, op, cx.registry);
        let target = mkc_ir::Target::of(body)
            .map_err(|e| Diagnostic::error(body.ops[op].loc, format!("fuse: {e}")))?;
        let model = CostModel::for_target(&target, o.unsplit_penalty);
        let funcs = crate::egraph::functions(body, op);
        for func in funcs {
            let loc = body.ops[func].loc;
            let block = body
                .entry_block(func, 0)
                .ok_or_else(|| Diagnostic::error(loc, "function without a body"))?;
            let block_ops = body.blocks[block].ops.clone();
            if block_ops.iter().any(|&o| !body.ops[o].regions.is_empty()) {
                return Err(Diagnostic::error(
                    loc,
                    "fuse: the function is already fused",
                ));
            }
            if o.k_row {
                let n = crate::k_row::take_k_rows(body, &block_ops);
                cx.count("k-rows", n);
            }
            let block_ops = body.blocks[block].ops.clone();
            let outputs = block_ops
                .last()
                .map(|&r| body.ops[r].operands.clone())
                .unwrap_or_default();
            let (ops, group, hits, before, after) = {
                let mut p = Partition::new(body, &block_ops);
                let before = model.program(body, &p.ops, &p.group, &outputs);
                let mut skip: Vec<&str> = Vec::new();
                if o.combine != "prologue" {
                    skip.push("combine-prologue");
                }
                if !o.k_row {
                    skip.push("attention-prologue");
                }
                let hits = partition(&mut p, &model, &outputs, &skip);
                let after = model.program(body, &p.ops, &p.group, &outputs);
                (p.ops.clone(), p.group.clone(), hits, before, after)
            };
            for (rule, n) in hits {
                cx.count(&format!("fusion:{rule}"), n);
            }
            cx.count("cost-before", before as u64);
            cx.count("cost-after", after as u64);
            let n = rebuild(body, func, &ops, &group).map_err(|e| Diagnostic::error(loc, e))?;
            cx.count("fused-groups", n as u64);
        }
        Ok(())
    }
}
