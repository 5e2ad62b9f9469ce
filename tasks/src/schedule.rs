//! Scheduling a task graph onto SMs: list scheduling in program order under a
//! bandwidth-share cost model, and the schedule's estimate of the step time.
//!
//! Program order (`TaskId` order) is a topological order of the events (a task waits only
//! on earlier tasks), and every SM's queue keeps it, so the schedule cannot deadlock: the
//! earliest unfinished task is always at the head of its queue with its producers done.
//!
//! The estimate follows the GPU design: an SM may start streaming a task's weights as soon
//! as it is free, before the task's events are ready, up to `prefetch_bytes` (0 by default:
//! the default kernel reads nothing before a wait); everything else, and all a task reads
//! that is not a weight, streams after the wait. So a wait costs time only when the
//! producers finish later than the prefetched bytes take to arrive.
//!
//! The `schedule` pass reads the module's `task.graph`, and writes each task's SM and queue
//! slot back into it.

use mkc_ir::diag::Diagnostic;
use mkc_ir::dialect::task::TaskProgram;
use mkc_ir::dialect::task::{EventId, Schedule, Task, TaskGraph, TaskId};
use mkc_ir::{Body, EntityRef, OpId};
use mkc_passes::manager::{Pass, PassContext, PassInfo};
use mkc_passes::options::PassOptions;
use std::collections::HashMap;

mkc_passes::pass_options! {
    /// Options of `schedule`.
    pub struct ScheduleOptions {
        /// A cost model file from `mkc tune` (measured time per task kind).
        cost_model: String = String::new() => "cost-model",
    }
}

pub struct SchedulePass {
    pub options: ScheduleOptions,
}

pub fn info() -> PassInfo {
    PassInfo {
        name: "schedule",
        summary: "assign every task of the task.graph an SM and a queue slot (list scheduling under the cost model)",
        anchor: None,
        options: ScheduleOptions::describe,
        statistics: &[
            ("tasks", "tasks scheduled"),
            ("busy-sms", "SMs with at least one task"),
            ("estimate-ns", "estimated step time (ns)"),
            ("floor-ns", "bytes over bandwidth (ns)"),
        ],
        create: |o| {
            Ok(Box::new(SchedulePass {
                options: ScheduleOptions::parse(o)?,
            }))
        },
    }
}

impl Pass for SchedulePass {
    fn run(&mut self, body: &mut Body, _op: OpId, cx: &mut PassContext) -> Result<(), Diagnostic> {
        let at = |m: String| {
            let loc = TaskProgram::find(body)
                .map(|o| body.ops[o].loc)
                .unwrap_or_default();
            Diagnostic::error(loc, format!("schedule: {m}"))
        };
        let mut p = TaskProgram::from_body(body).map_err(at)?;
        let mut m = Machine::new(&mkc_ir::Target::of(body).map_err(at)?);
        if !self.options.cost_model.is_empty() {
            m.read_cost_model(std::path::Path::new(&self.options.cost_model))
                .map_err(at)?;
        }
        let (s, mut e) = assign_sms(&p.graph, &m).map_err(at)?;
        if m.measured.values().any(|c| !c.spread.is_empty()) {
            // The statistic is the schedule's estimate, as `estimate` gives it: drawn.
            e = estimate(&p.graph, &s, &m).map_err(at)?;
        }
        cx.count("tasks", p.graph.tasks.len() as u64);
        cx.count(
            "busy-sms",
            s.queues.iter().filter(|q| !q.is_empty()).count() as u64,
        );
        cx.count("estimate-ns", (e.step_s * 1e9).round() as u64);
        cx.count("floor-ns", (e.floor_s * 1e9).round() as u64);
        p.schedule = Some(s);
        p.store(body);
        Ok(())
    }
}

/// The machine the estimate assumes.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    pub sms: usize,
    /// Global-memory bandwidth (bytes/s) shared evenly by busy SMs.
    pub bandwidth: f64,
    /// Floating-point throughput of one SM (flop/s).
    pub flops_per_sm: f64,
    /// Time from a producer's signal on one SM to a waiter on another seeing it.
    pub event_latency_s: f64,
    /// Bytes an SM can stream ahead into shared memory while it waits for a task's events.
    pub prefetch_bytes: f64,
    /// Time from a task's end to the end of the wait of the next one on the same SM, where
    /// that one has nothing left to wait for (the signals, the next record, a poll): 0 unless
    /// a cost model measured it.
    pub task_switch_s: f64,
    /// Measured costs per task kind (`mkc tune`), used instead of the bandwidth share.
    pub measured: HashMap<String, KindCost>,
}

