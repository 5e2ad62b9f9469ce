//! A task code: the slice of the tasks that share it, op by op, over the boxes and at the
//! offsets of the task's record; and what varies between those tasks (its parameters).

use crate::gen::*;
use crate::matvec::Preload;
use crate::ops::*;
use crate::scratch::*;
use mkc_ir::dialect::builtin;
use mkc_ir::dialect::fused;
use mkc_ir::dialect::kernel::{Choice, CodePlan, MatvecPath, TraceMark};
use mkc_ir::dialect::task::{Task, TaskId, TaskProgram};
use mkc_ir::dialect::tg;
use mkc_ir::tiling::{group_signature, result_in_place, slice, Region, Slice, SplitKSums};
use mkc_ir::{Body, EntityRef, OpId, ValueId};
use std::collections::HashMap;
use std::fmt::Write;

/// A group's structure, independent of which layer it is: its operand types, and per op
/// its name, attributes, operands (numbered locally) and result types. Tasks of groups with
/// one structure, one result and one shape of regions share their code.
/// Everything a task's code needs that varies between tasks sharing it: the byte offsets of
/// the tensors it reads and writes, and the boxes it computes (in the order the code reads
/// them), with the key of its code.
pub(crate) struct TaskPlan {
    pub(crate) key: String,
    pub(crate) offsets: Vec<u64>,
    pub(crate) boxes: Vec<i64>,
}

/// The slice of a task and the order of its parameters.
pub(crate) fn plan_task(
    body: &Body,
    steps: &[OpId],
    signatures: &[String],
    placed: &HashMap<ValueId, (usize, u64)>,
    sums: &SplitKSums,
    task: &mkc_ir::dialect::task::Task,
) -> Result<TaskPlan, String> {
    let group = steps[task.group];
    let sl = slice(body, group, task.output, &task.tile)?;
    let block = body.entry_block(group, 0).expect("a group has a body");
    let operands = &body.ops[group].operands;
    let results = &body.ops[group].results;
    let ops = &body.blocks[block].ops;
    let y = body.ops[*ops.last().expect("a yield")].operands[task.output];
    let in_place = result_in_place(body, group, task.output);
    let mut key = format!("{}#out{}#", signatures[task.group], task.output);
    let mut offsets = Vec::new();
    let place = |v: ValueId| {
        placed
            .get(&v)
            .copied()
            .ok_or_else(|| format!("internal error: {v} has no place"))
    };
    for &i in &sl.args {
        let (b, o) = place(operands[i])?;
        let _ = write!(key, "a{i}@{b},");
        offsets.push(o);
    }
    for &(v, j) in &sl.loaded {
        let (b, o) = place(results[j])?;
        let _ = write!(
            key,
            "l{}:{j}@{b},",
            ops.iter()
                .position(|&x| body.def_op(v) == Some(x))
                .unwrap_or(0)
        );
        offsets.push(o);
    }
    let (b, o) = place(results[task.output])?;
    let _ = write!(key, "out@{b}#");
    offsets.push(o);
    // The tile written again as split-K sums' initial value.
    let mirrors = sums.mirrors_of(results[task.output]);
    for &m in mirrors {
        let (b, o) = place(m)?;
        let _ = write!(key, "mirror@{b}#");
        offsets.push(o);
    }
    // The task's part of a sum added onto the sums onto it too.
    for &m in sums.onto_of(results[task.output]) {
        let (b, o) = place(m)?;
        let _ = write!(key, "onto@{b}#");
        offsets.push(o);
    }
    let mut boxes = Vec::new();
    let mut push_region = |key: &mut String, r: &Region| {
        let _ = write!(key, "{},", r.len());
        for b in r {
            for &(lo, hi) in b {
                boxes.extend([lo, hi]);
            }
        }
    };
    // Products of one input row, with their boxes: a product whose boxes are an earlier
    // one's says so in the key, so every task sharing a code may run the two in one loop.
    let mut products: Vec<(ValueId, usize, Region)> = Vec::new();
    for &op in &sl.ops {
        if in_place && body.ops[op].results.contains(&y) {
            continue;
        }
        let _ = write!(key, "op{},", ops.iter().position(|&x| x == op).unwrap_or(0));
        let need = merged_need(body, &sl, op);
        if body.ops[op].name == tg::MatMul::NAME {
            let input = body.ops[op].operands[0];
            if let Some((_, at, _)) = products.iter().find(|(v, _, r)| *v == input && *r == need) {
                let _ = write!(key, "~{at}");
            }
            products.push((input, products.len(), need.clone()));
        }
        // Attention's scratch holds its boxes' rows only (`emit_attention`): tasks whose
        // boxes differ in size get codes of their own.
        if matches!(
            body.ops[op].name.as_str(),
            tg::Attention::NAME | tg::AttentionPartial::NAME
        ) {
            for b in &need {
                for &(lo, hi) in b {
                    let _ = write!(key, "x{}", hi - lo);
                }
            }
        }
        push_region(&mut key, &need);
    }
    push_region(&mut key, &task.tile);
    if direct_output(body, &sl, group, task, !mirrors.is_empty()).is_some() {
        key.push_str("#direct");
    }
    Ok(TaskPlan {
        key,
        offsets,
        boxes,
    })
}

