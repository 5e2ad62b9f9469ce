//! `task`: the tile level. A `task.graph` op next to the step function holds the whole
//! program of the megakernel, in program order:
//!
//! ```text
//! "task.graph"() ({
//!   "task.buffer"() {sym_name = "arena", bytes = 2048 : i64} : () -> ()
//!   "task.place"() {group = 1 : i64, result = 0 : i64, buffer = "arena", offset = 0 : i64} : () -> ()
//!   "task.event"() {target = 2 : i64} : () -> ()
//!   "task.task"() {kind = "mlp_gate_up", group = 1 : i64, output = 0 : i64,
//!       tile = [#task.box<0:192>], reads = [#task.range<weights, 0, 49152>],
//!       writes = [#task.range<arena, 0, 768>], bytes = 4.9e4 : f64, flops = 9.8e4 : f64,
//!       waits = [], signals = [0 : i64]} : () -> ()
//! }) : () -> ()
//! ```
//!
//! - `task.buffer`: a region of device memory (`weights`, `kv`, `arena`, `inputs`).
//! - `task.place`: where a function argument (`arg`) or a result of the function's
//!   top-level op number `group` lives: a buffer, a byte offset, and optionally `perm`, the
//!   order its axes are stored in (KV caches are stored heads-first).
//! - `task.event`: a counter, ready in step s once signalled `target * s` times. Events are
//!   numbered by position.
//! - `task.task`: computes the boxes `tile` of result `output` of top-level op `group`,
//!   reading and writing exactly the byte ranges listed; waits on and signals events by
//!   number; `adds` (optional) lists ranges it adds f32 values onto (a split-K product's
//!   part): tasks adding onto the same bytes run in any order. After the `schedule` pass each task also has `sm` and `slot` (its position in
//!   that SM's queue), except a task marked `on_last_signal = true`: it has one wait, and
//!   the task whose signal makes that event ready runs it next, on its own SM.

use crate::attr::Attr;
use crate::ir::{Body, OpId, OpSpec};
use crate::registry::{AttrKind, Registry};
pub mod graph;

use crate::dialect::builtin;
use crate::types::ElemType;
use cranelift_entity::EntityRef;

/// The dialect's op kinds (in a module of their own: the graph's own types share their names).
pub mod ops {
    crate::op_kinds! {
        /// The scheduled task graph of one function.
        Graph = "task.graph",
        /// A region of device memory.
        Buffer = "task.buffer",
        /// Where an argument or a group result lives.
        Place = "task.place",
        /// A counter with a target count per step.
        Event = "task.event",
        /// One tile of one fused group's results.
        Task = "task.task",
    }
}
pub use graph::*;

pub fn register(r: &mut Registry) {
    r.op(
        ops::Graph::NAME,
        "the megakernel's tasks, events and memory placement",
    )
    .regions(1)
    .verify_nested(verify_graph);
    r.op(ops::Buffer::NAME, "a region of device memory")
        .attr("sym_name", AttrKind::Str)
        .attr("bytes", AttrKind::Int)
        .verify(in_graph);
    r.op(
        ops::Place::NAME,
        "where an argument or a group result lives",
    )
    .optional_attr("arg", AttrKind::Int)
    .optional_attr("group", AttrKind::Int)
    .optional_attr("result", AttrKind::Int)
    .attr("buffer", AttrKind::Str)
    .attr("offset", AttrKind::Int)
    .optional_attr("perm", AttrKind::Array)
    .verify(in_graph);
    r.op(ops::Event::NAME, "a counter with a target count per step")
        .attr("target", AttrKind::Int)
        .verify(in_graph);
    r.op(ops::Task::NAME, "one tile of one fused group's results")
        .attr("kind", AttrKind::Str)
        .attr("group", AttrKind::Int)
        .attr("output", AttrKind::Int)
        .attr("tile", AttrKind::Array)
        .attr("reads", AttrKind::Array)
        .attr("writes", AttrKind::Array)
        .optional_attr("adds", AttrKind::Array)
        .attr("bytes", AttrKind::Float)
        .attr("flops", AttrKind::Float)
        .attr("waits", AttrKind::Array)
        .attr("signals", AttrKind::Array)
        .optional_attr("on_last_signal", AttrKind::Bool)
        .optional_attr("sm", AttrKind::Int)
        .optional_attr("slot", AttrKind::Int)
        .verify(in_graph);
}

