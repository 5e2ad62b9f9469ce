//! Which parts of its inputs a tile of a fused group's result needs.
//!
//! A tile is a union of boxes of one result of a `fused.group`. [`slice()`] walks the group's
//! region backwards from the tile, asking each op which boxes of its operands the boxes of
//! its results need (a matvec row needs that weight row and the whole input vector, a rope
//! lane needs its partner lane, a norm needs its whole axis, ...). Ops it has no rule for
//! need their operands whole, which is always correct, only wasteful. The `tile` pass uses
//! this to state each task's exact reads; the simulator uses the same slice to run a task,
//! so a task that reads bytes it did not declare computes poison and is caught.

use crate::attr::Attr;
use crate::dialect::task::TileBox;
use crate::dialect::tg;
use crate::ir::{Body, OpId, ValueId};
use std::collections::HashMap;
use std::fmt::Write;

/// A union of boxes of one tensor (may overlap; never empty boxes).
pub type Region = Vec<TileBox>;

pub fn full_box(shape: &[i64]) -> TileBox {
    shape.iter().map(|&d| (0, d)).collect()
}

fn contains(a: &TileBox, b: &TileBox) -> bool {
    a.iter().zip(b).all(|(x, y)| x.0 <= y.0 && y.1 <= x.1)
}

/// Adds `b` to `r` unless a box there already covers it (and drops boxes `b` covers).
pub fn add_box(r: &mut Region, b: TileBox) {
    if b.iter().any(|&(lo, hi)| hi <= lo) || r.iter().any(|x| contains(x, &b)) {
        return;
    }
    r.retain(|x| !contains(&b, x));
    r.push(b);
}

/// Elements a region covers (overlaps counted once only for nested boxes).
pub fn region_elements(r: &Region) -> u64 {
    r.iter()
        .map(|b| b.iter().map(|&(lo, hi)| (hi - lo) as u64).product::<u64>())
        .sum()
}

