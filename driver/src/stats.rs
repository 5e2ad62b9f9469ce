//! `compile --stats`: one JSON object about a compile: the pipeline, per pass its wall time,
//! counters and notes, the fused groups, the step's traffic and bandwidth floor, the memory
//! plan, and (with a task level) the tasks and the schedule's estimate.

use crate::compile::Compiled;
use mkc_ir::dialect::fused;
use mkc_ir::dialect::task::TaskProgram;
use mkc_tasks::schedule::Estimate;
use serde_json::{json, Map, Value};

/// The stats of `c`.
pub fn stats(c: &Compiled) -> Result<Value, String> {
    let body = &c.body;
    let func = mkc_ir::dialect::builtin::first_func(body).ok_or("the pipeline left no function")?;
    let memory = mkc_tasks::memplan::plan_memory(body, func)?;
    memory
        .check()
        .map_err(|e| format!("internal error: the memory plan is invalid: {e}"))?;
    let r = &c.report;
    let mut passes = Vec::new();
    for (name, stats) in &r.statistics {
        let wall: f64 = r
            .timings
            .iter()
            .filter(|t| &t.1 == name)
            .map(|t| t.2.as_secs_f64())
            .sum();
        let counters: Map<String, Value> = stats
            .iter()
            .map(|s| (s.name.clone(), json!(s.value)))
            .collect();
        let notes: Map<String, Value> = r
            .notes
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, m)| m.iter().map(|(k, v)| (k.clone(), json!(v))))
            .collect();
        passes.push(json!({"name": name, "wall_s": wall, "counters": counters, "notes": notes}));
    }
    let groups = body
        .walk(body.root)
        .iter()
        .filter(|&&o| body.ops[o].name == fused::Group::NAME)
        .count();
    let traffic = &c.traffic;
    let mut j = json!({
        "model": c.model.display().to_string(),
        "emit": c.level.name(),
        "target": c.target.to_attr().to_string(),
        "pipeline": c.pipeline,
        "import_s": c.import_s,
        "total_s": r.total.as_secs_f64(),
        "passes": passes,
        "fused_groups": groups,
        // The worst-case step (caches full); cache_bytes_per_position gives any other.
        "step_traffic": {
            "weight_bytes": traffic.weight_bytes,
            "cache_bytes": traffic.cache_bytes,
            "cache_bytes_per_position": traffic.cache_bytes_per_position,
            "input_bytes": traffic.input_bytes,
            "read_bytes": traffic.read_bytes(),
            "write_bytes": traffic.write_bytes,
            "bandwidth_gbps": c.target.bandwidth / 1e9,
            "floor_ms": traffic.read_bytes() / c.target.bandwidth * 1e3,
        },
        // Where values live: the workspace arena (with reuse), caches, packed weights.
        "memory_plan": {
            "arena_bytes": memory.arena_bytes,
            "arena_bytes_without_reuse": memory.unshared_bytes,
            "arena_values": memory.arena.len(),
            "cache_bytes": memory.cache_bytes,
            "caches": memory.caches.len(),
            "weight_bytes": memory.weight_bytes,
            "weights": memory.weights.len(),
        },
    });
    if let Some(p) = &c.program {
        j["tasks"] = task_stats(p, c.estimate.as_ref());
    }
    Ok(j)
}

/// The task level: counts, tasks per kind, and (once scheduled) the estimate.
fn task_stats(p: &TaskProgram, e: Option<&Estimate>) -> Value {
    let mut per_kind = std::collections::BTreeMap::<&str, usize>::new();
    for t in p.graph.tasks.values() {
        *per_kind.entry(&t.kind).or_default() += 1;
    }
    let waits: usize = p.graph.tasks.values().map(|t| t.waits.len()).sum();
    let mut j = json!({
        "tasks": p.graph.tasks.len(),
        "events": p.graph.events.len(),
        "waits": waits,
        "tasks_per_kind": per_kind,
        "buffers": p.graph.buffers.values().map(|b| json!({"name": b.name, "bytes": b.bytes})).collect::<Vec<_>>(),
    });
    if let Some(e) = e {
        let busy_us: Vec<f64> = e.busy_s.iter().map(|b| (b * 1e8).round() / 100.0).collect();
        let idle =
            1.0 - e.busy_s.iter().sum::<f64>() / (e.step_s * e.busy_s.len() as f64).max(1e-30);
        j["estimate"] = json!({
            "step_ms": e.step_s * 1e3,
            "floor_ms": e.floor_s * 1e3,
            "critical_path_ms": e.critical_path_s * 1e3,
            "step_over_floor": e.step_s / e.floor_s.max(1e-30),
            "idle_share": idle,
            "busy_us_per_sm": busy_us,
        });
    }
    j
}
