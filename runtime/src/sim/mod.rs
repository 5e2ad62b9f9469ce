//! The simulator: the scheduled program with its arithmetic, on the CPU. Device memory as the task level lays it out
//! (packed weights, heads-first KV caches, the reused workspace arena), every task run by
//! the schedule's queues ([`Queues`]: seeded interleavings, real counters).
//!
//! A task computes its tile with the interpreter's op semantics from the bytes its slice
//! needs that its declared reads also cover: every other element of its inputs is poison
//! (NaN), so a task whose declared reads miss something it uses computes NaN, and that is
//! reported with the task's name; a write outside its declared writes is reported too. So
//! the ranges the events are derived from are checked against what the arithmetic uses.
//! Each op of the slice computes only the region of its result the tile needs
//! ([`mkc_ir::interpret::Eval::only`]) and leaves the rest poison, so a task costs its
//! tile's arithmetic, not its ops' whole results, and a slice that uses more of a value
//! than its tiling says computes NaN too.
//! Floats are stored as bf16 (what the GPU keeps in memory); arithmetic inside a task
//! is the interpreter's (f64, rounded to each op's type: f32 accumulation or better).

use crate::interp::Interpreter;
pub mod queues;

use crate::tensor::Tensor;
use mkc_ir::attr::round_to;
use mkc_ir::dialect::builtin::{first_func, func_body, weight_arg_name, FuncBody};
use mkc_ir::dialect::task::TaskProgram;
use mkc_ir::dialect::task::{BufferId, Layout, Range, Schedule, TaskId};
use mkc_ir::dialect::tg;
use mkc_ir::dialect::tg::elementwise::Scalar;
use mkc_ir::tiling::{flat_runs, result_in_place, slice, Slice, SplitKSums};
use mkc_ir::weights::{NoWeights, WeightSource};
use mkc_ir::{Body, ElemType, EntityRef, OpId, TensorType, ValueId};
pub use queues::{simulate, Queues, SimError};
use std::collections::HashMap;
use std::rc::Rc;

pub struct Simulator<'a> {
    body: &'a Body,
    program: TaskProgram,
    schedule: Schedule,
    queues: Queues,
    steps: Vec<OpId>,
    /// Inputs (non-weight arguments) in order, and the op results the function returns.
    inputs: Vec<ValueId>,
    returns: Vec<ValueId>,
    /// The weight arguments' names (for messages).
    weights: HashMap<ValueId, String>,
    /// The weights, as read (block formats dequantized), and the first of their elements
    /// that is NaN or infinite. Weights never change and are in device memory from the start,
    /// so reads take them from here rather than from `memory` (a block format's elements
    /// have no byte of their own anyway): a read whose region the task's declared reads
    /// cover shares the whole tensor; any other gets poison where it is not covered.
    weight_values: HashMap<ValueId, Loaded>,
    layouts: HashMap<ValueId, Layout>,
    slices: Vec<Slice>,
    /// One slot per byte of each buffer; an element lives at the slot of its first byte.
    memory: Vec<Vec<f64>>,
    /// How KV cache floats are stored.
    storage: ElemType,
    /// The split-K sums: what each starts from (its tasks write their tiles there too),
    /// and the sums onto a sum (its tasks add their parts there too).
    sums: SplitKSums,
    /// Results summed by split-K tasks, each adding its part onto memory.
    split_k: std::collections::HashSet<ValueId>,
}

/// A value as a task reads it, and the first of its elements read that is NaN or infinite
/// (real data, not poison).
type Loaded = (Rc<Tensor>, Option<(usize, f64)>);

/// Whether bytes `at..at + n` of `buffer` lie inside one of `ranges`.
fn covered(ranges: &[Range], buffer: BufferId, at: u64, n: u64) -> bool {
    ranges
        .iter()
        .any(|r| r.buffer == buffer && r.start <= at && at + n <= r.end)
}

