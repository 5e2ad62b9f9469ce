//! A task's views and scratch ([`TaskCx`]): intermediate values in shared memory while the
//! budget lasts, past it in the CTA's region of global memory; windows of values sized for
//! every task; copies staged into shared memory.

use crate::gen::*;
use mkc_ir::dialect::task::TileBox;
use mkc_ir::{Body, ElemType, ValueId};
use std::collections::HashMap;

/// Per task: the views of every value it touches and scratch placement.
pub(crate) struct TaskCx<'a> {
    pub(crate) body: &'a Body,
    pub(crate) views: HashMap<ValueId, View>,
    pub(crate) scratch_used: u64,
    /// Bytes of its scratch in shared memory.
    pub(crate) smem_used: u64,
    /// The task's output, where the op computing it stores directly (see [`direct_output`]).
    pub(crate) direct: Option<(ValueId, View)>,
    /// The boxes of the op being emitted as the example task's (every task sharing the code
    /// has boxes of these extents).
    pub(crate) extents: Vec<TileBox>,
    /// Per box of the op being emitted, its largest extent per axis over the code's tasks.
    pub(crate) largest: Vec<Vec<i64>>,
}

impl TaskCx<'_> {
    pub(crate) fn scratch(&mut self, g: &mut Gen, shape: &[i64], elem: ElemType) -> View {
        let compute = if elem.is_float() {
            ElemType::F32
        } else {
            ElemType::I64
        };
        let bytes = shape.iter().product::<i64>().max(1) as u64 * compute.bytes() as u64;
        let bytes = bytes.div_ceil(16) * 16;
        // Shared memory while the budget lasts: a value written and read back by the same
        // CTA then costs no trip to L2.
        let shared = self.smem_used + bytes <= g.smem_scratch;
        let used = if shared {
            &mut self.smem_used
        } else {
            &mut self.scratch_used
        };
        let offset = g.i64c(*used as i64);
        *used += bytes;
        View {
            base_aligned: true,
            base: if shared { "%sscr" } else { "%scr" }.into(),
            offset,
            shape: shape.to_vec(),
            strides: row_major(shape),
            elem: compute,
            space: if shared { 3 } else { 1 },
        }
    }

    /// A copy of the global `v` in shared memory, by asynchronous copies issued now (16
    /// bytes each, a few a thread, committed as a group): the caller waits for them
    /// (`Gen::preload_wait`, then a barrier) before reading the copy. None when `v` is not
    /// contiguous, 16-byte aligned and a multiple of 16 bytes, or the shared budget left
    /// cannot hold it.
    pub(crate) fn stage(&mut self, g: &mut Gen, v: &View) -> Option<View> {
        let bytes = v.shape.iter().product::<i64>().max(1) as u64 * v.elem.bytes() as u64;
        let ok = v.space == 1
            && v.base_aligned
            && v.strides == row_major(&v.shape)
            && matches!(v.elem, ElemType::BF16 | ElemType::F16 | ElemType::F32)
            && bytes.is_multiple_of(16)
            && self.smem_used + bytes <= g.smem_scratch;
        if !ok {
            return None;
        }
        let c = self.scratch(g, &[bytes as i64 / 4], ElemType::F32);
        let copy = View {
            shape: v.shape.clone(),
            strides: row_major(&v.shape),
            elem: v.elem,
            ..c
        };
        let zeros: Vec<String> = v.shape.iter().map(|_| g.i64c(0)).collect();
        let src0 = g.ptr(v, &zeros);
        let dst0 = g.ptr(&copy, &zeros);
        // A few chunks a thread, unrolled (a loop here made ptxas spill elsewhere).
        let chunks = bytes as i64 / 16;
        let t = g.threads as i64;
        for j in 0..(chunks + t - 1) / t {
            let dj = g.i64c(j * t);
            let c = g.op(format!("arith.addi %tid64, {dj} : i64"));
            let partial = (j + 1) * t > chunks;
            if partial {
                let nc = g.i64c(chunks);
                let inside = g.op(format!("arith.cmpi slt, {c}, {nc} : i64"));
                g.open(format!("scf.if {inside} {{"));
            }
            let c16 = g.i64c(16);
            let off = g.op(format!("arith.muli {c}, {c16} : i64"));
            let src = g.op(format!(
                "llvm.getelementptr {src0}[{off}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8"
            ));
            let dst = g.op(format!(
                "llvm.getelementptr {dst0}[{off}] : (!llvm.ptr<3>, i64) -> !llvm.ptr<3>, i8"
            ));
            g.cp_async16(&dst, &src);
            if partial {
                g.close("}");
            }
        }
        g.cp_async_commit();
        Some(copy)
    }

    /// Scratch for the `window` of a `full`-shaped value that starts at `origin` (run-time
    /// indices): indexed like the full value, it holds only the window, so a task's share
    /// of a value sized for every task stays small enough for shared memory. Every index
    /// must lie inside the window.
    pub(crate) fn scratch_window(
        &mut self,
        g: &mut Gen,
        full: &[i64],
        window: &[i64],
        origin: &[String],
        elem: ElemType,
    ) -> View {
        let mut v = self.scratch(g, window, elem);
        let eb = v.elem.bytes() as i64;
        let mut off = v.offset.clone();
        for (o, st) in origin.iter().zip(&v.strides) {
            let c = g.i64c(*st as i64 * eb);
            let t = g.op(format!("arith.muli {o}, {c} : i64"));
            off = g.op(format!("arith.subi {off}, {t} : i64"));
        }
        v.offset = off;
        v.shape = full.to_vec();
        v
    }

    /// Scratch for the result of the op being emitted: the whole value where it fits the
    /// shared memory left; past that, only a window the size of its one needed box (the
    /// largest of the code's tasks': every write and read of it lies there), so it may still
    /// fit, and at worst
    /// takes less global scratch. (A value sized for every task, an MLP intermediate of
    /// 8192 or 14336 rows, went to L2 where the task needs a hundred rows of it.)
    pub(crate) fn result_scratch(
        &mut self,
        g: &mut Gen,
        shape: &[i64],
        elem: ElemType,
        need: &[RBox],
    ) -> View {
        let compute = if elem.is_float() { 4 } else { 8 };
        let full = (shape.iter().product::<i64>().max(1) as u64 * compute).div_ceil(16) * 16;
        match (self.largest.as_slice(), need) {
            ([b], [n]) if self.smem_used + full > g.smem_scratch && b.len() == shape.len() => {
                let window = b.clone();
                let origin: Vec<String> = n.iter().map(|(lo, _)| lo.clone()).collect();
                self.scratch_window(g, shape, &window, &origin, elem)
            }
            _ => self.scratch(g, shape, elem),
        }
    }

    pub(crate) fn view(&self, v: ValueId) -> Result<&View, String> {
        self.views
            .get(&v)
            .ok_or_else(|| format!("internal error: {v} has no place in the kernel"))
    }
}