/// Tasks with one key share one code, numbered in order of their first task: per code its
/// first task, and per task its code and plan.
fn number_codes(plans: Vec<TaskPlan>) -> (Vec<TaskId>, Vec<(usize, TaskPlan)>) {
    let mut first: Vec<TaskId> = Vec::new();
    let mut code_of: HashMap<String, usize> = HashMap::new();
    let tasks = plans
        .into_iter()
        .enumerate()
        .map(|(t, plan)| {
            let c = *code_of.entry(plan.key.clone()).or_insert_with(|| {
                first.push(TaskId::new(t));
                first.len() - 1
            });
            (c, plan)
        })
        .collect();
    (first, tasks)
}

/// The tasks' plans, each key extended by the task's extents on the axes where its code's
/// tasks differ (`uniform`'s `None`s), so that tasks of one code and one set of extents
/// share a key.
fn split_ragged(tasks: Vec<(usize, TaskPlan)>, uniform: &[Vec<Option<i64>>]) -> Vec<TaskPlan> {
    tasks
        .into_iter()
        .map(|(c, mut plan)| {
            for (axis, e) in uniform[c].iter().enumerate() {
                if e.is_none() {
                    let (lo, hi) = (plan.boxes[2 * axis], plan.boxes[2 * axis + 1]);
                    let _ = write!(plan.key, "#x{}", hi - lo);
                }
            }
            plan
        })
        .collect()
}

/// Per code, per box axis of its tasks' parameters (`TaskPlan::boxes`, bound pairs): the
/// largest extent over the code's tasks, and the extent where all of them have the same.
fn box_extents(
    tasks: &[(usize, TaskPlan)],
    codes: usize,
) -> (Vec<Vec<i64>>, Vec<Vec<Option<i64>>>) {
    let mut largest: Vec<Vec<i64>> = vec![Vec::new(); codes];
    let mut uniform: Vec<Vec<Option<i64>>> = vec![Vec::new(); codes];
    for (c, plan) in tasks {
        let ext: Vec<i64> = plan.boxes.chunks(2).map(|b| b[1] - b[0]).collect();
        let (m, u) = (&mut largest[*c], &mut uniform[*c]);
        if m.is_empty() {
            *u = ext.iter().map(|&e| Some(e)).collect();
            *m = ext;
        } else {
            for ((a, same), b) in m.iter_mut().zip(u.iter_mut()).zip(ext) {
                *a = (*a).max(b);
                if *same != Some(b) {
                    *same = None;
                }
            }
        }
    }
    (largest, uniform)
}

pub(crate) fn merged_need(body: &Body, sl: &mkc_ir::tiling::Slice, op: OpId) -> Region {
    let mut need: Region = Vec::new();
    for r in &body.ops[op].results {
        for b in sl.needs.get(r).cloned().unwrap_or_default() {
            mkc_ir::tiling::add_box(&mut need, b);
        }
    }
    need
}

