//! The task tables the kernel walks: a record per task (its code, the weight spans it
//! asks into L2, its waits, its signals and the code's parameters), the queue entries, and
//! per SM its queue.

use crate::code::Codes;
use mkc_ir::dialect::kernel::KernelConfig;
use mkc_ir::dialect::task::{Schedule, TaskProgram};
use mkc_ir::EntityRef;

/// The most bytes one prefetch instruction asks for (a table entry).
const PREFETCH_CHUNK: u64 = 16 << 10;

/// The tables, as i64 words.
pub(crate) struct Tables {
    /// The records (padded: a copy past the last record stays inside).
    pub(crate) tasks: Vec<i64>,
    /// Per queue entry, the word where its task's record starts.
    pub(crate) entries: Vec<i64>,
    /// Per SM, (first entry, number of entries).
    pub(crate) queues: Vec<i64>,
    /// Words of a record each thread copies, and the length of a record buffer.
    pub(crate) per_thread: usize,
    pub(crate) rec_len: usize,
}

/// The tables of a scheduled program whose tasks' codes and parameters are `codes`'.
pub(crate) fn tables(
    program: &TaskProgram,
    schedule: &Schedule,
    codes: &Codes,
    opts: &KernelConfig,
) -> Tables {
    let plans = &codes.tasks;
    // The tables: one record per task, entries per SM queue. A record: code, the weight
    // spans to prefetch into L2 (count, then byte offset and length each), waits (count,
    // then event and target each), signals (count, then events), the code's parameters.
    // A CTA copies each record into shared memory before the task runs (the next one while
    // the current one computes), so the task reads its words at shared-memory latency: the
    // table itself is evicted from L2 by the weights streaming past every step.
    let weights = program
        .graph
        .buffers
        .iter()
        .find(|(_, b)| b.name == "weights")
        .map(|(id, _)| id);
    // Which task follows each task in its SM's queue, and which tasks open a queue.
    let mut next_in_queue = vec![None; program.graph.tasks.len()];
    let mut opens_queue = vec![false; program.graph.tasks.len()];
    for q in &schedule.queues {
        for w in q.windows(2) {
            next_in_queue[w[0].index()] = Some(w[1]);
        }
        if let Some(t) = q.first() {
            opens_queue[t.index()] = true;
        }
    }
    // Tasks run on the last signal of an event (`Task::on_last_signal`) have no queue: their
    // entries (for the profile's stamps) follow every queue's.
    let queued_entries: usize = schedule.queues.iter().map(Vec::len).sum();
    let mut run_entry = vec![-1i64; program.graph.tasks.len()];
    let mut inline_tasks = Vec::new();
    for (t, task) in &program.graph.tasks {
        if task.on_last_signal {
            run_entry[t.index()] = (queued_entries + inline_tasks.len()) as i64;
            inline_tasks.push(t);
        }
    }
    let runs_on = program.graph.on_last_signal();
    let mut tasks_words: Vec<i64> = Vec::new();
    let mut record_at = vec![0i64; program.graph.tasks.len()];
    let mut record_max = 0usize;
    // Words to fill with the record of a task laid out later.
    let mut record_refs: Vec<(usize, mkc_ir::dialect::task::TaskId)> = Vec::new();
    for (t, task) in &program.graph.tasks {
        let (c, plan) = &plans[t.index()];
        let at = tasks_words.len();
        record_at[t.index()] = at as i64;
        tasks_words.push(*c as i64);
        // The weights asked into L2 before the wait: the task's own, or (prefetch_next) the
        // next task's of the queue, so they stream while this one waits and computes (the
        // first task of a queue asks for its own too).
        let mut spans = Vec::new();
        if !opts.prefetch_next || opens_queue[t.index()] {
            spans.extend(prefetch_spans(task, weights, opts.prefetch_bytes));
        }
        if opts.prefetch_next {
            if let Some(n) = next_in_queue[t.index()] {
                let next = &program.graph.tasks[n];
                spans.extend(prefetch_spans(next, weights, opts.prefetch_bytes));
            }
        }
        tasks_words.push(spans.len() as i64);
        for (start, len) in spans {
            tasks_words.extend([start as i64, len as i64]);
        }
        // (A task run on its wait's last signal starts with it ready.)
        let waits: &[mkc_ir::dialect::task::EventId] = if task.on_last_signal {
            &[]
        } else {
            &task.waits
        };
        tasks_words.push(waits.len() as i64);
        for e in waits {
            tasks_words.extend([e.index() as i64, program.graph.events[*e].target as i64]);
        }
        // Signals: their count, the record + 1 of the task one of them runs (0: none), then
        // per signal its event, the event's target, and the record and entry of the task
        // its last signal runs (-1).
        tasks_words.push(task.signals.len() as i64);
        // (At most one signal runs a task, so one word names it: its record + 1, or 0.)
        match task.signals.iter().find_map(|e| runs_on[e.index()]) {
            Some(r) => {
                record_refs.push((tasks_words.len(), r));
                tasks_words.push(-2);
            }
            None => tasks_words.push(0),
        }
        for e in &task.signals {
            tasks_words.extend([e.index() as i64, program.graph.events[*e].target as i64]);
            match runs_on[e.index()] {
                Some(r) => {
                    record_refs.push((tasks_words.len(), r));
                    tasks_words.extend([-1, run_entry[r.index()]]);
                }
                None => tasks_words.extend([-1, -1]),
            }
        }
        tasks_words.extend(plan.offsets.iter().map(|&o| o as i64));
        tasks_words.extend(&plan.boxes);
        record_max = record_max.max(tasks_words.len() - at);
    }
    for (at, r) in record_refs {
        // (-2 marks the header word: the record + 1.)
        tasks_words[at] = record_at[r.index()] + (tasks_words[at] == -2) as i64;
    }
    // Every thread copies the words tid, tid + threads, ... of a record: `per_thread` words,
    // each record buffer `per_thread * threads` long. The table is padded so that copying
    // past the last record stays inside it.
    let threads = opts.threads as usize;
    let per_thread = record_max.div_ceil(threads).max(1);
    let rec_len = per_thread * threads;
    tasks_words.resize(tasks_words.len() + rec_len, 0);
    let mut entries: Vec<i64> = Vec::new();
    let mut queues: Vec<i64> = Vec::new();
    for q in &schedule.queues {
        queues.extend([entries.len() as i64, q.len() as i64]);
        entries.extend(q.iter().map(|t| record_at[t.index()]));
    }
    entries.extend(inline_tasks.iter().map(|t| record_at[t.index()]));

    Tables {
        tasks: tasks_words,
        entries,
        queues,
        per_thread,
        rec_len,
    }
}

/// The spans of weights a task reads, the first `budget` bytes of them, 16-byte aligned
/// inside each span, in pieces of at most [`PREFETCH_CHUNK`] bytes: (byte offset, length).
pub(crate) fn prefetch_spans(
    task: &mkc_ir::dialect::task::Task,
    weights: Option<mkc_ir::dialect::task::BufferId>,
    budget: u64,
) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    let mut left = budget;
    for r in task.reads.iter().filter(|r| Some(r.buffer) == weights) {
        let mut start = r.start.div_ceil(16) * 16;
        let end = (r.end / 16 * 16).min(start + left);
        while start < end && left > 0 {
            let len = (end - start).min(PREFETCH_CHUNK);
            spans.push((start, len));
            start += len;
            left -= len;
        }
    }
    spans
}
