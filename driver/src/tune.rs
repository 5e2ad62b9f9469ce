//! `tune`: a cost model fitted to a profiled step. Per task kind, the measured work time of
//! its tasks (from `mkc bench --trace`) is fitted to `fixed + bytes / rate`; the `schedule`
//! pass (`cost-model=FILE`) then prices tasks with it.
//!
//! A phase of a step (the tasks of one fused group, which the next phase waits on) ends when
//! its slowest task does, and the schedule's estimate gives every task of a size the same
//! time. So each size is priced at the time its tasks' slowest of a phase is expected to
//! take: of `n` tasks a phase, the maximum sits, in expectation, at the `n / (n + 1)`
//! quantile of their times. Priced at the mean instead, the estimate misses the spread
//! between an SM's task and the slowest, on every phase (docs/PERF.md, session 18).

use mkc_ir::dialect::task::TaskId;
use mkc_ir::{EntityRef, Target};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Quantiles a kind's spread keeps (every 5%).
const SPREAD_POINTS: usize = 21;

/// The tasks of one kind in a trace: (bytes, seconds) of each, and the phase each ran in.
#[derive(Default)]
struct KindTasks {
    tasks: Vec<(f64, f64)>,
    phase_of: Vec<i64>,
}

impl KindTasks {
    /// Tasks a phase, on average (a trace without groups counts each task as its own phase).
    fn per_phase(&self) -> f64 {
        let phases: BTreeSet<i64> = self.phase_of.iter().copied().collect();
        self.tasks.len() as f64 / phases.len().max(1) as f64
    }

    /// How the tasks' times spread within a phase, relative to the price
    /// ([`KindCost::spread`]), at [`SPREAD_POINTS`] evenly spaced quantiles from the fastest
    /// to the slowest: each task's time over the median of its size in its phase, times
    /// that size's mean phase median over its `q` quantile (what the price is fitted
    /// through). Within a phase, because a whole phase runs faster or slower together (its
    /// layer's weights, the L2): drawn from all phases' times at once, the slowest of a
    /// phase's draws would be slower than phases are. Over the size's own quantile, not the
    /// fitted price: where the line misses a size, its tasks would spread by the miss.
    ///
    /// [`KindCost::spread`]: mkc_tasks::schedule::KindCost::spread
    fn spread(&self, q: f64) -> Vec<f64> {
        let at_q = self.size_quantiles(q);
        let mut by_phase: BTreeMap<(u64, i64), Vec<f64>> = BTreeMap::new();
        for (&(b, s), &p) in self.tasks.iter().zip(&self.phase_of) {
            by_phase.entry((b.to_bits(), p)).or_default().push(s);
        }
        let medians: BTreeMap<(u64, i64), f64> = by_phase
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_by(f64::total_cmp);
                (k, v[v.len() / 2])
            })
            .collect();
        let mut centre: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for (&(b, _), &m) in &medians {
            let c = centre.entry(b).or_default();
            *c = (c.0 + m, c.1 + 1.0);
        }
        let mut ratios: Vec<f64> = self
            .tasks
            .iter()
            .zip(&self.phase_of)
            .map(|(&(b, s), &p)| {
                let (sum, n) = centre[&b.to_bits()];
                s / medians[&(b.to_bits(), p)] * (sum / n) / at_q[&b.to_bits()]
            })
            .filter(|r| r.is_finite())
            .collect();
        ratios.sort_by(f64::total_cmp);
        if ratios.is_empty() {
            return Vec::new();
        }
        let last = (ratios.len() - 1) as f64;
        (0..SPREAD_POINTS)
            .map(|j| ratios[(j as f64 / (SPREAD_POINTS - 1) as f64 * last).round() as usize])
            .collect()
    }

    /// Per task, its size's `q` quantile of time: the points [`fit_kind`] fits.
    ///
    /// [`fit_kind`]: mkc_tasks::schedule::fit_kind
    fn quantile_points(&self, q: f64) -> Vec<(f64, f64)> {
        let at_q = self.size_quantiles(q);
        self.tasks
            .iter()
            .map(|&(b, _)| (b, at_q[&b.to_bits()]))
            .collect()
    }

    /// Per size (its bytes' bits), the `q` quantile of its tasks' times.
    fn size_quantiles(&self, q: f64) -> BTreeMap<u64, f64> {
        let mut by_size: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for &(bytes, s) in &self.tasks {
            by_size.entry(bytes.to_bits()).or_default().push(s);
        }
        by_size
            .into_iter()
            .map(|(bits, mut times)| {
                times.sort_by(f64::total_cmp);
                // Nearest rank: the least time with a share q of the size's tasks at or below.
                let rank = (q * times.len() as f64).ceil() as usize;
                (bits, times[rank.clamp(1, times.len()) - 1])
            })
            .collect()
    }
}

