//! The task level as a graph: tasks that read and write byte ranges of buffers, and events
//! (counters with a target count) that order them. This is the in-memory form the scheduler
//! (`mkc-passes`, `schedule`) and the simulator (`mkc-runtime`, `sim`) share.
//!
//! Program order is `TaskId` order: a task sees the bytes written by earlier tasks, as if the
//! tasks ran one after another. Everything else follows from the ranges: [`TaskGraph::hazards`]
//! finds the earlier tasks a task conflicts with (it reads what they write, or writes what
//! they read or write), and [`TaskGraph::derive_events`] turns exactly those into waits, so a
//! task waits for the producers of the bytes it touches and for nothing else.

use cranelift_entity::{entity_impl, EntityRef, PrimaryMap};

#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u32);
entity_impl!(TaskId, "task");

#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(u32);
entity_impl!(EventId, "event");

#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(u32);
entity_impl!(BufferId, "buf");

/// Bytes `start..end` of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub buffer: BufferId,
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub fn new(buffer: BufferId, start: u64, end: u64) -> Range {
        Range { buffer, start, end }
    }

    pub fn overlaps(&self, other: &Range) -> bool {
        self.buffer == other.buffer && self.start < other.end && other.start < self.end
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}..{}]", self.buffer, self.start, self.end)
    }
}

/// Where a tensor lives: `offset` bytes into `buffer`, its axes stored in the order `perm`
/// (outermost first; the identity is row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub buffer: BufferId,
    pub offset: u64,
    pub shape: Vec<i64>,
    /// Bytes an element takes (a block's payload for a block-quantized tensor).
    pub elem_bytes: u64,
    pub perm: Vec<usize>,
    /// A block-quantized tensor: its blocks' payloads in one plane at `offset`, their
    /// scales in a second plane right after ([`crate::quant::BlockFormat::planes`]). Row
    /// after row; or, a matrix with `perm [1, 0]`, K-block-major: block (n, kb) at
    /// `kb * N + n` in both planes, so that a slice of K over all rows is one span a plane
    /// (a split-K sum's weight).
    pub block: Option<crate::quant::BlockFormat>,
}

impl Layout {
    pub fn row_major(buffer: BufferId, offset: u64, shape: Vec<i64>, elem_bytes: u64) -> Layout {
        let perm = (0..shape.len()).collect();
        Layout {
            buffer,
            offset,
            shape,
            elem_bytes,
            perm,
            block: None,
        }
    }

    /// The row-major layout of a tensor of type `t` at `offset` of `buffer`.
    pub fn of_type(buffer: BufferId, offset: u64, t: &crate::TensorType) -> Layout {
        match t.elem {
            crate::ElemType::Block(f) => Layout {
                elem_bytes: f.planes().0 as u64,
                block: Some(f),
                ..Layout::row_major(buffer, offset, t.shape.clone(), 0)
            },
            e => Layout::row_major(buffer, offset, t.shape.clone(), e.bytes() as u64),
        }
    }

    /// Whether a block-quantized layout is K-block-major ([`Layout::block`]).
    pub fn k_block_major(&self) -> bool {
        self.block.is_some() && self.shape.len() == 2 && self.perm == [1, 0]
    }

    /// Of a block-quantized layout, the place in its planes (in blocks) of the block that
    /// holds row-major element `i`, as a function (its geometry worked out once).
    fn block_index(&self, f: crate::quant::BlockFormat) -> impl Fn(u64) -> u64 {
        let (rows, blocks, _) = self.block_geometry(f);
        let be = f.block_elems() as u64;
        let k = (blocks * be).max(1);
        let k_major = self.k_block_major();
        move |i| {
            let (n, kb) = (i / k, (i % k) / be);
            match k_major {
                true => kb * rows + n,
                false => n * blocks + kb,
            }
        }
    }

    /// A block-quantized layout's rows, blocks per row, and where its scales' plane starts.
    fn block_geometry(&self, f: crate::quant::BlockFormat) -> (u64, u64, u64) {
        let k = self.shape.last().copied().unwrap_or(1).max(0) as u64;
        let rows: u64 = self.shape[..self.shape.len().saturating_sub(1)]
            .iter()
            .map(|&d| d.max(0) as u64)
            .product();
        let blocks = k / f.block_elems() as u64;
        let payload = f.planes().0 as u64;
        (rows, blocks, self.offset + rows * blocks * payload)
    }

    /// For a block-quantized layout, where the block holding element `i` (row-major flat
    /// index) keeps its payload and its scales: `[(address, bytes); 2]`.
    pub fn block_parts(&self, i: u64) -> Option<[(u64, u64); 2]> {
        let f = self.block?;
        let (_, _, meta_at) = self.block_geometry(f);
        let (payload, meta) = (f.planes().0 as u64, f.planes().1 as u64);
        let n = self.block_index(f)(i);
        Some([
            (self.offset + n * payload, payload),
            (meta_at + n * meta, meta),
        ])
    }

