//! The pass manager: resolves a pipeline string against the pass registry, runs it on a
//! module (nested pipelines run on every matching child op), verifies after each pass, and
//! provides MLIR's instrumentation: IR printing, timing and pass statistics.

use crate::options::OptionInfo;
use crate::pipeline::{parse_pipeline, render_pipeline_error, PipelineElement, PipelineSpec};
use mkc_ir::diag::Diagnostic;
use mkc_ir::printer::print_op;
use mkc_ir::verify::{verify, VerifyOptions};
use mkc_ir::{Body, Loc, OpId, Registry};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// A transformation of the IR nested under one op.
pub trait Pass {
    /// Runs on `op` (an op of the pass's anchor kind, or any op for op-agnostic passes).
    fn run(&mut self, body: &mut Body, op: OpId, cx: &mut PassContext) -> Result<(), Diagnostic>;
}

/// What a running pass may use besides the IR.
pub struct PassContext<'a> {
    pub registry: &'a Registry,
    counters: &'a mut BTreeMap<String, u64>,
    notes: &'a mut BTreeMap<String, String>,
}

impl PassContext<'_> {
    /// Adds `n` to a statistic (those declared in the [`PassInfo`] are always reported;
    /// others, such as per-rule counts, appear when counted).
    pub fn count(&mut self, statistic: &str, n: u64) {
        *self.counters.entry(statistic.to_string()).or_default() += n;
    }

    /// Records a textual fact about the run (e.g. why saturation stopped).
    pub fn note(&mut self, key: &str, value: impl Into<String>) {
        self.notes.insert(key.to_string(), value.into());
    }
}

/// Constructs a pass from its pipeline options.
pub type CreatePass = fn(&[(String, String)]) -> Result<Box<dyn Pass>, String>;

/// The registration of one pass.
#[derive(Clone)]
pub struct PassInfo {
    /// The name used in pipelines.
    pub name: &'static str,
    pub summary: &'static str,
    /// The op kind the pass runs on; `None` runs on any op.
    pub anchor: Option<&'static str>,
    pub options: fn() -> Vec<OptionInfo>,
    /// (name, description) of each counter the pass reports.
    pub statistics: &'static [(&'static str, &'static str)],
    pub create: CreatePass,
}

/// Every pass that pipelines can name.
#[derive(Clone, Default)]
pub struct PassRegistry {
    passes: BTreeMap<&'static str, PassInfo>,
}

impl PassRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, info: PassInfo) {
        self.passes.insert(info.name, info);
    }

    pub fn get(&self, name: &str) -> Option<&PassInfo> {
        self.passes.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PassInfo> {
        self.passes.values()
    }

    /// The `--list-passes` text: each pass, its summary, its options and statistics.
    pub fn describe(&self) -> String {
        let mut s = String::from("Available passes:\n");
        for p in self.iter() {
            let _ = writeln!(s, "  {:<14} {}", p.name, p.summary);
            if let Some(a) = p.anchor {
                let _ = writeln!(s, "  {:<14}   runs on: {a}", "");
            }
            for o in (p.options)() {
                let _ = writeln!(
                    s,
                    "  {:<14}   {{{}=<{}>}} {} (default: {})",
                    "", o.name, o.type_name, o.help, o.default
                );
            }
            for (n, d) in p.statistics {
                let _ = writeln!(s, "  {:<14}   statistic {n}: {d}", "");
            }
        }
        s
    }
}

/// Which instrumentation to run around passes.
#[derive(Clone, Debug, Default)]
pub struct Instrumentation {
    pub print_ir_before_all: bool,
    pub print_ir_after_all: bool,
    /// Print the IR before each run of these passes.
    pub print_ir_before: Vec<String>,
    /// Print the IR after each run of these passes.
    pub print_ir_after: Vec<String>,
    /// Print the IR after a pass only when the pass changed it.
    pub print_ir_after_change: bool,
    pub timing: bool,
    pub statistics: bool,
    /// Verify the module after every pass (the CLI turns it on unless `--no-verify`).
    pub verify_each: bool,
}

/// What a pipeline run measured.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// One row per pipeline element in pipeline order: (nesting depth, label, wall time).
    pub timings: Vec<(usize, String, Duration)>,
    pub verifier_time: Duration,
    pub total: Duration,
    /// Per pass name: its statistics, summed over runs.
    pub statistics: Vec<(String, Vec<Statistic>)>,
    /// Per pass name: its notes (the last run's).
    pub notes: Vec<(String, BTreeMap<String, String>)>,
}

impl RunReport {
    /// Counter `name` of pass `pass`, summed over its runs; None when the pass did not run.
    pub fn counter(&self, pass: &str, name: &str) -> Option<u64> {
        let (_, stats) = self.statistics.iter().find(|(p, _)| p == pass)?;
        Some(
            stats
                .iter()
                .filter(|s| s.name == name)
                .map(|s| s.value)
                .sum(),
        )
    }
}

/// One counter of a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statistic {
    pub name: String,
    pub description: &'static str,
    pub value: u64,
}

