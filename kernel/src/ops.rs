//! One op of a task's slice: what the plan decides for it ([`plan_op`]: where its result
//! and temporaries go, and the algorithm of the op families that have a choice), and its
//! rendering over the boxes the slice needs ([`emit_op`]). The elementwise and shape ops
//! render here; matrix-vector products, reductions and attention in their own modules.

use crate::attention::*;
use crate::gen::*;
use crate::matvec::*;
use crate::norm::*;
use crate::plan::PlanCx;
use crate::scratch::*;
use mkc_ir::attr::Attr;
use mkc_ir::dialect::kernel::{Choice, MatvecPath, OpPlan, Place};
use mkc_ir::dialect::tg;
use mkc_ir::dialect::tg::rope_inv_freq;
use mkc_ir::ir::OpData;
use mkc_ir::{ElemType, OpId};

/// What every op's renderer gets: the op, its operands' views, its result's shape and
/// view, the boxes it computes, and its plan.
pub(crate) struct OpEmit<'a> {
    pub(crate) op: OpId,
    pub(crate) d: &'a OpData,
    pub(crate) name: &'a str,
    pub(crate) ins: Vec<View>,
    pub(crate) out_shape: Vec<i64>,
    pub(crate) out_elem: ElemType,
    pub(crate) res: View,
    pub(crate) need: &'a [RBox],
    pub(crate) plan: &'a OpPlan,
    /// The product run in this one's loop (its plan's `with`), if any.
    pub(crate) with: Option<Paired>,
}

/// The second of two products run in one loop: its op, its weight and where its result goes.
pub(crate) struct Paired {
    pub(crate) op: OpId,
    pub(crate) w: View,
    pub(crate) res: View,
}

impl OpEmit<'_> {
    pub(crate) fn int_attr(&self, k: &str) -> Option<i64> {
        self.d.attrs.get(k).and_then(Attr::as_int)
    }

    pub(crate) fn flag(&self, k: &str) -> bool {
        matches!(
            self.d.attrs.get(k),
            Some(Attr::Bool(true)) | Some(Attr::Unit)
        )
    }
}

/// Temporary `i` of the op's plan.
pub(crate) fn temp<'a>(e: &'a OpEmit, i: usize) -> Result<&'a Place, String> {
    e.plan.temps.get(i).ok_or_else(|| {
        format!(
            "internal error: the plan gives '{}' no temporary #{i}",
            e.name
        )
    })
}

/// Whether `name` is an elementwise op (its scalar semantics are defined).
fn is_elementwise(d: &OpData) -> bool {
    mkc_ir::dialect::tg::elementwise::semantics(&d.name, &d.attrs).is_some()
}