    /// [`Layout::ranges`] of a block-quantized layout: the payloads of the blocks the box
    /// touches, row by row, then their scales.
    fn block_ranges(&self, f: crate::quant::BlockFormat, b: &[(i64, i64)]) -> Vec<Range> {
        let (rows, blocks, meta_at) = self.block_geometry(f);
        let (payload, meta) = (f.planes().0 as u64, f.planes().1 as u64);
        let be = f.block_elems() as i64;
        let last = self.shape.len() - 1;
        let (k0, k1) = b[last];
        let (b0, b1) = ((k0 / be) as u64, ((k1 + be - 1) / be) as u64);
        if self.k_block_major() {
            // A span of rows in each K block's run, per plane.
            let (n0, n1) = (b[0].0 as u64, b[0].1 as u64);
            let mut out: Vec<Range> = Vec::new();
            for (plane, per) in [(self.offset, payload), (meta_at, meta)] {
                for kb in b0..b1 {
                    let (start, end) = (
                        plane + (kb * rows + n0) * per,
                        plane + (kb * rows + n1) * per,
                    );
                    match out.last_mut() {
                        Some(x) if x.end == start => x.end = end,
                        _ => out.push(Range::new(self.buffer, start, end)),
                    }
                }
            }
            return out;
        }
        let lead = Layout::row_major(self.buffer, 0, self.shape[..last].to_vec(), 1);
        let mut out: Vec<Range> = Vec::new();
        for (plane, per) in [(self.offset, payload), (meta_at, meta)] {
            let mut push = |r: u64| {
                let row = plane + r * blocks * per;
                let (start, end) = (row + b0 * per, row + b1 * per);
                match out.last_mut() {
                    Some(x) if x.end == start => x.end = end,
                    _ => out.push(Range::new(self.buffer, start, end)),
                }
            };
            if last == 0 {
                push(0);
                continue;
            }
            for run in lead.ranges(&b[..last]) {
                for r in run.start..run.end {
                    push(r);
                }
            }
        }
        out
    }

    /// Element strides (in elements) of each logical axis.
    pub fn strides(&self) -> Vec<u64> {
        let mut s = vec![0u64; self.shape.len()];
        let mut acc = 1u64;
        for &a in self.perm.iter().rev() {
            s[a] = acc;
            acc *= self.shape[a].max(0) as u64;
        }
        s
    }

    /// The byte address of the element at row-major (logical) flat index `i`.
    pub fn addr(&self, i: u64) -> u64 {
        self.addresser()(i)
    }

    /// [`Layout::addr`] with the strides worked out once, for loops over many elements.
    pub fn addresser(&self) -> impl Fn(u64) -> u64 + '_ {
        let strides = self.strides();
        let identity = self.perm.iter().enumerate().all(|(k, &a)| k == a);
        // A block-quantized element's address is its block's payload.
        let block = self.block.map(|f| self.block_index(f));
        move |mut i: u64| {
            if let Some(index) = &block {
                return self.offset + index(i) * self.elem_bytes;
            }
            if identity {
                return self.offset + i * self.elem_bytes;
            }
            let mut e = 0;
            for (a, &d) in self.shape.iter().enumerate().rev() {
                let d = d.max(1) as u64;
                e += (i % d) * strides[a];
                i /= d;
            }
            self.offset + e * self.elem_bytes
        }
    }

    /// The byte ranges a box covers, in storage order, adjacent runs merged.
    pub fn ranges(&self, b: &[(i64, i64)]) -> Vec<Range> {
        if b.iter().any(|&(lo, hi)| hi <= lo) {
            return Vec::new();
        }
        if let Some(f) = self.block.filter(|_| !self.shape.is_empty()) {
            return self.block_ranges(f, b);
        }
        if self.shape.is_empty() {
            return vec![Range::new(
                self.buffer,
                self.offset,
                self.offset + self.elem_bytes,
            )];
        }
        let strides = self.strides();
        // Walk the box in storage order, a run at a time: the innermost stored axis, and
        // the axes out from it while the ones inside them are whole (one contiguous run).
        let perm = &self.perm;
        let extent = |a: usize| (b[a].1 - b[a].0) as u64;
        let mut j = perm.len() - 1;
        let mut run = extent(perm[j]);
        while j > 0 && b[perm[j]] == (0, self.shape[perm[j]]) {
            j -= 1;
            run *= extent(perm[j]);
        }
        let outer = &perm[..j];
        let mut idx: Vec<i64> = outer.iter().map(|&a| b[a].0).collect();
        let mut e: u64 = outer
            .iter()
            .zip(&idx)
            .map(|(&a, &i)| i as u64 * strides[a])
            .sum::<u64>()
            + b[perm[j]].0 as u64 * strides[perm[j]];
        let mut out: Vec<Range> = Vec::new();
        loop {
            let start = self.offset + e * self.elem_bytes;
            let end = start + run * self.elem_bytes;
            match out.last_mut() {
                Some(r) if r.end == start => r.end = end,
                _ => out.push(Range::new(self.buffer, start, end)),
            }
            // Next index of the outer axes, last stored axis fastest.
            let mut k = outer.len();
            loop {
                if k == 0 {
                    return out;
                }
                k -= 1;
                let a = outer[k];
                idx[k] += 1;
                e += strides[a];
                if idx[k] < b[a].1 {
                    break;
                }
                e -= extent(a) * strides[a];
                idx[k] = b[a].0;
            }
        }
    }
}

