//! Issue 26: the ONNX importer's shape code on rank-0 inputs and empty axes (Split,
//! Squeeze, Slice with negative steps). Each small model must import correctly or give an
//! error; none may panic.

use mkc_frontends::onnx::proto::*;
use mkc_frontends::onnx::{import, ImportOptions, OnnxModel};
use prost::Message;

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(1),
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
        }),
    }
}

fn ints(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![v.len() as i64],
        data_type: Some(7),
        int64_data: v.to_vec(),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(i),
        r#type: Some(2),
        ..Default::default()
    }
}

fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        r#type: Some(7),
        ..Default::default()
    }
}

/// One node `op(x, constant inputs...)` over an f32 `x` of shape `dims`, with `outputs`
/// outputs; the import's result (the printed module, or the error).
fn import_one(
    op: &str,
    dims: &[i64],
    consts: Vec<TensorProto>,
    attrs: Vec<AttributeProto>,
    outputs: usize,
) -> Result<String, String> {
    let mut input = vec!["x".to_string()];
    input.extend(consts.iter().map(|t| t.name.clone().unwrap()));
    let output: Vec<String> = (0..outputs).map(|i| format!("y{i}")).collect();
    let m = ModelProto {
        ir_version: Some(9),
        producer_name: Some("mkc-test".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(18),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                input,
                output: output.clone(),
                name: Some("n".into()),
                op_type: Some(op.into()),
                attribute: attrs,
                ..Default::default()
            }],
            initializer: consts,
            input: vec![value("x", dims)],
            output: output
                .iter()
                .map(|o| ValueInfoProto {
                    name: Some(o.clone()),
                    r#type: None,
                })
                .collect(),
            value_info: vec![],
        }),
    };
    let dir = std::env::temp_dir().join(format!(
        "mkc-onnx-shapes-{}-{}",
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{op}.onnx"));
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let model = OnnxModel::open(&path).map_err(|e| e.to_string())?;
    let r = import(&model, &ImportOptions::default())
        .map(|b| mkc_ir::printer::print(&b))
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn expect_err(r: Result<String, String>, want: &str) {
    match r {
        Ok(ir) => panic!("expected an error containing {want:?}, got\n{ir}"),
        Err(e) => assert!(e.contains(want), "{e}"),
    }
}

#[test]
fn rank_0_inputs_have_no_axis() {
    let split = import_one("Split", &[], vec![], vec![int_attr("axis", 0)], 2);
    expect_err(split, "axis 0 is out of range for rank 0");
    let squeeze = import_one("Squeeze", &[], vec![ints("axes", &[0])], vec![], 1);
    expect_err(squeeze, "axis 0 is out of range for rank 0");
    let slice = import_one(
        "Slice",
        &[],
        vec![ints("starts", &[0]), ints("ends", &[1])],
        vec![],
        1,
    );
    expect_err(slice, "out of range for rank 0");
    for op in ["Softmax", "ArgMax"] {
        expect_err(
            import_one(op, &[], vec![], vec![], 1),
            "out of range for rank 0",
        );
    }
    // Squeezing a scalar without axes is a no-op; unsqueezing it gives a vector.
    assert!(import_one("Squeeze", &[], vec![], vec![], 1).is_ok());
    let ir = import_one("Unsqueeze", &[], vec![ints("axes", &[0])], vec![], 1).unwrap();
    assert!(ir.contains("tensor<1xf32>"), "{ir}");
}

#[test]
fn empty_axes_import_as_empty_tensors() {
    // A negative step over an empty axis: nothing to take (this panicked in clamp).
    let ir = import_one(
        "Slice",
        &[0, 3],
        vec![
            ints("starts", &[-1]),
            ints("ends", &[-10]),
            ints("axes", &[0]),
            ints("steps", &[-1]),
        ],
        vec![],
        1,
    )
    .unwrap();
    assert!(ir.contains("-> tensor<0x3xf32>"), "{ir}");
    // Extreme steps count without overflowing.
    for step in [i64::MIN, i64::MAX] {
        let ir = import_one(
            "Slice",
            &[4],
            vec![
                ints("starts", &[if step < 0 { -1 } else { 0 }]),
                ints("ends", &[if step < 0 { i64::MIN } else { i64::MAX }]),
                ints("axes", &[0]),
                ints("steps", &[step]),
            ],
            vec![],
            1,
        )
        .unwrap();
        assert!(ir.contains("-> tensor<1xf32>"), "{step}: {ir}");
    }
    // Slicing more axes than the input has, or one axis twice, is an error.
    let too_many = import_one(
        "Slice",
        &[2],
        vec![ints("starts", &[0, 0]), ints("ends", &[1, 1])],
        vec![],
        1,
    );
    expect_err(too_many, "slice axis 1 is out of range for rank 1");
    let twice = import_one(
        "Slice",
        &[2],
        vec![
            ints("starts", &[0, 0]),
            ints("ends", &[1, 1]),
            ints("axes", &[0, -1]),
        ],
        vec![],
        1,
    );
    expect_err(twice, "slice axis 0 is given twice");
    // Splitting an empty axis in two: two empty parts.
    let ir = import_one("Split", &[0, 2], vec![], vec![], 2).unwrap();
    assert!(ir.contains("tensor<0x2xf32>, tensor<0x2xf32>"), "{ir}");
    // Squeeze and Unsqueeze with empty axes leave the shape alone.
    let ir = import_one("Squeeze", &[1, 2], vec![ints("axes", &[])], vec![], 1).unwrap();
    assert!(ir.contains("tensor<1x2xf32>"), "{ir}");
    let ir = import_one("Unsqueeze", &[1, 2], vec![ints("axes", &[])], vec![], 1).unwrap();
    assert!(ir.contains("tensor<1x2xf32>"), "{ir}");
}

#[test]
fn split_sizes_must_cut_the_axis() {
    let r = import_one("Split", &[4], vec![ints("split", &[1, 2])], vec![], 2);
    expect_err(r, "do not cut axis 0");
    let r = import_one("Split", &[4], vec![ints("split", &[5, -1])], vec![], 2);
    expect_err(r, "do not cut axis 0");
    let r = import_one("Split", &[4], vec![ints("split", &[2, 2])], vec![], 3);
    expect_err(r, "do not cut axis 0");
    let r = import_one("Split", &[4], vec![], vec![int_attr("num_outputs", 0)], 2);
    expect_err(r, "Split into 0 parts has 2 outputs");
    let r = import_one(
        "Split",
        &[4],
        vec![],
        vec![int_attr("num_outputs", i64::MAX)],
        2,
    );
    expect_err(r, "has 2 outputs");
    let ir = import_one("Split", &[5], vec![], vec![ints_attr("split", &[2, 3])], 2).unwrap();
    assert!(ir.contains("tensor<2xf32>, tensor<3xf32>"), "{ir}");
    let ir = import_one("Split", &[5], vec![], vec![], 2).unwrap();
    assert!(ir.contains("tensor<3xf32>, tensor<2xf32>"), "{ir}");
}