/// What one op of a code's slice does: a reshape of a row-major value is a view of its
/// elements; the op that computes exactly the tile stores to it; every other result and
/// temporary takes scratch in the order the renderer takes it; the op families with a
/// choice make it.
pub(crate) fn plan_op(cx: &mut PlanCx, op: OpId, index: usize) -> Result<OpPlan, String> {
    let body = cx.body;
    let d = &body.ops[op];
    let name = d.name.as_str();
    let r = d.results[0];
    let out_shape = shape_of(body, r);
    let out_elem = elem_of(body, r);
    let ins = operand_views(d, |v| cx.view(v).cloned())?;
    let direct = cx
        .direct
        .as_ref()
        .filter(|(v, _)| *v == r)
        .map(|(_, view)| view.clone());
    let plan = |result, temps, choice| OpPlan {
        index,
        name: name.to_string(),
        result,
        temps,
        choice,
    };
    if name == tg::Reshape::NAME && direct.is_none() && ins[0].strides == row_major(&ins[0].shape) {
        cx.views.insert(r, reshaped(&ins[0], &out_shape));
        return Ok(plan(Place::View, vec![], Choice::None));
    }
    let result = match direct {
        Some(view) => {
            cx.views.insert(r, view);
            Place::Direct
        }
        None => {
            let boxes = cx.extents.len();
            let p = cx
                .scratch
                .alloc_result(&out_shape, out_elem, &cx.largest, boxes);
            cx.views
                .insert(r, plan_view(&p, &out_shape, out_elem, &cx.largest));
            p
        }
    };
    let int_attr = |k: &str| d.attrs.get(k).and_then(Attr::as_int);
    let flag = |k: &str| matches!(d.attrs.get(k), Some(Attr::Bool(true)) | Some(Attr::Unit));
    let (temps, choice) = match name {
        tg::MatMul::NAME => {
            // The rows of the code's first task (its tasks' tiles are alike).
            let rows: i64 = cx
                .extents
                .iter()
                .map(|b| b.iter().map(|(lo, hi)| hi - lo).product::<i64>())
                .sum();
            let choice = choose_matvec(
                &ins[0],
                &ins[1],
                flag("transpose_b"),
                flag("act_q8"),
                (cx.extents.len(), rows),
                cx.options,
            )?;
            // The rounded input row (the `dp4a` path's buffer), one for the products of a row.
            let temps = match choice {
                Choice::Matvec {
                    path: MatvecPath::Dp4a,
                    ..
                } => {
                    let k = *ins[0].shape.last().unwrap_or(&0);
                    let lay = crate::blocks_dp4a::Q8Row::of(k);
                    let place = cx
                        .rounded
                        .entry(d.operands[0])
                        .or_insert_with(|| cx.scratch.alloc(&[lay.words()], ElemType::F32));
                    vec![place.clone()]
                }
                _ => vec![],
            };
            (temps, choice)
        }
        tg::RmsNorm::NAME => plan_rms_norm(cx, &ins, int_attr("axis")),
        tg::MatMulAcc::NAME => crate::accumulate::plan_matmul_acc(cx, &ins[1], out_shape[0]),
        tg::ArgMax::NAME | tg::ArgMaxPartial::NAME => (plan_argmax(cx), Choice::None),
        tg::RopeCosSin::NAME => {
            let p = cx.scratch.alloc(&out_shape, out_elem);
            cx.views.insert(
                d.results[1],
                plan_view(&p, &out_shape, out_elem, &cx.largest),
            );
            (vec![p], Choice::None)
        }
        tg::Sdpa::NAME => (plan_sdpa(cx, &ins)?, Choice::None),
        tg::Attention::NAME | tg::AttentionPartial::NAME => {
            let parts =
                (name == tg::AttentionPartial::NAME).then(|| int_attr("parts").unwrap_or(1));
            plan_attention(cx, &ins, parts)?
        }
        _ if known(d) => (vec![], Choice::None),
        _ => return Err(format!("the GPU lowering has no code for '{name}' yet")),
    };
    Ok(plan(result, temps, choice))
}

/// The views of `d`'s operands. A split-K part of a `tg.matmul_acc` does not read its
/// initial value (the sum in memory holds it): that operand may have none, and its input
/// row's view stands in for it, never read.
fn operand_views(
    d: &OpData,
    view: impl Fn(mkc_ir::ValueId) -> Result<View, String>,
) -> Result<Vec<View>, String> {
    let mut ins: Vec<View> = Vec::with_capacity(d.operands.len());
    for (i, &v) in d.operands.iter().enumerate() {
        match view(v) {
            Err(_) if d.name == tg::MatMulAcc::NAME && i == 2 => ins.push(ins[0].clone()),
            r => ins.push(r?),
        }
    }
    Ok(ins)
}

/// Whether the renderer has code for `d` (beside the ops [`plan_op`] names).
fn known(d: &OpData) -> bool {
    is_elementwise(d)
        || matches!(
            d.name.as_str(),
            tg::Cast::NAME
                | tg::Reshape::NAME
                | tg::Transpose::NAME
                | tg::Rope::NAME
                | tg::Gather::NAME
                | tg::AttentionCombine::NAME
                | tg::ArgMaxCombine::NAME
                | tg::Constant::NAME
        )
}

/// `v`'s elements under `shape` (a row-major `v`).
fn reshaped(v: &View, shape: &[i64]) -> View {
    View {
        shape: shape.to_vec(),
        strides: row_major(shape),
        ..v.clone()
    }
}

/// The view of a value at the planned scratch place `p`, as the plan sees it (no offset:
/// the plan needs the layout, not the text).
/// The view the renderer will make of a value at place `p` (`largest`: the code's largest
/// box, whose extents a window holds): what the plan's later choices read of it (its
/// memory space and strides; a window is strided as the box it keeps, like
/// [`TaskCx::place_window`]).
fn plan_view(p: &Place, shape: &[i64], elem: ElemType, largest: &[Vec<i64>]) -> View {
    let shared = matches!(p, Place::Scratch { shared: true, .. });
    let strides = match (p, largest) {
        (Place::Scratch { window: true, .. }, [b]) => row_major(b),
        _ => row_major(shape),
    };
    View {
        base_aligned: true,
        base: if shared { "%sscr" } else { "%scr" }.into(),
        offset: String::new(),
        shape: shape.to_vec(),
        strides,
        elem: if elem.is_float() {
            ElemType::F32
        } else {
            ElemType::I64
        },
        space: if shared { 3 } else { 1 },
    }
}

