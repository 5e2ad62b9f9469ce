//! Writing an artifact folder (`mkc compile --emit=artifact -o DIR`): the PTX, the kernel's
//! MLIR, the scheduled program, the task tables, the model's config and the manifest, and the
//! other programs in `short/` and `long/`. The runtime reads it back
//! (`mkc_runtime::artifact::Artifact`).

use crate::compile::{compile, CompileOptions, Compiled};
use crate::level::Level;
use mkc_runtime::artifact::{hash, model_description, words_to_bytes, Manifest, FORMAT};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The other programs' folders an artifact may hold.
const ALTERNATES: [&str; 2] = ["short", "long"];

/// Writes `c` (compiled to [`Level::Artifact`]) into `dir`, its other programs first.
pub fn write(dir: &Path, c: &Compiled) -> Result<(), String> {
    for a in &c.alternates {
        write_one(&dir.join(a.name), &a.compiled, 0, 0)?;
    }
    write_one(dir, c, c.short_steps(), c.long_steps())?;
    // Another program left from an earlier compile into this folder is not this one's.
    for name in ALTERNATES {
        let stale = dir.join(name);
        let ours = c.alternates.iter().any(|a| a.name == name);
        if !ours && stale.join("manifest.json").is_file() {
            std::fs::remove_dir_all(&stale)
                .map_err(|e| format!("cannot remove '{}': {e}", stale.display()))?;
        }
    }
    Ok(())
}

fn write_one(dir: &Path, c: &Compiled, short_steps: i64, long_steps: i64) -> Result<(), String> {
    let k = c
        .kernel
        .as_ref()
        .ok_or("internal error: an artifact needs the kernel")?;
    let ptx = k
        .ptx
        .as_ref()
        .ok_or("internal error: an artifact needs the PTX")?;
    let kernel = &k.kernel;
    let p = c
        .program
        .as_ref()
        .ok_or("internal error: an artifact needs the task program")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    // Each file with its checksum, which the manifest records.
    let mut checksums = BTreeMap::new();
    let mut write = |name: &str, bytes: &[u8]| {
        checksums.insert(name.to_string(), hash(bytes));
        std::fs::write(dir.join(name), bytes)
            .map_err(|e| format!("cannot write '{}': {e}", dir.join(name).display()))
    };
    write("kernel.ptx", ptx.as_bytes())?;
    write("kernel.mlir", kernel.mlir.as_bytes())?;
    for (name, words) in [
        ("tasks.bin", &kernel.tasks),
        ("entries.bin", &kernel.entries),
        ("queues.bin", &kernel.queues),
    ] {
        write(name, &words_to_bytes(words))?;
    }
    let program = mkc_ir::printer::print(&c.body);
    write("program.mlir", program.as_bytes())?;
    // The model's description: its config.json (a checkpoint folder or a config), kept, or
    // the file.
    let source = &c.model;
    let (described, description) = model_description(source);
    let is_config = source.is_dir() || source.extension().is_some_and(|e| e == "json");
    if is_config && described.is_file() {
        write("config.json", &description)?;
    } else {
        // (A config.json left from an earlier compile into this folder is not this one's.)
        let _ = std::fs::remove_file(dir.join("config.json"));
    }
    let manifest = Manifest {
        format: FORMAT,
        mkc_version: env!("CARGO_PKG_VERSION").to_string(),
        target: kernel.chip.clone(),
        kernel: kernel.name.clone(),
        threads: kernel.threads,
        dynamic_smem: kernel.dynamic_smem,
        ctas: kernel.ctas,
        scratch_per_cta: kernel.scratch_per_cta,
        events: p.graph.events.len(),
        codes: kernel.codes,
        model: source.display().to_string(),
        model_hash: hash(&description),
        program_hash: hash(program.as_bytes()),
        short_steps,
        long_steps,
        // (A Hugging Face step's position is its second input: `takes_position`.)
        position_input: (short_steps > 0 || long_steps > 0).then_some(1),
        checksums,
    };
    std::fs::write(dir.join("manifest.json"), manifest.to_json().as_bytes()).map_err(|e| {
        format!(
            "cannot write '{}': {e}",
            dir.join("manifest.json").display()
        )
    })
}

/// `check --engine gpu` without an artifact: compiles `model` with the default options into
/// a temporary folder.
pub fn compile_to_temp(model: &Path) -> Result<PathBuf, String> {
    let o = CompileOptions {
        level: Level::Artifact,
        ..CompileOptions::default()
    };
    let c = compile(model, &o)?;
    let dir = std::env::temp_dir().join(format!("mkc-artifact-{}", std::process::id()));
    write(&dir, &c)?;
    Ok(dir)
}
