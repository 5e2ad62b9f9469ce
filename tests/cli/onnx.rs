//! `mkc import`/`check --onnx`/`onnx-test` on ONNX models, good and bad.

use super::{last_json, mkc, text};
use mkc_frontends::onnx::proto::*;
use prost::Message;
use std::path::{Path, PathBuf};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn every_fixture_export_passes_the_check() {
    for name in [
        "llama-tiny",
        "qwen3-tiny",
        "mistral-tiny",
        "qwen2-tiny",
        "llama3-tiny",
    ] {
        let dir = repo("tests/fixtures").join(name);
        let o = mkc(&["check", dir.to_str().unwrap(), "--onnx"], None);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        let j = last_json(&o);
        assert_eq!(
            (j["frontend"].as_str(), j["argmax_agree"].as_i64()),
            (Some("onnx"), Some(27)),
            "{name}"
        );
        assert!(j["max_rel_err"].as_f64().unwrap() <= 1e-3, "{name}: {j}");
    }
}

#[test]
fn raised_fixture_exports_still_match_transformers() {
    // raise rewrites the decomposed export into rms_norm/rope/silu; the logits must not move.
    for (name, norms) in [
        ("llama-tiny", 5),
        ("qwen3-tiny", 9),
        ("mistral-tiny", 5),
        ("qwen2-tiny", 5),
        ("llama3-tiny", 5),
    ] {
        let dir = repo("tests/fixtures").join(name);
        let pipeline = "--pass-pipeline=builtin.module(canonicalize,raise,cse,dce)";
        let o = mkc(&["check", dir.to_str().unwrap(), "--onnx", pipeline], None);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        let ir = text(&mkc(&["import", dir.join("model.onnx").to_str().unwrap()], None).stdout);
        let o = mkc(&["opt", "-", pipeline], Some(&ir));
        let raised = text(&o.stdout);
        assert_eq!(raised.matches("\"tg.rms_norm\"").count(), norms, "{name}");
        assert_eq!(raised.matches("\"tg.rope\"").count(), 4, "{name}");
        assert_eq!(raised.matches("\"tg.silu\"").count(), 2, "{name}");
        assert!(
            !raised.contains("\"tg.reciprocal\""),
            "{name}: an rms_norm chain was left"
        );
    }
}

#[test]
fn the_onnx_node_suite_passes() {
    let mut dirs: Vec<String> = std::fs::read_dir(repo("tests/onnx-node"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut args = vec!["onnx-test"];
    args.extend(dirs.iter().map(String::as_str));
    let o = mkc(&args, None);
    let out = text(&o.stdout);
    let last = out.lines().last().unwrap();
    let nums: Vec<usize> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (passed, failed, skipped) = (nums[0], nums[1], nums[2]);
    assert_eq!(passed + failed + skipped, dirs.len(), "{last}");
    assert_eq!(failed, 0, "{out}");
    assert!(o.status.success());
    // At least 95% of all cases pass; the only skips are string and sequence/optional types.
    assert!(passed * 100 >= 95 * dirs.len(), "{last}");
    let o = mkc(
        &[
            &["onnx-test", "-v"][..],
            &dirs.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
        None,
    );
    for line in text(&o.stdout).lines().filter(|l| l.starts_with("SKIP")) {
        assert!(
            line.contains("STRING") || line.contains("sequence"),
            "unexpected skip: {line}"
        );
    }
}

fn tensor_type(elem: i32, dims: &[i64]) -> TypeProto {
    TypeProto {
        tensor_type: Some(TypeProtoTensor {
            elem_type: Some(elem),
            shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&d| Dimension {
                        dim_value: Some(d),
                        dim_param: None,
                    })
                    .collect(),
            }),
        }),
    }
}

fn value(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(tensor_type(elem, dims)),
    }
}

/// A one-node model `y = op(x)` over f32 [2].
fn model(op: &str, opset: i64, x_elem: i32, initializers: Vec<TensorProto>) -> ModelProto {
    ModelProto {
        ir_version: Some(9),
        producer_name: Some("mkc-test".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                input: vec!["x".into()],
                output: vec!["y".into()],
                name: Some("the_node".into()),
                op_type: Some(op.into()),
                ..Default::default()
            }],
            initializer: initializers,
            input: vec![value("x", x_elem, &[2])],
            output: vec![value("y", x_elem, &[2])],
            value_info: vec![],
        }),
    }
}