/// Renders one op of a slice as its plan says: every element of `need` of its result(s).
pub(crate) fn emit_op(
    g: &mut Gen,
    cx: &mut TaskCx,
    op: OpId,
    need: &[RBox],
    plan: &OpPlan,
    with: Option<Paired>,
) -> Result<(), String> {
    let body = cx.body;
    let d = &body.ops[op];
    let r = d.results[0];
    let out_shape = shape_of(body, r);
    let out_elem = elem_of(body, r);
    let ins = operand_views(d, |v| cx.view(v).cloned())?;
    if plan.name != d.name {
        return Err(format!(
            "internal error: the kernel plan's op #{} is '{}'",
            plan.index, plan.name
        ));
    }
    if plan.result == Place::View {
        // A reshape of a row-major value is the same elements: a new view of them, no copy.
        cx.views.insert(r, reshaped(&ins[0], &out_shape));
        return Ok(());
    }
    let res = cx.place_result(g, &plan.result, &out_shape, out_elem, need)?;
    let e = OpEmit {
        op,
        d,
        name: d.name.as_str(),
        ins,
        out_shape,
        out_elem,
        res,
        need,
        plan,
        with,
    };
    let emit = match e.name {
        tg::Cast::NAME => emit_cast,
        _ if is_elementwise(d) => emit_elementwise,
        tg::Reshape::NAME => emit_reshape,
        tg::Transpose::NAME => emit_transpose,
        tg::MatMul::NAME => emit_matmul,
        tg::MatMulAcc::NAME => crate::accumulate::emit_matmul_acc,
        tg::RmsNorm::NAME => emit_rms_norm,
        tg::Rope::NAME => emit_rope,
        tg::RopeCosSin::NAME => emit_rope_cos_sin,
        tg::Gather::NAME => emit_gather,
        tg::ArgMax::NAME => emit_argmax,
        tg::ArgMaxPartial::NAME => emit_argmax_partial,
        tg::ArgMaxCombine::NAME => emit_argmax_combine,
        tg::Attention::NAME | tg::AttentionPartial::NAME => emit_attention,
        tg::AttentionCombine::NAME => emit_combine,
        tg::Sdpa::NAME => emit_sdpa,
        tg::Constant::NAME => emit_constant,
        name => return Err(format!("the GPU lowering has no code for '{name}' yet")),
    };
    emit(g, cx, &e)?;
    cx.views.insert(r, e.res);
    if let Some(p) = e.with {
        // The product run in this one's loop: its result is in place too.
        cx.views.insert(body.ops[p.op].results[0], p.res);
    }
    Ok(())
}

fn emit_combine(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    emit_attention_combine(g, &e.ins, e.need, &e.res)
}

pub(crate) fn scalar(g: &mut Gen, name: &str, a: &[String], float: bool) -> Result<String, String> {
    let (t, p) = if float { ("f32", "f") } else { ("i64", "i") };
    Ok(match (name, float) {
        (tg::Add::NAME, _) => g.op(format!("arith.add{p} {}, {} : {t}", a[0], a[1])),
        (tg::Sub::NAME, _) => g.op(format!("arith.sub{p} {}, {} : {t}", a[0], a[1])),
        (tg::Mul::NAME, _) => g.op(format!("arith.mul{p} {}, {} : {t}", a[0], a[1])),
        (tg::Div::NAME, true) => g.op(format!("arith.divf {}, {} : f32", a[0], a[1])),
        (tg::Max::NAME, true) => g.op(format!("arith.maximumf {}, {} : f32", a[0], a[1])),
        (tg::Min::NAME, true) => g.op(format!("arith.minimumf {}, {} : f32", a[0], a[1])),
        (tg::Neg::NAME, true) => g.op(format!("arith.negf {} : f32", a[0])),
        (tg::Exp::NAME, true) => g.exp(&a[0]),
        (tg::Sqrt::NAME, true) => g.sqrt(&a[0]),
        (tg::Rsqrt::NAME, true) => {
            let s = g.sqrt(&a[0]);
            let one = g.f32c(1.0);
            g.op(format!("arith.divf {one}, {s} : f32"))
        }
        (tg::Reciprocal::NAME, true) => {
            let one = g.f32c(1.0);
            g.op(format!("arith.divf {one}, {} : f32", a[0]))
        }
        (tg::Sigmoid::NAME | tg::Silu::NAME, true) => {
            let n = g.op(format!("arith.negf {} : f32", a[0]));
            let e = g.exp(&n);
            let one = g.f32c(1.0);
            let d = g.op(format!("arith.addf {one}, {e} : f32"));
            let s = g.op(format!("arith.divf {one}, {d} : f32"));
            if name == tg::Silu::NAME {
                g.op(format!("arith.mulf {}, {s} : f32", a[0]))
            } else {
                s
            }
        }
        (tg::Relu::NAME, true) => {
            let z = g.f32c(0.0);
            g.op(format!("arith.maximumf {}, {z} : f32", a[0]))
        }
        _ => {
            return Err(format!(
                "the GPU lowering has no code for '{name}' on {} yet",
                if float { "floats" } else { "integers" }
            ))
        }
    })
}

