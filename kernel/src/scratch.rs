//! A task's scratch: intermediate values and temporaries in shared memory while the budget
//! lasts, past it in the CTA's region of global memory; windows of values sized for every
//! task; copies staged into shared memory. [`ScratchPlan`] decides where each goes (the
//! `select-kernels` pass, in the order the ops take them); [`TaskCx`] renders the views of
//! those places.

use crate::gen::*;
use mkc_ir::dialect::kernel::Place;
use mkc_ir::dialect::task::TileBox;
use mkc_ir::{Body, ElemType, ValueId};
use std::collections::HashMap;

/// The element type a value is computed in (f32, or i64).
fn compute_elem(elem: ElemType) -> ElemType {
    if elem.is_float() {
        ElemType::F32
    } else {
        ElemType::I64
    }
}

/// Bytes of scratch for a value of `shape` computed in `elem`'s compute type (a multiple of
/// 16, so every place is 16-byte aligned).
pub(crate) fn scratch_bytes(shape: &[i64], elem: ElemType) -> u64 {
    let bytes = shape.iter().product::<i64>().max(1) as u64 * compute_elem(elem).bytes() as u64;
    bytes.div_ceil(16) * 16
}

/// Where a code's scratch goes, taken in order: shared memory while `budget` lasts.
pub(crate) struct ScratchPlan {
    pub(crate) budget: u64,
    /// Bytes taken of shared memory and of the CTA's global scratch.
    pub(crate) smem: u64,
    pub(crate) global: u64,
}

impl ScratchPlan {
    /// Room for a value of `shape` in its compute type: shared memory while the budget lasts
    /// (a value written and read back by the same CTA then costs no trip to L2).
    pub(crate) fn alloc(&mut self, shape: &[i64], elem: ElemType) -> Place {
        self.take(scratch_bytes(shape, elem), false)
    }

    /// Whether `bytes` more fit the shared memory left.
    pub(crate) fn fits_shared(&self, bytes: u64) -> bool {
        self.smem + bytes <= self.budget
    }

    fn take(&mut self, bytes: u64, window: bool) -> Place {
        let shared = self.fits_shared(bytes);
        let used = if shared {
            &mut self.smem
        } else {
            &mut self.global
        };
        let offset = *used;
        *used += bytes;
        Place::Scratch {
            shared,
            offset,
            bytes,
            window,
        }
    }

    /// Room for the `window` of a value (indexed like the whole of it, see
    /// [`TaskCx::place_window`]).
    pub(crate) fn alloc_window(&mut self, window: &[i64], elem: ElemType) -> Place {
        self.take(scratch_bytes(window, elem), true)
    }

    /// Room for the result of an op: the whole value where it fits the shared memory left;
    /// past that, only a window the size of its one needed box (`largest`: the largest of
    /// the code's tasks', where every write and read of it lies; `boxes`: how many boxes the
    /// op computes), so it may still fit, and at worst takes less global scratch. (A value sized for every task, an MLP
    /// intermediate of 8192 or 14336 rows, went to L2 where the task needs a hundred rows.)
    pub(crate) fn alloc_result(
        &mut self,
        shape: &[i64],
        elem: ElemType,
        largest: &[Vec<i64>],
        boxes: usize,
    ) -> Place {
        let full = scratch_bytes(shape, elem);
        match largest {
            [b] if boxes == 1 && self.smem + full > self.budget && b.len() == shape.len() => {
                self.alloc_window(b, elem)
            }
            _ => self.alloc(shape, elem),
        }
    }

    /// Room in shared memory for a copy of the global `v` ([`TaskCx::place_stage`]), when
    /// it is contiguous, 16-byte aligned, a multiple of 16 bytes and the budget left holds it.
    pub(crate) fn stage(&mut self, v: &View) -> Option<Place> {
        let bytes = v.shape.iter().product::<i64>().max(1) as u64 * v.elem.bytes() as u64;
        let ok = v.space == 1
            && v.base_aligned
            && v.strides == row_major(&v.shape)
            && matches!(v.elem, ElemType::BF16 | ElemType::F16 | ElemType::F32)
            && bytes.is_multiple_of(16)
            && self.smem + bytes <= self.budget;
        ok.then(|| self.alloc(&[bytes as i64 / 4], ElemType::F32))
    }
}

