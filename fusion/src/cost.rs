//! The fusion cost model. A fused group is one task kind of the megakernel; the model
//! charges each group
//!
//! ```text
//! cost(g) = sync                                  one dependency wait + signal per group
//!         + bytes_in(g) + bytes_out(g)            global-memory traffic across its boundary
//!         + unsplit * bytes(g) * (1 - p(g)/sms)   when its parallelism p(g) < the SM count
//! ```
//!
//! in byte-equivalents. `bytes_in` counts every distinct value the group reads from outside
//! (weights included: they stream through global memory once per step), `bytes_out` every
//! value it hands to another group or returns. Fusing two groups removes the intermediate
//! write and read and one synchronisation, which is what the fusion rules exploit; the
//! penalty keeps a group whose work cannot spread over all SMs from looking free.

use mkc_ir::attr::Attr;
use mkc_ir::dialect::tg;
use mkc_ir::{Body, OpId, Type, ValueId};
use std::collections::HashSet;

/// The model's constants.
#[derive(Clone, Debug, PartialEq)]
pub struct CostModel {
    /// Byte-equivalent of one group's synchronisation (a wait on an event and a signal).
    pub sync: f64,
    /// Streaming multiprocessors the work should spread over.
    pub sms: u64,
    /// Penalty factor for groups with less parallelism than SMs.
    pub unsplit: f64,
}

impl CostModel {
    /// The model for `target`: a group's synchronisation is a grid-wide wait's bytes at its
    /// bandwidth, and the work should spread over its SMs.
    pub fn for_target(target: &mkc_ir::Target, unsplit: f64) -> CostModel {
        CostModel {
            sync: target.grid_sync * target.bandwidth,
            sms: target.sms as u64,
            unsplit,
        }
    }
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel::for_target(&mkc_ir::Target::h100(), 1.0)
    }
}

/// Independent units of work an op offers (how many SMs could share it).
pub fn parallelism(body: &Body, op: OpId) -> u64 {
    let data = &body.ops[op];
    let out = data.results.first().map(|&r| body.ty(r));
    let elems = out
        .and_then(Type::as_tensor)
        .map_or(1, |t| t.num_elements());
    match data.name.as_str() {
        // One output row (of a weight matrix) per unit: matvec tiles split over rows.
        tg::MatMul::NAME => elems,
        // Heads (times query rows, or parts of the context): each is an independent softmax.
        tg::Attention::NAME | tg::AttentionPartial::NAME | tg::Sdpa::NAME => {
            out.and_then(Type::as_tensor).map_or(1, |t| {
                t.shape[..t.rank().saturating_sub(1)]
                    .iter()
                    .product::<i64>()
                    .max(1) as u64
            })
        }
        _ => elems.div_ceil(256).max(1),
    }
}

/// Elements one instance of a reduction reads (the reduced extent).
pub(crate) fn reduced_extent(body: &Body, op: OpId) -> u64 {
    let data = &body.ops[op];
    let Some(t) = data.operands.first().and_then(|&v| body.ty(v).as_tensor()) else {
        return 1;
    };
    let axis = data.attrs.get("axis").and_then(Attr::as_int);
    let axes: Vec<usize> = match (data.name.as_str(), axis) {
        (tg::RmsNorm::NAME | tg::LayerNorm::NAME, Some(a)) => (a as usize..t.rank()).collect(),
        (_, Some(a)) => vec![a as usize],
        _ => data
            .attrs
            .get("axes")
            .and_then(Attr::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Attr::as_int)
                    .map(|x| x as usize)
                    .collect()
            })
            .unwrap_or_default(),
    };
    axes.iter()
        .filter_map(|&d| t.shape.get(d))
        .map(|&d| d.max(0) as u64)
        .product()
}

