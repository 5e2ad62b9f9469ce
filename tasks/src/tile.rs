//! `tile`: the fused step becomes tasks. Every result of every `fused.group` is cut into
//! tiles (boxes of the result); each tile is one task that states the exact byte ranges it
//! reads and writes ([`mkc_ir::tiling::slice`] works them out through the group's ops), its
//! estimated global-memory bytes and flops; events follow from the ranges
//! ([`TaskGraph::derive_events`]). Memory comes from the memory plan: weights packed,
//! KV caches stored heads-first and positions innermost (a head's lanes over all positions
//! are one contiguous span), activations
//! in the reused workspace arena. The result is a `task.graph` op next to the function.
//!
//! How a result is cut is a small search. Each result's candidate cuts (along any axis, two
//! axes at once, rope lanes kept with their partner lanes) are priced by their slowest
//! task (bytes at an SM's share of bandwidth, arithmetic, a per-task overhead), as if every
//! task had an SM to itself; a result's menu keeps the cuts clearly faster than every cut
//! into fewer tasks. Then the results of a group that run side by side share the SMs: the
//! shortest time they can all meet with at most one task per SM, each taking the fewest
//! tasks that meet it. So a group's tasks fill one wave (a few left for a second wave would
//! double the phase). Tiles smaller than `min-tile-bytes` are not made: a task that moves
//! too little is all overhead. The pricing (the task a tile makes, a result's menu) is
//! `price.rs` beside this file.

use crate::memplan::{combine_of, plan_memory, MemoryPlan};
use mkc_ir::attr::Attr;
use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::builtin;
use mkc_ir::dialect::builtin::{first_func, weight_arg_name};
use mkc_ir::dialect::fused;
use mkc_ir::dialect::task::{BufferId, Layout, Range, Task, TaskGraph, TileBox};
use mkc_ir::dialect::task::{Place, PlaceOf, TaskProgram};
use mkc_ir::dialect::tg;
use mkc_ir::tiling::{
    accumulates_onto, full_box, group_signature, region_elements, result_in_place, slice,
    split_k_space, Region, SplitKSums,
};
use mkc_ir::EntityRef;
use mkc_ir::{Body, OpId, Target, ValueId};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;
use std::collections::HashMap;

mkc_passes::pass_options! {
    /// Options of `tile`.
    pub struct TileOptions {
        /// KV positions attention reads, for the cost estimates.
        ctx: u64 = 128 => "ctx",
        /// No tile moves fewer bytes than this (unless its result cannot be cut).
        min_tile_bytes: f64 = 16384.0 => "min-tile-bytes",
        /// The same for groups without a heavy op (no weights to stream: Qwen3's q/k norm and rope, which one SM did alone at 16384).
        min_light_tile_bytes: f64 = 1024.0 => "min-light-tile-bytes",
        /// Drop the waits another wait of the same task implies, and the counters then unawaited (fewer polls before a task, fewer atomics after it).
        prune_waits: bool = true => "prune-waits",
        /// A task moving fewer bytes than this, with one wait, runs on that event's last signal on the signalling SM, without a wait or a queue slot (Qwen3's q/k norm and rope after the qkv tiles), unless it computes attention; 0: only attention's combine does.
        last_signal_bytes: f64 = 16384.0 => "last-signal-bytes",
    }
}

mod price;
use price::{Memory, Placer};

/// Most boxes any value of a task's slice may need: the kernel's code for a task is emitted
/// per box in places, and a cut whose slices need hundreds (the ONNX attention cut into two
/// halves of its lanes, through transposes) made PTX that ptxas took a minute over.
pub const MAX_BOXES: usize = 64;

/// Most byte ranges one task may name (reads and writes; each costs the target's
/// `range_cost`).
pub const MAX_RANGES: usize = 64;

pub struct Tile {
    pub options: TileOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "tile",
        summary: "cut every fused group's results into tasks with exact byte ranges and events (adds a task.graph)",
        anchor: None,
        options: TileOptions::describe,
        statistics: &[
            ("tasks", "tasks in the program"),
            ("events", "events (counters)"),
        ],
        create: |o| {
            Ok(Box::new(Tile {
                options: TileOptions::parse(o)?,
            }))
        },
    }
}

impl Pass for Tile {
    fn run(&mut self, body: &mut Body, _op: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let func = first_func(body).ok_or_else(|| {
            Diagnostic::error(mkc_ir::Loc::default(), "tile: the module has no function")
        })?;
        let loc = body.ops[func].loc;
        let p = tile_program(body, func, &self.options)
            .map_err(|e| Diagnostic::error(loc, format!("tile: {e}")))?;
        cx.count("tasks", p.graph.tasks.len() as u64);
        cx.count("events", p.graph.events.len() as u64);
        p.store(body);
        Ok(())
    }
}

/// Cuts `0..len` into `n` near-equal parts.
fn chunks(len: i64, n: i64) -> Vec<(i64, i64)> {
    (0..n)
        .map(|i| (i * len / n, (i + 1) * len / n))
        .filter(|(a, b)| a < b)
        .collect()
}

