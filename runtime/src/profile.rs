//! Sums up a profiled step (per task: when its work started; `mkc bench --trace`) by phase: the tasks of one `fused.group` are a phase, and a
//! phase lasts from its first task's start to the next phase's. Per kind of phase that
//! gives the time a layer spends in it, which is what the speed work compares against the
//! phase's bytes; per kind of task, the median task and the median wait before one. (GPU-free,
//! so it is tested here on made-up timelines.)

use std::collections::BTreeMap;

/// One profiled task: its group, its kind, and when (ns) its work started.
#[derive(Clone, Debug)]
pub struct TaskStart<'a> {
    pub group: usize,
    pub kind: &'a str,
    pub start: u64,
}

/// Per kind of phase, the median time (µs) from the phase's first task start to the next
/// phase's first task start. A kind that follows different kinds in the step (the output
/// projection after attention, the down projection after the MLP's gate/up, both
/// "proj_residual") is reported per predecessor: "proj_residual after attention". The last
/// phase (it has no next) is left out.
pub fn phase_medians(spans: &[TaskStart]) -> BTreeMap<String, f64> {
    let mut groups: BTreeMap<usize, (u64, &str)> = BTreeMap::new();
    for s in spans {
        let e = groups.entry(s.group).or_insert((s.start, s.kind));
        e.0 = e.0.min(s.start);
    }
    let mut order: Vec<(u64, &str)> = groups.into_values().collect();
    order.sort();
    // Which kinds follow more than one kind of phase.
    let mut before: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for w in order.windows(2) {
        let v = before.entry(w[1].1).or_default();
        if !v.contains(&w[0].1) {
            v.push(w[0].1);
        }
    }
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (i, w) in order.windows(2).enumerate() {
        let kind = w[0].1;
        let name = match (i.checked_sub(1).map(|j| order[j].1), before.get(kind)) {
            (Some(prev), Some(v)) if v.len() > 1 => format!("{kind} after {prev}"),
            _ => kind.to_string(),
        };
        times
            .entry(name)
            .or_default()
            .push((w[1].0 - w[0].0) as f64 / 1e3);
    }
    times
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, v[v.len() / 2])
        })
        .collect()
}

/// Per kind, the median of its samples (µs): a task's duration, or the wait before it.
pub fn kind_medians<'a>(
    samples: impl IntoIterator<Item = (&'a str, f64)>,
) -> BTreeMap<String, f64> {
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (k, v) in samples {
        by.entry(k.to_string()).or_default().push(v);
    }
    by.into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, v[v.len() / 2])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(group: usize, kind: &str, start: u64) -> TaskStart<'_> {
        TaskStart { group, kind, start }
    }

    #[test]
    fn phases_run_from_first_start_to_next_first_start() {
        // Two layers: qkv (10 µs), attention (5), proj after attention (4), mlp (20),
        // proj after mlp (8); then the LM head (no next phase, left out). Tasks of a
        // phase start at different times: the earliest counts.
        let mut spans = Vec::new();
        let mut t = 1_000u64;
        let mut g = 0;
        for _ in 0..2 {
            for (kind, us) in [
                ("qkv", 10),
                ("attention", 5),
                ("proj", 4),
                ("mlp", 20),
                ("proj", 8),
            ] {
                spans.push(span(g, kind, t + 300));
                spans.push(span(g, kind, t));
                t += us * 1000;
                g += 1;
            }
        }
        spans.push(span(g, "lm_head", t));
        let m = phase_medians(&spans);
        assert_eq!(m["qkv"], 10.0);
        assert_eq!(m["attention"], 5.0);
        assert_eq!(m["proj after attention"], 4.0);
        assert_eq!(m["proj after mlp"], 8.0);
        assert_eq!(m["mlp"], 20.0);
        assert!(!m.contains_key("lm_head") && !m.contains_key("proj"));
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn a_kind_s_median_is_its_middle_sample() {
        let m = kind_medians([
            ("attention", 5.0),
            ("qkv", 2.0),
            ("attention", 9.0),
            ("attention", 4.0),
            ("qkv", 3.0),
        ]);
        assert_eq!(m["attention"], 5.0);
        // An even count takes the upper middle.
        assert_eq!(m["qkv"], 3.0);
        assert_eq!(m.len(), 2);
        assert!(kind_medians([]).is_empty());
    }

    #[test]
    fn an_empty_or_one_phase_profile_has_no_phases() {
        assert!(phase_medians(&[]).is_empty());
        assert!(phase_medians(&[span(0, "embed", 0)]).is_empty());
    }
}