/// The codes of a scheduled program: which tasks share one, and what varies between them.
pub(crate) struct Codes {
    /// The step function's top-level ops (what `Task::group` numbers).
    pub(crate) steps: Vec<OpId>,
    pub(crate) buffers: Vec<String>,
    /// Per buffer: whether a task of the step writes it.
    pub(crate) written: Vec<bool>,
    /// Where every argument and top-level result lives (buffer, byte offset), and its
    /// strides.
    pub(crate) placed: HashMap<ValueId, (usize, u64)>,
    pub(crate) strides: HashMap<ValueId, Vec<u64>>,
    /// Per task: its code and its parameters.
    pub(crate) tasks: Vec<(usize, TaskPlan)>,
    /// Per code: the first task (in program order) that runs it, and each box's largest
    /// extent per axis over its tasks (a value windowed to its box has room for any of them).
    pub(crate) first: Vec<TaskId>,
    pub(crate) largest: Vec<Vec<i64>>,
    /// Per code, per box axis of its parameters: the extent, where every task of the code
    /// has the same one.
    pub(crate) uniform: Vec<Vec<Option<i64>>>,
    pub(crate) sums: SplitKSums,
}

impl Codes {
    /// Plans every task; tasks with one key share one code, numbered in order of their first
    /// task. (A group's structure is worked out once, not per task.) With `split`, the tasks
    /// of a key whose box extents differ get a code for each set of them.
    pub(crate) fn of(body: &Body, program: &TaskProgram, split: bool) -> Result<Codes, String> {
        let func =
            mkc_ir::dialect::builtin::first_func(body).ok_or("the module has no function")?;
        let steps = builtin::func_body(body, func)?.steps;
        let buffers: Vec<String> = program
            .graph
            .buffers
            .values()
            .map(|b| b.name.clone())
            .collect();
        let mut written = vec![false; buffers.len()];
        for (_, task) in &program.graph.tasks {
            for r in &task.writes {
                written[r.buffer.index()] = true;
            }
        }
        let mut placed = HashMap::new();
        let mut strides = HashMap::new();
        for (v, l) in program.layouts(body)? {
            placed.insert(v, (l.buffer.index(), l.offset));
            strides.insert(v, l.strides());
        }
        // Each group's structure as a small number (groups of one structure share it), so a
        // task's key stays short.
        let mut structures: HashMap<String, usize> = HashMap::new();
        let signatures: Vec<String> = steps
            .iter()
            .map(|&op| {
                let sig = if body.ops[op].name == fused::Group::NAME {
                    group_signature(body, op)
                } else {
                    String::new()
                };
                let n = structures.len();
                format!("s{}", structures.entry(sig).or_insert(n))
            })
            .collect();
        let sums = SplitKSums::of(body, &steps);
        let mut plans = Vec::with_capacity(program.graph.tasks.len());
        for (_, task) in &program.graph.tasks {
            plans.push(plan_task(body, &steps, &signatures, &placed, &sums, task)?);
        }
        let (mut first, mut tasks) = number_codes(plans);
        let (mut largest, mut uniform) = box_extents(&tasks, first.len());
        if split && uniform.iter().any(|u| u.contains(&None)) {
            (first, tasks) = number_codes(split_ragged(tasks, &uniform));
            (largest, uniform) = box_extents(&tasks, first.len());
        }
        Ok(Codes {
            sums,
            steps,
            buffers,
            written,
            placed,
            strides,
            tasks,
            first,
            largest,
            uniform,
        })
    }

    /// The view of a placed value (an argument or a group result) at the byte offset
    /// `offset` (an SSA value; the plan, which needs no text, gives none).
    pub(crate) fn placed_view(&self, body: &Body, v: ValueId, offset: String) -> View {
        let (b, _) = self.placed[&v];
        let t = body.ty(v).as_tensor().expect("placed values are tensors");
        View {
            base_aligned: self.buffers[b] != "inputs",
            base: format!("%b{b}"),
            offset,
            shape: t.shape.clone(),
            strides: self.strides[&v].clone(),
            elem: mkc_ir::dialect::task::storage_elem(&self.buffers[b], t.elem),
            space: 1,
        }
    }

