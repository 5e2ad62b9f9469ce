//! `tile`'s pricing: the places of a step's values as the tasks see them ([`Placer`]), the
//! task a tile makes (its byte ranges, adds, estimated bytes and flops) and each result's
//! menu of cuts priced by its slowest task.

use super::*;

/// What kind of memory a buffer is, for pricing bytes.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Memory {
    Weights,
    Kv,
    Activations,
}

pub(super) struct Placer<'a> {
    pub(super) body: &'a Body,
    pub(super) steps: Vec<OpId>,
    /// Place of every function argument and top-level result.
    pub(super) places: HashMap<ValueId, Place>,
    pub(super) memory: Vec<Memory>,
    pub(super) opts: &'a TileOptions,
    pub(super) target: &'a Target,
    /// The split-K sums: what each starts from, and the sums onto a sum.
    pub(super) sums: SplitKSums,
    /// (step, result) of the sums split-K products accumulate: tiled over the product's
    /// [K, N] ([`mkc_ir::dialect::tg::SPLIT_K`] boxes), each tile adding its part.
    pub(super) split_k: HashMap<(usize, usize), Vec<i64>>,
}

impl Placer<'_> {
    pub(super) fn layout(&self, v: ValueId) -> Result<Layout, String> {
        let p = self
            .places
            .get(&v)
            .ok_or_else(|| format!("{v} has no place in memory"))?;
        let t = self
            .body
            .ty(v)
            .as_tensor()
            .ok_or_else(|| format!("{v} is not a tensor"))?;
        let mut l = Layout::of_type(p.buffer, p.offset, t);
        if !p.perm.is_empty() {
            l.perm = p.perm.clone();
        }
        Ok(l)
    }

    pub(super) fn ranges(
        &self,
        v: ValueId,
        r: &Region,
        out: &mut Vec<Range>,
    ) -> Result<(), String> {
        let l = self.layout(v)?;
        for b in r {
            out.extend(l.ranges(b));
        }
        Ok(())
    }

    /// The K a split-K part of group `s` must start and end on: its weight's block size
    /// (the largest of its sums' block weights), else 1.
    fn split_k_block(&self, s: usize) -> i64 {
        let group = self.steps[s];
        let Some(entry) = self.body.entry_block(group, 0) else {
            return 1;
        };
        self.body.blocks[entry]
            .ops
            .iter()
            .filter(|&&o| self.body.ops[o].name == mkc_ir::dialect::tg::MatMulAcc::NAME)
            .filter_map(|&o| self.body.ty(self.body.ops[o].operands[1]).as_tensor())
            .filter_map(|t| match t.elem {
                mkc_ir::ElemType::Block(f) => Some(f.block_elems() as i64),
                _ => None,
            })
            .max()
            .unwrap_or(1)
    }

    /// The cuts of result `k` of step `s` (`shape`) into at most one task per SM, priced by
    /// their slowest task (its bytes at an SM's share of bandwidth, its arithmetic, the fixed
    /// costs), keeping only those clearly faster than every cut into fewer tasks, in order
    /// of their tasks.
    pub(super) fn menu(
        &self,
        s: usize,
        k: usize,
        shape: &[i64],
        in_place: bool,
        per_sm: f64,
    ) -> Result<Vec<Choice>, String> {
        let sms = self.target.sms as i64;
        let mut targets: Vec<i64> = (1..=16.min(sms))
            .chain((20..=sms).step_by(4))
            .chain([sms])
            .collect();
        targets.dedup();
        let whole = self.task(s, k, vec![full_box(shape)])?.bytes;
        let group = self.steps[s];
        if self.body.entry_block(group, 0).is_none() {
            return Err("a group has no body".into());
        }
        let attention = computes_attention(self.body, group);
        let heavy = self.body.walk(group).iter().any(|&o| {
            mkc_ir::registry::Registry::builtin()
                .has_trait(&self.body.ops[o].name, mkc_ir::registry::Traits::HEAVY)
        });
        let min_bytes = if heavy {
            self.opts.min_tile_bytes
        } else {
            self.opts.min_light_tile_bytes
        };
        // Tasks compute in f32, so their flops are not free next to their bytes (attention
        // over a context moves few bytes for its arithmetic).
        let rate = if attention {
            self.target.attention_flops
        } else {
            self.target.sm_flops
        };
        let split = self.split_k.contains_key(&(s, k));
        let block = self.split_k_block(s);
        let mut all = Vec::new();
        for cut in candidates(shape, &targets) {
            // A cache updated in place writes the row of the step's position, which only
            // the run knows: its tiles must each span every position.
            if in_place && cut.first().is_some_and(|axis0| axis0.len() > 1) {
                continue;
            }
            // A split-K part adds onto every row of its sum: the cut is along K only (the
            // kernel reads each K's rows 16 bytes at a time); a part of a block weight's sum
            // starts and ends on its blocks (the kernel reads whole blocks, and rounds its
            // input in blocks of 32).
            let unaligned = |axis0: &Vec<Vec<(i64, i64)>>| {
                axis0
                    .iter()
                    .flatten()
                    .any(|&(a, b)| a % block != 0 || b % block != 0)
            };
            if split
                && (cut.get(1).is_some_and(|axis1| axis1.len() > 1)
                    || cut.first().is_some_and(unaligned))
            {
                continue;
            }
            let n: usize = cut.iter().map(Vec::len).product();
            // Tasks that move too little are all overhead; the result's share per task says
            // so before any tile is priced, except for attention, whose tasks each re-read
            // their KV head (from L2) and are short of work, not of bytes.
            if n > self.target.sms as usize
                || (!attention && n > 1 && whole / (n as f64) < min_bytes)
            {
                continue;
            }
            let tiles = tiles_of(&cut);
            // Every tile is priced: a cut's odd tiles (one straddling two heads) are its
            // slowest, and a sample misses them. Menus are made once per group structure.
            let (priced, boxes): (Vec<Task>, Vec<usize>) = tiles
                .into_iter()
                .map(|t| self.task_and_boxes(s, k, t))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip();
            let biggest = priced
                .iter()
                .map(|t| t.bytes / per_sm + t.flops / rate)
                .fold(0.0, f64::max);
            // Every range is a descriptor a task walks: many small ones (a strided cut) cost
            // time, and past MAX_RANGES a cut is not considered.
            let ranges = priced
                .iter()
                .map(|t| t.reads.len() + t.writes.len())
                .max()
                .unwrap_or(0);
            let least = priced.iter().map(|t| t.bytes).fold(f64::INFINITY, f64::min);
            // A slice of many boxes (a cut that crosses a transpose's axes) makes code that
            // grows with them: past MAX_BOXES a cut is not considered.
            let most_boxes = boxes.iter().copied().max().unwrap_or(0);
            // (The whole result, one box, is always a candidate.)
            let whole_cut = cut.iter().all(|axis| axis.len() == 1 && axis[0].len() == 1);
            if !whole_cut
                && (ranges > MAX_RANGES
                    || most_boxes > MAX_BOXES
                    || (!attention && least < min_bytes))
            {
                continue;
            }
            let time = biggest + self.target.task_overhead + ranges as f64 * self.target.range_cost;
            let flops = priced.iter().map(|t| t.flops).fold(0.0, f64::max);
            all.push(Choice {
                tasks: n,
                time,
                flops,
                cut,
            });
        }
        all.sort_by(|a, b| a.tasks.cmp(&b.tasks).then(a.time.total_cmp(&b.time)));
        // A cut into more tasks must be clearly (10%) faster, or as fast with at most half
        // the arithmetic per task (attention: one query head per task rather than a group
        // sharing its KV head moves the same bytes and does a quarter of the work). One
        // that only writes its share of the result while every task recomputes the same
        // inputs (a per-head norm cut along lanes) costs as much per task and multiplies the
        // bytes read.
        let mut menu: Vec<Choice> = Vec::new();
        for c in all {
            if menu.last().is_none_or(|m| {
                c.time < m.time * 0.9 || (c.time <= m.time * 1.02 && c.flops <= m.flops * 0.5)
            }) {
                menu.push(c);
            }
        }
        Ok(menu)
    }

    /// The task computing `tile` of result `k` of step `s`.
    pub(super) fn task(&self, s: usize, k: usize, tile: Vec<TileBox>) -> Result<Task, String> {
        Ok(self.task_and_boxes(s, k, tile)?.0)
    }

    /// [`Placer::task`], and the most boxes any value of its slice needs (what the kernel's
    /// code for it grows with).
    pub(super) fn task_and_boxes(
        &self,
        s: usize,
        k: usize,
        tile: Vec<TileBox>,
    ) -> Result<(Task, usize), String> {
        let body = self.body;
        let group = self.steps[s];
        let sl = slice(body, group, k, &tile)?;
        let boxes = sl.needs.values().map(Vec::len).max().unwrap_or(0);
        let block = body.entry_block(group, 0).expect("a group has a body");
        let args = &body.blocks[block].args;
        let operands = &body.ops[group].operands;
        let mut t = Task {
            kind: body.ops[group]
                .attrs
                .get("kind")
                .and_then(Attr::as_str)
                .unwrap_or("group")
                .to_string(),
            group: s,
            output: k,
            ..Default::default()
        };
        let elem = |v: ValueId| body.ty(v).as_tensor().map_or(0.0, |t| t.elem.value_bytes());
        // A tile of attention's parts reads its parts' runs of the context, not all of it.
        let context_share = sl
            .ops
            .iter()
            .find(|&&o| body.ops[o].name == tg::AttentionPartial::NAME)
            .and_then(|&o| {
                let r = body.ops[o].results[0];
                let parts = body.ty(r).as_tensor()?.shape[0].max(1);
                let covered: i64 = sl.needs.get(&r)?.iter().map(|b| b[0].1 - b[0].0).sum();
                Some((covered as f64 / parts as f64).min(1.0))
            })
            .unwrap_or(1.0);
        for &i in &sl.args {
            let (a, v) = (args[i], operands[i]);
            let need = &sl.needs[&a];
            self.ranges(v, need, &mut t.reads)?;
            let mem = self.memory[self.places[&v].buffer.index()];
            // A table only looked up by gather moves the rows it returns.
            let gathers: Vec<OpId> = sl
                .ops
                .iter()
                .copied()
                .filter(|&o| body.ops[o].operands.contains(&a))
                .collect();
            let lookup = !gathers.is_empty()
                && gathers
                    .iter()
                    .all(|&o| body.ops[o].name == tg::Gather::NAME && body.ops[o].operands[0] == a);
            let n = if lookup {
                gathers
                    .iter()
                    .map(|&o| {
                        sl.needs
                            .get(&body.ops[o].results[0])
                            .map_or(0, region_elements)
                    })
                    .sum()
            } else {
                region_elements(need)
            } as f64;
            let bytes = n * elem(v);
            t.bytes += match mem {
                Memory::Weights => bytes,
                Memory::Kv => {
                    let ctx = body
                        .ty(v)
                        .as_tensor()
                        .map_or(1, |t| t.shape.first().copied().unwrap_or(1))
                        .max(1);
                    bytes * (self.opts.ctx as f64 / ctx as f64).min(1.0) * context_share
                }
                Memory::Activations => bytes * self.target.l2_byte_cost,
            };
        }
        let results = &body.ops[group].results;
        for &(v, j) in &sl.loaded {
            self.ranges(results[j], &sl.needs[&v], &mut t.reads)?;
            t.bytes += region_elements(&sl.needs[&v]) as f64 * elem(v) * self.target.l2_byte_cost;
        }
        let out = results[k];
        let split = self.split_k.contains_key(&(s, k));
        if split {
            // Its part of the sum over the tile's K range, added onto the tile's rows.
            let rows: Region = tile.iter().map(|b| vec![b[1]]).collect();
            for &sum in std::iter::once(&out).chain(self.sums.onto_of(out)) {
                self.ranges(sum, &rows, &mut t.adds)?;
                t.bytes += region_elements(&rows) as f64 * elem(sum) * self.target.l2_byte_cost;
            }
        } else {
            self.ranges(out, &tile, &mut t.writes)?;
        }
        for &sum in self.sums.mirrors_of(out) {
            // The initial value of a sum a split-K product accumulates.
            self.ranges(sum, &tile, &mut t.writes)?;
            t.bytes += region_elements(&tile) as f64 * elem(sum) * self.target.l2_byte_cost;
        }
        let written = if split {
            0.0
        } else {
            region_elements(&tile) as f64 * elem(out)
        };
        t.bytes += if result_in_place(body, group, k) {
            // One new row of the cache.
            let ctx = body.ty(out).as_tensor().map_or(1, |t| t.shape[0]).max(1);
            written / ctx as f64
        } else {
            written * self.target.l2_byte_cost
        };
        for &o in &sl.ops {
            let d = &body.ops[o];
            let outs = d
                .results
                .first()
                .and_then(|r| sl.needs.get(r))
                .map_or(0, region_elements) as f64;
            t.flops += match d.name.as_str() {
                // (Row tiles: outs rows of all of K; split-K tiles: their K range each.)
                tg::MatMulAcc::NAME => {
                    let k = body.ty(d.operands[0]).as_tensor().map_or(1, |t| t.shape[0]);
                    let terms: i64 =
                        d.results
                            .first()
                            .and_then(|r| sl.needs.get(r))
                            .map_or(0, |reg| {
                                reg.iter()
                                    .map(|b| match b[..] {
                                        [(k0, k1), (n0, n1)] => (k1 - k0) * (n1 - n0),
                                        [(n0, n1)] => k * (n1 - n0),
                                        _ => 0,
                                    })
                                    .sum()
                            });
                    2.0 * terms as f64
                }
                tg::MatMul::NAME => {
                    let k = body
                        .ty(d.operands[0])
                        .as_tensor()
                        .and_then(|t| t.shape.last().copied())
                        .unwrap_or(1);
                    2.0 * outs * k as f64
                }
                // Every head a tile touches has all its scores computed (2 * ctx * dim),
                // whichever of its lanes the tile outputs; then 2 * ctx per output lane.
                tg::Attention::NAME => {
                    let dim = body
                        .ty(d.operands[0])
                        .as_tensor()
                        .and_then(|t| t.shape.last().copied())
                        .unwrap_or(1)
                        .max(1) as f64;
                    let heads: i64 =
                        d.results
                            .first()
                            .and_then(|r| sl.needs.get(r))
                            .map_or(0, |reg| {
                                reg.iter()
                                    .map(|b| b.first().map_or(1, |&(h0, h1)| h1 - h0))
                                    .sum()
                            });
                    let ctx = self.opts.ctx as f64;
                    2.0 * ctx * dim * heads as f64 + 2.0 * ctx * outs
                }
                // Per (part, head) row a tile touches, the scores of the part's run of the
                // context, then 2 * run per output lane.
                tg::AttentionPartial::NAME => {
                    let shape = body
                        .ty(d.results[0])
                        .as_tensor()
                        .map_or(vec![1, 1, 3], |t| t.shape.clone());
                    let (parts, dim) = (shape[0].max(1) as f64, (shape[2] - 2).max(1) as f64);
                    let rows: i64 =
                        d.results
                            .first()
                            .and_then(|r| sl.needs.get(r))
                            .map_or(0, |reg| {
                                reg.iter()
                                    .map(|b| (b[0].1 - b[0].0) * (b[1].1 - b[1].0))
                                    .sum()
                            });
                    let run = self.opts.ctx as f64 / parts;
                    2.0 * run * dim * rows as f64 + 2.0 * run * outs
                }
                _ => outs,
            };
        }
        merge(&mut t.reads);
        merge(&mut t.writes);
        merge(&mut t.adds);
        t.tile = tile;
        Ok((t, boxes))
    }
}

pub(super) fn merge(r: &mut Vec<Range>) {
    r.sort_by_key(|x| (x.buffer, x.start, x.end));
    let mut out: Vec<Range> = Vec::with_capacity(r.len());
    for x in r.drain(..) {
        match out.last_mut() {
            Some(y) if y.buffer == x.buffer && x.start <= y.end => y.end = y.end.max(x.end),
            _ => out.push(x),
        }
    }
    *r = out;
}