/// The events of the trace `text` (named `name` in errors).
fn trace_events(text: &str, name: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{name}: not a trace: {e}"))?;
    match v.get_mut("traceEvents").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(events)) => Ok(events),
        _ => Err(format!("{name}: no traceEvents")),
    }
}

/// The cost model of the trace `text` (named `name` in errors), as pretty JSON, with the
/// target's event latency.
pub fn fit_trace(text: &str, name: &str, target: &Target) -> Result<String, String> {
    fit_events(&trace_events(text, name)?, name, target.event_latency, None)
}

/// The cost model of a trace's `events`, with `event_latency_s` and, when measured, the
/// task switch ([`task_switch`]), as pretty JSON.
fn fit_events(
    events: &[serde_json::Value],
    name: &str,
    event_latency_s: f64,
    task_switch_s: Option<f64>,
) -> Result<String, String> {
    let mut kinds_seen: BTreeMap<String, KindTasks> = BTreeMap::new();
    for (i, e) in events.iter().filter(|e| e["cat"] == "task").enumerate() {
        let (Some(kind), Some(dur), Some(bytes)) = (
            e["name"].as_str(),
            e["dur"].as_f64(),
            e["args"]["bytes"].as_f64(),
        ) else {
            return Err(format!("{name}: a task event lacks name, dur or bytes"));
        };
        let k = kinds_seen.entry(kind.to_string()).or_default();
        k.tasks.push((bytes, dur * 1e-6));
        // Without a group, a task is a phase of its own (negative: apart from any group).
        let phase = e["args"]["group"].as_i64().unwrap_or(-1 - i as i64);
        k.phase_of.push(phase);
    }
    if kinds_seen.is_empty() {
        return Err(format!("{name}: no task events"));
    }
    let mut kinds = serde_json::Map::new();
    for (kind, k) in &kinds_seen {
        let n = k.per_phase();
        let q = n / (n + 1.0);
        if let Some(c) = mkc_tasks::schedule::fit_kind(&k.quantile_points(q)) {
            kinds.insert(
                kind.clone(),
                json!({
                    "fixed_us": c.fixed_s * 1e6,
                    "gbps_per_sm": c.bytes_per_s / 1e9,
                    "tasks": k.tasks.len(),
                    "tasks_per_phase": n,
                    "quantile": q,
                    "spread": k.spread(q),
                }),
            );
        }
    }
    // The kernel mkc generates today does not stream a task's weights before its wait.
    let mut model = json!({
        "kinds": kinds,
        "prefetch_bytes": 0,
        "event_latency_us": event_latency_s * 1e6,
    });
    if let Some(s) = task_switch_s {
        model["task_switch_us"] = json!(s * 1e6);
    }
    Ok(serde_json::to_string_pretty(&model).expect("json serialises") + "\n")
}

/// What a cost model fitted to a trace says of that trace's own schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The traced step: the last task's end.
    pub measured_s: f64,
    /// The schedule's estimate under the cost model.
    pub estimate_s: f64,
    /// Tasks in the trace (and in the schedule).
    pub tasks: usize,
    /// Per task kind, where the estimate misses: its phases (task groups, in program
    /// order), and the mean time a phase adds to the step, from the end of the group before
    /// to its own last end, traced and estimated (us).
    pub phases: BTreeMap<String, PhaseMiss>,
}

/// A kind's phases, traced and estimated ([`Prediction::phases`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseMiss {
    pub phases: usize,
    pub traced_us: f64,
    pub estimated_us: f64,
}

