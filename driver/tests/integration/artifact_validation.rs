//! A corrupt artifact is refused when it is opened, before anything touches a device, with
//! an error naming the file and the field or entry (issue 26, "Hardening", point 3): bit
//! flips and truncations of the tables, out-of-range ids, a manifest that does not match
//! its program or its target, a program from another model, wrong checksums, missing files.
//!
//! The artifacts are written by `mkc_driver::artifact::write` from a kernel compiled here;
//! this build may not lower to PTX (no MLIR), so the PTX is a stand-in with the kernel's
//! name, target and parameters: enough for the checks, which never load it.

use mkc_driver::compile::{compile, CompileOptions, Compiled};
use mkc_driver::level::Level;
use mkc_ir::EntityRef;
use mkc_runtime::artifact::{bytes_to_words, hash, words_to_bytes, Artifact, FILES};
use mkc_runtime::image::Program;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

/// A kernel compiled from a fixture, its PTX a stand-in.
fn compiled(fixture: &str) -> Compiled {
    let o = CompileOptions {
        level: Level::Mlir,
        ..CompileOptions::default()
    };
    let mut c = compile(&repo(&format!("tests/fixtures/{fixture}")), &o).unwrap();
    let buffers = c.program.as_ref().unwrap().graph.buffers.len();
    let k = c.kernel.as_mut().unwrap();
    k.ptx = Some(stand_in_ptx(&k.kernel.chip, &k.kernel.name, buffers + 8));
    c
}

fn stand_in_ptx(chip: &str, name: &str, params: usize) -> String {
    let params: Vec<String> = (0..params)
        .map(|i| format!("\t.param .u64 {name}_param_{i}"))
        .collect();
    format!(
        "//\n.version 8.0\n.target {chip}\n.address_size 64\n\n.visible .entry {name}(\n{}\n)\n{{\n\tret;\n}}\n",
        params.join(",\n")
    )
}