    /// The structure of code `c`, from its first task.
    pub(crate) fn shape<'a>(
        &self,
        body: &'a Body,
        program: &'a TaskProgram,
        c: usize,
    ) -> Result<CodeShape<'a>, String> {
        let task = &program.graph.tasks[self.first[c]];
        let group = self.steps[task.group];
        let sl = slice(body, group, task.output, &task.tile)?;
        let block = body.entry_block(group, 0).expect("a group has a body");
        let y = body.ops[*body.blocks[block].ops.last().expect("a yield")].operands[task.output];
        let in_place = result_in_place(body, group, task.output);
        let ops: Vec<OpId> = sl
            .ops
            .iter()
            .copied()
            .filter(|op| !(in_place && body.ops[*op].results.contains(&y)))
            .collect();
        let result = body.ops[group].results[task.output];
        let mirrors = self.sums.mirrors_of(result).to_vec();
        let onto = self.sums.onto_of(result).to_vec();
        let direct = direct_output(body, &sl, group, task, !mirrors.is_empty());
        // Where each op's boxes start in the code's largest extents (per axis).
        let mut at = 0usize;
        let mut extents = Vec::new();
        let mut largest = Vec::new();
        for &op in &ops {
            let need = merged_need(body, &sl, op);
            largest.push(
                need.iter()
                    .map(|b| {
                        let e = self.largest[c]
                            .get(at..at + b.len())
                            .unwrap_or_default()
                            .to_vec();
                        at += b.len();
                        e
                    })
                    .collect(),
            );
            extents.push(need);
        }
        Ok(CodeShape {
            body,
            task_id: self.first[c],
            task,
            group,
            sl,
            ops,
            y,
            in_place,
            direct,
            mirrors,
            onto,
            extents,
            largest,
        })
    }
}

/// One code's structure: its first task's slice, the ops it renders, and their boxes.
pub(crate) struct CodeShape<'a> {
    pub(crate) body: &'a Body,
    /// The code's first task.
    pub(crate) task_id: TaskId,
    pub(crate) task: &'a Task,
    pub(crate) group: OpId,
    pub(crate) sl: Slice,
    /// The slice's ops, but an in-place cache update (the tile's write does it).
    pub(crate) ops: Vec<OpId>,
    /// The group's yielded value of the task's output.
    pub(crate) y: ValueId,
    pub(crate) in_place: bool,
    /// The op that stores straight to the tile, if any.
    pub(crate) direct: Option<OpId>,
    /// Where the tile is written again (split-K sums' initial value).
    pub(crate) mirrors: Vec<ValueId>,
    /// The sums the task's split-K part is added onto besides its output (sums onto it).
    pub(crate) onto: Vec<ValueId>,
    /// Per op: the boxes the first task needs of its results, and each box's largest
    /// extent per axis over the code's tasks.
    pub(crate) extents: Vec<Region>,
    pub(crate) largest: Vec<Vec<Vec<i64>>>,
}

impl CodeShape<'_> {
    /// The op's position in its group's body.
    pub(crate) fn index_of(&self, op: OpId) -> usize {
        let block = self
            .body
            .entry_block(self.group, 0)
            .expect("a group has a body");
        self.body.blocks[block]
            .ops
            .iter()
            .position(|&x| x == op)
            .unwrap_or(0)
    }
}

/// The code of the tasks like `shape`'s first: its slice, op by op, as `plan` says, over the
/// boxes and at the offsets the task's parameters give.
pub(crate) fn emit_code(
    g: &mut Gen,
    codes: &Codes,
    shape: &CodeShape,
    plan: &CodePlan,
    params: &str,
    wait: &dyn Fn(&mut Gen),
) -> Result<(), String> {
    let r = emit_code_ops(g, codes, shape, plan, params, wait);
    // (The scalars loaded before the wait, and the bounds of constant extents, are values
    // of this code's region only.)
    g.early.clear();
    g.fixed_extents.clear();
    r
}