/// A named region of memory: an activation, a KV cache, a weight.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    pub name: String,
    pub bytes: u64,
}

/// The element type a value of type `elem` is stored as in the buffer named `buffer`: f32
/// values of the KV cache are kept as bf16 (the simulator and the kernel round them to bf16
/// on the way in anyway, as transformers keeps a bf16 model's cache), so attention streams
/// half the bytes. Their places keep their f32 size; the first half is used.
pub fn storage_elem(buffer: &str, elem: crate::ElemType) -> crate::ElemType {
    if buffer == "kv" && elem == crate::ElemType::F32 {
        crate::ElemType::BF16
    } else {
        elem
    }
}

/// A half-open interval `lo..hi` along each axis of a tensor.
pub type TileBox = Vec<(i64, i64)>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Task {
    /// The task kind (one fused group's code), e.g. "qkv_matvec".
    pub kind: String,
    /// What it computes: the part `tile` (a union of boxes) of result `output` of the
    /// function's top-level op number `group` (a `fused.group`).
    pub group: usize,
    pub output: usize,
    pub tile: Vec<TileBox>,
    pub reads: Vec<Range>,
    pub writes: Vec<Range>,
    /// Ranges the task adds its values onto (f32, atomically): tasks adding onto the same
    /// bytes are not ordered among themselves, only after the bytes' last writer (and
    /// its readers) and before the bytes' next readers and writer.
    pub adds: Vec<Range>,
    /// Estimated global-memory bytes moved and floating-point operations.
    pub bytes: f64,
    pub flops: f64,
    /// Events whose counters must reach their target before the task starts.
    pub waits: Vec<EventId>,
    /// Events the task increments when it is done.
    pub signals: Vec<EventId>,
    /// Run by the task whose signal makes its only wait's event ready, on that task's SM
    /// right after it, instead of from a queue: work that depends on a few producers (the
    /// combine of attention's parts of a head) starts without a wait of its own and without
    /// an SM set aside for it. Such a task has exactly one wait and no queue slot.
    pub on_last_signal: bool,
}

/// A counter: ready once it has been signalled `target` times (in every step: a waiter in
/// step s waits for `target * s`, so counters are never reset).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub target: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskGraph {
    pub buffers: PrimaryMap<BufferId, Buffer>,
    pub tasks: PrimaryMap<TaskId, Task>,
    pub events: PrimaryMap<EventId, Event>,
}

/// The SM and queue order of every task: `queues[sm]` runs front to back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    pub queues: Vec<Vec<TaskId>>,
}

impl TaskGraph {
    pub fn add_buffer(&mut self, name: impl Into<String>, bytes: u64) -> BufferId {
        self.buffers.push(Buffer {
            name: name.into(),
            bytes,
        })
    }

    pub fn add_task(&mut self, task: Task) -> TaskId {
        self.tasks.push(task)
    }

    /// The earlier tasks `t` must wait for: for every byte it reads, the last earlier task
    /// that writes it (or the tasks that added onto it since); for every byte it writes, the
    /// tasks that read the byte since that write (or, if none did, those that added onto
    /// it, or that writer); for every byte it adds onto, what the first of the tasks adding
    /// onto it since then waited for (they run in any order among themselves). Every other earlier task touching the same
    /// bytes is ordered before `t` through these (a reader waited for the writer before it,
    /// a writer for the readers before it), so waiting for them too would only cost
    /// counters. Ascending.
    pub fn hazards(&self, t: TaskId) -> Vec<TaskId> {
        self.all_hazards().swap_remove(t.index())
    }