/// Row-major flat intervals a box covers, adjacent ones merged.
pub fn flat_runs(shape: &[i64], b: &TileBox) -> Vec<(i64, i64)> {
    if shape.is_empty() {
        return vec![(0, 1)];
    }
    let mut runs: Vec<(i64, i64)> = Vec::new();
    let n = shape.len();
    let mut strides = vec![1i64; n];
    for d in (0..n - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let mut idx: Vec<i64> = b[..n - 1].iter().map(|r| r.0).collect();
    loop {
        let base: i64 = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        let (lo, hi) = (base + b[n - 1].0, base + b[n - 1].1);
        match runs.last_mut() {
            Some(r) if r.1 == lo => r.1 = hi,
            _ => runs.push((lo, hi)),
        }
        let mut k = n - 1;
        loop {
            if k == 0 {
                return runs;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < b[k].1 {
                break;
            }
            idx[k] = b[k].0;
        }
    }
}

/// The boxes that exactly cover the row-major flat interval `lo..hi` of `shape`.
pub fn flat_to_boxes(shape: &[i64], lo: i64, hi: i64) -> Vec<TileBox> {
    if shape.is_empty() {
        return vec![vec![]];
    }
    let inner: i64 = shape[1..].iter().product();
    let (r0, r1) = (lo / inner, (hi - 1) / inner);
    let prefix = |row: (i64, i64), rest: Vec<TileBox>| -> Vec<TileBox> {
        rest.into_iter()
            .map(|mut b| {
                b.insert(0, row);
                b
            })
            .collect()
    };
    if r0 == r1 {
        return prefix(
            (r0, r0 + 1),
            flat_to_boxes(&shape[1..], lo - r0 * inner, hi - r0 * inner),
        );
    }
    let mut out = Vec::new();
    let mut first_full = r0;
    if lo % inner != 0 {
        out.extend(prefix(
            (r0, r0 + 1),
            flat_to_boxes(&shape[1..], lo % inner, inner),
        ));
        first_full = r0 + 1;
    }
    let mut last_full = r1 + 1;
    if hi % inner != 0 {
        last_full = r1;
    }
    if first_full < last_full {
        let mut b = vec![(first_full, last_full)];
        b.extend(full_box(&shape[1..]));
        out.push(b);
    }
    if hi % inner != 0 {
        out.extend(prefix(
            (r1, r1 + 1),
            flat_to_boxes(&shape[1..], 0, hi % inner),
        ));
    }
    out
}

fn shape_of(body: &Body, v: ValueId) -> Vec<i64> {
    body.ty(v)
        .as_tensor()
        .map(|t| t.shape.clone())
        .unwrap_or_default()
}

/// An axis attribute in range (negative counts from the end).
pub fn norm_axis(a: i64, rank: usize) -> usize {
    if a < 0 {
        (a + rank as i64).max(0) as usize
    } else {
        (a as usize).min(rank)
    }
}

/// Operand 0 over the whole of `axes` (elsewhere the result's boxes), every other operand
/// whole: what a norm or a softmax over those axes needs.
pub fn whole_axes_needs(n: &NeedsInput, axes: std::ops::Range<usize>) -> Vec<Option<Region>> {
    let mut v = vec![Some(n.map(&|b| {
        let mut x = b.clone();
        for (k, r) in x.iter_mut().enumerate().take(axes.end).skip(axes.start) {
            *r = (0, n.out_shape[k]);
        }
        vec![x]
    }))];
    v.extend((1..n.shapes.len()).map(|i| n.full(i)));
    v
}

/// What an op's tile rule (`OpDef::tile`) sees: its operands' and first result's shapes, the
/// region of its first result the tile needs, and whether it updates a KV cache in place
/// (its old contents are then not read).
pub struct NeedsInput<'a> {
    pub body: &'a Body,
    pub op: OpId,
    pub shapes: Vec<Vec<i64>>,
    pub out_shape: Vec<i64>,
    pub out: Region,
    pub in_place: bool,
}

impl NeedsInput<'_> {
    /// The union of `f` of every needed box of the result.
    pub fn map(&self, f: &dyn Fn(&TileBox) -> Vec<TileBox>) -> Region {
        let mut r = Region::new();
        for b in &self.out {
            for x in f(b) {
                add_box(&mut r, x);
            }
        }
        r
    }

    /// Operand `i` whole.
    pub fn full(&self, i: usize) -> Option<Region> {
        Some(vec![full_box(&self.shapes[i])])
    }

    /// Every operand whole (always right, only wasteful).
    pub fn all_full(&self) -> Vec<Option<Region>> {
        (0..self.shapes.len()).map(|i| self.full(i)).collect()
    }

    pub fn int_attr(&self, k: &str) -> Option<i64> {
        self.body.ops[self.op].attrs.get(k).and_then(Attr::as_int)
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(
            self.body.ops[self.op].attrs.get(k),
            Some(Attr::Bool(true)) | Some(Attr::Unit)
        )
    }
}

/// For every operand of `op`, the region its results' regions need (`None`: not needed),
/// as the op's definition says: elementwise ops broadcast, others follow their tile rule,
/// and ops without one need their operands whole. `in_place` marks a `tg.kv_append` whose
/// cache is updated where it lies.
pub fn operand_needs(
    body: &Body,
    op: OpId,
    outs: &[Option<Region>],
    in_place: bool,
) -> Vec<Option<Region>> {
    let data = &body.ops[op];
    let shapes: Vec<Vec<i64>> = data.operands.iter().map(|&v| shape_of(body, v)).collect();
    let all_full = || shapes.iter().map(|s| Some(vec![full_box(s)])).collect();
    let Some(out) = outs.first().cloned().flatten() else {
        // Only secondary results are needed (layer_norm's statistics): whole operands.
        return if outs.iter().any(Option::is_some) {
            all_full()
        } else {
            vec![None; data.operands.len()]
        };
    };
    if outs.len() > 1 && outs[1..].iter().any(Option::is_some) {
        return all_full();
    }
    let input = NeedsInput {
        body,
        op,
        out_shape: shape_of(body, data.results[0]),
        shapes,
        out,
        in_place,
    };
    match crate::registry::Registry::builtin().get(&data.name) {
        Some(def) if def.scalar.is_some() => broadcast_needs(&input),
        Some(def) => def.tile.map_or_else(|| input.all_full(), |f| f(&input)),
        None => input.all_full(),
    }
}

