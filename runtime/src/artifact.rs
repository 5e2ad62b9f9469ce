//! A compiled artifact: the folder `mkc compile --emit=artifact -o DIR` writes and the runtime
//! runs. It holds the kernel's PTX (`kernel.ptx`), its MLIR (`kernel.mlir`, for people), the
//! scheduled program (`program.mlir`: the fused step function and its `task.graph` with the
//! memory places, which is where the runtime learns buffer sizes and where each weight goes)
//! `config.json` (the model's, when it has one) and `manifest.json`. Weights are not copied:
//! the runtime reads them from the checkpoint.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bumped whenever what the runtime expects of an artifact changes.
pub const FORMAT: u32 = 4;

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
    pub fn open(dir: &Path) -> Result<Artifact, String> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| {
                format!(
                    "{}: {e} (is this a folder `mkc compile --emit=artifact` wrote?)",
                    dir.join(name).display()
                )
            })
        };
        let path = dir.join("manifest.json");
        let value: serde_json::Value = serde_json::from_str(&read("manifest.json")?)
            .map_err(|e| format!("{}: not an mkc manifest: {e}", path.display()))?;
        // The version first: an older or newer artifact is named as such, not as malformed.
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        if format != Some(FORMAT as u64) {
            return Err(format!(
                "{}: artifact format {} but this mkc ({}) runs format {FORMAT}: compile it again",
                dir.display(),
                format.map_or("unknown".to_string(), |f| f.to_string()),
                env!("CARGO_PKG_VERSION")
            ));
        }
        let manifest: Manifest = serde_json::from_value(value)
            .map_err(|e| format!("{}: not an mkc manifest: {e}", path.display()))?;
        let program = read("program.mlir")?;
        if hash(program.as_bytes()) != manifest.program_hash {
            return Err(format!(
                "{}: program.mlir does not match its manifest",
                dir.display()
            ));
        }
        let table = |name: &str| -> Result<Vec<i64>, String> {
            let b = std::fs::read(dir.join(name))
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
            bytes_to_words(&b).map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        let queues = table("queues.bin")?;
        if queues.len() != 2 * manifest.ctas {
            return Err(format!(
                "{}: queues.bin does not hold {} queues",
                dir.display(),
                manifest.ctas
            ));
        }
        let alternate = |steps: i64, name: &str| -> Result<Option<Box<Artifact>>, String> {
            if steps <= 0 {
                return Ok(None);
            }
            if manifest.position_input.is_none() {
                return Err(format!(
                    "{}: {name}_steps without a position input",
                    dir.display()
                ));
            }
            Ok(Some(Box::new(Artifact::open(&dir.join(name))?)))
        };
        let short = alternate(manifest.short_steps, "short")?;
        let long = alternate(manifest.long_steps, "long")?;
        if short.is_some() && long.is_some() && manifest.long_steps < manifest.short_steps {
            return Err(format!(
                "{}: long_steps ({}) is below short_steps ({})",
                dir.display(),
                manifest.long_steps,
                manifest.short_steps
            ));
        }
        Ok(Artifact {
            manifest,
            ptx: read("kernel.ptx")?,
            program,
            tasks: table("tasks.bin")?,
            entries: table("entries.bin")?,
            queues,
            short,
            long,
        })
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
