//! Fuzzes the artifact loader: a llama-tiny artifact written by `mkc_driver::artifact::write`
//! (its PTX a stand-in, as in artifact_validation.rs: this build may not lower to PTX) with
//! table words set to huge, negative or neighbouring values, manifest.json and program.mlir
//! edited byte-wise, files cut; the checksums are usually recomputed afterwards so that the
//! edits reach the checks of the contents. Properties: `Artifact::open` never panics, and
//! an error has a message. Budget: `MKC_FUZZ_CASES` (docs/fuzzing.md).

#[path = "../../../frontends/tests/fuzz_bytes/mod.rs"]
mod fuzz_bytes;

use fuzz_bytes::{apply, cases, edits};
use mkc_driver::compile::{compile, CompileOptions};
use mkc_driver::level::Level;
use mkc_runtime::artifact::{bytes_to_words, hash, words_to_bytes, Artifact, FILES};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
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

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mkc-fuzz-artifact-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The files of the llama-tiny artifact, written once: (name, bytes).
fn base() -> &'static [(String, Vec<u8>)] {
    static BASE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    BASE.get_or_init(|| {
        let o = CompileOptions {
            level: Level::Mlir,
            ..CompileOptions::default()
        };
        let mut c = compile(&repo("tests/fixtures/llama-tiny"), &o).unwrap();
        let buffers = c.program.as_ref().unwrap().graph.buffers.len();
        let k = c.kernel.as_mut().unwrap();
        k.ptx = Some(stand_in_ptx(&k.kernel.chip, &k.kernel.name, buffers + 8));
        let dir = temp("base");
        mkc_driver::artifact::write(&dir, &c).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        std::fs::remove_dir_all(&dir).unwrap();
        files
    })
}

/// Values worth putting in a table word: out of range either way, or one off.
#[derive(Clone, Debug)]
enum WordValue {
    Set(i64),
    Add(i64),
}

fn word_value() -> impl Strategy<Value = WordValue> {
    prop_oneof![
        prop::sample::select(vec![
            0i64,
            1,
            -1,
            2,
            31,
            32,
            255,
            1 << 20,
            1 << 31,
            1 << 32,
            i64::MAX,
            i64::MIN,
            i32::MAX as i64,
            i32::MIN as i64,
        ])
        .prop_map(WordValue::Set),
        prop::sample::select(vec![-2i64, -1, 1, 2, 8, -8, 1 << 32]).prop_map(WordValue::Add),
    ]
}

/// One spoiling of the artifact.
#[derive(Clone, Debug)]
enum Spoil {
    /// A word of tasks.bin, entries.bin or queues.bin.
    Word(prop::sample::Index, prop::sample::Index, WordValue),
    /// Byte edits of manifest.json, program.mlir, kernel.ptx, config.json or a table.
    Bytes(prop::sample::Index, Vec<fuzz_bytes::Edit>),
}

const TABLES: [&str; 3] = ["tasks.bin", "entries.bin", "queues.bin"];
const TEXTS: [&str; 5] = [
    "manifest.json",
    "program.mlir",
    "kernel.ptx",
    "config.json",
    "tasks.bin",
];

fn spoil() -> impl Strategy<Value = Spoil> {
    let ix = any::<prop::sample::Index>;
    prop_oneof![
        3 => (ix(), ix(), word_value()).prop_map(|(f, w, v)| Spoil::Word(f, w, v)),
        1 => (ix(), edits()).prop_map(|(f, e)| Spoil::Bytes(f, e)),
    ]
}

/// Records every file's checksum and the program's hash as they now are.
fn vouch(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
        return;
    };
    let Ok(mut m) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    if !m.is_object() {
        return;
    }
    for f in FILES.iter().chain(&["config.json"]) {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            m["checksums"][*f] = hash(&b).into();
        }
    }
    if let Ok(p) = std::fs::read(dir.join("program.mlir")) {
        m["program_hash"] = hash(&p).into();
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

fn spoiled(dir: &Path, spoils: &[Spoil], fix_checksums: bool) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = base().to_vec();
    for s in spoils {
        match s {
            Spoil::Word(f, w, v) => {
                let name = TABLES[f.index(TABLES.len())];
                let (_, bytes) = files.iter_mut().find(|(n, _)| n == name).unwrap();
                let Ok(mut words) = bytes_to_words(bytes) else {
                    continue;
                };
                if words.is_empty() {
                    continue;
                }
                let i = w.index(words.len());
                words[i] = match v {
                    WordValue::Set(x) => *x,
                    WordValue::Add(d) => words[i].wrapping_add(*d),
                };
                *bytes = words_to_bytes(&words);
            }
            Spoil::Bytes(f, e) => {
                let name = TEXTS[f.index(TEXTS.len())];
                let (_, bytes) = files.iter_mut().find(|(n, _)| n == name).unwrap();
                *bytes = apply(bytes, e);
            }
        }
    }
    for (n, b) in &files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    if fix_checksums {
        vouch(dir);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn spoiled_artifacts_never_panic(
        spoils in prop::collection::vec(spoil(), 1..4),
        keep_checksums in prop::bool::weighted(0.1),
    ) {
        let dir = temp("case");
        spoiled(&dir, &spoils, !keep_checksums);
        if let Err(e) = Artifact::open(&dir) {
            prop_assert!(!e.trim().is_empty(), "an empty error");
        }
    }
}

/// The artifact as written opens (so the cases above start from a valid one).
#[test]
fn the_base_artifact_opens() {
    let dir = temp("unspoiled");
    spoiled(&dir, &[], true);
    Artifact::open(&dir).unwrap();
}