/// [`emit_code`]'s ops, the wait among them.
fn emit_code_ops(
    g: &mut Gen,
    codes: &Codes,
    shape: &CodeShape,
    plan: &CodePlan,
    params: &str,
    wait: &dyn Fn(&mut Gen),
) -> Result<(), String> {
    let body = shape.body;
    let group = shape.group;
    let block = body.entry_block(group, 0).expect("a group has a body");
    let bargs = &body.blocks[block].args;
    let operands = &body.ops[group].operands;
    let results = &body.ops[group].results;
    let sl = &shape.sl;
    if plan.ops.len() > shape.ops.len() {
        return Err("the kernel plan names more ops than the code has".into());
    }
    // Parameters are words of the task's record in shared memory, taken in order.
    let next = std::cell::Cell::new(0i64);
    let word = || {
        let i = next.get();
        next.set(i + 1);
        i
    };
    let param = |g: &mut Gen| {
        let i = g.i64c(word());
        let p = g.op(format!(
            "llvm.getelementptr {params}[{i}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<3> -> i64"))
    };
    let mut cx = TaskCx {
        body,
        views: HashMap::new(),
        direct: None,
        onto: Vec::new(),
        extents: Vec::new(),
        largest: Vec::new(),
        rounded: HashMap::new(),
    };
    // The step's read-only scalars (its position) are loaded now, before the wait: the
    // wait's acquire empties L1, so a load after it is a round trip to L2, and attention's
    // addresses all depend on the position. Loads of them later give these values (until
    // `emit_code` clears them as the code ends).
    for &i in &sl.args {
        let offset = param(g);
        let view = codes.placed_view(body, operands[i], offset);
        if g.early_inputs && view.shape.is_empty() && !codes.written[codes.placed[&operands[i]].0] {
            let v = g.load(&view, &[])?;
            g.early
                .push((view.base.clone(), view.offset.clone(), view.elem, v));
        }
        cx.views.insert(bargs[i], view);
    }
    for &(v, j) in &sl.loaded {
        let offset = param(g);
        cx.views
            .insert(v, codes.placed_view(body, results[j], offset));
    }
    let offset = param(g);
    let out = codes.placed_view(body, results[shape.task.output], offset);
    let mut mirrors = Vec::new();
    for &m in &shape.mirrors {
        let offset = param(g);
        mirrors.push(codes.placed_view(body, m, offset));
    }
    for &m in &shape.onto {
        let offset = param(g);
        cx.onto.push(codes.placed_view(body, m, offset));
    }
    // A box's upper bound, where every task of the code has the same extent on its axis and
    // the plan says so, is its lower bound plus that constant: index arithmetic then divides
    // by constants (the record's word is not read).
    let uniform: &[Option<i64>] = if g.constant_extents {
        &codes.uniform[codes.tasks[shape.task_id.index()].0]
    } else {
        &[]
    };
    let mut axis = 0usize;
    let mut read_region = |g: &mut Gen, r: &Region| -> Vec<RBox> {
        r.iter()
            .map(|b| {
                b.iter()
                    .map(|_| {
                        let lo = param(g);
                        let hi = match uniform.get(axis).copied().flatten() {
                            Some(e) => {
                                word();
                                let ec = g.i64c(e);
                                let hi = g.op(format!("arith.addi {lo}, {ec} : i64"));
                                g.fixed_extents.push((hi.clone(), lo.clone(), e));
                                hi
                            }
                            None => param(g),
                        };
                        axis += 1;
                        (lo, hi)
                    })
                    .collect()
            })
            .collect()
    };
    if shape.direct.is_some() {
        cx.direct = Some((shape.y, out.clone()));
    }
    let ops = &shape.ops;
    // The task waits on its events here; the first blocks of its matrix-vector products
    // the plan preloads are loaded before (the boxes of the ops up to the last of them are
    // words of the record, already in shared memory): block-quantized pieces of the first
    // product held in registers, or the first blocks of each bf16 product's first row a
    // warp copied into the shared-memory preload buffer, each product its own slots.
    let mut needs: Vec<Vec<RBox>> = Vec::new();
    g.preload = Vec::new();
    // (A split-K part's copies: `None` for the path.)
    let preloaded: Vec<(usize, usize, Option<MatvecPath>)> = plan
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p.choice {
            Choice::Matvec { preload, path, .. } if preload > 0 => {
                Some((i, preload as usize, Some(path)))
            }
            Choice::SplitK { preload } if preload > 0 => Some((i, preload as usize, None)),
            _ => None,
        })
        .collect();
    // Copies into the shared-memory buffer (bf16 rows) are waited for before the first
    // product that reads them.
    let mut copied = None;
    let mut slot0 = 0;
    for &(p, blocks, path) in &preloaded {
        for &op in &ops[needs.len()..=p] {
            needs.push(read_region(g, &merged_need(body, sl, op)));
        }
        let w = cx.view(body.ops[ops[p]].operands[1])?.clone();
        let Some(path) = path else {
            let n = crate::gen::shape_of(body, body.ops[ops[p]].results[0])[0];
            if let Some(pre) = g.emit_split_k_preload(ops[p], &w, &needs[p], n, slot0, blocks) {
                copied.get_or_insert(p);
                slot0 += blocks;
                g.preload.push(pre);
            }
            continue;
        };
        if matches!(path, MatvecPath::Blocks | MatvecPath::Dp4a) {
            let held =
                g.emit_block_preload(&w, &needs[p], path == MatvecPath::Dp4a, blocks as i64)?;
            g.preload.push(Preload {
                op: ops[p],
                slot0: 0,
                blocks,
                held,
            });
        } else if let Some(pre) = g.emit_preload(ops[p], &w, &needs[p], slot0, blocks) {
            copied.get_or_insert(p);
            slot0 += blocks;
            g.preload.push(pre);
        }
    }
    wait(g);
    if g.prefetch_light_inputs {
        prefetch_light_inputs(g, &cx, body, ops);
    }
    let mut needs = needs.into_iter();
    for (i, (&op, op_plan)) in ops.iter().zip(&plan.ops).enumerate() {
        let need = match needs.next() {
            Some(n) => n,
            None => read_region(g, &merged_need(body, sl, op)),
        };
        if copied == Some(i) {
            // Every thread, whether its warp reads its copies or not: none is left in
            // flight to land after the next task's.
            g.preload_wait();
        }
        let with = match op_plan.choice {
            Choice::Matvec { with: Some(w), .. } => Some(w as usize),
            _ => None,
        };
        if with.is_some_and(|w| w < op_plan.index) {
            // Computed in the loop of the product it names, its result in place already.
            crate::megakernel::trace_mark(g, TraceMark::AfterOp(i as u32));
            continue;
        }
        let paired = match with {
            Some(w) => Some(
                paired(g, &mut cx, shape, plan, (i, w), &need)
                    .map_err(|e| format!("'{}': {e}", body.ops[op].name))?,
            ),
            None => None,
        };
        cx.extents = shape.extents[i].clone();
        cx.largest = shape.largest[i].clone();
        emit_op(g, &mut cx, op, &need, op_plan, paired)
            .map_err(|e| format!("'{}': {e}", body.ops[op].name))?;
        if shape.direct == Some(op) {
            // The tile is written; the barrier after the task orders it.
            crate::megakernel::trace_mark(g, TraceMark::AfterOp(i as u32));
            return Ok(());
        }
        g.barrier();
        crate::megakernel::trace_mark(g, TraceMark::AfterOp(i as u32));
    }
    let tile = read_region(g, &shape.task.tile);
    write_tile(g, &cx, shape, &out, &tile)?;
    for m in &mirrors {
        write_tile(g, &cx, shape, m, &tile)?;
    }
    Ok(())
}

