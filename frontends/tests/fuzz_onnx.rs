//! Random corruption of real ONNX models: the importer must return an error or a module,
//! never panic. Seeds: the llama-tiny export and a few node-suite models.

use mkc_frontends::onnx::{import, ImportOptions, OnnxModel};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn seeds() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    [
        "fixtures/llama-tiny/model.onnx",
        "onnx-node/test_attention_4d_gqa_with_past_and_present/model.onnx",
        "onnx-node/test_rotary_embedding_3d_input/model.onnx",
        "onnx-node/test_layer_normalization_4d_axis1/model.onnx",
        "onnx-node/test_slice_neg_steps/model.onnx",
    ]
    .iter()
    .filter_map(|p| {
        let path = root.join(p);
        std::fs::read(&path).ok().map(|b| (path, b))
    })
    .collect()
}

fn try_import(dir: &Path, bytes: &[u8]) {
    let tmp = std::env::temp_dir().join(format!("mkc-fuzz-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    // External data is resolved next to the model: copy the fixture's data file along.
    let data = "model.onnx.data";
    if dir.join(data).is_file() && !tmp.join(data).is_file() {
        std::fs::copy(dir.join(data), tmp.join(data)).unwrap();
    }
    let path = tmp.join("model.onnx");
    std::fs::write(&path, bytes).unwrap();
    if let Ok(model) = OnnxModel::open(&path) {
        let _ = import(&model, &ImportOptions::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_models_never_panic(
        seed in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let seeds = seeds();
        prop_assume!(!seeds.is_empty());
        let (path, bytes) = &seeds[seed.index(seeds.len())];
        let mut b = bytes.clone();
        for (at, v) in flips {
            let i = at.index(b.len());
            b[i] = v;
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len() + 1));
        }
        try_import(path.parent().unwrap(), &b);
    }
}
