//! An artifact checked before anything touches a device: the manifest against itself, its
//! target and its program (`program.mlir`: the task graph, the schedule and the kernel plan
//! the tables were made from), then every word of the task tables decoded as the kernel
//! reads them (`mkc_kernel`'s `tables`: a record per task, in task order, of its code, the
//! weight spans it prefetches, its waits, its signals and its code's parameters; the queue
//! entries; per SM its queue) and checked against that program, and the PTX's kernel
//! against the program's buffers and the tables' record length. Each error names the file
//! and the field or entry.

use super::{Artifact, Manifest, FILES};
use crate::image::Program;
use mkc_ir::dialect::kernel::KernelPlan;
use mkc_ir::dialect::task::TaskId;
use mkc_ir::{EntityRef, Target};
use std::path::Path;

/// The most threads of a CTA the kernel runs with (CUDA's limit).
const MAX_THREADS: u32 = 1024;
/// The longest weight span one record asks into L2 (the kernel's `PREFETCH_CHUNK`).
const PREFETCH_CHUNK: i64 = 16 << 10;
/// The kernel's parameters after one pointer per buffer: the three tables, the scratch and
/// its stride, the counters, the step and the trace.
const FIXED_PARAMS: usize = 8;

/// Checks `art` (read from `dir`) whole; the first thing wrong is the error.
pub(super) fn artifact(art: &Artifact, dir: &Path) -> Result<(), String> {
    let at = |file: &str| dir.join(file).display().to_string();
    let m = &art.manifest;
    manifest_alone(m).map_err(|e| format!("{}: {e}", at("manifest.json")))?;
    let program = Program::parse(&art.program, &at("program.mlir"))?;
    let plan =
        KernelPlan::from_body(&program.body).map_err(|e| format!("{}: {e}", at("program.mlir")))?;
    let target = Target::of(&program.body).map_err(|e| format!("{}: {e}", at("program.mlir")))?;
    manifest_vs_program(m, &program, &plan, &target).map_err(|e| {
        format!(
            "{}: {e} (the manifest is not program.mlir's)",
            at("manifest.json")
        )
    })?;
    let rec_len = Tables {
        art,
        program: &program,
        plan: &plan,
        dir,
    }
    .check()?;
    // A CTA's shared memory: three record buffers and a claim word, then the dynamic part.
    let records = 3 * rec_len as u64 * 8 + 16;
    if records + m.dynamic_smem as u64 > target.smem_per_cta as u64 {
        return Err(format!(
            "{}: dynamic_smem {} plus the task records' {records} bytes exceeds the {} bytes of shared memory a CTA of {} may use",
            at("manifest.json"),
            m.dynamic_smem,
            target.smem_per_cta,
            target.preset
        ));
    }
    ptx(art, &program, rec_len).map_err(|e| format!("{}: {e}", at("kernel.ptx")))
}