/// Per kind, the mean over its groups of (a group's last end less the group before's),
/// of the traced `ends` and the estimated ones (us), groups in order of their number.
fn phase_misses(
    graph: &mkc_ir::dialect::task::TaskGraph,
    traced: &[Option<[f64; 3]>],
    estimated_s: &[f64],
) -> BTreeMap<String, PhaseMiss> {
    let mut groups: BTreeMap<usize, (String, f64, f64)> = BTreeMap::new();
    for (t, task) in &graph.tasks {
        let i = t.index();
        let (Some(Some([_, _, end])), Some(est)) = (traced.get(i), estimated_s.get(i)) else {
            continue;
        };
        let g = groups.entry(task.group).or_insert((
            task.kind.clone(),
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ));
        g.1 = g.1.max(*end);
        g.2 = g.2.max(est * 1e6);
    }
    let mut out: BTreeMap<String, PhaseMiss> = BTreeMap::new();
    let mut before = (0.0, 0.0);
    for (kind, traced_end, est_end) in groups.into_values() {
        let m = out.entry(kind).or_insert(PhaseMiss {
            phases: 0,
            traced_us: 0.0,
            estimated_us: 0.0,
        });
        m.phases += 1;
        m.traced_us += traced_end - before.0;
        m.estimated_us += est_end - before.1;
        before = (traced_end, est_end);
    }
    for m in out.values_mut() {
        m.traced_us /= m.phases as f64;
        m.estimated_us /= m.phases as f64;
    }
    out
}

impl Prediction {
    /// The estimate's relative error (negative: short of the measured step).
    pub fn error(&self) -> f64 {
        self.estimate_s / self.measured_s - 1.0
    }
}

/// A cost model fitted to a trace of a known program, and what it says of that program.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuned {
    /// The cost model (JSON, as [`fit_trace`] writes it), with the measured event latency.
    pub model: String,
    /// The trace's event latency: the median, over the tasks that waited, of the time from
    /// their last producer's end to their wait's end (`None`: no task waited).
    pub event_latency_s: Option<f64>,
    /// The trace's task switch ([`task_switch`]; `None`: no task followed another with
    /// nothing to wait for).
    pub task_switch_s: Option<f64>,
    pub prediction: Prediction,
}

/// Per task of a trace (by its `args.task`, "taskN"): its start, the end of its wait and its
/// end (us), and each SM's tasks in the order they ran. A task's wait slice is the one
/// before it on its SM's track.
type TaskTimes = (Vec<Option<[f64; 3]>>, Vec<Vec<usize>>);

fn task_times(events: &[serde_json::Value], name: &str) -> Result<TaskTimes, String> {
    let mut tracks: BTreeMap<i64, Vec<&serde_json::Value>> = BTreeMap::new();
    for e in events {
        tracks
            .entry(e["tid"].as_i64().unwrap_or(0))
            .or_default()
            .push(e);
    }
    let mut times: Vec<Option<[f64; 3]>> = Vec::new();
    let mut order = Vec::new();
    for track in tracks.values_mut() {
        let mut ran = Vec::new();
        // Each task's wait slice ends where the task's slice starts: a wait sorts first.
        track.sort_by(|a, b| {
            let t = |e: &serde_json::Value| e["ts"].as_f64().unwrap_or(0.0);
            t(a).total_cmp(&t(b))
                .then((a["cat"] == "task").cmp(&(b["cat"] == "task")))
        });
        let mut wait_start = None;
        for e in track.iter() {
            let (ts, dur) = (e["ts"].as_f64(), e["dur"].as_f64());
            let (Some(ts), Some(dur)) = (ts, dur) else {
                return Err(format!("{name}: an event lacks ts or dur"));
            };
            if e["cat"] != "task" {
                wait_start = Some(ts);
                continue;
            }
            let id = e["args"]["task"]
                .as_str()
                .and_then(|t| t.strip_prefix("task"))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| format!("{name}: a task event lacks args.task = \"taskN\""))?;
            if times.len() <= id {
                times.resize(id + 1, None);
            }
            times[id] = Some([wait_start.take().unwrap_or(ts), ts, ts + dur]);
            ran.push(id);
        }
        order.push(ran);
    }
    Ok((times, order))
}

/// The task switch of a trace: the floor (10th percentile), over tasks that follow another
/// on their SM and whose producers had all ended by then (nothing left to wait for), of the
/// time from the previous task's end to their wait's end: its signals, the next record, a
/// poll that finds the events done (`None`: no such task). The schedule's estimate ends no
/// task's wait sooner than that after the one before it on its SM.
fn task_switch(
    times: &[Option<[f64; 3]>],
    order: &[Vec<usize>],
    producers: &[Vec<TaskId>],
) -> Option<f64> {
    let at = |t: usize| times.get(t).copied().flatten();
    let mut switches: Vec<f64> = order
        .iter()
        .flat_map(|ran| ran.windows(2))
        .filter_map(|w| {
            let ([_, _, prev_end], [_, wait_end, _]) = (at(w[0])?, at(w[1])?);
            let ready = last_producer_end(times, producers.get(w[1])?);
            (ready <= prev_end).then_some(wait_end - prev_end)
        })
        .collect();
    switches.sort_by(f64::total_cmp);
    // Its floor (the 10th percentile): what varies above it is waiting, which the event
    // latency prices.
    switches
        .get((switches.len().max(1) - 1) / 10)
        .map(|us| us.max(0.0) * 1e-6)
}