fn in_graph(body: &Body, op: OpId) -> Result<(), String> {
    match body.parent_op(op) {
        Some(p) if body.ops[p].name == ops::Graph::NAME => Ok(()),
        _ => Err("must be directly inside a task.graph".into()),
    }
}

fn verify_graph(body: &Body, op: OpId) -> Result<(), (OpId, String)> {
    TaskProgram::parse(body, op).map(|_| ())
}

/// What a `task.place` gives a place to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PlaceOf {
    /// Argument `i` of the step function.
    Arg(usize),
    /// Result `result` of the function's top-level op number `group`.
    Result { group: usize, result: usize },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub of: PlaceOf,
    pub buffer: BufferId,
    pub offset: u64,
    /// Storage order of the axes, outermost first; empty means row-major.
    pub perm: Vec<usize>,
}

/// The task level in memory: the graph, where every tensor lives, and (once scheduled)
/// the SM queues.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskProgram {
    pub graph: TaskGraph,
    pub places: Vec<Place>,
    pub schedule: Option<Schedule>,
}

fn int(a: i64) -> Attr {
    Attr::Int(a, ElemType::I64)
}

fn ints(v: impl IntoIterator<Item = usize>) -> Attr {
    Attr::Array(v.into_iter().map(|x| int(x as i64)).collect())
}

fn opaque(body: String) -> Attr {
    Attr::Opaque {
        dialect: "task".into(),
        body,
    }
}

/// `0:2, 0:16` for a box.
pub fn format_box(b: &TileBox) -> String {
    let dims: Vec<String> = b.iter().map(|(lo, hi)| format!("{lo}:{hi}")).collect();
    dims.join(", ")
}

/// The largest `task.buffer` (1 TiB): above any GPU's memory.
pub const MAX_BUFFER_BYTES: u64 = 1 << 40;

fn parse_box(a: &Attr) -> Result<TileBox, String> {
    let body = match a {
        Attr::Opaque { dialect, body } if dialect == "task" => body,
        _ => return Err(format!("expected #task.box<...>, found {}", a.kind_name())),
    };
    let inner = body
        .strip_prefix("box<")
        .and_then(|b| b.strip_suffix('>'))
        .ok_or_else(|| format!("expected #task.box<lo:hi, ...>, found #task.{body}"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|d| {
            let (lo, hi) = d
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("bad interval '{}' in #task.{body}", d.trim()))?;
            let p = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("bad bound '{s}' in #task.{body}"))
            };
            let (lo, hi) = (p(lo)?, p(hi)?);
            if !(0 <= lo && lo < hi) {
                return Err(format!(
                    "empty or negative interval {lo}:{hi} in #task.{body}"
                ));
            }
            Ok((lo, hi))
        })
        .collect()
}

fn parse_range(a: &Attr, names: &[String]) -> Result<Range, String> {
    let body = match a {
        Attr::Opaque { dialect, body } if dialect == "task" => body,
        _ => {
            return Err(format!(
                "expected #task.range<...>, found {}",
                a.kind_name()
            ))
        }
    };
    let inner = body
        .strip_prefix("range<")
        .and_then(|b| b.strip_suffix('>'))
        .ok_or_else(|| format!("expected #task.range<buffer, start, end>, found #task.{body}"))?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let [name, start, end] = parts[..] else {
        return Err(format!(
            "expected #task.range<buffer, start, end>, found #task.{body}"
        ));
    };
    let buffer = names
        .iter()
        .position(|n| n == name)
        .ok_or_else(|| format!("#task.{body} names no task.buffer '{name}'"))?;
    let p = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("bad offset '{s}' in #task.{body}"))
    };
    let (start, end) = (p(start)?, p(end)?);
    if start >= end {
        return Err(format!("empty range in #task.{body}"));
    }
    Ok(Range::new(BufferId::new(buffer), start, end))
}

impl TaskProgram {
    /// The module's `task.graph` op, if any.
    pub fn find(body: &Body) -> Option<OpId> {
        body.blocks[body.module_block()]
            .ops
            .iter()
            .copied()
            .find(|&o| body.ops[o].name == ops::Graph::NAME)
    }

    /// Reads the program from a `task.graph` op, checking every reference.
    pub fn from_op(body: &Body, op: OpId) -> Result<TaskProgram, String> {
        TaskProgram::parse(body, op).map_err(|(o, m)| {
            let d = &body.ops[o];
            match (o == op, d.loc.is_known()) {
                (true, _) => m,
                (false, true) => format!("'{}' at line {}: {m}", d.name, d.loc.line),
                (false, false) => format!("'{}': {m}", d.name),
            }
        })
    }

