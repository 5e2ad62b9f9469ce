//! The queues of a scheduled task graph, stepped with the GPU's semantics on the CPU.
//! Every SM walks its queue in order; which SM moves next is drawn at random (seeded), so
//! different seeds explore different interleavings; events are real counters. It stops with
//! an error that names the tasks on a deadlock (no SM can move) or when a task touches bytes
//! whose producing task has not run yet (a missing dependency). Steps repeat with counters
//! that only grow: a wait in step s needs `target * s` signals. Steps do not overlap: each
//! decode step is one kernel launch, so a step's tasks all finish before the next starts.
//!
//! [`simulate`] checks the synchronisation alone; [`super::Simulator`] also runs every task's
//! arithmetic on device-like memory (the parent module).

use mkc_ir::dialect::task::{Schedule, TaskGraph, TaskId};

#[derive(Clone, Debug, PartialEq)]
pub enum SimError {
    /// The schedule is malformed (a task missing or queued twice).
    Schedule(String),
    /// No SM can move: each blocked SM's head task and the events it waits for.
    Deadlock(String),
    /// A task touched bytes an earlier task (in program order) writes or reads, before that
    /// task ran.
    MissingDependency(String),
    /// A task's arithmetic failed, or computed from bytes it does not declare.
    Task(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Schedule(m) => write!(f, "invalid schedule: {m}"),
            SimError::Deadlock(m) => write!(f, "deadlock: {m}"),
            SimError::MissingDependency(m) => write!(f, "missing dependency: {m}"),
            SimError::Task(m) => write!(f, "{m}"),
        }
    }
}

/// SplitMix64: a tiny, well-mixed seeded generator; all the simulator needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Runs `steps` decode steps of the schedule with one seeded interleaving. Returns the
/// order the tasks ran in.
pub fn simulate(
    g: &TaskGraph,
    s: &Schedule,
    steps: u32,
    seed: u64,
) -> Result<Vec<TaskId>, SimError> {
    let mut q = Queues::new(g, s, seed)?;
    let mut order = Vec::with_capacity(g.tasks.len() * steps as usize);
    for _ in 0..steps {
        q.step(g, s, &mut |t| {
            order.push(t);
            Ok(())
        })?;
    }
    Ok(order)
}

/// The SM queues and event counters across steps.
pub struct Queues {
    /// Per task, the earlier tasks that touch the same bytes (one of them writing).
    hazards: Vec<Vec<TaskId>>,
    /// Per event, the task its last signal runs.
    on_last_signal: Vec<Option<TaskId>>,
    rng: Rng,
    counters: Vec<u64>,
    step: u64,
}

impl Queues {
    /// Queues for no tasks (a placeholder while a step borrows the real ones).
    pub fn empty() -> Queues {
        Queues {
            hazards: Vec::new(),
            on_last_signal: Vec::new(),
            rng: Rng(0),
            counters: Vec::new(),
            step: 0,
        }
    }

    /// Checks the schedule holds every task exactly once.
    pub fn new(g: &TaskGraph, s: &Schedule, seed: u64) -> Result<Queues, SimError> {
        let n = g.tasks.len();
        let mut seen = vec![false; n];
        for q in &s.queues {
            for &t in q {
                let i = t.as_u32() as usize;
                if i >= n {
                    return Err(SimError::Schedule(format!("{t} does not exist")));
                }
                if std::mem::replace(&mut seen[i], true) {
                    return Err(SimError::Schedule(format!("{t} is queued twice")));
                }
            }
        }
        for (t, task) in g.tasks.iter() {
            if task.on_last_signal && std::mem::replace(&mut seen[t.as_u32() as usize], true) {
                return Err(SimError::Schedule(format!(
                    "{t} runs on the last signal of an event and is queued too"
                )));
            }
        }
        if let Some(i) = seen.iter().position(|&x| !x) {
            return Err(SimError::Schedule(format!(
                "{} is on no queue",
                g.tasks.keys().nth(i).expect("in range")
            )));
        }
        Ok(Queues {
            hazards: g.all_hazards(),
            on_last_signal: g.on_last_signal(),
            rng: Rng(seed),
            counters: vec![0; g.events.len()],
            step: 0,
        })
    }