impl<'a> Simulator<'a> {
    /// Lays out memory for `body`'s task program and loads the weights into it.
    pub fn new(
        body: &'a Body,
        weights: &dyn WeightSource,
        seed: u64,
    ) -> Result<Simulator<'a>, String> {
        let program = TaskProgram::from_body(body)?;
        let schedule = program
            .schedule
            .clone()
            .ok_or("the task graph is not scheduled (run the 'schedule' pass)")?;
        let queues = Queues::new(&program.graph, &schedule, seed).map_err(|e| e.to_string())?;
        let func = first_func(body).ok_or("the module has no function")?;
        let FuncBody { args, steps, ret } = func_body(body, func)?;
        let mut layouts = HashMap::new();
        for (v, l) in program.layouts(body)? {
            let n = l.shape.iter().product::<i64>().max(0) as u64;
            let end = match l.block {
                Some(f) => l.offset + f.storage_bytes(n).unwrap_or(u64::MAX),
                None => l.addr(n.saturating_sub(1)) + l.elem_bytes,
            };
            if n > 0 && end > program.graph.buffers[l.buffer].bytes {
                return Err(format!(
                    "{v} does not fit in buffer '{}'",
                    program.graph.buffers[l.buffer].name
                ));
            }
            layouts.insert(v, l);
        }
        let mut slices = Vec::with_capacity(program.graph.tasks.len());
        for task in program.graph.tasks.values() {
            let op = *steps
                .get(task.group)
                .ok_or("a task names a group that does not exist")?;
            slices.push(slice(body, op, task.output, &task.tile)?);
        }
        // A buffer that holds only weights is never read from memory (`weight_values`): it
        // takes no slots (an f64 a byte would be 8 times the model).
        let weight_args: std::collections::HashSet<ValueId> = args
            .iter()
            .enumerate()
            .filter(|&(i, _)| weight_arg_name(body, func, i).is_some())
            .map(|(_, &a)| a)
            .collect();
        let memory = program
            .graph
            .buffers
            .iter()
            .map(|(id, b)| {
                let only_weights = layouts
                    .iter()
                    .filter(|(_, l)| l.buffer == id)
                    .all(|(v, _)| weight_args.contains(v));
                if only_weights && b.name == "weights" {
                    Vec::new()
                } else {
                    vec![0.0; b.bytes as usize]
                }
            })
            .collect();
        let sums = SplitKSums::of(body, &steps);
        let split_k = sums.sums().collect();
        let mut sim = Simulator {
            sums,
            split_k,
            body,
            inputs: Vec::new(),
            returns: body.ops[ret].operands.clone(),
            weights: HashMap::new(),
            weight_values: HashMap::new(),
            program,
            schedule,
            queues,
            steps,
            layouts,
            slices,
            memory,
            storage: ElemType::BF16,
        };
        // Constants outside groups are loaded once, like weights.
        let mut interp = Interpreter::new(body, weights);
        for &op in &sim.steps.clone() {
            if body.ops[op].name == tg::Constant::NAME {
                let t = interp.eval_op(op, &[])?.remove(0);
                let mut memory = std::mem::take(&mut sim.memory);
                sim.store(&mut memory, body.ops[op].results[0], &t, None, true);
                sim.memory = memory;
            }
        }
        for (i, &a) in args.iter().enumerate() {
            match weight_arg_name(body, func, i) {
                Some(name) => {
                    let raw = weights.raw(name)?;
                    let ty = body.ty(a).as_tensor().ok_or("a weight is not a tensor")?;
                    let t =
                        Tensor::from_raw(&raw, ty).map_err(|e| format!("weight '{name}' {e}"))?;
                    let bad = (0..t.len())
                        .map(|i| (i, t.f(i)))
                        .find(|(_, x)| !x.is_finite());
                    sim.weight_values.insert(a, (Rc::new(t), bad));
                    sim.weights.insert(a, name.to_string());
                }
                None => sim.inputs.push(a),
            }
        }
        Ok(sim)
    }

    fn layout(&self, v: ValueId) -> Result<&Layout, String> {
        self.layouts
            .get(&v)
            .ok_or_else(|| format!("{v} has no place in memory"))
    }

    /// Writes `t` (all of it, or the boxes `only`) where `v` lives; floats rounded to the
    /// storage type unless `exact`.
    fn store(
        &self,
        memory: &mut [Vec<f64>],
        v: ValueId,
        t: &Tensor,
        only: Option<&[Vec<(i64, i64)>]>,
        exact: bool,
    ) {
        let l = &self.layouts[&v];
        let float = t.ty.elem.is_float() && self.program.graph.buffers[l.buffer].name == "kv";
        let mem = &mut memory[l.buffer.index()];
        let addr = l.addresser();
        let mut put = |i: usize| {
            let x = t.f(i);
            let x = if float && !exact {
                round_to(x, self.storage)
            } else {
                x
            };
            mem[addr(i as u64) as usize] = x;
        };
        match only {
            None => (0..t.len()).for_each(&mut put),
            Some(boxes) => {
                for b in boxes {
                    for (lo, hi) in flat_runs(&t.ty.shape, b) {
                        (lo as usize..hi as usize).for_each(&mut put);
                    }
                }
            }
        }
    }

    /// A tensor of type `ty` read from where `v` lives: the boxes `region`, and of those only
    /// the elements inside `declared` ranges (when given); poison everywhere else. Also the
    /// first element read from memory that is NaN or infinite (real data, not poison).
    fn load(
        &self,
        memory: &[Vec<f64>],
        v: ValueId,
        ty: &TensorType,
        region: Option<&[Vec<(i64, i64)>]>,
        declared: Option<&[Range]>,
    ) -> Result<Loaded, String> {
        let l = self.layout(v)?;
        let full = [mkc_ir::tiling::full_box(&ty.shape)];
        let weight = self.weight_values.get(&v);
        if let Some((t, bad)) = weight {
            let boxes = region.unwrap_or(&full);
            let inside = |r: &Range, d: &[Range]| {
                d.iter()
                    .any(|x| x.buffer == r.buffer && x.start <= r.start && r.end <= x.end)
            };
            let whole = declared.is_none_or(|d| {
                boxes
                    .iter()
                    .all(|b| l.ranges(b).iter().all(|r| inside(r, d)))
            });
            if whole {
                return Ok((t.clone(), *bad));
            }
        }
        let mem = memory.get(l.buffer.index()).map_or(&[][..], |m| &m[..]);
        let mut t = Tensor::poison(ty.clone());
        let mut non_finite: Option<(usize, f64)> = None;
        let mut put = |t: &mut Tensor, i: usize, x: f64| {
            if !x.is_finite() && non_finite.is_none_or(|(j, _)| i < j) {
                non_finite = Some((i, x));
            }
            t.set(
                i,
                if ty.elem.is_float() {
                    Scalar::F(x)
                } else {
                    Scalar::I(x as i64)
                },
            );
        };
        // Only the declared ranges of this buffer matter.
        let mine: Option<Vec<Range>> =
            declared.map(|d| d.iter().filter(|r| r.buffer == l.buffer).cloned().collect());
        let addr = l.addresser();
        let inner = ty.shape.last().map_or(1, |&d| d.max(1) as usize);
        for b in region.unwrap_or(&full) {
            for (lo, hi) in flat_runs(&ty.shape, b) {
                let (lo, hi) = (lo as usize, hi as usize);
                if let Some((w, _)) = weight {
                    for i in lo..hi {
                        let parts = l
                            .block_parts(i as u64)
                            .unwrap_or([(addr(i as u64), l.elem_bytes), (0, 0)]);
                        let seen = |d: &[Range]| {
                            parts
                                .iter()
                                .all(|&(at, n)| n == 0 || covered(d, l.buffer, at, n))
                        };
                        if mine.as_deref().is_none_or(seen) {
                            put(&mut t, i, w.f(i));
                        }
                    }
                    continue;
                }
                // Row by row of the innermost axis, where addresses are affine: a row whose
                // bytes lie inside one declared range is read whole, without a check per
                // element.
                let mut i = lo;
                while i < hi {
                    let end = hi.min((i / inner + 1) * inner);
                    let base = addr(i as u64);
                    let step = if end - i > 1 {
                        addr(i as u64 + 1) - base
                    } else {
                        0
                    };
                    let last = base + (end - i - 1) as u64 * step;
                    let whole = mine
                        .as_deref()
                        .is_none_or(|d| covered(d, l.buffer, base, last + l.elem_bytes - base));
                    for (k, j) in (i..end).enumerate() {
                        let at = base + k as u64 * step;
                        if whole
                            || mine
                                .as_deref()
                                .is_none_or(|d| covered(d, l.buffer, at, l.elem_bytes))
                        {
                            put(&mut t, j, mem[at as usize]);
                        }
                    }
                    i = end;
                }
            }
        }
        Ok((Rc::new(t), non_finite))
    }

    fn run_task(&self, memory: &mut [Vec<f64>], t: TaskId) -> Result<(), String> {
        let body = self.body;
        let task = &self.program.graph.tasks[t];
        let name = || {
            format!(
                "{t} ({}, group {} result {})",
                task.kind, task.group, task.output
            )
        };
        let group = self.steps[task.group];
        let sl = &self.slices[t.index()];
        let block = body.entry_block(group, 0).expect("a group has a body");
        let args = &body.blocks[block].args;
        let operands = &body.ops[group].operands;
        let results = &body.ops[group].results;
        let mut values: HashMap<ValueId, Rc<Tensor>> = HashMap::new();
        // The first input element read from memory that is NaN or infinite: a NaN result is
        // then (maybe) real data, not poison.
        let mut non_finite_input: Option<(ValueId, usize, f64)> = None;
        let ty = |v: ValueId| {
            body.ty(v)
                .as_tensor()
                .cloned()
                .ok_or_else(|| format!("{v} is not a tensor"))
        };
        let loads = sl
            .args
            .iter()
            .map(|&i| (args[i], operands[i]))
            .chain(sl.loaded.iter().map(|&(v, j)| (v, results[j])));
        for (v, from) in loads {
            let (t, bad) = self.load(
                memory,
                from,
                &ty(v)?,
                Some(&sl.needs[&v]),
                Some(&task.reads),
            )?;
            if let (None, Some((i, x))) = (non_finite_input, bad) {
                non_finite_input = Some((from, i, x));
            }
            values.insert(v, t);
        }
        let none = NoWeights;
        let mut interp = Interpreter::new(body, &none);
        for &op in &sl.ops {
            let d = &body.ops[op];
            let ins: Vec<Rc<Tensor>> = d
                .operands
                .iter()
                .map(|&v| match values.get(&v) {
                    Some(x) => Ok(x.clone()),
                    // Not needed by this tile (an in-place cache's old contents): poison.
                    None => ty(v).map(|tt| Rc::new(Tensor::poison(tt))),
                })
                .collect::<Result<_, String>>()?;
            // Only the tile's part of a one-result op is computed: the rest is poison.
            let only = match d.results[..] {
                [r] => sl.needs.get(&r),
                _ => None,
            };
            let outs = interp
                .eval_op_in(op, &ins, only)
                .map_err(|e| format!("{}: '{}': {e}", name(), d.name))?;
            for (&r, x) in d.results.iter().zip(outs) {
                values.insert(r, Rc::new(x));
            }
        }
        let ops = &body.blocks[block].ops;
        let y = body.ops[*ops.last().expect("a group ends with a yield")].operands[task.output];
        let out = values
            .get(&y)
            .cloned()
            .ok_or_else(|| format!("{}: the slice does not compute its result", name()))?;
        let result = results[task.output];
        if self.split_k.contains(&result) {
            return self.add_part(memory, t, result, &out, &name());
        }
        // An in-place cache update writes one row: the position's.
        let mut tile = task.tile.clone();
        if result_in_place(body, group, task.output) {
            let ka = body.def_op(y).expect("in place results are kv_append");
            let pos = values
                .get(&body.ops[ka].operands[2])
                .map(|p| p.get(0).i())
                .ok_or_else(|| format!("{}: no position", name()))?;
            for b in &mut tile {
                b[0] = if (b[0].0..b[0].1).contains(&pos) {
                    (pos, pos + 1)
                } else {
                    (0, 0)
                };
            }
            tile.retain(|b| b[0].0 < b[0].1);
        }
        for b in &tile {
            for (lo, hi) in flat_runs(&out.ty.shape, b) {
                if let Some(i) = (lo as usize..hi as usize).find(|&i| out.f(i).is_nan()) {
                    if let Some((v, j, x)) = non_finite_input {
                        let what = self
                            .weights
                            .get(&v)
                            .map_or(String::new(), |w| format!(" (weight '{w}')"));
                        return Err(format!(
                            "{} computed NaN at element {i} of its result: its input {v}{what} holds {x} at element {j}",
                            name()
                        ));
                    }
                    return Err(format!(
                        "{} computed poison at element {i} of its result: it uses bytes its reads do not declare",
                        name()
                    ));
                }
            }
        }
        let mut places = vec![result];
        places.extend(self.sums.mirrors_of(result));
        for &v in &places {
            let l = self.layout(v)?.clone();
            let addr = l.addresser();
            for b in &tile {
                for (lo, hi) in flat_runs(&out.ty.shape, b) {
                    let outside = (lo as u64..hi as u64)
                        .find(|&i| !covered(&task.writes, l.buffer, addr(i), l.elem_bytes));
                    if let Some(i) = outside {
                        return Err(format!(
                            "{} writes element {i} of {v} (byte {} of '{}'), which its writes do not declare",
                            name(),
                            addr(i),
                            self.program.graph.buffers[l.buffer].name
                        ));
                    }
                }
            }
            self.store(memory, v, &out, Some(&tile), false);
        }
        Ok(())
    }

    /// A split-K task's part of its product (`out` holds it at the rows of its tile's
    /// [K, N] boxes), added onto the sum in memory where its `adds` declare.
    fn add_part(
        &self,
        memory: &mut [Vec<f64>],
        t: TaskId,
        sum: ValueId,
        out: &Tensor,
        name: &str,
    ) -> Result<(), String> {
        let task = &self.program.graph.tasks[t];
        let mut rows: Vec<i64> = task
            .tile
            .iter()
            .filter_map(|b| b.get(1).copied())
            .flat_map(|(n0, n1)| n0..n1)
            .collect();
        rows.sort_unstable();
        rows.dedup();
        // The sum, and the sums onto it.
        let sums = std::iter::once(&sum).chain(self.sums.onto_of(sum));
        for &v in sums {
            let l = self.layout(v)?.clone();
            let addr = l.addresser();
            let mem = &mut memory[l.buffer.index()];
            for &n in &rows {
                let x = out.f(n as usize);
                if x.is_nan() {
                    return Err(format!(
                        "{name} computed poison or NaN at element {n} of its part of the sum"
                    ));
                }
                let at = addr(n as u64);
                if !covered(&task.adds, l.buffer, at, l.elem_bytes) {
                    return Err(format!(
                        "{name} adds onto element {n} of {v} (byte {at} of '{}'), which its adds do not declare",
                        self.program.graph.buffers[l.buffer].name
                    ));
                }
                mem[at as usize] += x;
            }
        }
        Ok(())
    }

    /// Runs one step of the function: writes `inputs` (the non-weight arguments, in order)
    /// where they live, runs every task in a seeded interleaving, and reads the results.
    pub fn call(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, SimError> {
        if inputs.len() != self.inputs.len() {
            return Err(SimError::Task(format!(
                "the function takes {} inputs, got {}",
                self.inputs.len(),
                inputs.len()
            )));
        }
        for (i, t) in inputs.iter().enumerate() {
            let v = self.inputs[i];
            if Some(&t.ty) != self.body.ty(v).as_tensor() {
                return Err(SimError::Task(format!(
                    "input #{i} has type {}, expected {}",
                    t.ty,
                    self.body.ty(v)
                )));
            }
        }
        // The queues and the memory change during a step; the program does not.
        let mut memory = std::mem::take(&mut self.memory);
        let mut queues = std::mem::replace(&mut self.queues, Queues::empty());
        for (&v, t) in self.inputs.iter().zip(inputs) {
            self.store(&mut memory, v, t, None, false);
        }
        let this = &*self;
        let r = queues.step(&this.program.graph, &this.schedule, &mut |t| {
            this.run_task(&mut memory, t).map_err(SimError::Task)
        });
        self.queues = queues;
        self.memory = memory;
        r?;
        self.returns
            .iter()
            .map(|&v| {
                let ty = self
                    .body
                    .ty(v)
                    .as_tensor()
                    .cloned()
                    .ok_or_else(|| SimError::Task("a result is not a tensor".into()))?;
                self.load(&self.memory, v, &ty, None, None)
                    .map(|(t, _)| Rc::unwrap_or_clone(t))
                    .map_err(SimError::Task)
            })
            .collect()
    }
}