/// The product with body index `w` of the code, run in the loop of the code's op `i`: its
/// weight, and its result placed over `need` (the first's boxes, which must be its own: the
/// task keys mark products whose boxes are an earlier one's, so what holds for the code's
/// first task holds for all).
fn paired(
    g: &mut Gen,
    cx: &mut TaskCx,
    shape: &CodeShape,
    plan: &CodePlan,
    (i, w): (usize, usize),
    need: &[RBox],
) -> Result<Paired, String> {
    let body = shape.body;
    let j =
        plan.ops.iter().position(|p| p.index == w).ok_or_else(|| {
            format!("the plan pairs it with op #{w}, which the code does not have")
        })?;
    let op = shape.ops[j];
    if body.ops[op].operands[0] != body.ops[shape.ops[i]].operands[0]
        || shape.extents[j] != shape.extents[i]
    {
        return Err(format!(
            "the plan pairs it with op #{w}, which reads another row or computes other boxes"
        ));
    }
    let r = body.ops[op].results[0];
    cx.extents = shape.extents[j].clone();
    cx.largest = shape.largest[j].clone();
    let res = cx.place_result(
        g,
        &plan.ops[j].result,
        &shape_of(body, r),
        elem_of(body, r),
        need,
    )?;
    Ok(Paired {
        op,
        w: cx.view(body.ops[op].operands[1])?.clone(),
        res,
    })
}