/// The manifest's fields on their own.
fn manifest_alone(m: &Manifest) -> Result<(), String> {
    if m.threads == 0 || !m.threads.is_multiple_of(32) || m.threads > MAX_THREADS {
        return Err(format!(
            "threads is {}: it must be a positive multiple of 32, at most {MAX_THREADS}",
            m.threads
        ));
    }
    if m.ctas == 0 {
        return Err("ctas is 0: the kernel runs a CTA per SM of the schedule".into());
    }
    let name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !name(&m.kernel) {
        return Err(format!("kernel '{}' is not a kernel name", m.kernel));
    }
    if !name(&m.target) {
        return Err(format!("target '{}' is not a PTX target", m.target));
    }
    let hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    for (field, h) in [
        ("model_hash", &m.model_hash),
        ("program_hash", &m.program_hash),
    ] {
        if !hex(h) {
            return Err(format!("{field} '{h}' is not 16 hex digits"));
        }
    }
    for f in FILES {
        if !m.checksums.contains_key(f) {
            return Err(format!("checksums names no {f}"));
        }
    }
    if let Some((f, h)) = m
        .checksums
        .iter()
        .find(|(f, h)| !hex(h) || f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.'))
    {
        return Err(format!(
            "checksums: '{f}': '{h}' is not a file's 16 hex digits"
        ));
    }
    if m.short_steps < 0 || m.long_steps < 0 {
        return Err(format!(
            "short_steps ({}) and long_steps ({}) must not be negative",
            m.short_steps, m.long_steps
        ));
    }
    if m.short_steps > 0 && m.long_steps > 0 && m.long_steps < m.short_steps {
        return Err(format!(
            "long_steps ({}) is below short_steps ({})",
            m.long_steps, m.short_steps
        ));
    }
    let chooses = m.short_steps > 0 || m.long_steps > 0;
    if chooses != m.position_input.is_some() {
        return Err(if chooses {
            "short_steps or long_steps without a position_input".into()
        } else {
            "a position_input without short_steps or long_steps".into()
        });
    }
    Ok(())
}

/// The manifest against the target and the program the tables were made from.
fn manifest_vs_program(
    m: &Manifest,
    program: &Program,
    plan: &KernelPlan,
    target: &Target,
) -> Result<(), String> {
    let graph = &program.tasks.graph;
    let schedule = program.tasks.schedule.as_ref().ok_or("not scheduled")?;
    if m.target != target.chip {
        return Err(format!(
            "target is {}, program.mlir is compiled for {} ({})",
            m.target, target.chip, target.preset
        ));
    }
    let same = |field: &str, got: u64, want: u64, what: &str| {
        if got == want {
            Ok(())
        } else {
            Err(format!("{field} is {got}, program.mlir's {what} is {want}"))
        }
    };
    same(
        "threads",
        m.threads as u64,
        plan.config.threads as u64,
        "kernel plan's",
    )?;
    if m.threads > target.threads_per_cta {
        return Err(format!(
            "threads is {}, a CTA of {} runs at most {}",
            m.threads, target.preset, target.threads_per_cta
        ));
    }
    same(
        "ctas",
        m.ctas as u64,
        schedule.queues.len() as u64,
        "number of SM queues",
    )?;
    if m.ctas > target.sms as usize {
        return Err(format!(
            "ctas is {}, the target has {} SMs",
            m.ctas, target.sms
        ));
    }
    same(
        "events",
        m.events as u64,
        graph.events.len() as u64,
        "number of events",
    )?;
    same(
        "codes",
        m.codes as u64,
        plan.codes.len() as u64,
        "number of task codes",
    )?;
    let code_scratch = plan.codes.iter().map(|c| c.scratch).max().unwrap_or(0);
    same(
        "scratch_per_cta",
        m.scratch_per_cta,
        code_scratch.max(16),
        "largest code scratch (at least 16)",
    )?;
    // Dynamic shared memory: the weight ring, the preload buffer and the codes' scratch,
    // or none when no code uses any of it.
    let smem = plan.codes.iter().map(|c| c.smem).max().unwrap_or(0);
    let ring = plan.config.ring_slots as u64 * plan.config.ring_slot_bytes as u64;
    if m.dynamic_smem > target.smem_per_cta {
        return Err(format!(
            "dynamic_smem is {} bytes, a CTA of {} may use at most {}",
            m.dynamic_smem, target.preset, target.smem_per_cta
        ));
    }
    if (m.dynamic_smem == 0 && smem > 0)
        || (m.dynamic_smem > 0 && (m.dynamic_smem as u64) < ring + smem)
    {
        return Err(format!(
            "dynamic_smem is {} bytes, but program.mlir's codes take {smem} bytes of shared scratch after a weight ring of {ring}",
            m.dynamic_smem
        ));
    }
    if let Some(i) = m.position_input {
        let v = program.inputs.get(i).ok_or_else(|| {
            format!(
                "position_input is {i}, the program takes {} inputs",
                program.inputs.len()
            )
        })?;
        let ty = program.ty(*v)?;
        if !ty.shape.is_empty() || ty.elem.is_float() {
            return Err(format!(
                "position_input is {i}, but the program's input #{i} is {ty}, not an integer scalar"
            ));
        }
    }
    Ok(())
}

/// The kernel in the PTX: named as the manifest says, for its target, taking a pointer per
/// buffer of the program and the fixed parameters, with record buffers of the tables'
/// length.
fn ptx(art: &Artifact, program: &Program, rec_len: usize) -> Result<(), String> {
    let m = &art.manifest;
    if !art
        .ptx
        .lines()
        .any(|l| l.trim() == format!(".target {}", m.target))
    {
        return Err(format!(
            "no '.target {}' line: the PTX is not for the manifest's target",
            m.target
        ));
    }
    let head = format!(".entry {}(", m.kernel);
    let at = art
        .ptx
        .find(&head)
        .ok_or_else(|| format!("no kernel '{}' (no '{head}')", m.kernel))?;
    let rest = &art.ptx[at + head.len()..];
    let params = rest[..rest.find(')').unwrap_or(rest.len())]
        .matches(".param")
        .count();
    let want = program.tasks.graph.buffers.len() + FIXED_PARAMS;
    if params != want {
        return Err(format!(
            "kernel '{}' takes {params} parameters, program.mlir's buffers need {want}: the PTX is from another program",
            m.kernel
        ));
    }
    // (`.shared .align 16 .b8 records[N];` where LLVM keeps the name.)
    if let Some(i) = art.ptx.find(" records[") {
        let n = &art.ptx[i + " records[".len()..];
        let n = n[..n.find(']').unwrap_or(0)].parse::<usize>().ok();
        if n != Some(3 * rec_len * 8) {
            return Err(format!(
                "the record buffers are {} bytes, the tables' records need {}: the PTX is from another program",
                n.map_or("?".into(), |n| n.to_string()),
                3 * rec_len * 8
            ));
        }
    }
    Ok(())
}

/// The three tables and what they must agree with.
struct Tables<'a> {
    art: &'a Artifact,
    program: &'a Program,
    plan: &'a KernelPlan,
    dir: &'a Path,
}