/// The folders of the two fixtures' artifacts, written once.
fn base(fixture: &'static str) -> &'static Path {
    static LLAMA: OnceLock<PathBuf> = OnceLock::new();
    static QWEN: OnceLock<PathBuf> = OnceLock::new();
    let cell = if fixture == "llama-tiny" {
        &LLAMA
    } else {
        &QWEN
    };
    cell.get_or_init(|| {
        let dir = temp(&format!("base-{fixture}"));
        mkc_driver::artifact::write(&dir, &compiled(fixture)).unwrap();
        dir
    })
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mkc-artifact-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the llama-tiny artifact to spoil.
fn copy(name: &str) -> PathBuf {
    let src = base("llama-tiny");
    let dir = temp(name);
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    dir
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn set_manifest(dir: &Path, m: &serde_json::Value) {
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(m).unwrap(),
    )
    .unwrap();
}

/// Records every file's checksum (and the program's hash) as it now is: a spoiled file
/// that its manifest vouches for, which only the checks of its contents can refuse.
fn vouch(dir: &Path) {
    let mut m = manifest(dir);
    for f in FILES.iter().chain(&["config.json"]) {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            m["checksums"][*f] = hash(&b).into();
        }
    }
    let program = std::fs::read(dir.join("program.mlir")).unwrap();
    m["program_hash"] = hash(&program).into();
    set_manifest(dir, &m);
}

fn words(dir: &Path, file: &str) -> Vec<i64> {
    bytes_to_words(&std::fs::read(dir.join(file)).unwrap()).unwrap()
}

fn set_words(dir: &Path, file: &str, w: &[i64]) {
    std::fs::write(dir.join(file), words_to_bytes(w)).unwrap();
}

/// Opening `dir` fails, the message naming `file` and saying each of `says`.
fn refused(dir: &Path, file: &str, says: &[&str]) -> String {
    let e = match Artifact::open(dir) {
        Ok(_) => panic!(
            "{}: a spoiled artifact opened (expected {says:?})",
            dir.display()
        ),
        Err(e) => e,
    };
    eprintln!("refused: {e}");
    assert!(e.contains(file), "the error does not name {file}: {e}");
    for s in says {
        assert!(e.contains(s), "the error does not say '{s}': {e}");
    }
    e
}

#[test]
fn an_artifact_as_written_opens_and_matches_its_model() {
    let art = Artifact::open(base("llama-tiny")).unwrap();
    assert_eq!(
        art.manifest.checksums.len(),
        FILES.len() + 1,
        "and config.json"
    );
    art.check_model(&[&repo("tests/fixtures/llama-tiny")])
        .unwrap();
    let e = art
        .check_model(&[&repo("tests/fixtures/qwen3-tiny")])
        .unwrap_err();
    assert!(
        e.contains("another model") && e.contains("qwen3-tiny"),
        "{e}"
    );
}

#[test]
fn a_bit_flip_in_any_file_fails_its_checksum() {
    for (i, f) in FILES.iter().enumerate() {
        let dir = copy(&format!("flip-{i}"));
        let mut b = std::fs::read(dir.join(f)).unwrap();
        let at = b.len() / 3;
        b[at] ^= 0x10;
        std::fs::write(dir.join(f), &b).unwrap();
        refused(&dir, f, &["checksum", "corrupt"]);
    }
    let dir = copy("flip-manifest");
    let mut m = manifest(&dir);
    m["checksums"]["tasks.bin"] = "0123456789abcdef".into();
    set_manifest(&dir, &m);
    refused(&dir, "tasks.bin", &["checksum", "0123456789abcdef"]);
}

#[test]
fn missing_files_are_named() {
    for (i, f) in FILES
        .iter()
        .chain(&["manifest.json", "config.json"])
        .enumerate()
    {
        let dir = copy(&format!("missing-{i}"));
        std::fs::remove_file(dir.join(f)).unwrap();
        if *f == "kernel.mlir" {
            // For people only: bundles for GPU hosts leave it out.
            Artifact::open(&dir).expect("an artifact without kernel.mlir opens");
            continue;
        }
        refused(&dir, f, &[]);
    }
}

#[test]
fn an_older_format_asks_for_a_recompile() {
    let dir = copy("format");
    let mut m = manifest(&dir);
    m["format"] = 4.into();
    set_manifest(&dir, &m);
    refused(
        &dir,
        "manifest.json",
        &["artifact format 4", "reads 5: recompile"],
    );
}

#[test]
fn manifest_fields_are_checked_against_themselves_the_target_and_the_program() {
    let cases: &[(&str, serde_json::Value, &str)] = &[
        ("threads", 0.into(), "threads is 0"),
        ("threads", 48.into(), "positive multiple of 32"),
        ("threads", 2048.into(), "at most 1024"),
        ("threads", 256.into(), "kernel plan"),
        ("dynamic_smem", (1u32 << 30).into(), "dynamic_smem"),
        ("ctas", 0.into(), "ctas is 0"),
        ("ctas", 7.into(), "ctas is 7"),
        ("events", 3.into(), "events is 3"),
        ("codes", 99.into(), "codes is 99"),
        ("scratch_per_cta", (1u64 << 40).into(), "scratch_per_cta"),
        ("target", "sm_80".into(), "target is sm_80"),
        ("kernel", "st ep".into(), "not a kernel name"),
        ("short_steps", 16.into(), "without a position_input"),
        ("position_input", 1.into(), "without short_steps"),
        ("model_hash", "xyz".into(), "model_hash"),
    ];
    for (i, (field, value, says)) in cases.iter().enumerate() {
        let dir = copy(&format!("manifest-{i}"));
        let mut m = manifest(&dir);
        m[*field] = value.clone();
        set_manifest(&dir, &m);
        refused(&dir, "manifest.json", &[says]);
    }
    // The kernel named in the manifest must be the PTX's.
    let dir = copy("manifest-kernel");
    let mut m = manifest(&dir);
    m["kernel"] = "other".into();
    set_manifest(&dir, &m);
    refused(&dir, "kernel.ptx", &["no kernel 'other'"]);
}

/// Where task `t`'s record starts, and its task's program.
fn record_of(dir: &Path, want: impl Fn(&mkc_ir::dialect::task::Task) -> bool) -> (usize, usize) {
    let text = std::fs::read_to_string(dir.join("program.mlir")).unwrap();
    let p = Program::parse(&text, "program.mlir").unwrap();
    let g = &p.tasks.graph;
    let inline = g
        .tasks
        .iter()
        .filter(|(_, t)| t.on_last_signal)
        .map(|(id, _)| id);
    let runs: Vec<_> = p
        .tasks
        .schedule
        .as_ref()
        .unwrap()
        .queues
        .iter()
        .flatten()
        .copied()
        .chain(inline)
        .collect();
    let entries = words(dir, "entries.bin");
    let (e, t) = runs
        .iter()
        .enumerate()
        .find(|(_, t)| want(&g.tasks[**t]))
        .expect("a task as wanted");
    (entries[e] as usize, t.index())
}

#[test]
fn task_records_are_decoded_and_checked_field_by_field() {
    let base = copy("records");
    let tasks = words(&base, "tasks.bin");
    // A task that waits (not run on a signal) and one that signals.
    let (w, wt) = record_of(&base, |t| !t.waits.is_empty() && !t.on_last_signal);
    let waits_at = w + 2 + 2 * tasks[w + 1] as usize;
    let (s, st) = record_of(&base, |t| !t.signals.is_empty() && !t.on_last_signal);
    let signals_at = {
        let spans_end = s + 2 + 2 * tasks[s + 1] as usize;
        spans_end + 1 + 2 * tasks[spans_end] as usize
    };
    let last = tasks.len() - 1;
    let flips: Vec<(usize, i64, String, &str)> = vec![
        (0, 1000, "task 0's record (word 0)".into(), "code 1000"),
        (
            1,
            -3,
            "task 0's record (word 0)".into(),
            "prefetch count is -3",
        ),
        (
            waits_at + 1,
            9999,
            format!("task {wt}'s record"),
            "names event 9999",
        ),
        (
            waits_at + 2,
            tasks[waits_at + 2] + 1,
            format!("task {wt}'s record"),
            "target is",
        ),
        (
            waits_at,
            tasks[waits_at] + 1,
            format!("task {wt}'s record"),
            "waits, program.mlir",
        ),
        (
            signals_at,
            1 << 40,
            format!("task {st}'s record"),
            "signal count",
        ),
        (
            signals_at + 2,
            -1,
            format!("task {st}'s record"),
            "names event -1",
        ),
        (last, 5, "word".into(), "zero padding"),
    ];
    for (i, (at, value, names, says)) in flips.into_iter().enumerate() {
        let dir = copy(&format!("records-{i}"));
        let mut t = tasks.clone();
        t[at] = value;
        set_words(&dir, "tasks.bin", &t);
        vouch(&dir);
        refused(&dir, "tasks.bin", &[&names, says]);
    }
    // Truncated: by a word, and by part of one.
    let dir = copy("records-short");
    set_words(&dir, "tasks.bin", &tasks[..tasks.len() - 1]);
    vouch(&dir);
    refused(&dir, "tasks.bin", &["zero padding"]);
    let dir = copy("records-ragged");
    let b = std::fs::read(dir.join("tasks.bin")).unwrap();
    std::fs::write(dir.join("tasks.bin"), &b[..b.len() - 3]).unwrap();
    vouch(&dir);
    refused(&dir, "tasks.bin", &["8-byte words"]);
}

#[test]
fn entries_and_queues_are_checked_against_the_schedule() {
    let base = copy("tables");
    let entries = words(&base, "entries.bin");
    let queues = words(&base, "queues.bin");
    let busy = (0..queues.len() / 2)
        .find(|&q| queues[2 * q + 1] > 1)
        .unwrap();
    type Spoil = Box<dyn Fn(&mut Vec<i64>, &mut Vec<i64>)>;
    let cases: Vec<(Spoil, &str, String)> = vec![
        (
            Box::new(|e, _| e[0] = 1 << 40),
            "entries.bin",
            "outside tasks.bin".into(),
        ),
        (
            Box::new(|e, _| e.swap(0, 1)),
            "entries.bin",
            "records follow each other".into(),
        ),
        (
            Box::new(|e, _| {
                e.pop();
            }),
            "entries.bin",
            "entries, program.mlir's schedule".into(),
        ),
        (
            Box::new(move |_, q| q[2 * busy + 1] += 1),
            "queues.bin",
            format!("queue {busy} holds"),
        ),
        (
            Box::new(move |_, q| q[2 * busy + 2] += 1),
            "queues.bin",
            format!("queue {} starts at", busy + 1),
        ),
        (
            Box::new(|_, q| {
                q.pop();
            }),
            "queues.bin",
            "words".into(),
        ),
    ];
    for (i, (spoil, file, says)) in cases.into_iter().enumerate() {
        let dir = copy(&format!("tables-{i}"));
        let (mut e, mut q) = (entries.clone(), queues.clone());
        spoil(&mut e, &mut q);
        set_words(&dir, "entries.bin", &e);
        set_words(&dir, "queues.bin", &q);
        vouch(&dir);
        refused(&dir, file, &[&says]);
    }
}

#[test]
fn a_program_from_another_model_is_refused() {
    let other = std::fs::read(base("qwen3-tiny").join("program.mlir")).unwrap();
    let dir = copy("other-program");
    std::fs::write(dir.join("program.mlir"), &other).unwrap();
    refused(&dir, "program.mlir", &["checksum"]);
    // Even when the manifest vouches for it: its tables are not the program's.
    vouch(&dir);
    refused(&dir, "manifest.json", &["program.mlir"]);
    // The other model's tables with its program, under this manifest.
    let dir = copy("other-tables");
    for f in ["program.mlir", "tasks.bin", "entries.bin", "queues.bin"] {
        std::fs::copy(base("qwen3-tiny").join(f), dir.join(f)).unwrap();
    }
    vouch(&dir);
    refused(&dir, "manifest.json", &["program.mlir"]);
}

#[test]
fn a_ptx_for_another_program_or_target_is_refused() {
    let dir = copy("ptx-params");
    std::fs::write(dir.join("kernel.ptx"), stand_in_ptx("sm_90a", "step", 5)).unwrap();
    vouch(&dir);
    refused(&dir, "kernel.ptx", &["takes 5 parameters"]);
    let dir = copy("ptx-target");
    let ptx = std::fs::read_to_string(dir.join("kernel.ptx")).unwrap();
    std::fs::write(dir.join("kernel.ptx"), ptx.replace("sm_90a", "sm_80")).unwrap();
    vouch(&dir);
    refused(&dir, "kernel.ptx", &[".target sm_90a"]);
}