pub(crate) fn emit_cast(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let out_elem = e.out_elem;
    let float_out = e.out_elem.is_float();
    g.for_region(need, &mut |g, o| {
        let x = g.load(&ins[0], o)?;
        let y = match (ins[0].elem.is_float(), float_out) {
            (true, true) | (false, false) => x,
            (false, true) => g.op(format!("arith.sitofp {x} : i64 to f32")),
            (true, false) => g.op(format!("arith.fptosi {x} : f32 to i64")),
        };
        // A float cast rounds to its type.
        let y = if matches!(out_elem, ElemType::BF16 | ElemType::F16) {
            let t = mlir_type(out_elem)?;
            let n = g.op(format!("arith.truncf {y} : f32 to {t}"));
            g.op(format!("arith.extf {n} : {t} to f32"))
        } else {
            y
        };
        g.store(res, o, &y)
    })?;
    Ok(())
}

pub(crate) fn emit_elementwise(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let out_shape = &e.out_shape;
    let float_out = e.out_elem.is_float();
    let name = e.name;
    g.for_region(need, &mut |g, o| {
        let mut args = Vec::new();
        for v in ins {
            let i = broadcast_idx(g, o, out_shape, &v.shape);
            args.push(g.load(v, &i)?);
        }
        let y = scalar(g, name, &args, float_out)?;
        g.store(res, o, &y)
    })?;
    Ok(())
}

pub(crate) fn emit_reshape(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let out_shape = &e.out_shape;
    g.for_region(need, &mut |g, o| {
        let f = flatten(g, o, out_shape);
        let i = unflatten(g, &f, &ins[0].shape);
        let x = g.load(&ins[0], &i)?;
        g.store(res, o, &x)
    })?;
    Ok(())
}

pub(crate) fn emit_transpose(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let d = e.d;
    let perm = tg::transpose_perm(&d.attrs);
    g.for_region(need, &mut |g, o| {
        let mut i = vec![String::new(); o.len()];
        for (k, &p) in perm.iter().enumerate() {
            i[p] = o[k].clone();
        }
        let x = g.load(&ins[0], &i)?;
        g.store(res, o, &x)
    })?;
    Ok(())
}