/// What one pipeline element has measured so far.
#[derive(Default)]
struct PassState {
    time: Duration,
    counters: BTreeMap<String, u64>,
    notes: BTreeMap<String, String>,
}

enum Item {
    Pass {
        info: PassInfo,
        pass: Box<dyn Pass>,
        state: PassState,
    },
    Nested(Pipeline),
}

struct Pipeline {
    anchor: String,
    items: Vec<Item>,
    time: Duration,
}

/// A resolved pipeline, ready to run.
pub struct PassManager {
    pipeline: Pipeline,
    text: String,
}

impl PassManager {
    /// Resolves a pipeline string; errors name the unknown pass or option and list valid ones.
    pub fn parse(text: &str, passes: &PassRegistry) -> Result<PassManager, String> {
        let spec = parse_pipeline(text).map_err(|e| render_pipeline_error(text, &e))?;
        let pipeline = resolve(&spec, passes, text)?;
        Ok(PassManager {
            pipeline,
            text: spec.to_string(),
        })
    }

    /// The pipeline in canonical form.
    pub fn pipeline_text(&self) -> &str {
        &self.text
    }

    /// Runs the pipeline on the module. Instrumentation output is appended to `log`.
    pub fn run(
        &mut self,
        body: &mut Body,
        registry: &Registry,
        verify_opts: VerifyOptions,
        instr: &Instrumentation,
        log: &mut String,
    ) -> Result<RunReport, Vec<Diagnostic>> {
        let start = Instant::now();
        let mut env = Env {
            registry,
            verify_opts,
            instr,
            log,
            verifier_time: Duration::ZERO,
        };
        let root = body.root;
        if self.pipeline.anchor != body.ops[root].name && self.pipeline.anchor != "any" {
            return Err(vec![Diagnostic::error(
                Loc::UNKNOWN,
                format!(
                    "the pipeline is anchored on '{}', but the top-level op is '{}'",
                    self.pipeline.anchor, body.ops[root].name
                ),
            )]);
        }
        run_pipeline(&mut self.pipeline, body, root, &mut env)?;
        let mut report = RunReport {
            verifier_time: env.verifier_time,
            total: start.elapsed(),
            ..Default::default()
        };
        collect_report(&self.pipeline, 0, &mut report);
        if instr.timing {
            log.push_str(&format_timing(&report));
        }
        if instr.statistics {
            log.push_str(&format_statistics(&report));
        }
        Ok(report)
    }
}

fn resolve(spec: &PipelineSpec, passes: &PassRegistry, text: &str) -> Result<Pipeline, String> {
    let mut items = Vec::new();
    for e in &spec.elements {
        match e {
            PipelineElement::Nested(inner) => {
                items.push(Item::Nested(resolve(inner, passes, text)?))
            }
            PipelineElement::Pass {
                name,
                options,
                offset,
            } => {
                let at = |msg: String| {
                    render_pipeline_error(
                        text,
                        &crate::pipeline::PipelineError {
                            column: offset + 1,
                            message: msg,
                        },
                    )
                };
                let Some(info) = passes.get(name) else {
                    let valid: Vec<&str> = passes.iter().map(|p| p.name).collect();
                    return Err(at(format!(
                        "unknown pass '{name}'; valid passes: {}",
                        valid.join(", ")
                    )));
                };
                if let Some(a) = info.anchor {
                    if a != spec.anchor {
                        return Err(at(format!(
                            "pass '{name}' runs on '{a}' ops, but is nested under '{}'",
                            spec.anchor
                        )));
                    }
                }
                let pass = (info.create)(options).map_err(|e| at(format!("pass '{name}': {e}")))?;
                items.push(Item::Pass {
                    info: info.clone(),
                    pass,
                    state: PassState::default(),
                });
            }
        }
    }
    Ok(Pipeline {
        anchor: spec.anchor.clone(),
        items,
        time: Duration::ZERO,
    })
}

struct Env<'a> {
    registry: &'a Registry,
    verify_opts: VerifyOptions,
    instr: &'a Instrumentation,
    log: &'a mut String,
    verifier_time: Duration,
}

fn run_pipeline(
    p: &mut Pipeline,
    body: &mut Body,
    op: OpId,
    env: &mut Env,
) -> Result<(), Vec<Diagnostic>> {
    let start = Instant::now();
    for item in &mut p.items {
        match item {
            Item::Nested(inner) => {
                // Immediate children of the matching kind, collected first: passes may edit.
                let mut targets = Vec::new();
                for &r in &body.ops[op].regions {
                    for &b in &body.regions[r].blocks {
                        for &o in &body.blocks[b].ops {
                            if inner.anchor == "any" || body.ops[o].name == inner.anchor {
                                targets.push(o);
                            }
                        }
                    }
                }
                for t in targets {
                    if body.is_attached(t) {
                        run_pipeline(inner, body, t, env)?;
                    }
                }
            }
            Item::Pass { info, pass, state } => {
                run_pass(info, pass.as_mut(), state, body, op, env)?
            }
        }
    }
    p.time += start.elapsed();
    Ok(())
}