    /// [`TaskProgram::from_op`], blaming the op (the graph or one inside it) at fault.
    fn parse(body: &Body, op: OpId) -> Result<TaskProgram, (OpId, String)> {
        let block = body
            .entry_block(op, 0)
            .ok_or((op, "needs a body block".to_string()))?;
        let mut r = GraphReader::default();
        for &o in &body.blocks[block].ops {
            let a = OpAttrs {
                op: o,
                d: &body.ops[o],
            };
            match a.d.name.as_str() {
                ops::Buffer::NAME => r.buffer(&a)?,
                ops::Place::NAME => r.place(&a)?,
                ops::Event::NAME => r.event(&a)?,
                ops::Task::NAME => r.task(&a)?,
                other => return Err((o, format!("'{other}' cannot appear in a task.graph"))),
            }
        }
        r.check_self_waits()?;
        r.check_last_signal_runs()?;
        r.check_event_targets()?;
        r.check_tasks_against_the_function(body)?;
        r.finish(op)
    }

    /// The layout of every placed value: the function argument or top-level result a place
    /// is for, its buffer and offset, its shape and element size, and its storage order.
    pub fn layouts(&self, body: &Body) -> Result<Vec<(crate::ValueId, Layout)>, String> {
        let func = crate::dialect::builtin::first_func(body).ok_or("the module has no function")?;
        let builtin::FuncBody { args, steps, .. } = builtin::func_body(body, func)?;
        self.places
            .iter()
            .map(|p| {
                let v = match p.of {
                    PlaceOf::Arg(i) => *args.get(i).ok_or_else(|| {
                        format!("a place names argument {i}, which does not exist")
                    })?,
                    PlaceOf::Result { group, result } => *steps
                        .get(group)
                        .and_then(|&o| body.ops[o].results.get(result))
                        .ok_or_else(|| {
                            format!(
                                "a place names result {result} of op {group}, which does not exist"
                            )
                        })?,
                };
                let t = body.ty(v).as_tensor().ok_or("only tensors have places")?;
                let mut l = Layout::of_type(p.buffer, p.offset, t);
                if !p.perm.is_empty() {
                    l.perm = p.perm.clone();
                }
                Ok((v, l))
            })
            .collect()
    }

    /// The SM each task runs on, once scheduled: a queued task's queue; a task run on the
    /// last signal of an event, the SM of that event's signaller that finishes last by
    /// `finish` (per task, any clock). None before `schedule`.
    pub fn sms(&self, finish: &[f64]) -> Option<Vec<usize>> {
        let queues = &self.schedule.as_ref()?.queues;
        let mut sm_of = vec![0usize; self.graph.tasks.len()];
        for (sm, q) in queues.iter().enumerate() {
            for t in q {
                sm_of[t.index()] = sm;
            }
        }
        let mut last: Vec<Option<TaskId>> = vec![None; self.graph.events.len()];
        for (t, task) in &self.graph.tasks {
            for e in &task.signals {
                let l = &mut last[e.index()];
                if l.is_none_or(|u| finish[u.index()] < finish[t.index()]) {
                    *l = Some(t);
                }
            }
        }
        for (t, task) in self.graph.tasks.iter().filter(|(_, t)| t.on_last_signal) {
            if let Some(u) = task.waits.first().and_then(|e| last[e.index()]) {
                sm_of[t.index()] = sm_of[u.index()];
            }
        }
        Some(sm_of)
    }

    /// Reads the module's program.
    pub fn from_body(body: &Body) -> Result<TaskProgram, String> {
        let op =
            TaskProgram::find(body).ok_or("the module has no task.graph (run the 'tile' pass)")?;
        TaskProgram::from_op(body, op)
    }