/// An elementwise op's operands under numpy broadcasting: the same boxes, an axis the
/// operand broadcasts along taken once.
fn broadcast_needs(n: &NeedsInput) -> Vec<Option<Region>> {
    let out_shape = &n.out_shape;
    (0..n.shapes.len())
        .map(|i| {
            let s = &n.shapes[i];
            let off = out_shape.len() - s.len().min(out_shape.len());
            Some(n.map(&|b| {
                vec![s
                    .iter()
                    .enumerate()
                    .map(|(k, &d)| {
                        if d == 1 && out_shape[k + off] != 1 {
                            (0, 1)
                        } else {
                            b[k + off]
                        }
                    })
                    .collect()]
            }))
        })
        .collect()
}

/// What one tile of one result of a `fused.group` needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slice {
    /// Ops of the region to run, in order.
    pub ops: Vec<OpId>,
    /// Region of every value involved (block arguments included).
    pub needs: HashMap<ValueId, Region>,
    /// Block arguments needed, by position.
    pub args: Vec<usize>,
    /// Values not recomputed but read back from another result of the group, which other
    /// tasks have written: (value, result index).
    pub loaded: Vec<(ValueId, usize)>,
}

/// Whether result `k` of `group` is an updated KV cache, written in place.
pub fn result_in_place(body: &Body, group: OpId, k: usize) -> bool {
    let Some(block) = body.entry_block(group, 0) else {
        return false;
    };
    let Some(&y) = body.blocks[block].ops.last() else {
        return false;
    };
    body.ops[y]
        .operands
        .get(k)
        .and_then(|&v| body.def_op(v))
        .is_some_and(|o| body.ops[o].name == tg::KvAppend::NAME)
}

/// The [K, N] a `tg.matmul_acc` computing result `k` of `group` sums over: the space its
/// split-K tiles ([`tg::SPLIT_K`]) are boxes of. None for other results.
pub fn split_k_space(body: &Body, group: OpId, k: usize) -> Option<Vec<i64>> {
    let block = body.entry_block(group, 0)?;
    let y = *body.blocks[block].ops.last()?;
    let acc = body
        .def_op(*body.ops[y].operands.get(k)?)
        .filter(|&d| body.ops[d].name == tg::MatMulAcc::NAME)?;
    let (x, n) = (
        shape_of(body, body.ops[acc].operands[0]),
        shape_of(body, body.ops[acc].results[0]),
    );
    match (&x[..], &n[..]) {
        (&[kk], &[nn]) => Some(vec![kk, nn]),
        _ => None,
    }
}

/// A result of `group` that a `tg.matmul_acc` (from `split-k`) computes by adds onto a
/// value another step's group computes (not a cache updated in place): (the result's index,
/// the value its initial value is, that value's step). The value's tasks write their tiles
/// there too (the sum's initial value), so the result lives from that step on.
///
/// A sum onto another sum (`split-k` makes them where both projections of a layer are
/// split: the MLP's down projection onto the output projection's sum) starts from the inner
/// sum's initial value, and the inner sum's adders add onto it too ([`SplitKSums`]). One
/// level only: an inner sum that is itself onto a sum is not one (`split-k` puts a copy
/// between them).
pub fn accumulates_onto(
    body: &Body,
    steps: &[OpId],
    group: OpId,
) -> Option<(usize, ValueId, usize)> {
    let block = body.entry_block(group, 0)?;
    let y = *body.blocks[block].ops.last()?;
    (0..body.ops[y].operands.len()).find_map(|k| {
        let (init, s, _) = sum_start(body, steps, group, k, true)?;
        Some((k, init, s))
    })
}

/// The `tg.matmul_acc` that result `k` of `group` yields, if it does.
fn sum_op(body: &Body, group: OpId, k: usize) -> Option<OpId> {
    let block = body.entry_block(group, 0)?;
    let y = *body.blocks[block].ops.last()?;
    body.def_op(*body.ops[y].operands.get(k)?)
        .filter(|&d| body.ops[d].name == tg::MatMulAcc::NAME)
}