/// Lane sets of a last axis of `len` lanes cut into `n` parts, each lane kept with the lane
/// half an axis away (rotate-half rope pairs).
fn paired_chunks(len: i64, n: i64) -> Vec<Vec<(i64, i64)>> {
    let h = len / 2;
    chunks(h, n)
        .into_iter()
        .map(|(a, b)| vec![(a, b), (a + h, b + h)])
        .collect()
}

/// One way to cut a result: per axis, the intervals (a cut is their product).
type Cut = Vec<Vec<Vec<(i64, i64)>>>;

fn tiles_of(cut: &Cut) -> Vec<Vec<TileBox>> {
    let mut out: Vec<Vec<TileBox>> = vec![vec![vec![]]];
    for axis in cut {
        let mut next = Vec::new();
        for tile in &out {
            for part in axis {
                next.push(
                    tile.iter()
                        .flat_map(|b| {
                            part.iter().map(move |&iv| {
                                let mut x = b.clone();
                                x.push(iv);
                                x
                            })
                        })
                        .collect(),
                );
            }
        }
        out = next;
    }
    out
}

/// The cuts of a result of `shape` worth pricing: whole; along one axis into each of
/// `targets` parts, and into every power-of-two chunk size that divides the axis (so a flat
/// axis can be cut on head boundaries), rope lanes kept with their partners on the last;
/// along an outer axis (heads) and the last (lanes within a head) at once.
fn candidates(shape: &[i64], targets: &[i64]) -> Vec<Cut> {
    let whole: Cut = shape.iter().map(|&d| vec![vec![(0, d)]]).collect();
    let mut out = vec![whole.clone()];
    let rank = shape.len();
    let most = targets.iter().copied().max().unwrap_or(1);
    let axis_cuts = |d: usize, n: i64| -> Vec<Vec<Vec<(i64, i64)>>> {
        let len = shape[d];
        let mut v = vec![chunks(len, n.min(len))
            .into_iter()
            .map(|c| vec![c])
            .collect()];
        // (Kept in one part, paired lanes are the whole axis as two boxes: not a cut.)
        if d + 1 == rank && len % 2 == 0 && n.min(len / 2) >= 2 {
            v.push(paired_chunks(len, n.min(len / 2)));
        }
        v
    };
    for d in 0..rank {
        if shape[d] <= 1 {
            continue;
        }
        let mut counts: Vec<i64> = targets.iter().map(|&t| t.min(shape[d])).collect();
        let mut c = 1;
        while c <= shape[d] {
            if shape[d] % c == 0 && shape[d] / c <= most {
                counts.push(shape[d] / c);
            }
            c *= 2;
        }
        counts.sort_unstable();
        counts.dedup();
        for &t in &counts {
            for c in axis_cuts(d, t) {
                let mut cut = whole.clone();
                cut[d] = c;
                out.push(cut);
            }
        }
    }
    // Two outer axes (attention's parts and heads).
    for d in 0..rank.saturating_sub(1) {
        for e in d + 1..rank.saturating_sub(1) {
            if shape[d] <= 1 || shape[e] <= 1 {
                continue;
            }
            for &t in targets {
                let n1 = shape[d].min(t);
                let n2 = ((t + n1 - 1) / n1).min(shape[e]);
                if n2 <= 1 {
                    continue;
                }
                let mut cut = whole.clone();
                cut[d] = chunks(shape[d], n1).into_iter().map(|c| vec![c]).collect();
                cut[e] = chunks(shape[e], n2).into_iter().map(|c| vec![c]).collect();
                out.push(cut);
            }
        }
    }
    // Two axes: an outer one (heads) and the last (lanes within a head).
    if rank >= 2 {
        let l = rank - 1;
        for d in 0..l {
            if shape[d] <= 1 || shape[l] <= 1 {
                continue;
            }
            for &t in targets {
                let n1 = shape[d].min(t);
                let n2 = (t + n1 - 1) / n1;
                if n2 <= 1 {
                    continue;
                }
                for c in axis_cuts(l, n2) {
                    let mut cut = whole.clone();
                    cut[d] = chunks(shape[d], n1).into_iter().map(|c| vec![c]).collect();
                    cut[l] = c;
                    out.push(cut);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// One way to cut a result, priced: its tasks and the time of the slowest (one task per SM).
#[derive(Clone)]
struct Choice {
    tasks: usize,
    time: f64,
    /// The biggest task's arithmetic.
    flops: f64,
    cut: Cut,
}

/// Picks one choice per result (each menu ordered by tasks, times falling) so that together
/// they take at most `sms` SMs and the slowest result is as fast as it can be: the shortest
/// time every result can meet within the SMs, each with the fewest tasks that meet it.
fn allot(menus: &[&[Choice]], sms: usize) -> Vec<usize> {
    let meeting = |t: f64| -> Vec<usize> {
        menus
            .iter()
            .map(|m| m.iter().position(|c| c.time <= t).unwrap_or(m.len() - 1))
            .collect()
    };
    let mut times: Vec<f64> = menus
        .iter()
        .flat_map(|m| m.iter().map(|c| c.time))
        .collect();
    times.sort_by(f64::total_cmp);
    for t in times {
        let pick = meeting(t);
        let used: usize = pick.iter().zip(menus).map(|(&i, m)| m[i].tasks).sum();
        if used <= sms {
            return pick;
        }
    }
    vec![0; menus.len()]
}

/// Builds the task program of `func` (a fused step function).
pub fn tile_program(body: &Body, func: OpId, opts: &TileOptions) -> Result<TaskProgram, String> {
    let target = Target::of(body)?;
    let plan: MemoryPlan = plan_memory(body, func)?;
    plan.check()?;
    let steps = step_ops(body, func)?;
    let mut g = TaskGraph::default();
    let placed = place_values(body, func, &steps, &plan, &mut g)?;
    let mut split_k = HashMap::new();
    for (s, &op) in steps.iter().enumerate() {
        if let Some((k, _, _)) = accumulates_onto(body, &steps, op) {
            let space = split_k_space(body, op, k).ok_or("a split-K sum is not a vector")?;
            split_k.insert((s, k), space);
        }
    }
    let pl = Placer {
        sums: SplitKSums::of(body, &steps),
        split_k,
        body,
        steps: steps.clone(),
        places: placed.places,
        // Of the buffers place_values adds, in its order.
        memory: vec![
            Memory::Weights,
            Memory::Kv,
            Memory::Activations,
            Memory::Activations,
            Memory::Weights,
        ],
        opts,
        target: &target,
    };
    // Groups of one structure (the layers) have the same menus of cuts.
    let mut menu_cache: HashMap<(String, usize), Vec<Choice>> = HashMap::new();
    for (s, &op) in steps.iter().enumerate() {
        if !tg::Constant::is(body, op) {
            tile_group(&pl, s, &mut menu_cache, &mut g)?;
        }
    }
    g.derive_events();
    if opts.prune_waits {
        g.prune_implied_waits();
    }
    run_on_last_signal(body, &steps, &mut g, opts.last_signal_bytes);
    Ok(TaskProgram {
        graph: g,
        places: placed.list,
        schedule: None,
    })
}

/// The top-level ops of `func`'s body but its return: fused groups and constants.
fn step_ops(body: &Body, func: OpId) -> Result<Vec<OpId>, String> {
    let steps = builtin::func_body(body, func)?.steps;
    if let Some(&o) = steps
        .iter()
        .find(|&&o| !fused::Group::is(body, o) && !tg::Constant::is(body, o))
    {
        return Err(format!(
            "'{}' is not in a fused.group: run 'fuse' before 'tile'",
            body.ops[o].name
        ));
    }
    Ok(steps)
}

/// The places of a function's arguments and top-level results, by value and in the
/// program's order.
#[derive(Default)]
struct Placed {
    places: HashMap<ValueId, Place>,
    list: Vec<Place>,
}

impl Placed {
    fn add(&mut self, v: ValueId, p: Place) {
        self.places.insert(v, p.clone());
        self.list.push(p);
    }
}

fn tensor_bytes(body: &Body, v: ValueId) -> u64 {
    body.ty(v).as_tensor().map_or(0, |_| body.ty(v).byte_size())
}

/// Adds the buffers (weights, kv, arena, inputs, constants) and places every argument and
/// top-level result in them.
fn place_values(
    body: &Body,
    func: OpId,
    steps: &[OpId],
    plan: &MemoryPlan,
    g: &mut TaskGraph,
) -> Result<Placed, String> {
    let weights = g.add_buffer("weights", plan.weight_bytes);
    let kv = g.add_buffer("kv", plan.cache_bytes);
    let arena = g.add_buffer("arena", plan.arena_bytes);
    let entry = body.entry_block(func, 0).expect("checked by step_ops");
    let args = &body.blocks[entry].args;
    let mut placed = Placed::default();
    let mut input_bytes = 0u64;
    // The weights of split-K products are stored [K, N]: a task's slice of K is one span.
    let transposed: Vec<ValueId> = steps
        .iter()
        .filter_map(|&op| {
            let (k, _, _) = accumulates_onto(body, steps, op)?;
            let block = body.entry_block(op, 0)?;
            let y = *body.blocks[block].ops.last()?;
            let acc = body.def_op(body.ops[y].operands[k])?;
            let w = body.ops[acc].operands[1];
            let i = body.blocks[block].args.iter().position(|&a| a == w)?;
            Some(body.ops[op].operands[i])
        })
        .collect();
    let mut inputs_later = Vec::new();
    for (i, &a) in args.iter().enumerate() {
        let of = PlaceOf::Arg(i);
        let place = if let Some(name) = weight_arg_name(body, func, i) {
            let w = plan
                .weights
                .iter()
                .find(|w| w.0 == name)
                .ok_or_else(|| format!("weight '{name}' is not in the plan"))?;
            Place {
                of,
                buffer: weights,
                offset: w.1,
                perm: if transposed.contains(&a) {
                    vec![1, 0]
                } else {
                    vec![]
                },
            }
        } else if let Some(c) = plan.caches.iter().find(|c| c.0 == a) {
            let rank = body.ty(a).as_tensor().map_or(0, |t| t.rank());
            Place {
                of,
                buffer: kv,
                offset: c.1,
                perm: cache_perm(rank),
            }
        } else {
            inputs_later.push((i, a, input_bytes));
            input_bytes += tensor_bytes(body, a).div_ceil(8) * 8;
            continue;
        };
        placed.add(a, place);
    }
    let inputs = g.add_buffer("inputs", input_bytes);
    // Constants the step function holds outside groups: written once at load, like weights,
    // into their own region (the arena is reused, so it could not keep them across steps).
    let mut constant_bytes = 0u64;
    let mut constant_at = HashMap::new();
    for &op in steps {
        if tg::Constant::is(body, op) {
            let r = body.ops[op].results[0];
            constant_at.insert(r, constant_bytes);
            constant_bytes += tensor_bytes(body, r).div_ceil(256) * 256;
        }
    }
    let constants = g.add_buffer("constants", constant_bytes);
    for (i, a, off) in inputs_later {
        let p = Place {
            of: PlaceOf::Arg(i),
            buffer: inputs,
            offset: off,
            perm: vec![],
        };
        placed.add(a, p);
    }
    let arena_at: HashMap<ValueId, u64> = plan.arena.iter().map(|p| (p.value, p.offset)).collect();
    for (s, &op) in steps.iter().enumerate() {
        if tg::Constant::is(body, op) {
            let r = body.ops[op].results[0];
            let p = Place {
                of: PlaceOf::Result {
                    group: s,
                    result: 0,
                },
                buffer: constants,
                offset: constant_at[&r],
                perm: vec![],
            };
            placed.add(r, p);
        } else {
            place_group_results(body, s, op, &arena_at, arena, &mut placed)?;
        }
    }
    Ok(placed)
}

/// [ctx, heads, lanes...] is stored [heads, lanes..., ctx]: a head, or any lane range of it
/// over all positions, is one contiguous span. Tiles that write one row in place declare
/// all positions (the row is known only at run time), so this is what lets a cut along
/// lanes declare one range instead of one per position. (Attention reads a head's K and V
/// as [lanes, ctx]: every position's score is a dot product down the columns.)
fn cache_perm(rank: usize) -> Vec<usize> {
    if rank >= 3 {
        let mut p: Vec<usize> = (1..rank).collect();
        p.push(0);
        p
    } else {
        vec![]
    }
}

/// Places group `s`'s results: in the arena where the memory plan put them, or, for a
/// cache updated in place, where that cache lives.
fn place_group_results(
    body: &Body,
    s: usize,
    op: OpId,
    arena_at: &HashMap<ValueId, u64>,
    arena: BufferId,
    placed: &mut Placed,
) -> Result<(), String> {
    let block = body.entry_block(op, 0).ok_or("a group has no body")?;
    let yields = body.ops[*body.blocks[block].ops.last().ok_or("empty group")?]
        .operands
        .clone();
    for (k, &r) in body.ops[op].results.iter().enumerate() {
        let of = PlaceOf::Result {
            group: s,
            result: k,
        };
        let place = if result_in_place(body, op, k) {
            // The cache it updates: follow the kv_append's cache operand out of the group.
            let ka = body
                .def_op(yields[k])
                .expect("in place results are kv_append");
            let inner = body.ops[ka].operands[0];
            let i = body.blocks[block]
                .args
                .iter()
                .position(|&x| x == inner)
                .ok_or("a kv_append updates a cache made inside its group")?;
            let outer = body.ops[op].operands[i];
            let p = placed
                .places
                .get(&outer)
                .ok_or("a kv_append's cache has no place")?;
            Place { of, ..p.clone() }
        } else {
            let off = *arena_at
                .get(&r)
                .ok_or_else(|| format!("result {k} of group {s} is not in the memory plan"))?;
            Place {
                of,
                buffer: arena,
                offset: off,
                perm: vec![],
            }
        };
        placed.add(r, place);
    }
    Ok(())
}

/// Cuts group `s`'s results into tasks: each result's menu of cuts (shared by groups of
/// one structure), then, level by level (a result that reads another back runs after it),
/// the cuts that share the SMs best.
fn tile_group(
    pl: &Placer,
    s: usize,
    menu_cache: &mut HashMap<(String, usize), Vec<Choice>>,
    g: &mut TaskGraph,
) -> Result<(), String> {
    let (body, target) = (pl.body, pl.target);
    let op = pl.steps[s];
    let per_sm = target.bandwidth / target.sms as f64;
    let results = &body.ops[op].results;
    // Results in the order their values are defined: one read back by another comes first.
    let block = body.entry_block(op, 0).expect("checked");
    let ops = &body.blocks[block].ops;
    let yields = &body.ops[*ops.last().expect("checked")].operands;
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by_key(|&k| {
        body.def_op(yields[k])
            .map_or(0, |o| ops.iter().position(|&x| x == o).unwrap_or(0) + 1)
    });
    let shape = |k: usize| {
        if let Some(space) = pl.split_k.get(&(s, k)) {
            return space.clone();
        }
        body.ty(results[k])
            .as_tensor()
            .map(|t| t.shape.clone())
            .unwrap_or_default()
    };
    // Results that read another result back run after it: each such level of results
    // has every SM to itself.
    let mut level = vec![0usize; results.len()];
    for &k in &order {
        let sl = slice(body, op, k, &[full_box(&shape(k))])?;
        level[k] = sl
            .loaded
            .iter()
            .map(|&(_, j)| level[j] + 1)
            .max()
            .unwrap_or(0);
    }
    let signature = group_signature(body, op);
    let mut menus: HashMap<usize, Vec<Choice>> = HashMap::new();
    for &k in &order {
        let key = (signature.clone(), k);
        let menu = match menu_cache.get(&key) {
            Some(m) => m.clone(),
            None => {
                let m = pl.menu(s, k, &shape(k), result_in_place(body, op, k), per_sm)?;
                menu_cache.insert(key, m.clone());
                m
            }
        };
        menus.insert(k, menu);
    }
    // Attention's combine: one tile per head range of the parts' tiles, so that each
    // runs on the last signal of its heads' parts (see `run_on_last_signal`).
    if results.len() == 1 {
        if let Some(tiles) = combine_tiles(body, &pl.steps, op, g) {
            for tile in tiles {
                g.add_task(pl.task(s, 0, tile)?);
            }
            return Ok(());
        }
    }
    let top = level.iter().copied().max().unwrap_or(0);
    for l in 0..=top {
        let ks: Vec<usize> = order.iter().copied().filter(|&k| level[k] == l).collect();
        let picks = allot(
            &ks.iter().map(|k| &menus[k][..]).collect::<Vec<_>>(),
            target.sms as usize,
        );
        for (&k, pick) in ks.iter().zip(picks) {
            for tile in tiles_of(&menus[&k][pick].cut) {
                g.add_task(pl.task(s, k, tile)?);
            }
        }
    }
    Ok(())
}

/// Tiles of a group that computes attention's combine: one per range of heads that the
/// parts' tiles cut (their boxes' second axis), each the row-major box of its heads in the
/// group's result. None when the group is not that, or the heads' ranges overlap or leave
/// gaps, or a range is not one box of the result.
fn combine_tiles(
    body: &Body,
    steps: &[OpId],
    group: OpId,
    g: &TaskGraph,
) -> Option<Vec<Vec<TileBox>>> {
    let (comb, producer) = combine_of(body, steps, group)?;
    let out = body
        .ty(body.ops[comb].results[0])
        .as_tensor()?
        .shape
        .clone();
    let (heads, dim) = (*out.first()?, *out.get(1)?);
    let mut ranges: Vec<(i64, i64)> = g
        .tasks
        .values()
        .filter(|t| t.group == producer)
        .flat_map(|t| t.tile.iter().filter_map(|b| b.get(1).copied()))
        .collect();
    ranges.sort_unstable();
    ranges.dedup();
    if ranges.len() < 2 || ranges.first()?.0 != 0 || ranges.last()?.1 != heads {
        return None;
    }
    if ranges.windows(2).any(|w| w[0].1 != w[1].0) {
        return None;
    }
    let result = body.ops[group].results[0];
    let shape = body.ty(result).as_tensor()?.shape.clone();
    if shape.iter().product::<i64>() != heads * dim {
        return None;
    }
    // The flat elements h0 * dim .. h1 * dim of the row-major result, as one box.
    let as_box = |(h0, h1): (i64, i64)| -> Option<TileBox> {
        let (a, b) = (h0 * dim, h1 * dim - 1);
        let mut lo = vec![0; shape.len()];
        let mut hi = vec![0; shape.len()];
        let (mut x, mut y) = (a, b);
        for d in (0..shape.len()).rev() {
            lo[d] = x % shape[d];
            hi[d] = y % shape[d];
            x /= shape[d];
            y /= shape[d];
        }
        let bx: TileBox = lo.iter().zip(&hi).map(|(&l, &h)| (l, h + 1)).collect();
        let n: i64 = bx.iter().map(|(l, h)| h - l).product();
        (bx.iter().all(|(l, h)| l < h) && n == (h1 - h0) * dim).then_some(bx)
    };
    ranges
        .into_iter()
        .map(|r| as_box(r).map(|b| vec![b]))
        .collect()
}

/// Whether `group` (a `fused.group`) computes decode attention: its tasks' work grows with
/// the step's position, which the estimates (made for `ctx` positions) do not see.
fn computes_attention(body: &Body, group: OpId) -> bool {
    body.entry_block(group, 0).is_some_and(|b| {
        body.blocks[b].ops.iter().any(|&o| {
            matches!(
                body.ops[o].name.as_str(),
                tg::Attention::NAME | tg::AttentionPartial::NAME
            )
        })
    })
}

/// Marks tasks to run on the last signal of an event (`Task::on_last_signal`):
///
/// - attention's combine: a combine task whose one wait on the parts' tasks is an event of
///   those parts alone, and whose other waits (reuse of the memory it writes) are already
///   ready by then (every task they wait for comes before one of the parts), which are
///   dropped;
/// - a small task (fewer bytes than `small_bytes`) with one wait, unless it computes
///   attention (small at the estimates' `ctx` positions, not at the cache's length).
///
/// An event runs at most one task, a task signals at most one event that runs one, and a
/// task run so makes none run in turn.
/// Other tasks stay in queues.
fn run_on_last_signal(body: &Body, steps: &[OpId], g: &mut TaskGraph, small_bytes: f64) {
    let mut producer_of: HashMap<usize, usize> = HashMap::new();
    for (s, &op) in steps.iter().enumerate() {
        if body.ops[op].name == fused::Group::NAME {
            if let Some((_, p)) = combine_of(body, steps, op) {
                producer_of.insert(s, p);
            }
        }
    }
    // (Per step: whether its group computes attention.)
    let attention: Vec<bool> = steps
        .iter()
        .map(|&op| computes_attention(body, op))
        .collect();
    let signallers = g.signallers_by_event();
    let ids: Vec<mkc_ir::dialect::task::TaskId> = g.tasks.keys().collect();
    let mut runs_one = vec![false; g.events.len()];
    for &t in &ids {
        let task = &g.tasks[t];
        let claims: Vec<_> = match producer_of.get(&task.group) {
            Some(&producer) => task
                .waits
                .iter()
                .copied()
                .filter(|e| {
                    signallers[e.index()]
                        .iter()
                        .all(|&u| g.tasks[u].group == producer)
                })
                .collect(),
            // (Attention's tasks are small by their estimate at `ctx` positions, but at
            // thousands they are a phase's longest: run on another task's SM, several
            // stacked up behind one producer.)
            None if task.bytes < small_bytes
                && !attention.get(task.group).copied().unwrap_or(false) =>
            {
                task.waits.clone()
            }
            None => continue,
        };
        let [claim] = claims[..] else {
            continue;
        };
        // The parts it reads must all signal the claim (not some other event too).
        let parts = &signallers[claim.index()];
        let others: Vec<_> = task.waits.iter().copied().filter(|&e| e != claim).collect();
        let needed: Vec<mkc_ir::dialect::task::TaskId> = others
            .iter()
            .flat_map(|e| signallers[e.index()].iter().copied())
            .collect();
        // No chains: a task run on a last signal makes none run in turn.
        if runs_one[claim.index()]
            || parts.iter().any(|&u| {
                g.tasks[u].on_last_signal || g.tasks[u].signals.iter().any(|e| runs_one[e.index()])
            })
            || task.signals.iter().any(|e| runs_one[e.index()])
            || !all_before(g, &signallers, parts, &needed)
        {
            continue;
        }
        runs_one[claim.index()] = true;
        let task = &mut g.tasks[t];
        task.waits = vec![claim];
        task.on_last_signal = true;
    }
}

/// Whether every task of `needed` has finished once all of `parts` have: each is one of
/// them or a task one of them waits for, directly or not. (A walk back from the parts
/// through the signallers of their waits, no further back than the earliest task needed:
/// tasks wait only for tasks before them.)
fn all_before(
    g: &TaskGraph,
    signallers: &[Vec<mkc_ir::dialect::task::TaskId>],
    parts: &[mkc_ir::dialect::task::TaskId],
    needed: &[mkc_ir::dialect::task::TaskId],
) -> bool {
    let Some(&earliest) = needed.iter().min() else {
        return true;
    };
    let mut left: std::collections::HashSet<_> = needed.iter().copied().collect();
    let mut seen: std::collections::HashSet<_> = parts.iter().copied().collect();
    let mut stack: Vec<_> = parts.to_vec();
    while let Some(t) = stack.pop() {
        left.remove(&t);
        if left.is_empty() {
            return true;
        }
        for e in &g.tasks[t].waits {
            for &u in &signallers[e.index()] {
                if u >= earliest && seen.insert(u) {
                    stack.push(u);
                }
            }
        }
    }
    left.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_axis() {
        assert_eq!(chunks(10, 3), vec![(0, 3), (3, 6), (6, 10)]);
        assert_eq!(chunks(2, 4), vec![(0, 1), (1, 2)]);
        assert_eq!(
            paired_chunks(8, 2),
            vec![vec![(0, 2), (4, 6)], vec![(2, 4), (6, 8)]]
        );
        let cut: Cut = vec![vec![vec![(0, 1)], vec![(1, 2)]], paired_chunks(4, 2)];
        assert!(candidates(&[4], &[2, 2, 4]).windows(2).all(|w| w[0] < w[1]));
        assert_eq!(tiles_of(&cut).len(), 4);
        assert_eq!(
            tiles_of(&cut)[1],
            vec![vec![(0, 1), (1, 2)], vec![(0, 1), (3, 4)]]
        );
    }
}

#[cfg(test)]
mod last_signal {
    use super::*;
    use mkc_ir::dialect::task::{Range, TaskId};

    /// a writes x; b reads x, writes y; c reads y; d writes z (unrelated).
    fn chain() -> (TaskGraph, Vec<Vec<TaskId>>) {
        let mut g = TaskGraph::default();
        let buf = g.add_buffer("arena", 64);
        let r = |a: u64| Range::new(buf, a, a + 16);
        for (reads, writes) in [
            (vec![], vec![r(0)]),
            (vec![r(0)], vec![r(16)]),
            (vec![r(16)], vec![]),
            (vec![], vec![r(32)]),
        ] {
            g.add_task(Task {
                kind: "k".into(),
                reads,
                writes,
                ..Default::default()
            });
        }
        g.derive_events();
        let signallers = g.signallers_by_event();
        (g, signallers)
    }

    #[test]
    fn a_wait_is_implied_only_by_tasks_the_parts_wait_for() {
        let (g, sig) = chain();
        let t = TaskId::from_u32;
        // c's producers: b, and (through b's wait) a.
        assert!(all_before(&g, &sig, &[t(2)], &[t(0), t(1)]));
        assert!(all_before(&g, &sig, &[t(2)], &[]));
        // d is no ancestor of c.
        assert!(!all_before(&g, &sig, &[t(2)], &[t(3)]));
        assert!(!all_before(&g, &sig, &[t(1)], &[t(0), t(3)]));
    }

    #[test]
    fn a_small_task_with_one_wait_runs_on_its_last_signal_but_never_in_a_chain() {
        let t = TaskId::from_u32;
        let (mut g, _) = chain();
        run_on_last_signal(&Body::default(), &[], &mut g, 16384.0);
        g.check_events().unwrap();
        // b (one wait, on a) runs on a's signal; c waits on b, which runs on a signal
        // itself: c stays in a queue.
        assert!(g.tasks[t(1)].on_last_signal);
        assert!(!g.tasks[t(2)].on_last_signal && !g.tasks[t(0)].on_last_signal);
        // Tasks that move more bytes than the bound, or a bound of 0, stay in queues.
        for (bytes, bound) in [(1e6, 16384.0), (1.0, 0.0)] {
            let (mut g, _) = chain();
            for task in g.tasks.values_mut() {
                task.bytes = bytes;
            }
            run_on_last_signal(&Body::default(), &[], &mut g, bound);
            assert!(g.tasks.values().all(|task| !task.on_last_signal));
        }
    }
}

#[cfg(test)]
mod allotment {
    use super::*;

    fn menu(opts: &[(usize, f64)]) -> Vec<Choice> {
        opts.iter()
            .map(|&(tasks, time)| Choice {
                tasks,
                time,
                flops: 0.0,
                cut: vec![],
            })
            .collect()
    }

    #[test]
    fn the_slowest_result_gets_the_sms_it_needs() {
        // q: 1, 32, 64 or 96 tasks; k and v: 1, 16 or 24. With 132 SMs, 96 + 24 + 24 does
        // not fit: the best that fits is 128, q's 64 tasks, with k and v at 24 tasks each.
        let q = menu(&[(1, 8000.0), (32, 256.0), (64, 128.0), (96, 85.0)]);
        let k = menu(&[(1, 2000.0), (16, 137.0), (24, 91.0)]);
        let v = k.clone();
        assert_eq!(allot(&[&q, &k, &v], 132), vec![2, 2, 2]);
        // k is as slow as q at 16 tasks: then 16 is all it takes.
        let k = menu(&[(1, 2000.0), (16, 128.0), (24, 91.0)]);
        assert_eq!(allot(&[&q, &k, &k], 132), vec![2, 1, 1]);
        // With 144 SMs everything takes its finest cut.
        assert_eq!(allot(&[&q, &k, &v], 144), vec![3, 2, 2]);
        // Too few SMs for even one task each: one task each.
        assert_eq!(allot(&[&q, &k, &v], 2), vec![0, 0, 0]);
    }

    #[test]
    fn a_group_takes_one_wave() {
        // 1B-like q/k/v shapes on 132 SMs: no group has more tasks than SMs.
        let q = menu(&[
            (1, 8000.0),
            (32, 256.0),
            (64, 128.0),
            (96, 85.0),
            (128, 64.0),
        ]);
        let k = menu(&[(1, 2000.0), (8, 250.0), (16, 137.0), (24, 91.0), (32, 68.0)]);
        let picks = allot(&[&q, &k, &k], 132);
        let used: usize = picks
            .iter()
            .zip([&q, &k, &k])
            .map(|(&i, m)| m[i].tasks)
            .sum();
        assert!(used <= 132, "{picks:?} uses {used} SMs");
    }
}

#[cfg(test)]
mod simulated {
    use mkc_ir::dialect::task::TaskProgram;
    use mkc_ir::weights::{RawTensor, WeightSource};
    use mkc_ir::{Body, ElemType};
    use mkc_runtime::sim::SimError;
    use mkc_runtime::{Interpreter, Simulator, Tensor};
    use std::borrow::Cow;

    /// An MLP block with a residual: rms_norm, gate/up, silu * up, down, add.
    const MLP: &str = r#"
    func.func @step(%x: tensor<64xf32>,
                    %wn: tensor<64xbf16> {mkc.weight = "n"},
                    %wg: tensor<96x64xbf16> {mkc.weight = "g"},
                    %wu: tensor<96x64xbf16> {mkc.weight = "u"},
                    %wd: tensor<64x96xbf16> {mkc.weight = "d"}) -> tensor<64xf32> {
      %h = "tg.rms_norm"(%x, %wn) {axis = 0 : i64, epsilon = 1.0e-6 : f64} : (tensor<64xf32>, tensor<64xbf16>) -> tensor<64xf32>
      %g = "tg.matmul"(%h, %wg) {transpose_b = true} : (tensor<64xf32>, tensor<96x64xbf16>) -> tensor<96xf32>
      %s = "tg.silu"(%g) : (tensor<96xf32>) -> tensor<96xf32>
      %u = "tg.matmul"(%h, %wu) {transpose_b = true} : (tensor<64xf32>, tensor<96x64xbf16>) -> tensor<96xf32>
      %m = "tg.mul"(%u, %s) : (tensor<96xf32>, tensor<96xf32>) -> tensor<96xf32>
      %d = "tg.matmul"(%m, %wd) {transpose_b = true} : (tensor<96xf32>, tensor<64x96xbf16>) -> tensor<64xf32>
      %y = "tg.add"(%x, %d) : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
      func.return %y : tensor<64xf32>
    }"#;

    /// Small dyadic values (exact in bf16), different per tensor.
    struct Weights;

    impl WeightSource for Weights {
        fn raw(&self, name: &str) -> Result<RawTensor<'_>, String> {
            let shape = match name {
                "n" => vec![64],
                "g" | "u" => vec![96, 64],
                "d" => vec![64, 96],
                _ => return Err(format!("no weight '{name}'")),
            };
            let seed = name.as_bytes()[0] as i64;
            let n: i64 = shape.iter().product();
            let bytes = (0..n)
                .flat_map(|i| {
                    let v = ((i * 7 + seed) % 17 - 8) as f32 / 16.0;
                    ((v.to_bits() >> 16) as u16).to_le_bytes()
                })
                .collect();
            Ok(RawTensor {
                elem: ElemType::BF16,
                shape,
                bytes: Cow::Owned(bytes),
            })
        }
    }

    fn scheduled() -> Body {
        let mut body = mkc_ir::parse_text("t.mlir", MLP).unwrap_or_else(|e| panic!("{e}"));
        let mut passes = mkc_passes::PassRegistry::new();
        mkc_passes::register_passes(&mut passes);
        mkc_fusion::register_passes(&mut passes);
        crate::register_passes(&mut passes);
        mkc_passes::driver::run_pipeline(
            &mut body,
            "builtin.module(attach-target{sms=8},canonicalize,fuse,cse,dce,tile{min-tile-bytes=256},schedule)",
            &passes,
        )
        .unwrap();
        body
    }

    fn input() -> Tensor {
        Tensor::from_fn(mkc_ir::TensorType::new([64], ElemType::F32), |i| {
            mkc_ir::dialect::tg::elementwise::Scalar::F((i as f64 - 30.0) / 8.0)
        })
    }

    #[test]
    fn the_scheduled_program_computes_what_the_fused_function_does() {
        let body = scheduled();
        let p = TaskProgram::from_body(&body).unwrap();
        // Both groups are cut, and a down tile waits for gate/up tiles, not for all of them
        // one by one.
        assert!(p.graph.tasks.len() >= 6, "{} tasks", p.graph.tasks.len());
        let mut interp = Interpreter::new(&body, &Weights);
        let func = interp.func("step").unwrap();
        let want = interp.call(func, vec![input()]).unwrap();
        for seed in 0..8 {
            let mut sim = Simulator::new(&body, &Weights, seed).unwrap();
            for _ in 0..2 {
                let got = sim.call(&[input()]).unwrap();
                assert_eq!(got, want, "seed {seed}");
            }
        }
    }

    /// The first task of the last group (a down-projection tile) that runs from a queue.
    fn down_tile(p: &TaskProgram) -> mkc_ir::dialect::task::TaskId {
        let last = p.graph.tasks.values().map(|t| t.group).max().unwrap();
        p.graph
            .tasks
            .iter()
            .find(|(_, t)| t.group == last && !t.on_last_signal)
            .map(|(id, _)| id)
            .unwrap()
    }

    #[test]
    fn a_removed_wait_is_a_missing_dependency() {
        let mut body = scheduled();
        let mut p = TaskProgram::from_body(&body).unwrap();
        let t = down_tile(&p);
        assert!(!p.graph.tasks[t].waits.is_empty());
        p.graph.tasks[t].waits.clear();
        p.store(&mut body);
        let errs: Vec<SimError> = (0..40)
            .filter_map(|seed| {
                Simulator::new(&body, &Weights, seed)
                    .unwrap()
                    .call(&[input()])
                    .err()
            })
            .collect();
        assert!(!errs.is_empty(), "no interleaving ran the tile early");
        let SimError::MissingDependency(m) = &errs[0] else {
            panic!("{}", errs[0])
        };
        assert!(m.contains(&format!("{t} (proj_residual)")), "{m}");
    }

    #[test]
    fn a_read_the_task_does_not_declare_is_caught() {
        let mut body = scheduled();
        let mut p = TaskProgram::from_body(&body).unwrap();
        let t = down_tile(&p);
        // Drop its weight rows (weights have no producers, so only the arithmetic notices).
        let weights = p
            .graph
            .buffers
            .keys()
            .find(|&b| p.graph.buffers[b].name == "weights")
            .unwrap();
        p.graph.tasks[t].reads.retain(|r| r.buffer != weights);
        p.store(&mut body);
        let e = Simulator::new(&body, &Weights, 0)
            .unwrap()
            .call(&[input()])
            .unwrap_err();
        assert!(
            e.to_string().contains(&format!("{t} (proj_residual"))
                && e.to_string().contains("reads do not declare"),
            "{e}"
        );
        // A write outside its declared ranges is caught too.
        let mut body = scheduled();
        let mut p = TaskProgram::from_body(&body).unwrap();
        let t = down_tile(&p);
        p.graph.tasks[t].writes[0].end -= 4;
        p.store(&mut body);
        let e = Simulator::new(&body, &Weights, 0)
            .unwrap()
            .call(&[input()])
            .unwrap_err();
        assert!(
            e.to_string().contains("which its writes do not declare"),
            "{e}"
        );
    }
}
