//! `tune`: a cost model fitted to a profiled step. Per task kind, the measured work time of
//! its tasks (from `mkc bench --trace`) is fitted to `fixed + bytes / rate`; the `schedule`
//! pass (`cost-model=FILE`) then prices tasks with it.

use mkc_ir::Target;
use serde_json::json;

/// The cost model of the trace `text` (named `name` in errors), as pretty JSON.
pub fn fit_trace(text: &str, name: &str, target: &Target) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{name}: not a trace: {e}"))?;
    let events = v
        .get("traceEvents")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| format!("{name}: no traceEvents"))?;
    let mut points: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for e in events.iter().filter(|e| e["cat"] == "task") {
        let (Some(kind), Some(dur), Some(bytes)) = (
            e["name"].as_str(),
            e["dur"].as_f64(),
            e["args"]["bytes"].as_f64(),
        ) else {
            return Err(format!("{name}: a task event lacks name, dur or bytes"));
        };
        points
            .entry(kind.to_string())
            .or_default()
            .push((bytes, dur * 1e-6));
    }
    if points.is_empty() {
        return Err(format!("{name}: no task events"));
    }
    let mut kinds = serde_json::Map::new();
    for (kind, pts) in &points {
        if let Some(c) = mkc_tasks::schedule::fit_kind(pts) {
            kinds.insert(
                kind.clone(),
                json!({
                    "fixed_us": c.fixed_s * 1e6,
                    "gbps_per_sm": c.bytes_per_s / 1e9,
                    "tasks": pts.len(),
                }),
            );
        }
    }
    // The kernel mkc generates today does not stream a task's weights before its wait.
    Ok(serde_json::to_string_pretty(&json!({
        "kinds": kinds,
        "prefetch_bytes": 0,
        "event_latency_us": target.event_latency * 1e6,
    }))
    .expect("json serialises")
        + "\n")
}