/// The value the sum that result `k` of `group` accumulates starts from, its step and the
/// outer value the sum adds onto: [`accumulates_onto`]'s answer for one result, and, where
/// that value is another group's sum (taken only `onto_sums`), that sum.
fn sum_start(
    body: &Body,
    steps: &[OpId],
    group: OpId,
    k: usize,
    onto_sums: bool,
) -> Option<(ValueId, usize, Option<ValueId>)> {
    let block = body.entry_block(group, 0)?;
    let acc = body.ops[sum_op(body, group, k)?].operands[2];
    let i = body.blocks[block].args.iter().position(|&a| a == acc)?;
    let outer = body.ops[group].operands[i];
    let producer = body.def_op(outer)?;
    let j = body.ops[producer]
        .results
        .iter()
        .position(|&r| r == outer)?;
    let grouped = body.entry_block(producer, 0).is_some();
    if !grouped || result_in_place(body, producer, j) {
        return None;
    }
    if sum_op(body, producer, j).is_some() {
        if !onto_sums {
            return None;
        }
        let (init, s, _) = sum_start(body, steps, producer, j, false)?;
        return Some((init, s, Some(outer)));
    }
    let s = steps.iter().position(|&o| o == producer)?;
    Some((outer, s, None))
}

/// The step's split-K sums as its tasks see them ([`accumulates_onto`]): the value each
/// sum starts from, whose tasks write their tiles into it too, and the sums onto another
/// sum, whose adders add their parts onto them too.
#[derive(Clone, Debug, Default)]
pub struct SplitKSums {
    /// A value -> the sums that start from it, in step order.
    mirrors: HashMap<ValueId, Vec<ValueId>>,
    /// A sum -> the sums onto it.
    onto: HashMap<ValueId, Vec<ValueId>>,
}

impl SplitKSums {
    /// The sums of the step function whose top-level ops are `steps`.
    pub fn of(body: &Body, steps: &[OpId]) -> SplitKSums {
        let mut sums = SplitKSums::default();
        for &op in steps {
            let Some(n) = body.entry_block(op, 0).and_then(|b| {
                let y = *body.blocks[b].ops.last()?;
                Some(body.ops[y].operands.len())
            }) else {
                continue;
            };
            // (The first result that is a sum, as `accumulates_onto` takes it.)
            let Some((k, (init, _, inner))) =
                (0..n).find_map(|k| Some((k, sum_start(body, steps, op, k, true)?)))
            else {
                continue;
            };
            let sum = body.ops[op].results[k];
            sums.mirrors.entry(init).or_default().push(sum);
            if let Some(inner) = inner {
                sums.onto.entry(inner).or_default().push(sum);
            }
        }
        sums
    }

    /// The sums that start from `v` (its tasks write their tiles there too).
    pub fn mirrors_of(&self, v: ValueId) -> &[ValueId] {
        self.mirrors.get(&v).map_or(&[], |m| &m[..])
    }

    /// The sums onto the sum `v` (its adders add their parts there too).
    pub fn onto_of(&self, v: ValueId) -> &[ValueId] {
        self.onto.get(&v).map_or(&[], |m| &m[..])
    }

    /// Every sum.
    pub fn sums(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.mirrors.values().flatten().copied()
    }
}