/// Writes the tile: the row of the step's position of a cache updated in place, or the
/// tile's boxes of the value the slice computed.
fn write_tile(
    g: &mut Gen,
    cx: &TaskCx,
    shape: &CodeShape,
    out: &View,
    tile: &[RBox],
) -> Result<(), String> {
    let body = shape.body;
    if shape.in_place {
        let ka = body
            .def_op(shape.y)
            .expect("in place results are kv_append");
        let new = cx.view(body.ops[ka].operands[1])?.clone();
        let pos = cx.view(body.ops[ka].operands[2])?.clone();
        let p = g.load(&pos, &[])?;
        let rows: Vec<RBox> = tile.iter().map(|b| b[1..].to_vec()).collect();
        g.for_region(&rows, &mut |g, o| {
            let x = g.load(&new, o)?;
            let mut i = vec![p.clone()];
            i.extend(o.iter().cloned());
            g.store(out, &i, &x)
        })
    } else {
        let src = cx.view(shape.y)?.clone();
        g.for_region(tile, &mut |g, o| {
            let x = g.load(&src, o)?;
            g.store(out, o, &x)
        })
    }
}

/// The op that may store a task's output straight to its place instead of to scratch (saving
/// a copy and a barrier): the output is not updated in place, and it is the first result of
/// the slice's last op, which computes exactly the tile; and the tile is not `mirrored`
/// (written again as a split-K sum's initial value, from scratch). (A value stored narrower
/// than its type, an f32 KV cache kept as bf16, is rounded by the store itself.)
pub(crate) fn direct_output(
    body: &Body,
    sl: &mkc_ir::tiling::Slice,
    group: OpId,
    task: &mkc_ir::dialect::task::Task,
    mirrored: bool,
) -> Option<OpId> {
    if mirrored || result_in_place(body, group, task.output) {
        return None;
    }
    let block = body.entry_block(group, 0)?;
    let y = body.ops[*body.blocks[block].ops.last()?].operands[task.output];
    let op = body.def_op(y)?;
    if sl.ops.last() != Some(&op) || body.ops[op].results.first() != Some(&y) {
        return None;
    }
    let mut need = merged_need(body, sl, op);
    let mut tile = task.tile.clone();
    need.sort();
    tile.sort();
    (need == tile).then_some(op)
}