fn import_err(dir: &Path, m: &ModelProto) -> String {
    let path = dir.join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let o = mkc(&["import", path.to_str().unwrap()], None);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected an error, got {}",
        text(&o.stdout)
    );
    let e = text(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mkc-onnx-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_good_hand_built_model_imports() {
    let dir = tempdir("good");
    let path = dir.join("model.onnx");
    std::fs::write(&path, model("Neg", 20, 1, vec![]).encode_to_vec()).unwrap();
    let o = mkc(&["import", path.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("\"tg.neg\"(%arg0) : (tensor<2xf32>) -> tensor<2xf32>"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn bad_onnx_models_are_clear_errors() {
    let dir = tempdir("bad");
    let e = import_err(&dir, &model("FancyOp", 20, 1, vec![]));
    assert!(
        e.contains("FancyOp node 'the_node': unsupported operator FancyOp"),
        "{e}"
    );

    let e = import_err(&dir, &model("Neg", 20, 8, vec![]));
    assert!(
        e.contains("input 'x': unsupported element type STRING (8)"),
        "{e}"
    );

    let e = import_err(&dir, &model("Neg", 11, 1, vec![]));
    assert!(
        e.contains("opset 11 is not supported: mkc needs opset 13 or later"),
        "{e}"
    );

    let mut dynamic = model("Neg", 20, 1, vec![]);
    dynamic.graph.as_mut().unwrap().input[0]
        .r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .shape = Some(TensorShapeProto {
        dim: vec![Dimension {
            dim_value: None,
            dim_param: Some("batch".into()),
        }],
    });
    let e = import_err(&dir, &dynamic);
    assert!(
        e.contains("input 'x' has a dynamic dimension 'batch': mkc needs static shapes"),
        "{e}"
    );

    // A weight whose external data file is missing, then one that points past the file's end.
    let external = |len: &str| TensorProto {
        name: Some("w".into()),
        dims: vec![2],
        data_type: Some(1),
        data_location: Some(1),
        external_data: vec![
            StringStringEntryProto {
                key: Some("location".into()),
                value: Some("weights.bin".into()),
            },
            StringStringEntryProto {
                key: Some("length".into()),
                value: Some(len.into()),
            },
        ],
        ..Default::default()
    };
    let e = import_err(&dir, &model("Neg", 20, 1, vec![external("8")]));
    assert!(
        e.contains("cannot open external data") && e.contains("weights.bin"),
        "{e}"
    );
    std::fs::write(dir.join("weights.bin"), [0u8; 4]).unwrap();
    let e = import_err(&dir, &model("Neg", 20, 1, vec![external("8")]));
    assert!(
        e.contains("tensor 'w': external data 0..8 is outside 'weights.bin' (4 bytes)"),
        "{e}"
    );

    // A Reshape whose shape is a runtime input: static shapes are required.
    let mut reshape = model("Reshape", 20, 1, vec![]);
    let g = reshape.graph.as_mut().unwrap();
    g.node[0].input.push("shape".into());
    g.input.push(value("shape", 7, &[1]));
    let e = import_err(&dir, &reshape);
    assert!(
        e.contains(
            "Reshape node 'the_node': the shape (input 'shape') must be known at compile time"
        ),
        "{e}"
    );

    // Attention on rank-1 inputs once indexed past the shape (found by fuzz_onnx).
    let mut attention = model("Attention", 23, 1, vec![]);
    attention.graph.as_mut().unwrap().node[0].input = vec!["x".into(), "x".into(), "x".into()];
    let e = import_err(&dir, &attention);
    assert!(
        e.contains("Attention node 'the_node': Q, K and V must all be 3-D or all 4-D"),
        "{e}"
    );

    // Not a protobuf at all, and a truncated one.
    let path = dir.join("model.onnx");
    std::fs::write(&path, b"\xff\xff\xff\xff garbage").unwrap();
    let o = mkc(&["import", path.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("not a valid ONNX model (protobuf"),
        "{}",
        text(&o.stderr)
    );
    let good = std::fs::read(repo("tests/fixtures/llama-tiny/model.onnx")).unwrap();
    std::fs::write(&path, &good[..good.len() / 3]).unwrap();
    let o = mkc(&["import", path.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("not a valid ONNX model"),
        "{}",
        text(&o.stderr)
    );
}

/// The rewrite rules and fusion are checked on every node case: the suite must still pass
/// after `fuse`, and every Attention variant but softcap's must be recognised as sdpa.
#[test]
fn fusion_preserves_the_node_suite_and_recognises_attention() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo("tests/onnx-node"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut args = vec![
        "onnx-test".to_string(),
        "--pass-pipeline=builtin.module(canonicalize,fuse,cse,dce)".into(),
    ];
    args.extend(dirs.iter().map(|d| d.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = mkc(&args, None);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.lines().last().unwrap().contains(" 0 failed"), "{out}");
    for d in dirs.iter().filter(|d| {
        d.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("test_attention")
    }) {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        let ir = text(&mkc(&["import", d.join("model.onnx").to_str().unwrap()], None).stdout);
        let raised = text(
            &mkc(
                &[
                    "opt",
                    "-",
                    "--pass-pipeline=builtin.module(canonicalize,raise,cse,dce)",
                ],
                Some(&ir),
            )
            .stdout,
        );
        // Softcap (tanh between QK^T and softmax) is not sdpa; everything else is.
        let model = ModelProto::decode(&std::fs::read(d.join("model.onnx")).unwrap()[..]).unwrap();
        let softcap = model.graph.unwrap().node.iter().any(|n| {
            n.attribute
                .iter()
                .any(|a| a.name.as_deref() == Some("softcap") && a.f.unwrap_or(0.0) > 0.0)
        });
        assert_eq!(raised.contains("\"tg.sdpa\""), !softcap, "{name}");
    }
}