/// A task kind's measured cost on one SM: `fixed_s + bytes / bytes_per_s`, and how its
/// tasks' times spread around that price.
#[derive(Clone, Debug, PartialEq)]
pub struct KindCost {
    pub fixed_s: f64,
    pub bytes_per_s: f64,
    /// The measured tasks' times over their price at evenly spaced quantiles, from the
    /// fastest to the slowest (empty: every task takes its price). [`estimate`] draws each
    /// task's time from it.
    pub spread: Vec<f64>,
}

impl KindCost {
    /// A task's time of `bytes` at the share `u` (0..=1) of its kind's spread.
    fn time_at(&self, bytes: f64, u: f64) -> f64 {
        let price = self.fixed_s + bytes / self.bytes_per_s;
        match self.spread.len() {
            0 => price,
            1 => price * self.spread[0],
            n => {
                let x = u.clamp(0.0, 1.0) * (n - 1) as f64;
                let i = (x.floor() as usize).min(n - 2);
                let f = x - i as f64;
                price * (self.spread[i] * (1.0 - f) + self.spread[i + 1] * f)
            }
        }
    }
}

/// Reads a cost model file (`mkc tune` writes it): `{"kinds": {KIND: {"fixed_us": F,
/// "gbps_per_sm": G, "spread": [R, ...]}}}` (`spread` optional: [`KindCost::spread`]).
pub fn read_cost_model(text: &str) -> Result<HashMap<String, KindCost>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a cost model: {e}"))?;
    let kinds = v
        .get("kinds")
        .and_then(serde_json::Value::as_object)
        .ok_or("not a cost model: no \"kinds\" object")?;
    kinds
        .iter()
        .map(|(k, c)| {
            let num = |f: &str| {
                c.get(f)
                    .and_then(serde_json::Value::as_f64)
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("cost model: kind '{k}' needs a number '{f}' >= 0"))
            };
            let g = num("gbps_per_sm")?;
            if g <= 0.0 {
                return Err(format!("cost model: kind '{k}' has gbps_per_sm 0"));
            }
            let spread = match c.get("spread") {
                None => Vec::new(),
                Some(v) => v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|r| r.as_f64().filter(|r| r.is_finite() && *r >= 0.0))
                    })
                    .and_then(|rs| rs.collect::<Option<Vec<f64>>>())
                    .filter(|rs| rs.windows(2).all(|w| w[0] <= w[1]))
                    .ok_or_else(|| {
                        format!("cost model: kind '{k}' needs 'spread' as rising numbers >= 0")
                    })?,
            };
            Ok((
                k.clone(),
                KindCost {
                    fixed_s: num("fixed_us")? * 1e-6,
                    bytes_per_s: g * 1e9,
                    spread,
                },
            ))
        })
        .collect()
}

/// Applies a cost model file to a machine: the measured kinds, and, when the file says so,
/// `prefetch_bytes` (what the kernel streams ahead of a wait; the first kernel streams nothing),
/// `event_latency_us` and `task_switch_us`.
pub fn apply_cost_model(m: &mut Machine, text: &str) -> Result<(), String> {
    m.measured = read_cost_model(text)?;
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(p) = v.get("prefetch_bytes").and_then(serde_json::Value::as_f64) {
        m.prefetch_bytes = p.max(0.0);
    }
    if let Some(l) = v
        .get("event_latency_us")
        .and_then(serde_json::Value::as_f64)
    {
        m.event_latency_s = l.max(0.0) * 1e-6;
    }
    if let Some(s) = v.get("task_switch_us").and_then(serde_json::Value::as_f64) {
        m.task_switch_s = s.max(0.0) * 1e-6;
    }
    Ok(())
}