    /// [`TaskGraph::hazards`] of every task at once. Each buffer is cut into the intervals
    /// between range endpoints; each interval keeps its last writer and its readers since.
    pub fn all_hazards(&self) -> Vec<Vec<TaskId>> {
        let mut cuts: Vec<Vec<u64>> = vec![Vec::new(); self.buffers.len()];
        for task in self.tasks.values() {
            for r in task.reads.iter().chain(&task.writes).chain(&task.adds) {
                cuts[r.buffer.index()].extend([r.start, r.end]);
            }
        }
        for c in &mut cuts {
            c.sort_unstable();
            c.dedup();
        }
        let pieces = |r: &Range| {
            let c = &cuts[r.buffer.index()];
            let lo = c.partition_point(|&x| x < r.start);
            let hi = c.partition_point(|&x| x < r.end);
            lo..hi
        };
        let mut writer: Vec<Vec<Option<TaskId>>> =
            cuts.iter().map(|c| vec![None; c.len()]).collect();
        let mut readers: Vec<Vec<Vec<TaskId>>> =
            cuts.iter().map(|c| vec![vec![]; c.len()]).collect();
        // Per piece, the tasks adding onto it since its last write or read, and what the
        // first of them waited for.
        let mut adders: Vec<Vec<Vec<TaskId>>> = readers.clone();
        let mut add_base: Vec<Vec<Vec<TaskId>>> = readers.clone();
        let mut out = Vec::with_capacity(self.tasks.len());
        for (t, task) in &self.tasks {
            let mut deps = Vec::new();
            for r in &task.reads {
                let b = r.buffer.index();
                for p in pieces(r) {
                    if adders[b][p].is_empty() {
                        deps.extend(writer[b][p]);
                    } else {
                        deps.extend(&adders[b][p]);
                    }
                }
            }
            for r in &task.adds {
                let b = r.buffer.index();
                for p in pieces(r) {
                    if !readers[b][p].is_empty() {
                        add_base[b][p] = std::mem::take(&mut readers[b][p]);
                        adders[b][p].clear();
                    } else if adders[b][p].is_empty() {
                        add_base[b][p] = writer[b][p].into_iter().collect();
                    }
                    deps.extend(&add_base[b][p]);
                }
            }
            for r in &task.writes {
                let b = r.buffer.index();
                for p in pieces(r) {
                    // The readers since the last write each waited for that writer (and
                    // the adders since).
                    if !readers[b][p].is_empty() {
                        deps.extend(&readers[b][p]);
                    } else if !adders[b][p].is_empty() {
                        deps.extend(&adders[b][p]);
                    } else {
                        deps.extend(writer[b][p]);
                    }
                }
            }
            deps.sort_unstable();
            deps.dedup();
            deps.retain(|&d| d != t);
            for r in &task.reads {
                let b = r.buffer.index();
                for p in pieces(r) {
                    readers[b][p].push(t);
                }
            }
            for r in &task.adds {
                let b = r.buffer.index();
                for p in pieces(r) {
                    adders[b][p].push(t);
                }
            }
            for r in &task.writes {
                let b = r.buffer.index();
                for p in pieces(r) {
                    writer[b][p] = Some(t);
                    readers[b][p].clear();
                    adders[b][p].clear();
                    add_base[b][p].clear();
                }
            }
            out.push(deps);
        }
        out
    }

    /// Replaces all events so that every task waits for exactly its hazards, with few
    /// counters: a task that depends on every tile of one result waits on that result's
    /// counter (signalled by each tile; target = the number of tiles); its other producers
    /// are waited on one by one, except that producers whose one-by-one waiters are the
    /// same tasks share a counter.
    pub fn derive_events(&mut self) {
        use std::collections::HashMap;
        self.events.clear();
        let deps = self.all_hazards();
        let n = self.tasks.len();
        let key = |t: &Task| (t.group, t.output);
        let mut tiles: HashMap<(usize, usize), usize> = HashMap::new();
        for t in self.tasks.values() {
            *tiles.entry(key(t)).or_default() += 1;
        }
        let keys: Vec<(usize, usize)> = self.tasks.values().map(key).collect();
        // Per consumer: whole results it waits on, and single producers.
        let mut whole: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
        let mut single_of: Vec<Vec<TaskId>> = vec![Vec::new(); n];
        for (c, ds) in deps.iter().enumerate() {
            let mut count: HashMap<(usize, usize), usize> = HashMap::new();
            for d in ds {
                *count.entry(keys[d.index()]).or_default() += 1;
            }
            let mut w: Vec<(usize, usize)> = count
                .into_iter()
                .filter(|(k, m)| *m == tiles[k] && *m > 1)
                .map(|(k, _)| k)
                .collect();
            w.sort_unstable();
            for d in ds {
                if w.binary_search(&keys[d.index()]).is_err() {
                    single_of[d.index()].push(TaskId::new(c));
                }
            }
            whole[c] = w;
        }
        for task in self.tasks.values_mut() {
            task.waits.clear();
            task.signals.clear();
        }
        let awaited_whole: std::collections::HashSet<(usize, usize)> =
            whole.iter().flatten().copied().collect();
        let mut waits: Vec<Vec<EventId>> = vec![Vec::new(); n];
        let mut result_event: HashMap<(usize, usize), EventId> = HashMap::new();
        let mut shared: HashMap<Vec<TaskId>, EventId> = HashMap::new();
        for (t, consumers) in self.tasks.keys().zip(&single_of) {
            // Program order: a task's own counter comes before the ones made after it.
            let k = keys[t.index()];
            if !result_event.contains_key(&k) && awaited_whole.contains(&k) {
                let e = self.events.push(Event {
                    target: tiles[&k] as u32,
                });
                result_event.insert(k, e);
            }
            if let Some(&e) = result_event.get(&k) {
                self.tasks[t].signals.push(e);
            }
            if !consumers.is_empty() {
                let e = *shared
                    .entry(consumers.clone())
                    .or_insert_with(|| self.events.push(Event { target: 0 }));
                self.events[e].target += 1;
                self.tasks[t].signals.push(e);
                for c in consumers {
                    waits[c.index()].push(e);
                }
            }
        }
        for (c, w) in whole.iter().enumerate() {
            waits[c].extend(w.iter().map(|k| result_event[k]));
        }
        for (task, mut w) in self.tasks.values_mut().zip(waits) {
            w.sort_unstable();
            w.dedup();
            task.waits = w;
        }
    }