/// Per task: the views of every value it touches.
pub(crate) struct TaskCx<'a> {
    pub(crate) body: &'a Body,
    pub(crate) views: HashMap<ValueId, View>,
    /// The task's output, where the op computing it stores directly.
    pub(crate) direct: Option<(ValueId, View)>,
    /// Sums the task's split-K part is added onto besides its output (sums onto it).
    pub(crate) onto: Vec<View>,
    /// The boxes of the op being emitted as the example task's (every task sharing the code
    /// has boxes of these extents).
    pub(crate) extents: Vec<TileBox>,
    /// Per box of the op being emitted, its largest extent per axis over the code's tasks.
    pub(crate) largest: Vec<Vec<i64>>,
    /// The input rows rounded to 8 bits so far, and where: a later product of the same row
    /// whose plan gives it the same buffer reads it as it is.
    pub(crate) rounded: HashMap<ValueId, Place>,
}

impl TaskCx<'_> {
    /// The view of a value of `shape` at the planned scratch place `p`.
    pub(crate) fn place(
        &mut self,
        g: &mut Gen,
        p: &Place,
        shape: &[i64],
        elem: ElemType,
    ) -> Result<View, String> {
        let Place::Scratch {
            shared,
            offset,
            bytes,
            ..
        } = *p
        else {
            return Err(format!("internal error: {p:?} is not scratch"));
        };
        if bytes != scratch_bytes(shape, elem) {
            return Err(format!(
                "internal error: the plan gives {bytes} bytes of scratch where {shape:?} takes {}",
                scratch_bytes(shape, elem)
            ));
        }
        let offset = g.i64c(offset as i64);
        Ok(View {
            base_aligned: true,
            base: if shared { "%sscr" } else { "%scr" }.into(),
            offset,
            shape: shape.to_vec(),
            strides: row_major(shape),
            elem: compute_elem(elem),
            space: if shared { 3 } else { 1 },
        })
    }

    /// The view of the `window` of a `full`-shaped value that starts at `origin` (run-time
    /// indices), at the planned place `p`: indexed like the full value, it holds only the
    /// window, so a task's share of a value sized for every task stays small enough for
    /// shared memory. Every index must lie inside the window.
    pub(crate) fn place_window(
        &mut self,
        g: &mut Gen,
        p: &Place,
        full: &[i64],
        window: &[i64],
        origin: &[String],
        elem: ElemType,
    ) -> Result<View, String> {
        let mut v = self.place(g, p, window, elem)?;
        let eb = v.elem.bytes() as i64;
        let mut off = v.offset.clone();
        for (o, st) in origin.iter().zip(&v.strides) {
            let c = g.i64c(*st as i64 * eb);
            let t = g.op(format!("arith.muli {o}, {c} : i64"));
            off = g.op(format!("arith.subi {off}, {t} : i64"));
        }
        v.offset = off;
        v.shape = full.to_vec();
        Ok(v)
    }

    /// The view of the result of the op being emitted at its planned place: the tile itself,
    /// the whole value, or the window of its one needed box ([`ScratchPlan::alloc_result`]).
    pub(crate) fn place_result(
        &mut self,
        g: &mut Gen,
        p: &Place,
        shape: &[i64],
        elem: ElemType,
        need: &[RBox],
    ) -> Result<View, String> {
        match (p, &self.direct, self.largest.as_slice(), need) {
            (Place::Direct, Some((_, view)), _, _) => Ok(view.clone()),
            (Place::Scratch { window: true, .. }, _, [b], [n]) => {
                let window = b.clone();
                let origin: Vec<String> = n.iter().map(|(lo, _)| lo.clone()).collect();
                self.place_window(g, p, shape, &window, &origin, elem)
            }
            (Place::Scratch { window: false, .. }, _, _, _) => self.place(g, p, shape, elem),
            _ => Err(format!(
                "internal error: the planned place {p:?} does not fit the op's result"
            )),
        }
    }

    /// A copy of the global `v` in shared memory at the planned place `p`, by asynchronous
    /// copies issued now (16 bytes each, a few a thread, committed as a group): the caller
    /// waits for them (`Gen::preload_wait`, then a barrier) before reading the copy.
    pub(crate) fn place_stage(&mut self, g: &mut Gen, p: &Place, v: &View) -> Result<View, String> {
        let bytes = v.shape.iter().product::<i64>().max(1) as u64 * v.elem.bytes() as u64;
        let c = self.place(g, p, &[bytes as i64 / 4], ElemType::F32)?;
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
        Ok(copy)
    }

    pub(crate) fn view(&self, v: ValueId) -> Result<&View, String> {
        self.views
            .get(&v)
            .ok_or_else(|| format!("internal error: {v} has no place in the kernel"))
    }
}