    /// Runs one step: SMs move in a random order, each task runs (`run`) once its events
    /// are ready, after checking every conflicting earlier task has run.
    pub fn step(
        &mut self,
        g: &TaskGraph,
        s: &Schedule,
        run: &mut dyn FnMut(TaskId) -> Result<(), SimError>,
    ) -> Result<(), SimError> {
        self.step += 1;
        let step = self.step;
        let n = g.tasks.len();
        let mut head = vec![0usize; s.queues.len()];
        let mut done = vec![false; n];
        let counters = &mut self.counters;
        let ready = |t: TaskId, counters: &[u64]| {
            g.tasks[t]
                .waits
                .iter()
                .all(|e| counters[e.as_u32() as usize] >= g.events[*e].target as u64 * step)
        };
        let queued: usize = s.queues.iter().map(Vec::len).sum();
        for _ in 0..queued {
            let movable: Vec<usize> = (0..s.queues.len())
                .filter(|&sm| {
                    s.queues[sm]
                        .get(head[sm])
                        .is_some_and(|&t| ready(t, counters))
                })
                .collect();
            if movable.is_empty() {
                let blocked: Vec<String> = (0..s.queues.len())
                    .filter_map(|sm| {
                        let t = *s.queues[sm].get(head[sm])?;
                        let waits: Vec<String> = g.tasks[t]
                            .waits
                            .iter()
                            .filter(|e| {
                                counters[e.as_u32() as usize] < g.events[**e].target as u64 * step
                            })
                            .map(|&e| {
                                let by: Vec<String> =
                                    g.signallers(e).iter().map(|x| x.to_string()).collect();
                                format!("{e} (signalled by {})", by.join(", "))
                            })
                            .collect();
                        Some(format!("sm {sm}: {t} waits for {}", waits.join(", ")))
                    })
                    .collect();
                return Err(SimError::Deadlock(format!(
                    "step {step}: {}",
                    blocked.join("; ")
                )));
            }
            let sm = movable[(self.rng.next() % movable.len() as u64) as usize];
            let mut next = Some(s.queues[sm][head[sm]]);
            head[sm] += 1;
            // A task, then the task its last signal runs (on the same SM), if any.
            while let Some(t) = next.take() {
                let i = t.as_u32() as usize;
                if let Some(&p) = self.hazards[i].iter().find(|p| !done[p.as_u32() as usize]) {
                    let task = &g.tasks[t];
                    let prod = &g.tasks[p];
                    let range = task
                        .reads
                        .iter()
                        .chain(&task.writes)
                        .chain(&task.adds)
                        .find(|r| {
                            prod.writes
                                .iter()
                                .chain(&prod.reads)
                                .chain(&prod.adds)
                                .any(|w| w.overlaps(r))
                        })
                        .map(|r| r.to_string())
                        .unwrap_or_default();
                    return Err(SimError::MissingDependency(format!(
                        "step {step}: {t} ({}) on sm {sm} touches {range} before {p} ({}) has run",
                        task.kind, prod.kind
                    )));
                }
                run(t)?;
                done[i] = true;
                for e in &g.tasks[t].signals {
                    let c = &mut counters[e.as_u32() as usize];
                    *c += 1;
                    if *c == g.events[*e].target as u64 * step {
                        if let Some(r) = self.on_last_signal[e.as_u32() as usize] {
                            next = Some(r);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkc_ir::dialect::task::{Range, Task};

    /// Producers of h's two halves, then one consumer per half, all events derived.
    fn graph() -> TaskGraph {
        let mut g = TaskGraph::default();
        let h = g.add_buffer("h", 64);
        let y = g.add_buffer("y", 64);
        for (reads, writes) in [
            (vec![], vec![Range::new(h, 0, 32)]),
            (vec![], vec![Range::new(h, 32, 64)]),
            (vec![Range::new(h, 0, 32)], vec![Range::new(y, 0, 32)]),
            (vec![Range::new(h, 32, 64)], vec![Range::new(y, 32, 64)]),
        ] {
            g.add_task(Task {
                kind: if writes[0].buffer == h { "up" } else { "down" }.into(),
                reads,
                writes,
                ..Default::default()
            });
        }
        g.derive_events();
        g
    }

    fn t(i: u32) -> TaskId {
        TaskId::from_u32(i)
    }

    /// Producers on one SM, consumers on the other: correct only through the events.
    fn split() -> Schedule {
        Schedule {
            queues: vec![vec![t(0), t(1)], vec![t(2), t(3)]],
        }
    }

    /// Two parts write halves of p; a combine reads both and writes c, run on the last
    /// signal of the parts' event; a consumer (queued) reads c.
    fn combine_graph() -> TaskGraph {
        let mut g = TaskGraph::default();
        let p = g.add_buffer("p", 64);
        let c = g.add_buffer("c", 32);
        let y = g.add_buffer("y", 32);
        for (kind, reads, writes) in [
            ("part", vec![], vec![Range::new(p, 0, 32)]),
            ("part", vec![], vec![Range::new(p, 32, 64)]),
            (
                "combine",
                vec![Range::new(p, 0, 64)],
                vec![Range::new(c, 0, 32)],
            ),
            (
                "use",
                vec![Range::new(c, 0, 32)],
                vec![Range::new(y, 0, 32)],
            ),
        ] {
            g.add_task(Task {
                kind: kind.into(),
                reads,
                writes,
                ..Default::default()
            });
        }
        g.derive_events();
        g.tasks[t(2)].on_last_signal = true;
        g
    }

    #[test]
    fn a_task_runs_on_the_last_signal_of_its_event_once_a_step() {
        let g = combine_graph();
        assert_eq!(g.tasks[t(2)].waits.len(), 1);
        let s = Schedule {
            queues: vec![vec![t(0)], vec![t(1), t(3)]],
        };
        for seed in 0..50 {
            let order = simulate(&g, &s, 3, seed).unwrap();
            assert_eq!(order.len(), 12, "{order:?}");
            for step in order.chunks(4) {
                // Right after the second part (whichever SM ran it), before its consumer.
                assert_eq!(&step[2..], &[t(2), t(3)], "{step:?}");
            }
        }
        // Queued too, it is reported.
        let twice = Schedule {
            queues: vec![vec![t(0), t(2)], vec![t(1), t(3)]],
        };
        assert!(matches!(
            simulate(&g, &twice, 1, 0),
            Err(SimError::Schedule(m)) if m.contains("task2 runs on the last signal")
        ));
    }

    #[test]
    fn a_correct_schedule_runs_for_every_seed() {
        let g = graph();
        for seed in 0..50 {
            let order = simulate(&g, &split(), 3, seed).unwrap();
            assert_eq!(order.len(), 12);
        }
    }

    #[test]
    fn a_removed_dependency_is_caught_and_named() {
        let mut g = graph();
        g.tasks[t(3)].waits.clear();
        let errs: Vec<SimError> = (0..50)
            .filter_map(|seed| simulate(&g, &split(), 1, seed).err())
            .collect();
        assert!(!errs.is_empty(), "no seed ran the consumer early");
        let SimError::MissingDependency(m) = &errs[0] else {
            panic!("{:?}", errs[0])
        };
        assert!(
            m.contains("task3 (down) on sm 1 touches buf0[32..64] before task1 (up) has run"),
            "{m}"
        );
    }

    #[test]
    fn a_cyclic_schedule_is_a_deadlock_that_names_the_tasks() {
        let g = graph();
        // task2 waits for task0, queued behind task3, which waits for task1, queued
        // behind task2 on the other SM.
        let s = Schedule {
            queues: vec![vec![t(2), t(1)], vec![t(3), t(0)]],
        };
        let e = simulate(&g, &s, 1, 0).unwrap_err();
        let SimError::Deadlock(m) = &e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("sm 0: task2 waits for event0 (signalled by task0)"),
            "{m}"
        );
        assert!(
            m.contains("sm 1: task3 waits for event1 (signalled by task1)"),
            "{m}"
        );
    }

    #[test]
    fn malformed_schedules_are_rejected() {
        let g = graph();
        let s = Schedule {
            queues: vec![vec![t(0), t(1), t(2)], vec![t(2)]],
        };
        assert_eq!(
            simulate(&g, &s, 1, 0),
            Err(SimError::Schedule("task2 is queued twice".into()))
        );
        let s = Schedule {
            queues: vec![vec![t(0), t(1), t(2)]],
        };
        assert_eq!(
            simulate(&g, &s, 1, 0),
            Err(SimError::Schedule("task3 is on no queue".into()))
        );
    }
}