    /// Drops every wait that another wait of the same task already implies, and then the
    /// events nobody waits on. An event is ready only once all its signallers have signalled,
    /// each after its own waits (release and acquire at device scope chain: causality is
    /// transitive), so a wait on `e` implies every event some signaller of `e` waited on,
    /// and what those imply. Every awaited counter costs a poll and every signal an atomic:
    /// a layer's attention task waited on the qkv tiles that its rope task had waited on
    /// already, and on the memory reuse they had already waited for. Returns the waits
    /// dropped.
    pub fn prune_implied_waits(&mut self) -> usize {
        let ne = self.events.len();
        let words = ne.div_ceil(64);
        let signallers = self.signallers_by_event();
        // implied[e]: events ready whenever `e` is, built in task order (a waiter comes after
        // its event's signallers; an event with a later signaller implies nothing).
        let mut implied = vec![0u64; ne * words];
        let mut done = vec![0u64; words];
        let mut dropped = 0;
        let ids: Vec<TaskId> = self.tasks.keys().collect();
        for &t in &ids {
            let usable = |e: &EventId| signallers[e.index()].iter().all(|&s| s < t);
            let waits = self.tasks[t].waits.clone();
            let keep: Vec<EventId> = waits
                .iter()
                .copied()
                .filter(|&e| {
                    !waits.iter().any(|e2| {
                        *e2 != e
                            && usable(e2)
                            && implied[e2.index() * words + e.index() / 64] >> (e.index() % 64) & 1
                                == 1
                    })
                })
                .collect();
            dropped += waits.len() - keep.len();
            done.iter_mut().for_each(|w| *w = 0);
            for e in waits.iter().filter(|e| usable(e)) {
                done[e.index() / 64] |= 1 << (e.index() % 64);
                for (d, i) in done.iter_mut().zip(&implied[e.index() * words..][..words]) {
                    *d |= i;
                }
            }
            for e in &self.tasks[t].signals {
                for (i, d) in implied[e.index() * words..][..words].iter_mut().zip(&done) {
                    *i |= d;
                }
            }
            self.tasks[t].waits = keep;
        }
        // Renumber the events left, in order.
        let mut awaited = vec![false; ne];
        for task in self.tasks.values() {
            for e in &task.waits {
                awaited[e.index()] = true;
            }
        }
        let mut new_id: Vec<Option<EventId>> = vec![None; ne];
        let mut events = PrimaryMap::new();
        for (e, ev) in self.events.iter() {
            if awaited[e.index()] {
                new_id[e.index()] = Some(events.push(ev.clone()));
            }
        }
        self.events = events;
        for task in self.tasks.values_mut() {
            task.waits = task
                .waits
                .iter()
                .filter_map(|e| new_id[e.index()])
                .collect();
            task.signals = task
                .signals
                .iter()
                .filter_map(|e| new_id[e.index()])
                .collect();
        }
        dropped
    }

    /// The tasks that signal each event, in task order, indexed by event.
    pub fn signallers_by_event(&self) -> Vec<Vec<TaskId>> {
        let mut by = vec![Vec::new(); self.events.len()];
        for (t, task) in &self.tasks {
            for e in &task.signals {
                by[e.index()].push(t);
            }
        }
        by
    }