    /// Writes the program into the module, replacing any `task.graph` there.
    pub fn store(&self, body: &mut Body) {
        if let Some(old) = TaskProgram::find(body) {
            body.erase_op(old);
        }
        let module = body.module_block();
        let graph = body.build(module, OpSpec::new(ops::Graph::NAME).regions(1));
        let region = body.ops[graph].regions[0];
        let block = body.append_block(region, &[]);
        let name = |b: BufferId| self.graph.buffers[b].name.clone();
        for b in self.graph.buffers.values() {
            body.build(
                block,
                OpSpec::new(ops::Buffer::NAME)
                    .attr("sym_name", Attr::Str(b.name.clone()))
                    .attr("bytes", int(b.bytes as i64)),
            );
        }
        for pl in &self.places {
            let mut spec = OpSpec::new(ops::Place::NAME);
            spec = match pl.of {
                PlaceOf::Arg(a) => spec.attr("arg", int(a as i64)),
                PlaceOf::Result { group, result } => spec
                    .attr("group", int(group as i64))
                    .attr("result", int(result as i64)),
            };
            spec = spec
                .attr("buffer", Attr::Str(name(pl.buffer)))
                .attr("offset", int(pl.offset as i64));
            if !pl.perm.is_empty() {
                spec = spec.attr("perm", ints(pl.perm.iter().copied()));
            }
            body.build(block, spec);
        }
        for e in self.graph.events.values() {
            body.build(
                block,
                OpSpec::new(ops::Event::NAME).attr("target", int(e.target as i64)),
            );
        }
        let mut slot_of = vec![None; self.graph.tasks.len()];
        if let Some(s) = &self.schedule {
            for (sm, q) in s.queues.iter().enumerate() {
                for (slot, t) in q.iter().enumerate() {
                    slot_of[t.index()] = Some((sm, slot));
                }
            }
        }
        let range =
            |r: &Range| opaque(format!("range<{}, {}, {}>", name(r.buffer), r.start, r.end));
        for (t, task) in &self.graph.tasks {
            let mut spec = OpSpec::new(ops::Task::NAME)
                .attr("kind", Attr::Str(task.kind.clone()))
                .attr("group", int(task.group as i64))
                .attr("output", int(task.output as i64))
                .attr(
                    "tile",
                    Attr::Array(
                        task.tile
                            .iter()
                            .map(|b| opaque(format!("box<{}>", format_box(b))))
                            .collect(),
                    ),
                )
                .attr("reads", Attr::Array(task.reads.iter().map(range).collect()))
                .attr(
                    "writes",
                    Attr::Array(task.writes.iter().map(range).collect()),
                )
                .attr(
                    "bytes",
                    Attr::Float(crate::attr::F64(task.bytes), ElemType::F64),
                )
                .attr(
                    "flops",
                    Attr::Float(crate::attr::F64(task.flops), ElemType::F64),
                )
                .attr("waits", ints(task.waits.iter().map(|e| e.index())))
                .attr("signals", ints(task.signals.iter().map(|e| e.index())));
            if !task.adds.is_empty() {
                spec = spec.attr("adds", Attr::Array(task.adds.iter().map(range).collect()));
            }
            if task.on_last_signal {
                spec = spec.attr("on_last_signal", Attr::Bool(true));
            }
            if let Some((sm, slot)) = slot_of[t.index()] {
                spec = spec
                    .attr("sm", int(sm as i64))
                    .attr("slot", int(slot as i64));
            }
            body.build(block, spec);
        }
    }
}

/// One op of a `task.graph` and its attributes, for [`GraphReader`]; errors blame the op.
struct OpAttrs<'a> {
    op: OpId,
    d: &'a crate::ir::OpData,
}

type ReadResult<T> = Result<T, (OpId, String)>;

impl OpAttrs<'_> {
    fn at(&self, m: String) -> (OpId, String) {
        (self.op, m)
    }

    fn get_int(&self, k: &str) -> ReadResult<Option<i64>> {
        match self.d.attrs.get(k) {
            None => Ok(None),
            Some(a) => a
                .as_int()
                .map(Some)
                .ok_or_else(|| self.at(format!("'{k}' must be an integer"))),
        }
    }

    fn need(&self, k: &str) -> ReadResult<i64> {
        self.get_int(k)?
            .ok_or_else(|| self.at(format!("needs '{k}'")))
    }

    fn nonneg(&self, k: &str) -> ReadResult<u64> {
        let v = self.need(k)?;
        u64::try_from(v).map_err(|_| self.at(format!("'{k}' must not be negative")))
    }

    fn str(&self, k: &str) -> &str {
        self.d.attrs.get(k).and_then(Attr::as_str).unwrap_or("")
    }

    fn list(&self, k: &str) -> &[Attr] {
        self.d.attrs.get(k).and_then(Attr::as_array).unwrap_or(&[])
    }

    fn float(&self, k: &str) -> f64 {
        self.d.attrs.get(k).and_then(Attr::as_f64).unwrap_or(0.0)
    }
}