pub(crate) fn emit_rope(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let flag = |k: &str| e.flag(k);
    let x = &ins[0];
    let dl = *x.shape.last().unwrap();
    let w = *ins[1].shape.last().unwrap();
    let full = flag("full_width");
    let inter = flag("interleaved");
    let rot = if full { w / 2 } else { w };
    let lead = x.shape[..x.shape.len() - 1].to_vec();
    let cs_lead = ins[1].shape[..ins[1].shape.len() - 1].to_vec();
    g.for_region(need, &mut |g, o| {
        let k = o.len() - 1;
        let lane = o[k].clone();
        let two_r = g.i64c(2 * rot);
        let rotated = g.op(format!("arith.cmpi slt, {lane}, {two_r} : i64"));
        // Lane pair (j, first) and partner lane.
        let (j, first, p1, p2) = if inter {
            let two = g.i64c(2);
            let j = g.op(format!("arith.divsi {lane}, {two} : i64"));
            let m = g.op(format!("arith.remsi {lane}, {two} : i64"));
            let z = g.i64c(0);
            let first = g.op(format!("arith.cmpi eq, {m}, {z} : i64"));
            let a = g.op(format!("arith.muli {j}, {two} : i64"));
            let one = g.i64c(1);
            let b2 = g.op(format!("arith.addi {a}, {one} : i64"));
            (j, first, a, b2)
        } else {
            let r = g.i64c(rot.max(1));
            let j = g.op(format!("arith.remsi {lane}, {r} : i64"));
            let first = g.op(format!("arith.cmpi slt, {lane}, {r} : i64"));
            let b2 = g.op(format!("arith.addi {j}, {r} : i64"));
            (j.clone(), first, j, b2)
        };
        // Lanes past 2R pass through: read them at their own index.
        let p1 = g.op(format!("arith.select {rotated}, {p1}, {lane} : i64"));
        let p2 = g.op(format!("arith.select {rotated}, {p2}, {lane} : i64"));
        let mut i1 = o[..k].to_vec();
        i1.push(p1);
        let mut i2 = o[..k].to_vec();
        i2.push(p2);
        let x1 = g.load(x, &i1)?;
        let x2 = g.load(x, &i2)?;
        let at = if full { lane.clone() } else { j };
        let wm1 = g.i64c(w - 1);
        let at = g.op(format!("arith.minsi {at}, {wm1} : i64"));
        let row = flatten(g, &o[..k], &lead);
        let row_idx = unflatten(g, &row, &lead);
        let mut ci = broadcast_idx(g, &row_idx, &lead, &cs_lead);
        ci.push(at);
        let c = g.load(&ins[1], &ci)?;
        let s = g.load(&ins[2], &ci)?;
        let a = g.op(format!("arith.mulf {x1}, {c} : f32"));
        let b1 = g.op(format!("arith.mulf {x2}, {s} : f32"));
        let yf = g.op(format!("arith.subf {a}, {b1} : f32"));
        let a2 = g.op(format!("arith.mulf {x2}, {c} : f32"));
        let b3 = g.op(format!("arith.mulf {x1}, {s} : f32"));
        let ys = g.op(format!("arith.addf {a2}, {b3} : f32"));
        let y = g.op(format!("arith.select {first}, {yf}, {ys} : f32"));
        let own = g.load(x, o)?;
        let y = g.op(format!("arith.select {rotated}, {y}, {own} : f32"));
        g.store(res, o, &y)
    })?;
    let _ = dl;
    Ok(())
}

pub(crate) fn emit_rope_cos_sin(g: &mut Gen, cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let out_shape = &e.out_shape;
    let out_elem = e.out_elem;
    let d = e.d;
    let inv = rope_inv_freq(&d.attrs)?;
    let half = inv.len() as i64;
    let res2 = cx.place(g, temp(e, 0)?, out_shape, out_elem)?;
    let pos = &ins[0];
    // Both results over the union of what is needed of either.
    g.for_region(need, &mut |g, o| {
        let k = o.len() - 1;
        let p = g.load(pos, &o[..k])?;
        let pf = g.op(format!("arith.sitofp {p} : i64 to f32"));
        // The inverse frequency, rounded to f32 as transformers holds it.
        let f = inv_freq_of(g, &inv, &o[k]);
        let ang = g.op(format!("arith.mulf {pf}, {f} : f32"));
        let a64 = g.op(format!("arith.extf {ang} : f32 to f64"));
        let (c, s) = g.cos_sin(&a64);
        let c = g.op(format!("arith.truncf {c} : f64 to f32"));
        let s = g.op(format!("arith.truncf {s} : f64 to f32"));
        g.store(res, o, &c)?;
        g.store(&res2, o, &s)
    })?;
    let _ = half;
    cx.views.insert(d.results[1], res2);
    Ok(())
}

/// `inv[i]` for the index `i` (an i64 below `inv.len()`): a tree of selects on the index's
/// bits. (A chain of `i == c` tests let LLVM rewrite each test against the loop's induction
/// variable, hoisting one 64-bit value per frequency out of the loop.)
fn inv_freq_of(g: &mut Gen, inv: &[f64], i: &str) -> String {
    let levels = inv.len().next_power_of_two().trailing_zeros() as usize;
    let i32_ = g.op(format!("arith.trunci {i} : i64 to i32"));
    let z = g.op("arith.constant 0 : i32");
    let bits: Vec<String> = (0..levels)
        .map(|b| {
            let m = g.op(format!("arith.constant {} : i32", 1u32 << b));
            let set = g.op(format!("arith.andi {i32_}, {m} : i32"));
            g.op(format!("arith.cmpi ne, {set}, {z} : i32"))
        })
        .collect();
    pick_inv_freq(g, inv, &bits, 0, levels)
}

