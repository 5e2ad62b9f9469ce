//! The GPU's commands: `bench` (the decode step of an artifact timed with CUDA events, and
//! optionally one step profiled into a trace) and `gpu-info` (the device, its copy
//! bandwidth, and a PTX smoke test). Built with the `cuda` feature.

use mkc_runtime::gpu;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What `mkc gpu-info` measures.
#[derive(Clone, Debug)]
pub struct GpuInfoOptions {
    pub device: usize,
    /// Also measure the device-to-device copy bandwidth.
    pub bandwidth: bool,
    /// Bytes per copy.
    pub bytes: usize,
    /// Timed runs (the median is reported).
    pub iters: usize,
    /// Also run the `scale` kernel of this PTX on 2^24 floats and check it.
    pub ptx: Option<PathBuf>,
}

/// The device (name, compute capability, SMs, memory) as one JSON object, with what `a`
/// asks measured.
pub fn gpu_info(a: &GpuInfoOptions) -> Result<Value, String> {
    let d = gpu::probe(a.device)?;
    let mut j = serde_json::json!({
        "device": a.device,
        "name": d.name,
        "compute_capability": format!("{}.{}", d.compute_capability.0, d.compute_capability.1),
        "sms": d.sms,
        "total_mem_bytes": d.total_mem,
        "smem_per_block_optin": d.smem_per_block_optin,
        "clock_khz": d.clock_khz,
    });
    if a.bandwidth {
        let bw = gpu::copy_bandwidth(a.device, a.bytes, a.iters)?;
        j["copy_bandwidth_gbs"] = serde_json::json!(bw / 1e9);
        j["copy_bytes"] = serde_json::json!(a.bytes);
        j["copy_iters"] = serde_json::json!(a.iters);
    }
    if let Some(path) = &a.ptx {
        let ptx = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
        let k = gpu::check_scale_kernel(a.device, &ptx, 1 << 24, a.iters)?;
        j["ptx_kernel"] = serde_json::json!({
            "file": path.display().to_string(),
            "elements": k.elements,
            "mismatches": k.mismatches,
            "median_us": k.median_us,
            "gbs": 8.0 * k.elements as f64 / (k.median_us * 1e-6) / 1e9,
        });
        if k.mismatches > 0 {
            let first = k.first_mismatch.map_or(String::new(), |(i, got, want)| {
                format!(" (first: element {i} is {got}, expected {want})")
            });
            return Err(format!(
                "{j}\nthe PTX kernel computed {} of {} elements wrong{first}",
                k.mismatches, k.elements
            ));
        }
    }
    Ok(j)
}

/// What `mkc bench` times.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// A checkpoint folder to take the weights from (random weights without one).
    pub weights: Option<PathBuf>,
    /// The position the timed step writes (the KV cache holds this many earlier positions).
    pub pos: i64,
    /// Untimed steps first.
    pub warmup: usize,
    /// Timed steps (the median is reported).
    pub steps: usize,
    /// Also profile one step: its per-task timeline as a Chrome/Perfetto trace here (and an
    /// SVG picture beside it).
    pub trace: Option<PathBuf>,
}