/// The program read so far from a `task.graph`'s ops, in order (a reference must follow
/// what it names).
#[derive(Default)]
struct GraphReader {
    p: TaskProgram,
    names: Vec<String>,
    /// (sm, slot) per task; `usize::MAX` for a task with neither.
    placed: Vec<(usize, usize)>,
    /// Whether the queued tasks have 'sm' and 'slot' (None before the first).
    scheduled: Option<bool>,
    event_ops: Vec<OpId>,
    task_ops: Vec<OpId>,
}

impl GraphReader {
    fn buffer_named(&self, a: &OpAttrs, n: &str) -> ReadResult<BufferId> {
        self.names
            .iter()
            .position(|x| x == n)
            .map(BufferId::new)
            .ok_or_else(|| a.at(format!("no task.buffer named '{n}' before it")))
    }

    fn buffer(&mut self, a: &OpAttrs) -> ReadResult<()> {
        let name = a.str("sym_name");
        if !crate::attr::is_bare_identifier(name) || self.names.iter().any(|n| n == name) {
            return Err(a.at(format!("buffer name '{name}' is not a fresh identifier")));
        }
        self.names.push(name.to_string());
        let bytes = a.nonneg("bytes")?;
        // Buffers are allocated by these sizes (GPU memory, the simulator's images): bound
        // them far above any GPU's memory, and below sizes whose arithmetic overflows.
        if bytes > MAX_BUFFER_BYTES {
            return Err(a.at(format!(
                "'bytes' {bytes} is larger than any GPU's memory (at most {MAX_BUFFER_BYTES})"
            )));
        }
        self.p.graph.buffers.push(Buffer {
            name: name.to_string(),
            bytes,
        });
        Ok(())
    }

