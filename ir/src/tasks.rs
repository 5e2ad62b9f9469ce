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

/// A named region of memory: an activation, a KV cache, a weight.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    pub name: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Task {
    /// The task kind (one fused group's code), e.g. "qkv_matvec".
    pub kind: String,
    pub reads: Vec<Range>,
    pub writes: Vec<Range>,
    /// Estimated global-memory bytes moved and floating-point operations.
    pub bytes: f64,
    pub flops: f64,
    /// Events whose counters must reach their target before the task starts.
    pub waits: Vec<EventId>,
    /// Events the task increments when it is done.
    pub signals: Vec<EventId>,
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

    /// Earlier tasks that `t` conflicts with: it reads bytes they write (read after write),
    /// or writes bytes they read or write (write after read/write). Ascending.
    pub fn hazards(&self, t: TaskId) -> Vec<TaskId> {
        let task = &self.tasks[t];
        let any = |a: &[Range], b: &[Range]| a.iter().any(|x| b.iter().any(|y| x.overlaps(y)));
        self.tasks
            .iter()
            .take_while(|(u, _)| *u < t)
            .filter(|(_, u)| {
                any(&task.reads, &u.writes)
                    || any(&task.writes, &u.reads)
                    || any(&task.writes, &u.writes)
            })
            .map(|(u, _)| u)
            .collect()
    }

    /// Replaces all events: one per task that another task conflicts with, signalled by that
    /// task alone (target 1); every task waits on the events of exactly its hazards.
    pub fn derive_events(&mut self) {
        self.events.clear();
        let ids: Vec<TaskId> = self.tasks.keys().collect();
        let deps: Vec<Vec<TaskId>> = ids.iter().map(|&t| self.hazards(t)).collect();
        let mut event_of: Vec<Option<EventId>> = vec![None; ids.len()];
        for task in self.tasks.values_mut() {
            task.waits.clear();
            task.signals.clear();
        }
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                let e = *event_of[d.index()].get_or_insert_with(|| {
                    let e = self.events.push(Event { target: 1 });
                    self.tasks[d].signals.push(e);
                    e
                });
                self.tasks[ids[i]].waits.push(e);
            }
        }
    }

    /// The tasks that signal `e`.
    pub fn signallers(&self, e: EventId) -> Vec<TaskId> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.signals.contains(&e))
            .map(|(id, _)| id)
            .collect()
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

    #[test]
    fn reuse_of_memory_orders_the_overwrite_after_the_reads() {
        let (mut g, [_, _, c, d]) = two_stage();
        let h = BufferId::from_u32(0);
        // A later task overwrites all of h: it must wait for both readers (and writers).
        let e = g.add_task(Task {
            writes: vec![Range::new(h, 0, 64)],
            ..Default::default()
        });
        assert_eq!(
            g.hazards(e),
            vec![TaskId::from_u32(0), TaskId::from_u32(1), c, d]
        );
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
