//! `compile --emit=schedule-svg`: the schedule as a picture, and `bench --trace`: a measured
//! step as the same picture. Top: a timeline with one row per SM and one bar per task
//! (coloured by kind, from the estimate's or the measurement's start to finish; hover for
//! the task). Bottom: the event graph of one layer, group by group: each box is a fused
//! group with its task count, each arrow a dependency between groups with the events and
//! waits that carry it.

use mkc_ir::dialect::task::TaskGraph;
use mkc_ir::dialect::task::TaskProgram;
use mkc_tasks::schedule::Estimate;
use std::collections::BTreeMap;
use std::fmt::Write;

const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The picture of a scheduled program and its estimate.
pub fn render(p: &TaskProgram, e: &Estimate, title: &str) -> String {
    let header = format!(
        "{title} — estimated step {:.3} ms (floor {:.3} ms, critical path {:.3} ms)",
        e.step_s * 1e3,
        e.floor_s * 1e3,
        e.critical_path_s * 1e3
    );
    picture(p, e, &header)
}

/// The picture of a profiled step (`mkc bench --trace`): `e` holds the measured start (the
/// end of its wait) and end of every task, and the step's span.
pub fn render_measured(p: &TaskProgram, e: &Estimate, title: &str) -> String {
    let header = format!("{title} — measured step {:.3} ms", e.step_s * 1e3);
    picture(p, e, &header)
}

/// The timeline of `e`'s task times under `header`, the legend and one layer's event graph.
fn picture(p: &TaskProgram, e: &Estimate, header: &str) -> String {
    let g = &p.graph;
    let queues = &p.schedule.as_ref().expect("scheduled").queues;
    let mut kinds: Vec<&str> = g.tasks.values().map(|t| t.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let colour = |k: &str| PALETTE[kinds.iter().position(|&x| x == k).unwrap_or(0) % PALETTE.len()];
    let (left, top, row, width) = (70.0, 60.0, 6.0, 1400.0);
    let span = e.step_s.max(1e-12);
    let x = |t: f64| left + t / span * width;
    let timeline_h = queues.len() as f64 * row;
    let layer = layer_graph(g);
    let graph_top = top + timeline_h + 70.0;
    let height = graph_top + 60.0 + layer.len() as f64 * 34.0 + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="11">"#,
        left + width + 220.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="14">{}, {} tasks, {} events, {} SMs</text>"#,
        esc(header),
        g.tasks.len(),
        g.events.len(),
        queues.len()
    );
    // Time axis every tenth of the step.
    for i in 0..=10 {
        let t = span * i as f64 / 10.0;
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle">{4:.0} us</text>"##,
            x(t),
            top - 5.0,
            top + timeline_h,
            top - 10.0,
            t * 1e6
        );
    }
    // Each SM's row: its queue, and the tasks run on the last signal of an event, on the SM
    // of the signaller that finished last.
    let mut rows: Vec<Vec<mkc_ir::dialect::task::TaskId>> = queues.clone();
    let sm_of = p.sms(&e.finish_s).expect("scheduled");
    for (t, _) in g.tasks.iter().filter(|(_, t)| t.on_last_signal) {
        rows[sm_of[t.as_u32() as usize]].push(t);
    }
    for (sm, q) in rows.iter().enumerate() {
        let y = top + sm as f64 * row;
        if sm % 10 == 0 {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">SM {sm}</text>"#,
                left - 6.0,
                y + row
            );
        }
        for &t in q {
            let i = t.as_u32() as usize;
            let task = &g.tasks[t];
            let (a, b) = (x(e.start_s[i]), x(e.finish_s[i]));
            let _ = writeln!(
                s,
                r#"<rect x="{a:.2}" y="{y:.1}" width="{:.2}" height="{:.1}" fill="{}"><title>{t} {} (group {}, result {}): {:.2}-{:.2} us, {:.0} bytes</title></rect>"#,
                (b - a).max(0.3),
                row - 1.0,
                colour(&task.kind),
                esc(&task.kind),
                task.group,
                task.output,
                e.start_s[i] * 1e6,
                e.finish_s[i] * 1e6,
                task.bytes
            );
        }
    }
    for (k, kind) in kinds.iter().enumerate() {
        let y = top + k as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{y}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            left + width + 20.0,
            colour(kind),
            left + width + 38.0,
            y + 10.0,
            esc(kind)
        );
    }
    // The event graph of one layer.
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="{}" font-size="14">Event graph of one layer: groups, and the events and waits between them</text>"#,
        graph_top
    );
    for (i, node) in layer.iter().enumerate() {
        let y = graph_top + 20.0 + i as f64 * 34.0;
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{y}" width="260" height="24" rx="4" fill="{}" fill-opacity="0.35" stroke="{0}"/><text x="{}" y="{}">group {}: {} ({} tasks)</text>"#,
            colour(&node.kind),
            left + 8.0,
            y + 16.0,
            node.group,
            esc(&node.kind),
            node.tasks
        );
        let mut labels = Vec::new();
        for (from, events, waits) in &node.deps {
            let Some(j) = layer.iter().position(|n| n.group == *from) else {
                labels.push(format!(
                    "group {from} (earlier layer): {events} events, {waits} waits"
                ));
                continue;
            };
            labels.insert(
                0,
                format!(
                    "group {from} ({}): {events} events, {waits} waits",
                    layer[j].kind
                ),
            );
            let y0 = graph_top + 20.0 + j as f64 * 34.0 + 12.0;
            let bend = left + 270.0 + (i - j) as f64 * 12.0;
            let _ = writeln!(
                s,
                r##"<path d="M {0} {y0} C {bend} {y0}, {bend} {1}, {0} {1}" fill="none" stroke="#333" marker-end="url(#arrow)"/>"##,
                left + 260.0,
                y + 12.0
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" fill="#333">waits on: {}</text>"##,
            left + 340.0,
            y + 16.0,
            esc(&labels.join("; "))
        );
    }
    let _ = writeln!(
        s,
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>"##
    );
    s.push_str("</svg>\n");
    s
}