/// Fits a kind's cost to measured (bytes, seconds) pairs by least squares
/// (`seconds = fixed + bytes / rate`), keeping both terms physical (fixed >= 0, rate > 0).
pub fn fit_kind(points: &[(f64, f64)]) -> Option<KindCost> {
    if points.is_empty() {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let (fixed, slope) = if slope > 0.0 && my - slope * mx >= 0.0 {
        (my - slope * mx, slope)
    } else {
        // One size of task, or a fit with a negative term: all of it per byte.
        (0.0, my / mx.max(1.0))
    };
    (slope > 0.0).then_some(KindCost {
        fixed_s: fixed,
        bytes_per_s: 1.0 / slope,
        spread: Vec::new(),
    })
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new(&mkc_ir::Target::h100())
    }
}

impl Machine {
    /// The machine of `target`, with no measured costs.
    pub fn new(target: &mkc_ir::Target) -> Machine {
        Machine {
            sms: target.sms as usize,
            bandwidth: target.bandwidth,
            flops_per_sm: target.sm_matrix_flops,
            event_latency_s: target.event_latency,
            // The kernel reads nothing before a task's wait by default (`mkc compile
            // --stream-slots` and `--l2-prefetch` change that; a cost model may say so).
            prefetch_bytes: 0.0,
            task_switch_s: 0.0,
            measured: HashMap::new(),
        }
    }