/// The latest end (us) of a task's `producers` in a trace's task `times`; -inf for none.
fn last_producer_end(times: &[Option<[f64; 3]>], producers: &[TaskId]) -> f64 {
    producers
        .iter()
        .filter_map(|p| times.get(p.index()).copied().flatten().map(|x| x[2]))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The event latency of a trace's task `times` ([`task_times`]) under their `producers`:
/// the median, over the tasks that waited (their last producer ended after they started
/// waiting), of their wait's end less that producer's end (`None`: no task waited).
fn event_latency(times: &[Option<[f64; 3]>], producers: &[Vec<TaskId>]) -> Option<f64> {
    let at = |t: usize| times.get(t).copied().flatten();
    let mut latencies: Vec<f64> = producers
        .iter()
        .enumerate()
        .filter_map(|(t, prods)| {
            let [start, wait_end, _] = at(t)?;
            let last = last_producer_end(times, prods);
            (last > start).then_some(wait_end - last)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
        .get(latencies.len() / 2)
        .map(|us| us.max(0.0) * 1e-6)
}

/// Fits a cost model to the trace `trace` of the scheduled program `schedule` (a module at
/// the schedule level or past it: `mkc compile MODEL --emit=schedule`, or an artifact's
/// `program.mlir`; the trace must be of that program: as many tasks), the event latency
/// measured from the trace, and estimates that schedule under it against the traced step.
/// Each argument is (text, name); names are for errors.
pub fn tune_against(
    trace: (&str, &str),
    schedule: (&str, &str),
    target: &Target,
) -> Result<Tuned, String> {
    let ((trace_text, trace_name), (sched_text, sched_name)) = (trace, schedule);
    let events = trace_events(trace_text, trace_name)?;
    let tasks = events.iter().filter(|e| e["cat"] == "task").count();
    let body = mkc_ir::parse_text(sched_name, sched_text)?;
    let program = mkc_ir::dialect::task::TaskProgram::from_body(&body)
        .map_err(|e| format!("{sched_name}: {e}"))?;
    let schedule = program.schedule.as_ref().ok_or_else(|| {
        format!("{sched_name}: the task graph has no schedule (compile with --emit=schedule)")
    })?;
    if program.graph.tasks.len() != tasks {
        return Err(format!(
            "{trace_name} has {tasks} tasks and {sched_name} {}: the trace is of another program (at position P < --short-steps an artifact runs short/program.mlir)",
            program.graph.tasks.len()
        ));
    }
    let (times, order) = task_times(&events, trace_name)?;
    let producers = mkc_tasks::schedule::producers(&program.graph);
    let event_latency_s = event_latency(&times, &producers);
    let task_switch_s = task_switch(&times, &order, &producers);
    let model = fit_events(
        &events,
        trace_name,
        event_latency_s.unwrap_or(target.event_latency),
        task_switch_s,
    )?;
    let mut m = mkc_tasks::schedule::Machine::new(&Target::of(&body)?);
    mkc_tasks::schedule::apply_cost_model(&mut m, &model)?;
    let e = mkc_tasks::schedule::estimate(&program.graph, schedule, &m)
        .map_err(|e| format!("{sched_name}: {e}"))?;
    let measured_us = times.iter().flatten().map(|x| x[2]).fold(0.0, f64::max);
    Ok(Tuned {
        model,
        event_latency_s,
        task_switch_s,
        prediction: Prediction {
            measured_s: measured_us * 1e-6,
            estimate_s: e.step_s,
            tasks,
            phases: phase_misses(&program.graph, &times, &e.finish_s),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(kind: &str, group: i64, bytes: f64, dur_us: f64) -> serde_json::Value {
        json!({"name": kind, "cat": "task", "ph": "X", "pid": 0, "tid": 0, "ts": 0.0,
               "dur": dur_us, "args": {"bytes": bytes, "group": group}})
    }

    fn fit(events: Vec<serde_json::Value>) -> serde_json::Value {
        let text = json!({ "traceEvents": events }).to_string();
        serde_json::from_str(&fit_trace(&text, "t", &Target::h100()).unwrap()).unwrap()
    }

    #[test]
    fn a_size_is_priced_at_the_expected_slowest_task_of_a_phase() {
        // Two phases of three tasks of one size, 1..6 us: the slowest of three sits at the
        // 3/4 quantile, by nearest rank the fifth of six: 5 us, all of it per byte (one size).
        let events = (0..6)
            .map(|i| task("down", i / 3, 1e4, 1.0 + i as f64))
            .collect();
        let c = fit(events);
        let down = &c["kinds"]["down"];
        assert_eq!(down["tasks_per_phase"], 3.0);
        assert_eq!(down["quantile"], 0.75);
        let us = 1e4 / (down["gbps_per_sm"].as_f64().unwrap() * 1e3)
            + down["fixed_us"].as_f64().unwrap();
        assert!((us - 5.0).abs() < 1e-9, "{c}");
    }

    #[test]
    fn the_task_switch_is_the_floor_of_switches_with_nothing_to_wait_for() {
        // One SM runs tasks 0, 1, 2; task 3 (another SM) produces for task 2. Task 1 waits
        // on task 0 (same SM, done at its start): a switch of 1.5 us. Task 2's producer ends
        // after task 1 does: that wait is the event's, not a switch.
        let t = TaskId::from_u32;
        let times = vec![
            Some([0.0, 0.0, 10.0]),
            Some([10.5, 11.5, 12.0]),
            Some([12.5, 21.0, 22.0]),
            Some([0.0, 0.0, 20.0]),
        ];
        let order = vec![vec![0, 1, 2], vec![3]];
        let producers = vec![vec![], vec![t(0)], vec![t(3)], vec![]];
        let s = task_switch(&times, &order, &producers).unwrap();
        assert!((s - 1.5e-6).abs() < 1e-12, "{s}");
        assert_eq!(
            task_switch(&times, &order, &[vec![], vec![t(3)], vec![t(3)], vec![]]),
            None
        );
        // A model fitted without a schedule has none.
        let c = fit(vec![task("up", 0, 1e4, 1.0)]);
        assert!(c.get("task_switch_us").is_none(), "{c}");
    }

    #[test]
    fn the_spread_is_within_a_phase() {
        // Two phases of four tasks: 2 us each in one, 4 us each in the other. The price is
        // the slowest of four (the 4/5 quantile: 4 us); within each phase the tasks take
        // the same time, so every draw is the phases' mean, 3 us: 3/4 of the price. (Drawn
        // from all eight times at once, half the draws would be 2 us and half 4.)
        let events = (0..8)
            .map(|i| task("up", i / 4, 1e4, if i < 4 { 2.0 } else { 4.0 }))
            .collect();
        let c = fit(events);
        let spread: Vec<f64> = c["kinds"]["up"]["spread"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_f64().unwrap())
            .collect();
        assert_eq!(spread.len(), SPREAD_POINTS);
        assert!(spread.iter().all(|&r| (r - 0.75).abs() < 1e-12), "{c}");
        // One phase of 1..4 us: its times over its median (3), times 3 over the price (4).
        let c = fit((0..4).map(|i| task("up", 0, 1e4, 1.0 + i as f64)).collect());
        let spread = &c["kinds"]["up"]["spread"];
        assert_eq!(spread[0].as_f64(), Some(0.25), "{c}");
        assert_eq!(spread[SPREAD_POINTS - 1].as_f64(), Some(1.0), "{c}");
        // The model reads back.
        mkc_tasks::schedule::read_cost_model(&c.to_string()).unwrap();
    }

    #[test]
    fn sizes_fit_a_line_through_their_slowest() {
        // One phase a size: two sizes, each with a slow task, 2 us + bytes / 10 GB/s at the
        // slow ones; the fast ones do not pull the line down.
        let mut events = Vec::new();
        for (g, bytes) in [(0, 1e4), (1, 5e4)] {
            let slow = 2.0 + bytes / 1e10 * 1e6;
            events.push(task("up", g, bytes, slow - 1.5));
            events.push(task("up", g, bytes, slow));
        }
        let c = fit(events);
        let up = &c["kinds"]["up"];
        assert!((up["fixed_us"].as_f64().unwrap() - 2.0).abs() < 1e-6, "{c}");
        assert!(
            (up["gbps_per_sm"].as_f64().unwrap() - 10.0).abs() < 1e-6,
            "{c}"
        );
    }
}