    fn place(&mut self, a: &OpAttrs) -> ReadResult<()> {
        let of = match (a.get_int("arg")?, a.get_int("group")?, a.get_int("result")?) {
            (Some(x), None, None) if x >= 0 => PlaceOf::Arg(x as usize),
            (None, Some(g), Some(r)) if g >= 0 && r >= 0 => PlaceOf::Result {
                group: g as usize,
                result: r as usize,
            },
            _ => return Err(a.at("needs either 'arg', or 'group' and 'result'".into())),
        };
        let buffer = self.buffer_named(a, a.str("buffer"))?;
        let perm = match a.d.attrs.get("perm") {
            None => Vec::new(),
            Some(p) => p
                .as_array()
                .unwrap_or(&[])
                .iter()
                .map(|x| x.as_int().filter(|&v| v >= 0).map(|v| v as usize))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| a.at("'perm' must list axes".into()))?,
        };
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        if sorted.iter().enumerate().any(|(i, &x)| x != i) {
            return Err(a.at(format!("'perm' {perm:?} is not a permutation")));
        }
        if self.p.places.iter().any(|q| q.of == of) {
            return Err(a.at(format!("{of:?} is placed twice")));
        }
        self.p.places.push(Place {
            of,
            buffer,
            offset: a.nonneg("offset")?,
            perm,
        });
        Ok(())
    }

    fn event(&mut self, a: &OpAttrs) -> ReadResult<()> {
        let target = u32::try_from(a.need("target")?)
            .map_err(|_| a.at("'target' must fit in 32 bits".into()))?;
        self.p.graph.events.push(Event { target });
        self.event_ops.push(a.op);
        Ok(())
    }

    fn events(&self, a: &OpAttrs, k: &str) -> ReadResult<Vec<EventId>> {
        let n = self.p.graph.events.len();
        a.list(k)
            .iter()
            .map(|x| match x.as_int() {
                Some(e) if e >= 0 && (e as usize) < n => Ok(EventId::new(e as usize)),
                _ => Err(a.at(format!("'{k}' names an event that does not exist"))),
            })
            .collect()
    }

    fn ranges(&self, a: &OpAttrs, k: &str) -> ReadResult<Vec<Range>> {
        a.list(k)
            .iter()
            .map(|x| parse_range(x, &self.names).map_err(|m| a.at(m)))
            .collect()
    }

    fn task(&mut self, a: &OpAttrs) -> ReadResult<()> {
        let task = Task {
            kind: a.str("kind").to_string(),
            group: a.nonneg("group")? as usize,
            output: a.nonneg("output")? as usize,
            tile: a
                .list("tile")
                .iter()
                .map(|x| parse_box(x).map_err(|m| a.at(m)))
                .collect::<Result<_, _>>()?,
            reads: self.ranges(a, "reads")?,
            writes: self.ranges(a, "writes")?,
            adds: self.ranges(a, "adds")?,
            bytes: a.float("bytes"),
            flops: a.float("flops"),
            waits: self.events(a, "waits")?,
            signals: self.events(a, "signals")?,
            on_last_signal: match a.d.attrs.get("on_last_signal") {
                None => false,
                Some(x) => x
                    .as_bool()
                    .ok_or_else(|| a.at("'on_last_signal' must be a bool".into()))?,
            },
        };
        if task.on_last_signal && task.waits.len() != 1 {
            return Err(a.at(format!(
                "a task run on the last signal of an event waits on exactly one event, not {}",
                task.waits.len()
            )));
        }
        for r in task.reads.iter().chain(&task.writes).chain(&task.adds) {
            let buffer = &self.p.graph.buffers[r.buffer];
            if r.end > buffer.bytes {
                return Err(a.at(format!(
                    "range {}..{} is outside buffer '{}' ({} bytes)",
                    r.start,
                    r.end,
                    self.names[r.buffer.index()],
                    buffer.bytes
                )));
            }
        }
        let at = self.queue_place(a, task.on_last_signal)?;
        self.placed.push(at);
        self.p.graph.tasks.push(task);
        self.task_ops.push(a.op);
        Ok(())
    }

    /// A task's (sm, slot): every queued task has both or none does; a task run on an
    /// event's last signal has neither.
    fn queue_place(&mut self, a: &OpAttrs, on_last_signal: bool) -> ReadResult<(usize, usize)> {
        let sched = (a.get_int("sm")?, a.get_int("slot")?);
        let has = sched.0.is_some() || sched.1.is_some();
        if on_last_signal {
            if has {
                return Err(
                    a.at("a task run on the last signal of an event has no 'sm' or 'slot'".into())
                );
            }
        } else if *self.scheduled.get_or_insert(has) != has {
            return Err(a.at("either every queued task has 'sm' and 'slot' or none has".into()));
        }
        if !has {
            return Ok((usize::MAX, 0));
        }
        let (Some(sm), Some(slot)) = sched else {
            return Err(a.at("needs both 'sm' and 'slot'".into()));
        };
        if sm < 0 || slot < 0 {
            return Err(a.at("'sm' and 'slot' must not be negative".into()));
        }
        // The queues are sized by the largest SM: bound it before it sizes anything.
        let max = crate::target::MAX_SMS;
        if sm as u64 >= max {
            return Err(a.at(format!(
                "'sm' {sm} is out of range (a target has at most {max} SMs)"
            )));
        }
        Ok((sm as usize, slot as usize))
    }

    /// A task never waits on an event it signals.
    fn check_self_waits(&self) -> ReadResult<()> {
        for (task, &o) in self.p.graph.tasks.values().zip(&self.task_ops) {
            if let Some(e) = task.waits.iter().find(|e| task.signals.contains(e)) {
                return Err((
                    o,
                    format!("waits on event {}, which it signals itself", e.index()),
                ));
            }
        }
        Ok(())
    }

    /// Each event's target is the number of tasks that signal it (else it is never, or too
    /// early, ready).
    fn check_event_targets(&self) -> ReadResult<()> {
        let g = &self.p.graph;
        let mut signalled = vec![0usize; g.events.len()];
        for task in g.tasks.values() {
            for e in &task.signals {
                signalled[e.index()] += 1;
            }
        }
        for ((e, ev), &o) in g.events.iter().zip(&self.event_ops) {
            let n = signalled[e.index()];
            if n != ev.target as usize {
                return Err((
                    o,
                    format!(
                        "event {} has target {} but {n} task(s) signal it",
                        e.index(),
                        ev.target
                    ),
                ));
            }
        }
        Ok(())
    }

    /// An event runs at most one task on its last signal, and that event's signallers are
    /// queued tasks (the kernel runs one such task after a queued one, not chains).
    fn check_last_signal_runs(&self) -> ReadResult<()> {
        let g = &self.p.graph;
        let mut run_by: Vec<Option<usize>> = vec![None; g.events.len()];
        for (i, (task, &o)) in g.tasks.values().zip(&self.task_ops).enumerate() {
            if let (true, Some(e)) = (task.on_last_signal, task.waits.first()) {
                if run_by[e.index()].replace(i).is_some() {
                    return Err((
                        o,
                        format!(
                            "event {} already runs another task on its last signal",
                            e.index()
                        ),
                    ));
                }
            }
        }
        for (task, &o) in g.tasks.values().zip(&self.task_ops) {
            let runs = task
                .signals
                .iter()
                .filter(|e| run_by[e.index()].is_some())
                .count();
            if runs > 1 {
                return Err((
                    o,
                    "signals more than one event that runs a task on its last signal".into(),
                ));
            }
            if task.on_last_signal && runs > 0 {
                return Err((
                    o,
                    "a task run on the last signal of an event signals an event that runs one too (chains are not supported)".into(),
                ));
            }
        }
        Ok(())
    }

    /// The program, with its schedule when the tasks are placed: each SM's slots must be
    /// 0, 1, 2, ... (errors blame the graph `op`).
    /// Every task's `group` names a top-level op of the step function that has a body (a
    /// fused group), `output` one of its results, and each box of `tile` lies inside that
    /// result's shape: what the simulator and the kernel generator index with them. (A graph
    /// without a function beside it, as in unit tests, has nothing to check against.)
    fn check_tasks_against_the_function(&self, body: &Body) -> ReadResult<()> {
        let Some(func) = builtin::first_func(body) else {
            return Ok(());
        };
        let Ok(builtin::FuncBody { steps, .. }) = builtin::func_body(body, func) else {
            return Ok(());
        };
        for (task, &o) in self.p.graph.tasks.values().zip(&self.task_ops) {
            let fail = |m: String| Err((o, m));
            let Some(&group) = steps.get(task.group) else {
                return fail(format!(
                    "'group' {} is not a step of the function (it has {})",
                    task.group,
                    steps.len()
                ));
            };
            let g = &body.ops[group];
            if body.entry_block(group, 0).is_none() {
                return fail(format!(
                    "'group' {} is '{}', which has no body to tile",
                    task.group, g.name
                ));
            }
            let Some(&result) = g.results.get(task.output) else {
                return fail(format!(
                    "'output' {} is not a result of group {} (it has {})",
                    task.output,
                    task.group,
                    g.results.len()
                ));
            };
            let shape = body
                .ty(result)
                .as_tensor()
                .map_or(&[][..], |t| &t.shape[..]);
            // (A split-K product's tiles are boxes of the [K, N] it sums over.)
            let space = crate::tiling::split_k_space(body, group, task.output);
            let within = |b: &TileBox, shape: &[i64]| {
                b.len() == shape.len()
                    && b.iter()
                        .zip(shape)
                        .all(|(&(lo, hi), &d)| 0 <= lo && lo <= hi && hi <= d)
            };
            for b in &task.tile {
                let inside = within(b, shape) || space.as_ref().is_some_and(|s| within(b, s));
                if !inside {
                    return fail(format!(
                        "tile box {b:?} is not inside result {} of group {} (shape {shape:?})",
                        task.output, task.group
                    ));
                }
            }
        }
        Ok(())
    }

    fn finish(mut self, op: OpId) -> ReadResult<TaskProgram> {
        if self.scheduled == Some(true) {
            let sms = self
                .placed
                .iter()
                .filter(|&&(sm, _)| sm != usize::MAX)
                .map(|&(sm, _)| sm + 1)
                .max()
                .unwrap_or(0);
            let mut queues: Vec<Vec<(usize, TaskId)>> = vec![Vec::new(); sms];
            for (t, &(sm, slot)) in self.p.graph.tasks.keys().zip(&self.placed) {
                if sm != usize::MAX {
                    queues[sm].push((slot, t));
                }
            }
            let mut out = Vec::with_capacity(sms);
            for (sm, mut q) in queues.into_iter().enumerate() {
                q.sort_unstable();
                if q.iter().enumerate().any(|(i, &(slot, _))| slot != i) {
                    return Err((op, format!("the slots of sm {sm} are not 0, 1, 2, ...")));
                }
                out.push(q.into_iter().map(|(_, t)| t).collect());
            }
            self.p.schedule = Some(Schedule { queues: out });
        }
        Ok(self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program() -> TaskProgram {
        let mut g = TaskGraph::default();
        let h = g.add_buffer("arena", 64);
        let w = g.add_buffer("weights", 256);
        for i in 0..2u64 {
            g.add_task(Task {
                kind: "up".into(),
                tile: vec![vec![(i as i64 * 8, i as i64 * 8 + 8)]],
                reads: vec![Range::new(w, i * 128, i * 128 + 128)],
                writes: vec![Range::new(h, i * 32, i * 32 + 32)],
                bytes: 128.0,
                flops: 64.0,
                ..Default::default()
            });
        }
        g.add_task(Task {
            kind: "down".into(),
            output: 0,
            group: 1,
            tile: vec![vec![]],
            reads: vec![Range::new(h, 0, 64)],
            ..Default::default()
        });
        g.derive_events();
        TaskProgram {
            graph: g,
            places: vec![Place {
                of: PlaceOf::Result {
                    group: 0,
                    result: 0,
                },
                buffer: h,
                offset: 0,
                perm: vec![],
            }],
            schedule: None,
        }
    }

    fn roundtrip(p: &TaskProgram) -> (String, TaskProgram) {
        let mut body = Body::new();
        p.store(&mut body);
        let text = crate::printer::print(&body);
        let reg = Registry::with_all_dialects();
        let mut sources = crate::SourceMap::default();
        let parsed =
            crate::parse_and_verify(&mut sources, "t.mlir", &text, &reg, Default::default())
                .unwrap_or_else(|e| panic!("{text}\n{}", e[0].message));
        (text, TaskProgram::from_body(&parsed).unwrap())
    }

    #[test]
    fn a_program_prints_and_parses_back() {
        let mut p = program();
        // Both producers are needed by the one reader: one event with target 2.
        assert_eq!(p.graph.events.len(), 1);
        assert_eq!(p.graph.events.values().next().unwrap().target, 2);
        let (text, back) = roundtrip(&p);
        assert!(text.contains("#task.range<weights, 128, 256>"), "{text}");
        assert_eq!(back, p);
        p.schedule = Some(Schedule {
            queues: vec![vec![TaskId::new(1)], vec![TaskId::new(0), TaskId::new(2)]],
        });
        let (text, back) = roundtrip(&p);
        assert!(text.contains("slot = 1"), "{text}");
        assert_eq!(back, p);
    }

    /// Issue 26: an absurd 'sm' sized the schedule's queues and aborted in the allocator.
    #[test]
    fn an_absurd_sm_is_an_error_before_it_sizes_the_queues() {
        let mut p = program();
        p.schedule = Some(Schedule {
            queues: vec![vec![TaskId::new(1)], vec![TaskId::new(0), TaskId::new(2)]],
        });
        let mut body = Body::new();
        p.store(&mut body);
        let text = crate::printer::print(&body);
        let bad = text.replacen("sm = 1", "sm = 1000000000000", 1);
        assert_ne!(bad, text);
        let reg = Registry::with_all_dialects();
        let mut sources = crate::SourceMap::default();
        let errs = crate::parse_and_verify(&mut sources, "t.mlir", &bad, &reg, Default::default())
            .unwrap_err();
        assert!(
            errs[0]
                .message
                .contains("'sm' 1000000000000 is out of range (a target has at most 4096 SMs)"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn bad_programs_are_rejected_with_the_reason() {
        let mut body = Body::new();
        program().store(&mut body);
        let text = crate::printer::print(&body);
        let reg = Registry::with_all_dialects();
        for (from, to, want) in [
            (
                "range<weights, 128, 256>",
                "range<nowhere, 0, 8>",
                "names no task.buffer 'nowhere'",
            ),
            (
                "range<weights, 128, 256>",
                "range<weights, 128, 257>",
                "outside buffer 'weights'",
            ),
            (
                "target = 2",
                "target = 3",
                "has target 3 but 2 task(s) signal it",
            ),
            ("box<8:16>", "box<16:8>", "empty or negative interval"),
            // Issue 26: sizes are bounded before they size allocations.
            (
                "bytes = 256",
                "bytes = 4611686018427387904",
                "'bytes' 4611686018427387904 is larger than any GPU's memory",
            ),
        ] {
            let bad = text.replacen(from, to, 1);
            assert_ne!(bad, text, "{from}");
            let mut sources = crate::SourceMap::default();
            let errs =
                crate::parse_and_verify(&mut sources, "t.mlir", &bad, &reg, Default::default())
                    .unwrap_err();
            assert!(
                errs[0].message.contains(want),
                "{want}: {}",
                errs[0].message
            );
        }
    }
}
