//! Fuzzes the GGUF reader: small valid files from `GgufWriter` (a hand-made one with every
//! field kind, and llama-tiny exported as llama.cpp would) with bits flipped, bytes
//! inserted, deleted or duplicated, counts, lengths, dimensions and offsets made huge, and
//! the file cut. Properties: `GgufFile::open` and `HfModel::open` never panic, an error
//! has a message naming the file, and a file that opens hands out every tensor's bytes.
//! Budget: `MKC_FUZZ_CASES` (docs/fuzzing.md).

#[path = "fuzz_bytes/mod.rs"]
mod fuzz_bytes;

use fuzz_bytes::{apply_in, cases, edits};
use mkc_frontends::gguf::write::{gguf_from_checkpoint, ExportTypes, GgufWriter};
use mkc_frontends::gguf::{GgmlType, GgufFile, MetaValue};
use mkc_frontends::HfModel;
use mkc_ir::weights::WeightSource;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// (bytes, where the tensor data starts: edits aim at what comes before).
fn seeds() -> &'static [(Vec<u8>, usize)] {
    static SEEDS: OnceLock<Vec<(Vec<u8>, usize)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut w = GgufWriter::new();
        w.meta("general.architecture", MetaValue::Str("llama".into()))
            .meta("general.name", MetaValue::Str("tiny".into()))
            .meta(
                "tokenizer.ggml.tokens",
                MetaValue::Array(vec![MetaValue::Str("a".into()), MetaValue::Str("b".into())]),
            )
            .meta("llama.block_count", MetaValue::U32(1))
            .meta("general.alignment", MetaValue::U32(32))
            .meta("f", MetaValue::F64(0.5))
            .meta(
                "nested",
                MetaValue::Array(vec![MetaValue::Array(vec![MetaValue::I8(-1)])]),
            )
            .tensor("token_embd.weight", GgmlType::F32, &[4, 2], vec![1; 32])
            .tensor("output_norm.weight", GgmlType::F16, &[4], vec![2; 8]);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llama-tiny");
        let tiny = gguf_from_checkpoint(
            &HfModel::open(&dir).unwrap(),
            ExportTypes {
                float: GgmlType::BF16,
                quantize: None,
            },
        )
        .unwrap();
        [w, tiny]
            .iter()
            .map(|w| (w.to_bytes().unwrap(), w.layout().unwrap().data))
            .collect()
    })
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mkc-fuzz-{}-{name}.gguf", std::process::id()))
}

fn check(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let name = path.display().to_string();
    match GgufFile::open(path) {
        Ok(f) => {
            for (_, info) in &f.tensors {
                let _ = f.data(info).len();
            }
        }
        Err(e) => assert!(e.contains(&name), "no file name in: {e}"),
    }
    match HfModel::open(path) {
        Ok(m) => {
            let w = m.checkpoint.as_ref().unwrap();
            for n in w.names() {
                let _ = w.raw(n);
            }
            if let Some(g) = w.gguf() {
                let _ = g.tokenizer();
            }
        }
        Err(e) => assert!(!e.trim().is_empty(), "an empty error"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn edited_gguf_never_panics(seed in any::<prop::sample::Index>(), e in edits()) {
        let (bytes, data) = &seeds()[seed.index(seeds().len())];
        // Edits land in the header, metadata and tensor infos (cuts anywhere).
        check(&temp("edited"), &apply_in(bytes, &e, *data));
    }
}

/// The seeds as written open.
#[test]
fn seeds_open() {
    for (i, (bytes, _)) in seeds().iter().enumerate() {
        let p = temp(&format!("seed-{i}"));
        std::fs::write(&p, bytes).unwrap();
        GgufFile::open(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
    }
}