/// The value among `inv[lo .. lo + 2^level]` that the low `level` bits select (indices past
/// the end take the last value; they do not occur).
fn pick_inv_freq(g: &mut Gen, inv: &[f64], bits: &[String], lo: usize, level: usize) -> String {
    if level == 0 {
        return g.f32c(inv[lo.min(inv.len() - 1)]);
    }
    let half = 1 << (level - 1);
    let low = pick_inv_freq(g, inv, bits, lo, level - 1);
    if lo + half >= inv.len() {
        return low;
    }
    let high = pick_inv_freq(g, inv, bits, lo + half, level - 1);
    g.op(format!(
        "arith.select {}, {high}, {low} : f32",
        bits[level - 1]
    ))
}

pub(crate) fn emit_gather(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let ins = &e.ins;
    let need = e.need;
    let res = &e.res;
    let int_attr = |k: &str| e.int_attr(k);
    let axis = int_attr("axis").unwrap_or(0) as usize;
    let (t, ix) = (&ins[0], &ins[1]);
    let ir = ix.shape.len();
    g.for_region(need, &mut |g, o| {
        // out = t[..axis] + idx dims + t[axis+1..]
        let row = g.load(ix, &o[axis..axis + ir])?;
        let mut i: Vec<String> = o[..axis].to_vec();
        i.push(row);
        i.extend(o[axis + ir..].iter().cloned());
        let x = g.load(t, &i)?;
        g.store(res, o, &x)
    })?;
    Ok(())
}

pub(crate) fn emit_constant(g: &mut Gen, _cx: &mut TaskCx, e: &OpEmit) -> Result<(), String> {
    let need = e.need;
    let res = &e.res;
    let float_out = e.out_elem.is_float();
    let d = e.d;
    let value = d.attrs.get("value").and_then(Attr::as_dense);
    let Some(dense) = value.filter(|x| x.splat || x.values.len() == 1) else {
        return Err("the GPU lowering handles splat constants inside groups only".into());
    };
    let v = dense.get_f64(0);
    g.for_region(need, &mut |g, o| {
        let c = if float_out {
            g.f32c(v)
        } else {
            g.i64c(v as i64)
        };
        g.store(res, o, &c)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::inv_freq_of;
    use crate::gen::Gen;
    use std::collections::HashMap;

    /// Evaluates the emitted tree (constants, truncation, masks, tests, selects) for every
    /// index: it must pick `inv[i]`, for table lengths that are and are not powers of two.
    #[test]
    fn the_inverse_frequency_tree_picks_each_index_own_value() {
        for len in [1usize, 2, 3, 5, 8, 31, 32, 48, 64] {
            let inv: Vec<f64> = (0..len).map(|i| 1.0 / (i as f64 + 2.0)).collect();
            let mut g = Gen::default();
            g.line("%i = <index>");
            let out = inv_freq_of(&mut g, &inv, "%i");
            for i in 0..len as i64 {
                let mut vals: HashMap<String, i64> = HashMap::from([("%i".into(), i)]);
                for line in g.out.lines().skip(1) {
                    let (name, rhs) = line.trim().split_once(" = ").unwrap();
                    let w: Vec<&str> = rhs.split([' ', ',']).filter(|w| !w.is_empty()).collect();
                    let v = |k: &str| vals[k];
                    let x = match w[0] {
                        "arith.constant" if w[1].starts_with("0x") => {
                            i64::from_str_radix(&w[1][2..], 16).unwrap()
                        }
                        "arith.constant" => w[1].parse().unwrap(),
                        "arith.trunci" => v(w[1]),
                        "arith.andi" => v(w[1]) & v(w[2]),
                        "arith.cmpi" => {
                            assert_eq!(w[1], "ne", "{line}");
                            (v(w[2]) != v(w[3])) as i64
                        }
                        "arith.select" => {
                            if v(w[1]) != 0 {
                                v(w[2])
                            } else {
                                v(w[3])
                            }
                        }
                        _ => panic!("unexpected op: {line}"),
                    };
                    vals.insert(name.to_string(), x);
                }
                let want = (inv[i as usize] as f32).to_bits() as i64;
                assert_eq!(vals[&out], want, "length {len}, index {i}");
            }
        }
    }
}