fn dump(log: &mut String, when: &str, pass: &str, body: &Body, op: OpId) {
    let _ = writeln!(
        log,
        "// -----// IR Dump {when} {pass} ({}) //----- //",
        body.ops[op].name
    );
    log.push_str(&print_op(body, op));
    log.push_str("\n\n");
}

fn run_pass(
    info: &PassInfo,
    pass: &mut dyn Pass,
    state: &mut PassState,
    body: &mut Body,
    op: OpId,
    env: &mut Env,
) -> Result<(), Vec<Diagnostic>> {
    let name = info.name;
    let instr = env.instr;
    if instr.print_ir_before_all || instr.print_ir_before.iter().any(|p| p == name) {
        dump(env.log, "Before", name, body, op);
    }
    let before = instr.print_ir_after_change.then(|| print_op(body, op));
    let start = Instant::now();
    let mut cx = PassContext {
        registry: env.registry,
        counters: &mut state.counters,
        notes: &mut state.notes,
    };
    let result = pass.run(body, op, &mut cx);
    state.time += start.elapsed();
    result.map_err(|d| vec![d])?;
    if instr.verify_each {
        let vstart = Instant::now();
        let errors = verify(body, env.registry, env.verify_opts);
        env.verifier_time += vstart.elapsed();
        if !errors.is_empty() {
            let mut all = vec![Diagnostic::error(
                Loc::UNKNOWN,
                format!("pass '{name}' produced IR that does not verify:"),
            )];
            all.extend(errors);
            return Err(all);
        }
    }
    let after_all = instr.print_ir_after_all || instr.print_ir_after.iter().any(|p| p == name);
    if after_all {
        dump(env.log, "After", name, body, op);
    } else if let Some(before) = before {
        if before != print_op(body, op) {
            dump(env.log, "After", name, body, op);
        }
    }
    Ok(())
}

fn collect_report(p: &Pipeline, depth: usize, report: &mut RunReport) {
    for item in &p.items {
        match item {
            Item::Nested(inner) => {
                report
                    .timings
                    .push((depth, format!("'{}' Pipeline", inner.anchor), inner.time));
                collect_report(inner, depth + 1, report);
            }
            Item::Pass { info, state, .. } => {
                let (counters, notes) = (&state.counters, &state.notes);
                report
                    .timings
                    .push((depth, info.name.to_string(), state.time));
                let mut stats: Vec<_> = info
                    .statistics
                    .iter()
                    .map(|(n, d)| Statistic {
                        name: n.to_string(),
                        description: d,
                        value: counters.get(*n).copied().unwrap_or(0),
                    })
                    .collect();
                for (n, v) in counters.iter() {
                    if !info.statistics.iter().any(|(k, _)| k == n) {
                        stats.push(Statistic {
                            name: n.clone(),
                            description: "",
                            value: *v,
                        });
                    }
                }
                if !notes.is_empty() {
                    report.notes.push((info.name.to_string(), notes.clone()));
                }
                match report.statistics.iter_mut().find(|(p, _)| p == info.name) {
                    Some((_, existing)) => {
                        for s in stats {
                            match existing.iter_mut().find(|e| e.name == s.name) {
                                Some(e) => e.value += s.value,
                                None => existing.push(s),
                            }
                        }
                    }
                    None => report.statistics.push((info.name.to_string(), stats)),
                }
            }
        }
    }
}

const RULE: &str =
    "===-------------------------------------------------------------------------===";

/// MLIR's execution time report.
pub fn format_timing(r: &RunReport) -> String {
    let total = r.total.as_secs_f64().max(1e-12);
    let mut s = format!("{RULE}\n                         ... Execution time report ...\n{RULE}\n");
    let _ = writeln!(
        s,
        "  Total Execution Time: {:.4} seconds\n",
        r.total.as_secs_f64()
    );
    s.push_str("  ----Wall Time----  ----Name----\n");
    let row = |s: &mut String, d: Duration, depth: usize, name: &str| {
        let secs = d.as_secs_f64();
        let _ = writeln!(
            s,
            "  {secs:>8.4} ({:>5.1}%)  {}{name}",
            100.0 * secs / total,
            "  ".repeat(depth)
        );
    };
    for (depth, name, d) in &r.timings {
        row(&mut s, *d, *depth, name);
    }
    row(&mut s, r.verifier_time, 0, "(verifier)");
    row(&mut s, r.total, 0, "Total");
    s
}

/// MLIR's pass statistics report.
pub fn format_statistics(r: &RunReport) -> String {
    let mut s =
        format!("{RULE}\n                         ... Pass statistics report ...\n{RULE}\n");
    for (pass, stats) in &r.statistics {
        let _ = writeln!(s, "'{pass}'");
        for st in stats {
            if st.description.is_empty() {
                let _ = writeln!(s, "  ({}) {}", st.name, st.value);
            } else {
                let _ = writeln!(s, "  ({}) {} : {}", st.name, st.value, st.description);
            }
        }
    }
    s
}
