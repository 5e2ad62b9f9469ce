//! The server's counters, rendered in Prometheus' text format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency histograms' buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound of [`BUCKETS`] (not cumulative).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, x: f64) {
        if let Some(i) = BUCKETS.iter().position(|&b| x <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += x;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(self.counts) {
            cumulative += c;
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

#[derive(Default)]
struct Counters {
    /// (endpoint, status) -> requests answered.
    requests: BTreeMap<(String, u16), u64>,
    generated_tokens: u64,
    prompt_tokens: u64,
    cached_prompt_tokens: u64,
    cancelled: u64,
    time_to_first_token: Histogram,
    time_per_output_token: Histogram,
}

/// What the server counts; shared by the handlers and the engine's worker.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    /// Requests waiting for the engine.
    pub queue_depth: AtomicI64,
    /// Requests the engine is generating for (0 or 1).
    pub running: AtomicI64,
}

/// The status recorded for a request whose client went away before its answer was
/// complete (nginx's "client closed request").
pub const CLIENT_CLOSED: u16 = 499;

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Counters)) {
        // A panic elsewhere while holding the lock leaves counts that are still counts.
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut c);
    }

    pub fn request(&self, endpoint: &str, status: u16) {
        self.with(|c| {
            *c.requests
                .entry((endpoint.to_string(), status))
                .or_default() += 1;
            if status == CLIENT_CLOSED {
                c.cancelled += 1;
            }
        });
    }

    /// A generation's prompt (and how much of it the cache already held) and its tokens.
    pub fn generation(&self, prompt: usize, cached: usize, generated: usize) {
        self.with(|c| {
            c.prompt_tokens += prompt as u64;
            c.cached_prompt_tokens += cached as u64;
            c.generated_tokens += generated as u64;
        });
    }

    pub fn first_token(&self, seconds: f64) {
        self.with(|c| c.time_to_first_token.observe(seconds));
    }

    pub fn next_token(&self, seconds: f64) {
        self.with(|c| c.time_per_output_token.observe(seconds));
    }

    /// Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let queue = self.queue_depth.load(Ordering::Relaxed);
        let running = self.running.load(Ordering::Relaxed);
        self.with(|c| {
            out.push_str("# HELP mkc_requests_total Requests answered, by endpoint and HTTP status (499: the client went away first).\n# TYPE mkc_requests_total counter\n");
            for ((endpoint, status), n) in &c.requests {
                let _ = writeln!(
                    out,
                    "mkc_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
                );
            }
            let counters = [
                ("mkc_requests_cancelled_total", "Generations ended because their client went away.", c.cancelled),
                ("mkc_generated_tokens_total", "Tokens generated.", c.generated_tokens),
                ("mkc_prompt_tokens_total", "Prompt tokens of the requests served.", c.prompt_tokens),
                ("mkc_prompt_tokens_cached_total", "Prompt tokens the KV cache already held (a prefix shared with the previous request).", c.cached_prompt_tokens),
            ];
            for (name, help, v) in counters {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
            }
            c.time_to_first_token.render(
                &mut out,
                "mkc_time_to_first_token_seconds",
                "From a request's arrival (its wait in the queue included) to its first generated token.",
            );
            c.time_per_output_token.render(
                &mut out,
                "mkc_time_per_output_token_seconds",
                "Between consecutive generated tokens.",
            );
        });
        let gauges = [
            ("mkc_queue_depth", "Requests waiting for the engine.", queue),
            (
                "mkc_requests_running",
                "Requests the engine is generating for.",
                running,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = Metrics::default();
        m.request("/v1/completions", 200);
        m.request("/v1/completions", 200);
        m.request("/v1/chat/completions", CLIENT_CLOSED);
        m.generation(10, 4, 3);
        m.first_token(0.02);
        m.next_token(0.003);
        m.next_token(100.0);
        let text = m.render();
        for line in [
            "mkc_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2",
            "mkc_requests_total{endpoint=\"/v1/chat/completions\",status=\"499\"} 1",
            "mkc_requests_cancelled_total 1",
            "mkc_generated_tokens_total 3",
            "mkc_prompt_tokens_total 10",
            "mkc_prompt_tokens_cached_total 4",
            "mkc_time_to_first_token_seconds_bucket{le=\"0.01\"} 0",
            "mkc_time_to_first_token_seconds_bucket{le=\"0.025\"} 1",
            "mkc_time_per_output_token_seconds_bucket{le=\"0.005\"} 1",
            "mkc_time_per_output_token_seconds_bucket{le=\"30\"} 1",
            "mkc_time_per_output_token_seconds_bucket{le=\"+Inf\"} 2",
            "mkc_time_per_output_token_seconds_count 2",
            "mkc_queue_depth 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        // Every sample line is `name{labels} value` with a number.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