    /// The tasks that signal `e`.
    pub fn signallers(&self, e: EventId) -> Vec<TaskId> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.signals.contains(&e))
            .map(|(id, _)| id)
            .collect()
    }

    /// The task run on the last signal of each event (see [`Task::on_last_signal`]).
    pub fn on_last_signal(&self) -> Vec<Option<TaskId>> {
        let mut by = vec![None; self.events.len()];
        for (t, task) in self.tasks.iter().filter(|(_, t)| t.on_last_signal) {
            if let Some(e) = task.waits.first() {
                by[e.index()] = Some(t);
            }
        }
        by
    }

    /// Checks the events are consistent: every event is signalled by exactly `target` tasks,
    /// and no task waits on an event it signals itself.
    pub fn check_events(&self) -> Result<(), String> {
        for (e, ev) in &self.events {
            let n = self.signallers(e).len();
            if n != ev.target as usize {
                return Err(format!(
                    "{e} has target {} but {n} task(s) signal it",
                    ev.target
                ));
            }
        }
        for (t, task) in &self.tasks {
            if let Some(e) = task.waits.iter().find(|e| task.signals.contains(e)) {
                return Err(format!("{t} waits on {e}, which it signals itself"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Q4_0 matrix of 3 rows by 2 blocks (64 values a row), row-major and K-block-major:
    /// where each element's block lies, and the ranges of a K slice over every row.
    #[test]
    fn k_block_major_blocks_put_a_slice_of_k_in_one_span_a_plane() {
        let f = crate::quant::BlockFormat::Q4_0;
        let ty = crate::TensorType::new(vec![3, 64], crate::ElemType::Block(f));
        let rows = Layout::of_type(BufferId::from_u32(0), 100, &ty);
        let kmaj = Layout {
            perm: vec![1, 0],
            ..rows.clone()
        };
        assert!(kmaj.k_block_major() && !rows.k_block_major());
        // Six blocks: payloads of 16 bytes from 100, scales of 2 bytes from 196.
        let at = |l: &Layout, n: u64, k: u64| l.block_parts(n * 64 + k).unwrap();
        assert_eq!(at(&rows, 1, 40), [(100 + 3 * 16, 16), (196 + 3 * 2, 2)]);
        assert_eq!(at(&kmaj, 1, 40), [(100 + 4 * 16, 16), (196 + 4 * 2, 2)]);
        assert_eq!(at(&kmaj, 2, 0), [(100 + 2 * 16, 16), (196 + 2 * 2, 2)]);
        assert_eq!(kmaj.addr(2 * 64 + 33), 100 + 5 * 16);
        // K 32..64 over every row: one span a plane (three rows a span); row-major, a range
        // a row.
        let r = |a: u64, b: u64| Range::new(BufferId::from_u32(0), a, b);
        assert_eq!(
            kmaj.ranges(&[(0, 3), (32, 64)]),
            vec![r(148, 196), r(202, 208)]
        );
        assert_eq!(rows.ranges(&[(0, 3), (32, 64)]).len(), 6);
        // All of K for rows 1..3: a span of two rows in each K block's run, merged where
        // they touch.
        assert_eq!(
            kmaj.ranges(&[(1, 3), (0, 64)]),
            vec![r(116, 148), r(164, 196), r(198, 202), r(204, 208)]
        );
        // Every box's ranges hold the blocks of its elements and nothing else.
        for l in [&rows, &kmaj] {
            for b in [
                [(0, 3), (0, 64)],
                [(1, 2), (32, 64)],
                [(0, 2), (0, 32)],
                [(2, 3), (0, 64)],
            ] {
                let ranges = l.ranges(&b);
                let mut bytes = 0;
                let mut seen = std::collections::BTreeSet::new();
                for n in b[0].0..b[0].1 {
                    for k in b[1].0..b[1].1 {
                        for (at, len) in l.block_parts((n * 64 + k) as u64).unwrap() {
                            let inside = ranges.iter().any(|r| r.start <= at && at + len <= r.end);
                            assert!(inside, "{:?} box {b:?}: ({n}, {k}) at {at}", l.perm);
                            if seen.insert(at) {
                                bytes += len;
                            }
                        }
                    }
                }
                let covered: u64 = ranges.iter().map(|r| r.end - r.start).sum();
                assert_eq!(covered, bytes, "{:?} box {b:?}", l.perm);
            }
        }
    }

    /// Two matvec tiles write halves of `h`; two down-proj tiles each read one half.
    fn two_stage() -> (TaskGraph, [TaskId; 4]) {
        let mut g = TaskGraph::default();
        let h = g.add_buffer("h", 64);
        let y = g.add_buffer("y", 64);
        let mut t = |reads: Vec<Range>, writes: Vec<Range>| {
            g.add_task(Task {
                kind: "k".into(),
                reads,
                writes,
                bytes: 1.0,
                ..Default::default()
            })
        };
        let a = t(vec![], vec![Range::new(h, 0, 32)]);
        let b = t(vec![], vec![Range::new(h, 32, 64)]);
        let c = t(vec![Range::new(h, 0, 32)], vec![Range::new(y, 0, 32)]);
        let d = t(vec![Range::new(h, 32, 64)], vec![Range::new(y, 32, 64)]);
        (g, [a, b, c, d])
    }

    #[test]
    fn a_consumer_waits_only_for_the_producer_of_its_slice() {
        let (mut g, [a, b, c, d]) = two_stage();
        assert_eq!(g.hazards(c), vec![a]);
        assert_eq!(g.hazards(d), vec![b]);
        g.derive_events();
        g.check_events().unwrap();
        assert_eq!(g.events.len(), 2);
        assert_eq!(g.tasks[c].waits, g.tasks[a].signals);
        assert_eq!(g.tasks[d].waits, g.tasks[b].signals);
        assert!(g.tasks[a].waits.is_empty() && g.tasks[c].signals.is_empty());
    }

    /// a writes x; b reads x, writes y; c reads x and y (waits on a and b); d writes z;
    /// e reads y and z.
    fn diamond() -> (TaskGraph, [TaskId; 5]) {
        let mut g = TaskGraph::default();
        let buf = g.add_buffer("arena", 64);
        let r = |a: u64| Range::new(buf, a, a + 16);
        let mut t = |reads: Vec<Range>, writes: Vec<Range>| {
            g.add_task(Task {
                kind: "k".into(),
                reads,
                writes,
                ..Default::default()
            })
        };
        let a = t(vec![], vec![r(0)]);
        let b = t(vec![r(0)], vec![r(16)]);
        let c = t(vec![r(0), r(16)], vec![]);
        let d = t(vec![], vec![r(32)]);
        let e = t(vec![r(16), r(32)], vec![]);
        g.derive_events();
        (g, [a, b, c, d, e])
    }

    #[test]
    fn a_wait_another_wait_implies_is_dropped() {
        let (mut g, [a, b, c, d, e]) = diamond();
        assert_eq!(g.tasks[c].waits.len(), 2, "c waits on a and on b");
        let before = g.events.len();
        assert_eq!(g.prune_implied_waits(), 1);
        g.check_events().unwrap();
        // b waited on a, so c's wait on b implies a's; a's counter then has one waiter (b).
        assert_eq!(g.tasks[c].waits, g.tasks[b].signals);
        assert_eq!(g.tasks[b].waits, g.tasks[a].signals);
        // d is no ancestor of b: e keeps both waits.
        assert_eq!(g.tasks[e].waits.len(), 2);
        assert!(g.tasks[e]
            .waits
            .iter()
            .any(|w| g.tasks[d].signals.contains(w)));
        // a's counter for c alone (if derive_events made one) is gone with its last waiter.
        assert!(g.events.len() <= before);
        for t in [a, b, d] {
            assert!(g.tasks[t]
                .signals
                .iter()
                .all(|s| g.tasks.values().any(|u| u.waits.contains(s))));
        }
    }

    #[test]
    fn an_event_with_a_later_signaller_implies_nothing() {
        // Program order broken on purpose: the consumer of `b`'s event comes before b.
        let (mut g, [_, b, c, ..]) = diamond();
        let eb = g.tasks[b].signals[0];
        let late = g.add_task(Task {
            kind: "k".into(),
            signals: vec![eb],
            ..Default::default()
        });
        g.events[eb].target += 1;
        let _ = late;
        let waits = g.tasks[c].waits.clone();
        g.prune_implied_waits();
        assert_eq!(g.tasks[c].waits.len(), waits.len());
    }

    /// w writes r; four tasks add onto r (two over all of it, two over halves); a reader
    /// of all of r, then one more adder, then a writer.
    #[test]
    fn tasks_adding_onto_bytes_wait_for_their_writer_not_for_each_other() {
        let mut g = TaskGraph::default();
        let buf = g.add_buffer("arena", 64);
        let (all, lo, hi) = (
            Range::new(buf, 0, 64),
            Range::new(buf, 0, 32),
            Range::new(buf, 32, 64),
        );
        let mut t = |reads: Vec<Range>, writes: Vec<Range>, adds: Vec<Range>| {
            g.add_task(Task {
                kind: "k".into(),
                reads,
                writes,
                adds,
                ..Default::default()
            })
        };
        let w = t(vec![], vec![all.clone()], vec![]);
        let a1 = t(vec![], vec![], vec![all.clone()]);
        let a2 = t(vec![], vec![], vec![lo.clone()]);
        let a3 = t(vec![], vec![], vec![hi.clone()]);
        let a4 = t(vec![], vec![], vec![all.clone()]);
        let r = t(vec![all.clone()], vec![], vec![]);
        let a5 = t(vec![], vec![], vec![lo.clone()]);
        let half = t(vec![hi.clone()], vec![], vec![]);
        let w2 = t(vec![], vec![all.clone()], vec![]);
        for a in [a1, a2, a3, a4] {
            assert_eq!(g.hazards(a), vec![w], "{a}");
        }
        assert_eq!(g.hazards(r), vec![a1, a2, a3, a4]);
        assert_eq!(g.hazards(a5), vec![r]);
        // The upper half's adders since the write, not the later adder of the lower half.
        assert_eq!(g.hazards(half), vec![a1, a3, a4]);
        // The lower half: the adder since the read; the upper half: its readers.
        assert_eq!(g.hazards(w2), vec![r, a5, half]);
        g.derive_events();
        g.check_events().unwrap();
        let waits_on = |x: TaskId, y: TaskId| {
            g.tasks[x]
                .waits
                .iter()
                .any(|e| g.tasks[y].signals.contains(e))
        };
        assert!(waits_on(r, a1) && waits_on(r, a4) && !waits_on(a4, a1));
    }

    #[test]
    fn reuse_of_memory_orders_the_overwrite_after_the_reads() {
        let (mut g, [a, b, c, d]) = two_stage();
        let h = BufferId::from_u32(0);
        // A later task overwrites all of h: it must wait for both readers, which waited
        // for the writers.
        let e = g.add_task(Task {
            writes: vec![Range::new(h, 0, 64)],
            ..Default::default()
        });
        assert_eq!(g.hazards(e), vec![c, d]);
        // With no reader in between, an overwrite waits for the writer itself; a reader
        // after it waits for the last writer only.
        let y = BufferId::from_u32(1);
        let f = g.add_task(Task {
            writes: vec![Range::new(y, 16, 48)],
            ..Default::default()
        });
        assert_eq!(g.hazards(f), vec![c, d]);
        let r = g.add_task(Task {
            reads: vec![Range::new(y, 0, 64), Range::new(h, 0, 8)],
            ..Default::default()
        });
        assert_eq!(g.hazards(r), vec![c, d, e, f]);
        let _ = (a, b);
    }

    #[test]
    fn a_layout_maps_boxes_to_merged_byte_runs() {
        let buf = BufferId::from_u32(0);
        // A [ctx=4, heads=2, dim=3] f32 cache stored heads-first.
        let mut l = Layout::row_major(buf, 100, vec![4, 2, 3], 4);
        l.perm = vec![1, 0, 2];
        // One head, every position: one contiguous run of 4 * 3 elements.
        assert_eq!(
            l.ranges(&[(0, 4), (1, 2), (0, 3)]),
            vec![Range::new(buf, 100 + 48, 100 + 96)]
        );
        // Row-major, the same box is four runs.
        let r = Layout::row_major(buf, 0, vec![4, 2, 3], 4);
        assert_eq!(r.ranges(&[(0, 4), (1, 2), (0, 3)]).len(), 4);
        // Element (2, 1, 1) of the heads-first layout: head 1, position 2, lane 1.
        assert_eq!(l.addr(2 * 6 + 3 + 1), 100 + (12 + 2 * 3 + 1) * 4);
        assert_eq!(r.addr(2 * 6 + 3 + 1), (2 * 6 + 3 + 1) * 4);
        // A scalar is one element.
        let s = Layout::row_major(buf, 8, vec![], 8);
        assert_eq!(s.ranges(&[]), vec![Range::new(buf, 8, 16)]);
    }

    /// Every box of small layouts (each axis order) against its elements' addresses, one
    /// element a run, merged.
    #[test]
    fn layout_runs_are_the_boxes_elements() {
        let buf = BufferId::from_u32(0);
        let shape = vec![3i64, 2, 4];
        let boxes_of = |d: i64| -> Vec<(i64, i64)> {
            (0..d)
                .flat_map(|lo| (lo + 1..=d).map(move |hi| (lo, hi)))
                .collect()
        };
        for perm in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let mut l = Layout::row_major(buf, 16, shape.clone(), 2);
            l.perm = perm.to_vec();
            let at = l.addresser();
            for b0 in boxes_of(3) {
                for b1 in boxes_of(2) {
                    for b2 in boxes_of(4) {
                        let b = [b0, b1, b2];
                        let mut addrs: Vec<u64> = Vec::new();
                        for i in b0.0..b0.1 {
                            for j in b1.0..b1.1 {
                                for k in b2.0..b2.1 {
                                    addrs.push(at((i * 8 + j * 4 + k) as u64));
                                }
                            }
                        }
                        addrs.sort_unstable();
                        let mut want: Vec<Range> = Vec::new();
                        for a in addrs {
                            match want.last_mut() {
                                Some(r) if r.end == a => r.end = a + 2,
                                _ => want.push(Range::new(buf, a, a + 2)),
                            }
                        }
                        assert_eq!(l.ranges(&b), want, "perm {perm:?}, box {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn inconsistent_events_are_reported() {
        let (mut g, [a, ..]) = two_stage();
        g.derive_events();
        let e = g.tasks[a].signals[0];
        g.events[e].target = 2;
        assert!(g
            .check_events()
            .unwrap_err()
            .contains("has target 2 but 1 task(s)"));
    }
}
