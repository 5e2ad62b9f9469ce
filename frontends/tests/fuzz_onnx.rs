//! The ONNX importer on inputs nobody wrote: random corruption of real models (the
//! llama-tiny export and a few node-suite models), and single nodes of the shape-heavy ops
//! on edge-case shapes and constants (rank 0, zero-size axes, negative and repeated axes,
//! negative steps, huge dimensions). It must return an error or a module, never panic,
//! and a module it returns must parse back and verify. Budget: `MKC_FUZZ_CASES`
//! (docs/fuzzing.md).

#[path = "fuzz_bytes/mod.rs"]
mod fuzz_bytes;
#[path = "onnx_node/mod.rs"]
mod onnx_node;

use fuzz_bytes::cases;
use mkc_frontends::onnx::{import, ImportOptions, OnnxModel};
use mkc_ir::verify::{verify, VerifyOptions};
use mkc_ir::Registry;
use onnx_node::{import_one, int_attr, ints, ints_attr};
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
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

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

/// Dimensions worth trying: empty, one, small, and huge (the importer must bound them).
fn dim() -> impl Strategy<Value = i64> {
    prop::sample::select(vec![0i64, 1, 1, 2, 3, 4, 7, 1 << 31, 1 << 40, i64::MAX])
}

/// Axes, starts, ends, steps, sizes and shapes: in range, negative, and extreme.
fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        -4i64..5,
        prop::sample::select(vec![i64::MIN, i64::MIN + 1, -(1 << 40), 1 << 40, i64::MAX]),
    ]
}

/// The ops whose shape code the importer computes itself, and what each takes: constant
/// inputs (by name) and integer attributes.
const OPS: &[(&str, &[&str], &[&str])] = &[
    ("Squeeze", &["axes"], &[]),
    ("Unsqueeze", &["axes"], &[]),
    ("Slice", &["starts", "ends", "axes", "steps"], &[]),
    ("Split", &["split"], &["axis"]),
    ("Reshape", &["shape"], &[]),
    ("Expand", &["shape"], &[]),
    ("Flatten", &[], &["axis"]),
    ("Transpose", &[], &["perm"]),
    ("Softmax", &[], &["axis"]),
    ("ArgMax", &[], &["axis", "keepdims"]),
    ("ReduceMean", &["axes"], &["keepdims"]),
    ("Concat", &[], &["axis"]),
    ("Gather", &["indices"], &["axis"]),
    ("Tile", &["repeats"], &[]),
    ("Pad", &["pads"], &[]),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn single_ops_on_edge_shapes_never_panic(
        op in prop::sample::select((0..OPS.len()).collect::<Vec<_>>()),
        dims in prop::collection::vec(dim(), 0..4),
        consts in prop::collection::vec(prop::collection::vec(int(), 0..4), 4),
        attrs in prop::collection::vec(prop::collection::vec(int(), 0..4), 2),
        outputs in 1usize..3,
        // Sometimes fewer constant inputs than the op takes (the optional ones left out).
        given in 0usize..5,
    ) {
        let (name, inputs, attr_names) = OPS[op];
        let consts = inputs
            .iter()
            .zip(&consts)
            .take(given.max(1).min(inputs.len()))
            .map(|(n, v)| ints(n, v))
            .collect();
        let attrs = attr_names
            .iter()
            .zip(&attrs)
            .map(|(n, v)| match (*n, v.first()) {
                ("perm", _) => ints_attr(n, v),
                (_, Some(&i)) => int_attr(n, i),
                (_, None) => ints_attr(n, v),
            })
            .collect();
        if let Ok(text) = import_one(name, &dims, consts, attrs, outputs) {
            let body = mkc_ir::parse_text("imported.mlir", &text)
                .map_err(|e| TestCaseError::fail(format!("{name} {dims:?}: the import does not parse back: {e}\n{text}")))?;
            let errors = verify(&body, &Registry::with_all_dialects(), VerifyOptions::default());
            prop_assert!(errors.is_empty(), "{name} {dims:?}: the import does not verify: {}\n{text}", errors[0].message);
        }
    }
}
