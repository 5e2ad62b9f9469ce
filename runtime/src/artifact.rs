//! A compiled artifact: the folder `mkc compile --emit=artifact -o DIR` writes and the runtime
//! runs. It holds the kernel's PTX (`kernel.ptx`), its MLIR (`kernel.mlir`, for people), the
//! scheduled program (`program.mlir`: the fused step function and its `task.graph` with the
//! memory places, which is where the runtime learns buffer sizes and where each weight goes)
//! `config.json` (the model's, when it has one) and `manifest.json`. Weights are not copied:
//! the runtime reads them from the checkpoint.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod validate;

/// Bumped whenever what the runtime expects of an artifact changes (5: `checksums`).
pub const FORMAT: u32 = 5;

/// The files every artifact folder holds, each with its checksum in the manifest.
pub const FILES: [&str; 6] = [
    "kernel.ptx",
    "kernel.mlir",
    "program.mlir",
    "tasks.bin",
    "entries.bin",
    "queues.bin",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub mkc_version: String,
    pub target: String,
    pub kernel: String,
    pub threads: u32,
    /// Bytes of dynamic shared memory per CTA (the weight ring; format 4).
    pub dynamic_smem: u32,
    pub ctas: usize,
    pub scratch_per_cta: u64,
    pub events: usize,
    /// Distinct task codes in the kernel.
    pub codes: usize,
    /// The model the artifact was compiled from, a hash of its description (config.json,
    /// or the .onnx/.mlir file), and a hash of the program text.
    pub model: String,
    pub model_hash: String,
    pub program_hash: String,
    /// Steps at positions below this run the program in `short/` instead (a second
    /// artifact compiled for short contexts: attention unsplit); 0: none.
    #[serde(default)]
    pub short_steps: i64,
    /// Steps at positions from this one on run the program in `long/` instead (a third
    /// artifact compiled for long contexts: attention in tiles of a KV head's query heads,
    /// which share its loads); 0: none.
    #[serde(default)]
    pub long_steps: i64,
    /// Which of the program's inputs is the step's position (a scalar), when `short_steps`
    /// or `long_steps` chooses by it.
    #[serde(default)]
    pub position_input: Option<usize>,
    /// Per file of the folder (its name: [`FILES`], and `config.json` when written), the
    /// [`hash`] of its bytes, checked on load (format 5).
    pub checksums: BTreeMap<String, String>,
}

impl Manifest {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest serialises") + "\n"
    }
}

/// FNV-1a, 64 bits: enough to notice a program that does not belong to its manifest.
pub fn hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// An artifact read back: its manifest, PTX and program text, checked against each other.
pub struct Artifact {
    pub manifest: Manifest,
    pub ptx: String,
    pub program: String,
    /// The task table, queue entries and per-SM queues (`tasks.bin`, `entries.bin`,
    /// `queues.bin`: little-endian i64 words).
    pub tasks: Vec<i64>,
    pub entries: Vec<i64>,
    pub queues: Vec<i64>,
    /// The program for steps at positions below `manifest.short_steps` (`short/`).
    pub short: Option<Box<Artifact>>,
    /// The program for steps at positions from `manifest.long_steps` on (`long/`).
    pub long: Option<Box<Artifact>>,
}

/// One of an artifact's other programs, and the positions whose steps run it.
pub struct Alternate<'a> {
    /// Its folder in the artifact (`short` or `long`).
    pub name: &'static str,
    pub positions: std::ops::Range<i64>,
    pub artifact: &'a Artifact,
}

