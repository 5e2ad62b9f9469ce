//! Fuzzes the Hugging Face readers: `ModelConfig::parse` on edited config.json files (every
//! fixture's and tests/fixtures/configs), and `HfModel::open` / `Checkpoint::open` on a
//! checkpoint folder whose config.json or model.safetensors (the safetensors header: its
//! length, its JSON, the data offsets) was edited. Properties: no panic; an error has a
//! message. Budget: `MKC_FUZZ_CASES` (docs/fuzzing.md).

#[path = "fuzz_bytes/mod.rs"]
mod fuzz_bytes;

use fuzz_bytes::{apply, apply_in, cases, edits};
use mkc_frontends::{Checkpoint, HfModel, ModelConfig};
use mkc_ir::weights::WeightSource;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn configs() -> &'static [String] {
    static C: OnceLock<Vec<String>> = OnceLock::new();
    C.get_or_init(|| {
        let mut v = Vec::new();
        for d in ["", "configs"] {
            for e in std::fs::read_dir(fixtures().join(d)).unwrap() {
                let p = e.unwrap().path();
                let f = if p.is_dir() { p.join("config.json") } else { p };
                if f.extension().is_some_and(|x| x == "json") && f.is_file() {
                    v.push(std::fs::read_to_string(f).unwrap());
                }
            }
        }
        v.sort();
        assert!(v.len() >= 8, "config seeds missing");
        v
    })
}

/// A small safetensors checkpoint: llama-tiny's, read once.
fn checkpoint() -> &'static (Vec<u8>, usize) {
    static C: OnceLock<(Vec<u8>, usize)> = OnceLock::new();
    C.get_or_init(|| {
        let b = std::fs::read(fixtures().join("llama-tiny/model.safetensors")).unwrap();
        let header = 8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        (b, header)
    })
}

fn config_check(text: &str) {
    if let Err(e) = ModelConfig::parse(text) {
        assert!(!e.trim().is_empty(), "an empty error");
    }
}

/// A checkpoint folder for this test and process, llama-tiny's config in it.
fn folder(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mkc-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn open_check(dir: &Path) {
    match Checkpoint::open(&dir.join("model.safetensors")) {
        Ok(c) => {
            let names: Vec<String> = c.tensors().map(|(n, _)| n.to_string()).collect();
            for n in names {
                let _ = c.raw(&n);
            }
        }
        Err(e) => assert!(!e.trim().is_empty(), "an empty error"),
    }
    match HfModel::open(dir) {
        Ok(m) => {
            let _ = m.config.expected_weights();
            if let Some(w) = &m.checkpoint {
                for n in w.names() {
                    let _ = w.raw(n);
                }
            }
        }
        Err(e) => assert!(!e.trim().is_empty(), "an empty error"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn edited_configs_never_panic(seed in any::<prop::sample::Index>(), e in edits()) {
        let c = &configs()[seed.index(configs().len())];
        config_check(&String::from_utf8_lossy(&apply(c.as_bytes(), &e)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(500), ..ProptestConfig::default() })]

    #[test]
    fn edited_checkpoints_never_panic(e in edits(), edit_config in any::<bool>()) {
        let dir = folder("ckpt");
        let (bytes, header) = checkpoint();
        let config = std::fs::read(fixtures().join("llama-tiny/config.json")).unwrap();
        if edit_config {
            std::fs::write(dir.join("config.json"), apply(&config, &e)).unwrap();
            std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
        } else {
            std::fs::write(dir.join("config.json"), &config).unwrap();
            std::fs::write(dir.join("model.safetensors"), apply_in(bytes, &e, *header)).unwrap();
        }
        open_check(&dir);
    }
}

/// The seeds as they are parse and open.
#[test]
fn seeds_parse() {
    for c in configs() {
        ModelConfig::parse(c).unwrap();
    }
    let dir = folder("seed");
    std::fs::write(dir.join("model.safetensors"), &checkpoint().0).unwrap();
    std::fs::copy(
        fixtures().join("llama-tiny/config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    HfModel::open(&dir).unwrap();
}