/// Times the decode step of the artifact in `dir` (CUDA events, the median of `a.steps`):
/// one JSON object.
pub fn bench(dir: &Path, a: &BenchOptions) -> Result<Value, String> {
    let art = mkc_runtime::artifact::Artifact::open(dir)?;
    if let Some(w) = &a.weights {
        art.check_model(&[w])?;
    }
    let program = mkc_runtime::image::Program::parse(&art.program, "program.mlir")?;
    let func = mkc_ir::dialect::builtin::first_func(&program.body).ok_or("no function")?;
    let entry = program.body.entry_block(func, 0).ok_or("no body")?;
    let model;
    let random;
    let weights: &dyn mkc_ir::weights::WeightSource = match &a.weights {
        Some(dir) => {
            model = mkc_frontends::HfModel::open(dir)?;
            model.checkpoint.as_ref().ok_or_else(|| {
                format!(
                    "{} has no weights: drop --weights to bench with random ones",
                    dir.display()
                )
            })?
        }
        None => {
            let list: Vec<(String, mkc_ir::ElemType, Vec<i64>)> = program.body.blocks[entry]
                .args
                .iter()
                .enumerate()
                .filter_map(|(i, &v)| {
                    let name = mkc_ir::dialect::builtin::weight_arg_name(&program.body, func, i)?;
                    let t = program.body.ty(v).as_tensor()?;
                    Some((name.to_string(), t.elem, t.shape.clone()))
                })
                .collect();
            random = mkc_frontends::random::RandomWeights::new(list, 0);
            &random
        }
    };
    let stored = crate::import::as_stored(&program.body, weights);
    let start = std::time::Instant::now();
    let mut gpu = gpu::GpuRunner::new(&art, &stored, 0)?;
    let load_s = start.elapsed().as_secs_f64();
    let n = gpu.program.inputs.len();
    let ctx = gpu.program.cache_positions();
    if a.pos < 0 || a.pos >= ctx {
        return Err(format!(
            "--pos {} is outside the artifact's KV cache (0..{ctx})",
            a.pos
        ));
    }
    let tok = mkc_runtime::interp::i64_tensor(&[], vec![1]);
    let pos = mkc_runtime::interp::i64_tensor(&[], vec![a.pos]);
    let mut inputs: Vec<Option<&mkc_runtime::Tensor>> = vec![Some(&tok), Some(&pos)];
    inputs.resize(n, None);
    let first = gpu.call(&inputs, &[1])?;
    let ms = gpu.time_steps(a.warmup, a.steps)?;
    let bytes: f64 = gpu
        .active_program()
        .tasks
        .graph
        .tasks
        .values()
        .map(|t| t.bytes)
        .sum();
    let trace = match &a.trace {
        Some(path) => Some(write_trace(&mut gpu, path, &art.manifest.model)?),
        None => None,
    };
    let copy = gpu::copy_bandwidth(0, 1 << 30, 20)?;
    let gbps = bytes / (ms * 1e-3) / 1e9;
    Ok(serde_json::json!({
        "trace": trace,
        "artifact": dir.display().to_string(),
        "model": art.manifest.model,
        "pos": a.pos,
        "program": gpu.active_name(),
        "steps": a.steps + a.warmup + 1,
        "load_s": load_s,
        "first_token": first[0].get(0).i(),
        "median_ms": ms,
        "bytes_per_step": bytes,
        "gbps": gbps,
        "copy_gbps": copy / 1e9,
        "share_of_copy_bandwidth": gbps * 1e9 / copy,
        "floor_ms": bytes / copy * 1e3,
    }))
}