/// i64 words as little-endian bytes, and back.
pub fn words_to_bytes(w: &[i64]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bytes_to_words(b: &[u8]) -> Result<Vec<i64>, String> {
    if !b.len().is_multiple_of(8) {
        return Err("a table is not a whole number of 8-byte words".into());
    }
    Ok(b.chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

impl Artifact {
    /// Reads and validates the artifact in `dir` (and its other programs): every file
    /// against its checksum, the manifest against itself, the target and the program, and
    /// every table entry against the program (`validate`). Nothing here touches a device:
    /// an artifact that opens is one the launcher may hand to the driver.
    pub fn open(dir: &Path) -> Result<Artifact, String> {
        let manifest = read_manifest(dir)?;
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let path = dir.join(name);
            let b = std::fs::read(&path).map_err(|e| {
                format!(
                    "{}: {e} (is this a folder `mkc compile --emit=artifact` wrote?)",
                    path.display()
                )
            })?;
            let want = manifest.checksums.get(name).ok_or_else(|| {
                format!(
                    "{}: no checksum for {name}",
                    dir.join("manifest.json").display()
                )
            })?;
            let got = hash(&b);
            if &got != want {
                return Err(format!(
                    "{}: checksum {got} differs from the manifest's {want}: the file is corrupt or from another compile (recompile)",
                    path.display()
                ));
            }
            Ok(b)
        };
        let text = |name: &str| -> Result<String, String> {
            String::from_utf8(bytes(name)?)
                .map_err(|_| format!("{}: not UTF-8 text", dir.join(name).display()))
        };
        let table = |name: &str| -> Result<Vec<i64>, String> {
            bytes_to_words(&bytes(name)?).map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        // Every file the manifest names (config.json too) is there and whole.
        for name in manifest.checksums.keys() {
            if !FILES.contains(&name.as_str()) {
                bytes(name)?;
            }
        }
        let program = text("program.mlir")?;
        if hash(program.as_bytes()) != manifest.program_hash {
            return Err(format!(
                "{}: program.mlir does not match its manifest's program_hash",
                dir.display()
            ));
        }
        let (ptx, tasks, entries, queues) = (
            text("kernel.ptx")?,
            table("tasks.bin")?,
            table("entries.bin")?,
            table("queues.bin")?,
        );
        // kernel.mlir is for people: bundles for GPU hosts leave it out (it is the largest
        // file); when it is there, it is checked whole all the same.
        if dir.join("kernel.mlir").exists() {
            bytes("kernel.mlir")?;
        }
        let mut art = Artifact {
            manifest,
            ptx,
            program,
            tasks,
            entries,
            queues,
            short: None,
            long: None,
        };
        validate::artifact(&art, dir)?;
        let m = &art.manifest;
        let alternate = |steps: i64, name: &str| -> Result<Option<Box<Artifact>>, String> {
            if steps <= 0 {
                return Ok(None);
            }
            let a = Artifact::open(&dir.join(name))?;
            if a.manifest.short_steps != 0 || a.manifest.long_steps != 0 {
                return Err(format!(
                    "{}: an artifact's {name}/ program has other programs of its own",
                    dir.join(name).join("manifest.json").display()
                ));
            }
            if a.manifest.target != m.target || a.manifest.model_hash != m.model_hash {
                return Err(format!(
                    "{}: the {name}/ program is for another target or model than the main one",
                    dir.join(name).join("manifest.json").display()
                ));
            }
            Ok(Some(Box::new(a)))
        };
        art.short = alternate(m.short_steps, "short")?;
        art.long = alternate(m.long_steps, "long")?;
        Ok(art)
    }

    /// Checks that the artifact was compiled from the model at one of `models` (a checkpoint
    /// folder, a config.json or a model file): its description hashes to the manifest's
    /// `model_hash`. An artifact compiled from a model without a description (its hash is
    /// the empty input's) matches any.
    pub fn check_model(&self, models: &[&Path]) -> Result<(), String> {
        let m = &self.manifest;
        if m.model_hash == hash(&[]) || models.is_empty() {
            return Ok(());
        }
        let mut seen = Vec::new();
        for model in models {
            let (described, bytes) = model_description(model);
            let h = hash(&bytes);
            if h == m.model_hash {
                return Ok(());
            }
            seen.push(format!("{} hashes to {h}", described.display()));
        }
        Err(format!(
            "the artifact was compiled from another model: its manifest names {} (model_hash {}), but {}: compile it again from this model",
            m.model,
            m.model_hash,
            seen.join(", ")
        ))
    }

    /// The artifact's other programs (none when it has one): `short/` runs the steps at
    /// positions below `short_steps`, `long/` those from `long_steps` on.
    pub fn alternates(&self) -> Vec<Alternate<'_>> {
        let mut v = Vec::new();
        if let Some(a) = &self.short {
            v.push(Alternate {
                name: "short",
                positions: 0..self.manifest.short_steps,
                artifact: a,
            });
        }
        if let Some(a) = &self.long {
            v.push(Alternate {
                name: "long",
                positions: self.manifest.long_steps..i64::MAX,
                artifact: a,
            });
        }
        v
    }

    /// Which of [`Artifact::alternates`] runs the step at `position`; None: the main program.
    pub fn alternate_at(&self, position: i64) -> Option<usize> {
        self.alternates()
            .iter()
            .position(|a| a.positions.contains(&position))
    }
}

/// Reads `dir/manifest.json`: its format first (an older or newer artifact is named as such,
/// not as malformed), then its fields.
fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (is this a folder `mkc compile --emit=artifact` wrote?)",
            path.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not an mkc manifest: {e}", path.display()))?;
    let format = value.get("format").and_then(serde_json::Value::as_u64);
    if format != Some(FORMAT as u64) {
        return Err(format!(
            "{}: artifact format {}, this mkc ({}) reads {FORMAT}: recompile",
            path.display(),
            format.map_or("unknown".to_string(), |f| f.to_string()),
            env!("CARGO_PKG_VERSION")
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| format!("{}: not an mkc manifest: {e}", path.display()))
}

/// What `model_hash` hashes for a model at `source`: the config.json of a checkpoint folder
/// (or a config.json itself), else the model file's bytes (empty when unreadable); and the
/// file it read.
pub fn model_description(source: &Path) -> (PathBuf, Vec<u8>) {
    let config = if source.is_dir() {
        Some(source.join("config.json"))
    } else if source.extension().is_some_and(|e| e == "json") {
        Some(source.to_path_buf())
    } else {
        None
    };
    match config {
        Some(cfg) if cfg.is_file() => {
            let b = std::fs::read(&cfg).unwrap_or_default();
            (cfg, b)
        }
        _ => (
            source.to_path_buf(),
            std::fs::read(source).unwrap_or_default(),
        ),
    }
}