impl Tables<'_> {
    fn at(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// Checks the queues and entries, then every record; returns the record buffers'
    /// length in words.
    fn check(&self) -> Result<usize, String> {
        let (record_at, run_entry) = self.entries()?;
        self.records(&record_at, &run_entry)
    }

    /// The queues against the schedule and the entries against the tasks they run: where
    /// each task's record starts, and the entry of each task run on an event's last signal
    /// (-1 for the others).
    fn entries(&self) -> Result<(Vec<i64>, Vec<i64>), String> {
        let art = self.art;
        let graph = &self.program.tasks.graph;
        let schedule = self
            .program
            .tasks
            .schedule
            .as_ref()
            .ok_or("not scheduled")?;
        let queues = &art.queues;
        let qf = self.at("queues.bin");
        if queues.len() != 2 * schedule.queues.len() {
            return Err(format!(
                "{qf}: {} words, {} queues (first entry, length) need {}",
                queues.len(),
                schedule.queues.len(),
                2 * schedule.queues.len()
            ));
        }
        let mut next = 0i64;
        for (q, tasks) in schedule.queues.iter().enumerate() {
            let (first, len) = (queues[2 * q], queues[2 * q + 1]);
            if first != next {
                return Err(format!(
                    "{qf}: queue {q} starts at entry {first}, expected {next} (queues follow each other)"
                ));
            }
            if len != tasks.len() as i64 {
                return Err(format!(
                    "{qf}: queue {q} holds {len} entries, program.mlir's schedule puts {} tasks on SM {q}",
                    tasks.len()
                ));
            }
            next += len;
        }
        // The entries: the queues' tasks, then those run on an event's last signal.
        let inline: Vec<TaskId> = graph
            .tasks
            .iter()
            .filter(|(_, t)| t.on_last_signal)
            .map(|(id, _)| id)
            .collect();
        let runs: Vec<TaskId> = schedule
            .queues
            .iter()
            .flatten()
            .copied()
            .chain(inline)
            .collect();
        let ef = self.at("entries.bin");
        if art.entries.len() != runs.len() {
            return Err(format!(
                "{ef}: {} entries, program.mlir's schedule has {} ({next} queued, {} run on an event's last signal)",
                art.entries.len(),
                runs.len(),
                runs.len() as i64 - next
            ));
        }
        let n = graph.tasks.len();
        let mut record_at = vec![-1i64; n];
        let mut run_entry = vec![-1i64; n];
        for (e, (&w, &t)) in art.entries.iter().zip(&runs).enumerate() {
            if w < 0 || w as usize >= art.tasks.len() {
                return Err(format!(
                    "{ef}: entry {e} (task {}) is word {w}, outside tasks.bin's {} words",
                    t.index(),
                    art.tasks.len()
                ));
            }
            if record_at[t.index()] >= 0 {
                return Err(format!(
                    "{ef}: entry {e}: task {} has two entries (program.mlir's schedule runs it twice?)",
                    t.index()
                ));
            }
            record_at[t.index()] = w;
            if e as i64 >= next {
                run_entry[t.index()] = e as i64;
            }
        }
        // Records are laid out in task order from word 0.
        let mut prev = -1i64;
        for (t, &w) in record_at.iter().enumerate() {
            if w < 0 {
                return Err(format!("{ef}: task {t} of program.mlir has no entry"));
            }
            if (t == 0 && w != 0) || w <= prev {
                return Err(format!(
                    "{ef}: task {t}'s record starts at word {w}, {}: records follow each other in task order (an entry or the schedule is wrong)",
                    if t == 0 {
                        "not 0".to_string()
                    } else {
                        format!("task {}'s at {prev}", t - 1)
                    }
                ));
            }
            prev = w;
        }
        Ok((record_at, run_entry))
    }

    /// Every record decoded and checked against its task; returns the record buffers'
    /// length (`per_thread * threads` words, the zero padding after the last record).
    fn records(&self, record_at: &[i64], run_entry: &[i64]) -> Result<usize, String> {
        let art = self.art;
        let words = &art.tasks;
        let tf = self.at("tasks.bin");
        let threads = art.manifest.threads as usize;
        let n = record_at.len();
        let mut params_of: Vec<Option<(usize, usize)>> = vec![None; self.plan.codes.len()];
        let mut first_of: Vec<Option<usize>> = vec![None; self.plan.codes.len()];
        let mut longest = 0usize;
        let mut rec_len = threads;
        for t in 0..n {
            let start = record_at[t] as usize;
            let header = self
                .header(t, start, record_at, run_entry)
                .map_err(|e| format!("{tf}: task {t}'s record (word {start}): {e}"))?;
            let end = if t + 1 < n {
                record_at[t + 1] as usize
            } else {
                // The last record: the padding after it is a record buffer long.
                let span = words.len() - start;
                let fit = (header..=span).find(|&len| {
                    let r = len.max(longest).div_ceil(threads).max(1) * threads;
                    len + r == span
                });
                let len = fit.ok_or_else(|| {
                    format!("{tf}: {} words: the last record (task {t}, word {start}) is not followed by a record buffer of zero padding", words.len())
                })?;
                start + len
            };
            if end < start + header {
                return Err(format!(
                    "{tf}: task {t}'s record (word {start}) has {header} words of code, spans, waits and signals, but task {}'s starts at word {end}",
                    t + 1
                ));
            }
            longest = longest.max(end - start);
            rec_len = longest.div_ceil(threads).max(1) * threads;
            // The code's parameters: as many for every task of the code, byte offsets and
            // boxes none negative.
            let code = words[start] as usize;
            let params = &words[start + header..end];
            if let Some(i) = params.iter().position(|&p| p < 0) {
                return Err(format!(
                    "{tf}: task {t}'s record (word {start}): parameter {i} is {}, negative",
                    params[i]
                ));
            }
            match params_of[code] {
                None => params_of[code] = Some((t, params.len())),
                Some((u, k)) if k != params.len() => {
                    return Err(format!(
                        "{tf}: task {t}'s record (word {start}) has {} parameters, task {u} of the same code {code} has {k}",
                        params.len()
                    ))
                }
                _ => {}
            }
            first_of[code].get_or_insert(t);
        }
        if let Some(i) = words[words.len() - rec_len..].iter().position(|&w| w != 0) {
            return Err(format!(
                "{tf}: word {} is {}, inside the zero padding after the last record",
                words.len() - rec_len + i,
                words[words.len() - rec_len + i]
            ));
        }
        // Each code's first task is the one the kernel plan names for it.
        for (c, code) in self.plan.codes.iter().enumerate() {
            if first_of[c] != Some(code.task) {
                return Err(format!(
                    "{tf}: the first task of code {c} is {}, program.mlir's kernel plan says task {}",
                    first_of[c].map_or("none".into(), |t| t.to_string()),
                    code.task
                ));
            }
        }
        Ok(rec_len)
    }

    /// Task `t`'s record header at word `start`, checked field by field: its length in
    /// words (where the code's parameters start).
    fn header(
        &self,
        t: usize,
        start: usize,
        record_at: &[i64],
        run_entry: &[i64],
    ) -> Result<usize, String> {
        let words = &self.art.tasks;
        let graph = &self.program.tasks.graph;
        let task = &graph.tasks[TaskId::new(t)];
        let m = &self.art.manifest;
        let mut at = start;
        let mut next = |what: &str| -> Result<i64, String> {
            let w = *words
                .get(at)
                .ok_or_else(|| format!("{what} falls past the table's end"))?;
            at += 1;
            Ok(w)
        };
        let count = |w: i64, what: &str, most: usize| -> Result<usize, String> {
            if w < 0 || w as usize > most {
                return Err(format!(
                    "{what} is {w}, the table has room for at most {most}"
                ));
            }
            Ok(w as usize)
        };
        let room = words.len() - start;
        let code = next("the code")?;
        if code < 0 || code as usize >= m.codes {
            return Err(format!("code {code}, the kernel has {} codes", m.codes));
        }
        let weights = graph
            .buffers
            .values()
            .find(|b| b.name == "weights")
            .map_or(0, |b| b.bytes as i64);
        let spans = count(next("the prefetch count")?, "the prefetch count", room / 2)?;
        for s in 0..spans {
            let (offset, len) = (next("a prefetch span")?, next("a prefetch span")?);
            if offset < 0
                || offset % 16 != 0
                || len <= 0
                || len > PREFETCH_CHUNK
                || offset.checked_add(len).is_none_or(|e| e > weights)
            {
                return Err(format!(
                    "prefetch span {s} ({len} bytes at {offset}) is not 16-byte aligned, at most {PREFETCH_CHUNK} bytes, inside the {weights} bytes of weights"
                ));
            }
        }
        let event = |e: i64, target: i64, what: &str| -> Result<(), String> {
            if e < 0 || e as usize >= graph.events.len() {
                return Err(format!(
                    "{what} names event {e}, the program has {} events",
                    graph.events.len()
                ));
            }
            let want = graph.events[mkc_ir::dialect::task::EventId::new(e as usize)].target;
            if target != want as i64 {
                return Err(format!(
                    "{what}: event {e}'s target is {target}, program.mlir's is {want}"
                ));
            }
            Ok(())
        };
        // (A task run on its wait's last signal starts with it ready: no waits.)
        let waits = if task.on_last_signal {
            &[][..]
        } else {
            &task.waits[..]
        };
        let n = count(next("the wait count")?, "the wait count", room / 2)?;
        if n != waits.len() {
            return Err(format!(
                "{n} waits, program.mlir's task {t} has {}",
                waits.len()
            ));
        }
        for (k, want) in waits.iter().enumerate() {
            let (e, target) = (next("a wait")?, next("a wait")?);
            event(e, target, &format!("wait {k}"))?;
            if e as usize != want.index() {
                return Err(format!(
                    "wait {k} names event {e}, program.mlir's task {t} waits for {want}"
                ));
            }
        }
        let runs_on = graph.on_last_signal();
        let n = count(next("the signal count")?, "the signal count", room / 4)?;
        if n != task.signals.len() {
            return Err(format!(
                "{n} signals, program.mlir's task {t} has {}",
                task.signals.len()
            ));
        }
        let runs = next("the task its signal runs")?;
        let want = task
            .signals
            .iter()
            .find_map(|e| runs_on[e.index()])
            .map_or(0, |r| record_at[r.index()] + 1);
        if runs != want {
            return Err(format!(
                "the task its last signal runs is record {runs} - 1, program.mlir's is {want} - 1"
            ));
        }
        for (k, want) in task.signals.iter().enumerate() {
            let (e, target) = (next("a signal")?, next("a signal")?);
            event(e, target, &format!("signal {k}"))?;
            if e as usize != want.index() {
                return Err(format!(
                    "signal {k} names event {e}, program.mlir's task {t} signals {want}"
                ));
            }
            let got = (next("a signal")?, next("a signal")?);
            let run = runs_on[want.index()]
                .map_or((-1, -1), |r| (record_at[r.index()], run_entry[r.index()]));
            if got != run {
                return Err(format!(
                    "signal {k} runs record {} (entry {}), program.mlir's runs record {} (entry {})",
                    got.0, got.1, run.0, run.1
                ));
            }
        }
        Ok(at - start)
    }
}