/// Independent units of work a group of ops offers. A group with heavy ops offers what its
/// most constrained heavy op does: a reduction inside the group over part of a heavy op's
/// output (q/k's per-head norm) needs that whole part in one task, so the heavy op splits
/// into (its units / the reduced extent) at most. A group of light ops offers what its
/// widest op does. (Argmax is exempt: tasks do it in two phases.)
pub fn group_parallelism(body: &Body, members: &[OpId]) -> u64 {
    let heavy: Vec<OpId> = members
        .iter()
        .copied()
        .filter(|&o| crate::fuse::is_heavy(&body.ops[o].name))
        .collect();
    if heavy.is_empty() {
        return members
            .iter()
            .map(|&o| parallelism(body, o))
            .max()
            .unwrap_or(1);
    }
    let member: HashSet<OpId> = members.iter().copied().collect();
    heavy
        .iter()
        .map(|&h| {
            // The largest extent a reduction reached from h inside the group reduces over.
            let mut widest = 1;
            let mut stack = body.ops[h].results.clone();
            let mut seen = HashSet::new();
            while let Some(v) = stack.pop() {
                for &o in members {
                    if !body.ops[o].operands.contains(&v) || !seen.insert(o) {
                        continue;
                    }
                    let name = body.ops[o].name.as_str();
                    if crate::fuse::is_reduction(name) && name != tg::ArgMax::NAME {
                        widest = widest.max(reduced_extent(body, o));
                    }
                    if !crate::fuse::is_heavy(name) && member.contains(&o) {
                        stack.extend(body.ops[o].results.iter().copied());
                    }
                }
            }
            (parallelism(body, h) / widest).max(1)
        })
        .min()
        .unwrap_or(1)
}

impl CostModel {
    /// The cost of one group: its synchronisation, the bytes crossing its boundary, and the
    /// penalty when it cannot spread over every SM.
    pub fn group(&self, bytes_in: f64, bytes_out: f64, work_bytes: f64, parallelism: u64) -> f64 {
        let p = (parallelism as f64 / self.sms as f64).min(1.0);
        self.sync + bytes_in + bytes_out + self.unsplit * work_bytes * (1.0 - p)
    }

    /// The cost of a function partitioned into groups (`group_of[i]` for the i-th op of
    /// `ops`); values of `outputs` leave the function.
    pub fn program(
        &self,
        body: &Body,
        ops: &[OpId],
        group_of: &[usize],
        outputs: &[ValueId],
    ) -> f64 {
        let n = group_of.iter().copied().max().map_or(0, |m| m + 1);
        let mut total = 0.0;
        for g in 0..n {
            let members: Vec<OpId> = ops
                .iter()
                .zip(group_of)
                .filter(|(_, &k)| k == g)
                .map(|(&o, _)| o)
                .collect();
            if members.is_empty() {
                continue;
            }
            let inside: HashSet<ValueId> = members
                .iter()
                .flat_map(|&o| body.ops[o].results.iter().copied())
                .collect();
            let mut seen = HashSet::new();
            let bytes_in: f64 = members
                .iter()
                .flat_map(|&o| body.ops[o].operands.iter().copied())
                .filter(|v| !inside.contains(v) && seen.insert(*v))
                .map(|v| body.ty(v).byte_size() as f64)
                .sum();
            let used_outside = |v: &ValueId| {
                outputs.contains(v)
                    || ops
                        .iter()
                        .zip(group_of)
                        .any(|(&o, &k)| k != g && body.ops[o].operands.contains(v))
            };
            let bytes_out: f64 = inside
                .iter()
                .filter(|v| used_outside(v))
                .map(|&v| body.ty(v).byte_size() as f64)
                .sum();
            let work: f64 = bytes_in + bytes_out;
            let par = group_parallelism(body, &members);
            total += self.group(bytes_in, bytes_out, work, par);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusing_two_groups_saves_their_intermediate_and_a_sync() {
        let m = CostModel {
            sync: 100.0,
            sms: 4,
            unsplit: 1.0,
        };
        // a -> [g1] -> t -> [g2] -> out, all splittable.
        let separate = m.group(10.0, 40.0, 50.0, 4) + m.group(40.0, 10.0, 50.0, 4);
        let fused = m.group(10.0, 10.0, 20.0, 4);
        assert_eq!(separate - fused, 100.0 + 80.0);
    }

    #[test]
    fn groups_that_cannot_fill_the_sms_pay_a_penalty() {
        let m = CostModel {
            sync: 0.0,
            sms: 100,
            unsplit: 1.0,
        };
        assert_eq!(m.group(50.0, 50.0, 100.0, 100), 100.0);
        assert_eq!(m.group(50.0, 50.0, 100.0, 25), 175.0);
        assert_eq!(m.group(50.0, 50.0, 100.0, 1000), 100.0);
    }
}