/// The backward slice of `tile` of result `output` of `group`.
pub fn slice(body: &Body, group: OpId, output: usize, tile: &[TileBox]) -> Result<Slice, String> {
    let block = body.entry_block(group, 0).ok_or("a group needs a body")?;
    let ops = &body.blocks[block].ops;
    let yield_op = *ops.last().ok_or("empty group")?;
    let yields = &body.ops[yield_op].operands;
    let target = *yields
        .get(output)
        .ok_or_else(|| format!("the group has no result #{output}"))?;
    let mut s = Slice::default();
    s.needs.insert(target, tile.to_vec());
    for &op in ops[..ops.len() - 1].iter().rev() {
        let data = &body.ops[op];
        let outs: Vec<Option<Region>> = data
            .results
            .iter()
            .map(|r| s.needs.get(r).cloned())
            .collect();
        if outs.iter().all(Option::is_none) {
            continue;
        }
        // A value another result of the group materialises is read back, not recomputed.
        if let Some(j) = (0..yields.len()).find(|&j| {
            j != output && data.results.contains(&yields[j]) && !result_in_place(body, group, j)
        }) {
            if data.results.len() == 1 {
                s.loaded.push((yields[j], j));
                continue;
            }
        }
        // kv_append is in place when its result only leaves the group (nothing reads the
        // updated cache inside it).
        let in_place = data.name == tg::KvAppend::NAME && {
            let r = data.results[0];
            ops.iter()
                .filter(|&&o| o != yield_op)
                .all(|&o| !body.ops[o].operands.contains(&r))
        };
        let needs = operand_needs(body, op, &outs, in_place);
        for (&v, n) in data.operands.iter().zip(needs) {
            if let Some(n) = n {
                let e = s.needs.entry(v).or_default();
                for b in n {
                    add_box(e, b);
                }
            }
        }
        s.ops.push(op);
    }
    s.ops.reverse();
    s.loaded.reverse();
    let args = &body.blocks[block].args;
    s.args = (0..args.len())
        .filter(|&i| s.needs.contains_key(&args[i]))
        .collect();
    Ok(s)
}

/// A key of a group's structure: its block arguments' types, and per op its name, attributes,
/// operands (by position in the group) and result types. Groups with one key (the same layer
/// of different depths) compute the same thing on different data.
pub fn group_signature(body: &Body, group: OpId) -> String {
    let block = body.entry_block(group, 0).expect("a group has a body");
    let mut local: HashMap<ValueId, usize> = HashMap::new();
    let mut sig = String::new();
    for &a in &body.blocks[block].args {
        local.insert(a, local.len());
        let _ = write!(sig, "{};", body.ty(a));
    }
    for &o in &body.blocks[block].ops {
        let d = &body.ops[o];
        let _ = write!(sig, "|{}", d.name);
        for (k, v) in d.attrs.iter() {
            let _ = write!(sig, " {k}={v}");
        }
        for v in &d.operands {
            let _ = write!(sig, " %{}", local.get(v).copied().unwrap_or(usize::MAX));
        }
        for &r in &d.results {
            local.insert(r, local.len());
            let _ = write!(sig, " :{}", body.ty(r));
        }
    }
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_intervals_and_boxes_convert_exactly() {
        let shape = [3, 4, 5];
        for (lo, hi) in [
            (0, 60),
            (7, 8),
            (3, 47),
            (20, 40),
            (5, 10),
            (0, 1),
            (59, 60),
        ] {
            let boxes = flat_to_boxes(&shape, lo, hi);
            let mut covered: Vec<i64> = boxes
                .iter()
                .flat_map(|b| flat_runs(&shape, b))
                .flat_map(|(a, b)| a..b)
                .collect();
            covered.sort_unstable();
            assert_eq!(
                covered,
                (lo..hi).collect::<Vec<_>>(),
                "{lo}..{hi}: {boxes:?}"
            );
        }
        assert_eq!(
            flat_runs(&shape, &vec![(0, 3), (0, 4), (0, 5)]),
            vec![(0, 60)]
        );
        assert_eq!(
            flat_runs(&shape, &vec![(1, 2), (1, 3), (0, 5)]),
            vec![(25, 35)]
        );
    }

    #[test]
    fn nested_boxes_collapse() {
        let mut r = Region::new();
        add_box(&mut r, vec![(0, 2), (0, 4)]);
        add_box(&mut r, vec![(0, 1), (1, 3)]);
        assert_eq!(r.len(), 1);
        add_box(&mut r, vec![(0, 8), (0, 8)]);
        assert_eq!(r, vec![vec![(0, 8), (0, 8)]]);
        assert_eq!(region_elements(&r), 64);
    }
}