/// Small inputs in global memory (at most [`LIGHT_INPUT_BYTES`]) of the light ops after a
/// code's first (norms, rope), asked into L1 right after the wait, a thread a 128-byte line:
/// their loads then hit L1 instead of each waiting its round trip to L2 after the op
/// before (`KernelConfig::prefetch_light_inputs`). Whole tensors: lines other tasks still
/// write are asked for too, and never read.
fn prefetch_light_inputs(g: &mut Gen, cx: &TaskCx, body: &Body, ops: &[OpId]) {
    let mut seen = std::collections::HashSet::new();
    // (The first op that computes, after any reshapes, loads its inputs at once anyway.)
    let first = ops
        .iter()
        .position(|&o| body.ops[o].name != tg::Reshape::NAME)
        .unwrap_or(0);
    for &op in ops.iter().skip(first + 1) {
        if !matches!(
            body.ops[op].name.as_str(),
            tg::RmsNorm::NAME | tg::Rope::NAME
        ) {
            continue;
        }
        for v in &body.ops[op].operands {
            let Some(view) = cx.views.get(v) else {
                continue;
            };
            let bytes = view.shape.iter().product::<i64>().max(1) * view.elem.bytes() as i64;
            if view.space != 1 || bytes > LIGHT_INPUT_BYTES || !seen.insert(*v) {
                continue;
            }
            let zeros: Vec<String> = view.shape.iter().map(|_| g.i64c(0)).collect();
            let base = g.ptr(view, &zeros);
            let lines = g.i64c((bytes + 127) / 128);
            let inside = g.op(format!("arith.cmpi slt, %tid64, {lines} : i64"));
            g.open(format!("scf.if {inside} {{"));
            let c128 = g.i64c(128);
            let off = g.op(format!("arith.muli %tid64, {c128} : i64"));
            let p = g.op(format!(
                "llvm.getelementptr {base}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            g.line(format!(
                "llvm.inline_asm has_side_effects \"prefetch.global.L1 [$0];\", \"l\" {p} : (!llvm.ptr<1>) -> ()"
            ));
            g.close("}");
        }
    }
}

/// The most bytes of one input [`prefetch_light_inputs`] asks for.
const LIGHT_INPUT_BYTES: i64 = 16 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(boxes: &[i64]) -> TaskPlan {
        TaskPlan {
            key: String::new(),
            offsets: Vec::new(),
            boxes: boxes.to_vec(),
        }
    }

    fn keyed(key: &str, boxes: &[i64]) -> TaskPlan {
        TaskPlan {
            key: key.into(),
            ..plan(boxes)
        }
    }

    #[test]
    fn split_codes_have_one_set_of_extents_each() {
        // Key a: rows of 21, 22, 21 (ragged), columns 64; key b: uniform.
        let plans = vec![
            keyed("a", &[0, 21, 0, 64]),
            keyed("b", &[0, 8, 0, 8]),
            keyed("a", &[21, 43, 0, 64]),
            keyed("a", &[43, 64, 0, 64]),
            keyed("b", &[8, 16, 0, 8]),
        ];
        let (first, tasks) = number_codes(plans);
        assert_eq!(first.iter().map(|t| t.index()).collect::<Vec<_>>(), [0, 1]);
        let (_, uniform) = box_extents(&tasks, first.len());
        assert_eq!(uniform[0], [None, Some(64)]);
        let (first, tasks) = number_codes(split_ragged(tasks, &uniform));
        // a with 21 rows (tasks 0 and 3), b, a with 22 rows (task 2): numbered by first task.
        assert_eq!(
            first.iter().map(|t| t.index()).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(
            tasks.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1]
        );
        let (_, uniform) = box_extents(&tasks, first.len());
        assert!(uniform.iter().flatten().all(Option::is_some), "{uniform:?}");
        assert_eq!(uniform[2], [Some(22), Some(64)]);
    }

    #[test]
    fn an_extent_is_uniform_only_where_every_task_of_the_code_has_it() {
        // Code 0: rows 0..22 and 22..43 (21: ragged), columns 64 wide in both; code 1: one task.
        let tasks = vec![
            (0, plan(&[0, 22, 0, 64])),
            (1, plan(&[5, 6, 3, 9])),
            (0, plan(&[22, 43, 64, 128])),
        ];
        let (largest, uniform) = box_extents(&tasks, 2);
        assert_eq!(largest, vec![vec![22, 64], vec![1, 6]]);
        assert_eq!(uniform, vec![vec![None, Some(64)], vec![Some(1), Some(6)]]);
    }
}