    /// Reads a cost model file (`mkc tune` wrote it) into this machine.
    pub fn read_cost_model(&mut self, path: &std::path::Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read cost model '{}': {e}", path.display()))?;
        apply_cost_model(self, &text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Time one SM takes for a task alone: its share of bandwidth, or its flops.
    pub fn duration(&self, bytes: f64, flops: f64) -> f64 {
        let per_sm = self.bandwidth / self.sms as f64;
        (bytes / per_sm).max(flops / self.flops_per_sm)
    }

    /// A task's time: measured for its kind when the model has it, else [`Machine::duration`].
    pub fn task_duration(&self, kind: &str, bytes: f64, flops: f64) -> f64 {
        match self.measured.get(kind) {
            Some(c) => c.fixed_s + bytes / c.bytes_per_s,
            None => self.duration(bytes, flops),
        }
    }
}

/// What the schedule predicts.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// When the last task finishes.
    pub step_s: f64,
    /// Longest chain of dependent tasks, with no SM contention.
    pub critical_path_s: f64,
    /// All bytes over all bandwidth: no schedule is faster.
    pub floor_s: f64,
    /// Per SM, the time it spends running tasks.
    pub busy_s: Vec<f64>,
    /// Per task, estimated start and finish.
    pub start_s: Vec<f64>,
    pub finish_s: Vec<f64>,
}

/// The producers of each task: the signallers of the events it waits on.
pub fn producers(g: &TaskGraph) -> Vec<Vec<TaskId>> {
    let mut by_event: HashMap<EventId, Vec<TaskId>> = HashMap::new();
    for (t, task) in &g.tasks {
        for &e in &task.signals {
            by_event.entry(e).or_default().push(t);
        }
    }
    g.tasks
        .values()
        .map(|task| {
            let mut p: Vec<TaskId> = task
                .waits
                .iter()
                .flat_map(|e| by_event.get(e).cloned().unwrap_or_default())
                .collect();
            p.sort();
            p.dedup();
            p
        })
        .collect()
}

/// Assigns every task an SM and a queue position: in program order, each task goes to the
/// SM where it can start first (ties to the least busy SM).
pub fn assign_sms(g: &TaskGraph, m: &Machine) -> Result<(Schedule, Estimate), String> {
    place(g, m, None, &|_, t| {
        m.task_duration(&t.kind, t.bytes, t.flops)
    })
}

/// Draws of every task's time that [`estimate`] averages over where the cost model says how
/// its kinds' times spread.
const DRAWS: u64 = 32;

/// A share in 0..1 for task `i` in draw `d`: splitmix64, so estimates repeat exactly.
fn draw_share(d: u64, i: usize) -> f64 {
    let mut z = (d << 32 | i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The estimate of a given schedule (its queues must keep program order, as the `schedule`
/// pass makes them).
pub fn estimate(g: &TaskGraph, s: &Schedule, m: &Machine) -> Result<Estimate, String> {
    let mut sm_of = vec![usize::MAX; g.tasks.len()];
    for (sm, q) in s.queues.iter().enumerate() {
        if q.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("the queue of sm {sm} is not in program order"));
        }
        for t in q {
            *sm_of
                .get_mut(t.index())
                .ok_or("the schedule names a task that does not exist")? = sm;
        }
    }
    if g.tasks
        .iter()
        .any(|(t, task)| !task.on_last_signal && sm_of[t.index()] == usize::MAX)
    {
        return Err("a task is on no queue".into());
    }
    let m = Machine {
        sms: m.sms.max(s.queues.len()),
        ..m.clone()
    };
    let priced = place(g, &m, Some(&sm_of), &|_, t| {
        m.task_duration(&t.kind, t.bytes, t.flops)
    })?
    .1;
    if m.measured.values().all(|c| c.spread.is_empty()) {
        return Ok(priced);
    }
    // Every task's time drawn from its kind's spread, the times averaged over draws: a
    // phase ends with its slowest task, and the draws put that one on any SM, where one
    // price for all would put it on the SM that also pays a task switch.
    let n = g.tasks.len();
    let mut mean = Estimate {
        step_s: 0.0,
        start_s: vec![0.0; n],
        finish_s: vec![0.0; n],
        ..priced
    };
    for d in 0..DRAWS {
        let e = place(g, &m, Some(&sm_of), &|i, t| match m.measured.get(&t.kind) {
            Some(c) => c.time_at(t.bytes, draw_share(d, i)),
            None => m.duration(t.bytes, t.flops),
        })?
        .1;
        mean.step_s += e.step_s / DRAWS as f64;
        for i in 0..n {
            mean.start_s[i] += e.start_s[i] / DRAWS as f64;
            mean.finish_s[i] += e.finish_s[i] / DRAWS as f64;
        }
    }
    Ok(mean)
}

/// List scheduling in program order, task `i` taking `time(i, task)`; `fixed` gives each
/// task's SM instead of choosing.
fn place(
    g: &TaskGraph,
    m: &Machine,
    fixed: Option<&[usize]>,
    time: &dyn Fn(usize, &Task) -> f64,
) -> Result<(Schedule, Estimate), String> {
    if m.sms == 0 {
        return Err("cannot schedule onto 0 SMs".into());
    }
    let prods = producers(g);
    for (t, p) in g.tasks.keys().zip(&prods) {
        if let Some(bad) = p.iter().find(|&&u| u >= t) {
            return Err(format!(
                "{t} waits on {bad}, which is not earlier in program order"
            ));
        }
    }
    let weights = g
        .buffers
        .iter()
        .find(|(_, b)| b.name == "weights")
        .map(|(id, _)| id);
    let n = g.tasks.len();
    let mut free = vec![0.0f64; m.sms];
    let mut busy = vec![0.0f64; m.sms];
    let mut sm_of = vec![0usize; n];
    let (mut start, mut finish, mut path) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
    let mut queues = vec![Vec::new(); m.sms];
    for (t, task) in &g.tasks {
        let i = t.as_u32() as usize;
        let dur = time(i, task);
        if task.on_last_signal {
            // It runs on the SM of its last producer to finish, right after it, and delays
            // whatever that SM runs next.
            let last = prods[i]
                .iter()
                .map(|u| u.as_u32() as usize)
                .max_by(|&a, &b| finish[a].total_cmp(&finish[b]))
                .ok_or_else(|| format!("{t} runs on the last signal of an event nobody signals"))?;
            let sm = sm_of[last];
            (start[i], finish[i]) = (finish[last], finish[last] + dur);
            free[sm] = free[sm].max(finish[last]) + dur;
            busy[sm] += dur;
            sm_of[i] = sm;
            path[i] = dur + path[last];
            continue;
        }
        // Ready time on each SM: producers elsewhere are seen an event latency later. Keep
        // the latest producer per SM and the two latest overall on distinct SMs (on a given
        // SM, only its own: `estimate` places every task many times).
        let mut same: HashMap<usize, f64> = HashMap::new();
        let (mut best, mut second) = ((f64::NEG_INFINITY, usize::MAX), f64::NEG_INFINITY);
        let given = fixed.map(|f| {
            prods[i].iter().fold(0.0f64, |r, u| {
                let j = u.as_u32() as usize;
                let seen = if sm_of[j] == f[i] {
                    0.0
                } else {
                    m.event_latency_s
                };
                r.max(finish[j] + seen)
            })
        });
        for u in prods[i].iter().filter(|_| given.is_none()) {
            let j = u.as_u32() as usize;
            let e = same.entry(sm_of[j]).or_insert(0.0);
            *e = e.max(finish[j]);
        }
        for (&sm, &f) in &same {
            let f = f + m.event_latency_s;
            if f > best.0 {
                second = second.max(best.0);
                best = (f, sm);
            } else {
                second = second.max(f);
            }
        }
        let ready_on = |sm: usize| {
            if let Some(r) = given {
                return r;
            }
            let other = if sm == best.1 { second } else { best.0 };
            other.max(same.get(&sm).copied().unwrap_or(0.0)).max(0.0)
        };
        // When the task would start streaming and finish on each SM; take the earliest
        // finish, ties to the least busy SM.
        let per_sm = m.bandwidth / m.sms as f64;
        // Only weights can stream before the wait: the rest is what the wait is for.
        let weight_bytes: f64 = task
            .reads
            .iter()
            .filter(|r| Some(r.buffer) == weights)
            .map(|r| (r.end - r.start) as f64)
            .sum();
        let ahead = weight_bytes.min(task.bytes).min(m.prefetch_bytes);
        let on = |sm: usize| {
            let ready = ready_on(sm);
            // (An SM's next task ends its wait no sooner than a task switch after its last.)
            let switch = if queues[sm].is_empty() {
                0.0
            } else {
                m.task_switch_s
            };
            let start = (free[sm] + switch).max(ready - ahead / per_sm);
            let early = ahead.min(((ready - start) * per_sm).max(0.0));
            let end = (start + dur).max(ready + (task.bytes - early) / per_sm);
            (start, end)
        };
        let sm = match fixed {
            Some(f) => f[i],
            None => {
                let times: Vec<(f64, f64)> = (0..m.sms).map(on).collect();
                (0..m.sms)
                    .min_by(|&a, &b| {
                        times[a]
                            .1
                            .total_cmp(&times[b].1)
                            .then(busy[a].total_cmp(&busy[b]))
                    })
                    .expect("at least one SM")
            }
        };
        (start[i], finish[i]) = on(sm);
        free[sm] = finish[i];
        busy[sm] += dur;
        sm_of[i] = sm;
        queues[sm].push(t);
        path[i] = dur
            + prods[i]
                .iter()
                .map(|u| path[u.as_u32() as usize])
                .fold(0.0f64, f64::max);
    }
    let bytes: f64 = g.tasks.values().map(|t| t.bytes).sum();
    let estimate = Estimate {
        step_s: finish.iter().copied().fold(0.0, f64::max),
        critical_path_s: path.iter().copied().fold(0.0, f64::max),
        floor_s: bytes / m.bandwidth,
        busy_s: busy,
        start_s: start,
        finish_s: finish,
    };
    Ok((Schedule { queues }, estimate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkc_ir::dialect::task::{Range, Task};

    /// One MLP-like stage: `up` tiles write slices of h, `down` tiles each read one slice.
    fn mlp(tiles: u64, bytes: f64) -> TaskGraph {
        let mut g = TaskGraph::default();
        let h = g.add_buffer("h", tiles * 8);
        let y = g.add_buffer("y", tiles * 8);
        for i in 0..tiles {
            g.add_task(Task {
                kind: "up".into(),
                writes: vec![Range::new(h, i * 8, i * 8 + 8)],
                bytes,
                ..Default::default()
            });
        }
        for i in 0..tiles {
            g.add_task(Task {
                kind: "down".into(),
                reads: vec![Range::new(h, i * 8, i * 8 + 8)],
                writes: vec![Range::new(y, i * 8, i * 8 + 8)],
                bytes,
                ..Default::default()
            });
        }
        g.derive_events();
        g
    }

    #[test]
    fn balanced_work_fills_every_sm_and_meets_the_floor() {
        let m = Machine {
            sms: 4,
            bandwidth: 4.0,
            event_latency_s: 0.0,
            ..Default::default()
        };
        let g = mlp(8, 1.0);
        let (s, e) = assign_sms(&g, &m).unwrap();
        // 16 tasks of 1 s each (1 byte at 1 byte/s per SM) over 4 SMs.
        assert_eq!(
            s.queues.iter().map(Vec::len).collect::<Vec<_>>(),
            [4, 4, 4, 4]
        );
        assert_eq!(e.floor_s, 4.0);
        assert_eq!(e.step_s, 4.0);
        assert_eq!(e.critical_path_s, 2.0);
        assert!(e.busy_s.iter().all(|&b| b == 4.0));
        // Queues keep program order.
        for q in &s.queues {
            assert!(q.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn event_latency_prefers_the_producers_sm() {
        let m = Machine {
            sms: 2,
            bandwidth: 2.0,
            event_latency_s: 0.5,
            prefetch_bytes: 0.0,
            ..Default::default()
        };
        let g = mlp(1, 1.0);
        let (s, e) = assign_sms(&g, &m).unwrap();
        assert_eq!(s.queues[0].len(), 2, "{:?}", s.queues);
        assert_eq!(e.step_s, 2.0);
        // Only weights stream before a wait: the consumer's byte is the producer's output,
        // so room to prefetch changes nothing.
        let m = Machine {
            prefetch_bytes: 1.0,
            ..m
        };
        let (s, e) = assign_sms(&g, &m).unwrap();
        assert_eq!(s.queues[0].len(), 2, "{:?}", s.queues);
        assert_eq!(e.step_s, 2.0);
        // When its byte is a weight, streaming it on the other SM while it waits hides the
        // latency: it starts at 0.5, has its byte by 1.5, when the event arrives.
        let mut g = g;
        let w = g.add_buffer("weights", 1);
        let down = g.tasks.keys().nth(1).unwrap();
        g.tasks[down].reads.push(Range::new(w, 0, 1));
        let (s, e) = assign_sms(&g, &m).unwrap();
        assert_eq!(s.queues[1].len(), 1, "{:?}", s.queues);
        assert_eq!(e.step_s, 1.5);
        assert_eq!(e.start_s[1], 0.5);
    }

    #[test]
    fn a_task_switch_delays_the_next_task_on_the_same_sm() {
        // mlp(1): up (1 s on one SM), then down, which waits on it. On one SM down ends its
        // wait a task switch after up's end; the event latency applies across SMs only.
        let m = Machine {
            sms: 1,
            bandwidth: 1.0,
            event_latency_s: 0.5,
            task_switch_s: 0.25,
            ..Default::default()
        };
        let (_, e) = assign_sms(&mlp(1, 1.0), &m).unwrap();
        assert_eq!(e.start_s[1], 1.25);
        assert_eq!(e.step_s, 2.25);
        let (_, e) = assign_sms(
            &mlp(1, 1.0),
            &Machine {
                task_switch_s: 0.0,
                ..m
            },
        )
        .unwrap();
        assert_eq!(e.step_s, 2.0);
    }

    #[test]
    fn schedules_run_on_the_simulator_for_every_seed() {
        // More tiles than SMs, with a cross-SM dependency for most consumers.
        let g = mlp(300, 4096.0);
        let (s, e) = assign_sms(&g, &Machine::default()).unwrap();
        assert!(s.queues.iter().all(|q| !q.is_empty()), "an idle SM");
        assert!(e.step_s >= e.floor_s && e.step_s >= e.critical_path_s);
        for seed in 0..20 {
            mkc_runtime::sim::simulate(&g, &s, 2, seed).unwrap();
        }
    }

    #[test]
    fn measured_costs_are_fitted_and_used() {
        // 2 us fixed + 10 GB/s, measured exactly.
        let pts: Vec<(f64, f64)> = [1e4, 5e4, 2e5]
            .iter()
            .map(|&b| (b, 2e-6 + b / 1e10))
            .collect();
        let c = fit_kind(&pts).unwrap();
        assert!((c.fixed_s - 2e-6).abs() < 1e-12 && (c.bytes_per_s / 1e10 - 1.0).abs() < 1e-9);
        // One size only: all per byte.
        let c = fit_kind(&[(1e4, 1e-6), (1e4, 1e-6)]).unwrap();
        assert_eq!((c.fixed_s, c.bytes_per_s), (0.0, 1e10));
        let text = r#"{"kinds": {"up": {"fixed_us": 2.0, "gbps_per_sm": 10.0}}}"#;
        let model = read_cost_model(text).unwrap();
        let g = mlp(4, 1e4);
        let plain = assign_sms(&g, &Machine::default()).unwrap().1;
        let m = Machine {
            measured: model,
            ..Machine::default()
        };
        let tuned = assign_sms(&g, &m).unwrap().1;
        // The up tasks now take 3 us each.
        assert!(
            (tuned.finish_s[0] - 3e-6).abs() < 1e-12,
            "{:?}",
            tuned.finish_s
        );
        assert!(tuned.step_s > plain.step_s);
        let bad = read_cost_model(r#"{"kinds": {"up": {"fixed_us": -1, "gbps_per_sm": 1}}}"#);
        assert!(bad.unwrap_err().contains("'fixed_us' >= 0"));
    }

    #[test]
    fn a_spread_makes_a_phase_end_with_its_slowest_draw() {
        // 64 'up' tasks on 64 SMs, then 64 'down' ones, each waiting on its 'up' tile. Each
        // 'up' takes 1..3 us (uniform around its 2 us price), each 'down' its price: the
        // step is about 2 + 1 us of 'down', plus the slowest of 64 uniform 'up's, in
        // expectation 1 + 2 * 64/65 us. One price for all (no spread) gives 2 + 1 us.
        let g = mlp(64, 1e4);
        let text = r#"{"kinds": {"up": {"fixed_us": 0, "gbps_per_sm": 5, "spread": [0.5, 1.5]},
                                 "down": {"fixed_us": 1, "gbps_per_sm": 1e9}}}"#;
        let m = Machine {
            sms: 64,
            event_latency_s: 0.0,
            measured: read_cost_model(text).unwrap(),
            ..Machine::default()
        };
        let (s, priced) = assign_sms(&g, &m).unwrap();
        assert!((priced.step_s - 3e-6).abs() < 1e-12, "{}", priced.step_s);
        let e = estimate(&g, &s, &m).unwrap();
        let slowest_up = 1.0 + 2.0 * 64.0 / 65.0;
        // (Each down waits on its own up only: the step is the slowest up's down.)
        assert!(
            (e.step_s * 1e6 - (slowest_up + 1.0)).abs() < 0.05,
            "{} against {}",
            e.step_s * 1e6,
            slowest_up + 1.0
        );
        // A task's mean over draws is its price's mean: 2 us for an 'up'.
        let mean_up = (0..64).map(|i| e.finish_s[i]).sum::<f64>() / 64.0;
        assert!((mean_up * 1e6 - 2.0).abs() < 0.05, "{mean_up}");
        // Draws repeat: the same estimate twice.
        assert_eq!(estimate(&g, &s, &m).unwrap(), e);
        // A spread must rise and not be negative.
        for bad in ["[1.5, 0.5]", "[-1, 1]", "\"x\""] {
            let t = format!(
                r#"{{"kinds": {{"up": {{"fixed_us": 0, "gbps_per_sm": 5, "spread": {bad}}}}}}}"#
            );
            let err = read_cost_model(&t).unwrap_err();
            assert!(err.contains("'spread' as rising numbers"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_estimate_of_a_stored_schedule_is_the_schedulers() {
        let g = mlp(300, 4096.0);
        let m = Machine::default();
        let (s, e) = assign_sms(&g, &m).unwrap();
        assert_eq!(estimate(&g, &s, &m).unwrap(), e);
        let mut bad = s.clone();
        bad.queues[0].reverse();
        assert!(estimate(&g, &bad, &m)
            .unwrap_err()
            .contains("not in program order"));
    }

    #[test]
    fn a_wait_on_a_later_task_is_rejected() {
        let mut g = mlp(1, 1.0);
        let first = g.tasks.keys().next().unwrap();
        let last = g.tasks.keys().next_back().unwrap();
        let e = g.tasks[last].signals.first().copied().unwrap_or_else(|| {
            let e = g.events.push(mkc_ir::dialect::task::Event { target: 1 });
            g.tasks[last].signals.push(e);
            e
        });
        g.tasks[first].waits.push(e);
        let err = assign_sms(&g, &Machine::default()).unwrap_err();
        assert!(err.contains("not earlier in program order"), "{err}");
    }
}
