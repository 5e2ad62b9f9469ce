//! A task code: the slice of the tasks that share it, op by op, over the boxes and at the
//! offsets of the task's record; and what varies between those tasks (its parameters).

use crate::gen::*;
use crate::matvec::*;
use crate::ops::*;
use crate::scratch::*;
use mkc_ir::tiling::{result_in_place, slice, Region};
use mkc_ir::{Body, OpId, ValueId};
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
    let mut boxes = Vec::new();
    let mut push_region = |key: &mut String, r: &Region| {
        let _ = write!(key, "{},", r.len());
        for b in r {
            for &(lo, hi) in b {
                boxes.extend([lo, hi]);
            }
        }
    };
    for &op in &sl.ops {
        if in_place && body.ops[op].results.contains(&y) {
            continue;
        }
        let _ = write!(key, "op{},", ops.iter().position(|&x| x == op).unwrap_or(0));
        let need = merged_need(body, &sl, op);
        // Attention's scratch holds its boxes' rows only (`emit_attention`): tasks whose
        // boxes differ in size get codes of their own.
        if matches!(
            body.ops[op].name.as_str(),
            "tg.attention" | "tg.attention_partial"
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
    if direct_output(body, &sl, group, task).is_some() {
        key.push_str("#direct");
    }
    Ok(TaskPlan {
        key,
        offsets,
        boxes,
    })
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

/// The code of the tasks like `task`: its slice, op by op, over the boxes and at the offsets
/// the task's parameters give. Returns the scratch bytes it uses.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_code(
    g: &mut Gen,
    body: &Body,
    steps: &[OpId],
    placed: &HashMap<ValueId, (usize, u64)>,
    strides: &HashMap<ValueId, Vec<u64>>,
    buffers: &[String],
    task: &mkc_ir::dialect::task::Task,
    largest: &[i64],
    params: &str,
    wait: &dyn Fn(&mut Gen),
) -> Result<(u64, u64), String> {
    let sl = slice(body, steps[task.group], task.output, &task.tile)?;
    let group = steps[task.group];
    let block = body.entry_block(group, 0).expect("a group has a body");
    let bargs = &body.blocks[block].args;
    let operands = &body.ops[group].operands;
    let results = &body.ops[group].results;
    let ops = &body.blocks[block].ops;
    let y = body.ops[*ops.last().expect("a yield")].operands[task.output];
    let in_place = result_in_place(body, group, task.output);
    let mut next = 0i64;
    // Parameters are words of the task's record in shared memory.
    let mut param = |g: &mut Gen| {
        let i = g.i64c(next);
        next += 1;
        let p = g.op(format!(
            "llvm.getelementptr {params}[{i}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i64"
        ));
        g.op(format!("llvm.load {p} : !llvm.ptr<3> -> i64"))
    };
    let view_of = |g: &mut Gen, v: ValueId, param: &mut dyn FnMut(&mut Gen) -> String| {
        let (b, _) = placed[&v];
        let t = body.ty(v).as_tensor().expect("placed values are tensors");
        View {
            base_aligned: buffers[b] != "inputs",
            base: format!("%b{b}"),
            offset: param(g),
            shape: t.shape.clone(),
            strides: strides[&v].clone(),
            elem: mkc_ir::dialect::task::storage_elem(&buffers[b], t.elem),
            space: 1,
        }
    };
    let mut cx = TaskCx {
        body,
        views: HashMap::new(),
        scratch_used: 0,
        smem_used: 0,
        direct: None,
        extents: Vec::new(),
        largest: Vec::new(),
    };
    for &i in &sl.args {
        let v = view_of(g, operands[i], &mut param);
        cx.views.insert(bargs[i], v);
    }
    for &(v, j) in &sl.loaded {
        let view = view_of(g, results[j], &mut param);
        cx.views.insert(v, view);
    }
    let out = view_of(g, results[task.output], &mut param);
    let mut read_region = |g: &mut Gen, r: &Region| -> Vec<RBox> {
        r.iter()
            .map(|b| b.iter().map(|_| (param(g), param(g))).collect())
            .collect()
    };
    let direct = direct_output(body, &sl, group, task);
    if direct.is_some() {
        cx.direct = Some((y, out.clone()));
    }
    let ops: Vec<OpId> = sl
        .ops
        .iter()
        .copied()
        .filter(|op| !(in_place && body.ops[*op].results.contains(&y)))
        .collect();
    // The task waits on its events here; the first blocks of its first matrix-vector
    // product's weights are loaded before (the boxes of the ops up to it are words of the
    // record, already in shared memory).
    let mut needs: Vec<Vec<RBox>> = Vec::new();
    g.preload = None;
    let preloaded = ops
        .iter()
        .enumerate()
        .find_map(|(i, &op)| preload_blocks(g, &cx, op).map(|b| (i, b)));
    let first_matvec = preloaded.map(|(i, _)| i);
    if let Some((p, blocks)) = preloaded {
        for &op in &ops[..=p] {
            needs.push(read_region(g, &merged_need(body, &sl, op)));
        }
        let w = cx.view(body.ops[ops[p]].operands[1])?.clone();
        g.preload = g.emit_preload(ops[p], &w, &needs[p], blocks);
    }
    wait(g);
    let mut needs = needs.into_iter();
    // Where this op's boxes start in the code's largest extents (`largest`, per axis).
    let mut at = 0usize;
    for (i, &op) in ops.iter().enumerate() {
        let need = match needs.next() {
            Some(n) => n,
            None => read_region(g, &merged_need(body, &sl, op)),
        };
        if first_matvec == Some(i) {
            // Every thread, whether its warp reads its copies or not: none is left in
            // flight to land after the next task's.
            g.preload_wait();
        }
        cx.extents = merged_need(body, &sl, op);
        cx.largest = cx
            .extents
            .iter()
            .map(|b| {
                let e = largest.get(at..at + b.len()).unwrap_or_default().to_vec();
                at += b.len();
                e
            })
            .collect();
        emit_op(g, &mut cx, op, &need).map_err(|e| format!("'{}': {e}", body.ops[op].name))?;
        if direct == Some(op) {
            // The tile is written; the barrier after the task orders it.
            return Ok((cx.scratch_used, cx.smem_used));
        }
        g.barrier();
    }
    let tile = read_region(g, &task.tile);
    // Write the tile.
    if in_place {
        let ka = body.def_op(y).expect("in place results are kv_append");
        let new = cx.view(body.ops[ka].operands[1])?.clone();
        let pos = cx.view(body.ops[ka].operands[2])?.clone();
        let p = g.load(&pos, &[])?;
        let rows: Vec<RBox> = tile.iter().map(|b| b[1..].to_vec()).collect();
        {
            g.for_region(&rows, &mut |g, o| {
                let x = g.load(&new, o)?;
                let mut i = vec![p.clone()];
                i.extend(o.iter().cloned());
                g.store(&out, &i, &x)
            })?;
        }
    } else {
        let src = cx.view(y)?.clone();
        g.for_region(&tile, &mut |g, o| {
            let x = g.load(&src, o)?;
            g.store(&out, o, &x)
        })?;
    }
    Ok((cx.scratch_used, cx.smem_used))
}

/// The op that may store a task's output straight to its place instead of to scratch (saving
/// a copy and a barrier): the output is not updated in place, and it is the first result of
/// the slice's last op, which computes exactly the tile. (A value stored narrower than its
/// type, an f32 KV cache kept as bf16, is rounded by the store itself.)
pub(crate) fn direct_output(
    body: &Body,
    sl: &mkc_ir::tiling::Slice,
    group: OpId,
    task: &mkc_ir::dialect::task::Task,
) -> Option<OpId> {
    if result_in_place(body, group, task.output) {
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