/// Profiles one step, writes its timeline as Chrome trace events (one track per SM; a task's
/// wait and its work as separate slices) and as an SVG picture beside it, and sums it up.
fn write_trace(
    gpu: &mut gpu::GpuRunner,
    path: &Path,
    model: &str,
) -> Result<serde_json::Value, String> {
    use serde_json::json;
    let stamps = gpu.trace_step()?;
    let tasks = &gpu.active_program().tasks;
    let queues = &tasks.schedule.as_ref().ok_or("not scheduled")?.queues;
    let t0 = stamps
        .iter()
        .map(|s| s[0])
        .filter(|&t| t > 0)
        .min()
        .unwrap_or(0);
    let end = stamps.iter().map(|s| s[2]).max().unwrap_or(t0);
    let span = (end - t0) as f64 / 1e3;
    let mut events = Vec::new();
    let mut per_kind: std::collections::BTreeMap<String, f64> = Default::default();
    let (mut work, mut wait) = (0.0f64, 0.0f64);
    let mut idle = Vec::new();
    let mut e = 0usize;
    let n = tasks.graph.tasks.len();
    let (mut start_s, mut finish_s) = (vec![0.0; n], vec![0.0; n]);
    let mut busy_s = Vec::new();
    // (kind, µs) of each task's work, and of the wait before each queued task.
    let mut works: Vec<(&str, f64)> = Vec::new();
    let mut waits: Vec<(&str, f64)> = Vec::new();
    for (sm, q) in queues.iter().enumerate() {
        let mut busy = 0.0;
        for &t in q {
            let [a, b, c] = stamps[e];
            e += 1;
            let task = &tasks.graph.tasks[t];
            let us = |x: u64| (x.saturating_sub(t0)) as f64 / 1e3;
            let (w, d) = (us(b) - us(a), us(c) - us(b));
            start_s[t.as_u32() as usize] = us(b) * 1e-6;
            finish_s[t.as_u32() as usize] = us(c) * 1e-6;
            wait += w;
            work += d;
            busy += d;
            *per_kind.entry(task.kind.clone()).or_default() += d;
            works.push((&task.kind, d));
            waits.push((&task.kind, w));
            events.push(json!({"name": "wait", "cat": "wait", "ph": "X", "pid": 0, "tid": sm, "ts": us(a), "dur": w}));
            events.push(json!({"name": task.kind, "cat": "task", "ph": "X", "pid": 0, "tid": sm, "ts": us(b), "dur": d,
                "args": {"task": t.to_string(), "group": task.group, "output": task.output, "bytes": task.bytes}}));
        }
        idle.push(1.0 - busy / span.max(1e-9));
        busy_s.push(busy * 1e-6);
    }
    // Tasks run on the last signal of an event: their entries follow the queues'; each ran
    // on the SM of the last of its event's signallers to finish.
    let sm_of = tasks.sms(&finish_s).ok_or("not scheduled")?;
    let inline: Vec<_> = tasks
        .graph
        .tasks
        .iter()
        .filter(|(_, t)| t.on_last_signal)
        .map(|(id, _)| id)
        .collect();
    let mut inline_stamps = Vec::new();
    for &t in &inline {
        let [a, _, c] = stamps[e];
        e += 1;
        let task = &tasks.graph.tasks[t];
        let sm = sm_of[t.as_u32() as usize];
        let us = |x: u64| (x.saturating_sub(t0)) as f64 / 1e3;
        let d = us(c) - us(a);
        start_s[t.as_u32() as usize] = us(a) * 1e-6;
        finish_s[t.as_u32() as usize] = us(c) * 1e-6;
        work += d;
        if let Some(b) = busy_s.get_mut(sm) {
            *b += d * 1e-6;
            idle[sm] -= d / span.max(1e-9);
        }
        *per_kind.entry(task.kind.clone()).or_default() += d;
        works.push((&task.kind, d));
        events.push(json!({"name": task.kind, "cat": "task", "ph": "X", "pid": 0, "tid": sm, "ts": us(a), "dur": d,
            "args": {"task": t.to_string(), "group": task.group, "output": task.output, "bytes": task.bytes, "on_last_signal": true}}));
        inline_stamps.push((t, a));
    }
    std::fs::write(
        path,
        json!({"traceEvents": events, "displayTimeUnit": "ns"}).to_string(),
    )
    .map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
    // The same timeline as a picture, beside the trace.
    let svg_path = path.with_extension("svg");
    let measured = mkc_tasks::schedule::Estimate {
        step_s: span * 1e-6,
        critical_path_s: 0.0,
        floor_s: 0.0,
        busy_s,
        start_s,
        finish_s,
    };
    std::fs::write(
        &svg_path,
        crate::svg::render_measured(tasks, &measured, model),
    )
    .map_err(|e| format!("cannot write '{}': {e}", svg_path.display()))?;
    let mean_idle = idle.iter().sum::<f64>() / idle.len().max(1) as f64;
    let starts: Vec<mkc_runtime::profile::TaskStart> = queues
        .iter()
        .flatten()
        .zip(&stamps)
        .map(|(&t, s)| (t, s[1]))
        .chain(inline_stamps)
        .map(|(t, start)| mkc_runtime::profile::TaskStart {
            group: tasks.graph.tasks[t].group,
            kind: &tasks.graph.tasks[t].kind,
            start,
        })
        .collect();
    Ok(json!({
        "file": path.display().to_string(),
        "svg": svg_path.display().to_string(),
        "step_us": span,
        "phase_us_per_kind": mkc_runtime::profile::phase_medians(&starts),
        "work_us_per_kind": per_kind,
        "task_us_median_per_kind": mkc_runtime::profile::kind_medians(works),
        "wait_us_median_per_kind": mkc_runtime::profile::kind_medians(waits),
        "work_share": work / (span * queues.len() as f64).max(1e-9),
        "wait_share": wait / (span * queues.len() as f64).max(1e-9),
        "mean_idle_share_per_sm": mean_idle,
    }))
}