struct Node {
    group: usize,
    kind: String,
    tasks: usize,
    /// (producer group, distinct events, waits) per group this one depends on.
    deps: Vec<(usize, usize, usize)>,
}

/// The groups of one layer: from the second group of the first repeated kind to the next
/// one of that kind (the whole program when nothing repeats).
fn layer_graph(g: &TaskGraph) -> Vec<Node> {
    let mut groups: BTreeMap<usize, (String, usize)> = BTreeMap::new();
    for t in g.tasks.values() {
        groups.entry(t.group).or_insert((t.kind.clone(), 0)).1 += 1;
    }
    let order: Vec<(usize, String)> = groups.iter().map(|(&k, v)| (k, v.0.clone())).collect();
    // A layer: from the second occurrence of the kind that repeats least often (but does
    // repeat; the first in program order on a tie) to its next occurrence.
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, k) in &order {
        *count.entry(k.as_str()).or_default() += 1;
    }
    let least = count.values().copied().filter(|&c| c > 1).min();
    let kind = order
        .iter()
        .map(|(_, k)| k.as_str())
        .find(|k| Some(count[k]) == least);
    let at: Vec<usize> = match kind {
        Some(kind) => (0..order.len()).filter(|&i| order[i].1 == kind).collect(),
        None => vec![0],
    };
    let start = at.get(1).copied().unwrap_or(at[0]);
    let end = at.get(2).copied().unwrap_or(order.len());
    let mut sig_groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for t in g.tasks.values() {
        for e in &t.signals {
            let v = sig_groups.entry(e.as_u32()).or_default();
            if !v.contains(&t.group) {
                v.push(t.group);
            }
        }
    }
    order[start..end]
        .iter()
        .map(|(group, kind)| {
            // Per producer group: the events waited on, and the number of waits.
            let mut deps: BTreeMap<usize, (Vec<u32>, usize)> = BTreeMap::new();
            for t in g.tasks.values().filter(|t| t.group == *group) {
                for w in &t.waits {
                    for &pg in sig_groups.get(&w.as_u32()).into_iter().flatten() {
                        if pg != *group {
                            let d = deps.entry(pg).or_default();
                            d.0.push(w.as_u32());
                            d.1 += 1;
                        }
                    }
                }
            }
            Node {
                group: *group,
                kind: kind.clone(),
                tasks: groups[group].1,
                deps: deps
                    .into_iter()
                    .rev()
                    .map(|(pg, (mut evs, waits))| {
                        evs.sort_unstable();
                        evs.dedup();
                        (pg, evs.len(), waits)
                    })
                    .collect(),
            }
        })
        .collect()
}
